/* SPDX-License-Identifier: MIT */
/*
 * Whole images: flatten (an image chain materialised as one base layer)
 * and bundles (an image in one zlib-compressed, checksummed file that
 * another store can load).
 *
 * Both start from the image's merged tree, collected into memory by a
 * walk, then write a new layer in one transaction, data synced before the
 * commit, as import does.  A failure or cancel rolls back and removes the
 * new layer's data directory: the store is as before.
 *
 * Bundle format (inside one gzip stream; integers little-endian):
 *   header  "CRBUNDLE" u32 version u16 namelen name u64 root u64 nobjs u64 ndents
 *           u64 data (version 3: the bytes of all data extents)
 *   object  'O' u64 ino u32 mode nlink uid gid u64 rdev i64 size atime mtime ctime
 *           u32 targetlen target  u32 nxattrs { u16 namelen name u32 len value }
 *           regular files: { u64 off u64 len bytes }... u64 ~0 (extents, holes skipped)
 *   entry   'D' u64 parent u64 ino u8 type u16 namelen name
 *   trailer 'E' u64 nobjs u64 ndents u32 crc32 of every byte before the trailer
 * Objects come sorted by ino; inos are the exporting store's and are
 * renumbered on load.  Version 2: entries sorted by (parent, name), so
 * that a name given twice in one directory is seen at once; version 1
 * (entries in walk order) still loads, its duplicates found by the
 * database's key.  Version 3 declares in its header how many bytes of
 * file data follow: load checks that against the store's free space
 * before it writes anything and stops at that size whatever the stream
 * holds (a small bundle inflating to more than it declares is refused;
 * for versions 1 and 2 the first pass measures it).
 *
 * Load refuses what is not a tree (see tree.c) and anything else an
 * export never writes: modes of no file type, entry types other than the
 * object's, nlink other than the names', names that are none, sizes,
 * targets, device numbers, extents and xattrs that do not fit their
 * object.  Export and flatten write nlink as the tree counts it, and
 * refuse an image whose tree is broken (-EUCLEAN: fsck says what).
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include "cow-private.h"

#define BUNDLE_MAGIC "CRBUNDLE"
#define BUNDLE_VERSION 3 /* 1 and 2 still load */
/* room a load leaves free beside what it writes: the store's other
 * clients keep writing meanwhile */
#define LOAD_SPARE (64ULL << 20)
#define EXTENT_END UINT64_MAX

/* ---- the merged tree in memory ---- */

struct tobj {
	struct cow_irow row; /* target owned */
	uint64_t row_layer;
};

struct tdent {
	uint64_t parent, ino;
	uint8_t type;
	char *name;
};

struct tree {
	uint64_t root;
	struct tobj *objs;
	size_t nobjs, capobjs;
	struct tdent *dents;
	size_t ndents, capdents;
};

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->nobjs; i++)
		cow_irow_release(&t->objs[i].row);
	for (size_t i = 0; i < t->ndents; i++)
		free(t->dents[i].name);
	free(t->objs);
	free(t->dents);
}

static int collect(void *arg, const struct cow_walk_entry *e)
{
	struct tree *t = arg;
	/* a directory met twice (two parents, or a cycle), an object of no
	 * type: no bundle or flattened image may carry that */
	if ((!e->first && S_ISDIR(e->mode)) || !cow_mode_valid(e->mode))
		return -EUCLEAN;
	if (e->parent) {
		if (t->ndents == t->capdents) {
			size_t n = t->capdents ? t->capdents * 2 : 1024;
			struct tdent *d = realloc(t->dents, n * sizeof(*d));
			if (!d)
				return -ENOMEM;
			t->dents = d;
			t->capdents = n;
		}
		struct tdent *d = &t->dents[t->ndents];
		d->name = strdup(e->name);
		if (!d->name)
			return -ENOMEM;
		d->parent = e->parent;
		d->ino = e->ino;
		d->type = (uint8_t)IFTODT(e->mode);
		t->ndents++;
	}
	if (!e->first)
		return 0;
	if (t->nobjs == t->capobjs) {
		size_t n = t->capobjs ? t->capobjs * 2 : 1024;
		struct tobj *o = realloc(t->objs, n * sizeof(*o));
		if (!o)
			return -ENOMEM;
		t->objs = o;
		t->capobjs = n;
	}
	struct tobj *o = &t->objs[t->nobjs];
	int r = cow_irow_copy(&o->row, &e->ip->row);
	if (r < 0)
		return r;
	o->row_layer = e->row_layer;
	t->nobjs++;
	return 0;
}

static int cmp_tobj(const void *a, const void *b)
{
	uint64_t x = ((const struct tobj *)a)->row.ino, y = ((const struct tobj *)b)->row.ino;
	return x < y ? -1 : x > y;
}

