#!/bin/bash
# workload.sh MNT -- the fixed copy-on-write root file system workload, run on
# whatever is mounted at MNT (a Debian tree).  Prints one "METRIC NAME SECONDS"
# line per step (or "METRIC NAME FAIL(rc=N)") and "INFO ..." lines.  It changes
# MNT: give every run a fresh layer / upper / copy.  Run as root: it drops the
# page cache before each cold step.
#
# Environment:
#   FSOPS      the fsops helper (bench/fsops.c), required
#   PKG_DIR    directory of *.tar payloads to unpack and install (dpkg-like), required
#   NFILES     small files to create and unlink (10000)
#   APPEND_N   base files to append to (200)
#   META_N     base files per metadata change, chmod / chown / setxattr (1000)
#   SEQ_MB     size of the sequential write and read (512)
#   DROP       1 drops the page cache before cold steps (default), 0 does not
set -u
export LC_ALL=C
MNT=$(realpath "${1:?usage: workload.sh MOUNTPOINT}")
: "${FSOPS:?FSOPS must name the fsops helper}" "${PKG_DIR:?PKG_DIR must name the payload directory}"
NFILES=${NFILES:-10000} APPEND_N=${APPEND_N:-200} META_N=${META_N:-1000} SEQ_MB=${SEQ_MB:-512} DROP=${DROP:-1}
T=$(mktemp -d /tmp/cowroot-workload.XXXXXX)
trap 'rm -rf "$T"' EXIT

. "$(dirname "$0")/steps.sh"

walk() { find "$MNT" -xdev >"$T/walk"; }
statwalk() { find "$MNT" -xdev -printf '%i %s %m %U %G %T@\n' >"$T/stat"; }
readall() { tar -C "$MNT" --one-file-system -cf - . | wc -c >"$T/bytes"; }
pkg() {
	mkdir "$MNT/tmp/bench-pkg" || return 1
	for p in "$PKG_DIR"/*.tar; do
		tar -xf "$p" -C "$MNT/tmp/bench-pkg" || return 1
	done
	"$FSOPS" install "$MNT/tmp/bench-pkg" "$MNT" >"$T/moved" && rm -rf "$MNT/tmp/bench-pkg"
}
seqw() { dd if=/dev/zero of="$MNT/tmp/bench-big" bs=1M count="$SEQ_MB" conv=fsync status=none; }
seqr() { dd if="$MNT/tmp/bench-big" of=/dev/null bs=1M status=none; }

drop
run walk_cold walk
run walk_warm walk
drop
run statwalk_cold statwalk
run statwalk_warm statwalk
drop
run readall_cold readall
run readall_warm readall
echo "INFO entries=$(wc -l <"$T/walk") stat_lines=$(wc -l <"$T/stat") tar_bytes=$(cat "$T/bytes")"

# file lists from the base content, the same on every stack (untimed)
(cd "$MNT" && find usr/lib -xdev -type f | sort | awk 'NR%5==1' | head -"$APPEND_N" | sed "s|^|$MNT/|") >"$T/app"
(cd "$MNT" && find . -xdev -type f ! -path './usr/lib/*' ! -path './tmp/*' | sort | sed "s|^\.|$MNT|") >"$T/meta"
for i in 0 1 2; do awk -v k=$i 'NR%3==k' "$T/meta" | head -"$META_N" >"$T/meta$i"; done
echo "INFO append_files=$(wc -l <"$T/app") meta_files=$(cat "$T"/meta? | wc -l)"

drop
run create_${NFILES}_4k "$FSOPS" mkfiles "$MNT/tmp/bench-small" "$NFILES" 4096
NOSYNC=1 run unlink_${NFILES} "$FSOPS" rmfiles "$MNT/tmp/bench-small" "$NFILES"
run copyup_append_$APPEND_N "$FSOPS" append1 "$T/app"
run chmod_$META_N "$FSOPS" chmod "$T/meta0"
run chown_$META_N "$FSOPS" chown "$T/meta1"
run setxattr_$META_N "$FSOPS" setxattr "$T/meta2"
run pkg_install pkg
echo "INFO pkg_$(cat "$T/moved" 2>/dev/null)"
run seqwrite_${SEQ_MB}M_fsync seqw
drop
run seqread_${SEQ_MB}M_cold seqr
run seqread_${SEQ_MB}M_warm seqr
rm -f "$MNT/tmp/bench-big"
