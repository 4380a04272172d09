/* SPDX-License-Identifier: MIT */
/*
 * The TFTP engine (see tftp.h): request parsing, path normalisation and
 * the transfer state machine on one epoll loop.
 *
 * Blocks are counted in 64 bits inside and sent modulo 65536, wrapping
 * to 0 as tftp-hpa and u-boot expect, so a file of any size can be sent
 * (a 32 MB kernel at blksize 512 is 65536+ blocks).  A window (RFC 7440)
 * is sent whole; an ACK inside it moves the window to the block after
 * the one acknowledged.  A duplicate ACK of the block before the window
 * is ignored with windowsize 1 (sending again on duplicates is the
 * sorcerer's apprentice bug) and answered at most once per window beyond.
 * Netascii blocks are made as they are sent, each from where the one
 * before it ended (kept for every block of the window), so a window can
 * start again at any block of the one before.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tftp.h"

#define DEFAULT_TIMEOUT_MS 1000
#define PACKET_MAX (4 + TFTP_BLKSIZE_MAX)
/* Packets taken from one socket per wake-up: a flood of requests (or
 * of ACKs from one peer) cannot starve the other transfers. */
#define BURST 64

/* ---- parsing ---- */

/* A decimal number of at most 9 digits, nothing else (no sign, blank). */
static bool parse_uint(const char *s, unsigned *ret)
{
	unsigned v = 0;
	size_t n = 0;
	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n == 9)
			return false;
		v = v * 10 + (unsigned)(s[n] - '0');
	}
	if (n == 0)
		return false;
	*ret = v;
	return true;
}

int tftp_parse_request(const uint8_t *pkt, size_t len, struct tftp_request *ret)
{
	struct tftp_request rq = {0};
	const char *strs[2 + 2 * TFTP_OPTIONS_MAX];
	size_t nstrs = 0;

	if (len < 4 || len > TFTP_REQUEST_MAX)
		return -EBADMSG;
	rq.opcode = pkt[0] << 8 | pkt[1];
	if (rq.opcode != TFTP_RRQ && rq.opcode != TFTP_WRQ)
		return -EPROTO;
	if (pkt[len - 1] != 0)
		return -EBADMSG; /* the last field is not terminated */
	for (size_t i = 2; i < len;) {
		const char *s = (const char *)pkt + i;
		size_t n = strnlen(s, len - i); /* < len - i: pkt ends with NUL */
		if (nstrs == sizeof(strs) / sizeof(strs[0]))
			return -EBADMSG;
		strs[nstrs++] = s;
		i += n + 1;
	}
	if (nstrs < 2 || (nstrs & 1) || !strs[0][0])
		return -EBADMSG;
	rq.filename = strs[0];
	if (!strcasecmp(strs[1], "octet"))
		rq.netascii = false;
	else if (!strcasecmp(strs[1], "netascii"))
		rq.netascii = true;
	else
		return -EPROTONOSUPPORT;
	for (size_t i = 2; i < nstrs; i += 2) {
		const char *name = strs[i], *val = strs[i + 1];
		unsigned v;
		if (!strcasecmp(name, "blksize")) {
			if (parse_uint(val, &v) && v >= TFTP_BLKSIZE_MIN)
				rq.blksize = v > TFTP_BLKSIZE_MAX ? TFTP_BLKSIZE_MAX : v;
		} else if (!strcasecmp(name, "timeout")) {
			if (parse_uint(val, &v) && v >= 1 && v <= 255)
				rq.timeout = v;
		} else if (!strcasecmp(name, "tsize")) {
			if (parse_uint(val, &v))
				rq.tsize = true;
		} else if (!strcasecmp(name, "windowsize")) {
			if (parse_uint(val, &v) && v >= 1 && v <= 65535)
				rq.windowsize = v;
		}
	}
	*ret = rq;
	return 0;
}

int tftp_normalise_path(const char *in, char *out, size_t size)
{
	char buf[TFTP_PATH_MAX + 1];
	size_t n = 0;

	if (*in == '/')
		in++;
	while (*in) {
		while (*in == '/')
			in++;
		if (!*in)
			break;
		const char *c = in;
		size_t clen = 0;
		for (; c[clen] && c[clen] != '/'; clen++) {
			unsigned char ch = (unsigned char)c[clen];
			if (ch < 0x20 || ch == 0x7f || ch == '\\')
				return -EACCES;
		}
		in = c + clen;
		if (clen == 1 && c[0] == '.')
			continue;
		if (clen == 2 && c[0] == '.' && c[1] == '.')
			return -EACCES;
		if (n + (n > 0) + clen > TFTP_PATH_MAX)
			return -ENAMETOOLONG;
		if (n > 0)
			buf[n++] = '/';
		memcpy(buf + n, c, clen);
		n += clen;
	}
	if (n == 0)
		return -ENOENT;
	if (n + 1 > size)
		return -ENAMETOOLONG;
	buf[n] = 0;
	memcpy(out, buf, n + 1);
	return 0;
}

