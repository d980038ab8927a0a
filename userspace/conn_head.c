// SPDX-License-Identifier: MIT
/*
 * conn_head.c - what a connection does with the heads of a request and of its response: a
 * request head is noted, routed, rewritten, framed and sent to a server of the routed pool; a
 * response head is rewritten and sent to the client, and sets the response framing or turns
 * the connection into a tunnel. The places where request and response rules belong.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conn-t.h"
#include "conn.h"
#include "conn_head.h"
#include "conn_limits.h"
#include "conn_rules.h"
#include "conn_upstream.h"
#include "flow.h"
#include "health_state.h"
#include "lb.h"
#include "log.h"
#include "route.h"
#include "sticky.h"
#include "transport.h"
#include "worker.h"

static void span_copy(char *dst, size_t cap, const char *base, struct http_span s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(dst, base + s.off, n);
	dst[n] = '\0';
}

/* request_begin - a new request: note what the access log and the state machine need of its
 * head (m, whose bytes are at b) */
static void request_begin(struct conn *c, const struct http_msg *m, const char *b, int head_len)
{
	c->t_start = c->w->now_ms;
	c->method = m->method;
	c->version_minor = m->version_minor;
	span_copy(c->method_s, sizeof(c->method_s), b, m->method_s);
	span_copy(c->path, sizeof(c->path), b, m->target);
	if (route_host_normalize(b + m->host.off, m->host.len, c->host, sizeof(c->host)) < 0)
		c->host[0] = '\0';
	c->bytes_in = (uint64_t)head_len;
	c->bytes_out = 0;
	c->resp_started = 0;
	c->status = 0;
	c->requests++;
	c->route = NULL;
	c->in_request = 1;
	c->term = TERM_NONE;
	c->refused = NULL;
	c->req_keepalive = !(m->flags & HTTP_F_CONN_CLOSE) &&
			   (m->version_minor == 1 || (m->flags & HTTP_F_CONN_KEEPALIVE));
	c->upgrade = (m->method == HTTP_M_CONNECT) ||
		     ((m->flags & HTTP_F_UPGRADE) && (m->flags & HTTP_F_CONN_UPGRADE));
}

/* request_upgrade - only the protocols route r allows go on (c->upgrade_proto); without one
 * this is no upgrade */
static void request_upgrade(struct conn *c, const struct route *r, const struct http_msg *m,
			    const char *b)
{
	c->upgrade_proto[0] = '\0';
	if (c->upgrade && m->method != HTTP_M_CONNECT &&
	    http_upgrade_filter(b, m, r->upgrade_protocols, c->upgrade_proto,
				sizeof(c->upgrade_proto), NULL) <= 0) {
		log_debug("%s: Upgrade to a protocol not allowed, forwarded without it", c->peer);
		c->upgrade = 0;
		c->upgrade_proto[0] = '\0';
	}
}

/* request_rewrite - the head as it goes upstream (forwarding headers added, hop-by-hop ones
 * removed, the normalized target path) into c->req_head, kept for retries; 0, or -1 when it
 * does not fit */
static int request_rewrite(struct conn *c, const struct http_msg *m, const char *b,
			   const char *path, const struct rule_req *rq)
{
	struct conn_rules_ops ops;
	char upath[HTTP_MAX_TARGET + 2];
	struct http_rewrite rw;
	int n;

	memset(&rw, 0, sizeof(rw));
	rw.client_ip = c->peer;
	rw.proto = c->client.ssl ? "https" : "http";
	rw.via = "1.1 spliced";
	if (c->upgrade)
		rw.connection = m->method == HTTP_M_CONNECT ? NULL : "upgrade";
	rw.upgrade = c->upgrade_proto;
	rw.path = path;
	/* the route's and listener's request rules: path, Host, headers */
	if (conn_rules_request(c, rq, &rw, &ops, upath, sizeof(upath)))
		return -400;
	n = conn_limits_underscore(c, m, b, &ops, &rw);
	if (n)
		return -n;
	n = http_rewrite_head(b, m, 1, &rw, c->req_head, c->cf->max_header_size + 1024);
	if (n < 0)
		return -431;
	c->req_head_len = (uint32_t)n;
	return 0;
}

