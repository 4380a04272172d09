/*
 * semantics — black-box POSIX/Linux filesystem semantics tests.
 *
 * Usage: semantics DIR [TESTNAME...]
 *        semantics --list
 *
 * Every subtest runs in a forked child, inside its own fresh directory DIR/NAME, with real
 * syscalls and no knowledge of the filesystem under test.  A correct local filesystem (ext4 on
 * a loop device is the reference) passes every test; a skip is reported only when the facility
 * is truly absent and says why.  Output is one line per subtest:
 *
 *     ok NAME | FAIL NAME: reason | skip NAME: reason
 *
 * and finally "N passed, N failed[, N skipped]".  Exit status 0 iff nothing failed, 2 on usage.
 * A passing subtest's directory is removed; a failing one is kept for inspection.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

enum { PASS = 0, FAIL = 1, SKIP = 2 };

#define GiB (1024LL * 1024 * 1024)
#define TEST_TIMEOUT 180 /* seconds per subtest */

/* Filled by fail()/skip(); printed by the child after the subtest returns. */
static char reason[1024];

static int vnote(int verdict, int line, const char *fmt, va_list ap)
{
	int n = line ? snprintf(reason, sizeof(reason), "line %d: ", line) : 0;
	vsnprintf(reason + n, sizeof(reason) - n, fmt, ap);
	return verdict;
}

static int fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vnote(FAIL, line, fmt, ap);
	va_end(ap);
	return r;
}

static int skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vnote(SKIP, 0, fmt, ap);
	va_end(ap);
	return r;
}

static const char *ename(int e)
{
	const char *s = e ? strerrorname_np(e) : "success";
	return s ? s : "E?";
}

/* CHECK: a condition that must hold.  CHECKF: same, with a formatted explanation. */
#define CHECK(c)                                                                                                       \
	do {                                                                                                           \
		if (!(c))                                                                                              \
			return fail(__LINE__, "%s", #c);                                                               \
	} while (0)
#define CHECKF(c, ...)                                                                                                 \
	do {                                                                                                           \
		if (!(c))                                                                                              \
			return fail(__LINE__, __VA_ARGS__);                                                            \
	} while (0)
/* SYS: a syscall that must succeed (returns < 0 on failure); evaluates to its result. */
#define SYS(e)                                                                                                         \
	({                                                                                                             \
		errno = 0;                                                                                             \
		long sys_r_ = (long)(e);                                                                               \
		if (sys_r_ < 0)                                                                                        \
			return fail(__LINE__, "%s: %s", #e, ename(errno));                                             \
		sys_r_;                                                                                                \
	})
/* ERR: a syscall that must fail with errno `want`. */
#define ERR(e, want)                                                                                                   \
	do {                                                                                                           \
		errno = 0;                                                                                             \
		long err_r_ = (long)(e);                                                                               \
		int err_e_ = errno;                                                                                    \
		if (err_r_ != -1 || err_e_ != (want))                                                                  \
			return fail(__LINE__, "%s: got %ld (%s), want -1 (%s)", #e, err_r_,                            \
				    err_r_ == -1 ? ename(err_e_) : "no error", ename(want));                           \
	} while (0)
/* ERR2: a syscall that must fail with errno `w1` or `w2`. */
#define ERR2(e, w1, w2)                                                                                                \
	do {                                                                                                           \
		errno = 0;                                                                                             \
		long err_r_ = (long)(e);                                                                               \
		int err_e_ = errno;                                                                                    \
		if (err_r_ != -1 || (err_e_ != (w1) && err_e_ != (w2)))                                                \
			return fail(__LINE__, "%s: got %ld (%s), want -1 (%s or %s)", #e, err_r_,                      \
				    err_r_ == -1 ? ename(err_e_) : "no error", ename(w1), ename(w2));                  \
	} while (0)

/* ---- helpers ------------------------------------------------------------------------------ */

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

/* Write the whole buffer; 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Create/replace `path` with exactly `len` bytes.  0 or -errno. */
static int put_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, buf, len);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Read up to cap bytes of `path`; returns bytes read or -errno. */
static ssize_t get_file(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(fd, (char *)buf + got, cap - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return (ssize_t)got;
}

/* True iff `path` holds exactly the NUL-terminated string s. */
static bool file_is(const char *path, const char *s)
{
	char buf[4096];
	ssize_t n = get_file(path, buf, sizeof(buf));
	return n >= 0 && (size_t)n == strlen(s) && memcmp(buf, s, (size_t)n) == 0;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

struct names {
	char **v;
	size_t n;
};

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* All entries of dir except "." and "..", in readdir order.  0 or -errno. */
static int list_dir(const char *dir, struct names *ret)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct names l = {0};
	size_t cap = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (l.n == cap) {
			cap = cap ? cap * 2 : 64;
			l.v = realloc(l.v, cap * sizeof(*l.v));
		}
		l.v[l.n++] = strdup(e->d_name);
		errno = 0;
	}
	int r = errno ? -errno : 0;
	closedir(d);
	if (r < 0)
		names_free(&l);
	else
		*ret = l;
	return r;
}

static size_t names_count(const struct names *l, const char *name)
{
	size_t c = 0;
	for (size_t i = 0; i < l->n; i++)
		c += !strcmp(l->v[i], name);
	return c;
}

static int ts_cmp(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec < b.tv_sec ? -1 : 1;
	if (a.tv_nsec != b.tv_nsec)
		return a.tv_nsec < b.tv_nsec ? -1 : 1;
	return 0;
}

static void msleep(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* Line of the first failed NCHECK in an as_nobody() child (shared with the parent). */
static int *nobody_line;

static int map_nobody_line(void)
{
	if (!nobody_line) {
		int *p = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		nobody_line = p;
	}
	*nobody_line = 0;
	return 0;
}

/* Run fn in a child made what @become (run in it first, 0 or -1) makes it;
 * returns 0 if fn succeeded, the line of its failed NCHECK, or -1 if it
 * could not be run. */
static int in_child(int (*become)(void), int (*fn)(void))
{
	if (map_nobody_line() < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (become() < 0)
			_exit(1);
		_exit(fn());
	}
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	if (WEXITSTATUS(st) == 0)
		return 0;
	return *nobody_line ? *nobody_line : -1;
}

static int become_nobody(void)
{
	return setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0 ? -1 : 0;
}

/* Run fn in a child with uid/gid 65534 (see in_child). */
static int as_nobody(int (*fn)(void))
{
	return in_child(become_nobody, fn);
}

/* Used inside as_nobody() children: record the failing line and fail. */
#define NCHECK(c)                                                                                                      \
	do {                                                                                                           \
		if (!(c)) {                                                                                            \
			*nobody_line = __LINE__;                                                                       \
			return 1;                                                                                      \
		}                                                                                                      \
	} while (0)

/* ---- regular files ------------------------------------------------------------------------ */

static int t_file_rw(void)
{
	enum { LEN = 300000 };
	static unsigned char a[LEN], b[LEN + 16];
	fill(a, LEN, 1);
	int fd = SYS(open("f", O_WRONLY | O_CREAT | O_EXCL, 0640));
	CHECK(write_all(fd, a, LEN) == 0);
	SYS(close(fd));
	struct stat st;
	SYS(stat("f", &st));
	CHECK(S_ISREG(st.st_mode));
	CHECKF((st.st_mode & 07777) == 0640, "mode %o", st.st_mode & 07777);
	CHECKF(st.st_size == LEN, "size %lld", (long long)st.st_size);
	CHECK(st.st_nlink == 1);
	CHECK(st.st_uid == geteuid() && st.st_gid == getegid());
	ssize_t n = get_file("f", b, sizeof(b));
	CHECKF(n == LEN, "read %zd", n);
	CHECK(memcmp(a, b, LEN) == 0);
	/* partial overwrite in the middle, pread/pwrite at odd offsets */
	fd = SYS(open("f", O_RDWR));
	SYS(pwrite(fd, "HELLO", 5, 12345));
	memcpy(a + 12345, "HELLO", 5);
	char small[7] = {0};
	CHECK(SYS(pread(fd, small, 7, 12344)) == 7);
	CHECK(memcmp(small, a + 12344, 7) == 0);
	/* reads at and past EOF */
	CHECK(SYS(pread(fd, small, 7, LEN)) == 0);
	CHECK(SYS(pread(fd, small, 7, LEN + 100)) == 0);
	CHECK(SYS(pread(fd, small, 7, LEN - 3)) == 3);
	SYS(close(fd));
	n = get_file("f", b, sizeof(b));
	CHECK(n == LEN && memcmp(a, b, LEN) == 0);
	/* empty file */
	CHECK(put_file("empty", "", 0, 0600) == 0);
	SYS(stat("empty", &st));
	CHECK(st.st_size == 0);
	CHECK(get_file("empty", b, 10) == 0);
	return PASS;
}

static int t_file_append(void)
{
	CHECK(put_file("f", "abc", 3, 0644) == 0);
	int fd = SYS(open("f", O_WRONLY | O_APPEND));
	SYS(write(fd, "def", 3));
	SYS(lseek(fd, 0, SEEK_SET)); /* O_APPEND ignores the file offset */
	SYS(write(fd, "ghi", 3));
	CHECK(SYS(lseek(fd, 0, SEEK_CUR)) == 9);
	SYS(close(fd));
	/* a second appender interleaved with a plain writer */
	int a = SYS(open("f", O_WRONLY | O_APPEND));
	int w = SYS(open("f", O_WRONLY));
	SYS(pwrite(w, "XY", 2, 9)); /* extends to 11 */
	SYS(write(a, "jk", 2));	    /* must land at 11, not 9 */
	SYS(close(a));
	SYS(close(w));
	CHECKF(file_is("f", "abcdefghiXYjk"), "content wrong after appends");
	return PASS;
}

static int t_file_truncate(void)
{
	unsigned char buf[20000], want[20000];
	fill(want, 10000, 2);
	CHECK(put_file("f", want, 10000, 0644) == 0);
	struct stat st;
	/* shrink via path */
	SYS(truncate("f", 3000));
	SYS(stat("f", &st));
	CHECK(st.st_size == 3000);
	/* extend via fd: new region reads zeros, old data intact */
	int fd = SYS(open("f", O_RDWR));
	SYS(ftruncate(fd, 15000));
	SYS(fstat(fd, &st));
	CHECK(st.st_size == 15000);
	CHECK(SYS(pread(fd, buf, sizeof(buf), 0)) == 15000);
	CHECK(memcmp(buf, want, 3000) == 0);
	for (int i = 3000; i < 15000; i++)
		CHECKF(buf[i] == 0, "byte %d of extended region is %d", i, buf[i]);
	/* shrink to mid-block, then write past EOF: the gap must be zeros (no stale data) */
	SYS(ftruncate(fd, 100));
	SYS(pwrite(fd, "Z", 1, 9000));
	CHECK(SYS(pread(fd, buf, sizeof(buf), 0)) == 9001);
	CHECK(memcmp(buf, want, 100) == 0);
	for (int i = 100; i < 9000; i++)
		CHECKF(buf[i] == 0, "stale byte at %d after shrink+extend", i);
	CHECK(buf[9000] == 'Z');
	SYS(close(fd));
	/* O_TRUNC */
	fd = SYS(open("f", O_WRONLY | O_TRUNC));
	SYS(fstat(fd, &st));
	CHECK(st.st_size == 0);
	SYS(close(fd));
	/* truncate to zero then extend */
	SYS(truncate("f", 4096));
	CHECK(get_file("f", buf, sizeof(buf)) == 4096);
	for (int i = 0; i < 4096; i++)
		CHECK(buf[i] == 0);
	ERR(truncate("nonexistent", 0), ENOENT);
	SYS(mkdir("d", 0755));
	ERR(truncate("d", 0), EISDIR);
	return PASS;
}

static int t_file_excl(void)
{
	CHECK(put_file("f", "x", 1, 0644) == 0);
	ERR(open("f", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	SYS(mkdir("d", 0755));
	ERR(open("d", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	/* O_EXCL does not follow a dangling symlink */
	SYS(symlink("nowhere", "dangling"));
	ERR(open("dangling", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	CHECK(!exists("nowhere"));
	/* without O_EXCL, O_CREAT through a dangling symlink creates the target */
	int fd = SYS(open("dangling", O_WRONLY | O_CREAT, 0644));
	SYS(close(fd));
	CHECK(exists("nowhere"));
	fd = SYS(open("new", O_WRONLY | O_CREAT | O_EXCL, 0600));
	SYS(close(fd));
	CHECK(file_is("f", "x"));
	return PASS;
}

static int t_file_errors(void)
{
	SYS(mkdir("d", 0755));
	CHECK(put_file("f", "x", 1, 0644) == 0);
	ERR(open("missing", O_RDONLY), ENOENT);
	ERR(open("missing/x", O_RDONLY | O_CREAT, 0644), ENOENT);
	ERR(open("d", O_WRONLY), EISDIR);
	ERR(open("d", O_RDWR), EISDIR);
	ERR(open("f/x", O_RDONLY), ENOTDIR);
	ERR(open("f/x", O_RDONLY | O_CREAT, 0644), ENOTDIR);
	ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	ERR(mkdir("f/x", 0755), ENOTDIR);
	ERR(unlink("d"), EISDIR);
	ERR(rmdir("f"), ENOTDIR);
	ERR(unlink("missing"), ENOENT);
	ERR(rmdir("missing"), ENOENT);
	return PASS;
}

static int t_file_recreate(void)
{
	CHECK(put_file("f", "old contents", 12, 0755) == 0);
	SYS(setxattr("f", "user.old", "1", 1, 0));
	SYS(unlink("f"));
	CHECK(!exists("f"));
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0600)); /* no O_TRUNC */
	struct stat st;
	SYS(fstat(fd, &st));
	CHECKF(st.st_size == 0, "recreated file has size %lld", (long long)st.st_size);
	CHECKF((st.st_mode & 07777) == 0600, "recreated file mode %o", st.st_mode & 07777);
	SYS(close(fd));
	char v[8];
	ERR(getxattr("f", "user.old", v, sizeof(v)), ENODATA);
	/* file replaced by a directory and back */
	SYS(unlink("f"));
	SYS(mkdir("f", 0700));
	SYS(stat("f", &st));
	CHECK(S_ISDIR(st.st_mode));
	SYS(rmdir("f"));
	CHECK(put_file("f", "new", 3, 0644) == 0);
	CHECK(file_is("f", "new"));
	return PASS;
}

static int t_umask(void)
{
	mode_t old = umask(027);
	int fd = SYS(open("f", O_WRONLY | O_CREAT, 0666));
	SYS(close(fd));
	SYS(mkdir("d", 0777));
	SYS(mkfifo("p", 0666));
	umask(old);
	struct stat st;
	SYS(stat("f", &st));
	CHECKF((st.st_mode & 07777) == 0640, "file mode %o", st.st_mode & 07777);
	SYS(stat("d", &st));
	CHECKF((st.st_mode & 07777) == 0750, "dir mode %o", st.st_mode & 07777);
	SYS(stat("p", &st));
	CHECKF((st.st_mode & 07777) == 0640, "fifo mode %o", st.st_mode & 07777);
	return PASS;
}

/* ---- directories -------------------------------------------------------------------------- */

static int t_dir_basic(void)
{
	SYS(mkdir("d", 0755));
	ERR(mkdir("d", 0755), EEXIST);
	struct stat st;
	SYS(stat("d", &st));
	CHECK(S_ISDIR(st.st_mode));
	CHECKF((st.st_mode & 07777) == 0755, "mode %o", st.st_mode & 07777);
	CHECK(put_file("d/f", "x", 1, 0644) == 0);
	ERR(rmdir("d"), ENOTEMPTY);
	SYS(mkdir("d/sub", 0700));
	SYS(unlink("d/f"));
	ERR(rmdir("d"), ENOTEMPTY);
	SYS(rmdir("d/sub"));
	SYS(rmdir("d"));
	ERR(stat("d", &st), ENOENT);
	ERR(rmdir("."), EINVAL);
	/* ".." of a subdirectory is its parent */
	SYS(mkdir("a", 0755));
	SYS(mkdir("a/b", 0755));
	struct stat a, dd;
	SYS(stat("a", &a));
	SYS(stat("a/b/..", &dd));
	CHECK(a.st_ino == dd.st_ino && a.st_dev == dd.st_dev);
	/* an empty directory lists only . and .. */
	DIR *dir = opendir("a/b");
	CHECK(dir);
	int dots = 0, other = 0;
	struct dirent *e;
	while ((e = readdir(dir)))
		(!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) ? dots++ : other++;
	closedir(dir);
	CHECKF(dots == 2 && other == 0, "empty dir: %d dot entries, %d others", dots, other);
	return PASS;
}

static int t_dir_nlink(void)
{
	struct stat st;
	SYS(mkdir("d", 0755));
	SYS(stat("d", &st));
	CHECKF(st.st_nlink == 2, "empty dir nlink %ju", (uintmax_t)st.st_nlink);
	SYS(mkdir("d/a", 0755));
	SYS(mkdir("d/b", 0755));
	CHECK(put_file("d/f", "", 0, 0644) == 0);
	SYS(stat("d", &st));
	CHECKF(st.st_nlink == 4, "dir with 2 subdirs nlink %ju", (uintmax_t)st.st_nlink);
	SYS(rename("d/b", "b"));
	SYS(stat("d", &st));
	CHECKF(st.st_nlink == 3, "after moving a subdir out nlink %ju", (uintmax_t)st.st_nlink);
	SYS(rmdir("d/a"));
	SYS(stat("d", &st));
	CHECKF(st.st_nlink == 2, "after rmdir nlink %ju", (uintmax_t)st.st_nlink);
	return PASS;
}

static int t_readdir_3000(void)
{
	enum { N = 3000 };
	char name[64];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "entry-%04d-%s", i, i % 3 ? "file" : "with-a-longer-name");
		int fd = SYS(open(name, O_WRONLY | O_CREAT | O_EXCL, 0644));
		SYS(close(fd));
	}
	for (int pass = 0; pass < 2; pass++) {
		static unsigned char seen[N];
		memset(seen, 0, sizeof(seen));
		DIR *d = opendir(".");
		CHECK(d);
		if (pass == 1) { /* read part, rewind, then read everything */
			for (int i = 0; i < 100; i++)
				CHECK(readdir(d));
			rewinddir(d);
		}
		struct dirent *e;
		int dot = 0, dotdot = 0, total = 0;
		errno = 0;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".")) {
				dot++;
				continue;
			}
			if (!strcmp(e->d_name, "..")) {
				dotdot++;
				continue;
			}
			int i;
			CHECKF(sscanf(e->d_name, "entry-%4d-", &i) == 1 && i >= 0 && i < N, "unexpected entry '%s'",
			       e->d_name);
			CHECKF(!seen[i], "entry '%s' listed twice (pass %d)", e->d_name, pass);
			CHECKF(e->d_type == DT_REG || e->d_type == DT_UNKNOWN, "d_type %d", e->d_type);
			seen[i] = 1;
			total++;
			errno = 0;
		}
		CHECKF(errno == 0, "readdir: %s", ename(errno));
		closedir(d);
		CHECKF(dot == 1 && dotdot == 1, "'.' seen %d times, '..' %d times", dot, dotdot);
		for (int i = 0; i < N; i++)
			CHECKF(seen[i], "entry %d never listed (pass %d, %d listed)", i, pass, total);
	}
	/* every listed name can be looked up */
	for (int i = 0; i < N; i += 7) {
		snprintf(name, sizeof(name), "entry-%04d-%s", i, i % 3 ? "file" : "with-a-longer-name");
		struct stat st;
		SYS(stat(name, &st));
	}
	return PASS;
}

static int t_readdir_unlink(void)
{
	enum { N = 1000 };
	char name[64];
	SYS(mkdir("d", 0755));
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "d/file-number-%04d", i);
		CHECK(put_file(name, "", 0, 0644) == 0);
	}
	static unsigned char seen[N];
	int dfd = SYS(open("d", O_RDONLY | O_DIRECTORY));
	DIR *d = opendir("d");
	CHECK(d);
	struct dirent *e;
	int total = 0;
	/* the rm -r pattern: unlink every entry as soon as it is returned */
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int i;
		CHECKF(sscanf(e->d_name, "file-number-%4d", &i) == 1 && i >= 0 && i < N, "unexpected entry '%s'",
		       e->d_name);
		CHECKF(!seen[i], "'%s' returned again after it was unlinked", e->d_name);
		seen[i] = 1;
		total++;
		SYS(unlinkat(dfd, e->d_name, 0));
	}
	closedir(d);
	SYS(close(dfd));
	CHECKF(total == N, "readdir while unlinking returned %d of %d entries", total, N);
	struct names l;
	CHECK(list_dir("d", &l) == 0);
	size_t left = l.n;
	names_free(&l);
	CHECKF(left == 0, "%zu entries left after unlinking everything listed", left);
	SYS(rmdir("d"));
	return PASS;
}

