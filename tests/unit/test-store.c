/* SPDX-License-Identifier: MIT */
/*
 * The store's own safety: what a store refuses to open (an empty, foreign
 * or newer database; a database marked damaged, for writing), what gc and
 * fsck never remove (data of layers the database never knew), what fsck
 * can and cannot repair, and that operations acknowledged in a batch
 * survive a batch whose commit fails (sqlite I/O errors injected through
 * a VFS that wraps the default one).
 *
 * This test, not the core, includes sqlite3.h: to build foreign and
 * damaged databases and to inject faults under the store.
 */
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sqlite3.h>

#include "unit.h"

static char top[256];
static const struct cow_cred cred = {.uid = 0, .gid = 0, .umask = 022};

/* ---- a VFS whose writes to the WAL fail on demand ---- */

static sqlite3_vfs *real_vfs;
static int wal_write_faults; /* writes of the WAL still to fail */
static int wal_fault_code = SQLITE_IOERR_WRITE;

struct shim_file {
	sqlite3_file base;
	bool wal;
	sqlite3_file real[]; /* the real VFS's file, szOsFile bytes */
};

#define REAL(f) (((struct shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int shim_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int shim_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (((struct shim_file *)f)->wal && wal_write_faults > 0) {
		wal_write_faults--;
		return wal_fault_code;
	}
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int shim_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int shim_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int shim_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int shim_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int shim_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int shim_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int shim_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int shim_shmmap(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, pp);
}
static int shim_shmlock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void shim_shmbarrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int shim_shmunmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	/* no memory-mapped reads: every read goes through xRead */
	(void)f, (void)off, (void)n;
	*pp = NULL;
	return SQLITE_OK;
}
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	(void)f, (void)off, (void)p;
	return SQLITE_OK;
}

static const sqlite3_io_methods shim_io = {
    .iVersion = 3,
    .xClose = shim_close,
    .xRead = shim_read,
    .xWrite = shim_write,
    .xTruncate = shim_truncate,
    .xSync = shim_sync,
    .xFileSize = shim_size,
    .xLock = shim_lock,
    .xUnlock = shim_unlock,
    .xCheckReservedLock = shim_reserved,
    .xFileControl = shim_fcntl,
    .xSectorSize = shim_sector,
    .xDeviceCharacteristics = shim_devchar,
    .xShmMap = shim_shmmap,
    .xShmLock = shim_shmlock,
    .xShmBarrier = shim_shmbarrier,
    .xShmUnmap = shim_shmunmap,
    .xFetch = shim_fetch,
    .xUnfetch = shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *outflags)
{
	(void)vfs;
	struct shim_file *s = (struct shim_file *)f;
	int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, outflags);
	s->base.pMethods = rc == SQLITE_OK && s->real->pMethods ? &shim_io : NULL;
	s->wal = (flags & SQLITE_OPEN_WAL) != 0;
	return rc;
}

static sqlite3_vfs shim_vfs;

static void shim_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	shim_vfs = *real_vfs;
	shim_vfs.zName = "cowroot-test-faults";
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	sqlite3_vfs_register(&shim_vfs, 1);
}

/* ---- helpers ---- */

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, n) != (ssize_t)n)
		bail(path);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat s;
	return stat(path, &s) == 0 ? s.st_size : -1;
}

static bool exists(const char *path)
{
	struct stat s;
	return lstat(path, &s) == 0;
}

static void sql(const char *db, const char *text)
{
	sqlite3 *h;
	char *e = NULL;
	if (sqlite3_open(db, &h) != SQLITE_OK || sqlite3_exec(h, text, NULL, NULL, &e) != SQLITE_OK) {
		fprintf(stderr, "sqlite on %s: %s\n", db, e ? e : sqlite3_errmsg(h));
		bail("sql");
	}
	sqlite3_close(h);
}

/* The first line of sqlite's own integrity check of @db, "" if it is ok. */
static void first_finding(const char *db, char *buf, size_t size)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	if (sqlite3_open(db, &h) != SQLITE_OK || sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &s, NULL) != 0)
		bail("integrity_check");
	const unsigned char *t = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
	snprintf(buf, size, "%s", t && strcmp((const char *)t, "ok") ? (const char *)t : "");
	sqlite3_finalize(s);
	sqlite3_close(h);
}

