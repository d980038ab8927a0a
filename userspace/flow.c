// SPDX-License-Identifier: MIT
/*
 * flow.c - the body relay of one direction of a connection, by exact framing: bytes that came
 * with the head are copied from the head buffer, the rest moves with splice(2) through a pipe
 * (or through the kernel path) in spans whose length is known before the first byte moves
 * (Content-Length, the current chunk's data, or until close/tunnel).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn-t.h"
#include "conn.h"
#include "flow.h"
#include "kernel_path.h"
#include "log.h"
#include "stats.h"
#include "tls.h"
#include "transport.h"

void flow_close_pipe(struct flow *f)
{
	if (f->pipe_r >= 0)
		close(f->pipe_r);
	if (f->pipe_w >= 0)
		close(f->pipe_w);
	f->pipe_r = f->pipe_w = -1;
	f->in_pipe = 0;
}

int flow_open_pipe(struct conn *c, struct flow *f)
{
	int p[2];

	if (f->pipe_r >= 0)
		return 0;
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -errno;
	/* a larger pipe moves more per splice call; failure only costs speed */
	(void)fcntl(p[1], F_SETPIPE_SZ, (int)c->cf->pipe_size);
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
	f->kmoved = 0;
	f->kspan = 0;
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

/* move framing-approved bytes from f->in to f->out; returns 0 or FLOW_BAD_FRAMING */
static int flow_take_from_in(struct flow *f)
{
	uint32_t avail = buf_len(&f->in), room, n;

	if (!avail || f->body_done)
		return 0;
	room = buf_room(&f->out);
	n = avail < room ? avail : room;
	if (!n)
		return 0;
	if (f->body == B_LENGTH && f->left < n)
		n = (uint32_t)f->left;
	if (f->body == B_CHUNKED) {
		ssize_t r = http_chunked_feed(&f->ch, f->in.data + f->in.start, n);

		if (r < 0)
			return FLOW_BAD_FRAMING;
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

/*
 * flow_run - relay one direction's body (or tunnel) from src to dst until blocked or done.
 * *moved_total accumulates body bytes the daemon moved (for stats and fairness); bytes the
 * kernel moved are in f->kmoved.
 */
int flow_run(struct conn *c, struct flow *f, uint64_t *moved_total, int *progress)
{
	for (;;) {
		int rc;

		/* body bytes that came with the head go out in the same send as the head */
		if (buf_len(&f->out) && buf_len(&f->in) && !f->in_pipe && f->body != B_NONE &&
		    !f->body_done) {
			uint32_t before = buf_len(&f->out);

			if (flow_take_from_in(f))
				return FLOW_BAD_FRAMING;
			*moved_total += buf_len(&f->out) - before;
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
			*moved_total += (uint64_t)r;
			stats_add(f == &c->req ? &g_stats.splice_bytes_up
					       : &g_stats.splice_bytes_down,
				  (uint64_t)r);
			*progress = 1;
		}
		if (f->kspan)
			kernel_account(f, progress);
		if (f->body_done || f->body == B_NONE) {
			if (f->kspan)
				log_debug("%s: kernel span done: read %llu seen %llu passed %llu "
					  "kern %llu user_fwd %llu trims %llu",
					  c->peer,
					  (unsigned long long)(f->src->read - f->src->base),
					  (unsigned long long)f->src->k.st->seen,
					  (unsigned long long)f->src->k.st->passed,
					  (unsigned long long)f->src->k.st->kern_fwd,
					  (unsigned long long)f->src->k.st->user_fwd,
					  (unsigned long long)f->src->k.st->trims);
			f->body_done = 1;
			f->kspan = 0;
			return FLOW_DONE;
		}
		if (c->run_budget >= RUN_BUDGET) {
			conn_queue(c);
			return FLOW_BLOCKED;
		}
		if (buf_len(&f->in)) {
			uint32_t before = buf_len(&f->out);

			if (flow_take_from_in(f))
				return FLOW_BAD_FRAMING;
			*moved_total += buf_len(&f->out) - before;
			if (buf_len(&f->out) != before || f->body_done)
				continue;
			/* chunked walker needs more bytes than are buffered: read below */
		}
		if (f->kspan && !buf_len(&f->in)) {
			/* everything the daemon was given is written: the verdict may go on */
			__atomic_store_n(&f->src->k.st->user_fwd, f->src->read - f->src->base,
					 __ATOMIC_RELEASE);
		} else if (!f->kspan && !buf_len(&f->in) && !f->in_pipe && kernel_wanted(c, f) &&
			   !kernel_pair(c)) {
			kernel_open(c, f);
			continue;
		}
		if (f->src_eof) {
			if (f->kspan && !kernel_src_drained(c, f))
				return FLOW_BLOCKED;
			if (f->kspan)
				kernel_account(f, progress);
			if (f->body == B_EOF) {
				f->body_done = 1;
				continue;
			}
			if (f->body == B_TUNNEL) {
				if (!f->dst_shut) {
					shutdown(*f->dst->fd, SHUT_WR);
					f->dst_shut = 1;
				}
				f->body_done = 1;
				f->kspan = 0;
				return FLOW_DONE;
			}
			if (f->body_done)
				continue;
			return FLOW_EARLY_EOF;
		}
		if (c->hold && conn_hold_phase(c))
			return FLOW_BLOCKED; /* live upgrade: drain what is here, read no more */
		if (transport_rcv_pipe_ok(f->src) && transport_snd_pipe_ok(f->dst)) {
			uint64_t span = flow_span(f);

			if (span && !buf_len(&f->in) && f->src->rd_empty)
				return FLOW_BLOCKED;
			if (span && !buf_len(&f->in) && !flow_open_pipe(c, f)) {
				size_t want =
					span < c->cf->pipe_size ? (size_t)span : c->cf->pipe_size;
				ssize_t r = transport_rcv_pipe(c, f->src, f->pipe_w, want);

				if (r == -EAGAIN)
					return FLOW_BLOCKED;
				if (r < 0)
					return FLOW_ERR_SRC;
				if (r == 0) {
					f->src_eof = 1;
					continue;
				}
				f->in_pipe += (uint32_t)r;
				c->paths |= CONN_PATH_SPLICE;
				c->run_budget += (uint64_t)r;
				flow_account(f, (uint64_t)r);
				*progress = 1;
				continue;
			}
		}
		{
			uint32_t room = buf_room(&f->in);
			ssize_t r;

			if (!room)
				return FLOW_BAD_FRAMING; /* a chunk line longer than the buffer */
			r = transport_recv(c, f->src, f->in.data + f->in.end, room);
			if (r == -EAGAIN) {
				/* an idle tunnel needs no polling: its EOF comes as EPOLLRDHUP */
				if (f->kspan && f->body != B_TUNNEL)
					c->kpoll = 1;
				return FLOW_BLOCKED;
			}
			if (r < 0)
				return FLOW_ERR_SRC;
			if (r == 0) {
				f->src_eof = 1;
				continue;
			}
			f->in.end += (uint32_t)r;
			c->run_budget += (uint64_t)r;
			*progress = 1;
		}
	}
}
