/* SPDX-License-Identifier: MIT */
/*
 * Stores and views: opening a store, stacking a view's layers, the
 * in-memory inode table and the background writer of dirty metadata.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow-private.h"

#define FLUSH_INTERVAL_MS 1000

int64_t cow_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return cow_ts_to_ns(&ts);
}

void cow_ns_to_ts(int64_t ns, struct timespec *ts)
{
	int64_t sec = ns / 1000000000LL, nsec = ns % 1000000000LL;
	if (nsec < 0) {
		nsec += 1000000000LL;
		sec--;
	}
	ts->tv_sec = sec;
	ts->tv_nsec = nsec;
}

/* ---- stores ---- */

static _Thread_local char store_open_errmsg[320];

const char *cow_store_open_errmsg(void)
{
	return store_open_errmsg;
}

int cow_store_open(const char *dir, int flags, struct cow_store **ret)
{
	struct cow_store *st = calloc(1, sizeof(*st));
	int r;

	store_open_errmsg[0] = 0;
	if (!st)
		return -ENOMEM;
	st->dirfd = st->datafd = st->lockfd = -1;
	st->readonly = flags & COW_STORE_READONLY;
	pthread_mutex_init(&st->newdirs_lock, NULL);
	if ((flags & COW_STORE_CREATE) && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dirfd < 0) {
		r = -errno;
		goto fail;
	}
	/* Everything beside the database is reached through dirfd; sqlite
	 * gets the database's absolute path, so that a daemon that changes
	 * its directory (cowroot mount does) still syncs the right files. */
	st->dir = realpath(dir, NULL);
	if (!st->dir) {
		r = -errno;
		goto fail;
	}
	bool exists = faccessat(st->dirfd, "cowroot.db", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	if (flags & COW_STORE_CREATE) {
		if (exists) {
			r = -EEXIST;
			goto fail;
		}
		if (mkdirat(st->dirfd, "data", 0700) < 0 && errno != EEXIST) {
			r = -errno;
			goto fail;
		}
	} else if (!exists) {
		r = -ENOENT;
		goto fail;
	}
	st->datafd = openat(st->dirfd, "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->datafd < 0) {
		r = errno == ENOENT ? -EIO : -errno;
		goto fail;
	}
	char *path;
	if (asprintf(&path, "%s/cowroot.db", st->dir) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = cow_db_open(st->dirfd, path, flags, &st->db);
	if (r == -ESTALE) {
		/* an older schema: a read-only user migrates it first, as any
		 * writer would (fails with -EROFS/-EACCES if it may not) */
		struct cow_db *db;
		r = cow_db_open(st->dirfd, path, flags & ~COW_STORE_READONLY, &db);
		if (r == 0) {
			cow_db_close(db);
			r = cow_db_open(st->dirfd, path, flags, &st->db);
		}
	}
	if (r < 0)
		snprintf(store_open_errmsg, sizeof(store_open_errmsg), "%s: %s", path, cow_db_open_errmsg());
	free(path);
	if (r < 0)
		goto fail;
	cow_db_set_presync(st->db, cow_data_sync_dirs, st);
	*ret = st;
	return 0;
fail:
	cow_store_close(st);
	return r;
}

const char *cow_store_dir(struct cow_store *st)
{
	return st->dir;
}

void cow_store_close(struct cow_store *st)
{
	if (!st)
		return;
	cow_db_close(st->db); /* its last commit syncs the directories listed */
	cow_data_sync_dirs(st);
	free(st->newdirs);
	pthread_mutex_destroy(&st->newdirs_lock);
	if (st->datafd >= 0)
		close(st->datafd);
	if (st->dirfd >= 0)
		close(st->dirfd);
	if (st->lockfd >= 0)
		close(st->lockfd);
	free(st->dir);
	free(st);
}

const char *cow_store_errmsg(struct cow_store *st)
{
	if (st && st->errmsg[0])
		return st->errmsg;
	return st ? cow_db_errmsg(st->db) : NULL;
}

int cow_name_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > COW_ENTITY_NAME_MAX || name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '@' || c == '+' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

/* A new client's generation: random, so that it differs from those of
 * the clients that held its id before even in a store restored from an
 * older copy (a counter would start over); in 1..INT64_MAX (sqlite's
 * integers), 0 being the generation of clients from before schema 3. */
static uint64_t client_gen(void)
{
	uint64_t gen = 0;
	if (getrandom(&gen, sizeof(gen), 0) != (ssize_t)sizeof(gen)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		gen = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 48);
	}
	gen &= INT64_MAX;
	return gen ? gen : 1;
}

int cow_client_add(struct cow_store *st, const char *name, const char *image)
{
	struct cow_layer_info img;
	uint64_t image_layer, layer;
	int r;

	if (cow_name_check(name) < 0)
		return -EINVAL;
	cow_db_lock(st->db);
	r = cow_db_begin(st->db);
	if (r < 0)
		goto out;
	struct cow_client_info old;
	if (cow_db_client_get(st->db, name, &old) == 0) {
		r = -EEXIST;
		goto rollback;
	}
	r = cow_db_image_get(st->db, image, &image_layer);
	if (r < 0)
		goto rollback;
	r = cow_db_layer_get(st->db, image_layer, &img);
	if (r < 0)
		goto rollback;
	r = cow_db_layer_add(st->db, image_layer, COW_LAYER_CLIENT, img.root, &layer);
	if (r < 0)
		goto rollback;
	r = cow_db_client_add(st->db, name, image, layer, client_gen());
	if (r < 0)
		goto rollback;
	uint64_t qbytes, qfiles; /* the store's default quota */
	r = cow_db_default_quota(st->db, &qbytes, &qfiles);
	if (r == 0 && (qbytes || qfiles))
		r = cow_db_client_set_quota(st->db, name, qbytes, qfiles);
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

int cow_image_foreach(struct cow_store *st, int (*fn)(void *arg, const struct cow_image_info *), void *arg)
{
	cow_db_lock(st->db);
	int r = cow_db_image_foreach(st->db, fn, arg);
	cow_db_unlock(st->db);
	return r;
}

int cow_client_foreach(struct cow_store *st, int (*fn)(void *arg, const struct cow_client_info *), void *arg)
{
	cow_db_lock(st->db);
	int r = cow_db_client_foreach(st->db, fn, arg);
	cow_db_unlock(st->db);
	return r;
}

/* ---- inode rows ---- */

int cow_irow_copy(struct cow_irow *dst, const struct cow_irow *src)
{
	*dst = *src;
	if (src->target) {
		dst->target = strdup(src->target);
		if (!dst->target)
			return -ENOMEM;
	}
	return 0;
}

void cow_irow_release(struct cow_irow *row)
{
	free(row->target);
	row->target = NULL;
}

void cow_fd_put(struct cow_fd *f)
{
	if (f && atomic_fetch_sub(&f->refs, 1) == 1) {
		close(f->fd);
		free(f);
	}
}

/* ---- the inode table ---- */

static size_t ihash(struct cow_view *v, uint64_t ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 20) & (v->itable_size - 1);
}

static struct cow_inode *itable_find(struct cow_view *v, uint64_t ino)
{
	for (struct cow_inode *ip = v->itable[ihash(v, ino)]; ip; ip = ip->hnext)
		if (ip->ino == ino)
			return ip;
	return NULL;
}

static void itable_grow(struct cow_view *v)
{
	size_t nsize = v->itable_size * 2;
	struct cow_inode **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return; /* keep the longer chains */
	struct cow_inode **old = v->itable;
	size_t osize = v->itable_size;
	v->itable = nt;
	v->itable_size = nsize;
	for (size_t i = 0; i < osize; i++) {
		struct cow_inode *ip = old[i], *next;
		for (; ip; ip = next) {
			next = ip->hnext;
			size_t h = ihash(v, ip->ino);
			ip->hnext = nt[h];
			nt[h] = ip;
		}
	}
	free(old);
}

/* Insert @ip unless another thread loaded the same ino first: then free
 * @ip and return the winner.  itable_lock held. */
static struct cow_inode *itable_insert(struct cow_view *v, struct cow_inode *ip)
{
	struct cow_inode *cur = itable_find(v, ip->ino);
	if (cur)
		return cur;
	if (v->itable_count + 1 > v->itable_size)
		itable_grow(v);
	size_t h = ihash(v, ip->ino);
	ip->hnext = v->itable[h];
	v->itable[h] = ip;
	v->itable_count++;
	return ip;
}

static void inode_free(struct cow_inode *ip)
{
	cow_irow_release(&ip->row);
	cow_fd_put(ip->fd);
	cow_xattrs_free(ip);
	if (ip->dir)
		cow_dir_free(ip->dir);
	pthread_mutex_destroy(&ip->lock);
	free(ip);
}

static struct cow_inode *inode_alloc(void)
{
	struct cow_inode *ip = calloc(1, sizeof(*ip));
	if (ip)
		pthread_mutex_init(&ip->lock, NULL);
	return ip;
}

/* ---- unreferenced inodes (itable_lock held) ----
 *
 * An inode nobody references (no lookup of a front end, no open, no pin,
 * not dirty) stays cached until lru_max others have joined it, then goes:
 * a file entirely (what it is can be loaded again: its row is written,
 * its quota share stays in the view's sum, see quota.c); a directory only
 * loses its merged listing, and only an unchanged one, whose reload gives
 * the same readdir cookies; the directory's own inode stays, with the
 * parent link that rename's loop check and ".." need. */

static void lru_unlink(struct cow_view *v, struct cow_inode *ip)
{
	if (!ip->on_lru)
		return;
	if (ip->lru_prev)
		ip->lru_prev->lru_next = ip->lru_next;
	else
		v->lru_head = ip->lru_next;
	if (ip->lru_next)
		ip->lru_next->lru_prev = ip->lru_prev;
	else
		v->lru_tail = ip->lru_prev;
	ip->lru_prev = ip->lru_next = NULL;
	ip->on_lru = false;
	v->lru_count--;
}

static void lru_push(struct cow_view *v, struct cow_inode *ip)
{
	ip->lru_prev = v->lru_tail;
	ip->lru_next = NULL;
	if (v->lru_tail)
		v->lru_tail->lru_next = ip;
	else
		v->lru_head = ip;
	v->lru_tail = ip;
	ip->on_lru = true;
	v->lru_count++;
}

/* A reference more (itable_lock held). */
static void iref(struct cow_view *v, struct cow_inode *ip)
{
	if (ip->refs++ == 0)
		lru_unlink(v, ip);
}

/* May @ip go, or lose its listing, once unreferenced?  Its fields read
 * here change only with a reference held, which nobody has. */
static bool evictable(const struct cow_inode *ip)
{
	if (ip->refs || ip->dirty || ip->on_dirty_list || ip->reset_gone || ip->destroyed || ip->row.nlink == 0)
		return false;
	if (S_ISDIR(ip->row.mode))
		return ip->dir && !ip->dir->changed;
	return ip->nopen == 0;
}

static void table_remove(struct cow_view *v, struct cow_inode *ip)
{
	struct cow_inode **pp = &v->itable[ihash(v, ip->ino)];
	while (*pp != ip)
		pp = &(*pp)->hnext;
	*pp = ip->hnext;
	v->itable_count--;
}

/* Take the oldest past lru_max off the list: files out of the table onto
 * *@gone (freed by the caller, outside the locks), directories' listings
 * freed now if the namespace lock can be had (it guards every use of a
 * listing; held by this thread already, or busy: they wait for the next
 * trim).  itable_lock held. */
static void lru_trim(struct cow_view *v, struct cow_inode **gone)
{
	bool ns = false, tried = false;
	size_t skipped = 0;
	while (v->lru_count > v->lru_max && skipped < v->lru_count) {
		struct cow_inode *ip = v->lru_head;
		lru_unlink(v, ip);
		if (!S_ISDIR(ip->row.mode)) {
			table_remove(v, ip);
			ip->hnext = *gone;
			*gone = ip;
			continue;
		}
		if (!tried) {
			tried = true;
			ns = pthread_rwlock_trywrlock(&v->ns_lock) == 0;
		}
		if (!ns) {
			lru_push(v, ip); /* to the back, for a later trim */
			skipped++;
			continue;
		}
		if (ip->dir && !ip->dir->changed) {
			cow_dir_free(ip->dir);
			ip->dir = NULL;
		}
	}
	if (ns)
		pthread_rwlock_unlock(&v->ns_lock);
}

static void lru_add(struct cow_view *v, struct cow_inode *ip)
{
	if (!ip->on_lru && evictable(ip))
		lru_push(v, ip);
}

/* Size and allocation come from the data file: it is the truth after a
 * crash, whatever the row last recorded. */
static void inode_stat_data(struct cow_view *v, struct cow_inode *ip)
{
	if (!S_ISREG(ip->row.mode)) {
		ip->blocks = 0;
		if (S_ISLNK(ip->row.mode) && ip->row.target)
			ip->row.size = (int64_t)strlen(ip->row.target);
		return;
	}
	if (!ip->row.data_layer) {
		ip->row.size = 0;
		ip->blocks = 0;
		return;
	}
	char path[128];
	struct stat stbuf;
	cow_data_path(path, sizeof(path), ip->row.data_layer, ip->ino);
	if (fstatat(v->st->datafd, path, &stbuf, 0) == 0) {
		ip->row.size = stbuf.st_size;
		ip->blocks = stbuf.st_blocks;
	}
}

static int inode_load(struct cow_view *v, uint64_t ino, struct cow_inode **ret)
{
	struct cow_inode *ip = inode_alloc();
	int r = -ENOENT;
	if (!ip)
		return -ENOMEM;
	ip->ino = ino;
	cow_db_lock(v->st->db);
	for (int i = 0; i < v->nlayers; i++) {
		r = cow_db_inode_get(v->st->db, v->layers[i], ino, &ip->row);
		if (r == 0 && ip->row.nlink == 0 && !S_ISDIR(ip->row.mode) && ip->row.mode == 0) {
			r = -ENOENT; /* a tombstone: removed in this layer */
			break;
		}
		if (r == 0) {
			ip->row_layer = v->layers[i];
			break;
		}
		if (r != -ENOENT)
			break;
	}
	if (r == 0 && v->quota.tracking && ip->row_layer == v->layer)
		r = cow_db_xattr_bytes(v->st->db, v->layer, ino, &ip->xattr_bytes);
	cow_db_unlock(v->st->db);
	if (r < 0) {
		inode_free(ip);
		return r;
	}
	inode_stat_data(v, ip);
	cow_quota_loaded(v, ip);
	*ret = ip;
	return 0;
}

uint64_t cow_inode_parent(struct cow_view *v, uint64_t ino)
{
	pthread_mutex_lock(&v->itable_lock);
	struct cow_inode *ip = itable_find(v, ino);
	uint64_t up = ip ? ip->parent : 0;
	pthread_mutex_unlock(&v->itable_lock);
	return up;
}

void cow_inode_reload(struct cow_view *v, struct cow_inode *ip)
{
	struct cow_inode *fresh;
	if (inode_load(v, ip->ino, &fresh) < 0)
		return;
	pthread_mutex_lock(&ip->lock);
	struct cow_irow old = ip->row;
	ip->row = fresh->row;
	ip->row_layer = fresh->row_layer;
	ip->blocks = fresh->blocks;
	ip->xattr_bytes = fresh->xattr_bytes;
	ip->destroyed = false;
	cow_quota_update(v, ip);
	fresh->row = old; /* freed with it */
	if (ip->dir) {
		cow_dir_free(ip->dir);
		ip->dir = NULL;
	}
	cow_xattrs_free(ip);
	pthread_mutex_unlock(&ip->lock);
	inode_free(fresh);
}

int cow_inode_get(struct cow_view *v, uint64_t ino, struct cow_inode **ret)
{
	pthread_mutex_lock(&v->itable_lock);
	struct cow_inode *ip = itable_find(v, ino);
	if (ip && ip->reset_gone) {
		/* an object of the layer before a reset: nothing of it is
		 * reached again, by name or by handle */
		pthread_mutex_unlock(&v->itable_lock);
		return -ESTALE;
	}
	if (ip) {
		iref(v, ip);
		pthread_mutex_unlock(&v->itable_lock);
		*ret = ip;
		return 0;
	}
	pthread_mutex_unlock(&v->itable_lock);

	struct cow_inode *n;
	int r = inode_load(v, ino, &n);
	if (r < 0)
		return r;
	pthread_mutex_lock(&v->itable_lock);
	ip = itable_insert(v, n);
	iref(v, ip);
	pthread_mutex_unlock(&v->itable_lock);
	if (ip != n)
		inode_free(n);
	*ret = ip;
	return 0;
}

int cow_inode_new(struct cow_view *v, const struct cow_irow *row, uint64_t parent, struct cow_inode **ret)
{
	struct cow_inode *ip = inode_alloc();
	if (!ip)
		return -ENOMEM;
	ip->ino = row->ino;
	ip->row = *row;
	ip->row_layer = v->layer;
	ip->parent = parent;
	ip->xattrs_loaded = true;
	inode_stat_data(v, ip);
	cow_quota_update(v, ip); /* not shared yet */
	pthread_mutex_lock(&v->itable_lock);
	struct cow_inode *cur = itable_insert(v, ip);
	cur->refs++;
	pthread_mutex_unlock(&v->itable_lock);
	if (cur != ip) { /* cannot happen: inos are never reused */
		ip->row.target = NULL;
		inode_free(ip);
		return -EIO;
	}
	*ret = ip;
	return 0;
}

/* Drop one reference.  Unreferenced inodes stay cached (the kernel keeps
 * its own cache of them); unlinked ones are destroyed. */
void cow_inode_put(struct cow_view *v, struct cow_inode *ip)
{
	cow_forget(v, ip->ino, 1);
}

void cow_forget(struct cow_view *v, uint64_t ino, uint64_t n)
{
	/* the dirty list's reference does not keep an unlinked object: it
	 * goes with the last other one, at once (its space is free then) */
	pthread_mutex_lock(&v->dirty_lock);
	pthread_mutex_lock(&v->itable_lock);
	struct cow_inode *ip = itable_find(v, ino);
	if (!ip) {
		pthread_mutex_unlock(&v->itable_lock);
		pthread_mutex_unlock(&v->dirty_lock);
		return;
	}
	ip->refs = ip->refs > n ? ip->refs - n : 0;
	bool gone = ip->row.nlink == 0 && (ip->refs == 0 || (ip->refs == 1 && ip->on_dirty_list));
	if (gone) {
		if (ip->on_dirty_list) {
			struct cow_inode **pp = &v->dirty;
			while (*pp != ip)
				pp = &(*pp)->dirty_next;
			*pp = ip->dirty_next;
			ip->on_dirty_list = false;
			ip->refs = 0;
		}
		/* unlink from the table; nobody can find it any more */
		lru_unlink(v, ip);
		table_remove(v, ip);
	}
	struct cow_inode *evicted = NULL;
	if (!gone && ip->refs == 0) {
		lru_add(v, ip);
		lru_trim(v, &evicted);
	}
	pthread_mutex_unlock(&v->itable_lock);
	pthread_mutex_unlock(&v->dirty_lock);
	if (gone) {
		cow_inode_destroy_unlinked(v, ip);
		inode_free(ip);
	}
	while (evicted) {
		struct cow_inode *next = evicted->hnext;
		inode_free(evicted);
		evicted = next;
	}
}

bool cow_exists_below(struct cow_view *v, uint64_t ino)
{
	for (int i = 1; i < v->nlayers; i++) {
		struct cow_irow row;
		if (cow_db_inode_get(v->st->db, v->layers[i], ino, &row) == 0) {
			cow_irow_release(&row);
			return true;
		}
	}
	return false;
}

int cow_drop_records(struct cow_view *v, uint64_t ino)
{
	struct cow_db *db = v->st->db;
	int r = cow_db_xattr_del_all(db, v->layer, ino);
	if (r < 0)
		return r;
	if (!cow_exists_below(v, ino))
		return cow_db_inode_del(db, v->layer, ino);
	struct cow_irow tomb = {.ino = ino};
	return cow_db_inode_put(db, v->layer, &tomb);
}

void cow_inode_destroy_unlinked(struct cow_view *v, struct cow_inode *ip)
{
	if (v->readonly || ip->destroyed)
		return;
	ip->destroyed = true;
	cow_quota_update(v, ip); /* nobody holds it any more */
	struct cow_db *db = v->st->db;
	cow_db_lock(db);
	if (cow_db_begin_batched(db) == 0) {
		int r = cow_drop_records(v, ip->ino);
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
		/* after the records are gone for good: a crash in between
		 * leaves an orphan file, which fsck removes, never a record
		 * of a missing file */
		if (r == 0 && ip->row.data_layer == v->layer)
			cow_data_unlink_after_commit(v->st, v->layer, ip->ino);
	}
	cow_db_unlock(db);
}

void cow_inode_fill_attr(struct cow_inode *ip, struct cow_attr *a)
{
	a->ino = ip->ino;
	a->mode = ip->row.mode;
	a->nlink = ip->row.nlink;
	a->uid = ip->row.uid;
	a->gid = ip->row.gid;
	a->rdev = ip->row.rdev;
	a->size = ip->row.size;
	a->blocks = ip->blocks;
	cow_ns_to_ts(ip->row.atime, &a->atime);
	cow_ns_to_ts(ip->row.mtime, &a->mtime);
	cow_ns_to_ts(ip->row.ctime, &a->ctime);
}

int cow_inode_store(struct cow_view *v, struct cow_inode *ip)
{
	int r;
	if (v->readonly)
		return -EROFS;
	if (ip->row_layer != v->layer) {
		r = cow_db_xattr_copy(v->st->db, ip->row_layer, v->layer, ip->ino);
		if (r == 0 && v->quota.tracking)
			r = cow_db_xattr_bytes(v->st->db, v->layer, ip->ino, &ip->xattr_bytes);
		if (r < 0)
			return r;
	}
	r = cow_db_inode_put(v->st->db, v->layer, &ip->row);
	if (r < 0)
		return r;
	ip->row_layer = v->layer;
	ip->dirty = false;
	cow_quota_update(v, ip);
	return 0;
}

void cow_inode_mark_dirty(struct cow_view *v, struct cow_inode *ip)
{
	ip->dirty = true;
	pthread_mutex_lock(&v->dirty_lock);
	if (!ip->on_dirty_list) {
		ip->on_dirty_list = true;
		ip->dirty_next = v->dirty;
		v->dirty = ip;
		/* the list holds a reference: keep the inode until written */
		pthread_mutex_lock(&v->itable_lock);
		iref(v, ip);
		pthread_mutex_unlock(&v->itable_lock);
	}
	pthread_mutex_unlock(&v->dirty_lock);
}

int cow_getattr(struct cow_view *v, uint64_t ino, struct cow_attr *ret)
{
	struct cow_inode *ip;
	int r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ip->lock);
	cow_inode_fill_attr(ip, ret);
	pthread_mutex_unlock(&ip->lock);
	cow_inode_put(v, ip);
	return 0;
}

