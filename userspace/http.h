/* SPDX-License-Identifier: MIT */
/*
 * http.h - strict incremental HTTP/1.1 message parser (RFC 9112) and head rewriting.
 *
 * Pure module: no I/O, no allocation, no global state. Every span points into the caller's
 * buffer by offset so the buffer may move between calls. Fuzzed by tests/fuzz/fuzz_http.c.
 */
#ifndef SPLICED_HTTP_H
#define SPLICED_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEADERS 128
/* longest request-target accepted (-414 beyond), as nginx's and Apache's default 8 KB request
 * line; it also bounds what http_path_normalize() writes */
#define HTTP_MAX_TARGET 8192

enum http_method {
	HTTP_M_OTHER = 0, /* any valid token method we do not special-case */
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_OPTIONS,
	HTTP_M_TRACE,
	HTTP_M_CONNECT,
	HTTP_M_PATCH,
};

enum http_framing {
	HTTP_BODY_NONE = 0,    /* no body (or response to HEAD, 1xx, 204, 304; or CL 0) */
	HTTP_BODY_LENGTH,      /* Content-Length bytes follow */
	HTTP_BODY_CHUNKED,     /* chunked transfer coding follows */
	HTTP_BODY_UNTIL_CLOSE, /* responses only: body ends at connection close */
};

/* message flags */
#define HTTP_F_CONN_CLOSE 0x01	    /* Connection: close present (or HTTP/1.0 without keep-alive) */
#define HTTP_F_CONN_KEEPALIVE 0x02  /* Connection: keep-alive present */
#define HTTP_F_CONN_UPGRADE 0x04    /* Connection lists "upgrade" */
#define HTTP_F_UPGRADE 0x08	    /* Upgrade header present */
#define HTTP_F_EXPECT_CONTINUE 0x10 /* Expect: 100-continue */
#define HTTP_F_ABSOLUTE_FORM 0x20   /* request-target in absolute-form */

struct http_span {
	uint32_t off; /* offset from the start of the message head */
	uint32_t len;
};

struct http_hdr {
	struct http_span name;
	struct http_span value; /* OWS stripped on both sides */
};

struct http_msg {
	uint32_t scan;	   /* incremental state: bytes already searched for the end of head;
			     * the caller sets the whole struct to zero before the first call
			     * for each new message */
	uint32_t head_len; /* set on success: bytes of the head including the final CRLF CRLF */
	int version_minor; /* 0 or 1 (HTTP/1.0 or HTTP/1.1) */
	unsigned flags;	   /* HTTP_F_* */
	/* request */
	enum http_method method;
	struct http_span method_s;
	struct http_span target; /* request-target as sent */
	struct http_span path;	 /* path+query part of target (origin-form, or after authority:
				  * then possibly empty or starting with '?'); empty for CONNECT */
	struct http_span host;	 /* the authority the request is for: that of an absolute-form
				  * or CONNECT target (RFC 9112 3.2.2, 3.2.3), else the Host
				  * header value (possibly empty); empty for HTTP/1.0 without
				  * either */
	/* response */
	int status;
	/* framing */
	enum http_framing framing;
	uint64_t content_length;
	unsigned nhdrs;
	struct http_hdr hdrs[HTTP_MAX_HEADERS];
};

/*
 * http_parse_request - parse a request head at buf[0..len).
 * @max_head: largest acceptable head in bytes (request line + headers + final CRLF).
 * Returns the head length (> 0) when the head is complete and valid, 0 when more bytes are
 * needed (m->scan records progress; call again with the same buffer grown), or a negative HTTP
 * status when the request must be refused and the connection closed:
 *   -400 malformed / smuggling shape, -431 head larger than max_head (or too many headers),
 *   -414 request-target longer than HTTP_MAX_TARGET, -505 HTTP version other than 1.0/1.1,
 *   -501 Transfer-Encoding other than chunked.
 * Rejected shapes include: CL together with TE; duplicate or malformed Content-Length (even
 * when the values agree); TE whose last coding is not chunked; obs-fold; whitespace between a
 * field name and the colon; bare CR or bare LF; control characters in the request line or in
 * field values; empty or invalid field names; missing Host (HTTP/1.1) or more than one Host;
 * invalid request-target; a target whose path http_path_normalize() refuses, or with a '#'
 * anywhere; leading empty lines are tolerated (RFC 9112 2.2) only as CRLF.
 */
int http_parse_request(const char *buf, size_t len, size_t max_head, struct http_msg *m);

