/* SPDX-License-Identifier: MIT */
/*
 * The database: the only file that includes sqlite3.h.  All SQL lives here,
 * as prepared statements kept for the life of the connection.  Callers hold
 * the db lock around every call and group writes in cow_db_begin/commit.
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

#include <sqlite3.h>

#include "cow-private.h"

extern const char *const cow_schema_migrations[];
extern const int cow_schema_version;

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_BEGIN_READ,
	S_META_GET,
	S_META_SET,
	S_LAYER_ADD,
	S_LAYER_GET,
	S_LAYER_SET_KIND,
	S_LAYER_ALL,
	S_LAYER_USED,
	S_IMAGE_ADD,
	S_IMAGE_GET,
	S_IMAGE_ALL,
	S_IMAGE_INFO,
	S_CLIENT_ADD,
	S_CLIENT_GET,
	S_CLIENT_ALL,
	S_CLIENT_SET,
	S_CLIENT_DEL,
	S_CLIENT_BY_SERIAL,
	S_CLIENT_BY_MAC,
	S_CLIENT_SET_ON_BOOT,
	S_CLIENT_SET_BOOT,
	S_IMAGE_DEL,
	S_IMAGE_BY_LAYER,
	S_IMAGE_USERS,
	S_LAYER_DEL,
	S_LAYER_SET_PARENT,
	S_LAYER_INODES,
	S_LAYER_DIRENTS,
	S_LAYER_STATS,
	S_LAYER_COPYUPS,
	S_INODE_GET,
	S_INODE_PUT,
	S_INODE_DEL,
	S_INODE_UNLINKED,
	S_DATA_ALL,
	S_DATA_REF,
	S_DIRENT_GET,
	S_DIRENT_PUT,
	S_DIRENT_DEL,
	S_DIRENT_DEL_PARENT,
	S_DIRENT_LIST,
	S_XATTR_LIST,
	S_XATTR_PUT,
	S_XATTR_DEL,
	S_XATTR_COPY,
	S_XATTR_DEL_ALL,
	S_XATTR_BYTES,
	S_LAYER_DROP_INODES,
	S_LAYER_DROP_DIRENTS,
	S_LAYER_DROP_XATTRS,
	S_LAYER_HWM_SET,
	S_LAYER_HWM_GET,
	S_CLIENT_FREE_ID,
	S_DIRENT_ADD,
	S_COUNT
};

/* What struct cow_image_info holds, per image (see image_row). */
#define IMAGE_INFO                                                                                                     \
	"SELECT i.name, i.layer, ifnull(l.parent, 0), i.created,"                                                      \
	" (SELECT count(*) FROM inodes n WHERE n.layer = i.layer),"                                                    \
	" (SELECT ifnull(sum(size), 0) FROM inodes n WHERE n.layer = i.layer AND n.data_layer = i.layer),"             \
	" (SELECT count(*) FROM clients c WHERE c.image = i.name)"                                                     \
	" FROM images i JOIN layers l ON l.id = i.layer"

