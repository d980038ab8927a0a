/* SPDX-License-Identifier: MIT */
/*
 * conn_head.h - request and response heads of a connection (conn_head.c).
 */
#ifndef SPLICED_CONN_HEAD_H
#define SPLICED_CONN_HEAD_H

#include "conn-t.h"
#include "conn.h"

/* conn_head_request - may free c: a complete request head of head_len bytes is in c->req.in
 * (parsed into c->msg): route it, rewrite it and send it to a server of the routed pool, or
 * answer an error (404 no route, 431 too large once rewritten, 400 broken chunk framing) */
enum step_rc conn_head_request(struct conn *c, int head_len);

/* conn_head_response - may free c: read, parse and forward the response head rewritten (1xx
 * heads go out and the next is read); then the response body starts (STEP_AGAIN), or c turns
 * into a tunnel. STEP_WAIT: the head is not complete yet; *progress is set when bytes moved. */
enum step_rc conn_head_response(struct conn *c, int *progress);

#endif