/*
 * http_parse_response - parse a response head at buf[0..len).
 * @req_method: the method of the request this answers (HEAD and CONNECT change the framing).
 * Returns as http_parse_request, with every error reported as -502.
 * Framing per RFC 9112 6.3: 1xx/204/304 and HEAD -> NONE; 2xx to CONNECT -> UNTIL_CLOSE
 * (tunnel); chunked; Content-Length; otherwise UNTIL_CLOSE.
 */
int http_parse_response(const char *buf, size_t len, size_t max_head, enum http_method req_method,
			struct http_msg *m);

/* Case-insensitive lookup of the first header named @name; returns its index or -1. */
int http_find_header(const char *buf, const struct http_msg *m, const char *name);

/*
 * http_find_cookie - the value of the first cookie named @name (case-sensitive, as RFC 6265
 * compares them) in the Cookie header lines of a request head; the surrounding double quotes of
 * a quoted value are not part of it. Returns 1 and the span in *value, or 0 when absent.
 */
int http_find_cookie(const char *buf, const struct http_msg *m, const char *name,
		     struct http_span *value);

/* Chunked transfer coding walker. Bytes are forwarded verbatim; this only finds boundaries. */
struct http_chunked {
	uint8_t state;	    /* private */
	uint8_t done;	    /* 1 once the final CRLF after the last chunk and trailers was seen */
	uint32_t line_len;  /* private: length of the current size/trailer line */
	uint64_t left;	    /* bytes of chunk data remaining in the current chunk */
	uint64_t max_chunk; /* largest chunk size accepted; 0 means no limit */
	uint64_t size;	    /* private: chunk size being read, then trailer line count */
	uint64_t data;	    /* chunk data bytes the size lines announced so far (saturating) */
};

/*
 * http_chunked_feed - advance over buf[0..len) of a chunked body.
 * Returns the number of bytes consumed (0..len), all of which belong to the body and may be
 * forwarded verbatim; when it returns with c->done set, the body has ended at that offset and
 * the bytes after it belong to the next message. Returns -400 on a malformed size line, chunk
 * extension with control characters, missing CRLF after chunk data, oversized chunk, or a
 * malformed trailer line. While c->left > 0 and the walker is inside chunk data, the caller may
 * move up to c->left bytes without looking at them and report them with http_chunked_skip().
 */
ssize_t http_chunked_feed(struct http_chunked *c, const char *buf, size_t len);

/* http_chunked_in_data - nonzero when the walker is positioned inside chunk data (left > 0). */
int http_chunked_in_data(const struct http_chunked *c);

/* http_chunked_skip - account for n (<= c->left) chunk-data bytes moved without feeding them. */
void http_chunked_skip(struct http_chunked *c, uint64_t n);

/*
 * http_path_normalize - the form of a path (and query) that spliced routes on and forwards.
 * p[0..n) is empty or starts with '/' or '?' (the path span of an origin-form or absolute-form
 * target). The path part (up to the first '?') is normalized as RFC 3986 6.2.2 and 5.2.4 say,
 * the query is copied unchanged:
 *   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, other
 *     percent-encodings are kept with upper-case hex digits;
 *   - runs of '/' become one '/';
 *   - "." segments are removed and ".." segments remove the segment before them, on the
 *     decoded form ("%2e%2E" is ".."); an empty path becomes "/".
 * Refused (-400) because a backend could read the path differently from the route that was
 * matched: ".." above the root, a "." or ".." segment carrying parameters (";", "%3B": Tomcat
 * and others strip them and then resolve the dots), '\' (a separator on Windows servers),
 * '%2F', '%5C' (an encoded separator a backend may decode), the same and '.' encoded twice
 * ('%252e', '%252F', '%255C'), encoded control characters ('%00'-'%1F', '%7F'), a '%' not
 * followed by two hex digits, and anywhere (query included) a '#' or a byte that is not visible
 * ASCII.
 * The result is never longer than n + 1 bytes; out is NUL-terminated.
 * Returns its length, -400 as above, or -ENOSPC when cap < n + 2 (checked first: the work
 * space is the input's size whatever the result's). With out NULL only the checks are made:
 * 0 or -400.
 */
int http_path_normalize(const char *p, size_t n, char *out, size_t cap);

