/* SPDX-License-Identifier: MIT */
/*
 * Shared by the files of `cowroot image check`: the state of one check
 * and the helpers that read the root (imgcheck.c), for the checks of the
 * network configuration (imgcheck-net.c).
 */
#ifndef COWROOT_IMGCHECK_PRIVATE_H
#define COWROOT_IMGCHECK_PRIVATE_H

#include <stdint.h>
#include <sys/types.h>

#include "imgcheck.h"

#define TEXT_MAX (1024 * 1024) /* the largest config file read */
#define LIST_MAX 4096	       /* the most names read from one directory */

struct ck {
	struct cow_view *v;
	struct img_report *rep;
	int err; /* a store error: stop */
};

struct dent {
	char *name;
	uint32_t mode; /* type bits */
};

struct names {
	struct dent *v;
	size_t n, cap;
	bool full; /* LIST_MAX reached */
};

/* Add a finding; @todo may be NULL.  Returns it (NULL out of memory,
 * then ck->err is set). */
struct img_finding *ck_add(struct ck *ck, enum img_severity sev, const char *check, const char *file, unsigned line,
			   const char *todo, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* A store error (-ENOMEM, -EIO, -EAGAIN) ends the check: true after
 * recording it; anything else is the file's own problem. */
bool ck_store_failed(struct ck *ck, int r);
/* Read text file @path whole into *@ret (free it): 1; 0 if it is not
 * there (or not a regular file); 0 after adding a warning of @check if it
 * cannot be read (larger than TEXT_MAX, an I/O error). */
int ck_read_text(struct ck *ck, const char *check, const char *path, char **ret);
/* Is @path (symlinks followed in the root) of type @want?  Its resolved
 * path into @real (@realsize bytes) when not NULL. */
bool ck_exists(struct ck *ck, const char *path, mode_t want, char *real, size_t realsize);
/* Entry @name of directory @dir, not followed if a symlink: 1 with its
 * attributes (and its target in @target, @tsize bytes, for a symlink, when
 * @target is not NULL), 0 if there is none. */
int ck_entry(struct ck *ck, const char *dir, const char *name, struct cow_attr *ret, char *target, size_t tsize);
/* The names in directory @dir (none if it is not there), sorted, at most
 * LIST_MAX; ck_names_release frees them. */
void ck_list(struct ck *ck, const char *dir, struct names *ret);
void ck_names_release(struct names *l);
/* Append @name: 0, 1 if LIST_MAX names are there already, -ENOMEM. */
int ck_names_push(struct names *l, const char *name, uint32_t mode);
/* Split @s in place at newlines: calls @fn for each line (no newline),
 * numbered from 1, until it returns non-zero (returned). */
int ck_lines(char *s, int (*fn)(void *arg, char *line, unsigned no), void *arg);
/* The next blank-separated word of *@p (NUL-terminated in place), or NULL. */
char *ck_word(char **p);

/* Cut line @s at a '#' comment and drop the blanks and CR before it. */
void ck_chop(char *s);

/* imgcheck-net.c: systemd-networkd, NetworkManager, ifupdown, dhcpcd */
void img_check_network(struct ck *ck);

#endif
