// SPDX-License-Identifier: MIT
/*
 * conf_rules.c - the configuration of the request rule engine (rules.h): route conditions
 * (`method`, `header`, `query`, `source`, `not ...`, and the regex forms of `host` and `path`,
 * which conf.c hands over) and the actions a route or its listener applies (`request_header`,
 * `response_header`, `rewrite`, `strip_prefix`, `return`, `upstream_host`, `request_id`,
 * `hide_headers`, `error_page`, the access list `allow`/`deny` and `methods`). Two keyword tables that conf.c chains after its own listener
 * and route rows; regexes and templates are compiled here, once, with FILE:LINE errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conf_keywords.h"
#include "rules.h"

#define ERROR_PAGE_MAX (64 << 10) /* bytes of an error_page file */
#define ROUTE_MAX_CONDS 64

/* ---- conditions (rows of conf_route_rules; obj: struct route) ---- */

static struct rule_cond *new_cond(struct conf_ctx *c, struct route *r, int kind)
{
	struct rule_cond *nc;

	if (r->nconds >= ROUTE_MAX_CONDS) {
		perr(c->ps, c->n->line, "more than %d conditions in one route", ROUTE_MAX_CONDS);
		return NULL;
	}
	nc = realloc(r->conds, sizeof(*nc) * (r->nconds + 1));
	if (!nc) {
		perr(c->ps, c->n->line, "out of memory");
		return NULL;
	}
	r->conds = nc;
	nc = &r->conds[r->nconds++];
	memset(nc, 0, sizeof(*nc));
	nc->kind = (uint8_t)kind;
	nc->line = c->n->line;
	nc->negate = (uint8_t)(c->kw_negate != 0);
	return nc;
}

/* "~REGEX" (or "~" "REGEX"): the pattern, else NULL */
static const char *regex_arg(char **av, int ac, int i, int *used)
{
	if (i >= ac || av[i][0] != '~')
		return NULL;
	if (av[i][1]) {
		*used = 1;
		return av[i] + 1;
	}
	*used = 2;
	return i + 1 < ac ? av[i + 1] : "";
}

static int compile_into(struct conf_ctx *c, const char *pattern, void **re);

/* compile a condition's regex, keeping the pattern for `show routes` */
static int cond_regex(struct conf_ctx *c, struct rule_cond *nc, const char *pattern)
{
	nc->op = MATCH_REGEX;
	nc->pattern = strdup(pattern);
	if (!nc->pattern) {
		perr(c->ps, c->n->line, "out of memory");
		return -1;
	}
	return compile_into(c, pattern, &nc->re);
}

static int compile_into(struct conf_ctx *c, const char *pattern, void **re)
{
	char err[256];

	if (!*pattern) {
		perr(c->ps, c->n->line, "'%s': empty regex", c->what);
		return -1;
	}
	*re = rule_regex_compile(pattern, err, sizeof(err));
	if (!*re) {
		perr(c->ps, c->n->line, "'%s': %s", c->what, err);
		return -1;
	}
	return 0;
}

/* host ~REGEX; / path ~REGEX; (conf.c calls this when the word starts with '~') */
int conf_route_regex(struct conf_ctx *c, struct route *r, int is_path, char **av, int ac)
{
	struct rule_cond *nc;
	const char *pat;
	int used = 0;

	pat = regex_arg(av, ac, 0, &used);
	if (!pat || used != ac) {
		perr(c->ps, c->n->line, "usage: %s ~REGEX;", is_path ? "path" : "host");
		return -1;
	}
	nc = new_cond(c, r, is_path ? COND_PATH : COND_HOST);
	if (!nc)
		return -1;
	return cond_regex(c, nc, pat);
}

static char *dup_or_fail(struct conf_ctx *c, const char *s)
{
	char *d = strdup(s);

	if (!d)
		perr(c->ps, c->n->line, "out of memory");
	return d;
}

static int set_method(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_cond *nc = new_cond(c, c->obj, COND_METHOD);

	(void)kw;
	if (!nc)
		return -1;
	nc->methods = calloc((size_t)ac, sizeof(char *));
	if (!nc->methods) {
		perr(c->ps, c->n->line, "out of memory");
		return -1;
	}
	for (int i = 0; i < ac; i++) {
		for (const char *p = av[i]; *p; p++) {
			if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127 ||
			    strchr("\"(),/:;<=>?@[\\]{}", *p)) {
				perr(c->ps, c->n->line,
				     "invalid method '%s' (a token: GET, POST...)", av[i]);
				return -1;
			}
		}
		nc->methods[nc->nmethods] = dup_or_fail(c, av[i]);
		if (!nc->methods[nc->nmethods])
			return -1;
		nc->nmethods++;
	}
	return 0;
}

