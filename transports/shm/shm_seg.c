/* SPDX-License-Identifier: MIT */
/* shm_seg.c - the shm transport's segments as memfds (shm_seg.h says why and how). */
#include "shm_seg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int seg_fail(char *err, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int seg_fail(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return rc;
}

int shm__seg_create(const char *name, size_t len, int *fd, void **out, char *err, size_t errlen)
{
	void *p;
	int e;

	*fd = memfd_create(name, MFD_CLOEXEC);
	if (*fd < 0)
		return seg_fail(err, errlen, -errno, "memfd_create(%s): %s", name, strerror(errno));
	if (ftruncate(*fd, (off_t)len) != 0) {
		e = errno;
		close(*fd);
		return seg_fail(err, errlen, -e, "ftruncate(%s, %zu): %s (out of memory?)", name,
				len, strerror(e));
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, *fd, 0);
	if (p == MAP_FAILED) {
		e = errno;
		close(*fd);
		return seg_fail(err, errlen, -e, "mmap(%s, %zu): %s", name, len, strerror(e));
	}
	*out = p;
	return 0;
}

/* Open rank's segment name among the fds of its process pid: the fd, or -errno. */
static int seg_find(int pid, int rank, const char *name, char *err, size_t errlen)
{
	char path[64], want[SHM_SEG_NAME_MAX + 32], link[SHM_SEG_NAME_MAX + 32];
	size_t wlen;
	struct dirent *e;
	int fd = -ENOENT;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	wlen = (size_t)snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	d = opendir(path);
	if (!d)
		return seg_fail(err, errlen, -errno, "cannot look into rank %d's %s: %s%s", rank,
				path, strerror(errno),
				errno == ENOENT ? " (it exited)" : " (another user? /proc hidepid?)");
	while (fd == -ENOENT && (e = readdir(d))) {
		ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link));

		if (n <= 0 || (size_t)n != wlen || memcmp(link, want, wlen) != 0)
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			fd = errno == ENOENT ? -ESRCH : -errno;
	}
	closedir(d);
	if (fd < 0)
		return seg_fail(err, errlen, fd, "cannot open rank %d's segment %s (pid %d): %s",
				rank, name, pid,
				fd == -ENOENT ? "it has no such segment" : strerror(-fd));
	return fd;
}

int shm__seg_open(int pid, int rank, const char *name, size_t minlen, void **base, size_t *len,
		  char *err, size_t errlen)
{
	int fd = seg_find(pid, rank, name, err, errlen);
	struct stat st;
	void *p;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size < minlen) {
		close(fd);
		return seg_fail(err, errlen, -EPROTO, "rank %d's segment %s is too small", rank,
				name);
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return seg_fail(err, errlen, -errno, "mmap of rank %d's %s: %s", rank, name,
				strerror(errno));
	*base = p;
	*len = (size_t)st.st_size;
	return 0;
}