static int t_readdir_telldir(void)
{
	enum { N = 300 };
	char name[64];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "t%03d", i);
		CHECK(put_file(name, "", 0, 0644) == 0);
	}
	static char order[N + 2][NAME_MAX + 1];
	static long pos[N + 2];
	DIR *d = opendir(".");
	CHECK(d);
	int n = 0;
	struct dirent *e;
	for (;;) {
		long p = telldir(d);
		if (!(e = readdir(d)))
			break;
		CHECK(n < N + 2);
		pos[n] = p;
		snprintf(order[n++], sizeof(order[0]), "%s", e->d_name);
	}
	CHECKF(n == N + 2, "listed %d entries", n);
	/* seek back to several remembered positions: the same sequence follows */
	const int starts[] = {n / 2, 1, n - 1, 0, n / 3};
	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		seekdir(d, pos[starts[s]]);
		for (int i = starts[s]; i < n; i++) {
			e = readdir(d);
			CHECKF(e && !strcmp(e->d_name, order[i]),
			       "after seekdir to entry %d, entry %d is '%s', want '%s'", starts[s], i,
			       e ? e->d_name : "(end)", order[i]);
		}
		CHECK(readdir(d) == NULL);
	}
	closedir(d);
	return PASS;
}

static int t_dir_recreate(void)
{
	SYS(mkdir("d", 0755));
	SYS(mkdir("d/sub", 0755));
	CHECK(put_file("d/a", "a", 1, 0644) == 0);
	CHECK(put_file("d/sub/b", "b", 1, 0644) == 0);
	SYS(symlink("a", "d/l"));
	SYS(setxattr("d", "user.old", "1", 1, 0));
	SYS(unlink("d/sub/b"));
	SYS(rmdir("d/sub"));
	SYS(unlink("d/a"));
	SYS(unlink("d/l"));
	SYS(rmdir("d"));
	SYS(mkdir("d", 0700));
	struct names l;
	CHECK(list_dir("d", &l) == 0);
	size_t n = l.n;
	char first[256] = "";
	if (n)
		snprintf(first, sizeof(first), "%s", l.v[0]);
	names_free(&l);
	CHECKF(n == 0, "recreated dir lists %zu entries, e.g. '%s'", n, first);
	struct stat st;
	ERR(stat("d/a", &st), ENOENT);
	ERR(stat("d/sub", &st), ENOENT);
	ERR(lstat("d/l", &st), ENOENT);
	char v[4];
	ERR(getxattr("d", "user.old", v, sizeof(v)), ENODATA);
	SYS(stat("d", &st));
	CHECKF((st.st_mode & 07777) == 0700, "mode %o", st.st_mode & 07777);
	CHECK(st.st_nlink == 2);
	/* and it is a working directory */
	CHECK(put_file("d/a", "new", 3, 0644) == 0);
	CHECK(file_is("d/a", "new"));
	ERR(rmdir("d"), ENOTEMPTY);
	return PASS;
}

static int t_dir_rename_contents(void)
{
	SYS(mkdir("d", 0755));
	SYS(mkdir("d/sub", 0750));
	CHECK(put_file("d/f", "file f", 6, 0644) == 0);
	CHECK(put_file("d/sub/g", "file g", 6, 0600) == 0);
	SYS(symlink("../f", "d/sub/l"));
	struct stat before, after;
	SYS(stat("d/sub/g", &before));
	SYS(rename("d", "e"));
	CHECK(!exists("d"));
	CHECK(file_is("e/f", "file f"));
	CHECK(file_is("e/sub/g", "file g"));
	CHECK(file_is("e/sub/l", "file f"));
	SYS(stat("e/sub/g", &after));
	CHECK(before.st_ino == after.st_ino);
	struct names l;
	CHECK(list_dir("e", &l) == 0);
	CHECKF(l.n == 2 && names_count(&l, "f") == 1 && names_count(&l, "sub") == 1, "renamed dir lists %zu entries",
	       l.n);
	names_free(&l);
	/* move into another directory, and back */
	SYS(mkdir("other", 0755));
	SYS(rename("e", "other/e"));
	CHECK(file_is("other/e/sub/g", "file g"));
	struct stat dd, o;
	SYS(stat("other/e/..", &dd));
	SYS(stat("other", &o));
	CHECK(dd.st_ino == o.st_ino);
	SYS(rename("other/e", "d"));
	CHECK(file_is("d/sub/l", "file f"));
	return PASS;
}

static int t_dir_mtime(void)
{
	SYS(mkdir("d", 0755));
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	struct stat st;
	SYS(utimensat(AT_FDCWD, "d", old, 0));
	CHECK(put_file("d/f", "", 0, 0644) == 0);
	SYS(stat("d", &st));
	CHECKF(st.st_mtim.tv_sec > 1000000000, "dir mtime not updated by create");
	SYS(utimensat(AT_FDCWD, "d", old, 0));
	SYS(rename("d/f", "d/g"));
	SYS(stat("d", &st));
	CHECKF(st.st_mtim.tv_sec > 1000000000, "dir mtime not updated by rename");
	SYS(utimensat(AT_FDCWD, "d", old, 0));
	SYS(unlink("d/g"));
	SYS(stat("d", &st));
	CHECKF(st.st_mtim.tv_sec > 1000000000, "dir mtime not updated by unlink");
	/* every other change of the listing too, and ctime with it */
	static const char *const ops[] = {"mkdir", "rmdir", "symlink", "mknod", "link", "rename in"};
	SYS(mkdir("e", 0755));
	CHECK(put_file("e/f", "", 0, 0644) == 0);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct stat a;
		SYS(utimensat(AT_FDCWD, "d", old, 0));
		SYS(stat("d", &a));
		msleep(10);
		switch (i) {
		case 0:
			SYS(mkdir("d/sub", 0755));
			break;
		case 1:
			SYS(rmdir("d/sub"));
			break;
		case 2:
			SYS(symlink("target", "d/sl"));
			break;
		case 3:
			SYS(mknod("d/fifo", S_IFIFO | 0644, 0));
			break;
		case 4:
			SYS(link("e/f", "d/hl"));
			break;
		case 5:
			SYS(mkdir("e/moved", 0755));
			SYS(rename("e/moved", "d/moved"));
			break;
		}
		SYS(stat("d", &st));
		CHECKF(st.st_mtim.tv_sec > 1000000000, "dir mtime not updated by %s", ops[i]);
		CHECKF(ts_cmp(st.st_ctim, a.st_ctim) > 0, "dir ctime not updated by %s", ops[i]);
	}
	/* a file's mtime/ctime move on write */
	CHECK(put_file("f", "a", 1, 0644) == 0);
	SYS(utimensat(AT_FDCWD, "f", old, 0));
	struct stat b;
	SYS(stat("f", &b));
	msleep(30);
	int fd = SYS(open("f", O_WRONLY | O_APPEND));
	SYS(write(fd, "b", 1));
	SYS(close(fd));
	SYS(stat("f", &st));
	CHECKF(st.st_mtim.tv_sec > 1000000000, "file mtime not updated by write");
	CHECKF(ts_cmp(st.st_ctim, b.st_ctim) > 0, "file ctime not updated by write");
	return PASS;
}

