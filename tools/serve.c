/* SPDX-License-Identifier: MIT */
/*
 * `cowroot serve`: serve every client of the store over NFS with
 * nfs-ganesha and the COWROOT FSAL.  It writes STORE/run/ganesha.conf (one
 * export per client, reachable only from the client's addresses), starts
 * rpcbind when none runs (NFSv3 needs it), runs ganesha.nfsd, and stops
 * what it started when it gets SIGTERM or SIGINT.  SIGHUP rewrites the
 * configuration and has ganesha reload its exports, so clients can be
 * added and removed while others are served.
 *
 * It also serves the fleet's boot files over TFTP (boot.h), from a thread
 * of its own, unless --no-tftp.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "cli.h"
#include "cowroot.h"
#include "serve.h"
#include "tftp.h"

#ifndef COW_GANESHA_PLUGIN_DIR
#define COW_GANESHA_PLUGIN_DIR "/usr/lib/x86_64-linux-gnu/ganesha"
#endif
#define GANESHA_NFSD "ganesha.nfsd"
#define START_TIMEOUT_S 60
#define STOP_TIMEOUT_S 60
#define RELOAD_TIMEOUT_S 30

/* An export of the configuration written last, and what ganesha said of it */
struct served_export {
	char name[COW_ENTITY_NAME_MAX + 1];
	int first, last; /* its lines in ganesha.conf */
	bool failed;	 /* ganesha did not load it */
	bool specific;	 /* why is ganesha's own reason, not a summary line */
	char why[256];
};

/* Reading ganesha's log: what it says while it starts or reloads */
struct ganesha_log {
	int fd;		 /* STORE/run/ganesha.log, read from where this run began */
	char part[4096]; /* a line not yet complete */
	size_t len;
	bool watching;	 /* a start or a reload is under way */
	bool done;	 /* ganesha said it has finished starting or reloading */
	char fsal[512];	 /* why ganesha could not load the module, if it said */
	char fatal[512]; /* its last CRIT/FATAL/MAJ message (a FATAL one kept) */
	bool fatal_seen; /* fatal holds a FATAL message */
};

struct serve {
	char store[PATH_MAX];	       /* absolute store directory */
	char run[PATH_MAX + 8];	       /* STORE/run */
	const char *fsal;	       /* --fsal: module to use instead of the installed one */
	char fsal_buf[PATH_MAX + 64];  /* the module beside a build-tree cowroot */
	const char *server;	       /* --server: address printed in the nfsroot lines */
	int port;		       /* NFS port */
	size_t served;		       /* exports in the configuration written last */
	struct served_export *exports; /* those exports, @served of them */
	struct ganesha_log log;
	bool foreground, grace;
	bool unprivileged;	/* --allow-unprivileged-ports */
	bool io_flusher_fail;	/* ganesha may start without PR_SET_IO_FLUSHER */
	pid_t ganesha, rpcbind; /* children, 0 when not running */
	/* TFTP: the boot files */
	bool tftp;	   /* not --no-tftp */
	unsigned boot_gap; /* --boot-gap */
	struct tftp_config tftp_cfg;
	struct tftp_server *tftp_server;
	struct boot_server *boot;
	pthread_t tftp_thread;
	bool tftp_running;
	volatile sig_atomic_t tftp_stop;
	/* STORE/run/serve.sock: who is online, for `client list` */
	int status_fd, status_wake[2];
	pthread_t status_thread;
	bool status_running;
	/* the clients seen online at the last look, for the come-and-go log */
	struct online_client *online;
	size_t nonline;
	time_t last_look;
};

/* ---- who is online ---- */

#define ONLINE_S 60	 /* NFS activity within this makes a client online */
#define ONLINE_LOOK_S 10 /* how often the come-and-go log looks */

struct online_client {
	char name[COW_ENTITY_NAME_MAX + 1];
	int64_t last_op; /* its last NFS call (time(2)), 0: none */
	bool online;
	unsigned long long bytes, files; /* what its layer holds (quota.c) */
};

/* A line for the server's log (stderr: the journal under systemd) */
static void serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void serve_log(const char *fmt, ...)
{
	char ts[32], line[512];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", gmtime_r(&now, &tm));
	fprintf(stderr, "%s serve: %s\n", ts, line);
	fflush(stderr);
}

int unix_request(const char *dir, const char *sock, const char *req, int secs, FILE **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run/%s", dir, sock) >= (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct timeval tv = {.tv_sec = secs};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t len = strlen(req);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, req, len) != (ssize_t)len) {
		int e = errno;
		close(fd);
		return -e;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	*ret = f;
	return 0;
}

/* Ask the FSAL when each served client last called it: 0 with *@ret (free
 * it) and *@ret_n, or -errno. */
static int fsal_activity(const char *store, struct online_client **ret, size_t *ret_n)
{
	FILE *f;
	int rq = unix_request(store, "control.sock", "activity\n", 5, &f);
	if (rq < 0)
		return rq;
	char line[COW_ENTITY_NAME_MAX + 64];
	size_t n = 0, want = 0;
	struct online_client *v = NULL;
	int r = 0;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "0 %zu", &want) != 1 || want > 100000)
		r = -EPROTO;
	if (r == 0 && want && !(v = calloc(want, sizeof(*v))))
		r = -ENOMEM;
	while (r == 0 && n < want && fgets(line, sizeof(line), f)) {
		long long last;
		unsigned long long bytes = 0, files = 0;
		char name[COW_ENTITY_NAME_MAX + 2];
		if (sscanf(line, "%65s %lld %llu %llu", name, &last, &bytes, &files) < 2 || cow_name_check(name) < 0)
			continue;
		snprintf(v[n].name, sizeof(v[n].name), "%.64s", name);
		v[n].bytes = bytes;
		v[n].files = files;
		v[n].last_op = last;
		v[n].online = last > 0 && time(NULL) - last < ONLINE_S;
		n++;
	}
	fclose(f);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Every ONLINE_LOOK_S: log each client that came online or went away. */