/* What struct cow_client_info holds, per client (see client_row). */
#define CLIENT_INFO                                                                                                    \
	"SELECT c.name, c.image, c.layer, c.created, c.id, c.gen, c.serial, c.mac, c.boot_args, c.boot_dtb, "          \
	"c.on_boot,"                                                                                                   \
	" ifnull(c.quota_bytes, 0), ifnull(c.quota_files, 0)"

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT op",
    [S_RELEASE] = "RELEASE op",
    [S_ROLLBACK_TO] = "ROLLBACK TO op",
    [S_BEGIN_READ] = "BEGIN DEFERRED",
    [S_META_GET] = "SELECT value FROM meta WHERE key = :key",
    [S_META_SET] = "INSERT OR REPLACE INTO meta (key, value) VALUES (:key, :value)",
    [S_LAYER_ADD] = "INSERT INTO layers (parent, kind, root, created) VALUES (:parent, :kind, :root, :created)",
    [S_LAYER_GET] = "SELECT id, ifnull(parent, 0), kind, root, created FROM layers WHERE id = :id",
    [S_LAYER_SET_KIND] = "UPDATE layers SET kind = :kind WHERE id = :id",
    [S_LAYER_ALL] = "SELECT id, ifnull(parent, 0), kind, root, created FROM layers ORDER BY id",
    [S_LAYER_USED] = "SELECT 1 FROM images WHERE layer = :id UNION ALL SELECT 1 FROM clients WHERE layer = :id "
		     "UNION ALL SELECT 1 FROM layers WHERE parent = :id AND kind != 2 LIMIT 1",
    [S_IMAGE_ADD] = "INSERT INTO images (name, layer, created) VALUES (:name, :layer, :created)",
    [S_IMAGE_GET] = "SELECT layer FROM images WHERE name = :name",
    [S_IMAGE_ALL] = IMAGE_INFO " ORDER BY i.name",
    [S_IMAGE_INFO] = IMAGE_INFO " WHERE i.name = :name",
    [S_CLIENT_ADD] = "INSERT INTO clients (name, image, layer, created, id, gen)"
		     " VALUES (:name, :image, :layer, :created, :id, :gen)",
    [S_CLIENT_GET] = CLIENT_INFO " FROM clients c WHERE c.name = :name",
    [S_CLIENT_ALL] = CLIENT_INFO ","
				 " (SELECT count(*) FROM inodes n WHERE n.layer = c.layer AND n.mode != 0)"
				 " FROM clients c ORDER BY c.name",
    [S_CLIENT_SET] = "UPDATE clients SET image = :image, layer = :layer WHERE name = :name",
    [S_CLIENT_DEL] = "DELETE FROM clients WHERE name = :name",
    /* by the clients_serial and clients_mac indexes */
    [S_CLIENT_BY_SERIAL] = CLIENT_INFO " FROM clients c WHERE c.serial = :value",
    [S_CLIENT_BY_MAC] = CLIENT_INFO " FROM clients c WHERE c.mac = :value",
    [S_CLIENT_SET_ON_BOOT] = "UPDATE clients SET on_boot = :on_boot WHERE name = :name",
    [S_CLIENT_SET_BOOT] =
	"UPDATE clients SET serial = :serial, mac = :mac, boot_args = :boot_args, boot_dtb = :boot_dtb"
	" WHERE name = :name",
    [S_IMAGE_DEL] = "DELETE FROM images WHERE name = :name",
    [S_IMAGE_BY_LAYER] = "SELECT name FROM images WHERE layer = :layer",
    [S_IMAGE_USERS] = "SELECT 'client', name FROM clients WHERE image = :name"
		      " UNION ALL SELECT 'image', i.name FROM images i JOIN layers l ON l.id = i.layer"
		      " WHERE l.parent = :layer ORDER BY 1, 2",
    [S_LAYER_DEL] = "DELETE FROM layers WHERE id = :id",
    [S_LAYER_SET_PARENT] = "UPDATE layers SET parent = :parent WHERE id = :id",
    [S_LAYER_INODES] = "SELECT ino, mode, nlink, uid, gid, rdev, size, atime, mtime, ctime, data_layer"
		       " FROM inodes WHERE layer = :layer ORDER BY ino",
    [S_LAYER_DIRENTS] = "SELECT parent, name, ino, type FROM dirents WHERE layer = :layer ORDER BY parent, name",
    [S_LAYER_STATS] = "SELECT (SELECT count(*) FROM inodes WHERE layer = :layer AND mode != 0),"
		      " (SELECT count(*) FROM inodes WHERE layer = :layer AND data_layer = :layer),"
		      " (SELECT ifnull(sum(size), 0) FROM inodes WHERE layer = :layer AND data_layer = :layer),"
		      " (SELECT count(*) FROM dirents WHERE layer = :layer AND ino = 0),"
		      " (SELECT count(*) FROM inodes WHERE layer = :layer AND mode = 0)",
    [S_LAYER_COPYUPS] =
	"WITH RECURSIVE chain(id) AS (SELECT parent FROM layers WHERE id = :layer AND parent IS NOT NULL"
	" UNION ALL SELECT l.parent FROM layers l JOIN chain c ON l.id = c.id WHERE l.parent IS NOT NULL)"
	" SELECT count(*) FROM inodes n WHERE n.layer = :layer AND n.data_layer = :layer AND EXISTS"
	" (SELECT 1 FROM chain c JOIN inodes b ON b.layer = c.id AND b.ino = n.ino)",
    [S_INODE_GET] = "SELECT mode, nlink, uid, gid, rdev, size, atime, mtime, ctime, data_layer, target"
		    " FROM inodes WHERE layer = :layer AND ino = :ino",
    [S_INODE_PUT] = "INSERT OR REPLACE INTO inodes (layer, ino, mode, nlink, uid, gid, rdev, size, atime, mtime,"
		    " ctime, data_layer, target) VALUES (:layer, :ino, :mode, :nlink, :uid, :gid, :rdev, :size,"
		    " :atime, :mtime, :ctime, :data_layer, :target)",
    [S_INODE_DEL] = "DELETE FROM inodes WHERE layer = :layer AND ino = :ino",
    [S_INODE_UNLINKED] = "SELECT ino, data_layer FROM inodes WHERE layer = :layer AND nlink = 0 AND mode != 0",
    [S_DATA_ALL] = "SELECT layer, ino FROM inodes WHERE data_layer = layer",
    /* by primary key: the layer's own row first (the usual owner of its
     * data files), then the rows of every layer (metadata copied up above
     * the data); a scan of all inodes per data file made gc and fsck
     * quadratic */
    [S_DATA_REF] = "SELECT 1 FROM inodes WHERE layer = :layer AND ino = :ino AND data_layer = :layer"
		   " UNION ALL SELECT 1 FROM inodes WHERE layer IN (SELECT id FROM layers) AND ino = :ino"
		   " AND data_layer = :layer LIMIT 1",
    [S_DIRENT_GET] = "SELECT ino, type FROM dirents WHERE layer = :layer AND parent = :parent AND name = :name",
    [S_DIRENT_PUT] = "INSERT OR REPLACE INTO dirents (layer, parent, name, ino, type)"
		     " VALUES (:layer, :parent, :name, :ino, :type)",
    [S_DIRENT_DEL] = "DELETE FROM dirents WHERE layer = :layer AND parent = :parent AND name = :name",
    [S_DIRENT_DEL_PARENT] = "DELETE FROM dirents WHERE layer = :layer AND parent = :parent",
    [S_DIRENT_LIST] = "SELECT name, ino, type FROM dirents WHERE layer = :layer AND parent = :parent",
    [S_XATTR_LIST] = "SELECT name, value FROM xattrs WHERE layer = :layer AND ino = :ino ORDER BY name",
    [S_XATTR_PUT] = "INSERT OR REPLACE INTO xattrs (layer, ino, name, value) VALUES (:layer, :ino, :name, :value)",
    [S_XATTR_DEL] = "DELETE FROM xattrs WHERE layer = :layer AND ino = :ino AND name = :name",
    [S_XATTR_COPY] = "INSERT OR REPLACE INTO xattrs (layer, ino, name, value)"
		     " SELECT :to, ino, name, value FROM xattrs WHERE layer = :from AND ino = :ino",
    [S_XATTR_DEL_ALL] = "DELETE FROM xattrs WHERE layer = :layer AND ino = :ino",
    /* what an object's xattrs take against a quota: names with their NUL, values */
    [S_XATTR_BYTES] = "SELECT ifnull(sum(length(name) + 1 + length(value)), 0) FROM xattrs"
		      " WHERE layer = :layer AND ino = :ino",
    [S_LAYER_DROP_INODES] = "DELETE FROM inodes WHERE layer = :layer",
    [S_LAYER_DROP_DIRENTS] = "DELETE FROM dirents WHERE layer = :layer",
    [S_LAYER_DROP_XATTRS] = "DELETE FROM xattrs WHERE layer = :layer",
    /* the highest layer id ever recorded: data of a higher one is no
     * leftover of ours (see cow_db_layer_known) */
    [S_LAYER_HWM_SET] = "INSERT INTO meta (key, value) VALUES ('layer_hwm', :id)"
			" ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    [S_LAYER_HWM_GET] = "SELECT max(ifnull((SELECT value FROM meta WHERE key = 'layer_hwm'), 0),"
			" ifnull((SELECT max(id) FROM layers), 0))",
    /* the lowest id in :from..:max that no client has, NULL if none: :from
     * itself or one past a taken id (by the clients_id index) */
    [S_CLIENT_FREE_ID] = "SELECT min(i) FROM (SELECT :from AS i WHERE :from <= :max AND NOT EXISTS"
			 " (SELECT 1 FROM clients WHERE id = :from) UNION ALL SELECT c.id + 1 FROM clients c"
			 " WHERE c.id >= :from AND c.id < :max AND NOT EXISTS"
			 " (SELECT 1 FROM clients d WHERE d.id = c.id + 1))",
    /* a name the layer has already is an error here (load) */
    [S_DIRENT_ADD] =
	"INSERT INTO dirents (layer, parent, name, ino, type) VALUES (:layer, :parent, :name, :ino, :type)",
};

