# synccheck.awk: the judge of the power-loss test (powerloss.sh).
#
#   awk -v store=DIR -v before=LIST -v acks=LOG -v expect=N [-v background=BG] -f synccheck.awk TRACE
#
# TRACE is `strace -f -ttt -T -y -s 0` of the server (the FUSE daemon, or
# ganesha under `cowroot serve`); DIR the store's canonical path; LIST the
# paths under DIR that existed before the server started (find output);
# LOG the client's acknowledgements, one "KIND INO T0 T1 PATH" a line
# (syncwriter.c, nfsclient.c commits), N how many it must hold.
#
# Power loss keeps only what was synced.  So for every acknowledgement at
# T1, each file it depends on -- the object's data file (data/L/XX/INO),
# the WAL (cowroot.db-wal) and the database -- must, if the server wrote
# it before T1, have been synced successfully after its last write before
# T1 and before T1; and each such file or directory on its path that is
# new (not in LIST) needs a successful sync of its directory after its
# creation and before T1.  A sync of the store that fails is a failure of
# its own.  Not vacuous: every acknowledgement must find the server's
# writes of its WAL (and, but for a directory's fsync, of its data file)
# in the trace, and LOG must hold N of them.
#
# BG (optional, -v background="TID...") names the server's background
# threads (the flusher, "cowroot-flush"): they commit on their own, so a
# write of theirs that began after the last sync of the file before T1 --
# one that began after the client asked for this sync -- is none of this
# acknowledgement's business (a later WAL frame cannot undo an earlier,
# synced one).  Without such a sync, their writes count like any other.
#
# Prints one line per problem and a summary; exits 1 on any problem.

# seconds since @base, without the rounding of a 10-digit epoch in a double
function secs(s,    dot) {
	dot = index(s, ".")
	if (!dot)
		return s - base
	if (base == "")
		base = substr(s, 1, dot - 1) + 0
	return (substr(s, 1, dot - 1) - base) + ("0" substr(s, dot)) + 0
}

function bad(msg) {
	print "FAIL " msg
	problems++
}

function dirname(p,    i) {
	for (i = length(p); i > 1 && substr(p, i, 1) != "/"; i--)
		;
	return substr(p, 1, i - 1)
}

# the path strace -y printed for the first (n = 1) or second fd argument
function fdpath(call, n,    rest, i) {
	rest = call
	for (i = 1; i <= n; i++) {
		if (!match(rest, /[0-9]+</))
			return ""
		rest = substr(rest, RSTART + RLENGTH)
	}
	return substr(rest, 1, index(rest, ">") - 1)
}