/* ---- symlinks ----------------------------------------------------------------------------- */

static int t_symlink(void)
{
	char buf[PATH_MAX];
	CHECK(put_file("target", "T", 1, 0644) == 0);
	SYS(symlink("target", "l"));
	struct stat st;
	SYS(lstat("l", &st));
	CHECK(S_ISLNK(st.st_mode));
	CHECKF(st.st_size == 6, "symlink st_size %lld", (long long)st.st_size);
	ssize_t n = SYS(readlink("l", buf, sizeof(buf)));
	CHECK(n == 6 && !memcmp(buf, "target", 6));
	CHECK(file_is("l", "T"));
	SYS(stat("l", &st));
	CHECK(S_ISREG(st.st_mode) && st.st_size == 1);
	/* dangling */
	SYS(symlink("no/such/thing", "dangling"));
	SYS(lstat("dangling", &st));
	CHECK(S_ISLNK(st.st_mode));
	ERR(stat("dangling", &st), ENOENT);
	n = SYS(readlink("dangling", buf, sizeof(buf)));
	CHECK(n == 13 && !memcmp(buf, "no/such/thing", 13));
	/* absolute, long and odd targets are stored verbatim */
	char longt[4000];
	memset(longt, 'x', sizeof(longt) - 1);
	longt[sizeof(longt) - 1] = 0;
	for (int i = 100; i < 3990; i += 100)
		longt[i] = '/';
	SYS(symlink(longt, "long"));
	n = SYS(readlink("long", buf, sizeof(buf)));
	CHECKF((size_t)n == strlen(longt) && !memcmp(buf, longt, (size_t)n), "long target mangled");
	SYS(symlink("/etc/../x//y/", "abs"));
	n = SYS(readlink("abs", buf, sizeof(buf)));
	CHECK(n == 13 && !memcmp(buf, "/etc/../x//y/", 13));
	/* short buffer truncates silently */
	CHECK(SYS(readlink("l", buf, 3)) == 3 && !memcmp(buf, "tar", 3));
	/* errors */
	ERR(symlink("x", "l"), EEXIST);
	ERR(symlink("x", "target"), EEXIST);
	ERR(readlink("target", buf, sizeof(buf)), EINVAL);
	ERR(symlink("", "empty"), ENOENT);
	/* symlink to directory; trailing slash follows it */
	SYS(mkdir("dir", 0755));
	SYS(symlink("dir", "dl"));
	CHECK(put_file("dl/inner", "I", 1, 0644) == 0);
	CHECK(file_is("dir/inner", "I"));
	SYS(stat("dl/", &st));
	CHECK(S_ISDIR(st.st_mode));
	/* unlinking the link leaves the target */
	SYS(unlink("l"));
	CHECK(file_is("target", "T"));
	return PASS;
}

/* ---- hardlinks ---------------------------------------------------------------------------- */

static int t_hardlink(void)
{
	CHECK(put_file("a", "first", 5, 0644) == 0);
	SYS(link("a", "b"));
	struct stat sa, sb;
	SYS(stat("a", &sa));
	SYS(stat("b", &sb));
	CHECK(sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev);
	CHECKF(sa.st_nlink == 2 && sb.st_nlink == 2, "nlink %ju/%ju", (uintmax_t)sa.st_nlink, (uintmax_t)sb.st_nlink);
	SYS(mkdir("sub", 0755));
	SYS(link("b", "sub/c"));
	SYS(stat("a", &sa));
	CHECK(sa.st_nlink == 3);
	/* write through one name, read through the others */
	CHECK(put_file("b", "second", 6, 0644) == 0);
	CHECK(file_is("a", "second"));
	CHECK(file_is("sub/c", "second"));
	int fd = SYS(open("sub/c", O_WRONLY | O_APPEND));
	SYS(write(fd, "+", 1));
	SYS(close(fd));
	CHECK(file_is("a", "second+"));
	/* metadata is shared */
	SYS(chmod("a", 0600));
	SYS(stat("b", &sb));
	CHECK((sb.st_mode & 07777) == 0600);
	SYS(setxattr("b", "user.shared", "yes", 3, 0));
	char v[8];
	CHECK(SYS(getxattr("sub/c", "user.shared", v, sizeof(v))) == 3 && !memcmp(v, "yes", 3));
	/* unlink drops the count */
	SYS(unlink("a"));
	SYS(stat("b", &sb));
	CHECK(sb.st_nlink == 2);
	SYS(unlink("sub/c"));
	SYS(stat("b", &sb));
	CHECK(sb.st_nlink == 1);
	CHECK(file_is("b", "second+"));
	/* errors */
	SYS(mkdir("d", 0755));
	ERR(link("d", "dlink"), EPERM);
	CHECK(put_file("x", "", 0, 0644) == 0);
	ERR(link("b", "x"), EEXIST);
	ERR(link("missing", "y"), ENOENT);
	/* link() does not follow a symlink */
	SYS(symlink("b", "sl"));
	SYS(link("sl", "sl2"));
	struct stat l1;
	SYS(lstat("sl2", &l1));
	CHECK(S_ISLNK(l1.st_mode) && l1.st_nlink == 2);
	return PASS;
}

/* ---- special files ------------------------------------------------------------------------ */

static int t_fifo(void)
{
	SYS(mkfifo("p", 0640));
	struct stat st;
	SYS(lstat("p", &st));
	CHECK(S_ISFIFO(st.st_mode));
	CHECKF((st.st_mode & 07777) == 0640, "mode %o", st.st_mode & 07777);
	int fd = SYS(open("p", O_RDWR | O_NONBLOCK));
	SYS(write(fd, "ping", 4));
	char buf[8];
	CHECK(SYS(read(fd, buf, sizeof(buf))) == 4 && !memcmp(buf, "ping", 4));
	SYS(close(fd));
	SYS(mknod("p2", S_IFIFO | 0600, 0));
	SYS(lstat("p2", &st));
	CHECK(S_ISFIFO(st.st_mode));
	return PASS;
}

static int t_socket(void)
{
	int s = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, "sock");
	SYS(bind(s, (struct sockaddr *)&sa, sizeof(sa)));
	SYS(listen(s, 1));
	struct stat st;
	SYS(lstat("sock", &st));
	CHECK(S_ISSOCK(st.st_mode));
	/* connecting through the filesystem reaches the bound socket */
	int c = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(connect(c, (struct sockaddr *)&sa, sizeof(sa)));
	int a = SYS(accept(s, NULL, NULL));
	SYS(write(c, "hi", 2));
	char buf[4];
	CHECK(SYS(read(a, buf, sizeof(buf))) == 2 && !memcmp(buf, "hi", 2));
	close(a);
	close(c);
	close(s);
	ERR2(bind(SYS(socket(AF_UNIX, SOCK_STREAM, 0)), (struct sockaddr *)&sa, sizeof(sa)), EADDRINUSE, EEXIST);
	SYS(unlink("sock"));
	SYS(mknod("sock2", S_IFSOCK | 0644, 0));
	SYS(lstat("sock2", &st));
	CHECK(S_ISSOCK(st.st_mode));
	return PASS;
}

static int t_devices(void)
{
	if (geteuid() != 0)
		return skip("mknod of devices needs root");
	struct stat st;
	SYS(mknod("null", S_IFCHR | 0666, makedev(1, 3)));
	SYS(lstat("null", &st));
	CHECK(S_ISCHR(st.st_mode));
	CHECKF(st.st_rdev == makedev(1, 3), "rdev %u:%u", major(st.st_rdev), minor(st.st_rdev));
	CHECKF((st.st_mode & 07777) == 0666, "mode %o", st.st_mode & 07777);
	SYS(mknod("loop", S_IFBLK | 0660, makedev(7, 0)));
	SYS(lstat("loop", &st));
	CHECK(S_ISBLK(st.st_mode));
	CHECKF(st.st_rdev == makedev(7, 0), "rdev %u:%u", major(st.st_rdev), minor(st.st_rdev));
	/* large major/minor numbers survive */
	SYS(mknod("big", S_IFCHR | 0600, makedev(4000, 1000000)));
	SYS(lstat("big", &st));
	CHECKF(st.st_rdev == makedev(4000, 1000000), "rdev %u:%u", major(st.st_rdev), minor(st.st_rdev));
	/* the device node works as a device */
	int fd = open("null", O_WRONLY);
	if (fd >= 0) {
		CHECK(SYS(write(fd, "xyz", 3)) == 3);
		close(fd);
	} else {
		CHECKF(errno == EACCES || errno == EPERM, "open device node: %s", ename(errno));
		/* a nodev mount refuses device nodes; creating them must still work */
	}
	return PASS;
}

static int t_chrdev_0_0(void)
{
	if (geteuid() != 0)
		return skip("mknod of devices needs root");
	SYS(mkdir("d", 0755));
	CHECK(put_file("d/a", "A", 1, 0644) == 0);
	CHECK(put_file("d/b", "B", 1, 0644) == 0);
	SYS(mkdir("d/s", 0755));
	CHECK(put_file("d/s/inner", "I", 1, 0644) == 0);
	/* fsstress does exactly this; an overlay must not read it as a whiteout */
	SYS(mknod("d/c00", S_IFCHR | 0600, makedev(0, 0)));
	struct stat st;
	SYS(lstat("d/c00", &st));
	CHECKF(S_ISCHR(st.st_mode), "0:0 node has mode %o", st.st_mode);
	CHECKF(st.st_rdev == 0, "rdev %u:%u", major(st.st_rdev), minor(st.st_rdev));
	CHECKF((st.st_mode & 07777) == 0600, "mode %o", st.st_mode & 07777);
	struct names l;
	CHECK(list_dir("d", &l) == 0);
	size_t n = l.n, ca = names_count(&l, "a"), cb = names_count(&l, "b"), cs = names_count(&l, "s"),
	       cc = names_count(&l, "c00");
	names_free(&l);
	CHECKF(n == 4 && ca == 1 && cb == 1 && cs == 1 && cc == 1, "dir lists %zu entries (a:%zu b:%zu s:%zu c00:%zu)",
	       n, ca, cb, cs, cc);
	CHECK(file_is("d/a", "A"));
	CHECK(file_is("d/s/inner", "I"));
	/* a 0:0 node in place of a deleted file, and a 0:0 node in a subdir */
	SYS(unlink("d/b"));
	SYS(mknod("d/b", S_IFCHR | 0644, makedev(0, 0)));
	SYS(lstat("d/b", &st));
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == 0);
	SYS(mknod("d/s/c00", S_IFCHR | 0600, makedev(0, 0)));
	CHECK(file_is("d/s/inner", "I"));
	CHECK(list_dir("d", &l) == 0);
	n = l.n;
	names_free(&l);
	CHECKF(n == 4, "dir lists %zu entries after replacing b with 0:0", n);
	ERR(rmdir("d/s"), ENOTEMPTY);
	/* the 0:0 node survives rename and is removable like any file */
	SYS(rename("d/c00", "d/c00-renamed"));
	SYS(lstat("d/c00-renamed", &st));
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == 0);
	SYS(unlink("d/c00-renamed"));
	CHECK(!exists("d/c00-renamed"));
	CHECK(file_is("d/a", "A"));
	return PASS;
}

static int t_readdir_dtype(void)
{
	SYS(mkdir("dir", 0755));
	CHECK(put_file("reg", "", 0, 0644) == 0);
	SYS(symlink("reg", "lnk"));
	SYS(mkfifo("fifo", 0644));
	SYS(mknod("sock", S_IFSOCK | 0644, 0));
	bool dev = geteuid() == 0;
	if (dev) {
		SYS(mknod("chr", S_IFCHR | 0644, makedev(1, 3)));
		SYS(mknod("blk", S_IFBLK | 0644, makedev(7, 0)));
	}
	static const struct {
		const char *name;
		unsigned char type;
	} want[] = {{"dir", DT_DIR},   {"reg", DT_REG}, {"lnk", DT_LNK}, {"fifo", DT_FIFO},
		    {"sock", DT_SOCK}, {"chr", DT_CHR}, {"blk", DT_BLK}};
	DIR *d = opendir(".");
	CHECK(d);
	struct dirent *e;
	int found = 0;
	while ((e = readdir(d))) {
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			if (strcmp(e->d_name, want[i].name))
				continue;
			found++;
			CHECKF(e->d_type == want[i].type || e->d_type == DT_UNKNOWN, "%s: d_type %d, want %d",
			       e->d_name, e->d_type, want[i].type);
			struct stat st;
			SYS(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW));
			CHECKF(e->d_ino == st.st_ino, "%s: d_ino %ju != st_ino %ju", e->d_name, (uintmax_t)e->d_ino,
			       (uintmax_t)st.st_ino);
		}
	}
	closedir(d);
	CHECK(found == (dev ? 7 : 5));
	return PASS;
}

