/* SPDX-License-Identifier: MIT */
/*
 * Importing a disk image (a Raspberry Pi OS or Debian raspi .img, raw or
 * xz-compressed): its ext4 root partition becomes the image, its FAT boot
 * partition the image's /boot/firmware.
 *
 * Nothing is mounted and no loop device is used.  libblkid reads the
 * partition table and tells the file systems apart, libext2fs reads the
 * root partition, and mtools copies the boot partition out into a private
 * directory that is imported as a vfat mount shows it.  A compressed image
 * is first decompressed (sparsely) into an unnamed file in the store's
 * directory, so nothing is left behind by a crash.
 *
 * The image is hostile input: every block a file maps is checked against
 * the file system's size, which is checked against its partition's, and
 * the partitions against the image; a directory seen twice (a loop) is
 * refused; names, symlink targets and xattrs are bounded as the directory
 * import bounds them.  Any failure leaves the store as it was.
 */
#include <blkid.h>
#include <dirent.h>
#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <lzma.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cow-private.h"

extern char **environ;

#define XZ_CHUNK (1 << 20)
#define XZ_MIN_FREE (256ull << 20) /* left free on the store's file system by decompression */

struct seen { /* an ext4 inode already imported */
	uint32_t ino;
	uint64_t id;
	uint32_t names; /* names imported: its nlink in the image */
	bool dir;
};

struct disk {
	struct cow_store *st;
	struct cow_build b;
	ext2_filsys fs;
	struct seen *seen; /* open addressing, by ext4 inode number */
	size_t nseen, capseen;
	char *buf; /* one I/O chunk */
	size_t bufsize;
	uint64_t total;
	cow_progress_fn progress;
	void *arg;
	const char *firmware_path; /* where the boot partition goes */
	uint64_t firmware_dir;	   /* its object, once met in the root partition */
	uint32_t hidden;	   /* entries of the root partition's /boot/firmware left out */
	char where[512];	   /* after a failure: the path it is about */
};

static struct seen *seen_find(struct disk *d, uint32_t ino, bool add)
{
	if (add && (d->nseen + 1) * 2 > d->capseen) {
		size_t nc = d->capseen ? d->capseen * 2 : 1024;
		struct seen *n = calloc(nc, sizeof(*n));
		if (!n)
			return NULL;
		for (size_t i = 0; i < d->capseen; i++) {
			if (!d->seen[i].ino)
				continue;
			size_t j = d->seen[i].ino * 2654435761u % nc;
			while (n[j].ino)
				j = (j + 1) % nc;
			n[j] = d->seen[i];
		}
		free(d->seen);
		d->seen = n;
		d->capseen = nc;
	}
	if (!d->capseen)
		return NULL;
	size_t j = ino * 2654435761u % d->capseen;
	while (d->seen[j].ino && d->seen[j].ino != ino)
		j = (j + 1) % d->capseen;
	if (d->seen[j].ino == ino)
		return &d->seen[j];
	if (!add)
		return NULL;
	d->seen[j].ino = ino;
	d->nseen++;
	return &d->seen[j];
}

static int ext_err(errcode_t e)
{
	if (e == ENOMEM || e == EXT2_ET_NO_MEMORY)
		return -ENOMEM;
	if (e > 0 && e < 4096)
		return -(int)e;
	return -EIO;
}

/* seconds and nanoseconds of an inode time with its _extra word */
static int64_t ext_time(uint32_t base, uint32_t extra, bool has_extra)
{
	int64_t sec = (int32_t)base;
	int64_t nsec = 0;
	if (has_extra) {
		sec += (int64_t)(extra & EXT4_EPOCH_MASK) << 32;
		nsec = extra >> EXT4_EPOCH_BITS;
		if (nsec > 999999999)
			nsec = 999999999;
	}
	return sec * 1000000000 + nsec;
}

#define HAS_EXTRA(inode, field)                                                                                        \
	((size_t)EXT2_GOOD_OLD_INODE_SIZE + (inode)->i_extra_isize >=                                                  \
	 offsetof(struct ext2_inode_large, field) + sizeof((inode)->field))

static struct cow_irow row_from_inode(uint64_t id, const struct ext2_inode_large *in)
{
	struct cow_irow row = {
	    .ino = id,
	    .mode = in->i_mode,
	    .nlink = 1,
	    .uid = inode_uid(*in),
	    .gid = inode_gid(*in),
	    .atime = ext_time(in->i_atime, in->i_atime_extra, HAS_EXTRA(in, i_atime_extra)),
	    .mtime = ext_time(in->i_mtime, in->i_mtime_extra, HAS_EXTRA(in, i_mtime_extra)),
	    .ctime = ext_time(in->i_ctime, in->i_ctime_extra, HAS_EXTRA(in, i_ctime_extra)),
	};
	if (S_ISCHR(in->i_mode) || S_ISBLK(in->i_mode)) {
		uint32_t b0 = in->i_block[0], b1 = in->i_block[1];
		if (b0)
			row.rdev = makedev((b0 >> 8) & 0xff, b0 & 0xff);
		else
			row.rdev = makedev((b1 & 0xfff00) >> 8, (b1 & 0xff) | ((b1 >> 12) & 0xfff00));
	}
	return row;
}

