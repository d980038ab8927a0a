// SPDX-License-Identifier: MIT
/*
 * fuzz_rules.c - libFuzzer target for the request rule engine: random request heads through a
 * fixed rule set (conditions with regexes and captures; header rules whose values come from
 * the request: $http_*, captures, $args, $request_uri; strip_prefix, rewrite, upstream_host),
 * as conn_rules.c applies it. Properties checked (abort() on violation):
 *   - a rewritten head always parses again as a request (the rules can never make a malformed
 *     head), with the same framing (Content-Length / chunked) and the Host the rules chose;
 *   - every header value the rules produce is free of CR, LF and NUL (else it was dropped);
 *   - the path sent upstream is absolute and the query survives unless a rewrite replaced it.
 * The input is the head; a route is chosen for it by route_select as the daemon does.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "http.h"
#include "route.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static const char rules_conf[] =
	"listener web {\n"
	"  bind 127.0.0.1:1;\n"
	"  request_header set X-Uri \"$request_uri|$args\";\n"
	"  route a { path ~^/a/([^/]*)/(.*)$; header X-T ~(.*); strip_prefix /a;\n"
	"            rewrite ^/([^/]*)/(.*)$ /r/$2/$1?$http_x_q;\n"
	"            request_header set X-C \"$1 $2 $http_x_t\"; request_header add X-H $host;\n"
	"            request_header del X-T; upstream_host \"$1.internal\"; pool p; }\n"
	"  route b { query q; not method GET; request_header set X-Q $args;\n"
	"            request_header add X-Forwarded-For \"$http_x_forwarded_for\"; pool p; }\n"
	"  route c { host ~^(.+)\\.example$; request_header set X-Sub $1; pool p; }\n"
	"  route d { pool p; }\n"
	"}\n"
	"pool p { server s 127.0.0.1:80; }\n";

static struct config *cf;
static struct http_msg m, m2;
static char out[70000], upath[HTTP_MAX_TARGET + 2], arena[16384], hostbuf[512];

static void load(void)
{
	cf = conf_load_string("fuzz.conf", rules_conf, stderr);
	CHECK(cf != NULL);
}

/* one rule's op, as conn_rules.c builds it: dropped when the value cannot be a header value */
static int add_op(struct http_hdr_op *ops, unsigned *n, size_t *used, const struct hdr_rule *h,
		  const struct rule_vars *v, const struct rule_req *rq,
		  const struct rule_caps *caps)
{
	int len = 0;

	if (h->op != HDR_DEL) {
		len = tmpl_expand(&h->value, v, rq, caps, arena + *used, sizeof(arena) - *used);
		if (len < 0)
			return 0;
		for (int i = 0; i < len; i++)
			CHECK(arena[*used + i] != '\r' && arena[*used + i] != '\n' &&
			      arena[*used + i] != '\0');
	}
	ops[*n] = (struct http_hdr_op){h->op, h->name, h->name_len, arena + *used, (size_t)len};
	*used += (size_t)len;
	(*n)++;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char target[HTTP_MAX_TARGET + 2], host[256];
	struct http_hdr_op ops[64];
	struct rule_caps caps;
	struct rule_vars v = {0};
	struct http_rewrite rw = {0};
	const struct route *r;
	struct rule_req rq;
	unsigned nops = 0;
	size_t used = 0;
	char *buf;
	int n, hl, o;

	if (!cf)
		load();
	if (size > 16384)
		return 0;
	buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	memset(&m, 0, sizeof(m));
	n = http_parse_request(buf, size, 16384, &m);
	if (n <= 0)
		goto out;
	o = http_target_normalize(buf, &m, target, sizeof(target));
	if (o < 0)
		goto out;
	hl = route_host_normalize(buf + m.host.off, m.host.len, host, sizeof(host));
	rule_req_fill(&rq, buf, &m, target, (size_t)o, hl < 0 ? NULL : host, NULL);
	r = route_select(&cf->listeners[0], &rq, &caps);
	CHECK(r != NULL); /* route d takes everything */
	v.v[VAR_HOST] = rq.host;
	v.len[VAR_HOST] = rq.host_len;
	v.v[VAR_ARGS] = rq.query;
	v.len[VAR_ARGS] = rq.query_len;
	v.v[VAR_REQUEST_URI] = buf + m.target.off;
	v.len[VAR_REQUEST_URI] = m.target.len;
	rw.path = target;
	o = rule_rewrite_path(&r->act, &v, &rq, rq.path, rq.path_len,
			      rq.has_query ? rq.query : NULL, rq.query_len, upath, sizeof(upath));
	if (o < 0)
		goto out; /* the daemon answers 400 */
	if (o > 0) {
		CHECK(upath[0] == '/');
		rw.path = upath;
	}
	if (r->act.upstream_host_set == 1) {
		o = tmpl_expand(&r->act.upstream_host, &v, &rq, &caps, hostbuf,
				sizeof(hostbuf) - 1);
		if (o > 0 && rule_host_valid(hostbuf, (size_t)o)) {
			hostbuf[o] = '\0';
			rw.host = hostbuf;
		}
	}
	for (unsigned i = 0; i < cf->listeners[0].act.nreq_hdr; i++)
		add_op(ops, &nops, &used, &cf->listeners[0].act.req_hdr[i], &v, &rq, &caps);
	for (unsigned i = 0; i < r->act.nreq_hdr; i++)
		add_op(ops, &nops, &used, &r->act.req_hdr[i], &v, &rq, &caps);
	rw.ops = ops;
	rw.nops = nops;
	rw.client_ip = "192.0.2.1";
	rw.proto = "http";
	rw.via = "1.1 spliced";
	o = http_rewrite_head(buf, &m, 1, &rw, out, sizeof(out));
	if (o < 0)
		goto out; /* too large: the daemon answers 431 */
	/* whatever the rules did, the head is a request spliced itself would accept */
	memset(&m2, 0, sizeof(m2));
	n = http_parse_request(out, (size_t)o, sizeof(out), &m2);
	if (getenv("FUZZ_RULES_SHOW"))
		fprintf(stderr, "route %s, parse %d of %d:\n%.*s\n", r->name, n, o, o, out);
	/* spliced's own header count limit (not the backend's) may be passed by what was added */
	if (n == -431 && m.nhdrs + nops + 4 > HTTP_MAX_HEADERS)
		goto out;
	CHECK(n == o);
	CHECK(m2.framing == m.framing);
	CHECK(m2.framing != HTTP_BODY_LENGTH || m2.content_length == m.content_length);
	if (rw.host) {
		CHECK(m2.host.len == strlen(rw.host));
		CHECK(!memcmp(out + m2.host.off, rw.host, m2.host.len));
	}
out:
	free(buf);
	return 0;
}
