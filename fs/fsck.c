/* SPDX-License-Identifier: MIT */
/*
 * Consistency check: the database's own integrity, records that refer to
 * nothing, data files no record refers to (what a crash between writing
 * data and committing leaves), records whose data file is missing,
 * layers that nothing uses, and merged views that are not trees (see
 * tree.c: what load refuses in a bundle).  With repair, everything but missing data is
 * fixed; missing data is reported, never papered over.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow-private.h"

struct fsck {
	struct cow_store *st;
	bool repair;
	void (*log)(void *arg, const char *line);
	void *arg;
	struct cow_fsck_report *rep;
};

static void say(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct fsck *f, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (f->log)
		f->log(f->arg, line);
}

static bool parse_u64(const char *s, int base, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno || end == s || *end)
		return false;
	*ret = v;
	return true;
}

struct layer_check {
	struct fsck *f;
	uint64_t layer;
	bool exists;
};

static int check_file(void *arg, int dirfd, const char *sub, const char *name)
{
	struct layer_check *c = arg;
	struct fsck *f = c->f;
	uint64_t ino;
	if (parse_u64(name, 16, &ino) && c->exists && cow_db_data_referenced(f->st->db, c->layer, ino))
		return 0;
	f->rep->orphan_files++;
	say(f, "orphan data file data/%llu/%s/%s", (unsigned long long)c->layer, sub, name);
	if (!f->repair)
		return 0;
	if (unlinkat(dirfd, name, 0) < 0)
		return -errno;
	f->rep->repaired++;
	return 0;
}

/* Lock data/<layer>.lock if it exists (a writer creates it before its
 * first data file; creating it here would leave one for a layer that is
 * not there).  -EBUSY while someone holds it. */
static int lock_if_present(struct cow_store *st, uint64_t layer, int *ret_fd)
{
	char name[64];
	snprintf(name, sizeof(name), "%llu.lock", (unsigned long long)layer);
	int fd = openat(st->datafd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* Remove lock file @name ("<layer>.lock") of a layer that has neither
 * records nor data (what a killed import, flatten or load leaves), unless
 * someone holds it. */
static void drop_stale_lock(struct cow_store *st, const char *name)
{
	uint64_t layer;
	struct cow_layer_info li;
	struct stat s;
	char dir[32];
	int fd = -1;
	if (sscanf(name, "%" SCNu64 ".lock", &layer) != 1 || cow_db_layer_get(st->db, layer, &li) == 0)
		return;
	snprintf(dir, sizeof(dir), "%llu", (unsigned long long)layer);
	if (fstatat(st->datafd, dir, &s, AT_SYMLINK_NOFOLLOW) == 0)
		return; /* its data is judged (and removed) first */
	if (lock_if_present(st, layer, &fd) < 0 || fd < 0)
		return;
	unlinkat(st->datafd, name, 0);
	close(fd);
}

/* A stream over the directory @fd from its start (the fd stays open),
 * or NULL with errno set. */
static DIR *dir_stream(int fd)
{
	int dupfd = dup(fd);
	DIR *d = dupfd < 0 ? NULL : fdopendir(dupfd);
	if (!d) {
		int e = errno;
		if (dupfd >= 0)
			close(dupfd);
		errno = e;
		return NULL;
	}
	rewinddir(d); /* dup shares the offset */
	return d;
}

/* The temporary directories a disk import copies a boot partition into
 * (STORE/tmp-boot-*, cow_image_import_disk): one left by an import that
 * died is removed; one whose import still runs is locked by it (flock on
 * the directory) and left alone. */
static int check_tmp_dirs(struct fsck *f)
{
	DIR *d = dir_stream(f->st->dirfd);
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (strncmp(de->d_name, COW_TMP_BOOT_PREFIX, strlen(COW_TMP_BOOT_PREFIX)))
			continue;
		int fd = openat(f->st->dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			say(f, "unexpected entry %s (left alone)", de->d_name);
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd); /* its import is running */
			continue;
		}
		f->rep->leftover_tmp++;
		say(f, "leftover %s of an interrupted disk import%s", de->d_name, f->repair ? ": removed" : "");
		if (f->repair) {
			r = cow_rm_tree_at(f->st->dirfd, de->d_name);
			if (r == 0)
				f->rep->repaired++;
		}
		close(fd);
	}
	closedir(d);
	return r;
}

