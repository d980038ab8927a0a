// SPDX-License-Identifier: MIT
/*
 * test_conf.c - unit tests for userspace/conf.c: a full configuration into struct values,
 * defaults and inheritance, every diagnostic as NAME:LINE: message at the right line, several
 * errors reported together, and the duration/size/address parsers on their own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "test.h"

#define CONF_NAME "test.conf"

/*
 * A valid listener and pool, two lines, appended after the fragment under test so that the
 * fragment's line numbers start at 1 and a config missing only the fragment's mistake would load.
 */
#define BASE                                                         \
	"listener base { bind 127.0.0.1:1; route { pool base; } }\n" \
	"pool base { server b 127.0.0.1:80; }\n"

/* messages written by the last load() */
static char *msgs;
static size_t msgs_len;

/* a fresh errf whose text lands in msgs once closed */
static FILE *capture(void)
{
	FILE *f;

	free(msgs);
	msgs = NULL;
	msgs_len = 0;
	f = open_memstream(&msgs, &msgs_len);
	if (!f) {
		perror("open_memstream");
		exit(2);
	}
	return f;
}

/* load text (named CONF_NAME) and keep what went to errf in msgs */
static struct config *load(const char *text)
{
	FILE *f = capture();
	struct config *cf;

	cf = conf_load_string(CONF_NAME, text, f);
	fclose(f);
	return cf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* 1 when some message reads "CONF_NAME:line: ...what..." */
static int has_error(int line, const char *what)
{
	char prefix[64];
	size_t plen;
	const char *p = msgs;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s:%d: ", CONF_NAME, line);
	while (p && *p) {
		const char *eol = strchrnul(p, '\n');
		size_t len = (size_t)(eol - p);

		if (len >= plen && !strncmp(p, prefix, plen) &&
		    memmem(p + plen, len - plen, what, strlen(what)))
			return 1;
		p = *eol ? eol + 1 : eol;
	}
	return 0;
}

/* 1 when every message has the form "CONF_NAME:LINE: text" with LINE >= 1 */
static int all_well_formed(void)
{
	size_t nlen = strlen(CONF_NAME);
	const char *p = msgs;

	while (p && *p) {
		char *end;
		long line;

		if (strncmp(p, CONF_NAME ":", nlen + 1))
			return 0;
		line = strtol(p + nlen + 1, &end, 10);
		if (line < 1 || end[0] != ':' || end[1] != ' ' || end[2] == '\n' || !end[2])
			return 0;
		p = strchrnul(end, '\n');
		if (*p)
			p++;
	}
	return 1;
}

/*
 * expect_error - text must fail to load with a message at `line` containing `what`, every
 * message well formed, and exactly `count` messages (count < 0: do not check the count).
 */
static void expect_error(const char *text, int line, const char *what, int count)
{
	struct config *cf = load(text);

	ASSERT_TRUE(cf == NULL, "config loaded:\n%s", text);
	conf_free(cf);
	ASSERT_TRUE(has_error(line, what), "no \"%s:%d: ...%s...\" for\n%s---\ngot:\n%s", CONF_NAME,
		    line, what, text, msgs ? msgs : "");
	ASSERT_TRUE(all_well_formed(), "malformed message in:\n%s", msgs ? msgs : "");
	if (count >= 0)
		ASSERT_EQ(count_lines(msgs), count, "number of messages");
}

/* text must load without a single message; the caller frees the config */
static struct config *expect_ok(const char *text)
{
	struct config *cf = load(text);

