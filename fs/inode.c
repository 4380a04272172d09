/* SPDX-License-Identifier: MIT */
/*
 * Attributes and xattrs.  A metadata change records the object in the
 * writable layer (metacopy: the row and its xattrs) and never copies file
 * data; only a size change copies data up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cow-private.h"

/* Write @ip's row (and a rewritten access ACL) to the layer in its own
 * transaction; inode lock held. */
static int store_now_acl(struct cow_view *v, struct cow_inode *ip, const void *acl, size_t acl_size)
{
	struct cow_db *db = v->st->db;
	cow_db_lock(db);
	int r = cow_db_begin_batched(db);
	if (r == 0) {
		r = cow_inode_store(v, ip);
		if (r == 0 && acl)
			r = cow_db_xattr_put(db, v->layer, ip->ino, COW_ACL_ACCESS, acl, acl_size);
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	cow_db_unlock(db);
	return r;
}

int cow_setattr(struct cow_view *v, uint64_t ino, const struct cow_attr *a, int to_set, struct cow_attr *ret)
{
	struct cow_inode *ip;
	int r;
	if (v->readonly)
		return -EROFS;
	r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ip->lock);
	struct cow_irow saved = ip->row;
	int64_t now = cow_now_ns();
	r = cow_quota_check_inode(v, ip, 0); /* a metadata copy-up */
	if (r < 0)
		goto out;
	if (to_set & COW_SET_SIZE) {
		if (S_ISDIR(ip->row.mode)) {
			r = -EISDIR;
			goto out;
		}
		if (!S_ISREG(ip->row.mode) || a->size < 0) {
			r = -EINVAL;
			goto out;
		}
		if (a->size != ip->row.size || ip->row.data_layer != v->layer) {
			r = cow_copy_up_data(v, ip, a->size == 0);
			if (r < 0)
				goto out;
			if (ftruncate(ip->fd->fd, a->size) < 0) {
				r = -errno;
				goto out;
			}
			struct stat stbuf;
			if (fstat(ip->fd->fd, &stbuf) == 0)
				ip->blocks = stbuf.st_blocks;
			ip->row.size = a->size;
			saved.data_layer = ip->row.data_layer;
		}
		ip->row.mtime = now;
	}
	if (to_set & COW_SET_MODE)
		ip->row.mode = (ip->row.mode & S_IFMT) | (a->mode & 07777);
	if (to_set & COW_SET_UID)
		ip->row.uid = a->uid;
	if (to_set & COW_SET_GID)
		ip->row.gid = a->gid;
	if (to_set & COW_SET_ATIME)
		ip->row.atime = cow_ts_to_ns(&a->atime);
	else if (to_set & COW_SET_ATIME_NOW)
		ip->row.atime = now;
	if (to_set & COW_SET_MTIME)
		ip->row.mtime = cow_ts_to_ns(&a->mtime);
	else if (to_set & COW_SET_MTIME_NOW)
		ip->row.mtime = now;
	ip->row.ctime = (to_set & COW_SET_CTIME) ? cow_ts_to_ns(&a->ctime) : now;
	struct cow_xattr *acl = NULL;
	void *acl_new = NULL;
	if ((to_set & COW_SET_MODE) && !S_ISLNK(ip->row.mode) && (r = cow_xattrs_load(v, ip)) == 0) {
		for (acl = ip->xattrs; acl && strcmp(acl->name, COW_ACL_ACCESS); acl = acl->next)
			;
		if (acl && (acl_new = malloc(acl->size))) {
			memcpy(acl_new, acl->value, acl->size);
			if (cow_acl_chmod(acl_new, acl->size, ip->row.mode) < 0) {
				free(acl_new);
				acl_new = NULL;
			}
		}
	}
	if (r == 0)
		r = store_now_acl(v, ip, acl_new, acl ? acl->size : 0);
	if (r == 0 && acl_new) {
		free(acl->value);
		acl->value = acl_new;
	} else {
		free(acl_new);
	}
	if (r < 0) {
		/* keep memory equal to the database */
		char *target = ip->row.target;
		ip->row = saved;
		ip->row.target = target;
		goto out;
	}
	cow_inode_fill_attr(ip, ret);
out:
	pthread_mutex_unlock(&ip->lock);
	cow_inode_put(v, ip);
	return r;
}

