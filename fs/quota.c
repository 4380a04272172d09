/* SPDX-License-Identifier: MIT */
/*
 * Quotas: what one client's layer may hold (see cowroot.h).
 *
 * A writable client view counts what its layer holds from the moment it
 * opens: cow_quota_start() sums the layer (objects and xattr bytes from
 * the database, allocated bytes from the data files), and from then on
 * every inode carries its share (q_bytes, q_file) and hands the view the
 * difference whenever it changes (cow_quota_update).  An inode loaded
 * later already has its share in the sum (cow_quota_loaded); one evicted
 * from the cache keeps it there, as nothing can change it while it is not
 * cached.  So the count costs one pass over the layer at open, then a few
 * atomic additions, whether or not the client has a quota: setting one on
 * a served client takes effect at once, and the server can say what each
 * layer holds.
 *
 * Checks are made before anything changes, against the usage at that
 * moment; they reserve nothing, so operations running at once near the
 * limit may together take it a little past (what one write or one object
 * adds each).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cow-private.h"

#define QUOTA_BLOCK 4096 /* what a write that allocates takes at least */

struct usage_walk {
	struct cow_store *st;
	uint64_t layer;
	int64_t bytes;
};

static int data_one(void *arg, const struct cow_irow *row)
{
	struct usage_walk *w = arg;
	if (!S_ISREG(row->mode) || row->data_layer != w->layer)
		return 0;
	char path[128];
	struct stat stbuf;
	cow_data_path(path, sizeof(path), row->data_layer, row->ino);
	if (fstatat(w->st->datafd, path, &stbuf, 0) == 0)
		w->bytes += (int64_t)stbuf.st_blocks * 512;
	return 0;
}

/* What client @name's layer holds, as its quota counts it, and the client
 * (db lock held). */
static int layer_usage(struct cow_store *st, const char *name, struct cow_client_info *ci, int64_t *ret_bytes,
		       int64_t *ret_files)
{
	int64_t xattr_bytes = 0;
	int r = cow_db_client_get(st->db, name, ci);
	if (r < 0)
		return r;
	struct usage_walk w = {.st = st, .layer = ci->layer};
	r = cow_db_layer_usage(st->db, ci->layer, ret_files, &xattr_bytes);
	if (r == 0)
		r = cow_db_layer_inodes(st->db, ci->layer, data_one, &w);
	if (r == 0)
		*ret_bytes = w.bytes + xattr_bytes;
	return r;
}

int cow_client_usage(struct cow_store *st, const char *name, struct cow_usage *ret)
{
	struct cow_client_info ci;
	int64_t bytes = 0, files = 0;
	cow_db_lock(st->db);
	int r = layer_usage(st, name, &ci, &bytes, &files);
	cow_db_unlock(st->db);
	if (r < 0)
		return r;
	ret->bytes = (uint64_t)bytes;
	ret->files = (uint64_t)files;
	ret->max_bytes = ci.quota_bytes;
	ret->max_files = ci.quota_files;
	return 0;
}

int cow_quota_start(struct cow_view *v)
{
	struct cow_quota *q = &v->quota;
	struct cow_client_info ci;
	int64_t bytes = 0, files = 0;

	if (v->readonly || !v->client)
		return 0;
	cow_db_lock(v->st->db);
	int r = layer_usage(v->st, v->client, &ci, &bytes, &files);
	cow_db_unlock(v->st->db);
	if (r < 0)
		return r;
	if (ci.layer != v->layer)
		return -ESTALE; /* cannot be: the view holds the layer's lock */
	atomic_store(&q->max_bytes, ci.quota_bytes);
	atomic_store(&q->max_files, ci.quota_files);
	atomic_store(&q->bytes, bytes);
	atomic_store(&q->files, files);
	q->tracking = true;
	return 0;
}

/* What @ip adds to the layer now. */
static void share(struct cow_view *v, struct cow_inode *ip, int64_t *ret_bytes, bool *ret_file)
{
	/* an object with no name left and not open is gone for the quota,
	 * even while a front end still holds a reference on it (its records
	 * go when that is let go: no name or handle reaches it meanwhile),
	 * unless that front end's references are its opens */
	bool live = !ip->destroyed && !ip->reset_gone && (ip->row.nlink > 0 || ip->nopen > 0 || v->refs_are_opens);
	/* a dirty row is the layer's once written back (see dirty_now) */
	bool in_layer = live && (ip->row_layer == v->layer || ip->dirty) && ip->row.mode != 0;
	int64_t bytes = in_layer ? ip->xattr_bytes : 0;
	if (live && S_ISREG(ip->row.mode) && ip->row.data_layer == v->layer)
		bytes += ip->blocks * 512;
	*ret_bytes = bytes;
	*ret_file = in_layer;
}

