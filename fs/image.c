/* SPDX-License-Identifier: MIT */
/*
 * Building a new image layer (import, flatten, load) and importing a tree.
 *
 * A layer under construction is born dead: until its last transaction
 * names it as an image, nothing sees it, and a crash leaves only what gc
 * reclaims.  Its rows are committed in batches, so that running servers
 * that write to the same store are never held up for a whole import, and
 * its data is synced before the transaction that makes it an image.  On
 * error or cancel everything of it is removed at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cow-private.h"

struct hl { /* a hardlinked source inode already imported */
	dev_t dev;
	ino_t ino;
	uint64_t id;
	nlink_t nlink;	/* what the source says */
	uint32_t names; /* names imported: nlink in the image */
};

struct import {
	struct cow_store *st;
	struct cow_build b;
	uint64_t layer;
	dev_t dev;
	struct hl *hls;
	size_t nhl, caphl;
	char *xbuf, *vbuf;
	char *where;  /* after a failure: the path, below the source, it is about */
	char *target; /* a symlink's target: not on the stack of a walk thousands of levels deep */
	bool fat;     /* a FAT tree: owned by root, 0644 files, 0755 directories, no xattrs */
};

/* Unwinding a failure below entry @name: the path it is about grows. */
static void where_prepend(struct import *im, const char *name)
{
	char *w;
	if (asprintf(&w, "%s%s%s", name, im->where ? "/" : "", im->where ? im->where : "") < 0)
		return;
	free(im->where);
	im->where = w;
}

#define BUILD_BATCH 512

int cow_build_begin(struct cow_store *st, const char *name, uint64_t root, struct cow_build *b)
{
	struct cow_db *db = st->db;
	uint64_t dummy;
	int r;

	memset(b, 0, sizeof(*b));
	b->st = st;
	b->lockfd = -1;
	if (st->readonly)
		return -EROFS;
	cow_db_lock(db);
	r = cow_db_begin(db);
	if (r == 0 && cow_db_image_get(db, name, &dummy) == 0)
		r = -EEXIST;
	if (r == 0 && !root)
		r = cow_db_alloc_inos(db, 1, &root);
	if (r == 0)
		r = cow_db_layer_add(db, 0, COW_LAYER_DEAD, root, &b->layer);
	if (r == 0)
		r = cow_db_commit(db, false);
	else
		cow_db_rollback(db);
	cow_db_unlock(db);
	if (r < 0) {
		b->layer = 0;
		return r;
	}
	b->root = root;
	/* held until finished: gc leaves a layer in use alone */
	r = cow_layer_lock(st, b->layer, &b->lockfd);
	/* a crash may have left files under this id before it was committed */
	if (r == 0)
		r = cow_data_remove_layer(st, b->layer);
	if (r == 0) {
		cow_db_lock(db);
		r = cow_db_begin(db);
		if (r == 0) {
			b->in_txn = true;
			return 0;
		}
		cow_db_unlock(db);
	}
	r = cow_build_finish(b, name, r);
	b->layer = 0; /* finished: nothing for the caller to finish */
	return r;
}

int cow_build_step(struct cow_build *b)
{
	if (++b->batch % BUILD_BATCH)
		return 0;
	struct cow_db *db = b->st->db;
	int r = cow_db_commit(db, false);
	cow_db_unlock(db);
	/* other writers of the store get their turn here */
	cow_db_lock(db);
	if (r == 0)
		r = cow_db_begin(db);
	if (r < 0) {
		b->in_txn = false;
		cow_db_unlock(db);
	}
	return r;
}

int cow_build_ino(struct cow_build *b, uint64_t *ret)
{
	if (b->next == b->end) {
		int r = cow_db_alloc_inos(b->st->db, COW_INO_BATCH, &b->next);
		if (r < 0)
			return r;
		b->end = b->next + COW_INO_BATCH;
	}
	*ret = b->next++;
	return 0;
}

int cow_build_tick(struct cow_build *b)
{
	int r = cow_build_step(b);
	if (r < 0)
		return r;
	b->done++;
	if (b->progress && (b->done == 1 || b->done % 64 == 0))
		if (b->progress(b->arg, "import", b->done, b->total))
			return -ECANCELED;
	return 0;
}

