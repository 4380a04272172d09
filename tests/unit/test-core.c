/* SPDX-License-Identifier: MIT */
/*
 * test-core: drives the core API (cowroot.h) on a temporary store, without
 * FUSE.  A source tree is built with real syscalls (regular, sparse and
 * empty files, a hardlink pair, a symlink, a fifo, a character device,
 * directories, user.* and security.capability xattrs, a setuid mode and
 * nanosecond mtimes), imported as image "base", and two clients are put on
 * it.  Every check compares what the API returns with the source tree or
 * with the contracts in cowroot.h.
 *
 * Output is TAP: one "ok N - what" / "not ok N - what (details)" line per
 * check, the plan "1..N" at the end, then "N passed, N failed".  Exit
 * status 1 if any check failed.  Set COWROOT_KEEP=1 to keep the temp dir.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cowroot.h"
#include "unit.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define MiB (1024 * 1024)
#define SPARSE_SIZE (4 * MiB)

/* ---- the temp area ---- */

static char top[64];	   /* mkdtemp */
static char src[128];	   /* the source tree */
static char storedir[128]; /* the store */
static bool have_chardev;  /* mknod worked */
static bool have_caps;	   /* security.capability could be set */
static const struct cow_cred cred = {.uid = 0, .gid = 0, .umask = 022};

static void spath(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s%s%s", src, *rel ? "/" : "", rel);
}

static void write_file(const char *rel, const void *data, size_t n, mode_t mode)
{
	char p[512];
	spath(p, sizeof(p), rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		bail(p);
	if (n && write(fd, data, n) != (ssize_t)n)
		bail(p);
	close(fd);
	if (chmod(p, mode) < 0)
		bail(p);
}

static void set_mtime(const char *rel, long sec, long nsec)
{
	char p[512];
	spath(p, sizeof(p), rel);
	struct timespec ts[2] = {{.tv_sec = 1400000000, .tv_nsec = 111}, {.tv_sec = sec, .tv_nsec = nsec}};
	if (utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) < 0)
		bail(p);
}

static void set_xattr(const char *rel, const char *name, const void *value, size_t size)
{
	char p[512];
	spath(p, sizeof(p), rel);
	if (lsetxattr(p, name, value, size, 0) < 0)
		bail(p);
}

static void make_dir(const char *rel, mode_t mode)
{
	char p[512];
	spath(p, sizeof(p), rel);
	if (mkdir(p, mode) < 0 || chmod(p, mode) < 0)
		bail(p);
}

/* Every object of the source tree, in the order the mtimes are set
 * (children before their directory; "" is the root). */
static const char *const tree[] = {
    "hello.txt",   "sparse.bin",   "empty",	 "hl1",	    "sym", "fifo",  "null",
    "suid",	   "dir/a",	   "dir/sub/b",	 "dir/sub", "dir", "rmd/x", "rmd",
    "mvdir/inner", "mvdir/deep/f", "mvdir/deep", "mvdir",   "",
};

static void build_tree(void)
{
	char p[512], q[512];

	make_dir("", 0755);
	write_file("hello.txt", "hello world\n", 12, 0644);
	set_xattr("hello.txt", "user.color", "blue", 4);
	set_xattr("hello.txt", "user.empty", "", 0);

	/* sparse: data at both ends and in the middle, holes between */
	spath(p, sizeof(p), "sparse.bin");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, SPARSE_SIZE) < 0 || pwrite(fd, "HEAD", 4, 0) != 4 ||
	    pwrite(fd, "MID!", 4, 2 * MiB) != 4 || pwrite(fd, "TAIL", 4, SPARSE_SIZE - 4) != 4)
		bail(p);
	close(fd);

	write_file("empty", "", 0, 0600);

	write_file("hl1", "linked\n", 7, 0640);
	spath(p, sizeof(p), "hl1");
	spath(q, sizeof(q), "hl2");
	if (chown(p, 1234, 5678) < 0 || link(p, q) < 0)
		bail(q);

	spath(p, sizeof(p), "sym");
	if (symlink("hello.txt", p) < 0)
		bail(p);

	spath(p, sizeof(p), "fifo");
	if (mkfifo(p, 0620) < 0 || chmod(p, 0620) < 0)
		bail(p);

	spath(p, sizeof(p), "null");
	if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0)
		have_chardev = true;
	else if (errno != EPERM)
		bail(p);

	write_file("suid", "#!/bin/sh\necho hi\n", 18, 0755);
	spath(p, sizeof(p), "suid");
	if (chown(p, 0, 7) < 0 || chmod(p, 04755) < 0)
		bail(p);
	struct vfs_cap_data cap = {
	    .magic_etc = htole32(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE),
	    .data = {{.permitted = htole32(1u << CAP_NET_BIND_SERVICE)}},
	};
	have_caps = lsetxattr(p, "security.capability", &cap, XATTR_CAPS_SZ_2, 0) == 0;
	set_xattr("suid", "user.note", "setuid", 6);

	make_dir("dir", 0750);
	set_xattr("dir", "user.dirx", "1", 1);
	write_file("dir/a", "aaa\n", 4, 0644);
	make_dir("dir/sub", 0700);
	write_file("dir/sub/b", "bbb\n", 4, 0600);

	make_dir("rmd", 0755);
	write_file("rmd/x", "x\n", 2, 0644);

	make_dir("mvdir", 0755);
	write_file("mvdir/inner", "inner\n", 6, 0644);
	make_dir("mvdir/deep", 0711);
	write_file("mvdir/deep/f", "deep\n", 5, 0644);

	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++) {
		if (!strcmp(tree[i], "null") && !have_chardev)
			continue;
		set_mtime(tree[i], 1500000000 + (long)i * 1000, 123456789 + (long)i);
	}
}

/* ---- API helpers ---- */

/* Read up to @size bytes at @off of @path (NUL-terminated if room). */
static ssize_t read_path(struct cow_view *v, const char *path, char *buf, size_t size, off_t off)
{
	struct cow_attr a;
	struct cow_file *f;
	int r = walk(v, path, &a);
	if (r < 0)
		return r;
	r = cow_open(v, a.ino, O_RDONLY, &f);
	if (r < 0)
		return r;
	ssize_t n = cow_read(f, buf, size, off);
	cow_release(f);
	if (n >= 0 && (size_t)n < size)
		buf[n] = 0;
	return n;
}

static void check_content(struct cow_view *v, const char *vname, const char *path, const char *want)
{
	char buf[256] = "", details[1024];
	ssize_t n = read_path(v, path, buf, sizeof(buf), 0);
	snprintf(details, sizeof(details), "read returned %zd%s, content \"%.*s\", want \"%s\"", n, errname(n),
		 n > 0 ? (int)n : 0, buf, want);
	check(n == (ssize_t)strlen(want) && !memcmp(buf, want, strlen(want)), details, "%s: content of '%s'", vname,
	      path);
}

struct names {
	char *v[64];
	int n;
	int dots; /* "." then ".." seen first, in order */
	bool plus;
	struct cow_view *view;
	int bad_plus; /* entries whose plus attr did not match a lookup */
};

static int collect(void *arg, const char *name, const struct cow_attr *attr, off_t next_off)
{
	struct names *s = arg;
	(void)next_off;
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		if (s->n == 0 && s->dots == (strcmp(name, ".") ? 1 : 0))
			s->dots++;
		else
			s->dots = -100;
		return 0;
	}
	if (s->n < 64)
		s->v[s->n++] = strdup(name);
	if (s->plus) {
		if (attr->ino == 0 || attr->mode == 0)
			s->bad_plus++;
		cow_forget(s->view, attr->ino, 1);
	}
	return 0;
}

static void join_names(struct names *s, char *buf, size_t size)
{
	qsort(s->v, (size_t)s->n, sizeof(s->v[0]), cmp_str);
	buf[0] = 0;
	for (int i = 0; i < s->n; i++) {
		size_t l = strlen(buf);
		snprintf(buf + l, size - l, "%s%s", i ? "," : "", s->v[i]);
		free(s->v[i]);
	}
	s->n = 0;
}

/* The sorted, comma-joined listing of @path in @v ("." and ".." must come
 * first); an "ERR ..." string on error. */
static void list_view(struct cow_view *v, const char *path, bool plus, char *buf, size_t size, int *bad_plus)
{
	struct cow_attr a;
	struct cow_dirh *d;
	struct names s = {.plus = plus, .view = v};
	int r = walk(v, path, &a);
	if (r == 0)
		r = cow_opendir(v, a.ino, &d);
	if (r < 0) {
		snprintf(buf, size, "ERR %d", r);
		return;
	}
	r = cow_readdir(d, 0, plus, collect, &s);
	cow_releasedir(d);
	join_names(&s, buf, size);
	if (r < 0)
		snprintf(buf, size, "ERR readdir %d", r);
	else if (s.dots != 2)
		snprintf(buf + strlen(buf), size - strlen(buf), " [. and .. not first]");
	if (bad_plus)
		*bad_plus = s.bad_plus;
}

static void list_src(const char *rel, char *buf, size_t size)
{
	char p[512];
	struct names s = {0};
	spath(p, sizeof(p), rel);
	DIR *d = opendir(p);
	if (!d)
		bail(p);
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && s.n < 64)
			s.v[s.n++] = strdup(de->d_name);
	closedir(d);
	join_names(&s, buf, size);
}

