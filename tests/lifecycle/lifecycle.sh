#!/bin/bash
# The lifecycle commands through the CLI and real FUSE mounts:
#   - every command's success path and its bad input (wrong arguments exit 2;
#     unknown clients and images, bad names, damaged bundles, images in use
#     exit 1 with a message that says what is wrong),
#   - safety while mounted: reset, snapshot, rebase and rm of a mounted client
#     refuse, naming the mount point, and the mount keeps working,
#   - interruption: kill -9 in the middle of import, flatten, export and load
#     of a large tree, then fsck --repair, a clean fsck and the earlier images
#     intact; SIGINT of a long operation says "interrupted" and changes nothing,
#   - the story of the issue: import, two clients write through mounts, diff,
#     snapshot one, rebase the other onto it, reset one, export the image and
#     load it into a second store, then compare the trees of both mounts.
#
# Env: COWROOT (the cowroot binary); COW_VERSION (what its --version must
# say, the meson project's); COW_FIXTURE_CACHE (where the realworld
# test caches its debootstrap tree, used as the large tree when present);
# COW_KEEP=1 keeps the temp dir.  Needs root and /dev/fuse (exit 77 without).
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_LIFE_INNER:-}" ]; then
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to the cowroot binary" >&2
		exit 1
	fi
	if [ -z "${COW_VERSION:-}" ]; then
		echo "FAIL: \$COW_VERSION is not set to the version cowroot must print" >&2
		exit 1
	fi
	[ "$(id -u)" = 0 ] || skip "needs root (mounts, device nodes, chown, security.* xattrs)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
	unshare --mount --propagation private --pid --fork true 2>/dev/null ||
		skip "cannot create mount and pid namespaces here"
	export COW_LIFE_INNER=1
	exec unshare --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
fi

# ---- inside the namespace ----------------------------------------------------------------------

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"
note() { sed 's/^/#   /'; }

T=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-life.XXXXXX") || { echo "FAIL: mktemp" >&2; exit 1; }
S=$T/store
S2=$T/store2
FIX=$T/fixture
mkdir -p "$T"/m1 "$T"/m2 "$T"/ma "$T"/mb

