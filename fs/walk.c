/* SPDX-License-Identifier: MIT */
/*
 * Walking a view's merged tree depth-first, names in byte order: what
 * diff, rebase, flatten and export see.  Each object is reported at every
 * name it has (first set at the first); with COW_WALK_DELETED the names
 * the top layer removes from the layers below are reported too.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cow-private.h"

struct wname {
	char *name;
	uint64_t ino;
	uint8_t type;
	bool in_top, deleted;
};

struct wlist {
	struct wname *v;
	size_t n, cap;
};

struct walk {
	struct cow_view *v;
	int flags;
	int (*fn)(void *arg, const struct cow_walk_entry *e);
	void *arg;
	char *path; /* the current path: grows with the depth, never bounded by PATH_MAX */
	size_t pathcap;
	uint64_t *seen; /* open hash set of inos, 0 = empty */
	size_t nseen, capseen;
};

static int wlist_add(struct wlist *l, const char *name, uint64_t ino, uint8_t type)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 32;
		struct wname *n = realloc(l->v, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->v = n;
		l->cap = ncap;
	}
	struct wname *e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	e->ino = ino;
	e->type = type;
	l->n++;
	return 0;
}

static void wlist_free(struct wlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

/* Room for @n bytes of path. */
static int path_room(struct walk *w, size_t n)
{
	if (n <= w->pathcap)
		return 0;
	size_t ncap = w->pathcap ? w->pathcap : 256;
	while (ncap < n)
		ncap *= 2;
	char *p = realloc(w->path, ncap);
	if (!p)
		return -ENOMEM;
	w->path = p;
	w->pathcap = ncap;
	return 0;
}

static int cmp_wname(const void *a, const void *b)
{
	return strcmp(((const struct wname *)a)->name, ((const struct wname *)b)->name);
}

static int top_row(void *arg, const char *name, uint64_t ino, int type)
{
	return wlist_add(arg, name, ino, (uint8_t)type);
}

/* true the first time @ino is seen */
static int seen_add(struct walk *w, uint64_t ino)
{
	if ((w->nseen + 1) * 2 > w->capseen) {
		size_t ncap = w->capseen ? w->capseen * 2 : 1024;
		uint64_t *n = calloc(ncap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < w->capseen; i++) {
			if (!w->seen[i])
				continue;
			size_t h = (size_t)(w->seen[i] * 0x9E3779B97F4A7C15ULL) & (ncap - 1);
			while (n[h])
				h = (h + 1) & (ncap - 1);
			n[h] = w->seen[i];
		}
		free(w->seen);
		w->seen = n;
		w->capseen = ncap;
	}
	size_t h = (size_t)(ino * 0x9E3779B97F4A7C15ULL) & (w->capseen - 1);
	while (w->seen[h]) {
		if (w->seen[h] == ino)
			return 0;
		h = (h + 1) & (w->capseen - 1);
	}
	w->seen[h] = ino;
	w->nseen++;
	return 1;
}

uint64_t cow_lower_entry(struct cow_view *v, uint64_t parent, const char *name, int *ret_type)
{
	for (int i = 1; i < v->nlayers; i++) {
		uint64_t ino;
		if (cow_db_dirent_get(v->st->db, v->layers[i], parent, name, &ino, ret_type) == 0)
			return ino;
	}
	return 0;
}

/* The names of directory @dp: merged listing plus the top layer's own
 * entries (to tell which names it changed and which it removed). */
static int list_dir(struct walk *w, struct cow_inode *dp, struct wlist *out)
{
	struct cow_view *v = w->v;
	struct wlist top = {0};
	int r;

	pthread_rwlock_rdlock(&v->ns_lock);
	r = cow_dir_load(v, dp);
	for (size_t i = 0; r == 0 && i < dp->dir->n; i++) {
		struct cow_dent *e = &dp->dir->ents[i];
		if (e->name && e->ino)
			r = wlist_add(out, e->name, e->ino, e->type);
	}
	pthread_rwlock_unlock(&v->ns_lock);
	if (r < 0)
		return r;
	cow_db_lock(v->st->db);
	r = cow_db_dirent_foreach(v->st->db, v->layers[0], dp->ino, top_row, &top);
	cow_db_unlock(v->st->db);
	if (r < 0)
		goto out;
	/* an empty directory has no array: qsort and bsearch want one */
	size_t nvisible = out->n;
	if (nvisible)
		qsort(out->v, nvisible, sizeof(*out->v), cmp_wname);
	for (size_t i = 0; i < top.n && r == 0; i++) {
		struct wname *t = &top.v[i];
		struct wname *e = nvisible ? bsearch(t, out->v, nvisible, sizeof(*out->v), cmp_wname) : NULL;
		if (e && t->ino == e->ino) {
			e->in_top = true;
		} else if (!t->ino && (w->flags & COW_WALK_DELETED)) {
			int type = DT_UNKNOWN;
			cow_db_lock(v->st->db);
			uint64_t below = cow_lower_entry(v, dp->ino, t->name, &type);
			cow_db_unlock(v->st->db);
			if (below) {
				r = wlist_add(out, t->name, below, (uint8_t)type);
				if (r == 0)
					out->v[out->n - 1].deleted = true;
			}
		}
	}
	if (r == 0 && out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_wname);
out:
	wlist_free(&top);
	return r;
}

static int visit(struct walk *w, struct cow_inode *ip, uint64_t parent, const char *name, size_t plen, bool in_top,
		 int depth);

static int walk_dir(struct walk *w, struct cow_inode *dp, size_t plen, int depth)
{
	struct wlist l = {0};
	int r = list_dir(w, dp, &l);
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		struct wname *e = &l.v[i];
		size_t nlen = strlen(e->name);
		r = path_room(w, plen + 1 + nlen + 1);
		if (r < 0)
			break;
		w->path[plen] = '/';
		memcpy(w->path + plen + 1, e->name, nlen + 1);
		if (e->deleted) {
			struct cow_walk_entry we = {
			    .path = w->path,
			    .name = e->name,
			    .parent = dp->ino,
			    .ino = e->ino,
			    .mode = (uint32_t)DTTOIF(e->type),
			    .deleted = true,
			};
			r = w->fn(w->arg, &we);
			continue;
		}
		struct cow_inode *ip;
		r = cow_inode_get(w->v, e->ino, &ip);
		if (r == -ENOENT)
			r = -EIO; /* an entry naming a missing object: fsck says so */
		if (r < 0)
			break;
		r = visit(w, ip, dp->ino, e->name, plen + 1 + nlen, e->in_top, depth);
		cow_inode_put(w->v, ip);
	}
	w->path[plen] = 0;
	wlist_free(&l);
	return r;
}