/* ---- sources ---- */

struct fd_source {
	int fd;
};

static ssize_t fd_read(void *arg, void *buf, size_t n, uint64_t off)
{
	struct fd_source *f = arg;
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static void fd_close(void *arg)
{
	struct fd_source *f = arg;
	close(f->fd);
	free(f);
}

static ssize_t nothing_read(void *arg, void *buf, size_t n, uint64_t off)
{
	(void)arg, (void)buf, (void)n, (void)off;
	return -ENOMEM;
}

void tftp_source_fd(struct tftp_source *src, int fd, int64_t size)
{
	struct fd_source *f = malloc(sizeof(*f));
	src->size = size;
	if (!f) {
		/* the transfer fails at its first read, the fd is not leaked */
		close(fd);
		src->read = nothing_read;
		src->close = NULL;
		src->arg = NULL;
		return;
	}
	f->fd = fd;
	src->read = fd_read;
	src->close = fd_close;
	src->arg = f;
}

/* ---- the server ---- */

/* Where a netascii block starts: an offset in the file and the second
 * byte of a CR LF / CR NUL pair the previous block had no room for. */
struct na_pos {
	uint64_t off;
	int pending; /* -1: none */
};

struct transfer {
	int fd; /* connected to the peer */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char path[TFTP_PATH_MAX + 1];
	struct tftp_source src;
	unsigned blksize, window, timeout_ms;
	uint64_t base;	   /* first block not acknowledged (1-based); 0 while the OACK is */
	uint64_t last;	   /* number of the last block (the short one); netascii: UINT64_MAX until made */
	struct na_pos *na; /* netascii: where blocks base..base+window start (else NULL) */
	uint8_t *raw;	   /* netascii: the file's bytes of one block */
	bool oack;	   /* an OACK is (or was) the first packet */
	bool dup_resent;   /* a duplicate ACK made us send this window again */
	unsigned sends;	   /* sends of the current window/OACK without progress */
	int64_t deadline_ms;
	int64_t started_ms;
	uint64_t bytes;
	uint8_t *buf;
	size_t oacklen;
	uint8_t oackpkt[128];
};

#define RATE_SLOTS 64 /* peers whose refusals are counted separately each minute */

struct tftp_server {
	struct tftp_config cfg;
	int sock, epfd;
	int family;
	uint16_t port;
	struct transfer **xfers;
	size_t nxfers;
	/* refusal lines logged this minute, per peer address and in all */
	struct refusal_rate {
		struct sockaddr_storage peer;
		unsigned lines, dropped;
	} rates[RATE_SLOTS];
	size_t nrates;
	unsigned lines, dropped; /* in all */
	int64_t minute_ms;	 /* when this minute began */
	uint8_t rxbuf[PACKET_MAX];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(struct tftp_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct tftp_server *s, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	if (!s->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->cfg.log(s->cfg.log_arg, line);
}

static void peer_str(const struct sockaddr_storage *ss, char *buf, size_t n);
static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
static bool refusal_logged(struct tftp_server *s, const struct sockaddr_storage *peer);

#define refusal_logf(s, peer, ...)                                                                                     \
	do {                                                                                                           \
		if (refusal_logged(s, peer))                                                                           \
			logf_(s, __VA_ARGS__);                                                                         \
	} while (0)

/* Say how many refusal lines the last minute left out, and start a new one. */
static void refusals_roll(struct tftp_server *s, int64_t now)
{
	if (now - s->minute_ms < 60000)
		return;
	char who[INET6_ADDRSTRLEN + 16];
	for (size_t i = 0; i < s->nrates; i++)
		if (s->rates[i].dropped) {
			peer_str(&s->rates[i].peer, who, sizeof(who));
			logf_(s, "%s: %u more refused requests not logged in the last minute", who,
			      s->rates[i].dropped);
		}
	if (s->dropped)
		logf_(s, "%u more refused requests (from other addresses) not logged in the last minute", s->dropped);
	s->nrates = 0;
	s->lines = s->dropped = 0;
	s->minute_ms = now;
}

/* May a refusal of @peer's request be logged?  At most
 * TFTP_REFUSALS_PER_PEER lines a minute per address and
 * TFTP_REFUSALS_PER_MINUTE in all: a flood of bad requests must not flood
 * the journal.  Those left out are counted. */
static bool refusal_logged(struct tftp_server *s, const struct sockaddr_storage *peer)
{
	refusals_roll(s, now_ms());
	struct refusal_rate *r = NULL;
	for (size_t i = 0; i < s->nrates && !r; i++)
		if (same_host(&s->rates[i].peer, peer))
			r = &s->rates[i];
	if (!r && s->nrates < RATE_SLOTS) {
		r = &s->rates[s->nrates++];
		memset(r, 0, sizeof(*r));
		memcpy(&r->peer, peer, sizeof(*peer));
	}
	unsigned per_peer = s->cfg.refusal_lines ? s->cfg.refusal_lines : TFTP_REFUSALS_PER_PEER;
	unsigned in_all = per_peer * (TFTP_REFUSALS_PER_MINUTE / TFTP_REFUSALS_PER_PEER);
	if (!r || r->lines >= per_peer || s->lines >= in_all) {
		if (r)
			r->dropped++;
		else
			s->dropped++;
		return false;
	}
	r->lines++;
	s->lines++;
	return true;
}

/* "[addr]:port" or "addr:port"; v4-mapped addresses as IPv4 */
static void peer_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		port = ntohs(in->sin_port);
		snprintf(buf, n, "%s:%u", a, port);
		return;
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	port = ntohs(in6->sin6_port);
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], a, sizeof(a));
		snprintf(buf, n, "%s:%u", a, port);
	} else {
		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(buf, n, "[%s]:%u", a, port);
	}
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
		       sizeof(struct in6_addr));
}

