/* SPDX-License-Identifier: MIT */
/*
 * Copy-up: the first write to an object of the image gives the writable
 * layer its own data file.  The object keeps its ino, so every hardlink
 * sees the copy.  Data first: the copy is written, and fdatasync'd right
 * before the transaction that points the object at it commits (with a
 * batch, up to a second later, off the writer's path); a crash in between
 * leaves an unreferenced file that fsck removes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow-private.h"

static struct cow_fd *fd_wrap(int fd, bool writable)
{
	struct cow_fd *f = malloc(sizeof(*f));
	if (!f)
		return NULL;
	f->fd = fd;
	f->writable = writable;
	atomic_init(&f->refs, 1);
	return f;
}

static void fd_replace(struct cow_inode *ip, struct cow_fd *f)
{
	struct cow_fd *old = ip->fd;
	ip->fd = f;
	cow_fd_put(old);
}

int cow_inode_open_fd(struct cow_view *v, struct cow_inode *ip)
{
	if (ip->fd || !ip->row.data_layer)
		return 0;
	bool writable = !v->readonly && ip->row.data_layer == v->layer;
	int fd = cow_data_open(v->st, ip->row.data_layer, ip->ino, writable ? O_RDWR : O_RDONLY, 0);
	if (fd < 0)
		return fd == -ENOENT ? -EIO : fd;
	struct cow_fd *f = fd_wrap(fd, writable);
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	ip->fd = f;
	return 0;
}

int cow_copy_up_data(struct cow_view *v, struct cow_inode *ip, bool empty)
{
	int r;
	if (v->readonly)
		return -EROFS;
	if (ip->row.data_layer == v->layer) {
		r = cow_inode_open_fd(v, ip);
		if (r < 0 || ip->fd->writable)
			return r;
		fd_replace(ip, NULL); /* opened before this view could write */
		return cow_inode_open_fd(v, ip);
	}
	/* what the layer newly holds: the copy, and the object if its row
	 * is below */
	r = cow_quota_check_inode(v, ip, ip->row.data_layer && !empty ? ip->blocks * 512 : 0);
	if (r < 0)
		return r;
	/* The layer's data file name for this object is free: nothing
	 * references it while data_layer points elsewhere. */
	int out = cow_data_open(v->st, v->layer, ip->ino, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (out < 0)
		return out;
	r = cow_data_created(v->st, v->layer, ip->ino);
	if (r < 0)
		goto fail;
	if (ip->row.data_layer && !empty) {
		r = cow_inode_open_fd(v, ip);
		if (r == 0)
			r = cow_data_copy(ip->fd->fd, out, ip->row.size, false);
		if (r < 0)
			goto fail;
	}
	struct cow_fd *f = fd_wrap(out, true);
	if (!f) {
		r = -ENOMEM;
		goto fail;
	}
	uint64_t old_layer = ip->row.data_layer;
	ip->row.data_layer = v->layer;
	struct cow_db *db = v->st->db;
	cow_db_lock(db);
	r = cow_db_begin_batched(db);
	if (r == 0) {
		/* a copy is made durable before the record commits (an
		 * empty new file needs nothing: its writes are not synced
		 * before fsync on any file system) */
		if (old_layer && !empty) {
			int sfd = dup(out);
			r = sfd < 0 ? -errno : cow_db_sync_before_commit(db, sfd);
		}
		if (r == 0)
			r = cow_inode_store(v, ip);
		if (r == 0)
			r = cow_db_commit(db, false);
		else
			cow_db_rollback(db);
	}
	cow_db_unlock(db);
	if (r < 0) {
		ip->row.data_layer = old_layer;
		cow_fd_put(f);
		cow_data_unlink(v->st, v->layer, ip->ino);
		return r;
	}
	fd_replace(ip, f);
	if (empty)
		ip->row.size = 0;
	struct stat stbuf;
	if (fstat(out, &stbuf) == 0)
		ip->blocks = stbuf.st_blocks;
	cow_quota_update(v, ip);
	return 0;
fail:
	close(out);
	cow_data_unlink(v->st, v->layer, ip->ino);
	return r;
}
