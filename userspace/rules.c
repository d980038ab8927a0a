// SPDX-License-Identifier: MIT
/*
 * rules.c - conditions, value templates and path rewriting of the request rule engine (see
 * rules.h). PCRE2 compiles every regex once at load, with its JIT where the machine has one;
 * matching uses one match data block per thread, made on first use.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

#define HOST_NAME_LIMIT 256

void rule_req_fill(struct rule_req *rq, const char *buf, const struct http_msg *m,
		   const char *target, size_t target_len, const char *host, const uint8_t *src)
{
	const char *q = target_len ? memchr(target, '?', target_len) : NULL;

	rq->buf = buf;
	rq->m = m;
	rq->host = host ? host : "";
	rq->host_len = strlen(rq->host);
	rq->path = target ? target : "";
	rq->path_len = q ? (size_t)(q - target) : target_len;
	rq->query = q ? q + 1 : "";
	rq->has_query = q != NULL;
	rq->query_len = q ? target_len - rq->path_len - 1 : 0;
	rq->src = src;
}

/* ---- regexes ---- */

/* a compiled regex: the code and whether its JIT code exists */
struct rule_regex {
	pcre2_code *code;
	int jit;
};

void *rule_regex_compile(const char *pattern, char *err, size_t errlen)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *re =
		pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);

	if (!re) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(err, errlen, "invalid regex '%s' at offset %zu: %s", pattern, (size_t)off,
			 (const char *)msg);
		return NULL;
	}
	{
		struct rule_regex *rr = malloc(sizeof(*rr));

		if (!rr) {
			pcre2_code_free(re);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		rr->code = re;
		/* no JIT on this machine (or no memory for it): the interpreter gives the same
		 * answers; with it, pcre2_jit_match skips the interpreter's checks per call */
		rr->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
		return rr;
	}
}

void rule_regex_free(void *re)
{
	struct rule_regex *rr = re;

	pcre2_code_free(rr->code);
	free(rr);
}

/* one match data block per thread: enough pairs for $0..$9 (more groups are matched, not
 * kept); freed when its thread exits */
static __thread pcre2_match_data *tls_md;
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *md)
{
	pcre2_match_data_free(md);
}

static void md_key_init(void)
{
	(void)pthread_key_create(&md_key, md_free);
}

int rule_regex_match(void *re, const char *s, size_t len, struct rule_caps *caps)
{
	PCRE2_SIZE *ov;
	int rc;

	if (!tls_md) {
		tls_md = pcre2_match_data_create(RULE_MAX_CAPS, NULL);
		if (!tls_md)
			return -1;
		pthread_once(&md_once, md_key_init);
		(void)pthread_setspecific(md_key, tls_md);
	}
	{
		const struct rule_regex *rr = re;

		rc = rr->jit ? pcre2_jit_match(rr->code, (PCRE2_SPTR)s, len, 0, 0, tls_md, NULL)
			     : pcre2_match(rr->code, (PCRE2_SPTR)s, len, 0, 0, tls_md, NULL);
	}
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc < 0)
		return -1;
	if (!caps)
		return 1;
	/* rc == 0: more groups than pairs; every pair is set */
	if (rc == 0 || rc > RULE_MAX_CAPS)
		rc = RULE_MAX_CAPS;
	ov = pcre2_get_ovector_pointer(tls_md);
	caps->base = s;
	caps->n = (unsigned)rc;
	for (int i = 0; i < 2 * rc; i++)
		caps->ov[i] = ov[i];
	return 1;
}

/* ---- addresses ---- */

