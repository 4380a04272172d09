/* SPDX-License-Identifier: MIT */
/* Shared by the CLI's command files. */
#ifndef COWROOT_CLI_H
#define COWROOT_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cowroot.h"

extern const char *store_dir;
extern bool json;
extern volatile sig_atomic_t interrupted;

/* "cowroot: <message>" on stderr */
void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int usage_err(const char *usage);
void store_errmsg(int r, char *buf, size_t n);
void store_error(int r);
/* Why an operation on @st failed: the store's own words (the holder of a
 * lock, the damage found) where they say more, else strerror. */
const char *store_why(struct cow_store *st, int r);
/* 0, or 1 after printing why the store cannot be opened */
int open_store(int flags, struct cow_store **ret);
/* The first @len bytes of @v as a message may show them: at most @max of
 * them, then "...", and '?' for control and non-ASCII bytes. */
void shown_value(char *buf, size_t size, const char *v, size_t len, size_t max);
/* true (after saying why) if @name is not a valid image/client name */
bool bad_name(const char *what, const char *name);
bool want_help(int argc, char **argv);
/* A count or port given on the command line: 1 to @max, plain decimal. */
bool parse_count(const char *s, unsigned max, unsigned *ret);
bool parse_json_flag(int *argc, char **argv);
void json_str(const char *s);
void fmt_time(int64_t t, char *buf, size_t n);
/* SIGINT/SIGTERM set `interrupted`; progress_or_cancel then cancels */
void catch_interrupts(void);
int progress(void *arg, const char *what, uint64_t done, uint64_t total);
int progress_or_cancel(void *arg, const char *what, uint64_t done, uint64_t total);
/* The progress argument of a long operation: catches interrupts, and asks
 * for progress lines when stderr is a terminal. */
void *tty_arg(void);
/* After a long operation that returned @r: end the progress line, say
 * when it was interrupted.  Returns @r. */
int long_op(const char *what, int r, const char *subject);

/* lifecycle.c */
/* Does holder @h name a running server (not a mount)? */
bool client_served(const struct cow_holder *h);
/* Send one request line to the server's control socket; its reply is "0"
 * or "-ERRNO message".  Returns 0 or -errno (with @why set). */
int control_request(const char *request, char *why, size_t n);
/* Why client @name's layer is busy, and what to stop first. */
const char *busy_message(struct cow_store *st, const char *name, const char *to_do);
int cmd_client_reset(int argc, char **argv);
int cmd_client_rm(int argc, char **argv);
int cmd_client_diff(int argc, char **argv);
int cmd_client_snapshot(int argc, char **argv);
int cmd_client_rebase(int argc, char **argv);
int cmd_image_show(int argc, char **argv);
int cmd_image_rm(int argc, char **argv);
int cmd_image_flatten(int argc, char **argv);
int cmd_image_export(int argc, char **argv);
int cmd_image_load(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_stats(int argc, char **argv);

/* cowroot.c: mount client @name's view at @abs (an absolute directory) in
 * the background, as `cowroot mount` does: 0 once mounted, else 1 after
 * saying why. */
int mount_view(const char *abs, const char *client);

/* shell.c */
int cmd_client_shell(int argc, char **argv);

/* quota.c */
/* Parse a quota argument of option @opt (a size, or with @count a number
 * of objects; "none" is 0): true, or false after saying why. */
bool quota_parse(const char *opt, const char *s, bool count, uint64_t *ret);
/* "10G", "1.5M", "none" for 0 */
void quota_fmt(uint64_t bytes, char *buf, size_t n);
/* "1.2G/10G (12%)", or only the first without a limit */
void quota_usage_fmt(uint64_t used, uint64_t max, char *buf, size_t n);
/* Change client @name's quota (NULL: leave that limit as it is) and tell a
 * server holding it: 0, or -1 after saying why. */
int quota_set(struct cow_store *st, const char *name, const char *bytes_arg, const char *files_arg);
/* Change the store's default quota: 0, or -1 after saying why. */
int quota_default_set(struct cow_store *st, const char *bytes_arg, const char *files_arg);
int cmd_quota_default(int argc, char **argv);

/* imgfix.c */
int cmd_image_check(int argc, char **argv);

/* tftp-cmd.c */
int cmd_tftp_serve(int argc, char **argv);
/* A TFTP log line on stderr, after a UTC time stamp and "tftp: " (a
 * tftp_log_fn) */
void tftp_log_line(void *arg, const char *line);

#endif
