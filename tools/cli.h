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

/* imgfix.c */
int cmd_image_check(int argc, char **argv);

/* tftp-cmd.c */
int cmd_tftp_serve(int argc, char **argv);
/* A TFTP log line on stderr, after a UTC time stamp and "tftp: " (a
 * tftp_log_fn) */
void tftp_log_line(void *arg, const char *line);

#endif
