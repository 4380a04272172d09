/* SPDX-License-Identifier: MIT */
/*
 * What in a root would break its network boot (imgcheck.h).
 *
 * The root is read as its own boot would read it (bootfs.h: symlinks
 * followed inside the root).  Every file is hostile input: read whole only
 * up to TEXT_MAX, lines parsed with bounds, an unreadable file is a
 * finding of its own.  The network configuration is checked in
 * imgcheck-net.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imgcheck-private.h"
#include "initrd.h"

const char *img_severity_name(enum img_severity s)
{
	return s == IMG_ERROR ? "error" : s == IMG_WARNING ? "warning" : "note";
}

void img_report_release(struct img_report *rep)
{
	free(rep->v);
	memset(rep, 0, sizeof(*rep));
}

/* Add a finding; @todo may be NULL.  Returns it (NULL out of memory). */
struct img_finding *ck_add(struct ck *ck, enum img_severity sev, const char *check, const char *file, unsigned line,
			   const char *todo, const char *fmt, ...)
{
	struct img_report *rep = ck->rep;
	if (rep->n == rep->cap) {
		size_t cap = rep->cap ? 2 * rep->cap : 16;
		struct img_finding *v = realloc(rep->v, cap * sizeof(*v));
		if (!v) {
			ck->err = -ENOMEM;
			return NULL;
		}
		rep->v = v;
		rep->cap = cap;
	}
	struct img_finding *f = &rep->v[rep->n++];
	memset(f, 0, sizeof(*f));
	f->severity = sev;
	f->check = check;
	snprintf(f->file, sizeof(f->file), "%s", file);
	f->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->problem, sizeof(f->problem), fmt, ap);
	va_end(ap);
	snprintf(f->todo, sizeof(f->todo), "%s", todo ? todo : "");
	if (sev == IMG_ERROR)
		rep->errors++;
	else if (sev == IMG_WARNING)
		rep->warnings++;
	else
		rep->infos++;
	return f;
}

/* A store error ends the check; anything else is the file's problem. */
bool ck_store_failed(struct ck *ck, int r)
{
	if (r == -ENOMEM || r == -EIO || r == -EAGAIN) {
		if (!ck->err)
			ck->err = r;
		return true;
	}
	return false;
}

/* Read text file @path whole into *@ret (free it): 1; 0 if it is not
 * there (or not a regular file); 0 after adding a warning of @check if
 * it cannot be read. */
int ck_read_text(struct ck *ck, const char *check, const char *path, char **ret)
{
	size_t len;
	int r = root_read(ck->v, path, TEXT_MAX, ret, &len);
	if (r == 0) {
		/* a NUL inside ends the text, as for the programs that read it */
		return 1;
	}
	if (r == -ENOENT || r == -ENOTDIR || r == -EISDIR || r == -EACCES || r == -ELOOP)
		return 0;
	if (ck_store_failed(ck, r))
		return 0;
	if (r == -EFBIG)
		ck_add(ck, IMG_WARNING, check, path, 0, "check the file by hand", "larger than %d KiB, not checked",
		       TEXT_MAX / 1024);
	else
		ck_add(ck, IMG_WARNING, check, path, 0, "check the file by hand", "cannot be read (%s), not checked",
		       strerror(-r));
	return 0;
}

bool ck_exists(struct ck *ck, const char *path, mode_t want, char *real, size_t realsize)
{
	struct cow_attr a;
	int r = root_walk(ck->v, path, want, &a, real, realsize);
	if (r < 0) {
		ck_store_failed(ck, r);
		return false;
	}
	cow_forget(ck->v, a.ino, 1);
	return true;
}

/* Entry @name of directory @dir, not followed if a symlink: 1 with its
 * attributes (and its target in @target, @tsize bytes, for a symlink),
 * 0 if there is none. */
