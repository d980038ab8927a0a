// SPDX-License-Identifier: MIT
/*
 * fuzz_resp.c - libFuzzer target for the response side of userspace/http.c as conn.c drives it
 * (response_head): a server's byte stream parsed incrementally into responses (1xx, then the
 * final one, then the next keep-alive responses), each head rewritten with the choices conn.c
 * makes, each body skipped by its framing.
 *
 * Input layout: byte 0 selects max_head (bits 0-1) and the request's method (bits 2-3), bit 4
 * the client's keep-alive, bit 5 an HTTP/1.0 client, bit 6 a request that asked for an
 * Upgrade, bit 7 a draining worker; byte 1 is the feed step (bytes arriving per read, 0 = all
 * at once); the rest is what the server sends. Properties checked (abort() on violation):
 *   - fed in steps, the parser gives the same verdict and message as on the whole stream;
 *   - the rewrite of an accepted head fits the buffer conn.c gives it (max_head + 1024) and
 *     adds at most the Via and Connection lines and a blank after each field's colon;
 *   - the rewritten head parses again with the same status, version and framing;
 *   - a 101 is accepted only when its Upgrade names what the request asked for (websocket),
 *     as conn.c does (else 502);
 *   - hop-by-hop fields are gone (Keep-Alive, Proxy-Connection, TE, Upgrade, HTTP2-Settings,
 *     every field a Connection header names except framing and Host), the only Upgrade and
 *     Connection headers are conn.c's, the last Via ends with ours, and every other field is
 *     kept in order;
 *   - a chunked body walked whole and in the feed's steps ends at the same offset.
 * Seeds: tests/fuzz/corpus/resp, one file per response shape (the two leading bytes as above).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#define VIA "1.1 spliced"
#define MAX_RESPONSES 4

static struct http_msg m, m2, mo;
static char out[100000 + 1024];

static int span_is(const char *buf, struct http_span s, const char *name)
{
	return s.len == strlen(name) && !strncasecmp(buf + s.off, name, s.len);
}

/* does a Connection header of (buf, msg) list the field name at buf+off? */
static int named_by_connection(const char *buf, const struct http_msg *msg, struct http_span nm)
{
	for (unsigned i = 0; i < msg->nhdrs; i++) {
		const struct http_hdr *h = &msg->hdrs[i];
		const char *v = buf + h->value.off, *e = v + h->value.len;

		if (!span_is(buf, h->name, "connection"))
			continue;
		while (v < e) {
			const char *t = v, *a, *b;

			while (t < e && *t != ',')
				t++;
			/* trim OWS around the element */
			a = v;
			b = t;
			while (a < b && (*a == ' ' || *a == '\t'))
				a++;
			while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
				b--;
			if ((size_t)(b - a) == nm.len && !strncasecmp(a, buf + nm.off, nm.len))
				return 1;
			v = t + 1;
		}
	}
	return 0;
}

static int dropped(const char *buf, const struct http_msg *msg, struct http_span nm)
{
	if (span_is(buf, nm, "connection") || span_is(buf, nm, "keep-alive") ||
	    span_is(buf, nm, "proxy-connection") || span_is(buf, nm, "te") ||
	    span_is(buf, nm, "upgrade") || span_is(buf, nm, "http2-settings"))
		return 1;
	if (span_is(buf, nm, "content-length") || span_is(buf, nm, "transfer-encoding") ||
	    span_is(buf, nm, "host"))
		return 0;
	return named_by_connection(buf, msg, nm);
}

