// SPDX-License-Identifier: MIT
/*
 * fuzz_http.c - libFuzzer target for userspace/http.c.
 *
 * Input layout: byte 0 selects max_head and the response's request method, bytes 1-2 the split
 * point, the rest is the message. Properties checked (abort() on violation):
 *   - request and response parsing give the same result whole, split in two (the first part in
 *     its own exact-size allocation so ASan sees any over-read), and, for short inputs, fed byte
 *     by byte;
 *   - an accepted head's spans all lie inside the head and obey the grammar;
 *   - the rewritten form of an accepted request parses again with the same framing, Host and
 *     normalized target (normalizing is idempotent), and -ENOSPC is returned for a buffer one
 *     byte short;
 *   - the path normalizer agrees with its check-only mode, never grows a path by more than one
 *     byte, leaves no empty, "." or ".." segment, '\\' or encoded unreserved character in the
 *     path, and gives the same result for its own output;
 *   - the chunked walker gives the same result whole, in pieces, and with data skipped.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iuserspace tests/fuzz/fuzz_http.c \
 *        userspace/http.c -o /tmp/fuzz_http
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static struct http_msg m1, m2;

static int span_in(struct http_span s, size_t lo, size_t hi)
{
	return s.off >= lo && (size_t)s.off + s.len <= hi;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void check_msg(const char *buf, size_t len, size_t max_head, int ret,
		      const struct http_msg *m, int is_request)
{
	size_t hl = m->head_len;
	unsigned i;

	CHECK(ret > 0 && (size_t)ret == hl);
	CHECK(hl <= len && hl <= max_head && hl >= 4);
	CHECK(memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0);
	CHECK(m->version_minor == 0 || m->version_minor == 1);
	CHECK(m->nhdrs <= HTTP_MAX_HEADERS);
	CHECK(m->framing <= HTTP_BODY_UNTIL_CLOSE);
	for (i = 0; i < m->nhdrs; i++) {
		const struct http_hdr *h = &m->hdrs[i];

		CHECK(span_in(h->name, 0, hl) && span_in(h->value, 0, hl));
		CHECK(h->name.len > 0 && h->value.off > h->name.off + h->name.len - 1);
		CHECK(buf[h->name.off + h->name.len] == ':');
		CHECK(memchr(buf + h->name.off, ' ', h->name.len) == NULL);
		CHECK(memchr(buf + h->value.off, '\r', h->value.len) == NULL);
		CHECK(memchr(buf + h->value.off, '\n', h->value.len) == NULL);
		if (h->value.len)
			CHECK(!is_ows(buf[h->value.off]) &&
			      !is_ows(buf[h->value.off + h->value.len - 1]));
	}
	if (http_find_header(buf, m, "transfer-encoding") >= 0)
		CHECK(http_find_header(buf, m, "content-length") < 0);
	if (m->framing == HTTP_BODY_LENGTH)
		CHECK(m->content_length > 0 && http_find_header(buf, m, "content-length") >= 0);
	if (is_request) {
		CHECK(m->framing != HTTP_BODY_UNTIL_CLOSE);
		if (m->framing == HTTP_BODY_CHUNKED)
			CHECK(m->version_minor == 1);
		CHECK(m->method_s.len > 0 && span_in(m->method_s, 0, hl));
		CHECK(m->target.len > 0 && span_in(m->target, 0, hl));
		CHECK(m->target.off == m->method_s.off + m->method_s.len + 1);
		CHECK(span_in(m->path, m->target.off, m->target.off + m->target.len));
		CHECK(span_in(m->host, 0, hl));
		if (m->version_minor == 1)
			CHECK(http_find_header(buf, m, "host") >= 0);
		if (m->version_minor == 0 && !(m->flags & HTTP_F_CONN_KEEPALIVE))
			CHECK(m->flags & HTTP_F_CONN_CLOSE);
	} else {
		CHECK(m->status >= 100 && m->status <= 999);
		if (m->status < 200 || m->status == 204 || m->status == 304)
			CHECK(m->framing == HTTP_BODY_NONE);
	}
}

/* the parser must not depend on how the bytes arrived */
static void same_msg(const struct http_msg *a, const struct http_msg *b)
{
	struct http_msg x = *a;

	x.scan = b->scan;
	CHECK(memcmp(&x, b, sizeof(x)) == 0);
}

static int parse(int is_request, const char *buf, size_t len, size_t max_head,
		 enum http_method meth, struct http_msg *m)
{
	if (is_request)
		return http_parse_request(buf, len, max_head, m);
	return http_parse_response(buf, len, max_head, meth, m);
}

/* returns the whole-buffer result, whose message stays in m1 */
static int fuzz_head(int is_request, const char *buf, size_t len, size_t split, size_t max_head,
		     enum http_method meth)
{
	int r1, r2;
	char *part;

