#!/bin/bash
# netboot: the Raspberry Pi u-boot flow end to end, under emulation, with
# stock Debian packages and every file the guest fetches from `cowroot serve`.
#
# QEMU's arm64 `virt` board runs u-boot-qemu's u-boot as its firmware.  Its
# "SD card" is a virtio disk with one FAT partition holding what `cowroot
# netboot sdcard` wrote; u-boot's distro boot finds the universal boot.scr
# there, which does DHCP (dnsmasq, run with the configuration `cowroot
# netboot dnsmasq` prints) and loads netboot-${ethaddr}.scr (u-boot on QEMU
# has no serial#) over TFTP from `cowroot serve`.  That per-client script
# loads the kernel and the initramfs from the client's own root over TFTP
# and boots them with the root on /clients/NAME over NFS (ganesha and the
# COWROOT FSAL).  The image is a Debian bookworm arm64 tree with systemd,
# linux-image-arm64 and an NFS initramfs (arm64kit.sh builds and caches it),
# plus a test unit that runs once multi-user.target is reached and reports
# on the serial console; what it does is chosen by `cowroot_test=` in the
# client's --boot-args, which the generated script carries.
#
# Scenario: guest a boots from its layer, writes a file and removes an image
# file, reboots (u-boot and the whole chain run again) and sees its write;
# the client is reset while served and it boots again and sees its image.
# Then a and b (other MAC, other address) boot at once: each finds its own
# root only (which client it is, from its mount; the other's files absent),
# checked from the server side with `cowroot client diff` as well.  The boot
# times are measured and printed.
#
# Networking: private network/mount/pid namespaces (the script re-executes
# itself under unshare).  A bridge with the server's address 10.77.0.1/24,
# one tap device per guest on it (e1000 NICs: u-boot 2023.01's virtio-net
# driver misreads the MAC); no QEMU user-mode network, no QEMU TFTP.  The
# 10.77.0.0/24 addresses exist only inside that private namespace.
#
# Env: COWROOT, COW_FSAL          the built cowroot CLI and libfsalcowroot.so
#      COW_FIXTURE_CACHE          fixture cache (default /var/cache/cowroot-test)
#      COW_BOOT_TIMEOUT           seconds one boot may take (default 600)
#      COW_QEMU_ACCEL             QEMU accelerator (default tcg)
#      COW_KEEP=1                 keep the temp dir (store, console logs)
# Prints "ok NAME" / "FAIL NAME: reason" and "N passed, N failed"; exit 0 if
# all passed, 1 on a failure, 77 when the machine lacks a facility.
# shellcheck disable=SC2317 # all after the re-exec under unshare runs in the inner run
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/checks.sh
. "$here/../checks.sh"
skip() {
	echo "SKIP: $*"
	exit 77
}
uboot_bin=/usr/lib/u-boot/qemu_arm64/u-boot.bin

# shellcheck source=tests/netboot/netboot-lib.sh
. "$here/netboot-lib.sh"

if [ -z "${COW_NETBOOT_INNER:-}" ]; then
	netboot_outer_checks
	command -v qemu-system-aarch64 >/dev/null || skip "qemu-system-aarch64 is missing (install qemu-system-arm)"
	[ -r "$uboot_bin" ] || skip "$uboot_bin is missing (install u-boot-qemu)"
	command -v dnsmasq >/dev/null || skip "dnsmasq is missing (install dnsmasq-base)"
	command -v mkfs.vfat >/dev/null || skip "mkfs.vfat is missing (install dosfstools)"
	command -v mcopy >/dev/null || skip "mcopy is missing (install mtools)"
	[ -c /dev/net/tun ] || skip "no /dev/net/tun (tap devices)"
	netboot_kit "$here/arm64kit.sh" "the arm64 kit"
	netboot_reexec "$@"
fi

# ---- inside the namespaces ---------------------------------------------------------------------

netboot_inner_setup

kit=$COW_KIT
server=10.77.0.1
bridge=cowbr0
declare -A mac=([a]=52:54:00:77:00:11 [b]=52:54:00:77:00:12)
declare -A addr=([a]=10.77.0.11 [b]=10.77.0.12)
if ! { ip link add "$bridge" type bridge && ip addr add "$server/24" dev "$bridge" && ip link set "$bridge" up; }; then
	skip "cannot make a bridge in the network namespace"
