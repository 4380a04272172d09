/* SPDX-License-Identifier: MIT */
/*
 * Quotas on the core API: a client's layer is refused (-EDQUOT) what
 * would take it past its limits, before anything changes (a write that
 * partly fits is short); removing frees at once; statfs shows the quota;
 * the running count always equals a fresh count of the layer (after any
 * mix of operations, after reopening, after a reset); a default quota
 * goes to new clients; other clients are untouched.
 */
#include <fcntl.h>
#include <ftw.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/xattr.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* unit.h helpers this test does not need */
#include "unit.h"

#define MiB (1024 * 1024)

static char tmp[] = "/tmp/cowroot-quota.XXXXXX";
static const struct cow_cred cred = {.uid = 0, .gid = 0, .umask = 022};

static void write_file(const char *path, size_t size)
{
	FILE *f = fopen(path, "w");
	if (!f)
		bail(path);
	for (size_t i = 0; i < size; i++)
		fputc('a' + (int)(i % 26), f);
	fclose(f);
}

/* The running count and a fresh count from the store agree. */
static void check_count(struct cow_store *st, struct cow_view *v, const char *client, const char *when)
{
	struct cow_usage run, fresh;
	cow_view_sync(v);
	int r = cow_view_usage(v, &run);
	int r2 = cow_client_usage(st, client, &fresh);
	char d[200];
	snprintf(d, sizeof(d), "running %llu bytes %llu objects, fresh %llu bytes %llu objects",
		 (unsigned long long)run.bytes, (unsigned long long)run.files, (unsigned long long)fresh.bytes,
		 (unsigned long long)fresh.files);
	check(r == 0 && r2 == 0 && run.bytes == fresh.bytes && run.files == fresh.files, d,
	      "%s: the running count equals a fresh count of the layer", when);
}

static struct cow_file *create(struct cow_view *v, uint64_t dir, const char *name, int *ret)
{
	struct cow_file *f = NULL;
	struct cow_attr a;
	*ret = cow_create(v, dir, name, 0644, O_RDWR | O_CREAT, &cred, &f, &a);
	if (*ret == 0)
		cow_forget(v, a.ino, 1); /* the entry's reference; the file keeps its own */
	return *ret == 0 ? f : NULL;
}

static ssize_t write_n(struct cow_file *f, size_t n, off_t off)
{
	static char buf[MiB];
	memset(buf, 'q', sizeof(buf));
	size_t done = 0;
	while (done < n) {
		size_t k = n - done > sizeof(buf) ? sizeof(buf) : n - done;
		ssize_t w = cow_write(f, buf, k, off + (off_t)done);
		if (w < 0)
			return done ? (ssize_t)done : w;
		done += (size_t)w;
		if ((size_t)w < k)
			break;
	}
	return (ssize_t)done;
}

static void test_parse(void)
{
	uint64_t v = 7;
	check(cow_size_parse("10G", &v) == 0 && v == 10ULL << 30, "", "10G is 10 GiB");
	check(cow_size_parse("500M", &v) == 0 && v == 500ULL << 20, "", "500M is 500 MiB");
	check(cow_size_parse("1T", &v) == 0 && v == 1ULL << 40, "", "1T is 1 TiB");
	check(cow_size_parse("4096", &v) == 0 && v == 4096, "", "a plain number is bytes");
	check(cow_size_parse("2GiB", &v) == 0 && v == 2ULL << 30, "", "2GiB is accepted");
	check(cow_size_parse("none", &v) == 0 && v == 0, "", "none is no limit");
	v = 7;
	check(cow_size_parse("0", &v) == -EINVAL && v == 7, "", "0 is refused (none says no limit)");
	check(cow_size_parse("-1G", &v) == -EINVAL, "", "a negative size is refused");
	check(cow_size_parse("1X", &v) == -EINVAL, "", "an unknown suffix is refused");
	check(cow_size_parse("", &v) == -EINVAL, "", "an empty size is refused");
	check(cow_size_parse(" 1G", &v) == -EINVAL, "", "a blank is refused");
	check(cow_size_parse("99999999999T", &v) == -ERANGE, "", "a size past 2^63 is refused");
}