int rule_cidr_parse(const char *s, struct rule_cidr *out)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long bits;
	int v4, maxbits;
	char *end;

	if (!alen || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof(*out));
	v4 = inet_pton(AF_INET, addr, out->addr + 12) == 1;
	if (v4) {
		out->addr[10] = out->addr[11] = 0xff;
	} else if (inet_pton(AF_INET6, addr, out->addr) != 1) {
		return -EINVAL;
	}
	maxbits = v4 ? 32 : 128;
	bits = (unsigned long)maxbits;
	if (slash) {
		if (!slash[1] || !isdigit((unsigned char)slash[1]))
			return -EINVAL;
		bits = strtoul(slash + 1, &end, 10);
		if (*end || bits > (unsigned long)maxbits)
			return -EINVAL;
	}
	out->bits = (uint8_t)(bits + (v4 ? 96 : 0));
	/* the network itself: bits past the prefix cleared, so "10.1.2.3/8" means 10.0.0.0/8 */
	for (unsigned i = out->bits; i < 128; i++)
		out->addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	return 0;
}

int rule_cidr_match(const struct rule_cidr *c, const uint8_t *a)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->addr, a, full))
		return 0;
	if (!rest)
		return 1;
	return ((a[full] ^ c->addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

static int cidr_contains(const struct rule_cidr *outer, const struct rule_cidr *inner)
{
	return outer->bits <= inner->bits && rule_cidr_match(outer, inner->addr);
}

int rule_acl_add(struct rule_acl *a, const struct rule_cidr *cidr, int deny, int line, int *shadow)
{
	struct rule_acl_entry *n;

	for (unsigned i = 0; i < a->n; i++) {
		if (cidr_contains(&a->e[i].cidr, cidr)) {
			*shadow = a->e[i].line;
			return -EEXIST;
		}
	}
	n = realloc(a->e, sizeof(*n) * (a->n + 1));
	if (!n)
		return -ENOMEM;
	a->e = n;
	n[a->n].cidr = *cidr;
	n[a->n].deny = (uint8_t)(deny != 0);
	n[a->n].line = line;
	n[a->n].hits = 0;
	a->n++;
	return 0;
}

enum rule_acl_verdict rule_acl_decide(const struct rule_acl *a, const uint8_t *addr, unsigned *idx)
{
	for (unsigned i = 0; i < a->n; i++) {
		if (!rule_cidr_match(&a->e[i].cidr, addr))
			continue;
		if (idx)
			*idx = i;
		return a->e[i].deny ? RULE_ACL_DENY : RULE_ACL_ALLOW;
	}
	return RULE_ACL_NONE;
}

void rule_cidr_format(const struct rule_cidr *c, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	int v4 = c->bits >= 96 && !memcmp(c->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);

	inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? c->addr + 12 : c->addr, a, sizeof(a));
	snprintf(out, cap, "%s/%u", a, c->bits - (v4 ? 96 : 0));
}

int rule_addr_of(const void *sockaddr, uint8_t out[16])
{
	const struct sockaddr *sa = sockaddr;

	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sockaddr)->sin6_addr, 16);
		return 0;
	}
	if (sa->sa_family != AF_INET)
		return -EAFNOSUPPORT;
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, &((const struct sockaddr_in *)sockaddr)->sin_addr, 4);
	return 0;
}

/* ---- query arguments ---- */

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* the next decoded byte of enc[*i..len) ('+' is a space, %XX a byte, a bad escape itself) */
static int next_decoded(const char *enc, size_t len, size_t *i)
{
	int c = (unsigned char)enc[*i];

	if (c == '+') {
		(*i)++;
		return ' ';
	}
	if (c == '%' && *i + 2 < len) {
		int h = hexval((unsigned char)enc[*i + 1]), l = hexval((unsigned char)enc[*i + 2]);

		if (h >= 0 && l >= 0) {
			*i += 3;
			return h * 16 + l;
		}
	}
	(*i)++;
	return c;
}

int rule_query_value_eq(const char *v, size_t vlen, const char *want, size_t wlen)
{
	size_t i = 0, k = 0;

	while (i < vlen) {
		if (k == wlen || next_decoded(v, vlen, &i) != (unsigned char)want[k])
			return 0;
		k++;
	}
	return k == wlen;
}

