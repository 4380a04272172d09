/* SPDX-License-Identifier: MIT */
/*
 * Private core header: the structures behind cowroot.h and the prototypes
 * shared between core files, grouped by file.
 *
 * Lock order (take left before right, never the reverse):
 *   view.ns_lock  ->  inode.lock  ->  view.itable_lock / view.dirty_lock  ->  db.lock
 * ns_lock (rwlock) serialises namespace changes (create, unlink, rename...)
 * against lookups and readdir.  An inode lock is held for one inode at a
 * time.  db.lock guards the one sqlite connection of the process.
 */
#ifndef COW_PRIVATE_H
#define COW_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "cowroot.h"

#define COW_MAX_LAYERS 64
#define COW_INO_BATCH 4096
/* STORE/tmp-boot-XXXXXX: where a disk import copies the boot partition out,
 * locked (flock) by the import while it runs; fsck and gc remove one whose
 * import died */
#define COW_TMP_BOOT_PREFIX "tmp-boot-"

/* One version of an object as stored in a layer. */
struct cow_irow {
	uint64_t ino;
	uint32_t mode, nlink, uid, gid;
	uint64_t rdev;
	int64_t size;
	int64_t atime, mtime, ctime; /* ns since the epoch */
	uint64_t data_layer;	     /* layer whose data file holds the content, 0 = none */
	char *target;		     /* symlink target, malloc'd, or NULL */
};

struct cow_layer_info {
	uint64_t id, parent, root;
	int kind;
	int64_t created;
	char digest[COW_DIGEST_LEN + 1]; /* its OCI chain id, "" if none (schema 8) */
};

enum { COW_LAYER_IMAGE = 0, COW_LAYER_CLIENT = 1, COW_LAYER_DEAD = 2 };

/* ---- store.c, store-tables.c: the only code that talks to sqlite ---- */
struct cow_db;

/* Open STORE/cowroot.db: @dirfd is the store directory (duplicated: every
 * file beside the database is reached through it), @path the database's
 * absolute path (for sqlite).  Refuses (-ENODATA, -EMEDIUMTYPE, -EPROTO)
 * a database that is empty, foreign or newer unless @flags has
 * COW_STORE_CREATE and the file is new; -EUCLEAN for a writer while the
 * store is marked damaged (see cow_db_mark_damaged), unless
 * COW_STORE_REPAIR; cow_db_open_errmsg() says why. */
int cow_db_open(int dirfd, const char *path, int flags, struct cow_db **ret);
/* The reason of the calling thread's last failed cow_db_open. */
const char *cow_db_open_errmsg(void);
/* The damaged mark: cowroot.db-damaged beside the database, holding why.
 * Set when sqlite reports corruption or an integrity check fails, cleared
 * by fsck once the database passes a full check. */
void cow_db_mark_damaged(struct cow_db *db, const char *why);
void cow_db_clear_damaged(struct cow_db *db);
bool cow_db_marked_damaged(struct cow_db *db);
/* Try to repair what sqlite can rebuild (the indexes): 0 when the database
 * then passes the full integrity check, -EUCLEAN when it still does not
 * (cow_db_errmsg says what is wrong), or another -errno. */
int cow_db_repair(struct cow_db *db);
void cow_db_close(struct cow_db *db);
const char *cow_db_errmsg(struct cow_db *db);
void cow_db_lock(struct cow_db *db);
void cow_db_unlock(struct cow_db *db);
/* Transactions (caller holds the db lock).  commit(durable) syncs the WAL. */
int cow_db_begin(struct cow_db *db);
int cow_db_commit(struct cow_db *db, bool durable);
/* Is the file system so full that the database's reserve is in use?  New
 * objects and xattrs are then refused (-ENOSPC), so that what room is left
 * records removals.  Takes the db lock (do not hold it). */
bool cow_db_space_low(struct cow_db *db);
void cow_db_rollback(struct cow_db *db);
/* Batches (caller holds the db lock).  While batching is on (a view's
 * flusher runs), an operation begun with cow_db_begin_batched() and
 * committed non-durably joins one open transaction instead of committing
 * on its own: cow_db_flush() (the flusher, within a second), any durable
 * commit and any transaction begun with cow_db_begin() commit the batch.
 * Operations stay atomic and ordered, so a crash loses at most the
 * newest ones; cow_db_rollback() undoes one operation, not the batch.
 * A batch whose commit fails is done again from its redo log (store.c)
 * until it commits; meanwhile later writes and syncs fail, unacknowledged. */
