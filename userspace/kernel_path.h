/* SPDX-License-Identifier: MIT */
/*
 * kernel_path.h - the kernel data path of one connection (kernel_path.c): the only place that
 * decides when bytes go to the BPF verdict and when the daemon may touch a socket again.
 */
#ifndef SPLICED_KERNEL_PATH_H
#define SPLICED_KERNEL_PATH_H

#include "conn-t.h"

/* side_in_maps - s is in the kernel path's maps (it holds a slot): bytes the verdict passes up
 * reach recvmsg only, so s can no longer splice(2) */
static inline int side_in_maps(const struct side *s)
{
	return s->bpf.slot != 0;
}

/*
 * kernel_drained - every byte the kernel redirected into s has reached s's send queue: 1 (the
 * daemon may write into s), or 0 (not yet: c->kernel_wait is set, look again soon).
 */
int kernel_drained(struct conn *c, struct side *s);

/*
 * kernel_pair - put the current client/upstream pair into the maps (nothing when it is there
 * already). 0; -EAGAIN: not at a quiet point yet (try again when the flow next asks);
 * -EOPNOTSUPP: not possible on this connection (TLS, no upstream, an earlier failure); another
 * -errno: the insertion failed and the connection stays in userspace for good (c->kernel_failed).
 */
int kernel_pair(struct conn *c);

/* kernel_wanted - 1 when the rest of f's body (or tunnel) should go to the kernel, else 0. */
int kernel_wanted(struct conn *c, struct flow *f);

/* kernel_open - open a window for the rest of f's body; the pair is in the maps and the
 * daemon's own bytes of f are all written. */
void kernel_open(struct conn *c, struct flow *f);

/* kernel_account - count the bytes the verdict redirected since the last look as moved body
 * bytes of f (sets *progress when there were any). */
void kernel_account(struct flow *f, int *progress);

/* kernel_caught_up - the daemon has written every byte the verdict passed up from f's source
 * (its buffer is empty): the verdict may redirect again */
void kernel_caught_up(struct flow *f);

/* kernel_span_end - f's body is complete: close its kernel span (when it had one) */
void kernel_span_end(struct conn *c, struct flow *f);

/*
 * kernel_src_drained - after EOF on f's source: 1 when the verdict has seen every byte the
 * source received and all of it reached the destination's send queue (the destination may be
 * shut down), 0 when not yet (c->kernel_wait is set).
 */
int kernel_src_drained(struct conn *c, struct flow *f);

/* kernel_upstream_closing - the upstream socket is about to close (or be replaced): settle the
 * books of what the kernel moved between it and the client, and close the client's window */
void kernel_upstream_closing(struct conn *c);

/* kernel_tunnel_bytes - bytes the kernel moved in a tunnel so far, both directions (activity
 * that wakes nobody: the tunnel timeout counts it) */
uint64_t kernel_tunnel_bytes(struct conn *c);

#endif
