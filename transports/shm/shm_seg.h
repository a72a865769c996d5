/* SPDX-License-Identifier: MIT */
/*
 * shm_seg.h - the shm transport's segments (internal): memfds, never files in /dev/shm, so a
 * process killed at any moment leaves none behind and the kernel frees a segment with its
 * last mapping. A peer opens one through /proc/<owner pid>/fd/<n>, finding n by the memfd's
 * name; the owner keeps that fd open while the segment lives.
 *
 * Both calls return 0 or -errno, and on failure leave a message (naming the segment and the
 * rank) in err.
 */
#ifndef IBC_SHM_SEG_H
#define IBC_SHM_SEG_H

#include <stddef.h>

#define SHM_SEG_NAME_MAX 96

/* A new segment of len bytes named name, mapped at *out; its memfd in *fd (owned by the
 * caller, who closes it with the segment). */
int shm__seg_create(const char *name, size_t len, int *fd, void **out, char *err, size_t errlen);

/* Map all of rank's segment name (at least minlen bytes; *len: its size) from the fds of its
 * process pid. */
int shm__seg_open(int pid, int rank, const char *name, size_t minlen, void **base, size_t *len,
		  char *err, size_t errlen);

#endif