struct unlink_list {
	struct cow_data_ref *v;
	size_t n, cap;
};

struct cow_db {
	sqlite3 *sql;
	pthread_mutex_t lock;
	sqlite3_stmt *stmt[S_COUNT];
	char errmsg[256];
	int dirfd;	     /* the store directory: every file beside the database */
	bool wal_dir_synced; /* the directory entry of the WAL is durable */
	/* batching (see cow_db_begin_batched), protected by lock: */
	int batching;			       /* users that asked for batches */
	bool batch_open;		       /* a transaction spanning operations is open */
	bool op_batched;		       /* the running operation may stay in the batch */
	bool read_open;			       /* a read transaction spanning operations is open */
	struct unlink_list pending, committed; /* data files to remove */
	int *sync_fds;			       /* data written for the open transaction: synced before it commits */
	int (*presync)(void *arg);	       /* before each commit too (cow_db_set_presync) */
	void *presync_arg;
	size_t nsync, capsync;
	/* the redo log of the open batch (see redo_replay): */
	char **redo;	       /* the batch's writes, as SQL with their values */
	size_t nredo, capredo; /* entries */
	size_t redo_mark;      /* entries before the running operation */
	size_t redo_bytes;     /* their size: a long batch commits early */
	_Atomic bool redo_due; /* acknowledged writes wait for a commit that failed */
	bool space_low;	       /* the reserve is given back (see cow_db_space_low) */
	bool writer;	       /* may write (the reserve and the damaged mark are its own) */
	bool damaged;	       /* sqlite found corruption: no more writes (see map_rc) */
	int64_t reserve_size;
	/* taking turns with other writers (see turn_yield): */
	int turn_fd;	       /* <db>-turn, -1 for a read-only connection */
	bool turn_held;	       /* we are the writer waiting for its turn */
	int64_t busy_since;    /* when the waiting for the write lock began */
	int64_t batch_checked; /* when an open batch last looked for a waiter */
	/* group commit (see cow_db_sync): */
	_Atomic uint64_t commits; /* commits so far, at least (count_commit) */
	pthread_mutex_t sync_lock;
	uint64_t synced; /* commits made durable so far (sync_lock) */
};

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

static int map_rc(struct cow_db *db, int rc)
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
		int rc = sqlite3_prepare_v3(db->sql, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[id], NULL);
		if (rc != SQLITE_OK) {
			map_rc(db, rc);
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
static sqlite3_stmt *stmt(struct cow_db *db, enum stmt_id id)
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

static void bind_i64(sqlite3_stmt *s, const char *name, int64_t v)
{
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, name), v);
}

static void bind_text(sqlite3_stmt *s, const char *name, const char *v)
{
	sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, name), v, -1, SQLITE_STATIC);
}

static void bind_blob(sqlite3_stmt *s, const char *name, const void *v, size_t n)
{
	sqlite3_bind_blob64(s, sqlite3_bind_parameter_index(s, name), v ? v : "", n, SQLITE_STATIC);
}

/* Run @s to completion (no rows expected). */
static int run(struct cow_db *db, sqlite3_stmt *s)
{
	if (!s)
		return -EIO;
	int rc = sqlite3_step(s);
	turn_release(db);
	count_commit(db);
	int r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : map_rc(db, rc);
	if (r == 0)
		r = redo_record(db, s); /* failing, the operation fails */
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return r;
}

static void done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* First step of a query: 1 row, 0 no row, <0 error. */
static int step(struct cow_db *db, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	turn_release(db);
	count_commit(db);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return map_rc(db, rc);
}

static int exec(struct cow_db *db, const char *sql)
{
	char *err = NULL;
	read_end(db);
	int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &err);
	turn_release(db);
	count_commit(db);
	if (rc != SQLITE_OK) {
		int r = map_rc(db, rc);
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
		return map_rc(db, rc);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		int r = rc == SQLITE_DONE ? -EIO : map_rc(db, rc);
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
		r = map_rc(db, rc);
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
		r = run(db, stmt(db, S_COMMIT));
	if (r < 0 && !sqlite3_get_autocommit(db->sql))
		run(db, stmt(db, S_ROLLBACK));
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
	return run(db, stmt(db, S_BEGIN));
}

/* The running operation's writes begin here in the log. */
static int savepoint(struct cow_db *db)
{
	db->redo_mark = db->nredo;
	return run(db, stmt(db, S_SAVEPOINT));
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
		int r = run(db, stmt(db, S_RELEASE));
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
		r = run(db, stmt(db, S_COMMIT));
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
		run(db, stmt(db, S_ROLLBACK_TO));
		run(db, stmt(db, S_RELEASE));
		redo_truncate(db, db->redo_mark);
		return;
	}
	if (!sqlite3_get_autocommit(db->sql))
		run(db, stmt(db, S_ROLLBACK));
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

/* ---- meta ---- */

int cow_db_alloc_inos(struct cow_db *db, uint64_t n, uint64_t *ret_first)
{
	return cow_db_counter(db, "next_ino", n, ret_first);
}

int cow_db_counter(struct cow_db *db, const char *key, uint64_t n, uint64_t *ret_first)
{
	sqlite3_stmt *s = stmt(db, S_META_GET);
	if (!s)
		return -EIO;
	bind_text(s, ":key", key);
	int r = step(db, s);
	uint64_t first = r > 0 ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	done(s);
	if (r < 0)
		return r;
	if (r == 0)
		return -EIO;
	s = stmt(db, S_META_SET);
	if (!s)
		return -EIO;
	bind_text(s, ":key", key);
	bind_i64(s, ":value", (int64_t)(first + n));
	r = run(db, s);
	if (r < 0)
		return r;
	*ret_first = first;
	return 0;
}

/* ---- layers, images, clients ---- */

