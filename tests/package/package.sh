#!/bin/bash
# package: build the Debian package of this tree, check it with lintian,
# install it into a clean Debian root of this machine's release, serve a
# client from there with the installed FSAL and read its root over NFS,
# then purge the package and check that nothing of it is left.
#
#   tests/package/package.sh          (as root; what tools/ci-test.sh runs,
#                                      on bookworm and in the trixie root)
#
# The clean root is a debootstrap minbase of this machine's release, kept
# in $COW_FIXTURE_CACHE/pkgroot-RELEASE and copied for each run, so that
# every run installs into a root that has never seen cowroot or its
# dependencies.  Needs the network (debootstrap once; apt-get installs the
# package's dependencies into the copy).  Prints "ok NAME" / "FAIL NAME:
# reason", exit 0 if all passed, 1 on a failure, 77 when the machine lacks
# a facility.
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

src=$(cd "$(dirname "$0")/../.." && pwd)
cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}

# ---- inside private namespaces: serve from the installed package --------------------------------
if [ -n "${COW_PKG_INNER:-}" ]; then
	root=$1
	ip link set lo up || exit 1
	ip addr add 127.0.0.2/32 dev lo || exit 1
	mount --bind "$root" "$root" # a mount point, for the chroot's own mounts
	mount -t proc proc "$root/proc"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs tmpfs "$root/run"
	mkdir -p "$root/run/rpcbind"
	in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
	in_root sh -c 'mkdir -p /fix/etc && echo packaged >/fix/etc/hostname' || exit 1
	in_root cowroot --store /srv/store init >/dev/null || exit 1
	in_root cowroot --store /srv/store image import base /fix >/dev/null || exit 1
	in_root cowroot --store /srv/store client add pi --image base --ip 127.0.0.2 >/dev/null || exit 1
	# the installed cowroot finds the installed FSAL: no --fsal
	in_root cowroot --store /srv/store serve --no-grace --no-tftp >"$root/serve.out" 2>&1 ||
		{ cat "$root/serve.out"; exit 1; }
	got=$(timeout 60 nfs-cat "nfs://127.0.0.2/clients/pi/etc/hostname?version=3" 2>&1)
	got4=$(timeout 60 nfs-cat "nfs://127.0.0.2/clients/pi/etc/hostname?version=4" 2>&1)
	pid=$(cat "$root/srv/store/run/serve.pid" 2>/dev/null)
	[ -n "$pid" ] && kill "$pid"
	# this pid namespace's processes (its proc, mounted in the root), not
	# the machine's: another test's ganesha may run meanwhile
	ganesha_running() { cat "$root"/proc/[0-9]*/comm 2>/dev/null | grep -qx ganesha.nfsd; }
	for _ in $(seq 300); do
		ganesha_running || break
		sleep 0.1
	done
	[ "$got" = packaged ] || { echo "NFSv3 read: '$got'"; exit 1; }
	[ "$got4" = packaged ] || { echo "NFSv4 read: '$got4'"; exit 1; }
	! ganesha_running || { echo "ganesha.nfsd left running"; exit 1; }
	exit 0
fi

# ---- on the machine ------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, namespaces)"
for c in dpkg-buildpackage lintian debootstrap unshare nfs-cat; do
	command -v "$c" >/dev/null || skip "$c is missing (tools/setup-deps.sh installs it)"
done
release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$release" ] || skip "cannot tell this machine's Debian release"

# shellcheck source=tests/checks.sh
. "$src/tests/checks.sh"