void cow_db_batching(struct cow_db *db, bool on);
int cow_db_begin_batched(struct cow_db *db);
int cow_db_flush(struct cow_db *db, bool durable);
/* Make every commit so far durable (the WAL synced), without the db lock:
 * syncs of concurrent callers are grouped (group commit). */
int cow_db_sync(struct cow_db *db);
/* While batching is on, queries of objects (inodes, names, xattrs) also
 * share one read transaction, up to a second old (store.c, read_begin). */
/* Data first: @fd (owned by the db from now on) is fdatasync'd before
 * the next commit, which may be that of a batch a second later; inside
 * a transaction. */
int cow_db_sync_before_commit(struct cow_db *db, int fd);
/* @fn(@arg) runs before every commit, with the data files' syncs: what
 * the commit's records name is made durable first. */
void cow_db_set_presync(struct cow_db *db, int (*fn)(void *arg), void *arg);
/* A data file, for removal once no committed record names it. */
struct cow_data_ref {
	uint64_t layer, ino;
};
/* Queue the removal of a data file right after the commit that dropped
 * its last record; cow_db_take_unlinks() hands over (a malloc'd array)
 * the queued files whose commit is done, batch included. */
int cow_db_unlink_after_commit(struct cow_db *db, uint64_t layer, uint64_t ino);
size_t cow_db_take_unlinks(struct cow_db *db, struct cow_data_ref **ret);

int cow_db_alloc_inos(struct cow_db *db, uint64_t n, uint64_t *ret_first);
/* Take @n values of the meta counter @key. */
int cow_db_counter(struct cow_db *db, const char *key, uint64_t n, uint64_t *ret_first);
int cow_db_layer_add(struct cow_db *db, uint64_t parent, int kind, uint64_t root, uint64_t *ret_id);
int cow_db_layer_get(struct cow_db *db, uint64_t id, struct cow_layer_info *ret);
int cow_db_layer_set_kind(struct cow_db *db, uint64_t id, int kind);
int cow_db_layer_drop_rows(struct cow_db *db, uint64_t id);
int cow_db_layer_set_digest(struct cow_db *db, uint64_t id, const char *digest);
/* The oldest image layer (kind COW_LAYER_IMAGE) with OCI chain id @digest. */
int cow_db_layer_by_digest(struct cow_db *db, const char *digest, uint64_t *ret_id);
int cow_db_image_add(struct cow_db *db, const char *name, uint64_t layer);
int cow_db_image_get(struct cow_db *db, const char *name, uint64_t *ret_layer);
int cow_db_image_foreach(struct cow_db *db, int (*fn)(void *arg, const struct cow_image_info *), void *arg);
int cow_db_image_info(struct cow_db *db, const char *name, struct cow_image_info *ret);
/* Record client @name with generation @gen under a free id (see
 * cow_client_add); -EUSERS if all COW_CLIENT_ID_MAX ids are taken. */
int cow_db_client_add(struct cow_db *db, const char *name, const char *image, uint64_t layer, uint64_t gen);
int cow_db_client_get(struct cow_db *db, const char *name, struct cow_client_info *ret);
int cow_db_client_set(struct cow_db *db, const char *name, const char *image, uint64_t layer);
int cow_db_client_del(struct cow_db *db, const char *name);
int cow_db_image_del(struct cow_db *db, const char *name);
int cow_db_image_by_layer(struct cow_db *db, uint64_t layer, char *ret_name);
int cow_db_image_users(struct cow_db *db, const char *name, uint64_t layer,
		       int (*fn)(void *arg, const char *kind, const char *name), void *arg);
int cow_db_layer_del(struct cow_db *db, uint64_t id);
int cow_db_layer_set_parent(struct cow_db *db, uint64_t id, uint64_t parent);
/* Counts of one layer (disk_bytes left 0). */
int cow_db_layer_stats(struct cow_db *db, uint64_t layer, struct cow_layer_stats *ret);
/* Every row of a layer, by ino (target not loaded). */
int cow_db_layer_inodes(struct cow_db *db, uint64_t layer, int (*fn)(void *arg, const struct cow_irow *row), void *arg);
/* Every entry of a layer, by (parent, name); ino 0 is a whiteout. */
int cow_db_layer_dirents(struct cow_db *db, uint64_t layer,
			 int (*fn)(void *arg, uint64_t parent, const char *name, uint64_t ino, int type), void *arg);
