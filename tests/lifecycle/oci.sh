#!/bin/bash
# lifecycle-oci: `cowroot image import NAME oci:DIR[:TAG]` and
# `docker-archive:FILE[:NAME:TAG]`.
#
# The test builds its OCI image layout itself (GNU tar in pax format,
# gzip, zstd, sha256sum, JSON by hand; no registry): a base layer with
# owners, modes (setuid), xattrs, a file capability, hardlinks, a sparse
# file, symlinks, device nodes, a fifo, nanosecond times and a 255-byte
# name, and a layer over it that replaces, removes (.wh. whiteouts),
# empties a directory (.wh..wh..opq), changes modes, turns a symlink into
# a directory and a directory into a symlink, and links anew.  The import
# must equal the directory import of the tree the layers make (full dumps
# through FUSE mounts).  Images built on the same base share its layers
# (image show), the next version of an image stores only its new layers,
# and removing images keeps what others stand on (fsck clean after gc).
# skopeo writes the image as a docker archive, which imports the same.
# Damaged and hostile layouts (truncated or altered blobs, a wrong diff
# id, '..' and symlinks in tar paths, a digest that is a path, an index
# past its bound, several images and no tag, a foreign layer type) are
# refused with the store unchanged.
#
# Env: COWROOT  path of the built cowroot CLI
set -u
export LC_ALL=C TZ=UTC

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_OCI_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (owners, device nodes, FUSE mounts)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	for c in fusermount3 unshare tar gzip zstd sha256sum jq setfattr getfattr setfacl setcap skopeo; do
		command -v $c >/dev/null || skip "$c is missing (apt-get install fuse3 util-linux tar gzip zstd coreutils jq attr acl libcap2-bin skopeo)"
	done
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to an executable ('${COWROOT:-}')" >&2
		exit 1
	fi
	export COW_OCI_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --mount --propagation private "$0" "$@"
	skip "cannot create a private mount namespace with unshare"
fi

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

T=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-oci.XXXXXX") || exit 1
S=$T/store
OUT=$T/out
trap 'for m in "$T"/m-*; do fusermount3 -u "$m" 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
cow() { "$COWROOT" --store "$S" "$@" >"$OUT" 2>&1; }
cows() { "$COWROOT" --store "$1" "${@:2}" >"$OUT" 2>&1; }

# ---- the base tree
R=$T/base
mkdir -p "$R/etc" "$R/usr/bin" "$R/var/lib/sparse" "$R/dev" "$R/home/pi/deep/er/still" "$R/opt/app/lib"
echo "cowroot-oci" >"$R/etc/hostname"
head -c 200000 /dev/urandom >"$R/usr/bin/tool"
chmod 4755 "$R/usr/bin/tool"
setcap cap_net_raw+ep "$R/usr/bin/tool"
echo data >"$R/home/pi/notes"
echo deep >"$R/home/pi/deep/er/still/file"
chown -R 1000:1000 "$R/home/pi"
chown 1234:5678 "$R/etc/hostname"
setfattr -n user.origin -v golden "$R/etc/hostname"
setfattr -n trusted.cowroot -v 0x00ff00 "$R/home/pi/notes"
setfacl -m u:1000:rwx "$R/var/lib"
setfacl -d -m g:100:rx "$R/var/lib"
# GNU tar --acls names an ACL's users as this host does: the image's
# passwd and group know them by those names (or numbers, if this host
# has none)
printf 'root:x:0:0::/root:/bin/sh\n%s:x:1000:1000::/home/pi:/bin/sh\n' "$(getent passwd 1000 | cut -d: -f1 | grep . || echo pi)" >"$R/etc/passwd"
printf 'root:x:0:\n%s:x:100:\n' "$(getent group 100 | cut -d: -f1 | grep . || echo users)" >"$R/etc/group"
echo linked >"$R/etc/one"
ln "$R/etc/one" "$R/etc/two"
ln "$R/etc/one" "$R/usr/three"
truncate -s 10M "$R/var/lib/sparse/file"
printf 'middle' | dd of="$R/var/lib/sparse/file" bs=1 seek=5000000 conv=notrunc status=none
truncate -s 8M "$R/var/lib/big"
printf 'end' | dd of="$R/var/lib/big" bs=1 seek=7000000 conv=notrunc status=none
echo other >"$R/var/lib/sparse/other"
: >"$R/etc/empty"
ln -s hostname "$R/etc/short"
ln -s "/$(printf 'x%.0s' $(seq 200))/target" "$R/etc/long"
echo lib >"$R/opt/app/lib/x.so"
mknod "$R/dev/null" c 1 3
mknod "$R/dev/sda" b 8 0
mkfifo "$R/var/lib/fifo"
long=$(printf 'n%.0s' $(seq 255))
echo long >"$R/home/$long"
find "$R" -exec touch -h -d '2021-03-04 05:06:07' {} +
touch -d '1999-12-31 23:59:59.123456789' "$R/etc/hostname"

