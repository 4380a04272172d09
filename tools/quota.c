/* SPDX-License-Identifier: MIT */
/*
 * Quotas on the command line: `client set NAME --quota SIZE --quota-files
 * N`, `quota default`, and the quota columns of `client list` and `stats`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool quota_parse(const char *opt, const char *s, bool count, uint64_t *ret)
{
	if (count) {
		char *end;
		if (!strcmp(s, "none")) {
			*ret = 0;
			return true;
		}
		errno = 0;
		unsigned long long n = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
		if (n == 0 || *end || errno || n > INT64_MAX) {
			err("invalid %s '%s': a number of objects (1 or more), or none", opt, s);
			return false;
		}
		*ret = n;
		return true;
	}
	int r = cow_size_parse(s, ret);
	if (r < 0) {
		err("invalid %s '%s': a size such as 500M, 10G or 1T (powers of 1024), or none", opt, s);
		return false;
	}
	if (*ret && *ret < 1 << 20) {
		err("invalid %s '%s': at least 1M", opt, s);
		return false;
	}
	return true;
}

void quota_fmt(uint64_t bytes, char *buf, size_t n)
{
	static const char units[] = "KMGT";
	if (!bytes) {
		snprintf(buf, n, "none");
		return;
	}
	double v = (double)bytes;
	int u = -1;
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, n, "%" PRIu64, bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, n, "%.0f%c", v, units[u]);
	else
		snprintf(buf, n, "%.1f%c", v, units[u]);
}

void quota_usage_fmt(uint64_t used, uint64_t max, char *buf, size_t n)
{
	char a[32], b[32];
	quota_fmt(used, a, sizeof(a));
	if (!used)
		snprintf(a, sizeof(a), "0");
	if (!max) {
		snprintf(buf, n, "%s", a);
		return;
	}
	quota_fmt(max, b, sizeof(b));
	snprintf(buf, n, "%s/%s (%d%%)", a, b, (int)(used * 100 / max));
}

int quota_set(struct cow_store *st, const char *name, const char *bytes_arg, const char *files_arg)
{
	struct cow_client_info c;
	uint64_t bytes, files;
	int r = cow_client_get(st, name, &c);
	if (r < 0) {
		if (r == -ENOENT)
			err("no client '%s' (see 'cowroot client list')", name);
		else
			err("cannot read client '%s': %s", name, store_why(st, r));
		return -1;
	}
	bytes = c.quota_bytes;
	files = c.quota_files;
	if ((bytes_arg && !quota_parse("--quota", bytes_arg, false, &bytes)) ||
	    (files_arg && !quota_parse("--quota-files", files_arg, true, &files)))
		return -1;
	r = cow_client_set_quota(st, name, bytes, files);
	if (r < 0) {
		err("cannot change client '%s': %s", name, store_why(st, r));
		return -1;
	}
	char b[32], f[32];
	quota_fmt(bytes, b, sizeof(b));
	snprintf(f, sizeof(f), files ? "%" PRIu64 " objects" : "no limit", files);
	printf("client '%s' may hold %s%s in its layer, %s\n", name, bytes ? "up to " : "", bytes ? b : "any size", f);
	/* a server holding the client applies it now; a mount when next opened */
	struct cow_holder h;
	if (cow_client_holder(st, name, &h) > 0) {
		if (client_served(&h)) {
			char req[128], why[256];
			snprintf(req, sizeof(req), "quota %s\n", name);
			r = control_request(req, why, sizeof(why));
			if (r < 0) {
				err("the server serving '%s' did not apply it: %s (it will when it restarts)", name,
				    why);
				return -1;
			}
			printf("the server serving '%s' applies it now\n", name);
		} else {
			printf("'%s' is in use (%s, pid %d): it applies when the client's view is next opened\n", name,
			       h.what, (int)h.pid);
		}
	}
	return 0;
}

int quota_default_set(struct cow_store *st, const char *bytes_arg, const char *files_arg)
{
	uint64_t bytes = 0, files = 0;
	int r = cow_store_default_quota(st, &bytes, &files);
	if (r < 0) {
		err("cannot read the store's default quota: %s", store_why(st, r));
		return -1;
	}
	if ((bytes_arg && !quota_parse("--quota", bytes_arg, false, &bytes)) ||
	    (files_arg && !quota_parse("--quota-files", files_arg, true, &files)))
		return -1;
	r = cow_store_set_default_quota(st, bytes, files);
	if (r < 0) {
		err("cannot set the store's default quota: %s", store_why(st, r));
		return -1;
	}
	return 0;
}

static void print_default(struct cow_store *st)
{
	uint64_t bytes = 0, files = 0;
	char b[32];
	if (cow_store_default_quota(st, &bytes, &files) < 0)
		return;
	quota_fmt(bytes, b, sizeof(b));
	if (json)
		printf("{\"bytes\":%" PRIu64 ",\"files\":%" PRIu64 "}\n", bytes, files);
	else if (files)
		printf("new clients get a quota of %s, %" PRIu64 " objects\n", b, files);
	else
		printf("new clients get a quota of %s, any number of objects\n", b);
}

int cmd_quota_default(int argc, char **argv)
{
	static const char usage[] = "quota default [--quota SIZE|none] [--quota-files N|none] [--json]\n"
				    "  (without options: show it; clients added from now on get it, existing ones\n"
				    "  keep theirs: 'client set NAME --quota' changes one)";
	const char *bytes = NULL, *files = NULL;
	json = parse_json_flag(&argc, argv);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quota") && i + 1 < argc)
			bytes = argv[++i];
		else if (!strcmp(argv[i], "--quota-files") && i + 1 < argc)
			files = argv[++i];
		else
			return usage_err(usage);
	}
	if (want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store((bytes || files) ? 0 : COW_STORE_READONLY, &st))
		return 1;
	int r = (bytes || files) ? quota_default_set(st, bytes, files) : 0;
	if (r == 0)
		print_default(st);
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}
