/* SPDX-License-Identifier: MIT */
/*
 * cowroot core API.
 *
 * A store is a directory holding one sqlite database and the data files of
 * every image and layer.  A view is what one client sees: its writable layer
 * over the chain of image layers beneath it.  Every object (file, directory,
 * symlink, device...) has a persistent 64-bit id, its "ino": the same in
 * every layer, kept across copy-up, rename and restart.  Front ends (FUSE,
 * the ganesha FSAL) use it as their inode number / handle.
 *
 * Conventions: functions return 0 (or a positive count) on success and a
 * negative errno on failure; ret_* output parameters are untouched on
 * failure.  The core never prints and never exits.
 */
#ifndef COWROOT_H
#define COWROOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#define COW_NAME_MAX 255       /* longest entry name */
#define COW_XATTR_NAME_MAX 255 /* longest xattr name */
#define COW_XATTR_SIZE_MAX 65536
/* The xattrs of one object are bounded, as one block bounds them on ext4:
 * their names, each with its NUL (what listxattr returns), take at most
 * COW_XATTR_LIST_MAX bytes (the kernel's XATTR_LIST_MAX, so listxattr
 * always fits) and names and values together COW_XATTR_TOTAL_MAX (room
 * for one value of COW_XATTR_SIZE_MAX beside a full list of names).
 * Past either, setxattr is -ENOSPC, as on ext4. */
#define COW_XATTR_LIST_MAX 65536
#define COW_XATTR_TOTAL_MAX (2 * 65536)
#define COW_SYMLINK_MAX 4095
#define COW_ENTITY_NAME_MAX 64 /* longest image or client name */

struct cow_store;
struct cow_view;
struct cow_file;
struct cow_dirh;

/* ---- store.c: opening a store ---- */

enum {
	COW_STORE_CREATE = 1 << 0,   /* create (and initialise) if missing */
	COW_STORE_READONLY = 1 << 1, /* never write the database */
	COW_STORE_REPAIR = 1 << 2,   /* open for writing a store marked damaged (fsck) */
};

/* Open the store in directory @dir (a relative @dir is resolved once, here:
 * the store keeps working after the process changes its directory).  With
 * COW_STORE_CREATE an empty or missing directory becomes a new store; only
 * CREATE ever writes a schema.  Errors: -ENOENT (no store there), -EEXIST
 * (CREATE on an existing store), -ENODATA (the database file is empty or
 * holds no tables), -EMEDIUMTYPE (not a cowroot database), -EIO (corrupt
 * database), -EUCLEAN (writing refused: the database failed an integrity
 * check; fsck --repair, which opens with COW_STORE_REPAIR, or a restore),
 * -EAGAIN (database locked past the busy timeout), -EPROTO (schema newer
 * than this program), -ENOTDIR/-EACCES from the file system.  On failure
 * cow_store_open_errmsg() explains it in one line. */
int cow_store_open(const char *dir, int flags, struct cow_store **ret);
void cow_store_close(struct cow_store *st);
/* Why the calling thread's last cow_store_open() failed ("" if unknown). */
const char *cow_store_open_errmsg(void);

/* A short human explanation of the last error on @st (valid until the next
 * call on @st), or NULL: what a failed import could not read (its path), or
 * the last database error; after -EAGAIN it names the process that holds
 * the database's write lock. */
const char *cow_store_errmsg(struct cow_store *st);
/* The store's directory, absolute. */
const char *cow_store_dir(struct cow_store *st);

/* ---- image.c / client.c: lifecycle ---- */

struct cow_image_info {
	char name[COW_ENTITY_NAME_MAX + 1];
	uint64_t layer;	  /* the image's top layer */
	uint64_t parent;  /* layer beneath it, 0 for an imported base */
	int64_t created;  /* unix seconds */
	uint64_t objects; /* objects recorded in its top layer */
	uint64_t bytes;	  /* bytes of file data in its top layer */
	uint32_t clients; /* clients on it */
};

#define COW_SERIAL_LEN 8      /* a canonical Pi serial: "9ffefdef" */
#define COW_MAC_LEN 17	      /* a canonical MAC: "dc:a6:32:01:36:c2" */
#define COW_BOOT_ARGS_MAX 512 /* longest extra kernel command line */
#define COW_BOOT_DTB_MAX 255  /* longest device tree path */

