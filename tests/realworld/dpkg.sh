#!/bin/bash
# The real-world test: a debootstrap'd Debian bookworm minbase tree served by
# cowroot, with dpkg installing, verifying, removing, purging and
# reinstalling real packages in one client's chroot while another client
# keeps the pristine image.
#
# Packages: netbase (conffiles, postinst/postrm that create and delete
# /etc/hosts), less (update-alternatives symlinks, a binary to execute) and
# bash-completion (about 800 files).  None needs anything minbase lacks.
#
# Fixtures are cached between runs in ${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}:
#   minbase/   debootstrap --variant=minbase bookworm (built when missing)
#   debs/      the .debs (apt-get download, when missing)
# Environment: COWROOT (the cowroot binary), optional COW_DEBIAN_MIRROR.
# Needs root, /dev/fuse, and the network unless the fixtures are cached;
# exits 77 without them.
set -u

skip() {
	echo "SKIP: $*"
	exit 77
}

cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
minbase=$cache/minbase
debs=$cache/debs
mirror=${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
pkgs=(netbase less bash-completion)
# shellcheck source=tests/minbase.sh
. "$(dirname "$0")/../minbase.sh"

have_deb() { compgen -G "$debs/${1}_*.deb" >/dev/null; }
deb_of() { compgen -G "$debs/${1}_*.deb" | head -1; }

if [ -z "${COW_DPKG_INNER:-}" ]; then
	[ -n "${COWROOT:-}" ] && [ -x "$COWROOT" ] || { echo "COWROOT is not set to the cowroot binary" >&2; exit 1; }
	[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, mounts)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || skip "no fusermount3 (apt-get install fuse3)"
	unshare --mount --propagation private --pid --fork true 2>/dev/null ||
		skip "cannot create mount and pid namespaces here"

	# ---- fixtures, built once under a lock (several runs may share the cache)
	mkdir -p "$cache" "$debs"
	exec 9>"$cache/.lock"
	flock 9
	minbase_ensure "$cache" "$mirror"
	case $? in
	0) ;;
	77) exit 77 ;;
	*)
		echo "0 passed, 1 failed"
		exit 1
		;;
	esac
	for p in "${pkgs[@]}"; do
		have_deb "$p" && continue
		echo "# fetching $p.deb into $debs"
		(cd "$debs" && apt-get download -q "$p" >/dev/null 2>"$cache/apt-download.log") ||
			{ cat "$cache/apt-download.log"; skip "cannot fetch $p.deb (no network or no apt lists: apt-get update)"; }
	done
	flock -u 9
	exec 9>&-

	export COW_DPKG_INNER=1
	exec unshare --mount --propagation private --pid --fork --mount-proc "$0" "$@"
fi

