#!/bin/bash
# Build, once, what the netboot test boots: a Debian bookworm amd64 kernel
# and an initramfs made by Debian's initramfs-tools for an NFS root
# (BOOT=nfs, MODULES=netboot), as a stock netbooting client would have.
#
# They are made in a copy of the cached debootstrap minbase tree (the tree
# itself is never changed) with apt-get and mkinitramfs, and kept, with the
# .deb of `less` that the guest installs, in
#   ${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}/bootkit/{vmlinuz,initrd.img,less.deb,release}
# which is rebuilt only when missing.  Needs root and, for the first build,
# Debian's package mirror.
#
# Exit: 0 the kit is there (its directory is printed on the last line),
#       77 it cannot be made on this machine (reason printed), 1 failure.
set -u
export LC_ALL=C

cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
kit=$cache/bootkit
minbase=$cache/minbase
mirror=${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}

here=$(cd "$(dirname "$0")" && pwd)
skip() {
	echo "SKIP: $*"
	exit 77
}
# shellcheck source=tests/minbase.sh
. "$here/../minbase.sh"
have_kit() { [ -s "$kit/vmlinuz" ] && [ -s "$kit/initrd.img" ] && [ -s "$kit/less.deb" ] && [ -s "$kit/release" ]; }

kit_begin "the boot kit" "$cache/.lock"
mirror_reachable "$mirror" || skip "no cached boot kit in $kit and no network to build it"

minbase_ensure "$cache" "$mirror"
rc=$?
[ "$rc" = 0 ] || exit "$rc"

echo "# building the boot kit in $kit (once; cached for later runs)"
work=$cache/bootkit.tmp
log=$cache/bootkit.log
rm -rf "$work" "$kit"
mkdir -p "$work"
cp -a "$minbase" "$work/root" || exit 1
root=$work/root

# Configure initramfs-tools before it is installed, so the initramfs the
# kernel's postinst makes is already the NFS one.
mkdir -p "$root/etc/initramfs-tools/conf.d"
printf 'BOOT=nfs\nMODULES=netboot\n' >"$root/etc/initramfs-tools/conf.d/cowroot-netboot"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null

# in a private mount namespace, so that /proc, /sys and /dev go away with it
build() {
	set -e
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
	in_root apt-get update -q
	in_root apt-get install -y -q --no-install-recommends linux-image-amd64 initramfs-tools
	kver=$(in_root linux-version list | tail -n 1)
	in_root mkinitramfs -o /tmp/initrd.img "$kver"
	in_root sh -c 'cd /tmp && apt-get download -q less'
	cp "$root"/tmp/less_*.deb "$work/less.deb"
	cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
	cp "$root/tmp/initrd.img" "$work/initrd.img"
	echo "$kver" >"$work/release"
}
export -f build
export root work
if ! unshare --mount --propagation private bash -c build >"$log" 2>&1; then
	tail -n 20 "$log"
	echo "bootkit: building the kernel and initramfs failed (see $log)" >&2
	rm -rf "$work"
	exit 1
fi
mkdir -p "$kit"
mv "$work/vmlinuz" "$work/initrd.img" "$work/less.deb" "$work/release" "$kit/"
rm -rf "$work"
echo "# boot kit: Linux $(cat "$kit/release")"
echo "$kit"