/* Set the nlink of object @id of the layer being built to @nlink, or
 * (with @nlink 0) add one to it. */
static int set_nlink(struct disk *d, uint64_t id, uint32_t nlink)
{
	struct cow_irow row;
	int r = cow_db_inode_get(d->st->db, d->b.layer, id, &row);
	if (r < 0)
		return r;
	row.nlink = nlink ? nlink : row.nlink + 1;
	r = cow_db_inode_put(d->st->db, d->b.layer, &row);
	cow_irow_release(&row);
	return r;
}

/* ---- file data ---- */

struct copy {
	struct disk *d;
	int out;
	uint64_t size; /* the file's */
	int r;
};

/* Copy @count blocks from @pblk to logical block @lblk of the file. */
static int copy_blocks(struct copy *c, blk64_t lblk, blk64_t pblk, blk64_t count)
{
	struct disk *d = c->d;
	ext2_filsys fs = d->fs;
	uint64_t bs = fs->blocksize;
	if (pblk < fs->super->s_first_data_block || pblk >= ext2fs_blocks_count(fs->super) ||
	    count > ext2fs_blocks_count(fs->super) - pblk)
		return cow_import_err(d->st, -EIO, "a file maps block %llu, outside its file system",
				      (unsigned long long)pblk);
	while (count > 0) {
		uint64_t off = (uint64_t)lblk * bs;
		if (off >= c->size)
			return 0; /* past the end: never part of the file */
		blk64_t n = d->bufsize / bs;
		if (n > count)
			n = count;
		errcode_t e = io_channel_read_blk64(fs->io, pblk, (int)n, d->buf);
		if (e)
			return cow_import_err(d->st, ext_err(e), "cannot read block %llu of the root partition",
					      (unsigned long long)pblk);
		uint64_t len = n * bs;
		if (len > c->size - off)
			len = c->size - off;
		int r = cow_pwrite_all(c->out, d->buf, len, (off_t)off);
		if (r < 0)
			return r;
		lblk += n;
		pblk += n;
		count -= n;
	}
	return 0;
}

static int block_fn(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt, blk64_t ref_blk, int ref_offset, void *priv)
{
	(void)fs, (void)ref_blk, (void)ref_offset;
	struct copy *c = priv;
	if (blockcnt < 0)
		return 0;
	c->r = copy_blocks(c, (blk64_t)blockcnt, *blocknr, 1);
	return c->r < 0 ? BLOCK_ABORT : 0;
}

static int copy_extents(struct copy *c, ext2_ino_t ino, struct ext2_inode *inode)
{
	struct disk *d = c->d;
	ext2_extent_handle_t h;
	errcode_t e = ext2fs_extent_open2(d->fs, ino, inode, &h);
	if (e)
		return cow_import_err(d->st, ext_err(e), "cannot read the extents of inode %u", ino);
	struct ext2fs_extent ex;
	int r = 0;
	uint64_t steps = 0, limit = ext2fs_blocks_count(d->fs->super) + 16;
	e = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &ex);
	while (!e && r == 0) {
		if (++steps > limit) {
			r = cow_import_err(d->st, -EIO, "the extent tree of inode %u does not end", ino);
			break;
		}
		if ((ex.e_flags & EXT2_EXTENT_FLAGS_LEAF) && !(ex.e_flags & EXT2_EXTENT_FLAGS_UNINIT) && ex.e_len)
			r = copy_blocks(c, ex.e_lblk, ex.e_pblk, ex.e_len);
		if (r == 0)
			e = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &ex);
	}
	if (r == 0 && e && e != EXT2_ET_EXTENT_NO_NEXT)
		r = cow_import_err(d->st, ext_err(e), "cannot read the extents of inode %u", ino);
	ext2fs_extent_free(h);
	return r;
}

