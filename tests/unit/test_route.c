// SPDX-License-Identifier: MIT
/*
 * test_route.c - unit tests for userspace/route.c: listeners built by conf_load_string, then
 * route_match (exact and *.suffix hosts, path prefixes, first match wins, IPv6 literals),
 * route_host_normalize on its own, and requests routed as the daemon does it (parsed, target
 * normalized, then matched): no dot segment or encoding gets past a path route.
 */
#include <stdint.h>

#include "conf.h"
#include "http.h"
#include "route.h"
#include "test.h"

/* pools p0..p7 for the routes under test to point at */
#define POOLS                                   \
	"pool p0 { server s0 127.0.0.1:80; }\n" \
	"pool p1 { server s1 127.0.0.1:81; }\n" \
	"pool p2 { server s2 127.0.0.1:82; }\n" \
	"pool p3 { server s3 127.0.0.1:83; }\n" \
	"pool p4 { server s4 127.0.0.1:84; }\n" \
	"pool p5 { server s5 127.0.0.1:85; }\n" \
	"pool p6 { server s6 127.0.0.1:86; }\n" \
	"pool p7 { server s7 127.0.0.1:87; }\n"

static struct config *cf;

/*
 * load_routes - a config whose only listener has the given route statements; returns that
 * listener (owned by the global cf, freed by the next call or done()) or NULL.
 */
static const struct listener *load_routes(const char *routes)
{
	char text[4096];
	char *msgs = NULL;
	size_t msgs_len = 0;
	FILE *f;

	conf_free(cf);
	cf = NULL;
	snprintf(text, sizeof(text), "listener t {\n\tbind 127.0.0.1:8080;\n%s}\n" POOLS, routes);
	f = open_memstream(&msgs, &msgs_len);
	if (!f) {
		perror("open_memstream");
		exit(2);
	}
	cf = conf_load_string("route.conf", text, f);
	fclose(f);
	ASSERT_TRUE(cf != NULL, "config rejected:\n%s---\n%s", text, msgs ? msgs : "");
	free(msgs);
	if (!cf || !ASSERT_EQ(cf->nlisteners, 1, "nlisteners"))
		return NULL;
	return &cf->listeners[0];
}

static void done(void)
{
	conf_free(cf);
	cf = NULL;
}

/* index of the route chosen for host and path, -1 for none; host may be NULL */
static int match(const struct listener *l, const char *host, const char *path)
{
	const struct route *r;

	r = route_match(l, host, host ? strlen(host) : 0, path, strlen(path));
	if (!r)
		return -1;
	if (!ASSERT_TRUE(r >= l->routes && r < l->routes + l->nroutes, "route outside listener"))
		return -2;
	return (int)(r - l->routes);
}

/* the route for host and path must be `want` (-1: none); line is the caller's */
static void expect_match(int line, const struct listener *l, const char *host, const char *path,
			 int want)
{
	int got = match(l, host, path);

	ASSERT_TRUE(got == want, "line %d: host %s%s%s path \"%s\": route %d, want %d", line,
		    host ? "\"" : "", host ? host : "NULL", host ? "\"" : "", path, got, want);
}

#define EXPECT_MATCH(l, host, path, want) expect_match(__LINE__, l, host, path, want)

