/* SPDX-License-Identifier: MIT */
/*
 * tools/initrd.c on archives made here in memory: what a well-formed one
 * holds, hostile cpio headers (names of no size or too long, bad hex, no
 * NUL, sizes past the end), and thousands of random corruptions of a
 * gzip, a zstd and a plain one: each must end with a problem or a
 * complete read, never a crash (run it under ASan/UBSan).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include "initrd.h"

static int failures;

#define expect(cond, ...)                                                                                              \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                           \
			fprintf(stderr, __VA_ARGS__);                                                                  \
			fputc('\n', stderr);                                                                           \
			failures++;                                                                                    \
		}                                                                                                      \
	} while (0)

struct mem {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct mem *m, const void *p, size_t n)
{
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2 + 4096;
		m->p = realloc(m->p, m->cap);
		if (!m->p)
			abort();
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
}

static void pad4(struct mem *m)
{
	static const char zero[4];
	put(m, zero, (4 - m->len % 4) % 4);
}

/* One newc member. */
static void member(struct mem *m, const char *name, unsigned mode, const char *data, size_t len)
{
	char h[111];
	snprintf(h, sizeof(h), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 1u, mode, 0u, 0u, 1u, 0u,
		 (unsigned)len, 0u, 0u, 0u, 0u, (unsigned)strlen(name) + 1, 0u);
	put(m, h, 110);
	put(m, name, strlen(name) + 1);
	pad4(m);
	put(m, data, len);
	pad4(m);
}

static void trailer(struct mem *m)
{
	member(m, "TRAILER!!!", 0, "", 0);
	static const char zero[512];
	put(m, zero, (512 - m->len % 512) % 512);
}

/* An initramfs-tools NFS archive, with a file big enough to cross the
 * reader's chunks. */
static void nfs_archive(struct mem *m)
{
	member(m, ".", S_IFDIR | 0755, "", 0);
	member(m, "./scripts/functions", S_IFREG | 0644, "x\n", 2);
	member(m, "./scripts/nfs", S_IFREG | 0644, "x\n", 2);
	member(m, "usr/bin/nfsmount", S_IFREG | 0755, "elf", 3);
	member(m, "conf/initramfs.conf", S_IFREG | 0644, "BOOT=local\n", 11);
	member(m, "conf/conf.d/b", S_IFREG | 0644, "BOOT=nfs\n", 9);
	member(m, "conf/conf.d/a", S_IFREG | 0644, "BOOT='local'\n", 13);
	static char big[200000];
	memset(big, 'z', sizeof(big));
	member(m, "usr/lib/modules/6.1.0-18-arm64/kernel/big.bin", S_IFREG | 0644, big, sizeof(big));
	member(m, "usr/lib/modules/6.1.0-18-arm64/kernel/fs/nfs/nfs.ko.zst", S_IFREG | 0644, "ko", 2);
	member(m, "usr/lib/modules/6.1.0-18-arm64/modules.builtin", S_IFREG | 0644, "kernel/fs/ext4/ext4.ko\n", 23);
	trailer(m);
}

static ssize_t mem_read(void *arg, void *buf, size_t n, uint64_t off)
{
	const struct mem *m = arg;
	if (off >= m->len)
		return 0;
	if (n > m->len - off)
		n = m->len - (size_t)off;
	memcpy(buf, m->p + off, n);
	return (ssize_t)n;
}

static int scan(const struct mem *m, struct initrd_facts *f)
{
	return initrd_scan(mem_read, (void *)m, m->len, f);
}

static void gzip_of(const struct mem *in, struct mem *out)
{
	z_stream z = {0};
	if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	out->cap = deflateBound(&z, in->len) + 64;
	out->p = malloc(out->cap);
	z.next_in = in->p;
	z.avail_in = (uInt)in->len;
	z.next_out = out->p;
	z.avail_out = (uInt)out->cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	out->len = z.total_out;
	deflateEnd(&z);
}

static void zstd_of(const struct mem *in, struct mem *out)
{
	out->cap = ZSTD_compressBound(in->len);
	out->p = malloc(out->cap);
	out->len = ZSTD_compress(out->p, out->cap, in->p, in->len, 3);
	if (ZSTD_isError(out->len))
		abort();
}

