/* SPDX-License-Identifier: MIT */
/*
 * `cowroot tftp serve`: the TFTP front end on its own, serving one
 * directory, one client's root (its image and its layer, read-only, as
 * committed at the moment of each request), or the whole fleet's boot
 * files as `cowroot serve` does (boot.h) without NFS.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "bootfs.h"
#include "cli.h"
#include "cowroot.h"
#include "tftp.h"

/* ---- a directory ---- */

struct dir_source {
	int dirfd;
};

/* Open @path beneath @dirfd, never leaving it: openat2 RESOLVE_BENEATH
 * where the kernel has it (symlinks inside the tree work), else one
 * component at a time with O_NOFOLLOW (no symlink at all). */
static int open_beneath(int dirfd, const char *path)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd >= 0 ? (int)fd : -errno;
	char comp[TFTP_PATH_MAX + 1];
	int cur = dup(dirfd);
	if (cur < 0)
		return -errno;
	for (const char *p = path; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		memcpy(comp, p, n);
		comp[n] = 0;
		int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | (slash ? O_DIRECTORY : 0);
		int next = openat(cur, comp, flags);
		int e = errno;
		close(cur);
		if (next < 0)
			return e == ELOOP ? -EACCES : -e;
		cur = next;
		p += n + (slash != NULL);
	}
	return cur;
}

static int dir_resolve(void *arg, const struct tftp_peer *peer, const char *path, struct tftp_source *ret)
{
	struct dir_source *d = arg;
	struct stat stb;
	(void)peer;
	int fd = open_beneath(d->dirfd, path);
	if (fd < 0)
		return fd;
	if (fstat(fd, &stb) < 0 || !S_ISREG(stb.st_mode)) {
		close(fd);
		return S_ISDIR(stb.st_mode) ? -EISDIR : -EACCES;
	}
	ret->label[0] = 0;
	tftp_source_fd(ret, fd, stb.st_size);
	return 0;
}

/* ---- a client's root ---- */

struct client_source {
	struct cow_store *st;
	const char *client;
};

static int client_resolve(void *arg, const struct tftp_peer *peer, const char *path, struct tftp_source *ret)
{
	struct client_source *c = arg;
	struct root_file *rf;
	int64_t size;
	(void)peer;
	snprintf(ret->label, sizeof(ret->label), "%s", c->client);
	/* a view per request: the client's layer as committed now */
	int r = root_file_open(c->st, c->client, path, NULL, &rf, &size, NULL, 0);
	if (r == 0)
		boot_source_root(ret, rf, size);
	return r;
}

/* ---- the command ---- */

void tftp_log_line(void *arg, const char *line)
{
	(void)arg;
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", gmtime_r(&now, &tm));
	fprintf(stderr, "%s tftp: %s\n", ts, line);
	fflush(stderr);
}

