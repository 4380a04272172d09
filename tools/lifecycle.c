/* SPDX-License-Identifier: MIT */
/*
 * cowroot lifecycle commands: client reset/rm/diff/snapshot/rebase, image
 * show/rm/flatten/export/load, gc and stats.
 *
 * A command that changes a client whose layer a mount or server holds
 * either coordinates with it or refuses, naming what to stop: a running
 * `cowroot serve` resets a client itself (asked over STORE/run/control.sock)
 * and reloads its exports on SIGHUP (STORE/run/serve.pid); a FUSE mount
 * must be unmounted first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

/* ---- coordination with running mounts and servers ---- */

bool client_served(const struct cow_holder *h)
{
	return !strncmp(h->what, "serve", 5);
}

const char *busy_message(struct cow_store *st, const char *name, const char *to_do)
{
	static char msg[512];
	struct cow_holder h;
	int r = cow_client_holder(st, name, &h);
	if (r > 0 && !strncmp(h.what, "mount ", 6))
		snprintf(msg, sizeof(msg),
			 "client '%s' is mounted at '%s' (pid %ld); unmount it first "
			 "('fusermount3 -u %s'), then %s",
			 name, h.what + 6, (long)h.pid, h.what + 6, to_do);
	else if (r > 0 && client_served(&h))
		snprintf(msg, sizeof(msg),
			 "client '%s' is being served over NFS (cowroot serve, pid %ld); stop "
			 "serving it first, then %s",
			 name, (long)h.pid, to_do);
	else if (r > 0)
		snprintf(msg, sizeof(msg), "client '%s' is in use by process %ld (%s); stop it first, then %s", name,
			 (long)h.pid, h.what, to_do);
	else
		snprintf(msg, sizeof(msg), "client '%s' is in use by another process; stop it first, then %s", name,
			 to_do);
	return msg;
}

/* Send one request line to the running server; its reply is "0" or
 * "-ERRNO message".  Returns 0 or -errno (with @why set). */
int control_request(const char *request, char *why, size_t n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run/control.sock", store_dir) >=
	    sizeof(sa.sun_path)) {
		snprintf(why, n, "the store path is too long for its control socket");
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, n, "socket: %s", strerror(errno));
		return -errno;
	}
	struct timeval tv = {.tv_sec = 60};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int r = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(why, n, "cannot reach the server at '%s': %s", sa.sun_path, strerror(errno));
		goto out;
	}
	size_t len = strlen(request);
	if (write(fd, request, len) != (ssize_t)len) {
		r = -EIO;
		snprintf(why, n, "the server closed the connection");
		goto out;
	}
	char reply[512];
	size_t got = 0;
	ssize_t k;
	while (got < sizeof(reply) - 1 && (k = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0) {
		got += (size_t)k;
		if (memchr(reply, '\n', got))
			break;
	}
	reply[got] = 0;
	reply[strcspn(reply, "\n")] = 0;
	if (got == 0) {
		r = -EIO;
		snprintf(why, n, "no answer from the server");
		goto out;
	}
	r = atoi(reply);
	if (r > 0)
		r = -r;
	const char *sp = strchr(reply, ' ');
	snprintf(why, n, "%s", sp ? sp + 1 : strerror(-r));
out:
	close(fd);
	return r;
}

static int unknown_client(int r, const char *name, const char *what)
{
	if (r == -ENOENT)
		err("no client '%s' (see 'cowroot client list')", name);
	else
		err("cannot %s client '%s': %s", what, name, strerror(-r));
	return 1;
}

/* Is client @name's layer held by a running server (not a mount)? */
static bool held_by_server(struct cow_store *st, const char *name)
{
	struct cow_holder h;
	return cow_client_holder(st, name, &h) > 0 && client_served(&h);
}

/* ---- clients ---- */