	ASSERT_TRUE(cf != NULL, "config rejected:\n%s---\n%s", text, msgs ? msgs : "");
	ASSERT_EQ(msgs_len, 0, "bytes written to errf");
	return cf;
}

static int is_v4(const struct sockaddr_storage *ss, socklen_t len, const char *ip, int port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	struct in_addr want;

	return ss->ss_family == AF_INET && len == sizeof(*sin) &&
	       inet_pton(AF_INET, ip, &want) == 1 && sin->sin_addr.s_addr == want.s_addr &&
	       ntohs(sin->sin_port) == port;
}

static int is_v6(const struct sockaddr_storage *ss, socklen_t len, const char *ip, int port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	struct in6_addr want;

	return ss->ss_family == AF_INET6 && len == sizeof(*sin6) &&
	       inet_pton(AF_INET6, ip, &want) == 1 &&
	       !memcmp(&sin6->sin6_addr, &want, sizeof(want)) && ntohs(sin6->sin6_port) == port;
}

/* ---------------------------------------------------------------- valid configurations */

static const char full_conf[] =
	"# every global setting, two listeners, every balance form\n"		    /*  1 */
	"global {\n"								    /*  2 */
	"\tpin_path /sys/fs/bpf/test;\n"					    /*  3 */
	"\taccess_log \"/var/log/spliced access.log\";\n"			    /*  4 */
	"\tworkers 4;\n"							    /*  5 */
	"\ttimeout header 5s;\n"						    /*  6 */
	"\ttimeout idle 2m;\n"							    /*  7 */
	"\ttimeout connect 250ms;\n"						    /*  8 */
	"\ttimeout server 30;\n"						    /*  9 */
	"\ttimeout client 45s;\n"						    /* 10 */
	"\ttimeout tunnel 1h;\n"						    /* 11 */
	"\tmax_header_size 32k;\n"						    /* 12 */
	"\tmax_connections 5000;\n"						    /* 13 */
	"\tbuffer_size 64K;\n"							    /* 14 */
	"\tpipe_size 1m;\n"							    /* 15 */
	"\tretries 3;\n"							    /* 16 */
	"\tfail_timeout 20s;\n"							    /* 17 */
	"}\n"									    /* 18 */
	"listener web {\n"							    /* 19 */
	"\tbind 127.0.0.1:8080;\n"						    /* 20 */
	"\tbind [::1]:8080;\n"							    /* 21 */
	"\tsplice off;\n"							    /* 22 */
	"\troute { host API.example.com *.api.example.com; path /v1; pool api; }\n" /* 23 */
	"\troute { pool static; }\n"						    /* 24 */
	"}\n"									    /* 25 */
	"listener admin { bind *:9000; splice on; route { pool rr; } }\n"	    /* 26 */
	"pool api {\n"								    /* 27 */
	"\tbalance hash header X-User;\n"					    /* 28 */
	"\tconnect_timeout 1s;\n"						    /* 29 */
	"\tretries 5;\n"							    /* 30 */
	"\tfail_timeout 5s;\n"							    /* 31 */
	"\tserver a1 127.0.0.1:9001 weight 3;\n"				    /* 32 */
	"\tserver a2 127.0.0.2:9002 weight 0 backup;\n"				    /* 33 */
	"\tserver a3 localhost:80 backup;\n"					    /* 34 */
	"}\n"									    /* 35 */
	"pool static {\n"							    /* 36 */
	"\tbalance least_conn;\n"						    /* 37 */
	"\tserver s1 [::1]:9003 weight 1000;\n"					    /* 38 */
	"}\n"									    /* 39 */
	"pool rr { balance round_robin; server r1 10.0.0.1:80; }\n"		    /* 40 */
	"pool rnd { balance random; server x1 10.0.0.2:80; }\n"			    /* 41 */
	"pool hs { balance hash source; server h1 10.0.0.3:80; }\n"		    /* 42 */
	"pool hd { balance hash; server h2 10.0.0.4:80; }\n";			    /* 43 */

static void test_full_global(void)
{
	struct config *cf = expect_ok(full_conf);

	if (!cf)
		return;
	ASSERT_STREQ(cf->file, CONF_NAME, "file");
	ASSERT_STREQ(cf->pin_path, "/sys/fs/bpf/test", "pin_path");
	ASSERT_STREQ(cf->access_log, "/var/log/spliced access.log", "quoted access_log");
	ASSERT_EQ(cf->workers, 4, "workers");
	ASSERT_EQ(cf->timeout_header_ms, 5000, "timeout header");
	ASSERT_EQ(cf->timeout_idle_ms, 120000, "timeout idle");
	ASSERT_EQ(cf->timeout_connect_ms, 250, "timeout connect");
	ASSERT_EQ(cf->timeout_server_ms, 30000, "timeout server (bare number = seconds)");
	ASSERT_EQ(cf->timeout_client_ms, 45000, "timeout client");
	ASSERT_EQ(cf->timeout_tunnel_ms, 3600000, "timeout tunnel");
	ASSERT_EQ(cf->max_header_size, 32768, "max_header_size");
	ASSERT_EQ(cf->max_connections, 5000, "max_connections");
	ASSERT_EQ(cf->buffer_size, 65536, "buffer_size");
	ASSERT_EQ(cf->pipe_size, 1 << 20, "pipe_size");
	ASSERT_EQ(cf->retries, 3, "retries");
	ASSERT_EQ(cf->fail_timeout_ms, 20000, "fail_timeout");
	conf_free(cf);
}

static void test_full_listeners(void)
{
	struct config *cf = expect_ok(full_conf);
	struct listener *l;
	struct route *r;

	if (!cf)
		return;
	if (!ASSERT_EQ(cf->nlisteners, 2, "nlisteners"))
		goto out;
	l = &cf->listeners[0];
	ASSERT_STREQ(l->name, "web", "listener name");
	ASSERT_EQ(l->line, 19, "listener line");
	ASSERT_EQ(l->splice, SPLICE_OFF, "splice off");
	if (ASSERT_EQ(l->nbinds, 2, "web nbinds")) {
		ASSERT_TRUE(is_v4(&l->binds[0].addr, l->binds[0].addrlen, "127.0.0.1", 8080),
			    "bind 0 is 127.0.0.1:8080");
		ASSERT_STREQ(l->binds[0].str, "127.0.0.1:8080", "bind 0 str");
		ASSERT_EQ(l->binds[0].line, 20, "bind 0 line");
		ASSERT_TRUE(is_v6(&l->binds[1].addr, l->binds[1].addrlen, "::1", 8080),
			    "bind 1 is [::1]:8080");
		ASSERT_STREQ(l->binds[1].str, "[::1]:8080", "bind 1 str");
		ASSERT_EQ(l->binds[1].line, 21, "bind 1 line");
	}
	if (ASSERT_EQ(l->nroutes, 2, "web nroutes")) {
		r = &l->routes[0];
		ASSERT_EQ(r->nhosts, 2, "route 0 nhosts");
		ASSERT_STREQ(r->hosts[0], "api.example.com", "host lower-cased");
		ASSERT_STREQ(r->hosts[1], "*.api.example.com", "wildcard host");
		ASSERT_STREQ(r->path, "/v1", "path");
		ASSERT_STREQ(r->pool_name, "api", "pool_name");
		ASSERT_TRUE(r->pool == conf_find_pool(cf, "api") && r->pool, "route 0 -> pool api");
		ASSERT_EQ(r->line, 23, "route 0 line");
		r = &l->routes[1];
		ASSERT_EQ(r->nhosts, 0, "route 1 nhosts");
		ASSERT_STREQ(r->path, "", "route 1 path");
		ASSERT_TRUE(r->pool == &cf->pools[1], "route 1 -> pool static (defined later)");
	}
	l = &cf->listeners[1];
	ASSERT_STREQ(l->name, "admin", "listener 2 name");
	ASSERT_EQ(l->splice, SPLICE_ON, "splice on");
	if (ASSERT_EQ(l->nbinds, 1, "admin nbinds"))
		ASSERT_TRUE(is_v4(&l->binds[0].addr, l->binds[0].addrlen, "0.0.0.0", 9000),
			    "*:9000 is 0.0.0.0:9000");
	if (ASSERT_EQ(l->nroutes, 1, "admin nroutes"))
		ASSERT_TRUE(l->routes[0].pool == conf_find_pool(cf, "rr") && l->routes[0].pool,
			    "admin route -> pool rr");
out:
	conf_free(cf);
}

static void test_full_pools(void)
{
	static const struct {
		const char *name;
		enum lb_algo algo;
		enum hash_key key;
		const char *header;
		unsigned nservers;
		int used;
	} want[] = {
		{"api", LB_HASH, HASH_HEADER, "X-User", 3, 1},
		{"static", LB_LEAST_CONN, HASH_SOURCE, "", 1, 1},
		{"rr", LB_ROUND_ROBIN, HASH_SOURCE, "", 1, 1},
		{"rnd", LB_RANDOM2, HASH_SOURCE, "", 1, 0},
		{"hs", LB_HASH, HASH_SOURCE, "", 1, 0},
		{"hd", LB_HASH, HASH_SOURCE, "", 1, 0},
	};
	struct config *cf = expect_ok(full_conf);

	if (!cf)
		return;
	if (!ASSERT_EQ(cf->npools, sizeof(want) / sizeof(want[0]), "npools"))
		goto out;
	for (unsigned i = 0; i < cf->npools; i++) {
		struct pool *p = &cf->pools[i];

		ASSERT_STREQ(p->name, want[i].name, "pool name");
		ASSERT_EQ(p->algo, want[i].algo, want[i].name);
		ASSERT_EQ(p->hash_key, want[i].key, want[i].name);
		ASSERT_STREQ(p->hash_name, want[i].header, want[i].name);
		ASSERT_EQ(p->nservers, want[i].nservers, want[i].name);
		ASSERT_EQ(p->used, want[i].used, want[i].name);
		ASSERT_EQ(p->lb_ready, 1, want[i].name);
		ASSERT_TRUE(conf_find_pool(cf, want[i].name) == p, "conf_find_pool(%s)",
			    want[i].name);
	}
	/* pool api overrides; the others inherit the global values */
	ASSERT_EQ(cf->pools[0].connect_timeout_ms, 1000, "api connect_timeout");
	ASSERT_EQ(cf->pools[0].retries, 5, "api retries");
	ASSERT_EQ(cf->pools[0].fail_timeout_ms, 5000, "api fail_timeout");
	ASSERT_EQ(cf->pools[1].connect_timeout_ms, 250, "static connect_timeout inherited");
	ASSERT_EQ(cf->pools[1].retries, 3, "static retries inherited");
	ASSERT_EQ(cf->pools[1].fail_timeout_ms, 20000, "static fail_timeout inherited");
	ASSERT_TRUE(conf_find_pool(cf, "nope") == NULL, "conf_find_pool(nope)");
	ASSERT_TRUE(conf_find_pool(cf, "API") == NULL, "pool names are case-sensitive");
out:
	conf_free(cf);
}

static void test_full_servers(void)
{
	static const struct {
		const char *name, *spec;
		unsigned pool;
		uint32_t weight;
		uint8_t backup;
		int line;
	} want[] = {
		{"a1", "127.0.0.1:9001", 0, 3, 0, 32}, {"a2", "127.0.0.2:9002", 0, 0, 1, 33},
		{"a3", "localhost:80", 0, 1, 1, 34},   {"s1", "[::1]:9003", 1, 1000, 0, 38},
		{"r1", "10.0.0.1:80", 2, 1, 0, 40},    {"x1", "10.0.0.2:80", 3, 1, 0, 41},
		{"h1", "10.0.0.3:80", 4, 1, 0, 42},    {"h2", "10.0.0.4:80", 5, 1, 0, 43},
	};
	struct config *cf = expect_ok(full_conf);
	struct server *s;

	if (!cf)
		return;
	if (!ASSERT_EQ(cf->nservers, sizeof(want) / sizeof(want[0]), "nservers"))
		goto out;
	for (unsigned i = 0; i < cf->nservers; i++) {
		s = cf->servers[i];
		if (!ASSERT_TRUE(s != NULL, "servers[%u]", i))
			continue;
		ASSERT_EQ(s->id, i, "server ids are sequential");
		ASSERT_STREQ(s->name, want[i].name, "server name");
		ASSERT_STREQ(s->spec, want[i].spec, want[i].name);
		ASSERT_TRUE(s->pool == &cf->pools[want[i].pool], "%s: pool", want[i].name);
		ASSERT_EQ(s->weight, want[i].weight, want[i].name);
		ASSERT_EQ(s->backup, want[i].backup, want[i].name);
		ASSERT_EQ(s->line, want[i].line, want[i].name);
	}
	s = cf->servers[0];
	ASSERT_TRUE(is_v4(&s->addr, s->addrlen, "127.0.0.1", 9001), "a1 address");
	s = cf->servers[2];
	ASSERT_TRUE(is_v4(&s->addr, s->addrlen, "127.0.0.1", 80) ||
			    is_v6(&s->addr, s->addrlen, "::1", 80),
		    "localhost:80 resolved to a loopback address (family %d)", s->addr.ss_family);
	s = cf->servers[3];
	ASSERT_TRUE(is_v6(&s->addr, s->addrlen, "::1", 9003), "s1 address");
	ASSERT_EQ(cf->pools[0].lb.n, 3, "balancer members");
	ASSERT_EQ(cf->pools[0].lb.m[0].weight, 3, "weight reaches the balancer");
	ASSERT_EQ(cf->pools[0].lb.m[1].backup, 1, "backup reaches the balancer");
out:
	conf_free(cf);
}

static void test_defaults(void)
{
	struct config *cf = expect_ok(BASE);
	struct pool *p;

	if (!cf)
		return;
	ASSERT_STREQ(cf->pin_path, "/sys/fs/bpf/spliced", "pin_path");
	ASSERT_STREQ(cf->access_log, "", "access_log");
	ASSERT_EQ(cf->workers, 0, "workers");
	ASSERT_EQ(cf->timeout_header_ms, 10000, "timeout header 10s");
	ASSERT_EQ(cf->timeout_idle_ms, 60000, "timeout idle 60s");
	ASSERT_EQ(cf->timeout_connect_ms, 3000, "timeout connect 3s");
	ASSERT_EQ(cf->timeout_server_ms, 60000, "timeout server");
	ASSERT_EQ(cf->timeout_client_ms, 60000, "timeout client");
	ASSERT_EQ(cf->timeout_tunnel_ms, 3600000, "timeout tunnel");
	ASSERT_EQ(cf->max_header_size, 16384, "max_header_size");
	ASSERT_EQ(cf->max_connections, 10000, "max_connections");
	ASSERT_EQ(cf->buffer_size, 32768, "buffer_size");
	ASSERT_EQ(cf->pipe_size, 262144, "pipe_size");
	ASSERT_EQ(cf->retries, 2, "retries");
	ASSERT_EQ(cf->fail_timeout_ms, 10000, "fail_timeout");
	ASSERT_TRUE(cf->splice_min_body == SPLICE_MIN_BODY_OFF, "splice_min_body off");
	if (ASSERT_EQ(cf->nlisteners, 1, "nlisteners"))
		ASSERT_EQ(cf->listeners[0].splice, SPLICE_AUTO, "splice");
	if (!ASSERT_EQ(cf->npools, 1, "npools"))
		goto out;
	p = &cf->pools[0];
	ASSERT_EQ(p->algo, LB_ROUND_ROBIN, "balance");
	ASSERT_EQ(p->connect_timeout_ms, 3000, "pool connect_timeout");
	ASSERT_EQ(p->retries, 2, "pool retries");
	ASSERT_EQ(p->fail_timeout_ms, 10000, "pool fail_timeout");
	ASSERT_EQ(p->retry_on, RETRY_CONNECT | RETRY_RESET, "retry_on connect_failure reset");
	ASSERT_EQ(p->retry_timeout_ms, 0, "retry_timeout off");
	ASSERT_EQ(p->queue_max, 0, "queue 0");
	ASSERT_EQ(p->queue_timeout_ms, 3000, "queue timeout: the connect timeout");
	ASSERT_EQ(p->eject_slow_factor, 0, "eject slow off");
	ASSERT_STREQ(p->sticky_cookie, "", "sticky off");
	if (ASSERT_EQ(p->nservers, 1, "nservers")) {
		ASSERT_EQ(p->servers[0].weight, 1, "weight");
		ASSERT_EQ(p->servers[0].backup, 0, "backup");
		ASSERT_EQ(p->servers[0].id, 0, "id");
	}
out:
	conf_free(cf);
}

static void test_pool_inherits_global(void)
{
	struct config *cf = expect_ok("global { timeout connect 7s; retries 0; fail_timeout 1m; }\n"
				      "pool own { connect_timeout 500ms; retries 9;"
				      " server o 127.0.0.1:81; }\n" BASE);

	if (!cf)
		return;
	if (!ASSERT_EQ(cf->npools, 2, "npools"))
		goto out;
	ASSERT_EQ(cf->pools[0].connect_timeout_ms, 500, "own connect_timeout");
	ASSERT_EQ(cf->pools[0].retries, 9, "own retries");
	ASSERT_EQ(cf->pools[0].fail_timeout_ms, 60000, "fail_timeout inherited");
	ASSERT_EQ(cf->pools[1].connect_timeout_ms, 7000, "connect_timeout inherits global");
	ASSERT_EQ(cf->pools[1].retries, 0, "retries 0 inherited (not the default)");
out:
	conf_free(cf);
}

static void test_failover_keywords(void)
{
	struct config *cf = expect_ok(
		"global { timeout server 9s; timeout client 8s; }\n"
		"pool f { timeout server 2s; timeout connect 300ms; retry_on timeout 502 503;"
		" retry_timeout 5s; sticky cookie SRV ttl 1h; queue 20 timeout 4s;"
		" eject slow 5 window 2s min_requests 9 threshold 30ms; balance hash cookie sid;"
		" server a 127.0.0.1:81 max_conn 7; server b 127.0.0.1:82; }\n"
		"pool q { balance hash query user; server c 127.0.0.1:83; }\n"
		"pool u { balance hash uri; retry_on off; server d 127.0.0.1:84; }\n" BASE);
	struct pool *p;

	if (!cf)
		return;
	if (!ASSERT_EQ(cf->npools, 4, "npools"))
		goto out;
	p = &cf->pools[0];
	ASSERT_EQ(p->timeout_server_ms, 2000, "own timeout server");
	ASSERT_EQ(p->timeout_client_ms, 8000, "timeout client inherited");
	ASSERT_EQ(p->connect_timeout_ms, 300, "timeout connect");
	ASSERT_EQ(p->retry_on, RETRY_TIMEOUT | RETRY_502 | RETRY_503, "retry_on");
	ASSERT_EQ(p->retry_timeout_ms, 5000, "retry_timeout");
	ASSERT_STREQ(p->sticky_cookie, "SRV", "sticky cookie");
	ASSERT_EQ(p->sticky_ttl_ms, 3600000, "ttl");
	ASSERT_EQ(p->queue_max, 20, "queue");
	ASSERT_EQ(p->queue_timeout_ms, 4000, "queue timeout");
	ASSERT_EQ(p->eject_slow_factor, 5, "eject slow");
	ASSERT_EQ(p->eject_slow_window_ms, 2000, "window");
	ASSERT_EQ(p->eject_slow_min_requests, 9, "min_requests");
	ASSERT_EQ(p->eject_slow_threshold_ms, 30, "threshold");
	ASSERT_EQ(p->hash_key, HASH_COOKIE, "hash cookie");
	ASSERT_STREQ(p->hash_name, "sid", "cookie name");
	ASSERT_EQ(p->servers[0].max_conn, 7, "max_conn");
	ASSERT_EQ(p->servers[1].max_conn, 0, "no cap");
	ASSERT_EQ(strlen(p->servers[0].cookie), 16, "opaque cookie value");
	ASSERT_TRUE(strcmp(p->servers[0].cookie, p->servers[1].cookie), "one per server");
	ASSERT_EQ(cf->pools[1].hash_key, HASH_QUERY, "hash query");
	ASSERT_STREQ(cf->pools[1].hash_name, "user", "query name");
	ASSERT_EQ(cf->pools[2].hash_key, HASH_URI, "hash uri");
	ASSERT_EQ(cf->pools[2].retry_on, 0, "retry_on off");
	ASSERT_EQ(cf->pools[3].timeout_server_ms, 9000, "BASE pool: the global timeout server");
out:
	conf_free(cf);
}

static void test_buffer_covers_header(void)
{
	struct config *cf = expect_ok("global { max_header_size 64k; buffer_size 4k; }\n" BASE);

	if (!cf)
		return;
	ASSERT_EQ(cf->max_header_size, 65536, "max_header_size");
	ASSERT_EQ(cf->buffer_size, 65536 + 1024, "buffer_size raised to hold a whole head");
	conf_free(cf);
}

static void test_syntax_accepted(void)
{
	/* comments anywhere, CRLF, tabs, quoted words, several statements on one line */
	struct config *cf =
		expect_ok("# leading comment\r\n"
			  "global{workers auto;retries 1;}# trailing\r\n"
			  "pool \"q\" {\tserver \"x\" \"127.0.0.1:81\" backup weight 7 ;}\n"
			  "\n\n" BASE "# the end");

	if (!cf)
		return;
	ASSERT_EQ(cf->workers, 0, "workers auto");
	ASSERT_EQ(cf->retries, 1, "retries");
	if (ASSERT_EQ(cf->npools, 2, "npools") && ASSERT_EQ(cf->pools[0].nservers, 1, "servers")) {
		ASSERT_STREQ(cf->pools[0].name, "q", "quoted pool name");
		ASSERT_EQ(cf->pools[0].servers[0].weight, 7, "weight after backup");
		ASSERT_EQ(cf->pools[0].servers[0].backup, 1, "backup before weight");
	}
	ASSERT_EQ(cf->listeners[0].line, 6, "line count across CRLF and blank lines");
	conf_free(cf);
}

/* ---------------------------------------------------------------- diagnostics */

static void test_err_unknown_section(void)
{
	expect_error("frontend web {\n"
		     "\tbind 127.0.0.1:80;\n"
		     "}\n" BASE,
		     1, "unknown top-level section 'frontend'", 1);
	expect_error(BASE "\n"
			  "timeout 5s;\n",
		     4, "unknown top-level section 'timeout'", 1);
}

static void test_err_unknown_global(void)
{
	expect_error("global {\n"
		     "\tworkers 2;\n"
		     "\tthreads 4;\n"
		     "}\n" BASE,
		     3, "unknown global setting 'threads'", 1);
	expect_error("global {\n"
		     "\ttimeout read 5s;\n"
		     "}\n" BASE,
		     2, "unknown timeout 'read'", 1);
}

static void test_err_unknown_listener(void)
{
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { pool base; }\n"
		     "\tbacklog 128;\n"
		     "}\n" BASE,
		     4, "unknown listener setting 'backlog'", 1);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\tsplice maybe;\n"
		     "\troute { pool base; }\n"
		     "}\n" BASE,
		     3, "invalid value 'maybe' for 'splice' (expected auto, on, off)", 1);
}

