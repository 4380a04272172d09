#!/bin/bash
# Install what building and testing cowroot needs on Debian bookworm.
# Run as root.  Safe to run again.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "setup-deps: run as root" >&2
	exit 1
fi

packages=(
	# build
	build-essential meson ninja-build pkg-config git
	libfuse3-dev fuse3 libsqlite3-dev zlib1g-dev sqlite3
	# image check reads zstd, xz and lz4 initramfs archives
	libzstd-dev liblzma-dev liblz4-dev
	# disk image import: partition tables, ext4, FAT (mtools, at run time)
	libext2fs-dev comerr-dev libblkid-dev mtools
	# its test builds disk images
	e2fsprogs fdisk
	# tests and the demo
	debootstrap attr acl libcap2-bin fuse-overlayfs util-linux
	ca-certificates coreutils findutils diffutils jq
	# the ganesha FSAL, NFS serving and its tests
	nfs-ganesha nfs-ganesha-vfs libntirpc-dev liburcu-dev libkrb5-dev libdbus-1-dev
	rpcbind libnfs-dev libnfs-utils iproute2 u-boot-tools dpkg-dev
	# the image check test builds initramfs archives
	cpio zstd xz-utils lz4
	# the TFTP tests: real clients
	tftp-hpa atftp curl
	# the bootcfg tests: dnsmasq (without its service) and busybox's udhcpc
	dnsmasq-base busybox
	# the power-loss test traces the servers' system calls
	strace
	# the netboot test: a Debian kernel booting from an export under emulation
	qemu-system-x86
	# the u-boot netboot test: arm64 u-boot and guests, an arm64 Debian root
	# made through binfmt_misc, the SD card's FAT image (dnsmasq-base: above)
	qemu-system-arm u-boot-qemu qemu-user-static dosfstools mtools
	# client shell runs its command with systemd-nspawn when installed (the
	# test checks that path and the plain chroot)
	systemd-container
)

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"

# The FSAL is built against the headers of the installed ganesha: unpack its
# Debian source outside the tree (meson finds it with -Dganesha_src, whose
# default is this directory).  Needs deb-src entries, added here.
ganesha_src=${COW_GANESHA_SRC:-/var/cache/cowroot-build/ganesha-src}
if [ ! -f "$ganesha_src/src/include/config-h.in.cmake" ]; then
	sources=/etc/apt/sources.list.d/debian.sources
	if [ -f "$sources" ] && ! grep -q '^Types:.*deb-src' "$sources"; then
		sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
		apt-get update -q
	fi
	dl=$(mktemp -d)
	chmod 755 "$dl" # apt fetches as its own user
	# only the upstream tarball is needed (the Debian packaging part may be missing)
	(cd "$dl" && apt-get source --download-only nfs-ganesha) || true
	orig=$(ls "$dl"/nfs-ganesha_*.orig.tar.gz 2>/dev/null | head -n 1)
	if [ -n "$orig" ]; then
		rm -rf "$ganesha_src.tmp"
		mkdir -p "$ganesha_src.tmp"
		tar -xzf "$orig" -C "$ganesha_src.tmp" --strip-components=1
		rm -rf "$ganesha_src"
		mv "$ganesha_src.tmp" "$ganesha_src"
	else
		echo "setup-deps: could not fetch the nfs-ganesha source; the FSAL will not be built" >&2
	fi
	rm -rf "$dl"
fi