uint64_t cow_inode_holders(struct cow_view *v, struct cow_inode *ip)
{
	pthread_mutex_lock(&v->dirty_lock);
	pthread_mutex_lock(&v->itable_lock);
	uint64_t n = ip->refs - (ip->on_dirty_list ? 1 : 0);
	pthread_mutex_unlock(&v->itable_lock);
	pthread_mutex_unlock(&v->dirty_lock);
	return n;
}

int cow_ref(struct cow_view *v, uint64_t ino, struct cow_attr *ret)
{
	struct cow_inode *ip;
	int r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ip->lock);
	cow_inode_fill_attr(ip, ret);
	bool unlinked = ip->row.nlink == 0 && ip->nopen == 0;
	pthread_mutex_unlock(&ip->lock);
	unlinked = unlinked && cow_inode_holders(v, ip) <= 1;
	if (unlinked) { /* a handle to a removed object */
		cow_inode_put(v, ip);
		return -ENOENT;
	}
	return 0;
}

int cow_alloc_ino(struct cow_view *v, uint64_t *ret)
{
	int r = 0;
	pthread_mutex_lock(&v->ino_lock);
	if (v->next_ino >= v->end_ino) {
		/* its own transaction: inos are never reused, gaps are fine */
		uint64_t first;
		struct cow_db *db = v->st->db;
		cow_db_lock(db);
		r = cow_db_begin(db);
		if (r == 0) {
			r = cow_db_alloc_inos(db, COW_INO_BATCH, &first);
			if (r == 0)
				r = cow_db_commit(db, false);
			else
				cow_db_rollback(db);
		}
		cow_db_unlock(db);
		if (r == 0) {
			v->next_ino = first;
			v->end_ino = first + COW_INO_BATCH;
		}
	}
	if (r == 0)
		*ret = v->next_ino++;
	pthread_mutex_unlock(&v->ino_lock);
	return r;
}

