/* SPDX-License-Identifier: MIT */
/*
 * `cowroot image check NAME [--json] [--fix NEWNAME]`: the report, and the
 * fixes written as a new image on top of NAME (imgcheck.h).
 *
 * --fix never writes NAME: it adds a temporary client on NAME, makes the
 * changes through that client's view, snapshots the client as NEWNAME and
 * removes the client (on failure too), then checks NEWNAME again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "imgcheck.h"

#define FIX_TEXT_MAX (1024 * 1024) /* as the check reads them */
#define MARK "# cowroot image check --fix:"

/* ---- writing through a view ---- */

static const struct cow_cred root_cred = {.uid = 0, .gid = 0, .umask = 022};

/* Replace the content of regular file @path of @v with @len bytes of
 * @data (its owner and mode stay). */
static int write_file(struct cow_view *v, const char *path, const char *data, size_t len)
{
	struct cow_attr a;
	struct cow_file *f;
	int r = root_walk(v, path, S_IFREG, &a, NULL, 0);
	if (r < 0)
		return r;
	r = cow_open(v, a.ino, O_WRONLY | O_TRUNC, &f);
	if (r == 0) {
		size_t done = 0;
		while (r == 0 && done < len) {
			ssize_t k = cow_write(f, data + done, len - done, (off_t)done);
			if (k < 0)
				r = (int)k;
			else if (k == 0)
				r = -EIO;
			else
				done += (size_t)k;
		}
		if (r == 0)
			r = cow_fsync(f, false);
		int c = cow_release(f);
		if (r == 0)
			r = c;
	}
	cow_forget(v, a.ino, 1);
	return r;
}

/* Directory @path of @v, made (mode 755) where missing: its ino
 * referenced, or -errno. */
static int make_dirs(struct cow_view *v, const char *path, uint64_t *ret)
{
	struct cow_attr a;
	int r = cow_ref(v, cow_view_root(v), &a);
	if (r < 0)
		return r;
	uint64_t at = a.ino;
	char copy[ROOT_PATH_MAX + 1];
	snprintf(copy, sizeof(copy), "%s", path);
	for (char *save, *name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		r = cow_lookup(v, at, name, &a);
		if (r == -ENOENT)
			r = cow_mkdir(v, at, name, 0755, &root_cred, &a);
		cow_forget(v, at, 1);
		if (r < 0)
			return r;
		if (!S_ISDIR(a.mode)) {
			cow_forget(v, a.ino, 1);
			return -ENOTDIR;
		}
		at = a.ino;
	}
	*ret = at;
	return 0;
}

/* Mask the units in @units (space-separated) as `systemctl mask` does: a
 * link to /dev/null in /etc/systemd/system in place of whatever was there. */
static int mask_units(struct cow_view *v, const char *units)
{
	uint64_t dir;
	int r = make_dirs(v, "/etc/systemd/system", &dir);
	if (r < 0)
		return r;
	char copy[256];
	snprintf(copy, sizeof(copy), "%s", units);
	for (char *save, *unit = strtok_r(copy, " ", &save); unit && r == 0; unit = strtok_r(NULL, " ", &save)) {
		struct cow_attr a;
		r = cow_lookup(v, dir, unit, &a);
		if (r == 0) {
			char target[COW_SYMLINK_MAX + 1];
			int n = S_ISLNK(a.mode) ? cow_readlink(v, a.ino, target, sizeof(target) - 1) : -EINVAL;
			bool masked = n == 9 && !memcmp(target, "/dev/null", 9);
			cow_forget(v, a.ino, 1);
			if (masked)
				continue;
			r = S_ISDIR(a.mode) ? -EISDIR : cow_unlink(v, dir, unit);
			if (r < 0)
				break;
		} else if (r != -ENOENT)
			break;
		r = cow_symlink(v, dir, unit, "/dev/null", &root_cred, &a);
		if (r == 0)
			cow_forget(v, a.ino, 1);
	}
	cow_forget(v, dir, 1);
	return r;
}

/* ---- editing lines ---- */

