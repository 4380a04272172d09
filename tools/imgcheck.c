/* SPDX-License-Identifier: MIT */
/*
 * What in a root would break its network boot (imgcheck.h).
 *
 * The root is read as its own boot would read it (bootfs.h: symlinks
 * followed inside the root).  Every file is hostile input: read whole only
 * up to TEXT_MAX, lines parsed with bounds, an unreadable file is a
 * finding of its own.  Where the interface the root is mounted over
 * matters, it is one of the wired names a Pi or a PC gives it (WIRED):
 * the image cannot tell which.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imgcheck.h"
#include "initrd.h"

#define TEXT_MAX (1024 * 1024) /* the largest config file read */
#define LIST_MAX 4096	       /* the most names read from one directory */
#define SOURCE_DEPTH 8	       /* ifupdown "source" nesting */
#define SOURCE_FILES 64	       /* ifupdown files read at most */

/* Names the kernel and udev give the wired interface: eth0 (Raspberry Pi
 * OS, net.ifnames=0), end0 (Debian on a Pi 4: device-tree naming), and
 * the PCI, onboard, slot and MAC forms of predictable names. */
static const char *const WIRED[] = {"eth0", "end0", "enp1s0", "eno1", "ens3", "enx0123456789ab"};
#define N_WIRED (sizeof(WIRED) / sizeof(WIRED[0]))

