/* SPDX-License-Identifier: MIT */
/*
 * The database connection.  With store-tables.c (the statements of the
 * tables and the functions over them) it is the store, the only code that
 * includes sqlite3.h (through store-private.h); statements are prepared
 * once and kept for the life of the connection.  Callers hold the db lock
 * around every call and group writes in cow_db_begin/commit.
 * SQLITE_BUSY/FULL/NOMEM/CORRUPT become -EAGAIN/-ENOSPC/-ENOMEM/-EIO.
 *
 * Several processes may write one store (a mount per client, the CLI).
 * A view keeps its write transaction open for a batch (up to a second)
 * and begins the next one right after committing; sqlite's own busy
 * handler, sleeping between tries, would then almost never find the
 * database free, and another writer starved until its timeout.  So
 * writers take turns through a lock file beside the database (see
 * turn_yield): a writer kept waiting says so, and the holder ends its
 * batch early and lets it go first.
 *
 * Reads, too, share one transaction while batching is on (see read_begin):
 * a query on its own is a transaction of its own, and in WAL mode each
 * one begins and ends with locks on the shared index (fcntl) and a look
 * at the file's size; a lookup-heavy load (a fleet booting over NFS) did
 * more of those system calls than of its own work.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "store-private.h"

extern const char *const cow_schema_migrations[];
extern const int cow_schema_version;

#define BUSY_TIMEOUT_MS 10000
#define COW_APPLICATION_ID 0x636f7772 /* "cowr", in the database header */
#define WAL_NAME "cowroot.db-wal"
#define SHM_NAME "cowroot.db-shm"
#define TURN_NAME "cowroot.db-turn"
#define DAMAGED_NAME "cowroot.db-damaged"
#define RESERVE_NAME "reserve"
#define TURN_CHECK_MS 20 /* how often an open batch looks for a waiting writer */
#define TURN_YIELD_MS 50 /* at most this long for a waiting writer to begin */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The turn is one byte of <db>-turn, locked (an open file description
 * lock) by the writer that waits for the database's write lock. */
static int turn_lock(struct cow_db *db, short type, int cmd)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	return fcntl(db->turn_fd, cmd, &fl);
}

static void turn_release(struct cow_db *db)
{
	if (db->turn_held) {
		turn_lock(db, F_UNLCK, F_OFD_SETLK);
		db->turn_held = false;
	}
}

/* Does another writer wait for the write lock? */
static bool turn_waiting(struct cow_db *db)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	return db->turn_fd >= 0 && fcntl(db->turn_fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* Before taking the write lock: if another writer waits for it, let it
 * begin first (it lets go of the turn once it has begun).  Bounded, so a
 * writer stopped while waiting holds nobody up for long. */
static void turn_yield(struct cow_db *db)
{
	if (!turn_waiting(db))
		return;
	int64_t end = mono_ms() + TURN_YIELD_MS;
	do
		usleep(1000);
	while (turn_waiting(db) && mono_ms() < end);
}

/* sqlite's busy handler: poll often (a holder lets go only briefly) and
 * claim the turn, so that the holder lets us go first. */
static int busy_wait(void *arg, int count)
{
	struct cow_db *db = arg;
	int64_t now = mono_ms();
	if (count == 0)
		db->busy_since = now;
	else if (now - db->busy_since >= BUSY_TIMEOUT_MS)
		return 0;
	if (!db->turn_held && db->turn_fd >= 0 && turn_lock(db, F_WRLCK, F_OFD_SETLK) == 0)
		db->turn_held = true;
	usleep(count < 10 ? 500 : 2000);
	return 1;
}

/* After a statement: if no transaction is open now, whatever it wrote
 * is committed, one more for cow_db_sync to cover.  Counted once the commit
 * is written (sqlite's commit hook runs before), and read-only
 * statements count too: a count too many costs at most a sync. */
static void count_commit(struct cow_db *db)
{
	if (sqlite3_get_autocommit(db->sql))
		atomic_fetch_add(&db->commits, 1);
}

static int sync_data(struct cow_db *db);
static void reserve_check(struct cow_db *db);
static int redo_record(struct cow_db *db, sqlite3_stmt *s);
static int redo_replay(struct cow_db *db);
static int redo_due_first(struct cow_db *db);
static void redo_truncate(struct cow_db *db, size_t n);

/* Who holds the database's write lock: WAL mode takes it as byte 120 of
 * the -shm file (sqlite's WAL_WRITE_LOCK), an fcntl lock that names its
 * owner's pid; /proc says what that process is. */
static void describe_holder(struct cow_db *db)
{
	int fd = openat(db->dirfd, SHM_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 120, .l_len = 1};
	int rc = fcntl(fd, F_GETLK, &fl);
	close(fd);
	if (rc < 0 || fl.l_type == F_UNLCK)
		return;
	char who[160] = "";
	if (fl.l_pid > 0) {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/%d/cmdline", (int)fl.l_pid);
		int cfd = open(proc, O_RDONLY | O_CLOEXEC);
		ssize_t n = cfd < 0 ? -1 : read(cfd, who, sizeof(who) - 1);
		if (cfd >= 0)
			close(cfd);
		if (n > 0) {
			for (ssize_t i = 0; i < n; i++)
				if (who[i] == 0 || who[i] == '\n')
					who[i] = ' ';
			who[n] = 0;
			while (n > 0 && who[n - 1] == ' ')
				who[--n] = 0;
		}
	}
	if (fl.l_pid <= 0)
		snprintf(db->errmsg, sizeof(db->errmsg),
			 "the database is locked by a process of another pid namespace");
	else if (who[0])
		snprintf(db->errmsg, sizeof(db->errmsg), "the database is locked by process %d (%s)", (int)fl.l_pid,
			 who);
	else
		snprintf(db->errmsg, sizeof(db->errmsg), "the database is locked by process %d", (int)fl.l_pid);
}

int cow_sql_map_rc(struct cow_db *db, int rc)
{
	if (db && db->sql)
		snprintf(db->errmsg, sizeof(db->errmsg), "%s", sqlite3_errmsg(db->sql));
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		if (db && db->sql)
			describe_holder(db);
		return -EAGAIN;
	case SQLITE_CORRUPT:
		/* writes stop until fsck has looked (see cow_db_open) */
		if (db && db->sql) {
			db->damaged = true;
			cow_db_mark_damaged(db, db->errmsg);
		}
		return -EIO;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default: /* NOTADB, IOERR, SCHEMA, ... */
		return -EIO;
	}
}

