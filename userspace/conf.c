// SPDX-License-Identifier: MIT
/*
 * conf.c - the configuration language (docs/CONFIG.md, docs/spliced.conf.5).
 *
 * Two passes: the text becomes a tree of statements (name, arguments, optional block), then the
 * tree is interpreted into struct config: through the keyword tables of conf_keywords.c, except
 * the listener and route blocks, which are parsed here. Both passes report every error they
 * find as FILE:LINE: message and keep going, so `spliced -n` lists all problems at once.
 * Loading reads only the file: TLS contexts are built by the preparing step (tls_prepare).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conf_keywords.h"
#include "http.h"
#include "lb.h"
#include "limit_table.h"

static void node_free(struct node *n)
{
	while (n) {
		struct node *next = n->next;

		free(n->name);
		for (int i = 0; i < n->nargs; i++)
			free(n->args[i]);
		node_free(n->child);
		free(n);
		n = next;
	}
}

enum tok { T_EOF, T_WORD, T_SEMI, T_OPEN, T_CLOSE, T_ERR };

/* the line that ends at p (a newline or the end of the text) is done: check its length */
static void line_done(struct parser *ps, const char *p)
{
	if (p - ps->line_start > CONF_MAX_LINE)
		perr(ps, ps->line, "line longer than %d bytes", CONF_MAX_LINE);
	ps->line_start = p + 1;
}

/* a word of len bytes starting at s: *word (malloc'd) and T_WORD, or T_ERR when reported */
static enum tok word(struct parser *ps, const char *s, size_t len, char **word)
{
	if (len >= CONF_MAX_TOKEN) {
		perr(ps, ps->line, "word longer than %d bytes", CONF_MAX_TOKEN - 1);
		return T_ERR;
	}
	*word = strndup(s, len);
	if (!*word) {
		perr(ps, ps->line, "out of memory");
		return T_ERR;
	}
	return T_WORD;
}

/* next token; *word is malloc'd for T_WORD */
static enum tok lex(struct parser *ps, char **w)
{
	const char *p = ps->p;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			if (*p == '\n') {
				line_done(ps, p);
				ps->line++;
			}
			p++;
		}
		if (*p == '#') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		break;
	}
	ps->p = p;
	if (!*p) {
		line_done(ps, p);
		return T_EOF;
	}
	if (*p == ';' || *p == '{' || *p == '}') {
		ps->p = p + 1;
		return *p == ';' ? T_SEMI : *p == '{' ? T_OPEN : T_CLOSE;
	}
	if (*p == '"') {
		const char *s = ++p;

		while (*p && *p != '"' && *p != '\n')
			p++;
		if (*p != '"') {
			perr(ps, ps->line, "unterminated quoted string");
			ps->p = p;
			return T_ERR;
		}
		ps->p = p + 1;
		return word(ps, s, (size_t)(p - s), w);
	}
	{
		const char *s = p;

		while (*p && !strchr(" \t\r\n;{}#\"", *p)) {
			if ((unsigned char)*p < 0x20) {
				perr(ps, ps->line, "control character in configuration");
				ps->p = p + 1;
				return T_ERR;
			}
			p++;
		}
		ps->p = p;
		return word(ps, s, (size_t)(p - s), w);
	}
}

/*
 * A block opened at open_line nests deeper than CONF_MAX_DEPTH: read past its closing '}'
 * without building anything (a loop, so no file can exhaust the stack).
 */
static void skip_block(struct parser *ps, int open_line)
{
	unsigned depth = 1;
	char *w = NULL;

	perr(ps, open_line, "blocks nested deeper than %d", CONF_MAX_DEPTH);
	while (depth) {
		enum tok t = lex(ps, &w);

		if (t == T_WORD) {
			free(w);
		} else if (t == T_OPEN) {
			depth++;
		} else if (t == T_CLOSE) {
			depth--;
		} else if (t == T_EOF) {
			perr(ps, open_line, "missing '}' for block opened here");
			return;
		}
	}
}

/* the statements of one block as they are read */
struct block {
	struct node *head, **tail;
	unsigned n;
};

/* append a complete statement, within CONF_MAX_BLOCK and CONF_MAX_STATEMENTS (else drop it) */
static void append(struct parser *ps, struct block *b, struct node *n)
{
	if (b->n >= CONF_MAX_BLOCK || ps->statements >= CONF_MAX_STATEMENTS) {
		if (b->n == CONF_MAX_BLOCK)
			perr(ps, n->line, "more than %d statements in one block", CONF_MAX_BLOCK);
		else if (ps->statements == CONF_MAX_STATEMENTS)
			perr(ps, n->line, "more than %d statements", CONF_MAX_STATEMENTS);
		/* counted on, so each limit is reported once */
		b->n++;
		ps->statements++;
		node_free(n);
		return;
	}
	b->n++;
	ps->statements++;
	*b->tail = n;
	b->tail = &n->next;
}