static void look_online(struct serve *s)
{
	time_t now = time(NULL);
	if (now - s->last_look < ONLINE_LOOK_S)
		return;
	s->last_look = now;
	struct online_client *v;
	size_t n;
	if (fsal_activity(s->store, &v, &n) < 0)
		return; /* no client served yet: the FSAL is not loaded */
	for (size_t i = 0; i < n; i++) {
		bool was = false;
		for (size_t j = 0; j < s->nonline; j++)
			if (!strcmp(s->online[j].name, v[i].name))
				was = s->online[j].online;
		if (v[i].online && !was)
			serve_log("client %s: online (NFS calls)", v[i].name);
		else if (!v[i].online && was)
			serve_log("client %s: offline (no NFS call for %d s)", v[i].name, ONLINE_S);
	}
	free(s->online);
	s->online = v;
	s->nonline = n;
}

/* One request on STORE/run/serve.sock: "status" gets "0 N" and one line
 * per served client: NAME ONLINE LAST_NFS BOOT_BEGAN BOOT_ADDR KERNEL
 * VERSION LAYER_BYTES LAYER_OBJECTS, tab-separated ("-" for none). */
static void status_one(struct serve *s, int fd)
{
	char req[64];
	ssize_t k = read(fd, req, sizeof(req) - 1);
	if (k <= 0)
		return;
	req[k] = 0;
	req[strcspn(req, "\n")] = 0;
	FILE *f = fdopen(dup(fd), "w");
	if (!f)
		return;
	struct online_client *v = NULL;
	size_t n = 0;
	if (strcmp(req, "status")) {
		fprintf(f, "%d unknown request\n", -EINVAL);
	} else if (fsal_activity(s->store, &v, &n) < 0 && n == 0) {
		fprintf(f, "0 0\n"); /* nothing served yet */
	} else {
		fprintf(f, "0 %zu\n", n);
		for (size_t i = 0; i < n; i++) {
			struct boot_status b;
			bool booted = s->boot && boot_server_status(s->boot, v[i].name, &b) == 0;
			fprintf(f, "%s\t%d\t%lld\t%lld\t%s\t%s\t%s\t%llu\t%llu\n", v[i].name, v[i].online,
				(long long)v[i].last_op, booted ? (long long)b.began : 0LL,
				booted && b.addr[0] ? b.addr : "-", booted && b.kernel[0] ? b.kernel : "-",
				booted && b.version[0] ? b.version : "-", v[i].bytes, v[i].files);
		}
	}
	free(v);
	fclose(f);
}

static void *status_main(void *arg)
{
	struct serve *s = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = s->status_fd, .events = POLLIN},
				      {.fd = s->status_wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		int fd = accept4(s->status_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct timeval tv = {.tv_sec = 5};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		status_one(s, fd);
		close(fd);
	}
	return NULL;
}

/* Listen on STORE/run/serve.sock (mode 0600: root's) */
static int status_start(struct serve *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/serve.sock", s->run) >= (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	unlink(sa.sun_path);
	s->status_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->status_fd < 0)
		return -errno;
	mode_t old = umask(077);
	int r = bind(s->status_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->status_fd, 16) < 0 ? -errno : 0;
	umask(old);
	if (r == 0 && pipe2(s->status_wake, O_CLOEXEC) < 0)
		r = -errno;
	if (r == 0)
		r = -pthread_create(&s->status_thread, NULL, status_main, s);
	if (r < 0) {
		close(s->status_fd);
		s->status_fd = -1;
		return r;
	}
	s->status_running = true;
	return 0;
}

static void status_stop(struct serve *s)
{
	if (s->status_running) {
		if (write(s->status_wake[1], "x", 1) != 1) {
			/* the thread then stays until exit */
		}
		pthread_join(s->status_thread, NULL);
		s->status_running = false;
		close(s->status_wake[0]);
		close(s->status_wake[1]);
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/serve.sock", s->run);
		unlink(path);
	}
	if (s->status_fd >= 0)
		close(s->status_fd);
	s->status_fd = -1;
	free(s->online);
	s->online = NULL;
	s->nonline = 0;
}

static void *tftp_main(void *arg)
{
	struct serve *s = arg;
	int r = tftp_server_run(s->tftp_server, &s->tftp_stop);
	if (r < 0)
		err("TFTP stopped: %s", strerror(-r));
	return NULL;
}

/* Bind the TFTP port and start serving the boot files. */
static int tftp_start(struct serve *s)
{
	struct boot_config bc = {.store = s->store, .nfs_port = s->port, .boot_gap = s->boot_gap, .log = tftp_log_line};
	int r = boot_server_open(&bc, &s->boot);
	if (r < 0) {
		err("cannot open the store for TFTP: %s", strerror(-r));
		return r;
	}
	s->tftp_cfg.resolve = boot_resolve;
	s->tftp_cfg.resolve_arg = s->boot;
	s->tftp_cfg.log = tftp_log_line;
	r = tftp_server_open(&s->tftp_cfg, &s->tftp_server);
	if (r < 0) {
		err("cannot serve TFTP on %s port %u: %s%s",
		    s->tftp_cfg.address ? s->tftp_cfg.address : "every address", s->tftp_cfg.port, strerror(-r),
		    r == -EADDRINUSE ? " (another TFTP server runs: stop it, or pass --no-tftp or --tftp-port N)" : "");
		boot_server_close(s->boot);
		s->boot = NULL;
		return r;
	}
	r = -pthread_create(&s->tftp_thread, NULL, tftp_main, s);
	if (r < 0) {
		err("cannot start the TFTP thread: %s", strerror(-r));
		tftp_server_free(s->tftp_server);
		boot_server_close(s->boot);
		s->tftp_server = NULL;
		s->boot = NULL;
		return r;
	}
	s->tftp_running = true;
	return 0;
}

static void tftp_stop(struct serve *s)
{
	if (s->tftp_running) {
		s->tftp_stop = 1;
		pthread_join(s->tftp_thread, NULL);
		s->tftp_running = false;
	}
	tftp_server_free(s->tftp_server);
	boot_server_close(s->boot);
	s->tftp_server = NULL;
	s->boot = NULL;
}