int cow_readlink(struct cow_view *v, uint64_t ino, char *buf, size_t size)
{
	struct cow_inode *ip;
	int r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ip->lock);
	if (!S_ISLNK(ip->row.mode) || !ip->row.target) {
		r = -EINVAL;
	} else {
		size_t n = strlen(ip->row.target);
		if (n > size)
			n = size;
		memcpy(buf, ip->row.target, n);
		r = (int)n;
	}
	pthread_mutex_unlock(&ip->lock);
	cow_inode_put(v, ip);
	return r;
}

/* ---- xattrs ---- */

void cow_xattrs_free(struct cow_inode *ip)
{
	struct cow_xattr *x, *next;
	for (x = ip->xattrs; x; x = next) {
		next = x->next;
		free(x->name);
		free(x->value);
		free(x);
	}
	ip->xattrs = NULL;
	ip->xattrs_loaded = false;
}

static struct cow_xattr *xattr_new(const char *name, const void *value, size_t size)
{
	struct cow_xattr *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->name = strdup(name);
	x->value = malloc(size ? size : 1);
	if (!x->name || !x->value) {
		free(x->name);
		free(x->value);
		free(x);
		return NULL;
	}
	if (size)
		memcpy(x->value, value, size);
	x->size = size;
	return x;
}

static int load_one(void *arg, const char *name, const void *value, size_t size)
{
	struct cow_inode *ip = arg;
	struct cow_xattr *x = xattr_new(name, value, size);
	if (!x)
		return -ENOMEM;
	x->next = ip->xattrs;
	ip->xattrs = x;
	return 0;
}

int cow_xattrs_load(struct cow_view *v, struct cow_inode *ip)
{
	if (ip->xattrs_loaded)
		return 0;
	cow_db_lock(v->st->db);
	int r = cow_db_xattr_foreach(v->st->db, ip->row_layer, ip->ino, load_one, ip);
	cow_db_unlock(v->st->db);
	if (r < 0) {
		cow_xattrs_free(ip);
		return r;
	}
	ip->xattrs_loaded = true;
	return 0;
}

static struct cow_xattr **xattr_find(struct cow_inode *ip, const char *name)
{
	struct cow_xattr **pp;
	for (pp = &ip->xattrs; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->name, name))
			return pp;
	return NULL;
}

int cow_xattr_room_add(struct cow_xattr_room *room, size_t name_len, size_t size)
{
	room->names += name_len + 1;
	room->total += name_len + 1 + size;
	return room->names > COW_XATTR_LIST_MAX || room->total > COW_XATTR_TOTAL_MAX ? -ENOSPC : 0;
}

/* Is there room in @ip's xattrs for @name with a @size-byte value, in
 * place of the one at @old (NULL for a new name)?  0 or -ENOSPC.  An
 * object recorded past the bound (before there was one) may still shrink. */
static int xattr_room_check(struct cow_inode *ip, struct cow_xattr *old, const char *name, size_t size)
{
	struct cow_xattr_room room = {0};
	for (struct cow_xattr *x = ip->xattrs; x; x = x->next)
		if (x != old)
			cow_xattr_room_add(&room, strlen(x->name), x->size);
	struct cow_xattr_room now = room;
	if (old)
		cow_xattr_room_add(&now, strlen(old->name), old->size);
	int r = cow_xattr_room_add(&room, strlen(name), size);
	return r < 0 && room.names <= now.names && room.total <= now.total ? 0 : r;
}

static int xattr_name_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return -EINVAL;
	if (n > COW_XATTR_NAME_MAX)
		return -ERANGE;
	return 0;
}

/* Lock and load: the common start of every xattr call. */
static int xattr_begin(struct cow_view *v, uint64_t ino, struct cow_inode **ret)
{
	struct cow_inode *ip;
	int r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ip->lock);
	r = cow_xattrs_load(v, ip);
	if (r < 0) {
		pthread_mutex_unlock(&ip->lock);
		cow_inode_put(v, ip);
		return r;
	}
	*ret = ip;
	return 0;
}