int cmd_client_reset(int argc, char **argv)
{
	static const char usage[] = "client reset NAME";
	if (argc != 2 || want_help(argc, argv))
		return usage_err(usage);
	const char *name = argv[1];
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	struct cow_client_info ci;
	int r = cow_client_reset(st, name);
	if (r == -EBUSY) {
		if (held_by_server(st, name)) {
			/* the server holds the layer: it resets the live view */
			char req[128], why[256];
			snprintf(req, sizeof(req), "reset %s\n", name);
			r = control_request(req, why, sizeof(why));
			if (r < 0) {
				err("client '%s' is being served and the server could not reset it: %s", name, why);
				cow_store_close(st);
				return 1;
			}
		} else {
			err("%s", busy_message(st, name, "reset it"));
			cow_store_close(st);
			return 1;
		}
	}
	if (r < 0) {
		cow_store_close(st);
		return unknown_client(r, name, "reset");
	}
	if (cow_client_get(st, name, &ci) == 0)
		printf("client '%s' reset: it sees image '%s' again ('cowroot gc' reclaims the old layer)\n", name,
		       ci.image);
	cow_store_close(st);
	return 0;
}

int cmd_client_rm(int argc, char **argv)
{
	static const char usage[] = "client rm NAME";
	if (argc != 2 || want_help(argc, argv))
		return usage_err(usage);
	const char *name = argv[1];
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	int r = cow_client_rm(st, name, 0);
	bool live = false;
	if (r == -EBUSY) {
		if (held_by_server(st, name)) {
			/* the server drops the export when it rereads the store */
			r = cow_client_rm(st, name, COW_LIVE);
			live = true;
		} else {
			err("%s", busy_message(st, name, "remove it"));
			cow_store_close(st);
			return 1;
		}
	}
	cow_store_close(st);
	if (r < 0)
		return unknown_client(r, name, "remove");
	if (live)
		serve_notify(store_dir);
	printf("removed client '%s' ('cowroot gc' reclaims its layer)\n", name);
	return 0;
}

struct diff_out {
	int count;
};

static int print_change(void *arg, const char *path, enum cow_change change, uint32_t mode)
{
	struct diff_out *d = arg;
	static const char *const types[16] = {[S_IFREG >> 12] = "file",	    [S_IFDIR >> 12] = "dir",
					      [S_IFLNK >> 12] = "symlink",  [S_IFCHR >> 12] = "chardev",
					      [S_IFBLK >> 12] = "blockdev", [S_IFIFO >> 12] = "fifo",
					      [S_IFSOCK >> 12] = "socket"};
	const char *type = types[(mode & S_IFMT) >> 12] ? types[(mode & S_IFMT) >> 12] : "unknown";
	if (json) {
		printf("%s\n {\"path\":", d->count ? "," : "");
		json_str(path);
		printf(",\"change\":\"%s\",\"type\":\"%s\"}", cow_change_name(change), type);
	} else {
		printf("%-9s %s%s\n", cow_change_name(change), path, S_ISDIR(mode) && strcmp(path, "/") ? "/" : "");
	}
	d->count++;
	return 0;
}

int cmd_client_diff(int argc, char **argv)
{
	static const char usage[] = "client diff NAME [--json]";
	json = parse_json_flag(&argc, argv);
	if (argc != 2 || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(COW_STORE_READONLY, &st))
		return 1;
	struct diff_out d = {0};
	if (json)
		putchar('[');
	int r = cow_client_diff(st, argv[1], print_change, &d);
	if (json)
		puts(r == 0 ? "\n]" : "]");
	cow_store_close(st);
	if (r < 0)
		return unknown_client(r, argv[1], "diff");
	if (!json && d.count == 0)
		printf("client '%s' has no changes\n", argv[1]);
	return 0;
}

int cmd_client_snapshot(int argc, char **argv)
{
	static const char usage[] = "client snapshot NAME IMAGE";
	if (argc != 3 || want_help(argc, argv))
		return usage_err(usage);
	const char *name = argv[1], *image = argv[2];
	if (bad_name("image", image))
		return 1;
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	int r = cow_client_snapshot(st, name, image);
	if (r == -EBUSY)
		err("%s", busy_message(st, name, "snapshot it"));
	else if (r == -EEXIST)
		err("image '%s' already exists", image);
	else if (r < 0)
		unknown_client(r, name, "snapshot");
	else
		printf("client '%s' frozen as image '%s'; the client now runs on '%s' with no changes\n", name, image,
		       image);
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}

static int print_conflict(void *arg, const char *path, const char *why)
{
	int *count = arg;
	if (json) {
		printf("%s\n {\"path\":", (*count) ? "," : "");
		json_str(path);
		printf(",\"conflict\":");
		json_str(why);
		putchar('}');
	} else {
		printf("conflict  %s: %s\n", path, why);
	}
	(*count)++;
	return 0;
}

