/* SPDX-License-Identifier: MIT */
/*
 * The TFTP engine without a network client program: the request parser
 * and the path normaliser on hostile inputs, then the protocol on
 * loopback driven packet by packet (block numbers wrapping past 65535,
 * duplicate ACKs, an ACK from a wrong port, windows, bounds).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tftp.h"

static int failures, checks;

static void check(int ok, const char *what)
{
	checks++;
	if (!ok) {
		failures++;
		printf("FAIL: %s\n", what);
	} else {
		printf("ok: %s\n", what);
	}
}

static int parse(const char *bytes, size_t len, struct tftp_request *rq)
{
	return tftp_parse_request((const uint8_t *)bytes, len, rq);
}

#define P(lit) parse(lit, sizeof(lit) - 1, &rq)

static void test_parser(void)
{
	struct tftp_request rq;
	check(P("\0\1a\0octet\0") == 0 && rq.opcode == TFTP_RRQ && !strcmp(rq.filename, "a") && !rq.netascii &&
		  !rq.blksize && !rq.tsize,
	      "a plain RRQ");
	check(P("\0\2a\0OCTET\0") == 0 && rq.opcode == TFTP_WRQ, "a WRQ, mode in capitals");
	check(P("\0\1a\0netascii\0") == 0 && rq.netascii, "netascii is parsed");
	check(P("\0\1a\0mail\0") == -EPROTONOSUPPORT, "mode mail is refused");
	check(P("\0\1a\0octet") == -EBADMSG, "a mode not NUL-terminated");
	check(P("\0\1a\0") == -EBADMSG, "no mode");
	check(P("\0\1\0octet\0") == -EBADMSG, "an empty file name");
	check(P("\0\1") == -EBADMSG, "two bytes");
	check(P("\0\3a\0octet\0") == -EPROTO, "a DATA opcode to the server port");
	check(P("\0\1a\0octet\0blksize\0") == -EBADMSG, "an option without a value");
	check(P("\0\1a\0octet\0blksize\0001468\0tsize\0000\0timeout\0003\0windowsize\0008\0") == 0 &&
		  rq.blksize == 1468 && rq.tsize && rq.timeout == 3 && rq.windowsize == 8,
	      "blksize, tsize, timeout, windowsize");
	check(P("\0\1a\0octet\0BlkSize\0001024\0") == 0 && rq.blksize == 1024, "option names in any case");
	check(P("\0\1a\0octet\0blksize\0007\0") == 0 && rq.blksize == 0, "blksize 7 is ignored");
	check(P("\0\1a\0octet\0blksize\00099999\0") == 0 && rq.blksize == TFTP_BLKSIZE_MAX,
	      "blksize 99999 is clamped to 65464");
	check(P("\0\1a\0octet\0blksize\0-5\0") == 0 && rq.blksize == 0, "a negative blksize is ignored");
	check(P("\0\1a\0octet\0blksize\0 512\0") == 0 && rq.blksize == 0, "a blank in a value is ignored");
	check(P("\0\1a\0octet\0blksize\0009999999999999\0") == 0 && rq.blksize == 0, "an overflowing value is ignored");
	check(P("\0\1a\0octet\0timeout\0000\0windowsize\00070000\0") == 0 && !rq.timeout && !rq.windowsize,
	      "timeout 0 and windowsize 70000 are ignored");
	check(P("\0\1a\0octet\0frobnicate\0001\0") == 0, "an unknown option is ignored");
	/* too many options */
	char big[TFTP_REQUEST_MAX + 8];
	size_t n = 0;
	memcpy(big, "\0\1a\0octet\0", 10);
	n = 10;
	for (int i = 0; i < TFTP_OPTIONS_MAX + 1; i++) {
		memcpy(big + n, "x\0y\0", 4);
		n += 4;
	}
	check(parse(big, n, &rq) == -EBADMSG, "more than TFTP_OPTIONS_MAX options");
	memset(big, 'a', sizeof(big));
	big[0] = 0;
	big[1] = 1;
	memcpy(big + TFTP_REQUEST_MAX - 7, "\0octet\0", 7);
	check(parse(big, TFTP_REQUEST_MAX, &rq) == 0, "a request of TFTP_REQUEST_MAX bytes parses");
	memcpy(big + TFTP_REQUEST_MAX - 6, "\0octet\0", 7);
	check(parse(big, TFTP_REQUEST_MAX + 1, &rq) == -EBADMSG, "one byte more is refused");
}

