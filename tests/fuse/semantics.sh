#!/bin/bash
# fuse-semantics: mount cowroot views over FUSE and check them with real syscalls.
#
# Env: COWROOT       path of the built cowroot CLI
#      COW_SEMANTICS path of the built semantics binary (tests/fuse/semantics.c)
#      COW_KEEP=1    keep the temp dir (store, fixture) for inspection
#
# Runs inside a private mount + pid namespace (it re-executes itself under unshare), so no
# mount or daemon outlives it.  Prints "ok NAME" / "FAIL NAME: reason" per check and ends with
# "N passed, N failed"; exit 0 if all passed, 1 on any failure, 77 when the machine lacks a
# facility (root, /dev/fuse, fusermount3, unshare).
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_SEM_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (mounts, mknod of devices, chown, trusted.* xattrs)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	for v in COWROOT COW_SEMANTICS; do
		if [ -z "${!v:-}" ] || [ ! -x "${!v}" ]; then
			echo "FAIL: \$$v is not set to an executable ('${!v:-}')" >&2
			exit 1
		fi
	done
	export COW_SEM_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --mount --propagation private --pid --fork --kill-child --mount-proc \
		"$0" "$@"
	skip "cannot create a private mount/pid namespace with unshare"
fi

# ---- inside the namespace ----------------------------------------------------------------------

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/cowroot-fuse.XXXXXX") || { echo "FAIL: mktemp" >&2; exit 1; }
S=$T/store
FIX=$T/fixture
M1=$T/m1
M2=$T/m2
M3=$T/m3
M4=$T/m4
mkdir -p "$M1" "$M2" "$M3" "$M4"