int cmd_tftp_serve(int argc, char **argv)
{
	static const char usage[] =
	    "tftp serve (--root DIR | --client NAME | --boot [--nfs-port N] [--boot-gap S]) [--port N] "
	    "[--address ADDR] "
	    "[--max-transfers N] "
	    "[--max-per-peer N] [--max-blksize N] [--refusal-lines N]";
	static const struct option opts[] = {
	    {"root", required_argument, NULL, 'r'},
	    {"client", required_argument, NULL, 'c'},
	    {"port", required_argument, NULL, 'p'},
	    {"address", required_argument, NULL, 'a'},
	    {"max-transfers", required_argument, NULL, 't'},
	    {"max-per-peer", required_argument, NULL, 'P'},
	    {"max-blksize", required_argument, NULL, 'b'},
	    {"refusal-lines", required_argument, NULL, 'R'},
	    {"boot", no_argument, NULL, 'B'},
	    {"nfs-port", required_argument, NULL, 'n'},
	    {"boot-gap", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *root = NULL, *client = NULL;
	bool boot = false;
	unsigned nfs_port = 2049, boot_gap = 0;
	struct tftp_config cfg = {.port = 69};
	bool have_port = false;
	unsigned v;
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'r':
			root = optarg;
			break;
		case 'c':
			client = optarg;
			break;
		case 'p':
			if (!parse_count(optarg, 65535, &v))
				return usage_err(usage);
			cfg.port = (uint16_t)v;
			have_port = true;
			break;
		case 'a':
			cfg.address = optarg;
			break;
		case 't':
			if (!parse_count(optarg, 65536, &cfg.max_transfers))
				return usage_err(usage);
			break;
		case 'P':
			if (!parse_count(optarg, 65536, &cfg.max_per_peer))
				return usage_err(usage);
			break;
		case 'b':
			if (!parse_count(optarg, TFTP_BLKSIZE_MAX, &cfg.max_blksize) || cfg.max_blksize < 512)
				return usage_err(usage);
			break;
		case 'B':
			boot = true;
			break;
		case 'g':
			if (!parse_count(optarg, 86400, &boot_gap))
				return usage_err(usage);
			break;
		case 'n':
			if (!parse_count(optarg, 65535, &nfs_port))
				return usage_err(usage);
			break;
		case 'R':
			if (!parse_count(optarg, 1000000, &cfg.refusal_lines))
				return usage_err(usage);
			break;
		default:
			return usage_err(usage);
		}
	}
	if (optind != argc || (root != NULL) + (client != NULL) + boot != 1)
		return usage_err(usage);
	if (!have_port && geteuid() != 0) {
		err("port 69 is privileged: run as root or give --port N");
		return 2;
	}

	struct dir_source ds = {.dirfd = -1};
	struct client_source cs = {0};
	struct boot_server *bs = NULL;
	if (boot) {
		char abs[PATH_MAX];
		struct boot_config bc = {
		    .store = abs, .nfs_port = (int)nfs_port, .boot_gap = boot_gap, .log = tftp_log_line};
		int r = realpath(store_dir, abs) ? boot_server_open(&bc, &bs) : -errno;
		if (r < 0) {
			err("cannot open store '%s': %s", store_dir, strerror(-r));
			return 1;
		}
		cfg.resolve = boot_resolve;
		cfg.resolve_arg = bs;
	} else if (root) {
		ds.dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ds.dirfd < 0) {
			err("cannot open '%s': %s", root, strerror(errno));
			return 1;
		}
		cfg.resolve = dir_resolve;
		cfg.resolve_arg = &ds;
	} else {
		if (bad_name("client", client))
			return 1;
		if (open_store(COW_STORE_READONLY, &cs.st))
			return 1;
		struct cow_client_info ci;
		int r = cow_client_get(cs.st, client, &ci);
		if (r < 0) {
			err("client '%s': %s", client, r == -ENOENT ? "no such client" : store_why(cs.st, r));
			cow_store_close(cs.st);
			return 1;
		}
		cs.client = client;
		cfg.resolve = client_resolve;
		cfg.resolve_arg = &cs;
	}
	cfg.log = tftp_log_line;

	struct tftp_server *s;
	int r = tftp_server_open(&cfg, &s);
	if (r < 0) {
		err("cannot serve TFTP on %s port %u: %s", cfg.address ? cfg.address : "every address", cfg.port,
		    strerror(-r));
	} else {
		catch_interrupts();
		char line[200];
		snprintf(line, sizeof(line), "serving %s '%s' on port %u",
			 boot	? "the boot files of store"
			 : root ? "directory"
				: "client",
			 boot	? store_dir
			 : root ? root
				: client,
			 tftp_server_port(s));
		tftp_log_line(NULL, line);
		r = tftp_server_run(s, &interrupted);
		if (r < 0)
			err("tftp: %s", strerror(-r));
		tftp_server_free(s);
	}
	if (ds.dirfd >= 0)
		close(ds.dirfd);
	cow_store_close(cs.st);
	boot_server_close(bs);
	return r < 0 ? 1 : 0;
}
