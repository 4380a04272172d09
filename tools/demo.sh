#!/bin/bash
# The cowroot demo: install the dependencies, build, make a Debian bookworm
# image, give two clients their own copy-on-write view of it, and show that
# a write in one is not seen in the other.
#
#   tools/demo.sh            debootstrap a bookworm minbase tree (cached in
#                            /var/cache/cowroot/minbase) and use it
#   tools/demo.sh DIR        use the root file system tree in DIR instead
#
# Run as root.  Running it again reuses the store and remounts.
# Environment: COWROOT_STORE (default /srv/cowroot/store), BUILD_DIR
# (default build), SKIP_DEPS=1, COW_DEMO_CACHE (default /var/cache/cowroot),
# COW_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build}
store=${COWROOT_STORE:-/srv/cowroot/store}
mnt=/srv/cowroot/mnt
cache=${COW_DEMO_CACHE:-/var/cache/cowroot}
mirror=${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
clients=(pi-01 pi-02)

step() { printf '\n=== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (debootstrap and mounting need it)" >&2
	exit 1
fi

if [ "${SKIP_DEPS:-0}" != 1 ]; then
	step "installing dependencies"
	"$src/tools/setup-deps.sh"
fi

step "building ($build)"
[ -f "$build/build.ninja" ] || meson setup "$build" "$src"
ninja -C "$build"
cowroot=$build/tools/cowroot
cow() { run "$cowroot" --store "$store" "$@"; }

if [ $# -gt 0 ]; then
	tree=$1
	[ -d "$tree" ] || { echo "demo: '$tree' is not a directory" >&2; exit 1; }
else
	tree=$cache/minbase
	if [ -x "$tree/usr/bin/dpkg" ]; then
		step "using the cached Debian tree $tree"
	else
		step "debootstrap bookworm (minbase) into $tree (a few minutes, once)"
		mkdir -p "$cache"
		rm -rf "$tree.tmp"
		debootstrap --variant=minbase bookworm "$tree.tmp" "$mirror"
		mv "$tree.tmp" "$tree"
	fi
fi

step "store $store"
for c in "${clients[@]}"; do
	if mountpoint -q "$mnt/$c"; then
		run fusermount3 -u "$mnt/$c"
	fi
done
if ! "$cowroot" --store "$store" image list >/dev/null 2>&1; then
	mkdir -p "$(dirname "$store")"
	cow init
fi
if ! "$cowroot" --store "$store" image list | grep -w bookworm >/dev/null; then
	cow image import bookworm "$tree"
fi
for c in "${clients[@]}"; do
	if ! "$cowroot" --store "$store" client list | grep -w "$c" >/dev/null; then
		cow client add "$c" --image bookworm
	fi
done
cow image list
cow client list

step "mounting each client's view"
for c in "${clients[@]}"; do
	mkdir -p "$mnt/$c"
	cow mount "$c" "$mnt/$c"
done
findmnt -l -o TARGET,FSTYPE,SOURCE | sed -n "1p; \\,^$mnt/,p"

step "a write in pi-01 is not seen in pi-02"
run sh -c "echo pi-01 >$mnt/pi-01/etc/hostname"
run sh -c "echo 'written on pi-01' >$mnt/pi-01/root/hello"
run cat "$mnt/pi-01/etc/hostname" "$mnt/pi-01/root/hello"
run cat "$mnt/pi-02/etc/hostname"
if [ -e "$mnt/pi-02/root/hello" ]; then
	echo "demo: pi-02 sees pi-01's file: this is a bug" >&2
	exit 1
fi
run ls -la "$mnt/pi-02/root/"
echo "pi-02 has no /root/hello and keeps the image's /etc/hostname."
run chroot "$mnt/pi-01" cat /etc/debian_version

cat <<EOF

=== done
The views stay mounted:
  $mnt/pi-01    $mnt/pi-02
Look around, chroot into one ($(printf 'chroot %s/pi-01 /bin/bash' "$mnt")), then unmount:
  fusermount3 -u $mnt/pi-01
  fusermount3 -u $mnt/pi-02
EOF
