/* SPDX-License-Identifier: MIT */
/*
 * The control socket, STORE/run/control.sock: lets the CLI act on a client
 * that this server holds (its layer is locked by this process).  One
 * request line, one reply line:
 *
 *   ping\n               -> 0\n
 *   reset CLIENT\n       -> 0\n, or -ERRNO message\n
 *   activity\n           -> 0 N\n, then N lines "CLIENT LAST BYTES FILES\n":
 *                          when each served client last called an operation
 *                          (seconds since the epoch, 0 for never), and what
 *                          its layer holds as its quota counts it
 *   quota CLIENT\n       -> 0\n: apply the client's quota as the store has it now
 *
 * A reset gives the client a fresh layer in place and then drops every
 * object of its export from ganesha's cache, so nothing of the old layer
 * is served again.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "cowfsal.h"

#define CONTROL_LINE_MAX 256
#define CONTROL_TIMEOUT_MS 5000

static int listen_fd = -1;
static int wake_pipe[2] = {-1, -1};
static pthread_t control_thread;
static bool running;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* The export of @client, NULL if it is not served (COWFSAL.lock held:
 * the module lock keeps the export from being released meanwhile). */
static struct cowfsal_export *export_of(const char *client)
{
	struct glist_head *g;
	glist_for_each(g, &COWFSAL.exports)
	{
		struct cowfsal_export *exp = glist_entry(g, struct cowfsal_export, entry);
		if (!strcmp(exp->client, client))
			return exp;
	}
	return NULL;
}

static int do_reset(const char *client, char *msg, size_t n)
{
	int r = -ENOENT;
	pthread_mutex_lock(&COWFSAL.lock);
	struct cowfsal_export *exp = export_of(client);
	if (exp) {
		pthread_rwlock_wrlock(&exp->reset_lock);
		r = cow_view_reset(exp->view);
		pthread_rwlock_unlock(&exp->reset_lock);
		/* outside the lock: ganesha's cache calls back into the export */
		if (r == 0)
			cowfsal_invalidate_all(exp);
	}
	pthread_mutex_unlock(&COWFSAL.lock);
	if (r == -ENOENT)
		snprintf(msg, n, "client '%s' is not served here", client);
	else if (r < 0)
		snprintf(msg, n, "reset of '%s' failed: %s", client, strerror(-r));
	else
		LogEvent(COMPONENT_FSAL, "cowroot: client '%s' reset", client);
	return r;
}

static int do_quota(const char *client, char *msg, size_t n)
{
	pthread_mutex_lock(&COWFSAL.lock);
	struct cowfsal_export *exp = export_of(client);
	int r = exp ? cow_view_reload_quota(exp->view) : -ENOENT;
	pthread_mutex_unlock(&COWFSAL.lock);
	if (r == -ENOENT)
		snprintf(msg, n, "client '%s' is not served here", client);
	else if (r < 0)
		snprintf(msg, n, "quota of '%s' not applied: %s", client, strerror(-r));
	else
		LogEvent(COMPONENT_FSAL, "cowroot: client '%s': quota applied", client);
	return r;
}

/* Read one line from @fd within the timeout. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t used = 0;
	while (used < size - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, CONTROL_TIMEOUT_MS);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		ssize_t k = read(fd, buf + used, size - 1 - used);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		used += (size_t)k;
		char *nl = memchr(buf, '\n', used);
		if (nl) {
			*nl = 0;
			return 0;
		}
	}
	buf[used] = 0;
	return used == size - 1 ? -E2BIG : 0;
}

/* Write all of @buf (@len bytes) to @fd. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t k = write(fd, buf, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return; /* the requester went away */
		buf += k;
		len -= (size_t)k;
	}
}

