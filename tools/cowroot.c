/* SPDX-License-Identifier: MIT */
/*
 * cowroot: the admin CLI.  `cowroot [--store DIR] <noun> <verb> ...`.
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cowfuse.h"
#include "cowroot.h"
#include "serve.h"

#define DEFAULT_STORE "/var/lib/cowroot"

const char *store_dir;
bool json;

void err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("cowroot: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int usage_err(const char *usage)
{
	fprintf(stderr, "usage: cowroot [--store DIR] %s\n", usage);
	return 2;
}

/* One line explaining why the store could not be opened. */
void store_errmsg(int r, char *buf, size_t n)
{
	/* "STORE/cowroot.db: what is wrong with it", from the core */
	const char *why = cow_store_open_errmsg();
	switch (r) {
	case -ENOENT:
		snprintf(buf, n, "no store at '%s' (create one with 'cowroot --store %s init')", store_dir, store_dir);
		break;
	case -EEXIST:
		snprintf(buf, n, "a store already exists at '%s'", store_dir);
		break;
	case -ENODATA:
		snprintf(buf, n, "%s: refusing a store whose database is empty (restore it from a backup)", why);
		break;
	case -EMEDIUMTYPE:
		snprintf(buf, n, "%s: not a cowroot store database", why);
		break;
	case -EUCLEAN:
		snprintf(buf, n, "%s: writing refused until 'cowroot fsck --repair' repairs it or it is restored", why);
		break;
	case -EIO:
		snprintf(buf, n, "%s: the store database is corrupt or unreadable", why[0] ? why : store_dir);
		break;
	case -EAGAIN:
		snprintf(buf, n, "%s; try again", why[0] ? why : "the store database is locked by another process");
		break;
	case -EPROTO:
		snprintf(buf, n, "%s (written by a newer cowroot)", why[0] ? why : store_dir);
		break;
	case -ENOSPC:
		snprintf(buf, n, "no space left on the device holding '%s'", store_dir);
		break;
	default:
		snprintf(buf, n, "cannot open store '%s': %s", store_dir, strerror(-r));
	}
}

const char *store_why(struct cow_store *st, int r)
{
	const char *m = cow_store_errmsg(st);
	/* the store's own words where they say more than strerror */
	if (m && (r == -EAGAIN || r == -EIO || r == -EUCLEAN))
		return m;
	return strerror(-r);
}

void store_error(int r)
{
	char msg[512];
	store_errmsg(r, msg, sizeof(msg));
	err("%s", msg);
}

int open_store(int flags, struct cow_store **ret)
{
	int r = cow_store_open(store_dir, flags, ret);
	if (r < 0) {
		store_error(r);
		return 1;
	}
	return 0;
}

void shown_value(char *buf, size_t size, const char *v, size_t len, size_t max)
{
	snprintf(buf, size, "%.*s%s", (int)(len < max ? len : max), v, len > max ? "..." : "");
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
}

bool bad_name(const char *what, const char *name)
{
	if (cow_name_check(name) == 0)
		return false;
	err("invalid %s name '%s': use 1-64 of A-Z a-z 0-9 . _ @ + -, not starting with . or -", what, name);
	return true;
}

bool parse_count(const char *s, unsigned max, unsigned *ret)
{
	/* plain decimal: no sign, blank or leading zero, nothing after it */
	size_t n = strlen(s);
	if (n == 0 || n > 10 || strspn(s, "0123456789") != n || s[0] == '0')
		return false;
	unsigned long long v = strtoull(s, NULL, 10);
	if (v > max)
		return false;
	*ret = (unsigned)v;
	return true;
}

bool want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

/* ---- init ---- */

static int cmd_init(int argc, char **argv)
{
	static const char usage[] = "init [--default-quota SIZE] [--default-quota-files N]\n"
				    "  (the quota every client added gets; see 'quota default')";
	const char *bytes = NULL, *files = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--default-quota") && i + 1 < argc)
			bytes = argv[++i];
		else if (!strcmp(argv[i], "--default-quota-files") && i + 1 < argc)
			files = argv[++i];
		else
			return usage_err(usage);
	}
	if (want_help(argc, argv))
		return usage_err(usage);
	uint64_t check;
	if ((bytes && !quota_parse("--default-quota", bytes, false, &check)) ||
	    (files && !quota_parse("--default-quota-files", files, true, &check)))
		return 2;
	struct cow_store *st;
	int r = cow_store_open(store_dir, COW_STORE_CREATE, &st);
	if (r < 0) {
		store_error(r);
		return 1;
	}
	if ((bytes || files) && quota_default_set(st, bytes, files) < 0) {
		cow_store_close(st);
		return 1;
	}
	cow_store_close(st);
	printf("initialised store '%s'\n", store_dir);
	return 0;
}

/* ---- images ---- */

int progress(void *arg, const char *what, uint64_t done, uint64_t total)
{
	(void)arg;
	if (total)
		fprintf(stderr, "\r%s: %llu/%llu (%d%%)", what, (unsigned long long)done, (unsigned long long)total,
			(int)(done * 100 / total));
	else
		fprintf(stderr, "\r%s: %llu", what, (unsigned long long)done);
	return 0;
}

volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