int cow_db_layer_add(struct cow_db *db, uint64_t parent, int kind, uint64_t root, uint64_t *ret_id)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_ADD);
	if (!s)
		return -EIO;
	if (parent)
		bind_i64(s, ":parent", (int64_t)parent);
	bind_i64(s, ":kind", kind);
	bind_i64(s, ":root", (int64_t)root);
	bind_i64(s, ":created", time(NULL));
	int r = run(db, s);
	if (r < 0)
		return r;
	uint64_t id = (uint64_t)sqlite3_last_insert_rowid(db->sql);
	s = stmt(db, S_LAYER_HWM_SET);
	if (!s)
		return -EIO;
	bind_i64(s, ":id", (int64_t)id);
	r = run(db, s);
	if (r < 0)
		return r;
	*ret_id = id;
	return 0;
}

bool cow_db_layer_known(struct cow_db *db, uint64_t id)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_HWM_GET);
	if (!s)
		return true; /* when in doubt, nothing is removed */
	bool known = step(db, s) == 1 && (uint64_t)sqlite3_column_int64(s, 0) >= id;
	done(s);
	return known;
}

static void layer_row(sqlite3_stmt *s, struct cow_layer_info *l)
{
	l->id = (uint64_t)sqlite3_column_int64(s, 0);
	l->parent = (uint64_t)sqlite3_column_int64(s, 1);
	l->kind = sqlite3_column_int(s, 2);
	l->root = (uint64_t)sqlite3_column_int64(s, 3);
	l->created = sqlite3_column_int64(s, 4);
}

int cow_db_layer_get(struct cow_db *db, uint64_t id, struct cow_layer_info *ret)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_GET);
	if (!s)
		return -EIO;
	bind_i64(s, ":id", (int64_t)id);
	int r = step(db, s);
	if (r > 0)
		layer_row(s, ret);
	done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_layer_set_kind(struct cow_db *db, uint64_t id, int kind)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_SET_KIND);
	if (!s)
		return -EIO;
	bind_i64(s, ":id", (int64_t)id);
	bind_i64(s, ":kind", kind);
	return run(db, s);
}

int cow_db_layer_drop_rows(struct cow_db *db, uint64_t id)
{
	static const enum stmt_id ids[] = {S_LAYER_DROP_INODES, S_LAYER_DROP_DIRENTS, S_LAYER_DROP_XATTRS};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		sqlite3_stmt *s = stmt(db, ids[i]);
		if (!s)
			return -EIO;
		bind_i64(s, ":layer", (int64_t)id);
		int r = run(db, s);
		if (r < 0)
			return r;
	}
	return 0;
}

int cow_db_layer_foreach(struct cow_db *db, int (*fn)(void *arg, const struct cow_layer_info *), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_ALL);
	if (!s)
		return -EIO;
	int r;
	while ((r = step(db, s)) > 0) {
		struct cow_layer_info l;
		layer_row(s, &l);
		r = fn(arg, &l);
		if (r)
			break;
	}
	done(s);
	return r;
}

int cow_db_layer_del(struct cow_db *db, uint64_t id)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_DEL);
	if (!s)
		return -EIO;
	bind_i64(s, ":id", (int64_t)id);
	return run(db, s);
}

int cow_db_layer_set_parent(struct cow_db *db, uint64_t id, uint64_t parent)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_SET_PARENT);
	if (!s)
		return -EIO;
	bind_i64(s, ":id", (int64_t)id);
	bind_i64(s, ":parent", (int64_t)parent);
	return run(db, s);
}

int cow_db_layer_stats(struct cow_db *db, uint64_t layer, struct cow_layer_stats *ret)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_STATS);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	int r = step(db, s);
	if (r > 0) {
		memset(ret, 0, sizeof(*ret));
		ret->objects = (uint64_t)sqlite3_column_int64(s, 0);
		ret->data_files = (uint64_t)sqlite3_column_int64(s, 1);
		ret->bytes = (uint64_t)sqlite3_column_int64(s, 2);
		ret->whiteouts = (uint64_t)sqlite3_column_int64(s, 3);
		ret->removed = (uint64_t)sqlite3_column_int64(s, 4);
	}
	done(s);
	if (r <= 0)
		return r < 0 ? r : -EIO;
	s = stmt(db, S_LAYER_COPYUPS);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	r = step(db, s);
	if (r > 0)
		ret->copy_ups = (uint64_t)sqlite3_column_int64(s, 0);
	done(s);
	return r < 0 ? r : 0;
}

int cow_db_layer_inodes(struct cow_db *db, uint64_t layer, int (*fn)(void *arg, const struct cow_irow *row), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_INODES);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	int r;
	while ((r = step(db, s)) > 0) {
		struct cow_irow row = {0};
		row.ino = (uint64_t)sqlite3_column_int64(s, 0);
		row.mode = (uint32_t)sqlite3_column_int64(s, 1);
		row.nlink = (uint32_t)sqlite3_column_int64(s, 2);
		row.uid = (uint32_t)sqlite3_column_int64(s, 3);
		row.gid = (uint32_t)sqlite3_column_int64(s, 4);
		row.rdev = (uint64_t)sqlite3_column_int64(s, 5);
		row.size = sqlite3_column_int64(s, 6);
		row.atime = sqlite3_column_int64(s, 7);
		row.mtime = sqlite3_column_int64(s, 8);
		row.ctime = sqlite3_column_int64(s, 9);
		row.data_layer = (uint64_t)sqlite3_column_int64(s, 10);
		r = fn(arg, &row);
		if (r)
			break;
	}
	done(s);
	return r;
}

int cow_db_layer_dirents(struct cow_db *db, uint64_t layer,
			 int (*fn)(void *arg, uint64_t parent, const char *name, uint64_t ino, int type), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_DIRENTS);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	int r;
	char name[COW_NAME_MAX + 1];
	while ((r = step(db, s)) > 0) {
		int n = sqlite3_column_bytes(s, 1);
		if (n <= 0 || n > COW_NAME_MAX) {
			r = -EIO;
			break;
		}
		memcpy(name, sqlite3_column_blob(s, 1), (size_t)n);
		name[n] = 0;
		r = fn(arg, (uint64_t)sqlite3_column_int64(s, 0), name, (uint64_t)sqlite3_column_int64(s, 2),
		       sqlite3_column_int(s, 3));
		if (r)
			break;
	}
	done(s);
	return r;
}

bool cow_db_layer_used(struct cow_db *db, uint64_t id)
{
	sqlite3_stmt *s = stmt(db, S_LAYER_USED);
	if (!s)
		return true;
	bind_i64(s, ":id", (int64_t)id);
	int r = step(db, s);
	done(s);
	return r != 0;
}