struct ck {
	struct cow_view *v;
	struct img_report *rep;
	int err; /* a store error: stop */
};

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
static struct img_finding *add(struct ck *ck, enum img_severity sev, const char *check, const char *file, unsigned line,
			       const char *todo, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static struct img_finding *add(struct ck *ck, enum img_severity sev, const char *check, const char *file, unsigned line,
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
static bool store_failed(struct ck *ck, int r)
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
static int read_text(struct ck *ck, const char *check, const char *path, char **ret)
{
	size_t len;
	int r = root_read(ck->v, path, TEXT_MAX, ret, &len);
	if (r == 0) {
		/* a NUL inside ends the text, as for the programs that read it */
		return 1;
	}
	if (r == -ENOENT || r == -ENOTDIR || r == -EISDIR || r == -EACCES || r == -ELOOP)
		return 0;
	if (store_failed(ck, r))
		return 0;
	if (r == -EFBIG)
		add(ck, IMG_WARNING, check, path, 0, "check the file by hand", "larger than %d KiB, not checked",
		    TEXT_MAX / 1024);
	else
		add(ck, IMG_WARNING, check, path, 0, "check the file by hand", "cannot be read (%s), not checked",
		    strerror(-r));
	return 0;
}

static bool is_file(struct ck *ck, const char *path, mode_t want, char *real, size_t realsize)
{
	struct cow_attr a;
	int r = root_walk(ck->v, path, want, &a, real, realsize);
	if (r < 0) {
		store_failed(ck, r);
		return false;
	}
	cow_forget(ck->v, a.ino, 1);
	return true;
}

/* Entry @name of directory @dir, not followed if a symlink: 1 with its
 * attributes (and its target in @target, @tsize bytes, for a symlink),
 * 0 if there is none. */
static int entry(struct ck *ck, const char *dir, const char *name, struct cow_attr *ret, char *target, size_t tsize)
{
	struct cow_attr d;
	int r = root_walk(ck->v, dir, S_IFDIR, &d, NULL, 0);
	if (r < 0)
		return store_failed(ck, r), 0;
	r = cow_lookup(ck->v, d.ino, name, ret);
	cow_forget(ck->v, d.ino, 1);
	if (r < 0)
		return store_failed(ck, r), 0;
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

struct dent {
	char *name;
	uint32_t mode; /* type bits */
};

struct names {
	struct dent *v;
	size_t n, cap;
	bool full; /* LIST_MAX reached */
};

static void names_release(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int names_push(struct names *l, const char *name, uint32_t mode)
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
	return names_push(arg, name, attr->mode);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

/* The names in directory @dir (none if it is not there), sorted. */
static void list_dir(struct ck *ck, const char *dir, struct names *ret)
{
	memset(ret, 0, sizeof(*ret));
	struct cow_attr d;
	struct cow_dirh *h;
	int r = root_walk(ck->v, dir, S_IFDIR, &d, NULL, 0);
	if (r < 0) {
		store_failed(ck, r);
		return;
	}
	r = cow_opendir(ck->v, d.ino, &h);
	if (r == 0) {
		r = cow_readdir(h, 0, false, names_add, ret);
		cow_releasedir(h);
	}
	cow_forget(ck->v, d.ino, 1);
	if (r < 0)
		store_failed(ck, r);
	if (ret->n)
		qsort(ret->v, ret->n, sizeof(*ret->v), by_name);
}

/* ---- lines of text ---- */

/* Split @s in place at newlines: calls @fn for each line (no newline),
 * numbered from 1, until it returns non-zero. */
static int each_line(char *s, int (*fn)(void *arg, char *line, unsigned no), void *arg)
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
static char *word(char **p)
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
	char *spec = word(&p), *dir = word(&p), *type = word(&p), *opts = word(&p);
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
		f = add(ck, IMG_WARNING, "fstab", "/etc/fstab", no, todo,
			"'%s' (nofail): on a network boot the device is not there; systemd waits for it (90 s by "
			"default) before it boots on without it",
			shown);
	else if (root)
		f = add(ck, IMG_ERROR, "fstab", "/etc/fstab", no, todo,
			"'%s' mounts the root from local storage, but a network boot's root is NFS: systemd waits for "
			"the device, fails to check and remount it, and stops in emergency mode",
			shown);
	else
		f = add(ck, IMG_ERROR, "fstab", "/etc/fstab", no, todo,
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
	if (read_text(ck, "fstab", "/etc/fstab", &s) <= 0)
		return;
	each_line(s, fstab_line, ck);
	free(s);
}

/* ---- systemd units ---- */

#define UNIT_DIR "/etc/systemd/system"

/* Is @unit masked (a symlink to /dev/null in /etc/systemd/system)? */
static bool unit_masked(struct ck *ck, const char *unit)
{
	struct cow_attr a;
	char target[COW_SYMLINK_MAX + 1];
	return entry(ck, UNIT_DIR, unit, &a, target, sizeof(target)) && S_ISLNK(a.mode) && !strcmp(target, "/dev/null");
}

/* Is @unit enabled: a link to it in a .wants or .requires directory of
 * /etc/systemd/system, and not masked?  The link's path into @where. */
static bool unit_enabled(struct ck *ck, const char *unit, char *where, size_t size)
{
	if (unit_masked(ck, unit))
		return false;
	struct names l;
	bool found = false;
	list_dir(ck, UNIT_DIR, &l);
	for (size_t i = 0; i < l.n && !found; i++) {
		const char *d = l.v[i].name;
		if (l.v[i].mode != S_IFDIR || (!strstr(d, ".wants") && !strstr(d, ".requires")))
			continue;
		char dir[ROOT_PATH_MAX];
		struct cow_attr a;
		snprintf(dir, sizeof(dir), UNIT_DIR "/%s", d);
		if (entry(ck, dir, unit, &a, NULL, 0)) {
			snprintf(where, size, "%s/%s", dir, unit);
			found = true;
		}
	}
	names_release(&l);
	return found;
}

/* Does the glob list @list (blank-separated) match a wired interface? */
static bool globs_match_wired(const char *list, char *which, size_t size)
{
	char copy[1024];
	snprintf(copy, sizeof(copy), "%s", list);
	char *p = copy, *w;
	while ((w = word(&p)))
		for (size_t i = 0; i < N_WIRED; i++)
			if (fnmatch(w, WIRED[i], 0) == 0) {
				snprintf(which, size, "%s", WIRED[i]);
				return true;
			}
	return false;
}

/* ---- systemd-networkd ---- */

struct ini {
	char section[64];
};

/* A "key=value" line of an ini file in @line: the key and value (trimmed),
 * or false for a section header (into @ini), comment or blank. */
static bool ini_line(struct ini *ini, char *line, char **key, char **value)
{
	char *p = line + strspn(line, " \t\r");
	size_t n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
		p[--n] = 0;
	if (!*p || *p == '#' || *p == ';')
		return false;
	if (*p == '[') {
		char *e = strchr(p, ']');
		snprintf(ini->section, sizeof(ini->section), "%.*s", e ? (int)(e - p - 1) : 0, p + 1);
		return false;
	}
	char *eq = strchr(p, '=');
	if (!eq)
		return false;
	char *k = p, *ke = eq;
	while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
		ke--;
	*ke = 0;
	char *v = eq + 1;
	v += strspn(v, " \t");
	*key = k;
	*value = v;
	return true;
}

static bool yes(const char *v)
{
	return !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1");
}

struct netfile {
	struct ini ini;
	bool any_match, name_given, name_matches, other_excludes, keeps;
	char iface[32];
};

static int network_line(void *arg, char *line, unsigned no)
{
	(void)no;
	struct netfile *n = arg;
	char buf[1024], *k, *v;
	snprintf(buf, sizeof(buf), "%s", line);
	if (!ini_line(&n->ini, buf, &k, &v))
		return 0;
	if (!strcmp(n->ini.section, "Match")) {
		n->any_match = true;
		if (!strcmp(k, "Name")) {
			n->name_given = true;
			bool neg = *v == '!';
			bool m = globs_match_wired(neg ? v + 1 : v, n->iface, sizeof(n->iface));
			if (neg && !m)
				snprintf(n->iface, sizeof(n->iface), "%s", WIRED[0]);
			n->name_matches = neg ? !m : m;
		} else if (!strcmp(k, "Type") && *v && strcmp(v, "ether")) {
			n->other_excludes = true;
		}
	} else if ((!strcmp(n->ini.section, "Network") && !strcmp(k, "KeepConfiguration") &&
		    (yes(v) || !strcmp(v, "static"))) ||
		   (!strncmp(n->ini.section, "DHCP", 4) && !strcmp(k, "CriticalConnection") && yes(v))) {
		n->keeps = true;
	}
	return 0;
}

static void check_networkd(struct ck *ck)
{
	char link[ROOT_PATH_MAX + 64];
	if (!unit_enabled(ck, "systemd-networkd.service", link, sizeof(link)) &&
	    !unit_enabled(ck, "systemd-networkd.socket", link, sizeof(link)))
		return;
	/* .network files: /etc overrides a file of the same name in /usr/lib
	 * or /lib (the same directory on a merged-/usr root) */
	static const char *const dirs[] = {"/etc/systemd/network", "/usr/lib/systemd/network", "/lib/systemd/network"};
	char seen_dirs[3][ROOT_PATH_MAX + 1];
	struct names seen = {0};
	for (size_t d = 0; d < 3 && !ck->err; d++) {
		if (!is_file(ck, dirs[d], S_IFDIR, seen_dirs[d], sizeof(seen_dirs[d])))
			continue;
		bool dup = false;
		for (size_t e = 0; e < d; e++)
			dup |= !strcmp(seen_dirs[d], seen_dirs[e]);
		if (dup)
			continue;
		struct names l;
		list_dir(ck, dirs[d], &l);
		for (size_t i = 0; i < l.n && !ck->err; i++) {
			const char *name = l.v[i].name;
			size_t len = strlen(name);
			if (len < 9 || strcmp(name + len - 8, ".network"))
				continue;
			bool shadowed = false;
			for (size_t s = 0; s < seen.n; s++)
				shadowed |= !strcmp(seen.v[s].name, name);
			if (shadowed)
				continue;
			if (names_push(&seen, name, S_IFREG) < 0) {
				ck->err = -ENOMEM;
				break;
			}
			char path[ROOT_PATH_MAX + 1], *s;
			snprintf(path, sizeof(path), "%s/%s", dirs[d], name);
			/* a link to /dev/null masks it: not a regular file, not read */
			if (read_text(ck, "network", path, &s) <= 0)
				continue;
			struct netfile n = {0};
			each_line(s, network_line, &n);
			free(s);
			bool matches = !n.other_excludes && (!n.name_given || n.name_matches);
			if (!n.name_given)
				snprintf(n.iface, sizeof(n.iface), "the wired interface");
			if (!matches || n.keeps)
				continue;
			struct img_finding *f = add(
			    ck, IMG_ERROR, "network", path, 0,
			    "mask systemd-networkd ('image check --fix' does: systemctl mask systemd-networkd.service "
			    "systemd-networkd.socket systemd-networkd-wait-online.service), or set "
			    "KeepConfiguration=yes in its [Network] section",
			    "systemd-networkd is enabled (%s) and this file configures %s: when it starts it takes the "
			    "interface over from the boot's own configuration, and the NFS root it is mounted over "
			    "stops answering (\"nfs: server not responding\")",
			    link, n.iface);
			if (f) {
				f->fix = IMG_FIX_MASK;
				snprintf(f->arg, sizeof(f->arg),
					 "systemd-networkd.service systemd-networkd.socket "
					 "systemd-networkd-wait-online.service");
			}
		}
		names_release(&l);
	}
	names_release(&seen);
}

/* ---- NetworkManager ---- */

/* Does NetworkManager's device spec list @list (';' or ',' separated)
 * match wired interface @ifname?  "interface-name:GLOB", "type:ethernet",
 * "*", with "except:" in front of a spec excluding what it matches. */
static bool nm_spec_matches(const char *list, const char *ifname)
{
	char copy[1024];
	snprintf(copy, sizeof(copy), "%s", list);
	bool pos = false, any_pos = false, excepted = false;
	for (char *save, *item = strtok_r(copy, ";,", &save); item; item = strtok_r(NULL, ";,", &save)) {
		item += strspn(item, " \t");
		bool except = !strncmp(item, "except:", 7);
		if (except)
			item += 7;
		bool m = false;
		if (!strcmp(item, "*"))
			m = true;
		else if (!strncmp(item, "interface-name:", 15)) {
			const char *g = item + 15;
			if (*g == '=')
				m = !strcmp(g + 1, ifname);
			else
				m = fnmatch(*g == '~' ? g + 1 : g, ifname, 0) == 0;
		} else if (!strcmp(item, "type:ethernet"))
			m = true;
		if (except)
			excepted |= m;
		else {
			any_pos = true;
			pos |= m;
		}
	}
	/* only except: specs match everything they do not except */
	return (pos || !any_pos) && !excepted;
}

struct nmconf {
	struct ini ini;
	char unmanaged[1024];  /* [keyfile] unmanaged-devices */
	bool device_unmanaged; /* a [device*] section with managed=false */
	char device_match[512];
	bool device_managed_false;
	bool ifupdown_plugin, ifupdown_managed_false;
};

static void nm_end_section(struct nmconf *c)
{
	if (c->device_managed_false && c->device_match[0])
		for (size_t i = 0; i < N_WIRED; i++)
			if (nm_spec_matches(c->device_match, WIRED[i]))
				c->device_unmanaged = true;
	c->device_match[0] = 0;
	c->device_managed_false = false;
}

static int nm_line(void *arg, char *line, unsigned no)
{
	(void)no;
	struct nmconf *c = arg;
	char buf[1024], *k, *v;
	snprintf(buf, sizeof(buf), "%s", line);
	char before[64];
	snprintf(before, sizeof(before), "%s", c->ini.section);
	bool kv = ini_line(&c->ini, buf, &k, &v);
	if (strcmp(before, c->ini.section))
		nm_end_section(c);
	if (!kv)
		return 0;
	const char *sec = c->ini.section;
	if (!strcmp(sec, "keyfile") && !strcmp(k, "unmanaged-devices")) {
		snprintf(c->unmanaged, sizeof(c->unmanaged), "%s", v);
	} else if (!strcmp(sec, "keyfile") && !strcmp(k, "unmanaged-devices+")) {
		size_t n = strlen(c->unmanaged);
		snprintf(c->unmanaged + n, sizeof(c->unmanaged) - n, ";%s", v);
	} else if (!strncmp(sec, "device", 6) && !strcmp(k, "match-device")) {
		snprintf(c->device_match, sizeof(c->device_match), "%s", v);
	} else if (!strncmp(sec, "device", 6) && !strcmp(k, "managed")) {
		c->device_managed_false = !yes(v);
	} else if (!strcmp(sec, "main") && !strcmp(k, "plugins")) {
		c->ifupdown_plugin = strstr(v, "ifupdown") != NULL;
	} else if (!strcmp(sec, "ifupdown") && !strcmp(k, "managed")) {
		c->ifupdown_managed_false = !yes(v);
	}
	return 0;
}

/* ifupdown's configuration, read once for NetworkManager and ifupdown */
struct ifstanza {
	char file[ROOT_PATH_MAX + 1];
	unsigned line;
	char iface[32];
	char how[24]; /* "auto", "allow-hotplug"; or "inet dhcp" for an iface line */
};

struct ifconf {
	struct ifstanza *v;
	size_t n;
	unsigned files;
	struct ck *ck;
	const char *file;
	int depth;
};

static void ifconf_read(struct ifconf *c, const char *path);

static void ifconf_add(struct ifconf *c, unsigned line, const char *iface, const char *how)
{
	if ((c->n & (c->n - 1)) == 0 && c->n < 4096) {
		struct ifstanza *v = realloc(c->v, (c->n ? 2 * c->n : 1) * sizeof(*v));
		if (!v) {
			c->ck->err = -ENOMEM;
			return;
		}
		c->v = v;
	}
	if (c->n >= 4096)
		return;
	struct ifstanza *s = &c->v[c->n++];
	snprintf(s->file, sizeof(s->file), "%s", c->file);
	s->line = line;
	snprintf(s->iface, sizeof(s->iface), "%s", iface);
	snprintf(s->how, sizeof(s->how), "%s", how);
}

/* "source" with a glob in its last component, as ifupdown expands it */
static void ifconf_source(struct ifconf *c, const char *pattern, bool directory)
{
	char pat[ROOT_PATH_MAX + 1], dir[ROOT_PATH_MAX + 1];
	if (pattern[0] == '/')
		snprintf(pat, sizeof(pat), "%s", pattern);
	else
		snprintf(pat, sizeof(pat), "/etc/network/%s", pattern);
	if (directory) {
		snprintf(dir, sizeof(dir), "%s", pat);
		snprintf(pat, sizeof(pat), "*");
	} else {
		char *slash = strrchr(pat, '/');
		snprintf(dir, sizeof(dir), "%.*s", slash == pat ? 1 : (int)(slash - pat), pat);
		memmove(pat, slash + 1, strlen(slash + 1) + 1);
	}
	struct names l;
	list_dir(c->ck, dir, &l);
	for (size_t i = 0; i < l.n && !c->ck->err; i++) {
		const char *n = l.v[i].name;
		/* source-directory takes names of [A-Za-z0-9_-] only */
		if (directory &&
		    strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(n))
			continue;
		if (fnmatch(pat, n, FNM_PERIOD) || l.v[i].mode == S_IFDIR)
			continue;
		char path[ROOT_PATH_MAX + COW_NAME_MAX + 2];
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", n);
		ifconf_read(c, path);
	}
	names_release(&l);
}

struct ifparse {
	struct ifconf *c;
	char family[8]; /* of the iface stanza we are in */
};

static int if_line(void *arg, char *line, unsigned no)
{
	struct ifparse *p = arg;
	struct ifconf *c = p->c;
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", line);
	char *s = buf, *kw = word(&s);
	if (!kw || kw[0] == '#')
		return 0;
	if (!strcmp(kw, "auto") || !strcmp(kw, "allow-auto") || !strcmp(kw, "allow-hotplug")) {
		for (char *i; (i = word(&s));)
			ifconf_add(c, no, i, kw);
	} else if (!strcmp(kw, "iface")) {
		char *i = word(&s), *fam = word(&s), *method = word(&s);
		if (i && fam && method) {
			char how[24];
			snprintf(how, sizeof(how), "%.7s %.15s", fam, method);
			ifconf_add(c, no, i, how);
		}
	} else if (!strcmp(kw, "source") || !strcmp(kw, "source-directory")) {
		char *pat = word(&s);
		const char *file = c->file;
		if (pat && c->depth < SOURCE_DEPTH) {
			c->depth++;
			ifconf_source(c, pat, !strcmp(kw, "source-directory"));
			c->depth--;
		}
		c->file = file;
	}
	return 0;
}

static void ifconf_read(struct ifconf *c, const char *path)
{
	char *s;
	if (c->files >= SOURCE_FILES)
		return;
	c->files++;
	if (read_text(c->ck, "network", path, &s) <= 0)
		return;
	char file[ROOT_PATH_MAX + 1];
	snprintf(file, sizeof(file), "%s", path);
	const char *outer = c->file;
	c->file = file;
	struct ifparse p = {.c = c};
	each_line(s, if_line, &p);
	c->file = outer;
	free(s);
}

static bool wired_name(const char *iface)
{
	return !strncmp(iface, "eth", 3) || !strncmp(iface, "en", 2);
}

static void check_networkmanager(struct ck *ck, const struct ifconf *ifc)
{
	char link[ROOT_PATH_MAX + 64];
	if (!unit_enabled(ck, "NetworkManager.service", link, sizeof(link)))
		return;
	/* NetworkManager.conf, then conf.d files in name order (/etc over
	 * /usr/lib for a name both have) */
	struct nmconf c = {0};
	char *s;
	const char *why = NULL;
	char whyfile[ROOT_PATH_MAX + 1] = "";
	if (read_text(ck, "network", "/etc/NetworkManager/NetworkManager.conf", &s) > 0) {
		each_line(s, nm_line, &c);
		nm_end_section(&c);
		free(s);
	}
	struct names all = {0};
	static const char *const dirs[] = {"/usr/lib/NetworkManager/conf.d", "/etc/NetworkManager/conf.d"};
	for (size_t d = 0; d < 2; d++) {
		struct names l;
		list_dir(ck, dirs[d], &l);
		for (size_t i = 0; i < l.n; i++) {
			size_t len = strlen(l.v[i].name);
			if (len < 6 || strcmp(l.v[i].name + len - 5, ".conf"))
				continue;
			char path[ROOT_PATH_MAX + 1];
			snprintf(path, sizeof(path), "%s/%s", dirs[d], l.v[i].name);
			if (names_push(&all, path, S_IFREG) < 0)
				ck->err = -ENOMEM;
		}
		names_release(&l);
	}
	/* by file name; the /etc one of a name both have last, so it wins */
	for (size_t i = 0; i < all.n; i++) {
		const char *base = strrchr(all.v[i].name, '/') + 1;
		bool later = false;
		for (size_t j = 0; j < all.n; j++) {
			const char *b = strrchr(all.v[j].name, '/') + 1;
			if (j != i && !strcmp(b, base) && !strncmp(all.v[j].name, "/etc/", 5))
				later = strncmp(all.v[i].name, "/etc/", 5) != 0;
		}
		if (later)
			all.v[i].name[0] = 0; /* shadowed */
	}
	for (size_t round = 0; round < all.n; round++) {
		/* the smallest base name not read yet */
		ssize_t best = -1;
		for (size_t i = 0; i < all.n; i++)
			if (all.v[i].name[0] &&
			    (best < 0 || strcmp(strrchr(all.v[i].name, '/'), strrchr(all.v[best].name, '/')) < 0))
				best = (ssize_t)i;
		if (best < 0)
			break;
		char unmanaged_before[sizeof(c.unmanaged)];
		bool dev_before = c.device_unmanaged;
		snprintf(unmanaged_before, sizeof(unmanaged_before), "%s", c.unmanaged);
		memset(&c.ini, 0, sizeof(c.ini));
		if (read_text(ck, "network", all.v[best].name, &s) > 0) {
			each_line(s, nm_line, &c);
			nm_end_section(&c);
			free(s);
		}
		if (strcmp(unmanaged_before, c.unmanaged) || dev_before != c.device_unmanaged)
			snprintf(whyfile, sizeof(whyfile), "%s", all.v[best].name);
		all.v[best].name[0] = 0;
	}
	names_release(&all);
	const char *leaves = NULL;
	for (size_t i = 0; i < N_WIRED && !leaves; i++)
		if ((c.unmanaged[0] && nm_spec_matches(c.unmanaged, WIRED[i])) || c.device_unmanaged)
			leaves = WIRED[i], why = "unmanaged-devices";
	/* the ifupdown plugin with managed=false leaves alone what
	 * /etc/network/interfaces configures */
	if (!leaves && c.ifupdown_plugin && c.ifupdown_managed_false)
		for (size_t i = 0; i < ifc->n && !leaves; i++)
			if (!strncmp(ifc->v[i].how, "inet", 4) && wired_name(ifc->v[i].iface)) {
				leaves = ifc->v[i].iface, why = "ifupdown";
				snprintf(whyfile, sizeof(whyfile), "%s", ifc->v[i].file);
			}
	if (leaves) {
		add(ck, IMG_INFO, "network", whyfile[0] ? whyfile : "/etc/NetworkManager/NetworkManager.conf", 0,
		    "make sure that is the interface the root is mounted over",
		    "NetworkManager is enabled but leaves %s alone (%s)", leaves, why);
		return;
	}
	struct img_finding *f = add(
	    ck, IMG_ERROR, "network", link, 0,
	    "mask NetworkManager ('image check --fix' does), or list the interface in unmanaged-devices= of "
	    "[keyfile] in a file of /etc/NetworkManager/conf.d",
	    "NetworkManager is enabled and manages the wired interface: when it starts it reconfigures the interface "
	    "the NFS root is mounted over, and the root stops answering (\"nfs: server not responding\")");
	if (f) {
		f->fix = IMG_FIX_MASK;
		snprintf(f->arg, sizeof(f->arg), "NetworkManager.service NetworkManager-wait-online.service");
	}
}

static void check_ifupdown(struct ck *ck, const struct ifconf *c)
{
	if (!is_file(ck, "/sbin/ifup", S_IFREG, NULL, 0) && !is_file(ck, "/usr/sbin/ifup", S_IFREG, NULL, 0))
		return; /* not installed: its configuration does nothing */
	for (size_t i = 0; i < c->n; i++) {
		const struct ifstanza *a = &c->v[i];
		/* allow-auto is auto; both are brought up by `ifup -a` at boot,
		 * allow-hotplug by udev when the interface appears */
		if (strcmp(a->how, "auto") && strcmp(a->how, "allow-auto") && strcmp(a->how, "allow-hotplug"))
			continue;
		if (!wired_name(a->iface))
			continue;
		/* how the interface is configured: the worst of its stanzas */
		const struct ifstanza *how = NULL;
		enum img_severity sev = IMG_INFO;
		for (size_t j = 0; j < c->n; j++) {
			const struct ifstanza *s = &c->v[j];
			if (strcmp(s->iface, a->iface) || strncmp(s->how, "inet", 4))
				continue;
			enum img_severity v = IMG_INFO;
			if (!strcmp(s->how, "inet dhcp") || !strcmp(s->how, "inet bootp"))
				v = IMG_ERROR;
			else if (!strcmp(s->how, "inet static") || !strncmp(s->how, "inet6 ", 6))
				v = strcmp(s->how, "inet6 manual") ? IMG_WARNING : IMG_INFO;
			if (v < sev || !how) {
				sev = v < sev ? v : sev;
				how = s;
			}
		}
		if (!how || sev == IMG_INFO)
			continue;
		struct img_finding *f = add(
		    ck, sev, "network", a->file, a->line,
		    "take the interface off its auto/allow-hotplug line ('image check --fix' does), or configure it "
		    "'inet manual'",
		    "'%s %s' with 'iface %s %s' (%s:%u): at boot ifupdown %s the interface the NFS root is mounted "
		    "over, and the root stops answering (\"nfs: server not responding\")",
		    a->how, a->iface, a->iface, how->how, how->file, how->line,
		    sev == IMG_ERROR ? "restarts DHCP on" : "configures again");
		if (f) {
			f->fix = IMG_FIX_IFUPDOWN;
			snprintf(f->arg, sizeof(f->arg), "%s", a->iface);
		}
	}
}

static void check_dhcpcd(struct ck *ck)
{
	char link[ROOT_PATH_MAX + 64];
	const char *unit = "dhcpcd.service";
	if (!unit_enabled(ck, unit, link, sizeof(link))) {
		unit = "dhcpcd5.service";
		if (!unit_enabled(ck, unit, link, sizeof(link)))
			return;
	}
	/* denyinterfaces / allowinterfaces of /etc/dhcpcd.conf */
	char *s;
	bool denied = false, allow_given = false, allowed = false;
	char which[32];
	if (read_text(ck, "network", "/etc/dhcpcd.conf", &s) > 0) {
		for (char *line = s, *next; line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = 0;
			char *p = line, *kw = word(&p);
			if (!kw)
				continue;
			for (char *c = p; *c; c++)
				if (*c == ',')
					*c = ' ';
			if (!strcmp(kw, "denyinterfaces"))
				denied |= globs_match_wired(p, which, sizeof(which));
			else if (!strcmp(kw, "allowinterfaces")) {
				allow_given = true;
				allowed |= globs_match_wired(p, which, sizeof(which));
			}
		}
		free(s);
	}
	if (denied || (allow_given && !allowed))
		return;
	char mask[128];
	snprintf(mask, sizeof(mask), "%s", unit);
	struct img_finding *f =
	    add(ck, IMG_ERROR, "network", link, 0,
		"mask dhcpcd ('image check --fix' does), or add 'denyinterfaces eth0' (the wired interface) to "
		"/etc/dhcpcd.conf",
		"dhcpcd is enabled and manages every interface: when it starts it restarts DHCP on the interface the "
		"NFS root is mounted over, and the root stops answering (\"nfs: server not responding\")");
	if (f) {
		f->fix = IMG_FIX_MASK;
		snprintf(f->arg, sizeof(f->arg), "%s", mask);
	}
}

static void check_network(struct ck *ck)
{
	struct ifconf ifc = {.ck = ck, .file = "/etc/network/interfaces"};
	ifconf_read(&ifc, "/etc/network/interfaces");
	check_networkd(ck);
	check_networkmanager(ck, &ifc);
	check_ifupdown(ck, &ifc);
	check_dhcpcd(ck);
	free(ifc.v);
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
	if (read_text(ck, "kernel", path, &s) <= 0)
		return;
	k->known = true;
	snprintf(k->file, sizeof(k->file), "%s", path);
	each_line(s, kconfig_line, k);
	free(s);
}

/* Does /lib/modules/VER/modules.builtin of the root list the nfs module? */
static bool nfs_builtin_in_root(struct ck *ck, const char *ver)
{
	char path[ROOT_PATH_MAX + 1], *s;
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.builtin", ver);
	if (read_text(ck, "kernel", path, &s) <= 0)
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

static ssize_t read_view(void *arg, void *buf, size_t n, uint64_t off)
{
	struct reader *r = arg;
	return root_pread(r->f, buf, n, (off_t)off);
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
		if (!store_failed(ck, r))
			add(ck, IMG_ERROR, "initramfs", path, 0,
			    "rebuild it (update-initramfs -u in a maintenance client)",
			    "the initramfs cannot be read (%s)", strerror(-r));
		return;
	}
	struct initrd_facts f;
	r = initrd_scan(read_view, &rd, a.size > 0 ? (uint64_t)a.size : 0, &f);
	cow_release(rd.f);
	cow_forget(ck->v, a.ino, 1);
	if (r < 0) {
		if (!store_failed(ck, r))
			add(ck, IMG_WARNING, "initramfs", path, 0, NULL,
			    "the initramfs cannot be read (%s), not checked", strerror(-r));
		return;
	}
	const char *rebuild = "rebuild it in a maintenance client (update-initramfs -u -k VERSION, initramfs-tools "
			      "with BOOT=nfs in /etc/initramfs-tools/initramfs.conf), then snapshot it";
	if (!f.complete) {
		if (f.too_big)
			add(ck, IMG_WARNING, "initramfs", path, 0, "check it by hand (lsinitramfs)",
			    "the initramfs (%s) %s; what it holds past there is not checked", f.formats, f.problem);
		else
			add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
			    "the initramfs (%s) is broken: %s; the kernel stops unpacking it there",
			    f.formats[0] ? f.formats : "empty", f.problem);
		return; /* what is missing may be in the part not read */
	}
	if (f.initramfs_tools) {
		if (!f.scripts_nfs)
			add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
			    "the initramfs (initramfs-tools) has no scripts/nfs: it can only mount a local root");
		if (!f.nfsmount && !f.mount_nfs)
			add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
			    "the initramfs (initramfs-tools) has no nfsmount (klibc-utils) nor mount.nfs: it cannot "
			    "mount an NFS root");
		const char *boot = f.boot_confd[0] ? f.boot_confd : f.boot;
		if (boot[0] && strcmp(boot, "nfs")) {
			char where[300];
			snprintf(where, sizeof(where), "conf/%s%s", f.boot_confd[0] ? "conf.d/" : "initramfs.conf",
				 f.boot_confd[0] ? f.boot_confd_file : "");
			add(ck, IMG_ERROR, "initramfs", path, 0,
			    "set BOOT=nfs in /etc/initramfs-tools/initramfs.conf and rebuild it, or give the client "
			    "'boot=nfs' on its kernel command line (cowroot client set NAME --boot-args boot=nfs)",
			    "the initramfs says BOOT=%s (%s): root=/dev/nfs on the command line does not override it, "
			    "so "
			    "it looks for a local root and stops",
			    boot, where);
		}
	} else if (f.dracut) {
		if (!f.dracut_nfs && !f.mount_nfs)
			add(ck, IMG_ERROR, "initramfs", path, 0,
			    "rebuild it with dracut's nfs module (dracut --add nfs), then snapshot it",
			    "the initramfs (dracut) has no nfs module (no sbin/nfsroot nor mount.nfs): it cannot mount "
			    "an "
			    "NFS root");
	} else if (f.complete) {
		add(ck, IMG_WARNING, "initramfs", path, 0, "check by hand that it can mount an NFS root",
		    "the initramfs is neither initramfs-tools' nor dracut's: cannot tell whether it mounts an NFS "
		    "root");
	}
	if (f.kver[0] && kver[0] && strcmp(f.kver, kver))
		add(ck, IMG_WARNING, "initramfs", path, 0, rebuild,
		    "the initramfs holds the modules of kernel %s, not of %s: they will not load", f.kver, kver);
	if (nfs_module && !f.nfs_ko && !f.nfs_builtin)
		add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
		    "the initramfs has no nfs module (fs/nfs/nfs.ko) and the kernel has NFS as a module (%s)",
		    why_module);
	else if (nfsv3_module && f.nfs_ko && !f.nfsv3_ko)
		add(ck, IMG_ERROR, "initramfs", path, 0, rebuild,
		    "the initramfs has no nfsv3 module (fs/nfs/nfsv3.ko), which an NFSv3 root needs (CONFIG_NFS_V3=m)");
}