/* splice_min_body: a size, 0 (every body) or off */
static void test_splice_min_body(void)
{
	static const struct {
		const char *v;
		uint64_t want;
	} ok[] = {{"1m", 1 << 20}, {"0", 0}, {"256k", 256 << 10}, {"off", SPLICE_MIN_BODY_OFF}};
	char text[256];

	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config *cf;

		snprintf(text, sizeof(text), "global { splice_min_body %s; }\n" BASE, ok[i].v);
		cf = expect_ok(text);
		if (cf)
			ASSERT_TRUE(cf->splice_min_body == ok[i].want, "splice_min_body %s",
				    ok[i].v);
		conf_free(cf);
	}
	expect_error("global { splice_min_body lots; }\n" BASE, 1,
		     "invalid size 'lots' for 'splice_min_body' (0 to 1024g, or off)", 1);
}

static void test_err_unknown_route(void)
{
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute {\n"
		     "\t\tpool base;\n"
		     "\t\tbogus GET;\n"
		     "\t}\n"
		     "}\n" BASE,
		     5, "unknown route setting 'bogus'", 1);
}

/* upgrade_protocols: "websocket" by default, a listener's list for its routes, a route's own
 * list over it (wherever the listener's statement stands), "none" */
static void test_upgrade_protocols(void)
{
	struct config *cf;

	cf = expect_ok("listener a {\n"
		       "\tbind 127.0.0.1:2;\n"
		       "\troute { path /x; pool base; }\n"
		       "\troute { upgrade_protocols H2C websocket; pool base; }\n"
		       "\troute { upgrade_protocols none; pool base; }\n"
		       "\tupgrade_protocols websocket Foo;\n"
		       "}\n" BASE);
	if (!cf)
		return;
	if (ASSERT_EQ(cf->nlisteners, 2, "nlisteners") &&
	    ASSERT_EQ(cf->listeners[0].nroutes, 3, "nroutes")) {
		const struct listener *l = &cf->listeners[0];

		ASSERT_STREQ(l->upgrade_protocols, "websocket foo", "listener, lower case");
		ASSERT_EQ(l->upgrade_line, 6, "listener line");
		ASSERT_STREQ(l->routes[0].upgrade_protocols, "websocket foo", "inherited");
		ASSERT_EQ(l->routes[0].upgrade_line, 0, "inherited: no line");
		ASSERT_STREQ(l->routes[1].upgrade_protocols, "h2c websocket", "route's own");
		ASSERT_EQ(l->routes[1].upgrade_line, 4, "route line");
		ASSERT_STREQ(l->routes[2].upgrade_protocols, "", "none");
		ASSERT_STREQ(cf->listeners[1].routes[0].upgrade_protocols, "websocket", "default");
	}
	conf_free(cf);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { pool base; upgrade_protocols; }\n"
		     "}\n" BASE,
		     3, "usage: upgrade_protocols NAME...|none;", 1);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { pool base; }\n"
		     "\tupgrade_protocols websocket/13;\n"
		     "}\n" BASE,
		     4, "invalid protocol name 'websocket/13'", 1);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { pool base; upgrade_protocols none websocket; }\n"
		     "}\n" BASE,
		     3, "'upgrade_protocols none' takes no other name", 1);
	expect_error(
		"listener l {\n"
		"\tbind 127.0.0.1:2;\n"
		"\troute { pool base; }\n"
		"\tupgrade_protocols "
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb;\n"
		"}\n" BASE,
		4, "upgrade_protocols: names longer than 127 characters in all", 1);
}

