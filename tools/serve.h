/* SPDX-License-Identifier: MIT */
/* `cowroot serve` and `cowroot netboot` (serve.c). */
#ifndef COWROOT_SERVE_H
#define COWROOT_SERVE_H

#include <stddef.h>
#include <sys/types.h>

int cmd_serve(int argc, char **argv);
int cmd_netboot(int argc, char **argv);
/* Tell a running `cowroot serve` of this store to reload its clients
 * (SIGHUP); says so on stdout.  Nothing when no server runs. */
void serve_notify(const char *dir);

/* Replace @name in directory @dir with @len bytes of @data (mode @mode)
 * through a temporary file and renameat(2): a symlink or other file at
 * @name is replaced, never followed or written through.  0 or -errno. */
int write_file_at(int dir, const char *name, const char *data, size_t len, mode_t mode);

#endif
