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
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cowfuse.h"

#define CACHE_TIMEOUT 86400.0

/* The session's userdata. */
struct cowfuse {
	struct cow_view *v;
	/* set at init: the kernel opens directories itself and caches their
	 * listings; readdir then comes without a handle (fh 0) */
	bool no_opendir;
	/* set at init: the kernel opens files itself; reads and writes of
	 * files not made by create come without a handle (fh 0) */
	bool no_open;
	/* set at init (libfuse 3.16 and later): the daemon takes setuid,
	 * setgid and the file capability away at writes, truncates and chowns
	 * (FUSE_CAP_HANDLE_KILLPRIV_V2), see kill_privs */
	bool killpriv;
	/* /proc is this daemon's pid namespace: a caller's tid names it there */
	bool proc_ours;
	struct fuse_session *se;
};

static struct cowfuse *cf_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct cow_view *view_of(fuse_req_t req)
{
	return cf_of(req)->v;
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

/* libfuse splices a request from the kernel only into a pipe that holds
 * the largest request, max_write plus a page of headers, and pipes grow
 * to /proc/sys/fs/pipe-max-size at most (1 MiB by default).  Writes of
 * 1 MiB made that 1 MiB + 4 KiB: libfuse fell back to read() and copied
 * every WRITE's data through memory.  A page less per WRITE lets them be
 * spliced into the data file (cowfuse_write_buf): 512 MiB written and
 * fsynced in 0.55 s instead of 1.2-1.4 s, half the daemon's CPU. */
static unsigned splice_max_write(void)
{
	unsigned max = 1u << 20;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
	if (f) {
		unsigned pipe_max;
		if (fscanf(f, "%u", &pipe_max) == 1 && pipe_max < max && pipe_max >= (1u << 17))
			max = pipe_max;
		fclose(f);
	}
	return max - 4096;
}

static void cowfuse_init(void *userdata, struct fuse_conn_info *conn)
{
	struct cowfuse *cf = userdata;
	struct cow_view *v = cf->v;
	unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE | FUSE_CAP_READDIRPLUS | FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_ASYNC_DIO | FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
	conn->want |= want & conn->capable;
	/* No writeback cache: writes go to the daemon as they are made (in
	 * up to 1 MiB requests).  Measured with bench/: the kernel throttles
	 * dirty pages of a FUSE mount hard, and it adds a SETATTR (times) at
	 * every close and unlink; without it creating small files is 3x
	 * faster and unpacking packages 6x. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* with a writeback cache the kernel owns mtime and sends it */
	cow_view_set_caller_times(v, (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0);
	/* readdirplus always: a listing is usually followed by stats */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_readahead = 1 << 20;
	conn->max_write = splice_max_write();
	/* No OPENDIR/RELEASEDIR round trips: opendir answers ENOSYS, and
	 * the kernel keeps listings cached (readdir offsets are stable
	 * cookies, see cow_readdir_ino). */
	cf->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
	/* Likewise no OPEN/RELEASE for files: reading a file costs no round
	 * trip besides its READs.  O_TRUNC then comes as a SETATTR (an open
	 * that truncates itself would never be seen), and copy-up happens at
	 * the first write rather than at an open for writing. */
	cf->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
	if (cf->no_open)
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	cow_view_set_refs_are_opens(v, cf->no_open);
	/* a local mount: keep what the kernel lets go of (drop_caches, memory
	 * pressure) up to about 100 MiB, the objects of a large image */
	cow_view_set_inode_cache(v, 256 * 1024);
	/* Symlink targets cached in the kernel (/lib, /bin... are symlinks
	 * in a Debian root: every path through them asked for READLINK). */
	conn->want |= FUSE_CAP_CACHE_SYMLINKS & conn->capable;
	/* This daemon is the only writer of the view, and the kernel learns of
	 * every change it makes itself: no need to check mtime before every
	 * cached read and readdir (a GETATTR per directory of a warm walk). */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* The kernel's VFS takes setuid, setgid and capabilities away (v1
	 * would leave it to the daemon whoever writes: never asked for)... */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
#ifdef FUSE_CAP_HANDLE_KILLPRIV_V2
	/* ...unless the daemon does it as the VFS would (kill_privs).  Then
	 * the kernel remembers that a file has nothing to take (S_NOSEC)
	 * instead of asking for security.capability before every write: one
	 * round trip less per write (an append to a log file is then one
	 * WRITE), and a chown needs no GETATTR first. */
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV_V2) {
		conn->want |= FUSE_CAP_HANDLE_KILLPRIV_V2;
		cf->killpriv = true;
	}
#endif
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

/* What the caller may keep of file @a's setuid and setgid bits at a write,
 * truncate or chown (COW_KEEP_*): CAP_FSETID keeps both, membership of the
 * file's group a setgid bit without group execute.  The kernel knows and
 * says so in the WRITE, but libfuse does not pass it on: read it from the
 * caller's thread, whose tid the request carries (the caller waits for
 * the reply, so the tid is still its own).  Without a /proc of this pid
 * namespace, root is taken to have CAP_FSETID, and only the caller's
 * primary group counts. */
static unsigned caller_keeps(fuse_req_t req, const struct cow_attr *a)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	bool fsetid = c->uid == 0, in_group = c->gid == a->gid;
	char path[64], line[1024];
	FILE *f = NULL;
	if (cf_of(req)->proc_ours && c->pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
		f = fopen(path, "re");
	}
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long eff;
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			fsetid = (eff >> CAP_FSETID) & 1;
		} else if (!strncmp(line, "Groups:", 7)) {
			/* a line cut short by the buffer may miss groups: the
			 * bit then goes, as it would for a caller outside */
			char *p = line + 7, *end;
			for (unsigned long g; (g = strtoul(p, &end, 10)), end != p; p = end)
				in_group = in_group || g == a->gid;
		}
	}
	if (f)
		fclose(f);
	return (fsetid ? COW_KEEP_SETID : 0) | (fsetid || in_group ? COW_KEEP_SGID_NOEXEC : 0);
}

