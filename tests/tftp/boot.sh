#!/bin/bash
# boot: the fleet's boot files over TFTP, as `cowroot serve` serves them
# (run here as `cowroot tftp serve --boot`, the same resolver without NFS),
# fetched with curl from several loopback addresses, one per client.
#
# Images made here: a Debian arm64 layout with a Raspberry Pi boot
# partition tree in /boot/firmware, a Raspberry Pi OS 32-bit layout
# (kernel7l.img, no /vmlinuz), one with a gzip-compressed kernel, one with
# no kernel.  Checked: the u-boot script netboot-<serial|MAC>.scr in every
# accepted spelling (a valid script image naming that client's nfsroot,
# boot args, kernel, initramfs and device tree, booti/bootz, the
# compressed kernel's kernel_comp_size), every file it names served and
# equal to the root's; a client reached only from its own addresses; an
# unknown serial or MAC refused with a log line saying what to do (and
# that line rate-limited); nothing outside the boot files, whatever
# symlinks say; the Pi 4 bootloader's requests in their order, by serial
# and by MAC prefix, with cmdline.txt written by cowroot; the Pi 3's
# unprefixed bootcode.bin; a kernel installed in a client's layer is the
# one its script boots, and after a snapshot and a rebase another
# client's too; IPv6.
#
# Env: COWROOT (the built CLI), COW_KEEP=1 keeps the temp dir.
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

if [ -z "${COW_BOOT_INNER:-}" ]; then
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to the built cowroot ('${COWROOT:-}')" >&2
		exit 1
	fi
	[ "$(id -u)" = 0 ] || skip "needs root (network namespace, FUSE)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	command -v ip >/dev/null || skip "ip is missing (install iproute2)"
	for c in curl tftp; do
		command -v $c >/dev/null || skip "$c is missing (tools/setup-deps.sh installs curl, tftp-hpa)"
	done
	command -v mkimage >/dev/null || skip "mkimage is missing (install u-boot-tools)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
	COW_BOOT_INNER=1 exec unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
fi