int cow_db_client_foreach(struct cow_db *db, int (*fn)(void *arg, const struct cow_client_info *), void *arg);
/* Every layer id, with its kind, for fsck. */
int cow_db_layer_foreach(struct cow_db *db, int (*fn)(void *arg, const struct cow_layer_info *), void *arg);
bool cow_db_layer_used(struct cow_db *db, uint64_t id);
/* Was layer @id ever recorded in this database (it may be gone since)?
 * Data files of a layer that never was are not this database's leftovers
 * (a database replaced by another's): nothing removes them. */
bool cow_db_layer_known(struct cow_db *db, uint64_t id);

int cow_db_inode_get(struct cow_db *db, uint64_t layer, uint64_t ino, struct cow_irow *ret);
int cow_db_inode_put(struct cow_db *db, uint64_t layer, const struct cow_irow *row);
int cow_db_inode_del(struct cow_db *db, uint64_t layer, uint64_t ino);
/* Rows with nlink 0 in @layer (left by a crash while unlinked files were open). */
int cow_db_inode_foreach_unlinked(struct cow_db *db, uint64_t layer,
				  int (*fn)(void *arg, uint64_t ino, uint64_t data_layer), void *arg);
/* Every row referencing a data file: (layer, ino) pairs with data_layer == layer. */
int cow_db_data_foreach(struct cow_db *db, int (*fn)(void *arg, uint64_t layer, uint64_t ino), void *arg);
bool cow_db_data_referenced(struct cow_db *db, uint64_t layer, uint64_t ino);

int cow_db_dirent_get(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t *ret_ino,
		      int *ret_type);
int cow_db_dirent_put(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t ino, int type);
int cow_db_dirent_del(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name);
int cow_db_dirent_del_parent(struct cow_db *db, uint64_t layer, uint64_t parent);
int cow_db_dirent_foreach(struct cow_db *db, uint64_t layer, uint64_t parent,
			  int (*fn)(void *arg, const char *name, uint64_t ino, int type), void *arg);

int cow_db_xattr_foreach(struct cow_db *db, uint64_t layer, uint64_t ino,
			 int (*fn)(void *arg, const char *name, const void *value, size_t size), void *arg);
int cow_db_xattr_put(struct cow_db *db, uint64_t layer, uint64_t ino, const char *name, const void *value, size_t size);
int cow_db_xattr_del(struct cow_db *db, uint64_t layer, uint64_t ino, const char *name);
int cow_db_xattr_copy(struct cow_db *db, uint64_t from_layer, uint64_t to_layer, uint64_t ino);
int cow_db_xattr_del_all(struct cow_db *db, uint64_t layer, uint64_t ino);

/* fsck helpers: dangling rows (dirents pointing at no inode in the view
 * chain of their layer, xattrs without inode) */
int cow_db_check_dangling(struct cow_db *db, bool repair, void (*log)(void *arg, const char *line), void *arg,
			  uint64_t *ret_count);
/* sqlite's own check (@full: integrity_check, else quick_check); a failed
 * one marks the store damaged, cow_db_errmsg() gives the first findings. */
int cow_db_integrity(struct cow_db *db, bool full, bool *ret_ok);
/* Tree checks (tree.c; load and fsck).  Add a name, -EEXIST if the layer
 * has it already (a bundle naming one entry twice). */
int cow_db_dirent_add(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t ino, int type);
/* Every row of @layer by ino, tombstones (mode 0) included. */
int cow_db_layer_rows(struct cow_db *db, uint64_t layer,
		      int (*fn)(void *arg, uint64_t ino, uint32_t mode, uint32_t nlink), void *arg);
/* Every entry of @layer as stored, bad names included: @name holds the
 * first bytes (at most COW_NAME_MAX + 1, NUL after them), @len the real
 * length. */
int cow_db_layer_names(struct cow_db *db, uint64_t layer,
		       int (*fn)(void *arg, uint64_t parent, const char *name, size_t len, uint64_t ino, int type),
		       void *arg);

/* ---- store.c / data.c: the store ---- */
struct cow_store {
	char *dir;
	int dirfd;  /* the store directory */
	int datafd; /* STORE/data */
	int lockfd; /* STORE/lock, shared flock while open */
	struct cow_db *db;
	bool readonly;
	char errmsg[2048]; /* what the last failed long operation was about, or "" */
	/* directories of data/ that gained names since the last commit
	 * (data.c, cow_data_sync_dirs) */
	pthread_mutex_t newdirs_lock;
	char **newdirs; /* relative to data/, "" for data/ (newdirs_lock) */
	size_t nnewdirs, capnewdirs;
};

