/* SPDX-License-Identifier: MIT */
/*
 * registry.c - built-in transports and the plugin loader.
 *
 * Lookup precedence for ibc_tp_lookup(s):
 *   1. s contains '/' or ends in ".so": load s as a plugin (dlopen searches the library path
 *      when there is no '/'). The plugin's own name does not matter.
 *   2. s is a built-in name (shm, tcp, verbs, gdr): the built-in, even when
 *      IBCOLL_TRANSPORT_PLUGIN is set - a plugin cannot shadow a built-in by name.
 *   3. IBCOLL_TRANSPORT_PLUGIN=/path is set: load that plugin; its ops->name must equal s
 *      (so --transport NAME IBCOLL_TRANSPORT_PLUGIN=/x/libibcoll-net-NAME.so reads right).
 *      s NULL or "" also takes the plugin from the environment, whatever its name.
 *   4. otherwise -ENOENT: unknown transport.
 *
 * Plugins stay loaded for the life of the process (their ops must outlive every context);
 * each path is opened once and remembered in a small table guarded by a mutex.
 */
#include "transport.h"
#include "ibc_common.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

extern const struct ibc_tp_ops ibc_tp_shm_ops;
extern const struct ibc_tp_ops ibc_tp_tcp_ops;
#ifdef IBCOLL_HAVE_VERBS_TRANSPORT
extern const struct ibc_tp_ops ibc_tp_verbs_ops;
#endif
#ifdef IBCOLL_HAVE_GDR_TRANSPORT
extern const struct ibc_tp_ops ibc_tp_gdr_ops;
#endif

#define REG_MAX_PLUGINS 16
#define REG_ENV		"IBCOLL_TRANSPORT_PLUGIN"

static const struct ibc_tp_ops *const reg_builtins[] = {
    &ibc_tp_shm_ops,
    &ibc_tp_tcp_ops,
#ifdef IBCOLL_HAVE_VERBS_TRANSPORT
    &ibc_tp_verbs_ops,
#endif
#ifdef IBCOLL_HAVE_GDR_TRANSPORT
    &ibc_tp_gdr_ops,
#endif
};

static const char *const reg_names[] = {
    "shm",   "tcp",
#ifdef IBCOLL_HAVE_VERBS_TRANSPORT
    "verbs",
#endif
#ifdef IBCOLL_HAVE_GDR_TRANSPORT
    "gdr",
#endif
    NULL,
};

struct reg_plugin {
	char path[4096];	      /* as given to dlopen */
	void *dl;		      /* owned: never closed, the ops live inside */
	const struct ibc_tp_ops *ops; /* borrowed from dl */
};

static struct {
	pthread_mutex_t lock;
	int n;
	struct reg_plugin p[REG_MAX_PLUGINS];
} reg_plugins = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The entries every transport must fill: init .. last_error. */
struct reg_entry {
	const char *name;
	size_t off; /* offsetof(struct ibc_tp_ops, name) */
};

static const struct reg_entry reg_required[] = {
    {"init", offsetof(struct ibc_tp_ops, init)},
    {"devices", offsetof(struct ibc_tp_ops, devices)},
    {"get_props", offsetof(struct ibc_tp_ops, get_props)},
    {"listen", offsetof(struct ibc_tp_ops, listen)},
    {"connect", offsetof(struct ibc_tp_ops, connect)},
    {"accept", offsetof(struct ibc_tp_ops, accept)},
    {"reg_mr", offsetof(struct ibc_tp_ops, reg_mr)},
    {"dereg_mr", offsetof(struct ibc_tp_ops, dereg_mr)},
    {"post_send", offsetof(struct ibc_tp_ops, post_send)},
    {"post_recv", offsetof(struct ibc_tp_ops, post_recv)},
    {"test", offsetof(struct ibc_tp_ops, test)},
    {"close_send", offsetof(struct ibc_tp_ops, close_send)},
    {"close_recv", offsetof(struct ibc_tp_ops, close_recv)},
    {"close_listen", offsetof(struct ibc_tp_ops, close_listen)},
    {"fini", offsetof(struct ibc_tp_ops, fini)},
    {"last_error", offsetof(struct ibc_tp_ops, last_error)},
};