struct cow_client_info {
	char name[COW_ENTITY_NAME_MAX + 1];
	char image[COW_ENTITY_NAME_MAX + 1];
	uint64_t layer;
	int64_t created;
	uint64_t objects; /* objects in its layer */
	uint64_t id;	  /* 1..COW_CLIENT_ID_MAX; never changes, not across reset/snapshot/rebase */
	uint64_t gen;	  /* tells apart the clients that held one id over time (see cow_client_add) */
	/* what it is known by when it boots over the network, "" if unset
	 * (see cow_client_set_boot) */
	char serial[COW_SERIAL_LEN + 1];       /* Pi serial number, 8 lowercase hex digits */
	char mac[COW_MAC_LEN + 1];	       /* MAC address, "dc:a6:32:01:36:c2" */
	char boot_args[COW_BOOT_ARGS_MAX + 1]; /* extra kernel command-line arguments */
	char boot_dtb[COW_BOOT_DTB_MAX + 1];   /* device tree to load, a path in its root ("": the firmware's) */
	bool reset_on_boot;		       /* every boot starts from the image */
	uint64_t quota_bytes;		       /* most its layer may hold, 0 for no limit (see quota.c) */
	uint64_t quota_files;		       /* most objects its layer may record, 0 for no limit */
};

/* Client ids are 1..COW_CLIENT_ID_MAX (the export ids ganesha accepts). */
#define COW_CLIENT_ID_MAX 65535

/* Progress callback for long work: @done of @total units (total 0 if
 * unknown), @what a short label.  Return non-zero to cancel (-ECANCELED). */
typedef int (*cow_progress_fn)(void *arg, const char *what, uint64_t done, uint64_t total);

/* Validate an image or client name: 1-64 bytes of [A-Za-z0-9._@+-], not
 * starting with '.' or '-'.  Returns 0 or -EINVAL. */
int cow_name_check(const char *name);

/* Import the tree at @src (not crossing mount points) as image @name.
 * All or nothing: on error or cancel no image is recorded and its data
 * files are removed.  Two directory fds are held per level of the tree
 * (no path is built, so depth is not bounded by PATH_MAX): the caller
 * allows enough open files.  Errors: -EEXIST, -EINVAL (bad name),
 * -ENOENT/-ENOTDIR (@src), -ENOSPC, -EMFILE, -ECANCELED, -EIO. */
int cow_image_import(struct cow_store *st, const char *name, const char *src, cow_progress_fn progress, void *arg);

/* What cow_image_import_disk found. */
struct cow_disk_info {
	char table[8];	    /* the partition table: "dos", "gpt" or "none" */
	int root_partition; /* its number (0: no table, the image is the file system) */
	int boot_partition; /* -1: none */
	bool compressed;    /* it was xz */
	uint64_t bytes;	    /* the (decompressed) image's size */
	uint64_t objects;   /* objects imported from the root partition */
	uint32_t hidden;    /* entries of the root partition's /boot/firmware, hidden by the boot partition */
};

/* Import the disk image @path (raw, or xz-compressed) as image @name: its
 * first ext2/3/4 partition as the tree, its first FAT partition at
 * /boot/firmware (as a vfat mount shows it: root's, files 0644,
 * directories 0755, times in UTC; what the root partition holds there is
 * hidden, as under a mount).  A file system image without a partition
 * table is imported as the tree.  Nothing is mounted; a compressed image
 * is decompressed into an unnamed file in the store's directory first.
 * All or nothing, as cow_image_import; @ret_info (may be NULL) is filled
 * on success.  Errors: those of cow_image_import, -EISDIR (a directory:
 * use cow_image_import), -EMEDIUMTYPE (no ext2/3/4 file system), -EIO (a
 * damaged or truncated image), -EUCLEAN (its journal needs recovery),
 * -EOPNOTSUPP (encrypted files); cow_store_errmsg() says which. */
int cow_image_import_disk(struct cow_store *st, const char *name, const char *path, cow_progress_fn progress, void *arg,
			  struct cow_disk_info *ret_info);

#define COW_DIGEST_LEN 71 /* "sha256:" and 64 lowercase hex digits */

/* Where cow_image_import_oci reads an image from. */
enum {
	COW_OCI_LAYOUT,		/* an OCI image layout directory (skopeo, buildah, docker buildx) */
	COW_OCI_DOCKER_ARCHIVE, /* a `docker save` archive (tar, or tar.gz) */
};

/* What cow_image_import_oci found and did. */
struct cow_oci_info {
	char manifest[COW_DIGEST_LEN + 1]; /* the manifest's digest ("" in a docker archive) */
	char config[COW_DIGEST_LEN + 1];   /* the config's ("" in an old docker archive) */
	char arch[32];			   /* the architecture its config names */
	uint32_t layers;		   /* its layers */
	uint32_t shared;		   /* of them, the bottom ones the store held already */
	uint64_t objects;		   /* entries read from the others */
	uint64_t removed;		   /* names their whiteouts and opaque directories removed */
	uint64_t bytes;			   /* bytes of their blobs read */
};

