#!/bin/bash
# bootcfg: what `cowroot netboot sdcard` writes on a Pi's SD card and the
# DHCP configuration `cowroot netboot dnsmasq` prints, checked with the
# tools that read them: mkimage/dumpimage (u-boot-tools) for boot.scr,
# Debian's u-boot-rpi and raspi-firmware packages for the card, dnsmasq
# (--test, then serving a real lease to busybox udhcpc posing as a Pi's
# boot ROM) for the configuration.
#
# Env: COWROOT            path of the built cowroot CLI
#      COW_FIXTURE_CACHE  fixture cache (default /var/cache/cowroot-test):
#                         debs/ holds the u-boot-rpi (arm64) and
#                         raspi-firmware .debs, fetched once (apt-get
#                         download with private arm64 lists in apt-arm64/)
#      COW_KEEP=1         keep the temp dir for inspection
#
# Runs in private network, mount and pid namespaces (it re-executes itself
# under unshare): the DHCP exchange is between two network namespaces
# joined by a veth pair on 10.77.0.0/24, nothing else.  Prints "ok NAME" /
# "FAIL NAME: reason" ("SKIP NAME: reason" for a check whose packages
# cannot be fetched) and ends with "N passed, N failed".
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
debs=$cache/debs
mirror=${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
deb_globs=('u-boot-rpi_*_arm64.deb' 'raspi-firmware_*_all.deb')

# fetch_debs: u-boot-rpi (arm64: its Pi builds exist for arm only) and
# raspi-firmware (non-free-firmware) into $debs, through apt with lists of
# its own so that the machine's apt configuration is left as it is.
fetch_debs() {
	local apt=$cache/apt-arm64 have=1 p
	for p in "${deb_globs[@]}"; do
		compgen -G "$debs/$p" >/dev/null || have=0
	done
	[ "$have" = 1 ] && return 0
	mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$debs"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main non-free-firmware" \
		>"$apt/sources.list"
	local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
		-o "Dir::State=$apt" -o "Dir::State::Lists=$apt/lists" -o Dir::State::status=/dev/null
		-o "Dir::Cache=$apt" -o APT::Architecture=arm64 -o APT::Architectures::=arm64
		-o APT::Sandbox::User=root)
	echo "# fetching u-boot-rpi and raspi-firmware into $debs"
	apt-get "${opts[@]}" -q update >"$cache/apt-arm64.log" 2>&1 &&
		(cd "$debs" && apt-get "${opts[@]}" -q download u-boot-rpi raspi-firmware >>"$cache/apt-arm64.log" 2>&1)
}

if [ -z "${COW_BOOTCFG_INNER:-}" ]; then
	[ -n "${COWROOT:-}" ] && [ -x "$COWROOT" ] || { echo "COWROOT is not set to the cowroot binary" >&2; exit 1; }
	[ "$(id -u)" = 0 ] || skip "needs root (network namespaces for the DHCP exchange)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	command -v ip >/dev/null || skip "ip is missing (install iproute2)"
	command -v mkimage >/dev/null && command -v dumpimage >/dev/null ||
		skip "mkimage/dumpimage are missing (install u-boot-tools)"
	command -v dnsmasq >/dev/null || skip "dnsmasq is missing (install dnsmasq-base)"
	command -v busybox >/dev/null || skip "busybox is missing (install busybox: its udhcpc)"
	mkdir -p "$cache" "$debs"
	exec 9>"$cache/.lock"
	flock 9
	if fetch_debs; then
		export COW_BOOTCFG_DEBS=1
	else
		echo "# cannot fetch the .debs (no network?): $(tail -n 2 "$cache/apt-arm64.log" | tr '\n' ' ')"
	fi
	flock -u 9
	exec 9>&-
	export COW_BOOTCFG_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
	skip "cannot create private network/mount/pid namespaces with unshare"
fi

# ---- inside the namespaces ---------------------------------------------------------------------

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

ip link set lo up || skip "cannot bring up loopback in the network namespace"
mount -t tmpfs -o mode=0755 cowroot-bootcfg-run /run || skip "cannot mount a tmpfs on /run"
mkdir -p /run/netns

