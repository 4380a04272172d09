/* SPDX-License-Identifier: MIT */
/*
 * What a client is known by when it boots over the network (its Pi serial
 * number, its MAC address) and the extra kernel arguments it boots with.
 * The boot servers find a client by either on every request, from what a
 * Pi or u-boot sends: everything is parsed here into one canonical form,
 * which is what the store holds and indexes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cow-private.h"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char lower_hex(char c)
{
	return "0123456789abcdef"[hex_value(c)];
}

int cow_serial_parse(const char *serial, char ret[COW_SERIAL_LEN + 1])
{
	size_t n = strnlen(serial, 2 * COW_SERIAL_LEN + 1);
	if (n != COW_SERIAL_LEN && n != 2 * COW_SERIAL_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (hex_value(serial[i]) < 0)
			return -EINVAL;
	/* u-boot's serial# is the same number zero-padded to 64 bits; a
	 * longer number is no Pi's serial */
	const char *digits = serial + (n - COW_SERIAL_LEN);
	for (const char *p = serial; p < digits; p++)
		if (*p != '0')
			return -EINVAL;
	for (size_t i = 0; i < COW_SERIAL_LEN; i++)
		ret[i] = lower_hex(digits[i]);
	ret[COW_SERIAL_LEN] = 0;
	return 0;
}

int cow_mac_parse(const char *mac, char ret[COW_MAC_LEN + 1])
{
	if (strnlen(mac, COW_MAC_LEN + 1) != COW_MAC_LEN)
		return -EINVAL;
	char sep = mac[2];
	if (sep != ':' && sep != '-')
		return -EINVAL;
	unsigned char octet[6];
	bool zero = true;
	for (int i = 0; i < 6; i++) {
		const char *p = mac + 3 * i;
		int hi = hex_value(p[0]), lo = hex_value(p[1]);
		if (hi < 0 || lo < 0 || (i < 5 && p[2] != sep))
			return -EINVAL;
		octet[i] = (unsigned char)(hi << 4 | lo);
		zero = zero && octet[i] == 0;
	}
	/* the group bit: multicast and broadcast addresses are no station's */
	if (zero || (octet[0] & 1))
		return -EINVAL;
	snprintf(ret, COW_MAC_LEN + 1, "%02x:%02x:%02x:%02x:%02x:%02x", octet[0], octet[1], octet[2], octet[3],
		 octet[4], octet[5]);
	return 0;
}

int cow_boot_args_check(const char *args, const char **ret_why)
{
	const char *why = NULL;
	size_t n = strnlen(args, COW_BOOT_ARGS_MAX + 1);
	if (n > COW_BOOT_ARGS_MAX)
		why = "longer than 512 bytes"; /* COW_BOOT_ARGS_MAX */
	for (size_t i = 0; !why && i < n; i++) {
		unsigned char c = (unsigned char)args[i];
		if (c < 0x20 || c > 0x7e)
			why = "only printable ASCII characters and spaces may appear (no newline, tab or control)";
		else if (strchr(";$\"'`\\", c))
			why = "none of ; $ \" ' ` \\ may appear (they would change the boot script)";
	}
	if (!why)
		return 0;
	if (ret_why)
		*ret_why = why;
	return -EINVAL;
}

int cow_boot_dtb_check(const char *path, const char **ret_why)
{
	const char *why = NULL;
	size_t n = strnlen(path, COW_BOOT_DTB_MAX + 1);
	if (n > COW_BOOT_DTB_MAX)
		why = "longer than 255 bytes"; /* COW_BOOT_DTB_MAX */
	else if (n && path[0] != '/')
		why = "an absolute path in the client's root (/usr/lib/linux-image-.../x.dtb)";
	for (const char *p = path + (n != 0); !why && n;) {
		size_t k = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-");
		if (p[k] && p[k] != '/')
			why = "only A-Z a-z 0-9 . _ + - in the names, '/' between them";
		else if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.'))
			why = "no empty, '.' or '..' component";
		else if (!p[k])
			break;
		p += k + 1;
	}
	if (!why)
		return 0;
	if (ret_why)
		*ret_why = why;
	return -EINVAL;
}