/* ---- modes, owners, times ----------------------------------------------------------------- */

static int t_chmod_bits(void)
{
	static const mode_t modes[] = {07777, 04755, 02755, 01777, 06711, 0, 0777, 0400, 02000, 04000, 01000, 0644};
	CHECK(put_file("f", "x", 1, 0644) == 0);
	SYS(mkdir("d", 0755));
	struct stat st;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		SYS(chmod("f", modes[i]));
		SYS(stat("f", &st));
		CHECKF((st.st_mode & 07777) == modes[i], "file chmod %o reads back %o", modes[i], st.st_mode & 07777);
		CHECK(S_ISREG(st.st_mode));
		SYS(chmod("d", modes[i]));
		SYS(stat("d", &st));
		CHECKF((st.st_mode & 07777) == modes[i], "dir chmod %o reads back %o", modes[i], st.st_mode & 07777);
		CHECK(S_ISDIR(st.st_mode));
	}
	int fd = SYS(open("f", O_RDONLY));
	SYS(fchmod(fd, 04711));
	SYS(fstat(fd, &st));
	CHECK((st.st_mode & 07777) == 04711);
	SYS(close(fd));
	SYS(stat("f", &st));
	CHECK((st.st_mode & 07777) == 04711);
	/* chmod of a symlink path changes the target */
	SYS(symlink("f", "l"));
	SYS(chmod("l", 0604));
	SYS(stat("f", &st));
	CHECK((st.st_mode & 07777) == 0604);
	SYS(lstat("l", &st));
	CHECK(S_ISLNK(st.st_mode));
	return PASS;
}

static int t_chmod_ctime(void)
{
	CHECK(put_file("f", "x", 1, 0644) == 0);
	struct timespec old[2] = {{1500000000, 111}, {1500000000, 222}};
	SYS(utimensat(AT_FDCWD, "f", old, 0));
	struct stat a, b;
	SYS(stat("f", &a));
	msleep(30);
	SYS(chmod("f", 0600));
	SYS(stat("f", &b));
	CHECKF(ts_cmp(b.st_ctim, a.st_ctim) > 0, "ctime unchanged by chmod");
	CHECKF(ts_cmp(b.st_mtim, old[1]) == 0, "mtime changed by chmod");
	CHECKF(ts_cmp(b.st_atim, old[0]) == 0, "atime changed by chmod");
	msleep(30);
	SYS(setxattr("f", "user.t", "1", 1, 0));
	SYS(stat("f", &a));
	CHECKF(ts_cmp(a.st_ctim, b.st_ctim) > 0, "ctime unchanged by setxattr");
	msleep(30);
	SYS(link("f", "g"));
	SYS(stat("f", &b));
	CHECKF(ts_cmp(b.st_ctim, a.st_ctim) > 0, "ctime unchanged by link");
	CHECKF(ts_cmp(b.st_mtim, old[1]) == 0, "mtime changed by link");
	if (geteuid() == 0) {
		msleep(30);
		SYS(chown("f", 1, 1));
		SYS(stat("f", &a));
		CHECKF(ts_cmp(a.st_ctim, b.st_ctim) > 0, "ctime unchanged by chown");
	}
	return PASS;
}

static int t_chown(void)
{
	if (geteuid() != 0)
		return skip("chown to arbitrary ids needs root");
	CHECK(put_file("f", "x", 1, 0644) == 0);
	struct stat st;
	static const struct {
		uid_t u;
		gid_t g;
	} ids[] = {{12345, 54321}, {1, 2}, {65534, 65534}, {4000000000u, 3000000000u}, {0, 0}};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		SYS(chown("f", ids[i].u, ids[i].g));
		SYS(stat("f", &st));
		CHECKF(st.st_uid == ids[i].u && st.st_gid == ids[i].g, "chown %u:%u reads %u:%u", ids[i].u, ids[i].g,
		       st.st_uid, st.st_gid);
	}
	/* -1 leaves a field alone */
	SYS(chown("f", 777, 888));
	SYS(chown("f", (uid_t)-1, 999));
	SYS(stat("f", &st));
	CHECK(st.st_uid == 777 && st.st_gid == 999);
	SYS(chown("f", 555, (gid_t)-1));
	SYS(stat("f", &st));
	CHECK(st.st_uid == 555 && st.st_gid == 999);
	/* lchown changes the link, not the target */
	SYS(symlink("f", "l"));
	SYS(lchown("l", 4242, 4343));
	SYS(lstat("l", &st));
	CHECKF(st.st_uid == 4242 && st.st_gid == 4343, "lchown reads %u:%u", st.st_uid, st.st_gid);
	SYS(stat("f", &st));
	CHECK(st.st_uid == 555 && st.st_gid == 999);
	/* directories and special files */
	SYS(mkdir("d", 0755));
	SYS(chown("d", 100, 101));
	SYS(mkfifo("p", 0644));
	SYS(chown("p", 102, 103));
	SYS(stat("d", &st));
	CHECK(st.st_uid == 100 && st.st_gid == 101);
	SYS(stat("p", &st));
	CHECK(st.st_uid == 102 && st.st_gid == 103);
	int fd = SYS(open("f", O_RDONLY));
	SYS(fchown(fd, 31, 32));
	SYS(close(fd));
	SYS(stat("f", &st));
	CHECK(st.st_uid == 31 && st.st_gid == 32);
	return PASS;
}

static int t_chown_clears_suid(void)
{
	if (geteuid() != 0)
		return skip("chown needs root");
	CHECK(put_file("f", "x", 1, 0644) == 0);
	SYS(chmod("f", 06755));
	SYS(chown("f", 1000, 1000));
	struct stat st;
	SYS(stat("f", &st));
	CHECKF((st.st_mode & 07777) == 0755, "after chown mode %o, want 0755 (suid/sgid cleared)", st.st_mode & 07777);
	/* so do special files' */
	SYS(mkfifo("p", 0644));
	SYS(chmod("p", 06755));
	SYS(chown("p", 1000, 1000));
	SYS(lstat("p", &st));
	CHECKF((st.st_mode & 07777) == 0755, "fifo after chown mode %o, want 0755", st.st_mode & 07777);
	/* directories keep their bits */
	SYS(mkdir("d", 0755));
	SYS(chmod("d", 06755));
	SYS(chown("d", 1000, 1000));
	SYS(stat("d", &st));
	CHECKF((st.st_mode & 07777) == 06755, "dir after chown mode %o", st.st_mode & 07777);
	/* chmod after chown (dpkg's order) keeps them */
	SYS(chmod("f", 04755));
	SYS(stat("f", &st));
	CHECK((st.st_mode & 07777) == 04755);
	return PASS;
}

static int nobody_write(void)
{
	int fd = open("f", O_WRONLY | O_APPEND);
	NCHECK(fd >= 0);
	NCHECK(write(fd, "y", 1) == 1);
	close(fd);
	return 0;
}

static int t_write_clears_suid(void)
{
	if (geteuid() != 0)
		return skip("needs root to set up");
	CHECK(put_file("f", "x", 1, 0644) == 0);
	SYS(chmod("f", 04777));
	int r = as_nobody(nobody_write);
	CHECKF(r == 0, "unprivileged write failed at line %d", r);
	struct stat st;
	SYS(stat("f", &st));
	CHECKF((st.st_mode & 07777) == 0777, "after unprivileged write mode %o, want 0777", st.st_mode & 07777);
	CHECK(file_is("f", "xy"));
	return PASS;
}

static int t_utimens(void)
{
	CHECK(put_file("f", "x", 1, 0644) == 0);
	struct stat st;
	struct timespec t[2] = {{1234567890, 123456789}, {987654321, 987654321}};
	SYS(utimensat(AT_FDCWD, "f", t, 0));
	SYS(stat("f", &st));
	CHECKF(ts_cmp(st.st_atim, t[0]) == 0, "atime %lld.%09ld", (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
	CHECKF(ts_cmp(st.st_mtim, t[1]) == 0, "mtime %lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	/* ns precision at both ends of the range, and beyond 2038 */
	struct timespec u[2] = {{1, 1}, {2240000000LL, 999999999}};
	SYS(utimensat(AT_FDCWD, "f", u, 0));
	SYS(stat("f", &st));
	CHECK(ts_cmp(st.st_atim, u[0]) == 0);
	CHECKF(ts_cmp(st.st_mtim, u[1]) == 0, "mtime %lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	/* UTIME_OMIT leaves that time alone */
	struct timespec om[2] = {{0, UTIME_OMIT}, {1600000000, 5}};
	SYS(utimensat(AT_FDCWD, "f", om, 0));
	SYS(stat("f", &st));
	CHECK(ts_cmp(st.st_atim, u[0]) == 0);
	CHECK(st.st_mtim.tv_sec == 1600000000 && st.st_mtim.tv_nsec == 5);
	struct timespec om2[2] = {{1700000000, 7}, {0, UTIME_OMIT}};
	SYS(utimensat(AT_FDCWD, "f", om2, 0));
	SYS(stat("f", &st));
	CHECK(st.st_atim.tv_sec == 1700000000 && st.st_atim.tv_nsec == 7);
	CHECK(st.st_mtim.tv_sec == 1600000000 && st.st_mtim.tv_nsec == 5);
	/* UTIME_NOW: within [before, after] by the realtime clock (coarse clocks lag a tick) */
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	before.tv_sec -= 1;
	struct timespec now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	SYS(utimensat(AT_FDCWD, "f", now, 0));
	clock_gettime(CLOCK_REALTIME, &after);
	after.tv_sec += 1;
	SYS(stat("f", &st));
	CHECK(st.st_atim.tv_sec == 1700000000 && st.st_atim.tv_nsec == 7);
	CHECKF(ts_cmp(st.st_mtim, before) >= 0 && ts_cmp(st.st_mtim, after) <= 0,
	       "UTIME_NOW mtime %lld.%09ld not near now", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	SYS(utimensat(AT_FDCWD, "f", NULL, 0));
	SYS(stat("f", &st));
	CHECK(ts_cmp(st.st_atim, before) >= 0 && ts_cmp(st.st_atim, after) <= 0);
	/* futimens through an fd */
	int fd = SYS(open("f", O_RDONLY));
	SYS(futimens(fd, t));
	SYS(close(fd));
	SYS(stat("f", &st));
	CHECK(ts_cmp(st.st_atim, t[0]) == 0 && ts_cmp(st.st_mtim, t[1]) == 0);
	/* on a symlink itself, and on a directory */
	SYS(symlink("f", "l"));
	SYS(utimensat(AT_FDCWD, "l", u, AT_SYMLINK_NOFOLLOW));
	SYS(lstat("l", &st));
	CHECKF(ts_cmp(st.st_mtim, u[1]) == 0, "symlink mtime %lld.%09ld", (long long)st.st_mtim.tv_sec,
	       st.st_mtim.tv_nsec);
	SYS(stat("f", &st));
	CHECK(ts_cmp(st.st_mtim, t[1]) == 0);
	SYS(mkdir("d", 0755));
	SYS(utimensat(AT_FDCWD, "d", t, 0));
	SYS(stat("d", &st));
	CHECK(ts_cmp(st.st_atim, t[0]) == 0 && ts_cmp(st.st_mtim, t[1]) == 0);
	/* reading a file with an explicit old atime must not corrupt mtime */
	char b[4];
	CHECK(get_file("f", b, sizeof(b)) == 1);
	SYS(stat("f", &st));
	CHECK(ts_cmp(st.st_mtim, t[1]) == 0);
	return PASS;
}

/* ---- sparse and large files --------------------------------------------------------------- */

static int t_sparse(void)
{
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));
	SYS(pwrite(fd, "x", 1, GiB));
	SYS(fsync(fd));
	struct stat st;
	SYS(fstat(fd, &st));
	CHECK(st.st_size == GiB + 1);
	CHECKF((long long)st.st_blocks * 512 < 16 * 1024 * 1024, "sparse file uses %lld bytes of blocks",
	       (long long)st.st_blocks * 512);
	static char buf[1 << 16];
	static const char zero[1 << 16];
	const off_t offs[] = {0, 4096, 512LL * 1024 * 1024, GiB - sizeof(buf)};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		memset(buf, 0xa5, sizeof(buf));
		CHECK(SYS(pread(fd, buf, sizeof(buf), offs[i])) == sizeof(buf));
		CHECKF(!memcmp(buf, zero, sizeof(buf)), "hole at %lld not zero", (long long)offs[i]);
	}
	CHECK(SYS(pread(fd, buf, 10, GiB - 5)) == 6);
	CHECK(!memcmp(buf, zero, 5) && buf[5] == 'x');
	SYS(close(fd));
	/* a sparse file written through a hole-punching truncate */
	fd = SYS(open("g", O_RDWR | O_CREAT, 0644));
	SYS(ftruncate(fd, 100 * 1024 * 1024));
	SYS(fstat(fd, &st));
	CHECK(st.st_size == 100 * 1024 * 1024 && (long long)st.st_blocks * 512 < 1024 * 1024);
	SYS(close(fd));
	return PASS;
}

static int t_sparse_seek(void)
{
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));
	SYS(pwrite(fd, "x", 1, GiB));
	const off_t size = GiB + 1;
	errno = 0;
	off_t data = lseek(fd, 0, SEEK_DATA);
	if (data < 0 && errno == EINVAL)
		return skip("SEEK_DATA not supported (EINVAL)");
	CHECKF(data >= 0, "SEEK_DATA: %s", ename(errno));
	off_t hole = SYS(lseek(fd, 0, SEEK_HOLE));
	ERR(lseek(fd, size, SEEK_DATA), ENXIO);
	ERR(lseek(fd, size + 4096, SEEK_HOLE), ENXIO);
	CHECKF(SYS(lseek(fd, GiB, SEEK_DATA)) == GiB, "SEEK_DATA at the data byte");
	off_t h2 = SYS(lseek(fd, GiB, SEEK_HOLE));
	CHECKF(h2 > GiB && h2 <= size, "SEEK_HOLE from the data byte gives %lld", (long long)h2);
	SYS(close(fd));
	if (data == 0 && hole == size)
		return skip("SEEK_DATA/SEEK_HOLE see no holes (generic fallback: whole file is data)");
	CHECKF(hole == 0, "SEEK_HOLE(0) = %lld", (long long)hole);
	CHECKF(data > 0 && data <= GiB, "SEEK_DATA(0) = %lld", (long long)data);
	return PASS;
}

