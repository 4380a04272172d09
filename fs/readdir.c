/* SPDX-License-Identifier: MIT */
/*
 * Reading directories: opendir snapshots the merged listing (see namei.c),
 * so offsets stay valid while the directory changes underneath.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow-private.h"

int cow_opendir(struct cow_view *v, uint64_t ino, struct cow_dirh **ret)
{
	struct cow_inode *ip;
	int r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		return r;
	struct cow_dirh *d = calloc(1, sizeof(*d));
	if (!d) {
		cow_inode_put(v, ip);
		return -ENOMEM;
	}
	d->v = v;
	d->ip = ip;
	pthread_rwlock_rdlock(&v->ns_lock);
	r = cow_dir_load(v, ip);
	if (r == 0) {
		struct cow_dir *dir = ip->dir;
		d->ents = calloc(dir->live ? dir->live : 1, sizeof(*d->ents));
		if (!d->ents)
			r = -ENOMEM;
		for (size_t i = 0; r == 0 && i < dir->n; i++) {
			struct cow_dent *e = &dir->ents[i];
			if (!e->name || !e->ino)
				continue;
			d->ents[d->n] = *e;
			d->ents[d->n].name = strdup(e->name);
			if (!d->ents[d->n].name)
				r = -ENOMEM;
			else
				d->n++;
		}
		pthread_mutex_lock(&ip->lock);
		d->parent = ip->parent ? ip->parent : ip->ino;
		pthread_mutex_unlock(&ip->lock);
	}
	pthread_rwlock_unlock(&v->ns_lock);
	if (r < 0) {
		cow_releasedir(d);
		return r;
	}
	*ret = d;
	return 0;
}

/* Pass one entry to @fn; with @plus reference it and fill its attributes
 * (released again if @fn stops).  Returns 1 when @fn stops, 0 to go on
 * (also for an entry removed meanwhile), or a negative errno. */
static int emit(struct cow_view *v, uint64_t dir, const char *name, uint64_t ino, uint8_t type, bool plus, off_t next,
		int (*fn)(void *arg, const char *name, const struct cow_attr *attr, off_t next_off), void *arg)
{
	struct cow_attr attr = {.ino = ino, .mode = (uint32_t)type << 12};
	struct cow_inode *ip;
	if (!plus)
		return fn(arg, name, &attr, next) ? 1 : 0;
	int r = cow_inode_get(v, ino, &ip);
	if (r == -ENOENT)
		return 0; /* removed since the listing was taken */
	if (r < 0)
		return r;
	pthread_mutex_lock(&ip->lock);
	if (S_ISDIR(ip->row.mode))
		ip->parent = dir;
	cow_inode_fill_attr(ip, &attr);
	pthread_mutex_unlock(&ip->lock);
	if (fn(arg, name, &attr, next)) {
		cow_inode_put(v, ip);
		return 1;
	}
	return 0;
}

/* "." (offset 0) and ".." (offset 1): 1 when @fn stops. */
static int emit_dots(uint64_t self, uint64_t parent, off_t off,
		     int (*fn)(void *arg, const char *name, const struct cow_attr *attr, off_t next_off), void *arg)
{
	for (; off < 2; off++) {
		struct cow_attr attr = {.ino = off == 0 ? self : parent, .mode = S_IFDIR};
		if (fn(arg, off == 0 ? "." : "..", &attr, off + 1))
			return 1;
	}
	return 0;
}

int cow_readdir(struct cow_dirh *d, off_t off, bool plus,
		int (*fn)(void *arg, const char *name, const struct cow_attr *attr, off_t next_off), void *arg)
{
	if (off < 0)
		return -EINVAL;
	if (emit_dots(d->ip->ino, d->parent, off, fn, arg))
		return 0;
	for (off = off < 2 ? 2 : off; (size_t)off < d->n + 2; off++) {
		struct cow_dent *e = &d->ents[off - 2];
		int r = emit(d->v, d->ip->ino, e->name, e->ino, e->type, plus, off + 1, fn, arg);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	return 0;
}

/* The first entry with a seq above @seq (ents are in seq order). */
static size_t dir_seek(const struct cow_dir *dir, uint64_t seq)
{
	size_t lo = 0, hi = dir->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (dir->ents[mid].seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int cow_readdir_ino(struct cow_view *v, uint64_t ino, off_t off, bool plus,
		    int (*fn)(void *arg, const char *name, const struct cow_attr *attr, off_t next_off), void *arg)
{
	struct cow_inode *ip;
	if (off < 0)
		return -EINVAL;
	int r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		return r;
	pthread_rwlock_rdlock(&v->ns_lock);
	r = cow_dir_load(v, ip);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&ip->lock);
	uint64_t parent = ip->parent ? ip->parent : ip->ino;
	pthread_mutex_unlock(&ip->lock);
	if (emit_dots(ip->ino, parent, off, fn, arg))
		goto out;
	/* an entry's offset is its seq + 2: past "." and ".." */
	struct cow_dir *dir = ip->dir;
	for (size_t i = dir_seek(dir, off < 2 ? 0 : (uint64_t)off - 2); i < dir->n; i++) {
		struct cow_dent *e = &dir->ents[i];
		if (!e->name || !e->ino)
			continue;
		r = emit(v, ip->ino, e->name, e->ino, e->type, plus, (off_t)(e->seq + 2), fn, arg);
		if (r != 0) {
			r = r < 0 ? r : 0;
			break;
		}
	}
out:
	pthread_rwlock_unlock(&v->ns_lock);
	cow_inode_put(v, ip);
	return r;
}

void cow_releasedir(struct cow_dirh *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	cow_inode_put(d->v, d->ip);
	free(d);
}
