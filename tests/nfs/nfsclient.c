/* SPDX-License-Identifier: MIT */
/*
 * A libnfs client for the NFS tests: `nfsclient SERVER EXPORT VERS CMD ARGS`
 * mounts EXPORT from SERVER with NFS version VERS (3 or 4) and runs one
 * command.  Exit 0 when the command did what it checks, 1 otherwise, with
 * the reason on stderr.
 *
 *   semantics DIR          create/write/rename/link/symlink/mknod/setattr/
 *                          readdir (5000 entries)/commit checks under DIR
 *   write PATH TEXT        create or truncate PATH, write TEXT, COMMIT
 *   read PATH TEXT         PATH holds exactly TEXT
 *   absent PATH            PATH does not exist
 *   ino PATH               print PATH's inode number
 *   stat PATH              print PATH's attributes
 *   handle PATH            print PATH's file handle in hex
 *   getattr-handle HEX     GETATTR of a raw handle; prints the NFS3 status, or
 *                          rpc-error when the server refused the call itself
 *   create-raw DIR NAME    CREATE3 of NAME in DIR, the name sent as it is;
 *                          prints the NFS3 status (or rpc-error)
 *   hold PATH TEXT         open PATH, check TEXT, print "ready INO", wait for
 *                          a line on stdin, then read again through the same
 *                          open handle and check TEXT and the inode number
 *   churn DIR N            N rounds of write, read back, rename, unlink
 *   commits DIR N          N new files under DIR (made if missing), each
 *                          written and COMMITted; for each acknowledged
 *                          COMMIT prints "commit INO T0 T1 PATH", T0/T1 the
 *                          CLOCK_REALTIME seconds before it and after its
 *                          reply (the power-loss test, tests/crash)
 *   create-size DIR NAME N CREATE3 (UNCHECKED) of NAME with mode 644 and size
 *                          N in its attributes; the file must have both
 *   lock-test PATH         (v4) LOCKT with no lock, with our own lock and
 *                          after unlocking: no conflict each time
 *   truncate-max PATH      SETATTR of PATH to size 2^64 - 1 fails with EFBIG
 *   mount                  just mount (fails when access is denied)
 *   fill PATH BYTES        (v3) create or truncate PATH and write BYTES of a
 *                          pattern in 64 KiB WRITE3 calls, sent again from
 *                          where a short one stopped, until all is written
 *                          or one fails; then COMMIT.  Prints "acked N
 *                          short S" (bytes the server acknowledged, short
 *                          writes) and, on a failure, "error NFS3ERR_X
 *                          (strerror)".  Exit 3 when NFS3ERR_DQUOT stopped it
 *   verify PATH BYTES      PATH holds exactly BYTES of fill's pattern
 *   creates PREFIX N       (v3) CREATE3 of PREFIX0 .. PREFIX<N-1>, until one
 *                          fails; prints "created K" and, on a failure,
 *                          "error NFS3ERR_X (strerror)".  Exit 3 on DQUOT
 *   statfs PATH            print "total B free B avail B files N ffree N
 *                          favail N" (FSSTAT / the v4 space and files
 *                          attributes, bytes in whole 4 KiB blocks)
 *   rm PATH                remove PATH
 *   mkdir PATH             make directory PATH
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

/* libnfs 4.0 keeps this private; nfs_get_fh() returns it */
struct nfs_fh {
	int len;
	char *val;
};

static struct nfs_context *nfs;
static int failures;
static int vers;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

#define CHECK(cond, ...)                                                                                               \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fail(__VA_ARGS__);                                                                             \
			return -1;                                                                                     \
		}                                                                                                      \
	} while (0)

#define NFSCALL(call) CHECK((r = (call)) >= 0, "%s: %s (%d)", #call, nfs_get_error(nfs), r)

static int write_file(const char *path, const char *data, size_t len)
{
	struct nfsfh *fh;
	int r;
	NFSCALL(nfs_open(nfs, path, O_WRONLY | O_CREAT | O_TRUNC, &fh));
	size_t done = 0;
	while (done < len) {
		r = nfs_pwrite(nfs, fh, done, len - done, data + done);
		if (r <= 0) {
			fail("write %s: %s", path, nfs_get_error(nfs));
			nfs_close(nfs, fh);
			return -1;
		}
		done += (size_t)r;
	}
	r = nfs_fsync(nfs, fh);
	nfs_close(nfs, fh);
	CHECK(r >= 0, "commit %s: %s", path, nfs_get_error(nfs));
	return 0;
}

/* Read all of @path (at most @size bytes) into @buf; returns the length. */
static ssize_t read_fh(struct nfsfh *fh, char *buf, size_t size)
{
	size_t done = 0;
	for (;;) {
		int r = nfs_pread(nfs, fh, done, size - done, buf + done);
		if (r < 0)
			return r;
		if (r == 0 || done + (size_t)r == size)
			return (ssize_t)(done + (size_t)r);
		done += (size_t)r;
	}
}

