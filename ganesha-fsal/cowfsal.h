/* SPDX-License-Identifier: MIT */
/*
 * The cowroot FSAL for nfs-ganesha: private declarations.
 *
 * One module per ganesha process holds one cow_store (the COWROOT config
 * block's Store); each export serves one client (its FSAL block's Client)
 * through that client's cow_view.  Object handles wrap a core object id
 * (ino) and hold one core reference each.
 *
 * Lock order: module lock -> export reset_lock -> export handles_lock.
 * The core has its own locks below all of these.
 */
#ifndef COWFSAL_H
#define COWFSAL_H

#include "config.h"

#include "fsal.h"
#include "fsal_api.h"
#include "fsal_convert.h"
#include "fsal_types.h"
#include "FSAL/fsal_commonlib.h"
#include "fsal_up.h"

#include <stdatomic.h>
#include <time.h>

#include "cowroot.h"

/*
 * Two FSAL APIs: ganesha 4.3's (major 11, Debian bookworm) and ganesha
 * 6.5's (major 13, Debian trixie).  API 13 manages file descriptors in
 * the FSAL common library (fsal_start_io/fsal_complete_io around every
 * I/O, fd work around opens and closes, global fds in an LRU that may
 * close them) where API 11 had fsal_find_fd under the object lock, and its
 * directory operations take the parent's pre/post attributes (optional,
 * left unset here: ganesha then sends no wcc data, as for FSALs that cannot
 * give them atomically).  Those two differences are all that is under
 * COWFSAL_API13; the rest of the module is one code.
 */
#if FSAL_MAJOR_VERSION == 13
#define COWFSAL_API13 1
#elif FSAL_MAJOR_VERSION == 11
#define COWFSAL_API13 0
#else
#error "the cowroot FSAL supports the FSAL APIs of ganesha 4.3 (11) and 6.5 (13)"
#endif

#if COWFSAL_API13
/* the parent attributes that API 13 adds to namespace operations */
#define COWFSAL_DIR_ATTRS , struct fsal_attrlist *dir_pre_attrs_out, struct fsal_attrlist *dir_post_attrs_out
#define COWFSAL_DIR2_ATTRS                                                                                             \
	, struct fsal_attrlist *olddir_pre_attrs_out, struct fsal_attrlist *olddir_post_attrs_out,                     \
	    struct fsal_attrlist *newdir_pre_attrs_out, struct fsal_attrlist *newdir_post_attrs_out
#else
#define COWFSAL_DIR_ATTRS
#define COWFSAL_DIR2_ATTRS
#endif

#define COWFSAL_NAME "COWROOT"
#define COWFSAL_DEFAULT_STORE "/var/lib/cowroot"

/*
 * Wire handle, little-endian (NFSv3 allows the FSAL 59 bytes), in one of
 * two versions:
 *   1: version, 3 zero bytes, client id, ino               (20 bytes)
 *   2: version, 3 zero bytes, client id, client gen, ino   (28 bytes)
 * The whole handle is ganesha's cache key, so the client in it keeps one
 * client's cached objects from ever being found for another client's
 * export.  Client ids are reused (cow_client_add), so a handle names its
 * client by id and generation: one a removed client was given is stale in
 * the client that has its id now.  A client from before ids were reused
 * (generation 0) is given, and accepts, version 1 handles only: exactly
 * those it held before the server was upgraded, so a client that stays up
 * across the upgrade keeps its root and every open file.  No id was given
 * twice before then, so a version 1 handle names the one client that ever
 * had its id, and resolves nowhere once the id went to a new client (whose
 * generation is never 0).  Every other client is given, and accepts,
 * version 2 only.
 */
#define COWFSAL_HANDLE_V1 1
#define COWFSAL_HANDLE_V1_LEN 20
#define COWFSAL_HANDLE_V2 2
#define COWFSAL_HANDLE_V2_LEN 28
#define COWFSAL_HANDLE_LEN COWFSAL_HANDLE_V2_LEN /* the longest */

struct cowfsal_module {
	struct fsal_module fsal;
	struct fsal_obj_ops handle_ops;
	char *store_dir;	   /* config: Store */
	struct cow_store *store;   /* opened at init_config */
	pthread_mutex_t lock;	   /* protects exports */
	struct glist_head exports; /* struct cowfsal_export.entry */
};

extern struct cowfsal_module COWFSAL;

struct cowfsal_export {
	struct fsal_export export;
	char *client;		      /* config: Client */
	struct cow_view *view;	      /* the client's view */
	uint64_t client_id;	      /* store-unique id of the client */
	uint64_t client_gen;	      /* its generation, 0 for a client from before schema 3 */
	size_t key_len;		      /* of its handles: COWFSAL_HANDLE_V1_LEN or V2_LEN */
	pthread_mutex_t handles_lock; /* protects handles */
	struct glist_head handles;    /* live struct cowfsal_handle.entry */
	struct glist_head entry;      /* in COWFSAL.exports; module lock */
	/* held for reading by every operation on the view, for writing by a
	 * reset (cow_view_reset wants the view to itself) */
	pthread_rwlock_t reset_lock;
	/* when the client last called an operation (time(2)), for
	 * `cowroot client list`: who is online */
	_Atomic int64_t last_op;
};

/* An open core file: ganesha's fsal_fd must come first (ganesha finds a
 * state's fd at state + 1). */
struct cowfsal_fd {
	struct fsal_fd fsal_fd;
	struct cow_file *file; /* NULL when closed */
};

struct cowfsal_handle {
	struct fsal_obj_handle obj_handle;
	struct cowfsal_export *exp;
	uint64_t ino;
	uint8_t key[COWFSAL_HANDLE_LEN];
	struct glist_head entry; /* in exp->handles */
	/* regular files, protected by obj_handle.obj_lock */
	struct fsal_share share;
	struct cowfsal_fd fd; /* the global (stateless) fd */
};

/* main.c */
fsal_status_t cowfsal_status(int r);

/* export.c */
fsal_status_t cowfsal_create_export(struct fsal_module *fsal_hdl, void *parse_node, struct config_error_type *err_type,
				    const struct fsal_up_vector *up_ops);
fsal_status_t cowfsal_update_export(struct fsal_module *fsal_hdl, void *parse_node, struct config_error_type *err_type,
				    struct fsal_export *original, struct fsal_module *updated_super);
/* The handle of @ino in @exp: exp->key_len bytes at @key. */
void cowfsal_encode_key(const struct cowfsal_export *exp, uint8_t *key, uint64_t ino);

/* handle.c */
void cowfsal_handle_ops_init(struct fsal_obj_ops *ops);
/* A new handle for @attr->ino, taking over one core reference. */
struct cowfsal_handle *cowfsal_handle_new(struct cowfsal_export *exp, const struct cow_attr *attr);
/* The same, answering an operation: *@ret and @attrs_out (may be NULL). */
fsal_status_t cowfsal_reply_obj(struct cowfsal_export *exp, const struct cow_attr *a, struct fsal_obj_handle **ret,
				struct fsal_attrlist *attrs_out);
void cowfsal_attr_out(struct cowfsal_handle *h, const struct cow_attr *a, struct fsal_attrlist *out);
/* Invalidate ganesha's cache of every object of @exp. */
void cowfsal_invalidate_all(struct cowfsal_export *exp);

/* control.c */
int cowfsal_control_start(const char *store_dir);
void cowfsal_control_stop(void);

#endif
