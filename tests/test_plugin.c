/* SPDX-License-Identifier: MIT */
/*
 * test_plugin.c - the transport registry and plugin loader: built-in names, unknown names,
 * plugins with the wrong ABI, a short vtable, a NULL required entry, no entry symbol, a missing
 * file, a file that is not a shared object; the good plugin (tcp compiled as a .so) loads and
 * moves data through its vtable; optional entries past ops_size read as absent.
 * Plugin paths come from the environment (IBC_TEST_PLUGIN_<NAME>, set by tests/transport.cmake).
 */
#include "tap.h"
#include "tp_util.h"
#include "transport.h"
#include "ibc_common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static const char *plugin(const char *name)
{
	char var[64];
	const char *p;

	snprintf(var, sizeof(var), "IBC_TEST_PLUGIN_%s", name);
	p = getenv(var);
	if (!p || !*p) {
		diag("%s is not set: run this test through ctest", var);
		return "/nonexistent/libibcoll-net-missing.so";
	}
	return p;
}

/* lookup must fail with rc and an error text containing want. */
static void refuse(const char *path, int rc_want, const char *want, const char *what)
{
	const struct ibc_tp_ops *ops = (const struct ibc_tp_ops *)1;
	int rc;

	ibc_err_clear();
	rc = ibc_tp_lookup(path, &ops);
	ok(rc == rc_want && ops == NULL && strstr(ibc_err_get(), want), "%s -> %d (want %d)", what,
	   rc, rc_want);
	diag("  %s", ibc_err_get());
}

static void test_builtins(void)
{
	const char *const *names = ibc_tp_builtin_names();
	const struct ibc_tp_ops *ops = NULL;
	int n = 0, shm = 0, tcp = 0;

	for (; names && names[n]; n++) {
		shm += strcmp(names[n], "shm") == 0;
		tcp += strcmp(names[n], "tcp") == 0;
	}
	ok(n >= 2 && shm == 1 && tcp == 1, "built-in names include shm and tcp (%d names)", n);
	is_int(ibc_tp_lookup("tcp", &ops), 0, "lookup tcp");
	ok(ops && strcmp(ops->name, "tcp") == 0 && ibc_tp_validate(ops, "built-in tcp") == 0,
	   "tcp is valid");
	ops = NULL;
	ok(ibc_tp_lookup("shm", &ops) == 0 && ops && strcmp(ops->name, "shm") == 0, "lookup shm");
	{
		char want[256];
		size_t k, len;

		len = (size_t)snprintf(want, sizeof(want), "unknown transport 'nope': valid are ");
		for (k = 0; names && names[k] && len < sizeof(want); k++)
			len += (size_t)snprintf(want + len, sizeof(want) - len, "%s, ", names[k]);
		refuse("nope", -ENOENT, want, "unknown name");
	}
	ok(strstr(ibc_err_get(), "or a plugin path (libibcoll-net-NAME.so)") != NULL,
	   "message suggests a plugin path");
}

static void test_refused(void)
{
	char msg[256];

	refuse(plugin("BADABI"), -EPROTO,
	       "was built for transport ABI 2, this ibcoll speaks ABI 1: rebuild it against this "
	       "transport.h",
	       "plugin with abi_major 2");
	ok(strstr(ibc_err_get(), "libibcoll-net-badabi.so") != NULL, "message names the file");
	snprintf(msg, sizeof(msg), "declares ops_size %zu, less than the %zu bytes",
		 IBC_TP_OPS_MIN_SIZE - sizeof(void *), (size_t)IBC_TP_OPS_MIN_SIZE);
	refuse(plugin("SHORT"), -EPROTO, msg, "plugin with a short vtable");
	refuse(plugin("NULLOP"), -EPROTO, "required entry 'accept' is NULL",
	       "plugin with a NULL required entry");
	refuse(plugin("NOSYM"), -ENOEXEC, "does not export 'ibcoll_transport_plugin'",
	       "shared object without the entry symbol");
	refuse("/nonexistent/dir/libibcoll-net-x.so", -ENOENT, "cannot load transport plugin",
	       "missing file");
	{
		char junk[] = "/tmp/ibc-test-notelf-XXXXXX.so";
		int fd = mkstemps(junk, 3);

		ok(fd >= 0 && write(fd, "not ELF\n", 8) == 8, "a junk file %s", junk);
		refuse(junk, -ENOEXEC, "cannot load transport plugin /tmp/ibc-test-notelf-",
		       "a file that is not a shared object");
		if (fd >= 0) {
			close(fd);
			unlink(junk);
		}
	}
	refuse("libibcoll-net-surely-not-installed.so", -ENOENT, "cannot load", "bare .so name");
}