int ck_entry(struct ck *ck, const char *dir, const char *name, struct cow_attr *ret, char *target, size_t tsize)
{
	struct cow_attr d;
	int r = root_walk(ck->v, dir, S_IFDIR, &d, NULL, 0);
	if (r < 0)
		return ck_store_failed(ck, r), 0;
	r = cow_lookup(ck->v, d.ino, name, ret);
	cow_forget(ck->v, d.ino, 1);
	if (r < 0)
		return ck_store_failed(ck, r), 0;
	if (target) {
		target[0] = 0;
		if (S_ISLNK(ret->mode)) {
			int n = cow_readlink(ck->v, ret->ino, target, tsize - 1);
			target[n > 0 ? n : 0] = 0;
		}
	}
	cow_forget(ck->v, ret->ino, 1);
	return 1;
}

/* ---- directory listings ---- */

void ck_names_release(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int ck_names_push(struct names *l, const char *name, uint32_t mode)
{
	if (l->n == LIST_MAX) {
		l->full = true;
		return 1;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct dent *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n].name = strdup(name)))
		return -ENOMEM;
	l->v[l->n++].mode = mode & S_IFMT;
	return 0;
}

static int names_add(void *arg, const char *name, const struct cow_attr *attr, off_t next)
{
	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	return ck_names_push(arg, name, attr->mode);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

/* The names in directory @dir (none if it is not there), sorted. */
void ck_list(struct ck *ck, const char *dir, struct names *ret)
{
	memset(ret, 0, sizeof(*ret));
	struct cow_attr d;
	struct cow_dirh *h;
	int r = root_walk(ck->v, dir, S_IFDIR, &d, NULL, 0);
	if (r < 0) {
		ck_store_failed(ck, r);
		return;
	}
	r = cow_opendir(ck->v, d.ino, &h);
	if (r == 0) {
		r = cow_readdir(h, 0, false, names_add, ret);
		cow_releasedir(h);
	}
	cow_forget(ck->v, d.ino, 1);
	if (r < 0)
		ck_store_failed(ck, r);
	if (ret->n)
		qsort(ret->v, ret->n, sizeof(*ret->v), by_name);
}

/* ---- lines of text ---- */

/* Split @s in place at newlines: calls @fn for each line (no newline),
 * numbered from 1, until it returns non-zero. */
int ck_lines(char *s, int (*fn)(void *arg, char *line, unsigned no), void *arg)
{
	unsigned no = 0;
	for (char *line = s; line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		int r = fn(arg, line, ++no);
		if (nl)
			*nl = '\n';
		if (r)
			return r;
		line = nl ? nl + 1 : NULL;
		if (line && !*line)
			break;
	}
	return 0;
}

/* The next blank-separated word of *@p (NUL-terminated in place), or NULL. */
char *ck_word(char **p)
{
	char *s = *p + strspn(*p, " \t\r");
	if (!*s)
		return NULL;
	char *e = s + strcspn(s, " \t\r");
	if (*e)
		*e++ = 0;
	*p = e;
	return s;
}

void ck_chop(char *s)
{
	s[strcspn(s, "#")] = 0;
	size_t n = strlen(s);
	while (n && strchr(" \t\r", s[n - 1]))
		s[--n] = 0;
}

/* ---- /etc/fstab ---- */

/* fstab's octal escapes (\040 is a space) decoded in place. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else
			*o++ = *s;
	}
	*o = 0;
}

/* A device on the machine's own storage: an SD card, a disk, by name,
 * label or id.  A network boot has none of them for the root. */
static bool local_device(const char *spec)
{
	static const char *const prefixes[] = {
	    "/dev/mmcblk",  "/dev/sd", "/dev/nvme", "/dev/vd",	 "/dev/hd",    "/dev/xvd", "/dev/disk/",
	    "/dev/mapper/", "LABEL=",  "UUID=",	    "PARTUUID=", "PARTLABEL=", "ID="};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(spec, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static bool has_option(const char *opts, const char *opt)
{
	size_t n = strlen(opt);
	for (const char *p = opts; *p;) {
		size_t k = strcspn(p, ",");
		if (k == n && !strncmp(p, opt, n))
			return true;
		p += k + (p[k] == ',');
	}
	return false;
}

static int fstab_line(void *arg, char *line, unsigned no)
{
	struct ck *ck = arg;
	char copy[1024];
	snprintf(copy, sizeof(copy), "%s", line);
	char *p = copy + strspn(copy, " \t");
	if (*p == '#' || !*p)
		return 0;
	char *spec = ck_word(&p), *dir = ck_word(&p), *type = ck_word(&p), *opts = ck_word(&p);
	if (!spec || !dir)
		return 0;
	if (!opts)
		opts = "defaults";
	unescape(spec);
	unescape(dir);
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dir[--dl] = 0;
	bool root = !strcmp(dir, "/");
	if (!root && strcmp(dir, "/boot") && strcmp(dir, "/boot/firmware"))
		return 0;
	if (!local_device(spec) || has_option(opts, "noauto"))
		return 0; /* never mounted at boot: harmless */
	char shown[160];
	snprintf(shown, sizeof(shown), "%.60s %.40s %.16s", spec, dir, type ? type : "");
	struct img_finding *f;
	const char *todo = "comment the line out ('image check --fix' does)";
	if (has_option(opts, "nofail"))
		f = ck_add(ck, IMG_WARNING, "fstab", "/etc/fstab", no, todo,
			   "'%s' (nofail): on a network boot the device is not there; systemd waits for it (90 s by "
			   "default) before it boots on without it",
			   shown);
	else if (root)
		f = ck_add(
		    ck, IMG_ERROR, "fstab", "/etc/fstab", no, todo,
		    "'%s' mounts the root from local storage, but a network boot's root is NFS: systemd waits for "
		    "the device, fails to check and remount it, and stops in emergency mode",
		    shown);
	else
		f = ck_add(
		    ck, IMG_ERROR, "fstab", "/etc/fstab", no, todo,
		    "'%s' mounts %s from local storage (an SD card or disk a network-booted client does not have): "
		    "the mount times out and the boot stops in emergency mode",
		    shown, dir);
	if (f)
		f->fix = IMG_FIX_COMMENT;
	return 0;
}

static void check_fstab(struct ck *ck)
{
	char *s;
	if (ck_read_text(ck, "fstab", "/etc/fstab", &s) <= 0)
		return;
	ck_lines(s, fstab_line, ck);
	free(s);
}

/* ---- kernels and initramfs ---- */

/* What the kernel's build configuration says of an NFS root. */
struct kconfig {
	bool known;    /* a configuration was found */
	char nfs;      /* CONFIG_NFS_FS: 'y', 'm' or 0 */
	char nfs_v3;   /* CONFIG_NFS_V3 */
	bool root_nfs; /* CONFIG_ROOT_NFS=y */
	bool ip_pnp;   /* CONFIG_IP_PNP=y: ip=dhcp without an initramfs */
	char file[ROOT_PATH_MAX + 1];
};

static int kconfig_line(void *arg, char *line, unsigned no)
{
	(void)no;
	struct kconfig *k = arg;
	if (!strncmp(line, "CONFIG_NFS_FS=", 14))
		k->nfs = line[14];
	else if (!strncmp(line, "CONFIG_NFS_V3=", 14))
		k->nfs_v3 = line[14];
	else if (!strcmp(line, "CONFIG_ROOT_NFS=y"))
		k->root_nfs = true;
	else if (!strcmp(line, "CONFIG_IP_PNP=y"))
		k->ip_pnp = true;
	return 0;
}

static void read_kconfig(struct ck *ck, const char *ver, struct kconfig *k)
{
	memset(k, 0, sizeof(*k));
	char path[ROOT_PATH_MAX + 1], *s;
	snprintf(path, sizeof(path), "/boot/config-%s", ver);
	if (ck_read_text(ck, "kernel", path, &s) <= 0)
		return;
	k->known = true;
	snprintf(k->file, sizeof(k->file), "%s", path);
	ck_lines(s, kconfig_line, k);
	free(s);
}

/* Does /lib/modules/VER/modules.builtin of the root list the nfs module? */
static bool nfs_builtin_in_root(struct ck *ck, const char *ver)
{
	char path[ROOT_PATH_MAX + 1], *s;
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.builtin", ver);
	if (ck_read_text(ck, "kernel", path, &s) <= 0)
		return false;
	bool found = false;
	for (const char *p = s; (p = strstr(p, "fs/nfs/nfs.ko")); p++)
		if ((p == s || p[-1] == '/') && (p[13] == '\n' || !p[13]))
			found = true;
	free(s);
	return found;
}

struct reader {
	struct cow_view *v;
	struct cow_file *f;
};

/* initrd_read_fn over an open file of the view: short only at its end */
static ssize_t read_view(void *arg, void *buf, size_t n, uint64_t off)
{
	struct reader *r = arg;
	size_t done = 0;
	while (done < n) {
		ssize_t k = cow_read(r->f, (char *)buf + done, n - done, (off_t)(off + done));
		if (k <= 0) {
			if (k < 0)
				return k;
			break;
		}
		done += (size_t)k;
	}
	return (ssize_t)done;
}

/* Check initramfs @path for kernel @kver ("" unknown), whose NFS is a
 * module if @nfs_module (then nfs.ko must be in it). */
static void check_initrd(struct ck *ck, const char *path, const char *kver, bool nfs_module, bool nfsv3_module,
			 const char *why_module)
{
	struct cow_attr a;
	struct reader rd = {.v = ck->v};
	int r = root_walk(ck->v, path, S_IFREG, &a, NULL, 0);
	if (r == 0) {
		r = cow_open(ck->v, a.ino, O_RDONLY, &rd.f);
		if (r < 0)
			cow_forget(ck->v, a.ino, 1);
	}
	if (r < 0) {
		if (!ck_store_failed(ck, r))
			ck_add(ck, IMG_ERROR, "initramfs", path, 0,
			       "rebuild it (update-initramfs -u in a maintenance client)",
			       "the initramfs cannot be read (%s)", strerror(-r));
		return;
	}
	struct initrd_facts f;
	r = initrd_scan(read_view, &rd, a.size > 0 ? (uint64_t)a.size : 0, &f);
	cow_release(rd.f);
	cow_forget(ck->v, a.ino, 1);
	if (r < 0) {
		if (!ck_store_failed(ck, r))
			ck_add(ck, IMG_WARNING, "initramfs", path, 0, NULL,
			       "the initramfs cannot be read (%s), not checked", strerror(-r));
		return;
	}
	const char *rebuild = "rebuild it in a maintenance client (update-initramfs -u -k VERSION, initramfs-tools "
			      "with BOOT=nfs in /etc/initramfs-tools/initramfs.conf), then snapshot it";
	if (!f.complete) {
		if (f.too_big)
			ck_add(ck, IMG_WARNING, "initramfs", path, 0, "check it by hand (lsinitramfs)",
			       "the initramfs (%s) %s; what it holds past there is not checked", f.formats, f.problem);
		else
			ck_add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
			       "the initramfs (%s) is broken: %s; the kernel stops unpacking it there",
			       f.formats[0] ? f.formats : "empty", f.problem);
		return; /* what is missing may be in the part not read */
	}
	if (f.initramfs_tools) {
		if (!f.scripts_nfs)
			ck_add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
			       "the initramfs (initramfs-tools) has no scripts/nfs: it can only mount a local root");
		if (!f.nfsmount && !f.mount_nfs)
			ck_add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
			       "the initramfs (initramfs-tools) has no nfsmount (klibc-utils) nor mount.nfs: it cannot "
			       "mount an NFS root");
		const char *boot = f.boot_confd[0] ? f.boot_confd : f.boot;
		if (boot[0] && strcmp(boot, "nfs")) {
			char where[300];
			snprintf(where, sizeof(where), "conf/%s%s", f.boot_confd[0] ? "conf.d/" : "initramfs.conf",
				 f.boot_confd[0] ? f.boot_confd_file : "");
			/* root=/dev/nfs does not override it, but the boot=nfs that
			 * cowroot's command lines carry does */
			ck_add(ck, IMG_INFO, "initramfs", path, 0,
			       "nothing, as long as the command line keeps cowroot's boot=nfs (another boot loader "
			       "needs it too, or BOOT=nfs in /etc/initramfs-tools/initramfs.conf)",
			       "the initramfs says BOOT=%s (%s): it mounts an NFS root only because the command line "
			       "cowroot serves says boot=nfs (root=/dev/nfs alone does not override BOOT=%s)",
			       boot, where, boot);
		}
	} else if (f.dracut) {
		if (!f.dracut_nfs && !f.mount_nfs)
			ck_add(
			    ck, IMG_ERROR, "initramfs", path, 0,
			    "rebuild it with dracut's nfs module (dracut --add nfs), then snapshot it",
			    "the initramfs (dracut) has no nfs module (no sbin/nfsroot nor mount.nfs): it cannot mount "
			    "an "
			    "NFS root");
	} else if (f.complete) {
		ck_add(ck, IMG_WARNING, "initramfs", path, 0, "check by hand that it can mount an NFS root",
		       "the initramfs is neither initramfs-tools' nor dracut's: cannot tell whether it mounts an NFS "
		       "root");
	}
	if (f.kver[0] && kver[0] && strcmp(f.kver, kver))
		ck_add(ck, IMG_WARNING, "initramfs", path, 0, rebuild,
		       "the initramfs holds the modules of kernel %s, not of %s: they will not load", f.kver, kver);
	if (nfs_module && !f.nfs_ko && !f.nfs_builtin)
		ck_add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
		       "the initramfs has no nfs module (fs/nfs/nfs.ko) and the kernel has NFS as a module (%s)",
		       why_module);
	else if (nfsv3_module && f.nfs_ko && !f.nfsv3_ko)
		ck_add(
		    ck, IMG_ERROR, "initramfs", path, 0, rebuild,
		    "the initramfs has no nfsv3 module (fs/nfs/nfsv3.ko), which an NFSv3 root needs (CONFIG_NFS_V3=m)");
}

