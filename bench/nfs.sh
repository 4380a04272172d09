#!/bin/bash
# nfs.sh: the NFS boot storm (bench/run.sh --nfs runs it).  N simulated
# clients (bench/bootstorm, libnfs async, NFSv3) boot at once from
#   vfs      nfs-ganesha with FSAL_VFS exporting a plain copy of the image
#            (the limit): ONE export shared by all clients for reading;
#            each client writes into its own directory of that export
#            (/bootstorm/cN/..., holding copies of the files a boot writes)
#   cowroot  `cowroot serve`: the same ganesha with the COWROOT FSAL, one
#            client (export, layer, address) per simulated client, each
#            on a fresh layer; writes go to the real paths (copy-up)
#   cowroot-shared  (unless BENCH_NFS_STACKS leaves it out) cowroot serving
#            ONE client whose export all simulated clients share, writing
#            into their own directories as on vfs: what per-client exports
#            cost, measured
#   vfs-dnsmasq-default  (only with TFTP, at the counts of
#            BENCH_NFS_DNSMASQ_DEFAULT, in the first rep) vfs with dnsmasq at
#            its default --tftp-max (50): what users of the classic Pi
#            netboot guides get
# Both run in private network/mount/pid namespaces with the same ganesha
# settings; each run starts its server afresh after dropping the page
# cache, so every run starts cold.  Simulated client I connects from its
# own address (client_addr I: 127.0.0.(10+I), beyond 240 127.0.1.x, ...).
#
# With BENCH_NFS_TFTP=1 each client first fetches a kernel and an
# initramfs over TFTP (boot/vmlinuz-bench and boot/initrd.img-bench,
# random, BENCH_NFS_TFTP_KIB "8192 32768" KiB; added to both stacks'
# trees) and mounts when both came (a file fails after 10 retransmissions
# of a packet or BENCH_NFS_TFTP_FILE_S, 30 s as the Pi 4 bootloader; 0: no
# limit, as u-boot): on vfs from dnsmasq's TFTP server
# (--tftp-max at least the client count), on cowroot from `cowroot serve`'s
# own, which finds the client by the request's address.  cowroot-shared
# cannot run then (its one client's 127.0.0.0/8 holds every client's
# address, so an address names two clients): it is left out.
#
# Environment (set by run.sh): BUILD_DIR, BENCH_WORK (its nfs/ subdir is
# used), BENCH_BASE (the image tree), BENCH_REPS (3), BENCH_NFS_CLIENTS
# ("1 8 32 64"), BENCH_SMOKE (1: a tiny step list, no cache drops),
# BENCH_NFS_STACKS ("vfs cowroot cowroot-shared"; vfs first), BENCH_NFS_DEPTH (steps in flight per client, 4), BENCH_NFS_PROFILE
# (`perf record` options, e.g. "-e cpu-clock -g": profile ganesha during
# each run into logs/STACK-N-REP.perf), BENCH_NFS_TFTP (0), BENCH_NFS_TFTP_KIB,
# BENCH_NFS_TFTP_FILE_S (30),
# BENCH_NFS_DNSMASQ_DEFAULT (counts, e.g. "128"; empty: none).
# Writes BENCH_WORK/nfs/results.tsv (stack, rep, clients, metric, value),
# bootlist.txt, tftp-files.txt (the TFTP files: name, bytes) and logs/.
# Exit 0 if every run worked (vfs-dnsmasq-default may fail: it is there to
# show it), 77 if the machine cannot run it (the reason on stdout), 1
# otherwise.
set -euo pipefail
export LC_ALL=C
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build}
base=${BENCH_BASE:?}
work=${BENCH_WORK:?}/nfs
reps=${BENCH_REPS:-3}
counts=${BENCH_NFS_CLIENTS:-1 8 32 64}
depth=${BENCH_NFS_DEPTH:-4}
stacks=${BENCH_NFS_STACKS:-vfs cowroot cowroot-shared}
smoke=${BENCH_SMOKE:-0}
tftp=${BENCH_NFS_TFTP:-0}
tftp_kib=${BENCH_NFS_TFTP_KIB:-8192 32768}
tftp_file_s=${BENCH_NFS_TFTP_FILE_S:-30}
dnsmasq_default=${BENCH_NFS_DNSMASQ_DEFAULT:-}
if [ "$tftp" = 1 ] && [[ " $stacks " == *" cowroot-shared "* ]]; then
	[ -n "${COW_BENCH_NS_INNER:-}" ] ||
		echo "# nfs: leaving out cowroot-shared (with TFTP an address would name two clients)"
	stacks=$(echo " $stacks " | sed 's/ cowroot-shared / /g; s/^ *//; s/ *$//')
