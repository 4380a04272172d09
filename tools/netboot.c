/* SPDX-License-Identifier: MIT */
/*
 * `cowroot netboot sdcard` and `cowroot netboot dnsmasq`: what a fleet
 * needs besides `cowroot serve` to boot from the network.
 *
 * sdcard writes the Pi's SD card for the u-boot flow: the Pi firmware
 * starts u-boot, whose universal boot.scr asks the DHCP server for an
 * address and fetches netboot-<serial or MAC>.scr, made for that Pi by
 * cowroot serve's TFTP server.  Nothing on the card names a client.
 * dnsmasq prints a DHCP configuration for the fleet from the store.
 *
 * Every value that goes into a script or a configuration is checked
 * against a strict character set (a newline would start a command or a
 * setting of its own), whether it comes from the command line or the
 * store; files are written through a temporary file and renameat(2),
 * never through a symlink.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootfs.h"
#include "cli.h"
#include "cowroot.h"
#include "serve.h"

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* NULL if @v is 1 to @max bytes, each of ALNUM or @more, else why not */
static const char *bad_chars(const char *v, size_t max, const char *more, const char *why)
{
	size_t n = strlen(v), k = strspn(v, ALNUM);
	while (k < n && strchr(more, v[k]))
		k += 1 + strspn(v + k + 1, ALNUM);
	static char len_why[32];
	snprintf(len_why, sizeof(len_why), "1 to %zu bytes", max);
	if (n == 0 || n > max)
		return len_why;
	return k == n ? NULL : why;
}

/* An IPv4 address in dotted-quad form, as u-boot's serverip and dnsmasq
 * take it; *@ret (when not NULL) gets it. */
static bool ipv4_ok(const char *v, struct in_addr *ret)
{
	struct in_addr a;
	if (strlen(v) > 15 || strspn(v, "0123456789.") != strlen(v) || inet_pton(AF_INET, v, &a) != 1)
		return false;
	if (ret)
		*ret = a;
	return true;
}

static const char *bad_server(const char *v)
{
	return ipv4_ok(v, NULL) ? NULL
				: "an IPv4 address (a.b.c.d), as u-boot's serverip and DHCP's next-server take it";
}

static bool bad_value(const char *option, const char *v, const char *why)
{
	if (!why)
		return false;
	char shown[80];
	shown_value(shown, sizeof(shown), v, strlen(v), 64);
	err("invalid %s '%s': %s", option, shown, why);
	return true;
}

/* ---- the SD card ---- */

#define FILE_MAX (64 << 20) /* the largest file copied to the card (start*.elf: 5 MB) */

/* The first line of the boot.cmd this command writes: a DIR whose boot.cmd
 * starts with it holds an earlier card of ours. */
#define BOOT_CMD_MARK "# cowroot: the universal u-boot script of the SD card"

/* The u-boot script of the card.  u-boot's tftpboot reads "A:B" as server
 * A, file B: the file name is given with the server in front, so that a
 * MAC's colons stay in the name. */
static char *boot_cmd(const char *server)
{
	char set_server[64] = "";
	if (server)
		snprintf(set_server, sizeof(set_server), "\tsetenv serverip %s\n", server);
	char *s = NULL;
	if (asprintf(&s,
		     BOOT_CMD_MARK
		     " (boot.scr is this,\n"
		     "# compiled), written by 'cowroot netboot sdcard'.  Nothing in it names a\n"
		     "# client: the cowroot server's TFTP hands each Pi its own script,\n"
		     "# netboot-<serial>.scr (netboot-<MAC>.scr where u-boot has no serial#),\n"
		     "# made from the store when it is fetched.\n"
		     "setenv autoload no\n"
		     "if dhcp; then\n"
		     "%s"
		     "\tif test -n \"${serial#}\"; then\n"
		     "\t\tsetenv cowroot_id ${serial#}\n"
		     "\t\tsetenv cowroot_set \"serial ${serial#}\"\n"
		     "\telse\n"
		     "\t\tsetenv cowroot_id ${ethaddr}\n"
		     "\t\tsetenv cowroot_set \"mac ${ethaddr}\"\n"
		     "\tfi\n"
		     "\tif test -z \"${serverip}\"; then\n"
		     "\t\techo \"cowroot: the DHCP answer names no TFTP server (next-server):\"\n"
		     "\t\techo \"cowroot: write the card with 'cowroot netboot sdcard DIR --server ADDR'\"\n"
		     "\telse\n"
		     "\t\techo \"cowroot: fetching netboot-${cowroot_id}.scr from ${serverip}\"\n"
		     "\t\tif tftpboot ${scriptaddr} ${serverip}:netboot-${cowroot_id}.scr; then\n"
		     "\t\t\tsource ${scriptaddr}\n"
		     "\t\t\techo \"cowroot: netboot-${cowroot_id}.scr returned without booting a kernel\"\n"
		     "\t\telse\n"
		     "\t\t\techo \"cowroot: ${serverip} has no script for this Pi: is 'cowroot serve' running,\"\n"
		     "\t\t\techo \"cowroot: and is a client known by it? On the server, run\"\n"
		     "\t\t\techo \"cowroot:   cowroot client set NAME --${cowroot_set}\"\n"
		     "\t\tfi\n"
		     "\tfi\n"
		     "else\n"
		     "\techo \"cowroot: no DHCP answer: is the DHCP server up (cowroot netboot dnsmasq)?\"\n"
		     "fi\n",
		     set_server) < 0)
		return NULL;
	return s;
}

