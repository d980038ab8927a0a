// SPDX-License-Identifier: MIT
/*
 * http.c - strict incremental HTTP/1.1 head parser (RFC 9112), chunked body walker and head
 * rewriting for the proxy.
 *
 * The parser is deliberately stricter than the RFC's "robustness" allowances: every ambiguity a
 * front-end and a back-end could resolve differently (request smuggling) is refused instead of
 * being repaired. Two phases per head: a byte scanner that finds the end of the head and rejects
 * bytes that may never appear in it (resumable through m->scan), then one pass over the complete
 * head that splits lines and fields.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "http-i.h"

/* RFC 9112 2.2: ignore "at least one" empty line before a request-line; a few cover clients
 * that send a stray CRLF after a body, more than that is garbage. */
#define HTTP_MAX_EMPTY_LINES 4
/* longest chunk-size line or trailer line the chunked walker accepts, CRLF included */
#define HTTP_CHUNK_LINE_MAX 4096

/* unreserved / sub-delims of RFC 3986; '%' is handled by the caller */
static int is_regname_char(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c && strchr("-._~!$&'()*+,;=", c) != NULL;
}

/*
 * uri-host [ ":" port ] of RFC 3986: reg-name (which covers IPv4), or an IPv6 literal in
 * brackets. Userinfo is refused (no '@' in reg-name): it has no place in a Host and is a classic
 * way to make two parsers disagree on the host. An empty host or an empty port is refused too.
 */
static int valid_authority(const char *s, size_t n, int need_port)
{
	size_t i = 0, digits;
	unsigned long port = 0;

	if (n && s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			if (hex_val(s[i]) < 0 && s[i] != ':' && s[i] != '.')
				return 0;
		if (i >= n || i == 1)
			return 0;
		i++;
	} else {
		while (i < n && s[i] != ':') {
			unsigned char c = s[i];

			if (c == '%') {
				if (i + 2 >= n || hex_val(s[i + 1]) < 0 || hex_val(s[i + 2]) < 0)
					return 0;
				i += 3;
				continue;
			}
			if (!is_regname_char(c))
				return 0;
			i++;
		}
		if (i == 0)
			return 0;
	}
	if (i == n)
		return !need_port;
	if (s[i] != ':')
		return 0;
	for (i++, digits = 0; i < n; i++, digits++) {
		if (!is_digit(s[i]) || digits >= 5)
			return 0;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return digits > 0 && port <= 65535;
}

/*
 * Skip the empty lines tolerated before a request-line. Returns 1 with *start set, 0 when more
 * bytes are needed, -400 on a bare CR or too many empty lines, -431 when max_head is reached.
 * Bounded by max_head like the scanner so that any split of the input gives the same answer.
 */
static int skip_empty_lines(const char *buf, size_t len, size_t max_head, size_t *start)
{
	size_t lim = len < max_head ? len : max_head;
	size_t pos = 0;
	unsigned n = 0;

	while (pos < lim && buf[pos] == '\r') {
		if (pos + 1 >= lim)
			return len >= max_head ? -431 : 0;
		if (buf[pos + 1] != '\n' || ++n > HTTP_MAX_EMPTY_LINES)
			return -400;
		pos += 2;
	}
	*start = pos;
	return 1;
}

/*
 * Find the end of the head (the first CRLF CRLF after start), resuming at m->scan. Returns the
 * head length, 0 when more bytes are needed, -400 on a bare CR, bare LF or control character,
 * or -431 when max_head bytes hold no complete head. Rejecting bad bytes here rather than after
 * the end is found means garbage (a TLS ClientHello on the plain port, say) fails at once instead
 * of waiting for max_head bytes.
 */
static int scan_head(const char *buf, size_t len, size_t max_head, size_t start, struct http_msg *m)
{
	size_t lim = len < max_head ? len : max_head;
	size_t i = m->scan > start ? m->scan : start;

	for (; i < lim; i++) {
		unsigned char c = buf[i];

		if (c == '\r') {
			if (i + 1 >= lim)
				break; /* CR is the last byte: decide when its successor arrives */
			if (buf[i + 1] != '\n')
				return -400;
		} else if (c == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				return -400;
			/* buf[start] is never CR, so this cannot match the skipped empty lines */
			if (i >= start + 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
				/* resume at the final CRLF CRLF: a repeated call finds it again */
				m->scan = (uint32_t)(i - 3);
				return (int)(i + 1);
			}
		} else if (is_ctl(c)) {
			return -400;
		}
	}
	if (len >= max_head)
		return -431;
	m->scan = (uint32_t)i;
	return 0;
}

/* Returns 0 for HTTP/1.0 and HTTP/1.1, -505 for another well-formed version, -400 otherwise. */
static int parse_version(const char *s, size_t n, int *minor)
{
	if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || !is_digit(s[5]) || s[6] != '.' ||
	    !is_digit(s[7]))
		return -400;
	if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
		return -505;
	*minor = s[7] - '0';
	return 0;
}

