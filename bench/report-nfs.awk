# report-nfs.awk: the NFS suite's tables of RESULTS.md from bench/nfs.sh's
# results.tsv (stack <TAB> rep <TAB> clients <TAB> metric <TAB> value).
# Run as awk -f median.awk -f report-nfs.awk.

function f2(x) { return x == "" ? "—" : sprintf(x < 10 ? "%.2f" : x < 100 ? "%.1f" : "%.0f", x) }
function med(s, n, m) { return median(vals[s, n, m]) }

$4 == "import_s" { next }

{
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
	print "| clients | server | all booted (s) | client booted p50 (s) | steps/s | MB/s | step p50 (ms) | step p99 (ms) | ganesha RSS after (MiB) |"
	print "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
	for (i = 1; i <= nn; i++)
		for (k = 1; k <= 2; k++) {
			s = k == 1 ? "vfs" : "cowroot"
			n = N[i]
			print "| " n " | " (s == "vfs" ? "FSAL_VFS, plain copy" : "cowroot") (failed[s, n] ? " (a run FAILED)" : "") \
				" | " f2(med(s, n, "all_booted_s")) " | " f2(med(s, n, "booted_p50_s")) \
				" | " f2(med(s, n, "ops_per_s")) " | " f2(med(s, n, "mb_per_s")) \
				" | " f2(med(s, n, "lat_p50_ms")) " | " f2(med(s, n, "lat_p99_ms")) \
				" | " f2(med(s, n, "rss_end_kib") / 1024) " |"
		}
	print ""
	print "Per step type, p50 / p99 in ms (mount: from the common start to the MOUNT reply):"
	print ""
	print "| clients | server | mount | stat | read | list | write |"
	print "|---:|---|---:|---:|---:|---:|---:|"
	split("mount stat read list write", T, " ")
	for (i = 1; i <= nn; i++)
		for (k = 1; k <= 2; k++) {
			s = k == 1 ? "vfs" : "cowroot"
			n = N[i]
			line = "| " n " | " (s == "vfs" ? "FSAL_VFS" : "cowroot") " |"
			for (t = 1; t <= 5; t++)
				line = line " " f2(med(s, n, "lat_p50_ms_" T[t])) " / " f2(med(s, n, "lat_p99_ms_" T[t])) " |"
			print line
		}
	print ""
	print "Ratio cowroot / FSAL_VFS, median over reps of the per-rep ratio (throughput: higher is better,"
	print "1.00 is the limit; time to all booted: lower is better):"
	print ""
	print "| clients | throughput (steps/s) | MB/s | time to all booted |"
	print "|---:|---:|---:|---:|"
	for (i = 1; i <= nn; i++) {
		n = N[i]
		for (m = 1; m <= 3; m++) {
			metric = m == 1 ? "ops_per_s" : m == 2 ? "mb_per_s" : "all_booted_s"
			list = ""
			for (r in reps)
				if (("vfs", r, n, metric) in v && ("cowroot", r, n, metric) in v && v["vfs", r, n, metric] > 0)
					list = list " " v["cowroot", r, n, metric] / v["vfs", r, n, metric]
			ratio[n, m] = median(list)
		}
		print "| " n " | " f2(ratio[n, 1]) " | " f2(ratio[n, 2]) " | " f2(ratio[n, 3]) " |"
	}
	print ""
	if (!((32, 1) in ratio) || ratio[32, 1] == "")
		print "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **not measured** (no 32-client runs)."
	else if (ratio[32, 1] >= 0.9)
		print "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **met** (" f2(ratio[32, 1]) "×)."
	else
		printf "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **missed**: %s×, %.0f%% short.\n", f2(ratio[32, 1]), (1 - ratio[32, 1] / 0.9) * 100
}