unmount_all() {
	local m
	for m in "$M1" "$M2" "$M3" "$M4"; do
		if mountpoint -q "$m"; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null ||
				umount -l "$m" 2>/dev/null
		fi
	done
}
cleanup() {
	unmount_all
	if [ -n "${COW_KEEP:-}" ]; then
		echo "kept $T"
	elif ! grep -qF " $T/" /proc/self/mounts; then
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cow() { timeout -k 5 120 "$COWROOT" --store "$S" "$@"; }
ino() { stat -c %i -- "$1"; }

# ---- fixture -----------------------------------------------------------------------------------

# struct vfs_cap_data v2: cap_net_raw=ep
CAP_HEX=0x0100000200200000000000000000000000000000
# POSIX ACL v2: user::rwx user:1000:r-- group::r-x mask::r-x other::r--
ACL_HEX=0x0200000001000700ffffffff02000400e803000004000500ffffffff10000500ffffffff20000400ffffffff

build_fixture() {
	local F=$1 i
	set -e
	mkdir -p "$F"/{etc/deldir/inner,etc/cdev-parent,usr/bin,usr/lib,var/many,var/empty,var/mail}
	mkdir -p "$F"/{dev,run,opt/renameme/sub,home/user,tmp}
	printf 'fixture\n' >"$F/etc/hostname"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$F/etc/passwd"
	printf 'welcome\n' >"$F/etc/motd"
	: >"$F/etc/empty"
	head -c 2500000 /dev/urandom >"$F/usr/bin/big"
	printf 'gzip binary\n' >"$F/usr/bin/gzip"
	ln "$F/usr/bin/gzip" "$F/usr/bin/gunzip"
	printf 'su binary\n' >"$F/usr/bin/su"
	chmod 4755 "$F/usr/bin/su"
	printf 'wall\n' >"$F/usr/bin/wall"
	chown 0:5 "$F/usr/bin/wall"
	chmod 2755 "$F/usr/bin/wall"
	printf 'ping binary\n' >"$F/usr/bin/ping"
	chmod 0755 "$F/usr/bin/ping"
	setfattr -n user.comment -v "pings things" "$F/usr/bin/ping"
	setfattr -n security.capability -v "$CAP_HEX" "$F/usr/bin/ping"
	printf 'library\n' >"$F/usr/lib/libfoo.so.1"
	ln -s libfoo.so.1 "$F/usr/lib/libfoo.so"
	truncate -s 64M "$F/usr/lib/sparse.img"
	printf 'end' | dd of="$F/usr/lib/sparse.img" bs=1 seek=$((40 * 1024 * 1024)) conv=notrunc status=none
	ln -s /nonexistent/target "$F/etc/dangling"
	mknod "$F/dev/null" c 1 3
	mknod "$F/dev/loop0" b 7 0
	chmod 0660 "$F/dev/loop0"
	mkfifo "$F/run/initctl"
	for i in $(seq -w 0 49); do printf 'file %s\n' "$i" >"$F/var/many/f$i"; done
	setfattr -n user.dirattr -v "on a dir" "$F/var/many"
	chown 0:8 "$F/var/mail"
	chmod 2775 "$F/var/mail"
	chmod 1777 "$F/tmp"
	printf 'export PS1\n' >"$F/home/user/.profile"
	chown -R 1000:1000 "$F/home/user"
	chmod 0700 "$F/home/user"
	printf 'one\n' >"$F/opt/renameme/file1"
	printf 'two\n' >"$F/opt/renameme/sub/file2"
	printf 'a\n' >"$F/etc/deldir/a"
	printf 'b\n' >"$F/etc/deldir/inner/b"
	for i in x y z; do printf '%s\n' "$i" >"$F/etc/cdev-parent/$i"; done
	printf 'acl\n' >"$F/etc/acl-file"
	setfattr -n system.posix_acl_access -v "$ACL_HEX" "$F/etc/acl-file"
	# times last, children before parents, with nanoseconds
	find "$F" -depth -exec touch -h -d @1600000000.123456789 {} +
	touch -h -d @1234567890.987654321 "$F/etc/hostname" "$F/usr/lib/libfoo.so"
	touch -h -d @2240000000.000000001 "$F/etc/motd"
	touch -h -d @1600000000.123456789 "$F"
	set +e
}

# listing DIR: one line per object below DIR (a top-level "scratch" is left out):
# 1 path|2 type|3 mode|4 uid:gid|5 size|6 nlink|7 mtime|8 rdev|9 target|10 sha256|11 xattrs|12 ino
listing() {
	local d=$1 p st type size rdev target sum xat
	(cd "$d" && find . -mindepth 1 -path ./scratch -prune -o -print0) | LC_ALL=C sort -z |
		while IFS= read -r -d '' p; do
			st=$(stat -c '%F|%a|%u:%g|%s|%h|%.9Y|%t:%T|%i' -- "$d/$p") || st="?|?|?|?|?|?|?|?"
			IFS='|' read -r type mode own size nlink mtime rdev ino <<<"$st"
			target=- sum=-
			case $type in
			directory) size=- ;;
			symbolic\ link) target=$(readlink -- "$d/$p") ;;
			regular*) sum=$(sha256sum <"$d/$p" | cut -c1-16) ;;
			esac
			case $type in *special*) ;; *) rdev=- ;; esac
			xat=$(getfattr -h -d -m - -e hex -- "$d/$p" 2>/dev/null | grep -v '^#' | grep . |
				LC_ALL=C sort | tr '\n' ' ')
			echo "$p|$type|$mode|$own|$size|$nlink|$mtime|$rdev|$target|$sum|${xat:--}|$ino"
		done
}

# same_cols A B FIELDS: the two listings agree on those fields.
same_cols() {
	local out
	out=$(diff <(cut -d'|' -f"$3" "$1") <(cut -d'|' -f"$3" "$2")) && return 0
	echo "$(grep -c '^[<>]' <<<"$out") differing lines; $(grep '^[<>]' <<<"$out" | head -n 6 | tr '\n' ' ')"
	return 1
}

