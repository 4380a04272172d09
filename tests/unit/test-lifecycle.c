/* SPDX-License-Identifier: MIT */
/*
 * test-lifecycle: the lifecycle half of the core API (reset, rm, snapshot,
 * rebase, diff, image rm/flatten/export/load, gc, fsck, migration) on a
 * temporary store, without FUSE.  A small rich tree (regular, sparse and
 * empty files, hardlinks, symlinks, a fifo, device nodes, xattrs with a
 * security.capability, setuid) is imported as image "base"; every check
 * compares what the API shows with what the contracts in cowroot.h say.
 *
 * Trees are compared as text dumps (one line per path: type, mode, owner,
 * size, mtime, rdev, link target, xattrs, a content hash, whether a large
 * file is sparse, and which earlier path it is a hardlink of).
 *
 * Output is TAP (see unit.h).  Set COWROOT_KEEP=1 to keep the temp dir.
 */
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include "cowroot.h"
#include "unit.h"

#define MiB (1024 * 1024)
#define MANY 10000 /* changed files in the "big" layers */

static char top[64], src[128], storedir[128], store2dir[128];
static bool have_dev; /* mknod of device nodes works (root) */
static const struct cow_cred cred = {.uid = 0, .gid = 0, .umask = 022};

/* ---- the source tree ---- */

static void spath(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", src, rel);
}

static void put_file(const char *rel, const char *data, mode_t mode)
{
	char p[512];
	spath(p, sizeof(p), rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		bail(p);
	close(fd);
	if (chmod(p, mode) < 0)
		bail(p);
}

static void build_tree(void)
{
	char p[512], q[512];
	if (mkdir(src, 0755) < 0)
		bail(src);
	put_file("hello.txt", "hello world\n", 0644);
	put_file("empty", "", 0600);
	put_file("keep.txt", "untouched\n", 0644);
	put_file("hl1", "linked\n", 0640);
	spath(p, sizeof(p), "hl1");
	spath(q, sizeof(q), "hl2");
	if (chown(p, 1234, 5678) < 0 || link(p, q) < 0)
		bail(q);
	spath(p, sizeof(p), "sparse.bin");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 8 * MiB) < 0 || pwrite(fd, "HEAD", 4, 0) != 4 ||
	    pwrite(fd, "MID!", 4, 3 * MiB) != 4 || pwrite(fd, "TAIL", 4, 8 * MiB - 4) != 4)
		bail(p);
	close(fd);
	spath(p, sizeof(p), "sym");
	if (symlink("hello.txt", p) < 0)
		bail(p);
	spath(p, sizeof(p), "dangling");
	if (symlink("/no/such/target", p) < 0)
		bail(p);
	spath(p, sizeof(p), "fifo");
	if (mkfifo(p, 0620) < 0 || chmod(p, 0620) < 0)
		bail(p);
	spath(p, sizeof(p), "null");
	have_dev = mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0;
	if (have_dev) {
		spath(p, sizeof(p), "loop0");
		if (mknod(p, S_IFBLK | 0660, makedev(7, 0)) < 0)
			bail(p);
	}
	put_file("suid", "#!/bin/sh\n", 0755);
	spath(p, sizeof(p), "suid");
	if (chown(p, 0, 7) < 0 || chmod(p, 04755) < 0)
		bail(p);
	struct vfs_cap_data cap = {
	    .magic_etc = htole32(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE),
	    .data = {{.permitted = htole32(1u << CAP_NET_RAW)}},
	};
	if (lsetxattr(p, "security.capability", &cap, XATTR_CAPS_SZ_2, 0) < 0)
		printf("# security.capability cannot be set here: %s\n", strerror(errno));
	if (lsetxattr(p, "user.note", "setuid", 6, 0) < 0)
		bail(p);
	spath(p, sizeof(p), "dir");
	if (mkdir(p, 0750) < 0 || chmod(p, 0750) < 0 || lsetxattr(p, "user.dirx", "1", 1, 0) < 0)
		bail(p);
	put_file("dir/a", "aaa\n", 0644);
	spath(p, sizeof(p), "dir/sub");
	if (mkdir(p, 0700) < 0)
		bail(p);
	put_file("dir/sub/b", "bbb\n", 0600);
	spath(p, sizeof(p), "rmd");
	if (mkdir(p, 0755) < 0)
		bail(p);
	put_file("rmd/x", "x\n", 0644);
	spath(p, sizeof(p), "mvdir");
	if (mkdir(p, 0755) < 0)
		bail(p);
	put_file("mvdir/inner", "inner\n", 0644);
}

/* ---- view helpers ---- */

/* Split "a/b/c" into the parent's ino and the last name. */
static int parent_of(struct cow_view *v, const char *path, uint64_t *ret_parent, const char **ret_name)
{
	char dir[1024];
	const char *slash = strrchr(path, '/');
	*ret_name = slash ? slash + 1 : path;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
	struct cow_attr a;
	int r = walk(v, dir, &a);
	if (r == 0)
		*ret_parent = a.ino;
	return r;
}

/* Replace (or create) @path with @data. */
static int write_path(struct cow_view *v, const char *path, const char *data)
{
	uint64_t parent = 0;
	const char *name;
	struct cow_file *f;
	struct cow_attr a;
	int r = parent_of(v, path, &parent, &name);
	if (r < 0)
		return r;
	r = cow_lookup(v, parent, name, &a);
	if (r == 0) {
		r = cow_open(v, a.ino, O_WRONLY | O_TRUNC, &f);
		cow_forget(v, a.ino, 1);
	} else if (r == -ENOENT) {
		r = cow_create(v, parent, name, 0644, O_WRONLY | O_CREAT, &cred, &f, &a);
		if (r == 0)
			cow_forget(v, a.ino, 1);
	}
	if (r < 0)
		return r;
	ssize_t n = cow_write(f, data, strlen(data), 0);
	int c = cow_release(f);
	return n < 0 ? (int)n : c;
}

/* The content of @path (NUL-terminated, cut at @size - 1), or "ERR n". */
static const char *read_path(struct cow_view *v, const char *path, char *buf, size_t size)
{
	struct cow_attr a;
	struct cow_file *f;
	int r = walk(v, path, &a);
	if (r == 0)
		r = cow_open(v, a.ino, O_RDONLY, &f);
	if (r < 0) {
		snprintf(buf, size, "ERR %d", r);
		return buf;
	}
	ssize_t n = cow_read(f, buf, size - 1, 0);
	cow_release(f);
	if (n < 0)
		snprintf(buf, size, "ERR %zd", n);
	else
		buf[n] = 0;
	return buf;
}

static void check_content(struct cow_view *v, const char *vname, const char *path, const char *want)
{
	char buf[256], details[600];
	read_path(v, path, buf, sizeof(buf));
	snprintf(details, sizeof(details), "got \"%s\", want \"%s\"", buf, want);
	check(!strcmp(buf, want), details, "%s: content of '%s'", vname, path);
}

static void check_absent(struct cow_view *v, const char *vname, const char *path)
{
	struct cow_attr a;
	check_int(walk(v, path, &a), -ENOENT, "%s: '%s' does not exist", vname, path);
}

static struct cow_view *open_client(struct cow_store *st, const char *client)
{
	struct cow_view *v = NULL;
	int r = cow_view_open(st, client, NULL, 0, &v);
	check_int(r, 0, "open the view of client '%s'", client);
	return r == 0 ? v : NULL;
}

static struct cow_view *open_image(struct cow_store *st, const char *image)
{
	struct cow_view *v = NULL;
	int r = cow_view_open(st, NULL, image, COW_VIEW_READONLY, &v);
	check_int(r, 0, "open the view of image '%s'", image);
	return r == 0 ? v : NULL;
}

static void close_view(struct cow_view *v, const char *what)
{
	if (v)
		check_int(cow_view_close(v), 0, "close the view of %s", what);
}

/* A new client @client on image @image writes and reads back. */
static void check_client_writes(struct cow_store *st, const char *image, const char *client)
{
	struct cow_view *v;
	check_int(cow_client_add(st, client, image), 0, "add client '%s' on image '%s'", client, image);
	if (!(v = open_client(st, client)))
		return;
	check_int(write_path(v, "hello.txt", client), 0, "client '%s' writes", client);
	check_content(v, client, "hello.txt", client);
	close_view(v, client);
}

/* Directory @dir of @v gets @n new files "f00000"...; returns the number made. */
static int make_many(struct cow_view *v, const char *dir, int n)
{
	struct cow_attr d, a;
	struct cow_file *f;
	int r = cow_mkdir(v, cow_view_root(v), dir, 0755, &cred, &d);
	if (r < 0)
		return r;
	int made = 0;
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%05d", i);
		if (cow_create(v, d.ino, name, 0644, O_WRONLY | O_CREAT | O_EXCL, &cred, &f, &a) < 0)
			break;
		if (cow_write(f, name, 6, 0) == 6)
			made++;
		cow_release(f);
		cow_forget(v, a.ino, 1);
	}
	cow_forget(v, d.ino, 1);
	return made;
}

static int count_entry(void *arg, const char *name, const struct cow_attr *attr, off_t next_off)
{
	(void)attr;
	(void)next_off;
	if (strcmp(name, ".") && strcmp(name, ".."))
		(*(int *)arg)++;
	return 0;
}

/* Entries of directory @path in @v (without . and ..), -errno on error. */
static int count_dir(struct cow_view *v, const char *path)
{
	struct cow_attr a;
	struct cow_dirh *d;
	int n = 0, r = walk(v, path, &a);
	if (r == 0)
		r = cow_opendir(v, a.ino, &d);
	if (r < 0)
		return r;
	r = cow_readdir(d, 0, false, count_entry, &n);
	cow_releasedir(d);
	return r < 0 ? r : n;
}

/* ---- store helpers ---- */

static uint64_t client_layer(struct cow_store *st, const char *name)
{
	struct cow_client_info ci;
	return cow_client_get(st, name, &ci) == 0 ? ci.layer : 0;
}

static int add_image_name(void *arg, const struct cow_image_info *ii)
{
	char *s = arg;
	size_t l = strlen(s);
	snprintf(s + l, 1024 - l, "%s%s@%llu", l ? "," : "", ii->name, (unsigned long long)ii->layer);
	return 0;
}

/* "name@layer,..." of every image (a buffer of 1024). */
static char *image_list(struct cow_store *st, char *buf)
{
	buf[0] = 0;
	cow_image_foreach(st, add_image_name, buf);
	return buf;
}

/* Sorted names under @dir/data, comma-joined (a buffer of 2048). */
static char *data_list(const char *dir, char *buf)
{
	char p[256], *names[256];
	int n = 0;
	snprintf(p, sizeof(p), "%s/data", dir);
	DIR *d = opendir(p);
	if (!d)
		bail(p);
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && n < 256)
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	buf[0] = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(buf);
		snprintf(buf + l, 2048 - l, "%s%s", i ? "," : "", names[i]);
		free(names[i]);
	}
	return buf;
}

static bool path_exists(const char *p)
{
	struct stat s;
	return lstat(p, &s) == 0;
}

static bool layer_dir_exists(const char *dir, uint64_t layer)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/data/%llu", dir, (unsigned long long)layer);
	return path_exists(p);
}

static void fsck_log(void *arg, const char *line)
{
	(*(int *)arg)++;
	printf("# fsck: %s\n", line);
}

/* fsck finds no problem (dead layers waiting for gc are none). */
static void check_fsck_clean(struct cow_store *st, const char *when)
{
	struct cow_fsck_report rep;
	char details[512];
	int lines = 0;
	memset(&rep, 0xff, sizeof(rep));
	int r = cow_fsck(st, false, fsck_log, &lines, &rep);
	snprintf(details, sizeof(details),
		 "returned %d%s; orphan_files %llu, missing_data %llu, dangling %llu, unused_layers %llu, db_ok %d", r,
		 errname(r), (unsigned long long)rep.orphan_files, (unsigned long long)rep.missing_data,
		 (unsigned long long)rep.dangling, (unsigned long long)rep.unused_layers, rep.db_ok);
	check(r == 0 && rep.db_ok && !rep.orphan_files && !rep.missing_data && !rep.dangling && !rep.unused_layers &&
		  (uint64_t)lines == rep.dead_layers,
	      details, "fsck %s reports no problem", when);
}

static int gc(struct cow_store *st, struct cow_gc_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	return cow_gc(st, NULL, NULL, rep);
}

/* ---- tree dumps ---- */

struct dump {
	struct cow_view *v;
	char *text;
	size_t len, cap;
	struct {
		uint64_t ino;
		char path[1024];
	} links[64]; /* first path of each object with nlink > 1 */
	int nlinks;
	int err;
};