/* the rewritten head against the original; returns nothing, aborts on a difference */
static void check_rewrite(const char *buf, const char *o, int n, enum http_method meth,
			  const char *upg, const char *conn)
{
	unsigned j = 0, last_via = (unsigned)-1;
	int r;

	memset(&mo, 0, sizeof(mo));
	r = http_parse_response(o, (size_t)n, sizeof(out), meth, &mo);
	if (r == -502) {
		/* only the two lines we add can push it over the header count */
		CHECK(m.nhdrs + 2 > HTTP_MAX_HEADERS);
		return;
	}
	CHECK(r == n);
	CHECK(mo.status == m.status && mo.version_minor == m.version_minor);
	CHECK(mo.framing == m.framing && mo.content_length == m.content_length);

	/* every kept field, in order, with its value (the last Via may grow) */
	for (unsigned i = 0; i < m.nhdrs; i++) {
		const struct http_hdr *h = &m.hdrs[i];
		const struct http_hdr *g;

		if (dropped(buf, &m, h->name))
			continue;
		CHECK(j < mo.nhdrs);
		g = &mo.hdrs[j++];
		CHECK(g->name.len == h->name.len &&
		      !memcmp(o + g->name.off, buf + h->name.off, h->name.len));
		CHECK(g->value.len >= h->value.len &&
		      !memcmp(o + g->value.off, buf + h->value.off, h->value.len));
		if (span_is(buf, h->name, "via"))
			last_via = j - 1;
		else
			CHECK(g->value.len == h->value.len);
	}
	if (last_via == (unsigned)-1) {
		CHECK(j < mo.nhdrs && span_is(o, mo.hdrs[j].name, "via"));
		last_via = j++;
	}
	CHECK(mo.hdrs[last_via].value.len >= strlen(VIA) &&
	      !memcmp(o + mo.hdrs[last_via].value.off + mo.hdrs[last_via].value.len - strlen(VIA),
		      VIA, strlen(VIA)));
	if (upg && upg[0]) {
		CHECK(j < mo.nhdrs && span_is(o, mo.hdrs[j].name, "upgrade"));
		CHECK(span_is(o, mo.hdrs[j].value, upg));
		j++;
	}
	if (conn) {
		CHECK(j < mo.nhdrs && span_is(o, mo.hdrs[j].name, "connection"));
		CHECK(span_is(o, mo.hdrs[j].value, conn));
		j++;
	}
	CHECK(j == mo.nhdrs);
	for (unsigned i = 0; i < mo.nhdrs; i++) {
		struct http_span nm = mo.hdrs[i].name;

		CHECK(!span_is(o, nm, "keep-alive") && !span_is(o, nm, "proxy-connection") &&
		      !span_is(o, nm, "te") && !span_is(o, nm, "http2-settings"));
		if (!upg || !upg[0])
			CHECK(!span_is(o, nm, "upgrade"));
	}
}

