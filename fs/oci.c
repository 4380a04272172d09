/* SPDX-License-Identifier: MIT */
/*
 * Importing OCI images: an OCI image layout (oci-layout, index.json,
 * blobs/) as skopeo, buildah or docker buildx write it, or a `docker save`
 * archive.  Each layer of the image becomes an image layer of the store
 * on the one beneath it, applied through a writable view of it as a
 * client's changes are: a file replaces what had its name, a directory
 * merges with the one it meets, a `.wh.NAME` whiteout removes NAME of the
 * layers beneath, and a `.wh..wh..opq` marker everything the layers
 * beneath hold in its directory (what the layer itself adds stays, as the
 * image spec says).  A layer is known by its OCI chain id (its content's
 * digest together with the chain id of the layer beneath): one the store
 * holds already, from another image built on the same base, is used as it
 * is and not read again.
 *
 * Everything read is hostile until checked.  The index, manifest and
 * config are bounded in size and parsed as JSON; every blob is read by a
 * digest and refused unless its sha256 matches, and every layer's
 * uncompressed content must match its diff id in the config; tar paths
 * may not climb out of the root or pass through anything but a directory.
 * Until the last transaction names the image, its new layers are dead and
 * locked: a failure removes them, a crash leaves them to gc.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow-private.h"

#define JSON_MAX (4 << 20)		    /* the most an index, manifest or config may hold */
#define OCI_LAYERS_MAX (COW_MAX_LAYERS - 4) /* room above for a client's layer and snapshots */
#define TAR_PATH_MAX 4096		    /* the longest path of a layer's entry */
#define IO_CHUNK (256 << 10)

struct oci {
	struct cow_store *st;
	int kind;
	const char *path;
	int dirfd; /* a layout's directory */
	cow_progress_fn progress;
	void *arg;
	uint64_t total, done; /* bytes of the blobs to read, read */
	struct cow_oci_info *info;
	char where[TAR_PATH_MAX + 64]; /* after a failure in a layer: what it is about */
};

/* ---- digests ---- */

static void hex_of(const uint8_t *d, char *hex)
{
	static const char x[] = "0123456789abcdef";
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
		hex[2 * i] = x[d[i] >> 4];
		hex[2 * i + 1] = x[d[i] & 15];
	}
	hex[2 * SHA256_DIGEST_SIZE] = 0;
}

static void digest_of(struct sha256_ctx *c, char out[COW_DIGEST_LEN + 1])
{
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_digest(c, sizeof(d), d);
	memcpy(out, "sha256:", 7);
	hex_of(d, out + 7);
}

/* A digest as the image spec writes it: only sha256, 64 lowercase hex
 * digits (what also makes it safe as a file name). */
static bool digest_ok(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) || strlen(s) != COW_DIGEST_LEN)
		return false;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* ---- JSON ---- */

static json_t *json_parse(struct oci *o, const char *what, const char *buf, size_t len)
{
	json_error_t e;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
	if (!j)
		cow_import_err(o->st, -EINVAL, "%s is not valid JSON (line %d: %s)", what, e.line, e.text);
	else if (!json_is_object(j) && !json_is_array(j)) {
		cow_import_err(o->st, -EINVAL, "%s is not a JSON object", what);
		json_decref(j);
		j = NULL;
	}
	return j;
}

static const char *jstr(json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- reading the source ---- */

/* Read all of @fd, at most @max bytes, into a new buffer. */
static int read_all(struct oci *o, int fd, const char *what, size_t max, char **ret, size_t *ret_len)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				free(buf);
				return cow_import_err(o->st, -EFBIG, "%s is larger than %d MiB", what, JSON_MAX >> 20);
			}
			char *n = realloc(buf, cap * 2);
			if (!n) {
				free(buf);
				return -ENOMEM;
			}
			buf = n;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;
			free(buf);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		return cow_import_err(o->st, -EFBIG, "%s is larger than %d MiB", what, JSON_MAX >> 20);
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* A docker archive: the outer tar (plain or gzip'd), read from the start. */
static int outer_open(struct oci *o, struct archive **ret)
{
	struct archive *a = archive_read_new();
	if (!a)
		return -ENOMEM;
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, o->path, IO_CHUNK) != ARCHIVE_OK) {
		int r =
		    cow_import_err(o->st, -EINVAL, "'%s' is not a tar archive: %s", o->path, archive_error_string(a));
		archive_read_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

/* A member's name as a docker archive's manifest.json names it. */
static const char *member_name(const char *p)
{
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	while (*p == '/')
		p++;
	return p;
}

/* Position the outer archive @a (new) at member @name; a symbolic link
 * there (skopeo writes "ID/layer.tar -> ../DIGEST.tar") gives its target,
 * resolved within the archive, in @next. */
static int outer_find(struct oci *o, struct archive *a, const char *name, char *next, size_t size)
{
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *p = archive_entry_pathname(e);
		if (!p || strcmp(member_name(p), member_name(name)))
			continue;
		if (archive_entry_filetype(e) == AE_IFLNK && archive_entry_symlink(e)) {
			/* relative to the link's directory; ".." only as far as the top */
			const char *t = archive_entry_symlink(e), *m = member_name(name), *slash = strrchr(m, '/');
			int n = slash ? (int)(slash - m) : 0;
			if (*t == '/')
				return cow_import_err(o->st, -EINVAL, "'%s' in '%s' is a link out of the archive", name,
						      o->path);
			snprintf(next, size, "%.*s", n, m);
			while (!strncmp(t, "../", 3) || !strncmp(t, "./", 2)) {
				if (t[1] == '/') {
					t += 2;
					continue;
				}
				char *up = strrchr(next, '/');
				if (!next[0])
					return cow_import_err(
					    o->st, -EINVAL, "'%s' in '%s' is a link out of the archive", name, o->path);
				if (up)
					*up = 0;
				else
					next[0] = 0;
				t += 3;
			}
			size_t l = strlen(next);
			snprintf(next + l, size - l, "%s%s", l ? "/" : "", t);
			return 1;
		}
		if (archive_entry_filetype(e) != AE_IFREG)
			return cow_import_err(o->st, -EINVAL, "'%s' in '%s' is not a file", name, o->path);
		return 0;
	}
	if (r == ARCHIVE_EOF)
		return cow_import_err(o->st, -ENOENT, "'%s' has no '%s'", o->path, name);
	return cow_import_err(o->st, -EIO, "cannot read '%s': %s", o->path, archive_error_string(a));
}

/* The outer archive, opened anew at member @name (links followed). */
static int outer_seek(struct oci *o, const char *name, struct archive **ret)
{
	char cur[512], next[512];
	snprintf(cur, sizeof(cur), "%s", name);
	for (int hops = 0; hops < 8; hops++) {
		struct archive *a = NULL;
		int r = outer_open(o, &a);
		if (r < 0)
			return r;
		r = outer_find(o, a, cur, next, sizeof(next));
		if (r == 0) {
			*ret = a;
			return 0;
		}
		archive_read_free(a);
		if (r < 0)
			return r;
		memcpy(cur, next, sizeof(cur));
	}
	return cow_import_err(o->st, -ELOOP, "'%s' in '%s': too many links", name, o->path);
}

/* A small file of the source, whole: a layout's blob by @digest (checked)
 * or a docker archive's member @name (checked if @digest). */