/* Import an OCI image as image @name, each of its layers an image layer
 * on the one beneath it, known by its OCI chain id: layers the store
 * holds already (from an image built on the same base) are shared, not
 * read again.  @kind says what @path is; @ref picks the image of an
 * index that lists several (its org.opencontainers.image.ref.name, or a
 * docker archive's "NAME:TAG"), @arch the platform of a multi-platform
 * image (its architecture, e.g. "arm64"); NULL: the only one.  Every
 * blob must match its digest and every layer its diff id.  All or
 * nothing, as cow_image_import; cow_store_errmsg says why it failed.
 * Errors: those of cow_image_import, -EMEDIUMTYPE (not an image of this
 * kind, or a layer type it cannot read), -EIO (a damaged or truncated
 * image), -E2BIG (more layers than a view stacks), -ENOENT (no such
 * reference or platform). */
int cow_image_import_oci(struct cow_store *st, const char *name, int kind, const char *path, const char *ref,
			 const char *arch, cow_progress_fn progress, void *arg, struct cow_oci_info *ret_info);

/* One layer of an image's chain (cow_image_layers). */
struct cow_layer_desc {
	uint64_t id;
	char digest[COW_DIGEST_LEN + 1];     /* its OCI chain id, "" for one not imported from an OCI image */
	char image[COW_ENTITY_NAME_MAX + 1]; /* the image it is the top layer of, "" if none */
};
/* Call @fn for each layer of image @name's chain, its top layer first. */
int cow_image_layers(struct cow_store *st, const char *name, int (*fn)(void *arg, const struct cow_layer_desc *),
		     void *arg);

/* Call @fn for every image / client, ordered by name.  A non-zero return
 * from @fn stops the walk and is returned. */
int cow_image_foreach(struct cow_store *st, int (*fn)(void *arg, const struct cow_image_info *), void *arg);
int cow_client_foreach(struct cow_store *st, int (*fn)(void *arg, const struct cow_client_info *), void *arg);

/* Add client @name with an empty layer on image @image.  It takes the
 * first free id after the one given last (wrapping round), so the id of a
 * removed client is given again only once every other id has been, and a
 * random generation (never 0): a handle carries both, so one the removed
 * client was given never resolves in the client that has its id now.
 * Generation 0 is that of clients from before ids were reused (schema 3),
 * whose handles carry no generation.  Errors: -EEXIST, -EINVAL (bad name),
 * -ENOENT (no such image), -EUSERS (all COW_CLIENT_ID_MAX ids taken). */
int cow_client_add(struct cow_store *st, const char *name, const char *image);

/* ---- lifecycle.c: clients and images over time ---- */

/* Flags of lifecycle commands. */
enum {
	/* A server (the FSAL) holds the client's layer and will pick the
	 * change up itself: do not refuse because the layer is busy. */
	COW_LIVE = 1 << 0,
};

int cow_client_get(struct cow_store *st, const char *name, struct cow_client_info *ret);

/* The process that has client @name's layer open for writing.  Returns 1
 * with @ret filled, 0 if nobody does, -ENOENT for an unknown client. */
struct cow_holder {
	pid_t pid;
	char what[200]; /* e.g. "mount /mnt/pi1", "serve" */
};
int cow_client_holder(struct cow_store *st, const char *name, struct cow_holder *ret);

/* Give client @name a fresh empty layer on its image; the old layer is
 * marked dead (gc removes its records and data later), so this is O(1)
 * whatever the layer holds.  -EBUSY while a mount or server holds the
 * layer (a running server resets through cow_view_reset instead). */
int cow_client_reset(struct cow_store *st, const char *name);
/* Remove client @name (its layer is dead, gc reclaims it).  -EBUSY while
 * its layer is held, unless @flags has COW_LIVE. */
int cow_client_rm(struct cow_store *st, const char *name, int flags);
/* Freeze client @name's layer as new image @image (O(1): the layer
 * becomes the image's top layer) and give the client an empty layer on
 * it.  -EEXIST (image name taken), -EBUSY (layer held). */
int cow_client_snapshot(struct cow_store *st, const char *name, const char *image);

/* What a layer changed, one path at a time (paths of the client's merged
 * view; a removed path is its last path before removal). */
enum cow_change {
	COW_CHANGE_ADDED,    /* a new name (new object, or a new name of an old one) */
	COW_CHANGE_MODIFIED, /* content changed (copied up or rewritten) */
	COW_CHANGE_META,     /* only mode/owner/times/xattrs changed */
	COW_CHANGE_DELETED,  /* a whiteout: the image's name is gone */
};
const char *cow_change_name(enum cow_change c);
int cow_client_diff(struct cow_store *st, const char *name,
		    int (*fn)(void *arg, const char *path, enum cow_change change, uint32_t mode), void *arg);

/* Move client @name's layer onto image @image, which must be derived from
 * the client's current image (a snapshot of a client on it, or of its
 * descendants).  Every path changed both in the layer and between the two
 * images is reported to @conflict; the layer's version stays visible and
 * the image's is kept in the image.  -EXDEV if @image does not descend
 * from the current image; -EBUSY if the layer is held. */