static void norm(const char *in, int want_r, const char *want)
{
	char out[TFTP_PATH_MAX + 1] = "untouched", what[600];
	int r = tftp_normalise_path(in, out, sizeof(out));
	int ok = r == want_r && (r < 0 ? !strcmp(out, "untouched") : !strcmp(out, want));
	char shown[101];
	size_t k = 0;
	for (; in[k] && k < sizeof(shown) - 1; k++)
		shown[k] = (unsigned char)in[k] < 0x20 || in[k] == 0x7f ? '?' : in[k];
	shown[k] = 0;
	snprintf(what, sizeof(what), "normalise '%s' -> %d '%.100s' (want %d '%.100s')", shown, r, out, want_r,
		 want ? want : "");
	check(ok, what);
}

static void test_normalise(void)
{
	norm("a", 0, "a");
	norm("/boot/vmlinuz", 0, "boot/vmlinuz");
	norm("//boot//vmlinuz", 0, "boot/vmlinuz");
	norm("./a/./b/", 0, "a/b");
	norm("a/..", -EACCES, NULL);
	norm("../etc/passwd", -EACCES, NULL);
	norm("/../etc/passwd", -EACCES, NULL);
	norm("a/../../b", -EACCES, NULL);
	norm("..", -EACCES, NULL);
	norm("a/..b/c..", 0, "a/..b/c..");
	norm("a\\..\\b", -EACCES, NULL);
	norm("a\nb", -EACCES, NULL);
	norm("a\x7f", -EACCES, NULL);
	norm("a\x1b[2J", -EACCES, NULL);
	norm("/", -ENOENT, NULL);
	norm("", -ENOENT, NULL);
	norm("/./", -ENOENT, NULL);
	norm("caf\xc3\xa9", 0, "caf\xc3\xa9");
	char longp[TFTP_PATH_MAX + 3];
	memset(longp, 'x', sizeof(longp));
	longp[TFTP_PATH_MAX] = 0;
	norm(longp, 0, longp);
	longp[TFTP_PATH_MAX] = 'x';
	longp[TFTP_PATH_MAX + 1] = 0;
	norm(longp, -ENAMETOOLONG, NULL);
	char small[4] = "zz";
	check(tftp_normalise_path("abcd", small, sizeof(small)) == -ENAMETOOLONG && !strcmp(small, "zz"),
	      "an output buffer too small: -ENAMETOOLONG, untouched");
}

/* ---- the protocol, packet by packet ---- */

/* A synthetic file: byte i is (i * 7 + i / 251) & 0xff. */
static uint8_t byte_at(uint64_t i)
{
	return (uint8_t)((i * 7 + i / 251) & 0xff);
}

static ssize_t synth_read(void *arg, void *buf, size_t n, uint64_t off)
{
	int64_t size = *(int64_t *)arg;
	if ((int64_t)off >= size)
		return 0;
	if ((int64_t)(off + n) > size)
		n = (size_t)(size - (int64_t)off);
	for (size_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = byte_at(off + i);
	return (ssize_t)n;
}

static int64_t synth_size;

static int synth_resolve(void *arg, const struct tftp_peer *peer, const char *path, struct tftp_source *ret)
{
	(void)arg;
	if (!strcmp(path, "who")) {
		/* the resolver is told who asks and on which address */
		const struct sockaddr_in *a = (const struct sockaddr_in *)peer->addr;
		const struct sockaddr_in *l = (const struct sockaddr_in *)peer->local;
		bool ok = peer->addrlen == sizeof(*a) && a->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && l &&
			  peer->locallen == sizeof(*l) && l->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
		snprintf(ret->why, sizeof(ret->why), "peer and local address %s", ok ? "known" : "wrong");
		return -EACCES;
	}
	if (strcmp(path, "synth"))
		return -ENOENT;
	ret->size = synth_size;
	ret->read = synth_read;
	ret->close = NULL;
	ret->arg = &synth_size;
	snprintf(ret->label, sizeof(ret->label), "test");
	return 0;
}

static volatile sig_atomic_t stop;
static char lastlog[700];
static int refusal_lines; /* lines saying "refused" */

static void test_log(void *arg, const char *line)
{
	(void)arg;
	snprintf(lastlog, sizeof(lastlog), "%s", line);
	refusal_lines += strstr(line, ": refused") != NULL;
	printf("log: %s\n", line);
}

static void *run(void *arg)
{
	tftp_server_run(arg, &stop);
	return NULL;
}

static int client_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	return fd;
}