static void run_path(const struct serve *s, char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", s->run, name);
}

/* ---- files ---- */

/* Is @fd on a file system without Unix modes (the FAT of an SD card, whose
 * chmod fails with EPERM where the mode cannot be kept)? */
static bool no_modes(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && (sf.f_type == MSDOS_SUPER_MAGIC || sf.f_type == 0x2011BAB0 /* exfat */);
}

int write_file_at(int dir, const char *name, const char *data, size_t len, mode_t mode)
{
	char tmp[NAME_MAX + 1];
	int fd = -1, r = 0;
	if (snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", name, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlinkat(dir, tmp, 0); /* left by a crash of an earlier run of this pid */
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < len && r == 0;) {
		ssize_t k = write(fd, data + done, len - done);
		if (k < 0 && errno != EINTR)
			r = -errno;
		else if (k == 0)
			r = -ENOSPC; /* no progress: never spin */
		else if (k > 0)
			done += (size_t)k;
	}
	if (r == 0 && fchmod(fd, mode) < 0 &&
	    !(errno == EPERM && no_modes(fd))) /* the umask is not the admin's choice here */
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dir, tmp, dir, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dir, tmp, 0);
	return r;
}

/* ---- the clients ---- */

struct served_client {
	char name[COW_ENTITY_NAME_MAX + 1];
	uint64_t id; /* the export id */
	char addrs[COW_ADDRS_MAX + 1];
};

struct client_list {
	struct served_client *v;
	size_t n;
};

static int collect(void *arg, const struct cow_client_info *c)
{
	struct client_list *l = arg;
	struct served_client *v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	memset(&v[l->n], 0, sizeof(v[l->n]));
	snprintf(v[l->n].name, sizeof(v[l->n].name), "%s", c->name);
	v[l->n].id = c->id;
	l->n++;
	return 0;
}

static int load_clients(const struct serve *s, struct client_list *l)
{
	struct cow_store *st;
	int r = cow_store_open(s->store, COW_STORE_READONLY, &st);
	if (r < 0) {
		err("cannot open store '%s': %s", s->store, strerror(-r));
		return r;
	}
	l->v = NULL;
	l->n = 0;
	r = cow_client_foreach(st, collect, l);
	for (size_t i = 0; r == 0 && i < l->n; i++)
		r = cow_client_get_addrs(st, l->v[i].name, l->v[i].addrs, sizeof(l->v[i].addrs));
	cow_store_close(st);
	if (r < 0)
		err("cannot read the clients of '%s': %s", s->store, strerror(-r));
	return r;
}

/* ---- ganesha's configuration ---- */

/* ganesha wants Export_Id in 1..65535 (0 is the pseudo root), the ids
 * clients are given now; a store from before ids were reused may hold
 * higher ones */
static bool export_id_ok(uint64_t id)
{
	return id >= 1 && id <= COW_CLIENT_ID_MAX;
}

/* Whether client @c gets an export; if not, *@ret_why says why. */
static bool exportable(const struct served_client *c, const char **ret_why)
{
	*ret_why = NULL;
	if (!export_id_ok(c->id))
		*ret_why = "its id is beyond ganesha's export ids";
	else if (!c->addrs[0])
		*ret_why = "no addresses (add the client with --ip ADDR)";
	else if (cow_addrs_check(c->addrs, NULL, NULL, NULL) < 0)
		*ret_why = "its addresses are invalid (correct them with 'cowroot client set NAME --ip')";
	return !*ret_why;
}

/* The lines of a text being written, each byte counted once. */
struct line_count {
	size_t counted; /* bytes of the text counted */
	int line;	/* the line after them, from 1 */
};

/* The line the next byte written to @f goes on: @f is an open_memstream
 * on *@buf, *@len bytes, of which @lc counted the first earlier. */
static int count_lines(FILE *f, char **buf, size_t *len, struct line_count *lc)
{
	fflush(f);
	for (; lc->counted < *len; lc->counted++)
		lc->line += (*buf)[lc->counted] == '\n';
	return lc->line;
}

/* The major version of the ganesha.nfsd on PATH ("NFS-Ganesha Release =
 * V6.5"), 0 when it cannot be told. */
static int ganesha_major(void)
{
	FILE *p = popen(GANESHA_NFSD " -v 2>/dev/null", "re");
	if (!p)
		return 0;
	char line[256];
	int major = 0;
	while (fgets(line, sizeof(line), p))
		if (sscanf(line, "NFS-Ganesha Release = V%d", &major) == 1)
			break;
	pclose(p);
	return major;
}

/*
 * ganesha 5 and later mark their process an I/O flusher (PR_SET_IO_FLUSHER:
 * memory reclaim then never waits on the writes it is itself to do) and
 * refuse to start where that is not allowed: without CAP_SYS_RESOURCE, as
 * in some containers.  ganesha runs with serve's credentials, so serve
 * tries first; where it is refused too, ganesha is told to go on without
 * (allow_set_io_flusher_fail), which serve says at start.  True then.
 */
static bool io_flusher_refused(void)
{
	int was = prctl(PR_GET_IO_FLUSHER, 0, 0, 0, 0);
	if (was < 0 && errno == EINVAL)
		return false; /* a kernel before 5.6: ganesha goes on */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0) {
		prctl(PR_SET_IO_FLUSHER, was > 0, 0, 0, 0);
		return false;
	}
	return errno == EPERM && ganesha_major() >= 5;
}