# ---- the tree after the second layer (F), and that layer's tree (L2)
F=$T/full
L2=$T/l2
cp -a "$R" "$F"
mkdir -p "$L2"
rm "$F/etc/one" && echo replaced >"$F/etc/one" # breaks the hardlink
rm "$F/etc/empty" && : >"$L2/.wh-etc-empty"
rm -rf "$F/home/pi/deep"
rm -rf "$F/var/lib/sparse"/* && echo fresh >"$F/var/lib/sparse/fresh"
echo new >"$F/usr/bin/new" && chown 2:3 "$F/usr/bin/new" && chmod 0750 "$F/usr/bin/new"
setfattr -n user.new -v yes "$F/usr/bin/new"
chmod 0600 "$F/etc/hostname"
rm "$F/etc/short" && mkdir "$F/etc/short" && echo inside >"$F/etc/short/inside"
rm -rf "$F/opt/app" && ln -s /usr "$F/opt/app"
ln "$F/usr/bin/tool" "$F/usr/bin/tool2"
chmod 0750 "$F/etc"
# L2: what changed, the whiteouts, and the parents of both
rm "$L2/.wh-etc-empty"
mkdir -p "$L2/etc" "$L2/home/pi" "$L2/var/lib/sparse" "$L2/usr/bin" "$L2/opt"
cp -a "$F/etc/one" "$F/etc/hostname" "$F/etc/short" "$L2/etc/"
: >"$L2/etc/.wh.empty"
: >"$L2/home/pi/.wh.deep"
: >"$L2/var/lib/sparse/.wh..wh..opq"
cp -a "$F/var/lib/sparse/fresh" "$L2/var/lib/sparse/"
cp -a "$F/usr/bin/new" "$F/usr/bin/tool" "$F/usr/bin/tool2" "$L2/usr/bin/"
cp -a "$F/opt/app" "$L2/opt/"
# the layer's directories: the full tree's owners, modes, xattrs and ACLs,
# one new time
(cd "$L2" && find . -type d) | while read -r d; do
	chown --reference="$F/$d" "$L2/$d"
	chmod --reference="$F/$d" "$L2/$d"
	(cd "$F" && getfattr -h -d -m - -e hex "$d") | (cd "$L2" && setfattr -h --restore=-)
	touch -d '2022-06-07 08:09:10.5' "$F/$d" "$L2/$d"
done
find "$L2" -name '.wh.*' -exec touch -d '2022-06-07 08:09:10.5' {} +

layer_tar() { # DIR OUT: the tree as a layer's tar
	tar --format=pax --acls --xattrs --xattrs-include='*' --numeric-owner --sparse --sort=name -C "$1" -cf "$2" .
}
layer_tar "$R" "$T/l1.tar" || bad "tar of the base layer"
layer_tar "$L2" "$T/l2.tar" || bad "tar of the second layer"
# more layers: for an image on the same base, and two over the second one
for n in 3 4 5; do
	mkdir -p "$T/l$n/etc"
	echo "layer $n" >"$T/l$n/etc/layer$n"
	touch -d '2023-01-01' "$T/l$n/etc/layer$n"
	chmod --reference="$F/etc" "$T/l$n/etc"
	touch -d '2022-06-07 08:09:10.5' "$T/l$n/etc"
	layer_tar "$T/l$n" "$T/l$n.tar" || bad "tar of layer $n"
done

# ---- OCI layouts, written by hand
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
blob() { # LAYOUT FILE: the file as a blob; prints its descriptor's digest and size
	local d
	d=$(sha "$2")
	mkdir -p "$1/blobs/sha256"
	cp "$2" "$1/blobs/sha256/$d"
	echo "sha256:$d $(size "$2")"
}
# layer LAYOUT TAR gz|zstd|tar: prints "mediaType digest size diffid"
layer() {
	local f=$T/blob.tmp t
	case $3 in
	gz) gzip -n -c "$2" >"$f" && t=application/vnd.oci.image.layer.v1.tar+gzip ;;
	zstd) zstd -q -c "$2" >"$f" && t=application/vnd.oci.image.layer.v1.tar+zstd ;;
	tar) cp "$2" "$f" && t=application/vnd.oci.image.layer.v1.tar ;;
	esac
	echo "$t $(blob "$1" "$f") sha256:$(sha "$2")"
}
# image LAYOUT ARCH LAYER-LINE...: writes config and manifest, prints the manifest's "digest size"
image() {
	local L=$1 arch=$2 ids="" ls="" m t d s id
	shift 2
	for m in "$@"; do
		read -r t d s id <<<"$m"
		ids="$ids${ids:+,}\"$id\""
		ls="$ls${ls:+,}{\"mediaType\":\"$t\",\"digest\":\"$d\",\"size\":$s}"
	done
	printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
		"$arch" "$ids" >"$T/config.json"
	read -r d s < <(blob "$L" "$T/config.json")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
		"$d" "$s" "$ls" >"$T/manifest.json"
	blob "$L" "$T/manifest.json"
}
# index LAYOUT "TAG digest size [mediaType]"...: index.json and oci-layout
index() {
	local L=$1 e="" tag d s t
	shift
	for m in "$@"; do
		read -r tag d s t <<<"$m"
		e="$e${e:+,}{\"mediaType\":\"${t:-application/vnd.oci.image.manifest.v1+json}\",\"digest\":\"$d\",\"size\":$s,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$tag\"}}"
	done
	printf '{"schemaVersion":2,"manifests":[%s]}' "$e" >"$L/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
}

O=$T/layout
l1=$(layer "$O" "$T/l1.tar" gz)
l2=$(layer "$O" "$T/l2.tar" tar)
l3=$(layer "$O" "$T/l3.tar" zstd)
l4=$(layer "$O" "$T/l4.tar" gz)
l5=$(layer "$O" "$T/l5.tar" gz)
v1=$(image "$O" arm64 "$l1" "$l2")
app=$(image "$O" arm64 "$l1" "$l3")
v3=$(image "$O" arm64 "$l1" "$l2" "$l4" "$l5")
index "$O" "v1 $v1" "app $app" "v3 $v3"

# ---- dumps
# shellcheck source=tests/lifecycle/treedump.sh
. "$(dirname "$0")/treedump.sh"
# mount STORE CLIENT MOUNTPOINT: a daemon in the foreground ($daemon), until mounted
mount_fg() {
	mkdir -p "$3"
	"$COWROOT" --store "$1" mount "$2" "$3" -f >"$T/mount.log" 2>&1 &
	daemon=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$3" && return 0
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.05
	done
	cat "$T/mount.log"
	return 1
}
# unmount MOUNTPOINT: and wait for the daemon to write back and exit
unmount() { fusermount3 -u "$1" && wait "$daemon"; }
mounted_dump() { # [STORE] IMAGE: dump of a client on it
	local st=$S
	[ $# = 2 ] && st=$1 && shift
	local c=c-$1
	cows "$st" client add "$c" --image "$1" || return 1
	mount_fg "$st" "$c" "$T/m-$1" || return 1
	dump "$T/m-$1" | grep -v -e '^\. ' -e '^# file: \.$'
	unmount "$T/m-$1" || return 1
	cows "$st" client rm "$c"
}
same() { # NAME A B: the dumps are equal
	if cmp -s "$2" "$3"; then ok "$1"; else
		bad "$1"
		diff "$2" "$3" | head -20 | sed 's/^/#   /'
	fi
}
chain() { # IMAGE: its layers' ids, top first
	"$COWROOT" --store "$S" image show "$1" --json | jq -r '[.layers[].id] | join(" ")'
}
state() { # what a refused import must leave as it was
	"$COWROOT" --store "$S" image list --json
	ls -a "$S/data" | sort
}

check "init" cow init
check "import the tree the two layers make" cow image import tree "$F"
mounted_dump tree >"$T/tree.dump" || bad "dump of the tree import"
grep -q 'security.capability' "$T/tree.dump" || bad "the reference dump shows no file capability (not vacuous)"
grep -q 'system.posix_acl_default' "$T/tree.dump" || bad "the reference dump shows no ACL (not vacuous)"
grep -q 'replaced' "$T/l2.tar" || bad "the second layer holds the replaced file (not vacuous)"

# ---- one image, two layers
if cow image import v1 "oci:$O:v1" --json; then
	ok "import oci:DIR:v1"
	j=$(cat "$OUT")
	[ "$(jq -r .oci.layers <<<"$j")/$(jq -r .oci.shared <<<"$j")" = 2/0 ] || bad "v1: 2 layers, none shared: $j"
	[ "$(jq -r .oci.architecture <<<"$j")" = arm64 ] || bad "v1: architecture arm64: $j"
	[ "$(jq -r .oci.manifest <<<"$j")" = "${v1%% *}" ] || bad "v1: its manifest's digest: $j"
	[ "$(jq -r .oci.removed <<<"$j")" = 4 ] || bad "v1: the whiteouts and the opaque directory removed names: $j"
else
	bad "import oci:DIR:v1: $(cat "$OUT")"
fi
mounted_dump v1 >"$T/v1.dump" || bad "dump of v1"
same "v1 equals the directory import of the tree its layers make" "$T/tree.dump" "$T/v1.dump"
check "fsck after the import" cow fsck

# ACLs as GNU tar --acls writes them without xattrs (SCHILY.acl.*)
tar --format=pax --acls --numeric-owner --sparse --sort=name -C "$R" -cf "$T/l1acl.tar" . || bad "tar --acls"
! strings "$T/l1acl.tar" | grep -q 'SCHILY.xattr' && strings "$T/l1acl.tar" | grep -q 'SCHILY.acl.default' ||
	bad "the --acls layer holds ACLs, not as xattrs (not vacuous)"
A=$T/acl-layout
index "$A" "acl $(image "$A" amd64 "$(layer "$A" "$T/l1acl.tar" gz)")"
acls() { awk '/^# file:/ {f = $3} /posix_acl/ {print f, $0}' "$1"; }
if cow image import acl "oci:$A" && cow image import base "$R"; then
	mounted_dump acl >"$T/acl.dump" && mounted_dump base >"$T/base.dump"
	acls "$T/base.dump" >"$T/base.acls"
	acls "$T/acl.dump" >"$T/acl.acls"
	[ -s "$T/base.acls" ] && same "ACLs of a tar's SCHILY.acl records" "$T/base.acls" "$T/acl.acls"
else
	bad "import of the --acls layer: $(cat "$OUT")"
fi

# ---- sharing
cow image import app "oci:$O:app" --json && [ "$(jq -r .oci.shared "$OUT")" = 1 ] &&
	ok "an image on the same base shares its layer" || bad "app shares the base layer: $(cat "$OUT")"
[ "$(chain app | cut -d' ' -f2)" = "$(chain v1 | cut -d' ' -f2)" ] &&
	ok "image show: both images stand on one layer" || bad "one base layer: app $(chain app), v1 $(chain v1)"
cow image import v3 "oci:$O:v3" --json && [ "$(jq -r '.oci.shared, .oci.layers' "$OUT" | tr '\n' ' ')" = "2 4 " ] &&
	ok "the next version stores only its new layers" || bad "v3 shares two layers: $(cat "$OUT")"
[ "$(chain v3 | cut -d' ' -f3-)" = "$(chain v1)" ] || bad "v3 stands on v1's layers: v3 $(chain v3), v1 $(chain v1)"
mounted_dump v3 >"$T/v3.dump" || bad "dump of v3"
grep -q 'etc/layer5' "$T/v3.dump" && grep -q 'etc/layer4' "$T/v3.dump" && ! grep -q 'etc/layer3' "$T/v3.dump" &&
	ok "v3 holds its own layers, not app's" || bad "v3's files"
cow image import v1b "oci:$O:v1" --json && [ "$(jq -r '.oci.shared' "$OUT")" = 2 ] &&
	ok "the same image again: every layer shared" || bad "v1 again: $(cat "$OUT")"
mounted_dump v1b >"$T/v1b.dump" && same "the image imported again is the same" "$T/v1.dump" "$T/v1b.dump"

# ---- removal keeps what others stand on
cow image rm v1 && bad "rm v1 while v1b stands on it" || ok "rm of an image another is built on: refused"
check "rm v1b" cow image rm v1b
check "rm v1: its layer stays beneath v3's" cow image rm v1
check "gc" cow gc
mounted_dump v3 >"$T/v3b.dump" && same "v3 after v1 went" "$T/v3.dump" "$T/v3b.dump"
check "fsck clean" cow fsck
cow image import v1c "oci:$O:v1" --json && [ "$(jq -r '.oci.shared' "$OUT")" = 2 ] &&
	ok "v1 again finds its layers beneath v3" || bad "v1c: $(cat "$OUT")"
check "rm v3" cow image rm v3
check "gc after rm v3" cow gc
check "fsck clean after rm v3" cow fsck
mounted_dump v1c >"$T/v1c.dump" && same "v1 after v3 went" "$T/v1.dump" "$T/v1c.dump"
mounted_dump app >/dev/null || bad "app after the removals"

# ---- the lifecycle of an OCI image: flatten, export, load
check "flatten v1c" cow image flatten v1c v1flat
mounted_dump v1flat >"$T/v1flat.dump" && same "its flattening is the same tree" "$T/v1.dump" "$T/v1flat.dump"
check "export v1c" cow image export v1c "$T/v1c.crb"
check "load it" cow image load "$T/v1c.crb" v1load
mounted_dump v1load >"$T/v1load.dump" && same "its bundle loads as the same tree" "$T/v1.dump" "$T/v1load.dump"

# ---- a client on an OCI image
check "client on an OCI image" cow client add pi --image v1c
if mount_fg "$S" pi "$T/m-pi" >"$OUT"; then
	echo mine >"$T/m-pi/etc/mine" && rm "$T/m-pi/etc/two" && [ "$(cat "$T/m-pi/usr/three")" = linked ] &&
		ok "the client writes over the image's layers" || bad "writes in the client"
	unmount "$T/m-pi" || bad "unmount pi"
	cow client diff pi && grep -q 'etc/mine' "$OUT" && grep -q 'etc/two' "$OUT" &&
		ok "client diff shows them" || bad "client diff: $(cat "$OUT")"
else
	bad "mount pi: $(cat "$OUT")"
fi

# ---- a docker archive (skopeo writes it from the layout)
D=$T/v3.docker.tar
if skopeo --insecure-policy copy -q "oci:$O:v3" "docker-archive:$D:cow/v3:latest" >"$OUT" 2>&1; then
	S2=$T/store2
	cows "$S2" init
	if cows "$S2" image import d3 "docker-archive:$D" --json; then
		ok "import docker-archive:FILE"
		[ "$(jq -r '.oci.layers, .oci.shared' "$OUT" | tr '\n' ' ')" = "4 0 " ] || bad "d3: 4 layers read: $(cat "$OUT")"
	else
		bad "import docker-archive:FILE: $(cat "$OUT")"
	fi
	mounted_dump "$S2" d3 >"$T/d3.dump" && same "the docker archive equals the layout's image" "$T/v3.dump" "$T/d3.dump"
	cows "$S2" image import d3b "docker-archive:$D:cow/v3:latest" &&
		ok "docker-archive:FILE:NAME:TAG" || bad "by its tag: $(cat "$OUT")"
	cows "$S2" image import d3c "docker-archive:$D:cow/none:1" && bad "an unknown tag imported" ||
		{ grep -q "no image 'cow/none:1'" "$OUT" && ok "an unknown tag: refused" || bad "unknown tag: $(cat "$OUT")"; }
	# as docker save wrote it before 25.0: ID/layer.tar (here links to the
	# layers, as skopeo writes them), in a tar.gz
	mkdir "$T/old" && tar -xf "$D" -C "$T/old" || bad "unpack the docker archive"
	layers=$(jq -r '.[0].Layers[]' "$T/old/manifest.json" | while read -r f; do
		for l in "$T"/old/*/layer.tar; do
			[ "$(readlink "$l")" = "../$f" ] && echo "${l#"$T"/old/}"
		done
	done | jq -R . | jq -s -c .)
	jq -c ".[0].Layers = $layers" "$T/old/manifest.json" >"$T/m.json" && mv "$T/m.json" "$T/old/manifest.json"
	grep -q '/layer.tar' "$T/old/manifest.json" || bad "the old layout names ID/layer.tar (not vacuous)"
	tar -czf "$T/old.tar.gz" -C "$T/old" .
	cows "$S2" image import d3old "docker-archive:$T/old.tar.gz" --json &&
		[ "$(jq -r '.oci.layers, .oci.shared' "$OUT" | tr '\n' ' ')" = "4 4 " ] &&
		ok "a gzip'd docker archive naming ID/layer.tar" || bad "the old docker archive: $(cat "$OUT")"
	S3=$T/store4
	cows "$S3" init
	cows "$S3" image import d3old "docker-archive:$T/old.tar.gz" || bad "the old docker archive, read: $(cat "$OUT")"
	mounted_dump "$S3" d3old >"$T/d3old.dump" && same "it equals the layout's image" "$T/v3.dump" "$T/d3old.dump"
	cow image import d3 "docker-archive:$D" --json && [ "$(jq -r '.oci.shared' "$OUT")" = 2 ] &&
		ok "a docker archive shares layers with an OCI layout's image" || bad "d3 in the first store: $(cat "$OUT")"
