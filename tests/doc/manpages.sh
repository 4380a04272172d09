#!/bin/bash
# The man pages built from doc/*.scd (given as arguments):
#   - each renders with man-db (`man --warnings -E UTF-8 -l`) and groff
#     (-ww) without a warning, and lexgrog reads its NAME line,
#   - together they document the CLI as it is: every command group of
#     `cowroot --help` has its page, cowroot(8) names every group and points
#     to every page, and each group's page names each of its verbs and every
#     option each verb's own `--help` usage gives.
#
# Env: COWROOT (the cowroot binary).  Exit 77 when no page was built
# (scdoc missing, -Dman=disabled) or man-db is not installed.
set -u
export LC_ALL=C.UTF-8

skip() {
	echo "SKIP: $*"
	exit 77
}
if [ -z "${COWROOT:-}" ] || [ ! -x "$COWROOT" ]; then
	echo "FAIL: \$COWROOT is not set to the cowroot binary" >&2
	exit 1
fi
[ $# -gt 0 ] || skip "no man pages were built (scdoc missing: apt-get install scdoc; or -Dman=disabled)"
for p in man lexgrog groff; do
	command -v $p >/dev/null || skip "$p is missing (apt-get install man-db groff-base)"
done

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/cowroot-man.XXXXXX") || { echo "FAIL: mktemp" >&2; exit 1; }
trap 'rm -rf "$T"' EXIT

declare -A page
for f in "$@"; do
	page[$(basename "$f")]=$f
done

renders() { # PAGE: rendered, without a warning
	local out
	out=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$1" 2>&1 >/dev/null) || { echo "man failed: $out"; return 1; }
	[ -z "$out" ] || { echo "man: $out"; return 1; }
	out=$(groff -man -ww -z -Tutf8 "$1" 2>&1) || { echo "groff failed: $out"; return 1; }
	[ -z "$out" ] || { echo "groff: $out"; return 1; }
}
named() { # PAGE NAME: lexgrog reads "NAME - ..."
	local out
	out=$(lexgrog "$1" 2>&1) || { echo "lexgrog: $out"; return 1; }
	case $out in *"\"$2 - "?*) ;; *) echo "lexgrog: $out"; return 1 ;; esac
}
for f in "$@"; do
	name=$(basename "$f" .8)
	check "$name(8) renders without warnings" renders "$f"
	check "$name(8) has a NAME line" named "$f" "$name"
done

# text PAGE: the page's text as scdoc wrote it, fonts and escapes gone, one
# source line a line (an option is never split across lines there)
text() { sed -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/\\-/-/g' -e 's/\\(aq/'"'"'/g' "$1"; }
# mentions PAGE WORD...: each WORD is in PAGE's text, as a word
mentions() {
	local f=$1 w missing=
	shift
	text "$f" >"$T/text"
	for w in "$@"; do
		grep -qE -- "(^|[^a-z0-9-])$(printf '%s' "$w" | sed 's/[]$*.^(){}+?|[\\]/\\&/g')([^a-z0-9-]|\$)" "$T/text" ||
			missing+=" $w"
	done
	[ -z "$missing" ] || { echo "missing:$missing"; return 1; }
}

"$COWROOT" --help >"$T/help" 2>&1
mapfile -t nouns < <(awk '/^  [a-z]/ { print $1 }' "$T/help" | sort -u)
check "cowroot --help names the groups" test ${#nouns[@]} -ge 10
main=${page[cowroot.8]:-}
check "cowroot(8) is built" test -n "$main"
[ -n "$main" ] || finish
check "cowroot(8) names every group" mentions "$main" "${nouns[@]}"
seealso=()
for noun in "${nouns[@]}"; do
	[ "$noun" = version ] && continue # cowroot(8) documents it
	check "cowroot-$noun(8) is built" test -n "${page[cowroot-$noun.8]:-}"
	seealso+=("cowroot-$noun(8)")
done
check "cowroot(8) points to every page" mentions "$main" "${seealso[@]}"
check "cowroot(8) documents --store, --help, --version and COWROOT_STORE" \
	mentions "$main" --store --help --version COWROOT_STORE /var/lib/cowroot

for noun in "${nouns[@]}"; do
	f=${page[cowroot-$noun.8]:-$main}
	"$COWROOT" --store "$T/none" "$noun" --help >"$T/usage" 2>&1
	commands=("$noun")
	if [ "$(head -n 1 "$T/usage")" = "usage:" ]; then
		mapfile -t commands < <(sed -n "s/^  cowroot \[--store DIR\] \($noun [a-z]*\).*/\1/p" "$T/usage")
	fi
	for c in "${commands[@]}"; do
		# shellcheck disable=SC2086 # "NOUN VERB"
		"$COWROOT" --store "$T/none" $c --help >"$T/usage" 2>&1
		mapfile -t opts < <(grep -oE -- "(^|[][ (|',])(--[a-z][a-z-]*|-[a-z])([^a-z-]|\$)" "$T/usage" |
			sed -E 's/^[^-]*//; s/[^a-z-]$//' | grep -vx -- --store | sort -u)
		check "$(basename "$f" .8)(8) documents '$c' and its options" mentions "$f" "$c" "${opts[@]}"
	done
done
check "cowroot-serve(8) warns about --allow-unprivileged-ports and shows the FSAL block" \
	mentions "${page[cowroot-serve.8]:-/dev/null}" --allow-unprivileged-ports "Do not use it for real" \
	"COWROOT {" "Name = COWROOT;" "Client ="

finish