static void dump_add(struct dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dump_add(struct dump *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (d->len + (size_t)n + 1 > d->cap) {
		size_t cap = (d->cap + (size_t)n + 1) * 2;
		char *t = realloc(d->text, cap);
		if (!t)
			bail("realloc");
		d->text = t;
		d->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(d->text + d->len, d->cap - d->len, fmt, ap);
	va_end(ap);
	d->len += (size_t)n;
}

/* A content hash (FNV-1a 64) of object @ino. */
static uint64_t content_hash(struct cow_view *v, uint64_t ino, int *err)
{
	static char buf[1 << 16];
	struct cow_file *f;
	uint64_t h = 0xcbf29ce484222325ULL;
	int r = cow_open(v, ino, O_RDONLY, &f);
	if (r < 0) {
		*err = r;
		return 0;
	}
	for (off_t off = 0;;) {
		ssize_t n = cow_read(f, buf, sizeof(buf), off);
		if (n < 0)
			*err = (int)n;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ULL;
		off += n;
	}
	cow_release(f);
	return h;
}

static void dump_xattrs(struct dump *d, uint64_t ino)
{
	char names[4096], value[512];
	int n = cow_listxattr(d->v, ino, names, sizeof(names));
	if (n < 0) {
		d->err = n;
		return;
	}
	/* listxattr order is not a property of the tree: sort */
	char *v[64];
	int nv = 0;
	for (char *p = names; p < names + n && nv < 64; p += strlen(p) + 1)
		v[nv++] = p;
	qsort(v, (size_t)nv, sizeof(v[0]), cmp_str);
	for (int i = 0; i < nv; i++) {
		int len = cow_getxattr(d->v, ino, v[i], value, sizeof(value));
		dump_add(d, " x:%s=", v[i]);
		for (int k = 0; k < len; k++)
			dump_add(d, "%02x", (unsigned char)value[k]);
		if (len < 0)
			dump_add(d, "ERR%d", len);
	}
}

static void dump_dir(struct dump *d, uint64_t dir, const char *path);

static int dump_name(void *arg, const char *name, const struct cow_attr *attr, off_t next_off)
{
	char ***names = arg;
	(void)attr;
	(void)next_off;
	if (strcmp(name, ".") && strcmp(name, "..")) {
		size_t n = 0;
		while ((*names)[n])
			n++;
		char **t = realloc(*names, (n + 2) * sizeof(char *));
		if (!t)
			bail("realloc");
		t[n] = strdup(name);
		t[n + 1] = NULL;
		*names = t;
	}
	return 0;
}

static void dump_object(struct dump *d, uint64_t parent, const char *name, const char *path)
{
	struct cow_attr a;
	int r = cow_lookup(d->v, parent, name, &a);
	if (r < 0) {
		dump_add(d, "%s lookup ERR %d\n", path, r);
		d->err = r;
		return;
	}
	dump_add(d, "%s mode=%o uid=%u gid=%u", path, a.mode, a.uid, a.gid);
	if (!S_ISDIR(a.mode))
		dump_add(d, " nlink=%u size=%lld mtime=%lld.%09ld", a.nlink, (long long)a.size,
			 (long long)a.mtime.tv_sec, a.mtime.tv_nsec);
	if (S_ISCHR(a.mode) || S_ISBLK(a.mode))
		dump_add(d, " rdev=%u:%u", major(a.rdev), minor(a.rdev));
	if (S_ISLNK(a.mode)) {
		char target[COW_SYMLINK_MAX + 1];
		int n = cow_readlink(d->v, a.ino, target, sizeof(target));
		dump_add(d, " -> %.*s", n > 0 ? n : 0, target);
	}
	if (S_ISREG(a.mode)) {
		int err = 0;
		uint64_t h = content_hash(d->v, a.ino, &err);
		dump_add(d, " hash=%016llx", (unsigned long long)h);
		if (err)
			d->err = err;
		if (a.size >= MiB)
			dump_add(d, " %s", a.blocks * 512 < a.size / 2 ? "sparse" : "dense");
	}
	dump_xattrs(d, a.ino);
	if (!S_ISDIR(a.mode) && a.nlink > 1) {
		int i;
		for (i = 0; i < d->nlinks && d->links[i].ino != a.ino; i++)
			;
		if (i < d->nlinks) {
			dump_add(d, " hardlink-of=%s", d->links[i].path);
		} else if (d->nlinks < 64) {
			d->links[d->nlinks].ino = a.ino;
			snprintf(d->links[d->nlinks++].path, sizeof(d->links[0].path), "%s", path);
		}
	}
	dump_add(d, "\n");
	if (S_ISDIR(a.mode))
		dump_dir(d, a.ino, path);
	cow_forget(d->v, a.ino, 1);
}

static void dump_dir(struct dump *d, uint64_t dir, const char *path)
{
	struct cow_dirh *h;
	char **names = calloc(1, sizeof(char *));
	int r = cow_opendir(d->v, dir, &h);
	if (r == 0) {
		r = cow_readdir(h, 0, false, dump_name, &names);
		cow_releasedir(h);
	}
	if (r < 0)
		d->err = r;
	size_t n = 0;
	while (names[n])
		n++;
	qsort(names, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char *p; /* trees deeper than PATH_MAX are dumped too */
		if (asprintf(&p, "%s/%s", path, names[i]) < 0)
			bail("asprintf");
		dump_object(d, dir, names[i], p);
		free(p);
		free(names[i]);
	}
	free(names);
}

/* The text dump of @v's whole tree (caller frees); NULL after a failed check. */
static char *dump_tree(struct cow_view *v, const char *what)
{
	struct dump *d = calloc(1, sizeof(*d));
	if (!d)
		bail("calloc");
	d->v = v;
	struct cow_attr a;
	int r = cow_getattr(v, cow_view_root(v), &a);
	if (r == 0) {
		dump_add(d, "/ mode=%o uid=%u gid=%u", a.mode, a.uid, a.gid);
		dump_xattrs(d, a.ino);
		dump_add(d, "\n");
		dump_dir(d, a.ino, "");
	}
	if (r == 0)
		r = d->err;
	char *text = d->text;
	free(d);
	if (!check_int(r, 0, "dump the tree of %s", what)) {
		free(text);
		return NULL;
	}
	return text;
}

/* Both dumps equal; on a difference name the first differing lines. */
static void check_same_tree(const char *a, const char *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check_same_tree(const char *a, const char *b, const char *fmt, ...)
{
	char details[2048] = "a dump is missing";
	bool same = a && b && !strcmp(a, b);
	if (a && b && !same) {
		const char *x = a, *y = b;
		while (*x && *y) {
			size_t lx = strcspn(x, "\n"), ly = strcspn(y, "\n");
			if (lx != ly || memcmp(x, y, lx)) {
				snprintf(details, sizeof(details), "first difference: [%.*s] vs [%.*s]", (int)lx, x,
					 (int)ly, y);
				break;
			}
			x += lx + (x[lx] ? 1 : 0);
			y += ly + (y[ly] ? 1 : 0);
		}
		if (!*x || !*y)
			snprintf(details, sizeof(details), "one dump ends early: [%.200s] vs [%.200s]", x, y);
	}
	va_list ap;
	va_start(ap, fmt);
	vcheck(same, details, fmt, ap);
	va_end(ap);
}

/* Print a dump as TAP comments (for a reader of a failure). */
static void show_dump(const char *what, const char *text)
{
	printf("# %s:\n", what);
	for (const char *p = text; p && *p;) {
		size_t l = strcspn(p, "\n");
		printf("#   %.*s\n", (int)l, p);
		p += l + (p[l] ? 1 : 0);
	}
}

/* ---- diff and rebase callbacks ---- */

struct lines {
	char text[8192];
	int n;
};

static int diff_line(void *arg, const char *path, enum cow_change change, uint32_t mode)
{
	struct lines *l = arg;
	size_t len = strlen(l->text);
	snprintf(l->text + len, sizeof(l->text) - len, "%s %s%s;", cow_change_name(change), path,
		 S_ISDIR(mode) ? "/" : "");
	l->n++;
	return 0;
}

static int conflict_line(void *arg, const char *path, const char *why)
{
	struct lines *l = arg;
	size_t len = strlen(l->text);
	snprintf(l->text + len, sizeof(l->text) - len, "%s;", path);
	printf("# conflict %s: %s\n", path, why);
	l->n++;
	return 0;
}

/* "change path;" occurs in the diff (exactly that change for that path). */
static bool has_line(const struct lines *l, const char *line)
{
	char want[600];
	snprintf(want, sizeof(want), "%s;", line);
	for (const char *p = l->text; (p = strstr(p, want)); p++)
		if (p == l->text || p[-1] == ';')
			return true;
	return false;
}

/* Is @path reported at all (any change)? */
static bool mentions(const struct lines *l, const char *path)
{
	char want[600];
	snprintf(want, sizeof(want), " %s;", path);
	return strstr(l->text, want) != NULL;
}

/* ---- progress callbacks ---- */

/* Cancel at the @(int *arg)-th call (1: the first). */
static int cancel_at(void *arg, const char *what, uint64_t done, uint64_t total)
{
	(void)what;
	(void)done;
	(void)total;
	return --*(int *)arg <= 0;
}

/* ---- the tests ---- */

/* Reset is O(1): it marks the layer dead and leaves its rows and files for
 * gc.  Shown by behaviour: the bytes the process moves through read/write
 * syscalls (sqlite's page and WAL I/O) for a reset of a 10,000-file layer
 * are those of a 10-file one, and the dead layer still has its records
 * and data files until gc. */
static unsigned long long io_bytes(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	unsigned long long v, sum = 0;
	if (!f)
		bail("/proc/self/io");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "rchar: %llu", &v) == 1 || sscanf(line, "wchar: %llu", &v) == 1)
			sum += v;
	fclose(f);
	return sum;
}

static void test_reset(struct cow_store **stp)
{
	struct cow_store *st = *stp;
	struct cow_view *v;
	char details[512];
	const char *names[2] = {"small", "big"};
	int counts[2] = {10, MANY};
	unsigned long long io[2] = {0, 0};
	uint64_t old[2] = {0, 0};

	for (int i = 0; i < 2; i++) {
		check_int(cow_client_add(st, names[i], "base"), 0, "add client '%s'", names[i]);
		if (!(v = open_client(st, names[i])))
			return;
		check_int(make_many(v, "many", counts[i]), counts[i], "'%s' creates %d files", names[i], counts[i]);
		check_int(write_path(v, "hello.txt", "changed\n"), 0, "'%s' rewrites hello.txt", names[i]);
		struct cow_attr a;
		check_int(cow_unlink(v, ino_of(v, "dir"), "a"), 0, "'%s' removes dir/a", names[i]);
		check_int(cow_mkdir(v, cow_view_root(v), "newdir", 0755, &cred, &a), 0, "'%s' makes newdir", names[i]);
		cow_forget(v, a.ino, 1);
		close_view(v, names[i]);
		old[i] = client_layer(st, names[i]);
	}
	for (int i = 0; i < 2; i++) {
		/* a fresh store handle: the WAL is checkpointed on close, so no
		 * checkpoint lands in the measured reset */
		cow_store_close(st);
		*stp = st = NULL;
		if (!check_int(cow_store_open(storedir, 0, &st), 0, "reopen the store"))
			return;
		*stp = st;
		unsigned long long before = io_bytes();
		int r = cow_client_reset(st, names[i]);
		io[i] = io_bytes() - before;
		check_int(r, 0, "cow_client_reset of '%s' (%d changed files)", names[i], counts[i]);
	}
	snprintf(details, sizeof(details), "reset I/O: %llu bytes for 10 files, %llu for %d", io[0], io[1], MANY);
	printf("# %s\n", details);
	check(io[1] <= io[0] + 64 * 1024, details, "the reset of a %d-file layer does the I/O of a 10-file one", MANY);

	struct cow_layer_stats ls;
	int r = cow_layer_stats(st, old[1], &ls);
	snprintf(details, sizeof(details), "returned %d%s, objects %llu", r, errname(r),
		 (unsigned long long)ls.objects);
	check(r == 0 && ls.objects >= MANY, details,
	      "the dead layer keeps its records until gc (reset dropped no rows)");
	check(layer_dir_exists(storedir, old[1]), "data dir gone", "the dead layer keeps its data files until gc");
	check(client_layer(st, "big") && client_layer(st, "big") != old[1], "same layer", "'big' has a new layer");

	/* the client sees exactly the image again */
	struct cow_view *vb = open_image(st, "base");
	v = open_client(st, "big");
	if (v && vb) {
		char *want = dump_tree(vb, "image 'base'"), *got = dump_tree(v, "client 'big' after reset");
		check_same_tree(got, want, "after reset client 'big' shows exactly image 'base'");
		free(want);
		free(got);
		struct cow_client_info ci;
		check(cow_client_get(st, "big", &ci) == 0 && ci.objects == 0 && !strcmp(ci.image, "base"), "wrong",
		      "'big' is on 'base' with an empty layer");
	}

	/* reset while held: refused, nothing changes */
	uint64_t held = client_layer(st, "big");
	check_int(cow_client_reset(st, "big"), -EBUSY, "cow_client_reset of a client whose view is open is -EBUSY");
	check(client_layer(st, "big") == held, "layer changed", "the refused reset left the client's layer alone");
	check_int(cow_client_reset(st, "nosuch"), -ENOENT, "cow_client_reset of an unknown client is -ENOENT");
	close_view(v, "client 'big'");
	close_view(vb, "image 'base'");

	struct cow_gc_report g;
	r = gc(st, &g);
	snprintf(details, sizeof(details), "returned %d%s, layers %llu, files %llu, busy %llu", r, errname(r),
		 (unsigned long long)g.layers, (unsigned long long)g.files, (unsigned long long)g.busy);
	check(r == 0 && g.layers == 2 && g.files >= MANY && g.busy == 0, details,
	      "gc reclaims both dead layers and their data files");
	check(!layer_dir_exists(storedir, old[0]) && !layer_dir_exists(storedir, old[1]), "still there",
	      "the dead layers' data directories are gone");
	r = cow_layer_stats(st, old[1], &ls);
	check(r < 0 || ls.objects == 0, "records left", "the dead layer's records are gone after gc");
	check_fsck_clean(st, "after reset and gc");
	check_int(cow_client_rm(st, "small", 0), 0, "remove client 'small'");
	check_int(cow_client_rm(st, "big", 0), 0, "remove client 'big'");
}

/* A server resets a live view in place. */
static void test_view_reset(struct cow_store *st)
{
	struct cow_view *v;
	struct cow_attr a;
	struct cow_file *f;
	char buf[64], details[256];

	check_int(cow_client_add(st, "live", "base"), 0, "add client 'live'");
	if (!(v = open_client(st, "live")))
		return;
	cow_view_set_holder(v, "serve test");
	struct cow_holder h;
	int r = cow_client_holder(st, "live", &h);
	snprintf(details, sizeof(details), "returned %d, pid %ld, what '%s'", r, (long)h.pid, r > 0 ? h.what : "");
	check(r == 1 && h.pid == getpid() && !strcmp(h.what, "serve test"), details,
	      "cow_client_holder names the holder of the open view");
	uint64_t hello = ino_of(v, "hello.txt"), dir = ino_of(v, "dir"), root = cow_view_root(v);
	check_int(write_path(v, "hello.txt", "old layer\n"), 0, "live: rewrite hello.txt");
	r = cow_create(v, root, "new.txt", 0644, O_RDWR | O_CREAT | O_EXCL, &cred, &f, &a);
	check_int(r, 0, "live: create new.txt and keep it open");
	uint64_t newino = a.ino;
	check_int(cow_write(f, "old-layer-data", 14, 0), 14, "live: write new.txt");
	check_int(cow_mkdir(v, dir, "newsub", 0755, &cred, &a), 0, "live: mkdir dir/newsub");
	uint64_t newsub = a.ino;
	cow_forget(v, newsub, 1);
	check_int(write_path(v, "new2.txt", "closed\n"), 0, "live: create new2.txt and close it");
	uint64_t new2 = ino_of(v, "new2.txt");
	uint64_t old = client_layer(st, "live");
	struct cow_file *fw;
	r = cow_open(v, ino_of(v, "keep.txt"), O_RDWR, &fw);
	check_int(r, 0, "live: open keep.txt for writing and keep it open");
	if (r == 0)
		check_int(cow_write(fw, "OLD", 3, 0), 3, "live: write keep.txt (copied up into the old layer)");

	check_int(cow_view_reset(v), 0, "cow_view_reset of the live view");
	if (r == 0) {
		/* the open file writes on: a fresh copy-up into the new layer */
		check_int(cow_write(fw, "NU", 2, 0), 2, "a file open across the reset still writes");
		check_int(cow_release(fw), 0, "release it");
		check_content(v, "live", "keep.txt", "NUtouched\n");
	}
	uint64_t fresh = client_layer(st, "live");
	check(fresh && fresh != old, "same layer", "the client has a new layer");
	r = cow_ref(v, hello, &a);
	check(r == 0 && a.ino == hello, "cow_ref failed", "an image object keeps its ino: cow_ref(hello.txt) works");
	if (r == 0)
		cow_forget(v, hello, 1);
	check_int(ino_of(v, "hello.txt"), (long long)hello, "lookup of hello.txt gives the same ino");
	check_content(v, "live", "hello.txt", "hello world\n");
	check_int(cow_ref(v, dir, &a), 0, "cow_ref of image directory 'dir' works");
	cow_forget(v, dir, 1);
	check_int(cow_ref(v, new2, &a), -ENOENT, "cow_ref of a file of the old layer is -ENOENT");
	check_int(cow_ref(v, newsub, &a), -ENOENT, "cow_ref of a directory of the old layer is -ENOENT");
	check_int(cow_lookup(v, root, "new.txt", &a), -ENOENT, "lookup of new.txt is -ENOENT");
	check_int(cow_lookup(v, dir, "newsub", &a), -ENOENT, "lookup of dir/newsub is -ENOENT");
	check_int(count_dir(v, "dir"), 2, "readdir of dir lists the image's two entries");
	/* nothing of the old layer is read again, not even through a file
	 * opened before the reset (a served client's next boot must not
	 * reach its last boot's files by an old handle) */
	check_int(cow_read(f, buf, sizeof(buf) - 1, 0), -ESTALE, "an open file of an old-layer object reads -ESTALE");
	check_int(cow_write(f, "x", 1, 0), -ESTALE, "and writes -ESTALE");
	check_int(cow_ref(v, newino, &a), -ESTALE, "and cow_ref of it, while it is open, is -ESTALE");
	check_int(cow_release(f), 0, "release that file");
	cow_forget(v, newino, 1);
	check_int(cow_ref(v, newino, &a), -ENOENT, "once released, cow_ref of that object is -ENOENT");

	check_int(write_path(v, "after.txt", "after\n"), 0, "live: create after.txt after the reset");
	check_int(write_path(v, "keep.txt", "new layer\n"), 0, "live: rewrite keep.txt after the reset");
	struct cow_view *vi = open_image(st, "base");
	if (vi) {
		check_content(vi, "base", "keep.txt", "untouched\n");
		check_content(vi, "base", "hello.txt", "hello world\n");
		close_view(vi, "image 'base'");
	}
	check_int(cow_view_sync(v), 0, "sync the live view");
	struct cow_layer_stats ls;
	r = cow_layer_stats(st, fresh, &ls);
	check(r == 0 && ls.objects >= 2, "nothing recorded", "writes after the reset go to the new layer");
	r = cow_client_holder(st, "live", &h);
	check(r == 1 && !strcmp(h.what, "serve test"), "not held", "the view holds its new layer, under the same name");
	check_int(cow_client_reset(st, "live"), -EBUSY, "an offline reset of the live client is -EBUSY");
	close_view(v, "client 'live'");

	if (!(v = open_client(st, "live")))
		return;
	check_content(v, "live (reopened)", "after.txt", "after\n");
	check_content(v, "live (reopened)", "keep.txt", "new layer\n");
	check_content(v, "live (reopened)", "hello.txt", "hello world\n");
	check_absent(v, "live (reopened)", "new.txt");
	check_absent(v, "live (reopened)", "dir/newsub");
	close_view(v, "client 'live'");

	struct cow_gc_report g;
	r = gc(st, &g);
	snprintf(details, sizeof(details), "returned %d%s, layers %llu, busy %llu", r, errname(r),
		 (unsigned long long)g.layers, (unsigned long long)g.busy);
	check(r == 0 && g.layers >= 1 && g.busy == 0, details, "gc after closing reclaims the dead layer");
	check(!layer_dir_exists(storedir, old), "still there", "the dead layer's data directory is gone");
	check_fsck_clean(st, "after a live reset and gc");
	check_int(cow_client_rm(st, "live", 0), 0, "remove client 'live'");
}

static void test_busy_and_rm(struct cow_store *st)
{
	struct cow_view *v;
	check_int(cow_client_add(st, "held", "base"), 0, "add client 'held'");
	if (!(v = open_client(st, "held")))
		return;
	check_int(write_path(v, "hello.txt", "held\n"), 0, "held: write");
	check_int(cow_client_snapshot(st, "held", "held-img"), -EBUSY, "snapshot of a held client is -EBUSY");
	check_int(cow_client_rebase(st, "held", "base", NULL, NULL), -EBUSY, "rebase of a held client is -EBUSY");
	check_int(cow_client_rm(st, "held", 0), -EBUSY, "rm of a held client is -EBUSY");
	check_int(cow_client_add(st, "served", "base"), 0, "add client 'served'");
	struct cow_view *vs = open_client(st, "served");
	uint64_t served = client_layer(st, "served");
	if (vs) {
		check_int(cow_client_rm(st, "served", COW_LIVE), 0, "rm with COW_LIVE of a held client");
		check_int(write_path(vs, "late.txt", "late\n"), 0, "the server's view still writes");
		struct cow_gc_report g;
		int r = gc(st, &g);
		check(r == 0 && g.busy == 1 && layer_dir_exists(storedir, served), "reclaimed",
		      "gc leaves the dead layer a view still holds (busy)");
		close_view(vs, "client 'served'");
	}
	struct cow_image_info ii;
	check_int(cow_image_get(st, "held-img", &ii), -ENOENT, "the refused snapshot made no image");
	close_view(v, "client 'held'");

	uint64_t layer = client_layer(st, "held");
	check_int(cow_client_rm(st, "held", 0), 0, "cow_client_rm of a closed client");
	struct cow_client_info ci;
	check_int(cow_client_get(st, "held", &ci), -ENOENT, "the removed client is gone");
	check_int(cow_view_open(st, "held", NULL, 0, &v), -ENOENT, "its view cannot be opened");
	check_int(cow_client_rm(st, "held", 0), -ENOENT, "rm of an unknown client is -ENOENT");
	check(layer_dir_exists(storedir, layer), "gone", "rm leaves the data for gc");
	check_fsck_clean(st, "after rm (dead layer waiting)");
	struct cow_gc_report g;
	check(gc(st, &g) == 0 && g.layers >= 1 && !layer_dir_exists(storedir, layer), "not reclaimed",
	      "gc reclaims the removed client's layer");
	/* a name freed by rm can be used again, with a new id */
	check_int(cow_client_add(st, "held", "base"), 0, "a removed client's name can be added again");
	check_int(cow_client_rm(st, "held", 0), 0, "and removed again");
}

static void test_snapshot(struct cow_store *st)
{
	struct cow_view *v, *vo, *vi;
	struct cow_attr a;
	char details[512];

	check_int(cow_client_add(st, "maint", "base"), 0, "add client 'maint'");
	check_int(cow_client_add(st, "other", "base"), 0, "add client 'other'");
	if (!(v = open_client(st, "maint")))
		return;
	check_int(write_path(v, "hello.txt", "v2\n"), 0, "maint: rewrite hello.txt");
	check_int(write_path(v, "added.txt", "added\n"), 0, "maint: add added.txt");
	check_int(cow_unlink(v, ino_of(v, "rmd"), "x"), 0, "maint: remove rmd/x");
	struct cow_attr set = {.mode = 0700};
	check_int(cow_setattr(v, ino_of(v, "keep.txt"), &set, COW_SET_MODE, &a), 0, "maint: chmod keep.txt");
	if (have_dev) {
		check_int(cow_mknod(v, cow_view_root(v), "tty9", S_IFCHR | 0620, makedev(4, 9), &cred, &a), 0,
			  "maint: mknod tty9");
		cow_forget(v, a.ino, 1);
		/* a 0:0 character device is a device, never a whiteout */
		check_int(cow_mknod(v, cow_view_root(v), "c00", S_IFCHR | 0600, makedev(0, 0), &cred, &a), 0,
			  "maint: mknod c00 (0:0)");
		cow_forget(v, a.ino, 1);
	}
	close_view(v, "client 'maint'");
	uint64_t maint_id = 0;
	struct cow_client_info ci;
	if (cow_client_get(st, "maint", &ci) == 0)
		maint_id = ci.id;
	uint64_t frozen = ci.layer;

	check_int(cow_client_snapshot(st, "maint", "base@2"), 0, "cow_client_snapshot maint as 'base@2'");
	check_int(cow_client_snapshot(st, "other", "base@2"), -EEXIST, "snapshot under a taken name is -EEXIST");
	check_int(cow_client_snapshot(st, "other", ".bad"), -EINVAL, "snapshot under a bad name is -EINVAL");
	check_int(cow_client_snapshot(st, "nosuch", "x1"), -ENOENT, "snapshot of an unknown client is -ENOENT");
	struct cow_image_info ii, base;
	int r = cow_image_get(st, "base@2", &ii);
	cow_image_get(st, "base", &base);
	snprintf(details, sizeof(details), "returned %d, layer %llu (client's was %llu), parent %llu (base %llu)", r,
		 (unsigned long long)ii.layer, (unsigned long long)frozen, (unsigned long long)ii.parent,
		 (unsigned long long)base.layer);
	check(r == 0 && ii.layer == frozen && ii.parent == base.layer, details,
	      "the image's top layer is the client's frozen layer, on base's");
	r = cow_client_get(st, "maint", &ci);
	check(r == 0 && !strcmp(ci.image, "base@2") && ci.layer != frozen && ci.objects == 0 && ci.id == maint_id,
	      "wrong", "maint is on 'base@2' with an empty layer and keeps its id");

	/* the client writes on; the image stays as frozen */
	if (!(v = open_client(st, "maint")))
		return;
	check_content(v, "maint", "hello.txt", "v2\n");
	check_int(write_path(v, "hello.txt", "v3\n"), 0, "maint: rewrite hello.txt after the snapshot");
	check_int(write_path(v, "added.txt", "added, then changed\n"), 0, "maint: rewrite added.txt");
	check_int(cow_unlink(v, cow_view_root(v), "sym"), 0, "maint: remove sym");
	check_int(cow_view_sync(v), 0, "maint: sync");
	if ((vi = open_image(st, "base@2"))) {
		check_content(vi, "base@2", "hello.txt", "v2\n");
		check_content(vi, "base@2", "added.txt", "added\n");
		check_absent(vi, "base@2", "rmd/x");
		check(walk(vi, "sym", &a) == 0, "missing", "base@2: sym is still there");
		check(walk(vi, "keep.txt", &a) == 0 && (a.mode & 07777) == 0700, "wrong mode",
		      "base@2: keep.txt is 0700");
		check_int(cow_mkdir(vi, cow_view_root(vi), "nope", 0755, &cred, &a), -EROFS,
			  "an image view refuses writes (-EROFS)");
		close_view(vi, "image 'base@2'");
	}
	close_view(v, "client 'maint'");

	/* other clients of the old image see none of it */
	if ((vo = open_client(st, "other"))) {
		check_content(vo, "other", "hello.txt", "hello world\n");
		check_absent(vo, "other", "added.txt");
		check_content(vo, "other", "rmd/x", "x\n");
		close_view(vo, "client 'other'");
	}
	if ((vi = open_image(st, "base"))) {
		check_content(vi, "base", "hello.txt", "hello world\n");
		close_view(vi, "image 'base'");
	}

	/* 10,000 changes freeze just as well */
	check_int(cow_client_add(st, "bulk", "base"), 0, "add client 'bulk'");
	if ((v = open_client(st, "bulk"))) {
		check_int(make_many(v, "many", MANY), MANY, "bulk creates %d files", MANY);
		close_view(v, "client 'bulk'");
	}
	check_int(cow_client_snapshot(st, "bulk", "bulk-img"), 0, "snapshot of a client with %d changes", MANY);
	if ((vi = open_image(st, "bulk-img"))) {
		check_int(count_dir(vi, "many"), MANY, "the image lists all %d files", MANY);
		check_content(vi, "bulk-img", "many/f09999", "f09999");
		close_view(vi, "image 'bulk-img'");
	}
	check_int(cow_client_rm(st, "bulk", 0), 0, "remove client 'bulk'");
	check_int(cow_image_rm(st, "bulk-img"), 0, "remove image 'bulk-img'");
	check_fsck_clean(st, "after snapshots");
}

static void test_rebase(struct cow_store *st)
{
	struct cow_view *v;
	struct cow_attr a;
	struct lines c = {0};

	check_int(cow_client_add(st, "ra", "base"), 0, "add client 'ra'");
	check_int(cow_client_add(st, "rb", "base"), 0, "add client 'rb'");
	if (!(v = open_client(st, "ra")))
		return;
	check_int(write_path(v, "hello.txt", "A\n"), 0, "ra: rewrite hello.txt");
	check_int(write_path(v, "dir/a", "A-a\n"), 0, "ra: rewrite dir/a");
	check_int(write_path(v, "ra-new", "from ra\n"), 0, "ra: add ra-new");
	check_int(write_path(v, "mvdir/inner", "A-inner\n"), 0, "ra: rewrite mvdir/inner");
	close_view(v, "client 'ra'");
	check_int(cow_client_snapshot(st, "ra", "base@r"), 0, "snapshot ra as 'base@r'");

	if (!(v = open_client(st, "rb")))
		return;
	check_int(write_path(v, "hello.txt", "B\n"), 0, "rb: rewrite hello.txt (changed on both sides)");
	check_int(cow_unlink(v, ino_of(v, "dir"), "a"), 0, "rb: remove dir/a (changed in the new image)");
	check_int(write_path(v, "empty", "B-empty\n"), 0, "rb: rewrite empty (untouched in the new image)");
	check_int(write_path(v, "rb-new", "from rb\n"), 0, "rb: add rb-new");
	close_view(v, "client 'rb'");
	uint64_t rb_layer = client_layer(st, "rb");

	check_int(cow_client_rebase(st, "rb", "nosuch", conflict_line, &c), -ENOENT,
		  "rebase onto an unknown image is -ENOENT");
	check_int(cow_client_rebase(st, "nosuch", "base@r", conflict_line, &c), -ENOENT,
		  "rebase of an unknown client is -ENOENT");
	c = (struct lines){0};
	int r = cow_client_rebase(st, "rb", "base@r", conflict_line, &c);
	check_int(r, 0, "cow_client_rebase rb onto 'base@r'");
	char details[8300];
	snprintf(details, sizeof(details), "conflicts: %s", c.text);
	check(has_line(&c, "/hello.txt"), details, "rebase reports /hello.txt (changed in both)");
	check(has_line(&c, "/dir/a"), details, "rebase reports /dir/a (removed in the layer, changed in the image)");

	struct cow_client_info ci;
	check(cow_client_get(st, "rb", &ci) == 0 && !strcmp(ci.image, "base@r") && ci.layer == rb_layer, "wrong",
	      "rb is on 'base@r' and kept its layer");
	if ((v = open_client(st, "rb"))) {
		/* directories whose entries changed on both sides may be
		 * reported too; no other file may be */
		int files = 0;
		char *save = NULL, text[sizeof(c.text)];
		snprintf(text, sizeof(text), "%s", c.text);
		for (char *path = strtok_r(text, ";", &save); path; path = strtok_r(NULL, ";", &save))
			files += walk(v, path + 1, &a) < 0 || !S_ISDIR(a.mode);
		check_int(files, 2, "rebase reports no other file (untouched paths are no conflict)");
		check_content(v, "rb", "hello.txt", "B\n");
		check_absent(v, "rb", "dir/a");
		check_content(v, "rb", "empty", "B-empty\n");
		check_content(v, "rb", "rb-new", "from rb\n");
		check_content(v, "rb", "ra-new", "from ra\n");
		check_content(v, "rb", "mvdir/inner", "A-inner\n");
		close_view(v, "client 'rb'");
	}
	struct cow_view *vi = open_image(st, "base@r");
	if (vi) {
		check_content(vi, "base@r", "hello.txt", "A\n");
		check_content(vi, "base@r", "dir/a", "A-a\n");
		close_view(vi, "image 'base@r'");
	}

	/* not a descendant of the client's image */
	char other[256];
	snprintf(other, sizeof(other), "%s/dir/sub", src);
	check_int(cow_image_import(st, "other", other, NULL, NULL), 0, "import an unrelated image 'other'");
	c = (struct lines){0};
	check_int(cow_client_rebase(st, "rb", "other", conflict_line, &c), -EXDEV,
		  "rebase onto an unrelated image is -EXDEV");
	check_int(cow_client_rebase(st, "rb", "base", conflict_line, &c), -EXDEV,
		  "rebase onto the image's own parent is -EXDEV");
	check(cow_client_get(st, "rb", &ci) == 0 && !strcmp(ci.image, "base@r") && ci.layer == rb_layer, "moved",
	      "a refused rebase leaves the client where it was");
	check_int(cow_client_rebase(st, "rb", "base@r", conflict_line, &c), 0,
		  "rebase onto the client's own image is allowed");
	check_int(c.n, 0, "and reports no conflict");

	/* two layers up: base -> base@2 -> base@3; the same removal on both
	 * sides is no conflict */
	check_int(cow_client_add(st, "r2", "base"), 0, "add client 'r2' on base");
	if ((v = open_client(st, "r2"))) {
		check_int(write_path(v, "added.txt", "r2\n"), 0, "r2: add added.txt (base@2 added it too)");
		check_int(cow_unlink(v, cow_view_root(v), "sym"), 0, "r2: remove sym (base@3 removed it too)");
		check_int(write_path(v, "dir/sub/b", "r2-b\n"), 0, "r2: rewrite dir/sub/b (untouched above)");
		close_view(v, "client 'r2'");
	}
	check_int(cow_client_snapshot(st, "maint", "base@3"), 0, "snapshot maint again as 'base@3'");
	c = (struct lines){0};
	check_int(cow_client_rebase(st, "r2", "base@3", conflict_line, &c), 0, "rebase r2 two images up");
	snprintf(details, sizeof(details), "conflicts: %s", c.text);
	check(has_line(&c, "/added.txt") && !has_line(&c, "/sym") && !has_line(&c, "/dir/sub/b"), details,
	      "it reports added.txt (added on both sides), not sym (removed on both) nor dir/sub/b");
	if ((v = open_client(st, "r2"))) {
		check_content(v, "r2", "added.txt", "r2\n");
		check_content(v, "r2", "hello.txt", "v3\n");
		check_absent(v, "r2", "sym");
		close_view(v, "client 'r2'");
	}
	check_fsck_clean(st, "after rebase");
}

static void test_diff(struct cow_store *st)
{
	struct cow_view *v;
	struct cow_attr a, set = {0};
	struct lines d = {0};
	char details[8300];

	check_int(cow_client_add(st, "dc", "base"), 0, "add client 'dc'");
	check_int(cow_client_diff(st, "dc", diff_line, &d), 0, "diff of a fresh client");
	check_int(d.n, 0, "a fresh client has no changes");
	check_int(cow_client_diff(st, "nosuch", diff_line, &d), -ENOENT, "diff of an unknown client is -ENOENT");
	if (!(v = open_client(st, "dc")))
		return;
	uint64_t root = cow_view_root(v);
	check_int(write_path(v, "newfile", "new\n"), 0, "dc: add newfile");
	check_int(cow_mkdir(v, root, "newdir", 0755, &cred, &a), 0, "dc: mkdir newdir");
	cow_forget(v, a.ino, 1);
	check_int(write_path(v, "dir/a", "changed\n"), 0, "dc: rewrite dir/a");
	set.mode = 0600;
	check_int(cow_setattr(v, ino_of(v, "hello.txt"), &set, COW_SET_MODE, &a), 0, "dc: chmod hello.txt");
	set.uid = 42;
	set.gid = 43;
	check_int(cow_setattr(v, ino_of(v, "keep.txt"), &set, COW_SET_UID | COW_SET_GID, &a), 0, "dc: chown keep.txt");
	check_int(cow_setxattr(v, ino_of(v, "dir/sub/b"), "user.k", "v", 1, 0), 0, "dc: setxattr on dir/sub/b");
	struct vfs_cap_data cap = {
	    .magic_etc = htole32(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE),
	    .data = {{.permitted = htole32(1u << CAP_NET_BIND_SERVICE)}},
	};
	check_int(cow_setxattr(v, ino_of(v, "suid"), "security.capability", &cap, XATTR_CAPS_SZ_2, 0), 0,
		  "dc: set security.capability on suid");
	check_int(cow_unlink(v, root, "fifo"), 0, "dc: remove fifo");
	check_int(cow_unlink(v, ino_of(v, "rmd"), "x"), 0, "dc: remove rmd/x");
	check_int(cow_rmdir(v, root, "rmd"), 0, "dc: rmdir rmd");
	check_int(cow_rename(v, ino_of(v, "mvdir"), "inner", root, "inner2", 0), 0, "dc: rename mvdir/inner to inner2");
	check_int(cow_link(v, ino_of(v, "hl1"), root, "hl3", &a), 0, "dc: hardlink hl1 as hl3");
	cow_forget(v, a.ino, 1);
	check_int(cow_link(v, ino_of(v, "newfile"), ino_of(v, "dir"), "newlink", &a), 0,
		  "dc: hardlink newfile as dir/newlink");
	cow_forget(v, a.ino, 1);
	close_view(v, "client 'dc'");

	d = (struct lines){0};
	check_int(cow_client_diff(st, "dc", diff_line, &d), 0, "cow_client_diff of dc");
	snprintf(details, sizeof(details), "diff: %s", d.text);
	printf("# %s\n", details);
	static const char *const want[] = {
	    "added /newfile",	  "added /newdir/",	  "modified /dir/a", "metadata /hello.txt",
	    "metadata /keep.txt", "metadata /dir/sub/b",  "metadata /suid",  "deleted /fifo",
	    "deleted /rmd/",	  "deleted /mvdir/inner", "added /inner2",   "added /hl3",
	    "added /dir/newlink",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		check(has_line(&d, want[i]), details, "diff reports '%s'", want[i]);
	static const char *const untouched[] = {"/sparse.bin", "/empty", "/sym", "/dangling", "/dir/sub/"};
	for (size_t i = 0; i < sizeof(untouched) / sizeof(untouched[0]); i++)
		check(!mentions(&d, untouched[i]), details, "diff does not mention untouched '%s'", untouched[i]);
	check(!mentions(&d, "/rmd/x"), details, "the contents of a removed directory are not listed one by one");
	check_int(cow_client_rm(st, "dc", 0), 0, "remove client 'dc'");
}

static int user_line(void *arg, const char *kind, const char *name)
{
	struct lines *l = arg;
	size_t len = strlen(l->text);
	snprintf(l->text + len, sizeof(l->text) - len, "%s %s;", kind, name);
	l->n++;
	return 0;
}

static void test_image_rm(struct cow_store *st)
{
	struct lines u = {0};
	check_int(cow_image_rm(st, "base"), -EBUSY, "cow_image_rm of an image with clients and images on it is -EBUSY");
	int r = cow_image_users(st, "base", user_line, &u);
	char details[8300];
	snprintf(details, sizeof(details), "users: %s", u.text);
	check(r == 0 && strstr(u.text, "client other;") && strstr(u.text, "image base@2;"), details,
	      "cow_image_users names the client 'other' and the image 'base@2'");
	check_int(cow_image_rm(st, "base@r"), -EBUSY, "cow_image_rm of an image a client is on is -EBUSY");
	check_int(cow_image_rm(st, "nosuch"), -ENOENT, "cow_image_rm of an unknown image is -ENOENT");
	check_int(cow_image_rm(st, "other"), 0, "cow_image_rm of an unused image");
	struct cow_image_info ii;
	check_int(cow_image_get(st, "other", &ii), -ENOENT, "the removed image is gone");
	check_int(cow_client_add(st, "late", "other"), -ENOENT, "no client can be added on a removed image");
}

static void test_flatten(struct cow_store *st)
{
	char il[1024], dl[2048], il2[1024], dl2[2048];
	struct cow_view *va = open_image(st, "base@2"), *vf;
	if (!va)
		return;
	char *want = dump_tree(va, "image 'base@2'");
	close_view(va, "image 'base@2'");

	image_list(st, il);
	data_list(storedir, dl);
	int n = 1;
	check_int(cow_image_flatten(st, "base@2", "flat", cancel_at, &n), -ECANCELED,
		  "flatten cancelled by its progress callback is -ECANCELED");
	check(!strcmp(il, image_list(st, il2)), il2, "a cancelled flatten records no image");
	check(!strcmp(dl, data_list(storedir, dl2)), dl2, "a cancelled flatten leaves no data behind");

	check_int(cow_image_flatten(st, "base@2", "flat", NULL, NULL), 0, "cow_image_flatten of 'base@2' as 'flat'");
	check_int(cow_image_flatten(st, "base@2", "flat", NULL, NULL), -EEXIST, "flatten onto a taken name is -EEXIST");
	check_int(cow_image_flatten(st, "nosuch", "flat2", NULL, NULL), -ENOENT,
		  "flatten of an unknown image is -ENOENT");
	check_int(cow_image_flatten(st, "base@2", "-bad", NULL, NULL), -EINVAL, "flatten to a bad name is -EINVAL");
	struct cow_image_info ii;
	check(cow_image_get(st, "flat", &ii) == 0 && ii.parent == 0, "has a parent", "'flat' is a base image");
	if ((vf = open_image(st, "flat"))) {
		char *got = dump_tree(vf, "image 'flat'");
		check_same_tree(got, want, "'flat' is the same tree as 'base@2'");
		if (got && want && strcmp(got, want)) {
			show_dump("base@2", want);
			show_dump("flat", got);
		}
		check_int(ino_of(vf, "hello.txt") != 0, 1, "flat has hello.txt");
		free(got);
		close_view(vf, "image 'flat'");
	}
	free(want);
	/* the flat image stands alone: a client on it works */
	check_client_writes(st, "flat", "onflat");

	/* and it outlives the chain it came from (its data files are shared) */
	check_int(cow_image_import(st, "solo", src, NULL, NULL), 0, "import 'solo'");
	check_int(cow_image_flatten(st, "solo", "solo-flat", NULL, NULL), 0, "flatten 'solo' as 'solo-flat'");
	char *before = NULL, *after = NULL;
	if ((vf = open_image(st, "solo-flat"))) {
		before = dump_tree(vf, "image 'solo-flat'");
		close_view(vf, "image 'solo-flat'");
	}
	check_int(cow_image_rm(st, "solo"), 0, "remove 'solo'");
	struct cow_gc_report g;
	check_int(gc(st, &g), 0, "gc");
	if ((vf = open_image(st, "solo-flat"))) {
		after = dump_tree(vf, "image 'solo-flat' after gc");
		close_view(vf, "image 'solo-flat'");
	}
	check_same_tree(after, before, "'solo-flat' is intact after its source image is removed and gc ran");
	free(before);
	free(after);
	check_int(cow_image_rm(st, "solo-flat"), 0, "remove 'solo-flat'");
	check_fsck_clean(st, "after flatten");
}

/* Write @n bytes of @data to @path. */
static void put_bytes(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || (n && write(fd, data, n) != (ssize_t)n))
		bail(path);
	close(fd);
}

static char *get_bytes(const char *path, size_t *ret_n)
{
	int fd = open(path, O_RDONLY);
	struct stat s;
	if (fd < 0 || fstat(fd, &s) < 0)
		bail(path);
	char *b = malloc((size_t)s.st_size + 1);
	if (!b || read(fd, b, (size_t)s.st_size) != s.st_size)
		bail(path);
	close(fd);
	*ret_n = (size_t)s.st_size;
	return b;
}

/* The uncompressed bundle. */
static char *gunzip_file(const char *path, size_t *ret_n)
{
	gzFile gz = gzopen(path, "rb");
	size_t cap = 1 << 20, n = 0;
	char *b = malloc(cap);
	if (!gz || !b)
		bail(path);
	int k;
	while ((k = gzread(gz, b + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)k;
		if (n == cap && !(b = realloc(b, cap *= 2)))
			bail("realloc");
	}
	gzclose(gz);
	*ret_n = n;
	return b;
}

static void gzip_file(const char *path, const char *b, size_t n)
{
	gzFile gz = gzopen(path, "wb6");
	if (!gz || gzwrite(gz, b, (unsigned)n) != (int)n || gzclose(gz) != Z_OK)
		bail(path);
}

/* Load @bundle into the store at @dir and check it is refused with @want
 * and leaves the store exactly as it was. */
static void check_bad_load(struct cow_store *st, const char *dir, const char *bundle, int want, const char *what)
{
	char il[1024], dl[2048], il2[1024], dl2[2048];
	image_list(st, il);
	data_list(dir, dl);
	check_int(cow_image_load(st, bundle, "bad", NULL, NULL, NULL, 0), want, "load of %s is refused", what);
	check(!strcmp(il, image_list(st, il2)), il2, "the refused load of %s records no image", what);
	check(!strcmp(dl, data_list(dir, dl2)), dl2, "the refused load of %s leaves no data behind", what);
	check_fsck_clean(st, "after the refused load");
}

static void test_bundles(struct cow_store *st)
{
	char bundle[256], p[256], il[1024], dl[2048], il2[1024], dl2[2048];
	struct cow_store *st2 = NULL;
	struct cow_view *va, *vb;
	snprintf(bundle, sizeof(bundle), "%s/base2.bundle", top);

	if (!(va = open_image(st, "base@2")))
		return;
	char *want = dump_tree(va, "image 'base@2'");
	close_view(va, "image 'base@2'");

	/* export: cancel and errors leave no file */
	int n = 1;
	check_int(cow_image_export(st, "base@2", bundle, cancel_at, &n), -ECANCELED,
		  "a cancelled export is -ECANCELED");
	check(!path_exists(bundle), "file exists", "a cancelled export leaves no bundle");
	check_int(cow_image_export(st, "nosuch", bundle, NULL, NULL), -ENOENT, "export of an unknown image is -ENOENT");
	snprintf(p, sizeof(p), "%s/no-dir/x.bundle", top);
	check_int(cow_image_export(st, "base@2", p, NULL, NULL), -ENOENT, "export into a missing directory is -ENOENT");
	{
		DIR *d = opendir(top);
		struct dirent *de;
		int tmp = 0;
		while (d && (de = readdir(d)))
			tmp += strstr(de->d_name, ".tmp") != NULL;
		if (d)
			closedir(d);
		check_int(tmp, 0, "failed exports leave no temporary files");
	}
	check_int(cow_image_export(st, "base@2", bundle, NULL, NULL), 0, "cow_image_export of 'base@2'");

	/* a second store */
	if (!check_int(cow_store_open(store2dir, COW_STORE_CREATE, &st2), 0, "create a second store"))
		goto out;
	image_list(st2, il);
	data_list(store2dir, dl);
	n = 2;
	check_int(cow_image_load(st2, bundle, NULL, cancel_at, &n, NULL, 0), -ECANCELED,
		  "a cancelled load is -ECANCELED");
	check(!strcmp(il, image_list(st2, il2)), il2, "a cancelled load records no image");
	check(!strcmp(dl, data_list(store2dir, dl2)), dl2, "a cancelled load leaves no data behind");
	check_int(cow_image_load(st2, bundle, ".bad", NULL, NULL, NULL, 0), -EINVAL,
		  "load under a bad name is -EINVAL");
	check_int(cow_image_load(st2, bundle, NULL, NULL, NULL, NULL, 0), 0, "cow_image_load into the second store");
	check_int(cow_image_load(st2, bundle, NULL, NULL, NULL, NULL, 0), -EEXIST,
		  "loading the same name again is -EEXIST");
	check_int(cow_image_load(st2, bundle, "copy", NULL, NULL, NULL, 0), 0, "load again as 'copy'");
	snprintf(p, sizeof(p), "%s/missing.bundle", top);
	check_int(cow_image_load(st2, p, "m", NULL, NULL, NULL, 0), -ENOENT, "load of a missing file is -ENOENT");
	if ((vb = open_image(st2, "base@2"))) {
		struct cow_attr a;
		if (have_dev)
			check(walk(vb, "c00", &a) == 0 && S_ISCHR(a.mode) && a.rdev == 0, "missing or not a device",
			      "the loaded image has the 0:0 character device c00");
		char *got = dump_tree(vb, "the loaded image");
		check_same_tree(got, want, "the loaded image is the same tree as the exported one");
		if (got && want && strcmp(got, want)) {
			show_dump("exported", want);
			show_dump("loaded", got);
		}
		free(got);
		close_view(vb, "the loaded image");
	}
	check_client_writes(st2, "copy", "c");
	check_fsck_clean(st2, "of the second store after loads");

	/* damaged bundles */
	size_t len, raw_len;
	char *good = get_bytes(bundle, &len), *raw = gunzip_file(bundle, &raw_len);
	char bad[256];
	snprintf(bad, sizeof(bad), "%s/bad.bundle", top);
	put_bytes(bad, good, len / 2);
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a bundle cut in half");
	put_bytes(bad, good, len - 1);
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a bundle missing its last byte");
	put_bytes(bad, good, 10);
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a bundle cut to 10 bytes");
	put_bytes(bad, "", 0);
	check_bad_load(st2, store2dir, bad, -EBADMSG, "an empty file");
	put_bytes(bad, "this is not a bundle\n", 21);
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a text file");
	good[len / 2] ^= 0x20;
	put_bytes(bad, good, len);
	good[len / 2] ^= 0x20;
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a bundle with a flipped compressed byte");
	{
		char *two = malloc(2 * len);
		memcpy(two, good, len);
		memcpy(two + len, good, len);
		put_bytes(bad, two, 2 * len);
		free(two);
		check_bad_load(st2, store2dir, bad, -EBADMSG, "two bundles concatenated");
	}
	/* valid gzip streams with altered content: the bundle's own checks */
	raw[raw_len / 2] ^= 0x01;
	gzip_file(bad, raw, raw_len);
	raw[raw_len / 2] ^= 0x01;
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a recompressed bundle with one payload bit flipped");
	raw[raw_len - 1] ^= 0x80;
	gzip_file(bad, raw, raw_len);
	raw[raw_len - 1] ^= 0x80;
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a recompressed bundle with a wrong checksum");
	raw[0] = 'X';
	gzip_file(bad, raw, raw_len);
	raw[0] = 'C';
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a bundle with the wrong magic");
	gzip_file(bad, raw, raw_len - 13);
	check_bad_load(st2, store2dir, bad, -EBADMSG, "a recompressed bundle without its trailer");
	raw[8] = 99; /* the version */
	gzip_file(bad, raw, raw_len);
	raw[8] = 1;
	check_bad_load(st2, store2dir, bad, -EPROTO, "a bundle of a newer version");
	free(good);
	free(raw);
out:
	free(want);
	if (st2)
		cow_store_close(st2);
}

/* ---- hostile bundles: records written directly ---- */

struct hobj {
	uint64_t ino;
	uint32_t mode, nlink, uid, gid;
	uint64_t rdev;
	int64_t size;
	const char *target; /* symlinks */
	uint32_t tlen;	    /* its length if not strlen (a NUL inside) */
	const char *xnames[3];
	uint64_t ext[2][2]; /* regular files: extents {off, len} of 'x', len 0 ends */
	uint32_t nbig;	    /* after xnames, this many xattrs user.x00000... of 100 bytes */
};

struct hdent {
	uint64_t parent, ino;
	uint8_t type;
	const char *name;
	uint16_t len; /* if not strlen (a NUL inside, or empty) */
};

struct hbundle {
	uint32_t version;
	uint64_t root;
	struct hobj o[12];
	size_t no;
	struct hdent d[12];
	size_t nd;
};

/* A valid tree: / (1) with f (3), p (5) and sub/ (2); sub/ with g (3
 * again) and l (4, -> f).  Entries sorted by (parent, name). */
static struct hbundle hgood(void)
{
	return (struct hbundle){
	    .version = 2,
	    .root = 1,
	    .o = {{1, S_IFDIR | 0755, 3, 0, 0, 0, 0, NULL, 0, {"user.a", "user.b"}, {{0}}},
		  {2, S_IFDIR | 0700, 2, 1, 1, 0, 0, NULL, 0, {NULL}, {{0}}},
		  {3, S_IFREG | 0644, 2, 0, 0, 0, 5, NULL, 0, {NULL}, {{0, 5}}},
		  {4, S_IFLNK | 0777, 1, 0, 0, 0, 1, "f", 0, {NULL}, {{0}}},
		  {5, S_IFIFO | 0600, 1, 0, 0, 0, 0, NULL, 0, {NULL}, {{0}}}},
	    .no = 5,
	    .d = {{1, 3, DT_REG, "f", 0},
		  {1, 5, DT_FIFO, "p", 0},
		  {1, 2, DT_DIR, "sub", 0},
		  {2, 3, DT_REG, "g", 0},
		  {2, 4, DT_LNK, "l", 0}},
	    .nd = 5,
	};
}

struct hbuf {
	char *b;
	size_t n, cap;
};

static void hput(struct hbuf *h, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (h->n + n > h->cap) {
		h->cap = (h->n + n) * 2 + 1024;
		if (!(h->b = realloc(h->b, h->cap)))
			bail("realloc");
	}
	memcpy(h->b + h->n, p, n);
	h->n += n;
}
static void hu8(struct hbuf *h, uint8_t v)
{
	hput(h, &v, 1);
}
static void hu16(struct hbuf *h, uint16_t v)
{
	v = htole16(v);
	hput(h, &v, 2);
}
static void hu32(struct hbuf *h, uint32_t v)
{
	v = htole32(v);
	hput(h, &v, 4);
}
static void hu64(struct hbuf *h, uint64_t v)
{
	v = htole64(v);
	hput(h, &v, 8);
}

static int cmp_hdent(const void *a, const void *b)
{
	const struct hdent *x = a, *y = b;
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	size_t nx = x->len ? x->len : strlen(x->name), ny = y->len ? y->len : strlen(y->name);
	int c = memcmp(x->name, y->name, nx < ny ? nx : ny);
	return c ? c : (nx > ny) - (nx < ny);
}

/* Write @hb as a bundle (gzip, right checksum) to @path; version 2 has
 * its entries sorted as an export sorts them. */
static void hwrite(const struct hbundle *hb_in, const char *path)
{
	struct hbundle copy = *hb_in, *hb = &copy;
	if (hb->version >= 2)
		qsort(hb->d, hb->nd, sizeof(hb->d[0]), cmp_hdent);
	struct hbuf h = {0};
	hput(&h, "CRBUNDLE", 8);
	hu32(&h, hb->version);
	hu16(&h, 4);
	hput(&h, "host", 4);
	hu64(&h, hb->root);
	hu64(&h, hb->no);
	hu64(&h, hb->nd);
	for (size_t i = 0; i < hb->no; i++) {
		const struct hobj *o = &hb->o[i];
		hu8(&h, 'O');
		hu64(&h, o->ino);
		hu32(&h, o->mode);
		hu32(&h, o->nlink);
		hu32(&h, o->uid);
		hu32(&h, o->gid);
		hu64(&h, o->rdev);
		hu64(&h, (uint64_t)o->size);
		for (int t = 0; t < 3; t++)
			hu64(&h, 1700000000000000000ULL);
		uint32_t tl = o->target ? (o->tlen ? o->tlen : (uint32_t)strlen(o->target)) : 0;
		hu32(&h, tl);
		hput(&h, o->target, tl);
		uint32_t nx = 0;
		while (nx < 3 && o->xnames[nx])
			nx++;
		hu32(&h, nx + o->nbig);
		for (uint32_t x = 0; x < nx; x++) {
			hu16(&h, (uint16_t)strlen(o->xnames[x]));
			hput(&h, o->xnames[x], strlen(o->xnames[x]));
			hu32(&h, 1);
			hput(&h, "v", 1);
		}
		char name[32], value[100];
		memset(value, 'v', sizeof(value));
		for (uint32_t x = 0; x < o->nbig; x++) {
			int n = snprintf(name, sizeof(name), "user.x%05u", x);
			hu16(&h, (uint16_t)n);
			hput(&h, name, (size_t)n);
			hu32(&h, sizeof(value));
			hput(&h, value, sizeof(value));
		}
		if (S_ISREG(o->mode)) {
			for (int e = 0; e < 2 && o->ext[e][1]; e++) {
				hu64(&h, o->ext[e][0]);
				hu64(&h, o->ext[e][1]);
				for (uint64_t k = 0; k < o->ext[e][1]; k++)
					hu8(&h, 'x');
			}
			hu64(&h, UINT64_MAX);
		}
	}
	for (size_t i = 0; i < hb->nd; i++) {
		const struct hdent *d = &hb->d[i];
		uint16_t n = d->len ? d->len : (uint16_t)strlen(d->name);
		if (d->name && !*d->name)
			n = 0;
		hu8(&h, 'D');
		hu64(&h, d->parent);
		hu64(&h, d->ino);
		hu8(&h, d->type);
		hu16(&h, n);
		hput(&h, d->name, n);
	}
	uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), (const Bytef *)h.b, (uInt)h.n);
	hu8(&h, 'E');
	hu64(&h, hb->no);
	hu64(&h, hb->nd);
	hu32(&h, crc);
	gzip_file(path, h.b, h.n);
	free(h.b);
}

