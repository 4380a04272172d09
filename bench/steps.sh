# steps.sh: what bench/workload.sh and bench/client.sh share (sourced):
# the step timer and the page cache drop.  Needs MNT, T and DROP set.

drop() {
	sync
	[ "$DROP" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
}

run() { # [NOSYNC=1] run NAME CMD...: time CMD (after flushing earlier dirty data, untimed)
	local name=$1 t0 t1 rc
	shift
	[ "${NOSYNC:-0}" = 1 ] || sync
	t0=${EPOCHREALTIME/./}
	"$@"
	rc=$?
	t1=${EPOCHREALTIME/./}
	if [ $rc -ne 0 ]; then
		echo "METRIC $name FAIL(rc=$rc)"
	else
		printf 'METRIC %s %d.%06d\n' "$name" $(((t1 - t0) / 1000000)) $(((t1 - t0) % 1000000))
	fi
}
