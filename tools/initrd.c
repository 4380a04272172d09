/* SPDX-License-Identifier: MIT */
/* What an initramfs holds, read as the kernel unpacks it (initrd.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "initrd.h"

#define IN_CHUNK (64 * 1024)
#define OUT_CHUNK (256 * 1024)
#define CPIO_HEADER 110
#define CPIO_NAME_MAX 4096
#define KEEP_MAX (1024 * 1024)	   /* the small files whose content is read */
#define XZ_MEMLIMIT (256ull << 20) /* xz -9 needs 65 MiB to decode */
#define ZSTD_WINDOW_LOG_MAX 27	   /* 128 MiB: zstd's default limit, explicit */
#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20) /* what a legacy block unpacks to at most */

enum cpio_state { C_START, C_HEADER, C_NAME, C_DATA };

struct cpio {
	enum cpio_state state;
	uint64_t pos; /* offset in the current stream: members are 4-byte aligned */
	uint8_t hdr[CPIO_HEADER];
	size_t have;
	char name[CPIO_NAME_MAX + 1];
	uint32_t namesize, mode;
	uint64_t filesize;
	uint64_t left; /* bytes of the member's data (then padding) still to come */
	uint64_t pad;  /* padding after the data */
	char *keep;    /* content of a member worth reading, KEEP_MAX at most */
	size_t keep_len;
	bool keeping;
	bool stop;	   /* a problem was found (facts->problem) */
	uint64_t unpacked; /* decompressed bytes: the cap */
	struct initrd_facts *facts;
	int err; /* -ENOMEM */
};

static void problem(struct cpio *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct cpio *c, const char *fmt, ...)
{
	if (!c->stop) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->facts->problem, sizeof(c->facts->problem), fmt, ap);
		va_end(ap);
	}
	c->stop = true;
}

static void add_format(struct initrd_facts *f, const char *fmt)
{
	size_t n = strlen(f->formats);
	/* the same format twice in a row is said once */
	const char *last = strrchr(f->formats, ' ');
	last = last ? last + 1 : f->formats;
	if (!strcmp(last, fmt))
		return;
	snprintf(f->formats + n, sizeof(f->formats) - n, "%s%s", n ? ", " : "", fmt);
}

static bool parse_hex8(const uint8_t *p, uint32_t *ret)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*ret = v;
	return true;
}

/* The value of the last "BOOT=..." of shell file @s ("" if none). */
static void shell_boot(const char *s, char *ret, size_t size)
{
	ret[0] = 0;
	for (const char *line = s; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *p = line + strspn(line, " \t");
		if (!strncmp(p, "export", 6) && (p[6] == ' ' || p[6] == '\t'))
			p += 6 + strspn(p + 6, " \t");
		if (strncmp(p, "BOOT=", 5))
			continue;
		p += 5;
		size_t n = strcspn(p, " \t\n;#");
		char v[64];
		snprintf(v, sizeof(v), "%.*s", (int)(n < sizeof(v) - 1 ? n : sizeof(v) - 1), p);
		/* BOOT="nfs" or BOOT='nfs' */
		size_t vl = strlen(v);
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
			memmove(v, v + 1, vl - 2);
			v[vl - 2] = 0;
		}
		snprintf(ret, size, "%s", v);
	}
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);
	return n >= t && !strcmp(s + n - t, tail);
}

/* "nfs.ko", "nfs.ko.xz", "nfs.ko.zst", "nfs.ko.gz" */
static bool is_module(const char *base, const char *mod)
{
	size_t n = strlen(mod);
	if (strncmp(base, mod, n) || strncmp(base + n, ".ko", 3))
		return false;
	const char *z = base + n + 3;
	return !*z || !strcmp(z, ".xz") || !strcmp(z, ".zst") || !strcmp(z, ".gz");
}

