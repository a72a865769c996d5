/* SPDX-License-Identifier: MIT */
/*
 * test_auth.c - the job key and what a stranger can do (common/ibc_auth.h, bootstrap, tcp):
 * the challenge-response itself (right key, wrong key, no key, garbage); a tcp data connection
 * with a wrong key is refused and an idle stranger on a tcp listener is dropped while the right
 * peer still gets in; at the rendezvous of real `ibcoll allreduce` ranks, a member with the
 * wrong key is refused and the job completes without it, strangers that send one byte, garbage,
 * nothing or a huge length are dropped and the job completes; the key file's mode check, the
 * warning without a key and --require-auth.
 */
#include "ibc_auth.h"
#include "ibc_common.h"
#include "ibc_sock.h"
#include "runcmd.h"
#include "tap.h"
#include "tcp_int.h"
#include "tp_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern const struct ibc_tp_ops ibc_tp_tcp_ops;
static const struct ibc_tp_ops *ops = &ibc_tp_tcp_ops;

#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static const char *bin;
static char tmp[256];

/* ------------------------------------------------------------------ the exchange in-process */

/* Run both sides of the exchange over a socketpair; rc of each side. */
static void exchange(const struct ibc_auth_key *ks, const struct ibc_auth_key *kc, int *rs,
		     int *rcl)
{
	struct ibc_auth s, c;
	uint64_t dl = ibc_sock_deadline(2000);
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	ibc_auth_start(&s, true, ks->bytes, ks->len, "test");
	ibc_auth_start(&c, false, kc->bytes, kc->len, "test");
	*rs = *rcl = -EAGAIN;
	while ((*rs == -EAGAIN || *rcl == -EAGAIN) && ibc_sock_remaining_ms(dl)) {
		if (*rs == -EAGAIN)
			*rs = ibc_auth_step(&s, sv[0]);
		if (*rcl == -EAGAIN)
			*rcl = ibc_auth_step(&c, sv[1]);
	}
	close(sv[0]);
	close(sv[1]);
}

static void test_exchange(void)
{
	struct ibc_auth_key a, b, none = {0};
	int rs, rc;

	ok(ibc_auth_key_parse(KEY_A, &a) == 0 && a.len == 32, "a 64-digit hex key parses");
	ok(ibc_auth_key_parse(KEY_B "\n", &b) == 0, "a trailing newline is allowed");
	ok(ibc_auth_key_parse("abc", &none) == -EINVAL && none.len == 0, "a short key is refused");
	ok(ibc_auth_key_parse("zz112233445566778899aabbccddeeff", &none) == -EINVAL,
	   "a key that is not hex is refused");
	exchange(&a, &a, &rs, &rc);
	ok(rs == 0 && rc == 0, "same key: both sides accept (%d, %d)", rs, rc);
	exchange(&a, &b, &rs, &rc);
	ok(rs == -EACCES && rc == -EACCES, "different keys: both sides refuse (%d, %d)", rs, rc);
	exchange(&a, &none, &rs, &rc);
	ok(rs == -EACCES && rc == -EACCES, "a client without the key is refused (%d, %d)", rs, rc);
	exchange(&none, &none, &rs, &rc);
	ok(rs == 0 && rc == 0, "no key on either side: the exchange still completes");
}

/* ------------------------------------------------------------------ tcp data connections */

static int tcp_ctx(const struct ibc_auth_key *k, struct ibc_tp_ctx **ctx)
{
	struct ibc_tp_config cfg;

	ibc_tp_config_init(&cfg);
	cfg.nranks = 2;
	cfg.local_size = 1;
	cfg.job_id = "test_auth";
	cfg.hostname = "localhost";
	cfg.local_addr = "127.0.0.1";
	cfg.gid_index = -1;
	cfg.qps = 1;
	cfg.timeout_ms = 10000;
	cfg.job_key = k->bytes;
	cfg.job_key_len = k->len;
	return ops->init(&cfg, ctx);
}