tmp=$(mktemp -d /var/tmp/cowroot-package.XXXXXX)
cleanup() {
	if [ -n "${root:-}" ] && awk -v d="$root" '$5 == d || index($5, d "/") == 1 { f = 1 } END { exit !f }' \
		/proc/self/mountinfo; then
		echo "kept $tmp: something is still mounted in it" >&2
		return
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# ---- build ----
# a copy without build directories or .git: what a source package holds
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tree=$tmp/cowroot-$version
mkdir -p "$tree"
tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$tree" -xf -
if (cd "$tree" && dpkg-checkbuilddeps) >"$tmp/deps.log" 2>&1; then
	ok "the build dependencies are installed (dpkg-checkbuilddeps)"
else
	bad "build dependencies: $(cat "$tmp/deps.log")"
	finish
fi
if (cd "$tree" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b builds it on $release"
else
	tail -n 40 "$tmp/build.log"
	bad "dpkg-buildpackage: failed on $release (see above)"
	finish
fi
deb=$(ls "$tmp"/cowroot_"$version"_*.deb)
changes=$(ls "$tmp"/cowroot_"$version"_*.changes)

# ---- what it holds ----
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/files"
plugindir=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/ganesha
missing=
for f in /usr/bin/cowroot "$plugindir/libfsalcowroot.so" /usr/share/man/man8/cowroot.8.gz \
	/usr/share/bash-completion/completions/cowroot; do
	grep -qx "$f" "$tmp/files" || missing="$missing $f"
done
grep -q '/systemd/system/cowroot-serve.service$' "$tmp/files" || missing="$missing cowroot-serve.service"
if [ -z "$missing" ]; then
	ok "it holds the CLI, the FSAL in ganesha's plugin directory, the unit, man pages and completion"
else
	bad "contents: missing:$missing"
fi
ganesha=$(dpkg-query -W -f='${Version}' nfs-ganesha)
depends=$(dpkg-deb -f "$deb" Depends)
if [[ ",$depends," == *"nfs-ganesha (= $ganesha),"* ]]; then
	ok "it depends on exactly the nfs-ganesha it was built against ($ganesha)"
else
	bad "Depends: '$depends' does not hold 'nfs-ganesha (= $ganesha)'"
fi
if lintian --fail-on error --suppress-tags-from-file /dev/null "$changes" >"$tmp/lintian.log" 2>&1; then
	ok "lintian reports no errors ($(grep -c '^W:' "$tmp/lintian.log") warnings)"
else
	cat "$tmp/lintian.log"
	bad "lintian: errors (above)"
fi

# ---- a clean root ----
pristine=$cache/pkgroot-$release
if [ ! -d "$pristine" ]; then
	rm -rf "$pristine.tmp"
	mkdir -p "$cache"
	if ! unshare --mount --propagation private debootstrap --variant=minbase "$release" "$pristine.tmp" \
		"${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$cache/pkgroot-$release.log" 2>&1; then
		tail -n 20 "$cache/pkgroot-$release.log"
		bad "clean root: debootstrap $release failed"
		finish
	fi
	mv "$pristine.tmp" "$pristine"
fi
root=$tmp/root
cp -a "$pristine" "$root"
cp "$deb" "$root/tmp/"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
# in a mount namespace of its own: /proc and /dev for apt and dpkg
chroot_run() {
	unshare --mount --propagation private sh -c '
		root=$1; shift
		mount --bind "$root" "$root" && mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
			exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
				DEBIAN_FRONTEND=noninteractive "$@"' sh "$root" "$@"
}
if chroot_run sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends /tmp/'"$(basename "$deb")" \
	>"$tmp/install.log" 2>&1; then
	ok "apt-get installs it and its dependencies into a clean $release root"
else
	tail -n 30 "$tmp/install.log"
	bad "install: apt-get install failed"
	finish
fi
v=$(chroot_run cowroot --version 2>&1)
if [ "$v" = "cowroot $(dpkg-parsechangelog -l "$src/debian/changelog" -S Version | sed 's/-[^-]*$//')" ]; then
	ok "the installed cowroot --version says '$v'"
else
	bad "--version: '$v'"
fi
if out=$(unshare --net --mount --propagation private --pid --fork --kill-child \
	env COW_PKG_INNER=1 "$0" "$root" 2>&1); then
	ok "the installed cowroot serves a client with the installed FSAL (init, import, add, serve; NFSv3 and v4 reads)"
else
	bad "serve: $out"
fi

# ---- removal ----
before=$(chroot_run dpkg-query -L cowroot 2>/dev/null | while read -r f; do
	[ -f "$root$f" ] && echo "$f"
done)
if chroot_run apt-get purge -y -q cowroot >"$tmp/purge.log" 2>&1; then
	left=
	for f in $before; do
		[ ! -e "$root$f" ] || left="$left $f"
	done
	if [ -z "$left" ] && ! chroot_run dpkg-query -W cowroot >/dev/null 2>&1; then
		ok "apt-get purge removes it: none of its $(echo "$before" | wc -w) files is left"
	else
		bad "purge: left:$left"
	fi
else
	tail -n 20 "$tmp/purge.log"
	bad "purge: apt-get purge failed"
fi
finish