fi
for c in a b; do
	if ! { ip tuntap add dev "cowtap-$c" mode tap && ip link set "cowtap-$c" master "$bridge" &&
		ip link set "cowtap-$c" up; }; then
		skip "cannot make tap devices in the network namespace"
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-uboot.XXXXXX")
store=$tmp/store
mnt=$tmp/mnt
serve_pid=
dnsmasq_pid=
declare -A qemu_pid=()
cleanup() {
	local c
	for c in "${!qemu_pid[@]}"; do
		[ -n "${qemu_pid[$c]}" ] && kill "${qemu_pid[$c]}" 2>/dev/null
	done
	[ -n "$dnsmasq_pid" ] && kill "$dnsmasq_pid" 2>/dev/null
	netboot_cleanup_common
}
trap cleanup EXIT
cow() { "$COWROOT" --store "$store" "$@"; }
# mount_client CLIENT: its view on $mnt, by a foreground daemon in the
# background ($mount_pid); umount_client unmounts and waits for the daemon
# to write back and let go of the layer.  Both in the same shell (one
# check function): the daemon is that shell's child.
mount_client() {
	mkdir -p "$mnt" || return 1
	"$COWROOT" --store "$store" mount "$1" "$mnt" -f >"$tmp/mount.log" 2>&1 &
	mount_pid=$!
	for _ in $(seq 200); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$mount_pid" 2>/dev/null || break
		sleep 0.05
	done
	cat "$tmp/mount.log"
	return 1
}
umount_client() { fusermount3 -u "$mnt" && wait "$mount_pid"; }

# ---- the image: the kit's tree plus the test unit, made through a client ----
# The unit runs once multi-user.target is reached and reports on the console.
# Its mode is the kernel's cowroot_test= argument:
#   reboot   first boot: write a file, remove an image file, reboot; once the
#            file is there: say so and power off
#   report   say what it sees and power off
#   hold     also write its own file and watch for 40 s that no other
#            client's file shows up, then power off
write_unit() {
	mount_client maint || return 1
	mkdir -p "$mnt/usr/local/sbin" "$mnt/etc/systemd/system/multi-user.target.wants" || return 1
	cat >"$mnt/usr/local/sbin/cowroot-test" <<'EOF'
#!/bin/sh
# cowroot u-boot netboot test: runs once multi-user.target is reached
# on a line of its own (getty's login prompt has no newline)
say() { printf '\ncowroot-test: %s\n' "$*" >/dev/console; }
mode=$(sed -n 's/.*cowroot_test=\([a-z]*\).*/\1/p' /proc/cmdline)
src=$(awk '$2 == "/" { print $1 }' /proc/mounts | tail -n 1)
me=${src##*/clients/}
myaddr=$(awk '/32 host LOCAL/ { print prev } { prev = $2 }' /proc/net/fib_trie | grep -v '^127\.' | sort -u | tr '\n' ' ')
d=/cowroot-test
mkdir -p $d
boots=$(($(cat $d/boots 2>/dev/null || echo 0) + 1))
echo $boots >$d/boots
say "up: client $me addr ${myaddr% } root $src boot $boots mode $mode multi-user $(systemctl is-active multi-user.target) kernel $(uname -r) uptime $(cut -d' ' -f1 /proc/uptime)"
say "sees: owner $(cat $d/owner 2>/dev/null || echo none) written $([ -e $d/written ] && cat $d/written || echo none) issue.net $([ -e /etc/issue.net ] && echo present || echo absent)"
case $mode in
reboot)
	if [ -e $d/written ]; then
		say "saw its write; power off"
		sync
		systemctl --no-block poweroff
	else
		echo "by $me in boot $boots" >$d/written
		rm -f /etc/issue.net
		sync
		say "wrote; reboot"
		systemctl --no-block reboot
	fi
	;;
hold)
	echo "$me" >$d/alive-$me
	sync
	say "wrote alive-$me at $(date +%s)"
	i=0
	while [ $i -lt 20 ]; do
		for f in $d/alive-*; do
			[ "$f" = $d/alive-$me ] || say "FAIL sees $f"
		done
		sleep 2
		i=$((i + 1))
	done
	say "isolated at $(date +%s); power off"
	systemctl --no-block poweroff
	;;
*)
	say "power off"
	systemctl --no-block poweroff
	;;
esac
EOF
	cat >"$mnt/etc/systemd/system/cowroot-test.service" <<'EOF'
[Unit]
Description=cowroot u-boot netboot test
# no default dependencies: else multi-user.target, which wants it, would
# be ordered after it, and it is ordered after multi-user.target
DefaultDependencies=no
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/cowroot-test

