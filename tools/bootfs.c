/* SPDX-License-Identifier: MIT */
/* Reading a root as its own boot would; u-boot script images (bootfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "bootfs.h"

#define SYMLINK_HOPS 40
#define WALK_DEPTH 128

int root_walk(struct cow_view *v, const char *path, mode_t want, struct cow_attr *ret, char *real, size_t realsize)
{
	uint64_t stack[WALK_DEPTH];
	size_t ends[WALK_DEPTH]; /* length of the resolved path at each level */
	size_t depth = 0;
	char rest[2 * (COW_SYMLINK_MAX + 1)], target[COW_SYMLINK_MAX + 1], name[COW_NAME_MAX + 1];
	char where[ROOT_PATH_MAX + 1];
	int hops = 0, r;
	struct cow_attr a;

	if (strlen(path) >= sizeof(rest))
		return -ENAMETOOLONG;
	r = cow_ref(v, cow_view_root(v), &a);
	if (r < 0)
		return r;
	where[0] = 0;
	ends[depth] = 0;
	stack[depth++] = a.ino;
	snprintf(rest, sizeof(rest), "%s", path);
	for (;;) {
		char *p = rest;
		while (*p == '/')
			p++;
		if (!*p) {
			/* the path named the directory we are in */
			if (want == S_IFDIR) {
				r = cow_ref(v, stack[depth - 1], ret);
				break;
			}
			r = -EISDIR;
			break;
		}
		char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n > COW_NAME_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		memcpy(name, p, n);
		name[n] = 0;
		memmove(rest, p + n, strlen(p + n) + 1);
		bool last = !rest[strspn(rest, "/")];
		if (!strcmp(name, ".")) {
			if (last)
				memcpy(rest, "/", 2);
			continue;
		}
		if (!strcmp(name, "..")) {
			if (depth > 1)
				cow_forget(v, stack[--depth], 1);
			where[ends[depth - 1]] = 0;
			if (last)
				memcpy(rest, "/", 2);
			continue;
		}
		r = cow_lookup(v, stack[depth - 1], name, &a);
		if (r < 0)
			break;
		if (S_ISLNK(a.mode)) {
			int len = cow_readlink(v, a.ino, target, sizeof(target) - 1);
			cow_forget(v, a.ino, 1);
			if (len < 0) {
				r = len;
				break;
			}
			target[len] = 0;
			if (++hops > SYMLINK_HOPS || strlen(target) + 1 + strlen(rest) + 1 > sizeof(rest)) {
				r = -ELOOP;
				break;
			}
			if (target[0] == '/') {
				while (depth > 1)
					cow_forget(v, stack[--depth], 1);
				where[0] = 0;
			}
			size_t tl = strlen(target);
			memmove(rest + tl + 1, rest, strlen(rest) + 1);
			memcpy(rest, target, tl);
			rest[tl] = '/';
			if (!rest[tl + 1])
				rest[tl] = 0;
			continue;
		}
		size_t at = ends[depth - 1];
		if (at + 1 + n > ROOT_PATH_MAX) {
			cow_forget(v, a.ino, 1);
			r = -ENAMETOOLONG;
			break;
		}
		where[at] = '/';
		memcpy(where + at + 1, name, n + 1);
		if (last) {
			mode_t type = a.mode & S_IFMT;
			if (type != want) {
				cow_forget(v, a.ino, 1);
				r = type == S_IFDIR ? -EISDIR : want == S_IFDIR ? -ENOTDIR : -EACCES;
				break;
			}
			*ret = a;
			r = 0;
			break;
		}
		if (!S_ISDIR(a.mode)) {
			cow_forget(v, a.ino, 1);
			r = -ENOTDIR;
			break;
		}
		if (depth == WALK_DEPTH) {
			cow_forget(v, a.ino, 1);
			r = -ENAMETOOLONG;
			break;
		}
		ends[depth] = at + 1 + n;
		stack[depth++] = a.ino;
	}
	while (depth)
		cow_forget(v, stack[--depth], 1);
	if (r == 0 && real) {
		const char *shown = where[0] ? where : "/";
		if (strlen(shown) >= realsize) {
			cow_forget(v, ret->ino, 1);
			return -ENAMETOOLONG;
		}
		strcpy(real, shown);
	}
	return r;
}