/* The same address and port: the same client's request. */
static bool same_port(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (!same_host(a, b))
		return false;
	in_port_t pa = a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
					       : ((const struct sockaddr_in6 *)a)->sin6_port;
	in_port_t pb = b->ss_family == AF_INET ? ((const struct sockaddr_in *)b)->sin_port
					       : ((const struct sockaddr_in6 *)b)->sin6_port;
	return pa == pb;
}

static bool is_v6(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static size_t error_packet(uint8_t *pkt, size_t size, int code, const char *msg)
{
	size_t n = strlen(msg);
	if (n > size - 5)
		n = size - 5;
	pkt[0] = 0;
	pkt[1] = TFTP_ERROR;
	pkt[2] = (uint8_t)(code >> 8);
	pkt[3] = (uint8_t)code;
	memcpy(pkt + 4, msg, n);
	pkt[4 + n] = 0;
	return n + 5;
}

/* A socket for replies to @peer from @local (the address the request
 * came to; port 0: an ephemeral port, the transfer's TID), connected to
 * @peer.  Returns the fd or -errno. */
static int reply_socket(struct tftp_server *s, const struct sockaddr_storage *local, socklen_t locallen,
			const struct sockaddr_storage *peer, socklen_t peerlen)
{
	int fd = socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (local && bind(fd, (const struct sockaddr *)local, locallen) < 0) {
		/* e.g. a broadcast destination: any local address then */
		struct sockaddr_storage any = {.ss_family = (sa_family_t)s->family};
		if (bind(fd, (struct sockaddr *)&any, locallen) < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
	}
	if (connect(fd, (const struct sockaddr *)peer, peerlen) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Refuse a request with ERROR @code: from a fresh port when one can be
 * had, else (out of sockets) from the server's own. */
static void refuse(struct tftp_server *s, const struct sockaddr_storage *local, socklen_t locallen,
		   const struct sockaddr_storage *peer, socklen_t peerlen, int code, const char *msg)
{
	uint8_t pkt[600];
	size_t n = error_packet(pkt, sizeof(pkt), code, msg);
	int fd = reply_socket(s, local, locallen, peer, peerlen);
	if (fd >= 0) {
		(void)send(fd, pkt, n, 0);
		close(fd);
	} else {
		(void)sendto(s->sock, pkt, n, 0, (const struct sockaddr *)peer, peerlen);
	}
}

static void xfer_end(struct tftp_server *s, size_t i, const char *how)
{
	struct transfer *t = s->xfers[i];
	char peer[INET6_ADDRSTRLEN + 16];
	peer_str(&t->peer, peer, sizeof(peer));
	if (how) {
		double secs = (double)(now_ms() - t->started_ms) / 1000.0;
		t->src.why[sizeof(t->src.why) - 1] = 0;
		logf_(s, "%s%s%s '%s': %s, %llu bytes in %.3f s (%sblksize %u, windowsize %u)%s%s", peer,
		      t->src.label[0] ? " " : "", t->src.label, t->path, how, (unsigned long long)t->bytes, secs,
		      t->na ? "netascii, " : "", t->blksize, t->window, t->src.why[0] ? ": " : "", t->src.why);
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, t->fd, NULL);
	close(t->fd);
	if (t->src.close)
		t->src.close(t->src.arg);
	free(t->buf);
	free(t->na);
	free(t->raw);
	free(t);
	s->xfers[i] = s->xfers[--s->nxfers];
}

static void xfer_error(struct tftp_server *s, size_t i, int code, const char *msg)
{
	uint8_t pkt[600];
	size_t n = error_packet(pkt, sizeof(pkt), code, msg);
	(void)send(s->xfers[i]->fd, pkt, n, 0);
	char how[300];
	snprintf(how, sizeof(how), "aborted (%s)", msg);
	xfer_end(s, i, how);
}

/* Send block @blk (1-based, 64-bit).  0, or -errno of the source
 * (-EIO also when the file changed size under the transfer). */
/* Make netascii block @blk (base <= blk < base + window, made in order)
 * into t->buf + 4: LF goes as CR LF, CR as CR NUL (RFC 764).  Returns its
 * length (short: the last block) or -errno. */
static ssize_t netascii_block(struct transfer *t, uint64_t blk)
{
	size_t i = (size_t)(blk - t->base), n = 0, used = 0;
	struct na_pos p = t->na[i];
	uint8_t *out = t->buf + 4;
	if (p.pending >= 0) {
		out[n++] = (uint8_t)p.pending;
		p.pending = -1;
	}
	ssize_t r = t->src.read(t->src.arg, t->raw, t->blksize, p.off);
	if (r < 0)
		return r;
	for (; (ssize_t)used < r && n < t->blksize; used++) {
		uint8_t c = t->raw[used];
		if (c != '\n' && c != '\r') {
			out[n++] = c;
			continue;
		}
		out[n++] = '\r';
		uint8_t second = c == '\n' ? '\n' : 0;
		if (n < t->blksize)
			out[n++] = second;
		else
			p.pending = second;
	}
	p.off += used;
	t->na[i + 1] = p;
	if (n < t->blksize)
		t->last = blk;
	return (ssize_t)n;
}

static int send_block(struct tftp_server *s, struct transfer *t, uint64_t blk)
{
	if (t->na) {
		ssize_t n = netascii_block(t, blk);
		if (n < 0)
			return (int)n;
		t->buf[0] = 0;
		t->buf[1] = TFTP_DATA;
		t->buf[2] = (uint8_t)(blk >> 8);
		t->buf[3] = (uint8_t)blk;
		(void)send(t->fd, t->buf, 4 + (size_t)n, 0);
		return 0;
	}
	uint64_t off = (blk - 1) * t->blksize;
	size_t want = t->blksize;
	if (blk == t->last)
		want = (size_t)((uint64_t)t->src.size - off);
	ssize_t r = want ? t->src.read(t->src.arg, t->buf + 4, want, off) : 0;
	if (r < 0)
		return (int)r;
	if ((size_t)r != want)
		return -EIO;
	t->buf[0] = 0;
	t->buf[1] = TFTP_DATA;
	t->buf[2] = (uint8_t)(blk >> 8);
	t->buf[3] = (uint8_t)blk;
	(void)s;
	/* a full socket buffer loses the packet like the network would:
	 * the timeout sends it again */
	(void)send(t->fd, t->buf, 4 + want, 0);
	return 0;
}

/* Send what is due: the OACK, or the current window (after a timeout only
 * its first block: the peer's ACK then says what it has, and a request
 * with a forged source address does not draw whole windows again and
 * again at its victim).  -errno from the source. */
static int xfer_send(struct tftp_server *s, struct transfer *t, bool resend)
{
	int timeout = (int)t->timeout_ms;
	t->deadline_ms = now_ms() + timeout;
	t->sends++;
	if (t->base == 0) {
		(void)send(t->fd, t->oackpkt, t->oacklen, 0);
		return 0;
	}
	uint64_t n = resend ? 1 : t->window;
	for (uint64_t b = t->base; b <= t->last && b < t->base + n; b++) {
		int r = send_block(s, t, b);
		if (r < 0)
			return r;
	}
	return 0;
}

static void add_option(struct transfer *t, const char *name, unsigned long long v)
{
	char val[24];
	snprintf(val, sizeof(val), "%llu", v);
	size_t nl = strlen(name) + 1, vl = strlen(val) + 1;
	if (t->oacklen + nl + vl > sizeof(t->oackpkt))
		return;
	memcpy(t->oackpkt + t->oacklen, name, nl);
	t->oacklen += nl;
	memcpy(t->oackpkt + t->oacklen, val, vl);
	t->oacklen += vl;
}

/* The largest block that fits the route to the connected peer in one
 * unfragmented datagram (IP + UDP + 4 bytes of TFTP header). */
static unsigned route_blksize(struct tftp_server *s, struct transfer *t)
{
	int mtu = 0;
	socklen_t l = sizeof(mtu);
	bool v6 = is_v6(&t->peer);
	int r = s->family == AF_INET6 ? getsockopt(t->fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &l)
				      : getsockopt(t->fd, IPPROTO_IP, IP_MTU, &mtu, &l);
	if (r < 0 || mtu < 576)
		mtu = 1500;
	int hdr = (v6 ? 40 : 20) + 8 + 4;
	unsigned b = (unsigned)(mtu - hdr);
	return b > TFTP_BLKSIZE_MAX ? TFTP_BLKSIZE_MAX : b;
}

static const char *errno_message(int e, int *code)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		*code = TFTP_ENOTFOUND;
		return "file not found";
	case EACCES:
	case EPERM:
	case EISDIR:
	case ELOOP:
	case EXDEV:
		*code = TFTP_EACCESS;
		return "access violation";
	case ENAMETOOLONG:
		*code = TFTP_EACCESS;
		return "path too long";
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case EAGAIN:
	case EBUSY:
		*code = TFTP_EUNDEF;
		return "server busy, try again";
	default:
		*code = TFTP_EUNDEF;
		return strerror(e);
	}
}

/* What the log says of a resolver's refusal. */
static const char *refusal_reason(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return "file not found";
	case EXDEV:
		return "access violation (leads outside the served tree)";
	case ELOOP:
		return "access violation (too many symbolic links)";
	case EISDIR:
		return "access violation (a directory)";
	case EACCES:
	case EPERM:
		return "access violation (not a regular file, or not readable)";
	default:
		return strerror(e);
	}
}

static void handle_request(struct tftp_server *s, size_t len, const struct sockaddr_storage *peer, socklen_t peerlen,
			   const struct sockaddr_storage *local, socklen_t locallen)
{
	char who[INET6_ADDRSTRLEN + 16];
	struct tftp_request rq;
	char path[TFTP_PATH_MAX + 1];
	int code;

	peer_str(peer, who, sizeof(who));
	int r = tftp_parse_request(s->rxbuf, len, &rq);
	if (r == -EPROTO)
		return; /* a stray DATA/ACK/ERROR to port 69: not ours to answer */
	if (r < 0) {
		const char *why = r == -EPROTONOSUPPORT ? "unsupported transfer mode" : "malformed request";
		refusal_logf(s, peer, "%s: refused: %s", who, why);
		refuse(s, local, locallen, peer, peerlen, TFTP_EBADOP, why);
		return;
	}
	/* the file name as sent, made printable for the log */
	char shown[TFTP_PATH_MAX + 1];
	size_t k = 0;
	for (const char *p = rq.filename; *p && k < sizeof(shown) - 1; p++)
		shown[k++] = (*p < 0x20 || *p == 0x7f) ? '?' : *p;
	shown[k] = 0;
	if (rq.opcode == TFTP_WRQ) {
		refusal_logf(s, peer, "%s: refused write of '%s': read-only server", who, shown);
		refuse(s, local, locallen, peer, peerlen, TFTP_EACCESS, "read-only server");
		return;
	}
	r = tftp_normalise_path(rq.filename, path, sizeof(path));
	if (r < 0) {
		const char *why = r == -ENAMETOOLONG ? "path too long"
				  : r == -ENOENT     ? "file not found"
						     : "access violation";
		refusal_logf(s, peer, "%s: refused '%s': %s", who, shown, why);
		refuse(s, local, locallen, peer, peerlen, r == -ENOENT ? TFTP_ENOTFOUND : TFTP_EACCESS, why);
		return;
	}
	unsigned per_peer = 0;
	for (size_t i = 0; i < s->nxfers; i++) {
		if (same_port(&s->xfers[i]->peer, peer) && !strcmp(s->xfers[i]->path, path))
			return; /* a retransmitted request: its transfer answers it */
		per_peer += same_host(&s->xfers[i]->peer, peer);
	}
	if (s->nxfers >= s->cfg.max_transfers || per_peer >= s->cfg.max_per_peer) {
		const char *why = s->nxfers >= s->cfg.max_transfers ? "too many transfers, try again"
								    : "too many transfers from this address, try again";
		refusal_logf(s, peer, "%s: refused '%s': %s", who, path, why);
		refuse(s, local, locallen, peer, peerlen, TFTP_EUNDEF, why);
		return;
	}

	struct transfer *t = calloc(1, sizeof(*t));
	if (!t) {
		refuse(s, local, locallen, peer, peerlen, TFTP_EUNDEF, "server busy, try again");
		return;
	}
	t->fd = -1;
	memcpy(&t->peer, peer, peerlen);
	t->peerlen = peerlen;
	memcpy(t->path, path, strlen(path) + 1);
	t->started_ms = now_ms();
	struct tftp_peer who_asks = {
	    .addr = (const struct sockaddr *)peer,
	    .addrlen = peerlen,
	    .local = (const struct sockaddr *)local,
	    .locallen = locallen,
	};
	r = s->cfg.resolve(s->cfg.resolve_arg, &who_asks, path, &t->src);
	if (r < 0) {
		const char *msg = errno_message(-r, &code);
		t->src.why[sizeof(t->src.why) - 1] = 0;
		refusal_logf(s, peer, "%s%s%s: refused '%s': %s%s%s", who, t->src.label[0] ? " " : "", t->src.label,
			     path, refusal_reason(-r), t->src.why[0] ? ": " : "", t->src.why);
		refuse(s, local, locallen, peer, peerlen, code, msg);
		free(t);
		return;
	}
	t->fd = reply_socket(s, local, locallen, peer, peerlen);
	if (t->fd < 0) {
		refusal_logf(s, peer, "%s: refused '%s': no socket: %s", who, path, strerror(-t->fd));
		refuse(s, NULL, 0, peer, peerlen, TFTP_EUNDEF, "server busy, try again");
		goto fail;
	}

	unsigned maxblk = route_blksize(s, t);
	if (s->cfg.max_blksize && s->cfg.max_blksize < maxblk)
		maxblk = s->cfg.max_blksize;
	t->blksize = 512;
	t->window = 1;
	t->timeout_ms = DEFAULT_TIMEOUT_MS;
	t->oacklen = 2;
	t->oackpkt[0] = 0;
	t->oackpkt[1] = TFTP_OACK;
	if (rq.blksize) {
		t->blksize = rq.blksize < maxblk ? rq.blksize : maxblk;
		add_option(t, "blksize", t->blksize);
	}
	/* the size a netascii transfer will have is not known before it is made */
	if (rq.tsize && t->src.size >= 0 && !rq.netascii)
		add_option(t, "tsize", (unsigned long long)t->src.size);
	if (rq.timeout) {
		t->timeout_ms = rq.timeout * 1000;
		add_option(t, "timeout", rq.timeout);
	}
	if (rq.windowsize) {
		t->window = rq.windowsize < TFTP_WINDOW_MAX ? rq.windowsize : TFTP_WINDOW_MAX;
		add_option(t, "windowsize", t->window);
	}
	t->oack = t->oacklen > 2;
	if (t->src.size < 0) {
		/* no size: this engine needs one to know the last block */
		refusal_logf(s, peer, "%s: refused '%s': size unknown", who, path);
		refuse(s, local, locallen, peer, peerlen, TFTP_EUNDEF, "file size unknown");
		goto fail;
	}
	t->last = (uint64_t)t->src.size / t->blksize + 1;
	t->base = t->oack ? 0 : 1;
	t->buf = malloc(4 + t->blksize);
	if (rq.netascii) {
		t->last = UINT64_MAX;
		t->na = calloc(t->window + 1, sizeof(*t->na));
		t->raw = malloc(t->blksize);
		if (t->na)
			t->na[0].pending = -1;
	}
	if (!t->buf || (rq.netascii && (!t->na || !t->raw))) {
		refuse(s, local, locallen, peer, peerlen, TFTP_EUNDEF, "server busy, try again");
		goto fail;
	}
	struct transfer **nx = realloc(s->xfers, (s->nxfers + 1) * sizeof(*nx));
	if (!nx) {
		refuse(s, local, locallen, peer, peerlen, TFTP_EUNDEF, "server busy, try again");
		goto fail;
	}
	s->xfers = nx;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, t->fd, &ev) < 0) {
		refuse(s, local, locallen, peer, peerlen, TFTP_EUNDEF, "server busy, try again");
		goto fail;
	}
	s->xfers[s->nxfers++] = t;
	r = xfer_send(s, t, false);
	if (r < 0) {
		const char *msg = errno_message(-r, &code);
		xfer_error(s, s->nxfers - 1, code, msg);
	}
	return;
