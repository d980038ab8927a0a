/* SPDX-License-Identifier: MIT */
/*
 * spare.h - a worker's spare buffers and pipes: what connections give back between requests is
 * kept for the next one up to a cap (`buffer_pool`), the rest goes back to the system; and the
 * bookkeeping that returns freed heap to the system after a spike (spare_sweep).
 *
 * One struct spare per worker, used by its thread only (no lock). Buffers of the worker's
 * buffer_size are pooled; other sizes (a connection still on an older configuration, a small
 * head buffer) are only counted.
 */
#ifndef SPLICED_SPARE_H
#define SPLICED_SPARE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct spare {
	char **bufs; /* spare buffers of `size` bytes (a stack) */
	int (*pipes)[2];
	unsigned nbufs, npipes;
	unsigned max;	    /* spare buffers kept at most, and spare pipes at most */
	uint32_t size;	    /* the pooled buffers' size (the worker's buffer_size) */
	uint32_t pipe_size; /* F_SETPIPE_SZ of new pipes */
	uint64_t live;	    /* heap bytes the worker's connections hold now (spare_count) */
	uint64_t peak;	    /* the most they held since the last trim */
	uint64_t trims;	    /* malloc_trim calls (for the tests and `show info`) */
};

/* spare_init - an empty pool for buffers of size bytes, at most max of them kept, pipes of
 * pipe_size; 0 or -ENOMEM */
int spare_init(struct spare *s, uint32_t size, uint32_t pipe_size, unsigned max);

/* spare_config - a reload changed the sizes or the cap: spare buffers of another size are freed,
 * pipes beyond the cap closed */
void spare_config(struct spare *s, uint32_t size, uint32_t pipe_size, unsigned max);

/* spare_destroy - free every spare buffer and close every spare pipe */
void spare_destroy(struct spare *s);

/* spare_buf_get - b (holding no memory) gets an empty buffer of size bytes: a spare one when
 * size is the pooled size, else a new one; 0 or -ENOMEM (b unchanged) */
int spare_buf_get(struct spare *s, struct buf *b, uint32_t size);

/* spare_buf_put - b's memory goes back (kept when b has the pooled size and the pool is below
 * its cap, freed otherwise); b then holds nothing. Its bytes are dropped: callers put back only
 * what is empty or must be dropped. */
void spare_buf_put(struct spare *s, struct buf *b);

/* spare_pipe_get - an empty pipe (non-blocking, close-on-exec): a spare one, else a new one
 * sized pipe_size (failure to size it only costs speed). 0 with fds in p[0] (read), p[1]
 * (write), or -errno. */
int spare_pipe_get(struct spare *s, int p[2]);

/* spare_pipe_put - give a pipe back: kept when it is verifiably empty and the pool is below its
 * cap, closed otherwise (a pipe holding bytes is never reused: they belong to one client) */
void spare_pipe_put(struct spare *s, int p[2]);

/* spare_count - bytes of heap a connection took (> 0) or gave back (< 0), outside the buffers
 * above (the connection itself, heads); spare_sweep compares live and peak */
void spare_count(struct spare *s, int64_t bytes);

/* spare_sweep - on the worker's sweep: after a spike (the connections hold less than half of
 * what they held at the peak, and at least SPARE_TRIM_MIN less), give freed heap back to the
 * system (malloc_trim) once. Returns 1 when it trimmed. */
int spare_sweep(struct spare *s);

#define SPARE_TRIM_MIN (4u << 20)

#endif