/* The newest "vmlinuz-VERSION" in /boot, into @ret ("" if none). */
static void newest_vmlinuz(struct ck *ck, char *ret, size_t size)
{
	struct names l;
	list_dir(ck, "/boot", &l);
	ret[0] = 0;
	const char *best = NULL;
	for (size_t i = 0; i < l.n; i++)
		if (!strncmp(l.v[i].name, "vmlinuz-", 8) && l.v[i].mode == S_IFREG &&
		    (!best || strverscmp(l.v[i].name, best) > 0))
			best = l.v[i].name;
	if (best)
		snprintf(ret, size, "/boot/%s", best);
	names_release(&l);
}

/* The Debian layout: /vmlinuz (or the newest /boot/vmlinuz-*) and its
 * initramfs.  Returns whether there is such a kernel. */
static bool check_debian_kernel(struct ck *ck)
{
	char kernel[ROOT_PATH_MAX + 1], initrd[ROOT_PATH_MAX + 1] = "";
	bool via_link = is_file(ck, "/vmlinuz", S_IFREG, kernel, sizeof(kernel));
	if (!via_link)
		newest_vmlinuz(ck, kernel, sizeof(kernel));
	if (!kernel[0])
		return false;
	const char *base = strrchr(kernel, '/') + 1;
	char ver[128] = "";
	if (!strncmp(base, "vmlinuz-", 8))
		snprintf(ver, sizeof(ver), "%s", base + 8);
	char try[ROOT_PATH_MAX + 1];
	if (via_link && is_file(ck, "/initrd.img", S_IFREG, initrd, sizeof(initrd)))
		;
	else if (ver[0]) {
		snprintf(try, sizeof(try), "/boot/initrd.img-%s", ver);
		if (!is_file(ck, try, S_IFREG, initrd, sizeof(initrd)))
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
			add(ck, IMG_ERROR, "kernel", kernel, 0, "install a kernel with NFS support",
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
			add(ck, k.known ? IMG_ERROR : IMG_WARNING, "kernel", kernel, 0,
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
	char *hash = strchr(buf, '#');
	if (hash)
		*hash = 0;
	char *p = buf + strspn(buf, " \t");
	size_t n = strlen(p);
	while (n && strchr(" \t\r", p[n - 1]))
		p[--n] = 0;
	if (!strncmp(p, "kernel=", 7) && p[7] && c->nkernel < 8)
		snprintf(c->kernel[c->nkernel++], sizeof(c->kernel[0]), "%s", p + 7);
	else if (!strncmp(p, "initramfs", 9) && (p[9] == ' ' || p[9] == '\t')) {
		char *q = p + 9, *file = word(&q);
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
	return is_file(ck, path, S_IFREG, NULL, 0);
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
		add(ck, IMG_INFO, "firmware", "/boot/firmware", 0,
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
	if (read_text(ck, "firmware", path, &s) > 0) {
		each_line(s, piconf_line, &pc);
		free(s);
	} else if (!ck->err)
		add(ck, IMG_WARNING, "firmware", path, 0, "write one (e.g. arm_64bit=1)",
		    "no config.txt: the firmware boots with its defaults (a 32-bit kernel.img on a Pi 3)");
	if (!have4 && !have3) {
		if (pi5)
			add(ck, IMG_INFO, "firmware", d, 0, fw,
			    "no start4.elf nor start.elf: only a Pi 5 (firmware in its EEPROM) can boot natively");
		else
			add(ck, IMG_ERROR, "firmware", d, 0, fw,
			    "no Pi firmware: neither start4.elf and fixup4.dat (Pi 4) nor bootcode.bin, start.elf and "
			    "fixup.dat (Pi 3): no Pi boots natively from it");
	}
	for (int i = 0; have4 && i < 2; i++)
		if (!in_dir(ck, d, pi4[i])) {
			snprintf(path, sizeof(path), "%s/%s", d, pi4[i]);
			add(ck, IMG_ERROR, "firmware", path, 0, fw, "missing: a Pi 4 stops before its kernel");
		}
	for (int i = 0; have3 && i < 3; i++)
		if (!in_dir(ck, d, pi3[i])) {
			snprintf(path, sizeof(path), "%s/%s", d, pi3[i]);
			add(ck, IMG_ERROR, "firmware", path, 0, fw, "missing: a Pi 3 stops before its kernel");
		}
	if (have4 && !have3)
		add(ck, IMG_INFO, "firmware", d, 0, NULL,
		    "no Pi 3 firmware (bootcode.bin, start.elf): a Pi 3 cannot boot natively");
	else if (have3 && !have4)
		add(ck, IMG_INFO, "firmware", d, 0, NULL,
		    "no Pi 4 firmware (start4.elf, fixup4.dat): a Pi 4 cannot boot natively");
	/* device trees */
	struct names l;
	list_dir(ck, d, &l);
	bool dtb = false, dtb4 = false, dtb3 = false;
	for (size_t i = 0; i < l.n; i++) {
		size_t n = strlen(l.v[i].name);
		if (n > 4 && !strcmp(l.v[i].name + n - 4, ".dtb")) {
			dtb = true;
			dtb4 |= !strncmp(l.v[i].name, "bcm2711-", 8);
			dtb3 |= !strncmp(l.v[i].name, "bcm2710-", 8) || !strncmp(l.v[i].name, "bcm2837-", 8);
		}
	}
	names_release(&l);
	if (!dtb)
		add(ck, IMG_ERROR, "firmware", d, 0, fw, "no device tree (*.dtb): the firmware cannot start a kernel");
	else if (have4 == 2 && !dtb4)
		add(ck, IMG_WARNING, "firmware", d, 0, fw,
		    "no Pi 4 device tree (bcm2711-*.dtb) beside the Pi 4 firmware");
	else if (have3 == 3 && !dtb3)
		add(ck, IMG_WARNING, "firmware", d, 0, fw,
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
		add(ck, IMG_ERROR, "kernel", path, 0, "install the kernel, or name one that is there in config.txt",
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
			add(ck, IMG_ERROR, "initramfs", path, 0,
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
		list_dir(ck, "/boot/firmware", &l);
		for (size_t i = 0; i < l.n; i++)
			any |= !strncmp(l.v[i].name, "kernel", 6) && strstr(l.v[i].name, ".img") != NULL;
		names_release(&l);
		if (!any)
			add(ck, IMG_ERROR, "kernel", "/boot", 0,
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
		check_network(&ck);
	if (!ck.err)
		check_kernels(&ck);
	return ck.err;
}