static int small_read(struct oci *o, const char *what, const char *digest, const char *name, char **ret,
		      size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	int r;
	if (o->kind == COW_OCI_LAYOUT) {
		char p[128];
		if (name)
			snprintf(p, sizeof(p), "%s", name);
		else
			snprintf(p, sizeof(p), "blobs/sha256/%s", digest + 7);
		int fd = openat(o->dirfd, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return cow_import_err(o->st, -errno, "%s: cannot open '%s/%s': %s", what, o->path, p,
					      strerror(errno));
		r = read_all(o, fd, what, JSON_MAX, &buf, &len);
		close(fd);
	} else {
		struct archive *a;
		r = outer_seek(o, name, &a);
		if (r < 0)
			return r;
		size_t cap = 0;
		while (r == 0) {
			if (cap - len < 65536) {
				if (cap > JSON_MAX) {
					r = cow_import_err(o->st, -EFBIG, "%s is larger than %d MiB", what,
							   JSON_MAX >> 20);
					break;
				}
				cap = cap ? cap * 2 : 65536;
				char *n = realloc(buf, cap);
				if (!n) {
					r = -ENOMEM;
					break;
				}
				buf = n;
			}
			la_ssize_t n = archive_read_data(a, buf + len, cap - len);
			if (n < 0)
				r = cow_import_err(o->st, -EIO, "cannot read '%s' in '%s': %s", name, o->path,
						   archive_error_string(a));
			else if (n == 0)
				break;
			else
				len += (size_t)n;
		}
		if (r == 0 && len > JSON_MAX)
			r = cow_import_err(o->st, -EFBIG, "%s is larger than %d MiB", what, JSON_MAX >> 20);
		archive_read_free(a);
	}
	if (r == 0 && digest) {
		struct sha256_ctx c;
		char got[COW_DIGEST_LEN + 1];
		sha256_init(&c);
		sha256_update(&c, len, (const uint8_t *)buf);
		digest_of(&c, got);
		if (strcmp(got, digest))
			r = cow_import_err(o->st, -EIO,
					   "%s does not match its digest %s (it is %s): the image is damaged", what,
					   digest, got);
	}
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int json_read(struct oci *o, const char *what, const char *digest, const char *name, json_t **ret)
{
	char *buf;
	size_t len;
	int r = small_read(o, what, digest, name, &buf, &len);
	if (r < 0)
		return r;
	*ret = json_parse(o, what, buf, len);
	free(buf);
	return *ret ? 0 : -EINVAL;
}

/* ---- which image: the manifest and the config ---- */

struct layer_src {
	char digest[COW_DIGEST_LEN + 1]; /* of the blob, "" if unknown (a docker archive's old layout) */
	char diff_id[COW_DIGEST_LEN + 1];
	char chain[COW_DIGEST_LEN + 1];
	char member[256]; /* a docker archive's member */
	int64_t size;	  /* of the blob, -1 if unknown */
};

struct image_src {
	struct layer_src *layers;
	int n;
	char arch[32];
};

static bool is_index_type(const char *t)
{
	return t && (!strcmp(t, "application/vnd.oci.image.index.v1+json") ||
		     !strcmp(t, "application/vnd.docker.distribution.manifest.list.v2+json"));
}

static bool is_manifest_type(const char *t)
{
	return !t || !strcmp(t, "application/vnd.oci.image.manifest.v1+json") ||
	       !strcmp(t, "application/vnd.docker.distribution.manifest.v2+json");
}

static bool is_layer_type(const char *t)
{
	static const char *const ok[] = {
	    "application/vnd.oci.image.layer.v1.tar",
	    "application/vnd.oci.image.layer.v1.tar+gzip",
	    "application/vnd.oci.image.layer.v1.tar+zstd",
	    "application/vnd.docker.image.rootfs.diff.tar",
	    "application/vnd.docker.image.rootfs.diff.tar.gzip",
	    "application/vnd.docker.image.rootfs.diff.tar.zstd",
	};
	for (size_t i = 0; t && i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(t, ok[i]))
			return true;
	return false;
}

/* Say which entries of @list (descriptors of an index) there are. */
static void list_choices(json_t *list, bool platforms, char *buf, size_t size)
{
	size_t i, off = 0;
	json_t *d;
	buf[0] = 0;
	json_array_foreach(list, i, d)
	{
		const char *s;
		char plat[80] = "";
		if (platforms) {
			json_t *p = json_object_get(d, "platform");
			snprintf(plat, sizeof(plat), "%s/%s%s%s", jstr(p, "os") ? jstr(p, "os") : "?",
				 jstr(p, "architecture") ? jstr(p, "architecture") : "?", jstr(p, "variant") ? "/" : "",
				 jstr(p, "variant") ? jstr(p, "variant") : "");
			s = plat;
		} else {
			s = jstr(json_object_get(d, "annotations"), "org.opencontainers.image.ref.name");
			if (!s)
				s = "(untagged)";
		}
		int n = snprintf(buf + off, size - off, "%s%s", off ? ", " : "", s);
		if (n < 0 || (size_t)n >= size - off)
			break;
		off += (size_t)n;
	}
}

/* The entry of an index (@ref or the only one) or of a platform list
 * (@arch, the only real one, or none). */
static int pick(struct oci *o, json_t *index, const char *what, const char *ref, const char *arch, json_t **ret)
{
	json_t *list = json_object_get(index, "manifests"), *d, *found = NULL;
	size_t i;
	int candidates = 0;
	if (!json_is_array(list) || json_array_size(list) == 0)
		return cow_import_err(o->st, -EINVAL, "%s lists no manifests", what);
	json_array_foreach(list, i, d)
	{
		if (!json_is_object(d))
			return cow_import_err(o->st, -EINVAL, "%s has an entry that is not an object", what);
		json_t *p = json_object_get(d, "platform");
		const char *name = jstr(json_object_get(d, "annotations"), "org.opencontainers.image.ref.name");
		if (ref) {
			if (name && !strcmp(name, ref)) {
				found = d;
				candidates++;
			}
		} else if (arch && p) {
			if (jstr(p, "architecture") && !strcmp(jstr(p, "architecture"), arch)) {
				found = d;
				candidates++;
			}
		} else if (!(p && jstr(p, "os") && !strcmp(jstr(p, "os"), "unknown"))) {
			/* attestation manifests ("unknown/unknown") are no images */
			found = d;
			candidates++;
		}
	}
	char choices[512];
	list_choices(list, !ref && json_object_get(json_array_get(list, 0), "platform"), choices, sizeof(choices));
	if (candidates == 0 && ref)
		return cow_import_err(o->st, -ENOENT, "%s has no image '%s' (it has: %s)", what, ref, choices);
	if (candidates == 0 && arch)
		return cow_import_err(o->st, -ENOENT, "%s has no image for architecture '%s' (it has: %s)", what, arch,
				      choices);
	if (candidates != 1)
		return cow_import_err(o->st, -EINVAL, "%s holds %d images (%s): say which, %s", what, candidates,
				      choices,
				      ref || json_object_get(json_array_get(list, 0), "platform") ? "with --arch ARCH"
												  : "as oci:DIR:TAG");
	*ret = found;
	return 0;
}

/* The layers of @manifest (an image manifest) and its config. */
static int read_manifest(struct oci *o, json_t *manifest, struct image_src *im)
{
	json_t *cfgd = json_object_get(manifest, "config"), *layers = json_object_get(manifest, "layers"), *l;
	const char *cd = jstr(cfgd, "digest");
	size_t i;
	if (!digest_ok(cd))
		return cow_import_err(o->st, -EINVAL, "the manifest names its config by no sha256 digest");
	if (!json_is_array(layers))
		return cow_import_err(o->st, -EINVAL, "the manifest has no list of layers");
	size_t n = json_array_size(layers);
	if (n == 0 || n > OCI_LAYERS_MAX)
		return cow_import_err(o->st, -E2BIG,
				      "the image has %zu layers; cowroot stacks 1 to %d (squash it when building)", n,
				      OCI_LAYERS_MAX);
	im->layers = calloc(n, sizeof(*im->layers));
	if (!im->layers)
		return -ENOMEM;
	im->n = (int)n;
	json_array_foreach(layers, i, l)
	{
		const char *d = jstr(l, "digest"), *t = jstr(l, "mediaType");
		json_t *sz = json_object_get(l, "size");
		if (!digest_ok(d))
			return cow_import_err(o->st, -EINVAL, "layer %zu is named by no sha256 digest", i + 1);
		if (!is_layer_type(t))
			return cow_import_err(o->st, -EMEDIUMTYPE,
					      "layer %zu is of type '%s', not a tar layer cowroot reads", i + 1,
					      t ? t : "(none)");
		if (!json_is_integer(sz) || json_integer_value(sz) < 0)
			return cow_import_err(o->st, -EINVAL, "layer %zu has no size", i + 1);
		snprintf(im->layers[i].digest, sizeof(im->layers[i].digest), "%s", d);
		im->layers[i].size = json_integer_value(sz);
	}
	snprintf(o->info->config, sizeof(o->info->config), "%s", cd);
	return 0;
}

/* The config's diff ids (and architecture), for @im's layers. */
static int read_config(struct oci *o, const char *digest, const char *member, struct image_src *im)
{
	json_t *cfg;
	int r = json_read(o, "the image config", digest, member, &cfg);
	if (r < 0)
		return r;
	json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	const char *arch = jstr(cfg, "architecture");
	snprintf(im->arch, sizeof(im->arch), "%s", arch ? arch : "");
	if (!json_is_array(ids) || json_array_size(ids) != (size_t)im->n)
		r = cow_import_err(o->st, -EINVAL, "the image config lists %zu layer diff ids for %d layers",
				   json_is_array(ids) ? json_array_size(ids) : 0, im->n);
	for (int i = 0; r == 0 && i < im->n; i++) {
		const char *d = json_string_value(json_array_get(ids, (size_t)i));
		if (!digest_ok(d))
			r = cow_import_err(o->st, -EINVAL, "the image config names layer %d by no sha256 diff id",
					   i + 1);
		else
			snprintf(im->layers[i].diff_id, sizeof(im->layers[i].diff_id), "%s", d);
	}
	json_decref(cfg);
	return r;
}

static int find_layout_image(struct oci *o, const char *ref, const char *arch, struct image_src *im)
{
	char *buf;
	size_t len;
	int r = small_read(o, "oci-layout", NULL, "oci-layout", &buf, &len);
	if (r < 0)
		return cow_import_err(o->st, r == -ENOENT ? -EMEDIUMTYPE : r,
				      "'%s' is no OCI image layout (no oci-layout file)", o->path);
	json_t *lay = json_parse(o, "oci-layout", buf, len);
	free(buf);
	if (!lay)
		return -EINVAL;
	const char *ver = jstr(lay, "imageLayoutVersion");
	if (!ver || strncmp(ver, "1.", 2))
		r = cow_import_err(o->st, -EMEDIUMTYPE, "'%s' is an OCI image layout of version '%s', not 1.x", o->path,
				   ver ? ver : "(none)");
	json_decref(lay);
	if (r < 0)
		return r;

	json_t *index, *node = NULL, *doc = NULL;
	r = json_read(o, "index.json", NULL, "index.json", &index);
	if (r < 0)
		return r;
	json_t *d;
	r = pick(o, index, "index.json", ref, NULL, &d);
	/* an image index within (one image, many platforms): one level */
	for (int depth = 0; r == 0; depth++) {
		const char *t = jstr(d, "mediaType"), *dg = jstr(d, "digest");
		if (!digest_ok(dg)) {
			r = cow_import_err(o->st, -EINVAL, "an index entry names its manifest by no sha256 digest");
			break;
		}
		if (is_index_type(t) && depth == 0) {
			r = json_read(o, "an image index", dg, NULL, &node);
			if (r == 0)
				r = pick(o, node, "the image index", NULL, arch, &d);
			continue;
		}
		if (!is_manifest_type(t)) {
			r = cow_import_err(o->st, -EMEDIUMTYPE, "the image's manifest is of type '%s'", t);
			break;
		}
		snprintf(o->info->manifest, sizeof(o->info->manifest), "%s", dg);
		r = json_read(o, "the image manifest", dg, NULL, &doc);
		if (r == 0)
			r = read_manifest(o, doc, im);
		if (r == 0)
			r = read_config(o, o->info->config, NULL, im);
		break;
	}
	json_decref(doc);
	json_decref(node);
	json_decref(index);
	return r;
}

/* A docker archive's member name that is a digest's blob: its digest. */
static void member_digest(const char *member, char out[COW_DIGEST_LEN + 1])
{
	char d[COW_DIGEST_LEN + 16];
	const char *m = member_name(member);
	out[0] = 0;
	if (!strncmp(m, "blobs/sha256/", 13))
		snprintf(d, sizeof(d), "sha256:%s", m + 13);
	else if (strlen(m) == 64 + 5 && !strcmp(m + 64, ".json")) /* the old "<hex>.json" config */
		snprintf(d, sizeof(d), "sha256:%.64s", m);
	else
		return;
	if (digest_ok(d))
		memcpy(out, d, COW_DIGEST_LEN + 1);
}

/* Whether a docker archive's tag @tag is @ref as docker names images:
 * "debian" is "debian:latest", and both are "docker.io/library/debian:latest". */
static bool ref_match(const char *tag, const char *ref)
{
	char a[512], b[512];
	const char *in[2] = {tag, ref};
	char *out[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		const char *p = in[i];
		if (!strncmp(p, "docker.io/", 10))
			p += 10;
		if (!strncmp(p, "library/", 8))
			p += 8;
		const char *slash = strrchr(p, '/');
		bool tagged = strchr(slash ? slash : p, ':') || strchr(p, '@');
		snprintf(out[i], sizeof(a), "%s%s", p, tagged ? "" : ":latest");
	}
	return !strcmp(a, b);
}

static int find_archive_image(struct oci *o, const char *ref, struct image_src *im)
{
	json_t *man;
	int r = json_read(o, "manifest.json", NULL, "manifest.json", &man);
	if (r < 0)
		return r == -ENOENT ? cow_import_err(o->st, -EMEDIUMTYPE,
						     "'%s' is no docker archive (no manifest.json)", o->path)
				    : r;
	json_t *e, *found = NULL;
	size_t i, n = json_is_array(man) ? json_array_size(man) : 0;
	char tags[512] = "";
	size_t off = 0;
	int candidates = 0;
	json_array_foreach(man, i, e)
	{
		json_t *t = json_object_get(e, "RepoTags"), *tag;
		size_t j;
		bool match = !ref;
		json_array_foreach(t, j, tag)
		{
			const char *s = json_string_value(tag);
			if (!s)
				continue;
			if (ref && ref_match(s, ref))
				match = true;
			int k = snprintf(tags + off, sizeof(tags) - off, "%s%s", off ? ", " : "", s);
			if (k > 0 && (size_t)k < sizeof(tags) - off)
				off += (size_t)k;
		}
		if (match) {
			found = e;
			candidates++;
		}
	}
	if (n == 0)
		r = cow_import_err(o->st, -EINVAL, "manifest.json of '%s' lists no image", o->path);
	else if (candidates == 0)
		r = cow_import_err(o->st, -ENOENT, "'%s' has no image '%s' (it has: %s)", o->path, ref,
				   tags[0] ? tags : "no tags");
	else if (candidates > 1)
		r = cow_import_err(o->st, -EINVAL,
				   "'%s' holds %d images (%s): say which, as docker-archive:FILE:NAME:TAG", o->path,
				   candidates, tags);
	const char *cfg = r == 0 ? jstr(found, "Config") : NULL;
	json_t *layers = r == 0 ? json_object_get(found, "Layers") : NULL;
	if (r == 0 && (!cfg || strlen(cfg) >= 256))
		r = cow_import_err(o->st, -EINVAL, "manifest.json names no config");
	if (r == 0 &&
	    (!json_is_array(layers) || json_array_size(layers) == 0 || json_array_size(layers) > OCI_LAYERS_MAX))
		r = cow_import_err(o->st, -E2BIG,
				   "the image has %zu layers; cowroot stacks 1 to %d (squash it when building)",
				   json_is_array(layers) ? json_array_size(layers) : 0, OCI_LAYERS_MAX);
	if (r == 0) {
		im->n = (int)json_array_size(layers);
		im->layers = calloc((size_t)im->n, sizeof(*im->layers));
		if (!im->layers)
			r = -ENOMEM;
	}
	for (int k = 0; r == 0 && k < im->n; k++) {
		const char *m = json_string_value(json_array_get(layers, (size_t)k));
		if (!m || strlen(m) >= sizeof(im->layers[k].member))
			r = cow_import_err(o->st, -EINVAL, "manifest.json names layer %d by no file", k + 1);
		else {
			snprintf(im->layers[k].member, sizeof(im->layers[k].member), "%s", m);
			member_digest(m, im->layers[k].digest);
			im->layers[k].size = -1;
		}
	}
	if (r == 0) {
		char cd[COW_DIGEST_LEN + 1];
		member_digest(cfg, cd);
		snprintf(o->info->config, sizeof(o->info->config), "%s", cd);
		r = read_config(o, cd[0] ? cd : NULL, cfg, im);
	}
	json_decref(man);
	return r;
}

/* ---- a layer's stream: blob -> decompressed -> tar ---- */

struct stream {
	struct oci *o;
	int fd;		       /* a layout's blob */
	struct archive *outer; /* a docker archive, at the layer's member */
	struct archive *dec;   /* decompresses the blob */
	struct archive *tar;   /* reads the decompressed tar */
	struct sha256_ctx raw, plain;
	uint64_t raw_bytes, since_tick;
	int err; /* what failed below libarchive */
	char *rbuf, *pbuf;
};

static la_ssize_t raw_read(struct archive *a, void *arg, const void **ret)
{
	struct stream *s = arg;
	la_ssize_t n;
	(void)a;
	if (s->outer)
		n = archive_read_data(s->outer, s->rbuf, IO_CHUNK);
	else
		do
			n = read(s->fd, s->rbuf, IO_CHUNK);
		while (n < 0 && errno == EINTR);
	if (n < 0) {
		s->err = s->outer ? -EIO : -errno;
		archive_set_error(a, EIO, "cannot read the layer");
		return -1;
	}
	sha256_update(&s->raw, (size_t)n, (const uint8_t *)s->rbuf);
	s->raw_bytes += (uint64_t)n;
	s->o->done += (uint64_t)n;
	*ret = s->rbuf;
	return n;
}

static la_ssize_t plain_read(struct archive *a, void *arg, const void **ret)
{
	struct stream *s = arg;
	(void)a;
	la_ssize_t n = archive_read_data(s->dec, s->pbuf, IO_CHUNK);
	if (n < 0) {
		archive_set_error(a, EIO, "%s", archive_error_string(s->dec));
		if (!s->err)
			s->err = -EIO;
		return -1;
	}
	sha256_update(&s->plain, (size_t)n, (const uint8_t *)s->pbuf);
	*ret = s->pbuf;
	return n;
}

static void stream_close(struct stream *s)
{
	if (s->tar)
		archive_read_free(s->tar);
	if (s->dec)
		archive_read_free(s->dec);
	if (s->outer)
		archive_read_free(s->outer);
	if (s->fd >= 0)
		close(s->fd);
	free(s->rbuf);
	free(s->pbuf);
}

static int stream_open(struct oci *o, const struct layer_src *l, int idx, struct stream *s)
{
	int r = 0;
	memset(s, 0, sizeof(*s));
	s->o = o;
	s->fd = -1;
	sha256_init(&s->raw);
	sha256_init(&s->plain);
	s->rbuf = malloc(IO_CHUNK);
	s->pbuf = malloc(IO_CHUNK);
	if (!s->rbuf || !s->pbuf)
		return -ENOMEM;
	if (o->kind == COW_OCI_LAYOUT) {
		char p[96];
		snprintf(p, sizeof(p), "blobs/sha256/%s", l->digest + 7);
		s->fd = openat(o->dirfd, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		struct stat sb;
		if (s->fd < 0)
			return cow_import_err(o->st, -errno, "layer %d: cannot open '%s/%s': %s", idx, o->path, p,
					      strerror(errno));
		if (fstat(s->fd, &sb) < 0)
			return -errno;
		if (!S_ISREG(sb.st_mode) || sb.st_size != l->size)
			return cow_import_err(o->st, -EIO, "layer %d: '%s/%s' holds %lld bytes, the manifest says %lld",
					      idx, o->path, p, (long long)sb.st_size, (long long)l->size);
	} else {
		r = outer_seek(o, l->member, &s->outer);
		if (r < 0)
			return r;
	}
	s->dec = archive_read_new();
	s->tar = archive_read_new();
	if (!s->dec || !s->tar)
		return -ENOMEM;
	/* only what layers are compressed with; nothing that runs a program */
	archive_read_support_filter_gzip(s->dec);
	if (archive_read_support_filter_zstd(s->dec) != ARCHIVE_OK)
		archive_clear_error(s->dec);
	archive_read_support_format_raw(s->dec);
	struct archive_entry *e;
	if (archive_read_open(s->dec, s, NULL, raw_read, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(s->dec, &e) != ARCHIVE_OK)
		return cow_import_err(o->st, s->err ? s->err : -EIO, "layer %d: %s", idx,
				      archive_error_string(s->dec) ? archive_error_string(s->dec) : "empty");
	archive_read_support_format_tar(s->tar);
	if (archive_read_open(s->tar, s, NULL, plain_read, NULL) != ARCHIVE_OK)
		return cow_import_err(o->st, s->err ? s->err : -EIO, "layer %d is not a tar archive: %s", idx,
				      archive_error_string(s->tar));
	return 0;
}

/* After the tar's end: the rest of the stream through both digests, then
 * both checked. */
static int stream_finish(struct oci *o, struct stream *s, const struct layer_src *l, int idx)
{
	const void *p;
	la_ssize_t n;
	while ((n = plain_read(s->tar, s, &p)) > 0)
		;
	if (n < 0)
		return cow_import_err(o->st, s->err ? s->err : -EIO, "layer %d: %s", idx, archive_error_string(s->dec));
	if (s->outer || s->fd >= 0)
		while ((n = raw_read(s->dec, s, &p)) > 0)
			;
	if (n < 0)
		return cow_import_err(o->st, s->err ? s->err : -EIO, "layer %d: cannot read it to its end", idx);
	char raw[COW_DIGEST_LEN + 1], plain[COW_DIGEST_LEN + 1];
	digest_of(&s->raw, raw);
	digest_of(&s->plain, plain);
	if (l->digest[0] && strcmp(raw, l->digest))
		return cow_import_err(o->st, -EIO,
				      "layer %d does not match its digest %s (it is %s): the image is damaged", idx,
				      l->digest, raw);
	if (strcmp(plain, l->diff_id))
		return cow_import_err(
		    o->st, -EIO,
		    "layer %d's content does not match its diff id %s in the config (it is %s): the image is "
		    "damaged",
		    idx, l->diff_id, plain);
	o->info->bytes += s->raw_bytes;
	return 0;
}

/* After a failure within a layer: if the blob itself does not match its
 * digest, that is the reason to give (a damaged tar, a gzip error and
 * the like follow from it). */
static bool blob_damaged(struct oci *o, struct stream *s, const struct layer_src *l, int idx)
{
	const void *p;
	la_ssize_t n;
	if (!l->digest[0] || s->err)
		return false;
	while ((n = raw_read(s->dec, s, &p)) > 0)
		;
	char raw[COW_DIGEST_LEN + 1];
	digest_of(&s->raw, raw);
	if (n < 0 || !strcmp(raw, l->digest))
		return false;
	o->where[0] = 0;
	cow_import_err(o->st, -EIO, "layer %d does not match its digest %s (it is %s): the image is damaged", idx,
		       l->digest, raw);
	return true;
}

/* ---- applying a layer through a view ---- */

struct made { /* a name this layer made: (parent, name) */
	uint64_t parent;
	char *name;
};

struct dirtime {
	uint64_t ino;
	struct timespec atime, mtime;
	bool from_entry; /* the layer's entry for it, not what it had */
	size_t seq;
};

struct apply {
	struct oci *o;
	struct cow_view *v;
	uint64_t root;
	struct made *made; /* open addressing */
	size_t nmade, capmade;
	struct dirtime *dirs;
	size_t ndirs, capdirs;
	char *xbuf;
};

static uint64_t made_hash(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ULL ^ parent;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return h;
}

static bool made_has(struct apply *ap, uint64_t parent, const char *name)
{
	if (!ap->capmade)
		return false;
	for (size_t i = made_hash(parent, name) & (ap->capmade - 1);; i = (i + 1) & (ap->capmade - 1)) {
		if (!ap->made[i].name)
			return false;
		if (ap->made[i].parent == parent && !strcmp(ap->made[i].name, name))
			return true;
	}
}

static int made_add(struct apply *ap, uint64_t parent, const char *name)
{
	if (made_has(ap, parent, name))
		return 0;
	if ((ap->nmade + 1) * 2 > ap->capmade) {
		size_t cap = ap->capmade ? ap->capmade * 2 : 1024;
		struct made *n = calloc(cap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < ap->capmade; i++) {
			if (!ap->made[i].name)
				continue;
			size_t j = made_hash(ap->made[i].parent, ap->made[i].name) & (cap - 1);
			while (n[j].name)
				j = (j + 1) & (cap - 1);
			n[j] = ap->made[i];
		}
		free(ap->made);
		ap->made = n;
		ap->capmade = cap;
	}
	char *dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	size_t i = made_hash(parent, name) & (ap->capmade - 1);
	while (ap->made[i].name)
		i = (i + 1) & (ap->capmade - 1);
	ap->made[i].parent = parent;
	ap->made[i].name = dup;
	ap->nmade++;
	return 0;
}

static int dir_time(struct apply *ap, uint64_t ino, const struct timespec *atime, const struct timespec *mtime,
		    bool from_entry)
{
	if (ap->ndirs == ap->capdirs) {
		size_t cap = ap->capdirs ? ap->capdirs * 2 : 256;
		struct dirtime *n = realloc(ap->dirs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		ap->dirs = n;
		ap->capdirs = cap;
	}
	ap->dirs[ap->ndirs++] = (struct dirtime){ino, *atime, *mtime, from_entry, 0};
	return 0;
}

/* Directories whose children changed keep the times they had, unless the
 * layer gives them others: remember each one's before its first change. */
static int touch_dir(struct apply *ap, uint64_t dir)
{
	for (size_t i = ap->ndirs; i-- > 0 && i + 64 >= ap->ndirs;)
		if (ap->dirs[i].ino == dir)
			return 0; /* recently: the common case of a directory's files in a row */
	struct cow_attr a;
	int r = cow_getattr(ap->v, dir, &a);
	if (r < 0)
		return r;
	return dir_time(ap, dir, &a.atime, &a.mtime, false);
}

static int read_names(void *arg, const char *name, const struct cow_attr *attr, off_t next)
{
	char ***names = arg;
	(void)attr;
	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	size_t n = 0;
	while ((*names)[n])
		n++;
	if ((n & (n + 1)) == 0 || n < 15) { /* grow at 15, 31, 63, ... */
		char **g = realloc(*names, (n < 15 ? 16 : (n + 1) * 2) * sizeof(char *));
		if (!g)
			return -ENOMEM;
		*names = g;
	}
	(*names)[n] = strdup(name);
	(*names)[n + 1] = NULL;
	return (*names)[n] ? 0 : -ENOMEM;
}

/* The names in directory @dir, NULL-terminated. */
static int list_dir(struct apply *ap, uint64_t dir, char ***ret)
{
	struct cow_dirh *d;
	char **names = calloc(16, sizeof(char *));
	if (!names)
		return -ENOMEM;
	int r = cow_opendir(ap->v, dir, &d);
	if (r == 0) {
		r = cow_readdir(d, 0, false, read_names, &names);
		cow_releasedir(d);
	}
	if (r < 0) {
		for (size_t i = 0; names[i]; i++)
			free(names[i]);
		free(names);
		return r;
	}
	*ret = names;
	return 0;
}

static void free_names(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

/* Remove @name of @parent, a directory with all it holds. */
static int remove_tree(struct apply *ap, uint64_t parent, const char *name)
{
	struct cow_attr a;
	int r = cow_lookup(ap->v, parent, name, &a);
	if (r < 0)
		return r;
	cow_forget(ap->v, a.ino, 1);
	r = touch_dir(ap, parent);
	if (r < 0)
		return r;
	if (!S_ISDIR(a.mode))
		return cow_unlink(ap->v, parent, name);
	char **names;
	r = list_dir(ap, a.ino, &names);
	for (size_t i = 0; r == 0 && names[i]; i++)
		r = remove_tree(ap, a.ino, names[i]);
	if (r == 0)
		free_names(names);
	else if (r != -ENOMEM)
		free_names(names);
	return r < 0 ? r : cow_rmdir(ap->v, parent, name);
}

/* Split @path into its parent directory (found, or made as a directory
 * owned by root) and last name.  *ret_name is NULL for the root. */
static int resolve(struct apply *ap, const char *path, bool make, uint64_t *ret_parent, char *name,
		   const char **ret_name)
{
	uint64_t cur = ap->root;
	const char *p = path;
	*ret_name = NULL;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > COW_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(name, p, len);
		name[len] = 0;
		p += len;
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, ".."))
			return cow_import_err(ap->o->st, -EINVAL, "'..' in a path");
		while (*p == '/')
			p++;
		if (!*p) { /* the last name */
			*ret_parent = cur;
			*ret_name = name;
			return 0;
		}
		struct cow_attr a;
		int r = cow_lookup(ap->v, cur, name, &a);
		if (r == -ENOENT && make) {
			struct cow_cred root = {0, 0, 0};
			r = touch_dir(ap, cur);
			if (r == 0)
				r = cow_mkdir(ap->v, cur, name, S_IFDIR | 0755, &root, &a);
			if (r == 0)
				r = made_add(ap, cur, name);
		}
		if (r < 0)
			return r;
		cow_forget(ap->v, a.ino, 1);
		if (!S_ISDIR(a.mode))
			return cow_import_err(ap->o->st, -ENOTDIR, "a path through '%s', which is not a directory",
					      name);
		cur = a.ino;
	}
	*ret_parent = cur;
	return 0;
}

/* The object at @path (a hardlink's target). */
static int resolve_ino(struct apply *ap, const char *path, struct cow_attr *ret)
{
	char name[COW_NAME_MAX + 1];
	const char *last;
	uint64_t parent;
	int r = resolve(ap, path, false, &parent, name, &last);
	if (r < 0)
		return r;
	if (!last)
		return cow_getattr(ap->v, parent, ret);
	r = cow_lookup(ap->v, parent, last, ret);
	if (r == 0)
		cow_forget(ap->v, ret->ino, 1);
	return r;
}

/* An ACL the tar gives as such (GNU tar --acls: SCHILY.acl.*), in the
 * kernel's xattr format: version 2, then (tag, perm, id) entries sorted
 * by tag and id. */
static int acl_cmp(const void *x, const void *y)
{
	const uint8_t *a = x, *b = y;
	uint16_t ta, tb;
	uint32_t ia, ib;
	memcpy(&ta, a, 2);
	memcpy(&tb, b, 2);
	memcpy(&ia, a + 4, 4);
	memcpy(&ib, b + 4, 4);
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return ia < ib ? -1 : ia > ib;
}

/* The id of user or group @name as the image's /etc/passwd or /etc/group
 * (what the layers beneath and this one so far hold) says: a tar names
 * the users of an ACL as the host that wrote it knew them. */
static int name_id(struct apply *ap, bool group, const char *name, uint32_t *ret)
{
	char *end;
	unsigned long n = strtoul(name, &end, 10);
	if (*name && !*end && n < UINT32_MAX) {
		*ret = (uint32_t)n;
		return 0;
	}
	const char *db = group ? "etc/group" : "etc/passwd";
	struct cow_attr a;
	struct cow_file *f;
	int r = resolve_ino(ap, db, &a);
	if (r == 0 && (!S_ISREG(a.mode) || a.size > (1 << 20)))
		r = -EINVAL;
	char *buf = r == 0 ? malloc((size_t)a.size + 1) : NULL;
	if (r == 0 && !buf)
		r = -ENOMEM;
	if (r == 0)
		r = cow_open(ap->v, a.ino, O_RDONLY, &f);
	if (r == 0) {
		ssize_t got = cow_read(f, buf, (size_t)a.size, 0);
		cow_release(f);
		r = got < 0 ? (int)got : 0;
		if (r == 0)
			buf[got] = 0;
	}
	size_t len = strlen(name);
	for (char *line = buf; r == 0 && line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		/* name:x:ID:... */
		char *c = strchr(line, ':');
		if (!c || (size_t)(c - line) != len || strncmp(line, name, len))
			continue;
		c = strchr(c + 1, ':');
		n = c ? strtoul(c + 1, &end, 10) : UINT32_MAX;
		if (c && end > c + 1 && *end == ':' && n < UINT32_MAX) {
			free(buf);
			*ret = (uint32_t)n;
			return 0;
		}
	}
	free(buf);
	return cow_import_err(ap->o->st, -EINVAL, "its ACL names %s '%.64s', whom the image's /%s does not know",
			      group ? "group" : "user", name, db);
}

static int set_acl(struct apply *ap, uint64_t ino, struct archive_entry *e, int type, const char *xname)
{
	int n = archive_entry_acl_reset(e, type);
	if (n <= 0)
		return 0;
	if (n > 1024)
		return cow_import_err(ap->o->st, -E2BIG, "an ACL of %d entries", n);
	uint8_t *buf = malloc(4 + (size_t)n * 8), *p = buf + 4;
	if (!buf)
		return -ENOMEM;
	uint32_t version = 2;
	memcpy(buf, &version, 4);
	int t, perm, tag, id, k = 0;
	const char *name;
	while (k < n && archive_entry_acl_next(e, type, &t, &perm, &tag, &id, &name) == ARCHIVE_OK) {
		uint16_t kt, kp = (uint16_t)(perm & 7);
		uint32_t kid = UINT32_MAX;
		switch (tag) {
		case ARCHIVE_ENTRY_ACL_USER_OBJ:
			kt = 0x01;
			break;
		case ARCHIVE_ENTRY_ACL_USER:
			kt = 0x02;
			break;
		case ARCHIVE_ENTRY_ACL_GROUP_OBJ:
			kt = 0x04;
			break;
		case ARCHIVE_ENTRY_ACL_GROUP:
			kt = 0x08;
			break;
		case ARCHIVE_ENTRY_ACL_MASK:
			kt = 0x10;
			break;
		case ARCHIVE_ENTRY_ACL_OTHER:
			kt = 0x20;
			break;
		default:
			continue; /* NFSv4 ACLs: nothing Linux keeps as a POSIX ACL */
		}
		int r = 0;
		if ((kt == 0x02 || kt == 0x08) && id >= 0)
			kid = (uint32_t)id;
		else if (kt == 0x02 || kt == 0x08)
			r = name ? name_id(ap, kt == 0x08, name, &kid)
				 : cow_import_err(ap->o->st, -EINVAL, "its ACL names no one");
		if (r < 0) {
			free(buf);
			return r;
		}
		memcpy(p, &kt, 2);
		memcpy(p + 2, &kp, 2);
		memcpy(p + 4, &kid, 4);
		p += 8;
		k++;
	}
	qsort(buf + 4, (size_t)k, 8, acl_cmp);
	int r = k ? cow_setxattr(ap->v, ino, xname, buf, 4 + (size_t)k * 8, 0) : 0;
	free(buf);
	if (r < 0)
		return cow_import_err(ap->o->st, r, "its ACL: %s", strerror(-r));
	return 0;
}

/* An object's xattrs become exactly the entry's: none of what it had
 * before or inherited at its creation (a default ACL's) stays. */
static int set_xattrs(struct apply *ap, uint64_t ino, struct archive_entry *e)
{
	int r;
	ssize_t n = cow_listxattr(ap->v, ino, ap->xbuf, 65536);
	if (n < 0)
		return (int)n;
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(ap->xbuf + off) + 1) {
		r = cow_removexattr(ap->v, ino, ap->xbuf + off);
		if (r < 0 && r != -ENODATA)
			return r;
	}
	const char *name;
	const void *value;
	size_t size;
	bool access = false, def = false;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		r = cow_setxattr(ap->v, ino, name, value, size, 0);
		if (r < 0)
			return cow_import_err(ap->o->st, r, "its xattr '%.64s' (%zu bytes): %s", name, size,
					      strerror(-r));
		access |= !strcmp(name, "system.posix_acl_access");
		def |= !strcmp(name, "system.posix_acl_default");
	}
	r = access ? 0 : set_acl(ap, ino, e, ARCHIVE_ENTRY_ACL_TYPE_ACCESS, "system.posix_acl_access");
	if (r == 0 && !def)
		r = set_acl(ap, ino, e, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, "system.posix_acl_default");
	return r;
}

static void entry_times(struct archive_entry *e, struct cow_attr *a)
{
	a->mtime.tv_sec = archive_entry_mtime(e);
	a->mtime.tv_nsec = archive_entry_mtime_nsec(e);
	a->atime = a->mtime;
	if (archive_entry_atime_is_set(e)) {
		a->atime.tv_sec = archive_entry_atime(e);
		a->atime.tv_nsec = archive_entry_atime_nsec(e);
	}
	a->ctime = a->mtime;
	if (archive_entry_ctime_is_set(e)) {
		a->ctime.tv_sec = archive_entry_ctime(e);
		a->ctime.tv_nsec = archive_entry_ctime_nsec(e);
	}
}

/* Owner, mode, xattrs, then times: what an extraction ends with. */
static int set_meta(struct apply *ap, uint64_t ino, struct archive_entry *e)
{
	struct cow_attr a = {0};
	a.mode = archive_entry_mode(e);
	a.uid = (uint32_t)archive_entry_uid(e);
	a.gid = (uint32_t)archive_entry_gid(e);
	int set = COW_SET_UID | COW_SET_GID | (S_ISLNK(a.mode) ? 0 : COW_SET_MODE);
	struct cow_attr out;
	int r = cow_setattr(ap->v, ino, &a, set, &out);
	if (r == 0)
		r = set_xattrs(ap, ino, e);
	if (r < 0)
		return r;
	entry_times(e, &a);
	if (S_ISDIR(a.mode)) /* once the layer is done: its children change it meanwhile */
		return dir_time(ap, ino, &a.atime, &a.mtime, true);
	return cow_setattr(ap->v, ino, &a, COW_SET_ATIME | COW_SET_MTIME | COW_SET_CTIME, &out);
}

static int write_data(struct apply *ap, struct stream *s, struct cow_file *f, int64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(s->tar, &buf, &len, &off)) == ARCHIVE_OK) {
		for (size_t done = 0; done < len;) {
			ssize_t n = cow_write(f, (const char *)buf + done, len - done, (off_t)(off + (la_int64_t)done));
			if (n < 0)
				return (int)n;
			if (n == 0)
				return -ENOSPC;
			done += (size_t)n;
		}
		if (s->o->progress && s->o->done - s->since_tick >= (4 << 20)) {
			s->since_tick = s->o->done;
			if (s->o->progress(s->o->arg, "import", s->o->done, s->o->total))
				return -ECANCELED;
		}
	}
	if (r != ARCHIVE_EOF)
		return cow_import_err(ap->o->st, s->err ? s->err : -EIO, "its data: %s", archive_error_string(s->tar));
	struct cow_attr a = {.size = size}, out;
	return cow_setattr(ap->v, cow_file_ino(f), &a, COW_SET_SIZE, &out); /* a hole at the end, too */
}

