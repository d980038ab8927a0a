// SPDX-License-Identifier: MIT
/*
 * test_rules.c - unit tests for the request rule engine (userspace/rules.c, conf_rules.c):
 * routes with conditions loaded by conf_load_string and selected for parsed requests as the
 * daemon does it (host and target normalized first), captures, value templates and their
 * variables, query decoding, source CIDRs (IPv4, IPv6, edges), path rewriting, and the
 * configuration errors of every rule keyword.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>

#include "conf.h"
#include "http.h"
#include "route.h"
#include "rules.h"
#include "test.h"

#define POOLS                                   \
	"pool p0 { server s0 127.0.0.1:80; }\n" \
	"pool p1 { server s1 127.0.0.1:81; }\n" \
	"pool p2 { server s2 127.0.0.1:82; }\n"

static struct config *cf;

/* load_text - a whole configuration; the first listener, or NULL (errors in *msgs) */
static const struct listener *load_text(const char *text, char **msgs)
{
	size_t len = 0;
	FILE *f = open_memstream(msgs, &len);

	conf_free(cf);
	cf = conf_load_string("test.conf", text, f);
	fclose(f);
	return cf ? &cf->listeners[0] : NULL;
}

static const struct listener *load_routes(const char *routes)
{
	char text[8192];
	char *msgs = NULL;
	const struct listener *l;

	snprintf(text, sizeof(text), "listener l {\n\tbind 127.0.0.1:2;\n%s}\n" POOLS, routes);
	l = load_text(text, &msgs);
	ASSERT_TRUE(l != NULL, "config failed:\n%s\n%s", text, msgs ? msgs : "");
	free(msgs);
	return l;
}

/* expect_conf_error - the routes do not load and the messages hold what */
static void expect_conf_error(const char *routes, const char *what)
{
	char text[8192];
	char *msgs = NULL;

	snprintf(text, sizeof(text), "listener l {\n\tbind 127.0.0.1:2;\n%s}\n" POOLS, routes);
	ASSERT_TRUE(load_text(text, &msgs) == NULL, "loaded:\n%s", text);
	ASSERT_TRUE(msgs && strstr(msgs, what), "no \"%s\" in:\n%s", what, msgs ? msgs : "");
	free(msgs);
}

struct parsed {
	char buf[2048];
	struct http_msg m;
	char target[HTTP_MAX_TARGET + 2];
	char host[256];
	uint8_t src[16];
	struct rule_req rq;
};

/* parse - a request head as the daemon reads it, from src (NULL: 127.0.0.1) */
static int parse(struct parsed *p, const char *head, const char *src)
{
	int n, hl;

	snprintf(p->buf, sizeof(p->buf), "%s", head);
	memset(&p->m, 0, sizeof(p->m));
	n = http_parse_request(p->buf, strlen(p->buf), 16384, &p->m);
	if (!ASSERT_TRUE(n > 0, "parse %d: %s", n, head))
		return -1;
	n = http_target_normalize(p->buf, &p->m, p->target, sizeof(p->target));
	if (!ASSERT_TRUE(n >= 0, "normalize: %s", head))
		return -1;
	hl = route_host_normalize(p->buf + p->m.host.off, p->m.host.len, p->host, sizeof(p->host));
	if (hl < 0)
		p->host[0] = '\0';
	memset(p->src, 0, sizeof(p->src));
	if (!src || strchr(src, '.')) {
		p->src[10] = p->src[11] = 0xff;
		inet_pton(AF_INET, src ? src : "127.0.0.1", p->src + 12);
	} else {
		inet_pton(AF_INET6, src, p->src);
	}
	rule_req_fill(&p->rq, p->buf, &p->m, p->target, (size_t)n, p->host, p->src);
	return 0;
}

/* route_of - index of the route selected for head from src, -1 none */
static int route_of(const struct listener *l, const char *head, const char *src,
		    struct rule_caps *caps)
{
	static struct parsed p;
	struct rule_caps local;
	const struct route *r;

