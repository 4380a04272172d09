/* SPDX-License-Identifier: MIT */
/*
 * image check: the network managers that would reconfigure the interface
 * the NFS root is mounted over (systemd-networkd, NetworkManager, ifupdown,
 * dhcpcd, netplan).  Which interface that is the image cannot tell: it is one of the
 * wired names a Pi or a PC gives it (WIRED).
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "imgcheck-private.h"

#define SOURCE_DEPTH 8	/* ifupdown "source" nesting */
#define SOURCE_FILES 64 /* ifupdown files read at most */

/* Names the kernel and udev give the wired interface: eth0 (Raspberry Pi
 * OS, net.ifnames=0), end0 (Debian on a Pi 4: device-tree naming), and
 * the PCI, onboard, slot and MAC forms of predictable names. */
static const char *const WIRED[] = {"eth0", "end0", "enp1s0", "eno1", "ens3", "enx0123456789ab"};
#define N_WIRED (sizeof(WIRED) / sizeof(WIRED[0]))

/* what --fix masks for each */
#define NETWORKD_UNITS "systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service"
#define NM_UNITS "NetworkManager.service NetworkManager-wait-online.service"

/* --fix of finding @f (may be NULL): mask @units (space-separated) */
static void fix_by_masking(struct img_finding *f, const char *units)
{
	if (f) {
		f->fix = IMG_FIX_MASK;
		snprintf(f->arg, sizeof(f->arg), "%s", units);
	}
}

/* ---- systemd units ---- */

#define UNIT_DIR "/etc/systemd/system"

/* Is @unit masked (a symlink to /dev/null in /etc/systemd/system)? */
static bool unit_masked(struct ck *ck, const char *unit)
{
	struct cow_attr a;
	char target[COW_SYMLINK_MAX + 1];
	return ck_entry(ck, UNIT_DIR, unit, &a, target, sizeof(target)) && S_ISLNK(a.mode) &&
	       !strcmp(target, "/dev/null");
}

/* Is @unit enabled: a link to it in a .wants or .requires directory of
 * /etc/systemd/system, and not masked?  The link's path into @where. */
static bool unit_enabled(struct ck *ck, const char *unit, char *where, size_t size)
{
	if (unit_masked(ck, unit))
		return false;
	struct names l;
	bool found = false;
	ck_list(ck, UNIT_DIR, &l);
	for (size_t i = 0; i < l.n && !found; i++) {
		const char *d = l.v[i].name;
		if (l.v[i].mode != S_IFDIR || (!strstr(d, ".wants") && !strstr(d, ".requires")))
			continue;
		char dir[ROOT_PATH_MAX];
		struct cow_attr a;
		snprintf(dir, sizeof(dir), UNIT_DIR "/%s", d);
		if (ck_entry(ck, dir, unit, &a, NULL, 0)) {
			snprintf(where, size, "%s/%s", dir, unit);
			found = true;
		}
	}
	ck_names_release(&l);
	return found;
}