const char *cow_db_errmsg(struct cow_db *db)
{
	return db && db->errmsg[0] ? db->errmsg : NULL;
}

void cow_db_lock(struct cow_db *db)
{
	pthread_mutex_lock(&db->lock);
}

void cow_db_unlock(struct cow_db *db)
{
	pthread_mutex_unlock(&db->lock);
}

static sqlite3_stmt *prepared(struct cow_db *db, enum stmt_id id)
{
	sqlite3_stmt *s = db->stmt[id];
	if (!s) {
		int rc =
		    sqlite3_prepare_v3(db->sql, cow_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[id], NULL);
		if (rc != SQLITE_OK) {
			cow_sql_map_rc(db, rc);
			return NULL;
		}
		s = db->stmt[id];
	}
	return s;
}

/* End the shared read transaction: the next query sees every commit so
 * far, of this process and of others. */
static void read_end(struct cow_db *db)
{
	if (!db->read_open)
		return;
	if (!sqlite3_get_autocommit(db->sql)) {
		sqlite3_stmt *s = prepared(db, S_COMMIT);
		int rc = s ? sqlite3_step(s) : SQLITE_ERROR;
		if (s)
			sqlite3_reset(s);
		if (rc != SQLITE_DONE && !sqlite3_get_autocommit(db->sql))
			return; /* still open (a query in progress): ended later */
	}
	db->read_open = false;
}

/* Before a query outside any transaction, while batching is on: open a
 * read transaction that later queries share, until cow_db_flush() (the
 * flusher, within a second), a query of clients, images or layers, the
 * end of batching or the next write ends it.  Queries then see the
 * database as it was when the first of them ran, plus this connection's
 * own writes (a writer ends it first).  Only queries of objects (inodes, names, xattrs) share it,
 * and nothing changes those under a running view: its layer is its own
 * and image layers never change.  Clients, images and layers, which
 * other processes change, are always read fresh (see stmt). */
static void read_begin(struct cow_db *db)
{
	if (db->read_open || db->batching == 0 || !sqlite3_get_autocommit(db->sql))
		return;
	sqlite3_stmt *s = prepared(db, S_BEGIN_READ);
	if (!s)
		return;
	if (sqlite3_step(s) == SQLITE_DONE)
		db->read_open = true;
	sqlite3_reset(s);
}

/* The prepared statement @id, reset and unbound. */
sqlite3_stmt *cow_sql_stmt(struct cow_db *db, enum stmt_id id)
{
	sqlite3_stmt *s = prepared(db, id);
	/* object queries share the read transaction; clients, images and
	 * layers (which other processes change) are read fresh; writes, and
	 * BEGIN IMMEDIATE, never join a read transaction (inside a write
	 * transaction there is none to end) */
	if (s && id >= S_INODE_GET && sqlite3_stmt_readonly(s))
		read_begin(db);
	else if (s)
		read_end(db);
	return s;
}

void cow_sql_bind_i64(sqlite3_stmt *s, const char *name, int64_t v)
{
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, name), v);
}

void cow_sql_bind_text(sqlite3_stmt *s, const char *name, const char *v)
{
	sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, name), v, -1, SQLITE_STATIC);
}

void cow_sql_bind_blob(sqlite3_stmt *s, const char *name, const void *v, size_t n)
{
	sqlite3_bind_blob64(s, sqlite3_bind_parameter_index(s, name), v ? v : "", n, SQLITE_STATIC);
}

