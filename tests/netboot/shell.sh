#!/bin/bash
# client-shell: `cowroot client shell` maintains the arm64 image the u-boot
# test boots, on this amd64 machine, through qemu-user-static.
#
# In a maintenance client of that image: the command runs as aarch64 (the
# interpreter registered with binfmt_misc when the kernel lacks it, and
# the command says so), perl opens /dev/null (which a plain chroot on a
# nodev mount cannot), dpkg installs a real arm64 package built here whose
# maintainer script runs, and `client diff` shows exactly the package's
# files and dpkg's records; nothing of /tmp or /run goes into the layer; a
# process left running dies with the command; the exit status is the
# command's; nothing stays mounted on the host; the layer is let go at
# once (snapshot works right after); a mounted client is refused.  With
# systemd-nspawn installed, the same through it.
#
# Env: COWROOT  path of the built cowroot CLI
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || skip "needs root (namespaces, FUSE mounts, chroot)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
command -v dpkg-deb >/dev/null || skip "dpkg-deb is missing"
if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
	echo "FAIL: \$COWROOT is not set to an executable ('${COWROOT:-}')" >&2
	exit 1
fi
[ "$(uname -m)" = x86_64 ] || skip "the test runs an arm64 image on an amd64 machine"

# shellcheck source=tests/netboot/netboot-lib.sh
. "$here/netboot-lib.sh"
# shellcheck source=tests/checks.sh
. "$here/../checks.sh"
netboot_kit "$here/arm64kit.sh" "the arm64 kit"

T=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-shell.XXXXXX") || exit 1
S=$T/store
M=$T/m
mkdir -p "$M"
trap 'fusermount3 -u "$M" 2>/dev/null; rm -rf "$T"' EXIT
cow() { "$COWROOT" --store "$S" "$@"; }
cow init >/dev/null && cow image import golden "$COW_KIT/root" >/dev/null &&
	cow client add maint --image golden >/dev/null || {
	bad "setup"
	finish
}

# a real arm64 package: a file, and a postinst that records the machine it ran on
pkg=$T/pkg
mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/cowroot-shell-test"
echo "installed by the client-shell test" >"$pkg/usr/share/cowroot-shell-test/README"
cat >"$pkg/DEBIAN/control" <<'EOF'
Package: cowroot-shell-test
Version: 1.0
Architecture: arm64
Maintainer: cowroot tests <root@localhost>
Description: what the client-shell test installs
EOF
cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
mkdir -p /var/lib/cowroot-shell-test
uname -m >/var/lib/cowroot-shell-test/machine
EOF
chmod 755 "$pkg/DEBIAN/postinst"
dpkg-deb --root-owner-group -b "$pkg" "$T/cowroot-shell-test_1.0_arm64.deb" >/dev/null ||
	{ bad "build the package"; finish; }