void catch_interrupts(void)
{
	/* restart interrupted I/O: the operation stops at its next progress
	 * call with -ECANCELED, not in the middle of a syscall with -EINTR */
	struct sigaction sa = {.sa_handler = on_sigint, .sa_flags = SA_RESTART};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int progress_or_cancel(void *arg, const char *what, uint64_t done, uint64_t total)
{
	if (interrupted)
		return 1;
	if (arg)
		progress(arg, what, done, total);
	return 0;
}

void *tty_arg(void)
{
	catch_interrupts();
	return isatty(2) ? (void *)1 : NULL;
}

int long_op(const char *what, int r, const char *subject)
{
	if (isatty(2))
		fputc('\n', stderr);
	if (r == -ECANCELED)
		err("%s of '%s' interrupted; the store is unchanged", what, subject);
	return r;
}

/* Import holds two directory fds per level of the tree it reads, and a
 * legal tree may be thousands of levels deep (deeper than PATH_MAX):
 * allow as many open files as the system lets this process have. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* "oci:DIR[:TAG]" or "docker-archive:FILE[:NAME:TAG]": the kind, the
 * path (a copy in @path) and the reference (NULL: none); -1 for neither. */
static int oci_source(const char *src, char *path, size_t size, const char **ret_ref)
{
	int kind;
	if (!strncmp(src, "oci:", 4))
		kind = COW_OCI_LAYOUT, src += 4;
	else if (!strncmp(src, "docker-archive:", 15))
		kind = COW_OCI_DOCKER_ARCHIVE, src += 15;
	else
		return -1;
	const char *colon = strchr(src, ':');
	size_t n = colon ? (size_t)(colon - src) : strlen(src);
	if (n == 0 || n >= size)
		return -1;
	memcpy(path, src, n);
	path[n] = 0;
	*ret_ref = colon && colon[1] ? colon + 1 : NULL;
	return kind;
}

static int cmd_image_import(int argc, char **argv)
{
	static const char usage[] =
	    "image import NAME SRC [--arch ARCH] [--json]\n"
	    "  SRC: a directory, a disk image (.img[.xz]), an OCI image layout (oci:DIR[:TAG])\n"
	    "  or a docker save archive (docker-archive:FILE[:NAME:TAG]); --arch picks the\n"
	    "  platform of a multi-platform OCI image (e.g. arm64)";
	bool json = false;
	const char *arch = NULL, *pos[2];
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--arch") && i + 1 < argc)
			arch = argv[++i];
		else if (argv[i][0] == '-' || npos == 2)
			return usage_err(usage);
		else
			pos[npos++] = argv[i];
	}
	if (npos != 2 || want_help(argc, argv))
		return usage_err(usage);
	const char *name = pos[0], *src = pos[1];
	if (bad_name("image", name))
		return 1;
	raise_fd_limit();
	char opath[4096];
	const char *ref = NULL;
	int oci = oci_source(src, opath, sizeof(opath), &ref);
	if (arch && oci != COW_OCI_LAYOUT) {
		err("--arch is for OCI image layouts (oci:DIR)");
		return 2;
	}
	if (oci < 0 && (!strncmp(src, "oci:", 4) || !strncmp(src, "docker-archive:", 15))) {
		err("'%s' names no path", src);
		return 2;
	}
	struct stat sb;
	bool disk = oci < 0 && stat(src, &sb) == 0 && S_ISREG(sb.st_mode);
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	struct cow_disk_info di = {0};
	struct cow_oci_info oi = {0};
	int r = oci >= 0 ? cow_image_import_oci(st, name, oci, opath, ref, arch, progress_or_cancel, tty_arg(), &oi)
		: disk	 ? cow_image_import_disk(st, name, src, progress_or_cancel, tty_arg(), &di)
			 : cow_image_import(st, name, src, progress_or_cancel, tty_arg());
	r = long_op("import", r, name);
	const char *why = cow_store_errmsg(st);
	if (r == -EEXIST)
		err("image '%s' already exists", name);
	else if (r < 0 && r != -ECANCELED && why && !strncmp(why, "cannot import", 13))
		err("%s", why); /* names the path it could not read */
	else if (r < 0 && r != -ECANCELED && (disk || oci >= 0) && why && why[0])
		err("cannot import '%s': %s", src, why);
	else if (r == -ENOENT || r == -ENOTDIR)
		err("cannot import '%s': %s", src, strerror(-r));
	else if (r < 0 && r != -ECANCELED) /* long_op said it was interrupted */
		err("cannot import '%s' as '%s': %s", src, name, store_why(st, r));
	else if (r == 0 && json) {
		printf("{\"image\": ");
		json_str(name);
		printf(", \"source\": ");
		json_str(src);
		if (disk)
			printf(", \"disk\": {\"table\": \"%s\", \"compressed\": %s, \"bytes\": %llu, "
			       "\"root_partition\": %d, \"boot_partition\": %d, \"objects\": %llu, "
			       "\"hidden_under_boot\": %u}",
			       di.table, di.compressed ? "true" : "false", (unsigned long long)di.bytes,
			       di.root_partition, di.boot_partition, (unsigned long long)di.objects, di.hidden);
		if (oci >= 0) {
			printf(", \"oci\": {\"manifest\": \"%s\", \"config\": \"%s\", \"architecture\": ", oi.manifest,
			       oi.config);
			json_str(oi.arch);
			printf(", \"layers\": %u, \"shared\": %u, \"objects\": %llu, \"removed\": %llu, "
			       "\"bytes\": %llu}",
			       oi.layers, oi.shared, (unsigned long long)oi.objects, (unsigned long long)oi.removed,
			       (unsigned long long)oi.bytes);
		}
		printf("}\n");
	} else if (r == 0 && disk) {
		printf("imported '%s' as image '%s': root from partition %d", src, name, di.root_partition);
		if (di.boot_partition >= 0)
			printf(", boot partition %d at /boot/firmware", di.boot_partition);
		printf(" (%s table%s)\n", di.table, di.compressed ? ", xz" : "");
		if (di.hidden)
			fprintf(stderr,
				"cowroot: note: the root partition's /boot/firmware held %u entr%s, hidden by the boot "
				"partition as a mount hides them\n",
				di.hidden, di.hidden == 1 ? "y" : "ies");
	} else if (r == 0 && oci >= 0) {
		printf("imported '%s' as image '%s': %u layer%s", src, name, oi.layers, oi.layers == 1 ? "" : "s");
		if (oi.shared)
			printf(", %u shared with images the store holds", oi.shared);
		if (oi.shared < oi.layers)
			printf(", %u read (%llu bytes, %llu entries)", oi.layers - oi.shared,
			       (unsigned long long)oi.bytes, (unsigned long long)oi.objects);
		printf("%s%s\n", oi.arch[0] ? ", " : "", oi.arch);
	} else if (r == 0) {
		printf("imported '%s' as image '%s'\n", src, name);
	}
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}