int cow_client_rebase(struct cow_store *st, const char *name, const char *image,
		      int (*conflict)(void *arg, const char *path, const char *why), void *arg);

/* The name of the image whose top layer is @layer (-ENOENT: none). */
int cow_image_name_of(struct cow_store *st, uint64_t layer, char ret_name[COW_ENTITY_NAME_MAX + 1]);
/* Details of one image (as cow_image_foreach gives). */
int cow_image_get(struct cow_store *st, const char *name, struct cow_image_info *ret);
/* Who depends on image @name: each client on it ("client") and each
 * image built on it ("image"). */
int cow_image_users(struct cow_store *st, const char *name, int (*fn)(void *arg, const char *kind, const char *name),
		    void *arg);
/* Remove image @name.  -EBUSY while anything depends on it (see
 * cow_image_users), -ETXTBSY while a read-only view of it is open.  Its
 * layer is dead, and so are the unnamed layers of an OCI image beneath
 * it that nothing else stands on; gc reclaims them.  A layer that other
 * OCI images' layers stand on (a shared base) stays, without the name. */
int cow_image_rm(struct cow_store *st, const char *name);
/* Materialise image @name's chain as one new base image @newname (same
 * object ids; data files shared by hard link where possible). */
int cow_image_flatten(struct cow_store *st, const char *name, const char *newname, cow_progress_fn progress, void *arg);
/* Write image @name (flattened) to @path as one zlib-compressed bundle
 * with checksums; written to a temporary file and renamed into place.
 * nlink is written as the tree counts it.  -EUCLEAN (also from flatten)
 * if the image's tree is broken: a directory with two names or in a
 * cycle, an object of no file type (fsck tells which). */
int cow_image_export(struct cow_store *st, const char *name, const char *path, cow_progress_fn progress, void *arg);
/* Load a bundle as image @name (NULL: the name recorded in it).  The
 * bundle is verified completely before anything is recorded: a truncated
 * or altered bundle, or one whose objects and names are not a tree (see
 * fs/tree.c) or not what an export writes, gives -EBADMSG, says why in
 * @why (@whysize bytes; may be NULL) and leaves the store unchanged.
 * -EPROTO: a newer bundle version. */
int cow_image_load(struct cow_store *st, const char *path, const char *name, cow_progress_fn progress, void *arg,
		   char *why, size_t whysize);

/* Space and object counts of one layer. */
struct cow_layer_stats {
	uint64_t objects;    /* objects recorded (not counting removals) */
	uint64_t data_files; /* of them, with their own data file */
	uint64_t bytes;	     /* apparent size of those data files */
	uint64_t copy_ups;   /* data files of objects the image also has */
	uint64_t whiteouts;  /* image names removed */
	uint64_t removed;    /* image objects removed */
	uint64_t disk_bytes; /* allocated on disk for the layer's data */
};
int cow_layer_stats(struct cow_store *st, uint64_t layer, struct cow_layer_stats *ret);

/* Reclaim dead layers (reset, removed clients and images) and data files
 * no record references.  Layers still held by a running view are left
 * for a later run.  Interruptible through @progress between layers. */
struct cow_gc_report {
	uint64_t layers; /* dead layers removed */
	uint64_t files;	 /* data files removed */
	uint64_t bytes;	 /* bytes freed (allocated size) */
	uint64_t busy;	 /* dead layers skipped: still held */
};
int cow_gc(struct cow_store *st, cow_progress_fn progress, void *arg, struct cow_gc_report *ret);

/* ---- fsck.c ---- */

struct cow_fsck_report {
	uint64_t orphan_files;	 /* data files no record references */
	uint64_t missing_data;	 /* records whose data file is missing */
	uint64_t dangling;	 /* entries/attrs/xattrs of no object, unlinked objects */
	uint64_t dead_layers;	 /* reset or removed, waiting for gc (not a problem) */
	uint64_t unused_layers;	 /* layers no client or image uses, not marked dead */
	uint64_t unknown_layers; /* data of layers this database never recorded: never removed */
	uint64_t leftover_tmp;	 /* temporary directories of an interrupted disk import */
	uint64_t repaired;	 /* problems fixed (with repair) */
	bool db_ok;		 /* sqlite integrity_check said ok (after repair, if any) */
	bool db_repaired;	 /* its indexes were rebuilt (with repair) */
	bool db_unrepairable;	 /* damaged beyond what repair can rebuild: restore it */
	bool db_marked;		 /* passes, but still marked damaged (writes refused) */
	/* problems of an image's or client's merged tree (cycles, a directory
	 * with two names, entries in non-directories or of the wrong type,
	 * modes of no file type, nlink other than the names, unreachable
	 * objects, bad names): reported, never repaired */
	uint64_t tree_problems;
};