/* The member's name as matched: no leading "./" or "/", no "usr/". */
static const char *plain_name(const char *name)
{
	for (;;) {
		if (name[0] == '/')
			name++;
		else if (name[0] == '.' && name[1] == '/')
			name += 2;
		else
			break;
	}
	if (!strncmp(name, "usr/", 4))
		name += 4;
	return name;
}

/* Is the content of member @name wanted (read into c->keep)? */
static bool wanted(const char *name)
{
	return !strcmp(name, "conf/initramfs.conf") || !strncmp(name, "conf/conf.d/", 12) ||
	       (!strncmp(name, "lib/modules/", 12) && ends_with(name, "/modules.builtin"));
}

/* A member's name is known: note what it tells. */
static void member(struct cpio *c, const char *name, uint32_t mode)
{
	struct initrd_facts *f = c->facts;
	f->entries++;
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (!strcmp(name, "scripts/functions") || !strcmp(name, "conf/initramfs.conf"))
		f->initramfs_tools = true;
	else if (!strcmp(name, "scripts/nfs"))
		f->scripts_nfs = true;
	else if (!strcmp(name, "bin/nfsmount"))
		f->nfsmount = true;
	else if (!strcmp(name, "sbin/mount.nfs") || !strcmp(name, "bin/mount.nfs"))
		f->mount_nfs = true;
	else if (!strcmp(name, "sbin/nfsroot") || !strcmp(name, "bin/nfsroot"))
		f->dracut_nfs = true;
	if (!strncmp(name, "lib/dracut/", 11))
		f->dracut = true;
	if (!strncmp(name, "lib/modules/", 12)) {
		const char *v = name + 12;
		size_t n = strcspn(v, "/");
		if (!f->kver[0] && n && v[n] == '/' && n < sizeof(f->kver))
			snprintf(f->kver, sizeof(f->kver), "%.*s", (int)n, v);
		if (strstr(name, "/fs/nfs/") && (S_ISREG(mode) || S_ISLNK(mode))) {
			if (is_module(base, "nfs"))
				f->nfs_ko = true;
			else if (is_module(base, "nfsv3"))
				f->nfsv3_ko = true;
		}
	}
}

/* The content of a wanted member has been read: what it says. */
static void kept(struct cpio *c, const char *name)
{
	struct initrd_facts *f = c->facts;
	c->keep[c->keep_len] = 0;
	if (!strcmp(name, "conf/initramfs.conf")) {
		shell_boot(c->keep, f->boot, sizeof(f->boot));
	} else if (!strncmp(name, "conf/conf.d/", 12)) {
		char boot[sizeof(f->boot_confd)];
		const char *file = name + 12;
		shell_boot(c->keep, boot, sizeof(boot));
		/* the init script sources conf.d/ in glob (name) order */
		if (boot[0] && !strchr(file, '/') && strcmp(file, f->boot_confd_file) > 0) {
			snprintf(f->boot_confd, sizeof(f->boot_confd), "%s", boot);
			snprintf(f->boot_confd_file, sizeof(f->boot_confd_file), "%s", file);
		}
	} else {
		/* modules.builtin: one path a line, "kernel/fs/nfs/nfs.ko" */
		for (const char *p = c->keep; (p = strstr(p, "fs/nfs/nfs.ko")); p++)
			if ((p == c->keep || p[-1] == '/') && (p[13] == '\n' || p[13] == 0))
				f->nfs_builtin = true;
	}
}

/* Feed @n bytes of a cpio stream; stops early only after a trailer (the
 * state is C_START again) or a problem.  Returns the bytes used. */
