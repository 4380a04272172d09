/* SPDX-License-Identifier: MIT */
/*
 * Object operations: each unpacks ganesha's arguments, calls the core on
 * the export's view and converts the answer.  A handle holds one core
 * reference on its object, dropped at release.  Open files use ganesha's
 * fd helpers (fsal_find_fd with API 11, fsal_start_io with API 13): a
 * global fd per handle for stateless NFSv3 I/O and one fd per NFSv4 open
 * state, each wrapping a struct cow_file.
 */
#include <fcntl.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>

#include "cowfsal.h"

static struct cowfsal_handle *handle_of(struct fsal_obj_handle *obj)
{
	return container_of(obj, struct cowfsal_handle, obj_handle);
}

static struct cow_view *view_of(struct fsal_obj_handle *obj)
{
	return handle_of(obj)->exp->view;
}

/* Errors about the object a handle names: gone means stale. */
static fsal_status_t obj_status(int r)
{
	return cowfsal_status(r == -ENOENT ? -ESTALE : r);
}

static const fsal_status_t ok = {ERR_FSAL_NO_ERROR, 0};

static struct cow_cred caller_cred(void)
{
	/* NFS clients apply their umask themselves */
	return (struct cow_cred){.uid = op_ctx->creds.caller_uid, .gid = op_ctx->creds.caller_gid, .umask = 0};
}

/* Is the caller in group @gid? */
static bool caller_in_group(uint32_t gid)
{
	if (op_ctx->creds.caller_gid == gid)
		return true;
	for (unsigned i = 0; i < op_ctx->creds.caller_glen; i++)
		if (op_ctx->creds.caller_garray[i] == gid)
			return true;
	return false;
}

/* A write or truncate by the caller takes away what Linux's
 * file_remove_privs does: setuid and setgid unless the caller is root,
 * the file capability always.  FSAL_VFS gets this from the kernel, which
 * writes as the caller; here the server must. */
static int kill_privs(struct cow_view *v, uint64_t ino, bool keep_setid)
{
	unsigned keep = 0;
	struct cow_attr a;
	if (keep_setid || op_ctx->fsal_export->exp_ops.is_superuser(op_ctx->fsal_export, &op_ctx->creds))
		keep = COW_KEEP_SETID;
	else if (cow_getattr(v, ino, &a) == 0 && (a.mode & S_ISGID) && caller_in_group(a.gid))
		keep = COW_KEEP_SGID_NOEXEC;
	int r = cow_kill_privs(v, ino, keep);
	return r < 0 ? r : 0;
}

void cowfsal_attr_out(struct cowfsal_handle *h, const struct cow_attr *a, struct fsal_attrlist *out)
{
	struct stat st;
	cow_attr_to_stat(a, &st);
	posix2fsal_attributes_all(&st, out);
	out->fsid = h->obj_handle.fsid;
}

struct cowfsal_handle *cowfsal_handle_new(struct cowfsal_export *exp, const struct cow_attr *attr)
{
	struct cowfsal_handle *h = gsh_calloc(1, sizeof(*h));
	h->exp = exp;
	h->ino = attr->ino;
	cowfsal_encode_key(exp, h->key, attr->ino);
#if COWFSAL_API13
	fsal_obj_handle_init(&h->obj_handle, &exp->export, posix2fsal_type(attr->mode), true);
	if (h->obj_handle.type == REGULAR_FILE)
		init_fsal_fd(&h->fd.fsal_fd, FSAL_FD_GLOBAL, &exp->export);
#else
	fsal_obj_handle_init(&h->obj_handle, &exp->export, posix2fsal_type(attr->mode));
#endif
	h->obj_handle.obj_ops = &COWFSAL.handle_ops;
	h->obj_handle.fileid = attr->ino;
	/* one file system per client: export id as fsid (stable in the config) */
	h->obj_handle.fsid.major = exp->export.export_id;
	h->obj_handle.fsid.minor = 0;
	pthread_mutex_lock(&exp->handles_lock);
	glist_add_tail(&exp->handles, &h->entry);
	pthread_mutex_unlock(&exp->handles_lock);
	return h;
}

fsal_status_t cowfsal_reply_obj(struct cowfsal_export *exp, const struct cow_attr *a, struct fsal_obj_handle **ret,
				struct fsal_attrlist *attrs_out)
{
	struct cowfsal_handle *h = cowfsal_handle_new(exp, a);
	*ret = &h->obj_handle;
	if (attrs_out)
		cowfsal_attr_out(h, a, attrs_out);
	return ok;
}

static void close_fd(struct cowfsal_fd *fd)
{
	if (fd->file) {
		cow_release(fd->file);
		fd->file = NULL;
	}
	fd->fsal_fd.openflags = FSAL_O_CLOSED;
}

static void do_release(struct fsal_obj_handle *obj)
{
	struct cowfsal_handle *h = handle_of(obj);
	struct cowfsal_export *exp = h->exp;

	if (obj->type == REGULAR_FILE) {
#if COWFSAL_API13
		/* waits for I/O on the global fd and takes it off the LRU */
		close_fsal_fd(obj, &h->fd.fsal_fd, false);
		destroy_fsal_fd(&h->fd.fsal_fd);
#else
		PTHREAD_RWLOCK_wrlock(&obj->obj_lock);
		close_fd(&h->fd);
		PTHREAD_RWLOCK_unlock(&obj->obj_lock);
#endif
	}
	pthread_mutex_lock(&exp->handles_lock);
	glist_del(&h->entry);
	pthread_mutex_unlock(&exp->handles_lock);
	cow_forget(exp->view, h->ino, 1);
#if COWFSAL_API13
	fsal_obj_handle_fini(obj, true);
#else
	fsal_obj_handle_fini(obj);
#endif
	gsh_free(h);
}

static fsal_status_t cowfsal_merge(struct fsal_obj_handle *orig, struct fsal_obj_handle *dupe)
{
	if (orig == dupe || orig->type != REGULAR_FILE || dupe->type != REGULAR_FILE)
		return ok;
	return merge_share(orig, &handle_of(orig)->share, &handle_of(dupe)->share);
}

/* The parent of directory @dir, referenced (the root is its own parent). */
static int lookup_parent(struct cow_view *v, uint64_t dir, struct cow_attr *ret);

static fsal_status_t do_lookup(struct fsal_obj_handle *dir, const char *name, struct fsal_obj_handle **handle,
			       struct fsal_attrlist *attrs_out)
{
	struct cowfsal_handle *d = handle_of(dir);
	struct cow_attr a;
	int r;
	if (!strcmp(name, ".."))
		r = lookup_parent(d->exp->view, d->ino, &a);
	else if (!strcmp(name, "."))
		r = cow_ref(d->exp->view, d->ino, &a);
	else
		r = cow_lookup(d->exp->view, d->ino, name, &a);
	if (r < 0)
		return cowfsal_status(r);
	return cowfsal_reply_obj(d->exp, &a, handle, attrs_out);
}

static int find_dotdot(void *arg, const char *name, const struct cow_attr *attr, off_t next_off)
{
	*(uint64_t *)arg = attr->ino;
	return 1;
}

static int lookup_parent(struct cow_view *v, uint64_t dir, struct cow_attr *ret)
{
	uint64_t parent = 0;
	int r = cow_readdir_ino(v, dir, 1, false, find_dotdot, &parent);
	if (r < 0)
		return r;
	if (!parent)
		return -ENOENT;
	return cow_ref(v, parent, ret);
}

