#!/bin/bash
# Run a command as root inside a Debian 13 (trixie) root kept in the fixture
# cache, so that the build and the test suites can be run against trixie's
# compiler, libraries and tools from a bookworm machine (tools/ci-test.sh).
#
#   tools/trixie-root.sh [--] COMMAND...
#
# The root is ${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}/trixie-root: a
# debootstrap minbase trixie with deb-src entries (setup-deps.sh fetches the
# nfs-ganesha source) and tools/setup-deps.sh run inside.  It is built in
# trixie-root.tmp and renamed when complete, so an interrupted build is
# never used; setup-deps.sh runs in it again whenever the script changed
# (the sha256 of the version last run there is kept in the root).
#
# COMMAND runs in the root in mount and pid namespaces of its own: /dev
# and /sys bound from the host (/dev/fuse and /dev/net/tun work), a fresh
# /proc, tmpfs on /run and /tmp, the host's resolv.conf, the source tree
# on /src (the working directory) and the fixture cache at its own path, so
# that the tests reuse the fixtures the host's runs cached.  When COMMAND
# exits, whatever it left running is killed and every mount is gone with
# the namespaces.  The environment is clean: PATH, HOME=/root,
# DEBIAN_FRONTEND=noninteractive, COW_FIXTURE_CACHE, and CI and
# COW_DEBIAN_MIRROR when set.  The exit status is COMMAND's.
#
# Run as root.  Needs the network to build the root (debootstrap is
# installed on the host when missing).
# Environment: COW_FIXTURE_CACHE, COW_DEBIAN_MIRROR (default
# http://deb.debian.org/debian), CI.
set -euo pipefail

usage() {
	echo "usage: tools/trixie-root.sh [--] COMMAND..." >&2
	exit 2
}

# ---- inside the namespaces (pid 1 of the new pid namespace) ------------------
# ROOT SRC CACHE COMMAND...: set up the mounts and run COMMAND in the root.
# Only mounts of this namespace are made, so nothing outlives it.
if [ -n "${COW_TRIXIE_INNER:-}" ]; then
	root=$1 src=$2 cache=$3
	shift 3
	exec 9>&- # the host's lock on the root: not the command's
	# unshare made every mount private: nothing below reaches the host's.
	# The root bound on itself first: its / must be a mount point, or a
	# test's own `unshare --mount` cannot make it private (EINVAL)
	mount --bind "$root" "$root"
	mount --rbind /dev "$root/dev"
	mount -t proc proc "$root/proc"
	# binfmt_misc as the host has it (systemd mounts it at boot): the fresh
	# /proc lacks it, and what the kernel has registered would look missing
	if [ -e /proc/sys/fs/binfmt_misc/register ]; then
		mount -t binfmt_misc -o nosuid,nodev,noexec binfmt_misc "$root/proc/sys/fs/binfmt_misc"
	fi
	mount --rbind /sys "$root/sys"
	mount -t tmpfs -o mode=0755 tmpfs "$root/run"
	mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
	mkdir -p "$root/src" "$root$cache"
	mount --bind "$src" "$root/src"
	# not --rbind: the root itself lives in the cache, and its own mounts
	# (made above) must not appear again inside it
	mount --bind "$cache" "$root$cache"
	# debootstrap copied the host's resolv.conf once; it may have changed
	if [ -f /etc/resolv.conf ]; then
		if [ -L "$root/etc/resolv.conf" ] || [ ! -f "$root/etc/resolv.conf" ]; then
			rm -f "$root/etc/resolv.conf"
			: >"$root/etc/resolv.conf"
		fi
		mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
		mount -o remount,bind,ro "$root/etc/resolv.conf"
	fi
	env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
		DEBIAN_FRONTEND=noninteractive "COW_FIXTURE_CACHE=$cache")
	[ -z "${CI+set}" ] || env+=("CI=$CI")
	[ -z "${COW_DEBIAN_MIRROR+set}" ] || env+=("COW_DEBIAN_MIRROR=$COW_DEBIAN_MIRROR")
	# not exec: this shell stays pid 1, reaping what COMMAND orphans (a test
	# waiting for a daemon to go must not see a zombie), and its exit kills
	# whatever is left.  sh -c: a COMMAND word with '=' is not env's.
	rc=0
	chroot "$root" /usr/bin/env -i "${env[@]}" /bin/sh -c 'cd /src && exec "$@"' sh "$@" || rc=$?
	exit $rc