/* a path prefix is matched against normalized request paths: one that is not itself in that
 * form could never match, and is an error that shows the form to write */
static void test_err_route_path_not_normalized(void)
{
	static const struct {
		const char *path, *what;
	} tab[] = {
		{"/a//b", "path prefix '/a//b' never matches: request paths are matched "
			  "normalized, write '/a/b'"},
		{"/public/../admin", "write '/admin'"},
		{"/a/./", "write '/a/'"},
		{"/%7euser", "write '/~user'"},
		{"/caf%c3%a9", "write '/caf%C3%A9'"},
		{"/..", "path prefix '/..' never matches: requests with such a path are refused"},
		{"/a%2fb", "requests with such a path are refused"},
		{"/a\\\\b", "requests with such a path are refused"},
	};
	char text[512];
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		snprintf(text, sizeof(text),
			 "listener l {\n\tbind 127.0.0.1:2;\n\troute { path \"%s\"; pool base; }\n"
			 "}\n" BASE,
			 tab[i].path);
		expect_error(text, 3, tab[i].what, 1);
	}
	conf_free(expect_ok("listener l {\n\tbind 127.0.0.1:2;\n"
			    "\troute { path /static/; pool base; }\n"
			    "\troute { path /caf%C3%A9/x.y; pool base; }\n"
			    "\troute { path /; pool base; }\n}\n" BASE));
}

static void test_err_unknown_pool(void)
{
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81;\n"
		     "\tstickiness on;\n"
		     "}\n" BASE,
		     3, "unknown pool setting 'stickiness'", 1);
	/* the server is dropped, so the pool is also empty */
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81 weight 2 slow;\n"
		     "}\n" BASE,
		     2, "unknown server option 'slow'", 2);
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81 weight 2 slow;\n"
		     "}\n" BASE,
		     1, "pool 'q' has no servers", 2);
}

static void test_err_missing_semicolon(void)
{
	/* before '}': the statement is still taken */
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81\n"
		     "}\n" BASE,
		     2, "missing ';' after 'server'", 1);
	/* at the end of the file */
	expect_error(BASE "global { workers 2; }\n"
			  "global",
		     4, "missing ';' after 'global'", -1);
	/* before the next statement: reported on the line of the unterminated statement */
	expect_error("global {\n"
		     "\tworkers 4\n"
		     "\tretries 3;\n"
		     "}\n" BASE,
		     2, "'workers' takes 1 argument", 1);
}

static void test_err_unterminated_quote(void)
{
	expect_error("global {\n"
		     "\taccess_log \"/var/log/x.log;\n"
		     "}\n" BASE,
		     2, "unterminated quoted string", -1);
	/* the rest of the file is still read: the error after it is found too */
	expect_error("global {\n"
		     "\taccess_log \"/var/log/x.log;\n"
		     "}\n"
		     "global { workers 1000; }\n" BASE,
		     4, "invalid number '1000' for 'workers'", -1);
}

static void test_err_missing_brace(void)
{
	expect_error(BASE "pool q {\n"
			  "\tserver x 127.0.0.1:81;\n",
		     3, "missing '}' for block opened here", 1);
	/* the inner '}' closes the route; the listener's '{' on line 1 is left open */
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute {\n"
		     "\t\tpool base;\n"
		     "\t}\n"
		     "\n" BASE,
		     1, "missing '}' for block opened here", -1);
	/* '{' on its own line is where the block opens */
	expect_error(BASE "pool q\n"
			  "{\n"
			  "\tserver x 127.0.0.1:81;\n",
		     4, "missing '}' for block opened here", 1);
}

static void test_err_extra_brace(void)
{
	expect_error(BASE "}\n", 3, "unexpected '}'", 1);
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81;\n"
		     "\t}\n"
		     "}\n" BASE,
		     4, "unexpected '}'", 1);
	expect_error(BASE "\n"
			  ";\n",
		     4, "unexpected ';'", 1);
}

static void test_err_bad_duration(void)
{
	expect_error("global {\n"
		     "\ttimeout idle 10x;\n"
		     "}\n" BASE,
		     2, "invalid duration '10x'", 1);
	expect_error("global {\n"
		     "\n"
		     "\ttimeout header 0;\n"
		     "}\n" BASE,
		     3, "invalid duration '0' for 'timeout header' (greater than 0)", 1);
	expect_error("global { fail_timeout -1s; }\n" BASE, 1, "invalid duration '-1s'", 1);
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81;\n"
		     "\tconnect_timeout 5 s;\n"
		     "}\n" BASE,
		     3, "'connect_timeout' takes 1 argument", 1);
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81;\n"
		     "\tconnect_timeout 5sec;\n"
		     "}\n" BASE,
		     3, "invalid duration '5sec'", 1);
}

static void test_err_bad_size(void)
{
	expect_error("global {\n"
		     "\tmax_header_size 16q;\n"
		     "}\n" BASE,
		     2, "invalid size '16q' for 'max_header_size'", 1);
	expect_error("global { max_header_size 512; }\n" BASE, 1,
		     "invalid size '512' for 'max_header_size'", 1);
	expect_error("global { pipe_size 2m; }\n" BASE, 1, "invalid size '2m' for 'pipe_size'", 1);
	expect_error("global { buffer_size 1k; }\n" BASE, 1, "invalid size '1k' for 'buffer_size'",
		     1);
}

static void test_err_bad_number(void)
{
	expect_error("global { workers many; }\n" BASE, 1, "invalid number 'many' for 'workers'",
		     1);
	expect_error("global { workers 0; }\n" BASE, 1, "invalid number '0' for 'workers'", 1);
	expect_error("global { workers 257; }\n" BASE, 1, "invalid number '257' for 'workers'", 1);
	expect_error("global { retries 101; }\n" BASE, 1, "invalid number '101' for 'retries'", 1);
	expect_error("global { max_connections 0; }\n" BASE, 1,
		     "invalid number '0' for 'max_connections'", 1);
	expect_error("global { retries 3x; }\n" BASE, 1, "invalid number '3x' for 'retries'", 1);
	expect_error("\n"
		     "pool q { server x 127.0.0.1:81; retries -1; }\n" BASE,
		     2, "invalid number '-1' for 'retries'", 1);
	expect_error("global { workers 1 2; }\n" BASE, 1, "'workers' takes 1 argument", 1);
}

static void test_err_weight(void)
{
	struct config *cf;

	/* the pool loses its only server, hence two messages */
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81 weight 1001;\n"
		     "}\n" BASE,
		     2, "invalid number \'1001\' for \'server weight\'", 2);
	expect_error("pool q {\n"
		     "\tserver y 127.0.0.1:82;\n"
		     "\tserver x 127.0.0.1:81 weight -1;\n"
		     "}\n" BASE,
		     3, "invalid number \'-1\' for \'server weight\'", 1);
	expect_error("pool q {\n"
		     "\tserver y 127.0.0.1:82;\n"
		     "\tserver x 127.0.0.1:81 weight heavy;\n"
		     "}\n" BASE,
		     3, "invalid number \'heavy\' for \'server weight\'", 1);
	/* the bounds themselves are valid: 0 drains, 1000 is the maximum */
	cf = expect_ok("pool q { server x 127.0.0.1:81 weight 0; server y 127.0.0.1:82 weight "
		       "1000; }\n" BASE);
	if (cf && ASSERT_EQ(cf->pools[0].nservers, 2, "nservers")) {
		ASSERT_EQ(cf->pools[0].servers[0].weight, 0, "weight 0");
		ASSERT_EQ(cf->pools[0].servers[1].weight, 1000, "weight 1000");
	}
	conf_free(cf);
}