static int set_header_cond(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_cond *nc = new_cond(c, c->obj, COND_HEADER);
	const char *pat;
	int used = 0;

	(void)kw;
	if (!nc)
		return -1;
	if (rule_header_forbidden(av[0], 0) && strchr("\"(),/:;<=>?@[\\]{}", av[0][0])) {
		perr(c->ps, c->n->line, "invalid header name '%s'", av[0]);
		return -1;
	}
	nc->name = dup_or_fail(c, av[0]);
	if (!nc->name)
		return -1;
	nc->name_len = strlen(av[0]);
	if (ac == 1) {
		nc->op = MATCH_PRESENT;
		return 0;
	}
	pat = regex_arg(av, ac, 1, &used);
	if (pat) {
		if (1 + used != ac) {
			perr(c->ps, c->n->line, "usage: header NAME [VALUE|~REGEX];");
			return -1;
		}
		return cond_regex(c, nc, pat);
	}
	if (ac != 2) {
		perr(c->ps, c->n->line,
		     "usage: header NAME [VALUE|~REGEX]; (quote a value with spaces)");
		return -1;
	}
	nc->op = MATCH_EXACT;
	nc->value = dup_or_fail(c, av[1]);
	nc->value_len = strlen(av[1]);
	return nc->value ? 0 : -1;
}

static int set_query_cond(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_cond *nc = new_cond(c, c->obj, COND_QUERY);

	(void)kw;
	if (!nc)
		return -1;
	nc->name = dup_or_fail(c, av[0]);
	if (!nc->name)
		return -1;
	nc->name_len = strlen(av[0]);
	nc->op = ac == 2 ? MATCH_EXACT : MATCH_PRESENT;
	if (ac == 2) {
		nc->value = dup_or_fail(c, av[1]);
		nc->value_len = strlen(av[1]);
		if (!nc->value)
			return -1;
	}
	return 0;
}

static int set_source_cond(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_cond *nc = new_cond(c, c->obj, COND_SOURCE);

	(void)kw;
	if (!nc)
		return -1;
	nc->cidrs = calloc((size_t)ac, sizeof(*nc->cidrs));
	if (!nc->cidrs) {
		perr(c->ps, c->n->line, "out of memory");
		return -1;
	}
	for (int i = 0; i < ac; i++) {
		if (rule_cidr_parse(av[i], &nc->cidrs[nc->ncidrs])) {
			perr(c->ps, c->n->line,
			     "invalid address '%s' (ADDRESS or ADDRESS/BITS, IPv4 or IPv6)", av[i]);
			return -1;
		}
		nc->ncidrs++;
	}
	return 0;
}

/* host/path rows for `not`: only the regex forms negate (exact hosts and prefixes do not) */
static int set_not_host(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	(void)kw;
	return conf_route_regex(c, c->obj, 0, av, ac);
}

static int set_not_path(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	(void)kw;
	return conf_route_regex(c, c->obj, 1, av, ac);
}

#define CONDITION_ROWS                                                                   \
	{"method", 1, CONF_MAX_ARGS, .args = "METHOD...", .set = set_method},            \
		{"header", 1, 3, .args = "NAME [VALUE|~REGEX]", .set = set_header_cond}, \
		{"query", 1, 2, .args = "NAME [VALUE]", .set = set_query_cond},          \
	{                                                                                \
		"source", 1, CONF_MAX_ARGS, .args = "CIDR...", .set = set_source_cond    \
	}

static const struct conf_keyword negatable[] = {
	{"host", 1, 2, .args = "~REGEX", .set = set_not_host},
	{"path", 1, 2, .args = "~REGEX", .set = set_not_path},
	CONDITION_ROWS,
	{NULL},
};

/* not CONDITION ARGS...; - the condition must not hold */
static int set_not(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct node sub = *c->n;
	struct conf_ctx nc = *c;
	int rc;

	(void)kw;
	/* the rest of the statement is a statement of the negatable table */
	sub.name = av[0];
	memmove(sub.args, sub.args + 1, sizeof(sub.args[0]) * (size_t)(ac - 1));
	sub.nargs = ac - 1;
	sub.next = NULL;
	nc.kw_negate = 1;
	rc = conf_block(&nc, negatable, &sub, "condition after 'not'");
	return rc ? -1 : 0;
}

