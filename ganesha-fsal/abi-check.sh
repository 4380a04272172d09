#!/bin/bash
# Check that every undefined dynamic symbol of an FSAL module is exported
# by one of the libraries it needs (resolved as the dynamic loader would).
# Usage: abi-check.sh MODULE.so STAMP
set -euo pipefail
mod=$1
stamp=$2

mapfile -t libs < <(ldd "$mod" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
if [ ${#libs[@]} = 0 ]; then
	echo "abi-check: ldd found no libraries for $mod" >&2
	exit 1
fi
defined=$(mktemp)
trap 'rm -f "$defined"' EXIT
for l in "${libs[@]}"; do
	nm -D --defined-only "$l" | awk '{ sub(/@.*/, "", $3); print $3 }'
done | sort -u >"$defined"

# strong undefined symbols only: weak ones (e.g. __gmon_start__) may stay unresolved
missing=$(nm -D --undefined-only "$mod" | awk '$1 == "U" { sub(/@.*/, "", $2); print $2 }' | sort -u |
	comm -23 - "$defined")
if [ -n "$missing" ]; then
	echo "abi-check: $mod needs symbols no linked library exports:" >&2
	echo "$missing" | sed 's/^/  /' >&2
	echo "abi-check: ganesha exports only what 'nm -D' shows of libganesha_nfsd; use those or inline code" >&2
	exit 1
fi
n=$(nm -D --undefined-only "$mod" | wc -l)
echo "abi-check: $mod: all $n undefined symbols resolved by ${#libs[@]} libraries" >"$stamp"