static size_t cpio_feed(struct cpio *c, const uint8_t *b, size_t n)
{
	size_t used = 0;
	while (used < n && !c->stop) {
		size_t k;
		switch (c->state) {
		case C_START:
			return used;
		case C_HEADER:
			k = CPIO_HEADER - c->have;
			if (k > n - used)
				k = n - used;
			memcpy(c->hdr + c->have, b + used, k);
			c->have += k;
			used += k;
			c->pos += k;
			if (c->have < CPIO_HEADER)
				break;
			uint32_t fields[13];
			bool ok = !memcmp(c->hdr, "07070", 5) && (c->hdr[5] == '1' || c->hdr[5] == '2');
			for (int i = 0; ok && i < 13; i++)
				ok = parse_hex8(c->hdr + 6 + 8 * i, &fields[i]);
			if (!ok) {
				problem(c, "not a cpio (newc) header at byte %llu of the archive",
					(unsigned long long)(c->pos - CPIO_HEADER));
				break;
			}
			c->mode = fields[1];
			c->filesize = fields[6];
			c->namesize = fields[11];
			if (c->namesize < 2 || c->namesize > CPIO_NAME_MAX) {
				problem(c, "a cpio member's name of %u bytes at byte %llu (at most %d)", c->namesize,
					(unsigned long long)(c->pos - CPIO_HEADER), CPIO_NAME_MAX);
				break;
			}
			c->have = 0;
			c->state = C_NAME;
			break;
		case C_NAME: {
			/* the name, its NUL, and padding to 4 bytes */
			uint64_t end = c->pos - c->have + c->namesize;
			uint32_t padded = c->namesize + (uint32_t)((4 - end % 4) % 4);
			k = padded - c->have;
			if (k > n - used)
				k = n - used;
			for (size_t i = 0; i < k; i++)
				if (c->have + i < c->namesize)
					c->name[c->have + i] = (char)b[used + i];
			c->have += k;
			used += k;
			c->pos += k;
			if (c->have < padded)
				break;
			c->have = 0;
			if (c->name[c->namesize - 1] != 0 || strlen(c->name) != c->namesize - 1) {
				problem(c, "a cpio member's name is not NUL-terminated");
				break;
			}
			if (!strcmp(c->name, "TRAILER!!!")) {
				c->state = C_START;
				return used;
			}
			const char *name = plain_name(c->name);
			member(c, name, c->mode);
			c->keeping = S_ISREG(c->mode) && c->filesize <= KEEP_MAX && wanted(name);
			c->keep_len = 0;
			c->left = c->filesize;
			c->pad = (4 - (c->pos + c->filesize) % 4) % 4;
			c->state = C_DATA;
			if (c->left == 0 && c->keeping)
				kept(c, name);
			if (c->left + c->pad == 0)
				c->state = C_HEADER;
			break;
		}
		case C_DATA:
			k = n - used;
			if (c->left) {
				if (k > c->left)
					k = (size_t)c->left;
				if (c->keeping) {
					memcpy(c->keep + c->keep_len, b + used, k);
					c->keep_len += k;
				}
				c->left -= k;
				if (c->left == 0 && c->keeping)
					kept(c, plain_name(c->name));
			} else {
				if (k > c->pad)
					k = (size_t)c->pad;
				c->pad -= k;
			}
			used += k;
			c->pos += k;
			if (c->left == 0 && c->pad == 0)
				c->state = C_HEADER;
			break;
		}
	}
	return used;
}

/* Where the stream stands when its input ends: a problem unless between
 * archives. */
static void cpio_end(struct cpio *c, const char *what)
{
	if (c->stop || c->state == C_START)
		return;
	if (c->state == C_HEADER && c->have == 0)
		problem(c, "the %s part ends without a cpio trailer (truncated?)", what);
	else
		problem(c, "the %s part is truncated inside cpio member '%.100s'", what,
			c->state == C_HEADER ? "(header)" : c->name);
}

/* Start a cpio archive at stream offset @pos. */
static void cpio_begin(struct cpio *c, uint64_t pos)
{
	c->state = C_HEADER;
	c->have = 0;
	c->pos = pos;
}

/* Decompressed bytes: archives, zero padding between them, nothing else.
 * False once reading must stop. */
