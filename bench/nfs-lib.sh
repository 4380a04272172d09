# shellcheck shell=bash
# nfs-lib.sh: sourced by bench/nfs.sh and bench/lifecycle.sh -- private
# namespaces, rpcbind, and the two NFS servers they measure.
#
# ns_enter "$@": re-executes the calling script inside private network,
# mount and pid namespaces.  ns_setup NADDRS: in
# there, loopback up, a private /run, rpcbind, and the addresses
# client_addr 1 .. client_addr NADDRS, one per simulated client (a
# connection to an address on lo comes from that address).

ns_enter() {
	[ -z "${COW_BENCH_NS_INNER:-}" ] || return 0
	export COW_BENCH_NS_INNER=1
	exec unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$@"
}

# ns_check CMD...: exit 77, saying why, unless the commands, $bootstorm and
# $fsal are there (outside the namespaces)
ns_check() {
	local c
	[ -z "${COW_BENCH_NS_INNER:-}" ] || return 0
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "no $c (tools/setup-deps.sh installs it)"; exit 77; }
	done
	[ -x "$bootstorm" ] || { echo "no $bootstorm (libnfs-dev missing at build time)"; exit 77; }
	[ -e "$fsal" ] || { echo "no $fsal (the FSAL was not built)"; exit 77; }
}

# ns_start NADDRS: (inside) a fresh $work with logs/ and an empty
# $results, then ns_setup NADDRS; the server and rpcbind stop at exit
ns_start() {
	rm -rf "$work"
	mkdir -p "$work/logs"
	results=$work/results.tsv
	: >"$results"
	ns_setup "$1"
	trap 'stop_server; kill $rpcbind_pid 2>/dev/null || true' EXIT
}

rpcbind_pid=
ns_setup() {
	local i
	ip link set lo up
	mount -t tmpfs -o mode=0755 cowroot-bench-run /run
	mkdir -p /run/rpcbind
	chown _rpc /run/rpcbind 2>/dev/null || true
	for i in $(seq 1 "$1"); do
		ip addr add "$(client_addr "$i")/32" dev lo
	done
	rpcbind -f -w &
	rpcbind_pid=$!
	wait_port 111 || { echo "bench: rpcbind did not start" >&2; return 1; }
}

# client_addr I: the address of simulated client I (1, 2, ...):
# 127.0.0.(10+I) up to I = 240, then 127.0.1.1 .. 127.0.1.250,
# 127.0.2.1 .. (250 a /24, never .0 or .255): distinct up to 64,000 clients
client_addr() {
	if [ "$1" -le 240 ]; then
		echo "127.0.0.$((10 + $1))"
	else
		local j=$(($1 - 241))
		echo "127.0.$((1 + j / 250)).$((1 + j % 250))"
	fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
	local _
	for _ in $(seq 600); do
		port_open "$1" && return 0
		sleep 0.05
	done
	return 1
}

server_pid= # the process to stop (cowroot serve, or ganesha.nfsd for VFS)
ganesha_pid=
tftp_pid= # the TFTP server beside FSAL_VFS (dnsmasq); cowroot serve has its own