fi
[ "$tftp" = 1 ] || dnsmasq_default=
export COWROOT=$build/tools/cowroot
bootstorm=$build/bench/bootstorm
fsal=$build/ganesha-fsal/libfsalcowroot.so
# shellcheck source=bench/nfs-lib.sh
. "$src/bench/nfs-lib.sh"

ns_check ganesha.nfsd rpcbind rpcinfo ip unshare
[ "$tftp" != 1 ] || ns_check dnsmasq ss
[ -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ] || { echo "no FSAL_VFS (apt-get install nfs-ganesha-vfs)"; exit 77; }
ns_enter "$@"

max=0
for n in $counts; do [ "$n" -le "$max" ] || max=$n; done
ns_start "$max"
mkdir -p "$work/vfs"

list=$work/bootlist.txt
if [ "$smoke" = 1 ]; then
	printf 's /\nd /etc/conf.d\nr /usr/bin/tool1\nr /usr/lib/x/lib100.so\ns /usr/bin/alias1\nw 4096 /tmp/boot.log\nw 100 /etc/conf.d/c1\n' >"$list"
else
	"$src/bench/bootlist.sh" "$base" >"$list"
fi
writes=$(awk '$1 == "w" { print $3 }' "$list")

# the plain copy, and its per-client write directories (fresh for each run)
plain=$work/plain
cp -a "$base" "$plain"
# the boot files fetched over TFTP: in the plain copy, which cowroot imports too
tftp_files=() tftp_arg=
import_src=$base
if [ "$tftp" = 1 ]; then
	mkdir -p "$plain/boot"
	read -r -a kib <<<"$tftp_kib"
	names=(vmlinuz-bench initrd.img-bench)
	for i in 0 1; do
		bytes=$((${kib[i]:?BENCH_NFS_TFTP_KIB: two sizes} * 1024))
		head -c "$bytes" /dev/urandom >"$plain/boot/${names[i]}"
		tftp_files+=("boot/${names[i]}=$bytes")
		echo "boot/${names[i]} $bytes" >>"$work/tftp-files.txt"
	done
	tftp_arg=$(IFS=,; echo "${tftp_files[*]}")
	import_src=$plain
fi
write_dirs() { # ROOT N: the per-client write directories under ROOT (a plain tree or a mount)
	local i p
	rm -rf "$1/bootstorm"
	for i in $(seq 1 "$2"); do
		for p in $writes; do
			mkdir -p "$1/bootstorm/c$i$(dirname "$p")"
			[ ! -e "$1$p" ] || cp -a "$1$p" "$1/bootstorm/c$i$p"
		done
	done
}

# the store: the image, and one client per simulated client
store=$work/store
cow() { "$COWROOT" --store "$store" "$@"; }
cow init >/dev/null
t0=${EPOCHREALTIME/./}
cow image import base "$import_src" >/dev/null
t1=${EPOCHREALTIME/./}
echo -e "cowroot\t0\t0\timport_s\t$(((t1 - t0) / 1000))e-3" >>"$results"
for i in $(seq 1 "$max"); do
	cow client add "c$i" --image base --ip "$(client_addr "$i")" >/dev/null
done
if [[ " $stacks " == *" cowroot-shared "* ]]; then
	cow client add shared --image base --ip 127.0.0.0/8 >/dev/null
fi
# shared_write_dirs N: a fresh layer for the shared client, holding the write directories
shared_write_dirs() {
	local mnt=$work/shared-mnt pid
	cow client reset shared >/dev/null
	mkdir -p "$mnt"
	"$COWROOT" --store "$store" mount shared "$mnt" -f 2>>"$work/logs/shared-mount.log" &
	pid=$!
	for _ in $(seq 200); do
		mountpoint -q "$mnt" && break
		sleep 0.05
	done
	write_dirs "$mnt" "$1"
	fusermount3 -u "$mnt"
	wait "$pid"
}