/* Check the store; with @repair remove orphans and dangling records, and
 * rebuild damaged database indexes (what sqlite can rebuild; damaged tables
 * are reported as unrepairable).  A failed integrity check marks the store
 * damaged: writers are refused (-EUCLEAN) until a repair passes.  Open the
 * store with COW_STORE_REPAIR for @repair.  @log (may be NULL) is called
 * once per problem with a one-line text. */
int cow_fsck(struct cow_store *st, bool repair, void (*log)(void *arg, const char *line), void *arg,
	     struct cow_fsck_report *ret);
/* Only the data files no record references (what gc removes). */
int cow_fsck_orphans(struct cow_store *st, bool repair, void (*log)(void *arg, const char *line), void *arg,
		     struct cow_fsck_report *ret);

/* ---- view.c: views ---- */

enum {
	COW_VIEW_READONLY = 1 << 0, /* no writes: EROFS (image views always) */
};

/* Open the view of client @client (writable; takes the layer's write lock,
 * -EBUSY if another process holds it), or with @client NULL the read-only
 * view of image @image.  Errors: -ENOENT (unknown client/image), -EBUSY. */
int cow_view_open(struct cow_store *st, const char *client, const char *image, int flags, struct cow_view **ret);
/* Flush all cached metadata and close.  Open files must be released first. */
int cow_view_close(struct cow_view *v);
/* Write back dirty metadata of every inode (what syncfs does). */
int cow_view_sync(struct cow_view *v);
uint64_t cow_view_root(const struct cow_view *v);
/* The front end keeps file times itself (a FUSE writeback cache sends
 * them with setattr): writes then leave mtime and ctime alone. */
void cow_view_set_caller_times(struct cow_view *v, bool on);
bool cow_view_readonly(const struct cow_view *v);
/* The front end's references stand for its opens (a FUSE mount without
 * OPEN requests): an unlinked object keeps its space until they go,
 * rather than until its last cow_file is released. */
void cow_view_set_refs_are_opens(struct cow_view *v, bool on);
/* How many objects nobody references the view keeps cached (files, and
 * directories' listings) before the oldest go; COW_INODE_CACHE unless set.
 * A server of many clients keeps few, a local mount many (its kernel lets
 * go of what it caches at memory pressure and at drop_caches).  The
 * environment's COWROOT_INODE_CACHE, when set, wins (tests, tuning). */
#define COW_INODE_CACHE 1024
void cow_view_set_inode_cache(struct cow_view *v, size_t n);
/* What the view has cached: objects, those of them nobody references, and
 * directories' loaded listings. */
struct cow_cache_counts {
	size_t inodes, unreferenced, listings;
};
void cow_view_cache_counts(struct cow_view *v, struct cow_cache_counts *ret);
/* The id of the view's client (cow_client_info.id), 0 for an image view. */
uint64_t cow_view_client_id(const struct cow_view *v);
/* The generation of the view's client (cow_client_info.gen), 0 for an
 * image view or a client from before schema 3. */
uint64_t cow_view_client_gen(const struct cow_view *v);
/* Say who holds the view's layer (cow_client_holder shows it to others). */
void cow_view_set_holder(struct cow_view *v, const char *what);
/* Reset a live client view in place: the client gets a fresh empty layer
 * (the old one is marked dead) and every cached object is reloaded from
 * the image.  Objects of the image keep their ino (their handles stay
 * valid); objects only the old layer had behave as unlinked: open files
 * keep working until released, lookups give -ENOENT, and so does
 * cow_ref once nobody holds them any more.  The
 * caller must make sure no other call on @v runs meanwhile. */
int cow_view_reset(struct cow_view *v);

/* Attributes of one object. */
struct cow_attr {
	uint64_t ino;
	uint32_t mode; /* type and permission bits */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t rdev;
	int64_t size;
	int64_t blocks; /* 512-byte blocks allocated */
	struct timespec atime, mtime, ctime;
};

/* The caller creating an object. */
struct cow_cred {
	uint32_t uid, gid;
	uint32_t umask;
};

/* namei.c: Look up @name in directory @parent and take one reference on the
 * object found (released with cow_forget).  Errors: -ENOENT, -ENOTDIR,
 * -ENAMETOOLONG, -EINVAL (name with '/', "." or ".."). */
int cow_lookup(struct cow_view *v, uint64_t parent, const char *name, struct cow_attr *ret);
/* Take one more reference on a known object (e.g. the root).  -ENOENT if
 * the object does not exist in this view (a stale handle). */
int cow_ref(struct cow_view *v, uint64_t ino, struct cow_attr *ret);
/* Drop @n references.  An unlinked object goes away with its last reference. */
void cow_forget(struct cow_view *v, uint64_t ino, uint64_t n);

/* inode.c */
int cow_getattr(struct cow_view *v, uint64_t ino, struct cow_attr *ret);