int cow_build_finish(struct cow_build *b, const char *name, int r)
{
	struct cow_store *st = b->st;
	struct cow_db *db = st->db;
	if (!b->layer)
		return r;
	if (b->in_txn) {
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
		cow_db_unlock(db);
		b->in_txn = false;
	}
	/* data first: every file of the image is on disk before the
	 * transaction that makes it one */
	if (r == 0 && syncfs(st->datafd) < 0)
		r = -errno;
	if (r == 0) {
		uint64_t dummy;
		cow_db_lock(db);
		r = cow_db_begin(db);
		if (r == 0 && cow_db_image_get(db, name, &dummy) == 0)
			r = -EEXIST;
		if (r == 0)
			r = cow_db_layer_set_kind(db, b->layer, COW_LAYER_IMAGE);
		if (r == 0)
			r = cow_db_image_add(db, name, b->layer);
		if (r == 0)
			r = cow_db_commit(db, true);
		else
			cow_db_rollback(db);
		cow_db_unlock(db);
	}
	if (r < 0) {
		/* drop what was built; if that fails too, gc finds it dead */
		cow_db_lock(db);
		if (cow_db_begin(db) == 0) {
			if (cow_db_layer_drop_rows(db, b->layer) == 0 && cow_db_layer_del(db, b->layer) == 0)
				cow_db_commit(db, false);
			else
				cow_db_rollback(db);
		}
		cow_db_unlock(db);
		cow_layer_abandon(st, b->layer, b->lockfd);
		b->lockfd = -1;
	}
	if (b->lockfd >= 0)
		close(b->lockfd);
	return r;
}

static int import_xattrs(struct import *im, int fd, uint64_t ino)
{
	if (im->fat)
		return 0;
	/* through /proc/self/fd: works for O_PATH fds of any file type */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = listxattr(path, im->xbuf, 65536);
	if (n < 0)
		return (errno == ENOTSUP || errno == ENOSYS) ? 0 : -errno;
	struct cow_xattr_room room = {0};
	for (char *x = im->xbuf; x < im->xbuf + n; x += strlen(x) + 1) {
		ssize_t vn = getxattr(path, x, im->vbuf, COW_XATTR_SIZE_MAX);
		if (vn < 0) {
			if (errno == ENODATA)
				continue;
			return -errno;
		}
		/* more than one object may hold (never so from ext4) */
		if (cow_xattr_room_add(&room, strlen(x), (size_t)vn) < 0)
			return -ENOSPC;
		int r = cow_db_xattr_put(im->st->db, im->layer, ino, x, im->vbuf, (size_t)vn);
		if (r < 0)
			return r;
	}
	return 0;
}

static int import_entry(struct import *im, int pfd, uint64_t parent, const char *name, uint32_t *subdirs);

static struct cow_irow row_from_stat(uint64_t ino, const struct stat *s)
{
	return (struct cow_irow){
	    .ino = ino,
	    .mode = s->st_mode,
	    .nlink = (uint32_t)s->st_nlink,
	    .uid = s->st_uid,
	    .gid = s->st_gid,
	    .rdev = (S_ISCHR(s->st_mode) || S_ISBLK(s->st_mode)) ? s->st_rdev : 0,
	    .size = S_ISREG(s->st_mode) ? s->st_size : 0,
	    .atime = cow_ts_to_ns(&s->st_atim),
	    .mtime = cow_ts_to_ns(&s->st_mtim),
	    .ctime = cow_ts_to_ns(&s->st_ctim),
	};
}