int cmd_client_rebase(int argc, char **argv)
{
	static const char usage[] = "client rebase NAME --onto IMAGE [--json]";
	json = parse_json_flag(&argc, argv);
	const char *name = NULL, *image = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--onto") && i + 1 < argc)
			image = argv[++i];
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage_err(usage);
	}
	if (!name || !image || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	struct cow_client_info ci;
	int r = cow_client_get(st, name, &ci);
	if (r < 0) {
		cow_store_close(st);
		return unknown_client(r, name, "rebase");
	}
	struct cow_image_info ii;
	if (cow_image_get(st, image, &ii) < 0) {
		err("no image '%s' (see 'cowroot image list')", image);
		cow_store_close(st);
		return 1;
	}
	int conflicts = 0;
	if (json)
		printf("{\"client\":\"%s\",\"onto\":\"%s\",\"conflicts\":[", name, image);
	r = cow_client_rebase(st, name, image, print_conflict, &conflicts);
	if (json)
		printf("%s],\"ok\":%s}\n", conflicts ? "\n" : "", r == 0 ? "true" : "false");
	if (r == -EBUSY)
		err("%s", busy_message(st, name, "rebase it"));
	else if (r == -EXDEV)
		err("image '%s' is not built on '%s', the image of client '%s': rebase moves a layer onto a "
		    "snapshot made from its image (or from one built on it)",
		    image, ci.image, name);
	else if (r < 0)
		unknown_client(r, name, "rebase");
	else if (!json)
		printf("client '%s' moved from '%s' onto '%s': %d conflict(s)%s\n", name, ci.image, image, conflicts,
		       conflicts ? " (the client's versions are kept; the image's stay in the image)" : "");
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}

/* ---- images ---- */

struct users {
	int count;
	char text[1024];
};

static int list_user(void *arg, const char *kind, const char *name)
{
	struct users *u = arg;
	size_t len = strlen(u->text);
	if (json) {
		printf("%s{\"kind\":\"%s\",\"name\":", u->count ? "," : "", kind);
		json_str(name);
		putchar('}');
	} else if (len < sizeof(u->text) - 80) {
		snprintf(u->text + len, sizeof(u->text) - len, "%s%s '%s'", u->count ? ", " : "", kind, name);
	}
	u->count++;
	return 0;
}

static int list_layer(void *arg, const struct cow_layer_desc *l)
{
	struct users *u = arg;
	if (json) {
		printf("%s{\"id\":%llu,\"digest\":", u->count ? "," : "", (unsigned long long)l->id);
		if (l->digest[0])
			printf("\"%s\"", l->digest);
		else
			printf("null");
		printf(",\"image\":");
		if (l->image[0])
			json_str(l->image);
		else
			printf("null");
		putchar('}');
	} else {
		printf("%s %llu%s%s%s%s\n", u->count ? "          " : "layers:   ", (unsigned long long)l->id,
		       l->digest[0] ? " " : "", l->digest, l->image[0] ? " image " : "", l->image);
	}
	u->count++;
	return 0;
}

/* The digest of the layer beneath the top one, if it has one. */
static int second_digest(void *arg, const struct cow_layer_desc *l)
{
	int *n = arg;
	return ++*n == 2 && l->digest[0];
}

