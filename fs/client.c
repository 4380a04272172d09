/* SPDX-License-Identifier: MIT */
/*
 * What serving a client over NFS needs of the store: the addresses it may
 * connect from.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow-private.h"

/* ganesha's configuration lexer takes a prefix of one or two digits, the
 * first not 0 (/1 to /99), after a plain address; 0.0.0.0 alone means every
 * address to it.  An item is checked against that and the address family. */
static const char *addr_problem(const char *item, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned char bin[16];
	const char *slash = memchr(item, '/', n);
	size_t alen = slash ? (size_t)(slash - item) : n;
	if (n == 0)
		return "empty item";
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF.:/", item[i]))
			return "only digits, hex digits, '.', ':' and one '/' may appear";
	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return "not an IPv4 or IPv6 address";
	memcpy(buf, item, alen);
	buf[alen] = 0;
	bool v6 = memchr(buf, ':', alen) != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, bin) != 1)
		return v6 ? "not an IPv6 address" : "not an IPv4 address (a.b.c.d, no leading zeros)";
	if (!slash)
		return strcmp(buf, "0.0.0.0") ? NULL : "0.0.0.0 would let every address in";
	const char *p = slash + 1;
	size_t plen = n - alen - 1;
	if (plen == 0 || plen > 3 || strspn(p, "0123456789") < plen)
		return "the prefix after '/' must be a decimal number";
	if (p[0] == '0')
		return plen == 1 ? "a /0 network would let every address in" : "the prefix has a leading zero";
	int prefix = 0;
	for (size_t i = 0; i < plen; i++)
		prefix = prefix * 10 + (p[i] - '0');
	if (!v6 && prefix > 32)
		return "an IPv4 prefix is /1 to /32";
	if (v6 && prefix > 99)
		return "ganesha takes IPv6 prefixes /1 to /99 (a single address needs no prefix)";
	return NULL;
}

int cow_addrs_check(const char *addrs, size_t *ret_off, size_t *ret_len, const char **ret_why)
{
	const char *why = NULL, *p = addrs;
	size_t n = 0;
	if (strlen(addrs) > COW_ADDRS_MAX) {
		why = "the list is longer than 1023 bytes"; /* COW_ADDRS_MAX */
		n = strlen(addrs);
	}
	while (!why && *p) {
		n = strcspn(p, ",");
		why = addr_problem(p, n);
		if (!why && p[n] == ',' && !p[n + 1]) {
			p += n + 1; /* the empty item after a trailing comma */
			n = 0;
			why = "empty item";
		}
		if (!why)
			p += n + (p[n] == ',');
	}
	if (!why)
		return 0;
	if (ret_off)
		*ret_off = (size_t)(p - addrs);
	if (ret_len)
		*ret_len = n;
	if (ret_why)
		*ret_why = why;
	return -EINVAL;
}

/* Is @bin (@len bytes: 4 or 16) inside item @item of @n bytes? */
static bool item_match(const char *item, size_t n, const unsigned char *bin, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned char net[16];
	const char *slash = memchr(item, '/', n);
	size_t alen = slash ? (size_t)(slash - item) : n;
	if (addr_problem(item, n) || alen >= sizeof(buf))
		return false;
	memcpy(buf, item, alen);
	buf[alen] = 0;
	bool v6 = memchr(buf, ':', alen) != NULL;
	if ((v6 ? 16u : 4u) != len || inet_pton(v6 ? AF_INET6 : AF_INET, buf, net) != 1)
		return false;
	unsigned prefix = (unsigned)len * 8;
	if (slash)
		prefix = (unsigned)strtoul(slash + 1, NULL, 10);
	for (unsigned i = 0; i < len && prefix; i++) {
		unsigned bits = prefix >= 8 ? 8 : prefix;
		unsigned char mask = (unsigned char)(0xff << (8 - bits));
		if ((net[i] ^ bin[i]) & mask)
			return false;
		prefix -= bits;
	}
	return true;
}

bool cow_addrs_match(const char *addrs, const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const unsigned char *bin;
	size_t len;
	if (sa->sa_family == AF_INET) {
		bin = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		len = 4;
	} else if (sa->sa_family == AF_INET6) {
		bin = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		len = 16;
		if (!memcmp(bin, mapped, sizeof(mapped))) {
			bin += 12;
			len = 4;
		}
	} else {
		return false;
	}
	if (cow_addrs_check(addrs, NULL, NULL, NULL) < 0)
		return false;
	for (const char *p = addrs; *p;) {
		size_t n = strcspn(p, ",");
		if (item_match(p, n, bin, len))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
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

int cow_client_addrs_foreach(struct cow_store *st, int (*fn)(void *arg, const char *name, const char *addrs), void *arg)
{
	cow_db_lock(st->db);
	int r = cow_db_client_addrs_foreach(st->db, fn, arg);
	cow_db_unlock(st->db);
	return r;
}

int cow_client_set_addrs(struct cow_store *st, const char *name, const char *addrs)
{
	if (cow_addrs_check(addrs, NULL, NULL, NULL) < 0)
		return -EINVAL;
	if (st->readonly)
		return -EROFS;
	cow_db_lock(st->db);
	int r = cow_db_client_set_addrs(st->db, name, addrs);
	cow_db_unlock(st->db);
	return r;
}
