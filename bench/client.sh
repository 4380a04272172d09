#!/bin/bash
# client.sh MNT -- what a booted client does with its root, run on whatever
# is mounted at MNT (a Debian tree): the second workload of the local
# suite, next to workload.sh's package-manager one.  Prints one
# "METRIC NAME SECONDS" line per step (or "METRIC NAME FAIL(rc=N)") and
# "INFO ..." lines.  It changes MNT: give every run a fresh layer / upper /
# copy.  Run as root (chroot, cache drops).
#
# Steps (each after a sync, untimed; the cold ones after a cache drop):
#   exec_chroot      binaries started in a chroot of MNT: EXEC_N times
#                    true, ls and id, and EXEC_N/10 times perl -e 1
#                    (the dynamic loader, its cache and the libraries)
#   dpkg_query       dpkg-query -W in the chroot, 5 times (the status
#                    file and the info directory)
#   grep_cold        grep -r through /etc and /usr/share after a drop
#   log_append_N     LOG_N lines appended to a log file, each by open,
#                    one write and close (a service logging a line at a time)
#   doc_copy         cp -a of /usr/share/doc into /var/tmp
#   doc_remove       rm -rf of that copy
#   rename_churn_N   RENAME_N atomic rewrites of 20 small files in /etc
#                    (write NAME.tmp, rename over NAME)
#   unlink_image_N   UNLINK_N files of the image removed (whiteouts on a
#                    copy-on-write stack)
#   tar_cold         tar of /usr after a drop, to /dev/null through wc
# Steps whose programs the tree lacks (the smoke base has no binaries)
# are left out and named in an INFO line.
#
# Environment: FSOPS (bench/fsops.c, required), EXEC_N (100), LOG_N
# (20000), RENAME_N (5000), UNLINK_N (500), DROP (1: drop the page cache
# before cold steps).
set -u
export LC_ALL=C
MNT=$(realpath "${1:?usage: client.sh MOUNTPOINT}")
: "${FSOPS:?FSOPS must name the fsops helper}"
EXEC_N=${EXEC_N:-100} LOG_N=${LOG_N:-20000} RENAME_N=${RENAME_N:-5000} UNLINK_N=${UNLINK_N:-500} DROP=${DROP:-1}
T=$(mktemp -d /tmp/cowroot-client.XXXXXX)
trap 'rm -rf "$T"' EXIT

. "$(dirname "$0")/steps.sh"

has() { [ -x "$MNT/$1" ]; }
left_out=
execs() {
	local i
	for ((i = 0; i < EXEC_N; i++)); do
		chroot "$MNT" /usr/bin/true && chroot "$MNT" /usr/bin/ls / >/dev/null && chroot "$MNT" /usr/bin/id >/dev/null ||
			return 1
		if ((i % 10 == 0)) && has usr/bin/perl; then
			chroot "$MNT" /usr/bin/perl -e 1 || return 1
		fi
	done
}
dpkgq() {
	local i
	for i in 1 2 3 4 5; do
		chroot "$MNT" /usr/bin/dpkg-query -W >"$T/pkgs" || return 1
	done
}
grepr() {
	# grep exits 1 when nothing matched: only an error (2) fails the step
	grep -r -I -l -e 'Debian' "$MNT/etc" "$MNT/usr/share" >"$T/grep"
	[ $? -le 1 ]
}
tarc() { tar -C "$MNT" --one-file-system -cf - usr | wc -c >"$T/tarbytes"; }

# the image's files to remove: regular files of /usr/share outside doc/
(cd "$MNT" && find usr/share -xdev -type f ! -path 'usr/share/doc/*' | sort | awk 'NR%3==1' | head -"$UNLINK_N" |
	sed "s|^|$MNT/|") >"$T/unlink"
echo "INFO unlink_files=$(wc -l <"$T/unlink") doc_entries=$(find "$MNT/usr/share/doc" -xdev 2>/dev/null | wc -l)"

if has usr/bin/true && has usr/bin/ls && has usr/bin/id; then
	drop
	run exec_chroot execs
else
	left_out="$left_out exec_chroot"
fi
if has usr/bin/dpkg-query; then
	run dpkg_query dpkgq
else
	left_out="$left_out dpkg_query"
fi
drop
run grep_cold grepr
mkdir -p "$MNT/var/log" "$MNT/var/tmp"
run log_append_$LOG_N "$FSOPS" loglines "$MNT/var/log/bench.log" "$LOG_N"
run doc_copy cp -a "$MNT/usr/share/doc" "$MNT/var/tmp/bench-doc"
run doc_remove rm -rf "$MNT/var/tmp/bench-doc"
run rename_churn_$RENAME_N "$FSOPS" renames "$MNT/etc/bench-conf" "$RENAME_N"
run unlink_image_$UNLINK_N "$FSOPS" unlink "$T/unlink"
drop
run tar_cold tarc
echo "INFO log_bytes=$(stat -c %s "$MNT/var/log/bench.log" 2>/dev/null) tar_bytes=$(cat "$T/tarbytes" 2>/dev/null)"
[ -z "$left_out" ] || echo "INFO left out (programs missing from the tree):$left_out"
