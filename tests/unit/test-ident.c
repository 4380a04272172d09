/* SPDX-License-Identifier: MIT */
/*
 * What a client boots by: cow_serial_parse and cow_mac_parse take every
 * form a Pi, u-boot or a user writes and give one canonical form, refuse
 * the rest; cow_boot_args_check keeps a kernel command line fit for a
 * u-boot script; through the store, serials and MACs are unique (a taken
 * one is refused naming its client, the store unchanged), cleared by "",
 * and found by any accepted form.
 */
#include <ftw.h>
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
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return buf;
}

static void serial_good(const char *in, const char *want)
{
	char out[COW_SERIAL_LEN + 1] = "untouched";
	int r = cow_serial_parse(in, out);
	check(r == 0 && !strcmp(out, want), out, "serial '%s' is accepted as '%s'", in, want);
}

static void serial_bad(const char *in)
{
	char out[COW_SERIAL_LEN + 1] = "keep";
	int r = cow_serial_parse(in, out);
	check(r == -EINVAL && !strcmp(out, "keep"), out, "serial '%s' is refused (output untouched)", shown(in));
}

static void mac_good(const char *in, const char *want)
{
	char out[COW_MAC_LEN + 1] = "untouched";
	int r = cow_mac_parse(in, out);
	check(r == 0 && !strcmp(out, want), out, "MAC '%s' is accepted as '%s'", in, want);
}

static void mac_bad(const char *in)
{
	char out[COW_MAC_LEN + 1] = "keep";
	int r = cow_mac_parse(in, out);
	check(r == -EINVAL && !strcmp(out, "keep"), out, "MAC '%s' is refused (output untouched)", shown(in));
}

static void args_good(const char *in)
{
	check_int(cow_boot_args_check(in, NULL), 0, "boot args '%s' are accepted", shown(in));
}

static void args_bad(const char *in)
{
	const char *why = NULL;
	int r = cow_boot_args_check(in, &why);
	check(r == -EINVAL && why && *why, why ? why : "no reason", "boot args '%s' are refused, saying why",
	      shown(in));
}