# wait_server CMD...: until CMD succeeds (60 s), or the server died
wait_server() {
	local _
	for _ in $(seq 600); do
		"$@" && return 0
		kill -0 "$server_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
vfs_ready() { port_open 2049 && rpcinfo -p 127.0.0.1 2>/dev/null | grep -qw mountd; }

# serve_cowroot STORE FSAL LOG: `cowroot serve` in the foreground, until it serves
serve_cowroot() {
	"$COWROOT" --store "$1" serve --foreground --fsal "$2" --no-grace --server 127.0.0.1 >"$3.out" 2>"$3" &
	server_pid=$!
	if wait_server grep -q "^serving store" "$3.out"; then
		ganesha_pid=$(cat "$1/run/ganesha.pid")
		return 0
	fi
	echo "bench: cowroot serve did not start:" >&2
	tail -n 5 "$3" >&2
	return 1
}

# io_flusher_line: what `cowroot serve` writes where ganesha 5 or later
# may not be an I/O flusher (no CAP_SYS_RESOURCE, bit 24 of CapEff): let
# it start without (tools/serve.c, io_flusher_refused)
io_flusher_line() {
	local major cap
	major=$(ganesha.nfsd -v 2>/dev/null | sed -n 's/^NFS-Ganesha Release = V\([0-9]*\).*/\1/p' | head -n 1)
	cap=$(awk '$1 == "CapEff:" { print $2 }' /proc/self/status)
	if [ "${major:-0}" -ge 5 ] && [ $((0x${cap:-0} >> 24 & 1)) = 0 ]; then
		printf '\tallow_set_io_flusher_fail = true;\n'
	fi
}

# vfs_config DIR PATH: ganesha.conf for FSAL_VFS exporting PATH as /plain to
# every simulated client.  NFS_CORE_PARAM, NFSv4, EXPORT and LOG settings
# as `cowroot serve` writes them (tools/serve.c); everything else is
# ganesha's default on both sides (worker threads, MDCACHE sizes).
vfs_config() {
	cat <<EOF
NFS_CORE_PARAM {
	Protocols = 3, 4;
	NFS_Port = 2049;
	Mount_Path_Pseudo = true;
$(io_flusher_line)
}

NFSv4 {
	RecoveryRoot = "$1/recovery";
	Only_Numeric_Owners = true;
	Graceless = true;
}

EXPORT_DEFAULTS {
	Access_Type = None;
	Squash = No_Root_Squash;
	PrivilegedPort = true;
}

EXPORT {
	Export_Id = 1;
	Path = "$2";
	Pseudo = "/plain";
	Protocols = 3, 4;
	Transports = TCP;
	SecType = sys;
	Access_Type = None;
	Squash = No_Root_Squash;
	PrivilegedPort = true;
	CLIENT {
		Clients = 127.0.0.0/8;
		Access_Type = RW;
	}
	FSAL {
		Name = VFS;
	}
}

LOG {
	Default_Log_Level = EVENT;
}
EOF
}

# serve_vfs DIR PATH: ganesha with FSAL_VFS exporting PATH (config, pid and
# log in DIR), until its MOUNT service answers
serve_vfs() {
	mkdir -p "$1/recovery"
	vfs_config "$1" "$2" >"$1/ganesha.conf"
	ganesha.nfsd -F -f "$1/ganesha.conf" -p "$1/ganesha.pid" -L "$1/ganesha.log" &
	server_pid=$!
	ganesha_pid=$server_pid
	wait_server vfs_ready && return 0
	echo "bench: ganesha (FSAL_VFS) did not start:" >&2
	tail -n 5 "$1/ganesha.log" >&2
	return 1
}

# udp_bound PORT: something listens on UDP port PORT
udp_bound() { [ -n "$(ss -Hunl "sport = :$1" 2>/dev/null)" ]; }

# serve_dnsmasq ROOT MAX LOG: dnsmasq's TFTP server (no DNS, no DHCP) on
# port 69 serving ROOT, at most MAX transfers at once (empty: dnsmasq's
# default, 50), in the foreground, until it listens
serve_dnsmasq() {
	dnsmasq --keep-in-foreground --port=0 --enable-tftp --tftp-root="$1" ${2:+--tftp-max="$2"} \
		--pid-file="$3.pid" --user=root --log-facility="$3" &
	tftp_pid=$!
	local _
	for _ in $(seq 100); do
		udp_bound 69 && return 0
		kill -0 "$tftp_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: dnsmasq (TFTP) did not start:" >&2
	tail -n 5 "$3" >&2
	return 1
}

stop_server() {
	if [ -n "$tftp_pid" ]; then
		kill "$tftp_pid" 2>/dev/null
		wait "$tftp_pid" 2>/dev/null || true
		tftp_pid=
	fi
	[ -n "$server_pid" ] || return 0
	kill "$server_pid" 2>/dev/null
	wait "$server_pid" 2>/dev/null || true
	server_pid=
	ganesha_pid=
}

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# rss_kib PID [FIELD]: VmRSS (or VmHWM) of PID in KiB
rss_kib() { awk -v f="${2:-VmRSS}:" '$1 == f { print $2 }' "/proc/$1/status"; }