static int check_content(const char *path, const char *want, size_t len)
{
	struct nfsfh *fh;
	int r;
	char *buf = malloc(len + 2);
	NFSCALL(nfs_open(nfs, path, O_RDONLY, &fh));
	ssize_t n = read_fh(fh, buf, len + 1);
	nfs_close(nfs, fh);
	bool same = n == (ssize_t)len && memcmp(buf, want, len) == 0;
	free(buf);
	CHECK(n >= 0, "read %s: %s", path, nfs_get_error(nfs));
	CHECK(same, "%s: content differs (%zd bytes, want %zu)", path, n, len);
	return 0;
}

static int stat_path(const char *path, struct nfs_stat_64 *st)
{
	int r;
	NFSCALL(nfs_stat64(nfs, path, st));
	return 0;
}

/* ---- semantics ---- */

static int count_dir(const char *path, int *ret_n, uint64_t *ret_sum)
{
	struct nfsdir *d;
	struct nfsdirent *e;
	int r;
	NFSCALL(nfs_opendir(nfs, path, &d));
	*ret_n = 0;
	*ret_sum = 0;
	while ((e = nfs_readdir(nfs, d))) {
		if (!strcmp(e->name, ".") || !strcmp(e->name, ".."))
			continue;
		(*ret_n)++;
		*ret_sum += strtoull(e->name + 1, NULL, 10);
	}
	nfs_closedir(nfs, d);
	return 0;
}

