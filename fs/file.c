/* SPDX-License-Identifier: MIT */
/*
 * Open files.  Reads and writes go straight to the object's data file with
 * no lock held during I/O; the inode lock only guards which data file is
 * current (copy-up replaces it) and the size and times.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow-private.h"

int cow_new_file(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, const struct cow_cred *cred,
		 struct cow_inode **ret_ip, struct cow_attr *ret);

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static int file_new(struct cow_view *v, struct cow_inode *ip, int flags, struct cow_file **ret)
{
	struct cow_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->v = v;
	f->ip = ip;
	f->flags = flags;
	*ret = f;
	return 0;
}

/* Open @ip (referenced; the file keeps the reference). */
static int open_inode(struct cow_view *v, struct cow_inode *ip, int flags, struct cow_file **ret)
{
	int r = 0;
	pthread_mutex_lock(&ip->lock);
	if (S_ISDIR(ip->row.mode) && wants_write(flags)) {
		r = -EISDIR;
		goto out;
	}
	if (S_ISREG(ip->row.mode)) {
		if (flags & O_TRUNC) {
			r = cow_copy_up_data(v, ip, true);
			if (r == 0 && ip->row.size) {
				if (ftruncate(ip->fd->fd, 0) < 0)
					r = -errno;
				else
					ip->row.size = 0;
			}
			if (r == 0) {
				ip->blocks = 0;
				cow_quota_update(v, ip);
				if (!v->caller_times)
					ip->row.mtime = ip->row.ctime = cow_now_ns();
				cow_inode_mark_dirty(v, ip);
			}
		} else {
			/* an open for writing copies up at its first write (an
			 * NFSv3 CREATE of an existing file, an O_RDWR open that
			 * only reads, cost nothing and need no quota) */
			r = cow_inode_open_fd(v, ip);
		}
	}
	if (r == 0)
		r = file_new(v, ip, flags, ret);
	if (r == 0 && ip->nopen++ == 0 && ip->row.nlink == 0)
		cow_quota_update(v, ip); /* open again by handle: it holds its space again */
out:
	pthread_mutex_unlock(&ip->lock);
	return r;
}

int cow_open(struct cow_view *v, uint64_t ino, int flags, struct cow_file **ret)
{
	struct cow_inode *ip;
	if (wants_write(flags) && v->readonly)
		return -EROFS;
	int r = cow_inode_get(v, ino, &ip);
	if (r < 0)
		return r;
	r = open_inode(v, ip, flags, ret);
	if (r < 0)
		cow_inode_put(v, ip);
	return r;
}

int cow_create(struct cow_view *v, uint64_t parent, const char *name, mode_t mode, int flags,
	       const struct cow_cred *cred, struct cow_file **ret_file, struct cow_attr *ret)
{
	struct cow_inode *ip;
	struct cow_attr attr;
	int r = cow_new_file(v, parent, name, mode, cred, &ip, &attr);
	if (r == -EEXIST && !(flags & O_EXCL)) {
		/* lost a race with another creator: open what is there */
		r = cow_lookup(v, parent, name, &attr);
		if (r < 0)
			return r;
		if (S_ISDIR(attr.mode)) {
			cow_forget(v, attr.ino, 1);
			return -EISDIR;
		}
		r = cow_open(v, attr.ino, flags, ret_file);
		if (r < 0) {
			cow_forget(v, attr.ino, 1);
			return r;
		}
		/* cow_open took the file's own reference; the lookup's is the caller's */
		return cow_getattr(v, attr.ino, ret);
	}
	if (r < 0)
		return r;
	/* one reference for the caller (the entry), one for the file */
	pthread_mutex_lock(&v->itable_lock);
	ip->refs++;
	pthread_mutex_unlock(&v->itable_lock);
	r = open_inode(v, ip, flags & ~O_TRUNC, ret_file);
	if (r < 0) {
		cow_inode_put(v, ip);
		return r;
	}
	*ret = attr;
	return 0;
}

uint64_t cow_file_ino(const struct cow_file *f)
{
	return f->ip->ino;
}

/* A reference on the current data fd (NULL for a file without data). */
static struct cow_fd *fd_get(struct cow_file *f, int *err)
{
	struct cow_inode *ip = f->ip;
	pthread_mutex_lock(&ip->lock);
	*err = ip->reset_gone ? -ESTALE : cow_inode_open_fd(f->v, ip);
	struct cow_fd *fd = *err < 0 ? NULL : ip->fd; /* no reference taken on failure */
	if (fd)
		atomic_fetch_add(&fd->refs, 1);
	pthread_mutex_unlock(&ip->lock);
	return fd;
}

ssize_t cow_read(struct cow_file *f, void *buf, size_t size, off_t off)
{
	int r;
	struct cow_fd *fd = fd_get(f, &r);
	if (r < 0)
		return r;
	if (!fd)
		return 0;
	ssize_t n = pread(fd->fd, buf, size, off);
	if (n < 0)
		n = -errno;
	cow_fd_put(fd);
	return n;
}

int cow_read_fd(struct cow_file *f, int *ret_fd, void **ret_token)
{
	int r;
	struct cow_fd *fd = fd_get(f, &r);
	if (r < 0)
		return r;
	*ret_fd = fd ? fd->fd : -1;
	*ret_token = fd;
	return 0;
}

void cow_read_done(void *token)
{
	cow_fd_put(token);
}