/* parse statements until '}' (depth > 0) or EOF (depth 0); depth <= CONF_MAX_DEPTH */
static struct node *parse_block(struct parser *ps, int depth, int open_line)
{
	struct block b = {.tail = &b.head};
	struct node *cur = NULL;
	char *w = NULL;

	for (;;) {
		enum tok t = lex(ps, &w);

		if (t == T_ERR)
			continue;
		if (t == T_EOF) {
			if (cur) {
				perr(ps, cur->line, "missing ';' after '%s'", cur->name);
				append(ps, &b, cur);
				cur = NULL;
			}
			if (depth > 0)
				perr(ps, open_line, "missing '}' for block opened here");
			return b.head;
		}
		if (t == T_WORD) {
			if (!cur) {
				cur = calloc(1, sizeof(*cur));
				if (!cur) {
					free(w);
					perr(ps, ps->line, "out of memory");
					return b.head;
				}
				cur->name = w;
				cur->line = ps->line;
			} else if (cur->nargs < CONF_MAX_ARGS) {
				cur->args[cur->nargs++] = w;
			} else {
				perr(ps, ps->line, "too many arguments to '%s'", cur->name);
				free(w);
			}
			continue;
		}
		if (t == T_SEMI) {
			if (!cur) {
				perr(ps, ps->line, "unexpected ';'");
				continue;
			}
			append(ps, &b, cur);
			cur = NULL;
			continue;
		}
		if (t == T_OPEN) {
			int line = ps->line;

			if (depth >= CONF_MAX_DEPTH) {
				skip_block(ps, line);
				node_free(cur);
				cur = NULL;
				continue;
			}
			if (!cur) {
				perr(ps, line, "block without a name");
				cur = calloc(1, sizeof(*cur));
				if (!cur || !(cur->name = strdup("?"))) {
					free(cur);
					return b.head;
				}
				cur->line = line;
			}
			cur->has_block = 1;
			cur->child = parse_block(ps, depth + 1, line);
			append(ps, &b, cur);
			cur = NULL;
			continue;
		}
		/* T_CLOSE */
		if (cur) {
			perr(ps, cur->line, "missing ';' after '%s'", cur->name);
			append(ps, &b, cur);
			cur = NULL;
		}
		if (depth == 0) {
			perr(ps, ps->line, "unexpected '}'");
			continue;
		}
		return b.head;
	}
}

int conf_parse_duration(const char *s, uint32_t *ms)
{
	char *end;
	unsigned long long v;
	unsigned long long mul;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		return -EINVAL;
	if (v > UINT32_MAX / mul)
		return -EINVAL;
	*ms = (uint32_t)(v * mul);
	return 0;
}