void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

void fmt_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int print_image(void *arg, const struct cow_image_info *i)
{
	int *count = arg;
	char when[32];
	fmt_time(i->created, when, sizeof(when));
	if (json) {
		printf("%s{\"name\":", (*count)++ ? "," : "");
		json_str(i->name);
		printf(",\"layer\":%llu,\"parent_layer\":%llu,\"created\":\"%s\",\"objects\":%llu,\"bytes\":%llu,"
		       "\"clients\":%u}",
		       (unsigned long long)i->layer, (unsigned long long)i->parent, when,
		       (unsigned long long)i->objects, (unsigned long long)i->bytes, i->clients);
	} else {
		if ((*count)++ == 0)
			printf("%-24s %10s %14s %8s  %s\n", "NAME", "OBJECTS", "BYTES", "CLIENTS", "CREATED");
		printf("%-24s %10llu %14llu %8u  %s\n", i->name, (unsigned long long)i->objects,
		       (unsigned long long)i->bytes, i->clients, when);
	}
	return 0;
}

bool parse_json_flag(int *argc, char **argv)
{
	bool found = false;
	int j = 0;
	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--json"))
			found = true;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	return found;
}

static int cmd_image_list(int argc, char **argv)
{
	static const char usage[] = "image list [--json]";
	json = parse_json_flag(&argc, argv);
	if (argc != 1 || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(COW_STORE_READONLY, &st))
		return 1;
	int count = 0;
	if (json)
		putchar('[');
	int r = cow_image_foreach(st, print_image, &count);
	if (json)
		puts("]");
	cow_store_close(st);
	if (r < 0) {
		err("cannot list images: %s", strerror(-r));
		return 1;
	}
	return 0;
}

/* ---- clients ---- */

/* Check an --ip list; on a bad one say which item and why (1), else 0. */
static int bad_ip(const char *ip)
{
	size_t off, len;
	const char *why;
	if (cow_addrs_check(ip, &off, &len, &why) == 0)
		return 0;
	char item[80];
	shown_value(item, sizeof(item), ip + off, len, 60);
	err("invalid --ip item '%s': %s (use comma-separated IPv4/IPv6 addresses or ADDR/PREFIX networks)", item, why);
	return 1;
}

/* "--OPT VALUE" or "--OPT=VALUE" at argv[*i]: the value at @ret (and *i
 * past it), true; else false. */
static bool opt_value(int argc, char **argv, int *i, const char *opt, const char **ret)
{
	size_t n = strlen(opt);
	if (!strcmp(argv[*i], opt) && *i + 1 < argc) {
		*ret = argv[++*i];
		return true;
	}
	if (!strncmp(argv[*i], opt, n) && argv[*i][n] == '=') {
		*ret = argv[*i] + n + 1;
		return true;
	}
	return false;
}

/* A value of a user's, fit to quote in a message: at most 60 bytes, no
 * control or non-ASCII byte. */
static const char *shown(const char *v, char *buf, size_t size)
{
	size_t len = strlen(v);
	int n = len <= 60 ? (int)len : 60;
	snprintf(buf, size, "%.*s%s", n, v, (size_t)n < len ? "..." : "");
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return buf;
}

/* "none" clears a boot field, as "" does. */
static const char *none_clears(const char *v)
{
	return v && !strcmp(v, "none") ? "" : v;
}

/* Check --serial, --mac and --boot-args values (each may be NULL, "" or
 * "none"); on a bad one say which and why (1), else 0. */
static int bad_boot(const char *serial, const char *mac, const char *boot_args, const char *dtb)
{
	char canon[COW_MAC_LEN + 1], buf[80];
	const char *why;
	if (serial && *serial && cow_serial_parse(serial, canon) < 0) {
		err("invalid --serial '%s': a Pi serial number is 8 hex digits (or u-boot's 16, starting "
		    "with 8 zeros)",
		    shown(serial, buf, sizeof(buf)));
		return 1;
	}
	if (mac && *mac && cow_mac_parse(mac, canon) < 0) {
		err("invalid --mac '%s': a MAC address is six hex pairs separated by ':' or '-', not a "
		    "multicast, broadcast or all-zero one",
		    shown(mac, buf, sizeof(buf)));
		return 1;
	}
	if (boot_args && cow_boot_args_check(boot_args, &why) < 0) {
		err("invalid --boot-args '%s': %s", shown(boot_args, buf, sizeof(buf)), why);
		return 1;
	}
	if (dtb && cow_boot_dtb_check(dtb, &why) < 0) {
		err("invalid --dtb '%s': %s", shown(dtb, buf, sizeof(buf)), why);
		return 1;
	}
	return 0;
}

/* Record the boot fields of client @name, saying what went wrong (1). */
static int set_boot(struct cow_store *st, const char *name, const char *serial, const char *mac, const char *boot_args,
		    const char *dtb)
{
	char holder[COW_ENTITY_NAME_MAX + 1];
	const char *what = "";
	int r = cow_client_set_boot(st, name, serial, mac, boot_args, dtb, holder, &what);
	struct cow_client_info c;
	if (r == -EEXIST && cow_client_get(st, holder, &c) == 0)
		err("client '%s' already has %s %s", holder, what, !strcmp(what, "MAC") ? c.mac : c.serial);
	else if (r == -EEXIST)
		err("client '%s' already has that %s", holder, what);
	else if (r == -ENOENT)
		err("no client '%s' (see 'cowroot client list')", name);
	else if (r < 0)
		err("cannot change client '%s': %s", name, store_why(st, r));
	return r < 0;
}

/* A serial or MAC another client has: say whose (1), else 0. */
static int boot_taken(struct cow_store *st, const char *serial, const char *mac)
{
	struct cow_client_info c;
	if (serial && *serial && cow_client_by_serial(st, serial, &c) == 0) {
		err("client '%s' already has serial %s", c.name, c.serial);
		return 1;
	}
	if (mac && *mac && cow_client_by_mac(st, mac, &c) == 0) {
		err("client '%s' already has MAC %s", c.name, c.mac);
		return 1;
	}
	return 0;
}

