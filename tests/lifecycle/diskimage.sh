#!/bin/bash
# lifecycle-diskimage: `cowroot image import NAME disk.img[.xz]`.
#
# The test builds a Pi-style disk image itself: a tree with owners, modes
# (setuid), xattrs, a file capability, an ACL, hardlinks, a sparse file,
# symlinks short and long, a device node, a fifo, nanosecond times and a
# 255-byte name goes into an ext4 partition (mkfs.ext4 -d); a boot tree
# into a FAT partition (mkfs.vfat, mcopy); sfdisk puts both in an MBR disk
# and in a GPT one.
# The disks, the MBR one's xz, and the bare ext4 file system are imported; each
# must equal the directory import of the same tree with the boot files at
# /boot/firmware as a vfat mount shows them (full dumps through FUSE
# mounts: types, modes, owners, sizes, links, mtimes, xattrs, contents,
# allocated blocks, symlink targets, device numbers, hardlink groups).  A
# truncated disk, a truncated xz, a file that is no disk and a disk without
# ext4 are refused, and the store is left as it was.
#
# Env: COWROOT  path of the built cowroot CLI
set -u
export LC_ALL=C TZ=UTC

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_DISK_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (owners, device nodes, FUSE mounts)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	for c in fusermount3 unshare mkfs.ext4 mkfs.vfat mcopy sfdisk xz setfattr getfattr setcap setfacl; do
		command -v $c >/dev/null || skip "$c is missing (apt-get install fuse3 util-linux e2fsprogs dosfstools mtools fdisk xz-utils attr libcap2-bin acl)"
	done
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to an executable ('${COWROOT:-}')" >&2
		exit 1
	fi
	export COW_DISK_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --mount --propagation private "$0" "$@"
	skip "cannot create a private mount namespace with unshare"
fi

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

T=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-disk.XXXXXX") || exit 1
S=$T/store
OUT=$T/out
trap 'for m in "$T"/m-*; do fusermount3 -u "$m" 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
cow() { "$COWROOT" --store "$S" "$@" >"$OUT" 2>&1; }

# ---- the trees
R=$T/root
mkdir -p "$R/etc" "$R/usr/bin" "$R/var/lib/sparse" "$R/dev" "$R/boot/firmware" "$R/home/pi/deep/er/still"
echo "cowroot-disk" >"$R/etc/hostname"
head -c 200000 /dev/urandom >"$R/usr/bin/tool"
chmod 4755 "$R/usr/bin/tool"
setcap cap_net_raw+ep "$R/usr/bin/tool"
echo data >"$R/home/pi/notes"
chown -R 1000:1000 "$R/home/pi"
chown 1234:5678 "$R/etc/hostname"
setfattr -n user.origin -v golden "$R/etc/hostname"
setfattr -n trusted.cowroot -v 0x00ff00 "$R/home/pi/notes"
setfacl -m u:1000:rwx "$R/var/lib"
setfacl -d -m g:100:rx "$R/var/lib"
echo linked >"$R/etc/one"
ln "$R/etc/one" "$R/etc/two"
ln "$R/etc/one" "$R/usr/three"
truncate -s 10M "$R/var/lib/sparse/file"
printf 'middle' | dd of="$R/var/lib/sparse/file" bs=1 seek=5000000 conv=notrunc status=none
: >"$R/etc/empty"
ln -s hostname "$R/etc/short"
ln -s "/$(printf 'x%.0s' $(seq 200))/target" "$R/etc/long"
mknod "$R/dev/null" c 1 3
mknod "$R/dev/sda" b 8 0
mkfifo "$R/var/lib/fifo"
long=$(printf 'n%.0s' $(seq 255))
echo long >"$R/home/$long"
echo "hidden by the boot partition" >"$R/boot/firmware/under-the-mount"
# whole seconds: mkfs.ext4 -d keeps no nanoseconds (set for one file below)
find "$R" -exec touch -h -d '2021-03-04 05:06:07' {} +
touch -d '1999-12-31 23:59:59' "$R/etc/hostname"

B=$T/boot
mkdir -p "$B/overlays"
echo "arm_64bit=1" >"$B/config.txt"
echo "console=serial0 root=/dev/nfs" >"$B/cmdline.txt"
head -c 300000 /dev/urandom >"$B/kernel8.img"
echo dtbo >"$B/overlays/vc4.dtbo"
# FAT keeps even seconds of local time (UTC here)
find "$B" -exec touch -d '2024-01-02 03:04:06' {} +

