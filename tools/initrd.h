/* SPDX-License-Identifier: MIT */
/*
 * Reading an initramfs the way the kernel unpacks it (init/initramfs.c):
 * cpio newc archives one after the other, each plain or compressed (gzip,
 * zstd, xz, lzma, lz4 legacy), zero padding between them.  Only the names
 * and a few small files are looked at: what tells whether the initramfs
 * can mount an NFS root.  Everything is bounded: at most INITRD_UNPACKED_MAX
 * bytes are unpacked, in fixed buffers (nothing goes to disk), and the
 * decoders' own memory is capped.
 */
#ifndef COWROOT_INITRD_H
#define COWROOT_INITRD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define INITRD_UNPACKED_MAX (1ull << 30) /* bytes of cpio read, all archives together */

/* Read @n bytes at @off of the initramfs into @buf: the bytes read (fewer
 * only at its end) or -errno. */
typedef ssize_t (*initrd_read_fn)(void *arg, void *buf, size_t n, uint64_t off);

struct initrd_facts {
	char formats[64];  /* its parts in order: "cpio, zstd" */
	uint64_t unpacked; /* cpio bytes read */
	uint32_t entries;  /* archive members seen */
	bool complete;	   /* read to its end, nothing wrong with it */
	char problem[200]; /* else why: truncated, corrupt, unknown data, too big */
	bool too_big;	   /* the problem is INITRD_UNPACKED_MAX, nothing wrong seen */
	/* what it holds ("usr/" stripped: bin/x is usr/bin/x too) */
	bool initramfs_tools;  /* scripts/functions or conf/initramfs.conf */
	bool scripts_nfs;      /* initramfs-tools' scripts/nfs */
	bool nfsmount;	       /* klibc's bin/nfsmount */
	bool mount_nfs;	       /* sbin/mount.nfs (nfs-utils) */
	bool dracut;	       /* lib/dracut/ */
	bool dracut_nfs;       /* sbin/nfsroot: dracut's nfs module */
	bool nfs_ko, nfsv3_ko; /* lib/modules/VERSION/.../fs/nfs/nfs.ko, nfsv3.ko (any compression) */
	bool nfs_builtin;      /* lib/modules/VERSION/modules.builtin lists fs/nfs/nfs.ko */
	char kver[64];	       /* the first lib/modules/VERSION, "" if none */
	/* the BOOT= of conf/initramfs.conf and of the last file of
	 * conf/conf.d/ (in name order) that sets it, "" where none does */
	char boot[16];
	char boot_confd[16];
	char boot_confd_file[256];
};

/* Read the @size-byte initramfs that @read gives and fill @ret.  A broken
 * archive is no error: 0 with @ret->complete false and @ret->problem
 * saying what is wrong (what was read up to there is reported).  Errors:
 * the read function's, -ENOMEM. */
int initrd_scan(initrd_read_fn read, void *arg, uint64_t size, struct initrd_facts *ret);

#endif