# compare_view LABEL LISTING: the fixture listing against a view's listing, per aspect.
compare_view() {
	local label=$1 l=$2
	check "$label: same names" same_cols "$T/fix.before" "$l" 1
	check "$label: types" same_cols "$T/fix.before" "$l" 1,2
	check "$label: modes" same_cols "$T/fix.before" "$l" 1,3
	check "$label: owners" same_cols "$T/fix.before" "$l" 1,4
	check "$label: sizes" same_cols "$T/fix.before" "$l" 1,5
	check "$label: nlink" same_cols "$T/fix.before" "$l" 1,6
	check "$label: mtimes (ns)" same_cols "$T/fix.before" "$l" 1,7
	check "$label: device numbers" same_cols "$T/fix.before" "$l" 1,8
	check "$label: symlink targets" same_cols "$T/fix.before" "$l" 1,9
	check "$label: file contents" same_cols "$T/fix.before" "$l" 1,10
	check "$label: xattrs (getfattr -d -m -)" same_cols "$T/fix.before" "$l" 1,11
}

# ---- cowroot-specific checks on a read-write view ----------------------------------------------

c_cmp_all() { # every fixture file reads identically (cmp) through view $1
	local p n=0
	while IFS= read -r -d '' p; do
		cmp -- "$FIX/$p" "$1/$p" || return 1
		n=$((n + 1))
	done < <(cd "$FIX" && find . -type f -print0)
	[ "$n" -gt 50 ] || { echo "only $n files compared"; return 1; }
}

c_getcap() {
	command -v getcap >/dev/null || return 0
	local out
	out=$(getcap "$M1/usr/bin/ping") || return 1
	grep -q 'cap_net_raw=ep' <<<"$out" || { echo "getcap says '$out'"; return 1; }
}

c_hardlink_base() {
	local a b
	a=$(stat -c '%i %h' "$M1/usr/bin/gzip") b=$(stat -c '%i %h' "$M1/usr/bin/gunzip")
	[ "$a" = "$b" ] || { echo "gzip '$a' gunzip '$b' (ino nlink)"; return 1; }
	[ "${a#* }" = 2 ] || { echo "nlink ${a#* }"; return 1; }
}

c_append_copyup() {
	local f=$M1/usr/bin/big i0 i1
	i0=$(ino "$f") || return 1
	printf 'TAIL' >>"$f" || return 1
	i1=$(ino "$f")
	[ "$i0" = "$i1" ] || { echo "st_ino $i0 -> $i1 after copy-up"; return 1; }
	{ cat "$FIX/usr/bin/big"; printf 'TAIL'; } >"$T/big.expect"
	cmp "$T/big.expect" "$f"
}

c_large_writes() { # 1 MiB writes arrive spliced (max_write 1 MiB - 4 KiB): data must land whole
	local f=$M1/scratch/large
	head -c $((5 * 1024 * 1024 + 12345)) /dev/urandom >"$T/rand" || return 1
	cp "$T/rand" "$T/large.expect" || return 1
	dd if="$T/rand" of="$f" bs=1M status=none || return 1
	# overwrite an unaligned range with unaligned requests, on both sides
	for g in "$f" "$T/large.expect"; do
		dd if="$T/rand" of="$g" bs=777777 skip=2 seek=3 count=2 conv=notrunc status=none || return 1
	done
	cmp "$T/large.expect" "$f" || return 1
	sync && echo 3 >/proc/sys/vm/drop_caches # read back from the data file
	cmp "$T/large.expect" "$f"
}

c_fd_before_copyup() { # a read fd opened before copy-up sees data written after it
	local f=$M1/etc/motd got
	exec 7<"$f" || return 1
	printf 'more\n' >>"$f" || return 1
	got=$(cat <&7)
	exec 7<&-
	[ "$got" = "$(printf 'welcome\nmore')" ] || { echo "old fd reads '$got'"; return 1; }
}