static int t_large_file(void)
{
	enum { LEN = 1 << 16 };
	static unsigned char a[LEN], b[LEN];
	int fd = SYS(open("big", O_RDWR | O_CREAT, 0644));
	const off_t at = 5 * GiB;
	fill(a, LEN, 5);
	CHECK(SYS(pwrite(fd, a, LEN, at)) == LEN);
	/* a write straddling the 4 GiB boundary */
	const off_t at4 = 4 * GiB - 100;
	CHECK(SYS(pwrite(fd, "0123456789ABCDEF", 16, at4)) == 16);
	SYS(fsync(fd));
	SYS(close(fd));
	struct stat st;
	SYS(stat("big", &st));
	CHECKF(st.st_size == at + LEN, "size %lld", (long long)st.st_size);
	fd = SYS(open("big", O_RDONLY));
	CHECK(SYS(pread(fd, b, LEN, at)) == LEN);
	CHECKF(!memcmp(a, b, LEN), "data at 5 GiB differs");
	CHECK(SYS(pread(fd, b, 16, at4)) == 16 && !memcmp(b, "0123456789ABCDEF", 16));
	CHECK(SYS(pread(fd, b, 16, 2 * GiB)) == 16);
	for (int i = 0; i < 16; i++)
		CHECK(b[i] == 0);
	CHECK(SYS(lseek(fd, 0, SEEK_END)) == at + LEN);
	SYS(close(fd));
	/* truncate across 4 GiB */
	SYS(truncate("big", 4 * GiB + 10));
	SYS(stat("big", &st));
	CHECK(st.st_size == 4 * GiB + 10);
	fd = SYS(open("big", O_RDONLY));
	CHECK(SYS(pread(fd, b, 200, at4)) == 110);
	CHECK(!memcmp(b, "0123456789ABCDEF", 16));
	SYS(close(fd));
	SYS(unlink("big"));
	return PASS;
}

static int t_fallocate(void)
{
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));
	errno = 0;
	if (fallocate(fd, 0, 0, 1 << 20) < 0) {
		int e = errno;
		close(fd);
		if (e == EOPNOTSUPP)
			return skip("fallocate not supported (EOPNOTSUPP)");
		return fail(__LINE__, "fallocate: %s", ename(e));
	}
	struct stat st;
	SYS(fstat(fd, &st));
	CHECK(st.st_size == 1 << 20);
	CHECKF((long long)st.st_blocks * 512 >= 1 << 20, "allocated only %lld bytes", (long long)st.st_blocks * 512);
	char b[16];
	CHECK(SYS(pread(fd, b, 16, 500000)) == 16);
	for (int i = 0; i < 16; i++)
		CHECK(b[i] == 0);
	/* KEEP_SIZE does not change the size */
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20) == 0) {
		SYS(fstat(fd, &st));
		CHECK(st.st_size == 1 << 20);
	}
	SYS(close(fd));
	return PASS;
}

/* ---- xattrs ------------------------------------------------------------------------------- */

static int t_xattr_user(void)
{
	CHECK(put_file("f", "data", 4, 0644) == 0);
	char v[256];
	ERR(getxattr("f", "user.a", v, sizeof(v)), ENODATA);
	SYS(setxattr("f", "user.a", "value-1", 7, 0));
	CHECK(SYS(getxattr("f", "user.a", NULL, 0)) == 7);
	CHECK(SYS(getxattr("f", "user.a", v, sizeof(v))) == 7 && !memcmp(v, "value-1", 7));
	ERR(getxattr("f", "user.a", v, 3), ERANGE);
	/* flags */
	ERR(setxattr("f", "user.a", "x", 1, XATTR_CREATE), EEXIST);
	ERR(setxattr("f", "user.b", "x", 1, XATTR_REPLACE), ENODATA);
	SYS(setxattr("f", "user.a", "v2", 2, XATTR_REPLACE));
	CHECK(SYS(getxattr("f", "user.a", v, sizeof(v))) == 2 && !memcmp(v, "v2", 2));
	SYS(setxattr("f", "user.b", "bee", 3, XATTR_CREATE));
	/* binary value with NULs; empty value */
	const char bin[] = {0, 1, 2, 0, (char)255, 0};
	SYS(setxattr("f", "user.bin", bin, sizeof(bin), 0));
	CHECK(SYS(getxattr("f", "user.bin", v, sizeof(v))) == sizeof(bin));
	CHECK(!memcmp(v, bin, sizeof(bin)));
	SYS(setxattr("f", "user.empty", "", 0, 0));
	CHECK(SYS(getxattr("f", "user.empty", v, sizeof(v))) == 0);
	/* a 4000-byte value */
	static unsigned char big[4000], got[4000];
	fill(big, sizeof(big), 9);
	SYS(setxattr("f", "user.big", big, sizeof(big), 0));
	CHECK(SYS(getxattr("f", "user.big", got, sizeof(got))) == sizeof(big));
	CHECK(!memcmp(big, got, sizeof(big)));
	/* removexattr */
	SYS(removexattr("f", "user.b"));
	ERR(getxattr("f", "user.b", v, sizeof(v)), ENODATA);
	ERR(removexattr("f", "user.b"), ENODATA);
	/* on a directory, via fd, and not on a symlink itself */
	SYS(mkdir("d", 0755));
	SYS(setxattr("d", "user.dir", "D", 1, 0));
	CHECK(SYS(getxattr("d", "user.dir", v, sizeof(v))) == 1 && v[0] == 'D');
	int fd = SYS(open("f", O_RDONLY));
	SYS(fsetxattr(fd, "user.fd", "F", 1, 0));
	CHECK(SYS(fgetxattr(fd, "user.fd", v, sizeof(v))) == 1 && v[0] == 'F');
	SYS(fremovexattr(fd, "user.fd"));
	SYS(close(fd));
	SYS(symlink("f", "l"));
	ERR(lsetxattr("l", "user.x", "1", 1, 0), EPERM);
	CHECK(SYS(getxattr("l", "user.a", v, sizeof(v))) == 2); /* follows to f */
	/* data untouched */
	CHECK(file_is("f", "data"));
	return PASS;
}

static int t_xattr_trusted(void)
{
	if (geteuid() != 0)
		return skip("trusted.* needs CAP_SYS_ADMIN");
	CHECK(put_file("f", "x", 1, 0644) == 0);
	SYS(setxattr("f", "trusted.cowtest", "secret", 6, 0));
	char v[16];
	CHECK(SYS(getxattr("f", "trusted.cowtest", v, sizeof(v))) == 6 && !memcmp(v, "secret", 6));
	char list[1024];
	ssize_t n = SYS(listxattr("f", list, sizeof(list)));
	bool found = false;
	for (char *p = list; p < list + n; p += strlen(p) + 1)
		found |= !strcmp(p, "trusted.cowtest");
	CHECK(found);
	/* trusted.overlay.* is just another name to a plain filesystem */
	SYS(setxattr("f", "trusted.overlay.opaque", "y", 1, 0));
	CHECK(SYS(getxattr("f", "trusted.overlay.opaque", v, sizeof(v))) == 1);
	SYS(removexattr("f", "trusted.cowtest"));
	ERR(getxattr("f", "trusted.cowtest", v, sizeof(v)), ENODATA);
	return PASS;
}

/* struct vfs_cap_data, revision 2: cap_net_raw (13) permitted, effective flag set */
static const unsigned char cap_v2[20] = {
    0x01, 0x00, 0x00, 0x02, /* magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE */
    0x00, 0x20, 0x00, 0x00, /* data[0].permitted = 1 << 13 */
    0x00, 0x00, 0x00, 0x00, /* data[0].inheritable */
    0x00, 0x00, 0x00, 0x00, /* data[1].permitted */
    0x00, 0x00, 0x00, 0x00, /* data[1].inheritable */
};

static int t_xattr_capability(void)
{
	if (geteuid() != 0)
		return skip("security.capability needs CAP_SETFCAP");
	CHECK(put_file("ping", "#!/bin/true\n", 12, 0755) == 0);
	SYS(setxattr("ping", "security.capability", cap_v2, sizeof(cap_v2), 0));
	unsigned char v[64];
	ssize_t n = SYS(getxattr("ping", "security.capability", v, sizeof(v)));
	CHECKF(n == sizeof(cap_v2) && !memcmp(v, cap_v2, sizeof(cap_v2)),
	       "security.capability reads back %zd bytes, different", n);
	if (access("/usr/sbin/getcap", X_OK) == 0 || access("/sbin/getcap", X_OK) == 0) {
		FILE *p = popen("PATH=/usr/sbin:/sbin:$PATH getcap ping 2>&1", "r");
		CHECK(p);
		char line[256] = "";
		if (!fgets(line, sizeof(line), p))
			line[0] = 0;
		int st = pclose(p);
		line[strcspn(line, "\n")] = 0;
		CHECKF(st == 0 && strstr(line, "cap_net_raw=ep"), "getcap says '%s'", line);
	}
	/* survives chmod and rename */
	SYS(chmod("ping", 0711));
	SYS(rename("ping", "ping2"));
	n = SYS(getxattr("ping2", "security.capability", v, sizeof(v)));
	CHECK(n == sizeof(cap_v2) && !memcmp(v, cap_v2, sizeof(cap_v2)));
	/* a malformed capability is refused */
	ERR(setxattr("ping2", "security.capability", "junk", 4, 0), EINVAL);
	return PASS;
}

static int t_xattr_capability_killpriv(void)
{
	if (geteuid() != 0)
		return skip("security.capability needs CAP_SETFCAP");
	unsigned char v[64];
	/* writing to a file drops its file capabilities (even when root writes) */
	CHECK(put_file("f", "x", 1, 0755) == 0);
	SYS(setxattr("f", "security.capability", cap_v2, sizeof(cap_v2), 0));
	int fd = SYS(open("f", O_WRONLY | O_APPEND));
	SYS(write(fd, "y", 1));
	SYS(close(fd));
	ERR(getxattr("f", "security.capability", v, sizeof(v)), ENODATA);
	/* so does chown */
	SYS(setxattr("f", "security.capability", cap_v2, sizeof(cap_v2), 0));
	SYS(chown("f", 1, 1));
	ERR(getxattr("f", "security.capability", v, sizeof(v)), ENODATA);
	return PASS;
}

static int nobody_truncate(void)
{
	NCHECK(truncate("f", 1) == 0);
	return 0;
}

static int nobody_fallocate(void)
{
	int fd = open("f", O_WRONLY);
	NCHECK(fd >= 0);
	NCHECK(fallocate(fd, 0, 0, 8192) == 0);
	close(fd);
	return 0;
}

/* Root without CAP_FSETID in its effective set. */
static int become_root_without_fsetid(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[0].effective &= ~(1u << CAP_FSETID);
	return syscall(SYS_capset, &h, d) < 0 ? -1 : 0;
}

static int mode_of(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 ? -1 : (int)(st.st_mode & 07777);
}

/* The rules of the VFS's file_remove_privs, whoever applies them (the
 * kernel, or the daemon under FUSE_HANDLE_KILLPRIV_V2): what a write,
 * truncate or fallocate takes away, and from whom. */