static void test_err_balance(void)
{
	expect_error(
		"pool q {\n"
		"\tbalance fastest;\n"
		"\tserver x 127.0.0.1:81;\n"
		"}\n" BASE,
		2, "unknown balance 'fastest' (expected round_robin, least_conn, random, hash)", 1);
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81;\n"
		     "\tbalance round_robin source;\n"
		     "}\n" BASE,
		     3, "usage: balance round_robin;", 1);
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81;\n"
		     "\tbalance hash header;\n"
		     "}\n" BASE,
		     3, "usage: balance hash [source|header NAME|cookie NAME|uri|query NAME]", 1);
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81;\n"
		     "\tbalance hash session sid;\n"
		     "}\n" BASE,
		     3, "usage: balance hash [source|header NAME|cookie NAME|uri|query NAME]", 1);
	expect_error("pool q { server x 127.0.0.1:81; retry_on 500; }\n" BASE, 1,
		     "unknown retry_on '500' (expected connect_failure, timeout, reset, 502, 503, "
		     "504, off)",
		     1);
	expect_error("pool q { server x 127.0.0.1:81; sticky cookie a=b; }\n" BASE, 1,
		     "invalid cookie name 'a=b'", 1);
	expect_error("pool q { server x 127.0.0.1:81; timeout header 1s; }\n" BASE, 1,
		     "unknown timeout 'header' (expected connect, server, client)", 1);
	expect_error("pool q { server x 127.0.0.1:81; balance; }\n" BASE, 1, "usage: balance", 1);
	expect_error("pool q { server x 127.0.0.1:81; balance hash header \"X User\"; }\n" BASE, 1,
		     "invalid character ' ' in name 'X User'", 1);
}

static void test_err_route_without_pool(void)
{
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute {\n"
		     "\t\thost example.com;\n"
		     "\t}\n"
		     "}\n" BASE,
		     3, "route has no 'pool'", 1);
}

static void test_err_route_unknown_pool(void)
{
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { pool base; }\n"
		     "\troute { path /x; pool nope; }\n"
		     "}\n" BASE,
		     4, "route refers to unknown pool 'nope'", 1);
}

static void test_err_route_values(void)
{
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { host example.com *; pool base; }\n"
		     "}\n" BASE,
		     3, "invalid host '*'", 1);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { host *.; pool base; }\n"
		     "}\n" BASE,
		     3, "invalid host '*.'", 1);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { path api; pool base; }\n"
		     "}\n" BASE,
		     3, "path prefix must start with '/'", 1);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { host a b c d e f g h i; pool base; }\n"
		     "}\n" BASE,
		     3, "too many hosts in one route (max 8)", 1);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { host; pool base; }\n"
		     "}\n" BASE,
		     3, "usage: host NAME...|~REGEX;", 1);
	/* a route without a block is dropped, so the listener has none */
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute base;\n"
		     "}\n" BASE,
		     3, "'route' takes a name and a block", 2);
}

static void test_err_duplicates(void)
{
	expect_error(BASE "\n"
			  "pool base {\n"
			  "\tserver c 127.0.0.1:81;\n"
			  "}\n",
		     4, "duplicate pool 'base' (first defined at line 2)", 1);
	expect_error(BASE "listener base {\n"
			  "\tbind 127.0.0.1:2;\n"
			  "\troute { pool base; }\n"
			  "}\n",
		     3, "duplicate listener 'base' (first defined at line 1)", 1);
	expect_error("pool q {\n"
		     "\tserver x 127.0.0.1:81;\n"
		     "\tserver x 127.0.0.1:82;\n"
		     "}\n" BASE,
		     3, "duplicate server 'x' in pool 'q'", 1);
	expect_error("global { }\n"
		     "global { }\n" BASE,
		     2, "more than one 'global' block", 1);
}

static void test_err_duplicate_server_other_pool_ok(void)
{
	/* server names are per pool: the same name in two pools is fine */
	struct config *cf = expect_ok("pool q { server b 127.0.0.1:81; }\n" BASE);

	if (cf)
		ASSERT_EQ(cf->nservers, 2, "nservers");
	conf_free(cf);
}

static void test_err_listener_incomplete(void)
{
	expect_error("listener l {\n"
		     "\troute { pool base; }\n"
		     "}\n" BASE,
		     1, "listener 'l' has no 'bind'", 1);
	expect_error("\n"
		     "listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "}\n" BASE,
		     2, "listener 'l' has no 'route'", 1);
	expect_error("listener l;\n" BASE, 1, "'listener' takes a name and a block", 1);
	expect_error("listener { bind 127.0.0.1:2; route { pool base; } }\n" BASE, 1,
		     "'listener' takes a name and a block", 1);
}

static void test_err_pool_incomplete(void)
{
	expect_error("pool q {\n"
		     "\tbalance least_conn;\n"
		     "}\n" BASE,
		     1, "pool 'q' has no servers", 1);
	expect_error("pool q { }\n" BASE, 1, "pool 'q' has no servers", 1);
	expect_error("pool q;\n" BASE, 1, "'pool' takes a name and a block", 1);
	expect_error("pool q/r { server x 127.0.0.1:81; }\n" BASE, 1,
		     "invalid character '/' in name 'q/r'", 1);
	expect_error("pool q { server x; }\n" BASE, 1, "usage: server NAME HOST:PORT", 2);
}

static void test_err_no_listener(void)
{
	expect_error("pool base { server b 127.0.0.1:80; }\n", 1, "no 'listener' defined", 1);
	expect_error("", 1, "no 'listener' defined", 1);
	expect_error("# only a comment\n", 1, "no 'listener' defined", 1);
}

static void test_err_bad_address(void)
{
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1;\n"
		     "\troute { pool base; }\n"
		     "}\n" BASE,
		     2, "invalid address '127.0.0.1'", 2);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\tbind 127.0.0.1:70000;\n"
		     "\troute { pool base; }\n"
		     "}\n" BASE,
		     3, "invalid port in '127.0.0.1:70000'", 1);
	expect_error("listener l {\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\tbind ::1:80;\n"
		     "\troute { pool base; }\n"
		     "}\n" BASE,
		     3, "invalid address '::1:80'", 1);
	expect_error("pool q {\n"
		     "\tserver y 127.0.0.1:82;\n"
		     "\tserver x 127.0.0.1:0;\n"
		     "}\n" BASE,
		     3, "invalid port in '127.0.0.1:0'", 1);
	expect_error("pool q {\n"
		     "\tserver y 127.0.0.1:82;\n"
		     "\tserver x 127.0.0.1:http;\n"
		     "}\n" BASE,
		     3, "invalid port in '127.0.0.1:http'", 1);
}

static void test_err_unresolvable(void)
{
	expect_error("pool q {\n"
		     "\tserver y 127.0.0.1:82;\n"
		     "\tserver x no-such-host.invalid:80;\n"
		     "}\n" BASE,
		     3, "cannot resolve 'no-such-host.invalid'", 1);
	expect_error("listener l {\n"
		     "\tbind no-such-host.invalid:80;\n"
		     "\tbind 127.0.0.1:2;\n"
		     "\troute { pool base; }\n"
		     "}\n" BASE,
		     2, "cannot resolve 'no-such-host.invalid'", 1);
}

static void test_err_address_bound_twice(void)
{
	/* across listeners: the later bind is the one reported */
	expect_error(BASE "listener l {\n"
			  "\troute { pool base; }\n"
			  "\tbind 127.0.0.2:80;\n"
			  "\tbind 127.0.0.1:1;\n"
			  "}\n",
		     6, "address 127.0.0.1:1 is already bound at line 1", 1);
	/* within one listener, spelt differently */
	expect_error("listener l {\n"
		     "\tbind *:8080;\n"
		     "\troute { pool base; }\n"
		     "\tbind 0.0.0.0:8080;\n"
		     "}\n" BASE,
		     4, "address 0.0.0.0:8080 is already bound at line 2", 1);
	expect_error("listener l {\n"
		     "\tbind [::1]:8080;\n"
		     "\troute { pool base; }\n"
		     "}\n"
		     "listener m { bind [0:0::1]:8080; route { pool base; } }\n" BASE,
		     5, "is already bound at line 2", 1);
}

static void test_err_several_reported(void)
{
	static const char text[] = "global {\n"				    /*  1 */
				   "\tworkers lots;\n"			    /*  2 */
				   "\ttimeout idle forever;\n"		    /*  3 */
				   "\tcolour blue;\n"			    /*  4 */
				   "}\n"				    /*  5 */
				   "listener web {\n"			    /*  6 */
				   "\tbind 127.0.0.1:99999;\n"		    /*  7 */
				   "\troute { pool app; }\n"		    /*  8 */
				   "}\n"				    /*  9 */
				   "pool app {\n"			    /* 10 */
				   "\tbalance fastest;\n"		    /* 11 */
				   "\tserver a 127.0.0.1:81 weight 5000;\n" /* 12 */
				   "\tserver b 127.0.0.1:82;\n"		    /* 13 */
				   "\tserver b 127.0.0.1:83;\n"		    /* 14 */
				   "}\n"				    /* 15 */
				   "backend x { }\n";			    /* 16 */
	static const struct {
		int line;
		const char *what;
	} want[] = {
		{2, "invalid number 'lots'"},
		{3, "invalid duration 'forever'"},
		{4, "unknown global setting 'colour'"},
		{6, "listener 'web' has no 'bind'"},
		{7, "invalid port in '127.0.0.1:99999'"},
		{11, "unknown balance 'fastest' (expected round_robin, least_conn, random, hash)"},
		{12, "invalid number \'5000\' for \'server weight\'"},
		{14, "duplicate server 'b'"},
		{16, "unknown top-level section 'backend'"},
	};
	struct config *cf = load(text);
	unsigned n = sizeof(want) / sizeof(want[0]);

	ASSERT_TRUE(cf == NULL, "config loaded");
	conf_free(cf);
	for (unsigned i = 0; i < n; i++)
		ASSERT_TRUE(has_error(want[i].line, want[i].what), "missing %d: %s in:\n%s",
			    want[i].line, want[i].what, msgs ? msgs : "");
	ASSERT_EQ(count_lines(msgs), n, "every error once, nothing else");
	ASSERT_TRUE(all_well_formed(), "malformed message in:\n%s", msgs ? msgs : "");
}