/* ---- readdir ---- */

struct readdir_state {
	struct cowfsal_handle *dir;
	fsal_readdir_cb cb;
	void *cb_state;
	attrmask_t attrmask;
	bool stop;  /* ganesha had enough: refuse the next entry */
	bool ended; /* the listing has no more entries */
};

static int readdir_entry(void *arg, const char *name, const struct cow_attr *attr, off_t next_off)
{
	struct readdir_state *s = arg;
	if (s->stop)
		return 1; /* not referenced by the core */
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	struct cowfsal_handle *h = cowfsal_handle_new(s->dir->exp, attr);
	struct fsal_attrlist attrs;
	fsal_prepare_attrs(&attrs, s->attrmask);
	cowfsal_attr_out(h, attr, &attrs);
	/* the cookie resumes after this entry; 0-2 are ganesha's own */
	enum fsal_dir_result res = s->cb(name, &h->obj_handle, &attrs, s->cb_state, (fsal_cookie_t)next_off + 2);
	fsal_release_attrs(&attrs);
	if (res >= DIR_TERMINATE)
		s->stop = true;
	return 0;
}

static fsal_status_t do_readdir(struct fsal_obj_handle *dir, fsal_cookie_t *whence, void *dir_state, fsal_readdir_cb cb,
				attrmask_t attrmask, bool *eof)
{
	struct cowfsal_handle *d = handle_of(dir);
	uint64_t cookie = whence ? *whence : 0;
	struct readdir_state s = {.dir = d, .cb = cb, .cb_state = dir_state, .attrmask = attrmask};
	int r = 0;

	/* the core's offsets are stable cookies: an entry keeps its offset
	 * while it exists and new ones come after, so a client resuming at
	 * any cookie neither sees an entry twice nor misses one that stayed */
	r = cow_readdir_ino(d->exp->view, d->ino, cookie < 3 ? 2 : (off_t)(cookie - 2), true, readdir_entry, &s);
	if (r < 0)
		return obj_status(r);
	*eof = !s.stop;
	return ok;
}

/* ---- creating ---- */

/* What of @attrs_in is left to set on a new object of @mode after its
 * creation with the mode: owner, times, and a regular file's size (an
 * NFSv4 OPEN may create a file with a size). */
static attrmask_t create_attrs_rest(const struct fsal_attrlist *attrs_in, mode_t mode)
{
	attrmask_t m = ATTR_OWNER | ATTR_GROUP | ATTRS_SET_TIME;
	if (!attrs_in)
		return 0;
	if (S_ISREG(mode))
		m |= ATTR_SIZE;
	return attrs_in->valid_mask & m;
}

/* Apply what @attrs_in asks beyond the mode set at creation. */
static fsal_status_t do_setattr2(struct fsal_obj_handle *obj, bool bypass, struct state_t *state,
				 struct fsal_attrlist *attrs);

static fsal_status_t finish_create(struct cowfsal_handle *dir, const struct cow_attr *a, struct fsal_attrlist *attrs_in,
				   struct fsal_obj_handle **new_obj, struct fsal_attrlist *attrs_out)
{
	struct cowfsal_handle *h = cowfsal_handle_new(dir->exp, a);
	*new_obj = &h->obj_handle;
	attrmask_t rest_mask = create_attrs_rest(attrs_in, a->mode);
	if (rest_mask) {
		struct fsal_attrlist rest = *attrs_in;
		rest.valid_mask = rest_mask;
		rest.acl = NULL;
		rest.fs_locations = NULL;
		rest.sec_label.slai_data.slai_data_val = NULL;
		fsal_status_t st = do_setattr2(*new_obj, true, NULL, &rest);
		if (FSAL_IS_ERROR(st)) {
			/* the object exists: the caller must know it */
			LogMajor(COMPONENT_FSAL, "cowroot: setting attributes of new object %" PRIu64 " failed",
				 a->ino);
		}
	}
	if (attrs_out) {
		struct cow_attr now;
		if (cow_getattr(dir->exp->view, a->ino, &now) == 0)
			cowfsal_attr_out(h, &now, attrs_out);
		else
			cowfsal_attr_out(h, a, attrs_out);
	}
	return ok;
}

static mode_t mode_in(struct fsal_attrlist *attrs_in, mode_t def)
{
	if (attrs_in && (attrs_in->valid_mask & ATTR_MODE))
		return fsal2unix_mode(attrs_in->mode);
	return def;
}

static fsal_status_t do_mkdir(struct fsal_obj_handle *dir, const char *name, struct fsal_attrlist *attrs_in,
			      struct fsal_obj_handle **new_obj, struct fsal_attrlist *attrs_out)
{
	struct cowfsal_handle *d = handle_of(dir);
	struct cow_cred c = caller_cred();
	struct cow_attr a;
	int r = cow_mkdir(d->exp->view, d->ino, name, mode_in(attrs_in, 0755), &c, &a);
	if (r < 0)
		return cowfsal_status(r);
	return finish_create(d, &a, attrs_in, new_obj, attrs_out);
}

static fsal_status_t do_mknode(struct fsal_obj_handle *dir, const char *name, object_file_type_t nodetype,
			       struct fsal_attrlist *attrs_in, struct fsal_obj_handle **new_obj,
			       struct fsal_attrlist *attrs_out)
{
	struct cowfsal_handle *d = handle_of(dir);
	struct cow_cred c = caller_cred();
	struct cow_attr a;
	mode_t type;
	dev_t rdev = 0;
	switch (nodetype) {
	case CHARACTER_FILE:
		type = S_IFCHR;
		break;
	case BLOCK_FILE:
		type = S_IFBLK;
		break;
	case FIFO_FILE:
		type = S_IFIFO;
		break;
	case SOCKET_FILE:
		type = S_IFSOCK;
		break;
	default:
		return fsalstat(ERR_FSAL_INVAL, EINVAL);
	}
	if ((type == S_IFCHR || type == S_IFBLK) && attrs_in)
		rdev = makedev(attrs_in->rawdev.major, attrs_in->rawdev.minor);
	int r = cow_mknod(d->exp->view, d->ino, name, type | mode_in(attrs_in, 0644), rdev, &c, &a);
	if (r < 0)
		return cowfsal_status(r);
	return finish_create(d, &a, attrs_in, new_obj, attrs_out);
}

static fsal_status_t do_symlink(struct fsal_obj_handle *dir, const char *name, const char *target,
				struct fsal_attrlist *attrs_in, struct fsal_obj_handle **new_obj,
				struct fsal_attrlist *attrs_out)
{
	struct cowfsal_handle *d = handle_of(dir);
	struct cow_cred c = caller_cred();
	struct cow_attr a;
	int r = cow_symlink(d->exp->view, d->ino, name, target, &c, &a);
	if (r < 0)
		return cowfsal_status(r);
	return finish_create(d, &a, attrs_in, new_obj, attrs_out);
}

static fsal_status_t do_readlink(struct fsal_obj_handle *obj, struct gsh_buffdesc *link_content, bool refresh)
{
	char buf[COW_SYMLINK_MAX + 1];
	int r = cow_readlink(view_of(obj), handle_of(obj)->ino, buf, sizeof(buf) - 1);
	if (r < 0)
		return obj_status(r);
	link_content->len = (size_t)r + 1;
	link_content->addr = gsh_malloc(link_content->len);
	memcpy(link_content->addr, buf, (size_t)r);
	((char *)link_content->addr)[r] = 0;
	return ok;
}