/* request_framing - the request body's framing from its head, then the head is consumed;
 * 0, or -1 when chunk framing that came with the head is already broken (checked before any
 * backend sees the request; later framing errors abort the upstream connection) */
static int request_framing(struct conn *c, const struct http_msg *m, int head_len)
{
	struct http_chunked probe;

	flow_reset_body(&c->req);
	switch (m->framing) {
	case HTTP_BODY_LENGTH:
		c->req.body = m->content_length ? B_LENGTH : B_NONE;
		c->req.left = m->content_length;
		break;
	case HTTP_BODY_CHUNKED:
		c->req.body = B_CHUNKED;
		break;
	default:
		c->req.body = B_NONE;
		break;
	}
	buf_consume(&c->req.in, (uint32_t)head_len);
	if (c->req.body != B_CHUNKED || !buf_len(&c->req.in))
		return 0;
	probe = c->req.ch;
	return http_chunked_feed(&probe, c->req.in.data + c->req.in.start, buf_len(&c->req.in)) < 0
		       ? -1
		       : 0;
}

/* request_send - may free c: send the request to a server of pool p. Every request is
 * balanced; the keep-alive upstream carries it when the balancer picked the server it is
 * connected to (a new pool always means a new connection). */
static enum step_rc request_send(struct conn *c, struct pool *p)
{
	struct server *pick;

	c->ntried = 0;
	if (c->pool != p)
		conn_upstream_close(c);
	c->pool = p;
	pick = conn_upstream_pick(c);
	if (pick && c->ufd >= 0 && pick == c->srv && c->resp_keepalive &&
	    health_server_reusable(c->srv) && conn_upstream_check_idle(c)) {
		c->upstream_fresh = 0;
		c->tried[c->ntried++] = c->srv->id;
		return conn_start_exchange(c);
	}
	conn_upstream_close(c);
	c->srv = NULL;
	return conn_upstream_connect(c, pick, 1);
}

/* conn_head_request - may free c: a complete request head of head_len bytes is in c->req.in:
 * route it, rewrite it and send it to a server of the routed pool (or answer an error) */
enum step_rc conn_head_request(struct conn *c, int head_len)
{
	struct http_msg *m = c->msg;
	const char *b = c->req.in.data + c->req.in.start;
	char path[HTTP_MAX_TARGET + 2]; /* normalized: routed on and forwarded */
	const struct route *r;
	struct rule_req rq;
	struct rule_caps caps;
	int n, rc;

	request_begin(c, m, b, head_len);
	/* a reload since the last request: route by the new rules (a connection whose listener
	 * is gone is served on the old ones and closed after this request) */
	if (c->cf != c->w->cf)
		(void)conn_config_follow(c);
	n = http_target_normalize(b, m, path, sizeof(path));
	if (n < 0) {
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, 400);
	}
	rc = conn_limits_head(c, m, b);
	if (rc) {
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, rc);
	}
	rule_req_fill(&rq, b, m, path, (size_t)n, c->host, conn_rules_peer(c));
	r = route_select(c->l, &rq, &caps);
	c->route = r;
	if (!r) {
		c->pool = NULL;
		c->srv = NULL;
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, 404);
	}
	atomic_fetch_add_explicit(&((struct route *)r)->matches, 1, memory_order_relaxed);
	if (conn_rules_begin(c, r, &rq, &caps)) {
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, 500);
	}
	rc = conn_rules_refuse(c, &rq);
	if (!rc)
		rc = conn_limits_body_length(c, m); /* 413 before any backend sees it */
	if (!rc)
		rc = conn_limits_request(c, m, b); /* limit rate (429), a route's limit conn */
	if (rc) {
		/* the route's allow/deny (403) or methods (405): no backend sees it */
		c->pool = NULL;
		c->srv = NULL;
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, rc);
	}
	rc = conn_rules_return(c);
	if (rc) {
		c->pool = NULL;
		c->srv = NULL;
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, rc);
	}
	sticky_request(c, r->pool, m, b);
	request_upgrade(c, r, m, b);
	rc = request_rewrite(c, m, b, path, &rq);
	if (rc) {
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, -rc);
	}
	if (request_framing(c, m, head_len))
		return conn_fail_request(c, 400);
	conn_limits_body_flow(c);
	return request_send(c, r->pool);
}

