# report-lifecycle.awk: the lifecycle table of RESULTS.md from
# bench/lifecycle.sh's results.tsv (rep <TAB> metric <TAB> value).
# -v changes=N (files in the layer at reset/snapshot).
# Run as awk -f median.awk -f report-lifecycle.awk.

function f2(x) { return x == "" ? "—" : sprintf(x < 10 ? "%.2f" : x < 100 ? "%.1f" : "%.0f", x) }
function med(m) { return median(vals[m]) }
function row(what, value, target) { print "| " what " | " value " | " target " |" }
function verdict(x, limit) { return x == "" ? "not measured" : x <= limit ? "**met**" : sprintf("**missed** (%.1f× the target)", x / limit) }

$2 == "failed" { failed = 1; next }
{
	vals[$2] = vals[$2] " " $3
	nrep[$2]++
	if ($2 ~ /^rss_[0-9]+_kib$/) {
		k = $2
		gsub(/[^0-9]/, "", k)
		if (!(k in isk)) {
			isk[k] = 1
			K[++nk] = k + 0
		}
	}
}

END {
	if (failed)
		print "**A rep failed**: the medians below are of the reps that got that far.\n"
	print "| what | median | target |"
	print "|---|---:|---|"
	c = changes
	row("reset of a layer with " c " changed files (`client reset`, not served)", f2(med("reset_ms")) " ms", "≤ 50 ms: " verdict(med("reset_ms"), 50))
	row("the same while served (server resets the view, drops ganesha's cache)", f2(med("reset_live_ms")) " ms", "")
	row("snapshot of a layer with " c " changed files (`client snapshot`)", f2(med("snapshot_ms")) " ms", "≤ 1 s: " verdict(med("snapshot_ms"), 1000))
	row("gc of the two dead layers those resets left", f2(med("gc_ms")) " ms", "")
	row("image import of the base tree (store size " f2(med("store_kib") / 1024) " MiB)", f2(med("import_ms") / 1000) " s", "")
	row("image export to a bundle (bundle size " f2(med("bundle_kib") / 1024) " MiB)", f2(med("export_ms") / 1000) " s", "")
	row("image load of that bundle", f2(med("load_ms") / 1000) " s", "")
	# counts in increasing order
	for (i = 2; i <= nk; i++) {
		t = K[i]
		for (j = i - 1; j >= 1 && K[j] > t; j--)
			K[j + 1] = K[j]
		K[j + 1] = t
	}
	for (i = 1; i <= nk; i++)
		row("ganesha RSS, " K[i] " idle client" (K[i] == 1 ? "" : "s") " served (each mounted once)", f2(med("rss_" K[i] "_kib") / 1024) " MiB", "")
	# growth per idle client: between the smallest count with the FSAL
	# loaded (at least one client) and the largest
	lo = ""
	for (i = 1; i <= nk; i++)
		if (K[i] >= 1 && lo == "")
			lo = K[i]
	hi = K[nk]
	if (lo != "" && hi > lo) {
		g = (med("rss_" hi "_kib") - med("rss_" lo "_kib")) / (hi - lo)
		row("RSS growth per idle client (" lo " → " hi " clients)", f2(g) " KiB", "≤ 1 MiB: " verdict(g, 1024))
	}
	print ""
	print "Reps: " nrep["reset_ms"] "."
}