static enum http_method method_lookup(const char *s, size_t n)
{
	static const struct {
		const char *name;
		enum http_method m;
	} tab[] = {
		{"GET", HTTP_M_GET},	 {"HEAD", HTTP_M_HEAD},	      {"POST", HTTP_M_POST},
		{"PUT", HTTP_M_PUT},	 {"DELETE", HTTP_M_DELETE},   {"OPTIONS", HTTP_M_OPTIONS},
		{"TRACE", HTTP_M_TRACE}, {"CONNECT", HTTP_M_CONNECT}, {"PATCH", HTTP_M_PATCH},
	};
	size_t i;

	/* methods are case-sensitive (RFC 9110 9.1): "get" is some other method */
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strlen(tab[i].name) == n && memcmp(tab[i].name, s, n) == 0)
			return tab[i].m;
	return HTTP_M_OTHER;
}

/* method SP request-target SP HTTP-version, exactly one SP each. */
static int parse_request_line(const char *buf, size_t p, size_t eol, struct http_msg *m)
{
	size_t i = p, t;

	while (i < eol && is_tchar(buf[i]))
		i++;
	if (i == p || i >= eol || buf[i] != ' ')
		return -400;
	m->method_s = mk_span(p, i - p);
	m->method = method_lookup(buf + p, i - p);
	t = ++i;
	/* visible ASCII only: raw UTF-8 or any whitespace in a target is refused */
	while (i < eol && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
		i++;
	if (i == t || i >= eol || buf[i] != ' ')
		return -400;
	m->target = mk_span(t, i - t);
	i++;
	return parse_version(buf + i, eol - i, &m->version_minor);
}

/* unreserved characters of RFC 3986 2.3: percent-encoding them changes nothing */
static int is_unreserved(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* how path_char() read a character */
enum path_char_kind {
	PC_LITERAL = 0, /* a byte that stands for itself */
	PC_DECODED,	/* a percent-encoded unreserved character: written decoded */
	PC_ENCODED,	/* any other percent-encoding: stays encoded (upper-case hex) */
};

/*
 * Read one character of a path segment at p[*i] (*i < e) into *c (the decoded byte) and advance
 * *i past it. Returns an enum path_char_kind, or -400 for the bytes and encodings
 * http_path_normalize() refuses.
 */
static int path_char(const char *p, size_t *i, size_t e, unsigned char *c)
{
	unsigned char b = (unsigned char)p[*i];
	int hi, lo;

	if (b == '\\' || b == '#' || b <= 0x20 || b >= 0x7f)
		return -400;
	if (b != '%') {
		*c = b;
		(*i)++;
		return PC_LITERAL;
	}
	if (e - *i < 3)
		return -400;
	hi = hex_val((unsigned char)p[*i + 1]);
	lo = hex_val((unsigned char)p[*i + 2]);
	if (hi < 0 || lo < 0)
		return -400;
	*c = (unsigned char)(hi << 4 | lo);
	*i += 3;
	if (*c == '/' || *c == '\\' || *c < 0x20 || *c == 0x7f)
		return -400;
	if (*c == '%' && e - *i >= 2 && hex_val((unsigned char)p[*i]) >= 0 &&
	    hex_val((unsigned char)p[*i + 1]) >= 0) {
		/* "%252e": a backend that decodes twice would see a dot segment or separator */
		int v = hex_val((unsigned char)p[*i]) << 4 | hex_val((unsigned char)p[*i + 1]);

		if (v == '.' || v == '/' || v == '\\')
			return -400;
	}
	return is_unreserved(*c) ? PC_DECODED : PC_ENCODED;
}

enum seg_kind { SEG_NAME, SEG_DOT, SEG_DOTDOT };

/*
 * Classify the segment p[s..e) on its decoded form: "." or "..", or a name; -400 when it holds
 * a refused character, or when it is a dot segment with parameters ("..;x", ".%3B"), which
 * some servers drop before they resolve the dots.
 */
static int segment_kind(const char *p, size_t s, size_t e)
{
	unsigned n = 0, dots = 0; /* decoded characters, leading dots among them */
	size_t i = s;
	unsigned char c;

	while (i < e) {
		int r = path_char(p, &i, e, &c);

		if (r < 0)
			return r;
		if (c == ';' && dots == n && (dots == 1 || dots == 2))
			return -400;
		if (c == '.' && dots == n)
			dots++;
		n++;
	}
	if (dots == n && n == 1)
		return SEG_DOT;
	if (dots == n && n == 2)
		return SEG_DOTDOT;
	return SEG_NAME;
}

/* output cursor of the path normalizer (room checked up front); with p NULL nothing is
 * written */
struct path_out {
	char *p;
	size_t len;
};

static void path_put(struct path_out *o, char c)
{
	if (o->p)
		o->p[o->len] = c;
	o->len++;
}

static void path_put_hex(struct path_out *o, unsigned char v)
{
	static const char hex[] = "0123456789ABCDEF";

	path_put(o, '%');
	path_put(o, hex[v >> 4]);
	path_put(o, hex[v & 15]);
}

static int path_normalize_once(const char *p, size_t n, char *out, size_t cap)
{
	struct path_out o = {.p = out};
	const char *qm;
	size_t i = 0, q;
	unsigned depth = 0;
	int trail = 0;

	/* what is written before a ".." takes it back can be as long as the input */
	if (out && (n > INT32_MAX || cap < n + 2))
		return -ENOSPC;
	if (n && p[0] != '/' && p[0] != '?')
		return -400;
	qm = memchr(p, '?', n);
	q = qm ? (size_t)(qm - p) : n;
	while (i < q) {
		size_t e;
		int kind;

		if (p[i] == '/') {
			i++;
			trail = 1;
			continue;
		}
		for (e = i; e < q && p[e] != '/'; e++)
			;
		kind = segment_kind(p, i, e);
		if (kind < 0)
			return kind;
		if (kind == SEG_DOTDOT) {
			if (!depth)
				return -400; /* above the root */
			depth--;
			if (o.p) {
				/* drop the last "/segment" written */
				while (o.len && o.p[o.len - 1] != '/')
					o.len--;
				if (o.len)
					o.len--;
			}
			trail = 1;
		} else if (kind == SEG_DOT) {
			trail = 1;
		} else {
			path_put(&o, '/');
			while (i < e) {
				unsigned char c;

				/* segment_kind() has accepted every character */
				if (path_char(p, &i, e, &c) == PC_ENCODED)
					path_put_hex(&o, c);
				else
					path_put(&o, (char)c);
			}
			depth++;
			trail = 0;
		}
		i = e;
	}
	if (trail || !o.len)
		path_put(&o, '/');
	for (; i < n; i++) {
		/* the parser has checked a request's; a caller's own string is checked here */
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f || p[i] == '#')
			return -400;
		path_put(&o, p[i]);
	}
	if (!out)
		return 0;
	out[o.len] = '\0';
	return (int)o.len;
}

int http_path_normalize(const char *p, size_t n, char *out, size_t cap)
{
	char tmp[HTTP_MAX_TARGET + 2];
	int check_only = !out, len;

	if (check_only) {
		if (n + 2 > sizeof(tmp))
			return path_normalize_once(p, n, NULL, 0);
		out = tmp;
		cap = sizeof(tmp);
	}
	len = path_normalize_once(p, n, out, cap);
	if (len < 0)
		return len;
	/* decoding can make a refused shape ("%25%32E" is "%252E" once "%32" is decoded): such a
	 * path is refused as well, so what goes upstream is always a path spliced accepts */
	if (path_normalize_once(out, (size_t)len, NULL, 0) < 0)
		return -400;
	return check_only ? 0 : len;
}

int http_target_normalize(const char *buf, const struct http_msg *m, char *out, size_t cap)
{
	if (!cap)
		return -ENOSPC;
	if (m->method == HTTP_M_CONNECT || !m->target.len) {
		out[0] = '\0';
		return 0;
	}
	if (m->target.len == 1 && buf[m->target.off] == '*') {
		if (cap < 2)
			return -ENOSPC;
		memcpy(out, "*", 2);
		return 1;
	}
	return http_path_normalize(buf + m->path.off, m->path.len, out, cap);
}

/*
 * Classify the request-target (RFC 9112 3.2). CONNECT takes only authority-form with a port;
 * "*" only OPTIONS; otherwise origin-form or an http(s) absolute-form, whose authority replaces
 * the Host header (3.2.2) and whose path span may be empty or start with '?'.
 */
static int parse_target(const char *buf, struct http_msg *m)
{
	const char *t = buf + m->target.off;
	size_t n = m->target.len, sl, a;

	if (n > HTTP_MAX_TARGET)
		return -414;
	/* a fragment is never sent (RFC 9112 3.2); a backend might cut the path at it */
	if (memchr(t, '#', n))
		return -400;
	if (m->method == HTTP_M_CONNECT) {
		if (!valid_authority(t, n, 1))
			return -400;
		m->path = mk_span(m->target.off + n, 0);
		m->host = m->target; /* the tunnel goes there, whatever Host says */
		return 0;
	}
	if (t[0] == '/') {
		m->path = m->target;
		return http_path_normalize(t, n, NULL, 0);
	}
	if (n == 1 && t[0] == '*') {
		if (m->method != HTTP_M_OPTIONS)
			return -400;
		m->path = m->target;
		return 0;
	}
	if (n > 7 && mem_ieq(t, "http://", 7))
		sl = 7;
	else if (n > 8 && mem_ieq(t, "https://", 8))
		sl = 8;
	else
		return -400;
	for (a = sl; a < n && t[a] != '/' && t[a] != '?'; a++)
		;
	if (!valid_authority(t + sl, a - sl, 0))
		return -400;
	m->host = mk_span(m->target.off + sl, a - sl);
	m->path = mk_span(m->target.off + a, n - a);
	m->flags |= HTTP_F_ABSOLUTE_FORM;
	return http_path_normalize(t + a, n - a, NULL, 0);
}

/* header facts gathered across all field lines, decided on once the head is complete */
struct field_state {
	int ncl;	     /* Content-Length field lines */
	int nhost;	     /* Host field lines */
	int te_seen;	     /* a Transfer-Encoding field line was seen */
	int te_codings;	     /* codings listed across all Transfer-Encoding lines */
	int te_chunked;	     /* times "chunked" was listed */
	int te_last_chunked; /* the last coding listed is chunked */
	int host_idx;	     /* index of the Host header */
};

/* 1*DIGIT, no sign, no list, no overflow */
static int parse_content_length(const char *buf, struct http_span v, uint64_t *out)
{
	uint64_t n = 0;
	uint32_t i;

	if (!v.len)
		return -400;
	for (i = 0; i < v.len; i++) {
		unsigned char c = buf[v.off + i];

		if (!is_digit(c))
			return -400;
		if (n > (UINT64_MAX - (c - '0')) / 10)
			return -400;
		n = n * 10 + (c - '0');
	}
	*out = n;
	return 0;
}

/*
 * One Transfer-Encoding field line. "chunked" takes no parameters; other codings are checked
 * only for a token name since a request carrying one is refused anyway and a response carrying
 * one is relayed verbatim.
 */
static int parse_te(const char *buf, struct http_span v, struct field_state *st)
{
	size_t pos = v.off, end = (size_t)v.off + v.len, k;
	struct http_span el;

	st->te_seen = 1;
	while (list_next(buf, &pos, end, &el)) {
		for (k = 0; k < el.len && is_tchar(buf[el.off + k]); k++)
			;
		if (k == 0)
			return -400;
		if (k < el.len) {
			size_t j = k;

			while (j < el.len && is_ows(buf[el.off + j]))
				j++;
			if (j >= el.len || buf[el.off + j] != ';')
				return -400;
		}
		st->te_codings++;
		st->te_last_chunked = k == el.len && k == 7 && mem_ieq(buf + el.off, "chunked", 7);
		if (k == 7 && mem_ieq(buf + el.off, "chunked", 7)) {
			if (k != el.len)
				return -400; /* chunked with parameters */
			st->te_chunked++;
		}
	}
	return 0;
}

static int parse_connection(const char *buf, struct http_span v, struct http_msg *m)
{
	size_t pos = v.off, end = (size_t)v.off + v.len;
	struct http_span el;

	while (list_next(buf, &pos, end, &el)) {
		if (!span_is_token(buf, el))
			return -400;
		if (span_ieq(buf, el, "close"))
			m->flags |= HTTP_F_CONN_CLOSE;
		else if (span_ieq(buf, el, "keep-alive"))
			m->flags |= HTTP_F_CONN_KEEPALIVE;
		else if (span_ieq(buf, el, "upgrade"))
			m->flags |= HTTP_F_CONN_UPGRADE;
	}
	return 0;
}

/*
 * Split the field lines in buf[p..end) (end is the offset of the final CRLF) into m->hdrs and
 * note the ones that decide framing and connection handling. The scanner has already refused
 * bare CR/LF and control characters, so a value is whatever lies between colon and CRLF.
 */
static int parse_fields(const char *buf, size_t p, size_t end, int is_request, struct http_msg *m,
			struct field_state *st)
{
	while (p < end) {
		const char *nl = memchr(buf + p, '\n', end + 2 - p);
		size_t eol = (size_t)(nl - buf) - 1, i = p, vs, ve;
		struct http_hdr *h;
		int err;

		/* obs-fold, or whitespace before the first field name (RFC 9112 2.2, 5.2) */
		if (is_ows(buf[p]))
			return -400;
		while (i < eol && is_tchar(buf[i]))
			i++;
		if (i == p || i >= eol || buf[i] != ':')
			return -400;
		vs = i + 1;
		while (vs < eol && is_ows(buf[vs]))
			vs++;
		ve = eol;
		while (ve > vs && is_ows(buf[ve - 1]))
			ve--;
		if (m->nhdrs >= HTTP_MAX_HEADERS)
			return -431;
		h = &m->hdrs[m->nhdrs++];
		h->name = mk_span(p, i - p);
		h->value = mk_span(vs, ve - vs);
		p = eol + 2;

		switch (to_lower(buf[h->name.off])) {
		case 'c':
			if (span_ieq(buf, h->name, "content-length")) {
				if (++st->ncl > 1)
					return -400; /* even with equal values */
				err = parse_content_length(buf, h->value, &m->content_length);
				if (err)
					return err;
			} else if (span_ieq(buf, h->name, "connection")) {
				err = parse_connection(buf, h->value, m);
				if (err)
					return err;
			}
			break;
		case 't':
			if (span_ieq(buf, h->name, "transfer-encoding")) {
				err = parse_te(buf, h->value, st);
				if (err)
					return err;
			}
			break;
		case 'h':
			if (is_request && span_ieq(buf, h->name, "host")) {
				if (++st->nhost > 1)
					return -400;
				st->host_idx = (int)m->nhdrs - 1;
				/* an empty Host is what RFC 9110 7.2 asks for when there is no
				 * authority; anything else must be a valid uri-host[:port] */
				if (h->value.len &&
				    !valid_authority(buf + h->value.off, h->value.len, 0))
					return -400;
			}
			break;
		case 'u':
			if (span_ieq(buf, h->name, "upgrade"))
				m->flags |= HTTP_F_UPGRADE;
			break;
		case 'e':
			if (is_request && span_ieq(buf, h->name, "expect") &&
			    span_ieq(buf, h->value, "100-continue"))
				m->flags |= HTTP_F_EXPECT_CONTINUE;
			break;
		}
	}
	return 0;
}

/* Reset everything but the scan position so a repeated call starts from a clean result. */
static void msg_reset(struct http_msg *m)
{
	uint32_t scan = m->scan;

	memset(m, 0, offsetof(struct http_msg, hdrs));
	m->scan = scan;
}

/* end of the line starting at p: offset of its CR (the head is known to be CRLF-terminated) */
static size_t line_end(const char *buf, size_t p, size_t head_len)
{
	const char *nl = memchr(buf + p, '\n', head_len - p);

	return (size_t)(nl - buf) - 1;
}

int http_parse_request(const char *buf, size_t len, size_t max_head, struct http_msg *m)
{
	struct field_state st = {0};
	size_t start = 0, eol;
	int ret, head_len;

	if (max_head > INT32_MAX)
		max_head = INT32_MAX;
	ret = skip_empty_lines(buf, len, max_head, &start);
	if (ret <= 0)
		return ret;
	head_len = scan_head(buf, len, max_head, start, m);
	if (head_len <= 0)
		return head_len;

	msg_reset(m);
	eol = line_end(buf, start, head_len);
	ret = parse_request_line(buf, start, eol, m);
	if (ret)
		return ret;
	ret = parse_target(buf, m);
	if (ret)
		return ret;
	ret = parse_fields(buf, eol + 2, (size_t)head_len - 2, 1, m, &st);
	if (ret)
		return ret;

	if (m->version_minor == 1 && st.nhost == 0)
		return -400;
	/* RFC 9112 3.2.2: the authority of the target, when there is one, wins over Host */
	if (!(m->flags & HTTP_F_ABSOLUTE_FORM) && m->method != HTTP_M_CONNECT && st.nhost)
		m->host = m->hdrs[st.host_idx].value;
	if (m->version_minor == 0) {
		if (!(m->flags & HTTP_F_CONN_KEEPALIVE))
			m->flags |= HTTP_F_CONN_CLOSE;
		/* RFC 9110 10.1.1: ignore 100-continue from an HTTP/1.0 client */
		m->flags &= ~HTTP_F_EXPECT_CONTINUE;
	}

	if (st.te_seen) {
		/* RFC 9112 6.1/6.3: CL with TE, or TE in HTTP/1.0, is a smuggling shape */
		if (st.ncl || m->version_minor == 0 || st.te_codings == 0 || st.te_chunked > 1)
			return -400;
		if (!st.te_last_chunked)
			return -400;
		/* we only relay chunked: a compressing coding under it is not understood */
		if (st.te_codings > 1)
			return -501;
		m->framing = HTTP_BODY_CHUNKED;
	} else if (st.ncl && m->content_length > 0) {
		m->framing = HTTP_BODY_LENGTH;
	} else {
		m->framing = HTTP_BODY_NONE;
	}
	m->head_len = (uint32_t)head_len;
	return head_len;
}

/* HTTP-version SP 3DIGIT [ SP reason-phrase ]: the reason (and its SP) may be missing */
static int parse_status_line(const char *buf, size_t eol, struct http_msg *m)
{
	int ret;

	if (eol < 12 || buf[8] != ' ')
		return -502;
	ret = parse_version(buf, 8, &m->version_minor);
	if (ret)
		return -502;
	if (buf[9] < '1' || buf[9] > '9' || !is_digit(buf[10]) || !is_digit(buf[11]))
		return -502;
	m->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (eol > 12 && buf[12] != ' ')
		return -502;
	return 0;
}

int http_parse_response(const char *buf, size_t len, size_t max_head, enum http_method req_method,
			struct http_msg *m)
{
	struct field_state st = {0};
	size_t eol;
	int ret, head_len;

	if (max_head > INT32_MAX)
		max_head = INT32_MAX;
	/* no empty lines are tolerated before a status-line: a server that sends one has
	 * mis-framed its previous response */
	head_len = scan_head(buf, len, max_head, 0, m);
	if (head_len <= 0)
		return head_len < 0 ? -502 : 0;

	msg_reset(m);
	eol = line_end(buf, 0, head_len);
	ret = parse_status_line(buf, eol, m);
	if (ret)
		return -502;
	ret = parse_fields(buf, eol + 2, (size_t)head_len - 2, 0, m, &st);
	if (ret)
		return -502;
	if (st.te_seen &&
	    (st.ncl || m->version_minor == 0 || st.te_codings == 0 || st.te_chunked > 1))
		return -502;
	if (m->version_minor == 0 && !(m->flags & HTTP_F_CONN_KEEPALIVE))
		m->flags |= HTTP_F_CONN_CLOSE;

	if (req_method == HTTP_M_HEAD || m->status < 200 || m->status == 204 || m->status == 304)
		m->framing = HTTP_BODY_NONE;
	else if (req_method == HTTP_M_CONNECT && m->status < 300)
		m->framing = HTTP_BODY_UNTIL_CLOSE;
	else if (st.te_seen)
		/* RFC 9112 6.3 item 4: chunked not last -> read until close */
		m->framing = st.te_last_chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_UNTIL_CLOSE;
	else if (st.ncl)
		m->framing = m->content_length ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	else
		m->framing = HTTP_BODY_UNTIL_CLOSE;
	m->head_len = (uint32_t)head_len;
	return head_len;
}

int http_find_header(const char *buf, const struct http_msg *m, const char *name)
{
	unsigned i;

	for (i = 0; i < m->nhdrs; i++)
		if (span_ieq(buf, m->hdrs[i].name, name))
			return (int)i;
	return -1;
}

int http_find_cookie(const char *buf, const struct http_msg *m, const char *name,
		     struct http_span *value)
{
	size_t nl = strlen(name);

	for (unsigned i = 0; i < m->nhdrs; i++) {
		struct http_span v = m->hdrs[i].value;
		const char *p = buf + v.off, *end = p + v.len;

		if (!span_ieq(buf, m->hdrs[i].name, "cookie"))
			continue;
		/* cookie-string: name=value pairs separated by "; " (RFC 6265 4.2.1); be lenient
		 * about the spaces */
		while (p < end) {
			const char *pair = p, *eq, *semi;

			while (pair < end && (*pair == ' ' || *pair == '\t'))
				pair++;
			semi = memchr(pair, ';', (size_t)(end - pair));
			if (!semi)
				semi = end;
			eq = memchr(pair, '=', (size_t)(semi - pair));
			if (eq && (size_t)(eq - pair) == nl && !memcmp(pair, name, nl)) {
				const char *vs = eq + 1, *ve = semi;

				while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
					vs++;
					ve--;
				}
				value->off = (uint32_t)(vs - buf);
				value->len = (uint32_t)(ve - vs);
				return 1;
			}
			p = semi + 1;
		}
	}
	return 0;
}

