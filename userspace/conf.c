// SPDX-License-Identifier: MIT
/*
 * conf.c - the configuration language (DESIGN.md section 3).
 *
 * Two passes: the text becomes a tree of statements (name, arguments, optional block), then the
 * tree is interpreted into struct config. Both passes report every error they find as
 * FILE:LINE: message and keep going, so `spliced -n` lists all problems at once.
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
#include "http.h"
#include "lb.h"
#include "tls.h"

#define MAX_ARGS 16

struct node {
	char *name;
	char *args[MAX_ARGS];
	int nargs;
	int line;
	int has_block;
	struct node *child; /* first statement of the block */
	struct node *next;
};

struct parser {
	const char *file;
	const char *p;
	int line;
	FILE *errf;
	int errors;
};

static void perr(struct parser *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void perr(struct parser *ps, int line, const char *fmt, ...)
{
	va_list ap;

	ps->errors++;
	if (!ps->errf)
		return;
	fprintf(ps->errf, "%s:%d: ", ps->file, line);
	va_start(ap, fmt);
	vfprintf(ps->errf, fmt, ap);
	va_end(ap);
	fputc('\n', ps->errf);
}

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

/* next token; *word is malloc'd for T_WORD */
static enum tok lex(struct parser *ps, char **word)
{
	const char *p = ps->p;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			if (*p == '\n')
				ps->line++;
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
	if (!*p)
		return T_EOF;
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
		*word = strndup(s, (size_t)(p - s));
		ps->p = p + 1;
		return T_WORD;
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
		*word = strndup(s, (size_t)(p - s));
		ps->p = p;
		return T_WORD;
	}
}

/* parse statements until '}' (depth > 0) or EOF (depth 0) */
static struct node *parse_block(struct parser *ps, int depth, int open_line)
{
	struct node *head = NULL, **tail = &head, *cur = NULL;
	char *w = NULL;

	for (;;) {
		enum tok t = lex(ps, &w);

		if (t == T_ERR)
			continue;
		if (t == T_EOF) {
			if (cur) {
				perr(ps, cur->line, "missing ';' after '%s'", cur->name);
				*tail = cur;
				cur = NULL;
			}
			if (depth > 0)
				perr(ps, open_line, "missing '}' for block opened here");
			return head;
		}
		if (t == T_WORD) {
			if (!cur) {
				cur = calloc(1, sizeof(*cur));
				if (!cur) {
					free(w);
					perr(ps, ps->line, "out of memory");
					return head;
				}
				cur->name = w;
				cur->line = ps->line;
			} else if (cur->nargs < MAX_ARGS) {
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
			*tail = cur;
			tail = &cur->next;
			cur = NULL;
			continue;
		}
		if (t == T_OPEN) {
			int line = ps->line;

			if (!cur) {
				perr(ps, line, "block without a name");
				cur = calloc(1, sizeof(*cur));
				if (!cur)
					return head;
				cur->name = strdup("?");
				cur->line = line;
			}
			cur->has_block = 1;
			cur->child = parse_block(ps, depth + 1, line);
			*tail = cur;
			tail = &cur->next;
			cur = NULL;
			continue;
		}
		/* T_CLOSE */
		if (cur) {
			perr(ps, cur->line, "missing ';' after '%s'", cur->name);
			*tail = cur;
			tail = &cur->next;
			cur = NULL;
		}
		if (depth == 0) {
			perr(ps, ps->line, "unexpected '}'");
			continue;
		}
		return head;
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

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
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
	if (parse_uint(port, 65535, &portnum) || (!passive && portnum == 0)) {
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
	cf->buffer_size = 32768;
	cf->pipe_size = 262144;
	cf->fail_timeout_ms = 10000;
	cf->splice_cap = 4 << 20;
	cf->splice_min_body = SPLICE_MIN_BODY_OFF;
	cf->retries = 2;
	cf->drain_timeout_ms = 30000;
	cf->upgrade_timeout_ms = 30000;
}

static int want_args(struct parser *ps, struct node *n, int lo, int hi)
{
	if (n->nargs < lo || n->nargs > hi) {
		if (lo == hi)
			perr(ps, n->line, "'%s' takes %d argument%s", n->name, lo,
			     lo == 1 ? "" : "s");
		else
			perr(ps, n->line, "'%s' takes %d to %d arguments", n->name, lo, hi);
		return -1;
	}
	if (n->has_block) {
		perr(ps, n->line, "'%s' does not take a block", n->name);
		return -1;
	}
	return 0;
}

static void set_duration(struct parser *ps, struct node *n, const char *v, uint32_t *out)
{
	if (conf_parse_duration(v, out))
		perr(ps, n->line, "invalid duration '%s' (examples: 500ms, 10s, 2m, 1h)", v);
}

static void set_size(struct parser *ps, struct node *n, const char *v, uint64_t lo, uint64_t hi,
		     uint32_t *out)
{
	uint64_t s;

	if (conf_parse_size(v, &s) || s < lo || s > hi) {
		perr(ps, n->line, "invalid size '%s' for '%s' (%llu to %llu; k, m, g allowed)", v,
		     n->name, (unsigned long long)lo, (unsigned long long)hi);
		return;
	}
	*out = (uint32_t)s;
}

static void set_uint(struct parser *ps, struct node *n, const char *v, unsigned long lo,
		     unsigned long hi, unsigned *out)
{
	unsigned long x;

	if (parse_uint(v, hi, &x) || x < lo) {
		perr(ps, n->line, "invalid number '%s' for '%s' (%lu to %lu)", v, n->name, lo, hi);
		return;
	}
	*out = (unsigned)x;
}

static int copy_name(struct parser *ps, struct node *n, const char *v, char *dst, size_t cap)
{
	size_t len = strlen(v);

	if (!len || len >= cap) {
		perr(ps, n->line, "name '%s' is empty or longer than %zu characters", v, cap - 1);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)v[i]) && !strchr("-_.", v[i])) {
			perr(ps, n->line, "invalid character '%c' in name '%s'", v[i], v);
			return -1;
		}
	}
	memcpy(dst, v, len + 1);
	return 0;
}

