/* SPDX-License-Identifier: MIT */
/*
 * syncwriter: the client of the power-loss test (powerloss.sh).
 *
 *   syncwriter MNT DIR N [COPYUP...]
 *	Under MNT/DIR (made if missing): N rounds of creating a file,
 *	writing it and making it durable, alternately with fsync and
 *	fdatasync; every third round also in a new directory, followed by
 *	an fsync of that directory; then, for each COPYUP (a path under MNT
 *	of a file of the image), an append and an fsync (a copy-up made
 *	durable).  For every sync that returned 0 prints one line
 *
 *	  KIND INO T0 T1 PATH
 *
 *	KIND fsync, fdatasync or fsyncdir; INO the file's inode number (the
 *	store's object id); T0 and T1 CLOCK_REALTIME in seconds just before
 *	the call and just after it returned (the acknowledgement); PATH
 *	relative to MNT.  Exits 1 at the first call that fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *mnt;

static void die(const char *what, const char *path)
{
	fprintf(stderr, "syncwriter: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sync @fd (open on @rel) the @kind way and log the acknowledgement. */
static void sync_logged(int fd, const char *kind, const char *rel)
{
	struct stat s;
	if (fstat(fd, &s) < 0)
		die("fstat", rel);
	double t0 = now();
	int r = !strcmp(kind, "fdatasync") ? fdatasync(fd) : fsync(fd);
	double t1 = now();
	if (r < 0)
		die(kind, rel);
	printf("%s %llu %.6f %.6f %s\n", kind, (unsigned long long)s.st_ino, t0, t1, rel);
	fflush(stdout);
}

static void write_all(int fd, const char *rel, size_t len, unsigned seed)
{
	char buf[4096];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(seed * 31 + i);
	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		ssize_t w = write(fd, buf, n);
		if (w <= 0)
			die("write", rel);
		len -= (size_t)w;
	}
}

static int open_rel(const char *rel, int flags)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open", path);
	return fd;
}

static void mkdir_rel(const char *rel)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die("mkdir", path);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: syncwriter MNT DIR N [COPYUP...]\n");
		return 2;
	}
	mnt = argv[1];
	const char *dir = argv[2];
	int n = atoi(argv[3]);
	char rel[640], sub[512];
	mkdir_rel(dir);
	for (int i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "%s/new%d", dir, i);
		int fd = open_rel(rel, O_WRONLY | O_CREAT | O_TRUNC);
		write_all(fd, rel, 5000 + 1000 * (size_t)i, (unsigned)i);
		sync_logged(fd, i % 2 ? "fdatasync" : "fsync", rel);
		close(fd);
		if (i % 3)
			continue;
		snprintf(sub, sizeof(sub), "%s/d%d", dir, i);
		mkdir_rel(sub);
		snprintf(rel, sizeof(rel), "%s/f", sub);
		fd = open_rel(rel, O_WRONLY | O_CREAT | O_TRUNC);
		write_all(fd, rel, 3000, (unsigned)i + 7);
		sync_logged(fd, "fsync", rel);
		close(fd);
		fd = open_rel(sub, O_RDONLY | O_DIRECTORY);
		sync_logged(fd, "fsyncdir", sub);
		close(fd);
	}
	for (int i = 4; i < argc; i++) {
		int fd = open_rel(argv[i], O_WRONLY | O_APPEND);
		write_all(fd, argv[i], 100, (unsigned)i);
		sync_logged(fd, "fsync", argv[i]);
		close(fd);
	}
	return 0;
}
