#!/bin/bash
# The bash completion of cowroot (completion/cowroot.bash) on a temp store
# with two images and two clients, calling its completion function as bash
# does (COMP_WORDS, COMP_CWORD):
#   - the command groups and each group's verbs are exactly those of
#     `cowroot --help`, and each verb's options exactly those its own
#     `--help` usage names (so the completion cannot drift from the CLI),
#   - client names after `client reset `, image names after `--image ` and
#     `--onto `, read from the store given with --store (also --store=DIR,
#     split at the '=' as bash splits it), else from $COWROOT_STORE,
#   - option values (--on-boot), files and directories where a path goes,
#     commands after `client shell NAME --`, nothing after unknown words.
#
# Env: COWROOT (the cowroot binary), COWROOT_COMPLETION (the script);
# COW_COMPLETION_LOADER=1 loads it as an interactive shell does, through
# bash-completion's loader from a completions/cowroot, with bash-completion's
# own functions around it (exit 77 when bash-completion is not installed).
# No root needed.
set -u
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}
for v in COWROOT COWROOT_COMPLETION; do
	if [ -z "${!v:-}" ] || [ ! -e "${!v}" ]; then
		echo "FAIL: \$$v is not set to the file" >&2
		exit 1
	fi
done

# shellcheck source=tests/checks.sh
. "$(dirname "$0")/../checks.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/cowroot-completion.XXXXXX") || { echo "FAIL: mktemp" >&2; exit 1; }
trap 'rm -rf "$T"' EXIT
S=$T/store
OTHER=$T/other

if [ -n "${COW_COMPLETION_LOADER:-}" ]; then
	bc=/usr/share/bash-completion/bash_completion
	[ -r "$bc" ] || skip "bash-completion is not installed ($bc): apt-get install bash-completion"
	mkdir -p "$T/user/completions"
	ln -s "$(realpath "$COWROOT_COMPLETION")" "$T/user/completions/cowroot"
	# what an interactive shell's /etc/bash.bashrc does; ours then comes
	# from $BASH_COMPLETION_USER_DIR/completions/cowroot at first use
	export BASH_COMPLETION_USER_DIR=$T/user
	# shellcheck disable=SC1090
	. "$bc" || skip "cannot source $bc"
	declare -F __load_completion >/dev/null || skip "this bash-completion has no __load_completion"
	# in this shell, not under check (a subshell)
	if __load_completion cowroot; then ok "bash-completion loads completions/cowroot"; else bad "bash-completion loads completions/cowroot"; fi
	check "which registers _cowroot for cowroot" sh -c 'case "$1" in *"-F _cowroot cowroot"*) ;; *) echo "$1"; exit 1;; esac' \
		sh "$(complete -p cowroot 2>&1)"
else
	# shellcheck disable=SC1090
	. "$COWROOT_COMPLETION"
	check "sourcing it registers _cowroot for cowroot" sh -c 'case "$1" in *"-F _cowroot cowroot"*) ;; *) echo "$1"; exit 1;; esac' \
		sh "$(complete -p cowroot 2>&1)"
fi
declare -F _cowroot >/dev/null || { bad "no _cowroot function"; finish; }

