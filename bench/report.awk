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
	print "### Targets (issue 5)"
	print ""
	print "Reference geometric means from the issue (same kind of machine and workload): kernel"
	print "overlayfs 2.2×, overlayfs with metacopy 1.2×, fuse-overlayfs 5.0×, unionfs-fuse 5.5×,"
	print "libfuse's passthrough_hp 3.0×.  Measured here: " \
		(("overlay" SUBSEP "walk_cold") in med ? "overlayfs " fmt_r(gm["overlay"]) "×, " : "") \
		(("overlay-metacopy" SUBSEP "walk_cold") in med ? "metacopy " fmt_r(gm["overlay-metacopy"]) "×, " : "") \
		(("fuse-overlayfs" SUBSEP "walk_cold") in med ? "fuse-overlayfs " fmt_r(gm["fuse-overlayfs"]) "×." : "")
	print ""
	if (!(("cowroot" SUBSEP "walk_cold") in med)) {
		print "cowroot was not run."
		exit
	}
	g = gm["cowroot"]
	if (g == "")
		print "- FUSE view geometric mean ≤ 2.5× plain: **not measured** (failed steps)."
	else if (g <= 2.5)
		print "- FUSE view geometric mean ≤ 2.5× plain: **met** (" fmt_r(g) "×)."
	else
		printf "- FUSE view geometric mean ≤ 2.5× plain: **missed**: %s×, %.0f%% over the target.\n", fmt_r(g), (g / 2.5 - 1) * 100
	if (!(("fuse-overlayfs" SUBSEP "walk_cold") in med)) {
		print "- No step slower than fuse-overlayfs: not measured (fuse-overlayfs not run)."
		exit
	}
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
