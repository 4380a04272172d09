/* SPDX-License-Identifier: MIT */
/*
 * The TFTP front end: a read-only TFTP server (RFC 1350, octet and
 * netascii modes) with option negotiation (RFC 2347), blksize (RFC 2348),
 * tsize and timeout (RFC 2349) and windowsize (RFC 7440), for IPv4 and
 * IPv6.  One thread, one epoll loop, one non-blocking UDP socket per
 * transfer on an ephemeral port.
 *
 * What a request may read is decided by a resolver alone: the engine
 * parses and normalises the request (bounded, hostile input), then hands
 * (peer, normalised path) to the resolver, which returns an open source or
 * an errno.  Nothing else is ever read.  The engine reports through a log
 * callback, one line per refused request and per finished transfer.
 */
#ifndef COWROOT_TFTP_H
#define COWROOT_TFTP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define TFTP_PATH_MAX 255     /* longest normalised path, bytes */
#define TFTP_REQUEST_MAX 1024 /* longest request packet accepted (RFC 1350's 512 plus options) */
#define TFTP_OPTIONS_MAX 16   /* option pairs in one request */
#define TFTP_BLKSIZE_MIN 8
#define TFTP_BLKSIZE_MAX 65464
#define TFTP_WINDOW_MAX 64 /* largest windowsize granted */
#define TFTP_LABEL_MAX 128 /* a client name (COW_ENTITY_NAME_MAX) fits */
#define TFTP_WHY_MAX 256
/* Refusal lines logged per peer address per minute, and in all, by
 * default: the rest are counted and the count logged once the minute is
 * over. */
#define TFTP_REFUSALS_PER_PEER 5
#define TFTP_REFUSALS_PER_MINUTE 60

enum {
	TFTP_RRQ = 1,
	TFTP_WRQ = 2,
	TFTP_DATA = 3,
	TFTP_ACK = 4,
	TFTP_ERROR = 5,
	TFTP_OACK = 6,
};

/* ERROR codes (RFC 1350, 2347) */
enum {
	TFTP_EUNDEF = 0,
	TFTP_ENOTFOUND = 1,
	TFTP_EACCESS = 2,
	TFTP_ENOSPACE = 3,
	TFTP_EBADOP = 4,
	TFTP_EBADID = 5,
	TFTP_EEXISTS = 6,
	TFTP_ENOUSER = 7,
	TFTP_EOPTNEG = 8,
};

/* A parsed request.  The strings point into the packet given to
 * tftp_parse_request (which must stay alive). */
struct tftp_request {
	int opcode; /* TFTP_RRQ or TFTP_WRQ */
	const char *filename;
	bool netascii; /* mode netascii (else octet) */
	/* options asked for; 0 when absent or unusable (ignored, as RFC 2347
	 * lets a server ignore what it does not grant) */
	unsigned blksize;
	unsigned timeout; /* seconds, 1..255 */
	unsigned windowsize;
	bool tsize; /* tsize asked for */
};

/* Parse request packet @pkt of @len bytes.  Returns 0, or -EBADMSG
 * (malformed: too short or long, a field not NUL-terminated, an empty
 * file name, options not in pairs or too many), -EPROTO (not RRQ/WRQ),
 * -EPROTONOSUPPORT (a mode other than octet/netascii).  Unknown options
 * and out-of-range values are ignored. */
int tftp_parse_request(const uint8_t *pkt, size_t len, struct tftp_request *ret);

/* Normalise request path @in into @out (@size bytes): one leading '/'
 * stripped, '//' collapsed, "." components dropped, a trailing '/'
 * dropped.  Refused (-EACCES): a ".." component, a backslash, a control
 * character or DEL; -ENAMETOOLONG past TFTP_PATH_MAX (or @size); -ENOENT
 * if nothing is left.  @out is untouched on failure. */
int tftp_normalise_path(const char *in, char *out, size_t size);

/* What a resolver hands back: a size (-1: unknown, then no tsize) and a
 * reader.  @read returns bytes read (short only at the end) or -errno;
 * @close (may be NULL) releases @arg when the transfer ends. */
struct tftp_source {
	int64_t size;
	ssize_t (*read)(void *arg, void *buf, size_t n, uint64_t off);
	void (*close)(void *arg);
	void *arg;
	char label[TFTP_LABEL_MAX]; /* who is served, for the log ("" if nobody in particular) */
	char why[TFTP_WHY_MAX];	    /* the resolver's reason of a refusal, or a note on what it serves,
				       for the log ("" if none) */
};

/* Who asks: the peer's address and the local address its request was
 * sent to (@local NULL when unknown, e.g. a broadcast). */
struct tftp_peer {
	const struct sockaddr *addr;
	socklen_t addrlen;
	const struct sockaddr *local;
	socklen_t locallen;
};

/* Resolve @path (normalised) for @peer.  Returns 0 with @ret filled, or
 * -errno: -ENOENT/-ENOTDIR (file not found), -EACCES/-EPERM/-EISDIR/
 * -ELOOP/-EXDEV (access violation), anything else (an error of its own).
 * @ret->label may be set on failure too, to name the client in the log,
 * and @ret->why to say why in it. */
typedef int (*tftp_resolve_fn)(void *arg, const struct tftp_peer *peer, const char *path, struct tftp_source *ret);
typedef void (*tftp_log_fn)(void *arg, const char *line);

/* A source reading fd @fd (owned: closed at the end) of @size bytes. */
void tftp_source_fd(struct tftp_source *src, int fd, int64_t size);

struct tftp_config {
	const char *address;	/* NULL: every address, IPv6 and IPv4 */
	uint16_t port;		/* 69 */
	unsigned max_transfers; /* 0: 1024 */
	unsigned max_per_peer;	/* 0: 8 (per peer address) */
	unsigned max_blksize;	/* 0: TFTP_BLKSIZE_MAX; also clamped to the route's MTU */
	unsigned retries;	/* 0: 6 sends of a packet before giving up */
	unsigned refusal_lines; /* 0: TFTP_REFUSALS_PER_PEER lines a minute per address, and
				   twelve times as many in all */
	tftp_resolve_fn resolve;
	void *resolve_arg;
	tftp_log_fn log;
	void *log_arg;
};

struct tftp_server;

/* Bind the server's socket.  Errors: -EADDRINUSE, -EACCES (privileged
 * port), -EINVAL (bad address), other socket errors. */
int tftp_server_open(const struct tftp_config *cfg, struct tftp_server **ret);
/* The port bound (useful with port 0). */
uint16_t tftp_server_port(const struct tftp_server *s);
/* Serve until *@stop becomes non-zero (checked at least twice a second).
 * Returns 0, or -errno if the event loop itself fails. */
int tftp_server_run(struct tftp_server *s, volatile sig_atomic_t *stop);
/* Abort the transfers in progress and close everything. */
void tftp_server_free(struct tftp_server *s);

#endif
