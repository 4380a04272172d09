/* SPDX-License-Identifier: MIT */
/*
 * The store's tables: every statement of the schema's tables and the
 * functions over them (layers, images, clients, objects, names, xattrs,
 * tree checks, serving, quotas).  The connection they run on, its
 * transactions and batches are store.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-private.h"

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

const char *const cow_stmt_sql[S_COUNT] = {
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
    [S_LAYER_GET] = "SELECT id, ifnull(parent, 0), kind, root, created, ifnull(digest, '') FROM layers WHERE id = :id",
    [S_LAYER_SET_DIGEST] = "UPDATE layers SET digest = :digest WHERE id = :id",
    [S_LAYER_BY_DIGEST] = "SELECT id FROM layers WHERE digest = :digest AND kind = 0 ORDER BY id LIMIT 1",
    [S_LAYER_SET_KIND] = "UPDATE layers SET kind = :kind WHERE id = :id",
    [S_LAYER_ALL] = "SELECT id, ifnull(parent, 0), kind, root, created, ifnull(digest, '') FROM layers ORDER BY id",
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

/* ---- meta ---- */

int cow_db_alloc_inos(struct cow_db *db, uint64_t n, uint64_t *ret_first)
{
	return cow_db_counter(db, "next_ino", n, ret_first);
}

int cow_db_counter(struct cow_db *db, const char *key, uint64_t n, uint64_t *ret_first)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_META_GET);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":key", key);
	int r = cow_sql_step(db, s);
	uint64_t first = r > 0 ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	cow_sql_done(s);
	if (r < 0)
		return r;
	if (r == 0)
		return -EIO;
	s = cow_sql_stmt(db, S_META_SET);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":key", key);
	cow_sql_bind_i64(s, ":value", (int64_t)(first + n));
	r = cow_sql_run(db, s);
	if (r < 0)
		return r;
	*ret_first = first;
	return 0;
}

/* ---- layers, images, clients ---- */

int cow_db_layer_add(struct cow_db *db, uint64_t parent, int kind, uint64_t root, uint64_t *ret_id)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_ADD);
	if (!s)
		return -EIO;
	if (parent)
		cow_sql_bind_i64(s, ":parent", (int64_t)parent);
	cow_sql_bind_i64(s, ":kind", kind);
	cow_sql_bind_i64(s, ":root", (int64_t)root);
	cow_sql_bind_i64(s, ":created", time(NULL));
	int r = cow_sql_run(db, s);
	if (r < 0)
		return r;
	uint64_t id = (uint64_t)sqlite3_last_insert_rowid(db->sql);
	s = cow_sql_stmt(db, S_LAYER_HWM_SET);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":id", (int64_t)id);
	r = cow_sql_run(db, s);
	if (r < 0)
		return r;
	*ret_id = id;
	return 0;
}

bool cow_db_layer_known(struct cow_db *db, uint64_t id)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_HWM_GET);
	if (!s)
		return true; /* when in doubt, nothing is removed */
	bool known = cow_sql_step(db, s) == 1 && (uint64_t)sqlite3_column_int64(s, 0) >= id;
	cow_sql_done(s);
	return known;
}

static void layer_row(sqlite3_stmt *s, struct cow_layer_info *l)
{
	l->id = (uint64_t)sqlite3_column_int64(s, 0);
	l->parent = (uint64_t)sqlite3_column_int64(s, 1);
	l->kind = sqlite3_column_int(s, 2);
	l->root = (uint64_t)sqlite3_column_int64(s, 3);
	l->created = sqlite3_column_int64(s, 4);
	snprintf(l->digest, sizeof(l->digest), "%s", (const char *)sqlite3_column_text(s, 5));
}

int cow_db_layer_get(struct cow_db *db, uint64_t id, struct cow_layer_info *ret)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_GET);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":id", (int64_t)id);
	int r = cow_sql_step(db, s);
	if (r > 0)
		layer_row(s, ret);
	cow_sql_done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_layer_set_kind(struct cow_db *db, uint64_t id, int kind)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_SET_KIND);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":id", (int64_t)id);
	cow_sql_bind_i64(s, ":kind", kind);
	return cow_sql_run(db, s);
}

int cow_db_layer_set_digest(struct cow_db *db, uint64_t id, const char *digest)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_SET_DIGEST);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":id", (int64_t)id);
	cow_sql_bind_text(s, ":digest", digest);
	return cow_sql_run(db, s);
}