/* The u-boot builds of Debian's u-boot-rpi for the card: the directory
 * below /usr/lib/u-boot, the name on the card, and the config.txt filter
 * of the models it is for ("" for every other one). */
struct uboot_target {
	const char *dir, *card, *filter;
};

static const struct uboot_target uboot_arm64[] = {
    {"rpi_arm64", "u-boot-rpi_arm64.bin", ""}, /* the 3 and 4 families, 400, CM3/CM4 */
    {"rpi_3", "u-boot-rpi_3.bin", "pi3"},
    {"rpi_4", "u-boot-rpi_4.bin", "pi4"},
};
static const struct uboot_target uboot_arm[] = {
    {"rpi_2", "u-boot-rpi_2.bin", ""},
    {"rpi_3_32b", "u-boot-rpi_3_32b.bin", "pi3"},
    {"rpi_4_32b", "u-boot-rpi_4_32b.bin", "pi4"},
};

struct card {
	int dfd;	 /* DIR */
	const char *dir; /* its name, for messages */
	unsigned written;
	bool failed;
};

/* Read all of regular file @path (at most FILE_MAX bytes) into a new buffer. */
static int read_whole(const char *path, char **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : st.st_size > FILE_MAX ? -EFBIG : 0;
	if (r < 0) {
		close(fd);
		return r;
	}
	size_t size = (size_t)st.st_size, done = 0;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (done < size) {
		ssize_t k = read(fd, buf + done, size - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : EIO; /* shrank while read */
			free(buf);
			close(fd);
			return -e;
		}
		done += (size_t)k;
	}
	close(fd);
	*ret = buf;
	*ret_len = size;
	return 0;
}

static void card_put(struct card *c, int dfd, const char *sub, const char *name, const char *data, size_t len)
{
	int r = write_file_at(dfd, name, data, len, 0644);
	if (r < 0) {
		err("cannot write '%s/%s%s': %s", c->dir, sub, name, strerror(-r));
		c->failed = true;
	} else {
		c->written++;
	}
}

/* Copy @path to @name in @dfd (DIR or DIR/@sub/). */
static void card_copy(struct card *c, int dfd, const char *sub, const char *name, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int r = read_whole(path, &data, &len);
	if (r < 0) {
		err("cannot read '%s': %s", path, r == -EINVAL ? "not a regular file" : strerror(-r));
		c->failed = true;
		return;
	}
	card_put(c, dfd, sub, name, data, len);
	free(data);
}

/* A name the card may take from a package's directory: A-Z a-z 0-9 . _ + -,
 * not starting with '.' */
static bool card_name_ok(const char *name)
{
	return name[0] != '.' && !bad_chars(name, 128, "._+-", "");
}

/* Copy to @dfd the files of @dir whose names match @pattern (fnmatch);
 * returns how many. */
