#!/bin/bash
# Power loss: kill -9 keeps the page cache, so the crash test cannot see a
# sync that never happened.  This one checks at the system-call level that
# every acknowledged fsync/fdatasync (through a FUSE mount) and every
# acknowledged NFS COMMIT (libnfs, NFSv3, through `cowroot serve`) comes
# after a successful sync of each file it depends on: the object's data
# file, the WAL, the database, and the directory of every new name on their
# paths.  The server runs under strace; the client logs when each sync was
# asked for and acknowledged; synccheck.awk judges.  Each run is done with
# the store given as an absolute path and as a relative one.
#
# Environment: COWROOT, COW_SYNCWRITER (syncwriter.c), COW_SYNCCHECK
# (synccheck.awk); for the NFS half COW_NFSCLIENT (tests/nfs/nfsclient.c)
# and COW_FSAL (libfsalcowroot.so), without which it is skipped with a
# note.  Needs root, /dev/fuse and strace; exits 77 without them.
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_POWERLOSS_INNER:-}" ]; then
	for v in COWROOT COW_SYNCWRITER COW_SYNCCHECK; do
		[ -n "${!v:-}" ] && [ -e "${!v}" ] || { echo "\$$v is not set to a built file" >&2; exit 1; }
	done
	[ "$(id -u)" = 0 ] || skip "needs root (mounts and servers in private namespaces)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || skip "no fusermount3 (apt-get install fuse3)"
	command -v strace >/dev/null || skip "no strace (apt-get install strace)"
	strace -f -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace not permitted)"
	unshare --net --mount --propagation private --pid --fork true 2>/dev/null ||
		skip "cannot create network, mount and pid namespaces here"
	export COW_POWERLOSS_INNER=1
	exec unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
fi

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"
note() { sed 's/^/#   /'; }

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/cowroot-powerloss.XXXXXX")
tmp=$(realpath "$tmp")
tracer=
cleanup() {
	[ -n "$tracer" ] && kill -9 "$tracer" 2>/dev/null
	for m in "$tmp"/*/mnt; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"; }
	done
	if [ "$failed" = 0 ] || [ -n "${CI:-}" ]; then
		rm -rf "$tmp"
	else
		echo "# kept $tmp for inspection"
	fi
}
trap cleanup EXIT

# what a sync depends on and what it may be: every call that writes, makes
# a name, or syncs
calls=openat,open,creat,mkdirat,mkdir,write,pwrite64,pwritev,pwritev2,writev,ftruncate,fallocate
calls=$calls,copy_file_range,ioctl,fsync,fdatasync,syncfs,sync
traced() { # TRACE CMD...: run CMD under strace in the background, its pid in $tracer
	local out=$1
	shift
	strace -f -ttt -T -y -s 0 -qq -o "$out" -e trace="$calls" -e signal=none "$@" &
	tracer=$!
}
wait_tracer() { # SECONDS: wait for the traced server to end
	for _ in $(seq 1 $(($1 * 10))); do
		kill -0 "$tracer" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$tracer" 2>/dev/null; then
		kill -9 "$tracer"
		wait "$tracer" 2>/dev/null
		tracer=
		return 1
	fi
	wait "$tracer" 2>/dev/null
	tracer=
}
# the threads of the running server that commit on their own (cowroot's
# flusher), by the ids strace prints (this pid namespace's)
background() {
	grep -lx cowroot-flush /proc/[0-9]*/task/[0-9]*/comm 2>/dev/null | cut -d/ -f5 | tr '\n' ' '
}
judge() { # NAME DIR EXPECT: check DIR/trace against DIR/acks (DIR/bg: background threads)
	local name=$1 d=$2 expect=$3
	if awk -v store="$(realpath "$d/store")" -v before="$d/before" -v acks="$d/acks" -v expect="$expect" \
		-v background="$(cat "$d/bg" 2>/dev/null)" -f "$COW_SYNCCHECK" "$d/trace" >"$d/verdict" 2>&1; then
		ok "$name: $(tail -1 "$d/verdict")"
	else
		head -30 "$d/verdict" | note
		bad "$name: an acknowledged sync came before the sync of a file it depends on"
	fi
}

# ---- a small image: the client copies two of its files up
src=$tmp/src
mkdir -p "$src/base/cu" "$src/etc"
head -c 20000 /dev/urandom >"$src/base/cu/c1"
echo powerloss >"$src/etc/hostname"

setup_store() { # DIR WHERE [ADD-ARGS...]: a store in DIR/store, named as WHERE (absolute|relative)
	local d=$1 where=$2
	shift 2
	mkdir -p "$d/mnt"
	(
		cd "$d" || exit 1
		s=store
		[ "$where" = absolute ] && s=$d/store
		"$COWROOT" --store "$s" init &&
			"$COWROOT" --store "$s" image import img "$src" &&
			"$COWROOT" --store "$s" client add c1 --image img "$@"
	) >"$d/setup" 2>&1 || { note <"$d/setup"; return 1; }
	find "$(realpath "$d/store")" >"$d/before"
}