static int write_config(struct serve *s, const struct client_list *l, const char *plugins)
{
	char path[PATH_MAX + 64], *text = NULL;
	size_t len = 0;
	run_path(s, path, sizeof(path), "ganesha.conf");
	struct served_export *exports = calloc(l->n ? l->n : 1, sizeof(*exports));
	FILE *f = exports ? open_memstream(&text, &len) : NULL;
	if (!f) {
		free(exports);
		err("cannot write the configuration: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	/* an unprivileged source port is any process on the client machine, not its kernel */
	const char *priv = s->unprivileged ? "false" : "true";
	fprintf(f, "# Written by 'cowroot serve' from the store %s; changes are overwritten.\n\n", s->store);
	fprintf(f, "NFS_CORE_PARAM {\n\tProtocols = 3, 4;\n\tNFS_Port = %d;\n\tMount_Path_Pseudo = true;\n", s->port);
	if (plugins)
		fprintf(f, "\tPlugins_Dir = \"%s\";\n", plugins);
	if (s->io_flusher_fail)
		fprintf(f, "\t# no CAP_SYS_RESOURCE for PR_SET_IO_FLUSHER here\n\tallow_set_io_flusher_fail = true;\n");
	fprintf(f, "}\n\n");
	fprintf(f, "NFSv4 {\n\tRecoveryRoot = \"%s/recovery\";\n\tOnly_Numeric_Owners = true;\n%s}\n\n", s->run,
		s->grace ? "" : "\tGraceless = true;\n");
	fprintf(f, "COWROOT {\n\tStore = \"%s\";\n}\n\n", s->store);
	if (s->unprivileged)
		fprintf(f, "# --allow-unprivileged-ports: any user of a client machine can claim uid 0\n");
	fprintf(f,
		"EXPORT_DEFAULTS {\n\tAccess_Type = None;\n\tSquash = No_Root_Squash;\n\tPrivilegedPort = %s;\n}\n\n",
		priv);
	size_t n = 0;
	struct line_count lc = {0, 1};
	for (size_t i = 0; i < l->n; i++) {
		const struct served_client *c = &l->v[i];
		const char *why;
		if (!exportable(c, &why))
			continue;
		snprintf(exports[n].name, sizeof(exports[n].name), "%s", c->name);
		exports[n].first = count_lines(f, &text, &len, &lc);
		fprintf(f,
			"EXPORT {\n"
			"\tExport_Id = %llu;\n"
			"\tPath = \"/clients/%s\";\n"
			"\tPseudo = \"/clients/%s\";\n"
			"\tProtocols = 3, 4;\n"
			"\tTransports = TCP;\n"
			"\tSecType = sys;\n"
			"\tAccess_Type = None;\n"
			"\tSquash = No_Root_Squash;\n"
			"\tPrivilegedPort = %s;\n"
			"\tCLIENT {\n\t\tClients = %s;\n\t\tAccess_Type = RW;\n\t}\n"
			"\tFSAL {\n\t\tName = COWROOT;\n\t\tClient = \"%s\";\n\t}\n"
			"}\n",
			(unsigned long long)c->id, c->name, c->name, priv, c->addrs, c->name);
		exports[n].last = count_lines(f, &text, &len, &lc) - 1;
		fprintf(f, "\n");
		n++;
	}
	fprintf(f, "LOG {\n\tDefault_Log_Level = EVENT;\n}\n");
	if (fclose(f) != 0) {
		free(text);
		free(exports);
		err("cannot write the configuration: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	int dir = open(s->run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = dir < 0 ? -errno : write_file_at(dir, "ganesha.conf", text, len, 0644);
	if (dir >= 0)
		close(dir);
	free(text);
	if (r < 0) {
		free(exports);
		err("cannot write '%s': %s", path, strerror(-r));
		return r;
	}
	free(s->exports);
	s->exports = exports;
	s->served = n;
	return 0;
}

/* With --fsal, a private plugin directory: the module beside links to the
 * stock ones (Plugins_Dir replaces the default for every FSAL). */
static int make_plugin_dir(const struct serve *s, char *dir, size_t n)
{
	char link[PATH_MAX * 2], target[PATH_MAX];
	run_path(s, dir, n, "plugins");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (!realpath(s->fsal, target))
		return -errno;
	snprintf(link, sizeof(link), "%s/libfsalcowroot.so", dir);
	unlink(link);
	if (symlink(target, link) < 0)
		return -errno;
	static const char *const stock[] = {"libfsalvfs.so",	  "libfsalxfs.so",  "libfsalproxy_v4.so",
					    "libfsalproxy_v3.so", "libfsalnull.so", "libfsalmem.so"};
	for (size_t i = 0; i < sizeof(stock) / sizeof(stock[0]); i++) {
		snprintf(target, sizeof(target), "%s/%s", COW_GANESHA_PLUGIN_DIR, stock[i]);
		snprintf(link, sizeof(link), "%s/%s", dir, stock[i]);
		unlink(link);
		if (access(target, F_OK) == 0 && symlink(target, link) < 0)
			return -errno;
	}
	return 0;
}

/* ---- ganesha's log ----
 *
 * ganesha says in its log what it could not load: "Config File (PATH:LINE):
 * MESSAGE" for each error, the line inside the export block it concerns, a
 * line from the module naming the client it cannot serve, and "Failed to
 * load module (PATH) because: REASON".  serve reads the log from where its
 * run began, maps each error to an export by the lines that export has in
 * the configuration written last, and, in the foreground, copies the log to
 * stderr (for the journal). */

static int log_open(struct serve *s)
{
	char path[PATH_MAX + 64];
	run_path(s, path, sizeof(path), "ganesha.log");
	s->log.fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->log.fd < 0 || lseek(s->log.fd, 0, SEEK_END) < 0) {
		int e = errno; /* before err() can change it */
		err("cannot open '%s': %s", path, strerror(e));
		if (s->log.fd >= 0)
			close(s->log.fd);
		s->log.fd = -1;
		return -e;
	}
	s->log.len = 0;
	return 0;
}

/* A summary ganesha adds after the reason ("1 validation errors in block
 * EXPORT"), kept only when nothing better was said. */
static bool summary_line(const char *msg)
{
	return strstr(msg, "validation errors in block") || strstr(msg, "Errors processing block") ||
	       strstr(msg, "errors while processing parameters") || strstr(msg, "errors found block") ||
	       strstr(msg, "Could not create export for");
}

static void export_failed(struct served_export *e, const char *why, bool specific)
{
	e->failed = true;
	if (!e->why[0] || (specific && !e->specific)) {
		snprintf(e->why, sizeof(e->why), "%s", why);
		e->specific = specific;
	}
}

static void copy_rest(char *buf, size_t n, const char *from)
{
	snprintf(buf, n, "%s", from);
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
}

static void log_line(struct serve *s, const char *line)
{
	struct ganesha_log *g = &s->log;
	const char *p;
	if (!g->watching)
		return;
	if (strstr(line, "NFS SERVER INITIALIZED") || strstr(line, "Reread exports complete") ||
	    strstr(line, "Export block error") || strstr(line, "Export defaults block error") ||
	    strstr(line, "Error while parsing new configuration file"))
		g->done = true;
	const char *level;
	if ((level = strstr(line, ":CRIT :")) || (level = strstr(line, ":FATAL :")) ||
	    (level = strstr(line, ":MAJ :"))) {
		p = strchr(level + 1, ':') + 1; /* the message, after ":LEVEL :" */
		bool fatal = level[1] == 'F';
		/* ganesha 6 follows a FATAL message with "stack backtrace
		 * follows:" (MAJ) and the backtrace: the reason is the former */
		if (!strstr(p, "DBUS") && !strstr(p, "dbus") && !strstr(p, "krb5") && !strstr(p, "principal") &&
		    !strstr(p, "stack backtrace follows") && (fatal || !g->fatal_seen)) {
			copy_rest(g->fatal, sizeof(g->fatal), p);
			g->fatal_seen = fatal;
		}
	}
	/* ganesha 4.3: "Failed to load module (PATH) because: WHY" (MAJ);
	 * 6.5: "Could not dlopen module: PATH Error: WHY. You might want to
	 * install the nfs-ganesha-COWROOT package" (FATAL; no such package) */
	if ((p = strstr(line, "Failed to load module (")) && strstr(p, "libfsalcowroot") && !g->fsal[0])
		copy_rest(g->fsal, sizeof(g->fsal), p + strlen("Failed to load module "));
	if ((p = strstr(line, "Could not dlopen module: ")) && strstr(p, "libfsalcowroot") && !g->fsal[0]) {
		copy_rest(g->fsal, sizeof(g->fsal), p + strlen("Could not dlopen module: "));
		char *advice = strstr(g->fsal, ". You might want to install");
		if (advice)
			*advice = 0;
	}
	if ((p = strstr(line, "cowroot: cannot serve client '"))) {
		p += strlen("cowroot: cannot serve client '");
		for (size_t i = 0; i < s->served; i++) {
			struct served_export *e = &s->exports[i];
			size_t k = strlen(e->name);
			if (!strncmp(p, e->name, k) && !strncmp(p + k, "': ", 3)) {
				char why[256];
				copy_rest(why, sizeof(why), p + k + 3);
				export_failed(e, why, true);
			}
		}
	}
	char conf[PATH_MAX + 64];
	run_path(s, conf, sizeof(conf), "ganesha.conf");
	if ((p = strstr(line, "Config File (")) && !strncmp(p + 13, conf, strlen(conf)) &&
	    p[13 + strlen(conf)] == ':') {
		char *end;
		long n = strtol(p + 14 + strlen(conf), &end, 10);
		if (strncmp(end, "): ", 3))
			return;
		for (size_t i = 0; i < s->served; i++) {
			struct served_export *e = &s->exports[i];
			if (n >= e->first && n <= e->last) {
				char why[256];
				copy_rest(why, sizeof(why), end + 3);
				export_failed(e, why, !summary_line(why));
			}
		}
	}
}

/* Read what ganesha added to its log; true if there was anything. */
static bool log_poll(struct serve *s)
{
	struct ganesha_log *g = &s->log;
	bool any = false;
	for (;;) {
		ssize_t k = read(g->fd, g->part + g->len, sizeof(g->part) - 1 - g->len);
		struct stat st;
		off_t at = lseek(g->fd, 0, SEEK_CUR);
		if (k == 0 && fstat(g->fd, &st) == 0 && at > st.st_size) {
			lseek(g->fd, 0, SEEK_SET); /* truncated by a log rotation: read it anew */
			g->len = 0;
			continue;
		}
		if (k <= 0)
			return any;
		any = true;
		g->len += (size_t)k;
		char *start = g->part, *nl;
		while ((nl = memchr(start, '\n', g->len - (size_t)(start - g->part)))) {
			*nl = 0;
			if (s->foreground)
				fprintf(stderr, "%s\n", start);
			log_line(s, start);
			start = nl + 1;
		}
		g->len -= (size_t)(start - g->part);
		memmove(g->part, start, g->len);
		if (g->len == sizeof(g->part) - 1) { /* a line longer than that: take it in parts */
			g->part[g->len] = 0;
			log_line(s, g->part);
			g->len = 0;
		}
	}
}

static void log_watch(struct serve *s)
{
	log_poll(s); /* what was said before is not about this */
	s->log.watching = true;
	s->log.done = false;
	s->log.fsal[0] = s->log.fatal[0] = 0;
	s->log.fatal_seen = false;
	for (size_t i = 0; i < s->served; i++) {
		s->exports[i].failed = s->exports[i].specific = false;
		s->exports[i].why[0] = 0;
	}
}

/* After ganesha said it is done: what it logs right after (its list of
 * configuration errors comes after "Reread exports complete"), until its
 * log has been quiet for 300 ms (at most 5 s). */
static void log_settle(struct serve *s)
{
	for (int quiet = 0, i = 0; quiet < 3 && i < 50; i++) {
		quiet = log_poll(s) ? 0 : quiet + 1;
		usleep(100000);
	}
	s->log.watching = false;
}

/* Say what ganesha could not load; the number of exports it refused. */
static size_t report_failures(const struct serve *s)
{
	size_t n = 0;
	if (s->log.fsal[0])
		err("ganesha cannot load the COWROOT FSAL %s%s", s->log.fsal,
		    s->fsal ? "" : " (install it with 'meson install', or pass --fsal PATH)");
	for (size_t i = 0; i < s->served; i++) {
		const struct served_export *e = &s->exports[i];
		if (e->failed) {
			err("client '%s' is not served: ganesha did not load its export: %s", e->name, e->why);
			n++;
		}
	}
	return n;
}

static const struct served_export *export_of(const struct serve *s, const char *name)
{
	for (size_t i = 0; i < s->served; i++)
		if (!strcmp(s->exports[i].name, name))
			return &s->exports[i];
	return NULL;
}

/* ---- processes ---- */

static bool tcp_port_open(const char *addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, addr, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Ask the FSAL's control socket: 0 on "0", else a negative errno. */
int serve_control(const char *dir, const char *req, char *reply, size_t n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run/control.sock", dir) >= (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r = 0;
	size_t len = strlen(req);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, req, len) != (ssize_t)len)
		r = -errno;
	ssize_t k = r ? -1 : read(fd, reply, n - 1);
	close(fd);
	if (r)
		return r;
	if (k <= 0)
		return -EIO;
	reply[k] = 0;
	reply[strcspn(reply, "\n")] = 0;
	return atoi(reply);
}

static pid_t spawn(char *const argv[], const sigset_t *mask)
{
	pid_t pid = fork();
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, mask, NULL);
		execvp(argv[0], argv);
		fprintf(stderr, "cowroot: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Stop child *@pid: SIGTERM, then SIGKILL after the timeout. */
static void stop_child(pid_t *pid, const char *what)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < STOP_TIMEOUT_S * 10; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		usleep(100000);
	}
	err("%s (pid %d) did not stop; killing it", what, (int)*pid);
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

/* The address printed in nfsroot lines: --server, else the first IPv4
 * address of an interface that is up and not loopback. */
void server_addr(const char *given, char *buf, size_t n)
{
	struct ifaddrs *ifa, *i;
	snprintf(buf, n, "%s", given ? given : "SERVER");
	if (given || getifaddrs(&ifa) < 0)
		return;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, (socklen_t)n);
		break;
	}
	freeifaddrs(ifa);
}

