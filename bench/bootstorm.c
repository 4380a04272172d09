/* SPDX-License-Identifier: MIT */
/*
 * bootstorm: many NFSv3 clients booting at once, simulated with libnfs's
 * asynchronous API in one thread (bench/nfs.sh runs it; nothing here is a
 * test).
 *
 *   bootstorm [-q DEPTH] [-t SECONDS] [-T FILE[=SIZE],... [-P PORT] [-F SECONDS]] LIST CLIENT...
 *
 * CLIENT is ADDR:EXPORT[:PREFIX]: mount EXPORT from ADDR (each client has
 * its own libnfs context, so its own connections; on a loopback alias the
 * connection also comes from ADDR), then run every step of LIST in order,
 * at most DEPTH (4) at a time, as a booting system's services do.  PREFIX
 * is put before the paths the client writes (a private write directory on
 * a shared export).  All clients start at once; a client has "booted" when
 * its last step completed.
 *
 * With -T, each client first fetches FILEs over TFTP from ADDR port PORT
 * (69), one after the other, as a netbooting Pi fetches its kernel and
 * initramfs, and mounts only when all have come: the TFTP client u-boot
 * and the Pi boot ROM are (RFC 1350 with the options of RFC 2347-2349:
 * blksize 1468 and tsize asked for, windowsize 1, lock-step), on a UDP
 * socket bound to ADDR (so the server sees the client's own address), a
 * fresh one (a new port, a new transfer ID) per file.  Every DATA is
 * ACKed; the last packet sent goes again after 1 s without progress; a
 * file fails after 10 retransmissions of one packet or 30 s (-F: the Pi 4
 * bootloader's TFTP_FILE_TIMEOUT; 0: none, as u-boot, which only counts
 * retransmissions), or when its size is not the tsize (or SIZE) -- a failed
 * file is a failed boot, and that client does not mount.  An ERROR reply of "file not found" or
 * "access violation" fails the file at once; any other (a busy server's
 * "try again") starts the file again after 1 s, within its 30 s, as
 * u-boot's "Starting again" does.
 *
 * LIST has one step a line:
 *   s PATH        lstat (LOOKUP of each component, GETATTR)
 *   r PATH        open, read to the end in 128 KiB READs, close
 *   d PATH        list a directory (READDIRPLUS)
 *   w SIZE PATH   create or truncate, write SIZE bytes, COMMIT, close
 *
 * Prints one "client ADDR booted SECONDS" line per client (with -T, then
 * "tftp SECONDS", when its last file came), then "METRIC NAME VALUE"
 * lines: times to booted, throughput, and per-step latency percentiles (a
 * step is all the RPCs it needs, as libnfs sends them: each path is looked
 * up from the export's root, with no client cache); with -T, TFTP time
 * percentiles per file, throughput, retransmissions and failures.  The
 * NFS throughputs are over the time from the first mount to the end.
 * Exit 0 when every step of every client worked, 1 otherwise (the first
 * errors on stderr), 2 on usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

/* TFTP, as u-boot and the Pi boot ROM do it */
#define TFTP_BLKSIZE 1468 /* asked for: an Ethernet frame's worth */
#define TFTP_RESEND_S 1.0 /* without progress, the last packet goes again */
#define TFTP_RESENDS 10	  /* of one packet, then the file fails */
#define TFTP_FILE_S 30.0  /* for one file, then it fails (-F) */
#define TFTP_FILES_MAX 16
#define TFTP_PKT_MAX (4 + 65464)
enum { TFTP_RRQ = 1, TFTP_DATA = 3, TFTP_ACK = 4, TFTP_ERROR = 5, TFTP_OACK = 6 };

struct tftp_file {
	char *name;
	int64_t size; /* expected (=SIZE), -1 if not given */
};

