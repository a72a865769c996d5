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

/* A local job being watched: the ranks' pids and exit statuses, the shared job state. */
struct launch {
	int np, alive, worst, grace_ms;
	pid_t *pids; /* owned; 0 once reaped */
	int *status; /* owned: exit code, or -signal */
	struct ibc_job_state *js; /* owned shared mapping */
	struct ibc_rank_ctx base; /* what every rank starts from */
	uint64_t abort_at; /* when the ranks were told to stop (0: not yet) */
	sigset_t mask, old; /* signals taken with sigtimedwait; the mask before */
};

static void launch_free(struct launch *L)
{
	if (L->js)
		munmap(L->js, sizeof(*L->js));
	free(L->pids);
	free(L->status);
}

/* The shared job state and the rendezvous socket on 127.0.0.1, bound before any fork. */
static int launch_setup(struct launch *L, int np, int grace_ms)
{
	int port = 0, rc;

	memset(L, 0, sizeof(*L));
	L->np = np;
	L->grace_ms = grace_ms;
	L->base = (struct ibc_rank_ctx){ .nranks = np, .root_fd = -1 };
	L->pids = calloc((size_t)np, sizeof(pid_t));
	L->status = calloc((size_t)np, sizeof(int));
	if (!L->pids || !L->status)
		return -ENOMEM;
	L->js = mmap(NULL, sizeof(*L->js), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (L->js == MAP_FAILED) {
		L->js = NULL;
		ibc_log("cannot map the job state: %s", strerror(errno));
		return -ENOMEM;
	}
	memset(L->js, 0, sizeof(*L->js));
	L->js->dead_rank = -1;
	L->base.job = L->js;
	rc = bind_loopback(&L->base.root_fd, &port);
	if (rc) {
		ibc_log("cannot open the rendezvous socket on 127.0.0.1: %s", strerror(-rc));
		return rc;
	}
	snprintf(L->base.root, sizeof(L->base.root), "127.0.0.1:%d", port);
	ibc_new_id(L->base.job_id, sizeof(L->base.job_id));
	if (ibc_random_bytes(L->base.job_key, sizeof(L->base.job_key))) {
		ibc_log("cannot make the job key: the kernel's random source failed");
		return -EIO;
	}
	return 0;
}

/* Fork the ranks with SIGCHLD, SIGINT and SIGTERM blocked (the parent takes them with
 * sigtimedwait; each child restores the old mask). */
static void launch_fork(struct launch *L, ibc_rank_fn fn, void *arg)
{
	int i;

	sigemptyset(&L->mask);
	sigaddset(&L->mask, SIGCHLD);
	sigaddset(&L->mask, SIGINT);
	sigaddset(&L->mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &L->mask, &L->old);
	fflush(NULL);
	for (i = 0; i < L->np; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			int code;

			sigprocmask(SIG_SETMASK, &L->old, NULL);
			code = child_main(&L->base, i, fn, arg);
			fflush(NULL);
			_exit(code);
		}
		if (pid < 0) {
			ibc_log("fork of rank %d failed: %s", i, strerror(errno));
			L->js->abort = 1;
			L->worst = IBC_EXIT_ENV;
			break;
		}
		L->pids[i] = pid;
		L->alive++;
	}
	close(L->base.root_fd);
}

/* Rank i (pid) ended with code before the others: name it and raise the job's abort flag. */
static void launch_death(struct launch *L, int i, pid_t pid, int code)
{
	char how[96];

	ibc_launch_describe(code, how, sizeof(how));
	if (code < 0)
		ibc_log("rank %d (pid %d on %s) %s; stopping the other ranks", i, (int)pid,
			ibc_hostname(), how);
	L->js->dead_rank = i;
	L->js->dead_pid = (int)pid;
	L->js->dead_status = code;
	__atomic_store_n(&L->js->abort, 1, __ATOMIC_SEQ_CST);
	L->abort_at = ibc_now_ns();
}

/* Collect every rank that ended; a signal or exit code 3 while others run stops the job. */
static void launch_reap(struct launch *L)
{
	pid_t pid;
	int st, i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		int code;

		for (i = 0; i < L->np && L->pids[i] != pid; i++)
			;
		if (i == L->np)
			continue;
		L->pids[i] = 0;
		L->alive--;
		code = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
		L->status[i] = code;
		if ((code < 0 || code == IBC_EXIT_ENV) && !L->js->abort && L->alive > 0)
			launch_death(L, i, pid, code);
	}
}

/* Send sig to every rank still running; SIGKILL names each as it goes. */
static void launch_kill(struct launch *L, int sig)
{
	int i;

	for (i = 0; i < L->np; i++) {
		if (L->pids[i] <= 0)
			continue;
		if (sig == SIGKILL)
			ibc_log("rank %d (pid %d) did not stop within %.1f s: killing it", i,
				(int)L->pids[i], L->grace_ms / 1e3);
		kill(L->pids[i], sig);
	}
}

/* Until every rank ended: reap, kill stragglers a grace period after an abort, pass SIGINT
 * and SIGTERM on to the ranks. */
static void launch_watch(struct launch *L)
{
	while (L->alive > 0) {
		struct timespec ts = { 0, 200 * 1000000L };
		siginfo_t si;
		int sig;

		launch_reap(L);
		if (!L->alive)
			break;
		if (L->abort_at &&
		    ibc_now_ns() - L->abort_at > (uint64_t)L->grace_ms * 1000000ull) {
			launch_kill(L, SIGKILL);
			L->abort_at = ibc_now_ns();
		}
		sig = sigtimedwait(&L->mask, &si, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			launch_kill(L, sig);
			if (!L->abort_at)
				L->abort_at = ibc_now_ns();
			L->js->abort = 1;
		}
	}
	sigprocmask(SIG_SETMASK, &L->old, NULL);
}

/* The job's exit code from the ranks': environment failure > check failure > usage. */
static int launch_code(const struct launch *L)
{
	int worst = L->worst, i;

	for (i = 0; i < L->np; i++) {
		int code = L->status[i] < 0 ? IBC_EXIT_ENV : L->status[i];

		if (code == IBC_EXIT_ENV || (code == IBC_EXIT_CHECK && worst != IBC_EXIT_ENV) ||
		    (code && !worst))
			worst = code;
	}
	return worst;
}

int ibc_launch_local(int np, ibc_rank_fn fn, void *arg, int grace_ms)
{
	struct launch L;
	int code;

	if (launch_setup(&L, np, grace_ms)) {
		launch_free(&L);
		return IBC_EXIT_ENV;
	}
	launch_fork(&L, fn, arg);
	launch_watch(&L);
	code = launch_code(&L);
	cleanup_shm(L.base.job_id);
	launch_free(&L);
	return code;
}
