// SPDX-License-Identifier: MIT
/*
 * conn_mem.c - the memory of a connection, by phase. A connection holds only what its phase
 * uses, so that idle and slow connections cost little:
 *   between requests (idle keep-alive)   struct conn only
 *   a head arriving (slow or not)        + req.in, CONN_HEAD_MIN bytes, doubled as the head
 *                                          grows (up to buffer_size; the parser's state is
 *                                          c->head_scan, the parse itself runs in the worker's
 *                                          w->head_msg)
 *   an exchange (head complete)          + the heads (msg, rmsg, req_head) and the body
 *                                          buffers (req.out, resp.in, resp.out: buffer_size
 *                                          each, from the worker's spare pool), pipes when a
 *                                          body moves with splice(2)
 * Everything an exchange took goes back when the connection is idle again (conn_mem_idle);
 * buffers and pipes go to the worker's spare pool (spare.c), which keeps buffer_pool of each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn-t.h"
#include "conn.h"
#include "flow.h"
#include "spare.h"
#include "worker.h"

static struct spare *spare_of(struct conn *c)
{
	return &c->w->spare;
}

/* a small buffer for a head (not pooled: spare_buf_put frees it) */
static int head_alloc(struct conn *c, struct buf *b, uint32_t size)
{
	char *p = malloc(size);

	if (!p)
		return -ENOMEM;
	b->data = p;
	b->start = b->end = 0;
	b->cap = size;
	spare_count(spare_of(c), size);
	return 0;
}

int conn_mem_head(struct conn *c)
{
	if (c->req.in.data)
		return 0;
	return head_alloc(c, &c->req.in, CONN_HEAD_MIN);
}

int conn_mem_full(struct conn *c, struct buf *b)
{
	uint32_t full = c->cf->buffer_size;
	struct buf nb;

	if (b->data && b->cap >= full)
		return 0;
	if (spare_buf_get(spare_of(c), &nb, full))
		return -ENOMEM;
	if (b->data) {
		memcpy(nb.data, b->data + b->start, buf_len(b));
		nb.end = buf_len(b);
		spare_buf_put(spare_of(c), b);
	}
	*b = nb;
	return 0;
}

int conn_mem_grow(struct conn *c, struct buf *b)
{
	uint32_t full = c->cf->buffer_size;
	uint32_t n = b->cap * 2;
	char *p;

	if (!b->data)
		return conn_mem_head(c);
	if (b->cap >= full)
		return -ENOSPC;
	if (n >= full)
		return conn_mem_full(c, b); /* the last step: a buffer the pool can take back */
	buf_compact(b);
	p = realloc(b->data, n);
	if (!p)
		return -ENOMEM;
	spare_count(spare_of(c), (int64_t)(n - b->cap));
	b->data = p;
	b->cap = n;
	return 0;
}

/* a zeroed head, counted */
static int msg_alloc(struct conn *c, struct http_msg **m)
{
	if (*m)
		return 0;
	*m = calloc(1, sizeof(**m));
	if (!*m)
		return -ENOMEM;
	spare_count(spare_of(c), sizeof(**m));
	return 0;
}

static void msg_free(struct conn *c, struct http_msg **m)
{
	if (!*m)
		return;
	free(*m);
	*m = NULL;
	spare_count(spare_of(c), -(int64_t)sizeof(**m));
}

/* the rewritten request head, kept for retries (and scratch for the response head) */
static uint32_t req_head_size(const struct conn *c)
{
	return c->cf->max_header_size + 1024;
}

int conn_mem_exchange(struct conn *c)
{
	if (msg_alloc(c, &c->msg) || msg_alloc(c, &c->rmsg))
		return -ENOMEM;
	if (!c->req_head) {
		c->req_head = malloc(req_head_size(c));
		if (!c->req_head)
			return -ENOMEM;
		spare_count(spare_of(c), req_head_size(c));
	}
	if (conn_mem_full(c, &c->req.out) || conn_mem_full(c, &c->resp.in) ||
	    conn_mem_full(c, &c->resp.out))
		return -ENOMEM;
	return 0;
}

/* put b back when it holds nothing (a byte still held stays with the connection) */
static void buf_release_empty(struct conn *c, struct buf *b)
{
	if (!buf_len(b))
		spare_buf_put(spare_of(c), b);
}

void conn_mem_idle(struct conn *c)
{
	msg_free(c, &c->msg);
	msg_free(c, &c->rmsg);
	if (c->req_head) {
		free(c->req_head);
		c->req_head = NULL;
		spare_count(spare_of(c), -(int64_t)req_head_size(c));
	}
	c->head_scan = 0;
	buf_release_empty(c, &c->req.in);
	buf_release_empty(c, &c->req.out);
	buf_release_empty(c, &c->resp.in);
	buf_release_empty(c, &c->resp.out);
	if (!c->req.in_pipe)
		flow_close_pipe(c, &c->req);
	if (!c->resp.in_pipe)
		flow_close_pipe(c, &c->resp);
}

void conn_mem_head_idle(struct conn *c)
{
	if (!buf_len(&c->req.in))
		spare_buf_put(spare_of(c), &c->req.in);
	c->head_scan = 0;
}

void conn_mem_free(struct conn *c)
{
	conn_mem_idle(c);
	spare_buf_put(spare_of(c), &c->req.in);
	spare_buf_put(spare_of(c), &c->req.out);
	spare_buf_put(spare_of(c), &c->resp.in);
	spare_buf_put(spare_of(c), &c->resp.out);
}