static int semantics(const char *dir)
{
	char p[512], q[512], buf[256];
	struct nfs_stat_64 st, st2;
	int r;
	snprintf(p, sizeof(p), "%s", dir);
	NFSCALL(nfs_mkdir(nfs, p));

	/* create, write, read */
	snprintf(p, sizeof(p), "%s/file", dir);
	if (write_file(p, "hello world\n", 12) < 0 || check_content(p, "hello world\n", 12) < 0)
		return -1;

	/* rename over nothing, then over an existing file */
	snprintf(q, sizeof(q), "%s/renamed", dir);
	NFSCALL(nfs_rename(nfs, p, q));
	CHECK(nfs_stat64(nfs, p, &st) < 0, "%s still exists after rename", p);
	if (write_file(p, "other", 5) < 0)
		return -1;
	NFSCALL(nfs_rename(nfs, p, q));
	if (check_content(q, "other", 5) < 0)
		return -1;

	/* hard link: same inode, two links */
	snprintf(p, sizeof(p), "%s/hardlink", dir);
	NFSCALL(nfs_link(nfs, q, p));
	if (stat_path(p, &st) < 0 || stat_path(q, &st2) < 0)
		return -1;
	CHECK(st.nfs_ino == st2.nfs_ino && st.nfs_nlink == 2, "link: ino %" PRIu64 "/%" PRIu64 " nlink %" PRIu64,
	      st.nfs_ino, st2.nfs_ino, st.nfs_nlink);
	NFSCALL(nfs_unlink(nfs, p));
	if (stat_path(q, &st2) < 0)
		return -1;
	CHECK(st2.nfs_nlink == 1, "nlink after unlink of a link: %" PRIu64, st2.nfs_nlink);

	/* symlink */
	snprintf(p, sizeof(p), "%s/symlink", dir);
	NFSCALL(nfs_symlink(nfs, "some/where/else", p));
	NFSCALL(nfs_readlink(nfs, p, buf, sizeof(buf)));
	CHECK(!strcmp(buf, "some/where/else"), "readlink gave '%s'", buf);

	/* device nodes and fifos */
	snprintf(p, sizeof(p), "%s/chardev", dir);
	NFSCALL(nfs_mknod(nfs, p, S_IFCHR | 0640, makedev(4, 64)));
	if (stat_path(p, &st) < 0)
		return -1;
	/* libnfs 4.0 does not decode NFSv4's rawdev: the device number is
	 * checked over NFSv3 only */
	CHECK(S_ISCHR(st.nfs_mode) && (st.nfs_mode & 07777) == 0640 && (vers == 4 || st.nfs_rdev == makedev(4, 64)),
	      "mknod chr: mode %o rdev %" PRIx64, (unsigned)st.nfs_mode, st.nfs_rdev);
	snprintf(p, sizeof(p), "%s/nulldev", dir);
	NFSCALL(nfs_mknod(nfs, p, S_IFCHR | 0600, makedev(0, 0)));
	if (stat_path(p, &st) < 0)
		return -1;
	CHECK(S_ISCHR(st.nfs_mode), "a 0:0 character device is not a device: mode %o", (unsigned)st.nfs_mode);
	if (vers == 3) { /* libnfs 4.0 makes only devices over NFSv4 */
		snprintf(p, sizeof(p), "%s/fifo", dir);
		NFSCALL(nfs_mknod(nfs, p, S_IFIFO | 0600, 0));
		if (stat_path(p, &st) < 0)
			return -1;
		CHECK(S_ISFIFO(st.nfs_mode), "mknod fifo: mode %o", (unsigned)st.nfs_mode);
	}

	/* setattr: mode (with setuid), owner, times, size */
	NFSCALL(nfs_truncate(nfs, q, 3)); /* first: it sets mtime */
	if (vers == 4) {
		/* libnfs 5's path chown over NFSv4 (trixie's 5.0.2) sets the
		 * owner of the parent directory (its lookup stops at the
		 * parent: libnfs issue 426); through a handle it is exact */
		struct nfsfh *ofh;
		NFSCALL(nfs_open(nfs, q, O_RDONLY, &ofh));
		int rc = nfs_fchown(nfs, ofh, 1234, 5678);
		nfs_close(nfs, ofh);
		NFSCALL(rc);
	} else {
		NFSCALL(nfs_chown(nfs, q, 1234, 5678));
	}
	NFSCALL(nfs_chmod(nfs, q, 04755)); /* after chown, which clears setuid */
	struct timeval tv[2] = {{.tv_sec = 1000000000, .tv_usec = 0}, {.tv_sec = 1234567890, .tv_usec = 0}};
	NFSCALL(nfs_utimes(nfs, q, tv));
	if (stat_path(q, &st) < 0)
		return -1;
	CHECK(st.nfs_uid == 1234 && st.nfs_gid == 5678, "chown: %" PRIu64 ":%" PRIu64, st.nfs_uid, st.nfs_gid);
	CHECK(st.nfs_mtime == 1234567890 && st.nfs_atime == 1000000000, "utimes: atime %" PRIu64 " mtime %" PRIu64,
	      st.nfs_atime, st.nfs_mtime);
	CHECK(st.nfs_size == 3, "truncate: size %" PRIu64, st.nfs_size);
	CHECK((st.nfs_mode & 07777) == 04755, "chmod: mode %o", (unsigned)(st.nfs_mode & 07777));
	if (check_content(q, "oth", 3) < 0)
		return -1;

	/* a large directory: every entry exactly once */
	enum { N = 5000 };
	snprintf(p, sizeof(p), "%s/big", dir);
	NFSCALL(nfs_mkdir(nfs, p));
	uint64_t want_sum = 0;
	for (int i = 0; i < N; i++) {
		struct nfsfh *fh;
		snprintf(q, sizeof(q), "%s/big/f%d", dir, i);
		NFSCALL(nfs_creat(nfs, q, 0644, &fh));
		nfs_close(nfs, fh);
		want_sum += (uint64_t)i;
	}
	int n;
	uint64_t sum;
	if (count_dir(p, &n, &sum) < 0)
		return -1;
	CHECK(n == N && sum == want_sum, "readdir of %d entries saw %d (sum %" PRIu64 ", want %" PRIu64 ")", N, n, sum,
	      want_sum);
	/* remove every other entry and list again */
	for (int i = 0; i < N; i += 2) {
		snprintf(q, sizeof(q), "%s/big/f%d", dir, i);
		NFSCALL(nfs_unlink(nfs, q));
		want_sum -= (uint64_t)i;
	}
	if (count_dir(p, &n, &sum) < 0)
		return -1;
	CHECK(n == N / 2 && sum == want_sum, "readdir after removals saw %d (want %d)", n, N / 2);

	/* directory removal */
	snprintf(p, sizeof(p), "%s/sub", dir);
	NFSCALL(nfs_mkdir(nfs, p));
	snprintf(q, sizeof(q), "%s/sub/x", dir);
	if (write_file(q, "x", 1) < 0)
		return -1;
	CHECK(nfs_rmdir(nfs, p) < 0, "rmdir of a non-empty directory succeeded");
	NFSCALL(nfs_unlink(nfs, q));
	NFSCALL(nfs_rmdir(nfs, p));
	CHECK(nfs_stat64(nfs, p, &st) < 0, "%s still exists after rmdir", p);

	/* names the protocol must refuse */
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	snprintf(q, sizeof(q), "%s/%s", dir, longname);
	struct nfsfh *fh;
	CHECK(nfs_creat(nfs, q, 0644, &fh) < 0, "a 299-byte name was accepted");
	return 0;
}

/* ---- raw handles ---- */

static void hex(const struct nfs_fh *fh)
{
	for (int i = 0; i < fh->len; i++)
		printf("%02x", (unsigned char)fh->val[i]);
	printf("\n");
}

struct raw_call {
	bool done;
	int status;
	nfsstat3 nfs_status;
};

/* every NFSv3 result starts with its status */
static void raw_cb(struct rpc_context *rpc, int status, void *data, void *private_data)
{
	struct raw_call *c = private_data;
	(void)rpc;
	c->done = true;
	c->status = status;
	if (status == RPC_STATUS_SUCCESS)
		c->nfs_status = *(nfsstat3 *)data;
}