int cow_db_layer_by_digest(struct cow_db *db, const char *digest, uint64_t *ret_id)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_BY_DIGEST);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":digest", digest);
	int r = cow_sql_step(db, s);
	if (r > 0)
		*ret_id = (uint64_t)sqlite3_column_int64(s, 0);
	cow_sql_done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_layer_drop_rows(struct cow_db *db, uint64_t id)
{
	static const enum stmt_id ids[] = {S_LAYER_DROP_INODES, S_LAYER_DROP_DIRENTS, S_LAYER_DROP_XATTRS};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		sqlite3_stmt *s = cow_sql_stmt(db, ids[i]);
		if (!s)
			return -EIO;
		cow_sql_bind_i64(s, ":layer", (int64_t)id);
		int r = cow_sql_run(db, s);
		if (r < 0)
			return r;
	}
	return 0;
}

int cow_db_layer_foreach(struct cow_db *db, int (*fn)(void *arg, const struct cow_layer_info *), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_ALL);
	if (!s)
		return -EIO;
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
		struct cow_layer_info l;
		layer_row(s, &l);
		r = fn(arg, &l);
		if (r)
			break;
	}
	cow_sql_done(s);
	return r;
}

int cow_db_layer_del(struct cow_db *db, uint64_t id)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_DEL);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":id", (int64_t)id);
	return cow_sql_run(db, s);
}

int cow_db_layer_set_parent(struct cow_db *db, uint64_t id, uint64_t parent)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_SET_PARENT);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":id", (int64_t)id);
	cow_sql_bind_i64(s, ":parent", (int64_t)parent);
	return cow_sql_run(db, s);
}

int cow_db_layer_stats(struct cow_db *db, uint64_t layer, struct cow_layer_stats *ret)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_STATS);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r = cow_sql_step(db, s);
	if (r > 0) {
		memset(ret, 0, sizeof(*ret));
		ret->objects = (uint64_t)sqlite3_column_int64(s, 0);
		ret->data_files = (uint64_t)sqlite3_column_int64(s, 1);
		ret->bytes = (uint64_t)sqlite3_column_int64(s, 2);
		ret->whiteouts = (uint64_t)sqlite3_column_int64(s, 3);
		ret->removed = (uint64_t)sqlite3_column_int64(s, 4);
	}
	cow_sql_done(s);
	if (r <= 0)
		return r < 0 ? r : -EIO;
	s = cow_sql_stmt(db, S_LAYER_COPYUPS);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	r = cow_sql_step(db, s);
	if (r > 0)
		ret->copy_ups = (uint64_t)sqlite3_column_int64(s, 0);
	cow_sql_done(s);
	return r < 0 ? r : 0;
}

int cow_db_layer_inodes(struct cow_db *db, uint64_t layer, int (*fn)(void *arg, const struct cow_irow *row), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_INODES);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
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
	cow_sql_done(s);
	return r;
}

int cow_db_layer_dirents(struct cow_db *db, uint64_t layer,
			 int (*fn)(void *arg, uint64_t parent, const char *name, uint64_t ino, int type), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_DIRENTS);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r;
	char name[COW_NAME_MAX + 1];
	while ((r = cow_sql_step(db, s)) > 0) {
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
	cow_sql_done(s);
	return r;
}

bool cow_db_layer_used(struct cow_db *db, uint64_t id)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_LAYER_USED);
	if (!s)
		return true;
	cow_sql_bind_i64(s, ":id", (int64_t)id);
	int r = cow_sql_step(db, s);
	cow_sql_done(s);
	return r != 0;
}

int cow_db_image_add(struct cow_db *db, const char *name, uint64_t layer)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_IMAGE_ADD);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":created", time(NULL));
	return cow_sql_run(db, s);
}

int cow_db_image_get(struct cow_db *db, const char *name, uint64_t *ret_layer)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_IMAGE_GET);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	int r = cow_sql_step(db, s);
	if (r > 0)
		*ret_layer = (uint64_t)sqlite3_column_int64(s, 0);
	cow_sql_done(s);
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
	sqlite3_stmt *s = cow_sql_stmt(db, S_IMAGE_ALL);
	if (!s)
		return -EIO;
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
		struct cow_image_info i;
		image_row(s, &i);
		r = fn(arg, &i);
		if (r)
			break;
	}
	cow_sql_done(s);
	return r;
}

