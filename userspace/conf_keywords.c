// SPDX-License-Identifier: MIT
/*
 * conf_keywords.c - the keyword tables of the configuration language and their setters: the
 * top-level sections, `global`, `pool`, and what follows `timeout`, `balance`, `server`,
 * `health`, `eject` and a pool's `tls` (listener and route blocks are parsed in conf.c).
 *
 * One row per keyword, as nginx's ngx_command_t: the walker finds the row, checks the number of
 * arguments, and a setter - most of them generic (a count, a size, a duration, a flag, one of
 * some words, a string, a path, a name) - stores the value at the row's offset. Messages that
 * list the valid keywords, and usage lines, are built from the rows, and conf_dump_keywords()
 * prints them for the documentation checks (`spliced --dump-keywords`, tests/e2e/docs.bats).
 */
#include <errno.h>
#include <stdlib.h>

#include "conf.h"
#include "conf_keywords.h"
#include "lb.h"

_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "count setters store unsigned");

/* ---- the walkers ---- */

/* the row after kw, following a table's terminating row into the next table (see sub) */
static const struct conf_keyword *next_row(const struct conf_keyword *kw)
{
	kw++;
	while (kw && !kw->name)
		kw = kw->sub;
	return kw;
}

static const struct conf_keyword *first_row(const struct conf_keyword *tab)
{
	while (tab && !tab->name)
		tab = tab->sub;
	return tab;
}

static const struct conf_keyword *find(const struct conf_keyword *tab, const char *name)
{
	for (tab = first_row(tab); tab; tab = next_row(tab))
		if (!strcmp(tab->name, name))
			return tab;
	return NULL;
}

/* append to buf (never past len, always terminated); returns the new length */
static size_t add(char *buf, size_t len, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t add(char *buf, size_t len, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (off >= len)
		return off;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n;
}

/* "a, b, c" from the rows of tab; with_args: each with its arguments ("weight N", "verify on|off") */
static const char *names(const struct conf_keyword *tab, int with_args, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (tab = first_row(tab); tab; tab = next_row(tab)) {
		off = add(buf, len, off, "%s%s", off ? ", " : "", tab->name);
		if (with_args && tab->args)
			off = add(buf, len, off, " %s", tab->args);
		for (const struct conf_word *w = tab->words; with_args && w && w->name; w++)
			off = add(buf, len, off, "%s%s", w == tab->words ? " " : "|", w->name);
	}
	return buf;
}

/* "a, b, c" from a word list */
static const char *names_of_words(const struct conf_word *w, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (; w && w->name; w++)
		off = add(buf, len, off, "%s%s", off ? ", " : "", w->name);
	return buf;
}

/* "usage: WHAT NAME ARGS [OPTION ARGS]...;" for a row (what: the row's parents, or NULL) */
static void usage(struct conf_ctx *c, const char *what, const struct conf_keyword *kw)
{
	char buf[512];
	size_t off =
		add(buf, sizeof(buf), 0, "%s%s%s", what ? what : "", what ? " " : "", kw->name);

	if (kw->args) {
		off = add(buf, sizeof(buf), off, " %s", kw->args);
	} else if (kw->set == conf_set_subtable) {
		for (const struct conf_keyword *k = kw->sub; k->name; k++)
			off = add(buf, sizeof(buf), off, "%s%s", k == kw->sub ? " " : "|", k->name);
		off = add(buf, sizeof(buf), off, " ...");
	}
	if (kw->set != conf_set_subtable && !kw->block) {
		for (const struct conf_keyword *o = kw->sub; o && o->name; o++) {
			off = add(buf, sizeof(buf), off, " [%s", o->name);
			if (o->args)
				off = add(buf, sizeof(buf), off, " %s", o->args);
			for (const struct conf_word *w = o->words; w && w->name; w++)
				off = add(buf, sizeof(buf), off, "%s%s", w == o->words ? " " : "|",
					  w->name);
			off = add(buf, sizeof(buf), off, "]");
		}
	}
	perr(c->ps, c->n->line, "usage: %s;", buf);
}

/* does the statement c->n have the shape the row asks for? Reported when not. */
static int shape_ok(struct conf_ctx *c, const struct conf_keyword *kw)
{
	struct node *n = c->n;

	if (kw->block) {
		/* sections: `NAME { ... }` or, with an argument, `NAME VALUE { ... }` */
		if (n->has_block && n->nargs >= kw->min_args && n->nargs <= kw->max_args)
			return 1;
		if (kw->max_args)
			perr(c->ps, n->line, "'%s' takes a name and a block: %s %s { ... }",
			     kw->name, kw->name, kw->args);
		else
			perr(c->ps, n->line, "'%s' takes a block: %s { ... }", kw->name, kw->name);
		return 0;
	}
	if (kw->min_args == kw->max_args)
		return !want_args(c->ps, n, kw->min_args, kw->max_args);
	if (n->has_block || n->nargs < kw->min_args || n->nargs > kw->max_args) {
		usage(c, NULL, kw);
		return 0;
	}
	return 1;
}

int conf_block(struct conf_ctx *c, const struct conf_keyword *tab, struct node *blk,
	       const char *what)
{
	char list[1024];
	int failed = 0;

	for (struct node *n = blk; n; n = n->next) {
		const struct conf_keyword *kw = find(tab, n->name);

		c->n = n;
		c->what = n->name;
		if (!kw) {
			perr(c->ps, n->line, "unknown %s '%s' (expected %s)", what, n->name,
			     names(tab, 0, list, sizeof(list)));
			failed++;
		} else if (!shape_ok(c, kw) || kw->set(c, kw, n->args, n->nargs)) {
			failed++;
		}
	}
	return failed;
}

int conf_options(struct conf_ctx *c, const struct conf_keyword *tab, char **av, int ac,
		 const char *what)
{
	struct conf_ctx oc = *c;
	char list[512], name[96];
	int rc = 0;

	for (int i = 0; i < ac; i++) {
		const struct conf_keyword *kw = find(tab, av[i]);

		if (!kw) {
			perr(c->ps, c->n->line, "unknown %s option '%s' (expected %s)", what, av[i],
			     names(tab, 1, list, sizeof(list)));
			return -1;
		}
		if (kw->max_args && i + 1 >= ac) {
			perr(c->ps, c->n->line, "%s option '%s' needs a value", what, av[i]);
			return -1;
		}
		/* a value is named by its statement: "server weight", "health rise" */
		snprintf(name, sizeof(name), "%s %s", c->n->name, kw->name);
		oc.what = name;
		if (kw->set(&oc, kw, av + i + 1, kw->max_args))
			rc = -1;
		i += kw->max_args;
	}
	return rc;
}

/* ---- generic setters ---- */

static void *field(struct conf_ctx *c, const struct conf_keyword *kw)
{
	return (char *)c->obj + kw->off;
}

/* "0", "512", "16k", "1m", "1024g": the largest unit that divides v */
static const char *size_str(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "kmg";
	int u = -1;

	while (v && u < 2 && !(v & 1023)) {
		v >>= 10;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
	return buf;
}

/* "10ms", "1s", "2m", "1h": the largest unit that divides ms */
static const char *duration_str(uint64_t ms, char *buf, size_t len)
{
	if (ms && !(ms % 3600000))
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms && !(ms % 60000))
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms && !(ms % 1000))
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	return buf;
}

