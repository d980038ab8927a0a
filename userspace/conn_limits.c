// SPDX-License-Identifier: MIT
/*
 * conn_limits.c - request limits (see conn_limits.h). nginx has the same knobs
 * (large_client_header_buffers, client_max_body_size, underscores_in_headers); the default for
 * underscores here is to drop them: a backend stack that maps '_' to '-' would turn
 * Content_Length into a framing header the proxy never checked.
 */
#include <string.h>

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
