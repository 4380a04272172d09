/* SPDX-License-Identifier: MIT */
/*
 * bootstorm: many NFSv3 clients booting at once, simulated with libnfs's
 * asynchronous API in one thread (bench/nfs.sh runs it; nothing here is a
 * test).
 *
 *   bootstorm [-q DEPTH] [-t SECONDS] LIST CLIENT...
 *
 * CLIENT is ADDR:EXPORT[:PREFIX]: mount EXPORT from ADDR (each client has
 * its own libnfs context, so its own connections; on a loopback alias the
 * connection also comes from ADDR), then run every step of LIST in order,
 * at most DEPTH (4) at a time, as a booting system's services do.  PREFIX
 * is put before the paths the client writes (a private write directory on
 * a shared export).  All clients start at once; a client has "booted" when
 * its last step completed.
 *
 * LIST has one step a line:
 *   s PATH        lstat (LOOKUP of each component, GETATTR)
 *   r PATH        open, read to the end in 128 KiB READs, close
 *   d PATH        list a directory (READDIRPLUS)
 *   w SIZE PATH   create or truncate, write SIZE bytes, COMMIT, close
 *
 * Prints one "client ADDR booted SECONDS" line per client, then
 * "METRIC NAME VALUE" lines: times to booted, throughput, and per-step
 * latency percentiles (a step is all the RPCs it needs, as libnfs sends
 * them: each path is looked up from the export's root, with no client
 * cache).  Exit 0 when every step of every client worked, 1 otherwise
 * (the first errors on stderr), 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#define READ_CHUNK (128 * 1024)
#define WRITE_MAX (1024 * 1024)

enum step_type { STEP_MOUNT, STEP_STAT, STEP_READ, STEP_LIST, STEP_WRITE, STEP_NTYPES };
static const char *const type_name[STEP_NTYPES] = {"mount", "stat", "read", "list", "write"};

struct step {
	enum step_type type;
	size_t size; /* STEP_WRITE */
	char *path;
};

struct client {
	struct nfs_context *nfs;
	char *addr, *export, *prefix;
	size_t next;  /* the next step of the list to start */
	int inflight; /* steps started, not completed */
	bool done;
	double booted; /* seconds from the start */
};

/* One step in flight. */
struct op {
	struct client *c;
	const struct step *s;
	double t0;
	struct nfsfh *fh;
	uint64_t off;
	char *path; /* the path sent (with the client's prefix) */
};

struct samples {
	double *v;
	size_t n, cap;
};

static struct step *steps;
static size_t nsteps;
static struct client *clients;
static int nclients, depth = 4, ndone;
static double t_start;
static struct samples lat[STEP_NTYPES];
static uint64_t bytes_read, bytes_written, nops, nerrors;
static char *wbuf;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_sample(struct samples *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v) {
			perror("bootstorm");
			exit(1);
		}
	}
	s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The @p-th percentile (nearest rank) of sorted @s. */
static double percentile(const struct samples *s, double p)
{
	if (!s->n)
		return 0;
	size_t k = (size_t)(p / 100 * (double)s->n + 0.999999);
	return s->v[k ? k - 1 : 0];
}

static void step_error(struct op *o, const char *what, const char *msg)
{
	if (nerrors++ < 10)
		fprintf(stderr, "bootstorm: %s: %s '%s': %s\n", o->c->addr, what, o->path ? o->path : "",
			msg ? msg : "error");
}

static void pump(struct client *c);

static void finish(struct op *o)
{
	struct client *c = o->c;
	add_sample(&lat[o->s->type], now() - o->t0);
	nops++;
	free(o->path);
	free(o);
	c->inflight--;
	pump(c);
}

static void close_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	(void)nfs;
	struct op *o = arg;
	if (status < 0)
		step_error(o, "close", data);
	finish(o);
}

static void close_and_finish(struct op *o)
{
	if (nfs_close_async(o->c->nfs, o->fh, close_cb, o) < 0) {
		step_error(o, "close", nfs_get_error(o->c->nfs));
		finish(o);
	}
}

static void read_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	struct op *o = arg;
	if (status < 0) {
		step_error(o, "read", data);
		close_and_finish(o);
		return;
	}
	bytes_read += (uint64_t)status;
	o->off += (uint64_t)status;
	if (status < READ_CHUNK) {
		close_and_finish(o);
		return;
	}
	if (nfs_pread_async(nfs, o->fh, o->off, READ_CHUNK, read_cb, o) < 0) {
		step_error(o, "read", nfs_get_error(nfs));
		close_and_finish(o);
	}
}

static void write_done_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	(void)nfs;
	struct op *o = arg;
	if (status < 0)
		step_error(o, "commit", data);
	close_and_finish(o);
}

static void write_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	struct op *o = arg;
	if (status <= 0) {
		step_error(o, "write", status < 0 ? data : "short write");
		close_and_finish(o);
		return;
	}
	bytes_written += (uint64_t)status;
	o->off += (uint64_t)status;
	int r = o->off < o->s->size ? nfs_pwrite_async(nfs, o->fh, o->off, o->s->size - o->off, wbuf, write_cb, o)
				    : nfs_fsync_async(nfs, o->fh, write_done_cb, o);
	if (r < 0) {
		step_error(o, "write", nfs_get_error(nfs));
		close_and_finish(o);
	}
}

