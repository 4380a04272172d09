#!/bin/bash
# Build, once, the arm64 Debian root the u-boot netboot test boots: Debian
# bookworm made with `debootstrap --arch=arm64` (its second stage runs under
# qemu-user-static through binfmt_misc), with systemd-sysv, udev,
# linux-image-arm64 and an initramfs made by Debian's initramfs-tools for an
# NFS root (BOOT=nfs, MODULES=netboot, configured before the kernel is
# installed, so the initramfs its postinst makes is the NFS one).  Nothing
# in it configures the network: the interface the root is mounted over is
# left as the initramfs set it up (no ifupdown, NetworkManager or networkd).
#
# The tree is kept as debootstrap and dpkg made it (owners, modes, xattrs),
# ready for `cowroot image import`, with the kernel release, in
#   ${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}/arm64/{root/,release}
# and is rebuilt only when missing.  Needs root, qemu-user-static and, for
# the first build, Debian's package mirror.  When qemu-aarch64 is not
# registered with binfmt_misc the script registers it from
# /usr/lib/binfmt.d/qemu-aarch64.conf (mounting binfmt_misc if needed).
#
# Exit: 0 the kit is there (its directory is printed on the last line),
#       77 it cannot be made on this machine (reason printed), 1 failure.
set -u
export LC_ALL=C

cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
kit=$cache/arm64
mirror=${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
binfmt=/proc/sys/fs/binfmt_misc
binfmt_conf=/usr/lib/binfmt.d/qemu-aarch64.conf

here=$(cd "$(dirname "$0")" && pwd)
skip() {
	echo "SKIP: $*"
	exit 77
}
# shellcheck source=tests/minbase.sh
. "$here/../minbase.sh"
have_kit() { [ -s "$kit/release" ] && [ -x "$kit/root/usr/bin/dpkg" ] && [ -e "$kit/root/vmlinuz" ] && [ -e "$kit/root/initrd.img" ]; }

kit_begin "the arm64 kit" "$cache/arm64.lock"
command -v debootstrap >/dev/null || skip "no cached arm64 kit and no debootstrap (install debootstrap)"
mirror_reachable "$mirror" || skip "no cached arm64 kit in $kit and no network to build it"

# binfmt_misc_aarch64: make the kernel run arm64 binaries through
# qemu-aarch64 with the F flag (the interpreter opened now, so that it
# works inside the chroot, where it does not exist).
binfmt_misc_aarch64() {
	local entry=$binfmt/qemu-aarch64 interp
	if [ -e "$entry" ]; then
		grep -qx enabled "$entry" || skip "binfmt_misc has qemu-aarch64 registered but disabled ($entry)"
		grep -q '^flags:.*F' "$entry" ||
			skip "binfmt_misc has qemu-aarch64 registered without the F flag: a chroot cannot run it ($entry)"
		return 0
	fi
	[ -r "$binfmt_conf" ] || skip "qemu-aarch64 is not registered with binfmt_misc and $binfmt_conf is missing (install qemu-user-static)"
	interp=$(awk -F: '{print $7}' "$binfmt_conf")
	[ -x "$interp" ] || skip "the interpreter $interp named in $binfmt_conf is missing (install qemu-user-static)"
	if [ ! -e "$binfmt/register" ]; then
		echo "# mounting binfmt_misc on $binfmt"
		mount -t binfmt_misc binfmt_misc "$binfmt" || skip "cannot mount binfmt_misc on $binfmt"
	fi
	echo "# registering qemu-aarch64 with binfmt_misc from $binfmt_conf"
	grep -v '^#' "$binfmt_conf" >"$binfmt/register" || skip "cannot register qemu-aarch64 with binfmt_misc"
	grep -q '^flags:.*F' "$entry" || skip "qemu-aarch64 registered without the F flag ($binfmt_conf)"
}
binfmt_misc_aarch64

echo "# building the arm64 kit in $kit (once; cached for later runs; the second stage runs emulated and takes a while)"
work=$cache/arm64.tmp
log=$cache/arm64.log
rm -rf "$work" "$kit"
mkdir -p "$work"
root=$work/root
: >"$log"
if ! debootstrap --arch=arm64 --variant=minbase --include=systemd-sysv,udev \
	bookworm "$root" "$mirror" >>"$log" 2>&1; then
	tail -n 20 "$log"
	echo "arm64kit: debootstrap --arch=arm64 failed (see $log)" >&2
	rm -rf "$work"
	exit 1
fi

# Configure initramfs-tools before it is installed, so the initramfs the
# kernel's postinst makes is already the NFS one.
mkdir -p "$root/etc/initramfs-tools/conf.d"
printf 'BOOT=nfs\nMODULES=netboot\n' >"$root/etc/initramfs-tools/conf.d/cowroot-netboot"
echo cowroot-arm64 >"$root/etc/hostname"

# in a private mount namespace, so that /proc, /sys and /dev go away with it
build() {
	set -e
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
	in_root apt-get update -q
	in_root apt-get install -y -q --no-install-recommends linux-image-arm64 initramfs-tools
	in_root apt-get clean
	in_root linux-version list | tail -n 1 >"$work/release"
	# the network is the initramfs's: nothing may take eth0 down and up again
	for unit in systemd-networkd.service NetworkManager.service networking.service; do
		if in_root systemctl -q is-enabled "$unit" 2>/dev/null; then
			echo "arm64kit: $unit is enabled in the tree" >&2
			exit 1
		fi
	done
	grep -qx 'BOOT=nfs' "$root/etc/initramfs-tools/conf.d/cowroot-netboot"
}
export -f build
export root work
if ! unshare --mount --propagation private bash -c build >>"$log" 2>&1; then
	tail -n 20 "$log"
	echo "arm64kit: installing the kernel and initramfs failed (see $log)" >&2
	rm -rf "$work"
	exit 1
fi
rm -f "$root/etc/resolv.conf"
rm -rf "$root"/var/lib/apt/lists/*
mv "$work" "$kit"
echo "# arm64 kit: Linux $(cat "$kit/release")"
echo "$kit"
