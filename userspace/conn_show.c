// SPDX-License-Identifier: MIT
/*
 * conn_show.c - `show connections`: a snapshot of a worker's live connections, taken from
 * another thread (control.c) while the worker runs them.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "conn-t.h"
#include "conn.h"
#include "worker.h"

static void addr_port(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, (unsigned)ntohs(s6->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, (unsigned)ntohs(s4->sin_port));
	} else {
		snprintf(out, len, "-");
	}
}

/* a word of the live connection, read while its worker may write it */
#define PEEK(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static void conn_describe(struct conn *c, struct conn_info *ci)
{
	struct spliced_sock *cst = PEEK(c->client.bpf.st), *ust = PEEK(c->upstream.bpf.st);
	struct server *srv = PEEK(c->srv);
	struct pool *pool = PEEK(c->pool);
	uint8_t paths = PEEK(c->paths);
	int st = PEEK(c->st);

	memset(ci, 0, sizeof(*ci));
	ci->worker = c->w->id;
	/* the listener, pool and server belong to c->cf, which c holds until it is released */
	snprintf(ci->listener, sizeof(ci->listener), "%s", c->l->name);
	if (strchr(c->peer, ':'))
		snprintf(ci->client, sizeof(ci->client), "[%s]:%u", c->peer,
			 (unsigned)c->peer_port);
	else
		snprintf(ci->client, sizeof(ci->client), "%s:%u", c->peer, (unsigned)c->peer_port);
	if (pool)
		snprintf(ci->pool, sizeof(ci->pool), "%s", pool->name);
	if (srv && PEEK(c->ufd) >= 0) {
		snprintf(ci->server, sizeof(ci->server), "%s", srv->name);
		addr_port(&srv->addr, ci->upstream, sizeof(ci->upstream));
	}
	ci->state = conn_state_name(st);
	if (PEEK(c->client.ssl) || PEEK(c->upstream.ssl))
		ci->path = "tls";
	else if (paths & CONN_PATH_KERNEL)
		ci->path = "kernel";
	else if (paths & CONN_PATH_SPLICE)
		ci->path = "splice";
	else
		ci->path = "userspace";
	ci->start_ns = c->start_ns;
	ci->cookie = PEEK(c->client.bpf.cookie);
	ci->requests = PEEK(c->requests);
	ci->user_up = PEEK(c->user_done_in) + PEEK(c->bytes_in);
	ci->user_down = PEEK(c->user_done_out) + PEEK(c->bytes_out);
	/* the kernel's share comes from the sockets' window state in the pinned spliced_socks
	 * map (mmap-ed): what the client's verdict redirected, and what upstream verdicts
	 * redirected into the client. A slot released meanwhile reads as zeros. */
	if (cst) {
		ci->kern_up = __atomic_load_n(&cst->kern_fwd, __ATOMIC_RELAXED);
		ci->kern_down = PEEK(c->client.kern_in_closed);
	}
	if (ust && PEEK(c->upstream.paired)) {
		uint64_t f = __atomic_load_n(&ust->kern_fwd, __ATOMIC_RELAXED);
		uint64_t base = PEEK(c->upstream.kern_base);

		ci->kern_down += f > base ? f - base : 0;
	}
}

unsigned conn_snapshot(struct worker *w, struct conn_info *out, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&w->conns_lock);
	for (struct conn *c = w->conns; c; c = c->next, n++)
		if (n < max)
			conn_describe(c, &out[n]);
	pthread_mutex_unlock(&w->conns_lock);
	return n;
}