int cmd_image_show(int argc, char **argv)
{
	static const char usage[] = "image show NAME [--json]";
	json = parse_json_flag(&argc, argv);
	if (argc != 2 || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(COW_STORE_READONLY, &st))
		return 1;
	struct cow_image_info ii;
	int r = cow_image_get(st, argv[1], &ii);
	if (r < 0) {
		if (r == -ENOENT)
			err("no image '%s' (see 'cowroot image list')", argv[1]);
		else
			err("cannot read image '%s': %s", argv[1], strerror(-r));
		cow_store_close(st);
		return 1;
	}
	char base[COW_ENTITY_NAME_MAX + 1] = "";
	if (ii.parent)
		cow_image_name_of(st, ii.parent, base);
	struct cow_layer_stats ls = {0};
	cow_layer_stats(st, ii.layer, &ls);
	char when[32];
	fmt_time(ii.created, when, sizeof(when));
	struct users u = {0};
	if (json) {
		printf("{\"name\":");
		json_str(ii.name);
		printf(",\"created\":\"%s\",\"layer\":%llu,\"built_on\":", when, (unsigned long long)ii.layer);
		if (base[0])
			json_str(base);
		else
			printf("null");
		printf(",\"objects\":%llu,\"bytes\":%llu,\"disk_bytes\":%llu,\"layers\":[",
		       (unsigned long long)ii.objects, (unsigned long long)ii.bytes, (unsigned long long)ls.disk_bytes);
		r = cow_image_layers(st, argv[1], list_layer, &u);
		printf("],\"users\":[");
		u.count = 0;
		if (r == 0)
			r = cow_image_users(st, argv[1], list_user, &u);
		printf("]}\n");
	} else {
		r = cow_image_users(st, argv[1], list_user, &u);
		printf("image:     %s\ncreated:   %s\nbuilt on:  %s\nobjects:   %llu (in its own layer)\n"
		       "data:      %llu bytes, %llu on disk\nused by:   %s\n",
		       ii.name, when,
		       base[0]	    ? base
		       : !ii.parent ? "(imported base)"
		       : cow_image_layers(st, argv[1], second_digest, &(int){0}) == 1
			   ? "(the layers of an OCI image, below)"
			   : "(a removed image)",
		       (unsigned long long)ii.objects, (unsigned long long)ii.bytes, (unsigned long long)ls.disk_bytes,
		       u.count ? u.text : "nothing");
		u.count = 0;
		if (r == 0)
			r = cow_image_layers(st, argv[1], list_layer, &u);
	}
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}

