/* SPDX-License-Identifier: MIT */
/*
 * Clients and images over time: who holds a layer, removing clients and
 * images, snapshot, rebase, diff, space accounting and garbage collection.
 * (Reset lives in view.c, beside the view it may have to change live.)
 *
 * Every change of the store's shape is one transaction that only moves
 * rows between kinds: a layer is never rewritten, it is kept, frozen into
 * an image, or marked dead for gc to drop later.  So these commands cost
 * O(1) or O(changes) and a crash leaves either the old or the new state.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow-private.h"

int cow_client_get(struct cow_store *st, const char *name, struct cow_client_info *ret)
{
	cow_db_lock(st->db);
	int r = cow_db_client_get(st->db, name, ret);
	cow_db_unlock(st->db);
	return r;
}

static int layer_holder(struct cow_store *st, uint64_t layer, struct cow_holder *ret)
{
	char name[64];
	snprintf(name, sizeof(name), "data/%llu.lock", (unsigned long long)layer);
	int fd = openat(st->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
	} else if (errno == EWOULDBLOCK) {
		char buf[256];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		memset(ret, 0, sizeof(*ret));
		char *sp = strchr(buf, ' ');
		ret->pid = (pid_t)atol(buf);
		snprintf(ret->what, sizeof(ret->what), "%s", sp ? sp + 1 : "cowroot");
		r = 1;
	} else {
		r = -errno;
	}
	close(fd);
	return r;
}

int cow_client_holder(struct cow_store *st, const char *name, struct cow_holder *ret)
{
	struct cow_client_info ci;
	int r = cow_client_get(st, name, &ci);
	if (r < 0)
		return r;
	return layer_holder(st, ci.layer, ret);
}

/* Open client @name's view for an offline change: -EBUSY at once if a
 * mount or server holds it. */
static int open_exclusive(struct cow_store *st, const char *name, struct cow_view **ret)
{
	struct cow_holder h;
	if (st->readonly)
		return -EROFS;
	int r = cow_client_holder(st, name, &h);
	if (r < 0)
		return r;
	if (r > 0)
		return -EBUSY;
	return cow_view_open(st, name, NULL, 0, ret);
}

int cow_client_rm(struct cow_store *st, const char *name, int flags)
{
	struct cow_client_info ci;
	struct cow_holder h;
	int r;

	if (st->readonly)
		return -EROFS;
	r = cow_client_holder(st, name, &h);
	if (r < 0)
		return r;
	if (r > 0 && !(flags & COW_LIVE))
		return -EBUSY;
	cow_db_lock(st->db);
	r = cow_db_begin(st->db);
	if (r == 0)
		r = cow_db_client_get(st->db, name, &ci);
	if (r == 0)
		r = cow_db_client_del(st->db, name);
	if (r == 0)
		r = cow_db_layer_set_kind(st->db, ci.layer, COW_LAYER_DEAD);
	if (r == 0)
		r = cow_db_commit(st->db, true);
	else
		cow_db_rollback(st->db);
	cow_db_unlock(st->db);
	return r;
}

int cow_client_snapshot(struct cow_store *st, const char *name, const char *image)
{
	struct cow_view *v;
	struct cow_client_info ci;
	uint64_t layer, dummy;
	int r;

	if (cow_name_check(image) < 0)
		return -EINVAL;
	/* opening the view also reaps what a crash left of unlinked files,
	 * so the frozen layer records only linked objects */
	r = open_exclusive(st, name, &v);
	if (r < 0)
		return r;
	struct cow_db *db = st->db;
	cow_db_lock(db);
	r = cow_db_begin(db);
	if (r < 0)
		goto out;
	if (cow_db_image_get(db, image, &dummy) == 0) {
		r = -EEXIST;
		goto rollback;
	}
	r = cow_db_client_get(db, name, &ci);
	if (r == 0 && ci.layer != v->layer)
		r = -ESTALE;
	if (r == 0)
		r = cow_db_layer_set_kind(db, ci.layer, COW_LAYER_IMAGE);
	if (r == 0)
		r = cow_db_image_add(db, image, ci.layer);
	if (r == 0)
		r = cow_db_layer_add(db, ci.layer, COW_LAYER_CLIENT, v->root, &layer);
	if (r == 0)
		r = cow_db_client_set(db, name, image, layer);
	if (r < 0)
		goto rollback;
	r = cow_db_commit(db, true);
	goto out;
rollback:
	cow_db_rollback(db);
out:
	cow_db_unlock(db);
	v->readonly = true; /* nothing of the now frozen layer to write back */
	cow_view_close(v);
	return r;
}