/* Load @hb and check it is refused with -EBADMSG, a reason that says
 * @why, and the store unchanged. */
static void hrefused(struct cow_store *st, const char *dir, const struct hbundle *hb, const char *why, const char *what)
{
	char path[256], il[1024], dl[2048], il2[1024], dl2[2048], got[512], details[700];
	snprintf(path, sizeof(path), "%s/hostile.bundle", top);
	hwrite(hb, path);
	image_list(st, il);
	data_list(dir, dl);
	int r = cow_image_load(st, path, "hostile", NULL, NULL, got, sizeof(got));
	snprintf(details, sizeof(details), "returned %d%s, why: %s", r, errname(r), got);
	check(r == -EBADMSG && strstr(got, why), details, "a bundle with %s is refused, saying '%s'", what, why);
	check(!strcmp(il, image_list(st, il2)), il2, "the refused load of %s records no image", what);
	check(!strcmp(dl, data_list(dir, dl2)), dl2, "the refused load of %s leaves no data behind", what);
}

static void test_hostile_bundles(void)
{
	char dir[192], path[256];
	struct cow_store *st;
	struct hbundle b;
	snprintf(dir, sizeof(dir), "%s/store-hostile", top);
	if (!check_int(cow_store_open(dir, COW_STORE_CREATE, &st), 0, "create a store for hostile bundles"))
		return;

	/* the builder makes what load takes */
	b = hgood();
	snprintf(path, sizeof(path), "%s/good.bundle", top);
	hwrite(&b, path);
	char why[512] = "";
	check_int(cow_image_load(st, path, "good", NULL, NULL, why, sizeof(why)), 0,
		  "the hand-made valid bundle loads%s%s", *why ? ": " : "", why);
	b.version = 1; /* walk order is fine in version 1 */
	struct hdent t = b.d[2];
	b.d[2] = b.d[4];
	b.d[4] = t;
	hwrite(&b, path);
	check_int(cow_image_load(st, path, "good1", NULL, NULL, why, sizeof(why)), 0,
		  "a version 1 bundle with entries in walk order loads%s%s", *why ? ": " : "", why);
	check_fsck_clean(st, "after loading the hand-made bundles");

	/* not trees */
	b = hgood();
	b.o[5] = (struct hobj){.ino = 6, .mode = S_IFDIR | 0755, .nlink = 3};
	b.o[6] = (struct hobj){.ino = 7, .mode = S_IFDIR | 0755, .nlink = 3};
	b.no = 7;
	b.d[5] = (struct hdent){.parent = 6, .ino = 7, .type = DT_DIR, .name = "b"};
	b.d[6] = (struct hdent){.parent = 7, .ino = 6, .type = DT_DIR, .name = "a"};
	b.nd = 7;
	hrefused(st, dir, &b, "cycle", "two directories in each other (a cycle)");
	b = hgood();
	b.d[5] = (struct hdent){.parent = 2, .ino = 1, .type = DT_DIR, .name = "up"};
	b.nd = 6;
	b.o[1].nlink = 3;
	hrefused(st, dir, &b, "root 1 is named", "the root inside its own subdirectory");
	b = hgood();
	b.d[2] = (struct hdent){.parent = 1, .ino = 2, .type = DT_DIR, .name = "sub"};
	b.d[5] = (struct hdent){.parent = 1, .ino = 2, .type = DT_DIR, .name = "sub2"};
	b.nd = 6;
	hrefused(st, dir, &b, "named twice", "a directory under two names");
	b = hgood();
	b.d[5] = (struct hdent){.parent = 3, .ino = 5, .type = DT_FIFO, .name = "x"};
	b.nd = 6;
	b.o[4].nlink = 2;
	hrefused(st, dir, &b, "not a directory", "an entry under a regular file");
	b = hgood();
	b.root = 3;
	hrefused(st, dir, &b, "root 3 is a regular file", "a regular file as its root");
	b = hgood();
	b.o[4].mode = 0600;
	hrefused(st, dir, &b, "no valid file type", "a mode of no file type");
	b = hgood();
	b.o[4].mode = 0170600;
	hrefused(st, dir, &b, "no valid file type", "a mode of an unknown file type");
	b = hgood();
	b.o[4].mode = S_IFIFO | 0200000;
	hrefused(st, dir, &b, "no valid file type", "a mode with bits above the file type");
	b = hgood();
	b.d[1].type = DT_REG;
	hrefused(st, dir, &b, "says type", "an entry type other than its object's");
	b = hgood();
	b.o[2].nlink = 1;
	hrefused(st, dir, &b, "nlink 1 but 2", "a file's nlink below its names");
	b = hgood();
	b.o[4].nlink = 2;
	hrefused(st, dir, &b, "nlink 2 but 1", "a fifo's nlink above its names");
	b = hgood();
	b.o[0].nlink = 2;
	hrefused(st, dir, &b, "not 2 + its 1 subdirectories", "a directory's nlink not 2 + its subdirectories");
	b = hgood();
	b.o[5] = (struct hobj){.ino = 6, .mode = S_IFREG | 0644, .nlink = 1};
	b.no = 6;
	hrefused(st, dir, &b, "in no directory", "an object no entry names");
	b = hgood();
	b.o[5] = (struct hobj){.ino = 6, .mode = S_IFDIR | 0755, .nlink = 2};
	b.no = 6;
	hrefused(st, dir, &b, "in no directory", "a directory no entry names");
	b = hgood();
	b.d[5] = (struct hdent){.parent = 2, .ino = 99, .type = DT_REG, .name = "ghost"};
	b.nd = 6;
	hrefused(st, dir, &b, "does not exist", "an entry naming a missing object");
	b = hgood();
	b.d[5] = (struct hdent){.parent = 98, .ino = 5, .type = DT_FIFO, .name = "x"};
	b.nd = 6;
	b.o[4].nlink = 2;
	hrefused(st, dir, &b, "does not exist", "an entry in a missing directory");

	/* names */
	b = hgood();
	b.d[1] = (struct hdent){.parent = 1, .ino = 5, .type = DT_FIFO, .name = "f"};
	hrefused(st, dir, &b, "name given twice", "one name twice in a directory (version 2)");
	b = hgood();
	b.version = 1;
	b.d[1] = (struct hdent){.parent = 1, .ino = 5, .type = DT_FIFO, .name = "f"};
	hrefused(st, dir, &b, "two entries named 'f'", "one name twice in a directory (version 1)");
	b = hgood();
	b.d[4] = (struct hdent){.parent = 2, .ino = 4, .type = DT_LNK, .name = "a/b"};
	hrefused(st, dir, &b, "not one", "a name with '/'");
	b = hgood();
	b.d[4] = (struct hdent){.parent = 2, .ino = 4, .type = DT_LNK, .name = "l\0x", .len = 3};
	hrefused(st, dir, &b, "not one", "a name with NUL");
	b = hgood();
	b.d[4] = (struct hdent){.parent = 2, .ino = 4, .type = DT_LNK, .name = "."};
	hrefused(st, dir, &b, "not one", "a name '.'");
	b = hgood();
	b.d[4] = (struct hdent){.parent = 2, .ino = 4, .type = DT_LNK, .name = ".."};
	hrefused(st, dir, &b, "not one", "a name '..'");
	b = hgood();
	b.d[3] = (struct hdent){.parent = 2, .ino = 4, .type = DT_LNK, .name = ""};
	b.d[4] = (struct hdent){.parent = 2, .ino = 3, .type = DT_REG, .name = "g"};
	hrefused(st, dir, &b, "name of 0 bytes", "an empty name");
	{
		static char longname[300];
		memset(longname, 'n', 256);
		b = hgood();
		b.d[4] = (struct hdent){.parent = 2, .ino = 4, .type = DT_LNK, .name = longname};
		hrefused(st, dir, &b, "name of 256 bytes", "a name over 255 bytes");
	}
	b = hgood();
	struct hobj o2 = b.o[1];
	b.o[1] = b.o[2];
	b.o[2] = o2;
	hrefused(st, dir, &b, "out of order", "objects out of order");

	/* fields that do not fit the object */
	b = hgood();
	b.o[4].size = 10;
	hrefused(st, dir, &b, "has size 10", "a fifo with a size");
	b = hgood();
	b.o[3].size = 2;
	hrefused(st, dir, &b, "has size 2", "a symlink whose size is not its target's");
	b = hgood();
	b.o[2].size = -5;
	hrefused(st, dir, &b, "has size -5", "a negative size");
	b = hgood();
	b.o[2].ext[0][1] = 6;
	hrefused(st, dir, &b, "past its size", "data past the file's size");
	b = hgood();
	b.o[2].size = 8;
	b.o[2].ext[0][1] = 4;
	b.o[2].ext[1][0] = 2;
	b.o[2].ext[1][1] = 2;
	hrefused(st, dir, &b, "out of order", "overlapping data extents");
	b = hgood();
	b.o[2].rdev = 0x0103;
	hrefused(st, dir, &b, "device number", "a regular file with a device number");
	b = hgood();
	b.o[3].target = "f\0g";
	b.o[3].tlen = 3;
	b.o[3].size = 3;
	hrefused(st, dir, &b, "NUL in its target", "a symlink target with NUL");
	b = hgood();
	b.o[4].uid = UINT32_MAX;
	hrefused(st, dir, &b, "owned by -1", "an owner of -1");
	b = hgood();
	b.o[0].xnames[1] = "user.a";
	hrefused(st, dir, &b, "twice or out of order", "an xattr twice");
	b = hgood();
	b.o[0].xnames[1] = "nonamespace";
	hrefused(st, dir, &b, "no namespace", "an xattr of no namespace");
	check_fsck_clean(st, "after the refused hostile bundles");
	cow_store_close(st);
}