static unsigned card_copy_glob(struct card *c, int dfd, const char *sub, const char *dir, const char *pattern)
{
	char pat[PATH_MAX];
	glob_t g;
	unsigned n = 0;
	if (snprintf(pat, sizeof(pat), "%s/%s", dir, pattern) >= (int)sizeof(pat) || glob(pat, 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *name = strrchr(g.gl_pathv[i], '/') + 1;
		struct stat st;
		if (!card_name_ok(name) || stat(g.gl_pathv[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		card_copy(c, dfd, sub, name, g.gl_pathv[i]);
		n++;
	}
	globfree(&g);
	return n;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The device trees of the newest Debian kernel installed here:
 * /usr/lib/linux-image-VERSION(/broadcom for arm64), NULL if none. */
static char *default_dtb_dir(bool arm64)
{
	glob_t g;
	char *found = NULL;
	if (glob(arm64 ? "/usr/lib/linux-image-*/broadcom" : "/usr/lib/linux-image-*", 0, NULL, &g) != 0)
		return NULL;
	/* glob sorts by name: the last is the newest of one version series,
	 * close enough to "the newest" for device trees that rarely change */
	for (size_t i = g.gl_pathc; i-- > 0 && !found;)
		if (is_dir(g.gl_pathv[i]))
			found = strdup(g.gl_pathv[i]);
	globfree(&g);
	return found;
}

/* @dfd read from its start, through a duplicate (closedir it) */
static DIR *dir_entries(int dfd)
{
	int fd = dup(dfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	rewinddir(d); /* the offset is shared with @dfd's other duplicates */
	return d;
}

/* Whether the card's directory @dfd holds a regular file matching @pattern */
static bool card_has(int dfd, const char *pattern)
{
	DIR *d = dir_entries(dfd);
	bool found = false;
	if (!d)
		return false;
	for (struct dirent *e; !found && (e = readdir(d));) {
		struct stat st;
		found = !fnmatch(pattern, e->d_name, 0) && !fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
			S_ISREG(st.st_mode);
	}
	closedir(d);
	return found;
}

/* The names a card of this command's holds */
static bool card_file(const char *name)
{
	static const char *const ours[] = {"boot.cmd",	 "boot.scr",   "config.txt", "u-boot-rpi_*.bin", "bootcode.bin",
					   "start*.elf", "fixup*.dat", "bcm2*.dtb",  "overlays"};
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (!fnmatch(ours[i], name, 0))
			return true;
	return false;
}

/* Whether @dfd may be written: empty, or it holds an earlier card of
 * ours (its boot.cmd starts with BOOT_CMD_MARK); else *@ret_other names
 * one file that is not ours. */
static bool card_dir_ours(int dfd, char *ret_other, size_t size)
{
	DIR *d = dir_entries(dfd);
	bool empty = true, foreign = false;
	snprintf(ret_other, size, "?");
	if (!d)
		return false;
	for (struct dirent *e; !foreign && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		foreign = !card_file(e->d_name);
		if (empty || foreign)
			shown_value(ret_other, size, e->d_name, strlen(e->d_name), 64);
		empty = false;
	}
	closedir(d);
	if (foreign)
		return false;
	if (empty)
		return true;
	char head[sizeof(BOOT_CMD_MARK)] = "";
	int cfd = openat(dfd, "boot.cmd", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd >= 0) {
		ssize_t k = read(cfd, head, sizeof(head) - 1);
		head[k > 0 ? k : 0] = '\0';
		close(cfd);
	}
	return !strcmp(head, BOOT_CMD_MARK);
}

/* DIR/overlays, made if missing, never through a symlink; -1 (said why) */
static int card_subdir(struct card *c, const char *sub)
{
	if (mkdirat(c->dfd, sub, 0755) < 0 && errno != EEXIST) {
		err("cannot make '%s/%s': %s", c->dir, sub, strerror(errno));
		c->failed = true;
		return -1;
	}
	int fd = openat(c->dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err("'%s/%s' is not a directory (a symlink?): not writing through it", c->dir, sub);
		c->failed = true;
	}
	return fd;
}

/* ---- device trees from an image of the store ---- */

struct names {
	char **v;
	size_t n;
	const char *pattern;
	mode_t type; /* S_IFDIR or S_IFREG: entries of other types are left out */
};

static int collect_name(void *arg, const char *name, const struct cow_attr *a, off_t next)
{
	struct names *l = arg;
	(void)next;
	if (fnmatch(l->pattern, name, 0) || !card_name_ok(name) || (a->mode & S_IFMT) != l->type)
		return 0;
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v || !(v[l->n] = strdup(name))) {
		if (v)
			l->v = v;
		return -ENOMEM;
	}
	l->v = v;
	l->n++;
	return 0;
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* The entries of directory @path of @v of type @type matching @pattern
 * (and card_name_ok), in @ret (names_free it).  0 or -errno. */
static int view_list(struct cow_view *v, const char *path, mode_t type, const char *pattern, struct names *ret)
{
	struct cow_attr a;
	*ret = (struct names){.pattern = pattern, .type = type};
	int r = root_walk(v, path, S_IFDIR, &a, NULL, 0);
	if (r < 0)
		return r;
	r = cow_readdir_ino(v, a.ino, 0, false, collect_name, ret);
	cow_forget(v, a.ino, 1);
	if (r < 0)
		names_free(ret);
	return r;
}

static int by_version(const void *a, const void *b)
{
	return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* Copy the bcm2*.dtb of the newest kernel in image @image's
 * /usr/lib/linux-image-* (its broadcom/ for arm64) to the card; returns
 * how many, or -1 after saying why there are none. */
static int card_image_dtbs(struct card *c, const char *image, bool arm64, char *where, size_t where_size)
{
	struct cow_store *st;
	struct cow_view *v = NULL;
	struct names k = {0}, d = {0};
	char kdir[160] = "/usr/lib/linux-image-*";
	int n = -1;
	int r = cow_store_open(store_dir, COW_STORE_READONLY, &st);
	if (r < 0) {
		err("cannot open store '%s': %s", store_dir, strerror(-r));
		return -1;
	}
	r = cow_view_open(st, NULL, image, COW_VIEW_READONLY, &v);
	if (r < 0) {
		err(r == -ENOENT ? "no image '%s' (see 'cowroot image list')" : "cannot open image '%s'", image);
		goto out;
	}
	n = 0;
	if (view_list(v, "/usr/lib", S_IFDIR, "linux-image-*", &k) < 0 || !k.n)
		goto out;
	qsort(k.v, k.n, sizeof(*k.v), by_version);
	snprintf(kdir, sizeof(kdir), "/usr/lib/%s%s", k.v[k.n - 1], arm64 ? "/broadcom" : "");
	if (view_list(v, kdir, S_IFREG, "bcm2*.dtb", &d) < 0)
		goto out;
	for (size_t i = 0; i < d.n; i++) {
		char path[320], *data;
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", kdir, d.v[i]);
		r = root_read(v, path, FILE_MAX, &data, &len);
		if (r < 0) {
			err("cannot read '%s' of image '%s': %s", path, image, strerror(-r));
			c->failed = true;
			continue;
		}
		card_put(c, c->dfd, "", d.v[i], data, len);
		free(data);
		n++;
	}
out:
	snprintf(where, where_size, "image %s: %s", image, kdir);
	names_free(&k);
	names_free(&d);
	if (v)
		cow_view_close(v);
	cow_store_close(st);
	return n;
}

static int sdcard_usage(void)
{
	fprintf(stderr, "usage: cowroot netboot sdcard DIR [--server ADDR] [--arch arm64|arm] [--force]\n"
			"         [--uboot-dir DIR] [--firmware-dir DIR] [--dtb-dir DIR]\n"
			"Writes in DIR (the SD card's FAT partition, mounted) what a Pi needs to boot\n"
			"u-boot and fetch its own script, netboot-<serial or MAC>.scr, from cowroot serve:\n"
			"boot.scr (and its source boot.cmd), config.txt, u-boot (Debian's u-boot-rpi),\n"
			"the Pi firmware (Debian's raspi-firmware) and the Pi device trees.\n"
			"  --server ADDR       the TFTP server, IPv4 (default: the DHCP answer's next-server)\n"
			"  --arch arm|arm64    32-bit or 64-bit u-boot and kernel (default arm64)\n"
			"  --force             write into a DIR that holds other files: those of the names\n"
			"                      above (config.txt, start*.elf, ...) are replaced, the others\n"
			"                      left as they are (without it only an empty DIR or an earlier\n"
			"                      card of this command's is written)\n"
			"  --uboot-dir DIR     u-boot builds (default /usr/lib/u-boot)\n"
			"  --firmware-dir DIR  Pi firmware (default /usr/lib/raspi-firmware)\n"
			"  --dtb-dir DIR       bcm2*.dtb and overlays/ (default: the newest\n"
			"                      /usr/lib/linux-image-*/broadcom, arm: /usr/lib/linux-image-*)\n"
			"  --image NAME        the device trees of the newest kernel in image NAME instead\n"
			"What the packages do not give is said on stderr; the card is then incomplete.\n");
	return 2;
}

int cmd_netboot_sdcard(int argc, char **argv)
{
	const char *dir = NULL, *server = NULL, *arch = "arm64", *uboot_dir = "/usr/lib/u-boot",
		   *fw_dir = "/usr/lib/raspi-firmware", *dtb_arg = NULL, *image = NULL;
	bool force = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--server") && i + 1 < argc)
			server = argv[++i];
		else if (!strcmp(argv[i], "--arch") && i + 1 < argc)
			arch = argv[++i];
		else if (!strcmp(argv[i], "--uboot-dir") && i + 1 < argc)
			uboot_dir = argv[++i];
		else if (!strcmp(argv[i], "--firmware-dir") && i + 1 < argc)
			fw_dir = argv[++i];
		else if (!strcmp(argv[i], "--dtb-dir") && i + 1 < argc)
			dtb_arg = argv[++i];
		else if (!strcmp(argv[i], "--image") && i + 1 < argc)
			image = argv[++i];
		else if (!strcmp(argv[i], "--force"))
			force = true;
		else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else
			return sdcard_usage();
	}
	if (!dir || (strcmp(arch, "arm64") && strcmp(arch, "arm")) || (image && dtb_arg) || want_help(argc, argv))
		return sdcard_usage();
	if (image && bad_name("image", image))
		return 2;
	if (server && bad_value("--server", server, bad_server(server)))
		return 2;
	bool arm64 = !strcmp(arch, "arm64");

	char *cmd = boot_cmd(server);
	uint8_t *scr = NULL;
	size_t scr_len = 0;
	if (!cmd || uimage_script("cowroot universal boot.scr", arm64, cmd, strlen(cmd), &scr, &scr_len) < 0) {
		free(cmd);
		err("out of memory");
		return 1;
	}

	struct card c = {.dfd = -1, .dir = dir};
	int r = 1;
	char other[80];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		err("cannot make '%s': %s", dir, strerror(errno));
		goto out;
	}
	/* DIR is the admin's (a mount point, perhaps through a symlink) */
	c.dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.dfd < 0) {
		err("cannot open '%s': %s", dir, strerror(errno));
		goto out;
	}
	if (!force && !card_dir_ours(c.dfd, other, sizeof(other))) {
		err("'%s' holds files that are not an SD card of this command's (e.g. '%s'): empty it, or "
		    "pass --force to write beside them",
		    dir, other);
		goto out;
	}

	/* the device trees the firmware hands to u-boot (and u-boot to the kernel
	 * as ${fdt_addr}), and the overlays where the directory has them; first,
	 * so that an unknown --image leaves the card as it was */
	char *dtb_dir = image ? NULL : dtb_arg ? strdup(dtb_arg) : default_dtb_dir(arm64), dtb_where[320];
	unsigned dtbs = 0;
	snprintf(dtb_where, sizeof(dtb_where), "%s", dtb_dir ? dtb_dir : "/usr/lib/linux-image-*");
	if (image) {
		int n = card_image_dtbs(&c, image, arm64, dtb_where, sizeof(dtb_where));
		if (n < 0)
			goto out_dtb;
		dtbs = (unsigned)n;
	} else if (dtb_dir && is_dir(dtb_dir)) {
		dtbs = card_copy_glob(&c, c.dfd, "", dtb_dir, "bcm2*.dtb");
		char ov[PATH_MAX];
		snprintf(ov, sizeof(ov), "%s/overlays", dtb_dir);
		if (is_dir(ov)) {
			int ofd = card_subdir(&c, "overlays");
			if (ofd >= 0) {
				card_copy_glob(&c, ofd, "overlays/", ov, "*.dtbo");
				card_copy_glob(&c, ofd, "overlays/", ov, "README");
				close(ofd);
			}
		}
	}

	/* u-boot, and the config.txt that has the firmware start it */
	const struct uboot_target *ub = arm64 ? uboot_arm64 : uboot_arm;
	char *config = NULL;
	size_t config_len = 0;
	FILE *f = open_memstream(&config, &config_len);
	if (!f) {
		err("out of memory");
		goto out_dtb;
	}
	fprintf(f,
		"# Written by 'cowroot netboot sdcard': the Pi firmware starts u-boot,\n"
		"# which runs boot.scr: DHCP, then this Pi's own script from the cowroot\n"
		"# server over TFTP.\n"
		"[all]\n"
		"%s"
		"# u-boot's serial console (and a stable core clock for the mini UART)\n"
		"enable_uart=1\n"
		"# Debian's device trees have the mainline names (bcm2837-rpi-3-b.dtb)\n"
		"upstream_kernel=1\n",
		arm64 ? "# start the CPU in 64-bit mode for the arm64 u-boot\narm_64bit=1\n" : "");
	unsigned uboots = 0, uboots_copied = 0; /* named in config.txt, copied now */
	for (size_t i = 0; i < 3; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s/u-boot.bin", uboot_dir, ub[i].dir);
		/* one the package no longer gives is kept where an earlier run put it */
		if (access(path, R_OK) == 0) {
			card_copy(&c, c.dfd, "", ub[i].card, path);
			uboots_copied++;
		} else if (!card_has(c.dfd, ub[i].card))
			continue;
		if (ub[i].filter[0])
			fprintf(f, "[%s]\n", ub[i].filter);
		fprintf(f, "kernel=%s\n", ub[i].card);
		uboots++;
	}
	fprintf(f, "[all]\n");
	if (fclose(f) != 0 || !config) {
		free(config);
		err("out of memory");
		goto out_dtb;
	}
	card_put(&c, c.dfd, "", "config.txt", config, config_len);
	free(config);
	card_put(&c, c.dfd, "", "boot.cmd", cmd, strlen(cmd));
	card_put(&c, c.dfd, "", "boot.scr", (const char *)scr, scr_len);

	/* the firmware: bootcode.bin for the 3 family, start*.elf and fixup*.dat */
	unsigned fw = 0;
	if (is_dir(fw_dir)) {
		fw += card_copy_glob(&c, c.dfd, "", fw_dir, "bootcode.bin");
		fw += card_copy_glob(&c, c.dfd, "", fw_dir, "start*.elf");
		fw += card_copy_glob(&c, c.dfd, "", fw_dir, "fixup*.dat");
	}

	if (c.failed)
		goto out_dtb;
	printf("wrote %u files in %s: boot.scr (from boot.cmd), config.txt, %u u-boot builds, %u firmware files, "
	       "%u device trees\n",
	       c.written, dir, uboots_copied, fw, dtbs);
	bool missing = false;
	if (!uboots) {
		const char *deb_arch = arm64 ? "arm64" : "armhf";
		err("no u-boot in '%s' (rpi_*/u-boot.bin): 'apt-get install u-boot-rpi' (an %s package; on "
		    "another architecture, 'apt-get download u-boot-rpi:%s' and 'dpkg-deb -x' it, then pass "
		    "--uboot-dir DIR/usr/lib/u-boot)",
		    uboot_dir, deb_arch, deb_arch);
		missing = true;
	}
	if (!fw && !card_has(c.dfd, "start*.elf")) {
		err("no Pi firmware in '%s' (bootcode.bin, start*.elf, fixup*.dat): enable Debian's "
		    "non-free-firmware component in the apt sources, then 'apt-get install raspi-firmware' (or "
		    "'apt-get download raspi-firmware', 'dpkg-deb -x' it and pass --firmware-dir "
		    "DIR/usr/lib/raspi-firmware)",
		    fw_dir);
		missing = true;
	}
	if (!dtbs && !card_has(c.dfd, "bcm2*.dtb")) {
		err("no Pi device trees (bcm2*.dtb) in '%s': take them from the clients' image, whose "
		    "linux-image-%s has them ('--image NAME'), or install that kernel here and pass --dtb-dir DIR",
		    dtb_where, arm64 ? "arm64" : "armmp");
		missing = true;
	}
	if (missing)
		err("the card in '%s' is incomplete: a Pi cannot boot from it until the files above are added "
		    "(run this command again)",
		    dir);
	r = 0;
out_dtb:
	free(dtb_dir);
out:
	if (c.dfd >= 0)
		close(c.dfd);
	free(cmd);
	free(scr);
	return r;
}

/* ---- DHCP: a dnsmasq configuration for the fleet ---- */

struct fleet_client {
	char name[COW_ENTITY_NAME_MAX + 1];
	char mac[COW_MAC_LEN + 1];
	char addrs[COW_ADDRS_MAX + 1];
	struct in_addr ip; /* its address, once found */
	bool given;	   /* a dhcp-host line gives it */
};

struct fleet {
	struct fleet_client *v;
	size_t n;
};

static int collect_client(void *arg, const struct cow_client_info *c)
{
	struct fleet *l = arg;
	struct fleet_client *v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	memset(&v[l->n], 0, sizeof(v[l->n]));
	snprintf(v[l->n].name, sizeof(v[l->n].name), "%s", c->name);
	snprintf(v[l->n].mac, sizeof(v[l->n].mac), "%s", c->mac);
	l->n++;
	return 0;
}

/* "dc:a6:32:01:36:c2": six pairs of lowercase hex digits */
static bool mac_ok(const char *m)
{
	if (strlen(m) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? m[i] != ':' : !strchr("0123456789abcdef", m[i]))
			return false;
	return true;
}

/* A DNS label dnsmasq gives as the client's host name */
static bool hostname_ok(const char *n)
{
	return strlen(n) <= 63 && !bad_chars(n, 63, "-", "") && n[0] != '-' && n[strlen(n) - 1] != '-';
}

struct subnet {
	struct in_addr net, mask;
	int prefix;
};

static bool in_subnet(const struct subnet *s, struct in_addr a)
{
	return (a.s_addr & s->mask.s_addr) == s->net.s_addr;
}

static struct in_addr prefix_mask(int prefix)
{
	struct in_addr m = {htonl(prefix ? ~0u << (32 - prefix) : 0)};
	return m;
}

/* "a.b.c.d/N", N 8 to 30, a.b.c.d its network address */
static const char *bad_subnet(const char *v, struct subnet *ret)
{
	static const char why[] = "a network a.b.c.d/N (N 8 to 30), a.b.c.d the network's first address";
	char addr[16];
	const char *slash = strchr(v, '/');
	unsigned prefix;
	if (!slash || (size_t)(slash - v) >= sizeof(addr) || !parse_count(slash + 1, 30, &prefix) || prefix < 8)
		return why;
	memcpy(addr, v, (size_t)(slash - v));
	addr[slash - v] = '\0';
	if (!ipv4_ok(addr, &ret->net))
		return why;
	ret->prefix = (int)prefix;
	ret->mask = prefix_mask(ret->prefix);
	return ret->net.s_addr == (ret->net.s_addr & ret->mask.s_addr) ? NULL : why;
}

static int mask_prefix(struct in_addr m)
{
	uint32_t h = ntohl(m.s_addr);
	int p = 0;
	while (p < 32 && (h & (0x80000000u >> p)))
		p++;
	return p;
}

/* The IPv4 address of interface @ifname (any up, non-loopback one when
 * NULL), or the interface holding @want when it is given: its address in
 * *@ret_addr, its subnet in *@ret_net, its name in @ret_if.  false when none. */
static bool local_iface(const char *ifname, const struct in_addr *want, struct in_addr *ret_addr,
			struct subnet *ret_net, char ret_if[IF_NAMESIZE])
{
	struct ifaddrs *ifa;
	bool found = false;
	if (getifaddrs(&ifa) < 0)
		return false;
	for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || !i->ifa_netmask || i->ifa_addr->sa_family != AF_INET)
			continue;
		struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		if (ifname ? strcmp(i->ifa_name, ifname) != 0
		    : want ? a.s_addr != want->s_addr
			   : !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		*ret_addr = a;
		ret_net->mask = ((struct sockaddr_in *)i->ifa_netmask)->sin_addr;
		ret_net->net.s_addr = a.s_addr & ret_net->mask.s_addr;
		ret_net->prefix = mask_prefix(ret_net->mask);
		snprintf(ret_if, IF_NAMESIZE, "%s", i->ifa_name);
		found = true;
	}
	freeifaddrs(ifa);
	return found;
}

/* The one IPv4 host address in @addrs (a cow_client_set_addrs list) in
 * *@ret; else why not. */
static const char *client_ipv4(const char *addrs, struct in_addr *ret)
{
	if (!addrs[0])
		return "no address (cowroot client set NAME --ip ADDR)";
	if (cow_addrs_check(addrs, NULL, NULL, NULL) < 0)
		return "its addresses are invalid (cowroot client set NAME --ip ADDR)";
	int n = 0;
	for (const char *p = addrs; *p;) {
		size_t k = strcspn(p, ",");
		char item[64];
		if (k < sizeof(item)) {
			memcpy(item, p, k);
			item[k] = '\0';
			/* a host: no prefix, or /32 */
			char *slash = strchr(item, '/');
			bool host = !slash || !strcmp(slash, "/32");
			struct in_addr a;
			if (slash)
				*slash = '\0';
			if (host && ipv4_ok(item, &a)) {
				*ret = a;
				n++;
			}
		}
		p += k + (p[k] == ',');
	}
	if (n == 0)
		return "no single IPv4 address among its --ip (a network or IPv6 only): give it one for DHCP";
	if (n > 1)
		return "several IPv4 addresses in its --ip: DHCP gives one, which is for you to say";
	return NULL;
}

/* The dhcp-host line of client @i of @l, or a comment saying why it has
 * none (and a warning).  The clients before it have been printed: one of
 * them holding its address leaves it out (dnsmasq refuses both). */
static void print_host(struct fleet *l, size_t i, const struct subnet *net, bool proxy)
{
	struct fleet_client *c = &l->v[i];
	char name[80], why_buf[200], s_a[INET_ADDRSTRLEN], s_net[INET_ADDRSTRLEN];
	const char *why = NULL;
	shown_value(name, sizeof(name), c->name, strlen(c->name), 64);
	if (!c->mac[0])
		why = "no MAC address (cowroot client set NAME --mac MAC)";
	else if (!mac_ok(c->mac))
		why = "its MAC address is malformed (cowroot client set NAME --mac MAC)";
	else
		why = client_ipv4(c->addrs, &c->ip);
	inet_ntop(AF_INET, &c->ip, s_a, sizeof(s_a));
	inet_ntop(AF_INET, &net->net, s_net, sizeof(s_net));
	if (!why && !in_subnet(net, c->ip)) {
		snprintf(why_buf, sizeof(why_buf), "its address %s is outside the clients' network %s/%d (--subnet)",
			 s_a, s_net, net->prefix);
		why = why_buf;
	}
	for (size_t k = 0; !why && k < i; k++)
		if (l->v[k].given && l->v[k].ip.s_addr == c->ip.s_addr) {
			char other[80];
			shown_value(other, sizeof(other), l->v[k].name, strlen(l->v[k].name), 64);
			snprintf(why_buf, sizeof(why_buf), "its address %s is given to %s", s_a, other);
			why = why_buf;
		}
	if (why) {
		printf("# %s: left out: %s\n", name, why);
		err("client '%s' left out: %s", name, why);
		return;
	}
	c->given = true;
	/* id:*: by MAC alone, whatever client-id u-boot, the Pi ROM and the
	 * kernel each send, so that each stage gets the same address */
	bool named = hostname_ok(c->name);
	printf("%sdhcp-host=%s,id:*,%s%s%s\n", proxy ? "# " : "", c->mac, s_a, named ? "," : "", named ? c->name : "");
}

static int dnsmasq_usage(void)
{
	fprintf(stderr, "usage: cowroot netboot dnsmasq [--proxy] [--interface IF] [--server ADDR]\n"
			"         [--range START,END | --subnet CIDR]\n"
			"Prints a dnsmasq configuration (apt-get install dnsmasq; put it in\n"
			"/etc/dnsmasq.d/cowroot.conf) for the clients of the store: DHCP only (no DNS, no\n"
			"TFTP of dnsmasq's: cowroot serve serves TFTP), a fixed address for each client\n"
			"with a --mac (its IPv4 --ip), the TFTP server as next-server, and option 43\n"
			"\"Raspberry Pi Boot\" that the Pi boot ROM and EEPROM bootloader want.\n"
			"  --proxy          proxy DHCP beside an existing DHCP server (which gives the\n"
			"                   addresses: reserve the printed ones there)\n"
			"  --interface IF   answer on IF only (and take the server address from it)\n"
			"  --server ADDR    the TFTP server (default: the address of IF, else of this\n"
			"                   machine's first interface)\n"
			"  --subnet CIDR    the clients' network (default: that of the server's interface)\n"
			"  --range START,END  also give addresses of this range to other machines\n");
	return 2;
}

int cmd_netboot_dnsmasq(int argc, char **argv)
{
	const char *iface = NULL, *server = NULL, *range = NULL, *subnet_arg = NULL;
	bool proxy = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--proxy"))
			proxy = true;
		else if (!strcmp(argv[i], "--interface") && i + 1 < argc)
			iface = argv[++i];
		else if (!strcmp(argv[i], "--server") && i + 1 < argc)
			server = argv[++i];
		else if (!strcmp(argv[i], "--range") && i + 1 < argc)
			range = argv[++i];
		else if (!strcmp(argv[i], "--subnet") && i + 1 < argc)
			subnet_arg = argv[++i];
		else
			return dnsmasq_usage();
	}
	if (want_help(argc, argv))
		return dnsmasq_usage();
	if (range && proxy) {
		err("--range gives addresses, which a proxy does not: the existing DHCP server does");
		return 2;
	}
	struct in_addr srv = {0}, start = {0}, end = {0}, if_addr;
	struct subnet net = {0}, if_net;
	char if_name[IF_NAMESIZE] = "";
	bool have_net = false;
	if ((iface && bad_value("--interface", iface,
				bad_chars(iface, IF_NAMESIZE - 1, "._-", "an interface name (A-Z a-z 0-9 . _ -)"))) ||
	    (server && bad_value("--server", server, bad_server(server))) ||
	    (subnet_arg && bad_value("--subnet", subnet_arg, bad_subnet(subnet_arg, &net))))
		return 2;
	if (range) {
		char a[32], b[32];
		const char *comma = strchr(range, ',');
		const char *why = "START,END: two IPv4 addresses, START not after END";
		if (!comma || (size_t)(comma - range) >= sizeof(a) || strlen(comma + 1) >= sizeof(b))
			return bad_value("--range", range, why), 2;
		memcpy(a, range, (size_t)(comma - range));
		a[comma - range] = '\0';
		snprintf(b, sizeof(b), "%s", comma + 1);
		if (!ipv4_ok(a, &start) || !ipv4_ok(b, &end) || ntohl(start.s_addr) > ntohl(end.s_addr))
			return bad_value("--range", range, why), 2;
	}
	if (server)
		inet_pton(AF_INET, server, &srv);
	/* the server's interface: --interface, else the one holding --server,
	 * else the first up one */
	bool have_if = local_iface(iface, server && !iface ? &srv : NULL, &if_addr, &if_net, if_name);
	if (iface && !have_if) {
		err("no IPv4 address on interface '%s' here", iface);
		if (!server || !subnet_arg)
			return 1;
	}
	if (!server) {
		if (!have_if) {
			err("cannot tell this server's address; pass --server ADDR");
			return 1;
		}
		srv = if_addr;
	}
	if (subnet_arg)
		have_net = true;
	else if (have_if) {
		net = if_net;
		have_net = true;
	}
	if (!have_net) {
		err("cannot tell the clients' network (no interface here holds %s): pass --subnet CIDR",
		    server ? server : "the server address");
		return 1;
	}
	if (range && (!in_subnet(&net, start) || !in_subnet(&net, end))) {
		bad_value("--range", range, "not inside the clients' network");
		return 2;
	}

	struct cow_store *st;
	struct fleet l = {0};
	int r = cow_store_open(store_dir, COW_STORE_READONLY, &st);
	if (r < 0) {
		err("cannot open store '%s': %s", store_dir, strerror(-r));
		return 1;
	}
	r = cow_client_foreach(st, collect_client, &l);
	for (size_t i = 0; r == 0 && i < l.n; i++)
		r = cow_client_get_addrs(st, l.v[i].name, l.v[i].addrs, sizeof(l.v[i].addrs));
	cow_store_close(st);
	if (r < 0) {
		err("cannot read the clients of '%s': %s", store_dir, strerror(-r));
		free(l.v);
		return 1;
	}

	char s_srv[INET_ADDRSTRLEN], s_net[INET_ADDRSTRLEN], s_mask[INET_ADDRSTRLEN], s_a[INET_ADDRSTRLEN],
	    s_b[INET_ADDRSTRLEN], shown_store[80];
	inet_ntop(AF_INET, &srv, s_srv, sizeof(s_srv));
	inet_ntop(AF_INET, &net.net, s_net, sizeof(s_net));
	inet_ntop(AF_INET, &net.mask, s_mask, sizeof(s_mask));
	shown_value(shown_store, sizeof(shown_store), store_dir, strlen(store_dir), 64);
	printf("# dnsmasq configuration for the clients of cowroot store %s,\n"
	       "# written by 'cowroot netboot dnsmasq%s': put it in /etc/dnsmasq.d/cowroot.conf\n"
	       "# (apt-get install dnsmasq) and restart dnsmasq.  It does DHCP only: DNS is off\n"
	       "# (port=0) and TFTP is cowroot serve's, at %s.\n"
	       "port=0\n",
	       shown_store, proxy ? " --proxy" : "", s_srv);
	if (iface)
		printf("interface=%s\nbind-interfaces\n", iface);
	if (proxy)
		printf("# proxy DHCP: the network's DHCP server gives the addresses, dnsmasq adds\n"
		       "# where to boot from\n"
		       "dhcp-range=%s,proxy,%s\n",
		       s_net, s_mask);
	else if (range) {
		inet_ntop(AF_INET, &start, s_a, sizeof(s_a));
		inet_ntop(AF_INET, &end, s_b, sizeof(s_b));
		printf("# addresses for other machines; the clients get theirs below\n"
		       "dhcp-range=%s,%s,%s,12h\n",
		       s_a, s_b, s_mask);
	} else
		printf("# only the clients below get an address\n"
		       "dhcp-range=%s,static,%s,12h\n",
		       s_net, s_mask);
	printf("# the TFTP server (next-server) for u-boot's dhcp and the Pi's own network boot\n"
	       "dhcp-boot=bootcode.bin,,%s\n"
	       "# option 43 with \"Raspberry Pi Boot\": the Pi 3 boot ROM and the Pi 4/5\n"
	       "# EEPROM bootloader take only a DHCP answer that carries it (a Pi 3 Model B,\n"
	       "# not B+, booting without SD card wants three spaces after it)\n"
	       "pxe-service=0,\"Raspberry Pi Boot\"\n",
	       s_srv);
	if (proxy)
		printf("# reserve these addresses in the network's DHCP server:\n");
	for (size_t i = 0; i < l.n; i++)
		print_host(&l, i, &net, proxy);
	if (!l.n)
		err("the store has no clients: the configuration gives no addresses");
	free(l.v);
	return 0;
}

/* ---- what replaced the old command ---- */

void netboot_gone(void)
{
	err("'cowroot netboot CLIENT --tftp-dir DIR' is gone: cowroot serve's TFTP server makes each "
	    "client's u-boot script itself, as netboot-<serial or MAC>.scr (give the client one with "
	    "'cowroot client set NAME --serial HEX' or '--mac MAC'); the SD card is written by 'cowroot "
	    "netboot sdcard DIR', the DHCP configuration printed by 'cowroot netboot dnsmasq'");
}