/*
 * Errors found while linking (unknown pool, address bound twice) are part of "every error":
 * conf.h promises all of them, not only those of the first pass.
 */
static void test_err_link_errors_with_others(void)
{
	static const char text[] = "global { workers lots; }\n"		    /* 1 */
				   "listener web {\n"			    /* 2 */
				   "\tbind 127.0.0.1:8080;\n"		    /* 3 */
				   "\tbind 127.0.0.1:8080;\n"		    /* 4 */
				   "\troute { pool nope; }\n"		    /* 5 */
				   "}\n"				    /* 6 */
				   "pool app { server a 127.0.0.1:81; }\n"; /* 7 */
	struct config *cf = load(text);

	ASSERT_TRUE(cf == NULL, "config loaded");
	conf_free(cf);
	ASSERT_TRUE(has_error(1, "invalid number 'lots'"), "got:\n%s", msgs ? msgs : "");
	ASSERT_TRUE(has_error(5, "route refers to unknown pool 'nope'"), "got:\n%s",
		    msgs ? msgs : "");
	ASSERT_TRUE(has_error(4, "address 127.0.0.1:8080 is already bound at line 3"), "got:\n%s",
		    msgs ? msgs : "");
	ASSERT_EQ(count_lines(msgs), 3, "messages");
}

static void test_err_null_errf(void)
{
	/* no sink for messages: still a clean failure */
	struct config *cf = conf_load_string(CONF_NAME, "global { workers lots; }\n" BASE, NULL);

	ASSERT_TRUE(cf == NULL, "config loaded");
	conf_free(cf);
	cf = conf_load_string(CONF_NAME, BASE, NULL);
	ASSERT_TRUE(cf != NULL, "valid config rejected");
	conf_free(cf);
}

/* loading parses the tls lines but reads no certificate: that is the preparing step's job */
static void test_tls_lines_parsed_not_prepared(void)
{
	struct config *cf =
		expect_ok("listener t {\n"
			  "\tbind 127.0.0.1:3;\n"
			  "\ttls certificate /nonexistent/a.pem key /nonexistent/a.key;\n"
			  "\ttls protocols TLSv1.3 TLSv1.2;\n"
			  "\troute { pool base; }\n"
			  "}\n" BASE);

	if (cf && ASSERT_EQ(cf->nlisteners, 2, "nlisteners")) {
		struct listener *l = &cf->listeners[0];

		ASSERT_EQ(l->ncerts, 1, "certificate kept");
		ASSERT_STREQ(l->certs[0].cert, "/nonexistent/a.pem", "certificate path");
		ASSERT_TRUE(l->tls == NULL, "no TLS context at load");
		ASSERT_EQ(l->tls_min, CONF_TLS1_2, "min protocol");
		ASSERT_EQ(l->tls_max, CONF_TLS1_3, "max protocol");
		ASSERT_TRUE(cf->release == NULL, "nothing to release");
	}
	conf_free(cf);
	expect_error("listener t {\n"
		     "\tbind 127.0.0.1:3;\n"
		     "\ttls protocols SSLv3;\n"
		     "\troute { pool base; }\n"
		     "}\n" BASE,
		     3, "unknown TLS protocol 'SSLv3'", 1);
}

/* ---------------------------------------------------------------- bounds */

/* a growable string for the generated configurations below */
struct text {
	char *p;
	size_t len;
	FILE *f;
};

static FILE *text_open(struct text *t)
{
	memset(t, 0, sizeof(*t));
	t->f = open_memstream(&t->p, &t->len);
	if (!t->f) {
		perror("open_memstream");
		exit(2);
	}
	return t->f;
}

/* close the stream and load what was written; the text is freed */
static struct config *text_load(struct text *t)
{
	struct config *cf;

	fclose(t->f);
	cf = load(t->p);
	free(t->p);
	return cf;
}

/* the crash: `x{` 100000 times recursed once per '{' and overflowed the stack */
static void test_bound_nesting(void)
{
	struct text t;
	FILE *f = text_open(&t);
	struct config *cf;

	for (int i = 0; i < 100000; i++)
		fputs("x{", f);
	cf = text_load(&t);
	ASSERT_TRUE(cf == NULL, "loaded");
	conf_free(cf);
	ASSERT_TRUE(has_error(1, "blocks nested deeper than 8"), "got:\n%s", msgs ? msgs : "");
	ASSERT_TRUE(all_well_formed(), "malformed message in:\n%s", msgs ? msgs : "");
	/* 8 levels are read (and only complained about as unknown), 9 are not */
	expect_error(
		"pool q { server x 127.0.0.1:81; a { b { c { d { e { f { g { } } } } } } } }\n" BASE,
		1, "unknown pool setting 'a'", 1);
	expect_error(
		"pool q { server x 127.0.0.1:81; a { b { c { d { e { f { g { h { } } } } } } } }"
		" }\n" BASE,
		1, "blocks nested deeper than 8", 2);
	/* the rest of the file is still read */
	expect_error("pool q { a { b { c { d { e { f { g { h { i { } } } } } } } } } }\n"
		     "global { workers 0; }\n" BASE,
		     2, "invalid number '0' for 'workers'", -1);
}

static void test_bound_words_and_lines(void)
{
	char *text = malloc(70000);
	struct config *cf;
	int n;

	if (!ASSERT_TRUE(text != NULL, "malloc"))
		return;
	/* a word of 4095 bytes is taken, 4096 is not */
	snprintf(text, 70000, "global { access_log /%04094d; }\n" BASE, 0);
	cf = expect_ok(text);
	if (cf)
		ASSERT_EQ(strlen(cf->access_log), 4095, "access_log length");
	conf_free(cf);
	snprintf(text, 70000, "global { access_log \"/%04095d\"; }\n" BASE, 0);
	expect_error(text, 1, "word longer than 4095 bytes", -1);
	/* a line of 65536 bytes is taken, a longer one is not (a comment, so nothing else fails) */
	n = snprintf(text, 70000, "%s", BASE);
	memset(text + n, ' ', 65535);
	strcpy(text + n + 65535, "#\n");
	cf = expect_ok(text);
	conf_free(cf);
	memset(text + n, ' ', 65536);
	strcpy(text + n + 65536, "#\n");
	expect_error(text, 3, "line longer than 65536 bytes", 1);
	free(text);
}

static void test_bound_statements(void)
{
	struct text t;
	FILE *f = text_open(&t);
	struct config *cf;

	fputs("global {\n", f);
	for (int i = 0; i < 4097; i++)
		fputs("retries 1;\n", f);
	fputs("}\n" BASE, f);
	cf = text_load(&t);
	ASSERT_TRUE(cf == NULL, "loaded");
	conf_free(cf);
	ASSERT_TRUE(has_error(4098, "more than 4096 statements in one block"), "got:\n%s",
		    msgs ? msgs : "");
	ASSERT_EQ(count_lines(msgs), 1, "reported once");
	/* 17 pools of 4000 statements: more than the file may hold */
	f = text_open(&t);
	fputs(BASE, f);
	for (int p = 0; p < 17; p++) {
		fprintf(f, "pool p%d {\n", p);
		for (int i = 0; i < 3999; i++)
			fputs("retries 1;\n", f);
		fputs("server s 127.0.0.1:80;\n}\n", f);
	}
	cf = text_load(&t);
	ASSERT_TRUE(cf == NULL, "loaded");
	conf_free(cf);
	ASSERT_TRUE(msgs && strstr(msgs, "more than 65536 statements"), "got:\n%.300s",
		    msgs ? msgs : "");
	ASSERT_TRUE(all_well_formed(), "malformed message");
}

