# report-nfs.awk: the NFS suite's tables of RESULTS.md from bench/nfs.sh's
# results.tsv (stack <TAB> rep <TAB> clients <TAB> metric <TAB> value).
# Run as awk -f median.awk -f report-nfs.awk, with -v tftp_files="NAME:BYTES ..."
# (tftp-files.txt) when the boot fetched files over TFTP.

function f2(x) { return x == "" ? "—" : sprintf(x < 10 ? "%.2f" : x < 100 ? "%.1f" : "%.0f", x) }
function med(s, n, m) { return median(vals[s, n, m]) }
function label(s) {
	return s == "vfs" ? "FSAL_VFS, plain copy" : s == "cowroot-shared" ? "cowroot, one shared export" : \
		s == "vfs-dnsmasq-default" ? "FSAL_VFS, dnsmasq's default --tftp-max (50)" : s
}
function tftp_server(s) { return s ~ /^vfs/ ? "dnsmasq" : s ~ /^cowroot/ ? "cowroot serve" : "?" }
function mib(b) { return b >= 1048576 ? sprintf("%.0f MiB", b / 1048576) : sprintf("%.0f KiB", b / 1024) }

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
	if ($4 == "tftp_files_per_client")
		tftp = 1
	ran[$1, $3] = 1
	if ($4 == "tftp_file_limit_s")
		file_limit = $5
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
			if (!ran[s, n])
				continue
			print "| " n " | " label(s) (failed[s, n] ? " (a run FAILED)" : "") \
				" | " f2(med(s, n, "all_booted_s")) " | " f2(med(s, n, "booted_p50_s")) \
				" | " f2(med(s, n, "ops_per_s")) " | " f2(med(s, n, "mb_per_s")) \
				" | " f2(med(s, n, "lat_p50_ms")) " | " f2(med(s, n, "lat_p99_ms")) " | " f2(med(s, n, "cpu_s")) \
				" | " f2(med(s, n, "rss_end_kib") / 1024) " |"
		}
	print ""
	if (tftp) {
		nf = split(tftp_files, F, " ")
		print "TFTP before the mount (each client fetches the files in order from " \
			"its own address: blksize 1468 and tsize asked for, windowsize 1, 1 s retransmission, " \
			"a file fails after 10 retransmissions" (file_limit > 0 ? " or " file_limit " s" : ", with no time limit") \
			"); time per file fetch p50 / p90 / p99 / max in s (of the fetches that completed):"
		print ""
		hdr = "| clients | server | TFTP server | all fetched (s) | TFTP MB/s"
		sep = "|---:|---|---|---:|---:"
		for (f = 1; f <= nf; f++) {
			split(F[f], nb, ":")
			hdr = hdr " | " nb[1] " (" mib(nb[2]) ")"
			sep = sep "|---:"
		}
		print hdr " | fetches done | retransmissions | server resends | error replies | TFTP failures | clients not booted | TFTP server CPU (s) | bootstorm CPU (s) / all booted (s) |"
		print sep "|---:|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= nn; i++)
			for (k = 1; k <= ns; k++) {
				s = S[k]
				n = N[i]
				if (med(s, n, "tftp_files_per_client") == "")
					continue
				line = "| " n " | " label(s) (failed[s, n] ? " (a run FAILED)" : "") " | " tftp_server(s) \
					" | " f2(med(s, n, "tftp_all_done_s")) " | " f2(med(s, n, "tftp_mb_per_s")) " |"
				for (f = 1; f <= nf; f++)
					line = line " " f2(med(s, n, "tftp_p50_s_f" f)) " / " f2(med(s, n, "tftp_p90_s_f" f)) \
						" / " f2(med(s, n, "tftp_p99_s_f" f)) " / " f2(med(s, n, "tftp_max_s_f" f)) " |"
				line = line " " med(s, n, "tftp_fetches_done") " of " n * nf " | " med(s, n, "tftp_retransmissions") " | " med(s, n, "tftp_server_resends") \
					" | " med(s, n, "tftp_error_replies") " | " med(s, n, "tftp_failures") \
					" | " med(s, n, "failed_clients") " | " f2(med(s, n, "tftp_cpu_s")) \
					" | " f2(med(s, n, "client_cpu_s")) " / " f2(med(s, n, "all_booted_s")) " |"
				print line
			}
		print ""
		print "(Counts are medians over reps.  Retransmissions: the clients' own, after 1 s without progress; " \
			"server resends: DATA blocks the clients got twice; an error reply other than \"not found\" " \
			"starts the file again after 1 s, as u-boot does.  The TFTP server's CPU: dnsmasq's process, " \
			"or the whole `cowroot serve` process, whose TFTP thread it mostly is.  bootstorm's CPU: the one-thread " \
			"simulator of all clients, TFTP and NFS, on the same two cores.)"
		print ""
	}
	print "Per step type, p50 / p99 in ms (mount: from the start of the client's mount, after its TFTP if any, to the MOUNT reply):"
	print ""
	print "| clients | server | mount | stat | read | list | write |"
	print "|---:|---|---:|---:|---:|---:|---:|"
	split("mount stat read list write", T, " ")
	for (i = 1; i <= nn; i++)
		for (k = 1; k <= ns; k++) {
			s = S[k]
			n = N[i]
			if (!ran[s, n])
				continue
			line = "| " n " | " label(s) " |"
			for (t = 1; t <= 5; t++)
				line = line " " f2(med(s, n, "lat_p50_ms_" T[t])) " / " f2(med(s, n, "lat_p99_ms_" T[t])) " |"
			print line
		}
	print ""
	print "Ratio cowroot / FSAL_VFS, median over reps of the per-rep ratio (throughput: higher is better,"
	print "1.00 is the limit; time to all booted: lower is better):"
	print ""
	nm = tftp ? 7 : 4
	split("ops_per_s mb_per_s all_booted_s cpu_s tftp_mb_per_s tftp_all_done_s tftp_p99_s", RM, " ")
	print "| clients | server | throughput (steps/s) | MB/s | time to all booted | ganesha CPU |" \
		(tftp ? " TFTP MB/s | TFTP all fetched | TFTP p99 per file |" : "")
	print "|---:|---|---:|---:|---:|---:|" (tftp ? "---:|---:|---:|" : "")
	for (i = 1; i <= nn; i++)
		for (k = 2; k <= ns; k++) {
			n = N[i]
			s = S[k]
			if (!ran[s, n])
				continue
			line = "| " n " | " label(s) " |"
			for (m = 1; m <= nm; m++) {
				metric = RM[m]
				list = ""
				for (r in reps)
					if (("vfs", r, n, metric) in v && (s, r, n, metric) in v && v["vfs", r, n, metric] > 0)
						list = list " " v[s, r, n, metric] / v["vfs", r, n, metric]
				ratio[s, n, m] = median(list)
				line = line " " f2(ratio[s, n, m]) " |"
			}
			print line
		}
	print ""
	if (!(("cowroot", 32, 1) in ratio) || ratio["cowroot", 32, 1] == "")
		print "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **not measured** (no 32-client runs)."
	else if (ratio["cowroot", 32, 1] >= 0.9)
		print "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **met** (" f2(ratio["cowroot", 32, 1]) "×)."
	else
		printf "- Target, 32-client throughput ≥ 0.9× FSAL_VFS: **missed**: %s×, %.0f%% short.\n", f2(ratio["cowroot", 32, 1]), (1 - ratio["cowroot", 32, 1] / 0.9) * 100
}
