/* SPDX-License-Identifier: MIT */
/*
 * rules.h - the request rule engine: conditions that select a route, and the actions a route
 * (or its listener, as defaults) applies to the heads that pass through - header rules both
 * ways, path rewriting, answers without a backend, the Host sent upstream, request IDs, hidden
 * backend headers, error pages.
 *
 * Everything is compiled once when a configuration is loaded (regexes with PCRE2 and its JIT,
 * value templates into segments); evaluating a request head reads the parsed head in place and
 * writes only into buffers the caller owns, so the request path allocates nothing. Core layer:
 * no I/O, no threads (each thread that matches regexes gets its own match data once).
 */
#ifndef SPLICED_RULES_H
#define SPLICED_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* ---- what a request looks like to the rules (filled once per request head) ---- */

struct rule_req {
	const char *buf; /* the request head as received */
	const struct http_msg *m;
	const char *host; /* normalized Host (lower case, no port); "" none */
	size_t host_len;
	const char *path; /* normalized path, without the query */
	size_t path_len;
	const char *query; /* after '?', as received (may be empty) */
	size_t query_len;
	int has_query;	    /* the target had a '?' */
	const uint8_t *src; /* client address, 16 bytes (IPv4 as ::ffff:a.b.c.d); NULL: unknown */
};

/*
 * rule_req_fill - rq for a parsed request head: target is the normalized target (path and
 * query, http_target_normalize()), host the normalized Host (route_host_normalize(); NULL or
 * "" none), src the client's 16-byte address or NULL.
 */
void rule_req_fill(struct rule_req *rq, const char *buf, const struct http_msg *m,
		   const char *target, size_t target_len, const char *host, const uint8_t *src);

/* captures of the last regex condition that matched, for $1..$9 */
#define RULE_MAX_CAPS 10
struct rule_caps {
	const char *base; /* the subject the offsets are in; NULL: no captures */
	unsigned n;	  /* pairs set in ov ($0 included) */
	size_t ov[2 * RULE_MAX_CAPS];
};

/* ---- conditions (all of a route's must hold) ---- */

enum rule_cond_kind {
	COND_HOST, /* host ~REGEX (exact names and *.suffix stay in struct route) */
	COND_PATH, /* path ~REGEX */
	COND_METHOD,
	COND_HEADER,
	COND_QUERY,
	COND_SOURCE
};

enum rule_match_op {
	MATCH_PRESENT, /* header NAME; query NAME; */
	MATCH_EXACT,   /* header NAME VALUE; query NAME VALUE; (case-sensitive) */
	MATCH_REGEX    /* header NAME ~REGEX; host ~REGEX; path ~REGEX; */
};

struct rule_cidr {
	uint8_t addr[16]; /* network, IPv4 as ::ffff:a.b.c.d */
	uint8_t bits;	  /* prefix length in the 128-bit form */
};

struct rule_cond {
	uint8_t kind, op, negate;
	char *name; /* header (lower case) or query argument name */
	size_t name_len;
	char *value; /* MATCH_EXACT */
	size_t value_len;
	void *re;	/* MATCH_REGEX: pcre2_code (8-bit) */
	char *pattern;	/* MATCH_REGEX: as written */
	char **methods; /* COND_METHOD */
	unsigned nmethods;
	struct rule_cidr *cidrs; /* COND_SOURCE */
	unsigned ncidrs;
	int line;
};

/*
 * rule_conds_match - do all n conditions hold for rq? caps receives the captures of the last
 * regex condition that matched (caps->base NULL when none did). Returns 1 or 0.
 */
int rule_conds_match(const struct rule_cond *c, unsigned n, const struct rule_req *rq,
		     struct rule_caps *caps);

/* rule_cond_describe - c as the configuration would say it ("not header X-Debug") into out */
void rule_cond_describe(const struct rule_cond *c, char *out, size_t cap);

/* rule_cidr_parse - "203.0.113.0/24", "2001:db8::/32", "10.1.2.3" into out; 0 or -EINVAL */
int rule_cidr_parse(const char *s, struct rule_cidr *out);

/* rule_cidr_match - is the 16-byte address a inside c? */
int rule_cidr_match(const struct rule_cidr *c, const uint8_t *a);

/* ---- access lists: `allow CIDR...;` / `deny CIDR...;`, first match wins ---- */

enum rule_acl_verdict { RULE_ACL_NONE = 0, RULE_ACL_ALLOW, RULE_ACL_DENY };

struct rule_acl_entry {
	struct rule_cidr cidr;
	uint8_t deny;
	int line;
	uint64_t hits; /* connections or requests it decided (__atomic adds by the data plane) */
};

struct rule_acl {
	struct rule_acl_entry *e; /* in the file's order */
	unsigned n;
};