static int copy_data(struct disk *d, ext2_ino_t ino, struct ext2_inode_large *in, uint64_t id, uint64_t size)
{
	int out = cow_data_open(d->st, d->b.layer, id, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0)
		return out;
	struct copy c = {.d = d, .out = out, .size = size};
	int r = 0;
	struct ext2_inode *inode = (struct ext2_inode *)in;
	if (in->i_flags & EXT4_INLINE_DATA_FL) {
		size_t n = 0;
		errcode_t e = ext2fs_inline_data_size(d->fs, ino, &n);
		if (!e && n > d->bufsize)
			e = EXT2_ET_INLINE_DATA_NO_SPACE;
		if (!e)
			e = ext2fs_inline_data_get(d->fs, ino, inode, d->buf, &n);
		if (e)
			r = cow_import_err(d->st, ext_err(e), "cannot read the inline data of inode %u", ino);
		else
			r = cow_pwrite_all(out, d->buf, n < size ? n : size, 0);
	} else if (in->i_flags & EXT4_EXTENTS_FL) {
		r = copy_extents(&c, ino, inode);
	} else {
		errcode_t e =
		    ext2fs_block_iterate3(d->fs, ino, BLOCK_FLAG_DATA_ONLY | BLOCK_FLAG_READ_ONLY, NULL, block_fn, &c);
		r = c.r;
		if (r == 0 && e)
			r = cow_import_err(d->st, ext_err(e), "cannot read the blocks of inode %u", ino);
	}
	if (r == 0 && ftruncate(out, (off_t)size) < 0)
		r = -errno;
	close(out);
	return r;
}

/* ---- objects ---- */

struct xa {
	struct disk *d;
	struct ext2_xattr_handle *h;
	uint64_t id;
	struct cow_xattr_room room;
	int r;
};

static int xattr_fn(char *name, char *value, size_t len, void *priv)
{
	struct xa *x = priv;
	if (!strcmp(name, "system.data"))
		return 0; /* inline data, not an xattr */
	void *acl = NULL;
	if (!strcmp(name, "system.posix_acl_access") || !strcmp(name, "system.posix_acl_default")) {
		/* ext4 keeps ACLs in a format of its own; this read converts */
		errcode_t e = ext2fs_xattr_get(x->h, name, &acl, &len);
		if (e) {
			x->r = cow_import_err(x->d->st, ext_err(e), "cannot read the ACL of an inode");
			return XATTR_ABORT;
		}
		value = acl;
	}
	size_t nl = strlen(name);
	if (nl == 0 || nl > 255 || len > COW_XATTR_SIZE_MAX || cow_xattr_room_add(&x->room, nl, len) < 0) {
		x->r = cow_import_err(x->d->st, -E2BIG, "an xattr is larger than an object may hold");
		ext2fs_free_mem(&acl);
		return XATTR_ABORT;
	}
	x->r = cow_db_xattr_put(x->d->st->db, x->d->b.layer, x->id, name, value, len);
	ext2fs_free_mem(&acl);
	return x->r < 0 ? XATTR_ABORT : 0;
}

static int import_xattrs(struct disk *d, ext2_ino_t ino, uint64_t id)
{
	struct ext2_xattr_handle *h;
	errcode_t e = ext2fs_xattrs_open(d->fs, ino, &h);
	if (e == EXT2_ET_MISSING_EA_FEATURE)
		return 0;
	if (e)
		return cow_import_err(d->st, ext_err(e), "cannot read the xattrs of inode %u", ino);
	struct xa x = {.d = d, .h = h, .id = id};
	e = ext2fs_xattrs_read(h);
	if (!e)
		e = ext2fs_xattrs_iterate(h, xattr_fn, &x);
	ext2fs_xattrs_close(&h);
	if (x.r < 0)
		return x.r;
	return e ? cow_import_err(d->st, ext_err(e), "cannot read the xattrs of inode %u", ino) : 0;
}

static int read_symlink(struct disk *d, ext2_ino_t ino, struct ext2_inode_large *in, uint64_t size, char *target)
{
	struct ext2_inode *inode = (struct ext2_inode *)in;
	if (size == 0 || size > COW_SYMLINK_MAX)
		return cow_import_err(d->st, -ENAMETOOLONG, "the symlink of inode %u is %llu bytes long", ino,
				      (unsigned long long)size);
	if (in->i_flags & EXT4_INLINE_DATA_FL) {
		size_t n = d->bufsize;
		errcode_t e = ext2fs_inline_data_get(d->fs, ino, inode, d->buf, &n);
		if (e || n < size)
			return cow_import_err(d->st, -EIO, "cannot read the symlink of inode %u", ino);
		memcpy(target, d->buf, size);
	} else if (ext2fs_is_fast_symlink(inode)) {
		if (size >= sizeof(in->i_block))
			return cow_import_err(d->st, -EIO, "the symlink of inode %u is damaged", ino);
		memcpy(target, in->i_block, size);
	} else {
		ext2_file_t f;
		unsigned got = 0;
		errcode_t e = ext2fs_file_open2(d->fs, ino, inode, 0, &f);
		if (!e) {
			e = ext2fs_file_read(f, target, (unsigned)size, &got);
			ext2fs_file_close(f);
		}
		if (e || got != size)
			return cow_import_err(d->st, -EIO, "cannot read the symlink of inode %u", ino);
	}
	target[size] = 0;
	if (strlen(target) != size)
		return cow_import_err(d->st, -EIO, "the symlink of inode %u holds a NUL byte", ino);
	return 0;
}