static int cmd_client_add(int argc, char **argv)
{
	static const char usage[] = "client add NAME --image IMAGE [--ip ADDR[,ADDR...]] [--serial HEX] [--mac MAC]";
	const char *image = NULL, *name = NULL, *ip = "", *serial = NULL, *mac = NULL;
	for (int i = 1; i < argc; i++) {
		if (opt_value(argc, argv, &i, "--serial", &serial) || opt_value(argc, argv, &i, "--mac", &mac))
			continue;
		if (!strcmp(argv[i], "--image") && i + 1 < argc)
			image = argv[++i];
		else if (!strncmp(argv[i], "--image=", 8))
			image = argv[i] + 8;
		else if (!strcmp(argv[i], "--ip") && i + 1 < argc)
			ip = argv[++i];
		else if (!strncmp(argv[i], "--ip=", 5))
			ip = argv[i] + 5;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage_err(usage);
	}
	if (!name || !image)
		return usage_err(usage);
	if (bad_name("client", name))
		return 1;
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	/* the address list and the boot fields are checked before the client
	 * is made */
	serial = none_clears(serial);
	mac = none_clears(mac);
	if (bad_ip(ip) || bad_boot(serial, mac, NULL, NULL) || boot_taken(st, serial, mac)) {
		cow_store_close(st);
		return 1;
	}
	int r = cow_client_add(st, name, image);
	if (r == 0 && *ip)
		r = cow_client_set_addrs(st, name, ip);
	if (r == 0 && (serial || mac) && set_boot(st, name, serial, mac, NULL, NULL)) {
		/* taken since boot_taken looked: the client goes again */
		cow_client_rm(st, name, 0);
		cow_store_close(st);
		return 1;
	}
	if (r == -EEXIST)
		err("client '%s' already exists", name);
	else if (r == -ENOENT)
		err("no image '%s' (see 'cowroot image list')", image);
	else if (r == -EUSERS)
		err("cannot add client '%s': all %d client ids are taken (remove a client first)", name,
		    COW_CLIENT_ID_MAX);
	else if (r < 0)
		err("cannot add client '%s': %s", name, store_why(st, r));
	else
		printf("added client '%s' on image '%s'\n", name, image);
	cow_store_close(st);
	if (r == 0)
		serve_notify(store_dir);
	return r < 0 ? 1 : 0;
}

static int cmd_client_set(int argc, char **argv)
{
	static const char usage[] =
	    "client set NAME [--ip ADDR[,ADDR...]] [--serial HEX] [--mac MAC] [--boot-args \"...\"] [--dtb PATH]\n"
	    "  [--on-boot reset|keep] [--quota SIZE|none] [--quota-files N|none]\n"
	    "  (--serial, --mac, --boot-args, --dtb: 'none' clears; --dtb: a device tree in the client's root\n"
	    "  for its u-boot script to load instead of the firmware's; --on-boot reset: every boot starts\n"
	    "  from the image, its layer reset at the boot's first TFTP request; --quota: the most its layer\n"
	    "  may hold, 500M, 10G...; --quota-files: the most objects it may record)";
	const char *name = NULL, *ip = NULL, *serial = NULL, *mac = NULL, *boot_args = NULL, *dtb = NULL,
		   *on_boot = NULL, *quota = NULL, *quota_files = NULL;
	for (int i = 1; i < argc; i++) {
		if (opt_value(argc, argv, &i, "--serial", &serial) || opt_value(argc, argv, &i, "--mac", &mac) ||
		    opt_value(argc, argv, &i, "--boot-args", &boot_args) || opt_value(argc, argv, &i, "--dtb", &dtb) ||
		    opt_value(argc, argv, &i, "--on-boot", &on_boot) || opt_value(argc, argv, &i, "--quota", &quota) ||
		    opt_value(argc, argv, &i, "--quota-files", &quota_files))
			continue;
		if (!strcmp(argv[i], "--ip") && i + 1 < argc)
			ip = argv[++i];
		else if (!strncmp(argv[i], "--ip=", 5))
			ip = argv[i] + 5;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage_err(usage);
	}
	bool boot = serial || mac || boot_args || dtb;
	if (!name || (!ip && !boot && !on_boot && !quota && !quota_files) || want_help(argc, argv))
		return usage_err(usage);
	uint64_t check;
	if ((quota && !quota_parse("--quota", quota, false, &check)) ||
	    (quota_files && !quota_parse("--quota-files", quota_files, true, &check)))
		return 2;
	if (on_boot && strcmp(on_boot, "reset") && strcmp(on_boot, "keep")) {
		err("invalid --on-boot '%s': reset or keep", on_boot);
		return 2;
	}
	serial = none_clears(serial);
	mac = none_clears(mac);
	boot_args = none_clears(boot_args);
	dtb = none_clears(dtb);
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	if ((ip && bad_ip(ip)) || bad_boot(serial, mac, boot_args, dtb)) {
		cow_store_close(st);
		return 1;
	}
	int r = 0;
	if (boot && set_boot(st, name, serial, mac, boot_args, dtb))
		r = -1; /* said why */
	if (r == 0 && on_boot) {
		r = cow_client_set_on_boot(st, name, !strcmp(on_boot, "reset"));
		if (r == -ENOENT)
			err("no client '%s' (see 'cowroot client list')", name);
		else if (r < 0)
			err("cannot change client '%s': %s", name, store_why(st, r));
		else
			printf("client '%s' %s\n", name,
			       strcmp(on_boot, "reset") ? "keeps its layer across boots"
							: "starts every boot from its image (its layer is reset when a "
							  "boot begins)");
	}
	if (r == 0 && (quota || quota_files))
		r = quota_set(st, name, quota, quota_files);
	if (r == 0 && ip) {
		r = cow_client_set_addrs(st, name, ip);
		if (r == -ENOENT)
			err("no client '%s' (see 'cowroot client list')", name);
		else if (r < 0)
			err("cannot change client '%s': %s", name, store_why(st, r));
		else
			printf("client '%s' may connect from %s\n", name, *ip ? ip : "nowhere");
	}
	struct cow_client_info c;
	if (r == 0 && boot && cow_client_get(st, name, &c) == 0)
		printf("client '%s' boots as serial %s, MAC %s, with boot args '%s', device tree %s\n", name,
		       *c.serial ? c.serial : "(none)", *c.mac ? c.mac : "(none)", c.boot_args,
		       *c.boot_dtb ? c.boot_dtb : "(the firmware's)");
	cow_store_close(st);
	/* the serial, MAC and boot args are read by the boot servers at each
	 * request: only a change of the addresses needs the server to reload */
	if (r == 0 && ip)
		serve_notify(store_dir);
	return r < 0 ? 1 : 0;
}