/* ---- dirty metadata ---- */

/* Write every dirty row in one transaction. */
static int flush_dirty(struct cow_view *v, bool durable)
{
	/* Take the list as an array: once off the list, an inode may be
	 * put back on it (and its link reused) by any thread. */
	size_t n = 0, cap = 64;
	struct cow_inode **ips = malloc(cap * sizeof(*ips));
	if (!ips)
		return -ENOMEM;
	pthread_mutex_lock(&v->dirty_lock);
	for (struct cow_inode *ip = v->dirty; ip; ip = ip->dirty_next) {
		if (n == cap) {
			struct cow_inode **nips = realloc(ips, cap * 2 * sizeof(*ips));
			if (!nips)
				break; /* the rest stays listed for the next round */
			ips = nips;
			cap *= 2;
		}
		ips[n++] = ip;
	}
	struct cow_inode *rest = n ? ips[n - 1]->dirty_next : v->dirty;
	for (size_t i = 0; i < n; i++)
		ips[i]->on_dirty_list = false;
	v->dirty = rest;
	pthread_mutex_unlock(&v->dirty_lock);

	/* One transaction for the rows, committed with the batch of
	 * operations: rows are small, commits are not.  The db lock is held
	 * throughout, against the lock order, so inode locks are only tried:
	 * a busy inode stays dirty for the next round. */
	struct cow_db *db = v->st->db;
	int r = 0;
	cow_db_lock(db);
	if (n > 0) {
		r = cow_db_begin_batched(db);
		for (size_t i = 0; i < n && r == 0; i++) {
			if (pthread_mutex_trylock(&ips[i]->lock) != 0)
				continue;
			if (ips[i]->dirty && ips[i]->row.nlink > 0)
				r = cow_inode_store(v, ips[i]);
			pthread_mutex_unlock(&ips[i]->lock);
		}
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	if (r == 0)
		r = cow_db_flush(db, durable);
	cow_db_unlock(db);
	cow_data_reap(v->st);
	for (size_t i = 0; i < n; i++) {
		struct cow_inode *ip = ips[i];
		pthread_mutex_lock(&ip->lock);
		if (r < 0)
			ip->dirty = true; /* rolled back: again later */
		bool again = ip->dirty && ip->row.nlink > 0;
		pthread_mutex_unlock(&ip->lock);
		if (again)
			cow_inode_mark_dirty(v, ip);
		cow_inode_put(v, ip); /* the list's reference */
	}
	free(ips);
	return r;
}

int cow_view_sync(struct cow_view *v)
{
	if (v->readonly)
		return 0;
	return flush_dirty(v, true);
}

static void *flusher_main(void *arg)
{
	struct cow_view *v = arg;
	pthread_mutex_lock(&v->dirty_lock);
	while (!v->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += FLUSH_INTERVAL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&v->flusher_cond, &v->dirty_lock, &ts);
		if (v->stopping)
			break;
		pthread_mutex_unlock(&v->dirty_lock);
		flush_dirty(v, false);
		pthread_mutex_lock(&v->dirty_lock);
	}
	pthread_mutex_unlock(&v->dirty_lock);
	return NULL;
}

