// SPDX-License-Identifier: MIT
/*
 * flow.c - the body relay of one direction of a connection, by exact framing: bytes that came
 * with the head are copied from the head buffer, the rest moves with splice(2) through a pipe
 * (or through the kernel path) in spans whose length is known before the first byte moves
 * (Content-Length, the current chunk's data, or until close/tunnel).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn-t.h"
#include "conn.h"
#include "flow.h"
#include "kernel_path.h"
#include "spare.h"
#include "stats.h"
#include "transport.h"

void flow_close_pipe(struct conn *c, struct flow *f)
{
	int p[2] = {f->pipe_r, f->pipe_w};

	/* an empty pipe goes to the worker's spare pool; one holding bytes is closed */
	spare_pipe_put(&c->w->spare, p);
	f->pipe_r = f->pipe_w = -1;
	f->in_pipe = 0;
	f->chunk_crlf = 0;
}

int flow_open_pipe(struct conn *c, struct flow *f)
{
	int p[2];
	int rc;

	if (f->pipe_r >= 0)
		return 0;
	rc = spare_pipe_get(&c->w->spare, p);
	if (rc)
		return rc;
	f->pipe_r = p[0];
	f->pipe_w = p[1];
	return 0;
}

void flow_reset_body(struct flow *f)
{
	f->body = B_NONE;
	f->left = 0;
	memset(&f->ch, 0, sizeof(f->ch));
	f->body_done = 0;
	f->moved = 0;
	f->kern_moved = 0;
	f->kernel_span = 0;
	f->limit = 0;
	f->chunk_out = 0;
	f->chunk_crlf = 0;
}

/* span that can move without looking at it: known length, chunk data, or unbounded */
static uint64_t flow_span(const struct flow *f)
{
	switch (f->body) {
	case B_LENGTH:
		return f->left;
	case B_CHUNKED:
		return http_chunked_in_data(&f->ch) ? f->ch.left : 0;
	case B_EOF:
	case B_TUNNEL:
		return UINT64_MAX;
	default:
		return 0;
	}
}

/* account n body bytes moved without being parsed */
void flow_account(struct flow *f, uint64_t n)
{
	f->moved += n;
	if (f->body == B_LENGTH) {
		f->left -= n;
		if (!f->left)
			f->body_done = 1;
	} else if (f->body == B_CHUNKED) {
		http_chunked_skip(&f->ch, n);
	}
}

/* chunk-size line of an n-byte chunk into line (CHUNK_LINE_MAX bytes); its length */
#define CHUNK_LINE_MAX 20
static int chunk_line(char *line, uint64_t n)
{
	return snprintf(line, CHUNK_LINE_MAX, "%llx\r\n", (unsigned long long)n);
}

/* a body that runs until close, re-framed: the buffered bytes go out as one chunk (its size
 * line, the bytes, CRLF) */
static void flow_take_chunk(struct flow *f, uint32_t avail, uint32_t room)
{
	char line[CHUNK_LINE_MAX];
	uint32_t n;
	int hl;

	if (room <= CHUNK_LINE_MAX + 2)
		return; /* the destination takes what is queued first */
	n = avail < room - CHUNK_LINE_MAX - 2 ? avail : room - CHUNK_LINE_MAX - 2;
	hl = chunk_line(line, n);
	buf_append(&f->out, line, (uint32_t)hl);
	buf_append(&f->out, f->in.data + f->in.start, n);
	buf_append(&f->out, "\r\n", 2);
	buf_consume(&f->in, n);
	flow_account(f, n);
}

/* move framing-approved bytes from f->in to f->out; returns 0, FLOW_BAD_FRAMING, or
 * FLOW_TOO_LARGE (nothing of the chunk that crosses f->limit is passed on) */
static int flow_take_from_in(struct flow *f)
{
	uint32_t avail = buf_len(&f->in), room, n;

	if (!avail || f->body_done)
		return 0;
	room = buf_room(&f->out);
	if (f->chunk_out) {
		flow_take_chunk(f, avail, room);
		return 0;
	}
	n = avail < room ? avail : room;
	if (!n)
		return 0;
	if (f->body == B_LENGTH && f->left < n)
		n = (uint32_t)f->left;
	if (f->body == B_CHUNKED) {
		ssize_t r = http_chunked_feed(&f->ch, f->in.data + f->in.start, n);

		if (r < 0)
			return FLOW_BAD_FRAMING;
		/* every size line passes here (spliced spans only move chunk data): what a chunk
		 * announces counts at once, before its data moves */
		if (f->limit && f->ch.data > f->limit)
			return FLOW_TOO_LARGE;
		n = (uint32_t)r;
		f->moved += n;
		if (f->ch.done)
			f->body_done = 1;
	} else {
		flow_account(f, n);
	}
	if (n) {
		buf_append(&f->out, f->in.data + f->in.start, n);
		buf_consume(&f->in, n);
	}
	return 0;
}