void route_rules_free(struct route *r)
{
	for (unsigned i = 0; i < r->nconds; i++) {
		struct rule_cond *c = &r->conds[i];

		free(c->name);
		free(c->value);
		free(c->pattern);
		if (c->re)
			rule_regex_free(c->re);
		for (unsigned k = 0; k < c->nmethods; k++)
			free(c->methods[k]);
		free(c->methods);
		free(c->cidrs);
	}
	free(r->conds);
	r->conds = NULL;
	r->nconds = 0;
	rule_actions_free(&r->act);
}

/* ---- actions (c->acts: the route's or the listener's) ---- */

static struct rule_actions *acts(struct conf_ctx *c, const struct conf_keyword *kw)
{
	(void)kw;
	return c->acts;
}

static int compile_tmpl(struct conf_ctx *c, const char *text, struct tmpl *t)
{
	char err[256];

	if (tmpl_compile(text, t, err, sizeof(err))) {
		perr(c->ps, c->n->line, "'%s': %s", c->what, err);
		return -1;
	}
	if (c->acts)
		c->acts->vars_used |= t->vars;
	return 0;
}

/* request_header|response_header set|add|del NAME [VALUE]; */
static int set_header_rule(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac,
			   int is_request)
{
	struct rule_actions *a = acts(c, kw);
	struct hdr_rule **list = is_request ? &a->req_hdr : &a->resp_hdr;
	unsigned *n = is_request ? &a->nreq_hdr : &a->nresp_hdr;
	const char *why;
	struct hdr_rule *nr, *h;
	int op;

	if (!strcmp(av[0], "set"))
		op = HDR_SET;
	else if (!strcmp(av[0], "add"))
		op = HDR_ADD;
	else if (!strcmp(av[0], "del"))
		op = HDR_DEL;
	else
		op = -1;
	if (op < 0 || ac < 2 || (op == HDR_DEL) != (ac == 2) || ac > 3) {
		perr(c->ps, c->n->line, "usage: %s set|add NAME VALUE; or %s del NAME;", c->what,
		     c->what);
		return -1;
	}
	why = rule_header_forbidden(av[1], is_request);
	if (why) {
		perr(c->ps, c->n->line, "'%s' cannot change header '%s': %s", c->what, av[1], why);
		return -1;
	}
	nr = realloc(*list, sizeof(*nr) * (*n + 1));
	if (!nr) {
		perr(c->ps, c->n->line, "out of memory");
		return -1;
	}
	*list = nr;
	h = &nr[*n];
	memset(h, 0, sizeof(*h));
	h->op = (uint8_t)op;
	h->line = c->n->line;
	h->name = dup_or_fail(c, av[1]);
	if (!h->name)
		return -1;
	h->name_len = strlen(av[1]);
	if (op != HDR_DEL && compile_tmpl(c, av[2], &h->value)) {
		free(h->name);
		return -1;
	}
	(*n)++;
	return 0;
}

static int set_request_header(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	return set_header_rule(c, kw, av, ac, 1);
}

static int set_response_header(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	return set_header_rule(c, kw, av, ac, 0);
}

static int set_rewrite(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);

	(void)ac;
	if (a->rewrite_re) {
		perr(c->ps, c->n->line, "one 'rewrite' per block");
		return -1;
	}
	if (compile_into(c, av[0], &a->rewrite_re))
		return -1;
	if (compile_tmpl(c, av[1], &a->rewrite_to))
		return -1;
	if (av[1][0] != '/' && av[1][0] != '$') {
		perr(c->ps, c->n->line, "'rewrite': the replacement is a path ('/...')");
		return -1;
	}
	return 0;
}

static int set_strip_prefix(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);
	size_t len = strlen(av[0]);

	(void)ac;
	if (av[0][0] != '/' || len < 2 || av[0][len - 1] == '/' || len >= HOST_MAX_LEN) {
		perr(c->ps, c->n->line, "'strip_prefix': a path like /api (no trailing '/')");
		return -1;
	}
	free(a->strip_prefix);
	a->strip_prefix = dup_or_fail(c, av[0]);
	return a->strip_prefix ? 0 : -1;
}

