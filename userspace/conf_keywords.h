/* SPDX-License-Identifier: MIT */
/*
 * conf_keywords.h - private to the configuration module (conf.c, conf_keywords.c): the statement
 * tree conf.c builds from the text, the bounds that keep it small, and the keyword tables that
 * turn blocks of it into struct config (nginx's ngx_command_t: one row per keyword, a few
 * generic setters). Adding a keyword: docs/ARCHITECTURE.md, "How to add a keyword".
 */
#ifndef SPLICED_CONF_KEYWORDS_H
#define SPLICED_CONF_KEYWORDS_H

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "types.h"

/*
 * Bounds of the configuration path, each reported as FILE:LINE: so that no file, however
 * made, can exhaust the stack, the memory or the time of `spliced -n` or of a reload (which
 * runs in the serving process). A listener's route block is at depth 2.
 */
#define CONF_MAX_FILE (16 << 20)  /* bytes in the file */
#define CONF_MAX_LINE 65536	  /* bytes in one line */
#define CONF_MAX_TOKEN 4096	  /* bytes in one word or quoted string (paths: PATH_MAX) */
#define CONF_MAX_ARGS 16	  /* words after a statement's name */
#define CONF_MAX_DEPTH 8	  /* blocks inside blocks */
#define CONF_MAX_BLOCK 4096	  /* statements in one block (servers of a pool, routes...) */
#define CONF_MAX_STATEMENTS 65536 /* statements in the whole file */
#define CONF_MAX_LISTENERS 256	  /* every bind is compared with every other one */
#define CONF_MAX_SERVERS 4096	  /* in all pools together (BPF per-server statistics) */
#define CONF_MAX_ERRORS 100	  /* messages written; further errors are only counted */

/* one statement: NAME ARGS... ; or NAME ARGS... { children } */
struct node {
	char *name;
	char *args[CONF_MAX_ARGS];
	int nargs;
	int line;
	int has_block;
	struct node *child; /* first statement of the block */
	struct node *next;
};

struct parser {
	const char *file;
	const char *p;
	const char *line_start; /* of the line being read, for CONF_MAX_LINE */
	int line;
	FILE *errf;
	int errors;
	unsigned statements; /* in the tree so far (CONF_MAX_STATEMENTS) */
	unsigned servers;    /* in every pool so far (CONF_MAX_SERVERS) */
	unsigned listeners;  /* so far (CONF_MAX_LISTENERS) */
	int globals;	     /* `global` blocks seen */
};