c_hardlink_copyup() {
	local a=$M1/usr/bin/gzip b=$M1/usr/bin/gunzip i0 i1 i2
	i0=$(ino "$a")
	printf 'new gzip\n' >"$a" || return 1
	[ "$(cat "$b")" = "new gzip" ] || { echo "gunzip reads '$(cat "$b")' after writing gzip"; return 1; }
	i1=$(ino "$a") i2=$(ino "$b")
	[ "$i0" = "$i1" ] && [ "$i1" = "$i2" ] || { echo "ino before $i0, gzip $i1, gunzip $i2"; return 1; }
	[ "$(stat -c %h "$b")" = 2 ] || { echo "nlink $(stat -c %h "$b")"; return 1; }
	chmod 0700 "$b" || return 1
	[ "$(stat -c %a "$a")" = 700 ] || { echo "chmod via gunzip not seen via gzip"; return 1; }
	# a new link to a base file in the layer
	ln "$M1/etc/hostname" "$M1/etc/hostname.link" || return 1
	[ "$(stat -c '%i %h' "$M1/etc/hostname")" = "$(stat -c '%i %h' "$M1/etc/hostname.link")" ] ||
		{ echo "new link differs from base file"; return 1; }
	[ "$(stat -c %h "$M1/etc/hostname")" = 2 ] || { echo "nlink after ln not 2"; return 1; }
	cmp "$FIX/etc/hostname" "$M1/etc/hostname.link"
}

c_metacopy_ino() {
	local f=$M1/usr/lib/libfoo.so.1 i0 i
	i0=$(ino "$f")
	chmod 0600 "$f" || return 1
	i=$(ino "$f"); [ "$i" = "$i0" ] || { echo "ino changed by chmod"; return 1; }
	chown 123:456 "$f" || return 1
	i=$(ino "$f"); [ "$i" = "$i0" ] || { echo "ino changed by chown"; return 1; }
	setfattr -n user.added -v yes "$f" || return 1
	i=$(ino "$f"); [ "$i" = "$i0" ] || { echo "ino changed by setxattr"; return 1; }
	touch -d @1500000000.5 "$f" || return 1
	i=$(ino "$f"); [ "$i" = "$i0" ] || { echo "ino changed by utimes"; return 1; }
	[ "$(stat -c '%a %u:%g %.9Y' "$f")" = "600 123:456 1500000000.500000000" ] ||
		{ echo "attrs now $(stat -c '%a %u:%g %.9Y' "$f")"; return 1; }
	[ "$(getfattr --only-values -n user.added "$f")" = yes ] || return 1
	cmp "$FIX/usr/lib/libfoo.so.1" "$f"
}

c_delete_base() {
	rm "$M1/etc/passwd" || return 1
	[ ! -e "$M1/etc/passwd" ] || { echo "etc/passwd still exists"; return 1; }
	# shellcheck disable=SC2010 # fixture names are plain
	ls -A "$M1/etc" | grep -qx passwd && { echo "etc/passwd still listed"; return 1; }
	printf 'new\n' >>"$M1/etc/passwd" || return 1
	[ "$(cat "$M1/etc/passwd")" = new ] || { echo "recreated file reads old data"; return 1; }
	rm -rf "$M1/etc/deldir" || return 1
	[ ! -e "$M1/etc/deldir" ] || { echo "etc/deldir still exists"; return 1; }
	mkdir "$M1/etc/deldir" || return 1
	local l
	l=$(ls -A "$M1/etc/deldir")
	[ -z "$l" ] || { echo "recreated dir lists: $l"; return 1; }
	[ ! -e "$M1/etc/deldir/inner/b" ] || { echo "old grandchild reachable"; return 1; }
}

