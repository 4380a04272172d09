# shellcheck shell=bash
# shellcheck disable=SC2154 # $store, $tmp, $mnt and $serve_pid are the sourcing test's
# Sourced by the netboot tests, after tests/checks.sh and with skip()
# defined: the checks of the outer run, the kit, the re-execution under
# unshare and, inside, the private /run and `cowroot serve`.

# netboot_outer_checks: $COWROOT and $COW_FSAL name built files; root and
# what every netboot test uses (unshare, ip, rpcbind, ganesha, FUSE) are
# there (else skip, naming what is missing).
netboot_outer_checks() {
	local v
	for v in COWROOT COW_FSAL; do
		if [ -z "${!v:-}" ] || [ ! -e "${!v}" ]; then
			echo "FAIL: \$$v is not set to a built file ('${!v:-}')" >&2
			exit 1
		fi
	done
	[ "$(id -u)" = 0 ] || skip "needs root (network namespace, ganesha, rpcbind, FUSE)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	command -v ip >/dev/null || skip "ip is missing (install iproute2)"
	command -v rpcbind >/dev/null || skip "rpcbind is missing (install rpcbind)"
	command -v ganesha.nfsd >/dev/null || skip "ganesha.nfsd is missing (install nfs-ganesha)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || skip "no fusermount3 (install fuse3)"
}

# netboot_kit SCRIPT WHAT: run the kit script (its last line is the kit's
# directory, exported as COW_KIT); exit 77 or fail as it says.
netboot_kit() {
	local out rc
	out=$("$1")
	rc=$?
	printf '%s\n' "$out" | sed '$d'
	COW_KIT=$(printf '%s\n' "$out" | tail -n 1)
	case $rc in
	0) export COW_KIT ;;
	77) echo "$COW_KIT"; exit 77 ;;
	*) echo "$COW_KIT"; echo "FAIL: cannot build $2"; echo "0 passed, 1 failed"; exit 1 ;;
	esac
}

# netboot_reexec ARGS...: run this test again ($0) in private network,
# mount and pid namespaces, with COW_NETBOOT_INNER=1; does not return.
netboot_reexec() {
	export COW_NETBOOT_INNER=1
	# shellcheck disable=SC2093 # the skip below runs only if exec itself fails
	exec unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
	skip "cannot create private network/mount/pid namespaces with unshare"
}

# netboot_inner_setup: in the namespaces, loopback up and a private /run
# (rpcbind's lock and socket there must not meet a host rpcbind)
netboot_inner_setup() {
	ip link set lo up || skip "cannot bring up loopback in the network namespace"
	mount -t tmpfs -o mode=0755 cowroot-netboot-run /run || skip "cannot mount a tmpfs on /run"
	mkdir -p /run/rpcbind
	chown _rpc /run/rpcbind 2>/dev/null || true
}

# start_server ARGS...: `cowroot serve --foreground` of $store with ganesha
# on $COW_FSAL and ARGS, in the background ($serve_pid), up when it says so
# (its stdout in $tmp/serve.out, stderr appended to $tmp/serve.err).  Not
# through cow(): $! must be the server itself, to stop it by PID.
start_server() {
	"$COWROOT" --store "$store" serve --foreground --fsal "$COW_FSAL" --no-grace "$@" \
		>"$tmp/serve.out" 2>>"$tmp/serve.err" &
	serve_pid=$!
	for _ in $(seq 300); do
		grep -q '^serving store' "$tmp/serve.out" && return 0
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
	bad "cowroot serve did not come up: $(tail -n 8 "$tmp/serve.err" | tr '\n' ' ')"
	return 1
}
# stop_server: SIGTERM by PID; ok when it exits 0
stop_server() {
	kill "$serve_pid" && wait "$serve_pid"
	local rc=$?
	serve_pid=
	[ "$rc" = 0 ] && return 0
	bad "cowroot serve exited with status $rc: $(tail -n 5 "$tmp/serve.err" | tr '\n' ' ')"
	return 1
}

# netboot_cleanup_common: the end of each test's cleanup: stop the server
# by PID, unmount $mnt if still mounted, keep $tmp with COW_KEEP=1 (saying
# where) or remove it
netboot_cleanup_common() {
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u -z "$mnt"
	if [ "${COW_KEEP:-0}" = 1 ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