static void test_bound_servers_listeners(void)
{
	struct text t;
	FILE *f = text_open(&t);
	struct config *cf;

	/* 4096 servers are fine, in several pools */
	fputs(BASE, f);
	for (int p = 0; p < 4; p++) {
		fprintf(f, "pool p%d {\n", p);
		for (int i = 0; i < 1024 - !p; i++)
			fprintf(f, "server s%d 127.0.0.%d:%d;\n", i, p + 1, i + 1);
		fputs("}\n", f);
	}
	cf = text_load(&t);
	ASSERT_TRUE(cf != NULL, "4096 servers: %.300s", msgs ? msgs : "");
	if (cf)
		ASSERT_EQ(cf->nservers, 4096, "nservers");
	conf_free(cf);
	f = text_open(&t);
	/* BASE has one server: the 4096th of this pool (line 4 + 4095) is one too many */
	fputs(BASE "pool more {\n", f);
	for (int i = 0; i < 4096; i++)
		fprintf(f, "server s%d 127.0.0.2:%d;\n", i, i + 1);
	fputs("}\n", f);
	cf = text_load(&t);
	ASSERT_TRUE(cf == NULL, "loaded");
	conf_free(cf);
	ASSERT_TRUE(has_error(4099, "more than 4096 servers"), "got:\n%.300s", msgs ? msgs : "");
	ASSERT_EQ(count_lines(msgs), 1, "reported once");
	/* 256 listeners, then one more */
	f = text_open(&t);
	fputs("pool base { server b 127.0.0.1:80; }\n", f);
	for (int i = 0; i < 257; i++)
		fprintf(f, "listener l%d { bind 127.0.0.1:%d; route { pool base; } }\n", i, i + 1);
	cf = text_load(&t);
	ASSERT_TRUE(cf == NULL, "loaded");
	conf_free(cf);
	ASSERT_TRUE(has_error(258, "more than 256 listeners"), "got:\n%.300s", msgs ? msgs : "");
	ASSERT_EQ(count_lines(msgs), 1, "reported once");
}

static void test_bound_errors_and_size(void)
{
	struct text t;
	FILE *f = text_open(&t);
	struct config *cf;
	char *big;

	/* 300 mistakes: 100 messages and a last line that says the rest is not shown */
	for (int i = 0; i < 300; i++)
		fputs(";\n", f);
	fputs(BASE, f);
	cf = text_load(&t);
	ASSERT_TRUE(cf == NULL, "loaded");
	conf_free(cf);
	ASSERT_EQ(count_lines(msgs), 101, "messages");
	ASSERT_TRUE(has_error(101, "too many errors, the rest are not shown"), "got: %s",
		    msgs ? strrchr(msgs, ':') : "");
	ASSERT_TRUE(all_well_formed(), "malformed message");
	/* more than 16 MiB of text */
	big = malloc((16 << 20) + 2);
	if (!ASSERT_TRUE(big != NULL, "malloc"))
		return;
	memset(big, '#', (16 << 20) + 1);
	big[(16 << 20) + 1] = '\0';
	expect_error(big, 1, "larger than 16 MiB", 1);
	free(big);
}

/* ---------------------------------------------------------------- conf_load */

static void test_load_missing_file(void)
{
	const char *path = "/nonexistent/spliced-test/spliced.conf";
	struct config *cf;
	FILE *f;

	ASSERT_TRUE(conf_load(path, NULL) == NULL, "loaded without errf");
	f = capture();
	cf = conf_load(path, f);
	fclose(f);
	ASSERT_TRUE(cf == NULL, "config loaded");
	conf_free(cf);
	ASSERT_TRUE(msgs && strstr(msgs, "/nonexistent/spliced-test/spliced.conf: cannot open: "),
		    "got: %s", msgs ? msgs : "(nothing)");
	ASSERT_TRUE(msgs && strstr(msgs, strerror(ENOENT)), "reason in: %s", msgs ? msgs : "");
}

/* write text to a temporary file, load it with conf_load; msgs gets the messages */
static struct config *load_file(const char *text, size_t len, char *path, size_t cap)
{
	struct config *cf;
	FILE *f;
	int fd;

	snprintf(path, cap, "/tmp/test_conf.XXXXXX");
	fd = mkstemp(path);
	if (!ASSERT_TRUE(fd != -1, "mkstemp: %s", strerror(errno)))
		return NULL;
	if (!ASSERT_EQ(write(fd, text, len), (long long)len, "write")) {
		close(fd);
		unlink(path);
		return NULL;
	}
	close(fd);
	f = capture();
	cf = conf_load(path, f);
	fclose(f);
	unlink(path);
	return cf;
}

static void test_load_file(void)
{
	static const char bad[] = "global {\n\tworkers lots;\n}\n" BASE;
	char path[64], want[128];
	struct config *cf;

	cf = load_file(BASE, strlen(BASE), path, sizeof(path));
	ASSERT_TRUE(cf != NULL, "valid file rejected: %s", msgs ? msgs : "");
	if (cf)
		ASSERT_STREQ(cf->file, path, "file name kept");
	conf_free(cf);

	cf = load_file(bad, strlen(bad), path, sizeof(path));
	ASSERT_TRUE(cf == NULL, "invalid file loaded");
	conf_free(cf);
	snprintf(want, sizeof(want), "%s:2: invalid number 'lots'", path);
	ASSERT_TRUE(msgs && strstr(msgs, want), "want %s, got: %s", want, msgs ? msgs : "");

	cf = load_file(BASE "\0x", sizeof(BASE) + 1, path, sizeof(path));
	ASSERT_TRUE(cf == NULL, "file with a NUL byte loaded");
	conf_free(cf);
	ASSERT_TRUE(msgs && strstr(msgs, "NUL byte"), "got: %s", msgs ? msgs : "");
}

/* operations settings: defaults, values, and every kind of mistake */
static void test_operations_global(void)
{
	struct config *cf = expect_ok(BASE);

	if (cf) {
		ASSERT_STREQ(cf->control, "", "control default");
		ASSERT_STREQ(cf->metrics, "", "metrics default");
		ASSERT_STREQ(cf->user, "", "user default");
		ASSERT_STREQ(cf->pid_file, "", "pid_file default");
		ASSERT_EQ(cf->drain_timeout_ms, 30000, "drain_timeout default");
		ASSERT_EQ(cf->upgrade_timeout_ms, 30000, "upgrade_timeout default");
	}
	conf_free(cf);
	cf = expect_ok("global { control /run/spliced/control.sock; metrics 127.0.0.1:9100;\n"
		       "user nobody; group nogroup; pid_file /run/spliced/spliced.pid;\n"
		       "drain_timeout 5s; upgrade_timeout 2m; }\n" BASE);
	if (cf) {
		ASSERT_STREQ(cf->control, "/run/spliced/control.sock", "control");
		ASSERT_STREQ(cf->metrics, "127.0.0.1:9100", "metrics");
		ASSERT_EQ(cf->metrics_addr.ss_family, AF_INET, "metrics address family");
		ASSERT_STREQ(cf->user, "nobody", "user");
		ASSERT_STREQ(cf->group, "nogroup", "group");
		ASSERT_STREQ(cf->pid_file, "/run/spliced/spliced.pid", "pid_file");
		ASSERT_EQ(cf->drain_timeout_ms, 5000, "drain_timeout");
		ASSERT_EQ(cf->upgrade_timeout_ms, 120000, "upgrade_timeout");
	}
	conf_free(cf);
	expect_error("global {\n\tcontrol relative.sock;\n}\n" BASE, 2, "absolute path", 1);
	expect_error("global {\n\tmetrics nowhere;\n}\n" BASE, 2, "invalid metrics address", 1);
	expect_error("global {\n\tuser bad/name;\n}\n" BASE, 2, "invalid character", 1);
	expect_error("global {\n\tpid_file x.pid;\n}\n" BASE, 2, "pid_file must be an absolute", 1);
	expect_error("global {\n\tdrain_timeout soon;\n}\n" BASE, 2, "invalid duration", 1);
	expect_error("global {\n\tupgrade_timeout 1 2;\n}\n" BASE, 2, "takes 1 argument", 1);
}

/* a file every user may write is refused: whoever writes it runs code as the daemon */
static void test_load_world_writable(void)
{
	char path[] = "/tmp/spliced-test-conf-XXXXXX";
	struct config *cf;
	int fd = mkstemp(path);

	if (!ASSERT_TRUE(fd != -1, "mkstemp: %s", strerror(errno)))
		return;
	ASSERT_EQ(write(fd, BASE, strlen(BASE)), (ssize_t)strlen(BASE), "write");
	close(fd);
	ASSERT_EQ(chmod(path, 0666), 0, "chmod");
	{
		FILE *errf = capture();

		cf = conf_load(path, errf);
		fclose(errf);
	}
	ASSERT_TRUE(cf == NULL, "world-writable file loaded");
	conf_free(cf);
	ASSERT_TRUE(msgs && strstr(msgs, "writable by every user (mode 0666)"), "got: %s",
		    msgs ? msgs : "");
	unlink(path);
}

/* ---------------------------------------------------------------- conf_parse_duration */

static void test_duration_valid(void)
{
	static const struct {
		const char *s;
		uint32_t ms;
	} ok[] = {
		{"0", 0},
		{"0ms", 0},
		{"250ms", 250},
		{"10", 10000},
		{"10s", 10000},
		{"2m", 120000},
		{"1h", 3600000},
		{"007s", 7000},
		{"4294967295ms", UINT32_MAX},
		{"4294967s", 4294967000u},
		{"71582m", 4294920000u},
		{"1193h", 4294800000u},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint32_t ms = 12345;

		if (ASSERT_EQ(conf_parse_duration(ok[i].s, &ms), 0, ok[i].s))
			ASSERT_EQ(ms, ok[i].ms, ok[i].s);
	}
}

static void test_duration_invalid(void)
{
	static const char *const bad[] = {
		"",
		"s",
		"ms",
		"-1",
		"+1",
		" 1",
		"1 ",
		"1.5s",
		"1sec",
		"10x",
		"1d",
		"1ms5",
		"0x10",
		"1e3",
		"10S",
		"5M",
		"1hh",
		"abc",
		/* overflow of uint32_t milliseconds */
		"4294967296ms",
		"4294968s",
		"4294968",
		"71583m",
		"1194h",
		/* overflow of the number itself */
		"18446744073709551616",
		"99999999999999999999999ms",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t ms = 12345;

		ASSERT_EQ(conf_parse_duration(bad[i], &ms), -EINVAL, bad[i]);
		ASSERT_EQ(ms, 12345, "output untouched on error");
	}
	ASSERT_EQ(conf_parse_duration(NULL, NULL), -EINVAL, "NULL");
}