static void open_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	struct op *o = arg;
	if (status < 0) {
		step_error(o, "open", data);
		finish(o);
		return;
	}
	o->fh = data;
	int r = o->s->type == STEP_READ ? nfs_pread_async(nfs, o->fh, 0, READ_CHUNK, read_cb, o)
					: nfs_pwrite_async(nfs, o->fh, 0, o->s->size, wbuf, write_cb, o);
	if (r < 0) {
		step_error(o, o->s->type == STEP_READ ? "read" : "write", nfs_get_error(nfs));
		close_and_finish(o);
	}
}

static void stat_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	(void)nfs;
	struct op *o = arg;
	if (status < 0)
		step_error(o, "stat", data);
	finish(o);
}

static void opendir_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	struct op *o = arg;
	if (status < 0) {
		step_error(o, "opendir", data);
	} else {
		struct nfsdir *d = data;
		while (nfs_readdir(nfs, d))
			;
		nfs_closedir(nfs, d);
	}
	finish(o);
}

static void start_step(struct client *c, const struct step *s)
{
	struct op *o = calloc(1, sizeof(*o));
	if (!o) {
		perror("bootstorm");
		exit(1);
	}
	o->c = c;
	o->s = s;
	o->t0 = now();
	bool prefixed = s->type == STEP_WRITE && c->prefix;
	if (asprintf(&o->path, "%s%s", prefixed ? c->prefix : "", s->path) < 0) {
		perror("bootstorm");
		exit(1);
	}
	c->inflight++;
	int r = -1;
	switch (s->type) {
	case STEP_STAT:
		r = nfs_lstat64_async(c->nfs, o->path, stat_cb, o);
		break;
	case STEP_READ:
		r = nfs_open_async(c->nfs, o->path, O_RDONLY, open_cb, o);
		break;
	case STEP_LIST:
		r = nfs_opendir_async(c->nfs, o->path, opendir_cb, o);
		break;
	case STEP_WRITE:
		r = nfs_open2_async(c->nfs, o->path, O_WRONLY | O_CREAT | O_TRUNC, 0644, open_cb, o);
		break;
	default:
		break;
	}
	if (r < 0) {
		step_error(o, type_name[s->type], nfs_get_error(c->nfs));
		finish(o);
	}
}

/* Start steps while the client has room; note when it has booted. */
static void pump(struct client *c)
{
	if (c->done)
		return;
	while (c->inflight < depth && c->next < nsteps)
		start_step(c, &steps[c->next++]);
	if (c->inflight == 0 && c->next == nsteps) {
		c->done = true;
		c->booted = now() - t_start;
		ndone++;
	}
}

static void mount_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	(void)nfs;
	struct client *c = arg;
	add_sample(&lat[STEP_MOUNT], now() - t_start);
	if (status < 0) {
		if (nerrors++ < 10)
			fprintf(stderr, "bootstorm: %s: mount '%s': %s\n", c->addr, c->export, (char *)data);
		c->done = true;
		c->booted = now() - t_start;
		ndone++;
		return;
	}
	pump(c);
}

static int load_list(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "bootstorm: cannot open '%s': %m\n", path);
		return -1;
	}
	char *line = NULL;
	size_t cap = 0, ln = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		ln++;
		if (line[len - 1] == '\n')
			line[--len] = 0;
		if (!len || line[0] == '#')
			continue;
		struct step s = {0};
		char *p = line + 2;
		switch (len > 2 && line[1] == ' ' ? line[0] : 0) {
		case 's':
			s.type = STEP_STAT;
			break;
		case 'r':
			s.type = STEP_READ;
			break;
		case 'd':
			s.type = STEP_LIST;
			break;
		case 'w':
			s.type = STEP_WRITE;
			s.size = strtoul(p, &p, 10);
			if (*p++ != ' ' || s.size == 0 || s.size > WRITE_MAX)
				s.type = STEP_MOUNT;
			break;
		default:
			s.type = STEP_MOUNT;
		}
		if (s.type == STEP_MOUNT || p[0] != '/') {
			fprintf(stderr, "bootstorm: %s:%zu: malformed step '%s'\n", path, ln, line);
			fclose(f);
			return -1;
		}
		struct step *v = realloc(steps, (nsteps + 1) * sizeof(*v));
		if (!v || !(s.path = strdup(p))) {
			perror("bootstorm");
			exit(1);
		}
		steps = v;
		steps[nsteps++] = s;
	}
	free(line);
	fclose(f);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: bootstorm [-q DEPTH] [-t SECONDS] LIST ADDR:EXPORT[:PREFIX]...\n");
	return 2;
}