/* Connect sctx to l (accepting on it) for at most limit_s; the connect's and accept's rc. */
static void drive(struct ibc_tp_ctx *sctx, struct ibc_tp_listener *l, const void *h, double limit_s,
		  int *crc, int *arc)
{
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_recv *r = NULL;
	double end = tp_now() + limit_s;

	*crc = *arc = -EAGAIN;
	while ((*crc == -EAGAIN || *arc == -EAGAIN) && tp_now() < end) {
		if (*crc == -EAGAIN)
			*crc = ops->connect(sctx, 0, h, &s);
		if (*arc == -EAGAIN)
			*arc = ops->accept(l, &r);
		usleep(1000);
	}
	ops->close_send(s);
	ops->close_recv(r);
}

/* A plain TCP client to the listener in handle h (IPv4 only). */
static int raw_connect_handle(const void *h)
{
	struct tcp_handle th;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memcpy(&th, h, sizeof(th));
	sa.sin_port = th.port;
	memcpy(&sa.sin_addr, th.addr, 4);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_tcp(void)
{
	struct ibc_auth_key a, b;
	struct ibc_tp_ctx *ra = NULL, *sa = NULL, *sb = NULL;
	struct ibc_tp_listener *l = NULL;
	unsigned char h[IBC_TP_HANDLE_BYTES];
	int crc, arc, fd, rc;
	double t0;

	ibc_auth_key_parse(KEY_A, &a);
	ibc_auth_key_parse(KEY_B, &b);
	rc = tcp_ctx(&a, &ra);
	rc = rc ? rc : tcp_ctx(&a, &sa);
	rc = rc ? rc : tcp_ctx(&b, &sb);
	rc = rc ? rc : ops->listen(ra, 0, h, &l);
	if (!ok(rc == 0, "tcp: three contexts (keys A, A, B) and a listener")) {
		diag("%s", ibc_err_get());
		tap_skip(5, "no tcp context");
		return;
	}
	drive(sb, l, h, 5, &crc, &arc);
	ok(crc == -EACCES && arc == -EAGAIN,
	   "tcp: a connection with the wrong key is refused (connect %d), the listener takes "
	   "nothing (accept %d)",
	   crc, arc);
	ok(strstr(ops->last_error(sb), "job key") != NULL, "tcp: the refusal names the job key: %s",
	   ops->last_error(sb));
	drive(sa, l, h, 10, &crc, &arc);
	ok(crc == 0 && arc == 0, "tcp: then the right key gets in on the same listener (%d, %d)",
	   crc, arc);

	fd = raw_connect_handle(h); /* an idle stranger: connects, says nothing */
	t0 = tp_now();
	drive(sa, l, h, 10, &crc, &arc);
	ok(fd >= 0 && crc == 0 && arc == 0,
	   "tcp: an idle stranger on the listener is dropped, the peer gets in (%d, %d)", crc, arc);
	ok(tp_now() - t0 < 5, "tcp: within the 2 s handshake deadline (+ slack): %.1f s",
	   tp_now() - t0);
	if (fd >= 0)
		close(fd);
	ops->close_listen(l);
	ops->fini(ra);
	ops->fini(sa);
	ops->fini(sb);
}

/* ------------------------------------------------------------------ ranks and strangers */

struct proc {
	pid_t pid;
	char log[320];
};

/* `ibcoll allreduce` as rank r of n (Open MPI's variables) with env entries (NULL-ended). */
static void start(struct proc *p, const char *name, int r, int n, const char *root,
		  char *const env[], const char *extra)
{
	char cmd[2048];
	size_t k = 0;
	int i;

	snprintf(p->log, sizeof(p->log), "%s/%s.%d.log", tmp, name, r);
	for (i = 0; env && env[i]; i++)
		k += (size_t)snprintf(cmd + k, sizeof(cmd) - k, "%s ", env[i]);
	snprintf(cmd + k, sizeof(cmd) - k,
		 "OMPI_COMM_WORLD_RANK=%d OMPI_COMM_WORLD_SIZE=%d IBCOLL_ROOT=%s exec %s allreduce "
		 "-b 4 -e 4K -f 16 -n 2 -w 1 --timeout 10 --out %s/%s %s >%s 2>&1",
		 r, n, root, bin, tmp, name, extra ? extra : "", p->log);
	p->pid = fork();
	if (p->pid == 0) {
		unsetenv("IBCOLL_RANK");
		unsetenv("IBCOLL_NRANKS");
		unsetenv("IBCOLL_JOB_KEY");
		unsetenv("IBCOLL_JOB_KEY_FILE");
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
}

static int finish(struct proc *p, double limit)
{
	double t0 = rc_now();
	int st;

	while (rc_now() - t0 < limit) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(20000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	return -1;
}

static int log_has(const struct proc *p, const char *needle)
{
	static char buf[65536];
	FILE *f = fopen(p->log, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void show(const struct proc *p)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "sed 's/^/#   /' %s | tail -15", p->log);
	if (system(cmd))
		return;
}

static int root_port;

/* A fresh loopback port for a rendezvous (bound, then released). */
static const char *new_root(char *buf, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	root_port = ntohs(sa.sin_port);
	snprintf(buf, len, "127.0.0.1:%d", root_port);
	return buf;
}

/* Connect to the rendezvous port, retrying while rank 0 is starting; -1 after 10 s. */
static int raw_connect_root(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)root_port)};
	double end = rc_now() + 10;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (rc_now() < end) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(20000);
	}
	return -1;
}