/* ---------------------------------------------------------------- conf_parse_size */

static void test_size_valid(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{"0", 0},
		{"512", 512},
		{"16k", 16384},
		{"16K", 16384},
		{"1m", 1 << 20},
		{"1M", 1 << 20},
		{"1g", 1ULL << 30},
		{"3G", 3ULL << 30},
		{"18446744073709551615", UINT64_MAX},
		{"17179869183g", 17179869183ULL << 30},
		{"18014398509481983k", 18014398509481983ULL << 10},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 12345;

		if (ASSERT_EQ(conf_parse_size(ok[i].s, &v), 0, ok[i].s))
			ASSERT_TRUE(v == ok[i].v, "%s: %llu != %llu", ok[i].s,
				    (unsigned long long)v, (unsigned long long)ok[i].v);
	}
}

static void test_size_invalid(void)
{
	static const char *const bad[] = {
		"",
		"k",
		"-1",
		"+1",
		" 1",
		"1 ",
		"1.5k",
		"1kb",
		"1KiB",
		"1t",
		"1b",
		"16q",
		"0x10",
		"1kk",
		"abc",
		/* overflow */
		"18446744073709551616",
		"17179869184g",
		"18014398509481984k",
		"17592186044416m",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;

		ASSERT_EQ(conf_parse_size(bad[i], &v), -EINVAL, bad[i]);
		ASSERT_EQ(v, 12345, "output untouched on error");
	}
	ASSERT_EQ(conf_parse_size(NULL, NULL), -EINVAL, "NULL");
}

/* ---------------------------------------------------------------- conf_parse_addr */

static void test_addr_valid(void)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char why[256] = "";

	if (ASSERT_EQ(conf_parse_addr("192.0.2.7:80", &ss, &len, 0, why, sizeof(why)), 0, why))
		ASSERT_TRUE(is_v4(&ss, len, "192.0.2.7", 80), "192.0.2.7:80");
	if (ASSERT_EQ(conf_parse_addr("[2001:db8::1]:443", &ss, &len, 0, why, sizeof(why)), 0, why))
		ASSERT_TRUE(is_v6(&ss, len, "2001:db8::1", 443), "[2001:db8::1]:443");
	if (ASSERT_EQ(conf_parse_addr("[::]:8080", &ss, &len, 1, why, sizeof(why)), 0, why))
		ASSERT_TRUE(is_v6(&ss, len, "::", 8080), "[::]:8080");
	if (ASSERT_EQ(conf_parse_addr("*:8080", &ss, &len, 1, why, sizeof(why)), 0, why))
		ASSERT_TRUE(is_v4(&ss, len, "0.0.0.0", 8080), "*:8080");
	if (ASSERT_EQ(conf_parse_addr("10.1.2.3:0", &ss, &len, 1, why, sizeof(why)), 0, why))
		ASSERT_TRUE(is_v4(&ss, len, "10.1.2.3", 0), "port 0 for a bind");
	if (ASSERT_EQ(conf_parse_addr("10.1.2.3:65535", &ss, &len, 0, why, sizeof(why)), 0, why))
		ASSERT_TRUE(is_v4(&ss, len, "10.1.2.3", 65535), "port 65535");
	if (ASSERT_EQ(conf_parse_addr("localhost:8080", &ss, &len, 0, why, sizeof(why)), 0, why))
		ASSERT_TRUE(is_v4(&ss, len, "127.0.0.1", 8080) || is_v6(&ss, len, "::1", 8080),
			    "localhost:8080 (family %d)", ss.ss_family);
	if (ASSERT_EQ(conf_parse_addr("LocalHost:1", &ss, &len, 0, why, sizeof(why)), 0, why))
		ASSERT_TRUE(is_v4(&ss, len, "127.0.0.1", 1) || is_v6(&ss, len, "::1", 1),
			    "LocalHost:1 (family %d)", ss.ss_family);
}

static void test_addr_invalid(void)
{
	static const struct {
		const char *s;
		int passive;
		const char *why;
	} bad[] = {
		{"192.0.2.7", 0, "invalid address"},
		{":80", 1, "invalid address"},
		{"", 1, "invalid address"},
		{"::1:80", 0, "invalid address"},
		{"2001:db8::1", 0, "invalid address"},
		{"[::1]", 0, "invalid address"},
		{"[::1]80", 0, "invalid address"},
		{"[::1", 0, "invalid address"},
		{"192.0.2.7:", 0, "invalid port"},
		{"192.0.2.7:0", 0, "invalid port"},
		{"192.0.2.7:65536", 1, "invalid port"},
		{"192.0.2.7:99999999999999999999", 1, "invalid port"},
		{"192.0.2.7:-1", 1, "invalid port"},
		{"192.0.2.7:+80", 1, "invalid port"},
		{"192.0.2.7:80x", 1, "invalid port"},
		{"192.0.2.7:http", 0, "invalid port"},
		{"[::1]:", 0, "invalid port"},
		{"[::1]:0", 0, "invalid port"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		char why[256] = "";

		ASSERT_EQ(conf_parse_addr(bad[i].s, &ss, &len, bad[i].passive, why, sizeof(why)),
			  -EINVAL, bad[i].s);
		ASSERT_TRUE(strstr(why, bad[i].why) && strstr(why, bad[i].s), "%s: why = \"%s\"",
			    bad[i].s, why);
	}
}

static void test_addr_unresolvable(void)
{
	static const char *const bad[] = {"no-such-host.invalid:80", "[no-such-host.invalid]:80",
					  "256.1.1.1:80", "[::g]:80", "[]:80"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		char why[256] = "";

		ASSERT_EQ(conf_parse_addr(bad[i], &ss, &len, 0, why, sizeof(why)), -ENOENT, bad[i]);
		ASSERT_TRUE(!strncmp(why, "cannot resolve '", 16), "%s: why = \"%s\"", bad[i], why);
	}
}

static void test_addr_why_truncated(void)
{
	/* a small why buffer is truncated, not overrun */
	char why[8];
	struct sockaddr_storage ss;
	socklen_t len;

	memset(why, 'Z', sizeof(why));
	ASSERT_EQ(conf_parse_addr("nonsense", &ss, &len, 0, why, sizeof(why)), -EINVAL, "nonsense");
	ASSERT_EQ(strlen(why), sizeof(why) - 1, "truncated why");
}

int main(void)
{
	RUN_TEST(test_full_global);
	RUN_TEST(test_full_listeners);
	RUN_TEST(test_full_pools);
	RUN_TEST(test_full_servers);
	RUN_TEST(test_defaults);
	RUN_TEST(test_pool_inherits_global);
	RUN_TEST(test_failover_keywords);
	RUN_TEST(test_buffer_covers_header);
	RUN_TEST(test_syntax_accepted);
	RUN_TEST(test_err_unknown_section);
	RUN_TEST(test_err_unknown_global);
	RUN_TEST(test_err_unknown_listener);
	RUN_TEST(test_splice_min_body);
	RUN_TEST(test_err_unknown_route);
	RUN_TEST(test_upgrade_protocols);
	RUN_TEST(test_err_route_path_not_normalized);
	RUN_TEST(test_err_unknown_pool);
	RUN_TEST(test_err_missing_semicolon);
	RUN_TEST(test_err_unterminated_quote);
	RUN_TEST(test_err_missing_brace);
	RUN_TEST(test_err_extra_brace);
	RUN_TEST(test_err_bad_duration);
	RUN_TEST(test_err_bad_size);
	RUN_TEST(test_err_bad_number);
	RUN_TEST(test_err_weight);
	RUN_TEST(test_err_balance);
	RUN_TEST(test_err_route_without_pool);
	RUN_TEST(test_err_route_unknown_pool);
	RUN_TEST(test_err_route_values);
	RUN_TEST(test_err_duplicates);
	RUN_TEST(test_err_duplicate_server_other_pool_ok);
	RUN_TEST(test_err_listener_incomplete);
	RUN_TEST(test_err_pool_incomplete);
	RUN_TEST(test_err_no_listener);
	RUN_TEST(test_err_bad_address);
	RUN_TEST(test_err_unresolvable);
	RUN_TEST(test_err_address_bound_twice);
	RUN_TEST(test_err_several_reported);
	RUN_TEST(test_err_link_errors_with_others);
	RUN_TEST(test_err_null_errf);
	RUN_TEST(test_tls_lines_parsed_not_prepared);
	RUN_TEST(test_bound_nesting);
	RUN_TEST(test_bound_words_and_lines);
	RUN_TEST(test_bound_statements);
	RUN_TEST(test_bound_servers_listeners);
	RUN_TEST(test_bound_errors_and_size);
	RUN_TEST(test_load_missing_file);
	RUN_TEST(test_load_file);
	RUN_TEST(test_load_world_writable);
	RUN_TEST(test_operations_global);
	RUN_TEST(test_duration_valid);
	RUN_TEST(test_duration_invalid);
	RUN_TEST(test_size_valid);
	RUN_TEST(test_size_invalid);
	RUN_TEST(test_addr_valid);
	RUN_TEST(test_addr_invalid);
	RUN_TEST(test_addr_unresolvable);
	RUN_TEST(test_addr_why_truncated);
	free(msgs);
	return TEST_DONE();
}
