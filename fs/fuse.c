/* SPDX-License-Identifier: MIT */
/*
 * FUSE low-level front end.  Each op unpacks its request, calls the core
 * and replies; no layer logic lives here.  The FUSE inode number is the
 * core's object id (the root is mapped to FUSE_ROOT_ID), and because this
 * daemon is the only writer of its view, the kernel may cache entries and
 * attributes for a long time.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cowfuse.h"

#define CACHE_TIMEOUT 86400.0

static struct cow_view *view_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static uint64_t to_core(fuse_req_t req, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? cow_view_root(view_of(req)) : ino;
}

static fuse_ino_t to_fuse(struct cow_view *v, uint64_t ino)
{
	return ino == cow_view_root(v) ? FUSE_ROOT_ID : ino;
}


static void fill_entry(struct cow_view *v, const struct cow_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = to_fuse(v, a->ino);
	e->generation = 1;
	e->attr_timeout = CACHE_TIMEOUT;
	e->entry_timeout = CACHE_TIMEOUT;
	cow_attr_to_stat(a, &e->attr);
}

static void reply_entry(fuse_req_t req, int r, const struct cow_attr *a)
{
	struct fuse_entry_param e;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fill_entry(view_of(req), a, &e);
	if (fuse_reply_entry(req, &e) != 0) /* the kernel did not take the reference */
		cow_forget(view_of(req), a->ino, 1);
}

static struct cow_cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	return (struct cow_cred){.uid = c->uid, .gid = c->gid, .umask = c->umask};
}

static void cowfuse_init(void *userdata, struct fuse_conn_info *conn)
{
	struct cow_view *v = userdata;
	unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE | FUSE_CAP_READDIRPLUS | FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_ASYNC_DIO | FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
	if (!cow_view_readonly(v))
		want |= FUSE_CAP_WRITEBACK_CACHE;
	conn->want |= want & conn->capable;
	/* with a writeback cache the kernel owns mtime and sends it */
	cow_view_set_caller_times(v, (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0);
	/* readdirplus always: a listing is usually followed by stats */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_readahead = 1 << 20;
}

static void cowfuse_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cow_attr a;
	int r = cow_lookup(view_of(req), to_core(req, parent), name, &a);
	if (r == -ENOENT) {
		/* negative entry, cached like positive ones */
		struct fuse_entry_param e = {.ino = 0, .entry_timeout = CACHE_TIMEOUT};
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, r, &a);
}

static void cowfuse_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	cow_forget(view_of(req), to_core(req, ino), nlookup);
	fuse_reply_none(req);
}

static void cowfuse_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		cow_forget(view_of(req), to_core(req, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void cowfuse_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct cow_attr a;
	struct stat st;
	int r = cow_getattr(view_of(req), to_core(req, ino), &a);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	cow_attr_to_stat(&a, &st);
	fuse_reply_attr(req, &st, CACHE_TIMEOUT);
}

static void cowfuse_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	(void)fi;
	struct cow_attr a = {0}, out;
	struct stat st;
	int set = 0;
	if (to_set & FUSE_SET_ATTR_MODE) {
		set |= COW_SET_MODE;
		a.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		set |= COW_SET_UID;
		a.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		set |= COW_SET_GID;
		a.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		set |= COW_SET_SIZE;
		a.size = attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		set |= COW_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME) {
		set |= COW_SET_ATIME;
		a.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		set |= COW_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME) {
		set |= COW_SET_MTIME;
		a.mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		set |= COW_SET_CTIME;
		a.ctime = attr->st_ctim;
	}
	int r = cow_setattr(view_of(req), to_core(req, ino), &a, set, &out);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	cow_attr_to_stat(&out, &st);
	fuse_reply_attr(req, &st, CACHE_TIMEOUT);
}

static void cowfuse_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[COW_SYMLINK_MAX + 1];
	int r = cow_readlink(view_of(req), to_core(req, ino), buf, sizeof(buf) - 1);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	buf[r] = 0;
	fuse_reply_readlink(req, buf);
}

static void cowfuse_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct cow_attr a;
	struct cow_cred c = cred_of(req);
	reply_entry(req, cow_mknod(view_of(req), to_core(req, parent), name, mode, rdev, &c, &a), &a);
}