struct pending { /* a directory to read */
	ext2_ino_t ino;
	uint64_t id;
	char *path;
};

struct walk {
	struct disk *d;
	struct pending *todo;
	size_t ntodo, cap;
	char *target;
};

struct dent {
	char name[256];
	ext2_ino_t ino;
};

struct listing {
	struct disk *d;
	struct dent *v;
	size_t n, cap;
	int r;
};

static int dir_fn(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset, int blocksize, char *buf,
		  void *priv)
{
	(void)dir, (void)entry, (void)offset, (void)blocksize, (void)buf;
	struct listing *l = priv;
	int len = ext2fs_dirent_name_len(de);
	if ((len == 1 && de->name[0] == '.') || (len == 2 && de->name[0] == '.' && de->name[1] == '.'))
		return 0;
	if (len == 0 || memchr(de->name, '/', (size_t)len) || memchr(de->name, 0, (size_t)len)) {
		l->r = cow_import_err(l->d->st, -EIO, "a directory entry has an invalid name");
		return DIRENT_ABORT;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct dent *n = realloc(l->v, nc * sizeof(*n));
		if (!n) {
			l->r = -ENOMEM;
			return DIRENT_ABORT;
		}
		l->v = n;
		l->cap = nc;
	}
	memcpy(l->v[l->n].name, de->name, (size_t)len);
	l->v[l->n].name[len] = 0;
	l->v[l->n].ino = de->inode;
	l->n++;
	return 0;
}

static int read_inode(struct disk *d, ext2_ino_t ino, struct ext2_inode_large *in)
{
	if (ino < 1 || ino > d->fs->super->s_inodes_count)
		return cow_import_err(d->st, -EIO, "a directory entry names inode %u, outside the file system", ino);
	memset(in, 0, sizeof(*in));
	errcode_t e = ext2fs_read_inode_full(d->fs, ino, (struct ext2_inode *)in, sizeof(*in));
	if (e)
		return cow_import_err(d->st, ext_err(e), "cannot read inode %u", ino);
	if (in->i_flags & EXT4_ENCRYPT_FL)
		return cow_import_err(d->st, -EOPNOTSUPP, "inode %u is encrypted", ino);
	return 0;
}

/* Record the object of entry @e of directory @parent (at @path). */
static int import_entry(struct walk *w, uint64_t parent, const char *path, const struct dent *e, uint32_t *subdirs)
{
	struct disk *d = w->d;
	struct ext2_inode_large in;
	int r = read_inode(d, e->ino, &in);
	if (r < 0)
		return r;
	mode_t mode = in.i_mode;
	int type = (int)((mode & S_IFMT) >> 12);
	if (!S_ISREG(mode) && !S_ISDIR(mode) && !S_ISLNK(mode) && !S_ISCHR(mode) && !S_ISBLK(mode) && !S_ISFIFO(mode) &&
	    !S_ISSOCK(mode))
		return cow_import_err(d->st, -EIO, "inode %u has no valid file type (mode %o)", e->ino, mode);
	struct seen *sn = seen_find(d, e->ino, false);
	if (sn) {
		if (sn->dir || S_ISDIR(mode))
			return cow_import_err(d->st, -EIO, "directory inode %u has two names (a loop)", e->ino);
		sn->names++;
		return cow_db_dirent_put(d->st->db, d->b.layer, parent, e->name, sn->id, type);
	}
	uint64_t id;
	r = cow_build_ino(&d->b, &id);
	if (r < 0)
		return r;
	sn = seen_find(d, e->ino, true);
	if (!sn)
		return -ENOMEM;
	sn->id = id;
	sn->names = 1;
	sn->dir = S_ISDIR(mode);
	r = cow_db_dirent_put(d->st->db, d->b.layer, parent, e->name, id, type);
	if (r < 0)
		return r;
	struct cow_irow row = row_from_inode(id, &in);
	uint64_t size = EXT2_I_SIZE(&in);
	if (S_ISREG(mode)) {
		row.size = (int64_t)size;
		if (size > 0) {
			r = copy_data(d, e->ino, &in, id, size);
			if (r < 0)
				return r;
			row.data_layer = d->b.layer;
		}
	} else if (S_ISLNK(mode)) {
		r = read_symlink(d, e->ino, &in, size, w->target);
		if (r < 0)
			return r;
		row.target = w->target;
		row.size = (int64_t)size;
	} else if (S_ISDIR(mode)) {
		(*subdirs)++;
		row.nlink = 2; /* counted when it is read */
		if (w->ntodo == w->cap) {
			size_t nc = w->cap ? w->cap * 2 : 256;
			struct pending *n = realloc(w->todo, nc * sizeof(*n));
			if (!n)
				return -ENOMEM;
			w->todo = n;
			w->cap = nc;
		}
		char *p;
		if (asprintf(&p, "%s/%s", strcmp(path, "/") ? path : "", e->name) < 0)
			return -ENOMEM;
		w->todo[w->ntodo++] = (struct pending){e->ino, id, p};
	}
	r = cow_db_inode_put(d->st->db, d->b.layer, &row);
	if (r == 0)
		r = import_xattrs(d, e->ino, id);
	return r < 0 ? r : cow_build_tick(&d->b);
}