# comp WORD... : complete the last word of `$COWROOT WORD...` as bash
# would (the last word may be empty); the candidates, sorted, one a line.
# The words are split at '=' as COMP_WORDBREAKS splits them.
comp() {
	local -a words=("$COWROOT")
	local w
	for w in "$@"; do
		if [[ $w == --*=* ]]; then
			words+=("${w%%=*}" "=")
			[[ -n ${w#*=} ]] && words+=("${w#*=}")
		else
			words+=("$w")
		fi
	done
	COMP_WORDS=("${words[@]}")
	COMP_CWORD=$((${#words[@]} - 1))
	COMP_LINE="${words[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_cowroot "$COWROOT" "${words[COMP_CWORD]}" "${words[COMP_CWORD - 1]}" 2>/dev/null
	[ ${#COMPREPLY[@]} = 0 ] || printf '%s\n' "${COMPREPLY[@]}" | sort -u
}
# expect_comp "WANT WORDS..." WORD...: the candidates are exactly these.
expect_comp() {
	local want got
	want=$(tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -u)
	shift
	got=$(comp "$@")
	[ "$got" = "$want" ] && return 0
	echo "completing '$*': got [$(echo $got)], want [$(echo $want)]"
	return 1
}
# has_comp WANT WORD...: WANT is among the candidates.
has_comp() {
	local want=$1
	shift
	comp "$@" | grep -qxF -- "$want" && return 0
	echo "completing '$*': [$(comp "$@" | tr '\n' ' ')] lacks '$want'"
	return 1
}

# ---- a store: images base and golden@2, clients pi-01 and kiosk+1 ----------------------------

mkdir -p "$T/tree/etc" && echo fixture >"$T/tree/etc/hostname"
setup() {
	"$COWROOT" --store "$S" init &&
		"$COWROOT" --store "$S" image import base "$T/tree" &&
		"$COWROOT" --store "$S" client add maint --image base &&
		"$COWROOT" --store "$S" client snapshot maint golden@2 &&
		"$COWROOT" --store "$S" client rm maint &&
		"$COWROOT" --store "$S" client add pi-01 --image base &&
		"$COWROOT" --store "$S" client add kiosk+1 --image golden@2 &&
		"$COWROOT" --store "$OTHER" init &&
		"$COWROOT" --store "$OTHER" image import elsewhere "$T/tree" &&
		"$COWROOT" --store "$OTHER" client add other-client --image elsewhere
}
check "a store with two images and two clients" setup
export COWROOT_STORE=$OTHER

# ---- groups, verbs and options: those of the CLI's own help -----------------------------------

# the groups: the first words of `cowroot --help`'s command lines; a group's
# verbs: what `cowroot GROUP --help` lists ("usage:", then a line per verb),
# where a command without verbs prints its own one-line usage instead
"$COWROOT" --help >"$T/help" 2>&1
awk '/^  [a-z]/ { print $1 }' "$T/help" | sort -u >"$T/nouns"
check "cowroot --help names the groups" test -s "$T/nouns"
check "the groups are those of cowroot --help" expect_comp "$(cat "$T/nouns")" ""
check "a group by its prefix" expect_comp "client" cl
check "global options" expect_comp "--store --help --version" --

commands=()
while read -r noun; do
	"$COWROOT" --store "$S" "$noun" --help >"$T/usage" 2>&1
	verbs=
	if [ "$(head -n 1 "$T/usage")" = "usage:" ]; then
		verbs=$(sed -n "s/^  cowroot \[--store DIR\] $noun \([a-z]*\).*/\1/p" "$T/usage" | tr '\n' ' ')
	fi
	if [ -n "$verbs" ]; then
		check "the verbs of '$noun' are those it lists" expect_comp "$verbs" "$noun" ""
		for verb in $verbs; do commands+=("$noun $verb"); done
	else
		commands+=("$noun")
	fi
done <"$T/nouns"
check "every command of cowroot --help is completed" test ${#commands[@]} -ge 28

# each command's options: those its usage names (not the global --store), and
# --help: in its synopsis lines (the "usage:" line and those continuing it
# with "[" or "cowroot") and at the start of its option lines ("  --opt ..."),
# not where its prose mentions another's
usage_options() {
	awk 'BEGIN { syn = 1 } syn && (NR == 1 || /^[ \t]+(\[|cowroot )/) { print; next } { syn = 0 }
		/^ +--?[a-z]/ { print $1 }' "$1" |
		grep -oE -- "(^|[][ (|',])(--[a-z][a-z-]*|-[a-z])([^a-z-]|\$)" |
		sed -E 's/^[^-]*//; s/[^a-z-]$//' | grep -vx -- --store
	echo --help
}
for c in "${commands[@]}"; do
	# shellcheck disable=SC2086 # "NOUN VERB"
	"$COWROOT" --store "$S" $c --help >"$T/usage" 2>&1
	# shellcheck disable=SC2086
	check "the options of '$c' are those of its usage" expect_comp "$(usage_options "$T/usage" | sort -u)" $c -
done
check "'client shell NAME' offers -- before the command" expect_comp "-- --chroot --help" --store "$S" client shell pi-01 -

# ---- names from the store ------------------------------------------------------------------------

check "clients after 'client reset '" expect_comp "pi-01 kiosk+1" --store "$S" client reset ""
check "a client by its prefix" expect_comp "kiosk+1" --store "$S" client reset k
check "clients after 'client diff ', options after the name" expect_comp "--json --help" --store "$S" client diff pi-01 ""
check "images after '--image '" expect_comp "base golden@2" --store "$S" client add new --image ""
check "an image by its prefix" expect_comp "golden@2" --store "$S" client add new --image g
check "images after 'mount --image '" expect_comp "base golden@2" --store "$S" mount --image ""
check "images after '--onto '" expect_comp "base golden@2" --store "$S" client rebase pi-01 --onto ""
check "images after 'image show '" expect_comp "base golden@2" --store "$S" image show ""
check "clients after 'tftp serve --client '" expect_comp "pi-01 kiosk+1" --store "$S" tftp serve --client ""
check "--store=DIR, split at '=' as bash does" expect_comp "pi-01 kiosk+1" --store="$S" client rm ""
check "--image=, split at '='" expect_comp "base golden@2" --store="$S" client add new --image=""
check "without --store: \$COWROOT_STORE's clients" expect_comp "other-client" client reset ""
check "and its images" expect_comp "elsewhere" client add x --image ""
check "a store that is none: no names, no error" expect_comp "" --store "$T/nostore" client reset ""
check "no name where a new one goes" expect_comp "" --store "$S" client add ""
check "no name after the last argument" expect_comp "--help" --store "$S" client reset pi-01 ""

# ---- values, paths, commands -------------------------------------------------------------------

check "--on-boot values" expect_comp "keep reset" --store "$S" client set pi-01 --on-boot ""
check "--arch values" expect_comp "arm arm64" netboot sdcard /mnt --arch ""
check "options given are not offered again" expect_comp "--serial --mac --boot-args --dtb --on-boot --quota --quota-files --help" \
	--store "$S" client set pi-01 --ip 192.168.1.9 -
check "the store's directory after --store" has_comp "$S" --store "$T/st"
check "and after --store=" has_comp "$S" --store="$T/st"
check "a file after 'image import NAME '" has_comp "$T/tree" --store "$S" image import x "$T/tr"
check "a directory after 'mount CLIENT '" has_comp "$T/tree" --store "$S" mount pi-01 "$T/tr"
check "a directory after 'mount --image IMAGE '" has_comp "$T/tree" --store "$S" mount --image base "$T/tr"
check "commands after 'client shell NAME --'" has_comp bash --store "$S" client shell pi-01 -- ba
check "files after the command" has_comp "$T/tree" --store "$S" client shell pi-01 -- ls "$T/tr"
check "nothing after an unknown group" expect_comp "" bogus ""
check "nothing after an unknown verb" expect_comp "" image bogus ""

finish