/* The newest "vmlinuz-VERSION" in /boot, into @ret ("" if none). */
static void newest_vmlinuz(struct ck *ck, char *ret, size_t size)
{
	struct names l;
	ck_list(ck, "/boot", &l);
	ret[0] = 0;
	const char *best = NULL;
	for (size_t i = 0; i < l.n; i++)
		if (!strncmp(l.v[i].name, "vmlinuz-", 8) && l.v[i].mode == S_IFREG &&
		    (!best || strverscmp(l.v[i].name, best) > 0))
			best = l.v[i].name;
	if (best)
		snprintf(ret, size, "/boot/%s", best);
	ck_names_release(&l);
}

/* The Debian layout: /vmlinuz (or the newest /boot/vmlinuz-*) and its
 * initramfs.  Returns whether there is such a kernel. */
static bool check_debian_kernel(struct ck *ck)
{
	char kernel[ROOT_PATH_MAX + 1], initrd[ROOT_PATH_MAX + 1] = "";
	bool via_link = ck_exists(ck, "/vmlinuz", S_IFREG, kernel, sizeof(kernel));
	if (!via_link)
		newest_vmlinuz(ck, kernel, sizeof(kernel));
	if (!kernel[0])
		return false;
	const char *base = strrchr(kernel, '/') + 1;
	char ver[128] = "";
	if (!strncmp(base, "vmlinuz-", 8))
		snprintf(ver, sizeof(ver), "%s", base + 8);
	char try[ROOT_PATH_MAX + 1];
	if (via_link && ck_exists(ck, "/initrd.img", S_IFREG, initrd, sizeof(initrd)))
		;
	else if (ver[0]) {
		snprintf(try, sizeof(try), "/boot/initrd.img-%s", ver);
		if (!ck_exists(ck, try, S_IFREG, initrd, sizeof(initrd)))
			initrd[0] = 0;
	}
	struct kconfig k;
	read_kconfig(ck, ver[0] ? ver : "-", &k);
	bool builtin_listed = ver[0] && nfs_builtin_in_root(ck, ver);
	/* does the kernel need an initramfs to mount an NFS root? */
	char why[ROOT_PATH_MAX + 64];
	bool needs, module;
	if (k.known) {
		if (!k.nfs || k.nfs == 'n') {
			ck_add(ck, IMG_ERROR, "kernel", kernel, 0, "install a kernel with NFS support",
			       "the kernel has no NFS support (no CONFIG_NFS_FS in %s): it cannot mount an NFS root",
			       k.file);
			return true;
		}
		module = k.nfs == 'm';
		needs = module || !k.root_nfs || !k.ip_pnp;
		snprintf(why, sizeof(why), "%s says CONFIG_NFS_FS=%c%s%s", k.file, k.nfs,
			 k.root_nfs ? "" : ", no CONFIG_ROOT_NFS", k.ip_pnp ? "" : ", no CONFIG_IP_PNP");
	} else if (builtin_listed) {
		module = false;
		needs = false; /* NFS built in; IP autoconfiguration likely */
		snprintf(why, sizeof(why), "NFS is built in");
	} else {
		module = true;
		needs = true;
		snprintf(why, sizeof(why), "no /boot/config-%s tells; Debian's kernels have NFS as a module", ver);
	}
	if (!initrd[0]) {
		if (needs)
			ck_add(
			    ck, k.known ? IMG_ERROR : IMG_WARNING, "kernel", kernel, 0,
			    "in a maintenance client install initramfs-tools, set BOOT=nfs in "
			    "/etc/initramfs-tools/initramfs.conf, run update-initramfs -c -k VERSION, then snapshot it",
			    "no initramfs for this kernel (%s%s): root=/dev/nfs needs one (%s)",
			    via_link ? "/initrd.img" : "/boot/initrd.img-", via_link ? "" : ver, why);
		return true;
	}
	check_initrd(ck, initrd, ver, module, k.known ? k.nfs_v3 == 'm' : false, why);
	return true;
}