/* A store with image "base" (a file and a directory) and client "c1". */
static void make_store(const char *dir)
{
	char src[512], p[600];
	snprintf(src, sizeof(src), "%s.src", dir);
	mkdir(src, 0755);
	snprintf(p, sizeof(p), "%s/etc", src);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/etc/hostname", src);
	write_file(p, "base\n", 5);
	struct cow_store *st;
	if (cow_store_open(dir, COW_STORE_CREATE, &st) < 0 || cow_image_import(st, "base", src, NULL, NULL) < 0 ||
	    cow_client_add(st, "c1", "base") < 0)
		bail("make_store");
	cow_store_close(st);
}

static int open_rc(const char *dir, int flags)
{
	struct cow_store *st = NULL;
	int r = cow_store_open(dir, flags, &st);
	if (r == 0)
		cow_store_close(st);
	return r;
}

struct fsck_lines {
	char text[4096];
};

static void fsck_log(void *arg, const char *line)
{
	struct fsck_lines *l = arg;
	size_t n = strlen(l->text);
	snprintf(l->text + n, sizeof(l->text) - n, "%s\n", line);
}

static int fsck(const char *dir, bool repair, struct cow_fsck_report *rep, struct fsck_lines *lines)
{
	struct cow_store *st;
	int r = cow_store_open(dir, repair ? COW_STORE_REPAIR : COW_STORE_READONLY, &st);
	if (r < 0)
		return r;
	lines->text[0] = 0;
	r = cow_fsck(st, repair, fsck_log, lines, rep);
	cow_store_close(st);
	return r;
}

/* ---- the tests ---- */