	memset(&m1, 0, sizeof(m1));
	r1 = parse(is_request, buf, len, max_head, meth, &m1);
	if (is_request)
		CHECK(r1 >= 0 || r1 == -400 || r1 == -431 || r1 == -505 || r1 == -501 ||
		      r1 == -414);
	else
		CHECK(r1 >= 0 || r1 == -502);
	if (r1 > 0)
		check_msg(buf, len, max_head, r1, &m1, is_request);
	if (r1 == 0)
		CHECK(len < max_head);

	/* split in two, the first part in an allocation of exactly its size */
	memset(&m2, 0, sizeof(m2));
	part = malloc(split ? split : 1);
	CHECK(part);
	memcpy(part, buf, split);
	r2 = parse(is_request, part, split, max_head, meth, &m2);
	free(part);
	if (r2 == 0)
		r2 = parse(is_request, buf, len, max_head, meth, &m2);
	CHECK(r1 == r2);
	if (r1 > 0)
		same_msg(&m1, &m2);

	/* byte by byte for short inputs */
	if (len <= 300) {
		size_t i;

		memset(&m2, 0, sizeof(m2));
		r2 = 0;
		for (i = 1; i <= len && r2 == 0; i++)
			r2 = parse(is_request, buf, i, max_head, meth, &m2);
		CHECK(r1 == r2);
		if (r1 > 0)
			same_msg(&m1, &m2);
	}
	return r1;
}

static void fuzz_rewrite(const char *buf, int is_request, enum http_method meth)
{
	static char out[65536 * 2 + 1024], path[HTTP_MAX_TARGET + 2], path3[HTTP_MAX_TARGET + 2];
	static char upgrade[256];
	static struct http_msg m3;
	struct http_rewrite rw = {
		.client_ip = "192.0.2.1",
		.proto = "http",
		.via = "1.1 spliced",
		.connection = (m1.flags & HTTP_F_CONN_CLOSE) ? "close" : "keep-alive",
	};
	size_t cap = m1.head_len * 2 + 1024;
	int n, r, plen = 0;

	CHECK(cap <= sizeof(out));
	if (is_request) {
		plen = http_target_normalize(buf, &m1, path, sizeof(path));
		CHECK(plen >= 0 && (size_t)plen <= m1.path.len + 1 && strlen(path) == (size_t)plen);
		rw.path = path;
	}
	if (m1.flags & HTTP_F_UPGRADE) {
		unsigned dropped;

		r = http_upgrade_filter(buf, &m1, "websocket h2c", upgrade, sizeof(upgrade),
					&dropped);
		CHECK(r == -ENOSPC || (r >= 0 && strlen(upgrade) == (size_t)r));
		if (r > 0)
			rw.upgrade = upgrade;
	}
	n = http_rewrite_head(buf, &m1, is_request, &rw, out, cap);
	CHECK(n > 0 && (size_t)n <= cap);
	CHECK(http_rewrite_head(buf, &m1, is_request, &rw, out, (size_t)n - 1) == -ENOSPC);
	n = http_rewrite_head(buf, &m1, is_request, &rw, out, (size_t)n);
	CHECK(n > 0);

	/* what we forward must mean the same to the next hop (running our own rules) */
	memset(&m3, 0, sizeof(m3));
	r = parse(is_request, out, (size_t)n, sizeof(out), meth, &m3);
	if (r == -431 || r == -502) {
		/* only the headers we add can push it over the header count */
		CHECK(m1.nhdrs + 6 > HTTP_MAX_HEADERS);
		return;
	}
	CHECK(r == n);
	CHECK(m3.framing == m1.framing && m3.content_length == m1.content_length);
	CHECK(m3.version_minor == m1.version_minor);
	if (is_request) {
		CHECK(m3.method == m1.method);
		CHECK(!(m3.flags & HTTP_F_ABSOLUTE_FORM));
		if (plen) {
			CHECK(m3.target.len == (uint32_t)plen);
			CHECK(memcmp(out + m3.target.off, path, (size_t)plen) == 0);
		} else {
			CHECK(m3.target.len == m1.target.len);
		}
		CHECK(http_target_normalize(out, &m3, path3, sizeof(path3)) == plen);
		CHECK(strcmp(path, path3) == 0);
		if (m1.framing == HTTP_BODY_CHUNKED) {
			int te = http_find_header(out, &m3, "transfer-encoding");

			CHECK(te >= 0 && m3.hdrs[te].value.len == 7);
			CHECK(memcmp(out + m3.hdrs[te].value.off, "chunked", 7) == 0);
		}
		CHECK(m3.host.len == m1.host.len);
		CHECK(memcmp(out + m3.host.off, buf + m1.host.off, m1.host.len) == 0);
		CHECK(http_find_header(out, &m3, "keep-alive") < 0);
		CHECK(http_find_header(out, &m3, "te") < 0);
		CHECK(http_find_header(out, &m3, "proxy-connection") < 0);
	} else {
		CHECK(m3.status == m1.status);
	}
}

