/* SPDX-License-Identifier: MIT */
/*
 * Namespace changes: create, mkdir, mknod, symlink, link, unlink, rmdir,
 * rename.  Each is one database transaction under the view's ns_lock held
 * for writing.  Removing a name that a lower layer has writes a whiteout;
 * removing a name only the writable layer has deletes its row.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow-private.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static uint8_t dtype(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}

/* Parent directory ready for a change: referenced, listing loaded.
 * Called with ns_lock held for writing. */
static int parent_get(struct cow_view *v, uint64_t parent, struct cow_inode **ret)
{
	struct cow_inode *dp;
	int r = cow_inode_get(v, parent, &dp);
	if (r < 0)
		return r;
	if (!S_ISDIR(dp->row.mode)) {
		cow_inode_put(v, dp);
		return -ENOTDIR;
	}
	if (dp->row.nlink == 0) { /* removed directory */
		cow_inode_put(v, dp);
		return -ENOENT;
	}
	r = cow_dir_load(v, dp);
	if (r < 0) {
		cow_inode_put(v, dp);
		return r;
	}
	*ret = dp;
	return 0;
}

static struct cow_dent *visible(struct cow_dir *d, const char *name)
{
	struct cow_dent *e = cow_dir_find(d, name);
	return e && e->ino ? e : NULL;
}

/* Record (parent, name) -> ino in the layer and in the cached listing. */
static int name_put(struct cow_view *v, struct cow_inode *dp, const char *name, uint64_t ino, uint8_t type)
{
	int r = cow_db_dirent_put(v->st->db, v->layer, dp->ino, name, ino, type);
	if (r < 0)
		return r;
	dp->dir->changed = true;
	struct cow_dent *e = cow_dir_find(dp->dir, name);
	if (e) {
		e->ino = ino;
		e->type = type;
		e->in_layer = true;
		return 0;
	}
	return cow_dir_add(dp->dir, name, ino, type, true, false);
}

/* Remove (parent, name) from the layer view: whiteout or row delete. */
static int name_drop(struct cow_view *v, struct cow_inode *dp, const char *name)
{
	struct cow_dent *e = cow_dir_find(dp->dir, name);
	int r;
	if (!e)
		return 0;
	dp->dir->changed = true;
	if (e->lower) {
		r = cow_db_dirent_put(v->st->db, v->layer, dp->ino, name, 0, 0);
		if (r == 0) {
			e->ino = 0;
			e->type = 0;
			e->in_layer = true;
		}
	} else {
		r = cow_db_dirent_del(v->st->db, v->layer, dp->ino, name);
		if (r == 0)
			cow_dir_remove(dp->dir, e);
	}
	return r;
}

/* @ip's row changed and will be written back (inode lock held; then
 * cow_inode_mark_dirty): an image object's row counts in the layer's
 * quota from now, not from the write-back a second later. */
static void dirty_now(struct cow_view *v, struct cow_inode *ip)
{
	ip->dirty = true;
	cow_quota_update(v, ip);
}

static void touch_dir(struct cow_view *v, struct cow_inode *dp, int64_t now)
{
	pthread_mutex_lock(&dp->lock);
	dp->row.mtime = dp->row.ctime = now;
	dirty_now(v, dp);
	pthread_mutex_unlock(&dp->lock);
	cow_inode_mark_dirty(v, dp);
}

/* Change nlink of @ip by @delta and write its row (db lock and
 * transaction held).  Returns the new count. */
static int nlink_add(struct cow_view *v, struct cow_inode *ip, int delta, int64_t now)
{
	pthread_mutex_lock(&ip->lock);
	int64_t n = (int64_t)ip->row.nlink + delta;
	ip->row.nlink = n < 0 ? 0 : (uint32_t)n;
	ip->row.ctime = now;
	int r = cow_inode_store(v, ip);
	pthread_mutex_unlock(&ip->lock);
	return r;
}

/* An object whose last name went: drop its records now when nobody holds
 * it but the caller, else leave an nlink 0 row that forget removes. */
