/* SPDX-License-Identifier: MIT */
/*
 * The cowroot FSAL module: registration with ganesha, the COWROOT config
 * block, the store shared by all exports, and the one place where core
 * errnos become FSAL statuses.
 *
 *   COWROOT { Store = "/var/lib/cowroot"; }
 *   EXPORT { ... FSAL { Name = COWROOT; Client = pi1; } }
 */
#include "cowfsal.h"

#include "FSAL/fsal_init.h"

struct cowfsal_module COWFSAL = {
    .fsal =
	{
	    .fs_info =
		{
		    .maxfilesize = INT64_MAX,
		    .maxlink = 65000,
		    .maxnamelen = COW_NAME_MAX,
		    .maxpathlen = 4096,
		    .no_trunc = true,
		    .chown_restricted = true,
		    .case_insensitive = false,
		    .case_preserving = true,
		    .link_support = true,
		    .symlink_support = true,
		    /* ganesha's state layer keeps the lock table; each
		     * export serves one client */
		    .lock_support = true,
		    .lock_support_async_block = false,
		    .named_attr = false,
		    .unique_handles = true,
		    .acl_support = 0,
		    .cansettime = true,
		    .homogenous = true,
		    .supported_attrs = ATTRS_POSIX,
		    .maxread = FSAL_MAXIOSIZE,
		    .maxwrite = FSAL_MAXIOSIZE,
		    .umask = 0,
		    .auth_exportpath_xdev = false,
		    .link_supports_permission_checks = false,
		    .readdir_plus = true,
		    .expire_time_parent = -1,
		    .xattr_support = true,
		},
	},
};

static struct config_item cowfsal_items[] = {
    CONF_ITEM_PATH("Store", 1, 4096, COWFSAL_DEFAULT_STORE, cowfsal_module, store_dir),
    CONFIG_EOL,
};

static struct config_block cowfsal_block = {
    .dbus_interface_name = "org.ganesha.nfsd.config.fsal.cowroot",
    .blk_desc.name = COWFSAL_NAME,
    .blk_desc.type = CONFIG_BLOCK,
    .blk_desc.u.blk.init = noop_conf_init,
    .blk_desc.u.blk.params = cowfsal_items,
    .blk_desc.u.blk.commit = noop_conf_commit,
};

fsal_status_t cowfsal_status(int r)
{
	int e = r < 0 ? -r : r;
	return fsalstat(posix2fsal_error(e), e);
}

static const char *store_error(int r)
{
	switch (r) {
	case -ENOENT:
		return "no store there";
	case -EIO:
		return "corrupt store database";
	case -EAGAIN:
		return "store database locked";
	case -EPROTO:
		return "store written by a newer cowroot";
	default:
		return strerror(-r);
	}
}

static fsal_status_t cowfsal_init_config(struct fsal_module *fsal_hdl, config_file_t config_struct,
					 struct config_error_type *err_type)
{
	struct cowfsal_module *m = container_of(fsal_hdl, struct cowfsal_module, fsal);

	(void)load_config_from_parse(config_struct, &cowfsal_block, m, true, err_type);
	if (!config_error_is_harmless(err_type))
		return fsalstat(ERR_FSAL_INVAL, 0);
	if (m->store)
		return fsalstat(ERR_FSAL_NO_ERROR, 0);
	int r = cow_store_open(m->store_dir, 0, &m->store);
	if (r < 0) {
		LogCrit(COMPONENT_FSAL, "cowroot: cannot open store '%s': %s", m->store_dir, store_error(r));
		return cowfsal_status(r);
	}
	r = cowfsal_control_start(m->store_dir);
	if (r < 0)
		LogCrit(COMPONENT_FSAL, "cowroot: no control socket in '%s/run': %s (reset while served unavailable)",
			m->store_dir, strerror(-r));
	LogEvent(COMPONENT_FSAL, "cowroot: serving store '%s'", m->store_dir);
	display_fsinfo(&m->fsal);
	return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

MODULE_INIT void cowfsal_init(void)
{
	struct fsal_module *me = &COWFSAL.fsal;

	if (register_fsal(me, COWFSAL_NAME, FSAL_MAJOR_VERSION, FSAL_MINOR_VERSION, FSAL_ID_NO_PNFS) != 0) {
		LogCrit(COMPONENT_FSAL, "cowroot: FSAL module failed to register");
		return;
	}
	me->m_ops.create_export = cowfsal_create_export;
	me->m_ops.update_export = cowfsal_update_export;
	me->m_ops.init_config = cowfsal_init_config;
	pthread_mutex_init(&COWFSAL.lock, NULL);
	glist_init(&COWFSAL.exports);
	cowfsal_handle_ops_init(&COWFSAL.handle_ops);
}

MODULE_FINI void cowfsal_fini(void)
{
	cowfsal_control_stop();
	if (unregister_fsal(&COWFSAL.fsal) != 0) {
		LogCrit(COMPONENT_FSAL, "cowroot: FSAL module busy at unload");
		return;
	}
	if (COWFSAL.store) {
		cow_store_close(COWFSAL.store);
		COWFSAL.store = NULL;
	}
	gsh_free(COWFSAL.store_dir);
	COWFSAL.store_dir = NULL;
}