/* the range's word instead of a value? */
static int is_word(const struct conf_range *r, const char *v)
{
	return r->word && !strcmp(v, r->word);
}

/* ", or WORD" when the range has a word */
static const char *or_word(const struct conf_range *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", r->word ? ", or " : "", r->word ? r->word : "");
	return buf;
}

int conf_set_count(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	const struct conf_range *r = kw->range;
	unsigned *dst = field(c, kw);
	unsigned long v;
	char w[32];

	(void)ac;
	if (is_word(r, av[0])) {
		*dst = (unsigned)r->word_value;
		return 0;
	}
	if (conf_parse_uint(av[0], (unsigned long)r->hi, &v) || v < r->lo) {
		perr(c->ps, c->n->line, "invalid number '%s' for '%s' (%llu to %llu%s)", av[0],
		     c->what, (unsigned long long)r->lo, (unsigned long long)r->hi,
		     or_word(r, w, sizeof(w)));
		return -1;
	}
	*dst = (unsigned)v;
	return 0;
}

/* a size within the range into *v; reported when not */
static int size_in_range(struct conf_ctx *c, const struct conf_range *r, const char *s, uint64_t *v)
{
	char lo[32], hi[32], w[32];

	if (!conf_parse_size(s, v) && *v >= r->lo && *v <= r->hi)
		return 0;
	perr(c->ps, c->n->line, "invalid size '%s' for '%s' (%s to %s%s)", s, c->what,
	     size_str(r->lo, lo, sizeof(lo)), size_str(r->hi, hi, sizeof(hi)),
	     or_word(r, w, sizeof(w)));
	return -1;
}

int conf_set_size32(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	uint64_t v;

	(void)ac;
	if (size_in_range(c, kw->range, av[0], &v))
		return -1;
	*(uint32_t *)field(c, kw) = (uint32_t)v;
	return 0;
}

int conf_set_size64(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	uint64_t v;

	(void)ac;
	if (is_word(kw->range, av[0]))
		v = kw->range->word_value;
	else if (size_in_range(c, kw->range, av[0], &v))
		return -1;
	*(uint64_t *)field(c, kw) = v;
	return 0;
}

int conf_set_duration(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	const struct conf_range *r = kw->range;
	char lo[32], hi[32];
	uint32_t ms;

	(void)ac;
	if (conf_parse_duration(av[0], &ms)) {
		perr(c->ps, c->n->line,
		     "invalid duration '%s' for '%s' (examples: 500ms, 10s, 2m, 1h)", av[0],
		     c->what);
		return -1;
	}
	if (ms < r->lo || ms > r->hi) {
		if (r->hi < UINT32_MAX)
			perr(c->ps, c->n->line, "invalid duration '%s' for '%s' (%s to %s)", av[0],
			     c->what, duration_str(r->lo, lo, sizeof(lo)),
			     duration_str(r->hi, hi, sizeof(hi)));
		else if (r->lo == 1)
			perr(c->ps, c->n->line, "invalid duration '%s' for '%s' (greater than 0)",
			     av[0], c->what);
		else
			perr(c->ps, c->n->line, "invalid duration '%s' for '%s' (at least %s)",
			     av[0], c->what, duration_str(r->lo, lo, sizeof(lo)));
		return -1;
	}
	*(uint32_t *)field(c, kw) = ms;
	return 0;
}

int conf_set_flag(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	(void)av;
	(void)ac;
	*(uint8_t *)field(c, kw) = 1;
	return 0;
}

int conf_set_enum(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	char list[256];
	size_t off = 0;

	(void)ac;
	for (const struct conf_word *w = kw->words; w->name; w++) {
		if (!strcmp(av[0], w->name)) {
			*(int *)field(c, kw) = w->value;
			return 0;
		}
		off = add(list, sizeof(list), off, "%s%s", off ? ", " : "", w->name);
	}
	perr(c->ps, c->n->line, "invalid value '%s' for '%s' (expected %s)", av[0], c->what, list);
	return -1;
}

int conf_set_string(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	size_t len = strlen(av[0]);

	(void)ac;
	if (len >= kw->range->hi) {
		perr(c->ps, c->n->line, "'%s' takes at most %llu bytes", c->what,
		     (unsigned long long)kw->range->hi - 1);
		return -1;
	}
	memcpy(field(c, kw), av[0], len + 1);
	return 0;
}

int conf_set_path(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	if (av[0][0] != '/' || strlen(av[0]) >= kw->range->hi) {
		perr(c->ps, c->n->line, "%s must be an absolute path shorter than %llu bytes",
		     c->what, (unsigned long long)kw->range->hi);
		return -1;
	}
	return conf_set_string(c, kw, av, ac);
}

int conf_set_name(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	(void)ac;
	return copy_name(c->ps, c->n, av[0], field(c, kw), kw->range->hi);
}

int conf_set_subtable(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	const struct conf_keyword *k = find(kw->sub, av[0]);
	struct conf_ctx sc = *c;
	char list[512], what[96];

	if (!k) {
		perr(c->ps, c->n->line, "unknown %s '%s' (expected %s)", c->what, av[0],
		     names(kw->sub, 0, list, sizeof(list)));
		return -1;
	}
	if (ac - 1 < k->min_args || ac - 1 > k->max_args) {
		usage(c, c->what, k);
		return -1;
	}
	snprintf(what, sizeof(what), "%s %s", c->what, k->name);
	sc.what = what;
	return k->set(&sc, k, av + 1, ac - 1);
}

/* ---- printing (spliced -T, splicectl show config) ---- */