/*
 * http_target_normalize - what spliced routes a parsed request on and forwards as its path:
 * http_path_normalize() of m->path for origin-form and absolute-form targets (then never
 * -400: the parser checked it), "*" for asterisk-form, "" for CONNECT (authority-form has no
 * path). Returns the length written to out (NUL-terminated; m->path.len + 2 bytes, at most
 * HTTP_MAX_TARGET + 2, always suffice), or -ENOSPC.
 */
int http_target_normalize(const char *buf, const struct http_msg *m, char *out, size_t cap);

/*
 * http_upgrade_filter - the elements of m's Upgrade header lines whose protocol-name (before
 * any "/version", RFC 9110 7.8) is listed in @allow, any case, joined by ", " into out as the
 * value of the Upgrade header to forward (NUL-terminated).
 * @allow: protocol names separated by spaces or commas, e.g. "websocket h2c"; "" allows none.
 * *dropped (when not NULL) is set to the number of elements left out.
 * Returns the length written (0: nothing allowed, or no Upgrade header), or -ENOSPC.
 */
int http_upgrade_filter(const char *buf, const struct http_msg *m, const char *allow, char *out,
			size_t cap, unsigned *dropped);

/* http_reason - the reason phrase of a status code ("Not Found"; "Unknown" when none) */
const char *http_reason(int status);

/* What the proxy adds/replaces when it forwards a head. */
struct http_rewrite {
	const char *client_ip;	/* appended to X-Forwarded-For (requests) */
	const char *proto;	/* X-Forwarded-Proto value, "http" or "https" (requests) */
	const char *via;	/* Via value, e.g. "1.1 spliced" */
	const char *connection; /* value of the Connection header to send, or NULL for none */
	const char *upgrade;	/* value of the Upgrade header to send (http_upgrade_filter()),
				 * or NULL or "" for none */
	const char *path;	/* requests: the path to send (http_target_normalize()); NULL or
				 * "": the request-target as received */
	const char *set_cookie; /* responses: a Set-Cookie value added last (NULL or "": none) */
	int chunked;		/* responses: add "Transfer-Encoding: chunked" (a body that runs
				 * until close, re-framed by the proxy; the response has no
				 * Transfer-Encoding of its own) */
	const char *host;	/* requests: the Host value to send; NULL: m->host */
	/* header rules (rules.h): every line named by a set or del op is left out, then the
	 * set and add ops are written in order; an op on X-Forwarded-For, X-Forwarded-Proto or
	 * Via replaces what the proxy would add there */
	const struct http_hdr_op *ops;
	unsigned nops;
};

/* one header operation on a head being forwarded (value already expanded, no CR/LF/NUL) */
enum http_hdr_op_kind { HTTP_HDR_SET, HTTP_HDR_ADD, HTTP_HDR_DEL };
struct http_hdr_op {
	uint8_t op; /* enum http_hdr_op_kind */
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * http_rewrite_head - write the forwarded form of a parsed request or response head into out.
 * The start line: a request's with rw->path as its target when set (an absolute-form target
 * is thereby sent in origin-form), a response's unchanged. Then every header except hop-by-hop
 * ones (Connection and every header it names, Keep-Alive, Proxy-Connection, TE, Upgrade,
 * HTTP2-Settings; for requests also any existing X-Forwarded-Proto), in their order; a request's
 * Host line carries m->host (the authority of an absolute-form or CONNECT target replaces the
 * Host received, and is added after the start line when there was no Host line); a request's
 * Transfer-Encoding lines become one "Transfer-Encoding: chunked" (the parser accepted nothing
 * else, and "chunked," or "Chunked" might be read differently by the backend). Then
 * rw->client_ip appended to an existing X-Forwarded-For (or added), X-Forwarded-Proto
 * (requests, when rw->proto), Via (appended to an existing Via), "Upgrade: <rw->upgrade>" when
 * set, "Transfer-Encoding: chunked" for a response when rw->chunked, "Connection:
 * <rw->connection>" when set, "Set-Cookie: <rw->set_cookie>" when set, and the final CRLF.
 * HTTP2-Settings goes along
 * only with a request whose rw->upgrade lists h2c, and is then named in the Connection line too
 * (RFC 7540 3.2.1). Content-Length and a response's Transfer-Encoding are copied unchanged:
 * bodies are relayed with their own framing.
 * @is_request selects the request or response rules.
 * Returns the number of bytes written, or -ENOSPC when out is too small.
 */
int http_rewrite_head(const char *buf, const struct http_msg *m, int is_request,
		      const struct http_rewrite *rw, char *out, size_t cap);

#endif