/* internal results of the steps of flow_run */
enum {
	FLOW_CONTINUE = -10, /* start over from the first step */
	FLOW_NEXT = -11,     /* this step has nothing to do: the next one runs */
};

/* flow_take_buffered - pass what the framing allows of the buffered source bytes to out:
 * FLOW_CONTINUE when bytes moved or the body ended, FLOW_NEXT when nothing could (the chunked
 * walker needs more bytes than are buffered), FLOW_BAD_FRAMING, FLOW_TOO_LARGE */
static int flow_take_buffered(struct flow *f, uint64_t *moved)
{
	uint32_t before = buf_len(&f->out);
	int rc;

	if (!buf_len(&f->in))
		return FLOW_NEXT;
	rc = flow_take_from_in(f);
	if (rc)
		return rc;
	*moved += buf_len(&f->out) - before;
	return buf_len(&f->out) != before || f->body_done ? FLOW_CONTINUE : FLOW_NEXT;
}

/* step 1, flush: everything the daemon holds for the destination goes out first (the buffer,
 * then the pipe); body bytes that came with the head go out in the same send as the head */
static int flow_flush(struct conn *c, struct flow *f, uint64_t *moved, int *progress)
{
	int rc;

	if (buf_len(&f->out) && buf_len(&f->in) && !f->in_pipe && f->body != B_NONE &&
	    !f->body_done) {
		rc = flow_take_buffered(f, moved);
		if (rc == FLOW_BAD_FRAMING || rc == FLOW_TOO_LARGE)
			return rc;
	}
	rc = transport_flush(c, f->dst, &f->out, progress);
	if (rc == -EAGAIN)
		return FLOW_BLOCKED;
	if (rc < 0)
		return FLOW_ERR_DST;
	while (f->in_pipe) {
		ssize_t r = transport_snd_pipe(c, f->dst, f->pipe_r, f->in_pipe);

		if (r == -EAGAIN)
			return FLOW_BLOCKED;
		if (r < 0)
			return FLOW_ERR_DST;
		f->in_pipe -= (uint32_t)r;
		*moved += (uint64_t)r;
		stats_add(f == &c->req ? &g_stats.splice_bytes_up : &g_stats.splice_bytes_down,
			  (uint64_t)r);
		*progress = 1;
	}
	if (f->chunk_crlf) {
		/* the chunk that went through the pipe ends here */
		f->chunk_crlf = 0;
		buf_append(&f->out, "\r\n", 2);
		*moved += 2;
		rc = transport_flush(c, f->dst, &f->out, progress);
		if (rc == -EAGAIN)
			return FLOW_BLOCKED;
		if (rc < 0)
			return FLOW_ERR_DST;
	}
	return FLOW_NEXT;
}

/* step 2, done: with everything flushed, is the body complete? Else yield when this run used
 * its budget (the worker runs c again after the others). */
static int flow_check_done(struct conn *c, struct flow *f, int *progress)
{
	if (f->kernel_span)
		kernel_account(f, progress);
	if (f->body_done || f->body == B_NONE) {
		kernel_span_end(c, f);
		f->body_done = 1;
		return FLOW_DONE;
	}
	if (c->run_budget >= RUN_BUDGET) {
		conn_queue(c);
		return FLOW_BLOCKED;
	}
	return FLOW_NEXT;
}

/* step 4, kernel window: with the buffer empty, let the verdict go on where a window is open,
 * or open one when this body should go to the kernel */
static int flow_kernel_window(struct conn *c, struct flow *f)
{
	if (buf_len(&f->in))
		return FLOW_NEXT;
	if (f->kernel_span) {
		kernel_caught_up(f);
		return FLOW_NEXT;
	}
	if (!f->in_pipe && kernel_wanted(c, f) && !kernel_pair(c)) {
		kernel_open(c, f);
		return FLOW_CONTINUE;
	}
	return FLOW_NEXT;
}

/* step 5, end of stream: the source is at EOF (once the kernel's bytes of it are through):
 * the end of a body that runs until close, of a tunnel direction (half-close the destination),
 * or a body cut short */
static int flow_end_of_stream(struct conn *c, struct flow *f, uint64_t *moved, int *progress)
{
	if (!f->src_eof)
		return FLOW_NEXT;
	if (f->kernel_span) {
		if (!kernel_src_drained(c, f))
			return FLOW_BLOCKED;
		kernel_account(f, progress);
	}
	switch (f->body) {
	case B_EOF:
		if (f->chunk_out) {
			/* a clean FIN: the last chunk (a reset never gets here: the client sees
			 * a body without its end) */
			buf_append(&f->out, "0\r\n\r\n", 5);
			*moved += 5;
		}
		f->body_done = 1;
		return FLOW_CONTINUE;
	case B_TUNNEL:
		if (!f->dst_shut) {
			shutdown(*f->dst->fd, SHUT_WR);
			f->dst_shut = 1;
		}
		f->body_done = 1;
		f->kernel_span = 0;
		return FLOW_DONE;
	default:
		return f->body_done ? FLOW_CONTINUE : FLOW_EARLY_EOF;
	}
}