/*
 * rule_acl_add - append "allow|deny cidr" (deny set: deny) from line to a. An entry that can
 * never match (an earlier entry's prefix contains it) is refused: -EEXIST with *shadow set to
 * the line of that earlier entry. Because no entry shadows a later one, the longest matching
 * prefix is always the first match, which is what the kernel's LPM tries give (acl.bpf.c).
 * Returns 0, -EEXIST or -ENOMEM.
 */
int rule_acl_add(struct rule_acl *a, const struct rule_cidr *cidr, int deny, int line, int *shadow);

/* rule_acl_decide - the first entry of a that holds the 16-byte address: its verdict (and
 * its index in *idx unless idx is NULL), or RULE_ACL_NONE */
enum rule_acl_verdict rule_acl_decide(const struct rule_acl *a, const uint8_t *addr, unsigned *idx);

/* rule_cidr_format - c as written ("10.0.0.0/8", "2001:db8::/32") into out */
void rule_cidr_format(const struct rule_cidr *c, char *out, size_t cap);

/* rule_addr_of - the 16-byte form (IPv4 as ::ffff:a.b.c.d) of an AF_INET/AF_INET6 sockaddr;
 * 0, or -EAFNOSUPPORT */
int rule_addr_of(const void *sockaddr, uint8_t out[16]);

/* rule_regex_compile - PCRE2 with JIT; NULL and the reason in err when pattern is invalid */
void *rule_regex_compile(const char *pattern, char *err, size_t errlen);
void rule_regex_free(void *re);

/*
 * rule_regex_match - match re against s[0..len); captures into caps when it matches (caps may
 * be NULL). Returns 1, 0 (no match) or -1 (the matcher failed: counted as no match).
 */
int rule_regex_match(void *re, const char *s, size_t len, struct rule_caps *caps);

/* rule_query_find - the value of query argument name (decoded comparison of the name) in
 * q[0..qlen); val and vlen receive it still encoded. Returns 1 when present. */
int rule_query_find(const char *q, size_t qlen, const char *name, size_t name_len, const char **val,
		    size_t *vlen);

/* rule_query_value_eq - is the encoded value v[0..vlen) equal, once decoded ('+' is a space),
 * to want? */
int rule_query_value_eq(const char *v, size_t vlen, const char *want, size_t wlen);

/* ---- value templates: "text $var ${var} $http_x_name $1" ---- */

enum rule_var {
	VAR_REMOTE_ADDR,
	VAR_REMOTE_PORT,
	VAR_HOST,
	VAR_METHOD,
	VAR_URI,	 /* the path sent upstream (after rewrite), without the query */
	VAR_PATH,	 /* the normalized path as received, without the query */
	VAR_ARGS,	 /* the query, without '?' */
	VAR_REQUEST_URI, /* the target as received */
	VAR_SCHEME,
	VAR_REQUEST_ID,
	VAR_SERVER_NAME, /* TLS SNI, else $host */
	VAR_POOL,
	VAR_SERVER, /* empty until a server is picked (request headers are written before) */
	VAR_LISTENER,
	VAR_ROUTE,
	VAR_STATUS, /* response status; empty in request rules */
	VAR_TIME_ISO8601,
	VAR_MAX
};

enum tmpl_seg_kind { SEG_TEXT, SEG_VAR, SEG_HEADER, SEG_CAPTURE };

struct tmpl_seg {
	uint8_t kind;
	uint8_t var;   /* SEG_VAR: enum rule_var; SEG_CAPTURE: 1..9 */
	const char *s; /* SEG_TEXT: text; SEG_HEADER: lower-case header name */
	size_t len;
};

struct tmpl {
	char *src;  /* the template as written (owned) */
	char *work; /* its copy the segments point into (owned) */
	struct tmpl_seg *segs;
	unsigned nsegs;
	uint32_t vars;	 /* bit per enum rule_var used */
	uint8_t dynamic; /* anything but text */
};

/* variable values of one request, filled by the data plane (NULL: empty) */
struct rule_vars {
	const char *v[VAR_MAX];
	size_t len[VAR_MAX];
};

/*
 * tmpl_compile - parse text into t. A static text with CR, LF or NUL, an unknown variable or a
 * capture above $9 is an error (reason in err). 0 or -EINVAL.
 */
int tmpl_compile(const char *text, struct tmpl *t, char *err, size_t errlen);
void tmpl_free(struct tmpl *t);

/* rule_var_name - "remote_addr"... for enum rule_var v */
const char *rule_var_name(unsigned v);

/*
 * tmpl_expand - write t's value for this request into out[0..cap): variables from vars,
 * $http_NAME from rq's head (several lines joined with ", "), captures from caps. Returns the
 * length, -ENOSPC when it does not fit, or -EBADMSG when the value holds CR, LF or NUL (it must
 * never reach a head).
 */