int cow_image_get(struct cow_store *st, const char *name, struct cow_image_info *ret)
{
	cow_db_lock(st->db);
	int r = cow_db_image_info(st->db, name, ret);
	cow_db_unlock(st->db);
	return r;
}

int cow_image_layers(struct cow_store *st, const char *name, int (*fn)(void *arg, const struct cow_layer_desc *),
		     void *arg)
{
	struct cow_layer_desc *d = calloc(COW_MAX_LAYERS, sizeof(*d));
	int n = 0;
	uint64_t id;
	if (!d)
		return -ENOMEM;
	cow_db_lock(st->db);
	int r = cow_db_image_get(st->db, name, &id);
	while (r == 0 && id) {
		struct cow_layer_info li;
		if (n == COW_MAX_LAYERS) {
			r = -ELOOP;
			break;
		}
		r = cow_db_layer_get(st->db, id, &li);
		if (r < 0)
			break;
		d[n].id = id;
		snprintf(d[n].digest, sizeof(d[n].digest), "%s", li.digest);
		if (cow_db_image_by_layer(st->db, id, d[n].image) < 0)
			d[n].image[0] = 0;
		n++;
		id = li.parent;
	}
	cow_db_unlock(st->db);
	for (int i = 0; r == 0 && i < n; i++)
		r = fn(arg, &d[i]);
	free(d);
	return r;
}

int cow_image_name_of(struct cow_store *st, uint64_t layer, char ret_name[COW_ENTITY_NAME_MAX + 1])
{
	cow_db_lock(st->db);
	int r = cow_db_image_by_layer(st->db, layer, ret_name);
	cow_db_unlock(st->db);
	return r;
}

int cow_image_users(struct cow_store *st, const char *name, int (*fn)(void *arg, const char *kind, const char *name),
		    void *arg)
{
	uint64_t layer;
	cow_db_lock(st->db);
	int r = cow_db_image_get(st->db, name, &layer);
	if (r == 0)
		r = cow_db_image_users(st->db, name, layer, fn, arg);
	cow_db_unlock(st->db);
	return r;
}

static int count_user(void *arg, const char *kind, const char *name)
{
	(void)kind;
	(void)name;
	(*(int *)arg)++;
	return 0;
}

int cow_image_rm(struct cow_store *st, const char *name)
{
	uint64_t layer;
	int users = 0, r;

	if (st->readonly)
		return -EROFS;
	cow_db_lock(st->db);
	r = cow_db_begin(st->db);
	if (r < 0)
		goto out;
	r = cow_db_image_get(st->db, name, &layer);
	if (r == 0)
		r = cow_db_image_users(st->db, name, layer, count_user, &users);
	if (r == 0 && users)
		r = -EBUSY;
	/* a read-only view of it (mount --image) holds its layer shared */
	int lockfd = -1;
	if (r == 0) {
		r = cow_layer_lock(st, layer, &lockfd);
		if (r == -EBUSY)
			r = -ETXTBSY;
	}
	if (r == 0)
		r = cow_db_image_del(st->db, name);
	/* beneath another image's layers (an OCI image on the same base) the
	 * layer stays, without a name; otherwise it goes, and so do the
	 * layers without a name beneath it that nothing else stands on */
	int locks[COW_MAX_LAYERS], nlocks = 0;
	struct cow_layer_info li;
	uint64_t id = layer;
	if (r == 0)
		r = cow_db_layer_get(st->db, id, &li);
	while (r == 0 && !cow_db_layer_used(st->db, id)) {
		char other[COW_ENTITY_NAME_MAX + 1];
		r = cow_db_layer_set_kind(st->db, id, COW_LAYER_DEAD);
		if (r < 0 || !li.parent || nlocks == COW_MAX_LAYERS)
			break;
		id = li.parent; /* its row, read below, serves the next round too */
		if (cow_db_layer_get(st->db, id, &li) < 0 || li.kind != COW_LAYER_IMAGE ||
		    cow_db_image_by_layer(st->db, id, other) == 0)
			break;
		/* one an import is building on stays, for fsck to report if the import fails */
		if (cow_layer_lock(st, id, &locks[nlocks]) < 0)
			break;
		nlocks++;
	}
	if (r == 0)
		r = cow_db_commit(st->db, true);
	else
		cow_db_rollback(st->db);
	while (nlocks > 0)
		close(locks[--nlocks]);
	if (lockfd >= 0)
		close(lockfd);
out:
	cow_db_unlock(st->db);
	return r;
}

