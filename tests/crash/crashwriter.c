/* SPDX-License-Identifier: MIT */
/*
 * crashwriter: the workload of the crash test (crash.sh).
 *
 *   crashwriter run MNT DIR LOG SEED
 *	Write under MNT/DIR until a syscall fails (the daemon was killed):
 *	new files, overwrites, renames, unlinks, hard links and copy-ups of
 *	the image's files in MNT/base/cu, some made durable with fsync (and
 *	an fsync of the directories involved), some not.  A state is
 *	appended to LOG (outside the mount) only once the fsyncs that make
 *	it durable have returned; an operation that may leave a durable file
 *	in either of two states logs its intent first.
 *
 *   crashwriter verify MNT LOG...
 *	Replay the logs in order and check MNT: every file whose last
 *	durable state is known has that size and checksum, an unlinked file
 *	is gone, a file caught in a rename is at one of its two names.
 *	Prints one line per problem and a summary; exits 1 on problems.
 *
 * Log lines (paths relative to MNT, without spaces):
 *   F PATH SIZE HASH   PATH durably holds SIZE bytes with FNV-1a HASH
 *   W PATH             PATH is being changed: content unknown until next F
 *   R OLD NEW          renaming OLD to NEW: the file is at one of them
 *   M OLD NEW          the rename is durable
 *   L PATH NEW         NEW is a durable hard link of PATH
 *   U PATH             unlinking PATH: may or may not exist
 *   X PATH             PATH is durably gone
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 100000
#define PATH_LEN 256

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static uint64_t rnd(uint64_t n)
{
	return n ? rng() % n : 0;
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void fill(unsigned char *p, size_t n)
{
	uint64_t x = rng();
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = rng();
		p[i] = (unsigned char)(x >> (8 * (i % 8)));
	}
}

/* ---- run ---- */

static int mntfd = -1, logfd = -1;
static const char *dirname_;

struct wfile {
	char path[PATH_LEN];
	bool linked; /* has hard links: never changed again */
	bool gone;
};

static struct wfile files[MAX_FILES];
static int nfiles;
static char cu_paths[256][PATH_LEN + 16];
static int ncu;
static unsigned long counter, durable_ops;

/* Any failure ends the run: after the kill every syscall on the mount
 * fails, which is the expected way for this program to stop. */
static void fail(const char *what, const char *path)
{
	int e = errno;
	fprintf(stderr, "crashwriter: %s '%s': %s (after %lu durable ops)\n", what, path, strerror(e),
		durable_ops);
	exit(e == ENOTCONN || e == ECONNABORTED ? 3 : 2);
}

static void logf_(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(logfd, buf, (size_t)n) != n) {
		perror("crashwriter: log");
		exit(4);
	}
}

static void sync_dir(const char *path)
{
	int fd = openat(mntfd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		fail("open dir", path);
	if (fsync(fd) < 0)
		fail("fsync dir", path);
	close(fd);
}

static void parent_of(const char *path, char *out)
{
	snprintf(out, PATH_LEN, "%s", path);
	char *s = strrchr(out, '/');
	if (s)
		*s = 0;
	else
		strcpy(out, ".");
}

static void write_all(int fd, const unsigned char *p, size_t n, off_t off, const char *path)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0)
			fail("write", path);
		p += w;
		n -= (size_t)w;
		off += w;
	}
}

static unsigned char *read_whole(int fd, size_t *ret_n, const char *path)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail("fstat", path);
	size_t n = (size_t)st.st_size;
	unsigned char *p = malloc(n + 1);
	if (!p)
		abort();
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)got);
		if (r < 0)
			fail("read", path);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got != n) {
		errno = EIO;
		fail("short read", path);
	}
	*ret_n = n;
	return p;
}

static size_t pick_size(void)
{
	switch (rnd(8)) {
	case 0:
		return 0;
	case 1:
		return 1 + rnd(100);
	case 2:
		return 1 << 20 | rnd(1 << 20); /* 1-2 MiB */
	default:
		return rnd(200000);
	}
}

