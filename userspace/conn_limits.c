// SPDX-License-Identifier: MIT
/*
 * conn_limits.c - request limits (see conn_limits.h). nginx has the same knobs
 * (large_client_header_buffers, client_max_body_size, underscores_in_headers); the default for
 * underscores here is to drop them: a backend stack that maps '_' to '-' would turn
 * Content_Length into a framing header the proxy never checked.
 */
#include <string.h>
#include <sys/socket.h>

#include "accesslog.h"
#include "clock.h"
#include "conn_limits.h"
#include "log.h"
#include "stats.h"

static int has_underscore(const char *b, const struct http_hdr *h)
{
	return memchr(b + h->name.off, '_', h->name.len) != NULL;
}

int conn_limits_head(struct conn *c, const struct http_msg *m, const char *b)
{
	const struct listener *l = c->l;

	if (l->max_uri_length && m->target.len > l->max_uri_length) {
		c->refused = "uri_too_long";
		return 414;
	}
	if (l->max_headers && m->nhdrs > l->max_headers) {
		c->refused = "too_many_headers";
		return 431;
	}
	if (l->underscore_headers == UNDERSCORE_REJECT) {
		for (unsigned i = 0; i < m->nhdrs; i++) {
			if (has_underscore(b, &m->hdrs[i])) {
				c->refused = "underscore_header";
				stats_error(STATS_ERR_UNDERSCORE);
				return 400;
			}
		}
	}
	return 0;
}

/* the max_body_size that applies: the route's, else the listener's (0: none) */
static uint64_t body_limit(const struct conn *c)
{
	if (c->route && c->route->act.max_body_set)
		return c->route->act.max_body;
	return c->l->act.max_body;
}

int conn_limits_body_length(struct conn *c, const struct http_msg *m)
{
	uint64_t lim = body_limit(c);

	if (lim && m->framing == HTTP_BODY_LENGTH && m->content_length > lim) {
		c->refused = "body_too_large";
		return 413;
	}
	return 0;
}

void conn_limits_body_flow(struct conn *c)
{
	if (c->req.body == B_CHUNKED)
		c->req.limit = body_limit(c);
}

int conn_limits_underscore(struct conn *c, const struct http_msg *m, const char *b,
			   struct conn_rules_ops *o, struct http_rewrite *rw)
{
	unsigned added = 0;

	if (c->l->underscore_headers != UNDERSCORE_DROP)
		return 0;
	if (!rw->ops)
		o->n = 0;
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct http_hdr *h = &m->hdrs[i];

		if (!has_underscore(b, h))
			continue;
		if (o->n >= CONN_RULES_MAX_OPS) {
			c->refused = "underscore_header";
			stats_error(STATS_ERR_UNDERSCORE);
			return 400;
		}
		o->ops[o->n++] = (struct http_hdr_op){
			.op = HTTP_HDR_DEL, .name = b + h->name.off, .name_len = h->name.len};
		added++;
	}
	if (added) {
		log_debug("%s: %u header%s with '_' in the name dropped", c->peer, added,
			  added == 1 ? "" : "s");
		stats_add(&g_stats.errors[STATS_ERR_UNDERSCORE_DROPPED], added);
		rw->ops = o->ops;
		rw->nops = o->n;
	}
	return 0;
}

/* ---- limit conn / limit rate (the shared table, limit_table.h) ---- */

/* the table key of limit lim for this request (m, b; NULL for a connection): 0 when the
 * request has no value for it (a header key without that header: not limited) */
static uint64_t key_of(struct conn *c, const struct rule_limit *lim, const struct http_msg *m,
		       const char *b)
{
	const uint8_t *a;
	int h;

	if (lim->key == LIMIT_KEY_SOURCE) {
		a = conn_rules_peer(c);
		return a ? limit_key(lim->scope, a, 16) : 0;
	}
	if (!m)
		return 0;
	h = http_find_header(b, m, lim->header);
	if (h < 0)
		return 0;
	return limit_key(lim->scope, b + m->hdrs[h].value.off, m->hdrs[h].value.len);
}

static void put_all(struct limit_ref *refs)
{
	for (unsigned i = 0; i < RULE_MAX_LIMITS; i++)
		limit_conn_put(&refs[i]);
}

int conn_limits_accept(struct conn *c)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 24\r\n"
				   "Connection: close\r\n\r\n503 Service Unavailable\n";
	const struct rule_actions *a = &c->l->act;
	unsigned k = 0;

	for (unsigned i = 0; i < a->nlimits; i++) {
		const struct rule_limit *lim = &a->limits[i];
		uint64_t key;

		if (lim->kind != LIMIT_CONN || k >= RULE_MAX_LIMITS)
			continue;
		key = key_of(c, lim, NULL, NULL);
		if (!key)
			continue;
		if (!limit_conn_take(key, lim->n, &c->lim_conn[k])) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);

			put_all(c->lim_conn);
			(void)!send(c->cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			stats_error(STATS_ERR_LIMIT_CONN);
			if (getpeername(c->cfd, (struct sockaddr *)&ss, &sl) == 0)
				accesslog_refused(c->l, &ss, "limit_conn");
			log_debug("%s: listener %s: over 'limit conn %u'", c->peer, c->l->name,
				  lim->n);
			return -1;
		}
		k++;
	}
	return 0;
}

void conn_limits_close(struct conn *c)
{
	put_all(c->lim_conn);
	put_all(c->lim_req);
}

/* the rate limits of one block: 1 when the request may go on */
static int rates_pass(struct conn *c, const struct rule_actions *a, const struct http_msg *m,
		      const char *b, uint64_t now_us)
{
	for (unsigned i = 0; a && i < a->nlimits; i++) {
		const struct rule_limit *lim = &a->limits[i];
		uint64_t key;
		uint32_t retry;

		if (lim->kind != LIMIT_RATE)
			continue;
		key = key_of(c, lim, m, b);
		if (key &&
		    !limit_rate_take(key, lim->n, lim->period_s, lim->burst, now_us, &retry)) {
			c->retry_after = retry;
			return 0;
		}
	}
	return 1;
}

int conn_limits_request(struct conn *c, const struct http_msg *m, const char *b)
{
	const struct rule_actions *r = c->route ? &c->route->act : NULL;
	uint64_t now_us = clock_us();
	unsigned k = 0;

	c->retry_after = 0;
	if (!rates_pass(c, &c->l->act, m, b, now_us) || !rates_pass(c, r, m, b, now_us)) {
		c->refused = "limit_rate";
		return 429;
	}
	for (unsigned i = 0; r && i < r->nlimits; i++) {
		const struct rule_limit *lim = &r->limits[i];
		uint64_t key;

		if (lim->kind != LIMIT_CONN || k >= RULE_MAX_LIMITS)
			continue;
		key = key_of(c, lim, m, b);
		if (!key)
			continue;
		if (!limit_conn_take(key, lim->n, &c->lim_req[k])) {
			put_all(c->lim_req);
			c->refused = "limit_conn";
			return 503;
		}
		k++;
	}
	return 0;
}

void conn_limits_request_done(struct conn *c)
{
	put_all(c->lim_req);
}