/* Does the glob list @list (blank-separated) match a wired interface? */
static bool globs_match_wired(const char *list, char *which, size_t size)
{
	char copy[1024];
	snprintf(copy, sizeof(copy), "%s", list);
	char *p = copy, *w;
	while ((w = ck_word(&p)))
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

/* Call @fn with the path of each file named *@suffix in @dirs (@n of
 * them, first first): a name found in an earlier directory hides the same
 * name in a later one, as /etc hides /usr/lib for systemd and netplan, and
 * a directory reached twice (/lib -> usr/lib) is read once. */
static void each_config(struct ck *ck, const char *const *dirs, size_t n, const char *suffix,
			void (*fn)(struct ck *ck, const char *path, void *arg), void *arg)
{
	char real[4][ROOT_PATH_MAX + 1];
	struct names seen = {0};
	size_t sl = strlen(suffix);
	for (size_t d = 0; d < n && d < 4 && !ck->err; d++) {
		if (!ck_exists(ck, dirs[d], S_IFDIR, real[d], sizeof(real[d])))
			continue;
		bool dup = false;
		for (size_t e = 0; e < d; e++)
			dup |= !strcmp(real[d], real[e]);
		if (dup)
			continue;
		struct names l;
		ck_list(ck, dirs[d], &l);
		for (size_t i = 0; i < l.n && !ck->err; i++) {
			const char *name = l.v[i].name;
			size_t len = strlen(name);
			bool shadowed = false;
			for (size_t k = 0; k < seen.n; k++)
				shadowed |= !strcmp(seen.v[k].name, name);
			if (len <= sl || strcmp(name + len - sl, suffix) || shadowed)
				continue;
			if (ck_names_push(&seen, name, S_IFREG) < 0) {
				ck->err = -ENOMEM;
				break;
			}
			char path[ROOT_PATH_MAX + COW_NAME_MAX + 2];
			snprintf(path, sizeof(path), "%s/%s", dirs[d], name);
			fn(ck, path, arg);
		}
		ck_names_release(&l);
	}
	ck_names_release(&seen);
}

static void networkd_file(struct ck *ck, const char *path, void *arg)
{
	const char *link = arg;
	char *s;
	/* a link to /dev/null masks it: not a regular file, not read */
	if (ck_read_text(ck, "network", path, &s) <= 0)
		return;
	struct netfile n = {0};
	ck_lines(s, network_line, &n);
	free(s);
	/* its drop-ins (FILE.network.d/NAME.conf beside it), in name order:
	 * KeepConfiguration= is often set there */
	char dir[ROOT_PATH_MAX + 8];
	struct names l;
	snprintf(dir, sizeof(dir), "%s.d", path);
	ck_list(ck, dir, &l);
	for (size_t i = 0; i < l.n; i++) {
		char conf[ROOT_PATH_MAX + COW_NAME_MAX + 16];
		size_t len = strlen(l.v[i].name);
		if (len < 6 || strcmp(l.v[i].name + len - 5, ".conf"))
			continue;
		snprintf(conf, sizeof(conf), "%s/%s", dir, l.v[i].name);
		memset(&n.ini, 0, sizeof(n.ini));
		if (ck_read_text(ck, "network", conf, &s) > 0) {
			ck_lines(s, network_line, &n);
			free(s);
		}
	}
	ck_names_release(&l);
	bool matches = !n.other_excludes && (!n.name_given || n.name_matches);
	if (!n.name_given)
		snprintf(n.iface, sizeof(n.iface), "the wired interface");
	if (!matches || n.keeps)
		return;
	struct img_finding *f =
	    ck_add(ck, IMG_ERROR, "network", path, 0,
		   "mask systemd-networkd ('image check --fix' does: systemctl mask systemd-networkd.service "
		   "systemd-networkd.socket systemd-networkd-wait-online.service), or set "
		   "KeepConfiguration=yes in its [Network] section",
		   "systemd-networkd is enabled (%s) and this file configures %s: when it starts it takes the "
		   "interface over from the boot's own configuration, and the NFS root it is mounted over "
		   "stops answering (\"nfs: server not responding\")",
		   link, n.iface);
	fix_by_masking(f, NETWORKD_UNITS);
}

static void check_networkd(struct ck *ck)
{
	char link[ROOT_PATH_MAX + 64];
	if (!unit_enabled(ck, "systemd-networkd.service", link, sizeof(link)) &&
	    !unit_enabled(ck, "systemd-networkd.socket", link, sizeof(link)))
		return;
	static const char *const dirs[] = {"/etc/systemd/network", "/usr/lib/systemd/network", "/lib/systemd/network"};
	each_config(ck, dirs, 3, ".network", networkd_file, link);
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
	ck_list(c->ck, dir, &l);
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
	ck_names_release(&l);
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
	char *s = buf, *kw = ck_word(&s);
	if (!kw || kw[0] == '#')
		return 0;
	if (!strcmp(kw, "auto") || !strcmp(kw, "allow-auto") || !strcmp(kw, "allow-hotplug")) {
		for (char *i; (i = ck_word(&s));)
			ifconf_add(c, no, i, kw);
	} else if (!strcmp(kw, "iface")) {
		char *i = ck_word(&s), *fam = ck_word(&s), *method = ck_word(&s);
		if (i && fam && method) {
			char how[24];
			snprintf(how, sizeof(how), "%.7s %.15s", fam, method);
			ifconf_add(c, no, i, how);
		}
	} else if (!strcmp(kw, "source") || !strcmp(kw, "source-directory")) {
		char *pat = ck_word(&s);
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
	if (ck_read_text(c->ck, "network", path, &s) <= 0)
		return;
	char file[ROOT_PATH_MAX + 1];
	snprintf(file, sizeof(file), "%s", path);
	const char *outer = c->file;
	c->file = file;
	struct ifparse p = {.c = c};
	ck_lines(s, if_line, &p);
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
	if (ck_read_text(ck, "network", "/etc/NetworkManager/NetworkManager.conf", &s) > 0) {
		ck_lines(s, nm_line, &c);
		nm_end_section(&c);
		free(s);
	}
	struct names all = {0};
	static const char *const dirs[] = {"/usr/lib/NetworkManager/conf.d", "/etc/NetworkManager/conf.d"};
	for (size_t d = 0; d < 2; d++) {
		struct names l;
		ck_list(ck, dirs[d], &l);
		for (size_t i = 0; i < l.n; i++) {
			size_t len = strlen(l.v[i].name);
			if (len < 6 || strcmp(l.v[i].name + len - 5, ".conf"))
				continue;
			char path[ROOT_PATH_MAX + 1];
			snprintf(path, sizeof(path), "%s/%s", dirs[d], l.v[i].name);
			if (ck_names_push(&all, path, S_IFREG) < 0)
				ck->err = -ENOMEM;
		}
		ck_names_release(&l);
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
		if (ck_read_text(ck, "network", all.v[best].name, &s) > 0) {
			ck_lines(s, nm_line, &c);
			nm_end_section(&c);
			free(s);
		}
		if (strcmp(unmanaged_before, c.unmanaged) || dev_before != c.device_unmanaged)
			snprintf(whyfile, sizeof(whyfile), "%s", all.v[best].name);
		all.v[best].name[0] = 0;
	}
	ck_names_release(&all);
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
		ck_add(ck, IMG_INFO, "network", whyfile[0] ? whyfile : "/etc/NetworkManager/NetworkManager.conf", 0,
		       "make sure that is the interface the root is mounted over",
		       "NetworkManager is enabled but leaves %s alone (%s)", leaves, why);
		return;
	}
	struct img_finding *f = ck_add(
	    ck, IMG_ERROR, "network", link, 0,
	    "mask NetworkManager ('image check --fix' does), or list the interface in unmanaged-devices= of "
	    "[keyfile] in a file of /etc/NetworkManager/conf.d",
	    "NetworkManager is enabled and manages the wired interface: when it starts it reconfigures the interface "
	    "the NFS root is mounted over, and the root stops answering (\"nfs: server not responding\")");
	fix_by_masking(f, NM_UNITS);
}

static void check_ifupdown(struct ck *ck, const struct ifconf *c)
{
	if (!ck_exists(ck, "/sbin/ifup", S_IFREG, NULL, 0) && !ck_exists(ck, "/usr/sbin/ifup", S_IFREG, NULL, 0))
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
		struct img_finding *f = ck_add(
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
	if (ck_read_text(ck, "network", "/etc/dhcpcd.conf", &s) > 0) {
		for (char *line = s, *next; line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = 0;
			char *p = line, *kw = ck_word(&p);
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
	struct img_finding *f = ck_add(
	    ck, IMG_ERROR, "network", link, 0,
	    "mask dhcpcd ('image check --fix' does), or add 'denyinterfaces eth0' (the wired interface) to "
	    "/etc/dhcpcd.conf",
	    "dhcpcd is enabled and manages every interface: when it starts it restarts DHCP on the interface the "
	    "NFS root is mounted over, and the root stops answering (\"nfs: server not responding\")");
	fix_by_masking(f, unit);
}

/* ---- netplan (Ubuntu's images): its generator configures networkd or
 * NetworkManager at boot, with no enablement link to see ---- */

struct netplan {
	unsigned ethernets; /* indent of "ethernets:", 0 outside it */
	unsigned id_indent; /* indent of the interface ids under it */
	char id[64];	    /* the interface block we are in, "" none */
	bool wired, dhcp, critical, is_static;
	char match[128];     /* its match: name: */
	bool networkmanager; /* renderer: NetworkManager */
	char found[64];	     /* the first wired interface configured by DHCP */
	bool found_static;
	unsigned line;
};

static void netplan_end(struct netplan *n)
{
	if (n->id[0]) {
		char which[32];
		bool wired = wired_name(n->id) || (n->match[0] && globs_match_wired(n->match, which, sizeof(which)));
		if (wired && !n->critical && (n->dhcp || n->is_static) &&
		    (!n->found[0] || (n->found_static && n->dhcp))) {
			snprintf(n->found, sizeof(n->found), "%s", n->id);
			n->found_static = !n->dhcp;
		}
	}
	n->id[0] = n->match[0] = 0;
	n->dhcp = n->critical = n->is_static = false;
}

static int netplan_line(void *arg, char *line, unsigned no)
{
	(void)no;
	struct netplan *n = arg;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", line);
	ck_chop(buf);
	unsigned indent = (unsigned)strspn(buf, " ");
	char *p = buf + indent;
	if (!*p)
		return 0;
	char *colon = strchr(p, ':');
	char *value = colon ? colon + 1 + strspn(colon + 1, " \t\"'") : "";
	size_t vl = strlen(value);
	while (vl && (value[vl - 1] == '"' || value[vl - 1] == '\''))
		value[--vl] = 0;
	if (colon)
		*colon = 0;
	if (n->ethernets && indent <= n->ethernets - 1) {
		netplan_end(n);
		n->ethernets = 0;
	}
	if (!strcmp(p, "renderer"))
		n->networkmanager |= !strcmp(value, "NetworkManager");
	if (!strcmp(p, "ethernets") && colon) {
		netplan_end(n);
		n->ethernets = indent + 1;
		n->id_indent = 0;
		return 0;
	}
	if (!n->ethernets)
		return 0;
	if (!n->id_indent || indent == n->id_indent) {
		netplan_end(n);
		n->id_indent = indent;
		snprintf(n->id, sizeof(n->id), "%s", p + (*p == '"' || *p == '\''));
		size_t il = strlen(n->id);
		if (il && (n->id[il - 1] == '"' || n->id[il - 1] == '\''))
			n->id[il - 1] = 0;
		return 0;
	}
	bool yes_value = yes(value);
	if ((!strcmp(p, "dhcp4") || !strcmp(p, "dhcp6")) && yes_value)
		n->dhcp = true;
	else if (!strcmp(p, "critical") && yes_value)
		n->critical = true;
	else if (!strcmp(p, "addresses"))
		n->is_static = true;
	else if (!strcmp(p, "name") && *value)
		snprintf(n->match, sizeof(n->match), "%s", value);
	return 0;
}

static void netplan_file(struct ck *ck, const char *path, void *arg)
{
	(void)arg;
	char *s;
	if (ck_read_text(ck, "network", path, &s) <= 0)
		return;
	struct netplan n = {0};
	ck_lines(s, netplan_line, &n);
	netplan_end(&n);
	free(s);
	if (!n.found[0] || unit_masked(ck, n.networkmanager ? "NetworkManager.service" : "systemd-networkd.service"))
		return;
	const char *who = n.networkmanager ? "NetworkManager" : "systemd-networkd";
	struct img_finding *f =
	    ck_add(ck, n.found_static ? IMG_WARNING : IMG_ERROR, "network", path, 0,
		   "set 'critical: true' on the interface, or mask its renderer ('image check --fix' does)",
		   "netplan configures %s (%s) through %s: at boot it %s the interface the NFS root is mounted "
		   "over, and the root stops answering (\"nfs: server not responding\")",
		   n.found, n.found_static ? "static addresses" : "DHCP", who,
		   n.found_static ? "configures again" : "restarts DHCP on");
	fix_by_masking(f, n.networkmanager ? NM_UNITS : NETWORKD_UNITS);
}

static void check_netplan(struct ck *ck)
{
	static const char *const dirs[] = {"/etc/netplan", "/run/netplan", "/lib/netplan"};
	each_config(ck, dirs, 3, ".yaml", netplan_file, NULL);
}

void img_check_network(struct ck *ck)
{
	struct ifconf ifc = {.ck = ck, .file = "/etc/network/interfaces"};
	ifconf_read(&ifc, "/etc/network/interfaces");
	check_networkd(ck);
	check_networkmanager(ck, &ifc);
	check_ifupdown(ck, &ifc);
	check_dhcpcd(ck);
	check_netplan(ck);
	free(ifc.v);
}
