/* SPDX-License-Identifier: MIT */
/*
 * Exports: one per client.  Its view is opened at create_export and closed
 * at release; handles from the wire are checked against the export's
 * client before ganesha's cache is consulted.
 */
#include "cowfsal.h"

#include "nfs_exports.h"

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void cowfsal_encode_key(const struct cowfsal_export *exp, uint8_t *key, uint64_t ino)
{
	memset(key, 0, COWFSAL_HANDLE_LEN);
	put_le64(key + 4, exp->client_id);
	if (exp->client_gen == 0) {
		key[0] = COWFSAL_HANDLE_V1;
		put_le64(key + 12, ino);
	} else {
		key[0] = COWFSAL_HANDLE_V2;
		put_le64(key + 12, exp->client_gen);
		put_le64(key + 20, ino);
	}
}

/* Decode a wire handle of @exp: 0 and the ino, -EBADMSG if it is not one
 * of ours, -ESTALE if it belongs to another client (another id, or the
 * same id given before to a client since removed). */
static int decode_key(struct cowfsal_export *exp, const struct gsh_buffdesc *desc, uint64_t *ret_ino)
{
	const uint8_t *p = desc->addr;
	uint64_t ino;
	if (desc->len < 4 || p[1] || p[2] || p[3])
		return -EBADMSG;
	if (p[0] == COWFSAL_HANDLE_V1 && desc->len == COWFSAL_HANDLE_V1_LEN)
		ino = get_le64(p + 12);
	else if (p[0] == COWFSAL_HANDLE_V2 && desc->len == COWFSAL_HANDLE_V2_LEN)
		ino = get_le64(p + 20);
	else
		return -EBADMSG;
	if (ino == 0)
		return -EBADMSG;
	if (get_le64(p + 4) != exp->client_id)
		return -ESTALE;
	/* a version 1 handle: only for a client from before generations */
	uint64_t gen = p[0] == COWFSAL_HANDLE_V1 ? 0 : get_le64(p + 12);
	if (gen != exp->client_gen)
		return -ESTALE;
	*ret_ino = ino;
	return 0;
}

static void cowfsal_release_export(struct fsal_export *exp_hdl)
{
	struct cowfsal_export *exp = container_of(exp_hdl, struct cowfsal_export, export);

	pthread_mutex_lock(&COWFSAL.lock);
	glist_del(&exp->entry);
	pthread_mutex_unlock(&COWFSAL.lock);
	pthread_mutex_lock(&exp->handles_lock);
	if (!glist_empty(&exp->handles))
		LogMajor(COMPONENT_FSAL, "cowroot: export of '%s' released with live handles", exp->client);
	pthread_mutex_unlock(&exp->handles_lock);
	if (exp->view) {
		int r = cow_view_close(exp->view);
		if (r < 0)
			LogCrit(COMPONENT_FSAL, "cowroot: closing the view of '%s': %s", exp->client, strerror(-r));
	}
	fsal_detach_export(exp_hdl->fsal, &exp_hdl->exports);
	free_export_ops(exp_hdl);
	pthread_rwlock_destroy(&exp->reset_lock);
	pthread_mutex_destroy(&exp->handles_lock);
	gsh_free(exp->client);
	gsh_free(exp);
}

/* Walk @path (relative to the export root, '/'-separated) from the root. */
static int walk(struct cow_view *v, const char *path, struct cow_attr *ret)
{
	struct cow_attr a;
	int r = cow_ref(v, cow_view_root(v), &a);
	if (r < 0)
		return r;
	char name[COW_NAME_MAX + 1];
	while (*path) {
		while (*path == '/')
			path++;
		size_t n = strcspn(path, "/");
		if (n == 0)
			break;
		if (n > COW_NAME_MAX) {
			cow_forget(v, a.ino, 1);
			return -ENAMETOOLONG;
		}
		memcpy(name, path, n);
		name[n] = 0;
		path += n;
		struct cow_attr next;
		r = cow_lookup(v, a.ino, name, &next);
		cow_forget(v, a.ino, 1);
		if (r < 0)
			return r;
		a = next;
	}
	*ret = a;
	return 0;
}

static fsal_status_t cowfsal_lookup_path(struct fsal_export *exp_hdl, const char *path, struct fsal_obj_handle **handle,
					 struct fsal_attrlist *attrs_out)
{
	struct cowfsal_export *exp = container_of(exp_hdl, struct cowfsal_export, export);
	const char *root = CTX_FULLPATH(op_ctx);
	size_t n = strlen(root);
	struct cow_attr a;

	/* ganesha passes the export's Path, or a path below it */
	if (strncmp(path, root, n) != 0 || (path[n] && path[n] != '/' && root[n - 1] != '/'))
		return fsalstat(ERR_FSAL_NOENT, ENOENT);
	pthread_rwlock_rdlock(&exp->reset_lock);
	int r = walk(exp->view, path + n, &a);
	pthread_rwlock_unlock(&exp->reset_lock);
	if (r < 0)
		return cowfsal_status(r);
	return cowfsal_reply_obj(exp, &a, handle, attrs_out);
}