static int visit(struct walk *w, struct cow_inode *ip, uint64_t parent, const char *name, size_t plen, bool in_top,
		 int depth)
{
	int first = seen_add(w, ip->ino);
	if (first < 0)
		return first;
	struct cow_walk_entry we = {
	    .path = plen ? w->path : "/",
	    .name = name,
	    .parent = parent,
	    .ino = ip->ino,
	    .mode = ip->row.mode,
	    .in_top = in_top,
	    .first = first,
	    .row_layer = ip->row_layer,
	    .data_layer = ip->row.data_layer,
	    .ip = ip,
	};
	int r = w->fn(w->arg, &we);
	if (r == 0 && first && S_ISDIR(ip->row.mode)) {
		if (depth >= 4096)
			return -ELOOP;
		r = walk_dir(w, ip, plen, depth + 1);
	}
	return r;
}

int cow_walk(struct cow_view *v, int flags, int (*fn)(void *arg, const struct cow_walk_entry *e), void *arg)
{
	struct walk *w = calloc(1, sizeof(*w));
	struct cow_inode *root;
	if (!w)
		return -ENOMEM;
	w->v = v;
	w->flags = flags;
	w->fn = fn;
	w->arg = arg;
	int r = path_room(w, 1);
	if (r == 0)
		w->path[0] = 0;
	if (r == 0)
		r = cow_inode_get(v, v->root, &root);
	if (r == 0) {
		r = visit(w, root, 0, "", 0, false, 0);
		cow_inode_put(v, root);
	}
	free(w->seen);
	free(w->path);
	free(w);
	return r;
}