/* step 6a, fill the pipe: splice(2) as many bytes as the framing lets move unseen (FLOW_NEXT:
 * nothing to splice now, read into the buffer instead) */
static int flow_fill_pipe(struct conn *c, struct flow *f, uint64_t *moved, int *progress)
{
	uint64_t span = flow_span(f);
	ssize_t r;

	if (!span || buf_len(&f->in))
		return FLOW_NEXT;
	if (f->src->rd_empty)
		return FLOW_BLOCKED;
	if (flow_open_pipe(c, f))
		return FLOW_NEXT;
	r = transport_rcv_pipe(c, f->src, f->pipe_w,
			       span < c->cf->pipe_size ? (size_t)span : c->cf->pipe_size);
	if (r == -EAGAIN)
		return FLOW_BLOCKED;
	if (r < 0)
		return FLOW_ERR_SRC;
	if (r == 0) {
		f->src_eof = 1;
		return FLOW_CONTINUE;
	}
	f->in_pipe += (uint32_t)r;
	if (f->chunk_out) {
		/* the span is one chunk: its size line goes out first (the buffer is flushed
		 * before the pipe), its CRLF once the pipe is empty (flow_flush) */
		char line[CHUNK_LINE_MAX];
		int hl = chunk_line(line, (uint64_t)r);

		buf_append(&f->out, line, (uint32_t)hl);
		*moved += (uint64_t)hl;
		f->chunk_crlf = 1;
	}
	c->paths |= CONN_PATH_SPLICE;
	c->run_budget += (uint64_t)r;
	flow_account(f, (uint64_t)r);
	*progress = 1;
	return FLOW_CONTINUE;
}

/* step 6b, fill the buffer: a head, a chunk-size line, or a body on a socket that cannot
 * splice(2) */
static int flow_fill_buf(struct conn *c, struct flow *f, int *progress)
{
	uint32_t room;
	ssize_t r;

	/* a body read into the buffer gets a whole one (the head buffer it came with is small) */
	if (conn_mem_full(c, &f->in))
		return FLOW_ERR_SRC;
	room = buf_room(&f->in);
	if (!room)
		return FLOW_BAD_FRAMING; /* a chunk line longer than the buffer */
	r = transport_recv(c, f->src, f->in.data + f->in.end, room);
	if (r == -EAGAIN) {
		/* an idle tunnel needs no polling: its EOF comes as EPOLLRDHUP */
		if (f->kernel_span && f->body != B_TUNNEL)
			c->kernel_wait = 1;
		return FLOW_BLOCKED;
	}
	if (r < 0)
		return FLOW_ERR_SRC;
	if (r == 0) {
		f->src_eof = 1;
		return FLOW_CONTINUE;
	}
	f->in.end += (uint32_t)r;
	c->run_budget += (uint64_t)r;
	*progress = 1;
	return FLOW_CONTINUE;
}

/* step 6, fill: read more from the source, unless a live upgrade holds the connection */
static int flow_fill(struct conn *c, struct flow *f, uint64_t *moved, int *progress)
{
	int rc;

	if (c->hold && conn_hold_phase(c))
		return FLOW_BLOCKED; /* live upgrade: drain what is here, read no more */
	if (transport_rcv_pipe_ok(f->src) && transport_snd_pipe_ok(f->dst)) {
		rc = flow_fill_pipe(c, f, moved, progress);
		if (rc != FLOW_NEXT)
			return rc;
	}
	return flow_fill_buf(c, f, progress);
}

/* the steps run in order until one has something to say; FLOW_CONTINUE starts over */
int flow_run(struct conn *c, struct flow *f, uint64_t *moved_total, int *progress)
{
	int rc;

	do {
		rc = flow_flush(c, f, moved_total, progress);
		if (rc == FLOW_NEXT)
			rc = flow_check_done(c, f, progress);
		if (rc == FLOW_NEXT) /* step 3 */
			rc = flow_take_buffered(f, moved_total);
		if (rc == FLOW_NEXT)
			rc = flow_kernel_window(c, f);
		if (rc == FLOW_NEXT)
			rc = flow_end_of_stream(c, f, moved_total, progress);
		if (rc == FLOW_NEXT)
			rc = flow_fill(c, f, moved_total, progress);
	} while (rc == FLOW_CONTINUE);
	return rc;
}