/* Read directory @p: record its entries, queue its subdirectories, set
 * its nlink. */
static int import_dir(struct walk *w, struct pending *p)
{
	struct disk *d = w->d;
	struct listing l = {.d = d};
	uint32_t subdirs = 0;
	int r = 0;
	bool firmware = d->firmware_path && !strcmp(p->path, d->firmware_path);
	errcode_t e = ext2fs_dir_iterate2(d->fs, p->ino, 0, NULL, dir_fn, &l);
	if (l.r < 0)
		r = l.r;
	else if (e)
		r = cow_import_err(d->st, ext_err(e), "cannot read directory inode %u", p->ino);
	if (r == 0 && firmware) {
		/* the boot partition is mounted here: what lies beneath is hidden */
		d->firmware_dir = p->id;
		d->hidden = (uint32_t)l.n;
		l.n = 0;
	}
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		r = import_entry(w, p->id, p->path, &l.v[i], &subdirs);
		if (r < 0 && r != -ECANCELED && !d->where[0])
			snprintf(d->where, sizeof(d->where), "%s/%s", strcmp(p->path, "/") ? p->path : "", l.v[i].name);
	}
	free(l.v);
	if (r == 0 && !firmware && subdirs)
		r = set_nlink(d, p->id, 2 + subdirs);
	return r;
}

/* Fix the nlink of files with names outside the tree (or in the hidden
 * part of /boot/firmware): nlink is the image's count. */
static int fix_link_counts(struct disk *d)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < d->capseen; i++) {
		struct seen *s = &d->seen[i];
		if (s->ino && !s->dir && s->names != 1)
			r = set_nlink(d, s->id, s->names);
	}
	return r;
}

static int import_root(struct disk *d)
{
	struct walk w = {.d = d};
	struct ext2_inode_large in;
	int r = read_inode(d, EXT2_ROOT_INO, &in);
	if (r == 0 && !S_ISDIR(in.i_mode))
		r = cow_import_err(d->st, -EIO, "the root of the root partition is not a directory");
	w.target = malloc(COW_SYMLINK_MAX + 2);
	if (r == 0 && !w.target)
		r = -ENOMEM;
	struct seen *sn = r == 0 ? seen_find(d, EXT2_ROOT_INO, true) : NULL;
	if (r == 0 && !sn)
		r = -ENOMEM;
	if (r == 0) {
		sn->id = d->b.root;
		sn->dir = true;
		sn->names = 1;
		struct cow_irow row = row_from_inode(d->b.root, &in);
		row.nlink = 2;
		r = cow_db_inode_put(d->st->db, d->b.layer, &row);
		if (r == 0)
			r = import_xattrs(d, EXT2_ROOT_INO, d->b.root);
		if (r == 0)
			r = cow_build_tick(&d->b);
	}
	if (r == 0) {
		char *p = strdup("/");
		if (!p)
			r = -ENOMEM;
		else
			w.todo = malloc(sizeof(*w.todo)), w.cap = 1;
		if (p && !w.todo) {
			free(p);
			r = -ENOMEM;
		} else if (p) {
			w.todo[w.ntodo++] = (struct pending){EXT2_ROOT_INO, d->b.root, p};
		}
	}
	while (r == 0 && w.ntodo > 0) {
		struct pending p = w.todo[--w.ntodo];
		r = import_dir(&w, &p);
		free(p.path);
	}
	for (size_t i = 0; i < w.ntodo; i++)
		free(w.todo[i].path);
	free(w.todo);
	free(w.target);
	if (r == 0)
		r = fix_link_counts(d);
	return r;
}

/* ---- the boot partition ---- */

/* Make directory @name under @parent (root's, 0755, as a vfat mount point
 * shows it) unless the image has it; its object in *@ret. */
static int ensure_dir(struct disk *d, uint64_t parent, const char *name, uint64_t *ret)
{
	uint64_t ino;
	int type;
	int r = cow_db_dirent_get(d->st->db, d->b.layer, parent, name, &ino, &type);
	if (r == 0) {
		if (type != (S_IFDIR >> 12))
			return cow_import_err(d->st, -ENOTDIR, "/%s in the root partition is not a directory", name);
		*ret = ino;
		return 0;
	}
	if (r != -ENOENT)
		return r;
	r = cow_build_ino(&d->b, &ino);
	if (r == 0)
		r = cow_db_dirent_put(d->st->db, d->b.layer, parent, name, ino, S_IFDIR >> 12);
	if (r == 0) {
		struct cow_irow row = {.ino = ino, .mode = S_IFDIR | 0755, .nlink = 2};
		r = cow_db_inode_put(d->st->db, d->b.layer, &row);
	}
	if (r == 0)
		r = set_nlink(d, parent, 0); /* one more subdirectory */
	if (r == 0)
		*ret = ino;
	return r;
}