void cow_layer_abandon(struct cow_store *st, uint64_t layer, int lockfd)
{
	char name[64];
	cow_data_remove_layer(st, layer);
	/* unlinked while held: whoever opens it after sees no layer data */
	snprintf(name, sizeof(name), "data/%llu.lock", (unsigned long long)layer);
	if (lockfd >= 0) {
		unlinkat(st->dirfd, name, 0);
		close(lockfd);
	}
}

static void flusher_stop(struct cow_view *v);
static int flusher_start(struct cow_view *v);

/* ---- clean and unclean stops ---- */

/* Write the record "PID WHAT\n" into a layer lock file, never leaving it
 * empty in between: an empty lock file means a clean stop. */
static int lock_record(int lockfd, const char *what)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%ld %s\n", (long)getpid(), what);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	int r = cow_pwrite_all(lockfd, buf, (size_t)n, 0);
	if (r == 0 && ftruncate(lockfd, n) < 0)
		r = -errno;
	return r;
}

/* A writer keeps a record in the lock file of its layer from its open to
 * its clean close, where it empties the file; one found by the next writer
 * means the last stop left no time to write back (kill -9, a crash, power
 * loss), so the layer may hold what fsck calls orphans.  Like a journaling
 * file system's dirty flag, the record is made durable before anything of
 * the layer is written: after a clean stop that takes a sync of the lock
 * file and of data/, after an unclean one the record is there already.
 * Whether the last stop was unclean goes to *ret_unclean. */
