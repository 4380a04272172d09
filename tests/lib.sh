# Sourced by the test scripts (bash): skipping, checks and result lines.
#
# Results: "ok NAME" / "FAIL NAME: reason" per check, "N passed, N failed" at
# the end; exit 0 when all passed, 1 on a failure, 77 (skip) when the
# machine lacks a facility.

passed=0
failed=0
skip() {
	echo "SKIP: $*"
	exit 77
}
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