/* A JSON string, or null for "". */
static void json_str_or_null(const char *s)
{
	if (*s)
		json_str(s);
	else
		fputs("null", stdout);
}

/* What the running server says of a client (its serve.sock) */
struct live_client {
	char name[COW_ENTITY_NAME_MAX + 1];
	int online;
	long long last_nfs, began;
	char addr[64], kernel[256], version[128];
	bool have_usage;
	unsigned long long bytes, files; /* what its layer holds, as the server counts it */
};

struct client_listing {
	int count;
	struct cow_store *st;
	bool server; /* a server answered */
	struct live_client *live;
	size_t nlive;
};

/* Ask the server of the store who is online: 0 (with l->server set when
 * one answered), or -errno of the request. */
static int live_status(struct client_listing *l)
{
	FILE *f;
	int rq = unix_request(store_dir, "serve.sock", "status\n", 10, &f);
	if (rq < 0)
		return rq == -ENOENT || rq == -ECONNREFUSED ? 0 : rq; /* no server */
	char line[1024];
	size_t want = 0;
	int r = 0;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "0 %zu", &want) != 1 || want > 100000)
		r = -EPROTO;
	if (r == 0 && want && !(l->live = calloc(want, sizeof(*l->live))))
		r = -ENOMEM;
	while (r == 0 && l->nlive < want && fgets(line, sizeof(line), f)) {
		struct live_client *v = &l->live[l->nlive];
		char *field[9], *save = NULL, *p = line;
		int k = 0;
		line[strcspn(line, "\n")] = 0;
		while (k < 9 && (field[k] = strtok_r(p, "\t", &save)))
			k++, p = NULL;
		if (k < 7 || strlen(field[0]) > COW_ENTITY_NAME_MAX)
			continue;
		if (k == 9) {
			v->have_usage = true;
			v->bytes = strtoull(field[7], NULL, 10);
			v->files = strtoull(field[8], NULL, 10);
		}
		strcpy(v->name, field[0]);
		v->online = atoi(field[1]);
		v->last_nfs = atoll(field[2]);
		v->began = atoll(field[3]);
		snprintf(v->addr, sizeof(v->addr), "%s", strcmp(field[4], "-") ? field[4] : "");
		snprintf(v->kernel, sizeof(v->kernel), "%s", strcmp(field[5], "-") ? field[5] : "");
		snprintf(v->version, sizeof(v->version), "%s", strcmp(field[6], "-") ? field[6] : "");
		l->nlive++;
	}
	fclose(f);
	l->server = r == 0;
	return r;
}

static const struct live_client *live_of(const struct client_listing *l, const char *name)
{
	for (size_t i = 0; i < l->nlive; i++)
		if (!strcmp(l->live[i].name, name))
			return &l->live[i];
	return NULL;
}

static void json_time_or_null(long long t)
{
	char buf[32];
	if (t <= 0) {
		fputs("null", stdout);
		return;
	}
	fmt_time(t, buf, sizeof(buf));
	printf("\"%s\"", buf);
}

/* What @c's layer holds against its quota: as the server counts it when
 * it serves the client, else as the store has it. */
static int client_usage(const struct client_listing *l, const struct cow_client_info *c, const struct live_client *lv,
			struct cow_usage *ret)
{
	if (lv && lv->have_usage) {
		ret->bytes = lv->bytes;
		ret->files = lv->files;
		ret->max_bytes = c->quota_bytes;
		ret->max_files = c->quota_files;
		return 0;
	}
	return cow_client_usage(l->st, c->name, ret);
}