[Install]
WantedBy=multi-user.target
EOF
	chmod 755 "$mnt/usr/local/sbin/cowroot-test" &&
		ln -s ../cowroot-test.service "$mnt/etc/systemd/system/multi-user.target.wants/cowroot-test.service" &&
		umount_client
}
# put_owner CLIENT: CLIENT's layer gets /cowroot-test/owner naming it
put_owner() {
	mount_client "$1" || return 1
	mkdir -p "$mnt/cowroot-test" && echo "$1" >"$mnt/cowroot-test/owner" && umount_client
}

check "create a store" cow init
check "import the arm64 kit's tree as image bookworm-arm64" cow image import bookworm-arm64 "$kit/root"
check "add client maint" cow client add maint --image bookworm-arm64 --ip 10.77.0.99
check "put the test unit into maint's layer (FUSE)" write_unit
check "snapshot maint as image bookworm-test" cow client snapshot maint bookworm-test
for c in a b; do
	check "add client $c (${addr[$c]}, ${mac[$c]})" cow client add "$c" --image bookworm-test --ip "${addr[$c]}" --mac "${mac[$c]}"
	check "put /cowroot-test/owner into $c's layer (FUSE)" put_owner "$c"
done
check "remove client maint" cow client rm maint
[ "$failed" = 0 ] || finish