/* ---- attributes ---- */

static fsal_status_t do_getattrs(struct fsal_obj_handle *obj, struct fsal_attrlist *attrs_out)
{
	struct cowfsal_handle *h = handle_of(obj);
	struct cow_attr a;
	int r = cow_getattr(h->exp->view, h->ino, &a);
	if (r < 0) {
		if (attrs_out->request_mask & ATTR_RDATTR_ERR)
			attrs_out->valid_mask = ATTR_RDATTR_ERR;
		return obj_status(r);
	}
	cowfsal_attr_out(h, &a, attrs_out);
	return ok;
}

static fsal_status_t do_setattr2(struct fsal_obj_handle *obj, bool bypass, struct state_t *state,
				 struct fsal_attrlist *attrs)
{
	struct cowfsal_handle *h = handle_of(obj);
	struct cow_attr a = {0}, out;
	int set = 0;
	attrmask_t m = attrs->valid_mask;

	if (m & ATTR_MODE) {
		set |= COW_SET_MODE;
		a.mode = fsal2unix_mode(attrs->mode);
	}
	if (m & ATTR_OWNER) {
		set |= COW_SET_UID;
		a.uid = (uint32_t)attrs->owner;
	}
	if (m & ATTR_GROUP) {
		set |= COW_SET_GID;
		a.gid = (uint32_t)attrs->group;
	}
	if (m & ATTR_SIZE) {
		if (obj->type != REGULAR_FILE)
			return fsalstat(ERR_FSAL_INVAL, EINVAL);
		/* NFS sizes are unsigned: past off_t is too big, not negative */
		if (attrs->filesize > INT64_MAX)
			return fsalstat(ERR_FSAL_FBIG, EFBIG);
		set |= COW_SET_SIZE;
		a.size = (int64_t)attrs->filesize;
	}
	if (m & ATTR_ATIME_SERVER) {
		set |= COW_SET_ATIME_NOW;
	} else if (m & ATTR_ATIME) {
		set |= COW_SET_ATIME;
		a.atime = attrs->atime;
	}
	if (m & ATTR_MTIME_SERVER) {
		set |= COW_SET_MTIME_NOW;
	} else if (m & ATTR_MTIME) {
		set |= COW_SET_MTIME;
		a.mtime = attrs->mtime;
	}
	if (!set)
		return ok;
	int r = 0;
	/* a truncate as a write (ganesha keeps to chown's setid rules itself;
	 * an explicit mode is what it asks for); a chown drops the capability */
	if (set & (COW_SET_SIZE | COW_SET_UID | COW_SET_GID))
		r = kill_privs(h->exp->view, h->ino, !(set & COW_SET_SIZE) || (set & COW_SET_MODE));
	if (r == 0)
		r = cow_setattr(h->exp->view, h->ino, &a, set, &out);
	if (r < 0)
		return obj_status(r);
	return ok;
}

/* ---- namespace changes ---- */

static fsal_status_t do_link(struct fsal_obj_handle *obj, struct fsal_obj_handle *destdir, const char *name)
{
	struct cowfsal_handle *h = handle_of(obj), *d = handle_of(destdir);
	struct cow_attr a;
	int r = cow_link(h->exp->view, h->ino, d->ino, name, &a);
	if (r < 0)
		return cowfsal_status(r);
	cow_forget(h->exp->view, a.ino, 1);
	return ok;
}

static fsal_status_t do_rename(struct fsal_obj_handle *obj, struct fsal_obj_handle *olddir, const char *old_name,
			       struct fsal_obj_handle *newdir, const char *new_name)
{
	struct cowfsal_handle *o = handle_of(olddir), *n = handle_of(newdir);
	int r = cow_rename(o->exp->view, o->ino, old_name, n->ino, new_name, 0);
	if (r < 0)
		return cowfsal_status(r);
	return ok;
}

static fsal_status_t do_unlink(struct fsal_obj_handle *dir, struct fsal_obj_handle *obj, const char *name)
{
	struct cowfsal_handle *d = handle_of(dir);
	int r = obj->type == DIRECTORY ? cow_rmdir(d->exp->view, d->ino, name) : cow_unlink(d->exp->view, d->ino, name);
	if (r < 0)
		return cowfsal_status(r);
	return ok;
}

/* ---- open files ---- */

static int open_flags(fsal_openflags_t openflags)
{
	int flags;
	switch (openflags & FSAL_O_RDWR) {
	case FSAL_O_RDWR:
		flags = O_RDWR;
		break;
	case FSAL_O_WRITE:
		flags = O_WRONLY;
		break;
	default:
		/* reads never copy a file up */
		flags = O_RDONLY;
	}
	if (openflags & FSAL_O_TRUNC)
		flags |= O_TRUNC;
	return flags;
}

static fsal_status_t open_fd(struct fsal_obj_handle *obj, fsal_openflags_t openflags, struct cowfsal_fd *fd)
{
	struct cowfsal_handle *h = handle_of(obj);
	struct cow_file *f;
	int r = cow_open(h->exp->view, h->ino, open_flags(openflags), &f);
	if (r == 0 && (openflags & FSAL_O_TRUNC) && (r = kill_privs(h->exp->view, h->ino, false)) < 0)
		cow_release(f);
	if (r < 0)
		return obj_status(r);
	if (fd->file)
		cow_release(fd->file);
	fd->file = f;
	fd->fsal_fd.openflags = FSAL_O_NFS_FLAGS(openflags);
	return ok;
}

/* fsal_find_fd's callbacks with API 11, the reopen_func and close_func
 * object operations with API 13 */
static fsal_status_t open_func(struct fsal_obj_handle *obj, fsal_openflags_t openflags, struct fsal_fd *fd)
{
	return open_fd(obj, openflags, (struct cowfsal_fd *)fd);
}

static fsal_status_t close_func(struct fsal_obj_handle *obj, struct fsal_fd *fd)
{
	struct cowfsal_fd *cfd = (struct cowfsal_fd *)fd;
	if (!cfd->file)
		return fsalstat(ERR_FSAL_NOT_OPENED, 0);
	close_fd(cfd);
	return ok;
}

static struct cowfsal_fd *state_fd(struct state_t *state)
{
	return (struct cowfsal_fd *)(state + 1);
}

static bool is_share_state(struct state_t *state)
{
	return state->state_type == STATE_TYPE_SHARE || state->state_type == STATE_TYPE_NLM_SHARE ||
	       state->state_type == STATE_TYPE_9P_FID;
}

#if COWFSAL_API13
/* ganesha's fd counters and LRU after an open of @fd that found it closed
 * (@was_closed) or open, ending in @st: counted (a global fd joins the
 * LRU) when it opened, moved up when it reopened, taken out when a failure
 * closed it. */
static void fd_lru_opened(struct cowfsal_fd *fd, bool was_closed, fsal_status_t st)
{
	if (!FSAL_IS_ERROR(st) && was_closed)
		insert_fd_lru(&fd->fsal_fd);
	else if (!FSAL_IS_ERROR(st))
		bump_fd_lru(&fd->fsal_fd);
	else if (!was_closed && !fd->file)
		remove_fd_lru(&fd->fsal_fd);
}
#endif