/* The bootstrap's frame header (bootstrap.c's struct boot_hdr, host order). */
struct boot_hdr {
	uint32_t magic;
	int32_t src;
	uint32_t tag;
	uint32_t pad;
	uint64_t len;
};

/* A stranger who knows the protocol but not the key (key NULL: the keyless exchange) and,
 * once in, sends a frame header with a huge length. The exchange's result. */
static int stranger_handshake(int fd, const struct ibc_auth_key *k, bool huge)
{
	struct ibc_auth a;
	struct boot_hdr bh = {0x69624253u, 1, 1u << 24, 0, 1ull << 34};
	int rc;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	ibc_auth_start(&a, false, k ? k->bytes : NULL, k ? k->len : 0, "ibcoll-boot-1");
	rc = ibc_auth_run(&a, fd, ibc_sock_deadline(huge ? 1000 : 5000));
	if ((!rc || rc == -ETIMEDOUT) && huge) /* a rank 0 without the handshake: frame at once */
		rc = ibc_sock_send_full(fd, &bh, sizeof(bh), ibc_sock_deadline(2000));
	return rc;
}

/* A keyless 2-rank job with a stranger at the rendezvous before rank 1 comes: how it behaves
 * (what: "byte", "garbage", "nothing", "huge"). The job must complete. */