enum {
	COW_SET_MODE = 1 << 0,
	COW_SET_UID = 1 << 1,
	COW_SET_GID = 1 << 2,
	COW_SET_SIZE = 1 << 3,
	COW_SET_ATIME = 1 << 4, /* to attr.atime */
	COW_SET_MTIME = 1 << 5,
	COW_SET_ATIME_NOW = 1 << 6,
	COW_SET_MTIME_NOW = 1 << 7,
	COW_SET_CTIME = 1 << 8,
};
/* Change attributes (a metadata-only change never copies file data;
 * COW_SET_SIZE copies up).  Clears setuid/setgid on chown as Linux does
 * when the caller asks for it via the mode. */
int cow_setattr(struct cow_view *v, uint64_t ino, const struct cow_attr *attr, int to_set, struct cow_attr *ret);
int cow_readlink(struct cow_view *v, uint64_t ino, char *buf, size_t size); /* returns length, no NUL */

/* xattr.c: value sizes as getxattr(2): with @size 0 return the size needed;
 * -ERANGE if too small, -ENODATA if absent.  @flags XATTR_CREATE/REPLACE. */
int cow_getxattr(struct cow_view *v, uint64_t ino, const char *name, void *buf, size_t size);
int cow_setxattr(struct cow_view *v, uint64_t ino, const char *name, const void *value, size_t size, int flags);
int cow_listxattr(struct cow_view *v, uint64_t ino, char *buf, size_t size);
int cow_removexattr(struct cow_view *v, uint64_t ino, const char *name);
/* What a write, truncate or fallocate does to the privileges of regular
 * file @ino on Linux (file_remove_privs), for a front end whose kernel
 * does not do it (NFS, or FUSE with KILLPRIV_V2: the server must): the
 * setuid bit goes, and the setgid bit of a group-executable file, unless
 * @keep has COW_KEEP_SETID (a caller with CAP_FSETID); a setgid bit
 * without group execute goes too unless @keep has COW_KEEP_SGID_NOEXEC
 * (the caller is in the file's group).  The file capability
 * (security.capability) goes whoever writes.  Nothing changes for a file
 * that has none of them, nor for a directory; a special file's bits go
 * as a regular file's (what a chown does to them).  1 when something was
 * taken away, 0, or -errno. */
#define COW_KEEP_SETID 1u
#define COW_KEEP_SGID_NOEXEC 2u
int cow_kill_privs(struct cow_view *v, uint64_t ino, unsigned keep);

/* dir.c: namespace changes.  Each created object comes back referenced.
 * Errors as the matching syscalls: -EEXIST, -ENOENT, -ENOTDIR, -EISDIR,
 * -ENOTEMPTY, -ENAMETOOLONG, -EINVAL, -EROFS, -EMLINK, -ENOSPC. */
int cow_mknod(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
	      const struct cow_cred *cred, struct cow_attr *ret);
int cow_mkdir(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, const struct cow_cred *cred,
	      struct cow_attr *ret);
int cow_symlink(struct cow_view *v, uint64_t parent, const char *name, const char *target, const struct cow_cred *cred,
		struct cow_attr *ret);
int cow_link(struct cow_view *v, uint64_t ino, uint64_t newparent, const char *newname, struct cow_attr *ret);
int cow_unlink(struct cow_view *v, uint64_t parent, const char *name);
int cow_rmdir(struct cow_view *v, uint64_t parent, const char *name);
/* @flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (RENAME_WHITEOUT: -EINVAL). */
int cow_rename(struct cow_view *v, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
	       unsigned int flags);

/* file.c: open files.  @flags are open(2) flags; O_TRUNC truncates. */
int cow_open(struct cow_view *v, uint64_t ino, int flags, struct cow_file **ret);
/* Create and open a regular file (O_EXCL honoured). */
int cow_create(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, int flags,
	       const struct cow_cred *cred, struct cow_file **ret_file, struct cow_attr *ret);
ssize_t cow_read(struct cow_file *f, void *buf, size_t size, off_t off);
ssize_t cow_write(struct cow_file *f, const void *buf, size_t size, off_t off);
/* The current data fd of @f to read with splice/pread (-1 for an empty file
 * with no data file).  The fd stays valid until cow_read_done(*ret_token),
 * even if a concurrent copy-up replaces it. */
int cow_read_fd(struct cow_file *f, int *ret_fd, void **ret_token);
void cow_read_done(void *token);
/* A writable data fd of @f (copied up first if need be) for a front end
 * that writes the data itself, e.g. with splice.  Then
 * cow_write_done(f, *ret_token, bytes written or -errno) records the
 * write (size, times) and gives the fd back. */
int cow_write_fd(struct cow_file *f, int *ret_fd, void **ret_token);
/* How much of a @size-byte write at @off fits in the layer's quota: @size,
 * fewer bytes (a short write), or -EDQUOT for none.  cow_write asks it
 * itself; a front end writing through cow_write_fd asks first. */