void nfsroot_line(const char *server, const char *client, int port, char *buf, size_t n)
{
	char portopt[32] = "";
	if (port != 2049)
		snprintf(portopt, sizeof(portopt), ",port=%d", port);
	/* no server: the kernel takes the one DHCP named */
	/* boot=nfs: a stock initramfs-tools initramfs says BOOT=local, which
	 * root=/dev/nfs does not override */
	snprintf(buf, n, "root=/dev/nfs nfsroot=%s%s/clients/%s,vers=3,tcp%s rw ip=dhcp boot=nfs", server,
		 *server ? ":" : "", client, portopt);
}

static void print_clients(const struct serve *s, const struct client_list *l)
{
	char addr[INET6_ADDRSTRLEN], line[512];
	server_addr(s->server, addr, sizeof(addr));
	for (size_t i = 0; i < l->n; i++) {
		const struct served_client *c = &l->v[i];
		const struct served_export *e = export_of(s, c->name);
		const char *why;
		if (!exportable(c, &why)) {
			printf("%s: not served: %s\n", c->name, why);
		} else if (!e || e->failed) {
			printf("%s: not served: ganesha did not load its export: %s\n", c->name,
			       e ? e->why : "(unknown)");
		} else {
			nfsroot_line(addr, c->name, s->port, line, sizeof(line));
			printf("%s (%s): %s\n", c->name, c->addrs, line);
		}
	}
	fflush(stdout);
}

