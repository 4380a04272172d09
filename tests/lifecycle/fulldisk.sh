#!/bin/bash
# lifecycle-fulldisk: import, load and export on a full file system.
#
# A store on a small tmpfs gets an image too large for it, by import and by
# load; an export goes to a small tmpfs.  Each must fail saying "No space
# left on device" (a short write is followed by the real error, never
# reported with a stale errno), leave the store as it was (same images, no
# data files, fsck clean) and leave no partial bundle behind.  Then, with
# room again, the same import and load succeed.
#
# Env: COWROOT  path of the built cowroot CLI
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_FULL_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (tmpfs mounts)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to an executable ('${COWROOT:-}')" >&2
		exit 1
	fi
	export COW_FULL_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --mount --propagation private "$0" "$@"
	skip "cannot create a private mount namespace with unshare"
fi

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

T=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-lfull.XXXXXX") || exit 1
trap 'umount -l "$T/small" 2>/dev/null; umount -l "$T/tiny" 2>/dev/null; rm -rf "$T"' EXIT
mkdir -p "$T/src/etc" "$T/small" "$T/tiny"
mount -t tmpfs -o size=1m cowroot-lfull-out "$T/tiny" || skip "cannot mount a tmpfs"
for i in $(seq 1 20); do echo "small file $i" >"$T/src/etc/f$i"; done
head -c 24M /dev/urandom >"$T/src/big1" && head -c 24M /dev/urandom >"$T/src/big2" || skip "cannot write the source tree"
BIG=$T/bigstore # on the ordinary disk
SMALL=$T/small/store
OUT=$T/out

cow() { "$COWROOT" --store "$@" >"$OUT" 2>&1; }
state() { # STORE: what must not change
	"$COWROOT" --store "$1" image list --json
	(cd "$1/data" && find . | sort)
}

cow "$BIG" init && cow "$BIG" image import base "$T/src" && cow "$BIG" image export base "$T/base.crb" ||
	{ bad "setup: $(cat "$OUT")"; finish; }

# refused OP ARGS...: the command fails with ENOSPC and changes nothing
refused() {
	if cow "$SMALL" "$@"; then
		echo "it succeeded on a full disk"
		return 1
	fi
	grep -q "No space left on device" "$OUT" || { echo "not ENOSPC: $(cat "$OUT")"; return 1; }
	[ "$(state "$SMALL")" = "$before" ] || { echo "the store changed: $(state "$SMALL" | tr '\n' ' ')"; return 1; }
	cow "$SMALL" fsck || { echo "fsck: $(cat "$OUT")"; return 1; }
}
# Whether the write that finds the disk full is cut short (a short count,
# then -1/ENOSPC) or fails whole depends on how many pages are left: a few
# sizes make sure both happen.
for extra in 1 5 9 13; do
	size=$((32 * 1024 * 1024 + extra * 4096))
	mount -t tmpfs -o size=$size cowroot-lfull "$T/small" || skip "cannot mount a tmpfs"
	cow "$SMALL" init && cow "$SMALL" image import tiny "$T/src/etc" || {
		bad "setup of the small store: $(cat "$OUT")"
		finish
	}
	before=$(state "$SMALL")
	check "import of 48 MiB into a $size-byte store: ENOSPC, store unchanged" refused image import base "$T/src"
	check "load of a 48 MiB bundle into a $size-byte store: ENOSPC, store unchanged" refused image load "$T/base.crb"
	umount "$T/small"
done

export_refused() {
	if cow "$BIG" image export base "$T/tiny/base.crb"; then
		echo "it succeeded on a full disk"
		return 1
	fi
	grep -q "No space left on device" "$OUT" || { echo "not ENOSPC: $(cat "$OUT")"; return 1; }
	[ -z "$(ls -A "$T/tiny")" ] || { echo "left behind: $(ls -A "$T/tiny")"; return 1; }
}
check "export into a 1 MiB file system: ENOSPC, no file left" export_refused

# with room, the same import and load work
mount -t tmpfs -o size=256m cowroot-lfull "$T/small" && cow "$SMALL" init || {
	bad "mount a larger file system: $(cat "$OUT")"
	finish
}
check "with room, the import works" cow "$SMALL" image import base "$T/src"
check "with room, the load works" cow "$SMALL" image load "$T/base.crb" loaded
check "and fsck is clean" cow "$SMALL" fsck
finish