void conf_put_word(FILE *f, const char *w)
{
	if (*w && !strpbrk(w, " \t;{}#"))
		fputs(w, f);
	else
		fprintf(f, "\"%s\"", w);
}

/* the value of a row with a generic setter in obj, as the language writes it; NULL: not set
 * (an empty string) or not a generic row */
static const char *value_str(const struct conf_keyword *kw, const void *obj, char *buf, size_t len)
{
	const void *v = (const char *)obj + kw->off;
	const struct conf_range *r = kw->range;

	if (kw->set == conf_set_count) {
		unsigned x = *(const unsigned *)v;

		if (r->word && x == r->word_value)
			return r->word;
		if (x < r->lo)
			return NULL; /* below what the keyword takes: the "not set" value */
		snprintf(buf, len, "%u", x);
		return buf;
	}
	if (kw->set == conf_set_size32)
		return size_str(*(const uint32_t *)v, buf, len);
	if (kw->set == conf_set_size64) {
		uint64_t x = *(const uint64_t *)v;

		return r->word && x == r->word_value ? r->word : size_str(x, buf, len);
	}
	if (kw->set == conf_set_duration)
		return *(const uint32_t *)v < r->lo ? NULL
						    : duration_str(*(const uint32_t *)v, buf, len);
	if (kw->set == conf_set_enum) {
		for (const struct conf_word *w = kw->words; w->name; w++)
			if (w->value == *(const int *)v)
				return w->name;
		return NULL;
	}
	if (kw->set == conf_set_string || kw->set == conf_set_path || kw->set == conf_set_name)
		return *(const char *)v ? v : NULL;
	return NULL;
}

/* does a generic setter store this row's value (value_str can print it)? */
static int is_generic(const struct conf_keyword *kw)
{
	return kw->set == conf_set_count || kw->set == conf_set_size32 ||
	       kw->set == conf_set_size64 || kw->set == conf_set_duration ||
	       kw->set == conf_set_enum || kw->set == conf_set_string || kw->set == conf_set_path ||
	       kw->set == conf_set_name;
}

/* " NAME VALUE" for each option of tab set in obj (a flag: " NAME" when set), skipping skip */
static void put_options(FILE *f, const struct conf_keyword *tab, const void *obj, const char *skip)
{
	char buf[64];
	const char *v;

	for (; tab->name; tab++) {
		if (skip && !strcmp(tab->name, skip))
			continue;
		if (tab->set == conf_set_flag) {
			if (*((const uint8_t *)obj + tab->off))
				fprintf(f, " %s", tab->name);
			continue;
		}
		v = value_str(tab, obj, buf, sizeof(buf));
		if (!v)
			continue;
		fprintf(f, " %s ", tab->name);
		conf_put_word(f, v);
	}
}

static void not_set(FILE *f, const struct conf_keyword *kw, int depth, const char *what)
{
	fprintf(f, "%*s# %s: not set%s%s\n", depth * 4, "", kw->name, what ? ", " : "",
		what ? what : "");
}

/* the statement of row kw for its value in obj (a table row of a block) */
static void put_row(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	char buf[64];
	const char *v;

	if (kw->print) {
		kw->print(f, kw, obj, depth);
		return;
	}
	if (kw->set == conf_set_subtable) { /* timeout KIND D: a statement per kind */
		for (const struct conf_keyword *k = kw->sub; k->name; k++) {
			v = value_str(k, obj, buf, sizeof(buf));
			if (v)
				fprintf(f, "%*s%s %s %s;\n", depth * 4, "", kw->name, k->name, v);
		}
		return;
	}
	if (!value_str(kw, obj, buf, sizeof(buf)) && !is_generic(kw)) {
		/* a row with its own setter needs its own printer: tests look for this line */
		fprintf(f, "%*s# %s: not printed (its row in conf_keywords.c has no printer)\n",
			depth * 4, "", kw->name);
		return;
	}
	v = value_str(kw, obj, buf, sizeof(buf));
	if (!v) {
		not_set(f, kw, depth, NULL);
		return;
	}
	fprintf(f, "%*s%s ", depth * 4, "", kw->name);
	conf_put_word(f, v);
	fputs(";\n", f);
}

/* ---- ranges and words the rows share ---- */

static const struct conf_range any_duration = {.lo = 0, .hi = UINT32_MAX};
static const struct conf_range positive_duration = {.lo = 1, .hi = UINT32_MAX};
static const struct conf_range count_1000 = {.lo = 1, .hi = 1000};
static const struct conf_range percent = {.lo = 0, .hi = 100};
static const struct conf_range retries = {.lo = 0, .hi = 100};
static const struct conf_range name_len = {.hi = NAME_MAX_LEN};
static const struct conf_range path_len = {.hi = PATH_MAX};
static const struct conf_word on_off[] = {{"on", 1}, {"off", 0}, {NULL, 0}};

/* ---- global ---- */

/* metrics ADDR:PORT */
static int set_metrics(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct config *cf = c->obj;
	char why[128];

	(void)kw;
	(void)ac;
	if (strlen(av[0]) >= sizeof(cf->metrics) ||
	    conf_parse_addr(av[0], &cf->metrics_addr, &cf->metrics_addrlen, 1, why, sizeof(why))) {
		perr(c->ps, c->n->line, "invalid metrics address '%s' (ADDR:PORT)", av[0]);
		return -1;
	}
	snprintf(cf->metrics, sizeof(cf->metrics), "%s", av[0]);
	return 0;
}

/* access_log TARGET format F; ("" is stderr) */
static void print_access_log(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct config *cf = obj;

	fprintf(f, "%*s%s ", depth * 4, "", kw->name);
	conf_put_word(f, cf->access_log[0] ? cf->access_log : "stderr");
	put_options(f, kw->sub, obj, NULL);
	fputs(";\n", f);
}

static void print_metrics(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct config *cf = obj;

	if (!cf->metrics[0])
		not_set(f, kw, depth, "no Prometheus endpoint");
	else
		fprintf(f, "%*s%s %s;\n", depth * 4, "", kw->name, cf->metrics);
}

#define TIMEOUT(kind, member)                                                                      \
	{                                                                                          \
		.name = kind, .min_args = 1, .max_args = 1, .args = "D", .set = conf_set_duration, \
		.off = offsetof(struct config, member), .range = &positive_duration                \
	}

