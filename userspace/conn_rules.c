// SPDX-License-Identifier: MIT
/*
 * conn_rules.c - the request rule engine's actions on one connection (see conn_rules.h).
 *
 * Which action applies: header rules of the listener run first, then the route's; every other
 * action of a route replaces its listener's (rewrite and strip_prefix together, return,
 * upstream_host, request_id, hide_headers, an error_page per status). Values are expanded into
 * the caller's buffers; a value that would put CR, LF or NUL into a head drops that header
 * and is counted (header_dropped). Nothing here allocates per request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "conn_rules.h"
#include "log.h"
#include "stats.h"

/* what later steps of a request need (allocated once per connection, see conn_rules.h) */
struct conn_rules_state {
	char target[HTTP_MAX_TARGET + 2]; /* normalized target as received */
	size_t path_len;		  /* of its path part */
	char uri[HTTP_MAX_TARGET + 2];	  /* the path sent upstream */
	size_t uri_len;
	char capbuf[1024]; /* the captures' text, for response rules */
	struct rule_caps caps;
	char rid[132]; /* request ID */
	size_t rid_len;
	char port[8];
	char time[40];
	char *head; /* a copy of the request head, when response rules read request headers */
	size_t head_cap;
	struct rule_req rq; /* for response rules: over head (or without one) */
};

static const char *const default_hide[] = {"Server", "X-Powered-By"};

/* ---- which actions apply ---- */

static const struct rule_actions *lact(const struct conn *c)
{
	return &c->l->act;
}

static const struct rule_actions *ract(const struct conn *c)
{
	return c->route ? &c->route->act : NULL;
}

static int has_actions(const struct rule_actions *a)
{
	return a &&
	       (a->nreq_hdr || a->nresp_hdr || a->rewrite_re || a->strip_prefix || a->ret_code ||
		a->upstream_host_set || a->request_id > 0 || a->hide_set >= 0 || a->npages);
}

static const struct rule_actions *path_act(const struct conn *c)
{
	const struct rule_actions *r = ract(c);

	return r && (r->rewrite_re || r->strip_prefix) ? r : lact(c);
}

static int request_id_on(const struct conn *c, const char **header)
{
	const struct rule_actions *r = ract(c), *a = r && r->request_id >= 0 ? r : lact(c);

	*header = a->request_id_header[0] ? a->request_id_header : RULE_REQUEST_ID_HEADER;
	return a->request_id > 0;
}

static int uses_request_headers(const struct rule_actions *a)
{
	for (unsigned i = 0; a && i < a->nresp_hdr; i++)
		for (unsigned k = 0; k < a->resp_hdr[i].value.nsegs; k++)
			if (a->resp_hdr[i].value.segs[k].kind == SEG_HEADER)
				return 1;
	return 0;
}

/* ---- per-request state ---- */

/* a new request ID: 128 random bits as 32 hex digits, from a per-thread pool of random bytes
 * (one getrandom(2) per 256 IDs) */
static void new_request_id(char *out)
{
	static __thread unsigned char pool[4096];
	static __thread size_t left;
	static const char hex[] = "0123456789abcdef";

	if (left < 16) {
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool)) {
			/* no entropy to be had: still unique enough to trace a request */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			for (size_t i = 0; i < sizeof(pool); i++)
				pool[i] ^=
					(unsigned char)(ts.tv_nsec >> (i % 24)) ^ (unsigned char)i;
		}
		left = sizeof(pool);
	}
	for (int i = 0; i < 16; i++) {
		unsigned char b = pool[sizeof(pool) - left--];

		out[2 * i] = hex[b >> 4];
		out[2 * i + 1] = hex[b & 15];
	}
	out[32] = '\0';
}