static fsal_status_t cowfsal_wire_to_host(struct fsal_export *exp_hdl, fsal_digesttype_t in_type,
					  struct gsh_buffdesc *fh_desc, int flags)
{
	struct cowfsal_export *exp = container_of(exp_hdl, struct cowfsal_export, export);
	uint64_t ino;
	int r = decode_key(exp, fh_desc, &ino);
	if (r == -ESTALE) {
		LogInfo(COMPONENT_FSAL,
			"cowroot: handle of another (or a removed) client presented to the export of '%s'",
			exp->client);
		return fsalstat(ERR_FSAL_STALE, ESTALE);
	}
	if (r < 0)
		return fsalstat(ERR_FSAL_BADHANDLE, 0);
	fh_desc->len = exp->key_len;
	return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t cowfsal_create_handle(struct fsal_export *exp_hdl, struct gsh_buffdesc *hdl_desc,
					   struct fsal_obj_handle **handle, struct fsal_attrlist *attrs_out)
{
	struct cowfsal_export *exp = container_of(exp_hdl, struct cowfsal_export, export);
	struct cow_attr a;
	uint64_t ino;
	int r = decode_key(exp, hdl_desc, &ino);
	if (r == -ESTALE)
		return fsalstat(ERR_FSAL_STALE, ESTALE);
	if (r < 0)
		return fsalstat(ERR_FSAL_BADHANDLE, 0);
	pthread_rwlock_rdlock(&exp->reset_lock);
	r = cow_ref(exp->view, ino, &a);
	pthread_rwlock_unlock(&exp->reset_lock);
	if (r == -ENOENT)
		return fsalstat(ERR_FSAL_STALE, ESTALE);
	if (r < 0)
		return cowfsal_status(r);
	return cowfsal_reply_obj(exp, &a, handle, attrs_out);
}

static fsal_status_t cowfsal_get_dynamic_info(struct fsal_export *exp_hdl, struct fsal_obj_handle *obj_hdl,
					      fsal_dynamicfsinfo_t *info)
{
	struct cowfsal_export *exp = container_of(exp_hdl, struct cowfsal_export, export);
	struct statvfs sv;
	pthread_rwlock_rdlock(&exp->reset_lock);
	int r = cow_statfs(exp->view, &sv);
	pthread_rwlock_unlock(&exp->reset_lock);
	if (r < 0)
		return cowfsal_status(r);
	memset(info, 0, sizeof(*info));
	info->total_bytes = (uint64_t)sv.f_frsize * sv.f_blocks;
	info->free_bytes = (uint64_t)sv.f_frsize * sv.f_bfree;
	info->avail_bytes = (uint64_t)sv.f_frsize * sv.f_bavail;
	info->total_files = sv.f_files;
	info->free_files = sv.f_ffree;
	info->avail_files = sv.f_favail;
	info->time_delta.tv_sec = 0;
	info->time_delta.tv_nsec = 1;
	return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

#if COWFSAL_API13
static void cowfsal_free_state(struct state_t *state)
{
	destroy_fsal_fd(&((struct cowfsal_fd *)(state + 1))->fsal_fd);
	gsh_free(state);
}

static struct state_t *cowfsal_alloc_state(struct fsal_export *exp_hdl, enum state_type state_type,
					   struct state_t *related_state)
{
	struct state_t *state = gsh_calloc(1, sizeof(struct state_t) + sizeof(struct cowfsal_fd));
	init_fsal_fd(&((struct cowfsal_fd *)(state + 1))->fsal_fd, FSAL_FD_STATE, exp_hdl);
	return init_state(state, cowfsal_free_state, state_type, related_state);
}

/* The handle whose global fd @fd is (the fd LRU closes idle ones). */
static void cowfsal_get_fsal_obj_hdl(struct fsal_export *exp_hdl, struct fsal_fd *fd, struct fsal_obj_handle **handle)
{
	*handle = &container_of(fd, struct cowfsal_handle, fd.fsal_fd)->obj_handle;
}
#else
static struct state_t *cowfsal_alloc_state(struct fsal_export *exp_hdl, enum state_type state_type,
					   struct state_t *related_state)
{
	struct state_t *state = gsh_calloc(1, sizeof(struct state_t) + sizeof(struct cowfsal_fd));
	return init_state(state, exp_hdl, state_type, related_state);
}
#endif

static void export_ops_init(struct export_ops *ops)
{
	ops->release = cowfsal_release_export;
	ops->lookup_path = cowfsal_lookup_path;
	ops->wire_to_host = cowfsal_wire_to_host;
	ops->create_handle = cowfsal_create_handle;
	ops->get_fs_dynamic_info = cowfsal_get_dynamic_info;
	ops->alloc_state = cowfsal_alloc_state;
#if COWFSAL_API13
	ops->get_fsal_obj_hdl = cowfsal_get_fsal_obj_hdl;
#endif
}

struct export_params {
	char *client;
};

static struct config_item export_items[] = {
    CONF_ITEM_NOOP("name"),
    CONF_MAND_STR("Client", 1, COW_ENTITY_NAME_MAX, NULL, export_params, client),
    CONFIG_EOL,
};

static struct config_block export_block = {
    .dbus_interface_name = "org.ganesha.nfsd.config.fsal.cowroot-export%d",
    .blk_desc.name = "FSAL",
    .blk_desc.type = CONFIG_BLOCK,
    .blk_desc.u.blk.init = noop_conf_init,
    .blk_desc.u.blk.params = export_items,
    .blk_desc.u.blk.commit = noop_conf_commit,
};

static const char *view_error(int r)
{
	switch (r) {
	case -ENOENT:
		return "no such client in the store";
	case -EBUSY:
		return "its layer is in use by another process (mounted with 'cowroot mount'?)";
	default:
		return strerror(-r);
	}
}

fsal_status_t cowfsal_create_export(struct fsal_module *fsal_hdl, void *parse_node, struct config_error_type *err_type,
				    const struct fsal_up_vector *up_ops)
{
	struct export_params params = {0};
	struct cowfsal_export *exp;
	int r;

	if (load_config_from_node(parse_node, &export_block, &params, true, err_type) != 0)
		return fsalstat(ERR_FSAL_INVAL, EINVAL);
	if (!COWFSAL.store) {
		LogCrit(COMPONENT_FSAL, "cowroot: no store open (see the COWROOT block)");
		gsh_free(params.client);
		return fsalstat(ERR_FSAL_SERVERFAULT, 0);
	}
	exp = gsh_calloc(1, sizeof(*exp));
	exp->client = params.client;
	glist_init(&exp->handles);
	pthread_mutex_init(&exp->handles_lock, NULL);
	pthread_rwlock_init(&exp->reset_lock, NULL);
	r = cow_view_open(COWFSAL.store, exp->client, NULL, 0, &exp->view);
	if (r < 0) {
		LogCrit(COMPONENT_FSAL, "cowroot: cannot serve client '%s': %s", exp->client, view_error(r));
		goto err_free;
	}
	exp->client_id = cow_view_client_id(exp->view);
	exp->client_gen = cow_view_client_gen(exp->view);
	exp->key_len = exp->client_gen ? COWFSAL_HANDLE_V2_LEN : COWFSAL_HANDLE_V1_LEN;
	char holder[64];
	snprintf(holder, sizeof(holder), "serve (ganesha.nfsd pid %d)", (int)getpid());
	cow_view_set_holder(exp->view, holder);
	fsal_export_init(&exp->export);
	export_ops_init(&exp->export.exp_ops);
	r = -fsal_attach_export(fsal_hdl, &exp->export.exports);
	if (r < 0) {
		LogCrit(COMPONENT_FSAL, "cowroot: cannot attach the export of '%s'", exp->client);
		goto err_view;
	}
	exp->export.fsal = fsal_hdl;
	exp->export.up_ops = up_ops;
	op_ctx->fsal_export = &exp->export;
	pthread_mutex_lock(&COWFSAL.lock);
	glist_add_tail(&COWFSAL.exports, &exp->entry);
	pthread_mutex_unlock(&COWFSAL.lock);
	LogEvent(COMPONENT_FSAL, "cowroot: exporting client '%s' at %s", exp->client, CTX_FULLPATH(op_ctx));
	return fsalstat(ERR_FSAL_NO_ERROR, 0);

err_view:
	free_export_ops(&exp->export);
	cow_view_close(exp->view);
err_free:
	pthread_rwlock_destroy(&exp->reset_lock);
	pthread_mutex_destroy(&exp->handles_lock);
	gsh_free(exp->client);
	gsh_free(exp);
	return cowfsal_status(r);
}

fsal_status_t cowfsal_update_export(struct fsal_module *fsal_hdl, void *parse_node, struct config_error_type *err_type,
				    struct fsal_export *original, struct fsal_module *updated_super)
{
	struct cowfsal_export *exp = container_of(original, struct cowfsal_export, export);
	struct export_params params = {0};
	fsal_status_t st = update_export(fsal_hdl, parse_node, err_type, original, updated_super);
	if (FSAL_IS_ERROR(st))
		return st;
	if (load_config_from_node(parse_node, &export_block, &params, true, err_type) != 0)
		return fsalstat(ERR_FSAL_INVAL, EINVAL);
	bool same = !strcmp(params.client, exp->client);
	gsh_free(params.client);
	if (!same) {
		LogCrit(COMPONENT_FSAL, "cowroot: an export's Client cannot change (was '%s'); give it a new Export_Id",
			exp->client);
		err_type->invalid = true;
		return fsalstat(ERR_FSAL_INVAL, EINVAL);
	}
	return fsalstat(ERR_FSAL_NO_ERROR, 0);
}