static int t_setid_kill_rules(void)
{
	if (geteuid() != 0)
		return skip("needs root to set up");
	int r, m;
	CHECK(put_file("f", "x", 1, 0644) == 0);
	/* root (CAP_FSETID) keeps setuid and setgid at a write and a truncate */
	SYS(chmod("f", 06775));
	int fd = SYS(open("f", O_WRONLY | O_APPEND));
	SYS(write(fd, "y", 1));
	SYS(close(fd));
	CHECKF((m = mode_of("f")) == 06775, "after root's write mode %o, want 6775", m);
	SYS(truncate("f", 1));
	CHECKF((m = mode_of("f")) == 06775, "after root's truncate mode %o, want 6775", m);
	/* root without CAP_FSETID does not */
	r = in_child(become_root_without_fsetid, nobody_write);
	CHECKF(r == 0, "write without CAP_FSETID failed at line %d", r);
	CHECKF((m = mode_of("f")) == 0775, "after a write without CAP_FSETID mode %o, want 775", m);
	/* setgid without group execute goes only for a writer outside the
	 * file's group (Linux 6.2 and later) */
	SYS(chmod("f", 02767));
	CHECK(as_nobody(nobody_write) == 0);
	CHECKF((m = mode_of("f")) == 0767, "after a write from outside the group mode %o, want 767", m);
	SYS(chown("f", 0, 65534));
	SYS(chmod("f", 02767));
	CHECK(as_nobody(nobody_write) == 0);
	CHECKF((m = mode_of("f")) == 02767, "after a write from inside the group mode %o, want 2767", m);
	SYS(chown("f", 0, 0));
	/* a file written before with nothing to take (the kernel may remember
	 * that) then made setuid: the next write still takes it */
	SYS(chmod("f", 0777));
	CHECK(as_nobody(nobody_write) == 0);
	SYS(chmod("f", 04777));
	CHECK(as_nobody(nobody_write) == 0);
	CHECKF((m = mode_of("f")) == 0777, "after nobody's second write mode %o, want 777", m);
	/* truncate and fallocate by others */
	SYS(chmod("f", 06777));
	CHECK(as_nobody(nobody_truncate) == 0);
	CHECKF((m = mode_of("f")) == 0777, "after nobody's truncate mode %o, want 777", m);
	SYS(chmod("f", 06777));
	CHECK(as_nobody(nobody_fallocate) == 0);
	CHECKF((m = mode_of("f")) == 0777, "after nobody's fallocate mode %o, want 777", m);
	/* a capability set on a file written before goes at the next write */
	unsigned char v[64];
	SYS(setxattr("f", "security.capability", cap_v2, sizeof(cap_v2), 0));
	fd = SYS(open("f", O_WRONLY | O_APPEND));
	SYS(write(fd, "z", 1));
	SYS(close(fd));
	ERR(getxattr("f", "security.capability", v, sizeof(v)), ENODATA);
	struct stat st;
	SYS(stat("f", &st));
	CHECKF(st.st_size == 8193, "size %lld after fallocate of 8 KiB and a byte appended", (long long)st.st_size);
	return PASS;
}

struct acl_ent {
	uint16_t tag, perm;
	uint32_t id;
};

/* Build a POSIX ACL xattr blob (little-endian, version 2); returns its size. */
static size_t acl_blob(unsigned char *out, const struct acl_ent *e, size_t n)
{
	uint32_t ver = 2;
	memcpy(out, &ver, 4);
	memcpy(out + 4, e, n * sizeof(*e));
	return 4 + n * sizeof(*e);
}

enum { ACL_USER_OBJ = 1, ACL_USER = 2, ACL_GROUP_OBJ = 4, ACL_GROUP = 8, ACL_MASK = 0x10, ACL_OTHER = 0x20 };
#define NOID 0xffffffffu

static int t_xattr_acl(void)
{
	CHECK(put_file("f", "x", 1, 0644) == 0);
	const struct acl_ent ents[] = {
	    {ACL_USER_OBJ, 7, NOID}, {ACL_USER, 4, 1000}, {ACL_GROUP_OBJ, 5, NOID},
	    {ACL_GROUP, 6, 2000},    {ACL_MASK, 5, NOID}, {ACL_OTHER, 4, NOID},
	};
	unsigned char blob[128], got[128];
	size_t len = acl_blob(blob, ents, sizeof(ents) / sizeof(ents[0]));
	errno = 0;
	if (setxattr("f", "system.posix_acl_access", blob, len, 0) < 0 && errno == EOPNOTSUPP)
		return skip("POSIX ACLs not supported (EOPNOTSUPP)");
	CHECKF(errno == 0, "setxattr system.posix_acl_access: %s", ename(errno));
	ssize_t n = SYS(getxattr("f", "system.posix_acl_access", got, sizeof(got)));
	CHECKF((size_t)n == len && !memcmp(blob, got, len), "ACL reads back %zd bytes, different", n);
	struct stat st;
	SYS(stat("f", &st));
	CHECKF((st.st_mode & 0777) == 0754, "mode %o after setting ACL, want 754", st.st_mode & 0777);
	/* chmod rewrites the mask */
	SYS(chmod("f", 0740));
	n = SYS(getxattr("f", "system.posix_acl_access", got, sizeof(got)));
	CHECK((size_t)n == len);
	struct acl_ent m;
	memcpy(&m, got + 4 + 4 * sizeof(m), sizeof(m));
	CHECKF(m.tag == ACL_MASK && m.perm == 4, "mask entry tag %#x perm %o after chmod 740", m.tag, m.perm);
	/* listed, removable */
	char list[1024];
	n = SYS(listxattr("f", list, sizeof(list)));
	bool found = false;
	for (char *p = list; p < list + n; p += strlen(p) + 1)
		found |= !strcmp(p, "system.posix_acl_access");
	CHECK(found);
	SYS(removexattr("f", "system.posix_acl_access"));
	ERR(getxattr("f", "system.posix_acl_access", got, sizeof(got)), ENODATA);
	/* malformed blob is refused */
	uint32_t bad[2] = {2, 0x12345678};
	ERR(setxattr("f", "system.posix_acl_access", bad, sizeof(bad), 0), EINVAL);
	return PASS;
}

static int t_acl_default_inherit(void)
{
	SYS(mkdir("d", 0755));
	const struct acl_ent ents[] = {
	    {ACL_USER_OBJ, 7, NOID}, {ACL_USER, 7, 1000},  {ACL_GROUP_OBJ, 5, NOID},
	    {ACL_MASK, 7, NOID},     {ACL_OTHER, 0, NOID},
	};
	unsigned char blob[128], got[128];
	size_t len = acl_blob(blob, ents, sizeof(ents) / sizeof(ents[0]));
	errno = 0;
	if (setxattr("d", "system.posix_acl_default", blob, len, 0) < 0 && errno == EOPNOTSUPP)
		return skip("POSIX ACLs not supported (EOPNOTSUPP)");
	CHECKF(errno == 0, "setxattr system.posix_acl_default: %s", ename(errno));
	CHECK(SYS(getxattr("d", "system.posix_acl_default", got, sizeof(got))) == (ssize_t)len);
	mode_t old = umask(077); /* ignored when a default ACL exists */
	int fd = open("d/f", O_WRONLY | O_CREAT, 0666);
	int e = errno;
	int mk = mkdir("d/sub", 0777);
	umask(old);
	CHECKF(fd >= 0, "create in dir with default ACL: %s", ename(e));
	close(fd);
	SYS(mk);
	struct stat st;
	SYS(stat("d/f", &st));
	CHECKF((st.st_mode & 0777) == 0660, "new file mode %o, want 660 (from default ACL)", st.st_mode & 0777);
	CHECKF(getxattr("d/f", "system.posix_acl_access", got, sizeof(got)) > 0, "new file has no access ACL: %s",
	       ename(errno));
	CHECKF(getxattr("d/sub", "system.posix_acl_default", got, sizeof(got)) == (ssize_t)len,
	       "new subdir did not inherit the default ACL");
	return PASS;
}

static int t_xattr_list(void)
{
	CHECK(put_file("f", "x", 1, 0644) == 0);
	static const char *names[] = {"user.one", "user.two", "user.three.with.dots", "user.4"};
	enum { N = sizeof(names) / sizeof(names[0]) };
	for (int i = 0; i < N; i++)
		SYS(setxattr("f", names[i], names[i], strlen(names[i]), 0));
	ssize_t sz = SYS(listxattr("f", NULL, 0));
	char list[4096];
	ssize_t n = SYS(listxattr("f", list, sizeof(list)));
	CHECKF(n == sz, "listxattr size query %zd, actual %zd", sz, n);
	CHECK(n > 0 && list[n - 1] == 0);
	int count[N] = {0};
	for (char *p = list; p < list + n; p += strlen(p) + 1) {
		for (int i = 0; i < N; i++)
			if (!strcmp(p, names[i]))
				count[i]++;
	}
	for (int i = 0; i < N; i++)
		CHECKF(count[i] == 1, "%s listed %d times", names[i], count[i]);
	ERR(listxattr("f", list, 3), ERANGE);
	SYS(removexattr("f", "user.two"));
	n = SYS(listxattr("f", list, sizeof(list)));
	for (char *p = list; p < list + n; p += strlen(p) + 1)
		CHECKF(strcmp(p, "user.two"), "removed xattr still listed");
	/* a fresh file lists no user.* names */
	CHECK(put_file("g", "", 0, 0644) == 0);
	n = SYS(listxattr("g", list, sizeof(list)));
	for (char *p = list; p < list + n; p += strlen(p) + 1)
		CHECKF(strncmp(p, "user.", 5), "fresh file lists '%s'", p);
	return PASS;
}

static int t_xattr_oversize(void)
{
	CHECK(put_file("f", "payload", 7, 0644) == 0);
	SYS(setxattr("f", "user.keep", "k", 1, 0));
	static char huge[65537];
	memset(huge, 'h', sizeof(huge));
	errno = 0;
	int r = setxattr("f", "user.huge", huge, sizeof(huge), 0);
	int e = errno;
	CHECKF(r < 0 && (e == E2BIG || e == ENOSPC), "65537-byte value: %d (%s)", r, ename(e));
	/* a value at the VFS limit may be refused, but only with a clean error */
	errno = 0;
	r = setxattr("f", "user.max", huge, 65536, 0);
	e = errno;
	CHECKF(r == 0 || e == E2BIG || e == ENOSPC, "65536-byte value: %s", ename(e));
	if (r == 0) {
		static char back[65536];
		CHECK(SYS(getxattr("f", "user.max", back, sizeof(back))) == 65536);
		CHECK(!memcmp(back, huge, 65536));
	}
	/* name too long */
	char name[300] = "user.";
	memset(name + 5, 'n', 260);
	name[265] = 0;
	ERR(setxattr("f", name, "v", 1, 0), ERANGE);
	char v[4];
	ERR(getxattr("f", "user.huge", v, sizeof(v)), ENODATA);
	CHECK(SYS(getxattr("f", "user.keep", v, sizeof(v))) == 1 && v[0] == 'k');
	CHECK(file_is("f", "payload"));
	return PASS;
}

/* One file's xattrs are bounded as on ext4: 10,000 of 100 bytes do not all
 * fit, setxattr past the bound fails with ENOSPC, and what was set can be
 * listed and read back whole (what cp -a, tar --xattrs and rsync -X do). */
static int t_xattr_many(void)
{
	CHECK(put_file("f", "payload", 7, 0644) == 0);
	char name[32], value[100];
	memset(value, 'v', sizeof(value));
	int n, r = 0, e = 0;
	for (n = 0; n < 10000; n++) {
		snprintf(name, sizeof(name), "user.attr%05d", n);
		errno = 0;
		if ((r = setxattr("f", name, value, sizeof(value), 0)) < 0) {
			e = errno;
			break;
		}
	}
	CHECKF(r < 0 && e == ENOSPC, "10,000 xattrs of 100 bytes: %d set, then %s", n, ename(e));
	ssize_t size = SYS(listxattr("f", NULL, 0));
	CHECKF(size > 0 && size <= 65536, "listxattr wants %zd bytes", size);
	static char list[65536];
	CHECK(SYS(listxattr("f", list, sizeof(list))) == size);
	int listed = 0;
	char back[sizeof(value)];
	for (char *p = list; p < list + size; p += strlen(p) + 1) {
		if (strncmp(p, "user.attr", 9))
			continue;
		listed++;
		CHECKF(getxattr("f", p, back, sizeof(back)) == sizeof(value), "getxattr %s: %s", p, ename(errno));
	}
	CHECKF(listed == n, "%d set, %d listed", n, listed);
	/* room again once one is removed */
	SYS(removexattr("f", "user.attr00000"));
	SYS(setxattr("f", name, value, sizeof(value), 0));
	CHECK(file_is("f", "payload"));
	return PASS;
}

/* ---- names -------------------------------------------------------------------------------- */