/* After a change of the loaded list of an object whose row is now in the
 * layer: what its xattrs take there (quota.c). */
static void xattr_recount(struct cow_view *v, struct cow_inode *ip)
{
	int64_t n = 0;
	for (struct cow_xattr *x = ip->xattrs; x; x = x->next)
		n += cow_quota_xattr(x->name, x->size);
	ip->xattr_bytes = n;
	cow_quota_update(v, ip);
}

static void xattr_end(struct cow_view *v, struct cow_inode *ip)
{
	pthread_mutex_unlock(&ip->lock);
	cow_inode_put(v, ip);
}

int cow_getxattr(struct cow_view *v, uint64_t ino, const char *name, void *buf, size_t size)
{
	struct cow_inode *ip;
	int r = xattr_name_check(name);
	if (r < 0)
		return r;
	r = xattr_begin(v, ino, &ip);
	if (r < 0)
		return r;
	struct cow_xattr **pp = xattr_find(ip, name);
	if (!pp)
		r = -ENODATA;
	else if (size == 0)
		r = (int)(*pp)->size;
	else if (size < (*pp)->size)
		r = -ERANGE;
	else {
		memcpy(buf, (*pp)->value, (*pp)->size);
		r = (int)(*pp)->size;
	}
	xattr_end(v, ip);
	return r;
}

int cow_listxattr(struct cow_view *v, uint64_t ino, char *buf, size_t size)
{
	struct cow_inode *ip;
	int r = xattr_begin(v, ino, &ip);
	if (r < 0)
		return r;
	size_t need = 0;
	for (struct cow_xattr *x = ip->xattrs; x; x = x->next)
		need += strlen(x->name) + 1;
	if (size == 0) {
		r = (int)need;
	} else if (size < need) {
		r = -ERANGE;
	} else {
		char *p = buf;
		for (struct cow_xattr *x = ip->xattrs; x; x = x->next) {
			size_t n = strlen(x->name) + 1;
			memcpy(p, x->name, n);
			p += n;
		}
		r = (int)need;
	}
	xattr_end(v, ip);
	return r;
}