c_rename_base_dir() {
	local d=$M1/opt/renameme i0 i1
	printf 'changed\n' >>"$d/sub/file2" || return 1 # a copied-up child inside
	i0=$(ino "$d")
	perl -e 'rename($ARGV[0], $ARGV[1]) or do { print "rename: $!\n"; exit 1 }' \
		"$d" "$M1/opt/renamed" || return 1
	[ ! -e "$d" ] || { echo "old name still exists"; return 1; }
	i1=$(ino "$M1/opt/renamed")
	[ "$i0" = "$i1" ] || { echo "dir st_ino $i0 -> $i1"; return 1; }
	cmp "$FIX/opt/renameme/file1" "$M1/opt/renamed/file1" || return 1
	[ "$(cat "$M1/opt/renamed/sub/file2")" = "$(printf 'two\nchanged')" ] ||
		{ echo "copied-up child lost"; return 1; }
	[ "$(ls -A "$M1/opt/renamed" | tr '\n' ' ')" = "file1 sub " ] ||
		{ echo "lists $(ls -A "$M1/opt/renamed")"; return 1; }
	# and a new dir with the old name is empty
	mkdir "$d" && [ -z "$(ls -A "$d")" ] || { echo "new dir at old name not empty"; return 1; }
}

c_mknod00() {
	local d=$M1/etc/cdev-parent
	mknod "$d/wh" c 0 0 || return 1
	[ "$(ls -A "$d" | tr '\n' ' ')" = "wh x y z " ] || { echo "dir lists '$(ls -A "$d" | tr '\n' ' ')'"; return 1; }
	[ "$(stat -c '%F %t:%T' "$d/wh")" = "character special file 0:0" ] || return 1
	cmp "$FIX/etc/cdev-parent/x" "$d/x" || return 1
	rm "$d/y" && mknod "$d/y" c 0 0 || return 1
	[ "$(stat -c '%F %t:%T' "$d/y")" = "character special file 0:0" ] ||
		{ echo "y over a deleted base file: $(stat -c '%F %t:%T' "$d/y" 2>&1)"; return 1; }
	[ "$(ls -A "$d" | tr '\n' ' ')" = "wh x y z " ] || { echo "dir lists '$(ls -A "$d" | tr '\n' ' ')'"; return 1; }
}

c_setcap_layer() { # security.capability set in the layer on a base file
	local got
	setfattr -n security.capability -v "$CAP_HEX" "$M1/usr/bin/su" || return 1
	got=$(getfattr -e hex -n security.capability "$M1/usr/bin/su" 2>&1 | grep '=')
	[ "$got" = "security.capability=$CAP_HEX" ] || { echo "reads '$got'"; return 1; }
}

c_second_mount() { # one process owns a layer for writing at a time
	local rc
	cow mount c1 "$M4" >"$T/out" 2>"$T/err"
	rc=$?
	if mountpoint -q "$M4"; then
		fusermount3 -u "$M4"
		echo "a second mount of c1 succeeded (rc $rc)"
		return 1
	fi
	[ "$rc" != 0 ] && [ "$rc" -lt 128 ] && [ -s "$T/err" ] ||
		{ echo "rc $rc, stderr '$(head -c 300 "$T/err")'"; return 1; }
}

mount_view() { # mount_view MOUNTPOINT ARGS...: mount (retrying while a lock is released)
	local m=$1 i rc
	shift
	# output to files: a daemon holding a pipe open would hang a $(...) capture
	for i in 1 2 3 4 5 6 7 8 9 10; do
		cow mount "$@" "$m" >"$T/mount.out" 2>"$T/mount.err"
		rc=$?
		if mountpoint -q "$m"; then # "mount" returns only once the view is mounted
			[ "$rc" = 0 ] && return 0
			echo "mounted, but exit $rc"
			return 1
		fi
		sleep 0.5 # a daemon that was just unmounted may still hold its lock
	done
	echo "cannot mount $* on $m: $(head -c 300 "$T/mount.err")"
	return 1
}

c_remount() {
	listing "$M1" >"$T/m1.before" || return 1
	fusermount3 -u "$M1" || { echo "fusermount3 -u failed"; return 1; }
	mountpoint -q "$M1" && { echo "still mounted"; return 1; }
	mount_view "$M1" c1 || return 1
	listing "$M1" >"$T/m1.after" || return 1
	same_cols "$T/m1.before" "$T/m1.after" 1-12
}

