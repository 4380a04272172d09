#!/bin/bash
# nfs: serve cowroot clients with `cowroot serve` (nfs-ganesha + the COWROOT
# FSAL) and check them with libnfs clients.
#
# Env: COWROOT        path of the built cowroot CLI
#      COW_NFSCLIENT  path of the built nfsclient (tests/nfs/nfsclient.c)
#      COW_FSAL       path of the built libfsalcowroot.so
#      COW_KEEP=1     keep the temp dir (store, logs) for inspection
#
# Runs in private network, mount and pid namespaces (it re-executes itself
# under unshare): loopback only, with 127.0.0.2 and 127.0.0.3 standing for
# two client machines (a connection to an address on lo comes from that
# address) and 127.0.0.4 for a stranger.  Prints "ok NAME" / "FAIL NAME:
# reason" and ends with "N passed, N failed"; exit 0 if all passed, 1 on
# any failure, 77 when the machine lacks a facility.
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_NFS_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "needs root (network namespace, ganesha, rpcbind)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	command -v ip >/dev/null || skip "ip is missing (install iproute2)"
	command -v rpcbind >/dev/null || skip "rpcbind is missing (install rpcbind)"
	command -v ganesha.nfsd >/dev/null || skip "ganesha.nfsd is missing (install nfs-ganesha)"
	command -v nfs-cp >/dev/null || skip "nfs-cp is missing (install libnfs-utils)"
	for v in COWROOT COW_NFSCLIENT COW_FSAL; do
		if [ -z "${!v:-}" ] || [ ! -e "${!v}" ]; then
			echo "FAIL: \$$v is not set to a built file ('${!v:-}')" >&2
			exit 1
		fi
	done
	export COW_NFS_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
	skip "cannot create private network/mount/pid namespaces with unshare"
fi

# ---- inside the namespaces ---------------------------------------------------------------------

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

ip link set lo up || skip "cannot bring up loopback in the network namespace"
# a private /run: rpcbind's lock and socket there must not meet a host rpcbind
mount -t tmpfs -o mode=0755 cowroot-nfs-run /run || skip "cannot mount a tmpfs on /run"
mkdir -p /run/rpcbind
chown _rpc /run/rpcbind 2>/dev/null || true
for a in 2 3 4; do
	ip addr add "127.0.0.$a/32" dev lo || skip "cannot add 127.0.0.$a to loopback"
done