else
	bad "skopeo copy to a docker archive: $(tail -3 "$OUT")"
fi

# ---- several platforms under one tag
M=$T/multi
cp -a "$O" "$M"
amd=$(image "$M" amd64 "$l1")
arm=$(image "$M" arm64 "$l1" "$l3")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"os":"linux","architecture":"amd64"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"os":"linux","architecture":"arm64"}}]}' \
	${amd} ${arm} >"$T/idx.json"
read -r d s < <(blob "$M" "$T/idx.json")
index "$M" "multi $d $s application/vnd.oci.image.index.v1+json"
cow image import mp "oci:$M:multi" && bad "a multi-platform image without --arch" ||
	{ grep -q 'linux/amd64, linux/arm64' "$OUT" && ok "several platforms and no --arch: refused, naming them" || bad "no --arch: $(cat "$OUT")"; }
cow image import mp "oci:$M:multi" --arch arm64 --json && [ "$(jq -r '.oci.architecture, .oci.layers' "$OUT" | tr '\n' ' ')" = "arm64 2 " ] &&
	ok "--arch arm64 picks its manifest" || bad "--arch arm64: $(cat "$OUT")"

# ---- a real Debian root as an OCI image (the cached debootstrap minbase
# tree the realworld and netboot tests share; built when missing)
cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
# shellcheck source=tests/minbase.sh
. "$(dirname "$0")/../minbase.sh"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
minbase_ensure "$cache" "${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
have_minbase=$?
flock -u 9
exec 9>&-
if [ $have_minbase = 0 ]; then
	layer_tar "$cache/minbase" "$T/debian.tar" || bad "tar of the minbase tree"
	DL=$T/debian-layout
	index "$DL" "bookworm $(image "$DL" amd64 "$(layer "$DL" "$T/debian.tar" gz)")"
	rm -f "$T/debian.tar"
	check "import a Debian minbase root as an OCI image" cow image import debian "oci:$DL:bookworm"
	check "and as a directory" cow image import debian-dir "$cache/minbase"
	mounted_dump debian >"$T/debian.dump" && mounted_dump debian-dir >"$T/debian-dir.dump" &&
		same "the OCI import of a Debian root equals its directory import" "$T/debian-dir.dump" "$T/debian.dump"
	[ "$(wc -l <"$T/debian.dump")" -gt 10000 ] || bad "the Debian dump is a real root (not vacuous)"
	check "a client on it" cow client add deb --image debian
	cow client shell deb --chroot -- dpkg-query -W -f '${Package} ${Status}\n' base-files &&
		grep -q 'base-files install ok installed' "$OUT" && ok "dpkg runs in it" || bad "dpkg in the client: $(cat "$OUT")"
	check "rm the client" cow client rm deb
	check "rm the Debian images" cow image rm debian
	cow image rm debian-dir
	rm -rf "$DL"