c_readonly_image() {
	local out e=0
	for cmd in "touch $M3/newfile" "mkdir $M3/newdir" "sh -c ': >>$M3/etc/hostname'" \
		"rm $M3/etc/motd" "chmod 0777 $M3/etc/hostname" "ln -s x $M3/etc/newlink" \
		"setfattr -n user.x -v 1 $M3/etc/hostname" "mv $M3/etc/motd $M3/etc/motd2" \
		"mknod $M3/etc/c00 c 0 0"; do
		out=$(eval "$cmd" 2>&1) && { echo "'$cmd' succeeded"; e=1; continue; }
		grep -q 'Read-only file system' <<<"$out" || { echo "'$cmd': $out"; e=1; }
	done
	return $e
}

# bad_input NAME ONE_LINE CMD...: CMD must fail cleanly: 0 < rc < 128, stderr non-empty
# (exactly one line if ONE_LINE=1).
c_bad_input() {
	local one=$1 rc lines
	shift
	timeout -k 5 60 "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	[ "$rc" != 0 ] || { echo "exit 0 (stdout: $(head -c 200 "$T/out"))"; return 1; }
	[ "$rc" -lt 124 ] || { echo "exit $rc (crash or timeout); stderr: $(head -c 300 "$T/err")"; return 1; }
	[ -s "$T/err" ] || { echo "exit $rc with nothing on stderr"; return 1; }
	grep -qiE 'sanitizer|segmentation|assert|core dumped' "$T/err" &&
		{ echo "stderr: $(head -c 300 "$T/err")"; return 1; }
	lines=$(wc -l <"$T/err")
	if [ "$one" = 1 ] && [ "$lines" != 1 ]; then
		echo "$lines lines on stderr: $(head -c 300 "$T/err" | tr '\n' ' ')"
		return 1
	fi
	return 0
}

c_mount_nosuchclient() {
	c_bad_input 1 "$COWROOT" --store "$S" mount nosuchclient "$M4"
	local r=$?
	mountpoint -q "$M4" && { fusermount3 -u "$M4"; echo "it mounted"; return 1; }
	return $r
}

c_garbage_db() { # $1: random | truncated
	local s2=$T/store-$1
	"$COWROOT" --store "$s2" init >/dev/null 2>&1 || { echo "init failed"; return 1; }
	[ -f "$s2/cowroot.db" ] || { echo "no cowroot.db in a fresh store"; return 1; }
	rm -f "$s2/cowroot.db-wal" "$s2/cowroot.db-shm"
	if [ "$1" = random ]; then
		head -c 65536 /dev/urandom >"$s2/cowroot.db"
	else # a valid header, garbage pages
		head -c 100 "$s2/cowroot.db" >"$T/db" && head -c 16284 /dev/urandom >>"$T/db" &&
			mv "$T/db" "$s2/cowroot.db"
	fi
	c_bad_input 0 "$COWROOT" --store "$s2" client list || return 1
	c_bad_input 0 "$COWROOT" --store "$s2" client add x --image base || return 1
}

# ---- run ---------------------------------------------------------------------------------------

echo "# temp dir $T"
if ! (build_fixture "$FIX") >"$T/fixture.log" 2>&1; then
	if grep -q 'Operation not supported' "$T/fixture.log"; then
		skip "the temp dir's filesystem lacks xattrs/ACLs: $(tail -n 1 "$T/fixture.log")"
	fi
	bad "build fixture: $(tail -n 3 "$T/fixture.log" | tr '\n' ' ')"
	finish
fi
listing "$FIX" >"$T/fix.before"

