/* SPDX-License-Identifier: MIT */
#include "launch.h"
#include "ibc_common.h"
#include "ibc_id.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How often a rank looks whether the launcher is still its parent (from ibc_launch_beat). */
#define LAUNCH_PARENT_CHECK_NS 100000000ull
/* The watch loop's tick. */
#define LAUNCH_TICK_MS 200
/* A rank gave up waiting (exit 3) while another had no heartbeat for nearly its timeout: the
 * latter, not the one that timed out first, is the culprit (both run out at about once). */
#define LAUNCH_TIE_MS 1000

/* This process as a rank of a --np job: set once, in the child right after fork. */
static struct {
	struct ibc_job_state *js; /* borrowed shared mapping; NULL outside a --np rank */
	int rank;
	pid_t parent;
	uint64_t checked; /* when the parent was last looked for */
} self;

void ibc_launch_describe(int status, char *buf, int len)
{
	int sig = status - IBC_LAUNCH_HUNG;

	if (status >= IBC_LAUNCH_HUNG && sig)
		snprintf(buf, (size_t)len,
			 "was stopped by signal %d (%s) and made no progress within its --timeout",
			 sig, strsignal(sig));
	else if (status >= IBC_LAUNCH_HUNG)
		snprintf(buf, (size_t)len, "made no progress within its --timeout (hung)");
	else if (status < 0)
		snprintf(buf, (size_t)len, "was killed by signal %d (%s)", -status,
			 strsignal(-status));
	else
		snprintf(buf, (size_t)len, "exited with code %d", status);
}

