#!/bin/bash
# netboot: a real Linux NFS client boots a Debian root from a cowroot export.
#
# QEMU (no KVM needed) runs Debian bookworm's kernel with an initramfs made
# by Debian's initramfs-tools for an NFS root (bootkit.sh builds and caches
# both); its stock klibc nfsmount mounts /clients/pi1 over NFSv3/TCP from
# `cowroot serve` (ganesha with the COWROOT FSAL), asking rpcbind on port
# 111 for the MOUNT port, as a netbooting Pi would.  The root is the cached
# debootstrap minbase tree imported as an image; it has no systemd, so the
# kernel runs a small init placed in the client's layer (through a FUSE
# mount) that writes files (one fsync'd), makes a hard link, changes and
# removes image files, installs a real package with dpkg, records what the
# guest saw, syncs and powers off.
# Midway the test restarts the server: the guest's open file, current
# directory and inode numbers must survive it.  A second guest from the
# same address asks for pi2's root and must be refused.  Then, with the
# server stopped, `cowroot client diff` and FUSE mounts of the clients must
# show exactly what the guest did to pi1 and nothing to pi2, on the same
# image.
#
# Networking: everything runs in private network/mount/pid namespaces (the
# script re-executes itself under unshare).  QEMU's user-mode network gives
# the guest 10.0.2.15 and makes the server reachable as 10.0.2.2; the
# guest's connections arrive from 127.0.0.1, which is pi1's address.
#
# Env: COWROOT, COW_FSAL          the built cowroot CLI and libfsalcowroot.so
#      COW_FIXTURE_CACHE          fixture cache (default /var/cache/cowroot-test)
#      COW_BOOT_TIMEOUT           seconds the guest may take (default 300)
#      COW_QEMU_ACCEL             QEMU accelerator (default tcg)
#      COW_KEEP=1                 keep the temp dir (store, console log)
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

# shellcheck source=tests/netboot/netboot-lib.sh
. "$here/netboot-lib.sh"

if [ -z "${COW_NETBOOT_INNER:-}" ]; then
	netboot_outer_checks
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is missing (install qemu-system-x86)"
	netboot_kit "$here/bootkit.sh" "the boot kit"
	netboot_reexec "$@"
fi

# ---- inside the namespaces ---------------------------------------------------------------------

netboot_inner_setup

cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
minbase=$cache/minbase
kit=$COW_KIT
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-netboot.XXXXXX")
store=$tmp/store
mnt=$tmp/mnt
console=$tmp/console.log
serve_pid=
qemu_pid=
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
	netboot_cleanup_common
}
trap cleanup EXIT
cow() { "$COWROOT" --store "$store" "$@"; }
mount_client() { mkdir -p "$mnt" && cow mount "$1" "$mnt"; }
umount_client() { fusermount3 -u "$mnt"; }

# ---- the store: the minbase image, pi1 (the guest) and pi2 on the same image ----
check "create a store" cow init
check "import the minbase tree as image bookworm" cow image import bookworm "$minbase"
check "add client pi1 at 127.0.0.1" cow client add pi1 --image bookworm --ip 127.0.0.1
check "add client pi2 at 127.0.0.2" cow client add pi2 --image bookworm --ip 127.0.0.2
[ "$failed" = 0 ] || finish

