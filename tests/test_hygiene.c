/* SPDX-License-Identifier: MIT */
/*
 * test_hygiene.c - what a job leaves behind when something dies.
 *
 * The `--np` launcher killed with SIGKILL (during setup and during the timed loop): its ranks
 * are gone within 2 s. A rank killed (under --np, and started by hand with IBCOLL_RANK...),
 * the launcher killed: /dev/shm holds nothing of the job afterwards. A stopped rank
 * (SIGSTOP) under --np: the job exits 3 within --timeout + 5 s naming the stopped rank and its
 * host; started by hand: each survivor times out once, at --timeout, naming a peer and host.
 *
 * The fault suite: FAULT_ROUNDS rounds of one random fault at a random moment — SIGKILL or
 * SIGSTOP of a random rank, or SIGKILL of the launcher, 0-1.5 s after the job's first segment
 * appeared (setup or timed loop). The seed is printed; IBC_FAULT_SEED=N repeats a run. After
 * each: the job ends with the documented code within --timeout + 10 s (3 naming the rank for
 * a rank's fault, 0 if it had finished first), no rank is left, nothing of it in /dev/shm.
 *
 * The job's id is read from the segment names in a rank's /proc/PID/maps, so the test looks
 * for exactly this job's segments while other jobs run. This process is a child subreaper:
 * ranks orphaned by the launcher's death become its children and are reaped here.
 */
#include "ibc_common.h"
#include "runcmd.h"
#include "tap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define MAX_RANKS 8

static const char *bin;
static char tmp[256];
static int seq;

/* One job under test: its launcher (or, by hand, no launcher), its ranks, its id and logs. */
struct job {
	pid_t launcher; /* --np parent; 0 when the ranks were started by hand */
	pid_t pid[MAX_RANKS]; /* ranks, in rank order once known */
	bool gone[MAX_RANKS];
	int n;
	char id[40]; /* job id from the segment names; "" until seen */
	char out[320], err[320]; /* --np: the job's stdout/stderr; by hand: rank r's log */
	char dir[300];
};