static void send_rrq(int fd, uint16_t port, const char *opts, size_t optlen)
{
	uint8_t pkt[600];
	size_t n = 0;
	memcpy(pkt, "\0\1synth\0octet\0", 14);
	n = 14;
	memcpy(pkt + n, opts, optlen);
	n += optlen;
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	sendto(fd, pkt, n, 0, (struct sockaddr *)&a, sizeof(a));
}

/* Receive one packet within @ms; returns its length, 0 on timeout. */
static ssize_t recv_pkt(int fd, uint8_t *buf, size_t size, struct sockaddr_in *from, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) <= 0)
		return 0;
	socklen_t l = sizeof(*from);
	return recvfrom(fd, buf, size, 0, (struct sockaddr *)from, &l);
}

static void send_ack(int fd, const struct sockaddr_in *to, unsigned num)
{
	uint8_t pkt[4] = {0, TFTP_ACK, (uint8_t)(num >> 8), (uint8_t)num};
	sendto(fd, pkt, 4, 0, (const struct sockaddr *)to, sizeof(*to));
}

static void test_protocol(void)
{
	struct tftp_config cfg = {.address = "127.0.0.1",
				  .port = 0,
				  .max_transfers = 4,
				  .max_per_peer = 2,
				  .resolve = synth_resolve,
				  .log = test_log,
				  .retries = 5};
	struct tftp_server *s;
	pthread_t th;
	uint8_t buf[70000];
	struct sockaddr_in from, tid;
	ssize_t n;

	check(tftp_server_open(&cfg, &s) == 0, "the server binds 127.0.0.1, port 0");
	uint16_t port = tftp_server_port(s);
	pthread_create(&th, NULL, run, s);

	/* blksize 8, 70000 blocks + the short one: numbers wrap to 0 */
	synth_size = 8 * 70000 + 3;
	int fd = client_socket();
	static const char opts[] = "blksize\0"
				   "8\0tsize\0"
				   "0";
	send_rrq(fd, port, opts, sizeof(opts));
	n = recv_pkt(fd, buf, sizeof(buf), &tid, 2000);
	check(n > 2 && buf[1] == TFTP_OACK &&
		  memmem(buf, (size_t)n,
			 "blksize\0"
			 "8\0",
			 10) &&
		  memmem(buf, (size_t)n,
			 "tsize\0"
			 "560003\0",
			 13),
	      "OACK with blksize 8 and tsize 560003");
	check(tid.sin_port != htons(port), "the transfer comes from a port of its own");
	send_ack(fd, &tid, 0);
	uint64_t blk = 1, bad = 0, dups = 0;
	int wrongport_error = 0;
	for (;;) {
		n = recv_pkt(fd, buf, sizeof(buf), &from, 2000);
		if (n < 4 || buf[1] != TFTP_DATA) {
			bad++;
			break;
		}
		unsigned num = (unsigned)(buf[2] << 8 | buf[3]);
		if (num != (blk & 0xffff)) {
			bad++;
			break;
		}
		for (ssize_t i = 4; i < n; i++)
			if (buf[i] != byte_at((blk - 1) * 8 + (uint64_t)(i - 4)))
				bad++;
		if (bad)
			break;
		send_ack(fd, &tid, num);
		if (blk == 1000) {
			/* the same ACK twice: no second block 1001 may come */
			send_ack(fd, &tid, num);
			dups = 1;
		}
		if (blk == 2000) {
			/* an ACK from another port must not move the transfer */
			int other = client_socket();
			send_ack(other, &tid, num + 5);
			uint8_t e[600];
			ssize_t m = recv_pkt(other, e, sizeof(e), &from, 200);
			wrongport_error = m == 0; /* silently dropped by the connected socket */
			close(other);
		}
		if (n < 12)
			break;
		blk++;
	}
	check(bad == 0 && blk == 70001, "70001 blocks of blksize 8 arrive in order, numbers wrapping past 65535");
	check(dups && wrongport_error, "a packet from another port gets nothing");
	n = recv_pkt(fd, buf, sizeof(buf), &from, 300);
	check(n == 0, "nothing more after the last ACK (the duplicate ACK sent no block twice)");

	/* windowsize 4, no OACK ack: the OACK comes again after the timeout */
	synth_size = 512 * 10;
	static const char wopts[] = "windowsize\0"
				    "4";
	send_rrq(fd, port, wopts, sizeof(wopts));
	n = recv_pkt(fd, buf, sizeof(buf), &tid, 2000);
	check(n > 2 && buf[1] == TFTP_OACK &&
		  memmem(buf, (size_t)n,
			 "windowsize\0"
			 "4\0",
			 13),
	      "OACK windowsize 4");
	n = recv_pkt(fd, buf, sizeof(buf), &from, 2500);
	check(n > 2 && buf[1] == TFTP_OACK, "the OACK is sent again after a timeout");
	send_ack(fd, &tid, 0);
	int got = 0;
	while ((n = recv_pkt(fd, buf, sizeof(buf), &from, 300)) > 0)
		got += buf[1] == TFTP_DATA;
	check(got == 4, "one window: 4 blocks, then the server waits");
	/* the timer (1 s) fires once or twice within 1.6 s, even on a busy
	 * machine: each time block 1 alone comes again */
	got = 0;
	unsigned others = 0;
	usleep(1600 * 1000);
	while ((n = recv_pkt(fd, buf, sizeof(buf), &from, 0)) > 0 && got < 10) {
		got++;
		others += (unsigned)(buf[2] << 8 | buf[3]) != 1;
	}
	check(got >= 1 && got <= 2 && others == 0, "after a timeout only the window's first block is sent again");
	send_ack(fd, &tid, 2); /* blocks 3 and 4 lost: the next window starts at 3 */
	n = recv_pkt(fd, buf, sizeof(buf), &from, 1000);
	check(n == 516 && buf[3] == 3, "after ACK 2 the window starts again at block 3");
	uint8_t e[4] = {0, TFTP_ERROR, 0, 0};
	sendto(fd, e, 4, 0, (struct sockaddr *)&tid, sizeof(tid));
	usleep(200 * 1000);
	while (recv_pkt(fd, buf, sizeof(buf), &from, 100) > 0)
		;
	check(strstr(lastlog, "aborted by the client") != NULL, "an ERROR from the client ends the transfer");

	/* netascii, blksize 8, windowsize 3, ACKs of the middle of windows:
	 * every block is made again from where the ACKed one ended, CR LF
	 * and CR NUL pairs split across blocks included */
	synth_size = 3000;
	size_t want_len = 0;
	static uint8_t want[7000], got_na[7000];
	for (int64_t i = 0; i < synth_size; i++) {
		uint8_t c = byte_at((uint64_t)i);
		if (c == '\n' || c == '\r') {
			want[want_len++] = '\r';
			want[want_len++] = c == '\n' ? '\n' : 0;
		} else {
			want[want_len++] = c;
		}
	}
	{
		uint8_t pkt[64];
		static const char rq[] = "\0\1synth\0netascii\0blksize\0"
					 "8\0windowsize\0"
					 "3\0tsize\0"
					 "0";
		struct sockaddr_in srv4 = {
		    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		memcpy(pkt, rq, sizeof(rq));
		sendto(fd, pkt, sizeof(rq), 0, (struct sockaddr *)&srv4, sizeof(srv4));
		n = recv_pkt(fd, buf, sizeof(buf), &tid, 2000);
		check(n > 2 && buf[1] == TFTP_OACK && !memmem(buf, (size_t)n, "tsize", 5),
		      "netascii: OACK without tsize (its size is not known in advance)");
		send_ack(fd, &tid, 0);
		size_t len = 0;
		unsigned next = 1, round = 0, bad_na = 0;
		bool done = false;
		while (!done && !bad_na && round < 10000) {
			/* one window: up to 3 blocks; odd rounds keep only the
			 * first block and ACK it, as if the others were lost */
			unsigned acked = next - 1;
			for (unsigned j = 0; j < 3; j++) {
				n = recv_pkt(fd, buf, sizeof(buf), &from, 300);
				if (n <= 0)
					break;
				unsigned num = (unsigned)(buf[2] << 8 | buf[3]);
				if (n < 4 || buf[1] != TFTP_DATA || num != ((next + j) & 0xffff)) {
					bad_na++;
					break;
				}
				if (round % 2 == 0 || j == 0) {
					memcpy(got_na + len, buf + 4, (size_t)(n - 4));
					len += (size_t)(n - 4);
					acked = next + j;
					done = n < 12;
				}
				if (n < 12)
					break;
			}
			if (acked == next - 1)
				break; /* nothing came */
			usleep(2000);  /* the rest of a window cut short arrives, then is dropped */
			while (recv_pkt(fd, buf, sizeof(buf), &from, 0) > 0)
				;
			send_ack(fd, &tid, acked & 0xffff);
			next = acked + 1;
			round++;
		}
		check(!bad_na && done && len == want_len && !memcmp(got_na, want, len),
		      "netascii with windows and partial ACKs: the RFC 764 conversion, nothing lost or doubled");
		if (!(len == want_len && !memcmp(got_na, want, len)))
			printf("netascii: got %zu bytes, want %zu\n", len, want_len);
	}

	/* a request that is not a request, an unknown file */
	int d = client_socket();
	struct sockaddr_in srv = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	sendto(d, "\0\1a\0oct", 7, 0, (struct sockaddr *)&srv, sizeof(srv));
	n = recv_pkt(d, buf, sizeof(buf), &from, 1000);
	check(n > 4 && buf[1] == TFTP_ERROR && buf[3] == TFTP_EBADOP, "a malformed request gets ERROR 4");
	sendto(d, "\0\1nothere\0octet\0", 16, 0, (struct sockaddr *)&srv, sizeof(srv));
	n = recv_pkt(d, buf, sizeof(buf), &from, 1000);
	check(n > 4 && buf[1] == TFTP_ERROR && buf[3] == TFTP_ENOTFOUND, "an unknown file gets ERROR 1");
	sendto(d, "\0\1../synth\0octet\0", 17, 0, (struct sockaddr *)&srv, sizeof(srv));
	n = recv_pkt(d, buf, sizeof(buf), &from, 1000);
	check(n > 4 && buf[1] == TFTP_ERROR && buf[3] == TFTP_EACCESS, "'../synth' gets ERROR 2");
	sendto(d, "\0\1who\0octet\0", 12, 0, (struct sockaddr *)&srv, sizeof(srv));
	n = recv_pkt(d, buf, sizeof(buf), &from, 1000);
	check(n > 4 && buf[1] == TFTP_ERROR && buf[3] == TFTP_EACCESS &&
		  strstr(lastlog, ": peer and local address known"),
	      "the resolver gets the peer's and the local address, and its reason is logged");
	/* a flood of bad requests: each is answered, few are logged */
	int before = refusal_lines, answered = 0;
	for (int i = 0; i < 30; i++) {
		sendto(d, "\0\1nothere\0octet\0", 16, 0, (struct sockaddr *)&srv, sizeof(srv));
		n = recv_pkt(d, buf, sizeof(buf), &from, 1000);
		answered += n > 4 && buf[1] == TFTP_ERROR && buf[3] == TFTP_ENOTFOUND;
	}
	check(answered == 30, "30 requests for a missing file get 30 ERRORs");
	check(refusal_lines <= TFTP_REFUSALS_PER_PEER && refusal_lines - before < 30,
	      "but one address gets at most TFTP_REFUSALS_PER_PEER refusal lines a minute in the log");
	close(d);
	close(fd);
	/* per-peer bound 2: the third request from this address is refused */
	int c[3];
	for (int i = 0; i < 3; i++) {
		c[i] = client_socket();
		send_rrq(c[i], port, "", 0);
		usleep(50 * 1000);
	}
	n = recv_pkt(c[2], buf, sizeof(buf), &from, 1000);
	check(n > 4 && buf[1] == TFTP_ERROR && strstr((char *)buf + 4, "too many"),
	      "a third transfer from one address is refused with an ERROR");
	for (int i = 0; i < 3; i++)
		close(c[i]);

	stop = 1;
	pthread_join(th, NULL);
	tftp_server_free(s);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_parser();
	test_normalise();
	test_protocol();
	printf("%d of %d checks failed\n", failures, checks);
	return failures ? 1 : 0;
}
