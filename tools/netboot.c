/* SPDX-License-Identifier: MIT */
/*
 * `cowroot netboot`: the u-boot script that boots a client from the server.
 *
 * Every value that goes into the script is checked against a strict
 * character set (a newline would start a command of its own), and the
 * files are written in DIR/CLIENT opened without following a symlink,
 * each through a temporary file and renameat(2): whoever can write in the
 * TFTP directory cannot make cowroot write anywhere else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cowroot.h"
#include "serve.h"

#define SCRIPT_MAX (64 * 1024) /* far more than the script mkimage makes of ours */

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* NULL if @v is 1 to @max bytes, each of ALNUM or @more, else why not */
static const char *bad_chars(const char *v, size_t max, const char *more, const char *why)
{
	size_t n = strlen(v), k = strspn(v, ALNUM);
	while (k < n && strchr(more, v[k]))
		k += 1 + strspn(v + k + 1, ALNUM);
	static char len_why[32];
	snprintf(len_why, sizeof(len_why), "1 to %zu bytes", max);
	if (n == 0 || n > max)
		return len_why;
	return k == n ? NULL : why;
}

/* A file below DIR/CLIENT as u-boot's tftpboot takes it: components of
 * A-Z a-z 0-9 . _ + - separated by single '/', none of them "." or "..". */
static const char *bad_file_name(const char *v)
{
	const char *why = bad_chars(v, 128, "._+-/", "only A-Z a-z 0-9 . _ + - and '/' between names");
	for (const char *p = v; !why;) {
		size_t k = strcspn(p, "/");
		if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.'))
			return "a path below the client's directory (no empty, '.' or '..' part)";
		if (!p[k])
			break;
		p += k + 1;
	}
	return why;
}

/* A console= value: "serial0,115200", "ttyS0,115200n8", "ttyAMA0" */
static const char *bad_console(const char *v)
{
	return bad_chars(v, 64, ",._:-", "only A-Z a-z 0-9 , . _ : -");
}

/* u-boot's serverip is an IPv4 address */
static const char *bad_server(const char *v)
{
	struct in_addr a;
	if (strlen(v) > 15 || strspn(v, "0123456789.") != strlen(v) || inet_pton(AF_INET, v, &a) != 1)
		return "an IPv4 address (a.b.c.d), as u-boot's serverip takes it";
	return NULL;
}

static bool bad_value(const char *option, const char *v, const char *why)
{
	if (!why)
		return false;
	char shown[80];
	shown_value(shown, sizeof(shown), v, strlen(v), 64);
	err("invalid %s '%s': %s", option, shown, why);
	return true;
}

/* Read all of the file @path (at most SCRIPT_MAX bytes) into @buf. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	for (;;) {
		ssize_t k = read(fd, buf + done, size - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		if (k == 0 || (done += (size_t)k) == size)
			break;
	}
	close(fd);
	return done == size ? -EFBIG : (ssize_t)done;
}

/* mkimage @script (of @len bytes) into @out (@size bytes), in a private
 * temporary directory: mkimage opens its output by name. */
static ssize_t compile(const char *client, bool arm64, const char *script, size_t len, char *out, size_t size)
{
	char dir[] = "/tmp/cowroot-netboot-XXXXXX", cmd[64], scr[64];
	if (!mkdtemp(dir))
		return -errno;
	snprintf(cmd, sizeof(cmd), "%s/boot.cmd", dir);
	snprintf(scr, sizeof(scr), "%s/boot.scr", dir);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ssize_t r = dfd < 0 ? -errno : write_file_at(dfd, "boot.cmd", script, len, 0600);
	if (r == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			if (null >= 0)
				dup2(null, 1); /* mkimage describes the image on stdout */
			execlp("mkimage", "mkimage", "-A", arm64 ? "arm64" : "arm", "-O", "linux", "-T", "script", "-C",
			       "none", "-n", client, "-d", cmd, scr, (char *)NULL);
			fprintf(stderr, "cowroot: cannot run mkimage (install u-boot-tools): %s\n", strerror(errno));
			_exit(127);
		}
		int status = 1;
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			r = -ECHILD;
		else
			r = read_small(scr, out, size);
	}
	unlink(cmd);
	unlink(scr);
	if (dfd >= 0)
		close(dfd);
	rmdir(dir);
	return r;
}

/* DIR/CLIENT, made if missing, opened as a directory and never through a
 * symlink (DIR itself is the admin's and may be one). */
