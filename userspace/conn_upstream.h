/* SPDX-License-Identifier: MIT */
/*
 * conn_upstream.h - the upstream side of a connection (conn_upstream.c).
 */
#ifndef SPLICED_CONN_UPSTREAM_H
#define SPLICED_CONN_UPSTREAM_H

#include "conn-t.h"
#include "conn.h"

/* conn_upstream_pick - a server of c's pool not tried yet for this request: the sticky
 * cookie's when usable, else as the balancer picks it among the usable ones, else (marks left
 * none) among those that might answer; NULL when none is left (c->pick_full: some are only at
 * their max_conn, the request may wait for a slot) */
struct server *conn_upstream_pick(struct conn *c);

/* conn_upstream_head - may free c: a final response head arrived (not forwarded yet): note its
 * latency for the slow-server rule; 1 when the request went to another server instead
 * (`retry_on` a 5xx; *rc is the step's result), 0 when the response goes to the client */
int conn_upstream_head(struct conn *c, enum step_rc *rc);

/* conn_upstream_connect - may free c: send the request to s (NULL: nothing usable -> 503, or
 * the queue when the servers are only full) on a parked connection when parked_ok allows and
 * the request may take one, else on a new one; s at its max_conn: the queue */
enum step_rc conn_upstream_connect(struct conn *c, struct server *s, int parked_ok);

/* conn_upstream_failed - may free c: the connect to c->srv failed (why, for the log): mark the
 * server failed, try another (up to the pool's retries) or answer 503 */
enum step_rc conn_upstream_failed(struct conn *c, const char *why);

/* conn_upstream_check_idle - may close c's upstream (never c): between two requests, close the
 * kept upstream connection unless it is quiet (a server that spoke out of turn is counted).
 * Returns 1 when it stays. */
int conn_upstream_check_idle(struct conn *c);

/* conn_upstream_close - frees c's upstream side (never c): parked for reuse when it can be,
 * else closed (its kernel path state is wound up) */
void conn_upstream_close(struct conn *c);

#endif
