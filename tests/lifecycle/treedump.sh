# shellcheck shell=bash
# Sourced by the import tests: dump MNT prints every entry of the tree at
# MNT, sorted (type, mode, owner, size, links, mtime to the nanosecond,
# symlink target), each file's allocated blocks, device numbers, xattrs
# (ACLs and capabilities included), contents' sha256 and hardlink groups:
# two trees are the same when their dumps are.
dump() {
	(cd "$1" && find . -printf '%p %y %M %U:%G %s %n %T@ %l\n' | sort &&
		find . -type f -printf '%p %b\n' | sort &&
		find . -type c -printf '%p\n' -o -type b -printf '%p\n' | sort | while read -r p; do stat -c "%n %t:%T" "$p"; done &&
		find . ! -type l -print0 | sort -z | xargs -0 getfattr -h -d -m - -e hex 2>/dev/null &&
		find . -type f -print0 | sort -z | xargs -0 sha256sum &&
		find . -type f -links +1 -printf '%i %p\n' | sort -k2 | awk '{g[$1] = g[$1] " " $2} END {for (i in g) print g[i]}' | sort)
}