int tmpl_expand(const struct tmpl *t, const struct rule_vars *vars, const struct rule_req *rq,
		const struct rule_caps *caps, char *out, size_t cap);

/* ---- actions ---- */

/* the kinds of http_hdr_op (http.h): HDR_SET, HDR_ADD, HDR_DEL */
#define HDR_SET HTTP_HDR_SET
#define HDR_ADD HTTP_HDR_ADD
#define HDR_DEL HTTP_HDR_DEL

struct hdr_rule {
	uint8_t op; /* enum hdr_op_kind */
	char *name; /* as written (sent like this) */
	size_t name_len;
	struct tmpl value;
	int line;
};

struct error_page {
	int code;
	char *body; /* the file's contents, read at load */
	size_t len;
	const char *type; /* Content-Type by the file's extension */
};

#define RULE_REQUEST_ID_HEADER "X-Request-ID"
#define RULE_HIDE_MAX 16

/* `limit conn N [key ...];` / `limit rate R/s burst B [key ...];` */
enum rule_limit_kind { LIMIT_CONN = 0, LIMIT_RATE };
enum rule_limit_key { LIMIT_KEY_SOURCE = 0, LIMIT_KEY_HEADER };

#define RULE_MAX_LIMITS 4 /* of each kind per block */

struct rule_limit {
	uint8_t kind;	   /* enum rule_limit_kind */
	uint8_t key;	   /* enum rule_limit_key */
	char header[64];   /* LIMIT_KEY_HEADER */
	uint32_t n;	   /* conn: most held at once; rate: requests per period_s */
	uint32_t period_s; /* rate: 1 (R/s) or 60 (R/m) */
	uint32_t burst;	   /* rate: requests that may come at once */
	uint64_t scope;	   /* which limit this is (its table keys), set when the block is loaded */
	int line;
};

/* what a listener (defaults for its routes) or a route does; unset fields inherit */
struct rule_actions {
	struct hdr_rule *req_hdr, *resp_hdr;
	unsigned nreq_hdr, nresp_hdr;
	void *rewrite_re; /* rewrite REGEX REPLACEMENT */
	struct tmpl rewrite_to;
	char *strip_prefix;
	int ret_code; /* return CODE [URL|TEXT]; 0: none */
	struct tmpl ret_value;
	uint8_t ret_has_value;
	uint8_t upstream_host_set; /* upstream_host NAME (1) | preserve (2) */
	struct tmpl upstream_host;
	int8_t request_id; /* -1 inherit, 0 off, 1 on */
	char request_id_header[64];
	int8_t hide_set; /* -1 inherit, else hide holds the list (0 names: off) */
	char hide[RULE_HIDE_MAX][64];
	unsigned nhide;
	struct error_page *pages;
	unsigned npages;
	uint32_t vars_used;  /* bit per enum rule_var any of its templates uses */
	struct rule_acl acl; /* allow/deny: a listener's at accept (TCP peer), a route's: 403 */
	char **methods;	     /* `methods`: others get 405 (a route's replaces its listener's) */
	unsigned nmethods;
	struct rule_limit *limits; /* a listener's act on its connections (conn) and requests
				    * (rate), a route's on its requests; both apply */
	unsigned nlimits;
	uint64_t max_body;    /* `max_body_size`: request body bytes (0: no limit) */
	uint8_t max_body_set; /* a route's replaces its listener's */
};

void rule_actions_init(struct rule_actions *a);
void rule_actions_free(struct rule_actions *a);

/*
 * rule_header_forbidden - headers rules may not touch because they frame the message or the
 * connection (Content-Length, Transfer-Encoding, Connection, ...; for requests also Host, which
 * upstream_host sets). Returns the reason, or NULL when name may be changed.
 */
const char *rule_header_forbidden(const char *name, int is_request);

/* rule_host_valid - a Host value a rule made: NAME or [IPv6], NAME of A-Za-z0-9 . - _, then
 * an optional :PORT of 1 to 5 digits */
int rule_host_valid(const char *s, size_t len);

/* rule_request_id_valid - an incoming ID kept as is: 1-128 of [A-Za-z0-9._:-] */
int rule_request_id_valid(const char *s, size_t len);

/*
 * rule_rewrite_path - the path to send upstream: strip_prefix, then rewrite (REGEX on the
 * path, REPLACEMENT expanded with its own captures; a '?' in the result replaces the query),
 * then the query as received unless replaced. path[0..plen) and query (NULL: none) in, out
 * receives "PATH[?QUERY]". Returns the length, 0 when neither action is set (send as is), or
 * -ENOSPC / -EBADMSG (a result that is not an absolute path or holds CR, LF, NUL, space, '#').
 */
int rule_rewrite_path(const struct rule_actions *a, const struct rule_vars *vars,
		      const struct rule_req *rq, const char *path, size_t plen, const char *query,
		      size_t qlen, char *out, size_t cap);

#endif