int cow_db_image_info(struct cow_db *db, const char *name, struct cow_image_info *ret)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_IMAGE_INFO);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	int r = cow_sql_step(db, s);
	if (r > 0)
		image_row(s, ret);
	cow_sql_done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

/* The lowest free client id from @from on (up to COW_CLIENT_ID_MAX, so it
 * fits the return value), 0 if there is none, or -errno. */
static int client_free_id(struct cow_db *db, uint64_t from)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_CLIENT_FREE_ID);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":from", (int64_t)from);
	cow_sql_bind_i64(s, ":max", COW_CLIENT_ID_MAX);
	int r = cow_sql_step(db, s);
	if (r > 0)
		r = (int)sqlite3_column_int64(s, 0); /* NULL (none free) reads as 0 */
	cow_sql_done(s);
	return r;
}

int cow_db_client_add(struct cow_db *db, const char *name, const char *image, uint64_t layer, uint64_t gen)
{
	/* next fit: the first free id after the one given last, so a freed id
	 * goes round the whole range before it is given again */
	uint64_t next;
	int r = cow_db_counter(db, "next_client", 0, &next);
	if (r < 0)
		return r;
	int id = client_free_id(db, next < 1 ? 1 : next);
	if (id == 0) /* none from there up: go round */
		id = client_free_id(db, 1);
	if (id < 0)
		return id;
	if (id == 0)
		return -EUSERS;
	/* the cursor moves to id + 1, back too (the sum is modulo 2^64) */
	r = cow_db_counter(db, "next_client", (uint64_t)id + 1 - next, &next);
	if (r < 0)
		return r;
	sqlite3_stmt *s = cow_sql_stmt(db, S_CLIENT_ADD);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	cow_sql_bind_text(s, ":image", image);
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":created", time(NULL));
	cow_sql_bind_i64(s, ":id", (int64_t)id);
	cow_sql_bind_i64(s, ":gen", (int64_t)gen);
	return cow_sql_run(db, s);
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
	sqlite3_stmt *s = cow_sql_stmt(db, id);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, param, value);
	int r = cow_sql_step(db, s);
	if (r > 0) {
		memset(ret, 0, sizeof(*ret));
		client_row(s, ret);
	}
	cow_sql_done(s);
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
		cow_sql_bind_text(s, name, v);
	else
		sqlite3_bind_null(s, sqlite3_bind_parameter_index(s, name));
}

int cow_db_client_set_boot(struct cow_db *db, const char *name, const struct cow_client_info *c)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_CLIENT_SET_BOOT);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	bind_text_or_null(s, ":serial", c->serial);
	bind_text_or_null(s, ":mac", c->mac);
	bind_text_or_null(s, ":boot_args", c->boot_args);
	bind_text_or_null(s, ":boot_dtb", c->boot_dtb);
	int r = cow_sql_run(db, s);
	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return r;
}

int cow_db_client_set_on_boot(struct cow_db *db, const char *name, bool reset)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_CLIENT_SET_ON_BOOT);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	bind_text_or_null(s, ":on_boot", reset ? "reset" : "");
	int r = cow_sql_run(db, s);
	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return r;
}

int cow_db_client_set(struct cow_db *db, const char *name, const char *image, uint64_t layer)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_CLIENT_SET);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	cow_sql_bind_text(s, ":image", image);
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r = cow_sql_run(db, s);
	if (r == 0 && sqlite3_changes(db->sql) == 0)
		r = -ENOENT;
	return r;
}

/* Run a statement with one :name bind; -ENOENT if it changed nothing. */
static int run_by_name(struct cow_db *db, enum stmt_id id, const char *name)
{
	sqlite3_stmt *s = cow_sql_stmt(db, id);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	int r = cow_sql_run(db, s);
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
	sqlite3_stmt *s = cow_sql_stmt(db, S_IMAGE_BY_LAYER);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r = cow_sql_step(db, s);
	if (r > 0)
		copy_name(ret_name, sqlite3_column_text(s, 0));
	cow_sql_done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_image_users(struct cow_db *db, const char *name, uint64_t layer,
		       int (*fn)(void *arg, const char *kind, const char *name), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_IMAGE_USERS);
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
		char kind[16], who[COW_ENTITY_NAME_MAX + 1];
		snprintf(kind, sizeof(kind), "%s", (const char *)sqlite3_column_text(s, 0));
		copy_name(who, sqlite3_column_text(s, 1));
		r = fn(arg, kind, who);
		if (r)
			break;
	}
	cow_sql_done(s);
	return r;
}