/* response_connection - the keep-alive of both connections after response m, and the
 * Connection header the client gets with it (NULL: none added) */
static const char *response_connection(struct conn *c, const struct http_msg *m, int informational,
				       int tunnel)
{
	const char *connection;

	c->resp_chunked = 0;
	/* stopping: this response is the connection's last */
	if (atomic_load_explicit(&c->w->draining, memory_order_relaxed))
		c->req_keepalive = 0;
	if (tunnel)
		return m->status == 101 ? "upgrade" : NULL;
	if (informational)
		return NULL;
	connection = c->req_keepalive ? NULL : "close";
	c->resp_keepalive = !(m->flags & HTTP_F_CONN_CLOSE) && m->version_minor == 1 &&
			    m->framing != HTTP_BODY_UNTIL_CLOSE;
	if (m->framing == HTTP_BODY_UNTIL_CLOSE && c->version_minor == 1 &&
	    http_find_header(c->resp.in.data + c->resp.in.start, m, "transfer-encoding") < 0) {
		/* an HTTP/1.1 client gets the body chunked (nginx does the same): a server that
		 * cuts it with a reset leaves the client a body without its last chunk, which it
		 * sees as an error, not as a complete response; and its connection can carry
		 * on. (A body with a transfer coding of its own stays as it is.) */
		c->resp_chunked = 1;
	} else if (m->framing == HTTP_BODY_UNTIL_CLOSE) {
		/* the client can only see the end as a close */
		c->req_keepalive = 0;
		connection = "close";
	} else if (c->req_keepalive && c->version_minor == 0) {
		connection = "keep-alive";
	}
	return connection;
}

/* response_body_start - after a final response head: the response body's framing, or a
 * tunnel both ways */
static void response_body_start(struct conn *c, const struct http_msg *m, int tunnel)
{
	flow_reset_body(&c->resp);
	if (tunnel) {
		c->resp.body = B_TUNNEL;
		flow_reset_body(&c->req);
		c->req.body = B_TUNNEL;
		c->st = CS_TUNNEL;
		conn_set_deadline(c, c->cf->timeout_tunnel_ms);
		return;
	}
	switch (m->framing) {
	case HTTP_BODY_LENGTH:
		c->resp.body = m->content_length ? B_LENGTH : B_NONE;
		c->resp.left = m->content_length;
		break;
	case HTTP_BODY_CHUNKED:
		c->resp.body = B_CHUNKED;
		break;
	case HTTP_BODY_UNTIL_CLOSE:
		c->resp.body = B_EOF;
		c->resp.chunk_out = (uint8_t)c->resp_chunked; /* flow.c writes the chunks */
		break;
	default:
		c->resp.body = B_NONE;
	}
	conn_set_deadline(c, conn_exchange_timeout(c));
}

/* response_forward - a parsed response head of head_len bytes (c->rmsg) goes to the client,
 * rewritten: 1 for a final head (the body or tunnel starts), 0 for a 1xx (the next head
 * follows), -1 when it cannot be forwarded (the caller answers 502) */
