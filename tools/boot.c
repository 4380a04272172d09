/* SPDX-License-Identifier: MIT */
/* The fleet's boot files over TFTP (boot.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "boot.h"
#include "bootfs.h"
#include "serve.h"

/* When a client last asked for anything, and what its last boot was */
struct seen {
	char name[COW_ENTITY_NAME_MAX + 1];
	int64_t last_ms;
	struct boot_status st;
};

struct boot_server {
	struct boot_config cfg;
	char store[PATH_MAX];
	struct cow_store *st;
	pthread_mutex_t seen_lock; /* seen: written by the TFTP thread, read by boot_server_status */
	struct seen *seen;
	size_t nseen, capseen;
};

int boot_server_status(struct boot_server *b, const char *name, struct boot_status *ret)
{
	int r = -ENOENT;
	pthread_mutex_lock(&b->seen_lock);
	for (size_t i = 0; i < b->nseen; i++)
		if (!strcmp(b->seen[i].name, name)) {
			*ret = b->seen[i].st;
			r = ret->began ? 0 : -ENOENT;
			break;
		}
	pthread_mutex_unlock(&b->seen_lock);
	return r;
}

/* Client @name (its entry @s) was served @real: a kernel? */
static void note_kernel(struct boot_server *b, struct seen *s, const char *real)
{
	const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	bool vmlinuz = !strncmp(base, "vmlinuz", 7);
	bool pi = !strncmp(base, "kernel", 6) && strlen(base) > 10 && !strcmp(base + strlen(base) - 4, ".img");
	if (!s || (!vmlinuz && !pi))
		return;
	pthread_mutex_lock(&b->seen_lock);
	snprintf(s->st.kernel, sizeof(s->st.kernel), "%.255s", real);
	/* Debian names it by its version: vmlinuz-6.1.0-28-arm64 */
	snprintf(s->st.version, sizeof(s->st.version), "%s", vmlinuz && base[7] == '-' ? base + 8 : "");
	pthread_mutex_unlock(&b->seen_lock);
}

int boot_server_open(const struct boot_config *cfg, struct boot_server **ret)
{
	struct boot_server *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (strlen(cfg->store) >= sizeof(b->store)) {
		free(b);
		return -ENAMETOOLONG;
	}
	int r = cow_store_open(cfg->store, COW_STORE_READONLY, &b->st);
	if (r < 0) {
		free(b);
		return r;
	}
	b->cfg = *cfg;
	pthread_mutex_init(&b->seen_lock, NULL);
	strcpy(b->store, cfg->store);
	b->cfg.store = b->store;
	if (!b->cfg.boot_gap)
		b->cfg.boot_gap = BOOT_GAP;
	*ret = b;
	return 0;
}

void boot_server_close(struct boot_server *b)
{
	if (!b)
		return;
	cow_store_close(b->st);
	pthread_mutex_destroy(&b->seen_lock);
	free(b->seen);
	free(b);
}