int rule_query_find(const char *q, size_t qlen, const char *name, size_t name_len, const char **val,
		    size_t *vlen)
{
	size_t pos = 0;

	while (pos <= qlen) {
		const char *amp = memchr(q + pos, '&', qlen - pos);
		size_t end = amp ? (size_t)(amp - q) : qlen;
		const char *eq = memchr(q + pos, '=', end - pos);
		size_t kend = eq ? (size_t)(eq - q) : end;

		if (end > pos && rule_query_value_eq(q + pos, kend - pos, name, name_len)) {
			*val = eq ? eq + 1 : q + end;
			*vlen = eq ? end - kend - 1 : 0;
			return 1;
		}
		if (!amp)
			break;
		pos = end + 1;
	}
	return 0;
}

/* ---- conditions ---- */

static int header_cond(const struct rule_cond *c, const struct rule_req *rq, struct rule_caps *caps)
{
	const struct http_msg *m = rq->m;

	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct http_hdr *h = &m->hdrs[i];
		const char *v = rq->buf + h->value.off;

		if (h->name.len != c->name_len ||
		    strncasecmp(rq->buf + h->name.off, c->name, c->name_len))
			continue;
		if (c->op == MATCH_PRESENT)
			return 1;
		if (c->op == MATCH_EXACT && h->value.len == c->value_len &&
		    !memcmp(v, c->value, c->value_len))
			return 1;
		if (c->op == MATCH_REGEX && rule_regex_match(c->re, v, h->value.len, caps) == 1)
			return 1;
	}
	return 0;
}

static int cond_holds(const struct rule_cond *c, const struct rule_req *rq, struct rule_caps *caps)
{
	const char *v;
	size_t vlen;

	switch (c->kind) {
	case COND_HOST:
		return rule_regex_match(c->re, rq->host, rq->host_len, caps) == 1;
	case COND_PATH:
		return rule_regex_match(c->re, rq->path, rq->path_len, caps) == 1;
	case COND_METHOD: {
		const char *ms = rq->buf + rq->m->method_s.off;
		size_t ml = rq->m->method_s.len;

		for (unsigned i = 0; i < c->nmethods; i++)
			if (strlen(c->methods[i]) == ml && !memcmp(c->methods[i], ms, ml))
				return 1;
		return 0;
	}
	case COND_HEADER:
		return header_cond(c, rq, caps);
	case COND_QUERY:
		if (!rule_query_find(rq->query, rq->query_len, c->name, c->name_len, &v, &vlen))
			return 0;
		return c->op == MATCH_PRESENT ||
		       rule_query_value_eq(v, vlen, c->value, c->value_len);
	case COND_SOURCE:
		if (!rq->src)
			return 0;
		for (unsigned i = 0; i < c->ncidrs; i++)
			if (rule_cidr_match(&c->cidrs[i], rq->src))
				return 1;
		return 0;
	}
	return 0;
}

void rule_cond_describe(const struct rule_cond *c, char *out, size_t cap)
{
	static const char *const kind[] = {"host", "path", "method", "header", "query", "source"};
	int n = snprintf(out, cap, "%s%s", c->negate ? "not " : "", kind[c->kind]);

	if (c->name && n >= 0 && (size_t)n < cap)
		n += snprintf(out + n, cap - (size_t)n, " %s", c->name);
	if (c->op == MATCH_EXACT && n >= 0 && (size_t)n < cap)
		n += snprintf(out + n, cap - (size_t)n, " %s", c->value);
	if (c->op == MATCH_REGEX && n >= 0 && (size_t)n < cap)
		n += snprintf(out + n, cap - (size_t)n, " ~%s", c->pattern ? c->pattern : "?");
	for (unsigned i = 0; i < c->nmethods && n >= 0 && (size_t)n < cap; i++)
		n += snprintf(out + n, cap - (size_t)n, " %s", c->methods[i]);
	for (unsigned i = 0; i < c->ncidrs && n >= 0 && (size_t)n < cap; i++) {
		char a[INET6_ADDRSTRLEN + 8];

		rule_cidr_format(&c->cidrs[i], a, sizeof(a));
		n += snprintf(out + n, cap - (size_t)n, " %s", a);
	}
}

