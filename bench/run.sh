#!/bin/bash
# Run the benchmark suites and write bench/RESULTS.md:
#   local      the FUSE view against other copy-on-write stacks (below)
#   nfs        the NFS boot storm: cowroot serve against ganesha FSAL_VFS
#              on a plain copy (bench/nfs.sh)
#   lifecycle  reset, snapshot, import, bundle export/load, server memory
#              per idle client (bench/lifecycle.sh)
#   scale      one server with hundreds of clients: start and reload times,
#              ganesha's memory per client (bench/scale.sh)
#
# Local suite: the same workload (bench/workload.sh) runs on each stack, rep by rep:
#   plain             a plain copy of the base directory (the limit)
#   overlay           kernel overlayfs over the base
#   overlay-metacopy  kernel overlayfs with metacopy=on
#   fuse-overlayfs    the Debian fuse-overlayfs package
#   cowroot           a fresh cowroot client (new layer) on the imported base
# and the report gives medians and ratios to plain measured in the same run.
#
# Usage (as root, from anywhere):
#   bench/run.sh [--local] [--nfs] [--lifecycle] [--scale] [--smoke] [--reps N]
#                [--stacks "plain cowroot ..."] [--out FILE] [--no-deps]
#
#   --local, --nfs, --lifecycle, --scale
#              run only these suites (default: all four); the sections
#              of the suites not run are kept from the existing RESULTS.md
#   --smoke    1 rep, a small generated base and small sizes, no cache drops;
#              checks that the suites still run (CI), writes no RESULTS.md
#              unless --out is given; exits 1 if any step failed
#   --no-deps  do not apt-get install (also SKIP_DEPS=1)
# Environment:
#   BENCH_REPS (5, local suite), BENCH_NFS_REPS (3), BENCH_LC_REPS (3),
#   BENCH_NFS_CLIENTS ("1 8 32 64"), BENCH_NFS_STACKS, BENCH_NFS_TFTP (1: the
#   boot fetches a kernel and an initramfs over TFTP first; with --smoke, of
#   64 and 256 KiB), BENCH_NFS_DNSMASQ_DEFAULT (see bench/nfs.sh; e.g.
#   BENCH_NFS_CLIENTS="128 256" BENCH_NFS_TFTP=1 BENCH_NFS_STACKS="vfs cowroot"
#   BENCH_NFS_DNSMASQ_DEFAULT=128 BENCH_NFS_REPS=1 bench/run.sh --nfs),
#   BENCH_SCALE_CLIENTS ("10 100 500"), BENCH_SCALE_REPS (1),
#   BENCH_SUITES, BENCH_STACKS,
#   BENCH_WORK (/var/tmp/cowroot-bench, -smoke
#   with --smoke: stores, copies, mounts, logs and results.tsv; emptied at
#   the start; must be a local disk), BUILD_DIR (build in the source
#   tree), COW_FIXTURE_CACHE (/var/cache/cowroot-test, shared with the tests:
#   minbase/ built with debootstrap when missing, debs/), COW_DEBIAN_MIRROR,
#   COWROOT_WRAP (a command prefix for the cowroot daemon, e.g. a profiler),
#   COWROOT_MOUNT_OPTS (-o options for cowroot mount).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
smoke=0
reps=${BENCH_REPS:-5}
suites=${BENCH_SUITES:-}
stacks=${BENCH_STACKS:-plain overlay overlay-metacopy fuse-overlayfs cowroot}
out=${BENCH_OUT:-}
work=${BENCH_WORK:-}
build=${BUILD_DIR:-$src/build}
cache=${COW_FIXTURE_CACHE:-/var/cache/cowroot-test}
mirror=${COW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
skip_deps=${SKIP_DEPS:-0}

usage() {
	sed -n '/^# Usage/,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1; reps=1 ;;
	--local | --nfs | --lifecycle | --scale) suites="$suites ${1#--}" ;;
	--reps) reps=${2:?}; shift ;;
	--stacks) stacks=${2:?}; shift ;;
	--out) out=${2:?}; shift ;;
	--no-deps) skip_deps=1 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
	shift
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || usage
suites=${suites:-local nfs lifecycle scale}
if [ -z "$work" ]; then
	work=/var/tmp/cowroot-bench
	[ "$smoke" = 0 ] || work=$work-smoke
fi
[ "$(id -u)" = 0 ] || { echo "bench: run as root (mounts, cache drops)" >&2; exit 1; }