ip link set lo up || skip "cannot bring up loopback in the namespace"
T=$(mktemp -d /tmp/cowroot-boot.XXXXXX)
PORT=16970
S=$T/store
server=
mnt_pid=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	mountpoint -q "$T/mnt" 2>/dev/null && { fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt"; }
	[ -n "$mnt_pid" ] && wait "$mnt_pid" 2>/dev/null
	if [ "${COW_KEEP:-}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
cow() { "$COWROOT" --store "$S" "$@"; }

# ---- images ---------------------------------------------------------------------------------

# arm64 Image: "ARM\x64" at offset 56
arm64_image() { # FILE SIZE
	head -c "$2" /dev/urandom >"$1"
	printf 'ARM\x64' | dd of="$1" bs=1 seek=56 conv=notrunc status=none
}
# 32-bit zImage: 0x016f2818 (little-endian) at offset 0x24
zimage() { # FILE SIZE
	head -c "$2" /dev/urandom >"$1"
	printf '\x18\x28\x6f\x01' | dd of="$1" bs=1 seek=36 conv=notrunc status=none
}

KV=6.1.0-28-arm64
D=$T/deb
mkdir -p "$D/boot/firmware/overlays" "$D/etc" "$D/usr/bin" "$D/usr/lib/linux-image-$KV/broadcom"
arm64_image "$D/boot/vmlinuz-$KV" 3000000
head -c 2000000 /dev/urandom >"$D/boot/initrd.img-$KV"
ln -s "boot/vmlinuz-$KV" "$D/vmlinuz"
ln -s "boot/initrd.img-$KV" "$D/initrd.img"
echo "root:secret:19000:0:99999:7:::" >"$D/etc/shadow"
echo binary >"$D/usr/bin/tool"
ln -s /etc/shadow "$D/boot/firmware/shadow-link"
ln -s ../../etc/shadow "$D/boot/climb-link"
head -c 30000 /dev/urandom >"$D/usr/lib/linux-image-$KV/broadcom/bcm2711-rpi-4-b.dtb"
# the Pi boot partition tree, as Debian's raspi-firmware and Raspberry Pi OS lay it out
for f in start4.elf fixup4.dat bcm2711-rpi-4-b.dtb kernel8.img initramfs8 overlays/overlay_map.dtb \
	overlays/vc4-kms-v3d-pi4.dtbo bootcode.bin start.elf fixup.dat; do
	head -c $((1000 + RANDOM)) /dev/urandom >"$D/boot/firmware/$f"
done
printf 'arm_64bit=1\nenable_uart=1\ndtoverlay=vc4-kms-v3d-pi4\n' >"$D/boot/firmware/config.txt"
echo "console=serial0,115200 root=/dev/mmcblk0p2 rootwait" >"$D/boot/firmware/cmdline.txt"

P=$T/pi32
mkdir -p "$P/boot/firmware" "$P/etc"
zimage "$P/boot/firmware/kernel7l.img" 700000
head -c 500000 /dev/urandom >"$P/boot/firmware/initramfs7l"
for f in bootcode.bin start.elf fixup.dat bcm2710-rpi-3-b.dtb; do
	head -c $((1000 + RANDOM)) /dev/urandom >"$P/boot/firmware/$f"
done
echo "kernel=kernel7l.img" >"$P/boot/firmware/config.txt"

G=$T/gz
mkdir -p "$G/boot"
arm64_image "$T/Image" 900000
gzip -c "$T/Image" >"$G/boot/vmlinuz-6.6.0-gz"
head -c 1000 /dev/urandom >"$G/boot/initrd.img-6.6.0-gz"

E=$T/empty
mkdir -p "$E/etc"
echo empty >"$E/etc/hostname"

cow init >/dev/null &&
	cow image import deb "$D" >/dev/null && cow image import pi32 "$P" >/dev/null &&
	cow image import gz "$G" >/dev/null && cow image import empty "$E" >/dev/null &&
	cow client add pi1 --image deb --ip 127.0.0.1 --serial 9FFEFDEF --mac dc:a6:32:01:36:c2 >/dev/null &&
	cow client set pi1 --boot-args "console=ttyAMA0 quiet" >/dev/null &&
	cow client add pi2 --image deb --ip 127.0.0.2 --serial 12345678 >/dev/null &&
	cow client add pi3 --image pi32 --ip 127.0.0.3 --serial 00000003 --mac b8:27:eb:00:00:03 >/dev/null &&
	cow client add pi4 --image gz --ip 127.0.0.4 --serial 0000aaaa >/dev/null &&
	cow client add pi5 --image empty --ip 127.0.0.5 --serial 0000bbbb >/dev/null &&
	cow client add pi6 --image deb --ip ::1 --mac 02:00:00:00:00:06 >/dev/null &&
	cow client add kiosk --image deb --ip 127.0.0.6 --serial 0000c1c1 >/dev/null &&
	for i in $(seq 10 33); do
		cow client add "room$i" --image deb --ip "127.0.1.$i" --serial "000100$i" >/dev/null || exit 1
	done ||
	{
		bad "store fixture"
		finish
	}

"$COWROOT" --store "$S" tftp serve --boot --boot-gap 3 --port "$PORT" >"$T/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
	grep -q "serving" "$T/server.log" && break
	sleep 0.05
done
grep -q "serving" "$T/server.log" || {
	cat "$T/server.log"
	bad "the server starts"
	finish
}

mkdir -p "$T/out"
# get FROM PATH OUT: fetch PATH from source address FROM (curl exits 68
# for "file not found", 69 for "access violation")
get() {
	rm -f "$3"
	local host=127.0.0.1
	case $1 in *:*) host="[::1]" ;; esac
	curl -sS --tftp-blksize 1468 --interface "$1" "tftp://$host:$PORT/$2" -o "$3" 2>"$3.err"
}
# refused FROM PATH CODE: fetching PATH from FROM fails with curl's exit CODE
refused() {
	get "$1" "$2" "$T/out/refused"
	local rc=$?
	[ "$rc" = "$3" ] || {
		echo "'$2' from $1: curl exit $rc, want $3 ($(cat "$T/out/refused.err"))"
		return 1
	}
}
# same FILE1 FILE2: identical content
same() {
	[ -f "$2" ] || { echo "no file '$2' fetched"; return 1; }
	cmp -s "$1" "$2" || { echo "'$2' differs from '$1' ($(stat -c %s "$2") vs $(stat -c %s "$1") bytes)"; return 1; }
}
# body SCR OUT: the script text of script image SCR (64-byte header, one length word, a zero word)
body() { tail -c +73 "$1" >"$2"; }
logged() { grep -q -- "$1" "$T/server.log" || { echo "no log line with '$1'"; return 1; }; }

# ---- the u-boot script -----------------------------------------------------------------------

t_script_forms() {
	local f n=0
	for f in netboot-9ffefdef.scr netboot-9FFEFDEF.scr netboot-000000009ffefdef.scr \
		netboot-dc:a6:32:01:36:c2.scr netboot-DC-A6-32-01-36-C2.scr; do
		n=$((n + 1))
		get 127.0.0.1 "$f" "$T/out/s$n.scr" || { echo "$f: $(cat "$T/out/s$n.scr.err")"; return 1; }
		mkimage -l "$T/out/s$n.scr" | grep -q "Script" || { echo "$f is not a script image"; return 1; }
		body "$T/out/s$n.scr" "$T/out/s$n.txt"
		cmp -s "$T/out/s1.txt" "$T/out/s$n.txt" || { echo "$f differs from netboot-9ffefdef.scr"; return 1; }
	done
	logged "pi1 'netboot-DC-A6-32-01-36-C2.scr': sent"
}
check "netboot-<serial>.scr and netboot-<MAC>.scr in every spelling: one script image of pi1" t_script_forms
cp "$T/out/s1.txt" "$T/pi1.txt"
t_script_text() {
	local s=$T/pi1.txt
	grep -qx 'setenv bootargs "root=/dev/nfs nfsroot=127.0.0.1:/clients/pi1,vers=3,tcp rw ip=dhcp boot=nfs console=ttyAMA0 quiet"' "$s" &&
		grep -qx "if tftpboot \${kernel_addr_r} 9ffefdef/boot/vmlinuz-$KV; then" "$s" &&
		grep -qx "if tftpboot \${ramdisk_addr_r} 9ffefdef/boot/initrd.img-$KV; then" "$s" &&
		grep -qx 'booti ${kernel_addr_r} ${ramdisk_addr_r}:${cow_rd_size} ${cow_fdt}' "$s" &&
		grep -qx 'setenv cow_fdt ${fdt_addr}' "$s" && ! grep -q kernel_comp "$s" && ! grep -q fdt_addr_r "$s" ||
		{ cat "$s"; return 1; }
	# the script mkimage makes of that text is the one served (but for the time stamp)
	mkimage -A arm64 -O linux -T script -C none -n pi1 -d "$s" "$T/out/ref.scr" >/dev/null &&
		cmp -s <(tail -c +33 "$T/out/ref.scr") <(tail -c +33 "$T/out/s1.scr") ||
		{ echo "differs from mkimage's"; return 1; }
}
check "the script: nfsroot to the server's address, boot args, the kernel and initramfs of its root, booti, \${fdt_addr}" t_script_text
t_script_files() {
	get 127.0.0.1 "9ffefdef/boot/vmlinuz-$KV" "$T/out/k" && same "$D/boot/vmlinuz-$KV" "$T/out/k" &&
		get 127.0.0.1 "9ffefdef/boot/initrd.img-$KV" "$T/out/i" && same "$D/boot/initrd.img-$KV" "$T/out/i" &&
		get 127.0.0.1 "dc-a6-32-01-36-c2/vmlinuz" "$T/out/k2" && same "$D/boot/vmlinuz-$KV" "$T/out/k2" &&
		get 127.0.0.1 "9ffefdef/initrd.img" "$T/out/i2" && same "$D/boot/initrd.img-$KV" "$T/out/i2" &&
		logged "pi1 '9ffefdef/boot/vmlinuz-$KV': sent, 3000000 bytes"
}
check "the files the script names come from pi1's root (and /vmlinuz, /initrd.img too)" t_script_files

# ---- who may fetch what ---------------------------------------------------------------------

t_own_addresses() {
	refused 127.0.0.2 netboot-9ffefdef.scr 69 && refused 127.0.0.1 netboot-12345678.scr 69 &&
		refused 127.0.0.2 "9ffefdef/boot/vmlinuz-$KV" 69 && refused 127.0.0.1 12345678/start4.elf 69 &&
		logged "127.0.0.2 is not one of client pi1's addresses (127.0.0.1)" &&
		get 127.0.0.2 netboot-12345678.scr "$T/out/pi2.scr" && body "$T/out/pi2.scr" "$T/out/pi2.txt" &&
		grep -q "nfsroot=127.0.0.1:/clients/pi2," "$T/out/pi2.txt" &&
		grep -q "tftpboot \${kernel_addr_r} 12345678/boot/vmlinuz-$KV" "$T/out/pi2.txt"
}
check "a client's files go to its own address only; pi2 gets its own script" t_own_addresses
t_unknown() {
	refused 127.0.0.1 netboot-87654321.scr 68 && refused 127.0.0.1 netboot-02:00:00:00:00:99.scr 68 &&
		refused 127.0.0.1 netboot-nonsense.scr 68 &&
		logged "no client has serial 87654321 (cowroot client set NAME --serial 87654321)" &&
		logged "no client has MAC 02:00:00:00:00:99 (cowroot client set NAME --mac 02:00:00:00:00:99)"
}
check "an unknown serial or MAC is not found, and the log says how to add it" t_unknown
t_confined() {
	refused 127.0.0.1 9ffefdef/etc/shadow 68 && refused 127.0.0.1 9ffefdef/shadow-link 69 &&
		refused 127.0.0.1 9ffefdef/boot/climb-link 69 && refused 127.0.0.1 9ffefdef/usr/bin/tool 69 &&
		refused 127.0.0.1 etc/shadow 68 &&
		tftp 127.0.0.1 "$PORT" -m binary -c get 9ffefdef/../../etc/shadow "$T/out/dotdot" 2>&1 |
		grep -q "Error code 2: access violation" &&
		get 127.0.0.1 "9ffefdef/usr/lib/linux-image-$KV/broadcom/bcm2711-rpi-4-b.dtb" "$T/out/dtb" &&
		same "$D/usr/lib/linux-image-$KV/broadcom/bcm2711-rpi-4-b.dtb" "$T/out/dtb" &&
		! grep -rq "root:secret" "$T/out"
}
check "only boot files: /etc, /usr/bin and symlinks out of /boot are refused, the dtbs of /usr/lib/linux-image-* served" t_confined

# ---- the Raspberry Pi's own network boot -------------------------------------------------------

# What a Pi 4's EEPROM bootloader and then its start4.elf ask for, in order,
# as their TFTP logs show them; the '-' ones do not exist on a stock boot
# partition and must be "file not found" (the firmware then goes on).
PI4_FILES="start4.elf config.txt -pieeprom.sig -recover4.elf -recovery.elf start4.elf fixup4.dat
-recovery.elf config.txt -dt-blob.bin -recovery.elf config.txt -bootcfg.txt bcm2711-rpi-4-b.dtb
overlays/overlay_map.dtb overlays/vc4-kms-v3d-pi4.dtbo cmdline.txt -recovery8.img -recovery8.img
-recovery.img -armstub8-gic.bin kernel8.img initramfs8"
pi4_boot() { # PREFIX
	local f n=0
	for f in $PI4_FILES; do
		n=$((n + 1))
		case $f in
		-*) refused 127.0.0.1 "$1/${f#-}" 68 || return 1 ;;
		cmdline.txt)
			get 127.0.0.1 "$1/$f" "$T/out/cmdline" || return 1
			echo "root=/dev/nfs nfsroot=127.0.0.1:/clients/pi1,vers=3,tcp rw ip=dhcp boot=nfs console=ttyAMA0 quiet" |
				cmp -s - "$T/out/cmdline" || { echo "cmdline.txt: $(cat "$T/out/cmdline")"; return 1; }
			;;
		*) get 127.0.0.1 "$1/$f" "$T/out/pi4.$n" && same "$D/boot/firmware/$f" "$T/out/pi4.$n" || return 1 ;;
		esac
	done
}
t_pi4_serial() { pi4_boot 9ffefdef && logged "pi1 '9ffefdef/kernel8.img': sent"; }
check "Pi 4 bootloader by serial: every file in its order from /boot/firmware, cmdline.txt written by cowroot" t_pi4_serial
t_pi4_mac() { pi4_boot dc-a6-32-01-36-c2; }
check "Pi 4 bootloader by MAC prefix (TFTP_PREFIX=2): the same" t_pi4_mac
t_pi3() {
	# the Pi 3 boot ROM asks for bootcode.bin with no prefix: served by address
	get 127.0.0.3 bootcode.bin "$T/out/bc" && same "$P/boot/firmware/bootcode.bin" "$T/out/bc" &&
		get 127.0.0.3 00000003/start.elf "$T/out/st" && same "$P/boot/firmware/start.elf" "$T/out/st" &&
		get 127.0.0.3 00000003/cmdline.txt "$T/out/c3" &&
		grep -qx "root=/dev/nfs nfsroot=127.0.0.1:/clients/pi3,vers=3,tcp rw ip=dhcp boot=nfs" "$T/out/c3" &&
		refused 127.0.0.9 bootcode.bin 68 && logged "no client has the address 127.0.0.9"
}
check "Pi 3: unprefixed bootcode.bin for the client of that address, then <serial>/start.elf" t_pi3