static void slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : 0;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* exec bin with argv after redirecting stdout and stderr; env: "K=V" entries or NULL. */
static pid_t spawn(char *const argv[], char *const env[], const char *out, const char *err)
{
	pid_t pid = fork();

	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int i;

		dup2(o, 1);
		dup2(e, 2);
		unsetenv("IBCOLL_RANK");
		unsetenv("IBCOLL_NRANKS");
		unsetenv("IBCOLL_ROOT");
		unsetenv("IBCOLL_JOB_ID");
		for (i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* The children of parent, from /proc/PID/stat (the ppid follows the command's ')'). */
static int children_of(pid_t parent, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) && n < max) {
		char path[300], buf[1024], *p;
		int ppid;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		slurp(path, buf, sizeof(buf));
		p = strrchr(buf, ')');
		if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == parent)
			pids[n++] = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

/* The job id in a segment name mapped by pid ("ibcoll-ID-r..."), into id. */
static bool maps_job_id(pid_t pid, char *id, size_t len)
{
	char path[64], line[1024], *p = NULL;
	size_t n = 0;
	FILE *f;

	/* line by line: an ASan build's maps run to megabytes of shadow mappings */
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	while (f && !p && fgets(line, sizeof(line), f))
		p = strstr(line, "ibcoll-");
	if (f)
		fclose(f);
	if (!p)
		return false;
	for (p += 7; *p && *p != '-' && n + 1 < len; p++)
		id[n++] = *p;
	id[n] = '\0';
	return n > 0;
}

/* Poll until rank who (any when < 0) maps a segment (the job id is then known) or limit
 * seconds pass. */
static bool wait_segment(struct job *j, int who, double limit)
{
	double t0 = rc_now();
	int i;

	while (rc_now() - t0 < limit) {
		if (j->launcher)
			j->n = children_of(j->launcher, j->pid, MAX_RANKS);
		for (i = 0; i < j->n; i++)
			if ((who < 0 || who == i) && maps_job_id(j->pid[i], j->id, sizeof(j->id)))
				return true;
		usleep(2000);
	}
	return false;
}

/* Data rows (lines not starting with '#') in a table written to path. */
static int rows_in(const char *path)
{
	static char buf[65536];
	char *p;
	int rows = 0;

	slurp(path, buf, sizeof(buf));
	for (p = buf; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		rows += *p != '#' && *p != '\n';
	return rows;
}

static bool wait_rows(const char *path, int n, double limit)
{
	double t0 = rc_now();

	while (rc_now() - t0 < limit && rows_in(path) < n)
		usleep(20000);
	return rows_in(path) >= n;
}

/* The banner's "#  rank R  pid P" lines, into j->pid[R]. */
static bool banner_pids(struct job *j, int n)
{
	static char buf[65536];
	char *p;
	int got = 0, r, pid;

	slurp(j->out, buf, sizeof(buf));
	for (p = buf; (p = strstr(p, "#  rank")); p++)
		if (sscanf(p, "#  rank %d pid %d", &r, &pid) == 2 && r >= 0 && r < n) {
			j->pid[r] = pid;
			got++;
		}
	j->n = n;
	return got == n;
}

/* A rank is gone when it was reaped here (an orphan of ours) or no longer exists. */
static bool rank_gone(struct job *j, int i)
{
	int st;

	if (!j->gone[i])
		j->gone[i] = waitpid(j->pid[i], &st, WNOHANG) == j->pid[i] ||
			     (kill(j->pid[i], 0) != 0 && errno == ESRCH);
	return j->gone[i];
}

/* Seconds until every rank is gone (limit when some never went; those are killed). */
static double wait_ranks_gone(struct job *j, double limit)
{
	double t0 = rc_now();
	int i, left;

	do {
		for (i = 0, left = 0; i < j->n; i++)
			left += !rank_gone(j, i);
		if (!left)
			return rc_now() - t0;
		usleep(5000);
	} while (rc_now() - t0 < limit);
	for (i = 0; i < j->n; i++)
		if (!rank_gone(j, i)) {
			kill(j->pid[i], SIGKILL);
			waitpid(j->pid[i], NULL, 0);
		}
	return limit;
}

/* Exit code of pid (reaped), or -1 after limit seconds (then it is killed). */
static int wait_exit(pid_t pid, double limit)
{
	double t0 = rc_now();
	int st;

	while (rc_now() - t0 < limit) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* Whether one line of text holds a, b and c. */
static bool line_has(const char *text, const char *a, const char *b, const char *c)
{
	const char *p;

	for (p = text; (p = strstr(p, a)); p++) {
		const char *s = p, *e = strchr(p, '\n');
		size_t n;
		char line[1024];

		while (s > text && s[-1] != '\n')
			s--;
		n = IBC_MIN((size_t)(e ? e - s : (long)strlen(s)), sizeof(line) - 1);
		memcpy(line, s, n);
		line[n] = '\0';
		if (strstr(line, b) && strstr(line, c))
			return true;
	}
	return false;
}

/* Entries of /dev/shm named for job id (listed with diag). */
static int shm_left(const char *id)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	char prefix[64];
	int n = 0;

	snprintf(prefix, sizeof(prefix), "ibcoll-%s-", id);
	while (d && (e = readdir(d)))
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			if (n++ < 8)
				diag("left behind: /dev/shm/%s", e->d_name);
			shm_unlink(e->d_name);
		}
	if (d)
		closedir(d);
	return n;
}

static void job_init(struct job *j, const char *what)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->dir, sizeof(j->dir), "%s/%s-%d", tmp, what, ++seq);
	snprintf(j->out, sizeof(j->out), "%s.out", j->dir);
	snprintf(j->err, sizeof(j->err), "%s.err", j->dir);
}

/* `ibcoll allreduce --np np` with the sizes and timeout given. */
static void start_np(struct job *j, int np, const char *b, const char *e, const char *n,
		     const char *timeout)
{
	char nps[16];
	char *argv[] = { (char *)bin, "allreduce", "--np", nps, "-b", (char *)b, "-e", (char *)e,
			 "-f", "16", "-n", (char *)n, "-w", "1", "--algo", "ring", "--bind", "off",
			 "--timeout", (char *)timeout, "--out", j->dir, NULL };

	snprintf(nps, sizeof(nps), "%d", np);
	j->launcher = spawn(argv, NULL, j->out, j->err);
}

