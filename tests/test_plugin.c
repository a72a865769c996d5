/* SPDX-License-Identifier: MIT */
/*
 * test_plugin.c - the transport registry and plugin loader: built-in names, unknown names,
 * plugins with the wrong ABI (1), a short vtable, a NULL required entry, no entry symbol, a
 * missing file, a file that is not a shared object; the good plugin (tcp compiled as a .so)
 * loads and moves data through its vtable; optional entries past ops_size read as absent.
 * Versioned structs: a plugin built with the smaller ABI 2 base structs (oldabi) loads, fills
 * only its part of the props and moves data; a built-in transport answering an older host's
 * smaller props writes only that much; ibc_tp_get_props refuses a transport's bad answer.
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
	       "was built for transport ABI 1, this ibcoll speaks ABI 2: rebuild it against this "
	       "transport.h",
	       "plugin with abi_major 1");
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

/* Connect a -> b through ops and move 1 MiB + 3 bytes (two TAP results). */
static void move_data(const struct ibc_tp_ops *ops, struct ibc_tp_ctx *a, struct ibc_tp_ctx *b,
		      const char *what)
{
	struct ibc_tp_send *s = NULL;
	struct ibc_tp_recv *r = NULL;
	struct ibc_tp_mr *ma = NULL, *mb = NULL;
	struct ibc_tp_req *reqs[2];
	struct ibc_tp_buf buf = {.kind = IBC_MEM_HOST, .dmabuf_fd = -1, .cuda_device = -1};
	char *sbuf = malloc(MIB + 3), *rbuf = calloc(1, MIB + 3);
	int rc, rcs[2] = {-1, -1};
	size_t sizes[2] = {0, 0};

	rc = sbuf && rbuf ? tp_connect_pair(ops, a, b, &s, &r) : -ENOMEM;
	is_int(rc, 0, "%s: listen, connect, accept", what);
	if (rc) {
		diag("%s", ops->last_error(a));
		tap_skip(1, "no connection");
		goto out;
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
	   "%s: 1 MiB + 3 bytes moved intact", what);
	ops->close_send(s);
	ops->close_recv(r);
	ops->dereg_mr(a, ma);
	ops->dereg_mr(b, mb);
out:
	free(sbuf);
	free(rbuf);
}

/* The good plugin moves data through its own vtable. */
static void test_good(void)
{
	const struct ibc_tp_ops *ops = NULL, *again = NULL;
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *a = NULL, *b = NULL;
	int rc;

	rc = ibc_tp_lookup(plugin("TCPPLUG"), &ops);
	ok(rc == 0 && ops && strcmp(ops->name, "tcpplug") == 0, "good plugin loads: %s",
	   rc ? ibc_err_get() : ops->name);
	if (rc) {
		tap_skip(5, "no plugin");
		return;
	}
	ok(ibc_tp_lookup(plugin("TCPPLUG"), &again) == 0 && again == ops,
	   "loading it again gives the same vtable");
	ok(ops != NULL && ops->init != NULL && IBC_TP_HAS(ops, wait) && !IBC_TP_HAS(ops, flush),
	   "optional entries: wait present, flush absent");

	ibc_tp_config_init(&cfg);
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
	if (rc) {
		is_int(rc, 0, "plugin: init: %s", ops->last_error(NULL));
		tap_skip(1, "no context");
	} else {
		move_data(ops, a, b, "plugin");
	}
	if (a)
		ops->fini(a);
	if (b)
		ops->fini(b);
}

/* A plugin built with the ABI 2 base structs (old_transport.h): it reads only its part of this
 * host's larger config and fills only its part of the props. */
static void test_oldabi_props(const struct ibc_tp_ops *ops, struct ibc_tp_ctx *ctx)
{
	struct ibc_tp_props raw, p;
	const unsigned char *tail = (const unsigned char *)&raw + IBC_TP_PROPS_BASE_SIZE;
	size_t k, left = 0;
	int rc;

	memset(&raw, 0xab, sizeof(raw));
	raw.size = sizeof(raw);
	rc = ops->get_props(ctx, 0, &raw);
	for (k = 0; k < sizeof(raw) - IBC_TP_PROPS_BASE_SIZE; k++)
		left += tail[k] == 0xab;
	ok(rc == 0 && raw.size == IBC_TP_PROPS_BASE_SIZE &&
	       left == sizeof(raw) - IBC_TP_PROPS_BASE_SIZE,
	   "oldabi: get_props fills %u of %zu bytes and writes nothing past them (%zu untouched)",
	   raw.size, sizeof(raw), left);
	rc = ibc_tp_get_props(ops, ctx, 0, &p);
	ok(rc == 0 && p.size == IBC_TP_PROPS_BASE_SIZE && strcmp(p.name, "oldabi0") == 0 &&
	       strcmp(p.link_layer, "memory") == 0 && p.max_requests == 8 &&
	       p.mem_kinds == IBC_MEM_HOST,
	   "oldabi: props read back through ibc_tp_get_props: %s, %s, %d requests", p.name,
	   p.link_layer, p.max_requests);
	ok(!IBC_TP_PROPS_HAS(&p, fw_version) && !IBC_TP_PROPS_HAS(&p, board_id) &&
	       p.fw_version[0] == '\0' && p.board_id[0] == '\0',
	   "oldabi: the appended fields (fw_version, board_id) are unknown and empty");
	is_int(ibc_tp_get_props(ops, ctx, 1, &p), -EINVAL, "oldabi: get_props of device 1");
}

