/* SPDX-License-Identifier: MIT */
/* route.h - content-based routing: Host (exact or *.suffix) and path prefix, first match wins. */
#ifndef SPLICED_ROUTE_H
#define SPLICED_ROUTE_H

#include <stddef.h>

#include "types.h"

/*
 * route_select - the first route of l whose hosts, path prefix and conditions (rules.h) all
 * hold for rq (its host normalized, its path without the query); caps receives the captures
 * for the route's actions. Returns the route, or NULL when none matches (404).
 */
const struct route *route_select(const struct listener *l, const struct rule_req *rq,
				 struct rule_caps *caps);

/*
 * route_match - route_select for a bare host and path (no head: header conditions never hold);
 * the first route of l that matches host (any case, port ignored) and path.
 * host may be NULL or empty (matches only routes without host conditions).
 * Returns the route, or NULL when none matches (the daemon answers 404).
 */
const struct route *route_match(const struct listener *l, const char *host, size_t host_len,
				const char *path, size_t path_len);

/* route_host_normalize - lower-case host into out without ":port" and a trailing dot;
 * returns the length, or -1 when it does not fit. */
int route_host_normalize(const char *host, size_t len, char *out, size_t cap);

#endif
