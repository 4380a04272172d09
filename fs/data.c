/* SPDX-License-Identifier: MIT */
/*
 * Data files and the store directory.  Each regular file with content has
 * one data file per layer that owns a version of it:
 * STORE/data/<layer>/<ino & 0xff>/<ino>.  Image data files are never
 * written after import; a client's are written in place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow-private.h"

void cow_data_path(char *buf, size_t size, uint64_t layer, uint64_t ino)
{
	snprintf(buf, size, "%llu/%02x/%016llx", (unsigned long long)layer, (unsigned)(ino & 0xff),
		 (unsigned long long)ino);
}

/* ---- new names, made durable before the commit that names them ----
 * A data file created for a record (a create, a copy-up) is synced with
 * its data; its name, in data/<layer>/<xx>/, is the directory's.  The
 * directories that gained names are listed here and fsync'd right before
 * the database's next commit (cow_db_set_presync), once each however many
 * files they gained: a power cut cannot leave a record of a file whose
 * name never reached the disk. */

/* Note that directory @dir (relative to data/, "" for data/ itself)
 * gained an entry. */
static int dir_gained(struct cow_store *st, const char *dir)
{
	int r = 0;
	pthread_mutex_lock(&st->newdirs_lock);
	for (size_t i = st->nnewdirs; i-- > 0;)
		if (!strcmp(st->newdirs[i], dir))
			goto out;
	if (st->nnewdirs == st->capnewdirs) {
		size_t cap = st->capnewdirs ? st->capnewdirs * 2 : 16;
		char **v = realloc(st->newdirs, cap * sizeof(*v));
		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		st->newdirs = v;
		st->capnewdirs = cap;
	}
	st->newdirs[st->nnewdirs] = strdup(dir);
	if (!st->newdirs[st->nnewdirs])
		r = -ENOMEM;
	else
		st->nnewdirs++;
out:
	pthread_mutex_unlock(&st->newdirs_lock);
	return r;
}

int cow_data_sync_dirs(void *arg)
{
	struct cow_store *st = arg;
	int r = 0;
	pthread_mutex_lock(&st->newdirs_lock);
	for (size_t i = 0; i < st->nnewdirs; i++) {
		const char *d = st->newdirs[i][0] ? st->newdirs[i] : ".";
		int fd = openat(st->datafd, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			free(st->newdirs[i]);
			continue; /* removed since (gc, a reset): nothing to keep */
		}
		if (fd < 0 || fsync(fd) < 0) {
			if (r == 0)
				r = -errno;
		}
		if (fd >= 0)
			close(fd);
		free(st->newdirs[i]);
	}
	st->nnewdirs = 0;
	pthread_mutex_unlock(&st->newdirs_lock);
	return r;
}

int cow_data_created(struct cow_store *st, uint64_t layer, uint64_t ino)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "%llu/%02x", (unsigned long long)layer, (unsigned)(ino & 0xff));
	return dir_gained(st, dir);
}

static int mkdir_parents(struct cow_store *st, const char *path)
{
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = strchr(tmp, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		if (mkdirat(st->datafd, tmp, 0700) == 0) {
			/* a new directory: its name is its parent's */
			char *slash = strrchr(tmp, '/');
			if (slash)
				*slash = 0;
			int r = dir_gained(st, slash ? tmp : "");
			if (slash)
				*slash = '/';
			if (r < 0)
				return r;
		} else if (errno != EEXIST) {
			return -errno;
		}
		*p = '/';
	}
	return 0;
}

int cow_data_open(struct cow_store *st, uint64_t layer, uint64_t ino, int flags, mode_t mode)
{
	char path[128];
	cow_data_path(path, sizeof(path), layer, ino);
	int fd = openat(st->datafd, path, flags | O_CLOEXEC, mode);
	if (fd < 0 && errno == ENOENT && (flags & O_CREAT)) {
		int r = mkdir_parents(st, path);
		if (r < 0)
			return r;
		fd = openat(st->datafd, path, flags | O_CLOEXEC, mode);
	}
	return fd < 0 ? -errno : fd;
}