static int layer_mark(struct cow_store *st, int lockfd, const char *what, bool *ret_unclean)
{
	struct stat s;
	if (fstat(lockfd, &s) < 0)
		return -errno;
	int r = lock_record(lockfd, what);
	if (r < 0)
		return r;
	/* the lock file itself may be new: its name, too */
	if (s.st_size == 0 && (fdatasync(lockfd) < 0 || fsync(st->datafd) < 0))
		return -errno;
	*ret_unclean = s.st_size > 0;
	return 0;
}

/* The first writable open after an unclean stop: remove what fsck would
 * find, as fsck --repair would.  Records of unlinked objects are reaped
 * at every open (reap_unlinked); data files no record names, what a crash
 * between writing data and committing leaves, only here. */
static void layer_recover(struct cow_view *v)
{
	uint64_t removed;
	/* a failure leaves orphans, harmless but for their space, and the
	 * record: the next open tries again and fsck reports them */
	if (cow_fsck_recover_layer(v->st, v->layer, &removed) == 0)
		v->layer_ready = true;
}

/* ---- views ---- */

/* Remove what a crash left of unlinked-but-open objects: records now,
 * their data files once that is committed. */
struct reap {
	struct cow_view *v;
	uint64_t *inos;
	size_t n, cap;
};

static int reap_unlinked(void *arg, uint64_t ino, uint64_t data_layer)
{
	struct reap *rp = arg;
	int r = cow_drop_records(rp->v, ino);
	if (r < 0 || data_layer != rp->v->layer)
		return r;
	if (rp->n == rp->cap) {
		size_t cap = rp->cap ? rp->cap * 2 : 16;
		uint64_t *n = realloc(rp->inos, cap * sizeof(*n));
		if (!n)
			return 0; /* the file stays, an orphan for fsck */
		rp->inos = n;
		rp->cap = cap;
	}
	rp->inos[rp->n++] = ino;
	return 0;
}