int conf_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (!*end)
		shift = 0;
	else if (!strcasecmp(end, "k"))
		shift = 10;
	else if (!strcasecmp(end, "m"))
		shift = 20;
	else if (!strcasecmp(end, "g"))
		shift = 30;
	else
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int conf_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int conf_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, int passive,
		    char *why, size_t whylen)
{
	char host[HOST_MAX_LEN];
	const char *port, *colon;
	struct addrinfo hints, *res = NULL;
	unsigned long portnum;
	int rc;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host)) {
			snprintf(why, whylen, "invalid address '%s' (expected [IPV6]:PORT)", s);
			return -EINVAL;
		}
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = '\0';
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host) ||
		    memchr(s, ':', (size_t)(colon - s))) {
			snprintf(why, whylen,
				 "invalid address '%s' (expected HOST:PORT or [IPV6]:PORT)", s);
			return -EINVAL;
		}
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port = colon + 1;
	}
	if (conf_parse_uint(port, 65535, &portnum) || (!passive && portnum == 0)) {
		snprintf(why, whylen, "invalid port in '%s'", s);
		return -EINVAL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (!strcmp(host, "*"))
		snprintf(host, sizeof(host), "0.0.0.0");
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc || !res) {
		snprintf(why, whylen, "cannot resolve '%s': %s", host,
			 rc ? gai_strerror(rc) : "no address");
		return -ENOENT;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct pool *conf_find_pool(struct config *cf, const char *name)
{
	for (unsigned i = 0; i < cf->npools; i++)
		if (!strcmp(cf->pools[i].name, name))
			return &cf->pools[i];
	return NULL;
}

static void conf_defaults(struct config *cf)
{
	snprintf(cf->pin_path, sizeof(cf->pin_path), "/sys/fs/bpf/spliced");
	cf->workers = 0;
	cf->timeout_header_ms = 10000;
	cf->timeout_idle_ms = 60000;
	cf->timeout_connect_ms = 3000;
	cf->timeout_server_ms = 60000;
	cf->timeout_client_ms = 60000;
	cf->timeout_tunnel_ms = 3600000;
	cf->max_header_size = 16384;
	cf->max_connections = 10000;
	cf->limit_table_size = LIMIT_TABLE_DEFAULT;
	cf->buffer_size = 32768;
	cf->pipe_size = 262144;
	cf->buffer_pool = 64;
	cf->fail_timeout_ms = 10000;
	cf->splice_cap = 4 << 20;
	cf->splice_min_body = SPLICE_MIN_BODY_OFF;
	cf->retries = 2;
	cf->drain_timeout_ms = 30000;
	cf->upgrade_timeout_ms = 30000;
}

/*
 * upgrade_protocols NAME...; | upgrade_protocols none; (listener and route): the protocols a
 * request may Upgrade to, stored lower case and space-separated for http_upgrade_filter().
 */
static void do_upgrade_protocols(struct parser *ps, struct node *n, char *dst, int *line)
{
	size_t len = 0;

	if (n->nargs < 1 || n->has_block) {
		perr(ps, n->line, "usage: upgrade_protocols NAME...; or upgrade_protocols none;");
		return;
	}
	dst[0] = '\0';
	*line = n->line;
	if (!strcmp(n->args[0], "none")) {
		if (n->nargs > 1)
			perr(ps, n->line, "'upgrade_protocols none' takes no other name");
		return;
	}
	for (int i = 0; i < n->nargs; i++) {
		const char *v = n->args[i];
		size_t vl = strlen(v);

		for (size_t k = 0; k < vl; k++) {
			if (!isalnum((unsigned char)v[k]) && !strchr("!#$%&'*+-.^_`|~", v[k])) {
				perr(ps, n->line,
				     "invalid protocol name '%s' (a token, without a /version)", v);
				return;
			}
		}
		if (len + (len ? 1 : 0) + vl >= UPGRADE_LIST_MAX) {
			perr(ps, n->line,
			     "upgrade_protocols: names longer than %d characters in all",
			     UPGRADE_LIST_MAX - 1);
			return;
		}
		if (len)
			dst[len++] = ' ';
		for (size_t k = 0; k < vl; k++)
			dst[len++] = (char)tolower((unsigned char)v[k]);
		dst[len] = '\0';
	}
}

/* path PREFIX (route): must be in the normalized form requests are matched in */
static void do_route_path(struct parser *ps, struct route *r, struct node *n)
{
	const char *v = n->args[0];
	char norm[HOST_MAX_LEN + 2];
	int len;

	if (v[0] != '/' || strlen(v) >= HOST_MAX_LEN) {
		perr(ps, n->line, "path prefix must start with '/'");
		return;
	}
	len = http_path_normalize(v, strlen(v), norm, sizeof(norm));
	if (len < 0) {
		perr(ps, n->line,
		     "path prefix '%s' never matches: requests with such a path are refused", v);
		return;
	}
	if (strcmp(norm, v)) {
		perr(ps, n->line,
		     "path prefix '%s' never matches: request paths are matched normalized, "
		     "write '%s'",
		     v, norm);
		return;
	}
	snprintf(r->path, sizeof(r->path), "%s", v);
}

/* host NAME...; (exact, *.suffix) or host ~REGEX; */
static int set_route_host(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct route *r = c->obj;

	(void)kw;
	if (av[0][0] == '~')
		return conf_route_regex(c, r, 0, av, ac);
	for (int i = 0; i < ac; i++) {
		char *h = av[i];

		if (r->nhosts >= MAX_ROUTE_HOSTS) {
			perr(c->ps, c->n->line, "too many hosts in one route (max %d)",
			     MAX_ROUTE_HOSTS);
			return -1;
		}
		if (strlen(h) >= HOST_MAX_LEN || !valid_host_pattern(h) ||
		    (h[0] != '[' && strchr(h, ':'))) {
			perr(c->ps, c->n->line, "invalid host '%s' (name, *.suffix or ~REGEX)", h);
			continue;
		}
		/* requests are matched without their port and trailing dot */
		for (char *p = h; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (strlen(h) > 1 && h[strlen(h) - 1] == '.')
			h[strlen(h) - 1] = '\0';
		snprintf(r->hosts[r->nhosts++], HOST_MAX_LEN, "%s", h);
	}
	return 0;
}

/* path PREFIX; or path ~REGEX; */
static int set_route_path(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	(void)kw;
	if (av[0][0] == '~')
		return conf_route_regex(c, c->obj, 1, av, ac);
	if (ac != 1) {
		perr(c->ps, c->n->line, "usage: path PREFIX; or path ~REGEX;");
		return -1;
	}
	do_route_path(c->ps, c->obj, c->n);
	return 0;
}

static int set_route_upgrade(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct route *r = c->obj;

	(void)kw;
	(void)av;
	(void)ac;
	do_upgrade_protocols(c->ps, c->n, r->upgrade_protocols, &r->upgrade_line);
	return 0;
}

static const struct conf_range name_range = {.hi = NAME_MAX_LEN};

static const struct conf_keyword route_keywords[] = {
	{"host", 1, CONF_MAX_ARGS, .args = "NAME...|~REGEX", .set = set_route_host},
	{"path", 1, 2, .args = "PREFIX|~REGEX", .set = set_route_path},
	{"pool", 1, 1, .args = "NAME", .set = conf_set_name,
	 .off = offsetof(struct route, pool_name), .range = &name_range},
	{"upgrade_protocols", 1, CONF_MAX_ARGS, .args = "NAME...|none", .set = set_route_upgrade},
	{.sub = conf_route_rules},
};

/* route [NAME] { ... } */
static int set_route(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct listener *l = c->obj;
	struct conf_ctx rc = *c;
	struct route *r, *nr;
	struct node *rn = c->n;

	(void)kw;
	nr = realloc(l->routes, sizeof(*l->routes) * (l->nroutes + 1));
	if (!nr) {
		perr(c->ps, rn->line, "out of memory");
		return -1;
	}
	l->routes = nr;
	r = &l->routes[l->nroutes++];
	memset(r, 0, sizeof(*r));
	rule_actions_init(&r->act);
	r->line = rn->line;
	if (ac == 1)
		copy_name(c->ps, rn, av[0], r->name, sizeof(r->name));
	else
		snprintf(r->name, sizeof(r->name), "#%u", l->nroutes);
	for (unsigned i = 0; ac == 1 && i + 1 < l->nroutes; i++)
		if (!strcmp(l->routes[i].name, r->name))
			perr(c->ps, rn->line, "duplicate route '%s' in listener '%s'", r->name,
			     l->name);
	rc.obj = r;
	rc.acts = &r->act;
	conf_block(&rc, route_keywords, rn->child, "route setting");
	if (!r->pool_name[0] && !r->act.ret_code)
		perr(c->ps, rn->line, "route has no 'pool' (nor a 'return')");
	return 0;
}

/* tls certificate FILE key FILE; | tls protocols V...; | tls ciphers LIST; |
 * tls ticket_rotate DURATION; */
static void do_listener_tls(struct parser *ps, struct listener *l, struct node *n)
{
	if (n->has_block || n->nargs < 2) {
		perr(ps, n->line,
		     "usage: tls certificate FILE key FILE; tls protocols TLSv1.2 "
		     "TLSv1.3; tls ciphers LIST; tls ticket_rotate DURATION;");
		return;
	}
	if (!strcmp(n->args[0], "certificate")) {
		struct tls_cert_conf *nc, *c;

		if (n->nargs != 4 || strcmp(n->args[2], "key")) {
			perr(ps, n->line, "usage: tls certificate FILE key FILE;");
			return;
		}
		if (strlen(n->args[1]) >= PATH_MAX || strlen(n->args[3]) >= PATH_MAX) {
			perr(ps, n->line, "path too long");
			return;
		}
		nc = realloc(l->certs, sizeof(*l->certs) * (l->ncerts + 1));
		if (!nc) {
			perr(ps, n->line, "out of memory");
			return;
		}
		l->certs = nc;
		c = &l->certs[l->ncerts++];
		memset(c, 0, sizeof(*c));
		snprintf(c->cert, sizeof(c->cert), "%s", n->args[1]);
		snprintf(c->key, sizeof(c->key), "%s", n->args[3]);
		c->line = n->line;
	} else if (!strcmp(n->args[0], "protocols")) {
		l->tls_min = l->tls_max = 0;
		for (int i = 1; i < n->nargs; i++) {
			int v = conf_parse_tls_version(n->args[i]);

			if (!v) {
				perr(ps, n->line, "unknown TLS protocol '%s' (TLSv1.2, TLSv1.3)",
				     n->args[i]);
				continue;
			}
			if (!l->tls_min || v < l->tls_min)
				l->tls_min = v;
			if (v > l->tls_max)
				l->tls_max = v;
		}
		l->tls_line = n->line;
	} else if (!strcmp(n->args[0], "ciphers")) {
		if (n->nargs != 2 || strlen(n->args[1]) >= sizeof(l->tls_ciphers)) {
			perr(ps, n->line,
			     "usage: tls ciphers LIST; (one argument, quoted if needed)");
			return;
		}
		snprintf(l->tls_ciphers, sizeof(l->tls_ciphers), "%s", n->args[1]);
		l->tls_line = n->line;
	} else if (!strcmp(n->args[0], "ticket_rotate")) {
		uint32_t ms;

		if (n->nargs != 2 || conf_parse_duration(n->args[1], &ms) || ms < 1000) {
			perr(ps, n->line,
			     "usage: tls ticket_rotate DURATION; (at least 1s, e.g. 1h)");
			return;
		}
		l->tls_ticket_rotate_ms = ms;
	} else {
		perr(ps, n->line,
		     "unknown tls setting '%s' (expected certificate, protocols, "
		     "ciphers, ticket_rotate)",
		     n->args[0]);
	}
}

static int set_bind(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct listener *l = c->obj;
	struct bind_addr *b;
	char why[256];

	(void)kw;
	(void)ac;
	if (l->nbinds >= MAX_BINDS) {
		perr(c->ps, c->n->line, "too many bind addresses (max %d)", MAX_BINDS);
		return -1;
	}
	b = &l->binds[l->nbinds];
	if (conf_parse_addr(av[0], &b->addr, &b->addrlen, 1, why, sizeof(why))) {
		perr(c->ps, c->n->line, "%s", why);
		return -1;
	}
	snprintf(b->str, sizeof(b->str), "%s", av[0]);
	b->line = c->n->line;
	l->nbinds++;
	return 0;
}

static int set_listener_tls(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	(void)kw;
	(void)av;
	(void)ac;
	do_listener_tls(c->ps, c->obj, c->n);
	return 0;
}

static int set_listener_upgrade(struct conf_ctx *c, const struct conf_keyword *kw, char **av,
				int ac)
{
	struct listener *l = c->obj;

	(void)kw;
	(void)av;
	(void)ac;
	do_upgrade_protocols(c->ps, c->n, l->upgrade_protocols, &l->upgrade_line);
	return 0;
}

static const struct conf_word underscore_modes[] = {
	{"drop", UNDERSCORE_DROP},
	{"reject", UNDERSCORE_REJECT},
	{"pass", UNDERSCORE_PASS},
	{NULL, 0},
};

static const struct conf_word splice_modes[] = {
	{"auto", SPLICE_AUTO},
	{"on", SPLICE_ON},
	{"off", SPLICE_OFF},
	{NULL, 0},
};

const struct conf_keyword conf_listener_keywords[] = {
	{"bind", 1, 1, .args = "ADDR:PORT", .set = set_bind},
	{"route", 0, 1, .block = 1, .args = "[NAME]", .set = set_route, .sub = route_keywords},
	{"tls", 2, 4, .args = "certificate|protocols|ciphers|ticket_rotate ...",
	 .set = set_listener_tls},
	{"splice", 1, 1, .set = conf_set_enum, .off = offsetof(struct listener, splice),
	 .words = splice_modes},
	{"upgrade_protocols", 1, CONF_MAX_ARGS, .args = "NAME...|none",
	 .set = set_listener_upgrade},
	{"max_uri_length", 1, 1, .args = "N", .set = conf_set_count,
	 .off = offsetof(struct listener, max_uri_length),
	 .range = &(const struct conf_range){.lo = 1, .hi = HTTP_MAX_TARGET}},
	{"max_headers", 1, 1, .args = "N", .set = conf_set_count,
	 .off = offsetof(struct listener, max_headers),
	 .range = &(const struct conf_range){.lo = 1, .hi = HTTP_MAX_HEADERS}},
	{"underscore_headers", 1, 1, .args = "drop|reject|pass", .set = conf_set_enum,
	 .off = offsetof(struct listener, underscore_headers), .words = underscore_modes},
	{.sub = conf_listener_rules},
};

/* the limits' table keys: by listener, route and position, so the same limit of a reloaded
 * configuration goes on with the counts it had */
static void set_limit_scopes(struct parser *ps, struct listener *l)
{
	char name[2 * NAME_MAX_LEN + 16];

	for (unsigned i = 0; i < l->act.nlimits; i++) {
		struct rule_limit *lim = &l->act.limits[i];

		if (lim->kind == LIMIT_CONN && lim->key != LIMIT_KEY_SOURCE)
			perr(ps, lim->line,
			     "a listener's 'limit conn' counts connections by source: 'key header' "
			     "is for routes (it counts requests)");
		snprintf(name, sizeof(name), "L %s %u", l->name, i);
		lim->scope = limit_key(0, name, strlen(name));
	}
	for (unsigned r = 0; r < l->nroutes; r++)
		for (unsigned i = 0; i < l->routes[r].act.nlimits; i++) {
			snprintf(name, sizeof(name), "R %s %s %u", l->name, l->routes[r].name, i);
			l->routes[r].act.limits[i].scope = limit_key(0, name, strlen(name));
		}
}

static void do_listener(struct parser *ps, struct config *cf, struct node *ln)
{
	struct conf_ctx c = {.ps = ps, .cf = cf};
	struct listener *l, *nl;

	if (!ln->has_block || ln->nargs != 1) {
		perr(ps, ln->line, "'listener' takes a name and a block: listener NAME { ... }");
		return;
	}
	nl = realloc(cf->listeners, sizeof(*cf->listeners) * (cf->nlisteners + 1));
	if (!nl) {
		perr(ps, ln->line, "out of memory");
		return;
	}
	cf->listeners = nl;
	l = &cf->listeners[cf->nlisteners++];
	memset(l, 0, sizeof(*l));
	rule_actions_init(&l->act);
	l->line = ln->line;
	copy_name(ps, ln, ln->args[0], l->name, sizeof(l->name));
	for (unsigned i = 0; i + 1 < cf->nlisteners; i++)
		if (!strcmp(cf->listeners[i].name, l->name))
			perr(ps, ln->line, "duplicate listener '%s' (first defined at line %d)",
			     l->name, cf->listeners[i].line);
	c.obj = l;
	c.acts = &l->act;
	conf_block(&c, conf_listener_keywords, ln->child, "listener setting");
	/* a route without its own list takes the listener's, wherever that statement stands */
	for (unsigned i = 0; i < l->nroutes; i++)
		if (!l->routes[i].upgrade_line)
			snprintf(l->routes[i].upgrade_protocols, UPGRADE_LIST_MAX, "%s",
				 l->upgrade_line ? l->upgrade_protocols : "websocket");
	set_limit_scopes(ps, l);
	if (!l->nbinds)
		perr(ps, ln->line, "listener '%s' has no 'bind'", l->name);
	if (!l->nroutes)
		perr(ps, ln->line, "listener '%s' has no 'route'", l->name);
}

/*
 * Balancer units per unit of configured weight. Slow start ramps from a tenth of the weight, so
 * a pool with slow_start gets 10 units per weight unit (weight 1 could not ramp otherwise;
 * HAProxy scales by 16 for the same reason). A hash ring costs LB_VNODES_PER_WEIGHT points per
 * unit, so the scale shrinks to keep the ring within 2^21 points.
 */
static unsigned pool_weight_scale(const struct pool *p)
{
	uint64_t sum = 0;
	unsigned scale = p->slow_start_ms ? 10 : 1;

	if (scale == 1 || p->algo != LB_HASH)
		return scale;
	for (unsigned i = 0; i < p->nservers; i++)
		sum += p->servers[i].weight;
	while (scale > 1 && sum * scale * LB_VNODES_PER_WEIGHT > (1u << 21))
		scale--;
	return scale;
}

/* the `sticky cookie` value naming sv: opaque (never its address), the same in every process
 * and after a restart, so a client keeps its server across both */
static void server_cookie(const struct pool *p, struct server *sv)
{
	char id[2 * NAME_MAX_LEN + 1];
	int n = snprintf(id, sizeof(id), "%s/%s", p->name, sv->name);

	snprintf(sv->cookie, sizeof(sv->cookie), "%016llx",
		 (unsigned long long)lb_hash(id, n > 0 ? (size_t)n : 0));
}

static uint16_t bind_port(const struct bind_addr *b)
{
	if (b->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&b->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&b->addr)->sin_port);
}

/*
 * A listener's allow/deny is enforced in the kernel per listening port (acl.bpf.c keys its
 * lists by it): two listeners on one port (different addresses) cannot have different lists,
 * and a list needs a port that is known.
 */
static void check_acl_ports(struct parser *ps, struct config *cf)
{
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		const struct listener *l = &cf->listeners[i];

		for (unsigned b = 0; b < l->nbinds; b++) {
			uint16_t port = bind_port(&l->binds[b]);

			if (l->act.acl.n && !port) {
				perr(ps, l->binds[b].line,
				     "listener '%s' has allow/deny: bind it to a fixed port",
				     l->name);
				continue;
			}
			for (unsigned j = 0; j < i; j++) {
				const struct listener *o = &cf->listeners[j];

				if (!l->act.acl.n && !o->act.acl.n)
					continue;
				for (unsigned k = 0; k < o->nbinds; k++)
					if (bind_port(&o->binds[k]) == port)
						perr(ps, l->binds[b].line,
						     "listeners '%s' and '%s' share port %u: allow/deny "
						     "act per port, so only one listener on a port may "
						     "have them",
						     o->name, l->name, port);
			}
		}
	}
}

