/* SPDX-License-Identifier: MIT */
/* `cowroot serve` (serve.c) and `cowroot netboot` (netboot.c). */
#ifndef COWROOT_SERVE_H
#define COWROOT_SERVE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

int cmd_serve(int argc, char **argv);
int cmd_netboot_sdcard(int argc, char **argv);
int cmd_netboot_dnsmasq(int argc, char **argv);
/* Say what replaced `cowroot netboot CLIENT --tftp-dir DIR`. */
void netboot_gone(void);
/* Tell a running `cowroot serve` of this store to reload its clients
 * (SIGHUP); says so on stdout.  Nothing when no server runs. */
void serve_notify(const char *dir);
/* Send request line @req to the COWROOT FSAL of the server of store
 * @dir (DIR/run/control.sock); its reply line into @reply.  Returns the
 * reply's number (0, or -errno) or -errno of the socket (-ENOENT,
 * -ECONNREFUSED: no server). */
int serve_control(const char *dir, const char *req, char *reply, size_t n);
/* Connect to the socket @sock of DIR/run/, send request @req and give the
 * reply to read in *@ret (fclose it), each read waiting at most @secs.
 * 0, or -errno (-ENOENT, -ECONNREFUSED: nobody listens). */
int unix_request(const char *dir, const char *sock, const char *req, int secs, FILE **ret);

/* The address to print in nfsroot lines into @buf: @given, else the first
 * IPv4 address of an interface that is up and not loopback, else "SERVER". */
void server_addr(const char *given, char *buf, size_t n);
/* The kernel command line that mounts client @client's root from @server
 * ("": from the server DHCP names). */
void nfsroot_line(const char *server, const char *client, int port, char *buf, size_t n);
/* Replace @name in directory @dir with @len bytes of @data (mode @mode)
 * through a temporary file and renameat(2): a symlink or other file at
 * @name is replaced, never followed or written through.  0 or -errno. */
int write_file_at(int dir, const char *name, const char *data, size_t len, mode_t mode);

#endif
