/* SPDX-License-Identifier: MIT */
/*
 * fsops: the file-level steps of the benchmark workload, each run in one
 * process so that no fork per file is timed.
 *
 *   fsops mkfiles DIR N [SIZE]   create DIR and N files of SIZE bytes in it
 *   fsops rmfiles DIR N          unlink them and remove DIR
 *   fsops append1 LIST           append one byte to each file listed (copy-up)
 *   fsops chmod|chown|setxattr LIST   a metadata-only change on each file
 *   fsops install STAGE ROOT     move every file of STAGE into ROOT as dpkg
 *                                does: rename to NAME.dpkg-new, then over NAME
 *   fsops loglines FILE N        append N log lines to FILE, each by open,
 *                                one write and close (a service's log)
 *   fsops renames DIR N          N atomic rewrites of 20 small files in DIR
 *                                (write NAME.tmp, rename it over NAME)
 *   fsops unlink LIST            unlink each file listed
 *
 * Exit 0 when every step worked, 1 otherwise (the first errors are printed).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static long nerr;

static void err(const char *op, const char *path)
{
	if (nerr++ < 5)
		fprintf(stderr, "fsops %s '%s': %s\n", op, path, strerror(errno));
}

static char root[PATH_MAX], rroot[PATH_MAX], stage[PATH_MAX];
static long nmoved;

static int install_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)f;
	const char *rel = p + strlen(stage);
	char dst[PATH_MAX * 2], tmp[PATH_MAX * 2 + 16], par[PATH_MAX * 2], rp[PATH_MAX];
	if (!*rel)
		return 0;
	snprintf(dst, sizeof(dst), "%s%s", root, rel);
	if (type == FTW_D) {
		if (mkdir(dst, st->st_mode & 07777) && errno != EEXIST)
			err("mkdir", dst);
		return 0;
	}
	/* refuse to follow a symlink out of ROOT */
	snprintf(par, sizeof(par), "%s", dst);
	*strrchr(par, '/') = 0;
	if (!realpath(par, rp) || strncmp(rp, rroot, strlen(rroot))) {
		errno = EXDEV;
		err("escape", dst);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.dpkg-new", dst);
	if (rename(p, tmp)) {
		err("rename", p);
		return 0;
	}
	if (rename(tmp, dst)) {
		err("rename", dst);
		return 0;
	}
	nmoved++;
	return 0;
}

static int files(const char *cmd, const char *dir, long n, long size)
{
	char p[PATH_MAX];
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 1;
	memset(buf, 'x', size);
	if (cmd[0] == 'm' && mkdir(dir, 0755))
		err("mkdir", dir);
	for (long i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/f%06ld", dir, i);
		if (cmd[0] == 'r') {
			if (unlink(p))
				err("unlink", p);
			continue;
		}
		int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0) {
			err("create", p);
			continue;
		}
		if (write(fd, buf, size) != size)
			err("write", p);
		if (close(fd))
			err("close", p);
	}
	if (cmd[0] == 'r' && rmdir(dir))
		err("rmdir", dir);
	free(buf);
	return 0;
}

static int each(const char *cmd, const char *list)
{
	char p[PATH_MAX];
	FILE *f = fopen(list, "r");
	if (!f) {
		err("open", list);
		return 1;
	}
	while (fgets(p, sizeof(p), f)) {
		p[strcspn(p, "\n")] = 0;
		if (!strcmp(cmd, "append1")) {
			int fd = open(p, O_WRONLY | O_APPEND);
			if (fd < 0 || write(fd, "\n", 1) != 1)
				err("append", p);
			if (fd >= 0)
				close(fd);
		} else if (!strcmp(cmd, "chmod")) {
			if (chmod(p, 0600))
				err("chmod", p);
		} else if (!strcmp(cmd, "chown")) {
			if (lchown(p, 1000, 1000))
				err("chown", p);
		} else if (!strcmp(cmd, "unlink")) {
			if (unlink(p))
				err("unlink", p);
		} else if (!strcmp(cmd, "setxattr")) {
			if (lsetxattr(p, "user.bench", "1", 1, 0))
				err("setxattr", p);
		} else {
			fclose(f);
			return 2;
		}
	}
	fclose(f);
	return 0;
}

static int loglines(const char *path, long n)
{
	char line[160];
	for (long i = 0; i < n; i++) {
		int len = snprintf(
		    line, sizeof(line),
		    "Dec  4 05:%02ld:%02ld pi bench[%d]: message %ld of a service that logs a line at a time\n",
		    i / 60 % 60, i % 60, 4242, i);
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0640);
		if (fd < 0) {
			err("open", path);
			return 0;
		}
		if (write(fd, line, (size_t)len) != len)
			err("write", path);
		if (close(fd))
			err("close", path);
	}
	return 0;
}

static int renames(const char *dir, long n)
{
	char p[PATH_MAX], tmp[PATH_MAX + 8], body[128];
	if (mkdir(dir, 0755) && errno != EEXIST)
		err("mkdir", dir);
	for (long i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/conf%02ld", dir, i % 20);
		snprintf(tmp, sizeof(tmp), "%s.tmp", p);
		int len = snprintf(body, sizeof(body), "# written by bench\nkey=%ld\n", i);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			err("create", tmp);
			continue;
		}
		if (write(fd, body, (size_t)len) != len)
			err("write", tmp);
		if (close(fd))
			err("close", tmp);
		if (rename(tmp, p))
			err("rename", tmp);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int r;
	if (argc < 3)
		goto usage;
	const char *cmd = argv[1];
	if ((!strcmp(cmd, "mkfiles") || !strcmp(cmd, "rmfiles")) && argc >= 4) {
		r = files(cmd, argv[2], atol(argv[3]), argc > 4 ? atol(argv[4]) : 4096);
	} else if (!strcmp(cmd, "install") && argc == 4) {
		snprintf(stage, sizeof(stage), "%s", argv[2]);
		snprintf(root, sizeof(root), "%s", argv[3]);
		if (!realpath(root, rroot)) {
			err("realpath", root);
			return 1;
		}
		if (nftw(stage, install_one, 64, FTW_PHYS))
			err("nftw", stage);
		printf("moved %ld\n", nmoved);
		r = 0;
	} else if (!strcmp(cmd, "loglines") && argc == 4) {
		r = loglines(argv[2], atol(argv[3]));
	} else if (!strcmp(cmd, "renames") && argc == 4) {
		r = renames(argv[2], atol(argv[3]));
	} else {
		r = each(cmd, argv[2]);
	}
	if (r == 2)
		goto usage;
	if (nerr)
		fprintf(stderr, "fsops %s: %ld errors\n", cmd, nerr);
	return r || nerr ? 1 : 0;
usage:
	fprintf(stderr, "usage: fsops mkfiles|rmfiles DIR N [SIZE] | append1|chmod|chown|setxattr|unlink LIST | "
			"install STAGE ROOT | loglines FILE N | renames DIR N\n");
	return 2;
}