/* Record object @ino from entry @name of @pfd (or the directory @fd). */
static int import_object(struct import *im, int pfd, const char *name, int fd, uint64_t ino, const struct stat *s)
{
	struct cow_irow row = row_from_stat(ino, s);
	char *target = im->target;
	int r = 0, ofd = fd;

	if (S_ISLNK(s->st_mode)) {
		ssize_t n = readlinkat(pfd, name, target, COW_SYMLINK_MAX + 1);
		if (n < 0)
			return -errno;
		if (n > COW_SYMLINK_MAX)
			return -ENAMETOOLONG;
		target[n] = 0;
		row.target = target;
		row.size = n;
	} else if (S_ISREG(s->st_mode)) {
		ofd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
		if (ofd < 0 && errno == EPERM)
			ofd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (ofd < 0)
			return -errno;
		if (s->st_size > 0) {
			int out = cow_data_open(im->st, im->layer, ino, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (out < 0) {
				r = out;
				goto out;
			}
			/* synced once for the whole import, before the commit */
			r = cow_data_copy(ofd, out, s->st_size, false);
			close(out);
			if (r < 0)
				goto out;
			row.data_layer = im->layer;
		}
	} else if (!S_ISDIR(s->st_mode) && !S_ISCHR(s->st_mode) && !S_ISBLK(s->st_mode) && !S_ISFIFO(s->st_mode) &&
		   !S_ISSOCK(s->st_mode)) {
		return -EINVAL;
	}
	r = cow_db_inode_put(im->st->db, im->layer, &row);
	if (r == 0 && !S_ISLNK(s->st_mode) && !S_ISFIFO(s->st_mode) && !S_ISSOCK(s->st_mode) && !S_ISCHR(s->st_mode) &&
	    !S_ISBLK(s->st_mode)) {
		r = import_xattrs(im, ofd, ino);
	} else if (r == 0 && !S_ISLNK(s->st_mode)) {
		/* no fd for these types: open with O_PATH and read through /proc */
		int pfd2 = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pfd2 >= 0) {
			r = import_xattrs(im, pfd2, ino);
			close(pfd2);
		}
	}
	if (r == 0)
		r = cow_build_tick(&im->b);
	if (r == 0 && S_ISDIR(s->st_mode)) {
		DIR *d = fdopendir(dup(fd));
		if (d)
			rewinddir(d); /* dup shares the offset */
		if (!d)
			return -errno;
		struct dirent *de;
		uint32_t subdirs = 0;
		errno = 0;
		while (r == 0 && (de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			r = import_entry(im, fd, ino, de->d_name, &subdirs);
			if (r < 0 && r != -ECANCELED)
				where_prepend(im, de->d_name);
		}
		closedir(d);
		/* nlink as the image has it: 2 + the subdirectories imported
		 * (a file system may count otherwise, btrfs says 1) */
		if (r == 0 && row.nlink != 2 + subdirs) {
			row.nlink = 2 + subdirs;
			r = cow_db_inode_put(im->st->db, im->layer, &row);
		}
	}
out:
	if (ofd >= 0 && ofd != fd)
		close(ofd);
	return r;
}

/* Import the entry @name of directory @pfd (parent object @parent);
 * counts it in *@subdirs if it is a directory. */
static int import_entry(struct import *im, int pfd, uint64_t parent, const char *name, uint32_t *subdirs)
{
	struct stat stbuf;
	int r;
	if (fstatat(pfd, name, &stbuf, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (im->fat) {
		/* what a vfat mount shows, fixed: FAT has no owners or modes */
		if (!S_ISREG(stbuf.st_mode) && !S_ISDIR(stbuf.st_mode))
			return -EINVAL;
		stbuf.st_mode = S_ISDIR(stbuf.st_mode) ? (S_IFDIR | 0755) : (S_IFREG | 0644);
		stbuf.st_uid = 0;
		stbuf.st_gid = 0;
		stbuf.st_nlink = 1;
		stbuf.st_atim = stbuf.st_mtim;
		stbuf.st_ctim = stbuf.st_mtim;
	}
	if (strlen(name) > COW_NAME_MAX)
		return -ENAMETOOLONG;
	int type = (int)((stbuf.st_mode & S_IFMT) >> 12);
	if (S_ISDIR(stbuf.st_mode))
		(*subdirs)++;

	/* a hardlink to something already imported */
	if (!S_ISDIR(stbuf.st_mode) && stbuf.st_nlink > 1) {
		for (size_t i = 0; i < im->nhl; i++)
			if (im->hls[i].dev == stbuf.st_dev && im->hls[i].ino == stbuf.st_ino) {
				im->hls[i].names++;
				return cow_db_dirent_put(im->st->db, im->layer, parent, name, im->hls[i].id, type);
			}
	}
	uint64_t ino;
	r = cow_build_ino(&im->b, &ino);
	if (r < 0)
		return r;
	if (!S_ISDIR(stbuf.st_mode) && stbuf.st_nlink > 1) {
		if (im->nhl == im->caphl) {
			size_t nc = im->caphl ? im->caphl * 2 : 256;
			struct hl *n = realloc(im->hls, nc * sizeof(*n));
			if (!n)
				return -ENOMEM;
			im->hls = n;
			im->caphl = nc;
		}
		im->hls[im->nhl++] = (struct hl){stbuf.st_dev, stbuf.st_ino, ino, stbuf.st_nlink, 1};
	}
	r = cow_db_dirent_put(im->st->db, im->layer, parent, name, ino, type);
	if (r < 0)
		return r;
	if (!S_ISDIR(stbuf.st_mode))
		return import_object(im, pfd, name, -1, ino, &stbuf);
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (stbuf.st_dev != im->dev) {
		/* another file system mounted here: record the mount point only */
		close(fd);
		fd = -1;
		struct cow_irow row = row_from_stat(ino, &stbuf);
		row.nlink = 2; /* nothing in it is imported */
		r = cow_db_inode_put(im->st->db, im->layer, &row);
		return r < 0 ? r : cow_build_tick(&im->b);
	}
	r = import_object(im, pfd, name, fd, ino, &stbuf);
	close(fd);
	return r;
}

/* A hardlinked file with names outside the tree (or across a mount
 * point) has fewer names in the image than the source says: nlink is the
 * image's count. */
static int fix_link_counts(struct import *im)
{
	struct cow_db *db = im->st->db;
	int r = 0;
	for (size_t i = 0; r == 0 && i < im->nhl; i++) {
		struct hl *h = &im->hls[i];
		struct cow_irow row;
		if (h->names == h->nlink)
			continue;
		r = cow_db_inode_get(db, im->layer, h->id, &row);
		if (r == 0) {
			row.nlink = h->names;
			r = cow_db_inode_put(db, im->layer, &row);
			cow_irow_release(&row);
		}
	}
	return r;
}

static int count_tree(int dfd, dev_t dev, uint64_t *n)
{
	DIR *d = fdopendir(dup(dfd));
	if (d)
		rewinddir(d); /* dup shares the offset */
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		(*n)++;
		if (de->d_type == DT_DIR) {
			int fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			struct stat s;
			if (fd >= 0 && fstat(fd, &s) == 0 && s.st_dev == dev)
				count_tree(fd, dev, n);
			if (fd >= 0)
				close(fd);
		}
	}
	closedir(d);
	return 0;
}

int cow_import_err(struct cow_store *st, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
	va_end(ap);
	return r;
}

int cow_import_check(struct cow_store *st, const char *name, const char *src)
{
	if (cow_name_check(name) < 0)
		return -EINVAL;
	if (st->readonly)
		return -EROFS;
	st->errmsg[0] = 0;
	if (strlen(src) > 1024)
		return -ENAMETOOLONG;
	return 0;
}

int cow_image_import(struct cow_store *st, const char *name, const char *src, cow_progress_fn progress, void *arg)
{
	struct import im = {.st = st};
	struct stat s;
	int r;

	r = cow_import_check(st, name, src);
	if (r < 0)
		return r;
	int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &s) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	im.dev = s.st_dev;
	im.xbuf = malloc(65536);
	im.vbuf = malloc(COW_XATTR_SIZE_MAX);
	im.target = malloc(COW_SYMLINK_MAX + 2);
	if (!im.xbuf || !im.vbuf || !im.target) {
		r = -ENOMEM;
		goto out_free;
	}
	if (progress) {
		im.b.total = 1;
		count_tree(fd, s.st_dev, &im.b.total);
	}

	uint64_t total = im.b.total;
	r = cow_build_begin(st, name, 0, &im.b);
	if (r < 0)
		goto out_free; /* nothing built */
	im.b.total = total;
	im.b.progress = progress;
	im.b.arg = arg;
	im.layer = im.b.layer;
	r = import_object(&im, fd, ".", fd, im.b.root, &s);
	if (r == 0)
		r = fix_link_counts(&im);
	if (r == 0 && progress && progress(arg, "import", im.b.done, im.b.done))
		r = -ECANCELED;
	if (r < 0 && r != -ECANCELED) {
		/* the one path a user needs to look at */
		const char *w = im.where ? im.where : "";
		size_t n = strlen(w), keep = sizeof(st->errmsg) - strlen(src) - 40;
		snprintf(st->errmsg, sizeof(st->errmsg), "cannot import '%s%s%s%s': %s", src, n ? "/" : "",
			 n > keep ? "..." : "", n > keep ? w + n - keep : w, strerror(-r));
	}
	r = cow_build_finish(&im.b, name, r);
out_free:
	free(im.where);
	free(im.xbuf);
	free(im.vbuf);
	free(im.target);
	free(im.hls);
	close(fd);
	return r;
}

int cow_import_entries(struct cow_build *b, int fd, uint64_t dir, bool fat, uint32_t *ret_subdirs)
{
	struct import im = {.st = b->st, .b = *b, .layer = b->layer, .fat = fat};
	struct stat s;
	uint32_t subdirs = 0;
	int r = 0;
	if (fstat(fd, &s) < 0)
		return -errno;
	im.dev = s.st_dev;
	im.xbuf = malloc(65536);
	im.vbuf = malloc(COW_XATTR_SIZE_MAX);
	im.target = malloc(COW_SYMLINK_MAX + 2);
	DIR *d = fdopendir(dup(fd));
	if (!im.xbuf || !im.vbuf || !im.target || !d)
		r = d ? -ENOMEM : -errno;
	if (d)
		rewinddir(d);
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = import_entry(&im, fd, dir, de->d_name, &subdirs);
	}
	if (d)
		closedir(d);
	if (r == 0)
		r = fix_link_counts(&im);
	*b = im.b; /* its batch, ino batch and count go on */
	free(im.where);
	free(im.xbuf);
	free(im.vbuf);
	free(im.target);
	free(im.hls);
	if (r == 0)
		*ret_subdirs = subdirs;
	return r;
}
