# report.awk: the tables of RESULTS.md from run.sh's results.tsv
# (stack <TAB> rep <TAB> metric <TAB> seconds|FAIL).  -v stacks="plain ..."
# names the stacks in column order; the first is the reference (plain).
# Run as awk -f median.awk -f report.awk.  POSIX awk (mawk): no asort.

function fmt_s(x) { return x == "" ? "FAIL" : sprintf(x < 10 ? "%.3f" : "%.1f", x) }
function fmt_r(x) { return x == "" ? "—" : sprintf(x < 10 ? "%.2f" : "%.1f", x) }

BEGIN {
	ns = split(stacks, S, " ")
	ref = S[1]
}

$3 == "setup" { next }

{
	if (!($3 in seen)) {
		seen[$3] = 1
		M[++nm] = $3
	}
	key = $1 SUBSEP $3
	if ($4 ~ /^[0-9.]+$/) {
		vals[key] = vals[key] " " $4
		v[$1, $2, $3] = $4
		reps[$2] = 1
	} else {
		failed[key] = 1
	}
}

END {
	for (i = 1; i <= nm; i++)
		for (j = 1; j <= ns; j++) {
			key = S[j] SUBSEP M[i]
			med[key] = failed[key] ? "" : median(vals[key])
			list = ""
			for (r in reps)
				if ((S[j], r, M[i]) in v && (ref, r, M[i]) in v && v[ref, r, M[i]] > 0)
					list = list " " v[S[j], r, M[i]] / v[ref, r, M[i]]
			ratio[key] = failed[key] ? "" : median(list)
		}

	head = "| step |"
	rule = "|---|"
	for (j = 1; j <= ns; j++) {
		head = head " " S[j] " |"
		rule = rule "---:|"
	}
	print head
	print rule
	for (i = 1; i <= nm; i++) {
		line = "| " M[i] " |"
		for (j = 1; j <= ns; j++)
			line = line " " fmt_s(med[S[j] SUBSEP M[i]]) " |"
		print line
	}

	print ""
	print "Ratio to " ref " (median over reps of the per-rep ratio):"
	print ""
	print head
	print rule
	for (j = 1; j <= ns; j++) {
		lsum[S[j]] = 0
		cnt[S[j]] = 0
	}
	for (i = 1; i <= nm; i++) {
		line = "| " M[i] " |"
		for (j = 1; j <= ns; j++) {
			x = ratio[S[j] SUBSEP M[i]]
			line = line " " fmt_r(x) " |"
			if (x != "" && x > 0) {
				lsum[S[j]] += log(x)
				cnt[S[j]]++
			}
		}
		print line
	}
	line = "| **geometric mean** |"
	for (j = 1; j <= ns; j++) {
		gm[S[j]] = cnt[S[j]] ? exp(lsum[S[j]] / cnt[S[j]]) : ""
		line = line " **" fmt_r(gm[S[j]]) "** |"
	}
	print line

	print ""
	print "Targets (issue 14), this table:"
	print ""
	if (!(("cowroot" SUBSEP M[1]) in med)) {
		print "cowroot was not run."
		exit
	}
	g = gm["cowroot"]
	o = ("overlay" SUBSEP M[1]) in med ? gm["overlay"] : ""
	if (g == "")
		print "- FUSE view geometric mean ≤ 2.0× plain, and below kernel overlayfs's: **not measured** (failed steps)."
	else if (g <= 2.0 && (o == "" || g < o))
		print "- FUSE view geometric mean ≤ 2.0× plain, and below kernel overlayfs's: **met** (" fmt_r(g) "×" (o == "" ? ", overlayfs not run" : " against " fmt_r(o) "×") ")."
	else
		printf "- FUSE view geometric mean ≤ 2.0× plain, and below kernel overlayfs's: **missed**: %s× (overlayfs %s×).\n", fmt_r(g), fmt_r(o)
	# a step's ratio to kernel overlayfs: the per-rep ratios' median over the medians' ratio
	over = ""
	for (i = 1; i <= nm; i++) {
		c = med["cowroot" SUBSEP M[i]]
		k = med["overlay" SUBSEP M[i]]
		if (c == "" || k == "" || k <= 0)
			continue
		if (c > k * 1.5)
			over = over (over ? ", " : "") sprintf("%s (%.1f×: %s s vs %s s)", M[i], c / k, fmt_s(c), fmt_s(k))
	}
	if (o == "")
		print "- No step slower than kernel overlayfs by more than 1.5×: not measured (overlayfs not run)."
	else if (over == "")
		print "- No step slower than kernel overlayfs by more than 1.5×: **met**."
	else
		print "- No step slower than kernel overlayfs by more than 1.5×: **missed** on " over "."
	if (!(("fuse-overlayfs" SUBSEP M[1]) in med))
		exit
	# within 5% is a tie: these machines are noisier than that
	slower = tie = ""
	for (i = 1; i <= nm; i++) {
		c = med["cowroot" SUBSEP M[i]]
		f = med["fuse-overlayfs" SUBSEP M[i]]
		if (c == "")
			slower = slower (slower ? ", " : "") M[i] " (failed)"
		else if (f != "" && c > f * 1.05)
			slower = slower (slower ? ", " : "") sprintf("%s (%.2f× fuse-overlayfs: %s s vs %s s)", M[i], c / f, fmt_s(c), fmt_s(f))
		else if (f != "" && c > f)
			tie = tie (tie ? ", " : "") M[i]
	}
	if (slower == "")
		print "- No step slower than fuse-overlayfs: **met**" (tie ? " (within 5% on " tie ")" : "") "."
	else
		print "- No step slower than fuse-overlayfs: **missed** on " slower "." (tie ? " Within 5% (a tie): " tie "." : "")
}