/* ---- the Raspberry Pi firmware's boot tree ---- */

struct piconf {
	char kernel[8][128]; /* kernel= lines, every section */
	int nkernel;
	char initramfs[128]; /* the initramfs line's file */
	bool auto_initramfs;
};

static int piconf_line(void *arg, char *line, unsigned no)
{
	(void)no;
	struct piconf *c = arg;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", line);
	ck_chop(buf);
	char *p = buf + strspn(buf, " \t");
	if (!strncmp(p, "kernel=", 7) && p[7] && c->nkernel < 8)
		snprintf(c->kernel[c->nkernel++], sizeof(c->kernel[0]), "%s", p + 7);
	else if (!strncmp(p, "initramfs", 9) && (p[9] == ' ' || p[9] == '\t')) {
		char *q = p + 9, *file = ck_word(&q);
		if (file)
			snprintf(c->initramfs, sizeof(c->initramfs), "%s", file);
	} else if (!strcmp(p, "auto_initramfs=1"))
		c->auto_initramfs = true;
	return 0;
}

static bool in_dir(struct ck *ck, const char *dir, const char *name)
{
	char path[ROOT_PATH_MAX + 1];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return ck_exists(ck, path, S_IFREG, NULL, 0);
}

/* Looks like a Pi boot partition: the firmware's files or its config. */
static bool pi_tree(struct ck *ck, const char *dir)
{
	static const char *const marks[] = {"config.txt", "start4.elf", "start.elf", "bootcode.bin", "fixup4.dat"};
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (in_dir(ck, dir, marks[i]))
			return true;
	return false;
}

