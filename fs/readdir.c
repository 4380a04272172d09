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

int cow_readdir(struct cow_dirh *d, off_t off, bool plus,
		int (*fn)(void *arg, const char *name, const struct cow_attr *attr, off_t next_off), void *arg)
{
	struct cow_view *v = d->v;
	struct cow_attr attr;
	int r;
	if (off < 0)
		return -EINVAL;
	for (; (size_t)off < d->n + 2; off++) {
		memset(&attr, 0, sizeof(attr));
		if (off < 2) {
			attr.ino = off == 0 ? d->ip->ino : d->parent;
			attr.mode = S_IFDIR;
			r = fn(arg, off == 0 ? "." : "..", &attr, off + 1);
			if (r)
				return 0;
			continue;
		}
		struct cow_dent *e = &d->ents[off - 2];
		if (!plus) {
			attr.ino = e->ino;
			attr.mode = (uint32_t)e->type << 12;
			if (fn(arg, e->name, &attr, off + 1))
				return 0;
			continue;
		}
		struct cow_inode *ip;
		r = cow_inode_get(v, e->ino, &ip);
		if (r == -ENOENT)
			continue; /* removed since opendir */
		if (r < 0)
			return r;
		pthread_mutex_lock(&ip->lock);
		if (S_ISDIR(ip->row.mode))
			ip->parent = d->ip->ino;
		cow_inode_fill_attr(ip, &attr);
		pthread_mutex_unlock(&ip->lock);
		if (fn(arg, e->name, &attr, off + 1)) {
			cow_inode_put(v, ip);
			return 0;
		}
	}
	return 0;
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