static bool has_setid(const struct cow_attr *a)
{
	return !S_ISDIR(a->mode) && (a->mode & (S_ISUID | S_ISGID));
}

/* What the VFS's file_remove_privs does at a write or fallocate
 * (cow_kill_privs), and the kernel's cached mode then told to refresh.
 * With FUSE_CAP_HANDLE_KILLPRIV_V2 the daemon must; without it the kernel
 * has done it already, but by the rule of its FUSE code, which keeps a
 * setgid bit without group execute that Linux's own since 6.2 takes from
 * a writer outside the file's group: the daemon applies that one. */
static int kill_privs_at_write(fuse_req_t req, fuse_ino_t ino)
{
	struct cowfuse *cf = cf_of(req);
	struct cow_attr a;
	int r = cow_getattr(cf->v, to_core(req, ino), &a);
	if (r < 0)
		return r;
	r = cow_kill_privs(cf->v, a.ino, has_setid(&a) ? caller_keeps(req, &a) : COW_KEEP_SETID);
	if (r > 0)
		fuse_lowlevel_notify_inval_inode(cf->se, ino, -1, 0);
	return r < 0 ? r : 0;
}

/* With KILLPRIV_V2 the kernel leaves a chown's setuid and setgid to the
 * daemon, and a truncate's when the caller lacks CAP_FSETID (it says so
 * with FATTR_KILL_SUIDGID, which libfuse passes as KILL_SUID).  Any other
 * truncate is judged here as a write is (see kill_privs_at_write).  An
 * explicit mode is what the caller asked for.  Done before the change: a
 * chown's rule is about the group the file had. */
static int kill_privs_at_setattr(fuse_req_t req, uint64_t ino, int to_set)
{
	struct cowfuse *cf = cf_of(req);
	struct cow_attr a;
	bool told = cf->killpriv && (to_set & FUSE_SET_ATTR_KILL_SUID);
	if ((to_set & FUSE_SET_ATTR_MODE) || !(told || (to_set & FUSE_SET_ATTR_SIZE)))
		return 0;
	int r = cow_getattr(cf->v, ino, &a);
	if (r < 0)
		return r;
	unsigned keep = COW_KEEP_SETID;
	if (has_setid(&a))
		keep = caller_keeps(req, &a) & (told ? COW_KEEP_SGID_NOEXEC : ~0u);
	r = cow_kill_privs(cf->v, ino, keep);
	return r < 0 ? r : 0;
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
	int r = kill_privs_at_setattr(req, to_core(req, ino), to_set);
	if (r == 0)
		r = cow_setattr(view_of(req), to_core(req, ino), &a, set, &out);
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

/* The file of a request: its handle, or without one (the kernel opened
 * the file itself, see no_open) a file opened for this request only;
 * put_file() ends it. */
static int get_file(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, bool write, struct cow_file **ret)
{
	if (fi->fh) {
		*ret = file_of(fi);
		return 0;
	}
	return cow_open(view_of(req), to_core(req, ino), write ? O_RDWR : O_RDONLY, ret);
}

static void put_file(struct fuse_file_info *fi, struct cow_file *f)
{
	if (!fi->fh)
		cow_release(f);
}

static void cowfuse_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cow_file *f;
	if (cf_of(req)->no_open) {
		fuse_reply_err(req, ENOSYS); /* "opened": no handle, no release */
		return;
	}
	/* the kernel may read through any handle (page cache fills) */
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
	if (cf_of(req)->no_open) {
		/* MKNOD and no open: one round trip, where CREATE needs a
		 * RELEASE too (the kernel asks no more after this answer) */
		fuse_reply_err(req, ENOSYS);
		return;
	}
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

/* The request's file and its data fd, to read (-1: no data yet) or to
 * write (copied up first); give them back with cow_read_done or
 * cow_write_done, then put_file.  On error nothing is held. */
static int get_data_fd(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, bool write, struct cow_file **ret_f,
		       int *ret_fd, void **ret_token)
{
	int r = get_file(req, ino, fi, write, ret_f);
	if (r < 0)
		return r;
	r = write ? cow_write_fd(*ret_f, ret_fd, ret_token) : cow_read_fd(*ret_f, ret_fd, ret_token);
	if (r < 0)
		put_file(fi, *ret_f);
	return r;
}

/* @size bytes of @fd from @off, for fuse_reply_data and fuse_buf_copy. */
static struct fuse_bufvec fd_bufvec(size_t size, int fd, off_t off)
{
	struct fuse_bufvec b = FUSE_BUFVEC_INIT(size);
	b.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	b.buf[0].fd = fd;
	b.buf[0].pos = off;
	return b;
}

static void cowfuse_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct cow_file *f;
	int fd;
	void *token;
	int r = get_data_fd(req, ino, fi, false, &f, &fd, &token);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (fd < 0) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		struct fuse_bufvec buf = fd_bufvec(size, fd, off);
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	}
	cow_read_done(token);
	put_file(fi, f);
}