int cow_setxattr(struct cow_view *v, uint64_t ino, const char *name, const void *value, size_t size, int flags)
{
	struct cow_inode *ip;
	struct cow_db *db = v->st->db;
	int r = xattr_name_check(name);
	if (r < 0)
		return r;
	if (size > COW_XATTR_SIZE_MAX)
		return -E2BIG;
	if (v->readonly)
		return -EROFS;
	if (cow_db_space_low(db))
		return -ENOSPC;
	r = xattr_begin(v, ino, &ip);
	if (r < 0)
		return r;
	struct cow_xattr **pp = xattr_find(ip, name);
	if ((flags & XATTR_CREATE) && pp) {
		r = -EEXIST;
		goto out;
	}
	if ((flags & XATTR_REPLACE) && !pp) {
		r = -ENODATA;
		goto out;
	}
	/* an access ACL sets the mode; one the mode can say is not kept */
	uint32_t mode = ip->row.mode;
	bool equiv = false;
	if (!strcmp(name, COW_ACL_ACCESS)) {
		r = cow_acl_to_mode(value, size, &mode, &equiv);
		if (r < 0)
			goto out;
	} else if (!strcmp(name, COW_ACL_DEFAULT)) {
		uint32_t m = 0;
		if (!S_ISDIR(ip->row.mode)) {
			r = -EACCES;
			goto out;
		}
		r = cow_acl_to_mode(value, size, &m, &equiv);
		if (r < 0)
			goto out;
		equiv = false;
	}
	/* an equivalent access ACL is removed, which always fits */
	if (!equiv && (r = xattr_room_check(ip, pp ? *pp : NULL, name, size)) < 0)
		goto out;
	int64_t grow = equiv ? 0 : cow_quota_xattr(name, size) - (pp ? cow_quota_xattr(name, (*pp)->size) : 0);
	if ((r = cow_quota_check_inode(v, ip, grow > 0 ? grow : 0)) < 0)
		goto out;
	struct cow_xattr *x = xattr_new(name, value, size);
	if (!x) {
		r = -ENOMEM;
		goto out;
	}
	int64_t old_ctime = ip->row.ctime;
	uint32_t old_mode = ip->row.mode;
	ip->row.ctime = cow_now_ns();
	ip->row.mode = mode;
	cow_db_lock(db);
	r = cow_db_begin_batched(db);
	if (r == 0) {
		r = cow_inode_store(v, ip);
		if (r == 0 && equiv)
			r = cow_db_xattr_del(db, v->layer, ino, name);
		else if (r == 0)
			r = cow_db_xattr_put(db, v->layer, ino, name, value, size);
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	cow_db_unlock(db);
	if (r < 0 || equiv) {
		if (r < 0) {
			ip->row.ctime = old_ctime;
			ip->row.mode = old_mode;
		}
		free(x->name);
		free(x->value);
		free(x);
		if (r == 0 && pp) {
			struct cow_xattr *old = *pp;
			*pp = old->next;
			free(old->name);
			free(old->value);
			free(old);
		}
		if (r == 0)
			xattr_recount(v, ip);
		goto out;
	}
	if (pp) {
		struct cow_xattr *old = *pp;
		x->next = old->next;
		*pp = x;
		free(old->name);
		free(old->value);
		free(old);
	} else {
		x->next = ip->xattrs;
		ip->xattrs = x;
	}
	xattr_recount(v, ip);
out:
	xattr_end(v, ip);
	return r;
}

int cow_removexattr(struct cow_view *v, uint64_t ino, const char *name)
{
	struct cow_inode *ip;
	struct cow_db *db = v->st->db;
	int r = xattr_name_check(name);
	if (r < 0)
		return r;
	if (v->readonly)
		return -EROFS;
	r = xattr_begin(v, ino, &ip);
	if (r < 0)
		return r;
	struct cow_xattr **pp = xattr_find(ip, name);
	if (!pp) {
		r = -ENODATA;
		goto out;
	}
	int64_t old_ctime = ip->row.ctime;
	ip->row.ctime = cow_now_ns();
	cow_db_lock(db);
	r = cow_db_begin_batched(db);
	if (r == 0) {
		r = cow_inode_store(v, ip);
		if (r == 0)
			r = cow_db_xattr_del(db, v->layer, ino, name);
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	cow_db_unlock(db);
	if (r < 0) {
		ip->row.ctime = old_ctime;
		goto out;
	}
	struct cow_xattr *old = *pp;
	*pp = old->next;
	free(old->name);
	free(old->value);
	free(old);
	xattr_recount(v, ip);
out:
	xattr_end(v, ip);
	return r;
}

void cow_attr_to_stat(const struct cow_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = a->size;
	st->st_blocks = a->blocks;
	st->st_blksize = 4096;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

int cow_kill_privs(struct cow_view *v, uint64_t ino, unsigned keep)
{
	struct cow_attr a, out;
	int r = cow_getattr(v, ino, &a);
	if (r < 0)
		return r;
	if (S_ISDIR(a.mode))
		return 0; /* (a chown of a special file clears its bits too) */
	uint32_t kill = 0;
	if (!(keep & COW_KEEP_SETID)) {
		if (a.mode & S_ISUID)
			kill |= S_ISUID;
		/* setgid without group execute only from a caller outside
		 * the file's group (setattr_should_drop_sgid) */
		if ((a.mode & S_ISGID) && ((a.mode & S_IXGRP) || !(keep & COW_KEEP_SGID_NOEXEC)))
			kill |= S_ISGID;
	}
	if (kill) {
		struct cow_attr m = {.mode = a.mode & ~kill};
		r = cow_setattr(v, ino, &m, COW_SET_MODE, &out);
		if (r < 0)
			return r;
	}
	r = cow_getxattr(v, ino, "security.capability", NULL, 0);
	if (r >= 0 && (r = cow_removexattr(v, ino, "security.capability")) == 0)
		return 1;
	if (r < 0 && r != -ENODATA)
		return r;
	return kill ? 1 : 0;
}