/* Open @obj by handle into @state's fd, or the global fd without state. */
static fsal_status_t open_by_handle(struct fsal_obj_handle *obj, struct state_t *state, fsal_openflags_t openflags,
				    enum fsal_create_mode createmode, fsal_verifier_t verifier,
				    struct fsal_attrlist *attrs_out)
{
	struct cowfsal_handle *h = handle_of(obj);
	struct cowfsal_fd *fd = state ? state_fd(state) : &h->fd;
	fsal_status_t st;

#if COWFSAL_API13
	/* no I/O on the fd until it is open (the only order in which ganesha
	 * takes an fd's work mutex and then the object lock) */
	fsal_start_fd_work_no_reclaim(&fd->fsal_fd);
	bool fresh = fd->fsal_fd.openflags == FSAL_O_CLOSED;
#endif
	PTHREAD_RWLOCK_wrlock(&obj->obj_lock);
	if (state) {
		st = check_share_conflict(&h->share, openflags, false);
		if (FSAL_IS_ERROR(st)) {
			PTHREAD_RWLOCK_unlock(&obj->obj_lock);
#if COWFSAL_API13
			fsal_complete_fd_work(&fd->fsal_fd);
#endif
			return st;
		}
		update_share_counters(&h->share, FSAL_O_CLOSED, openflags);
	}
	st = open_fd(obj, openflags, fd);
	if (!FSAL_IS_ERROR(st)) {
		struct cow_attr a;
		int r = cow_getattr(h->exp->view, h->ino, &a);
		if (r < 0) {
			st = obj_status(r);
		} else if (createmode >= FSAL_EXCLUSIVE && createmode != FSAL_EXCLUSIVE_9P) {
			struct stat sb;
			cow_attr_to_stat(&a, &sb);
			if (!check_verifier_stat(&sb, verifier, false))
				st = fsalstat(ERR_FSAL_EXIST, EEXIST);
		}
		if (!FSAL_IS_ERROR(st) && attrs_out)
			cowfsal_attr_out(h, &a, attrs_out);
		if (FSAL_IS_ERROR(st))
			close_fd(fd);
	}
	if (FSAL_IS_ERROR(st) && state)
		update_share_counters(&h->share, openflags, FSAL_O_CLOSED);
	PTHREAD_RWLOCK_unlock(&obj->obj_lock);
#if COWFSAL_API13
	fd_lru_opened(fd, fresh, st);
	fsal_complete_fd_work(&fd->fsal_fd);
#endif
	return st;
}

static fsal_status_t do_open2(struct fsal_obj_handle *obj, struct state_t *state, fsal_openflags_t openflags,
			      enum fsal_create_mode createmode, const char *name, struct fsal_attrlist *attrs_set,
			      fsal_verifier_t verifier, struct fsal_obj_handle **new_obj,
			      struct fsal_attrlist *attrs_out, bool *caller_perm_check)
{
	struct cowfsal_handle *d = handle_of(obj);
	struct cow_view *v = d->exp->view;
	struct fsal_attrlist verifier_attrs;
	struct cow_attr a;
	int r;

	if (createmode >= FSAL_EXCLUSIVE) {
		/* the verifier is kept in atime/mtime */
		if (!attrs_set) {
			memset(&verifier_attrs, 0, sizeof(verifier_attrs));
			attrs_set = &verifier_attrs;
		}
		set_common_verifier(attrs_set, verifier, false);
	}

	if (!name)
		return open_by_handle(obj, state, openflags, createmode, verifier, attrs_out);

	if (createmode == FSAL_NO_CREATE) {
		r = cow_lookup(v, d->ino, name, &a);
		if (r < 0)
			return cowfsal_status(r);
		if (!S_ISREG(a.mode)) {
			cow_forget(v, a.ino, 1);
			return fsalstat(S_ISDIR(a.mode) ? ERR_FSAL_ISDIR : ERR_FSAL_BADTYPE, 0);
		}
		struct cowfsal_handle *h = cowfsal_handle_new(d->exp, &a);
		*new_obj = &h->obj_handle;
		*caller_perm_check = true;
		fsal_status_t st = open_by_handle(*new_obj, state, openflags, createmode, verifier, attrs_out);
		if (FSAL_IS_ERROR(st)) {
			do_release(*new_obj);
			*new_obj = NULL;
		}
		return st;
	}

	/* create */
	struct cow_cred c = caller_cred();
	struct cow_file *f;
	/* O_TRUNC stays: an existing image file opened to be truncated is
	 * copied up empty, not copied whole and then truncated (which a
	 * quota would refuse, and which costs its whole size) */
	int flags = open_flags(openflags | FSAL_O_WRITE);
	/* attributes beyond the mode are set only on a file this OPEN created
	 * (an UNCHECKED4 OPEN of an existing file ignores them, RFC 7530
	 * OPEN), so an UNCHECKED create that has some tries O_EXCL first, as
	 * FSAL_VFS does */
	bool rest = create_attrs_rest(attrs_set, S_IFREG) != 0;
	if (createmode != FSAL_UNCHECKED || rest)
		flags |= O_EXCL;
	r = cow_create(v, d->ino, name, mode_in(attrs_set, 0644), flags, &c, &f, &a);
	if (r == -EEXIST && createmode == FSAL_UNCHECKED) {
		flags &= ~O_EXCL;
		/* an NFSv3 CREATE of an existing file with size 0 (what an
		 * open with O_TRUNC sends) truncates at the open too */
		if (attrs_set && FSAL_TEST_MASK(attrs_set->valid_mask, ATTR_SIZE) && attrs_set->filesize == 0)
			flags |= O_TRUNC;
		r = cow_create(v, d->ino, name, mode_in(attrs_set, 0644), flags, &c, &f, &a);
	}
	bool created = r == 0 && (flags & O_EXCL);
	if (r == -EEXIST && createmode >= FSAL_EXCLUSIVE) {
		/* a retransmitted exclusive create: the same verifier opens it */
		r = cow_lookup(v, d->ino, name, &a);
		if (r < 0)
			return cowfsal_status(r);
		struct cowfsal_handle *h = cowfsal_handle_new(d->exp, &a);
		*new_obj = &h->obj_handle;
		*caller_perm_check = true;
		fsal_status_t st = open_by_handle(*new_obj, state, openflags, createmode, verifier, attrs_out);
		if (FSAL_IS_ERROR(st)) {
			do_release(*new_obj);
			*new_obj = NULL;
		}
		return st;
	}
	if (r < 0)
		return cowfsal_status(r);
	/* an existing file truncated by the open */
	if (!created && ((flags & O_TRUNC) || (openflags & FSAL_O_TRUNC)) && (r = kill_privs(v, a.ino, false)) < 0) {
		cow_release(f);
		cow_forget(v, a.ino, 1);
		return cowfsal_status(r);
	}
	if (S_ISREG(a.mode) && (openflags & FSAL_O_TRUNC) && a.size > 0) {
		/* UNCHECKED create of an existing file with truncation */
		struct cow_attr sz = {.size = 0}, out;
		r = cow_setattr(v, a.ino, &sz, COW_SET_SIZE, &out);
		if (r < 0) {
			cow_release(f);
			cow_forget(v, a.ino, 1);
			return cowfsal_status(r);
		}
	}
	*caller_perm_check = false;
	fsal_status_t st = finish_create(d, &a, created ? attrs_set : NULL, new_obj, attrs_out);
	struct cowfsal_handle *h = handle_of(*new_obj);
	struct cowfsal_fd *fd = state ? state_fd(state) : &h->fd;
	/* nobody else knows the new handle yet: no lock needed */
	fd->file = f;
	fd->fsal_fd.openflags = FSAL_O_NFS_FLAGS(openflags | FSAL_O_WRITE);
#if COWFSAL_API13
	if (!state)
		insert_fd_lru(&fd->fsal_fd);
#endif
	if (state)
		update_share_counters(&h->share, FSAL_O_CLOSED, openflags);
	return st;
}