else
	echo "# no Debian root here (skipped that part): see above"
fi

# ---- refused, the store unchanged: a store of its own, that has none of
# the layers (an image whose layers a store holds is not read again)
S=$T/store3
check "a store for the refusals" cow init
check "an image in it" cow image import tree "$F"
state >"$T/state.before"
refused() { # NAME LAYOUT-SRC PATTERN: the import fails saying PATTERN, nothing changed
	if cow image import bad "$2"; then
		bad "$1: imported"
		cow image rm bad
		cow gc
		return
	fi
	grep -q -- "$3" "$OUT" || { bad "$1: the message: $(cat "$OUT")"; return; }
	state >"$T/state.after"
	cmp -s "$T/state.before" "$T/state.after" || { bad "$1: the store changed"; return; }
	ok "$1: refused ($(head -c 160 "$OUT" | tr '\n' ' '))"
}
fresh() { rm -rf "$T/x" && cp -a "$O" "$T/x"; }
blobfile() { echo "$T/x/blobs/sha256/$(cut -d' ' -f2 <<<"$1" | sed 's/^sha256://')"; }

fresh
truncate -s -100 "$(blobfile "$l1")"
refused "a truncated layer" "oci:$T/x:v1" "the manifest says"
fresh
f=$(blobfile "$l2")
printf 'X' | dd of="$f" bs=1 seek=5000 conv=notrunc status=none
refused "an altered layer" "oci:$T/x:v1" "does not match its digest"
fresh
f=$(blobfile "$l1")
head -c $(($(size "$f") / 2)) "$f" >"$T/cut.gz" # a gzip stream cut short, as a blob of its own
l1cut="application/vnd.oci.image.layer.v1.tar+gzip $(blob "$T/x" "$T/cut.gz") $(cut -d' ' -f4 <<<"$l1")"
index "$T/x" "v1 $(image "$T/x" arm64 "$l1cut" "$l2")"
refused "a layer cut short, its digest right" "oci:$T/x:v1" "cannot import"
fresh
# its first hex digit changed (to 1 where it was 0: the id changes with the
# files' times, so it may well start with 0)
good_id=$(cut -d' ' -f4 <<<"$l2")
bad_id=${good_id#sha256:}
bad_id=sha256:$([ "${bad_id:0:1}" = 0 ] && echo 1 || echo 0)${bad_id:1}
index "$T/x" "v1 $(image "$T/x" arm64 "$l1" "$(cut -d' ' -f1-3 <<<"$l2") $bad_id")"
refused "a wrong diff id" "oci:$T/x:v1" "does not match its diff id"

mkdir -p "$T/evil/d" "$T/evil2/link"
echo evil >"$T/evil/d/f"
tar --format=pax -C "$T/evil/d" -P --transform 's,^f$,../../outside,' -cf "$T/dotdot.tar" f
fresh
index "$T/x" "v1 $(image "$T/x" arm64 "$(layer "$T/x" "$T/dotdot.tar" tar)")"
refused "'..' in a tar path" "oci:$T/x:v1" "'..' in a path"
[ ! -e "$T/outside" ] && [ ! -e "$S/../outside" ] || bad "'..': a file outside"
ln -s /tmp "$T/evil/link"
tar --format=pax -C "$T/evil" -cf "$T/sym.tar" link
echo pwned >"$T/evil2/link/pwned"
tar --format=pax -C "$T/evil2" -cf "$T/sym2.tar" link/pwned
tar -A -f "$T/sym.tar" "$T/sym2.tar"
fresh
index "$T/x" "v1 $(image "$T/x" arm64 "$(layer "$T/x" "$T/sym.tar" tar)")"
refused "a tar path through a symlink" "oci:$T/x:v1" "not a directory"
[ ! -e /tmp/pwned ] || bad "a file written through the symlink"

fresh
sed -i "s,${v1%% *},sha256:../../../etc/passwd," "$T/x/index.json"
refused "a digest that is a path" "oci:$T/x:v1" "no sha256 digest"
fresh
head -c 5000000 /dev/zero | tr '\0' ' ' >>"$T/x/index.json"
refused "an index past 4 MiB" "oci:$T/x:v1" "larger than 4 MiB"
refused "several images, no tag" "oci:$O" "holds 3 images"
refused "an unknown tag" "oci:$O:nope" "no image 'nope'"
fresh
rm "$T/x/oci-layout"
refused "no oci-layout" "oci:$T/x:v1" "no OCI image layout"
fresh
m=${v1%% *}
printf ' ' >>"$T/x/blobs/sha256/${m#sha256:}"
refused "a manifest that does not match the index" "oci:$T/x:v1" "does not match its digest"
fresh
index "$T/x" "v1 $(image "$T/x" arm64 "$(sed 's,^[^ ]*,application/vnd.oci.image.layer.nondistributable.v1.tar+gzip,' <<<"$l1")")"
refused "a foreign layer type" "oci:$T/x:v1" "not a tar layer"
printf 'not a tar' >"$T/junk.tar"
refused "a docker archive that is no tar" "docker-archive:$T/junk.tar" "cannot import"
# more layers than a view stacks
for n in $(seq 1 61); do
	mkdir -p "$T/many/$n"
	echo "$n" >"$T/many/$n/f$n"
	layer_tar "$T/many/$n" "$T/many/$n.tar"
done
fresh
many=()
for n in $(seq 1 61); do many+=("$(layer "$T/x" "$T/many/$n.tar" tar)"); done
index "$T/x" "many $(image "$T/x" amd64 "${many[@]}")"
refused "61 layers" "oci:$T/x:many" "cowroot stacks 1 to 60"

# interrupted, and killed: a big layer
fresh
mkdir -p "$T/big" && head -c 200M /dev/urandom >"$T/big/blob"
layer_tar "$T/big" "$T/big.tar"
index "$T/x" "big $(image "$T/x" amd64 "$(layer "$T/x" "$T/big.tar" tar)")"
rm -f "$T/big.tar"
n0=$(ls -a "$S/data" | wc -l)
started() { # PID: until the import has its new layer (or has ended)
	for _ in $(seq 1 2000); do
		[ "$(ls -a "$S/data" | wc -l)" -gt "$n0" ] && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.005
	done
}
"$COWROOT" --store "$S" image import big "oci:$T/x:big" >"$OUT" 2>&1 &
pid=$!
started "$pid"
kill -INT "$pid"
wait "$pid" && bad "SIGINT: the import finished" || {
	grep -q "interrupted; the store is unchanged" "$OUT" && state >"$T/state.after" &&
		cmp -s "$T/state.before" "$T/state.after" && ok "SIGINT: the import stops, the store unchanged" ||
		bad "SIGINT: $(cat "$OUT")"
}
"$COWROOT" --store "$S" image import big "oci:$T/x:big" >"$OUT" 2>&1 &
pid=$!
started "$pid"
kill -KILL "$pid"
{ wait "$pid"; } 2>/dev/null
cow image show big && bad "kill -9: an image" || ok "kill -9: no image"
check "kill -9: gc" cow gc
state >"$T/state.after"
cmp -s "$T/state.before" "$T/state.after" && ok "kill -9: after gc the store is as it was" || bad "kill -9: the store: $(diff "$T/state.before" "$T/state.after" | head -5 | tr '\n' ' ')"
check "fsck clean after the refusals" cow fsck

finish
