/* SPDX-License-Identifier: MIT */
/*
 * flow.h - the body relay of one direction of a connection (flow.c).
 */
#ifndef SPLICED_FLOW_H
#define SPLICED_FLOW_H

#include <stdint.h>

#include "conn-t.h"

/* what flow_run says about one direction */
enum flow_rc {
	FLOW_BLOCKED =
		0,     /* waiting on a socket (edge re-armed) or on the kernel (c->kernel_wait) */
	FLOW_DONE = 1, /* body complete and flushed */
	FLOW_ERR_SRC = -1,     /* the source socket failed */
	FLOW_ERR_DST = -2,     /* the destination socket failed */
	FLOW_BAD_FRAMING = -3, /* the chunked framing is broken (or a chunk line too long) */
	FLOW_EARLY_EOF = -4,   /* the source closed before the body's end */
	FLOW_TOO_LARGE = -5,   /* a chunked body announced more than f->limit bytes */
};

/* flow_close_pipe - f gives its pipe up: back to the worker's spare pool when empty, else
 * closed (its bytes are dropped) */
void flow_close_pipe(struct conn *c, struct flow *f);

/* flow_open_pipe - f's pipe, taken once (from the worker's spare pool, or new); 0 or -errno */
int flow_open_pipe(struct conn *c, struct flow *f);

/* flow_reset_body - no body yet: the next message's framing is set by the caller */
void flow_reset_body(struct flow *f);

/* flow_account - count n body bytes of f moved without being parsed (splice(2) or kernel) */
void flow_account(struct flow *f, uint64_t n);

/*
 * flow_run - relay one direction's body (or tunnel) from src to dst until blocked or done, in
 * steps: flush what the daemon holds, check for the body's end, pass buffered bytes the framing
 * allows, open or advance a kernel window, handle the source's end of stream, read more (splice
 * into the pipe, or into the buffer). *moved_total accumulates body bytes the daemon moved, with
 * the chunk framing it adds to a re-framed body (for stats and fairness; the kernel's are in
 * f->kern_moved); *progress is set when anything moved.
 * Returns an enum flow_rc.
 */
int flow_run(struct conn *c, struct flow *f, uint64_t *moved_total, int *progress);

#endif