static void boot_log(struct boot_server *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void boot_log(struct boot_server *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	if (!b->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	b->cfg.log(b->cfg.log_arg, line);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Client @name asks for something now: does that begin a boot?  Its
 * entry in *@ret_seen (NULL when out of memory: then every request is a
 * boot's first, which errs on the side of a reset). */
static bool boot_begins(struct boot_server *b, const char *name, struct seen **ret_seen)
{
	int64_t now = mono_ms();
	struct seen *s = NULL;
	for (size_t i = 0; i < b->nseen && !s; i++)
		if (!strcmp(b->seen[i].name, name))
			s = &b->seen[i];
	if (!s) {
		pthread_mutex_lock(&b->seen_lock);
		if (b->nseen == b->capseen) {
			size_t cap = b->capseen ? 2 * b->capseen : 64;
			void *p = realloc(b->seen, cap * sizeof(*b->seen));
			if (p) {
				b->seen = p;
				b->capseen = cap;
			}
		}
		if (b->seen && b->nseen < b->capseen) {
			s = &b->seen[b->nseen++];
			memset(s, 0, sizeof(*s));
			snprintf(s->name, sizeof(s->name), "%s", name);
			s->last_ms = INT64_MIN;
		}
		pthread_mutex_unlock(&b->seen_lock);
	}
	*ret_seen = s;
	if (!s)
		return true;
	bool begins = s->last_ms == INT64_MIN || now - s->last_ms >= (int64_t)b->cfg.boot_gap * 1000;
	s->last_ms = now;
	return begins;
}

/* Reset client @name's layer now: through the NFS server holding it, else
 * in the store.  0, or -errno with @why set. */
static int reset_now(struct boot_server *b, const char *name, char *why, size_t n)
{
	char req[COW_ENTITY_NAME_MAX + 16], reply[256];
	snprintf(req, sizeof(req), "reset %s\n", name);
	int r = serve_control(b->store, req, reply, sizeof(reply));
	if (r == 0)
		return 0;
	/* no server, or one that does not hold this layer: the store's own */
	if (r != -ENOENT && r != -ECONNREFUSED) {
		snprintf(why, n, "the NFS server could not reset it: %.200s", reply);
		return r;
	}
	struct cow_store *st;
	r = cow_store_open(b->store, 0, &st);
	if (r == 0) {
		r = cow_client_reset(st, name);
		cow_store_close(st);
	}
	if (r < 0)
		snprintf(why, n, "cannot reset its layer: %s", strerror(-r));
	return r;
}

bool boot_file_allowed(const char *real)
{
	static const char lib[] = "/usr/lib/linux-image-";
	if (!strncmp(real, "/boot/", 6))
		return true;
	if (!strncmp(real, lib, sizeof(lib) - 1)) {
		const char *slash = strchr(real + sizeof(lib) - 1, '/');
		return slash && slash > real + sizeof(lib) - 1;
	}
	if (strchr(real + 1, '/'))
		return false;
	return !strncmp(real, "/vmlinuz", 8) || !strncmp(real, "/initrd.img", 11);
}

/* ---- finding the kernel and its initramfs in a root ---- */

struct boot_files {
	char kernel[ROOT_PATH_MAX + 1]; /* resolved paths; "" when none */
	char initrd[ROOT_PATH_MAX + 1];
	char dtb[ROOT_PATH_MAX + 1];
	int64_t kernel_size;
};

/* The resolved path of regular file @path of @v in @real, if it is one of
 * the boot files: 0, or -errno. */
static int boot_path(struct cow_view *v, const char *path, char *real, size_t n, int64_t *size)
{
	struct cow_attr a;
	int r = root_walk(v, path, S_IFREG, &a, real, n);
	if (r < 0)
		return r;
	cow_forget(v, a.ino, 1);
	if (size)
		*size = a.size;
	return boot_file_allowed(real) ? 0 : -EACCES;
}

struct newest {
	const char *prefix;
	char name[COW_NAME_MAX + 1];
};

static int newest_one(void *arg, const char *name, mode_t type)
{
	struct newest *n = arg;
	size_t k = strlen(n->prefix);
	if ((type == S_IFREG || type == S_IFLNK) && !strncmp(name, n->prefix, k) && name[k] &&
	    (!n->name[0] || strverscmp(name, n->name) > 0))
		snprintf(n->name, sizeof(n->name), "%s", name);
	return 0;
}

/* The Pi firmware's kernel names and the initramfs beside each */
static const char *const pi_kernels[][2] = {
    {"kernel8.img", "initramfs8"},
    {"kernel7l.img", "initramfs7l"},
    {"kernel7.img", "initramfs7"},
    {"kernel.img", "initramfs"},
};

static int find_kernel(struct cow_view *v, struct boot_files *f)
{
	char path[ROOT_PATH_MAX + 1];
	int r = -ENOENT;
	f->kernel[0] = f->initrd[0] = 0;
	/* Debian's layout: /vmlinuz and /initrd.img point at the newest */
	if (boot_path(v, "/vmlinuz", f->kernel, sizeof(f->kernel), &f->kernel_size) == 0 ||
	    boot_path(v, "/boot/vmlinuz", f->kernel, sizeof(f->kernel), &f->kernel_size) == 0)
		r = 0;
	if (r < 0) {
		struct newest n = {.prefix = "vmlinuz-"};
		if (root_list(v, "/boot", newest_one, &n) == 0 && n.name[0]) {
			snprintf(path, sizeof(path), "/boot/%s", n.name);
			r = boot_path(v, path, f->kernel, sizeof(f->kernel), &f->kernel_size);
		}
	}
	const char *const dirs[] = {"/boot/firmware", "/boot"};
	for (size_t d = 0; r < 0 && d < 2; d++)
		for (size_t i = 0; r < 0 && i < sizeof(pi_kernels) / sizeof(pi_kernels[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", dirs[d], pi_kernels[i][0]);
			if (boot_path(v, path, f->kernel, sizeof(f->kernel), &f->kernel_size) == 0) {
				r = 0;
				snprintf(path, sizeof(path), "%s/%s", dirs[d], pi_kernels[i][1]);
				if (boot_path(v, path, f->initrd, sizeof(f->initrd), NULL) < 0)
					f->initrd[0] = 0;
				return 0;
			}
		}
	if (r < 0)
		return r;
	/* the initramfs of that very kernel version, else Debian's links */
	const char *base = strrchr(f->kernel, '/') + 1;
	if (!strncmp(base, "vmlinuz-", 8)) {
		snprintf(path, sizeof(path), "%.*sinitrd.img-%s", (int)(base - f->kernel), f->kernel, base + 8);
		if (boot_path(v, path, f->initrd, sizeof(f->initrd), NULL) == 0)
			return 0;
	}
	if (boot_path(v, "/initrd.img", f->initrd, sizeof(f->initrd), NULL) == 0 ||
	    boot_path(v, "/boot/initrd.img", f->initrd, sizeof(f->initrd), NULL) == 0)
		return 0;
	f->initrd[0] = 0;
	return 0;
}

enum kernel_kind {
	KERNEL_UNKNOWN,
	KERNEL_IMAGE,	   /* arm64 Image: booti */
	KERNEL_IMAGE_COMP, /* a compressed arm64 Image: booti, u-boot decompresses it */
	KERNEL_ZIMAGE,	   /* 32-bit zImage: bootz */
};

static enum kernel_kind kernel_kind(const uint8_t *h, ssize_t n)
{
	if (n >= 64 && !memcmp(h + 56, "ARM\x64", 4))
		return KERNEL_IMAGE;
	if (n >= 0x28 && (h[0x24] | h[0x25] << 8 | h[0x26] << 16 | (uint32_t)h[0x27] << 24) == 0x016f2818)
		return KERNEL_ZIMAGE;
	static const struct {
		size_t len;
		const char *magic;
	} comp[] = {
	    {2, "\x1f\x8b"},		     /* gzip */
	    {4, "\x28\xb5\x2f\xfd"},	     /* zstd */
	    {6, "\xfd\x37\x7a\x58\x5a\x00"}, /* xz */
	    {4, "\x04\x22\x4d\x18"},	     /* lz4 */
	    {3, "BZh"},			     /* bzip2 */
	    {3, "\x5d\x00\x00"},	     /* lzma */
	};
	for (size_t i = 0; i < sizeof(comp) / sizeof(comp[0]); i++)
		if ((size_t)n >= comp[i].len && !memcmp(h, comp[i].magic, comp[i].len))
			return KERNEL_IMAGE_COMP;
	return KERNEL_UNKNOWN;
}

/* ---- what is served ---- */

void boot_cmdline(const struct cow_client_info *c, const char *server, int nfs_port, char *buf, size_t n)
{
	char line[600];
	nfsroot_line(server, c->name, nfs_port, line, sizeof(line));
	snprintf(buf, n, "%s%s%s\n", line, c->boot_args[0] ? " " : "", c->boot_args);
}

/* A script that only says, on the client's console, why it cannot boot. */
static int say_script(const struct cow_client_info *c, const char *why, char **ret)
{
	return asprintf(ret,
			"# cowroot: the u-boot script of client %s, made when it was fetched\n"
			"echo \"cowroot: client %s cannot boot: %s\"\n",
			c->name, c->name, why) < 0
		   ? -ENOMEM
		   : 0;
}

int boot_script(struct cow_view *v, const struct cow_client_info *c, const char *key, const char *server, int nfs_port,
		char **ret, bool *ret_arm64)
{
	struct boot_files f;
	uint8_t head[64];
	char cmdline[1200];
	*ret_arm64 = true;
	int r = find_kernel(v, &f);
	if (r < 0)
		return say_script(c, "no kernel in its root (/vmlinuz, /boot/vmlinuz-*, /boot/firmware/kernel*.img)",
				  ret)
			   ?: -ENOENT;
	ssize_t n = root_read_head(v, f.kernel, head, sizeof(head));
	enum kernel_kind kind = n < 0 ? KERNEL_UNKNOWN : kernel_kind(head, n);
	if (kind == KERNEL_UNKNOWN)
		return say_script(c, "its kernel is not an arm64 Image or a 32-bit zImage", ret) ?: -ENOEXEC;
	*ret_arm64 = kind != KERNEL_ZIMAGE;
	f.dtb[0] = 0;
	if (c->boot_dtb[0] && boot_path(v, c->boot_dtb, f.dtb, sizeof(f.dtb), NULL) < 0)
		return say_script(c, "its device tree (client set --dtb) is not in its root", ret) ?: -ENOENT;
	boot_cmdline(c, server, nfs_port, cmdline, sizeof(cmdline));
	cmdline[strcspn(cmdline, "\n")] = 0;

	const char *boot = kind == KERNEL_ZIMAGE ? "bootz" : "booti";
	char comp[256] = "", rd[ROOT_PATH_MAX + 200] = "", fdt[ROOT_PATH_MAX + 300] = "", rdarg[64] = "-";
	if (kind == KERNEL_IMAGE_COMP)
		/* booti decompresses to kernel_comp_addr_r: after a 64 MiB initramfs */
		snprintf(comp, sizeof(comp),
			 "if test -z \"${kernel_comp_addr_r}\"; then setexpr kernel_comp_addr_r ${ramdisk_addr_r} "
			 "+ 0x4000000; fi\n"
			 "setenv kernel_comp_size 0x%llx\n",
			 (unsigned long long)f.kernel_size);
	if (f.initrd[0]) {
		snprintf(rd, sizeof(rd),
			 "if tftpboot ${ramdisk_addr_r} %s%s; then\n"
			 "setenv cow_rd_size ${filesize}\n",
			 key, f.initrd);
		snprintf(rdarg, sizeof(rdarg), "${ramdisk_addr_r}:${cow_rd_size}");
	}
	if (f.dtb[0])
		snprintf(fdt, sizeof(fdt),
			 "if test -z \"${fdt_addr_r}\"; then setexpr fdt_addr_r ${ramdisk_addr_r} + 0x3f00000; fi\n"
			 "if tftpboot ${fdt_addr_r} %s%s; then\n"
			 "setenv cow_fdt ${fdt_addr_r}\n",
			 key, f.dtb);
	r = asprintf(ret,
		     "# cowroot: the u-boot script of client %s, made when it was fetched\n"
		     "echo \"cowroot: client %s: kernel %s%s%s%s%s\"\n"
		     "setenv bootargs \"%s\"\n"
		     "setenv cow_fdt ${fdt_addr}\n"
		     "if test -z \"${cow_fdt}\"; then setenv cow_fdt ${fdtcontroladdr}; fi\n"
		     "%s"
		     "if tftpboot ${kernel_addr_r} %s%s; then\n"
		     "%s%s"
		     "%s ${kernel_addr_r} %s ${cow_fdt}\n"
		     "%s%s"
		     "fi\n"
		     "echo \"cowroot: client %s did not boot (see above, and the server's log)\"\n",
		     c->name, c->name, f.kernel, f.initrd[0] ? ", initramfs " : ", no initramfs", f.initrd,
		     f.dtb[0] ? ", device tree " : "", f.dtb, cmdline, comp, key, f.kernel, rd, fdt, boot, rdarg,
		     f.dtb[0] ? "fi\n" : "", f.initrd[0] ? "fi\n" : "", c->name);
	return r < 0 ? -ENOMEM : 0;
}

/* ---- the resolver ---- */

void boot_source_root(struct tftp_source *src, struct root_file *rf, int64_t size)
{
	src->size = size;
	src->read = root_file_read;
	src->close = root_file_close;
	src->arg = rf;
}

struct mem_source {
	size_t len;
	uint8_t data[];
};

static ssize_t mem_read(void *arg, void *buf, size_t n, uint64_t off)
{
	struct mem_source *m = arg;
	if (off >= m->len)
		return 0;
	if (n > m->len - off)
		n = m->len - (size_t)off;
	memcpy(buf, m->data + off, n);
	return (ssize_t)n;
}

static int mem_source(struct tftp_source *src, const void *data, size_t len)
{
	struct mem_source *m = malloc(sizeof(*m) + len);
	if (!m)
		return -ENOMEM;
	m->len = len;
	memcpy(m->data, data, len);
	src->size = (int64_t)len;
	src->read = mem_read;
	src->close = free;
	src->arg = m;
	return 0;
}

/* @sa as text, an IPv4-mapped address as IPv4; "" when NULL */
static void addr_text(const struct sockaddr *sa, char *buf, size_t n)
{
	buf[0] = 0;
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)n);
		else
			inet_ntop(AF_INET6, a, buf, (socklen_t)n);
	}
}

struct by_addr {
	const struct sockaddr *peer;
	char first[COW_ENTITY_NAME_MAX + 1], second[COW_ENTITY_NAME_MAX + 1];
	int found;
};

static int match_addrs(void *arg, const char *name, const char *addrs)
{
	struct by_addr *b = arg;
	if (!cow_addrs_match(addrs, b->peer))
		return 0;
	snprintf(b->found++ ? b->second : b->first, sizeof(b->first), "%s", name);
	return b->found > 1; /* two are enough to say so */
}

/* The one client whose addresses hold @peer: 0, -ENOENT, -EEXIST (more
 * than one: @ret is the first), or -errno.  One query for the addresses
 * of all clients, one for the client found. */
static int client_by_addr(struct cow_store *st, const struct sockaddr *peer, struct cow_client_info *ret, char *other,
			  size_t othersize)
{
	struct by_addr b = {.peer = peer};
	int r = cow_client_addrs_foreach(st, match_addrs, &b);
	if (r < 0)
		return r;
	if (b.found == 0)
		return -ENOENT;
	r = cow_client_get(st, b.first, ret);
	if (r < 0)
		return r;
	if (b.found > 1) {
		snprintf(other, othersize, "%s", b.second);
		return -EEXIST;
	}
	return 0;
}

/* The first component of @path names a client (a serial or a MAC)? */
static bool key_component(const char *path, size_t n)
{
	char comp[32], canon[COW_MAC_LEN + 1];
	if (n >= sizeof(comp))
		return false;
	memcpy(comp, path, n);
	comp[n] = 0;
	return cow_serial_parse(comp, canon) == 0 || cow_mac_parse(comp, canon) == 0;
}

/* Find the client @key names (a serial or a MAC; NULL: by @peer's address). */
static int find_client(struct boot_server *b, const char *key, const struct tftp_peer *peer, struct cow_client_info *c,
		       struct tftp_source *ret)
{
	char canon[COW_MAC_LEN + 1], who[INET6_ADDRSTRLEN], other[COW_ENTITY_NAME_MAX + 1] = "";
	int r;
	if (!key) {
		r = client_by_addr(b->st, peer->addr, c, other, sizeof(other));
		addr_text(peer->addr, who, sizeof(who));
		if (r == -ENOENT)
			snprintf(ret->why, sizeof(ret->why),
				 "no client has the address %s (cowroot client set NAME --ip %s), and the request "
				 "names no serial or MAC",
				 who, who);
		else if (r == -EEXIST)
			snprintf(ret->why, sizeof(ret->why), "the address %s is both client %s's and client %s's", who,
				 c->name, other);
		return r == -EEXIST ? -EACCES : r;
	}
	bool serial = cow_serial_parse(key, canon) == 0;
	r = serial ? cow_client_by_serial(b->st, key, c) : cow_client_by_mac(b->st, key, c);
	if (r == -ENOENT || r == -EINVAL) {
		if (r == -EINVAL)
			snprintf(ret->why, sizeof(ret->why), "'%s' is neither a Pi serial number nor a MAC address",
				 key);
		else if (serial)
			snprintf(ret->why, sizeof(ret->why),
				 "unknown client: no client has serial %s (cowroot client set NAME --serial %s)", canon,
				 canon);
		else {
			cow_mac_parse(key, canon);
			snprintf(ret->why, sizeof(ret->why),
				 "unknown client: no client has MAC %s (cowroot client set NAME --mac %s)", canon,
				 canon);
		}
		return -ENOENT;
	}
	return r;
}

int boot_resolve(void *arg, const struct tftp_peer *peer, const char *path, struct tftp_source *ret)
{
	struct boot_server *b = arg;
	struct cow_client_info c;
	char key[40], server[INET6_ADDRSTRLEN + 2], addrs[COW_ADDRS_MAX + 1], who[INET6_ADDRSTRLEN];
	const char *rest = path, *name_key = NULL;
	size_t len = strlen(path);
	bool script = false;
	int r;

	ret->label[0] = ret->why[0] = 0;
	if (len > 12 && !strncasecmp(path, "netboot-", 8) && !strcasecmp(path + len - 4, ".scr") &&
	    !strchr(path, '/') && len - 12 < sizeof(key)) {
		memcpy(key, path + 8, len - 12);
		key[len - 12] = 0;
		name_key = key;
		script = true;
	} else {
		size_t n = strcspn(path, "/");
		if (path[n] == '/' && key_component(path, n)) {
			memcpy(key, path, n);
			key[n] = 0;
			name_key = key;
			rest = path + n + 1;
		}
	}
	r = find_client(b, name_key, peer, &c, ret);
	if (r < 0)
		return r;
	snprintf(ret->label, sizeof(ret->label), "%s", c.name);

	/* a client's files go to its own addresses only */
	addr_text(peer->addr, who, sizeof(who));
	r = cow_client_get_addrs(b->st, c.name, addrs, sizeof(addrs));
	if (r < 0)
		return r;
	if (!cow_addrs_match(addrs, peer->addr)) {
		snprintf(ret->why, sizeof(ret->why), "%s is not one of client %s's addresses (%.100s)", who, c.name,
			 addrs[0] ? addrs : "none");
		return -EACCES;
	}
	struct seen *seen;
	if (boot_begins(b, c.name, &seen)) {
		if (c.reset_on_boot) {
			r = reset_now(b, c.name, ret->why, sizeof(ret->why));
			if (r < 0) {
				if (seen)
					seen->last_ms = INT64_MIN; /* the next request tries again */
				boot_log(b, "client %s: a boot began from %s, but %s: nothing served", c.name, who,
					 ret->why);
				return -EIO;
			}
		}
		boot_log(b, "client %s: a boot began from %s ('%s')%s", c.name, who, path,
			 c.reset_on_boot ? "; its layer was reset (on-boot reset)" : "");
		if (seen) {
			pthread_mutex_lock(&b->seen_lock);
			memset(&seen->st, 0, sizeof(seen->st));
			seen->st.began = time(NULL);
			snprintf(seen->st.addr, sizeof(seen->st.addr), "%s", who);
			pthread_mutex_unlock(&b->seen_lock);
		}
	}
	addr_text(peer->local, server, sizeof(server));
	if (strchr(server, ':')) {
		char v6[sizeof(server)];
		snprintf(v6, sizeof(v6), "[%.*s]", (int)sizeof(v6) - 3, server);
		memcpy(server, v6, sizeof(server));
	}

	/* the prefix the client's own paths take in its script */
	char prefix[COW_MAC_LEN + 2];
	if (c.serial[0])
		snprintf(prefix, sizeof(prefix), "%s", c.serial);
	else {
		snprintf(prefix, sizeof(prefix), "%s", c.mac);
		for (char *p = prefix; *p; p++)
			if (*p == ':')
				*p = '-';
	}

	if (script) {
		struct cow_view *v;
		char *text = NULL;
		bool arm64;
		uint8_t *img;
		size_t imglen;
		if (!server[0])
			snprintf(server, sizeof(server), "${serverip}");
		r = cow_view_open(b->st, c.name, NULL, COW_VIEW_READONLY, &v);
		if (r < 0)
			return r;
		r = boot_script(v, &c, prefix, server, b->cfg.nfs_port, &text, &arm64);
		cow_view_close(v);
		if (r == -ENOENT || r == -ENOEXEC)
			snprintf(ret->why, sizeof(ret->why), "served a script that says it cannot boot: %s",
				 r == -ENOENT ? "no kernel (or device tree) in its root"
					      : "its kernel is not one u-boot boots");
		if (!text)
			return r;
		r = uimage_script(c.name, arm64, text, strlen(text), &img, &imglen);
		free(text);
		if (r == 0) {
			r = mem_source(ret, img, imglen);
			free(img);
		}
		return r;
	}
	if (!strcmp(rest, "cmdline.txt")) {
		char line[1200];
		boot_cmdline(&c, server, b->cfg.nfs_port, line, sizeof(line));
		return mem_source(ret, line, strlen(line));
	}

	/* a path of the root, or of its Pi boot partition tree */
	char root_path[TFTP_PATH_MAX + 32];
	size_t first = strcspn(rest, "/");
	struct root_file *rf;
	int64_t size;
	char real[ROOT_PATH_MAX + 1];
	bool of_root = rest[first] == '/'
			   ? (first == 4 && !strncmp(rest, "boot", 4)) || (first == 3 && !strncmp(rest, "usr", 3))
			   : !strncmp(rest, "vmlinuz", 7) || !strncmp(rest, "initrd.img", 10);
	if (of_root) {
		snprintf(root_path, sizeof(root_path), "/%s", rest);
		r = root_file_open(b->st, c.name, root_path, boot_file_allowed, &rf, &size, real, sizeof(real));
	} else {
		snprintf(root_path, sizeof(root_path), "/boot/firmware/%s", rest);
		r = root_file_open(b->st, c.name, root_path, boot_file_allowed, &rf, &size, real, sizeof(real));
		if (r == -ENOENT || r == -ENOTDIR) {
			snprintf(root_path, sizeof(root_path), "/boot/%s", rest);
			r = root_file_open(b->st, c.name, root_path, boot_file_allowed, &rf, &size, real, sizeof(real));
		}
	}
	if (r == -EACCES)
		snprintf(ret->why, sizeof(ret->why),
			 "%.150s is not one of its boot files (/boot, /usr/lib/linux-image-*)", root_path);
	if (r < 0)
		return r;
	note_kernel(b, seen, real);
	boot_source_root(ret, rf, size);
	return 0;
}
