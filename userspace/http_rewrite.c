// SPDX-License-Identifier: MIT
/*
 * http_rewrite.c - the forwarded form of a head (http_rewrite_head): hop-by-hop headers out,
 * X-Forwarded-*, Via, the Upgrade allowed (http_upgrade_filter), the rule engine's header
 * operations, and the reason phrases of status codes. Pure, like the parser (http.c).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "http-i.h"
#include "http.h"

/* output cursor for http_rewrite_head: remembers overflow instead of checking every call */
struct out_buf {
	char *p;
	size_t cap;
	size_t len;
	int full;
};

static void out_put(struct out_buf *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void out_str(struct out_buf *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* is the field named @name listed in any Connection header? */
static int conn_lists(const char *buf, const struct http_msg *m, struct http_span name)
{
	struct http_span el;
	unsigned i;

	for (i = 0; i < m->nhdrs; i++) {
		size_t pos, end;

		if (!span_ieq(buf, m->hdrs[i].name, "connection"))
			continue;
		pos = m->hdrs[i].value.off;
		end = pos + m->hdrs[i].value.len;
		while (list_next(buf, &pos, end, &el))
			if (el.len == name.len && mem_ieq(buf + el.off, buf + name.off, el.len))
				return 1;
	}
	return 0;
}

/* length of the protocol-name of an Upgrade element: the part before any "/version" */
static size_t protocol_name_len(const char *p, size_t n)
{
	const char *sl = memchr(p, '/', n);

	return sl ? (size_t)(sl - p) : n;
}

/* protocol = protocol-name ["/" protocol-version], both tokens (RFC 9110 7.8) */
static int valid_protocol(const char *buf, struct http_span el)
{
	size_t nl = protocol_name_len(buf + el.off, el.len);
	struct http_span name = mk_span(el.off, nl), ver = mk_span(el.off + nl + 1, 0);

	if (nl == el.len)
		return span_is_token(buf, name);
	ver.len = (uint32_t)(el.len - nl - 1);
	return span_is_token(buf, name) && span_is_token(buf, ver);
}

/* Is the protocol-name name[0..n) among those of list (separated by spaces or commas)? */
static int protocol_listed(const char *list, const char *name, size_t n)
{
	const char *a = list;

	while (*a) {
		const char *e;

		while (*a == ' ' || *a == '\t' || *a == ',')
			a++;
		for (e = a; *e && *e != ' ' && *e != '\t' && *e != ','; e++)
			;
		if (e > a && protocol_name_len(a, (size_t)(e - a)) == n && mem_ieq(a, name, n))
			return 1;
		a = e;
	}
	return 0;
}

int http_upgrade_filter(const char *buf, const struct http_msg *m, const char *allow, char *out,
			size_t cap, unsigned *dropped)
{
	struct out_buf o = {.p = out, .cap = cap};
	unsigned i, kept = 0, drop = 0;

	for (i = 0; i < m->nhdrs; i++) {
		size_t pos = m->hdrs[i].value.off, end = pos + m->hdrs[i].value.len;
		struct http_span el;

		if (!span_ieq(buf, m->hdrs[i].name, "upgrade"))
			continue;
		while (list_next(buf, &pos, end, &el)) {
			if (!valid_protocol(buf, el) ||
			    !protocol_listed(allow, buf + el.off,
					     protocol_name_len(buf + el.off, el.len))) {
				drop++;
				continue;
			}
			if (kept++)
				out_put(&o, ", ", 2);
			out_put(&o, buf + el.off, el.len);
		}
	}
	out_put(&o, "", 1);
	if (dropped)
		*dropped = drop;
	if (o.full)
		return -ENOSPC;
	return (int)o.len - 1;
}

/* headers never forwarded as received (the Host, Transfer-Encoding and HTTP2-Settings of a
 * request are written by http_rewrite_head() itself) */
static int is_hop_by_hop(const char *buf, const struct http_msg *m, struct http_span name,
			 int is_request)
{
	if (span_ieq(buf, name, "connection") || span_ieq(buf, name, "keep-alive") ||
	    span_ieq(buf, name, "proxy-connection") || span_ieq(buf, name, "te") ||
	    span_ieq(buf, name, "upgrade") || span_ieq(buf, name, "http2-settings"))
		return 1;
	if (is_request && span_ieq(buf, name, "x-forwarded-proto"))
		return 1;
	/* "Connection: content-length" must not strip framing or routing from the forwarded
	 * head: the next hop would then read the body as a new message (request smuggling) */
	if (span_ieq(buf, name, "content-length") || span_ieq(buf, name, "transfer-encoding") ||
	    span_ieq(buf, name, "host"))
		return 0;
	return conn_lists(buf, m, name);
}

const char *http_reason(int status)
{
	static const struct {
		int code;
		const char *text;
	} tab[] = {
		{200, "OK"},
		{201, "Created"},
		{202, "Accepted"},
		{204, "No Content"},
		{301, "Moved Permanently"},
		{302, "Found"},
		{303, "See Other"},
		{307, "Temporary Redirect"},
		{308, "Permanent Redirect"},
		{400, "Bad Request"},
		{401, "Unauthorized"},
		{403, "Forbidden"},
		{404, "Not Found"},
		{405, "Method Not Allowed"},
		{408, "Request Timeout"},
		{410, "Gone"},
		{413, "Content Too Large"},
		{414, "URI Too Long"},
		{418, "I'm a teapot"},
		{429, "Too Many Requests"},
		{431, "Request Header Fields Too Large"},
		{500, "Internal Server Error"},
		{501, "Not Implemented"},
		{502, "Bad Gateway"},
		{503, "Service Unavailable"},
		{504, "Gateway Timeout"},
		{505, "HTTP Version Not Supported"},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].code == status)
			return tab[i].text;
	return status < 400 ? "Unknown" : "Error";
}

/* does a set or del op of rw name lit (lower case)? with any_kind: add ops count too */
static int op_names(const struct http_rewrite *rw, const char *lit, int any_kind)
{
	size_t len = strlen(lit);

	for (unsigned i = 0; i < rw->nops; i++)
		if ((any_kind || rw->ops[i].op != HTTP_HDR_ADD) && rw->ops[i].name_len == len &&
		    !strncasecmp(rw->ops[i].name, lit, len))
			return 1;
	return 0;
}

/* is the header line named n left out by a set or del op of rw? */
static int ruled_out(const char *buf, struct http_span n, const struct http_rewrite *rw)
{
	for (unsigned i = 0; i < rw->nops; i++)
		if (rw->ops[i].op != HTTP_HDR_ADD && rw->ops[i].name_len == n.len &&
		    !strncasecmp(rw->ops[i].name, buf + n.off, n.len))
			return 1;
	return 0;
}

/* what one rewrite has decided before it writes: which proxy headers it adds, where */
struct rewrite_plan {
	const char *client_ip, *proto, *via; /* NULL: not added (a rule took the header over) */
	int last_xff, last_via; /* the line an addition is appended to; -1: a new line */
	int host_seen, h2s;
};

static void plan_rewrite(const char *buf, const struct http_msg *m, int is_request,
			 const struct http_rewrite *rw, struct rewrite_plan *pl)
{
	*pl = (struct rewrite_plan){rw->client_ip, rw->proto, rw->via, -1, -1, 0, 0};
	/* HTTP2-Settings belongs to an h2c upgrade and goes only where one goes */
	if (is_request && rw->upgrade && protocol_listed(rw->upgrade, "h2c", 3))
		pl->h2s = http_find_header(buf, m, "http2-settings") >= 0;
	/* a rule on a header the proxy adds to takes it over */
	if (op_names(rw, "x-forwarded-for", 1))
		pl->client_ip = NULL;
	if (op_names(rw, "x-forwarded-proto", 1))
		pl->proto = NULL;
	if (op_names(rw, "via", 1))
		pl->via = NULL;
	for (unsigned i = 0; i < m->nhdrs; i++) {
		struct http_span n = m->hdrs[i].name;

		if (is_hop_by_hop(buf, m, n, is_request) || ruled_out(buf, n, rw))
			continue;
		if (is_request && pl->client_ip && span_ieq(buf, n, "x-forwarded-for"))
			pl->last_xff = (int)i;
		else if (pl->via && span_ieq(buf, n, "via"))
			pl->last_via = (int)i;
		else if (is_request && span_ieq(buf, n, "host"))
			pl->host_seen = 1;
	}
}

static void put_line(struct out_buf *o, const char *name, const char *value)
{
	out_str(o, name);
	out_put(o, ": ", 2);
	out_str(o, value);
	out_put(o, "\r\n", 2);
}

/* the start line (a request's target replaced by rw->path), then a Host the head lacks */
static void write_start(struct out_buf *o, const char *buf, const struct http_msg *m,
			int is_request, const struct http_rewrite *rw, const char *nl,
			const struct rewrite_plan *pl)
{
	size_t start = is_request ? m->method_s.off : 0;

	if (is_request && rw->path && rw->path[0]) {
		const char *after = buf + m->target.off + m->target.len; /* " HTTP/1.x\r\n" */

		out_put(o, buf + start, m->method_s.len + 1);
		out_str(o, rw->path);
		out_put(o, after, (size_t)(nl - after) + 1);
	} else {
		out_put(o, buf + start, (size_t)(nl - buf) + 1 - start);
	}
	if (is_request && !pl->host_seen && (m->host.len || rw->host)) {
		/* HTTP/1.0 in absolute-form: the backend learns the authority from Host */
		out_str(o, "Host: ");
		if (rw->host)
			out_str(o, rw->host);
		else
			out_put(o, buf + m->host.off, m->host.len);
		out_put(o, "\r\n", 2);
	}
}

/* the received header lines that go on, some of them changed */
static void write_fields(struct out_buf *o, const char *buf, const struct http_msg *m,
			 int is_request, const struct http_rewrite *rw,
			 const struct rewrite_plan *pl)
{
	int te_seen = 0;

	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct http_hdr *h = &m->hdrs[i];
		struct http_span v = h->value;
		const char *add = NULL;

		if (pl->h2s && span_ieq(buf, h->name, "http2-settings")) {
			/* forwarded as received */
		} else if (is_hop_by_hop(buf, m, h->name, is_request) ||
			   ruled_out(buf, h->name, rw)) {
			continue;
		} else if (is_request && span_ieq(buf, h->name, "host")) {
			if (rw->host) {
				put_line(o, "Host", rw->host);
				continue;
			}
			v = m->host; /* the authority the request was routed on */
		} else if (is_request && span_ieq(buf, h->name, "transfer-encoding")) {
			if (!te_seen++)
				out_str(o, "Transfer-Encoding: chunked\r\n");
			continue;
		}
		if ((int)i == pl->last_xff)
			add = pl->client_ip;
		else if ((int)i == pl->last_via)
			add = pl->via;
		out_put(o, buf + h->name.off, h->name.len);
		out_put(o, ": ", 2);
		out_put(o, buf + v.off, v.len);
		if (add) {
			/* append to the last line: equivalent to a new list member */
			if (v.len)
				out_put(o, ", ", 2);
			out_str(o, add);
		}
		out_put(o, "\r\n", 2);
	}
}