static bool sink(struct cpio *c, const uint8_t *b, size_t n, const char *what)
{
	if (c->unpacked + n > INITRD_UNPACKED_MAX) {
		problem(c, "unpacks to more than %llu MiB: not read further",
			(unsigned long long)(INITRD_UNPACKED_MAX >> 20));
		c->facts->too_big = true;
		return false;
	}
	c->unpacked += n;
	c->facts->unpacked += n;
	size_t used = 0;
	while (used < n && !c->stop) {
		if (c->state == C_START) {
			while (used < n && b[used] == 0)
				used++, c->pos++;
			if (used == n)
				break;
			if (b[used] != '0') {
				problem(c, "data after the cpio archive inside the %s stream", what);
				break;
			}
			cpio_begin(c, c->pos);
		}
		used += cpio_feed(c, b + used, n - used);
	}
	return !c->stop;
}

struct input {
	initrd_read_fn read;
	void *arg;
	uint64_t size;
	uint8_t *buf; /* IN_CHUNK */
	uint8_t *out; /* OUT_CHUNK */
};

/* Read the next chunk at @off: bytes read, 0 at the end, or -errno */
static ssize_t chunk(struct input *in, uint64_t off, uint8_t *buf, size_t n)
{
	if (off >= in->size)
		return 0;
	if (n > in->size - off)
		n = (size_t)(in->size - off);
	return in->read(in->arg, buf, n, off);
}

/* Each unpacker reads the stream that starts at @off, feeds what it
 * unpacks to sink(), and returns 0 with *@end where its stream ended (the
 * next part starts there), or -errno for a read error; what is wrong
 * with the stream is a problem of @c. */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int unpack_gzip(struct input *in, uint64_t off, struct cpio *c, uint64_t *end)
{
	z_stream z = {0};
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	int r = 0, zr = Z_OK;
	while (!c->stop) {
		ssize_t k = chunk(in, off, in->buf, IN_CHUNK);
		if (k < 0) {
			r = (int)k;
			break;
		}
		if (k == 0) {
			problem(c, "the gzip stream is truncated");
			break;
		}
		z.next_in = in->buf;
		z.avail_in = (uInt)k;
		do {
			z.next_out = in->out;
			z.avail_out = OUT_CHUNK;
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
				problem(c, "the gzip stream is corrupt (%s)", z.msg ? z.msg : "inflate failed");
				break;
			}
			if (!sink(c, in->out, OUT_CHUNK - z.avail_out, "gzip"))
				break;
		} while (zr != Z_STREAM_END && (z.avail_out == 0 || z.avail_in));
		off += (uint64_t)k - z.avail_in;
		if (zr == Z_STREAM_END)
			break;
	}
	inflateEnd(&z);
	*end = off;
	return r;
}

static int unpack_zstd(struct input *in, uint64_t off, struct cpio *c, uint64_t *end)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	if (!z)
		return -ENOMEM;
	ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
	int r = 0;
	size_t zr = 1;
	while (!c->stop && zr != 0) {
		ssize_t k = chunk(in, off, in->buf, IN_CHUNK);
		if (k < 0) {
			r = (int)k;
			break;
		}
		if (k == 0) {
			problem(c, "the zstd stream is truncated");
			break;
		}
		ZSTD_inBuffer zin = {in->buf, (size_t)k, 0};
		ZSTD_outBuffer zout;
		do {
			zout = (ZSTD_outBuffer){in->out, OUT_CHUNK, 0};
			zr = ZSTD_decompressStream(z, &zout, &zin);
			if (ZSTD_isError(zr)) {
				problem(c, "the zstd stream is corrupt (%s)", ZSTD_getErrorName(zr));
				break;
			}
			if (!sink(c, in->out, zout.pos, "zstd") || zr == 0)
				break;
		} while (zin.pos < zin.size || zout.pos == zout.size);
		off += zin.pos;
		if (zr == 0 && !c->stop) {
			/* frames one after the other are one stream */
			uint8_t magic[4];
			k = chunk(in, off, magic, 4);
			if (k < 0) {
				r = (int)k;
				break;
			}
			if (k == 4 && le32(magic) == ZSTD_MAGICNUMBER)
				zr = 1;
		}
	}
	ZSTD_freeDCtx(z);
	*end = off;
	return r;
}