/* resolve references, apply inherited defaults, build balancers and the server table */
static void conf_link(struct parser *ps, struct config *cf)
{
	unsigned total = 0;

	check_acl_ports(ps, cf);
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener *l = &cf->listeners[i];

		for (unsigned r = 0; r < l->nroutes; r++) {
			struct route *rt = &l->routes[r];

			if (!rt->pool_name[0])
				continue;
			rt->pool = conf_find_pool(cf, rt->pool_name);
			if (!rt->pool)
				perr(ps, rt->line, "route refers to unknown pool '%s'",
				     rt->pool_name);
			else
				rt->pool->used = 1;
		}
		/* two listeners on one address would silently share it via SO_REUSEPORT */
		for (unsigned b = 0; b < l->nbinds; b++)
			for (unsigned j = 0; j <= i; j++)
				for (unsigned c = 0; c < cf->listeners[j].nbinds; c++) {
					struct bind_addr *x = &l->binds[b], *y;

					y = &cf->listeners[j].binds[c];
					if ((j == i && c >= b) || x->addrlen != y->addrlen ||
					    memcmp(&x->addr, &y->addr, x->addrlen))
						continue;
					perr(ps, x->line, "address %s is already bound at line %d",
					     x->str, y->line);
				}
	}
	for (unsigned i = 0; i < cf->npools; i++) {
		struct pool *p = &cf->pools[i];

		if (!p->connect_timeout_ms)
			p->connect_timeout_ms = cf->timeout_connect_ms;
		if (!p->timeout_server_ms)
			p->timeout_server_ms = cf->timeout_server_ms;
		if (!p->timeout_client_ms)
			p->timeout_client_ms = cf->timeout_client_ms;
		/* HAProxy's default for `timeout queue`: the connect timeout */
		if (!p->queue_timeout_ms)
			p->queue_timeout_ms = p->connect_timeout_ms;
		if (!p->fail_timeout_ms)
			p->fail_timeout_ms = cf->fail_timeout_ms;
		if (p->retries == (unsigned)-1)
			p->retries = cf->retries;
		total += p->nservers;
	}
	if (!cf->nlisteners)
		perr(ps, 1, "no 'listener' defined");
	if (ps->errors)
		return;
	cf->servers = calloc(total ? total : 1, sizeof(*cf->servers));
	if (!cf->servers) {
		perr(ps, 1, "out of memory");
		return;
	}
	for (unsigned i = 0; i < cf->npools; i++) {
		struct pool *p = &cf->pools[i];
		uint32_t *w = calloc(p->nservers, sizeof(*w));
		uint8_t *bk = calloc(p->nservers, sizeof(*bk));
		const char **names = calloc(p->nservers, sizeof(*names));
		int rc = -ENOMEM;

		p->weight_scale = pool_weight_scale(p);
		if (w && bk && names) {
			for (unsigned s = 0; s < p->nservers; s++) {
				struct server *sv = &p->servers[s];

				/* health.c keeps the balancer weight in step with the state from
				 * here on; maintenance servers start out of rotation */
				if (sv->maintenance) {
					atomic_store(&sv->h.state, SRV_MAINT);
					sv->h.admin = SRV_ADMIN_MAINT;
				}
				sv->h.last_ok = -1;
				sv->h.lb_weight =
					sv->maintenance ? 0 : sv->weight * p->weight_scale;
				w[s] = sv->h.lb_weight;
				bk[s] = sv->backup;
				names[s] = sv->name;
				server_cookie(p, sv);
				sv->pool = p;
				sv->id = cf->nservers;
				cf->servers[cf->nservers++] = sv;
			}
			rc = lb_init(&p->lb, p->algo, p->nservers, w, bk, names);
		}
		if (rc)
			perr(ps, p->line, "cannot set up balancer for pool '%s': %s", p->name,
			     strerror(-rc));
		else
			p->lb_ready = 1;
		free(w);
		free(bk);
		free(names);
	}
}

