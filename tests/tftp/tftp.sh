#!/bin/bash
# tftp: real TFTP clients (tftp-hpa, atftp, curl) against `cowroot tftp serve`.
#
# Runs in private network/mount/pid namespaces (the script re-executes
# itself under unshare) with only loopback up; the server listens on a
# high port.  A directory is served first: small, empty and block-multiple
# files, 40 MB at blksize 1468 and at 512 (block numbers wrap past
# 65535), tsize/windowsize negotiation, 20 fetches at once, IPv6, and the
# refusals (.., a symlink out of the tree, a write, an unknown file), netascii.
# Then a client's root from a store made here: an image with a kernel
# reached through a symlink, a file written in the client's layer through
# `cowroot mount` fetched while the mount still holds the layer, and
# after it is unmounted.
#
# Env: COWROOT (the built CLI), COW_KEEP=1 keeps the temp dir.
# Prints "ok NAME" / "FAIL NAME: reason" and "N passed, N failed"; exit 0 if
# all passed, 1 on a failure, 77 when the machine lacks a facility.
# shellcheck disable=SC2317 # all after the re-exec under unshare runs in the inner run
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/checks.sh
. "$here/../checks.sh"
skip() {
	echo "SKIP: $*"
	exit 77
}

if [ -z "${COW_TFTP_INNER:-}" ]; then
	if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
		echo "FAIL: \$COWROOT is not set to the built cowroot ('${COWROOT:-}')" >&2
		exit 1
	fi
	[ "$(id -u)" = 0 ] || skip "needs root (network namespace, FUSE)"
	command -v unshare >/dev/null || skip "unshare is missing (install util-linux)"
	command -v ip >/dev/null || skip "ip is missing (install iproute2)"
	for c in tftp atftp curl; do
		command -v $c >/dev/null || skip "$c is missing (tools/setup-deps.sh installs tftp-hpa, atftp, curl)"
	done
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
	COW_TFTP_INNER=1 exec unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
fi