/* Read @n bytes at @off of open file @f, short only at the end. */
static ssize_t read_full(struct cow_file *f, void *buf, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = cow_read(f, (char *)buf + done, n - done, off + (off_t)done);
		if (k < 0)
			return k;
		if (k == 0)
			break;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

/* Open regular file @path of @v: 0 with *@f and its attributes, or -errno */
static int open_path(struct cow_view *v, const char *path, struct cow_attr *a, struct cow_file **f)
{
	int r = root_walk(v, path, S_IFREG, a, NULL, 0);
	if (r < 0)
		return r;
	r = cow_open(v, a->ino, O_RDONLY, f);
	if (r < 0)
		cow_forget(v, a->ino, 1);
	return r;
}

static void close_path(struct cow_view *v, struct cow_attr *a, struct cow_file *f)
{
	cow_release(f);
	cow_forget(v, a->ino, 1);
}

int root_read(struct cow_view *v, const char *path, size_t max, char **ret, size_t *ret_len)
{
	struct cow_attr a;
	struct cow_file *f;
	int r = open_path(v, path, &a, &f);
	if (r < 0)
		return r;
	char *buf = NULL;
	if (a.size < 0 || (uint64_t)a.size > max)
		r = -EFBIG;
	else if (!(buf = malloc((size_t)a.size + 2)))
		r = -ENOMEM;
	else {
		/* one byte more than the size: a file that grew is too big */
		ssize_t k = read_full(f, buf, (size_t)a.size + 1, 0);
		if (k < 0)
			r = (int)k;
		else if ((size_t)k > max)
			r = -EFBIG;
		else {
			buf[k] = 0;
			*ret = buf;
			*ret_len = (size_t)k;
			buf = NULL;
		}
	}
	free(buf);
	close_path(v, &a, f);
	return r;
}

ssize_t root_read_head(struct cow_view *v, const char *path, void *buf, size_t n)
{
	struct cow_attr a;
	struct cow_file *f;
	int r = open_path(v, path, &a, &f);
	if (r < 0)
		return r;
	ssize_t k = read_full(f, buf, n, 0);
	close_path(v, &a, f);
	return k;
}

/* ---- u-boot legacy images (include/image.h of u-boot) ---- */

#define IH_MAGIC 0x27051956
#define IH_OS_LINUX 5
#define IH_ARCH_ARM 2
#define IH_ARCH_ARM64 22
#define IH_TYPE_SCRIPT 6
#define IH_COMP_NONE 0
#define IH_NMLEN 32
#define IH_HEADER 64
#define SCRIPT_IMAGE_MAX (16u << 20)

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int uimage_script(const char *name, bool arm64, const char *script, size_t len, uint8_t **ret, size_t *ret_len)
{
	if (len > SCRIPT_IMAGE_MAX)
		return -EFBIG;
	/* a script image is a multi-file image of one file: a table of
	 * lengths ended by a zero word, then the script */
	size_t data = 8 + len, total = IH_HEADER + data;
	uint8_t *img = calloc(1, total);
	if (!img)
		return -ENOMEM;
	uint8_t *d = img + IH_HEADER;
	put_be32(d, (uint32_t)len);
	put_be32(d + 4, 0);
	memcpy(d + 8, script, len);
	put_be32(img + 0, IH_MAGIC);
	put_be32(img + 8, (uint32_t)time(NULL));
	put_be32(img + 12, (uint32_t)data);
	put_be32(img + 24, (uint32_t)crc32(0, d, (uInt)data));
	img[28] = IH_OS_LINUX;
	img[29] = arm64 ? IH_ARCH_ARM64 : IH_ARCH_ARM;
	img[30] = IH_TYPE_SCRIPT;
	img[31] = IH_COMP_NONE;
	strncpy((char *)img + 32, name, IH_NMLEN - 1);
	put_be32(img + 4, (uint32_t)crc32(0, img, IH_HEADER));
	*ret = img;
	*ret_len = total;
	return 0;
}