/* Write the configuration from the store; its clients in @l. */
static int configure(struct serve *s, struct client_list *l)
{
	char plugins[PATH_MAX + 16];
	int r = load_clients(s, l);
	if (r < 0)
		return r;
	if (s->fsal && (r = make_plugin_dir(s, plugins, sizeof(plugins))) < 0)
		err("cannot use the FSAL module '%s': %s", s->fsal, strerror(-r));
	if (r == 0)
		r = write_config(s, l, s->fsal ? plugins : NULL);
	if (r < 0) {
		free(l->v);
		l->v = NULL;
	}
	return r;
}

static int start(struct serve *s, const sigset_t *mask)
{
	char conf[PATH_MAX + 64], pidfile[PATH_MAX + 64], log[PATH_MAX + 64], reply[128];
	run_path(s, conf, sizeof(conf), "ganesha.conf");
	run_path(s, pidfile, sizeof(pidfile), "ganesha.pid");
	run_path(s, log, sizeof(log), "ganesha.log");

	if (!tcp_port_open("127.0.0.1", 111)) {
		char *argv[] = {"rpcbind", "-f", "-w", NULL};
		s->rpcbind = spawn(argv, mask);
		for (int i = 0; i < 100 && !tcp_port_open("127.0.0.1", 111); i++)
			usleep(50000);
		if (!tcp_port_open("127.0.0.1", 111)) {
			err("rpcbind did not start (NFSv3 needs it)");
			return -EIO;
		}
	}
	log_watch(s);
	char *argv[] = {GANESHA_NFSD, "-F", "-f", conf, "-p", pidfile, "-L", log, NULL};
	s->ganesha = spawn(argv, mask);
	for (int i = 0; i < START_TIMEOUT_S * 10; i++) {
		log_poll(s);
		if (waitpid(s->ganesha, NULL, WNOHANG) == s->ganesha) {
			s->ganesha = 0;
			log_settle(s);
			if (!report_failures(s) && !s->log.fsal[0])
				err("ganesha.nfsd exited at start%s%s (see %s)", s->log.fatal[0] ? ": " : "",
				    s->log.fatal, log);
			return -EIO;
		}
		if (s->log.done && tcp_port_open("127.0.0.1", s->port))
			break;
		usleep(100000);
	}
	if (!s->log.done || !tcp_port_open("127.0.0.1", s->port)) {
		err("ganesha.nfsd did not come up within %d s%s%s (see %s)", START_TIMEOUT_S,
		    s->log.fatal[0] ? "; it said: " : "", s->log.fatal, log);
		return -ETIMEDOUT;
	}
	log_settle(s);
	if (report_failures(s) || s->log.fsal[0]) {
		err("not serving: ganesha did not load every export (see %s)", log);
		return -EIO;
	}
	/* ganesha loads the FSAL (which answers on the control socket) with
	 * the first export that uses it: none yet, none to wait for */
	for (int i = 0; s->served && serve_control(s->store, "ping\n", reply, sizeof(reply)) != 0; i++) {
		if (i == START_TIMEOUT_S * 10) {
			err("the COWROOT FSAL does not answer on %s/control.sock", s->run);
			return -ETIMEDOUT;
		}
		usleep(100000);
	}
	return 0;
}

