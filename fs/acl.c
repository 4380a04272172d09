/* SPDX-License-Identifier: MIT */
/*
 * POSIX ACLs, kept as the xattrs system.posix_acl_access/default in the
 * kernel's xattr format.  The kernel enforces them; the file system keeps
 * the mode and the access ACL in step (setfacl, chmod) and gives new
 * objects the ACL their directory's default ACL asks for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow-private.h"

#define ACL_VERSION 2
#define TAG_USER_OBJ 0x01
#define TAG_USER 0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP 0x08
#define TAG_MASK 0x10
#define TAG_OTHER 0x20

struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

static int acl_check(const void *v, size_t size, size_t *ret_n)
{
	if (size < 4 || (size - 4) % sizeof(struct acl_entry))
		return -EINVAL;
	uint32_t version;
	memcpy(&version, v, 4);
	if (version != ACL_VERSION)
		return -EINVAL;
	*ret_n = (size - 4) / sizeof(struct acl_entry);
	return 0;
}

static struct acl_entry *entries(void *v)
{
	return (struct acl_entry *)((char *)v + 4);
}

int cow_acl_to_mode(const void *value, size_t size, uint32_t *mode, bool *ret_equiv)
{
	size_t n;
	int r = acl_check(value, size, &n);
	if (r < 0)
		return r;
	struct acl_entry e;
	uint32_t m = *mode & ~0777u;
	int user = -1, group = -1, mask = -1, other = -1;
	for (size_t i = 0; i < n; i++) {
		memcpy(&e, (const char *)value + 4 + i * sizeof(e), sizeof(e));
		switch (e.tag) {
		case TAG_USER_OBJ:
			user = e.perm & 7;
			break;
		case TAG_GROUP_OBJ:
			group = e.perm & 7;
			break;
		case TAG_MASK:
			mask = e.perm & 7;
			break;
		case TAG_OTHER:
			other = e.perm & 7;
			break;
		case TAG_USER:
		case TAG_GROUP:
			break;
		default:
			return -EINVAL;
		}
	}
	if (user < 0 || group < 0 || other < 0)
		return -EINVAL;
	m |= (uint32_t)user << 6 | (uint32_t)(mask >= 0 ? mask : group) << 3 | (uint32_t)other;
	*mode = m;
	*ret_equiv = n == 3;
	return 0;
}

int cow_acl_chmod(void *value, size_t size, uint32_t mode)
{
	size_t n;
	int r = acl_check(value, size, &n);
	if (r < 0)
		return r;
	struct acl_entry *e = entries(value), *group = NULL, *mask = NULL;
	for (size_t i = 0; i < n; i++) {
		if (e[i].tag == TAG_USER_OBJ)
			e[i].perm = (mode >> 6) & 7;
		else if (e[i].tag == TAG_GROUP_OBJ)
			group = &e[i];
		else if (e[i].tag == TAG_MASK)
			mask = &e[i];
		else if (e[i].tag == TAG_OTHER)
			e[i].perm = mode & 7;
	}
	if (mask)
		mask->perm = (mode >> 3) & 7;
	else if (group)
		group->perm = (mode >> 3) & 7;
	return 0;
}

int cow_acl_create(const void *def, size_t size, uint32_t *mode, void **ret_access, size_t *ret_size)
{
	size_t n;
	int r = acl_check(def, size, &n);
	if (r < 0)
		return r;
	void *acc = malloc(size);
	if (!acc)
		return -ENOMEM;
	memcpy(acc, def, size);
	struct acl_entry *e = entries(acc), *group = NULL, *mask = NULL;
	uint32_t m = *mode;
	uint32_t keep = m & ~0777u;
	for (size_t i = 0; i < n; i++) {
		switch (e[i].tag) {
		case TAG_USER_OBJ:
			e[i].perm &= (m >> 6) & 7;
			keep |= (uint32_t)e[i].perm << 6;
			break;
		case TAG_GROUP_OBJ:
			group = &e[i];
			break;
		case TAG_MASK:
			mask = &e[i];
			break;
		case TAG_OTHER:
			e[i].perm &= m & 7;
			keep |= e[i].perm;
			break;
		}
	}
	if (mask) {
		mask->perm &= (m >> 3) & 7;
		keep |= (uint32_t)mask->perm << 3;
	} else if (group) {
		group->perm &= (m >> 3) & 7;
		keep |= (uint32_t)group->perm << 3;
	}
	*mode = keep;
	if (n == 3) { /* the mode says it all */
		free(acc);
		*ret_access = NULL;
		*ret_size = 0;
		return 0;
	}
	*ret_access = acc;
	*ret_size = size;
	return 0;
}
