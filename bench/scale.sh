#!/bin/bash
# scale.sh: one `cowroot serve` with hundreds of clients (bench/run.sh
# --scale runs it).  For each count N of BENCH_SCALE_CLIENTS, on one store
# holding N clients (client I on its own address: 127.0.0.11 .. 127.0.0.250
# for the first 240, then 127.0.1.1 ...), a fresh server is started and
# measured:
#   start     `cowroot serve --foreground` until it prints "serving store",
#             and until an NFSv3 client (nfs-ls) mounts the LAST client's
#             export
#   RSS       VmRSS and VmHWM of ganesha.nfsd, and VmRSS of the cowroot
#             serve process: idle after start, and after every client has
#             mounted its export and walked it (bench/bootstorm, all N at
#             once: READDIRPLUS of a few directories of the image, reads of
#             small files of /etc), and after a second walk of other
#             directories 5 s later (new objects: does ganesha's cache keep
#             to its size, or does every object add to it?)
#   reload    `cowroot client add` of one more client until its export
#             answers (and until serve says it reloaded), then `cowroot
#             client rm` of it until its export is gone; meanwhile client 1
#             is "booted": a loop mounting its export and reading its files
#             (bootstorm, one step at a time) that must see no error
# Runs in private network, mount and pid namespaces (bench/nfs-lib.sh);
# the addresses are added on lo.  The server runs with
# --allow-unprivileged-ports (PrivilegedPort = false, nothing else
# changes): the simulated clients all run on this machine, and libnfs binds
# each connection to a reserved port (512-1023) on every address, so beyond
# about 470 connections at once it falls back to ports ganesha would refuse.
#
# Environment (set by run.sh): BUILD_DIR, BENCH_WORK (its scale/ subdir is
# used), BENCH_BASE (the image tree), BENCH_REPS (1), BENCH_SCALE_CLIENTS
# ("10 100 500", increasing),
# BENCH_SCALE_MDCACHE: unset, the MDCACHE block `cowroot serve` writes;
#   "default", none (ganesha's defaults); any other text, an MDCACHE block
#   with that text as its body (e.g. "Entries_HWMark = 20000;"): for
#   comparing sizings (ganesha reads MDCACHE only at start).  The row's
#   label in results.tsv is BENCH_SCALE_LABEL (serve, default or custom).
# Writes BENCH_WORK/scale/results.tsv (config, rep, clients, metric, value)
# and logs/.  Exit 0 if every run worked and the booted client saw no
# error, 77 if the machine cannot run it (the reason on stdout), 1
# otherwise.
set -euo pipefail
export LC_ALL=C
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build}
base=${BENCH_BASE:?}
work=${BENCH_WORK:?}/scale
reps=${BENCH_REPS:-1}
counts=${BENCH_SCALE_CLIENTS:-10 100 500}
export COWROOT=$build/tools/cowroot
bootstorm=$build/bench/bootstorm
fsal=$build/ganesha-fsal/libfsalcowroot.so
# shellcheck source=bench/nfs-lib.sh
. "$src/bench/nfs-lib.sh"

ns_check ganesha.nfsd rpcbind ip unshare nfs-ls
ns_enter "$@"