static void check_listing(struct cow_view *v, const char *vname, const char *path, const char *want)
{
	char got[2048], details[4200];
	list_view(v, path, false, got, sizeof(got), NULL);
	snprintf(details, sizeof(details), "got [%s], want [%s]", got, want);
	check(!strcmp(got, want), details, "%s: readdir of '%s' lists exactly the expected names", vname, path);
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* Differences between @a and the source's lstat @s, appended to @out. */
static void attr_vs_stat(const struct cow_attr *a, const struct stat *s, char *out, size_t size)
{
	out[0] = 0;
#define DIFF(field, fmtv, got, want)                                                                                   \
	do {                                                                                                           \
		if ((got) != (want)) {                                                                                 \
			size_t l = strlen(out);                                                                        \
			snprintf(out + l, size - l, "%s" field " " fmtv " want " fmtv, l ? "; " : "", got, want);      \
		}                                                                                                      \
	} while (0)
	DIFF("mode", "0%o", (unsigned)a->mode, (unsigned)s->st_mode);
	DIFF("uid", "%u", (unsigned)a->uid, (unsigned)s->st_uid);
	DIFF("gid", "%u", (unsigned)a->gid, (unsigned)s->st_gid);
	DIFF("nlink", "%u", (unsigned)a->nlink, (unsigned)s->st_nlink);
	if (!S_ISDIR(s->st_mode))
		DIFF("size", "%lld", (long long)a->size, (long long)s->st_size);
	DIFF("mtime", "%lld", (long long)ts_ns(&a->mtime), (long long)ts_ns(&s->st_mtim));
	if (S_ISCHR(s->st_mode) || S_ISBLK(s->st_mode))
		DIFF("rdev", "%llu", (unsigned long long)a->rdev, (unsigned long long)s->st_rdev);
#undef DIFF
}

/* Differences between two attrs (ino, mode, owner, nlink, size, mtime). */
static void attr_vs_attr(const struct cow_attr *a, const struct cow_attr *b, char *out, size_t size)
{
	out[0] = 0;
#define DIFF(field, got, want)                                                                                         \
	do {                                                                                                           \
		if ((got) != (want)) {                                                                                 \
			size_t l = strlen(out);                                                                        \
			snprintf(out + l, size - l, "%s" field " %lld want %lld", l ? "; " : "", (long long)(got),     \
				 (long long)(want));                                                                   \
		}                                                                                                      \
	} while (0)
	DIFF("ino", a->ino, b->ino);
	DIFF("mode", a->mode, b->mode);
	DIFF("uid", a->uid, b->uid);
	DIFF("gid", a->gid, b->gid);
	DIFF("nlink", a->nlink, b->nlink);
	DIFF("size", a->size, b->size);
	DIFF("rdev", a->rdev, b->rdev);
	DIFF("mtime", ts_ns(&a->mtime), ts_ns(&b->mtime));
#undef DIFF
}

static void check_xattr(struct cow_view *v, const char *vname, const char *path, const char *name, const void *want,
			ssize_t wantlen)
{
	char buf[512], details[256];
	struct cow_attr a;
	int r = walk(v, path, &a);
	if (r == 0)
		r = cow_getxattr(v, a.ino, name, buf, sizeof(buf));
	snprintf(details, sizeof(details), "getxattr returned %d%s, want %zd%s", r, errname(r), wantlen,
		 errname(wantlen));
	check(r == wantlen && (r <= 0 || !memcmp(buf, want, (size_t)r)), details, "%s: xattr %s of '%s'", vname, name,
	      path);
}

static uint64_t client_layer_of;
static const char *client_layer_name;
static int find_client(void *arg, const struct cow_client_info *ci)
{
	(void)arg;
	if (!strcmp(ci->name, client_layer_name))
		client_layer_of = ci->layer;
	return 0;
}

static uint64_t client_layer(struct cow_store *st, const char *name)
{
	client_layer_of = 0;
	client_layer_name = name;
	cow_client_foreach(st, find_client, NULL);
	return client_layer_of;
}

struct image_count {
	int n;
	char names[512];
};
static int count_image(void *arg, const struct cow_image_info *ii)
{
	struct image_count *c = arg;
	c->n++;
	size_t l = strlen(c->names);
	snprintf(c->names + l, sizeof(c->names) - l, "%s%s", l ? "," : "", ii->name);
	return 0;
}

static struct image_count images(struct cow_store *st)
{
	struct image_count c = {0};
	cow_image_foreach(st, count_image, &c);
	return c;
}

static void data_path(char *buf, size_t size, uint64_t layer, uint64_t ino)
{
	snprintf(buf, size, "%s/data/%llu/%02x/%016llx", storedir, (unsigned long long)layer, (unsigned)(ino & 0xff),
		 (unsigned long long)ino);
}

static bool exists(const char *p)
{
	struct stat s;
	return lstat(p, &s) == 0;
}

/* Sorted names under STORE/data, comma-joined. */
static void list_data(char *buf, size_t size)
{
	char p[256];
	struct names s = {0};
	snprintf(p, sizeof(p), "%s/data", storedir);
	DIR *d = opendir(p);
	if (!d)
		bail(p);
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && s.n < 64)
			s.v[s.n++] = strdup(de->d_name);
	closedir(d);
	join_names(&s, buf, size);
}

static int fsck_lines;
static void fsck_log(void *arg, const char *line)
{
	(void)arg;
	fsck_lines++;
	printf("# fsck: %s\n", line);
}

static void report_str(const struct cow_fsck_report *r, char *buf, size_t size)
{
	snprintf(
	    buf, size, "orphan_files %llu, missing_data %llu, dangling %llu, dead_layers %llu, repaired %llu, db_ok %d",
	    (unsigned long long)r->orphan_files, (unsigned long long)r->missing_data, (unsigned long long)r->dangling,
	    (unsigned long long)r->dead_layers, (unsigned long long)r->repaired, r->db_ok);
}

static bool report_clean(const struct cow_fsck_report *r)
{
	return r->db_ok && !r->orphan_files && !r->missing_data && !r->dangling && !r->unused_layers;
}

static void check_fsck_clean(struct cow_store *st, const char *when)
{
	struct cow_fsck_report rep;
	char details[512];
	memset(&rep, 0xff, sizeof(rep));
	fsck_lines = 0;
	int r = cow_fsck(st, false, fsck_log, NULL, &rep);
	if (r < 0)
		snprintf(details, sizeof(details), "cow_fsck returned %d%s", r, errname(r));
	else
		report_str(&rep, details, sizeof(details));
	check(r == 0 && report_clean(&rep) && fsck_lines == 0, details, "fsck %s reports no problem", when);
}

static int cancel_progress(void *arg, const char *what, uint64_t done, uint64_t total)
{
	(void)what;
	(void)done;
	(void)total;
	(*(int *)arg)++;
	return 1;
}

struct progress_log {
	int calls;
	uint64_t done, total;
};
static int log_progress(void *arg, const char *what, uint64_t done, uint64_t total)
{
	struct progress_log *pl = arg;
	(void)what;
	pl->calls++;
	pl->done = done;
	pl->total = total;
	return 0;
}

struct resume {
	char *v[64];
	int n, stop, seen;
	off_t next;
};
static int resume_cb(void *arg, const char *name, const struct cow_attr *attr, off_t next_off)
{
	struct resume *rs = arg;
	(void)attr;
	if (rs->seen++ == rs->stop)
		return 1;
	rs->next = next_off;
	if (strcmp(name, ".") && strcmp(name, "..") && rs->n < 64)
		rs->v[rs->n++] = strdup(name);
	return 0;
}

/* ---- the tests ---- */

/* A writer that never pauses: creates and removes names in the root of
 * its view until told to stop. */
struct churn {
	struct cow_view *v;
	atomic_bool stop;
	long ops;
	int err;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	uint64_t root = cow_view_root(c->v);
	struct cow_attr a;
	while (!atomic_load(&c->stop) && !c->err) {
		int r = cow_mknod(c->v, root, "churn", S_IFIFO | 0644, 0, &cred, &a);
		if (r == 0) {
			cow_forget(c->v, a.ino, 1);
			r = cow_unlink(c->v, root, "churn");
		}
		if (r < 0)
			c->err = r;
		c->ops++;
	}
	return NULL;
}

/* Two writers of one store, each with its own connection (as two mounts
 * are): the one whose view writes without pause must not keep the other
 * from writing (each view holds its write transaction for a batch). */
static void test_two_writers(struct cow_view *v1)
{
	struct cow_store *st2 = NULL;
	struct cow_view *v = NULL;
	char details[256];
	int r = cow_store_open(storedir, 0, &st2);
	if (!check_int(r, 0, "a second connection to the store"))
		return;
	r = cow_view_open(st2, "c2", NULL, 0, &v);
	if (check_int(r, 0, "cow_view_open c2 on the second connection")) {
		struct churn c = {.v = v1};
		pthread_t t;
		if (pthread_create(&t, NULL, churn_main, &c) != 0)
			bail("pthread_create");
		/* contention only once the churner is under way */
		for (int w = 0; w < 5000 && __atomic_load_n(&c.ops, __ATOMIC_RELAXED) < 20 && !c.err; w++)
			usleep(1000);
		uint64_t root = cow_view_root(v);
		struct cow_attr a;
		int i, n = 200;
		for (i = 0, r = 0; i < n && r == 0; i++) {
			r = cow_mkdir(v, root, "turns", 0755, &cred, &a);
			if (r == 0) {
				cow_forget(v, a.ino, 1);
				r = cow_rmdir(v, root, "turns");
			}
		}
		atomic_store(&c.stop, true);
		pthread_join(t, NULL);
		snprintf(details, sizeof(details), "op %d of %d returned %d%s; the other made %ld ops, error %d", i, n,
			 r, errname(r), c.ops, c.err);
		check(r == 0 && c.err == 0 && c.ops > 0, details,
		      "c2 writes 200 times through its own connection while c1 writes without pause");
		check_int(cow_view_close(v), 0, "cow_view_close c2 on the second connection");
	}
	cow_store_close(st2);
}

/* Concurrent fsyncs (grouped: cow_db_sync) each return only once what
 * they cover is committed: a second connection sees every file. */
struct syncer {
	struct cow_view *v;
	uint64_t dir;
	int id, err;
};

#define SYNC_FILES 20

static void *syncer_main(void *arg)
{
	struct syncer *s = arg;
	char name[64], buf[4096];
	memset(buf, 'a' + s->id, sizeof(buf));
	for (int i = 0; i < SYNC_FILES && !s->err; i++) {
		struct cow_file *f;
		struct cow_attr a;
		snprintf(name, sizeof(name), "s%d-%d", s->id, i);
		int r = cow_create(s->v, s->dir, name, 0644, O_RDWR | O_CREAT, &cred, &f, &a);
		if (r == 0) {
			ssize_t n = cow_write(f, buf, sizeof(buf), 0);
			r = n < 0 ? (int)n : n != sizeof(buf) ? -EIO : cow_fsync(f, false);
			cow_release(f);
			cow_forget(s->v, a.ino, 1);
		}
		s->err = r;
	}
	return NULL;
}

static void test_concurrent_fsync(struct cow_view *v1)
{
	struct syncer s[4];
	pthread_t t[4];
	struct cow_attr a;
	char details[256], name[64];
	int r = cow_mkdir(v1, cow_view_root(v1), "syncs", 0755, &cred, &a);
	if (!check_int(r, 0, "mkdir syncs"))
		return;
	for (int k = 0; k < 4; k++) {
		s[k] = (struct syncer){.v = v1, .dir = a.ino, .id = k};
		if (pthread_create(&t[k], NULL, syncer_main, &s[k]) != 0)
			bail("pthread_create");
	}
	int err = 0;
	for (int k = 0; k < 4; k++) {
		pthread_join(t[k], NULL);
		if (s[k].err)
			err = s[k].err;
	}
	check_int(err, 0, "4 threads create, write and fsync 20 files each");
	/* the view keeps batching: only the fsyncs can have committed them */
	struct cow_store *st2 = NULL;
	struct cow_view *v = NULL;
	r = cow_store_open(storedir, 0, &st2);
	if (r == 0)
		r = cow_view_open(st2, "c1", NULL, COW_VIEW_READONLY, &v);
	if (check_int(r, 0, "a read-only view of c1 on a second connection")) {
		struct cow_attr d;
		int seen = 0;
		r = cow_lookup(v, cow_view_root(v), "syncs", &d);
		for (int k = 0; r == 0 && k < 4; k++)
			for (int i = 0; i < SYNC_FILES; i++) {
				struct cow_attr f;
				snprintf(name, sizeof(name), "s%d-%d", k, i);
				if (cow_lookup(v, d.ino, name, &f) == 0) {
					seen += f.size == 4096;
					cow_forget(v, f.ino, 1);
				}
			}
		snprintf(details, sizeof(details), "%d of %d seen with their size", seen, 4 * SYNC_FILES);
		check(seen == 4 * SYNC_FILES, details, "the second connection sees every fsynced file");
		cow_view_close(v);
	}
	cow_store_close(st2);
	cow_forget(v1, a.ino, 1);
}

/* A view's object queries share one read transaction, up to a second old
 * (store.c, read_begin).  What another process adds meanwhile must still
 * be seen where it matters: a client and an image imported through a
 * second connection, opened at once on the first, whose open read
 * transaction began before they existed. */