/* A reference on a writable data fd, copying up first if needed. */
static int wfd_get(struct cow_file *f, struct cow_fd **ret)
{
	struct cow_inode *ip = f->ip;
	int r = 0;
	if (f->v->readonly)
		return -EROFS;
	pthread_mutex_lock(&ip->lock);
	if (ip->reset_gone)
		r = -ESTALE;
	else if (!S_ISREG(ip->row.mode))
		r = -EINVAL;
	else if (!ip->fd || !ip->fd->writable)
		r = cow_copy_up_data(f->v, ip, false);
	if (r == 0) {
		atomic_fetch_add(&ip->fd->refs, 1);
		*ret = ip->fd;
	}
	pthread_mutex_unlock(&ip->lock);
	return r;
}

/* After a write: size, allocation and times from the data file. */
static void written(struct cow_file *f, struct cow_fd *fd)
{
	struct cow_inode *ip = f->ip;
	struct stat stbuf;
	int64_t now = cow_now_ns();
	pthread_mutex_lock(&ip->lock);
	if (fd == ip->fd && fstat(fd->fd, &stbuf) == 0) {
		ip->row.size = stbuf.st_size;
		ip->blocks = stbuf.st_blocks;
		cow_quota_update(f->v, ip);
	}
	if (!f->v->caller_times)
		ip->row.mtime = ip->row.ctime = now;
	pthread_mutex_unlock(&ip->lock);
	cow_inode_mark_dirty(f->v, ip);
}

int cow_write_fd(struct cow_file *f, int *ret_fd, void **ret_token)
{
	struct cow_fd *fd;
	int r = wfd_get(f, &fd);
	if (r < 0)
		return r;
	*ret_fd = fd->fd;
	*ret_token = fd;
	return 0;
}

void cow_write_done(struct cow_file *f, void *token, ssize_t written_bytes)
{
	struct cow_fd *fd = token;
	if (written_bytes >= 0)
		written(f, fd);
	cow_fd_put(fd);
}

ssize_t cow_write(struct cow_file *f, const void *buf, size_t size, off_t off)
{
	int fd;
	void *token;
	int r = cow_write_fd(f, &fd, &token);
	if (r < 0)
		return r;
	ssize_t n = cow_write_room(f, off, size); /* after a copy-up, which it may count */
	if (n < 0) {
		cow_write_done(f, token, n);
		return n;
	}
	n = pwrite(fd, buf, (size_t)n, off); /* front ends resolve O_APPEND */
	if (n < 0)
		n = -errno;
	cow_write_done(f, token, n);
	return n;
}

int cow_fallocate(struct cow_file *f, int mode, off_t off, off_t len)
{
	struct cow_fd *fd;
	int r = wfd_get(f, &fd);
	if (r < 0)
		return r;
	/* allocating: as much as it asks for may be new */
	bool frees = (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE)) != 0;
	r = frees ? 0 : cow_quota_check(f->v, 0, len);
	if (r == 0)
		r = fallocate(fd->fd, mode, off, len) < 0 ? -errno : 0;
	if (r == 0)
		written(f, fd);
	cow_fd_put(fd);
	return r;
}

off_t cow_lseek(struct cow_file *f, off_t off, int whence)
{
	int r;
	struct cow_fd *fd = fd_get(f, &r);
	if (r < 0)
		return r;
	if (!fd)
		return -ENXIO; /* empty file: no data, hole at 0 == EOF */
	off_t res = lseek(fd->fd, off, whence);
	if (res < 0)
		res = -errno;
	cow_fd_put(fd);
	return res;
}

int cow_flush(struct cow_file *f)
{
	(void)f;
	return 0;
}

int cow_fsync(struct cow_file *f, bool datasync)
{
	struct cow_inode *ip = f->ip;
	struct cow_view *v = f->v;
	int r = 0;
	if (v->readonly)
		return 0;
	struct cow_fd *fd = fd_get(f, &r);
	if (r < 0)
		return r;
	if (fd && fd->writable && (datasync ? fdatasync(fd->fd) : fsync(fd->fd)) < 0)
		r = -errno;
	cow_fd_put(fd);
	if (r < 0)
		return r;
	/* then the metadata and every name committed so far: committed
	 * under the locks, made durable after them, so that other clients'
	 * operations do not wait for the disk and concurrent syncs share one
	 * flush (cow_db_sync) */
	struct cow_db *db = v->st->db;
	pthread_mutex_lock(&ip->lock);
	cow_db_lock(db);
	if (ip->dirty && ip->row.nlink > 0) {
		r = cow_db_begin(db);
		if (r == 0) {
			r = cow_inode_store(v, ip);
			if (r == 0)
				r = cow_db_commit(db, false);
			else
				cow_db_rollback(db);
		}
	} else {
		r = cow_db_flush(db, false); /* an open batch: the names before */
	}
	cow_db_unlock(db);
	pthread_mutex_unlock(&ip->lock);
	return r < 0 ? r : cow_db_sync(db);
}

int cow_release(struct cow_file *f)
{
	struct cow_inode *ip = f->ip;
	pthread_mutex_lock(&ip->lock);
	if (--ip->nopen == 0) {
		/* bound open descriptors: the next open reopens the data file */
		struct cow_fd *fd = ip->fd;
		ip->fd = NULL;
		cow_fd_put(fd);
		cow_quota_update(f->v, ip); /* an unlinked file's space is free now */
	}
	pthread_mutex_unlock(&ip->lock);
	cow_inode_put(f->v, ip);
	free(f);
	return 0;
}