int rule_conds_match(const struct rule_cond *c, unsigned n, const struct rule_req *rq,
		     struct rule_caps *caps)
{
	struct rule_caps tmp;

	caps->base = NULL;
	caps->n = 0;
	for (unsigned i = 0; i < n; i++) {
		/* a negated condition's captures mean nothing: it holds when nothing matched */
		struct rule_caps *cc = c[i].negate ? NULL : &tmp;
		int holds;

		tmp.base = NULL;
		holds = cond_holds(&c[i], rq, cc);
		if (holds == c[i].negate)
			return 0;
		if (cc && tmp.base)
			*caps = tmp;
	}
	return 1;
}

/* ---- templates ---- */

static const char *const var_names[VAR_MAX] = {
	[VAR_REMOTE_ADDR] = "remote_addr",
	[VAR_REMOTE_PORT] = "remote_port",
	[VAR_HOST] = "host",
	[VAR_METHOD] = "method",
	[VAR_URI] = "uri",
	[VAR_PATH] = "path",
	[VAR_ARGS] = "args",
	[VAR_REQUEST_URI] = "request_uri",
	[VAR_SCHEME] = "scheme",
	[VAR_REQUEST_ID] = "request_id",
	[VAR_SERVER_NAME] = "server_name",
	[VAR_POOL] = "pool",
	[VAR_SERVER] = "server",
	[VAR_LISTENER] = "listener",
	[VAR_ROUTE] = "route",
	[VAR_STATUS] = "status",
	[VAR_TIME_ISO8601] = "time_iso8601",
};

const char *rule_var_name(unsigned v)
{
	return v < VAR_MAX ? var_names[v] : "?";
}

static int var_char(int ch)
{
	return isalnum(ch) || ch == '_';
}

static int add_seg(struct tmpl *t, struct tmpl_seg s)
{
	struct tmpl_seg *n = realloc(t->segs, sizeof(*n) * (t->nsegs + 1));

	if (!n)
		return -ENOMEM;
	t->segs = n;
	t->segs[t->nsegs++] = s;
	return 0;
}