/* ---- a tree deeper than PATH_MAX ---- */

#define DEEP_LEVELS 24 /* names of 250 bytes: a path of 6,000 */

static void deep_name(char *buf, int level)
{
	memset(buf, 'a' + level % 26, 250);
	snprintf(buf + 250, 6, "%04d", level);
}

/* The path of the directory at @levels (""), grown as needed. */
static char *deep_path(int levels)
{
	char *p = calloc(1, (size_t)levels * 256 + 1), name[256];
	if (!p)
		bail("calloc");
	for (int i = 0; i < levels; i++) {
		deep_name(name, i);
		strcat(p, "/");
		strcat(p, name);
	}
	return p;
}

/* The ino of the deepest directory of the chain in @v, 0 if it is not there. */
static uint64_t deep_bottom(struct cow_view *v)
{
	uint64_t cur = cow_view_root(v);
	char name[256];
	for (int i = 0; i < DEEP_LEVELS; i++) {
		struct cow_attr a;
		deep_name(name, i);
		if (cow_lookup(v, cur, name, &a) < 0 || !S_ISDIR(a.mode))
			return 0;
		cow_forget(v, a.ino, 1);
		cur = a.ino;
	}
	return cur;
}

struct deep_diff {
	char *leaf; /* the path the diff gave for the leaf file */
	int n;
};

