#!/bin/bash
# imgcheck: `cowroot image check` and `--fix` on small image trees made here.
#
# Each tree is imported into a store in a temp dir and checked with --json:
# a good image (a Debian kernel, its config and an initramfs-tools NFS
# initramfs, a full Pi boot tree) has no findings at all; then each finding
# and its absence: fstab lines (comments, tabs, noauto, nofail), the network
# managers (systemd-networkd, NetworkManager, ifupdown, dhcpcd) enabled or
# not, masked, configured to leave the interface alone; no kernel, no
# initramfs, real initramfs archives made with cpio -H newc, compressed
# with gzip, zstd, xz and lz4 behind an uncompressed early archive, without
# NFS support, BOOT=local, truncated, corrupt, and a decompression bomb
# (bounded); the Pi firmware's tree.  Then --fix: the new image has none of
# the fixed findings, the image it was made from is unchanged, and no
# temporary client is left.
#
# Env: COWROOT (the built CLI), COW_KEEP=1 keeps the temp dir.
# Prints "ok NAME" / "FAIL NAME: reason" and "N passed, N failed"; exit 0 if
# all passed, 1 on a failure, 77 when the machine lacks a tool.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/checks.sh
. "$here/../checks.sh"
skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
	echo "FAIL: \$COWROOT is not set to the built cowroot ('${COWROOT:-}')" >&2
	exit 1
fi
for c in cpio gzip zstd xz lz4 jq; do
	command -v $c >/dev/null || skip "$c is missing (tools/setup-deps.sh installs cpio, zstd, xz-utils, lz4, jq)"
done