/* return CODE [URL|TEXT]; */
static int set_return(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);
	unsigned long code;
	int redirect;

	if (conf_parse_uint(av[0], 599, &code) || code < 200) {
		perr(c->ps, c->n->line, "'return': a status code from 200 to 599, not '%s'", av[0]);
		return -1;
	}
	redirect = code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
	if (code >= 300 && code < 400 && !redirect) {
		perr(c->ps, c->n->line,
		     "'return': redirects are 301, 302, 303, 307 and 308, not %lu", code);
		return -1;
	}
	if (redirect && ac != 2) {
		perr(c->ps, c->n->line, "'return %lu' needs the URL to redirect to", code);
		return -1;
	}
	if (a->ret_code) {
		perr(c->ps, c->n->line, "one 'return' per block");
		return -1;
	}
	a->ret_code = (int)code;
	if (ac == 2) {
		if (compile_tmpl(c, av[1], &a->ret_value))
			return -1;
		a->ret_has_value = 1;
	}
	return 0;
}

static int set_upstream_host(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);

	(void)ac;
	tmpl_free(&a->upstream_host);
	if (!strcmp(av[0], "preserve")) {
		a->upstream_host_set = 2;
		return 0;
	}
	for (const char *p = av[0]; *p; p++) {
		if (*p != '$' && !isalnum((unsigned char)*p) && !strchr("-._:[]{}", *p)) {
			perr(c->ps, c->n->line, "'upstream_host': '%s' is not a host[:port]",
			     av[0]);
			return -1;
		}
	}
	a->upstream_host_set = 1;
	return compile_tmpl(c, av[0], &a->upstream_host);
}

/* request_id on|off [header NAME]; */
static int set_request_id(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);
	const char *name = RULE_REQUEST_ID_HEADER;

	if ((strcmp(av[0], "on") && strcmp(av[0], "off")) || ac == 2 ||
	    (ac == 3 && strcmp(av[1], "header"))) {
		perr(c->ps, c->n->line, "usage: request_id on|off [header NAME];");
		return -1;
	}
	if (ac == 3) {
		name = av[2];
		if (rule_header_forbidden(name, 1) ||
		    strlen(name) >= sizeof(a->request_id_header)) {
			perr(c->ps, c->n->line, "'request_id': invalid header name '%s'", name);
			return -1;
		}
	}
	a->request_id = !strcmp(av[0], "on");
	snprintf(a->request_id_header, sizeof(a->request_id_header), "%s", name);
	return 0;
}

/* hide_headers NAME...; | hide_headers off; */
static int set_hide_headers(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);

	a->hide_set = 1;
	a->nhide = 0;
	if (ac == 1 && !strcmp(av[0], "off"))
		return 0;
	if (ac > RULE_HIDE_MAX) {
		perr(c->ps, c->n->line, "'hide_headers': at most %d names", RULE_HIDE_MAX);
		return -1;
	}
	for (int i = 0; i < ac; i++) {
		const char *why = rule_header_forbidden(av[i], 0);

		if (why || strlen(av[i]) >= sizeof(a->hide[0])) {
			perr(c->ps, c->n->line, "'hide_headers' cannot hide '%s': %s", av[i],
			     why ? why : "too long");
			return -1;
		}
		snprintf(a->hide[a->nhide++], sizeof(a->hide[0]), "%s", av[i]);
	}
	return 0;
}

static const char *type_of(const char *file)
{
	const char *dot = strrchr(file, '.');

	if (dot && (!strcasecmp(dot, ".html") || !strcasecmp(dot, ".htm")))
		return "text/html; charset=utf-8";
	if (dot && !strcasecmp(dot, ".json"))
		return "application/json";
	return "text/plain; charset=utf-8";
}

/* read a whole small file; NULL and errno on failure */
static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > ERROR_PAGE_MAX) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	r = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (r != st.st_size) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	*len = (size_t)r;
	return buf;
}