fi

# ---- on the host ------------------------------------------------------------

[ "${1:-}" != -- ] || shift
[ $# -gt 0 ] || usage
case $1 in -h | --help) usage ;; esac
if [ "$(id -u)" != 0 ]; then
	echo "trixie-root: run as root" >&2
	exit 1
fi

src=$(cd "$(dirname "$0")/.." && pwd)
cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd) # the same path inside, so it must be absolute
root=$cache/trixie-root
mirror=${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
deps=$src/tools/setup-deps.sh
stamp=var/lib/cowroot-test-root/setup-deps.sha256

# "${in_root[@]}" ROOT SRC CACHE COMMAND... (with COW_TRIXIE_INNER=1): run
# COMMAND in ROOT as described above.  Once it has forked, unshare ignores
# SIGTERM and SIGINT; when it is killed, --kill-child takes everything in
# the namespaces with it.
in_root=(unshare --mount --propagation private --pid --fork --kill-child "$src/tools/trixie-root.sh")

# mounted_under DIR: true when anything is mounted at or below DIR (a
# chroot left by hand with /src bound: removing it would remove the tree)
mounted_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# setup_deps ROOT: run setup-deps.sh in ROOT and record which one ran
setup_deps() {
	local sum
	sum=$(sha256sum <"$deps" | cut -d' ' -f1)
	COW_TRIXIE_INNER=1 "${in_root[@]}" "$1" "$src" "$cache" /src/tools/setup-deps.sh
	mkdir -p "$1/$(dirname "$stamp")"
	echo "$sum" >"$1/$stamp"
}

build_root() {
	local tmp=$root.tmp
	if mounted_under "$tmp"; then
		echo "trixie-root: something is mounted under $tmp; unmount it first" >&2
		exit 1
	fi
	rm -rf "$tmp"
	if ! command -v debootstrap >/dev/null; then
		echo "# installing debootstrap on this machine"
		apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			debootstrap debian-archive-keyring
	fi
	echo "# building $root with debootstrap (once; cached for later runs)"
	# in a mount namespace of its own: the /proc and /sys that debootstrap
	# mounts in the tree go away with it, even when it is interrupted
	if ! unshare --mount --propagation private \
		debootstrap --variant=minbase trixie "$tmp" "$mirror" >"$cache/trixie-root.log" 2>&1; then
		tail -n 20 "$cache/trixie-root.log" >&2
		echo "trixie-root: debootstrap failed (see $cache/trixie-root.log)" >&2
		exit 1
	fi
	# deb822 sources with deb-src, as trixie writes them; no sources.list
	rm -f "$tmp/etc/apt/sources.list"
	cat >"$tmp/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb deb-src
URIs: $mirror
Suites: trixie trixie-updates
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	echo "# installing the build and test dependencies in it (tools/setup-deps.sh)"
	setup_deps "$tmp"
	mv "$tmp" "$root"
}

up_to_date() {
	[ -d "$root" ] && [ "$(cat "$root/$stamp" 2>/dev/null)" = "$(sha256sum <"$deps" | cut -d' ' -f1)" ]
}

# Commands run in the root under a shared lock; building or refreshing it
# takes the lock alone, so it waits for the commands running in it, and
# one run does it while the others wait.
exec 9>"$cache/trixie-root.lock"
flock -s 9
if ! up_to_date; then
	flock 9
	if [ ! -d "$root" ]; then
		build_root
	elif ! up_to_date; then
		echo "# tools/setup-deps.sh changed: running it again in $root"
		setup_deps "$root"
	fi
	flock -s 9
fi

# exec: a signal for this script reaches unshare, not a shell that would
# die and leave it running; the shared lock is held until COMMAND is done
COW_TRIXIE_INNER=1 exec "${in_root[@]}" "$root" "$src" "$cache" "$@"