static int deep_diff_line(void *arg, const char *path, enum cow_change change, uint32_t mode)
{
	struct deep_diff *d = arg;
	d->n++;
	if (change == COW_CHANGE_ADDED && S_ISREG(mode) && strstr(path, "/leaf")) {
		free(d->leaf);
		d->leaf = strdup(path);
	}
	return 0;
}

static void check_deep_leaf(struct cow_view *v, const char *what)
{
	uint64_t bottom = deep_bottom(v);
	struct cow_attr a;
	char buf[64] = "";
	struct cow_file *f;
	int r = bottom ? cow_lookup(v, bottom, "leaf", &a) : -ENOENT;
	if (r == 0) {
		r = cow_open(v, a.ino, O_RDONLY, &f);
		cow_forget(v, a.ino, 1);
	}
	if (r == 0) {
		ssize_t n = cow_read(f, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		cow_release(f);
	}
	check(r == 0 && !strcmp(buf, "at the bottom\n"), buf, "%s: the leaf %d levels down reads back", what,
	      DEEP_LEVELS);
}

static void test_deep(struct cow_store *st)
{
	char name[256], bundle[256], dir3[192], details[256];
	struct cow_view *v;
	struct cow_attr a;
	struct cow_file *f;
	char *want_path = deep_path(DEEP_LEVELS), *leaf_path;
	if (asprintf(&leaf_path, "%s/leaf", want_path) < 0)
		bail("asprintf");
	printf("# a tree %d levels deep: its leaf's path has %zu bytes (PATH_MAX %d)\n", DEEP_LEVELS, strlen(leaf_path),
	       PATH_MAX);

	/* through the core API, in a client */
	check_int(cow_client_add(st, "deep", "base"), 0, "add client 'deep'");
	if (!(v = open_client(st, "deep")))
		goto out;
	uint64_t cur = cow_view_root(v);
	int r = 0;
	for (int i = 0; r == 0 && i < DEEP_LEVELS; i++) {
		deep_name(name, i);
		r = cow_mkdir(v, cur, name, 0755, &cred, &a);
		if (r == 0) {
			cow_forget(v, a.ino, 1);
			cur = a.ino;
		}
	}
	check_int(r, 0, "mkdir %d levels of 250-byte names", DEEP_LEVELS);
	r = cow_create(v, cur, "leaf", 0644, O_WRONLY | O_CREAT, &cred, &f, &a);
	if (r == 0) {
		cow_forget(v, a.ino, 1);
		r = cow_write(f, "at the bottom\n", 14, 0) == 14 ? 0 : -EIO;
		cow_release(f);
	}
	check_int(r, 0, "create the leaf file at the bottom");
	check_int(cow_symlink(v, cur, "up", "../../..", &cred, &a), 0, "a symlink at the bottom");
	cow_forget(v, a.ino, 1);
	close_view(v, "client 'deep'");

	struct deep_diff dd = {0};
	check_int(cow_client_diff(st, "deep", deep_diff_line, &dd), 0, "diff of the deep client");
	snprintf(details, sizeof(details), "%d changes, leaf path %zu bytes", dd.n,
		 dd.leaf ? strlen(dd.leaf) : (size_t)0);
	check(dd.leaf && !strcmp(dd.leaf, leaf_path), details, "the diff gives the leaf's whole path");
	/* the root's times changed too */
	check_int(dd.n, DEEP_LEVELS + 3, "the diff lists every level, the leaf, the symlink and the root");
	free(dd.leaf);

	check_int(cow_client_snapshot(st, "deep", "deep@1"), 0, "snapshot the deep client as 'deep@1'");
	snprintf(bundle, sizeof(bundle), "%s/deep.bundle", top);
	check_int(cow_image_export(st, "deep@1", bundle, NULL, NULL), 0, "export 'deep@1'");
	check_int(cow_image_flatten(st, "deep@1", "deep-flat", NULL, NULL), 0, "flatten 'deep@1'");
	snprintf(dir3, sizeof(dir3), "%s/store3", top);
	struct cow_store *st3;
	if (!check_int(cow_store_open(dir3, COW_STORE_CREATE, &st3), 0, "create a third store"))
		goto out;
	check_int(cow_image_load(st3, bundle, NULL, NULL, NULL, NULL, 0), 0, "load the deep bundle");

	struct cow_view *vi = open_image(st, "deep@1"), *vf = open_image(st, "deep-flat"),
			*vl = open_image(st3, "deep@1");
	char *di = vi ? dump_tree(vi, "deep@1") : NULL, *df = vf ? dump_tree(vf, "deep-flat") : NULL,
	     *dl = vl ? dump_tree(vl, "the loaded deep@1") : NULL;
	check_same_tree(df, di, "the flattened deep tree is the snapshot's");
	check_same_tree(dl, di, "the loaded deep tree is the snapshot's");
	check(di && strstr(di, leaf_path), "missing", "the dump has the leaf at its whole path");
	if (vl)
		check_deep_leaf(vl, "loaded image");
	if (vf)
		check_deep_leaf(vf, "flattened image");
	free(di);
	free(df);
	free(dl);
	close_view(vi, "deep@1");
	close_view(vf, "deep-flat");
	close_view(vl, "the loaded deep@1");
	check_fsck_clean(st3, "of the store with the loaded deep image");
	cow_store_close(st3);

	/* import of a deep directory tree, made with mkdirat/openat */
	char srcdeep[192];
	snprintf(srcdeep, sizeof(srcdeep), "%s/srcdeep", top);
	if (mkdir(srcdeep, 0755) < 0)
		bail(srcdeep);
	int dfd = open(srcdeep, O_RDONLY | O_DIRECTORY);
	for (int i = 0; dfd >= 0 && i < DEEP_LEVELS; i++) {
		deep_name(name, i);
		int n = mkdirat(dfd, name, 0755) == 0 ? openat(dfd, name, O_RDONLY | O_DIRECTORY) : -1;
		close(dfd);
		dfd = n;
	}
	int lfd = dfd >= 0 ? openat(dfd, "leaf", O_WRONLY | O_CREAT, 0644) : -1;
	if (lfd < 0 || write(lfd, "at the bottom\n", 14) != 14)
		bail("the deep source tree");
	close(lfd);
	close(dfd);
	check_int(cow_image_import(st, "deep-import", srcdeep, NULL, NULL), 0, "import a directory tree %d levels deep",
		  DEEP_LEVELS);
	if ((v = open_image(st, "deep-import"))) {
		check_deep_leaf(v, "imported image");
		close_view(v, "deep-import");
	}
	check_fsck_clean(st, "after the deep trees");
out:
	free(want_path);
	free(leaf_path);
}

/* A bundle of an empty root directory with @nx xattrs of 100 bytes. */
static void craft_xattr_bundle(const char *path, uint32_t nx)
{
	struct hbundle b = {.version = 2, .root = 1, .no = 1};
	b.o[0] = (struct hobj){.ino = 1, .mode = S_IFDIR | 0755, .nlink = 2, .nbig = nx};
	hwrite(&b, path);
}

/* A bundle whose object carries more xattrs than one object may hold is
 * refused, as a setxattr past the bound is (-ENOSPC); the store is left
 * as it was. */
static void test_bundle_xattrs(void)
{
	char dir[192], bundle[192];
	struct cow_store *st;
	snprintf(dir, sizeof(dir), "%s/xstore", top);
	snprintf(bundle, sizeof(bundle), "%s/xattrs.bundle", top);
	if (!check_int(cow_store_open(dir, COW_STORE_CREATE, &st), 0, "xattr bundles: a store of their own"))
		return;
	craft_xattr_bundle(bundle, 500);
	check_int(cow_image_load(st, bundle, "fits", NULL, NULL, NULL, 0), 0,
		  "a bundle of 500 xattrs of 100 bytes on one object loads");
	craft_xattr_bundle(bundle, 10000);
	check_bad_load(st, dir, bundle, -ENOSPC, "10,000 xattrs of 100 bytes on one object");
	cow_store_close(st);
}

/* An object recorded with more xattrs than the bound (a store from before
 * there was one): listed whole, it can still lose xattrs and shrink one,
 * but not grow. */
static void test_legacy_xattrs(void)
{
	char dir[192], empty[192], cmd[1024];
	struct cow_store *st;
	snprintf(dir, sizeof(dir), "%s/legacy-xattrs", top);
	snprintf(empty, sizeof(empty), "%s/legacy-tree", top);
	if (system("command -v sqlite3 >/dev/null") != 0) {
		skip("the sqlite3 command is missing (apt-get install sqlite3)", "an object past the xattr bound");
		return;
	}
	if (mkdir(empty, 0755) < 0 && errno != EEXIST)
		bail(empty);
	if (!check_int(cow_store_open(dir, COW_STORE_CREATE, &st), 0, "legacy xattrs: a store") ||
	    !check_int(cow_image_import(st, "img", empty, NULL, NULL), 0, "legacy xattrs: an image"))
		goto out;
	cow_store_close(st);
	st = NULL;
	/* 2,000 xattrs of 100 bytes on the image's root */
	snprintf(
	    cmd, sizeof(cmd),
	    "sqlite3 %s/cowroot.db \"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
	    " INSERT INTO xattrs SELECT l.id, l.root, CAST(printf('user.x%%05d', i) AS BLOB), zeroblob(100)"
	    " FROM layers l, n WHERE l.kind = 0\"",
	    dir);
	if (!check_int(system(cmd), 0, "legacy xattrs: record 2,000 xattrs of 100 bytes with the sqlite3 command") ||
	    !check_int(cow_store_open(dir, 0, &st), 0, "legacy xattrs: open the store") ||
	    !check_int(cow_client_add(st, "c", "img"), 0, "legacy xattrs: a client"))
		goto out;
	struct cow_view *v = open_client(st, "c");
	if (!v)
		goto out;
	uint64_t root = cow_view_root(v);
	int size = cow_listxattr(v, root, NULL, 0);
	check_int(size, 2000 * 12, "legacy xattrs: all are listed");
	check_int(cow_setxattr(v, root, "user.new", "v", 1, 0), -ENOSPC, "legacy xattrs: a new one is -ENOSPC");
	check_int(cow_setxattr(v, root, "user.x00001", "v", 1, 0), 0, "legacy xattrs: one may shrink");
	static char big[200];
	check_int(cow_setxattr(v, root, "user.x00002", big, sizeof(big), 0), -ENOSPC,
		  "legacy xattrs: one may not grow");
	check_int(cow_removexattr(v, root, "user.x00003"), 0, "legacy xattrs: one may be removed");
	check_int(cow_listxattr(v, root, NULL, 0), size - 12, "legacy xattrs: and is gone");
	close_view(v, "client 'c'");
out:
	if (st)
		cow_store_close(st);
}

static void test_cancel_and_gc(struct cow_store *st)
{
	char il[1024], dl[2048], il2[1024], dl2[2048];
	image_list(st, il);
	data_list(storedir, dl);
	int n = 2;
	check_int(cow_image_import(st, "cancelled", src, cancel_at, &n), -ECANCELED,
		  "a cancelled import is -ECANCELED");
	check(!strcmp(il, image_list(st, il2)), il2, "a cancelled import records no image");
	check(!strcmp(dl, data_list(storedir, dl2)), dl2, "a cancelled import leaves no data behind");

	/* gc: cancel, then finish */
	check_int(cow_client_rm(st, "onflat", 0), 0, "remove client 'onflat'");
	check_int(cow_image_rm(st, "flat"), 0, "remove image 'flat'");
	n = 1;
	struct cow_gc_report g;
	check_int(cow_gc(st, cancel_at, &n, &g), -ECANCELED, "a cancelled gc is -ECANCELED");
	check_fsck_clean(st, "after a cancelled gc");
	int r = gc(st, &g);
	check(r == 0 && g.layers >= 2, "nothing reclaimed", "gc then reclaims the dead layers");
	r = gc(st, &g);
	check(r == 0 && g.layers == 0 && g.files == 0, "did work", "a second gc finds nothing to do");
	check_fsck_clean(st, "at the end");
}

/* Client ids are 1..COW_CLIENT_ID_MAX and reused: more than that many
 * adds in the life of a store work, a freed id goes to a later client
 * with another generation, and with every id taken an add says so. */
static void test_client_ids(void)
{
	char shm[] = "/dev/shm/cowroot-ids-XXXXXX", dir[192], empty[192];
	struct cow_store *st;
	/* some 200,000 durable commits: on a tmpfs if there is one, where a
	 * sync costs nothing */
	const char *base = mkdtemp(shm) ? shm : top;
	snprintf(dir, sizeof(dir), "%s/idstore", base);
	snprintf(empty, sizeof(empty), "%s/idtree", top);
	if (mkdir(empty, 0755) < 0 && errno != EEXIST)
		bail(empty);
	if (!check_int(cow_store_open(dir, COW_STORE_CREATE, &st), 0, "ids: a store of its own") ||
	    !check_int(cow_image_import(st, "img", empty, NULL, NULL), 0, "ids: an empty image"))
		return;
	struct cow_client_info ci[4];
	static const char *const names[] = {"a", "b", "c", "d"};
	int r = 0;
	for (int i = 0; r == 0 && i < 4; i++) {
		r = cow_client_add(st, names[i], "img");
		if (r == 0)
			r = cow_client_get(st, names[i], &ci[i]);
	}
	if (!check_int(r, 0, "ids: add four clients"))
		goto out;
	bool ok = true;
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < i; j++)
			ok = ok && ci[i].id != ci[j].id && ci[i].gen != ci[j].gen;
	for (int i = 0; i < 4; i++)
		ok = ok && ci[i].id >= 1 && ci[i].id <= COW_CLIENT_ID_MAX && ci[i].gen != 0;
	check(ok, "ids or generations clash, or are out of range",
	      "ids: distinct ids in 1..65535, distinct generations, none 0");

	/* b's id is freed; the next client does not get it at once */
	struct cow_client_info x;
	check_int(cow_client_rm(st, "b", 0), 0, "ids: remove b");
	r = cow_client_add(st, "x", "img");
	if (r == 0)
		r = cow_client_get(st, "x", &x);
	check(r == 0 && x.id != ci[1].id, "got b's id at once", "ids: a freed id is not given again at once");
	check_int(cow_client_rm(st, "x", 0), 0, "ids: remove x");

	/* more adds than there are ids, each client removed again */
	uint64_t adds = 0, reused_gen = 0;
	bool in_range = true;
	r = 0;
	while (r == 0 && adds <= COW_CLIENT_ID_MAX + 10) {
		r = cow_client_add(st, "x", "img");
		if (r == 0)
			r = cow_client_get(st, "x", &x);
		if (r == 0) {
			adds++;
			in_range = in_range && x.id >= 1 && x.id <= COW_CLIENT_ID_MAX;
			if (x.id == ci[1].id && !reused_gen)
				reused_gen = x.gen;
			r = cow_client_rm(st, "x", 0);
		}
	}
	char details[128];
	snprintf(details, sizeof(details), "stopped after %llu adds", (unsigned long long)adds);
	check_int(r, 0, "ids: %d adds and removals of one client (more than there are ids)", COW_CLIENT_ID_MAX + 11);
	check(in_range, details, "ids: every id in 1..65535");
	check(reused_gen != 0 && reused_gen != ci[1].gen, "b's id was not given again, or with b's generation",
	      "ids: b's freed id went to a later client, with another generation");
	for (int i = 0; i < 4; i++) {
		if (i == 1)
			continue;
		struct cow_client_info c;
		if (cow_client_get(st, names[i], &c) != 0 || c.id != ci[i].id || c.gen != ci[i].gen)
			ok = false;
	}
	check(ok, "changed", "ids: the clients kept all along keep their ids and generations");

	/* fill every id: the next add fails and says why, changing nothing */
	r = 0;
	int filled = 0;
	char name[32];
	while (r == 0 && filled < COW_CLIENT_ID_MAX - 3) {
		snprintf(name, sizeof(name), "f%d", filled);
		r = cow_client_add(st, name, "img");
		if (r == 0)
			filled++;
	}
	check_int(r, 0, "ids: add clients until every id is taken");
	check_int(cow_client_add(st, "one-too-many", "img"), -EUSERS, "ids: then an add is -EUSERS");
	check_int(cow_client_get(st, "one-too-many", &x), -ENOENT, "ids: and records no client");
	struct cow_client_info f;
	r = cow_client_get(st, "f100", &f);
	if (r == 0)
		r = cow_client_rm(st, "f100", 0);
	check_int(r, 0, "ids: remove one");
	r = cow_client_add(st, "one-too-many", "img");
	if (r == 0)
		r = cow_client_get(st, "one-too-many", &x);
	check(r == 0 && x.id == f.id && x.gen != f.gen, "did not get the freed id, or its generation",
	      "ids: the next add gets the one freed id, with a generation of its own");
out:
	cow_store_close(st);
	if (base == shm)
		nftw(shm, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}

/* A store of schema version 1 (0001 only) opens and migrates. */
static void test_migration(void)
{
	char dir[192], cmd[2048], sqlpath[512];
	snprintf(dir, sizeof(dir), "%s/v1store", top);
	snprintf(sqlpath, sizeof(sqlpath), "%s/0001-init.sql", SCHEMA_DIR);
	if (system("command -v sqlite3 >/dev/null") != 0) {
		skip("the sqlite3 command is missing (apt-get install sqlite3)", "a v1 store migrates");
		return;
	}
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/data && { cat %s; echo \""
		 "INSERT INTO layers VALUES (1, NULL, 0, 1, 1600000000);"
		 "INSERT INTO layers VALUES (2, 1, 1, 1, 1600000000);"
		 "INSERT INTO layers VALUES (3, 1, 1, 1, 1600000000);"
		 "INSERT INTO images VALUES ('old', 1, 1600000000);"
		 "INSERT INTO clients (name, image, layer, created) VALUES ('pi1', 'old', 2, 1600000000);"
		 /* past 65535 (it gets its id from the rowid): never served */
		 "INSERT INTO clients (rowid, name, image, layer, created) VALUES (70000, 'pi2', 'old', 3, 1600000000);"
		 "INSERT INTO inodes (layer, ino, mode, nlink, uid, gid, atime, mtime, ctime)"
		 " VALUES (1, 1, %u, 2, 0, 0, 0, 0, 0);"
		 "PRAGMA user_version = 1;\"; } | sqlite3 %s/cowroot.db",
		 dir, sqlpath, (unsigned)(S_IFDIR | 0755), dir);
	if (!check_int(system(cmd), 0, "build a v1 store with the sqlite3 command"))
		return;
	struct cow_store *st;
	if (!check_int(cow_store_open(dir, 0, &st), 0, "the v1 store opens (and migrates)"))
		return;
	struct cow_client_info a, b;
	int r = cow_client_get(st, "pi1", &a);
	if (r == 0)
		r = cow_client_get(st, "pi2", &b);
	char details[256];
	snprintf(details, sizeof(details), "returned %d, ids %llu and %llu", r, (unsigned long long)a.id,
		 (unsigned long long)b.id);
	check(r == 0 && a.id && b.id && a.id != b.id, details, "the migrated clients have distinct ids");
	check(r == 0 && a.gen == 0, "has a generation",
	      "a client from before generations has generation 0 (its handles stay as they were)");
	check(r == 0 && b.id <= COW_CLIENT_ID_MAX && b.gen != 0, details,
	      "a client numbered past 65535 gets a free id and a generation");
	check(r == 0 && !*a.serial && !*a.mac && !*a.boot_args, a.serial, "a v1 client has no serial, MAC or boot args");
	check_int(cow_client_add(st, "pi3", "old"), 0, "a client added after the migration");
	struct cow_client_info c;
	r = cow_client_get(st, "pi3", &c);
	check(r == 0 && c.id && c.id != a.id && c.id != b.id, "id reused", "gets an id of its own");
	check(r == 0 && c.gen != 0 && c.gen != b.gen, "no generation of its own", "and a generation of its own");
	struct cow_view *v = open_client(st, "pi1");
	if (v) {
		check_int(write_path(v, "f", "v1 store\n"), 0, "a migrated client writes");
		close_view(v, "client 'pi1'");
	}
	check_int(cow_client_reset(st, "pi1"), 0, "a migrated client resets");
	check(cow_client_get(st, "pi1", &c) == 0 && c.id == a.id, "id changed", "and keeps its id");
	check_fsck_clean(st, "of the migrated store");
	cow_store_close(st);
	check_int(cow_store_open(dir, COW_STORE_READONLY, &st), 0, "the migrated store opens read-only");
	if (st)
		cow_store_close(st);
}

/* A store of schema version 3 (0001 to 0003) migrates to 4: its clients
 * stay as they were (ids, generations, addresses, layers), with no serial,
 * MAC or boot args, and can be given them. */
static void test_migration_v3(void)
{
	char dir[192], cmd[4096], sql[3][512];
	snprintf(dir, sizeof(dir), "%s/v3store", top);
	const char *files[3] = {"0001-init.sql", "0002-lifecycle.sql", "0003-client-ids.sql"};
	for (int i = 0; i < 3; i++)
		snprintf(sql[i], sizeof(sql[i]), "%s/%s", SCHEMA_DIR, files[i]);
	if (system("command -v sqlite3 >/dev/null") != 0) {
		skip("the sqlite3 command is missing (apt-get install sqlite3)", "a v3 store migrates");
		return;
	}
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/data && { cat %s %s %s; echo \""
		 "INSERT INTO layers VALUES (1, NULL, 0, 1, 1600000000);"
		 "INSERT INTO layers VALUES (2, 1, 1, 1, 1600000000);"
		 "INSERT INTO layers VALUES (3, 1, 1, 1, 1600000000);"
		 "INSERT INTO images VALUES ('old', 1, 1600000000);"
		 "INSERT INTO clients (name, image, layer, addrs, created, id, gen)"
		 " VALUES ('pi1', 'old', 2, '10.0.0.1', 1600000000, 7, 0);"
		 "INSERT INTO clients (name, image, layer, addrs, created, id, gen)"
		 " VALUES ('pi2', 'old', 3, '', 1600000001, 9, 123456789);"
		 "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_client', 10);"
		 "INSERT INTO inodes (layer, ino, mode, nlink, uid, gid, atime, mtime, ctime)"
		 " VALUES (1, 1, %u, 2, 0, 0, 0, 0, 0);"
		 "PRAGMA user_version = 3;\"; } | sqlite3 %s/cowroot.db",
		 dir, sql[0], sql[1], sql[2], (unsigned)(S_IFDIR | 0755), dir);
	if (!check_int(system(cmd), 0, "build a v3 store with the sqlite3 command"))
		return;
	struct cow_store *st;
	if (!check_int(cow_store_open(dir, 0, &st), 0, "the v3 store opens (and migrates to 4)"))
		return;
	struct cow_client_info a, b;
	int r = cow_client_get(st, "pi1", &a);
	if (r == 0)
		r = cow_client_get(st, "pi2", &b);
	check(r == 0 && a.id == 7 && a.gen == 0 && a.layer == 2 && a.created == 1600000000 && b.id == 9 &&
		  b.gen == 123456789 && b.layer == 3 && !strcmp(b.image, "old"),
	      "a client changed", "v3 -> 4: the clients keep their ids, generations, layers and images");
	check(r == 0 && !*a.serial && !*a.mac && !*a.boot_args && !*b.serial && !*b.mac && !*b.boot_args, a.serial,
	      "v3 -> 4: they have no serial, MAC or boot args");
	char addrs[COW_ADDRS_MAX + 1] = "";
	r = cow_client_get_addrs(st, "pi1", addrs, sizeof(addrs));
	check(r == 0 && !strcmp(addrs, "10.0.0.1"), addrs, "v3 -> 4: the addresses stay");
	check_int(cow_client_set_boot(st, "pi1", "9FFEFDEF", "dc-a6-32-01-36-c2", "quiet", "/boot/x.dtb", NULL, NULL), 0,
		  "v3 -> 4: a migrated client gets a serial, a MAC and boot args");
	struct cow_client_info c;
	r = cow_client_by_serial(st, "000000009ffefdef", &c);
	check(r == 0 && !strcmp(c.name, "pi1") && c.id == 7, c.name, "v3 -> 4: and is found by its serial");
	r = cow_client_by_mac(st, "DC:A6:32:01:36:C2", &c);
	check(r == 0 && !strcmp(c.boot_dtb, "/boot/x.dtb"), c.boot_dtb, "v3 -> 5: and has its device tree");
	check(r == 0 && !strcmp(c.name, "pi1"), c.name, "v3 -> 4: and by its MAC");
	check_int(cow_client_set_boot(st, "pi2", "9ffefdef", NULL, NULL, NULL, NULL, NULL), -EEXIST,
		  "v3 -> 4: the serial is unique (the index exists)");
	check_int(cow_client_add(st, "pi3", "old"), 0, "v3 -> 4: a client added after the migration");
	r = cow_client_get(st, "pi3", &c);
	check(r == 0 && c.id == 10 && c.gen != 0, "id or generation", "v3 -> 4: takes the next id, with a generation");
	check_fsck_clean(st, "of the v3 store migrated");
	cow_store_close(st);
	/* the boot servers' lookups are index searches */
	const char *plans[2][2] = {{"serial", "clients_serial"}, {"mac", "clients_mac"}};
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd),
			 "sqlite3 %s/cowroot.db \"EXPLAIN QUERY PLAN SELECT name FROM clients c WHERE c.%s = 'x'\""
			 " | grep -q 'USING INDEX %s'",
			 dir, plans[i][0], plans[i][1]);
		check_int(system(cmd), 0, "v3 -> 4: a lookup by %s searches the index %s", plans[i][0], plans[i][1]);
	}
	check_int(cow_store_open(dir, COW_STORE_READONLY, &st), 0, "v3 -> 4: the migrated store opens read-only");
	if (st) {
		r = cow_client_by_serial(st, "9ffefdef", &c);
		check(r == 0 && !strcmp(c.name, "pi1"), c.name, "v3 -> 4: the serial is kept");
		cow_store_close(st);
	}
}