const char *const *ibc_tp_builtin_names(void)
{
	return reg_names;
}

int ibc_tp_validate(const struct ibc_tp_ops *ops, const char *origin)
{
	size_t k;

	if (!origin)
		origin = "transport";
	if (!ops) {
		ibc_err_set("%s: no transport vtable", origin);
		return -EPROTO;
	}
	if (ops->abi_major != IBC_TP_ABI_MAJOR) {
		ibc_err_set(
		    "%s was built for transport ABI %u, this ibcoll speaks ABI %d: rebuild it "
		    "against this transport.h",
		    origin, ops->abi_major, IBC_TP_ABI_MAJOR);
		return -EPROTO;
	}
	if (ops->ops_size < IBC_TP_OPS_MIN_SIZE) {
		ibc_err_set("%s declares ops_size %u, less than the %zu bytes every ABI %d "
			    "transport has (init .. last_error): rebuild it against this "
			    "transport.h",
			    origin, ops->ops_size, (size_t)IBC_TP_OPS_MIN_SIZE, IBC_TP_ABI_MAJOR);
		return -EPROTO;
	}
	if (!ops->name || !ops->name[0]) {
		ibc_err_set("%s has no name (ops->name is %s)", origin,
			    ops->name ? "empty" : "NULL");
		return -EPROTO;
	}
	for (k = 0; k < IBC_ARRAY_SIZE(reg_required); k++) {
		void (*fn)(void);

		/* Every required entry lies below IBC_TP_OPS_MIN_SIZE <= ops_size. */
		memcpy(&fn, (const char *)ops + reg_required[k].off, sizeof(fn));
		if (!fn) {
			ibc_err_set("%s (transport '%s'): required entry '%s' is NULL", origin,
				    ops->name, reg_required[k].name);
			return -EPROTO;
		}
	}
	return 0;
}

void ibc_tp_config_init(struct ibc_tp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
}

int ibc_tp_get_props(const struct ibc_tp_ops *ops, struct ibc_tp_ctx *ctx, int dev,
		     struct ibc_tp_props *props)
{
	int rc;

	memset(props, 0, sizeof(*props));
	props->size = sizeof(*props);
	rc = ops->get_props(ctx, dev, props);
	if (rc)
		return rc;
	if (props->size < IBC_TP_PROPS_BASE_SIZE || props->size > sizeof(*props)) {
		ibc_err_set("transport '%s': get_props of device %d says it filled %u bytes of "
			    "props; expected %zu to %zu (the transport must set props->size, see "
			    "transport.h)",
			    ops->name, dev, props->size, (size_t)IBC_TP_PROPS_BASE_SIZE,
			    sizeof(*props));
		return -EPROTO;
	}
	/* what lies past the transport's answer is unknown: zero, whatever was written there */
	memset((char *)props + props->size, 0, sizeof(*props) - props->size);
	return 0;
}

/* "unknown transport 'x': valid are shm, tcp, or a plugin path (...)" + why the plugin named
 * by the environment did not answer (env_name: its name, NULL when none is set). */
