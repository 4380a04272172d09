/* SPDX-License-Identifier: MIT */
/*
 * `cowroot tftp serve`: the TFTP front end on its own, serving one
 * directory or one client's root (its image and its layer, read-only, as
 * committed at the moment of each request).  The mapping of request
 * paths to clients by serial or MAC belongs to `cowroot serve`; this
 * command exercises the engine and the two sources.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

struct client_file {
	struct cow_view *v;
	struct cow_file *f;
};

static ssize_t client_read(void *arg, void *buf, size_t n, uint64_t off)
{
	struct client_file *cf = arg;
	size_t done = 0;
	while (done < n) {
		ssize_t r = cow_read(cf->f, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0)
			return r;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static void client_close(void *arg)
{
	struct client_file *cf = arg;
	uint64_t ino = cow_file_ino(cf->f);
	cow_release(cf->f);
	cow_forget(cf->v, ino, 1);
	cow_view_close(cf->v);
	free(cf);
}

static int client_resolve(void *arg, const struct tftp_peer *peer, const char *path, struct tftp_source *ret)
{
	struct client_source *c = arg;
	struct client_file *cf = calloc(1, sizeof(*cf));
	struct cow_attr a;
	(void)peer;
	snprintf(ret->label, sizeof(ret->label), "%s", c->client);
	if (!cf)
		return -ENOMEM;
	/* a view per request: it reads the client's layer as committed now,
	 * beside the process that holds it for writing (no write lock) */
	int r = cow_view_open(c->st, c->client, NULL, COW_VIEW_READONLY, &cf->v);
	if (r < 0) {
		free(cf);
		return r;
	}
	r = root_walk(cf->v, path, S_IFREG, &a, NULL, 0);
	if (r == 0) {
		r = cow_open(cf->v, a.ino, O_RDONLY, &cf->f);
		if (r < 0)
			cow_forget(cf->v, a.ino, 1);
	}
	if (r < 0) {
		cow_view_close(cf->v);
		free(cf);
		return r;
	}
	ret->size = a.size;
	ret->read = client_read;
	ret->close = client_close;
	ret->arg = cf;
	return 0;
}

/* ---- the command ---- */

static void log_line(void *arg, const char *line)
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
	    "tftp serve (--root DIR | --client NAME) [--port N] [--address ADDR] [--max-transfers N] "
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
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *root = NULL, *client = NULL;
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
		case 'R':
			if (!parse_count(optarg, 1000000, &cfg.refusal_lines))
				return usage_err(usage);
			break;
		default:
			return usage_err(usage);
		}
	}
	if (optind != argc || !root == !client)
		return usage_err(usage);
	if (!have_port && geteuid() != 0) {
		err("port 69 is privileged: run as root or give --port N");
		return 2;
	}

	struct dir_source ds = {.dirfd = -1};
	struct client_source cs = {0};
	if (root) {
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
	cfg.log = log_line;

	struct tftp_server *s;
	int r = tftp_server_open(&cfg, &s);
	if (r < 0) {
		err("cannot serve TFTP on %s port %u: %s", cfg.address ? cfg.address : "every address", cfg.port,
		    strerror(-r));
	} else {
		catch_interrupts();
		char line[200];
		snprintf(line, sizeof(line), "serving %s '%s' on port %u", root ? "directory" : "client",
			 root ? root : client, tftp_server_port(s));
		log_line(NULL, line);
		r = tftp_server_run(s, &interrupted);
		if (r < 0)
			err("tftp: %s", strerror(-r));
		tftp_server_free(s);
	}
	if (ds.dirfd >= 0)
		close(ds.dirfd);
	cow_store_close(cs.st);
	return r < 0 ? 1 : 0;
}
