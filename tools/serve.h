/* SPDX-License-Identifier: MIT */
/* `cowroot serve` and `cowroot netboot` (serve.c). */
#ifndef COWROOT_SERVE_H
#define COWROOT_SERVE_H

int cmd_serve(int argc, char **argv);
int cmd_netboot(int argc, char **argv);
/* Tell a running `cowroot serve` of this store to reload its clients
 * (SIGHUP); says so on stdout.  Nothing when no server runs. */
void serve_notify(const char *dir);

#endif