/* Create a file; with @durable fsync it and its directory and log it. */
static void op_create(bool durable)
{
	char path[PATH_LEN], dir[PATH_LEN];
	const char *sub = rnd(3) == 0 ? "/d" : "";
	snprintf(path, sizeof(path), "%s%s/%c%lu", dirname_, sub, durable ? 'f' : 't', counter++);
	size_t n = pick_size();
	unsigned char *p = malloc(n + 1);
	fill(p, n);
	int fd = openat(mntfd, path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		fail("create", path);
	/* several writes, not one: the daemon sees a realistic pattern */
	size_t off = 0;
	while (off < n) {
		size_t chunk = 1 + rnd(65536);
		if (chunk > n - off)
			chunk = n - off;
		write_all(fd, p + off, chunk, (off_t)off, path);
		off += chunk;
	}
	if (durable) {
		if (fsync(fd) < 0)
			fail("fsync", path);
		parent_of(path, dir);
		sync_dir(dir);
		logf_("F %s %zu %016" PRIx64 "\n", path, n, fnv(p, n));
		if (nfiles < MAX_FILES) {
			snprintf(files[nfiles].path, PATH_LEN, "%s", path);
			files[nfiles].linked = false;
			files[nfiles].gone = false;
			nfiles++;
		}
		durable_ops++;
	} else if (rnd(3) == 0) {
		/* non-durable churn: rename or unlink the scratch file */
		char to[PATH_LEN];
		snprintf(to, sizeof(to), "%s/t%lu", dirname_, counter++);
		if (rnd(2)) {
			if (renameat(mntfd, path, mntfd, to) < 0)
				fail("rename", path);
		} else if (unlinkat(mntfd, path, 0) < 0)
			fail("unlink", path);
	}
	close(fd);
	free(p);
}

static struct wfile *pick_file(bool changeable)
{
	if (!nfiles)
		return NULL;
	for (int tries = 0; tries < 20; tries++) {
		struct wfile *f = &files[rnd((uint64_t)nfiles)];
		if (f->gone || (changeable && f->linked))
			continue;
		return f;
	}
	return NULL;
}

/* Overwrite part of @path (extending it sometimes), fsync, log. */
static void change_file(const char *path, bool trunc)
{
	logf_("W %s\n", path);
	int fd = openat(mntfd, path, O_RDWR);
	if (fd < 0)
		fail("open", path);
	size_t n;
	unsigned char *p = read_whole(fd, &n, path);
	if (trunc) {
		size_t nn = n ? rnd(n) : 0;
		if (ftruncate(fd, (off_t)nn) < 0)
			fail("truncate", path);
		n = nn;
	} else {
		size_t off = n ? rnd(n) : 0;
		size_t len = 1 + rnd(100000);
		if (off + len > n) {
			p = realloc(p, off + len);
			if (!p)
				abort();
		}
		fill(p + off, len);
		write_all(fd, p + off, len, (off_t)off, path);
		if (off + len > n)
			n = off + len;
	}
	if (fsync(fd) < 0)
		fail("fsync", path);
	logf_("F %s %zu %016" PRIx64 "\n", path, n, fnv(p, n));
	durable_ops++;
	close(fd);
	free(p);
}

static void op_rename(void)
{
	struct wfile *f = pick_file(true);
	if (!f)
		return;
	char to[PATH_LEN], d1[PATH_LEN], d2[PATH_LEN];
	snprintf(to, sizeof(to), "%s%s/r%lu", dirname_, rnd(2) ? "/d" : "", counter++);
	logf_("R %s %s\n", f->path, to);
	if (renameat(mntfd, f->path, mntfd, to) < 0)
		fail("rename", f->path);
	parent_of(f->path, d1);
	parent_of(to, d2);
	sync_dir(d1);
	if (strcmp(d1, d2))
		sync_dir(d2);
	logf_("M %s %s\n", f->path, to);
	snprintf(f->path, PATH_LEN, "%s", to);
	durable_ops++;
}

static void op_unlink(void)
{
	struct wfile *f = pick_file(true);
	char d[PATH_LEN];
	if (!f)
		return;
	logf_("U %s\n", f->path);
	if (unlinkat(mntfd, f->path, 0) < 0)
		fail("unlink", f->path);
	parent_of(f->path, d);
	sync_dir(d);
	logf_("X %s\n", f->path);
	f->gone = true;
	durable_ops++;
}

static void op_link(void)
{
	struct wfile *f = pick_file(false);
	if (!f || nfiles >= MAX_FILES)
		return;
	char to[PATH_LEN], d[PATH_LEN];
	snprintf(to, sizeof(to), "%s/l%lu", dirname_, counter++);
	/* freeze the file first: content of linked files never changes */
	f->linked = true;
	if (linkat(mntfd, f->path, mntfd, to, 0) < 0)
		fail("link", f->path);
	parent_of(to, d);
	sync_dir(d);
	logf_("L %s %s\n", f->path, to);
	snprintf(files[nfiles].path, PATH_LEN, "%s", to);
	files[nfiles].linked = true;
	files[nfiles].gone = false;
	nfiles++;
	durable_ops++;
}

static int cmd_run(const char *mnt, const char *dir, const char *log, const char *seed)
{
	dirname_ = dir;
	rng_state = strtoull(seed, NULL, 0) * 0x9E3779B97F4A7C15ULL | 1;
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (logfd < 0) {
		perror(log);
		return 4;
	}
	mntfd = open(mnt, O_RDONLY | O_DIRECTORY);
	if (mntfd < 0)
		fail("open", mnt);

	char sub[PATH_LEN];
	if (mkdirat(mntfd, dir, 0755) < 0)
		fail("mkdir", dir);
	snprintf(sub, sizeof(sub), "%s/d", dir);
	if (mkdirat(mntfd, sub, 0755) < 0)
		fail("mkdir", sub);
	sync_dir(dir);
	sync_dir(".");

	char cu[PATH_LEN * 2];
	snprintf(cu, sizeof(cu), "%s/base/cu", mnt);
	DIR *d = opendir(cu);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) && ncu < 256)
			if (e->d_name[0] != '.')
				snprintf(cu_paths[ncu++], sizeof(cu_paths[0]), "base/cu/%s", e->d_name);
		closedir(d);
	}

	for (;;) {
		unsigned k = (unsigned)rnd(100);
		if (k < 30)
			op_create(true);
		else if (k < 55)
			op_create(false);
		else if (k < 65) {
			struct wfile *f = pick_file(true);
			if (f)
				change_file(f->path, rnd(4) == 0);
		} else if (k < 75 && ncu)
			change_file(cu_paths[rnd((uint64_t)ncu)], rnd(8) == 0);
		else if (k < 85)
			op_rename();
		else if (k < 92)
			op_unlink();
		else
			op_link();
	}
}