int main(void)
{
	struct cow_store *st = NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(top, sizeof(top), "/tmp/cowroot-life-XXXXXX");
	if (!mkdtemp(top))
		bail("mkdtemp");
	snprintf(src, sizeof(src), "%s/src", top);
	snprintf(storedir, sizeof(storedir), "%s/store", top);
	snprintf(store2dir, sizeof(store2dir), "%s/store2", top);
	printf("# temp dir %s\n", top);
	build_tree();
	if (!have_dev)
		printf("# mknod of device nodes failed: device checks skipped\n");

	if (!check_int(cow_store_open(storedir, COW_STORE_CREATE, &st), 0, "create a store") ||
	    !check_int(cow_image_import(st, "base", src, NULL, NULL), 0, "import the source tree as 'base'"))
		goto out;
	test_reset(&st);
	if (!st)
		goto out;
	test_view_reset(st);
	test_busy_and_rm(st);
	test_snapshot(st);
	test_rebase(st);
	test_diff(st);
	test_image_rm(st);
	test_flatten(st);
	test_bundles(st);
	test_deep(st);
	test_hostile_bundles();
	test_cancel_and_gc(st);
	test_migration();
	test_migration_v3();
	test_client_ids();
	test_bundle_xattrs();
	test_legacy_xattrs();
out:
	if (st)
		cow_store_close(st);
	if (!getenv("COWROOT_KEEP"))
		nftw(top, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
	else
		printf("# kept %s\n", top);
	return tap_finish();
}