static int seg_is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static void fuzz_path(const char *buf, size_t len)
{
	static char out[HTTP_MAX_TARGET + 2], again[HTTP_MAX_TARGET + 2];
	size_t n = len < HTTP_MAX_TARGET ? len : HTTP_MAX_TARGET, q, i, s;
	const char *qm;
	int r, r0, r2;

	r = http_path_normalize(buf, n, out, n + 2);
	r0 = http_path_normalize(buf, n, NULL, 0);
	CHECK(r == -400 || r >= 0);
	CHECK(r0 == (r < 0 ? r : 0));
	if (r < 0)
		return;
	CHECK((size_t)r <= n + 1 && strlen(out) == (size_t)r && out[0] == '/');
	/* one byte short of n + 2 is refused, never truncated */
	CHECK(http_path_normalize(buf, n, again, n + 1) == -ENOSPC);
	qm = memchr(out, '?', (size_t)r);
	q = qm ? (size_t)(qm - out) : (size_t)r;
	CHECK(!memchr(out, '\\', q));
	for (i = 1, s = 1; i <= q; i++) {
		if (i < q && out[i] != '/')
			continue;
		/* segment out[s..i): never empty (but the last), never a dot segment */
		CHECK(i - s > 0 || i == q);
		CHECK(!seg_is(out + s, i - s, ".") && !seg_is(out + s, i - s, ".."));
		s = i + 1;
	}
	for (i = 0; i + 2 < q; i++) {
		if (out[i] == '%') {
			static const char unres[] =
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				"0123456789-._~";
			char hex[3] = {out[i + 1], out[i + 2], 0};
			char c = (char)strtol(hex, NULL, 16);

			CHECK(c && !strchr(unres, c));
		}
	}
	r2 = http_path_normalize(out, (size_t)r, again, sizeof(again));
	CHECK(r2 == r && strcmp(out, again) == 0);
}

static void fuzz_chunked(const char *buf, size_t len, size_t split, uint64_t max_chunk)
{
	struct http_chunked a = {.max_chunk = max_chunk}, b = {.max_chunk = max_chunk};
	ssize_t r1, r;
	size_t pos = 0, step = split % 7 + 1;

	r1 = http_chunked_feed(&a, buf, len);
	CHECK(r1 == -400 || (r1 >= 0 && (size_t)r1 <= len));
	if (r1 >= 0 && !a.done)
		CHECK((size_t)r1 == len);
	if (a.done)
		CHECK(!http_chunked_in_data(&a) && http_chunked_feed(&a, buf, len) == 0);

	/* in small steps, skipping over chunk data instead of feeding it when possible */
	r = 0;
	while (pos < len && !b.done) {
		size_t n = len - pos < step ? len - pos : step;

		if (http_chunked_in_data(&b) && (pos & 1)) {
			uint64_t k = b.left < n ? b.left : n;

			http_chunked_skip(&b, k);
			pos += (size_t)k;
			continue;
		}
		r = http_chunked_feed(&b, buf + pos, n);
		if (r < 0)
			break;
		CHECK((size_t)r <= n);
		if ((size_t)r < n)
			CHECK(b.done);
		pos += (size_t)r;
	}
	if (r1 < 0) {
		CHECK(r < 0);
	} else {
		CHECK(r >= 0 && pos == (size_t)r1 && a.done == b.done);
		CHECK(a.left == b.left && a.state == b.state);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum http_method meths[] = {HTTP_M_GET, HTTP_M_HEAD, HTTP_M_CONNECT,
						 HTTP_M_POST};
	static const size_t max_heads[] = {8192, 64, 256, 100000};
	const char *buf;
	size_t len, split, max_head;
	enum http_method meth;

	if (size < 3)
		return 0;
	buf = (const char *)data + 3;
	len = size - 3;
	split = ((size_t)data[1] << 8 | data[2]) % (len + 1);
	max_head = max_heads[data[0] & 3];
	meth = meths[(data[0] >> 2) & 3];

	if (fuzz_head(1, buf, len, split, max_head, meth) > 0)
		fuzz_rewrite(buf, 1, meth);
	if (fuzz_head(0, buf, len, split, max_head, meth) > 0)
		fuzz_rewrite(buf, 0, meth);
	fuzz_chunked(buf, len, split, (data[0] & 0x10) ? 0x1000 : 0);
	if (len && (buf[0] == '/' || buf[0] == '?'))
		fuzz_path(buf, len);
	return 0;
}