passed=0
failed=0
ok() { echo "ok $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
note() { sed 's/^/#   /'; }
check() { # DESCRIPTION COMMAND...: ok when COMMAND succeeds, else show its output
	local what=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		ok "$what"
	else
		tail -30 "$tmp/out" | note
		fail "$what"
	fi
}
check_not() { # DESCRIPTION COMMAND...: ok when COMMAND fails
	local what=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		tail -30 "$tmp/out" | note
		fail "$what"
	else
		ok "$what"
	fi
}
check_empty() { # DESCRIPTION COMMAND...: ok when COMMAND succeeds and prints nothing
	local what=$1
	shift
	if "$@" >"$tmp/out" 2>&1 && ! [ -s "$tmp/out" ]; then
		ok "$what"
	else
		head -30 "$tmp/out" | note
		fail "$what"
	fi
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-dpkg.XXXXXX")
S=$tmp/store
M1=$tmp/c1
M2=$tmp/c2

unmount_all() {
	local m
	for m in "$M1" "$M2" "${M0:-}"; do
		[ -n "$m" ] || continue
		mountpoint -q "$m" 2>/dev/null || continue
		umount -R -l "$m/proc" "$m/dev" 2>/dev/null
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"
	done
}
cleanup() {
	unmount_all
	rm -rf "$tmp"
}
trap cleanup EXIT

# in_root ROOT COMMAND...: run COMMAND chrooted in ROOT with a clean environment
in_root() {
	local root=$1
	shift
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive HOME=/root \
		chroot "$root" "$@"
}

listing() { # the cached tree's metadata, to prove nothing wrote to it
	(cd "$minbase" && find . -printf '%p %y %s %T@ %C@ %m %U %G %n %l\n' | LC_ALL=C sort)
}
tree_listing() { # ROOT: what a view must reproduce (without /proc and /dev, mounted over)
	(cd "$1" && find . \( -path ./proc -o -path ./dev \) -prune -o \
		-printf '%p %y %s %T@ %m %U %G %n %l %D:%i\n' | LC_ALL=C sort >"$tmp/ids" &&
		# inode numbers differ from the source: keep only which names share
		# one; a directory's size is the file system's business
		awk '{ if ($2 == "d") $3 = "-"; id = $NF; $NF = ""; if (id in seen) $0 = $0 "=" seen[id]; else seen[id] = $1; print }' "$tmp/ids")
}

listing >"$tmp/minbase.before"
in_root "$minbase" dpkg --verify >"$tmp/verify.ref" 2>&1
echo "# minbase: $(wc -l <"$tmp/minbase.before") objects, dpkg --verify reference: $(wc -l <"$tmp/verify.ref") lines"

check "init store" "$COWROOT" --store "$S" init
start=$(date +%s)
check "import the minbase tree as image bookworm" "$COWROOT" --store "$S" image import bookworm "$minbase"
echo "# import took $(($(date +%s) - start)) s"
check "add client c1" "$COWROOT" --store "$S" client add c1 --image bookworm
check "add client c2" "$COWROOT" --store "$S" client add c2 --image bookworm
[ "$failed" = 0 ] || finish

mount_client() { # NAME MOUNTPOINT
	mkdir -p "$2"
	if "$COWROOT" --store "$S" mount "$1" "$2" >"$tmp/mount.out" 2>&1 && mountpoint -q "$2"; then
		# what a chroot for package maintenance gets: /proc and the host's /dev
		mount -t proc proc "$2/proc" && mount --bind /dev "$2/dev"
	else
		cat "$tmp/mount.out"
		return 1
	fi
}
check "mount c1" mount_client c1 "$M1"
check "mount c2" mount_client c2 "$M2"
[ "$failed" = 0 ] || finish

check_diff() { # DESCRIPTION EXPECTED-FILE COMMAND...: output equals the file
	local what=$1 want=$2
	shift 2
	"$@" >"$tmp/got" 2>&1
	if diff -u "$want" "$tmp/got" >"$tmp/diff"; then
		ok "$what"
	else
		head -40 "$tmp/diff" | note
		fail "$what"
	fi
}
check_diff "dpkg --verify in a fresh view is what it is on the plain tree" "$tmp/verify.ref" in_root "$M1" dpkg --verify
check "dpkg status database is the image's" cmp "$minbase/var/lib/dpkg/status" "$M1/var/lib/dpkg/status"
tree_listing "$minbase" >"$tmp/tree.ref"
check_diff "c2's view has the source tree's names, types, sizes, modes, owners, mtimes, links" \
	"$tmp/tree.ref" tree_listing "$M2"
check "c2's view has the source tree's file contents" \
	diff -r --no-dereference --exclude=proc --exclude=dev "$minbase" "$M2"

status_of() { in_root "$M1" dpkg-query -W -f '${Status}' "$1" 2>/dev/null; }
check_status() { # PKG EXPECTED-STATUS
	local s
	s=$(status_of "$1")
	if [ "$s" = "$2" ]; then
		ok "$1: status '$2'"
	else
		fail "$1: status '$s', expected '$2'"
	fi
}

# every file the package lists exists (directories may be shared)
files_present() { # PKG
	local f missing=0
	while read -r f; do
		[ -e "$M1$f" ] || [ -L "$M1$f" ] || { echo "missing: $f"; missing=1; }
	done < <(in_root "$M1" dpkg -L "$1")
	return $missing
}
# the package's regular files (not conffiles) are gone after remove
files_removed() { # PKG-FILE-LIST CONFFILES
	local f left=0
	while read -r f; do
		grep -qxF "$f" "$2" && continue
		[ -f "$M1$f" ] && { echo "left behind: $f"; left=1; }
	done <"$1"
	return $left
}
conffiles_match_deb() { # DEB CONFFILES
	local f r=0
	while read -r f; do
		dpkg-deb --fsys-tarfile "$1" | tar -xOf - ".$f" | cmp - "$M1$f" || r=1
	done <"$2"
	return $r
}

install_cycle() { # PKG
	local p=$1 deb base
	deb=$(deb_of "$p")
	base=$(basename "$deb")
	cp "$deb" "$M1/tmp/$base"
	check "$p: dpkg -i" in_root "$M1" dpkg -i "/tmp/$base"
	check_status "$p" "install ok installed"
	check "$p: every listed file exists" files_present "$p"
	check_empty "$p: dpkg --verify $p is clean" in_root "$M1" dpkg --verify "$p"
	dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles >"$tmp/$p.conffiles" 2>/dev/null || : >"$tmp/$p.conffiles"
	if [ -s "$tmp/$p.conffiles" ]; then
		check "$p: conffiles have the packaged content" conffiles_match_deb "$deb" "$tmp/$p.conffiles"
	fi
	in_root "$M1" dpkg -L "$p" >"$tmp/$p.files"

	check "$p: dpkg -r" in_root "$M1" dpkg -r "$p"
	check "$p: files removed, conffiles kept" files_removed "$tmp/$p.files" "$tmp/$p.conffiles"
	if [ -s "$tmp/$p.conffiles" ]; then
		check_status "$p" "deinstall ok config-files"
		check "$p: conffiles still there after remove" xargs -a "$tmp/$p.conffiles" -I{} test -f "$M1{}"
	else
		check_not "$p: gone after remove" in_root "$M1" dpkg -s "$p"
	fi
	check "$p: dpkg -P" in_root "$M1" dpkg -P "$p"
	check_not "$p: unknown to dpkg after purge" in_root "$M1" dpkg -s "$p"
	check_not "$p: conffiles gone after purge" \
		bash -c 'while read -r f; do [ -e "$1$f" ] && echo "still there: $f" && exit 0; done <"$2"; exit 1' \
		_ "$M1" "$tmp/$p.conffiles"

	check "$p: dpkg -i again" in_root "$M1" dpkg -i "/tmp/$base"
	check_status "$p" "install ok installed"
	check_empty "$p: dpkg --verify $p is clean after reinstall" in_root "$M1" dpkg --verify "$p"
	rm -f "$M1/tmp/$base"
}

for p in "${pkgs[@]}"; do
	install_cycle "$p"
done

# package-specific effects
check "netbase postinst wrote /etc/hosts" grep -q localhost "$M1/etc/hosts"
check "less: the pager alternative points at less" \
	bash -c '[ "$(chroot "$1" readlink -f /usr/bin/pager)" = /usr/bin/less ]' _ "$M1"
check "less: the binary written through the view runs" in_root "$M1" less --version
check "bash-completion: installed beside the image's completions" \
	test -f "$M1/usr/share/bash-completion/bash_completion" -a -f "$M1/usr/share/bash-completion/completions/apt"

check_empty "dpkg --audit is clean" in_root "$M1" dpkg --audit
check_diff "dpkg --verify of the whole system is what it is on the plain tree" "$tmp/verify.ref" in_root "$M1" dpkg --verify

# the other client sees none of it
check_not "c2 does not see netbase" in_root "$M2" dpkg -s netbase
check_not "c2 does not see less" in_root "$M2" dpkg -s less
check_not "c2 has no /etc/hosts" test -e "$M2/etc/hosts"
check_not "c2 has no bash-completion files" test -e "$M2/usr/share/bash-completion/bash_completion"
check "c2's dpkg status is the image's" cmp "$minbase/var/lib/dpkg/status" "$M2/var/lib/dpkg/status"
check_diff "c2: dpkg --verify is what it is on the plain tree" "$tmp/verify.ref" in_root "$M2" dpkg --verify

# the image itself is untouched: its read-only view
M0=$tmp/image
mkdir -p "$M0"
if "$COWROOT" --store "$S" mount --image bookworm "$M0" >"$tmp/out" 2>&1 && mountpoint -q "$M0"; then
	ok "mount --image bookworm (read-only view)"
	check "image view: dpkg status is the source tree's" cmp "$minbase/var/lib/dpkg/status" "$M0/var/lib/dpkg/status"
	check_not "image view: no netbase files" test -e "$M0/etc/services"
	check_not "image view: writes are refused" touch "$M0/etc/new-file"
	fusermount3 -u "$M0" || fail "unmount the image view"
else
	note <"$tmp/out"
	fail "mount --image bookworm (read-only view)"
fi

# it all survives an unmount and a new mount
in_root "$M1" dpkg-query -W -f '${Package} ${Version} ${Status}\n' >"$tmp/query.before" 2>&1
unmount_all
check_not "unmounted both clients" mountpoint -q "$M1"
check "fsck is clean after use" "$COWROOT" --store "$S" fsck
check "mount c1 again" mount_client c1 "$M1"
check_diff "c1: packages the same after remount" "$tmp/query.before" \
	in_root "$M1" dpkg-query -W -f '${Package} ${Version} ${Status}\n'
check_diff "c1: dpkg --verify still clean after remount" "$tmp/verify.ref" in_root "$M1" dpkg --verify
check "c1: less still runs after remount" in_root "$M1" less --version
unmount_all

listing >"$tmp/minbase.after"
check "the cached minbase tree is unchanged" diff -u "$tmp/minbase.before" "$tmp/minbase.after"

finish