/* error_page CODE... FILE; - the body of spliced's own responses with those codes */
static int set_error_page(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);
	const char *file = av[ac - 1];
	struct error_page *np;
	size_t len = 0;
	char *body;

	if (ac < 2) {
		perr(c->ps, c->n->line, "usage: error_page CODE... FILE;");
		return -1;
	}
	body = slurp(file, &len);
	if (!body) {
		perr(c->ps, c->n->line,
		     "error_page: cannot read '%s': %s (a file of at most %d KiB)", file,
		     strerror(errno), ERROR_PAGE_MAX >> 10);
		return -1;
	}
	for (int i = 0; i < ac - 1; i++) {
		unsigned long code;

		if (conf_parse_uint(av[i], 599, &code) || code < 400) {
			perr(c->ps, c->n->line, "error_page: '%s' is not a status from 400 to 599",
			     av[i]);
			free(body);
			return -1;
		}
		np = realloc(a->pages, sizeof(*np) * (a->npages + 1));
		if (!np) {
			free(body);
			perr(c->ps, c->n->line, "out of memory");
			return -1;
		}
		a->pages = np;
		np[a->npages].code = (int)code;
		np[a->npages].body = i ? malloc(len + 1) : body;
		if (!np[a->npages].body) {
			perr(c->ps, c->n->line, "out of memory");
			return -1;
		}
		if (i)
			memcpy(np[a->npages].body, body, len);
		np[a->npages].len = len;
		np[a->npages].type = type_of(file);
		a->npages++;
	}
	return 0;
}