static int unlinked(struct cow_view *v, struct cow_inode *ip)
{
	bool last = cow_inode_holders(v, ip) <= 1;
	if (!last)
		return 0;
	return cow_drop_records(v, ip->ino);
}

/* After the commit that dropped an object's last name: if unlinked()
 * removed its records, its data file goes too, once that commit is done
 * (it may be part of a batch): data after metadata. */
static void unlinked_done(struct cow_view *v, struct cow_inode *ip)
{
	if (cow_inode_holders(v, ip) > 1)
		return;
	pthread_mutex_lock(&ip->lock);
	ip->destroyed = true;
	cow_quota_update(v, ip);
	pthread_mutex_unlock(&ip->lock);
	if (ip->row.data_layer == v->layer) {
		cow_db_lock(v->st->db);
		cow_data_unlink_after_commit(v->st, v->layer, ip->ino);
		cow_db_unlock(v->st->db);
	}
}

/* Do the ACLs a new object inherits (@acc, and @def for a directory) fit
 * in its xattrs?  0 or -ENOSPC, as ext4 says when they do not. */
static int inherited_acls_fit(mode_t mode, const void *acc, size_t acc_size, size_t def_size)
{
	struct cow_xattr_room room = {0};
	int r = acc ? cow_xattr_room_add(&room, strlen(COW_ACL_ACCESS), acc_size) : 0;
	if (r == 0 && S_ISDIR(mode))
		r = cow_xattr_room_add(&room, strlen(COW_ACL_DEFAULT), def_size);
	return r;
}

static int new_object(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
		      const char *target, const struct cow_cred *cred, bool with_data, struct cow_inode **ret_ip,
		      struct cow_attr *ret)
{
	struct cow_inode *dp, *ip = NULL;
	struct cow_db *db = v->st->db;
	void *def = NULL, *acc = NULL; /* the parent's default ACL, the new access ACL */
	size_t def_size = 0, acc_size = 0;
	uint64_t ino;
	int r = cow_check_name(name);
	if (r < 0)
		return r;
	if (v->readonly)
		return -EROFS;
	if (cow_db_space_low(db))
		return -ENOSPC; /* what room is left records removals */
	if (target && strlen(target) > COW_SYMLINK_MAX)
		return -ENAMETOOLONG;

	pthread_rwlock_wrlock(&v->ns_lock);
	r = parent_get(v, parent, &dp);
	if (r < 0)
		goto out_unlock;
	if (visible(dp->dir, name)) {
		r = -EEXIST;
		goto out_parent;
	}
	/* the new object, and its parent's row if that is below */
	bool dp_below = cow_quota_below(v, dp);
	r = cow_quota_check(v, 1 + dp_below, dp_below ? dp->xattr_bytes : 0);
	if (r < 0)
		goto out_parent;
	r = cow_alloc_ino(v, &ino);
	if (r < 0)
		goto out_parent;

