/* SPDX-License-Identifier: MIT */
/*
 * conn_limits.h - the request limits of a listener and its routes on one connection's
 * requests: the target's length (`max_uri_length`, 414), the number of header lines
 * (`max_headers`, 431), headers with '_' in their name (`underscore_headers`), the body's size
 * (`max_body_size`: 413 from Content-Length before a backend is contacted; a chunked body is cut
 * in flow.c when it announces more). Data plane; each refusal sets c->refused for the access
 * log, and is counted by the answer it gets.
 */
#ifndef SPLICED_CONN_LIMITS_H
#define SPLICED_CONN_LIMITS_H

#include "conn-t.h"
#include "conn_rules.h"
#include "http.h"

/* conn_limits_head - before routing: the listener's limits on the head m (bytes at b).
 * Returns 0, or the status to answer (414, 431, 400). */
int conn_limits_head(struct conn *c, const struct http_msg *m, const char *b);

/* conn_limits_body_length - after routing: 413 when the Content-Length is over the route's (or
 * listener's) max_body_size, else 0 */
int conn_limits_body_length(struct conn *c, const struct http_msg *m);

/* conn_limits_body_flow - after request_framing: the chunked body's limit into c->req */
void conn_limits_body_flow(struct conn *c);

/*
 * conn_limits_underscore - underscore_headers drop: a delete operation for every header of m
 * with '_' in its name, appended to o and rw (whose ops conn_rules_request may have set).
 * Returns 0, or 400 when they do not fit o (too many to drop: refused).
 */
int conn_limits_underscore(struct conn *c, const struct http_msg *m, const char *b,
			   struct conn_rules_ops *o, struct http_rewrite *rw);

/*
 * conn_limits_accept - the listener's `limit conn` for a connection just accepted: 0 when every
 * one has room (the slots are held until conn_limits_close), or -1 when one is full (nothing
 * held; a 503 was sent, best effort, the refusal counted and logged; the caller closes).
 */
int conn_limits_accept(struct conn *c);

/* conn_limits_close - give back the connection's slots (conn_free) */
void conn_limits_close(struct conn *c);

/*
 * conn_limits_request - after routing: the listener's and the route's `limit rate` (429, with
 * c->retry_after set) and the route's `limit conn` (503; held until conn_limits_request_done).
 * Returns 0, 429 or 503.
 */
int conn_limits_request(struct conn *c, const struct http_msg *m, const char *b);

/* conn_limits_request_done - give back the request's slots (request_done) */
void conn_limits_request_done(struct conn *c);

#endif