/* SIGHUP: rewrite the configuration, have ganesha reload it and say which
 * clients it serves, and which not and why. */
static void reload(struct serve *s)
{
	struct client_list l;
	if (configure(s, &l) < 0)
		return;
	log_watch(s);
	kill(s->ganesha, SIGHUP);
	for (int i = 0; i < RELOAD_TIMEOUT_S * 10 && !s->log.done; i++) {
		log_poll(s);
		usleep(100000);
	}
	if (!s->log.done)
		err("ganesha.nfsd did not say within %d s that it reloaded its exports", RELOAD_TIMEOUT_S);
	log_settle(s);
	report_failures(s);
	printf("reloaded; clients:\n");
	print_clients(s, &l);
	free(l.v);
}

static int write_pid(const struct serve *s)
{
	char path[PATH_MAX + 64];
	run_path(s, path, sizeof(path), "serve.pid");
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f) == 0 ? 0 : -errno;
}

static pid_t read_pid(const char *dir)
{
	char path[PATH_MAX + 64];
	int pid = 0;
	snprintf(path, sizeof(path), "%s/run/serve.pid", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid > 0 && kill(pid, 0) == 0 ? pid : 0;
}

void serve_notify(const char *dir)
{
	pid_t pid = read_pid(dir);
	if (pid > 0 && kill(pid, SIGHUP) == 0)
		printf("told the server (pid %d) to reload its clients\n", (int)pid);
}

/* The server's life after start: reload on SIGHUP, stop on SIGTERM/SIGINT
 * or when ganesha dies. */
static int supervise(struct serve *s, const sigset_t *set)
{
	for (;;) {
		siginfo_t si;
		struct timespec tick = {.tv_sec = 0, .tv_nsec = 500000000};
		int sig = sigtimedwait(set, &si, &tick);
		log_poll(s); /* in the foreground, ganesha's messages go on to stderr */
		look_online(s);
		if (sig < 0)
			continue;
		if (sig == SIGHUP) {
			reload(s);
			continue;
		}
		if (sig == SIGCHLD) {
			pid_t pid;
			int status;
			bool ganesha_died = false;
			while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
				if (pid == s->ganesha) {
					s->ganesha = 0;
					ganesha_died = true;
				} else if (pid == s->rpcbind) {
					s->rpcbind = 0;
					err("rpcbind exited; NFSv3 clients cannot mount any more");
				}
			}
			if (!ganesha_died)
				continue;
			err("ganesha.nfsd exited unexpectedly (status %d)", status);
			stop_child(&s->rpcbind, "rpcbind");
			return 1;
		}
		/* SIGTERM, SIGINT */
		stop_child(&s->ganesha, "ganesha.nfsd");
		stop_child(&s->rpcbind, "rpcbind");
		log_poll(s);
		return 0;
	}
}

/* A cowroot run from its build tree serves with the module built beside it
 * (ganesha-fsal/ of the same build), not with an installed one of another
 * version, or none: NULL for an installed cowroot. */