/* Returns whether the tree has a kernel for the firmware to load. */
static bool check_pi(struct ck *ck)
{
	const char *d = pi_tree(ck, "/boot/firmware") ? "/boot/firmware" : pi_tree(ck, "/boot") ? "/boot" : NULL;
	if (!d) {
		ck_add(ck, IMG_INFO, "firmware", "/boot/firmware", 0,
		       "to boot a Pi without u-boot, install raspi-firmware (Debian, component non-free-firmware) in a "
		       "maintenance client",
		       "no Raspberry Pi boot files (/boot/firmware): a Pi can boot this image only through u-boot "
		       "(cowroot "
		       "netboot sdcard)");
		return false;
	}
	char path[ROOT_PATH_MAX + 1];
	const char *fw = "install the Pi firmware (raspi-firmware in Debian, non-free-firmware) in a maintenance "
			 "client, then snapshot it";
	static const char *const pi4[] = {"start4.elf", "fixup4.dat"};
	static const char *const pi3[] = {"bootcode.bin", "start.elf", "fixup.dat"};
	int have4 = 0, have3 = 0;
	for (int i = 0; i < 2; i++)
		have4 += in_dir(ck, d, pi4[i]);
	for (int i = 0; i < 3; i++)
		have3 += in_dir(ck, d, pi3[i]);
	bool pi5 = in_dir(ck, d, "kernel_2712.img");
	snprintf(path, sizeof(path), "%s/config.txt", d);
	struct piconf pc = {0};
	char *s;
	if (ck_read_text(ck, "firmware", path, &s) > 0) {
		ck_lines(s, piconf_line, &pc);
		free(s);
	} else if (!ck->err)
		ck_add(ck, IMG_WARNING, "firmware", path, 0, "write one (e.g. arm_64bit=1)",
		       "no config.txt: the firmware boots with its defaults (a 32-bit kernel.img on a Pi 3)");
	if (!have4 && !have3) {
		if (pi5)
			ck_add(ck, IMG_INFO, "firmware", d, 0, fw,
			       "no start4.elf nor start.elf: only a Pi 5 (firmware in its EEPROM) can boot natively");
		else
			ck_add(
			    ck, IMG_ERROR, "firmware", d, 0, fw,
			    "no Pi firmware: neither start4.elf and fixup4.dat (Pi 4) nor bootcode.bin, start.elf and "
			    "fixup.dat (Pi 3): no Pi boots natively from it");
	}
	for (int i = 0; have4 && i < 2; i++)
		if (!in_dir(ck, d, pi4[i])) {
			snprintf(path, sizeof(path), "%s/%s", d, pi4[i]);
			ck_add(ck, IMG_ERROR, "firmware", path, 0, fw, "missing: a Pi 4 stops before its kernel");
		}
	for (int i = 0; have3 && i < 3; i++)
		if (!in_dir(ck, d, pi3[i])) {
			snprintf(path, sizeof(path), "%s/%s", d, pi3[i]);
			ck_add(ck, IMG_ERROR, "firmware", path, 0, fw, "missing: a Pi 3 stops before its kernel");
		}
	if (have4 && !have3)
		ck_add(ck, IMG_INFO, "firmware", d, 0, NULL,
		       "no Pi 3 firmware (bootcode.bin, start.elf): a Pi 3 cannot boot natively");
	else if (have3 && !have4)
		ck_add(ck, IMG_INFO, "firmware", d, 0, NULL,
		       "no Pi 4 firmware (start4.elf, fixup4.dat): a Pi 4 cannot boot natively");
	/* device trees */
	struct names l;
	ck_list(ck, d, &l);
	bool dtb = false, dtb4 = false, dtb3 = false;
	for (size_t i = 0; i < l.n; i++) {
		size_t n = strlen(l.v[i].name);
		if (n > 4 && !strcmp(l.v[i].name + n - 4, ".dtb")) {
			dtb = true;
			dtb4 |= !strncmp(l.v[i].name, "bcm2711-", 8);
			dtb3 |= !strncmp(l.v[i].name, "bcm2710-", 8) || !strncmp(l.v[i].name, "bcm2837-", 8);
		}
	}
	ck_names_release(&l);
	if (!dtb)
		ck_add(ck, IMG_ERROR, "firmware", d, 0, fw,
		       "no device tree (*.dtb): the firmware cannot start a kernel");
	else if (have4 == 2 && !dtb4)
		ck_add(ck, IMG_WARNING, "firmware", d, 0, fw,
		       "no Pi 4 device tree (bcm2711-*.dtb) beside the Pi 4 firmware");
	else if (have3 == 3 && !dtb3)
		ck_add(ck, IMG_WARNING, "firmware", d, 0, fw,
		       "no Pi 3 device tree (bcm2710-*.dtb or bcm2837-*.dtb) beside the Pi 3 firmware");
	/* the kernel the firmware loads */
	static const char *const defaults[] = {"kernel8.img", "kernel7l.img", "kernel7.img", "kernel.img",
					       "kernel_2712.img"};
	const char *kernel = NULL;
	for (int i = 0; i < pc.nkernel && !kernel; i++)
		if (in_dir(ck, d, pc.kernel[i]))
			kernel = pc.kernel[i];
	for (size_t i = 0; !pc.nkernel && i < sizeof(defaults) / sizeof(defaults[0]) && !kernel; i++)
		if (in_dir(ck, d, defaults[i]))
			kernel = defaults[i];
	if (!kernel && pc.nkernel) {
		snprintf(path, sizeof(path), "%s/%s", d, pc.kernel[0]);
		ck_add(ck, IMG_ERROR, "kernel", path, 0, "install the kernel, or name one that is there in config.txt",
		       "config.txt names kernel=%s, which is not there: the firmware has no kernel to start",
		       pc.kernel[0]);
	}
	/* its initramfs */
	char initramfs[160] = "";
	if (pc.initramfs[0])
		snprintf(initramfs, sizeof(initramfs), "%s", pc.initramfs);
	else if (pc.auto_initramfs && kernel && !strncmp(kernel, "kernel", 6)) {
		/* kernel8.img -> initramfs8, kernel_2712.img -> initramfs_2712 */
		const char *dot = strrchr(kernel, '.');
		snprintf(initramfs, sizeof(initramfs), "initramfs%.*s", dot ? (int)(dot - kernel - 6) : 0, kernel + 6);
		if (!in_dir(ck, d, initramfs))
			initramfs[0] = 0; /* auto_initramfs only loads it if it is there */
	}
	if (initramfs[0]) {
		snprintf(path, sizeof(path), "%s/%s", d, initramfs);
		if (!in_dir(ck, d, initramfs))
			ck_add(ck, IMG_ERROR, "initramfs", path, 0,
			       "install it, or take the initramfs line out of config.txt",
			       "config.txt loads initramfs %s, which is not there: the firmware stops", initramfs);
		else
			check_initrd(ck, path, "", false, false, "");
	}
	return kernel != NULL;
}

static void check_kernels(struct ck *ck)
{
	bool pi_kernel = check_pi(ck);
	bool debian = check_debian_kernel(ck);
	if (!pi_kernel && !debian && !ck->err) {
		/* a /boot/firmware/kernel*.img counts even without firmware */
		struct names l;
		bool any = false;
		ck_list(ck, "/boot/firmware", &l);
		for (size_t i = 0; i < l.n; i++)
			any |= !strncmp(l.v[i].name, "kernel", 6) && strstr(l.v[i].name, ".img") != NULL;
		ck_names_release(&l);
		if (!any)
			ck_add(
			    ck, IMG_ERROR, "kernel", "/boot", 0,
			    "install a kernel in a maintenance client (linux-image-arm64, or the Raspberry Pi kernel), "
			    "then snapshot it",
			    "no kernel: none of /vmlinuz, /boot/vmlinuz-*, /boot/firmware/kernel*.img");
	}
}

int img_check(struct cow_view *v, struct img_report *rep)
{
	struct ck ck = {.v = v, .rep = rep};
	check_fstab(&ck);
	if (!ck.err)
		img_check_network(&ck);
	if (!ck.err)
		check_kernels(&ck);
	return ck.err;
}
