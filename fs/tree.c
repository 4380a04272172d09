/* SPDX-License-Identifier: MIT */
/*
 * Is it a tree?  The objects and names of an image must form one: a root
 * directory that no entry names, every other directory named by exactly
 * one entry of a directory (so no cycles and no directory under two
 * parents), entries only in directories, each entry's type that of the
 * object it names, every object reachable from the root, and nlink as
 * Linux counts it (a directory: 2 + its subdirectories; anything else:
 * the entries naming it).  Load checks a bundle with it before recording
 * anything; fsck checks every image's and client's merged tree.
 *
 * A view of layers over a base (every client, every snapshot) is held to
 * less: a rebase keeps the layer's own object where the new image made
 * another under the same name, hiding the image's, and keeps the nlink
 * the layer recorded; entries of a directory a layer removed stay in the
 * layers below, unseen.  There only what a mount would trip over counts:
 * cycles, a directory with two names, entries in non-directories, of the
 * wrong type or naming nothing, modes of no type, bad names, the root.
 *
 * Bounded memory: 32 bytes per object, nothing per entry, so that a
 * bundle's names can stream past (duplicate names in one directory are
 * for the caller: entries in order, or the database's key).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cow-private.h"

#define NO_PARENT UINT32_MAX

enum { ST_UNKNOWN, ST_ON_PATH, ST_REACHED, ST_LOST };

bool cow_mode_valid(uint32_t mode)
{
	if (mode & ~(uint32_t)(S_IFMT | 07777))
		return false;
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		return true;
	}
	return false;
}

static void problem(struct cow_tree *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct cow_tree *t, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	t->problems++;
	if (t->problem)
		t->problem(t->arg, line);
}

void cow_tree_init(struct cow_tree *t, void (*fn)(void *arg, const char *line), void *arg)
{
	memset(t, 0, sizeof(*t));
	t->problem = fn;
	t->arg = arg;
}

void cow_tree_release(struct cow_tree *t)
{
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

int cow_tree_add(struct cow_tree *t, uint64_t ino, uint32_t mode, uint32_t nlink)
{
	if (t->n && ino <= t->v[t->n - 1].ino)
		return -EINVAL; /* in order: a bundle's objects are */
	if (t->n >= NO_PARENT)
		return -E2BIG;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 1024;
		struct cow_tree_obj *n = realloc(t->v, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->v = n;
		t->cap = ncap;
	}
	t->v[t->n++] = (struct cow_tree_obj){.ino = ino, .mode = mode, .nlink = nlink, .parent = NO_PARENT};
	if (!cow_mode_valid(mode))
		problem(t, "object %llu has mode 0%o: no valid file type", (unsigned long long)ino, mode);
	return 0;
}

static struct cow_tree_obj *find(struct cow_tree *t, uint64_t ino)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->v[mid].ino == ino)
			return &t->v[mid];
		if (t->v[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int64_t cow_tree_index(struct cow_tree *t, uint64_t ino)
{
	struct cow_tree_obj *o = find(t, ino);
	return o ? o - t->v : -1;
}

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "regular file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symlink";
	case S_IFCHR:
		return "character device";
	case S_IFBLK:
		return "block device";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	}
	return "object of no valid type";
}

bool cow_tree_name_ok(const char *name, size_t len)
{
	return strnlen(name, len + 1) == len && cow_check_name(name) == 0;
}