static const char *build_tree_fsal(char *buf, size_t n)
{
#ifdef COW_BUILD_ROOT
	char exe[PATH_MAX], built[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (k <= 0)
		return NULL;
	exe[k] = 0;
	if (!realpath(COW_BUILD_ROOT "/tools/cowroot", built) || strcmp(exe, built))
		return NULL;
	snprintf(buf, n, "%s/ganesha-fsal/libfsalcowroot.so", COW_BUILD_ROOT);
	return access(buf, F_OK) == 0 ? buf : NULL;
#else
	(void)buf;
	(void)n;
	return NULL;
#endif
}

static int serve_usage(void)
{
	fprintf(stderr, "usage: cowroot [--store DIR] serve [--foreground] [--port N] [--server ADDR] "
			"[--fsal PATH] [--no-grace]\n"
			"         [--no-tftp] [--tftp-port N] [--tftp-address ADDR] [--tftp-max N] [--boot-gap S]\n"
			"         [--allow-unprivileged-ports]\n"
			"  --foreground   stay attached, ganesha's log copied to stderr (for systemd)\n"
			"  --port N       NFS port (default 2049; stock initramfs clients need 2049)\n"
			"  --server ADDR  address to print in the nfsroot lines\n"
			"  --fsal PATH    use this libfsalcowroot.so instead of the installed one\n"
			"                 (a cowroot run from its build tree uses the one built beside it)\n"
			"  --no-grace     skip the NFSv4 grace period at start (no lock reclaim)\n"
			"  --no-tftp      do not serve the boot files over TFTP\n"
			"  --tftp-port N  TFTP port (default 69; the Pi boot ROM and u-boot use 69)\n"
			"  --tftp-max N   TFTP transfers at once (default 1024; 8 per address)\n"
			"  --tftp-address ADDR  serve TFTP on this address only (default: every address)\n"
			"  --boot-gap S   a client's first TFTP request after S seconds without one begins\n"
			"                 a boot (logged; a client set --on-boot reset is reset; default 30)\n"
			"  --allow-unprivileged-ports\n"
			"                 accept NFS calls from source ports >= 1024 (emulated clients behind\n"
			"                 NAT): then any user of a client machine can act as its root\n");
	return 2;
}

int cmd_serve(int argc, char **argv)
{
	struct serve s = {
	    .port = 2049, .grace = true, .log.fd = -1, .tftp = true, .tftp_cfg.port = 69, .status_fd = -1};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--foreground"))
			s.foreground = true;
		else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			unsigned port;
			if (!parse_count(argv[++i], 65535, &port))
				return serve_usage();
			s.port = (int)port;
		} else if (!strcmp(argv[i], "--server") && i + 1 < argc)
			s.server = argv[++i];
		else if (!strcmp(argv[i], "--fsal") && i + 1 < argc)
			s.fsal = argv[++i];
		else if (!strcmp(argv[i], "--no-grace"))
			s.grace = false;
		else if (!strcmp(argv[i], "--allow-unprivileged-ports"))
			s.unprivileged = true;
		else if (!strcmp(argv[i], "--no-tftp"))
			s.tftp = false;
		else if (!strcmp(argv[i], "--tftp-port") && i + 1 < argc) {
			unsigned port;
			if (!parse_count(argv[++i], 65535, &port))
				return serve_usage();
			s.tftp_cfg.port = (uint16_t)port;
		} else if (!strcmp(argv[i], "--tftp-max") && i + 1 < argc) {
			if (!parse_count(argv[++i], 65536, &s.tftp_cfg.max_transfers))
				return serve_usage();
		} else if (!strcmp(argv[i], "--boot-gap") && i + 1 < argc) {
			if (!parse_count(argv[++i], 86400, &s.boot_gap))
				return serve_usage();
		} else if (!strcmp(argv[i], "--tftp-address") && i + 1 < argc)
			s.tftp_cfg.address = argv[++i];
		else
			return serve_usage();
	}
	if (s.port <= 0 || s.port > 65535)
		return serve_usage();
	if (!s.fsal)
		s.fsal = build_tree_fsal(s.fsal_buf, sizeof(s.fsal_buf));
	/* ganesha loads the module only with the first export: with no client
	 * yet, a missing one would go unnoticed until a client is added */
	const char *module = s.fsal ? s.fsal : COW_GANESHA_PLUGIN_DIR "/libfsalcowroot.so";
	if (access(module, R_OK) < 0) {
		err("cannot use the FSAL module '%s': %s%s", module, strerror(errno),
		    s.fsal ? "" : " (build with -Dfsal=enabled and 'meson install' it, or pass --fsal PATH)");
		return 1;
	}
	if (!realpath(store_dir, s.store)) {
		err("no store at '%s': %s", store_dir, strerror(errno));
		return 1;
	}
	snprintf(s.run, sizeof(s.run), "%s/run", s.store);
	if (mkdir(s.run, 0700) < 0 && errno != EEXIST) {
		err("cannot create '%s': %s", s.run, strerror(errno));
		return 1;
	}
	pid_t other = read_pid(s.store);
	if (other) {
		err("the store '%s' is already served (pid %d)", s.store, (int)other);
		return 1;
	}

	/* in the background, the parent returns once the server is up */
	int ready[2] = {-1, -1};
	if (!s.foreground) {
		if (pipe2(ready, O_CLOEXEC) < 0) {
			err("pipe: %s", strerror(errno));
			return 1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			err("fork: %s", strerror(errno));
			return 1;
		}
		if (pid > 0) {
			char c;
			close(ready[1]);
			return read(ready[0], &c, 1) == 1 ? 0 : 1;
		}
		close(ready[0]);
		setsid();
	}

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);

	struct client_list l = {0};
	s.io_flusher_fail = io_flusher_refused();
	if (s.io_flusher_fail)
		err("warning: ganesha cannot be made an I/O flusher here (no CAP_SYS_RESOURCE): it serves, but "
		    "under memory pressure its writes may wait on the reclaim they are to make room for");
	int r = write_pid(&s);
	if (r < 0)
		err("cannot write %s/serve.pid: %s", s.run, strerror(-r));
	if (r == 0)
		r = log_open(&s);
	if (r == 0)
		r = configure(&s, &l);
	if (r == 0 && s.unprivileged)
		err("warning: --allow-unprivileged-ports: NFS calls from any source port are accepted, so any "
		    "user of a client machine can claim uid 0 and change that client's root file system; use "
		    "it only for emulated clients whose NAT rewrites source ports");
	if (r == 0 && s.tftp)
		r = tftp_start(&s);
	if (r == 0)
		r = start(&s, &old);
	if (r < 0) {
		tftp_stop(&s);
		stop_child(&s.ganesha, "ganesha.nfsd");
		stop_child(&s.rpcbind, "rpcbind");
		char path[PATH_MAX + 64];
		run_path(&s, path, sizeof(path), "serve.pid");
		unlink(path);
		free(l.v);
		free(s.exports);
		return 1;
	}
	printf("serving store '%s' over NFS (ganesha pid %d)", s.store, (int)s.ganesha);
	if (s.tftp)
		printf(" and its boot files over TFTP (port %u)", tftp_server_port(s.tftp_server));
	printf("; clients:\n");
	print_clients(&s, &l);
	free(l.v);
	if (!s.foreground) {
		/* the server's own messages (reloads, warnings) go to STORE/run/serve.log */
		char path[PATH_MAX + 64];
		run_path(&s, path, sizeof(path), "serve.log");
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (write(ready[1], "", 1) != 1) {
			/* the parent is gone */
		}
		close(ready[1]);
		if (null >= 0)
			dup2(null, 0);
		if (out >= 0) {
			dup2(out, 1);
			dup2(out, 2);
			if (s.unprivileged)
				err("warning: --allow-unprivileged-ports: any user of a client machine can claim uid "
				    "0");
		}
		if (null > 2)
			close(null);
		if (out > 2)
			close(out);
	}
	if (status_start(&s) < 0)
		err("warning: cannot listen on %s/serve.sock: 'client list' will not show who is online", s.run);
	int rc = supervise(&s, &set);
	status_stop(&s);
	tftp_stop(&s);
	char path[PATH_MAX + 64];
	run_path(&s, path, sizeof(path), "serve.pid");
	unlink(path);
	free(s.exports);
	close(s.log.fd);
	return rc;
}
