/* SPDX-License-Identifier: MIT */
/*
 * ibc_auth.c - the job key and the challenge-response (ibc_auth.h), HMAC-SHA256 from
 * libsodium.
 */
#include "ibc_auth.h"
#include "ibc_common.h"
#include "ibc_id.h"
#include "ibc_sock.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_MAGIC   "IBAU"
#define AUTH_VERSION 1u
#define AUTH_MSG1    (8 + IBC_AUTH_NONCE)
#define AUTH_MSG2    (8 + IBC_AUTH_NONCE + IBC_AUTH_MAC)
#define AUTH_MSG3    (8 + IBC_AUTH_MAC)
#define AUTH_KEY_MIN 16

enum { AUTH_DONE = 3 };

/* ---------------------------------------------------------------- keys */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ibc_auth_key_parse(const char *hex, struct ibc_auth_key *key)
{
	size_t n = 0;

	memset(key, 0, sizeof(*key));
	while (isspace((unsigned char)*hex))
		hex++;
	while (hexval(hex[0]) >= 0 && hexval(hex[1]) >= 0) {
		if (n == IBC_AUTH_KEY_MAX)
			return -EINVAL;
		key->bytes[n++] = (unsigned char)(hexval(hex[0]) << 4 | hexval(hex[1]));
		hex += 2;
	}
	while (isspace((unsigned char)*hex))
		hex++;
	if (*hex || n < AUTH_KEY_MIN) {
		memset(key, 0, sizeof(*key));
		return -EINVAL;
	}
	key->len = n;
	return 0;
}

/* The key file: a regular file only its owner may read, holding the key in hex. */
static int key_from_file(const char *path, struct ibc_auth_key *key)
{
	char text[2 * IBC_AUTH_KEY_MAX + 64];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;

	if (fd < 0) {
		rc = -errno;
		ibc_err_set("IBCOLL_JOB_KEY_FILE=%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ibc_err_set("IBCOLL_JOB_KEY_FILE=%s is not a regular file", path);
		rc = -EINVAL;
	} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		ibc_err_set("IBCOLL_JOB_KEY_FILE=%s may be read or written by group or others "
			    "(mode %03o): run chmod 600 %s",
			    path, (unsigned)(st.st_mode & 0777), path);
		rc = -EACCES;
	}
	n = rc ? 0 : read(fd, text, sizeof(text) - 1);
	close(fd);
	if (rc)
		return rc;
	text[n > 0 ? n : 0] = '\0';
	if (n <= 0 || ibc_auth_key_parse(text, key)) {
		ibc_err_set("IBCOLL_JOB_KEY_FILE=%s does not hold a key: %d to %d bytes as hex "
			    "digits (make one with: openssl rand -hex 32 > FILE; chmod 600 FILE)",
			    path, AUTH_KEY_MIN, IBC_AUTH_KEY_MAX);
		return -EINVAL;
	}
	return 0;
}

int ibc_auth_key_from_env(struct ibc_auth_key *key)
{
	const char *hex = getenv("IBCOLL_JOB_KEY"), *path = getenv("IBCOLL_JOB_KEY_FILE");

	memset(key, 0, sizeof(*key));
	if (hex && *hex && path && *path) {
		ibc_err_set("IBCOLL_JOB_KEY and IBCOLL_JOB_KEY_FILE are both set: set one");
		return -EINVAL;
	}
	if (path && *path)
		return key_from_file(path, key);
	if (!hex || !*hex)
		return 0;
	if (ibc_auth_key_parse(hex, key)) {
		ibc_err_set("IBCOLL_JOB_KEY is not a key: %d to %d bytes as hex digits (make one "
			    "with: openssl rand -hex 32)",
			    AUTH_KEY_MIN, IBC_AUTH_KEY_MAX);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- the exchange */

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void auth_mac(const struct ibc_auth *a, const char *role, unsigned char *mac)
{
	static const unsigned char none[1];
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, a->klen ? a->key : none, a->klen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)a->context,
				      strlen(a->context) + 1);
	crypto_auth_hmacsha256_update(&st, a->nonce_s, IBC_AUTH_NONCE);
	crypto_auth_hmacsha256_update(&st, a->nonce_c, IBC_AUTH_NONCE);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)role, strlen(role) + 1);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

static void auth_expect(struct ibc_auth *a, size_t len)
{
	a->off = 0;
	a->len = len;
}

static void auth_put_head(struct ibc_auth *a, uint32_t word, size_t len)
{
	memcpy(a->buf, AUTH_MAGIC, 4);
	put_le32(a->buf + 4, word);
	auth_expect(a, len);
}