binfmt=/proc/sys/fs/binfmt_misc/qemu-aarch64
t_registers() {
	# the kernel forgets qemu-aarch64 first, if it has it (put back below)
	[ ! -e "$binfmt" ] || echo -1 >"$binfmt" || return 1
	cow client shell maint --chroot -- uname -m >"$T/out" 2>"$T/err" || { cat "$T/err"; return 1; }
	grep -q "registered qemu-aarch64 with binfmt_misc" "$T/err" || { echo "not said: $(cat "$T/err")"; return 1; }
	[ "$(cat "$T/out")" = aarch64 ] || { echo "ran as $(cat "$T/out")"; return 1; }
	grep -q '^flags:.*F' "$binfmt" || { echo "registered without F"; return 1; }
}
check "an arm64 root runs as aarch64, qemu-aarch64 registered (and said so)" t_registers
t_quiet() {
	cow client shell maint --chroot -- true 2>"$T/err" || return 1
	! grep -q registered "$T/err" || { echo "registered again"; return 1; }
}
check "once registered, nothing more is said" t_quiet
t_dev() {
	cow client shell maint --chroot -- perl -e 'open(my $f, ">", "/dev/null") or die "$!\n"; print "ok\n"' >"$T/out" 2>"$T/err" &&
		[ "$(cat "$T/out")" = ok ] || { cat "$T/out"; return 1; }
}
check "perl opens /dev/null" t_dev
t_install() {
	mkdir -p "$T/in"
	cp "$T/cowroot-shell-test_1.0_arm64.deb" "$T/in/"
	# the package goes in through the image's /tmp, which is a tmpfs there:
	# copy it in with the command itself
	cow client shell maint --chroot -- sh -c 'cat >/tmp/p.deb && dpkg -i /tmp/p.deb && dpkg-query -W -f="\${Status}\n" cowroot-shell-test' \
		<"$T/in/cowroot-shell-test_1.0_arm64.deb" >"$T/out" 2>&1 || { cat "$T/out"; return 1; }
	grep -q "install ok installed" "$T/out" || { cat "$T/out"; return 1; }
}
check "dpkg installs an arm64 package inside" t_install
t_postinst() {
	cow client shell maint --chroot -- cat /var/lib/cowroot-shell-test/machine >"$T/out" 2>"$T/err" &&
		[ "$(cat "$T/out")" = aarch64 ] || { cat "$T/out"; return 1; }
}
check "its maintainer script ran, as aarch64" t_postinst
t_dns() {
	[ -s /etc/resolv.conf ] || { echo "# the host has no resolv.conf"; return 0; }
	# the kit's image has none: said, nothing written
	cow client shell maint --chroot -- true 2>"$T/err" || return 1
	grep -q "no /etc/resolv.conf: no DNS inside" "$T/err" || { echo "not said: $(cat "$T/err")"; return 1; }
	cow client diff maint >"$T/diff" || return 1
	! grep -q " /etc/$\|resolv.conf" "$T/diff" || { echo "the layer changed: $(cat "$T/diff")"; return 1; }
	# one written in the client: the host's is seen over it, and it stays
	cow client shell maint --chroot -- sh -c 'echo "nameserver 192.0.2.1" >/etc/resolv.conf' || return 1
	cow client shell maint --chroot -- cat /etc/resolv.conf >"$T/out" 2>"$T/err" || { cat "$T/err"; return 1; }
	cmp -s "$T/out" /etc/resolv.conf || { echo "not the host's: $(cat "$T/out")"; return 1; }
	cow client shell maint --chroot -- rm /etc/resolv.conf 2>"$T/err" && return 1 # bound read-only over it
	cow mount maint "$M" && grep -qx "nameserver 192.0.2.1" "$M/etc/resolv.conf" || { echo "the client's file changed"; fusermount3 -u "$M"; return 1; }
	rm "$M/etc/resolv.conf"
	fusermount3 -u "$M"
	sleep 0.5
}
check "no resolv.conf: said, nothing written; the client's own: the host's seen over it, its own kept" t_dns
t_diff() {
	cow client diff maint >"$T/diff" || return 1
	grep -q "^added *\/usr\/share\/cowroot-shell-test\/README$" "$T/diff" || { echo "no README"; cat "$T/diff"; return 1; }
	grep -q "/var/lib/dpkg/status$" "$T/diff" || { echo "no dpkg status"; return 1; }
	! grep -q " /tmp/\| /run/" "$T/diff" || { echo "tmpfs content in the layer:"; grep " /tmp/\| /run/" "$T/diff"; return 1; }
}
check "client diff shows the package's files and dpkg's records, nothing of /tmp or /run" t_diff
t_status() {
	cow client shell maint --chroot -- sh -c 'exit 7'
	[ $? = 7 ]
}
check "the exit status is the command's" t_status
t_orphans() {
	cow client shell maint --chroot -- sh -c 'sleep 1000 >/dev/null 2>&1 & echo started' >"$T/out" 2>&1 || return 1
	sleep 0.5
	! pgrep -f "sleep 1000" >/dev/null || { echo "the background process lives on"; return 1; }
}
check "a process left running dies with the command" t_orphans
check "nothing stays mounted on the host" sh -c '! grep -q cowroot-shell /proc/self/mountinfo'
check "the layer is let go at once: snapshot works right after" cow client snapshot maint golden@2
t_mounted() {
	cow mount maint "$M" || return 1
	if cow client shell maint --chroot -- true 2>"$T/err"; then
		echo "a shell ran in a mounted client"
		return 1
	fi
	grep -q "mounted\|in use" "$T/err" || { cat "$T/err"; return 1; }
	fusermount3 -u "$M"
}
check "a mounted client is refused" t_mounted
if command -v systemd-nspawn >/dev/null; then
	t_nspawn() {
		cow client diff maint >"$T/diff.before" || return 1
		cow client shell maint -- sh -c 'uname -m; perl -e "open(my \$f, q(>), q(/dev/null)) or die; print qq(ok\n)"' >"$T/out" 2>"$T/err" ||
			{ cat "$T/out"; return 1; }
		[ "$(tr '\n' ' ' <"$T/out")" = "aarch64 ok " ] || { cat "$T/out"; return 1; }
		cow client diff maint >"$T/diff" || return 1
		cmp -s "$T/diff" "$T/diff.before" || { echo "nspawn changed the layer:"; diff "$T/diff.before" "$T/diff"; return 1; }
	}
	check "through systemd-nspawn: aarch64, /dev/null, the layer unchanged" t_nspawn
else
	echo "# systemd-nspawn is not installed: its path is not tested here"
fi
check "fsck is clean" cow fsck
finish