fail:
	if (t->fd >= 0)
		close(t->fd);
	if (t->src.close)
		t->src.close(t->src.arg);
	free(t->buf);
	free(t->na);
	free(t->raw);
	free(t);
}

static size_t xfer_index(struct tftp_server *s, struct transfer *t)
{
	for (size_t i = 0; i < s->nxfers; i++)
		if (s->xfers[i] == t)
			return i;
	return (size_t)-1;
}

static void handle_reply(struct tftp_server *s, struct transfer *t)
{
	size_t i = xfer_index(s, t);
	if (i == (size_t)-1)
		return;
	for (int burst = 0; burst < BURST; burst++) {
		ssize_t n = recv(t->fd, s->rxbuf, sizeof(s->rxbuf), 0);
		if (n < 0) {
			if (errno == ECONNREFUSED) {
				/* the peer's port is closed: it is gone */
				xfer_end(s, i, "aborted (peer gone)");
				return;
			}
			return; /* EAGAIN: all read */
		}
		if (n < 4)
			continue;
		int op = s->rxbuf[0] << 8 | s->rxbuf[1];
		unsigned num = (unsigned)(s->rxbuf[2] << 8 | s->rxbuf[3]);
		if (op == TFTP_ERROR) {
			char msg[100];
			size_t k = 0;
			for (ssize_t j = 4; j < n && s->rxbuf[j] && k < sizeof(msg) - 1; j++)
				msg[k++] = (s->rxbuf[j] < 0x20 || s->rxbuf[j] >= 0x7f) ? '?' : (char)s->rxbuf[j];
			msg[k] = 0;
			char how[160];
			snprintf(how, sizeof(how), "aborted by the client (error %u: %s)", num, msg);
			xfer_end(s, i, how);
			return;
		}
		if (op != TFTP_ACK) {
			xfer_error(s, i, TFTP_EBADOP, "illegal TFTP operation");
			return;
		}
		if (t->base == 0) {
			if (num != 0)
				continue; /* not the ACK of the OACK */
			t->base = 1;
			t->sends = 0;
		} else {
			/* the block acknowledged, among base-1 .. base+window-1 */
			uint64_t lo = t->base - 1, k = lo + ((num - (lo & 0xffff)) & 0xffff);
			if (k >= t->base + t->window || k > t->last)
				continue; /* stale or bogus */
			if (k == lo) {
				if (t->window == 1 || t->dup_resent)
					continue;
				t->dup_resent = true;
			} else {
				t->bytes = k * t->blksize;
				if (k == t->last) {
					t->bytes = (uint64_t)t->src.size;
					xfer_end(s, i, "sent");
					return;
				}
				if (t->na)
					t->na[0] = t->na[k + 1 - t->base];
				t->base = k + 1;
				t->sends = 0;
				t->dup_resent = false;
			}
		}
		int r = xfer_send(s, t, false);
		if (r < 0) {
			int code;
			const char *msg = r == -EIO ? "file changed during the transfer" : errno_message(-r, &code);
			if (r == -EIO)
				code = TFTP_EUNDEF;
			xfer_error(s, i, code, msg);
			return;
		}
	}
}