static fsal_status_t do_reopen2(struct fsal_obj_handle *obj, struct state_t *state, fsal_openflags_t openflags)
{
	struct cowfsal_handle *h = handle_of(obj);
	struct cowfsal_fd *fd = state_fd(state);

#if COWFSAL_API13
	fsal_start_fd_work_no_reclaim(&fd->fsal_fd);
#endif
	fsal_openflags_t old = fd->fsal_fd.openflags;
	PTHREAD_RWLOCK_wrlock(&obj->obj_lock);
	fsal_status_t st = check_share_conflict(&h->share, openflags, false);
	if (!FSAL_IS_ERROR(st))
		update_share_counters(&h->share, old, openflags);
	PTHREAD_RWLOCK_unlock(&obj->obj_lock);

	if (!FSAL_IS_ERROR(st)) {
		st = open_fd(obj, openflags, fd);
		if (FSAL_IS_ERROR(st)) {
			PTHREAD_RWLOCK_wrlock(&obj->obj_lock);
			update_share_counters(&h->share, openflags, old);
			PTHREAD_RWLOCK_unlock(&obj->obj_lock);
		}
	}
#if COWFSAL_API13
	fd_lru_opened(fd, old == FSAL_O_CLOSED, st);
	fsal_complete_fd_work(&fd->fsal_fd);
#endif
	return st;
}

static fsal_openflags_t cowfsal_status2(struct fsal_obj_handle *obj, struct state_t *state)
{
	return state_fd(state)->fsal_fd.openflags;
}

/*
 * Find the fd for I/O on @obj and hold it for the I/O; done with
 * put_io_fd.  Without a usable state or global fd, ganesha opens a
 * temporary fd in io->temp, so io must outlive the I/O.
 */
#if COWFSAL_API13
struct io_fd {
	struct fsal_fd *fd;
	/* stateless I/O holds a share reservation of these flags (taken in
	 * fsal_start_io, released here) */
	fsal_openflags_t share;
	struct cowfsal_fd temp;
};

static fsal_status_t get_io_fd(struct fsal_obj_handle *obj, bool bypass, struct state_t *state,
			       fsal_openflags_t openflags, bool for_locks, struct io_fd *io)
{
	struct cowfsal_handle *h = handle_of(obj);
	init_fsal_fd(&io->temp.fsal_fd, FSAL_FD_TEMP, &h->exp->export);
	io->temp.file = NULL;
	io->fd = NULL;
	fsal_status_t st = fsal_start_io(&io->fd, obj, &h->fd.fsal_fd, &io->temp.fsal_fd, state, openflags, for_locks,
					 NULL, bypass, &h->share);
	io->share = !FSAL_IS_ERROR(st) && !state && openflags != FSAL_O_ANY ? openflags : 0;
	return st;
}

static void put_io_fd(struct fsal_obj_handle *obj, struct io_fd *io)
{
	if (io->fd)
		fsal_complete_io(obj, io->fd); /* closes a temporary fd */
	if (io->share)
		update_share_counters_locked(obj, &handle_of(obj)->share, io->share, FSAL_O_CLOSED);
	destroy_fsal_fd(&io->temp.fsal_fd);
}
#else
struct io_fd {
	struct fsal_fd *fd;
	bool has_lock, closefd;
	struct cowfsal_fd temp;
};

static fsal_status_t get_io_fd(struct fsal_obj_handle *obj, bool bypass, struct state_t *state,
			       fsal_openflags_t openflags, bool for_locks, struct io_fd *io)
{
	struct cowfsal_handle *h = handle_of(obj);
	bool reusing = false;
	memset(&io->temp, 0, sizeof(io->temp));
	io->temp.fsal_fd.openflags = FSAL_O_CLOSED;
	io->fd = &io->temp.fsal_fd;
	io->has_lock = io->closefd = false;
	return fsal_find_fd(&io->fd, obj, &h->fd.fsal_fd, &h->share, bypass, state, openflags, open_func, close_func,
			    &io->has_lock, &io->closefd, for_locks, &reusing);
}

static void put_io_fd(struct fsal_obj_handle *obj, struct io_fd *io)
{
	if (io->closefd)
		close_fd((struct cowfsal_fd *)io->fd);
	if (io->has_lock)
		PTHREAD_RWLOCK_unlock(&obj->obj_lock);
}
#endif

/* read2 and write2: one pass over the iovecs through the fd found. */
static void do_io(struct fsal_obj_handle *obj, bool bypass, fsal_async_cb done_cb, struct fsal_io_arg *arg,
		  void *caller_arg, bool write)
{
	struct io_fd io;
	bool stable = write && arg->fsal_stable; /* shares a union with end_of_file */
	fsal_status_t st = get_io_fd(obj, bypass, arg->state, write ? FSAL_O_WRITE : FSAL_O_READ, false, &io);
	if (FSAL_IS_ERROR(st)) {
		done_cb(obj, st, arg, caller_arg);
		return;
	}
	struct cow_file *f = ((struct cowfsal_fd *)io.fd)->file;
	uint64_t off = arg->offset;
	bool short_read = false;
	arg->io_amount = 0;
	size_t len = 0;
	for (int i = 0; write && i < arg->iov_count; i++)
		len += arg->iov[i].iov_len;
	if (len > 0) {
		int r = kill_privs(handle_of(obj)->exp->view, handle_of(obj)->ino, false);
		if (r < 0) {
			put_io_fd(obj, &io);
			done_cb(obj, obj_status(r), arg, caller_arg);
			return;
		}
	}
	for (int i = 0; i < arg->iov_count && !short_read; i++) {
		struct iovec *iov = &arg->iov[i];
		ssize_t n = write ? cow_write(f, iov->iov_base, iov->iov_len, (off_t)off)
				  : cow_read(f, iov->iov_base, iov->iov_len, (off_t)off);
		if (n < 0) {
			st = obj_status((int)n);
			break;
		}
		arg->io_amount += (size_t)n;
		off += (uint64_t)n;
		/* a short write (what fits in the quota) ends the request:
		 * the client sends the rest again and is told why */
		short_read = (size_t)n < iov->iov_len;
	}
	if (!write)
		arg->end_of_file = short_read;
	else if (FSAL_IS_ERROR(st) && st.major == ERR_FSAL_DQUOT && arg->io_amount > 0)
		st = fsalstat(ERR_FSAL_NO_ERROR, 0); /* what was written is reported */
	else if (stable && !FSAL_IS_ERROR(st)) {
		int r = cow_fsync(f, false);
		if (r < 0)
			st = obj_status(r);
	}
	put_io_fd(obj, &io);
	done_cb(obj, st, arg, caller_arg);
}

static void do_read2(struct fsal_obj_handle *obj, bool bypass, fsal_async_cb done_cb, struct fsal_io_arg *arg,
		     void *caller_arg)
{
	if (arg->info) { /* READ_PLUS */
		done_cb(obj, fsalstat(ERR_FSAL_NOTSUPP, 0), arg, caller_arg);
		return;
	}
	do_io(obj, bypass, done_cb, arg, caller_arg, false);
}