/* what the proxy and the rules add after the received lines */
static void write_added(struct out_buf *o, int is_request, const struct http_rewrite *rw,
			const struct rewrite_plan *pl)
{
	if (is_request && pl->client_ip && pl->last_xff < 0)
		put_line(o, "X-Forwarded-For", pl->client_ip);
	if (is_request && pl->proto)
		put_line(o, "X-Forwarded-Proto", pl->proto);
	if (pl->via && pl->last_via < 0)
		put_line(o, "Via", pl->via);
	for (unsigned i = 0; i < rw->nops; i++) {
		const struct http_hdr_op *op = &rw->ops[i];

		if (op->op == HTTP_HDR_DEL)
			continue;
		out_put(o, op->name, op->name_len);
		out_put(o, ": ", 2);
		out_put(o, op->value, op->value_len);
		out_put(o, "\r\n", 2);
	}
	if (rw->upgrade && rw->upgrade[0])
		put_line(o, "Upgrade", rw->upgrade);
	if (!is_request && rw->chunked)
		out_str(o, "Transfer-Encoding: chunked\r\n");
	if (rw->connection || pl->h2s) {
		out_str(o, "Connection: ");
		if (rw->connection)
			out_str(o, rw->connection);
		if (rw->connection && pl->h2s)
			out_put(o, ", ", 2);
		if (pl->h2s)
			out_str(o, "HTTP2-Settings");
		out_put(o, "\r\n", 2);
	}
	if (rw->set_cookie && rw->set_cookie[0])
		put_line(o, "Set-Cookie", rw->set_cookie);
}

int http_rewrite_head(const char *buf, const struct http_msg *m, int is_request,
		      const struct http_rewrite *rw, char *out, size_t cap)
{
	struct out_buf o = {.p = out, .cap = cap};
	size_t start = is_request ? m->method_s.off : 0;
	struct rewrite_plan pl;
	const char *nl;

	/* only a message the parser accepted has a start line to copy */
	if (start >= m->head_len)
		return -EINVAL;
	nl = memchr(buf + start, '\n', m->head_len - start);
	if (!nl)
		return -EINVAL;
	plan_rewrite(buf, m, is_request, rw, &pl);
	write_start(&o, buf, m, is_request, rw, nl, &pl);
	write_fields(&o, buf, m, is_request, rw, &pl);
	write_added(&o, is_request, rw, &pl);
	out_put(&o, "\r\n", 2);
	if (o.full || o.len > INT32_MAX)
		return -ENOSPC;
	return (int)o.len;
}