ssize_t cow_write_room(struct cow_file *f, off_t off, size_t size);
void cow_write_done(struct cow_file *f, void *token, ssize_t written);
int cow_fallocate(struct cow_file *f, int mode, off_t off, off_t len);
int cow_flush(struct cow_file *f);
/* Durable: data, then the object's metadata and names (the database). */
int cow_fsync(struct cow_file *f, bool datasync);
int cow_release(struct cow_file *f);
uint64_t cow_file_ino(const struct cow_file *f);
/* Seek for SEEK_DATA / SEEK_HOLE. */
off_t cow_lseek(struct cow_file *f, off_t off, int whence);

/* readdir.c: a directory listing is a snapshot taken at open. */
int cow_opendir(struct cow_view *v, uint64_t ino, struct cow_dirh **ret);
/* Call @fn for the entries from offset @off on ("." and ".." first); stop
 * when @fn returns non-zero.  @next_off resumes after the entry.  With
 * @plus @attr is filled and the entry referenced (except "." and "..")
 * when @fn returns 0; without, attr has ino and the type bits of mode. */
int cow_readdir(struct cow_dirh *d, off_t off, bool plus,
		int (*fn)(void *arg, const char *name, const struct cow_attr *attr, off_t next_off), void *arg);
void cow_releasedir(struct cow_dirh *d);
/* Read directory @ino from offset @off on without an open handle (a FUSE
 * daemon whose kernel caches listings).  The offsets are stable cookies:
 * an entry keeps its offset while it exists and new entries come after
 * all existing ones, so a reader resuming at any offset it was given sees
 * no entry twice and misses none that stayed, even if the directory
 * changed in between.  Otherwise as cow_readdir. */
int cow_readdir_ino(struct cow_view *v, uint64_t ino, off_t off, bool plus,
		    int (*fn)(void *arg, const char *name, const struct cow_attr *attr, off_t next_off), void *arg);

int cow_statfs(struct cow_view *v, struct statvfs *ret);

/* inode.c: @a as stat(2) reports it (st_dev 0, st_blksize 4096). */
void cow_attr_to_stat(const struct cow_attr *a, struct stat *st);

/* ---- client.c: serving over NFS ---- */

#define COW_ADDRS_MAX 1023 /* longest address list of a client */

/* The addresses client @name connects from (see cow_client_set_addrs)
 * into @buf of @size bytes ("" if none).  Errors: -ENOENT, -EIO. */
int cow_client_get_addrs(struct cow_store *st, const char *name, char *buf, size_t size);
/* Check a list for cow_client_set_addrs: 0, or -EINVAL with the first bad
 * item at @ret_off (@ret_len bytes) of @addrs and *@ret_why a static
 * sentence saying what is wrong with it (each ret_* may be NULL).  An item
 * is an IPv4 dotted quad or an IPv6 address as inet_pton(3) takes it,
 * optionally followed by /PREFIX (1 to 32 for IPv4, 1 to 99 for IPv6,
 * decimal, no sign, leading zero or blank); nothing else, no empty item.
 * 0.0.0.0 and /0 are refused: ganesha reads them as every address. */
int cow_addrs_check(const char *addrs, size_t *ret_off, size_t *ret_len, const char **ret_why);
/* Record the addresses client @name connects from: a comma-separated list
 * of IPv4/IPv6 addresses or networks (ADDR/PREFIX), "" for none.
 * Errors: -ENOENT, -EINVAL (malformed list, see cow_addrs_check), -EIO. */
int cow_client_set_addrs(struct cow_store *st, const char *name, const char *addrs);
/* Call @fn for each client with addresses, with its name and its list
 * (as cow_client_get_addrs gives it), in one query: what a server asks
 * at every request that names no client.  A non-zero return from @fn
 * stops the walk and is returned.  @fn must not call into @st. */
int cow_client_addrs_foreach(struct cow_store *st, int (*fn)(void *arg, const char *name, const char *addrs),
			     void *arg);
/* Is @sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as its
 * IPv4 address) one of the addresses or networks of list @addrs (as
 * cow_addrs_check takes it)?  false for a malformed list. */
bool cow_addrs_match(const char *addrs, const struct sockaddr *sa);

/* ---- ident.c: what a client boots by ---- */

/* Parse a Raspberry Pi serial number into its canonical form, 8 lowercase
 * hex digits and a NUL, at @ret: 8 hex digits as the Pi bootloader and
 * /proc/cpuinfo give it, or the 16-digit form u-boot puts in serial#
 * (which must start with 8 zeros), in any case; nothing else, no blank.
 * Returns 0, or -EINVAL with @ret untouched. */
int cow_serial_parse(const char *serial, char ret[COW_SERIAL_LEN + 1]);
/* Parse a MAC address into its canonical form, lowercase with colons
 * ("dc:a6:32:01:36:c2", COW_MAC_LEN bytes and a NUL), at @ret: six pairs
 * of hex digits, in any case, separated all by ':' or all by '-'.  A
 * multicast (broadcast included) or all-zero address names no client and
 * is refused.  Returns 0, or -EINVAL with @ret untouched. */