static int view_stack(struct cow_view *v, uint64_t top)
{
	struct cow_layer_info l;
	uint64_t id = top;
	v->nlayers = 0;
	while (id) {
		if (v->nlayers == COW_MAX_LAYERS)
			return -ELOOP;
		int r = cow_db_layer_get(v->st->db, id, &l);
		if (r < 0)
			return r == -ENOENT ? -EIO : r;
		v->layers[v->nlayers++] = id;
		v->root = l.root;
		id = l.parent;
	}
	return 0;
}

static struct cow_view *view_alloc(struct cow_store *st, bool readonly)
{
	struct cow_view *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->st = st;
	v->layer_lockfd = -1;
	v->readonly = readonly || st->readonly;
	pthread_rwlock_init(&v->ns_lock, NULL);
	pthread_mutex_init(&v->itable_lock, NULL);
	pthread_mutex_init(&v->ino_lock, NULL);
	pthread_mutex_init(&v->dirty_lock, NULL);
	pthread_cond_init(&v->flusher_cond, NULL);
	v->itable_size = 256; /* grows with the cache: 500 idle clients cost 2 KiB each, not 32 */
	cow_view_set_inode_cache(v, COW_INODE_CACHE);
	v->itable = calloc(v->itable_size, sizeof(*v->itable));
	if (!v->itable) {
		free(v);
		return NULL;
	}
	return v;
}

/* The writer's start on layer @top, whose lock v->layer_lockfd holds:
 * mark it in use, reap and recover what a crash left, start the flusher. */
static int view_start_writer(struct cow_view *v, uint64_t top)
{
	struct cow_store *st = v->st;
	struct reap rp = {.v = v};
	bool unclean;
	v->layer = top;
	int r = layer_mark(st, v->layer_lockfd, "cowroot", &unclean);
	if (r < 0)
		return r;
	cow_db_lock(st->db);
	r = cow_db_begin(st->db);
	if (r == 0) {
		r = cow_db_inode_foreach_unlinked(st->db, v->layer, reap_unlinked, &rp);
		if (r == 0)
			r = cow_db_commit(st->db, false);
		else
			cow_db_rollback(st->db);
	}
	cow_db_unlock(st->db);
	for (size_t i = 0; r == 0 && i < rp.n; i++)
		cow_data_unlink(st, v->layer, rp.inos[i]);
	free(rp.inos);
	if (r < 0)
		return r;
	if (unclean)
		layer_recover(v);
	else
		v->layer_ready = true;
	r = cow_quota_start(v); /* what recovery left, nothing cached yet */
	if (r < 0)
		return r;
	cow_db_lock(st->db);
	cow_db_batching(st->db, true);
	cow_db_unlock(st->db);
	v->batching = true;
	return flusher_start(v);
}

int cow_view_open_layer(struct cow_store *st, uint64_t layer, int lockfd, struct cow_view **ret)
{
	struct cow_view *v = view_alloc(st, false);
	if (!v)
		return -ENOMEM;
	int r = v->readonly ? -EROFS : 0;
	if (r == 0) {
		cow_db_lock(st->db);
		r = view_stack(v, layer);
		cow_db_unlock(st->db);
	}
	/* the caller's lock, on a descriptor of the view's own */
	if (r == 0 && (v->layer_lockfd = fcntl(lockfd, F_DUPFD_CLOEXEC, 0)) < 0)
		r = -errno;
	if (r == 0)
		r = view_start_writer(v, layer);
	if (r < 0) {
		cow_view_close(v);
		return r;
	}
	*ret = v;
	return 0;
}

int cow_view_open(struct cow_store *st, const char *client, const char *image, int flags, struct cow_view **ret)
{
	struct cow_view *v = view_alloc(st, !client || (flags & COW_VIEW_READONLY));
	uint64_t top;
	int r;

	if (!v)
		return -ENOMEM;
	if (client) {
		v->client = strdup(client);
		if (!v->client) {
			r = -ENOMEM;
			goto fail;
		}
	}
	for (int tries = 0;; tries++) {
		struct cow_client_info ci;
		cow_db_lock(st->db);
		if (client) {
			r = cow_db_client_get(st->db, client, &ci);
			top = ci.layer;
			v->client_id = ci.id;
			v->client_gen = ci.gen;
		} else {
			r = cow_db_image_get(st->db, image, &top);
		}
		if (r == 0)
			r = view_stack(v, top);
		cow_db_unlock(st->db);
		if (r == 0 && !client) {
			/* shared: an image in use is neither removed nor reclaimed */
			r = cow_layer_lock_shared(st, top, &v->layer_lockfd);
			if (r == -EBUSY && tries < 50) {
				usleep(100 * 1000);
				continue;
			}
			if (r == -EACCES || r == -EROFS)
				r = 0; /* a reader that may not create the lock file */
			break;
		}
		if (r < 0 || v->readonly)
			break;
		/* One writer per layer, across processes.  A daemon just
		 * unmounted may still be writing back: give it a few seconds
		 * before calling the layer busy. */
		r = cow_layer_lock(st, top, &v->layer_lockfd);
		if (r == -EBUSY && tries < 50) {
			usleep(100 * 1000);
			continue;
		}
		if (r < 0)
			break;
		/* a reset may have replaced the layer while we waited */
		cow_db_lock(st->db);
		r = cow_db_client_get(st->db, client, &ci);
		cow_db_unlock(st->db);
		if (r < 0 || ci.layer == top)
			break;
		close(v->layer_lockfd);
		v->layer_lockfd = -1;
	}
	if (r < 0)
		goto fail;

	if (!v->readonly) {
		r = view_start_writer(v, top);
		if (r < 0)
			goto fail;
	}
	*ret = v;
	return 0;
fail:
	cow_view_close(v);
	return r;
}