struct buf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void puts_buf(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* Is @word one of the interfaces to take off line @no of @file? */
static bool dropped(const struct img_report *rep, const char *file, unsigned no, const char *word, size_t n)
{
	for (size_t i = 0; i < rep->n; i++) {
		const struct img_finding *f = &rep->v[i];
		if (f->fix == IMG_FIX_IFUPDOWN && f->line == no && !strcmp(f->file, file) && strlen(f->arg) == n &&
		    !strncmp(f->arg, word, n))
			return true;
	}
	return false;
}

/* Line @line (@n bytes, no newline) of @file as the fixes of @rep have
 * it, into @out. */
static void fix_line(const struct img_report *rep, const char *file, unsigned no, const char *line, size_t n,
		     struct buf *out)
{
	const struct img_finding *hit = NULL;
	for (size_t i = 0; i < rep->n && !hit; i++) {
		const struct img_finding *f = &rep->v[i];
		if ((f->fix == IMG_FIX_COMMENT || f->fix == IMG_FIX_IFUPDOWN) && f->line == no &&
		    !strcmp(f->file, file))
			hit = f;
	}
	if (!hit) {
		put(out, line, n);
		return;
	}
	if (hit->fix == IMG_FIX_COMMENT) {
		puts_buf(out, MARK " a network boot has no such device; the root is NFS\n#");
		put(out, line, n);
		return;
	}
	/* "auto lo eth0": the line again without the interfaces taken off */
	struct buf kept = {0};
	size_t i = strspn(line, " \t");
	size_t kw = strcspn(line + i, " \t");
	put(&kept, line, i + kw);
	bool any = false;
	for (i += kw; i < n;) {
		i += strspn(line + i, " \t");
		size_t w = strcspn(line + i, " \t");
		if (w && i + w <= n && !dropped(rep, file, no, line + i, w)) {
			put(&kept, " ", 1);
			put(&kept, line + i, w);
			any = true;
		}
		i += w;
	}
	puts_buf(out, MARK " the interface the NFS root is mounted over is left as the boot configured it\n#");
	put(out, line, n);
	if (any) {
		put(out, "\n", 1);
		put(out, kept.s, kept.len);
	}
	out->failed |= kept.failed;
	free(kept.s);
}

/* Rewrite @file with the line fixes of @rep. */
static int fix_lines(struct cow_view *v, const struct img_report *rep, const char *file)
{
	char *s;
	size_t len;
	int r = root_read(v, file, FIX_TEXT_MAX, &s, &len);
	if (r < 0)
		return r;
	struct buf out = {0};
	unsigned no = 0;
	for (size_t at = 0; at < len;) {
		const char *nl = memchr(s + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (s + at)) : len - at;
		fix_line(rep, file, ++no, s + at, n, &out);
		if (nl)
			put(&out, "\n", 1);
		at += n + (nl != NULL);
	}
	r = out.failed ? -ENOMEM : write_file(v, file, out.s ? out.s : "", out.len);
	free(out.s);
	free(s);
	return r;
}

int img_fix(struct cow_view *v, struct img_report *rep)
{
	int r = 0;
	for (size_t i = 0; i < rep->n && r == 0; i++) {
		struct img_finding *f = &rep->v[i];
		if (f->fix == IMG_FIX_NONE)
			continue;
		/* each file's line fixes at once, with its first finding
		 * (line numbers are those of the file before any fix) */
		bool lines = f->fix != IMG_FIX_MASK, done = false;
		for (size_t j = 0; j < i && !done; j++) {
			const struct img_finding *e = &rep->v[j];
			if (lines)
				done = e->fix != IMG_FIX_NONE && e->fix != IMG_FIX_MASK && !strcmp(e->file, f->file);
			else
				done = e->fix == IMG_FIX_MASK && !strcmp(e->arg, f->arg);
		}
		if (!done)
			r = f->fix == IMG_FIX_MASK ? mask_units(v, f->arg) : fix_lines(v, rep, f->file);
	}
	for (size_t i = 0; i < rep->n && r == 0; i++)
		rep->v[i].fixed = rep->v[i].fix != IMG_FIX_NONE;
	return r;
}

/* ---- the command ---- */

/* What a finding says is partly the image's own bytes (file names, fstab
 * fields): shown with '?' for control and non-ASCII bytes, so that
 * neither a terminal nor a JSON reader gets anything else. */
static void clean(const struct img_finding *in, struct img_finding *out)
{
	*out = *in;
	shown_value(out->file, sizeof(out->file), in->file, strlen(in->file), sizeof(out->file) - 4);
	shown_value(out->problem, sizeof(out->problem), in->problem, strlen(in->problem), sizeof(out->problem) - 4);
	shown_value(out->todo, sizeof(out->todo), in->todo, strlen(in->todo), sizeof(out->todo) - 4);
}

static void print_findings(const struct img_report *rep, bool with_fixed)
{
	for (size_t i = 0; i < rep->n; i++) {
		struct img_finding shown;
		clean(&rep->v[i], &shown);
		const struct img_finding *f = &shown;
		if (json) {
			printf("%s{\"severity\":\"%s\",\"check\":\"%s\",\"file\":", i ? "," : "",
			       img_severity_name(f->severity), f->check);
			json_str(f->file);
			if (f->line)
				printf(",\"line\":%u", f->line);
			printf(",\"problem\":");
			json_str(f->problem);
			printf(",\"todo\":");
			json_str(f->todo);
			printf(",\"fixable\":%s", f->fix != IMG_FIX_NONE ? "true" : "false");
			if (with_fixed)
				printf(",\"fixed\":%s", f->fixed ? "true" : "false");
			putchar('}');
			continue;
		}
		char where[ROOT_PATH_MAX + 16];
		if (f->line)
			snprintf(where, sizeof(where), "%.1024s:%u", f->file, f->line);
		else
			snprintf(where, sizeof(where), "%.1024s", f->file);
		printf("%-7s %s: %s\n", img_severity_name(f->severity), where, f->problem);
		if (with_fixed && f->severity != IMG_INFO)
			printf("        %s\n", f->fixed			? "fixed"
					       : f->fix == IMG_FIX_NONE ? "not fixed: --fix cannot do it"
									: "not fixed");
		else if (f->todo[0])
			printf("        to do: %s\n", f->todo);
	}
}

static void print_counts(const struct img_report *rep)
{
	if (json)
		printf("\"errors\":%u,\"warnings\":%u,\"notes\":%u", rep->errors, rep->warnings, rep->infos);
	else
		printf("%u error(s), %u warning(s), %u note(s)", rep->errors, rep->warnings, rep->infos);
}

/* Check image @name into @rep; 0, or 1 after saying why not. */
static int check_image(struct cow_store *st, const char *name, struct img_report *rep)
{
	struct cow_view *v;
	int r = cow_view_open(st, NULL, name, COW_VIEW_READONLY, &v);
	if (r == -ENOENT) {
		err("no image '%s' (see 'cowroot image list')", name);
		return 1;
	}
	if (r < 0) {
		err("cannot open image '%s': %s", name, store_why(st, r));
		return 1;
	}
	r = img_check(v, rep);
	cow_view_close(v);
	if (r < 0) {
		err("cannot check image '%s': %s", name, store_why(st, r));
		img_report_release(rep);
		return 1;
	}
	return 0;
}

/* Write the fixes of @rep (a check of @name) as image @newname. */
static int write_fixed(struct cow_store *st, const char *name, const char *newname, struct img_report *rep)
{
	char tmp[COW_ENTITY_NAME_MAX + 1];
	int r = -EEXIST;
	for (int i = 0; i < 100 && r == -EEXIST; i++) {
		snprintf(tmp, sizeof(tmp), "image-check-fix-%d-%d", (int)getpid(), i);
		r = cow_client_add(st, tmp, name);
	}
	if (r < 0) {
		err("cannot add a client on '%s' to write the fixes: %s", name, store_why(st, r));
		return 1;
	}
	struct cow_view *v;
	const char *step = "open its view";
	r = cow_view_open(st, tmp, NULL, 0, &v);
	if (r == 0) {
		cow_view_set_holder(v, "image check --fix");
		step = "write the fixes";
		r = img_fix(v, rep);
		int c = cow_view_close(v);
		if (r == 0 && c < 0)
			r = c;
	}
	if (r == 0) {
		step = "snapshot it";
		r = cow_client_snapshot(st, tmp, newname);
	}
	int rm = cow_client_rm(st, tmp, 0);
	if (r < 0) {
		err("cannot %s (temporary client '%s' on '%s'): %s; '%s' is not written", step, tmp, name,
		    store_why(st, r), newname);
		return 1;
	}
	if (rm < 0)
		err("the temporary client '%s' could not be removed (%s): remove it with 'cowroot client rm %s'", tmp,
		    strerror(-rm), tmp);
	return 0;
}

/* Is a fixed finding of @before still in @after?  (Line numbers move:
 * the kind of fix, its file and what it names tell them apart.) */
static const struct img_finding *still_there(const struct img_report *before, const struct img_report *after)
{
	for (size_t i = 0; i < before->n; i++) {
		const struct img_finding *f = &before->v[i];
		if (!f->fixed)
			continue;
		for (size_t j = 0; j < after->n; j++) {
			const struct img_finding *g = &after->v[j];
			if (g->fix == f->fix && !strcmp(g->check, f->check) && !strcmp(g->file, f->file) &&
			    !strcmp(g->arg, f->arg))
				return g;
		}
	}
	return NULL;
}

int cmd_image_check(int argc, char **argv)
{
	static const char usage[] = "image check NAME [--json] [--fix NEWNAME]";
	json = parse_json_flag(&argc, argv);
	const char *name = NULL, *newname = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fix") && i + 1 < argc && !newname)
			newname = argv[++i];
		else if (!strncmp(argv[i], "--fix=", 6) && !newname)
			newname = argv[i] + 6;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage_err(usage);
	}
	if (!name || want_help(argc, argv))
		return usage_err(usage);
	if (bad_name("image", name) || (newname && bad_name("image", newname)))
		return 1;
	struct cow_store *st;
	if (open_store(newname ? 0 : COW_STORE_READONLY, &st))
		return 1;
	struct cow_image_info ii;
	if (newname && cow_image_get(st, newname, &ii) == 0) {
		err("image '%s' already exists", newname);
		cow_store_close(st);
		return 1;
	}
	struct img_report rep = {0}, after = {0};
	if (check_image(st, name, &rep)) {
		cow_store_close(st);
		return 1;
	}
	size_t fixable = 0;
	for (size_t i = 0; i < rep.n; i++)
		fixable += rep.v[i].fix != IMG_FIX_NONE;
	int rc = 0;
	bool wrote = false;
	if (newname && fixable) {
		rc = write_fixed(st, name, newname, &rep);
		if (rc == 0) {
			wrote = true;
			rc = check_image(st, newname, &after);
		}
		const struct img_finding *left = rc ? NULL : still_there(&rep, &after);
		if (left) {
			err("image '%s' still has what was fixed: %s: %s", newname, left->file, left->problem);
			rc = 1;
		}
	}
	if (json) {
		printf("{\"image\":");
		json_str(name);
		putchar(',');
		print_counts(&rep);
		printf(",\"findings\":[");
		print_findings(&rep, newname != NULL);
		putchar(']');
		if (wrote) {
			printf(",\"new_image\":");
			json_str(newname);
			printf(",\"after\":{");
			print_counts(&after);
			printf(",\"findings\":[");
			print_findings(&after, false);
			printf("]}");
		}
		puts("}");
	} else {
		print_findings(&rep, newname != NULL);
		printf("image '%s': ", name);
		print_counts(&rep);
		putchar('\n');
		if (newname && !fixable)
			printf("nothing --fix can change: image '%s' not written\n", newname);
		if (wrote) {
			size_t fixed = 0;
			for (size_t i = 0; i < rep.n; i++)
				fixed += rep.v[i].fixed;
			printf("wrote image '%s' on '%s' with %zu fix(es); it has ", newname, name, fixed);
			print_counts(&after);
			printf("%s\n", after.errors ? " (see 'cowroot image check' of it)" : "");
		}
	}
	if (rc == 0)
		rc = (wrote ? after.errors : rep.errors) ? 1 : 0;
	img_report_release(&rep);
	img_report_release(&after);
	cow_store_close(st);
	return rc;
}