# ---- the SD card: a disk with one FAT partition holding what netboot sdcard wrote ----
# mbr_fat IMAGE START SECTORS: an MBR with one bootable FAT32 (LBA) partition
mbr_fat() {
	local img=$1 start=$2 n=$3
	le() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
	# shellcheck disable=SC2059 # the format is the bytes
	printf "\\x80\\xfe\\xff\\xff\\x0c\\xfe\\xff\\xff$(le "$start")$(le "$n")" |
		dd of="$img" bs=1 seek=446 conv=notrunc status=none &&
		printf '\x55\xaa' | dd of="$img" bs=1 seek=510 conv=notrunc status=none
}
make_sdcard() {
	local dir=$tmp/sdcard fat=$tmp/sdcard.fat kib
	# no --server: the card names no server either, u-boot takes DHCP's next-server
	cow netboot sdcard "$dir" || return 1
	[ -f "$dir/boot.scr" ] || { echo "no boot.scr in $dir"; ls -l "$dir"; return 1; }
	kib=$(($(du -sk "$dir" | cut -f1) + 40 * 1024))
	mkfs.vfat -C -F 32 -n COWROOT "$fat" "$kib" >/dev/null || return 1
	mcopy -s -i "$fat" "$dir"/* ::/ || return 1
	truncate -s $((kib * 1024 + 1024 * 1024)) "$tmp/sdcard.img" &&
		mbr_fat "$tmp/sdcard.img" 2048 $((kib * 2)) &&
		dd if="$fat" of="$tmp/sdcard.img" bs=1M seek=1 conv=notrunc status=none
}
check "netboot sdcard writes boot.scr; on a FAT partition of a disk image (mkfs.vfat, mcopy)" make_sdcard
[ "$failed" = 0 ] || finish

# ---- DHCP: dnsmasq with the configuration cowroot prints ----
start_dnsmasq() {
	cow netboot dnsmasq --interface "$bridge" >"$tmp/dnsmasq.conf" || return 1
	local c
	for c in a b; do
		grep -qi "${mac[$c]}.*${addr[$c]}" "$tmp/dnsmasq.conf" ||
			{ echo "no fixed address for $c"; cat "$tmp/dnsmasq.conf"; return 1; }
	done
	dnsmasq --conf-file="$tmp/dnsmasq.conf" --keep-in-foreground --user=root \
		--pid-file="$tmp/dnsmasq.pid" --dhcp-leasefile="$tmp/dnsmasq.leases" \
		--log-dhcp --log-facility="$tmp/dnsmasq.log" 2>"$tmp/dnsmasq.err" &
	dnsmasq_pid=$!
	sleep 1
	kill -0 "$dnsmasq_pid" 2>/dev/null || { dnsmasq_pid=; cat "$tmp/dnsmasq.err"; return 1; }
}
check "netboot dnsmasq prints a fixed address per client; dnsmasq runs with it" start_dnsmasq
check "dnsmasq does DHCP only: no DNS, no TFTP of its own" \
	bash -c "grep -qx 'port=0' '$tmp/dnsmasq.conf' && ! grep -q '^enable-tftp' '$tmp/dnsmasq.conf'"
[ "$failed" = 0 ] || finish

# ---- serve: NFS and TFTP ----
start_server --server "$server" || finish
ok "cowroot serve is up (NFS and TFTP)"

# ---- the guests ----
accel=${COW_QEMU_ACCEL:-tcg}
timeout=${COW_BOOT_TIMEOUT:-600}
# start_guest CLIENT: power on CLIENT's machine (its MAC, on its tap device),
# the console in $tmp/CLIENT.N.log (N counts its power-ons); a reboot by the
# guest resets the machine (u-boot runs again), a power-off ends QEMU.  The
# SD card is shared, read-only.
declare -A runs=() t0=()
start_guest() {
	local c=$1 log
	runs[$c]=$((${runs[$c]:-0} + 1))
	log=$tmp/$c.${runs[$c]}.log
	qemu-system-aarch64 -M virt -cpu cortex-a57 -m 1024 -accel "$accel" -bios "$uboot_bin" \
		-display none -monitor none -serial "file:$log" \
		-drive "if=none,id=sd,format=raw,file=$tmp/sdcard.img,readonly=on" -device virtio-blk-device,drive=sd \
		-netdev "tap,id=n0,ifname=cowtap-$c,script=no,downscript=no" -device "e1000,netdev=n0,mac=${mac[$c]}" \
		>"$log.qemu" 2>&1 &
	qemu_pid[$c]=$!
	t0[$c]=$EPOCHREALTIME
}
log_of() { echo "$tmp/$1.${runs[$1]}.log"; }
# since CLIENT: seconds since CLIENT's machine was powered on
since() { echo "$EPOCHREALTIME ${t0[$1]}" | awk '{ printf "%.1f", $1 - $2 }'; }
show_console() {
	echo "# console of $1 (tail):"
	tr -d '\r' <"$(log_of "$1")" | tail -n 40 | sed 's/^/#   /'
	sed 's/^/#   /' "$(log_of "$1").qemu"
}
# wait_line CLIENT REGEX [NTH]: wait until the NTH (default 1st) console line
# matching REGEX shows up, within the timeout from the power-on; prints the
# seconds it took.  Fails when QEMU ends first or on time-out.
wait_line() {
	local c=$1 re=$2 nth=${3:-1} log
	log=$(log_of "$c")
	while :; do
		if [ -e "$log" ] && [ "$(tr -d '\r' <"$log" | grep -cE "$re")" -ge "$nth" ]; then
			since "$c"
			return 0
		fi
		if ! kill -0 "${qemu_pid[$c]}" 2>/dev/null; then
			echo "QEMU of $c ended before '$re' showed up"
			return 1
		fi
		if [ "$(since "$c" | cut -d. -f1)" -ge "$timeout" ]; then
			echo "no '$re' from $c within $timeout s"
			return 1
		fi
		sleep 0.5
	done
}
# powered_off CLIENT: ok when QEMU ends by itself (the guest powered off)
# with status 0 in time.  Not under check: QEMU is this shell's child.
powered_off() {
	local c=$1 rc
	while kill -0 "${qemu_pid[$c]}" 2>/dev/null; do
		if [ "$(since "$c" | cut -d. -f1)" -ge "$timeout" ]; then
			kill "${qemu_pid[$c]}"
			wait "${qemu_pid[$c]}" 2>/dev/null
			qemu_pid[$c]=
			bad "$c powered off: not within $timeout s"
			show_console "$c"
			return 1
		fi
		sleep 0.5
	done
	wait "${qemu_pid[$c]}"
	rc=$?
	qemu_pid[$c]=
	if [ "$rc" != 0 ]; then
		bad "$c powered off: QEMU exited with status $rc"
		show_console "$c"
		return 1
	fi
	ok "$c powered off after $(since "$c") s"
}
# console CLIENT: the console without carriage returns
console() { tr -d '\r' <"$(log_of "$1")"; }
declare -A took=()
# timed CLIENT STAGE REGEX [NTH]: wait for the line; ok with the time, or fail and show the console
timed() {
	local c=$1 stage=$2 t
	if t=$(wait_line "$c" "$3" "${4:-1}"); then
		ok "$c: $stage after $t s"
		took[$c.$stage]=$t
		return 0
	fi
	bad "$c: $stage: $t"
	show_console "$c"
	return 1
}
# on_console CLIENT REGEX: a line of CLIENT's console matches
on_console() { console "$1" | grep -q "$2"; }
fail_lines() { ! console "$1" | grep 'cowroot-test: FAIL'; }

# 1. a boots, writes, reboots, sees its write
# set_mode CLIENT MODE: the test unit's mode, through the client's --boot-args
set_mode() { cow client set "$1" --boot-args "console=ttyAMA0 cowroot_test=$2"; }
check "a: --boot-args console=ttyAMA0 cowroot_test=reboot" set_mode a reboot
start_guest a
boot1() {
	timed a "u-boot ran the SD card's boot.scr" 'Found U-Boot script /boot.scr' &&
		timed a "netboot-${mac[a]}.scr fetched over TFTP and run" '^cowroot: client a: kernel ' &&
		timed a "kernel started" 'Starting kernel' &&
		timed a "multi-user from its layer (boot 1)" 'cowroot-test: up: client a .* boot 1 .* multi-user active' &&
		timed a "wrote and rebooted" 'cowroot-test: wrote; reboot' &&
		timed a "u-boot again after the reboot" 'Found U-Boot script /boot.scr' 2 &&
		timed a "multi-user again (boot 2)" 'cowroot-test: up: client a .* boot 2 ' &&
		timed a "saw its write after the reboot" 'cowroot-test: saw its write' &&
		powered_off a
}
if boot1; then
	t_seen() {
		console a | grep 'cowroot-test: ' | grep -v 'cowroot-test: up:'
		on_console a "cowroot-test: up: client a addr ${addr[a]} root $server:/clients/a boot 2 " &&
			on_console a 'cowroot-test: sees: owner a written by a in boot 1 issue.net absent'
	}
	check "after the reboot a had its address, its root, its owner file and its write; the image file it removed stayed removed" t_seen
	check "no failed step on a's console" fail_lines a
fi
t_diff_a() {
	cow client diff a >"$tmp/diff.a" 2>&1 || { cat "$tmp/diff.a"; return 1; }
	cat "$tmp/diff.a"
	grep -qx 'added     /cowroot-test/written' "$tmp/diff.a" &&
		grep -qx 'deleted   /etc/issue.net' "$tmp/diff.a"
}
check "server side: client diff a shows its write and its removal" t_diff_a
check "a ran the image's kernel" on_console a "cowroot-test: up: client a .* kernel $(cat "$kit/release") "
# tftp_fetched CLIENT: serve's log has CLIENT's script, kernel and initramfs
# sent to CLIENT's address, named for CLIENT
tftp_fetched() {
	local c=$1 f
	for f in "'netboot-${mac[$c]}\\.scr'" "/boot/vmlinuz-[^']*'" "/boot/initrd\\.img-[^']*'"; do
		grep -q "tftp: ${addr[$c]//./\\.}:[0-9]* $c [^ ]*$f: sent" "$tmp/serve.err" ||
			{ echo "no fetch of $f by $c in serve's log"; grep 'tftp:' "$tmp/serve.err" | tail -n 5; return 1; }
	done
}
check "cowroot serve's TFTP sent a its script, kernel and initramfs (serve's log)" tftp_fetched a

# 2. reset a while served: it boots its image again
check "client reset a (done by the running server)" cow client reset a
check "a: cowroot_test=report" set_mode a report
start_guest a
# (what a guest saw is checked once it powered off: its lines are all out)
if timed a "multi-user after the reset" 'cowroot-test: up: client a .* boot 1 .* multi-user active' &&
	powered_off a; then
	check "after the reset a sees its image: no owner file, no write, /etc/issue.net back" \
		on_console a 'cowroot-test: sees: owner none written none issue.net present'
fi

# 3. a and b at once, each on its own root
check "a: cowroot_test=hold" set_mode a hold
check "b: cowroot_test=hold" set_mode b hold
start_guest a
start_guest b
for c in a b; do
	timed "$c" "multi-user, booted together with the other" "cowroot-test: up: client $c addr ${addr[$c]} root $server:/clients/$c boot " &&
		timed "$c" "wrote its file" "cowroot-test: wrote alive-$c"
done
for c in a b; do
	timed "$c" "watched 40 s: no file of the other client" 'cowroot-test: isolated'
	powered_off "$c"
	check "no failed step on $c's console" fail_lines "$c"
done
check "a sees no owner file (b's is only in b's layer)" on_console a 'cowroot-test: sees: owner none '
check "b sees its own owner file" on_console b 'cowroot-test: sees: owner b '
t_overlap() {
	# both wrote before either stopped watching (the guests' clocks are
	# the host's, from the board's RTC): the roots were served at once
	local wa wb oa ob
	wa=$(console a | sed -n 's/.*cowroot-test: wrote alive-a at \([0-9]*\).*/\1/p')
	wb=$(console b | sed -n 's/.*cowroot-test: wrote alive-b at \([0-9]*\).*/\1/p')
	oa=$(console a | sed -n 's/.*cowroot-test: isolated at \([0-9]*\);.*/\1/p')
	ob=$(console b | sed -n 's/.*cowroot-test: isolated at \([0-9]*\);.*/\1/p')
	echo "a wrote at $wa, watched until $oa; b wrote at $wb, watched until $ob"
	[ -n "$wa" ] && [ -n "$wb" ] && [ -n "$oa" ] && [ -n "$ob" ] && [ "$wa" -lt "$ob" ] && [ "$wb" -lt "$oa" ]
}
check "the two guests were up at the same time" t_overlap
t_diffs() {
	cow client diff a >"$tmp/diff.a" 2>&1 && cow client diff b >"$tmp/diff.b" 2>&1 || return 1
	grep -qx 'added     /cowroot-test/alive-a' "$tmp/diff.a" && ! grep -q 'alive-b\|owner' "$tmp/diff.a" &&
		grep -qx 'added     /cowroot-test/alive-b' "$tmp/diff.b" && grep -qx 'added     /cowroot-test/owner' "$tmp/diff.b" &&
		! grep -q 'alive-a\|written' "$tmp/diff.b" && ! grep -q written "$tmp/diff.a" && return 0
	head -n 20 "$tmp/diff.a" "$tmp/diff.b"
	return 1
}
check "server side: each client's diff has its own file only" t_diffs
check "cowroot serve's TFTP sent b its script, kernel and initramfs (serve's log)" tftp_fetched b