/* walk a chunked body whole and in steps; returns its length, or -1 (malformed/unfinished) */
static long chunked_body(const char *buf, size_t len, size_t step)
{
	struct http_chunked a = {0}, b = {0};
	ssize_t r = http_chunked_feed(&a, buf, len);
	size_t pos = 0;

	while (pos < len && !b.done) {
		size_t k = len - pos < step ? len - pos : step;
		ssize_t q = http_chunked_feed(&b, buf + pos, k);

		if (q < 0) {
			CHECK(r < 0);
			return -1;
		}
		pos += (size_t)q;
	}
	if (r < 0 || !a.done) {
		CHECK(!b.done);
		return -1;
	}
	CHECK(b.done && pos == (size_t)r);
	return (long)r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum http_method meths[] = {HTTP_M_GET, HTTP_M_HEAD, HTTP_M_CONNECT,
						 HTTP_M_POST};
	static const size_t max_heads[] = {8192, 64, 256, 100000};
	const char *buf;
	size_t len, pos = 0, step, max_head;
	enum http_method meth;
	int req_keepalive, client_10, upgrade, draining;

	if (size < 2)
		return 0;
	max_head = max_heads[data[0] & 3];
	meth = meths[(data[0] >> 2) & 3];
	req_keepalive = (data[0] >> 4) & 1;
	client_10 = (data[0] >> 5) & 1;
	upgrade = (data[0] >> 6) & 1;
	draining = (data[0] >> 7) & 1;
	step = data[1] ? data[1] : SIZE_MAX;
	buf = (const char *)data + 2;
	len = size - 2;

	for (int nresp = 0; nresp < MAX_RESPONSES && pos < len; nresp++) {
		const char *b = buf + pos;
		size_t avail = len - pos, have;
		int r, r2 = 0, tunnel, informational, n;
		const char *conn = NULL, *upg;
		char proto[256];
		unsigned other = 0;

		memset(&m, 0, sizeof(m));
		r = http_parse_response(b, avail, max_head, meth, &m);
		CHECK(r >= 0 || r == -502);

		/* as conn.c sees it: the buffer grows by `step` bytes per read */
		memset(&m2, 0, sizeof(m2));
		for (have = step < avail ? step : avail; r2 == 0; have += step) {
			if (have > avail)
				have = avail;
			r2 = http_parse_response(b, have, max_head, meth, &m2);
			if (have == avail)
				break;
		}
		CHECK(r == r2);
		if (r <= 0)
			return 0; /* 502, or the server has not finished its head */
		m2.scan = m.scan;
		CHECK(!memcmp(&m, &m2, sizeof(m)));

		/* response_head(): the same decisions as conn.c */
		informational = m.status >= 100 && m.status < 200 && m.status != 101;
		tunnel = (m.status == 101 && upgrade && meth != HTTP_M_CONNECT) ||
			 (meth == HTTP_M_CONNECT && m.status >= 200 && m.status < 300);
		/* a 101 switches to what the request asked for, or is refused */
		if (m.status == 101 &&
		    (!tunnel ||
		     http_upgrade_filter(b, &m, "websocket", proto, sizeof(proto), &other) <= 0 ||
		     other))
			return 0; /* 502 */
		upg = m.status == 101 ? proto : NULL;
		if (draining)
			req_keepalive = 0;
		if (tunnel)
			conn = m.status == 101 ? "upgrade" : NULL;
		else if (!informational)
			conn = req_keepalive ? NULL : "close";
		if (!informational && !tunnel) {
			if (m.framing == HTTP_BODY_UNTIL_CLOSE) {
				req_keepalive = 0;
				conn = "close";
			} else if (req_keepalive && client_10) {
				conn = "keep-alive";
			}
		}
		{
			struct http_rewrite rw = {.via = VIA, .connection = conn, .upgrade = upg};
			size_t most = (size_t)r + m.nhdrs + 2 + strlen(VIA) + sizeof("Via: \r\n") +
				      (conn ? sizeof("Connection: keep-alive\r\n") : 0) +
				      (upg ? sizeof("Upgrade: \r\n") + strlen(upg) : 0);

			n = http_rewrite_head(b, &m, 0, &rw, out, max_head + 1024);
			/* each field may gain the blank after its colon */
			CHECK(n > 0 && (size_t)n <= most);
			CHECK(http_rewrite_head(b, &m, 0, &rw, out, (size_t)n - 1) == -ENOSPC);
		}
		check_rewrite(b, out, n, meth, upg, conn);

		pos += (size_t)r;
		if (informational)
			continue;
		if (tunnel || m.framing == HTTP_BODY_UNTIL_CLOSE)
			return 0; /* the rest is the tunnel or the body up to the close */
		if (m.framing == HTTP_BODY_LENGTH) {
			if (m.content_length > len - pos)
				return 0;
			pos += (size_t)m.content_length;
		} else if (m.framing == HTTP_BODY_CHUNKED) {
			long bl = chunked_body(buf + pos, len - pos, step == SIZE_MAX ? 7 : step);

			if (bl < 0)
				return 0;
			pos += (size_t)bl;
		}
		if (!req_keepalive || (m.flags & HTTP_F_CONN_CLOSE) || m.version_minor != 1)
			return 0; /* the connection ends with this response */
	}
	return 0;
}