setup_ok=1
step() { # step NAME CMD...: a setup command; failure stops the cowroot checks
	local name=$1
	shift
	if "$@" >"$T/out" 2>"$T/err"; then
		ok "$name"
	else
		bad "$name: exit $?: $(head -c 400 "$T/err" | tr '\n' ' ')"
		setup_ok=0
	fi
}
step "store init" cow init
[ $setup_ok = 1 ] && step "image import" cow image import base "$FIX"
[ $setup_ok = 1 ] && step "client add c1" cow client add c1 --image base
[ $setup_ok = 1 ] && step "client add c2" cow client add c2 --image base
[ $setup_ok = 1 ] && step "mount c1" mount_view "$M1" c1
[ $setup_ok = 1 ] && step "mount c2" mount_view "$M2" c2
if [ $setup_ok = 0 ]; then
	check "mount nosuchclient fails with a one-line error" c_mount_nosuchclient
	finish
fi

listing "$M1" >"$T/m1.initial"
compare_view "c1 view matches fixture" "$T/m1.initial"
check "c1: every fixture file reads identically (cmp)" c_cmp_all "$M1"
check "c1: getcap sees cap_net_raw=ep" c_getcap
check "c1: base hardlink pair shares st_ino, nlink 2" c_hardlink_base

mkdir "$M1/scratch"
echo "# semantics $M1/scratch"
timeout -k 10 420 "$COW_SEMANTICS" "$M1/scratch" >"$T/semantics.out" 2>&1
rc=$?
sed 's/^/#   /' "$T/semantics.out"
if [ $rc = 0 ]; then
	ok "semantics on c1 ($(tail -n 1 "$T/semantics.out"))"
else
	bad "semantics on c1: exit $rc: $(tail -n 1 "$T/semantics.out"); failing: $(grep '^FAIL' "$T/semantics.out" | cut -d: -f1 | cut -c6- | tr '\n' ' ')"
fi

check "copy-up: append to base file keeps st_ino, content right" c_append_copyup
check "copy-up: fd opened before copy-up sees the write" c_fd_before_copyup
check "large writes (spliced requests) read back whole, also uncached" c_large_writes
check "copy-up: hardlinks stay linked across copy-up" c_hardlink_copyup
check "metacopy: chmod/chown/setxattr/utimes on base file keep st_ino" c_metacopy_ino
check "delete base file and base dir, recreate: empty" c_delete_base
check "rename base dir with contents (no EXDEV), keeps st_ino" c_rename_base_dir
check "mknod c 0 0 in base dir keeps siblings visible" c_mknod00
check "security.capability set on a base file" c_setcap_layer
check "second mount of c1 is refused (layer lock)" c_second_mount
check "remount c1: same st_ino, metadata and content" c_remount

listing "$M2" >"$T/m2.listing"
compare_view "c2 sees none of c1's changes" "$T/m2.listing"
check "c2: every fixture file reads identically (cmp)" c_cmp_all "$M2"

if mount_view "$M3" --image base >"$T/out" 2>&1; then
	ok "mount --image base (read-only view)"
	listing "$M3" >"$T/m3.listing"
	check "image view matches fixture" same_cols "$T/fix.before" "$T/m3.listing" 1-11
	check "image view refuses writes with EROFS" c_readonly_image
else
	bad "mount --image base (read-only view): $(head -c 300 "$T/out" | tr '\n' ' ')"
fi

check "mount nosuchclient fails with a one-line error" c_mount_nosuchclient
check "client add --image nosuchimage fails" c_bad_input 0 "$COWROOT" --store "$S" client add x --image nosuchimage
check "image import of an existing name fails" c_bad_input 0 "$COWROOT" --store "$S" image import base "$FIX"
check "--store /nonexistent client list fails" c_bad_input 0 "$COWROOT" --store /nonexistent/store client list
check "garbage cowroot.db: clean error" c_garbage_db random
check "corrupt cowroot.db pages: clean error" c_garbage_db truncated
check "c1 still works after the bad input" cmp "$FIX/etc/hostname" "$M1/etc/hostname"

for m in "$M1" "$M2" "$M3"; do
	mountpoint -q "$m" || continue
	check "unmount $(basename "$m")" fusermount3 -u "$m"
done

listing "$FIX" >"$T/fix.after"
check "fixture dir unchanged (content, metadata, st_ino)" same_cols "$T/fix.before" "$T/fix.after" 1-12

finish
