/* SPDX-License-Identifier: MIT */
/*
 * `cowroot client shell NAME [-- COMMAND...]`: a shell or a command inside
 * a client's root, as a container would run it, its changes left in the
 * client's layer.
 *
 * The view is mounted (FUSE, nosuid/nodev as always) in a mount namespace
 * of this command's own, so nobody else sees it; on top of it, in that
 * namespace only: a /proc of a new pid namespace, a read-only /sys, a /dev
 * of its own (null, zero, full, random, urandom, tty, a private devpts,
 * shm), tmpfs on /run and /tmp (nothing of them goes into the layer), and
 * the host's resolv.conf.  The command runs as pid 1 of its pid namespace
 * with systemd-nspawn when that is installed (--chroot: never), else
 * chrooted: when it exits, whatever it left running dies with it.  Then the
 * view is unmounted and the layer written back before this returns.
 *
 * A root of another architecture (an arm64 or armhf image on an amd64
 * server) runs through qemu-user-static and binfmt_misc: the interpreter is
 * registered (with the F flag, so that it works inside the root) when the
 * kernel does not have it yet, and the command says so.  Where nothing has
 * mounted binfmt_misc (systemd does at boot), it is mounted in the caller's
 * mount namespace, not this command's: the kernel keeps a registration only
 * as long as binfmt_misc stays mounted somewhere.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BINFMT_DIR "/proc/sys/fs/binfmt_misc"

/* Open @path inside the tree at @rootfd, symlinks resolved as in a
 * chroot (never out of it). */
static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* The ELF machine of the root's /bin/sh, 0 if it cannot be read. */
static int root_machine(int rootfd)
{
	int fd = open_in_root(rootfd, "bin/sh", O_RDONLY);
	if (fd < 0)
		return 0;
	unsigned char h[EI_NIDENT + 4];
	ssize_t n = read(fd, h, sizeof(h));
	close(fd);
	if (n < (ssize_t)sizeof(h) || memcmp(h, ELFMAG, SELFMAG))
		return 0;
	/* e_machine follows e_type, in the file's byte order */
	return h[EI_DATA] == ELFDATA2MSB ? (h[EI_NIDENT + 2] << 8) | h[EI_NIDENT + 3]
					 : (h[EI_NIDENT + 3] << 8) | h[EI_NIDENT + 2];
}

static int host_machine(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return 0;
	if (!strcmp(u.machine, "x86_64"))
		return EM_X86_64;
	if (!strcmp(u.machine, "aarch64"))
		return EM_AARCH64;
	if (!strncmp(u.machine, "arm", 3))
		return EM_ARM;
	if (!strcmp(u.machine, "i686") || !strcmp(u.machine, "i386"))
		return EM_386;
	return 0;
}

/* The qemu-user-static name of machine @m ("aarch64"), NULL if none. */
static const char *qemu_name(int m)
{
	switch (m) {
	case EM_AARCH64:
		return "aarch64";
	case EM_ARM:
		return "arm";
	case EM_X86_64:
		return "x86_64";
	case EM_386:
		return "i386";
	case EM_RISCV:
		return "riscv64";
	default:
		return NULL;
	}
}

/* What binfmt_misc (its directory @dir) says of its entry @name: enabled,
 * and registered with the F flag (the interpreter opened at registration,
 * so that it is found inside a chroot).  false if the entry cannot be
 * read. */
static bool binfmt_entry(int dir, const char *name, bool *ret_enabled, bool *ret_fixed)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "re");
	char line[512];
	if (!f) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	*ret_enabled = *ret_fixed = false;
	while (fgets(line, sizeof(line), f)) {
		if (!strcmp(line, "enabled\n"))
			*ret_enabled = true;
		else if (!strncmp(line, "flags: ", 7) && strchr(line + 7, 'F'))
			*ret_fixed = true;
	}
	fclose(f);
	return true;
}

/* The caller's mount namespace and root directory, kept when this command
 * makes a namespace of its own (binfmt_misc is mounted there). */
struct caller_ns {
	int ns, root;
};

/* binfmt_misc's directory, open (O_PATH): where this command's namespace
 * has it mounted, else where the caller's namespace has, else mounted
 * there first, as systemd mounts it at boot.  Not mounted in this
 * command's namespace: the kernel (Linux 6.7 on) forgets everything
 * registered once the last mount of binfmt_misc is gone, and this
 * namespace goes when the command ends.  -1 after saying why not. */
