/* SPDX-License-Identifier: MIT */
/*
 * What serving a client over NFS needs of the store: the addresses it may
 * connect from.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow-private.h"

/* One item: an IPv4 or IPv6 address, optionally /PREFIX. */
static bool addr_ok(const char *item, size_t n)
{
	char buf[64], *slash;
	unsigned char bin[16];
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, item, n);
	buf[n] = 0;
	int max = strchr(buf, ':') ? 128 : 32;
	if ((slash = strchr(buf, '/'))) {
		char *end;
		*slash = 0;
		long prefix = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || prefix < 0 || prefix > max)
			return false;
	}
	return inet_pton(max == 128 ? AF_INET6 : AF_INET, buf, bin) == 1;
}

static int addrs_check(const char *addrs)
{
	if (strlen(addrs) > COW_ADDRS_MAX)
		return -EINVAL;
	for (const char *p = addrs; *p;) {
		size_t n = strcspn(p, ",");
		if (!addr_ok(p, n))
			return -EINVAL;
		p += n;
		if (*p == ',' && !*++p)
			return -EINVAL; /* trailing comma */
	}
	return 0;
}

int cow_client_get_addrs(struct cow_store *st, const char *name, char *buf, size_t size)
{
	char addrs[COW_ADDRS_MAX + 1];
	cow_db_lock(st->db);
	int r = cow_db_client_addrs(st->db, name, addrs, sizeof(addrs));
	cow_db_unlock(st->db);
	if (r == 0)
		snprintf(buf, size, "%s", addrs);
	return r;
}

int cow_client_set_addrs(struct cow_store *st, const char *name, const char *addrs)
{
	if (addrs_check(addrs) < 0)
		return -EINVAL;
	if (st->readonly)
		return -EROFS;
	cow_db_lock(st->db);
	int r = cow_db_client_set_addrs(st->db, name, addrs);
	cow_db_unlock(st->db);
	return r;
}
