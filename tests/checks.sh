# shellcheck shell=bash
# Sourced by the shell tests: "ok NAME" / "FAIL NAME: reason" lines and the
# closing "N passed, N failed" with the exit status.
passed=0
failed=0
ok() {
	echo "ok $*"
	passed=$((passed + 1))
}
bad() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
# check NAME FUNCTION [ARGS...]: run the function; its output is the failure reason.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		bad "$name: $(printf '%s' "$out" | tail -n 8 | tr '\n' ' ' | cut -c1-600)"
	fi
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit $?
}