/* The xattrs of one object are bounded (COW_XATTR_LIST_MAX of names,
 * COW_XATTR_TOTAL_MAX of names and values): setxattr past either is
 * -ENOSPC, and listxattr always fits the kernel's 64 KiB. */
static void test_xattr_bounds(struct cow_view *v1)
{
	uint64_t root = cow_view_root(v1);
	struct cow_attr a;
	static char list[COW_XATTR_LIST_MAX];
	char name[COW_XATTR_NAME_MAX + 1], value[100];
	memset(value, 'v', sizeof(value));

	/* many small ones: 10,000 of 100 bytes do not all fit */
	if (!check_int(cow_mknod(v1, root, "many-xattrs", S_IFREG | 0644, 0, &cred, &a), 0, "xattrs: a file"))
		return;
	uint64_t ino = a.ino;
	int n = 0, r = 0;
	for (; n < 10000; n++) {
		snprintf(name, sizeof(name), "user.attr%05d", n);
		if ((r = cow_setxattr(v1, ino, name, value, sizeof(value), 0)) < 0)
			break;
	}
	char details[160];
	snprintf(details, sizeof(details), "%d set, then %d%s", n, r, errname(r));
	check(r == -ENOSPC && n > 100, details, "xattrs: 10,000 of 100 bytes: setxattr past the bound is -ENOSPC");
	int size = cow_listxattr(v1, ino, NULL, 0);
	check(size > 0 && size <= COW_XATTR_LIST_MAX, details, "xattrs: listxattr's size fits in 64 KiB");
	check_int(cow_listxattr(v1, ino, list, sizeof(list)), size, "xattrs: listxattr into 64 KiB works");
	check_int(cow_setxattr(v1, ino, "user.attr00000", "w", 1, 0), 0, "xattrs: a smaller value in place fits");
	check_int(cow_setxattr(v1, ino, "user.attr00000", value, sizeof(value), 0), 0,
		  "xattrs: and the old size again");
	static char big[4096];
	check_int(cow_setxattr(v1, ino, "user.attr00001", big, sizeof(big), 0), -ENOSPC,
		  "xattrs: a larger value in place past the bound is -ENOSPC");
	check_xattr(v1, "c1", "many-xattrs", "user.attr00001", value, sizeof(value));
	snprintf(name, sizeof(name), "user.attr%05d", n);
	check_int(cow_removexattr(v1, ino, "user.attr00002"), 0, "xattrs: remove one");
	check_int(cow_setxattr(v1, ino, name, value, sizeof(value), 0), 0, "xattrs: then another fits");
	cow_forget(v1, ino, 1);

	/* long names, empty values: the names alone reach the bound */
	if (!check_int(cow_mknod(v1, root, "long-names", S_IFREG | 0644, 0, &cred, &a), 0, "xattrs: a second file"))
		return;
	ino = a.ino;
	char pad[COW_XATTR_NAME_MAX + 1], lname[COW_XATTR_NAME_MAX + 16];
	memset(pad, 'n', sizeof(pad));
	pad[COW_XATTR_NAME_MAX - 9] = 0; /* "user.NNNN" and the pad: 255 bytes */
	for (n = 0; n < 1000; n++) {
		snprintf(lname, sizeof(lname), "user.%04d%s", n, pad);
		if ((r = cow_setxattr(v1, ino, lname, "", 0, 0)) < 0)
			break;
	}
	snprintf(details, sizeof(details), "%d set, then %d%s", n, r, errname(r));
	check(r == -ENOSPC && n == COW_XATTR_LIST_MAX / (COW_XATTR_NAME_MAX + 1), details,
	      "xattrs: 255-byte names with empty values: the names fill 64 KiB, then -ENOSPC");
	size = cow_listxattr(v1, ino, list, sizeof(list));
	check(size > COW_XATTR_LIST_MAX - 256 && size <= COW_XATTR_LIST_MAX, details,
	      "xattrs: listxattr of a full list works");
	cow_forget(v1, ino, 1);

	/* one value of the largest size still fits beside a few more */
	if (!check_int(cow_mknod(v1, root, "one-big", S_IFREG | 0644, 0, &cred, &a), 0, "xattrs: a third file"))
		return;
	ino = a.ino;
	static char huge[COW_XATTR_SIZE_MAX];
	check_int(cow_setxattr(v1, ino, "user.huge", huge, sizeof(huge), 0), 0, "xattrs: a 64 KiB value");
	check_int(cow_setxattr(v1, ino, "user.small", value, sizeof(value), 0), 0, "xattrs: and a small one beside");
	check_int(cow_setxattr(v1, ino, "user.huge2", huge, sizeof(huge), 0), -ENOSPC,
		  "xattrs: a second 64 KiB value is -ENOSPC");
	cow_forget(v1, ino, 1);

	/* inherited ACLs that would not fit: a directory's default ACL of
	 * almost 64 KiB becomes a subdirectory's access and default ACL */
	if (!check_int(cow_mkdir(v1, root, "big-acl", 0755, &cred, &a), 0, "xattrs: a directory"))
		return;
	ino = a.ino;
	size_t entries = (COW_XATTR_SIZE_MAX - 4) / 8;
	static uint8_t acl[COW_XATTR_SIZE_MAX];
	size_t acl_size = 4 + 8 * entries;
	uint32_t version = 2;
	memcpy(acl, &version, 4);
	for (size_t i = 0; i < entries; i++) {
		uint16_t tag = i == 0		  ? 0x01
			       : i == entries - 3 ? 0x04
			       : i == entries - 2 ? 0x10
			       : i == entries - 1 ? 0x20
						  : 0x02;
		uint16_t perm = 7;
		uint32_t id = (uint32_t)(1000 + i);
		memcpy(acl + 4 + 8 * i, &tag, 2);
		memcpy(acl + 4 + 8 * i + 2, &perm, 2);
		memcpy(acl + 4 + 8 * i + 4, &id, 4);
	}
	check_int(cow_setxattr(v1, ino, "system.posix_acl_default", acl, acl_size, 0), 0,
		  "xattrs: a default ACL of %zu bytes", acl_size);
	r = cow_mknod(v1, ino, "file", S_IFREG | 0644, 0, &cred, &a);
	check_int(r, 0, "xattrs: a file under it (its access ACL fits)");
	if (r == 0)
		cow_forget(v1, a.ino, 1);
	check_int(cow_mkdir(v1, ino, "sub", 0755, &cred, &a), -ENOSPC,
		  "xattrs: a directory under it (access and default ACL do not fit) is -ENOSPC");
	check_int(cow_lookup(v1, ino, "sub", &a), -ENOENT, "xattrs: and is not made");
	cow_forget(v1, ino, 1);
}

static void test_read_snapshot(struct cow_store *st, struct cow_view *v1)
{
	struct cow_store *st2 = NULL;
	struct cow_view *v = NULL;
	struct cow_attr a;
	uint64_t root1 = cow_view_root(v1);
	/* a query through v1 opens the shared read transaction */
	check_int(cow_lookup(v1, root1, "hello.txt", &a), 0, "c1 looks hello.txt up (a read transaction opens)");
	cow_forget(v1, a.ino, 1);
	int r = cow_store_open(storedir, 0, &st2);
	if (!check_int(r, 0, "a second connection to the store"))
		return;
	r = cow_image_import(st2, "later", src, NULL, NULL);
	check_int(r, 0, "the second connection imports image 'later'");
	if (r == 0)
		r = cow_client_add(st2, "c-later", "later");
	check_int(r, 0, "the second connection adds client 'c-later' on it");
	cow_store_close(st2);
	if (r < 0)
		return;
	r = cow_view_open(st, "c-later", NULL, 0, &v);
	if (check_int(r, 0, "the first connection opens 'c-later' at once")) {
		r = cow_lookup(v, cow_view_root(v), "hello.txt", &a);
		check_int(r, 0, "it sees the new image's objects (hello.txt)");
		if (r == 0)
			cow_forget(v, a.ino, 1);
		check_int(cow_view_close(v), 0, "cow_view_close c-later");
	}
	/* c1's view goes on as before, and writes after reads */
	r = cow_mkdir(v1, root1, "after-snapshot", 0755, &cred, &a);
	check_int(r, 0, "c1 writes after reading in the shared transaction");
	if (r == 0) {
		cow_forget(v1, a.ino, 1);
		check_int(cow_rmdir(v1, root1, "after-snapshot"), 0, "c1 removes it again");
	}
}

static const char *persist_paths[] = {
    "",	   "hl1",   "hl2",     "sparse.bin", "hello.txt", "rmd", "moved",  "moved/inner", "moved/deep/f",
    "dir", "dir/a", "dir/sub", "suid",	     "fifo",	  "sym", "dir/a2",
};
#define NPERSIST (sizeof(persist_paths) / sizeof(persist_paths[0]))