int tmpl_compile(const char *text, struct tmpl *t, char *err, size_t errlen)
{
	const char *p;
	char *lname;

	memset(t, 0, sizeof(*t));
	t->src = strdup(text);
	t->work = strdup(text); /* the segments point into this copy */
	if (!t->src || !t->work)
		goto nomem;
	for (p = t->work; *p;) {
		const char *s = p;

		if (*p != '$' || p[1] == '$') {
			/* text up to the next variable; "$$" is one '$' */
			if (*p == '$')
				s = ++p;
			p++;
			while (*p && *p != '$')
				p++;
			if (add_seg(t, (struct tmpl_seg){
					       .kind = SEG_TEXT, .s = s, .len = (size_t)(p - s)}))
				goto nomem;
			continue;
		}
		p++;
		{
			int braced = *p == '{';
			const char *name = p + braced;
			size_t len = 0;

			while (var_char((unsigned char)name[len]))
				len++;
			if (!len || (braced && name[len] != '}')) {
				snprintf(err, errlen, "'$' not followed by a variable name in '%s'",
					 text);
				goto inval;
			}
			p = name + len + braced;
			t->dynamic = 1;
			if (isdigit((unsigned char)name[0])) {
				if (len != 1 || name[0] == '0') {
					snprintf(err, errlen, "captures are $1 to $9, not $%.*s",
						 (int)len, name);
					goto inval;
				}
				if (add_seg(t, (struct tmpl_seg){.kind = SEG_CAPTURE,
								 .var = (uint8_t)(name[0] - '0')}))
					goto nomem;
				continue;
			}
			if (len > 5 && !strncmp(name, "http_", 5)) {
				/* $http_x_real_ip: the request header X-Real-IP */
				lname = (char *)name + 5;
				for (size_t i = 0; i < len - 5; i++)
					lname[i] = lname[i] == '_'
							   ? '-'
							   : (char)tolower((unsigned char)lname[i]);
				if (add_seg(t, (struct tmpl_seg){.kind = SEG_HEADER,
								 .s = lname,
								 .len = len - 5}))
					goto nomem;
				continue;
			}
			{
				unsigned v;

				for (v = 0; v < VAR_MAX; v++)
					if (strlen(var_names[v]) == len &&
					    !memcmp(var_names[v], name, len))
						break;
				if (v == VAR_MAX) {
					snprintf(err, errlen, "unknown variable '$%.*s'", (int)len,
						 name);
					goto inval;
				}
				t->vars |= 1u << v;
				if (add_seg(t,
					    (struct tmpl_seg){.kind = SEG_VAR, .var = (uint8_t)v}))
					goto nomem;
			}
		}
	}
	for (unsigned i = 0; i < t->nsegs; i++) {
		const struct tmpl_seg *s = &t->segs[i];

		if (s->kind == SEG_TEXT &&
		    (memchr(s->s, '\r', s->len) || memchr(s->s, '\n', s->len))) {
			snprintf(err, errlen, "a value may not hold CR or LF");
			goto inval;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
inval:
	tmpl_free(t);
	return -EINVAL;
}

void tmpl_free(struct tmpl *t)
{
	free(t->segs);
	free(t->src);
	free(t->work);
	memset(t, 0, sizeof(*t));
}

struct out {
	char *p;
	size_t len, cap;
	int full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

int tmpl_expand(const struct tmpl *t, const struct rule_vars *vars, const struct rule_req *rq,
		const struct rule_caps *caps, char *out, size_t cap)
{
	struct out o = {.p = out, .cap = cap};

	for (unsigned i = 0; i < t->nsegs; i++) {
		const struct tmpl_seg *s = &t->segs[i];

		switch (s->kind) {
		case SEG_TEXT:
			put(&o, s->s, s->len);
			break;
		case SEG_VAR:
			if (vars && vars->v[s->var])
				put(&o, vars->v[s->var], vars->len[s->var]);
			break;
		case SEG_CAPTURE:
			if (caps && caps->base && s->var < caps->n &&
			    caps->ov[2 * s->var] != (size_t)-1)
				put(&o, caps->base + caps->ov[2 * s->var],
				    caps->ov[2 * s->var + 1] - caps->ov[2 * s->var]);
			break;
		case SEG_HEADER: {
			int first = 1;

			for (unsigned h = 0; rq && rq->m && h < rq->m->nhdrs; h++) {
				const struct http_hdr *hd = &rq->m->hdrs[h];

				if (hd->name.len != s->len ||
				    strncasecmp(rq->buf + hd->name.off, s->s, s->len))
					continue;
				if (!first)
					put(&o, ", ", 2);
				put(&o, rq->buf + hd->value.off, hd->value.len);
				first = 0;
			}
			break;
		}
		}
	}
	if (o.full)
		return -ENOSPC;
	for (size_t i = 0; i < o.len; i++)
		if (out[i] == '\r' || out[i] == '\n' || out[i] == '\0')
			return -EBADMSG;
	return (int)o.len;
}

/* ---- actions ---- */

void rule_actions_init(struct rule_actions *a)
{
	memset(a, 0, sizeof(*a));
	a->request_id = -1;
	a->hide_set = -1;
}

void rule_actions_free(struct rule_actions *a)
{
	for (unsigned i = 0; i < a->nreq_hdr; i++) {
		free(a->req_hdr[i].name);
		tmpl_free(&a->req_hdr[i].value);
	}
	for (unsigned i = 0; i < a->nresp_hdr; i++) {
		free(a->resp_hdr[i].name);
		tmpl_free(&a->resp_hdr[i].value);
	}
	free(a->req_hdr);
	free(a->resp_hdr);
	if (a->rewrite_re)
		rule_regex_free(a->rewrite_re);
	tmpl_free(&a->rewrite_to);
	free(a->strip_prefix);
	tmpl_free(&a->ret_value);
	tmpl_free(&a->upstream_host);
	for (unsigned i = 0; i < a->npages; i++)
		free(a->pages[i].body);
	free(a->pages);
	free(a->acl.e);
	free(a->limits);
	for (unsigned i = 0; i < a->nmethods; i++)
		free(a->methods[i]);
	free(a->methods);
	rule_actions_init(a);
}

const char *rule_header_forbidden(const char *name, int is_request)
{
	static const char *const framing[] = {"content-length", "transfer-encoding", "connection",
					      "keep-alive",	"upgrade",	     "te",
					      "trailer",	"proxy-connection",  NULL};

	for (unsigned i = 0; framing[i]; i++)
		if (!strcasecmp(name, framing[i]))
			return "it frames the message or the connection (spliced sets it)";
	if (is_request && !strcasecmp(name, "host"))
		return "the Host sent upstream is set with upstream_host";
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127 ||
		    strchr("\"(),/:;<=>?@[\\]{}", *p))
			return "it is not a header name (a token)";
	return *name ? NULL : "it is empty";
}

int rule_host_valid(const char *s, size_t len)
{
	size_t i = 0, colon = len;

	if (!len || len >= HOST_NAME_LIMIT)
		return 0;
	if (s[0] == '[') {
		/* [IPv6] */
		while (i < len && s[i] != ']')
			if (!isxdigit((unsigned char)s[i]) && !strchr("[:.", s[i++]))
				return 0;
			else
				i += isxdigit((unsigned char)s[i]) ? 1 : 0;
		if (i >= len)
			return 0;
		i++;
		colon = i;
	} else {
		for (; i < len && s[i] != ':'; i++)
			if (!isalnum((unsigned char)s[i]) && !strchr("-._", s[i]))
				return 0;
		if (!i)
			return 0;
		colon = i;
	}
	if (colon == len)
		return 1;
	/* ":PORT", 1 to 5 digits */
	if (s[colon] != ':' || len - colon < 2 || len - colon > 6)
		return 0;
	for (i = colon + 1; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int rule_request_id_valid(const char *s, size_t len)
{
	if (!len || len > 128)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i]))
			return 0;
	return 1;
}

int rule_rewrite_path(const struct rule_actions *a, const struct rule_vars *vars,
		      const struct rule_req *rq, const char *path, size_t plen, const char *query,
		      size_t qlen, char *out, size_t cap)
{
	char tmp[HTTP_MAX_TARGET + 2], tmp2[HTTP_MAX_TARGET + 2];
	struct rule_caps caps;
	const char *p = path;
	size_t n = plen;
	int has_q = query != NULL, len;

	if (!a->strip_prefix && !a->rewrite_re)
		return 0;
	if (a->strip_prefix) {
		size_t sl = strlen(a->strip_prefix);

		/* "/api" strips "/api" and "/api/...", not "/apis" */
		if (n >= sl && !memcmp(p, a->strip_prefix, sl) && (n == sl || p[sl] == '/')) {
			p += sl;
			n -= sl;
		}
		if (!n) {
			p = "/";
			n = 1;
		}
	}
	if (a->rewrite_re && rule_regex_match(a->rewrite_re, p, n, &caps) == 1) {
		len = tmpl_expand(&a->rewrite_to, vars, rq, &caps, tmp, sizeof(tmp) - 1);
		if (len < 0)
			return len;
		tmp[len] = '\0';
		if (memchr(tmp, '?', (size_t)len))
			has_q = 0; /* the replacement gives the query */
		p = tmp;
		n = (size_t)len;
	}
	if (!n || p[0] != '/')
		return -EBADMSG;
	if (n + (has_q ? 1 + qlen : 0) + 1 > sizeof(tmp2))
		return -ENOSPC;
	memmove(tmp2, p, n);
	if (has_q) {
		tmp2[n++] = '?';
		memcpy(tmp2 + n, query, qlen);
		n += qlen;
	}
	/* what goes upstream is a target spliced itself would accept, in the form it forwards */
	len = http_path_normalize(tmp2, n, out, cap);
	if (len == -ENOSPC)
		return -ENOSPC;
	return len < 0 ? -EBADMSG : len;
}