/* A `.wh.` entry: @target (or, for the opaque marker, everything) of the
 * layers beneath goes from @dir. */
static int whiteout(struct apply *ap, uint64_t dir, const char *target)
{
	if (target) {
		if (cow_check_name(target) < 0)
			return cow_import_err(ap->o->st, -EINVAL, "a whiteout of no name");
		if (made_has(ap, dir, target))
			return 0;
		int r = remove_tree(ap, dir, target);
		if (r == 0)
			ap->o->info->removed++;
		return r == -ENOENT ? 0 : r;
	}
	char **names;
	int r = list_dir(ap, dir, &names);
	for (size_t i = 0; r == 0 && names[i]; i++) {
		if (made_has(ap, dir, names[i]))
			continue;
		r = remove_tree(ap, dir, names[i]);
		if (r == 0)
			ap->o->info->removed++;
	}
	free_names(names);
	return r;
}

static int apply_entry(struct apply *ap, struct stream *s, struct archive_entry *e)
{
	const char *path = archive_entry_pathname(e);
	char name[COW_NAME_MAX + 1];
	const char *last;
	uint64_t dir;
	int r;

	if (!path || !*path)
		return cow_import_err(ap->o->st, -EINVAL, "an entry without a name");
	if (strlen(path) > TAR_PATH_MAX)
		return cow_import_err(ap->o->st, -ENAMETOOLONG, "a path longer than %d bytes", TAR_PATH_MAX);
	if (archive_entry_uid(e) < 0 || archive_entry_uid(e) >= UINT32_MAX || archive_entry_gid(e) < 0 ||
	    archive_entry_gid(e) >= UINT32_MAX)
		return cow_import_err(ap->o->st, -EINVAL, "an owner that is no Linux id (%lld:%lld)",
				      (long long)archive_entry_uid(e), (long long)archive_entry_gid(e));
	r = resolve(ap, path, true, &dir, name, &last);
	if (r < 0)
		return r;
	mode_t type = archive_entry_filetype(e);
	const char *link = archive_entry_hardlink(e);
	if (!last) { /* the root itself */
		if (type != AE_IFDIR || link)
			return cow_import_err(ap->o->st, -EINVAL, "the root is not a directory");
		return set_meta(ap, dir, e);
	}
	if (!strncmp(last, ".wh.", 4)) {
		if (!strcmp(last, ".wh..wh..opq"))
			return whiteout(ap, dir, NULL);
		if (!strncmp(last, ".wh..wh.", 8))
			return 0; /* aufs' own bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing of the image */
		return whiteout(ap, dir, last + 4);
	}

	struct cow_attr old, a;
	bool exists = (r = cow_lookup(ap->v, dir, last, &old)) == 0;
	if (r < 0 && r != -ENOENT)
		return r;
	if (exists)
		cow_forget(ap->v, old.ino, 1);
	r = touch_dir(ap, dir);
	if (r < 0)
		return r;
	if (type == AE_IFDIR && !link && exists && S_ISDIR(old.mode)) {
		ap->o->info->objects++;
		return set_meta(ap, old.ino, e); /* a directory merges with the one beneath */
	}
	if (link) {
		struct cow_attr t;
		r = resolve_ino(ap, link, &t);
		if (r < 0)
			return cow_import_err(ap->o->st, r, "a hard link to '%.1000s', %s", link,
					      r == -ENOENT ? "which is not there" : strerror(-r));
		if (S_ISDIR(t.mode))
			return cow_import_err(ap->o->st, -EPERM, "a hard link to the directory '%.1000s'", link);
		if (exists && old.ino == t.ino)
			return 0;
	}
	if (exists) {
		r = remove_tree(ap, dir, last);
		if (r < 0)
			return r;
	}
	struct cow_cred cred = {(uint32_t)archive_entry_uid(e), (uint32_t)archive_entry_gid(e), 0};
	mode_t mode = archive_entry_mode(e);
	ap->o->info->objects++;
	if (link) {
		struct cow_attr t;
		r = resolve_ino(ap, link, &t);
		if (r == 0)
			r = cow_link(ap->v, t.ino, dir, last, &a);
		if (r == 0)
			cow_forget(ap->v, a.ino, 1);
		return r < 0 ? r : made_add(ap, dir, last);
	}
	switch (type) {
	case AE_IFREG: {
		struct cow_file *f;
		r = cow_create(ap->v, dir, last, S_IFREG | (mode & 07777), O_WRONLY | O_EXCL, &cred, &f, &a);
		if (r < 0)
			return r;
		r = write_data(ap, s, f, archive_entry_size(e));
		int c = cow_release(f);
		if (r == 0)
			r = c;
		break;
	}
	case AE_IFDIR:
		r = cow_mkdir(ap->v, dir, last, S_IFDIR | (mode & 07777), &cred, &a);
		break;
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target || strlen(target) >= 4096)
			return cow_import_err(ap->o->st, -EINVAL,
					      "a symbolic link with no target, or one past 4095 bytes");
		r = cow_symlink(ap->v, dir, last, target, &cred, &a);
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
	case AE_IFSOCK:
		r = cow_mknod(ap->v, dir, last, type | (mode & 07777), archive_entry_rdev(e), &cred, &a);
		break;
	default:
		return cow_import_err(ap->o->st, -EINVAL, "an entry of unknown type 0%o", (unsigned)type);
	}
	if (r < 0)
		return r;
	r = set_meta(ap, a.ino, e);
	cow_forget(ap->v, a.ino, 1);
	return r < 0 ? r : made_add(ap, dir, last);
}