static void reg_unknown(const char *name, const char *env_name)
{
	char list[256];
	size_t n = 0, k;

	list[0] = '\0';
	for (k = 0; reg_names[k]; k++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s, ", reg_names[k]);
	if (env_name)
		ibc_err_set("unknown transport '%s': valid are %sor a plugin path "
			    "(libibcoll-net-NAME.so); the plugin in %s=%s provides transport '%s', "
			    "not the one asked for",
			    name, list, REG_ENV, getenv(REG_ENV), env_name);
	else
		ibc_err_set("unknown transport '%s': valid are %sor a plugin path "
			    "(libibcoll-net-NAME.so)",
			    name, list);
}

static bool reg_is_path(const char *s)
{
	size_t n = strlen(s);

	return strchr(s, '/') || (n > 3 && strcmp(s + n - 3, ".so") == 0);
}

/* dlopen + dlsym + validate, under the table lock. */
static int reg_open(const char *path, const struct ibc_tp_ops **ops)
{
	char origin[4200];
	const struct ibc_tp_ops *o;
	struct stat st;
	const char *e;
	void *dl;
	int rc, k;

	for (k = 0; k < reg_plugins.n; k++) {
		if (strcmp(reg_plugins.p[k].path, path) == 0) {
			*ops = reg_plugins.p[k].ops;
			return 0;
		}
	}
	snprintf(origin, sizeof(origin), "plugin %s", path);
	dlerror();
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		e = dlerror();
		/* Missing file: -ENOENT; there but not loadable (not ELF, missing deps): -ENOEXEC.
		 */
		if (strchr(path, '/'))
			rc = stat(path, &st) != 0 ? -ENOENT : -ENOEXEC;
		else
			rc = e && strstr(e, "No such file") ? -ENOENT : -ENOEXEC;
		ibc_err_set("cannot load transport %s: %s", origin, e ? e : "dlopen failed");
		return rc;
	}
	dlerror();
	o = (const struct ibc_tp_ops *)dlsym(dl, IBC_TP_PLUGIN_SYMBOL);
	if (!o) {
		e = dlerror();
		ibc_err_set("%s is not an ibcoll transport: it does not export '%s' (%s)", origin,
			    IBC_TP_PLUGIN_SYMBOL, e ? e : "symbol is NULL");
		rc = -ENOEXEC;
		goto close_dl;
	}
	rc = ibc_tp_validate(o, origin);
	if (rc)
		goto close_dl;
	if (reg_plugins.n < REG_MAX_PLUGINS && strlen(path) < sizeof(reg_plugins.p[0].path)) {
		struct reg_plugin *p = &reg_plugins.p[reg_plugins.n++];

		snprintf(p->path, sizeof(p->path), "%s", path);
		p->dl = dl;
		p->ops = o;
	}
	/* Past the table's size the handle is simply kept open: dlopen counts references. */
	IBC_DBG("transport plugin %s loaded: '%s' (ABI %u, ops_size %u)", path, o->name,
		o->abi_major, o->ops_size);
	*ops = o;
	return 0;

close_dl:
	dlclose(dl);
	return rc;
}

static int reg_load(const char *path, const struct ibc_tp_ops **ops)
{
	int rc;

	pthread_mutex_lock(&reg_plugins.lock);
	rc = reg_open(path, ops);
	pthread_mutex_unlock(&reg_plugins.lock);
	return rc;
}

int ibc_tp_lookup(const char *name_or_path, const struct ibc_tp_ops **ops)
{
	const char *env = getenv(REG_ENV);
	const struct ibc_tp_ops *o;
	size_t k;
	int rc;

	*ops = NULL;
	if (name_or_path && name_or_path[0] && reg_is_path(name_or_path))
		return reg_load(name_or_path, ops);
	if (name_or_path && name_or_path[0]) {
		for (k = 0; k < IBC_ARRAY_SIZE(reg_builtins); k++) {
			if (strcmp(reg_builtins[k]->name, name_or_path) == 0) {
				*ops = reg_builtins[k];
				return 0;
			}
		}
	}
	if (!env || !env[0]) {
		reg_unknown(name_or_path ? name_or_path : "", NULL);
		return -ENOENT;
	}
	rc = reg_load(env, &o);
	if (rc) {
		ibc_err_prefix("%s=%s: ", REG_ENV, env);
		return rc;
	}
	if (name_or_path && name_or_path[0] && strcmp(o->name, name_or_path) != 0) {
		reg_unknown(name_or_path, o->name);
		return -ENOENT;
	}
	*ops = o;
	return 0;
}
