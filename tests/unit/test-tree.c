/* SPDX-License-Identifier: MIT */
/*
 * test-tree: fsck finds the trees that are not trees.  Stores are crafted
 * through the store API (cow-private.h: the rows a buggy version, an old
 * load or a hand-edited database may leave), one broken image or client
 * per store, and fsck must report what load refuses in a bundle: cycles,
 * a directory with two names, entries in a regular file, a file as root,
 * modes of no file type, entry types other than the object's, nlink other
 * than the names, unreachable objects, bad names.  Export and flatten of a
 * broken image refuse with -EUCLEAN.  A client's view (layers over a
 * base) may hide image objects and keep its own nlink after a rebase:
 * only what breaks a mount is a problem there.
 *
 * Output is TAP (see unit.h).  Set COWROOT_KEEP=1 to keep the temp dir.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include "cow-private.h"
/* unit.h's path helpers are for the tests that walk views */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "unit.h"

static char top[64];
static int nstore;

struct row {
	uint64_t ino; /* relative: 1 is the root */
	uint32_t mode, nlink;
};

struct ent {
	uint64_t parent, ino; /* relative */
	const char *name;
	int type; /* -1: the object's */
};

struct image {
	struct row rows[8];
	struct ent ents[8];
};

/* A valid tree: / with d/ (2), f (3); d/ with g (3 again) and p (4). */
static struct image good(void)
{
	return (struct image){
	    .rows = {{1, S_IFDIR | 0755, 3}, {2, S_IFDIR | 0755, 2}, {3, S_IFREG | 0644, 2}, {4, S_IFIFO | 0600, 1}},
	    .ents = {{1, 2, "d", -1}, {1, 3, "f", -1}, {2, 3, "g", -1}, {2, 4, "p", -1}},
	};
}

static uint32_t mode_of(const struct image *im, uint64_t ino)
{
	for (int i = 0; i < 8 && im->rows[i].ino; i++)
		if (im->rows[i].ino == ino)
			return im->rows[i].mode;
	return 0;
}

/* The store's ino of crafted object @k: 1 is the layer's root, the rest
 * lie in the range new_store took from the counter. */
static uint64_t ino_at(const struct cow_build *b, uint64_t k)
{
	return k == 1 ? b->root : b->root + 1000 + k;
}

/* Record @im as image @name of @st, in one new layer (as import does). */
static int put_image(struct cow_store *st, const char *name, const struct image *im)
{
	struct cow_build b;
	int r = cow_build_begin(st, name, 0, &b);
	if (r < 0)
		return r;
	struct cow_db *db = st->db;
	for (int i = 0; r == 0 && i < 8 && im->rows[i].ino; i++) {
		const struct row *w = &im->rows[i];
		struct cow_irow row = {.ino = ino_at(&b, w->ino), .mode = w->mode, .nlink = w->nlink};
		r = cow_db_inode_put(db, b.layer, &row);
	}
	for (int i = 0; r == 0 && i < 8 && im->ents[i].name; i++) {
		const struct ent *e = &im->ents[i];
		int type = e->type >= 0 ? e->type : (int)IFTODT(mode_of(im, e->ino));
		r = cow_db_dirent_put(db, b.layer, ino_at(&b, e->parent), e->name, ino_at(&b, e->ino), type);
	}
	return cow_build_finish(&b, name, r);
}

struct log {
	char text[4096];
	int n;
};

static void log_line(void *arg, const char *line)
{
	struct log *l = arg;
	size_t len = strlen(l->text);
	snprintf(l->text + len, sizeof(l->text) - len, "%s; ", line);
	l->n++;
	printf("# fsck: %s\n", line);
}

static struct cow_store *new_store(void)
{
	char dir[128];
	struct cow_store *st;
	snprintf(dir, sizeof(dir), "%s/s%d", top, nstore++);
	if (cow_store_open(dir, COW_STORE_CREATE, &st) < 0)
		bail(dir);
	/* the inos the crafted rows use are taken from the counter */
	uint64_t first;
	cow_db_lock(st->db);
	if (cow_db_begin(st->db) < 0 || cow_db_alloc_inos(st->db, 4096, &first) < 0 || cow_db_commit(st->db, true) < 0)
		bail("alloc inos");
	cow_db_unlock(st->db);
	return st;
}

/* fsck of @st reports a problem of its trees saying @want. */
static void check_found(struct cow_store *st, const char *want, const char *what)
{
	struct cow_fsck_report rep;
	struct log l = {0};
	memset(&rep, 0, sizeof(rep));
	int r = cow_fsck(st, false, log_line, &l, &rep);
	char details[4200];
	snprintf(details, sizeof(details), "returned %d, %llu tree problem(s): %s", r,
		 (unsigned long long)rep.tree_problems, l.text);
	check(r == 0 && rep.tree_problems > 0 && strstr(l.text, want), details, "fsck finds %s ('%s')", what, want);
}