static const struct conf_keyword timeout_kinds[] = {
	TIMEOUT("header", timeout_header_ms),
	TIMEOUT("idle", timeout_idle_ms),
	TIMEOUT("connect", timeout_connect_ms),
	TIMEOUT("server", timeout_server_ms),
	TIMEOUT("client", timeout_client_ms),
	TIMEOUT("tunnel", timeout_tunnel_ms),
	{NULL},
};

#define CF(member) offsetof(struct config, member)

/* the facilities `access_log syslog:FACILITY` takes (syslog(3) numbers them so) */
static const struct conf_word syslog_facilities[] = {
	{"daemon", 3 << 3},  {"user", 1 << 3},	  {"local0", 16 << 3}, {"local1", 17 << 3},
	{"local2", 18 << 3}, {"local3", 19 << 3}, {"local4", 20 << 3}, {"local5", 21 << 3},
	{"local6", 22 << 3}, {"local7", 23 << 3}, {NULL, 0},
};

static const struct conf_word accesslog_formats[] = {
	{"text", ACCESSLOG_TEXT},
	{"json", ACCESSLOG_JSON},
	{NULL, 0},
};

static const struct conf_keyword access_log_options[] = {
	{"format", 1, 1, .set = conf_set_enum, .off = CF(access_log_format),
	 .words = accesslog_formats},
	{NULL},
};

/* access_log FILE|stderr|syslog[:FACILITY]|off [format text|json] */
static int set_access_log(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct config *cf = c->obj;
	const char *fac;

	if (conf_set_string(c, kw, av, ac))
		return -1;
	cf->access_log_facility = 3 << 3; /* LOG_DAEMON */
	if (!strncmp(av[0], "syslog:", 7)) {
		const struct conf_word *w;

		fac = av[0] + 7;
		for (w = syslog_facilities; w->name && strcmp(w->name, fac); w++)
			;
		if (!w->name) {
			perr(c->ps, c->n->line,
			     "unknown syslog facility '%s' (daemon, user, local0 ... local7)", fac);
			return -1;
		}
		cf->access_log_facility = w->value;
	} else if (!av[0][0]) {
		perr(c->ps, c->n->line, "access_log needs a file, stderr, syslog or off");
		return -1;
	}
	return conf_options(c, kw->sub, av + 1, ac - 1, "access_log");
}

static const struct conf_keyword global_keywords[] = {
	{"pin_path", 1, 1, .args = "DIR", .set = conf_set_path, .off = CF(pin_path),
	 /* room for the map names after it */
	 .range = &(const struct conf_range){.hi = PATH_MAX - 64}},
	{"access_log", 1, 3, .args = "FILE|stderr|syslog[:FACILITY]|off", .set = set_access_log,
	 .off = CF(access_log), .range = &path_len, .sub = access_log_options,
	 .print = print_access_log},
	{"workers", 1, 1, .args = "N|auto", .set = conf_set_count, .off = CF(workers),
	 .range = &(const struct conf_range){.lo = 1, .hi = 256, .word = "auto", .word_value = 0}},
	{"timeout", 2, 2, .args = "KIND D", .set = conf_set_subtable, .sub = timeout_kinds},
	{"max_header_size", 1, 1, .args = "S", .set = conf_set_size32, .off = CF(max_header_size),
	 .range = &(const struct conf_range){.lo = 1024, .hi = 1 << 20}},
	{"max_connections", 1, 1, .args = "N", .set = conf_set_count, .off = CF(max_connections),
	 .range = &(const struct conf_range){.lo = 1, .hi = 10000000}},
	{"limit_table_size", 1, 1, .args = "N", .set = conf_set_count, .off = CF(limit_table_size),
	 .range = &(const struct conf_range){.lo = 1024, .hi = 16u << 20}},
	{"buffer_size", 1, 1, .args = "S", .set = conf_set_size32, .off = CF(buffer_size),
	 .range = &(const struct conf_range){.lo = 4096, .hi = 16 << 20}},
	{"pipe_size", 1, 1, .args = "S", .set = conf_set_size32, .off = CF(pipe_size),
	 .range = &(const struct conf_range){.lo = 4096, .hi = 1 << 20}},
	{"buffer_pool", 1, 1, .args = "N", .set = conf_set_count, .off = CF(buffer_pool),
	 .range = &(const struct conf_range){.lo = 0, .hi = 65536}},
	{"splice_cap", 1, 1, .args = "S", .set = conf_set_size64, .off = CF(splice_cap),
	 .range = &(const struct conf_range){.lo = 65536, .hi = 1ULL << 40}},
	{"splice_min_body", 1, 1, .args = "S|off", .set = conf_set_size64,
	 .off = CF(splice_min_body),
	 .range = &(const struct conf_range){.lo = 0,
					     .hi = 1ULL << 40,
					     .word = "off",
					     .word_value = SPLICE_MIN_BODY_OFF}},
	{"retries", 1, 1, .args = "N", .set = conf_set_count, .off = CF(retries),
	 .range = &retries},
	{"fail_timeout", 1, 1, .args = "D", .set = conf_set_duration, .off = CF(fail_timeout_ms),
	 .range = &any_duration},
	{"control", 1, 1, .args = "PATH", .set = conf_set_path, .off = CF(control),
	 /* sun_path */
	 .range = &(const struct conf_range){.hi = 108}},
	{"metrics", 1, 1, .args = "ADDR:PORT", .set = set_metrics, .print = print_metrics},
	{"user", 1, 1, .args = "NAME", .set = conf_set_name, .off = CF(user), .range = &name_len},
	{"group", 1, 1, .args = "NAME", .set = conf_set_name, .off = CF(group), .range = &name_len},
	{"pid_file", 1, 1, .args = "PATH", .set = conf_set_path, .off = CF(pid_file),
	 .range = &path_len},
	{"drain_timeout", 1, 1, .args = "D", .set = conf_set_duration, .off = CF(drain_timeout_ms),
	 .range = &any_duration},
	{"upgrade_timeout", 1, 1, .args = "D", .set = conf_set_duration,
	 .off = CF(upgrade_timeout_ms), .range = &any_duration},
	{NULL},
};

/* global { ... } */
static int set_global(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct conf_ctx gc = {.ps = c->ps, .cf = c->cf, .obj = c->cf};

	(void)av;
	(void)ac;
	if (c->ps->globals++)
		perr(c->ps, c->n->line, "more than one 'global' block");
	return conf_block(&gc, kw->sub, c->n->child, "global setting") ? -1 : 0;
}

/* ---- pool ---- */