ip link set lo up || skip "cannot bring up loopback in the namespace"
T=$(mktemp -d /tmp/cowroot-tftp.XXXXXX)
PORT=16969
server=
mnt_pid=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	mountpoint -q "$T/mnt" 2>/dev/null && { fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt"; }
	[ -n "$mnt_pid" ] && wait "$mnt_pid" 2>/dev/null
	if [ "${COW_KEEP:-}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# start_server ARGS...: `cowroot tftp serve ARGS --port $PORT`, log in $T/server.log
start_server() {
	"$COWROOT" "$@" --port "$PORT" >"$T/server.log" 2>&1 &
	server=$!
	for _ in $(seq 1 100); do
		grep -q "serving" "$T/server.log" && return 0
		kill -0 "$server" 2>/dev/null || break
		sleep 0.05
	done
	cat "$T/server.log"
	return 1
}
stop_server() {
	kill "$server" && wait "$server"
	server=
}

# same FILE1 FILE2: identical content (checksums)
same() {
	[ -f "$2" ] || { echo "no file '$2' fetched"; return 1; }
	local a b
	a=$(sha256sum <"$1") b=$(sha256sum <"$2")
	[ "$a" = "$b" ] || { echo "'$2' differs from '$1' ($(stat -c %s "$2") vs $(stat -c %s "$1") bytes)"; return 1; }
}

# ---- a directory ----------------------------------------------------------------------------

R=$T/root
mkdir -p "$R/sub" "$T/out"
head -c 1000 /dev/urandom >"$R/small"
: >"$R/empty"
head -c $((512 * 64)) /dev/urandom >"$R/m512"
head -c $((1468 * 100)) /dev/urandom >"$R/m1468"
head -c $((40 * 1024 * 1024)) /dev/urandom >"$R/big"
head -c $((1024 * 1024)) /dev/urandom >"$R/sub/one-mb"
# text with LF and bare CR, a CR LF pair split across blocks 1 and 2
{ head -c 511 /dev/zero | tr '\0' a; printf '\nline two\r\nbare\rcr\n%.0s' $(seq 1 200); } >"$R/text"
# (it ends with a newline: every line gets its CR)
sed -e 's/\r/\r\x00/g' -e 's/$/\r/' "$R/text" >"$T/text.netascii"
ln -s small "$R/inside-link"
ln -s /etc/passwd "$R/escape-link"
ln -s ../../../../etc/passwd "$R/sub/dotdot-link"
mkdir -p "$T/outside"
echo secret >"$T/outside/secret"

# every fetch here comes from 127.0.0.1: allow 32 at once from it
t_usage() {
	local rc
	"$COWROOT" tftp serve --port "$PORT" >/dev/null 2>&1
	rc=$?
	[ $rc = 2 ] || { echo "no source: exit $rc, want 2"; return 1; }
	"$COWROOT" tftp serve --root "$R" --client x --port "$PORT" >/dev/null 2>&1
	rc=$?
	[ $rc = 2 ] || { echo "both sources: exit $rc, want 2"; return 1; }
	"$COWROOT" tftp serve --root "$R" --port 0x45 >/dev/null 2>&1
	rc=$?
	[ $rc = 2 ] || { echo "port 0x45: exit $rc, want 2"; return 1; }
	"$COWROOT" tftp serve --root "$T/nothere" --port "$PORT" >/dev/null 2>&1
	rc=$?
	[ $rc = 1 ] || { echo "missing directory: exit $rc, want 1"; return 1; }
}
check "tftp serve: usage errors exit 2, a missing directory 1" t_usage
start_server tftp serve --root "$R" --max-per-peer 32 --refusal-lines 1000 || { bad "the server starts"; finish; }

fetch_hpa() { # REMOTE LOCAL [tftp options]
	local r=$1 l=$2
	shift 2
	rm -f "$l"
	tftp "$@" -m binary 127.0.0.1 "$PORT" -c get "$r" "$l" 2>&1
}
t_hpa_small() { fetch_hpa small "$T/out/small" && same "$R/small" "$T/out/small"; }
check "tftp-hpa fetches a small file" t_hpa_small
t_hpa_empty() { fetch_hpa empty "$T/out/empty" && [ -f "$T/out/empty" ] && [ ! -s "$T/out/empty" ]; }
check "tftp-hpa fetches an empty file" t_hpa_empty
t_hpa_m512() { fetch_hpa m512 "$T/out/m512" && same "$R/m512" "$T/out/m512"; }
check "tftp-hpa fetches a file of exactly 64 blocks of 512" t_hpa_m512
t_curl_m1468() {
	curl -sS --tftp-blksize 1468 "tftp://127.0.0.1:$PORT/m1468" -o "$T/out/m1468" && same "$R/m1468" "$T/out/m1468"
}
check "curl fetches a file of exactly 100 blocks of 1468" t_curl_m1468
t_atftp_link() {
	rm -f "$T/out/il"
	atftp -g -r inside-link -l "$T/out/il" 127.0.0.1 "$PORT" && same "$R/small" "$T/out/il"
}
check "atftp fetches through a symlink inside the tree" t_atftp_link

t_big_1468() {
	local s e
	s=$(date +%s.%N)
	curl -sS --tftp-blksize 1468 "tftp://127.0.0.1:$PORT/big" -o "$T/out/big1468" || return 1
	e=$(date +%s.%N)
	same "$R/big" "$T/out/big1468" || return 1
	echo "40 MB at blksize 1468: $(echo "$e - $s" | bc 2>/dev/null || echo "$s $e") s" >"$T/big-time"
}
check "curl fetches 40 MB at blksize 1468" t_big_1468
[ -f "$T/big-time" ] && cat "$T/big-time"
t_big_512() {
	fetch_hpa big "$T/out/big512" >/dev/null && same "$R/big" "$T/out/big512" &&
		grep -q "'big': sent, 41943040 bytes.*blksize 512," "$T/server.log"
}
check "tftp-hpa fetches 40 MB at blksize 512 (81921 blocks: numbers wrap)" t_big_512

t_tsize() {
	local v
	v=$(curl -sS -v --tftp-blksize 1024 "tftp://127.0.0.1:$PORT/m512" -o "$T/out/tsize" 2>&1) || return 1
	same "$R/m512" "$T/out/tsize" || return 1
	grep -q "got option=(tsize) value=(32768)" <<<"$v" || { echo "no tsize 32768 in: $v"; return 1; }
	grep -q "got option=(blksize) value=(1024)" <<<"$v" || { echo "no blksize 1024 in: $v"; return 1; }
}
check "curl is told tsize and blksize 1024 (the Pi ROM's)" t_tsize
t_window() {
	rm -f "$T/out/win"
	atftp --option "blksize 1468" --option "windowsize 8" --option "tsize 0" --option "timeout 2" \
		-g -r sub/one-mb -l "$T/out/win" 127.0.0.1 "$PORT" >/dev/null 2>&1 || return 1
	same "$R/sub/one-mb" "$T/out/win" &&
		grep -q "'sub/one-mb': sent, 1048576 bytes.*(blksize 1468, windowsize 8)" "$T/server.log"
}
check "atftp negotiates windowsize 8, blksize 1468, tsize, timeout" t_window
t_blksize_clamp() {
	curl -sS --tftp-blksize 65464 "tftp://127.0.0.1:$PORT/sub/one-mb" -o "$T/out/clamp" &&
		same "$R/sub/one-mb" "$T/out/clamp"
}
check "blksize 65464 (the loopback's MTU allows it) works" t_blksize_clamp

t_concurrent() {
	local pids=() i bad=0
	for i in $(seq 1 20); do
		curl -sS --tftp-blksize 1468 "tftp://127.0.0.1:$PORT/sub/one-mb" -o "$T/out/c$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
	for i in $(seq 1 20); do same "$R/sub/one-mb" "$T/out/c$i" >/dev/null || bad=$((bad + 1)); done
	[ "$bad" = 0 ] || { echo "$bad of 20 fetches failed"; return 1; }
}
check "20 fetches at once" t_concurrent
t_peer_bound() {
	local pids=() i refusals
	for i in $(seq 1 40); do
		curl -sS "tftp://127.0.0.1:$PORT/big" -o "$T/out/p$i" 2>/dev/null &
		pids+=($!)
	done
	sleep 1
	kill "${pids[@]}" 2>/dev/null
	wait "${pids[@]}" 2>/dev/null
	refusals=$(grep -c "refused 'big': too many transfers from this address" "$T/server.log")
	[ "$refusals" -ge 8 ] || { echo "$refusals refusals past the bound of 32"; return 1; }
	# the transfers of the killed clients end (their ports answer ICMP
	# unreachable, or they time out): then this address is served again
	for i in $(seq 1 40); do
		fetch_hpa small "$T/out/after-bound" >/dev/null && same "$R/small" "$T/out/after-bound" 2>/dev/null &&
			return 0
		sleep 0.25
	done
	echo "not served again 10 s after the clients were gone"
	return 1
}
check "past 32 transfers from one address requests are refused with an error, then served again" t_peer_bound
rm -f "$T"/out/p*

t_ipv6() {
	curl -sS "tftp://[::1]:$PORT/small" -o "$T/out/v6" && same "$R/small" "$T/out/v6" &&
		rm -f "$T/out/v6b" && atftp -g -r small -l "$T/out/v6b" ::1 "$PORT" && same "$R/small" "$T/out/v6b" &&
		grep -q "^.* tftp: \[::1\]:[0-9]* 'small': sent" "$T/server.log"
}
check "IPv6: curl and atftp on [::1]" t_ipv6

# refused REMOTE CODE TEXT: tftp-hpa gets ERROR CODE and nothing is written
refused() {
	local out
	rm -f "$T/out/ref"
	out=$(tftp -m binary 127.0.0.1 "$PORT" -c get "$1" "$T/out/ref" 2>&1)
	grep -q "Error code $2: $3" <<<"$out" || { echo "'$1': $out"; return 1; }
	[ ! -s "$T/out/ref" ] || { echo "'$1' wrote $(stat -c %s "$T/out/ref") bytes"; return 1; }
}
check "'../outside/secret' is an access violation" refused ../outside/secret 2 "access violation"
check "'sub/../../outside/secret' is an access violation" refused sub/../../outside/secret 2 "access violation"
check "'/etc/passwd' is looked up inside the tree: not found" refused /etc/passwd 1 "file not found"
check "a symlink to /etc/passwd is an access violation" refused escape-link 2 "access violation"
check "a symlink climbing out with .. is an access violation" refused sub/dotdot-link 2 "access violation"
check "a directory is an access violation" refused sub 2 "access violation"
check "an unknown file is not found" refused no-such-file 1 "file not found"
t_backslash() { refused 'sub\one-mb' 2 "access violation"; }
check "a backslash is an access violation" t_backslash
t_wrq() {
	local out
	out=$(tftp -m binary 127.0.0.1 "$PORT" -c put "$R/small" newfile 2>&1)
	grep -q "Error code 2: read-only server" <<<"$out" || { echo "$out"; return 1; }
	[ ! -e "$R/newfile" ]
}
check "a write request is refused: read-only" t_wrq
t_netascii() {
	# tftp-hpa turns netascii back into local text: the file comes back as it is;
	# curl keeps the wire form: LF as CR LF, CR as CR NUL
	rm -f "$T/out/asc" "$T/out/ascraw"
	tftp -m ascii 127.0.0.1 "$PORT" -c get text "$T/out/asc" && same "$R/text" "$T/out/asc" &&
		curl -sS "tftp://127.0.0.1:$PORT/text;mode=netascii" -o "$T/out/ascraw" &&
		same "$T/text.netascii" "$T/out/ascraw" &&
		grep -q "'text': sent, $(stat -c %s "$R/text") bytes.*(netascii, blksize 512" "$T/server.log"
}
check "netascii: tftp-hpa gets the text back, curl the RFC 764 form" t_netascii
t_log() {
	grep -q "refused write of 'newfile': read-only server" "$T/server.log" &&
		grep -q "refused 'escape-link': access violation" "$T/server.log" &&
		grep -q "'small': sent, 1000 bytes" "$T/server.log"
}
check "the log has a line per refusal and per transfer" t_log
t_alive() { kill -0 "$server" && fetch_hpa small "$T/out/alive" && same "$R/small" "$T/out/alive"; }
check "the server still serves after all that" t_alive
stop_server

# ---- a client's root ------------------------------------------------------------------------

S=$T/store
I=$T/image
mkdir -p "$I/boot" "$I/etc" "$T/mnt"
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom >"$I/boot/vmlinuz-6.1.0-test-arm64"
ln -s boot/vmlinuz-6.1.0-test-arm64 "$I/vmlinuz"
ln -s /boot/vmlinuz-6.1.0-test-arm64 "$I/boot/abs-link"
ln -s ../../../../../boot/vmlinuz-6.1.0-test-arm64 "$I/etc/climb"
ln -s loop-b "$I/loop-a"
ln -s loop-a "$I/loop-b"
echo image >"$I/etc/hostname"
"$COWROOT" --store "$S" init >/dev/null &&
	"$COWROOT" --store "$S" image import img "$I" >/dev/null &&
	"$COWROOT" --store "$S" client add pi1 --image img >/dev/null &&
	"$COWROOT" --store "$S" client add pi2 --image img >/dev/null || { bad "store fixture"; finish; }

"$COWROOT" --store "$S" mount pi1 "$T/mnt" -f >"$T/mount.log" 2>&1 &
mnt_pid=$!
for _ in $(seq 1 200); do mountpoint -q "$T/mnt" && break; sleep 0.05; done
mountpoint -q "$T/mnt" || { cat "$T/mount.log"; bad "cowroot mount pi1"; finish; }
head -c 200000 /dev/urandom >"$T/layer-file"
cp "$T/layer-file" "$T/mnt/etc/written-in-layer"
echo pi1 >"$T/mnt/etc/hostname"
sync -f "$T/mnt/etc/written-in-layer"
sync "$T/mnt/etc/hostname"
echo pi1 >"$T/hostname.pi1"

t_noclient() {
	local out
	out=$("$COWROOT" --store "$S" tftp serve --client nosuch --port "$PORT" 2>&1)
	[ $? = 1 ] && grep -q "client 'nosuch': no such client" <<<"$out" || { echo "$out"; return 1; }
}
check "tftp serve --client of an unknown client fails and says so" t_noclient
start_server --store "$S" tftp serve --client pi1 || { bad "the server starts on client pi1"; finish; }
t_held() {
	fetch_hpa etc/written-in-layer "$T/out/held" && same "$T/layer-file" "$T/out/held"
}
check "a file written through the mount is served while the mount holds the layer" t_held
fusermount3 -u "$T/mnt" && wait "$mnt_pid"
mnt_pid=
t_layer() {
	curl -sS --tftp-blksize 1468 "tftp://127.0.0.1:$PORT/etc/written-in-layer" -o "$T/out/layer" &&
		same "$T/layer-file" "$T/out/layer" && fetch_hpa /etc/hostname "$T/out/hn" && same "$T/hostname.pi1" "$T/out/hn"
}
check "after unmount: the layer's new file and its copy-up of an image file" t_layer
t_kernel() {
	curl -sS --tftp-blksize 1468 "tftp://127.0.0.1:$PORT/vmlinuz" -o "$T/out/k1" &&
		same "$I/boot/vmlinuz-6.1.0-test-arm64" "$T/out/k1" &&
		fetch_hpa boot/abs-link "$T/out/k2" && same "$I/boot/vmlinuz-6.1.0-test-arm64" "$T/out/k2" &&
		fetch_hpa etc/climb "$T/out/k3" && same "$I/boot/vmlinuz-6.1.0-test-arm64" "$T/out/k3" &&
		grep -q "pi1 'vmlinuz': sent, 3145745 bytes" "$T/server.log"
}
check "/vmlinuz -> boot/vmlinuz-x, an absolute and a climbing symlink resolve inside the root" t_kernel
check "a symlink loop is refused" refused loop-a 2 "access violation"
check "a client-root '..' is refused" refused ../etc/hostname 2 "access violation"
check "an unknown file in the client's root is not found" refused boot/nothing 1 "file not found"
stop_server
start_server --store "$S" tftp serve --client pi2 || { bad "the server starts on client pi2"; finish; }
t_other() {
	fetch_hpa etc/hostname "$T/out/hn2" && echo image | cmp -s - "$T/out/hn2" &&
		refused etc/written-in-layer 1 "file not found"
}
check "client pi2 sees its image, not pi1's layer" t_other
stop_server

finish
