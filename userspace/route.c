// SPDX-License-Identifier: MIT
/* route.c - pick the pool for a request from Host and path (nginx server_name + location). */
#include <ctype.h>
#include <string.h>

#include "route.h"

int route_host_normalize(const char *host, size_t len, char *out, size_t cap)
{
	size_t n = len;

	if (len && host[0] == '[') {
		/* IPv6 literal: keep the brackets, drop a port after them */
		const char *rb = memchr(host, ']', len);

		if (rb)
			n = (size_t)(rb - host) + 1;
	} else {
		const char *colon = memchr(host, ':', len);

		if (colon)
			n = (size_t)(colon - host);
	}
	if (n && host[n - 1] == '.')
		n--;
	if (n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)host[i]);
	out[n] = '\0';
	return (int)n;
}

static int host_matches(const char *pat, const char *host, size_t hlen)
{
	size_t plen = strlen(pat);

	if (pat[0] == '*' && pat[1] == '.') {
		/* "*.example.com" matches "a.example.com", "a.b.example.com", not "example.com" */
		size_t slen = plen - 1; /* ".example.com" */

		return hlen > slen && !memcmp(host + hlen - slen, pat + 1, slen);
	}
	return plen == hlen && !memcmp(pat, host, hlen);
}

const struct route *route_select(const struct listener *l, const struct rule_req *rq,
				 struct rule_caps *caps)
{
	for (unsigned i = 0; i < l->nroutes; i++) {
		const struct route *r = &l->routes[i];

		if (r->nhosts) {
			unsigned k;

			if (!rq->host_len)
				continue;
			for (k = 0; k < r->nhosts; k++)
				if (host_matches(r->hosts[k], rq->host, rq->host_len))
					break;
			if (k == r->nhosts)
				continue;
		}
		if (r->path[0]) {
			size_t pl = strlen(r->path);

			if (rq->path_len < pl || memcmp(rq->path, r->path, pl))
				continue;
		}
		if (r->nconds && !rule_conds_match(r->conds, r->nconds, rq, caps))
			continue;
		if (!r->nconds) {
			caps->base = NULL;
			caps->n = 0;
		}
		return r;
	}
	return NULL;
}

const struct route *route_match(const struct listener *l, const char *host, size_t host_len,
				const char *path, size_t path_len)
{
	static const struct http_msg empty;
	struct rule_req rq;
	struct rule_caps caps;
	char h[HOST_MAX_LEN];
	int hl = -1;

	if (host && host_len)
		hl = route_host_normalize(host, host_len, h, sizeof(h));
	rule_req_fill(&rq, "", &empty, path, path_len, hl < 0 ? NULL : h, NULL);
	return route_select(l, &rq, &caps);
}