/* ---- verify ---- */

enum { S_FILE, S_UNKNOWN, S_GONE, S_EITHER };

struct vfile {
	char path[PATH_LEN];
	char other[PATH_LEN]; /* S_EITHER: the rename target */
	int state;
	size_t size;
	uint64_t hash;
};

static struct vfile *vf;
static int nvf, cap_vf;

/* The entry of @path, created (unknown) if new.  Returns an index: the
 * array moves when it grows. */
static int vget(const char *path)
{
	for (int i = nvf - 1; i >= 0; i--)
		if (!strcmp(vf[i].path, path))
			return i;
	if (nvf == cap_vf) {
		cap_vf = cap_vf ? 2 * cap_vf : 1024;
		vf = realloc(vf, sizeof(*vf) * (size_t)cap_vf);
		if (!vf)
			abort();
	}
	struct vfile *v = &vf[nvf];
	memset(v, 0, sizeof(*v));
	snprintf(v->path, PATH_LEN, "%s", path);
	v->state = S_UNKNOWN;
	return nvf++;
}

/* 0: matches; 1: missing; 2: wrong content (described in @why) */
static int check_file(int mfd, const char *path, size_t size, uint64_t hash, char *why, size_t whylen)
{
	int fd = openat(mfd, path, O_RDONLY);
	if (fd < 0) {
		snprintf(why, whylen, "open: %s", strerror(errno));
		return errno == ENOENT ? 1 : 2;
	}
	struct stat st;
	fstat(fd, &st);
	unsigned char *p = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	for (;;) {
		ssize_t r = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);
		if (r < 0) {
			snprintf(why, whylen, "read: %s", strerror(errno));
			close(fd);
			free(p);
			return 2;
		}
		if (r == 0 || got + (size_t)r == (size_t)st.st_size) {
			got += (size_t)r;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	uint64_t h = fnv(p, got);
	free(p);
	if (got != size || h != hash) {
		snprintf(why, whylen, "size %zu hash %016" PRIx64 ", expected size %zu hash %016" PRIx64, got, h,
			 size, hash);
		return 2;
	}
	return 0;
}

static int cmd_verify(const char *mnt, int nlogs, char **logs)
{
	for (int l = 0; l < nlogs; l++) {
		FILE *f = fopen(logs[l], "r");
		if (!f) {
			perror(logs[l]);
			return 4;
		}
		char line[1024], a[PATH_LEN], b[PATH_LEN];
		size_t size;
		uint64_t hash;
		while (fgets(line, sizeof(line), f)) {
			if (!strchr(line, '\n'))
				break; /* torn last line: the writer died mid-write */
			if (sscanf(line, "F %255s %zu %" SCNx64, a, &size, &hash) == 3) {
				int i = vget(a);
				struct vfile *v = &vf[i];
				v->state = S_FILE;
				v->size = size;
				v->hash = hash;
			} else if (sscanf(line, "W %255s", a) == 1 || sscanf(line, "U %255s", a) == 1) {
				int i = vget(a);
				vf[i].state = S_UNKNOWN;
			} else if (sscanf(line, "R %255s %255s", a, b) == 2) {
				int w = vget(b), v = vget(a);
				if (vf[v].state == S_FILE) {
					vf[v].state = S_EITHER;
					snprintf(vf[v].other, PATH_LEN, "%s", b);
				} else
					vf[v].state = S_UNKNOWN;
				vf[w].state = S_UNKNOWN;
			} else if (sscanf(line, "M %255s %255s", a, b) == 2) {
				int w = vget(b), v = vget(a);
				if (vf[v].state == S_EITHER) {
					vf[w].state = S_FILE;
					vf[w].size = vf[v].size;
					vf[w].hash = vf[v].hash;
				}
				vf[v].state = S_GONE;
			} else if (sscanf(line, "L %255s %255s", a, b) == 2) {
				int w = vget(b), v = vget(a);
				vf[w].state = vf[v].state == S_FILE ? S_FILE : S_UNKNOWN;
				vf[w].size = vf[v].size;
				vf[w].hash = vf[v].hash;
			} else if (sscanf(line, "X %255s", a) == 1) {
				int i = vget(a);
				vf[i].state = S_GONE;
			} else {
				fprintf(stderr, "crashwriter: %s: bad line: %s", logs[l], line);
				return 4;
			}
		}
		fclose(f);
	}

	int mfd = open(mnt, O_RDONLY | O_DIRECTORY);
	if (mfd < 0) {
		perror(mnt);
		return 4;
	}
	int checked = 0, bad = 0;
	char why[256], why2[256];
	for (int i = 0; i < nvf; i++) {
		struct vfile *v = &vf[i];
		struct stat st;
		switch (v->state) {
		case S_FILE:
			checked++;
			if (check_file(mfd, v->path, v->size, v->hash, why, sizeof(why))) {
				printf("lost fsync'd data: %s: %s\n", v->path, why);
				bad++;
			}
			break;
		case S_GONE:
			checked++;
			if (fstatat(mfd, v->path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				printf("durably removed name is back: %s\n", v->path);
				bad++;
			}
			break;
		case S_EITHER: {
			checked++;
			int r1 = check_file(mfd, v->path, v->size, v->hash, why, sizeof(why));
			int r2 = check_file(mfd, v->other, v->size, v->hash, why2, sizeof(why2));
			if (r1 && r2) {
				printf("file lost in rename %s -> %s: %s / %s\n", v->path, v->other, why, why2);
				bad++;
			}
			break;
		}
		default:
			break;
		}
	}
	printf("verify: %d durable states checked, %d bad\n", checked, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "run"))
		return cmd_run(argv[2], argv[3], argv[4], argv[5]);
	if (argc >= 4 && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: crashwriter run MNT DIR LOG SEED\n"
			"       crashwriter verify MNT LOG...\n");
	return 2;
}
