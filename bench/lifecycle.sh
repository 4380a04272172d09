#!/bin/bash
# lifecycle.sh: what the store's lifecycle costs (bench/run.sh --lifecycle
# runs it).  Each rep, on a fresh store:
#   import      `cowroot image import` of the image tree
#   rss_K       ganesha's RSS (`cowroot serve`) with K clients served, each
#               having mounted once (NFS MOUNT and a GETATTR of the root,
#               bench/bootstorm with one `s /` step) and then idle; K in
#               BENCH_LC_IDLE; a fresh server for each K
#   reset       `cowroot client reset` of a client whose layer holds
#               CHANGES new 4 KiB files (written through a FUSE mount)
#   reset_live  the same while the client is served (the CLI asks the
#               server, which resets the view in place and drops ganesha's
#               cache of the export)
#   snapshot    `cowroot client snapshot` of a layer with CHANGES new files
#   gc          `cowroot gc` of the dead layers the resets left
#   export/load `cowroot image export` of the image to a bundle (its size
#               too) and `cowroot image load` of it as a new image
# Times are of the whole CLI command (process start, store open, work).
#
# Environment (set by run.sh): BUILD_DIR, BENCH_WORK (its lifecycle/
# subdir is used), BENCH_BASE, BENCH_REPS (3), BENCH_SMOKE,
# BENCH_LC_CHANGES (10000), BENCH_LC_IDLE ("0 1 10 100").
# Writes BENCH_WORK/lifecycle/results.tsv (rep, metric, value).  Exit 0 if
# every step worked, 77 if the machine cannot run it, 1 otherwise.
set -euo pipefail
export LC_ALL=C
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build}
base=${BENCH_BASE:?}
work=${BENCH_WORK:?}/lifecycle
reps=${BENCH_REPS:-3}
changes=${BENCH_LC_CHANGES:-10000}
idle=${BENCH_LC_IDLE:-0 1 10 100}
export COWROOT=$build/tools/cowroot
bootstorm=$build/bench/bootstorm
fsops=$build/bench/fsops
fsal=$build/ganesha-fsal/libfsalcowroot.so
# shellcheck source=bench/nfs-lib.sh
. "$src/bench/nfs-lib.sh"

ns_check ganesha.nfsd rpcbind ip unshare fusermount3
[ -c /dev/fuse ] || { echo "no /dev/fuse"; exit 77; }
ns_enter "$@"

max=1
for k in $idle; do [ "$k" -le "$max" ] || max=$k; done
ns_start "$((max + 1))"
mkdir -p "$work/mnt"
printf 's /\n' >"$work/mount-only.txt"

store=
cow() { "$COWROOT" --store "$store" "$@"; }
ms() { echo $((($2 - $1) / 1000)); } # T0 T1 (EPOCHREALTIME without the dot): milliseconds
timed() {                             # REP METRIC CMD...: run CMD, record its time in ms
	local rep=$1 m=$2 t0 t1
	shift 2
	t0=${EPOCHREALTIME/./}
	"$@" >>"$work/logs/$m.log" 2>&1 || { echo "bench: $m failed (logs/$m.log)" >&2; return 1; }
	t1=${EPOCHREALTIME/./}
	echo -e "$rep\t$m\t$(ms "$t0" "$t1")" >>"$results"
}

# changes CLIENT: CHANGES new 4 KiB files in CLIENT's layer, through FUSE
make_changes() {
	local mnt=$work/mnt/$1 pid
	mkdir -p "$mnt"
	"$COWROOT" --store "$store" mount "$1" "$mnt" -f 2>>"$work/logs/mount.log" &
	pid=$!
	for _ in $(seq 200); do
		mountpoint -q "$mnt" && break
		sleep 0.05
	done
	"$fsops" mkfiles "$mnt/tmp/lc" "$changes" 4096 || { fusermount3 -u "$mnt"; return 1; }
	fusermount3 -u "$mnt"
	wait "$pid"
}

# served_rss REP K: serve K idle clients, each mounted once; their RSS
served_rss() {
	local rep=$1 k=$2 i specs=()
	for i in $(seq 1 "$k"); do
		specs+=("$(client_addr "$i"):/clients/idle$i")
	done
	serve_cowroot "$store" "$fsal" "$work/logs/serve-rss-$k" || return 1
	if [ "$k" -gt 0 ]; then
		"$bootstorm" "$work/mount-only.txt" "${specs[@]}" >"$work/logs/rss-$k.txt" 2>&1 ||
			{ echo "bench: mounting $k idle clients failed" >&2; stop_server; return 1; }
	fi
	sleep 1
	echo -e "$rep\trss_${k}_kib\t$(rss_kib "$ganesha_pid")" >>"$results"
	stop_server
}

failed=0
lifecycle_rep() {
	local rep=$1 k have=0 i
	store=$work/store-$rep
	rm -rf "$store" "$work/bundle"
	cow init >/dev/null
	timed "$rep" import_ms cow image import base "$base" || return 1
	echo -e "$rep\tstore_kib\t$(du -sk "$store" | cut -f1)" >>"$results"

	for k in $idle; do
		for i in $(seq $((have + 1)) "$k"); do
			cow client add "idle$i" --image base --ip "$(client_addr "$i")" >/dev/null
		done
		have=$k
		served_rss "$rep" "$k" || return 1
	done
	for i in $(seq 1 "$have"); do cow client rm "idle$i" >/dev/null; done

	cow client add lc --image base --ip "$(client_addr 1)" >/dev/null
	make_changes lc || return 1
	timed "$rep" reset_ms cow client reset lc || return 1
	make_changes lc || return 1
	serve_cowroot "$store" "$fsal" "$work/logs/serve-reset" || return 1
	"$bootstorm" "$work/mount-only.txt" "$(client_addr 1):/clients/lc" >"$work/logs/reset-live.txt" 2>&1 ||
		{ echo "bench: mounting lc failed" >&2; stop_server; return 1; }
	timed "$rep" reset_live_ms cow client reset lc || { stop_server; return 1; }
	stop_server
	make_changes lc || return 1
	timed "$rep" snapshot_ms cow client snapshot lc "snap$rep" || return 1
	timed "$rep" gc_ms cow gc || return 1

	timed "$rep" export_ms cow image export base "$work/bundle" || return 1
	echo -e "$rep\tbundle_kib\t$(du -k --apparent-size "$work/bundle" | cut -f1)" >>"$results"
	timed "$rep" load_ms cow image load "$work/bundle" loaded || return 1
	rm -rf "$store" "$work/bundle"
}

for rep in $(seq 1 "$reps"); do
	printf '# lifecycle rep %d/%d ' "$rep" "$reps"
	t0=$SECONDS
	if lifecycle_rep "$rep"; then
		echo "$((SECONDS - t0))s"
	else
		echo "FAILED"
		echo -e "$rep\tfailed\t1" >>"$results"
		failed=1
	fi
done
exit $failed