static void test_minsize(void)
{
	const struct ibc_tp_ops *ops = NULL, *tcp = NULL;
	struct ibc_tp_ops o;
	int rc;

	rc = ibc_tp_lookup(plugin("MINSIZE"), &ops);
	ok(rc == 0 && ops && ops->ops_size == IBC_TP_OPS_MIN_SIZE,
	   "plugin with ops_size = IBC_TP_OPS_MIN_SIZE loads (%d)", rc);
	if (ops) {
		/* the .so's struct is full size, so reading flush directly is safe here */
		ok(ops->flush != NULL && !IBC_TP_HAS(ops, flush) && !IBC_TP_HAS(ops, wait),
		   "its flush, set beyond ops_size, is absent");
	} else {
		ok(0, "its flush, set beyond ops_size, is absent");
	}

	/* the same in memory */
	ibc_tp_lookup("tcp", &tcp);
	memcpy(&o, tcp, sizeof(o));
	o.ops_size = IBC_TP_OPS_MIN_SIZE;
	ok(IBC_TP_HAS(tcp, wait) && o.wait != NULL && !IBC_TP_HAS(&o, wait) &&
	       ibc_tp_validate(&o, "in-memory") == 0,
	   "in memory: wait past ops_size is absent, the vtable still valid");
	o.ops_size = (uint32_t)(offsetof(struct ibc_tp_ops, wait) + sizeof(o.wait));
	ok(IBC_TP_HAS(&o, wait) && !IBC_TP_HAS(&o, port_counters),
	   "ops_size covering wait: wait present, port_counters absent");
	o.ops_size = sizeof(o);
	o.test = NULL;
	ok(ibc_tp_validate(&o, "in-memory") == -EPROTO &&
	       strstr(ibc_err_get(), "required entry 'test' is NULL"),
	   "validate names a NULL required entry: %s", ibc_err_get());
	o.test = tcp->test;
	o.name = "";
	ok(ibc_tp_validate(&o, "in-memory") == -EPROTO && strstr(ibc_err_get(), "no name"),
	   "validate refuses an empty name");
	ok(ibc_tp_validate(NULL, "x") == -EPROTO, "validate refuses NULL");
}