#define SRV(member) offsetof(struct server, member)

static const struct conf_keyword server_options[] = {
	{"weight", 1, 1, .args = "N", .set = conf_set_count, .off = SRV(weight),
	 .range = &(const struct conf_range){.lo = 0, .hi = 1000}},
	{"backup", 0, 0, .set = conf_set_flag, .off = SRV(backup)},
	{"maintenance", 0, 0, .set = conf_set_flag, .off = SRV(maintenance)},
	{"max_conn", 1, 1, .args = "N", .set = conf_set_count, .off = SRV(max_conn),
	 .range = &(const struct conf_range){.lo = 1, .hi = 1000000}},
	{NULL},
};

/* server NAME HOST:PORT [OPTION...] */
static int set_server(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct pool *p = c->obj;
	struct conf_ctx sc = *c;
	struct server *s, *ns;
	char why[256];

	if (c->ps->servers >= CONF_MAX_SERVERS) {
		if (c->ps->servers++ == CONF_MAX_SERVERS) /* reported once */
			perr(c->ps, c->n->line, "more than %d servers", CONF_MAX_SERVERS);
		return -1;
	}
	ns = realloc(p->servers, sizeof(*p->servers) * (p->nservers + 1));
	if (!ns) {
		perr(c->ps, c->n->line, "out of memory");
		return -1;
	}
	p->servers = ns;
	s = &p->servers[p->nservers];
	memset(s, 0, sizeof(*s));
	s->weight = 1;
	s->line = c->n->line;
	if (copy_name(c->ps, c->n, av[0], s->name, sizeof(s->name)))
		return -1;
	for (unsigned i = 0; i < p->nservers; i++) {
		if (!strcmp(p->servers[i].name, s->name)) {
			perr(c->ps, c->n->line, "duplicate server '%s' in pool '%s'", s->name,
			     p->name);
			return -1;
		}
	}
	if (conf_parse_addr(av[1], &s->addr, &s->addrlen, 0, why, sizeof(why))) {
		perr(c->ps, c->n->line, "%s", why);
		return -1;
	}
	snprintf(s->spec, sizeof(s->spec), "%s", av[1]);
	sc.obj = s;
	if (conf_options(&sc, kw->sub, av + 2, ac - 2, "server"))
		return -1;
	s->weight_file = s->weight;
	p->nservers++;
	c->ps->servers++;
	return 0;
}

/* balance ALGO: the row's name is lb.c's name of the algorithm */
static int set_algo(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct pool *p = c->obj;

	(void)av;
	(void)ac;
	if (lb_algo_parse(kw->name, &p->algo)) {
		perr(c->ps, c->n->line, "balance %s: no such algorithm in lb.c", kw->name);
		return -1;
	}
	return 0;
}

/* balance hash [source|header NAME|cookie NAME|uri|query NAME] */
static int set_hash(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	static const struct conf_word keys[] = {
		{"header", HASH_HEADER},
		{"cookie", HASH_COOKIE},
		{"query", HASH_QUERY},
		{NULL, 0},
	};
	struct pool *p = c->obj;

	if (set_algo(c, kw, av, ac))
		return -1;
	if (ac == 0 || (ac == 1 && !strcmp(av[0], "source"))) {
		p->hash_key = HASH_SOURCE;
		return 0;
	}
	if (ac == 1 && !strcmp(av[0], "uri")) {
		p->hash_key = HASH_URI;
		return 0;
	}
	for (const struct conf_word *k = keys; ac == 2 && k->name; k++) {
		if (strcmp(av[0], k->name))
			continue;
		p->hash_key = (enum hash_key)k->value;
		return copy_name(c->ps, c->n, av[1], p->hash_name, sizeof(p->hash_name));
	}
	usage(c, "balance", kw);
	return -1;
}

static const struct conf_keyword balance_algos[] = {
	{"round_robin", 0, 0, .set = set_algo},
	{"least_conn", 0, 0, .set = set_algo},
	{"random", 0, 0, .set = set_algo},
	{"hash", 0, 2, .args = "[source|header NAME|cookie NAME|uri|query NAME]", .set = set_hash},
	{NULL},
};

/* `tls` options of a pool (upstream TLS) */
#define POOL(member) offsetof(struct pool, member)

static const struct conf_keyword pool_tls_options[] = {
	{"verify", 1, 1, .set = conf_set_enum, .off = POOL(tls_verify), .words = on_off},
	{"ca", 1, 1, .args = "FILE", .set = conf_set_string, .off = POOL(tls_ca),
	 .range = &path_len},
	{"sni", 1, 1, .args = "NAME", .set = conf_set_string, .off = POOL(tls_sni),
	 .range = &(const struct conf_range){.hi = HOST_MAX_LEN}},
	{NULL},
};

/* tls [verify on|off] [ca FILE] [sni NAME]; (verification on by default) */
static int set_pool_tls(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct pool *p = c->obj;

	p->tls_on = 1;
	p->tls_verify = 1;
	p->tls_line = c->n->line;
	return conf_options(c, kw->sub, av, ac, "tls");
}

/* "200-399" or "204" -> [lo, hi] within 100..599 */
static int parse_status_range(const char *v, unsigned *lo, unsigned *hi)
{
	const char *dash = strchr(v, '-');
	char a[8];
	unsigned long x, y;

	if (!dash) {
		if (conf_parse_uint(v, 599, &x) || x < 100)
			return -EINVAL;
		*lo = *hi = (unsigned)x;
		return 0;
	}
	if ((size_t)(dash - v) >= sizeof(a))
		return -EINVAL;
	memcpy(a, v, (size_t)(dash - v));
	a[dash - v] = '\0';
	if (conf_parse_uint(a, 599, &x) || conf_parse_uint(dash + 1, 599, &y) || x < 100 || y < x)
		return -EINVAL;
	*lo = (unsigned)x;
	*hi = (unsigned)y;
	return 0;
}

static int set_health_status(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct health_conf *h = c->obj;

	(void)kw;
	(void)ac;
	if (parse_status_range(av[0], &h->status_lo, &h->status_hi)) {
		perr(c->ps, c->n->line, "invalid status range '%s' (LO-HI within 100-599)", av[0]);
		return -1;
	}
	return 0;
}

static int set_health_host(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct health_conf *h = c->obj;

	(void)kw;
	(void)ac;
	if (strlen(av[0]) >= sizeof(h->host) || !valid_host_pattern(av[0]) || av[0][0] == '*') {
		perr(c->ps, c->n->line, "invalid health host '%s'", av[0]);
		return -1;
	}
	snprintf(h->host, sizeof(h->host), "%s", av[0]);
	return 0;
}