/* Does a client other than @name have @value in @column ("" is nobody's)?
 * 1 with @ret_other filled, 0, or -errno. */
static int taken(struct cow_db *db, const char *column, const char *value, const char *name,
		 struct cow_client_info *ret_other)
{
	if (!*value)
		return 0;
	int r = cow_db_client_by(db, column, value, ret_other);
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : strcmp(ret_other->name, name) != 0;
}

int cow_client_set_boot(struct cow_store *st, const char *name, const char *serial, const char *mac,
			const char *boot_args, const char *dtb, char ret_holder[COW_ENTITY_NAME_MAX + 1],
			const char **ret_what)
{
	char new_serial[COW_SERIAL_LEN + 1] = "", new_mac[COW_MAC_LEN + 1] = "";
	if (serial && *serial && cow_serial_parse(serial, new_serial) < 0)
		return -EINVAL;
	if (mac && *mac && cow_mac_parse(mac, new_mac) < 0)
		return -EINVAL;
	if (boot_args && cow_boot_args_check(boot_args, NULL) < 0)
		return -EINVAL;
	if (dtb && cow_boot_dtb_check(dtb, NULL) < 0)
		return -EINVAL;
	if (st->readonly)
		return -EROFS;

	cow_db_lock(st->db);
	int r = cow_db_begin(st->db);
	if (r < 0)
		goto out;
	struct cow_client_info c, other;
	r = cow_db_client_get(st->db, name, &c);
	if (r < 0)
		goto rollback;
	if (serial)
		memcpy(c.serial, new_serial, sizeof(new_serial));
	if (mac)
		memcpy(c.mac, new_mac, sizeof(new_mac));
	if (boot_args)
		snprintf(c.boot_args, sizeof(c.boot_args), "%s", boot_args);
	if (dtb)
		snprintf(c.boot_dtb, sizeof(c.boot_dtb), "%s", dtb);
	/* the unique indexes would refuse it too, but not say who has it */
	const char *what = NULL;
	r = taken(st->db, "serial", c.serial, name, &other);
	if (r == 0)
		r = taken(st->db, "mac", c.mac, name, &other);
	else if (r > 0)
		what = "serial";
	if (r > 0 && !what)
		what = "MAC";
	if (r > 0) {
		if (ret_holder)
			snprintf(ret_holder, COW_ENTITY_NAME_MAX + 1, "%s", other.name);
		if (ret_what)
			*ret_what = what;
		r = -EEXIST;
	}
	if (r == 0)
		r = cow_db_client_set_boot(st->db, name, &c);
	if (r < 0)
		goto rollback;
	r = cow_db_commit(st->db, true);
	goto out;
rollback:
	cow_db_rollback(st->db);
out:
	cow_db_unlock(st->db);
	return r;
}

int cow_client_set_on_boot(struct cow_store *st, const char *name, bool reset)
{
	if (st->readonly)
		return -EROFS;
	cow_db_lock(st->db);
	int r = cow_db_begin(st->db);
	if (r == 0) {
		r = cow_db_client_set_on_boot(st->db, name, reset);
		if (r == 0)
			r = cow_db_commit(st->db, true);
		else
			cow_db_rollback(st->db);
	}
	cow_db_unlock(st->db);
	return r;
}

/* Look a client up by @column after parsing @key with @parse. */
static int client_by(struct cow_store *st, const char *column, int (*parse)(const char *, char *), const char *key,
		     struct cow_client_info *ret)
{
	char canon[COW_MAC_LEN + 1];
	if (parse(key, canon) < 0)
		return -EINVAL;
	cow_db_lock(st->db);
	int r = cow_db_client_by(st->db, column, canon, ret);
	cow_db_unlock(st->db);
	return r;
}

int cow_client_by_serial(struct cow_store *st, const char *key, struct cow_client_info *ret)
{
	return client_by(st, "serial", cow_serial_parse, key, ret);
}

int cow_client_by_mac(struct cow_store *st, const char *key, struct cow_client_info *ret)
{
	return client_by(st, "mac", cow_mac_parse, key, ret);
}