# 4. a kernel of a's own, a gzip-compressed Image: the script sets
# kernel_comp_addr_r/size and u-boot's booti decompresses it
[ -n "$serve_pid" ] && stop_server && ok "cowroot serve stops (a's layer is changed through a mount)"
t_gz_kernel() {
	local ver
	ver=$(cat "$kit/release")
	mount_client a || return 1
	gzip -1 -c "$mnt/boot/vmlinuz-$ver" >"$mnt/boot/vmlinuz-$ver-gz" &&
		ln -s "initrd.img-$ver" "$mnt/boot/initrd.img-$ver-gz" &&
		ln -sfn "boot/vmlinuz-$ver-gz" "$mnt/vmlinuz" && sync "$mnt/boot/vmlinuz-$ver-gz" || {
		umount_client
		return 1
	}
	umount_client
}
check "a gets a gzip-compressed kernel of its own (its layer, through a mount)" t_gz_kernel
start_server --server "$server" || finish
start_guest a
if timed a "a compressed kernel started" 'Booting Linux on physical CPU'; then
	check "u-boot decompressed it (booti with kernel_comp_addr_r/size)" on_console a 'Uncompressing Kernel Image'
	check "the kernel a booted is the compressed one of its layer (serve's log)" \
		grep -q " a '[^']*/boot/vmlinuz-$(cat "$kit/release")-gz': sent" "$tmp/serve.err"
fi
kill "${qemu_pid[a]}" 2>/dev/null
wait "${qemu_pid[a]}" 2>/dev/null
qemu_pid[a]=

[ -n "$serve_pid" ] && stop_server && ok "cowroot serve stops cleanly"
# boot_time STAGE...: the seconds of CLIENT.STAGE, "?" when not reached
boot_time() {
	local k
	for k; do printf '%s ' "${took[$k]:-?}"; done
}
echo "# boot times, s from power-on (QEMU accel $accel, 1 GiB, cortex-a57): a: script" \
	"$(boot_time "a.netboot-${mac[a]}.scr fetched over TFTP and run")kernel $(boot_time "a.kernel started")multi-user" \
	"$(boot_time "a.multi-user from its layer (boot 1)")| reboot $(boot_time "a.wrote and rebooted")multi-user again" \
	"$(boot_time "a.multi-user again (boot 2)")| after the reset $(boot_time "a.multi-user after the reset")|" \
	"together: a $(boot_time "a.multi-user, booted together with the other")b $(boot_time "b.multi-user, booted together with the other")"
finish