static void test_parsers(void)
{
	serial_good("9ffefdef", "9ffefdef");
	serial_good("9FFEFDEF", "9ffefdef");
	serial_good("9fFeFdEf", "9ffefdef");
	serial_good("000000009ffefdef", "9ffefdef");
	serial_good("000000009FFEFDEF", "9ffefdef");
	serial_good("00000000", "00000000");
	serial_good("0000000000000000", "00000000");
	serial_good("01234567", "01234567");
	serial_bad("");
	serial_bad("9ffefde");
	serial_bad("9ffefdef0");
	serial_bad("0000009ffefdef");	 /* 14 digits */
	serial_bad("0000000009ffefdef"); /* 17 */
	serial_bad("100000009ffefdef");	 /* 64 bits that are no Pi's */
	serial_bad("000000019ffefdef");
	serial_bad("9ffefdeg");
	serial_bad("0x9ffefd");
	serial_bad(" 9ffefdef");
	serial_bad("9ffefdef ");
	serial_bad("9ffefdef\n");
	serial_bad("9ffe fdef");
	serial_bad("9ffe-fdef");
	serial_bad("-9ffefde");
	serial_bad("00000000-9ffefdef");
	serial_bad("../../x");
	serial_bad("\xc3\xa9"
		   "ffefdef");
	char long_serial[200];
	memset(long_serial, '0', sizeof(long_serial) - 1);
	long_serial[sizeof(long_serial) - 1] = 0;
	serial_bad(long_serial);

	mac_good("dc:a6:32:01:36:c2", "dc:a6:32:01:36:c2");
	mac_good("DC:A6:32:01:36:C2", "dc:a6:32:01:36:c2");
	mac_good("dc-a6-32-01-36-c2", "dc:a6:32:01:36:c2");
	mac_good("DC-A6-32-01-36-C2", "dc:a6:32:01:36:c2");
	mac_good("Dc-a6-32-01-36-C2", "dc:a6:32:01:36:c2");
	mac_good("52:54:00:12:34:56", "52:54:00:12:34:56");
	mac_good("02:00:00:00:00:00", "02:00:00:00:00:00"); /* locally administered, unicast */
	mac_good("fe:ff:ff:ff:ff:ff", "fe:ff:ff:ff:ff:ff");
	mac_bad("");
	mac_bad("ff:ff:ff:ff:ff:ff"); /* broadcast */
	mac_bad("FF-FF-FF-FF-FF-FF");
	mac_bad("01:00:5e:00:00:01"); /* IPv4 multicast */
	mac_bad("33:33:00:00:00:01"); /* IPv6 multicast */
	mac_bad("dd:a6:32:01:36:c2"); /* group bit */
	mac_bad("00:00:00:00:00:00"); /* all zero */
	mac_bad("00-00-00-00-00-00");
	mac_bad("dc:a6:32:01:36");	 /* five octets */
	mac_bad("dc:a6:32:01:36:c2:00"); /* seven */
	mac_bad("dc:a6:32:01:36:c");
	mac_bad("dc:a6:32:01:36:c2:");
	mac_bad("dc:a6-32:01:36:c2"); /* mixed separators */
	mac_bad("dc-a6-32-01-36:c2");
	mac_bad("dc.a6.32.01.36.c2");
	mac_bad("dca6.3201.36c2");
	mac_bad("dca6320136c2");
	mac_bad("dc:a6:32:01:36:g2");
	mac_bad("dc:a6:32:1:36:c2:");
	mac_bad("dc:a6:32:01:36:c2\n");
	mac_bad(" dc:a6:32:01:36:c2");
	mac_bad("dc:a6:32:01:36: 2");
	mac_bad("dc::6:32:01:36:c2");
	mac_bad("9ffefdef");

	args_good("");
	args_good("quiet");
	args_good("console=ttyAMA0,115200 loglevel=3 systemd.unit=multi-user.target");
	args_good("ip=::::pi-01:eth0:dhcp nfsrootdebug cgroup_enable=memory a=b/c-d_e+f.g@h");
	char max[COW_BOOT_ARGS_MAX + 2];
	memset(max, 'x', sizeof(max));
	max[COW_BOOT_ARGS_MAX] = 0;
	args_good(max);
	max[COW_BOOT_ARGS_MAX] = 'x';
	max[COW_BOOT_ARGS_MAX + 1] = 0;
	args_bad(max);
	args_bad("quiet; reset");
	args_bad("root=${x}");
	args_bad("a=\"b\"");
	args_bad("a='b'");
	args_bad("a=`reboot`");
	args_bad("a\\b");
	args_bad("quiet\nsetenv bootcmd reset");
	args_bad("quiet\r");
	args_bad("a\tb");
	args_bad("caf\xc3\xa9");
	args_bad("\x7f");

	/* device tree paths: absolute, plain names, nothing to climb out with */
	check_int(cow_boot_dtb_check("", NULL), 0, "an empty dtb path (none) is accepted");
	check_int(cow_boot_dtb_check("/usr/lib/linux-image-6.1.0-28-arm64/broadcom/bcm2837-rpi-3-b.dtb", NULL), 0,
		  "a Debian dtb path is accepted");
	const char *bad_dtbs[] = {"x.dtb",	   "/",		  "/boot//x.dtb", "/boot/../etc/shadow",
				  "/boot/./x.dtb", "/boot/x dtb", "/boot/x.dtb/", "/boot/x;reset",
				  "/boot/$x",	   "/boot/x\ny"};
	for (size_t i = 0; i < sizeof(bad_dtbs) / sizeof(bad_dtbs[0]); i++) {
		const char *why = NULL;
		int r = cow_boot_dtb_check(bad_dtbs[i], &why);
		check(r == -EINVAL && why, why ? why : "accepted", "dtb path '%s' is refused", shown(bad_dtbs[i]));
	}
	char longdtb[COW_BOOT_DTB_MAX + 2];
	memset(longdtb, 'a', sizeof(longdtb) - 1);
	longdtb[0] = '/';
	longdtb[sizeof(longdtb) - 1] = 0;
	check_int(cow_boot_dtb_check(longdtb, NULL), -EINVAL, "a dtb path of 256 bytes is refused");
	longdtb[sizeof(longdtb) - 2] = 0;
	check_int(cow_boot_dtb_check(longdtb, NULL), 0, "a dtb path of 255 bytes is accepted");
}