int cow_db_image_add(struct cow_db *db, const char *name, uint64_t layer)
{
	sqlite3_stmt *s = stmt(db, S_IMAGE_ADD);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":created", time(NULL));
	return run(db, s);
}

int cow_db_image_get(struct cow_db *db, const char *name, uint64_t *ret_layer)
{
	sqlite3_stmt *s = stmt(db, S_IMAGE_GET);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	int r = step(db, s);
	if (r > 0)
		*ret_layer = (uint64_t)sqlite3_column_int64(s, 0);
	done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

static void copy_name(char *dst, const unsigned char *src)
{
	snprintf(dst, COW_ENTITY_NAME_MAX + 1, "%s", src ? (const char *)src : "");
}

static void image_row(sqlite3_stmt *s, struct cow_image_info *i)
{
	memset(i, 0, sizeof(*i));
	copy_name(i->name, sqlite3_column_text(s, 0));
	i->layer = (uint64_t)sqlite3_column_int64(s, 1);
	i->parent = (uint64_t)sqlite3_column_int64(s, 2);
	i->created = sqlite3_column_int64(s, 3);
	i->objects = (uint64_t)sqlite3_column_int64(s, 4);
	i->bytes = (uint64_t)sqlite3_column_int64(s, 5);
	i->clients = (uint32_t)sqlite3_column_int64(s, 6);
}

int cow_db_image_foreach(struct cow_db *db, int (*fn)(void *arg, const struct cow_image_info *), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_IMAGE_ALL);
	if (!s)
		return -EIO;
	int r;
	while ((r = step(db, s)) > 0) {
		struct cow_image_info i;
		image_row(s, &i);
		r = fn(arg, &i);
		if (r)
			break;
	}
	done(s);
	return r;
}

int cow_db_image_info(struct cow_db *db, const char *name, struct cow_image_info *ret)
{
	sqlite3_stmt *s = stmt(db, S_IMAGE_INFO);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	int r = step(db, s);
	if (r > 0)
		image_row(s, ret);
	done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

/* The lowest free client id from @from on (up to COW_CLIENT_ID_MAX), 0 if
 * there is none. */
static int client_free_id(struct cow_db *db, uint64_t from, uint64_t *ret)
{
	sqlite3_stmt *s = stmt(db, S_CLIENT_FREE_ID);
	if (!s)
		return -EIO;
	bind_i64(s, ":from", (int64_t)from);
	bind_i64(s, ":max", COW_CLIENT_ID_MAX);
	int r = step(db, s);
	*ret = r > 0 ? (uint64_t)sqlite3_column_int64(s, 0) : 0; /* NULL reads as 0 */
	done(s);
	return r < 0 ? r : 0;
}

int cow_db_client_add(struct cow_db *db, const char *name, const char *image, uint64_t layer, uint64_t gen)
{
	/* next fit: the first free id after the one given last, so a freed id
	 * goes round the whole range before it is given again */
	uint64_t next, id;
	int r = cow_db_counter(db, "next_client", 0, &next);
	if (r == 0)
		r = client_free_id(db, next < 1 ? 1 : next, &id);
	if (r == 0 && id == 0)
		r = client_free_id(db, 1, &id);
	if (r == 0 && id == 0)
		r = -EUSERS;
	if (r < 0)
		return r;
	/* the cursor moves to id + 1, back too (the sum is modulo 2^64) */
	r = cow_db_counter(db, "next_client", id + 1 - next, &next);
	if (r < 0)
		return r;
	sqlite3_stmt *s = stmt(db, S_CLIENT_ADD);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	bind_text(s, ":image", image);
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":created", time(NULL));
	bind_i64(s, ":id", (int64_t)id);
	bind_i64(s, ":gen", (int64_t)gen);
	return run(db, s);
}

static void client_row(sqlite3_stmt *s, struct cow_client_info *c)
{
	copy_name(c->name, sqlite3_column_text(s, 0));
	copy_name(c->image, sqlite3_column_text(s, 1));
	c->layer = (uint64_t)sqlite3_column_int64(s, 2);
	c->created = sqlite3_column_int64(s, 3);
	c->id = (uint64_t)sqlite3_column_int64(s, 4);
	c->gen = (uint64_t)sqlite3_column_int64(s, 5);
	const unsigned char *v = sqlite3_column_text(s, 6);
	snprintf(c->serial, sizeof(c->serial), "%s", v ? (const char *)v : "");
	v = sqlite3_column_text(s, 7);
	snprintf(c->mac, sizeof(c->mac), "%s", v ? (const char *)v : "");
	v = sqlite3_column_text(s, 8);
	snprintf(c->boot_args, sizeof(c->boot_args), "%s", v ? (const char *)v : "");
	v = sqlite3_column_text(s, 9);
	snprintf(c->boot_dtb, sizeof(c->boot_dtb), "%s", v ? (const char *)v : "");
	v = sqlite3_column_text(s, 10);
	c->reset_on_boot = v && !strcmp((const char *)v, "reset");
	c->quota_bytes = (uint64_t)sqlite3_column_int64(s, 11);
	c->quota_files = (uint64_t)sqlite3_column_int64(s, 12);
}

/* The one client statement @id finds with @value bound to @param;
 * -ENOENT if none, @ret untouched then. */
