#!/bin/bash
# bootlist.sh IMAGE_DIR -- the steps of a Debian boot, for bench/bootstorm,
# derived from the image at IMAGE_DIR (a root tree; run as root: it uses
# chroot to resolve paths and shared libraries the way the image would).
#
# In boot order, roughly: the init binary (systemd, else /sbin/init) and
# its libraries, the /etc files early user space reads, the binaries a
# boot and a login run (bash, ls, mount, login, agetty, dpkg...) with their
# shared libraries (from the image's own ldd), locale, terminfo and zone
# files, a stat walk of /etc and /usr/lib/x86_64-linux-gnu (and of the
# kernel modules tree with its index files, if the image has one), and the
# small files a boot writes.  Paths are resolved inside the image
# (symlinks such as /lib -> usr/lib followed), each read once.  Writes go
# to their real paths; bench/nfs.sh gives the plain export per-client
# copies of them.
set -euo pipefail
export LC_ALL=C
img=$(realpath "${1:?usage: bootlist.sh IMAGE_DIR}")
[ -d "$img/etc" ] || { echo "bootlist: $img is not a root tree" >&2; exit 1; }

declare -A seen=()
# in_img PATH...: print each path's resolved form inside the image, if it exists
in_img() { chroot "$img" /usr/bin/realpath -e -q -- "$@" 2>/dev/null || true; }
emit() { # TYPE PATH...: one step per new path
	local t=$1 p
	shift
	for p in "$@"; do
		[ -n "$p" ] && [ -z "${seen[$t$p]:-}" ] || continue
		seen[$t$p]=1
		echo "$t $p"
	done
}
# binary PATH...: stat and read each binary, after its libraries
binary() {
	local b libs
	for b in $(in_img "$@"); do
		[ -f "$img$b" ] || continue
		libs=$(chroot "$img" /usr/bin/ldd "$b" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
		# shellcheck disable=SC2086 # paths without spaces
		emit r $(in_img $libs)
		emit s "$b"
		emit r "$b"
	done
}
read_files() { # PATH...: read those that exist (resolved)
	local p
	for p in $(in_img "$@"); do
		[ -f "$img$p" ] && emit r "$p"
	done
}
walk() { # DIR: list every directory, stat every entry
	local d
	[ -d "$img$1" ] || return 0
	while IFS= read -r d; do
		emit d "${d#"$img"}"
	done < <(find "$img$1" -xdev -type d | sort)
	while IFS= read -r d; do
		emit s "${d#"$img"}"
	done < <(find "$img$1" -xdev -mindepth 1 | sort)
}

emit s /
if [ -e "$img/lib/systemd/systemd" ]; then
	binary /lib/systemd/systemd
else
	binary /sbin/init
fi
read_files /etc/ld.so.cache /etc/nsswitch.conf /etc/passwd /etc/group /etc/shadow /etc/fstab /etc/hostname \
	/etc/hosts /etc/os-release /usr/lib/os-release /etc/machine-id /etc/localtime /etc/default/locale \
	/etc/locale.alias /etc/environment /etc/login.defs /etc/securetty /etc/issue /etc/motd /etc/shells \
	/etc/profile /etc/bash.bashrc /etc/inputrc /etc/resolv.conf /etc/host.conf /etc/adjtime \
	/etc/systemd/system.conf /etc/systemd/journald.conf /etc/udev/udev.conf /etc/sysctl.conf \
	/etc/default/keyboard /etc/timezone /etc/debian_version /etc/pam.d/* /etc/security/*.conf \
	/etc/profile.d/*
binary /sbin/udevadm /lib/systemd/systemd-udevd /lib/systemd/systemd-journald /lib/systemd/systemd-logind \
	/sbin/agetty /bin/login /bin/bash /bin/sh /bin/ls /bin/mount /bin/umount /sbin/ldconfig /usr/bin/dpkg \
	/usr/bin/apt-get /bin/cat /bin/grep /bin/sed /bin/mkdir /bin/rm /bin/hostname /usr/bin/env /usr/bin/id \
	/sbin/sysctl /sbin/modprobe /sbin/ip /usr/sbin/cron /usr/sbin/rsyslogd /usr/sbin/sshd
read_files /usr/lib/locale/C.utf8/LC_* /usr/lib/locale/locale-archive /usr/share/locale/locale.alias \
	/lib/terminfo/l/linux /lib/terminfo/x/xterm /lib/terminfo/v/vt100 /usr/share/terminfo/l/linux \
	/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache /usr/share/zoneinfo/Etc/UTC \
	/var/lib/dpkg/status /var/lib/dpkg/arch /var/lib/dpkg/cmethopt /etc/dpkg/dpkg.cfg \
	/etc/apt/sources.list /etc/apt/apt.conf.d/*
walk /etc
walk /usr/lib/x86_64-linux-gnu
if [ -d "$img/lib/modules" ]; then
	walk /lib/modules
	read_files /lib/modules/*/modules.dep.bin /lib/modules/*/modules.alias.bin /lib/modules/*/modules.symbols.bin \
		/lib/modules/*/modules.builtin.bin /lib/modules/*/modules.softdep /lib/modules/*/modules.devname
fi
# what a boot writes: ids and seeds, logs, the login records, temp files
echo "w 33 /etc/machine-id"
[ -d "$img/var/lib/systemd" ] && echo "w 512 /var/lib/systemd/random-seed"
echo "w 16384 /var/log/boot.log"
[ -e "$img/var/log/wtmp" ] && echo "w 768 /var/log/wtmp"
[ -e "$img/var/log/lastlog" ] && echo "w 292 /var/log/lastlog"
echo "w 4096 /tmp/boot-1.tmp"
echo "w 4096 /tmp/boot-2.tmp"
echo "w 65536 /var/tmp/boot-cache"