max=0
for n in $counts; do
	[[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -gt "$max" ] ||
		{ echo "bench: BENCH_SCALE_CLIENTS must be increasing counts" >&2; exit 1; }
	max=$n
done
[ "$max" -lt 60000 ] || { echo "bench: at most 59999 clients" >&2; exit 1; }
ns_start 0

# scale_addr I: the address of client I (1, 2, ...): 127.0.0.(10+I) up to
# I = 240 (as client_addr in nfs-lib.sh), then 127.0.1.1 .. 127.0.1.250,
# 127.0.2.1 ... (never .0 or .255)
scale_addr() {
	if [ "$1" -le 240 ]; then
		echo "127.0.0.$((10 + $1))"
	else
		echo "127.0.$((1 + ($1 - 241) / 250)).$((1 + ($1 - 241) % 250))"
	fi
}
# one more than the largest count: the client added and removed
for i in $(seq 1 $((max + 1))); do echo "addr add $(scale_addr "$i")/32 dev lo"; done | ip -batch -

# the configuration variant: a stand-in ganesha.nfsd first in PATH that
# rewrites the MDCACHE block of the configuration before starting ganesha
label=${BENCH_SCALE_LABEL:-serve}
if [ -n "${BENCH_SCALE_MDCACHE+set}" ]; then
	[ -n "${BENCH_SCALE_LABEL:-}" ] || { [ "$BENCH_SCALE_MDCACHE" = default ] && label=default || label=custom; }
	mkdir -p "$work/bin"
	cat >"$work/bin/ganesha.nfsd" <<EOF
#!/bin/bash
# written by bench/scale.sh: the MDCACHE block of the configuration (-f)
# commented out, line for line (serve maps errors by line), and
# BENCH_SCALE_MDCACHE's block appended unless it says "default"
conf= prev=
for a in "\$@"; do [ "\$prev" = -f ] && conf=\$a; prev=\$a; done
# (no configuration: a call such as serve's "ganesha.nfsd -v")
if [ -n "\$conf" ]; then
	awk -v body="\$BENCH_SCALE_MDCACHE" '
	/^MDCACHE *\{/ { in_block = 1 }
	in_block { if (/^\}/) in_block = 0; print "# " \$0; next }
	{ print }
	END { if (body != "default") printf "\nMDCACHE {\n\t%s\n}\n", body }
' "\$conf" >"\$conf.bench" && mv "\$conf.bench" "\$conf"
fi
exec $(command -v ganesha.nfsd) "\$@"
EOF
	chmod +x "$work/bin/ganesha.nfsd"
	export PATH=$work/bin:$PATH BENCH_SCALE_MDCACHE
fi

# the walk every client does after mounting, and the booted client's reads
walk=$work/walk.txt
loop=$work/loop.txt
{
	echo "d /"
	for d in etc usr/bin usr/sbin usr/lib/x86_64-linux-gnu etc/conf.d usr/lib/x; do
		[ ! -d "$base/$d" ] || echo "d /$d"
	done
	# awk, not head: under pipefail an early exit of head can kill sort (SIGPIPE)
	find "$base/etc" -maxdepth 2 -type f -size -65k | sort | awk 'NR <= 20' | sed "s|^$base|r |"
} >"$walk"
for _ in $(seq 20); do grep '^r ' "$walk" || echo "s /"; done >"$loop"
# a second walk, of other directories: new entries in ganesha's cache (is
# its size bounded, or does each new object add to it?)
walk2=$work/walk2.txt
for d in var/lib/dpkg/info usr/lib/x86_64-linux-gnu/gconv usr/share/locale usr/share/doc usr/share/zoneinfo usr/share/doc/p; do
	[ ! -d "$base/$d" ] || echo "d /$d"
done >"$walk2"

store=$work/store
cow() { "$COWROOT" --store "$store" "$@"; }
cow init >/dev/null
cow image import base "$base" >/dev/null

now_us() { echo "${EPOCHREALTIME/./}"; }
secs() { printf '%d.%03d' $((($2 - $1) / 1000000)) $((($2 - $1) % 1000000 / 1000)); } # T0 T1 (µs)
rec() { echo -e "$label\t$rep\t$n\t$1\t$2" >>"$results"; }

# answers I NAME: does NAME's export mount from client I's address (NFSv3)?
answers() { nfs-ls "nfs://$(scale_addr "$1")/clients/$2?version=3" >/dev/null 2>&1; }
gone() { ! answers "$@"; }
# until_ok SECONDS CMD...: until CMD succeeds, polling every 20 ms
until_ok() {
	local end=$(($(now_us) + $1 * 1000000))
	until "${@:2}"; do
		[ "$(now_us)" -lt "$end" ] || return 1
		sleep 0.02
	done
}
reloads() { grep -c "^reloaded" "$log.out" 2>/dev/null || true; } # how often serve said it reloaded
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }                     # R0: more than R0 times?

# the booted client: client 1 mounting and reading its export in a loop
# until $work/stop exists; its errors go to logs/booted-N-REP.err
booted_pid=
booted_start() {
	rm -f "$work/stop"
	(
		k=0 errs=0
		while [ ! -e "$work/stop" ]; do
			k=$((k + 1))
			"$bootstorm" -q 1 "$loop" "$(scale_addr 1):/clients/c1" >"$log.booted.txt" 2>>"$log.booted.err" || true
			e=$(awk '$1 == "METRIC" && $2 == "errors" { print $3 }' "$log.booted.txt")
			errs=$((errs + ${e:-1}))
			sleep 0.05
		done
		echo "$k $errs" >"$log.booted.sum"
	) &
	booted_pid=$!
}
booted_stop() {
	touch "$work/stop"
	wait "$booted_pid" || true
	read -r k errs <"$log.booted.sum"
	rec booted_runs "$k"
	rec booted_errors "$errs"
	[ "$errs" = 0 ] || { echo "bench: the booted client saw $errs errors during reloads:" >&2; head -3 "$log.booted.err" >&2; }
	[ "$errs" = 0 ]
}

