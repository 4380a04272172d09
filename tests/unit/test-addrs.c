/* SPDX-License-Identifier: MIT */
/*
 * cow_addrs_check: the address lists of `client add/set --ip` are parsed
 * strictly, as ganesha's configuration takes them, and a bad one is refused
 * naming its item, the store unchanged.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* unit.h helpers this test does not need */
#include "unit.h"

/* @s for a test description: at most 40 bytes, control bytes as '?' */
static const char *shown(const char *s)
{
	static char buf[48];
	snprintf(buf, sizeof(buf), "%.40s", s);
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = '?';
	return buf;
}

static void good(const char *list)
{
	check_int(cow_addrs_check(list, NULL, NULL, NULL), 0, "'%s' is accepted", list);
}

/* @list is refused, and the bad item is the one at @off, @len bytes */
static void bad(const char *list, size_t want_off, size_t want_len)
{
	size_t off = 999, len = 999;
	const char *why = NULL;
	int r = cow_addrs_check(list, &off, &len, &why);
	char d[256];
	snprintf(d, sizeof(d), "r %d, item at %zu (%zu bytes), why %s", r, off, len, why ? why : "(none)");
	check(r == -EINVAL && off == want_off && len == want_len && why && *why, d, "'%s' is refused at its item %zu",
	      shown(list), want_off);
}

/* Does @ip (v4 or v6 text) match @list? */
static bool matches(const char *list, const char *ip)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	return cow_addrs_match(list, (struct sockaddr *)&ss);
}

static void test_match(void)
{
	check(matches("10.77.0.11", "10.77.0.11"), "", "an address matches itself");
	check(!matches("10.77.0.11", "10.77.0.12"), "", "and not its neighbour");
	check(matches("10.77.0.12,10.77.0.11", "10.77.0.11"), "", "the second item of a list matches");
	check(matches("10.77.0.11", "::ffff:10.77.0.11"), "", "an IPv4-mapped peer matches its IPv4 address");
	check(matches("10.77.0.0/24", "10.77.0.200"), "", "a /24 holds .200");
	check(!matches("10.77.0.0/24", "10.77.1.1"), "", "a /24 does not hold the next network");
	check(matches("10.77.0.8/29", "10.77.0.15") && !matches("10.77.0.8/29", "10.77.0.16"), "",
	      "a /29 holds .8-.15 only");
	check(matches("fd00::/64", "fd00::5") && !matches("fd00::/64", "fd00:0:0:1::5"), "", "an IPv6 /64");
	check(matches("fd00::102", "fd00::102") && !matches("fd00::102", "10.0.0.1"), "", "families do not mix");
	check(!matches("", "10.0.0.1"), "", "an empty list matches nothing");
	check(!matches("10.0.0.1\n", "10.0.0.1"), "", "a malformed list matches nothing");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_match();
	good("");
	good("192.168.1.101");
	good("10.0.0.0/8");
	good("10.1.2.3/32,192.168.0.0/16");
	good("fd00::102");
	good("fd00::/64");
	good("::ffff:10.1.2.3");
	good("192.168.1.102,fd00::102");
	good("10.0.0.0/1");
	good("2001:db8::/99");

	/* what ganesha's lexer rejects, or reads as something else */
	bad("10.0.0.0/ 8", 0, 11);
	bad("10.0.0.0/8\n", 0, 11);
	bad("10.0.0.1\n", 0, 9);
	bad("10.0.0.0/+32", 0, 12);
	bad("10.0.0.0/-1", 0, 11);
	bad("10.0.0.0/032", 0, 12);
	bad("10.0.0.0/00", 0, 11);
	bad("10.0.0.0/0", 0, 10);
	bad("10.0.0.0/33", 0, 11);
	bad("10.0.0.0/1000", 0, 13);
	bad("10.0.0.0/", 0, 9);
	bad("10.0.0.0/8/8", 0, 12);
	bad("/8", 0, 2);
	bad("0.0.0.0", 0, 7);
	bad("1.2.3.04", 0, 8);
	bad("1.2.3", 0, 5);
	bad("1.2.3.4.5", 0, 9);
	bad("256.1.1.1", 0, 9);
	bad("fd00::/128", 0, 10);
	bad("fd00::/100", 0, 10);
	bad("fe80::1%eth0", 0, 12);
	bad("fd00:::1", 0, 8);
	bad("host.example", 0, 12);
	bad("*", 0, 1);
	bad(" 10.0.0.1", 0, 9);
	bad("10.0.0.1 ", 0, 9);
	/* the bad item is named in a list */
	bad("10.0.0.1,10.0.0.2/ 8", 9, 11);
	bad("10.0.0.1,", 9, 0);
	bad(",10.0.0.1", 0, 0);
	bad("10.0.0.1,,10.0.0.2", 9, 0);
	bad("10.0.0.1;10.0.0.2", 0, 17);
	char huge[1100];
	memset(huge, '1', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = 0;
	bad(huge, 0, sizeof(huge) - 1);

	/* through the store: refused, nothing changed */
	char top[] = "/tmp/cowroot-addrs-XXXXXX", dir[64], store[64], buf[COW_ADDRS_MAX + 1];
	if (!mkdtemp(top))
		bail("mkdtemp");
	snprintf(dir, sizeof(dir), "%s/empty", top);
	snprintf(store, sizeof(store), "%s/store", top);
	mkdir(dir, 0755);
	struct cow_store *st;
	int r = cow_store_open(store, COW_STORE_CREATE, &st);
	if (!check_int(r, 0, "a store to test in"))
		return tap_finish();
	check_int(cow_image_import(st, "img", dir, NULL, NULL), 0, "import an empty image");
	check_int(cow_client_add(st, "c", "img"), 0, "add a client");
	check_int(cow_client_set_addrs(st, "c", "10.0.0.1"), 0, "set its address");
	check_int(cow_client_set_addrs(st, "c", "10.0.0.0/ 8"), -EINVAL, "a prefix with a blank is -EINVAL");
	check_int(cow_client_set_addrs(st, "c", "10.0.0.2,10.0.0.0/8\n"), -EINVAL, "a trailing newline is -EINVAL");
	r = cow_client_get_addrs(st, "c", buf, sizeof(buf));
	check(r == 0 && !strcmp(buf, "10.0.0.1"), buf, "the addresses are unchanged after refused lists");
	cow_store_close(st);
	nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return tap_finish();
}