# ---- FUSE: fsync, fdatasync and fsync of a directory through a mount, the
# daemon in the background as it runs in production (it leaves its cwd)
rounds=12
fuse_acks=$((rounds + 2 * ((rounds + 2) / 3) + 2))
fuse_run() { # WHERE
	local where=$1 d=$tmp/fuse-$1 s
	setup_store "$d" "$where" || { bad "fuse, $where store: setup"; return; }
	s=store
	[ "$where" = absolute ] && s=$d/store
	(cd "$d" && traced "$d/trace" "$COWROOT" --store "$s" mount c1 "$d/mnt"
		echo "$tracer" >"$d/tracer"; wait "$tracer") &
	local sub=$!
	for _ in $(seq 1 300); do
		mountpoint -q "$d/mnt" && break
		kill -0 "$sub" 2>/dev/null || break
		sleep 0.1
	done
	if ! mountpoint -q "$d/mnt"; then
		wait "$sub"
		grep -v '^[0-9]' "$d/trace" | note
		bad "fuse, $where store: mount"
		return
	fi
	background >"$d/bg"
	[ -s "$d/bg" ] || bad "fuse, $where store: no flusher thread (cowroot-flush) found in the daemon"
	"$COW_SYNCWRITER" "$d/mnt" sync "$rounds" base/cu/c1 etc/hostname >"$d/acks" 2>"$d/writer" ||
		{ note <"$d/writer"; bad "fuse, $where store: the client's syncs"; }
	fusermount3 -u "$d/mnt" || bad "fuse, $where store: unmount"
	tracer=$sub
	wait_tracer 60 || { bad "fuse, $where store: the daemon did not exit after the unmount"; return; }
	judge "fuse, $where store" "$d" "$fuse_acks"
}

fuse_run absolute
fuse_run relative

# ---- NFS: WRITE and COMMIT (v3, libnfs) through `cowroot serve`, ganesha
# with the COWROOT FSAL traced as the server
commits=12
nfs_run() { # WHERE
	local where=$1 d=$tmp/nfs-$1 s
	setup_store "$d" "$where" --ip 127.0.0.2 || { bad "nfs, $where store: setup"; return; }
	s=store
	[ "$where" = absolute ] && s=$d/store
	(cd "$d" && traced "$d/trace" "$COWROOT" --store "$s" serve --foreground --fsal "$COW_FSAL" \
		--no-grace --server 192.0.2.1 >"$d/serve.out" 2>"$d/serve.err"
		echo "$tracer" >"$d/tracer"; wait "$tracer") &
	local sub=$!
	for _ in $(seq 1 600); do
		grep -q '^serving store' "$d/serve.out" 2>/dev/null && break
		kill -0 "$sub" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q '^serving store' "$d/serve.out" 2>/dev/null; then
		tail -n 20 "$d/serve.err" | note
		bad "nfs, $where store: cowroot serve did not come up"
		kill -9 "$sub" 2>/dev/null
		return
	fi
	timeout 300 "$COW_NFSCLIENT" 127.0.0.2 /clients/c1 3 commits /sync "$commits" >"$d/acks" 2>"$d/client" ||
		{ note <"$d/client"; bad "nfs, $where store: the client's writes and commits"; }
	background >"$d/bg"
	[ -s "$d/bg" ] || bad "nfs, $where store: no flusher thread (cowroot-flush) found in ganesha"
	# stop serve (strace's child), which stops ganesha; strace then ends
	local st serve
	st=$(cat "$d/tracer")
	read -r serve _ <"/proc/$st/task/$st/children"
	[ -n "$serve" ] && kill "$serve"
	tracer=$sub
	wait_tracer 60 || { bad "nfs, $where store: cowroot serve did not stop"; return; }
	judge "nfs, $where store" "$d" "$commits"
}

if [ -z "${COW_NFSCLIENT:-}" ] || [ -z "${COW_FSAL:-}" ]; then
	echo "# NFS half skipped: the nfs suite's client or the FSAL is not built (libnfs-dev, -Dfsal=enabled)"
elif ! command -v ganesha.nfsd >/dev/null || ! command -v rpcbind >/dev/null; then
	echo "# NFS half skipped: ganesha.nfsd or rpcbind is missing (apt-get install nfs-ganesha rpcbind)"
else
	ip link set lo up && ip addr add 127.0.0.2/32 dev lo &&
		mount -t tmpfs -o mode=0755 cowroot-powerloss-run /run && mkdir -p /run/rpcbind ||
		{ bad "nfs: private loopback and /run"; }
	chown _rpc /run/rpcbind 2>/dev/null || true
	nfs_run absolute
	nfs_run relative
fi

finish