if [ -z "${COW_BENCH_INNER:-}" ]; then
	if [ "$skip_deps" != 1 ]; then
		echo "# installing dependencies"
		"$src/tools/setup-deps.sh" >/dev/null
	fi
	echo "# building in $build"
	if [ -f "$build/build.ninja" ]; then
		ninja -C "$build" -j2 >/dev/null
	else
		meson setup "$build" "$src" >/dev/null && ninja -C "$build" -j2 >/dev/null
	fi
	# mounts and daemons live in a private namespace: nothing leaks if killed
	export COW_BENCH_INNER=1 BENCH_REPS=$reps BENCH_STACKS=$stacks BENCH_OUT=$out BENCH_SMOKE=$smoke BENCH_WORK=$work \
		BENCH_SUITES=$suites
	exec unshare --mount --propagation private --pid --fork --mount-proc "$0"
fi
smoke=${BENCH_SMOKE:-0}
want() { [[ " $suites " == *" $1 "* ]]; }

cowroot=$build/tools/cowroot
fsops=$build/bench/fsops
[ -x "$cowroot" ] && [ -x "$fsops" ] || { echo "bench: no $cowroot or $fsops" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"/{mnt,logs,pkg}
results=$work/results.tsv results_client=$work/results-client.tsv
: >"$results"
: >"$results_client"

# ---- the base and the package payloads

have_minbase() { [ -x "$cache/minbase/usr/bin/dpkg" ] && [ -s "$cache/minbase/var/lib/dpkg/status" ]; }

# Same cache as tests/realworld/dpkg.sh: built once, under its lock.
prepare_minbase() {
	mkdir -p "$cache/debs"
	exec 9>"$cache/.lock"
	flock 9
	if ! have_minbase; then
		echo "# building $cache/minbase with debootstrap (once; cached)"
		rm -rf "$cache/minbase.tmp"
		debootstrap --variant=minbase bookworm "$cache/minbase.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
			{ tail -5 "$cache/debootstrap.log"; echo "bench: debootstrap failed" >&2; exit 1; }
		mv "$cache/minbase.tmp" "$cache/minbase"
	fi
	for p in coreutils libc6 perl-base; do
		if ! compgen -G "$cache/debs/${p}_*.deb" >/dev/null; then
			(cd "$cache/debs" && { apt-get download -q "$p" >/dev/null 2>&1 ||
				{ apt-get update -q >/dev/null && apt-get download -q "$p" >/dev/null; }; }) ||
				{ echo "bench: cannot fetch $p.deb" >&2; exit 1; }
		fi
		dpkg-deb --fsys-tarfile "$(compgen -G "$cache/debs/${p}_*.deb" | head -1)" >"$work/pkg/$p.tar"
	done
	flock -u 9
	exec 9>&-
}

# fill N TEXT: N bytes of TEXT repeated (no SIGPIPE under pipefail)
fill() { head -c "$1" /dev/zero | tr "\\0" "${2:0:1}"; }

# A small generated tree with the shape the workload expects (smoke mode).
make_smoke_base() {
	local b=$1 i
	mkdir -p "$b"/{etc/conf.d,tmp,usr/bin,usr/lib/x/y,usr/share/doc/p,var/lib/dpkg}
	chmod 1777 "$b/tmp"
	for i in $(seq 1 120); do
		fill $((i * 211)) "line $i" >"$b/usr/lib/x/lib$i.so"
		fill $((i * 37)) "doc $i" >"$b/usr/share/doc/p/f$i"
		echo "key=$i" >"$b/etc/conf.d/c$i"
	done
	for i in $(seq 1 30); do
		fill 4000 "bin $i" >"$b/usr/bin/tool$i"
		ln -s "tool$i" "$b/usr/bin/alias$i"
	done
	mkdir -p "$work/stage/usr/bin" "$work/stage/usr/share/doc/q"
	for i in $(seq 1 40); do
		echo "new $i" >"$work/stage/usr/bin/tool$i"
		echo "doc $i" >"$work/stage/usr/share/doc/q/d$i"
	done
	tar -C "$work/stage" -cf "$work/pkg/payload.tar" .
}

if [ "$smoke" = 1 ]; then
	base=$work/smoke-base
	make_smoke_base "$base"
	export NFILES=300 APPEND_N=20 META_N=40 SEQ_MB=16 EXEC_N=5 LOG_N=500 RENAME_N=100 UNLINK_N=20 DROP=0
else
	base=$cache/minbase
	prepare_minbase
	export NFILES=10000 APPEND_N=200 META_N=1000 SEQ_MB=512 EXEC_N=100 LOG_N=20000 RENAME_N=5000 UNLINK_N=500 DROP=1
fi
export FSOPS=$fsops PKG_DIR=$work/pkg

# ---- stacks: setup prints nothing, sets MNT; teardown undoes it

daemon_pid=
wait_mounted() { # PID DIR: until DIR is a mount point, or PID died
	for _ in $(seq 1 200); do
		mountpoint -q "$2" && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
fuse_down() {
	fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT"
	[ -n "$daemon_pid" ] && wait "$daemon_pid" || true
	daemon_pid=
}

setup_plain() {
	MNT=$work/mnt/plain-$1
	cp -a "$base" "$MNT"
}
teardown_plain() { rm -rf "$MNT"; }

overlay_dirs() {
	local d=$work/$1
	mkdir -p "$d/upper" "$d/work" "$work/mnt/$1"
	MNT=$work/mnt/$1
	echo "lowerdir=$base,upperdir=$d/upper,workdir=$d/work"
}
setup_overlay() { mount -t overlay overlay -o "$(overlay_dirs "ovl-$1")" "$work/mnt/ovl-$1" && MNT=$work/mnt/ovl-$1; }
teardown_overlay() { umount "$MNT" && rm -rf "$work/ovl-$sid" "$MNT"; }
setup_overlay-metacopy() {
	mount -t overlay overlay -o "$(overlay_dirs "ovlm-$1"),metacopy=on" "$work/mnt/ovlm-$1" && MNT=$work/mnt/ovlm-$1
}
teardown_overlay-metacopy() { umount "$MNT" && rm -rf "$work/ovlm-$sid" "$MNT"; }

setup_fuse-overlayfs() {
	local o
	o=$(overlay_dirs "fovl-$1")
	MNT=$work/mnt/fovl-$1
	fuse-overlayfs -f -o "$o" "$MNT" 2>"$work/logs/fuse-overlayfs-$1.log" &
	daemon_pid=$!
	wait_mounted $daemon_pid "$MNT"
}
teardown_fuse-overlayfs() { fuse_down && rm -rf "$work/fovl-$sid" "$MNT"; }

store=$work/store
cow() { "$cowroot" --store "$store" "$@"; }
setup_cowroot() {
	MNT=$work/mnt/cow-$1
	mkdir -p "$MNT"
	cow client add "bench-$1" --image base >/dev/null
	# shellcheck disable=SC2086
	${COWROOT_WRAP:-} "$cowroot" --store "$store" mount "bench-$1" "$MNT" -f \
		${COWROOT_MOUNT_OPTS:+-o "$COWROOT_MOUNT_OPTS"} 2>"$work/logs/cowroot-$1.log" &
	daemon_pid=$!
	wait_mounted $daemon_pid "$MNT"
}
teardown_cowroot() { fuse_down && rmdir "$MNT"; }

available() { # STACK: can this machine run it?  (prints why not)
	case $1 in
	plain) return 0 ;;
	overlay | overlay-metacopy)
		grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
			{ echo "no overlay file system"; return 1; }
		[ "$1" = overlay ] || [ -e /sys/module/overlay/parameters/metacopy ] ||
			{ echo "overlayfs without metacopy"; return 1; } ;;
	fuse-overlayfs) command -v fuse-overlayfs >/dev/null || { echo "no fuse-overlayfs"; return 1; } ;;
	cowroot) [ -c /dev/fuse ] || { echo "no /dev/fuse"; return 1; } ;;
	*) echo "unknown stack"; return 1 ;;
	esac
}

