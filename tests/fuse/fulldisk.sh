#!/bin/bash
# fuse-fulldisk: a client view on a store whose file system fills up.
#
# The store lives on a small tmpfs.  A writer fills it through the mount:
# writes must fail with ENOSPC (never corrupt anything), what was written
# before stays intact, a file can still be removed on the full disk (the
# database keeps room to record it), writing works again once space is
# free, and after unmount the store passes fsck and a remount shows exactly
# what the writer was told succeeded.
#
# Env: COWROOT  path of the built cowroot CLI
#      COW_FULL_RELATIVE=1  give the store as a path relative to the
#                           current directory (the daemon changes its own)
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_FULL_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (tmpfs and FUSE mounts)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to an executable ('${COWROOT:-}')" >&2
		exit 1
	fi
	export COW_FULL_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
	skip "cannot create a private mount/pid namespace with unshare"
fi

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/cowroot-full.XXXXXX") || exit 1
mount -t tmpfs -o size=48m cowroot-full "$T" || skip "cannot mount a tmpfs"
S=$T/store
M=$T/m
mkdir -p "$T/src/etc" "$M"
for i in $(seq 1 20); do echo "image file $i" >"$T/src/etc/f$i"; done
if [ -n "${COW_FULL_RELATIVE:-}" ]; then
	cd "$T" || exit 1
	cow() { "$COWROOT" --store store "$@"; }
else
	cow() { "$COWROOT" --store "$S" "$@"; }
fi
trap 'fusermount3 -u "$M" 2>/dev/null; umount -l "$T" 2>/dev/null; rm -rf "$T"' EXIT

cow init >/dev/null && cow image import base "$T/src" >/dev/null && cow client add c --image base >/dev/null ||
	{ bad "setup"; finish; }
cow mount c "$M" || { bad "mount"; finish; }

# files written (and fsync'd) before the disk fills
for i in $(seq 1 50); do
	printf 'before %s\n' "$i" >"$M/etc/before$i" || bad "write before$i"
done
sync -f "$M/etc/before1"

t_fill_gives_enospc() {
	local err
	err=$(dd if=/dev/zero of="$M/big" bs=1M count=100 conv=fsync 2>&1) && {
		echo "100 MiB fitted on a 48 MiB store"
		return 1
	}
	grep -q "No space left on device" <<<"$err" || { echo "dd failed otherwise: $err"; return 1; }
}
check "filling the store gives ENOSPC" t_fill_gives_enospc

t_small_writes_fail_cleanly() {
	# each either succeeds or fails with ENOSPC; remember which
	: >"$T/ok-list"
	for i in $(seq 1 30); do
		if (printf 'after %s\n' "$i" >"$M/etc/after$i") 2>"$T/err"; then
			echo "after$i" >>"$T/ok-list"
		elif ! grep -q "No space left" "$T/err"; then
			echo "after$i failed otherwise: $(cat "$T/err")"
			return 1
		fi
	done
}
check "small writes on the full store succeed or give ENOSPC" t_small_writes_fail_cleanly

t_old_files_intact() {
	for i in $(seq 1 50); do
		[ "$(cat "$M/etc/before$i")" = "before $i" ] || { echo "before$i changed"; return 1; }
	done
	[ "$(cat "$M/etc/f7")" = "image file 7" ] || { echo "image file changed"; return 1; }
}
check "files written before are intact" t_old_files_intact

t_rm_on_full_disk() {
	rm "$M/big" || return 1
	[ ! -e "$M/big" ] || { echo "big still there"; return 1; }
}
check "a file can be removed on the full store" t_rm_on_full_disk

t_writes_work_again() {
	# the data file goes once the removal is committed (within seconds)
	for _ in $(seq 100); do
		[ "$(df --output=avail -k "$T" | tail -1)" -gt 20000 ] && break
		sleep 0.1
	done
	dd if=/dev/zero of="$M/again" bs=1M count=8 conv=fsync 2>&1 || return 1
	echo again >"$M/etc/again" || return 1
	rm "$M/again"
}
check "writing works again once space is free" t_writes_work_again

fusermount3 -u "$M" || bad "unmount"
sleep 0.5

t_fsck_clean() {
	cow fsck
}
check "fsck is clean afterwards" t_fsck_clean

t_remount_matches() {
	cow mount c "$M" || return 1
	for i in $(seq 1 50); do
		[ "$(cat "$M/etc/before$i")" = "before $i" ] || { echo "before$i lost"; return 1; }
	done
	while read -r f; do
		n=${f#after}
		[ "$(cat "$M/etc/$f")" = "after $n" ] || { echo "$f was written but is not there"; return 1; }
	done <"$T/ok-list"
	[ "$(cat "$M/etc/again")" = again ] || { echo "etc/again lost"; return 1; }
	[ ! -e "$M/big" ] || { echo "the removed file is back"; return 1; }
	fusermount3 -u "$M"
}
check "a remount shows exactly what succeeded" t_remount_matches

finish