static int binfmt_dir(const struct caller_ns *caller)
{
	int fd = open(BINFMT_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && faccessat(fd, "register", F_OK, 0) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	fd = -1;
	/* setns() makes the namespace's own root the process's root and
	 * directory, out of any chroot: both are put back each way */
	int ours = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ours < 0 || root < 0 || cwd < 0) {
		err("cannot open this command's mount namespace: %s", strerror(errno));
		goto out;
	}
	if (setns(caller->ns, CLONE_NEWNS) < 0) {
		err("cannot enter the caller's mount namespace to mount binfmt_misc: %s", strerror(errno));
		goto out;
	}
	if (fchdir(caller->root) < 0 || chroot(".") < 0) {
		err("cannot enter the caller's root to mount binfmt_misc: %s", strerror(errno));
		goto back;
	}
	if (access(BINFMT_DIR "/register", F_OK) < 0) {
		if (mount("binfmt_misc", BINFMT_DIR, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			err("cannot mount binfmt_misc on %s: %s", BINFMT_DIR, strerror(errno));
		else
			fprintf(stderr,
				"cowroot: mounted binfmt_misc on %s (the kernel keeps what is registered while it is "
				"mounted)\n",
				BINFMT_DIR);
	}
	fd = open(BINFMT_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && faccessat(fd, "register", F_OK, 0) < 0) {
		close(fd);
		fd = -1;
	}
back:
	if (setns(ours, CLONE_NEWNS) < 0 || fchdir(root) < 0 || chroot(".") < 0 || fchdir(cwd) < 0) {
		err("cannot return to this command's mount namespace: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
out:
	if (ours >= 0)
		close(ours);
	if (root >= 0)
		close(root);
	if (cwd >= 0)
		close(cwd);
	return fd;
}

/* Make the kernel run binaries of machine @m through qemu-user-static,
 * binfmt_misc mounted in the caller's mount namespace if it is not yet: 0
 * (saying what it did, if anything), or -1 after saying why not. */
static int binfmt_ensure(int m, const struct caller_ns *caller)
{
	const char *q = qemu_name(m);
	char name[64], entry[128], conf[128];
	if (!q) {
		err("the client's root is for ELF machine %d, which this server cannot run", m);
		return -1;
	}
	snprintf(name, sizeof(name), "qemu-%s", q);
	snprintf(entry, sizeof(entry), BINFMT_DIR "/%s", name);
	snprintf(conf, sizeof(conf), "/usr/lib/binfmt.d/qemu-%s.conf", q);
	int dir = binfmt_dir(caller);
	if (dir < 0)
		return -1;
	bool enabled, fixed;
	if (binfmt_entry(dir, name, &enabled, &fixed)) {
		close(dir);
		if (!enabled) {
			err("binfmt_misc has qemu-%s registered but disabled (%s): enable it with 'echo 1 > %s'", q,
			    entry, entry);
			return -1;
		}
		if (!fixed) {
			err("binfmt_misc has qemu-%s registered without the F flag: its interpreter cannot be found "
			    "inside the client's root (%s; re-register it from %s)",
			    q, entry, conf);
			return -1;
		}
		return 0;
	}
	FILE *f = fopen(conf, "re");
	char rule[1024];
	if (!f || !fgets(rule, sizeof(rule), f)) {
		if (f)
			fclose(f);
		close(dir);
		err("the client's root is %s and qemu-%s is not registered with binfmt_misc: install "
		    "qemu-user-static (%s is missing)",
		    q, q, conf);
		return -1;
	}
	fclose(f);
	rule[strcspn(rule, "\n")] = 0;
	int fd = openat(dir, "register", O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, rule, strlen(rule));
	int e = errno;
	if (fd >= 0)
		close(fd);
	close(dir);
	if (n != (ssize_t)strlen(rule)) {
		err("cannot register qemu-%s with binfmt_misc from %s: %s", q, conf, strerror(e));
		return -1;
	}
	fprintf(stderr, "cowroot: registered qemu-%s with binfmt_misc (from %s) to run the client's %s binaries\n", q,
		conf, q);
	return 0;
}

/* ---- the container's mounts ---- */

static int mnt(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
	if (mount(src, dst, type, flags, data) < 0) {
		err("cannot mount %s on %s: %s", type ? type : src, dst, strerror(errno));
		return -1;
	}
	return 0;
}

/* @root/@path into @buf: 0, or -1 if it does not fit. */
static int in(char *buf, size_t n, const char *root, const char *path)
{
	int k = snprintf(buf, n, "%s/%s", root, path);
	return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* Is @path in the root a directory (symlinks resolved inside it)?  The
 * mounts go only on directories the image has: nothing is created in it. */
static bool root_dir(int rootfd, const char *path)
{
	int fd = open_in_root(rootfd, path, O_PATH | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* A /dev as a container has it, on a tmpfs at @dev. */
static int make_dev(const char *dev)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {{"null", 1, 3},   {"zero", 1, 5},	  {"full", 1, 7},
		     {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	char p[4096];
	if (mnt("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=4m") < 0)
		return -1;
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		if (in(p, sizeof(p), dev, nodes[i].name) < 0)
			return -1;
		if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0 || chmod(p, 0666) < 0) {
			err("cannot make %s: %s", p, strerror(errno));
			return -1;
		}
	}
	static const char *const links[][2] = {{"fd", "/proc/self/fd"},	      {"stdin", "/proc/self/fd/0"},
					       {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
					       {"ptmx", "pts/ptmx"},	      {"core", "/proc/kcore"}};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (in(p, sizeof(p), dev, links[i][0]) < 0)
			return -1;
		if (symlink(links[i][1], p) < 0) {
			err("cannot make %s: %s", p, strerror(errno));
			return -1;
		}
	}
	if (in(p, sizeof(p), dev, "pts") < 0)
		return -1;
	mkdir(p, 0755);
	if (mnt("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
		return -1;
	if (in(p, sizeof(p), dev, "shm") < 0)
		return -1;
	mkdir(p, 01777);
	return mnt("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
}

/* The host's resolv.conf for the root's: bound over its file, or written
 * where its symlink into /run points (the tmpfs there).  Nothing is
 * written into the root: one without a resolv.conf is said to have no DNS
 * (nspawn, @bind false, binds the host's over an existing file itself). */
static void resolv_conf(const char *root, int rootfd, bool bind)
{
	char p[4096], target[4096];
	struct stat sb;
	if (stat("/etc/resolv.conf", &sb) < 0)
		return;
	int fd = openat(rootfd, "etc/resolv.conf", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cowroot: the client's root has no /etc/resolv.conf: no DNS inside (write one there "
				"to have it)\n");
		return;
	}
	if (!bind) {
		close(fd);
		return;
	}
	struct stat rs;
	ssize_t n = -1;
	if (fstat(fd, &rs) == 0 && S_ISLNK(rs.st_mode))
		n = readlinkat(rootfd, "etc/resolv.conf", target, sizeof(target) - 1);
	close(fd);
	if (S_ISREG(rs.st_mode)) {
		if (in(p, sizeof(p), root, "etc/resolv.conf") < 0)
			return;
		if (mount("/etc/resolv.conf", p, NULL, MS_BIND, NULL) == 0)
			mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
		return;
	}
	if (n > 0) {
		target[n] = 0;
		const char *t = target;
		while (!strncmp(t, "../", 3))
			t += 3;
		if (*t == '/')
			t++;
		if (!strncmp(t, "run/", 4) && !strstr(t, "..")) {
			/* under the tmpfs: make the directories and the file there */
			if (in(p, sizeof(p), root, t) < 0)
				return;
			for (char *s = p + strlen(root) + 5; (s = strchr(s, '/')); s++) {
				*s = 0;
				mkdir(p, 0755);
				*s = '/';
			}
			FILE *in = fopen("/etc/resolv.conf", "re"), *out = fopen(p, "we");
			char buf[4096];
			size_t k;
			while (in && out && (k = fread(buf, 1, sizeof(buf), in)) > 0)
				fwrite(buf, 1, k, out);
			if (in)
				fclose(in);
			if (out)
				fclose(out);
			return;
		}
	}
	fprintf(stderr, "cowroot: the client's /etc/resolv.conf is not a file or a link into /run: left as it is\n");
}

/* Everything but /proc (which the pid namespace mounts itself). */
static int setup_root(const char *root, int rootfd, bool with_dev)
{
	char p[4096];
	if (with_dev) {
		if (!root_dir(rootfd, "dev")) {
			err("the client's root has no /dev directory");
			return -1;
		}
		if (in(p, sizeof(p), root, "dev") < 0 || make_dev(p) < 0)
			return -1;
		if (root_dir(rootfd, "sys") && in(p, sizeof(p), root, "sys") == 0 &&
		    (mnt("sysfs", p, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) < 0))
			return -1;
	}
	static const char *const tmpfs[] = {"run", "tmp"};
	for (size_t i = 0; i < 2; i++)
		if (root_dir(rootfd, tmpfs[i]) && in(p, sizeof(p), root, tmpfs[i]) == 0 &&
		    mnt("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, i == 0 ? "mode=755" : "mode=1777") < 0)
			return -1;
	if (in(p, sizeof(p), root, "run/lock") == 0)
		mkdir(p, 01777);
	resolv_conf(root, rootfd, with_dev);
	return 0;
}

/* ---- running the command ---- */

static char *const *default_shell(int rootfd)
{
	static char *bash[] = {"/bin/bash", "-l", NULL}, *sh[] = {"/bin/sh", "-l", NULL};
	int fd = open_in_root(rootfd, "bin/bash", O_PATH);
	if (fd >= 0) {
		close(fd);
		return bash;
	}
	return sh;
}

static void set_env(const char *client)
{
	const char *term = getenv("TERM"), *lang = getenv("LANG"), *fe = getenv("DEBIAN_FRONTEND");
	char *t = term ? strdup(term) : NULL, *l = lang ? strdup(lang) : NULL, *f = fe ? strdup(fe) : NULL;
	clearenv();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	setenv("USER", "root", 1);
	setenv("LOGNAME", "root", 1);
	setenv("container", "cowroot", 1);
	setenv("COWROOT_CLIENT", client, 1);
	if (t)
		setenv("TERM", t, 1);
	if (l)
		setenv("LANG", l, 1);
	if (f)
		setenv("DEBIAN_FRONTEND", f, 1);
	free(t);
	free(l);
	free(f);
}

/* In a new pid namespace: pid 1 mounts /proc, chroots and execs. */
static int run_chroot(const char *root, const char *client, char *const *cmd)
{
	pid_t pid = fork();
	if (pid < 0) {
		err("fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		if (unshare(CLONE_NEWPID) < 0) {
			err("cannot make a pid namespace: %s", strerror(errno));
			_exit(1);
		}
		pid_t init = fork();
		if (init < 0)
			_exit(1);
		if (init == 0) {
			char p[4096];
			if (in(p, sizeof(p), root, "proc") < 0)
				_exit(1);
			if (mnt("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
				_exit(1);
			if (chroot(root) < 0 || chdir("/") < 0) {
				err("cannot chroot into '%s': %s", root, strerror(errno));
				_exit(1);
			}
			set_env(client);
			execvp(cmd[0], cmd);
			err("cannot run '%s' in client '%s': %s", cmd[0], client, strerror(errno));
			_exit(127);
		}
		int status;
		while (waitpid(init, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	/* the terminal's ^C is the command's, not ours */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_nspawn(const char *nspawn, const char *root, int rootfd, const char *client, char *const *cmd)
{
	/* nspawn keeps mount propagation state under /run/systemd/nspawn
	 * and removes it after only from a tmpfs: give it one (in our mount
	 * namespace) where the host's /run is none */
	struct statfs sf;
	if (statfs("/run", &sf) == 0 && sf.f_type != TMPFS_MAGIC) {
		mkdir("/run/systemd", 0755);
		mkdir("/run/systemd/nspawn", 0755);
		mount("tmpfs", "/run/systemd/nspawn", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755");
	}
	char machine[80], setenv_client[COW_ENTITY_NAME_MAX + 32];
	snprintf(machine, sizeof(machine), "cowroot-%.64s", client);
	for (char *c = machine; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
			*c = '-';
	snprintf(setenv_client, sizeof(setenv_client), "COWROOT_CLIENT=%s", client);
	char *argv[64];
	int n = 0;
	argv[n++] = (char *)nspawn;
	argv[n++] = "--quiet";
	argv[n++] = "--register=no";
	argv[n++] = "--keep-unit";
	argv[n++] = "--link-journal=no";
	argv[n++] = "--timezone=off"; /* nothing written into /etc */
	/* nor resolv.conf: the host's bound over the root's, none made */
	struct stat sb;
	argv[n++] = fstatat(rootfd, "etc/resolv.conf", &sb, AT_SYMLINK_NOFOLLOW) == 0 ? "--resolv-conf=bind-host"
										      : "--resolv-conf=off";
	argv[n++] = "--tmpfs=/tmp";
	/* a command's output as it wrote it when not on a terminal (no pty,
	 * no CRLF), its input passed through */
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		argv[n++] = "--console=pipe";
	argv[n++] = "--setenv";
	argv[n++] = setenv_client;
	argv[n++] = "-M";
	argv[n++] = machine;
	argv[n++] = "-D";
	argv[n++] = (char *)root;
	argv[n++] = "--";
	for (int i = 0; cmd[i] && n < 63; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0) {
		err("fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		execv(nspawn, argv);
		err("cannot run %s: %s", nspawn, strerror(errno));
		_exit(127);
	}
	signal(SIGINT, SIG_IGN);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	signal(SIGINT, SIG_DFL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *find_nspawn(void)
{
	static const char *const where[] = {"/usr/bin/systemd-nspawn", "/bin/systemd-nspawn"};
	for (size_t i = 0; i < 2; i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

/* Wait (up to a minute) until the mount daemon has written the layer back
 * and let it go. */
static void wait_released(const char *client)
{
	for (int i = 0; i < 600; i++) {
		struct cow_store *st;
		struct cow_holder h;
		if (cow_store_open(store_dir, COW_STORE_READONLY, &st) < 0)
			return;
		int held = cow_client_holder(st, client, &h);
		cow_store_close(st);
		if (held <= 0)
			return;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	err("warning: the mount daemon of '%s' still holds its layer", client);
}

int cmd_client_shell(int argc, char **argv)
{
	static const char usage[] =
	    "client shell NAME [--chroot] [-- COMMAND [ARGS...]]\n"
	    "  run a login shell (or COMMAND) inside client NAME's root, as a container: its changes stay in the\n"
	    "  client's layer (then 'cowroot client snapshot NAME IMAGE'); systemd-nspawn when installed\n"
	    "  (--chroot: a plain chroot in namespaces of its own), qemu-user-static for other architectures";
	const char *name = NULL;
	bool chroot_only = false;
	char **cmd = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			cmd = argv + i + 1;
			break;
		}
		if (!strcmp(argv[i], "--chroot"))
			chroot_only = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || argv[i][0] == '-' || name)
			return usage_err(usage);
		else
			name = argv[i];
	}
	if (!name || (cmd && !cmd[0]))
		return usage_err(usage);
	if (geteuid() != 0) {
		err("client shell needs root (mount namespaces, chroot)");
		return 1;
	}
	struct cow_store *st;
	if (open_store(COW_STORE_READONLY, &st))
		return 1;
	struct cow_client_info ci;
	struct cow_holder h;
	int r = cow_client_get(st, name, &ci);
	if (r < 0) {
		err(r == -ENOENT ? "no client '%s' (see 'cowroot client list')" : "cannot read client '%s'", name);
		cow_store_close(st);
		return 1;
	}
	if (cow_client_holder(st, name, &h) > 0) {
		err("%s", busy_message(st, name, "run a shell in it"));
		cow_store_close(st);
		return 1;
	}
	cow_store_close(st);

	/* our own mount namespace: nothing mounted here is seen outside (the
	 * caller's is kept for binfmt_misc, which must outlive ours) */
	struct caller_ns caller = {open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC),
				   open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)};
	if (caller.ns < 0 || caller.root < 0) {
		err("cannot open this command's mount namespace: %s", strerror(errno));
		goto fail;
	}
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		err("cannot make a private mount namespace: %s", strerror(errno));
		goto fail;
	}
	char root[] = "/tmp/cowroot-shell.XXXXXX";
	if (!mkdtemp(root)) {
		err("cannot make a mount point: %s", strerror(errno));
		goto fail;
	}
	if (mount_view(root, name) != 0) {
		rmdir(root);
		goto fail;
	}
	int rc = 1;
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		err("cannot open the mounted root: %s", strerror(errno));
		goto out;
	}
	int guest = root_machine(rootfd), host = host_machine();
	if (guest && host && guest != host && binfmt_ensure(guest, &caller) < 0)
		goto out;
	const char *nspawn = chroot_only ? NULL : find_nspawn();
	if (setup_root(root, rootfd, !nspawn) < 0)
		goto out;
	char *const *command = cmd ? cmd : default_shell(rootfd);
	rc = nspawn ? run_nspawn(nspawn, root, rootfd, name, command) : run_chroot(root, name, command);
out:
	close(caller.ns);
	close(caller.root);
	if (rootfd >= 0)
		close(rootfd);
	/* the container's mounts go, then the view: its daemon writes the
	 * layer back and exits */
	if (umount2(root, MNT_DETACH) < 0)
		err("cannot unmount '%s': %s", root, strerror(errno));
	wait_released(name);
	rmdir(root);
	return rc;
fail:
	if (caller.ns >= 0)
		close(caller.ns);
	if (caller.root >= 0)
		close(caller.root);
	return 1;
}