/* chunked walker states */
enum {
	CH_SIZE = 0,  /* chunk-size hex digits (none read yet when line_len == 0) */
	CH_SIZE_BWS,  /* whitespace after the size, must lead to ';' */
	CH_EXT_NAME0, /* after ';': BWS then ext name */
	CH_EXT_NAME,
	CH_EXT_NAME_BWS, /* after a name: BWS then '=' or ';' */
	CH_EXT_VAL0,	 /* after '=': BWS then token or quoted-string */
	CH_EXT_TOKEN,
	CH_EXT_QS,
	CH_EXT_QS_ESC,
	CH_EXT_QS_END,
	CH_EXT_VAL_BWS, /* after a value: BWS then ';' */
	CH_SIZE_LF,	/* CR of the size line seen */
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER0, /* start of a trailer line or of the final CRLF */
	CH_TR_NAME,
	CH_TR_VALUE,
	CH_TR_LF,
	CH_FINAL_LF,
	CH_DONE,
};

static int qdtext_or_obs(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
	       (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/* Advance over one byte outside chunk data. Returns 0 or -400. */
static int chunked_byte(struct http_chunked *c, unsigned char b)
{
	int h;

	if (c->state != CH_DATA_CR && c->state != CH_DATA_LF && ++c->line_len > HTTP_CHUNK_LINE_MAX)
		return -400;
	switch (c->state) {
	case CH_SIZE:
		h = hex_val(b);
		if (h >= 0) {
			/* 16 hex digits fill 64 bits; leading zeros count too */
			if (c->line_len > 16)
				return -400;
			c->size = (c->size << 4) | (uint64_t)h;
			if (c->max_chunk && c->size > c->max_chunk)
				return -400;
			return 0;
		}
		if (c->line_len == 1)
			return -400; /* no digit at all */
		if (b == ';')
			c->state = CH_EXT_NAME0;
		else if (is_ows(b))
			c->state = CH_SIZE_BWS;
		else if (b == '\r')
			c->state = CH_SIZE_LF;
		else
			return -400;
		return 0;
	case CH_SIZE_BWS:
	case CH_EXT_VAL_BWS:
		if (b == ';')
			c->state = CH_EXT_NAME0;
		else if (!is_ows(b))
			return -400;
		return 0;
	case CH_EXT_NAME0:
		if (is_tchar(b))
			c->state = CH_EXT_NAME;
		else if (!is_ows(b))
			return -400;
		return 0;
	case CH_EXT_NAME:
		if (is_tchar(b))
			return 0;
		if (b == '=')
			c->state = CH_EXT_VAL0;
		else if (b == ';')
			c->state = CH_EXT_NAME0;
		else if (is_ows(b))
			c->state = CH_EXT_NAME_BWS;
		else if (b == '\r')
			c->state = CH_SIZE_LF;
		else
			return -400;
		return 0;
	case CH_EXT_NAME_BWS:
		if (b == '=')
			c->state = CH_EXT_VAL0;
		else if (b == ';')
			c->state = CH_EXT_NAME0;
		else if (!is_ows(b))
			return -400;
		return 0;
	case CH_EXT_VAL0:
		if (b == '"')
			c->state = CH_EXT_QS;
		else if (is_tchar(b))
			c->state = CH_EXT_TOKEN;
		else if (!is_ows(b))
			return -400;
		return 0;
	case CH_EXT_TOKEN:
		if (is_tchar(b))
			return 0;
		if (b == ';')
			c->state = CH_EXT_NAME0;
		else if (is_ows(b))
			c->state = CH_EXT_VAL_BWS;
		else if (b == '\r')
			c->state = CH_SIZE_LF;
		else
			return -400;
		return 0;
	case CH_EXT_QS:
		if (b == '"')
			c->state = CH_EXT_QS_END;
		else if (b == '\\')
			c->state = CH_EXT_QS_ESC;
		else if (!qdtext_or_obs(b))
			return -400;
		return 0;
	case CH_EXT_QS_ESC:
		if (is_ctl(b))
			return -400;
		c->state = CH_EXT_QS;
		return 0;
	case CH_EXT_QS_END:
		if (b == ';')
			c->state = CH_EXT_NAME0;
		else if (is_ows(b))
			c->state = CH_EXT_VAL_BWS;
		else if (b == '\r')
			c->state = CH_SIZE_LF;
		else
			return -400;
		return 0;
	case CH_SIZE_LF:
		if (b != '\n')
			return -400;
		c->line_len = 0;
		if (c->size == 0) {
			c->state = CH_TRAILER0; /* last-chunk; size now counts trailer lines */
		} else {
			c->left = c->size;
			c->data = c->data + c->size < c->data ? UINT64_MAX : c->data + c->size;
			c->size = 0;
			c->state = CH_DATA;
		}
		return 0;
	case CH_DATA_CR:
		if (b != '\r')
			return -400;
		c->state = CH_DATA_LF;
		return 0;
	case CH_DATA_LF:
		if (b != '\n')
			return -400;
		c->line_len = 0;
		c->size = 0;
		c->state = CH_SIZE;
		return 0;
	case CH_TRAILER0:
		if (b == '\r') {
			c->state = CH_FINAL_LF;
			return 0;
		}
		/* an obs-fold, empty name or bad byte all land here */
		if (!is_tchar(b) || ++c->size > HTTP_MAX_HEADERS)
			return -400;
		c->state = CH_TR_NAME;
		return 0;
	case CH_TR_NAME:
		if (b == ':')
			c->state = CH_TR_VALUE;
		else if (!is_tchar(b))
			return -400; /* includes whitespace before the colon */
		return 0;
	case CH_TR_VALUE:
		if (b == '\r')
			c->state = CH_TR_LF;
		else if (is_ctl(b))
			return -400;
		return 0;
	case CH_TR_LF:
		if (b != '\n')
			return -400;
		c->line_len = 0;
		c->state = CH_TRAILER0;
		return 0;
	case CH_FINAL_LF:
		if (b != '\n')
			return -400;
		c->state = CH_DONE;
		c->done = 1;
		return 0;
	}
	return -400;
}

ssize_t http_chunked_feed(struct http_chunked *c, const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && c->state != CH_DONE) {
		if (c->state == CH_DATA) {
			size_t n = len - i;

			if (n > c->left)
				n = (size_t)c->left;
			i += n;
			c->left -= n;
			if (!c->left)
				c->state = CH_DATA_CR;
			continue;
		}
		if (chunked_byte(c, (unsigned char)buf[i]))
			return -400;
		i++;
	}
	return (ssize_t)i;
}

int http_chunked_in_data(const struct http_chunked *c)
{
	return c->state == CH_DATA && c->left > 0;
}

void http_chunked_skip(struct http_chunked *c, uint64_t n)
{
	if (c->state != CH_DATA)
		return;
	if (n > c->left)
		n = c->left; /* contract violation; never walk past the chunk */
	c->left -= n;
	if (!c->left)
		c->state = CH_DATA_CR;
}