# The guest's init, written into pi1's layer.  Markers go to the console;
# results go to /cowroot-test for the checks after power-off.
write_init() {
	mount_client pi1 || return 1
	cat >"$mnt/cowroot-test-init" <<'EOF'
#!/bin/sh
# cowroot netboot test: pid 1 on the NFS root
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
say() { echo "cowroot-test-init: $*" >/dev/console; }
say start
[ -r /proc/mounts ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
d=/cowroot-test
mkdir $d || say "FAIL mkdir $d"
uname -r >$d/uname
grep ' / ' /proc/mounts >$d/rootmount
echo "written by the guest" >$d/plain
seq 1 200000 | dd of=$d/synced bs=64k conv=fsync 2>/dev/null || say "FAIL fsync"
ln $d/plain $d/hardlink || say "FAIL link"
ls -i /etc/debian_version >$d/image-ino
ls -i $d/plain $d/hardlink >$d/link-ino
echo cowroot-guest >/etc/hostname
rm /etc/issue.net
# a real package: dpkg unpacks, renames into place, fsyncs its database,
# runs the postinst (update-alternatives symlinks)
dpkg -i /cowroot-test-less.deb >$d/dpkg.log 2>&1 || say "FAIL dpkg -i"
dpkg --verify less >$d/dpkg-verify 2>&1 || say "FAIL dpkg --verify"
# The test restarts the server during this sleep; the root stays mounted
# (a hard mount waits for the server), and what was open or looked up
# before must still work after it, with the same inode numbers.
cd $d || say "FAIL cd $d"
exec 3<plain
say "restart the server"
sleep 10
say "after the restart"
read -r line <&3 && [ "$line" = "written by the guest" ] || say "FAIL read through a file opened before the restart"
exec 3<&-
ls -i plain >link-ino.after || say "FAIL lookup in the current directory after the restart"
ls -i /etc/debian_version >image-ino.after || say "FAIL lookup after the restart"
seq 1 200000 | cmp - synced || say "FAIL read after the restart"
echo "after the restart" >$d/after-restart || say "FAIL write after the restart"
pager --version >$d/pager-version || say "FAIL run the installed pager after the restart"
sync
say "root: $(cat $d/rootmount)"
say done
echo o >/proc/sysrq-trigger
sleep 60
EOF
	chmod 755 "$mnt/cowroot-test-init" && cp "$kit/less.deb" "$mnt/cowroot-test-less.deb" && umount_client
}
check "write the test init into pi1's layer (FUSE)" write_init
[ "$failed" = 0 ] || finish

# ---- serve and boot ----
# QEMU's user-mode NAT gives the guest's connections source ports above
# 1023, which the exports refuse by default
serve_args=(--server 10.0.2.2 --allow-unprivileged-ports)
start_server "${serve_args[@]}" || finish
ok "cowroot serve is up"
check "serve prints pi1's nfsroot line" \
	grep -q '^pi1 (127.0.0.1): root=/dev/nfs nfsroot=10.0.2.2:/clients/pi1,vers=3,tcp rw ip=dhcp boot=nfs$' "$tmp/serve.out"

# TCG unless asked: a /dev/kvm on these machines may exist and hang
accel=${COW_QEMU_ACCEL:-tcg}
timeout=${COW_BOOT_TIMEOUT:-300}
# start_guest CONSOLE CLIENT [KERNEL ARGS...]: boot the kit's kernel with its
# root on /clients/CLIENT, the serial console in the file CONSOLE
start_guest() {
	local log=$1 client=$2
	shift 2
	qemu-system-x86_64 -machine "accel=$accel" -m 512 -display none -monitor none -serial "file:$log" \
		-no-reboot -kernel "$kit/vmlinuz" -initrd "$kit/initrd.img" \
		-append "console=ttyS0 root=/dev/nfs nfsroot=10.0.2.2:/clients/$client,vers=3,tcp ip=dhcp rw init=/cowroot-test-init panic=-1 $*" \
		-netdev user,id=n0 -device e1000,netdev=n0 >"$log.qemu" 2>&1 &
	qemu_pid=$!
}
# wait_guest CONSOLE: wait for QEMU to exit, up to the timeout; on time-out
# kill it, show the console's tail and fail; else qemu_rc is its status
wait_guest() {
	while [ "$SECONDS" -lt "$end" ] && kill -0 "$qemu_pid" 2>/dev/null; do
		sleep 0.2
	done
	if kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid"
		wait "$qemu_pid" 2>/dev/null
		qemu_pid=
		bad "the guest did not stop within $timeout s; console:"
		tail -n 40 "$1" | sed 's/^/#   /'
		return 1
	fi
	wait "$qemu_pid"
	qemu_rc=$?
	qemu_pid=
}

start_guest "$console" pi1
booted=0
restarted=0
end=$((SECONDS + timeout))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$qemu_pid" 2>/dev/null; do
	if [ "$restarted" = 0 ] && grep -qs '^cowroot-test-init: restart the server' "$console"; then
		restarted=1
		# the guest may go on while the server is down (its requests wait),
		# but not before the server went down
		if grep -q '^cowroot-test-init: after the restart' "$console"; then
			bad "the guest went on before the server was stopped: the restart is not tested"
		fi
		stop_server && start_server "${serve_args[@]}" &&
			ok "the server restarted while the guest had its root mounted"
	fi
	sleep 0.2
done
if wait_guest "$console"; then
	if [ "$qemu_rc" = 0 ] && grep -q '^cowroot-test-init: done' "$console"; then
		booted=1
		ok "the guest booted from /clients/pi1, ran its init and powered off"
	else
		bad "the guest stopped without finishing its init (qemu status $qemu_rc); console:"
		tail -n 40 "$console" | sed 's/^/#   /'
		sed 's/^/#   /' "$console.qemu"
	fi
fi
check "the guest reports no failed step" bash -c "! grep '^cowroot-test-init: FAIL' '$console'"
[ "$restarted" = 1 ] || bad "the guest never asked for the server restart"

# The same machine (127.0.0.1) asking for pi2's root is refused (MOUNT
# says permission denied): its initramfs gives up after rootdelay and
# reboots, which ends QEMU.
if [ -n "$serve_pid" ]; then
	start_guest "$tmp/stranger.log" pi2 rootdelay=3
	end=$((SECONDS + timeout))
	t_stranger() {
		cat "$tmp/stranger.log.qemu"
		grep -v '^\[' "$tmp/stranger.log" | grep -i 'mount' | tail -n 4
		! grep -q '^cowroot-test-init' "$tmp/stranger.log" &&
			grep -q 'mount call failed - server replied: Permission denied' "$tmp/stranger.log"
	}
	wait_guest "$tmp/stranger.log" && check "pi1's machine cannot mount pi2's root" t_stranger
fi

[ -n "$serve_pid" ] && stop_server && ok "cowroot serve stops cleanly"
[ "$booted" = 1 ] || finish

# ---- what the guest left behind ----
cow client diff pi1 >"$tmp/diff.pi1" 2>&1
# exactly these outside /usr and /var, where dpkg's changes are checked below
t_diff_pi1() {
	grep -v '^[a-z]* */usr/\|^[a-z]* */var/' "$tmp/diff.pi1" | diff -u - <(cat <<'EOF'
metadata  /
added     /cowroot-test/
added     /cowroot-test/after-restart
added     /cowroot-test/dpkg-verify
added     /cowroot-test/dpkg.log
added     /cowroot-test/hardlink
added     /cowroot-test/image-ino
added     /cowroot-test/image-ino.after
added     /cowroot-test/link-ino
added     /cowroot-test/link-ino.after
added     /cowroot-test/pager-version
added     /cowroot-test/plain
added     /cowroot-test/rootmount
added     /cowroot-test/synced
added     /cowroot-test/uname
added     /cowroot-test-init
added     /cowroot-test-less.deb
metadata  /etc/
metadata  /etc/alternatives/
modified  /etc/alternatives/pager
modified  /etc/alternatives/pager.1.gz
modified  /etc/hostname
deleted   /etc/issue.net
EOF
	) || return 1
	local want
	for want in 'added     /usr/bin/less' 'added     /var/lib/dpkg/info/less.list' 'modified  /var/lib/dpkg/status'; do
		grep -qxF "$want" "$tmp/diff.pi1" || { echo "missing: $want"; return 1; }
	done
}
check "client diff pi1 shows exactly what the guest wrote, changed and removed" t_diff_pi1
check "client diff pi2 shows no changes" bash -c "'$COWROOT' --store '$store' client diff pi2 | grep -qx \"client 'pi2' has no changes\""

if ! mount_client pi1; then
	bad "mount pi1 after the boot"
	finish
fi
d=$mnt/cowroot-test
check "the guest ran the image's kernel release" bash -c "[ \"\$(cat '$d/uname')\" = \"\$(cat '$kit/release')\" ]"
t_rootmount() {
	cat "$d/rootmount"
	grep -q '^10\.0\.2\.2:/clients/pi1 / nfs rw,.*vers=3' "$d/rootmount" &&
		grep -q 'proto=tcp' "$d/rootmount"
}
check "the guest's root was /clients/pi1 over NFSv3/TCP, read-write" t_rootmount
check "the guest's plain file" bash -c "[ \"\$(cat '$d/plain')\" = 'written by the guest' ]"
check "the guest's fsync'd file" cmp "$d/synced" <(seq 1 200000)
t_hardlink() {
	if [ "$(stat -c '%i %h' "$d/plain")" != "$(stat -c '%i %h' "$d/hardlink")" ] ||
		[ "$(stat -c %h "$d/plain")" != 2 ]; then
		stat "$d/plain" "$d/hardlink"
		return 1
	fi
	# the guest saw one inode for both names, and it is the one seen here
	local a b
	read -r a _ < <(sed -n 1p "$d/link-ino")
	read -r b _ < <(sed -n 2p "$d/link-ino")
	if [ "$a" != "$b" ] || [ "$a" != "$(stat -c %i "$d/plain")" ]; then
		cat "$d/link-ino"
		stat "$d/plain"
		return 1
	fi
}
check "the guest's hard link is one inode, with the same number over NFS and FUSE" t_hardlink
t_image_ino() {
	local guest here_ino
	read -r guest _ <"$d/image-ino"
	here_ino=$(stat -c %i "$mnt/etc/debian_version")
	echo "guest saw $guest, FUSE gives $here_ino"
	[ -n "$guest" ] && [ "$guest" = "$here_ino" ]
}
check "an image file's inode number over NFS equals its st_ino through FUSE" t_image_ino
t_same_after_restart() {
	local a b
	read -r a _ <"$d/image-ino"
	read -r b _ <"$d/image-ino.after"
	if [ -z "$a" ] || [ "$a" != "$b" ]; then
		echo "image file: $a before, $b after"
		return 1
	fi
	read -r a _ < <(sed -n 1p "$d/link-ino")
	read -r b _ <"$d/link-ino.after"
	if [ -z "$a" ] || [ "$a" != "$b" ]; then
		echo "guest's file: $a before, $b after"
		return 1
	fi
	[ "$(cat "$d/after-restart")" = "after the restart" ]
}
check "after the server restart the guest saw the same inode numbers and could write" t_same_after_restart
check "the guest's change to an image file" bash -c "[ \"\$(cat '$mnt/etc/hostname')\" = cowroot-guest ]"
check "the guest's removal of an image file" bash -c "! [ -e '$mnt/etc/issue.net' ]"
t_dpkg() {
	grep -q '^Setting up less ' "$d/dpkg.log" || { cat "$d/dpkg.log"; return 1; }
	[ ! -s "$d/dpkg-verify" ] || { cat "$d/dpkg-verify"; return 1; }
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	[ "$(chroot "$mnt" dpkg-query -W -f '${Status}' less)" = "install ok installed" ] || return 1
	[ -z "$(chroot "$mnt" dpkg --verify less)" ] || return 1
	dpkg-deb --fsys-tarfile "$kit/less.deb" | tar -xOf - ./usr/bin/less | cmp - "$mnt/usr/bin/less" || return 1
	[ "$(readlink "$mnt/etc/alternatives/pager")" = /usr/bin/less ] || { ls -l "$mnt/etc/alternatives/pager"; return 1; }
	grep -q '^less ' "$d/pager-version" || { cat "$d/pager-version"; return 1; }
}
check "the guest installed less with dpkg; it verifies here and ran after the restart" t_dpkg
check "unmount pi1" umount_client

if mount_client pi2; then
	check "pi2 has none of pi1's files" bash -c "! [ -e '$mnt/cowroot-test' ] && ! [ -e '$mnt/cowroot-test-init' ]"
	check "pi2 has the image's /etc/hostname" cmp "$minbase/etc/hostname" "$mnt/etc/hostname"
	check "pi2 has the image's /etc/issue.net" cmp "$minbase/etc/issue.net" "$mnt/etc/issue.net"
	check "unmount pi2" umount_client
else
	bad "mount pi2"
fi
finish
