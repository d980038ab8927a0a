/* SPDX-License-Identifier: MIT */
/*
 * retry.h - when a request goes to another server (retry.c): the pool's `retry_on` causes,
 * whether the request can be sent again as it was, and the budget (`retries` tries after the
 * first, `retry_timeout` from the request head). Part of the connection module.
 */
#ifndef SPLICED_RETRY_H
#define SPLICED_RETRY_H

#include "conn-t.h"
#include "conn.h"

/*
 * retry_allowed - 1 when c's request may go to another server after a failure of kind cause
 * (one RETRY_* bit): the pool retries on it, tries are left, retry_timeout has not run out, and
 * the request can be sent again: always after a connect failure (nothing went out); after a
 * reset only when nothing of the response came and no body byte moved (idempotent methods, or
 * no body); after a timeout or a 5xx only for an idempotent method whose request went out
 * whole without a body byte moved, and no byte of a response reached the client. Else 0.
 */
int retry_allowed(const struct conn *c, unsigned cause);

/* retry_count - one more try for cause: counted for the pool's metrics */
void retry_count(struct conn *c, unsigned cause);

/*
 * retry_or_fail - may free c: the server answered nothing usable (cause: RETRY_RESET or
 * RETRY_TIMEOUT; why, for the log). A reused connection the server closed as the request went
 * out is retried on a new connection to the same server (not a try); else another server when
 * retry_allowed(); else the client gets status.
 */
enum step_rc retry_or_fail(struct conn *c, unsigned cause, int status, const char *why);

/*
 * retry_response - may free c: a final response head with status 502/503/504 arrived and was
 * not forwarded yet. When the pool retries on that status and another server can take the
 * request, the response is dropped (its connection closed), the failure reported to the
 * server's health and the request sent there: returns 1 and the step's result in *rc.
 * Returns 0 when the response goes to the client (it is the last one).
 */
int retry_response(struct conn *c, enum step_rc *rc);

#endif
