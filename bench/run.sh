#!/bin/bash
# Run the local (FUSE) benchmark suite and write bench/RESULTS.md.
#
# The same workload (bench/workload.sh) runs on each stack, rep by rep:
#   plain             a plain copy of the base directory (the limit)
#   overlay           kernel overlayfs over the base
#   overlay-metacopy  kernel overlayfs with metacopy=on
#   fuse-overlayfs    the Debian fuse-overlayfs package
#   cowroot           a fresh cowroot client (new layer) on the imported base
# and the report gives medians and ratios to plain measured in the same run.
#
# Usage (as root, from anywhere):
#   bench/run.sh [--smoke] [--reps N] [--stacks "plain cowroot ..."] [--out FILE] [--no-deps]
#
#   --smoke    1 rep, a small generated base and small sizes, no cache drops;
#              checks that the suite still runs (CI), writes no RESULTS.md
#              unless --out is given; exits 1 if any step failed
#   --no-deps  do not apt-get install (also SKIP_DEPS=1)
# Environment:
#   BENCH_REPS (5), BENCH_STACKS, BENCH_WORK (/var/tmp/cowroot-bench, -smoke
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
	export COW_BENCH_INNER=1 BENCH_REPS=$reps BENCH_STACKS=$stacks BENCH_OUT=$out BENCH_SMOKE=$smoke BENCH_WORK=$work
	exec unshare --mount --propagation private --pid --fork --mount-proc "$0"
fi
smoke=${BENCH_SMOKE:-0}

cowroot=$build/tools/cowroot
fsops=$build/bench/fsops
[ -x "$cowroot" ] && [ -x "$fsops" ] || { echo "bench: no $cowroot or $fsops" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"/{mnt,logs,pkg}
results=$work/results.tsv
: >"$results"

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
	export NFILES=300 APPEND_N=20 META_N=40 SEQ_MB=16 DROP=0
else
	base=$cache/minbase
	prepare_minbase
	export NFILES=10000 APPEND_N=200 META_N=1000 SEQ_MB=512 DROP=1
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
teardown_overlay() { umount "$MNT" && rm -rf "$work/ovl-$rep" "$MNT"; }
setup_overlay-metacopy() {
	mount -t overlay overlay -o "$(overlay_dirs "ovlm-$1"),metacopy=on" "$work/mnt/ovlm-$1" && MNT=$work/mnt/ovlm-$1
}
teardown_overlay-metacopy() { umount "$MNT" && rm -rf "$work/ovlm-$rep" "$MNT"; }

setup_fuse-overlayfs() {
	local o
	o=$(overlay_dirs "fovl-$1")
	MNT=$work/mnt/fovl-$1
	fuse-overlayfs -f -o "$o" "$MNT" 2>"$work/logs/fuse-overlayfs-$1.log" &
	daemon_pid=$!
	wait_mounted $daemon_pid "$MNT"
}
teardown_fuse-overlayfs() { fuse_down && rm -rf "$work/fovl-$rep" "$MNT"; }

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
for s in $stacks; do
	if why=$(available "$s"); then run_stacks+=("$s"); else skipped+=("$s: $why"); echo "# skipping $s: $why"; fi
done
[ "${run_stacks[0]:-}" = plain ] || { echo "bench: the plain stack must come first (ratios)" >&2; exit 1; }

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
for rep in $(seq 1 "$reps"); do
	for s in "${run_stacks[@]}"; do
		log=$work/logs/$s-$rep.txt
		printf '# rep %d/%d %-17s ' "$rep" "$reps" "$s"
		if ! "setup_$s" "$rep"; then
			# a comparison stack this machine cannot mount is reported,
			# not fatal; plain and cowroot must work
			echo "setup failed"
			echo -e "$s\t$rep\tsetup\tFAIL" >>"$results"
			case $s in plain | cowroot) failed=1 ;; esac
			continue
		fi
		t0=$SECONDS
		bash "$src/bench/workload.sh" "$MNT" >"$log" 2>&1 || true
		"teardown_$s" || { echo "teardown of $s failed" >&2; failed=1; }
		grep -q FAIL "$log" && { failed=1; grep -E 'FAIL|fsops' "$log" | head -5 >&2; }
		awk -v s="$s" -v r="$rep" '$1 == "METRIC" { print s "\t" r "\t" $2 "\t" $3 }' "$log" >>"$results"
		echo "$((SECONDS - t0))s"
	done
done

info() { # the INFO lines of the first plain run
	grep -h '^INFO' "$work/logs/plain-1.txt" 2>/dev/null | sed 's/^INFO /  /' || true
}

# ---- the report
report() {
	local commit dirty=
	commit=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
	[ -z "$(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null)" ] || dirty=" (with uncommitted changes)"
	cat <<EOF
# cowroot benchmark results

Written by \`bench/run.sh\`$([ "$smoke" = 1 ] && echo ' --smoke (sizes too small to mean anything)').
Every number below comes from one run; ratios are to the plain directory
**in the same run**, computed rep by rep (stack time / plain time in that
rep) and then the median over reps.  Lower is better; 1.00 is the limit.

## Machine and run

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- commit: $commit$dirty
- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; RAM: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
- kernel: $(uname -r); disk: $(df -T "$work" | awk 'NR == 2 {print $2 " on " $1}') (work dir $work)
- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: expect noise)
- versions: libfuse $(dpkg-query -W -f '${Version}' libfuse3-3 2>/dev/null || echo '?'), fuse-overlayfs $(dpkg-query -W -f '${Version}' fuse-overlayfs 2>/dev/null || echo '?'), sqlite $(dpkg-query -W -f '${Version}' libsqlite3-0 2>/dev/null || echo '?')
- reps: $reps; stacks: ${run_stacks[*]}$([ ${#skipped[@]} = 0 ] || printf '; skipped: %s' "${skipped[*]}")
- base: $([ "$smoke" = 1 ] && echo "a small generated tree" || echo "debootstrap --variant=minbase bookworm ($cache/minbase)")
$(info)
- cowroot image import of the base: ${import_s:-not run} s (one run; lifecycle costs below)

## Local (FUSE) suite

Median seconds per step:

EOF
	awk -F'\t' -v stacks="${run_stacks[*]}" -f "$src/bench/report.awk" "$results"
}

if [ -n "$out" ] || [ "$smoke" = 0 ]; then
	out=${out:-$src/bench/RESULTS.md}
	marker='<!-- run.sh keeps everything below this line: written by hand -->'
	kept=$work/kept.md
	if [ -f "$out" ] && grep -qF "$marker" "$out"; then
		sed -n "/^$marker\$/,\$p" "$out" >"$kept"
	else
		printf '%s\n\n## Profiling\n\nNot done yet.\n\n## NFS suite\n\nNot measured yet.\n\n## Lifecycle costs\n\nNot measured yet.\n' \
			"$marker" >"$kept"
	fi
	{ report; echo; cat "$kept"; } >"$out.tmp" && mv "$out.tmp" "$out"
	echo "# wrote $out"
else
	report | sed -n '/^Median seconds/,/^## Targets/p' | sed '$d'
fi
[ "$failed" = 0 ] || { echo "bench: some steps failed (logs in $work/logs)" >&2; exit 1; }