void ibc_auth_start(struct ibc_auth *a, bool server, const unsigned char *key, size_t klen,
		    const char *context)
{
	memset(a, 0, sizeof(*a));
	a->key = key;
	a->klen = key ? klen : 0;
	a->context = context;
	a->server = server;
	if (sodium_init() < 0) /* cannot fail once the kernel has entropy; randombytes then works */
		IBC_DBG("auth: sodium_init failed");
	if (server) {
		randombytes_buf(a->nonce_s, IBC_AUTH_NONCE);
		auth_put_head(a, AUTH_VERSION, AUTH_MSG1);
		memcpy(a->buf + 8, a->nonce_s, IBC_AUTH_NONCE);
	} else {
		randombytes_buf(a->nonce_c, IBC_AUTH_NONCE);
		auth_expect(a, AUTH_MSG1);
	}
}

short ibc_auth_events(const struct ibc_auth *a)
{
	return (short)((a->step == 1) == a->server ? POLLIN : POLLOUT);
}

/* Messages 1 and 2 begin with the magic and version. */
static int auth_check_head(const struct ibc_auth *a)
{
	if (memcmp(a->buf, AUTH_MAGIC, 4) != 0)
		return -EPROTO;
	return get_le32(a->buf + 4) == AUTH_VERSION ? 0 : -EPROTO;
}

/* A whole message arrived (or went out): the next step. 0, or an error. */
static int auth_server_next(struct ibc_auth *a)
{
	unsigned char want[IBC_AUTH_MAC];
	int rc;

	if (a->step == 0) {
		auth_expect(a, AUTH_MSG2);
		return 0;
	}
	if (a->step == 2)
		return a->refused ? -EACCES : 0;
	rc = auth_check_head(a);
	if (rc)
		return rc;
	memcpy(a->nonce_c, a->buf + 8, IBC_AUTH_NONCE);
	auth_mac(a, "client", want);
	a->refused = crypto_verify_32(want, a->buf + 8 + IBC_AUTH_NONCE) != 0;
	auth_put_head(a, a->refused ? 1 : 0, AUTH_MSG3);
	if (a->refused)
		memset(a->buf + 8, 0, IBC_AUTH_MAC);
	else
		auth_mac(a, "server", a->buf + 8);
	return 0;
}

static int auth_client_next(struct ibc_auth *a)
{
	unsigned char want[IBC_AUTH_MAC];
	int rc;

	if (a->step == 1) {
		auth_expect(a, AUTH_MSG3);
		return 0;
	}
	if (a->step == 0) {
		rc = auth_check_head(a);
		if (rc)
			return rc;
		memcpy(a->nonce_s, a->buf + 8, IBC_AUTH_NONCE);
		auth_put_head(a, AUTH_VERSION, AUTH_MSG2);
		memcpy(a->buf + 8, a->nonce_c, IBC_AUTH_NONCE);
		auth_mac(a, "client", a->buf + 8 + IBC_AUTH_NONCE);
		return 0;
	}
	if (memcmp(a->buf, AUTH_MAGIC, 4) != 0)
		return -EPROTO;
	if (get_le32(a->buf + 4) != 0) {
		a->refused = true;
		return -EACCES;
	}
	auth_mac(a, "server", want);
	return crypto_verify_32(want, a->buf + 8) ? -EACCES : 0;
}

int ibc_auth_step(struct ibc_auth *a, int fd)
{
	int rc;

	while (a->step < AUTH_DONE) {
		if (ibc_auth_events(a) == POLLIN)
			rc = ibc_sock_recv_nb(fd, a->buf, a->len, &a->off);
		else
			rc = ibc_sock_send_nb(fd, a->buf, a->len, &a->off);
		if (rc)
			return rc;
		rc = a->server ? auth_server_next(a) : auth_client_next(a);
		if (rc) {
			a->step = AUTH_DONE;
			return rc;
		}
		a->step++;
	}
	return 0;
}

int ibc_auth_run(struct ibc_auth *a, int fd, uint64_t deadline)
{
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = 0};
		int rc = ibc_auth_step(a, fd), ms;

		if (rc != -EAGAIN)
			return rc;
		ms = ibc_sock_remaining_ms(deadline);
		if (!ms)
			return -ETIMEDOUT;
		pf.events = ibc_auth_events(a);
		if (poll(&pf, 1, ms) < 0 && errno != EINTR)
			return -errno;
	}
}

const char *ibc_auth_strerror(const struct ibc_auth *a, int rc)
{
	switch (rc) {
	case -EACCES:
		if (a->server)
			return "it did not prove it holds the job key (another job on this port, "
			       "or a rank with a different IBCOLL_JOB_KEY / IBCOLL_JOB_KEY_FILE)";
		if (a->refused)
			return "refused: it does not hold our job key (the port is in use by "
			       "another job, or the ranks were given different IBCOLL_JOB_KEY / "
			       "IBCOLL_JOB_KEY_FILE)";
		return "its answer does not prove it holds the job key (another job or program "
		       "on this port?)";
	case -EPROTO:
		return "it does not speak ibcoll's handshake (another program, or another ibcoll "
		       "version)";
	case -ETIMEDOUT:
		return "no handshake within the deadline";
	case -ECONNRESET:
		return "it closed the connection during the handshake";
	default:
		return strerror(-rc);
	}
}
