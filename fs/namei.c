/* SPDX-License-Identifier: MIT */
/*
 * Lookup across layers.  The first lookup or readdir of a directory loads
 * its merged listing: the rows of every layer of the view for that
 * directory's ino, bottom to top, a higher row replacing a lower one and a
 * whiteout (ino 0) removing it.  Because a directory keeps its ino in every
 * layer, a renamed base directory still finds its base entries, and a
 * recreated directory (a new ino) finds none: no opaque flag is needed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow-private.h"

#define SLOT_EMPTY 0
#define SLOT_DELETED UINT32_MAX

int cow_check_name(const char *name)
{
	size_t n = strnlen(name, COW_NAME_MAX + 1);
	if (n == 0 || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (n > COW_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int dir_rehash(struct cow_dir *d, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	/* compact deleted entries while at it */
	size_t j = 0;
	for (size_t i = 0; i < d->n; i++)
		if (d->ents[i].name)
			d->ents[j++] = d->ents[i];
	d->n = j;
	for (size_t i = 0; i < d->n; i++) {
		size_t s = name_hash(d->ents[i].name) & (nslots - 1);
		while (slots[s] != SLOT_EMPTY)
			s = (s + 1) & (nslots - 1);
		slots[s] = (uint32_t)i + 1;
	}
	free(d->slots);
	d->slots = slots;
	d->nslots = nslots;
	return 0;
}

/* The slot holding @name, or (with @insert) the first free slot for it. */
static size_t dir_slot(struct cow_dir *d, const char *name, bool *found)
{
	*found = false;
	if (d->nslots == 0)
		return 0;
	size_t s = name_hash(name) & (d->nslots - 1), tomb = SIZE_MAX;
	for (;;) {
		uint32_t v = d->slots[s];
		if (v == SLOT_EMPTY)
			return tomb != SIZE_MAX ? tomb : s;
		if (v == SLOT_DELETED) {
			if (tomb == SIZE_MAX)
				tomb = s;
		} else if (!strcmp(d->ents[v - 1].name, name)) {
			*found = true;
			return s;
		}
		s = (s + 1) & (d->nslots - 1);
	}
}

struct cow_dent *cow_dir_find(struct cow_dir *d, const char *name)
{
	bool found;
	size_t s = dir_slot(d, name, &found);
	return found ? &d->ents[d->slots[s] - 1] : NULL;
}

int cow_dir_add(struct cow_dir *d, const char *name, uint64_t ino, uint8_t type, bool in_layer, bool lower)
{
	/* keep the table under half full, counting deleted slots */
	if ((d->n + 1) * 2 > d->nslots) {
		size_t ns = d->nslots ? d->nslots : 16;
		while ((d->live + 1) * 4 > ns)
			ns *= 2;
		int r = dir_rehash(d, ns);
		if (r < 0)
			return r;
	}
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		struct cow_dent *ne = realloc(d->ents, ncap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		d->ents = ne;
		d->cap = ncap;
	}
	bool found;
	size_t s = dir_slot(d, name, &found);
	if (found)
		return -EEXIST;
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	d->ents[d->n] = (struct cow_dent){
	    .name = copy, .ino = ino, .type = type, .in_layer = in_layer, .lower = lower, .seq = ++d->last_seq};
	d->slots[s] = (uint32_t)++d->n;
	d->live++;
	return 0;
}

void cow_dir_remove(struct cow_dir *d, struct cow_dent *e)
{
	bool found;
	size_t s = dir_slot(d, e->name, &found);
	if (found)
		d->slots[s] = SLOT_DELETED;
	free(e->name);
	e->name = NULL;
	d->live--;
}

void cow_dir_free(struct cow_dir *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	free(d->slots);
	free(d);
}

struct merge {
	struct cow_dir *d;
	bool top; /* applying the writable layer */
};

static int merge_row(void *arg, const char *name, uint64_t ino, int type)
{
	struct merge *m = arg;
	struct cow_dent *e = cow_dir_find(m->d, name);
	bool lower = e ? (m->top ? true : e->lower) : false;
	if (e)
		cow_dir_remove(m->d, e);
	/* a whiteout is kept (invisible) where it hides a lower entry, so
	 * that removing a name created over it writes a whiteout again */
	if (ino == 0 && !lower)
		return 0;
	return cow_dir_add(m->d, name, ino, (uint8_t)type, m->top, lower);
}

int cow_dir_load(struct cow_view *v, struct cow_inode *ip)
{
	int r = 0;
	pthread_mutex_lock(&ip->lock);
	if (ip->dir)
		goto out;
	if (!S_ISDIR(ip->row.mode)) {
		r = -ENOTDIR;
		goto out;
	}
	struct cow_dir *d = calloc(1, sizeof(*d));
	if (!d) {
		r = -ENOMEM;
		goto out;
	}
	struct merge m = {.d = d};
	cow_db_lock(v->st->db);
	for (int i = v->nlayers - 1; i >= 0 && r == 0; i--) {
		m.top = !v->readonly && i == 0;
		r = cow_db_dirent_foreach(v->st->db, v->layers[i], ip->ino, merge_row, &m);
	}
	cow_db_unlock(v->st->db);
	if (r < 0) {
		cow_dir_free(d);
		goto out;
	}
	/* below the top every entry is "lower" from the writable layer's view */
	if (!v->readonly)
		for (size_t i = 0; i < d->n; i++)
			if (d->ents[i].name && !d->ents[i].in_layer)
				d->ents[i].lower = true;
	ip->dir = d;
out:
	pthread_mutex_unlock(&ip->lock);
	return r;
}

int cow_lookup(struct cow_view *v, uint64_t parent, const char *name, struct cow_attr *ret)
{
	struct cow_inode *dp, *ip;
	int r = cow_check_name(name);
	if (r < 0)
		return r;
	r = cow_inode_get(v, parent, &dp);
	if (r < 0)
		return r;
	pthread_rwlock_rdlock(&v->ns_lock);
	r = cow_dir_load(v, dp);
	uint64_t ino = 0;
	if (r == 0) {
		struct cow_dent *e = cow_dir_find(dp->dir, name);
		if (e && e->ino)
			ino = e->ino;
		else
			r = -ENOENT;
	}
	if (r == 0) {
		r = cow_inode_get(v, ino, &ip);
		if (r == -ENOENT)
			r = -EIO; /* an entry naming a missing object: fsck finds it */
	}
	if (r == 0) {
		pthread_mutex_lock(&ip->lock);
		if (S_ISDIR(ip->row.mode))
			ip->parent = parent;
		cow_inode_fill_attr(ip, ret);
		pthread_mutex_unlock(&ip->lock);
	}
	pthread_rwlock_unlock(&v->ns_lock);
	cow_inode_put(v, dp);
	return r;
}
