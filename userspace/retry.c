// SPDX-License-Identifier: MIT
/*
 * retry.c - the retry policy of a request (see retry.h): which failures send it to another
 * server (`retry_on`), whether it can be sent again as it was, and the budget. nginx calls it
 * proxy_next_upstream, HAProxy retry-on; the rule both follow is kept here: a request whose
 * effects may have happened (a non-idempotent method that reached a server) is never replayed.
 */
#include <stdio.h>

#include "conn-t.h"
#include "conn.h"
#include "conn_upstream.h"
#include "health_state.h"
#include "log.h"
#include "retry.h"
#include "stats.h"

/* safe to send again: the method says a second copy does no harm (RFC 9110 9.2.2) */
static int idempotent(const struct conn *c)
{
	return c->method == HTTP_M_GET || c->method == HTTP_M_HEAD || c->method == HTTP_M_OPTIONS ||
	       c->method == HTTP_M_PUT || c->method == HTTP_M_DELETE || c->method == HTTP_M_TRACE;
}

/* can the request be sent again exactly as it went (cause: a RETRY_* bit)? */
static int resendable(const struct conn *c, unsigned cause)
{
	if (cause == RETRY_CONNECT)
		return 1; /* nothing went out */
	/* nothing of the body moved (req.moved == 0): the flow state still describes the whole
	 * body, and conn_start_exchange() queues the head again; nothing reached the client */
	if (c->resp_started || c->req.moved)
		return 0;
	if (cause == RETRY_RESET)
		return !buf_len(&c->resp.in) && conn_retryable(c);
	if (cause == RETRY_TIMEOUT && (buf_len(&c->resp.in) || !c->req.body_done))
		return 0; /* part of a response, or the client is still sending */
	return idempotent(c);
}

int retry_allowed(const struct conn *c, unsigned cause)
{
	const struct pool *p = c->pool;

	if (!p || !(p->retry_on & cause) || c->ntried > p->retries)
		return 0;
	if (p->retry_timeout_ms && c->w->now_ms >= c->t_start + p->retry_timeout_ms)
		return 0;
	return resendable(c, cause);
}

void retry_count(struct conn *c, unsigned cause)
{
	unsigned i = (unsigned)__builtin_ctz(cause);

	if (c->pool && i < STATS_RETRY_CAUSES)
		stats_add(&c->pool->st.retries[i], 1);
}

enum step_rc retry_or_fail(struct conn *c, unsigned cause, int status, const char *why)
{
	/* a reused connection (kept alive or parked) that the server closed as the request went
	 * out says nothing about the server: the same server again, on a new connection, and not
	 * counted as a try (a server closing idle connections must not cost a 502) */
	if (cause == RETRY_RESET && !c->upstream_fresh && c->srv && resendable(c, cause)) {
		struct server *s = c->srv;

		log_debug("%s: reused upstream connection to %s/%s %s, retrying on a new one",
			  c->peer, c->pool->name, s->name, why);
		conn_upstream_close(c);
		if (c->ntried > 0 && c->tried[c->ntried - 1] == s->id)
			c->ntried--;
		return conn_upstream_connect(c, s, 0);
	}
	if (retry_allowed(c, cause)) {
		struct server *next;

		log_debug("%s: upstream %s/%s %s, retrying", c->peer, c->pool->name,
			  c->srv ? c->srv->name : "-", why);
		if (c->upstream_fresh && c->srv && cause == RETRY_RESET)
			atomic_fetch_add(&c->srv->conn_fail, 1);
		conn_upstream_close(c);
		c->srv = NULL;
		next = conn_upstream_pick(c);
		if (next) {
			retry_count(c, cause);
			return conn_upstream_connect(c, next, 1);
		}
		/* nowhere else to go: the answer is about this failure, not a 503 */
		log_warnx("%s: upstream %s %s, no other server to retry on", c->peer, c->pool->name,
			  why);
		return conn_fail_request(c, status);
	}
	log_warnx("%s: upstream %s/%s %s", c->peer, c->pool->name, c->srv ? c->srv->name : "-",
		  why);
	return conn_fail_request(c, status);
}

int retry_response(struct conn *c, enum step_rc *rc)
{
	int st = c->rmsg->status;
	unsigned cause = st == 502 ? RETRY_502 : st == 503 ? RETRY_503 : st == 504 ? RETRY_504 : 0;
	struct server *s = c->srv, *next;
	char why[16];

	if (!cause || !s || !retry_allowed(c, cause))
		return 0;
	/* chosen before this response is dropped: with nowhere else to go it is the answer */
	next = conn_upstream_pick(c);
	if (!next)
		return 0;
	snprintf(why, sizeof(why), "status %d", st);
	health_passive_result(s, 0, why, c->w->now_ms);
	log_debug("%s: upstream %s/%s answered %d, retrying on %s", c->peer, c->pool->name, s->name,
		  st, next->name);
	retry_count(c, cause);
	c->resp_keepalive = 0; /* the rest of this response is never read: close */
	conn_upstream_close(c);
	c->srv = NULL;
	*rc = conn_upstream_connect(c, next, 1);
	return 1;
}