static int list_cb(void *arg, const struct cow_client_info *c)
{
	char *seen = arg;
	size_t n = strlen(seen);
	snprintf(seen + n, 256 - n, "%s %s %s '%s';", c->name, *c->serial ? c->serial : "-", *c->mac ? c->mac : "-",
		 c->boot_args);
	return 0;
}

static void test_store(const char *top)
{
	char dir[96], store[96];
	snprintf(dir, sizeof(dir), "%s/empty", top);
	snprintf(store, sizeof(store), "%s/store", top);
	mkdir(dir, 0755);
	struct cow_store *st;
	if (!check_int(cow_store_open(store, COW_STORE_CREATE, &st), 0, "a store to test in"))
		return;
	check_int(cow_image_import(st, "img", dir, NULL, NULL), 0, "import an empty image");
	check_int(cow_client_add(st, "pi1", "img"), 0, "add pi1");
	check_int(cow_client_add(st, "pi2", "img"), 0, "add pi2");

	struct cow_client_info c;
	int r = cow_client_get(st, "pi1", &c);
	check(r == 0 && !*c.serial && !*c.mac && !*c.boot_args, c.serial, "a new client has no serial, MAC, boot args");
	check_int(cow_client_by_serial(st, "9ffefdef", &c), -ENOENT, "nobody has a serial yet");
	check_int(cow_client_by_mac(st, "dc:a6:32:01:36:c2", &c), -ENOENT, "nobody has a MAC yet");

	char holder[COW_ENTITY_NAME_MAX + 1] = "";
	const char *what = NULL;
	check_int(cow_client_set_boot(st, "pi1", "000000009FFEFDEF", "DC-A6-32-01-36-C2", "quiet", NULL, holder, &what),
		  0, "pi1 gets a serial (16-digit form), a MAC (dashes) and boot args");
	r = cow_client_get(st, "pi1", &c);
	check(r == 0 && !strcmp(c.serial, "9ffefdef") && !strcmp(c.mac, "dc:a6:32:01:36:c2") &&
		  !strcmp(c.boot_args, "quiet"),
	      c.serial, "they are stored canonical");

	/* every accepted form finds it */
	const char *serials[] = {"9ffefdef", "9FFEFDEF", "000000009ffefdef", "000000009FFEFDEF"};
	for (size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
		memset(&c, 0, sizeof(c));
		r = cow_client_by_serial(st, serials[i], &c);
		check(r == 0 && !strcmp(c.name, "pi1") && !strcmp(c.boot_args, "quiet") && c.id != 0, c.name,
		      "by serial '%s': pi1, with its fields", serials[i]);
	}
	const char *macs[] = {"dc:a6:32:01:36:c2", "DC:A6:32:01:36:C2", "dc-a6-32-01-36-c2", "DC-A6-32-01-36-C2"};
	for (size_t i = 0; i < sizeof(macs) / sizeof(macs[0]); i++) {
		memset(&c, 0, sizeof(c));
		r = cow_client_by_mac(st, macs[i], &c);
		check(r == 0 && !strcmp(c.name, "pi1") && !strcmp(c.serial, "9ffefdef"), c.name, "by MAC '%s': pi1",
		      macs[i]);
	}
	struct cow_client_info keep = {.name = "keep"};
	check(cow_client_by_serial(st, "9ffefdeg", &keep) == -EINVAL && !strcmp(keep.name, "keep"), NULL,
	      "a lookup by a malformed serial is -EINVAL, the result untouched");
	check(cow_client_by_mac(st, "ff:ff:ff:ff:ff:ff", &keep) == -EINVAL && !strcmp(keep.name, "keep"), NULL,
	      "a lookup by the broadcast MAC is -EINVAL");
	check(cow_client_by_serial(st, "12345678", &keep) == -ENOENT && !strcmp(keep.name, "keep"), NULL,
	      "a lookup by an unknown serial is -ENOENT, the result untouched");
	check_int(cow_client_by_mac(st, "dc:a6:32:01:36:c3", &keep), -ENOENT, "a lookup by an unknown MAC is -ENOENT");
	check_int(cow_client_by_serial(st, "dc:a6:32:01:36:c2", &keep), -EINVAL, "a MAC is no serial");
	check_int(cow_client_by_mac(st, "9ffefdef", &keep), -EINVAL, "a serial is no MAC");

	/* uniqueness: refused naming the holder, nothing changed */
	holder[0] = 0;
	what = NULL;
	r = cow_client_set_boot(st, "pi2", "9FFEFDEF", NULL, "x=1", NULL, holder, &what);
	check(r == -EEXIST && !strcmp(holder, "pi1") && what && !strcmp(what, "serial"), holder,
	      "pi2 may not take pi1's serial: -EEXIST naming pi1 and the serial");
	holder[0] = 0;
	what = NULL;
	r = cow_client_set_boot(st, "pi2", "12345678", "dc:a6:32:01:36:c2", NULL, NULL, holder, &what);
	check(r == -EEXIST && !strcmp(holder, "pi1") && what && !strcmp(what, "MAC"), holder,
	      "nor its MAC (in another form): -EEXIST naming pi1 and the MAC");
	r = cow_client_get(st, "pi2", &c);
	check(r == 0 && !*c.serial && !*c.mac && !*c.boot_args, c.serial,
	      "pi2 is unchanged by the refused changes (all or nothing)");
	check_int(cow_client_by_serial(st, "12345678", &c), -ENOENT, "the serial of the refused change is nobody's");
	check_int(cow_client_set_boot(st, "pi1", "9ffefdef", "dc:a6:32:01:36:c2", NULL, NULL, NULL, NULL), 0,
		  "pi1 setting its own serial and MAC again is no conflict");

	/* refused values leave the store unchanged */
	check_int(cow_client_set_boot(st, "pi1", "9ffefdeg", NULL, NULL, NULL, NULL, NULL), -EINVAL,
		  "a bad serial: -EINVAL");
	check_int(cow_client_set_boot(st, "pi1", NULL, "01:00:5e:00:00:01", NULL, NULL, NULL, NULL), -EINVAL,
		  "a multicast MAC: -EINVAL");
	check_int(cow_client_set_boot(st, "pi1", "12345678", NULL, "a;b", NULL, NULL, NULL), -EINVAL,
		  "bad boot args with a good serial: -EINVAL");
	r = cow_client_get(st, "pi1", &c);
	check(r == 0 && !strcmp(c.serial, "9ffefdef") && !strcmp(c.mac, "dc:a6:32:01:36:c2") &&
		  !strcmp(c.boot_args, "quiet"),
	      c.serial, "pi1 is unchanged by the refused values");
	check_int(cow_client_set_boot(st, "nosuch", "87654321", NULL, NULL, NULL, NULL, NULL), -ENOENT,
		  "an unknown client: -ENOENT");
	check_int(cow_client_by_serial(st, "87654321", &c), -ENOENT, "and nobody got its serial");

	/* NULL leaves a field, "" clears it */
	check_int(cow_client_set_boot(st, "pi1", NULL, NULL, "console=ttyAMA0", NULL, NULL, NULL), 0,
		  "change the boot args only");
	r = cow_client_get(st, "pi1", &c);
	check(r == 0 && !strcmp(c.serial, "9ffefdef") && !strcmp(c.mac, "dc:a6:32:01:36:c2") &&
		  !strcmp(c.boot_args, "console=ttyAMA0"),
	      c.boot_args, "the serial and MAC stay");
	check_int(cow_client_set_boot(st, "pi1", "", NULL, NULL, NULL, NULL, NULL), 0, "clear pi1's serial");
	check_int(cow_client_by_serial(st, "9ffefdef", &c), -ENOENT, "its serial finds nobody now");
	check_int(cow_client_by_mac(st, "dc:a6:32:01:36:c2", &c), 0, "its MAC still finds it");
	check_int(cow_client_set_boot(st, "pi2", "9ffefdef", "", "", NULL, NULL, NULL), 0,
		  "pi2 may take the freed serial");
	r = cow_client_by_serial(st, "000000009ffefdef", &c);
	check(r == 0 && !strcmp(c.name, "pi2"), c.name, "which finds pi2 now");
	check_int(cow_client_set_boot(st, "pi1", NULL, "", "", NULL, NULL, NULL), 0, "clear pi1's MAC and boot args");
	r = cow_client_get(st, "pi1", &c);
	check(r == 0 && !*c.serial && !*c.mac && !*c.boot_args, c.mac, "pi1 has none of them now");
	/* two clients without a serial or MAC are no conflict (NULLs) */
	check_int(cow_client_add(st, "pi3", "img"), 0, "add pi3");
	check_int(cow_client_set_boot(st, "pi3", "", "", NULL, NULL, NULL, NULL), 0,
		  "pi3 and pi1 may both have no serial and no MAC");

	/* the fields go with the client: removed, its serial is free */
	check_int(cow_client_set_boot(st, "pi3", "abcdef01", "02:00:00:00:00:01", NULL, NULL, NULL, NULL), 0,
		  "pi3 gets a serial and MAC");
	check_int(cow_client_reset(st, "pi3"), 0, "reset pi3");
	r = cow_client_by_mac(st, "02-00-00-00-00-01", &c);
	check(r == 0 && !strcmp(c.name, "pi3") && !strcmp(c.serial, "abcdef01"), c.name, "a reset keeps them");
	check_int(cow_client_rm(st, "pi3", 0), 0, "remove pi3");
	check_int(cow_client_by_serial(st, "abcdef01", &c), -ENOENT, "its serial finds nobody");
	check_int(cow_client_set_boot(st, "pi1", "abcdef01", "02:00:00:00:00:01", NULL, NULL, NULL, NULL), 0,
		  "another client may take them");

	char seen[256] = "";
	check_int(cow_client_foreach(st, list_cb, seen), 0, "walk the clients");
	check(!strcmp(seen, "pi1 abcdef01 02:00:00:00:00:01 '';pi2 9ffefdef - '';"), seen,
	      "cow_client_foreach reports the serials and MACs");
	cow_store_close(st);
	check_int(cow_store_open(store, COW_STORE_READONLY, &st), 0, "reopen read-only");
	if (!st)
		return;
	check_int(cow_client_set_boot(st, "pi1", "", NULL, NULL, NULL, NULL, NULL), -EROFS,
		  "a read-only store: -EROFS");
	r = cow_client_by_serial(st, "abcdef01", &c);
	check(r == 0 && !strcmp(c.name, "pi1") && !strcmp(c.mac, "02:00:00:00:00:01"), c.name,
	      "the fields outlive a reopen; lookups work read-only");
	cow_store_close(st);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_parsers();
	char top[] = "/tmp/cowroot-ident-XXXXXX";
	if (!mkdtemp(top))
		bail("mkdtemp");
	test_store(top);
	nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return tap_finish();
}