static int print_client(void *arg, const struct cow_client_info *c)
{
	struct client_listing *l = arg;
	int *count = &l->count;
	char when[32];
	fmt_time(c->created, when, sizeof(when));
	struct cow_layer_stats ls = {0};
	bool have_stats = cow_layer_stats(l->st, c->layer, &ls) == 0;
	const struct live_client *lv = live_of(l, c->name);
	if (json) {
		printf("%s{\"name\":", (*count)++ ? "," : "");
		json_str(c->name);
		printf(",\"image\":");
		json_str(c->image);
		printf(",\"layer\":%llu,\"created\":\"%s\",\"changed_objects\":%llu", (unsigned long long)c->layer,
		       when, (unsigned long long)c->objects);
		printf(",\"serial\":");
		json_str_or_null(c->serial);
		printf(",\"mac\":");
		json_str_or_null(c->mac);
		printf(",\"boot_args\":");
		json_str_or_null(c->boot_args);
		printf(",\"dtb\":");
		json_str_or_null(c->boot_dtb);
		printf(",\"on_boot\":\"%s\"", c->reset_on_boot ? "reset" : "keep");
		if (have_stats)
			printf(",\"layer_bytes\":%llu,\"layer_disk_bytes\":%llu", (unsigned long long)ls.bytes,
			       (unsigned long long)ls.disk_bytes);
		struct cow_usage u;
		if (client_usage(l, c, lv, &u) == 0)
			printf(",\"quota\":{\"bytes\":%llu,\"files\":%llu,\"used_bytes\":%llu,\"used_files\":%llu}",
			       (unsigned long long)c->quota_bytes, (unsigned long long)c->quota_files,
			       (unsigned long long)u.bytes, (unsigned long long)u.files);
		else
			printf(",\"quota\":null");
		printf(",\"served\":%s,\"online\":", lv ? "true" : l->server ? "false" : "null");
		fputs(lv ? (lv->online ? "true" : "false") : "null", stdout);
		printf(",\"last_nfs\":");
		json_time_or_null(lv ? lv->last_nfs : 0);
		printf(",\"last_boot\":");
		json_time_or_null(lv ? lv->began : 0);
		printf(",\"boot_address\":");
		json_str_or_null(lv ? lv->addr : "");
		printf(",\"booted_kernel\":");
		json_str_or_null(lv ? lv->kernel : "");
		printf(",\"kernel_version\":");
		json_str_or_null(lv ? lv->version : "");
		putchar('}');
	} else {
		if ((*count)++ == 0)
			printf("%-24s %-24s %10s  %-20s  %-8s  %-17s  %-7s  %-22s %-22s %s\n", "NAME", "IMAGE",
			       "CHANGED", "CREATED", "SERIAL", "MAC", "ON BOOT", "LAYER/QUOTA", "OBJECTS/QUOTA",
			       "BOOT ARGS");
		struct cow_usage u;
		char ub[48] = "-", uf[48] = "-";
		if (client_usage(l, c, lv, &u) == 0) {
			quota_usage_fmt(u.bytes, u.max_bytes, ub, sizeof(ub));
			if (u.max_files)
				snprintf(uf, sizeof(uf), "%llu/%llu (%d%%)", (unsigned long long)u.files,
					 (unsigned long long)u.max_files, (int)(u.files * 100 / u.max_files));
			else
				snprintf(uf, sizeof(uf), "%llu", (unsigned long long)u.files);
		}
		printf("%-24s %-24s %10llu  %-20s  %-8s  %-17s  %-7s  %-22s %-22s %s\n", c->name, c->image,
		       (unsigned long long)c->objects, when, *c->serial ? c->serial : "-", *c->mac ? c->mac : "-",
		       c->reset_on_boot ? "reset" : "keep", ub, uf, c->boot_args);
	}
	return 0;
}

struct client_array {
	struct cow_client_info *v;
	size_t n, cap;
};

static int collect_client(void *arg, const struct cow_client_info *c)
{
	struct client_array *a = arg;
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 32;
		void *p = realloc(a->v, cap * sizeof(*a->v));
		if (!p)
			return -ENOMEM;
		a->v = p;
		a->cap = cap;
	}
	a->v[a->n++] = *c;
	return 0;
}

/* The second table of `client list`: what the server says of @c */
static int print_live(void *arg, const struct cow_client_info *c)
{
	struct client_listing *l = arg;
	const struct live_client *lv = live_of(l, c->name);
	char nfs[32] = "-", boot[32] = "-", layer[32] = "-";
	struct cow_layer_stats ls;
	if (lv && lv->last_nfs > 0)
		fmt_time(lv->last_nfs, nfs, sizeof(nfs));
	if (lv && lv->began > 0)
		fmt_time(lv->began, boot, sizeof(boot));
	if (cow_layer_stats(l->st, c->layer, &ls) == 0)
		snprintf(layer, sizeof(layer), "%llu", (unsigned long long)ls.bytes);
	char booted[400] = "-";
	if (lv && lv->kernel[0])
		snprintf(booted, sizeof(booted), "%s%s%s%s", lv->kernel, lv->version[0] ? " (" : "", lv->version,
			 lv->version[0] ? ")" : "");
	printf("%-24s %-7s %-20s %-20s %-16s %12s  %s\n", c->name,
	       !lv	    ? "unserved"
	       : lv->online ? "yes"
			    : "no",
	       nfs, boot, lv && lv->addr[0] ? lv->addr : "-", layer, booted);
	return 0;
}

static int cmd_client_list(int argc, char **argv)
{
	static const char usage[] = "client list [--json]";
	json = parse_json_flag(&argc, argv);
	if (argc != 1 || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(COW_STORE_READONLY, &st))
		return 1;
	struct client_listing l = {.st = st};
	int lr = live_status(&l);
	if (lr < 0)
		err("warning: the server did not say who is online: %s", strerror(-lr));
	/* the clients first: the printing asks the store more (layer sizes),
	 * which it cannot while it walks its clients */
	struct client_array a = {0};
	int r = cow_client_foreach(st, collect_client, &a);
	if (json)
		putchar('[');
	for (size_t i = 0; r == 0 && i < a.n; i++)
		print_client(&l, &a.v[i]);
	if (json)
		puts("]");
	if (!json && r == 0 && a.n) {
		/* what the running server says: online, last boot, what it booted */
		if (!l.server) {
			printf("\n(no server runs: who is online and what each booted is not known)\n");
		} else {
			printf("\n%-24s %-7s %-20s %-20s %-16s %12s  %s\n", "NAME", "ONLINE", "LAST NFS CALL",
			       "LAST BOOT", "FROM", "LAYER", "BOOTED");
			for (size_t i = 0; i < a.n; i++)
				print_live(&l, &a.v[i]);
		}
	}
	cow_store_close(st);
	free(a.v);
	free(l.live);
	if (r < 0) {
		err("cannot list clients: %s", strerror(-r));
		return 1;
	}
	return 0;
}

/* ---- mount ---- */

static void tell(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tell(int fd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fd < 0) {
		err("%s", msg);
		return;
	}
	if (write(fd, msg, strlen(msg)) < 0) {
		/* parent gone */
	}
	close(fd);
}

static int mount_at(const char *abs, const char *client, const char *image, const char *options, bool fg, bool debug);

