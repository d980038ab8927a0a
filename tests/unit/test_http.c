// SPDX-License-Identifier: MIT
/*
 * test_http.c - unit tests for userspace/http.c: request/response head parsing (every rejection
 * with its status), incremental feeding, the chunked walker and head rewriting.
 */
#include <errno.h>
#include <stdint.h>

#include "http.h"
#include "test.h"

#define MAX_HEAD 8192

static struct http_msg msg; /* too big for comfortable stack use in every test */

static int parse_req_max(const char *s, size_t max_head)
{
	memset(&msg, 0, sizeof(msg));
	return http_parse_request(s, strlen(s), max_head, &msg);
}

static int parse_req(const char *s)
{
	return parse_req_max(s, MAX_HEAD);
}

static int parse_resp(const char *s, enum http_method req_method)
{
	memset(&msg, 0, sizeof(msg));
	return http_parse_response(s, strlen(s), MAX_HEAD, req_method, &msg);
}

/* does span s of buf hold exactly lit? */
static int span_is(const char *buf, struct http_span s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(buf + s.off, lit, s.len) == 0;
}

/* request with one extra header line, which must be refused with want */
static int req_with_header(const char *hdr)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n", hdr);
	return parse_req(buf);
}

static void test_req_simple_get(void)
{
	const char *s = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";

	ASSERT_EQ(parse_req(s), (int)strlen(s), "ret");
	ASSERT_EQ(msg.head_len, strlen(s), "head_len");
	ASSERT_EQ(msg.method, HTTP_M_GET, "method");
	ASSERT_TRUE(span_is(s, msg.method_s, "GET"), "method_s");
	ASSERT_TRUE(span_is(s, msg.target, "/index.html?q=1"), "target");
	ASSERT_TRUE(span_is(s, msg.path, "/index.html?q=1"), "path");
	ASSERT_TRUE(span_is(s, msg.host, "example.com"), "host");
	ASSERT_EQ(msg.version_minor, 1, "version");
	ASSERT_EQ(msg.nhdrs, 2, "nhdrs");
	ASSERT_TRUE(span_is(s, msg.hdrs[1].name, "Accept"), "name");
	ASSERT_TRUE(span_is(s, msg.hdrs[1].value, "*/*"), "value");
	ASSERT_EQ(msg.framing, HTTP_BODY_NONE, "framing");
	ASSERT_EQ(msg.flags, 0, "flags");
}

static void test_req_methods(void)
{
	static const struct {
		const char *name;
		enum http_method m;
	} tab[] = {
		{"GET", HTTP_M_GET},	 {"HEAD", HTTP_M_HEAD},	     {"POST", HTTP_M_POST},
		{"PUT", HTTP_M_PUT},	 {"DELETE", HTTP_M_DELETE},  {"OPTIONS", HTTP_M_OPTIONS},
		{"TRACE", HTTP_M_TRACE}, {"PATCH", HTTP_M_PATCH},    {"PROPFIND", HTTP_M_OTHER},
		{"get", HTTP_M_OTHER},	 {"M-SEARCH", HTTP_M_OTHER},
	};
	char buf[128];
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", tab[i].name);
		ASSERT_TRUE(parse_req(buf) > 0, "%s", tab[i].name);
		ASSERT_EQ(msg.method, tab[i].m, tab[i].name);
	}
}

/* every field that a one-shot parse sets must come out the same from a byte-by-byte feed */
static void test_req_incremental_bytewise(void)
{
	const char *s = "\r\nPOST http://h.example:81/p?x HTTP/1.1\r\nHost: other\r\n"
			"Content-Length: 12\r\nConnection: keep-alive\r\nX-Long:  a  b \r\n\r\n"
			"BODY";
	size_t len = strlen(s), i;
	static struct http_msg one, inc;
	int ret = 0;

	memset(&one, 0, sizeof(one));
	ASSERT_EQ(http_parse_request(s, len, MAX_HEAD, &one), len - 4, "one-shot");
	memset(&inc, 0, sizeof(inc));
	for (i = 1; i <= len; i++) {
		ret = http_parse_request(s, i, MAX_HEAD, &inc);
		if (ret)
			break;
	}
	ASSERT_EQ(ret, len - 4, "incremental ret");
	ASSERT_EQ(i, len - 4, "completed exactly at the end of the head");
	inc.scan = one.scan;
	ASSERT_TRUE(memcmp(&one, &inc, sizeof(one)) == 0, "same struct");
}

static void test_req_incremental_scan(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

	memset(&msg, 0, sizeof(msg));
	ASSERT_EQ(http_parse_request(s, 10, MAX_HEAD, &msg), 0, "partial");
	ASSERT_EQ(msg.scan, 10, "scan advanced");
	/* a CR at the end is not judged until its successor arrives */
	ASSERT_EQ(http_parse_request(s, 15, MAX_HEAD, &msg), 0, "ends in CR");
	ASSERT_EQ(msg.scan, 14, "scan stops at CR");
	ASSERT_EQ(http_parse_request(s, strlen(s) - 1, MAX_HEAD, &msg), 0, "missing last LF");
	ASSERT_EQ(http_parse_request(s, strlen(s), MAX_HEAD, &msg), (int)strlen(s), "done");
	ASSERT_EQ(parse_req(""), 0, "empty");
	ASSERT_EQ(parse_req("\r"), 0, "lone CR");
	ASSERT_EQ(parse_req("\r\n"), 0, "one empty line");
}

static void test_req_pipelined_bytes_after_head(void)
{
	const char *s = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";

	ASSERT_EQ(parse_req(s), (int)strlen(s) / 2, "first head only");
}

