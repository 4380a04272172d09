#!/bin/bash
# The cowroot demo: install the dependencies, build, make a Debian bookworm
# image, give two clients their own copy-on-write view of it, show that a
# write in one is not seen in the other, then serve both over NFS (nfs-ganesha
# with the cowroot FSAL) and their boot files over TFTP, print each client's
# kernel command line and fetch a client's u-boot script as its Pi would.
#
#   tools/demo.sh            debootstrap a bookworm minbase tree (cached in
#                            /var/cache/cowroot/minbase) and use it
#   tools/demo.sh DIR        use the root file system tree in DIR instead
#
# Run as root.  Running it again reuses the store and remounts.
# Environment: COWROOT_STORE (default /srv/cowroot/store), BUILD_DIR
# (default build), SKIP_DEPS=1, COW_DEMO_CACHE (default /var/cache/cowroot),
# COW_DEBIAN_MIRROR (default http://deb.debian.org/debian), COW_PI_01_IP and
# COW_PI_02_IP (the addresses each Pi boots from; defaults 192.168.1.101 and
# .102; a loopback address is added to each so that this machine can check).
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
[ -f "$build/build.ninja" ] || meson setup "$build" "$src" -Dfsal=enabled
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
if [ -f "$store/run/serve.pid" ] && kill -0 "$(cat "$store/run/serve.pid")" 2>/dev/null; then
	run kill -TERM "$(cat "$store/run/serve.pid")"
	for _ in $(seq 100); do kill -0 "$(cat "$store/run/serve.pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
fi
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

step "serving both clients over NFS"
# A layer has one writer: the FUSE views are unmounted before ganesha serves.
for c in "${clients[@]}"; do
	run fusermount3 -u "$mnt/$c"
done
cow client set pi-01 --ip "127.0.0.2,${COW_PI_01_IP:-192.168.1.101}"
cow client set pi-02 --ip "127.0.0.3,${COW_PI_02_IP:-192.168.1.102}"
# what each Pi is known by when it boots (its serial number and MAC address)
cow client set pi-01 --serial 9ffefd01 --mac dc:a6:32:00:00:01
cow client set pi-02 --serial 9ffefd02 --mac dc:a6:32:00:00:02 --on-boot reset
cow serve --fsal "$build/ganesha-fsal/libfsalcowroot.so"

step "each client sees its own root over NFS"
# With 127.0.0.2 and .3 on the loopback interface, a connection to one comes
# from it: this machine can stand for pi-01 and for pi-02.
for a in 127.0.0.2 127.0.0.3; do
	ip -o addr show dev lo | grep -qw "$a" || run ip addr add "$a/32" dev lo
done
run nfs-cat "nfs://127.0.0.2/clients/pi-01/root/hello?version=3"
if nfs-ls "nfs://127.0.0.3/clients/pi-01/?version=3" >/dev/null 2>&1; then
	echo "demo: pi-02's address can read pi-01's export: this is a bug" >&2
	exit 1
fi
echo "pi-02's address is refused pi-01's export."
run nfs-cat "nfs://127.0.0.3/clients/pi-02/etc/hostname?version=3"

step "the boot files over TFTP, from each client's own root"
# what pi-01's u-boot fetches first: its script, made from the store (this
# image has no kernel, and the script says so on the Pi's console)
run curl -sS --interface 127.0.0.2 tftp://127.0.0.2/netboot-9ffefd01.scr -o /tmp/cowroot-demo.scr
tail -c +73 /tmp/cowroot-demo.scr
rm -f /tmp/cowroot-demo.scr
if curl -sS --interface 127.0.0.3 tftp://127.0.0.2/netboot-9ffefd01.scr -o /dev/null 2>/dev/null; then
	echo "demo: pi-02's address got pi-01's boot script: this is a bug" >&2
	exit 1
fi
echo "pi-02's address is refused pi-01's boot files."
step "what in the image would break a netboot"
"$cowroot" --store "$store" image check bookworm || true

cat <<EOF

=== done
ganesha serves pi-01 and pi-02 (the kernel command lines are printed above),
and cowroot serve their boot files over TFTP (port 69). For a real fleet
(README: "A fleet, step by step"): an arm64 image with a kernel, the DHCP
configuration from 'cowroot netboot dnsmasq', the SD card from 'cowroot
netboot sdcard' or the Pi 4/5 EEPROM's network boot. Stop the server to look
at a client's view on this machine:
  kill -TERM \$(cat $store/run/serve.pid)
  $cowroot --store $store mount pi-01 $mnt/pi-01
EOF
