/* SPDX-License-Identifier: MIT */
/* The FUSE front end: serves one view at a mount point. */
#ifndef COWFUSE_H
#define COWFUSE_H

#include <stdbool.h>

#include "cowroot.h"

struct cowfuse_opts {
	const char *mountpoint;
	const char *fsname;  /* shown in /proc/mounts */
	const char *options; /* extra -o options, or NULL */
	bool debug;
	/* If >= 0: write one line to it once mounted ("" on success, else the
	 * error), close it and detach stdio (the parent of a daemon waits). */
	int ready_fd;
};

/* Mount @v and serve it until unmounted or signalled.  Returns 0 or a
 * negative errno; the view stays owned by the caller. */
int cowfuse_main(struct cow_view *v, const struct cowfuse_opts *o);

#endif