static int unpack_xz(struct input *in, uint64_t off, struct cpio *c, uint64_t *end, bool alone)
{
	lzma_stream s = LZMA_STREAM_INIT;
	const char *what = alone ? "lzma" : "xz";
	lzma_ret lr = alone ? lzma_alone_decoder(&s, XZ_MEMLIMIT) : lzma_stream_decoder(&s, XZ_MEMLIMIT, 0);
	if (lr != LZMA_OK)
		return -ENOMEM;
	int r = 0;
	while (!c->stop && lr != LZMA_STREAM_END) {
		ssize_t k = chunk(in, off, in->buf, IN_CHUNK);
		if (k < 0) {
			r = (int)k;
			break;
		}
		s.next_in = in->buf;
		s.avail_in = (size_t)k;
		do {
			s.next_out = in->out;
			s.avail_out = OUT_CHUNK;
			lr = lzma_code(&s, k == 0 ? LZMA_FINISH : LZMA_RUN);
			if (lr != LZMA_OK && lr != LZMA_STREAM_END) {
				if (lr == LZMA_MEMLIMIT_ERROR)
					problem(c, "the %s stream wants more than %llu MiB to unpack", what,
						(unsigned long long)(XZ_MEMLIMIT >> 20));
				else if (k == 0 || lr == LZMA_BUF_ERROR)
					problem(c, "the %s stream is truncated", what);
				else
					problem(c, "the %s stream is corrupt (error %d)", what, (int)lr);
				break;
			}
			if (!sink(c, in->out, OUT_CHUNK - s.avail_out, what))
				break;
		} while (lr != LZMA_STREAM_END && (s.avail_out == 0 || s.avail_in));
		off += (uint64_t)k - s.avail_in;
		if (k == 0 && lr != LZMA_STREAM_END) {
			problem(c, "the %s stream is truncated", what);
			break;
		}
	}
	lzma_end(&s);
	*end = off;
	return r;
}

/* lz4's legacy format (lz4 -l, what the kernel reads): the magic, then
 * blocks of a 4-byte little-endian size and the data, each unpacking to
 * at most 8 MiB; the stream ends with the input or at the next magic. */
static int unpack_lz4(struct input *in, uint64_t off, struct cpio *c, uint64_t *end)
{
	size_t bound = (size_t)LZ4_compressBound(LZ4_LEGACY_BLOCK);
	uint8_t *src = malloc(bound), *dst = malloc(LZ4_LEGACY_BLOCK);
	int r = 0;
	if (!src || !dst) {
		r = -ENOMEM;
		goto out;
	}
	off += 4; /* the magic */
	while (!c->stop) {
		uint8_t len[4];
		ssize_t k = chunk(in, off, len, 4);
		if (k < 0) {
			r = (int)k;
			break;
		}
		if (k == 0)
			break; /* the end of the input ends the stream */
		if (k < 4) {
			problem(c, "the lz4 stream is truncated");
			break;
		}
		uint32_t n = le32(len);
		if (n == LZ4_LEGACY_MAGIC) {
			off += 4;
			continue;
		}
		if (n == 0)
			break;
		if (n > bound) {
			problem(c, "the lz4 stream is corrupt (a block of %u bytes)", n);
			break;
		}
		k = chunk(in, off + 4, src, n);
		if (k < 0) {
			r = (int)k;
			break;
		}
		if ((size_t)k < n) {
			problem(c, "the lz4 stream is truncated");
			break;
		}
		off += 4 + n;
		int d = LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, LZ4_LEGACY_BLOCK);
		if (d < 0) {
			problem(c, "the lz4 stream is corrupt");
			break;
		}
		if (!sink(c, dst, (size_t)d, "lz4"))
			break;
	}
out:
	free(src);
	free(dst);
	*end = off;
	return r;
}

