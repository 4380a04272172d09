#!/bin/bash
# fuse-quota: per-client quotas through real mounts.
#
# A client with a quota gets EDQUOT ("Disk quota exceeded") from write(2),
# creat(2), a copy-up and setxattr once its layer would pass its limits;
# what was acknowledged before is all there; df shows the quota as the
# size and free space (bytes and inodes); rm frees at once; another
# client is untouched; the count is the same after a remount; a quota
# changed while mounted applies at the next mount; client list shows it.
#
# Env: COWROOT  path of the built cowroot CLI
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_QUOTA_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (FUSE mounts)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	command -v setfattr >/dev/null || skip "setfattr is missing (install attr)"
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to an executable ('${COWROOT:-}')" >&2
		exit 1
	fi
	export COW_QUOTA_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
	skip "cannot create a private mount/pid namespace with unshare"
fi

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

T=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-quota.XXXXXX") || exit 1
S=$T/store
M1=$T/m1
M2=$T/m2
mkdir -p "$T/src/etc" "$M1" "$M2"
echo "hostname" >"$T/src/etc/hostname"
head -c 12M /dev/urandom >"$T/src/big"
cow() { "$COWROOT" --store "$S" "$@"; }
trap 'fusermount3 -u "$M1" 2>/dev/null; fusermount3 -u "$M2" 2>/dev/null; rm -rf "$T"' EXIT

cow init --default-quota 8M --default-quota-files 100 >/dev/null && cow image import base "$T/src" >/dev/null &&
	cow client add c1 --image base >/dev/null && cow client add c2 --image base >/dev/null &&
	cow client set c2 --quota none --quota-files none >/dev/null || {
	bad "setup"
	finish
}
cow mount c1 "$M1" && cow mount c2 "$M2" || {
	bad "mount"
	finish
}

field() { df -B1 --output="$2" "$1" | tail -1 | tr -d ' '; }
check "df shows the quota as the size (8 MiB)" test "$(field "$M1" size)" = $((8 << 20))
check "df shows the object quota as inodes (100)" test "$(field "$M1" itotal)" = 100
check "df of a client without quota shows the store's file system" test "$(field "$M2" size)" -gt $((64 << 20))

dd_out=$T/dd.out
head -c 16M /dev/urandom >"$T/rand"
fill() { dd if="$T/rand" of="$1" bs=64k count="$2" 2>"$dd_out"; }
fill "$M1/fill" 256 # 16 MiB
t_fill_refused() {
	grep -q "Disk quota exceeded" "$dd_out" || { cat "$dd_out"; return 1; }
}
check "writing 16 MiB in an 8 MiB quota: Disk quota exceeded" t_fill_refused
acked=$(sed -n 's/^\([0-9]*\) bytes.*copied.*/\1/p' "$dd_out")
size=$(stat -c %s "$M1/fill")
check "the file holds exactly what was acknowledged ($acked bytes)" test "$size" = "$acked"
check "which is close to the quota" test "$size" -ge $((7 << 20)) -a "$size" -le $((8 << 20))
check "df: no room left" test "$(field "$M1" avail)" -lt 65536
t_acked_intact() { cmp -n "$acked" "$M1/fill" "$T/rand"; }
check "reading it back gives all of it" t_acked_intact

t_copy_up_refused() {
	if echo more >>"$M1/big" 2>"$T/err"; then
		echo "appending to a 12 MiB image file succeeded"
		return 1
	fi
	grep -q "Disk quota exceeded" "$T/err" || { cat "$T/err"; return 1; }
	cmp -s "$M1/big" "$T/src/big" || { echo "the image file changed"; return 1; }
}
check "a copy-up past the quota (append to a 12 MiB image file): EDQUOT, file unchanged" t_copy_up_refused
t_xattr_refused() {
	if setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' x)" "$M1/fill" 2>"$T/err"; then
		echo "setfattr succeeded on a full layer"
		return 1
	fi
	grep -q "Disk quota exceeded" "$T/err" || { cat "$T/err"; return 1; }
}
check "an xattr on a full layer: EDQUOT" t_xattr_refused

rm "$M1/fill"
check "rm frees the quota at once" test "$(field "$M1" used)" -lt 65536
t_write_again() {
	fill "$M1/again" 64 || { cat "$dd_out"; return 1; } # 4 MiB
	[ "$(stat -c %s "$M1/again")" = $((4 << 20)) ]
}
check "then 4 MiB fit again" t_write_again
t_other_client() {
	fill "$M2/large" 256 || { cat "$dd_out"; return 1; }
	[ "$(stat -c %s "$M2/large")" = $((16 << 20)) ]
}
check "a client without quota writes 16 MiB meanwhile" t_other_client

t_objects() {
	local i=0
	mkdir "$M1/many" || return 1
	while [ $i -lt 200 ] && touch "$M1/many/f$i" 2>"$T/err"; do i=$((i + 1)); done
	grep -q "Disk quota exceeded" "$T/err" || { echo "stopped at $i: $(cat "$T/err")"; return 1; }
	[ "$(field "$M1" iused)" = 100 ] || { echo "$(field "$M1" iused) objects used"; return 1; }
	[ "$(field "$M1" iavail)" = 0 ] || { echo "$(field "$M1" iavail) objects free"; return 1; }
	if mkdir "$M1/d" 2>/dev/null || ln -s x "$M1/l" 2>/dev/null || chmod 600 "$M1/etc/hostname" 2>/dev/null; then
		echo "mkdir, symlink or a chmod of an image file succeeded at the limit"
		return 1
	fi
	rm "$M1/many/f0" "$M1/many/f1" && mv "$M1/many/f2" "$M1/many/g2" || { echo "rm or mv failed"; return 1; }
	touch "$M1/many/new" || { echo "no room after removing two"; return 1; }
}
check "files past 100 objects: EDQUOT; rm and mv still work, and free objects" t_objects

used_before=$(field "$M1" used)
iused_before=$(field "$M1" iused)
t_change_mounted() {
	cow client set c1 --quota 32M --quota-files 1000 >"$T/out" 2>&1 || { cat "$T/out"; return 1; }
	grep -q "next opened" "$T/out" || { cat "$T/out"; return 1; }
	[ "$(field "$M1" size)" = $((8 << 20)) ] || { echo "the mounted view changed its quota"; return 1; }
}
check "a quota changed while mounted: said to apply at the next mount" t_change_mounted
fusermount3 -u "$M1"
sleep 0.5
cow mount c1 "$M1" || {
	bad "remount"
	finish
}
check "after a remount the new quota applies" test "$(field "$M1" size)" = $((32 << 20))
check "and the layer counts the same bytes ($used_before)" test "$(field "$M1" used)" = "$used_before"
check "and the same objects ($iused_before)" test "$(field "$M1" iused)" = "$iused_before"
t_list() {
	cow client list --json >"$T/list" || return 1
	python3 - "$T/list" "$used_before" "$iused_before" <<'PY'
import json, sys
c = {x["name"]: x for x in json.load(open(sys.argv[1]))}
q = c["c1"]["quota"]
assert q["bytes"] == 32 << 20 and q["files"] == 1000, q
assert q["used_bytes"] == int(sys.argv[2]) and q["used_files"] == int(sys.argv[3]), q
assert c["c2"]["quota"]["bytes"] == 0 and c["c2"]["quota"]["used_bytes"] >= 16 << 20, c["c2"]["quota"]
PY
}
check "client list --json shows each quota and what the layer holds" t_list
fusermount3 -u "$M1"
fusermount3 -u "$M2"
check "fsck is clean" cow fsck
finish