#define HC(member) offsetof(struct health_conf, member)

/* HTTP checks take every option, TCP checks those from `interval` on */
static const struct conf_keyword health_options[] = {
	{"host", 1, 1, .args = "H", .set = set_health_host},
	{"status", 1, 1, .args = "LO-HI", .set = set_health_status},
	{"interval", 1, 1, .args = "D", .set = conf_set_duration, .off = HC(interval_ms),
	 .range = &(const struct conf_range){.lo = 10, .hi = UINT32_MAX}},
	{"timeout", 1, 1, .args = "D", .set = conf_set_duration, .off = HC(timeout_ms),
	 .range = &positive_duration},
	{"rise", 1, 1, .args = "N", .set = conf_set_count, .off = HC(rise), .range = &count_1000},
	{"fall", 1, 1, .args = "N", .set = conf_set_count, .off = HC(fall), .range = &count_1000},
	{NULL},
};
#define HEALTH_TCP_OPTIONS (health_options + 2)

/* the first `health` of a pool sets the type; a second one is an error */
static int health_once(struct conf_ctx *c, struct health_conf *h, enum health_check type)
{
	struct pool *p = c->obj;

	if (h->type != HEALTH_CHECK_NONE) {
		perr(c->ps, c->n->line, "more than one 'health' in pool '%s'", p->name);
		return -1;
	}
	h->type = type;
	return 0;
}

/* health http PATH [OPTION...] */
static int set_health_http(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct pool *p = c->obj;
	struct health_conf *h = &p->health;
	struct conf_ctx hc = *c;
	const char *path = av[0];
	int bad = path[0] != '/' || strlen(path) >= sizeof(h->path);

	if (health_once(c, h, HEALTH_CHECK_HTTP))
		return -1;
	for (const char *s = path; *s && !bad; s++)
		bad = (unsigned char)*s <= 0x20 || *s == 0x7f;
	if (bad) {
		perr(c->ps, c->n->line, "health http needs a PATH starting with '/' (got '%s')",
		     path);
		return -1;
	}
	snprintf(h->path, sizeof(h->path), "%s", path);
	hc.obj = h;
	return conf_options(&hc, kw->sub, av + 1, ac - 1, "health http");
}

/* health tcp [OPTION...] */
static int set_health_tcp(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct pool *p = c->obj;
	struct conf_ctx hc = *c;

	if (health_once(c, &p->health, HEALTH_CHECK_TCP))
		return -1;
	hc.obj = &p->health;
	return conf_options(&hc, kw->sub, av, ac, "health tcp");
}

static const struct conf_keyword health_kinds[] = {
	{"http", 1, 1 + 12, .args = "PATH", .set = set_health_http, .sub = health_options},
	{"tcp", 0, 8, .set = set_health_tcp, .sub = HEALTH_TCP_OPTIONS},
	{NULL},
};

static const struct conf_keyword eject_options[] = {
	{"base", 1, 1, .args = "D", .set = conf_set_duration, .off = POOL(eject_base_ms),
	 .range = &positive_duration},
	{"max", 1, 1, .args = "D", .set = conf_set_duration, .off = POOL(eject_max_ms),
	 .range = &positive_duration},
	{NULL},
};

/* eject consecutive_failures N [base D] [max D] */
static int set_eject(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct pool *p = c->obj;
	int rc = conf_set_count(c, kw, av, ac);

	if (conf_options(c, kw->sub, av + 1, ac - 1, "eject"))
		return -1;
	if (p->eject_max_ms < p->eject_base_ms) {
		perr(c->ps, c->n->line, "eject max (%u ms) is shorter than base (%u ms)",
		     p->eject_max_ms, p->eject_base_ms);
		return -1;
	}
	return rc;
}

/* eject off */
static int set_eject_off(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	(void)kw;
	(void)av;
	(void)ac;
	((struct pool *)c->obj)->eject_failures = 0;
	return 0;
}

static const struct conf_keyword eject_slow_options[] = {
	{"window", 1, 1, .args = "D", .set = conf_set_duration, .off = POOL(eject_slow_window_ms),
	 .range = &(const struct conf_range){.lo = 100, .hi = UINT32_MAX}},
	{"min_requests", 1, 1, .args = "N", .set = conf_set_count,
	 .off = POOL(eject_slow_min_requests), .range = &count_1000},
	{"threshold", 1, 1, .args = "D", .set = conf_set_duration,
	 .off = POOL(eject_slow_threshold_ms), .range = &any_duration},
	{NULL},
};

/* eject slow FACTOR [window D] [min_requests N] [threshold D] */
static int set_eject_slow(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	int rc = conf_set_count(c, kw, av, ac);

	if (conf_options(c, kw->sub, av + 1, ac - 1, "eject slow"))
		return -1;
	return rc;
}

static const struct conf_keyword eject_kinds[] = {
	{"consecutive_failures", 1, 5, .args = "N", .set = set_eject, .off = POOL(eject_failures),
	 .range = &count_1000, .sub = eject_options},
	{"slow", 1, 7, .args = "FACTOR", .set = set_eject_slow, .off = POOL(eject_slow_factor),
	 .range = &(const struct conf_range){.lo = 2, .hi = 1000}, .sub = eject_slow_options},
	{"off", 0, 0, .set = set_eject_off},
	{NULL},
};

#define POOL_TIMEOUT(kind, member)                                                                 \
	{                                                                                          \
		.name = kind, .min_args = 1, .max_args = 1, .args = "D", .set = conf_set_duration, \
		.off = POOL(member), .range = &positive_duration                                   \
	}

/* `timeout KIND D` inside a pool: overrides the global timeout of that kind */
static const struct conf_keyword pool_timeout_kinds[] = {
	POOL_TIMEOUT("connect", connect_timeout_ms),
	POOL_TIMEOUT("server", timeout_server_ms),
	POOL_TIMEOUT("client", timeout_client_ms),
	{NULL},
};

static const struct conf_word retry_causes[] = {
	{"connect_failure", RETRY_CONNECT},
	{"timeout", RETRY_TIMEOUT},
	{"reset", RETRY_RESET},
	{"502", RETRY_502},
	{"503", RETRY_503},
	{"504", RETRY_504},
	{"off", 0},
	{NULL, 0},
};