static int check_data_dir(struct fsck *f)
{
	DIR *d = dir_stream(f->st->datafd);
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		uint64_t layer;
		struct cow_layer_info li;
		if (de->d_name[0] == '.')
			continue;
		if (strstr(de->d_name, ".lock")) {
			if (f->repair)
				drop_stale_lock(f->st, de->d_name);
			continue;
		}
		if (!parse_u64(de->d_name, 10, &layer)) {
			say(f, "unexpected entry data/%s (left alone)", de->d_name);
			continue;
		}
		bool exists = cow_db_layer_get(f->st->db, layer, &li) == 0;
		if (!exists && !cow_db_layer_known(f->st->db, layer)) {
			/* not a leftover of this database: of the database that was
			 * here before it, maybe, and the only copy of that data */
			f->rep->unknown_layers++;
			say(f,
			    "data/%llu belongs to no layer this database ever recorded (was the database replaced?):"
			    " left alone",
			    (unsigned long long)layer);
			continue;
		}
		/* A running view, import, flatten or load writes data files
		 * before the records naming them (an import's layer is not
		 * even committed yet): its files cannot be judged meanwhile.
		 * Repair holds the lock of a layer it removes till it is gone,
		 * so that no writer starts on that layer id in between. */
		int lockfd = -1;
		if (exists && li.kind == COW_LAYER_DEAD)
			continue; /* all its files go with it at the next gc */
		if ((exists || f->repair ? cow_layer_lock(f->st, layer, &lockfd)
					 : lock_if_present(f->st, layer, &lockfd)) == -EBUSY) {
			say(f,
			    "layer %llu is in use (mounted, served or being written): its data files were not checked",
			    (unsigned long long)layer);
			continue;
		}
		struct layer_check c = {.f = f, .layer = layer, .exists = exists};
		r = cow_data_foreach(f->st, layer, check_file, &c);
		if (r == 0 && !exists && f->repair)
			cow_layer_abandon(f->st, layer, lockfd);
		else if (lockfd >= 0)
			close(lockfd);
	}
	closedir(d);
	return r;
}

static int check_ref(void *arg, uint64_t layer, uint64_t ino)
{
	struct fsck *f = arg;
	char path[128];
	struct stat s;
	cow_data_path(path, sizeof(path), layer, ino);
	if (fstatat(f->st->datafd, path, &s, 0) < 0 && errno == ENOENT) {
		f->rep->missing_data++;
		say(f, "object %llu of layer %llu: data file data/%s is missing", (unsigned long long)ino,
		    (unsigned long long)layer, path);
	}
	return 0;
}

static int check_layer(void *arg, const struct cow_layer_info *l)
{
	struct fsck *f = arg;
	if (l->kind == COW_LAYER_DEAD) {
		/* reset or removed: normal until gc reclaims it */
		f->rep->dead_layers++;
		say(f, "layer %llu is no longer used; 'cowroot gc' reclaims it", (unsigned long long)l->id);
		return 0;
	}
	if (cow_db_layer_used(f->st->db, l->id))
		return 0;
	f->rep->unused_layers++;
	say(f, "layer %llu is used by no client or image", (unsigned long long)l->id);
	if (f->repair) {
		int r = cow_db_layer_set_kind(f->st->db, l->id, COW_LAYER_DEAD);
		if (r < 0)
			return r;
		f->rep->repaired++;
	}
	return 0;
}

/* ---- trees: every image's and every client's merged view (tree.c) ---- */

#define TREE_LINES 20 /* problems printed per view; the rest counted */

struct vrow {
	uint64_t ino;
	uint32_t mode, nlink;
	int depth; /* 0: the view's top layer */
};

struct view_check {
	struct fsck *f;
	const char *kind, *name;
	uint64_t layers[COW_MAX_LAYERS];
	int nlayers, cur;
	struct vrow *rows;
	size_t nrows, caprows;
	struct cow_tree tree;
};