T=$(mktemp -d /tmp/cowroot-imgcheck.XXXXXX)
cleanup() {
	mountpoint -q "$T/mnt" 2>/dev/null && { fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt"; }
	if [ "${COW_KEEP:-}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
export COWROOT_STORE=$T/store
"$COWROOT" init >/dev/null || exit 1
KV=6.1.0-18-arm64

# ---- building trees -------------------------------------------------------------------------

# initrd_tree DIR: what initramfs-tools puts in an NFS initramfs (merged /usr)
initrd_tree() {
	local d=$1
	mkdir -p "$d/usr/bin" "$d/usr/lib/modules/$KV/kernel/fs/nfs" "$d/scripts" "$d/conf/conf.d"
	ln -s usr/bin "$d/bin"
	ln -s usr/lib "$d/lib"
	printf '#!/bin/sh\n. /scripts/functions\n' >"$d/init"
	echo '# functions' >"$d/scripts/functions"
	echo '# local' >"$d/scripts/local"
	echo '# nfs' >"$d/scripts/nfs"
	echo nfsmount >"$d/usr/bin/nfsmount"
	printf 'MODULES=most\nBUSYBOX=auto\nBOOT=local\n' >"$d/conf/initramfs.conf"
	printf 'BOOT=nfs\n' >"$d/conf/conf.d/netboot"
	echo nfs >"$d/usr/lib/modules/$KV/kernel/fs/nfs/nfs.ko.xz"
	echo nfsv3 >"$d/usr/lib/modules/$KV/kernel/fs/nfs/nfsv3.ko.xz"
	head -c 300000 /dev/urandom >"$d/usr/lib/modules/$KV/kernel/fs/nfs/padding.bin"
}

# cpio_of DIR: DIR as a newc archive on stdout
cpio_of() { (cd "$1" && find . | sort | cpio -o -H newc --quiet); }

EARLY=$T/early.cpio
mkdir -p "$T/early/kernel/x86/microcode"
echo microcode >"$T/early/kernel/x86/microcode/GenuineIntel.bin"
cpio_of "$T/early" >"$EARLY"

# make_initrd OUT DIR COMPRESSOR...: the early archive, then DIR compressed
make_initrd() {
	local out=$1 dir=$2
	shift 2
	{ cat "$EARLY"; cpio_of "$dir" | "$@"; } >"$out"
}

# good_tree DIR: a root that boots over the network
good_tree() {
	local r=$1
	mkdir -p "$r/etc/systemd/system/multi-user.target.wants" "$r/etc/network" "$r/boot/firmware" \
		"$r/usr/lib/modules/$KV" "$r/sbin" "$r/proc"
	ln -s usr/lib "$r/lib"
	printf 'proc /proc proc defaults 0 0\n# UUID=x / ext4 defaults 0 1\n' >"$r/etc/fstab"
	printf 'auto lo\niface lo inet loopback\n' >"$r/etc/network/interfaces"
	echo ifup >"$r/sbin/ifup"
	head -c 4096 /dev/urandom >"$r/boot/vmlinuz-$KV"
	ln -s "boot/vmlinuz-$KV" "$r/vmlinuz"
	ln -s "boot/initrd.img-$KV" "$r/initrd.img"
	printf 'CONFIG_NFS_FS=m\nCONFIG_NFS_V3=m\nCONFIG_ROOT_NFS=y\n# CONFIG_IP_PNP is not set\n' >"$r/boot/config-$KV"
	[ -d "$T/itree" ] || initrd_tree "$T/itree"
	make_initrd "$r/boot/initrd.img-$KV" "$T/itree" zstd -q -c
	local f
	for f in start4.elf fixup4.dat bootcode.bin start.elf fixup.dat bcm2711-rpi-4-b.dtb bcm2710-rpi-3-b.dtb; do
		echo "$f" >"$r/boot/firmware/$f"
	done
	printf 'arm_64bit=1\n[all]\nkernel=vmlinuz\ninitramfs initrd.img followkernel\n' >"$r/boot/firmware/config.txt"
	cp "$r/boot/vmlinuz-$KV" "$r/boot/firmware/vmlinuz"
	cp "$r/boot/initrd.img-$KV" "$r/boot/firmware/initrd.img"
}

# image TREE: import TREE as a new image, its name in $IMG (each check
# runs in a subshell: the count is kept in a file)
echo 0 >"$T/n"
image() {
	local n
	n=$(($(cat "$T/n") + 1))
	echo $n >"$T/n"
	IMG=img$n
	"$COWROOT" image import "$IMG" "$1" >/dev/null || { echo "cannot import $1"; return 1; }
}

# run_check IMAGE: its --json report in $T/out.json, the exit status in $RC
run_check() {
	"$COWROOT" image check "$1" --json >"$T/out.json" 2>"$T/err"
	RC=$?
	jq -e . "$T/out.json" >/dev/null 2>&1 || { echo "not JSON: $(head -c 300 "$T/out.json") $(cat "$T/err")"; return 1; }
}

# has SEVERITY FILE REGEX: a finding of that severity on FILE whose problem matches
has() {
	jq -e --arg s "$1" --arg f "$2" --arg re "$3" \
		'any(.findings[]; .severity == $s and .file == $f and (.problem | test($re)))' "$T/out.json" >/dev/null ||
		{ echo "no $1 on $2 matching /$3/ in: $(jq -c '[.findings[] | [.severity, .file, .problem[0:90]]]' "$T/out.json")"; return 1; }
}
# lacks FILE: no finding on FILE at all
lacks() {
	jq -e --arg f "$1" 'all(.findings[]; .file != $f)' "$T/out.json" >/dev/null ||
		{ echo "a finding on $1: $(jq -c --arg f "$1" '[.findings[] | select(.file == $f) | .problem]' "$T/out.json")"; return 1; }
}
# lacks_check CHECK: no finding of that check
lacks_check() {
	jq -e --arg c "$1" 'all(.findings[]; .check != $c)' "$T/out.json" >/dev/null ||
		{ echo "a $1 finding: $(jq -c --arg c "$1" '[.findings[] | select(.check == $c) | [.file, .problem]]' "$T/out.json")"; return 1; }
}
rc_is() { [ "$RC" = "$1" ] || { echo "exit $RC, want $1: $(jq -c '[.findings[] | [.severity, .file]]' "$T/out.json")"; return 1; }; }

# variant NAME: a fresh good tree at $V to change
variant() {
	V=$T/trees/$1
	rm -rf "$V"
	mkdir -p "$T/trees"
	if [ -d "$T/good" ]; then cp -a "$T/good" "$V"; else good_tree "$V"; fi
}
good_tree "$T/good"

# ---- the good image --------------------------------------------------------------------------

t_good() {
	image "$T/good" && run_check "$IMG" && rc_is 0 || return 1
	jq -e '.findings == [] and .errors == 0 and .warnings == 0' "$T/out.json" >/dev/null ||
		{ echo "findings: $(jq -c .findings "$T/out.json")"; return 1; }
	"$COWROOT" image check "$IMG" >"$T/human" || return 1
	grep -q "0 error(s), 0 warning(s), 0 note(s)" "$T/human" || { cat "$T/human"; return 1; }
}
check "a good image has no findings (exit 0)" t_good

t_usage() {
	local rc
	"$COWROOT" image check >/dev/null 2>&1
	rc=$?
	[ $rc = 2 ] || { echo "no name: exit $rc"; return 1; }
	"$COWROOT" image check img1 --bogus >/dev/null 2>&1
	rc=$?
	[ $rc = 2 ] || { echo "--bogus: exit $rc"; return 1; }
	"$COWROOT" image check img1 --fix >/dev/null 2>&1
	rc=$?
	[ $rc = 2 ] || { echo "--fix without a name: exit $rc"; return 1; }
	"$COWROOT" image check nosuch >/dev/null 2>"$T/err"
	rc=$?
	[ $rc = 1 ] && grep -q "no image 'nosuch'" "$T/err" || { echo "unknown image: exit $rc $(cat "$T/err")"; return 1; }
	"$COWROOT" image check img1 --fix img1 >/dev/null 2>"$T/err"
	rc=$?
	[ $rc = 1 ] && grep -q "already exists" "$T/err" || { echo "--fix onto an existing image: exit $rc"; return 1; }
}
check "usage errors exit 2, an unknown image or an existing --fix name 1" t_usage

# ---- fstab -----------------------------------------------------------------------------------

t_fstab() {
	variant fstab
	printf '%s\n' '# PARTUUID=1234-02  /  ext4  defaults  0 1' \
		'proc            /proc           proc    defaults          0       0' \
		'PARTUUID=1234-01  /boot/firmware  vfat    defaults          0       2' \
		'PARTUUID=1234-02  /               ext4    defaults,noatime  0       1' \
		'   # indented comment /dev/mmcblk0p1 /boot vfat defaults 0 2' >"$V/etc/fstab"
	printf 'LABEL=RASPIFIRM\t/boot/\tvfat\trw\t0\t2\n' >>"$V/etc/fstab"
	printf '/dev/sda1\t/data\text4\tdefaults\t0\t2\n' >>"$V/etc/fstab"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /etc/fstab 'mounts the root from local storage' || return 1
	has error /etc/fstab 'mounts /boot/firmware from local storage' || return 1
	has error /etc/fstab "'LABEL=RASPIFIRM /boot vfat' mounts /boot" || return 1
	jq -e '[.findings[] | select(.file == "/etc/fstab") | .line] == [3, 4, 6]' "$T/out.json" >/dev/null ||
		{ echo "lines: $(jq -c '[.findings[] | select(.file == "/etc/fstab") | .line]' "$T/out.json")"; return 1; }
}
check "fstab: /, /boot, /boot/firmware from local storage are errors; comments, /proc, /data are not" t_fstab

t_fstab_noauto() {
	variant noauto
	printf 'UUID=abcd / ext4 defaults,noauto 0 1\n/dev/mmcblk0p1 /boot/firmware vfat defaults,nofail 0 2\n' >"$V/etc/fstab"
	image "$V" && run_check "$IMG" && rc_is 0 || return 1
	has warning /etc/fstab "'/dev/mmcblk0p1 /boot/firmware vfat' \\(nofail\\)" || return 1
	jq -e '[.findings[] | select(.file == "/etc/fstab")] | length == 1' "$T/out.json" >/dev/null ||
		{ echo "noauto root reported: $(jq -c .findings "$T/out.json")"; return 1; }
}
check "fstab: noauto is harmless, nofail a warning (exit 0)" t_fstab_noauto

t_fstab_hostile() {
	variant hostile
	# a terminal escape and a byte that is not UTF-8 in a field
	printf 'LABEL=\033[2J\377x /boot vfat defaults 0 2\n' >"$V/etc/fstab"
	image "$V" && run_check "$IMG" && rc_is 1 && has error /etc/fstab "LABEL=\\?\\[2J\\?x /boot" || return 1
	"$COWROOT" image check "$IMG" >"$T/human"
	cat "$T/out.json" "$T/human" | grep -q $'[\033\377]' && { echo "raw bytes of the image in the output"; return 1; }
	return 0
}
check "fstab: the image's own bytes are shown with '?' (no escape reaches the terminal or the JSON)" t_fstab_hostile

# ---- network managers ------------------------------------------------------------------------

t_networkd() {
	variant networkd
	mkdir -p "$V/etc/systemd/network" "$V/usr/lib/systemd/network"
	ln -s /lib/systemd/system/systemd-networkd.service "$V/etc/systemd/system/multi-user.target.wants/"
	printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$V/etc/systemd/network/20-wired.network"
	printf '[Match]\nName=wlan0\n[Network]\nDHCP=yes\n' >"$V/etc/systemd/network/30-wifi.network"
	printf '[Match]\nName=eth*\n[Network]\nDHCP=yes\nKeepConfiguration=yes\n' >"$V/etc/systemd/network/40-keep.network"
	# KeepConfiguration in a drop-in
	printf '[Match]\nName=end0\n[Network]\nDHCP=yes\n' >"$V/etc/systemd/network/50-dropin.network"
	mkdir -p "$V/etc/systemd/network/50-dropin.network.d"
	printf '[Network]\nKeepConfiguration=static\n' >"$V/etc/systemd/network/50-dropin.network.d/nfsroot.conf"
	# shadowed by the /etc file of the same name
	printf '[Match]\nType=ether\n[Network]\nDHCP=yes\n' >"$V/usr/lib/systemd/network/40-keep.network"
	printf '[Match]\nType=ether\n[Network]\nDHCP=yes\n' >"$V/usr/lib/systemd/network/89-ethernet.network"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /etc/systemd/network/20-wired.network 'systemd-networkd is enabled .*multi-user.target.wants' || return 1
	has error /usr/lib/systemd/network/89-ethernet.network 'configures the wired interface' || return 1
	lacks /etc/systemd/network/30-wifi.network && lacks /etc/systemd/network/40-keep.network &&
		lacks /usr/lib/systemd/network/40-keep.network && lacks /etc/systemd/network/50-dropin.network
}
check "systemd-networkd enabled with a .network for the wired interface is an error (not wlan0, not KeepConfiguration)" t_networkd

t_networkd_off() {
	variant networkd-off
	mkdir -p "$V/etc/systemd/network"
	printf '[Match]\nName=eth0\n[Network]\nDHCP=yes\n' >"$V/etc/systemd/network/20-wired.network"
	image "$V" && run_check "$IMG" && rc_is 0 && lacks_check network || return 1
	# enabled, but masked
	ln -s /lib/systemd/system/systemd-networkd.service "$V/etc/systemd/system/multi-user.target.wants/"
	ln -s /dev/null "$V/etc/systemd/system/systemd-networkd.service"
	image "$V" && run_check "$IMG" && rc_is 0 && lacks_check network
}
check "systemd-networkd not enabled, or masked: no finding" t_networkd_off

t_nm() {
	variant nm
	mkdir -p "$V/etc/NetworkManager/conf.d"
	ln -s /lib/systemd/system/NetworkManager.service "$V/etc/systemd/system/multi-user.target.wants/"
	printf '[main]\nplugins=keyfile\n' >"$V/etc/NetworkManager/NetworkManager.conf"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /etc/systemd/system/multi-user.target.wants/NetworkManager.service 'NetworkManager is enabled and manages' || return 1
	printf '[keyfile]\nunmanaged-devices=interface-name:eth0;interface-name:end0\n' >"$V/etc/NetworkManager/conf.d/nfsroot.conf"
	image "$V" && run_check "$IMG" && rc_is 0 || return 1
	has note /etc/NetworkManager/conf.d/nfsroot.conf 'leaves eth0 alone' || return 1
	# Debian's default: the ifupdown plugin leaves what interfaces configures alone
	rm "$V/etc/NetworkManager/conf.d/nfsroot.conf"
	printf '[main]\nplugins=ifupdown,keyfile\n\n[ifupdown]\nmanaged=false\n' >"$V/etc/NetworkManager/NetworkManager.conf"
	printf 'auto lo\niface lo inet loopback\niface eth0 inet manual\n' >"$V/etc/network/interfaces"
	image "$V" && run_check "$IMG" && rc_is 0 && has note /etc/network/interfaces 'leaves eth0 alone \(ifupdown\)'
}
check "NetworkManager enabled is an error unless it leaves the interface unmanaged" t_nm

t_ifupdown() {
	variant ifupdown
	mkdir -p "$V/etc/network/interfaces.d"
	printf 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n' >"$V/etc/network/interfaces"
	printf '# the wired one\nallow-hotplug end0\niface end0 inet dhcp\n' >"$V/etc/network/interfaces.d/end0"
	printf 'auto eth1\niface eth1 inet static\n  address 10.0.0.2/24\n' >"$V/etc/network/interfaces.d/eth1"
	printf 'auto eth2\niface eth2 inet manual\n' >"$V/etc/network/interfaces.d/eth2"
	printf 'auto wlan0\niface wlan0 inet dhcp\n' >"$V/etc/network/interfaces.d/wlan0"
	printf 'allow-auto eth3\niface eth3 inet dhcp\n' >"$V/etc/network/interfaces.d/eth3"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /etc/network/interfaces.d/eth3 "'allow-auto eth3' with 'iface eth3 inet dhcp'" || return 1
	has error /etc/network/interfaces.d/end0 "'allow-hotplug end0' with 'iface end0 inet dhcp'" || return 1
	has warning /etc/network/interfaces.d/eth1 "'auto eth1' with 'iface eth1 inet static'" || return 1
	lacks /etc/network/interfaces.d/eth2 && lacks /etc/network/interfaces.d/wlan0 || return 1
	# ifupdown not installed: its configuration does nothing
	rm "$V/sbin/ifup"
	image "$V" && run_check "$IMG" && rc_is 0 && lacks_check network
}
check "ifupdown: auto/allow-auto/allow-hotplug of a wired interface by dhcp is an error, static a warning (not manual, not wlan0)" t_ifupdown

t_dhcpcd() {
	variant dhcpcd
	ln -s /lib/systemd/system/dhcpcd.service "$V/etc/systemd/system/multi-user.target.wants/"
	printf 'hostname\nclientid\n' >"$V/etc/dhcpcd.conf"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /etc/systemd/system/multi-user.target.wants/dhcpcd.service 'dhcpcd is enabled' || return 1
	printf 'hostname\ndenyinterfaces eth0\n' >"$V/etc/dhcpcd.conf"
	image "$V" && run_check "$IMG" && rc_is 0 && lacks_check network
}
check "dhcpcd enabled is an error unless /etc/dhcpcd.conf denies the wired interface" t_dhcpcd

t_netplan() {
	variant netplan
	mkdir -p "$V/etc/netplan"
	cat >"$V/etc/netplan/50-cloud-init.yaml" <<-'EOF'
	# written by cloud-init
	network:
	    version: 2
	    ethernets:
	        "eth0":
	            dhcp4: true
	            optional: true
	        wlan0:
	            dhcp4: yes
	EOF
	cat >"$V/etc/netplan/60-nm.yaml" <<-'EOF'
	network:
	  renderer: NetworkManager
	  ethernets:
	    wired:
	      match:
	        name: en*
	      addresses: [10.0.0.2/24]
	EOF
	cat >"$V/etc/netplan/70-critical.yaml" <<-'EOF'
	network:
	  ethernets:
	    end0:
	      dhcp4: true
	      critical: true
	  wifis:
	    wlan1:
	      dhcp4: true
	EOF
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /etc/netplan/50-cloud-init.yaml 'netplan configures eth0 \(DHCP\) through systemd-networkd' || return 1
	has warning /etc/netplan/60-nm.yaml 'configures wired \(static addresses\) through NetworkManager' || return 1
	lacks /etc/netplan/70-critical.yaml || return 1
	"$COWROOT" image check "$IMG" --fix "$IMG-fixed" >/dev/null
	run_check "$IMG-fixed" && rc_is 0 && lacks_check network
}
check "netplan: a wired interface by DHCP is an error, static a warning, not with critical: true; --fix masks the renderer" t_netplan

# ---- kernels and initramfs -------------------------------------------------------------------

t_no_kernel() {
	variant nokernel
	rm -rf "$V/boot" "$V/vmlinuz" "$V/initrd.img"
	mkdir "$V/boot"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /boot 'no kernel: none of /vmlinuz' && has note /boot/firmware 'no Raspberry Pi boot files'
}
check "no kernel is an error; no Pi boot tree only a note" t_no_kernel

t_no_initrd() {
	variant noinitrd
	rm -rf "$V/boot/firmware" "$V/initrd.img" "$V/boot/initrd.img-$KV"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error "/boot/vmlinuz-$KV" "no initramfs for this kernel .*CONFIG_NFS_FS=m" || return 1
	# a kernel with NFS root and IP autoconfiguration built in needs none
	printf 'CONFIG_NFS_FS=y\nCONFIG_ROOT_NFS=y\nCONFIG_IP_PNP=y\n' >"$V/boot/config-$KV"
	image "$V" && run_check "$IMG" && rc_is 0 && lacks_check kernel
}
check "no initramfs for a kernel with NFS as a module is an error, none needed with it built in" t_no_initrd

# initrd_variant NAME COMPRESSOR...: a good image whose initramfs is the
# tree at $T/it-NAME (made by the caller) so compressed
initrd_variant() {
	local name=$1
	shift
	variant "initrd-$name"
	make_initrd "$V/boot/initrd.img-$KV" "$T/it-$name" "$@"
}

t_compressions() {
	local c
	rm -rf "$T/it-good"
	cp -a "$T/itree" "$T/it-good"
	for c in "gzip -9 -c" "zstd -q -19 -c" "xz --check=crc32 -c" "lz4 -q -l -c"; do
		# shellcheck disable=SC2086 # the compressor and its options
		initrd_variant good $c
		image "$V" && run_check "$IMG" || return 1
		[ "$RC" = 0 ] && jq -e '.findings == []' "$T/out.json" >/dev/null ||
			{ echo "${c%% *}: exit $RC, $(jq -c .findings "$T/out.json")"; return 1; }
	done
}
check "initramfs early cpio + gzip, zstd, xz, lz4: NFS support found, no findings" t_compressions

t_initrd_no_nfs() {
	rm -rf "$T/it-nonfs"
	cp -a "$T/itree" "$T/it-nonfs"
	rm -r "$T/it-nonfs/scripts/nfs" "$T/it-nonfs/usr/bin/nfsmount" "$T/it-nonfs/usr/lib/modules/$KV/kernel/fs/nfs"
	initrd_variant nonfs gzip -c
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	local f=/boot/initrd.img-$KV
	has error "$f" 'has no scripts/nfs' && has error "$f" 'no nfsmount' && has error "$f" 'no nfs module'
}
check "an initramfs without scripts/nfs, nfsmount, nfs.ko: errors" t_initrd_no_nfs

t_initrd_nfsv3() {
	rm -rf "$T/it-nov3"
	cp -a "$T/itree" "$T/it-nov3"
	rm "$T/it-nov3/usr/lib/modules/$KV/kernel/fs/nfs/nfsv3.ko.xz"
	initrd_variant nov3 xz -c
	image "$V" && run_check "$IMG" && rc_is 1 && has error "/boot/initrd.img-$KV" 'no nfsv3 module'
}
check "an initramfs with nfs.ko but no nfsv3.ko (CONFIG_NFS_V3=m): an error" t_initrd_nfsv3

t_initrd_boot_local() {
	rm -rf "$T/it-local"
	cp -a "$T/itree" "$T/it-local"
	rm "$T/it-local/conf/conf.d/netboot"
	initrd_variant local zstd -q -c
	image "$V" && run_check "$IMG" && rc_is 0 || return 1
	has note "/boot/initrd.img-$KV" 'says BOOT=local \(conf/initramfs.conf\).*boot=nfs' || return 1
	# a later conf.d file that says BOOT=local wins over an earlier BOOT=nfs
	printf 'BOOT=nfs\n' >"$T/it-local/conf/conf.d/a-nfs"
	printf 'export BOOT="local"\n' >"$T/it-local/conf/conf.d/z-local"
	initrd_variant local zstd -q -c
	image "$V" && run_check "$IMG" && rc_is 0 && has note "/boot/initrd.img-$KV" 'says BOOT=local \(conf/conf.d/z-local\)'
}
check "an initramfs that says BOOT=local: a note naming its conf file (cowroot's boot=nfs overrides it)" t_initrd_boot_local

t_initrd_truncated() {
	initrd_variant good zstd -q -c
	local f=$V/boot/initrd.img-$KV
	head -c $(($(stat -c %s "$f") / 2)) "$f" >"$f.cut" && mv "$f.cut" "$f"
	image "$V" && run_check "$IMG" && rc_is 1 && has error "/boot/initrd.img-$KV" 'broken: the zstd stream is truncated' || return 1
	# an uncompressed archive cut inside a member
	initrd_variant good cat
	f=$V/boot/initrd.img-$KV
	head -c 200000 "$f" >"$f.cut" && mv "$f.cut" "$f"
	image "$V" && run_check "$IMG" && rc_is 1 && has error "/boot/initrd.img-$KV" 'truncated inside cpio member'
}
check "a truncated initramfs (zstd, plain cpio): an error saying so" t_initrd_truncated

t_initrd_corrupt() {
	initrd_variant good gzip -c
	local f=$V/boot/initrd.img-$KV
	# garbage over the middle of the gzip stream
	head -c 4096 /dev/urandom | dd of="$f" bs=1 seek=$(($(stat -c %s "$f") / 2)) conv=notrunc status=none
	image "$V" && run_check "$IMG" && rc_is 1 && has error "/boot/initrd.img-$KV" 'broken: ' || return 1
	# not an archive at all
	head -c 10000 /dev/urandom | tr '\0' x >"$f"
	printf 'X' | dd of="$f" bs=1 count=1 conv=notrunc status=none
	image "$V" && run_check "$IMG" && rc_is 1 && has error "/boot/initrd.img-$KV" 'unknown data at byte 0'
}
check "a corrupt initramfs, or random bytes: an error, no crash" t_initrd_corrupt

t_initrd_bomb() {
	variant bomb
	rm -rf "$V/boot/firmware"
	# one member that says it holds 4 GiB, 1.1 GiB of zeros given: 40 KB of zstd
	{
		cat "$EARLY"
		{
			printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' 1 0x81a4 0 0 1 0 0xFFFFFFFF 0 0 0 0 5 0
			printf 'bomb\0\0'
			head -c 1100M /dev/zero
		} | zstd -q -c
	} >"$V/boot/initrd.img-$KV"
	image "$V" || return 1
	local s e
	s=$(date +%s)
	run_check "$IMG" || return 1
	e=$(date +%s)
	[ $((e - s)) -lt 60 ] || { echo "took $((e - s)) s"; return 1; }
	rc_is 0 && has warning "/boot/initrd.img-$KV" 'unpacks to more than 1024 MiB: not read further'
}
check "a decompression bomb is read no further than 1 GiB (a warning)" t_initrd_bomb

# ---- the Pi firmware -------------------------------------------------------------------------

t_pi() {
	variant pi
	rm "$V/boot/firmware/fixup4.dat" "$V/boot/firmware/bootcode.bin" "$V/boot/firmware/start.elf" \
		"$V/boot/firmware/fixup.dat"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /boot/firmware/fixup4.dat 'missing: a Pi 4 stops' && has note /boot/firmware 'no Pi 3 firmware' || return 1
	# no firmware and no device tree at all, config.txt naming a kernel that is not there
	rm "$V/boot/firmware/start4.elf" "$V"/boot/firmware/*.dtb "$V/boot/firmware/vmlinuz"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	has error /boot/firmware 'no Pi firmware' && has error /boot/firmware 'no device tree' &&
		has error /boot/firmware/vmlinuz 'kernel=vmlinuz, which is not there' || return 1
	# Raspberry Pi OS's older layout: the boot partition is /boot
	variant pios
	rm -rf "$V/boot/firmware"
	mkdir -p "$V/boot"
	for f in start4.elf fixup4.dat bcm2711-rpi-4-b.dtb kernel8.img; do echo $f >"$V/boot/$f"; done
	printf 'arm_64bit=1\n' >"$V/boot/config.txt"
	image "$V" && run_check "$IMG" && rc_is 0 && has note /boot 'no Pi 3 firmware' && lacks /boot/firmware
}
check "the Pi boot tree: missing firmware files, device trees, the kernel config.txt names" t_pi

t_pi_initramfs() {
	variant pi-initramfs
	cp "$T/good/boot/firmware/initrd.img" "$V/boot/firmware/initrd.img"
	printf 'garbage' >"$V/boot/firmware/initrd.img"
	image "$V" && run_check "$IMG" && rc_is 1 && has error /boot/firmware/initrd.img 'broken: unknown data' || return 1
	rm "$V/boot/firmware/initrd.img"
	image "$V" && run_check "$IMG" && rc_is 1 && has error /boot/firmware/initrd.img 'loads initramfs initrd.img, which is not there'
}
check "the initramfs config.txt loads is checked too" t_pi_initramfs

# ---- --fix -----------------------------------------------------------------------------------

t_fix() {
	variant fix
	mkdir -p "$V/etc/systemd/network" "$V/etc/network/interfaces.d"
	printf 'proc /proc proc defaults 0 0\nPARTUUID=1234-02 / ext4 defaults 0 1\nLABEL=RASPIFIRM /boot/firmware vfat rw 0 2\n' >"$V/etc/fstab"
	ln -s /lib/systemd/system/systemd-networkd.service "$V/etc/systemd/system/multi-user.target.wants/"
	printf '[Match]\nName=e*\n[Network]\nDHCP=yes\n' >"$V/etc/systemd/network/20-wired.network"
	ln -s /lib/systemd/system/NetworkManager.service "$V/etc/systemd/system/multi-user.target.wants/"
	ln -s /lib/systemd/system/dhcpcd.service "$V/etc/systemd/system/multi-user.target.wants/"
	# an override unit of its own: masking replaces it
	printf '[Service]\nExecStart=/bin/true\n' >"$V/etc/systemd/system/dhcpcd.service"
	printf 'source-directory interfaces.d\nauto lo eth0\niface lo inet loopback\niface eth0 inet dhcp\n' >"$V/etc/network/interfaces"
	printf 'allow-hotplug end0\niface end0 inet dhcp\n' >"$V/etc/network/interfaces.d/end0"
	# what --fix cannot do: an initramfs without NFS
	rm -rf "$T/it-fix"
	cp -a "$T/itree" "$T/it-fix"
	rm "$T/it-fix/scripts/nfs"
	make_initrd "$V/boot/initrd.img-$KV" "$T/it-fix" gzip -c
	rm -rf "$V/boot/firmware"
	image "$V" && run_check "$IMG" && rc_is 1 || return 1
	local src=$IMG before layer
	before=$(jq -c . "$T/out.json")
	layer=$("$COWROOT" image show "$src" --json | jq -c '[.layer, .objects, .bytes, .disk_bytes]')
	jq -e '[.findings[] | select(.fixable)] | length == 7' "$T/out.json" >/dev/null ||
		{ echo "fixable: $(jq -c '[.findings[] | select(.fixable) | .file]' "$T/out.json")"; return 1; }
	"$COWROOT" image check "$src" --fix "$src-fixed" --json >"$T/fix.json" 2>"$T/err"
	local rc=$?
	# the initramfs is not fixed: still an error
	[ $rc = 1 ] || { echo "--fix exit $rc, want 1 (the initramfs stays): $(cat "$T/err")"; return 1; }
	jq -e '.new_image == "'"$src"'-fixed" and ([.findings[] | select(.fixable) | .fixed] | all) and
		([.findings[] | select(.fixable | not) | .fixed] | any | not)' "$T/fix.json" >/dev/null ||
		{ echo "fixed flags: $(jq -c '[.findings[] | [.file, .fixable, .fixed]]' "$T/fix.json")"; return 1; }
	run_check "$src-fixed" && rc_is 1 || return 1
	lacks_check fstab && lacks_check network || return 1
	has error "/boot/initrd.img-$KV" 'has no scripts/nfs' || return 1
	jq -e '.after.errors == 1' "$T/fix.json" >/dev/null || { echo "after: $(jq -c .after "$T/fix.json")"; return 1; }
	# the image it was made from is unchanged, and no client is left
	run_check "$src" || return 1
	[ "$(jq -c . "$T/out.json")" = "$before" ] || { echo "the source image's report changed"; return 1; }
	[ "$("$COWROOT" image show "$src" --json | jq -c '[.layer, .objects, .bytes, .disk_bytes]')" = "$layer" ] ||
		{ echo "the source image's layer changed: $layer"; return 1; }
	[ "$("$COWROOT" client list --json)" = "[]" ] || { echo "clients left: $("$COWROOT" client list)"; return 1; }
	"$COWROOT" image show "$src-fixed" --json | jq -e '.built_on == "'"$src"'"' >/dev/null ||
		{ echo "not built on $src: $("$COWROOT" image show "$src-fixed")"; return 1; }
	echo "$src-fixed" >"$T/fixed"
}
check "--fix writes a new image without the fixable findings; the source stays; no client left" t_fix

t_fix_content() {
	local FIXED
	FIXED=$(cat "$T/fixed" 2>/dev/null) || { echo "no fixed image"; return 1; }
	[ -c /dev/fuse ] && command -v fusermount3 >/dev/null || { echo "SKIP (no FUSE): content not compared"; return 0; }
	mkdir -p "$T/mnt"
	"$COWROOT" mount --image "$FIXED" "$T/mnt" || return 1
	local m=$T/mnt out=0
	grep -qx '#PARTUUID=1234-02 / ext4 defaults 0 1' "$m/etc/fstab" &&
		grep -q '^# cowroot image check --fix:' "$m/etc/fstab" &&
		grep -qx 'proc /proc proc defaults 0 0' "$m/etc/fstab" || { cat "$m/etc/fstab"; out=1; }
	grep -qx 'auto lo' "$m/etc/network/interfaces" && grep -qx '#auto lo eth0' "$m/etc/network/interfaces" &&
		grep -qx '#allow-hotplug end0' "$m/etc/network/interfaces.d/end0" || { cat "$m/etc/network/interfaces"*; out=1; }
	local u
	for u in systemd-networkd.service systemd-networkd.socket NetworkManager.service dhcpcd.service; do
		[ "$(readlink "$m/etc/systemd/system/$u")" = /dev/null ] || { echo "$u not masked"; out=1; }
	done
	fusermount3 -u "$T/mnt"
	return $out
}
check "--fix: fstab lines commented with a marker, auto lines edited, units masked to /dev/null" t_fix_content

t_fix_fails() {
	# a directory where the unit to mask goes: the fix cannot be written
	variant fixfails
	mkdir -p "$V/etc/systemd/network" "$V/etc/systemd/system/systemd-networkd.service"
	ln -s /lib/systemd/system/systemd-networkd.service "$V/etc/systemd/system/multi-user.target.wants/"
	printf '[Match]\nName=eth0\n[Network]\nDHCP=yes\n' >"$V/etc/systemd/network/20-wired.network"
	printf 'PARTUUID=1234-02 / ext4 defaults 0 1\n' >"$V/etc/fstab"
	image "$V" || return 1
	local rc
	"$COWROOT" image check "$IMG" --fix "$IMG-fixed" >"$T/human" 2>"$T/err"
	rc=$?
	[ $rc = 1 ] && grep -q "cannot write the fixes .*Is a directory.*'$IMG-fixed' is not written" "$T/err" ||
		{ echo "exit $rc: $(cat "$T/err")"; return 1; }
	"$COWROOT" image show "$IMG-fixed" >/dev/null 2>&1 && { echo "$IMG-fixed was written"; return 1; }
	[ "$("$COWROOT" client list --json)" = "[]" ] || { echo "clients left: $("$COWROOT" client list)"; return 1; }
	return 0
}
check "--fix that cannot write a fix: exit 1, no new image, the temporary client removed" t_fix_fails

t_fix_nothing() {
	"$COWROOT" image check img1 --fix img1-fixed >"$T/human" 2>&1 || { cat "$T/human"; return 1; }
	grep -q "nothing --fix can change" "$T/human" || { cat "$T/human"; return 1; }
	"$COWROOT" image show img1-fixed >/dev/null 2>&1 && { echo "img1-fixed was written"; return 1; }
	return 0
}
check "--fix with nothing to fix writes no image" t_fix_nothing

finish
