/* SPDX-License-Identifier: MIT */
/*
 * boot_rdv.c - the rendezvous (bootstrap.h): every other rank sends rank 0 its hello, rank 0
 * checks sizes and duplicates and sends the table back (also to a rank it refused, so that it
 * can say why). Strings from the wire are NUL-terminated inside their fields.
 */
#include "boot_int.h"
#include "ibc_sock.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ibc__boot_fill_self(struct ibc_boot *b, struct boot_peer *p)
{
	memset(p, 0, sizeof(*p));
	p->rank = b->rank;
	p->nranks = b->nranks;
	p->pid = getpid();
	snprintf(p->host, sizeof(p->host), "%s", ibc_hostname());
	snprintf(p->addr, sizeof(p->addr), "%s", b->local_addr);
}

/* Rank 0's bookkeeping while the ranks join. */
struct boot_root {
	struct boot_table_hdr th; /* the outcome, sent to every rank that said hello */
	char *table;		  /* owned: th + the peers, as sent */
	size_t tlen;
	bool *seen;  /* owned, nranks: joined */
	bool *heard; /* owned, nranks: sent a hello, even a bad one */
	int got;     /* ranks joined, rank 0 included */
};

/* One hello: the rank joins, or th.status says why the job cannot start. */
static void root_hello(struct ibc_boot *b, struct boot_root *r, const struct boot_peer *p)
{
	if (p->rank > 0 && p->rank < b->nranks)
		r->heard[p->rank] = true;
	if (p->nranks != b->nranks) {
		r->th.status = -EINVAL;
		snprintf(r->th.msg, sizeof(r->th.msg),
			 "inconsistent job size: rank 0 (host %s) was told %d ranks but "
			 "rank %d (host %s) was told %d: launch every rank with the same size",
			 ibc_hostname(), b->nranks, p->rank, p->host, p->nranks);
	} else if (p->rank <= 0 || p->rank >= b->nranks || r->seen[p->rank]) {
		r->th.status = -EINVAL;
		snprintf(r->th.msg, sizeof(r->th.msg),
			 "rank %d (host %s) joined twice or is out of range (size %d): two "
			 "jobs share IBCOLL_ROOT, or the launcher's rank variables are wrong",
			 p->rank, p->host, b->nranks);
	} else {
		r->seen[p->rank] = true;
		b->peers[p->rank] = *p;
		r->got++;
	}
}

/* Take hellos until every rank joined, one was refused, or the deadline passed (0 in all
 * three cases); -ECANCELED or a receive error end the rendezvous at once. */
static int root_collect(struct ibc_boot *b, struct boot_root *r, uint64_t deadline)
{
	struct boot_peer p;
	int rc;

	while (r->got < b->nranks && !r->th.status) {
		struct boot_msg *m = ibc__boot_take(b, -1, BOOT_TAG_HELLO);

		if (!m) {
			if (ibc__boot_aborted(b)) {
				ibc_err_set("bootstrap: aborted (another rank died)");
				return -ECANCELED;
			}
			if (!ibc_sock_remaining_ms(deadline))
				return 0;
			rc = ibc__boot_pump(b,
					    IBC_MIN(ibc_sock_remaining_ms(deadline), BOOT_SLICE_MS),
					    deadline, NULL);
			if (rc)
				return rc;
			continue;
		}
		if (!ibc__boot_decode_hello(m->data, m->len, &p))
			root_hello(b, r, &p);
		free(m);
	}
	return 0;
}

/* The deadline passed: name the ranks that never joined, here and in th for the others. */
static int root_timeout(struct ibc_boot *b, struct boot_root *r)
{
	char list[256] = "";
	size_t n = 0;
	int i, missing = 0;

	for (i = 0; i < b->nranks; i++) {
		if (r->seen[i])
			continue;
		if (missing++ < 16)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%d",
					      missing > 1 ? "," : "", i);
	}
	ibc_err_set("bootstrap: timed out after %.1f s at the rendezvous on %s:%d: %d of %d "
		    "ranks joined; missing rank(s) %s%s (did they start? is IBCOLL_ROOT "
		    "reachable from their hosts?)",
		    b->timeout_ms / 1e3, b->root_host, b->root_port, r->got, b->nranks, list,
		    missing > 16 ? ",..." : "");
	r->th.status = -ETIMEDOUT;
	snprintf(r->th.msg, sizeof(r->th.msg), "%s", ibc_err_get());
	return -ETIMEDOUT;
}