int cow_db_client_foreach(struct cow_db *db, int (*fn)(void *arg, const struct cow_client_info *), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_CLIENT_ALL);
	if (!s)
		return -EIO;
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
		struct cow_client_info c = {0};
		client_row(s, &c);
		c.objects =
		    (uint64_t)sqlite3_column_int64(s, sqlite3_column_count(s) - 1); /* the count after CLIENT_INFO */
		r = fn(arg, &c);
		if (r)
			break;
	}
	cow_sql_done(s);
	return r;
}

/* ---- inodes ---- */

int cow_db_inode_get(struct cow_db *db, uint64_t layer, uint64_t ino, struct cow_irow *ret)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_INODE_GET);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	int r = cow_sql_step(db, s);
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
				cow_sql_done(s);
				return -ENOMEM;
			}
			memcpy(row.target, sqlite3_column_blob(s, 10), (size_t)n);
			row.target[n] = 0;
		}
		*ret = row;
	}
	cow_sql_done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_inode_put(struct cow_db *db, uint64_t layer, const struct cow_irow *row)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_INODE_PUT);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)row->ino);
	cow_sql_bind_i64(s, ":mode", row->mode);
	cow_sql_bind_i64(s, ":nlink", row->nlink);
	cow_sql_bind_i64(s, ":uid", row->uid);
	cow_sql_bind_i64(s, ":gid", row->gid);
	cow_sql_bind_i64(s, ":rdev", (int64_t)row->rdev);
	cow_sql_bind_i64(s, ":size", row->size);
	cow_sql_bind_i64(s, ":atime", row->atime);
	cow_sql_bind_i64(s, ":mtime", row->mtime);
	cow_sql_bind_i64(s, ":ctime", row->ctime);
	cow_sql_bind_i64(s, ":data_layer", (int64_t)row->data_layer);
	if (row->target)
		cow_sql_bind_blob(s, ":target", row->target, strlen(row->target));
	return cow_sql_run(db, s);
}

int cow_db_inode_del(struct cow_db *db, uint64_t layer, uint64_t ino)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_INODE_DEL);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	return cow_sql_run(db, s);
}

int cow_db_inode_foreach_unlinked(struct cow_db *db, uint64_t layer,
				  int (*fn)(void *arg, uint64_t ino, uint64_t data_layer), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_INODE_UNLINKED);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	/* collect first: @fn may change the table */
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
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
	cow_sql_done(s);
	for (size_t i = 0; r == 0 && i < n; i += 2)
		r = fn(arg, v[i], v[i + 1]);
	free(v);
	return r;
}

int cow_db_data_foreach(struct cow_db *db, int (*fn)(void *arg, uint64_t layer, uint64_t ino), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_DATA_ALL);
	if (!s)
		return -EIO;
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
		r = fn(arg, (uint64_t)sqlite3_column_int64(s, 0), (uint64_t)sqlite3_column_int64(s, 1));
		if (r)
			break;
	}
	cow_sql_done(s);
	return r;
}

bool cow_db_data_referenced(struct cow_db *db, uint64_t layer, uint64_t ino)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_DATA_REF);
	if (!s)
		return true;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	int r = cow_sql_step(db, s);
	cow_sql_done(s);
	return r != 0;
}

/* ---- dirents ---- */

int cow_db_dirent_get(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t *ret_ino,
		      int *ret_type)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_DIRENT_GET);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":parent", (int64_t)parent);
	cow_sql_bind_blob(s, ":name", name, strlen(name));
	int r = cow_sql_step(db, s);
	if (r > 0) {
		*ret_ino = (uint64_t)sqlite3_column_int64(s, 0);
		if (ret_type)
			*ret_type = sqlite3_column_int(s, 1);
	}
	cow_sql_done(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

/* One entry, through S_DIRENT_PUT (replacing) or S_DIRENT_ADD (not). */
static int dirent_write(struct cow_db *db, enum stmt_id id, uint64_t layer, uint64_t parent, const char *name,
			uint64_t ino, int type)
{
	sqlite3_stmt *s = cow_sql_stmt(db, id);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":parent", (int64_t)parent);
	cow_sql_bind_blob(s, ":name", name, strlen(name));
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	cow_sql_bind_i64(s, ":type", type);
	return cow_sql_run(db, s);
}

