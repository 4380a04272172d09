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
# address), 127.0.0.4 for a stranger and 127.0.0.5 for the quota test's
# client.  Prints "ok NAME" / "FAIL NAME: reason" and ends with "N passed,
# N failed"; exit 0 if all passed, 1 on any failure, 77 when the machine
# lacks a facility.
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
for a in 2 3 4 5; do
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
# what a write or truncate by a user takes away (t_kill_privs)
mkdir -p "$fix/priv"
for f in suid trunc rootw keep sgid sgid-noexec sgid-noexec-grp; do printf 'priv\n' >"$fix/priv/$f"; done
chmod 04777 "$fix/priv/suid" "$fix/priv/trunc" "$fix/priv/rootw" "$fix/priv/keep"
chmod 02777 "$fix/priv/sgid"
chmod 02766 "$fix/priv/sgid-noexec" "$fix/priv/sgid-noexec-grp"
chgrp 1000 "$fix/priv/sgid-noexec-grp"
have_setcap=0
if command -v setcap >/dev/null && setcap cap_net_raw+ep "$fix/priv/suid" 2>/dev/null; then
	setcap cap_net_raw+ep "$fix/priv/trunc" && setcap cap_net_raw+ep "$fix/priv/rootw" &&
		setcap cap_net_raw+ep "$fix/priv/keep" && have_setcap=1
fi
cow init >/dev/null || exit 1
cow image import base "$fix" >/dev/null || exit 1
cow client add pi1 --image base --ip 127.0.0.2 >/dev/null || exit 1
cow client add pi2 --image base --ip 127.0.0.3 >/dev/null || exit 1
# pi2 stands for a client added before schema 3: generation 0, given the
# version 1 handles (without a generation) that servers gave before
sql() { sqlite3 -cmd ".timeout 10000" "$store/cowroot.db" "$@"; }
have_sqlite=0
if command -v sqlite3 >/dev/null; then
	have_sqlite=1
	sql "UPDATE clients SET gen = 0 WHERE name = 'pi2'" || exit 1
fi