static void keep_captures(struct conn_rules_state *s, const struct rule_caps *caps)
{
	size_t used = 0;

	s->caps.base = NULL;
	s->caps.n = 0;
	if (!caps->base)
		return;
	for (unsigned i = 0; i < caps->n; i++) {
		size_t a = caps->ov[2 * i], b = caps->ov[2 * i + 1];

		if (a == (size_t)-1 || b - a > sizeof(s->capbuf) - used) {
			s->caps.ov[2 * i] = s->caps.ov[2 * i + 1] = (size_t)-1;
			continue;
		}
		memcpy(s->capbuf + used, caps->base + a, b - a);
		s->caps.ov[2 * i] = used;
		s->caps.ov[2 * i + 1] = used + (b - a);
		used += b - a;
	}
	s->caps.base = s->capbuf;
	s->caps.n = caps->n;
}

int conn_rules_begin(struct conn *c, const struct route *r, const struct rule_req *rq,
		     const struct rule_caps *caps)
{
	struct conn_rules_state *s = c->rules;
	const char *hdr;
	size_t tl = rq->path_len + (rq->has_query ? 1 + rq->query_len : 0);

	c->route = r;
	if (!has_actions(ract(c)) && !has_actions(lact(c)))
		return 0;
	if (!s) {
		s = c->rules = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
	}
	/* the target, whole: rq's path and query are in one buffer (http_target_normalize) */
	if (tl > sizeof(s->target) - 1)
		tl = sizeof(s->target) - 1;
	memcpy(s->target, rq->path, tl);
	s->target[tl] = '\0';
	s->path_len = rq->path_len < tl ? rq->path_len : tl;
	memcpy(s->uri, s->target, s->path_len);
	s->uri_len = s->path_len;
	s->uri[s->uri_len] = '\0';
	keep_captures(s, caps);
	s->rid_len = 0;
	if (request_id_on(c, &hdr)) {
		int h = http_find_header(rq->buf, rq->m, hdr);
		const struct http_span *v = h >= 0 ? &rq->m->hdrs[h].value : NULL;

		if (v && rule_request_id_valid(rq->buf + v->off, v->len)) {
			memcpy(s->rid, rq->buf + v->off, v->len);
			s->rid_len = v->len;
			s->rid[s->rid_len] = '\0';
		} else {
			new_request_id(s->rid);
			s->rid_len = 32;
		}
	}
	/* response rules that read request headers need the head after it is consumed */
	s->rq = *rq;
	s->rq.path = s->target;
	s->rq.query = s->target + s->path_len + (tl > s->path_len ? 1 : 0);
	s->rq.query_len = tl > s->path_len ? tl - s->path_len - 1 : 0;
	s->rq.buf = "";
	if (uses_request_headers(lact(c)) || uses_request_headers(ract(c))) {
		size_t hl = rq->m->head_len;

		if (s->head_cap < hl) {
			char *n = realloc(s->head, hl);

			if (!n)
				return -ENOMEM;
			s->head = n;
			s->head_cap = hl;
		}
		memcpy(s->head, rq->buf, hl);
		s->rq.buf = s->head;
	}
	return 0;
}

int conn_rules_return(const struct conn *c)
{
	const struct rule_actions *r = ract(c);

	if (r && r->ret_code)
		return r->ret_code;
	return lact(c)->ret_code;
}

/* ---- values ---- */

static void set_var(struct rule_vars *v, enum rule_var k, const char *s, size_t len)
{
	v->v[k] = s;
	v->len[k] = len;
}

static void set_str(struct rule_vars *v, enum rule_var k, const char *s)
{
	set_var(v, k, s, s ? strlen(s) : 0);
}