/* data.c: data files are data/<layer>/<ino & 0xff, %02x>/<ino, %016llx> */
void cow_data_path(char *buf, size_t size, uint64_t layer, uint64_t ino);
int cow_data_open(struct cow_store *st, uint64_t layer, uint64_t ino, int flags, mode_t mode);
int cow_data_unlink(struct cow_store *st, uint64_t layer, uint64_t ino);
/* The data file of (@layer, @ino) was just created for a record to name:
 * its directory is fsync'd before the next commit.  Directories that
 * cow_data_open creates are listed so by itself. */
int cow_data_created(struct cow_store *st, uint64_t layer, uint64_t ino);
/* fsync every directory listed since the last call (@arg: the store); the
 * database calls it before each commit (cow_db_set_presync). */
int cow_data_sync_dirs(void *arg);
/* Remove the data file once the commit that dropped its record is done
 * (db lock held, called right after that commit); cow_data_reap() removes
 * those that are due. */
void cow_data_unlink_after_commit(struct cow_store *st, uint64_t layer, uint64_t ino);
void cow_data_reap(struct cow_store *st);
/* Remove directory @name of @dirfd and everything in it (0 if it is
 * missing); symlinks are removed, never followed. */
int cow_rm_tree_at(int dirfd, const char *name);
int cow_data_remove_layer(struct cow_store *st, uint64_t layer);
/* Call @fn for every data file of @layer: @dirfd is its subdirectory
 * @sub (data/<layer>/<sub>), @name the file. */
int cow_data_foreach(struct cow_store *st, uint64_t layer,
		     int (*fn)(void *arg, int dirfd, const char *sub, const char *name), void *arg);
/* Give layer @to the data file of (@from, @ino): a hard link (data files
 * of images are never written again), else a copy.  Not synced. */
int cow_data_share(struct cow_store *st, uint64_t from, uint64_t to, uint64_t ino);
/* Copy @in (from offset 0, @size bytes, keeping holes) into @out, sharing
 * extents where the file system can; with @sync fdatasync @out. */
int cow_data_copy(int in, int out, int64_t size, bool sync);
/* Write all @n bytes of @buf to @fd at @off (@off < 0: at the file
 * offset), looping over short writes: a short count is no error, the
 * next write gives the real one (-ENOSPC on a full disk; a write that
 * takes nothing is -ENOSPC too).  Every write of data or of a file the
 * core makes goes through it, so that no stale errno is ever reported. */
int cow_pwrite_all(int fd, const void *buf, size_t n, off_t off);

/* ---- view.c ---- */

/* An open data file shared by the opens of one inode; replaced (not
 * changed) by copy-up, so a reader holding a reference keeps a valid fd. */
struct cow_fd {
	int fd;
	bool writable;
	atomic_int refs;
};

struct cow_dent {
	char *name;    /* NULL: deleted slot */
	uint64_t ino;  /* 0: a whiteout hiding a lower entry (invisible) */
	uint8_t type;  /* DT_* */
	bool in_layer; /* its row is in the writable layer */
	bool lower;    /* a lower layer has this name (removing it needs a whiteout) */
	uint64_t seq;  /* order of addition: the readdir cookie (see cow_readdir_ino) */
};

/* The merged listing of one directory (protected by view.ns_lock: read for
 * lookups, write for changes). */
struct cow_dir {
	struct cow_dent *ents;
	size_t n, cap, live;
	uint32_t *slots; /* open hash of indexes + 1, 0 empty, UINT32_MAX deleted */
	size_t nslots;
	uint64_t last_seq; /* ents are in increasing seq order; compaction keeps it */
	/* a name was added, removed or changed since the load: a reload
	 * would not give the same seqs (readdir cookies), so it stays */
	bool changed;
};

struct cow_inode {
	uint64_t ino;
	struct cow_inode *hnext; /* itable chain, protected by view.itable_lock */
	uint64_t refs;		 /* lookups + opens + pins, protected by view.itable_lock */

	pthread_mutex_t lock;
	/* protected by lock: */
	struct cow_irow row;
	uint64_t row_layer; /* layer the row came from (== view layer once written there) */
	int64_t blocks;
	struct cow_fd *fd; /* current data fd, or NULL */
	int nopen;
	bool dirty;	    /* row has changes not yet in the database */
	bool destroyed;	    /* unlinked and its records removed */
	bool reset_gone;    /* went with a layer that was reset: unreachable, even through an open file */
	bool on_dirty_list; /* protected by view.dirty_lock */
	/* quota.c, protected by lock: what this object adds to the view's
	 * usage now (q_bytes, q_file), and the bytes of its xattrs in the
	 * view's layer (xattr_bytes, 0 while its row is below) */
	int64_t q_bytes;
	bool q_file;
	int64_t xattr_bytes;
	struct cow_inode *dirty_next;
	struct cow_xattr *xattrs; /* loaded list, valid if xattrs_loaded */
	bool xattrs_loaded;
	uint64_t parent;     /* for directories: the parent's ino (0 unknown) */
	struct cow_dir *dir; /* for directories: merged listing, once loaded (see cow_dir) */
	/* on the view's list of unreferenced inodes it may evict (view.lru),
	 * protected by view.itable_lock */
	struct cow_inode *lru_prev, *lru_next;
	bool on_lru;
};