daemons=()
cleanup() {
	local m p
	for m in "$T"/m1 "$T"/m2 "$T"/ma "$T"/mb; do
		mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
	done
	for p in "${daemons[@]}"; do kill -9 "$p" 2>/dev/null; done
	if [ -n "${COW_KEEP:-}" ]; then
		echo "# kept $T"
	elif ! grep -qF " $T/" /proc/self/mounts; then
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cow STORE ARGS...: run the CLI; its stdout+stderr land in $T/out, $rc is its exit status.
cow() {
	local store=$1
	shift
	timeout -k 5 120 "$COWROOT" --store "$store" "$@" >"$T/out" 2>&1
	rc=$?
	return 0
}
# expect RC PATTERN STORE ARGS...: the command exits RC and its output matches PATTERN (grep -E).
expect() {
	local want=$1 pattern=$2
	shift 2
	cow "$@"
	if [ "$rc" != "$want" ]; then
		echo "exit $rc, want $want: $(tr '\n' ' ' <"$T/out")"
		return 1
	fi
	if [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$T/out"; then
		echo "output does not match /$pattern/: $(tr '\n' ' ' <"$T/out")"
		return 1
	fi
}
images() { "$COWROOT" --store "$1" image list --json; }
fsck_clean() { # STORE
	expect 0 "is consistent; nothing changed" "$1" fsck
}

# mount_fg STORE MOUNTPOINT ARGS...: a foreground daemon in the background; $daemon is its pid.
mount_fg() {
	local store=$1 m=$2 i
	shift 2
	"$COWROOT" --store "$store" mount "$@" "$m" -f >"$T/mount.log" 2>&1 &
	daemon=$!
	daemons+=("$daemon")
	for i in $(seq 1 200); do
		mountpoint -q "$m" && return 0
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.05
	done
	note <"$T/mount.log"
	return 1
}
# unmount NAME MOUNTPOINT PID: unmount and wait for the daemon to write back and exit (in this
# shell, not under check: the daemon is this shell's child).
unmount() {
	if fusermount3 -u "$2" && wait "$3"; then
		ok "$1"
	else
		bad "$1"
	fi
}

# ---- fixture: a small rich tree ------------------------------------------------------------------

# struct vfs_cap_data v2: cap_net_raw=ep
CAP_HEX=0x0100000200200000000000000000000000000000
build_fixture() {
	local F=$1 i
	mkdir -p "$F"/{etc/default,usr/bin,usr/lib,var/lib/dpkg,dev,run,tmp} || return 1
	printf 'fixture\n' >"$F/etc/hostname" || return 1
	printf 'welcome\n' >"$F/etc/motd" || return 1
	printf 'X=1\n' >"$F/etc/default/conf" || return 1
	printf 'gzip binary\n' >"$F/usr/bin/gzip" || return 1
	ln "$F/usr/bin/gzip" "$F/usr/bin/gunzip" || return 1
	printf 'ping\n' >"$F/usr/bin/ping" || return 1
	setfattr -n security.capability -v "$CAP_HEX" "$F/usr/bin/ping" || return 1
	setfattr -n user.comment -v "pings" "$F/usr/bin/ping" || return 1
	printf 'su\n' >"$F/usr/bin/su" || return 1
	chmod 4755 "$F/usr/bin/su" || return 1
	chown 0:5 "$F/usr/bin/su" || return 1
	printf 'lib\n' >"$F/usr/lib/libfoo.so.1" || return 1
	ln -s libfoo.so.1 "$F/usr/lib/libfoo.so" || return 1
	ln -s /nonexistent "$F/etc/dangling" || return 1
	truncate -s 32M "$F/usr/lib/sparse.img" || return 1
	printf 'end' | dd of="$F/usr/lib/sparse.img" bs=1 seek=$((20 * 1024 * 1024)) conv=notrunc status=none || return 1
	head -c 300000 /dev/urandom >"$F/usr/lib/random.bin" || return 1
	mknod "$F/dev/null" c 1 3 || return 1
	mknod "$F/dev/loop0" b 7 0 || return 1
	mkfifo "$F/run/initctl" || return 1
	chmod 1777 "$F/tmp" || return 1
	for i in $(seq 1 20); do printf 'pkg %s\n' "$i" >"$F/var/lib/dpkg/p$i"; done || return 1
	chown -R 100:101 "$F/var/lib/dpkg" || return 1
}

# dump DIR: a text picture of a tree: every path with type+mode, owner, link count, size, mtime
# and link target; device numbers; content checksums; all xattrs.
dump() {
	(
		cd "$1" || exit 1
		find . -printf '%p %M %U %G %n %s %T@ %l\n' | sort
		find . \( -type b -o -type c \) -exec stat -c '%n dev %t:%T' {} + | sort
		find . -type f -print0 | sort -z | xargs -0 -r md5sum
		# one line per file's xattrs, sorted
		getfattr -R -h -d -m - -e hex . 2>/dev/null |
			awk '/^# file:/ { if (l) print l; l = $0; next } NF { l = l " " $0 } END { if (l) print l }' | sort
	)
}

# ---- setup -------------------------------------------------------------------------------------

build_fixture "$FIX" >"$T/fixture.log" 2>&1 || { note <"$T/fixture.log"; bad "build the fixture"; finish; }
check "init" expect 0 "initialised store" "$S" init
check "init on an existing store fails" expect 1 "already exists" "$S" init
check "image import" expect 0 "imported" "$S" image import img "$FIX"
check "image import under a taken name" expect 1 "already exists" "$S" image import img "$FIX"
check "client add c1" expect 0 "" "$S" client add c1 --image img
check "client add c2" expect 0 "" "$S" client add c2 --image img

# ---- wrong arguments: exit 2 with a usage line ----------------------------------------------------

usage_cases=(
	"client reset" "client reset c1 c2" "client rm" "client rm c1 c2" "client diff" "client diff c1 c2"
	"client snapshot c1" "client snapshot c1 a b" "client rebase c1" "client rebase --onto img"
	"client rebase c1 --onto" "client rebase c1 c2 --onto img" "image show" "image rm" "image rm a b"
	"image flatten img" "image export img" "image export img f extra" "image load"
	"image load f n extra" "gc now" "stats extra" "fsck --bogus" "client frobnicate"
)
for c in "${usage_cases[@]}"; do
	# shellcheck disable=SC2086 # the case is a word list
	check "'$c' is a usage error (exit 2)" expect 2 "usage" "$S" $c
done
for c in "client reset" "client snapshot" "client rebase" "image flatten" "image export" "image load" "gc"; do
	# shellcheck disable=SC2086
	check "'$c --help' prints its usage" expect 2 "usage: cowroot .*${c#* }" "$S" $c --help
done

check "--version prints 'cowroot VERSION' (the project's), exit 0" expect 0 "^cowroot ${COW_VERSION//./\\.}\$" "$S" --version
check "'version' prints the same" expect 0 "^cowroot ${COW_VERSION//./\\.}\$" "$S" version
check "--help lists --version and version" sh -c "'$COWROOT' --help | grep -q '^ *cowroot --version\$' &&
	'$COWROOT' --help | grep -qE '^  version +print'"
check "'version extra' is a usage error (exit 2)" expect 2 "usage: cowroot .*version" "$S" version extra

# ---- unknown clients and images, bad names: exit 1 with a message ---------------------------------

for c in "client reset nosuch" "client rm nosuch" "client diff nosuch" "client snapshot nosuch img9" \
	"client rebase nosuch --onto img"; do
	# shellcheck disable=SC2086
	check "'$c' says there is no such client" expect 1 "no client 'nosuch'" "$S" $c
done
for c in "image show nosuch" "image rm nosuch" "image flatten nosuch x" "image export nosuch $T/x.bundle" \
	"client rebase c1 --onto nosuch"; do
	# shellcheck disable=SC2086
	check "'$c' says there is no such image" expect 1 "no image 'nosuch'" "$S" $c
done
check "snapshot under a bad name" expect 1 "invalid image name '.bad'" "$S" client snapshot c1 .bad
check "flatten to a bad name" expect 1 "invalid image name '-x'" "$S" image flatten img -x
check "load under a bad name" expect 1 "invalid image name 'a/b'" "$S" image load "$T/x.bundle" a/b
check "load of a missing file" expect 1 "cannot load" "$S" image load "$T/missing.bundle" x
check "export into a missing directory" expect 1 "cannot write '$T/no/x.bundle'" "$S" image export img "$T/no/x.bundle"
check "no export file left behind" test ! -e "$T/x.bundle"
check "commands on a missing store" expect 1 "no store at" "$T/nostore" client reset c1
check "snapshot under a taken name" expect 1 "image 'img' already exists" "$S" client snapshot c1 img
check "image in use: rm names its client" expect 1 "image 'img' is in use by client 'c1', client 'c2'" \
	"$S" image rm img
check "image show names its users" expect 0 "used by: +client 'c1', client 'c2'" "$S" image show img
check "image show --json" expect 0 '"users":\[\{"kind":"client","name":"c1"\}' "$S" image show img --json
check "a fresh client has no changes" expect 0 "client 'c1' has no changes" "$S" client diff c1
check "fsck of the new store" fsck_clean "$S"

# ---- client identity: serial, MAC, boot args ------------------------------------------------------

# json_of CLIENT: the client's entry of `client list --json`, compact
json_of() { "$COWROOT" --store "$S" client list --json | jq -c ".[] | select(.name == \"$1\") | {serial, mac, boot_args}"; }
check "client add with --serial (u-boot's 16 digits) and --mac (dashes)" expect 0 "added client 'pi-a'" \
	"$S" client add pi-a --image img --serial 000000009FFEFDEF --mac DC-A6-32-01-36-C2
check "they are stored canonical" test "$(json_of pi-a)" = '{"serial":"9ffefdef","mac":"dc:a6:32:01:36:c2","boot_args":null}'
check "client list shows them" expect 0 "^pi-a +img .* 9ffefdef +dc:a6:32:01:36:c2" "$S" client list
check "a second client with the same serial is refused, naming the first" \
	expect 1 "client 'pi-a' already has serial 9ffefdef" "$S" client add pi-b --image img --serial 9ffefdef
check "and with the same MAC in another form" \
	expect 1 "client 'pi-a' already has MAC dc:a6:32:01:36:c2" "$S" client add pi-b --image img --mac dc:a6:32:01:36:C2
check "the refused adds made no client" sh -c "! '$COWROOT' --store '$S' client list | grep -q '^pi-b '"
for v in 9ffefde 100000009ffefdef 0x9ffefdef "9ffe fdef" 9ffefdeg; do
	check "client add --serial '$v' is refused, naming it" expect 1 "invalid --serial '$v'" \
		"$S" client add pi-b --image img --serial "$v"
done
for v in ff:ff:ff:ff:ff:ff 01:00:5e:00:00:01 00:00:00:00:00:00 dc:a6:32:01:36 dc:a6-32:01:36:c2 dca6320136c2; do
	check "client add --mac '$v' is refused, naming it" expect 1 "invalid --mac '$v'" \
		"$S" client add pi-b --image img --mac "$v"
done
check "still no client pi-b" sh -c "! '$COWROOT' --store '$S' client list | grep -q '^pi-b '"
check "client add pi-b" expect 0 "" "$S" client add pi-b --image img
check "client set --serial --mac --boot-args" expect 0 "serial 12345678, MAC 02:00:00:00:00:0b, with boot args 'quiet loglevel=3'" \
	"$S" client set pi-b --serial 12345678 --mac 02-00-00-00-00-0B --boot-args "quiet loglevel=3"
check "client list --json shows them" test "$(json_of pi-b)" = '{"serial":"12345678","mac":"02:00:00:00:00:0b","boot_args":"quiet loglevel=3"}'
check "client set of another's serial is refused, naming it" expect 1 "client 'pi-a' already has serial 9ffefdef" \
	"$S" client set pi-b --serial 9FFEFDEF --boot-args changed
check "client set of another's MAC is refused, naming it" expect 1 "client 'pi-a' already has MAC dc:a6:32:01:36:c2" \
	"$S" client set pi-b --mac dc-a6-32-01-36-c2
for v in 'a;b' 'root=$x' 'a="b"' "a='b'" 'a`b`' 'a\b' "$(printf 'a\nb')" "$(printf 'a\tb')" "$(head -c 513 /dev/zero | tr '\0' x)"; do
	check "client set --boot-args '$(printf %s "$v" | head -c 20 | tr '\n\t' '??')' is refused" \
		expect 1 "invalid --boot-args" "$S" client set pi-b --boot-args "$v"
done
check "pi-b is unchanged by the refused changes" \
	test "$(json_of pi-b)" = '{"serial":"12345678","mac":"02:00:00:00:00:0b","boot_args":"quiet loglevel=3"}'
check "client set --mac none clears the MAC only" expect 0 "MAC \(none\)" "$S" client set pi-b --mac none
check "client set --boot-args '' clears the boot args" expect 0 "with boot args ''" "$S" client set pi-b --boot-args ""
check "cleared: listed as null" test "$(json_of pi-b)" = '{"serial":"12345678","mac":null,"boot_args":null}'
check "pi-a clears its serial with ''" expect 0 "serial \(none\)" "$S" client set pi-a --serial ""
check "then pi-b may take it" expect 0 "serial 9ffefdef" "$S" client set pi-b --serial 9ffefdef
check "client set of an unknown client" expect 1 "no client 'nosuch'" "$S" client set nosuch --serial 87654321
check "client set with nothing to set is a usage error" expect 2 "usage" "$S" client set pi-b
check "client set --ip still works beside the boot fields" expect 0 "may connect from 10.9.9.9" \
	"$S" client set pi-b --ip 10.9.9.9 --boot-args quiet
check "client rm pi-a" expect 0 "" "$S" client rm pi-a
check "client rm pi-b" expect 0 "" "$S" client rm pi-b

# ---- the story: two clients write through mounts --------------------------------------------------

M1=$T/m1
M2=$T/m2
c1_writes() {
	printf 'c1-host\n' >"$M1/etc/hostname" || return 1
	printf 'new conf\n' >"$M1/etc/newconf" || return 1
	chmod 600 "$M1/etc/motd" || return 1
	chown 7:7 "$M1/etc/default/conf" || return 1
	setfattr -n security.capability -v 0x0100000200040000000000000000000000000000 "$M1/usr/bin/ping" || return 1
	rm "$M1/var/lib/dpkg/p1" || return 1
	mv "$M1/usr/lib/libfoo.so.1" "$M1/usr/lib/libfoo.so.2" || return 1
	ln "$M1/etc/newconf" "$M1/etc/newconf.link" || return 1
	mkdir "$M1/opt" || return 1
	mknod "$M1/dev/tty9" c 4 9 || return 1
}
c2_writes() {
	printf 'c2-host\n' >"$M2/etc/hostname" || return 1
	printf 'c2 motd\n' >"$M2/etc/motd" || return 1
	printf 'c2 only\n' >"$M2/etc/c2file" || return 1
	rm "$M2/etc/default/conf" || return 1
}
if mount_fg "$S" "$M1" c1 && d1=$daemon && mount_fg "$S" "$M2" c2 && d2=$daemon; then
	ok "mount c1 and c2"
	check "c1 writes through its mount" c1_writes
	check "c2 writes through its mount" c2_writes

	# safety while mounted: refuse, name the mount point, keep working
	for c in "client reset c1" "client snapshot c1 snap1" "client rebase c1 --onto img" "client rm c1"; do
		# shellcheck disable=SC2086
		check "'$c' while mounted refuses, naming the mount point" \
			expect 1 "client 'c1' is mounted at '$M1' \(pid [0-9]+\); unmount it first" "$S" $c
	done
	check "the refused snapshot made no image" expect 1 "no image 'snap1'" "$S" image show snap1
	check "c1 is still listed" expect 0 "^c1 +img" "$S" client list
	check "the mount keeps working after the refusals" \
		sh -c "printf 'still here\n' >'$M1/etc/still' && grep -qx 'still here' '$M1/etc/still' &&
		       grep -qx c1-host '$M1/etc/hostname'"
	rm -f "$M1/etc/still"
	check "diff of a mounted client works (read-only)" expect 0 "modified +/etc/hostname" "$S" client diff c1
	unmount "unmount c1" "$M1" "$d1"
	unmount "unmount c2" "$M2" "$d2"
else
	bad "mount c1 and c2"
fi

# ---- diff -----------------------------------------------------------------------------------------

cow "$S" client diff c1
cp "$T/out" "$T/diff1"
diff_has() { grep -qxE "$1" "$T/diff1" || { echo "no line /$1/ in:"; cat "$T/diff1"; return 1; }; }
check "diff: modified /etc/hostname" diff_has "modified +/etc/hostname"
check "diff: added /etc/newconf" diff_has "added +/etc/newconf"
check "diff: added hardlink /etc/newconf.link" diff_has "added +/etc/newconf.link"
check "diff: metadata /etc/motd (chmod)" diff_has "metadata +/etc/motd"
check "diff: metadata /etc/default/conf (chown)" diff_has "metadata +/etc/default/conf"
check "diff: metadata /usr/bin/ping (security.capability)" diff_has "metadata +/usr/bin/ping"
check "diff: deleted /var/lib/dpkg/p1" diff_has "deleted +/var/lib/dpkg/p1"
check "diff: rename is deleted + added" \
	sh -c "grep -qxE 'deleted +/usr/lib/libfoo.so.1' '$T/diff1' && grep -qxE 'added +/usr/lib/libfoo.so.2' '$T/diff1'"
check "diff: added /opt/ and /dev/tty9" sh -c "grep -qxE 'added +/opt/' '$T/diff1' && grep -qxE 'added +/dev/tty9' '$T/diff1'"
check "diff: untouched files are not listed" sh -c "! grep -E 'gzip|sparse|random|/p2$' '$T/diff1'"
diff_json() {
	cow "$S" client diff c1 --json
	[ "$rc" = 0 ] || return 1
	jq -e 'map(select(.path == "/etc/hostname" and .change == "modified" and .type == "file")) | length == 1' \
		"$T/out" >/dev/null || { cat "$T/out"; return 1; }
	[ "$(jq length "$T/out")" = "$(wc -l <"$T/diff1")" ] || { echo "json and text differ in length"; return 1; }
}
check "diff --json is valid JSON with the same entries" diff_json

# ---- snapshot c1, rebase c2 onto it, reset -------------------------------------------------------

check "snapshot c1 as img2" expect 0 "frozen as image 'img2'" "$S" client snapshot c1 img2
check "image show img2: built on img" expect 0 "built on: +img" "$S" image show img2
check "c1 is on img2 with no changes" expect 0 "client 'c1' has no changes" "$S" client diff c1
check "rebase c2 onto img2 reports the conflict on /etc/hostname" \
	expect 0 "conflict  /etc/hostname: " "$S" client rebase c2 --onto img2
cp "$T/out" "$T/rebase"
check "rebase reports /etc/default/conf (removed in c2, chown in img2)" grep -q "conflict  /etc/default/conf: " "$T/rebase"
check "rebase reports /etc/motd (chmod in img2, rewritten in c2)" grep -q "conflict  /etc/motd: " "$T/rebase"
check "rebase reports no conflict on paths only one side changed" \
	sh -c "! grep -E 'conflict  /etc/(newconf|c2file)|/usr/bin/ping|dpkg|libfoo|/dev/tty9' '$T/rebase'"
check "rebase says where the client moved" grep -q "client 'c2' moved from 'img' onto 'img2'" "$T/rebase"
check "rebase onto an unrelated image is refused" \
	expect 1 "image 'img' is not built on 'img2'" "$S" client rebase c2 --onto img
check "rebase --json" expect 0 '"ok":true' "$S" client rebase c2 --onto img2 --json
c2_after_rebase() {
	grep -qx c2-host "$M2/etc/hostname" || return 1 # the layer's version is kept
	grep -qx 'c2 motd' "$M2/etc/motd" || return 1
	grep -qx 'new conf' "$M2/etc/newconf" || return 1 # from img2
	test ! -e "$M2/var/lib/dpkg/p1" || return 1
	test ! -e "$M2/etc/default/conf" || return 1
	test -e "$M2/usr/lib/libfoo.so.2" || return 1
}
if mount_fg "$S" "$M2" c2; then
	check "after rebase c2 sees its changes over img2" c2_after_rebase
	unmount "unmount c2" "$M2" "$daemon"
else
	bad "mount c2 after rebase"
fi
if mount_fg "$S" "$M1" c1; then
	printf 'scratch\n' >"$M1/etc/scratch"
	unmount "unmount c1" "$M1" "$daemon"
fi
check "client reset c1" expect 0 "client 'c1' reset: it sees image 'img2' again" "$S" client reset c1
check "after reset c1 has no changes" expect 0 "client 'c1' has no changes" "$S" client diff c1
check "image rm of img names the image built on it" expect 1 "in use by .*image 'img2'" "$S" image rm img

# ---- export + load into a second store, compare the mounts ---------------------------------------

check "image export img2" expect 0 "written to" "$S" image export img2 "$T/img2.bundle"
check "init a second store" expect 0 "" "$S2" init
check "image load into the second store" expect 0 "loaded" "$S2" image load "$T/img2.bundle"
check "image load again under its name is refused" expect 1 "already exists; give another" \
	"$S2" image load "$T/img2.bundle"
check "image load under another name" expect 0 "as image copy" "$S2" image load "$T/img2.bundle" copy
check "a bundle loads back into its own store under another name" \
	expect 0 "as image img2-copy" "$S" image load "$T/img2.bundle" img2-copy
check "image rm img2-copy" expect 0 "removed image 'img2-copy'" "$S" image rm img2-copy
check "load from a pipe is refused with a clear message" sh -c \
	"cat '$T/img2.bundle' | '$COWROOT' --store '$S2' image load /dev/stdin piped 2>&1 | grep -q 'not a regular file'"
MA=$T/ma
MB=$T/mb
if mount_fg "$S" "$MA" --image img2 && da=$daemon && mount_fg "$S2" "$MB" --image img2 && db=$daemon; then
	dump "$MA" >"$T/dump-a"
	dump "$MB" >"$T/dump-b"
	check "the loaded image's tree equals the exported one (paths, modes, owners, sizes, times, links, xattrs, contents)" \
		diff "$T/dump-a" "$T/dump-b"
	check "the dump has the hardlink, device, capability and sparse file" sh -c "
		grep -q '^./usr/bin/gzip -rw-r--r-- 0 0 2 ' '$T/dump-b' &&
		grep -q '^./dev/loop0 dev 7:0' '$T/dump-b' &&
		grep -q 'security.capability=0x0100000200040000' '$T/dump-b'"
	check "the sparse file stays sparse in the second store" \
		sh -c "[ \$(stat -c %b '$MB/usr/lib/sparse.img') -lt 1024 ]"
	unmount "unmount the view of img2" "$MA" "$da"
	unmount "unmount the view of the loaded img2" "$MB" "$db"
else
	bad "mount the image views"
fi

# ---- flatten ------------------------------------------------------------------------------------

check "image flatten img2 flat" expect 0 "flattened into new base image 'flat'" "$S" image flatten img2 flat
check "flatten onto a taken name" expect 1 "image 'flat' already exists" "$S" image flatten img2 flat
check "image show flat: an imported base" expect 0 "built on: +\(imported base\)" "$S" image show flat
if mount_fg "$S" "$MA" --image flat; then
	dump "$MA" >"$T/dump-flat"
	check "the flattened tree equals img2's" diff "$T/dump-a" "$T/dump-flat"
	unmount "unmount flat" "$MA" "$daemon"
fi
check "image rm flat" expect 0 "removed image 'flat'" "$S" image rm flat

# ---- damaged bundles --------------------------------------------------------------------------------

bad_bundle() { # FILE WHAT
	local before
	before=$(images "$S2")
	expect 1 "is not a valid cowroot bundle: .*; nothing was loaded" "$S2" image load "$1" bad || return 1
	[ "$(images "$S2")" = "$before" ] || { echo "the image list changed"; return 1; }
	fsck_clean "$S2"
}
size=$(stat -c %s "$T/img2.bundle")
head -c $((size / 2)) "$T/img2.bundle" >"$T/cut.bundle"
check "a truncated bundle is refused and changes nothing" bad_bundle "$T/cut.bundle" truncated
cp "$T/img2.bundle" "$T/flip.bundle"
printf '\x55' | dd of="$T/flip.bundle" bs=1 seek=$((size / 2)) conv=notrunc status=none
cmp -s "$T/img2.bundle" "$T/flip.bundle" && printf '\xaa' | dd of="$T/flip.bundle" bs=1 seek=$((size / 2)) conv=notrunc status=none
check "a tampered bundle is refused and changes nothing" bad_bundle "$T/flip.bundle" tampered
cat "$T/img2.bundle" "$T/img2.bundle" >"$T/two.bundle"
check "two concatenated bundles are refused" bad_bundle "$T/two.bundle" concatenated
gzip -dc "$T/img2.bundle" | sed '1s/^CRBUNDLE/XXBUNDLE/' | gzip >"$T/magic.bundle"
check "a bundle with the wrong magic is refused" bad_bundle "$T/magic.bundle" magic
echo "not a bundle" >"$T/text.bundle"
check "a text file is refused" bad_bundle "$T/text.bundle" text

# ---- gc, fsck, stats ------------------------------------------------------------------------------

check "gc" expect 0 "gc: removed [1-9][0-9]* layer" "$S" gc
check "a second gc has nothing to do" expect 0 "gc: removed 0 layer\(s\) and 0 data file" "$S" gc
check "fsck after gc" fsck_clean "$S"
check "fsck --repair on a healthy store changes nothing" expect 0 "is consistent; nothing changed" "$S" fsck --repair
check "stats" expect 0 "^c2 +img2" "$S" stats
stats_json() {
	cow "$S" stats --json
	[ "$rc" = 0 ] && jq -e '.clients | length == 2' "$T/out" >/dev/null && jq -e '.images | length >= 2' "$T/out" >/dev/null
}
check "stats --json" stats_json
check "client rm c1" expect 0 "removed client 'c1'" "$S" client rm c1
check "client rm c1 again" expect 1 "no client 'c1'" "$S" client rm c1

# ---- interruption --------------------------------------------------------------------------------

# A large tree: the cached debootstrap minbase if the realworld test made one, else a generated one.
cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
if [ -x "$cache/minbase/usr/bin/dpkg" ]; then
	BIG=$cache/minbase
else
	BIG=$T/big
	big_tree() {
		mkdir -p "$BIG" || return 1
		for d in $(seq 1 20); do
			mkdir "$BIG/d$d" || return 1
			for f in $(seq 1 200); do printf 'file %s %s\n' "$d" "$f" >"$BIG/d$d/f$f"; done || return 1
		done
		head -c 64M /dev/urandom >"$BIG/random" || return 1
		for i in 1 2 3 4; do truncate -s 256M "$BIG/sparse$i"; head -c 8M /dev/urandom | dd of="$BIG/sparse$i" bs=1M seek=$((i * 20)) conv=notrunc status=none; done || return 1
	}
	big_tree >"$T/big.log" 2>&1 || note <"$T/big.log"
fi
echo "# large tree: $BIG ($(du -sh "$BIG" 2>/dev/null | cut -f1))"
images_before=$(images "$S")
# dump_image IMAGE FILE: the dump of a mount of IMAGE of $S
dump_image() {
	if mount_fg "$S" "$MA" --image "$1"; then
		dump "$MA" >"$2"
		unmount "unmount image $1" "$MA" "$daemon"
	else
		bad "mount image $1"
	fi
}
dump_image img2 "$T/dump-img2-before"

# new_data_dir STORE BEFORE: wait until STORE/data has an entry not in BEFORE (the new layer's data).
wait_new_data() {
	local i now
	for i in $(seq 1 2000); do
		now=$(ls "$1/data")
		[ "$now" != "$2" ] && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.005
	done
	return 1
}
# kill9 WHAT STORE WAITFOR ARGS...: start ARGS, kill -9 it once WAITFOR says it is in the middle.
kill9() {
	local what=$1 store=$2 waitfor=$3 pid before
	shift 3
	before=$(ls "$store/data")
	"$COWROOT" --store "$store" "$@" >"$T/killed.log" 2>&1 &
	pid=$!
	if "$waitfor" "$store" "$before" "$pid" && kill -9 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null # no "Killed" line
		echo "# $what: killed in the middle"
		return 0
	fi
	wait "$pid"
	echo "# $what: finished before it could be killed"
	return 1
}
# after_crash STORE IMAGES: fsck --repair (its report shown), then a clean fsck and the image
# list is IMAGES
after_crash() {
	cow "$1" fsck --repair
	tail -n 3 "$T/out" | note
	if ! [ "$rc" -le 1 ]; then
		bad "fsck --repair after the crash exits $rc"
		return
	fi
	check "then fsck is clean" fsck_clean "$1"
	check "and the images are as before" sh -c "[ '$(images "$1")' = '$2' ] || { echo images changed; exit 1; }"
}

kill9 "import" "$S" wait_new_data image import big "$BIG" || bad "kill -9 landed in the middle of import"
after_crash "$S" "$images_before"
check "the killed import left no image" expect 1 "no image 'big'" "$S" image show big

# gc and fsck --repair while an import writes: the new layer's data is not theirs to take
import_with_gc() {
	local before pid
	# no dead layer for this gc to drop first: its transaction would wait for the import's
	expect 0 "gc: removed" "$S" gc || return 1
	before=$(ls "$S/data")
	touch "$T/import-start"
	"$COWROOT" --store "$S" image import big "$BIG" >"$T/import.log" 2>&1 &
	pid=$!
	wait_new_data "$S" "$before" "$pid" || { wait "$pid"; echo "the import ended before gc could run"; return 1; }
	# some of its data files written (and not yet named by any committed record)
	local i
	for i in $(seq 1 400); do
		[ "$(find "$S/data" -newer "$T/import-start" -type f ! -name '*.lock' | head -n 100 | wc -l)" -ge 100 ] && break
		sleep 0.005
	done
	kill -0 "$pid" 2>/dev/null || { wait "$pid"; echo "the import ended before gc could run"; return 1; }
	expect 0 "gc: removed" "$S" gc || return 1
	wait "$pid" || { cat "$T/import.log"; return 1; }
	fsck_clean "$S"
}
check "gc during an import leaves its data alone; the imported image is whole" import_with_gc
images_before=$(images "$S")
# flatten is quick (links, not copies): on a busy machine it may finish before the kill; then the
# whole image must be there, and the next try removes it first
for try in 1 2 3; do
	kill9 "flatten" "$S" wait_new_data image flatten big bigflat && break
	check "a flatten that finished before the kill left a whole image" expect 0 "built on: +\(imported base\)" \
		"$S" image show bigflat
	cow "$S" image rm bigflat
done
after_crash "$S" "$images_before"

wait_tmp() { # the export's temporary file has data
	local i f
	for i in $(seq 1 2000); do
		for f in "$T"/*.bundle.tmp.*; do [ -s "$f" ] && return 0; done
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.005
	done
	return 1
}
kill9 "export" "$S" wait_tmp image export big "$T/big.bundle" || bad "kill -9 landed in the middle of export"
check "the killed export left no bundle" test ! -e "$T/big.bundle"
rm -f "$T"/big.bundle.tmp.*
after_crash "$S" "$images_before"

check "export the large image" expect 0 "written to" "$S" image export big "$T/big.bundle"
images2=$(images "$S2")
kill9 "load" "$S2" wait_new_data image load "$T/big.bundle" || bad "kill -9 landed in the middle of load"
after_crash "$S2" "$images2"

# SIGINT: "interrupted", nothing changed
sigint() { # WHAT STORE WAITFOR ARGS...
	local what=$1 store=$2 waitfor=$3 pid before list
	shift 3
	before=$(ls "$store/data")
	list=$(images "$store")
	"$COWROOT" --store "$store" "$@" >"$T/int.log" 2>&1 &
	pid=$!
	"$waitfor" "$store" "$before" "$pid" || { wait "$pid"; echo "$what finished before SIGINT"; return 1; }
	kill -INT "$pid"
	wait "$pid"
	local st=$?
	[ "$st" = 1 ] || { echo "exit $st, want 1: $(cat "$T/int.log")"; return 1; }
	grep -q "$what of .* interrupted; the store is unchanged" "$T/int.log" || { cat "$T/int.log"; return 1; }
	[ "$(images "$store")" = "$list" ] || { echo "image list changed"; return 1; }
	[ "$(ls "$store/data")" = "$before" ] || { echo "data/ changed: $(ls "$store/data" | tr '\n' ' ')"; return 1; }
	fsck_clean "$store"
}
check "SIGINT of an export says interrupted and leaves no file" sigint export "$S" wait_tmp image export big "$T/big2.bundle"
check "no bundle after the interrupted export" sh -c "! ls '$T'/big2.bundle* 2>/dev/null"
check "SIGINT of a load says interrupted and changes nothing" sigint load "$S2" wait_new_data image load "$T/big.bundle"
check "SIGINT of an import says interrupted and changes nothing" sigint import "$S" wait_new_data image import big2 "$BIG"

# a mount daemon killed with -9 holds nothing: the client can be reset, the store repaired
check "client add c3" expect 0 "" "$S" client add c3 --image img2
images_before=$(images "$S")
if mount_fg "$S" "$M1" c3; then
	head -c 3000000 /dev/urandom >"$M1/etc/written-when-killed"
	kill -9 "$daemon"
	wait "$daemon" 2>/dev/null
	fusermount3 -u "$M1" 2>/dev/null || umount -l "$M1"
	check "after kill -9 of its mount daemon the client can be reset" \
		expect 0 "client 'c3' reset" "$S" client reset c3
	after_crash "$S" "$images_before"
else
	bad "mount c3"
fi

dump_image img2 "$T/dump-img2-after"
check "img2 is intact after all the interruptions" diff "$T/dump-img2-before" "$T/dump-img2-after"
check "the large image loads in the end" expect 0 "loaded" "$S2" image load "$T/big.bundle"
check "fsck of both stores at the end" sh -c "'$COWROOT' --store '$S' fsck && '$COWROOT' --store '$S2' fsck"

finish