static void do_write2(struct fsal_obj_handle *obj, bool bypass, fsal_async_cb done_cb, struct fsal_io_arg *arg,
		      void *caller_arg)
{
	do_io(obj, bypass, done_cb, arg, caller_arg, true);
}

/* NFSv4.2 SEEK: the next data or hole from an offset (RFC 7862 15.11) */
static fsal_status_t do_seek2(struct fsal_obj_handle *obj, struct state_t *state, struct io_info *info)
{
	struct cowfsal_handle *h = handle_of(obj);
	off_t off = info->io_content.hole.di_offset;
	int whence;
	struct cow_attr a;
	struct io_fd io;

	if (info->io_content.what == NFS4_CONTENT_DATA)
		whence = SEEK_DATA;
	else if (info->io_content.what == NFS4_CONTENT_HOLE)
		whence = SEEK_HOLE;
	else
		return fsalstat(ERR_FSAL_UNION_NOTSUPP, 0);
	int r = cow_getattr(h->exp->view, h->ino, &a);
	if (r < 0)
		return obj_status(r);
	if (off >= a.size)
		return fsalstat(ERR_FSAL_NXIO, ENXIO);
	fsal_status_t st = get_io_fd(obj, false, state, FSAL_O_ANY, false, &io);
	if (FSAL_IS_ERROR(st))
		return st;
	off_t found = cow_lseek(((struct cowfsal_fd *)io.fd)->file, off, whence);
	put_io_fd(obj, &io);
	if (found == -ENXIO) {
		info->io_eof = TRUE;
		return ok;
	}
	if (found < 0)
		return obj_status((int)found);
	info->io_eof = found >= a.size;
	info->io_content.hole.di_offset = found;
	return ok;
}

/* NFSv4.2 ALLOCATE / DEALLOCATE */
static fsal_status_t do_fallocate(struct fsal_obj_handle *obj, struct state_t *state, uint64_t offset, uint64_t length,
				  bool allocate)
{
	struct io_fd io;
	fsal_status_t st = get_io_fd(obj, false, state, FSAL_O_WRITE, false, &io);
	if (FSAL_IS_ERROR(st))
		return st;
	int mode = allocate ? 0 : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	int r = kill_privs(handle_of(obj)->exp->view, handle_of(obj)->ino, false);
	if (r == 0)
		r = cow_fallocate(((struct cowfsal_fd *)io.fd)->file, mode, (off_t)offset, (off_t)length);
	put_io_fd(obj, &io);
	return r < 0 ? obj_status(r) : ok;
}

static fsal_status_t do_commit2(struct fsal_obj_handle *obj, off_t offset, size_t len)
{
	struct cowfsal_handle *h = handle_of(obj);
	struct cow_file *f;
	/* a read-only open makes the object's current data durable without
	 * copying anything up */
	int r = cow_open(h->exp->view, h->ino, O_RDONLY, &f);
	if (r < 0)
		return obj_status(r);
	r = cow_fsync(f, false);
	cow_release(f);
	return r < 0 ? obj_status(r) : ok;
}

static fsal_status_t do_lock_op2(struct fsal_obj_handle *obj, struct state_t *state, void *owner,
				 fsal_lock_op_t lock_op, fsal_lock_param_t *request_lock,
				 fsal_lock_param_t *conflicting_lock)
{
	/* ganesha's state layer keeps the lock table and finds conflicts;
	 * only the access mode is checked here */
	struct io_fd io;
	fsal_openflags_t openflags;
	bool bypass = false;
	if (obj->type != REGULAR_FILE)
		return fsalstat(ERR_FSAL_INVAL, 0);
	switch (lock_op) {
	case FSAL_OP_LOCKT:
		bypass = true;
		openflags = FSAL_O_ANY;
		break;
	case FSAL_OP_LOCK:
		openflags = request_lock->lock_type == FSAL_LOCK_R ? FSAL_O_READ : FSAL_O_WRITE;
		break;
	case FSAL_OP_UNLOCK:
		openflags = FSAL_O_ANY;
		break;
	default:
		return fsalstat(ERR_FSAL_NOTSUPP, 0);
	}
	if (conflicting_lock && lock_op == FSAL_OP_LOCKT)
		conflicting_lock->lock_type = FSAL_NO_LOCK;
	fsal_status_t st = get_io_fd(obj, bypass, state, openflags, true, &io);
	if (FSAL_IS_ERROR(st))
		return st;
	put_io_fd(obj, &io);
	return ok;
}

static fsal_status_t do_close2(struct fsal_obj_handle *obj, struct state_t *state)
{
	struct cowfsal_handle *h = handle_of(obj);
	struct cowfsal_fd *fd = state_fd(state);
#if COWFSAL_API13
	if (is_share_state(state))
		update_share_counters_locked(obj, &h->share, fd->fsal_fd.openflags, FSAL_O_CLOSED);
	return close_fsal_fd(obj, &fd->fsal_fd, false); /* waits for I/O on it */
#else
	PTHREAD_RWLOCK_wrlock(&obj->obj_lock);
	if (is_share_state(state))
		update_share_counters(&h->share, fd->fsal_fd.openflags, FSAL_O_CLOSED);
	bool was_open = fd->file != NULL;
	close_fd(fd);
	PTHREAD_RWLOCK_unlock(&obj->obj_lock);
	return was_open ? ok : fsalstat(ERR_FSAL_NOT_OPENED, 0);
#endif
}

static fsal_status_t do_close(struct fsal_obj_handle *obj)
{
	struct cowfsal_handle *h = handle_of(obj);
#if COWFSAL_API13
	return close_fsal_fd(obj, &h->fd.fsal_fd, false);
#else
	PTHREAD_RWLOCK_wrlock(&obj->obj_lock);
	bool was_open = h->fd.file != NULL;
	close_fd(&h->fd);
	PTHREAD_RWLOCK_unlock(&obj->obj_lock);
	return was_open ? ok : fsalstat(ERR_FSAL_NOT_OPENED, 0);
#endif
}

/* ---- extended attributes (NFSv4.2, RFC 8276: the user.* namespace) ---- */

/* "user." + the protocol's name, or -ENAMETOOLONG */
static int xattr_name(const xattrkey4 *key, char *buf, size_t size)
{
	int n = snprintf(buf, size, "user.%.*s", (int)key->utf8string_len, key->utf8string_val);
	if (n < 0 || (size_t)n >= size || memchr(key->utf8string_val, 0, key->utf8string_len))
		return -ENAMETOOLONG;
	return 0;
}

static fsal_status_t xattr_status(int r)
{
	if (r == -ENODATA)
		return fsalstat(ERR_FSAL_NOXATTR, 0);
	if (r == -ERANGE || r == -E2BIG)
		return fsalstat(ERR_FSAL_XATTR2BIG, 0);
	return obj_status(r);
}

static fsal_status_t do_getxattrs(struct fsal_obj_handle *obj, xattrkey4 *key, xattrvalue4 *value)
{
	char name[COW_XATTR_NAME_MAX + 1];
	int r = xattr_name(key, name, sizeof(name));
	if (r == 0)
		r = cow_getxattr(view_of(obj), handle_of(obj)->ino, name, value->utf8string_val, value->utf8string_len);
	if (r < 0)
		return xattr_status(r);
	value->utf8string_len = (u_int)r;
	return ok;
}