/* The activity reply: one line per export. */
static void send_activity(int fd)
{
	struct glist_head *g;
	size_t n = 0, len = 0, cap = 4096;
	char *out = malloc(cap);
	pthread_mutex_lock(&COWFSAL.lock);
	glist_for_each(g, &COWFSAL.exports)
	{
		struct cowfsal_export *exp = glist_entry(g, struct cowfsal_export, entry);
		char line[COW_ENTITY_NAME_MAX + 80];
		struct cow_usage u = {0};
		(void)cow_view_usage(exp->view, &u);
		int k = snprintf(line, sizeof(line), "%s %lld %llu %llu\n", exp->client,
				 (long long)atomic_load_explicit(&exp->last_op, memory_order_relaxed),
				 (unsigned long long)u.bytes, (unsigned long long)u.files);
		if (!out || k < 0 || (size_t)k >= sizeof(line))
			continue;
		if (len + (size_t)k > cap) {
			char *p = realloc(out, cap * 2 + (size_t)k);
			if (!p)
				continue;
			out = p;
			cap = cap * 2 + (size_t)k;
		}
		memcpy(out + len, line, (size_t)k);
		len += (size_t)k;
		n++;
	}
	pthread_mutex_unlock(&COWFSAL.lock);
	char head[32];
	int hl = snprintf(head, sizeof(head), out ? "0 %zu\n" : "-12 out of memory\n", n);
	write_all(fd, head, (size_t)hl);
	if (out)
		write_all(fd, out, len);
	free(out);
}

static void serve_one(int fd)
{
	char line[CONTROL_LINE_MAX], msg[CONTROL_LINE_MAX + 64] = "", reply[CONTROL_LINE_MAX + 96];
	int r = read_line(fd, line, sizeof(line));
	if (r == 0) {
		if (!strcmp(line, "ping")) {
			r = 0;
		} else if (!strcmp(line, "activity")) {
			send_activity(fd);
			return;
		} else if (!strncmp(line, "quota ", 6)) {
			if (cow_name_check(line + 6) < 0) {
				r = -EINVAL;
				snprintf(msg, sizeof(msg), "invalid client name");
			} else {
				r = do_quota(line + 6, msg, sizeof(msg));
			}
		} else if (!strncmp(line, "reset ", 6)) {
			const char *client = line + 6;
			if (cow_name_check(client) < 0) {
				r = -EINVAL;
				snprintf(msg, sizeof(msg), "invalid client name");
			} else {
				r = do_reset(client, msg, sizeof(msg));
			}
		} else {
			r = -EINVAL;
			snprintf(msg, sizeof(msg), "unknown request");
		}
	} else {
		snprintf(msg, sizeof(msg), "bad request line");
	}
	int len = r == 0 ? snprintf(reply, sizeof(reply), "0\n") : snprintf(reply, sizeof(reply), "%d %s\n", r, msg);
	if (write(fd, reply, (size_t)len) != len) {
		/* the requester went away */
	}
}

static void *control_main(void *arg)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN}, {.fd = wake_pipe[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(fd);
		close(fd);
	}
	return NULL;
}

int cowfsal_control_start(const char *store_dir)
{
	char dir[PATH_MAX];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int r;

	if (running)
		return 0;
	if (snprintf(dir, sizeof(dir), "%s/run", store_dir) >= (int)sizeof(dir) ||
	    snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir) >= (int)sizeof(sock_path))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		return -errno;
	strcpy(addr.sun_path, sock_path);
	/* a socket left by a server that died; the store's layer locks keep
	 * two servers of one client apart */
	unlink(sock_path);
	if (bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(sock_path, 0600) < 0 ||
	    listen(listen_fd, 8) < 0 || pipe2(wake_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&control_thread, NULL, control_main, NULL);
	if (r < 0)
		goto fail;
	running = true;
	return 0;
fail:
	close(listen_fd);
	listen_fd = -1;
	for (int i = 0; i < 2; i++) {
		if (wake_pipe[i] >= 0)
			close(wake_pipe[i]);
		wake_pipe[i] = -1;
	}
	return r;
}

void cowfsal_control_stop(void)
{
	if (!running)
		return;
	if (write(wake_pipe[1], "x", 1) != 1) {
		/* the thread also ends when the process does */
	}
	pthread_join(control_thread, NULL);
	close(listen_fd);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	listen_fd = wake_pipe[0] = wake_pipe[1] = -1;
	unlink(sock_path);
	running = false;
}