/* retry_on CAUSE...: the set of causes replaces the default; `off` alone: none */
static int set_retry_on(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct pool *p = c->obj;
	char list[256];
	unsigned bits = 0;

	for (int i = 0; i < ac; i++) {
		const struct conf_word *w = kw->words;

		while (w->name && strcmp(av[i], w->name))
			w++;
		if (!w->name) {
			perr(c->ps, c->n->line, "unknown retry_on '%s' (expected %s)", av[i],
			     names_of_words(kw->words, list, sizeof(list)));
			return -1;
		}
		if (!w->value && ac > 1) {
			perr(c->ps, c->n->line, "retry_on off takes no other cause");
			return -1;
		}
		bits |= (unsigned)w->value;
	}
	p->retry_on = bits;
	return 0;
}

static const struct conf_keyword sticky_cookie_options[] = {
	{"ttl", 1, 1, .args = "D", .set = conf_set_duration, .off = POOL(sticky_ttl_ms),
	 .range = &(const struct conf_range){.lo = 1000, .hi = UINT32_MAX}},
	{NULL},
};

/* a cookie name: a token (RFC 6265), so it is sent as written */
static int cookie_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?={}", *s))
			return 0;
	return 1;
}

/* sticky cookie NAME [ttl D] */
static int set_sticky_cookie(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct pool *p = c->obj;

	if (!cookie_name_ok(av[0]) || strlen(av[0]) >= sizeof(p->sticky_cookie)) {
		perr(c->ps, c->n->line, "invalid cookie name '%s'", av[0]);
		return -1;
	}
	snprintf(p->sticky_cookie, sizeof(p->sticky_cookie), "%s", av[0]);
	return conf_options(c, kw->sub, av + 1, ac - 1, "sticky cookie");
}

static const struct conf_keyword sticky_kinds[] = {
	{"cookie", 1, 3, .args = "NAME", .set = set_sticky_cookie, .sub = sticky_cookie_options},
	{NULL},
};

static const struct conf_keyword queue_options[] = {
	{"timeout", 1, 1, .args = "D", .set = conf_set_duration, .off = POOL(queue_timeout_ms),
	 .range = &positive_duration},
	{NULL},
};

/* queue N [timeout D] */
static int set_queue(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	int rc = conf_set_count(c, kw, av, ac);

	if (conf_options(c, kw->sub, av + 1, ac - 1, "queue"))
		return -1;
	return rc;
}

/* server NAME HOST:PORT weight W [backup] [maintenance]; per server, the file's weight */
static void print_servers(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct pool *p = obj;

	for (unsigned i = 0; i < p->nservers; i++) {
		const struct server *sv = &p->servers[i];

		fprintf(f, "%*s%s %s %s weight %u", depth * 4, "", kw->name, sv->name, sv->spec,
			sv->weight_file);
		put_options(f, kw->sub, sv, "weight");
		fputs(";\n", f);
	}
}

static void print_balance(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct pool *p = obj;

	static const char *const keys[] = {
		[HASH_SOURCE] = "source", [HASH_HEADER] = "header", [HASH_COOKIE] = "cookie",
		[HASH_URI] = "uri",	  [HASH_QUERY] = "query",
	};

	fprintf(f, "%*s%s %s", depth * 4, "", kw->name, lb_algo_name(p->algo));
	if (p->algo == LB_HASH) {
		fprintf(f, " %s", keys[p->hash_key]);
		if (p->hash_key != HASH_SOURCE && p->hash_key != HASH_URI)
			fprintf(f, " %s", p->hash_name);
	}
	fputs(";\n", f);
}

static void print_pool_tls(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct pool *p = obj;

	if (!p->tls_on) {
		not_set(f, kw, depth, "plain HTTP to the servers");
		return;
	}
	fprintf(f, "%*s%s", depth * 4, "", kw->name);
	put_options(f, kw->sub, p, NULL);
	fputs(";\n", f);
}

static void print_health(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct health_conf *h = &((const struct pool *)obj)->health;

	if (h->type == HEALTH_CHECK_NONE) {
		not_set(f, kw, depth, "servers are assumed up (passive ejection only)");
		return;
	}
	fprintf(f, "%*s%s ", depth * 4, "", kw->name);
	if (h->type == HEALTH_CHECK_HTTP) {
		fputs("http ", f);
		conf_put_word(f, h->path);
		if (h->host[0])
			fprintf(f, " host %s", h->host);
		fprintf(f, " status %u-%u", h->status_lo, h->status_hi);
	} else {
		fputs("tcp", f);
	}
	put_options(f, HEALTH_TCP_OPTIONS, h, NULL);
	fputs(";\n", f);
}

static void print_eject(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct pool *p = obj;

	if (!p->eject_failures) {
		fprintf(f, "%*s%s off;\n", depth * 4, "", kw->name);
	} else {
		fprintf(f, "%*s%s consecutive_failures %u", depth * 4, "", kw->name,
			p->eject_failures);
		put_options(f, eject_options, p, NULL);
		fputs(";\n", f);
	}
	if (p->eject_slow_factor) {
		fprintf(f, "%*s%s slow %u", depth * 4, "", kw->name, p->eject_slow_factor);
		put_options(f, eject_slow_options, p, NULL);
		fputs(";\n", f);
	}
}

/* retry_on CAUSE...; from the bits, `off` for none */
static void print_retry_on(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	unsigned bits = ((const struct pool *)obj)->retry_on;

	fprintf(f, "%*s%s", depth * 4, "", kw->name);
	for (const struct conf_word *w = kw->words; w->name; w++)
		if (bits ? (bits & (unsigned)w->value) != 0 : !w->value)
			fprintf(f, " %s", w->name);
	fputs(";\n", f);
}

static void print_sticky(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct pool *p = obj;

	if (!p->sticky_cookie[0]) {
		not_set(f, kw, depth, NULL);
		return;
	}
	fprintf(f, "%*s%s cookie %s", depth * 4, "", kw->name, p->sticky_cookie);
	put_options(f, sticky_cookie_options, p, NULL);
	fputs(";\n", f);
}

static void print_queue(FILE *f, const struct conf_keyword *kw, const void *obj, int depth)
{
	const struct pool *p = obj;

	fprintf(f, "%*s%s %u", depth * 4, "", kw->name, p->queue_max);
	put_options(f, kw->sub, p, NULL);
	fputs(";\n", f);
}