/* ---- space ---- */

struct usage {
	uint64_t files, bytes;
	bool remove;
};

static int count_file(void *arg, int dirfd, const char *sub, const char *name)
{
	struct usage *u = arg;
	struct stat s;
	(void)sub;
	if (fstatat(dirfd, name, &s, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	/* a file shared by hard link with another layer frees nothing */
	if (!u->remove || s.st_nlink == 1)
		u->bytes += (uint64_t)s.st_blocks * 512;
	u->files++;
	if (u->remove)
		unlinkat(dirfd, name, 0);
	return 0;
}

/* Sum (or remove, with @remove) the files of data/<layer>. */
static int layer_files(struct cow_store *st, uint64_t layer, bool remove, uint64_t *ret_files, uint64_t *ret_bytes)
{
	struct usage u = {.remove = remove};
	int r = cow_data_foreach(st, layer, count_file, &u);
	*ret_files += u.files;
	*ret_bytes += u.bytes;
	if (r == 0 && remove)
		r = cow_data_remove_layer(st, layer);
	return r;
}

int cow_layer_stats(struct cow_store *st, uint64_t layer, struct cow_layer_stats *ret)
{
	struct cow_layer_stats s;
	cow_db_lock(st->db);
	int r = cow_db_layer_stats(st->db, layer, &s);
	cow_db_unlock(st->db);
	if (r < 0)
		return r;
	uint64_t files = 0;
	r = layer_files(st, layer, false, &files, &s.disk_bytes);
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

/* ---- gc ---- */

struct dead {
	uint64_t *ids;
	size_t n, cap;
};

static int collect_dead(void *arg, const struct cow_layer_info *l)
{
	struct dead *d = arg;
	if (l->kind != COW_LAYER_DEAD)
		return 0;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		uint64_t *n = realloc(d->ids, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		d->ids = n;
		d->cap = ncap;
	}
	d->ids[d->n++] = l->id;
	return 0;
}

int cow_gc(struct cow_store *st, cow_progress_fn progress, void *arg, struct cow_gc_report *ret)
{
	struct cow_gc_report rep = {0};
	struct dead dead = {0};
	struct cow_db *db = st->db;
	int r;

	if (st->readonly)
		return -EROFS;
	/* gc removes what the database no longer names: only a database
	 * that passes sqlite's check can say what that is */
	bool ok;
	cow_db_lock(db);
	r = cow_db_integrity(db, false, &ok);
	cow_db_unlock(db);
	if (r == 0 && !ok)
		r = -EUCLEAN;
	if (r < 0)
		return r;
	cow_db_lock(db);
	r = cow_db_layer_foreach(db, collect_dead, &dead);
	cow_db_unlock(db);
	for (size_t i = 0; r == 0 && i < dead.n; i++) {
		uint64_t id = dead.ids[i];
		if (progress && progress(arg, "gc", i, dead.n)) {
			r = -ECANCELED;
			break;
		}
		/* a server may still be writing its last changes to a layer
		 * that was reset under it: leave that one for later */
		int lockfd;
		r = cow_layer_lock(st, id, &lockfd);
		if (r == -EBUSY) {
			rep.busy++;
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		/* records first, then files: a crash in between leaves
		 * orphan files of a missing layer, which fsck removes */
		cow_db_lock(db);
		r = cow_db_begin(db);
		if (r == 0)
			r = cow_db_layer_drop_rows(db, id);
		if (r == 0)
			r = cow_db_layer_del(db, id);
		if (r == 0)
			r = cow_db_commit(db, true);
		else
			cow_db_rollback(db);
		cow_db_unlock(db);
		if (r == 0) {
			r = layer_files(st, id, true, &rep.files, &rep.bytes);
			char name[64];
			snprintf(name, sizeof(name), "data/%llu.lock", (unsigned long long)id);
			unlinkat(st->dirfd, name, 0);
			rep.layers++;
		}
		close(lockfd);
	}
	free(dead.ids);
	if (r == 0 && progress && progress(arg, "gc", dead.n, dead.n))
		r = -ECANCELED;
	if (r == 0) {
		/* what a crash left behind: data files no record names */
		struct cow_fsck_report f;
		r = cow_fsck_orphans(st, true, NULL, NULL, &f);
		rep.files += f.orphan_files;
	}
	if (r == 0)
		*ret = rep;
	return r;
}

/* ---- diff ---- */

const char *cow_change_name(enum cow_change c)
{
	switch (c) {
	case COW_CHANGE_ADDED:
		return "added";
	case COW_CHANGE_MODIFIED:
		return "modified";
	case COW_CHANGE_META:
		return "metadata";
	case COW_CHANGE_DELETED:
		return "deleted";
	}
	return "?";
}

struct diff {
	struct cow_view *v;
	int (*fn)(void *arg, const char *path, enum cow_change change, uint32_t mode);
	void *arg;
};

static int diff_entry(void *arg, const struct cow_walk_entry *e)
{
	struct diff *d = arg;
	struct cow_view *v = d->v;
	uint64_t top = v->layers[0];
	int r;

	if (e->deleted)
		return d->fn(d->arg, e->path, COW_CHANGE_DELETED, e->mode);
	if (e->in_top) {
		int type;
		cow_db_lock(v->st->db);
		uint64_t below = cow_lower_entry(v, e->parent, e->name, &type);
		cow_db_unlock(v->st->db);
		if (below != e->ino)
			return d->fn(d->arg, e->path, below ? COW_CHANGE_MODIFIED : COW_CHANGE_ADDED, e->mode);
	}
	if (e->row_layer != top)
		return 0;
	cow_db_lock(v->st->db);
	bool below = cow_exists_below(v, e->ino);
	cow_db_unlock(v->st->db);
	if (!below)
		r = d->fn(d->arg, e->path, COW_CHANGE_ADDED, e->mode);
	else if (S_ISREG(e->mode) && e->data_layer == top)
		r = d->fn(d->arg, e->path, COW_CHANGE_MODIFIED, e->mode);
	else
		r = d->fn(d->arg, e->path, COW_CHANGE_META, e->mode);
	return r;
}

int cow_client_diff(struct cow_store *st, const char *name,
		    int (*fn)(void *arg, const char *path, enum cow_change change, uint32_t mode), void *arg)
{
	struct cow_view *v;
	int r = cow_view_open(st, name, NULL, COW_VIEW_READONLY, &v);
	if (r < 0)
		return r;
	struct diff d = {.v = v, .fn = fn, .arg = arg};
	r = cow_walk(v, COW_WALK_DELETED, diff_entry, &d);
	cow_view_close(v);
	return r;
}

/* ---- rebase ---- */

struct rebase {
	struct cow_store *st;
	struct cow_view *v; /* the client's view, still on its old image */
	uint64_t *between;  /* layers of the new image above the old one */
	int nbetween;
	char **keys; /* "o<ino>" objects and "e<parent>/<name>" entries changed on both sides, sorted */
	size_t nkeys, capkeys;
	int (*conflict)(void *arg, const char *path, const char *why);
	void *arg;
};

static int push_key(struct rebase *rb, char *key)
{
	if (!key)
		return -ENOMEM;
	if (rb->nkeys == rb->capkeys) {
		size_t ncap = rb->capkeys ? rb->capkeys * 2 : 64;
		char **n = realloc(rb->keys, ncap * sizeof(*n));
		if (!n) {
			free(key);
			return -ENOMEM;
		}
		rb->keys = n;
		rb->capkeys = ncap;
	}
	rb->keys[rb->nkeys++] = key;
	return 0;
}

static char *obj_key(uint64_t ino)
{
	char *k;
	return asprintf(&k, "o%llu", (unsigned long long)ino) < 0 ? NULL : k;
}

static char *ent_key(uint64_t parent, const char *name)
{
	char *k;
	return asprintf(&k, "e%llu/%s", (unsigned long long)parent, name) < 0 ? NULL : k;
}

/* Did the new image change object @ino?  (Called under the db lock.) */
static bool changed_between(struct rebase *rb, uint64_t ino)
{
	for (int i = 0; i < rb->nbetween; i++) {
		struct cow_irow other;
		if (cow_db_inode_get(rb->st->db, rb->between[i], ino, &other) == 0) {
			cow_irow_release(&other);
			return true;
		}
	}
	return false;
}

static int rebase_row(void *arg, const struct cow_irow *row)
{
	struct rebase *rb = arg;
	/* a directory's own row changes with every entry made or removed
	 * in it: its conflicts are the entries', reported one by one */
	if (S_ISDIR(row->mode))
		return 0;
	return changed_between(rb, row->ino) ? push_key(rb, obj_key(row->ino)) : 0;
}

static int rebase_dirent(void *arg, uint64_t parent, const char *name, uint64_t ino, int type)
{
	struct rebase *rb = arg;
	(void)type;
	for (int i = 0; i < rb->nbetween; i++) {
		uint64_t other;
		if (cow_db_dirent_get(rb->st->db, rb->between[i], parent, name, &other, NULL) == 0)
			/* the same change on both sides is no conflict */
			return other == ino ? 0 : push_key(rb, ent_key(parent, name));
	}
	/* a name the layer removed whose object the new image changed
	 * (copy-up keeps names: the change is in the object's row) */
	if (!ino) {
		int t;
		uint64_t hidden = cow_lower_entry(rb->v, parent, name, &t);
		if (hidden && changed_between(rb, hidden))
			return push_key(rb, ent_key(parent, name));
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_key(struct rebase *rb, char *key)
{
	bool found = key && bsearch(&key, rb->keys, rb->nkeys, sizeof(char *), cmp_str);
	free(key);
	return found;
}

static int rebase_report(void *arg, const struct cow_walk_entry *e)
{
	struct rebase *rb = arg;
	if (e->deleted) {
		if (!has_key(rb, ent_key(e->parent, e->name)))
			return 0;
		return rb->conflict(rb->arg, e->path, "removed in the layer, changed in the new image");
	}
	if (e->in_top && has_key(rb, ent_key(e->parent, e->name)))
		return rb->conflict(rb->arg, e->path,
				    "name changed in the layer and in the new image; the layer's is kept");
	if (e->first && has_key(rb, obj_key(e->ino)))
		return rb->conflict(rb->arg, e->path,
				    "changed in the layer and in the new image; the layer's version is kept");
	return 0;
}

int cow_client_rebase(struct cow_store *st, const char *name, const char *image,
		      int (*conflict)(void *arg, const char *path, const char *why), void *arg)
{
	struct cow_client_info ci;
	struct cow_view *v;
	uint64_t new_top, old_top;
	uint64_t between[COW_MAX_LAYERS];
	struct rebase rb = {.st = st, .between = between, .conflict = conflict, .arg = arg};
	int r;

	r = open_exclusive(st, name, &v);
	if (r < 0)
		return r;
	rb.v = v;
	struct cow_db *db = st->db;
	cow_db_lock(db);
	r = cow_db_client_get(db, name, &ci);
	if (r == 0)
		r = cow_db_image_get(db, ci.image, &old_top);
	if (r == 0)
		r = cow_db_image_get(db, image, &new_top);
	/* the new image must stack on the old one */
	uint64_t id = new_top;
	while (r == 0 && id != old_top) {
		struct cow_layer_info l;
		if (!id || rb.nbetween == COW_MAX_LAYERS) {
			r = -EXDEV;
			break;
		}
		r = cow_db_layer_get(db, id, &l);
		if (r == 0) {
			between[rb.nbetween++] = id;
			id = l.parent;
		}
	}
	if (r == 0)
		r = cow_db_layer_inodes(db, v->layer, rebase_row, &rb);
	if (r == 0)
		r = cow_db_layer_dirents(db, v->layer, rebase_dirent, &rb);
	cow_db_unlock(db);
	if (r == 0 && rb.nkeys && conflict) {
		qsort(rb.keys, rb.nkeys, sizeof(char *), cmp_str);
		r = cow_walk(v, COW_WALK_DELETED, rebase_report, &rb);
	}
	if (r == 0) {
		cow_db_lock(db);
		r = cow_db_begin(db);
		if (r == 0)
			r = cow_db_layer_set_parent(db, v->layer, new_top);
		if (r == 0)
			r = cow_db_client_set(db, name, image, v->layer);
		if (r == 0)
			r = cow_db_commit(db, true);
		else
			cow_db_rollback(db);
		cow_db_unlock(db);
	}
	for (size_t i = 0; i < rb.nkeys; i++)
		free(rb.keys[i]);
	free(rb.keys);
	cow_view_close(v);
	return r;
}
