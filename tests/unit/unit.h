/* SPDX-License-Identifier: MIT */
/*
 * What the unit tests share: TAP output (one "ok N - what" / "not ok N -
 * what (details)" line per check; tap_finish() prints the plan and the
 * totals and gives the exit status) and path helpers over a view.
 * Header-only: each test is one program.
 */
#ifndef COWROOT_UNIT_H
#define COWROOT_UNIT_H

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cowroot.h"

static int n_checks, n_failed, n_skipped;

static void vcheck(bool ok, const char *details, const char *fmt, va_list ap)
{
	char desc[512];
	vsnprintf(desc, sizeof(desc), fmt, ap);
	n_checks++;
	if (ok) {
		printf("ok %d - %s\n", n_checks, desc);
	} else {
		n_failed++;
		printf("not ok %d - %s (%s)\n", n_checks, desc, details && *details ? details : "failed");
	}
	fflush(stdout);
}

/* One check: @ok, @details explain a failure. */
static bool check(bool ok, const char *details, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool check(bool ok, const char *details, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vcheck(ok, details, fmt, ap);
	va_end(ap);
	return ok;
}

static const char *errname(long long v)
{
	static char buf[64];
	if (v >= 0)
		return "";
	snprintf(buf, sizeof(buf), " (%s)", strerror((int)-v));
	return buf;
}

/* A return value check: @got must equal @want (both may be -errno). */
static bool check_int(long long got, long long want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool check_int(long long got, long long want, const char *fmt, ...)
{
	char details[256], g[64];
	snprintf(g, sizeof(g), "%s", errname(got));
	snprintf(details, sizeof(details), "got %lld%s, want %lld%s", got, g, want, errname(want));
	va_list ap;
	va_start(ap, fmt);
	vcheck(got == want, details, fmt, ap);
	va_end(ap);
	return got == want;
}

static void skip(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
__attribute__((unused)) static void skip(const char *reason, const char *fmt, ...)
{
	char desc[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	n_checks++;
	n_skipped++;
	printf("ok %d - %s # SKIP %s\n", n_checks, desc, reason);
	fflush(stdout);
}

static void bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The plan and totals; the exit status of the test. */
static int tap_finish(void)
{
	printf("1..%d\n", n_checks);
	printf("# %d passed, %d failed, %d skipped\n", n_checks - n_failed - n_skipped, n_failed, n_skipped);
	return n_failed ? 1 : 0;
}

/* ---- paths in a view ---- */

/* Look @path ("a/b/c", "" for the root) up from the root, dropping the
 * references taken on the way. */
static int walk(struct cow_view *v, const char *path, struct cow_attr *ret)
{
	char buf[1024], *save = NULL;
	uint64_t cur = cow_view_root(v);
	struct cow_attr a;
	int r = cow_getattr(v, cur, &a);
	if (r < 0)
		return r;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		r = cow_lookup(v, cur, c, &a);
		if (r < 0)
			return r;
		cow_forget(v, a.ino, 1);
		cur = a.ino;
	}
	*ret = a;
	return 0;
}

__attribute__((unused)) static uint64_t ino_of(struct cow_view *v, const char *path)
{
	struct cow_attr a;
	return walk(v, path, &a) == 0 ? a.ino : 0;
}

__attribute__((unused)) static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* nftw callback removing everything (the temp dir at the end) */
__attribute__((unused)) static int rm_cb(const char *p, const struct stat *s, int type, struct FTW *ftw)
{
	(void)s;
	(void)type;
	(void)ftw;
	remove(p);
	return 0;
}

#endif