int cow_view_close(struct cow_view *v)
{
	int r = 0;
	if (!v)
		return 0;
	flusher_stop(v);
	if (!v->readonly && v->layer)
		r = flush_dirty(v, true);
	/* what is still referenced and unlinked goes now, in one batch */
	for (size_t i = 0; i < v->itable_size; i++) {
		struct cow_inode *ip = v->itable[i], *next;
		for (; ip; ip = next) {
			next = ip->hnext;
			if (ip->row.nlink == 0 && !v->readonly && v->layer)
				cow_inode_destroy_unlinked(v, ip);
			inode_free(ip);
		}
	}
	if (!v->readonly && v->layer) {
		cow_db_lock(v->st->db);
		int c = cow_db_flush(v->st->db, false);
		cow_db_unlock(v->st->db);
		if (r == 0)
			r = c;
		cow_data_reap(v->st);
		/* a clean stop: everything is written back and durable */
		if (r == 0 && v->layer_ready && v->layer_lockfd >= 0 && cow_db_sync(v->st->db) == 0 &&
		    ftruncate(v->layer_lockfd, 0) < 0)
			r = -errno;
	}
	if (v->batching) {
		cow_db_lock(v->st->db);
		cow_db_batching(v->st->db, false);
		cow_db_unlock(v->st->db);
	}
	free(v->itable);
	free(v->client);
	free(v->holder);
	if (v->layer_lockfd >= 0)
		close(v->layer_lockfd);
	pthread_rwlock_destroy(&v->ns_lock);
	pthread_mutex_destroy(&v->itable_lock);
	pthread_mutex_destroy(&v->ino_lock);
	pthread_mutex_destroy(&v->dirty_lock);
	pthread_cond_destroy(&v->flusher_cond);
	free(v);
	return r;
}