static void check_clean(struct cow_store *st, const char *what)
{
	struct cow_fsck_report rep;
	struct log l = {0};
	memset(&rep, 0, sizeof(rep));
	int r = cow_fsck(st, false, log_line, &l, &rep);
	char details[4200];
	snprintf(details, sizeof(details), "returned %d: %s", r, l.text);
	check(r == 0 && l.n == 0 && rep.tree_problems == 0, details, "fsck finds nothing wrong with %s", what);
}

/* A store with @im as image "img": fsck must say @want; export and
 * flatten refuse with @export_r (0: they work). */
static void broken(const struct image *im, const char *want, int export_r, const char *what)
{
	struct cow_store *st = new_store();
	if (!check_int(put_image(st, "img", im), 0, "record an image with %s", what)) {
		cow_store_close(st);
		return;
	}
	check_found(st, want, what);
	if (export_r) {
		char bundle[128];
		snprintf(bundle, sizeof(bundle), "%s/broken.bundle", top);
		check_int(cow_image_export(st, "img", bundle, NULL, NULL), export_r, "export of an image with %s",
			  what);
		check_int(cow_image_flatten(st, "img", "flat", NULL, NULL), export_r, "flatten of an image with %s",
			  what);
	}
	cow_store_close(st);
}

static void test_images(void)
{
	struct image im = good();
	struct cow_store *st = new_store();
	check_int(put_image(st, "img", &im), 0, "record a valid crafted image");
	check_clean(st, "a valid crafted image");
	cow_store_close(st);

	im = good();
	im.rows[4] = (struct row){5, S_IFDIR | 0755, 3};
	im.rows[5] = (struct row){6, S_IFDIR | 0755, 3};
	im.ents[4] = (struct ent){5, 6, "b", -1};
	im.ents[5] = (struct ent){6, 5, "a", -1};
	broken(&im, "cycle", 0, "two directories in each other (a cycle)");
	im = good();
	im.ents[4] = (struct ent){2, 1, "up", -1};
	im.rows[1].nlink = 3;
	broken(&im, "is named by an entry", 0, "the root inside its own subdirectory");
	im = good();
	im.ents[4] = (struct ent){3, 2, "d2", -1};
	broken(&im, "not a directory", 0, "an entry in a regular file");
	im = good();
	im.ents[4] = (struct ent){1, 2, "d2", -1};
	im.rows[0].nlink = 4;
	broken(&im, "named twice", -EUCLEAN, "a directory under two names");
	im = good();
	im.rows[3].mode = 0600;
	broken(&im, "no valid file type", -EUCLEAN, "a mode of no file type");
	im = good();
	im.ents[3].type = DT_REG;
	broken(&im, "says type", 0, "an entry type other than its object's");
	im = good();
	im.rows[2].nlink = 1;
	broken(&im, "nlink 1 but 2", 0, "a file's nlink below its names");
	im = good();
	im.rows[0].nlink = 7;
	broken(&im, "not 2 + its 1 subdirectories", 0, "a directory's nlink not 2 + its subdirectories");
	im = good();
	im.rows[4] = (struct row){5, S_IFREG | 0644, 1};
	broken(&im, "in no directory", 0, "an object no entry names");
	im = good();
	im.ents[3].name = "a/b";
	broken(&im, "not one", 0, "a name with '/'");
	im = good();
	im.ents[3].name = "..";
	broken(&im, "not one", 0, "a name '..'");
	{
		static char longname[300];
		memset(longname, 'n', 256);
		im = good();
		im.ents[3].name = longname;
		broken(&im, "256 bytes", 0, "a name of 256 bytes");
	}
	im = good();
	im.ents[4] = (struct ent){2, 9, "ghost", DT_REG};
	broken(&im, "which does not exist", 0, "an entry naming a missing object");

	/* a root that is a regular file: the layer's root row says so */
	st = new_store();
	im = good();
	im.rows[0].mode = S_IFREG | 0644;
	im.rows[0].nlink = 1;
	im.ents[0] = (struct ent){0};
	check_int(put_image(st, "img", &im), 0, "record an image whose root is a regular file");
	check_found(st, "is a regular file, not a directory", "a regular file as root");
	cow_store_close(st);
}