int cow_db_dirent_put(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t ino, int type)
{
	return dirent_write(db, S_DIRENT_PUT, layer, parent, name, ino, type);
}

int cow_db_dirent_del(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_DIRENT_DEL);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":parent", (int64_t)parent);
	cow_sql_bind_blob(s, ":name", name, strlen(name));
	return cow_sql_run(db, s);
}

int cow_db_dirent_del_parent(struct cow_db *db, uint64_t layer, uint64_t parent)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_DIRENT_DEL_PARENT);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":parent", (int64_t)parent);
	return cow_sql_run(db, s);
}

int cow_db_dirent_foreach(struct cow_db *db, uint64_t layer, uint64_t parent,
			  int (*fn)(void *arg, const char *name, uint64_t ino, int type), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_DIRENT_LIST);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":parent", (int64_t)parent);
	int r;
	char name[COW_NAME_MAX + 1];
	while ((r = cow_sql_step(db, s)) > 0) {
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
	cow_sql_done(s);
	return r;
}

/* ---- xattrs ---- */

int cow_db_xattr_foreach(struct cow_db *db, uint64_t layer, uint64_t ino,
			 int (*fn)(void *arg, const char *name, const void *value, size_t size), void *arg)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_XATTR_LIST);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	int r;
	char name[COW_XATTR_NAME_MAX + 1];
	while ((r = cow_sql_step(db, s)) > 0) {
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
	cow_sql_done(s);
	return r;
}

int cow_db_xattr_put(struct cow_db *db, uint64_t layer, uint64_t ino, const char *name, const void *value, size_t size)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_XATTR_PUT);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	cow_sql_bind_blob(s, ":name", name, strlen(name));
	cow_sql_bind_blob(s, ":value", value, size);
	return cow_sql_run(db, s);
}

int cow_db_xattr_del(struct cow_db *db, uint64_t layer, uint64_t ino, const char *name)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_XATTR_DEL);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	cow_sql_bind_blob(s, ":name", name, strlen(name));
	return cow_sql_run(db, s);
}

int cow_db_xattr_copy(struct cow_db *db, uint64_t from_layer, uint64_t to_layer, uint64_t ino)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_XATTR_COPY);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":from", (int64_t)from_layer);
	cow_sql_bind_i64(s, ":to", (int64_t)to_layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	return cow_sql_run(db, s);
}

int cow_db_xattr_del_all(struct cow_db *db, uint64_t layer, uint64_t ino)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_XATTR_DEL_ALL);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	return cow_sql_run(db, s);
}

/* ---- tree checks: load and fsck (see tree.c) ----
 * Statements prepared per call (one per layer checked), but for
 * S_DIRENT_ADD, which runs once per name loaded. */

int cow_db_dirent_add(struct cow_db *db, uint64_t layer, uint64_t parent, const char *name, uint64_t ino, int type)
{
	/* a taken name: SQLITE_CONSTRAINT, -EEXIST */
	return dirent_write(db, S_DIRENT_ADD, layer, parent, name, ino, type);
}