# ---- kernels of every kind ------------------------------------------------------------------------

t_bootz() {
	get 127.0.0.3 netboot-00000003.scr "$T/out/pi3.scr" && body "$T/out/pi3.scr" "$T/out/pi3.txt" &&
		mkimage -l "$T/out/pi3.scr" | grep -q "ARM Linux Script" &&
		grep -qx "if tftpboot \${kernel_addr_r} 00000003/boot/firmware/kernel7l.img; then" "$T/out/pi3.txt" &&
		grep -qx "if tftpboot \${ramdisk_addr_r} 00000003/boot/firmware/initramfs7l; then" "$T/out/pi3.txt" &&
		grep -qx 'bootz ${kernel_addr_r} ${ramdisk_addr_r}:${cow_rd_size} ${cow_fdt}' "$T/out/pi3.txt" ||
		{ cat "$T/out/pi3.txt"; return 1; }
}
check "a 32-bit zImage (kernel7l.img, initramfs7l): bootz, an ARM script" t_bootz
t_compressed() {
	local size
	size=$(printf '0x%x' "$(stat -c %s "$G/boot/vmlinuz-6.6.0-gz")")
	get 127.0.0.4 netboot-0000aaaa.scr "$T/out/pi4.scr" && body "$T/out/pi4.scr" "$T/out/pi4.txt" &&
		grep -qx "setenv kernel_comp_size $size" "$T/out/pi4.txt" &&
		grep -q 'setexpr kernel_comp_addr_r ${ramdisk_addr_r} + 0x4000000' "$T/out/pi4.txt" &&
		grep -qx 'booti ${kernel_addr_r} ${ramdisk_addr_r}:${cow_rd_size} ${cow_fdt}' "$T/out/pi4.txt" &&
		grep -q "0000aaaa/boot/vmlinuz-6.6.0-gz" "$T/out/pi4.txt" || { cat "$T/out/pi4.txt"; return 1; }
}
check "a compressed Image: kernel_comp_addr_r and kernel_comp_size (its size) for booti" t_compressed
t_nokernel() {
	get 127.0.0.5 netboot-0000bbbb.scr "$T/out/pi5.scr" && body "$T/out/pi5.scr" "$T/out/pi5.txt" &&
		grep -q 'echo "cowroot: client pi5 cannot boot: no kernel in its root' "$T/out/pi5.txt" &&
		! grep -q tftpboot "$T/out/pi5.txt" && logged "pi5.*no kernel"
}
check "no kernel: a script that says so on the console, and a log line" t_nokernel
t_dtb() {
	cow client set pi2 --dtb "/usr/lib/linux-image-$KV/broadcom/bcm2711-rpi-4-b.dtb" >/dev/null &&
		get 127.0.0.2 netboot-12345678.scr "$T/out/d.scr" && body "$T/out/d.scr" "$T/out/d.txt" &&
		grep -q 'if test -z "${fdt_addr_r}"; then setexpr fdt_addr_r' "$T/out/d.txt" &&
		grep -qx "if tftpboot \${fdt_addr_r} 12345678/usr/lib/linux-image-$KV/broadcom/bcm2711-rpi-4-b.dtb; then" "$T/out/d.txt" &&
		grep -qx 'setenv cow_fdt ${fdt_addr_r}' "$T/out/d.txt" || { cat "$T/out/d.txt"; return 1; }
	cow client set pi2 --dtb /boot/nothere.dtb >/dev/null &&
		get 127.0.0.2 netboot-12345678.scr "$T/out/d2.scr" && body "$T/out/d2.scr" "$T/out/d2.txt" &&
		grep -q "cannot boot: its device tree" "$T/out/d2.txt" || { cat "$T/out/d2.txt"; return 1; }
	cow client set pi2 --dtb none >/dev/null && get 127.0.0.2 netboot-12345678.scr "$T/out/d3.scr" &&
		body "$T/out/d3.scr" "$T/out/d3.txt" && ! grep -q fdt_addr_r "$T/out/d3.txt"
}
check "client set --dtb: the script loads that device tree of its root; a missing one says so; none: \${fdt_addr}" t_dtb
t_ipv6() {
	get ::1 netboot-02:00:00:00:00:06.scr "$T/out/v6.scr" && body "$T/out/v6.scr" "$T/out/v6.txt" &&
		grep -q "nfsroot=\[::1\]:/clients/pi6," "$T/out/v6.txt" &&
		get ::1 "02-00-00-00-00-06/boot/vmlinuz-$KV" "$T/out/v6k" && same "$D/boot/vmlinuz-$KV" "$T/out/v6k"
}
check "IPv6: a client on ::1 gets its script and kernel" t_ipv6