/* perr - count one error at line and write "FILE:LINE: message" (the first CONF_MAX_ERRORS) */
static inline void perr(struct parser *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void perr(struct parser *ps, int line, const char *fmt, ...)
{
	va_list ap;

	if (++ps->errors > CONF_MAX_ERRORS + 1 || !ps->errf)
		return;
	fprintf(ps->errf, "%s:%d: ", ps->file, line);
	if (ps->errors > CONF_MAX_ERRORS) {
		fprintf(ps->errf, "too many errors, the rest are not shown\n");
		return;
	}
	va_start(ap, fmt);
	vfprintf(ps->errf, fmt, ap);
	va_end(ap);
	fputc('\n', ps->errf);
}

/* want_args - the statement has lo..hi arguments and no block; else report it and return -1 */
static inline int want_args(struct parser *ps, struct node *n, int lo, int hi)
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

/* copy_name - a name of letters, digits, '-', '_', '.' that fits cap (NUL included); 0 or -1 */
static inline int copy_name(struct parser *ps, struct node *n, const char *v, char *dst, size_t cap)
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

/* valid_host_pattern - a host name, [IPv6] or *.suffix, as routes and health checks take */
static inline int valid_host_pattern(const char *h)
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

/* ---- keyword tables ---- */

/* what a setter works on */
struct conf_ctx {
	struct parser *ps;
	struct config *cf; /* the configuration being built */
	struct node *n;	   /* the statement: its line, its block */
	void *obj;	   /* the block's object: struct config, pool, server, health_conf ... */
	const char *what;  /* the keyword as messages name it: "retries", "timeout header" */
	int kw_negate;	   /* conditions: under `not` */
	struct rule_actions *acts; /* actions: the route's or the listener's */
};

struct conf_keyword;
struct conf_range;
struct conf_word;

/*
 * A setter stores av[0..ac) (the statement's arguments, or an option's value) into c->obj at
 * kw->off, within kw->range or among kw->words. The walker has already checked the argument count
 * against the row. Returns 0, or -1 after reporting the error with perr() at c->n's line.
 */
typedef int conf_set_fn(struct conf_ctx *c, const struct conf_keyword *kw, char **av, int ac);

/*
 * A printer writes the row's statement for the value in obj, as the configuration language
 * writes it ("timeout header 10s;", "eject off;"), at indentation depth, or nothing when the
 * value means "not set". Rows with a generic setter need none: conf_print finds the printer of
 * their setter.
 */
typedef void conf_print_fn(FILE *f, const struct conf_keyword *kw, const void *obj, int depth);

/*
 * One keyword of a block (a table is an array of them ending with a row whose name is NULL).
 * A statement `NAME ARGS;` takes min_args..max_args words, and no block unless the row says it
 * must have one. In an option list (`server a HOST:PORT weight 3 backup`) a row with
 * max_args 0 is a flag and one with max_args 1 takes the next word as its value.
 */
struct conf_keyword {
	const char *name;
	uint8_t min_args, max_args;
	uint8_t block;	  /* 1: `NAME ARGS { ... }`: the setter walks c->n->child with sub */
	const char *args; /* the arguments as the docs write them ("N", "NAME HOST:PORT") */
	conf_set_fn *set;
	size_t off;			/* of the field in c->obj */
	const struct conf_range *range; /* bounds for the generic setters */
	const struct conf_word *words;	/* the words conf_set_enum takes */
	/* what follows: a block's statements (block rows), the kinds of a conf_set_subtable row
	 * (`timeout header`), or the options of a statement that ends in options (`server`) */
	const struct conf_keyword *sub;
	conf_print_fn *print; /* for -T / show config; NULL: the generic setter's */
};

/* bounds of a number, size, duration (ms) or string (hi: room with the NUL) */
struct conf_range {
	uint64_t lo, hi;
	const char *word;    /* a word accepted instead of a value ("auto", "off"); NULL: none */
	uint64_t word_value; /* stored for it */
};

/* the words an enum setter takes; a list ends with a NULL name */
struct conf_word {
	const char *name;
	int value;
};

/* generic setters; the field type is in the name where it varies */
conf_set_fn conf_set_count;    /* unsigned, decimal within the range (or its word) */
conf_set_fn conf_set_size32;   /* uint32_t, conf_parse_size within the range */
conf_set_fn conf_set_size64;   /* uint64_t, conf_parse_size within the range (or its word) */
conf_set_fn conf_set_duration; /* uint32_t ms, conf_parse_duration within the range */
conf_set_fn conf_set_flag;     /* uint8_t set to 1 (an option without a value) */
conf_set_fn conf_set_enum;     /* int, one of the conf_word names */
conf_set_fn conf_set_string;   /* char[], any text shorter than range hi */
conf_set_fn conf_set_path;     /* char[], an absolute path shorter than range hi */
conf_set_fn conf_set_name;     /* char[range hi], a name as copy_name() takes */
conf_set_fn conf_set_subtable; /* `NAME KIND ARGS...`: KIND's row of kw->sub takes ARGS */

/*
 * conf_block - run every statement of the list blk through the table tab into c->obj; what
 * names the block in messages ("global", "pool"). Unknown keywords and wrong argument counts
 * are reported with the table's keywords listed. Returns the number of statements that failed.
 */
int conf_block(struct conf_ctx *c, const struct conf_keyword *tab, struct node *blk,
	       const char *what);

/*
 * conf_options - run the option words av[0..ac) of statement c->n (`weight 3 backup`) through
 * the table tab; what names them in messages ("server", "health tcp"). An unknown option or a
 * missing value stops the walk; a bad value is reported and the walk goes on. 0 or -1.
 */
int conf_options(struct conf_ctx *c, const struct conf_keyword *tab, char **av, int ac,
		 const char *what);

/*
 * A table may go on in another: its terminating row (name NULL) names the next table in sub.
 * The listener and route tables of conf.c go on in these (conf_rules.c): the rule engine's
 * conditions and actions.
 */
extern const struct conf_keyword conf_listener_keywords[]; /* conf.c */
extern const struct conf_keyword conf_route_rules[];
extern const struct conf_keyword conf_listener_rules[];

/* route_rules_free - what conf_rules.c built for route r (conditions, actions) */
void route_rules_free(struct route *r);

/* conf_route_regex - `host ~REGEX;` / `path ~REGEX;` (is_path) as a condition of route r */
int conf_route_regex(struct conf_ctx *c, struct route *r, int is_path, char **av, int ac);

/* conf_sections - the top-level table: global, listener, pool */
extern const struct conf_keyword conf_sections[];

/* conf_set_listener - conf.c's parser of `listener NAME { ... }`, a row of conf_sections */
conf_set_fn conf_set_listener;

/* conf_parse_tls_version - "TLSv1.2" / "TLSv1.3" -> CONF_TLS1_2 / CONF_TLS1_3, or 0 */
int conf_parse_tls_version(const char *s);

/* conf_put_word - w as one word of the language: quoted when it is empty or holds a blank or
 * one of ;{}# */
void conf_put_word(FILE *f, const char *w);

/* conf_print_listener - a listener block as conf.c kept it (listener->text) */
void conf_print_listener(FILE *f, const struct listener *l);

/* conf_parse_uint - decimal without sign or suffix, at most max; 0 or -EINVAL */
int conf_parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif
