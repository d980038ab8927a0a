// SPDX-License-Identifier: MIT
/*
 * sticky.c - session affinity (see sticky.h). Two mechanisms, as in nginx and HAProxy: a
 * consistent hash of something the request carries (`balance hash cookie|header|query NAME`,
 * `hash uri`: the same key goes to the same server while the set of servers stays), and a
 * cookie spliced sets itself (`sticky cookie NAME`, HAProxy's `cookie NAME insert`), which
 * holds across changes of the pool and moves only when its server is not usable.
 */
#include <stdio.h>
#include <string.h>

#include "conn-t.h"
#include "lb.h"
#include "rules.h"
#include "sticky.h"

/* the hash of the span s of b, or of the client address when s is empty or absent */
static uint64_t key_or_peer(const struct conn *c, const char *b, const struct http_span *s)
{
	if (s && s->len)
		return lb_hash(b + s->off, s->len);
	return lb_hash(c->peer, strlen(c->peer));
}

static uint64_t hash_key(const struct conn *c, const struct pool *p, const struct http_msg *m,
			 const char *b)
{
	struct http_span v = {0, 0};
	int h;

	switch (p->hash_key) {
	case HASH_HEADER:
		h = http_find_header(b, m, p->hash_name);
		if (h >= 0)
			v = m->hdrs[h].value;
		break;
	case HASH_COOKIE:
		(void)http_find_cookie(b, m, p->hash_name, &v);
		break;
	case HASH_URI:
		v = m->target;
		break;
	case HASH_QUERY: {
		const char *t = b + m->target.off, *q = memchr(t, '?', m->target.len), *val;
		size_t vlen;

		if (q && rule_query_find(q + 1, m->target.len - (size_t)(q + 1 - t), p->hash_name,
					 strlen(p->hash_name), &val, &vlen)) {
			v.off = (uint32_t)(val - b);
			v.len = (uint32_t)vlen;
		}
		break;
	}
	default:
		break;
	}
	return key_or_peer(c, b, &v);
}

void sticky_request(struct conn *c, const struct pool *p, const struct http_msg *m, const char *b)
{
	struct http_span v;

	c->hash_key = hash_key(c, p, m, b);
	c->sticky_srv = NULL;
	if (!p->sticky_cookie[0] || !http_find_cookie(b, m, p->sticky_cookie, &v))
		return;
	for (unsigned i = 0; i < p->nservers; i++) {
		struct server *s = &p->servers[i];

		if (v.len == strlen(s->cookie) && !memcmp(b + v.off, s->cookie, v.len)) {
			c->sticky_srv = s;
			return;
		}
	}
}

const char *sticky_response(const struct conn *c, char *buf, size_t len)
{
	const struct pool *p = c->pool;
	int n;

	if (!p || !p->sticky_cookie[0] || !c->srv || c->srv == c->sticky_srv)
		return NULL;
	if (p->sticky_ttl_ms)
		n = snprintf(buf, len, "%s=%s; Path=/; HttpOnly; Max-Age=%u", p->sticky_cookie,
			     c->srv->cookie, p->sticky_ttl_ms / 1000);
	else
		n = snprintf(buf, len, "%s=%s; Path=/; HttpOnly", p->sticky_cookie, c->srv->cookie);
	return n > 0 && (size_t)n < len ? buf : NULL;
}