enum when { SETUP, LOOP };

static const char *when_name(enum when w)
{
	return w == SETUP ? "during setup" : "during the timed loop";
}

/* Item 1 and 2: SIGKILL the --np launcher; its ranks must be gone within 2 s, its segments
 * too. */
static void launcher_killed(enum when w)
{
	struct job j;
	double dt;
	bool seen;

	job_init(&j, "launcher");
	start_np(&j, 4, "1M", "256M", "1000", "30");
	seen = wait_segment(&j, -1, 60) && (w == SETUP || wait_rows(j.out, 1, 60));
	if (w == LOOP)
		j.n = children_of(j.launcher, j.pid, MAX_RANKS);
	ok(seen && j.n == 4, "launcher %s: 4 ranks running, job %s", when_name(w), j.id);
	kill(j.launcher, SIGKILL);
	waitpid(j.launcher, NULL, 0);
	dt = wait_ranks_gone(&j, 10);
	ok(dt < 2.0, "launcher SIGKILLed %s: its ranks are gone after %.2f s (< 2 s)", when_name(w),
	   dt);
	ok(j.id[0] && shm_left(j.id) == 0, "launcher SIGKILLed %s: nothing of job %s in /dev/shm",
	   when_name(w), j.id);
}

/* Item 2: SIGKILL one rank under --np; the job exits 3 and leaves no segment. */
static void np_rank_killed(enum when w)
{
	struct job j;
	int code;
	bool seen;

	job_init(&j, "nprank");
	start_np(&j, 4, "1M", "64M", "1000", "10");
	seen = wait_segment(&j, -1, 60);
	if (w == LOOP)
		seen = seen && wait_rows(j.out, 1, 60) && banner_pids(&j, 4);
	ok(seen, "--np rank %s: job %s running", when_name(w), j.id);
	kill(j.pid[w == SETUP ? 0 : 2], SIGKILL);
	code = wait_exit(j.launcher, 60);
	is_int(code, 3, "--np rank SIGKILLed %s: the job exits 3", when_name(w));
	ok(j.id[0] && shm_left(j.id) == 0, "--np rank SIGKILLed %s: nothing of job %s in /dev/shm",
	   when_name(w), j.id);
}

/* A TCP port on 127.0.0.1 nobody listens on right now. */
static int free_port(void)
{
	int p;

	for (p = 20000 + (int)(getpid() % 20000); p < 65000; p++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, rc;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return p;
	}
	return -1;
}

/* n ranks started by hand (IBCOLL_RANK, IBCOLL_NRANKS, IBCOLL_ROOT, IBCOLL_JOB_ID); rank r
 * logs to dir.r.out / dir.r.err. */
static void start_hand(struct job *j, int n, const char *timeout)
{
	static char env[MAX_RANKS][4][80];
	int port = free_port(), r;

	snprintf(j->id, sizeof(j->id), "%08x%08x", (unsigned)getpid(), (unsigned)(seq * 7919));
	for (r = 0; r < n; r++) {
		char out[340], err[340];
		char *argv[] = { (char *)bin, "allreduce", "-b", "4K", "-e", "1M", "-f", "16", "-n",
				 "20000", "-w", "1", "--algo", "ring", "--bind", "off", "--timeout",
				 (char *)timeout, "--out", j->dir, NULL };
		char *e[] = { env[r][0], env[r][1], env[r][2], env[r][3], NULL };

		snprintf(env[r][0], sizeof(env[r][0]), "IBCOLL_RANK=%d", r);
		snprintf(env[r][1], sizeof(env[r][1]), "IBCOLL_NRANKS=%d", n);
		snprintf(env[r][2], sizeof(env[r][2]), "IBCOLL_ROOT=127.0.0.1:%d", port);
		snprintf(env[r][3], sizeof(env[r][3]), "IBCOLL_JOB_ID=%s", j->id);
		snprintf(out, sizeof(out), "%s.%d.out", j->dir, r);
		snprintf(err, sizeof(err), "%s.%d.err", j->dir, r);
		j->pid[r] = spawn(argv, e, out, err);
	}
	j->n = n;
	snprintf(j->out, sizeof(j->out), "%s.0.out", j->dir);
}