struct cow_xattr {
	struct cow_xattr *next;
	char *name;
	void *value;
	size_t size;
};

/* What a writable client view's layer holds and may hold (quota.c): the
 * sums of its inodes' q_bytes/q_file, and of the objects not cached. */
struct cow_quota {
	bool tracking;			       /* a writable client view: usage is counted */
	_Atomic uint64_t max_bytes, max_files; /* 0: no limit */
	_Atomic int64_t bytes, files;
};

struct cow_view {
	struct cow_store *st;
	uint64_t layers[COW_MAX_LAYERS]; /* top first; layers[0] is writable unless readonly */
	int nlayers;
	uint64_t layer; /* the writable layer, 0 if readonly */
	uint64_t root;
	bool readonly;
	bool caller_times;   /* writes do not touch mtime/ctime */
	bool refs_are_opens; /* see cow_view_set_refs_are_opens */
	int layer_lockfd;
	/* the layer is recovered (or was stopped cleanly): a clean close may
	 * clear the lock file's record (see layer_mark in view.c) */
	bool layer_ready;
	uint64_t client_id;
	uint64_t client_gen;
	char *client; /* client name, NULL for an image view */
	char *holder; /* what cow_view_set_holder said */

	pthread_rwlock_t ns_lock;

	pthread_mutex_t itable_lock;
	struct cow_inode **itable;
	size_t itable_size, itable_count;
	/* Unreferenced inodes that may go (oldest first), under itable_lock:
	 * clean files, and directories whose listing can be dropped (see
	 * lru_trim in view.c).  At most lru_max stay. */
	struct cow_inode *lru_head, *lru_tail;
	size_t lru_count, lru_max;

	pthread_mutex_t ino_lock; /* protects next_ino, end_ino */
	uint64_t next_ino, end_ino;

	pthread_mutex_t dirty_lock;
	struct cow_inode *dirty;
	pthread_t flusher;
	pthread_cond_t flusher_cond;
	bool flusher_running, stopping;
	bool batching; /* this view turned db batching on */
	struct cow_quota quota;
};

struct cow_file {
	struct cow_view *v;
	struct cow_inode *ip;
	int flags;
};

struct cow_dirh {
	struct cow_view *v;
	struct cow_inode *ip;
	uint64_t parent;
	struct cow_dent *ents; /* snapshot */
	size_t n;
};

int64_t cow_now_ns(void);
static inline int64_t cow_ts_to_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}
void cow_ns_to_ts(int64_t ns, struct timespec *ts);

/* Find or load the inode @ino and take @n references (n may be 0 for a
 * temporary pin, which is then released with cow_inode_put).  -ENOENT if
 * no layer of the view has it. */
int cow_inode_get(struct cow_view *v, uint64_t ino, struct cow_inode **ret);
void cow_inode_put(struct cow_view *v, struct cow_inode *ip);
/* The cached parent of directory @ino (0 if not cached or unknown). */
uint64_t cow_inode_parent(struct cow_view *v, uint64_t ino);
/* After a rolled-back transaction: make @ip what the database says again
 * (row, cached listing, xattrs).  Inode lock not held. */
void cow_inode_reload(struct cow_view *v, struct cow_inode *ip);
/* Insert a new object (row owned by the caller, moved into the inode). */
int cow_inode_new(struct cow_view *v, const struct cow_irow *row, uint64_t parent, struct cow_inode **ret);
/* References held by anyone but the dirty list (which only keeps the
 * inode until written back). */
uint64_t cow_inode_holders(struct cow_view *v, struct cow_inode *ip);
void cow_inode_fill_attr(struct cow_inode *ip, struct cow_attr *ret);
/* Write the row to the writable layer (inode lock and db lock held, inside
 * a transaction); copies xattrs on the first write of a base object. */
int cow_inode_store(struct cow_view *v, struct cow_inode *ip);
void cow_inode_mark_dirty(struct cow_view *v, struct cow_inode *ip);
int cow_alloc_ino(struct cow_view *v, uint64_t *ret);
/* Take the write lock of @layer (data/<layer>.lock) into *ret_fd;
 * -EBUSY if another open file description holds it. */