/* Wait for a raw call sent with raw_cb; print the NFS3 status, or
 * rpc-error when the server refused the call itself. */
static int raw_wait(struct raw_call *c)
{
	while (!c->done) {
		struct pollfd p = {.fd = nfs_get_fd(nfs), .events = (short)nfs_which_events(nfs)};
		CHECK(poll(&p, 1, 10000) > 0, "no answer to the call");
		CHECK(nfs_service(nfs, p.revents) >= 0, "nfs_service: %s", nfs_get_error(nfs));
	}
	if (c->status != RPC_STATUS_SUCCESS)
		printf("rpc-error\n");
	else
		printf("%d\n", (int)c->nfs_status);
	return 0;
}

/* CREATE3 of @name (sent as it is: no path splitting) in directory @dir. */
static int create_raw(const char *dir, const char *name)
{
	struct nfsfh *fh;
	int r;
	NFSCALL(nfs_open(nfs, dir, O_RDONLY, &fh));
	struct nfs_fh *dfh = nfs_get_fh(fh);
	CREATE3args args = {
	    .where = {.dir = {.data = {.data_len = (u_int)dfh->len, .data_val = dfh->val}}, .name = (char *)name},
	    .how = {.mode = GUARDED}};
	args.how.createhow3_u.obj_attributes.mode.set_it = 1;
	args.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
	struct raw_call c = {0};
	r = rpc_nfs3_create_async(nfs_get_rpc_context(nfs), raw_cb, &args, &c);
	if (r == 0)
		r = raw_wait(&c);
	else
		fail("cannot send CREATE");
	nfs_close(nfs, fh);
	return r;
}

static int getattr_handle(const char *hexstr)
{
	size_t len = strlen(hexstr) / 2;
	char *val = calloc(1, len + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned b;
		sscanf(hexstr + 2 * i, "%2x", &b);
		val[i] = (char)b;
	}
	struct rpc_context *rpc = nfs_get_rpc_context(nfs);
	GETATTR3args args = {.object = {.data = {.data_len = (u_int)len, .data_val = val}}};
	struct raw_call c = {0};
	int r = rpc_nfs3_getattr_async(rpc, raw_cb, &args, &c) == 0 ? raw_wait(&c) : -1;
	free(val);
	CHECK(r == 0, "GETATTR failed");
	return 0;
}

static int hold(const char *path, const char *text)
{
	struct nfsfh *fh;
	struct nfs_stat_64 st, st2;
	char buf[4096], line[64];
	int r;
	size_t len = strlen(text);
	NFSCALL(nfs_open(nfs, path, O_RDONLY, &fh));
	NFSCALL(nfs_fstat64(nfs, fh, &st));
	ssize_t n = read_fh(fh, buf, sizeof(buf));
	CHECK(n == (ssize_t)len && !memcmp(buf, text, len), "%s: content before", path);
	printf("ready %" PRIu64 "\n", st.nfs_ino);
	fflush(stdout);
	CHECK(fgets(line, sizeof(line), stdin), "no go-ahead on stdin");
	r = nfs_fstat64(nfs, fh, &st2);
	CHECK(r >= 0, "fstat through the old handle: %s", nfs_get_error(nfs));
	CHECK(st2.nfs_ino == st.nfs_ino, "inode number changed: %" PRIu64 " -> %" PRIu64, st.nfs_ino, st2.nfs_ino);
	n = read_fh(fh, buf, sizeof(buf));
	CHECK(n >= 0, "read through the old handle: %s", nfs_get_error(nfs));
	CHECK(n == (ssize_t)len && !memcmp(buf, text, len), "%s: content after", path);
	nfs_close(nfs, fh);
	return 0;
}