# ---- each client boots the kernel of its own root ----------------------------------------------

t_own_kernel() {
	mkdir -p "$T/mnt"
	"$COWROOT" --store "$S" mount pi1 "$T/mnt" -f >"$T/mount.log" 2>&1 &
	mnt_pid=$!
	for _ in $(seq 1 200); do mountpoint -q "$T/mnt" && break; sleep 0.05; done
	mountpoint -q "$T/mnt" || { cat "$T/mount.log"; return 1; }
	arm64_image "$T/mnt/boot/vmlinuz-6.1.0-29-arm64" 3100000
	head -c 2100000 /dev/urandom >"$T/mnt/boot/initrd.img-6.1.0-29-arm64"
	ln -sfn boot/vmlinuz-6.1.0-29-arm64 "$T/mnt/vmlinuz"
	ln -sfn boot/initrd.img-6.1.0-29-arm64 "$T/mnt/initrd.img"
	cp "$T/mnt/boot/vmlinuz-6.1.0-29-arm64" "$T/new-kernel"
	# an fsync commits what the mount did before it, the symlinks included
	sync "$T/mnt/boot/vmlinuz-6.1.0-29-arm64"
	# served while the mount holds the layer: what it committed
	get 127.0.0.1 netboot-9ffefdef.scr "$T/out/n.scr" && body "$T/out/n.scr" "$T/out/n.txt" &&
		grep -qx "if tftpboot \${kernel_addr_r} 9ffefdef/boot/vmlinuz-6.1.0-29-arm64; then" "$T/out/n.txt" &&
		grep -qx "if tftpboot \${ramdisk_addr_r} 9ffefdef/boot/initrd.img-6.1.0-29-arm64; then" "$T/out/n.txt" ||
		{ cat "$T/out/n.txt"; return 1; }
	fusermount3 -u "$T/mnt" && wait "$mnt_pid"
	mnt_pid=
	get 127.0.0.1 9ffefdef/boot/vmlinuz-6.1.0-29-arm64 "$T/out/nk" && same "$T/new-kernel" "$T/out/nk" &&
		get 127.0.0.2 netboot-12345678.scr "$T/out/o.scr" && body "$T/out/o.scr" "$T/out/o.txt" &&
		grep -q "12345678/boot/vmlinuz-$KV" "$T/out/o.txt" || { echo "pi2 changed"; return 1; }
}
check "a kernel installed in pi1's layer is the one its script boots; pi2 keeps the image's" t_own_kernel
t_rebase() {
	cow client snapshot pi1 deb@2 >/dev/null && cow client rebase pi2 --onto deb@2 >/dev/null &&
		get 127.0.0.2 netboot-12345678.scr "$T/out/r.scr" && body "$T/out/r.scr" "$T/out/r.txt" &&
		grep -q "12345678/boot/vmlinuz-6.1.0-29-arm64" "$T/out/r.txt" &&
		get 127.0.0.2 12345678/vmlinuz "$T/out/rk" && same "$T/new-kernel" "$T/out/rk"
}
check "snapshot pi1 as an image, rebase pi2 on it: pi2 boots the new kernel" t_rebase