int cow_tree_name(struct cow_tree *t, uint64_t parent, const char *name, size_t len, uint64_t ino, int type)
{
	uint64_t before = t->problems;
	unsigned long long p = parent, c = ino;
	if (!cow_tree_name_ok(name, len)) {
		problem(t,
			"an entry of %llu has a name that is not one (%zu bytes: empty, over %d, '.', '..', or with "
			"'/' or NUL)",
			p, len, COW_NAME_MAX);
		return -EINVAL;
	}
	struct cow_tree_obj *dp = find(t, parent), *ip = find(t, ino);
	if (!dp && t->layered)
		return 0; /* in a directory a higher layer removed: nobody sees it */
	if (!dp)
		problem(t, "entry '%s' is in %llu, which does not exist", name, p);
	else if (!S_ISDIR(dp->mode))
		problem(t, "entry '%s' is in %llu, a %s, not a directory", name, p, type_name(dp->mode));
	if (!ip) {
		problem(t, "entry '%s' in %llu names %llu, which does not exist", name, p, c);
	} else if (type != (int)IFTODT(ip->mode)) {
		problem(t, "entry '%s' in %llu says type %d, but %llu is a %s", name, p, type, c, type_name(ip->mode));
	}
	if (t->problems != before)
		return -EINVAL;
	if (ip->names < UINT32_MAX)
		ip->names++;
	if (S_ISDIR(ip->mode)) {
		if (ip->parent != NO_PARENT) {
			problem(t, "directory %llu is named twice: in %llu and as '%s' in %llu", c,
				(unsigned long long)t->v[ip->parent].ino, name, p);
			return -EINVAL;
		}
		ip->parent = (uint32_t)(dp - t->v);
		if (dp->subdirs < UINT32_MAX)
			dp->subdirs++;
	}
	return 0;
}

/* Is directory @i reachable from the root through its parents?  Marks
 * the whole way up, so that every directory is walked once. */
static int reach(struct cow_tree *t, size_t i, size_t root)
{
	size_t j = i;
	int end;
	for (;;) {
		struct cow_tree_obj *o = &t->v[j];
		if (j == root || o->state == ST_REACHED) {
			end = ST_REACHED;
			break;
		}
		if (o->state == ST_LOST || o->parent == NO_PARENT) {
			end = ST_LOST;
			break;
		}
		if (o->state == ST_ON_PATH) {
			problem(t, "directory %llu is in a cycle of directories, out of reach of the root",
				(unsigned long long)o->ino);
			end = ST_LOST;
			break;
		}
		o->state = ST_ON_PATH;
		j = o->parent;
	}
	for (j = i; t->v[j].state == ST_ON_PATH; j = t->v[j].parent)
		t->v[j].state = (uint8_t)end;
	return end;
}

int cow_tree_finish(struct cow_tree *t, uint64_t root)
{
	uint64_t before = t->problems;
	struct cow_tree_obj *rp = find(t, root);
	size_t ri = rp ? (size_t)(rp - t->v) : SIZE_MAX;
	if (!rp)
		problem(t, "the root %llu does not exist", (unsigned long long)root);
	else if (!S_ISDIR(rp->mode))
		problem(t, "the root %llu is a %s, not a directory", (unsigned long long)root, type_name(rp->mode));
	else if (rp->names)
		problem(t, "the root %llu is named by an entry (a cycle)", (unsigned long long)root);
	if (rp)
		rp->state = ST_REACHED;
	for (size_t i = 0; i < t->n; i++) {
		struct cow_tree_obj *o = &t->v[i];
		unsigned long long ino = o->ino;
		if (t->layered) {
			if (S_ISDIR(o->mode) && i != ri && o->parent != NO_PARENT)
				reach(t, i, ri); /* a cycle is a problem in any view */
			continue;
		}
		if (S_ISDIR(o->mode)) {
			if (o->nlink != 2 + (uint64_t)o->subdirs)
				problem(t, "directory %llu has nlink %u, not 2 + its %u subdirectories", ino, o->nlink,
					o->subdirs);
			if (i != ri && o->parent == NO_PARENT)
				problem(t, "directory %llu is in no directory", ino);
			else if (i != ri)
				reach(t, i, ri); /* says so if it finds a cycle */
		} else if (i == ri) {
			continue; /* said above */
		} else if (o->names == 0) {
			if (o->nlink || !t->allow_unlinked)
				problem(t, "%s %llu is in no directory", type_name(o->mode), ino);
		} else if (o->names != o->nlink) {
			problem(t, "%s %llu has nlink %u but %u name(s)", type_name(o->mode), ino, o->nlink, o->names);
		}
	}
	return t->problems == before ? 0 : -EINVAL;
}