static int client_one(struct cow_db *db, enum stmt_id id, const char *param, const char *value,
		      struct cow_client_info *ret)
{
	sqlite3_stmt *s = stmt(db, id);
	if (!s)
		return -EIO;
	bind_text(s, param, value);
	int r = step(db, s);
	if (r > 0) {
		memset(ret, 0, sizeof(*ret));
		client_row(s, ret);
	}
	done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_client_get(struct cow_db *db, const char *name, struct cow_client_info *ret)
{
	return client_one(db, S_CLIENT_GET, ":name", name, ret);
}

int cow_db_client_by(struct cow_db *db, const char *column, const char *value, struct cow_client_info *ret)
{
	return client_one(db, !strcmp(column, "mac") ? S_CLIENT_BY_MAC : S_CLIENT_BY_SERIAL, ":value", value, ret);
}

/* Bind @v, or NULL for "" (the unique indexes skip NULLs). */
static void bind_text_or_null(sqlite3_stmt *s, const char *name, const char *v)
{
	if (*v)
		bind_text(s, name, v);
	else
		sqlite3_bind_null(s, sqlite3_bind_parameter_index(s, name));
}

int cow_db_client_set_boot(struct cow_db *db, const char *name, const struct cow_client_info *c)
{
	sqlite3_stmt *s = stmt(db, S_CLIENT_SET_BOOT);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	bind_text_or_null(s, ":serial", c->serial);
	bind_text_or_null(s, ":mac", c->mac);
	bind_text_or_null(s, ":boot_args", c->boot_args);
	bind_text_or_null(s, ":boot_dtb", c->boot_dtb);
	int r = run(db, s);
	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return r;
}

int cow_db_client_set_on_boot(struct cow_db *db, const char *name, bool reset)
{
	sqlite3_stmt *s = stmt(db, S_CLIENT_SET_ON_BOOT);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	bind_text_or_null(s, ":on_boot", reset ? "reset" : "");
	int r = run(db, s);
	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return r;
}

int cow_db_client_set(struct cow_db *db, const char *name, const char *image, uint64_t layer)
{
	sqlite3_stmt *s = stmt(db, S_CLIENT_SET);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	bind_text(s, ":image", image);
	bind_i64(s, ":layer", (int64_t)layer);
	int r = run(db, s);
	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return r;
}

/* Run a statement with one :name bind; -ENOENT if it changed nothing. */
static int run_by_name(struct cow_db *db, enum stmt_id id, const char *name)
{
	sqlite3_stmt *s = stmt(db, id);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	int r = run(db, s);
	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return r;
}

int cow_db_client_del(struct cow_db *db, const char *name)
{
	return run_by_name(db, S_CLIENT_DEL, name);
}

int cow_db_image_del(struct cow_db *db, const char *name)
{
	return run_by_name(db, S_IMAGE_DEL, name);
}

int cow_db_image_by_layer(struct cow_db *db, uint64_t layer, char *ret_name)
{
	sqlite3_stmt *s = stmt(db, S_IMAGE_BY_LAYER);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	int r = step(db, s);
	if (r > 0)
		copy_name(ret_name, sqlite3_column_text(s, 0));
	done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_image_users(struct cow_db *db, const char *name, uint64_t layer,
		       int (*fn)(void *arg, const char *kind, const char *name), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_IMAGE_USERS);
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	bind_i64(s, ":layer", (int64_t)layer);
	int r;
	while ((r = step(db, s)) > 0) {
		char kind[16], who[COW_ENTITY_NAME_MAX + 1];
		snprintf(kind, sizeof(kind), "%s", (const char *)sqlite3_column_text(s, 0));
		copy_name(who, sqlite3_column_text(s, 1));
		r = fn(arg, kind, who);
		if (r)
			break;
	}
	done(s);
	return r;
}

int cow_db_client_foreach(struct cow_db *db, int (*fn)(void *arg, const struct cow_client_info *), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_CLIENT_ALL);
	if (!s)
		return -EIO;
	int r;
	while ((r = step(db, s)) > 0) {
		struct cow_client_info c = {0};
		client_row(s, &c);
		c.objects =
		    (uint64_t)sqlite3_column_int64(s, sqlite3_column_count(s) - 1); /* the count after CLIENT_INFO */
		r = fn(arg, &c);
		if (r)
			break;
	}
	done(s);
	return r;
}

/* ---- inodes ---- */

int cow_db_inode_get(struct cow_db *db, uint64_t layer, uint64_t ino, struct cow_irow *ret)
{
	sqlite3_stmt *s = stmt(db, S_INODE_GET);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)ino);
	int r = step(db, s);
	if (r > 0) {
		struct cow_irow row = {.ino = ino};
		row.mode = (uint32_t)sqlite3_column_int64(s, 0);
		row.nlink = (uint32_t)sqlite3_column_int64(s, 1);
		row.uid = (uint32_t)sqlite3_column_int64(s, 2);
		row.gid = (uint32_t)sqlite3_column_int64(s, 3);
		row.rdev = (uint64_t)sqlite3_column_int64(s, 4);
		row.size = sqlite3_column_int64(s, 5);
		row.atime = sqlite3_column_int64(s, 6);
		row.mtime = sqlite3_column_int64(s, 7);
		row.ctime = sqlite3_column_int64(s, 8);
		row.data_layer = (uint64_t)sqlite3_column_int64(s, 9);
		if (sqlite3_column_type(s, 10) != SQLITE_NULL) {
			int n = sqlite3_column_bytes(s, 10);
			row.target = malloc((size_t)n + 1);
			if (!row.target) {
				done(s);
				return -ENOMEM;
			}
			memcpy(row.target, sqlite3_column_blob(s, 10), (size_t)n);
			row.target[n] = 0;
		}
		*ret = row;
	}
	done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_inode_put(struct cow_db *db, uint64_t layer, const struct cow_irow *row)
{
	sqlite3_stmt *s = stmt(db, S_INODE_PUT);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)row->ino);
	bind_i64(s, ":mode", row->mode);
	bind_i64(s, ":nlink", row->nlink);
	bind_i64(s, ":uid", row->uid);
	bind_i64(s, ":gid", row->gid);
	bind_i64(s, ":rdev", (int64_t)row->rdev);
	bind_i64(s, ":size", row->size);
	bind_i64(s, ":atime", row->atime);
	bind_i64(s, ":mtime", row->mtime);
	bind_i64(s, ":ctime", row->ctime);
	bind_i64(s, ":data_layer", (int64_t)row->data_layer);
	if (row->target)
		bind_blob(s, ":target", row->target, strlen(row->target));
	return run(db, s);
}

int cow_db_inode_del(struct cow_db *db, uint64_t layer, uint64_t ino)
{
	sqlite3_stmt *s = stmt(db, S_INODE_DEL);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)ino);
	return run(db, s);
}

int cow_db_inode_foreach_unlinked(struct cow_db *db, uint64_t layer,
				  int (*fn)(void *arg, uint64_t ino, uint64_t data_layer), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_INODE_UNLINKED);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	/* collect first: @fn may change the table */
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	int r;
	while ((r = step(db, s)) > 0) {
		if (n + 2 > cap) {
			cap = cap ? cap * 2 : 64;
			uint64_t *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[n++] = (uint64_t)sqlite3_column_int64(s, 0);
		v[n++] = (uint64_t)sqlite3_column_int64(s, 1);
	}
	done(s);
	for (size_t i = 0; r == 0 && i < n; i += 2)
		r = fn(arg, v[i], v[i + 1]);
	free(v);
	return r;
}