	if (parse(&p, head, src))
		return -2;
	r = route_select(l, &p.rq, caps ? caps : &local);
	return r ? (int)(r - l->routes) : -1;
}

#define GET(path, hdrs) "GET " path " HTTP/1.1\r\nHost: www.example\r\n" hdrs "\r\n"

static void test_method(void)
{
	const struct listener *l = load_routes("\troute { method GET HEAD; pool p0; }\n"
					       "\troute { pool p1; }\n");

	if (!l)
		return;
	ASSERT_EQ(route_of(l, GET("/", ""), NULL, NULL), 0, "GET");
	ASSERT_EQ(route_of(l, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", NULL, NULL), 0, "HEAD");
	ASSERT_EQ(
		route_of(l, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", NULL, NULL),
		1, "POST");
	ASSERT_EQ(route_of(l, "get / HTTP/1.1\r\nHost: x\r\n\r\n", NULL, NULL), 1,
		  "methods are case-sensitive");
}

static void test_header_conditions(void)
{
	const struct listener *l =
		load_routes("\troute { header X-Debug; pool p0; }\n"
			    "\troute { header X-Env prod; pool p1; }\n"
			    "\troute { header User-Agent ~^curl/([0-9]+); pool p2; }\n"
			    "\troute { pool p2; }\n");
	struct rule_caps caps;

	if (!l)
		return;
	ASSERT_EQ(route_of(l, GET("/", "x-debug: \r\n"), NULL, NULL), 0, "present, empty value");
	ASSERT_EQ(route_of(l, GET("/", "X-Env: prod\r\n"), NULL, NULL), 1, "exact");
	ASSERT_EQ(route_of(l, GET("/", "X-Env: Prod\r\n"), NULL, NULL), 3,
		  "exact is case-sensitive");
	ASSERT_EQ(route_of(l, GET("/", "X-Env: prod2\r\n"), NULL, NULL), 3, "exact, whole value");
	ASSERT_EQ(route_of(l, GET("/", "X-Env: dev\r\nX-Env: prod\r\n"), NULL, NULL), 1,
		  "any of repeated headers");
	ASSERT_EQ(route_of(l, GET("/", "User-Agent: curl/7.88\r\n"), NULL, &caps), 2, "regex");
	ASSERT_TRUE(caps.base && caps.n == 2, "captures");
	if (caps.base)
		ASSERT_TRUE(caps.ov[3] - caps.ov[2] == 1 && caps.base[caps.ov[2]] == '7', "$1 = 7");
	ASSERT_EQ(route_of(l, GET("/", "User-Agent: wget\r\n"), NULL, NULL), 3, "regex, no match");
}

static void test_negation(void)
{
	const struct listener *l = load_routes("\troute { not header X-Debug; pool p0; }\n"
					       "\troute { pool p1; }\n");

	if (!l)
		return;
	ASSERT_EQ(route_of(l, GET("/", ""), NULL, NULL), 0, "no X-Debug");
	ASSERT_EQ(route_of(l, GET("/", "X-Debug: 1\r\n"), NULL, NULL), 1, "X-Debug excluded");
	l = load_routes("\troute { not path ~^/admin; not source 10.0.0.0/8; pool p0; }\n"
			"\troute { pool p1; }\n");
	if (!l)
		return;
	ASSERT_EQ(route_of(l, GET("/x", ""), NULL, NULL), 0, "neither");
	ASSERT_EQ(route_of(l, GET("/admin/x", ""), NULL, NULL), 1, "path excluded");
	ASSERT_EQ(route_of(l, GET("/x", ""), "10.2.3.4", NULL), 1, "source excluded");
}

static void test_query(void)
{
	const struct listener *l = load_routes("\troute { query debug; pool p0; }\n"
					       "\troute { query name \"a b/c\"; pool p1; }\n"
					       "\troute { pool p2; }\n");

	if (!l)
		return;
	ASSERT_EQ(route_of(l, GET("/?debug", ""), NULL, NULL), 0, "present without value");
	ASSERT_EQ(route_of(l, GET("/?x=1&debug=0", ""), NULL, NULL), 0, "present, second");
	ASSERT_EQ(route_of(l, GET("/?debugx=1", ""), NULL, NULL), 2, "whole name");
	ASSERT_EQ(route_of(l, GET("/?%64ebug=1", ""), NULL, NULL), 0, "name decoded");
	ASSERT_EQ(route_of(l, GET("/?name=a+b%2Fc", ""), NULL, NULL), 1, "value decoded");
	ASSERT_EQ(route_of(l, GET("/?name=a%20b/c", ""), NULL, NULL), 1, "value %20");
	ASSERT_EQ(route_of(l, GET("/?name=a+b%2Fcd", ""), NULL, NULL), 2, "whole value");
	ASSERT_EQ(route_of(l, GET("/?name=", ""), NULL, NULL), 2, "empty value");
	ASSERT_EQ(route_of(l, GET("/", ""), NULL, NULL), 2, "no query");
}

static void test_source(void)
{
	const struct listener *l =
		load_routes("\troute { source 192.0.2.0/24 2001:db8::/32 198.51.100.7; pool p0; }\n"
			    "\troute { source ::1 0.0.0.0/0; pool p1; }\n"
			    "\troute { pool p2; }\n");

	if (!l)
		return;
	ASSERT_EQ(route_of(l, GET("/", ""), "192.0.2.0", NULL), 0, "first of /24");
	ASSERT_EQ(route_of(l, GET("/", ""), "192.0.2.255", NULL), 0, "last of /24");
	ASSERT_EQ(route_of(l, GET("/", ""), "192.0.3.0", NULL), 1, "past /24: 0/0");
	ASSERT_EQ(route_of(l, GET("/", ""), "198.51.100.7", NULL), 0, "single address");
	ASSERT_EQ(route_of(l, GET("/", ""), "198.51.100.8", NULL), 1, "next address");
	ASSERT_EQ(route_of(l, GET("/", ""), "2001:db8:ffff::1", NULL), 0, "IPv6 /32");
	ASSERT_EQ(route_of(l, GET("/", ""), "2001:db9::1", NULL), 2, "outside IPv6 /32");
	ASSERT_EQ(route_of(l, GET("/", ""), "::1", NULL), 1, "IPv6 loopback");
	ASSERT_EQ(route_of(l, GET("/", ""), "::2", NULL), 2, "0.0.0.0/0 is IPv4 only");
}

static void test_regex_host_path(void)
{
	const struct listener *l = load_routes("\troute { host ~^(api|www)\\.example$; "
					       "path ~^/v([0-9]+)/; pool p0; }\n"
					       "\troute { pool p1; }\n");
	struct rule_caps caps;

	if (!l)
		return;
	ASSERT_EQ(route_of(l, GET("/v2/x", ""), NULL, &caps), 0, "both");
	ASSERT_TRUE(caps.base && caps.n == 2 && caps.base[caps.ov[2]] == '2',
		    "captures of the last regex (path)");
	ASSERT_EQ(route_of(l, "GET /v2/x HTTP/1.1\r\nHost: API.Example:8080\r\n\r\n", NULL, NULL),
		  0, "host normalized before matching");
	ASSERT_EQ(route_of(l, "GET /v2/x HTTP/1.1\r\nHost: cdn.example\r\n\r\n", NULL, NULL), 1,
		  "other host");
	/* matched on the normalized path: no dot segment gets around it */
	ASSERT_EQ(route_of(l, GET("/x/../v3/y", ""), NULL, NULL), 0, "normalized");
	ASSERT_EQ(route_of(l, GET("/%76%33/y", ""), NULL, NULL), 0, "decoded unreserved");
}

/* expand - t's value with vars {host, method} and caps */
static int expand(const char *text, const struct rule_req *rq, const struct rule_caps *caps,
		  char *out, size_t cap)
{
	struct rule_vars vars = {0};
	struct tmpl t;
	char err[256];
	int n;

	if (!ASSERT_EQ(tmpl_compile(text, &t, err, sizeof(err)), 0, "compile"))
		return -1000;
	vars.v[VAR_HOST] = "www.example";
	vars.len[VAR_HOST] = 11;
	vars.v[VAR_METHOD] = "GET";
	vars.len[VAR_METHOD] = 3;
	n = tmpl_expand(&t, &vars, rq, caps, out, cap);
	if (n >= 0)
		out[n] = '\0';
	tmpl_free(&t);
	return n;
}

static void test_templates(void)
{
	static struct parsed p;
	struct rule_caps caps = {0};
	char out[256], err[256];
	struct tmpl t;

	if (parse(&p, GET("/a", "X-Real-IP: 192.0.2.1\r\nX-List: a\r\nx-list: b\r\n"), NULL))
		return;
	ASSERT_EQ(expand("https://$host$1/x", &p.rq, &caps, out, sizeof(out)), 21, "no captures");
	ASSERT_STREQ(out, "https://www.example/x", "missing capture is empty");
	ASSERT_EQ(expand("${method}-$$-$http_x_real_ip", &p.rq, &caps, out, sizeof(out)), 15,
		  "braces, $$, header");
	ASSERT_STREQ(out, "GET-$-192.0.2.1", "value");
	ASSERT_TRUE(expand("$http_x_list", &p.rq, &caps, out, sizeof(out)) > 0, "repeated");
	ASSERT_STREQ(out, "a, b", "repeated header lines joined");
	ASSERT_EQ(expand("$http_x_missing", &p.rq, &caps, out, sizeof(out)), 0, "empty");
	ASSERT_EQ(expand("0123456789", &p.rq, &caps, out, 5), -ENOSPC, "too long");
	caps.base = "ab\r\ncd";
	caps.n = 2;
	caps.ov[0] = 0;
	caps.ov[1] = 6;
	caps.ov[2] = 0;
	caps.ov[3] = 6;
	ASSERT_EQ(expand("x$1", &p.rq, &caps, out, sizeof(out)), -EBADMSG, "CR LF from a capture");
	ASSERT_EQ(tmpl_compile("$nope", &t, err, sizeof(err)), -EINVAL, "unknown variable");
	ASSERT_TRUE(strstr(err, "unknown variable '$nope'") != NULL, "%s", err);
	ASSERT_EQ(tmpl_compile("$0", &t, err, sizeof(err)), -EINVAL, "$0");
	ASSERT_EQ(tmpl_compile("a$", &t, err, sizeof(err)), -EINVAL, "lone $");
	ASSERT_EQ(tmpl_compile("${host", &t, err, sizeof(err)), -EINVAL, "unclosed brace");
}

static void test_rewrite(void)
{
	static struct parsed p;
	const struct listener *l;
	char out[512];
	int n;

	l = load_routes("\troute { path /api/; strip_prefix /api; pool p0; }\n"
			"\troute { path /old/; rewrite ^/old/(.*)$ /new/$1; pool p1; }\n"
			"\troute { path /q/; rewrite ^/q/(.*)$ /search?q=$1; pool p1; }\n");
	if (!l || parse(&p, GET("/api/v1/x?k=v", ""), NULL))
		return;
	n = rule_rewrite_path(&l->routes[0].act, NULL, &p.rq, p.rq.path, p.rq.path_len, p.rq.query,
			      p.rq.query_len, out, sizeof(out));
	ASSERT_TRUE(n > 0 && !strcmp(out, "/v1/x?k=v"), "strip_prefix: %s", out);
	n = rule_rewrite_path(&l->routes[0].act, NULL, &p.rq, "/api", 4, NULL, 0, out, sizeof(out));
	ASSERT_TRUE(n > 0 && !strcmp(out, "/"), "strip to the root: %s", out);
	n = rule_rewrite_path(&l->routes[0].act, NULL, &p.rq, "/apis/x", 7, NULL, 0, out,
			      sizeof(out));
	ASSERT_TRUE(n > 0 && !strcmp(out, "/apis/x"), "a whole segment only: %s", out);
	n = rule_rewrite_path(&l->routes[1].act, NULL, &p.rq, "/old/a/b", 8, "x=1", 3, out,
			      sizeof(out));
	ASSERT_TRUE(n > 0 && !strcmp(out, "/new/a/b?x=1"), "rewrite keeps the query: %s", out);
	n = rule_rewrite_path(&l->routes[2].act, NULL, &p.rq, "/q/cats", 7, "x=1", 3, out,
			      sizeof(out));
	ASSERT_TRUE(n > 0 && !strcmp(out, "/search?q=cats"), "replacement's query wins: %s", out);
	n = rule_rewrite_path(&l->routes[1].act, NULL, &p.rq, "/other", 6, NULL, 0, out,
			      sizeof(out));
	ASSERT_TRUE(n > 0 && !strcmp(out, "/other"), "no match: unchanged: %s", out);
	ASSERT_EQ(rule_rewrite_path(&l->routes[1].act, NULL, &p.rq, "/old/a", 6, NULL, 0, out, 4),
		  -ENOSPC, "too long");
}

static void test_cidr_parse(void)
{
	struct rule_cidr c;

	ASSERT_EQ(rule_cidr_parse("10.1.2.3/8", &c), 0, "v4");
	ASSERT_EQ(c.bits, 104, "96 + 8");
	ASSERT_EQ(c.addr[13], 0, "host bits cleared");
	ASSERT_EQ(rule_cidr_parse("10.0.0.0/33", &c), -EINVAL, "v4 /33");
	ASSERT_EQ(rule_cidr_parse("::/129", &c), -EINVAL, "v6 /129");
	ASSERT_EQ(rule_cidr_parse("::/0", &c), 0, "v6 /0");
	ASSERT_EQ(rule_cidr_parse("10.0.0.0/", &c), -EINVAL, "no bits");
	ASSERT_EQ(rule_cidr_parse("10.0.0.0/8x", &c), -EINVAL, "junk");
	ASSERT_EQ(rule_cidr_parse("example.com", &c), -EINVAL, "name");
}

/* addr16 - the 16-byte form of a textual address */
static const uint8_t *addr16(const char *s)
{
	static uint8_t a[16];

	memset(a, 0, sizeof(a));
	if (inet_pton(AF_INET6, s, a) != 1) {
		a[10] = a[11] = 0xff;
		inet_pton(AF_INET, s, a + 12);
	}
	return a;
}

/* access lists: first match wins, v4 in v6, edges, `all`, shadowed entries refused */
static void test_acl(void)
{
	const struct listener *l =
		load_routes("\tallow 10.1.0.0/16 2001:db8::/32;\n\tdeny 10.0.0.0/8;\n"
			    "\tdeny ::1;\n\tallow all;\n\troute { pool p0; }\n");
	const struct rule_acl *a;
	unsigned idx = 99;

	if (!l)
		return;
	a = &l->act.acl;
	ASSERT_EQ(a->n, 5, "entries");
	ASSERT_EQ(rule_acl_decide(a, addr16("10.1.255.255"), &idx), RULE_ACL_ALLOW, "last of /16");
	ASSERT_EQ(idx, 0, "the first entry decided");
	ASSERT_EQ(rule_acl_decide(a, addr16("10.2.0.0"), NULL), RULE_ACL_DENY, "past /16, in /8");
	ASSERT_EQ(rule_acl_decide(a, addr16("11.0.0.0"), NULL), RULE_ACL_ALLOW, "all");
	ASSERT_EQ(rule_acl_decide(a, addr16("::1"), NULL), RULE_ACL_DENY, "v6 single");
	ASSERT_EQ(rule_acl_decide(a, addr16("::2"), NULL), RULE_ACL_ALLOW, "v6 next");
	ASSERT_EQ(rule_acl_decide(a, addr16("2001:db8:1::9"), NULL), RULE_ACL_ALLOW, "v6 /32");
	/* a later entry inside an earlier one can never match */
	expect_conf_error("\tdeny 10.0.0.0/8;\n\tallow 10.1.2.3;\n\troute { pool p0; }\n",
			  "test.conf:4: 'allow 10.1.2.3' never matches: the entry at line 3");
	expect_conf_error("\tdeny all;\n\tdeny ::1;\n\troute { pool p0; }\n", "never matches");
	expect_conf_error("\tdeny 10.0.0.0/8;\n\tdeny 10.0.0.0/8;\n\troute { pool p0; }\n",
			  "never matches");
	expect_conf_error("\tdeny 10.0.0.0/33;\n\troute { pool p0; }\n", "invalid address");
	expect_conf_error("\troute { methods GET get; pool p0; }\n", "invalid method 'get'");
	/* a listener bound to port 0 cannot have kernel lists */
	{
		char *msgs = NULL;

		ASSERT_TRUE(load_text("listener l { bind 127.0.0.1:0; deny ::1; route { pool p0; } "
				      "}\n" POOLS,
				      &msgs) == NULL,
			    "port 0 with a list");
		ASSERT_TRUE(msgs && strstr(msgs, "fixed port"), "%s", msgs ? msgs : "");
		free(msgs);
	}
}

static void test_config_errors(void)
{
	expect_conf_error("\troute { path ~(; pool p0; }\n", "test.conf:3: 'path': invalid regex");
	expect_conf_error("\troute { header X ~[; pool p0; }\n", "invalid regex '['");
	expect_conf_error("\troute { source 10.0.0.0/40; pool p0; }\n", "invalid address");
	expect_conf_error("\troute { request_header set Content-Length 5; pool p0; }\n",
			  "cannot change header 'Content-Length'");
	expect_conf_error("\troute { request_header set Host x; pool p0; }\n", "upstream_host");
	expect_conf_error("\troute { response_header set X-A \"$bogus\"; pool p0; }\n",
			  "unknown variable '$bogus'");
	expect_conf_error("\troute { request_header add X-A; pool p0; }\n",
			  "usage: request_header set|add NAME VALUE");
	expect_conf_error("\troute { return 302; }\n", "'return 302' needs the URL");
	expect_conf_error("\troute { return 304 /x; }\n",
			  "redirects are 301, 302, 303, 307 and 308");
	expect_conf_error("\troute { return 99; }\n", "a status code from 200 to 599");
	expect_conf_error("\troute { path /x; }\n", "route has no 'pool' (nor a 'return')");
	expect_conf_error("\troute { error_page 404 /nonexistent/page.html; pool p0; }\n",
			  "error_page: cannot read '/nonexistent/page.html'");
	expect_conf_error("\troute { not bogus 1; pool p0; }\n",
			  "unknown condition after 'not' 'bogus'");
	expect_conf_error("\troute a { pool p0; }\n\troute a { pool p1; }\n",
			  "duplicate route 'a'");
	expect_conf_error("\troute { strip_prefix /api/; pool p0; }\n", "no trailing '/'");
	expect_conf_error("\trequest_id maybe;\n\troute { pool p0; }\n",
			  "usage: request_id on|off");
	expect_conf_error("\troute { method \"GE T\"; pool p0; }\n", "invalid method");
}

static void test_names_and_return(void)
{
	const struct listener *l =
		load_routes("\troute www { host www.example; pool p0; }\n"
			    "\troute { return 308 https://$host$request_uri; }\n");

	if (!l)
		return;
	ASSERT_STREQ(l->routes[0].name, "www", "named");
	ASSERT_STREQ(l->routes[1].name, "#2", "numbered");
	ASSERT_EQ(l->routes[1].act.ret_code, 308, "return code");
	ASSERT_TRUE(l->routes[1].pool == NULL, "a returning route needs no pool");
}

int main(void)
{
	RUN_TEST(test_method);
	RUN_TEST(test_header_conditions);
	RUN_TEST(test_negation);
	RUN_TEST(test_query);
	RUN_TEST(test_source);
	RUN_TEST(test_regex_host_path);
	RUN_TEST(test_templates);
	RUN_TEST(test_rewrite);
	RUN_TEST(test_cidr_parse);
	RUN_TEST(test_acl);
	RUN_TEST(test_config_errors);
	RUN_TEST(test_names_and_return);
	conf_free(cf);
	return TEST_DONE();
}