int cmd_image_rm(int argc, char **argv)
{
	static const char usage[] = "image rm NAME";
	if (argc != 2 || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	int r = cow_image_rm(st, argv[1]);
	if (r == -EBUSY) {
		struct users u = {0};
		cow_image_users(st, argv[1], list_user, &u);
		err("image '%s' is in use by %s; remove or rebase those first", argv[1], u.text);
	} else if (r == -ETXTBSY) {
		err("image '%s' is mounted read-only ('cowroot mount --image'); unmount it first", argv[1]);
	} else if (r == -ENOENT) {
		err("no image '%s' (see 'cowroot image list')", argv[1]);
	} else if (r < 0) {
		err("cannot remove image '%s': %s", argv[1], strerror(-r));
	} else {
		printf("removed image '%s' ('cowroot gc' reclaims its space)\n", argv[1]);
	}
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}

int cmd_image_flatten(int argc, char **argv)
{
	static const char usage[] = "image flatten NAME NEWNAME";
	if (argc != 3 || want_help(argc, argv))
		return usage_err(usage);
	if (bad_name("image", argv[2]))
		return 1;
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	int r = long_op("flatten", cow_image_flatten(st, argv[1], argv[2], progress_or_cancel, tty_arg()), argv[1]);
	if (r == -ENOENT)
		err("no image '%s' (see 'cowroot image list')", argv[1]);
	else if (r == -EEXIST)
		err("image '%s' already exists", argv[2]);
	else if (r == -EUCLEAN)
		err("cannot flatten '%s': its tree is broken; 'cowroot fsck' says where", argv[1]);
	else if (r < 0 && r != -ECANCELED)
		err("cannot flatten '%s': %s", argv[1], strerror(-r));
	else if (r == 0)
		printf("image '%s' flattened into new base image '%s'\n", argv[1], argv[2]);
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}

int cmd_image_export(int argc, char **argv)
{
	static const char usage[] = "image export NAME FILE";
	if (argc != 3 || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(COW_STORE_READONLY, &st))
		return 1;
	struct cow_image_info ii;
	int r = cow_image_get(st, argv[1], &ii);
	if (r == 0) {
		/* the image exists: -ENOENT now is about the file */
		r = long_op("export", cow_image_export(st, argv[1], argv[2], progress_or_cancel, tty_arg()), argv[1]);
		if (r == -ENOENT)
			err("cannot write '%s': %s", argv[2], strerror(-r));
	} else if (r == -ETXTBSY) {
		err("image '%s' is mounted read-only ('cowroot mount --image'); unmount it first", argv[1]);
	} else if (r == -ENOENT) {
		err("no image '%s' (see 'cowroot image list')", argv[1]);
	}
	if (r == -EUCLEAN)
		err("cannot export '%s': its tree is broken; 'cowroot fsck' says where", argv[1]);
	else if (r < 0 && r != -ECANCELED && r != -ENOENT)
		err("cannot export '%s' to '%s': %s", argv[1], argv[2], strerror(-r));
	else if (r == 0)
		printf("image '%s' written to '%s'\n", argv[1], argv[2]);
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}

int cmd_image_load(int argc, char **argv)
{
	static const char usage[] = "image load FILE [NAME]";
	if (argc < 2 || argc > 3 || want_help(argc, argv))
		return usage_err(usage);
	const char *name = argc == 3 ? argv[2] : NULL;
	if (name && bad_name("image", name))
		return 1;
	struct stat sb;
	if (stat(argv[1], &sb) == 0 && !S_ISREG(sb.st_mode)) {
		/* a pipe would read as a truncated bundle the second time */
		err("'%s' is not a regular file: a bundle is read twice (verified, then loaded); save it to a file "
		    "first",
		    argv[1]);
		return 1;
	}
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	char why[512];
	int r = long_op("load", cow_image_load(st, argv[1], name, progress_or_cancel, tty_arg(), why, sizeof(why)),
			argv[1]);
	if (r == -EBADMSG)
		err("'%s' is not a valid cowroot bundle: %s; nothing was loaded", argv[1], why);
	else if (r == -EPROTO)
		err("'%s' was written by a newer cowroot; nothing was loaded", argv[1]);
	else if (r == -ENOSPC && why[0])
		err("cannot load '%s': %s: %s; nothing was loaded", argv[1], strerror(ENOSPC), why);
	else if (r == -EEXIST)
		err("an image with the bundle's name already exists; give another: 'cowroot image load %s NAME'",
		    argv[1]);
	else if (r < 0 && r != -ECANCELED)
		err("cannot load '%s': %s", argv[1], strerror(-r));
	else if (r == 0)
		printf("loaded '%s'%s%s\n", argv[1], name ? " as image " : "", name ? name : "");
	cow_store_close(st);
	return r < 0 ? 1 : 0;
}

/* ---- space ---- */

int cmd_gc(int argc, char **argv)
{
	static const char usage[] = "gc";
	if (argc != 1 || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(0, &st))
		return 1;
	struct cow_gc_report rep;
	int r = long_op("gc", cow_gc(st, progress_or_cancel, tty_arg(), &rep), store_dir);
	if (r == -EUCLEAN)
		err("gc refused: the database fails sqlite's check (%s); nothing was removed: run 'cowroot fsck'",
		    cow_store_errmsg(st) ? cow_store_errmsg(st) : "damaged");
	else if (r < 0 && r != -ECANCELED)
		err("gc failed: %s", store_why(st, r));
	cow_store_close(st);
	if (r < 0)
		return 1;
	printf("gc: removed %llu layer(s) and %llu data file(s), %.1f MiB freed", (unsigned long long)rep.layers,
	       (unsigned long long)rep.files, (double)rep.bytes / (1 << 20));
	if (rep.busy)
		printf("; %llu layer(s) still held by a running server, left for a later gc",
		       (unsigned long long)rep.busy);
	putchar('\n');
	return 0;
}

/* foreach callbacks run under the store's lock: collect, then query */
struct all {
	struct cow_client_info *c;
	struct cow_image_info *i;
	size_t nc, ni;
};

static int grab_client(void *arg, const struct cow_client_info *c)
{
	struct all *a = arg;
	struct cow_client_info *n = realloc(a->c, (a->nc + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	a->c = n;
	a->c[a->nc++] = *c;
	return 0;
}

static int grab_image(void *arg, const struct cow_image_info *i)
{
	struct all *a = arg;
	struct cow_image_info *n = realloc(a->i, (a->ni + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	a->i = n;
	a->i[a->ni++] = *i;
	return 0;
}

static void stat_client(const struct cow_client_info *c, const struct cow_layer_stats *ls, size_t n)
{
	if (json) {
		printf("%s\n  {\"name\":", n ? "," : "");
		json_str(c->name);
		printf(",\"image\":");
		json_str(c->image);
		printf(",\"quota_bytes\":%llu,\"quota_files\":%llu", (unsigned long long)c->quota_bytes,
		       (unsigned long long)c->quota_files);
		printf(",\"objects\":%llu,\"data_files\":%llu,\"bytes\":%llu,\"copy_ups\":%llu,\"whiteouts\":%llu,"
		       "\"disk_bytes\":%llu}",
		       (unsigned long long)ls->objects, (unsigned long long)ls->data_files,
		       (unsigned long long)ls->bytes, (unsigned long long)ls->copy_ups,
		       (unsigned long long)ls->whiteouts, (unsigned long long)ls->disk_bytes);
		return;
	}
	if (n == 0)
		printf("%-20s %-20s %9s %9s %9s %9s %12s\n", "CLIENT", "IMAGE", "OBJECTS", "FILES", "COPY-UPS",
		       "DELETED", "DISK");
	printf("%-20s %-20s %9llu %9llu %9llu %9llu %10.1fMi\n", c->name, c->image, (unsigned long long)ls->objects,
	       (unsigned long long)ls->data_files, (unsigned long long)ls->copy_ups, (unsigned long long)ls->whiteouts,
	       (double)ls->disk_bytes / (1 << 20));
}

static void stat_image(const struct cow_image_info *i, const struct cow_layer_stats *ls, size_t n)
{
	if (json) {
		printf("%s\n  {\"name\":", n ? "," : "");
		json_str(i->name);
		printf(",\"objects\":%llu,\"bytes\":%llu,\"disk_bytes\":%llu,\"clients\":%u}",
		       (unsigned long long)ls->objects, (unsigned long long)ls->bytes,
		       (unsigned long long)ls->disk_bytes, i->clients);
		return;
	}
	if (n == 0)
		printf("%-20s %9s %14s %12s %8s\n", "IMAGE", "OBJECTS", "BYTES", "DISK", "CLIENTS");
	printf("%-20s %9llu %14llu %10.1fMi %8u\n", i->name, (unsigned long long)ls->objects,
	       (unsigned long long)ls->bytes, (double)ls->disk_bytes / (1 << 20), i->clients);
}

int cmd_stats(int argc, char **argv)
{
	static const char usage[] = "stats [--json]";
	json = parse_json_flag(&argc, argv);
	if (argc != 1 || want_help(argc, argv))
		return usage_err(usage);
	struct cow_store *st;
	if (open_store(COW_STORE_READONLY, &st))
		return 1;
	struct all a = {0};
	struct cow_layer_stats ls;
	int r = cow_client_foreach(st, grab_client, &a);
	if (r == 0)
		r = cow_image_foreach(st, grab_image, &a);
	if (json && r == 0)
		printf("{\"clients\":[");
	for (size_t i = 0; r == 0 && i < a.nc; i++)
		if ((r = cow_layer_stats(st, a.c[i].layer, &ls)) == 0)
			stat_client(&a.c[i], &ls, i);
	if (r == 0)
		printf(json ? "\n ],\"images\":[" : a.nc ? "\n" : "");
	for (size_t i = 0; r == 0 && i < a.ni; i++)
		if ((r = cow_layer_stats(st, a.i[i].layer, &ls)) == 0)
			stat_image(&a.i[i], &ls, i);
	uint64_t qb = 0, qf = 0;
	if (r == 0)
		r = cow_store_default_quota(st, &qb, &qf);
	char qbuf[32];
	quota_fmt(qb, qbuf, sizeof(qbuf));
	if (json && r == 0)
		printf("\n ],\"default_quota\":{\"bytes\":%llu,\"files\":%llu}}\n", (unsigned long long)qb,
		       (unsigned long long)qf);
	else if (r == 0 && qf)
		printf("\ndefault quota of new clients: %s, %llu objects\n", qbuf, (unsigned long long)qf);
	else if (r == 0)
		printf("\ndefault quota of new clients: %s, any number of objects\n", qbuf);
	cow_store_close(st);
	free(a.c);
	free(a.i);
	if (r < 0) {
		err("cannot read the store's statistics: %s", strerror(-r));
		return 1;
	}
	return 0;
}