int main(void)
{
	struct cow_store *st = NULL;
	struct cow_view *v1 = NULL, *v2 = NULL, *vb = NULL;
	struct cow_attr a, b;
	struct cow_file *f;
	char details[8192], buf[4096], p[1024];
	uint64_t old_hello = 0, old_rmd = 0;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(top, sizeof(top), "/tmp/cowroot-unit-XXXXXX");
	if (!mkdtemp(top))
		bail("mkdtemp");
	snprintf(src, sizeof(src), "%s/src", top);
	snprintf(storedir, sizeof(storedir), "%s/store", top);
	printf("# temp dir %s\n", top);
	build_tree();
	if (!have_chardev)
		printf("# mknod of a character device failed with EPERM: device checks skipped\n");

	/* ---- store errors ---- */
	{
		struct cow_store *sentinel = (struct cow_store *)&r, *s = sentinel;
		snprintf(p, sizeof(p), "%s/missing", top);
		check_int(cow_store_open(p, 0, &s), -ENOENT, "cow_store_open of a missing directory is -ENOENT");
		check(s == sentinel, "ret was changed", "failed cow_store_open leaves ret untouched");

		/* an existing directory that holds no store */
		snprintf(p, sizeof(p), "%s/nostore", top);
		mkdir(p, 0700);
		s = sentinel;
		check_int(cow_store_open(p, 0, &s), -ENOENT,
			  "cow_store_open of a directory without a store is -ENOENT");

		/* garbage where the database should be */
		static char garbage[8192];
		for (size_t i = 0; i < sizeof(garbage); i++)
			garbage[i] = (char)("not a database, just garbage! "[i % 30] ^ (i / 30 % 7));
		snprintf(p, sizeof(p), "%s/garbage", top);
		mkdir(p, 0700);
		snprintf(p, sizeof(p), "%s/garbage/data", top);
		mkdir(p, 0700);
		snprintf(p, sizeof(p), "%s/garbage/cowroot.db", top);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, garbage, sizeof(garbage)) != (ssize_t)sizeof(garbage))
			bail(p);
		close(fd);
		snprintf(p, sizeof(p), "%s/garbage", top);
		s = sentinel;
		r = cow_store_open(p, 0, &s);
		check_int(r, -EMEDIUMTYPE, "cow_store_open on a garbage cowroot.db is -EMEDIUMTYPE (not a database)");
		if (r == 0 && s != sentinel)
			cow_store_close(s);
		char back[sizeof(garbage)];
		snprintf(p, sizeof(p), "%s/garbage/cowroot.db", top);
		fd = open(p, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, back, sizeof(back)) : -1;
		if (fd >= 0)
			close(fd);
		check(n == (ssize_t)sizeof(garbage) && !memcmp(back, garbage, sizeof(garbage)), "file was modified",
		      "a failed open leaves the garbage cowroot.db as it was");
	}

	/* ---- create, import, clients ---- */
	r = cow_store_open(storedir, COW_STORE_CREATE, &st);
	if (!check_int(r, 0, "cow_store_open(COW_STORE_CREATE) of a new directory"))
		goto out;
	{
		struct cow_store *s2 = NULL;
		r = cow_store_open(storedir, COW_STORE_CREATE, &s2);
		check_int(r, -EEXIST, "cow_store_open(COW_STORE_CREATE) on an existing store is -EEXIST");
		if (r == 0)
			cow_store_close(s2);
	}
	check_fsck_clean(st, "of a new empty store");

	r = cow_image_import(st, "base", src, NULL, NULL);
	if (!check_int(r, 0, "cow_image_import of the source tree"))
		goto out;
	{
		struct image_count c = images(st);
		check(c.n == 1 && !strcmp(c.names, "base"), c.names, "cow_image_foreach lists exactly image 'base'");
	}
	check_int(cow_image_import(st, "base", src, NULL, NULL), -EEXIST, "import under an existing name is -EEXIST");
	check_int(cow_image_import(st, ".bad", src, NULL, NULL), -EINVAL, "import under a bad name is -EINVAL");
	{
		char before[512], after[512];
		list_data(before, sizeof(before));
		snprintf(p, sizeof(p), "%s/no-such-dir", top);
		check_int(cow_image_import(st, "ghost", p, NULL, NULL), -ENOENT,
			  "import of a nonexistent directory is -ENOENT");
		spath(p, sizeof(p), "hello.txt");
		check_int(cow_image_import(st, "ghost2", p, NULL, NULL), -ENOTDIR,
			  "import of a regular file is -ENOTDIR");
		/* a subtree without hardlinks, then the whole tree */
		int calls = 0;
		spath(p, sizeof(p), "dir");
		r = cow_image_import(st, "cancelled", p, cancel_progress, &calls);
		snprintf(details, sizeof(details), "returned %d%s after %d progress calls", r, errname(r), calls);
		check(r == -ECANCELED && calls > 0, details,
		      "import of subtree 'dir' cancelled by its progress callback is -ECANCELED");
		struct image_count c = images(st);
		check(c.n == 1 && !strcmp(c.names, "base"), c.names, "the cancelled subtree import records no image");
		calls = 0;
		r = cow_image_import(st, "cancelled2", src, cancel_progress, &calls);
		snprintf(details, sizeof(details), "returned %d%s after %d progress calls", r, errname(r), calls);
		check(r == -ECANCELED && calls > 0, details,
		      "import of the whole tree cancelled by its progress callback is -ECANCELED");
		c = images(st);
		check(c.n == 1 && !strcmp(c.names, "base"), c.names, "failed/cancelled imports record no image");
		list_data(after, sizeof(after));
		snprintf(details, sizeof(details), "data/ before [%s], after [%s]", before, after);
		check(!strcmp(before, after), details, "failed/cancelled imports leave no data files behind");
		check_int(cow_client_add(st, "g", "ghost"), -ENOENT, "no client can be put on the failed import");
	}
	{
		/* progress must end with done == total */
		struct progress_log pl = {0};
		r = cow_image_import(st, "base-progress", src, log_progress, &pl);
		snprintf(details, sizeof(details), "returned %d%s, %d calls, last %llu of %llu", r, errname(r),
			 pl.calls, (unsigned long long)pl.done, (unsigned long long)pl.total);
		check(r == 0 && pl.calls > 0 && pl.total > 0 && pl.done == pl.total, details,
		      "import progress ends with done == total");
	}
	check_fsck_clean(st, "after import");

	check_int(cow_client_add(st, "c1", "base"), 0, "cow_client_add c1");
	check_int(cow_client_add(st, "c2", "base"), 0, "cow_client_add c2");
	check_int(cow_client_add(st, "c3", "nosuchimage"), -ENOENT, "cow_client_add on an unknown image is -ENOENT");
	check_int(cow_client_add(st, "c1", "base"), -EEXIST, "cow_client_add of a duplicate name is -EEXIST");
	{
		static const char *bad[] = {"", ".hidden", "-dash", "a/b", "sp ace", "tab\t", "x:y"};
		char n65[66];
		memset(n65, 'n', 65);
		n65[65] = 0;
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			check_int(cow_client_add(st, bad[i], "base"), -EINVAL,
				  "cow_client_add with bad name \"%s\" is -EINVAL", bad[i]);
		check_int(cow_client_add(st, n65, "base"), -EINVAL, "cow_client_add with a 65-byte name is -EINVAL");
		n65[64] = 0;
		check_int(cow_name_check(n65), 0, "a 64-byte name of valid characters passes cow_name_check");
		check_int(cow_name_check("pi-07.a_b@c+d"), 0, "a name with every allowed punctuation passes");
	}
	uint64_t layer1 = client_layer(st, "c1"), layer2 = client_layer(st, "c2");
	check(layer1 && layer2 && layer1 != layer2, "layers not distinct", "c1 and c2 have distinct layers");

	/* ---- views ---- */
	check_int(cow_view_open(st, "nosuch", NULL, 0, &v1), -ENOENT, "cow_view_open of an unknown client is -ENOENT");
	check_int(cow_view_open(st, NULL, "nosuch", 0, &v1), -ENOENT, "cow_view_open of an unknown image is -ENOENT");
	v1 = NULL;
	r = cow_view_open(st, "c1", NULL, 0, &v1);
	if (!check_int(r, 0, "cow_view_open c1"))
		goto out;
	r = cow_view_open(st, "c2", NULL, 0, &v2);
	if (!check_int(r, 0, "cow_view_open c2"))
		goto out;
	r = cow_view_open(st, NULL, "base", 0, &vb);
	if (!check_int(r, 0, "cow_view_open of image 'base'"))
		goto out;
	check(!cow_view_readonly(v1) && cow_view_readonly(vb), "readonly flags wrong",
	      "client view is writable, image view read-only");
	{
		struct cow_view *vx = NULL;
		r = cow_view_open(st, "c1", NULL, 0, &vx);
		check_int(r, -EBUSY, "a second writable view of c1 in the same process is -EBUSY");
		if (r == 0)
			cow_view_close(vx);
		vx = NULL;
		r = cow_view_open(st, "c1", NULL, COW_VIEW_READONLY, &vx);
		check_int(r, 0, "a COW_VIEW_READONLY view of c1 opens beside the writer");
		if (r == 0) {
			check(cow_view_readonly(vx), "not readonly", "that view is read-only");
			check_int(cow_mkdir(vx, cow_view_root(vx), "nope", 0755, &cred, &a), -EROFS,
				  "mkdir in a COW_VIEW_READONLY client view is -EROFS");
			check_int(cow_view_close(vx), 0, "close of the read-only client view");
		}
	}
	check(cow_view_root(v1) == cow_view_root(v2) && cow_view_root(v1) == cow_view_root(vb), "roots differ",
	      "the root has the same ino in every view");

	/* ---- attributes against the source ---- */
	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++) {
		const char *path = tree[i];
		struct stat s;
		if (!strcmp(path, "null") && !have_chardev) {
			skip("mknod EPERM", "attributes of character device 'null'");
			continue;
		}
		spath(p, sizeof(p), path);
		if (lstat(p, &s) < 0)
			bail(p);
		r = walk(v1, path, &a);
		if (r < 0) {
			snprintf(details, sizeof(details), "lookup returned %d%s", r, errname(r));
			check(false, details, "c1: lookup attributes of '%s' match the source", path);
			continue;
		}
		attr_vs_stat(&a, &s, details, sizeof(details));
		check(!details[0], details, "c1: lookup attributes of '%s' match the source", path);
		r = cow_getattr(v1, a.ino, &b);
		if (r == 0)
			attr_vs_attr(&b, &a, details, sizeof(details));
		else
			snprintf(details, sizeof(details), "getattr returned %d%s", r, errname(r));
		check(r == 0 && !details[0], details, "c1: getattr of '%s' equals its lookup", path);
	}
	{
		struct stat s;
		spath(p, sizeof(p), "hl2");
		lstat(p, &s);
		r = walk(v1, "hl2", &a);
		attr_vs_stat(&a, &s, details, sizeof(details));
		check(r == 0 && !details[0], details, "c1: lookup attributes of 'hl2' match the source");
		check(r == 0 && a.ino == ino_of(v1, "hl1") && a.nlink == 2, "inos differ or nlink != 2",
		      "hardlinks hl1 and hl2 are one object with nlink 2");
		check(ino_of(v1, "hl1") == ino_of(v2, "hl1") && ino_of(v1, "dir/sub/b") == ino_of(vb, "dir/sub/b"),
		      "inos differ", "an object has the same ino in every view");
		r = walk(v1, "sym", &a);
		memset(buf, 0, sizeof(buf));
		int n = r == 0 ? cow_readlink(v1, a.ino, buf, sizeof(buf)) : r;
		snprintf(details, sizeof(details), "readlink returned %d \"%s\"", n, n > 0 ? buf : "");
		check(n == 9 && !memcmp(buf, "hello.txt", 9), details, "c1: readlink of 'sym'");
		n = cow_readlink(v1, ino_of(v1, "hello.txt"), buf, sizeof(buf));
		check_int(n, -EINVAL, "readlink of a regular file is -EINVAL");
		r = walk(v1, "sparse.bin", &a);
		spath(p, sizeof(p), "sparse.bin");
		lstat(p, &s);
		snprintf(details, sizeof(details), "blocks %lld, source blocks %lld, size %lld", (long long)a.blocks,
			 (long long)s.st_blocks, (long long)a.size);
		if (s.st_blocks * 512 < SPARSE_SIZE)
			check(r == 0 && a.blocks * 512 < SPARSE_SIZE, details,
			      "the sparse file stays sparse in the image");
		else
			skip("source file system does not keep holes", "the sparse file stays sparse in the image");
	}

	/* ---- listings ---- */
	{
		static const char *dirs[] = {"", "dir", "dir/sub", "mvdir", "mvdir/deep"};
		char want[2048];
		for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
			list_src(dirs[i], want, sizeof(want));
			check_listing(v1, "c1", dirs[i], want);
		}
		list_src("", want, sizeof(want));
		check_listing(vb, "image", "", want);
		int bad = -1;
		char got[2048];
		list_view(v2, "", true, got, sizeof(got), &bad);
		snprintf(details, sizeof(details), "got [%s], want [%s], %d entries without attrs", got, want, bad);
		check(!strcmp(got, want) && bad == 0, details,
		      "c2: readdirplus of the root lists the names with attrs");
	}

	/* ---- xattrs as imported ---- */
	check_xattr(v1, "c1", "hello.txt", "user.color", "blue", 4);
	check_xattr(v1, "c1", "hello.txt", "user.empty", "", 0);
	check_xattr(v1, "c1", "dir", "user.dirx", "1", 1);
	check_xattr(v1, "c1", "suid", "user.note", "setuid", 6);
	if (have_caps) {
		char cap[64];
		spath(p, sizeof(p), "suid");
		ssize_t n = lgetxattr(p, "security.capability", cap, sizeof(cap));
		check_xattr(v1, "c1", "suid", "security.capability", cap, n);
	} else {
		skip("cannot set security.capability here", "c1: xattr security.capability of 'suid'");
	}
	{
		uint64_t ino = ino_of(v1, "hello.txt");
		int n = cow_listxattr(v1, ino, NULL, 0);
		memset(buf, 0, sizeof(buf));
		int m = cow_listxattr(v1, ino, buf, sizeof(buf));
		bool has_color = false, has_empty = false;
		for (int i = 0; m > 0 && i < m; i += (int)strlen(buf + i) + 1) {
			has_color |= !strcmp(buf + i, "user.color");
			has_empty |= !strcmp(buf + i, "user.empty");
		}
		snprintf(details, sizeof(details), "size query %d, list %d", n, m);
		check(n == 22 && m == 22 && has_color && has_empty, details,
		      "c1: listxattr of 'hello.txt' lists user.color and user.empty");
		check_int(cow_listxattr(v1, ino, buf, 5), -ERANGE, "listxattr into a too small buffer is -ERANGE");
		check_int(cow_getxattr(v1, ino, "user.color", NULL, 0), 4, "getxattr with size 0 returns the size");
		check_int(cow_getxattr(v1, ino, "user.color", buf, 2), -ERANGE,
			  "getxattr into a too small buffer is -ERANGE");
		check_int(cow_getxattr(v1, ino, "user.missing", buf, sizeof(buf)), -ENODATA,
			  "getxattr of a missing name is -ENODATA");
	}

	/* ---- content ---- */
	check_content(v1, "c1", "hello.txt", "hello world\n");
	check_content(v1, "c1", "hl2", "linked\n");
	check_content(v1, "c1", "dir/sub/b", "bbb\n");
	check_content(v1, "c1", "empty", "");
	{
		static char big[SPARSE_SIZE];
		static const char zeros[4096];
		ssize_t n = read_path(v1, "sparse.bin", big, sizeof(big), 0);
		bool ok = n == SPARSE_SIZE && !memcmp(big, "HEAD", 4) && !memcmp(big + 2 * MiB, "MID!", 4) &&
			  !memcmp(big + SPARSE_SIZE - 4, "TAIL", 4) && !memcmp(big + 4, zeros, sizeof(zeros)) &&
			  !memcmp(big + 3 * MiB, zeros, sizeof(zeros));
		snprintf(details, sizeof(details), "read %zd%s", n, errname(n));
		check(ok, details, "c1: content of the sparse file (data and holes)");
		n = read_path(v1, "sparse.bin", big, 100, SPARSE_SIZE - 2);
		check_int(n, 2, "a read across EOF returns the bytes up to EOF");
		n = read_path(v1, "sparse.bin", big, 100, SPARSE_SIZE + 10);
		check_int(n, 0, "a read past EOF returns 0");
	}

	/* ---- copy-up ---- */
	{
		uint64_t ino = ino_of(v1, "hl1");
		f = NULL;
		r = cow_open(v1, ino, O_RDWR, &f);
		check_int(r, 0, "c1: cow_open(O_RDWR) of base file 'hl1'");
		if (r == 0) {
			ssize_t n = cow_write(f, "NEW-CONTENT\n", 12, 0);
			check_int(n, 12, "c1: cow_write to 'hl1'");
			check(cow_file_ino(f) == ino, "ino changed", "copy-up keeps the file's ino");
			memset(buf, 0, sizeof(buf));
			n = cow_read(f, buf, sizeof(buf), 0);
			check(n == 12 && !memcmp(buf, "NEW-CONTENT\n", 12), buf,
			      "c1: reading back through the same open file");
			cow_release(f);
		}
		r = walk(v1, "hl1", &a);
		check(r == 0 && a.ino == ino && a.size == 12 && a.nlink == 2, "ino/size/nlink wrong",
		      "c1: after copy-up 'hl1' has the same ino, new size, nlink 2");
		r = walk(v1, "hl2", &a);
		check(r == 0 && a.ino == ino && a.size == 12, "ino/size wrong",
		      "c1: after copy-up 'hl2' is still the same object with the new size");
		check_content(v1, "c1", "hl1", "NEW-CONTENT\n");
		check_content(v1, "c1", "hl2", "NEW-CONTENT\n");
		check_content(v2, "c2", "hl1", "linked\n");
		check_content(v2, "c2", "hl2", "linked\n");
		check_content(vb, "image", "hl1", "linked\n");
		data_path(p, sizeof(p), layer1, ino);
		check(exists(p), p, "c1's layer has a data file for the copied-up object");

		/* a partial overwrite keeps the rest of the base content */
		r = walk(v1, "sparse.bin", &a);
		uint64_t sino = a.ino;
		r = cow_open(v1, sino, O_WRONLY, &f);
		if (check_int(r, 0, "c1: cow_open(O_WRONLY) of 'sparse.bin'")) {
			check_int(cow_write(f, "mid", 3, 2 * MiB), 3, "c1: cow_write into the middle of 'sparse.bin'");
			cow_release(f);
		}
		memset(buf, 0, sizeof(buf));
		ssize_t n = read_path(v1, "sparse.bin", buf, 4, 0);
		ssize_t m = read_path(v1, "sparse.bin", buf + 8, 4, 2 * MiB);
		ssize_t k = read_path(v1, "sparse.bin", buf + 16, 4, SPARSE_SIZE - 4);
		check(n == 4 && m == 4 && k == 4 && !memcmp(buf, "HEAD", 4) && !memcmp(buf + 8, "mid!", 4) &&
			  !memcmp(buf + 16, "TAIL", 4),
		      "content wrong", "c1: copy-up of 'sparse.bin' kept the rest of its content");
		r = walk(v1, "sparse.bin", &a);
		check(r == 0 && a.ino == sino && a.size == SPARSE_SIZE, "ino or size changed",
		      "c1: 'sparse.bin' keeps ino and size after copy-up");
		n = read_path(v2, "sparse.bin", buf, 4, 2 * MiB);
		check(n == 4 && !memcmp(buf, "MID!", 4), "c2 sees the change", "c2: 'sparse.bin' unchanged");

		/* O_TRUNC on a base file */
		r = cow_open(v1, ino_of(v1, "dir/sub/b"), O_WRONLY | O_TRUNC, &f);
		if (check_int(r, 0, "c1: cow_open(O_TRUNC) of base file 'dir/sub/b'"))
			cow_release(f);
		r = walk(v1, "dir/sub/b", &a);
		check(r == 0 && a.size == 0, "size not 0", "c1: O_TRUNC emptied 'dir/sub/b'");
		check_content(v1, "c1", "dir/sub/b", "");
		check_content(v2, "c2", "dir/sub/b", "bbb\n");
	}

	/* ---- metacopy ---- */
	{
		struct cow_attr orig, set = {0}, got;
		r = walk(v1, "hello.txt", &orig);
		set.mode = 0600;
		set.uid = 4242;
		r = cow_setattr(v1, orig.ino, &set, COW_SET_MODE | COW_SET_UID, &got);
		check_int(r, 0, "c1: cow_setattr mode and uid of base file 'hello.txt'");
		check(r == 0 && got.ino == orig.ino && got.mode == (S_IFREG | 0600) && got.uid == 4242 &&
			  got.gid == orig.gid && got.size == orig.size,
		      "returned attr wrong", "c1: setattr returns the new mode/uid, same ino, gid and size");
		r = walk(v1, "hello.txt", &a);
		check(r == 0 && a.ino == orig.ino && a.mode == (S_IFREG | 0600) && a.uid == 4242, "lookup attr wrong",
		      "c1: lookup sees the new mode/uid with the same ino");
		r = walk(v2, "hello.txt", &a);
		check(r == 0 && a.mode == (S_IFREG | 0644) && a.uid == orig.uid, "c2 changed",
		      "c2: 'hello.txt' keeps its mode and owner");
		r = walk(vb, "hello.txt", &a);
		check(r == 0 && a.mode == (S_IFREG | 0644), "image changed", "image: 'hello.txt' keeps its mode");
		data_path(p, sizeof(p), layer1, orig.ino);
		check(!exists(p), p, "a metadata change copies no data into c1's layer");
		check_content(v1, "c1", "hello.txt", "hello world\n");
		check_xattr(v1, "c1", "hello.txt", "user.color", "blue", 4);

		/* explicit nanosecond mtime through setattr */
		set.mtime.tv_sec = 1234567890;
		set.mtime.tv_nsec = 987654321;
		r = cow_setattr(v1, ino_of(v1, "empty"), &set, COW_SET_MTIME, &got);
		check(r == 0 && got.mtime.tv_sec == 1234567890 && got.mtime.tv_nsec == 987654321, "mtime wrong",
		      "c1: setattr of an explicit nanosecond mtime");

		/* xattr on a base object */
		uint64_t aino = ino_of(v1, "dir/a");
		r = cow_setxattr(v1, aino, "user.new", "v1", 2, 0);
		check_int(r, 0, "c1: cow_setxattr user.new on base file 'dir/a'");
		check(ino_of(v1, "dir/a") == aino, "ino changed", "c1: 'dir/a' keeps its ino after setxattr");
		check_xattr(v1, "c1", "dir/a", "user.new", "v1", 2);
		check_xattr(v2, "c2", "dir/a", "user.new", NULL, -ENODATA);
		check_xattr(vb, "image", "dir/a", "user.new", NULL, -ENODATA);
		data_path(p, sizeof(p), layer1, aino);
		check(!exists(p), p, "setxattr copies no data into c1's layer");

		/* xattr errors and limits */
		uint64_t hino = orig.ino;
		check_int(cow_setxattr(v1, hino, "user.color", "red", 3, XATTR_CREATE), -EEXIST,
			  "setxattr XATTR_CREATE on an existing name is -EEXIST");
		check_int(cow_setxattr(v1, hino, "user.nope", "x", 1, XATTR_REPLACE), -ENODATA,
			  "setxattr XATTR_REPLACE on a missing name is -ENODATA");
		check_xattr(v1, "c1", "hello.txt", "user.color", "blue", 4);
		check_int(cow_setxattr(v1, hino, "user.color", "red", 3, XATTR_REPLACE), 0,
			  "setxattr XATTR_REPLACE on an existing name");
		check_xattr(v1, "c1", "hello.txt", "user.color", "red", 3);
		check_xattr(v2, "c2", "hello.txt", "user.color", "blue", 4);
		static char huge[COW_XATTR_SIZE_MAX + 1];
		memset(huge, 'x', sizeof(huge));
		check_int(cow_setxattr(v1, hino, "user.big", huge, COW_XATTR_SIZE_MAX + 1, 0), -E2BIG,
			  "setxattr of 65537 bytes is -E2BIG");
		check_int(cow_setxattr(v1, hino, "user.big", huge, COW_XATTR_SIZE_MAX, 0), 0,
			  "setxattr of exactly 65536 bytes");
		check_int(cow_getxattr(v1, hino, "user.big", NULL, 0), COW_XATTR_SIZE_MAX,
			  "getxattr size of the 65536-byte value");
		check_int(cow_getxattr(v1, hino, "user.big2", buf, sizeof(buf)), -ENODATA,
			  "getxattr of a missing name is -ENODATA");
		check_int(cow_removexattr(v1, hino, "user.empty"), 0, "c1: removexattr of a base xattr");
		check_xattr(v1, "c1", "hello.txt", "user.empty", NULL, -ENODATA);
		check_xattr(v2, "c2", "hello.txt", "user.empty", "", 0);
		check_int(cow_removexattr(v1, hino, "user.empty"), -ENODATA,
			  "removexattr of a missing name is -ENODATA");
	}

	/* ---- unlink and re-create ---- */
	{
		uint64_t old = old_hello = ino_of(v1, "hello.txt");
		check_int(cow_unlink(v1, cow_view_root(v1), "hello.txt"), 0, "c1: unlink base file 'hello.txt'");
		r = cow_ref(v1, old, &a);
		snprintf(details, sizeof(details), "cow_ref returned %d%s, nlink %u", r, errname(r),
			 r == 0 ? a.nlink : 0);
		check(r == -ENOENT, details, "c1: cow_ref of the unlinked base object is -ENOENT (stale handle)");
		if (r == 0)
			cow_forget(v1, old, 1);
		check_int(cow_lookup(v1, cow_view_root(v1), "hello.txt", &a), -ENOENT,
			  "c1: lookup of the unlinked name is -ENOENT");
		check_int(cow_unlink(v1, cow_view_root(v1), "hello.txt"), -ENOENT, "c1: unlink it again is -ENOENT");
		check_content(v2, "c2", "hello.txt", "hello world\n");
		check_content(vb, "image", "hello.txt", "hello world\n");
		f = NULL;
		r = cow_create(v1, cow_view_root(v1), "hello.txt", 0644, O_RDWR | O_CREAT | O_EXCL, &cred, &f, &a);
		check_int(r, 0, "c1: cow_create 'hello.txt' again");
		if (r == 0) {
			check(a.ino != old && a.ino != 0, "same ino", "the re-created file has a new ino");
			check(a.size == 0 && a.nlink == 1 && a.mode == (S_IFREG | 0644), "attrs wrong",
			      "the re-created file is empty, nlink 1, mode 0644");
			ssize_t n = cow_read(f, buf, sizeof(buf), 0);
			check_int(n, 0, "reading the re-created file returns nothing");
			check_int(cow_getxattr(v1, a.ino, "user.color", buf, sizeof(buf)), -ENODATA,
				  "the re-created file has none of the old xattrs");
			cow_release(f);
			cow_forget(v1, a.ino, 1);
		}
		check_content(v1, "c1", "hello.txt", "");
		check_int(
		    cow_create(v1, cow_view_root(v1), "hello.txt", 0644, O_RDWR | O_CREAT | O_EXCL, &cred, &f, &a),
		    -EEXIST, "cow_create O_EXCL of an existing name is -EEXIST");
		check_int(cow_unlink(v1, cow_view_root(v1), "dir"), -EISDIR, "unlink of a directory is -EISDIR");
		check_int(cow_rmdir(v1, cow_view_root(v1), "fifo"), -ENOTDIR, "rmdir of a fifo is -ENOTDIR");
	}

	/* ---- rmdir and mkdir ---- */
	{
		uint64_t root = cow_view_root(v1), old = old_rmd = ino_of(v1, "rmd");
		check_int(cow_rmdir(v1, root, "rmd"), -ENOTEMPTY,
			  "c1: rmdir of non-empty base dir 'rmd' is -ENOTEMPTY");
		check_int(cow_unlink(v1, old, "x"), 0, "c1: unlink base file 'rmd/x'");
		check_listing(v1, "c1", "rmd", "");
		check_int(cow_rmdir(v1, root, "rmd"), 0, "c1: rmdir emptied base dir 'rmd'");
		check_int(cow_lookup(v1, root, "rmd", &a), -ENOENT, "c1: lookup of the removed dir is -ENOENT");
		r = cow_ref(v1, old, &a);
		check_int(r, -ENOENT, "c1: cow_ref of the removed base dir is -ENOENT (stale handle)");
		if (r == 0)
			cow_forget(v1, old, 1);
		r = cow_mkdir(v1, root, "rmd", 0700, &cred, &a);
		check_int(r, 0, "c1: mkdir 'rmd' again");
		if (r == 0) {
			check(a.ino != old && a.nlink == 2 && a.mode == (S_IFDIR | 0700), "attrs wrong",
			      "the new 'rmd' has a new ino, nlink 2, mode 0700");
			cow_forget(v1, a.ino, 1);
		}
		check_listing(v1, "c1", "rmd", "");
		check_int(cow_lookup(v1, ino_of(v1, "rmd"), "x", &a), -ENOENT, "c1: the new 'rmd' has no 'x'");
		check_listing(v2, "c2", "rmd", "x");
		check_content(v2, "c2", "rmd/x", "x\n");
		check_int(cow_mkdir(v1, root, "rmd", 0700, &cred, &a), -EEXIST, "mkdir of an existing name is -EEXIST");

		/* a base file written just before its unlink: no handle may revive it */
		uint64_t bino = ino_of(v1, "dir/sub/b");
		r = cow_open(v1, bino, O_WRONLY, &f);
		if (r == 0) {
			cow_write(f, "z", 1, 0);
			cow_release(f);
		}
		check_int(cow_unlink(v1, ino_of(v1, "dir/sub"), "b"), 0,
			  "c1: unlink just-written base file 'dir/sub/b'");
		r = cow_ref(v1, bino, &a);
		snprintf(details, sizeof(details), "cow_ref returned %d%s, nlink %u", r, errname(r),
			 r == 0 ? a.nlink : 0);
		check(r == -ENOENT, details,
		      "c1: cow_ref of the just-written, unlinked base file is -ENOENT (stale handle)");
		if (r == 0)
			cow_forget(v1, bino, 1);

		/* the core applies the caller's umask */
		r = cow_mkdir(v1, root, "umasked", 0777, &cred, &a);
		check(r == 0 && a.mode == (S_IFDIR | 0755), "mode not 0755",
		      "c1: mkdir 0777 with umask 022 gives 0755");
		if (r == 0) {
			cow_forget(v1, a.ino, 1);
			check_int(cow_rmdir(v1, root, "umasked"), 0, "c1: rmdir of a dir created in the layer");
		}
	}

	/* ---- rename ---- */
	{
		uint64_t root = cow_view_root(v1), mv = ino_of(v1, "mvdir"), inner = ino_of(v1, "mvdir/inner");
		r = cow_rename(v1, root, "mvdir", root, "moved", 0);
		check_int(r, 0, "c1: rename base dir 'mvdir' to 'moved'");
		check_int(cow_lookup(v1, root, "mvdir", &a), -ENOENT, "c1: the old name is gone");
		check(ino_of(v1, "moved") == mv, "ino changed", "c1: 'moved' keeps the ino of 'mvdir'");
		check(ino_of(v1, "moved/inner") == inner, "ino changed", "c1: 'moved/inner' keeps its ino");
		check_listing(v1, "c1", "moved", "deep,inner");
		check_content(v1, "c1", "moved/inner", "inner\n");
		check_content(v1, "c1", "moved/deep/f", "deep\n");
		check_listing(v2, "c2", "mvdir", "deep,inner");
		check_int(cow_lookup(v2, cow_view_root(v2), "moved", &a), -ENOENT, "c2 has no 'moved'");
		check_int(cow_rename(v1, root, "moved", ino_of(v1, "moved/deep"), "x", 0), -EINVAL,
			  "renaming a dir into its own subdir is -EINVAL");

		uint64_t fifo = ino_of(v1, "fifo"), sym = ino_of(v1, "sym"), suid = ino_of(v1, "suid");
		check_int(cow_rename(v1, root, "fifo", root, "sym", RENAME_NOREPLACE), -EEXIST,
			  "RENAME_NOREPLACE onto an existing name is -EEXIST");
		check(ino_of(v1, "fifo") == fifo && ino_of(v1, "sym") == sym, "names changed",
		      "the failed RENAME_NOREPLACE changed nothing");
		check_int(cow_rename(v1, root, "fifo", root, "suid", RENAME_EXCHANGE), 0,
			  "c1: RENAME_EXCHANGE of 'fifo' and 'suid'");
		check(ino_of(v1, "fifo") == suid && ino_of(v1, "suid") == fifo, "not swapped",
		      "c1: RENAME_EXCHANGE swapped the two names");
		r = walk(v1, "fifo", &a);
		check(r == 0 && S_ISREG(a.mode) && (a.mode & 07777) == 04755, "mode wrong",
		      "c1: 'fifo' is now the setuid file");
		check(ino_of(v2, "fifo") == fifo, "c2 swapped", "c2: names unchanged");
		check_int(cow_rename(v1, root, "nosuch", root, "x", RENAME_EXCHANGE), -ENOENT,
			  "RENAME_EXCHANGE of a missing name is -ENOENT");
		check_int(cow_rename(v1, root, "sym", root, "nosuch", RENAME_EXCHANGE), -ENOENT,
			  "RENAME_EXCHANGE with a missing target is -ENOENT");
		check_int(cow_rename(v1, root, "sym", root, "x", RENAME_NOREPLACE | RENAME_EXCHANGE), -EINVAL,
			  "RENAME_NOREPLACE|RENAME_EXCHANGE is -EINVAL");
		check_int(cow_rename(v1, root, "sym", root, "x", 1 << 2), -EINVAL, "RENAME_WHITEOUT is -EINVAL");

		/* rename over an existing file replaces it */
		uint64_t e = ino_of(v1, "empty");
		check_int(cow_rename(v1, root, "empty", ino_of(v1, "dir"), "a2", 0), 0,
			  "c1: rename 'empty' to 'dir/a2' (across directories)");
		check(ino_of(v1, "dir/a2") == e, "ino changed", "c1: 'dir/a2' keeps the ino");
		check_listing(v1, "c1", "dir", "a,a2,sub");

		/* readdir resumed from an offset returns the rest */
		struct cow_dirh *d;
		r = cow_opendir(v1, root, &d);
		if (check_int(r, 0, "cow_opendir of the root")) {
			struct resume rs = {.stop = 4};
			r = cow_readdir(d, 0, false, resume_cb, &rs);
			off_t next = rs.next;
			rs.stop = 1000;
			int r2 = cow_readdir(d, next, false, resume_cb, &rs);
			char got[2048], want[2048];
			struct names all = {.n = 0};
			for (int i = 0; i < rs.n; i++)
				all.v[all.n++] = rs.v[i];
			join_names(&all, got, sizeof(got));
			list_view(v1, "", false, want, sizeof(want), NULL);
			snprintf(details, sizeof(details), "r %d/%d, got [%s], want [%s]", r, r2, got, want);
			check(r == 0 && r2 == 0 && !strcmp(got, want), details,
			      "readdir stopped after 4 entries and resumed at next_off lists every name once");
			cow_releasedir(d);
		}

		/* handle-less readdir: an offset stays valid while the directory
		 * changes (entries removed, added, the listing compacted) */
		r = cow_mkdir(v1, root, "cookies", 0755, &cred, &a);
		if (check_int(r, 0, "mkdir 'cookies'")) {
			uint64_t dino = a.ino;
			char nm[32];
			cow_forget(v1, dino, 1);
			for (int i = 0; i < 20; i++) {
				snprintf(nm, sizeof(nm), "e%02d", i);
				if (cow_mknod(v1, dino, nm, S_IFIFO | 0644, 0, &cred, &a) == 0)
					cow_forget(v1, a.ino, 1);
			}
			struct resume rs = {.stop = 7}; /* ".", ".." and five entries */
			r = cow_readdir_ino(v1, dino, 0, false, resume_cb, &rs);
			for (int i = 10; i < 20; i++) {
				snprintf(nm, sizeof(nm), "e%02d", i);
				if (i != 15)
					cow_unlink(v1, dino, nm);
			}
			for (int i = 0; i < 100; i++) {
				snprintf(nm, sizeof(nm), "tmp%03d", i);
				if (cow_mknod(v1, dino, nm, S_IFIFO | 0644, 0, &cred, &a) == 0)
					cow_forget(v1, a.ino, 1);
				cow_unlink(v1, dino, nm);
			}
			if (cow_mknod(v1, dino, "new", S_IFIFO | 0644, 0, &cred, &a) == 0)
				cow_forget(v1, a.ino, 1);
			rs.stop = 1000;
			rs.seen = 0;
			int r2 = cow_readdir_ino(v1, dino, rs.next, false, resume_cb, &rs);
			char got[2048];
			struct names all = {.n = 0};
			for (int i = 0; i < rs.n; i++)
				all.v[all.n++] = rs.v[i];
			join_names(&all, got, sizeof(got));
			snprintf(details, sizeof(details), "r %d/%d, got [%s]", r, r2, got);
			check(r == 0 && r2 == 0 && !strcmp(got, "e00,e01,e02,e03,e04,e05,e06,e07,e08,e09,e15,new"),
			      details,
			      "cow_readdir_ino resumed after changes lists every remaining name once, new ones after");
			for (int i = 0; i < 16; i++) {
				snprintf(nm, sizeof(nm), "e%02d", i);
				cow_unlink(v1, dino, nm);
			}
			cow_unlink(v1, dino, "new");
			check_int(cow_rmdir(v1, root, "cookies"), 0, "rmdir 'cookies' once emptied");
		}
	}

	/* ---- names ---- */
	{
		uint64_t root = cow_view_root(v1);
		char n256[257], n255[256];
		memset(n256, 'L', 256);
		n256[256] = 0;
		memset(n255, 'L', 255);
		n255[255] = 0;
		check_int(cow_lookup(v1, root, n256, &a), -ENAMETOOLONG, "lookup of a 256-byte name is -ENAMETOOLONG");
		check_int(cow_mkdir(v1, root, n256, 0755, &cred, &a), -ENAMETOOLONG,
			  "mkdir of a 256-byte name is -ENAMETOOLONG");
		check_int(cow_create(v1, root, n256, 0644, O_RDWR, &cred, &f, &a), -ENAMETOOLONG,
			  "create of a 256-byte name is -ENAMETOOLONG");
		check_int(cow_rename(v1, root, "sym", root, n256, 0), -ENAMETOOLONG,
			  "rename to a 256-byte name is -ENAMETOOLONG");
		r = cow_mknod(v1, root, n255, S_IFIFO | 0644, 0, &cred, &a);
		check_int(r, 0, "mknod of a 255-byte name");
		if (r == 0)
			cow_forget(v1, a.ino, 1);
		a.ino = 0;
		check_int(cow_lookup(v1, root, n255, &a), 0, "lookup of the 255-byte name");
		if (a.ino)
			cow_forget(v1, a.ino, 1);
		check_int(cow_unlink(v1, root, n255), 0, "unlink of the 255-byte name");
		static const char *bad[] = {"a/b", ".", "..", ""};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			check_int(cow_lookup(v1, root, bad[i], &a), -EINVAL, "lookup of \"%s\" is -EINVAL", bad[i]);
			check_int(cow_mkdir(v1, root, bad[i], 0755, &cred, &a), -EINVAL, "mkdir of \"%s\" is -EINVAL",
				  bad[i]);
		}
		check_int(cow_unlink(v1, root, "."), -EINVAL, "unlink of \".\" is -EINVAL");
		check_int(cow_rename(v1, root, "sym", root, "..", 0), -EINVAL, "rename to \"..\" is -EINVAL");
		check_int(cow_lookup(v1, ino_of(v1, "sym"), "x", &a), -ENOTDIR, "lookup under a symlink is -ENOTDIR");
		check_int(cow_lookup(v1, root, "no-such-name", &a), -ENOENT, "lookup of a missing name is -ENOENT");
	}

	/* ---- new objects of every kind ---- */
	{
		uint64_t root = cow_view_root(v1);
		r = cow_symlink(v1, root, "newlink", "dir/a", &cred, &a);
		check(r == 0 && S_ISLNK(a.mode) && a.size == 5, "symlink failed", "c1: cow_symlink");
		if (r == 0)
			cow_forget(v1, a.ino, 1);
		r = cow_mknod(v1, root, "newdev", S_IFCHR | 0600, makedev(1, 5), &cred, &a);
		check(r == 0 && S_ISCHR(a.mode) && a.rdev == makedev(1, 5), "mknod failed",
		      "c1: cow_mknod of a character device keeps rdev");
		if (r == 0)
			cow_forget(v1, a.ino, 1);
		uint64_t hl = ino_of(v1, "hl1");
		r = cow_link(v1, hl, ino_of(v1, "dir"), "hl3", &a);
		check(r == 0 && a.ino == hl && a.nlink == 3, "link failed", "c1: cow_link adds a third name to 'hl1'");
		if (r == 0)
			cow_forget(v1, a.ino, 1);
		check_content(v1, "c1", "dir/hl3", "NEW-CONTENT\n");
		r = cow_mknod(v1, root, "tounlink", 0644, 0, &cred, &a);
		check(r == 0 && S_ISREG(a.mode) && a.size == 0, "mknod failed",
		      "c1: cow_mknod with no type makes a regular file");
		if (r == 0)
			cow_forget(v1, a.ino, 1);
		check_int(cow_unlink(v1, root, "tounlink"), 0, "c1: unlink of a file created in the layer");
		check_int(cow_lookup(v1, root, "tounlink", &a), -ENOENT, "c1: it is gone");
		r = cow_link(v1, hl, root, "hl4", &a);
		if (r == 0)
			cow_forget(v1, a.ino, 1);
		check_int(cow_unlink(v1, root, "hl4"), 0, "c1: unlink one of four names of 'hl1'");
		r = walk(v1, "hl1", &a);
		check(r == 0 && a.nlink == 3, "nlink wrong", "c1: 'hl1' is back to nlink 3");

		/* size changes */
		struct cow_attr set = {.size = 2};
		uint64_t fino = ino_of(v1, "moved/deep/f");
		r = cow_setattr(v1, fino, &set, COW_SET_SIZE, &a);
		check(r == 0 && a.size == 2 && a.ino == fino, "truncate failed",
		      "c1: setattr size 2 of base file 'moved/deep/f'");
		check_content(v1, "c1", "moved/deep/f", "de");
		check_content(v2, "c2", "mvdir/deep/f", "deep\n");
		set.size = 6;
		r = cow_setattr(v1, fino, &set, COW_SET_SIZE, &a);
		memset(buf, 'x', 16);
		ssize_t n = read_path(v1, "moved/deep/f", buf, 16, 0);
		check(r == 0 && a.size == 6 && n == 6 && !memcmp(buf, "de\0\0\0\0", 6), "extend failed",
		      "c1: setattr size 6 extends with zeros");
		set.mode = 0700;
		r = cow_setattr(v1, ino_of(v1, "dir"), &set, COW_SET_MODE, &a);
		check(r == 0 && a.mode == (S_IFDIR | 0700), "chmod failed", "c1: chmod of base dir 'dir'");
		check_listing(v1, "c1", "dir", "a,a2,hl3,sub");
		struct statvfs sv;
		r = cow_statfs(v1, &sv);
		check(r == 0 && sv.f_namemax == COW_NAME_MAX, "statfs", "cow_statfs reports f_namemax 255");
		r = walk(v2, "hl1", &a);
		check(r == 0 && a.nlink == 2, "c2 nlink changed", "c2: 'hl1' still has nlink 2");
		check_int(cow_link(v1, ino_of(v1, "dir"), root, "dirlink", &a), -EPERM,
			  "link of a directory is -EPERM");
	}

	/* ---- the read-only image view ---- */
	{
		uint64_t root = cow_view_root(vb), hino = ino_of(vb, "hello.txt");
		struct cow_attr set = {.mode = 0600};
		check_int(cow_open(vb, hino, O_RDWR, &f), -EROFS, "image view: cow_open(O_RDWR) is -EROFS");
		check_int(cow_open(vb, hino, O_RDONLY | O_TRUNC, &f), -EROFS,
			  "image view: cow_open(O_TRUNC) is -EROFS");
		check_int(cow_create(vb, root, "new", 0644, O_RDWR, &cred, &f, &a), -EROFS,
			  "image view: create is -EROFS");
		check_int(cow_mkdir(vb, root, "new", 0755, &cred, &a), -EROFS, "image view: mkdir is -EROFS");
		check_int(cow_mknod(vb, root, "new", S_IFIFO | 0644, 0, &cred, &a), -EROFS,
			  "image view: mknod is -EROFS");
		check_int(cow_symlink(vb, root, "new", "x", &cred, &a), -EROFS, "image view: symlink is -EROFS");
		check_int(cow_link(vb, hino, root, "new", &a), -EROFS, "image view: link is -EROFS");
		check_int(cow_unlink(vb, root, "hello.txt"), -EROFS, "image view: unlink is -EROFS");
		check_int(cow_rmdir(vb, root, "rmd"), -EROFS, "image view: rmdir is -EROFS");
		check_int(cow_rename(vb, root, "hello.txt", root, "x", 0), -EROFS, "image view: rename is -EROFS");
		check_int(cow_setattr(vb, hino, &set, COW_SET_MODE, &a), -EROFS, "image view: setattr is -EROFS");
		check_int(cow_setxattr(vb, hino, "user.x", "1", 1, 0), -EROFS, "image view: setxattr is -EROFS");
		check_int(cow_removexattr(vb, hino, "user.color"), -EROFS, "image view: removexattr is -EROFS");
		r = cow_open(vb, hino, O_RDONLY, &f);
		if (check_int(r, 0, "image view: cow_open(O_RDONLY)")) {
			check_int(cow_write(f, "x", 1, 0), -EROFS,
				  "image view: write through a read-only open is -EROFS");
			cow_release(f);
		}
		check_content(vb, "image", "hello.txt", "hello world\n");
		r = walk(vb, "hello.txt", &a);
		check(r == 0 && a.mode == (S_IFREG | 0644), "mode changed", "image view: attrs unchanged");
	}

	/* ---- unlinked but open ---- */
	uint64_t tino = 0;
	{
		uint64_t root = cow_view_root(v1);
		f = NULL;
		r = cow_create(v1, root, "tmpf", 0644, O_RDWR | O_CREAT | O_EXCL, &cred, &f, &a);
		check_int(r, 0, "c1: cow_create 'tmpf'");
		if (r == 0) {
			tino = a.ino;
			check_int(cow_write(f, "before", 6, 0), 6, "write to 'tmpf'");
			check_int(cow_unlink(v1, root, "tmpf"), 0, "unlink 'tmpf' while open");
			check_int(cow_lookup(v1, root, "tmpf", &b), -ENOENT, "lookup of unlinked 'tmpf' is -ENOENT");
			check_int(cow_write(f, "-after", 6, 6), 6, "write to the unlinked open file");
			memset(buf, 0, sizeof(buf));
			ssize_t n = cow_read(f, buf, sizeof(buf), 0);
			check(n == 12 && !memcmp(buf, "before-after", 12), buf, "read of the unlinked open file");
			r = cow_getattr(v1, tino, &b);
			check(r == 0 && b.nlink == 0 && b.size == 12, "attrs wrong",
			      "getattr of the unlinked open file: nlink 0, size 12");
			check_int(cow_release(f), 0, "cow_release of the unlinked file");
			cow_forget(v1, tino, 1);
			char names[2048];
			list_view(v1, "", false, names, sizeof(names), NULL);
			check(!strstr(names, "tmpf"), names, "readdir does not list 'tmpf'");
		}
	}

	/* ---- persistence across close/reopen ---- */
	{
		struct cow_attr saved[NPERSIST];
		int saved_r[NPERSIST];
		/* a write just before close: its mtime is not flushed yet */
		uint64_t aino = ino_of(v1, "dir/a");
		r = cow_open(v1, aino, O_RDWR, &f);
		if (check_int(r, 0, "c1: open 'dir/a' for a last write")) {
			check_int(cow_write(f, "AAAA-last\n", 10, 0), 10, "c1: last write to 'dir/a'");
			cow_release(f);
		}
		for (size_t i = 0; i < NPERSIST; i++)
			saved_r[i] = walk(v1, persist_paths[i], &saved[i]);
		check_int(cow_view_close(v1), 0, "cow_view_close c1");
		v1 = NULL;
		r = cow_view_open(st, "c1", NULL, 0, &v1);
		if (!check_int(r, 0, "cow_view_open c1 again"))
			goto out;
		for (size_t i = 0; i < NPERSIST; i++) {
			r = walk(v1, persist_paths[i], &a);
			if (r == 0 && saved_r[i] == 0)
				attr_vs_attr(&a, &saved[i], details, sizeof(details));
			else
				snprintf(details, sizeof(details), "lookup before %d, after %d", saved_r[i], r);
			check(r == 0 && saved_r[i] == 0 && !details[0], details,
			      "after reopen '%s' has the same ino and attributes", persist_paths[i]);
		}
		check_content(v1, "c1", "dir/a", "AAAA-last\n");
		check_content(v1, "c1", "hl2", "NEW-CONTENT\n");
		check_content(v1, "c1", "dir/hl3", "NEW-CONTENT\n");
		check_content(v1, "c1", "hello.txt", "");
		check_content(v1, "c1", "moved/inner", "inner\n");
		check_xattr(v1, "c1", "dir/a", "user.new", "v1", 2);
		check_xattr(v1, "c1", "hello.txt", "user.color", NULL, -ENODATA);
		check_xattr(v1, "c1", "fifo", "user.note", "setuid", 6);
		check_listing(v1, "c1", "rmd", "");
		check_listing(v1, "c1", "moved", "deep,inner");
		check_listing(v1, "c1", "dir", "a,a2,hl3,sub");
		{
			char want[2048], got[2048];
			list_view(v1, "", false, got, sizeof(got), NULL);
			snprintf(want, sizeof(want),
				 "dir,fifo,hello.txt,hl1,hl2,moved,newdev,newlink,%srmd,sparse.bin,suid,sym",
				 have_chardev ? "null," : "");
			snprintf(details, sizeof(details), "got [%s], want [%s]", got, want);
			check(!strcmp(got, want), details, "c1: root listing after reopen");
		}
		r = walk(v1, "empty", &a);
		check_int(r, -ENOENT, "c1: renamed-away 'empty' stays gone");
		r = walk(v1, "dir/a2", &a);
		check(r == 0 && a.mtime.tv_sec == 1234567890 && a.mtime.tv_nsec == 987654321, "mtime lost",
		      "c1: setattr mtime persisted on 'dir/a2'");
		check_int(cow_ref(v1, tino, &a), -ENOENT, "the unlinked-while-open file has no record after reopen");
		r = cow_ref(v1, old_hello, &a);
		check_int(r, -ENOENT, "after reopen, cow_ref of the unlinked base file is -ENOENT");
		if (r == 0)
			cow_forget(v1, old_hello, 1);
		r = cow_ref(v1, old_rmd, &a);
		check_int(r, -ENOENT, "after reopen, cow_ref of the removed base dir is -ENOENT");
		if (r == 0)
			cow_forget(v1, old_rmd, 1);
		r = cow_ref(v1, cow_view_root(v1), &a);
		check(r == 0 && a.ino == cow_view_root(v1) && S_ISDIR(a.mode), "cow_ref root failed",
		      "cow_ref of the root");
		if (r == 0)
			cow_forget(v1, a.ino, 1);
		r = walk(v1, "moved/deep/f", &a);
		check(r == 0 && a.size == 6, "size lost", "c1: size change of 'moved/deep/f' persisted");
		r = walk(v1, "dir", &a);
		check(r == 0 && a.mode == (S_IFDIR | 0700), "mode lost", "c1: chmod of base dir 'dir' persisted");
		data_path(p, sizeof(p), layer1, tino);
		check(!exists(p), p, "the unlinked-while-open file has no data file after reopen");
		/* the other views were not disturbed */
		check_content(v2, "c2", "hl1", "linked\n");
		check_content(v2, "c2", "hello.txt", "hello world\n");
	}

	/* ---- fsck ---- */
	check_int(cow_view_close(v1), 0, "cow_view_close c1 (for fsck)");
	v1 = NULL;
	check_int(cow_view_close(v2), 0, "cow_view_close c2");
	v2 = NULL;
	check_int(cow_view_close(vb), 0, "cow_view_close image view");
	vb = NULL;
	check_fsck_clean(st, "after all the changes");
	{
		struct cow_fsck_report rep;
		char dir[256];
		snprintf(dir, sizeof(dir), "%s/data/%llu/00", storedir, (unsigned long long)layer1);
		mkdir(dir, 0700);
		snprintf(p, sizeof(p), "%s/00000000000fff00", dir);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, "stray", 5) != 5)
			bail(p);
		close(fd);
		fsck_lines = 0;
		r = cow_fsck(st, false, fsck_log, NULL, &rep);
		report_str(&rep, details, sizeof(details));
		check(r == 0 && rep.orphan_files == 1 && rep.missing_data == 0 && rep.dangling == 0 &&
			  rep.dead_layers == 0 && rep.db_ok && fsck_lines == 1,
		      details, "fsck reports exactly 1 orphan data file");
		check(exists(p), "file removed", "fsck without repair leaves the orphan");
		r = cow_fsck(st, true, NULL, NULL, &rep);
		report_str(&rep, details, sizeof(details));
		check(r == 0 && rep.orphan_files == 1 && rep.repaired >= 1, details, "fsck with repair repairs it");
		check(!exists(p), "file still there", "fsck with repair removed the orphan file");
		check_fsck_clean(st, "after the repair");
	}

	/* ---- an unclean stop is recovered by the next writable open ---- */
	{
		char lock[256];
		struct stat ls;
		snprintf(lock, sizeof(lock), "%s/data/%llu.lock", storedir, (unsigned long long)layer1);
		check(stat(lock, &ls) == 0 && ls.st_size == 0, "lock file missing or not empty",
		      "a clean close leaves the layer's lock file empty");
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, "stray", 5) != 5)
			bail(p);
		close(fd);
		r = cow_view_open(st, "c1", NULL, 0, &v1);
		check_int(r, 0, "cow_view_open c1 after a clean stop");
		check(exists(p), "the orphan was removed", "an open after a clean stop scans nothing");
		check(stat(lock, &ls) == 0 && ls.st_size > 0, "lock file empty",
		      "an open writer keeps a record in the lock file");
		if (r == 0)
			check_int(cow_view_close(v1), 0, "cow_view_close c1");
		/* what kill -9 or power loss leaves: the record of a writer gone */
		fd = open(lock, O_WRONLY | O_TRUNC);
		if (fd < 0 || write(fd, "999999 mount (killed)\n", 22) != 22)
			bail(lock);
		close(fd);
		r = cow_view_open(st, "c1", NULL, 0, &v1);
		check_int(r, 0, "cow_view_open c1 after an unclean stop");
		check(!exists(p), "the orphan is still there", "the first open after an unclean stop removes orphans");
		if (r == 0)
			check_int(cow_view_close(v1), 0, "cow_view_close c1");
		v1 = NULL;
		check(stat(lock, &ls) == 0 && ls.st_size == 0, "lock file not empty",
		      "the recovered layer is closed clean");
		check_fsck_clean(st, "after the recovery");
	}

	/* ---- two writing connections ---- */
	r = cow_view_open(st, "c1", NULL, 0, &v1);
	if (check_int(r, 0, "cow_view_open c1 (two writers)")) {
		test_two_writers(v1);
		test_read_snapshot(st, v1);
		test_concurrent_fsync(v1);
		test_xattr_bounds(v1);
		check_int(cow_view_close(v1), 0, "cow_view_close c1 (two writers)");
	}
	v1 = NULL;

	/* ---- everything persists across closing the store ---- */
	cow_store_close(st);
	st = NULL;
	r = cow_store_open(storedir, 0, &st);
	if (check_int(r, 0, "cow_store_open of the existing store")) {
		r = cow_view_open(st, "c1", NULL, 0, &v1);
		if (check_int(r, 0, "cow_view_open c1 after reopening the store")) {
			check_content(v1, "c1", "dir/a", "AAAA-last\n");
			check_content(v1, "c1", "hl1", "NEW-CONTENT\n");
			r = walk(v1, "hello.txt", &a);
			check(r == 0 && a.size == 0, "wrong", "c1: re-created 'hello.txt' is still empty");
			/* new objects after a store restart get fresh inos */
			uint64_t known[] = {ino_of(v1, "hl1"),	 ino_of(v1, "hello.txt"),
					    ino_of(v1, "rmd"),	 ino_of(v1, "newlink"),
					    ino_of(v1, "dir/a"), tino,
					    old_hello,		 old_rmd};
			r = cow_mkdir(v1, cow_view_root(v1), "after-restart", 0755, &cred, &a);
			bool fresh = r == 0;
			for (size_t i = 0; fresh && i < sizeof(known) / sizeof(known[0]); i++)
				fresh = a.ino != known[i];
			check(fresh, "ino reused or mkdir failed",
			      "a new object after store reopen gets an unused ino");
			if (r == 0)
				cow_forget(v1, a.ino, 1);
		}
		r = cow_view_open(st, "c2", NULL, 0, &v2);
		if (check_int(r, 0, "cow_view_open c2 after reopening the store")) {
			check_content(v2, "c2", "hello.txt", "hello world\n");
			check_content(v2, "c2", "hl1", "linked\n");
		}
	}

out:
	if (v1)
		cow_view_close(v1);
	if (v2)
		cow_view_close(v2);
	if (vb)
		cow_view_close(vb);
	if (st)
		cow_store_close(st);
	if (!getenv("COWROOT_KEEP"))
		nftw(top, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
	else
		printf("# kept %s\n", top);
	return tap_finish();
}
