#!/bin/bash
# Install what building and testing cowroot needs on Debian bookworm (the
# trixie root of tools/trixie-root.sh runs it too).  Run as root.  Safe to
# run again.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "setup-deps: run as root" >&2
	exit 1
fi

packages=(
	# build
	build-essential meson ninja-build pkg-config git
	libfuse3-dev fuse3 libsqlite3-dev zlib1g-dev sqlite3
	# the man pages (doc/*.scd; without it meson skips them)
	scdoc
	# image check reads zstd, xz and lz4 initramfs archives
	libzstd-dev liblzma-dev liblz4-dev
	# disk image import: partition tables, ext4, FAT (mtools, at run time)
	libext2fs-dev comerr-dev libblkid-dev mtools
	# its test builds disk images
	e2fsprogs fdisk
	# OCI image import: layer tarballs, the JSON manifests, sha256
	libarchive-dev libjansson-dev nettle-dev
	# its test writes a docker archive from an OCI layout
	skopeo
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
	# the Debian package: its build (tests/package/package.sh builds it,
	# checks it with lintian and installs it into a clean root)
	debhelper lintian bash-completion
	# the man page test renders them (man, lexgrog)
	man-db
)
# trixie keeps systemd's pkg-config file (the unit directory) apart
if apt-cache show systemd-dev >/dev/null 2>&1; then
	packages+=(systemd-dev)
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"

# The FSAL is built against the headers of the installed ganesha: unpack its
# Debian source outside the tree (meson finds it with -Dganesha_src, whose
# default is this directory).  Needs deb-src entries, added here.
ganesha_src=${COW_GANESHA_SRC:-/var/cache/cowroot-build/ganesha-src}
# the source of another version (the machine was upgraded): fetched again
installed=$(dpkg-query -W -f='${Version}' nfs-ganesha | sed 's/^[0-9]*://; s/-[^-]*$//')
unpacked=
# not on a fresh machine: a sed of a missing file would end the script (pipefail)
if [ -f "$ganesha_src/src/CMakeLists.txt" ]; then
	unpacked=$(sed -n -E 's/^set[(]GANESHA_(MAJOR|MINOR)_VERSION [.]?([0-9]+)[)].*/\2/p' \
		"$ganesha_src/src/CMakeLists.txt" | paste -sd .)
fi
if [ -f "$ganesha_src/src/include/config-h.in.cmake" ] && [ "$unpacked" != "$installed" ]; then
	echo "setup-deps: $ganesha_src holds ganesha ${unpacked:-?}, nfs-ganesha $installed is installed: fetching it"
	rm -rf "$ganesha_src"
fi
if [ ! -f "$ganesha_src/src/include/config-h.in.cmake" ]; then
	added=0
	sources=/etc/apt/sources.list.d/debian.sources
	if [ -f "$sources" ] && ! grep -q '^Types:.*deb-src' "$sources"; then
		sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
		added=1
	fi
	# the one-line format of machines installed before trixie: a deb-src
	# line for each deb line that has none (so a second run adds nothing)
	list=/etc/apt/sources.list
	if [ -f "$list" ]; then
		missing=$(awk '
			{ l = $0; sub(/^[ \t]+/, "", l); gsub(/[ \t]+/, " ", l); line[NR] = l }
			line[NR] ~ /^deb-src / { have[line[NR]] = 1 }
			END {
				for (i = 1; i <= NR; i++) {
					if (line[i] !~ /^deb /)
						continue
					s = "deb-src" substr(line[i], 4)
					if (!(s in have))
						print s
					have[s] = 1
				}
			}' "$list")
		if [ -n "$missing" ]; then
			# a last line without its newline would be joined to ours
			[ -z "$(tail -c 1 "$list")" ] || echo >>"$list"
			printf '%s\n' "$missing" >>"$list"
			added=1
		fi
	fi
	[ $added = 0 ] || apt-get update -q
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