static void cowfuse_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct cow_attr a;
	struct cow_cred c = cred_of(req);
	reply_entry(req, cow_mkdir(view_of(req), to_core(req, parent), name, mode, &c, &a), &a);
}

static void cowfuse_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct cow_attr a;
	struct cow_cred c = cred_of(req);
	reply_entry(req, cow_symlink(view_of(req), to_core(req, parent), name, link, &c, &a), &a);
}

static void cowfuse_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct cow_attr a;
	reply_entry(req, cow_link(view_of(req), to_core(req, ino), to_core(req, newparent), newname, &a), &a);
}

static void cowfuse_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -cow_unlink(view_of(req), to_core(req, parent), name));
}

static void cowfuse_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -cow_rmdir(view_of(req), to_core(req, parent), name));
}

static void cowfuse_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
			   const char *newname, unsigned int flags)
{
	fuse_reply_err(req,
		       -cow_rename(view_of(req), to_core(req, parent), name, to_core(req, newparent), newname, flags));
}

static void set_file(struct fuse_file_info *fi, struct cow_file *f)
{
	fi->fh = (uintptr_t)f;
	/* only this daemon changes the view: cached pages stay valid */
	fi->keep_cache = 1;
}

static struct cow_file *file_of(struct fuse_file_info *fi)
{
	return (struct cow_file *)(uintptr_t)fi->fh;
}

static void cowfuse_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cow_file *f;
	/* with the writeback cache the kernel may read through any open */
	int flags = fi->flags;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	int r = cow_open(view_of(req), to_core(req, ino), flags, &f);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	set_file(fi, f);
	if (fuse_reply_open(req, fi) != 0)
		cow_release(f);
}

static void cowfuse_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct cow_file *f;
	struct cow_attr a;
	struct cow_cred c = cred_of(req);
	struct fuse_entry_param e;
	int r = cow_create(view_of(req), to_core(req, parent), name, mode, fi->flags, &c, &f, &a);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	set_file(fi, f);
	fill_entry(view_of(req), &a, &e);
	if (fuse_reply_create(req, &e, fi) != 0) {
		cow_release(f);
		cow_forget(view_of(req), a.ino, 1);
	}
}

static void cowfuse_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	int fd;
	void *token;
	int r = cow_read_fd(file_of(fi), &fd, &token);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (fd < 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	cow_read_done(token);
}

static void cowfuse_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	(void)ino;
	ssize_t n = cow_write(file_of(fi), buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void cowfuse_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -cow_flush(file_of(fi)));
}

static void cowfuse_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	cow_release(file_of(fi));
	fuse_reply_err(req, 0);
}

static void cowfuse_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -cow_fsync(file_of(fi), datasync != 0));
}

static void cowfuse_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -cow_fallocate(file_of(fi), mode, off, len));
}

/* No lseek op: the kernel does not write back its cache before
 * FUSE_LSEEK, so SEEK_DATA/SEEK_HOLE answered here would miss cached
 * writes; without the op the kernel answers from i_size. */

static void cowfuse_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cow_dirh *d;
	int r = cow_opendir(view_of(req), to_core(req, ino), &d);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)d;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0)
		cow_releasedir(d);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
};

static int add_dirent(void *arg, const char *name, const struct cow_attr *a, off_t next)
{
	struct dirbuf *b = arg;
	struct cow_view *v = view_of(b->req);
	size_t n;
	if (b->plus) {
		struct fuse_entry_param e;
		fill_entry(v, a, &e);
		if (!strcmp(name, ".") || !strcmp(name, "..")) {
			e.ino = 0; /* no entry, no reference: just the name */
			e.attr.st_ino = a->ino;
		}
		n = fuse_add_direntry_plus(b->req, b->buf + b->used, b->size - b->used, name, &e, next);
	} else {
		struct stat st = {.st_ino = a->ino, .st_mode = a->mode};
		n = fuse_add_direntry(b->req, b->buf + b->used, b->size - b->used, name, &st, next);
	}
	if (n > b->size - b->used)
		return 1; /* full: the entry was not added */
	b->used += n;
	return 0;
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct dirbuf b = {.req = req, .size = size, .plus = plus};
	b.buf = malloc(size);
	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int r = cow_readdir((struct cow_dirh *)(uintptr_t)fi->fh, off, plus, add_dirent, &b);
	if (r < 0 && b.used == 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, b.buf, b.used);
	free(b.buf);
}