static int layer_flock(struct cow_store *st, uint64_t layer, int how, int *ret_fd)
{
	char name[64];
	snprintf(name, sizeof(name), "data/%llu.lock", (unsigned long long)layer);
	int fd = openat(st->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, how | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int cow_layer_lock(struct cow_store *st, uint64_t layer, int *ret_fd)
{
	return layer_flock(st, layer, LOCK_EX, ret_fd);
}

int cow_layer_lock_shared(struct cow_store *st, uint64_t layer, int *ret_fd)
{
	return layer_flock(st, layer, LOCK_SH, ret_fd);
}

static void flusher_stop(struct cow_view *v)
{
	if (!v->flusher_running)
		return;
	pthread_mutex_lock(&v->dirty_lock);
	v->stopping = true;
	pthread_cond_signal(&v->flusher_cond);
	pthread_mutex_unlock(&v->dirty_lock);
	pthread_join(v->flusher, NULL);
	v->flusher_running = false;
	v->stopping = false;
}

static int flusher_start(struct cow_view *v)
{
	if (pthread_create(&v->flusher, NULL, flusher_main, v) != 0)
		return -EAGAIN;
	/* named for whoever looks at the process (top -H, the power-loss
	 * test's judge of which writes are background ones) */
	pthread_setname_np(v->flusher, "cowroot-flush");
	v->flusher_running = true;
	return 0;
}

/* The database part of a reset: a new empty layer on the client's image,
 * the old one dead.  db lock held. */
static int reset_records(struct cow_db *db, const char *client, uint64_t expect_layer, uint64_t *ret_layer)
{
	struct cow_client_info ci;
	struct cow_layer_info img;
	uint64_t image_layer, layer;
	int r = cow_db_begin(db);
	if (r < 0)
		return r;
	r = cow_db_client_get(db, client, &ci);
	if (r == 0 && expect_layer && ci.layer != expect_layer)
		r = -ESTALE; /* changed under us */
	if (r == 0)
		r = cow_db_image_get(db, ci.image, &image_layer);
	if (r == 0)
		r = cow_db_layer_get(db, image_layer, &img);
	if (r == 0)
		r = cow_db_layer_add(db, image_layer, COW_LAYER_CLIENT, img.root, &layer);
	if (r == 0)
		r = cow_db_client_set(db, client, ci.image, layer);
	if (r == 0)
		r = cow_db_layer_set_kind(db, ci.layer, COW_LAYER_DEAD);
	if (r == 0)
		r = cow_db_commit(db, true);
	else
		cow_db_rollback(db);
	if (r == 0)
		*ret_layer = layer;
	return r;
}

int cow_client_reset(struct cow_store *st, const char *name)
{
	struct cow_client_info ci;
	uint64_t layer;
	int lockfd = -1, r;

	if (st->readonly)
		return -EROFS;
	cow_db_lock(st->db);
	r = cow_db_client_get(st->db, name, &ci);
	cow_db_unlock(st->db);
	if (r < 0)
		return r;
	/* holding the layer keeps a mount from opening it meanwhile */
	r = cow_layer_lock(st, ci.layer, &lockfd);
	if (r < 0)
		return r;
	cow_db_lock(st->db);
	r = reset_records(st->db, name, ci.layer, &layer);
	cow_db_unlock(st->db);
	close(lockfd);
	return r;
}

/* Make one cached inode what the new stack says; false if only the old
 * layer had it. */
static bool reset_inode(struct cow_view *v, struct cow_inode *ip)
{
	struct cow_inode *fresh;
	bool found = inode_load(v, ip->ino, &fresh) == 0;
	pthread_mutex_lock(&ip->lock);
	if (ip->dir) {
		cow_dir_free(ip->dir);
		ip->dir = NULL;
	}
	cow_xattrs_free(ip);
	ip->dirty = false;
	ip->parent = 0; /* learnt again at the next lookup */
	if (found) {
		struct cow_irow old = ip->row;
		ip->row = fresh->row;
		ip->row_layer = fresh->row_layer;
		ip->blocks = fresh->blocks;
		ip->xattr_bytes = fresh->xattr_bytes;
		ip->destroyed = false;
		fresh->row = old;
		struct cow_fd *fd = ip->fd;
		ip->fd = NULL; /* reopened from the image on next use */
		cow_fd_put(fd);
	} else {
		/* gone with the old layer: an unlinked object whose records
		 * are already dropped; open files keep their data fd */
		ip->row.nlink = 0;
		ip->destroyed = true;
		ip->reset_gone = true;
	}
	/* the new layer holds nothing: no share (cow_quota_reset) */
	ip->q_bytes = 0;
	ip->q_file = false;
	pthread_mutex_unlock(&ip->lock);
	if (found)
		inode_free(fresh);
	return found;
}

/* Pin every cached inode (into *ret, *ret_n); itable_lock not held. */
static int pin_all(struct cow_view *v, struct cow_inode ***ret, size_t *ret_n)
{
	pthread_mutex_lock(&v->itable_lock);
	struct cow_inode **ips = malloc((v->itable_count + 1) * sizeof(*ips));
	size_t n = 0;
	if (ips)
		for (size_t i = 0; i < v->itable_size; i++)
			for (struct cow_inode *ip = v->itable[i]; ip; ip = ip->hnext) {
				iref(v, ip);
				ips[n++] = ip;
			}
	pthread_mutex_unlock(&v->itable_lock);
	*ret = ips;
	*ret_n = n;
	return ips ? 0 : -ENOMEM;
}

int cow_view_reset(struct cow_view *v)
{
	struct cow_db *db = v->st->db;
	uint64_t layer;
	int lockfd = -1, r;

	if (v->readonly || !v->client)
		return -EROFS;
	flusher_stop(v);
	pthread_rwlock_wrlock(&v->ns_lock);
	cow_db_lock(db);
	r = reset_records(db, v->client, v->layer, &layer);
	cow_db_unlock(db);
	if (r < 0)
		goto out;
	if (cow_layer_lock(v->st, layer, &lockfd) == 0) {
		bool unclean;
		close(v->layer_lockfd);
		v->layer_lockfd = lockfd;
		/* a new layer: nothing to recover */
		v->layer_ready = layer_mark(v->st, lockfd, v->holder ? v->holder : "cowroot", &unclean) == 0;
	}
	cow_db_lock(db);
	v->layer = layer;
	r = view_stack(v, layer);
	cow_db_unlock(db);
	if (r < 0)
		goto out;

	/* the dirty list holds changes of the dead layer: drop them */
	pthread_mutex_lock(&v->dirty_lock);
	struct cow_inode *dirty = v->dirty;
	v->dirty = NULL;
	for (struct cow_inode *ip = dirty; ip; ip = ip->dirty_next)
		ip->on_dirty_list = false;
	pthread_mutex_unlock(&v->dirty_lock);

	struct cow_inode **ips;
	size_t n;
	r = pin_all(v, &ips, &n);
	pthread_mutex_lock(&v->itable_lock);
	for (struct cow_inode *ip = dirty; ip; ip = ip->dirty_next)
		ip->refs--; /* the list's reference */
	pthread_mutex_unlock(&v->itable_lock);
	if (r < 0)
		goto out;
	cow_quota_reset(v);
	for (size_t i = 0; i < n; i++)
		reset_inode(v, ips[i]);
	for (size_t i = 0; i < n; i++)
		cow_inode_put(v, ips[i]); /* frees what nobody holds and is gone */
	free(ips);
out:
	pthread_rwlock_unlock(&v->ns_lock);
	int r2 = flusher_start(v);
	return r < 0 ? r : r2;
}

uint64_t cow_view_client_id(const struct cow_view *v)
{
	return v->client_id;
}

uint64_t cow_view_client_gen(const struct cow_view *v)
{
	return v->client_gen;
}

void cow_view_set_holder(struct cow_view *v, const char *what)
{
	if (v->holder != what) {
		free(v->holder);
		v->holder = strdup(what);
	}
	if (v->layer_lockfd < 0 || v->readonly)
		return; /* image views share their lock: no one holder to name */
	/* advisory only */
	(void)lock_record(v->layer_lockfd, what);
}

uint64_t cow_view_root(const struct cow_view *v)
{
	return v->root;
}

void cow_view_set_caller_times(struct cow_view *v, bool on)
{
	v->caller_times = on;
}

void cow_view_set_refs_are_opens(struct cow_view *v, bool on)
{
	v->refs_are_opens = on;
}

void cow_view_cache_counts(struct cow_view *v, struct cow_cache_counts *ret)
{
	memset(ret, 0, sizeof(*ret));
	pthread_rwlock_rdlock(&v->ns_lock); /* guards the listings */
	pthread_mutex_lock(&v->itable_lock);
	ret->inodes = v->itable_count;
	for (size_t i = 0; i < v->itable_size; i++)
		for (struct cow_inode *ip = v->itable[i]; ip; ip = ip->hnext) {
			ret->unreferenced += ip->refs == 0;
			ret->listings += ip->dir != NULL;
		}
	pthread_mutex_unlock(&v->itable_lock);
	pthread_rwlock_unlock(&v->ns_lock);
}

void cow_view_set_inode_cache(struct cow_view *v, size_t n)
{
	const char *e = getenv("COWROOT_INODE_CACHE");
	char *end;
	if (e && *e) {
		unsigned long long env = strtoull(e, &end, 10);
		if (!*end)
			n = (size_t)env;
	}
	struct cow_inode *evicted = NULL;
	pthread_mutex_lock(&v->itable_lock);
	v->lru_max = n;
	lru_trim(v, &evicted);
	pthread_mutex_unlock(&v->itable_lock);
	while (evicted) {
		struct cow_inode *next = evicted->hnext;
		inode_free(evicted);
		evicted = next;
	}
}

bool cow_view_readonly(const struct cow_view *v)
{
	return v->readonly;
}

int cow_statfs(struct cow_view *v, struct statvfs *ret)
{
	if (fstatvfs(v->st->datafd, ret) < 0)
		return -errno;
	ret->f_namemax = COW_NAME_MAX;
	cow_quota_statfs(v, ret);
	return 0;
}