/* The good plugin moves data through its own vtable. */
static void test_good(void)
{
	const struct ibc_tp_ops *ops = NULL, *again = NULL;
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *a = NULL, *b = NULL;
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_recv *r = NULL;
	struct ibc_tp_mr *ma = NULL, *mb = NULL;
	struct ibc_tp_req *reqs[2];
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	char *sbuf = malloc(MIB + 3), *rbuf = calloc(1, MIB + 3);
	int rc, rcs[2] = {-1, -1};
	size_t sizes[2] = {0, 0};

	rc = ibc_tp_lookup(plugin("TCPPLUG"), &ops);
	ok(rc == 0 && ops && strcmp(ops->name, "tcpplug") == 0, "good plugin loads: %s",
	   rc ? ibc_err_get() : ops->name);
	if (rc || !sbuf || !rbuf) {
		tap_skip(6, "no plugin");
		goto out;
	}
	ok(ibc_tp_lookup(plugin("TCPPLUG"), &again) == 0 && again == ops,
	   "loading it again gives the same vtable");
	ok(ops != NULL && ops->init != NULL && IBC_TP_HAS(ops, wait) && !IBC_TP_HAS(ops, flush),
	   "optional entries: wait present, flush absent");

	memset(&cfg, 0, sizeof(cfg));
	cfg.nranks = 2;
	cfg.nic = "nosuchif0";
	cfg.gid_index = -1;
	cfg.qps = 1;
	rc = ops->init(&cfg, &a);
	ok(rc == -ENODEV && strstr(ops->last_error(NULL), "nosuchif0"),
	   "plugin error text through last_error: %s", ops->last_error(NULL));

	cfg.nic = NULL;
	cfg.local_addr = "127.0.0.1";
	rc = ops->init(&cfg, &a);
	rc = rc ? rc : ops->init(&cfg, &b);
	rc = rc ? rc : tp_connect_pair(ops, a, b, &s, &r);
	is_int(rc, 0, "plugin: listen, connect, accept");
	if (rc) {
		diag("%s", a ? ops->last_error(a) : ops->last_error(NULL));
		tap_skip(1, "no connection");
		goto fini;
	}
	buf.addr = sbuf;
	buf.len = MIB + 3;
	rc = ops->reg_mr(a, 0, &buf, &ma);
	buf.addr = rbuf;
	rc = rc ? rc : ops->reg_mr(b, 0, &buf, &mb);
	tp_fill(sbuf, MIB + 3, 42);
	rc = rc ? rc : ops->post_recv(r, rbuf, MIB + 3, 42, mb, &reqs[1]);
	rc = rc ? rc : ops->post_send(s, sbuf, MIB + 3, 42, ma, &reqs[0]);
	rc = rc ? rc : tp_complete(ops, reqs, 2, rcs, sizes);
	ok(rc == 0 && rcs[0] == 0 && rcs[1] == 0 && sizes[1] == MIB + 3 &&
	       tp_check(rbuf, MIB + 3, 42) < 0,
	   "plugin: 1 MiB + 3 bytes moved intact");
	ops->close_send(s);
	ops->close_recv(r);
	ops->dereg_mr(a, ma);
	ops->dereg_mr(b, mb);
fini:
	if (a)
		ops->fini(a);
	if (b)
		ops->fini(b);
out:
	free(sbuf);
	free(rbuf);
}

/* IBCOLL_TRANSPORT_PLUGIN: built-ins win; the plugin answers to its own name or to none. */
static void test_env(void)
{
	const struct ibc_tp_ops *ops = NULL;
	int rc;

	setenv("IBCOLL_TRANSPORT_PLUGIN", plugin("TCPPLUG"), 1);
	rc = ibc_tp_lookup("tcpplug", &ops);
	ok(rc == 0 && ops && strcmp(ops->name, "tcpplug") == 0,
	   "IBCOLL_TRANSPORT_PLUGIN + its name -> the plugin");
	ops = NULL;
	rc = ibc_tp_lookup("tcp", &ops);
	ok(rc == 0 && ops && strcmp(ops->name, "tcp") == 0, "a built-in name still wins");
	ops = NULL;
	rc = ibc_tp_lookup(NULL, &ops);
	ok(rc == 0 && ops && strcmp(ops->name, "tcpplug") == 0, "no name -> the plugin");
	refuse("other", -ENOENT,
	       "or a plugin path (libibcoll-net-NAME.so); the plugin in IBCOLL_TRANSPORT_PLUGIN=",
	       "IBCOLL_TRANSPORT_PLUGIN with another name");
	setenv("IBCOLL_TRANSPORT_PLUGIN", plugin("BADABI"), 1);
	refuse("x", -EPROTO,
	       "IBCOLL_TRANSPORT_PLUGIN=", "IBCOLL_TRANSPORT_PLUGIN with a bad plugin");
	unsetenv("IBCOLL_TRANSPORT_PLUGIN");
}

int main(void)
{
	tap_plan(33);
	test_builtins();
	test_refused();
	test_minsize();
	test_good();
	test_env();
	return tap_done();
}