/* timeout KIND DURATION (global) */
static void do_timeout(struct parser *ps, struct config *cf, struct node *n)
{
	static const struct {
		const char *kind;
		size_t off;
	} kinds[] = {
		{"header", offsetof(struct config, timeout_header_ms)},
		{"idle", offsetof(struct config, timeout_idle_ms)},
		{"connect", offsetof(struct config, timeout_connect_ms)},
		{"server", offsetof(struct config, timeout_server_ms)},
		{"client", offsetof(struct config, timeout_client_ms)},
		{"tunnel", offsetof(struct config, timeout_tunnel_ms)},
	};

	if (want_args(ps, n, 2, 2))
		return;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (!strcmp(n->args[0], kinds[i].kind)) {
			uint32_t *p = (uint32_t *)((char *)cf + kinds[i].off);

			set_duration(ps, n, n->args[1], p);
			if (*p == 0)
				perr(ps, n->line, "timeout %s must be greater than 0",
				     kinds[i].kind);
			return;
		}
	}
	perr(ps, n->line,
	     "unknown timeout '%s' (expected header, idle, connect, server, client or tunnel)",
	     n->args[0]);
}

static void do_global(struct parser *ps, struct config *cf, struct node *blk)
{
	for (struct node *n = blk; n; n = n->next) {
		uint64_t sz;

		if (!strcmp(n->name, "pin_path")) {
			if (want_args(ps, n, 1, 1))
				continue;
			if (n->args[0][0] != '/' || strlen(n->args[0]) >= sizeof(cf->pin_path) - 64)
				perr(ps, n->line, "pin_path must be an absolute path");
			else
				snprintf(cf->pin_path, sizeof(cf->pin_path), "%s", n->args[0]);
		} else if (!strcmp(n->name, "access_log")) {
			if (want_args(ps, n, 1, 1))
				continue;
			snprintf(cf->access_log, sizeof(cf->access_log), "%s", n->args[0]);
		} else if (!strcmp(n->name, "workers")) {
			if (!want_args(ps, n, 1, 1)) {
				if (!strcmp(n->args[0], "auto"))
					cf->workers = 0;
				else
					set_uint(ps, n, n->args[0], 1, 256, &cf->workers);
			}
		} else if (!strcmp(n->name, "timeout")) {
			do_timeout(ps, cf, n);
		} else if (!strcmp(n->name, "max_header_size")) {
			if (!want_args(ps, n, 1, 1))
				set_size(ps, n, n->args[0], 1024, 1 << 20, &cf->max_header_size);
		} else if (!strcmp(n->name, "max_connections")) {
			if (!want_args(ps, n, 1, 1))
				set_uint(ps, n, n->args[0], 1, 10000000, &cf->max_connections);
		} else if (!strcmp(n->name, "buffer_size")) {
			if (!want_args(ps, n, 1, 1))
				set_size(ps, n, n->args[0], 4096, 16 << 20, &cf->buffer_size);
		} else if (!strcmp(n->name, "pipe_size")) {
			if (!want_args(ps, n, 1, 1))
				set_size(ps, n, n->args[0], 4096, 1 << 20, &cf->pipe_size);
		} else if (!strcmp(n->name, "splice_cap")) {
			uint64_t v;

			if (want_args(ps, n, 1, 1))
				continue;
			if (conf_parse_size(n->args[0], &v) || v < 65536 || v > (1ULL << 40))
				perr(ps, n->line,
				     "invalid size '%s' for 'splice_cap' (64k to 1024g)",
				     n->args[0]);
			else
				cf->splice_cap = v;
		} else if (!strcmp(n->name, "splice_min_body")) {
			uint64_t v;

			if (want_args(ps, n, 1, 1))
				continue;
			if (!strcmp(n->args[0], "off"))
				cf->splice_min_body = SPLICE_MIN_BODY_OFF;
			else if (conf_parse_size(n->args[0], &v) || v > (1ULL << 40))
				perr(ps, n->line,
				     "invalid size '%s' for 'splice_min_body' (0 to 1024g, or off)",
				     n->args[0]);
			else
				cf->splice_min_body = v;
		} else if (!strcmp(n->name, "retries")) {
			if (!want_args(ps, n, 1, 1))
				set_uint(ps, n, n->args[0], 0, 100, &cf->retries);
		} else if (!strcmp(n->name, "fail_timeout")) {
			if (!want_args(ps, n, 1, 1))
				set_duration(ps, n, n->args[0], &cf->fail_timeout_ms);
		} else if (!strcmp(n->name, "control")) {
			if (want_args(ps, n, 1, 1))
				continue;
			if (n->args[0][0] != '/' || strlen(n->args[0]) >= 108)
				perr(ps, n->line,
				     "control must be an absolute path shorter than 108 bytes");
			else
				snprintf(cf->control, sizeof(cf->control), "%s", n->args[0]);
		} else if (!strcmp(n->name, "metrics")) {
			char why[128];

			if (want_args(ps, n, 1, 1))
				continue;
			if (strlen(n->args[0]) >= sizeof(cf->metrics) ||
			    conf_parse_addr(n->args[0], &cf->metrics_addr, &cf->metrics_addrlen, 1,
					    why, sizeof(why)))
				perr(ps, n->line, "invalid metrics address '%s' (ADDR:PORT)",
				     n->args[0]);
			else
				snprintf(cf->metrics, sizeof(cf->metrics), "%s", n->args[0]);
		} else if (!strcmp(n->name, "user") || !strcmp(n->name, "group")) {
			char *dst = n->name[0] == 'u' ? cf->user : cf->group;

			if (!want_args(ps, n, 1, 1))
				copy_name(ps, n, n->args[0], dst, NAME_MAX_LEN);
		} else if (!strcmp(n->name, "pid_file")) {
			if (want_args(ps, n, 1, 1))
				continue;
			if (n->args[0][0] != '/' || strlen(n->args[0]) >= sizeof(cf->pid_file))
				perr(ps, n->line, "pid_file must be an absolute path");
			else
				snprintf(cf->pid_file, sizeof(cf->pid_file), "%s", n->args[0]);
		} else if (!strcmp(n->name, "drain_timeout")) {
			if (!want_args(ps, n, 1, 1))
				set_duration(ps, n, n->args[0], &cf->drain_timeout_ms);
		} else if (!strcmp(n->name, "upgrade_timeout")) {
			if (!want_args(ps, n, 1, 1))
				set_duration(ps, n, n->args[0], &cf->upgrade_timeout_ms);
		} else {
			perr(ps, n->line, "unknown global setting '%s'", n->name);
		}
		(void)sz;
	}
}