static const struct conf_keyword pool_keywords[] = {
	{"server", 2, CONF_MAX_ARGS, .args = "NAME HOST:PORT", .set = set_server,
	 .sub = server_options, .print = print_servers},
	{"balance", 1, 3, .set = conf_set_subtable, .sub = balance_algos, .print = print_balance},
	{"tls", 0, 6, .set = set_pool_tls, .sub = pool_tls_options, .print = print_pool_tls},
	{"connect_timeout", 1, 1, .args = "D", .set = conf_set_duration,
	 .off = POOL(connect_timeout_ms), .range = &positive_duration},
	{"retries", 1, 1, .args = "N", .set = conf_set_count, .off = POOL(retries),
	 .range = &retries},
	{"fail_timeout", 1, 1, .args = "D", .set = conf_set_duration, .off = POOL(fail_timeout_ms),
	 .range = &any_duration},
	{"health", 1, CONF_MAX_ARGS, .set = conf_set_subtable, .sub = health_kinds,
	 .print = print_health},
	{"slow_start", 1, 1, .args = "D", .set = conf_set_duration, .off = POOL(slow_start_ms),
	 .range = &any_duration},
	{"eject", 1, 8, .set = conf_set_subtable, .sub = eject_kinds, .print = print_eject},
	{"max_ejection_percent", 1, 1, .args = "P", .set = conf_set_count,
	 .off = POOL(max_ejection_percent), .range = &percent},
	{"keepalive", 1, 1, .args = "N", .set = conf_set_count, .off = POOL(keepalive),
	 .range = &(const struct conf_range){.lo = 0, .hi = 1024}},
	{"keepalive_timeout", 1, 1, .args = "D", .set = conf_set_duration,
	 .off = POOL(keepalive_timeout_ms), .range = &positive_duration},
	{"timeout", 2, 2, .args = "KIND D", .set = conf_set_subtable, .sub = pool_timeout_kinds},
	{"retry_on", 1, 7, .args = "CAUSE...", .set = set_retry_on, .words = retry_causes,
	 .print = print_retry_on},
	{"retry_timeout", 1, 1, .args = "D", .set = conf_set_duration,
	 .off = POOL(retry_timeout_ms), .range = &any_duration},
	{"sticky", 2, 4, .set = conf_set_subtable, .sub = sticky_kinds, .print = print_sticky},
	{"queue", 1, 3, .args = "N", .set = set_queue, .off = POOL(queue_max),
	 .range = &(const struct conf_range){.lo = 0, .hi = 1000000}, .sub = queue_options,
	 .print = print_queue},
	{NULL},
};

/* pool NAME { ... } */
static int set_pool(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac)
{
	struct config *cf = c->cf;
	struct conf_ctx pc = {.ps = c->ps, .cf = cf};
	struct pool *p, *np;

	(void)ac;
	np = realloc(cf->pools, sizeof(*cf->pools) * (cf->npools + 1));
	if (!np) {
		perr(c->ps, c->n->line, "out of memory");
		return -1;
	}
	cf->pools = np;
	p = &cf->pools[cf->npools++];
	memset(p, 0, sizeof(*p));
	p->line = c->n->line;
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
	p->retry_on = RETRY_DEFAULT;
	p->eject_slow_window_ms = 10000;
	p->eject_slow_min_requests = 5;
	p->eject_slow_threshold_ms = 100;
	copy_name(c->ps, c->n, av[0], p->name, sizeof(p->name));
	for (unsigned i = 0; i + 1 < cf->npools; i++)
		if (!strcmp(cf->pools[i].name, p->name))
			perr(c->ps, c->n->line, "duplicate pool '%s' (first defined at line %d)",
			     p->name, cf->pools[i].line);
	pc.obj = p;
	conf_block(&pc, kw->sub, c->n->child, "pool setting");
	if (!p->nservers)
		perr(c->ps, c->n->line, "pool '%s' has no servers", p->name);
	return 0;
}

/* ---- the top level ---- */

const struct conf_keyword conf_sections[] = {
	{"global", 0, 0, .block = 1, .set = set_global, .sub = global_keywords},
	{"listener", 1, 1, .block = 1, .args = "NAME", .set = conf_set_listener,
	 .sub = conf_listener_keywords},
	{"pool", 1, 1, .block = 1, .args = "NAME", .set = set_pool, .sub = pool_keywords},
	{NULL},
};

/* `tls protocols` of a listener (conf.c) */
static const struct conf_word tls_versions[] = {
	{"TLSv1.2", CONF_TLS1_2},
	{"TLSv1.3", CONF_TLS1_3},
	{NULL, 0},
};

int conf_parse_tls_version(const char *s)
{
	for (const struct conf_word *w = tls_versions; w->name; w++)
		if (!strcmp(s, w->name))
			return w->value;
	return 0;
}

void conf_print(FILE *f, const struct config *cf)
{
	/* the rows of conf_sections: global, listener, pool */
	const struct conf_keyword *global = &conf_sections[0], *pool = &conf_sections[2];

	fprintf(f, "%s {\n", global->name);
	for (const struct conf_keyword *kw = global->sub; kw->name; kw++)
		put_row(f, kw, cf, 1);
	fputs("}\n", f);
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		fputc('\n', f);
		conf_print_listener(f, &cf->listeners[i]);
	}
	for (unsigned i = 0; i < cf->npools; i++) {
		fprintf(f, "\n%s %s {\n", pool->name, cf->pools[i].name);
		for (const struct conf_keyword *kw = pool->sub; kw->name; kw++)
			put_row(f, kw, &cf->pools[i], 1);
		fputs("}\n", f);
	}
}

/* every row of tab and below it, as "PATH NAME" lines; path NULL: the top level ("config") */
static void dump(FILE *f, const struct conf_keyword *tab, const char *path)
{
	char sub[128];

	for (tab = first_row(tab); tab; tab = next_row(tab)) {
		fprintf(f, "%s %s\n", path ? path : "config", tab->name);
		snprintf(sub, sizeof(sub), "%s%s%s", path ? path : "", path ? "." : "", tab->name);
		for (const struct conf_word *w = tab->words; w && w->name; w++)
			fprintf(f, "%s %s\n", sub, w->name);
		if (tab->sub)
			dump(f, tab->sub, sub);
	}
}

void conf_dump_keywords(FILE *f)
{
	dump(f, conf_sections, NULL);
	for (const struct conf_word *w = tls_versions; w->name; w++)
		fprintf(f, "listener.tls.protocols %s\n", w->name);
}
