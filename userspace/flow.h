/* SPDX-License-Identifier: MIT */
/*
 * flow.h - the body relay of one direction of a connection (flow.c).
 */
#ifndef SPLICED_FLOW_H
#define SPLICED_FLOW_H

#include <stdint.h>

#include "conn-t.h"

enum flow_rc {
	FLOW_BLOCKED = 0, /* waiting on a socket (edge re-armed) or on the kernel (kpoll) */
	FLOW_DONE = 1,	  /* body complete and flushed */
	FLOW_ERR_SRC = -1,
	FLOW_ERR_DST = -2,
	FLOW_BAD_FRAMING = -3,
	FLOW_EARLY_EOF = -4,
	FLOW_CONTINUE = -5, /* internal: go round the loop again */
};

/* flow_close_pipe - close f's pipe (its bytes are dropped) */
void flow_close_pipe(struct flow *f);

/* flow_open_pipe - f's pipe, created once; 0 or -errno */
int flow_open_pipe(struct conn *c, struct flow *f);

/* flow_reset_body - no body yet: the next message's framing is set by the caller */
void flow_reset_body(struct flow *f);

/* flow_account - count n body bytes of f moved without being parsed (splice(2) or kernel) */
void flow_account(struct flow *f, uint64_t n);

/*
 * flow_run - relay one direction's body (or tunnel) from src to dst until blocked or done.
 * *moved_total accumulates body bytes the daemon moved (for stats and fairness); bytes the
 * kernel moved are in f->kmoved. Returns an enum flow_rc (never FLOW_CONTINUE).
 */
int flow_run(struct conn *c, struct flow *f, uint64_t *moved_total, int *progress);

#endif
