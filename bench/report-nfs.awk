# report-nfs.awk: the NFS suite's tables of RESULTS.md from bench/nfs.sh's
# results.tsv (stack <TAB> rep <TAB> clients <TAB> metric <TAB> value).
# Run as awk -f median.awk -f report-nfs.awk.

function f2(x) { return x == "" ? "—" : sprintf(x < 10 ? "%.2f" : x < 100 ? "%.1f" : "%.0f", x) }
function med(s, n, m) { return median(vals[s, n, m]) }
function label(s) { return s == "vfs" ? "FSAL_VFS, plain copy" : s == "cowroot-shared" ? "cowroot, one shared export" : s }

$4 == "import_s" { next }

{
	if (!(($1) in seen_s)) {
		seen_s[$1] = 1
		S[++ns] = $1
	}
	if (!(($3) in seen_n)) {
		seen_n[$3] = 1
		N[++nn] = $3
	}
	vals[$1, $3, $4] = vals[$1, $3, $4] " " $5
	v[$1, $2, $3, $4] = $5
	reps[$2] = 1
	if ($4 == "failed")
		failed[$1, $3] = 1
}

END {
	print "Medians over reps (each run starts its server cold):"
	print ""
	print "| clients | server | all booted (s) | client booted p50 (s) | steps/s | MB/s | step p50 (ms) | step p99 (ms) | ganesha CPU (s) | ganesha RSS after (MiB) |"
	print "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for (i = 1; i <= nn; i++)
		for (k = 1; k <= ns; k++) {
			s = S[k]
			n = N[i]
			print "| " n " | " label(s) (failed[s, n] ? " (a run FAILED)" : "") \
				" | " f2(med(s, n, "all_booted_s")) " | " f2(med(s, n, "booted_p50_s")) \
				" | " f2(med(s, n, "ops_per_s")) " | " f2(med(s, n, "mb_per_s")) \
				" | " f2(med(s, n, "lat_p50_ms")) " | " f2(med(s, n, "lat_p99_ms")) " | " f2(med(s, n, "cpu_s")) \
				" | " f2(med(s, n, "rss_end_kib") / 1024) " |"
		}
	print ""
	print "Per step type, p50 / p99 in ms (mount: from the common start to the MOUNT reply):"
	print ""
	print "| clients | server | mount | stat | read | list | write |"
	print "|---:|---|---:|---:|---:|---:|---:|"
	split("mount stat read list write", T, " ")
	for (i = 1; i <= nn; i++)
		for (k = 1; k <= ns; k++) {
			s = S[k]
			n = N[i]
			line = "| " n " | " label(s) " |"
			for (t = 1; t <= 5; t++)
				line = line " " f2(med(s, n, "lat_p50_ms_" T[t])) " / " f2(med(s, n, "lat_p99_ms_" T[t])) " |"
			print line
		}
	print ""
	print "Ratio cowroot / FSAL_VFS, median over reps of the per-rep ratio (throughput: higher is better,"
	print "1.00 is the limit; time to all booted: lower is better):"
	print ""
	print "| clients | server | throughput (steps/s) | MB/s | time to all booted | ganesha CPU |"
	print "|---:|---|---:|---:|---:|---:|"
	for (i = 1; i <= nn; i++)
		for (k = 2; k <= ns; k++) {
			n = N[i]
			s = S[k]
			for (m = 1; m <= 4; m++) {
				metric = m == 1 ? "ops_per_s" : m == 2 ? "mb_per_s" : m == 3 ? "all_booted_s" : "cpu_s"
				list = ""
				for (r in reps)
					if (("vfs", r, n, metric) in v && (s, r, n, metric) in v && v["vfs", r, n, metric] > 0)
						list = list " " v[s, r, n, metric] / v["vfs", r, n, metric]
				ratio[s, n, m] = median(list)
			}
			print "| " n " | " label(s) " | " f2(ratio[s, n, 1]) " | " f2(ratio[s, n, 2]) " | " f2(ratio[s, n, 3]) " | " f2(ratio[s, n, 4]) " |"
		}
	print ""
	if (!(("cowroot", 32, 1) in ratio) || ratio["cowroot", 32, 1] == "")
		print "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **not measured** (no 32-client runs)."
	else if (ratio["cowroot", 32, 1] >= 0.9)
		print "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **met** (" f2(ratio["cowroot", 32, 1]) "×)."
	else
		printf "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **missed**: %s×, %.0f%% short.\n", f2(ratio["cowroot", 32, 1]), (1 - ratio["cowroot", 32, 1] / 0.9) * 100
}