int main(void)
{
	struct cow_store *st;
	struct cow_view *v;
	char src[256], sdir[256], path[300];
	int r;

	if (!mkdtemp(tmp))
		bail("mkdtemp");
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(sdir, sizeof(sdir), "%s/store", tmp);
	mkdir(src, 0755);
	snprintf(path, sizeof(path), "%s/etc", src);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/etc/small", src);
	write_file(path, 100);
	snprintf(path, sizeof(path), "%s/big", src);
	write_file(path, 2 * MiB);

	test_parse();

	if (cow_store_open(sdir, COW_STORE_CREATE, &st) < 0)
		bail("store");
	check_int(cow_image_import(st, "base", src, NULL, NULL), 0, "import the image");
	uint64_t db = 1, df = 1;
	check(cow_store_default_quota(st, &db, &df) == 0 && db == 0 && df == 0, "", "a new store has no default quota");
	check_int(cow_store_set_default_quota(st, 3 * MiB, 40), 0, "set a default quota of 3M, 40 objects");
	check_int(cow_client_add(st, "c1", "base"), 0, "add c1");
	struct cow_client_info ci;
	check(cow_client_get(st, "c1", &ci) == 0 && ci.quota_bytes == 3 * MiB && ci.quota_files == 40, "",
	      "c1 got the default quota");
	check_int(cow_store_set_default_quota(st, 0, 0), 0, "remove the default quota");
	check_int(cow_client_add(st, "free", "base"), 0, "add client 'free'");
	check(cow_client_get(st, "free", &ci) == 0 && ci.quota_bytes == 0 && ci.quota_files == 0, "",
	      "a client added without a default has no quota");
	check_int(cow_client_set_quota(st, "c1", 1 * MiB, 20), 0, "set c1's quota to 1M, 20 objects");
	check_int(cow_client_set_quota(st, "nobody", 1 * MiB, 20), -ENOENT, "a quota for an unknown client: ENOENT");

	r = cow_view_open(st, "c1", NULL, 0, &v);
	if (!check_int(r, 0, "open c1's view"))
		return tap_finish();
	uint64_t root = cow_view_root(v);
	struct cow_usage u;
	check(cow_view_usage(v, &u) == 0 && u.bytes == 0 && u.files == 0 && u.max_bytes == MiB && u.max_files == 20, "",
	      "an empty layer holds nothing, against 1M and 20 objects");
	struct statvfs sv;
	check(cow_statfs(v, &sv) == 0 && (uint64_t)sv.f_blocks * sv.f_frsize == MiB &&
		  (uint64_t)sv.f_bavail * sv.f_frsize == MiB && sv.f_files == 20 && sv.f_ffree == 20,
	      "", "statfs shows the quota as size and free space");

	/* bytes */
	struct cow_file *f = create(v, root, "data", &r);
	check_int(r, 0, "create a file");
	check(cow_view_usage(v, &u) == 0 && u.files == 2, "",
	      "the file and its image directory's row count at once (%llu objects)", (unsigned long long)u.files);
	check_int(write_n(f, 512 * 1024, 0), 512 * 1024, "write 512K");
	ssize_t n = write_n(f, MiB, 512 * 1024);
	check(n > 0 && n < MiB, "", "a 1M write past the quota is short (%zd bytes)", n);
	check_int(cow_write(f, "x", 1, 512 * 1024 + n), -EDQUOT, "the next write: EDQUOT");
	check(cow_view_usage(v, &u) == 0 && u.bytes <= MiB && u.bytes >= MiB - 8192, "",
	      "the layer holds about its quota (%llu bytes)", (unsigned long long)u.bytes);
	struct cow_attr a;
	check(cow_getattr(v, cow_file_ino(f), &a) == 0 && a.size == 512 * 1024 + n, "",
	      "the file holds exactly what was acknowledged");
	check(cow_statfs(v, &sv) == 0 && sv.f_bavail * sv.f_frsize < 8192, "", "statfs: no room left");
	check_int(cow_write(f, "y", 1, 0), 1, "overwriting data the file holds still works");
	check_int(cow_fallocate(f, 0, 0, 4 * MiB), -EDQUOT, "fallocate past the quota: EDQUOT");
	char xv[4096];
	memset(xv, 'v', sizeof(xv));
	check_int(cow_setxattr(v, cow_file_ino(f), "user.big", xv, sizeof(xv), 0), -EDQUOT,
		  "a 4K xattr on a full layer: EDQUOT");
	check_int(cow_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 256 * 1024), 0,
		  "punching a hole is allowed");
	struct cow_usage after;
	check(cow_view_usage(v, &after) == 0 && after.bytes + 200 * 1024 < u.bytes, "", "and frees its blocks");
	check_count(st, v, "c1", "after writes and a hole");
	struct cow_attr big;
	walk(v, "big", &big);
	struct cow_file *bf;
	struct cow_usage before_open;
	cow_view_usage(v, &before_open);
	check_int(cow_open(v, big.ino, O_RDWR, &bf), 0, "opening a 2M image file for writing works (no copy-up yet)");
	check(cow_view_usage(v, &after) == 0 && after.bytes == before_open.bytes && after.files == before_open.files,
	      "", "and costs nothing");
	check_int(cow_write(bf, "z", 1, 0), -EDQUOT, "its first write (a 2M copy-up): EDQUOT");
	char first;
	check(cow_read(bf, &first, 1, 0) == 1 && first == 'a', "", "the file is unchanged");
	cow_release(bf);
	struct cow_attr trunc = {.size = 4096};
	check_int(cow_setattr(v, cow_file_ino(f), &trunc, COW_SET_SIZE, &a), 0, "truncating is allowed");
	check(cow_view_usage(v, &u) == 0 && u.bytes <= 8192, "", "and frees what the file held (%llu left)",
	      (unsigned long long)u.bytes);
	check_int(cow_setxattr(v, cow_file_ino(f), "user.big", xv, sizeof(xv), 0), 0, "now an xattr fits");
	check(cow_view_usage(v, &after) == 0 && after.bytes >= u.bytes + sizeof(xv), "", "and counts its bytes");
	check_int(cow_removexattr(v, cow_file_ino(f), "user.big"), 0, "remove it");
	check(cow_view_usage(v, &after) == 0 && after.bytes == u.bytes, "", "which gives its bytes back");
	check_count(st, v, "c1", "after truncate and xattrs");
	cow_release(f);
	check_int(cow_unlink(v, root, "data"), 0, "remove the file");
	check(cow_view_usage(v, &u) == 0 && u.bytes == 0, "", "removing frees its bytes at once (%llu left)",
	      (unsigned long long)u.bytes);
	f = create(v, root, "data2", &r);
	check(r == 0 && write_n(f, 768 * 1024, 0) == 768 * 1024, "", "then 768K fit again");
	struct cow_file *g = create(v, root, "open-unlinked", &r);
	check(r == 0 && write_n(g, 128 * 1024, 0) == 128 * 1024, "", "a file written, still open");
	struct cow_attr ga;
	cow_getattr(v, cow_file_ino(g), &ga);
	cow_ref(v, ga.ino, &ga); /* a front end's reference, as an open file's */
	check_int(cow_unlink(v, root, "open-unlinked"), 0, "unlinked while open");
	check(cow_view_usage(v, &u) == 0 && u.bytes >= 896 * 1024, "", "its space is held while it is open");
	cow_release(g);
	check(cow_view_usage(v, &u) == 0 && u.bytes < 896 * 1024, "", "and given back when it is closed");
	cow_forget(v, ga.ino, 1);
	cow_release(f);
	check_count(st, v, "c1", "after unlink of open files");

	/* objects */
	check(cow_view_usage(v, &u) == 0, "", "usage before creating objects (%llu)", (unsigned long long)u.files);
	uint64_t made = 0;
	for (int i = 0; i < 40; i++) {
		char name[32];
		snprintf(name, sizeof(name), "d%d", i);
		r = cow_mkdir(v, root, name, 0755, &cred, &a);
		if (r < 0)
			break;
		cow_forget(v, a.ino, 1);
		made++;
	}
	check_int(r, -EDQUOT, "creating past 20 objects: EDQUOT");
	check(cow_view_usage(v, &u) == 0 && u.files == 20, "", "the layer holds exactly 20 objects (%llu)",
	      (unsigned long long)u.files);
	struct cow_attr small;
	walk(v, "etc/small", &small);
	struct cow_attr mode = {.mode = 0600};
	check_int(cow_setattr(v, small.ino, &mode, COW_SET_MODE, &a), -EDQUOT,
		  "a chmod of an image file (a metadata copy-up) at the limit: EDQUOT");
	check_int(cow_symlink(v, root, "sl", "big", &cred, &a), -EDQUOT, "a symlink at the limit: EDQUOT");
	check_int(cow_rmdir(v, root, "d0"), 0, "removing an object works at the limit");
	check_int(cow_rename(v, root, "d1", root, "d1-renamed", 0), 0, "renaming works at the limit");
	check_int(cow_unlink(v, cow_view_root(v), "big"), 0, "removing an image file works at the limit");
	check_count(st, v, "c1", "after creating objects");

	/* a change of limits while open */
	check_int(cow_client_set_quota(st, "c1", 64 * MiB, 0), 0, "raise c1's quota to 64M, any objects");
	check(cow_view_usage(v, &u) == 0 && u.max_bytes == MiB, "", "an open view keeps its limits until told");
	check_int(cow_view_reload_quota(v), 0, "reload the quota");
	check(cow_view_usage(v, &u) == 0 && u.max_bytes == 64 * MiB && u.max_files == 0, "", "the new limits apply");
	check_int(cow_mkdir(v, root, "more", 0755, &cred, &a), 0, "now an object can be made");
	cow_forget(v, a.ino, 1);
	walk(v, "etc/small", &small);
	check_int(cow_setattr(v, small.ino, &mode, COW_SET_MODE, &a), 0, "and an image file chmod'ed");
	check_count(st, v, "c1", "after raising the quota");
	cow_view_close(v);

	/* the count survives a reopen, and a reset empties it */
	r = cow_view_open(st, "c1", NULL, 0, &v);
	if (check_int(r, 0, "reopen c1")) {
		check_count(st, v, "c1", "after reopening");
		check_int(cow_view_reset(v), 0, "reset c1 live");
		check(cow_view_usage(v, &u) == 0 && u.bytes == 0 && u.files == 0, "", "a reset layer holds nothing");
		check_count(st, v, "c1", "after a reset");
		cow_view_close(v);
	}

	/* another client is untouched */
	r = cow_view_open(st, "free", NULL, 0, &v);
	if (check_int(r, 0, "open 'free'")) {
		root = cow_view_root(v);
		f = create(v, root, "large", &r);
		check(r == 0 && write_n(f, 8 * MiB, 0) == 8 * MiB, "", "a client with no quota writes 8M");
		cow_release(f);
		check(cow_statfs(v, &sv) == 0 && (uint64_t)sv.f_blocks * sv.f_frsize > 64 * MiB, "",
		      "and its statfs is the store's file system");
		check_count(st, v, "free", "a client without quota");
		cow_view_close(v);
	}
	cow_store_close(st);
	nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return tap_finish();
}