/* the variables of c's current request (status: 0 before the response) */
static void fill_vars(struct conn *c, struct rule_vars *v, int status, char *st, size_t stcap)
{
	struct conn_rules_state *s = c->rules;

	uint32_t used = lact(c)->vars_used | (ract(c) ? ract(c)->vars_used : 0);

	memset(v, 0, sizeof(*v));
	set_str(v, VAR_REMOTE_ADDR, c->peer);
	if (used & (1u << VAR_REMOTE_PORT)) {
		snprintf(s->port, sizeof(s->port), "%u", c->peer_port);
		set_str(v, VAR_REMOTE_PORT, s->port);
	}
	set_str(v, VAR_HOST, c->host);
	set_str(v, VAR_SERVER_NAME, c->host);
	set_str(v, VAR_METHOD, c->method_s);
	set_var(v, VAR_URI, s->uri, s->uri_len);
	set_var(v, VAR_PATH, s->target, s->path_len);
	set_var(v, VAR_ARGS, s->rq.query, s->rq.query_len);
	set_str(v, VAR_REQUEST_URI, c->path);
	set_str(v, VAR_SCHEME, c->client.ssl ? "https" : "http");
	set_var(v, VAR_REQUEST_ID, s->rid, s->rid_len);
	set_str(v, VAR_POOL, c->pool ? c->pool->name : "");
	set_str(v, VAR_SERVER, c->srv ? c->srv->name : "");
	set_str(v, VAR_LISTENER, c->l->name);
	set_str(v, VAR_ROUTE, c->route ? c->route->name : "");
	if (status && (used & (1u << VAR_STATUS))) {
		snprintf(st, stcap, "%d", status);
		set_str(v, VAR_STATUS, st);
	}
	/* the clock only for templates that print it */
	if (used & (1u << VAR_TIME_ISO8601)) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(s->time, sizeof(s->time), "%Y-%m-%dT%H:%M:%SZ", &tm);
		set_str(v, VAR_TIME_ISO8601, s->time);
	}
}

/* add one operation; values expanded into o's arena. Dropped (and counted) when they hold
 * CR, LF or NUL, or do not fit. */
static void add_op(struct conn_rules_ops *o, const struct hdr_rule *h, const struct rule_vars *v,
		   const struct rule_req *rq, const struct rule_caps *caps)
{
	struct http_hdr_op *op;
	int n = 0;

	if (o->n == CONN_RULES_MAX_OPS) {
		stats_error(STATS_ERR_HEADER_DROPPED);
		return;
	}
	if (h->op != HDR_DEL) {
		n = tmpl_expand(&h->value, v, rq, caps, o->arena + o->used,
				sizeof(o->arena) - o->used);
		if (n < 0) {
			stats_error(STATS_ERR_HEADER_DROPPED);
			return;
		}
	}
	op = &o->ops[o->n++];
	op->op = h->op;
	op->name = h->name;
	op->name_len = h->name_len;
	op->value = o->arena + o->used;
	op->value_len = (size_t)n;
	o->used += (size_t)n;
}

static void add_static(struct conn_rules_ops *o, int kind, const char *name, const char *value,
		       size_t vlen)
{
	struct http_hdr_op *op;

	if (o->n == CONN_RULES_MAX_OPS)
		return;
	op = &o->ops[o->n++];
	op->op = (uint8_t)kind;
	op->name = name;
	op->name_len = strlen(name);
	op->value = value;
	op->value_len = vlen;
}

static void add_rules(struct conn_rules_ops *o, const struct hdr_rule *h, unsigned n,
		      const struct rule_vars *v, const struct rule_req *rq,
		      const struct rule_caps *caps)
{
	for (unsigned i = 0; i < n; i++)
		add_op(o, &h[i], v, rq, caps);
}

int conn_rules_request(struct conn *c, const struct rule_req *rq, struct http_rewrite *rw,
		       struct conn_rules_ops *o, char *path, size_t cap)
{
	struct conn_rules_state *s = c->rules;
	const struct rule_actions *l = lact(c), *r = ract(c), *pa, *ha;
	struct rule_vars v;
	const char *hdr;
	int n;