void ibc_launch_beat(uint64_t now_ns, int limit_ms)
{
	struct ibc_job_beat *b;

	if (!self.js)
		return;
	b = &self.js->beat[self.rank];
	if (b->limit_ms != limit_ms)
		__atomic_store_n(&b->limit_ms, limit_ms, __ATOMIC_RELAXED);
	__atomic_store_n(&b->ns, now_ns, __ATOMIC_RELAXED);
	if (now_ns - self.checked < LAUNCH_PARENT_CHECK_NS)
		return;
	self.checked = now_ns;
	/* PR_SET_PDEATHSIG kills us with the launcher; this is the second line */
	if (getppid() != self.parent && !self.js->abort) {
		ibc_log("rank %d (host %s): the --np launcher (pid %d) is gone: stopping", self.rank,
			ibc_hostname(), (int)self.parent);
		__atomic_store_n(&self.js->abort, 1, __ATOMIC_SEQ_CST);
	}
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

/* One forked rank as the parent sees it. */
struct launch_rank {
	pid_t pid; /* 0 once reaped */
	int status; /* exit code, or -signal */
	int stopsig; /* the signal that stopped it (waitpid WUNTRACED); 0 while it runs */
	bool hung; /* found hung and killed */
};

/* A local job being watched: the ranks, the shared job state. */
struct launch {
	int np, alive, worst, grace_ms;
	struct launch_rank *r; /* owned, np entries */
	struct ibc_job_state *js; /* owned shared mapping of js_len bytes */
	size_t js_len;
	struct ibc_rank_ctx base; /* what every rank starts from */
	uint64_t abort_at; /* when the ranks were told to stop (0: not yet) */
	uint64_t resumed_at; /* the parent itself was last continued (job control) */
	sigset_t mask, old; /* signals taken with sigtimedwait; the mask before */
};

static void launch_free(struct launch *L)
{
	if (L->js)
		munmap(L->js, L->js_len);
	free(L->r);
}

/* The shared job state and the rendezvous socket on 127.0.0.1, bound before any fork. */
static int launch_setup(struct launch *L, int np, int grace_ms)
{
	int port = 0, rc;

	memset(L, 0, sizeof(*L));
	L->np = np;
	L->grace_ms = grace_ms;
	L->base = (struct ibc_rank_ctx){ .nranks = np, .root_fd = -1 };
	L->r = calloc((size_t)np, sizeof(*L->r));
	if (!L->r)
		return -ENOMEM;
	L->js_len = sizeof(*L->js) + (size_t)np * sizeof(L->js->beat[0]);
	L->js = mmap(NULL, L->js_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (L->js == MAP_FAILED) {
		L->js = NULL;
		ibc_log("cannot map the job state: %s", strerror(errno));
		return -ENOMEM;
	}
	memset(L->js, 0, L->js_len);
	L->js->dead_rank = -1;
	L->js->nranks = np;
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

/* In the child right after fork: die with the launcher, even when it is SIGKILLed. It may
 * have died before the prctl took effect: then nobody would send the signal, so look. */
static void child_run(struct launch *L, int i, pid_t parent, ibc_rank_fn fn, void *arg)
{
	int code;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(IBC_EXIT_ENV);
	self.js = L->js;
	self.rank = i;
	self.parent = parent;
	sigprocmask(SIG_SETMASK, &L->old, NULL);
	code = child_main(&L->base, i, fn, arg);
	fflush(NULL);
	_exit(code);
}

/* Fork the ranks with SIGCHLD, SIGINT, SIGTERM and SIGCONT blocked (the parent takes them
 * with sigtimedwait; each child restores the old mask). */
static void launch_fork(struct launch *L, ibc_rank_fn fn, void *arg)
{
	pid_t parent = getpid();
	int i;

	sigemptyset(&L->mask);
	sigaddset(&L->mask, SIGCHLD);
	sigaddset(&L->mask, SIGINT);
	sigaddset(&L->mask, SIGTERM);
	sigaddset(&L->mask, SIGCONT);
	sigprocmask(SIG_BLOCK, &L->mask, &L->old);
	fflush(NULL);
	for (i = 0; i < L->np; i++) {
		pid_t pid = fork();

		if (pid == 0)
			child_run(L, i, parent, fn, arg);
		if (pid < 0) {
			ibc_log("fork of rank %d failed: %s", i, strerror(errno));
			L->js->abort = 1;
			L->worst = IBC_EXIT_ENV;
			break;
		}
		L->r[i].pid = pid;
		L->alive++;
	}
	close(L->base.root_fd);
}

/* Name rank i (pid) in the shared page as the reason the job stops, and raise the abort flag. */
static void launch_abort(struct launch *L, int i, pid_t pid, int status)
{
	L->js->dead_rank = i;
	L->js->dead_pid = (int)pid;
	L->js->dead_status = status;
	__atomic_store_n(&L->js->abort, 1, __ATOMIC_SEQ_CST);
	L->abort_at = ibc_now_ns();
}

/* Rank i (pid) ended with code before the others: name it and raise the job's abort flag. */
static void launch_death(struct launch *L, int i, pid_t pid, int code)
{
	char how[96];

	ibc_launch_describe(code, how, sizeof(how));
	if (code < 0)
		ibc_log("rank %d (pid %d on %s) %s; stopping the other ranks", i, (int)pid,
			ibc_hostname(), how);
	launch_abort(L, i, pid, code);
}

/* Milliseconds since rank i's last heartbeat, and the limit it declared; -1 before its first
 * (a rank is judged only once it waited somewhere). */
static int64_t beat_age_ms(const struct launch *L, int i, uint64_t now, int *limit_ms)
{
	const struct ibc_job_beat *b = &L->js->beat[i];
	uint64_t ns = __atomic_load_n(&b->ns, __ATOMIC_RELAXED);

	*limit_ms = __atomic_load_n(&b->limit_ms, __ATOMIC_RELAXED);
	if (!ns || *limit_ms <= 0)
		return -1;
	/* stopped with its ranks (Ctrl-Z): their time stood still too */
	ns = IBC_MAX(ns, L->resumed_at);
	return now > ns ? (int64_t)((now - ns) / 1000000ull) : 0;
}

/* Rank i is hung (stopped, or without heartbeat while another gave up waiting): name it as
 * the reason the job stops, unless one was named already, and kill it (it cannot notice). */
static void launch_hung(struct launch *L, int i)
{
	struct launch_rank *r = &L->r[i];
	int limit, age = (int)beat_age_ms(L, i, ibc_now_ns(), &limit);
	const char *then = L->js->abort ? "" : " and stopping the other ranks";

	if (r->stopsig)
		ibc_log("rank %d (pid %d on %s) is stopped (signal %d, %s) and made no progress "
			"for %.1f s: killing it%s",
			i, (int)r->pid, ibc_hostname(), r->stopsig, strsignal(r->stopsig),
			age / 1e3, then);
	else
		ibc_log("rank %d (pid %d on %s) made no progress for %.1f s (no heartbeat): "
			"killing it%s",
			i, (int)r->pid, ibc_hostname(), age / 1e3, then);
	if (!L->js->abort)
		launch_abort(L, i, r->pid, IBC_LAUNCH_HUNG + r->stopsig);
	r->hung = true;
	kill(r->pid, SIGKILL);
}

/* The running rank longest without a heartbeat, if that is at least its limit less slack_ms
 * (at most a quarter of the limit), and stopped when stopped_only; else -1. */
static int launch_stalest(const struct launch *L, int slack_ms, bool stopped_only)
{
	uint64_t now = ibc_now_ns();
	int64_t worst = -1;
	int i, found = -1;

	for (i = 0; i < L->np; i++) {
		int limit;
		int64_t age;

		if (!L->r[i].pid || L->r[i].hung || (stopped_only && !L->r[i].stopsig))
			continue;
		age = beat_age_ms(L, i, now, &limit);
		if (age >= 0 && age >= limit - IBC_MIN(slack_ms, limit / 4) && age > worst) {
			worst = age;
			found = i;
		}
	}
	return found;
}

/* A rank ended with code while others still run and nobody was named yet: a signal names it;
 * exit code 3 (it gave up: a timeout, a lost peer) names a rank without heartbeat for about
 * as long, the one it most likely waited for, else the rank that ended. */
static void launch_ended(struct launch *L, int i, pid_t pid, int code)
{
	int h;

	if (code == IBC_EXIT_ENV) {
		h = launch_stalest(L, LAUNCH_TIE_MS, false);
		if (h >= 0) {
			launch_hung(L, h);
			return;
		}
	}
	launch_death(L, i, pid, code);
}

/* Collect every rank that ended, stopped or continued; a signal or exit code 3 while others
 * run stops the job. */
static void launch_reap(struct launch *L)
{
	pid_t pid;
	int st, i;

	while ((pid = waitpid(-1, &st, WNOHANG | WUNTRACED | WCONTINUED)) > 0) {
		int code;

		for (i = 0; i < L->np && L->r[i].pid != pid; i++)
			;
		if (i == L->np)
			continue;
		if (WIFSTOPPED(st) || WIFCONTINUED(st)) {
			L->r[i].stopsig = WIFSTOPPED(st) ? WSTOPSIG(st) : 0;
			continue;
		}
		L->r[i].pid = 0;
		L->alive--;
		code = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
		L->r[i].status = code;
		if ((code < 0 || code == IBC_EXIT_ENV) && !L->js->abort && L->alive > 0)
			launch_ended(L, i, pid, code);
	}
}

/* Send sig to every rank still running; SIGKILL names each as it goes. */
static void launch_kill(struct launch *L, int sig)
{
	int i;

	for (i = 0; i < L->np; i++) {
		if (L->r[i].pid <= 0 || L->r[i].hung)
			continue;
		if (sig == SIGKILL)
			ibc_log("rank %d (pid %d) did not stop within %.1f s: killing it", i,
				(int)L->r[i].pid, L->grace_ms / 1e3);
		kill(L->r[i].pid, sig);
	}
}

/* Until every rank ended: reap, kill a rank stopped for longer than its timeout, kill
 * stragglers a grace period after an abort, pass SIGINT and SIGTERM on to the ranks. */
static void launch_watch(struct launch *L)
{
	while (L->alive > 0) {
		struct timespec ts = { 0, LAUNCH_TICK_MS * 1000000L };
		siginfo_t si;
		int sig, h;

		launch_reap(L);
		if (!L->alive)
			break;
		while ((h = launch_stalest(L, 0, true)) >= 0)
			launch_hung(L, h);
		if (L->abort_at &&
		    ibc_now_ns() - L->abort_at > (uint64_t)L->grace_ms * 1000000ull) {
			launch_kill(L, SIGKILL);
			L->abort_at = ibc_now_ns();
		}
		sig = sigtimedwait(&L->mask, &si, &ts);
		if (sig == SIGCONT)
			L->resumed_at = ibc_now_ns();
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
		int code = L->r[i].status < 0 ? IBC_EXIT_ENV : L->r[i].status;

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
	launch_free(&L);
	return code;
}
