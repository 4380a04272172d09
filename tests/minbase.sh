# Sourced by the tests that need a Debian root tree (bash): the cached
# debootstrap minbase tree that the realworld and netboot tests share.

# mirror_reachable MIRROR: true when the mirror's host resolves and answers
# on port 80 (within 10 s).
mirror_reachable() {
	local host
	host=$(echo "$1" | sed 's,^[a-z]*://,,; s,[/:].*,,')
	getent hosts "$host" >/dev/null && timeout 10 bash -c "exec 3<>/dev/tcp/$host/80" 2>/dev/null
}

# minbase_ensure CACHE MIRROR: make CACHE/minbase a debootstrap'd Debian
# bookworm minbase tree (built from MIRROR when missing; cached for later
# runs; log in CACHE/debootstrap.log).  The caller holds CACHE/.lock.
# Returns 0 when the tree is there, 77 when it cannot be made here (no
# debootstrap, no network; reason printed), 1 when debootstrap failed.
minbase_ensure() {
	local cache=$1 mirror=$2
	local minbase=$cache/minbase
	[ -x "$minbase/usr/bin/dpkg" ] && [ -s "$minbase/var/lib/dpkg/status" ] && return 0
	if ! command -v debootstrap >/dev/null; then
		echo "SKIP: no cached minbase tree and no debootstrap"
		return 77
	fi
	echo "# building $minbase with debootstrap (once; cached for later runs)"
	rm -rf "$minbase.tmp"
	if ! debootstrap --variant=minbase bookworm "$minbase.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
		tail -5 "$cache/debootstrap.log"
		rm -rf "$minbase.tmp"
		if ! mirror_reachable "$mirror"; then
			echo "SKIP: no cached minbase tree and no network for debootstrap"
			return 77
		fi
		echo "FAIL debootstrap (see $cache/debootstrap.log)"
		return 1
	fi
	mv "$minbase.tmp" "$minbase"
}

# shellcheck disable=SC2154 # $kit and $cache are the kit script's
# kit_begin WHAT LOCKFILE: the start of a kit script (tests/netboot/*kit.sh,
# which define have_kit, $kit and $cache): print $kit and exit 0 when the
# kit is there; else, as root (skip otherwise), take LOCKFILE and return
# to build it, unless another run built it meanwhile.
kit_begin() {
	if have_kit; then
		echo "$kit"
		exit 0
	fi
	[ "$(id -u)" = 0 ] || skip "building $1 needs root (chroot, mounts)"
	mkdir -p "$cache"
	exec 9>"$2"
	flock 9
	if have_kit; then # built by another run meanwhile
		echo "$kit"
		exit 0
	fi
}