/* Everyone who said hello learns the outcome, also the rank whose hello was refused. */
static void root_send_table(struct ibc_boot *b, struct boot_root *r, const char *job_id)
{
	int i;

	r->th.nranks = b->nranks;
	snprintf(r->th.job_id, sizeof(r->th.job_id), "%s", job_id);
	memcpy(r->table, &r->th, sizeof(r->th));
	memcpy(r->table + sizeof(r->th), b->peers, (size_t)b->nranks * sizeof(struct boot_peer));
	for (i = 1; i < b->nranks; i++)
		if (r->seen[i] || r->heard[i])
			ibc_boot_send(b, i, BOOT_TAG_TABLE, r->table, r->tlen);
}

int ibc__boot_root_rendezvous(struct ibc_boot *b, const char *job_id)
{
	struct boot_root r = {.got = 1};
	uint64_t deadline = ibc_sock_deadline(b->timeout_ms);
	int rc = -ENOMEM;

	r.tlen = sizeof(r.th) + (size_t)b->nranks * sizeof(struct boot_peer);
	r.seen = calloc((size_t)b->nranks, sizeof(bool));
	r.heard = calloc((size_t)b->nranks, sizeof(bool));
	if (!r.seen || !r.heard)
		goto out;
	b->peers = calloc((size_t)b->nranks, sizeof(*b->peers));
	r.table = malloc(r.tlen);
	if (!b->peers || !r.table)
		goto out;
	r.seen[0] = true;
	ibc__boot_fill_self(b, &b->peers[0]);
	b->peers[0].port = (uint16_t)b->root_port;
	rc = root_collect(b, &r, deadline);
	if (rc)
		goto out;
	if (r.got < b->nranks && !r.th.status)
		rc = root_timeout(b, &r);
	root_send_table(b, &r, job_id);
	if (r.th.status) {
		if (!rc)
			ibc_err_set("bootstrap: %s", r.th.msg);
		rc = r.th.status;
	}
	snprintf(b->job_id, sizeof(b->job_id), "%s", job_id);
out:
	b->joined = true;
	free(r.table);
	free(r.seen);
	free(r.heard);
	return rc;
}

int ibc__boot_member_rendezvous(struct ibc_boot *b)
{
	struct boot_peer self;
	struct boot_table_hdr th;
	struct boot_msg *m = NULL;
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc;

	ibc__boot_fill_self(b, &self);
	rc = ibc_sock_local(b->listen_fd, &ss, &sl);
	if (rc)
		return rc;
	ibc_sock_fmt_ip((struct sockaddr *)&ss, self.addr, sizeof(self.addr));
	self.port = (uint16_t)ibc_sock_port((struct sockaddr *)&ss);
	rc = ibc_boot_send(b, 0, BOOT_TAG_HELLO, &self, sizeof(self));
	if (rc) {
		if (rc == -ETIMEDOUT || rc == -ECONNREFUSED)
			ibc_err_set("bootstrap: rank %d could not reach the rendezvous at %s:%d "
				    "within %.1f s (is rank 0 running? is IBCOLL_ROOT right?)",
				    b->rank, b->root_host, b->root_port, b->timeout_ms / 1e3);
		return rc;
	}
	rc = ibc__boot_recv_msg(b, 0, BOOT_TAG_TABLE, &m);
	if (rc)
		return rc;
	b->peers = malloc((size_t)b->nranks * sizeof(*b->peers));
	if (!b->peers) {
		free(m);
		return -ENOMEM;
	}
	rc = ibc__boot_decode_table(m->data, m->len, b->nranks, &th, b->peers);
	if (rc == -EPROTO)
		ibc_err_set("bootstrap: rank 0's table is malformed (another program on the port?)");
	else if (rc == -EINVAL)
		ibc_err_set("bootstrap: inconsistent job size: this rank (%d) was told %d ranks, "
			    "rank 0 %d",
			    b->rank, b->nranks, th.nranks);
	else if (rc)
		ibc_err_set("bootstrap: %s", th.msg);
	if (rc) {
		free(m);
		return rc;
	}
	b->joined = true;
	snprintf(b->job_id, sizeof(b->job_id), "%s", th.job_id);
	free(m);
	return 0;
}