static int cmd_mount(int argc, char **argv)
{
	static const char usage[] = "mount CLIENT MOUNTPOINT [-f] [-d] [-o OPTIONS]\n"
				    "       cowroot [--store DIR] mount --image IMAGE MOUNTPOINT [-f] [-o OPTIONS]";
	const char *image = NULL, *client = NULL, *mnt = NULL, *options = NULL;
	bool fg = false, debug = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f"))
			fg = true;
		else if (!strcmp(argv[i], "-d"))
			debug = fg = true;
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			options = argv[++i];
		else if (!strcmp(argv[i], "--image") && i + 1 < argc)
			image = argv[++i];
		else if (argv[i][0] == '-')
			return usage_err(usage);
		else if (!client && !image)
			client = argv[i];
		else if (!mnt)
			mnt = argv[i];
		else
			return usage_err(usage);
	}
	if (!mnt || (!client && !image) || want_help(argc, argv))
		return usage_err(usage);
	struct stat sb;
	if (stat(mnt, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		err("mount point '%s' is not a directory", mnt);
		return 1;
	}
	char *abs = realpath(mnt, NULL);
	if (!abs) {
		err("cannot resolve '%s': %s", mnt, strerror(errno));
		return 1;
	}
	int rc = mount_at(abs, client, image, options, fg, debug);
	free(abs);
	return rc;
}

int mount_view(const char *abs, const char *client)
{
	return mount_at(abs, client, NULL, NULL, false, false);
}

static int mount_at(const char *abs, const char *client, const char *image, const char *options, bool fg, bool debug)
{

	int ready = -1;
	if (!fg) {
		/* The daemon reports back once mounted, so that errors reach
		 * this terminal and a zero exit means "mounted". */
		int p[2];
		if (pipe(p) < 0) {
			err("pipe: %s", strerror(errno));
			return 1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			err("fork: %s", strerror(errno));
			return 1;
		}
		if (pid > 0) {
			close(p[1]);
			char msg[512];
			ssize_t n = 0, k;
			while ((k = read(p[0], msg + n, sizeof(msg) - 1 - (size_t)n)) > 0)
				n += k;
			msg[n < 0 ? 0 : n] = 0;
			if (n > 0) {
				err("%s", msg);
				waitpid(pid, NULL, 0);
				return 1;
			}
			if (k < 0 || waitpid(pid, NULL, WNOHANG) == pid) {
				err("the mount daemon exited before mounting");
				return 1;
			}
			return 0;
		}
		close(p[0]);
		setsid();
		ready = p[1];
	}

	struct cow_store *st;
	int r = cow_store_open(store_dir, 0, &st);
	if (r < 0) {
		char msg[512];
		store_errmsg(r, msg, sizeof(msg));
		tell(ready, "%s", msg);
		return 1;
	}
	struct cow_view *v;
	r = cow_view_open(st, client, image, 0, &v);
	if (r < 0) {
		if (r == -ENOENT && client)
			tell(ready, "no client '%s' (see 'cowroot client list')", client);
		else if (r == -ENOENT)
			tell(ready, "no image '%s' (see 'cowroot image list')", image);
		else if (r == -EBUSY)
			tell(ready, "%s", busy_message(st, client, "mount it here"));
		else
			tell(ready, "cannot open the view of '%s': %s", client ? client : image, strerror(-r));
		cow_store_close(st);
		return 1;
	}
	char fsname[256], holder[PATH_MAX + 16];
	snprintf(fsname, sizeof(fsname), "cowroot:%s%s", client ? "" : "image:", client ? client : image);
	snprintf(holder, sizeof(holder), "mount %s", abs);
	cow_view_set_holder(v, holder);
	struct cowfuse_opts o = {
	    .mountpoint = abs, .fsname = fsname, .options = options, .debug = debug, .ready_fd = ready};
	r = cowfuse_main(v, &o);
	int c = cow_view_close(v);
	cow_store_close(st);
	if (c < 0 && ready < 0)
		err("writing back metadata failed: %s", strerror(-c));
	return r < 0 || c < 0 ? 1 : 0;
}

/* ---- fsck ---- */

static void fsck_line(void *arg, const char *line)
{
	(void)arg;
	printf("%s\n", line);
}

static int cmd_fsck(int argc, char **argv)
{
	static const char usage[] = "fsck [--repair]";
	bool repair = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--repair"))
			repair = true;
		else
			return usage_err(usage);
	}
	struct cow_store *st;
	if (open_store(repair ? COW_STORE_REPAIR : COW_STORE_READONLY, &st))
		return 1;
	struct cow_fsck_report rep;
	int r = cow_fsck(st, repair, fsck_line, NULL, &rep);
	cow_store_close(st);
	if (r < 0) {
		err("fsck failed: %s", store_why(NULL, r));
		return 1;
	}
	uint64_t problems = rep.orphan_files + rep.missing_data + rep.dangling + rep.unused_layers +
			    rep.unknown_layers + rep.tree_problems + rep.leftover_tmp + !rep.db_ok + rep.db_marked;
	if (problems == 0 && !rep.db_repaired) {
		printf("store '%s' is consistent; nothing changed", store_dir);
		if (rep.dead_layers)
			printf(" (%llu layer(s) wait for 'cowroot gc')", (unsigned long long)rep.dead_layers);
		putchar('\n');
		return 0;
	}
	printf("%llu problem(s): %llu orphan data file(s), %llu missing data file(s), %llu dangling record(s), "
	       "%llu unused layer(s), %llu unknown layer(s), %llu in trees, %llu leftover import dir(s)%s%s; "
	       "%llu repaired\n",
	       (unsigned long long)problems, (unsigned long long)rep.orphan_files, (unsigned long long)rep.missing_data,
	       (unsigned long long)rep.dangling, (unsigned long long)rep.unused_layers,
	       (unsigned long long)rep.unknown_layers, (unsigned long long)rep.tree_problems,
	       (unsigned long long)rep.leftover_tmp, rep.db_ok ? "" : ", database damaged",
	       rep.db_repaired ? ", database indexes rebuilt" : "", (unsigned long long)rep.repaired);
	/* what repair cannot do, it has said (fsck_line): no advice to repeat */
	if (rep.tree_problems)
		printf("problems in trees are not repaired: load the image again from a bundle, or re-import it\n");
	if (!repair)
		printf("run 'cowroot --store %s fsck --repair' to repair what can be repaired\n", store_dir);
	else if (rep.db_unrepairable)
		printf(
		    "the database cannot be repaired here: writing to the store stays refused until it is restored\n");
	return 1;
}

