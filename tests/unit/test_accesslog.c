// SPDX-License-Identifier: MIT
/*
 * test_accesslog.c - the access log line (accesslog_line): JSON Lines that decode back to the
 * bytes a client sent, whatever they are; text lines whose fields stay one word; long lines cut
 * at a field and still valid; and the conf side of `access_log ... format F`.
 */
#include "test.h"

#include "accesslog.h"
#include "conf.h"

static char line[ACCESSLOG_LINE_MAX];

static const struct accesslog_rec base = {
	.time_ms = 1700000000123ULL,
	.listener = "web",
	.client = "127.0.0.1",
	.method = "GET",
	.target = "/",
	.version_minor = 1,
	.host = "example.com",
	.status = 200,
	.bytes_in = 78,
	.bytes_out = 1234,
	.pool = "p",
	.server = "s1",
	.duration_ms = 5,
};

/* the JSON string value of key in line, decoded into out; -1 when absent, null or malformed */
static int json_value(const char *l, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(l, pat);
	if (!p)
		return -1;
	for (p += strlen(pat); *p != '"'; p++) {
		unsigned v;

		if (!*p || n + 1 >= cap || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return -1;
		if (*p != '\\') {
			out[n++] = *p;
			continue;
		}
		switch (*++p) {
		case '"':
		case '\\':
		case '/':
			out[n++] = *p;
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'u':
			if (sscanf(p + 1, "%4x", &v) != 1 || v > 0xff)
				return -1;
			out[n++] = (char)v;
			p += 4;
			break;
		default:
			return -1;
		}
	}
	out[n] = '\0';
	return (int)n;
}

/* the line is printable ASCII and ends with exactly one newline */
static int printable(const char *l, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if ((unsigned char)l[i] < 0x20 || (unsigned char)l[i] > 0x7e)
			return 0;
	return len && l[len - 1] == '\n';
}

static void test_json_every_byte(void)
{
	struct accesslog_rec r = base;
	char target[300], host[300], got[2048];
	size_t len, n = 0;

	/* every byte a client can put in a target or a header value (NUL ends a C string) */
	for (int b = 1; b < 256; b++)
		target[n++] = (char)b;
	target[n] = '\0';
	memcpy(host, target, n + 1);
	r.target = target;
	r.host = host;
	r.method = "G\"ET";
	len = accesslog_line(&r, ACCESSLOG_JSON, line, sizeof(line));
	ASSERT_TRUE(printable(line, len), "not printable ASCII: %s", line);
	ASSERT_TRUE(json_value(line, "target", got, sizeof(got)) == 255, "target: %s", line);
	ASSERT_TRUE(!memcmp(got, target, 255), "target decodes back");
	ASSERT_TRUE(json_value(line, "host", got, sizeof(got)) == 255, "host: %s", line);
	ASSERT_TRUE(json_value(line, "method", got, sizeof(got)) == 4, "method");
	ASSERT_STREQ(got, "G\"ET", "method");
	ASSERT_TRUE(!strstr(line, "truncated"), "not truncated");
}

static void test_json_fields(void)
{
	struct accesslog_rec r = base;
	size_t len;

	r.pool = NULL;
	r.server = "";
	r.tls = "ktls-tx";
	r.route = "#2";
	r.term = "client_closed";
	len = accesslog_line(&r, ACCESSLOG_JSON, line, sizeof(line));
	line[len - 1] = '\0';
	ASSERT_STREQ(
		line,
		"{\"time\":\"2023-11-14T22:13:20.123Z\",\"listener\":\"web\",\"client\":"
		"\"127.0.0.1\",\"method\":\"GET\",\"target\":\"/\",\"version\":\"HTTP/1.1\","
		"\"host\":\"example.com\",\"status\":200,\"bytes_in\":78,\"bytes_out\":1234,"
		"\"pool\":null,\"server\":null,\"duration_ms\":5,\"tries\":0,\"tls\":\"ktls-tx\","
		"\"route\":\"#2\",\"request_id\":null,\"term\":\"client_closed\",\"refused\":null}",
		"the whole line");
}

static void test_text_fields_stay_words(void)
{
	struct accesslog_rec r = base;
	size_t len;

	r.target = "/a b\"c\\d\x01\xff";
	r.host = "h x";
	len = accesslog_line(&r, ACCESSLOG_TEXT, line, sizeof(line));
	line[len - 1] = '\0';
	ASSERT_STREQ(line,
		     "2023-11-14T22:13:20Z web 127.0.0.1 \"GET /a\\x20b\\x22c\\x5cd\\x01\\xff "
		     "HTTP/1.1\" host=h\\x20x status=200 bytes_in=78 bytes_out=1234 backend=p/s1 "
		     "duration_ms=5",
		     "text line");
	r.pool = r.server = NULL;
	r.tries = 3;
	r.tls = "userspace";
	r.route = "api";
	r.request_id = "trace-42.a:b";
	r.term = "server_timeout";
	len = accesslog_line(&r, ACCESSLOG_TEXT, line, sizeof(line));
	ASSERT_TRUE(strstr(line, " backend=-/- ") != NULL, "no backend: %s", line);
	ASSERT_TRUE(strstr(line,
			   " duration_ms=5 tries=3 tls=userspace route=api request_id=trace-42.a:b "
			   "term=server_timeout\n") != NULL,
		    "%s", line);
}

static void test_long_lines_cut_at_a_field(void)
{
	static char target[8192], host[1024];
	struct accesslog_rec r = base;
	char got[ACCESSLOG_LINE_MAX];
	size_t len;

	memset(target, 0x01, sizeof(target) - 1); /* 6 output bytes each in JSON */
	memset(host, 'h', sizeof(host) - 1);
	r.target = target;
	r.host = host;
	for (int fmt = ACCESSLOG_TEXT; fmt <= ACCESSLOG_JSON; fmt++) {
		len = accesslog_line(&r, fmt, line, sizeof(line));
		ASSERT_TRUE(len <= sizeof(line), "fits");
		ASSERT_TRUE(printable(line, len), "printable");
		ASSERT_TRUE(strstr(line, "duration_ms") != NULL, "the fields after the cut: %s",
			    line);
	}
	ASSERT_TRUE(!memcmp(line + len - 19, ",\"truncated\":true}\n", 19), "json end: %s",
		    line + len - 40);
	ASSERT_TRUE(json_value(line, "target", got, sizeof(got)) > 100, "target kept in part");
}

static void test_conf_access_log(void)
{
	static const char *const good[] = {
		"global { access_log /tmp/a.log format json; }",
		"global { access_log syslog; }",
		"global { access_log syslog:local3 format text; }",
		"global { access_log off; }",
	};
	static const char *const bad[] = {
		"global { access_log syslog:nosuch; }",
		"global { access_log /tmp/a format xml; }",
		"global { access_log /tmp/a json; }",
		"global { access_log /tmp/a format; }",
	};
	const char *rest = "\nlistener l { bind 127.0.0.1:1; route { pool p; } }\n"
			   "pool p { server s 127.0.0.1:2; }\n";
	char text[512];
	struct config *cf;

	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", good[i], rest);
		cf = conf_load_string("t.conf", text, stderr);
		ASSERT_TRUE(cf != NULL, "%s", good[i]);
		if (cf && i == 0)
			ASSERT_EQ(cf->access_log_format, ACCESSLOG_JSON, "format json");
		if (cf && i == 2)
			ASSERT_EQ(cf->access_log_facility, 19 << 3, "local3");
		conf_free(cf);
	}
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", bad[i], rest);
		cf = conf_load_string("t.conf", text, NULL);
		ASSERT_TRUE(cf == NULL, "refused: %s", bad[i]);
		conf_free(cf);
	}
}

int main(void)
{
	RUN_TEST(test_json_every_byte);
	RUN_TEST(test_json_fields);
	RUN_TEST(test_text_fields_stay_words);
	RUN_TEST(test_long_lines_cut_at_a_field);
	RUN_TEST(test_conf_access_log);
	return TEST_DONE();
}
