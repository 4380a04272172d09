/* SPDX-License-Identifier: MIT */
/*
 * `cowroot image check`: what in a root would break its network boot
 * (imgcheck.c), and the fixes `--fix` can make to it (imgfix.c).
 */
#ifndef COWROOT_IMGCHECK_H
#define COWROOT_IMGCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "bootfs.h"
#include "cowroot.h"

enum img_severity {
	IMG_ERROR,   /* the boot will fail */
	IMG_WARNING, /* it may fail, or do without something */
	IMG_INFO,    /* a note: worth knowing, nothing to do */
};

enum img_fix {
	IMG_FIX_NONE,	  /* --fix cannot do it (a kernel, an initramfs to build) */
	IMG_FIX_COMMENT,  /* comment out line @line of @file (fstab) */
	IMG_FIX_MASK,	  /* mask the systemd units in @arg (space-separated) */
	IMG_FIX_IFUPDOWN, /* take interface @arg out of the auto/allow-hotplug line @line of @file */
};

#define IMG_TEXT_MAX 512

struct img_finding {
	enum img_severity severity;
	const char *check;	      /* "fstab", "network", "kernel", "initramfs", "firmware" */
	char file[ROOT_PATH_MAX + 1]; /* the file at fault */
	unsigned line;		      /* its line, 0 for none */
	char problem[IMG_TEXT_MAX];   /* what is wrong, and what it does to the boot */
	char todo[IMG_TEXT_MAX];      /* what to do about it */
	enum img_fix fix;
	char arg[128];
	bool fixed; /* set by img_fix */
};

struct img_report {
	struct img_finding *v;
	size_t n, cap;
	unsigned errors, warnings, infos;
};

/* Look through the root of view @v and add what would break its network
 * boot to @rep (which starts zeroed; img_report_release frees it).  What
 * cannot be read is itself a finding.  0, or -ENOMEM / -EIO from the
 * store. */
int img_check(struct cow_view *v, struct img_report *rep);
void img_report_release(struct img_report *rep);
const char *img_severity_name(enum img_severity s);

/* Make the fixes of @rep that it can (their IMG_FIX_*) through writable
 * view @v, marking them fixed; findings it cannot fix stay unmarked.
 * 0, or -errno of the first write that failed (the view then holds part
 * of the changes: the caller drops it). */
int img_fix(struct cow_view *v, struct img_report *rep);

#endif