static void test_good(void)
{
	struct mem early = {0}, plain = {0}, gz = {0}, both = {0};
	member(&early, "kernel/x86/microcode/GenuineIntel.bin", S_IFREG | 0644, "ucode", 5);
	trailer(&early);
	nfs_archive(&plain);
	gzip_of(&plain, &gz);
	put(&both, early.p, early.len);
	put(&both, gz.p, gz.len);
	struct initrd_facts f;
	int r = scan(&both, &f);
	expect(r == 0 && f.complete, "good archive: r=%d problem '%s'", r, f.problem);
	expect(!strcmp(f.formats, "cpio, gzip"), "formats '%s'", f.formats);
	expect(f.initramfs_tools && f.scripts_nfs && f.nfsmount && f.nfs_ko && !f.nfsv3_ko && !f.nfs_builtin,
	       "facts: tools %d nfs %d nfsmount %d ko %d v3 %d builtin %d", f.initramfs_tools, f.scripts_nfs,
	       f.nfsmount, f.nfs_ko, f.nfsv3_ko, f.nfs_builtin);
	expect(!strcmp(f.kver, "6.1.0-18-arm64"), "kver '%s'", f.kver);
	/* conf.d files count in name order: b (nfs) after a (local) */
	expect(!strcmp(f.boot, "local") && !strcmp(f.boot_confd, "nfs") && !strcmp(f.boot_confd_file, "b"),
	       "boot '%s', conf.d '%s' from '%s'", f.boot, f.boot_confd, f.boot_confd_file);
	expect(f.entries == 11, "%u entries", f.entries);
	free(early.p);
	free(plain.p);
	free(gz.p);
	free(both.p);
}

/* A hand-made header with @field (0-12) set to @value, or the text @raw
 * over the whole header. */
static void bad_header(const char *what, int field, const char *value, const char *want)
{
	struct mem m = {0};
	member(&m, "conf/initramfs.conf", S_IFREG | 0644, "BOOT=nfs\n", 9);
	memcpy(m.p + 6 + 8 * field, value, 8);
	trailer(&m);
	struct initrd_facts f;
	int r = scan(&m, &f);
	expect(r == 0 && !f.complete && strstr(f.problem, want), "%s: r=%d complete=%d problem '%s' (want '%s')", what,
	       r, f.complete, f.problem, want);
	free(m.p);
}

static void test_headers(void)
{
	bad_header("non-hex mode", 1, "0000G1A4", "not a cpio (newc) header");
	bad_header("name of size 0", 11, "00000000", "name of 0 bytes");
	bad_header("name of 1 GiB", 11, "40000000", "name of 1073741824 bytes");
	bad_header("name one byte short (no NUL)", 11, "00000013", "not NUL-terminated");
	bad_header("file size past the end", 6, "7FFFFFFF", "truncated inside cpio member");
	struct mem m = {0};
	put(&m, "070701", 6);
	struct initrd_facts f;
	int r = scan(&m, &f);
	expect(r == 0 && !f.complete && strstr(f.problem, "truncated"), "a lone magic: '%s'", f.problem);
	free(m.p);
	m = (struct mem){0};
	put(&m, "BZh91AY&SY", 10);
	r = scan(&m, &f);
	expect(r == 0 && !f.complete && strstr(f.problem, "bzip2 compression at byte 0"), "bzip2: '%s'", f.problem);
	free(m.p);
	m = (struct mem){0};
	r = scan(&m, &f);
	expect(r == 0 && f.complete && f.entries == 0, "an empty file: complete %d '%s'", f.complete, f.problem);
}

/* Flip random bytes of @base @rounds times: every scan returns 0 and
 * either completes or says what is wrong. */
static void mutate(const char *what, const struct mem *base, int rounds)
{
	struct mem m = {malloc(base->len), base->len, base->len};
	int problems = 0;
	for (int i = 0; i < rounds; i++) {
		memcpy(m.p, base->p, base->len);
		m.len = base->len;
		int flips = 1 + rand() % 8;
		for (int k = 0; k < flips; k++)
			m.p[rand() % m.len] = (unsigned char)rand();
		/* sometimes cut it too */
		m.len = rand() % 4 ? base->len : (size_t)rand() % base->len;
		struct initrd_facts f;
		int r = scan(&m, &f);
		if (r != 0 || (!f.complete && !f.problem[0])) {
			expect(0, "%s round %d: r=%d complete=%d problem '%s'", what, i, r, f.complete, f.problem);
			break;
		}
		problems += !f.complete;
	}
	expect(problems > 0, "%s: no corruption was ever noticed", what);
	free(m.p);
}

int main(void)
{
	srand(11);
	test_good();
	test_headers();
	struct mem plain = {0}, gz = {0}, zs = {0};
	nfs_archive(&plain);
	gzip_of(&plain, &gz);
	zstd_of(&plain, &zs);
	mutate("plain cpio", &plain, 1000);
	mutate("gzip", &gz, 2000);
	mutate("zstd", &zs, 2000);
	free(plain.p);
	free(gz.p);
	free(zs.p);
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("initrd: all passed\n");
	return 0;
}