static fsal_status_t do_setxattrs(struct fsal_obj_handle *obj, setxattr_option4 option, xattrkey4 *key,
				  xattrvalue4 *value)
{
	char name[COW_XATTR_NAME_MAX + 1];
	int flags = option == SETXATTR4_CREATE ? XATTR_CREATE : option == SETXATTR4_REPLACE ? XATTR_REPLACE : 0;
	int r = xattr_name(key, name, sizeof(name));
	if (r == 0)
		r = cow_setxattr(view_of(obj), handle_of(obj)->ino, name, value->utf8string_val, value->utf8string_len,
				 flags);
	return r < 0 ? xattr_status(r) : ok;
}

static fsal_status_t do_removexattrs(struct fsal_obj_handle *obj, xattrkey4 *key)
{
	char name[COW_XATTR_NAME_MAX + 1];
	int r = xattr_name(key, name, sizeof(name));
	if (r == 0)
		r = cow_removexattr(view_of(obj), handle_of(obj)->ino, name);
	return r < 0 ? xattr_status(r) : ok;
}

static fsal_status_t do_listxattrs(struct fsal_obj_handle *obj, count4 maxcount, nfs_cookie4 *cookie, bool_t *eof,
				   xattrlist4 *names)
{
	struct cowfsal_handle *h = handle_of(obj);
	int n = cow_listxattr(h->exp->view, h->ino, NULL, 0);
	if (n < 0)
		return obj_status(n);
	char *buf = gsh_malloc((size_t)n + 1);
	n = cow_listxattr(h->exp->view, h->ino, buf, (size_t)n);
	fsal_status_t st = n < 0 ? obj_status(n) : fsal_listxattr_helper(buf, (size_t)n, maxcount, cookie, eof, names);
	gsh_free(buf);
	return st;
}

/* ---- handles ---- */

static fsal_status_t cowfsal_handle_to_wire(const struct fsal_obj_handle *obj, fsal_digesttype_t output_type,
					    struct gsh_buffdesc *fh_desc)
{
	const struct cowfsal_handle *h = container_of(obj, const struct cowfsal_handle, obj_handle);
	switch (output_type) {
	case FSAL_DIGEST_NFSV3:
	case FSAL_DIGEST_NFSV4:
		if (fh_desc->len < h->exp->key_len)
			return fsalstat(ERR_FSAL_TOOSMALL, 0);
		memcpy(fh_desc->addr, h->key, h->exp->key_len);
		fh_desc->len = h->exp->key_len;
		return ok;
	default:
		return fsalstat(ERR_FSAL_SERVERFAULT, 0);
	}
}

static void cowfsal_handle_to_key(struct fsal_obj_handle *obj, struct gsh_buffdesc *fh_desc)
{
	struct cowfsal_handle *h = handle_of(obj);
	fh_desc->addr = h->key;
	fh_desc->len = h->exp->key_len;
}

/* ---- the operations, each under the export's reset lock ----
 * A reset (control.c) replaces the view's layer under the write lock:
 * cow_view_reset wants no other call on the view meanwhile. */

#define EXP_OF(obj) (handle_of(obj)->exp)
#define LOCKED(obj, call)                                                                                              \
	do {                                                                                                           \
		struct cowfsal_export *exp_ = EXP_OF(obj);                                                             \
		if (op_ctx && op_ctx->client) /* a client's call, not ganesha's own */                                 \
			atomic_store_explicit(&exp_->last_op, (int64_t)time(NULL), memory_order_relaxed);              \
		pthread_rwlock_rdlock(&exp_->reset_lock);                                                              \
		fsal_status_t st_ = (call);                                                                            \
		pthread_rwlock_unlock(&exp_->reset_lock);                                                              \
		return st_;                                                                                            \
	} while (0)
#define LOCKED_VOID(obj, call)                                                                                         \
	do {                                                                                                           \
		struct cowfsal_export *exp_ = EXP_OF(obj);                                                             \
		pthread_rwlock_rdlock(&exp_->reset_lock);                                                              \
		call;                                                                                                  \
		pthread_rwlock_unlock(&exp_->reset_lock);                                                              \
	} while (0)

static void cowfsal_release(struct fsal_obj_handle *obj)
{
	/* the handle is freed inside: keep the export */
	struct cowfsal_export *exp = EXP_OF(obj);
	pthread_rwlock_rdlock(&exp->reset_lock);
	do_release(obj);
	pthread_rwlock_unlock(&exp->reset_lock);
}

static fsal_status_t cowfsal_lookup(struct fsal_obj_handle *dir, const char *name, struct fsal_obj_handle **handle,
				    struct fsal_attrlist *attrs_out)
{
	LOCKED(dir, do_lookup(dir, name, handle, attrs_out));
}

static fsal_status_t cowfsal_readdir(struct fsal_obj_handle *dir, fsal_cookie_t *whence, void *dir_state,
				     fsal_readdir_cb cb, attrmask_t attrmask, bool *eof)
{
	LOCKED(dir, do_readdir(dir, whence, dir_state, cb, attrmask, eof));
}

static fsal_status_t cowfsal_mkdir(struct fsal_obj_handle *dir, const char *name, struct fsal_attrlist *attrs_in,
				   struct fsal_obj_handle **new_obj, struct fsal_attrlist *attrs_out COWFSAL_DIR_ATTRS)
{
	LOCKED(dir, do_mkdir(dir, name, attrs_in, new_obj, attrs_out));
}

static fsal_status_t cowfsal_mknode(struct fsal_obj_handle *dir, const char *name, object_file_type_t nodetype,
				    struct fsal_attrlist *attrs_in, struct fsal_obj_handle **new_obj,
				    struct fsal_attrlist *attrs_out COWFSAL_DIR_ATTRS)
{
	LOCKED(dir, do_mknode(dir, name, nodetype, attrs_in, new_obj, attrs_out));
}

static fsal_status_t cowfsal_symlink(struct fsal_obj_handle *dir, const char *name, const char *target,
				     struct fsal_attrlist *attrs_in, struct fsal_obj_handle **new_obj,
				     struct fsal_attrlist *attrs_out COWFSAL_DIR_ATTRS)
{
	LOCKED(dir, do_symlink(dir, name, target, attrs_in, new_obj, attrs_out));
}

static fsal_status_t cowfsal_readlink(struct fsal_obj_handle *obj, struct gsh_buffdesc *link_content, bool refresh)
{
	LOCKED(obj, do_readlink(obj, link_content, refresh));
}

static fsal_status_t cowfsal_getattrs(struct fsal_obj_handle *obj, struct fsal_attrlist *attrs_out)
{
	LOCKED(obj, do_getattrs(obj, attrs_out));
}

static fsal_status_t cowfsal_setattr2(struct fsal_obj_handle *obj, bool bypass, struct state_t *state,
				      struct fsal_attrlist *attrs)
{
	LOCKED(obj, do_setattr2(obj, bypass, state, attrs));
}

static fsal_status_t cowfsal_link(struct fsal_obj_handle *obj, struct fsal_obj_handle *destdir,
				  const char *name COWFSAL_DIR_ATTRS)
{
	LOCKED(obj, do_link(obj, destdir, name));
}

