/* SPDX-License-Identifier: MIT */
/*
 * The fleet's boot files over TFTP, for `cowroot serve`: every request is
 * mapped to one client, and served from that client's own root (its image
 * and its layer, as committed at the moment of the request).
 *
 *   netboot-<serial|MAC>.scr     the client's u-boot script, made at each fetch
 *   <serial|MAC>/cmdline.txt     its kernel command line (the Pi firmware's)
 *   <serial|MAC>/boot/..., <serial|MAC>/vmlinuz*, <serial|MAC>/initrd.img*,
 *   <serial|MAC>/usr/lib/linux-image-* /...   those paths of its root
 *   <serial|MAC>/NAME            its /boot/firmware/NAME (else /boot/NAME):
 *                                the Pi 4/5 bootloader's files
 *   NAME                         the same, for the client whose address the
 *                                request comes from (the Pi 3 boot ROM
 *                                fetches bootcode.bin with no prefix)
 *
 * A serial is 8 hex digits (or u-boot's 16), a MAC has ':' or '-' between
 * its pairs; any case.  A client's first request after BOOT_GAP seconds
 * without one begins a boot: it is logged, and the layer of a client set
 * to reset on boot is reset before anything is served to it (through the
 * NFS server that holds the layer, STORE/run/control.sock, else in the
 * store).  A client is served only to its own addresses (its
 * --ip), and only files under /boot and /usr/lib/linux-image-* and the
 * top-level vmlinuz* and initrd.img* of its root, wherever symlinks lead.
 */
#ifndef COWROOT_BOOT_H
#define COWROOT_BOOT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cowroot.h"
#include "tftp.h"

struct boot_server;

struct boot_config {
	const char *store; /* absolute store directory */
	int nfs_port;	   /* goes into the nfsroot lines */
	unsigned boot_gap; /* seconds; 0: BOOT_GAP */
	tftp_log_fn log;   /* boots and resets are logged here (may be NULL) */
	void *log_arg;
};
#define BOOT_GAP 30

/* A client's last boot, as the boot server saw it */
struct boot_status {
	time_t began;		     /* when its first request came; 0: not since the server started */
	char addr[INET6_ADDRSTRLEN]; /* from where */
	char kernel[256];	     /* the kernel file it fetched, a path in its root ("" if none yet) */
	char version[128];	     /* its version where the name tells it ("6.1.0-28-arm64"), else "" */
};

/* Client @name's last boot into @ret: 0, or -ENOENT (none seen).  Thread-safe. */
int boot_server_status(struct boot_server *b, const char *name, struct boot_status *ret);

/* Open the store read-only for the resolver.  0 or -errno (cow_store_open's). */
int boot_server_open(const struct boot_config *cfg, struct boot_server **ret);
void boot_server_close(struct boot_server *b);
/* The TFTP resolver (tftp_resolve_fn), @arg a struct boot_server. */
int boot_resolve(void *arg, const struct tftp_peer *peer, const char *path, struct tftp_source *ret);

/* The u-boot script of client @c, as served: it loads the kernel, the
 * initramfs and (if the client has one) the device tree of view @v (the
 * client's root) as @key/PATH over TFTP, and boots with the nfsroot line
 * to @server port @nfs_port.  0 with *@ret (free it), or -errno: -ENOENT
 * when the root has no kernel (*@ret then holds a script that says so on
 * the client's console), -ENOEXEC when its kernel is not one u-boot
 * boots (also with such a script). */
int boot_script(struct cow_view *v, const struct cow_client_info *c, const char *key, const char *server, int nfs_port,
		char **ret, bool *ret_arm64);
/* The kernel command line of client @c for the Pi firmware's cmdline.txt. */
void boot_cmdline(const struct cow_client_info *c, const char *server, int nfs_port, char *buf, size_t n);
/* A TFTP source reading @rf (of @size bytes; closed with the transfer). */
struct root_file;
void boot_source_root(struct tftp_source *src, struct root_file *rf, int64_t size);
/* Is @real (a resolved path in a client's root) one of its boot files? */
bool boot_file_allowed(const char *real);

#endif
