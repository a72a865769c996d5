/* SPDX-License-Identifier: MIT */
#include "launch.h"
#include "ibc_common.h"
#include "ibc_id.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void ibc_launch_describe(int status, char *buf, int len)
{
	if (status < 0)
		snprintf(buf, (size_t)len, "was killed by signal %d (%s)", -status,
			 strsignal(-status));
	else
		snprintf(buf, (size_t)len, "exited with code %d", status);
}

static int bind_loopback(int *fd_out, int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		int e = errno;

		close(fd);
		return -e;
	}
	*fd_out = fd;
	*port = ntohs(sa.sin_port);
	return 0;
}

static void cleanup_shm(const char *job)
{
	char prefix[64];
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (!d)
		return;
	snprintf(prefix, sizeof(prefix), "ibcoll-%s-", job);
	while ((e = readdir(d)))
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static int child_main(const struct ibc_rank_ctx *base, int rank, ibc_rank_fn fn, void *arg)
{
	struct ibc_rank_ctx rc = *base;
	char v[32];

	rc.rank = rank;
	if (rank != 0) {
		close(rc.root_fd);
		rc.root_fd = -1;
	}
	snprintf(v, sizeof(v), "%d", rank);
	setenv("IBCOLL_RANK", v, 1);
	snprintf(v, sizeof(v), "%d", rc.nranks);
	setenv("IBCOLL_NRANKS", v, 1);
	setenv("IBCOLL_ROOT", rc.root, 1);
	setenv("IBCOLL_JOB_ID", rc.job_id, 1);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	return fn(&rc, arg);
}

int ibc_launch_local(int np, ibc_rank_fn fn, void *arg, int grace_ms)
{
	struct ibc_rank_ctx base = { .nranks = np, .root_fd = -1 };
	struct ibc_job_state *js;
	pid_t *pids = calloc((size_t)np, sizeof(pid_t));
	int *status = calloc((size_t)np, sizeof(int));
	int alive = 0, i, port = 0, rc, worst = 0;
	uint64_t abort_at = 0;
	sigset_t mask, old;

	if (!pids || !status) {
		free(pids);
		free(status);
		return IBC_EXIT_ENV;
	}
	js = mmap(NULL, sizeof(*js), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (js == MAP_FAILED) {
		ibc_log("cannot map the job state: %s", strerror(errno));
		free(pids);
		free(status);
		return IBC_EXIT_ENV;
	}
	memset(js, 0, sizeof(*js));
	js->dead_rank = -1;
	base.job = js;
	rc = bind_loopback(&base.root_fd, &port);
	if (rc) {
		ibc_log("cannot open the rendezvous socket on 127.0.0.1: %s", strerror(-rc));
		munmap(js, sizeof(*js));
		free(pids);
		free(status);
		return IBC_EXIT_ENV;
	}
	snprintf(base.root, sizeof(base.root), "127.0.0.1:%d", port);
	ibc_new_id(base.job_id, sizeof(base.job_id));

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, &old);
	fflush(NULL);
	for (i = 0; i < np; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			int code;

			sigprocmask(SIG_SETMASK, &old, NULL);
			code = child_main(&base, i, fn, arg);
			fflush(NULL);
			_exit(code);
		}
		if (pid < 0) {
			ibc_log("fork of rank %d failed: %s", i, strerror(errno));
			js->abort = 1;
			worst = IBC_EXIT_ENV;
			break;
		}
		pids[i] = pid;
		alive++;
	}
	close(base.root_fd);

	while (alive > 0) {
		struct timespec ts = { 0, 200 * 1000000L };
		siginfo_t si;
		int st, sig;
		pid_t pid;

		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			int code;

			for (i = 0; i < np && pids[i] != pid; i++)
				;
			if (i == np)
				continue;
			pids[i] = 0;
			alive--;
			code = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
			status[i] = code;
			if ((code < 0 || code == IBC_EXIT_ENV) && !js->abort && alive > 0) {
				char how[96];

				ibc_launch_describe(code, how, sizeof(how));
				if (code < 0)
					ibc_log("rank %d (pid %d on %s) %s; stopping the other ranks",
						i, (int)pid, ibc_hostname(), how);
				js->dead_rank = i;
				js->dead_pid = (int)pid;
				js->dead_status = code;
				__atomic_store_n(&js->abort, 1, __ATOMIC_SEQ_CST);
				abort_at = ibc_now_ns();
			}
		}
		if (!alive)
			break;
		if (abort_at && ibc_now_ns() - abort_at > (uint64_t)grace_ms * 1000000ull) {
			for (i = 0; i < np; i++)
				if (pids[i] > 0) {
					ibc_log("rank %d (pid %d) did not stop within %.1f s: killing it",
						i, (int)pids[i], grace_ms / 1e3);
					kill(pids[i], SIGKILL);
				}
			abort_at = ibc_now_ns();
		}
		sig = sigtimedwait(&mask, &si, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			for (i = 0; i < np; i++)
				if (pids[i] > 0)
					kill(pids[i], sig);
			if (!abort_at)
				abort_at = ibc_now_ns();
			js->abort = 1;
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	for (i = 0; i < np; i++) {
		int code = status[i] < 0 ? IBC_EXIT_ENV : status[i];

		/* severity: environment failure > check failure > usage */
		if (code == IBC_EXIT_ENV || (code == IBC_EXIT_CHECK && worst != IBC_EXIT_ENV) ||
		    (code && !worst))
			worst = code;
	}
	cleanup_shm(base.job_id);
	munmap(js, sizeof(*js));
	free(pids);
	free(status);
	return worst;
}
