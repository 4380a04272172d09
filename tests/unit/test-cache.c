/* SPDX-License-Identifier: MIT */
/*
 * The view's cache of unreferenced objects (cow_view_set_inode_cache): it
 * keeps at most its size of them, and what goes comes back the same:
 * attributes, xattrs, data written in the layer, readdir cookies of an
 * unchanged directory, the quota count; a changed directory keeps its
 * listing (its cookies), referenced, dirty and open objects stay.
 */
#include <fcntl.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* unit.h helpers this test does not need */
#include "unit.h"

#define NFILES 60

static char tmp[] = "/tmp/cowroot-cache.XXXXXX";
static const struct cow_cred cred = {.uid = 0, .gid = 0, .umask = 022};

struct cookies {
	char names[NFILES + 8][16];
	off_t offs[NFILES + 8];
	int n;
};

static int collect(void *arg, const char *name, const struct cow_attr *attr, off_t next_off)
{
	(void)attr;
	struct cookies *c = arg;
	if (c->n < NFILES + 8) {
		snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
		c->offs[c->n++] = next_off;
	}
	return 0;
}

static int listing(struct cow_view *v, uint64_t dir, struct cookies *c)
{
	memset(c, 0, sizeof(*c));
	return cow_readdir_ino(v, dir, 0, false, collect, c);
}

static bool same_cookies(const struct cookies *a, const struct cookies *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->names[i], b->names[i]) || a->offs[i] != b->offs[i])
			return false;
	return true;
}

/* Look every file of d up and let go of it again. */
static void touch_all(struct cow_view *v, uint64_t d)
{
	char name[32];
	struct cow_attr a;
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		if (cow_lookup(v, d, name, &a) == 0)
			cow_forget(v, a.ino, 1);
	}
}