static int churn(const char *dir, int rounds)
{
	char p[512], q[512], data[8192];
	int r;
	r = nfs_mkdir(nfs, dir);
	for (int i = 0; i < rounds; i++) {
		size_t len = 1 + (size_t)(i * 977) % sizeof(data);
		for (size_t k = 0; k < len; k++)
			data[k] = (char)('a' + (k + (size_t)i) % 26);
		snprintf(p, sizeof(p), "%s/f%d", dir, i);
		snprintf(q, sizeof(q), "%s/g%d", dir, i);
		if (write_file(p, data, len) < 0 || check_content(p, data, len) < 0)
			return -1;
		NFSCALL(nfs_rename(nfs, p, q));
		if (check_content(q, data, len) < 0)
			return -1;
		if (i % 2)
			NFSCALL(nfs_unlink(nfs, q));
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int commits(const char *dir, int n)
{
	struct nfs_stat_64 st;
	char path[512], buf[8192];
	int r;
	if (nfs_stat64(nfs, dir, &st) < 0)
		NFSCALL(nfs_mkdir(nfs, dir));
	for (int i = 0; i < n; i++) {
		struct nfsfh *fh;
		snprintf(path, sizeof(path), "%s/c%d", dir, i);
		memset(buf, 'a' + i % 26, sizeof(buf));
		NFSCALL(nfs_open(nfs, path, O_WRONLY | O_CREAT | O_TRUNC, &fh));
		r = nfs_pwrite(nfs, fh, 0, sizeof(buf) - (size_t)i, buf);
		if (r >= 0)
			r = nfs_fstat64(nfs, fh, &st);
		double t0 = now();
		if (r >= 0)
			r = nfs_fsync(nfs, fh);
		double t1 = now();
		nfs_close(nfs, fh);
		CHECK(r >= 0, "write and commit %s: %s", path, nfs_get_error(nfs));
		printf("commit %" PRIu64 " %.6f %.6f %s\n", st.nfs_ino, t0, t1, path);
		fflush(stdout);
	}
	return 0;
}

/* ---- found by pynfs ---- */

/* CREATE3 UNCHECKED of @name in @dir with a mode and @size in its
 * attributes, then the file must have that size (an NFSv4 OPEN that
 * creates takes the same path in the FSAL: open2 with attributes). */
static int create_size(const char *dir, const char *name, uint64_t size)
{
	struct nfsfh *fh;
	struct nfs_stat_64 st;
	char path[1024];
	int r;
	NFSCALL(nfs_open(nfs, dir, O_RDONLY, &fh));
	struct nfs_fh *dfh = nfs_get_fh(fh);
	CREATE3args args = {
	    .where = {.dir = {.data = {.data_len = (u_int)dfh->len, .data_val = dfh->val}}, .name = (char *)name},
	    .how = {.mode = UNCHECKED}};
	sattr3 *sa = &args.how.createhow3_u.obj_attributes;
	sa->mode.set_it = 1;
	sa->mode.set_mode3_u.mode = 0644;
	sa->size.set_it = 1;
	sa->size.set_size3_u.size = size;
	struct raw_call c = {0};
	r = rpc_nfs3_create_async(nfs_get_rpc_context(nfs), raw_cb, &args, &c);
	while (r == 0 && !c.done) {
		struct pollfd p = {.fd = nfs_get_fd(nfs), .events = (short)nfs_which_events(nfs)};
		if (poll(&p, 1, 10000) <= 0 || nfs_service(nfs, p.revents) < 0)
			r = -1;
	}
	nfs_close(nfs, fh);
	CHECK(r == 0, "CREATE %s in %s: no answer (%s)", name, dir, nfs_get_error(nfs));
	CHECK(c.status == RPC_STATUS_SUCCESS && c.nfs_status == NFS3_OK, "CREATE %s in %s: rpc %d, nfs status %d", name,
	      dir, c.status, (int)c.nfs_status);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	NFSCALL(nfs_stat64(nfs, path, &st));
	CHECK(st.nfs_size == size, "%s: created with size %" PRIu64 ", has %" PRIu64, path, size, st.nfs_size);
	CHECK((st.nfs_mode & 07777) == 0644, "%s: created with mode 644, has %o", path, (unsigned)st.nfs_mode & 07777);
	return 0;
}

/* NFSv4 LOCKT (lockf F_TEST) on @path with no lock held, then with a lock
 * of our own (no conflict either), then after the unlock: each must answer
 * "no conflict", and the server must live through it. */
static int lock_test(const char *path)
{
	struct nfsfh *fh;
	int r;
	CHECK(vers == 4, "lock-test needs NFS version 4");
	NFSCALL(nfs_open(nfs, path, O_RDWR, &fh));
	r = nfs_lockf(nfs, fh, NFS4_F_TEST, 100);
	if (r >= 0)
		r = nfs_lockf(nfs, fh, NFS4_F_TLOCK, 100);
	if (r >= 0)
		r = nfs_lockf(nfs, fh, NFS4_F_TEST, 100);
	if (r >= 0)
		r = nfs_lockf(nfs, fh, NFS4_F_ULOCK, 100);
	if (r >= 0)
		r = nfs_lockf(nfs, fh, NFS4_F_TEST, 100);
	const char *err = nfs_get_error(nfs);
	nfs_close(nfs, fh);
	CHECK(r >= 0, "lockf on %s: %s (%d)", path, err, r);
	return 0;
}

/* SETATTR3 of @path to size 2^64 - 1: EFBIG (pynfs SATT12x), size unchanged */
static int truncate_max(const char *path)
{
	struct nfs_stat_64 st, st2;
	int r;
	NFSCALL(nfs_stat64(nfs, path, &st));
	r = nfs_truncate(nfs, path, UINT64_MAX);
	CHECK(r == -EFBIG, "truncate %s to 2^64-1 gave %d (%s), not EFBIG", path, r, r < 0 ? nfs_get_error(nfs) : "ok");
	NFSCALL(nfs_stat64(nfs, path, &st2));
	CHECK(st2.nfs_size == st.nfs_size, "%s: size %" PRIu64 " became %" PRIu64, path, st.nfs_size, st2.nfs_size);
	return 0;
}

/* ---- quotas ---- */

/* the exit status of fill and creates when the server said NFS3ERR_DQUOT */
#define EXIT_DQUOT 3

/* libnfs 4.0 turns NFS3ERR_DQUOT into ERANGE: name the status itself */
static void print_nfs3_error(nfsstat3 st)
{
	static const struct {
		nfsstat3 st;
		int err;
	} errs[] = {{NFS3ERR_DQUOT, EDQUOT}, {NFS3ERR_NOSPC, ENOSPC}, {NFS3ERR_FBIG, EFBIG}, {NFS3ERR_IO, EIO}};
	int err = -nfsstat3_to_errno((int)st);
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (errs[i].st == st)
			err = errs[i].err;
	printf("error %s (%s)\n", nfsstat3_to_str((int)st), strerror(err));
}

/* fill's pattern: the byte at @off (it changes within and across blocks) */
static char pattern(uint64_t off)
{
	return (char)((off % 251) ^ (off >> 16));
}

struct write_call {
	bool done;
	int status;
	nfsstat3 nfs_status;
	count3 count;
};

static void write_cb(struct rpc_context *rpc, int status, void *data, void *private_data)
{
	struct write_call *c = private_data;
	(void)rpc;
	c->done = true;
	c->status = status;
	if (status == RPC_STATUS_SUCCESS) {
		WRITE3res *res = data;
		c->nfs_status = res->status;
		if (res->status == NFS3_OK)
			c->count = res->WRITE3res_u.resok.count;
	}
}

/* Serve the context until @done is set (by a raw call's callback). */
static int wait_done(const bool *done)
{
	while (!*done) {
		struct pollfd p = {.fd = nfs_get_fd(nfs), .events = (short)nfs_which_events(nfs)};
		CHECK(poll(&p, 1, 30000) > 0, "no answer to the call");
		CHECK(nfs_service(nfs, p.revents) >= 0, "nfs_service: %s", nfs_get_error(nfs));
	}
	return 0;
}

/* WRITE3 calls one at a time, so that each acknowledged count is known
 * (libnfs's pwrite sends them all at once and reports only the failure). */
static int fill(const char *path, uint64_t total)
{
	enum { CHUNK = 64 * 1024 };
	static char buf[CHUNK];
	struct nfsfh *fh;
	uint64_t off = 0, shorts = 0;
	nfsstat3 failed = NFS3_OK;
	int r;
	CHECK(vers == 3, "fill needs NFS version 3");
	NFSCALL(nfs_open(nfs, path, O_WRONLY | O_CREAT | O_TRUNC, &fh));
	struct nfs_fh *nfh = nfs_get_fh(fh);
	while (off < total) {
		size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		WRITE3args args = {.file = {.data = {.data_len = (u_int)nfh->len, .data_val = nfh->val}},
				   .offset = off,
				   .count = (count3)n,
				   .stable = UNSTABLE,
				   .data = {.data_len = (u_int)n, .data_val = buf}};
		struct write_call c = {0};
		r = rpc_nfs3_write_async(nfs_get_rpc_context(nfs), write_cb, &args, &c);
		if (r != 0 || wait_done(&c.done) < 0 || c.status != RPC_STATUS_SUCCESS) {
			fail("WRITE %s at %" PRIu64 ": no answer (rpc status %d, %s)", path, off, c.status,
			     nfs_get_error(nfs));
			nfs_close(nfs, fh);
			return -1;
		}
		if (c.nfs_status != NFS3_OK) {
			failed = c.nfs_status;
			break;
		}
		if (c.count == 0 || c.count > n) {
			fail("WRITE %s at %" PRIu64 " of %zu bytes: the server acknowledged %u", path, off, n,
			     (unsigned)c.count);
			nfs_close(nfs, fh);
			return -1;
		}
		if (c.count < n)
			shorts++;
		off += c.count;
	}
	r = nfs_fsync(nfs, fh);
	nfs_close(nfs, fh);
	printf("acked %" PRIu64 " short %" PRIu64 "\n", off, shorts);
	if (failed != NFS3_OK)
		print_nfs3_error(failed);
	CHECK(r >= 0, "COMMIT %s after %" PRIu64 " bytes: %s", path, off, nfs_get_error(nfs));
	if (failed == NFS3ERR_DQUOT)
		return EXIT_DQUOT;
	CHECK(failed == NFS3_OK, "WRITE %s at %" PRIu64 ": %s", path, off, nfsstat3_to_str((int)failed));
	return 0;
}

static int verify(const char *path, uint64_t total)
{
	enum { CHUNK = 1024 * 1024 };
	struct nfsfh *fh;
	struct nfs_stat_64 st;
	uint64_t off = 0;
	int r;
	NFSCALL(nfs_stat64(nfs, path, &st));
	CHECK(st.nfs_size == total, "%s: size %" PRIu64 ", want %" PRIu64, path, st.nfs_size, total);
	NFSCALL(nfs_open(nfs, path, O_RDONLY, &fh));
	char *buf = malloc(CHUNK);
	for (r = 0; buf && r == 0;) {
		int n = nfs_pread(nfs, fh, off, CHUNK, buf);
		if (n <= 0) {
			r = n;
			break;
		}
		for (int i = 0; i < n && r == 0; i++)
			if (off + (uint64_t)i >= total || buf[i] != pattern(off + (uint64_t)i))
				r = 1;
		if (r == 0)
			off += (uint64_t)n;
	}
	nfs_close(nfs, fh);
	free(buf);
	CHECK(buf, "out of memory");
	CHECK(r >= 0, "read %s at %" PRIu64 ": %s", path, off, nfs_get_error(nfs));
	CHECK(r == 0, "%s: the 1 MiB read at %" PRIu64 " differs from what was written", path, off);
	CHECK(off == total, "%s: %" PRIu64 " bytes read, want %" PRIu64, path, off, total);
	return 0;
}

static int creates(const char *prefix, int n)
{
	char dir[512], name[512];
	struct nfsfh *fh;
	int r, k;
	CHECK(vers == 3, "creates needs NFS version 3");
	const char *slash = strrchr(prefix, '/');
	CHECK(slash, "%s: not a path", prefix);
	snprintf(dir, sizeof(dir), "%.*s", slash == prefix ? 1 : (int)(slash - prefix), prefix);
	NFSCALL(nfs_open(nfs, dir, O_RDONLY, &fh));
	struct nfs_fh *dfh = nfs_get_fh(fh);
	nfsstat3 failed = NFS3_OK;
	for (k = 0; k < n; k++) {
		snprintf(name, sizeof(name), "%s%d", slash + 1, k);
		CREATE3args args = {
		    .where = {.dir = {.data = {.data_len = (u_int)dfh->len, .data_val = dfh->val}}, .name = name},
		    .how = {.mode = GUARDED}};
		args.how.createhow3_u.obj_attributes.mode.set_it = 1;
		args.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
		struct raw_call c = {0};
		r = rpc_nfs3_create_async(nfs_get_rpc_context(nfs), raw_cb, &args, &c);
		if (r != 0 || wait_done(&c.done) < 0 || c.status != RPC_STATUS_SUCCESS) {
			fail("CREATE %s in %s: no answer", name, dir);
			nfs_close(nfs, fh);
			return -1;
		}
		if (c.nfs_status != NFS3_OK) {
			failed = c.nfs_status;
			break;
		}
	}
	nfs_close(nfs, fh);
	printf("created %d\n", k);
	if (failed == NFS3_OK)
		return 0;
	print_nfs3_error(failed);
	if (failed == NFS3ERR_DQUOT)
		return EXIT_DQUOT;
	fail("CREATE %s%d: %s", prefix, k, nfsstat3_to_str((int)failed));
	return -1;
}

static int statfs_path(const char *path)
{
	struct nfs_statvfs_64 sv;
	int r;
	NFSCALL(nfs_statvfs64(nfs, path, &sv));
	printf("total %" PRIu64 " free %" PRIu64 " avail %" PRIu64 " files %" PRIu64 " ffree %" PRIu64
	       " favail %" PRIu64 "\n",
	       sv.f_blocks * sv.f_frsize, sv.f_bfree * sv.f_frsize, sv.f_bavail * sv.f_frsize, sv.f_files, sv.f_ffree,
	       sv.f_favail);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: nfsclient SERVER EXPORT VERS CMD [ARGS...] (see the source)\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return usage();
	const char *server = argv[1], *export = argv[2], *cmd = argv[4];
	int r = -1;
	vers = atoi(argv[3]);
	nfs = nfs_init_context();
	if (!nfs) {
		fprintf(stderr, "FAIL cannot create an NFS context\n");
		return 1;
	}
	if (vers == 4)
		nfs_set_version(nfs, 4);
	/* every answer from the server, nothing remembered */
	nfs_set_dircache(nfs, 0);
	if (getenv("NFSCLIENT_DEBUG"))
		nfs_set_debug(nfs, atoi(getenv("NFSCLIENT_DEBUG")));
	/* calls as this user (AUTH_SYS) from this root process's reserved port */
	if (getenv("NFSCLIENT_UID"))
		nfs_set_uid(nfs, atoi(getenv("NFSCLIENT_UID")));
	if (getenv("NFSCLIENT_GID"))
		nfs_set_gid(nfs, atoi(getenv("NFSCLIENT_GID")));
	if (nfs_mount(nfs, server, export) < 0) {
		fprintf(stderr, "FAIL mount %s:%s (v%d): %s\n", server, export, vers, nfs_get_error(nfs));
		nfs_destroy_context(nfs);
		return 1;
	}
	struct nfs_stat_64 st;
	struct nfsfh *fh;
	if (!strcmp(cmd, "mount") && argc == 5) {
		r = 0;
	} else if (!strcmp(cmd, "semantics") && argc == 6) {
		r = semantics(argv[5]);
	} else if (!strcmp(cmd, "write") && argc == 7) {
		r = write_file(argv[5], argv[6], strlen(argv[6]));
	} else if (!strcmp(cmd, "pwrite") && argc == 7) {
		/* an open for writing without O_TRUNC and one write at 0
		 * (O_RDWR: libnfs 5.0's v4 open checks O_WRONLY's access wrongly) */
		r = nfs_open(nfs, argv[5], O_RDWR, &fh);
		if (r < 0) {
			fail("open %s: %s", argv[5], nfs_get_error(nfs));
		} else {
			r = nfs_pwrite(nfs, fh, 0, strlen(argv[6]), argv[6]);
			if (r < 0)
				fail("write %s: %s", argv[5], nfs_get_error(nfs));
			nfs_close(nfs, fh);
		}
	} else if (!strcmp(cmd, "truncate") && argc == 7) {
		r = nfs_truncate(nfs, argv[5], strtoull(argv[6], NULL, 10));
		if (r < 0)
			fail("truncate %s: %s", argv[5], nfs_get_error(nfs));
	} else if (!strcmp(cmd, "read") && argc == 7) {
		r = check_content(argv[5], argv[6], strlen(argv[6]));
	} else if (!strcmp(cmd, "absent") && argc == 6) {
		r = nfs_stat64(nfs, argv[5], &st);
		if (r == -ENOENT)
			r = 0;
		else
			fail("%s: stat gave %d, not ENOENT", argv[5], r);
	} else if (!strcmp(cmd, "ino") && argc == 6) {
		r = stat_path(argv[5], &st);
		if (r == 0)
			printf("%" PRIu64 "\n", st.nfs_ino);
	} else if (!strcmp(cmd, "stat") && argc == 6) {
		r = stat_path(argv[5], &st);
		if (r == 0)
			printf("ino %" PRIu64 " mode %o nlink %" PRIu64 " uid %" PRIu64 " gid %" PRIu64 " size %" PRIu64
			       " rdev %u:%u\n",
			       st.nfs_ino, (unsigned)st.nfs_mode, st.nfs_nlink, st.nfs_uid, st.nfs_gid, st.nfs_size,
			       major(st.nfs_rdev), minor(st.nfs_rdev));
	} else if (!strcmp(cmd, "handle") && argc == 6) {
		r = nfs_open(nfs, argv[5], O_RDONLY, &fh);
		if (r < 0) {
			fail("open %s: %s", argv[5], nfs_get_error(nfs));
		} else {
			hex(nfs_get_fh(fh));
			nfs_close(nfs, fh);
		}
	} else if (!strcmp(cmd, "getattr-handle") && argc == 6) {
		r = getattr_handle(argv[5]);
	} else if (!strcmp(cmd, "create-raw") && argc == 7) {
		r = create_raw(argv[5], argv[6]);
	} else if (!strcmp(cmd, "hold") && argc == 7) {
		r = hold(argv[5], argv[6]);
	} else if (!strcmp(cmd, "churn") && argc == 7) {
		r = churn(argv[5], atoi(argv[6]));
	} else if (!strcmp(cmd, "commits") && argc == 7) {
		r = commits(argv[5], atoi(argv[6]));
	} else if (!strcmp(cmd, "create-size") && argc == 8) {
		r = create_size(argv[5], argv[6], strtoull(argv[7], NULL, 10));
	} else if (!strcmp(cmd, "truncate-max") && argc == 6) {
		r = truncate_max(argv[5]);
	} else if (!strcmp(cmd, "lock-test") && argc == 6) {
		r = lock_test(argv[5]);
	} else if (!strcmp(cmd, "fill") && argc == 7) {
		r = fill(argv[5], strtoull(argv[6], NULL, 10));
	} else if (!strcmp(cmd, "verify") && argc == 7) {
		r = verify(argv[5], strtoull(argv[6], NULL, 10));
	} else if (!strcmp(cmd, "creates") && argc == 7) {
		r = creates(argv[5], atoi(argv[6]));
	} else if (!strcmp(cmd, "statfs") && argc == 6) {
		r = statfs_path(argv[5]);
	} else if (!strcmp(cmd, "mkdir") && argc == 6) {
		r = nfs_mkdir(nfs, argv[5]);
		if (r < 0)
			fail("mkdir %s: %s", argv[5], nfs_get_error(nfs));
	} else if (!strcmp(cmd, "rm") && argc == 6) {
		r = nfs_unlink(nfs, argv[5]);
		if (r < 0)
			fail("unlink %s: %s", argv[5], nfs_get_error(nfs));
	} else {
		nfs_destroy_context(nfs);
		return usage();
	}
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
	if (r == EXIT_DQUOT && !failures)
		return EXIT_DQUOT;
	return r < 0 || failures ? 1 : 0;
}