void cow_quota_loaded(struct cow_view *v, struct cow_inode *ip)
{
	if (!v->quota.tracking)
		return;
	share(v, ip, &ip->q_bytes, &ip->q_file);
}

void cow_quota_update(struct cow_view *v, struct cow_inode *ip)
{
	struct cow_quota *q = &v->quota;
	if (!q->tracking)
		return;
	int64_t bytes;
	bool file;
	share(v, ip, &bytes, &file);
	if (bytes != ip->q_bytes)
		atomic_fetch_add(&q->bytes, bytes - ip->q_bytes);
	if (file != ip->q_file)
		atomic_fetch_add(&q->files, file ? 1 : -1);
	ip->q_bytes = bytes;
	ip->q_file = file;
}

void cow_quota_reset(struct cow_view *v)
{
	atomic_store(&v->quota.bytes, 0);
	atomic_store(&v->quota.files, 0);
}

int cow_quota_check(struct cow_view *v, int64_t files, int64_t bytes)
{
	struct cow_quota *q = &v->quota;
	if (!q->tracking)
		return 0;
	uint64_t maxf = atomic_load(&q->max_files), maxb = atomic_load(&q->max_bytes);
	if (files > 0 && maxf && atomic_load(&q->files) + files > (int64_t)maxf)
		return -EDQUOT;
	if (bytes > 0 && maxb && atomic_load(&q->bytes) + bytes > (int64_t)maxb)
		return -EDQUOT;
	return 0;
}

bool cow_quota_below(struct cow_view *v, struct cow_inode *ip)
{
	return ip->row_layer != v->layer && !ip->dirty;
}

int cow_quota_check_inode(struct cow_view *v, struct cow_inode *ip, int64_t bytes)
{
	bool below = cow_quota_below(v, ip);
	/* its xattrs come into the layer with the row */
	return cow_quota_check(v, below ? 1 : 0, bytes + (below ? ip->xattr_bytes : 0));
}

/* Room for @size bytes at @off of @ip (inode lock held): the bytes a
 * write there may newly allocate are those past the end of the file and,
 * in a sparse file, those inside it (holes are not looked for: a
 * conservative guess, exact for the files writes usually make). */
static ssize_t write_room(struct cow_view *v, struct cow_inode *ip, off_t off, size_t size)
{
	struct cow_quota *q = &v->quota;
	uint64_t maxb = atomic_load(&q->max_bytes);
	if (!q->tracking || !maxb || size == 0)
		return (ssize_t)(size > SSIZE_MAX ? SSIZE_MAX : size);
	int64_t end = off + (int64_t)size, fsize = ip->row.size;
	bool mine = ip->row.data_layer == v->layer;
	int64_t alloc = mine ? ip->blocks * 512 : 0;
	int64_t grow = end > fsize ? end - (off > fsize ? off : fsize) : 0;
	if (alloc < fsize || !mine) {
		int64_t lo = off < fsize ? off : fsize, hi = end < fsize ? end : fsize;
		grow += hi - lo;
	}
	if (grow == 0)
		return (ssize_t)size;
	grow = (grow + QUOTA_BLOCK - 1) / QUOTA_BLOCK * QUOTA_BLOCK;
	int64_t room = (int64_t)maxb - atomic_load(&q->bytes);
	if (grow <= room)
		return (ssize_t)size;
	/* what fits: whole blocks of room, from the start of the write */
	int64_t fit = (int64_t)size - (grow - room);
	fit -= (off + fit) % QUOTA_BLOCK;
	return fit > 0 ? (ssize_t)fit : -EDQUOT;
}

ssize_t cow_write_room(struct cow_file *f, off_t off, size_t size)
{
	if (f->v->readonly)
		return -EROFS;
	pthread_mutex_lock(&f->ip->lock);
	ssize_t r = write_room(f->v, f->ip, off, size);
	pthread_mutex_unlock(&f->ip->lock);
	return r;
}