	int64_t now = cow_now_ns();
	struct cow_irow row = {
	    .ino = ino,
	    .mode = mode,
	    .nlink = S_ISDIR(mode) ? 2 : 1,
	    .uid = cred->uid,
	    .gid = cred->gid,
	    .rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0,
	    .atime = now,
	    .mtime = now,
	    .ctime = now,
	};
	/* the directory's default ACL, if any, replaces the umask */
	pthread_mutex_lock(&dp->lock);
	if (dp->row.mode & S_ISGID) { /* BSD group semantics of setgid dirs */
		row.gid = dp->row.gid;
		if (S_ISDIR(mode))
			row.mode |= S_ISGID;
	}
	if (!S_ISLNK(mode) && cow_xattrs_load(v, dp) == 0) {
		for (struct cow_xattr *x = dp->xattrs; x; x = x->next)
			if (!strcmp(x->name, COW_ACL_DEFAULT) && (def = malloc(x->size))) {
				memcpy(def, x->value, x->size);
				def_size = x->size;
			}
	}
	pthread_mutex_unlock(&dp->lock);
	if (def) {
		r = cow_acl_create(def, def_size, &row.mode, &acc, &acc_size);
		if (r == 0)
			r = inherited_acls_fit(mode, acc, acc_size, def_size);
		if (r < 0)
			goto out_parent; /* which frees both */
	} else if (!S_ISLNK(mode)) {
		row.mode &= ~(cred->umask & 0777);
	}
	if (target) {
		row.target = strdup(target);
		if (!row.target) {
			r = -ENOMEM;
			goto out_parent;
		}
		row.size = (int64_t)strlen(target);
	}
	if (with_data) {
		/* the data file exists before the record that names it */
		int fd = cow_data_open(v->st, v->layer, ino, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			r = fd;
			cow_irow_release(&row);
			goto out_parent;
		}
		close(fd);
		r = cow_data_created(v->st, v->layer, ino);
		if (r < 0) {
			cow_data_unlink(v->st, v->layer, ino);
			cow_irow_release(&row);
			goto out_parent;
		}
		row.data_layer = v->layer;
	}

	cow_db_lock(db);
	r = cow_db_begin_batched(db);
	if (r < 0)
		goto out_db;
	r = cow_db_inode_put(db, v->layer, &row);
	if (r == 0 && acc)
		r = cow_db_xattr_put(db, v->layer, ino, COW_ACL_ACCESS, acc, acc_size);
	if (r == 0 && def && S_ISDIR(mode))
		r = cow_db_xattr_put(db, v->layer, ino, COW_ACL_DEFAULT, def, def_size);
	if (r == 0)
		r = name_put(v, dp, name, ino, dtype(mode));
	if (r == 0 && S_ISDIR(mode)) {
		/* the parent's row is written here anyway: its mtime with it */
		pthread_mutex_lock(&dp->lock);
		dp->row.mtime = now;
		pthread_mutex_unlock(&dp->lock);
		r = nlink_add(v, dp, 1, now);
	}
	if (r == 0)
		r = cow_db_commit(db, false);
	else
		cow_db_rollback(db);
out_db:
	cow_db_unlock(db);
	if (r < 0) {
		cow_inode_reload(v, dp); /* the listing and nlink as before */
		if (with_data)
			cow_data_unlink(v->st, v->layer, ino);
		cow_irow_release(&row);
		goto out_parent;
	}
	r = cow_inode_new(v, &row, parent, &ip);
	if (r < 0) {
		cow_irow_release(&row);
		goto out_parent;
	}
	if (acc || def) {
		pthread_mutex_lock(&ip->lock);
		cow_xattrs_free(ip); /* load what the transaction wrote */
		if (acc)
			ip->xattr_bytes += cow_quota_xattr(COW_ACL_ACCESS, acc_size);
		if (def && S_ISDIR(mode))
			ip->xattr_bytes += cow_quota_xattr(COW_ACL_DEFAULT, def_size);
		cow_quota_update(v, ip);
		pthread_mutex_unlock(&ip->lock);
	}
	if (!S_ISDIR(mode))
		touch_dir(v, dp, now);
	pthread_mutex_lock(&ip->lock);
	cow_inode_fill_attr(ip, ret);
	pthread_mutex_unlock(&ip->lock);
	if (ret_ip)
		*ret_ip = ip;
out_parent:
	free(def);
	free(acc);
	cow_inode_put(v, dp);
out_unlock:
	pthread_rwlock_unlock(&v->ns_lock);
	return r;
}

int cow_mknod(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
	      const struct cow_cred *cred, struct cow_attr *ret)
{
	if ((mode & S_IFMT) == 0)
		mode |= S_IFREG;
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	default:
		return -EINVAL;
	}
	/* a regular file gets its (empty) data file now, as with create: its
	 * first write then needs no copy-up transaction */
	return new_object(v, parent, name, mode, rdev, NULL, cred, S_ISREG(mode), NULL, ret);
}

