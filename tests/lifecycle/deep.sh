#!/bin/bash
# lifecycle-deep: a tree deeper than PATH_MAX through the CLI and a mount.
#
# A directory tree 2,100 levels deep (a 4,200-byte path, made with one
# relative mkdir/cd at a time) is imported with the usual soft limit of
# 1,024 open files; a client makes another chain as deep through its FUSE
# mount; client diff prints the deepest path whole; the client is
# snapshotted, exported, loaded into another store and flattened, fsck is
# clean, and the three images mount with the same tree.
#
# Env: COWROOT  path of the built cowroot CLI
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_DEEP_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (FUSE mounts)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to an executable ('${COWROOT:-}')" >&2
		exit 1
	fi
	export COW_DEEP_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --mount --propagation private "$0" "$@"
	skip "cannot create a private mount namespace with unshare"
fi

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

LEVELS=2100
T=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-deep.XXXXXX") || exit 1
S=$T/store
S2=$T/store2
OUT=$T/out
mkdir -p "$T/src" "$T/m" "$T/ma" "$T/mb" "$T/mc"
trap 'for m in m ma mb mc; do fusermount3 -u "$T/$m" 2>/dev/null; done; rm -rf "$T"' EXIT
cow() { "$COWROOT" --store "$@" >"$OUT" 2>&1; }
# chain DIR NAME: LEVELS nested directories NAME under DIR, a file 'leaf' at the bottom;
# 100 levels per relative mkdir -p and cd (a shell's cd grows slow with a long $PWD)
chain() {
	local part
	part=$(printf "$2/%.0s" $(seq 100))
	(cd "$1" && for _ in $(seq $((LEVELS / 100))); do mkdir -p "$part" && cd "$part" || exit 1; done &&
		echo "at the bottom" >leaf)
}
# bottom DIR NAME: the leaf at the bottom of the chain reads back
bottom() {
	local part
	part=$(printf "$2/%.0s" $(seq 100))
	(cd "$1" && for _ in $(seq $((LEVELS / 100))); do cd "$part" || exit 1; done && grep -q "at the bottom" leaf)
}
# the shape of the tree under DIR: type, depth and size of every entry
shape() { (cd "$1" && find . -printf '%y %d %s %f\n' | sort | md5sum); }

chain "$T/src" a || { bad "make the source tree"; finish; }
ulimit -S -n 1024
check "init" cow "$S" init
check "import a tree $LEVELS levels deep with 1024 open files allowed" cow "$S" image import deep "$T/src"
check "add a client" cow "$S" client add c --image deep
if cow "$S" mount c "$T/m"; then
	check "the client makes a chain $LEVELS levels deep through its mount" chain "$T/m" b
	check "and reads the file at the bottom of the imported one" bottom "$T/m" a
	fusermount3 -u "$T/m"
	sleep 0.5
else
	bad "mount the client: $(cat "$OUT")"
fi

diff_deep() {
	cow "$S" client diff c || { cat "$OUT"; return 1; }
	local want
	want="added     /$(printf 'b/%.0s' $(seq $LEVELS))leaf"
	grep -qxF -- "$want" "$OUT" || { echo "no line of ${#want} bytes for the leaf: $(tail -c 300 "$OUT")"; return 1; }
	[ "$(grep -c '^added' "$OUT")" = $((LEVELS + 1)) ] || { echo "$(grep -c '^added' "$OUT") lines added"; return 1; }
}
check "client diff gives every level and the leaf's whole path" diff_deep
check "snapshot the client" cow "$S" client snapshot c deep2
check "export the snapshot" cow "$S" image export deep2 "$T/deep2.crb"
check "flatten the snapshot" cow "$S" image flatten deep2 deep2-flat
check "init a second store" cow "$S2" init
check "load the bundle into it" cow "$S2" image load "$T/deep2.crb"
check "fsck of the store" cow "$S" fsck
check "fsck of the second store" cow "$S2" fsck

same_trees() {
	cow "$S" mount --image deep2 "$T/ma" || { cat "$OUT"; return 1; }
	cow "$S" mount --image deep2-flat "$T/mb" || { cat "$OUT"; return 1; }
	cow "$S2" mount --image deep2 "$T/mc" || { cat "$OUT"; return 1; }
	local a b c n
	a=$(shape "$T/ma") b=$(shape "$T/mb") c=$(shape "$T/mc")
	n=$(cd "$T/ma" && find . | wc -l)
	[ "$n" = $((2 * LEVELS + 3)) ] || { echo "$n entries in the snapshot"; return 1; }
	[ "$a" = "$b" ] || { echo "the flattened image differs"; return 1; }
	[ "$a" = "$c" ] || { echo "the loaded image differs"; return 1; }
}
check "the snapshot, its flattened copy and the loaded bundle mount as the same tree" same_trees
finish