static void report(double all)
{
	struct samples booted = {0}, every = {0};
	for (int i = 0; i < nclients; i++) {
		printf("client %s booted %.3f\n", clients[i].addr, clients[i].booted);
		add_sample(&booted, clients[i].booted);
	}
	qsort(booted.v, booted.n, sizeof(double), cmp_double);
	for (int t = 0; t < STEP_NTYPES; t++) {
		qsort(lat[t].v, lat[t].n, sizeof(double), cmp_double);
		for (size_t k = 0; t != STEP_MOUNT && k < lat[t].n; k++)
			add_sample(&every, lat[t].v[k]);
	}
	qsort(every.v, every.n, sizeof(double), cmp_double);
	printf("METRIC clients %d\n", nclients);
	printf("METRIC steps_per_client %zu\n", nsteps);
	printf("METRIC all_booted_s %.3f\n", all);
	printf("METRIC booted_p50_s %.3f\n", percentile(&booted, 50));
	printf("METRIC ops %llu\n", (unsigned long long)nops);
	printf("METRIC ops_per_s %.1f\n", all > 0 ? (double)nops / all : 0);
	printf("METRIC mb_per_s %.2f\n", all > 0 ? (double)(bytes_read + bytes_written) / 1e6 / all : 0);
	printf("METRIC bytes_read %llu\n", (unsigned long long)bytes_read);
	printf("METRIC bytes_written %llu\n", (unsigned long long)bytes_written);
	printf("METRIC lat_p50_ms %.3f\n", percentile(&every, 50) * 1e3);
	printf("METRIC lat_p99_ms %.3f\n", percentile(&every, 99) * 1e3);
	for (int t = 0; t < STEP_NTYPES; t++) {
		if (!lat[t].n)
			continue;
		printf("METRIC lat_p50_ms_%s %.3f\n", type_name[t], percentile(&lat[t], 50) * 1e3);
		printf("METRIC lat_p99_ms_%s %.3f\n", type_name[t], percentile(&lat[t], 99) * 1e3);
	}
	printf("METRIC errors %llu\n", (unsigned long long)nerrors);
	free(booted.v);
	free(every.v);
}

int main(int argc, char **argv)
{
	int opt;
	double timeout = 600;
	while ((opt = getopt(argc, argv, "q:t:")) != -1) {
		if (opt == 'q')
			depth = atoi(optarg);
		else if (opt == 't')
			timeout = atof(optarg);
		else
			return usage();
	}
	if (argc - optind < 2 || depth < 1 || timeout <= 0)
		return usage();
	if (load_list(argv[optind]) < 0)
		return 1;
	nclients = argc - optind - 1;
	clients = calloc((size_t)nclients, sizeof(*clients));
	struct pollfd *pfd = calloc((size_t)nclients, sizeof(*pfd));
	int *who = calloc((size_t)nclients, sizeof(*who));
	wbuf = malloc(WRITE_MAX);
	if (!clients || !pfd || !who || !wbuf) {
		perror("bootstorm");
		return 1;
	}
	memset(wbuf, 'b', WRITE_MAX);
	for (int i = 0; i < nclients; i++) {
		struct client *c = &clients[i];
		c->addr = argv[optind + 1 + i];
		char *colon = strchr(c->addr, ':');
		if (!colon || colon[1] != '/')
			return usage();
		*colon = 0;
		c->export = colon + 1;
		if ((colon = strchr(c->export, ':'))) {
			*colon = 0;
			c->prefix = colon + 1;
		}
		if (!(c->nfs = nfs_init_context())) {
			fprintf(stderr, "bootstorm: cannot create an NFS context\n");
			return 1;
		}
		nfs_set_version(c->nfs, 3);
	}

	t_start = now();
	for (int i = 0; i < nclients; i++) {
		struct client *c = &clients[i];
		if (nfs_mount_async(c->nfs, c->addr, c->export, mount_cb, c) < 0) {
			fprintf(stderr, "bootstorm: %s: mount: %s\n", c->addr, nfs_get_error(c->nfs));
			nerrors++;
			c->done = true;
			ndone++;
		}
	}
	while (ndone < nclients) {
		if (now() - t_start > timeout) {
			fprintf(stderr, "bootstorm: %d of %d clients not booted after %.0f s\n", nclients - ndone,
				nclients, timeout);
			return 1;
		}
		int k = 0;
		for (int i = 0; i < nclients; i++) {
			if (clients[i].done)
				continue;
			pfd[k].fd = nfs_get_fd(clients[i].nfs);
			pfd[k].events = (short)nfs_which_events(clients[i].nfs);
			pfd[k].revents = 0;
			who[k++] = i;
		}
		if (poll(pfd, (nfds_t)k, 100) < 0 && errno != EINTR) {
			perror("bootstorm: poll");
			return 1;
		}
		for (int j = 0; j < k; j++) {
			struct client *c = &clients[who[j]];
			if (c->done || !pfd[j].revents)
				continue;
			if (nfs_service(c->nfs, pfd[j].revents) < 0) {
				if (nerrors++ < 10)
					fprintf(stderr, "bootstorm: %s: %s\n", c->addr, nfs_get_error(c->nfs));
				c->done = true;
				c->booted = now() - t_start;
				ndone++;
			}
		}
	}
	double all = now() - t_start;
	report(all);
	for (int i = 0; i < nclients; i++)
		nfs_destroy_context(clients[i].nfs);
	return nerrors ? 1 : 0;
}