run_stacks=()
skipped=()
want local || stacks=
for s in $stacks; do
	if why=$(available "$s"); then run_stacks+=("$s"); else skipped+=("$s: $why"); echo "# skipping $s: $why"; fi
done
! want local || [ "${run_stacks[0]:-}" = plain ] ||
	{ echo "bench: the plain stack must come first (ratios)" >&2; exit 1; }

import_s=
if [[ " ${run_stacks[*]} " == *" cowroot "* ]]; then
	cow init >/dev/null
	t0=${EPOCHREALTIME/./}
	cow image import base "$base" >/dev/null
	t1=${EPOCHREALTIME/./}
	import_s=$(printf '%d.%03d' $(((t1 - t0) / 1000000)) $(((t1 - t0) % 1000000 / 1000)))
	echo "# imported the base into cowroot in ${import_s}s"
fi

failed=0
want local || reps=0
# one_run STACK ID SCRIPT LOG RESULTS: SCRIPT on a fresh STACK (named by ID),
# its metrics appended to RESULTS as STACK <TAB> rep <TAB> metric <TAB> seconds
one_run() {
	local s=$1 script=$3 log=$4 res=$5 t0
	sid=$2
	if ! "setup_$s" "$sid"; then
		# a comparison stack this machine cannot mount is reported,
		# not fatal; plain and cowroot must work
		echo -n "setup failed "
		echo -e "$s\t$rep\tsetup\tFAIL" >>"$res"
		case $s in plain | cowroot) failed=1 ;; esac
		return 0
	fi
	t0=$SECONDS
	bash "$script" "$MNT" >"$log" 2>&1 || true
	"teardown_$s" || { echo "teardown of $s failed" >&2; failed=1; }
	grep -q FAIL "$log" && { failed=1; grep -E 'FAIL|fsops' "$log" | awk 'NR <= 5' >&2; }
	awk -v s="$s" -v r="$rep" '$1 == "METRIC" { print s "\t" r "\t" $2 "\t" $3 }' "$log" >>"$res"
	echo -n "$((SECONDS - t0))s "
}
for rep in $(seq 1 "$reps"); do
	for s in "${run_stacks[@]}"; do
		printf '# rep %d/%d %-17s ' "$rep" "$reps" "$s"
		one_run "$s" "$rep" "$src/bench/workload.sh" "$work/logs/$s-$rep.txt" "$results"
		one_run "$s" "c$rep" "$src/bench/client.sh" "$work/logs/$s-c$rep.txt" "$results_client"
		echo
	done