tmp=$(mktemp -d /tmp/cowroot-nfs.XXXXXX)
serve_pid=
cleanup() {
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	if [ "${COW_KEEP:-0}" = 1 ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

store=$tmp/store
cow() { "$COWROOT" --store "$store" "$@"; }
nc() { timeout 300 "$COW_NFSCLIENT" "$@"; } # SERVER EXPORT VERS CMD ARGS

# ---- fixture: an image and two clients ----
fix=$tmp/fixture
mkdir -p "$fix/etc" "$fix/bin" "$fix/usr/share"
printf 'hello\n' >"$fix/etc/hostname"
printf 'image data\n' >"$fix/bin/tool"
head -c 3000000 /dev/urandom >"$fix/usr/share/blob"
ln -s ../etc/hostname "$fix/link"
cow init >/dev/null || exit 1
cow image import base "$fix" >/dev/null || exit 1
cow client add pi1 --image base --ip 127.0.0.2 >/dev/null || exit 1
cow client add pi2 --image base --ip 127.0.0.3 >/dev/null || exit 1

# start_server: run `cowroot serve` in the foreground in the background and
# wait until it says it serves.
start_server() {
	: >"$tmp/serve.out"
	"$COWROOT" --store "$store" serve --foreground --fsal "$COW_FSAL" --no-grace --server 192.0.2.1 \
		>"$tmp/serve.out" 2>>"$tmp/serve.err" &
	serve_pid=$!
	for _ in $(seq 300); do
		grep -q '^serving store' "$tmp/serve.out" && return 0
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "cowroot serve did not start:" >&2
	tail -n 20 "$tmp/serve.err" >&2
	return 1
}
# start_holder NAME PATH TEXT: a client that opens PATH of pi1, checks TEXT
# and waits (on fd 9, a fifo) to read again through the same handle; its
# pid in $holder, its output in $tmp/NAME.out.
start_holder() {
	mkfifo "$tmp/$1.go"
	timeout 300 "$COW_NFSCLIENT" 127.0.0.2 /clients/pi1 3 hold "$2" "$3" <"$tmp/$1.go" >"$tmp/$1.out" 2>&1 &
	holder=$!
	exec 9>"$tmp/$1.go"
	for _ in $(seq 100); do
		grep -q '^ready' "$tmp/$1.out" && break
		sleep 0.1
	done
}
# release_holder: let it read again and wait for its verdict
release_holder() {
	echo go >&9
	exec 9>&-
	wait "$holder"
}

stop_server() {
	[ -n "$serve_pid" ] || return 1
	kill "$serve_pid"
	wait "$serve_pid"
	local rc=$?
	serve_pid=
	return $rc
}

if ! start_server; then
	bad "start: cowroot serve did not come up ($(tail -n 5 "$tmp/serve.err" | tr '\n' ' '))"
	echo "$passed passed, $failed failed"
	exit 1
fi
ok "start"

t_nfsroot_lines() {
	grep -q '^pi1 (127.0.0.2): root=/dev/nfs nfsroot=192.0.2.1:/clients/pi1,vers=3,tcp rw ip=dhcp$' \
		"$tmp/serve.out" || { cat "$tmp/serve.out"; return 1; }
	grep -q '^pi2 (127.0.0.3): root=/dev/nfs nfsroot=192.0.2.1:/clients/pi2,vers=3,tcp rw ip=dhcp$' "$tmp/serve.out"
}
check "serve prints the nfsroot line of each client" t_nfsroot_lines

t_netboot() {
	command -v mkimage >/dev/null || { echo "mkimage is missing (install u-boot-tools)"; return 1; }
	cow netboot pi1 --tftp-dir "$tmp/tftp" --server 192.0.2.1 >/dev/null || return 1
	grep -q 'nfsroot=192.0.2.1:/clients/pi1,vers=3,tcp rw ip=dhcp' "$tmp/tftp/pi1/boot.cmd" || return 1
	mkimage -l "$tmp/tftp/pi1/boot.scr" | grep -q 'Script' || return 1
	if cow netboot nosuch --tftp-dir "$tmp/tftp" --server 192.0.2.1 2>/dev/null; then
		echo "netboot of an unknown client succeeded"
		return 1
	fi
}
check "netboot writes the client's u-boot script" t_netboot

check "v3 read of an image file" nc 127.0.0.2 /clients/pi1 3 read /etc/hostname $'hello\n'
check "v4 read of an image file" nc 127.0.0.2 /clients/pi1 4 read /bin/tool $'image data\n'
check "v3 semantics (create, write, rename, link, symlink, mknod, setattr, 5000-entry readdir)" \
	nc 127.0.0.2 /clients/pi1 3 semantics /sem
check "v4 semantics (the same through NFSv4 opens, writes and closes)" nc 127.0.0.3 /clients/pi2 4 semantics /sem4

t_big_files() {
	nfs-cat "nfs://127.0.0.2/clients/pi1/usr/share/blob?version=3" >"$tmp/blob3" &&
		cmp "$fix/usr/share/blob" "$tmp/blob3" || return 1
	nfs-cat "nfs://127.0.0.2/clients/pi1/usr/share/blob?version=4" >"$tmp/blob4" &&
		cmp "$fix/usr/share/blob" "$tmp/blob4" || return 1
	head -c 5000000 /dev/urandom >"$tmp/up"
	nfs-cp "$tmp/up" "nfs://127.0.0.2/clients/pi1/upload?version=3" >/dev/null || return 1
	nfs-cat "nfs://127.0.0.2/clients/pi1/upload?version=3" >"$tmp/up3" && cmp "$tmp/up" "$tmp/up3" || return 1
	nfs-cat "nfs://127.0.0.2/clients/pi1/upload?version=4" >"$tmp/up4" && cmp "$tmp/up" "$tmp/up4"
}
check "multi-megabyte files: image read (v3, v4), v3 write read back (v3, v4)" t_big_files

t_overwrite_image_file() {
	nc 127.0.0.2 /clients/pi1 3 write /etc/hostname $'pi1\n' &&
		nc 127.0.0.2 /clients/pi1 4 read /etc/hostname $'pi1\n' &&
		nc 127.0.0.3 /clients/pi2 3 read /etc/hostname $'hello\n'
}
check "a client's write to an image file stays in its layer" t_overwrite_image_file

t_isolation() {
	nc 127.0.0.2 /clients/pi1 3 write /secret "pi1 only" || return 1
	nc 127.0.0.3 /clients/pi2 3 absent /secret || return 1
	nc 127.0.0.3 /clients/pi2 4 absent /secret || return 1
	if nc 127.0.0.3 /clients/pi1 3 mount 2>/dev/null; then
		echo "pi2's address mounted pi1's export (v3)"
		return 1
	fi
	if nc 127.0.0.3 /clients/pi1 4 read /secret "pi1 only" 2>/dev/null; then
		echo "pi2's address read pi1's file (v4)"
		return 1
	fi
	for e in pi1 pi2; do
		if nc 127.0.0.4 /clients/$e 3 mount 2>/dev/null; then
			echo "a stranger's address mounted $e's export"
			return 1
		fi
	done
}
check "clients are isolated; a third address is denied" t_isolation

t_forged_handles() {
	local h1 h2 forged st
	h1=$(nc 127.0.0.2 /clients/pi1 3 handle /bin/tool) || return 1
	h2=$(nc 127.0.0.3 /clients/pi2 3 handle /bin/tool) || return 1
	st=$(nc 127.0.0.2 /clients/pi1 3 getattr-handle "$h1") || return 1
	[ "$st" = 0 ] || { echo "pi1's own handle gave status $st"; return 1; }
	# ganesha's v3 handle: 5 header bytes (export id at 2-3), then ours:
	# version, 3 zero bytes, client id (8), ino (8).  Put pi2's client id
	# into pi1's handle: same export, same ino, another client.
	forged=${h1:0:18}${h2:18:16}${h1:34}
	[ "$forged" != "$h1" ] || { echo "the two clients' handles do not differ"; return 1; }
	st=$(nc 127.0.0.2 /clients/pi1 3 getattr-handle "$forged") || return 1
	[ "$st" != 0 ] || { echo "a handle with another client's id was accepted"; return 1; }
	st=$(nc 127.0.0.2 /clients/pi1 3 getattr-handle "$h2") || return 1
	[ "$st" != 0 ] || { echo "pi2's handle was accepted from pi1's address"; return 1; }
}
check "handles of another client or export are rejected" t_forged_handles

t_bad_names() {
	local st name long
	long=$(printf 'n%.0s' $(seq 256))
	for name in "a/b" ".." "." "$long"; do
		st=$(nc 127.0.0.2 /clients/pi1 3 create-raw /etc "$name") || return 1
		[ "$st" != 0 ] || { echo "CREATE of '${name:0:20}' (${#name} bytes) succeeded"; return 1; }
	done
	nc 127.0.0.2 /clients/pi1 3 absent /etc/a || return 1
	st=$(nc 127.0.0.2 /clients/pi1 3 create-raw /etc "${long:1}") || return 1
	[ "$st" = 0 ] || { echo "CREATE of a 255-byte name gave status $st"; return 1; }
}
check "names with '/', '.', '..' or over 255 bytes are refused" t_bad_names

t_concurrent() {
	local pids=() i rc=0
	for i in 1 2 3 4; do
		nc 127.0.0.2 /clients/pi1 3 churn "/churn$i" 40 &
		pids+=($!)
		nc 127.0.0.3 /clients/pi2 3 churn "/churn$i" 40 &
		pids+=($!)
	done
	nc 127.0.0.2 /clients/pi1 4 read /bin/tool $'image data\n' &
	pids+=($!)
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	return $rc
}
check "8 concurrent clients writing, reading, renaming" t_concurrent

t_add_while_serving() {
	cow client add pi3 --image base --ip 127.0.0.4 | grep -q 'told the server' || return 1
	for _ in $(seq 100); do
		nc 127.0.0.4 /clients/pi3 3 read /etc/hostname $'hello\n' 2>/dev/null && break
		sleep 0.1
	done
	nc 127.0.0.4 /clients/pi3 3 read /etc/hostname $'hello\n' || return 1
	nc 127.0.0.2 /clients/pi1 3 read /secret "pi1 only" || return 1
	if nc 127.0.0.4 /clients/pi1 3 mount 2>/dev/null; then
		echo "pi3's address mounted pi1's export"
		return 1
	fi
}
check "a client added while serving is served (SIGHUP reload)" t_add_while_serving

t_rm_while_serving() {
	cow client rm pi3 >/dev/null || return 1
	for _ in $(seq 100); do
		nc 127.0.0.4 /clients/pi3 3 mount 2>/dev/null || break
		sleep 0.1
	done
	if nc 127.0.0.4 /clients/pi3 3 mount 2>/dev/null; then
		echo "a removed client's export is still served"
		return 1
	fi
	nc 127.0.0.2 /clients/pi1 3 read /secret "pi1 only" && nc 127.0.0.3 /clients/pi2 3 read /bin/tool $'image data\n'
}
check "a client removed while serving is no longer served, others are" t_rm_while_serving

t_reset_while_served() {
	local holder
	nc 127.0.0.2 /clients/pi1 3 write /resetme "made before the reset" || return 1
	nc 127.0.0.2 /clients/pi1 3 read /etc/hostname $'pi1\n' || return 1
	nc 127.0.0.2 /clients/pi1 4 read /resetme "made before the reset" || return 1
	# an open handle of an image file must survive the reset
	start_holder reset-hold /bin/tool $'image data\n'
	cow client reset pi1 || { release_holder; return 1; }
	release_holder || { grep -v '^libnfs' "$tmp/reset-hold.out"; return 1; }
	# the fresh image, nothing cached from the old layer (v3 and v4)
	nc 127.0.0.2 /clients/pi1 3 read /etc/hostname $'hello\n' || return 1
	nc 127.0.0.2 /clients/pi1 4 read /etc/hostname $'hello\n' || return 1
	nc 127.0.0.2 /clients/pi1 3 absent /resetme || return 1
	nc 127.0.0.2 /clients/pi1 4 absent /resetme || return 1
	nc 127.0.0.2 /clients/pi1 3 absent /secret || return 1
	# the client keeps working, the other client was not touched
	nc 127.0.0.2 /clients/pi1 3 write /after "written after the reset" || return 1
	nc 127.0.0.2 /clients/pi1 4 read /after "written after the reset" || return 1
	nc 127.0.0.3 /clients/pi2 3 read /etc/hostname $'hello\n' || return 1
	nc 127.0.0.3 /clients/pi2 3 absent /resetme || return 1
	nc 127.0.0.3 /clients/pi2 3 churn /churn1 2
}
check "reset while served: the client sees its image again, nothing stale" t_reset_while_served

# ---- what the pynfs conformance suite found (README, Conformance) ----

# ganesha_alive: the ganesha of `cowroot serve` is still running
ganesha_alive() {
	kill -0 "$(cat "$store/run/ganesha.pid")" 2>/dev/null || { echo "ganesha.nfsd is dead"; return 1; }
}

# pynfs LKT1, LKT3, LKT5, LKU1: a LOCKT that finds no conflict made the FSAL
# open a temporary fd into a NULL pointer (SIGSEGV)
t_lockt() {
	nc 127.0.0.2 /clients/pi1 4 write /locked "lock me" || return 1
	nc 127.0.0.2 /clients/pi1 4 lock-test /locked || { ganesha_alive; return 1; }
	nc 127.0.0.2 /clients/pi1 4 lock-test /bin/tool || { ganesha_alive; return 1; }
	ganesha_alive && nc 127.0.0.2 /clients/pi1 4 read /locked "lock me"
}
check "LOCKT with no conflicting lock answers and the server lives (v4)" t_lockt

# pynfs OPEN2, WRT1, WRT2: the size in a create's attributes was ignored
t_create_size() {
	nc 127.0.0.2 /clients/pi1 3 create-size /etc sized 32 || return 1
	nc 127.0.0.2 /clients/pi1 3 create-size / sized-big 3000000 || return 1
	nc 127.0.0.3 /clients/pi2 3 absent /etc/sized
}
check "a create with a size in its attributes makes a file of that size" t_create_size

# pynfs SATT12x: a size past off_t is too big (EFBIG), not invalid (EINVAL)
check "a size of 2^64-1 is refused with EFBIG, the file unchanged" nc 127.0.0.2 /clients/pi1 3 truncate-max /etc/hostname

# ---- restarts (the server is started and stopped here, in this shell:
# a check's subshell cannot wait for it) ----

nc 127.0.0.2 /clients/pi1 3 write /persist "kept across restarts" >"$tmp/persist.err" 2>&1
ino=$(nc 127.0.0.2 /clients/pi1 3 ino /persist 2>>"$tmp/persist.err")
start_holder hold /persist "kept across restarts"
stop_server
restart_stop_rc=$?
start_server
restart_start_rc=$?
release_holder
holder_rc=$?

t_restart_handles() {
	[ -n "$ino" ] || { cat "$tmp/persist.err"; return 1; }
	grep -q "^ready $ino\$" "$tmp/hold.out" || { cat "$tmp/hold.out"; return 1; }
	[ "$restart_stop_rc" = 0 ] || { echo "cowroot serve exited $restart_stop_rc on SIGTERM"; return 1; }
	[ "$restart_start_rc" = 0 ] || { echo "cowroot serve did not start again"; return 1; }
	[ "$holder_rc" = 0 ] || { grep -v '^libnfs' "$tmp/hold.out"; return 1; }
	local out
	out=$(nc 127.0.0.2 /clients/pi1 3 ino /persist) || return 1
	[ "$out" = "$ino" ] || { echo "inode number $ino became $out"; return 1; }
	nc 127.0.0.2 /clients/pi1 4 read /persist "kept across restarts"
}
check "an open handle keeps working across a server restart, same inode number" t_restart_handles

nc 127.0.0.2 /clients/pi1 3 write /durable "committed before the crash" >"$tmp/durable.err" 2>&1
durable_rc=$?
kill -9 "$(cat "$store/run/ganesha.pid")"
# serve notices ganesha's death, stops rpcbind and exits non-zero
wait "$serve_pid"
crash_serve_rc=$?
serve_pid=
start_server
crash_start_rc=$?

t_commit_durable() {
	[ "$durable_rc" = 0 ] || { cat "$tmp/durable.err"; return 1; }
	[ "$crash_serve_rc" != 0 ] || { echo "cowroot serve exited 0 after ganesha was killed"; return 1; }
	[ "$crash_start_rc" = 0 ] || { echo "cowroot serve did not start again"; return 1; }
	nc 127.0.0.2 /clients/pi1 3 read /durable "committed before the crash" &&
		nc 127.0.0.2 /clients/pi1 3 read /persist "kept across restarts"
}
check "COMMITted data survives kill -9 of ganesha" t_commit_durable

stop_server
final_stop_rc=$?
t_stop_cleans_up() {
	[ "$final_stop_rc" = 0 ] || { echo "cowroot serve exited $final_stop_rc on SIGTERM"; return 1; }
	if pgrep -x ganesha.nfsd >/dev/null || pgrep -x rpcbind >/dev/null; then
		echo "ganesha.nfsd or rpcbind still runs after cowroot serve stopped"
		return 1
	fi
	[ ! -e "$store/run/serve.pid" ] || { echo "serve.pid left behind"; return 1; }
}
check "stopping cowroot serve stops ganesha and rpcbind" t_stop_cleans_up

# ---- a store with no client yet: ganesha loads the FSAL only with the
# first export that uses it, so serve must not wait for the FSAL ----
store=$tmp/store-empty
cow init >/dev/null && cow image import base "$fix" >/dev/null
start_server
empty_start_rc=$?
t_serve_empty() {
	[ "$empty_start_rc" = 0 ] || { echo "cowroot serve did not start with no client"; return 1; }
	cow client add pi5 --image base --ip 127.0.0.2 | grep -q 'told the server' || return 1
	for _ in $(seq 100); do
		nc 127.0.0.2 /clients/pi5 3 read /etc/hostname $'hello\n' 2>/dev/null && break
		sleep 0.1
	done
	nc 127.0.0.2 /clients/pi5 3 write /etc/hostname $'pi5\n' || return 1
	# the FSAL, loaded by the reload, answers the CLI's live reset
	cow client reset pi5 || return 1
	nc 127.0.0.2 /clients/pi5 3 read /etc/hostname $'hello\n'
}
check "serve starts with no client; the first client added is served and reset live" t_serve_empty
stop_server

finish