/* Run @argv (mtools) with no shell, its output discarded: its exit
 * status, or -errno if it could not run. */
static int run(struct disk *d, char **argv)
{
	char *envp[] = {"TZ=UTC", "MTOOLS_SKIP_CHECK=1", "LC_ALL=C", "PATH=/usr/bin:/bin", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return cow_import_err(d->st, -r, "cannot run %s (apt-get install mtools): %s", argv[0], strerror(r));
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Copy the FAT file system at @offset of @path out with mcopy into the
 * empty directory @dir. */
static int fat_copy_out(struct disk *d, const char *path, uint64_t offset, const char *dir)
{
	char img[4200], dest[4300];
	snprintf(img, sizeof(img), "%s@@%llu", path, (unsigned long long)offset);
	snprintf(dest, sizeof(dest), "%s/", dir);
	/* the listing first: it fails on a damaged file system, and tells an
	 * empty one (where mcopy finds nothing to match) */
	char *ls[] = {"mdir", "-b", "-i", img, "::/", NULL};
	int r = run(d, ls);
	if (r < 0)
		return r;
	if (r != 0)
		return cow_import_err(d->st, -EIO, "cannot read the boot partition (FAT): mdir failed");
	char *cp[] = {"mcopy", "-s", "-m", "-n", "-Q", "-i", img, "::/*", dest, NULL};
	r = run(d, cp);
	if (r < 0)
		return r;
	if (r != 0) {
		DIR *dd = opendir(dir);
		bool empty = true;
		struct dirent *de;
		while (dd && (de = readdir(dd)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				empty = false;
		if (dd)
			closedir(dd);
		char *again[] = {"mdir", "-b", "-i", img, "::/*", NULL};
		if (!empty || run(d, again) == 0)
			return cow_import_err(d->st, -EIO, "cannot copy the boot partition (FAT) out: mcopy failed");
	}
	return 0;
}

static int import_boot(struct disk *d, const char *path, uint64_t offset)
{
	int r = 0;
	uint64_t fw = d->firmware_dir;
	if (!fw) {
		uint64_t boot;
		r = ensure_dir(d, d->b.root, "boot", &boot);
		if (r == 0)
			r = ensure_dir(d, boot, "firmware", &fw);
		if (r < 0)
			return r;
	}
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s/" COW_TMP_BOOT_PREFIX "XXXXXX", cow_store_dir(d->st));
	if (!mkdtemp(tmp))
		return cow_import_err(d->st, -errno, "cannot make a directory for the boot partition: %s",
				      strerror(errno));
	/* locked while this import uses it: fsck and gc remove it only once
	 * nobody holds it (an import that died) */
	int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) < 0)
		r = -errno;
	if (r == 0)
		r = fat_copy_out(d, path, offset, tmp);
	uint32_t subdirs = 0;
	if (r == 0) {
		r = cow_import_entries(&d->b, fd, fw, true, &subdirs);
		if (r < 0 && !d->st->errmsg[0])
			snprintf(d->where, sizeof(d->where), "%s (the boot partition)", d->firmware_path);
	}
	if (r == 0)
		r = set_nlink(d, fw, 2 + subdirs);
	cow_rm_tree_at(AT_FDCWD, tmp); /* then unlocked */
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- the disk ---- */

/* Decompress the xz image @in into an unnamed file of the store's
 * directory, sparsely; its fd in *@ret. */
static int xz_unpack(struct disk *d, int in, int *ret)
{
	int out = openat(d->st->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (out < 0)
		return cow_import_err(d->st, -errno, "cannot make a file to decompress into: %s", strerror(errno));
	lzma_stream z = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&z, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) {
		close(out);
		return -ENOMEM;
	}
	uint8_t *ibuf = malloc(XZ_CHUNK), *obuf = malloc(XZ_CHUNK);
	int r = ibuf && obuf ? 0 : -ENOMEM;
	uint64_t pos = 0, since_check = 0;
	lzma_action action = LZMA_RUN;
	lzma_ret lr = LZMA_OK;
	z.next_out = obuf;
	z.avail_out = XZ_CHUNK;
	while (r == 0) {
		if (z.avail_in == 0 && action == LZMA_RUN) {
			ssize_t n = read(in, ibuf, XZ_CHUNK);
			if (n < 0) {
				r = -errno;
				break;
			}
			z.next_in = ibuf;
			z.avail_in = (size_t)n;
			if (n == 0)
				action = LZMA_FINISH;
		}
		lr = lzma_code(&z, action);
		if (z.avail_out == 0 || lr == LZMA_STREAM_END) {
			size_t n = XZ_CHUNK - z.avail_out;
			/* write only what is not zero: the image's empty space stays a hole */
			for (size_t o = 0; o < n && r == 0; o += 4096) {
				size_t len = n - o < 4096 ? n - o : 4096;
				bool zero = true;
				for (size_t i = 0; i < len && zero; i++)
					zero = obuf[o + i] == 0;
				if (!zero)
					r = cow_pwrite_all(out, obuf + o, len, (off_t)(pos + o));
			}
			pos += n;
			since_check += n;
			z.next_out = obuf;
			z.avail_out = XZ_CHUNK;
			if (r == 0 && since_check >= (64u << 20)) {
				since_check = 0;
				struct statvfs sv;
				if (fstatvfs(out, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < XZ_MIN_FREE)
					r = cow_import_err(
					    d->st, -ENOSPC,
					    "decompressing the image would fill the store's file system");
				if (r == 0 && d->progress && d->progress(d->arg, "decompress", pos, 0))
					r = -ECANCELED;
			}
		}
		if (lr == LZMA_STREAM_END)
			break;
		if (r == 0 && lr != LZMA_OK)
			r = cow_import_err(d->st, lr == LZMA_MEM_ERROR ? -ENOMEM : -EIO, "the xz stream is %s",
					   lr == LZMA_BUF_ERROR ? "truncated" : "corrupt");
	}
	lzma_end(&z);
	free(ibuf);
	free(obuf);
	if (r == 0 && ftruncate(out, (off_t)pos) < 0)
		r = -errno;
	if (r < 0) {
		close(out);
		return r;
	}
	*ret = out;
	return 0;
}

struct part {
	int number;
	uint64_t offset, size;
	char type[16]; /* "ext4", "vfat", ... */
};

/* The partitions of the image @fd (@size bytes) and their file systems;
 * a file system without a partition table is one partition, number 0. */
static int read_partitions(struct disk *d, int fd, uint64_t size, struct part *parts, int max, int *ret_n,
			   char *ret_table, size_t tablelen)
{
	blkid_probe pr = blkid_new_probe();
	if (!pr)
		return -ENOMEM;
	int n = 0, r = 0;
	if (blkid_probe_set_device(pr, fd, 0, (blkid_loff_t)size) != 0) {
		blkid_free_probe(pr);
		return cow_import_err(d->st, -EIO, "cannot read the image");
	}
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_enable_superblocks(pr, 0);
	blkid_partlist pl = NULL;
	if (blkid_do_fullprobe(pr) == 0)
		pl = blkid_probe_get_partitions(pr);
	blkid_parttable tab = pl ? blkid_partlist_get_table(pl) : NULL;
	const char *tt = tab && blkid_parttable_get_type(tab) ? blkid_parttable_get_type(tab) : "none";
	if (strlen(tt) >= tablelen)
		tt = "other";
	memcpy(ret_table, tt, strlen(tt) + 1);
	int np = pl ? blkid_partlist_numof_partitions(pl) : 0;
	for (int i = 0; i < np && n < max; i++) {
		blkid_partition p = blkid_partlist_get_partition(pl, i);
		int64_t start = blkid_partition_get_start(p), len = blkid_partition_get_size(p);
		if (start < 0 || len <= 0 || (uint64_t)start > size / 512 ||
		    (uint64_t)len > size / 512 - (uint64_t)start) {
			r = cow_import_err(d->st, -EIO, "partition %d lies outside the image (truncated?)",
					   blkid_partition_get_partno(p));
			break;
		}
		if (blkid_partition_is_extended(p))
			continue;
		parts[n].number = blkid_partition_get_partno(p);
		parts[n].offset = (uint64_t)start * 512;
		parts[n].size = (uint64_t)len * 512;
		parts[n].type[0] = 0;
		n++;
	}
	blkid_free_probe(pr);
	if (r < 0)
		return r;
	if (np == 0) {
		parts[0] = (struct part){.number = 0, .offset = 0, .size = size};
		n = 1;
	}
	for (int i = 0; i < n; i++) {
		pr = blkid_new_probe();
		if (!pr)
			return -ENOMEM;
		if (blkid_probe_set_device(pr, fd, (blkid_loff_t)parts[i].offset, (blkid_loff_t)parts[i].size) == 0) {
			blkid_probe_enable_partitions(pr, 0);
			blkid_probe_enable_superblocks(pr, 1);
			blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
			const char *t;
			if (blkid_do_safeprobe(pr) == 0 && blkid_probe_lookup_value(pr, "TYPE", &t, NULL) == 0)
				snprintf(parts[i].type, sizeof(parts[i].type), "%s", t);
		}
		blkid_free_probe(pr);
	}
	*ret_n = n;
	return 0;
}

static int open_ext(struct disk *d, const char *path, const struct part *p)
{
	char opts[64];
	snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)p->offset);
	errcode_t e = ext2fs_open2(path, opts, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0, unix_io_manager, &d->fs);
	if (e) {
		d->fs = NULL;
		return cow_import_err(d->st, -EIO, "cannot open the root partition (%s): %s", p->type,
				      error_message(e));
	}
	uint64_t bytes = ext2fs_blocks_count(d->fs->super) * (uint64_t)d->fs->blocksize;
	if (bytes > p->size)
		return cow_import_err(
		    d->st, -EIO, "the root partition's file system (%llu bytes) is larger than its partition (%llu)",
		    (unsigned long long)bytes, (unsigned long long)p->size);
	if (ext2fs_has_feature_journal_needs_recovery(d->fs->super))
		return cow_import_err(d->st, -EUCLEAN,
				      "the root partition's journal needs recovery (run e2fsck on the image)");
	d->total = d->fs->super->s_inodes_count - d->fs->super->s_free_inodes_count;
	return 0;
}

int cow_image_import_disk(struct cow_store *st, const char *name, const char *path, cow_progress_fn progress, void *arg,
			  struct cow_disk_info *ret_info)
{
	struct disk d = {.st = st, .progress = progress, .arg = arg};
	struct cow_disk_info info = {0};
	int r;

	r = cow_import_check(st, name, path);
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ufd = -1;
	struct stat s;
	unsigned char magic[6] = {0};
	if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode)) {
		r = S_ISDIR(s.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if (pread(fd, magic, sizeof(magic), 0) == sizeof(magic) && !memcmp(magic,
									   "\xfd"
									   "7zXZ\0",
									   6)) {
		info.compressed = true;
		r = xz_unpack(&d, fd, &ufd);
		if (r < 0)
			goto out;
		close(fd);
		fd = ufd;
		ufd = -1;
		if (fstat(fd, &s) < 0) {
			r = -errno;
			goto out;
		}
	}
	info.bytes = (uint64_t)s.st_size;
	/* libext2fs and mcopy open by name: this one reaches the unnamed file too */
	char fdpath[64];
	snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%d", (int)getpid(), fd);

	struct part parts[16];
	int np = 0;
	r = read_partitions(&d, fd, (uint64_t)s.st_size, parts, 16, &np, info.table, sizeof(info.table));
	if (r < 0)
		goto out;
	int root = -1, boot = -1;
	for (int i = 0; i < np; i++) {
		if (root < 0 && (!strcmp(parts[i].type, "ext4") || !strcmp(parts[i].type, "ext3") ||
				 !strcmp(parts[i].type, "ext2")))
			root = i;
		if (boot < 0 && !strcmp(parts[i].type, "vfat"))
			boot = i;
	}
	if (root < 0) {
		r = cow_import_err(
		    d.st, -EMEDIUMTYPE,
		    "the image has no ext2/3/4 partition to import as the root (%d partition%s, table %s)", np,
		    np == 1 ? "" : "s", info.table);
		goto out;
	}
	if (boot >= 0)
		d.firmware_path = "/boot/firmware"; /* mounted there: what lies beneath is hidden */
	info.root_partition = parts[root].number;
	info.boot_partition = boot >= 0 ? parts[boot].number : -1;
	r = open_ext(&d, fdpath, &parts[root]);
	if (r < 0)
		goto out;
	d.bufsize = (size_t)d.fs->blocksize * 256;
	d.buf = malloc(d.bufsize);
	if (!d.buf) {
		r = -ENOMEM;
		goto out;
	}
	r = cow_build_begin(st, name, 0, &d.b);
	if (r < 0)
		goto out;
	d.b.total = d.total;
	d.b.progress = progress;
	d.b.arg = arg;
	r = import_root(&d);
	if (r == 0 && boot >= 0)
		r = import_boot(&d, fdpath, parts[boot].offset);
	if (r == 0 && progress && progress(arg, "import", d.b.done, d.b.done))
		r = -ECANCELED;
	if (r < 0 && r != -ECANCELED && d.where[0]) {
		char m[sizeof(st->errmsg)];
		snprintf(m, sizeof(m), "%s", st->errmsg[0] ? st->errmsg : strerror(-r));
		snprintf(st->errmsg, sizeof(st->errmsg), "cannot import '%.200s': %.300s: %.400s", path, d.where, m);
	}
	info.objects = d.b.done;
	info.hidden = d.hidden;
	r = cow_build_finish(&d.b, name, r);
out:
	if (d.fs)
		ext2fs_close_free(&d.fs);
	free(d.buf);
	free(d.seen);
	if (ufd >= 0)
		close(ufd);
	close(fd);
	if (r == 0 && ret_info)
		*ret_info = info;
	return r;
}