static int t_name_max(void)
{
	char n255[256], n256[257], other[256];
	memset(n255, 'a', 255);
	n255[255] = 0;
	memset(n256, 'b', 256);
	n256[256] = 0;
	memset(other, 'c', 255);
	other[255] = 0;
	/* 255 works for every kind of create and shows up in readdir */
	CHECK(put_file(n255, "x", 1, 0644) == 0);
	CHECK(file_is(n255, "x"));
	SYS(mkdir("d", 0755));
	SYS(chdir("d"));
	SYS(mkdir(n255, 0755));
	SYS(chdir(".."));
	struct names l;
	CHECK(list_dir(".", &l) == 0);
	CHECK(names_count(&l, n255) == 1);
	names_free(&l);
	SYS(link(n255, other));
	SYS(unlink(other));
	SYS(symlink(n255, other));
	SYS(unlink(other));
	SYS(rename(n255, other));
	SYS(rename(other, n255));
	/* 256 fails with ENAMETOOLONG everywhere */
	struct stat st;
	ERR(open(n256, O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
	ERR(mkdir(n256, 0755), ENAMETOOLONG);
	ERR(rename(n255, n256), ENAMETOOLONG);
	ERR(link(n255, n256), ENAMETOOLONG);
	ERR(symlink("target", n256), ENAMETOOLONG);
	ERR(mknod(n256, S_IFIFO | 0644, 0), ENAMETOOLONG);
	ERR(stat(n256, &st), ENAMETOOLONG);
	ERR(unlink(n256), ENAMETOOLONG);
	SYS(mkdir("sub", 0755));
	char path[600];
	snprintf(path, sizeof(path), "sub/%s", n256);
	ERR(open(path, O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
	ERR(rename("sub", path), ENAMETOOLONG);
	/* the refused names left nothing behind */
	CHECK(list_dir("sub", &l) == 0);
	size_t n = l.n;
	names_free(&l);
	CHECK(n == 0);
	CHECK(list_dir(".", &l) == 0);
	n = l.n;
	names_free(&l);
	CHECKF(n == 3, "%zu entries after refused creates", n);
	CHECK(file_is(n255, "x"));
	return PASS;
}

static int t_name_chars(void)
{
	/* any byte but '/' and NUL, including invalid UTF-8, newlines and spaces */
	static const char *names[] = {" ", "a b",     "tab\there", "nl\nhere", "\xff\xfe",    "ünï",
				      "-", ".hidden", "..x",	   "...",      "back\\slash", "*?["};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECKF(put_file(names[i], names[i], strlen(names[i]), 0644) == 0, "create '%s'", names[i]);
	struct names l;
	CHECK(list_dir(".", &l) == 0);
	size_t total = l.n;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CHECKF(names_count(&l, names[i]) == 1, "'%s' not listed once", names[i]);
		CHECK(file_is(names[i], names[i]));
	}
	names_free(&l);
	CHECK(total == sizeof(names) / sizeof(names[0]));
	/* names are case-sensitive */
	CHECK(put_file("Case", "1", 1, 0644) == 0);
	CHECK(put_file("case", "2", 1, 0644) == 0);
	CHECK(file_is("Case", "1") && file_is("case", "2"));
	return PASS;
}

/* ---- rename ------------------------------------------------------------------------------- */

static int renameat2_(const char *a, const char *b, unsigned flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static int t_rename_file(void)
{
	CHECK(put_file("a", "AAA", 3, 0644) == 0);
	CHECK(put_file("b", "BBBBB", 5, 0600) == 0);
	struct stat sa, sb;
	SYS(stat("a", &sa));
	SYS(rename("a", "b"));
	CHECK(!exists("a"));
	CHECK(file_is("b", "AAA"));
	SYS(stat("b", &sb));
	CHECK(sb.st_ino == sa.st_ino && (sb.st_mode & 07777) == 0644);
	/* target with another hard link: that link survives with nlink 1 */
	CHECK(put_file("c", "CCC", 3, 0644) == 0);
	SYS(link("c", "c2"));
	SYS(rename("b", "c"));
	CHECK(file_is("c", "AAA"));
	CHECK(file_is("c2", "CCC"));
	struct stat s2;
	SYS(stat("c2", &s2));
	CHECK(s2.st_nlink == 1);
	/* rename onto another name of the same inode does nothing */
	SYS(link("c", "same"));
	SYS(rename("c", "same"));
	CHECK(exists("c") && exists("same"));
	SYS(stat("c", &s2));
	CHECK(s2.st_nlink == 2);
	/* rename onto itself */
	SYS(rename("c", "c"));
	CHECK(file_is("c", "AAA"));
	/* into another directory */
	SYS(mkdir("d", 0755));
	SYS(rename("c2", "d/moved"));
	CHECK(file_is("d/moved", "CCC"));
	/* a symlink, an open file */
	SYS(symlink("d/moved", "sl"));
	SYS(rename("sl", "sl2"));
	CHECK(file_is("sl2", "CCC"));
	int fd = SYS(open("d/moved", O_RDWR));
	SYS(rename("d/moved", "moved-again"));
	SYS(write(fd, "X", 1));
	SYS(close(fd));
	CHECK(file_is("moved-again", "XCC"));
	/* errors */
	ERR(rename("missing", "x"), ENOENT);
	SYS(mkdir("e", 0755));
	ERR(rename("moved-again", "e"), EISDIR);
	ERR(rename("e", "moved-again"), ENOTDIR);
	ERR(rename("moved-again", "missing-dir/x"), ENOENT);
	return PASS;
}

static int t_rename_dir(void)
{
	SYS(mkdir("src", 0755));
	CHECK(put_file("src/f", "F", 1, 0644) == 0);
	SYS(mkdir("empty", 0700));
	struct stat s0, s1;
	SYS(stat("src", &s0));
	/* dir over empty dir */
	SYS(rename("src", "empty"));
	CHECK(!exists("src"));
	CHECK(file_is("empty/f", "F"));
	SYS(stat("empty", &s1));
	CHECK(s1.st_ino == s0.st_ino && (s1.st_mode & 07777) == 0755);
	/* dir over non-empty dir */
	SYS(mkdir("full", 0755));
	CHECK(put_file("full/g", "G", 1, 0644) == 0);
	ERR(rename("empty", "full"), ENOTEMPTY);
	CHECK(file_is("empty/f", "F") && file_is("full/g", "G"));
	/* dir over a dir that only became empty */
	SYS(unlink("full/g"));
	SYS(rename("empty", "full"));
	CHECK(file_is("full/f", "F"));
	struct names l;
	CHECK(list_dir("full", &l) == 0);
	size_t n = l.n;
	names_free(&l);
	CHECK(n == 1);
	/* into its own subdirectory */
	SYS(mkdir("full/sub", 0755));
	ERR(rename("full", "full/sub/x"), EINVAL);
	ERR(rename("full", "full/x"), EINVAL);
	ERR(rename(".", "x"), EBUSY);
	CHECK(file_is("full/f", "F"));
	return PASS;
}

static int t_rename_noreplace(void)
{
	CHECK(put_file("a", "A", 1, 0644) == 0);
	CHECK(put_file("b", "B", 1, 0644) == 0);
	errno = 0;
	if (renameat2_("a", "b", RENAME_NOREPLACE) < 0 && errno == EINVAL)
		return skip("RENAME_NOREPLACE not supported (EINVAL)");
	CHECKF(errno == EEXIST, "RENAME_NOREPLACE onto existing: %s", ename(errno));
	CHECK(file_is("a", "A") && file_is("b", "B"));
	SYS(mkdir("d", 0755));
	ERR(renameat2_("a", "d", RENAME_NOREPLACE), EEXIST);
	SYS(renameat2_("a", "c", RENAME_NOREPLACE));
	CHECK(!exists("a") && file_is("c", "A"));
	SYS(renameat2_("d", "d2", RENAME_NOREPLACE));
	CHECK(!exists("d"));
	return PASS;
}

static int t_rename_exchange(void)
{
	CHECK(put_file("f", "file", 4, 0644) == 0);
	SYS(mkdir("d", 0750));
	CHECK(put_file("d/child", "child", 5, 0644) == 0);
	struct stat f0, d0, f1, d1;
	SYS(stat("f", &f0));
	SYS(stat("d", &d0));
	errno = 0;
	if (renameat2_("f", "d", RENAME_EXCHANGE) < 0 && errno == EINVAL)
		return skip("RENAME_EXCHANGE not supported (EINVAL)");
	CHECKF(errno == 0, "RENAME_EXCHANGE: %s", ename(errno));
	SYS(stat("f", &f1));
	SYS(stat("d", &d1));
	CHECK(S_ISDIR(f1.st_mode) && S_ISREG(d1.st_mode));
	CHECK(f1.st_ino == d0.st_ino && d1.st_ino == f0.st_ino);
	CHECK(file_is("d", "file"));
	CHECK(file_is("f/child", "child"));
	struct stat dd, here;
	SYS(stat("f/..", &dd));
	SYS(stat(".", &here));
	CHECK(dd.st_ino == here.st_ino);
	/* two files across directories */
	SYS(mkdir("x", 0755));
	CHECK(put_file("x/one", "1", 1, 0644) == 0);
	CHECK(put_file("two", "2", 1, 0644) == 0);
	SYS(renameat2_("x/one", "two", RENAME_EXCHANGE));
	CHECK(file_is("x/one", "2") && file_is("two", "1"));
	ERR(renameat2_("two", "missing", RENAME_EXCHANGE), ENOENT);
	ERR(renameat2_("two", "x/one", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
	return PASS;
}

/* ---- open files, tmpfiles, sync ----------------------------------------------------------- */

static int t_unlinked_open(void)
{
	CHECK(put_file("f", "start", 5, 0644) == 0);
	int fd = SYS(open("f", O_RDWR));
	int fd2 = SYS(open("f", O_RDONLY));
	SYS(unlink("f"));
	CHECK(!exists("f"));
	struct stat st;
	SYS(fstat(fd, &st));
	CHECKF(st.st_nlink == 0, "nlink %ju after unlink", (uintmax_t)st.st_nlink);
	static unsigned char a[200000], b[200000];
	fill(a, sizeof(a), 3);
	CHECK(SYS(pwrite(fd, a, sizeof(a), 5)) == sizeof(a));
	CHECK(SYS(pread(fd2, b, 5, 0)) == 5 && !memcmp(b, "start", 5));
	CHECK(SYS(pread(fd2, b, sizeof(b), 5)) == sizeof(b) && !memcmp(a, b, sizeof(b)));
	SYS(fstat(fd2, &st));
	CHECK(st.st_size == 5 + (off_t)sizeof(a));
	SYS(ftruncate(fd, 3));
	SYS(fchmod(fd, 0600));
	SYS(fstat(fd2, &st));
	CHECK(st.st_size == 3 && (st.st_mode & 07777) == 0600);
	SYS(fsync(fd));
	/* a new file under the old name is unrelated */
	CHECK(put_file("f", "new", 3, 0644) == 0);
	CHECK(SYS(pread(fd2, b, 10, 0)) == 3 && !memcmp(b, "sta", 3));
	CHECK(file_is("f", "new"));
	SYS(close(fd));
	SYS(close(fd2));
	CHECK(file_is("f", "new"));
	/* an unlinked open directory: cwd removed */
	SYS(mkdir("gone", 0755));
	int dfd = SYS(open("gone", O_RDONLY | O_DIRECTORY));
	SYS(rmdir("gone"));
	ERR(openat(dfd, "x", O_WRONLY | O_CREAT, 0644), ENOENT);
	SYS(fstat(dfd, &st));
	CHECK(st.st_nlink == 0);
	SYS(close(dfd));
	return PASS;
}

static int t_tmpfile(void)
{
	errno = 0;
	int fd = open(".", O_TMPFILE | O_RDWR, 0640);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR))
		return skip("O_TMPFILE not supported (%s)", ename(errno));
	CHECKF(fd >= 0, "O_TMPFILE: %s", ename(errno));
	struct stat st;
	SYS(fstat(fd, &st));
	CHECK(st.st_nlink == 0 && S_ISREG(st.st_mode));
	SYS(write(fd, "tmpdata", 7));
	struct names l;
	CHECK(list_dir(".", &l) == 0);
	size_t n = l.n;
	names_free(&l);
	CHECKF(n == 0, "O_TMPFILE left %zu visible entries", n);
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	SYS(linkat(AT_FDCWD, proc, AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
	SYS(fstat(fd, &st));
	CHECK(st.st_nlink == 1);
	struct stat sn;
	SYS(stat("named", &sn));
	CHECK(sn.st_ino == st.st_ino && (sn.st_mode & 07777) == 0640);
	CHECK(file_is("named", "tmpdata"));
	SYS(pwrite(fd, "T", 1, 0));
	CHECK(file_is("named", "Tmpdata"));
	SYS(close(fd));
	/* O_EXCL tmpfiles can never be linked */
	fd = SYS(open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ERR(linkat(AT_FDCWD, proc, AT_FDCWD, "named2", AT_SYMLINK_FOLLOW), ENOENT);
	SYS(close(fd));
	/* and one that is never linked vanishes */
	fd = SYS(open(".", O_TMPFILE | O_WRONLY, 0600));
	SYS(close(fd));
	CHECK(list_dir(".", &l) == 0);
	n = l.n;
	names_free(&l);
	CHECK(n == 1);
	return PASS;
}

static int t_statfs(void)
{
	struct statfs s;
	SYS(statfs(".", &s));
	CHECKF(s.f_bsize > 0 && s.f_bsize <= (1 << 20), "f_bsize %ld", (long)s.f_bsize);
	CHECKF(s.f_blocks > 0, "f_blocks 0");
	CHECKF(s.f_bfree <= s.f_blocks, "f_bfree %ju > f_blocks %ju", (uintmax_t)s.f_bfree, (uintmax_t)s.f_blocks);
	CHECKF(s.f_bavail <= s.f_bfree, "f_bavail > f_bfree");
	CHECKF(s.f_bavail > 0, "f_bavail 0 (no space?)");
	CHECKF(s.f_ffree <= s.f_files, "f_ffree > f_files");
	CHECKF(s.f_namelen == 255, "f_namelen %ld", (long)s.f_namelen);
	int fd = SYS(open(".", O_RDONLY | O_DIRECTORY));
	struct statfs s2;
	SYS(fstatfs(fd, &s2));
	SYS(close(fd));
	CHECK(s2.f_type == s.f_type && s2.f_blocks == s.f_blocks);
	/* writing 8 MiB is reflected (allow for concurrent activity and lazy accounting) */
	return PASS;
}

static int t_fsync(void)
{
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));
	static unsigned char a[1 << 20];
	fill(a, sizeof(a), 7);
	CHECK(write_all(fd, a, sizeof(a)) == 0);
	SYS(fsync(fd));
	SYS(pwrite(fd, "abc", 3, 10));
	SYS(fdatasync(fd));
	SYS(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
	SYS(syncfs(fd));
	SYS(close(fd));
	int d = SYS(open(".", O_RDONLY | O_DIRECTORY));
	SYS(fsync(d));
	SYS(fdatasync(d));
	SYS(close(d));
	fd = SYS(open("f", O_RDONLY));
	SYS(fsync(fd)); /* on a read-only fd too */
	SYS(close(fd));
	memcpy(a + 10, "abc", 3);
	static unsigned char b[1 << 20];
	CHECK(get_file("f", b, sizeof(b)) == sizeof(b) && !memcmp(a, b, sizeof(b)));
	return PASS;
}

static int t_mmap(void)
{
	const size_t len = 3 * 4096 + 100;
	static unsigned char a[3 * 4096 + 100], b[3 * 4096 + 100];
	fill(a, len, 11);
	CHECK(put_file("f", a, len, 0644) == 0);
	int fd = SYS(open("f", O_RDWR));
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECKF(m != MAP_FAILED, "mmap MAP_SHARED: %s", ename(errno));
	CHECK(!memcmp(m, a, len));
	/* write through the map, read through read() */
	memcpy(m + 5000, "MAPPED", 6);
	memcpy(a + 5000, "MAPPED", 6);
	m[len - 1] = 'E';
	a[len - 1] = 'E';
	SYS(msync(m, len, MS_SYNC));
	CHECK(SYS(pread(fd, b, len, 0)) == (ssize_t)len && !memcmp(a, b, len));
	/* write through write(), read through the map */
	SYS(pwrite(fd, "WRITTEN", 7, 9000));
	CHECK(!memcmp(m + 9000, "WRITTEN", 7));
	/* dirty pages reach the file without msync, after munmap+close */
	memcpy(m + 100, "LATE", 4);
	memcpy(a + 100, "LATE", 4);
	memcpy(a + 9000, "WRITTEN", 7);
	SYS(munmap(m, len));
	SYS(close(fd));
	CHECK(get_file("f", b, sizeof(b)) == (ssize_t)len && !memcmp(a, b, len));
	/* a private map does not write back */
	fd = SYS(open("f", O_RDONLY));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(m != MAP_FAILED);
	memcpy(m, "PRIVATE", 7);
	SYS(munmap(m, len));
	SYS(close(fd));
	CHECK(get_file("f", b, sizeof(b)) == (ssize_t)len && !memcmp(a, b, len));
	return PASS;
}

static int t_ino_stable(void)
{
	CHECK(put_file("f", "x", 1, 0644) == 0);
	SYS(mkdir("d", 0755));
	struct stat s0, s, d0, d;
	SYS(stat("f", &s0));
	SYS(stat("d", &d0));
#define SAME(path)                                                                                                     \
	do {                                                                                                           \
		SYS(stat(path, &s));                                                                                   \
		CHECKF(s.st_ino == s0.st_ino && s.st_dev == s0.st_dev, "st_ino changed");                              \
	} while (0)
	SYS(chmod("f", 0600));
	SAME("f");
	CHECK(put_file("f", "longer content", 14, 0644) == 0);
	SAME("f");
	SYS(truncate("f", 2));
	SAME("f");
	SYS(setxattr("f", "user.x", "1", 1, 0));
	SAME("f");
	SYS(utimensat(AT_FDCWD, "f", NULL, 0));
	SAME("f");
	if (geteuid() == 0) {
		SYS(chown("f", 7, 7));
		SAME("f");
	}
	SYS(rename("f", "g"));
	SAME("g");
	SYS(rename("g", "d/h"));
	SAME("d/h");
	SYS(link("d/h", "i"));
	SAME("i");
	SAME("d/h");
	SYS(rename("d", "e"));
	SAME("e/h");
	SYS(stat("e", &d));
	CHECK(d.st_ino == d0.st_ino);
	/* inode numbers are distinct across live objects */
	CHECK(put_file("other", "", 0, 0644) == 0);
	SYS(stat("other", &s));
	CHECK(s.st_ino != s0.st_ino && s.st_ino != d0.st_ino);
	return PASS;
#undef SAME
}

static int t_setgid_dir(void)
{
	if (geteuid() != 0)
		return skip("chown needs root");
	SYS(mkdir("d", 0755));
	SYS(chown("d", 0, 4321));
	SYS(chmod("d", 02775));
	CHECK(put_file("d/f", "", 0, 0644) == 0);
	SYS(mkdir("d/sub", 0755));
	struct stat st;
	SYS(stat("d/f", &st));
	CHECKF(st.st_gid == 4321, "file in setgid dir has gid %u", st.st_gid);
	SYS(stat("d/sub", &st));
	CHECKF(st.st_gid == 4321, "subdir of setgid dir has gid %u", st.st_gid);
	CHECKF(st.st_mode & S_ISGID, "subdir of setgid dir lacks setgid (mode %o)", st.st_mode & 07777);
	return PASS;
}

static int nobody_perms(void)
{
	char b[8];
	NCHECK(open("secret", O_RDONLY) < 0 && errno == EACCES);
	int fd = open("public", O_RDONLY);
	NCHECK(fd >= 0);
	NCHECK(read(fd, b, sizeof(b)) == 3);
	close(fd);
	NCHECK(open("public", O_WRONLY) < 0 && errno == EACCES);
	NCHECK(open("rodir/new", O_WRONLY | O_CREAT, 0644) < 0 && errno == EACCES);
	NCHECK(mkdir("rodir/newdir", 0755) < 0 && errno == EACCES);
	NCHECK(unlink("rodir/f") < 0 && errno == EACCES);
	NCHECK(chmod("public", 0777) < 0 && errno == EPERM);
	NCHECK(chown("public", 65534, 65534) < 0 && errno == EPERM);
	NCHECK(open("noexec/f", O_RDONLY) < 0 && errno == EACCES);
	/* sticky directory: own files removable, others' not */
	NCHECK(unlink("sticky/rootfile") < 0 && errno == EPERM);
	fd = open("sticky/mine", O_WRONLY | O_CREAT, 0644);
	NCHECK(fd >= 0);
	close(fd);
	struct stat st;
	NCHECK(stat("sticky/mine", &st) == 0 && st.st_uid == 65534 && st.st_gid == 65534);
	NCHECK(unlink("sticky/mine") == 0);
	NCHECK(setxattr("public", "user.x", "1", 1, 0) < 0 && errno == EACCES);
	return 0;
}

static int t_permissions(void)
{
	if (geteuid() != 0)
		return skip("needs root to switch to an unprivileged user");
	/* the test dir itself may sit below a 0700 dir; the child keeps cwd */
	CHECK(put_file("secret", "s", 1, 0600) == 0);
	CHECK(put_file("public", "pub", 3, 0644) == 0);
	SYS(mkdir("rodir", 0755));
	CHECK(put_file("rodir/f", "", 0, 0644) == 0);
	SYS(mkdir("noexec", 0700));
	CHECK(put_file("noexec/f", "", 0, 0644) == 0);
	SYS(chmod("noexec", 0666));
	SYS(mkdir("sticky", 0777));
	SYS(chmod("sticky", 01777));
	CHECK(put_file("sticky/rootfile", "", 0, 0666) == 0);
	SYS(chmod(".", 0755));
	int r = as_nobody(nobody_perms);
	CHECKF(r == 0, "unprivileged access check failed at line %d", r);
	return PASS;
}

static int t_locks(void)
{
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));
	SYS(write(fd, "0123456789", 10));
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
	SYS(fcntl(fd, F_SETLK, &fl));
	SYS(flock(fd, LOCK_EX));
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		int f2 = open("f", O_RDWR);
		if (f2 < 0)
			_exit(1);
		struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
		if (fcntl(f2, F_GETLK, &q) < 0 || q.l_type != F_WRLCK || q.l_pid != parent)
			_exit(2);
		struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 1};
		if (fcntl(f2, F_SETLK, &w) == 0 || (errno != EAGAIN && errno != EACCES))
			_exit(3);
		w.l_start = 7; /* unlocked range */
		if (fcntl(f2, F_SETLK, &w) < 0)
			_exit(4);
		if (flock(f2, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			_exit(5);
		_exit(0);
	}
	CHECK(pid > 0);
	int st;
	SYS(waitpid(pid, &st, 0));
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "lock check in child failed at step %d",
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	SYS(close(fd));
	return PASS;
}

/* ---- table and driver --------------------------------------------------------------------- */

static const struct test {
	const char *name;
	int (*fn)(void);
} tests[] = {
    {"file_rw", t_file_rw},
    {"file_append", t_file_append},
    {"file_truncate", t_file_truncate},
    {"file_excl", t_file_excl},
    {"file_errors", t_file_errors},
    {"file_recreate", t_file_recreate},
    {"umask", t_umask},
    {"dir_basic", t_dir_basic},
    {"dir_nlink", t_dir_nlink},
    {"readdir_3000", t_readdir_3000},
    {"readdir_unlink", t_readdir_unlink},
    {"readdir_dtype", t_readdir_dtype},
    {"readdir_telldir", t_readdir_telldir},
    {"dir_recreate", t_dir_recreate},
    {"dir_rename_contents", t_dir_rename_contents},
    {"dir_mtime", t_dir_mtime},
    {"symlink", t_symlink},
    {"hardlink", t_hardlink},
    {"fifo", t_fifo},
    {"socket", t_socket},
    {"devices", t_devices},
    {"chrdev_0_0", t_chrdev_0_0},
    {"chmod_bits", t_chmod_bits},
    {"chmod_ctime", t_chmod_ctime},
    {"chown", t_chown},
    {"chown_clears_suid", t_chown_clears_suid},
    {"write_clears_suid", t_write_clears_suid},
    {"setgid_dir", t_setgid_dir},
    {"permissions", t_permissions},
    {"utimens", t_utimens},
    {"sparse", t_sparse},
    {"sparse_seek", t_sparse_seek},
    {"large_file", t_large_file},
    {"fallocate", t_fallocate},
    {"xattr_user", t_xattr_user},
    {"xattr_trusted", t_xattr_trusted},
    {"xattr_capability", t_xattr_capability},
    {"xattr_capability_killpriv", t_xattr_capability_killpriv},
    {"setid_kill_rules", t_setid_kill_rules},
    {"xattr_acl", t_xattr_acl},
    {"acl_default_inherit", t_acl_default_inherit},
    {"xattr_list", t_xattr_list},
    {"xattr_oversize", t_xattr_oversize},
    {"xattr_many", t_xattr_many},
    {"name_max", t_name_max},
    {"name_chars", t_name_chars},
    {"rename_file", t_rename_file},
    {"rename_dir", t_rename_dir},
    {"rename_noreplace", t_rename_noreplace},
    {"rename_exchange", t_rename_exchange},
    {"unlinked_open", t_unlinked_open},
    {"tmpfile", t_tmpfile},
    {"statfs", t_statfs},
    {"fsync", t_fsync},
    {"mmap", t_mmap},
    {"ino_stable", t_ino_stable},
    {"locks", t_locks},
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

/* Run one subtest in a child inside DIR/NAME; prints its line; returns PASS/FAIL/SKIP. */
static int run(const char *dir, const struct test *t)
{
	char sub[PATH_MAX];
	snprintf(sub, sizeof(sub), "%s/%s", dir, t->name);
	rm_rf(sub);
	if (mkdir(sub, 0755) < 0) {
		printf("FAIL %s: cannot create '%s': %s\n", t->name, sub, ename(errno));
		return FAIL;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("FAIL %s: fork: %s\n", t->name, ename(errno));
		return FAIL;
	}
	if (pid == 0) {
		alarm(TEST_TIMEOUT);
		umask(0);
		if (chdir(sub) < 0) {
			printf("FAIL %s: cannot enter '%s': %s\n", t->name, sub, ename(errno));
			_exit(FAIL);
		}
		reason[0] = 0;
		int r = t->fn();
		if (r == PASS)
			printf("ok %s\n", t->name);
		else
			printf("%s %s: %s\n", r == SKIP ? "skip" : "FAIL", t->name, reason);
		fflush(stdout);
		_exit(r);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			printf("FAIL %s: waitpid: %s\n", t->name, ename(errno));
			return FAIL;
		}
	int r;
	if (WIFSIGNALED(st)) {
		printf("FAIL %s: killed by signal %d (%s)%s\n", t->name, WTERMSIG(st), strsignal(WTERMSIG(st)),
		       WTERMSIG(st) == SIGALRM ? ", timed out" : "");
		r = FAIL;
	} else {
		r = WEXITSTATUS(st);
		if (r != PASS && r != SKIP)
			r = FAIL;
	}
	if (r != FAIL)
		rm_rf(sub);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: semantics DIR [TESTNAME...]\n       semantics --list\n");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-') {
		usage(stderr);
		return 2;
	}
	const char *dir = argv[1];
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "semantics: '%s' is not a directory\n", dir);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		bool known = false;
		for (size_t j = 0; j < sizeof(tests) / sizeof(tests[0]); j++)
			known |= !strcmp(argv[i], tests[j].name);
		if (!known) {
			fprintf(stderr, "semantics: unknown test '%s' (see --list)\n", argv[i]);
			return 2;
		}
	}
	int counts[3] = {0};
	for (size_t j = 0; j < sizeof(tests) / sizeof(tests[0]); j++) {
		bool want = argc == 2;
		for (int i = 2; i < argc; i++)
			want |= !strcmp(argv[i], tests[j].name);
		if (want)
			counts[run(dir, &tests[j])]++;
	}
	printf("%d passed, %d failed", counts[PASS], counts[FAIL]);
	if (counts[SKIP])
		printf(", %d skipped", counts[SKIP]);
	printf("\n");
	return counts[FAIL] ? 1 : 0;
}