static void handle_timeouts(struct tftp_server *s)
{
	int64_t now = now_ms();
	for (size_t i = 0; i < s->nxfers;) {
		struct transfer *t = s->xfers[i];
		if (t->deadline_ms > now) {
			i++;
			continue;
		}
		if (t->sends >= s->cfg.retries) {
			xfer_end(s, i, "timed out");
			continue;
		}
		int r = xfer_send(s, t, true);
		if (r < 0) {
			xfer_error(s, i, TFTP_EUNDEF, r == -EIO ? "file changed during the transfer" : strerror(-r));
			continue;
		}
		i++;
	}
}

static void handle_server(struct tftp_server *s)
{
	for (int burst = 0; burst < BURST; burst++) {
		struct sockaddr_storage peer, local = {0};
		union {
			char buf[256];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = {.iov_base = s->rxbuf, .iov_len = sizeof(s->rxbuf)};
		struct msghdr mh = {.msg_name = &peer,
				    .msg_namelen = sizeof(peer),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf.buf,
				    .msg_controllen = sizeof(cbuf.buf)};
		ssize_t n = recvmsg(s->sock, &mh, 0);
		if (n < 0)
			return;
		socklen_t locallen = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&local;
				l6->sin6_family = AF_INET6;
				l6->sin6_addr = pi.ipi6_addr;
				if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
					l6->sin6_scope_id = (uint32_t)pi.ipi6_ifindex;
				locallen = sizeof(*l6);
			} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && s->family == AF_INET) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				struct sockaddr_in *l4 = (struct sockaddr_in *)&local;
				l4->sin_family = AF_INET;
				l4->sin_addr = pi.ipi_addr;
				locallen = sizeof(*l4);
			}
		}
		if ((size_t)n > TFTP_REQUEST_MAX) {
			char who[INET6_ADDRSTRLEN + 16];
			peer_str(&peer, who, sizeof(who));
			refusal_logf(s, &peer, "%s: refused: request too long (%zd bytes)", who, n);
			refuse(s, locallen ? &local : NULL, locallen, &peer, mh.msg_namelen, TFTP_EBADOP,
			       "request too long");
			continue;
		}
		handle_request(s, (size_t)n, &peer, mh.msg_namelen, locallen ? &local : NULL, locallen);
	}
}