/* the statement n, its block included, as configuration text at indentation depth */
static void node_write(FILE *f, const struct node *n, int depth)
{
	fprintf(f, "%*s", depth * 4, "");
	conf_put_word(f, n->name);
	for (int i = 0; i < n->nargs; i++) {
		fputc(' ', f);
		conf_put_word(f, n->args[i]);
	}
	if (!n->has_block) {
		fputs(";\n", f);
		return;
	}
	fputs(" {\n", f);
	for (const struct node *k = n->child; k; k = k->next)
		node_write(f, k, depth + 1);
	fprintf(f, "%*s}\n", depth * 4, "");
}

/* listener NAME { ... }: the `listener` row of conf_sections */
int conf_set_listener(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	unsigned before = c->cf->nlisteners;
	size_t len = 0;
	FILE *f;

	(void)kw;
	(void)av;
	(void)ac;
	/* every bind is compared with every other one (conf_link) */
	if (c->ps->listeners >= CONF_MAX_LISTENERS) {
		if (c->ps->listeners++ == CONF_MAX_LISTENERS) /* reported once */
			perr(c->ps, c->n->line, "more than %d listeners", CONF_MAX_LISTENERS);
		return -1;
	}
	c->ps->listeners++;
	do_listener(c->ps, c->cf, c->n);
	if (c->cf->nlisteners == before)
		return 0;
	/* kept as written for conf_print: listener blocks have few defaults, many forms */
	f = open_memstream(&c->cf->listeners[before].text, &len);
	if (!f) {
		perr(c->ps, c->n->line, "out of memory");
		return -1;
	}
	node_write(f, c->n, 0);
	if (fclose(f))
		perr(c->ps, c->n->line, "out of memory");
	return 0;
}