int initrd_scan(initrd_read_fn read, void *arg, uint64_t size, struct initrd_facts *ret)
{
	struct initrd_facts f;
	memset(&f, 0, sizeof(f));
	struct cpio c = {.state = C_START, .facts = &f};
	struct input in = {.read = read, .arg = arg, .size = size};
	in.buf = malloc(IN_CHUNK);
	in.out = malloc(OUT_CHUNK);
	c.keep = malloc(KEEP_MAX + 1);
	int r = 0;
	if (!in.buf || !in.out || !c.keep) {
		r = -ENOMEM;
		goto out;
	}
	uint64_t off = 0;
	while (!c.stop) {
		ssize_t k = chunk(&in, off, in.buf, IN_CHUNK);
		if (k < 0) {
			r = (int)k;
			break;
		}
		if (k == 0) {
			cpio_end(&c, "uncompressed cpio");
			break;
		}
		const uint8_t *b = in.buf;
		if (c.state != C_START) {
			/* an archive not compressed (the early microcode one) */
			if (c.unpacked + (uint64_t)k > INITRD_UNPACKED_MAX) {
				problem(&c, "holds more than %llu MiB of cpio: not read further",
					(unsigned long long)(INITRD_UNPACKED_MAX >> 20));
				f.too_big = true;
				break;
			}
			size_t used = cpio_feed(&c, b, (size_t)k);
			off += used;
			c.unpacked += used;
			f.unpacked += used;
			continue;
		}
		if (b[0] == 0) {
			size_t z = 0;
			while (z < (size_t)k && b[z] == 0)
				z++;
			off += z;
			continue;
		}
		uint64_t end = off;
		const char *fmt = NULL;
		if (k >= 6 && !memcmp(b, "07070", 5)) {
			add_format(&f, "cpio");
			cpio_begin(&c, off);
			continue;
		} else if (k >= 3 && b[0] == 0x1f && (b[1] == 0x8b || b[1] == 0x9e)) {
			add_format(&f, fmt = "gzip");
			r = unpack_gzip(&in, off, &c, &end);
		} else if (k >= 4 && le32(b) == ZSTD_MAGICNUMBER) {
			add_format(&f, fmt = "zstd");
			r = unpack_zstd(&in, off, &c, &end);
		} else if (k >= 6 && !memcmp(b,
					     "\xfd"
					     "7zXZ\0",
					     6)) {
			add_format(&f, fmt = "xz");
			r = unpack_xz(&in, off, &c, &end, false);
		} else if (k >= 3 && b[0] == 0x5d && b[1] == 0 && b[2] == 0) {
			add_format(&f, fmt = "lzma");
			r = unpack_xz(&in, off, &c, &end, true);
		} else if (k >= 4 && le32(b) == LZ4_LEGACY_MAGIC) {
			add_format(&f, fmt = "lz4");
			r = unpack_lz4(&in, off, &c, &end);
		} else {
			const char *known = NULL;
			if (k >= 3 && !memcmp(b, "BZh", 3))
				known = "bzip2";
			else if (k >= 4 && !memcmp(b, "\x89LZO", 4))
				known = "lzo";
			else if (k >= 4 && le32(b) == 0x184d2204u)
				known = "lz4 frame";
			if (known)
				problem(&c,
					"%s compression at byte %llu: cowroot reads gzip, zstd, xz, lzma and lz4 "
					"(legacy) initramfs only",
					known, (unsigned long long)off);
			else
				problem(&c, "unknown data at byte %llu (neither cpio nor a compression it knows)",
					(unsigned long long)off);
			break;
		}
		if (r < 0)
			break;
		if (!c.stop)
			cpio_end(&c, fmt);
		if (end <= off) {
			problem(&c, "a compressed part at byte %llu is empty", (unsigned long long)off);
			break;
		}
		off = end;
		c.state = C_START;
	}
out:
	free(in.buf);
	free(in.out);
	free(c.keep);
	if (r == 0) {
		f.complete = !c.stop;
		*ret = f;
	}
	return r;
}