static int open_client_dir(const char *tftp, const char *client)
{
	if (mkdir(tftp, 0755) < 0 && errno != EEXIST)
		return -errno;
	int dfd = open(tftp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (mkdirat(dfd, client, 0755) < 0 && errno != EEXIST) {
		int e = errno;
		close(dfd);
		return -e;
	}
	int cfd = openat(dfd, client, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	close(dfd);
	return cfd < 0 ? -e : cfd; /* a symlink: -ELOOP */
}

static int netboot_usage(void)
{
	fprintf(stderr, "usage: cowroot [--store DIR] netboot CLIENT --tftp-dir DIR [--server ADDR] [--port N]\n"
			"         [--kernel NAME] [--dtb NAME] [--arch arm64|arm] [--console TTY]\n"
			"Writes DIR/CLIENT/boot.scr (compiled with mkimage): u-boot loads NAME (default vmlinuz)\n"
			"and the device tree over TFTP and boots with the client's nfsroot line.\n"
			"  --server ADDR  this server's IPv4 address (default: the first of its interfaces)\n"
			"  --kernel NAME, --dtb NAME  files below DIR/CLIENT (A-Z a-z 0-9 . _ + - /)\n"
			"  --console TTY  the kernel's serial console (default serial0,115200)\n");
	return 2;
}

int cmd_netboot(int argc, char **argv)
{
	const char *client = NULL, *tftp = NULL, *server = NULL, *kernel = "vmlinuz", *dtb = NULL, *arch = "arm64",
		   *console = "serial0,115200", *port_arg = "2049";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tftp-dir") && i + 1 < argc)
			tftp = argv[++i];
		else if (!strcmp(argv[i], "--server") && i + 1 < argc)
			server = argv[++i];
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port_arg = argv[++i];
		else if (!strcmp(argv[i], "--kernel") && i + 1 < argc)
			kernel = argv[++i];
		else if (!strcmp(argv[i], "--dtb") && i + 1 < argc)
			dtb = argv[++i];
		else if (!strcmp(argv[i], "--arch") && i + 1 < argc)
			arch = argv[++i];
		else if (!strcmp(argv[i], "--console") && i + 1 < argc)
			console = argv[++i];
		else if (argv[i][0] != '-' && !client)
			client = argv[i];
		else
			return netboot_usage();
	}
	if (!client || !tftp || (strcmp(arch, "arm64") && strcmp(arch, "arm")))
		return netboot_usage();
	unsigned port = 0;
	if (bad_value("--port", port_arg, !parse_count(port_arg, 65535, &port) ? "a port number, 1 to 65535" : NULL) ||
	    bad_value("--kernel", kernel, bad_file_name(kernel)) ||
	    (dtb && bad_value("--dtb", dtb, bad_file_name(dtb))) ||
	    bad_value("--console", console, bad_console(console)) ||
	    (server && bad_value("--server", server, bad_server(server))) || bad_name("client", client))
		return 2;
	struct cow_store *st;
	struct cow_client_info info;
	int r = cow_store_open(store_dir, COW_STORE_READONLY, &st);
	if (r < 0) {
		err("cannot open store '%s': %s", store_dir, strerror(-r));
		return 1;
	}
	r = cow_client_get(st, client, &info);
	cow_store_close(st);
	if (r < 0) {
		err(r == -ENOENT ? "no client '%s' (see 'cowroot client list')" : "cannot read client '%s'", client);
		return 1;
	}
	char addr[INET6_ADDRSTRLEN], line[512];
	server_addr(server, addr, sizeof(addr));
	if (!server && !strcmp(addr, "SERVER")) {
		err("cannot tell this server's address; pass --server ADDR");
		return 1;
	}
	if (bad_value("server address", addr, bad_server(addr)))
		return 1;
	nfsroot_line(addr, client, port, line, sizeof(line));

	bool arm64 = !strcmp(arch, "arm64");
	char *script = NULL, *scr = malloc(SCRIPT_MAX);
	int n = asprintf(&script,
			 "# u-boot script for cowroot client %s, written by 'cowroot netboot'\n"
			 "setenv serverip %s\n"
			 "setenv bootargs \"console=%s console=tty1 %s rootwait\"\n"
			 "tftpboot ${kernel_addr_r} %s/%s\n"
			 "tftpboot ${fdt_addr_r} %s/%s\n"
			 "%s ${kernel_addr_r} - ${fdt_addr_r}\n",
			 client, addr, console, line, client, kernel, client, dtb ? dtb : "${fdtfile}",
			 arm64 ? "booti" : "bootz");
	if (n < 0 || !scr) {
		if (n >= 0)
			free(script);
		free(scr);
		err("out of memory");
		return 1;
	}
	ssize_t scr_len = compile(client, arm64, script, (size_t)n, scr, SCRIPT_MAX);
	if (scr_len < 0) {
		if (scr_len == -ECHILD)
			err("mkimage failed");
		else
			err("cannot compile the script: %s", strerror((int)-scr_len));
		free(script);
		free(scr);
		return 1;
	}
	int cfd = open_client_dir(tftp, client);
	if (cfd < 0) {
		if (cfd == -ELOOP || cfd == -ENOTDIR)
			err("'%s/%s' is not a directory (a symlink?): not writing through it", tftp, client);
		else
			err("cannot open '%s/%s': %s", tftp, client, strerror(-cfd));
		free(script);
		free(scr);
		return 1;
	}
	r = write_file_at(cfd, "boot.cmd", script, (size_t)n, 0644);
	if (r == 0)
		r = write_file_at(cfd, "boot.scr", scr, (size_t)scr_len, 0644);
	close(cfd);
	free(script);
	free(scr);
	if (r < 0) {
		err("cannot write '%s/%s/boot.cmd' and boot.scr: %s", tftp, client, strerror(-r));
		return 1;
	}
	printf("wrote %s/%s/boot.scr (from boot.cmd)\nput the kernel as %s/%s/%s and the device tree in %s/%s/\n", tftp,
	       client, tftp, client, kernel, tftp, client);
	return 0;
}