static void test_oldabi(void)
{
	const struct ibc_tp_ops *ops = NULL;
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *a = NULL, *b = NULL;
	int rc;

	rc = ibc_tp_lookup(plugin("OLDABI"), &ops);
	ok(rc == 0 && ops && strcmp(ops->name, "oldabi") == 0 && ops->abi_major == 2,
	   "plugin with the ABI 2 base structs loads: %s", rc ? ibc_err_get() : ops->name);
	if (rc) {
		tap_skip(8, "no oldabi plugin");
		return;
	}
	ibc_tp_config_init(&cfg); /* this host's size, larger than the plugin's struct */
	cfg.nranks = 2;
	cfg.nic = "nosuch9";
	cfg.sysfs_root = "/nonexistent"; /* past the plugin's struct: never read */
	rc = ops->init(&cfg, &a);
	ok(rc == -ENODEV && strstr(ops->last_error(NULL), "no device 'nosuch9'"),
	   "oldabi: reads the base fields of a larger config (--nic): %s", ops->last_error(NULL));
	cfg.nic = NULL;
	rc = ops->init(&cfg, &a);
	rc = rc ? rc : ops->init(&cfg, &b);
	is_int(rc, 0, "oldabi: init with this host's config");
	if (rc) {
		tap_skip(6, "no context");
		goto fini;
	}
	test_oldabi_props(ops, a);
	move_data(ops, a, b, "oldabi");
fini:
	if (a)
		ops->fini(a);
	if (b)
		ops->fini(b);
}

static int bad_size_props(struct ibc_tp_ctx *ctx, int dev, struct ibc_tp_props *p)
{
	p->size = dev == 0 ? 0 : p->size + 8; /* forgot the size / claims more than given */
	return 0;
}

/* A built-in transport (this header) with an older host (smaller props, smaller config). */
static void test_old_host(void)
{
	const struct ibc_tp_ops *tcp = NULL;
	struct ibc_tp_ops bad;
	struct ibc_tp_config cfg;
	struct ibc_tp_ctx *ctx = NULL;
	struct ibc_tp_props raw, p;
	int rc;

	ibc_tp_lookup("tcp", &tcp);
	ibc_tp_config_init(&cfg);
	cfg.local_addr = "127.0.0.1";
	cfg.size = IBC_TP_CFG_BASE_SIZE - 1;
	rc = tcp->init(&cfg, &ctx);
	ok(rc == -EINVAL && strstr(tcp->last_error(NULL), "cfg->size"),
	   "tcp: a config below the ABI 2 base is refused: %s", tcp->last_error(NULL));
	cfg.size = IBC_TP_CFG_BASE_SIZE; /* a host from before sysfs_root */
	rc = tcp->init(&cfg, &ctx);
	is_int(rc, 0, "tcp: init with a base-size config");
	if (rc) {
		tap_skip(3, "no context");
		return;
	}
	memset(&raw, 0xab, sizeof(raw));
	raw.size = IBC_TP_PROPS_BASE_SIZE;
	rc = tcp->get_props(ctx, 0, &raw);
	ok(rc == 0 && raw.size == IBC_TP_PROPS_BASE_SIZE && strcmp(raw.name, "tcp:lo") == 0 &&
	       (unsigned char)raw.fw_version[0] == 0xab &&
	       (unsigned char)raw.board_id[sizeof(raw.board_id) - 1] == 0xab,
	   "tcp: an older host's smaller props get %u bytes, nothing past them", raw.size);
	bad = *tcp;
	bad.get_props = bad_size_props;
	ok(ibc_tp_get_props(&bad, ctx, 0, &p) == -EPROTO &&
	       strstr(ibc_err_get(), "says it filled 0 bytes"),
	   "ibc_tp_get_props refuses props->size 0: %s", ibc_err_get());
	ok(ibc_tp_get_props(&bad, ctx, 1, &p) == -EPROTO, "... and a size above the one given");
	tcp->fini(ctx);
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
	tap_plan(47);
	test_builtins();
	test_refused();
	test_minsize();
	test_good();
	test_oldabi();
	test_old_host();
	test_env();
	return tap_done();
}