static fsal_status_t cowfsal_rename(struct fsal_obj_handle *obj, struct fsal_obj_handle *olddir, const char *old_name,
				    struct fsal_obj_handle *newdir, const char *new_name COWFSAL_DIR2_ATTRS)
{
	LOCKED(olddir, do_rename(obj, olddir, old_name, newdir, new_name));
}

static fsal_status_t cowfsal_unlink(struct fsal_obj_handle *dir, struct fsal_obj_handle *obj,
				    const char *name COWFSAL_DIR_ATTRS)
{
	LOCKED(dir, do_unlink(dir, obj, name));
}

static fsal_status_t cowfsal_open2(struct fsal_obj_handle *obj, struct state_t *state, fsal_openflags_t openflags,
				   enum fsal_create_mode createmode, const char *name, struct fsal_attrlist *attrs_set,
				   fsal_verifier_t verifier, struct fsal_obj_handle **new_obj,
				   struct fsal_attrlist *attrs_out, bool *caller_perm_check COWFSAL_DIR_ATTRS)
{
	LOCKED(obj, do_open2(obj, state, openflags, createmode, name, attrs_set, verifier, new_obj, attrs_out,
			     caller_perm_check));
}

static fsal_status_t cowfsal_reopen2(struct fsal_obj_handle *obj, struct state_t *state, fsal_openflags_t openflags)
{
	LOCKED(obj, do_reopen2(obj, state, openflags));
}

static void cowfsal_read2(struct fsal_obj_handle *obj, bool bypass, fsal_async_cb done_cb, struct fsal_io_arg *arg,
			  void *caller_arg)
{
	LOCKED_VOID(obj, do_read2(obj, bypass, done_cb, arg, caller_arg));
}

static void cowfsal_write2(struct fsal_obj_handle *obj, bool bypass, fsal_async_cb done_cb, struct fsal_io_arg *arg,
			   void *caller_arg)
{
	LOCKED_VOID(obj, do_write2(obj, bypass, done_cb, arg, caller_arg));
}

static fsal_status_t cowfsal_seek2(struct fsal_obj_handle *obj, struct state_t *state, struct io_info *info)
{
	LOCKED(obj, do_seek2(obj, state, info));
}

static fsal_status_t cowfsal_fallocate(struct fsal_obj_handle *obj, struct state_t *state, uint64_t offset,
				       uint64_t length, bool allocate)
{
	LOCKED(obj, do_fallocate(obj, state, offset, length, allocate));
}

static fsal_status_t cowfsal_commit2(struct fsal_obj_handle *obj, off_t offset, size_t len)
{
	LOCKED(obj, do_commit2(obj, offset, len));
}

static fsal_status_t cowfsal_lock_op2(struct fsal_obj_handle *obj, struct state_t *state, void *owner,
				      fsal_lock_op_t lock_op, fsal_lock_param_t *request_lock,
				      fsal_lock_param_t *conflicting_lock)
{
	LOCKED(obj, do_lock_op2(obj, state, owner, lock_op, request_lock, conflicting_lock));
}

static fsal_status_t cowfsal_close2(struct fsal_obj_handle *obj, struct state_t *state)
{
	LOCKED(obj, do_close2(obj, state));
}

static fsal_status_t cowfsal_close(struct fsal_obj_handle *obj)
{
	LOCKED(obj, do_close(obj));
}

static fsal_status_t cowfsal_getxattrs(struct fsal_obj_handle *obj, xattrkey4 *key, xattrvalue4 *value)
{
	LOCKED(obj, do_getxattrs(obj, key, value));
}

static fsal_status_t cowfsal_setxattrs(struct fsal_obj_handle *obj, setxattr_option4 option, xattrkey4 *key,
				       xattrvalue4 *value)
{
	LOCKED(obj, do_setxattrs(obj, option, key, value));
}

static fsal_status_t cowfsal_removexattrs(struct fsal_obj_handle *obj, xattrkey4 *key)
{
	LOCKED(obj, do_removexattrs(obj, key));
}

static fsal_status_t cowfsal_listxattrs(struct fsal_obj_handle *obj, count4 maxcount, nfs_cookie4 *cookie, bool_t *eof,
					xattrlist4 *names)
{
	LOCKED(obj, do_listxattrs(obj, maxcount, cookie, eof, names));
}

void cowfsal_handle_ops_init(struct fsal_obj_ops *ops)
{
	fsal_default_obj_ops_init(ops);
	ops->release = cowfsal_release;
	ops->merge = cowfsal_merge;
	ops->lookup = cowfsal_lookup;
	ops->readdir = cowfsal_readdir;
	ops->mkdir = cowfsal_mkdir;
	ops->mknode = cowfsal_mknode;
	ops->symlink = cowfsal_symlink;
	ops->readlink = cowfsal_readlink;
	ops->getattrs = cowfsal_getattrs;
	ops->setattr2 = cowfsal_setattr2;
	ops->link = cowfsal_link;
	ops->rename = cowfsal_rename;
	ops->unlink = cowfsal_unlink;
	ops->open2 = cowfsal_open2;
	ops->reopen2 = cowfsal_reopen2;
#if COWFSAL_API13
	ops->reopen_func = open_func;
	ops->close_func = close_func;
#endif
	ops->status2 = cowfsal_status2;
	ops->read2 = cowfsal_read2;
	ops->write2 = cowfsal_write2;
	ops->commit2 = cowfsal_commit2;
	ops->seek2 = cowfsal_seek2;
	ops->fallocate = cowfsal_fallocate;
	ops->lock_op2 = cowfsal_lock_op2;
	ops->close2 = cowfsal_close2;
	ops->close = cowfsal_close;
	ops->handle_to_wire = cowfsal_handle_to_wire;
	ops->handle_to_key = cowfsal_handle_to_key;
	ops->getxattrs = cowfsal_getxattrs;
	ops->setxattrs = cowfsal_setxattrs;
	ops->removexattrs = cowfsal_removexattrs;
	ops->listxattrs = cowfsal_listxattrs;
}

/* ---- cache invalidation (reset) ---- */

void cowfsal_invalidate_all(struct cowfsal_export *exp)
{
	const struct fsal_up_vector *up = exp->export.up_ops;
	struct glist_head *g;
	size_t n = 0, i = 0;
	uint8_t(*keys)[COWFSAL_HANDLE_LEN] = NULL;

	/* copy the keys: the up-calls may release handles of this export */
	pthread_mutex_lock(&exp->handles_lock);
	glist_for_each(g, &exp->handles) n++;
	if (n)
		keys = gsh_malloc(n * COWFSAL_HANDLE_LEN);
	glist_for_each(g, &exp->handles)
	{
		struct cowfsal_handle *h = glist_entry(g, struct cowfsal_handle, entry);
		memcpy(keys[i++], h->key, COWFSAL_HANDLE_LEN);
	}
	pthread_mutex_unlock(&exp->handles_lock);
	for (i = 0; i < n; i++) {
		struct gsh_buffdesc key = {.addr = keys[i], .len = exp->key_len};
		fsal_status_t st = up->invalidate_close(up, &key, FSAL_UP_INVALIDATE_CACHE);
		if (FSAL_IS_ERROR(st) && st.major != ERR_FSAL_NOENT && st.major != ERR_FSAL_STALE)
			LogMajor(COMPONENT_FSAL_UP, "cowroot: invalidating an object of '%s' failed: %s", exp->client,
				 msg_fsal_err(st.major));
	}
	gsh_free(keys);
}