/* Data from the kernel's pipe straight into the data file: with splice
 * (FUSE_CAP_SPLICE_READ, see splice_max_write) a large WRITE's pages are
 * never copied through the daemon's memory.  libfuse copies smaller
 * requests out of the pipe, and small writes are pwritten. */
static void cowfuse_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			      struct fuse_file_info *fi)
{
	struct cow_file *f;
	int fd;
	void *token;
	int r = kill_privs_at_write(req, ino);
	if (r == 0)
		r = get_data_fd(req, ino, fi, true, &f, &fd, &token);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* what fits in the quota: the kernel is told of a short write */
	ssize_t n = cow_write_room(f, off, fuse_buf_size(in));
	if (n > 0) {
		struct fuse_bufvec out = fd_bufvec((size_t)n, fd, off);
		n = fuse_buf_copy(&out, in, 0);
	}
	cow_write_done(f, token, n);
	put_file(fi, f);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void cowfuse_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	cow_release(file_of(fi));
	fuse_reply_err(req, 0);
}

static void cowfuse_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cow_file *f;
	int r = get_file(req, ino, fi, false, &f);
	if (r == 0) {
		r = cow_fsync(f, datasync != 0);
		put_file(fi, f);
	}
	fuse_reply_err(req, -r);
}

static void cowfuse_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct cow_file *f;
	int r = kill_privs_at_write(req, ino);
	if (r == 0 && (r = get_file(req, ino, fi, true, &f)) == 0) {
		r = cow_fallocate(f, mode, off, len);
		put_file(fi, f);
	}
	fuse_reply_err(req, -r);
}

/* No flush op: the kernel then stops sending FLUSH on every close (the
 * core has nothing to do there; written data reaches the daemon with
 * WRITE before close returns either way).
 *
 * No lseek op: the kernel does not write back its cache before
 * FUSE_LSEEK, so SEEK_DATA/SEEK_HOLE answered here would miss cached
 * writes; without the op the kernel answers from i_size. */

static void cowfuse_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cow_dirh *d;
	if (cf_of(req)->no_opendir) {
		fuse_reply_err(req, ENOSYS); /* "opened": no handle, no release */
		return;
	}
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

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct dirbuf b = {.req = req, .size = size, .plus = plus};
	b.buf = malloc(size);
	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int r = fi->fh ? cow_readdir((struct cow_dirh *)(uintptr_t)fi->fh, off, plus, add_dirent, &b)
		       : cow_readdir_ino(view_of(req), to_core(req, ino), off, plus, add_dirent, &b);
	if (r < 0 && b.used == 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, b.buf, b.used);
	free(b.buf);
}

static void cowfuse_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void cowfuse_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void cowfuse_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (fi->fh)
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
    .write_buf = cowfuse_write_buf,
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
	struct cowfuse cf = {.v = v};
	char self[32];
	ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		cf.proc_ours = atoi(self) == getpid();
	}
	struct fuse_session *se = fuse_session_new(&args, &cowfuse_ops, sizeof(cowfuse_ops), &cf);
	cf.se = se;
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