	o->n = 0;
	o->used = 0;
	if (!s)
		return 0;
	fill_vars(c, &v, 0, NULL, 0);
	pa = path_act(c);
	n = rule_rewrite_path(pa, &v, rq, rq->path, rq->path_len, rq->has_query ? rq->query : NULL,
			      rq->query_len, path, cap);
	if (n < 0) {
		log_debug("%s: rewritten path refused (%s)", c->peer, strerror(-n));
		return -EBADMSG;
	}
	if (n > 0) {
		const char *q = memchr(path, '?', (size_t)n);

		rw->path = path;
		s->uri_len = q ? (size_t)(q - path) : (size_t)n;
		if (s->uri_len > sizeof(s->uri) - 1)
			s->uri_len = sizeof(s->uri) - 1;
		memcpy(s->uri, path, s->uri_len);
		s->uri[s->uri_len] = '\0';
		set_var(&v, VAR_URI, s->uri, s->uri_len);
	}
	ha = r && r->upstream_host_set ? r : l;
	if (ha->upstream_host_set == 1) {
		n = tmpl_expand(&ha->upstream_host, &v, rq, &s->caps, o->host, sizeof(o->host) - 1);
		if (n > 0 && rule_host_valid(o->host, (size_t)n)) {
			o->host[n] = '\0';
			rw->host = o->host;
		} else {
			/* not a host: the one received goes on */
			stats_error(STATS_ERR_HEADER_DROPPED);
		}
	}
	add_rules(o, l->req_hdr, l->nreq_hdr, &v, rq, &s->caps);
	if (r)
		add_rules(o, r->req_hdr, r->nreq_hdr, &v, rq, &s->caps);
	if (request_id_on(c, &hdr) && s->rid_len)
		add_static(o, HDR_SET, hdr, s->rid, s->rid_len);
	rw->ops = o->ops;
	rw->nops = o->n;
	return 0;
}

/* the response rules (hidden headers first) into o, values against the kept request */
static void response_ops(struct conn *c, int status, struct conn_rules_ops *o)
{
	struct conn_rules_state *s = c->rules;
	const struct rule_actions *l = lact(c), *r = ract(c), *hide;
	struct rule_vars v;
	const char *hdr;
	char st[8];

	o->n = 0;
	o->used = 0;
	hide = r && r->hide_set >= 0 ? r : l->hide_set >= 0 ? l : NULL;
	if (hide) {
		for (unsigned i = 0; i < hide->nhide; i++)
			add_static(o, HDR_DEL, hide->hide[i], "", 0);
	} else {
		for (unsigned i = 0; i < sizeof(default_hide) / sizeof(default_hide[0]); i++)
			add_static(o, HDR_DEL, default_hide[i], "", 0);
	}
	if (!s)
		return;
	fill_vars(c, &v, status, st, sizeof(st));
	add_rules(o, l->resp_hdr, l->nresp_hdr, &v, &s->rq, &s->caps);
	if (r)
		add_rules(o, r->resp_hdr, r->nresp_hdr, &v, &s->rq, &s->caps);
	if (request_id_on(c, &hdr) && s->rid_len)
		add_static(o, HDR_SET, hdr, s->rid, s->rid_len);
}

void conn_rules_response(struct conn *c, int status, struct http_rewrite *rw,
			 struct conn_rules_ops *o)
{
	response_ops(c, status, o);
	rw->ops = o->ops;
	rw->nops = o->n;
}

/* the `methods` that apply: the route's, else its listener's (NULL: any method) */
static const struct rule_actions *methods_act(const struct conn *c)
{
	const struct rule_actions *r = ract(c);

	if (r && r->nmethods)
		return r;
	return lact(c)->nmethods ? lact(c) : NULL;
}

int conn_rules_refuse(struct conn *c, const struct rule_req *rq)
{
	const struct rule_actions *r = ract(c), *m = methods_act(c);

	if (r && r->acl.n && rq->src) {
		unsigned idx;

		if (rule_acl_decide(&r->acl, rq->src, &idx) != RULE_ACL_NONE) {
			struct rule_acl_entry *e = &((struct rule_actions *)r)->acl.e[idx];

			__atomic_fetch_add(&e->hits, 1, __ATOMIC_RELAXED);
			if (e->deny) {
				c->refused = "acl_deny";
				return 403;
			}
		}
	}
	if (m) {
		const char *ms = rq->buf + rq->m->method_s.off;
		size_t ml = rq->m->method_s.len;

		for (unsigned i = 0; i < m->nmethods; i++)
			if (strlen(m->methods[i]) == ml && !memcmp(m->methods[i], ms, ml))
				return 0;
		c->refused = "method";
		return 405;
	}
	return 0;
}

