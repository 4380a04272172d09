/* SPDX-License-Identifier: MIT */
/*
 * Reading a client's or an image's root the way its own boot would, for
 * the boot front ends (TFTP, image check, the SD card): paths resolved as
 * in a chroot, small files read whole, and u-boot script images.
 */
#ifndef COWROOT_BOOTFS_H
#define COWROOT_BOOTFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cowroot.h"

#define ROOT_PATH_MAX 1024 /* longest resolved path root_walk reports */

/* Find @path in view @v as a chroot would: symlinks followed relative to
 * the root (an absolute target starts again at the root, ".." stops
 * there), at most 40 of them.  @want is S_IFREG or S_IFDIR: what the last
 * component must be (-EISDIR / -ENOTDIR / -EACCES otherwise).  Returns 0
 * with its attributes (one reference taken: cow_forget it) and, when @real
 * is not NULL, the resolved path without symlinks ("/boot/vmlinuz-6.1",
 * "/" for the root) in @real (@realsize bytes, -ENAMETOOLONG past it);
 * else -errno. */
int root_walk(struct cow_view *v, const char *path, mode_t want, struct cow_attr *ret, char *real,
	      size_t realsize);

/* Read all of regular file @path (root_walk) of @v into a new buffer,
 * NUL-terminated; -EFBIG when it holds more than @max bytes.  0 with
 * *@ret (free it) and *@ret_len, or -errno. */
int root_read(struct cow_view *v, const char *path, size_t max, char **ret, size_t *ret_len);

/* The first @n bytes of regular file @path of @v in @buf; returns the
 * bytes read (fewer at the end of the file) or -errno. */
ssize_t root_read_head(struct cow_view *v, const char *path, void *buf, size_t n);

/* A u-boot legacy script image (what `mkimage -A arm64|arm -O linux
 * -T script -C none -n NAME -d FILE` makes) of the @len bytes of @script,
 * named @name (at most 31 bytes are kept).  0 with *@ret (free it) and
 * *@ret_len, or -ENOMEM / -EFBIG (more than 16 MiB). */
int uimage_script(const char *name, bool arm64, const char *script, size_t len, uint8_t **ret, size_t *ret_len);

#endif