void conf_print_listener(FILE *f, const struct listener *l)
{
	fputs(l->text ? l->text : "", f);
}

struct config *conf_load_string(const char *name, const char *text, FILE *errf)
{
	struct parser ps = {.file = name, .p = text, .line_start = text, .line = 1, .errf = errf};
	struct config *cf = calloc(1, sizeof(*cf));
	struct conf_ctx c = {.ps = &ps, .cf = cf, .obj = cf};
	struct node *root;

	if (!cf) {
		if (errf)
			fprintf(errf, "%s: out of memory\n", name);
		return NULL;
	}
	conf_defaults(cf);
	snprintf(cf->file, sizeof(cf->file), "%s", name);
	if (strnlen(text, CONF_MAX_FILE + 1) > CONF_MAX_FILE) {
		perr(&ps, 1, "larger than %d MiB", CONF_MAX_FILE >> 20);
		conf_free(cf);
		return NULL;
	}
	root = parse_block(&ps, 0, 0);
	conf_block(&c, conf_sections, root, "top-level section");
	node_free(root);
	/* link even after errors: unknown pools and duplicate binds are reported too */
	conf_link(&ps, cf);
	if (cf->buffer_size < cf->max_header_size + 1024)
		cf->buffer_size = cf->max_header_size + 1024;
	if (ps.errors) {
		conf_free(cf);
		return NULL;
	}
	return cf;
}