/* Item 2 without a launcher: SIGKILL rank 1 of 3 started by hand; the others end, and
 * nothing of the job stays in /dev/shm. */
static void hand_rank_killed(enum when w)
{
	struct job j;
	char id[40];
	bool seen;
	int r, bad = 0;

	job_init(&j, "hand");
	start_hand(&j, 3, "5");
	snprintf(id, sizeof(id), "%s", j.id);
	seen = wait_segment(&j, 1, 60) && strcmp(id, j.id) == 0;
	if (w == LOOP)
		seen = seen && wait_rows(j.out, 1, 60);
	ok(seen, "by hand, rank 1 %s: job %s running", when_name(w), id);
	kill(j.pid[1], SIGKILL);
	for (r = 0; r < 3; r++) {
		int code = r != 1 ? wait_exit(j.pid[r], 40) : 3;

		if (code != 3) {
			static char log[8192];
			char path[400];

			snprintf(path, sizeof(path), "%s.%d.err", j.dir, r);
			slurp(path, log, sizeof(log));
			diag("rank %d exited %d: %.4000s", r, code, log);
		}
		bad |= code != 3;
	}
	waitpid(j.pid[1], NULL, 0);
	ok(!bad, "by hand, rank 1 SIGKILLed %s: ranks 0 and 2 exit 3", when_name(w));
	ok(shm_left(id) == 0, "by hand, rank 1 SIGKILLed %s: nothing of job %s in /dev/shm",
	   when_name(w), id);
}

/* Item 3: SIGSTOP rank 1 of 3 under --np during the timed loop, --timeout 5: exit 3 within
 * 5 + 5 s (twice the timeout and more before the heartbeat), naming rank 1 and its host. */
static void np_rank_stopped(void)
{
	static char err[65536];
	char needle[64];
	struct job j;
	double t0, dt;
	int code;

	job_init(&j, "stopped");
	start_np(&j, 3, "4K", "1M", "20000", "5");
	ok(wait_rows(j.out, 1, 60) && banner_pids(&j, 3), "stopped rank: job in its timed loop");
	kill(j.pid[1], SIGSTOP);
	t0 = rc_now();
	code = wait_exit(j.launcher, 40);
	dt = rc_now() - t0;
	is_int(code, 3, "rank 1 stopped: the job exits 3");
	ok(dt < 10.0, "rank 1 stopped: the job ended %.1f s after the stop (--timeout 5; < 10 s)",
	   dt);
	slurp(j.err, err, sizeof(err));
	snprintf(needle, sizeof(needle), "rank 1 (pid %d", (int)j.pid[1]);
	if (!ok(line_has(err, needle, ibc_hostname(), "stopped"),
		"rank 1 stopped: stderr names it (%s), its host and that it is stopped", needle))
		diag("stderr: %.2000s", err);
	kill(j.pid[1], SIGKILL);
	wait_ranks_gone(&j, 5);
}

/* Item 3 by hand: no launcher to watch heartbeats; each survivor's engine times out once, at
 * --timeout, naming the peer it waited for and its host. */
static void hand_rank_stopped(void)
{
	static char log[65536];
	char path[400], host[128];
	struct job j;
	double t0, dt[3] = { 0 };
	int r, code[3] = { 0 }, once = 1;

	job_init(&j, "handstop");
	start_hand(&j, 3, "5");
	ok(wait_rows(j.out, 1, 60), "by hand, stopped rank: job %s in its timed loop", j.id);
	kill(j.pid[1], SIGSTOP);
	t0 = rc_now();
	for (r = 0; r < 3; r += 2) {
		code[r] = wait_exit(j.pid[r], 40);
		dt[r] = rc_now() - t0;
		snprintf(path, sizeof(path), "%s.%d.err", j.dir, r);
		slurp(path, log, sizeof(log));
		snprintf(host, sizeof(host), "(host %s)", ibc_hostname());
		once &= strstr(log, "timed out after 5.0 s") && strstr(log, host) &&
			!strstr(strstr(log, "timed out") + 1, "timed out");
		if (!once)
			diag("rank %d: %.1000s", r, log);
	}
	ok(code[0] == 3 && code[2] == 3, "by hand, rank 1 stopped: ranks 0 and 2 exit 3");
	ok(dt[0] < 9 && dt[2] < 9, "by hand: they end at the timeout (%.1f s, %.1f s; < 9 s)",
	   dt[0], dt[2]);
	ok(once, "by hand: each names the peer and host it waited for, once");
	kill(j.pid[1], SIGKILL);
	waitpid(j.pid[1], NULL, 0);
	ok(shm_left(j.id) == 0, "by hand, stopped rank killed: nothing of job %s in /dev/shm", j.id);
}