tmp=$(mktemp -d /tmp/cowroot-bootcfg.XXXXXX)
dnsmasq_pid=
cleanup() {
	[ -n "$dnsmasq_pid" ] && kill "$dnsmasq_pid" 2>/dev/null && wait "$dnsmasq_pid" 2>/dev/null
	ip netns del pi 2>/dev/null
	if [ "${COW_KEEP:-0}" = 1 ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

store=$tmp/store
cow() { "$COWROOT" --store "$store" "$@"; }
mkdir -p "$tmp/img/etc" "$tmp/empty"
cow init >/dev/null || exit 1
cow image import base "$tmp/img" >/dev/null || exit 1
# a client named like a subcommand, and a fleet with every way of not
# being servable by DHCP
cow client add dnsmasq --image base --ip 10.77.0.9 >/dev/null || exit 1
cow client add pi1 --image base --ip 10.77.0.11 --mac 02:00:00:00:00:11 --serial 0000abcd >/dev/null || exit 1
cow client add pi2 --image base --ip 10.77.0.12 >/dev/null || exit 1
cow client add pi3 --image base --ip 10.77.0.0/28 --mac 02:00:00:00:00:13 >/dev/null || exit 1
cow client add pi4 --image base --ip 10.77.0.14,10.77.0.41 --mac 02:00:00:00:00:14 >/dev/null || exit 1
cow client add pi_5 --image base --ip 10.77.0.15/32,fd00::15 --mac 02-00-00-00-00-15 >/dev/null || exit 1
cow client add pi6 --image base --ip 10.9.0.16 --mac 02:00:00:00:00:16 >/dev/null || exit 1
cow client add pi7 --image base --ip 10.77.0.11 --mac 02:00:00:00:00:17 >/dev/null || exit 1

# an image with two kernels, their Pi device trees, and things that are not
k9=$tmp/pi-image/usr/lib/linux-image-6.1.0-9-arm64/broadcom
k10=$tmp/pi-image/usr/lib/linux-image-6.1.0-10-arm64/broadcom
mkdir -p "$k9" "$k10/bcm2711-rpi-cm4.dtb"
echo "6.1.0-9 rpi4" >"$k9/bcm2711-rpi-4-b.dtb"
echo "6.1.0-10 rpi4" >"$k10/bcm2711-rpi-4-b.dtb"
echo "6.1.0-10 rpi3" >"$k10/bcm2837-rpi-3-b.dtb"
echo readme >"$k10/README"
cow image import pi-image "$tmp/pi-image" >/dev/null || exit 1

# what the card holds of the packages' files, and the device trees (the
# Debian kernel's, in a stand-in: their content does not matter here)
no_pkgs=(--uboot-dir "$tmp/empty" --firmware-dir "$tmp/empty" --dtb-dir "$tmp/empty")
dtbs=$tmp/dtbs
mkdir -p "$dtbs/overlays"
for d in bcm2837-rpi-3-b bcm2837-rpi-3-b-plus bcm2711-rpi-4-b; do
	printf 'dtb %s\n' "$d" >"$dtbs/$d.dtb"
done
printf 'overlay\n' >"$dtbs/overlays/disable-bt.dtbo"

# ---- the old command ----

t_old_form_gone() {
	local r
	cow netboot pi1 --tftp-dir "$tmp/tftp" --server 192.0.2.1 >/dev/null 2>"$tmp/old.err"
	r=$?
	[ "$r" = 2 ] || { echo "old form exited $r, not 2"; return 1; }
	grep -q 'netboot-<serial or MAC>.scr' "$tmp/old.err" && grep -q 'netboot sdcard' "$tmp/old.err" &&
		grep -q 'netboot dnsmasq' "$tmp/old.err" || { cat "$tmp/old.err"; return 1; }
	[ ! -e "$tmp/tftp" ] || { echo "the old form wrote $tmp/tftp"; return 1; }
	cow netboot >/dev/null 2>"$tmp/old.err"
	r=$?
	[ "$r" = 2 ] && grep -q 'netboot sdcard DIR' "$tmp/old.err" || { echo "bare netboot: $r"; return 1; }
	# a client called "dnsmasq" is never taken for the subcommand's argument
	cow netboot dnsmasq --tftp-dir "$tmp/tftp" >/dev/null 2>&1
	r=$?
	[ "$r" = 2 ] && [ ! -e "$tmp/tftp" ] || { echo "netboot dnsmasq --tftp-dir: $r"; return 1; }
	cow netboot sdcard >/dev/null 2>&1
	[ $? = 2 ] || { echo "netboot sdcard without DIR did not exit 2"; return 1; }
}
check "the old 'netboot CLIENT --tftp-dir' is gone, saying what replaced it; bare netboot prints usage" \
	t_old_form_gone

# ---- the SD card ----

# card_payload CARD: boot.scr's script, extracted by dumpimage (which
# keeps the image's table of lengths: 4 bytes, and 4 of zeros, in front)
card_payload() {
	rm -f "$tmp/payload.raw"
	dumpimage -T script -p 0 -o "$tmp/payload.raw" "$1/boot.scr" >/dev/null || return 1
	tail -c +9 "$tmp/payload.raw" >"$tmp/payload"
}

t_sdcard_bare() {
	local c=$tmp/card-bare f
	cow netboot sdcard "$c" "${no_pkgs[@]}" >"$tmp/sd.out" 2>"$tmp/sd.err" || { cat "$tmp/sd.err"; return 1; }
	for f in boot.cmd boot.scr config.txt; do
		[ -f "$c/$f" ] && [ ! -L "$c/$f" ] || { echo "no $f"; return 1; }
	done
	# incomplete, and it says how to get what is missing
	grep -q 'apt-get install u-boot-rpi' "$tmp/sd.err" && grep -q 'non-free-firmware' "$tmp/sd.err" &&
		grep -q 'apt-get install raspi-firmware' "$tmp/sd.err" && grep -q 'incomplete' "$tmp/sd.err" ||
		{ cat "$tmp/sd.err"; return 1; }
	# boot.scr is an arm64 u-boot script image of exactly boot.cmd
	mkimage -l "$c/boot.scr" >"$tmp/mk.out" || return 1
	grep -q 'AArch64 Linux Script (uncompressed)' "$tmp/mk.out" || { cat "$tmp/mk.out"; return 1; }
	card_payload "$c" && cmp -s "$tmp/payload" "$c/boot.cmd" || { echo "boot.scr does not hold boot.cmd"; return 1; }
	# and is what mkimage makes of it, but for the time and header checksum
	mkimage -A arm64 -O linux -T script -C none -n 'cowroot universal boot.scr' -d "$c/boot.cmd" \
		"$tmp/mk.scr" >/dev/null || return 1
	cmp -s <(tail -c +13 "$tmp/mk.scr") <(tail -c +13 "$c/boot.scr") || { echo "boot.scr is not mkimage's"; return 1; }
	# universal: dhcp, then the Pi's own script by serial#, else by MAC,
	# fetched with the server in front (u-boot reads "A:B" as server A)
	grep -qx 'setenv autoload no' "$c/boot.cmd" && grep -qx 'if dhcp; then' "$c/boot.cmd" &&
		grep -q 'setenv cowroot_id ${serial#}$' "$c/boot.cmd" &&
		grep -q 'setenv cowroot_id ${ethaddr}$' "$c/boot.cmd" &&
		grep -q 'tftpboot ${scriptaddr} ${serverip}:netboot-${cowroot_id}.scr; then$' "$c/boot.cmd" &&
		grep -q 'source ${scriptaddr}$' "$c/boot.cmd" &&
		grep -q 'cowroot client set NAME --${cowroot_set}' "$c/boot.cmd" || { cat "$c/boot.cmd"; return 1; }
	! grep -q 'setenv serverip' "$c/boot.cmd" || { echo "serverip set without --server"; return 1; }
	! grep -rqE 'pi1|0000abcd|02:00:00:00:00:11' "$c" || { echo "the card names a client"; return 1; }
	grep -qx 'arm_64bit=1' "$c/config.txt" && grep -qx 'enable_uart=1' "$c/config.txt" ||
		{ cat "$c/config.txt"; return 1; }
	! grep -q '^kernel=' "$c/config.txt" || { echo "config.txt names a u-boot the card lacks"; return 1; }
	# --server: set after dhcp (which would set it from next-server)
	cow netboot sdcard "$c" --server 192.0.2.1 "${no_pkgs[@]}" >/dev/null 2>&1 || return 1
	sed -n '/^if dhcp; then$/{n;p}' "$c/boot.cmd" | grep -qx $'\tsetenv serverip 192.0.2.1' ||
		{ cat "$c/boot.cmd"; return 1; }
	card_payload "$c" && cmp -s "$tmp/payload" "$c/boot.cmd" || return 1
	# 32-bit
	cow netboot sdcard "$tmp/card-arm" --arch arm "${no_pkgs[@]}" >/dev/null 2>&1 || return 1
	mkimage -l "$tmp/card-arm/boot.scr" | grep -q 'ARM Linux Script' || return 1
	! grep -q 'arm_64bit' "$tmp/card-arm/config.txt" || return 1
}
check "sdcard without the packages: universal boot.scr (= boot.cmd), config.txt, says how to get u-boot and firmware" \
	t_sdcard_bare

t_sdcard_hostile() {
	local c=$tmp/card-hostile val r
	cow netboot sdcard "$c" --server 192.0.2.1 "${no_pkgs[@]}" >/dev/null 2>&1 || return 1
	cp "$c/boot.cmd" "$tmp/good.cmd"
	for val in $'192.0.2.1\nreset' $'192.0.2.1\n' 'a b' '192.0.2.1;reset' '${x}' '' '192.0.2.256' '1.2.3' \
		'::1' '0x7f.1.1.1'; do
		cow netboot sdcard "$c" --server "$val" "${no_pkgs[@]}" >/dev/null 2>"$tmp/h.err"
		r=$?
		[ "$r" = 2 ] && grep -q 'invalid --server' "$tmp/h.err" ||
			{ echo "--server $(printf '%q' "$val"): exit $r"; return 1; }
	done
	cmp -s "$tmp/good.cmd" "$c/boot.cmd" || { echo "a refused --server changed boot.cmd"; return 1; }
	! grep -qx 'reset' "$c/boot.cmd" || return 1
	# symlinks at the card's files are replaced, their targets untouched
	for f in boot.cmd boot.scr config.txt; do
		echo victim >"$tmp/victim.$f"
		ln -sf "$tmp/victim.$f" "$c/$f"
	done
	# (boot.cmd, a symlink, does not tell an earlier card: --force)
	cow netboot sdcard "$c" "${no_pkgs[@]}" >/dev/null 2>&1 && { echo "took a symlink for an earlier card"; return 1; }
	cow netboot sdcard "$c" --force "${no_pkgs[@]}" >/dev/null 2>&1 || { echo "--force was refused"; return 1; }
	for f in boot.cmd boot.scr config.txt; do
		[ "$(cat "$tmp/victim.$f")" = victim ] || { echo "wrote through a symlink at $f"; return 1; }
		[ -f "$c/$f" ] && [ ! -L "$c/$f" ] || { echo "$f is still a symlink"; return 1; }
	done
	# a symlink at overlays/ is refused, its target left empty
	mkdir -p "$tmp/elsewhere"
	ln -s "$tmp/elsewhere" "$c/overlays"
	if cow netboot sdcard "$c" --uboot-dir "$tmp/empty" --firmware-dir "$tmp/empty" --dtb-dir "$dtbs" \
		>/dev/null 2>"$tmp/h.err"; then
		echo "wrote the overlays through a symlink"
		return 1
	fi
	grep -q 'not writing through it' "$tmp/h.err" || { cat "$tmp/h.err"; return 1; }
	[ -z "$(ls -A "$tmp/elsewhere")" ] || { echo "wrote into the symlink's target"; return 1; }
	rm "$c/overlays"
	# a DIR that holds someone else's files (a Raspberry Pi OS boot
	# partition): refused, untouched; with --force written beside them
	local os=$tmp/card-os
	mkdir -p "$os"
	echo 'console=serial0 root=/dev/mmcblk0p2' >"$os/cmdline.txt"
	echo 'dtoverlay=vc4-kms-v3d' >"$os/config.txt"
	if cow netboot sdcard "$os" "${no_pkgs[@]}" >/dev/null 2>"$tmp/h.err"; then
		echo "wrote over another boot partition without --force"
		return 1
	fi
	grep -q -- '--force' "$tmp/h.err" || { cat "$tmp/h.err"; return 1; }
	[ "$(ls "$os" | tr '\n' ' ')" = "cmdline.txt config.txt " ] && grep -q vc4 "$os/config.txt" ||
		{ echo "a refused card changed DIR"; return 1; }
	cow netboot sdcard "$os" --force "${no_pkgs[@]}" >/dev/null 2>&1 || return 1
	[ -f "$os/boot.scr" ] && grep -q 'root=/dev/mmcblk0p2' "$os/cmdline.txt" || return 1
	# an earlier card of this command's is rewritten without --force
	cow netboot sdcard "$os" "${no_pkgs[@]}" >/dev/null 2>&1 && return 1
	cow netboot sdcard "$c" "${no_pkgs[@]}" >/dev/null 2>&1 || { echo "an earlier card was refused"; return 1; }
}
check "sdcard refuses a --server that would change the script, writes nothing through a symlink, keeps others' files" \
	t_sdcard_hostile

# the device trees of the clients' own image (of its newest kernel), read
# from the store: the server need not have an arm64 kernel installed
t_sdcard_image() {
	local c=$tmp/card-image
	cow netboot sdcard "$c" --image pi-image "${no_pkgs[@]:0:4}" >/dev/null 2>"$tmp/im.err" ||
		{ cat "$tmp/im.err"; return 1; }
	[ "$(cat "$c/bcm2711-rpi-4-b.dtb")" = "6.1.0-10 rpi4" ] && [ "$(cat "$c/bcm2837-rpi-3-b.dtb")" = "6.1.0-10 rpi3" ] ||
		{ echo "not the newest kernel's device trees: $(ls "$c")"; return 1; }
	[ ! -e "$c/bcm2711-rpi-cm4.dtb" ] && [ ! -e "$c/README" ] || { echo "copied what is not a Pi device tree"; return 1; }
	! grep -q 'device trees' "$tmp/im.err" || { cat "$tmp/im.err"; return 1; }
	# an image without a kernel: said; an unknown image: refused, the card unchanged
	cow netboot sdcard "$tmp/card-nokernel" --image base "${no_pkgs[@]:0:4}" >/dev/null 2>"$tmp/im.err" || return 1
	grep -q "no Pi device trees (bcm2\*.dtb) in 'image base: /usr/lib/linux-image-\*'" "$tmp/im.err" ||
		{ cat "$tmp/im.err"; return 1; }
	cp "$c/config.txt" "$tmp/config.good"
	cow netboot sdcard "$c" --image nosuch --server 192.0.2.7 "${no_pkgs[@]:0:4}" >/dev/null 2>"$tmp/im.err" && return 1
	grep -q "no image 'nosuch'" "$tmp/im.err" && cmp -s "$tmp/config.good" "$c/config.txt" &&
		! grep -q 192.0.2.7 "$c/boot.cmd" || { echo "a refused --image changed the card"; return 1; }
	cow netboot sdcard "$c" --image base --dtb-dir "$dtbs" >/dev/null 2>&1 && return 1
	return 0
}
check "sdcard --image: the device trees of the image's newest kernel, from the store" t_sdcard_image

t_sdcard_packages() {
	local p=$tmp/pkgs c=$tmp/card-full d f
	mkdir -p "$p"
	for d in "${deb_globs[@]}"; do
		dpkg-deb -x "$(compgen -G "$debs/$d" | head -1)" "$p" || return 1
	done
	cow netboot sdcard "$c" --uboot-dir "$p/usr/lib/u-boot" --firmware-dir "$p/usr/lib/raspi-firmware" \
		--dtb-dir "$dtbs" >"$tmp/sd.out" 2>"$tmp/sd.err" || { cat "$tmp/sd.err"; return 1; }
	[ ! -s "$tmp/sd.err" ] || { echo "complete card, yet: $(cat "$tmp/sd.err")"; return 1; }
	for d in rpi_arm64 rpi_3 rpi_4; do
		cmp -s "$p/usr/lib/u-boot/$d/u-boot.bin" "$c/u-boot-$d.bin" || { echo "no u-boot $d"; return 1; }
	done
	for f in bootcode.bin start.elf fixup.dat start4.elf fixup4.dat; do
		cmp -s "$p/usr/lib/raspi-firmware/$f" "$c/$f" || { echo "no firmware $f"; return 1; }
	done
	cmp -s "$dtbs/bcm2711-rpi-4-b.dtb" "$c/bcm2711-rpi-4-b.dtb" &&
		cmp -s "$dtbs/overlays/disable-bt.dtbo" "$c/overlays/disable-bt.dtbo" || { echo "no device trees"; return 1; }
	# the firmware starts the model's u-boot: rpi_arm64 for every model,
	# rpi_3 and rpi_4 for theirs
	awk '/^\[/{s=$0} /^kernel=/{print s, $0}' "$c/config.txt" >"$tmp/kernels"
	printf '%s\n' '[all] kernel=u-boot-rpi_arm64.bin' '[pi3] kernel=u-boot-rpi_3.bin' \
		'[pi4] kernel=u-boot-rpi_4.bin' | cmp -s - "$tmp/kernels" || { cat "$c/config.txt"; return 1; }
	# written again where the packages are not installed: the card keeps its
	# u-boot and firmware, and config.txt still starts u-boot
	cow netboot sdcard "$c" "${no_pkgs[@]}" >/dev/null 2>"$tmp/sd.err" || return 1
	awk '/^\[/{s=$0} /^kernel=/{print s, $0}' "$c/config.txt" | cmp -s - "$tmp/kernels" ||
		{ echo "rewriting without the packages lost u-boot"; return 1; }
	! grep -q incomplete "$tmp/sd.err" || { cat "$tmp/sd.err"; return 1; }
}
name="sdcard with Debian's u-boot-rpi and raspi-firmware: u-boot per model in config.txt, firmware, device trees"
if [ -n "${COW_BOOTCFG_DEBS:-}" ]; then
	check "$name" t_sdcard_packages
else
	echo "SKIP $name: the .debs cannot be fetched (no network?)"
fi

# ---- DHCP ----

# the server's side of the link to the Pi: veth0 (10.77.0.1/24) here, its
# peer in namespace "pi"
ip netns add pi || skip "cannot add a network namespace"
ip link add veth0 type veth peer name veth1 || skip "cannot make a veth pair"
ip link set veth1 netns pi || skip "cannot move a veth into a namespace"
ip addr add 10.77.0.1/24 dev veth0 && ip link set veth0 up || exit 1
ip netns exec pi ip link set lo up || exit 1

# conf_lines FILE: its settings, comments and blank lines left out
conf_lines() { grep -v '^#' "$1" | grep -v '^$'; }

t_dnsmasq_full() {
	cow netboot dnsmasq --interface veth0 >"$tmp/full.conf" 2>"$tmp/full.err" || { cat "$tmp/full.err"; return 1; }
	printf '%s\n' 'port=0' 'interface=veth0' 'bind-interfaces' 'dhcp-range=10.77.0.0,static,255.255.255.0,12h' \
		'dhcp-boot=bootcode.bin,,10.77.0.1' 'pxe-service=0,"Raspberry Pi Boot"' \
		'dhcp-host=02:00:00:00:00:11,id:*,10.77.0.11,pi1' 'dhcp-host=02:00:00:00:00:15,id:*,10.77.0.15' \
		>"$tmp/full.want"
	conf_lines "$tmp/full.conf" | cmp -s - "$tmp/full.want" ||
		{ echo "got:"; conf_lines "$tmp/full.conf"; return 1; }
	# every client left out is named, with why, in the file and on stderr
	local n
	for n in dnsmasq pi2 pi3 pi4 pi6 pi7; do
		grep -q "^# $n: left out: " "$tmp/full.conf" && grep -q "client '$n' left out" "$tmp/full.err" ||
			{ echo "$n not said to be left out"; cat "$tmp/full.err"; return 1; }
	done
	grep -q '^# pi2: left out: no MAC' "$tmp/full.conf" && grep -q '^# pi4: left out: several IPv4' "$tmp/full.conf" &&
		grep -q '^# pi6: left out: its address 10.9.0.16 is outside' "$tmp/full.conf" &&
		grep -q '^# pi7: left out: its address 10.77.0.11 is given to pi1$' "$tmp/full.conf" ||
		{ cat "$tmp/full.conf"; return 1; }
	! grep -qE 'enable-tftp|tftp-root' "$tmp/full.conf" || return 1
	dnsmasq --test -C "$tmp/full.conf" >"$tmp/test.out" 2>&1 || { cat "$tmp/test.out"; return 1; }
	# a range for other machines; the subnet given
	cow netboot dnsmasq --server 10.77.0.1 --range 10.77.0.100,10.77.0.150 >"$tmp/range.conf" 2>/dev/null || return 1
	grep -qx 'dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,12h' "$tmp/range.conf" || return 1
	dnsmasq --test -C "$tmp/range.conf" >"$tmp/test.out" 2>&1 || { cat "$tmp/test.out"; return 1; }
	cow netboot dnsmasq --server 192.0.2.1 --subnet 10.77.0.0/24 >"$tmp/subnet.conf" 2>/dev/null || return 1
	grep -qx 'dhcp-boot=bootcode.bin,,192.0.2.1' "$tmp/subnet.conf" &&
		grep -qx 'dhcp-range=10.77.0.0,static,255.255.255.0,12h' "$tmp/subnet.conf" || return 1
	# no subnet to be had: refused
	cow netboot dnsmasq --server 192.0.2.1 >/dev/null 2>"$tmp/h.err" && return 1
	grep -q -- '--subnet' "$tmp/h.err" || { cat "$tmp/h.err"; return 1; }
}
check "dnsmasq: full DHCP config (no DNS, no TFTP, next-server, option 43, a fixed address per client), dnsmasq --test" \
	t_dnsmasq_full

t_dnsmasq_proxy() {
	cow netboot dnsmasq --proxy --interface veth0 >"$tmp/proxy.conf" 2>/dev/null || return 1
	printf '%s\n' 'port=0' 'interface=veth0' 'bind-interfaces' 'dhcp-range=10.77.0.0,proxy,255.255.255.0' \
		'dhcp-boot=bootcode.bin,,10.77.0.1' 'pxe-service=0,"Raspberry Pi Boot"' >"$tmp/proxy.want"
	conf_lines "$tmp/proxy.conf" | cmp -s - "$tmp/proxy.want" ||
		{ echo "got:"; conf_lines "$tmp/proxy.conf"; return 1; }
	# the addresses to reserve in the other DHCP server, as comments
	grep -qx '# dhcp-host=02:00:00:00:00:11,id:\*,10.77.0.11,pi1' "$tmp/proxy.conf" || return 1
	dnsmasq --test -C "$tmp/proxy.conf" >"$tmp/test.out" 2>&1 || { cat "$tmp/test.out"; return 1; }
	cow netboot dnsmasq --proxy --range 10.77.0.100,10.77.0.150 >/dev/null 2>&1 && return 1
	return 0
}
check "dnsmasq --proxy: proxy DHCP beside an existing server, dnsmasq --test" t_dnsmasq_proxy

# every value that goes into the configuration is checked, from the
# command line and from the store alike
t_dnsmasq_hostile() {
	local opt val r
	for opt in --server --interface --subnet --range; do
		for val in $'10.77.0.1\nenable-tftp' $'veth0\nenable-tftp' 'a b' '' '10.77.0.1,' '10.77.0.0/24 x'; do
			cow netboot dnsmasq "$opt" "$val" >"$tmp/h.out" 2>"$tmp/h.err"
			r=$?
			[ "$r" = 2 ] && [ ! -s "$tmp/h.out" ] && grep -q "invalid $opt" "$tmp/h.err" ||
				{ echo "$opt $(printf '%q' "$val"): exit $r: $(cat "$tmp/h.err")"; return 1; }
		done
	done
	for val in 10.77.0.1/24 10.77.0.0/33 10.77.0.0/7 10.77.0.5/24 10.77.0.0/024; do
		cow netboot dnsmasq --subnet "$val" >/dev/null 2>&1 && { echo "accepted --subnet $val"; return 1; }
	done
	cow netboot dnsmasq --range 10.77.0.150,10.77.0.100 >/dev/null 2>&1 && { echo "accepted a reversed range"; return 1; }
	cow netboot dnsmasq --range 10.78.0.1,10.78.0.9 --interface veth0 >/dev/null 2>&1 &&
		{ echo "accepted a range outside the network"; return 1; }
	# what the store holds is checked too (written behind cowroot's back)
	command -v sqlite3 >/dev/null || { echo "sqlite3 is missing (install sqlite3)"; return 1; }
	local db=$store/cowroot.db
	cp "$db" "$tmp/db.good"
	# (the store keeps the 17 bytes of a MAC: the newline within them)
	sqlite3 "$db" "UPDATE clients SET mac = '02:00:00:00:00:1' || char(10) || 'enable-tftp' WHERE name = 'pi1';
		UPDATE clients SET addrs = '10.77.0.15' || char(10) || 'tftp-root=/' WHERE name = 'pi_5'" || return 1
	cow netboot dnsmasq --interface veth0 >"$tmp/h.conf" 2>"$tmp/h.err"
	cp "$tmp/db.good" "$db"
	! grep -qE '^(enable-tftp|tftp-root)' "$tmp/h.conf" || { echo "a store value made a line of its own"; return 1; }
	grep -q '^# pi1: left out: its MAC address is malformed' "$tmp/h.conf" &&
		grep -q '^# pi_5: left out: its addresses are invalid' "$tmp/h.conf" || { cat "$tmp/h.conf"; return 1; }
	# (pi7, which shares pi1's address, has it now that pi1 is left out)
	[ "$(grep '^dhcp-host' "$tmp/h.conf")" = 'dhcp-host=02:00:00:00:00:17,id:*,10.77.0.11,pi7' ] ||
		{ grep '^dhcp-host' "$tmp/h.conf"; return 1; }
}
check "dnsmasq refuses values that would add a line, from the command line or the store" t_dnsmasq_hostile

# run dnsmasq with the configuration, and have a client with pi1's MAC ask
# for an address as a Pi's boot ROM does and as u-boot does: the answer
# must carry its fixed address, the TFTP server and (for the ROM) option
# 43 with "Raspberry Pi Boot"
cat >"$tmp/udhcpc.sh" <<'EOF'
#!/bin/sh
[ "$1" = bound ] && env >"$COW_LEASE"
exit 0
EOF
chmod +x "$tmp/udhcpc.sh"

# start_dnsmasq CONF LOG: dnsmasq in the foreground, in the background,
# until it listens on the DHCP port
start_dnsmasq() {
	dnsmasq -k -C "$1" -u root --dhcp-leasefile="$tmp/leases" --pid-file="$tmp/dnsmasq.pid" \
		--log-dhcp --log-facility="$2" &
	dnsmasq_pid=$!
	local _
	for _ in $(seq 50); do
		ss -ulnp 2>/dev/null | grep -q ':67 ' && return 0
		sleep 0.1
	done
	return 1
}
stop_dnsmasq() {
	[ -n "$dnsmasq_pid" ] && kill "$dnsmasq_pid" 2>/dev/null && wait "$dnsmasq_pid" 2>/dev/null
	dnsmasq_pid=
}
# with_dnsmasq CONF LOG FUNCTION: run the function while dnsmasq serves
# CONF (a check runs in a subshell: dnsmasq is stopped in it, on every path)
with_dnsmasq() {
	local r
	start_dnsmasq "$1" "$2" || { echo "dnsmasq did not start"; stop_dnsmasq; return 1; }
	"$3"
	r=$?
	stop_dnsmasq
	return $r
}

# dhcp_ask MAC OUT UDHCPC-ARGS...: ask for a lease from namespace "pi"
# with @MAC; the lease's variables in OUT
dhcp_ask() {
	local mac=$1 out=$2
	shift 2
	ip netns exec pi ip link set veth1 down
	ip netns exec pi ip link set veth1 address "$mac" || return 1
	ip netns exec pi ip link set veth1 up || return 1
	rm -f "$out"
	COW_LEASE=$out timeout 30 ip netns exec pi busybox udhcpc -i veth1 -n -q -f -t 4 -T 1 -A 1 \
		-s "$tmp/udhcpc.sh" "$@" >/dev/null 2>&1
}
# as a Pi's boot ROM asks: vendor class PXEClient, client architecture 0,
# UNDI 2.1, a GUID, and option 43 wanted
pi_lease() {
	dhcp_ask "$1" "$2" -O 43 -V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000 -x 0x5e:010201 \
		-x 0x61:0044444444444444444444444444444444
}
# as u-boot 2023.01 (arm64) asks: its vendor class, architecture 0x16
uboot_lease() {
	dhcp_ask "$1" "$2" -V U-Boot.armv8 -x 0x5d:0016 -x 0x5e:010300
}

t_dhcp_lease() {
	# DHCP only: nothing on DNS or TFTP
	! ss -ulnp 2>/dev/null | grep -qE ':(53|69) ' || { echo "dnsmasq serves DNS or TFTP"; return 1; }
	pi_lease 02:00:00:00:00:11 "$tmp/lease" || { echo "pi1 got no lease"; tail -n 20 "$tmp/dnsmasq.log"; return 1; }
	grep -qx 'ip=10.77.0.11' "$tmp/lease" && grep -qx 'siaddr=10.77.0.1' "$tmp/lease" &&
		grep -qx 'hostname=pi1' "$tmp/lease" || { grep -E '^(ip|siaddr|hostname)=' "$tmp/lease"; return 1; }
	# option 43: PXE discovery control 3, menu prompt, the boot menu with
	# "Raspberry Pi Boot" (hex), as the Pi documentation shows it
	grep -q '^opt43=.*52617370626572727920506920426f6f74' "$tmp/lease" ||
		{ grep '^opt43' "$tmp/lease" || echo "no option 43"; return 1; }
	# u-boot's dhcp on pi1 gets the same address and the TFTP server
	uboot_lease 02:00:00:00:00:11 "$tmp/lease-uboot" && grep -qx 'ip=10.77.0.11' "$tmp/lease-uboot" &&
		grep -qx 'siaddr=10.77.0.1' "$tmp/lease-uboot" || { echo "u-boot's request got no lease"; return 1; }
	# pi_5, given with dashes and a /32, gets its address too
	pi_lease 02:00:00:00:00:15 "$tmp/lease5" && grep -qx 'ip=10.77.0.15' "$tmp/lease5" ||
		{ echo "pi_5 got no lease"; return 1; }
	# a machine the store does not know, and a client left out, get nothing
	if pi_lease 02:00:00:00:00:99 "$tmp/lease-stranger" || pi_lease 02:00:00:00:00:14 "$tmp/lease4"; then
		echo "a machine without a fixed address got a lease"
		return 1
	fi
}
check "dnsmasq run with the config: Pi ROM- and u-boot-like clients get the fixed address, next-server, option 43; strangers nothing" \
	with_dnsmasq "$tmp/full.conf" "$tmp/dnsmasq.log" t_dhcp_lease

# a proxy gives no address (udhcpc gets none), but its answer to a PXE
# DISCOVER names the TFTP server given (here not dnsmasq's own address)
# and carries option 43: as dnsmasq's log of what it sent says
t_dhcp_proxy() {
	pi_lease 02:00:00:00:00:11 "$tmp/lease-proxy" && { echo "a proxy gave an address"; return 1; }
	grep -q 'PXE(veth0) 02:00:00:00:00:11 proxy' "$tmp/proxy.log" && grep -q 'next server: 10.77.0.5$' "$tmp/proxy.log" &&
		grep -q 'option: 43 vendor-encap  06:01:03:0a:04:00:50:58:45:09:14:00:00:11' "$tmp/proxy.log" ||
		{ tail -n 20 "$tmp/proxy.log"; return 1; }
}
"$COWROOT" --store "$store" netboot dnsmasq --proxy --interface veth0 --server 10.77.0.5 >"$tmp/proxy5.conf" 2>/dev/null
check "dnsmasq --proxy run: a Pi-like client's DISCOVER gets the TFTP server given and option 43, no address" \
	with_dnsmasq "$tmp/proxy5.conf" "$tmp/proxy.log" t_dhcp_proxy

finish