# ---- the disk: MBR, FAT boot partition at 1 MiB, ext4 root after it
P1=$T/p1.fat
P2=$T/p2.ext4
truncate -s 32M "$P1"
mkfs.vfat -n BOOT "$P1" >/dev/null || bad "mkfs.vfat"
mcopy -s -m -i "$P1" "$B"/* ::/ || bad "mcopy into the boot partition"
truncate -s 96M "$P2"
mkfs.ext4 -q -F -b 4096 -I 256 -O ^has_journal -d "$R" "$P2" || bad "mkfs.ext4 -d"
# nanoseconds (and the seconds' epoch bits) in the inode's extra field
debugfs -w -R "sif /etc/hostname mtime_extra $((123456789 << 2))" "$P2" 2>/dev/null || bad "debugfs sif"
touch -d '1999-12-31 23:59:59.123456789' "$R/etc/hostname"
disk() { # FILE LABEL FAT-TYPE LINUX-TYPE: both partitions in a new disk
	truncate -s 130M "$1"
	printf 'label: %s\nstart=2048, size=65536, type=%s\nstart=67584, size=196608, type=%s\n' "$2" "$3" "$4" |
		sfdisk -q "$1" || bad "sfdisk ($2)"
	dd if="$P1" of="$1" bs=512 seek=2048 conv=notrunc,sparse status=none
	dd if="$P2" of="$1" bs=512 seek=67584 conv=notrunc,sparse status=none
}
D=$T/disk.img
disk "$D" dos c 83
xz -T1 -1 -k "$D" || bad "xz"
# the same partitions in a GPT disk (an EFI system partition and a Linux one)
G=$T/gpt.img
disk "$G" gpt uefi linux

# ---- what the disk must equal: the tree with the boot files at
# /boot/firmware as a vfat mount shows them
F=$T/ref
cp -a "$R" "$F"
rm -f "$F/boot/firmware/under-the-mount"
cp -a "$B"/. "$F/boot/firmware/"
chown -R 0:0 "$F/boot/firmware"
find "$F/boot/firmware" -mindepth 1 -type d -exec chmod 0755 {} +
find "$F/boot/firmware" -type f -exec chmod 0644 {} +
find "$F/boot/firmware" -mindepth 1 -exec touch -d '2024-01-02 03:04:06' {} +
touch -h -d '2021-03-04 05:06:07' "$F/boot/firmware"

check "init" cow init
check "import the reference tree" cow image import ref "$F"
# shellcheck source=tests/lifecycle/treedump.sh
. "$(dirname "$0")/treedump.sh"
mounted_dump() { # IMAGE: dump of a client on it
	local c=c-$1
	cow client add "$c" --image "$1" || return 1
	mkdir -p "$T/m-$1"
	cow mount "$c" "$T/m-$1" || return 1
	dump "$T/m-$1" | grep -v -e '^\. ' -e '^\./lost+found' -e '^# file: lost+found'
	fusermount3 -u "$T/m-$1"
}
mounted_dump ref >"$T/ref.dump" || bad "dump of the reference image"
grep -q 'security.capability' "$T/ref.dump" || bad "the reference dump shows no file capability (not vacuous)"
grep -q 'system.posix_acl_access' "$T/ref.dump" || bad "the reference dump shows no ACL (not vacuous)"

for kind in disk xz gpt bare; do
	case $kind in
	disk) src=$D ;;
	gpt) src=$G ;;
	xz) src=$D.xz ;;
	bare) src=$P2 ;;
	esac
	check "import the $kind image" cow image import "img-$kind" "$src" --json
	[ "$kind" = bare ] || grep -q '"boot_partition": 1' "$OUT" || bad "$kind: the summary names the boot partition: $(cat "$OUT")"
	[ "$kind" = xz ] && { grep -q '"compressed": true' "$OUT" || bad "xz: the summary says it was compressed"; }
	[ "$kind" = gpt ] && { grep -q '"table": "gpt"' "$OUT" || bad "gpt: the summary names the table: $(cat "$OUT")"; }
	[ "$kind" = disk ] && { grep -q '"hidden_under_boot": 1' "$OUT" || bad "disk: the summary counts the hidden entry"; }
	mounted_dump "img-$kind" >"$T/$kind.dump" || bad "dump of the $kind image"
	if [ "$kind" = bare ]; then
		# no boot partition: the tree as the ext4 file system holds it
		cow image import "tree-$kind" "$R" && mounted_dump "tree-$kind" >"$T/tree.dump"
		if cmp -s "$T/tree.dump" "$T/$kind.dump"; then ok "bare ext4: equals the directory import of its tree"; else
			diff "$T/tree.dump" "$T/$kind.dump" | head -20 | sed 's/^/#   /'
			bad "bare ext4: differs from the directory import of its tree"
		fi
	elif cmp -s "$T/ref.dump" "$T/$kind.dump"; then
		ok "$kind: equals the directory import of the same tree"
	else
		diff "$T/ref.dump" "$T/$kind.dump" | head -20 | sed 's/^/#   /'
		bad "$kind: differs from the directory import of the same tree"
	fi
done

# ---- refused, and the store unchanged
cow image list
cp "$OUT" "$T/images.before"
(cd "$S" && find . -path ./cowroot.db-shm -prune -o -print | sort) >"$T/files.before"
refused() { # WHAT FILE
	if cow image import bad "$2"; then
		bad "$1: imported"
	else
		ok "$1: refused ($(head -c 160 "$OUT"))"
	fi
	cow image list
	cmp -s "$OUT" "$T/images.before" || bad "$1: the image list changed"
	(cd "$S" && find . -path ./cowroot.db-shm -prune -o -print | sort) >"$T/files.after"
	cmp -s "$T/files.before" "$T/files.after" || { diff "$T/files.before" "$T/files.after" | head | sed 's/^/#   /'; bad "$1: files left in the store"; }
}
head -c 50M "$D" >"$T/truncated.img"
refused "a truncated disk" "$T/truncated.img"
head -c $(($(stat -c %s "$D.xz") / 2)) "$D.xz" >"$T/truncated.img.xz"
refused "a truncated xz" "$T/truncated.img.xz"
head -c 1M /dev/urandom >"$T/noise.img"
refused "a file that is no disk" "$T/noise.img"
truncate -s 40M "$T/fat-only.img"
printf 'label: dos\nstart=2048, size=65536, type=c\n' | sfdisk -q "$T/fat-only.img"
dd if="$P1" of="$T/fat-only.img" bs=512 seek=2048 conv=notrunc status=none
refused "a disk without an ext4 partition" "$T/fat-only.img"
# a damaged root: its inode table overwritten
cp --sparse=always "$D" "$T/damaged.img"
dd if=/dev/urandom of="$T/damaged.img" bs=4096 seek=$((67584 * 512 / 4096 + 40)) count=200 conv=notrunc status=none
cow image import damaged "$T/damaged.img"
rc=$?
case $rc in
0) ok "a damaged root partition: imported what reads as valid"; cow image rm damaged ;;
1) ok "a damaged root partition: refused ($(head -c 160 "$OUT"))" ;;
*) bad "a damaged root partition: import died (exit $rc): $(head -c 300 "$OUT")" ;;
esac
check "fsck is clean" cow fsck

# what an import that died leaves: its boot partition's copy, which fsck
# reports and --repair and gc remove; one whose import still runs (it holds
# the directory's lock) is left alone
t_leftover() {
	mkdir -p "$S/tmp-boot-dead01/overlays" "$S/tmp-boot-dead02" "$S/tmp-boot-live01" || return 1
	echo x >"$S/tmp-boot-dead01/overlays/a.dtbo"
	flock -o "$S/tmp-boot-live01" sleep 60 & # the lock is flock's own, not sleep's
	local holder=$!
	sleep 0.3
	cow fsck && { echo "fsck passed with leftovers"; return 1; }
	grep -q "leftover tmp-boot-dead01 of an interrupted disk import" "$OUT" || { cat "$OUT"; return 1; }
	grep -q "2 leftover import dir(s)" "$OUT" || { cat "$OUT"; return 1; }
	cow fsck --repair
	[ ! -e "$S/tmp-boot-dead01" ] && [ ! -e "$S/tmp-boot-dead02" ] || { echo "not removed"; return 1; }
	[ -d "$S/tmp-boot-live01" ] || { echo "the running import's directory was removed"; return 1; }
	mkdir "$S/tmp-boot-dead03"
	cow gc || { cat "$OUT"; return 1; }
	[ ! -e "$S/tmp-boot-dead03" ] && [ -d "$S/tmp-boot-live01" ] || { echo "gc: wrong directories removed"; return 1; }
	pkill -P "$holder" sleep
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	cow gc || return 1
	[ ! -e "$S/tmp-boot-live01" ] || { echo "gc left it once its import was gone"; return 1; }
	cow fsck || { cat "$OUT"; return 1; }
}
check "a dead import's temporary directory: fsck reports it, --repair and gc remove it, a running one's is kept" t_leftover

finish