/* allow|deny CIDR...|all; - one access list per block, first match wins */
static int set_acl(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);
	int deny = !strcmp(kw->name, "deny");

	for (int i = 0; i < ac; i++) {
		struct rule_cidr cidr;
		int shadow = 0, rc;

		if (!strcmp(av[i], "all")) {
			memset(&cidr, 0, sizeof(cidr)); /* ::/0 holds IPv4 too (::ffff:0:0/96) */
		} else if (rule_cidr_parse(av[i], &cidr)) {
			perr(c->ps, c->n->line,
			     "'%s': invalid address '%s' (ADDRESS, ADDRESS/BITS or all; IPv4 or "
			     "IPv6)",
			     kw->name, av[i]);
			return -1;
		}
		rc = rule_acl_add(&a->acl, &cidr, deny, c->n->line, &shadow);
		if (rc == -EEXIST) {
			perr(c->ps, c->n->line,
			     "'%s %s' never matches: the entry at line %d covers it and comes first "
			     "(first match wins)",
			     kw->name, av[i], shadow);
			return -1;
		}
		if (rc) {
			perr(c->ps, c->n->line, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* methods METHOD...; - the methods a route serves; others get 405 with Allow */
static int set_methods(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);

	if (a->nmethods) {
		perr(c->ps, c->n->line, "one 'methods' per block");
		return -1;
	}
	a->methods = calloc((size_t)ac, sizeof(char *));
	if (!a->methods) {
		perr(c->ps, c->n->line, "out of memory");
		return -1;
	}
	for (int i = 0; i < ac; i++) {
		for (const char *p = av[i]; *p; p++) {
			if (!isupper((unsigned char)*p) && *p != '-' && *p != '_') {
				perr(c->ps, c->n->line,
				     "'methods': invalid method '%s' (upper case: GET, POST...)",
				     av[i]);
				return -1;
			}
		}
		a->methods[a->nmethods] = dup_or_fail(c, av[i]);
		if (!a->methods[a->nmethods])
			return -1;
		a->nmethods++;
	}
	return 0;
}

/* max_body_size S; - request bodies longer than S are refused (413); 0: no limit */
static int set_max_body_size(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);
	uint64_t v;

	(void)ac;
	if (conf_parse_size(av[0], &v)) {
		perr(c->ps, c->n->line,
		     "'max_body_size': a size (512, 16k, 10m, 1g; 0: no limit), "
		     "not '%s'",
		     av[0]);
		return -1;
	}
	a->max_body = v;
	a->max_body_set = 1;
	return 0;
}

/* limit conn N [key source|header NAME]; | limit rate R/s|R/m burst B [key source|header NAME]; */
static int set_limit(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct rule_actions *a = acts(c, kw);
	struct rule_limit lim = {.line = c->n->line};
	unsigned long v;
	int i, same = 0;

	if (!strcmp(av[0], "conn") && ac >= 2 && !conf_parse_uint(av[1], 1000000, &v) && v) {
		lim.kind = LIMIT_CONN;
		lim.n = (uint32_t)v;
		i = 2;
	} else if (!strcmp(av[0], "rate") && ac >= 4 && !strcmp(av[2], "burst")) {
		char *slash = strchr(av[1], '/');
		unsigned long b;

		if (!slash || (strcmp(slash, "/s") && strcmp(slash, "/m"))) {
			perr(c->ps, c->n->line, "'limit rate': a rate like 10/s or 30/m, not '%s'",
			     av[1]);
			return -1;
		}
		lim.period_s = slash[1] == 's' ? 1 : 60;
		*slash = '\0';
		if (conf_parse_uint(av[1], 1000000, &v) || !v ||
		    conf_parse_uint(av[3], 1000000, &b) || !b) {
			perr(c->ps, c->n->line,
			     "'limit rate': rate and burst are whole numbers from 1 to 1000000");
			return -1;
		}
		lim.kind = LIMIT_RATE;
		lim.n = (uint32_t)v;
		lim.burst = (uint32_t)b;
		i = 4;
	} else {
		perr(c->ps, c->n->line,
		     "usage: limit conn N [key source|header NAME]; or limit rate R/s burst B "
		     "[key source|header NAME];");
		return -1;
	}
	if (i < ac) {
		int is_source = i + 1 < ac && !strcmp(av[i + 1], "source");

		if (strcmp(av[i], "key") || i + 1 >= ac ||
		    (is_source ? i + 2 != ac : strcmp(av[i + 1], "header") || i + 3 != ac)) {
			perr(c->ps, c->n->line,
			     "'limit': the key is 'key source' or 'key header NAME'");
			return -1;
		}
		if (!is_source) {
			if (strlen(av[i + 2]) >= sizeof(lim.header) ||
			    rule_header_forbidden(av[i + 2], 0)) {
				perr(c->ps, c->n->line, "'limit': invalid header name '%s'",
				     av[i + 2]);
				return -1;
			}
			lim.key = LIMIT_KEY_HEADER;
			snprintf(lim.header, sizeof(lim.header), "%s", av[i + 2]);
		}
	}
	for (unsigned k = 0; k < a->nlimits; k++)
		same += a->limits[k].kind == lim.kind;
	if (same >= RULE_MAX_LIMITS) {
		perr(c->ps, c->n->line, "at most %d 'limit %s' per block", RULE_MAX_LIMITS, av[0]);
		return -1;
	}
	{
		struct rule_limit *nl = realloc(a->limits, sizeof(*nl) * (a->nlimits + 1));

		if (!nl) {
			perr(c->ps, c->n->line, "out of memory");
			return -1;
		}
		a->limits = nl;
		nl[a->nlimits++] = lim;
	}
	return 0;
}

/* the actions, the same rows for a listener and, after the conditions, a route (c->acts says
 * whose) */
const struct conf_keyword conf_listener_rules[] = {
	{"request_header", 2, 3, .args = "set|add|del NAME [VALUE]", .set = set_request_header},
	{"response_header", 2, 3, .args = "set|add|del NAME [VALUE]", .set = set_response_header},
	{"rewrite", 2, 2, .args = "REGEX REPLACEMENT", .set = set_rewrite},
	{"strip_prefix", 1, 1, .args = "PATH", .set = set_strip_prefix},
	{"return", 1, 2, .args = "CODE [URL|TEXT]", .set = set_return},
	{"upstream_host", 1, 1, .args = "NAME|preserve", .set = set_upstream_host},
	{"request_id", 1, 3, .args = "on|off [header NAME]", .set = set_request_id},
	{"hide_headers", 1, CONF_MAX_ARGS, .args = "NAME...|off", .set = set_hide_headers},
	{"error_page", 2, CONF_MAX_ARGS, .args = "CODE... FILE", .set = set_error_page},
	{"allow", 1, CONF_MAX_ARGS, .args = "CIDR...|all", .set = set_acl},
	{"deny", 1, CONF_MAX_ARGS, .args = "CIDR...|all", .set = set_acl},
	{"methods", 1, CONF_MAX_ARGS, .args = "METHOD...", .set = set_methods},
	{"max_body_size", 1, 1, .args = "S", .set = set_max_body_size},
	{"limit", 2, 7, .args = "conn N|rate R/s burst B [key source|header NAME]",
	 .set = set_limit},
	{NULL},
};

const struct conf_keyword conf_route_rules[] = {
	CONDITION_ROWS,
	{"not", 2, CONF_MAX_ARGS, .args = "CONDITION ARGS...", .set = set_not, .sub = negatable},
	{.sub = conf_listener_rules},
};
