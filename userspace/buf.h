/* SPDX-License-Identifier: MIT */
/*
 * buf.h - a fixed-capacity byte buffer: bytes live in data[start, end), appended at end and
 * consumed from start; compacted to the front when the end reaches the capacity. The memory
 * comes from the connection's phase (conn_mem.c) and the worker's spare pool (spare.c); a buffer
 * a connection does not hold has data NULL and every length 0.
 */
#ifndef SPLICED_BUF_H
#define SPLICED_BUF_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *data;
	uint32_t start, end, cap;
};

static inline uint32_t buf_len(const struct buf *b)
{
	return b->end - b->start;
}

static inline void buf_consume(struct buf *b, uint32_t n)
{
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

static inline void buf_compact(struct buf *b)
{
	if (b->start && b->start != b->end)
		memmove(b->data, b->data + b->start, buf_len(b));
	b->end -= b->start;
	b->start = 0;
}

static inline uint32_t buf_room(struct buf *b)
{
	if (b->end == b->cap)
		buf_compact(b);
	return b->cap - b->end;
}

static inline int buf_append(struct buf *b, const void *p, uint32_t n)
{
	if (buf_room(b) < n)
		buf_compact(b);
	if (b->cap - b->end < n)
		return -ENOSPC;
	memcpy(b->data + b->end, p, n);
	b->end += n;
	return 0;
}

#endif
