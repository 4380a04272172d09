/* SPDX-License-Identifier: MIT */
/*
 * The store's private header: what store.c (the connection: locking,
 * turns, batches, the redo log, transactions, fsck of the database) and
 * store-tables.c (the tables: layers, images, clients, objects, names,
 * xattrs, quotas) share.  Only these two files include sqlite3.h.
 */
#ifndef COW_STORE_PRIVATE_H
#define COW_STORE_PRIVATE_H

#include <sqlite3.h>

#include "cow-private.h"

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
	S_LAYER_SET_DIGEST,
	S_LAYER_BY_DIGEST,
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

/* The SQL of each prepared statement (store-tables.c). */
extern const char *const cow_stmt_sql[S_COUNT];

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

/* Statement @id, prepared once per connection and reset after use (a
 * query of objects joins the shared read transaction, see read_begin). */
sqlite3_stmt *cow_sql_stmt(struct cow_db *db, enum stmt_id id);
/* A statement of an admin command, prepared for this call only
 * (sqlite3_finalize it). */
sqlite3_stmt *cow_sql_prepare_once(struct cow_db *db, const char *sql);
void cow_sql_bind_i64(sqlite3_stmt *s, const char *name, int64_t v);
void cow_sql_bind_text(sqlite3_stmt *s, const char *name, const char *v);
void cow_sql_bind_blob(sqlite3_stmt *s, const char *name, const void *v, size_t n);
/* Run @s to completion (no rows expected): 0 or -errno. */
int cow_sql_run(struct cow_db *db, sqlite3_stmt *s);
/* First step of a query: 1 row, 0 no row, <0 error. */
int cow_sql_step(struct cow_db *db, sqlite3_stmt *s);
/* Reset @s and clear its bindings. */
void cow_sql_done(sqlite3_stmt *s);
/* An sqlite result code as -errno (and what it does to the store: a
 * corrupt database is marked damaged). */
int cow_sql_map_rc(struct cow_db *db, int rc);

#endif