/* ---- version ---- */

static int print_version(void)
{
	printf("cowroot %s\n", COW_VERSION);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_err("version");
	return print_version();
}

/* ---- dispatch ---- */

struct command {
	const char *noun, *verb;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
    {"init", NULL, cmd_init, "init                              create a new store"},
    {"image", "import", cmd_image_import,
     "image import NAME SRC [--json]    import a rootfs tree, a disk image (.img[.xz]) or an OCI image\n"
     "                                    (oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG]) as an image"},
    {"image", "list", cmd_image_list, "image list [--json]               list images"},
    {"image", "show", cmd_image_show, "image show NAME [--json]          details of one image and who uses it"},
    {"image", "rm", cmd_image_rm, "image rm NAME                     remove an image nothing depends on"},
    {"image", "flatten", cmd_image_flatten, "image flatten NAME NEWNAME        materialise an image chain as one base"},
    {"image", "export", cmd_image_export, "image export NAME FILE            write an image as a compressed bundle"},
    {"image", "load", cmd_image_load, "image load FILE [NAME]            load a bundle as an image"},
    {"image", "check", cmd_image_check,
     "image check NAME [--json] [--fix NEWNAME]   what would break a network boot of the image (--fix: "
     "fixed, as image NEWNAME)"},
    {"client", "add", cmd_client_add,
     "client add NAME --image IMAGE [--ip ADDR,...] [--serial HEX] [--mac MAC]   add a client with an empty layer"},
    {"client", "set", cmd_client_set,
     "client set NAME [--ip ADDR,...] [--serial HEX] [--mac MAC] [--boot-args \"...\"] [--on-boot reset|keep] "
     "[--quota SIZE] [--quota-files N]   change how a client connects, boots and what it may hold"},
    {"client", "list", cmd_client_list, "client list [--json]              list clients"},
    {"client", "reset", cmd_client_reset,
     "client reset NAME                 drop the client's changes: back to its image"},
    {"client", "rm", cmd_client_rm, "client rm NAME                    remove a client and its layer"},
    {"client", "diff", cmd_client_diff, "client diff NAME [--json]         what the client changed"},
    {"client", "snapshot", cmd_client_snapshot,
     "client snapshot NAME IMAGE        freeze the client's changes as a new image"},
    {"client", "shell", cmd_client_shell,
     "client shell NAME [--chroot] [-- COMMAND...]   a shell or command inside a client's root (its changes stay "
     "in its layer)"},
    {"client", "rebase", cmd_client_rebase,
     "client rebase NAME --onto IMAGE   move the client's layer onto a newer image"},
    {"mount", NULL, cmd_mount,
     "mount CLIENT MOUNTPOINT [-f] [-o OPTS]   mount a client's view (--image IMG: read-only)"},
    {"serve", NULL, cmd_serve, "serve [--foreground] [--port N]   serve every client over NFS (nfs-ganesha)"},
    {"netboot", "sdcard", cmd_netboot_sdcard,
     "netboot sdcard DIR [--server ADDR] [--image NAME] [--arch arm64|arm] [--force]   write a Pi's SD card "
     "(u-boot flow)"},
    {"netboot", "dnsmasq", cmd_netboot_dnsmasq,
     "netboot dnsmasq [--proxy] [--interface IF] [--server ADDR] [--range START,END | --subnet CIDR]   print "
     "the fleet's DHCP configuration"},
    {"tftp", "serve", cmd_tftp_serve,
     "tftp serve (--root DIR | --client NAME | --boot) [--port N]   serve files read-only over TFTP"},
    {"quota", "default", cmd_quota_default,
     "quota default [--quota SIZE|none] [--quota-files N|none]   the quota new clients get"},
    {"fsck", NULL, cmd_fsck, "fsck [--repair]                   check (and repair) the store"},
    {"gc", NULL, cmd_gc, "gc                                reclaim space of reset/removed clients and images"},
    {"stats", NULL, cmd_stats, "stats [--json]                    space and change counts per client and image"},
    {"version", NULL, cmd_version, "version                           print cowroot's version (also --version)"},
};

static int help(FILE *f)
{
	fprintf(f, "usage: cowroot [--store DIR] COMMAND ...\n"
		   "       cowroot --version\n\n"
		   "The store defaults to $COWROOT_STORE, else " DEFAULT_STORE ".\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].help);
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	int i = 1;
	store_dir = getenv("COWROOT_STORE");
	if (!store_dir || !*store_dir)
		store_dir = DEFAULT_STORE;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			store_dir = argv[++i];
		else if (!strncmp(argv[i], "--store=", 8))
			store_dir = argv[i] + 8;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return help(stdout);
		else if (!strcmp(argv[i], "--version"))
			return print_version();
		else
			return help(stderr);
	}
	if (i >= argc)
		return help(stderr);
	const char *noun = argv[i], *verb = i + 1 < argc ? argv[i + 1] : NULL;
	bool known_noun = false;
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		const struct command *cmd = &commands[c];
		if (strcmp(cmd->noun, noun))
			continue;
		known_noun = true;
		if (!cmd->verb)
			return cmd->fn(argc - i, argv + i);
		if (verb && !strcmp(cmd->verb, verb))
			return cmd->fn(argc - i - 1, argv + i + 1);
	}
	if (known_noun) {
		if (!strcmp(noun, "netboot") && verb && strcmp(verb, "--help") && strcmp(verb, "-h"))
			netboot_gone();
		fprintf(stderr, "usage:\n");
		for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
			if (!strcmp(commands[c].noun, noun))
				fprintf(stderr, "  cowroot [--store DIR] %s\n", commands[c].help);
		return 2;
	}
	err("unknown command '%s'", noun);
	return help(stderr);
}