int cow_layer_lock(struct cow_store *st, uint64_t layer, int *ret_fd);
/* The same lock shared: what readers of an image hold (-EBUSY while
 * someone holds it exclusively). */
int cow_layer_lock_shared(struct cow_store *st, uint64_t layer, int *ret_fd);
/* Undo a new layer that was never committed: remove its data and its lock
 * file, then let go of the lock (@lockfd, from cow_layer_lock). */
void cow_layer_abandon(struct cow_store *st, uint64_t layer, int lockfd);
/* Recover @layer after an unclean stop, as fsck --repair would: remove
 * its data files that no committed record names (what a crash between
 * writing data and committing leaves).  The caller holds the layer's write
 * lock, so no writer can be between the two; the number removed goes to
 * *ret_removed.  O(data files of the layer), one indexed lookup each.
 * -errno of the directory walk or an unlink. */
int cow_fsck_recover_layer(struct cow_store *st, uint64_t layer, uint64_t *ret_removed);
/* Does a layer below the writable one record @ino?  (db lock held) */
bool cow_exists_below(struct cow_view *v, uint64_t ino);
/* Drop an unlinked object's records in the writable layer: a tombstone
 * row (nlink 0, no data) where a lower layer has the object, so that its
 * ino cannot bring the lower version back; nothing otherwise.  db lock
 * and transaction held. */
int cow_drop_records(struct cow_view *v, uint64_t ino);
/* Drop an unlinked object's layer records and data (no references left). */
void cow_inode_destroy_unlinked(struct cow_view *v, struct cow_inode *ip);
void cow_fd_put(struct cow_fd *f);
int cow_irow_copy(struct cow_irow *dst, const struct cow_irow *src);
void cow_irow_release(struct cow_irow *row);

/* ---- namei.c ---- */
int cow_check_name(const char *name);
/* Load (once) the merged listing of directory @ip; ns_lock held (any mode). */
int cow_dir_load(struct cow_view *v, struct cow_inode *ip);
struct cow_dent *cow_dir_find(struct cow_dir *d, const char *name);
int cow_dir_add(struct cow_dir *d, const char *name, uint64_t ino, uint8_t type, bool in_layer, bool lower);
void cow_dir_remove(struct cow_dir *d, struct cow_dent *e);
void cow_dir_free(struct cow_dir *d);

/* ---- image.c: building a new image layer ---- */
struct cow_build {
	struct cow_store *st;
	uint64_t layer, root;
	int lockfd;  /* the layer's lock, held while building */
	bool in_txn; /* db lock held and a batch transaction open */
	unsigned batch;
	uint64_t next, end;	  /* object ids allocated, not yet used */
	uint64_t done, total;	  /* objects recorded, expected (0: unknown) */
	cow_progress_fn progress; /* may be NULL */
	void *arg;
};
/* Start a new layer for image @name (-EEXIST if taken) with root object
 * @root (0: allocate one, into b->root).  The layer is dead until
 * cow_build_finish names it; rows go in with the db lock held inside a
 * batch transaction, data files into data/<b->layer>.  On failure
 * b->layer is 0 and nothing is left to finish. */
int cow_build_begin(struct cow_store *st, const char *name, uint64_t root, struct cow_build *b);
/* Call after each object: commits the batch now and then, so that other
 * writers of the store are not held up for the whole build. */
int cow_build_step(struct cow_build *b);
/* A new object id for the layer (allocated in batches). */
int cow_build_ino(struct cow_build *b, uint64_t *ret);
/* After each object: cow_build_step, then count it and report progress
 * ("import") to b->progress; -ECANCELED if that says stop. */
int cow_build_tick(struct cow_build *b);
/* With @r == 0 sync the data and make the layer image @name; otherwise
 * (or if that fails) remove everything built.  Returns the result. */
int cow_build_finish(struct cow_build *b, const char *name, int r);
/* What every import checks first: the name (-EINVAL), a writable store
 * (-EROFS), the source's length (-ENAMETOOLONG); clears the store's
 * error message. */
int cow_import_check(struct cow_store *st, const char *name, const char *src);
/* An import's failure: say why in the store's error message (what
 * cow_store_errmsg gives the front end), return @r. */