/* Clients: their views are layers over the image. */
static void test_clients(void)
{
	struct image im = good();
	struct cow_store *st = new_store();
	struct cow_client_info ci;
	struct cow_view *v;
	if (put_image(st, "img", &im) < 0 || cow_client_add(st, "c", "img") < 0 || cow_client_get(st, "c", &ci) < 0)
		bail("client setup");
	/* what a rebase leaves (the client's own object under a name the
	 * image also made, hiding the image's; its own nlink) is fine */
	uint64_t root;
	if (cow_view_open(st, "c", NULL, 0, &v) < 0)
		bail("open c");
	root = cow_view_root(v);
	cow_view_close(v);
	struct cow_db *db = st->db;
	uint64_t f_ino, d_ino;
	int type;
	cow_db_lock(db);
	cow_db_begin(db);
	uint64_t image_layer;
	cow_db_image_get(db, "img", &image_layer);
	cow_db_dirent_get(db, image_layer, root, "f", &f_ino, &type);
	cow_db_dirent_get(db, image_layer, root, "d", &d_ino, &type);
	struct cow_irow own = {.ino = 3000, .mode = S_IFREG | 0644, .nlink = 1};
	cow_db_inode_put(db, ci.layer, &own);
	cow_db_dirent_put(db, ci.layer, d_ino, "g", 3000, DT_REG);
	cow_db_commit(db, true);
	cow_db_unlock(db);
	check_clean(st, "a client hiding an image object under its own (as a rebase leaves)");

	/* what breaks a mount is found in a client too */
	cow_db_lock(db);
	cow_db_begin(db);
	cow_db_dirent_put(db, ci.layer, f_ino, "x", 3000, DT_REG);
	cow_db_commit(db, true);
	cow_db_unlock(db);
	check_found(st, "client 'c': entry 'x' is in", "in a client, an entry in a regular file");
	cow_db_lock(db);
	cow_db_begin(db);
	cow_db_dirent_del(db, ci.layer, f_ino, "x");
	cow_db_dirent_put(db, ci.layer, root, "d-again", d_ino, DT_DIR);
	cow_db_commit(db, true);
	cow_db_unlock(db);
	check_found(st, "client 'c': directory", "in a client, a directory under two names");
	cow_db_lock(db);
	cow_db_begin(db);
	cow_db_dirent_del(db, ci.layer, root, "d-again");
	cow_db_dirent_put(db, ci.layer, root, "f-as-dir", f_ino, DT_DIR);
	cow_db_commit(db, true);
	cow_db_unlock(db);
	check_found(st, "says type", "in a client, an entry type other than its object's");
	cow_store_close(st);
}

/* Import records nlink as the image has it: a hardlink whose other name
 * is outside the imported tree has one name there. */
static void test_import_counts(void)
{
	char src[128], p[192], q[192];
	snprintf(src, sizeof(src), "%s/src", top);
	snprintf(p, sizeof(p), "%s/src/inner", top);
	if (mkdir(src, 0755) < 0 || mkdir(p, 0755) < 0)
		bail(p);
	snprintf(p, sizeof(p), "%s/src/inner/linked", top);
	snprintf(q, sizeof(q), "%s/src/outside", top);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "x\n", 2) != 2 || link(p, q) < 0)
		bail(p);
	close(fd);
	snprintf(p, sizeof(p), "%s/src/inner/sub", top);
	if (mkdir(p, 0755) < 0)
		bail(p);
	struct cow_store *st = new_store();
	snprintf(p, sizeof(p), "%s/src/inner", top);
	check_int(cow_image_import(st, "inner", p, NULL, NULL), 0, "import a tree with a hardlink leaving it");
	struct cow_view *v;
	struct cow_attr a;
	if (cow_view_open(st, NULL, "inner", COW_VIEW_READONLY, &v) == 0) {
		int r = cow_lookup(v, cow_view_root(v), "linked", &a);
		check(r == 0 && a.nlink == 1, "nlink is the source's 2", "its one name in the image gives nlink 1");
		if (r == 0)
			cow_forget(v, a.ino, 1);
		r = cow_getattr(v, cow_view_root(v), &a);
		check(r == 0 && a.nlink == 3, "wrong", "the root's nlink is 2 + its one subdirectory");
		cow_view_close(v);
	}
	check_clean(st, "an imported tree with a hardlink leaving it");
	cow_store_close(st);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(top, sizeof(top), "/tmp/cowroot-tree-XXXXXX");
	if (!mkdtemp(top))
		bail("mkdtemp");
	printf("# temp dir %s\n", top);
	test_images();
	test_clients();
	test_import_counts();
	if (!getenv("COWROOT_KEEP"))
		nftw(top, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
	else
		printf("# kept %s\n", top);
	return tap_finish();
}