void cow_quota_statfs(struct cow_view *v, struct statvfs *sv)
{
	struct cow_quota *q = &v->quota;
	if (!q->tracking)
		return;
	uint64_t maxb = atomic_load(&q->max_bytes), maxf = atomic_load(&q->max_files);
	if (maxb && sv->f_frsize) {
		int64_t used = atomic_load(&q->bytes);
		uint64_t left = used >= (int64_t)maxb ? 0 : (maxb - (uint64_t)used) / sv->f_frsize;
		sv->f_blocks = maxb / sv->f_frsize;
		if (left < sv->f_bavail)
			sv->f_bavail = left;
		if (left < sv->f_bfree)
			sv->f_bfree = left;
	}
	if (maxf) {
		int64_t used = atomic_load(&q->files);
		uint64_t left = used >= (int64_t)maxf ? 0 : maxf - (uint64_t)used;
		sv->f_files = maxf;
		if (left < sv->f_ffree)
			sv->f_ffree = left;
		if (left < sv->f_favail)
			sv->f_favail = left;
	}
}

int cow_view_usage(struct cow_view *v, struct cow_usage *ret)
{
	struct cow_quota *q = &v->quota;
	if (!q->tracking)
		return -EROFS;
	int64_t b = atomic_load(&q->bytes), f = atomic_load(&q->files);
	ret->bytes = b > 0 ? (uint64_t)b : 0;
	ret->files = f > 0 ? (uint64_t)f : 0;
	ret->max_bytes = atomic_load(&q->max_bytes);
	ret->max_files = atomic_load(&q->max_files);
	return 0;
}

int cow_view_reload_quota(struct cow_view *v)
{
	struct cow_client_info ci;
	if (!v->quota.tracking)
		return -EROFS;
	cow_db_lock(v->st->db);
	int r = cow_db_client_get(v->st->db, v->client, &ci);
	cow_db_unlock(v->st->db);
	if (r < 0)
		return r;
	atomic_store(&v->quota.max_bytes, ci.quota_bytes);
	atomic_store(&v->quota.max_files, ci.quota_files);
	return 0;
}

/* Record the quota of client @name, or with @name NULL the store's
 * default, in a transaction of its own. */
static int quota_store(struct cow_store *st, const char *name, uint64_t bytes, uint64_t files)
{
	if (st->readonly)
		return -EROFS;
	cow_db_lock(st->db);
	int r = cow_db_begin(st->db);
	if (r == 0) {
		r = name ? cow_db_client_set_quota(st->db, name, bytes, files)
			 : cow_db_set_default_quota(st->db, bytes, files);
		if (r == 0)
			r = cow_db_commit(st->db, true);
		else
			cow_db_rollback(st->db);
	}
	cow_db_unlock(st->db);
	return r;
}

int cow_client_set_quota(struct cow_store *st, const char *name, uint64_t bytes, uint64_t files)
{
	return quota_store(st, name, bytes, files);
}

int cow_store_set_default_quota(struct cow_store *st, uint64_t bytes, uint64_t files)
{
	return quota_store(st, NULL, bytes, files);
}

int cow_store_default_quota(struct cow_store *st, uint64_t *ret_bytes, uint64_t *ret_files)
{
	uint64_t b = 0, f = 0;
	cow_db_lock(st->db);
	int r = cow_db_default_quota(st->db, &b, &f);
	cow_db_unlock(st->db);
	if (r == 0) {
		*ret_bytes = b;
		*ret_files = f;
	}
	return r;
}

int cow_size_parse(const char *s, uint64_t *ret)
{
	if (!strcmp(s, "none")) {
		*ret = 0;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL; /* "none" says no limit; 0 is not a quota */
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	unsigned shift = 0;
	switch (*end) {
	case '\0':
		break;
	case 'K':
	case 'k':
		shift = 10;
		break;
	case 'M':
	case 'm':
		shift = 20;
		break;
	case 'G':
	case 'g':
		shift = 30;
		break;
	case 'T':
	case 't':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1] && strcmp(end + 1, "i") && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return -EINVAL;
	if (n == 0)
		return -EINVAL;
	if (n > (UINT64_MAX >> shift) || (n << shift) > INT64_MAX)
		return -ERANGE;
	*ret = (uint64_t)n << shift;
	return 0;
}
