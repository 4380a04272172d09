# report-scale.awk: the "Hundreds of clients" tables of RESULTS.md from
# bench/scale.sh's results.tsv (config <TAB> rep <TAB> clients <TAB> metric
# <TAB> value).  Run as awk -F'\t' -f median.awk -f report-scale.awk.

function f2(x) { return x == "" ? "—" : sprintf(x < 10 ? "%.2f" : x < 100 ? "%.1f" : "%.0f", x) }
function med(c, n, m) { return median(vals[c SUBSEP n SUBSEP m]) }
function mib(c, n, m,    x) { x = med(c, n, m); return x == "" ? "—" : f2(x / 1024) }
function label(c,    b) {
	b = body[c] == "" ? "" : "`" body[c] "`"
	if (c == "serve")
		return "as `cowroot serve` writes it" (b == "" ? " (none: ganesha's defaults)" : ": " b)
	return c == "default" ? "ganesha's defaults" : c (b == "" ? "" : ": " b)
}

$4 == "mdcache" { body[$1] = $5; next }
$4 == "failed" { failed[$1 SUBSEP $3] = 1; next }
$2 == 0 { setup[$1 SUBSEP $3] = $5; next }
{
	k = $1 SUBSEP $3 SUBSEP $4
	vals[k] = vals[k] " " $5
	if (!(($1 SUBSEP $3) in seen)) {
		seen[$1 SUBSEP $3] = 1
		if (!($1 in isc)) { isc[$1] = 1; C[++nc] = $1 }
		N[$1, ++nn[$1]] = $3 + 0
	}
	if ($4 == "start_s") nrep[$1 SUBSEP $3]++
}

END {
	for (i = 1; i <= nc; i++) { # counts in increasing order
		c = C[i]
		for (a = 2; a <= nn[c]; a++) {
			t = N[c, a]
			for (b = a - 1; b >= 1 && N[c, b] > t; b--)
				N[c, b + 1] = N[c, b]
			N[c, b + 1] = t
		}
	}
	print "| clients | MDCACHE | serving (s) | last export mounts (s) | reload: add answers (s) | reload: rm gone (s) | serve says reloaded, add / rm (s) | booted client errors | ganesha RSS idle (MiB) | ganesha RSS after walk (MiB) | after 2nd walk (MiB) | ganesha peak (VmHWM, MiB) | serve RSS (MiB) |"
	print "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for (i = 1; i <= nc; i++) {
		c = C[i]
		for (a = 1; a <= nn[c]; a++) {
			n = N[c, a]
			hwm = med(c, n, "ganesha_hwm_end_kib")
			if (hwm == "") hwm = med(c, n, "ganesha_hwm_used2_kib")
			printf "| %d%s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s |\n", n,
				((c SUBSEP n) in failed) ? " (a rep failed)" : "", label(c),
				f2(med(c, n, "start_s")), f2(med(c, n, "start_mount_s")),
				f2(med(c, n, "add_s")), f2(med(c, n, "rm_s")),
				f2(med(c, n, "add_reloaded_s")), f2(med(c, n, "rm_reloaded_s")),
				med(c, n, "booted_errors") == "" ? "—" : med(c, n, "booted_errors"),
				mib(c, n, "ganesha_rss_idle_kib"), mib(c, n, "ganesha_rss_used_kib"),
				mib(c, n, "ganesha_rss_used2_kib"), hwm == "" ? "—" : f2(hwm / 1024),
				mib(c, n, "serve_rss_used_kib")
		}
	}
	print ""
	# growth per client between the two largest counts of each configuration
	head = 0
	for (i = 1; i <= nc; i++) {
		c = C[i]
		if (nn[c] < 2)
			continue
		hi = N[c, nn[c]]
		lo = N[c, nn[c] - 1]
		if (!head++) {
			print "Growth per client (RSS slope between the two largest counts, KiB per client):"
			print ""
			print "| MDCACHE | between | ganesha idle | ganesha after walk | after 2nd walk | serve |"
			print "|---|---|---:|---:|---:|---:|"
		}
		printf "| %s | %d → %d clients", label(c), lo, hi
		split("ganesha_rss_idle_kib ganesha_rss_used_kib ganesha_rss_used2_kib serve_rss_used_kib", ms, " ")
		for (j = 1; j <= 4; j++) {
			x = med(c, hi, ms[j])
			y = med(c, lo, ms[j])
			printf " | %s", x == "" || y == "" ? "—" : f2((x - y) / (hi - lo))
		}
		print " |"
	}
	if (head)
		print ""
	line = ""
	for (i = 1; i <= nc; i++)
		for (a = 1; a <= nn[C[i]]; a++)
			if ((C[i] SUBSEP N[C[i], a]) in setup)
				line = line sprintf("%s%d (%s s)", line == "" ? "" : ", ", N[C[i], a], f2(setup[C[i] SUBSEP N[C[i], a]]))
	if (line != "")
		print "Defining the clients (one `cowroot client add` each, from the previous count up to this one): " line "."
}