static void stranger_job(const char *what)
{
	char root[64], name[64];
	struct proc p[2];
	int fd, c0, c1;

	snprintf(name, sizeof(name), "stranger-%s", what);
	new_root(root, sizeof(root));
	start(&p[0], name, 0, 2, root, NULL, NULL);
	fd = raw_connect_root();
	if (!strcmp(what, "byte"))
		(void)!write(fd, "x", 1);
	else if (!strcmp(what, "garbage"))
		(void)!write(
		    fd,
		    "GET / HTTP/1.0\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		    100);
	else if (!strcmp(what, "huge"))
		stranger_handshake(fd, NULL, true);
	usleep(
	    2500000); /* past the 2 s deadline: rank 0 drops the stranger during the rendezvous */
	start(&p[1], name, 1, 2, root, NULL, NULL);
	c0 = finish(&p[0], 40);
	c1 = finish(&p[1], 40);
	if (!ok(fd >= 0 && c0 == 0 && c1 == 0,
		"rendezvous: a stranger that sends %s is dropped, the job completes (%d, %d)",
		!strcmp(what, "byte")	? "one byte"
		: !strcmp(what, "huge") ? "a 16 GiB length"
					: what,
		c0, c1)) {
		show(&p[0]);
		show(&p[1]);
	}
	ok(log_has(&p[0], "dropped a connection"), "rendezvous (%s): rank 0 logs the drop", what);
	if (fd >= 0)
		close(fd);
}

/* A keyed job; an impostor rank 1 with the wrong key and a stranger without one come first. */
static void test_wrong_key(void)
{
	char root[64], ka[80] = "IBCOLL_JOB_KEY=" KEY_A, kb[80] = "IBCOLL_JOB_KEY=" KEY_B;
	char *ea[] = {ka, NULL}, *eb[] = {kb, NULL};
	struct ibc_auth_key none = {0};
	struct proc p[2], imp;
	int c0, c1, ci, fd, src;

	new_root(root, sizeof(root));
	start(&p[0], "keyed", 0, 2, root, ea, "--require-auth");
	fd = raw_connect_root();
	src = fd >= 0 ? stranger_handshake(fd, &none, false) : -1;
	ok(src == -EACCES, "rendezvous: a stranger without the key is refused (%d)", src);
	if (fd >= 0)
		close(fd);
	start(&imp, "keyed-impostor", 1, 2, root, eb, NULL);
	ci = finish(&imp, 30);
	ok(ci == 3 && log_has(&imp, "job key"),
	   "rendezvous: a rank 1 with the wrong key exits 3 saying the keys differ (%d)", ci);
	if (ci != 3)
		show(&imp);
	start(&p[1], "keyed", 1, 2, root, ea, "--require-auth");
	c0 = finish(&p[0], 40);
	c1 = finish(&p[1], 40);
	if (!ok(c0 == 0 && c1 == 0,
		"rendezvous: the right rank 1 still joins, the job completes "
		"(%d, %d)",
		c0, c1)) {
		show(&p[0]);
		show(&p[1]);
	}
	ok(log_has(&p[0], "did not prove it holds the job key"),
	   "rendezvous: rank 0 logs the connections it refused");
	ok(!log_has(&p[0], "warning: no job key"), "with a key: no warning that the rendezvous is "
						   "open");
}

static void test_key_config(void)
{
	char root[64], path[320], kf[400], *ef[] = {kf, NULL};
	struct proc p[2];
	int c0, c1, fd;

	snprintf(path, sizeof(path), "%s/job.key", tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	(void)!write(fd, KEY_A "\n", strlen(KEY_A) + 1);
	close(fd);
	chmod(path, 0644);
	snprintf(kf, sizeof(kf), "IBCOLL_JOB_KEY_FILE=%s", path);
	new_root(root, sizeof(root));
	start(&p[0], "keyfile-644", 0, 2, root, ef, NULL);
	c0 = finish(&p[0], 20);
	ok(c0 == 2 && log_has(&p[0], "chmod 600"),
	   "a key file others may read: exit 2 saying chmod 600 (%d)", c0);
	if (c0 != 2)
		show(&p[0]);

	chmod(path, 0600);
	new_root(root, sizeof(root));
	start(&p[0], "keyfile-600", 0, 2, root, ef, NULL);
	start(&p[1], "keyfile-600", 1, 2, root, ef, NULL);
	c0 = finish(&p[0], 40);
	c1 = finish(&p[1], 40);
	ok(c0 == 0 && c1 == 0, "a key file of mode 600 on both ranks: the job completes (%d, %d)",
	   c0, c1);
	ok(!log_has(&p[0], "warning: no job key"), "key file: no open-rendezvous warning");

	new_root(root, sizeof(root));
	start(&p[0], "no-key", 0, 2, root, NULL, "--require-auth");
	c0 = finish(&p[0], 20);
	ok(c0 == 2 && log_has(&p[0], "--require-auth") && log_has(&p[0], "IBCOLL_JOB_KEY"),
	   "--require-auth without a key: exit 2 naming IBCOLL_JOB_KEY (%d)", c0);
	if (c0 != 2)
		show(&p[0]);

	new_root(root, sizeof(root));
	start(&p[0], "open", 0, 2, root, NULL, NULL);
	start(&p[1], "open", 1, 2, root, NULL, NULL);
	c0 = finish(&p[0], 40);
	c1 = finish(&p[1], 40);
	ok(c0 == 0 && c1 == 0 && log_has(&p[0], "warning: no job key: the rendezvous at") &&
	       log_has(&p[0], "is open"),
	   "no key: the job runs (%d, %d), rank 0 warns that the rendezvous is open", c0, c1);
}

int main(void)
{
	test_exchange();
	test_tcp();
	bin = getenv("IBCOLL_BIN");
	if (!bin) {
		tap_skip(16, "IBCOLL_BIN not set (run through ctest)");
		return tap_done();
	}
	snprintf(tmp, sizeof(tmp), "/tmp/ibcoll-test-auth-%d", (int)getpid());
	mkdir(tmp, 0755);
	stranger_job("byte");
	stranger_job("garbage");
	stranger_job("nothing");
	stranger_job("huge");
	test_wrong_key();
	test_key_config();
	return tap_done();
}