int main(void)
{
	struct cow_store *st;
	struct cow_view *v;
	char src[256], sdir[256], path[320];
	if (!mkdtemp(tmp))
		bail("mkdtemp");
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(sdir, sizeof(sdir), "%s/store", tmp);
	mkdir(src, 0755);
	for (const char *d = "d\0e\0"; *d; d += strlen(d) + 1) {
		snprintf(path, sizeof(path), "%s/%s", src, d);
		mkdir(path, 0755);
		for (int i = 0; i < NFILES; i++) {
			snprintf(path, sizeof(path), "%s/%s/f%02d", src, d, i);
			FILE *f = fopen(path, "w");
			if (!f)
				bail(path);
			fprintf(f, "file %d of %s\n", i, d);
			fclose(f);
		}
	}
	if (cow_store_open(sdir, COW_STORE_CREATE, &st) < 0)
		bail("store");
	check_int(cow_image_import(st, "base", src, NULL, NULL), 0, "import the image");
	check_int(cow_client_add(st, "c1", "base"), 0, "add c1");
	if (!check_int(cow_view_open(st, "c1", NULL, 0, &v), 0, "open c1's view"))
		return tap_finish();
	if (getenv("COWROOT_INODE_CACHE")) {
		skip("COWROOT_INODE_CACHE is set: the test sets the size itself", "the cache's size");
		cow_view_close(v);
		cow_store_close(st);
		return tap_finish();
	}
	cow_view_set_inode_cache(v, 8);
	uint64_t d = ino_of(v, "d"), e = ino_of(v, "e");
	struct cow_attr before[NFILES], a;
	char name[32], buf[64];

	/* an image directory read, and its files looked up and let go */
	struct cookies c1, c2;
	check_int(listing(v, d, &c1), 0, "list d");
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		check_int(cow_lookup(v, d, name, &before[i]), 0, "look up d/%s", name);
		cow_forget(v, before[i].ino, 1);
	}
	struct cow_cache_counts n;
	cow_view_cache_counts(v, &n);
	char det[160];
	snprintf(det, sizeof(det), "%zu cached, %zu unreferenced", n.inodes, n.unreferenced);
	check(n.unreferenced <= 8 + 3, det, "at most the cache's size of unreferenced objects stay (and directories)");
	/* they come back the same */
	bool same = true;
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		if (cow_lookup(v, d, name, &a) < 0 || a.ino != before[i].ino || a.size != before[i].size ||
		    a.mode != before[i].mode || a.mtime.tv_nsec != before[i].mtime.tv_nsec)
			same = false;
		cow_forget(v, a.ino, 1);
	}
	check(same, "", "evicted objects come back with the same attributes");

	/* a directory's listing goes too when unchanged, and its cookies are the same again */
	touch_all(v, e);
	check_int(listing(v, e, &c2), 0, "list e");
	struct cow_cache_counts unchanged;
	cow_view_cache_counts(v, &unchanged);
	snprintf(det, sizeof(det), "%zu listings", unchanged.listings);
	check(unchanged.listings <= 2, det, "d's listing went (the root's and e's may stay)");
	touch_all(v, d);
	struct cookies c3;
	check_int(listing(v, d, &c3), 0, "list d again");
	check(same_cookies(&c1, &c3), "", "an unchanged directory lists with the same cookies after its listing went");

	/* changes in the layer: data, an xattr, a new name */
	snprintf(name, sizeof(name), "f%02d", 7);
	struct cow_file *f;
	check_int(cow_lookup(v, d, name, &a), 0, "look up d/f07");
	check_int(cow_open(v, a.ino, O_RDWR, &f), 0, "open d/f07");
	check_int(cow_write(f, "CHANGED", 7, 0), 7, "write to d/f07 (copy-up)");
	check_int(cow_release(f), 0, "close it");
	check_int(cow_setxattr(v, a.ino, "user.k", "v1", 2, 0), 0, "set an xattr on d/f07");
	uint64_t f07 = a.ino;
	cow_forget(v, a.ino, 1);
	struct cow_file *nf;
	struct cow_attr na;
	check_int(cow_create(v, d, "new", 0600, O_RDWR | O_CREAT, &cred, &nf, &na), 0, "create d/new");
	check_int(cow_write(nf, "fresh", 5, 0), 5, "write d/new");
	check_int(cow_release(nf), 0, "close d/new");
	cow_forget(v, na.ino, 1);
	struct cookies c4;
	check_int(listing(v, d, &c4), 0, "list d after the change");
	struct cow_usage u1, u2;
	check_int(cow_view_usage(v, &u1), 0, "the layer's usage");
	check_int(cow_view_sync(v), 0, "write back");
	touch_all(v, e);
	touch_all(v, e);
	cow_view_cache_counts(v, &n);
	snprintf(det, sizeof(det), "%zu cached, %zu unreferenced, %zu listings", n.inodes, n.unreferenced, n.listings);
	check(n.unreferenced <= 8 + 3, det, "written-back objects go as well");
	check(n.listings > unchanged.listings, det, "the changed directory's listing stayed");
	struct cookies c5;
	check_int(listing(v, d, &c5), 0, "list d again");
	check(same_cookies(&c4, &c5), "", "a changed directory keeps its cookies (its listing stays)");
	check_int(cow_getxattr(v, f07, "user.k", buf, sizeof(buf)), 2, "d/f07's xattr came back");
	check_int(cow_open(v, f07, O_RDONLY, &f), 0, "open d/f07 again");
	memset(buf, 0, sizeof(buf));
	check(cow_read(f, buf, sizeof(buf), 0) > 0 && !strncmp(buf, "CHANGED", 7), buf, "its data is the layer's");
	cow_release(f);
	check(cow_view_usage(v, &u2) == 0 && u1.bytes == u2.bytes && u1.files == u2.files, "",
	      "the quota count is the same after the objects went and came back");
	struct cow_usage fresh;
	check(cow_client_usage(st, "c1", &fresh) == 0 && fresh.bytes == u2.bytes && fresh.files == u2.files, "",
	      "and equals a fresh count of the layer");

	/* referenced objects stay */
	struct cow_attr held;
	check_int(cow_lookup(v, e, "f00", &held), 0, "hold e/f00");
	touch_all(v, d);
	touch_all(v, d);
	check_int(cow_getattr(v, held.ino, &a), 0, "e/f00 still answers");
	cow_view_cache_counts(v, &n);
	check(n.inodes > n.unreferenced, "", "a referenced object is not counted unreferenced");
	cow_forget(v, held.ino, 1);

	check_int(cow_view_close(v), 0, "close the view");
	cow_store_close(st);
	if (!getenv("COWROOT_KEEP"))
		nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return tap_finish();
}