static int valid_host_pattern(const char *h)
{
	const char *p = h;

	if (!strncmp(p, "*.", 2))
		p += 2;
	if (!*p)
		return 0;
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-.[]:_", *p))
			return 0;
	return 1;
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

static void do_route(struct parser *ps, struct listener *l, struct node *rn)
{
	struct route *r, *nr;

	if (!rn->has_block || rn->nargs) {
		perr(ps, rn->line, "'route' takes a block: route { host H; path P; pool NAME; }");
		return;
	}
	nr = realloc(l->routes, sizeof(*l->routes) * (l->nroutes + 1));
	if (!nr) {
		perr(ps, rn->line, "out of memory");
		return;
	}
	l->routes = nr;
	r = &l->routes[l->nroutes++];
	memset(r, 0, sizeof(*r));
	r->line = rn->line;
	for (struct node *n = rn->child; n; n = n->next) {
		if (!strcmp(n->name, "host")) {
			if (n->nargs < 1 || n->has_block) {
				perr(ps, n->line, "'host' takes one or more host names");
				continue;
			}
			for (int i = 0; i < n->nargs; i++) {
				char *h = n->args[i];

				if (r->nhosts >= MAX_ROUTE_HOSTS) {
					perr(ps, n->line, "too many hosts in one route (max %d)",
					     MAX_ROUTE_HOSTS);
					break;
				}
				if (strlen(h) >= HOST_MAX_LEN || !valid_host_pattern(h) ||
				    (h[0] != '[' && strchr(h, ':'))) {
					perr(ps, n->line, "invalid host '%s' (name or *.suffix)",
					     h);
					continue;
				}
				/* requests are matched without their port and trailing dot */
				for (char *c = h; *c; c++)
					*c = (char)tolower((unsigned char)*c);
				if (strlen(h) > 1 && h[strlen(h) - 1] == '.')
					h[strlen(h) - 1] = '\0';
				snprintf(r->hosts[r->nhosts++], HOST_MAX_LEN, "%s", h);
			}
		} else if (!strcmp(n->name, "path")) {
			if (want_args(ps, n, 1, 1))
				continue;
			do_route_path(ps, r, n);
		} else if (!strcmp(n->name, "pool")) {
			if (want_args(ps, n, 1, 1))
				continue;
			copy_name(ps, n, n->args[0], r->pool_name, sizeof(r->pool_name));
		} else if (!strcmp(n->name, "upgrade_protocols")) {
			do_upgrade_protocols(ps, n, r->upgrade_protocols, &r->upgrade_line);
		} else {
			perr(ps, n->line,
			     "unknown route setting '%s' (expected host, path, pool, "
			     "upgrade_protocols)",
			     n->name);
		}
	}
	if (!r->pool_name[0])
		perr(ps, rn->line, "route has no 'pool'");
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
			int v = tls_parse_protocol(n->args[i]);

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

static void do_listener(struct parser *ps, struct config *cf, struct node *ln)
{
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
	l->line = ln->line;
	copy_name(ps, ln, ln->args[0], l->name, sizeof(l->name));
	for (unsigned i = 0; i + 1 < cf->nlisteners; i++)
		if (!strcmp(cf->listeners[i].name, l->name))
			perr(ps, ln->line, "duplicate listener '%s' (first defined at line %d)",
			     l->name, cf->listeners[i].line);
	for (struct node *n = ln->child; n; n = n->next) {
		if (!strcmp(n->name, "bind")) {
			struct bind_addr *b;
			char why[256];

			if (want_args(ps, n, 1, 1))
				continue;
			if (l->nbinds >= MAX_BINDS) {
				perr(ps, n->line, "too many bind addresses (max %d)", MAX_BINDS);
				continue;
			}
			b = &l->binds[l->nbinds];
			if (conf_parse_addr(n->args[0], &b->addr, &b->addrlen, 1, why,
					    sizeof(why))) {
				perr(ps, n->line, "%s", why);
				continue;
			}
			snprintf(b->str, sizeof(b->str), "%s", n->args[0]);
			b->line = n->line;
			l->nbinds++;
		} else if (!strcmp(n->name, "route")) {
			do_route(ps, l, n);
		} else if (!strcmp(n->name, "tls")) {
			do_listener_tls(ps, l, n);
		} else if (!strcmp(n->name, "splice")) {
			if (want_args(ps, n, 1, 1))
				continue;
			if (!strcmp(n->args[0], "auto"))
				l->splice = SPLICE_AUTO;
			else if (!strcmp(n->args[0], "on"))
				l->splice = SPLICE_ON;
			else if (!strcmp(n->args[0], "off"))
				l->splice = SPLICE_OFF;
			else
				perr(ps, n->line, "splice takes auto, on or off");
		} else if (!strcmp(n->name, "upgrade_protocols")) {
			do_upgrade_protocols(ps, n, l->upgrade_protocols, &l->upgrade_line);
		} else {
			perr(ps, n->line,
			     "unknown listener setting '%s' (expected bind, route, splice, tls, "
			     "upgrade_protocols)",
			     n->name);
		}
	}
	/* a route without its own list takes the listener's, wherever that statement stands */
	for (unsigned i = 0; i < l->nroutes; i++)
		if (!l->routes[i].upgrade_line)
			snprintf(l->routes[i].upgrade_protocols, UPGRADE_LIST_MAX, "%s",
				 l->upgrade_line ? l->upgrade_protocols : "websocket");
	if (!l->nbinds)
		perr(ps, ln->line, "listener '%s' has no 'bind'", l->name);
	if (!l->nroutes)
		perr(ps, ln->line, "listener '%s' has no 'route'", l->name);
}

static void do_server(struct parser *ps, struct pool *p, struct node *n)
{
	struct server *s, *ns;
	char why[256];

	if (n->nargs < 2 || n->has_block) {
		perr(ps, n->line, "usage: server NAME HOST:PORT [weight N] [backup] [maintenance]");
		return;
	}
	ns = realloc(p->servers, sizeof(*p->servers) * (p->nservers + 1));
	if (!ns) {
		perr(ps, n->line, "out of memory");
		return;
	}
	p->servers = ns;
	s = &p->servers[p->nservers];
	memset(s, 0, sizeof(*s));
	s->weight = s->weight_file = 1;
	s->line = n->line;
	if (copy_name(ps, n, n->args[0], s->name, sizeof(s->name)))
		return;
	for (unsigned i = 0; i < p->nservers; i++)
		if (!strcmp(p->servers[i].name, s->name)) {
			perr(ps, n->line, "duplicate server '%s' in pool '%s'", s->name, p->name);
			return;
		}
	if (conf_parse_addr(n->args[1], &s->addr, &s->addrlen, 0, why, sizeof(why))) {
		perr(ps, n->line, "%s", why);
		return;
	}
	snprintf(s->spec, sizeof(s->spec), "%s", n->args[1]);
	for (int i = 2; i < n->nargs; i++) {
		if (!strcmp(n->args[i], "weight") && i + 1 < n->nargs) {
			unsigned w = 1;
			unsigned long x;

			if (parse_uint(n->args[++i], 1000, &x)) {
				perr(ps, n->line, "invalid weight '%s' (0 to 1000)", n->args[i]);
				return;
			}
			w = (unsigned)x;
			s->weight = s->weight_file = w;
		} else if (!strcmp(n->args[i], "backup")) {
			s->backup = 1;
		} else if (!strcmp(n->args[i], "maintenance")) {
			s->maintenance = 1;
		} else {
			perr(ps, n->line,
			     "unknown server option '%s' (expected weight N, backup, maintenance)",
			     n->args[i]);
			return;
		}
	}
	p->nservers++;
}

/* "200-399" or "204" -> [lo, hi] within 100..599 */
static int parse_status_range(const char *v, unsigned *lo, unsigned *hi)
{
	const char *dash = strchr(v, '-');
	char a[8];
	unsigned long x, y;

	if (!dash) {
		if (parse_uint(v, 599, &x) || x < 100)
			return -EINVAL;
		*lo = *hi = (unsigned)x;
		return 0;
	}
	if ((size_t)(dash - v) >= sizeof(a))
		return -EINVAL;
	memcpy(a, v, (size_t)(dash - v));
	a[dash - v] = '\0';
	if (parse_uint(a, 599, &x) || parse_uint(dash + 1, 599, &y) || x < 100 || y < x)
		return -EINVAL;
	*lo = (unsigned)x;
	*hi = (unsigned)y;
	return 0;
}

/* health http PATH [host H] [interval D] [timeout D] [rise N] [fall N] [status LO-HI];
 * health tcp [interval D] [timeout D] [rise N] [fall N]; */
static void do_health(struct parser *ps, struct pool *p, struct node *n, int *seen)
{
	struct health_conf *h = &p->health;
	int i = 1;

	if (n->nargs < 1 || n->has_block ||
	    (strcmp(n->args[0], "http") && strcmp(n->args[0], "tcp"))) {
		perr(ps, n->line,
		     "usage: health http PATH [host H] [interval D] [timeout D] [rise N] [fall N] "
		     "[status LO-HI]; or health tcp [interval D] [timeout D] [rise N] [fall N]");
		return;
	}
	if ((*seen)++) {
		perr(ps, n->line, "more than one 'health' in pool '%s'", p->name);
		return;
	}
	if (!strcmp(n->args[0], "http")) {
		const char *path = n->nargs > 1 ? n->args[1] : "";
		int bad = path[0] != '/' || strlen(path) >= sizeof(h->path);

		for (const char *c = path; *c && !bad; c++)
			bad = (unsigned char)*c <= 0x20 || *c == 0x7f;
		if (bad) {
			perr(ps, n->line, "health http needs a PATH starting with '/' (got '%s')",
			     path);
			return;
		}
		h->type = HEALTH_CHECK_HTTP;
		snprintf(h->path, sizeof(h->path), "%s", path);
		i = 2;
	} else {
		h->type = HEALTH_CHECK_TCP;
	}
	for (; i < n->nargs; i++) {
		const char *k = n->args[i], *v = i + 1 < n->nargs ? n->args[i + 1] : NULL;

		if (!v) {
			perr(ps, n->line, "health option '%s' needs a value", k);
			return;
		}
		i++;
		if (!strcmp(k, "interval")) {
			if (conf_parse_duration(v, &h->interval_ms) || h->interval_ms < 10)
				perr(ps, n->line, "invalid health interval '%s' (at least 10ms)",
				     v);
		} else if (!strcmp(k, "timeout")) {
			if (conf_parse_duration(v, &h->timeout_ms) || h->timeout_ms == 0)
				perr(ps, n->line, "invalid health timeout '%s' (greater than 0)",
				     v);
		} else if (!strcmp(k, "rise")) {
			set_uint(ps, n, v, 1, 1000, &h->rise);
		} else if (!strcmp(k, "fall")) {
			set_uint(ps, n, v, 1, 1000, &h->fall);
		} else if (!strcmp(k, "status") && h->type == HEALTH_CHECK_HTTP) {
			if (parse_status_range(v, &h->status_lo, &h->status_hi))
				perr(ps, n->line,
				     "invalid status range '%s' (LO-HI within 100-599)", v);
		} else if (!strcmp(k, "host") && h->type == HEALTH_CHECK_HTTP) {
			if (strlen(v) >= sizeof(h->host) || !valid_host_pattern(v) || v[0] == '*')
				perr(ps, n->line, "invalid health host '%s'", v);
			else
				snprintf(h->host, sizeof(h->host), "%s", v);
		} else {
			perr(ps, n->line, "unknown health %s option '%s' (expected %s)", n->args[0],
			     k,
			     h->type == HEALTH_CHECK_HTTP
				     ? "host, interval, timeout, rise, fall, status"
				     : "interval, timeout, rise, fall");
		}
	}
}

/* eject consecutive_failures N [base D] [max D];  or  eject off; */
static void do_eject(struct parser *ps, struct pool *p, struct node *n)
{
	if (n->nargs == 1 && !n->has_block && !strcmp(n->args[0], "off")) {
		p->eject_failures = 0;
		return;
	}
	if (n->nargs < 2 || n->has_block || strcmp(n->args[0], "consecutive_failures")) {
		perr(ps, n->line,
		     "usage: eject consecutive_failures N [base D] [max D]; or eject off;");
		return;
	}
	set_uint(ps, n, n->args[1], 1, 1000, &p->eject_failures);
	for (int i = 2; i < n->nargs; i += 2) {
		const char *k = n->args[i], *v = i + 1 < n->nargs ? n->args[i + 1] : NULL;
		uint32_t ms = 0;

		if (!v || (strcmp(k, "base") && strcmp(k, "max"))) {
			perr(ps, n->line, "unknown eject option '%s' (expected base D, max D)", k);
			return;
		}
		if (conf_parse_duration(v, &ms) || ms == 0) {
			perr(ps, n->line, "invalid duration '%s' for eject %s (greater than 0)", v,
			     k);
			continue;
		}
		if (!strcmp(k, "base"))
			p->eject_base_ms = ms;
		else
			p->eject_max_ms = ms;
	}
	if (p->eject_max_ms < p->eject_base_ms)
		perr(ps, n->line, "eject max (%u ms) is shorter than base (%u ms)", p->eject_max_ms,
		     p->eject_base_ms);
}

/* tls [verify on|off] [ca FILE] [sni NAME]; (upstream TLS, verification on by default) */
static void do_pool_tls(struct parser *ps, struct pool *p, struct node *n)
{
	if (n->has_block) {
		perr(ps, n->line, "usage: tls [verify on|off] [ca FILE] [sni NAME];");
		return;
	}
	p->tls_on = 1;
	p->tls_verify = 1;
	p->tls_line = n->line;
	for (int i = 0; i < n->nargs; i++) {
		const char *k = n->args[i], *v = i + 1 < n->nargs ? n->args[i + 1] : NULL;

		if (!v) {
			perr(ps, n->line, "tls option '%s' needs a value", k);
			return;
		}
		i++;
		if (!strcmp(k, "verify") && (!strcmp(v, "on") || !strcmp(v, "off")))
			p->tls_verify = !strcmp(v, "on");
		else if (!strcmp(k, "ca") && strlen(v) < sizeof(p->tls_ca))
			snprintf(p->tls_ca, sizeof(p->tls_ca), "%s", v);
		else if (!strcmp(k, "sni") && strlen(v) < sizeof(p->tls_sni))
			snprintf(p->tls_sni, sizeof(p->tls_sni), "%s", v);
		else
			perr(ps, n->line,
			     "invalid tls option '%s %s' (verify on|off, ca FILE, sni NAME)", k, v);
	}
}

static void do_pool(struct parser *ps, struct config *cf, struct node *pn)
{
	struct pool *p, *np;
	int seen_health = 0;

	if (!pn->has_block || pn->nargs != 1) {
		perr(ps, pn->line, "'pool' takes a name and a block: pool NAME { ... }");
		return;
	}
	np = realloc(cf->pools, sizeof(*cf->pools) * (cf->npools + 1));
	if (!np) {
		perr(ps, pn->line, "out of memory");
		return;
	}
	cf->pools = np;
	p = &cf->pools[cf->npools++];
	memset(p, 0, sizeof(*p));
	p->line = pn->line;
	p->connect_timeout_ms = 0; /* 0: inherit global */
	p->retries = (unsigned)-1;
	p->fail_timeout_ms = 0;
	p->keepalive = 0;
	p->keepalive_timeout_ms = 30000;
	p->health.interval_ms = 2000;
	p->health.timeout_ms = 1000;
	p->health.rise = 2;
	p->health.fall = 3;
	p->health.status_lo = 200;
	p->health.status_hi = 399;
	p->eject_failures = 5;
	p->eject_base_ms = 10000;
	p->eject_max_ms = 300000;
	p->max_ejection_percent = 50;
	copy_name(ps, pn, pn->args[0], p->name, sizeof(p->name));
	for (unsigned i = 0; i + 1 < cf->npools; i++)
		if (!strcmp(cf->pools[i].name, p->name))
			perr(ps, pn->line, "duplicate pool '%s' (first defined at line %d)",
			     p->name, cf->pools[i].line);
	for (struct node *n = pn->child; n; n = n->next) {
		if (!strcmp(n->name, "server")) {
			do_server(ps, p, n);
		} else if (!strcmp(n->name, "balance")) {
			if (n->nargs < 1 || n->has_block) {
				perr(ps, n->line,
				     "usage: balance round_robin|least_conn|random|"
				     "hash [source|header NAME]");
				continue;
			}
			if (lb_algo_parse(n->args[0], &p->algo)) {
				perr(ps, n->line,
				     "unknown balance algorithm '%s' (expected round_robin, "
				     "least_conn, random, hash)",
				     n->args[0]);
				continue;
			}
			if (p->algo != LB_HASH) {
				if (n->nargs > 1)
					perr(ps, n->line, "balance %s takes no options",
					     n->args[0]);
				continue;
			}
			if (n->nargs == 1 || (n->nargs == 2 && !strcmp(n->args[1], "source"))) {
				p->hash_key = HASH_SOURCE;
			} else if (n->nargs == 3 && !strcmp(n->args[1], "header")) {
				p->hash_key = HASH_HEADER;
				copy_name(ps, n, n->args[2], p->hash_header,
					  sizeof(p->hash_header));
			} else {
				perr(ps, n->line, "usage: balance hash [source|header NAME]");
			}
		} else if (!strcmp(n->name, "tls")) {
			do_pool_tls(ps, p, n);
		} else if (!strcmp(n->name, "connect_timeout")) {
			uint32_t ms = 0;

			if (want_args(ps, n, 1, 1))
				continue;
			set_duration(ps, n, n->args[0], &ms);
			if (!conf_parse_duration(n->args[0], &ms) && ms == 0)
				perr(ps, n->line, "connect_timeout must be greater than 0");
			p->connect_timeout_ms = ms;
		} else if (!strcmp(n->name, "fail_timeout")) {
			if (!want_args(ps, n, 1, 1))
				set_duration(ps, n, n->args[0], &p->fail_timeout_ms);
		} else if (!strcmp(n->name, "retries")) {
			if (!want_args(ps, n, 1, 1))
				set_uint(ps, n, n->args[0], 0, 100, &p->retries);
		} else if (!strcmp(n->name, "health")) {
			do_health(ps, p, n, &seen_health);
		} else if (!strcmp(n->name, "slow_start")) {
			if (!want_args(ps, n, 1, 1))
				set_duration(ps, n, n->args[0], &p->slow_start_ms);
		} else if (!strcmp(n->name, "eject")) {
			do_eject(ps, p, n);
		} else if (!strcmp(n->name, "max_ejection_percent")) {
			if (!want_args(ps, n, 1, 1))
				set_uint(ps, n, n->args[0], 0, 100, &p->max_ejection_percent);
		} else if (!strcmp(n->name, "keepalive")) {
			if (!want_args(ps, n, 1, 1))
				set_uint(ps, n, n->args[0], 0, 1024, &p->keepalive);
		} else if (!strcmp(n->name, "keepalive_timeout")) {
			if (!want_args(ps, n, 1, 1))
				set_duration(ps, n, n->args[0], &p->keepalive_timeout_ms);
			if (!p->keepalive_timeout_ms)
				perr(ps, n->line, "keepalive_timeout must be greater than 0");
		} else {
			perr(ps, n->line,
			     "unknown pool setting '%s' (expected server, balance, "
			     "connect_timeout, retries, fail_timeout, health, slow_start, eject, "
			     "max_ejection_percent, keepalive, keepalive_timeout)",
			     n->name);
		}
	}
	if (!p->nservers)
		perr(ps, pn->line, "pool '%s' has no servers", p->name);
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

/* resolve references, apply inherited defaults, build balancers and the server table */
static void conf_link(struct parser *ps, struct config *cf)
{
	unsigned total = 0;

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
		if (!p->fail_timeout_ms)
			p->fail_timeout_ms = cf->fail_timeout_ms;
		if (p->retries == (unsigned)-1)
			p->retries = cf->retries;
		total += p->nservers;
	}
	if (!cf->nlisteners)
		perr(ps, 1, "no 'listener' defined");
	/* certificates are checked at load, so -n reports them */
	for (unsigned i = 0; i < cf->nlisteners; i++)
		ps->errors += tls_listener_load(&cf->listeners[i], ps->file, ps->errf);
	for (unsigned i = 0; i < cf->npools; i++)
		ps->errors += tls_pool_load(&cf->pools[i], ps->file, ps->errf);
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

struct config *conf_load_string(const char *name, const char *text, FILE *errf)
{
	struct parser ps = {.file = name, .p = text, .line = 1, .errf = errf};
	struct config *cf = calloc(1, sizeof(*cf));
	struct node *root, *n;
	int seen_global = 0;

	if (!cf) {
		if (errf)
			fprintf(errf, "%s: out of memory\n", name);
		return NULL;
	}
	conf_defaults(cf);
	snprintf(cf->file, sizeof(cf->file), "%s", name);
	root = parse_block(&ps, 0, 0);
	for (n = root; n; n = n->next) {
		if (!strcmp(n->name, "global")) {
			if (!n->has_block || n->nargs) {
				perr(&ps, n->line, "'global' takes a block: global { ... }");
				continue;
			}
			if (seen_global++)
				perr(&ps, n->line, "more than one 'global' block");
			do_global(&ps, cf, n->child);
		} else if (!strcmp(n->name, "listener")) {
			do_listener(&ps, cf, n);
		} else if (!strcmp(n->name, "pool")) {
			do_pool(&ps, cf, n);
		} else {
			perr(&ps, n->line,
			     "unknown top-level section '%s' (expected global, "
			     "listener, pool)",
			     n->name);
		}
	}
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
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
	    len > (16 << 20)) {
		if (errf)
			fprintf(errf, "%s: cannot read (or larger than 16 MiB)\n", path);
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
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		free(cf->listeners[i].routes);
		tls_listener_free(&cf->listeners[i]);
		free(cf->listeners[i].certs);
	}
	free(cf->listeners);
	for (unsigned i = 0; i < cf->npools; i++) {
		tls_pool_free(&cf->pools[i]);
		if (cf->pools[i].lb_ready)
			lb_free(&cf->pools[i].lb);
		free(cf->pools[i].servers);
	}
	free(cf->pools);
	free(cf->servers);
	free(cf);
}