function event(pid, t0, t1, call,    name, ok, ret, rpath, p, dir, nm, q) {
	name = substr(call, 1, index(call, "(") - 1)
	if (!match(call, /\) = -?[0-9]+/))
		return
	ret = substr(call, RSTART + 4, RLENGTH - 4)
	ok = ret !~ /^-/
	rpath = ""
	q = substr(call, RSTART + RLENGTH)
	if (substr(q, 1, 1) == "<")
		rpath = substr(q, 2, index(q, ">") - 2)
	if (name == "fsync" || name == "fdatasync" || name == "syncfs" || name == "sync") {
		p = name == "syncfs" || name == "sync" ? "*" : fdpath(call, 1)
		if (!ok && (p == "*" || index(p, store "/") == 1 || p == store))
			bad(name " of " p " failed at " sprintf("%.6f", base + t0) ": " substr(call, RSTART + 4))
		if (ok) {
			nsync++
			syncp[nsync] = p
			syncb[nsync] = t0
			synce[nsync] = t1
			synced_any[p] = 1
		}
	} else if (name ~ /^(write|pwrite64|pwritev|pwritev2|writev|ftruncate|fallocate)$/ || (name == "ioctl" && call ~ /FICLONE/)) {
		if (ok) {
			p = fdpath(call, 1)
			if (index(p, store "/") == 1)
				addmod(p, t0, t1, pid)
		}
	} else if (name == "copy_file_range") {
		if (ok) {
			p = fdpath(call, 2)
			if (index(p, store "/") == 1)
				addmod(p, t0, t1, pid)
		}
	} else if (name == "openat" || name == "open" || name == "creat") {
		if (ok && rpath != "" && (call ~ /O_CREAT/ || name == "creat"))
			created(rpath, t1)
	} else if (name == "mkdirat") {
		if (ok && match(call, /^mkdirat\([^<]*<[^>]*>, "[^"]*"/)) {
			q = substr(call, RSTART, RLENGTH)
			dir = substr(q, index(q, "<") + 1)
			dir = substr(dir, 1, index(dir, ">") - 1)
			nm = substr(q, index(q, "\"") + 1)
			nm = substr(nm, 1, length(nm) - 1)
			created(substr(nm, 1, 1) == "/" ? nm : dir "/" nm, t1)
		}
	} else if (name == "mkdir") {
		if (ok && match(call, /^mkdir\("\/[^"]*"/))
			created(substr(call, 8, RLENGTH - 8), t1)
	}
}

function addmod(p, t0, t1, pid) {
	nmod++
	modp[nmod] = p
	modb[nmod] = t0
	modt[nmod] = t1
	modbg[nmod] = pid in bgtid
	written[p] = 1
}

function created(p, t) {
	if (!(p in crt) || t < crt[p])
		crt[p] = t
}

# the beginning of the last successful sync of @p that began at or after
# @from and ended by @t1, or -1
function lastsync(p, from, t1,    i, best) {
	best = -1
	for (i = 1; i <= nsync; i++)
		if ((syncp[i] == p || syncp[i] == "*") && syncb[i] >= from && synce[i] <= t1 && syncb[i] > best)
			best = syncb[i]
	return best
}

# the end of the last write of @p that ended by @t1 and that the
# acknowledgement asked for at @t0 depends on, or -1
function lastmod(p, t0, t1,    i, best, s) {
	s = lastsync(p, t0, t1)
	best = -1
	for (i = 1; i <= nmod; i++) {
		if (modp[i] != p || modt[i] > t1 || modt[i] <= best)
			continue
		if (modbg[i] && s >= 0 && modb[i] >= s)
			continue # the background's, after this sync began
		best = modt[i]
	}
	return best
}

# was @p synced successfully, beginning at or after @from and done by @t1?
function synced(p, from, t1,    i) {
	for (i = 1; i <= nsync; i++)
		if ((syncp[i] == p || syncp[i] == "*") && syncb[i] >= from && synce[i] <= t1)
			return 1
	return 0
}

# check one dependency @p of the acknowledgement @what asked for at @t0
# and given at @t1
function need(what, p, t0, t1,    lm, x, c) {
	lm = lastmod(p, t0, t1)
	if (lm < 0)
		return 0
	if (!synced(p, lm, t1))
		bad(what ": " p " was written at " sprintf("%.6f", base + lm) " and not synced after that before the acknowledgement")
	else
		deps_ok++
	# new names on the way, up to the store itself
	for (x = p; index(x, store "/") == 1; x = dirname(x)) {
		if (x in existed)
			continue
		if (!(x in crt)) {
			bad(what ": " x " is new but the trace does not show its creation")
			continue
		}
		c = crt[x]
		if (!synced(dirname(x), c, t1))
			bad(what ": directory " dirname(x) " not synced after " x " was created (" sprintf("%.6f", base + c) ") before the acknowledgement")
		else
			deps_ok++
	}
	return 1
}

BEGIN {
	nbg = split(background, bgs, " ")
	for (i = 1; i <= nbg; i++)
		bgtid[bgs[i]] = 1
	while ((getline line < before) > 0)
		existed[line] = 1
	close(before)
}

{
	pid = $1
	t = secs($2)
	rest = $0
	sub(/^[0-9]+ +[0-9.]+ /, "", rest)
	if (rest ~ /^(---|\+\+\+)/)
		next
	if (rest ~ / <unfinished \.\.\.>$/) {
		pend[pid] = substr(rest, 1, length(rest) - length(" <unfinished ...>"))
		pendt[pid] = t
		next
	}
	if (rest ~ /^<\.\.\. [a-z0-9_]+ resumed>/) {
		if (!(pid in pend))
			next
		sub(/^<\.\.\. [a-z0-9_]+ resumed> ?/, "", rest)
		call = pend[pid] rest
		t0 = pendt[pid]
		delete pend[pid]
		event(pid, t0, t, call)
		next
	}
	dur = 0
	if (match(rest, /<[0-9.]+>$/))
		dur = substr(rest, RSTART + 1, RLENGTH - 2) + 0
	event(pid, t, t + dur, rest)
}

END {
	wal = store "/cowroot.db-wal"
	db = store "/cowroot.db"
	nacks = 0
	while ((getline line < acks) > 0) {
		split(line, a, " ")
		kind = a[1]; ino = a[2] + 0; t0 = secs(a[3]); t1 = secs(a[4]); path = a[5]
		nacks++
		kinds[kind]++
		what = kind " of " path " (ino " ino ", acknowledged at " a[4] ")"
		if (!need(what, wal, t0, t1))
			bad(what ": no write of the WAL before it in the trace (is the trace of the server?)")
		need(what, db, t0, t1)
		if (kind == "fsyncdir")
			continue
		suffix = sprintf("/%02x/%016x", ino % 256, ino)
		found = 0
		for (p in written)
			if (index(p, store "/data/") == 1 && substr(p, length(p) - length(suffix) + 1) == suffix)
				found += need(what, p, t0, t1)
		if (!found)
			bad(what ": no write of its data file (data/*" suffix ") before it in the trace")
	}
	close(acks)
	if (nacks != expect + 0)
		bad("the client logged " nacks " acknowledgements, " expect " expected")
	summary = ""
	for (k in kinds)
		summary = summary " " kinds[k] " " k
	printf "checked %d acknowledgements (%s ): %d dependencies synced in time; %d syncs, %d writes of the store traced; %d problems\n",
	    nacks, summary, deps_ok, nsync, nmod, problems
	exit problems > 0
}