int cow_db_layer_rows(struct cow_db *db, uint64_t layer,
		      int (*fn)(void *arg, uint64_t ino, uint32_t mode, uint32_t nlink), void *arg)
{
	sqlite3_stmt *s =
	    cow_sql_prepare_once(db, "SELECT ino, mode, nlink FROM inodes WHERE layer = :layer ORDER BY ino");
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
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
	sqlite3_stmt *s = cow_sql_prepare_once(db, "SELECT parent, name, ino, type FROM dirents WHERE layer = :layer");
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r;
	char name[COW_NAME_MAX + 2];
	while ((r = cow_sql_step(db, s)) > 0) {
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

int cow_db_client_addrs(struct cow_db *db, const char *name, char *addrs, size_t size)
{
	sqlite3_stmt *s = cow_sql_prepare_once(db, "SELECT addrs FROM clients WHERE name = :name");
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	int r = cow_sql_step(db, s);
	if (r > 0) {
		const unsigned char *a = sqlite3_column_text(s, 0);
		snprintf(addrs, size, "%s", a ? (const char *)a : "");
	}
	sqlite3_finalize(s);
	return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

int cow_db_client_addrs_foreach(struct cow_db *db, int (*fn)(void *arg, const char *name, const char *addrs), void *arg)
{
	sqlite3_stmt *s = cow_sql_prepare_once(db, "SELECT name, addrs FROM clients WHERE addrs != '' ORDER BY name");
	if (!s)
		return -EIO;
	int r;
	while ((r = cow_sql_step(db, s)) > 0) {
		const unsigned char *n = sqlite3_column_text(s, 0), *a = sqlite3_column_text(s, 1);
		r = fn(arg, n ? (const char *)n : "", a ? (const char *)a : "");
		if (r)
			break;
	}
	sqlite3_finalize(s);
	return r;
}

int cow_db_client_set_addrs(struct cow_db *db, const char *name, const char *addrs)
{
	sqlite3_stmt *s = cow_sql_prepare_once(db, "UPDATE clients SET addrs = :addrs WHERE name = :name");
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	cow_sql_bind_text(s, ":addrs", addrs);
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? (sqlite3_changes(db->sql) ? 0 : -ENOENT) : cow_sql_map_rc(db, rc);
	sqlite3_finalize(s);
	return r;
}

/* ---- quotas ---- */

int cow_db_xattr_bytes(struct cow_db *db, uint64_t layer, uint64_t ino, int64_t *ret)
{
	sqlite3_stmt *s = cow_sql_stmt(db, S_XATTR_BYTES);
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	cow_sql_bind_i64(s, ":ino", (int64_t)ino);
	int r = cow_sql_step(db, s);
	if (r > 0)
		*ret = sqlite3_column_int64(s, 0);
	cow_sql_done(s);
	return r < 0 ? r : r == 0 ? -EIO : 0;
}

int cow_db_layer_usage(struct cow_db *db, uint64_t layer, int64_t *ret_files, int64_t *ret_xattr_bytes)
{
	sqlite3_stmt *s =
	    cow_sql_prepare_once(db, "SELECT (SELECT count(*) FROM inodes WHERE layer = :layer AND mode != 0),"
				     " (SELECT ifnull(sum(length(name) + 1 + length(value)), 0) FROM xattrs"
				     " WHERE layer = :layer)");
	if (!s)
		return -EIO;
	cow_sql_bind_i64(s, ":layer", (int64_t)layer);
	int r = cow_sql_step(db, s);
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
		cow_sql_bind_i64(s, name, (int64_t)v);
	else
		sqlite3_bind_null(s, sqlite3_bind_parameter_index(s, name));
}

int cow_db_client_set_quota(struct cow_db *db, const char *name, uint64_t bytes, uint64_t files)
{
	sqlite3_stmt *s = cow_sql_prepare_once(db, "UPDATE clients SET quota_bytes = :bytes, quota_files = :files"
						   " WHERE name = :name");
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":name", name);
	bind_limit(s, ":bytes", bytes);
	bind_limit(s, ":files", files);
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? (sqlite3_changes(db->sql) ? 0 : -ENOENT) : cow_sql_map_rc(db, rc);
	sqlite3_finalize(s);
	return r;
}

int cow_db_default_quota(struct cow_db *db, uint64_t *ret_bytes, uint64_t *ret_files)
{
	sqlite3_stmt *s =
	    cow_sql_prepare_once(db, "SELECT ifnull((SELECT value FROM meta WHERE key = 'default_quota_bytes'), 0),"
				     " ifnull((SELECT value FROM meta WHERE key = 'default_quota_files'), 0)");
	if (!s)
		return -EIO;
	int r = cow_sql_step(db, s);
	if (r > 0) {
		*ret_bytes = (uint64_t)sqlite3_column_int64(s, 0);
		*ret_files = (uint64_t)sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	return r < 0 ? r : r == 0 ? -EIO : 0;
}

static int meta_limit_set(struct cow_db *db, const char *key, uint64_t v)
{
	sqlite3_stmt *s = cow_sql_prepare_once(db, v ? "INSERT OR REPLACE INTO meta (key, value) VALUES (:key, :value)"
						     : "DELETE FROM meta WHERE key = :key");
	if (!s)
		return -EIO;
	cow_sql_bind_text(s, ":key", key);
	if (v)
		cow_sql_bind_i64(s, ":value", (int64_t)v);
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : cow_sql_map_rc(db, rc);
	sqlite3_finalize(s);
	return r;
}

int cow_db_set_default_quota(struct cow_db *db, uint64_t bytes, uint64_t files)
{
	int r = meta_limit_set(db, "default_quota_bytes", bytes);
	return r < 0 ? r : meta_limit_set(db, "default_quota_files", files);
}