/* Run @s to completion (no rows expected). */
int cow_sql_run(struct cow_db *db, sqlite3_stmt *s)
{
	if (!s)
		return -EIO;
	int rc = sqlite3_step(s);
	turn_release(db);
	count_commit(db);
	int r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : cow_sql_map_rc(db, rc);
	if (r == 0)
		r = redo_record(db, s); /* failing, the operation fails */
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return r;
}

void cow_sql_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* First step of a query: 1 row, 0 no row, <0 error. */
int cow_sql_step(struct cow_db *db, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	turn_release(db);
	count_commit(db);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return cow_sql_map_rc(db, rc);
}

sqlite3_stmt *cow_sql_prepare_once(struct cow_db *db, const char *sql)
{
	read_end(db);
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		cow_sql_map_rc(db, rc);
		return NULL;
	}
	return s;
}

static int exec(struct cow_db *db, const char *sql)
{
	char *err = NULL;
	read_end(db);
	int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &err);
	turn_release(db);
	count_commit(db);
	if (rc != SQLITE_OK) {
		int r = cow_sql_map_rc(db, rc);
		if (err)
			snprintf(db->errmsg, sizeof(db->errmsg), "%s", err);
		sqlite3_free(err);
		return r;
	}
	return 0;
}

/* One integer from a pragma or a query that returns one row. */
static int query_int(struct cow_db *db, const char *sql, int64_t *ret)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return cow_sql_map_rc(db, rc);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		int r = rc == SQLITE_DONE ? -EIO : cow_sql_map_rc(db, rc);
		sqlite3_finalize(s);
		return r;
	}
	*ret = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return 0;
}

static int user_version(struct cow_db *db, int *ret)
{
	int64_t v;
	int r = query_int(db, "PRAGMA user_version", &v);
	if (r == 0)
		*ret = (int)v;
	return r;
}

/* Is this file a cowroot database this program can use?  Read before
 * anything is written to it: an empty file (a failed copy, a full disk
 * during a restore) must never become a fresh store, whose gc would then
 * remove every data file beside it.  Sets *ret_stamp when the header
 * lacks the application id (stores made before it was written). */
static int check_identity(struct cow_db *db, bool creating, bool *ret_stamp)
{
	int64_t app, version, tables;
	int r = query_int(db, "PRAGMA application_id", &app);
	if (r < 0) {
		int code = sqlite3_errcode(db->sql);
		if (code == SQLITE_NOTADB) {
			snprintf(db->errmsg, sizeof(db->errmsg), "not a database");
			return -EMEDIUMTYPE;
		}
		return r;
	}
	r = query_int(db, "PRAGMA user_version", &version);
	if (r == 0)
		r = query_int(db, "SELECT count(*) FROM sqlite_schema", &tables);
	if (r < 0)
		return r;
	*ret_stamp = app == 0;
	if (app != 0 && app != COW_APPLICATION_ID) {
		snprintf(db->errmsg, sizeof(db->errmsg), "a database of another program (application id %#llx)",
			 (unsigned long long)app);
		return -EMEDIUMTYPE;
	}
	if (version == 0) {
		if (tables == 0) {
			if (creating)
				return 0;
			snprintf(db->errmsg, sizeof(db->errmsg), "the database is empty");
			return -ENODATA;
		}
		snprintf(db->errmsg, sizeof(db->errmsg), "the database holds no cowroot schema");
		return -EMEDIUMTYPE;
	}
	if (creating) {
		snprintf(db->errmsg, sizeof(db->errmsg), "a database is already there");
		return -EEXIST;
	}
	if (version > cow_schema_version) {
		snprintf(db->errmsg, sizeof(db->errmsg), "store schema %lld is newer than this program's %d",
			 (long long)version, cow_schema_version);
		return -EPROTO;
	}
	if (app == 0) {
		/* before the id was written: the tables tell */
		int64_t ours;
		r = query_int(db,
			      "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
			      " AND name IN ('meta', 'layers', 'images', 'clients', 'inodes', 'dirents', 'xattrs')",
			      &ours);
		if (r < 0)
			return r;
		if (ours != 7) {
			snprintf(db->errmsg, sizeof(db->errmsg), "the database holds no cowroot schema");
			return -EMEDIUMTYPE;
		}
	}
	return 0;
}

/* Bring the schema to this program's version.  @creating: the file was
 * found empty by check_identity and is being made a store (only then is
 * version 0 acceptable). */
static int migrate(struct cow_db *db, bool creating, bool stamp)
{
	int version = 0, r;

	r = user_version(db, &version);
	if (r < 0)
		return r;
	if (version == cow_schema_version && !stamp)
		return 0;
	turn_yield(db);
	r = exec(db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	/* re-read inside the write lock: another process may have migrated */
	r = user_version(db, &version);
	if (r == 0 && version == 0 && !creating) {
		snprintf(db->errmsg, sizeof(db->errmsg), "the database is empty");
		r = -ENODATA;
	}
	for (int i = version; r == 0 && i < cow_schema_version; i++)
		r = exec(db, cow_schema_migrations[i]);
	if (r == 0) {
		char sql[96];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d", cow_schema_version,
			 COW_APPLICATION_ID);
		r = exec(db, sql);
	}
	if (r == 0)
		r = exec(db, "COMMIT");
	if (r < 0)
		exec(db, "ROLLBACK");
	return r;
}

