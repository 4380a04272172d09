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

# A bundle is loaded only if the store has room for the file data it
# declares, and never past that size: a small bundle of 512 MiB of zeros
# is refused before anything is written; bundles whose header declares
# less or more data than they hold are refused, the store unchanged.
mkdir -p "$T/zsrc"
head -c 512M /dev/zero >"$T/zsrc/zeros" || skip "cannot write 512 MiB"
cow "$BIG" image import zeros "$T/zsrc" && cow "$BIG" image export zeros "$T/zeros.crb" ||
	{ bad "setup of the zeros bundle: $(cat "$OUT")"; finish; }
rm -rf "$T/zsrc"
# header: magic 8, version 4, name length 2, name, root 8, objects 8, entries 8, data 8
patch_data() { # IN OUT DELTA: the declared data size changed by DELTA
	python3 - "$1" "$2" "$3" <<'PY'
import gzip, struct, sys
raw = gzip.decompress(open(sys.argv[1], 'rb').read())
nl = struct.unpack_from('<H', raw, 12)[0]
off = 14 + nl + 24
data = struct.unpack_from('<Q', raw, off)[0]
raw = raw[:off] + struct.pack('<Q', data + int(sys.argv[3])) + raw[off + 8:]
open(sys.argv[2], 'wb').write(gzip.compress(raw, 6))
PY
}
declared() { python3 -c "import gzip,struct,sys; r=gzip.open(sys.argv[1]).read(200); n=struct.unpack_from('<H',r,12)[0]; print(struct.unpack_from('<Q',r,14+n+24)[0])" "$1"; }
check "the zeros bundle is small ($(stat -c %s "$T/zeros.crb") bytes) and declares 512 MiB" \
	test "$(stat -c %s "$T/zeros.crb")" -lt 4000000 -a "$(declared "$T/zeros.crb")" = $((512 << 20))
mount -t tmpfs -o size=256m cowroot-lfull "$T/small" && cow "$SMALL" init && cow "$SMALL" image import tiny "$T/src/etc" ||
	{ bad "setup of the small store: $(cat "$OUT")"; finish; }
before=$(state "$SMALL")
check "load of 512 MiB of zeros into a 256 MiB store: ENOSPC, store unchanged" refused image load "$T/zeros.crb"
used=$(df --output=used "$T/small" | tail -1)
check "and nothing was written first (${used} KiB used)" test "$used" -lt 8192
lying() { # BUNDLE WORDS: refused as not a valid bundle, saying WORDS, store unchanged
	if cow "$SMALL" image load "$1" lying; then
		echo "it loaded"
		return 1
	fi
	grep -q "$2" "$OUT" || { echo "not refused for its data size: $(cat "$OUT")"; return 1; }
	[ "$(state "$SMALL")" = "$before" ] || { echo "the store changed"; return 1; }
	cow "$SMALL" fsck || { echo "fsck: $(cat "$OUT")"; return 1; }
}
patch_data "$T/base.crb" "$T/under.crb" -4096
check "a bundle holding more data than it declares is refused" lying "$T/under.crb" "more file data than"
patch_data "$T/base.crb" "$T/over.crb" 4096
check "a bundle declaring more data than it holds is refused" lying "$T/over.crb" "not the"
umount "$T/small"

# with room, the same import and load work
mount -t tmpfs -o size=256m cowroot-lfull "$T/small" && cow "$SMALL" init || {
	bad "mount a larger file system: $(cat "$OUT")"
	finish
}
check "with room, the import works" cow "$SMALL" image import base "$T/src"
check "with room, the load works" cow "$SMALL" image load "$T/base.crb" loaded
check "and fsck is clean" cow "$SMALL" fsck
finish