/* A client's TFTP transfer in progress. */
struct tftp {
	int fd;	       /* bound to the client's address; -1 between files */
	size_t file;   /* the index in tfiles */
	bool locked;   /* the server's transfer ID (its port) is known: tid */
	bool started;  /* an OACK or the first DATA came */
	in_port_t tid; /* network order */
	unsigned blksize;
	int64_t tsize;	  /* -1: the server sent none */
	uint16_t expect;  /* the next DATA block, modulo 65536 */
	uint64_t got;	  /* bytes received */
	uint8_t pkt[600]; /* the last packet sent, for a retransmission */
	size_t pktlen;
	in_port_t pktport; /* where it went (network order) */
	unsigned resends;  /* of that packet */
	double t0;	   /* the file's first RRQ */
	double sent;	   /* the last send (or progress) */
	double restart_at; /* > 0: start the file again then (after an ERROR) */
};

struct client {
	struct nfs_context *nfs;
	char *addr, *export, *prefix;
	struct sockaddr_in sin; /* ADDR, for TFTP */
	size_t next;		/* the next step of the list to start */
	int inflight;		/* steps started, not completed */
	bool done, failed;
	bool in_tftp; /* fetching its files, not mounted yet */
	struct tftp tf;
	double tftp_done; /* seconds from the start to its last file; 0: not (yet) all came */
	double mount_t0;  /* when its mount began */
	double booted;	  /* seconds from the start */
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
static double first_mount = -1; /* seconds from the start */

static struct tftp_file tfiles[TFTP_FILES_MAX];
static size_t ntfiles;
static uint16_t tftp_port = 69;
static double tftp_file_s = TFTP_FILE_S; /* 0: no limit */
static struct samples tftp_lat[TFTP_FILES_MAX], tftp_every;
static uint64_t tftp_bytes, tftp_resends, tftp_dups, tftp_errors, tftp_restarts, tftp_failures;
static uint8_t tftp_rx[TFTP_PKT_MAX];
/* The clients' TFTP sockets, in one epoll set polled as one fd: a wake-up
 * costs what is ready, not every client (lock-step packets trickle in). */
static int tftp_epfd = -1;
static int ntftp; /* clients in TFTP */

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

/* Client @c will not boot. */
static void client_fail(struct client *c)
{
	c->done = c->failed = true;
	c->booted = now() - t_start;
	ndone++;
}

static void mount_cb(int status, struct nfs_context *nfs, void *data, void *arg)
{
	(void)nfs;
	struct client *c = arg;
	add_sample(&lat[STEP_MOUNT], now() - c->mount_t0);
	if (status < 0) {
		if (nerrors++ < 10)
			fprintf(stderr, "bootstorm: %s: mount '%s': %s\n", c->addr, c->export, (char *)data);
		client_fail(c);
		return;
	}
	pump(c);
}

static void start_mount(struct client *c)
{
	c->mount_t0 = now();
	if (first_mount < 0)
		first_mount = c->mount_t0 - t_start;
	if (nfs_mount_async(c->nfs, c->addr, c->export, mount_cb, c) < 0) {
		fprintf(stderr, "bootstorm: %s: mount: %s\n", c->addr, nfs_get_error(c->nfs));
		nerrors++;
		client_fail(c);
	}
}

/* ---- TFTP ---- */

static void tftp_close(struct tftp *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

/* The client's boot fails on its current file. */
static void tftp_fail(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tftp_fail(struct client *c, const char *fmt, ...)
{
	if (nerrors++ < 10) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stderr, "bootstorm: %s: tftp '%s': ", c->addr, tfiles[c->tf.file].name);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	tftp_failures++;
	tftp_close(&c->tf);
	c->in_tftp = false;
	ntftp--;
	client_fail(c);
}

/* Send t->pkt to the server's port @port (network order), from the client's socket. */
static void tftp_send(struct client *c, in_port_t port)
{
	struct tftp *t = &c->tf;
	struct sockaddr_in to = c->sin;
	to.sin_port = port;
	t->pktport = port;
	t->sent = now();
	/* a send that fails is a packet lost: the timer sends it again */
	(void)sendto(t->fd, t->pkt, t->pktlen, 0, (struct sockaddr *)&to, sizeof(to));
}

static void tftp_ack(struct client *c, uint16_t block)
{
	struct tftp *t = &c->tf;
	t->pkt[0] = 0;
	t->pkt[1] = TFTP_ACK;
	t->pkt[2] = (uint8_t)(block >> 8);
	t->pkt[3] = (uint8_t)block;
	t->pktlen = 4;
	t->resends = 0;
	tftp_send(c, t->tid);
}

/* An ERROR packet to a stranger (RFC 1350: a packet of another transfer ID). */
static void tftp_stranger(struct client *c, const struct sockaddr_in *from)
{
	static const uint8_t err[] = {0,   TFTP_ERROR, 0,   5,	 'u', 'n', 'k', 'n', 'o', 'w', 'n', ' ',
				      't', 'r',	       'a', 'n', 's', 'f', 'e', 'r', ' ', 'I', 'D', 0};
	(void)sendto(c->tf.fd, err, sizeof(err), 0, (const struct sockaddr *)from, sizeof(*from));
}

/* Start (or start again) the current file: a fresh socket, an RRQ. */
static void tftp_begin(struct client *c)
{
	struct tftp *t = &c->tf;
	const char *name = tfiles[t->file].name;
	tftp_close(t);
	t->restart_at = 0;
	t->locked = t->started = false;
	t->blksize = 512;
	t->tsize = -1;
	t->expect = 1;
	t->got = 0;
	t->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in me = c->sin;
	me.sin_port = 0;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (t->fd < 0 || bind(t->fd, (struct sockaddr *)&me, sizeof(me)) < 0 ||
	    epoll_ctl(tftp_epfd, EPOLL_CTL_ADD, t->fd, &ev) < 0) {
		tftp_fail(c, "cannot open a socket on %s: %s", c->addr, strerror(errno));
		return;
	}
	int n = snprintf((char *)t->pkt + 2, sizeof(t->pkt) - 2, "%s%coctet%cblksize%c%d%ctsize%c0", name, 0, 0, 0,
			 TFTP_BLKSIZE, 0, 0);
	t->pkt[0] = 0;
	t->pkt[1] = TFTP_RRQ;
	t->pktlen = 2 + (size_t)n + 1;
	t->resends = 0;
	tftp_send(c, htons(tftp_port));
}

static void tftp_start_file(struct client *c, size_t file)
{
	c->tf.file = file;
	c->tf.t0 = now();
	tftp_begin(c);
}

static void tftp_file_done(struct client *c)
{
	struct tftp *t = &c->tf;
	const struct tftp_file *f = &tfiles[t->file];
	double took = now() - t->t0;
	tftp_close(t);
	if (t->tsize >= 0 && t->got != (uint64_t)t->tsize) {
		tftp_fail(c, "received %llu bytes, the server's tsize said %lld", (unsigned long long)t->got,
			  (long long)t->tsize);
		return;
	}
	if (f->size >= 0 && t->got != (uint64_t)f->size) {
		tftp_fail(c, "received %llu bytes, expected %lld", (unsigned long long)t->got, (long long)f->size);
		return;
	}
	add_sample(&tftp_lat[t->file], took);
	add_sample(&tftp_every, took);
	tftp_bytes += t->got;
	if (t->file + 1 < ntfiles) {
		tftp_start_file(c, t->file + 1);
		return;
	}
	c->in_tftp = false;
	ntftp--;
	c->tftp_done = now() - t_start;
	start_mount(c);
}

/* The OACK's options: blksize and tsize (what was asked for), else an error. */
static int tftp_oack(struct tftp *t, const uint8_t *p, size_t len)
{
	const char *s = (const char *)p, *end = (const char *)p + len;
	if (len == 0 || p[len - 1] != 0)
		return -1;
	while (s < end) {
		const char *name = s, *val = s + strlen(s) + 1;
		if (val >= end)
			return -1;
		s = val + strlen(val) + 1;
		char *e;
		unsigned long long v = strtoull(val, &e, 10);
		if (*e || !*val)
			return -1;
		if (!strcasecmp(name, "blksize")) {
			if (v < 8 || v > TFTP_BLKSIZE)
				return -1;
			t->blksize = (unsigned)v;
		} else if (!strcasecmp(name, "tsize")) {
			t->tsize = (int64_t)v;
		} else {
			return -1; /* not asked for */
		}
	}
	return 0;
}

/* What came on the client's socket. */
static void tftp_input(struct client *c)
{
	struct tftp *t = &c->tf;
	/* one packet: in lock-step the next cannot be there yet (and if it
	 * is, epoll says so again) */
	if (c->in_tftp && t->fd >= 0) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(t->fd, tftp_rx, sizeof(tftp_rx), 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		if (n < 4 || from.sin_family != AF_INET || from.sin_addr.s_addr != c->sin.sin_addr.s_addr)
			return;
		if (!t->locked) {
			t->locked = true;
			t->tid = from.sin_port;
		} else if (from.sin_port != t->tid) {
			if ((tftp_rx[0] << 8 | tftp_rx[1]) != TFTP_ERROR)
				tftp_stranger(c, &from);
			return;
		}
		int op = tftp_rx[0] << 8 | tftp_rx[1];
		uint16_t num = (uint16_t)(tftp_rx[2] << 8 | tftp_rx[3]);
		switch (op) {
		case TFTP_OACK:
			if (t->started && t->expect != 1)
				break; /* a late duplicate */
			if (!t->started && tftp_oack(t, tftp_rx + 2, (size_t)n - 2) < 0) {
				tftp_fail(c, "bad OACK");
				return;
			}
			t->started = true;
			tftp_ack(c, 0); /* again if ours was lost */
			break;
		case TFTP_DATA:
			if (num == t->expect) {
				size_t k = (size_t)n - 4;
				t->started = true;
				t->got += k;
				if (k > t->blksize) {
					tftp_fail(c, "a block of %zu bytes, blksize %u", k, t->blksize);
					return;
				}
				tftp_ack(c, num);
				t->expect++;
				if (k < t->blksize) {
					tftp_file_done(c);
					return;
				}
			} else if (num == (uint16_t)(t->expect - 1)) {
				tftp_dups++; /* the server sent it again: our ACK was lost or late */
				tftp_ack(c, num);
			}
			break;
		case TFTP_ERROR: {
			char msg[128];
			snprintf(msg, sizeof(msg), "%.*s", (int)(n - 4), (const char *)tftp_rx + 4);
			tftp_errors++;
			if (num == 1 || num == 2) {
				tftp_fail(c, "error %u: %s", num, msg);
				return;
			}
			if (tftp_errors <= 10)
				fprintf(stderr, "bootstorm: %s: tftp '%s': error %u: %s (starting again)\n", c->addr,
					tfiles[t->file].name, num, msg);
			tftp_close(t);
			t->restart_at = now() + TFTP_RESEND_S;
			return;
		}
		default:
			break;
		}
	}
}

/* Retransmissions and limits of a client in TFTP, at @t_now. */
static void tftp_timers(struct client *c, double t_now)
{
	struct tftp *t = &c->tf;
	if (tftp_file_s > 0 && t_now - t->t0 > tftp_file_s) {
		tftp_fail(c, "not received in %.0f s (%llu bytes came)", tftp_file_s, (unsigned long long)t->got);
		return;
	}
	if (t->restart_at > 0) {
		if (t_now >= t->restart_at) {
			tftp_restarts++;
			tftp_begin(c);
		}
		return;
	}
	if (t->fd < 0 || t_now - t->sent < TFTP_RESEND_S)
		return;
	if (t->resends == TFTP_RESENDS) {
		tftp_fail(c, "no reply after %d retransmissions (%llu bytes came)", TFTP_RESENDS,
			  (unsigned long long)t->got);
		return;
	}
	t->resends++;
	tftp_resends++;
	tftp_send(c, t->pktport);
}

/* -T FILE[=SIZE],...: 0 or -1 */
static int parse_files(char *arg)
{
	for (char *f = strtok(arg, ","); f; f = strtok(NULL, ",")) {
		if (ntfiles == TFTP_FILES_MAX || !*f)
			return -1;
		struct tftp_file *t = &tfiles[ntfiles++];
		t->size = -1;
		char *eq = strchr(f, '=');
		if (eq) {
			char *e;
			*eq = 0;
			t->size = strtoll(eq + 1, &e, 10);
			if (*e || t->size < 0 || eq[1] == 0)
				return -1;
		}
		if (strlen(f) > 400 || !*f)
			return -1;
		t->name = f;
	}
	return ntfiles ? 0 : -1;
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
	fprintf(stderr, "usage: bootstorm [-q DEPTH] [-t SECONDS] [-T FILE[=SIZE],... [-P PORT] [-F SECONDS]] LIST "
			"ADDR:EXPORT[:PREFIX]...\n");
	return 2;
}

static void report_tftp(void)
{
	struct samples done = {0};
	int failed = 0;
	for (int i = 0; i < nclients; i++) {
		if (clients[i].tftp_done > 0)
			add_sample(&done, clients[i].tftp_done);
		failed += clients[i].failed;
	}
	qsort(done.v, done.n, sizeof(double), cmp_double);
	qsort(tftp_every.v, tftp_every.n, sizeof(double), cmp_double);
	/* times and rates only of what completed: none is not 0 s */
	double span = done.n ? done.v[done.n - 1] : 0;
	printf("METRIC tftp_files_per_client %zu\n", ntfiles);
	printf("METRIC tftp_bytes %llu\n", (unsigned long long)tftp_bytes);
	if (done.n) {
		printf("METRIC tftp_all_done_s %.3f\n", span); /* of those whose files all came */
		printf("METRIC tftp_done_p50_s %.3f\n", percentile(&done, 50));
		printf("METRIC tftp_mb_per_s %.2f\n", span > 0 ? (double)tftp_bytes / 1e6 / span : 0);
	}
	static const double pc[] = {50, 90, 99, 100};
	static const char *const pn[] = {"p50", "p90", "p99", "max"};
	for (size_t p = 0; p < 4 && tftp_every.n; p++)
		printf("METRIC tftp_%s_s %.3f\n", pn[p], percentile(&tftp_every, pc[p]));
	for (size_t f = 0; f < ntfiles; f++) {
		qsort(tftp_lat[f].v, tftp_lat[f].n, sizeof(double), cmp_double);
		for (size_t p = 0; p < 4 && tftp_lat[f].n; p++)
			printf("METRIC tftp_%s_s_f%zu %.3f\n", pn[p], f + 1, percentile(&tftp_lat[f], pc[p]));
	}
	printf("METRIC tftp_fetches_done %zu\n", tftp_every.n); /* of clients x files */
	printf("METRIC tftp_retransmissions %llu\n", (unsigned long long)tftp_resends);
	printf("METRIC tftp_server_resends %llu\n", (unsigned long long)tftp_dups);
	printf("METRIC tftp_error_replies %llu\n", (unsigned long long)tftp_errors);
	printf("METRIC tftp_restarts %llu\n", (unsigned long long)tftp_restarts);
	printf("METRIC tftp_failures %llu\n", (unsigned long long)tftp_failures);
	printf("METRIC failed_clients %d\n", failed);
	free(done.v);
}

static void report(double all)
{
	struct samples booted = {0}, every = {0};
	for (int i = 0; i < nclients; i++) {
		if (ntfiles)
			printf("client %s booted %.3f tftp %.3f%s\n", clients[i].addr, clients[i].booted,
			       clients[i].tftp_done, clients[i].failed ? " FAILED" : "");
		else
			printf("client %s booted %.3f\n", clients[i].addr, clients[i].booted);
		add_sample(&booted, clients[i].booted);
	}
	/* NFS throughput: from the first mount on (the start, without TFTP) */
	double nfs_span = first_mount < 0 ? all : all - first_mount;
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
	printf("METRIC ops_per_s %.1f\n", nfs_span > 0 ? (double)nops / nfs_span : 0);
	printf("METRIC mb_per_s %.2f\n", nfs_span > 0 ? (double)(bytes_read + bytes_written) / 1e6 / nfs_span : 0);
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
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	/* this simulator's CPU: near all_booted_s, it is what limits the run */
	printf("METRIC client_cpu_s %.2f\n", (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
						 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	if (ntfiles)
		report_tftp();
	free(booted.v);
	free(every.v);
}

int main(int argc, char **argv)
{
	int opt;
	double timeout = 600;
	long port = 69;
	while ((opt = getopt(argc, argv, "q:t:T:P:F:")) != -1) {
		if (opt == 'q')
			depth = atoi(optarg);
		else if (opt == 't')
			timeout = atof(optarg);
		else if (opt == 'T') {
			if (parse_files(optarg) < 0)
				return usage();
		} else if (opt == 'P')
			port = strtol(optarg, NULL, 10);
		else if (opt == 'F')
			tftp_file_s = atof(optarg);
		else
			return usage();
	}
	if (argc - optind < 2 || depth < 1 || timeout <= 0 || port < 1 || port > 65535 || tftp_file_s < 0)
		return usage();
	tftp_port = (uint16_t)port;
	if (load_list(argv[optind]) < 0)
		return 1;
	nclients = argc - optind - 1;
	clients = calloc((size_t)nclients, sizeof(*clients));
	int *who = calloc((size_t)nclients + 1, sizeof(*who));
	wbuf = malloc(WRITE_MAX);
	if (!clients || !who || !wbuf) {
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
		c->tf.fd = -1;
		c->sin.sin_family = AF_INET;
		if (ntfiles && inet_pton(AF_INET, c->addr, &c->sin.sin_addr) != 1) {
			fprintf(stderr, "bootstorm: '%s': TFTP needs an IPv4 address\n", c->addr);
			return 2;
		}
		if (!(c->nfs = nfs_init_context())) {
			fprintf(stderr, "bootstorm: cannot create an NFS context\n");
			return 1;
		}
		nfs_set_version(c->nfs, 3);
	}

	if (ntfiles && (tftp_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("bootstorm: epoll");
		return 1;
	}
	struct epoll_event *evs = calloc((size_t)nclients, sizeof(*evs));
	struct pollfd *pfd = calloc((size_t)nclients + 1, sizeof(*pfd));
	if (!evs || !pfd) {
		perror("bootstorm");
		return 1;
	}
	double timers_at = 0;
	t_start = now();
	for (int i = 0; i < nclients; i++) {
		struct client *c = &clients[i];
		if (ntfiles) {
			ntftp++;
			c->in_tftp = true;
			tftp_start_file(c, 0);
		} else {
			start_mount(c);
		}
	}
	while (ndone < nclients) {
		if (now() - t_start > timeout) {
			fprintf(stderr, "bootstorm: %d of %d clients not booted after %.0f s\n", nclients - ndone,
				nclients, timeout);
			return 1;
		}
		int k = 0;
		if (ntftp) {
			pfd[k].fd = tftp_epfd;
			pfd[k].events = POLLIN;
			pfd[k].revents = 0;
			who[k++] = -1;
		}
		for (int i = 0; i < nclients; i++) {
			if (clients[i].done || clients[i].in_tftp)
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
			if (!pfd[j].revents)
				continue;
			if (who[j] < 0) {
				int ne = epoll_wait(tftp_epfd, evs, nclients, 0);
				for (int e = 0; e < ne; e++)
					tftp_input(evs[e].data.ptr);
				continue;
			}
			struct client *c = &clients[who[j]];
			if (c->done || c->in_tftp)
				continue;
			if (nfs_service(c->nfs, pfd[j].revents) < 0) {
				if (nerrors++ < 10)
					fprintf(stderr, "bootstorm: %s: %s\n", c->addr, nfs_get_error(c->nfs));
				client_fail(c);
			}
		}
		double t_now = now();
		if (ntftp && t_now >= timers_at) {
			/* every 50 ms: retransmissions are due 1 s after a send */
			timers_at = t_now + 0.05;
			for (int i = 0; i < nclients; i++)
				if (clients[i].in_tftp && !clients[i].done)
					tftp_timers(&clients[i], t_now);
		}
	}
	double all = now() - t_start;
	report(all);
	for (int i = 0; i < nclients; i++)
		nfs_destroy_context(clients[i].nfs);
	return nerrors ? 1 : 0;
}
