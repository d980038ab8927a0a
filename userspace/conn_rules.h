/* SPDX-License-Identifier: MIT */
/*
 * conn_rules.h - what the request rule engine (rules.h) does to one connection's exchanges:
 * the route's and its listener's actions applied to the request head sent upstream, to the
 * response head sent back, and to the responses spliced answers itself (return, errors).
 * Data plane; the per-connection state it keeps is allocated on the first request whose route
 * or listener has actions, and reused by the connection's later requests.
 */
#ifndef SPLICED_CONN_RULES_H
#define SPLICED_CONN_RULES_H

#include "conn-t.h"
#include "rules.h"

#define CONN_RULES_MAX_OPS 48 /* header operations on one head */
#define CONN_RULES_ARENA 8192 /* bytes of expanded header values on one head */

/* the header operations of one head and the bytes their values are in */
struct conn_rules_ops {
	struct http_hdr_op ops[CONN_RULES_MAX_OPS];
	unsigned n;
	char arena[CONN_RULES_ARENA];
	size_t used;
	char host[HOST_MAX_LEN]; /* upstream_host, expanded */
};

/*
 * conn_rules_begin - route r was selected for the request rq (with captures caps): keep what
 * later steps need (the target, captures, the request ID, the head when response rules read
 * request headers). Returns 0, or -ENOMEM (the caller answers 500).
 */
int conn_rules_begin(struct conn *c, const struct route *r, const struct rule_req *rq,
		     const struct rule_caps *caps);

/*
 * conn_rules_refuse - may the request rq go on to the route (conn_rules_begin ran)? The
 * route's allow/deny on the client address (403) and its `methods`, else its listener's
 * (405, with Allow on the answer). Returns 0, 403 or 405 (c->refused says why, counted by
 * the caller's answer).
 */
int conn_rules_refuse(struct conn *c, const struct rule_req *rq);

/* conn_rules_return - the status the route (or its listener) answers itself with, 0: none */
int conn_rules_return(const struct conn *c);

/*
 * conn_rules_request - fill rw for the request head sent upstream: the path after
 * strip_prefix/rewrite (into path, cap bytes; rw->path untouched when neither applies), the
 * Host (upstream_host) and the request header operations (listener's, route's, request ID)
 * with their values in o. Returns 0, or -EBADMSG when the rewritten path is invalid (400).
 */
int conn_rules_request(struct conn *c, const struct rule_req *rq, struct http_rewrite *rw,
		       struct conn_rules_ops *o, char *path, size_t cap);

/* conn_rules_response - the response header operations (hidden backend headers, listener's and
 * route's rules, the request ID) for response m of status, into rw and o */
void conn_rules_response(struct conn *c, int status, struct http_rewrite *rw,
			 struct conn_rules_ops *o);

/*
 * conn_rules_generated - for a response spliced makes itself (status): the body of an
 * error_page (*body, *len, *type; left as they are when none applies), and the extra header
 * lines of the response rules written into hdrs (cap bytes). Returns the length of hdrs.
 */
size_t conn_rules_generated(struct conn *c, int status, const char **body, size_t *len,
			    const char **type, char *hdrs, size_t cap);

/* conn_rules_location - the expanded URL or text of the route's `return` into out; its length */
int conn_rules_return_value(struct conn *c, char *out, size_t cap);

/* conn_rules_request_id - the current request's ID, or NULL when request_id is off */
const char *conn_rules_request_id(const struct conn *c);

/* conn_rules_peer - the client's address as rule conditions take it (16 bytes), or NULL */
const uint8_t *conn_rules_peer(struct conn *c);

/* conn_rules_free - the connection's rule state (conn_release) */
void conn_rules_free(struct conn *c);

#endif