int cow_mkdir(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, const struct cow_cred *cred,
	      struct cow_attr *ret)
{
	return new_object(v, parent, name, S_IFDIR | (mode & 07777), 0, NULL, cred, false, NULL, ret);
}

int cow_symlink(struct cow_view *v, uint64_t parent, const char *name, const char *target, const struct cow_cred *cred,
		struct cow_attr *ret)
{
	if (!*target)
		return -ENOENT;
	return new_object(v, parent, name, S_IFLNK | 0777, 0, target, cred, false, NULL, ret);
}

/* file.c creates regular files through this */
int cow_new_file(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, const struct cow_cred *cred,
		 struct cow_inode **ret_ip, struct cow_attr *ret);
int cow_new_file(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, const struct cow_cred *cred,
		 struct cow_inode **ret_ip, struct cow_attr *ret)
{
	return new_object(v, parent, name, S_IFREG | (mode & 07777), 0, NULL, cred, true, ret_ip, ret);
}

int cow_link(struct cow_view *v, uint64_t ino, uint64_t newparent, const char *newname, struct cow_attr *ret)
{
	struct cow_inode *dp, *ip;
	struct cow_db *db = v->st->db;
	int r = cow_check_name(newname);
	if (r < 0)
		return r;
	if (v->readonly)
		return -EROFS;
	if (cow_db_space_low(db))
		return -ENOSPC;
	pthread_rwlock_wrlock(&v->ns_lock);
	r = parent_get(v, newparent, &dp);
	if (r < 0)
		goto out_unlock;
	r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		goto out_parent;
	if (S_ISDIR(ip->row.mode)) {
		r = -EPERM;
		goto out_ip;
	}
	if (ip->row.nlink >= 65000) {
		r = -EMLINK;
		goto out_ip;
	}
	if (visible(dp->dir, newname)) {
		r = -EEXIST;
		goto out_ip;
	}
	/* a link adds no object, but may bring two rows into the layer */
	bool ip_below = cow_quota_below(v, ip), dp_below = cow_quota_below(v, dp);
	r = cow_quota_check(v, ip_below + dp_below,
			    (ip_below ? ip->xattr_bytes : 0) + (dp_below ? dp->xattr_bytes : 0));
	if (r < 0)
		goto out_ip;
	int64_t now = cow_now_ns();
	cow_db_lock(db);
	r = cow_db_begin_batched(db);
	if (r == 0) {
		r = name_put(v, dp, newname, ino, dtype(ip->row.mode));
		if (r == 0)
			r = nlink_add(v, ip, 1, now);
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	cow_db_unlock(db);
	if (r < 0) {
		cow_inode_reload(v, dp);
		cow_inode_reload(v, ip);
		goto out_ip;
	}
	touch_dir(v, dp, now);
	pthread_mutex_lock(&ip->lock);
	cow_inode_fill_attr(ip, ret);
	pthread_mutex_unlock(&ip->lock);
	/* the new name's reference: keep the one taken above */
	cow_inode_put(v, dp);
	pthread_rwlock_unlock(&v->ns_lock);
	return 0;
out_ip:
	cow_inode_put(v, ip);
out_parent:
	cow_inode_put(v, dp);
out_unlock:
	pthread_rwlock_unlock(&v->ns_lock);
	return r;
}

/* Does directory @dp list nothing visible? */
static int dir_empty(struct cow_view *v, struct cow_inode *dp)
{
	int r = cow_dir_load(v, dp);
	if (r < 0)
		return r;
	for (size_t i = 0; i < dp->dir->n; i++)
		if (dp->dir->ents[i].name && dp->dir->ents[i].ino)
			return -ENOTEMPTY;
	return 0;
}

/* Take away a name's object (target of unlink, rmdir, rename-over).
 * Transaction and db lock held. */
static int drop_object(struct cow_view *v, struct cow_inode *dp, struct cow_inode *ip, int64_t now)
{
	int r;
	if (S_ISDIR(ip->row.mode)) {
		/* its whiteouts in this layer hide nothing any more */
		r = cow_db_dirent_del_parent(v->st->db, v->layer, ip->ino);
		if (r == 0)
			r = nlink_add(v, ip, -(int)ip->row.nlink, now);
		if (r == 0)
			r = nlink_add(v, dp, -1, now);
		pthread_mutex_lock(&ip->lock);
		if (ip->dir) {
			cow_dir_free(ip->dir);
			ip->dir = NULL;
		}
		pthread_mutex_unlock(&ip->lock);
	} else {
		r = nlink_add(v, ip, -1, now);
	}
	if (r == 0 && ip->row.nlink == 0)
		r = unlinked(v, ip);
	return r;
}

static int remove_name(struct cow_view *v, uint64_t parent, const char *name, bool dir)
{
	struct cow_inode *dp, *ip;
	struct cow_db *db = v->st->db;
	int r = cow_check_name(name);
	if (r < 0)
		return r;
	if (v->readonly)
		return -EROFS;
	pthread_rwlock_wrlock(&v->ns_lock);
	r = parent_get(v, parent, &dp);
	if (r < 0)
		goto out_unlock;
	struct cow_dent *e = visible(dp->dir, name);
	if (!e) {
		r = -ENOENT;
		goto out_parent;
	}
	r = cow_inode_get(v, e->ino, &ip);
	if (r < 0)
		goto out_parent;
	if (dir && !S_ISDIR(ip->row.mode)) {
		r = -ENOTDIR;
		goto out_ip;
	}
	if (!dir && S_ISDIR(ip->row.mode)) {
		r = -EISDIR;
		goto out_ip;
	}
	if (dir) {
		r = dir_empty(v, ip);
		if (r < 0)
			goto out_ip;
	}
	int64_t now = cow_now_ns();
	cow_db_lock(db);
	r = cow_db_begin_batched(db);
	if (r == 0) {
		r = name_drop(v, dp, name);
		if (r == 0)
			r = drop_object(v, dp, ip, now);
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	cow_db_unlock(db);
	if (r < 0) {
		/* rolled back: memory must say what the database says */
		cow_inode_reload(v, dp);
		cow_inode_reload(v, ip);
		goto out_ip;
	}
	if (ip->row.nlink == 0)
		unlinked_done(v, ip);
	touch_dir(v, dp, now);
out_ip:
	cow_inode_put(v, ip);
out_parent:
	cow_inode_put(v, dp);
out_unlock:
	pthread_rwlock_unlock(&v->ns_lock);
	return r;
}

int cow_unlink(struct cow_view *v, uint64_t parent, const char *name)
{
	return remove_name(v, parent, name, false);
}

int cow_rmdir(struct cow_view *v, uint64_t parent, const char *name)
{
	return remove_name(v, parent, name, true);
}

/* Is @ino @anc or below it?  Walks cached parent links up to the root. */
static bool is_below(struct cow_view *v, uint64_t ino, uint64_t anc)
{
	for (int depth = 0; ino && depth < 4096; depth++) {
		if (ino == anc)
			return true;
		if (ino == v->root)
			return false;
		ino = cow_inode_parent(v, ino);
	}
	return false;
}

int cow_rename(struct cow_view *v, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
	       unsigned int flags)
{
	struct cow_inode *dp, *dp2 = NULL, *ip = NULL, *tp = NULL;
	struct cow_db *db = v->st->db;
	int r;

	if ((r = cow_check_name(name)) < 0 || (r = cow_check_name(newname)) < 0)
		return r;
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    (flags & (RENAME_NOREPLACE | RENAME_EXCHANGE)) == (RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (v->readonly)
		return -EROFS;
	pthread_rwlock_wrlock(&v->ns_lock);
	r = parent_get(v, parent, &dp);
	if (r < 0)
		goto out_unlock;
	r = parent_get(v, newparent, &dp2);
	if (r < 0)
		goto out;
	struct cow_dent *e = visible(dp->dir, name), *t = visible(dp2->dir, newname);
	if (!e) {
		r = -ENOENT;
		goto out;
	}
	if (e == t)
		goto out; /* same name: nothing to do */
	if (t && (flags & RENAME_NOREPLACE)) {
		r = -EEXIST;
		goto out;
	}
	if (!t && (flags & RENAME_EXCHANGE)) {
		r = -ENOENT;
		goto out;
	}
	r = cow_inode_get(v, e->ino, &ip);
	if (r < 0)
		goto out;
	if (t) {
		r = cow_inode_get(v, t->ino, &tp);
		if (r < 0)
			goto out;
		if (tp == ip && !(flags & RENAME_EXCHANGE))
			goto out; /* two names of one object: POSIX says do nothing */
	}
	bool sdir = S_ISDIR(ip->row.mode), tdir = tp && S_ISDIR(tp->row.mode);
	if ((sdir && is_below(v, newparent, ip->ino)) ||
	    ((flags & RENAME_EXCHANGE) && tdir && is_below(v, parent, tp->ino))) {
		r = -EINVAL;
		goto out;
	}
	if (tp && !(flags & RENAME_EXCHANGE)) {
		if (sdir && !tdir) {
			r = -ENOTDIR;
			goto out;
		}
		if (!sdir && tdir) {
			r = -EISDIR;
			goto out;
		}
		if (tdir && (r = dir_empty(v, tp)) < 0)
			goto out;
	}

	int64_t now = cow_now_ns();
	uint64_t sino = ip->ino;
	uint8_t stype = dtype(ip->row.mode);
	cow_db_lock(db);
	r = cow_db_begin_batched(db);
	if (r == 0) {
		if (flags & RENAME_EXCHANGE) {
			uint64_t tino = tp->ino;
			uint8_t ttype = dtype(tp->row.mode);
			r = name_put(v, dp2, newname, sino, stype);
			if (r == 0)
				r = name_put(v, dp, name, tino, ttype);
			if (r == 0 && dp != dp2 && sdir != tdir) {
				r = nlink_add(v, dp, sdir ? -1 : 1, now);
				if (r == 0)
					r = nlink_add(v, dp2, sdir ? 1 : -1, now);
			}
		} else {
			if (tp)
				r = drop_object(v, dp2, tp, now);
			if (r == 0)
				r = name_put(v, dp2, newname, sino, stype);
			if (r == 0)
				r = name_drop(v, dp, name);
			if (r == 0 && sdir && dp != dp2) {
				r = nlink_add(v, dp, -1, now);
				if (r == 0)
					r = nlink_add(v, dp2, 1, now);
			}
		}
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	cow_db_unlock(db);
	if (r < 0) {
		cow_inode_reload(v, dp);
		if (dp2 != dp)
			cow_inode_reload(v, dp2);
		cow_inode_reload(v, ip);
		if (tp)
			cow_inode_reload(v, tp);
		goto out;
	}
	pthread_mutex_lock(&ip->lock);
	ip->row.ctime = now;
	if (sdir)
		ip->parent = newparent;
	dirty_now(v, ip);
	pthread_mutex_unlock(&ip->lock);
	cow_inode_mark_dirty(v, ip);
	if (tp && (flags & RENAME_EXCHANGE)) {
		pthread_mutex_lock(&tp->lock);
		tp->row.ctime = now;
		if (tdir)
			tp->parent = parent;
		dirty_now(v, tp);
		pthread_mutex_unlock(&tp->lock);
		cow_inode_mark_dirty(v, tp);
	} else if (tp && tp->row.nlink == 0) {
		unlinked_done(v, tp);
	}
	touch_dir(v, dp, now);
	if (dp2 != dp)
		touch_dir(v, dp2, now);
out:
	if (tp)
		cow_inode_put(v, tp);
	if (ip)
		cow_inode_put(v, ip);
	if (dp2)
		cow_inode_put(v, dp2);
	cow_inode_put(v, dp);
out_unlock:
	pthread_rwlock_unlock(&v->ns_lock);
	return r;
}