static int response_forward(struct conn *c, int head_len, int *progress)
{
	struct buf *in = &c->resp.in;
	struct http_msg *m = c->rmsg;
	struct http_rewrite rw;
	struct conn_rules_ops ops;
	int informational = m->status >= 100 && m->status < 200 && m->status != 101;
	int tunnel = (m->status == 101 && c->upgrade && c->method != HTTP_M_CONNECT) ||
		     (c->method == HTTP_M_CONNECT && m->status >= 200 && m->status < 300);
	char proto[UPGRADE_LIST_MAX], cookie[NAME_MAX_LEN + 80];
	unsigned other = 0;
	int n;

	/* a 101 switches to what the request asked for, or is refused */
	if (m->status == 101 && (!tunnel ||
				 http_upgrade_filter(in->data + in->start, m, c->upgrade_proto,
						     proto, sizeof(proto), &other) <= 0 ||
				 other)) {
		log_warnx("%s: upstream %s: 101 to a protocol not asked for", c->peer,
			  c->srv ? c->srv->name : "-");
		return -1;
	}
	c->status = m->status;
	if (!informational && c->srv) {
		char why[16];

		snprintf(why, sizeof(why), "status %d", m->status);
		health_passive_result(c->srv, m->status < 500, why, c->w->now_ms);
	}
	memset(&rw, 0, sizeof(rw));
	rw.via = "1.1 spliced";
	rw.upgrade = m->status == 101 ? proto : NULL;
	rw.connection = response_connection(c, m, informational, tunnel);
	/* hidden backend headers and the response rules (not on 1xx heads) */
	if (!informational)
		conn_rules_response(c, m->status, &rw, &ops);
	if (!informational)
		rw.set_cookie = sticky_response(c, cookie, sizeof(cookie));
	rw.chunked = c->resp_chunked;
	/* into req_head: free again, the request head went out */
	n = http_rewrite_head(in->data + in->start, m, 0, &rw, c->req_head,
			      c->cf->max_header_size + 1024);
	if (n < 0 || buf_append(&c->resp.out, c->req_head, (uint32_t)n))
		return -1;
	if (!informational)
		c->resp_mark = c->client.written;
	buf_consume(in, (uint32_t)head_len);
	c->bytes_out += (uint64_t)n;
	c->resp_started = 1;
	*progress = 1;
	if (informational) {
		memset(m, 0, sizeof(*m));
		return 0;
	}
	response_body_start(c, m, tunnel);
	return 1;
}

/* conn_head_response - may free c: read and parse the response head, forward it rewritten (1xx
 * heads go out and the next is read); sets the response framing, or turns c into a tunnel */
enum step_rc conn_head_response(struct conn *c, int *progress)
{
	struct buf *in = &c->resp.in;
	struct http_msg *m = c->rmsg;
	uint32_t max_head = c->cf->max_header_size;

	for (;;) {
		if (buf_len(in)) {
			int r = http_parse_response(in->data + in->start, buf_len(in), max_head,
						    c->method, m);

			if (r < 0)
				return conn_fail_request(c, 502);
			if (r > 0) {
				enum step_rc rc;

				if (!(c->rmsg->status >= 100 && c->rmsg->status < 200) &&
				    conn_upstream_head(c, &rc))
					return rc; /* retry_on: the request went to another server */
				r = response_forward(c, r, progress);
				if (r < 0)
					return conn_fail_request(c, 502);
				if (r > 0)
					return STEP_AGAIN;
				continue; /* a 1xx went out: the next head follows */
			}
		}
		if (in->start) {
			buf_compact(in);
			memset(m, 0, sizeof(*m));
		}
		if (in->end == in->cap)
			return conn_fail_request(c, 502);
		{
			uint32_t room = in->cap - in->end;
			ssize_t r;

			r = transport_recv(c, &c->upstream, in->data + in->end, room);
			if (r == -EAGAIN)
				return STEP_WAIT;
			if (r <= 0) {
				c->resp.src_eof = 1;
				if (buf_len(in))
					return conn_fail_request(c, 502);
				return conn_retry_or_fail(c, 502,
							  r == 0 ? "closed before responding"
								 : strerror((int)-r));
			}
			in->end += (uint32_t)r;
			*progress = 1;
		}
	}
}