static void tree_line(void *arg, const char *line)
{
	struct view_check *vc = arg;
	vc->f->rep->tree_problems++;
	if (vc->tree.problems <= TREE_LINES)
		say(vc->f, "%s '%s': %s", vc->kind, vc->name, line);
}

static int view_row(void *arg, uint64_t ino, uint32_t mode, uint32_t nlink)
{
	struct view_check *vc = arg;
	if (vc->nrows == vc->caprows) {
		size_t ncap = vc->caprows ? vc->caprows * 2 : 1024;
		struct vrow *n = realloc(vc->rows, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		vc->rows = n;
		vc->caprows = ncap;
	}
	vc->rows[vc->nrows++] = (struct vrow){ino, mode, nlink, vc->cur};
	return 0;
}

static int cmp_vrow(const void *a, const void *b)
{
	const struct vrow *x = a, *y = b;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return (x->depth > y->depth) - (x->depth < y->depth);
}

/* The names the view shows: an entry of layer cur that no layer above
 * has (a higher row, or a whiteout, replaces it). */
static int view_name(void *arg, uint64_t parent, const char *name, size_t len, uint64_t ino, int type)
{
	struct view_check *vc = arg;
	struct cow_db *db = vc->f->st->db;
	if (!cow_tree_name_ok(name, len)) {
		cow_tree_name(&vc->tree, parent, name, len, ino, type); /* says what is wrong with it */
		return 0;
	}
	for (int j = 0; j < vc->cur; j++) {
		uint64_t above;
		if (cow_db_dirent_get(db, vc->layers[j], parent, name, &above, NULL) == 0)
			return 0;
	}
	if (!ino)
		return 0; /* a whiteout: the name is gone */
	cow_tree_name(&vc->tree, parent, name, len, ino, type);
	return 0;
}

/* Is the merged view of @kind @name (top layer @top) a tree? */
static int check_view(struct fsck *f, const char *kind, const char *name, uint64_t top)
{
	struct view_check vc = {.f = f, .kind = kind, .name = name};
	struct cow_db *db = f->st->db;
	struct cow_layer_info li;
	uint64_t root = 0;
	int r = 0;
	cow_tree_init(&vc.tree, tree_line, &vc);
	vc.tree.allow_unlinked = true; /* open while unlinked, or what a crash left: not the tree's business */
	for (uint64_t id = top; id && r == 0; id = li.parent) {
		if (vc.nlayers == COW_MAX_LAYERS) {
			say(f, "%s '%s': more than %d layers", kind, name, COW_MAX_LAYERS);
			f->rep->tree_problems++;
			return 0;
		}
		r = cow_db_layer_get(db, id, &li);
		if (r == -ENOENT) {
			say(f, "%s '%s': layer %llu is missing", kind, name, (unsigned long long)id);
			f->rep->tree_problems++;
			return 0;
		}
		if (r == 0 && id == top)
			root = li.root;
		vc.layers[vc.nlayers++] = id;
	}
	vc.tree.layered = vc.nlayers > 1;
	/* the objects: the topmost row of each, tombstones (mode 0) removing it */
	for (vc.cur = 0; r == 0 && vc.cur < vc.nlayers; vc.cur++)
		r = cow_db_layer_rows(db, vc.layers[vc.cur], view_row, &vc);
	if (r == 0 && vc.nrows)
		qsort(vc.rows, vc.nrows, sizeof(*vc.rows), cmp_vrow);
	for (size_t i = 0; r == 0 && i < vc.nrows; i++) {
		struct vrow *w = &vc.rows[i];
		if ((i && w->ino == vc.rows[i - 1].ino) || w->mode == 0)
			continue;
		r = cow_tree_add(&vc.tree, w->ino, w->mode, w->nlink);
	}
	free(vc.rows);
	for (vc.cur = 0; r == 0 && vc.cur < vc.nlayers; vc.cur++)
		r = cow_db_layer_names(db, vc.layers[vc.cur], view_name, &vc);
	if (r == 0)
		cow_tree_finish(&vc.tree, root);
	if (r == 0 && vc.tree.problems > TREE_LINES)
		say(f, "%s '%s': %llu more problem(s) of its tree", kind, name,
		    (unsigned long long)(vc.tree.problems - TREE_LINES));
	cow_tree_release(&vc.tree);
	return r;
}

static int check_image_tree(void *arg, const struct cow_image_info *ii)
{
	return check_view(arg, "image", ii->name, ii->layer);
}

static int check_client_tree(void *arg, const struct cow_client_info *ci)
{
	return check_view(arg, "client", ci->name, ci->layer);
}

int cow_fsck(struct cow_store *st, bool repair, void (*log)(void *arg, const char *line), void *arg,
	     struct cow_fsck_report *ret)
{
	struct cow_fsck_report rep = {0};
	struct fsck f = {.st = st, .repair = repair && !st->readonly, .log = log, .arg = arg, .rep = &rep};
	struct cow_db *db = st->db;
	int r;

	cow_db_lock(db);
	r = cow_db_integrity(db, true, &rep.db_ok);
	if (r < 0)
		goto out;
	if (!rep.db_ok) {
		say(&f, "database integrity check failed: %s", cow_db_errmsg(db) ? cow_db_errmsg(db) : "?");
		if (!f.repair)
			goto out; /* nothing below can be trusted */
		r = cow_db_repair(db);
		if (r == -EUCLEAN) {
			/* the tables themselves: what they held is not known */
			say(&f,
			    "the damage is in the database's tables, which fsck cannot rebuild: restore %s/cowroot.db"
			    " from a backup (or salvage what sqlite can read with 'sqlite3 cowroot.db .recover')",
			    cow_store_dir(st));
			rep.db_unrepairable = true;
			r = 0;
			goto out;
		}
		if (r < 0)
			goto out;
		say(&f, "database indexes rebuilt: the database passes its integrity check");
		rep.db_ok = true;
		rep.db_repaired = true;
		rep.repaired++;
	}
	if (f.repair)
		cow_db_clear_damaged(db); /* it passed: writes may go on */
	else if (cow_db_marked_damaged(db)) {
		rep.db_marked = true;
		say(&f, "the store is marked damaged (writes are refused) but its database passes the check now;"
			" 'fsck --repair' clears the mark");
	}
	/* one transaction: a consistent picture, and repairs all or nothing */
	r = cow_db_begin(db);
	if (r < 0)
		goto out;
	uint64_t n = 0;
	r = cow_db_layer_foreach(db, check_layer, &f);
	if (r == 0)
		r = cow_db_check_dangling(db, f.repair, log, arg, &n);
	rep.dangling = n;
	if (f.repair)
		rep.repaired += n;
	if (r == 0)
		r = cow_db_data_foreach(db, check_ref, &f);
	if (r == 0)
		r = cow_db_image_foreach(db, check_image_tree, &f);
	if (r == 0)
		r = cow_db_client_foreach(db, check_client_tree, &f);
	if (r == 0)
		r = check_data_dir(&f);
	if (r == 0)
		r = check_tmp_dirs(&f);
	if (r == 0)
		r = cow_db_commit(db, true);
	else
		cow_db_rollback(db);
out:
	cow_db_unlock(db);
	if (r == 0)
		*ret = rep;
	return r;
}

int cow_fsck_recover_layer(struct cow_store *st, uint64_t layer, uint64_t *ret_removed)
{
	struct cow_fsck_report rep = {0};
	struct fsck f = {.st = st, .repair = !st->readonly, .rep = &rep};
	struct layer_check c = {.f = &f, .layer = layer, .exists = true};
	cow_db_lock(st->db);
	int r = cow_data_foreach(st, layer, check_file, &c);
	cow_db_unlock(st->db);
	*ret_removed = rep.repaired;
	return r;
}

int cow_fsck_orphans(struct cow_store *st, bool repair, void (*log)(void *arg, const char *line), void *arg,
		     struct cow_fsck_report *ret)
{
	struct cow_fsck_report rep = {0};
	struct fsck f = {.st = st, .repair = repair && !st->readonly, .log = log, .arg = arg, .rep = &rep};
	cow_db_lock(st->db);
	int r = check_data_dir(&f);
	if (r == 0)
		r = check_tmp_dirs(&f);
	cow_db_unlock(st->db);
	if (r == 0)
		*ret = rep;
	return r;
}