static void cowfuse_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, false);
}

static void cowfuse_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, true);
}

static void cowfuse_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	cow_releasedir((struct cow_dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void cowfuse_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -cow_view_sync(view_of(req)));
}

static void cowfuse_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv;
	int r = cow_statfs(view_of(req), &sv);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_statfs(req, &sv);
}

static void cowfuse_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			     int flags)
{
	fuse_reply_err(req, -cow_setxattr(view_of(req), to_core(req, ino), name, value, size, flags));
}

static void cowfuse_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = NULL;
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int r = cow_getxattr(view_of(req), to_core(req, ino), name, buf, size);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
	free(buf);
}

static void cowfuse_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int r = cow_listxattr(view_of(req), to_core(req, ino), buf, size);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
	free(buf);
}

static void cowfuse_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -cow_removexattr(view_of(req), to_core(req, ino), name));
}

static const struct fuse_lowlevel_ops cowfuse_ops = {
    .init = cowfuse_init,
    .lookup = cowfuse_lookup,
    .forget = cowfuse_forget,
    .forget_multi = cowfuse_forget_multi,
    .getattr = cowfuse_getattr,
    .setattr = cowfuse_setattr,
    .readlink = cowfuse_readlink,
    .mknod = cowfuse_mknod,
    .mkdir = cowfuse_mkdir,
    .symlink = cowfuse_symlink,
    .link = cowfuse_link,
    .unlink = cowfuse_unlink,
    .rmdir = cowfuse_rmdir,
    .rename = cowfuse_rename,
    .open = cowfuse_open,
    .create = cowfuse_create,
    .read = cowfuse_read,
    .write = cowfuse_write,
    .flush = cowfuse_flush,
    .release = cowfuse_release,
    .fsync = cowfuse_fsync,
    .fallocate = cowfuse_fallocate,
    .opendir = cowfuse_opendir,
    .readdir = cowfuse_readdir,
    .readdirplus = cowfuse_readdirplus,
    .releasedir = cowfuse_releasedir,
    .fsyncdir = cowfuse_fsyncdir,
    .statfs = cowfuse_statfs,
    .setxattr = cowfuse_setxattr,
    .getxattr = cowfuse_getxattr,
    .listxattr = cowfuse_listxattr,
    .removexattr = cowfuse_removexattr,
};

static void report(int fd, const char *msg)
{
	if (fd < 0) {
		if (*msg)
			fprintf(stderr, "cowroot: %s\n", msg);
		return;
	}
	size_t n = strlen(msg);
	if (write(fd, msg, n) != (ssize_t)n) {
		/* the parent is gone; nothing else to tell */
	}
	close(fd);
}

int cowfuse_main(struct cow_view *v, const struct cowfuse_opts *o)
{
	char opts[1024], msg[512];
	int r;
	snprintf(opts, sizeof(opts), "fsname=%s,subtype=cowroot,default_permissions,allow_other%s",
		 o->fsname ? o->fsname : "cowroot", cow_view_readonly(v) ? ",ro" : "");
	char *argv[8];
	int argc = 0;
	argv[argc++] = "cowroot";
	argv[argc++] = "-o";
	argv[argc++] = opts;
	if (o->debug)
		argv[argc++] = "-d";
	if (o->options) {
		argv[argc++] = "-o";
		argv[argc++] = (char *)o->options;
	}
	argv[argc] = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_session *se = fuse_session_new(&args, &cowfuse_ops, sizeof(cowfuse_ops), v);
	if (!se) {
		snprintf(msg, sizeof(msg), "cannot start the FUSE session (bad -o options?)");
		report(o->ready_fd, msg);
		return -EINVAL;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		r = -EIO;
		snprintf(msg, sizeof(msg), "cannot install signal handlers");
		goto out_session;
	}
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		r = -EIO;
		snprintf(msg, sizeof(msg), "cannot mount on '%s' (see the message above, or is /dev/fuse missing?)",
			 o->mountpoint);
		goto out_signals;
	}
	report(o->ready_fd, "");
	if (o->ready_fd >= 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
		if (chdir("/") != 0) {
			/* not fatal */
		}
	}
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	r = r < 0 ? r : 0;
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return r;
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	report(o->ready_fd, msg);
	return r;
}