failed=0
run_one() { # N REP
	local n=$1 rep=$2 i specs=() t0 t1 t2 r0 extra=$(($1 + 1))
	log=$work/logs/serve-$n-$rep
	sync
	t0=$(now_us)
	"$COWROOT" --store "$store" serve --foreground --fsal "$fsal" --no-grace --server 127.0.0.1 \
		--allow-unprivileged-ports >"$log.out" 2>"$log" &
	server_pid=$!
	until_ok 300 grep -qs "^serving store" "$log.out" ||
		{ echo "bench: cowroot serve did not start:" >&2; tail -n 5 "$log" >&2; return 1; }
	t1=$(now_us)
	ganesha_pid=$(cat "$store/run/ganesha.pid")
	until_ok 60 answers "$n" "c$n" || { echo "bench: the export of c$n does not answer" >&2; return 1; }
	t2=$(now_us)
	# the MDCACHE block ganesha started with (serve rewrites the file at reloads)
	rec mdcache "$(awk '/^MDCACHE *\{/ { on = 1; next } on && /^\}/ { on = 0 } on { gsub(/^[ \t]+|[ \t]+$/, ""); printf "%s%s", sep, $0; sep = " " }' "$store/run/ganesha.conf")"
	rec start_s "$(secs "$t0" "$t1")"
	rec start_mount_s "$(secs "$t0" "$t2")"
	sleep 1
	rec ganesha_rss_idle_kib "$(rss_kib "$ganesha_pid")"
	rec ganesha_hwm_idle_kib "$(rss_kib "$ganesha_pid" VmHWM)"
	rec serve_rss_idle_kib "$(rss_kib "$server_pid")"

	for i in $(seq 1 "$n"); do specs+=("$(scale_addr "$i"):/clients/c$i"); done
	"$bootstorm" -q 4 "$walk" "${specs[@]}" >"$log.walk.txt" 2>"$log.walk.err" ||
		{ echo "bench: the walk of $n clients failed:" >&2; head -3 "$log.walk.err" >&2; return 1; }
	rec walk_s "$(awk '$1 == "METRIC" && $2 == "all_booted_s" { print $3 }' "$log.walk.txt")"
	rec ganesha_rss_used_kib "$(rss_kib "$ganesha_pid")"
	rec ganesha_hwm_used_kib "$(rss_kib "$ganesha_pid" VmHWM)"
	rec serve_rss_used_kib "$(rss_kib "$server_pid")"
	if [ -s "$walk2" ]; then
		sleep 5 # ganesha's LRU thread may release entries meanwhile
		"$bootstorm" -q 4 "$walk2" "${specs[@]}" >"$log.walk2.txt" 2>"$log.walk2.err" ||
			{ echo "bench: the second walk of $n clients failed:" >&2; head -3 "$log.walk2.err" >&2; return 1; }
		rec walk2_s "$(awk '$1 == "METRIC" && $2 == "all_booted_s" { print $3 }' "$log.walk2.txt")"
		rec ganesha_rss_used2_kib "$(rss_kib "$ganesha_pid")"
		rec ganesha_hwm_used2_kib "$(rss_kib "$ganesha_pid" VmHWM)"
	fi

	booted_start
	sleep 0.5
	r0=$(reloads)
	t0=$(now_us)
	cow client add extra --image base --ip "$(scale_addr "$extra")" >>"$work/logs/cli.log"
	until_ok 120 answers "$extra" extra || { echo "bench: the added export does not answer" >&2; booted_stop; return 1; }
	t1=$(now_us)
	until_ok 120 reloaded_since "$r0" || { echo "bench: serve did not reload" >&2; booted_stop; return 1; }
	t2=$(now_us)
	rec add_s "$(secs "$t0" "$t1")"
	rec add_reloaded_s "$(secs "$t0" "$t2")"
	sleep 0.5
	r0=$(reloads)
	t0=$(now_us)
	cow client rm extra >>"$work/logs/cli.log"
	until_ok 120 gone "$extra" extra || { echo "bench: the removed export still answers" >&2; booted_stop; return 1; }
	t1=$(now_us)
	until_ok 120 reloaded_since "$r0" || { echo "bench: serve did not reload" >&2; booted_stop; return 1; }
	t2=$(now_us)
	rec rm_s "$(secs "$t0" "$t1")"
	rec rm_reloaded_s "$(secs "$t0" "$t2")"
	sleep 0.5
	booted_stop || return 1
	rec ganesha_rss_end_kib "$(rss_kib "$ganesha_pid")"
	rec ganesha_hwm_end_kib "$(rss_kib "$ganesha_pid" VmHWM)"
	rec serve_rss_end_kib "$(rss_kib "$server_pid")"
	stop_server
}

have=0
for n in $counts; do
	t0=$(now_us)
	for i in $(seq $((have + 1)) "$n"); do
		cow client add "c$i" --image base --ip "$(scale_addr "$i")" >/dev/null
	done
	have=$n
	echo -e "$label\t0\t$n\tclients_add_s\t$(secs "$t0" "$(now_us)")" >>"$results"
	for rep in $(seq 1 "$reps"); do
		printf '# scale %-7s rep %d/%d %4d clients ' "$label" "$rep" "$reps" "$n"
		if run_one "$n" "$rep"; then
			awk -F'\t' -v n="$n" -v r="$rep" '$2 == r && $3 == n { v[$4] = $5 } END {
				printf "start %ss, add %ss, rm %ss, ganesha %.1f MiB idle, %.1f MiB used, booted errors %d\n",
					v["start_s"], v["add_s"], v["rm_s"], v["ganesha_rss_idle_kib"] / 1024,
					v["ganesha_rss_used_kib"] / 1024, v["booted_errors"] }' "$results"
		else
			echo "FAILED"
			stop_server
			cow client rm extra >/dev/null 2>&1 || true
			echo -e "$label\t$rep\t$n\tfailed\t1" >>"$results"
			failed=1
		fi
	done
done
exit $failed