static int cmp_tdent(const void *a, const void *b)
{
	const struct tdent *x = a, *y = b;
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	return strcmp(x->name, y->name);
}

static struct tobj *tree_find(struct tree *t, uint64_t ino)
{
	struct tobj key = {.row.ino = ino};
	return bsearch(&key, t->objs, t->nobjs, sizeof(*t->objs), cmp_tobj);
}

/* nlink as the tree has it: what a chain whose layers each kept their own
 * count (a rebased layer's directory rows, an import from a file system
 * that counts otherwise) may not say. */
static int tree_count_links(struct tree *t)
{
	uint32_t *names = calloc(t->nobjs ? t->nobjs : 1, sizeof(*names));
	uint32_t *subdirs = calloc(t->nobjs ? t->nobjs : 1, sizeof(*subdirs));
	if (!names || !subdirs) {
		free(names);
		free(subdirs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->ndents; i++) {
		struct tobj *c = tree_find(t, t->dents[i].ino), *p = tree_find(t, t->dents[i].parent);
		if (!c || !p)
			continue; /* cannot be: the walk met both */
		names[c - t->objs]++;
		if (S_ISDIR(c->row.mode))
			subdirs[p - t->objs]++;
	}
	for (size_t i = 0; i < t->nobjs; i++)
		t->objs[i].row.nlink = S_ISDIR(t->objs[i].row.mode) ? 2 + subdirs[i] : names[i];
	free(names);
	free(subdirs);
	return 0;
}

/* Collect image @name's merged tree. */
static int tree_load(struct cow_store *st, const char *name, struct tree *t)
{
	struct cow_view *v;
	int r = cow_view_open(st, NULL, name, COW_VIEW_READONLY, &v);
	if (r < 0)
		return r;
	memset(t, 0, sizeof(*t));
	t->root = v->root;
	r = cow_walk(v, 0, collect, t);
	cow_view_close(v);
	if (r < 0) {
		tree_free(t);
		return r;
	}
	qsort(t->objs, t->nobjs, sizeof(*t->objs), cmp_tobj);
	if (t->ndents)
		qsort(t->dents, t->ndents, sizeof(*t->dents), cmp_tdent);
	r = tree_count_links(t);
	if (r < 0)
		tree_free(t);
	return r;
}

static int tick(cow_progress_fn progress, void *arg, const char *what, uint64_t done, uint64_t total)
{
	if (progress && (done % 64 == 0 || done == total) && progress(arg, what, done, total))
		return -ECANCELED;
	return 0;
}

/* ---- flatten ---- */

int cow_image_flatten(struct cow_store *st, const char *name, const char *newname, cow_progress_fn progress, void *arg)
{
	struct tree t;
	int r;

	if (cow_name_check(newname) < 0)
		return -EINVAL;
	if (st->readonly)
		return -EROFS;
	r = tree_load(st, name, &t);
	if (r < 0)
		return r;
	struct cow_build b;
	struct cow_db *db = st->db;
	r = cow_build_begin(st, newname, t.root, &b);
	for (size_t i = 0; r == 0 && i < t.nobjs; i++) {
		struct tobj *o = &t.objs[i];
		struct cow_irow row = o->row;
		if (row.data_layer) {
			/* image data files are never written again: share them */
			r = cow_data_share(st, row.data_layer, b.layer, row.ino);
			row.data_layer = b.layer;
		}
		if (r == 0)
			r = cow_db_inode_put(db, b.layer, &row);
		if (r == 0)
			r = cow_db_xattr_copy(db, o->row_layer, b.layer, row.ino);
		if (r == 0)
			r = cow_build_step(&b);
		if (r == 0)
			r = tick(progress, arg, "flatten", i + 1, t.nobjs);
	}
	for (size_t i = 0; r == 0 && i < t.ndents; i++) {
		struct tdent *d = &t.dents[i];
		r = cow_db_dirent_put(db, b.layer, d->parent, d->name, d->ino, d->type);
		if (r == 0)
			r = cow_build_step(&b);
	}
	if (b.layer)
		r = cow_build_finish(&b, newname, r);
	tree_free(&t);
	return r;
}

/* ---- bundle writing ---- */

/* The bundle's gzip stream, deflated here rather than through gzwrite so
 * that every write goes through cow_pwrite_all: a full disk is -ENOSPC,
 * never a stale errno or a bare -EIO from gzclose. */
struct bw {
	int fd;
	z_stream z;
	bool zinit;
	unsigned char *out;
	uLong crc;
	int err;
};

#define BW_OUT (1 << 16)

static void bw_deflate(struct bw *b, int flush)
{
	do {
		b->z.next_out = b->out;
		b->z.avail_out = BW_OUT;
		if (deflate(&b->z, flush) == Z_STREAM_ERROR) {
			b->err = -EIO;
			return;
		}
		size_t have = BW_OUT - b->z.avail_out;
		int r = have ? cow_pwrite_all(b->fd, b->out, have, -1) : 0;
		if (r < 0) {
			b->err = r;
			return;
		}
	} while (b->z.avail_out == 0);
}

static int bw_open(struct bw *b, int fd)
{
	memset(b, 0, sizeof(*b));
	b->fd = fd;
	b->crc = crc32(0, NULL, 0);
	b->out = malloc(BW_OUT);
	/* windowBits 15 + 16: a gzip wrapper, as gzread expects */
	if (!b->out || deflateInit2(&b->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	b->zinit = true;
	return 0;
}

/* Finish the stream (with @r == 0) and free it; returns the first error. */
static int bw_close(struct bw *b, int r)
{
	if (r == 0 && b->err == 0) {
		b->z.next_in = NULL;
		b->z.avail_in = 0;
		bw_deflate(b, Z_FINISH);
	}
	if (b->zinit)
		deflateEnd(&b->z);
	free(b->out);
	return r ? r : b->err;
}

static void bw_put(struct bw *b, const void *p, size_t n)
{
	if (b->err || n == 0)
		return;
	b->crc = crc32(b->crc, p, (uInt)n);
	b->z.next_in = (Bytef *)p;
	b->z.avail_in = (uInt)n;
	bw_deflate(b, Z_NO_FLUSH);
}

static void bw_u8(struct bw *b, uint8_t v)
{
	bw_put(b, &v, 1);
}

static void bw_u16(struct bw *b, uint16_t v)
{
	v = htole16(v);
	bw_put(b, &v, 2);
}

static void bw_u32(struct bw *b, uint32_t v)
{
	v = htole32(v);
	bw_put(b, &v, 4);
}

static void bw_u64(struct bw *b, uint64_t v)
{
	v = htole64(v);
	bw_put(b, &v, 8);
}

struct xw {
	struct bw *b;
	uint32_t n;
	bool count;
};

static int xattr_out(void *arg, const char *name, const void *value, size_t size)
{
	struct xw *x = arg;
	if (x->count) {
		x->n++;
		return 0;
	}
	bw_u16(x->b, (uint16_t)strlen(name));
	bw_put(x->b, name, strlen(name));
	bw_u32(x->b, (uint32_t)size);
	bw_put(x->b, value, size);
	return 0;
}

/* The next data extent of @fd (a file of @size bytes) at or after @off:
 * true with [*ret_data, *ret_hole), false past the last one. */
static bool next_extent(int fd, off_t off, int64_t size, off_t *ret_data, off_t *ret_hole)
{
	if (off >= size)
		return false;
	off_t data = lseek(fd, off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO)
			return false;
		data = off;
	}
	if (data >= size)
		return false;
	off_t hole = lseek(fd, data, SEEK_HOLE);
	*ret_data = data;
	*ret_hole = hole < 0 || hole > size ? size : hole;
	return true;
}

/* The bytes of data extents the bundle will hold for @row (what put_data
 * writes); 0 on any error, which put_data then reports. */
static uint64_t data_bytes(struct cow_store *st, const struct cow_irow *row)
{
	if (!S_ISREG(row->mode) || !row->data_layer || row->size <= 0)
		return 0;
	int fd = cow_data_open(st, row->data_layer, row->ino, O_RDONLY, 0);
	if (fd < 0)
		return 0;
	uint64_t n = 0;
	for (off_t data, hole = 0; next_extent(fd, hole, row->size, &data, &hole);)
		n += (uint64_t)(hole - data);
	close(fd);
	return n;
}

static int put_data(struct cow_store *st, struct bw *b, const struct cow_irow *row, uint64_t *left)
{
	int fd = cow_data_open(st, row->data_layer, row->ino, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	static __thread char buf[1 << 16];
	int r = 0;
	for (off_t data, hole = 0; r == 0 && next_extent(fd, hole, row->size, &data, &hole);) {
		/* never more than the header declared: a file that grew
		 * since is an error, not a bundle that lies */
		if ((uint64_t)(hole - data) > *left) {
			r = -EAGAIN;
			break;
		}
		*left -= (uint64_t)(hole - data);
		bw_u64(b, (uint64_t)data);
		bw_u64(b, (uint64_t)(hole - data));
		for (off_t pos = data; pos < hole && r == 0;) {
			size_t want = (size_t)(hole - pos) < sizeof(buf) ? (size_t)(hole - pos) : sizeof(buf);
			ssize_t n = pread(fd, buf, want, pos);
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO; /* shorter than its record says */
				break;
			}
			bw_put(b, buf, (size_t)n);
			pos += n;
		}
	}
	bw_u64(b, EXTENT_END);
	close(fd);
	return r ? r : b->err;
}

static int put_object(struct cow_store *st, struct bw *b, const struct tobj *o, uint64_t *left)
{
	const struct cow_irow *row = &o->row;
	bw_u8(b, 'O');
	bw_u64(b, row->ino);
	bw_u32(b, row->mode);
	bw_u32(b, row->nlink);
	bw_u32(b, row->uid);
	bw_u32(b, row->gid);
	bw_u64(b, row->rdev);
	bw_u64(b, (uint64_t)row->size);
	bw_u64(b, (uint64_t)row->atime);
	bw_u64(b, (uint64_t)row->mtime);
	bw_u64(b, (uint64_t)row->ctime);
	size_t tl = row->target ? strlen(row->target) : 0;
	bw_u32(b, (uint32_t)tl);
	bw_put(b, row->target, tl);
	struct xw x = {.b = b, .count = true};
	cow_db_lock(st->db);
	int r = cow_db_xattr_foreach(st->db, o->row_layer, row->ino, xattr_out, &x);
	bw_u32(b, x.n);
	x.count = false;
	if (r == 0)
		r = cow_db_xattr_foreach(st->db, o->row_layer, row->ino, xattr_out, &x);
	cow_db_unlock(st->db);
	if (r == 0 && S_ISREG(row->mode)) {
		if (row->data_layer && row->size > 0)
			r = put_data(st, b, row, left);
		else
			bw_u64(b, EXTENT_END);
	}
	return r ? r : b->err;
}

int cow_image_export(struct cow_store *st, const char *name, const char *path, cow_progress_fn progress, void *arg)
{
	struct tree t;
	struct bw b = {0};
	char *tmp = NULL;
	int fd = -1, r;

	r = tree_load(st, name, &t);
	if (r < 0)
		return r;
	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		r = -ENOMEM;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0644 & ~mask);
	r = bw_open(&b, fd);
	if (r < 0) {
		bw_close(&b, r);
		goto out;
	}
	size_t nl = strlen(name);
	bw_put(&b, BUNDLE_MAGIC, 8);
	bw_u32(&b, BUNDLE_VERSION);
	bw_u16(&b, (uint16_t)nl);
	bw_put(&b, name, nl);
	uint64_t data = 0;
	for (size_t i = 0; i < t.nobjs; i++)
		data += data_bytes(st, &t.objs[i].row);
	bw_u64(&b, t.root);
	bw_u64(&b, t.nobjs);
	bw_u64(&b, t.ndents);
	bw_u64(&b, data);
	r = b.err;
	uint64_t left = data;
	for (size_t i = 0; r == 0 && i < t.nobjs; i++) {
		r = put_object(st, &b, &t.objs[i], &left);
		if (r == 0)
			r = tick(progress, arg, "export", i + 1, t.nobjs);
	}
	for (size_t i = 0; r == 0 && i < t.ndents; i++) {
		struct tdent *d = &t.dents[i];
		size_t n = strlen(d->name);
		bw_u8(&b, 'D');
		bw_u64(&b, d->parent);
		bw_u64(&b, d->ino);
		bw_u8(&b, d->type);
		bw_u16(&b, (uint16_t)n);
		bw_put(&b, d->name, n);
		r = b.err;
	}
	if (r == 0 && left)
		r = -EAGAIN; /* a file shrank while it was written */
	if (r == 0) {
		uint32_t crc = (uint32_t)b.crc;
		bw_u8(&b, 'E');
		bw_u64(&b, t.nobjs);
		bw_u64(&b, t.ndents);
		bw_u32(&b, crc);
		r = b.err;
	}
	r = bw_close(&b, r);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (r < 0 && tmp)
		unlink(tmp);
	free(tmp);
	tree_free(&t);
	return r;
}

/* ---- bundle loading ---- */

struct br {
	gzFile gz;
	uLong crc;
	int err;
};

static int br_get(struct br *b, void *p, size_t n)
{
	if (b->err)
		return b->err;
	if (n == 0)
		return 0;
	int got = gzread(b->gz, p, (unsigned)n);
	if (got != (int)n) {
		b->err = -EBADMSG; /* truncated, or not a valid gzip stream */
		return b->err;
	}
	b->crc = crc32(b->crc, p, (uInt)n);
	return 0;
}

static uint8_t br_u8(struct br *b)
{
	uint8_t v = 0;
	br_get(b, &v, 1);
	return v;
}

static uint16_t br_u16(struct br *b)
{
	uint16_t v = 0;
	br_get(b, &v, 2);
	return le16toh(v);
}

static uint32_t br_u32(struct br *b)
{
	uint32_t v = 0;
	br_get(b, &v, 4);
	return le32toh(v);
}

static uint64_t br_u64(struct br *b)
{
	uint64_t v = 0;
	br_get(b, &v, 8);
	return le64toh(v);
}

struct load {
	struct cow_store *st;
	struct br b;
	uint32_t version;
	uint64_t layer;
	struct cow_tree tree; /* the objects by old ino: index i became first_ino + i */
	uint64_t nobjs, ndents, first_ino;
	uint64_t data;	    /* bytes of data extents: declared (version 3) or measured by the first pass */
	bool data_known;    /* data bounds what may be read */
	uint64_t data_seen; /* read so far in this pass */
	char *buf;
	uint64_t prev_parent, ndents_seen; /* version 2: the entry before, for the order */
	char prev_name[COW_NAME_MAX + 1];
	char *why; /* what is wrong, for the caller */
	size_t whysize;
};

/* Say what is wrong with the bundle (the first thing only); -EBADMSG. */
static int bad(struct load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct load *l, const char *fmt, ...)
{
	if (l->why && l->whysize && !l->why[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(l->why, l->whysize, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static void tree_problem(void *arg, const char *line)
{
	bad(arg, "%s", line);
}

/* The index of bundle object @old, -1 if the bundle has none. */
static int64_t index_of(struct load *l, uint64_t old)
{
	return cow_tree_index(&l->tree, old);
}

/* The new ino of bundle object @old, 0 if the bundle has none. */
static uint64_t map_ino(struct load *l, uint64_t old)
{
	int64_t i = index_of(l, old);
	return i < 0 ? 0 : l->first_ino + (uint64_t)i;
}

/* The records are read twice: a first pass (l->layer 0) checks every one
 * of them and collects the objects, the second records them. */

static int get_data(struct load *l, struct cow_irow *row)
{
	int fd = -1;
	if (l->layer) {
		fd = cow_data_open(l->st, l->layer, row->ino, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			return fd;
	}
	int r = 0;
	uint64_t end = 0; /* extents come in order, apart */
	for (;;) {
		uint64_t off = br_u64(&l->b);
		if ((r = l->b.err) < 0 || off == EXTENT_END)
			break;
		uint64_t len = br_u64(&l->b);
		if (l->b.err || off < end || off > (uint64_t)row->size || len == 0 || len > (uint64_t)row->size - off) {
			r = bad(l, "object %llu: data extent %llu+%llu out of order or past its size %lld",
				(unsigned long long)row->ino, (unsigned long long)off, (unsigned long long)len,
				(long long)row->size);
			break;
		}
		end = off + len;
		if (l->data_known && len > l->data - l->data_seen) {
			r = bad(l, "the bundle holds more file data than its %llu bytes", (unsigned long long)l->data);
			break;
		}
		l->data_seen += len;
		while (len > 0 && r == 0) {
			size_t n = len < (1 << 16) ? (size_t)len : (1 << 16);
			r = br_get(&l->b, l->buf, n);
			if (r == 0 && fd >= 0)
				r = cow_pwrite_all(fd, l->buf, n, (off_t)off);
			off += n;
			len -= n;
		}
		if (r < 0)
			break;
	}
	if (fd >= 0) {
		if (r == 0 && ftruncate(fd, row->size) < 0)
			r = -errno;
		close(fd);
		if (r == 0)
			row->data_layer = l->layer;
	}
	return r;
}

static bool xattr_name_ok(const char *name)
{
	static const char *const prefixes[] = {"user.", "trusted.", "security.", "system."};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		if (!strncmp(name, prefixes[i], n) && name[n])
			return true;
	}
	return false;
}

/* What an object's fields must be, whatever the tree: @tl the length of
 * its symlink target. */
static int check_row(struct load *l, uint64_t old, const struct cow_irow *row, uint32_t tl)
{
	unsigned long long o = old;
	if (!cow_mode_valid(row->mode))
		return bad(l, "object %llu has mode 0%o: no valid file type", o, row->mode);
	if (row->uid == UINT32_MAX || row->gid == UINT32_MAX)
		return bad(l, "object %llu is owned by -1", o);
	if (row->rdev && !S_ISCHR(row->mode) && !S_ISBLK(row->mode))
		return bad(l, "object %llu has a device number but is no device", o);
	if (row->size < 0 ||
	    (S_ISLNK(row->mode) ? (uint64_t)row->size != tl || tl == 0 : !S_ISREG(row->mode) && row->size != 0))
		return bad(l, "object %llu has size %lld, which a %s cannot have", o, (long long)row->size,
			   S_ISLNK(row->mode) ? "symlink of that target" : "non-regular file");
	if (tl > COW_SYMLINK_MAX || (tl && !S_ISLNK(row->mode)))
		return bad(l, "object %llu has a symlink target of %u bytes", o, tl);
	return 0;
}

static int get_object(struct load *l, uint64_t index)
{
	struct br *b = &l->b;
	struct cow_irow row = {0};
	char target[COW_SYMLINK_MAX + 1];
	if (br_u8(b) != 'O')
		return bad(l, "record %llu is not an object", (unsigned long long)index);
	uint64_t old = br_u64(b);
	if (b->err)
		return -EBADMSG;
	if (l->layer && (uint64_t)index_of(l, old) != index)
		return bad(l, "the file changed between the passes");
	row.ino = l->first_ino + index;
	row.mode = br_u32(b);
	row.nlink = br_u32(b);
	row.uid = br_u32(b);
	row.gid = br_u32(b);
	row.rdev = br_u64(b);
	row.size = (int64_t)br_u64(b);
	row.atime = (int64_t)br_u64(b);
	row.mtime = (int64_t)br_u64(b);
	row.ctime = (int64_t)br_u64(b);
	uint32_t tl = br_u32(b);
	if (b->err)
		return -EBADMSG;
	int r = check_row(l, old, &row, tl);
	if (r < 0)
		return r;
	if (!l->layer) {
		/* in order: the second pass maps them by index */
		r = cow_tree_add(&l->tree, old, row.mode, row.nlink);
		if (r == -EINVAL)
			return bad(l, "object %llu comes after %llu: objects out of order", (unsigned long long)old,
				   (unsigned long long)l->tree.v[l->tree.n - 1].ino);
		if (r < 0)
			return r;
	}
	if (S_ISLNK(row.mode)) {
		if (br_get(b, target, tl) < 0)
			return -EBADMSG;
		target[tl] = 0;
		if (memchr(target, 0, tl))
			return bad(l, "symlink %llu has a NUL in its target", (unsigned long long)old);
		row.target = target;
	}
	r = l->layer ? cow_db_inode_put(l->st->db, l->layer, &row) : 0;
	uint32_t nx = br_u32(b);
	char name[COW_XATTR_NAME_MAX + 1], prev[COW_XATTR_NAME_MAX + 1] = "";
	struct cow_xattr_room room = {0}; /* room.names: what listxattr gives */
	for (uint32_t i = 0; r == 0 && i < nx; i++) {
		uint16_t n = br_u16(b);
		if (b->err || n == 0 || n > COW_XATTR_NAME_MAX || br_get(b, name, n) < 0)
			return b->err ? -EBADMSG
				      : bad(l, "object %llu has an xattr name of %u bytes", (unsigned long long)old, n);
		name[n] = 0;
		if (memchr(name, 0, n) || !xattr_name_ok(name))
			return bad(l, "object %llu has an xattr of no namespace", (unsigned long long)old);
		if (i && strcmp(prev, name) >= 0)
			return bad(l, "object %llu has xattr '%s' twice or out of order", (unsigned long long)old,
				   name);
		if (room.names + n + 1u > COW_XATTR_LIST_MAX)
			return bad(l, "object %llu has more xattr names than listxattr can give",
				   (unsigned long long)old);
		memcpy(prev, name, n + 1u);
		uint32_t vl = br_u32(b);
		if (b->err || vl > COW_XATTR_SIZE_MAX || br_get(b, l->buf, vl) < 0)
			return b->err
				   ? -EBADMSG
				   : bad(l, "object %llu: xattr '%s' of %u bytes", (unsigned long long)old, name, vl);
		if (cow_xattr_room_add(&room, n, vl) < 0)
			return -ENOSPC; /* more than one object may hold */
		if (l->layer)
			r = cow_db_xattr_put(l->st->db, l->layer, row.ino, name, l->buf, vl);
	}
	if (r == 0 && S_ISREG(row.mode)) {
		r = get_data(l, &row);
		if (r == 0 && row.data_layer) /* record where the content is */
			r = cow_db_inode_put(l->st->db, l->layer, &row);
	}
	return r ? r : b->err;
}

static int get_dent(struct load *l)
{
	struct br *b = &l->b;
	char name[COW_NAME_MAX + 1];
	if (br_u8(b) != 'D')
		return bad(l, "a record after the objects is not an entry");
	uint64_t parent = br_u64(b), ino = br_u64(b);
	uint8_t type = br_u8(b);
	uint16_t n = br_u16(b);
	if (b->err)
		return -EBADMSG;
	if (n == 0 || n > COW_NAME_MAX)
		return bad(l, "an entry of %llu has a name of %u bytes", (unsigned long long)parent, n);
	if (br_get(b, name, n) < 0)
		return -EBADMSG;
	name[n] = 0;
	if (!l->layer) {
		if (cow_tree_name(&l->tree, parent, name, n, ino, type) < 0)
			return -EBADMSG;
		if (l->version >= 2 && l->ndents_seen &&
		    (parent < l->prev_parent || (parent == l->prev_parent && strcmp(name, l->prev_name) <= 0)))
			return bad(l, "entry '%s' of %llu: entries out of order, or a name given twice", name,
				   (unsigned long long)parent);
		l->ndents_seen++;
		l->prev_parent = parent;
		memcpy(l->prev_name, name, n + 1u);
		return 0;
	}
	int64_t pi = index_of(l, parent), ii = index_of(l, ino);
	if (pi < 0 || ii < 0)
		return bad(l, "the file changed between the passes");
	int r = cow_db_dirent_add(l->st->db, l->layer, l->first_ino + (uint64_t)pi, name, l->first_ino + (uint64_t)ii,
				  type);
	if (r == -EEXIST)
		return bad(l, "directory %llu has two entries named '%s'", (unsigned long long)parent, name);
	return r;
}

/* The trailer: the counts and the checksum of everything before it. */
static int get_trailer(struct load *l)
{
	struct br *b = &l->b;
	uint32_t crc = (uint32_t)b->crc;
	if (br_u8(b) != 'E' || br_u64(b) != l->nobjs || br_u64(b) != l->ndents || b->err)
		return b->err ? -EBADMSG : bad(l, "no trailer after the records the header counts");
	if (br_u32(b) != crc || b->err)
		return b->err ? -EBADMSG : bad(l, "the checksum does not match: the bundle was altered");
	return 0;
}

/* The header, up to the object and entry counts. */
static int read_index(struct load *l, char *ret_name, uint64_t *ret_root)
{
	struct br *b = &l->b;
	char magic[8];
	if (br_get(b, magic, 8) < 0 || memcmp(magic, BUNDLE_MAGIC, 8))
		return -EBADMSG;
	l->version = br_u32(b);
	if (b->err)
		return b->err;
	if (l->version < 1 || l->version > BUNDLE_VERSION)
		return -EPROTO;
	uint16_t nl = br_u16(b);
	if (b->err || nl == 0 || nl > COW_ENTITY_NAME_MAX || br_get(b, ret_name, nl) < 0)
		return -EBADMSG;
	ret_name[nl] = 0;
	*ret_root = br_u64(b);
	l->nobjs = br_u64(b);
	l->ndents = br_u64(b);
	if (l->version >= 3) {
		l->data = br_u64(b);
		l->data_known = true;
	}
	l->data_seen = 0;
	if (b->err)
		return -EBADMSG;
	if (l->nobjs == 0 || l->nobjs >= UINT32_MAX || l->ndents > (1ULL << 34))
		return bad(l, "the header counts %llu objects and %llu entries", (unsigned long long)l->nobjs,
			   (unsigned long long)l->ndents);
	return 0;
}

static int open_bundle(struct br *b, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* zlib would read an uncompressed file through: a bundle is gzip */
	unsigned char magic[2];
	if (pread(fd, magic, 2, 0) != 2 || magic[0] != 0x1f || magic[1] != 0x8b) {
		close(fd);
		return -EBADMSG;
	}
	memset(b, 0, sizeof(*b));
	b->crc = crc32(0, NULL, 0);
	b->gz = gzdopen(fd, "rb");
	if (!b->gz) {
		close(fd);
		return -ENOMEM;
	}
	gzbuffer(b->gz, 1 << 17);
	return 0;
}

/* Is there room in the store for the data the bundle holds (l->data)?
 * 0, or -ENOSPC saying how much is missing. */
static int room_for(struct load *l)
{
	struct statvfs sv;
	if (fstatvfs(l->st->datafd, &sv) < 0)
		return -errno;
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	/* data, one block per object at most for its metadata, a spare */
	uint64_t need = l->data + l->nobjs * 4096ULL + LOAD_SPARE;
	if (need <= avail && need >= l->data)
		return 0;
	if (l->why && l->whysize && !l->why[0])
		snprintf(l->why, l->whysize,
			 "the bundle holds %llu bytes of file data; the store has %llu bytes free (it needs %llu "
			 "with room for the records and 64 MiB to spare)",
			 (unsigned long long)l->data, (unsigned long long)avail, (unsigned long long)need);
	return -ENOSPC;
}

/* First pass: every record checks out, the whole stream decompresses, the
 * checksum holds, the object inos come in order, and it is a tree.  What
 * it keeps is the tree's 32 bytes per object (see tree.c). */
static int verify(struct load *l, const char *path, char *name, uint64_t *root, cow_progress_fn progress, void *arg)
{
	int r = open_bundle(&l->b, path);
	if (r < 0)
		return r;
	struct br *b = &l->b;
	r = read_index(l, name, root);
	if (r == 0 && l->data_known)
		r = room_for(l);
	for (uint64_t i = 0; r == 0 && i < l->nobjs; i++) {
		r = get_object(l, i);
		if (r == 0)
			r = tick(progress, arg, "verify", i + 1, l->nobjs);
	}
	if (r == 0 && l->data_known && l->data_seen != l->data)
		r = bad(l, "the bundle holds %llu bytes of file data, not the %llu its header declares",
			(unsigned long long)l->data_seen, (unsigned long long)l->data);
	for (uint64_t i = 0; r == 0 && i < l->ndents; i++)
		r = get_dent(l);
	if (r == 0)
		r = get_trailer(l);
	if (r == 0 && !l->data_known) {
		/* versions 1 and 2 declare nothing: what this pass read */
		l->data = l->data_seen;
		l->data_known = true;
	}
	if (r == 0 && cow_tree_finish(&l->tree, *root) < 0)
		r = -EBADMSG;
	if (r == 0) {
		/* nothing may follow, and the gzip trailer must check out */
		char extra;
		if (gzread(b->gz, &extra, 1) != 0 || !gzeof(b->gz))
			r = bad(l, "data follows the bundle's trailer");
		int zerr;
		gzerror(b->gz, &zerr);
		if (r == 0 && zerr != Z_OK && zerr != Z_STREAM_END)
			r = -EBADMSG;
	}
	gzclose(b->gz);
	b->gz = NULL;
	return r;
}

int cow_image_load(struct cow_store *st, const char *path, const char *name, cow_progress_fn progress, void *arg,
		   char *why, size_t whysize)
{
	struct load l = {.st = st, .why = why, .whysize = whysize};
	char bname[COW_ENTITY_NAME_MAX + 1];
	uint64_t root;
	int r;

	if (st->readonly)
		return -EROFS;
	if (name && cow_name_check(name) < 0)
		return -EINVAL;
	if (why && whysize)
		why[0] = 0;
	cow_tree_init(&l.tree, tree_problem, &l);
	l.buf = malloc(COW_XATTR_SIZE_MAX + 1);
	if (!l.buf)
		return -ENOMEM;
	r = verify(&l, path, bname, &root, progress, arg);
	if (r < 0)
		goto out;
	if (!name)
		name = bname;
	if (cow_name_check(name) < 0) {
		r = bad(&l, "the image name it records is not a valid name");
		goto out;
	}
	r = open_bundle(&l.b, path);
	if (r < 0)
		goto out;
	r = room_for(&l);
	if (r < 0)
		goto out_gz;
	char again[COW_ENTITY_NAME_MAX + 1];
	uint64_t root2, nobjs = l.nobjs, data = l.data;
	r = read_index(&l, again, &root2);
	if (r == 0 && (root2 != root || l.nobjs != nobjs || (l.data_known && l.data != data)))
		r = bad(&l, "the file changed between the passes");
	/* the second pass stops at what the first one found */
	l.data = data;
	l.data_known = true;
	if (r < 0)
		goto out_gz;
	struct cow_db *db = st->db;
	cow_db_lock(db);
	r = cow_db_begin(db);
	if (r == 0) {
		r = cow_db_alloc_inos(db, l.nobjs, &l.first_ino);
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	cow_db_unlock(db);
	struct cow_build b = {0};
	if (r == 0)
		r = cow_build_begin(st, name, map_ino(&l, root), &b);
	l.layer = b.layer;
	for (uint64_t i = 0; r == 0 && i < l.nobjs; i++) {
		r = get_object(&l, i);
		if (r == 0)
			r = cow_build_step(&b);
		if (r == 0)
			r = tick(progress, arg, "load", i + 1, l.nobjs);
	}
	for (uint64_t i = 0; r == 0 && i < l.ndents; i++) {
		r = get_dent(&l);
		if (r == 0)
			r = cow_build_step(&b);
	}
	if (r == 0)
		r = get_trailer(&l);
	if (b.layer)
		r = cow_build_finish(&b, name, r);
out_gz:
	gzclose(l.b.gz);
out:
	if (r == -EBADMSG)
		bad(&l, "truncated, damaged or not a bundle");
	cow_tree_release(&l.tree);
	free(l.buf);
	return r;
}