#define FAULT_ROUNDS 6

/* One random fault (see the head of the file); 4 checks. */
static void fault_round(unsigned *seed, int round)
{
	static char err[65536];
	const char *what;
	char needle[64];
	struct job j;
	int target, code, sig;
	pid_t victim;
	double delay, t0, dt;

	job_init(&j, "fault");
	start_np(&j, 3, "4K", "16M", "300", "5");
	target = (int)(rand_r(seed) % 4); /* 3: the launcher */
	sig = target < 3 && rand_r(seed) % 2 ? SIGSTOP : SIGKILL;
	delay = (double)(rand_r(seed) % 1500) / 1000.0;
	ok(wait_segment(&j, -1, 60), "fault %d: job %s started", round, j.id);
	usleep((useconds_t)(delay * 1e6));
	j.n = children_of(j.launcher, j.pid, MAX_RANKS);
	victim = target < 3 && j.n > 0 ? j.pid[target % j.n] : j.launcher;
	what = victim == j.launcher ? "the launcher" : sig == SIGKILL ? "a rank, killed" :
								    "a rank, stopped";
	diag("fault %d: %s (pid %d) %.3f s after the first segment", round, what, (int)victim,
	     delay);
	t0 = rc_now();
	kill(victim, sig);
	if (victim == j.launcher) {
		waitpid(j.launcher, NULL, 0);
		dt = wait_ranks_gone(&j, 10);
		ok(dt < 2.0, "fault %d, %s: its ranks are gone after %.2f s", round, what, dt);
		ok(1, "fault %d: no exit code to check (the launcher is the victim)", round);
	} else {
		code = wait_exit(j.launcher, 30);
		dt = rc_now() - t0;
		slurp(j.err, err, sizeof(err));
		snprintf(needle, sizeof(needle), "pid %d", (int)victim);
		ok((code == 3 && dt < 15.0) || code == 0,
		   "fault %d, %s: exit %d after %.1f s (3 within --timeout + 10 s, or 0 if done)",
		   round, what, code, dt);
		if (!ok(code == 0 || strstr(err, needle), "fault %d: stderr names the rank (%s)",
			round, needle))
			diag("stderr: %.1500s", err);
		if (sig == SIGSTOP)
			kill(victim, SIGKILL);
		wait_ranks_gone(&j, 10);
	}
	ok(j.id[0] && shm_left(j.id) == 0, "fault %d: nothing of job %s in /dev/shm", round, j.id);
}

static void fault_suite(void)
{
	const char *e = getenv("IBC_FAULT_SEED");
	unsigned seed = e ? (unsigned)strtoul(e, NULL, 10) : (unsigned)time(NULL) ^ getpid();
	int i;

	diag("fault suite: IBC_FAULT_SEED=%u repeats this run", seed);
	for (i = 1; i <= FAULT_ROUNDS; i++)
		fault_round(&seed, i);
}

int main(void)
{
	char cmd[300];

	bin = getenv("IBCOLL_BIN");
	if (!bin)
		return tap_skip_all("IBCOLL_BIN not set (run through ctest)");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return tap_skip_all("cannot become a child subreaper");
	snprintf(tmp, sizeof(tmp), "/tmp/ibcoll-test-hygiene-%d", (int)getpid());
	mkdir(tmp, 0755);
	tap_plan(27 + 4 * FAULT_ROUNDS);
	launcher_killed(SETUP);
	launcher_killed(LOOP);
	np_rank_killed(SETUP);
	np_rank_killed(LOOP);
	hand_rank_killed(SETUP);
	hand_rank_killed(LOOP);
	np_rank_stopped();
	hand_rank_stopped();
	fault_suite();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	return tap_done();
}