static int dirtime_cmp(const void *x, const void *y)
{
	const struct dirtime *a = x, *b = y;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The directories' times, once the layer is done: for each, what its
 * latest entry said, or without one what it had before its first change. */
static int set_dir_times(struct apply *ap)
{
	for (size_t i = 0; i < ap->ndirs; i++)
		ap->dirs[i].seq = i;
	qsort(ap->dirs, ap->ndirs, sizeof(*ap->dirs), dirtime_cmp);
	for (size_t i = 0, j; i < ap->ndirs; i = j) {
		const struct dirtime *pick = &ap->dirs[i];
		for (j = i; j < ap->ndirs && ap->dirs[j].ino == ap->dirs[i].ino; j++)
			if (ap->dirs[j].from_entry)
				pick = &ap->dirs[j];
		struct cow_attr a = {.atime = pick->atime, .mtime = pick->mtime}, out;
		int r = cow_setattr(ap->v, pick->ino, &a, COW_SET_ATIME | COW_SET_MTIME, &out);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	return 0;
}

/* Layer @idx of the image (@l) into the new layer @layer, whose lock
 * @lockfd the caller holds, through a writable view of it. */
static int apply_layer(struct oci *o, const struct layer_src *l, int idx, uint64_t layer, int lockfd)
{
	struct stream s;
	struct apply ap = {.o = o};
	int r = stream_open(o, l, idx, &s);
	if (r == 0)
		r = cow_view_open_layer(o->st, layer, lockfd, &ap.v);
	if (r == 0) {
		cow_view_set_caller_times(ap.v, true);
		ap.root = cow_view_root(ap.v);
		ap.xbuf = malloc(65536);
		if (!ap.xbuf)
			r = -ENOMEM;
		uint64_t n = 0;
		while (r == 0) {
			struct archive_entry *e;
			int a = archive_read_next_header(s.tar, &e);
			if (a == ARCHIVE_EOF)
				break;
			if (a != ARCHIVE_OK && a != ARCHIVE_WARN) {
				r = cow_import_err(o->st, s.err ? s.err : -EIO, "layer %d: %s", idx,
						   archive_error_string(s.tar));
				break;
			}
			r = apply_entry(&ap, &s, e);
			if (r < 0 && r != -ECANCELED) {
				const char *p = archive_entry_pathname(e);
				snprintf(o->where, sizeof(o->where), "layer %d, '%.4096s'", idx, p ? p : "");
			}
			if (r == 0 && ++n % 256 == 0 && o->progress && o->progress(o->arg, "import", o->done, o->total))
				r = -ECANCELED;
		}
		if (r == 0)
			r = set_dir_times(&ap);
		if (r == 0)
			r = stream_finish(o, &s, l, idx);
		else if (r != -ECANCELED && blob_damaged(o, &s, l, idx))
			r = -EIO;
		int c = cow_view_close(ap.v);
		if (r == 0)
			r = c;
	}
	stream_close(&s);
	for (size_t i = 0; i < ap.capmade; i++)
		free(ap.made[i].name);
	free(ap.made);
	free(ap.dirs);
	free(ap.xbuf);
	return r;
}

/* A new dead layer on @parent (0: a base, with a new root directory),
 * locked into *ret_lockfd before anyone may see it. */
static int layer_new(struct cow_store *st, uint64_t parent, uint64_t *root, uint64_t *ret_id, int *ret_lockfd)
{
	struct cow_db *db = st->db;
	int r, lockfd = -1;
	uint64_t id = 0;
	cow_db_lock(db);
	r = cow_db_begin(db);
	if (r == 0 && !parent)
		r = cow_db_alloc_inos(db, 1, root);
	if (r == 0)
		r = cow_db_layer_add(db, parent, COW_LAYER_DEAD, *root, &id);
	if (r == 0 && !parent) {
		int64_t now = cow_now_ns();
		struct cow_irow row = {
		    .ino = *root, .mode = S_IFDIR | 0755, .nlink = 2, .atime = now, .mtime = now, .ctime = now};
		r = cow_db_inode_put(db, id, &row);
	}
	if (r == 0)
		r = cow_layer_lock(st, id, &lockfd);
	if (r == 0)
		r = cow_db_commit(db, false);
	else
		cow_db_rollback(db);
	cow_db_unlock(db);
	/* what a crash may have left under this id before it was committed */
	if (r == 0)
		r = cow_data_remove_layer(st, id);
	if (r < 0) {
		if (lockfd >= 0)
			close(lockfd);
		return r;
	}
	*ret_id = id;
	*ret_lockfd = lockfd;
	return 0;
}

/* Name the image: its new layers become image layers known by their chain
 * ids, all in one transaction; its top layer is @top (the last new one,
 * or the shared @base). */
static int name_image(struct oci *o, const char *name, const struct image_src *im, int have, uint64_t base,
		      const uint64_t *built, int nbuilt, uint64_t root)
{
	struct cow_store *st = o->st;
	struct cow_db *db = st->db;
	struct cow_layer_info li;
	uint64_t dummy, top = nbuilt ? built[nbuilt - 1] : base;
	char other[COW_ENTITY_NAME_MAX + 1];
	if (syncfs(st->datafd) < 0) /* every file of it on disk before it is an image */
		return -errno;
	cow_db_lock(db);
	int r = cow_db_begin(db);
	if (r == 0 && cow_db_image_get(db, name, &dummy) == 0)
		r = -EEXIST;
	if (r == 0 && have && (cow_db_layer_get(db, base, &li) < 0 || li.kind != COW_LAYER_IMAGE))
		r = cow_import_err(o->st, -ESTALE,
				   "the layer it shares with another image was removed meanwhile; import it again");
	for (int i = 0; r == 0 && i < nbuilt; i++) {
		r = cow_db_layer_set_kind(db, built[i], COW_LAYER_IMAGE);
		if (r == 0)
			r = cow_db_layer_set_digest(db, built[i], im->layers[have + i].chain);
	}
	/* the whole image is another's already: a layer of its own, empty */
	if (r == 0 && !nbuilt && cow_db_image_by_layer(db, top, other) == 0)
		r = cow_db_layer_add(db, top, COW_LAYER_IMAGE, root, &top);
	if (r == 0)
		r = cow_db_image_add(db, name, top);
	if (r == 0)
		r = cow_db_commit(db, true);
	else
		cow_db_rollback(db);
	cow_db_unlock(db);
	return r;
}

static void drop_layers(struct cow_store *st, const uint64_t *built, int *locks, int nbuilt)
{
	struct cow_db *db = st->db;
	for (int i = nbuilt; i-- > 0;) {
		/* if this fails, gc finds the layer dead */
		cow_db_lock(db);
		if (cow_db_begin(db) == 0) {
			if (cow_db_layer_drop_rows(db, built[i]) == 0 && cow_db_layer_del(db, built[i]) == 0)
				cow_db_commit(db, false);
			else
				cow_db_rollback(db);
		}
		cow_db_unlock(db);
		cow_layer_abandon(st, built[i], locks[i]);
		locks[i] = -1;
	}
}

static void chain_ids(struct image_src *im)
{
	for (int i = 0; i < im->n; i++) {
		struct layer_src *l = &im->layers[i];
		if (i == 0) {
			snprintf(l->chain, sizeof(l->chain), "%s", l->diff_id);
			continue;
		}
		struct sha256_ctx c;
		sha256_init(&c);
		sha256_update(&c, strlen(im->layers[i - 1].chain), (const uint8_t *)im->layers[i - 1].chain);
		sha256_update(&c, 1, (const uint8_t *)" ");
		sha256_update(&c, strlen(l->diff_id), (const uint8_t *)l->diff_id);
		digest_of(&c, l->chain);
	}
}

int cow_image_import_oci(struct cow_store *st, const char *name, int kind, const char *path, const char *ref,
			 const char *arch, cow_progress_fn progress, void *arg, struct cow_oci_info *ret_info)
{
	struct cow_oci_info info = {0};
	struct oci o = {
	    .st = st, .kind = kind, .path = path, .dirfd = -1, .progress = progress, .arg = arg, .info = &info};
	struct image_src im = {0};
	uint64_t *built = NULL, base = 0, root = 0, dummy;
	int *locks = NULL, nbuilt = 0, have = 0, basefd = -1;
	struct stat sb;

	int r = cow_import_check(st, name, path);
	if (r < 0)
		return r;
	if (kind != COW_OCI_LAYOUT && kind != COW_OCI_DOCKER_ARCHIVE)
		return -EINVAL;
	if ((ref && strlen(ref) > 255) || (arch && strlen(arch) > 31))
		return -ENAMETOOLONG;
	if (kind == COW_OCI_LAYOUT) {
		o.dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (o.dirfd < 0)
			return -errno;
	} else if (stat(path, &sb) < 0) {
		return -errno;
	} else if (!S_ISREG(sb.st_mode)) {
		return S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
	}
	r = kind == COW_OCI_LAYOUT ? find_layout_image(&o, ref, arch, &im) : find_archive_image(&o, ref, &im);
	if (r < 0)
		goto out;
	snprintf(info.arch, sizeof(info.arch), "%s", im.arch);
	chain_ids(&im);
	cow_db_lock(st->db);
	if (cow_db_image_get(st->db, name, &dummy) == 0)
		r = -EEXIST;
	/* the longest chain of its layers the store holds: a chain id stands
	 * for every layer beneath, too */
	for (int i = im.n; r == 0 && i-- > 0;)
		if (cow_db_layer_by_digest(st->db, im.layers[i].chain, &base) == 0) {
			have = i + 1;
			break;
		}
	struct cow_layer_info li;
	if (r == 0 && have && (r = cow_db_layer_get(st->db, base, &li)) == 0)
		root = li.root;
	cow_db_unlock(st->db);
	/* shared, as readers of an image hold it: neither removed nor reclaimed meanwhile */
	if (r == 0 && have) {
		r = cow_layer_lock_shared(st, base, &basefd);
		if (r == -EBUSY)
			r = cow_import_err(o.st, -EBUSY, "the layer it shares with another image is being removed");
	}
	if (r < 0)
		goto out;
	info.layers = (uint32_t)im.n;
	info.shared = (uint32_t)have;
	for (int i = have; i < im.n; i++)
		o.total += im.layers[i].size > 0 ? (uint64_t)im.layers[i].size : 0;
	if (kind == COW_OCI_DOCKER_ARCHIVE)
		o.total = 0; /* sizes unknown until read */
	built = calloc((size_t)im.n, sizeof(*built));
	locks = calloc((size_t)im.n, sizeof(*locks));
	if (!built || !locks) {
		r = -ENOMEM;
		goto out;
	}
	uint64_t parent = base;
	for (int i = have; r == 0 && i < im.n; i++) {
		r = layer_new(st, parent, &root, &built[nbuilt], &locks[nbuilt]);
		if (r < 0)
			break;
		parent = built[nbuilt++];
		r = apply_layer(&o, &im.layers[i], i + 1, parent, locks[nbuilt - 1]);
	}
	if (r == 0 && progress && progress(arg, "import", o.done, o.done))
		r = -ECANCELED;
	if (r == 0)
		r = name_image(&o, name, &im, have, base, built, nbuilt, root);
	if (r < 0)
		drop_layers(st, built, locks, nbuilt);
out:
	if (r < 0 && r != -ECANCELED && r != -EEXIST) {
		char m[sizeof(st->errmsg)];
		snprintf(m, sizeof(m), "%s", st->errmsg[0] ? st->errmsg : strerror(-r));
		if (o.where[0])
			snprintf(st->errmsg, sizeof(st->errmsg), "cannot import '%.200s': %.600s: %.400s", path,
				 o.where, m);
		else
			snprintf(st->errmsg, sizeof(st->errmsg), "cannot import '%.200s': %.800s", path, m);
	}
	for (int i = 0; locks && i < nbuilt; i++)
		if (locks[i] >= 0)
			close(locks[i]);
	if (basefd >= 0)
		close(basefd);
	if (o.dirfd >= 0)
		close(o.dirfd);
	free(built);
	free(locks);
	free(im.layers);
	if (r == 0 && ret_info)
		*ret_info = info;
	return r;
}