int cow_db_data_foreach(struct cow_db *db, int (*fn)(void *arg, uint64_t layer, uint64_t ino), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_DATA_ALL);
	if (!s)
		return -EIO;
	int r;
	while ((r = step(db, s)) > 0) {
		r = fn(arg, (uint64_t)sqlite3_column_int64(s, 0), (uint64_t)sqlite3_column_int64(s, 1));
		if (r)
			break;
	}
	done(s);
	return r;
}

bool cow_db_data_referenced(struct cow_db *db, uint64_t layer, uint64_t ino)
{
	sqlite3_stmt *s = stmt(db, S_DATA_REF);
	if (!s)
		return true;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)ino);
	int r = step(db, s);
	done(s);
	return r != 0;
}

/* ---- dirents ---- */

int cow_db_dirent_get(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t *ret_ino,
		      int *ret_type)
{
	sqlite3_stmt *s = stmt(db, S_DIRENT_GET);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":parent", (int64_t)parent);
	bind_blob(s, ":name", name, strlen(name));
	int r = step(db, s);
	if (r > 0) {
		*ret_ino = (uint64_t)sqlite3_column_int64(s, 0);
		if (ret_type)
			*ret_type = sqlite3_column_int(s, 1);
	}
	done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

/* One entry, through S_DIRENT_PUT (replacing) or S_DIRENT_ADD (not). */
static int dirent_write(struct cow_db *db, enum stmt_id id, uint64_t layer, uint64_t parent, const char *name,
			uint64_t ino, int type)
{
	sqlite3_stmt *s = stmt(db, id);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":parent", (int64_t)parent);
	bind_blob(s, ":name", name, strlen(name));
	bind_i64(s, ":ino", (int64_t)ino);
	bind_i64(s, ":type", type);
	return run(db, s);
}

int cow_db_dirent_put(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t ino, int type)
{
	return dirent_write(db, S_DIRENT_PUT, layer, parent, name, ino, type);
}

int cow_db_dirent_del(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name)
{
	sqlite3_stmt *s = stmt(db, S_DIRENT_DEL);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":parent", (int64_t)parent);
	bind_blob(s, ":name", name, strlen(name));
	return run(db, s);
}

int cow_db_dirent_del_parent(struct cow_db *db, uint64_t layer, uint64_t parent)
{
	sqlite3_stmt *s = stmt(db, S_DIRENT_DEL_PARENT);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":parent", (int64_t)parent);
	return run(db, s);
}

int cow_db_dirent_foreach(struct cow_db *db, uint64_t layer, uint64_t parent,
			  int (*fn)(void *arg, const char *name, uint64_t ino, int type), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_DIRENT_LIST);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":parent", (int64_t)parent);
	int r;
	char name[COW_NAME_MAX + 1];
	while ((r = step(db, s)) > 0) {
		int n = sqlite3_column_bytes(s, 0);
		if (n <= 0 || n > COW_NAME_MAX) {
			r = -EIO;
			break;
		}
		memcpy(name, sqlite3_column_blob(s, 0), (size_t)n);
		name[n] = 0;
		r = fn(arg, name, (uint64_t)sqlite3_column_int64(s, 1), sqlite3_column_int(s, 2));
		if (r)
			break;
	}
	done(s);
	return r;
}

/* ---- xattrs ---- */

int cow_db_xattr_foreach(struct cow_db *db, uint64_t layer, uint64_t ino,
			 int (*fn)(void *arg, const char *name, const void *value, size_t size), void *arg)
{
	sqlite3_stmt *s = stmt(db, S_XATTR_LIST);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)ino);
	int r;
	char name[COW_XATTR_NAME_MAX + 1];
	while ((r = step(db, s)) > 0) {
		int n = sqlite3_column_bytes(s, 0);
		if (n <= 0 || n > COW_XATTR_NAME_MAX) {
			r = -EIO;
			break;
		}
		memcpy(name, sqlite3_column_blob(s, 0), (size_t)n);
		name[n] = 0;
		const void *val = sqlite3_column_blob(s, 1);
		r = fn(arg, name, val, (size_t)sqlite3_column_bytes(s, 1));
		if (r)
			break;
	}
	done(s);
	return r;
}

int cow_db_xattr_put(struct cow_db *db, uint64_t layer, uint64_t ino, const char *name, const void *value, size_t size)
{
	sqlite3_stmt *s = stmt(db, S_XATTR_PUT);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)ino);
	bind_blob(s, ":name", name, strlen(name));
	bind_blob(s, ":value", value, size);
	return run(db, s);
}

int cow_db_xattr_del(struct cow_db *db, uint64_t layer, uint64_t ino, const char *name)
{
	sqlite3_stmt *s = stmt(db, S_XATTR_DEL);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)ino);
	bind_blob(s, ":name", name, strlen(name));
	return run(db, s);
}

int cow_db_xattr_copy(struct cow_db *db, uint64_t from_layer, uint64_t to_layer, uint64_t ino)
{
	sqlite3_stmt *s = stmt(db, S_XATTR_COPY);
	if (!s)
		return -EIO;
	bind_i64(s, ":from", (int64_t)from_layer);
	bind_i64(s, ":to", (int64_t)to_layer);
	bind_i64(s, ":ino", (int64_t)ino);
	return run(db, s);
}

int cow_db_xattr_del_all(struct cow_db *db, uint64_t layer, uint64_t ino)
{
	sqlite3_stmt *s = stmt(db, S_XATTR_DEL_ALL);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)ino);
	return run(db, s);
}

/* ---- fsck ---- */