done

# ---- the NFS and lifecycle suites (each in namespaces of its own)

declare -A suite_note=()
# run_suite NAME SCRIPT: run it, its output on the terminal and in logs/NAME.out
run_suite() {
	local rc=0
	bash "$2" > >(tee "$work/logs/$1.out") 2>&1 || rc=$?
	wait
	case $rc in
	0) suite_note[$1]=ran ;;
	77) suite_note[$1]="not run: $(tail -n 1 "$work/logs/$1.out")"; echo "# skipping the $1 suite: ${suite_note[$1]#not run: }" ;;
	*) suite_note[$1]=ran; failed=1 ;;
	esac
}
export BUILD_DIR=$build BENCH_WORK=$work BENCH_BASE=$base BENCH_SMOKE=$smoke
if want nfs; then
	if [ "$smoke" = 1 ]; then
		BENCH_REPS=1 BENCH_NFS_CLIENTS="1 2" BENCH_NFS_TFTP_KIB=${BENCH_NFS_TFTP_KIB:-64 256} \
			run_suite nfs "$src/bench/nfs.sh"
	else
		BENCH_REPS=${BENCH_NFS_REPS:-3} run_suite nfs "$src/bench/nfs.sh"
	fi
fi
if want lifecycle; then
	if [ "$smoke" = 1 ]; then
		BENCH_REPS=1 BENCH_LC_CHANGES=200 BENCH_LC_IDLE="0 2" run_suite lifecycle "$src/bench/lifecycle.sh"
	else
		BENCH_REPS=${BENCH_LC_REPS:-3} BENCH_LC_CHANGES=10000 run_suite lifecycle "$src/bench/lifecycle.sh"
	fi
fi
if want scale; then
	if [ "$smoke" = 1 ]; then
		BENCH_REPS=1 BENCH_SCALE_CLIENTS="2 4" run_suite scale "$src/bench/scale.sh"
	else
		BENCH_REPS=${BENCH_SCALE_REPS:-1} run_suite scale "$src/bench/scale.sh"
	fi
fi

info() { # [c]: the INFO lines of the first plain run (of the client workload)
	grep -h '^INFO' "$work/logs/plain-${1:-}1.txt" 2>/dev/null | sed 's/^INFO /  /' || true
}

# ---- the report

marker='<!-- run.sh keeps everything below this line: written by hand -->'
sections=("Local (FUSE) suite" "NFS suite" "Lifecycle costs" "Hundreds of clients")