t_room() {
	# a classroom powering on: 24 clients fetch script, kernel and initramfs at once
	local i pids=() bad=0
	for i in $(seq 10 33); do
		(get "127.0.1.$i" "netboot-000100$i.scr" "$T/out/room$i.scr" &&
			get "127.0.1.$i" "000100$i/boot/vmlinuz-$KV" "$T/out/room$i.k" &&
			get "127.0.1.$i" "000100$i/boot/initrd.img-$KV" "$T/out/room$i.i") &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
	for i in $(seq 10 33); do
		body "$T/out/room$i.scr" "$T/out/room$i.txt"
		grep -q "nfsroot=127.0.0.1:/clients/room$i," "$T/out/room$i.txt" &&
			same "$D/boot/vmlinuz-$KV" "$T/out/room$i.k" >/dev/null &&
			same "$D/boot/initrd.img-$KV" "$T/out/room$i.i" >/dev/null || bad=$((bad + 1))
	done
	[ "$bad" = 0 ] || { echo "$bad of 24 clients failed"; return 1; }
}
check "24 clients at once, each its own script, kernel and initramfs" t_room

# mount_client NAME: its view at $T/mnt (pid in $mnt_pid); umount_client
mount_client() {
	mkdir -p "$T/mnt"
	"$COWROOT" --store "$S" mount "$1" "$T/mnt" -f >"$T/mount.log" 2>&1 &
	mnt_pid=$!
	for _ in $(seq 1 200); do mountpoint -q "$T/mnt" && break; sleep 0.05; done
	mountpoint -q "$T/mnt" || { cat "$T/mount.log"; return 1; }
}
umount_client() {
	fusermount3 -u "$T/mnt" && wait "$mnt_pid"
	mnt_pid=
}
t_on_boot_reset() {
	cow client set kiosk --on-boot reset | grep -q "starts every boot from its image" || return 1
	cow client list --json | grep -q '"name":"kiosk".*"on_boot":"reset"' || return 1
	get 127.0.0.6 netboot-0000c1c1.scr "$T/out/k1.scr" || return 1 # its first boot
	sleep 3.2
	# the kiosk's user leaves something behind
	mount_client kiosk || return 1
	echo "left by the last user" >"$T/mnt/boot/firmware/left.txt"
	sync "$T/mnt/boot/firmware/left.txt"
	# a boot begins while a mount holds the layer: nothing can be served
	get 127.0.0.6 netboot-0000c1c1.scr "$T/out/k2.scr" && { echo "served while the layer could not be reset"; return 1; }
	logged "client kiosk: a boot began from 127.0.0.6, but cannot reset its layer" || return 1
	umount_client || return 1
	# the next try resets and serves; within the boot, no second reset
	get 127.0.0.6 0000c1c1/start4.elf "$T/out/k3" || { cat "$T/out/k3.err"; return 1; }
	logged "client kiosk: a boot began from 127.0.0.6 ('0000c1c1/start4.elf'); its layer was reset" || return 1
	refused 127.0.0.6 0000c1c1/left.txt 68 || return 1
	mount_client kiosk || return 1
	[ ! -e "$T/mnt/boot/firmware/left.txt" ] || { echo "the reset left the file"; umount_client; return 1; }
	echo "during this boot" >"$T/mnt/boot/firmware/during.txt"
	sync "$T/mnt/boot/firmware/during.txt"
	umount_client || return 1
	get 127.0.0.6 0000c1c1/during.txt "$T/out/k4" && grep -q "during this boot" "$T/out/k4" || return 1
	[ "$(grep -c "client kiosk: a boot began" "$T/server.log")" = 3 ] || { grep "client kiosk" "$T/server.log"; return 1; }
	# a client that keeps its layer: boots are logged, nothing reset
	cow client set kiosk --on-boot keep >/dev/null && sleep 3.2 && get 127.0.0.6 0000c1c1/during.txt "$T/out/k5" &&
		grep -q "during this boot" "$T/out/k5"
}
check "--on-boot reset: a boot's first request resets the layer (refused while a mount holds it); keep keeps it" t_on_boot_reset

t_rate() {
	local i before after
	before=$(grep -c "87654321" "$T/server.log")
	for i in $(seq 1 20); do refused 127.0.0.2 netboot-87654321.scr 68 >/dev/null; done
	after=$(grep -c "87654321" "$T/server.log")
	[ $((after - before)) -le 5 ] || { echo "$((after - before)) lines for 20 refusals"; return 1; }
}
check "20 requests of an unknown serial from one address: answered, at most 5 log lines a minute" t_rate

kill "$server" && wait "$server"
stop_rc=$?
server=
t_stop() {
	[ "$stop_rc" = 0 ] && ! grep -q "Sanitizer" "$T/server.log" ||
		{ echo "exit $stop_rc"; tail -n 30 "$T/server.log"; return 1; }
}
check "the server stops cleanly on SIGTERM (and, under ASan, with nothing to report)" t_stop

finish