static void test_identity(void)
{
	char dir[512], db[600], data[600], p[700];

	/* an empty database file beside the data of a real store */
	snprintf(dir, sizeof(dir), "%s/empty", top);
	make_store(dir);
	snprintf(db, sizeof(db), "%s/cowroot.db", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	unlink(db);
	write_file(db, "", 0);
	check_int(open_rc(dir, 0), -ENODATA, "a writer refuses an empty cowroot.db (-ENODATA)");
	check(strstr(cow_store_open_errmsg(), "cowroot.db") && strstr(cow_store_open_errmsg(), "empty"),
	      cow_store_open_errmsg(), "the refusal names the file and says it is empty");
	check_int(open_rc(dir, COW_STORE_READONLY), -ENODATA, "a reader refuses it too");
	check_int(open_rc(dir, COW_STORE_REPAIR), -ENODATA, "and so does fsck --repair");
	check_int(open_rc(dir, COW_STORE_CREATE), -EEXIST, "init does not take it over either");
	check(file_size(db) == 0, "cowroot.db was written", "the empty file is left as it was (0 bytes)");
	snprintf(p, sizeof(p), "%s/1", data);
	check(exists(p), "data/1 is gone", "the image's data files are untouched");

	/* a sqlite database of another program */
	snprintf(dir, sizeof(dir), "%s/foreign", top);
	make_store(dir);
	snprintf(db, sizeof(db), "%s/cowroot.db", dir);
	unlink(db);
	sql(db, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')");
	check_int(open_rc(dir, 0), -EMEDIUMTYPE, "a database without cowroot's schema is refused (-EMEDIUMTYPE)");
	unlink(db);
	sql(db, "PRAGMA application_id = 1234; PRAGMA user_version = 1; CREATE TABLE meta (key, value)");
	check_int(open_rc(dir, 0), -EMEDIUMTYPE, "a database with another program's application id is refused");
	unlink(db);
	static const char junk[] = "this is no database at all, but it is long enough to be read as one ........";
	write_file(db, junk, sizeof(junk));
	check_int(open_rc(dir, 0), -EMEDIUMTYPE, "a file that is no database is refused");
	check(file_size(db) == (off_t)sizeof(junk), "the file changed", "and left as it was");

	/* newer than this program */
	snprintf(dir, sizeof(dir), "%s/newer", top);
	make_store(dir);
	snprintf(db, sizeof(db), "%s/cowroot.db", dir);
	sql(db, "PRAGMA user_version = 999");
	check_int(open_rc(dir, 0), -EPROTO, "a newer schema is refused (-EPROTO)");
	check(strstr(cow_store_open_errmsg(), "999") != NULL, cow_store_open_errmsg(), "naming its version");
	check_int(open_rc(dir, COW_STORE_READONLY), -EPROTO, "by readers too");

	/* a store made before the application id: still opens, and gets it */
	snprintf(dir, sizeof(dir), "%s/legacy", top);
	make_store(dir);
	snprintf(db, sizeof(db), "%s/cowroot.db", dir);
	sql(db, "PRAGMA application_id = 0");
	check_int(open_rc(dir, COW_STORE_READONLY), 0, "a cowroot store without the application id opens read-only");
	check_int(open_rc(dir, 0), 0, "and for writing");
	sqlite3 *h;
	sqlite3_stmt *s;
	int app = 0;
	if (sqlite3_open(db, &h) == SQLITE_OK && sqlite3_prepare_v2(h, "PRAGMA application_id", -1, &s, NULL) == 0) {
		if (sqlite3_step(s) == SQLITE_ROW)
			app = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	check(app == 0x636f7772, "no id", "a writer stamps cowroot's application id into it");
}

/* Data of layers the database never recorded: neither gc nor fsck
 * --repair removes it (a database replaced by another's must not cost
 * the data of the one before). */
static void test_unknown_layers(void)
{
	char dir[512], p[700];
	snprintf(dir, sizeof(dir), "%s/unknown", top);
	make_store(dir);
	snprintf(p, sizeof(p), "%s/data/77", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/data/77/01", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/data/77/01/0000000000000001", dir);
	write_file(p, "precious", 8);

	struct cow_store *st;
	struct cow_gc_report g;
	if (cow_store_open(dir, 0, &st) < 0)
		bail("open unknown");
	check_int(cow_gc(st, NULL, NULL, &g), 0, "gc with data of an unknown layer beside the store");
	cow_store_close(st);
	check(exists(p), "removed", "gc leaves the data of a layer the database never recorded");

	struct cow_fsck_report rep;
	struct fsck_lines lines;
	check_int(fsck(dir, true, &rep, &lines), 0, "fsck --repair");
	check(exists(p), lines.text, "fsck --repair leaves it too");
	check(rep.unknown_layers == 1 && strstr(lines.text, "data/77"), lines.text, "and reports it (data/77)");

	/* a layer that was recorded and is gone (gc crashed after its
	 * records went): its files are leftovers, and go */
	snprintf(p, sizeof(p), "%s/data/1/ff", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/data/1/ff/00000000000000ff", dir);
	write_file(p, "orphan", 6);
	check_int(fsck(dir, true, &rep, &lines), 0, "fsck --repair with an orphan of a known layer");
	check(!exists(p) && rep.orphan_files == 1, lines.text, "an orphan of a layer the database knows is removed");
}

static void test_damaged(void)
{
	char dir[512], db[600], mark[600];
	struct cow_fsck_report rep;
	struct fsck_lines lines;

	/* index damage: the index of client ids misses its rows' changes */
	snprintf(dir, sizeof(dir), "%s/damaged", top);
	make_store(dir);
	snprintf(db, sizeof(db), "%s/cowroot.db", dir);
	snprintf(mark, sizeof(mark), "%s/cowroot.db-damaged", dir);
	sql(db, "PRAGMA writable_schema = ON;"
		" UPDATE sqlite_schema SET sql = 'CREATE UNIQUE INDEX clients_id ON clients(id) WHERE 0'"
		"  WHERE name = 'clients_id';");
	/* a new connection sees the partial index, so this insert skips it */
	sql(db, "INSERT INTO clients (name, image, layer, created, id) VALUES ('x', 'base', 1, 0, 999);"
		" PRAGMA writable_schema = ON;"
		" UPDATE sqlite_schema SET sql = 'CREATE UNIQUE INDEX clients_id ON clients(id)'"
		"  WHERE name = 'clients_id';");
	check_int(fsck(dir, false, &rep, &lines), 0, "fsck of a database with a damaged index");
	check(!rep.db_ok, lines.text, "fsck finds the damage");
	check(exists(mark), "no mark", "and marks the store damaged");
	check_int(open_rc(dir, 0), -EUCLEAN, "writers are refused while it is marked (-EUCLEAN)");
	check(strstr(cow_store_open_errmsg(), "integrity") != NULL, cow_store_open_errmsg(),
	      "saying it failed its integrity check");
	check_int(open_rc(dir, COW_STORE_READONLY), 0, "readers may still open it (to copy what is there)");
	check_int(fsck(dir, true, &rep, &lines), 0, "fsck --repair");
	check(rep.db_ok && rep.db_repaired, lines.text, "rebuilds the index: the database passes");
	check(!exists(mark), "still marked", "and clears the mark");
	check_int(open_rc(dir, 0), 0, "writers may open the store again");
	check_int(fsck(dir, false, &rep, &lines), 0, "fsck after the repair");
	check(rep.db_ok && !rep.db_marked, lines.text, "is clean");

	/* damage in a table's pages: not something fsck can rebuild */
	snprintf(dir, sizeof(dir), "%s/torn", top);
	make_store(dir);
	snprintf(db, sizeof(db), "%s/cowroot.db", dir);
	snprintf(mark, sizeof(mark), "%s/cowroot.db-damaged", dir);
	{
		/* checkpoint, then overwrite the middle of the inodes table's root page */
		sql(db, "PRAGMA wal_checkpoint(TRUNCATE)");
		sqlite3 *h;
		sqlite3_stmt *s;
		int root = 0, psize = 4096;
		sqlite3_open(db, &h);
		if (sqlite3_prepare_v2(h, "SELECT rootpage FROM sqlite_schema WHERE name = 'inodes'", -1, &s, NULL) ==
		    0) {
			if (sqlite3_step(s) == SQLITE_ROW)
				root = sqlite3_column_int(s, 0);
			sqlite3_finalize(s);
		}
		if (sqlite3_prepare_v2(h, "PRAGMA page_size", -1, &s, NULL) == 0) {
			if (sqlite3_step(s) == SQLITE_ROW)
				psize = sqlite3_column_int(s, 0);
			sqlite3_finalize(s);
		}
		sqlite3_close(h);
		int fd = open(db, O_WRONLY);
		char junk[512];
		memset(junk, 0xa5, sizeof(junk));
		if (root < 2 || fd < 0 || pwrite(fd, junk, sizeof(junk), (off_t)(root - 1) * psize + 8) != 512)
			bail("tear a page");
		close(fd);
	}
	check_int(fsck(dir, true, &rep, &lines), 0, "fsck --repair of a database with a torn table page");
	check(!rep.db_ok && rep.db_unrepairable, lines.text, "says the damage cannot be repaired");
	check(strstr(lines.text, "restore") != NULL, lines.text, "and to restore the database");
	check_int(open_rc(dir, 0), -EUCLEAN, "writers stay refused");

	/* findings longer than the message has room for: the first ones, cut */
	snprintf(dir, sizeof(dir), "%s/long-findings", top);
	make_store(dir);
	snprintf(db, sizeof(db), "%s/cowroot.db", dir);
	{
		char idx[201], text[1024];
		memset(idx, 'i', sizeof(idx) - 1);
		idx[sizeof(idx) - 1] = 0;
		snprintf(text, sizeof(text),
			 "CREATE INDEX %s ON clients(created); PRAGMA writable_schema = ON;"
			 " UPDATE sqlite_schema SET sql = 'CREATE INDEX %s ON clients(created) WHERE 0'"
			 "  WHERE name = '%s';",
			 idx, idx, idx);
		sql(db, text);
		snprintf(text, sizeof(text),
			 "INSERT INTO clients (name, image, layer, created, id) VALUES"
			 " ('x', 'base', 901, 0, 901), ('y', 'base', 902, 0, 902), ('z', 'base', 903, 0, 903);"
			 " PRAGMA writable_schema = ON;"
			 " UPDATE sqlite_schema SET sql = 'CREATE INDEX %s ON clients(created)' WHERE name = '%s';",
			 idx, idx);
		sql(db, text);
	}
	/* which finding comes first is sqlite's choice (3.46 counts the
	 * index's entries before it looks for missing rows, 3.40 after) */
	char first[512];
	first_finding(db, first, sizeof(first));
	check(strstr(first, "index iiii") != NULL, first, "sqlite's first finding names the long index");
	check_int(fsck(dir, false, &rep, &lines), 0, "fsck of a database whose findings are long");
	check(!rep.db_ok && strstr(lines.text, first), lines.text, "reports the first of them");
}

/* Operations acknowledged in a batch outlive a batch commit that fails. */
static void test_failed_batch(void)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/batch", top);
	make_store(dir);

	struct cow_store *st;
	struct cow_view *v;
	struct cow_attr a;
	struct cow_file *f;
	if (cow_store_open(dir, 0, &st) < 0 || cow_view_open(st, "c1", NULL, 0, &v) < 0)
		bail("open batch view");
	uint64_t root = cow_view_root(v);
	check_int(cow_mkdir(v, root, "kept", 0755, &cred, &a), 0, "mkdir in a batch");
	uint64_t kept = a.ino;
	check_int(cow_create(v, kept, "file", 0644, O_RDWR | O_CREAT, &cred, &f, &a), 0, "create in the batch");
	check_int(cow_write(f, "acknowledged", 12, 0), 12, "write to it");
	cow_release(f);

	/* the batch's commit fails: an I/O error writing the WAL */
	wal_write_faults = 1000;
	int r = cow_view_sync(v);
	check(r < 0, "sync succeeded", "a sync while the WAL cannot be written fails (%d)", r);
	check_int(cow_mkdir(v, root, "later", 0755, &cred, &a), -EIO,
		  "a new operation fails, unacknowledged, while the failed batch is not committed");
	check_int(cow_lookup(v, root, "kept", &a), 0, "what was acknowledged is still seen");
	cow_forget(v, a.ino, 1);
	wal_write_faults = 0;
	check_int(cow_view_sync(v), 0, "once the disk works again the sync succeeds");
	check_int(cow_mkdir(v, root, "after", 0755, &cred, &a), 0, "and so do new operations");

	/* a disk full past the reserve fails a commit, once */
	check_int(cow_mkdir(v, root, "full", 0755, &cred, &a), 0, "mkdir before a full-disk commit");
	wal_fault_code = SQLITE_FULL;
	wal_write_faults = 1;
	check_int(cow_view_sync(v), 0, "a commit that fails once is done again at once");
	wal_fault_code = SQLITE_IOERR_WRITE;
	check_int(cow_view_close(v), 0, "close");
	cow_store_close(st);

	if (cow_store_open(dir, 0, &st) < 0 || cow_view_open(st, "c1", NULL, 0, &v) < 0)
		bail("reopen batch view");
	root = cow_view_root(v);
	const char *names[] = {"kept", "after", "full"};
	for (size_t i = 0; i < 3; i++) {
		r = cow_lookup(v, root, names[i], &a);
		check_int(r, 0, "after a reopen, '%s' (acknowledged before a failed commit or after it) is there",
			  names[i]);
		if (r == 0)
			cow_forget(v, a.ino, 1);
	}
	check_int(cow_lookup(v, root, "later", &a), -ENOENT, "the refused operation left nothing");
	r = cow_lookup(v, kept, "file", &a);
	char buf[32] = "";
	if (check_int(r, 0, "the file created in the failed batch is there") && cow_open(v, a.ino, O_RDONLY, &f) == 0) {
		ssize_t n = cow_read(f, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		cow_release(f);
		check(!strcmp(buf, "acknowledged"), buf, "with its data");
	}
	if (r == 0)
		cow_forget(v, a.ino, 1);
	cow_view_close(v);
	struct cow_fsck_report rep;
	struct fsck_lines lines;
	cow_store_close(st);
	check_int(fsck(dir, false, &rep, &lines), 0, "fsck after the failed batches");
	check(rep.db_ok && rep.orphan_files + rep.missing_data + rep.dangling == 0, lines.text, "is clean");
}

/* A failed import names the path it could not read. */
static void test_import_path(void)
{
	char dir[512], src[600], p[700];
	snprintf(dir, sizeof(dir), "%s/imp", top);
	snprintf(src, sizeof(src), "%s/imp-src", top);
	snprintf(p, sizeof(p), "%s/usr/share/doc", src);
	char cmd[4096];
	chmod(top, 0755); /* for the unprivileged user below */
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && echo secret > '%s/usr/share/doc/hidden' && chmod 000 "
		 "'%s/usr/share/doc/hidden' && chown -R 65534:65534 '%s' && mkdir -p '%s' && chown 65534:65534 '%s'",
		 p, src, src, src, dir, dir);
	if (system(cmd) != 0)
		bail("import-path setup");
	/* as an unprivileged user, whom the mode 000 file keeps out */
	int fds[2];
	if (pipe(fds) < 0)
		bail("pipe");
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		char msg[2048] = "";
		struct cow_store *st;
		if (setgid(65534) < 0 || setuid(65534) < 0)
			snprintf(msg, sizeof(msg), "setuid failed");
		else if (cow_store_open(dir, COW_STORE_CREATE, &st) < 0)
			snprintf(msg, sizeof(msg), "store open failed");
		else {
			int r = cow_image_import(st, "img", src, NULL, NULL);
			snprintf(msg, sizeof(msg), "%d %s", r, cow_store_errmsg(st) ? cow_store_errmsg(st) : "(none)");
			cow_store_close(st);
		}
		if (write(fds[1], msg, strlen(msg)) < 0)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	char msg[2048];
	ssize_t n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	msg[n > 0 ? n : 0] = 0;
	char want[800];
	snprintf(want, sizeof(want), "'%s/usr/share/doc/hidden': Permission denied", src);
	check(atoi(msg) == -EACCES && strstr(msg, want), msg, "a failed import names the file it could not read");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(top, sizeof(top), "/tmp/cowroot-store-XXXXXX");
	if (!mkdtemp(top))
		bail("mkdtemp");
	printf("# temp dir %s\n", top);
	shim_install();
	test_identity();
	test_unknown_layers();
	test_damaged();
	test_failed_batch();
	test_import_path();
	if (n_failed == 0) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", top);
	}
	return tap_finish();
}