# old_section TITLE: the section TITLE of the existing report, if any
old_section() {
	[ -f "$out" ] || return 0
	awk -v want="## $1" -v marker="$marker" '
		$0 == marker { exit }
		/^## / { if (on) { stop = 0; for (t in titles) if ($0 == titles[t]) stop = 1; if (stop) exit } }
		$0 == want { on = 1 }
		on { print }
		BEGIN { titles[1] = "## Local (FUSE) suite"; titles[2] = "## NFS suite"; titles[3] = "## Lifecycle costs"; titles[4] = "## Hundreds of clients" }
	' "$out"
}

run_line() { # the date, commit and load of this run, for each section
	echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit$dirty, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
}

section_local() {
	cat <<EOF
## Local (FUSE) suite

$(run_line)
Ratios are to the plain directory **in the same run**, computed rep by rep
(stack time / plain time in that rep) and then the median over reps.  Lower
is better; 1.00 is the limit.

- reps: $reps; stacks: ${run_stacks[*]}$([ ${#skipped[@]} = 0 ] || printf '; skipped: %s' "${skipped[*]}")
$(info)
- cowroot image import of the base: ${import_s:-not run} s (one run; lifecycle costs below)

Median seconds per step:

EOF
	awk -F'\t' -v stacks="${run_stacks[*]}" -f "$src/bench/median.awk" -f "$src/bench/report.awk" "$results"
	cat <<EOF

### A booted client's workload (bench/client.sh)

What a client does with its root once booted, on a fresh stack of its own
in each rep, after the workload above: binaries and perl started in a
chroot, dpkg-query, a cold grep through /etc and /usr/share, a service
log appended one line at a time (open, write, close), /usr/share/doc
copied and removed, configuration files rewritten by rename, image files
removed, a cold tar of /usr.  Ratios as above.

$(info c)

Median seconds per step:

EOF
	awk -F'\t' -v stacks="${run_stacks[*]}" -f "$src/bench/median.awk" -f "$src/bench/report.awk" "$results_client"
}

section_nfs() {
	local nw=$work/nfs list=$work/nfs/bootlist.txt
	cat <<EOF
## NFS suite

$(run_line)
A boot storm: N simulated clients (\`bench/bootstorm\`, libnfs's asynchronous
API, NFSv3 over TCP, each with its own libnfs context and connections from
its own loopback address) mount at the same moment and each runs the same
list of boot steps in order, four at a time, as a booting system's
services would.  A client has booted when its last step completed; "all
booted" is the last client's time.  A step is all the RPCs it takes
(libnfs looks every path up from the export's root, with no client cache):
\`s\` lstat, \`r\` open + 128 KiB READs to the end + close, \`d\` READDIRPLUS
listing, \`w\` create/truncate + WRITE + COMMIT + close.

- **FSAL_VFS** (the limit): nfs-ganesha with FSAL_VFS exporting a plain copy
  of the image as ONE export shared by all clients for reading (a copy per
  client would be $(du -sh "$base" 2>/dev/null | cut -f1) each); each client writes into its own
  directory of that export, \`/bootstorm/cN/\` + the boot's write paths,
  holding copies of the image's files of those paths (fresh for each run).
- **cowroot**: \`cowroot serve\` (the same ganesha binary with the COWROOT
  FSAL): one client (export \`/clients/cN\`, layer, address) per simulated
  client, each reset to a fresh layer before the run; writes go to the real
  paths (overwriting image files copies them up into the layer).
- **cowroot, one shared export** (for comparison, not a way to serve
  clients): \`cowroot serve\` with ONE client whose export all simulated
  clients share, each writing into its own directory of it as on
  FSAL_VFS: the same FSAL without the per-client exports, handles and caches.
- Both in private network, mount and pid namespaces, the same ganesha
  settings (\`NFS_CORE_PARAM\`, \`NFSv4\`, export and log blocks as
  \`cowroot serve\` writes them; ganesha's defaults for worker threads and
  MDCACHE on both).  Each run starts its server afresh after \`sync\` and
  dropping the page cache: every run starts cold.  Order within a rep:
  for each N, FSAL_VFS then cowroot.
- nfs-ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha 2>/dev/null || echo '?'), libnfs $(dpkg-query -W -f '${Version}' libnfs13 2>/dev/null || echo '?'); reps: $(awk -F'\t' '$2 > r { r = $2 } END { print r + 0 }' "$nw/results.tsv"); the client
  simulator runs on the same two cores as the server.

EOF
	if [ -s "$list" ]; then
		awk '{ n[$1]++ } $1 == "w" { wb += $2 } END {
			printf "The boot, derived from the image by `bench/bootlist.sh`: %d steps per client: %d files read, %d directories listed, %d lstats (a stat walk of /etc and /usr/lib/x86_64-linux-gnu, and the kernel modules tree when the image has one), %d files written (%d bytes).  ", n["r"] + n["d"] + n["s"] + n["w"], n["r"], n["d"], n["s"], n["w"], wb }' "$list"
		echo "The files read, in order (the binaries a boot runs after their shared libraries, from the image's ldd), and the files written:"
		echo
		echo "<details><summary>boot step list (reads and writes)</summary>"
		echo
		awk '$1 == "r" { printf "%s`%s`", r++ ? ", " : "", $2 } END { print "" }' "$list"
		echo
		awk '$1 == "w" { printf "%s`%s` (%d B)", w++ ? ", " : "", $3, $2 } END { print "" }' "$list"
		echo
		echo "</details>"
		echo
	fi
	if [ -s "$nw/tftp-files.txt" ]; then
		local files default_note='' limit
		limit=$(awk -F'\t' '$4 == "tftp_file_limit_s" { print $5; exit }' "$nw/results.tsv")
		if [ "${limit:-30}" = 0 ]; then
			limit="of a packet (no time limit per file, as u-boot)"
		else
			limit="of a packet or ${limit:-30} s (the Pi 4 bootloader's TFTP_FILE_TIMEOUT)"
		fi
		grep -q vfs-dnsmasq-default "$nw/results.tsv" &&
			default_note="\"dnsmasq's default --tftp-max\" is FSAL_VFS with dnsmasq left at its default limit of 50 transfers, once (first rep).
"
		files=$(awk '{ printf "%s`%s` (%d bytes)", (NR > 1 ? " and " : ""), $1, $2 }' "$nw/tftp-files.txt")
		cat <<EOF
**With TFTP** (\`BENCH_NFS_TFTP=1\`): before its mount each client fetches
$files over TFTP,
as a room of netbooting Pis powering on does: \`bootstorm -T\`, the TFTP client u-boot
and the Pi boot ROM are (RRQ with blksize 1468 and tsize, windowsize 1, every
DATA ACKed, 1 s retransmission, a file fails after 10 retransmissions
$limit, or when its size is not the tsize), one UDP socket per client
bound to the client's own address, all in the same poll loop as the NFS
clients; "booted" includes the TFTP part, and a client whose TFTP failed does
not mount (the run fails).  The files are random and in both trees (the plain
copy and the imported image).  FSAL_VFS's TFTP server is dnsmasq's
(\`--enable-tftp --tftp-root=\` the plain copy, \`--tftp-max\` twice the
clients, at least dnsmasq's default of 50), as Pi netboot guides set it up;
cowroot's is \`cowroot serve\`'s own, which finds the client by the request's
source address and serves the file from that client's root.
${default_note}The NFS throughputs (steps/s, MB/s) are from the first mount to the end.

EOF
	fi
	awk -F'\t' -v tftp_files="$(awk '{ print $1 ":" $2 }' "$nw/tftp-files.txt" 2>/dev/null | paste -sd' ')" \
		-f "$src/bench/median.awk" -f "$src/bench/report-nfs.awk" "$nw/results.tsv"
}

section_lifecycle() {
	cat <<EOF
## Lifecycle costs

$(run_line)
Times are of the whole \`cowroot\` command (process start, store open,
work), each rep on a fresh store (\`bench/lifecycle.sh\`): the changed files
are new 4 KiB files written through a FUSE mount of the client; RSS is
ganesha's (\`VmRSS\`) under \`cowroot serve\` with that many clients served,
each having mounted once (NFS MOUNT and a GETATTR of the root) and then
idle, a fresh server for each count.  With no client served ganesha has not
loaded the FSAL (it loads with the first export that uses it).

EOF
	awk -F'\t' -v changes="$([ "$smoke" = 1 ] && echo 200 || echo 10,000)" -f "$src/bench/median.awk" \
		-f "$src/bench/report-lifecycle.awk" "$work/lifecycle/results.tsv"
}

section_scale() {
	local sw=$work/scale
	steps() { [ ! -f "$2" ] || grep -c "^$1 " "$2" || true; } # TYPE LIST: steps of TYPE in LIST
	cat <<EOF
## Hundreds of clients

$(run_line)
One \`cowroot serve\` with N clients defined (\`bench/scale.sh\`), each its
own export, layer and loopback address, a fresh server for each N, in
private network, mount and pid namespaces.  "Serving" is the time from
starting \`cowroot serve --foreground\` to its "serving store" line; "last
export mounts" until an NFSv3 client (\`nfs-ls\`) mounts the last client's
export.  RSS is ganesha's \`VmRSS\` idle 1 s after start, then after all N
clients at once (\`bench/bootstorm\`) mounted their exports and walked them
(READDIRPLUS of $(steps d "$sw/walk.txt") directories, reads of $(steps r "$sw/walk.txt") small files), and after a
second walk of $(steps d "$sw/walk2.txt") other directories 5 s later (new objects: does the
cache keep to its size?).  Reload: \`cowroot client add\` of one more
client until its export answers, then \`cowroot client rm\` of it until
its export no longer mounts, while client 1, "booted", mounts and reads
its files in a loop: its errors are counted (must be 0).  serve's own
"reloaded" line comes later: it waits for ganesha's log to go quiet (at
most 5 s), and every connection that ends logs a line.  The server runs
with \`--allow-unprivileged-ports\`: the simulated clients all share this
machine's reserved ports (512-1023).

EOF
	awk -F'\t' -f "$src/bench/median.awk" -f "$src/bench/report-scale.awk" "$sw/results.tsv"
}

report() {
	cat <<EOF
# cowroot benchmark results

Written by \`bench/run.sh\`$([ "$smoke" = 1 ] && echo ' --smoke (sizes too small to mean anything)').
Every number in a section comes from one run of that suite; ratios are
measured within that run.

## Machine and run

- date: $(date -u '+%Y-%m-%d %H:%M UTC'); suites run: ${suites# }
- commit: $commit$dirty
- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; RAM: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
- kernel: $(uname -r); disk: $(df -T "$work" | awk 'NR == 2 {print $2 " on " $1}') (work dir $work)
- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: expect noise)
- versions: libfuse $(dpkg-query -W -f '${Version}' libfuse3-3 2>/dev/null || echo '?'), fuse-overlayfs $(dpkg-query -W -f '${Version}' fuse-overlayfs 2>/dev/null || echo '?'), sqlite $(dpkg-query -W -f '${Version}' libsqlite3-0 2>/dev/null || echo '?'), nfs-ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha 2>/dev/null || echo '?'), libnfs $(dpkg-query -W -f '${Version}' libnfs13 2>/dev/null || echo '?')
- base: $([ "$smoke" = 1 ] && echo "a small generated tree" || echo "debootstrap --variant=minbase bookworm ($cache/minbase)")
EOF
	local t name
	for t in "${sections[@]}"; do
		echo
		case $t in
		Local*) name=local ;;
		NFS*) name=nfs ;;
		Lifecycle*) name=lifecycle ;;
		*) name=scale ;;
		esac
		if [ "${suite_note[$name]:-}" = ran ] || { [ "$name" = local ] && want local; }; then
			"section_$name"
		elif [ -n "$(old_section "$t")" ]; then
			old_section "$t" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
		else
			printf '## %s\n\nNot measured yet%s.\n' "$t" "${suite_note[$name]:+ (${suite_note[$name]})}"
		fi
	done
}

commit=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=
# the results file itself (its hand-written part) does not count
[ -z "$(git -C "$src" status --porcelain --untracked-files=no -- . ':!bench/RESULTS.md' 2>/dev/null)" ] ||
	dirty=" (with uncommitted changes)"
if [ -n "$out" ] || [ "$smoke" = 0 ]; then
	out=${out:-$src/bench/RESULTS.md}
	kept=$work/kept.md
	if [ -f "$out" ] && grep -qF "$marker" "$out"; then
		sed -n "/^$marker\$/,\$p" "$out" >"$kept"
	else
		printf '%s\n\n## Profiling\n\nNot done yet.\n' "$marker" >"$kept"
	fi
	{ report; echo; cat "$kept"; } >"$out.tmp" && mv "$out.tmp" "$out"
	echo "# wrote $out"
else
	out=
	report | sed -n '/^## Local/,$p'
fi
[ "$failed" = 0 ] || { echo "bench: some steps failed (logs in $work/logs)" >&2; exit 1; }