int cow_data_unlink(struct cow_store *st, uint64_t layer, uint64_t ino)
{
	char path[128];
	cow_data_path(path, sizeof(path), layer, ino);
	if (unlinkat(st->datafd, path, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

void cow_data_unlink_after_commit(struct cow_store *st, uint64_t layer, uint64_t ino)
{
	/* out of memory: left as an orphan for fsck, never removed early */
	(void)cow_db_unlink_after_commit(st->db, layer, ino);
}

void cow_data_reap(struct cow_store *st)
{
	struct cow_data_ref *v;
	cow_db_lock(st->db);
	size_t n = cow_db_take_unlinks(st->db, &v);
	cow_db_unlock(st->db);
	for (size_t i = 0; i < n; i++)
		cow_data_unlink(st, v[i].layer, v[i].ino);
	free(v);
}

int cow_rm_tree_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type == DT_DIR)
			r = cow_rm_tree_at(fd, de->d_name);
		else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
			r = -errno;
		if (r < 0)
			break;
	}
	closedir(d);
	if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int cow_data_foreach(struct cow_store *st, uint64_t layer,
		     int (*fn)(void *arg, int dirfd, const char *sub, const char *name), void *arg)
{
	char name[32];
	snprintf(name, sizeof(name), "%llu", (unsigned long long)layer);
	int lfd = openat(st->datafd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0)
		return errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(lfd);
	if (!d) {
		close(lfd);
		return -errno;
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int sfd = openat(lfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *sd = sfd < 0 ? NULL : fdopendir(sfd);
		if (!sd) {
			if (sfd >= 0)
				close(sfd);
			continue;
		}
		struct dirent *fe;
		while (r == 0 && (fe = readdir(sd)))
			if (fe->d_name[0] != '.')
				r = fn(arg, sfd, de->d_name, fe->d_name);
		closedir(sd);
	}
	closedir(d);
	return r;
}

int cow_data_remove_layer(struct cow_store *st, uint64_t layer)
{
	char name[32];
	snprintf(name, sizeof(name), "%llu", (unsigned long long)layer);
	return cow_rm_tree_at(st->datafd, name);
}

int cow_data_share(struct cow_store *st, uint64_t from, uint64_t to, uint64_t ino)
{
	char src[128], dst[128];
	cow_data_path(src, sizeof(src), from, ino);
	cow_data_path(dst, sizeof(dst), to, ino);
	int r = mkdir_parents(st, dst);
	if (r < 0)
		return r;
	if (linkat(st->datafd, src, st->datafd, dst, 0) == 0)
		return 0;
	if (errno != EMLINK && errno != EXDEV && errno != EPERM && errno != EEXIST)
		return -errno;
	int in = cow_data_open(st, from, ino, O_RDONLY, 0);
	if (in < 0)
		return in;
	struct stat s;
	int out = fstat(in, &s) < 0 ? -errno : cow_data_open(st, to, ino, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0) {
		close(in);
		return out;
	}
	r = cow_data_copy(in, out, s.st_size, false);
	close(in);
	close(out);
	return r;
}

int cow_data_copy(int in, int out, int64_t size, bool sync)
{
	/* Share extents where the file system can (reflink), else copy
	 * data segments only, so holes stay holes. */
	if (ioctl(out, FICLONE, in) == 0)
		goto synced;
	off_t off = 0;
	while (off < size) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;
			data = off; /* no SEEK_DATA: copy everything */
		}
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		off_t pos = data;
		while (pos < hole) {
			loff_t ipos = pos, opos = pos;
			ssize_t n = copy_file_range(in, &ipos, out, &opos, (size_t)(hole - pos), 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
				char buf[65536];
				size_t want = (size_t)(hole - pos) < sizeof(buf) ? (size_t)(hole - pos) : sizeof(buf);
				n = pread(in, buf, want, pos);
				if (n > 0) {
					int r = cow_pwrite_all(out, buf, (size_t)n, pos);
					if (r < 0)
						return r;
				}
			}
			if (n < 0)
				return -errno;
			if (n == 0)
				break;
			pos += n;
		}
		off = hole;
	}
	if (ftruncate(out, size) < 0)
		return -errno;
synced:
	if (sync && fdatasync(out) < 0)
		return -errno;
	return 0;
}

int cow_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t k = off < 0 ? write(fd, p, n) : pwrite(fd, p, n, off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -ENOSPC; /* nothing more fits, and no errno says why */
		p += k;
		n -= (size_t)k;
		if (off >= 0)
			off += k;
	}
	return 0;
}