struct config *conf_load(const char *path, FILE *errf)
{
	FILE *f = fopen(path, "r");
	struct config *cf;
	char *text;
	long len;

	if (!f) {
		if (errf)
			fprintf(errf, "%s: cannot open: %s\n", path, strerror(errno));
		return NULL;
	}
	{
		struct stat st;

		/* anyone who can write it can run code as this daemon: refuse */
		if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IWOTH)) {
			if (errf)
				fprintf(errf,
					"%s: writable by every user (mode %04o): refusing it; "
					"chmod o-w\n",
					path, (unsigned)(st.st_mode & 07777));
			fclose(f);
			return NULL;
		}
	}
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		if (errf)
			fprintf(errf, "%s: cannot read: %s\n", path, strerror(errno));
		fclose(f);
		return NULL;
	}
	if (len > CONF_MAX_FILE) {
		if (errf)
			fprintf(errf, "%s:1: larger than %d MiB\n", path, CONF_MAX_FILE >> 20);
		fclose(f);
		return NULL;
	}
	text = malloc((size_t)len + 1);
	if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
		if (errf)
			fprintf(errf, "%s: cannot read: %s\n", path, strerror(errno));
		free(text);
		fclose(f);
		return NULL;
	}
	text[len] = '\0';
	fclose(f);
	if (memchr(text, '\0', (size_t)len)) {
		if (errf)
			fprintf(errf, "%s:1: NUL byte in configuration\n", path);
		free(text);
		return NULL;
	}
	cf = conf_load_string(path, text, errf);
	free(text);
	return cf;
}

void conf_free(struct config *cf)
{
	if (!cf)
		return;
	if (cf->release)
		cf->release(cf);
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener *l = &cf->listeners[i];

		for (unsigned k = 0; k < l->nroutes; k++)
			route_rules_free(&l->routes[k]);
		rule_actions_free(&l->act);
		free(l->routes);
		free(l->certs);
		free(l->text);
	}
	free(cf->listeners);
	for (unsigned i = 0; i < cf->npools; i++) {
		if (cf->pools[i].lb_ready)
			lb_free(&cf->pools[i].lb);
		free(cf->pools[i].servers);
	}
	free(cf->pools);
	free(cf->servers);
	free(cf);
}

void conf_ref(struct config *cf)
{
	atomic_fetch_add(&cf->refs, 1);
}

void conf_unref(struct config *cf)
{
	if (atomic_fetch_sub(&cf->refs, 1) == 1)
		conf_free(cf);
}