int cow_db_integrity(struct cow_db *db, bool full, bool *ret_ok)
{
	sqlite3_stmt *s;
	read_end(db);
	int rc =
	    sqlite3_prepare_v2(db->sql, full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return map_rc(db, rc);
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
	int r = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : map_rc(db, rc);
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
			return map_rc(db, rc);
		rc = sqlite3_step(s);
		int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
		sqlite3_finalize(s);
		if (rc != SQLITE_ROW)
			return map_rc(db, rc);
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

/* ---- tree checks: load and fsck (see tree.c) ----
 * Statements prepared per call (one per layer checked), but for
 * S_DIRENT_ADD, which runs once per name loaded. */

static sqlite3_stmt *prepare_once(struct cow_db *db, const char *sql);

int cow_db_dirent_add(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t ino, int type)
{
	/* a taken name: SQLITE_CONSTRAINT, -EEXIST */
	return dirent_write(db, S_DIRENT_ADD, layer, parent, name, ino, type);
}

int cow_db_layer_rows(struct cow_db *db, uint64_t layer,
		      int (*fn)(void *arg, uint64_t ino, uint32_t mode, uint32_t nlink), void *arg)
{
	sqlite3_stmt *s = prepare_once(db, "SELECT ino, mode, nlink FROM inodes WHERE layer = :layer ORDER BY ino");
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	int r;
	while ((r = step(db, s)) > 0) {
		r = fn(arg, (uint64_t)sqlite3_column_int64(s, 0), (uint32_t)sqlite3_column_int64(s, 1),
		       (uint32_t)sqlite3_column_int64(s, 2));
		if (r)
			break;
	}
	sqlite3_finalize(s);
	return r;
}

int cow_db_layer_names(struct cow_db *db, uint64_t layer,
		       int (*fn)(void *arg, uint64_t parent, const char *name, size_t len, uint64_t ino, int type),
		       void *arg)
{
	sqlite3_stmt *s = prepare_once(db, "SELECT parent, name, ino, type FROM dirents WHERE layer = :layer");
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	int r;
	char name[COW_NAME_MAX + 2];
	while ((r = step(db, s)) > 0) {
		/* whatever is there, cut one past the longest valid name */
		size_t n = (size_t)sqlite3_column_bytes(s, 1);
		size_t len = n;
		if (n > COW_NAME_MAX + 1)
			n = COW_NAME_MAX + 1;
		if (n)
			memcpy(name, sqlite3_column_blob(s, 1), n);
		name[n] = 0;
		r = fn(arg, (uint64_t)sqlite3_column_int64(s, 0), name, len, (uint64_t)sqlite3_column_int64(s, 2),
		       sqlite3_column_int(s, 3));
		if (r)
			break;
	}
	sqlite3_finalize(s);
	return r;
}

/* ---- serving: client addresses ----
 * Statements prepared per call: these run once per admin command. */

static sqlite3_stmt *prepare_once(struct cow_db *db, const char *sql)
{
	read_end(db);
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		map_rc(db, rc);
		return NULL;
	}
	return s;
}

int cow_db_client_addrs(struct cow_db *db, const char *name, char *addrs, size_t size)
{
	sqlite3_stmt *s = prepare_once(db, "SELECT addrs FROM clients WHERE name = :name");
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	int r = step(db, s);
	if (r > 0) {
		const unsigned char *a = sqlite3_column_text(s, 0);
		snprintf(addrs, size, "%s", a ? (const char *)a : "");
	}
	sqlite3_finalize(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_client_set_addrs(struct cow_db *db, const char *name, const char *addrs)
{
	sqlite3_stmt *s = prepare_once(db, "UPDATE clients SET addrs = :addrs WHERE name = :name");
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	bind_text(s, ":addrs", addrs);
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? (sqlite3_changes(db->sql) ? 0 : -ENOENT) : map_rc(db, rc);
	sqlite3_finalize(s);
	return r;
}

/* ---- quotas ---- */

int cow_db_xattr_bytes(struct cow_db *db, uint64_t layer, uint64_t ino, int64_t *ret)
{
	sqlite3_stmt *s = stmt(db, S_XATTR_BYTES);
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	bind_i64(s, ":ino", (int64_t)ino);
	int r = step(db, s);
	if (r > 0)
		*ret = sqlite3_column_int64(s, 0);
	done(s);
	return r < 0 ? r : r == 0 ? -EIO : 0;
}

int cow_db_layer_usage(struct cow_db *db, uint64_t layer, int64_t *ret_files, int64_t *ret_xattr_bytes)
{
	sqlite3_stmt *s = prepare_once(db, "SELECT (SELECT count(*) FROM inodes WHERE layer = :layer AND mode != 0),"
					   " (SELECT ifnull(sum(length(name) + 1 + length(value)), 0) FROM xattrs"
					   " WHERE layer = :layer)");
	if (!s)
		return -EIO;
	bind_i64(s, ":layer", (int64_t)layer);
	int r = step(db, s);
	if (r > 0) {
		*ret_files = sqlite3_column_int64(s, 0);
		*ret_xattr_bytes = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	return r < 0 ? r : r == 0 ? -EIO : 0;
}

/* Bind @v, or NULL for 0 (no limit). */
static void bind_limit(sqlite3_stmt *s, const char *name, uint64_t v)
{
	if (v)
		bind_i64(s, name, (int64_t)v);
	else
		sqlite3_bind_null(s, sqlite3_bind_parameter_index(s, name));
}

int cow_db_client_set_quota(struct cow_db *db, const char *name, uint64_t bytes, uint64_t files)
{
	sqlite3_stmt *s = prepare_once(db, "UPDATE clients SET quota_bytes = :bytes, quota_files = :files"
					   " WHERE name = :name");
	if (!s)
		return -EIO;
	bind_text(s, ":name", name);
	bind_limit(s, ":bytes", bytes);
	bind_limit(s, ":files", files);
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? (sqlite3_changes(db->sql) ? 0 : -ENOENT) : map_rc(db, rc);
	sqlite3_finalize(s);
	return r;
}

int cow_db_default_quota(struct cow_db *db, uint64_t *ret_bytes, uint64_t *ret_files)
{
	sqlite3_stmt *s =
	    prepare_once(db, "SELECT ifnull((SELECT value FROM meta WHERE key = 'default_quota_bytes'), 0),"
			     " ifnull((SELECT value FROM meta WHERE key = 'default_quota_files'), 0)");
	if (!s)
		return -EIO;
	int r = step(db, s);
	if (r > 0) {
		*ret_bytes = (uint64_t)sqlite3_column_int64(s, 0);
		*ret_files = (uint64_t)sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	return r < 0 ? r : r == 0 ? -EIO : 0;
}

static int meta_limit_set(struct cow_db *db, const char *key, uint64_t v)
{
	sqlite3_stmt *s = prepare_once(db, v ? "INSERT OR REPLACE INTO meta (key, value) VALUES (:key, :value)"
					     : "DELETE FROM meta WHERE key = :key");
	if (!s)
		return -EIO;
	bind_text(s, ":key", key);
	if (v)
		bind_i64(s, ":value", (int64_t)v);
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : map_rc(db, rc);
	sqlite3_finalize(s);
	return r;
}

int cow_db_set_default_quota(struct cow_db *db, uint64_t bytes, uint64_t files)
{
	int r = meta_limit_set(db, "default_quota_bytes", bytes);
	return r < 0 ? r : meta_limit_set(db, "default_quota_files", files);
}