failed=0
run_one() { # STACK N REP
	local s=$1 n=$2 rep=$3 i specs=() log=$work/logs/$1-$2-$3
	if [ "${s%-dnsmasq-default}" = vfs ]; then
		write_dirs "$plain" "$n"
		for i in $(seq 1 "$n"); do specs+=("$(client_addr "$i"):/plain:/bootstorm/c$i"); done
	elif [ "$s" = cowroot-shared ]; then
		shared_write_dirs "$n"
		for i in $(seq 1 "$n"); do specs+=("$(client_addr "$i"):/clients/shared:/bootstorm/c$i"); done
	else
		for i in $(seq 1 "$n"); do
			cow client reset "c$i" >/dev/null
			specs+=("$(client_addr "$i"):/clients/c$i")
		done
	fi
	sync
	[ "$smoke" = 1 ] || echo 3 >/proc/sys/vm/drop_caches
	local tftp_proc=
	if [ "${s%-dnsmasq-default}" = vfs ]; then
		serve_vfs "$work/vfs" "$plain" || return 1
		if [ "$tftp" = 1 ]; then
			# room for every client (and a stray duplicate transfer), but
			# never below dnsmasq's default; or that default
			local max=$((2 * n > 50 ? 2 * n : 50))
			[ "$s" = vfs ] || max=
			serve_dnsmasq "$plain" "$max" "$log.dnsmasq" || { stop_server; return 1; }
			tftp_proc=$tftp_pid
		fi
	else
		serve_cowroot "$store" "$fsal" "$log.serve" || return 1
		tftp_proc=$server_pid # its TFTP thread (ganesha is a process of its own)
	fi
	local rss0 cpu0 tcpu0='' rc=0
	rss0=$(rss_kib "$ganesha_pid")
	cpu0=$(cpu_ticks "$ganesha_pid")
	[ -z "$tftp_proc" ] || tcpu0=$(cpu_ticks "$tftp_proc")
	local perf=
	if [ -n "${BENCH_NFS_PROFILE:-}" ]; then
		# shellcheck disable=SC2086 # options
		perf record $BENCH_NFS_PROFILE -p "$ganesha_pid" -o "$log.perf" 2>"$log.perf.err" &
		perf=$!
	fi
	local snap=
	if [ "$tftp" = 1 ]; then
		# the UDP sockets (queues, drops) while the TFTP part runs, for a post-mortem
		{ sleep 5; ss -uanm >"$log.ss-5s" 2>&1; sleep 20; ss -uanm >"$log.ss-25s" 2>&1; } &
		snap=$!
	fi
	"$bootstorm" -q "$depth" ${tftp_arg:+-T "$tftp_arg" -P 69 -F "$tftp_file_s"} "$list" "${specs[@]}" >"$log.txt" 2>"$log.err" || rc=$?
	[ -z "$snap" ] || { kill "$snap" 2>/dev/null; wait "$snap" 2>/dev/null || true; }
	[ -z "$perf" ] || { kill -INT "$perf"; wait "$perf" || true; }
	awk -v s="$s" -v r="$rep" -v n="$n" '$1 == "METRIC" { print s "\t" r "\t" n "\t" $2 "\t" $3 }' "$log.txt" >>"$results"
	echo -e "$s\t$rep\t$n\trss_start_kib\t$rss0" >>"$results"
	[ "$tftp" != 1 ] || echo -e "$s\t$rep\t$n\ttftp_file_limit_s\t$tftp_file_s" >>"$results"
	echo -e "$s\t$rep\t$n\trss_end_kib\t$(rss_kib "$ganesha_pid")" >>"$results"
	echo -e "$s\t$rep\t$n\tcpu_s\t$((($(cpu_ticks "$ganesha_pid") - cpu0) * 100 / $(getconf CLK_TCK)))e-2" >>"$results"
	[ -z "$tftp_proc" ] || [ "$tftp" != 1 ] ||
		echo -e "$s\t$rep\t$n\ttftp_cpu_s\t$((($(cpu_ticks "$tftp_proc") - tcpu0) * 100 / $(getconf CLK_TCK)))e-2" >>"$results"
	stop_server
	[ "$rc" = 0 ] || { echo "bootstorm failed ($s, $n clients):" >&2; head -5 "$log.err" >&2; return 1; }
}

for rep in $(seq 1 "$reps"); do
	for n in $counts; do
		run_stacks=$stacks
		[ "$rep" != 1 ] || [[ " $dnsmasq_default " != *" $n "* ]] || run_stacks="$stacks vfs-dnsmasq-default"
		for s in $run_stacks; do
			printf '# nfs rep %d/%d %2d clients %-14s ' "$rep" "$reps" "$n" "$s"
			t0=$SECONDS
			if run_one "$s" "$n" "$rep"; then
				echo "$((SECONDS - t0))s $(awk '$1 == "METRIC" && $2 == "ops_per_s" { print $3 " ops/s" }
					$1 == "METRIC" && $2 == "tftp_mb_per_s" { print "TFTP " $3 " MB/s" }' "$work/logs/$s-$n-$rep.txt" | paste -sd' ')"
			else
				echo "FAILED$(awk '$1 == "METRIC" && $2 == "failed_clients" { print ": " $3 " clients did not boot" }' "$work/logs/$s-$n-$rep.txt")"
				echo -e "$s\t$rep\t$n\tfailed\t1" >>"$results"
				[ "$s" = vfs-dnsmasq-default ] || failed=1
			fi
		done
	done
done
exit $failed