int cow_import_err(struct cow_store *st, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Import the entries of directory @fd (not crossing mount points) as the
 * entries of directory @dir, already recorded in the layer @b builds.
 * @fat: a tree copied out of a FAT file system, recorded as a vfat mount
 * shows it (root's, files 0644, directories 0755, no xattrs; anything
 * else is -EINVAL).  *@ret_subdirs: the directories imported (for @dir's
 * nlink).  Errors as cow_image_import. */
/* view.c: a writable view of @layer, a layer under construction with no
 * client (no quota), whose lock @lockfd (cow_layer_lock) the caller holds
 * and keeps after cow_view_close: what an import applies a layer through. */
int cow_view_open_layer(struct cow_store *st, uint64_t layer, int lockfd, struct cow_view **ret);

int cow_import_entries(struct cow_build *b, int fd, uint64_t dir, bool fat, uint32_t *ret_subdirs);

/* ---- walk.c ---- */
struct cow_walk_entry {
	const char *path; /* "/" for the root, else "/a/b" */
	const char *name;
	uint64_t parent, ino;
	uint32_t mode;
	bool in_top;  /* the top layer has this name (it made or changed it) */
	bool deleted; /* the top layer removed this name (ino/mode from below) */
	bool first;   /* the first name the walk met for this object */
	uint64_t row_layer, data_layer;
	struct cow_inode *ip; /* the object (not for deleted names) */
};
enum { COW_WALK_DELETED = 1 << 0 };
/* Call @fn for every name of @v's tree, depth first; a non-zero return
 * stops the walk and is returned. */
int cow_walk(struct cow_view *v, int flags, int (*fn)(void *arg, const struct cow_walk_entry *e), void *arg);
/* The entry (parent, name) in the layers below the top one: its ino, or 0
 * (db lock held). */
uint64_t cow_lower_entry(struct cow_view *v, uint64_t parent, const char *name, int *ret_type);

/* ---- tree.c: is it a tree? ---- */
/* A mode a Linux object can have: a known file type, permission bits. */
bool cow_mode_valid(uint32_t mode);
struct cow_tree_obj {
	uint64_t ino;
	uint32_t mode, nlink;
	uint32_t names;	  /* entries naming it */
	uint32_t subdirs; /* for directories: entries in it naming directories */
	uint32_t parent;  /* for directories: index of the one naming it, UINT32_MAX none */
	uint8_t state;
};
struct cow_tree {
	struct cow_tree_obj *v; /* sorted by ino */
	size_t n, cap;
	bool allow_unlinked; /* nlink 0 objects named nowhere are fine (open, unlinked) */
	bool layered;	     /* a view of layers over a base: unreachable objects and nlink are no
				problem, nor entries of removed directories (see tree.c) */
	uint64_t problems;
	void (*problem)(void *arg, const char *line);
	void *arg;
};
void cow_tree_init(struct cow_tree *t, void (*fn)(void *arg, const char *line), void *arg);
void cow_tree_release(struct cow_tree *t);
/* Add an object; inos must come in increasing order (-EINVAL), at most
 * UINT32_MAX - 1 of them (-E2BIG).  A mode of no valid type is a
 * problem (reported, counted), not an error. */
int cow_tree_add(struct cow_tree *t, uint64_t ino, uint32_t mode, uint32_t nlink);
/* The index of @ino, -1 if it was not added. */
int64_t cow_tree_index(struct cow_tree *t, uint64_t ino);
/* Entry @name (@len bytes, NUL-terminated after them, though a hostile
 * name may hold NUL itself) of directory @parent names @ino with dirent
 * type @type.
 * Each problem is reported; -EINVAL if there was one. */
int cow_tree_name(struct cow_tree *t, uint64_t parent, const char *name, size_t len, uint64_t ino, int type);
/* Is @name (as above) one an entry may have: 1 to COW_NAME_MAX bytes,
 * no NUL or '/', not "." or ".." (cow_check_name, with the length)? */
bool cow_tree_name_ok(const char *name, size_t len);
/* After every object and entry: the root, nlink, reachability.  -EINVAL
 * if a problem was reported (by this call). */
int cow_tree_finish(struct cow_tree *t, uint64_t root);

/* ---- copy_up.c ---- */
/* Make the data of @ip writable in the view's layer, opened in ip->fd
 * (inode lock held).  With @empty the content is about to be truncated
 * away: nothing is copied. */
int cow_copy_up_data(struct cow_view *v, struct cow_inode *ip, bool empty);
/* Record the object in the view's layer without copying data (metacopy);
 * inode lock held, db lock and transaction held. */
int cow_copy_up_meta(struct cow_view *v, struct cow_inode *ip);
/* Open (if needed) the current data fd of @ip: inode lock held. */
int cow_inode_open_fd(struct cow_view *v, struct cow_inode *ip);

/* ---- acl.c ---- */
#define COW_ACL_ACCESS "system.posix_acl_access"
#define COW_ACL_DEFAULT "system.posix_acl_default"
/* The permission bits an access ACL implies (into *mode's 0777 bits);
 * *ret_equiv when the ACL says no more than the mode. -EINVAL if malformed. */
int cow_acl_to_mode(const void *value, size_t size, uint32_t *mode, bool *ret_equiv);
/* Rewrite the owner/group-or-mask/other entries of an access ACL from @mode. */
int cow_acl_chmod(void *value, size_t size, uint32_t mode);
/* The access ACL and mode of an object created with @mode under default
 * ACL @def (*ret_access NULL when the mode alone says it). */
int cow_acl_create(const void *def, size_t size, uint32_t *mode, void **ret_access, size_t *ret_size);

/* ---- inode.c (xattrs) ---- */
int cow_xattrs_load(struct cow_view *v, struct cow_inode *ip);
void cow_xattrs_free(struct cow_inode *ip);
/* The room the xattrs of one object take, against COW_XATTR_LIST_MAX and
 * COW_XATTR_TOTAL_MAX; start from {0}. */
struct cow_xattr_room {
	size_t names; /* names with their NULs */
	size_t total; /* names with their NULs, and values */
};
/* Count one more xattr (a @name_len-byte name, a @size-byte value) into
 * @room: 0, or -ENOSPC if @room is now past a bound. */
int cow_xattr_room_add(struct cow_xattr_room *room, size_t name_len, size_t size);

/* ---- store-tables.c (serving) ---- */
int cow_db_client_addrs(struct cow_db *db, const char *name, char *addrs, size_t size);
int cow_db_client_set_addrs(struct cow_db *db, const char *name, const char *addrs);
int cow_db_client_addrs_foreach(struct cow_db *db, int (*fn)(void *arg, const char *name, const char *addrs),
				void *arg);
/* ident.c: the client whose @column ("serial" or "mac") is @value;
 * -ENOENT if none. */
int cow_db_client_by(struct cow_db *db, const char *column, const char *value, struct cow_client_info *ret);
/* Store the boot fields of client @name as @c has them ("" as NULL). */
int cow_db_client_set_boot(struct cow_db *db, const char *name, const struct cow_client_info *c);
int cow_db_client_set_on_boot(struct cow_db *db, const char *name, bool reset);

/* ---- quota.c ---- */
/* Count what the layer holds (view open, after recovery, before any
 * inode but the root is cached) and read the client's limits. */
int cow_quota_start(struct cow_view *v);
/* After any change of @ip (inode lock held, or the inode not yet shared):
 * bring its share of the usage up to date. */
void cow_quota_update(struct cow_view *v, struct cow_inode *ip);
/* A freshly loaded inode: its share is already in the usage. */
void cow_quota_loaded(struct cow_view *v, struct cow_inode *ip);
/* Would @files more objects and @bytes more bytes take the layer past its
 * quota?  0 or -EDQUOT. */
int cow_quota_check(struct cow_view *v, int64_t files, int64_t bytes);
/* What one xattr takes against a quota: its name with its NUL, its value
 * (the sum store-tables.c makes of a layer's xattrs). */
static inline int64_t cow_quota_xattr(const char *name, size_t size)
{
	return (int64_t)(strlen(name) + 1 + size);
}
/* Is @ip's row below the layer, not yet counted in it? */
bool cow_quota_below(struct cow_view *v, struct cow_inode *ip);
/* cow_quota_check for @ip entering the layer (one object if its row is
 * below) with @bytes more; inode lock held. */
int cow_quota_check_inode(struct cow_view *v, struct cow_inode *ip, int64_t bytes);
/* After a reset: the new layer holds nothing. */
void cow_quota_reset(struct cow_view *v);
/* statfs as the client should see it: the quota as size and free space. */
void cow_quota_statfs(struct cow_view *v, struct statvfs *sv);

/* store-tables.c (quotas) */
int cow_db_xattr_bytes(struct cow_db *db, uint64_t layer, uint64_t ino, int64_t *ret);
/* Objects (not tombstones) and xattr bytes of @layer. */
int cow_db_layer_usage(struct cow_db *db, uint64_t layer, int64_t *ret_files, int64_t *ret_xattr_bytes);
int cow_db_client_set_quota(struct cow_db *db, const char *name, uint64_t bytes, uint64_t files);
int cow_db_default_quota(struct cow_db *db, uint64_t *ret_bytes, uint64_t *ret_files);
int cow_db_set_default_quota(struct cow_db *db, uint64_t bytes, uint64_t files);

#endif
