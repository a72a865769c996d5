/* SPDX-License-Identifier: MIT */
/*
 * runcmd.h - run a program with a time limit and capture stdout/stderr (header only, tests).
 */
#ifndef IBC_RUNCMD_H
#define IBC_RUNCMD_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct cmd_result {
	int code; /* exit code, 128+signal, or -1 when it had to be killed at the limit */
	double seconds;
	char out[65536];
	char err[65536];
};

static inline double rc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Run argv (argv[0] a path); env: NULL-terminated "K=V" list added to the environment.
 * on_line: optional callback for each stdout line as it arrives (may kill things). */
static inline int run_cmd(char *const argv[], char *const env[], double limit_s,
			  void (*on_line)(const char *line, void *arg), void *arg,
			  struct cmd_result *r)
{
	int po[2], pe[2], st = 0;
	size_t no = 0, ne = 0;
	double t0 = rc_now();
	pid_t pid;
	bool done_o = false, done_e = false;
	char line[4096];
	size_t nl = 0;

	memset(r, 0, sizeof(*r));
	if (pipe(po) || pipe(pe))
		return -errno;
	pid = fork();
	if (pid == 0) {
		int i;

		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		close(po[1]);
		close(pe[1]);
		for (i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (!done_o || !done_e) {
		struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		double left = limit_s - (rc_now() - t0);
		int k;

		if (left <= 0) {
			kill(pid, SIGKILL);
			r->code = -1;
			break;
		}
		if (poll(pf, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		for (k = 0; k < 2; k++) {
			char buf[4096];
			ssize_t n;

			if (!(pf[k].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(k ? pe[0] : po[0], buf, sizeof(buf));
			if (n <= 0) {
				if (k)
					done_e = true;
				else
					done_o = true;
				pf[k].fd = -1;
				continue;
			}
			if (k == 0) {
				ssize_t j;

				for (j = 0; j < n && on_line; j++) {
					if (buf[j] == '\n' || nl == sizeof(line) - 1) {
						line[nl] = '\0';
						on_line(line, arg);
						nl = 0;
					} else {
						line[nl++] = buf[j];
					}
				}
				if (no + (size_t)n < sizeof(r->out) - 1) {
					memcpy(r->out + no, buf, (size_t)n);
					no += (size_t)n;
				}
			} else if (ne + (size_t)n < sizeof(r->err) - 1) {
				memcpy(r->err + ne, buf, (size_t)n);
				ne += (size_t)n;
			}
		}
		if (done_o && done_e)
			break;
		if (done_o)
			pf[0].fd = -1;
	}
	close(po[0]);
	close(pe[0]);
	waitpid(pid, &st, 0);
	if (r->code != -1)
		r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r->seconds = rc_now() - t0;
	return 0;
}

#endif