static void test_req_leading_crlf(void)
{
	const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";

	ASSERT_EQ(parse_req(s), (int)strlen(s), "ret");
	ASSERT_EQ(msg.method_s.off, 4, "request line offset");
	ASSERT_EQ(parse_req("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") > 0, 1, "four");
	ASSERT_EQ(parse_req("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "five");
	ASSERT_EQ(parse_req("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "bare LF");
	ASSERT_EQ(parse_req("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "CRLF LF");
	ASSERT_EQ(parse_req("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "bare CR");
	ASSERT_EQ(parse_req(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "leading SP");
}

static void test_req_absolute_form(void)
{
	const char *s = "GET http://Example.com:8080/x/y?z=1 HTTP/1.1\r\nHost: ignored\r\n\r\n";

	ASSERT_TRUE(parse_req(s) > 0, "ok");
	ASSERT_TRUE(msg.flags & HTTP_F_ABSOLUTE_FORM, "flag");
	ASSERT_TRUE(span_is(s, msg.host, "Example.com:8080"), "host = authority");
	ASSERT_TRUE(span_is(s, msg.path, "/x/y?z=1"), "path");
	ASSERT_TRUE(span_is(s, msg.target, "http://Example.com:8080/x/y?z=1"), "target");
}

static void test_req_absolute_form_variants(void)
{
	const char *s = "GET HTTPS://[::1] HTTP/1.1\r\nHost: x\r\n\r\n";

	ASSERT_TRUE(parse_req(s) > 0, "https, no path");
	ASSERT_TRUE(span_is(s, msg.host, "[::1]"), "host");
	ASSERT_EQ(msg.path.len, 0, "empty path");
	s = "GET http://h?q HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "query only");
	ASSERT_TRUE(span_is(s, msg.path, "?q"), "path starts with ?");
	ASSERT_EQ(parse_req("GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400, "userinfo");
	ASSERT_EQ(parse_req("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), -400, "empty host");
	ASSERT_EQ(parse_req("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n"), -400, "nothing");
	ASSERT_EQ(parse_req("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400, "scheme");
	ASSERT_EQ(parse_req("GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400, "port");
	/* absolute-form does not excuse a missing Host (RFC 9112 3.2) */
	ASSERT_EQ(parse_req("GET http://h/ HTTP/1.1\r\n\r\n"), -400, "no Host");
}

static void test_req_connect(void)
{
	const char *s = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";

	ASSERT_EQ(parse_req(s), (int)strlen(s), "ok");
	ASSERT_EQ(msg.method, HTTP_M_CONNECT, "method");
	ASSERT_TRUE(span_is(s, msg.target, "example.com:443"), "target");
	ASSERT_EQ(msg.path.len, 0, "no path");
	ASSERT_TRUE(span_is(s, msg.host, "example.com:443"), "host");
	/* RFC 9112 3.2.3: the target is where the tunnel goes; a different Host does not count */
	s = "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_EQ(parse_req(s) > 0, 1, "v6");
	ASSERT_TRUE(span_is(s, msg.host, "[2001:db8::1]:443"), "host is the target");
	ASSERT_EQ(parse_req("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "origin-form");
	ASSERT_EQ(parse_req("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "no port");
	ASSERT_EQ(parse_req("CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "absolute");
	ASSERT_EQ(parse_req("GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
		  "authority-form without CONNECT");
}

static void test_req_asterisk(void)
{
	ASSERT_TRUE(parse_req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") > 0, "OPTIONS *");
	ASSERT_EQ(msg.method, HTTP_M_OPTIONS, "method");
	ASSERT_EQ(parse_req("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "GET *");
	ASSERT_EQ(parse_req("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "*x");
}

static void test_req_bad_target(void)
{
	ASSERT_EQ(parse_req("GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "relative");
	ASSERT_EQ(parse_req("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "raw UTF-8");
	ASSERT_EQ(parse_req("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "control");
	ASSERT_EQ(parse_req("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "DEL");
	ASSERT_EQ(parse_req("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "HTAB");
	ASSERT_EQ(parse_req("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "SP in target");
}

/* RFC 3986 5.2.4 on the decoded form of unreserved characters, and the shapes refused */
static void test_path_normalize(void)
{
	static const struct {
		const char *in, *want; /* want NULL: -400 */
	} tab[] = {
		{"/", "/"},
		{"", "/"},
		{"?q", "/?q"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"/a//b///c", "/a/b/c"},
		{"//a", "/a"},
		{"/a/./b", "/a/b"},
		{"/./a", "/a"},
		{"/.", "/"},
		{"/a/.", "/a/"},
		{"/a/..", "/"},
		{"/a/b/..", "/a/"},
		{"/a/b/c/./../../g", "/a/g"},
		{"/public/../admin", "/admin"},
		{"/public/%2e%2e/admin", "/admin"},
		{"/public/%2E%2e/admin", "/admin"},
		{"/public/.%2E/admin", "/admin"},
		{"/public/%2e./admin", "/admin"},
		{"/public/%2e/admin", "/public/admin"},
		{"/public/./../admin/", "/admin/"},
		{"/a/%2e%2e", "/"},
		{"/%7Euser/%41%62%2D%5F", "/~user/Ab-_"},
		{"/caf%c3%a9/%3b", "/caf%C3%A9/%3B"},
		{"/a%20b%25", "/a%20b%25"},
		{"/a/..?x=/../y&z=%2f%zz\\", "/?x=/../y&z=%2f%zz\\"},
		{"/a/b/..?", "/a/?"},
		{"/...", "/..."},
		{"/a/.../b", "/a/.../b"},
		{"/a/..b/.c", "/a/..b/.c"},
		{"/a%2e/b", "/a./b"},
		{"/a;b=1/c;d", "/a;b=1/c;d"},
		{"/.a;b/c", "/.a;b/c"},
		{"/..", NULL},
		{"/../a", NULL},
		{"/%2e%2e/a", NULL},
		{"/a/../..", NULL},
		{"/a/../../b", NULL},
		{"//..//a", NULL},
		{"/a/..;/b", NULL},
		{"/a/.;x/b", NULL},
		{"/a/..%3b/b", NULL},
		{"/a/%2E%2E%3B/b", NULL},
		{"/a\\b", NULL},
		{"/a/..\\b", NULL},
		{"/a%5cb", NULL},
		{"/a%5C..%5Cb", NULL},
		{"/a%2fb", NULL},
		{"/public/%252e%252e/admin", NULL},
		{"/a/..%252Fadmin", NULL},
		{"/a%255cb", NULL},
		{"/a%2525/%25/%2541", "/a%2525/%25/%2541"},
		{"/public/..%2Fadmin", NULL},
		{"/a%00", NULL},
		{"/a%0d%0aX:%20y", NULL},
		{"/a%1F", NULL},
		{"/a%7f", NULL},
		{"/a%", NULL},
		{"/a%4", NULL},
		{"/a%4g", NULL},
		{"/a%%41", NULL},
		{"/%u002e%u002e/a", NULL},
		{"/a#b", NULL},
		{"a/b", NULL},
		{"*", NULL},
	};
	char out[256], again[256];
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		const char *in = tab[i].in;
		int n = http_path_normalize(in, strlen(in), out, sizeof(out));

		if (!tab[i].want) {
			ASSERT_EQ(n, -400, in);
			ASSERT_EQ(http_path_normalize(in, strlen(in), NULL, 0), -400, in);
			continue;
		}
		if (!ASSERT_EQ(n, strlen(tab[i].want), in))
			continue;
		ASSERT_STREQ(out, tab[i].want, in);
		ASSERT_EQ(http_path_normalize(in, strlen(in), NULL, 0), 0, in);
		/* normalizing twice changes nothing */
		ASSERT_EQ(http_path_normalize(out, (size_t)n, again, sizeof(again)), n, in);
		ASSERT_STREQ(again, out, in);
	}
}

static void test_path_normalize_bounds(void)
{
	static char in[HTTP_MAX_TARGET + 1], out[HTTP_MAX_TARGET + 2];
	const char *s = "/a/b/../c";
	char small[8];
	size_t i, n = 0;

	char big[16];

	/* the output never outgrows the input by more than one byte: "" -> "/", "?q" -> "/?q";
	 * the room asked for is the input's length + 2 whatever the result */
	ASSERT_EQ(http_path_normalize("", 0, small, 2), 1, "\"\" in 2 bytes");
	ASSERT_STREQ(small, "/", "/");
	ASSERT_EQ(http_path_normalize("", 0, small, 1), -ENOSPC, "no room for the NUL");
	ASSERT_EQ(http_path_normalize(s, strlen(s), big, 11), 4, "/a/c in 11 bytes");
	ASSERT_STREQ(big, "/a/c", "/a/c");
	ASSERT_EQ(http_path_normalize(s, strlen(s), big, 10), -ENOSPC, "short by one");
	ASSERT_EQ(http_path_normalize(s, strlen(s), big, 0), -ENOSPC, "nothing");
	ASSERT_EQ(http_path_normalize("/..", 3, big, 3), -ENOSPC, "room checked first");
	/* a long path of segments that cancel out: linear, exact */
	while (n + 5 <= HTTP_MAX_TARGET - 2) {
		memcpy(in + n, "/a/..", 5);
		n += 5;
	}
	memcpy(in + n, "/z", 2);
	n += 2;
	ASSERT_EQ(http_path_normalize(in, n, out, sizeof(out)), 2, "collapses");
	ASSERT_STREQ(out, "/z", "to the last segment");
	/* deep nesting then as many ".." plus one: above the root */
	for (i = 0, n = 0; i < 1000; i++, n += 2)
		memcpy(in + n, "/d", 2);
	for (i = 0; i < 1001; i++, n += 3)
		memcpy(in + n, "/..", 3);
	ASSERT_EQ(http_path_normalize(in, n, out, sizeof(out)), -400, "1001 up from 1000 down");
	ASSERT_EQ(http_path_normalize(in, n - 3, out, sizeof(out)), 1, "1000 up: the root");
}

/* what the parser refuses in a target, and the -414 bound */
static void test_req_target_checks(void)
{
	static const char *const bad[] = {
		"/public/../../admin",
		"/../admin",
		"/%2e%2e/admin",
		"/a/..;/admin",
		"/a\\..\\admin",
		"/a%2fb",
		"/a%5c..%5cadmin",
		"/a%00b",
		"/a%0a",
		"/a%zz",
		"/a#frag",
		"/a?b#frag",
	};
	static char buf[HTTP_MAX_TARGET + 64];
	char s[128];
	size_t i;
	int n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", bad[i]);
		ASSERT_EQ(parse_req(s), -400, bad[i]);
		snprintf(s, sizeof(s), "GET http://a%s HTTP/1.1\r\nHost: a\r\n\r\n", bad[i]);
		ASSERT_EQ(parse_req(s), -400, bad[i]);
	}
	ASSERT_EQ(parse_req("GET /a?x=1#no HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
		  "'#' in the query too");
	/* dot segments are accepted (and resolved when routed); the query is not judged */
	ASSERT_TRUE(parse_req("GET /public/../admin?x=%zz\\ HTTP/1.1\r\nHost: a\r\n\r\n") > 0,
		    "dots in the path, anything in the query");
	ASSERT_TRUE(parse_req("CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n") > 0, "CONNECT");

	/* exactly HTTP_MAX_TARGET bytes of target pass, one more is 414 */
	n = snprintf(buf, sizeof(buf), "GET /");
	memset(buf + n, 'a', HTTP_MAX_TARGET - 1);
	n += HTTP_MAX_TARGET - 1;
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, " HTTP/1.1\r\nHost: a\r\n\r\n");
	ASSERT_EQ(parse_req_max(buf, sizeof(buf)), n, "HTTP_MAX_TARGET");
	ASSERT_EQ(msg.target.len, HTTP_MAX_TARGET, "target length");
	n = snprintf(buf, sizeof(buf), "GET /");
	memset(buf + n, 'a', HTTP_MAX_TARGET);
	n += HTTP_MAX_TARGET;
	snprintf(buf + n, sizeof(buf) - (size_t)n, " HTTP/1.1\r\nHost: a\r\n\r\n");
	ASSERT_EQ(parse_req_max(buf, sizeof(buf)), -414, "one more");
	/* a head that does not fit max_head stays a 431 */
	ASSERT_EQ(parse_req_max(buf, 4096), -431, "431 first");
}

static void test_target_normalize_forms(void)
{
	char out[HTTP_MAX_TARGET + 2];
	const char *s;

	s = "GET http://h.test HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "absolute");
	ASSERT_EQ(http_target_normalize(s, &msg, out, sizeof(out)), 1, "empty path");
	ASSERT_STREQ(out, "/", "becomes /");
	s = "GET https://h.test?a=1 HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "absolute with query");
	ASSERT_EQ(http_target_normalize(s, &msg, out, sizeof(out)), 5, "query only");
	ASSERT_STREQ(out, "/?a=1", "slash added");
	s = "GET http://h.test/a/./b/../c HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "absolute with dots");
	ASSERT_TRUE(http_target_normalize(s, &msg, out, sizeof(out)) > 0, "dots");
	ASSERT_STREQ(out, "/a/c", "resolved");
	s = "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "asterisk");
	ASSERT_EQ(http_target_normalize(s, &msg, out, sizeof(out)), 1, "*");
	ASSERT_STREQ(out, "*", "asterisk kept");
	ASSERT_EQ(http_target_normalize(s, &msg, out, 1), -ENOSPC, "short");
	s = "GET /a/../b HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "origin-form");
	ASSERT_EQ(http_target_normalize(s, &msg, out, 8), -ENOSPC, "needs path.len + 2");
	ASSERT_EQ(http_target_normalize(s, &msg, out, 9), 2, "path.len + 2");
	s = "CONNECT h.test:443 HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "connect");
	ASSERT_EQ(http_target_normalize(s, &msg, out, sizeof(out)), 0, "no path");
	ASSERT_STREQ(out, "", "empty");
}

static void test_req_request_line_spacing(void)
{
	ASSERT_EQ(parse_req("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "two SP after method");
	ASSERT_EQ(parse_req("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "two SP after target");
	ASSERT_EQ(parse_req("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), -400, "trailing SP");
	ASSERT_EQ(parse_req("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "HTAB separator");
	ASSERT_EQ(parse_req("GET /\r\nHost: a\r\n\r\n"), -400, "no version (HTTP/0.9)");
	ASSERT_EQ(parse_req("GET / \r\nHost: a\r\n\r\n"), -400, "empty version");
	ASSERT_EQ(parse_req(" / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "no method");
}

static void test_req_bad_method(void)
{
	ASSERT_EQ(parse_req("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "paren");
	ASSERT_EQ(parse_req("G\xc9T / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "obs-text");
	ASSERT_EQ(parse_req("GET: / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "colon");
}

static void test_req_version(void)
{
	ASSERT_EQ(parse_req("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), -505, "1.2");
	ASSERT_EQ(parse_req("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -505, "2.0");
	ASSERT_EQ(parse_req("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), -505, "0.9");
	ASSERT_EQ(parse_req("GET / HTTX/1.1\r\nHost: a\r\n\r\n"), -400, "HTTX");
	ASSERT_EQ(parse_req("GET / http/1.1\r\nHost: a\r\n\r\n"), -400, "lowercase");
	ASSERT_EQ(parse_req("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), -400, "1.10");
	ASSERT_EQ(parse_req("GET / HTTP/1\r\nHost: a\r\n\r\n"), -400, "HTTP/1");
	ASSERT_EQ(parse_req("GET / HTTP/2\r\nHost: a\r\n\r\n"), -400, "HTTP/2");
	ASSERT_EQ(parse_req("GET / HTTP/1,1\r\nHost: a\r\n\r\n"), -400, "comma");
}

static void test_req_http10(void)
{
	ASSERT_TRUE(parse_req("GET / HTTP/1.0\r\n\r\n") > 0, "no Host needed");
	ASSERT_EQ(msg.version_minor, 0, "minor");
	ASSERT_EQ(msg.flags, HTTP_F_CONN_CLOSE, "close by default");
	ASSERT_EQ(msg.host.len, 0, "no host");
	ASSERT_TRUE(parse_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") > 0, "ka");
	ASSERT_EQ(msg.flags, HTTP_F_CONN_KEEPALIVE, "keep-alive, no close");
	ASSERT_EQ(parse_req("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), -400, "two Hosts");
}

static void test_req_header_value_ows(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost:a\r\nX-A: \t a  b\tc \t \r\nX-B:\r\n"
			"X-C:   \r\n\r\n";

	ASSERT_TRUE(parse_req(s) > 0, "ok");
	ASSERT_TRUE(span_is(s, msg.hdrs[0].value, "a"), "no OWS at all");
	ASSERT_TRUE(span_is(s, msg.hdrs[1].value, "a  b\tc"), "internal kept, ends stripped");
	ASSERT_EQ(msg.hdrs[2].value.len, 0, "empty");
	ASSERT_EQ(msg.hdrs[3].value.len, 0, "only OWS");
	ASSERT_TRUE(span_is(s, msg.hdrs[1].name, "X-A"), "name");
}

static void test_req_header_obs_text(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nX-U: caf\xc3\xa9\r\n\r\n";

	ASSERT_TRUE(parse_req(s) > 0, "obs-text in a value is allowed");
}

static void test_req_expect(void)
{
	ASSERT_TRUE(parse_req("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
			      "Expect: 100-Continue\r\n\r\n") > 0,
		    "ok");
	ASSERT_TRUE(msg.flags & HTTP_F_EXPECT_CONTINUE, "flag");
	ASSERT_TRUE(parse_req("PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n") > 0, "x");
	ASSERT_EQ(msg.flags & HTTP_F_EXPECT_CONTINUE, 0, "other expectation");
	ASSERT_TRUE(parse_req("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n") > 0, "1.0");
	ASSERT_EQ(msg.flags & HTTP_F_EXPECT_CONTINUE, 0, "ignored from HTTP/1.0");
}

static void test_req_upgrade(void)
{
	ASSERT_TRUE(parse_req("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
			      "Upgrade: websocket\r\n\r\n") > 0,
		    "ok");
	ASSERT_EQ(msg.flags, HTTP_F_CONN_UPGRADE | HTTP_F_UPGRADE, "flags");
	ASSERT_TRUE(parse_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n") > 0, "ok");
	ASSERT_EQ(msg.flags, HTTP_F_UPGRADE, "Upgrade without Connection token");
}

static void test_req_connection_list(void)
{
	ASSERT_TRUE(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: , KEEP-ALIVE ,, foo\r\n"
			      "Connection: close\r\n\r\n") > 0,
		    "ok");
	ASSERT_EQ(msg.flags, HTTP_F_CONN_CLOSE | HTTP_F_CONN_KEEPALIVE, "both lines counted");
	ASSERT_TRUE(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n") > 0, "x");
	ASSERT_EQ(msg.flags, 0, "no prefix match");
	ASSERT_EQ(req_with_header("Connection: close x"), -400, "not a token");
	ASSERT_EQ(req_with_header("Connection: \"close\""), -400, "quoted");
}

static void test_req_content_length(void)
{
	ASSERT_TRUE(req_with_header("Content-Length: 0042") > 0, "ok");
	ASSERT_EQ(msg.framing, HTTP_BODY_LENGTH, "framing");
	ASSERT_EQ(msg.content_length, 42, "value");
	ASSERT_TRUE(req_with_header("content-length: 18446744073709551615") > 0, "max");
	ASSERT_TRUE(msg.content_length == UINT64_MAX, "UINT64_MAX");
}

static void test_req_content_length_zero(void)
{
	ASSERT_TRUE(req_with_header("Content-Length: 0") > 0, "ok");
	ASSERT_EQ(msg.framing, HTTP_BODY_NONE, "no body");
	ASSERT_EQ(msg.content_length, 0, "value");
}

static void test_req_content_length_bad(void)
{
	ASSERT_EQ(req_with_header("Content-Length: 18446744073709551616"), -400, "overflow");
	ASSERT_EQ(req_with_header("Content-Length: 99999999999999999999999"), -400, "overflow2");
	ASSERT_EQ(req_with_header("Content-Length: +5"), -400, "plus");
	ASSERT_EQ(req_with_header("Content-Length: -5"), -400, "minus");
	ASSERT_EQ(req_with_header("Content-Length: 0x5"), -400, "hex");
	ASSERT_EQ(req_with_header("Content-Length: 5a"), -400, "suffix");
	ASSERT_EQ(req_with_header("Content-Length: abc"), -400, "letters");
	ASSERT_EQ(req_with_header("Content-Length:"), -400, "empty");
	ASSERT_EQ(req_with_header("Content-Length:   "), -400, "blank");
	ASSERT_EQ(req_with_header("Content-Length: 5 5"), -400, "two numbers");
	ASSERT_EQ(req_with_header("Content-Length: 5, 5"), -400, "list");
	ASSERT_EQ(req_with_header("Content-Length: 5,5"), -400, "list no space");
	ASSERT_EQ(req_with_header("Content-Length: 5.0"), -400, "decimal");
}

static void test_req_content_length_duplicate(void)
{
	ASSERT_EQ(req_with_header("Content-Length: 5\r\nContent-Length: 5"), -400, "equal");
	ASSERT_EQ(req_with_header("Content-Length: 5\r\ncontent-length: 6"), -400, "differ");
	ASSERT_EQ(req_with_header("Content-Length: 0\r\nContent-Length: 0"), -400, "zeros");
}

static void test_req_chunked(void)
{
	ASSERT_TRUE(req_with_header("Transfer-Encoding: chunked") > 0, "ok");
	ASSERT_EQ(msg.framing, HTTP_BODY_CHUNKED, "framing");
	ASSERT_TRUE(req_with_header("transfer-encoding:  CHUNKED ") > 0, "case");
	ASSERT_EQ(msg.framing, HTTP_BODY_CHUNKED, "framing2");
	ASSERT_TRUE(req_with_header("Transfer-Encoding: ,chunked,") > 0, "empty elements");
}

static void test_req_cl_and_te(void)
{
	ASSERT_EQ(req_with_header("Content-Length: 5\r\nTransfer-Encoding: chunked"), -400, "CL");
	ASSERT_EQ(req_with_header("Transfer-Encoding: chunked\r\nContent-Length: 5"), -400, "TE");
	ASSERT_EQ(req_with_header("Transfer-Encoding: chunked\r\nContent-Length: 0"), -400, "CL 0");
}

static void test_req_te_bad(void)
{
	ASSERT_EQ(req_with_header("Transfer-Encoding: chunked, gzip"), -400, "not last");
	ASSERT_EQ(req_with_header("Transfer-Encoding: gzip"), -400, "no chunked");
	ASSERT_EQ(req_with_header("Transfer-Encoding: identity"), -400, "identity");
	ASSERT_EQ(req_with_header("Transfer-Encoding: chunked, chunked"), -400, "twice");
	ASSERT_EQ(req_with_header("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"), -400,
		  "twice across lines");
	ASSERT_EQ(req_with_header("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip"), -400,
		  "gzip last across lines");
	ASSERT_EQ(req_with_header("Transfer-Encoding: chunked;x=1"), -400, "chunked params");
	ASSERT_EQ(req_with_header("Transfer-Encoding:"), -400, "empty");
	ASSERT_EQ(req_with_header("Transfer-Encoding: ,"), -400, "only commas");
	ASSERT_EQ(req_with_header("Transfer-Encoding: xchunked"), -400, "prefix");
	ASSERT_EQ(req_with_header("Transfer-Encoding: chunked x"), -400, "junk");
	ASSERT_EQ(req_with_header("Transfer-Encoding: \"chunked\""), -400, "quoted");
	ASSERT_EQ(parse_req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400,
		  "TE in HTTP/1.0");
}

static void test_req_te_unsupported(void)
{
	/* chunked last, so framing is known, but we only relay chunked: 501 */
	ASSERT_EQ(req_with_header("Transfer-Encoding: gzip, chunked"), -501, "gzip, chunked");
	ASSERT_EQ(req_with_header("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"), -501,
		  "across lines");
	ASSERT_EQ(req_with_header("Transfer-Encoding: foo;q=1, chunked"), -501, "params");
}

static void test_req_obs_fold(void)
{
	ASSERT_EQ(req_with_header("X-A: a\r\n b"), -400, "SP fold");
	ASSERT_EQ(req_with_header("X-A: a\r\n\tb"), -400, "HTAB fold");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), -400, "first line indented");
}

static void test_req_space_before_colon(void)
{
	ASSERT_EQ(req_with_header("X-A : a"), -400, "SP");
	ASSERT_EQ(req_with_header("X-A\t: a"), -400, "HTAB");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400, "Host");
	ASSERT_EQ(req_with_header("Transfer-Encoding : chunked"), -400, "TE");
}

static void test_req_bad_field_names(void)
{
	ASSERT_EQ(req_with_header(": v"), -400, "empty name");
	ASSERT_EQ(req_with_header("X(a): v"), -400, "paren");
	ASSERT_EQ(req_with_header("X\xc3\xa9: v"), -400, "obs-text");
	ASSERT_EQ(req_with_header("X-A"), -400, "no colon");
	ASSERT_EQ(req_with_header("X A: v"), -400, "space inside");
	ASSERT_EQ(req_with_header("\"X\": v"), -400, "quote");
}

static void test_req_bare_cr_lf(void)
{
	ASSERT_EQ(parse_req("GET / HTTP/1.1\nHost: a\r\n\r\n"), -400, "LF after request line");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\n\r\n"), -400, "LF after field");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\r\n\n"), -400, "LF final");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\n\n"), -400, "LF only");
	ASSERT_EQ(req_with_header("X-A: a\rb"), -400, "CR in value");
	ASSERT_EQ(req_with_header("X-A: a\nb"), -400, "LF in value");
	ASSERT_EQ(parse_req("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), -400, "CR in request line");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"), -400, "CR CR LF");
	/* refused as soon as seen, not after waiting for a complete head */
	ASSERT_EQ(parse_req("GET / HTTP/1.1\nHost"), -400, "early");
}

static void test_req_control_chars(void)
{
	static const char ctls[] = {0x00, 0x01, 0x08, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f};
	char buf[128];
	size_t i, n;

	for (i = 0; i < sizeof(ctls); i++) {
		n = (size_t)snprintf(buf, sizeof(buf),
				     "GET / HTTP/1.1\r\nHost: a\r\nX: a#b\r\n"
				     "\r\n");
		*strchr(buf, '#') = ctls[i];
		memset(&msg, 0, sizeof(msg));
		ASSERT_EQ(http_parse_request(buf, n, MAX_HEAD, &msg), -400, "control in value");
	}
	ASSERT_TRUE(req_with_header("X: a\tb") > 0, "HTAB allowed in a value");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\x01\r\nHost: a\r\n\r\n"), -400, "in version");
}

static void test_req_host_required(void)
{
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\n\r\n"), -400, "missing");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n"), -400, "only lookalike");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), -400, "two equal");
	ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), -400, "two");
}

static void test_req_host_values(void)
{
	static const char *const good[] = {
		"example.com",
		"example.com:8080",
		"10.0.0.1",
		"10.0.0.1:80",
		"[::1]",
		"[::1]:443",
		"[2001:db8::a:1]",
		"xn--bcher-kva.example",
		"a_b-c~d",
		"%41bc",
		"",
	};
	static const char *const bad[] = {
		"exa mple.com", "a/b",	   "a@b",  "user@a:80", "a:b",	  "a:",	     ":80",
		"a:123456",	"a:70000", "[::1", "[]",	"[::1]x", "[g::1]",  "a?b",
		"a#b",		"%4",	   "%zz",  "a\"b",	"a\\b",	  "a:80:80",
	};
	char buf[256];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
		ASSERT_TRUE(parse_req(buf) > 0, "good host '%s'", good[i]);
		ASSERT_TRUE(span_is(buf, msg.host, good[i]), "host span '%s'", good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
		ASSERT_EQ(parse_req(buf), -400, bad[i]);
	}
}

static void test_req_head_too_large(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t len = strlen(s);

	ASSERT_EQ(parse_req_max(s, len), (int)len, "exactly max_head");
	ASSERT_EQ(parse_req_max(s, len - 1), -431, "one byte over");
	/* incomplete but already at max_head: no point waiting */
	memset(&msg, 0, sizeof(msg));
	ASSERT_EQ(http_parse_request(s, 10, 10, &msg), -431, "incomplete at max");
	memset(&msg, 0, sizeof(msg));
	ASSERT_EQ(http_parse_request(s, 9, 10, &msg), 0, "incomplete below max");
	ASSERT_EQ(parse_req_max("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", len + 3), -431,
		  "leading empty lines count");
}

static void test_req_too_many_headers(void)
{
	static char buf[16384];
	size_t n;
	int i;

	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 1; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	ASSERT_TRUE(parse_req_max(buf, sizeof(buf)) > 0, "exactly HTTP_MAX_HEADERS");
	ASSERT_EQ(msg.nhdrs, HTTP_MAX_HEADERS, "nhdrs");
	snprintf(buf + n, sizeof(buf) - n, "X-last: v\r\n\r\n");
	ASSERT_EQ(parse_req_max(buf, sizeof(buf)), -431, "one more");
}

static void test_find_header(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: 1\r\nx-foo: 2\r\n\r\n";

	ASSERT_TRUE(parse_req(s) > 0, "ok");
	ASSERT_EQ(http_find_header(s, &msg, "x-FOO"), 1, "first match");
	ASSERT_EQ(http_find_header(s, &msg, "host"), 0, "host");
	ASSERT_EQ(http_find_header(s, &msg, "X-Fo"), -1, "prefix");
	ASSERT_EQ(http_find_header(s, &msg, "X-Foo2"), -1, "longer");
}

static void test_find_cookie(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; sidx=2;sid=abc\r\n"
			"Cookie: q=\"quoted\" ; SRV=x\r\n\r\n";
	struct http_span v;

	ASSERT_TRUE(parse_req(s) > 0, "ok");
	ASSERT_EQ(http_find_cookie(s, &msg, "sid", &v), 1, "found past a longer name");
	ASSERT_EQ(v.len, 3, "value length");
	ASSERT_TRUE(!memcmp(s + v.off, "abc", 3), "value");
	ASSERT_EQ(http_find_cookie(s, &msg, "q", &v), 1, "second Cookie line");
	ASSERT_TRUE(v.len == 6 && !memcmp(s + v.off, "quoted", 6), "quotes and spaces dropped");
	ASSERT_EQ(http_find_cookie(s, &msg, "srv", &v), 0, "names are case-sensitive");
	ASSERT_EQ(http_find_cookie(s, &msg, "SRV", &v), 1, "last pair");
	ASSERT_EQ(http_find_cookie(s, &msg, "si", &v), 0, "prefix");
}

static void test_req_repeat_call_after_success(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

	ASSERT_TRUE(parse_req(s) > 0, "first");
	ASSERT_EQ(http_parse_request(s, strlen(s), MAX_HEAD, &msg), (int)strlen(s), "again");
	ASSERT_EQ(msg.nhdrs, 2, "headers not doubled");
	ASSERT_EQ(msg.flags, HTTP_F_CONN_CLOSE, "flags");
}

/* responses */

static void test_resp_simple(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nServer: x\r\n\r\n0123456789";

	ASSERT_EQ(parse_resp(s, HTTP_M_GET), (int)strlen(s) - 10, "ret");
	ASSERT_EQ(msg.status, 200, "status");
	ASSERT_EQ(msg.version_minor, 1, "minor");
	ASSERT_EQ(msg.framing, HTTP_BODY_LENGTH, "framing");
	ASSERT_EQ(msg.content_length, 10, "cl");
	ASSERT_EQ(msg.nhdrs, 2, "nhdrs");
}

static void test_resp_reason(void)
{
	ASSERT_TRUE(parse_resp("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET) > 0, "-");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 \r\n\r\n", HTTP_M_GET) > 0, "empty");
	ASSERT_TRUE(parse_resp("HTTP/1.1 404 Not  Found \t\r\n\r\n", HTTP_M_GET) > 0, "spaces");
	ASSERT_EQ(msg.status, 404, "status");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 \xc3\xa9\r\n\r\n", HTTP_M_GET) > 0, "obs-text");
	ASSERT_TRUE(parse_resp("HTTP/1.1 999 X\r\n\r\n", HTTP_M_GET) > 0, "999");
}

static void test_resp_bad_status_line(void)
{
	static const char *const bad[] = {
		"HTTP/1.1 20 OK",   "HTTP/1.1 2000 OK",	   "HTTP/1.1 099 X",   "HTTP/1.1 abc X",
		"HTTP/1.1  200 OK", "HTTP/1.1 200OK",	   "HTTP/2 200 OK",    "HTTP/2.0 200 OK",
		"HTTP/1.2 200 OK",  "HTTX/1.1 200 OK",	   "http/1.1 200 OK",  "HTTP/1.1",
		"HTTP/1.1 ",	    "HTTP/1.1 200 O\x01K", " HTTP/1.1 200 OK",
	};
	char buf[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "%s\r\nContent-Length: 0\r\n\r\n", bad[i]);
		ASSERT_EQ(parse_resp(buf, HTTP_M_GET), -502, bad[i]);
	}
	ASSERT_EQ(parse_resp("\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP_M_GET), -502, "leading CRLF");
}

static void test_resp_no_body_statuses(void)
{
	static const int st[] = {100, 101, 103, 199, 204, 304};
	char buf[128];
	size_t i;

	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		snprintf(buf, sizeof(buf), "HTTP/1.1 %d X\r\nContent-Length: 7\r\n\r\n", st[i]);
		ASSERT_TRUE(parse_resp(buf, HTTP_M_GET) > 0, "ok %d", st[i]);
		ASSERT_EQ(msg.framing, HTTP_BODY_NONE, "framing");
		ASSERT_EQ(msg.status, st[i], "status");
	}
	ASSERT_TRUE(parse_resp("HTTP/1.1 205 X\r\n\r\n", HTTP_M_GET) > 0, "205");
	ASSERT_EQ(msg.framing, HTTP_BODY_UNTIL_CLOSE, "205 is not 204");
}

static void test_resp_head(void)
{
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", HTTP_M_HEAD) > 0,
		    "CL");
	ASSERT_EQ(msg.framing, HTTP_BODY_NONE, "framing");
	ASSERT_EQ(msg.content_length, 100, "cl still reported");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			       HTTP_M_HEAD) > 0,
		    "TE");
	ASSERT_EQ(msg.framing, HTTP_BODY_NONE, "framing");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\n\r\n", HTTP_M_HEAD) > 0, "nothing");
	ASSERT_EQ(msg.framing, HTTP_BODY_NONE, "framing");
}

static void test_resp_connect(void)
{
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 Connection established\r\n\r\n", HTTP_M_CONNECT) > 0,
		    "ok");
	ASSERT_EQ(msg.framing, HTTP_BODY_UNTIL_CLOSE, "tunnel");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HTTP_M_CONNECT) > 0,
		    "CL ignored");
	ASSERT_EQ(msg.framing, HTTP_BODY_UNTIL_CLOSE, "tunnel");
	ASSERT_TRUE(parse_resp("HTTP/1.1 407 Auth\r\nContent-Length: 5\r\n\r\n", HTTP_M_CONNECT) >
			    0,
		    "407");
	ASSERT_EQ(msg.framing, HTTP_BODY_LENGTH, "non-2xx has a body");
}

static void test_resp_framing(void)
{
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\n\r\n", HTTP_M_GET) > 0, "none");
	ASSERT_EQ(msg.framing, HTTP_BODY_UNTIL_CLOSE, "until close");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET) > 0,
		    "0");
	ASSERT_EQ(msg.framing, HTTP_BODY_NONE, "CL 0");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			       HTTP_M_POST) > 0,
		    "chunked");
	ASSERT_EQ(msg.framing, HTTP_BODY_CHUNKED, "chunked");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
			       HTTP_M_GET) > 0,
		    "gzip, chunked");
	ASSERT_EQ(msg.framing, HTTP_BODY_CHUNKED, "relayed as chunked");
	ASSERT_TRUE(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
			       HTTP_M_GET) > 0,
		    "chunked, gzip");
	ASSERT_EQ(msg.framing, HTTP_BODY_UNTIL_CLOSE, "RFC 9112 6.3 item 4");
}

static void test_resp_rejects(void)
{
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked"
			     "\r\n\r\n",
			     HTTP_M_GET),
		  -502, "CL + TE");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
			     HTTP_M_GET),
		  -502, "dup CL");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n", HTTP_M_GET), -502,
		  "CL list");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
			     HTTP_M_GET),
		  -502, "chunked twice");
	ASSERT_EQ(parse_resp("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_M_GET),
		  -502, "TE in 1.0");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", HTTP_M_GET), -502, "fold");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", HTTP_M_GET), -502, "SP colon");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\nX: a\r\n\r\n", HTTP_M_GET), -502, "bare LF");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", HTTP_M_GET), -502, "bare CR");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", HTTP_M_GET), -502, "DEL");
	ASSERT_EQ(parse_resp("HTTP/1.1 200 OK\r\n: a\r\n\r\n", HTTP_M_GET), -502, "empty name");
}

static void test_resp_too_large(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n";

	memset(&msg, 0, sizeof(msg));
	ASSERT_EQ(http_parse_response(s, strlen(s), strlen(s) - 1, HTTP_M_GET, &msg), -502, "big");
	memset(&msg, 0, sizeof(msg));
	ASSERT_EQ(http_parse_response(s, 5, 5, HTTP_M_GET, &msg), -502, "incomplete at max");
	memset(&msg, 0, sizeof(msg));
	ASSERT_EQ(http_parse_response(s, 5, 50, HTTP_M_GET, &msg), 0, "incomplete");
}

static void test_resp_connection_flags(void)
{
	ASSERT_TRUE(parse_resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", HTTP_M_GET) > 0,
		    "1.0");
	ASSERT_EQ(msg.flags, HTTP_F_CONN_CLOSE, "1.0 closes");
	ASSERT_TRUE(parse_resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", HTTP_M_GET) > 0,
		    "ka");
	ASSERT_EQ(msg.flags, HTTP_F_CONN_KEEPALIVE, "1.0 keep-alive");
	ASSERT_TRUE(parse_resp("HTTP/1.1 101 Switching\r\nConnection: upgrade\r\nUpgrade: websocket"
			       "\r\n\r\n",
			       HTTP_M_GET) > 0,
		    "101");
	ASSERT_EQ(msg.flags, HTTP_F_CONN_UPGRADE | HTTP_F_UPGRADE, "upgrade");
	ASSERT_EQ(msg.framing, HTTP_BODY_NONE, "101");
}

static void test_resp_incremental(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\n\r\nabc";
	size_t len = strlen(s) - 3, i;
	int ret = 0;

	memset(&msg, 0, sizeof(msg));
	for (i = 1; i <= len && !ret; i++)
		ret = http_parse_response(s, i, MAX_HEAD, HTTP_M_GET, &msg);
	ASSERT_EQ(ret, (int)len, "ret");
	ASSERT_EQ(i - 1, len, "at the end");
	ASSERT_EQ(msg.framing, HTTP_BODY_LENGTH, "framing");
}

/* chunked walker */

static ssize_t feed_all(struct http_chunked *c, const char *s, size_t len)
{
	memset(c, 0, sizeof(*c));
	return http_chunked_feed(c, s, len);
}

/* feed one byte at a time; returns total consumed or the error */
static ssize_t feed_bytewise(struct http_chunked *c, const char *s, size_t len)
{
	size_t i, total = 0;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < len && !c->done; i++) {
		ssize_t r = http_chunked_feed(c, s + i, 1);

		if (r < 0)
			return r;
		total += (size_t)r;
		if (r != 1 && !c->done)
			return -1;
	}
	return (ssize_t)total;
}

static void test_chunked_simple(void)
{
	const char *s = "5\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
	struct http_chunked c;

	ASSERT_EQ(feed_all(&c, s, strlen(s)), (ssize_t)strlen(s), "one go");
	ASSERT_EQ(c.done, 1, "done");
	ASSERT_EQ(feed_bytewise(&c, s, strlen(s)), (ssize_t)strlen(s), "bytewise");
	ASSERT_EQ(c.done, 1, "done");
}

static void test_chunked_partial(void)
{
	const char *s = "5\r\nhel";
	struct http_chunked c;

	ASSERT_EQ(feed_all(&c, s, strlen(s)), 6, "all consumed");
	ASSERT_EQ(c.done, 0, "not done");
	ASSERT_EQ(c.left, 2, "left");
	ASSERT_TRUE(http_chunked_in_data(&c), "in data");
	ASSERT_EQ(http_chunked_feed(&c, "lo\r\n0\r\n", 7), 7, "more");
	ASSERT_TRUE(!http_chunked_in_data(&c), "not in data");
	ASSERT_EQ(c.done, 0, "still not done");
	ASSERT_EQ(http_chunked_feed(&c, "\r\n", 2), 2, "end");
	ASSERT_EQ(c.done, 1, "done");
}

static void test_chunked_extensions(void)
{
	const char *s = "5;a=b;c=\"x y\\\"z\" ; d ;e = f\r\nhello\r\n0;last\r\n\r\n";
	struct http_chunked c;

	ASSERT_EQ(feed_all(&c, s, strlen(s)), (ssize_t)strlen(s), "one go");
	ASSERT_EQ(c.done, 1, "done");
	ASSERT_EQ(feed_bytewise(&c, s, strlen(s)), (ssize_t)strlen(s), "bytewise");
	ASSERT_EQ(c.done, 1, "done");
	s = "5 ;a\r\nhello\r\n0\r\n\r\n";
	ASSERT_EQ(feed_all(&c, s, strlen(s)), (ssize_t)strlen(s), "BWS before ;");
}

static void test_chunked_trailers(void)
{
	const char *s = "3\r\nabc\r\n0\r\nX-Sum: 12 34\r\nX-Empty:\r\n\r\n";
	struct http_chunked c;

	ASSERT_EQ(feed_all(&c, s, strlen(s)), (ssize_t)strlen(s), "one go");
	ASSERT_EQ(c.done, 1, "done");
	ASSERT_EQ(feed_bytewise(&c, s, strlen(s)), (ssize_t)strlen(s), "bytewise");
	ASSERT_EQ(c.done, 1, "done");
}

static void test_chunked_leaves_next_message(void)
{
	const char *s = "2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	struct http_chunked c;
	size_t body = strlen("2\r\nab\r\n0\r\n\r\n");

	ASSERT_EQ(feed_all(&c, s, strlen(s)), (ssize_t)body, "stops at the end");
	ASSERT_EQ(c.done, 1, "done");
	ASSERT_EQ(http_chunked_feed(&c, s + body, strlen(s) - body), 0, "nothing more");
	ASSERT_EQ(feed_bytewise(&c, s, strlen(s)), (ssize_t)body, "bytewise");
}

static void test_chunked_skip(void)
{
	const char *head = "a\r\n", *tail = "\r\n0\r\n\r\n";
	struct http_chunked c;

	ASSERT_EQ(feed_all(&c, head, 3), 3, "size line");
	ASSERT_TRUE(http_chunked_in_data(&c), "in data");
	ASSERT_EQ(c.left, 10, "left");
	http_chunked_skip(&c, 4);
	ASSERT_EQ(c.left, 6, "left after skip");
	ASSERT_TRUE(http_chunked_in_data(&c), "still in data");
	http_chunked_skip(&c, 6);
	ASSERT_TRUE(!http_chunked_in_data(&c), "data over");
	ASSERT_EQ(http_chunked_feed(&c, tail, strlen(tail)), (ssize_t)strlen(tail), "tail");
	ASSERT_EQ(c.done, 1, "done");
	/* a skip outside data changes nothing */
	http_chunked_skip(&c, 5);
	ASSERT_EQ(c.done, 1, "still done");
}

static void test_chunked_large_sizes(void)
{
	struct http_chunked c;

	ASSERT_EQ(feed_all(&c, "ffffffffffffffff\r\n", 18), 18, "16 digits");
	ASSERT_TRUE(c.left == UINT64_MAX, "UINT64_MAX");
	ASSERT_EQ(feed_all(&c, "00000000000000001\r\n", 19), -400, "17 digits");
	ASSERT_EQ(feed_all(&c, "10000000000000000\r\n", 19), -400, "overflow");
	memset(&c, 0, sizeof(c));
	c.max_chunk = 0x100;
	ASSERT_EQ(http_chunked_feed(&c, "100\r\n", 5), 5, "at max_chunk");
	memset(&c, 0, sizeof(c));
	c.max_chunk = 0x100;
	ASSERT_EQ(http_chunked_feed(&c, "101\r\n", 5), -400, "over max_chunk");
	memset(&c, 0, sizeof(c));
	c.max_chunk = 0x100;
	ASSERT_EQ(http_chunked_feed(&c, "0\r\n\r\n", 5), 5, "last chunk with max_chunk");
	ASSERT_EQ(feed_all(&c, "Ab\r\n", 4), 4, "mixed case hex");
	ASSERT_EQ(c.left, 0xab, "value");
}

static void test_chunked_bad_size_line(void)
{
	static const char *const bad[] = {
		"\r\n",	       "g\r\n",		 "-1\r\n",	     "+1\r\n",
		"0x5\r\n",     "5 \r\n",	 " 5\r\n",	     "5\n",
		"5\rx",	       "5;\r\n",	 "5;=a\r\n",	     "5;a=\r\n",
		"5;a=\"b\r\n", "5;a=b c\r\n",	 "5;a=\"\x01\"\r\n", "5;a\x01\r\n",
		"5;a b\r\n",   "5;a=\"b\"c\r\n", "5;a=b\"c\"\r\n",   "5;a \r\n",
	};
	struct http_chunked c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(feed_all(&c, bad[i], strlen(bad[i])), -400, bad[i]);
		ASSERT_EQ(feed_bytewise(&c, bad[i], strlen(bad[i])), -400, bad[i]);
	}
}

static void test_chunked_bad_data_end(void)
{
	struct http_chunked c;

	ASSERT_EQ(feed_all(&c, "5\r\nhelloX\r\n", 11), -400, "no CRLF after data");
	ASSERT_EQ(feed_all(&c, "5\r\nhello\n0\r\n\r\n", 15), -400, "bare LF after data");
	ASSERT_EQ(feed_all(&c, "5\r\nhello\rX", 10), -400, "CR then junk");
	ASSERT_EQ(feed_all(&c, "5\r\nhello\r\n0\r\n\n", 15), -400, "bare LF at the end");
	ASSERT_EQ(feed_all(&c, "5\r\nhello\r\n0\r\n\rX", 15), -400, "CR junk at the end");
}

static void test_chunked_bad_trailers(void)
{
	static const char *const bad[] = {
		"0\r\nX: a\r\n b\r\n\r\n", "0\r\n X: a\r\n\r\n",   "0\r\nX : a\r\n\r\n",
		"0\r\n: a\r\n\r\n",	   "0\r\nX\r\n\r\n",	   "0\r\nX: a\nY: b\r\n\r\n",
		"0\r\nX: a\x01\r\n\r\n",   "0\r\nX: a\rb\r\n\r\n", "0\r\nX(: a\r\n\r\n",
	};
	struct http_chunked c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(feed_all(&c, bad[i], strlen(bad[i])), -400, bad[i]);
}

static void test_chunked_line_limits(void)
{
	static char buf[10000];
	struct http_chunked c;
	size_t n;

	/* a size line of exactly 4096 bytes with its CRLF passes, one more fails */
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "1;a=");
	n = 4094 - 4;
	memset(buf + 4, 'x', n);
	strcpy(buf + 4 + n, "\r\nz\r\n0\r\n\r\n");
	ASSERT_EQ(feed_all(&c, buf, strlen(buf)), (ssize_t)strlen(buf), "4094 + CRLF");
	strcpy(buf + 4 + n, "x\r\nz\r\n0\r\n\r\n");
	ASSERT_EQ(feed_all(&c, buf, strlen(buf)), -400, "too long size line");
	strcpy(buf, "0\r\nX: ");
	memset(buf + 6, 'v', 5000);
	strcpy(buf + 5006, "\r\n\r\n");
	ASSERT_EQ(feed_all(&c, buf, strlen(buf)), -400, "too long trailer line");
}

static void test_chunked_too_many_trailers(void)
{
	static char buf[4096];
	struct http_chunked c;
	size_t n = 0;
	int i;

	n += (size_t)snprintf(buf, sizeof(buf), "0\r\n");
	for (i = 0; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "T: v\r\n");
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	ASSERT_EQ(feed_all(&c, buf, strlen(buf)), (ssize_t)strlen(buf), "HTTP_MAX_HEADERS");
	snprintf(buf + n, sizeof(buf) - n, "T: v\r\n\r\n");
	ASSERT_EQ(feed_all(&c, buf, strlen(buf)), -400, "one more");
}

/* rewriting */

static const struct http_rewrite rw_default = {
	.client_ip = "192.0.2.1",
	.proto = "https",
	.via = "1.1 spliced",
	.connection = "keep-alive",
};

static int rewrite(const char *s, int is_request, const struct http_rewrite *rw, char *out,
		   size_t cap)
{
	int ret;

	if (is_request)
		ret = parse_req(s);
	else
		ret = parse_resp(s, HTTP_M_GET);
	if (ret <= 0)
		return -1000 + ret;
	ret = http_rewrite_head(s, &msg, is_request, rw, out, cap);
	if (ret >= 0 && (size_t)ret < cap)
		out[ret] = 0;
	return ret;
}

static void test_rewrite_basic(void)
{
	const char *s = "GET /x HTTP/1.1\r\nHost: a\r\nAccept:  */* \r\n\r\n";
	const char *want = "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n"
			   "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n"
			   "Via: 1.1 spliced\r\nConnection: keep-alive\r\n\r\n";
	char out[512];

	ASSERT_EQ(rewrite(s, 1, &rw_default, out, sizeof(out)), (int)strlen(want), "len");
	ASSERT_STREQ(out, want, "out");
}

static void test_rewrite_nothing_added(void)
{
	const char *s = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http_rewrite rw = {0};
	char out[512];

	ASSERT_EQ(rewrite(s, 1, &rw, out, sizeof(out)), (int)strlen(s), "len");
	ASSERT_STREQ(out, s, "unchanged");
}

static void test_rewrite_xff_append(void)
{
	const char *s = "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nHost: a\r\n"
			"x-forwarded-for: 10.0.0.2, 10.0.0.3\r\n\r\n";
	const char *want = "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nHost: a\r\n"
			   "x-forwarded-for: 10.0.0.2, 10.0.0.3, 192.0.2.1\r\n"
			   "X-Forwarded-Proto: https\r\nVia: 1.1 spliced\r\n"
			   "Connection: keep-alive\r\n\r\n";
	char out[512];

	ASSERT_TRUE(rewrite(s, 1, &rw_default, out, sizeof(out)) > 0, "ok");
	ASSERT_STREQ(out, want, "appended to the last line");
	s = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For:\r\n\r\n";
	ASSERT_TRUE(rewrite(s, 1, &rw_default, out, sizeof(out)) > 0, "ok");
	ASSERT_TRUE(strstr(out, "X-Forwarded-For: 192.0.2.1\r\n") != NULL, "empty existing");
}

static void test_rewrite_hop_by_hop(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret, keep-alive\r\n"
			"X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
			"Proxy-Connection: keep-alive\r\nconnection: X-Other\r\nx-other: 2\r\n"
			"X-Keep: 3\r\nX-Forwarded-Proto: http\r\n\r\n";
	const char *want = "GET / HTTP/1.1\r\nHost: a\r\nX-Keep: 3\r\n";
	struct http_rewrite rw = {0};
	char out[512];

	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "ok");
	ASSERT_TRUE(strncmp(out, want, strlen(want)) == 0, "got %s", out);
	ASSERT_STREQ(out + strlen(want), "\r\n", "nothing else");
}

static void test_rewrite_connection_cannot_strip_framing(void)
{
	const char *s = "POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, host, "
			"transfer-encoding\r\nContent-Length: 5\r\n\r\n";
	struct http_rewrite rw = {0};
	char out[512];

	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "ok");
	ASSERT_STREQ(out, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "kept");
}

static void test_rewrite_upgrade(void)
{
	const char *s = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
			"Upgrade: websocket\r\n\r\n";
	struct http_rewrite rw = {.connection = "upgrade"};
	char out[512];

	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "drop");
	ASSERT_STREQ(out, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", "dropped");
	rw.upgrade = "";
	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "empty");
	ASSERT_STREQ(out, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", "none");
	rw.upgrade = "websocket";
	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "keep");
	ASSERT_STREQ(out,
		     "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		     "Connection: upgrade\r\n\r\n",
		     "written from rw->upgrade");
}

/* HTTP2-Settings only travels with an h2c upgrade, named in Connection as RFC 7540 3.2.1 asks */
static void test_rewrite_http2_settings(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
			"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
	const char *t = "GET / HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
	struct http_rewrite rw = {0};
	char out[512];

	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "no upgrade");
	ASSERT_STREQ(out, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "stripped");
	ASSERT_TRUE(rewrite(t, 1, &rw, out, sizeof(out)) > 0, "not named in Connection");
	ASSERT_STREQ(out, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "stripped all the same");
	rw.upgrade = "websocket";
	rw.connection = "upgrade";
	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "websocket");
	ASSERT_STREQ(out,
		     "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		     "Connection: upgrade\r\n\r\n",
		     "not along another protocol");
	rw.upgrade = "h2c";
	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "h2c");
	ASSERT_STREQ(out,
		     "GET / HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
		     "Upgrade: h2c\r\nConnection: upgrade, HTTP2-Settings\r\n\r\n",
		     "kept with h2c");
	/* a response never carries it on */
	ASSERT_TRUE(rewrite("HTTP/1.1 200 OK\r\nHTTP2-Settings: x\r\nContent-Length: 0\r\n\r\n", 0,
			    &rw, out, sizeof(out)) > 0,
		    "response");
	ASSERT_TRUE(strstr(out, "HTTP2-Settings") == NULL, "response: %s", out);
}

static void test_upgrade_filter(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c, WebSocket/13,, foo\r\n"
			"Connection: upgrade\r\nupgrade: websocket\r\n\r\n";
	char out[128];
	unsigned dropped = 99;

	ASSERT_TRUE(parse_req(s) > 0, "parse");
	ASSERT_EQ(http_upgrade_filter(s, &msg, "websocket", out, sizeof(out), &dropped),
		  strlen("WebSocket/13, websocket"), "websocket");
	ASSERT_STREQ(out, "WebSocket/13, websocket", "every line, versions kept, any case");
	ASSERT_EQ(dropped, 2, "h2c and foo dropped");
	ASSERT_TRUE(http_upgrade_filter(s, &msg, "foo, H2C", out, sizeof(out), &dropped) > 0,
		    "two");
	ASSERT_STREQ(out, "h2c, foo", "comma list, any case");
	ASSERT_EQ(dropped, 2, "websocket twice");
	ASSERT_EQ(http_upgrade_filter(s, &msg, "", out, sizeof(out), &dropped), 0, "none allowed");
	ASSERT_STREQ(out, "", "empty");
	ASSERT_EQ(dropped, 4, "all dropped");
	ASSERT_EQ(http_upgrade_filter(s, &msg, "websock web websocket/2", out, sizeof(out), NULL),
		  strlen("WebSocket/13, websocket"), "names compared whole, versions ignored");
	ASSERT_EQ(http_upgrade_filter(s, &msg, "websocket", out, 23, NULL), -ENOSPC, "short");
	ASSERT_EQ(http_upgrade_filter(s, &msg, "websocket", out, 24, NULL), 23, "exact");
	/* an element that is not protocol-name ["/" version] is never kept */
	s = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket/, /1, web socket, a/b/c\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "parse");
	ASSERT_EQ(http_upgrade_filter(s, &msg, "websocket web a", out, sizeof(out), &dropped), 0,
		  "malformed");
	ASSERT_EQ(dropped, 4, "all four");
	s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	ASSERT_TRUE(parse_req(s) > 0, "parse");
	ASSERT_EQ(http_upgrade_filter(s, &msg, "websocket", out, sizeof(out), &dropped), 0, "none");
	ASSERT_EQ(dropped, 0, "nothing dropped");
}

/* RFC 9112 3.2.2: an absolute-form target is routed on its authority; the backend gets the same
 * authority as Host and the target in origin-form */
static void test_rewrite_absolute_form(void)
{
	const char *s = "GET http://www.example/public/x?q=1 HTTP/1.1\r\nHost: intranet.corp\r\n"
			"Accept: */*\r\n\r\n";
	struct http_rewrite rw = {.path = "/public/x?q=1"};
	char out[512];

	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "ok");
	ASSERT_STREQ(out, "GET /public/x?q=1 HTTP/1.1\r\nHost: www.example\r\nAccept: */*\r\n\r\n",
		     "origin-form, Host from the authority");
	/* an empty Host line gets the authority too */
	s = "GET http://a.test:8080 HTTP/1.1\r\nHost:\r\n\r\n";
	rw.path = "/";
	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "empty Host");
	ASSERT_STREQ(out, "GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n", "filled");
	/* HTTP/1.0 may omit Host: it is added right after the start line */
	s = "GET http://a.test/x HTTP/1.0\r\nX: 1\r\n\r\n";
	rw.path = "/x";
	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "HTTP/1.0");
	ASSERT_STREQ(out, "GET /x HTTP/1.0\r\nHost: a.test\r\nX: 1\r\n\r\n", "added");
	/* without rw->path the request line goes as received */
	s = "GET http://a.test/x HTTP/1.1\r\nHost: b.test\r\n\r\n";
	rw.path = NULL;
	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "no path");
	ASSERT_STREQ(out, "GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n", "as received");
}

static void test_rewrite_connect_host(void)
{
	const char *s = "CONNECT db.internal:5432 HTTP/1.1\r\nHost: www.example\r\n\r\n";
	struct http_rewrite rw = {.path = ""};
	char out[512];

	ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "ok");
	ASSERT_STREQ(out, "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n",
		     "authority-form kept, Host from it");
}

static void test_rewrite_normalized_path(void)
{
	const char *s = "GET /public/%2e%2E/admin//x?a=/../b HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http_rewrite rw = {0};
	char path[HTTP_MAX_TARGET + 2], out[512];

	ASSERT_TRUE(parse_req(s) > 0, "parse");
	ASSERT_EQ(http_target_normalize(s, &msg, path, sizeof(path)), strlen("/admin/x?a=/../b"),
		  "normalize");
	rw.path = path;
	ASSERT_EQ(http_rewrite_head(s, &msg, 1, &rw, out, sizeof(out)),
		  strlen("GET /admin/x?a=/../b HTTP/1.1\r\nHost: a\r\n\r\n"), "rewrite");
	ASSERT_TRUE(!strncmp(out, "GET /admin/x?a=/../b HTTP/1.1\r\nHost: a\r\n\r\n", 40),
		    "the query is untouched: %s", out);
}

/* a request's Transfer-Encoding is sent as exactly "chunked", the one coding it can have */
static void test_rewrite_te_canonical(void)
{
	static const char *const tes[] = {
		"Transfer-Encoding: chunked,\r\n",
		"Transfer-Encoding: , chunked\r\n",
		"Transfer-Encoding: Chunked\r\n",
		"Transfer-Encoding:  chunked ,, \r\n",
		"Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n",
		"Transfer-Encoding: chunked\r\nTransfer-Encoding: ,\r\n",
	};
	struct http_rewrite rw = {0};
	char s[256], out[512];
	size_t i;

	for (i = 0; i < sizeof(tes) / sizeof(tes[0]); i++) {
		snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: a\r\n%sX: 1\r\n\r\n", tes[i]);
		ASSERT_TRUE(rewrite(s, 1, &rw, out, sizeof(out)) > 0, "%s", tes[i]);
		ASSERT_EQ(msg.framing, HTTP_BODY_CHUNKED, tes[i]);
		ASSERT_STREQ(out,
			     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
			     "X: 1\r\n\r\n",
			     tes[i]);
	}
	/* a response's is relayed as the backend sent it */
	ASSERT_TRUE(rewrite("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, &rw,
			    out, sizeof(out)) > 0,
		    "response");
	ASSERT_STREQ(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		     "response unchanged");
}

static void test_rewrite_via_append(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nVia: 1.0 fred, 1.1 p.example\r\nContent-Length: 0\r\n"
			"X-Forwarded-Proto: http\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n";
	const char *want = "HTTP/1.1 200 OK\r\nVia: 1.0 fred, 1.1 p.example, 1.1 spliced\r\n"
			   "Content-Length: 0\r\nX-Forwarded-Proto: http\r\n"
			   "X-Forwarded-For: 1.2.3.4\r\nConnection: keep-alive\r\n\r\n";
	char out[512];

	ASSERT_TRUE(rewrite(s, 0, &rw_default, out, sizeof(out)) > 0, "ok");
	ASSERT_STREQ(out, want, "response: Via appended, X-Forwarded-* untouched");
}

static void test_rewrite_response_close(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
			"Transfer-Encoding: chunked\r\n\r\n";
	struct http_rewrite rw = {.via = "1.1 spliced", .connection = "close"};
	char out[512];

	ASSERT_TRUE(rewrite(s, 0, &rw, out, sizeof(out)) > 0, "ok");
	ASSERT_STREQ(out,
		     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVia: 1.1 spliced\r\n"
		     "Connection: close\r\n\r\n",
		     "TE kept");
}

static void test_rewrite_set_cookie(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct http_rewrite rw = {.set_cookie = "SRV=0123; Path=/"};
	char out[512];

	ASSERT_TRUE(rewrite(s, 0, &rw, out, sizeof(out)) > 0, "ok");
	ASSERT_STREQ(out,
		     "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nSet-Cookie: SRV=0123; Path=/\r\n\r\n",
		     "Set-Cookie last");
}

/* a body that runs until close, re-framed for an HTTP/1.1 client: the head says chunked */
static void test_rewrite_response_chunked(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
	struct http_rewrite rw = {.via = "1.1 spliced", .chunked = 1};
	char out[512];

	ASSERT_TRUE(rewrite(s, 0, &rw, out, sizeof(out)) > 0, "ok");
	ASSERT_EQ(msg.framing, HTTP_BODY_UNTIL_CLOSE, "until close");
	ASSERT_STREQ(out,
		     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nVia: 1.1 spliced\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n",
		     "chunked added");
	/* requests never get it from this field */
	ASSERT_TRUE(rewrite("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, &rw, out, sizeof(out)) > 0,
		    "request");
	ASSERT_TRUE(strstr(out, "Transfer-Encoding") == NULL, "no TE on a request");
}

static void test_rewrite_skips_leading_crlf(void)
{
	const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http_rewrite rw = {0};
	char out[512];

	ASSERT_EQ(rewrite(s, 1, &rw, out, sizeof(out)), (int)strlen(s) - 4, "len");
	ASSERT_STREQ(out, s + 4, "start line first");
}

static void test_rewrite_enospc(void)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n"
			"Via: 1.0 x\r\n\r\n";
	char out[512];
	int need, cap;

	need = rewrite(s, 1, &rw_default, out, sizeof(out));
	ASSERT_TRUE(need > 0, "ok");
	for (cap = 0; cap < need; cap++)
		ASSERT_EQ(http_rewrite_head(s, &msg, 1, &rw_default, out, (size_t)cap), -ENOSPC,
			  "short");
	ASSERT_EQ(http_rewrite_head(s, &msg, 1, &rw_default, out, (size_t)need), need, "exact");
}

static void test_rewrite_unparsed(void)
{
	struct http_rewrite rw = {0};
	char out[64];

	memset(&msg, 0, sizeof(msg));
	ASSERT_EQ(http_rewrite_head("", &msg, 1, &rw, out, sizeof(out)), -EINVAL, "request");
	ASSERT_EQ(http_rewrite_head("", &msg, 0, &rw, out, sizeof(out)), -EINVAL, "response");
}

/* what we forward must itself pass our own parser with the same meaning */
static void test_rewrite_reparses(void)
{
	const char *s = "POST /p HTTP/1.1\r\nHost: a:8\r\nConnection: x, close\r\nX: 1\r\n"
			"Transfer-Encoding: chunked\r\nVia: 1.0 y\r\n\r\n";
	static struct http_msg m2;
	char out[512];
	int n;

	n = rewrite(s, 1, &rw_default, out, sizeof(out));
	ASSERT_TRUE(n > 0, "rewrite");
	memset(&m2, 0, sizeof(m2));
	ASSERT_EQ(http_parse_request(out, (size_t)n, MAX_HEAD, &m2), n, "reparse");
	ASSERT_EQ(m2.framing, HTTP_BODY_CHUNKED, "framing");
	ASSERT_TRUE(span_is(out, m2.host, "a:8"), "host");
	ASSERT_EQ(http_find_header(out, &m2, "x"), -1, "X dropped");
	ASSERT_EQ(m2.flags, HTTP_F_CONN_KEEPALIVE, "our Connection");
}

int main(void)
{
	RUN_TEST(test_req_simple_get);
	RUN_TEST(test_req_methods);
	RUN_TEST(test_req_incremental_bytewise);
	RUN_TEST(test_req_incremental_scan);
	RUN_TEST(test_req_pipelined_bytes_after_head);
	RUN_TEST(test_req_leading_crlf);
	RUN_TEST(test_req_absolute_form);
	RUN_TEST(test_req_absolute_form_variants);
	RUN_TEST(test_req_connect);
	RUN_TEST(test_req_asterisk);
	RUN_TEST(test_req_bad_target);
	RUN_TEST(test_path_normalize);
	RUN_TEST(test_path_normalize_bounds);
	RUN_TEST(test_req_target_checks);
	RUN_TEST(test_target_normalize_forms);
	RUN_TEST(test_req_request_line_spacing);
	RUN_TEST(test_req_bad_method);
	RUN_TEST(test_req_version);
	RUN_TEST(test_req_http10);
	RUN_TEST(test_req_header_value_ows);
	RUN_TEST(test_req_header_obs_text);
	RUN_TEST(test_req_expect);
	RUN_TEST(test_req_upgrade);
	RUN_TEST(test_req_connection_list);
	RUN_TEST(test_req_content_length);
	RUN_TEST(test_req_content_length_zero);
	RUN_TEST(test_req_content_length_bad);
	RUN_TEST(test_req_content_length_duplicate);
	RUN_TEST(test_req_chunked);
	RUN_TEST(test_req_cl_and_te);
	RUN_TEST(test_req_te_bad);
	RUN_TEST(test_req_te_unsupported);
	RUN_TEST(test_req_obs_fold);
	RUN_TEST(test_req_space_before_colon);
	RUN_TEST(test_req_bad_field_names);
	RUN_TEST(test_req_bare_cr_lf);
	RUN_TEST(test_req_control_chars);
	RUN_TEST(test_req_host_required);
	RUN_TEST(test_req_host_values);
	RUN_TEST(test_req_head_too_large);
	RUN_TEST(test_req_too_many_headers);
	RUN_TEST(test_find_header);
	RUN_TEST(test_req_repeat_call_after_success);
	RUN_TEST(test_resp_simple);
	RUN_TEST(test_resp_reason);
	RUN_TEST(test_resp_bad_status_line);
	RUN_TEST(test_resp_no_body_statuses);
	RUN_TEST(test_resp_head);
	RUN_TEST(test_resp_connect);
	RUN_TEST(test_resp_framing);
	RUN_TEST(test_resp_rejects);
	RUN_TEST(test_resp_too_large);
	RUN_TEST(test_resp_connection_flags);
	RUN_TEST(test_resp_incremental);
	RUN_TEST(test_chunked_simple);
	RUN_TEST(test_chunked_partial);
	RUN_TEST(test_chunked_extensions);
	RUN_TEST(test_chunked_trailers);
	RUN_TEST(test_chunked_leaves_next_message);
	RUN_TEST(test_chunked_skip);
	RUN_TEST(test_chunked_large_sizes);
	RUN_TEST(test_chunked_bad_size_line);
	RUN_TEST(test_chunked_bad_data_end);
	RUN_TEST(test_chunked_bad_trailers);
	RUN_TEST(test_chunked_line_limits);
	RUN_TEST(test_chunked_too_many_trailers);
	RUN_TEST(test_rewrite_basic);
	RUN_TEST(test_rewrite_nothing_added);
	RUN_TEST(test_rewrite_xff_append);
	RUN_TEST(test_rewrite_hop_by_hop);
	RUN_TEST(test_rewrite_connection_cannot_strip_framing);
	RUN_TEST(test_rewrite_upgrade);
	RUN_TEST(test_rewrite_http2_settings);
	RUN_TEST(test_upgrade_filter);
	RUN_TEST(test_rewrite_absolute_form);
	RUN_TEST(test_rewrite_connect_host);
	RUN_TEST(test_rewrite_normalized_path);
	RUN_TEST(test_rewrite_te_canonical);
	RUN_TEST(test_rewrite_via_append);
	RUN_TEST(test_rewrite_response_close);
	RUN_TEST(test_rewrite_response_chunked);
	RUN_TEST(test_rewrite_skips_leading_crlf);
	RUN_TEST(test_rewrite_enospc);
	RUN_TEST(test_rewrite_unparsed);
	RUN_TEST(test_rewrite_reparses);
	RUN_TEST(test_find_cookie);
	RUN_TEST(test_rewrite_set_cookie);
	return TEST_DONE();
}