int cow_mac_parse(const char *mac, char ret[COW_MAC_LEN + 1]);
/* Check extra kernel arguments for cow_client_set_boot: they go into a
 * u-boot script and a cmdline.txt, so only printable ASCII and spaces, at
 * most COW_BOOT_ARGS_MAX bytes, none of ; $ " ' ` \ (no newline).  ""
 * passes.  Returns 0, or -EINVAL and *@ret_why (may be NULL) a static
 * sentence saying what is wrong. */
int cow_boot_args_check(const char *args, const char **ret_why);
/* Check a device tree path for cow_client_set_boot: an absolute path in
 * the client's root, at most COW_BOOT_DTB_MAX bytes, of components made of
 * A-Z a-z 0-9 . _ + - (none "." or ".."), single '/' between them.  ""
 * passes.  Returns 0, or -EINVAL and *@ret_why (may be NULL). */
int cow_boot_dtb_check(const char *path, const char **ret_why);

/* Change what client @name boots by; each of @serial, @mac, @boot_args,
 * @dtb is
 * NULL to leave it as it is, "" to clear it, else a value the functions
 * above accept (in any accepted form: it is stored canonical).  All or
 * nothing.  A serial or MAC another client has is refused with -EEXIST:
 * then @ret_holder (may be NULL) gets that client's name and *@ret_what
 * (may be NULL) "serial" or "MAC".  Errors: -ENOENT (no client), -EINVAL
 * (a malformed value), -EEXIST, -EROFS, -EAGAIN, -EIO. */
int cow_client_set_boot(struct cow_store *st, const char *name, const char *serial, const char *mac,
			const char *boot_args, const char *dtb, char ret_holder[COW_ENTITY_NAME_MAX + 1],
			const char **ret_what);
/* Reset client @name's layer at each of its boots (@reset), or keep it
 * (the default).  Errors: -ENOENT, -EROFS, -EAGAIN, -EIO. */
int cow_client_set_on_boot(struct cow_store *st, const char *name, bool reset);
/* The client with serial number / MAC address @key (any form the parsers
 * accept), into @ret (as cow_client_get fills it); one indexed query, for
 * the boot servers to call on every request.  Errors: -EINVAL (@key is
 * malformed), -ENOENT (no client has it), -EAGAIN, -EIO. */
int cow_client_by_serial(struct cow_store *st, const char *key, struct cow_client_info *ret);
int cow_client_by_mac(struct cow_store *st, const char *key, struct cow_client_info *ret);

/* ---- quota.c: what a client's layer may hold ---- */

/* A client's layer holds what the client changed: its quota bounds the
 * bytes (the allocated size of the layer's data files, as du counts them,
 * and the names and values of the xattrs it records) and the objects
 * (files, directories, links... each object the layer records, a copy-up
 * or a metadata change of an image object included; removals are free).
 * What would take a layer past its quota is refused with -EDQUOT, before
 * anything changes: a create, a write (a write that partly fits writes
 * what fits and returns a short count), a copy-up, a metadata change, an
 * xattr.  Removing and renaming never are; removing and truncating free
 * what the layer held at once.  Operations running at once near the limit may
 * take the layer past it by what they add together. */

/* Set client @name's quota (0: no limit).  A server holding the client
 * applies it when told (its control socket); a mount, when next opened.
 * Errors: -ENOENT, -EROFS, -EAGAIN, -EIO. */
int cow_client_set_quota(struct cow_store *st, const char *name, uint64_t bytes, uint64_t files);
/* The quota new clients get (0: none); cow_client_add gives it to each. */
int cow_store_default_quota(struct cow_store *st, uint64_t *ret_bytes, uint64_t *ret_files);
int cow_store_set_default_quota(struct cow_store *st, uint64_t bytes, uint64_t files);
/* Parse a size for a quota: digits with an optional K, M, G or T suffix
 * (powers of 1024; "10G", "500M"), or "none" for 0.  -EINVAL, -ERANGE. */
int cow_size_parse(const char *s, uint64_t *ret);

/* What a writable client view's layer holds now, counted as the quota
 * counts it, and its limits. */
struct cow_usage {
	uint64_t bytes, files;
	uint64_t max_bytes, max_files; /* 0: no limit */
};
int cow_view_usage(struct cow_view *v, struct cow_usage *ret);
/* The same, read from the store (what a server holding the client counts
 * may be ahead by what it has not written back yet). */
int cow_client_usage(struct cow_store *st, const char *name, struct cow_usage *ret);
/* Read the client's quota from the store again and apply it from now on
 * (what a server does when the CLI changes it).  -EROFS for an image view. */
int cow_view_reload_quota(struct cow_view *v);

#endif