size_t conn_rules_generated(struct conn *c, int status, const char **body, size_t *len,
			    const char **type, char *hdrs, size_t cap)
{
	static __thread struct conn_rules_ops o;
	const struct rule_actions *acts[2] = {ract(c), lact(c)};
	const struct rule_actions *m = methods_act(c);
	size_t off = 0;

	for (int k = 0; k < 2; k++) {
		const struct rule_actions *a = acts[k];
		unsigned i;

		for (i = 0; a && i < a->npages; i++)
			if (a->pages[i].code == status)
				break;
		if (a && i < a->npages) {
			*body = a->pages[i].body;
			*len = a->pages[i].len;
			*type = a->pages[i].type;
			break;
		}
	}
	hdrs[0] = '\0';
	if (status == 405 && m) {
		/* RFC 9110 15.5.6: a 405 lists the methods the target supports */
		off = (size_t)snprintf(hdrs, cap, "Allow:");
		for (unsigned i = 0; i < m->nmethods && off < cap; i++)
			off += (size_t)snprintf(hdrs + off, cap - off, "%s %s", i ? "," : "",
						m->methods[i]);
		if (off + 2 < cap) {
			memcpy(hdrs + off, "\r\n", 3);
			off += 2;
		} else {
			off = 0;
			hdrs[0] = '\0';
		}
	}
	if (status == 429 && c->retry_after && off < cap) {
		int n = snprintf(hdrs + off, cap - off, "Retry-After: %u\r\n", c->retry_after);

		if (n > 0 && (size_t)n < cap - off)
			off += (size_t)n;
		else
			hdrs[off] = '\0';
	}
	/* the rules of the route the request took (none before routing: 400, 404, 408...) */
	if (!c->rules || !c->route)
		return off;
	response_ops(c, status, &o);
	for (unsigned i = 0; i < o.n; i++) {
		const struct http_hdr_op *op = &o.ops[i];
		int n;

		if (op->op == HDR_DEL)
			continue;
		n = snprintf(hdrs + off, cap - off, "%.*s: %.*s\r\n", (int)op->name_len, op->name,
			     (int)op->value_len, op->value);
		if (n < 0 || (size_t)n >= cap - off) {
			stats_error(STATS_ERR_HEADER_DROPPED);
			break;
		}
		off += (size_t)n;
	}
	hdrs[off] = '\0';
	return off;
}

int conn_rules_return_value(struct conn *c, char *out, size_t cap)
{
	const struct rule_actions *r = ract(c), *a = r && r->ret_code ? r : lact(c);
	struct rule_vars v;
	char st[8];
	int n;

	if (!a->ret_has_value || !c->rules)
		return 0;
	fill_vars(c, &v, a->ret_code, st, sizeof(st));
	n = tmpl_expand(&a->ret_value, &v, &c->rules->rq, &c->rules->caps, out, cap);
	return n < 0 ? 0 : n;
}

const char *conn_rules_request_id(const struct conn *c)
{
	return c->rules && c->route && c->rules->rid_len ? c->rules->rid : NULL;
}

const uint8_t *conn_rules_peer(struct conn *c)
{
	if (!c->peer_addr_set) {
		memset(c->peer_addr, 0, sizeof(c->peer_addr));
		if (inet_pton(AF_INET6, c->peer, c->peer_addr) != 1) {
			c->peer_addr[10] = c->peer_addr[11] = 0xff;
			if (inet_pton(AF_INET, c->peer, c->peer_addr + 12) != 1)
				return NULL;
		}
		c->peer_addr_set = 1;
	}
	return c->peer_addr;
}

void conn_rules_free(struct conn *c)
{
	if (!c->rules)
		return;
	free(c->rules->head);
	free(c->rules);
	c->rules = NULL;
}