static _Thread_local char open_errmsg[256];

const char *cow_db_open_errmsg(void)
{
	return open_errmsg;
}

/* Why the store is marked damaged, or false. */
static bool damaged(int dirfd, char *why, size_t n)
{
	int fd = openat(dirfd, DAMAGED_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno != ENOENT; /* unreadable: assume the worst */
	ssize_t len = read(fd, why, n - 1);
	close(fd);
	why[len > 0 ? len : 0] = 0;
	char *nl = strchr(why, '\n');
	if (nl)
		*nl = 0;
	return true;
}

void cow_db_mark_damaged(struct cow_db *db, const char *why)
{
	if (!db->writer && faccessat(db->dirfd, DAMAGED_NAME, F_OK, 0) == 0)
		return;
	int fd = openat(db->dirfd, DAMAGED_NAME ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return; /* a read-only store: the next writer's check finds it */
	dprintf(fd, "%s\n", why);
	fsync(fd);
	close(fd);
	if (renameat(db->dirfd, DAMAGED_NAME ".tmp", db->dirfd, DAMAGED_NAME) == 0)
		fsync(db->dirfd);
}

bool cow_db_marked_damaged(struct cow_db *db)
{
	return faccessat(db->dirfd, DAMAGED_NAME, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

void cow_db_clear_damaged(struct cow_db *db)
{
	if (unlinkat(db->dirfd, DAMAGED_NAME, 0) == 0)
		fsync(db->dirfd);
}

int cow_db_open(int dirfd, const char *path, int flags, struct cow_db **ret)
{
	struct cow_db *db = calloc(1, sizeof(*db));
	bool creating = flags & COW_STORE_CREATE, stamp = false;
	int r;

	open_errmsg[0] = 0;
	if (!db)
		return -ENOMEM;
	pthread_mutex_init(&db->lock, NULL);
	pthread_mutex_init(&db->sync_lock, NULL);
	db->turn_fd = -1;
	db->writer = !(flags & COW_STORE_READONLY);
	db->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (db->dirfd < 0) {
		r = -errno;
		goto fail;
	}
	if (db->writer && !(flags & COW_STORE_REPAIR)) {
		char why[200];
		if (damaged(db->dirfd, why, sizeof(why))) {
			snprintf(db->errmsg, sizeof(db->errmsg), "the database failed an integrity check (%s)",
				 why[0] ? why : "see " DAMAGED_NAME);
			r = -EUCLEAN;
			goto fail;
		}
	}
	int oflags = SQLITE_OPEN_NOMUTEX;
	if (!db->writer)
		oflags |= SQLITE_OPEN_READONLY;
	else
		oflags |= SQLITE_OPEN_READWRITE | (creating ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path, &db->sql, oflags, NULL);
	if (rc != SQLITE_OK) {
		r = cow_sql_map_rc(db, rc);
		goto fail;
	}
	sqlite3_extended_result_codes(db->sql, 0);
	sqlite3_busy_handler(db->sql, busy_wait, db);
	if (db->writer) {
		db->turn_fd = openat(db->dirfd, TURN_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		/* without it writers just wait their turn less fairly */
	}
	/* what the file is, before anything is written to it */
	r = check_identity(db, creating, &stamp);
	if (r < 0)
		goto fail;
	if (db->writer) {
		r = exec(db, "PRAGMA journal_mode = WAL");
		if (r < 0)
			goto fail;
	}
	r = exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536;"
		     " PRAGMA mmap_size = 268435456; PRAGMA temp_store = MEMORY");
	if (r < 0)
		goto fail;
	if (db->writer) {
		r = migrate(db, creating, stamp);
		if (r < 0)
			goto fail;
		if (creating) {
			/* the new database file's own directory entry */
			r = cow_db_sync(db);
			if (r == 0 && fsync(db->dirfd) < 0)
				r = -errno;
			if (r < 0)
				goto fail;
		}
	} else {
		int version = 0;
		r = user_version(db, &version);
		if (r < 0)
			goto fail;
		if (version != cow_schema_version) {
			/* older: needs a migration (check_identity refused the rest) */
			r = -ESTALE;
			goto fail;
		}
	}
	*ret = db;
	return 0;
fail:
	snprintf(open_errmsg, sizeof(open_errmsg), "%s", db->errmsg);
	if (ret)
		*ret = NULL;
	cow_db_close(db);
	return r;
}

void cow_db_close(struct cow_db *db)
{
	if (!db)
		return;
	if (db->redo_due)
		redo_due_first(db); /* the last chance (cow_db_flush says if it failed) */
	redo_truncate(db, 0);
	free(db->redo);
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(db->stmt[i]);
	sqlite3_close_v2(db->sql);
	sync_data(db);
	free(db->sync_fds);
	free(db->pending.v);
	free(db->committed.v);
	if (db->turn_fd >= 0)
		close(db->turn_fd);
	if (db->dirfd >= 0)
		close(db->dirfd);
	pthread_mutex_destroy(&db->lock);
	pthread_mutex_destroy(&db->sync_lock);
	free(db);
}

static int unlink_add(struct unlink_list *l, uint64_t layer, uint64_t ino)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct cow_data_ref *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct cow_data_ref){.layer = layer, .ino = ino};
	return 0;
}

/* ---- the redo log ----
 * Operations join the open batch and are acknowledged before it commits.
 * If that commit fails (an I/O error, a disk full past the reserve), sqlite
 * rolls the whole transaction back, and what clients were told was done
 * would be gone.  So every write of a batch is also kept as SQL text with
 * its values, and a failed batch is replayed, in a new transaction, until
 * it commits: right away, a few times, then before any later write (which
 * fails, unacknowledged, while it cannot) and at every flush.  The writes
 * of a batch touch only the rows of one view's layer, which no other
 * process writes (the layer lock), so a replay after others committed
 * yields what the batch would have.  An operation committed for real
 * inside a batch (cow_db_begin) that fails is reported failed and dropped
 * from the log. */

#define REDO_MAX_BYTES (32 << 20) /* a batch holding more commits early */
#define REDO_TRIES 4

static void redo_truncate(struct cow_db *db, size_t n)
{
	while (db->nredo > n) {
		char *e = db->redo[--db->nredo];
		db->redo_bytes -= strlen(e);
		sqlite3_free(e);
	}
	if (db->redo_mark > n)
		db->redo_mark = n;
}

/* After statement @s ran inside the open batch: log it if it wrote. */
static int redo_record(struct cow_db *db, sqlite3_stmt *s)
{
	if (!db->batch_open || sqlite3_stmt_readonly(s))
		return 0;
	if (db->nredo == db->capredo) {
		size_t cap = db->capredo ? db->capredo * 2 : 256;
		char **v = realloc(db->redo, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		db->redo = v;
		db->capredo = cap;
	}
	char *sql = sqlite3_expanded_sql(s);
	if (!sql)
		return -ENOMEM;
	db->redo[db->nredo++] = sql;
	db->redo_bytes += strlen(sql);
	return 0;
}

/* Data files whose removal waited for the batch: due now. */
static void unlinks_committed(struct cow_db *db)
{
	for (size_t i = 0; i < db->pending.n; i++)
		if (unlink_add(&db->committed, db->pending.v[i].layer, db->pending.v[i].ino) < 0)
			break; /* left as an orphan for fsck */
	db->pending.n = 0;
}

/* The batch's transaction is gone: do its logged writes again, in a new
 * one, and commit (db lock held; the batch is closed).  When that keeps
 * failing, the writes are done once more and left in an open transaction,
 * the batch again, so that what was acknowledged is still what readers
 * of this connection see; redo_due then holds off every later write until
 * a commit succeeds. */
static int redo_replay(struct cow_db *db)
{
	int r = 0;
	for (int i = 0; i <= REDO_TRIES; i++) {
		if (i) {
			struct timespec ts = {0, 20000000L << i}; /* 40, 80, 160, 320 ms */
			nanosleep(&ts, NULL);
		}
		reserve_check(db);
		int rr = i < REDO_TRIES ? sync_data(db) : 0;
		if (rr == 0)
			rr = exec(db, "BEGIN IMMEDIATE");
		for (size_t k = 0; rr == 0 && k < db->nredo; k++)
			rr = exec(db, db->redo[k]);
		if (i == REDO_TRIES) {
			/* the last round: kept open, uncommitted */
			db->redo_due = true;
			db->batch_open = rr == 0;
			if (rr < 0 && !sqlite3_get_autocommit(db->sql))
				exec(db, "ROLLBACK");
			break;
		}
		if (rr == 0)
			rr = exec(db, "COMMIT");
		if (rr == 0) {
			redo_truncate(db, 0);
			unlinks_committed(db);
			db->redo_due = false;
			return 0;
		}
		r = rr;
		if (!sqlite3_get_autocommit(db->sql))
			exec(db, "ROLLBACK");
	}
	return r;
}

/* The open batch committed (@ok) or failed to: then the writes of its
 * first @keep log entries (the operations already acknowledged) are replayed. */
static int batch_ended(struct cow_db *db, bool ok, size_t keep)
{
	db->batch_open = false;
	if (ok) {
		redo_truncate(db, 0);
		unlinks_committed(db);
		db->redo_due = false;
		return 0;
	}
	redo_truncate(db, keep);
	return redo_replay(db);
}

static int batch_commit(struct cow_db *db, bool durable, size_t keep);

/* Before a write: the writes of a failed batch must commit first. */
static int redo_due_first(struct cow_db *db)
{
	if (!db->redo_due)
		return 0;
	return db->batch_open ? batch_commit(db, false, db->nredo) : redo_replay(db);
}

/* A full disk must not stop the database from recording what was done
 * (unlinks that would free space included): a file of reserved space sits
 * beside the database and is given back when space runs low, just before
 * a commit; it is made again once there is room. */
static void reserve_check(struct cow_db *db)
{
	struct statvfs sv;
	if (!db->writer || fstatvfs(db->dirfd, &sv) < 0)
		return;
	int64_t total = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
	int64_t avail = (int64_t)sv.f_bfree * (int64_t)sv.f_frsize;
	int64_t size = total / 64;
	size = size < (1 << 20) ? (1 << 20) : size > (16 << 20) ? (16 << 20) : size;
	db->reserve_size = size;
	struct stat st;
	bool have = fstatat(db->dirfd, RESERVE_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0;
	db->space_low = !have && avail < 4 * size;
	if (have && avail < 2 * size) {
		unlinkat(db->dirfd, RESERVE_NAME, 0);
		db->space_low = true;
	} else if (!have && avail > 4 * size) {
		int fd = openat(db->dirfd, RESERVE_NAME, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return;
		if (posix_fallocate(fd, 0, size) != 0)
			unlinkat(db->dirfd, RESERVE_NAME, 0);
		close(fd);
	}
}

bool cow_db_space_low(struct cow_db *db)
{
	if (!db->space_low)
		return false;
	/* look again: space may have come back since the last commit */
	pthread_mutex_lock(&db->lock);
	reserve_check(db);
	bool low = db->space_low;
	pthread_mutex_unlock(&db->lock);
	return low;
}

void cow_db_set_presync(struct cow_db *db, int (*fn)(void *arg), void *arg)
{
	db->presync = fn;
	db->presync_arg = arg;
}

/* Data first: make the data files of what is about to commit durable. */
static int sync_data(struct cow_db *db)
{
	int r = db->presync ? db->presync(db->presync_arg) : 0;
	for (size_t i = 0; i < db->nsync; i++) {
		if (fdatasync(db->sync_fds[i]) < 0 && r == 0)
			r = -errno;
		close(db->sync_fds[i]);
	}
	db->nsync = 0;
	return r;
}

int cow_db_sync_before_commit(struct cow_db *db, int fd)
{
	if (db->nsync == db->capsync) {
		/* a long batch: sync what is listed now (early is never wrong) */
		int r = sync_data(db);
		if (r < 0) {
			close(fd);
			return r;
		}
		if (db->capsync == 0) {
			db->sync_fds = malloc(256 * sizeof(*db->sync_fds));
			if (!db->sync_fds) {
				r = fdatasync(fd) < 0 ? -errno : 0;
				close(fd);
				return r;
			}
			db->capsync = 256;
		}
	}
	db->sync_fds[db->nsync++] = fd;
	return 0;
}

/* synchronous=NORMAL commits without syncing the WAL; syncing it makes
 * every commit so far durable, which is what synchronous=FULL would have
 * done at the last one.  Group commit: syncs take turns, and whoever
 * gets the turn after a sync that began after its commit has nothing to
 * do; so N clients syncing at once cost about two syncs, not N, and the
 * db lock need not be held while the disk flushes. */
int cow_db_sync(struct cow_db *db)
{
	uint64_t mine = atomic_load(&db->commits);
	int r = 0;
	if (db->redo_due) {
		/* acknowledged writes are not even committed */
		snprintf(db->errmsg, sizeof(db->errmsg), "earlier changes could not be committed yet");
		return -EIO;
	}
	pthread_mutex_lock(&db->sync_lock);
	if (db->synced < mine) {
		uint64_t covered = atomic_load(&db->commits);
		/* A writer's WAL exists from its first transaction until the
		 * last connection closes, ours included: missing, it is an
		 * error, never "nothing to sync". */
		int fd = openat(db->dirfd, WAL_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			r = -errno;
			snprintf(db->errmsg, sizeof(db->errmsg), "cannot open the WAL to sync it: %s", strerror(errno));
			if (r == -ENOENT)
				r = -EIO;
		} else {
			if (fdatasync(fd) < 0)
				r = -errno;
			close(fd);
		}
		/* once per connection: the WAL's own name, so that a power
		 * cut cannot take the file with every commit in it */
		if (r == 0 && !db->wal_dir_synced) {
			if (fsync(db->dirfd) < 0)
				r = -errno;
			else
				db->wal_dir_synced = true;
		}
		if (r == 0)
			db->synced = covered;
	}
	pthread_mutex_unlock(&db->sync_lock);
	return r;
}

/* Commit the open batch.  If that fails, the writes of its first @keep
 * log entries (the operations already acknowledged) are replayed: 0 when
 * all of them are committed that way, else the error. */
static int batch_commit(struct cow_db *db, bool durable, size_t keep)
{
	reserve_check(db);
	int r = sync_data(db);
	if (r == 0)
		r = cow_sql_run(db, cow_sql_stmt(db, S_COMMIT));
	if (r < 0 && !sqlite3_get_autocommit(db->sql))
		cow_sql_run(db, cow_sql_stmt(db, S_ROLLBACK));
	if (r < 0) {
		bool whole = keep == db->nredo;
		int rr = batch_ended(db, false, keep);
		if (!whole || rr < 0)
			return r; /* the running operation failed, unacknowledged */
	} else {
		batch_ended(db, true, 0);
	}
	return durable ? cow_db_sync(db) : 0;
}

/* Take the write lock, after any other writer waiting for it. */
static int begin_write(struct cow_db *db)
{
	if (db->damaged) {
		snprintf(db->errmsg, sizeof(db->errmsg), "the database is damaged: no more writes until fsck");
		return -EIO;
	}
	turn_yield(db);
	return cow_sql_run(db, cow_sql_stmt(db, S_BEGIN));
}

/* The running operation's writes begin here in the log. */
static int savepoint(struct cow_db *db)
{
	db->redo_mark = db->nredo;
	return cow_sql_run(db, cow_sql_stmt(db, S_SAVEPOINT));
}

int cow_db_begin(struct cow_db *db)
{
	int r = redo_due_first(db);
	if (r < 0)
		return r;
	if (db->batch_open) {
		/* commits for real, and the batch with it */
		db->op_batched = false;
		return savepoint(db);
	}
	return begin_write(db);
}

int cow_db_begin_batched(struct cow_db *db)
{
	if (db->batching == 0)
		return cow_db_begin(db);
	int r = redo_due_first(db);
	if (r < 0)
		return r;
	if (db->batch_open) {
		/* another writer waits, or the batch is long: it ends here, not
		 * at the flush */
		int64_t now = mono_ms();
		bool end = db->redo_bytes > REDO_MAX_BYTES;
		if (!end && now - db->batch_checked >= TURN_CHECK_MS) {
			db->batch_checked = now;
			end = turn_waiting(db);
		}
		if (end) {
			r = batch_commit(db, false, db->nredo);
			if (r < 0)
				return r;
		}
	}
	if (!db->batch_open) {
		r = begin_write(db);
		if (r < 0)
			return r;
		db->batch_open = true;
		db->batch_checked = mono_ms();
	}
	db->op_batched = true;
	return savepoint(db);
}

int cow_db_commit(struct cow_db *db, bool durable)
{
	if (db->batch_open) {
		int r = cow_sql_run(db, cow_sql_stmt(db, S_RELEASE));
		if (r < 0) {
			cow_db_rollback(db);
			return r;
		}
		if (db->op_batched && !durable)
			return 0;
		return batch_commit(db, durable, db->redo_mark);
	}
	reserve_check(db);
	int r = sync_data(db);
	if (r == 0)
		r = cow_sql_run(db, cow_sql_stmt(db, S_COMMIT));
	if (r < 0) {
		cow_db_rollback(db);
		return r;
	}
	return durable ? cow_db_sync(db) : 0;
}

void cow_db_rollback(struct cow_db *db)
{
	if (db->batch_open) {
		if (sqlite3_get_autocommit(db->sql)) {
			/* sqlite dropped the whole batch: all but this operation
			 * is done again */
			batch_ended(db, false, db->redo_mark);
			return;
		}
		/* this operation only: the batch goes on */
		cow_sql_run(db, cow_sql_stmt(db, S_ROLLBACK_TO));
		cow_sql_run(db, cow_sql_stmt(db, S_RELEASE));
		redo_truncate(db, db->redo_mark);
		return;
	}
	if (!sqlite3_get_autocommit(db->sql))
		cow_sql_run(db, cow_sql_stmt(db, S_ROLLBACK));
}

void cow_db_batching(struct cow_db *db, bool on)
{
	db->batching += on ? 1 : -1;
	if (db->batching == 0) {
		if (db->batch_open)
			batch_commit(db, false, db->nredo);
		read_end(db);
	}
}

int cow_db_flush(struct cow_db *db, bool durable)
{
	read_end(db);
	if (db->batch_open)
		return batch_commit(db, durable, db->nredo);
	int r = redo_due_first(db);
	if (r < 0)
		return r;
	return durable ? cow_db_sync(db) : 0;
}

int cow_db_unlink_after_commit(struct cow_db *db, uint64_t layer, uint64_t ino)
{
	return unlink_add(db->batch_open ? &db->pending : &db->committed, layer, ino);
}

size_t cow_db_take_unlinks(struct cow_db *db, struct cow_data_ref **ret)
{
	size_t n = db->committed.n;
	*ret = db->committed.v;
	db->committed = (struct unlink_list){0};
	return n;
}

/* ---- fsck ---- */

int cow_db_integrity(struct cow_db *db, bool full, bool *ret_ok)
{
	sqlite3_stmt *s;
	read_end(db);
	int rc =
	    sqlite3_prepare_v2(db->sql, full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return cow_sql_map_rc(db, rc);
	rc = sqlite3_step(s);
	bool ok = rc == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(s, 0), "ok");
	if (!ok && rc == SQLITE_ROW) {
		/* the first findings, on one line */
		size_t len = 0;
		db->errmsg[0] = 0;
		for (int i = 0; rc == SQLITE_ROW && i < 3 && len < sizeof(db->errmsg) - 1; i++, rc = sqlite3_step(s)) {
			int k = snprintf(db->errmsg + len, sizeof(db->errmsg) - len, "%s%s", i ? "; " : "",
					 sqlite3_column_text(s, 0));
			len += k < 0 ? 0 : (size_t)k; /* past the end when cut: the loop ends */
		}
		/* sqlite's page-level findings span lines ("*** in database main ***\n...") */
		for (char *c = db->errmsg; *c; c++)
			if (*c == '\n' || *c == '\r' || *c == '\t')
				*c = ' ';
		rc = SQLITE_ROW;
	}
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
		/* too damaged for the check itself to run */
		snprintf(db->errmsg, sizeof(db->errmsg), "%s", sqlite3_errmsg(db->sql));
		ok = false;
		rc = SQLITE_ROW;
	}
	int r = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : cow_sql_map_rc(db, rc);
	sqlite3_finalize(s);
	if (r == 0 && !ok)
		cow_db_mark_damaged(db, db->errmsg);
	*ret_ok = ok;
	return r;
}

int cow_db_repair(struct cow_db *db)
{
	char before[sizeof(db->errmsg)];
	snprintf(before, sizeof(before), "%s", db->errmsg);
	/* indexes are derived from the tables: sqlite rebuilds them */
	int r = exec(db, "REINDEX");
	bool ok = false;
	if (r == 0)
		r = cow_db_integrity(db, true, &ok);
	if (r == 0 && ok) {
		db->damaged = false;
		return 0;
	}
	if (r == -EIO) /* the rebuild or the check failed: say what was found before */
		snprintf(db->errmsg, sizeof(db->errmsg), "%s", before);
	/* else errmsg has what the check finds now */
	return r == 0 || r == -EIO ? -EUCLEAN : r;
}

/* Rows that refer to nothing: dirents and xattrs of layers that do not
 * exist, xattrs of objects the layer does not record, and dirents whose
 * object no layer of the chain records. */
static const char *const dangling_sql[][2] = {
    {"entries of missing layers", "FROM dirents WHERE layer NOT IN (SELECT id FROM layers)"},
    {"objects of missing layers", "FROM inodes WHERE layer NOT IN (SELECT id FROM layers)"},
    {"xattrs of missing objects",
     "FROM xattrs x WHERE NOT EXISTS (SELECT 1 FROM inodes n WHERE n.layer = x.layer AND n.ino = x.ino)"},
    {"entries naming missing objects",
     "FROM dirents d WHERE d.ino != 0 AND NOT EXISTS (WITH RECURSIVE chain(id) AS"
     " (SELECT d.layer UNION ALL SELECT l.parent FROM layers l JOIN chain c ON l.id = c.id WHERE l.parent IS NOT NULL)"
     " SELECT 1 FROM inodes n JOIN chain c ON n.layer = c.id WHERE n.ino = d.ino)"},
};

int cow_db_check_dangling(struct cow_db *db, bool repair, void (*log)(void *arg, const char *line), void *arg,
			  uint64_t *ret_count)
{
	uint64_t total = 0;
	char sql[1024], line[256];
	for (size_t i = 0; i < sizeof(dangling_sql) / sizeof(dangling_sql[0]); i++) {
		sqlite3_stmt *s;
		snprintf(sql, sizeof(sql), "SELECT count(*) %s", dangling_sql[i][1]);
		int rc = sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL);
		if (rc != SQLITE_OK)
			return cow_sql_map_rc(db, rc);
		rc = sqlite3_step(s);
		int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
		sqlite3_finalize(s);
		if (rc != SQLITE_ROW)
			return cow_sql_map_rc(db, rc);
		if (n == 0)
			continue;
		total += (uint64_t)n;
		snprintf(line, sizeof(line), "%lld %s", (long long)n, dangling_sql[i][0]);
		if (log)
			log(arg, line);
		if (repair) {
			/* DELETE FROM <table> <alias> WHERE ... : sqlite has no alias on
			 * DELETE, so delete by rowid-free key through the same predicate. */
			const char *from = dangling_sql[i][1] + 5; /* skip "FROM " */
			char table[16];
			sscanf(from, "%15s", table);
			const char *where = strstr(from, "WHERE");
			const char *alias = i >= 2 ? (i == 2 ? "x" : "d") : NULL;
			if (alias)
				snprintf(sql, sizeof(sql), "DELETE FROM %s AS %s %s", table, alias, where);
			else
				snprintf(sql, sizeof(sql), "DELETE FROM %s %s", table, where);
			int r = exec(db, sql);
			if (r < 0)
				return r;
		}
	}
	*ret_count = total;
	return 0;
}