static void test_exact_host(void)
{
	const struct listener *l = load_routes("\troute { host example.com; pool p0; }\n"
					       "\troute { host www.example.com; pool p1; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "example.com", "/", 0);
	EXPECT_MATCH(l, "www.example.com", "/", 1);
	EXPECT_MATCH(l, "example.org", "/", -1);
	EXPECT_MATCH(l, "xexample.com", "/", -1);
	EXPECT_MATCH(l, "example.co", "/", -1);
	EXPECT_MATCH(l, "example.com.evil", "/", -1);
	EXPECT_MATCH(l, "a.example.com", "/", -1);
	done();
}

static void test_host_case_insensitive(void)
{
	/* the configured name is lower-cased too */
	const struct listener *l = load_routes("\troute { host Example.COM; pool p0; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "example.com", "/", 0);
	EXPECT_MATCH(l, "EXAMPLE.COM", "/", 0);
	EXPECT_MATCH(l, "eXaMpLe.CoM", "/", 0);
	done();
}

static void test_host_port_stripped(void)
{
	const struct listener *l = load_routes("\troute { host example.com; pool p0; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "example.com:8080", "/", 0);
	EXPECT_MATCH(l, "example.com:80", "/", 0);
	EXPECT_MATCH(l, "example.com:", "/", 0);
	EXPECT_MATCH(l, "Example.Com:443", "/", 0);
	done();
}

static void test_host_trailing_dot(void)
{
	const struct listener *l = load_routes("\troute { host example.com; pool p0; }\n"
					       "\troute { host *.example.org; pool p1; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "example.com.", "/", 0);
	EXPECT_MATCH(l, "example.com.:8080", "/", 0);
	EXPECT_MATCH(l, "EXAMPLE.COM.", "/", 0);
	EXPECT_MATCH(l, "a.example.org.", "/", 1);
	/* only one dot is the root label */
	EXPECT_MATCH(l, "example.com..", "/", -1);
	done();
}

static void test_wildcard_subdomains(void)
{
	const struct listener *l = load_routes("\troute { host *.example.com; pool p0; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "a.example.com", "/", 0);
	EXPECT_MATCH(l, "www.example.com", "/", 0);
	EXPECT_MATCH(l, "a.b.c.example.com", "/", 0);
	EXPECT_MATCH(l, "A.Example.COM:8443", "/", 0);
	/* not the bare domain, nor a name that merely ends the same way */
	EXPECT_MATCH(l, "example.com", "/", -1);
	EXPECT_MATCH(l, "example.com:80", "/", -1);
	EXPECT_MATCH(l, ".example.com", "/", -1);
	EXPECT_MATCH(l, "badexample.com", "/", -1);
	EXPECT_MATCH(l, "example.com.au", "/", -1);
	EXPECT_MATCH(l, "com", "/", -1);
	done();
}

static void test_wildcard_and_bare(void)
{
	/* the usual pair: the bare domain has to be listed next to its wildcard */
	const struct listener *l = load_routes("\troute { host *.example.com; pool p0; }\n"
					       "\troute { host example.com; pool p1; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "www.example.com", "/", 0);
	EXPECT_MATCH(l, "example.com", "/", 1);
	done();
}

static void test_path_prefix(void)
{
	const struct listener *l = load_routes("\troute { path /api/; pool p0; }\n"
					       "\troute { path /static; pool p1; }\n"
					       "\troute { path /; pool p2; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "any.host", "/api/", 0);
	EXPECT_MATCH(l, "any.host", "/api/v1/users?id=3", 0);
	EXPECT_MATCH(l, "any.host", "/api", 2);
	EXPECT_MATCH(l, "any.host", "/static/app.js", 1);
	EXPECT_MATCH(l, "any.host", "/static", 1);
	EXPECT_MATCH(l, "any.host", "/Static/app.js", 2); /* paths are case-sensitive */
	EXPECT_MATCH(l, "any.host", "/", 2);
	EXPECT_MATCH(l, NULL, "/api/x", 0);
	/* a path that does not start with the prefix matches nothing, not even "/" */
	EXPECT_MATCH(l, "any.host", "", -1);
	EXPECT_MATCH(l, "any.host", "*", -1);
	done();
}

static void test_path_len_respected(void)
{
	/* path_len bounds the comparison: bytes after it are not part of the path */
	const struct listener *l = load_routes("\troute { path /api; pool p0; }\n");
	const char *buf = "/apifoo";

	if (!l)
		return;
	ASSERT_TRUE(route_match(l, NULL, 0, buf, 3) == NULL, "\"/ap\" matched /api");
	ASSERT_TRUE(route_match(l, NULL, 0, buf, 4) == &l->routes[0], "\"/api\" not matched");
	ASSERT_TRUE(route_match(l, NULL, 0, NULL, 0) == NULL, "empty path matched /api");
	done();
}

static void test_host_len_respected(void)
{
	const struct listener *l = load_routes("\troute { host example.com; pool p0; }\n");
	const char *buf = "example.com.evil.net";

	if (!l)
		return;
	ASSERT_TRUE(route_match(l, buf, 11, "/", 1) == &l->routes[0], "11 bytes: example.com");
	ASSERT_TRUE(route_match(l, buf, 12, "/", 1) == &l->routes[0], "12 bytes: example.com.");
	ASSERT_TRUE(route_match(l, buf, 13, "/", 1) == NULL, "13 bytes: example.com.e");
	ASSERT_TRUE(route_match(l, buf, 10, "/", 1) == NULL, "10 bytes: example.co");
	done();
}

static void test_first_match_wins(void)
{
	const struct listener *l = load_routes("\troute { host a.example.com; pool p0; }\n"
					       "\troute { host *.example.com; pool p1; }\n"
					       "\troute { host a.example.com; pool p2; }\n"
					       "\troute { pool p3; }\n"
					       "\troute { host b.example.com; pool p4; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "a.example.com", "/", 0);
	EXPECT_MATCH(l, "b.example.com", "/", 1);
	EXPECT_MATCH(l, "c.example.com", "/x", 1);
	EXPECT_MATCH(l, "other.net", "/", 3);
	done();
}

static void test_host_and_path(void)
{
	const struct listener *l =
		load_routes("\troute { host api.example.com; path /v2; pool p0; }\n"
			    "\troute { host api.example.com; pool p1; }\n"
			    "\troute { path /v2; pool p2; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "api.example.com", "/v2/items", 0);
	EXPECT_MATCH(l, "API.example.com:443", "/v2", 0);
	/* host matches, path does not */
	EXPECT_MATCH(l, "api.example.com", "/v1/items", 1);
	/* path matches, host does not */
	EXPECT_MATCH(l, "www.example.com", "/v2/items", 2);
	/* neither */
	EXPECT_MATCH(l, "www.example.com", "/v1", -1);
	done();
}

static void test_host_and_path_both_required(void)
{
	const struct listener *l =
		load_routes("\troute { host api.example.com; path /v2; pool p0; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "api.example.com", "/v2", 0);
	EXPECT_MATCH(l, "api.example.com", "/v1", -1);
	EXPECT_MATCH(l, "www.example.com", "/v2", -1);
	EXPECT_MATCH(l, NULL, "/v2", -1);
	done();
}

static void test_multiple_hosts(void)
{
	/* several names in one statement and several host statements in one route add up */
	const struct listener *l =
		load_routes("\troute { host a.com B.com *.c.com; host d.com; pool p0; }\n"
			    "\troute { host e.com; pool p1; }\n");

	if (!l)
		return;
	if (ASSERT_EQ(l->routes[0].nhosts, 4, "nhosts")) {
		ASSERT_STREQ(l->routes[0].hosts[1], "b.com", "host 1");
		ASSERT_STREQ(l->routes[0].hosts[3], "d.com", "host 3");
	}
	EXPECT_MATCH(l, "a.com", "/", 0);
	EXPECT_MATCH(l, "b.com", "/", 0);
	EXPECT_MATCH(l, "x.c.com", "/", 0);
	EXPECT_MATCH(l, "d.com:81", "/", 0);
	EXPECT_MATCH(l, "c.com", "/", -1);
	EXPECT_MATCH(l, "e.com", "/", 1);
	EXPECT_MATCH(l, "f.com", "/", -1);
	done();
}

static void test_max_hosts(void)
{
	const struct listener *l =
		load_routes("\troute { host h1 h2 h3 h4 h5 h6 h7 h8.example; pool p0; }\n");

	if (!l)
		return;
	ASSERT_EQ(l->routes[0].nhosts, MAX_ROUTE_HOSTS, "nhosts");
	EXPECT_MATCH(l, "h1", "/", 0);
	EXPECT_MATCH(l, "h8.example", "/", 0);
	EXPECT_MATCH(l, "h9", "/", -1);
	done();
}

static void test_default_route(void)
{
	const struct listener *l = load_routes("\troute { host example.com; pool p0; }\n"
					       "\troute { pool p1; }\n");
	const struct route *r;

	if (!l)
		return;
	EXPECT_MATCH(l, "example.com", "/", 0);
	EXPECT_MATCH(l, "other.com", "/anything", 1);
	EXPECT_MATCH(l, NULL, "/", 1);
	EXPECT_MATCH(l, "", "/", 1);
	/* route->pool is resolved to the pool named in the config */
	ASSERT_TRUE(l->routes[1].pool && !strcmp(l->routes[1].pool->name, "p1"), "default -> p1");
	r = route_match(l, "x", 1, "/", 1);
	ASSERT_TRUE(r && r->pool == conf_find_pool(cf, "p1"), "matched route carries its pool");
	done();
}

static void test_no_match(void)
{
	const struct listener *l =
		load_routes("\troute { host example.com; pool p0; }\n"
			    "\troute { host *.example.net; path /app; pool p1; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "example.org", "/", -1);
	EXPECT_MATCH(l, "a.example.net", "/other", -1);
	EXPECT_MATCH(l, NULL, "/", -1);
	EXPECT_MATCH(l, "", "/app", -1);
	done();
}

static void test_no_host(void)
{
	/* a missing Host (NULL or empty) matches only routes without host conditions */
	const struct listener *l = load_routes("\troute { host example.com; pool p0; }\n"
					       "\troute { path /x; pool p1; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, NULL, "/x/y", 1);
	EXPECT_MATCH(l, "", "/x/y", 1);
	EXPECT_MATCH(l, NULL, "/", -1);
	ASSERT_TRUE(route_match(l, "example.com", 0, "/", 1) == NULL, "host_len 0 is no host");
	ASSERT_TRUE(route_match(l, NULL, 11, "/x", 2) == &l->routes[1], "NULL host, len 11");
	done();
}

static void test_ipv6_literal(void)
{
	const struct listener *l =
		load_routes("\troute { host [::1]; pool p0; }\n"
			    "\troute { host [2001:DB8::1] 127.0.0.1; pool p1; }\n");

	if (!l)
		return;
	EXPECT_MATCH(l, "[::1]:8080", "/", 0);
	EXPECT_MATCH(l, "[::1]", "/", 0);
	EXPECT_MATCH(l, "[2001:db8::1]:443", "/", 1);
	EXPECT_MATCH(l, "[2001:DB8::1]", "/", 1);
	EXPECT_MATCH(l, "127.0.0.1:8080", "/", 1);
	EXPECT_MATCH(l, "[::2]:8080", "/", -1);
	/* the port is only what follows the bracket: "::1" is not a host name here */
	EXPECT_MATCH(l, "[::1:8080", "/", -1);
	done();
}

static void test_host_too_long(void)
{
	/* a Host that cannot be normalized matches no host route, but still the default */
	const struct listener *l = load_routes("\troute { host *.example.com; pool p0; }\n"
					       "\troute { pool p1; }\n");
	char host[HOST_MAX_LEN + 64];

	if (!l)
		return;
	memset(host, 'a', sizeof(host));
	memcpy(host + sizeof(host) - 13, ".example.com", 13);
	ASSERT_EQ(strlen(host), sizeof(host) - 1, "host length");
	EXPECT_MATCH(l, host, "/", 1);
	done();
}

/* ---------------------------------------------------------------- whole requests */

/*
 * route_request - route a raw request head as conn.c does: parse, normalize the target, match
 * on the authority and the normalized path. Returns the route index, -1 for none (404), or the
 * parser's negative status (-400, -414) when the request is refused before routing.
 */
static int route_request(const struct listener *l, const char *req)
{
	static struct http_msg m;
	static char path[HTTP_MAX_TARGET + 2];
	const struct route *r;
	int n;

	memset(&m, 0, sizeof(m));
	n = http_parse_request(req, strlen(req), 65536, &m);
	if (n <= 0)
		return n < 0 ? n : -1000;
	n = http_target_normalize(req, &m, path, sizeof(path));
	if (!ASSERT_TRUE(n >= 0, "normalize: %d", n))
		return -1000;
	r = route_match(l, req + m.host.off, m.host.len, path, (size_t)n);
	return r ? (int)(r - l->routes) : -1;
}

/* issue 19 item 1: a path route is an allowlist and must not be bypassed */
static void test_dot_segment_bypass(void)
{
	static const struct {
		const char *target;
		int want; /* route, -1 none (404), or the refusal */
	} tab[] = {
		{"/public/x", 0},
		{"/public", 0},
		{"/admin", -1},
		{"/public/../admin", -1},
		{"/public/%2e%2e/admin", -1},
		{"/public/%2E%2e/admin", -1},
		{"/public/.%2e/admin", -1},
		{"/public/./../admin", -1},
		{"/public//../admin", -1},
		{"/public/x/../../admin", -1},
		{"/public/x/../y", 0},
		{"/public/./x", 0},
		{"//public/x", 0},
		{"/%70ublic/x", 0},
		{"/public/../admin?x=/public", -1},
		{"/x/../public/y", 0},
		{"/public/..;/admin", -400},
		{"/public/..%3b/admin", -400},
		{"/public/..%2fadmin", -400},
		{"/public/..\\admin", -400},
		{"/public/..%5cadmin", -400},
		{"/public/%252e%252e/admin", -400},
		/* encoded twice only once an unreserved character is decoded ("%32" is '2') */
		{"/public/%25%32e%25%32e/admin", -400},
		{"/5/%25%32EE", -400},
		{"/public/%00/../admin", -400},
		{"/../public/x", -400},
		{"/public/../../admin", -400},
	};
	const struct listener *l =
		load_routes("\troute { host www.example; path /public; pool p0; }\n");
	char req[512];
	size_t i;

	if (!l)
		return;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: www.example\r\n\r\n",
			 tab[i].target);
		ASSERT_EQ(route_request(l, req), tab[i].want, tab[i].target);
		/* the same in absolute-form */
		snprintf(req, sizeof(req), "GET http://www.example%s HTTP/1.1\r\nHost: x\r\n\r\n",
			 tab[i].target);
		ASSERT_EQ(route_request(l, req), tab[i].want, tab[i].target);
	}
	done();
}

/* issue 19 item 2: the authority of an absolute-form or CONNECT target is what is routed on */
static void test_route_on_target_authority(void)
{
	const struct listener *l = load_routes("\troute { host www.example; pool p0; }\n"
					       "\troute { host intranet.corp; pool p1; }\n");

	if (!l)
		return;
	ASSERT_EQ(route_request(l, "GET http://www.example/x HTTP/1.1\r\nHost: intranet.corp\r\n"
				   "\r\n"),
		  0, "absolute-form: the authority, not Host");
	ASSERT_EQ(route_request(l, "GET /x HTTP/1.1\r\nHost: intranet.corp\r\n\r\n"), 1,
		  "origin-form: Host");
	ASSERT_EQ(route_request(l, "CONNECT www.example:443 HTTP/1.1\r\nHost: intranet.corp\r\n"
				   "\r\n"),
		  0, "CONNECT: the target, not Host");
	ASSERT_EQ(route_request(l, "CONNECT other.test:443 HTTP/1.1\r\nHost: www.example\r\n"
				   "\r\n"),
		  -1, "CONNECT elsewhere: no route");
	done();
}

/* ---------------------------------------------------------------- route_host_normalize */

static void expect_norm(const char *in, const char *want)
{
	char out[HOST_MAX_LEN];
	int n;

	memset(out, 'Z', sizeof(out));
	n = route_host_normalize(in, strlen(in), out, sizeof(out));
	ASSERT_EQ(n, (long long)strlen(want), in);
	ASSERT_STREQ(out, want, in);
}

static void test_normalize(void)
{
	expect_norm("example.com", "example.com");
	expect_norm("Example.COM", "example.com");
	expect_norm("example.com:8080", "example.com");
	expect_norm("example.com.", "example.com");
	expect_norm("Example.Com.:443", "example.com");
	expect_norm("example.com..", "example.com.");
	expect_norm("[::1]:8080", "[::1]");
	expect_norm("[::1]", "[::1]");
	expect_norm("[FE80::A]:80", "[fe80::a]");
	expect_norm("10.0.0.1:80", "10.0.0.1");
	expect_norm("", "");
	expect_norm(".", "");
	expect_norm(":80", "");
	expect_norm("a", "a");
	expect_norm("[::1", "[::1");
}

static void test_normalize_len(void)
{
	/* only len bytes are read; the input need not be NUL-terminated */
	char out[32];
	const char in[] = {'W', 'W', 'W', '.', 'X', '.', 'Y', 'Z', ':', '1'};

	ASSERT_EQ(route_host_normalize(in, 5, out, sizeof(out)), 5, "5 bytes");
	ASSERT_STREQ(out, "www.x", "5 bytes");
	ASSERT_EQ(route_host_normalize(in, 4, out, sizeof(out)), 3, "dot at len-1 dropped");
	ASSERT_STREQ(out, "www", "4 bytes");
	ASSERT_EQ(route_host_normalize(in, sizeof(in), out, sizeof(out)), 8, "whole");
	ASSERT_STREQ(out, "www.x.yz", "whole");
	ASSERT_EQ(route_host_normalize("ab", 0, out, sizeof(out)), 0, "len 0");
	ASSERT_STREQ(out, "", "len 0");
}

static void test_normalize_capacity(void)
{
	char out[8], big[HOST_MAX_LEN + 1];

	/* n characters need n + 1 bytes */
	ASSERT_EQ(route_host_normalize("abcdefg", 7, out, 8), 7, "fits exactly");
	ASSERT_STREQ(out, "abcdefg", "fits exactly");
	ASSERT_EQ(route_host_normalize("abcdefgh", 8, out, 8), -1, "one too long");
	/* what is stripped does not count */
	ASSERT_EQ(route_host_normalize("abcdefg.:65535", 14, out, 8), 7, "stripped fits");
	ASSERT_STREQ(out, "abcdefg", "stripped fits");
	ASSERT_EQ(route_host_normalize("[::1]:80", 8, out, 5), -1, "[::1] needs 6 bytes");
	ASSERT_EQ(route_host_normalize("[::1]:80", 8, out, 6), 5, "[::1] in 6 bytes");
	ASSERT_EQ(route_host_normalize("", 0, out, 1), 0, "empty in 1 byte");
	ASSERT_EQ(route_host_normalize("a", 1, out, 0), -1, "cap 0");
	memset(big, 'b', sizeof(big));
	ASSERT_EQ(route_host_normalize(big, sizeof(big), big, sizeof(big)), -1, "HOST_MAX_LEN+1");
}

int main(void)
{
	RUN_TEST(test_exact_host);
	RUN_TEST(test_host_case_insensitive);
	RUN_TEST(test_host_port_stripped);
	RUN_TEST(test_host_trailing_dot);
	RUN_TEST(test_wildcard_subdomains);
	RUN_TEST(test_wildcard_and_bare);
	RUN_TEST(test_path_prefix);
	RUN_TEST(test_path_len_respected);
	RUN_TEST(test_host_len_respected);
	RUN_TEST(test_first_match_wins);
	RUN_TEST(test_host_and_path);
	RUN_TEST(test_host_and_path_both_required);
	RUN_TEST(test_multiple_hosts);
	RUN_TEST(test_max_hosts);
	RUN_TEST(test_default_route);
	RUN_TEST(test_no_match);
	RUN_TEST(test_no_host);
	RUN_TEST(test_ipv6_literal);
	RUN_TEST(test_host_too_long);
	RUN_TEST(test_dot_segment_bypass);
	RUN_TEST(test_route_on_target_authority);
	RUN_TEST(test_normalize);
	RUN_TEST(test_normalize_len);
	RUN_TEST(test_normalize_capacity);
	return TEST_DONE();
}