int tftp_server_open(const struct tftp_config *cfg, struct tftp_server **ret)
{
	struct tftp_server *s = calloc(1, sizeof(*s));
	struct sockaddr_storage ss = {0};
	socklen_t sslen;
	int r, one = 1, zero = 0;

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.max_transfers)
		s->cfg.max_transfers = 1024;
	if (!s->cfg.max_per_peer)
		s->cfg.max_per_peer = 8;
	if (!s->cfg.retries)
		s->cfg.retries = 6;
	s->sock = s->epfd = -1;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	if (!cfg->address || inet_pton(AF_INET6, cfg->address, &in6->sin6_addr) == 1) {
		s->family = AF_INET6;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(cfg->port);
		sslen = sizeof(*in6);
	} else if (inet_pton(AF_INET, cfg->address, &in4->sin_addr) == 1) {
		s->family = AF_INET;
		in4->sin_family = AF_INET;
		in4->sin_port = htons(cfg->port);
		sslen = sizeof(*in4);
	} else {
		free(s);
		return -EINVAL;
	}
	s->sock = socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->sock < 0 && s->family == AF_INET6 && !cfg->address && errno == EAFNOSUPPORT) {
		/* no IPv6 on this host: IPv4 alone */
		memset(&ss, 0, sizeof(ss));
		s->family = in4->sin_family = AF_INET;
		in4->sin_port = htons(cfg->port);
		sslen = sizeof(*in4);
		s->sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (s->sock < 0)
		goto fail_errno;
	if (s->family == AF_INET6) {
		if (!cfg->address || IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			(void)setsockopt(s->sock, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (setsockopt(s->sock, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0)
			goto fail_errno;
	} else if (setsockopt(s->sock, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0) {
		goto fail_errno;
	}
	if (bind(s->sock, (struct sockaddr *)&ss, sslen) < 0)
		goto fail_errno;
	sslen = sizeof(ss);
	if (getsockname(s->sock, (struct sockaddr *)&ss, &sslen) < 0)
		goto fail_errno;
	s->port = ntohs(s->family == AF_INET6 ? in6->sin6_port : in4->sin_port);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		goto fail_errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sock, &ev) < 0)
		goto fail_errno;
	*ret = s;
	return 0;
fail_errno:
	r = -errno;
	tftp_server_free(s);
	return r;
}

uint16_t tftp_server_port(const struct tftp_server *s)
{
	return s->port;
}

int tftp_server_run(struct tftp_server *s, volatile sig_atomic_t *stop)
{
	struct epoll_event evs[64];
	while (!*stop) {
		int64_t wait = 500, now = now_ms();
		for (size_t i = 0; i < s->nxfers; i++) {
			int64_t d = s->xfers[i]->deadline_ms - now;
			if (d < wait)
				wait = d < 0 ? 0 : d;
		}
		int n = epoll_wait(s->epfd, evs, 64, (int)wait);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* the transfers first: a client's last ACK and its request for
		 * the next file arrive together, and the ACK frees the slot
		 * the request needs */
		bool requests = false;
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				requests = true;
			else
				handle_reply(s, evs[i].data.ptr);
		}
		if (requests)
			handle_server(s);
		handle_timeouts(s);
	}
	return 0;
}

void tftp_server_free(struct tftp_server *s)
{
	if (!s)
		return;
	while (s->nxfers)
		xfer_end(s, s->nxfers - 1, "aborted (server stopping)");
	free(s->xfers);
	if (s->sock >= 0)
		close(s->sock);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s);
}