# start_server: run `cowroot serve` in the foreground in the background
# (with --fsal "$COW_FSAL") and wait until it says it serves.
start_server() {
	start_serve --fsal "$COW_FSAL" || {
		echo "cowroot serve did not start:" >&2
		tail -n 20 "$tmp/serve.err" >&2
		return 1
	}
}
# start_serve ARGS...: the same with these options instead of --fsal
start_serve() {
	: >"$tmp/serve.out"
	"$COWROOT" --store "$store" serve --foreground --no-grace --server 192.0.2.1 --boot-gap 2 "$@" \
		>"$tmp/serve.out" 2>>"$tmp/serve.err" &
	serve_pid=$!
	for _ in $(seq 300); do
		grep -q '^serving store' "$tmp/serve.out" && return 0
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
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

# the boot files: serve runs the TFTP server itself, on port 69
t_serve_tftp() {
	command -v curl >/dev/null || { echo "curl is missing (tools/setup-deps.sh installs it)"; return 1; }
	grep -q "boot files over TFTP (port 69)" "$tmp/serve.out" || { cat "$tmp/serve.out"; return 1; }
	cow client set pi1 --serial 0000c0de >/dev/null || return 1
	curl -sS --interface 127.0.0.2 tftp://127.0.0.1/netboot-0000c0de.scr -o "$tmp/pi1.scr" || return 1
	mkimage -l "$tmp/pi1.scr" | grep -q Script && grep -aq "cowroot: client pi1" "$tmp/pi1.scr" || return 1
	grep -q "pi1 'netboot-0000c0de.scr': sent" "$tmp/serve.err" || { tail "$tmp/serve.err"; return 1; }
	if curl -sS --interface 127.0.0.3 tftp://127.0.0.1/netboot-0000c0de.scr -o "$tmp/x.scr" 2>/dev/null; then
		echo "pi1's script was served to pi2's address"
		return 1
	fi
}
check "serve serves each client's u-boot script over TFTP on port 69, to its own address only" t_serve_tftp

t_nfsroot_lines() {
	grep -q '^pi1 (127.0.0.2): root=/dev/nfs nfsroot=192.0.2.1:/clients/pi1,vers=3,tcp rw ip=dhcp boot=nfs$' \
		"$tmp/serve.out" || { cat "$tmp/serve.out"; return 1; }
	grep -q '^pi2 (127.0.0.3): root=/dev/nfs nfsroot=192.0.2.1:/clients/pi2,vers=3,tcp rw ip=dhcp boot=nfs$' "$tmp/serve.out"
}
check "serve prints the nfsroot line of each client" t_nfsroot_lines

# --ip is parsed as strictly as ganesha reads it: a bad list is refused,
# naming its item, and changes nothing
t_ip_strict() {
	local ip
	for ip in '127.0.0.9/ 8' $'127.0.0.9\n' '127.0.0.9/+32' '127.0.0.9/032' '127.0.0.0/0' '0.0.0.0' \
		'127.0.0.9/33' 'fd00::/128' '127.0.0.9,' '127.0.0.8,127.0.0.9/ 8'; do
		if cow client add bad1 --image base --ip "$ip" >/dev/null 2>"$tmp/ip.err"; then
			echo "client add took --ip $(printf '%q' "$ip")"
			return 1
		fi
		grep -q "invalid --ip item" "$tmp/ip.err" || { cat "$tmp/ip.err"; return 1; }
		if cow client set pi2 --ip "$ip" >/dev/null 2>&1; then
			echo "client set took --ip $(printf '%q' "$ip")"
			return 1
		fi
	done
	grep -q "item '127.0.0.9/ 8'" "$tmp/ip.err" || { cat "$tmp/ip.err"; return 1; }
	if cow client list | grep -q '^bad1 '; then
		echo "a refused client add left a client"
		return 1
	fi
	nc 127.0.0.3 /clients/pi2 3 read /bin/tool $'image data\n'
}
check "a malformed --ip is refused naming its item, nothing changed" t_ip_strict

# as_nobody CMD...: CMD as an unprivileged user, whose sockets get source
# ports above 1023 (libnfs run as root binds a reserved one)
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
t_privileged_port() {
	command -v setpriv >/dev/null || { echo "setpriv is missing (install util-linux)"; return 1; }
	nc 127.0.0.2 /clients/pi1 3 read /bin/tool $'image data\n' || return 1
	local v
	for v in 3 4; do
		if as_nobody timeout 60 "$COW_NFSCLIENT" 127.0.0.2 /clients/pi1 $v read /bin/tool $'image data\n' 2>/dev/null; then
			echo "an NFSv$v client on an unprivileged port read pi1's files"
			return 1
		fi
	done
	grep -q '^[[:space:]]*PrivilegedPort = true;' "$store/run/ganesha.conf" || return 1
}
check "NFS calls from an unprivileged source port are refused" t_privileged_port

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

# le64 N: N as 8 little-endian bytes in hex
le64() {
	local h i out=
	h=$(printf '%016x' "$1")
	for i in 14 12 10 8 6 4 2 0; do out+=${h:$i:2}; done
	printf '%s' "$out"
}

# wait_served ADDR NAME yes|no: until ADDR can (yes) or cannot (no) mount
# /clients/NAME
wait_served() {
	local now
	for _ in $(seq 100); do
		now=no
		nc "$1" "/clients/$2" 3 mount 2>/dev/null && now=yes
		[ "$now" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

t_legacy_handles() {
	[ "$have_sqlite" = 1 ] || { echo "SKIP: the sqlite3 command is missing"; return 0; }
	local h1 h2 ino1 ino2 id1 id2 old st
	h1=$(nc 127.0.0.2 /clients/pi1 3 handle /bin/tool) || return 1
	h2=$(nc 127.0.0.3 /clients/pi2 3 handle /bin/tool) || return 1
	ino1=$(nc 127.0.0.2 /clients/pi1 3 ino /bin/tool) || return 1
	ino2=$(nc 127.0.0.3 /clients/pi2 3 ino /bin/tool) || return 1
	id1=$(sql "SELECT id FROM clients WHERE name = 'pi1'") || return 1
	id2=$(sql "SELECT id FROM clients WHERE name = 'pi2'") || return 1
	# ganesha's header (4 bytes, then our length), ours, padding to 4 bytes:
	# what a server before schema 3 gave pi2, version 1
	old=${h2:0:8}1401000000$(le64 "$id2")$(le64 "$ino2")000000
	[ "$h2" = "$old" ] || { echo "pi2 (generation 0) was given $h2, not the version 1 handle $old"; return 1; }
	st=$(nc 127.0.0.3 /clients/pi2 3 getattr-handle "$old") || return 1
	[ "$st" = 0 ] || { echo "pi2's version 1 handle gave status $st"; return 1; }
	# pi1 has a generation: version 2, and a version 1 handle is refused
	if [ "${h1:10:2}" != 02 ] || [ ${#h1} != 72 ]; then
		echo "pi1 was given $h1, not a version 2 handle"
		return 1
	fi
	old=${h1:0:8}1401000000$(le64 "$id1")$(le64 "$ino1")000000
	st=$(nc 127.0.0.2 /clients/pi1 3 getattr-handle "$old") || return 1
	[ "$st" != 0 ] || { echo "a version 1 handle was accepted by a client with a generation"; return 1; }
}
check "a client from before generations keeps its version 1 handles; others refuse them" t_legacy_handles

t_reused_id() {
	[ "$have_sqlite" = 1 ] || { echo "SKIP: the sqlite3 command is missing"; return 0; }
	local old new id st
	cow client add pi6 --image base --ip 127.0.0.4 >/dev/null || return 1
	wait_served 127.0.0.4 pi6 yes || { echo "pi6 is not served"; return 1; }
	old=$(nc 127.0.0.4 /clients/pi6 3 handle /etc/hostname) || return 1
	id=$(sql "SELECT id FROM clients WHERE name = 'pi6'") || return 1
	cow client rm pi6 >/dev/null || return 1
	wait_served 127.0.0.4 pi6 no || { echo "pi6 is still served"; return 1; }
	# the next client gets pi6's id, as one does once the ids went round
	sql "UPDATE meta SET value = $id WHERE key = 'next_client'" || return 1
	cow client add pi7 --image base --ip 127.0.0.4 >/dev/null || return 1
	[ "$(sql "SELECT id FROM clients WHERE name = 'pi7'")" = "$id" ] || { echo "pi7 did not get pi6's id"; return 1; }
	wait_served 127.0.0.4 pi7 yes || { echo "pi7 is not served"; return 1; }
	new=$(nc 127.0.0.4 /clients/pi7 3 handle /etc/hostname) || return 1
	st=$(nc 127.0.0.4 /clients/pi7 3 getattr-handle "$new") || return 1
	[ "$st" = 0 ] || { echo "pi7's own handle gave status $st"; return 1; }
	[ "${old:4:4}" = "${new:4:4}" ] || { echo "the handles are not of one export: $old $new"; return 1; }
	st=$(nc 127.0.0.4 /clients/pi7 3 getattr-handle "$old") || return 1
	[ "$st" = 70 ] || { echo "removed pi6's handle gave status $st in pi7, which has its id (want 70, stale)"; return 1; }
	nc 127.0.0.4 /clients/pi7 3 read /etc/hostname $'hello\n' || return 1
	cow client rm pi7 >/dev/null
}
check "a removed client's handle is stale in the client that got its id" t_reused_id

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

# on-boot reset: the boot's first TFTP request resets the served layer
t_reset_on_boot() {
	local h st
	cow client set pi1 --on-boot reset >/dev/null || return 1
	nc 127.0.0.2 /clients/pi1 3 write /boot-left "from the last boot" || return 1
	h=$(nc 127.0.0.2 /clients/pi1 3 handle /boot-left) || return 1
	sleep 2.2 # serve --boot-gap 2: the next request begins a boot
	curl -sS --interface 127.0.0.2 tftp://127.0.0.1/netboot-0000c0de.scr -o "$tmp/rb.scr" || return 1
	grep -q "client pi1: a boot began from 127.0.0.2 ('netboot-0000c0de.scr'); its layer was reset" \
		"$tmp/serve.err" || { tail -n 5 "$tmp/serve.err"; return 1; }
	nc 127.0.0.2 /clients/pi1 3 absent /boot-left && nc 127.0.0.2 /clients/pi1 4 absent /boot-left || return 1
	# the new boot's first files must not be reachable through the old boot's handle
	nc 127.0.0.2 /clients/pi1 3 write /new-boot-1 "new" && nc 127.0.0.2 /clients/pi1 3 write /new-boot-2 "new" || return 1
	st=$(nc 127.0.0.2 /clients/pi1 3 getattr-handle "$h") || return 1
	[ "$st" != 0 ] || { echo "the last boot's handle still gives an object"; return 1; }
	# later requests of the same boot reset nothing
	curl -sS --interface 127.0.0.2 tftp://127.0.0.1/netboot-0000c0de.scr -o "$tmp/rb2.scr" || return 1
	nc 127.0.0.2 /clients/pi1 3 read /new-boot-1 "new" || return 1
	[ "$(grep -c "client pi1: a boot began" "$tmp/serve.err")" -ge 2 ] || return 1
	cow client set pi1 --on-boot keep >/dev/null
}
check "--on-boot reset of a served client: a boot's first TFTP request resets it, old names and handles gone" t_reset_on_boot

# who is online: client list asks the running server
t_who_is_online() {
	command -v jq >/dev/null || { echo "jq is missing (tools/setup-deps.sh installs it)"; return 1; }
	local j
	sleep 2.2 # a new boot of pi1, which fetches its kernel
	nc 127.0.0.2 /clients/pi1 3 write /vmlinuz-6.1.0-9-arm64 "kernel" || return 1
	curl -sS --interface 127.0.0.2 tftp://127.0.0.1/netboot-0000c0de.scr -o "$tmp/wo.scr" &&
		curl -sS --interface 127.0.0.2 tftp://127.0.0.1/0000c0de/vmlinuz-6.1.0-9-arm64 -o "$tmp/wo.k" || return 1
	nc 127.0.0.2 /clients/pi1 3 read /vmlinuz-6.1.0-9-arm64 "kernel" || return 1
	j=$(cow client list --json) || return 1
	jq -e '.[] | select(.name == "pi1") | .served and .online and .boot_address == "127.0.0.2" and
		.booted_kernel == "/vmlinuz-6.1.0-9-arm64" and .kernel_version == "6.1.0-9-arm64" and
		(.last_boot | type) == "string" and (.last_nfs | type) == "string" and (.layer_bytes > 0)' \
		<<<"$j" >/dev/null || { echo "$j"; return 1; }
	cow client list | grep -q "^pi1 .* yes .*127.0.0.2 .*/vmlinuz-6.1.0-9-arm64 (6.1.0-9-arm64)" ||
		{ cow client list; return 1; }
	# a client served but never called (ganesha's own calls at its export's load do not count)
	cow client add pi9 --image base --ip 127.0.0.9 >/dev/null || return 1
	for _ in $(seq 100); do
		cow client list --json | jq -e '.[] | select(.name == "pi9") | .served' >/dev/null && break
		sleep 0.2
	done
	cow client list --json | jq -e '.[] | select(.name == "pi9") | .served and (.online | not) and
		.last_nfs == null and .last_boot == null' >/dev/null || { cow client list --json; return 1; }
	cow client rm pi9 >/dev/null || return 1
	# the server's log says who came online
	for _ in $(seq 30); do
		grep -q "serve: client pi1: online (NFS calls)" "$tmp/serve.err" && return 0
		sleep 0.5
	done
	echo "no 'client pi1: online' line in the server's log"
	return 1
}
check "client list: online, last boot, its address and kernel, from the running server; the log says who came" t_who_is_online

# ---- quotas: what a client's layer may hold ----

MiB=1048576
# qstatfs ADDR CLIENT VERS: `statfs /` over NFS into the caller's total,
# free, avail (bytes), files, ffree, favail; the line into $tmp/quota.log
qstatfs() {
	local out
	out=$(nc "$1" "/clients/$2" "$3" statfs /) || return 1
	echo "$2 v$3 statfs: $out" >>"$tmp/quota.log"
	read -r _ total _ free _ avail _ files _ ffree _ favail <<<"$out"
	[ -n "$favail" ] || { echo "statfs said '$out'"; return 1; }
}
# qfill ADDR CLIENT PATH BYTES: nfsclient fill; its exit status in fill_rc,
# the bytes acknowledged in acked, its output in fill_out
qfill() {
	fill_out=$(nc "$1" "/clients/$2" 3 fill "$3" "$4")
	fill_rc=$?
	echo "$2 fill $3 $4: rc $fill_rc: $(tr '\n' ' ' <<<"$fill_out")" >>"$tmp/quota.log"
	acked=$(awk '$1 == "acked" { print $2 }' <<<"$fill_out")
	[ -n "$acked" ] || { echo "fill $3 printed no count: $fill_out"; return 1; }
}
# quota_json CLIENT JQ: JQ holds of CLIENT's entry in `client list --json`
quota_json() {
	local j
	j=$(cow client list --json) || return 1
	jq -e --arg n "$1" ".[] | select(.name == \$n) | $2" <<<"$j" >/dev/null ||
		{ echo "client list --json, not ($2):"; jq -c --arg n "$1" '.[] | select(.name == $n)' <<<"$j"; return 1; }
}

t_quota_steps() {
	local out rc total free avail files ffree favail fill_out fill_rc acked big used
	cow client add q1 --image base --ip 127.0.0.5 >/dev/null || return 1
	wait_served 127.0.0.5 q1 yes || { echo "q1 is not served"; return 1; }
	# set while served: the server applies it at once
	out=$(cow client set q1 --quota 4M) || { echo "$out"; return 1; }
	grep -q "the server serving 'q1' applies it now" <<<"$out" || { echo "client set said: $out"; return 1; }
	quota_json q1 '.served and .quota.bytes == 4194304 and .quota.files == 0' || return 1
	# statfs: the quota is the file system's size, nearly all of it free
	qstatfs 127.0.0.5 q1 3 || return 1
	[ $((total - 4 * MiB)) -le 0 ] && [ $((total - 4 * MiB)) -gt -4096 ] ||
		{ echo "v3 statfs of a 4M quota: total $total"; return 1; }
	[ "$free" -ge $((4 * MiB - 65536)) ] && [ "$free" -le "$total" ] && [ "$avail" -le "$free" ] ||
		{ echo "v3 statfs of an empty 4M layer: free $free, avail $avail of $total"; return 1; }
	qstatfs 127.0.0.5 q1 4 || return 1
	[ $((total - 4 * MiB)) -le 0 ] && [ $((total - 4 * MiB)) -gt -4096 ] ||
		{ echo "v4 statfs of a 4M quota: total $total"; return 1; }

	# 8 MiB into 4M: what fits is acknowledged (the last write short: a
	# 4 KiB file leaves room for no whole number of 64 KiB writes), then DQUOT
	nc 127.0.0.5 /clients/q1 3 write /small "x" || return 1
	qfill 127.0.0.5 q1 /big $((8 * MiB)) || return 1
	[ "$fill_rc" = 3 ] && grep -q '^error NFS3ERR_DQUOT' <<<"$fill_out" ||
		{ echo "8 MiB into a 4M quota (exit $fill_rc): $fill_out"; return 1; }
	[ "$acked" -le $((4 * MiB - 4096)) ] && [ "$acked" -ge $((3 * MiB)) ] ||
		{ echo "8 MiB into a 4M quota holding 4 KiB: $acked bytes acknowledged"; return 1; }
	grep -q '^acked [0-9]* short [1-9]' <<<"$fill_out" || { echo "no short write before DQUOT: $fill_out"; return 1; }
	nc 127.0.0.5 /clients/q1 3 verify /big "$acked" || { echo "the $acked bytes acknowledged do not read back"; return 1; }
	qstatfs 127.0.0.5 q1 3 || return 1
	[ "$free" -le $((4 * MiB - acked)) ] && [ "$avail" -le $((4 * MiB - acked)) ] && [ "$free" -lt "$MiB" ] ||
		{ echo "v3 statfs of a full 4M layer ($acked bytes written): free $free, avail $avail of $total"; return 1; }
	quota_json q1 ".quota.bytes == 4194304 and .quota.used_bytes >= $acked and .quota.used_bytes <= $((4 * MiB)) and
		.quota.used_files >= 1" || return 1
	# a further write fails at once, and what was written stays
	big=$acked
	qfill 127.0.0.5 q1 /more 65536 || return 1
	[ "$fill_rc" = 3 ] && [ "$acked" = 0 ] || { echo "a write into a full quota: $fill_out"; return 1; }
	nc 127.0.0.5 /clients/q1 3 verify /big "$big" || return 1

	# removing the file frees its bytes at once
	nc 127.0.0.5 /clients/q1 3 rm /big && nc 127.0.0.5 /clients/q1 3 rm /more || return 1
	qstatfs 127.0.0.5 q1 3 || return 1
	[ "$free" -ge $((4 * MiB - 65536)) ] || { echo "v3 statfs after removing the file: free $free of $total"; return 1; }
	quota_json q1 '.quota.used_bytes < 65536' || return 1
	qfill 127.0.0.5 q1 /again $((2 * MiB)) || return 1
	[ "$fill_rc" = 0 ] && [ "$acked" = $((2 * MiB)) ] || { echo "2 MiB after the removal: $fill_out"; return 1; }
	nc 127.0.0.5 /clients/q1 3 verify /again $((2 * MiB)) || return 1
	# an open with O_TRUNC of a 3 MB image file, with 2 MB of room: copied up
	# empty, not whole (which the quota would refuse)
	nc 127.0.0.5 /clients/q1 3 write /usr/share/blob "truncated" ||
		{ echo "open(O_CREAT|O_TRUNC) of a 3 MB image file with 2 MB of room failed"; return 1; }
	nc 127.0.0.5 /clients/q1 3 read /usr/share/blob "truncated" || return 1
	nc 127.0.0.3 /clients/pi2 3 stat /usr/share/blob | grep -q " size 3000000 " ||
		{ echo "the image file changed for pi2"; return 1; }

	# another client of the image, with no quota, is not limited
	qfill 127.0.0.3 pi2 /unlimited $((8 * MiB)) || return 1
	[ "$fill_rc" = 0 ] && [ "$acked" = $((8 * MiB)) ] || { echo "pi2, no quota, 8 MiB: $fill_out"; return 1; }
	nc 127.0.0.3 /clients/pi2 3 verify /unlimited $((8 * MiB)) || return 1
	qstatfs 127.0.0.3 pi2 3 || return 1
	[ "$total" -gt $((64 * MiB)) ] || { echo "pi2, no quota: statfs total $total"; return 1; }
	quota_json pi2 '.quota.bytes == 0 and .quota.used_bytes >= 8388608' || return 1

	# objects: room for 5 more than the layer holds (a new directory
	# first: its parent's row is written with it, nothing left to count)
	nc 127.0.0.5 /clients/q1 3 mkdir /qf || return 1
	used=$(cow client list --json | jq -r '.[] | select(.name == "q1") | .quota.used_files') || return 1
	[ "$used" -ge 4 ] || { echo "q1 holds $used objects, with two files and a directory made"; return 1; }
	out=$(cow client set q1 --quota-files $((used + 5))) || { echo "$out"; return 1; }
	grep -q "the server serving 'q1' applies it now" <<<"$out" || { echo "client set said: $out"; return 1; }
	qstatfs 127.0.0.5 q1 3 || return 1
	[ "$files" = $((used + 5)) ] && [ "$ffree" = 5 ] && [ "$favail" = 5 ] ||
		{ echo "v3 statfs of $used objects of $((used + 5)): files $files ffree $ffree favail $favail"; return 1; }
	[ $((total - 4 * MiB)) -le 0 ] && [ $((total - 4 * MiB)) -gt -4096 ] ||
		{ echo "--quota-files changed the 4M quota: total $total"; return 1; }
	out=$(nc 127.0.0.5 /clients/q1 3 creates /qf/f 10)
	rc=$?
	echo "q1 creates /qf/f 10 with $used of $((used + 5)) objects: rc $rc: $(tr '\n' ' ' <<<"$out")" >>"$tmp/quota.log"
	[ "$rc" = 3 ] && grep -q '^created 5$' <<<"$out" && grep -q '^error NFS3ERR_DQUOT' <<<"$out" ||
		{ echo "10 creates with room for 5 (exit $rc): $out"; return 1; }
	nc 127.0.0.5 /clients/q1 3 absent /qf/f5 || return 1
	qstatfs 127.0.0.5 q1 3 || return 1
	[ "$ffree" = 0 ] || { echo "v3 statfs with no object left: ffree $ffree"; return 1; }
	quota_json q1 ".quota.files == $((used + 5)) and .quota.used_files == $((used + 5))" || return 1
	if nc 127.0.0.5 /clients/q1 3 mkdir /qf/d 2>"$tmp/quota.err"; then
		echo "a mkdir past the object quota succeeded"
		return 1
	fi
	grep -q NFS3ERR_DQUOT "$tmp/quota.err" || { cat "$tmp/quota.err"; return 1; }
	# what the layer holds can still be written
	qfill 127.0.0.5 q1 /again $((2 * MiB)) || return 1
	[ "$fill_rc" = 0 ] || { echo "rewriting a file with no object left: $fill_out"; return 1; }
	# a removal frees its object at once
	nc 127.0.0.5 /clients/q1 3 rm /qf/f0 || return 1
	out=$(nc 127.0.0.5 /clients/q1 3 creates /qf/g 3)
	rc=$?
	[ "$rc" = 3 ] && grep -q '^created 1$' <<<"$out" || { echo "3 creates after one removal (exit $rc): $out"; return 1; }

	# lifted while served: 8 MiB and more files fit
	out=$(cow client set q1 --quota none --quota-files none) || { echo "$out"; return 1; }
	grep -q "the server serving 'q1' applies it now" <<<"$out" || { echo "client set said: $out"; return 1; }
	qfill 127.0.0.5 q1 /big $((8 * MiB)) || return 1
	[ "$fill_rc" = 0 ] && [ "$acked" = $((8 * MiB)) ] || { echo "8 MiB with the quota lifted: $fill_out"; return 1; }
	nc 127.0.0.5 /clients/q1 3 verify /big $((8 * MiB)) || return 1
	out=$(nc 127.0.0.5 /clients/q1 3 creates /qf/h 3) || { echo "3 creates with the quota lifted: $out"; return 1; }
	qstatfs 127.0.0.5 q1 3 || return 1
	[ "$total" -gt $((64 * MiB)) ] || { echo "statfs with the quota lifted: total $total"; return 1; }
	quota_json q1 ".served and .quota.bytes == 0 and .quota.files == 0 and
		.quota.used_bytes >= $((10 * MiB)) and .quota.used_files >= $((used + 7))"
}
t_quota() {
	command -v jq >/dev/null || { echo "jq is missing (tools/setup-deps.sh installs it)"; return 1; }
	local rc
	t_quota_steps
	rc=$?
	cow client rm q1 >/dev/null 2>&1
	nc 127.0.0.3 /clients/pi2 3 rm /unlimited 2>/dev/null
	return $rc
}
check "quota of a served client: set live, a write past it is short then DQUOT (v3), statfs shows it, removal frees, objects, lifted live" t_quota

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

# ---- crash recovery: kill -9 of ganesha while a client writes, then one
# serve and stop; the FSAL's first open of the layer recovers it, so fsck
# is clean with no --repair ----
start_server
recover_start_rc=$?
nc 127.0.0.2 /clients/pi1 3 churn /churn 100000 >"$tmp/churn.out" 2>&1 &
churner=$!
sleep 1.5
kill -9 "$(cat "$store/run/ganesha.pid")"
wait "$serve_pid"
serve_pid=
kill "$churner" 2>/dev/null
wait "$churner" 2>/dev/null
# what a crash between writing a new file's data and committing its record
# leaves (a short window, so also left here by hand in pi1's layer)
pi1_layer=$(cow client list --json | jq -r '.[] | select(.name == "pi1") | .layer')
mkdir -p "$store/data/$pi1_layer/f0"
echo leftover >"$store/data/$pi1_layer/f0/0000fffffffffff0"
cow fsck >"$tmp/fsck.crash" 2>&1
start_server
recover_restart_rc=$?
stop_server
recover_stop_rc=$?
cow fsck >"$tmp/fsck.recovered" 2>&1
recover_fsck_rc=$?

t_serve_recovers() {
	[ "$recover_start_rc" = 0 ] && [ "$recover_restart_rc" = 0 ] || { echo "cowroot serve did not start"; return 1; }
	[ "$recover_stop_rc" = 0 ] || { echo "cowroot serve exited $recover_stop_rc on SIGTERM"; return 1; }
	grep -q 'orphan data file' "$tmp/fsck.crash" || { echo "no orphan after the crash:"; cat "$tmp/fsck.crash"; return 1; }
	[ "$recover_fsck_rc" = 0 ] || { cat "$tmp/fsck.recovered"; return 1; }
	[ ! -s "$store/data/$pi1_layer.lock" ] || { echo "pi1's layer not marked clean after the stop"; return 1; }
}
check "after kill -9 of ganesha mid-write, one serve and stop leave a store fsck finds clean" t_serve_recovers

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

# ---- what ganesha cannot load: serve says which client and why, and at
# start fails at once ----

# serve_fails [--with CLI] ARGS...: `cowroot serve ARGS` (in the background
# mode: the command returns once the server is up) must fail within 30 s,
# and no server or ganesha be left; its stderr in $tmp/fail.err
serve_fails() {
	local start=$SECONDS rc cli=$COWROOT
	[ "$1" = --with ] && { cli=$2; shift 2; }
	timeout 60 "$cli" --store "$store" serve --no-grace "$@" >"$tmp/fail.out" 2>"$tmp/fail.err"
	rc=$?
	if [ "$rc" = 0 ]; then
		kill "$(cat "$store/run/serve.pid")"
		sleep 2
		echo "serve $* started"
		return 1
	fi
	[ "$rc" != 124 ] || { echo "serve $* did not return within 60 s"; return 1; }
	[ $((SECONDS - start)) -le 30 ] || { echo "serve $* took $((SECONDS - start)) s to fail"; return 1; }
	! pgrep -x ganesha.nfsd >/dev/null || { echo "ganesha.nfsd left running"; return 1; }
}
# layer_lock CLIENT: the lock file of its layer (held by whoever writes it)
layer_lock() { echo "$store/data/$(sqlite3 "$store/cowroot.db" "SELECT layer FROM clients WHERE name = '$1'").lock"; }

store=$tmp/store
t_broken_fsal() {
	serve_fails --fsal "$tmp/no-such-module.so" || return 1
	grep -q "no-such-module.so" "$tmp/fail.err" || { cat "$tmp/fail.err"; return 1; }
	echo "not a shared object" >"$tmp/broken.so"
	serve_fails --fsal "$tmp/broken.so" || return 1
	grep -q "dlopen.*broken.so\|Failed to load.*broken.so\|libfsalcowroot.so.*too short" "$tmp/fail.err" ||
		{ cat "$tmp/fail.err"; return 1; }
	# a cowroot outside the build tree, and no module installed (in the
	# default -Dganesha_plugindir)
	if [ ! -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalcowroot.so ]; then
		cp "$COWROOT" "$tmp/cowroot-elsewhere"
		serve_fails --with "$tmp/cowroot-elsewhere" || return 1
		grep -q "FSAL.*libfsalcowroot.so.*No such file" "$tmp/fail.err" ||
			{ cat "$tmp/fail.err"; return 1; }
	fi
}
check "serve with a missing or broken FSAL module fails at once, with ganesha's reason" t_broken_fsal

t_export_refused_at_start() {
	command -v sqlite3 >/dev/null || { echo "sqlite3 is missing (install sqlite3)"; return 1; }
	local lk rc=0
	exec {lk}>"$(layer_lock pi2)" && flock -x -n "$lk" || return 1
	serve_fails --fsal "$COW_FSAL" || rc=1
	exec {lk}>&-
	[ "$rc" = 0 ] || return 1
	grep -q "client 'pi2' is not served: .*in use" "$tmp/fail.err" || { cat "$tmp/fail.err"; return 1; }
}
check "serve fails at once when ganesha cannot load a client's export, naming it and why" t_export_refused_at_start

t_list_no_server() {
	cow client list | grep -q "no server runs: who is online and what each booted is not known" || return 1
	cow client list --json | jq -e 'all(.[]; .online == null and .served == null)' >/dev/null
}
check "client list with no server: says who is online is not known (null in --json)" t_list_no_server

# the quick start: cowroot from the build tree, no --fsal (and no TFTP)
start_serve --no-tftp
build_tree_rc=$?
t_build_tree_fsal() {
	[ "$build_tree_rc" = 0 ] || { echo "cowroot serve from the build tree without --fsal did not start"; return 1; }
	grep -q '^pi1 (127.0.0.2): ' "$tmp/serve.out" || { cat "$tmp/serve.out"; return 1; }
	nc 127.0.0.2 /clients/pi1 3 read /persist "kept across restarts" || return 1
	! grep -q "TFTP" "$tmp/serve.out" || { echo "--no-tftp: serve says it serves TFTP"; return 1; }
	if curl -sS --interface 127.0.0.2 tftp://127.0.0.1/netboot-0000c0de.scr -o "$tmp/y.scr" 2>/dev/null; then
		echo "--no-tftp: a script was served"
		return 1
	fi
}
check "cowroot from the build tree serves with the FSAL built beside it (with --no-tftp: no TFTP)" t_build_tree_fsal

t_export_refused_at_reload() {
	local lk rc=0
	cow client add pi7 --image base >/dev/null || return 1
	exec {lk}>"$(layer_lock pi7)" && flock -x -n "$lk" || return 1
	cow client set pi7 --ip 127.0.0.4 >/dev/null || rc=1
	for _ in $(seq 300); do
		grep -q '^pi7: not served: ganesha did not load its export: .*in use' "$tmp/serve.out" && break
		sleep 0.1
	done
	exec {lk}>&-
	[ "$rc" = 0 ] || return 1
	grep -q '^pi7: not served: ganesha did not load its export: .*in use' "$tmp/serve.out" ||
		{ cat "$tmp/serve.out"; return 1; }
	grep -q "client 'pi7' is not served" "$tmp/serve.err" || return 1
	grep -A3 '^reloaded' "$tmp/serve.out" | grep -q '^pi1 (127.0.0.2): ' || return 1
	nc 127.0.0.2 /clients/pi1 3 read /persist "kept across restarts" || return 1
	cow client rm pi7 >/dev/null
}
check "a client whose export ganesha refuses on reload is listed as not served, and why" t_export_refused_at_reload

t_stored_bad_addrs() {
	# a store written before --ip was strict may hold what ganesha rejects
	sqlite3 "$store/cowroot.db" "UPDATE clients SET addrs = '127.0.0.3/ 8' WHERE name = 'pi2'" || return 1
	kill -HUP "$serve_pid"
	for _ in $(seq 100); do
		grep -q '^pi2: not served: its addresses are invalid' "$tmp/serve.out" && break
		sleep 0.1
	done
	grep -q '^pi2: not served: its addresses are invalid' "$tmp/serve.out" || { cat "$tmp/serve.out"; return 1; }
	! grep -q '127.0.0.3/ 8' "$store/run/ganesha.conf" || { echo "the bad address went into ganesha.conf"; return 1; }
	sqlite3 "$store/cowroot.db" "UPDATE clients SET addrs = '127.0.0.3' WHERE name = 'pi2'"
	nc 127.0.0.2 /clients/pi1 3 read /persist "kept across restarts"
}
check "a stored address list ganesha would reject is not exported, the client listed as not served" t_stored_bad_addrs
stop_server

start_serve --fsal "$COW_FSAL" --allow-unprivileged-ports
unpriv_rc=$?
t_allow_unprivileged() {
	[ "$unpriv_rc" = 0 ] || { echo "serve --allow-unprivileged-ports did not start"; return 1; }
	grep -q 'warning: --allow-unprivileged-ports' "$tmp/serve.err" || { echo "no warning"; return 1; }
	grep -q '^[[:space:]]*PrivilegedPort = false;' "$store/run/ganesha.conf" || return 1
	as_nobody timeout 60 "$COW_NFSCLIENT" 127.0.0.2 /clients/pi1 3 read /persist "kept across restarts" &&
		as_nobody timeout 60 "$COW_NFSCLIENT" 127.0.0.2 /clients/pi1 4 read /persist "kept across restarts"
}
check "with --allow-unprivileged-ports (and a warning) an unprivileged port is served" t_allow_unprivileged
stop_server

# as Linux does (file_remove_privs), and FSAL_VFS through the kernel: a
# write or truncate by a user clears setuid, and setgid of a
# group-executable file; any write takes the file capability away
start_server
privs_rc=$?
as_user() { NFSCLIENT_UID=1000 NFSCLIENT_GID=1000 "$@"; }
mode_of() { nc 127.0.0.2 /clients/pi1 "$1" stat "$2" | sed -n 's/.* mode \([0-7]*\) .*/\1/p'; }
t_kill_privs() {
	[ "$privs_rc" = 0 ] || { echo "serve did not start again"; return 1; }
	local m
	as_user nc 127.0.0.2 /clients/pi1 3 pwrite /priv/suid "user" || return 1
	m=$(mode_of 3 /priv/suid)
	[ "$m" = 100777 ] || { echo "v3 write by a user: mode $m, not 100777"; return 1; }
	# (v3: libnfs 5.0's v4 OPEN as another user than the process fails on
	# the ACCESS it asks, as against FSAL_VFS; the write path is one)
	as_user nc 127.0.0.2 /clients/pi1 3 pwrite /priv/sgid "user" || return 1
	m=$(mode_of 4 /priv/sgid)
	[ "$m" = 100777 ] || { echo "write by a user: mode $m (v4) of a group-executable setgid file, not 100777"; return 1; }
	as_user nc 127.0.0.2 /clients/pi1 3 pwrite /priv/sgid-noexec "user" || return 1
	m=$(mode_of 3 /priv/sgid-noexec)
	# (Linux 6.2 and later: from a writer outside the file's group)
	[ "$m" = 100766 ] || { echo "write: mode $m of a setgid file without group execute, not 100766"; return 1; }
	as_user nc 127.0.0.2 /clients/pi1 3 pwrite /priv/sgid-noexec-grp "user" || return 1
	m=$(mode_of 3 /priv/sgid-noexec-grp)
	[ "$m" = 102766 ] || { echo "write from its group: mode $m of a setgid file without group execute, not 102766"; return 1; }
	as_user nc 127.0.0.2 /clients/pi1 3 truncate /priv/trunc 2 || return 1
	m=$(mode_of 3 /priv/trunc)
	[ "$m" = 100777 ] || { echo "truncate by a user: mode $m, not 100777"; return 1; }
	nc 127.0.0.2 /clients/pi1 3 pwrite /priv/rootw "root" || return 1
	m=$(mode_of 3 /priv/rootw)
	[ "$m" = 104777 ] || { echo "write by root: mode $m, not 104777 (root keeps setuid)"; return 1; }
}
check "a user's write or truncate clears setuid, and setgid of a group-executable file; root's keeps them" t_kill_privs
[ -z "$serve_pid" ] || stop_server
t_kill_caps() {
	[ "$have_setcap" = 1 ] || { echo "setcap cannot set a file capability here"; return 1; }
	# the capabilities, through a FUSE mount of the client
	local mnt=$tmp/privmnt
	mkdir -p "$mnt"
	"$COWROOT" --store "$store" mount pi1 "$mnt" -f >"$tmp/privmnt.log" 2>&1 &
	local pid=$!
	for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
	local caps
	caps=$(for f in suid trunc rootw; do getfattr -h --only-values -n security.capability "$mnt/priv/$f" >/dev/null 2>&1 && echo "$f"; done)
	local kept=0
	getfattr -h --only-values -n security.capability "$mnt/priv/keep" >/dev/null 2>&1 && kept=1
	fusermount3 -u "$mnt"
	wait "$pid"
	[ "$kept" = 1 ] || { echo "the file nobody wrote lost its capability (or the mount shows none)"; return 1; }
	[ -z "$caps" ] || { echo "the file capability stayed on: $caps"; return 1; }
}
check "a write or truncate over NFS, by a user or root, drops the file capability" t_kill_caps

finish
