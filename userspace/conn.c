// SPDX-License-Identifier: MIT
/*
 * conn.c - the connection state machine (see conn.h for the states).
 *
 * Sockets are edge-triggered; every event runs conn_run(), which makes all progress possible
 * until each direction is blocked on EAGAIN (which re-arms its edge) or on the other side.
 * Bodies are relayed by exact framing: bytes that arrived with a head are copied from the head
 * buffer, the rest moves with splice(2) through a pipe, in spans whose length is known before
 * the first byte moves (Content-Length, the current chunk's data, or until close/tunnel).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "http.h"
#include "lb.h"
#include "log.h"
#include "route.h"
#include "worker.h"

#define MAX_TRIES 101
#define RUN_BUDGET (8u << 20) /* bytes moved per conn_run before yielding to others */
#define LINGER_MS 2000

enum conn_state { CS_HEAD, CS_CONNECT, CS_EXCHANGE, CS_TUNNEL, CS_CLOSING };
enum body { B_NONE, B_LENGTH, B_CHUNKED, B_EOF, B_TUNNEL };

struct buf {
	char *data;
	uint32_t start, end, cap;
};

/* one direction: source socket -> destination socket */
struct flow {
	struct buf in;	/* read from the source, not yet consumed */
	struct buf out; /* queued for the destination */
	int pipe_r, pipe_w;
	uint32_t in_pipe; /* bytes in the pipe */
	enum body body;
	uint64_t left; /* B_LENGTH: body bytes still to move */
	struct http_chunked ch;
	uint8_t body_done;
	uint8_t src_eof;
	uint8_t dst_shut;
	uint64_t moved; /* body bytes moved this message */
};

struct conn {
	struct worker *w;
	struct conn *prev, *next;
	struct conn *ready_next;
	struct conn *dead_next; /* on the worker's graveyard, freed after the event batch */
	uint8_t queued;
	uint8_t dead;
	struct listener *l;
	int cfd, ufd;
	struct ep_tag ctag, utag;
	uint32_t uev; /* upstream events seen since connect started */
	char peer[INET6_ADDRSTRLEN];
	enum conn_state st;
	uint64_t deadline;
	struct flow req;       /* client -> upstream */
	struct flow resp;      /* upstream -> client */
	struct http_msg *msg;  /* current request head */
	struct http_msg *rmsg; /* current response head */
	/* current request */
	enum http_method method;
	int req_keepalive;  /* client connection may carry another request */
	int resp_keepalive; /* upstream connection may carry another request */
	int upgrade;	    /* request asked for Upgrade; CONNECT counts too */
	int head_seen;	    /* some bytes of the current request head arrived */
	int resp_started;   /* response bytes were sent to the client */
	int upstream_fresh; /* upstream connection was opened for this request */
	int status;
	char host[128];
	char path[256];
	char method_s[16];
	int version_minor;
	struct pool *pool;
	struct server *srv;
	unsigned ntried;
	uint32_t tried[MAX_TRIES];
	char *req_head; /* rewritten head, kept for retries */
	uint32_t req_head_len;
	uint64_t hash_key;
	uint64_t t_start;
	uint64_t bytes_in, bytes_out; /* this request, from / to the client */
	uint64_t run_budget;
	unsigned requests;
};

static const char *state_name[] = {"head", "connect", "exchange", "tunnel", "closing"};

static int buf_alloc(struct buf *b, uint32_t cap)
{
	b->data = malloc(cap);
	if (!b->data)
		return -ENOMEM;
	b->start = b->end = 0;
	b->cap = cap;
	return 0;
}

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

static void buf_compact(struct buf *b)
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

static int buf_append(struct buf *b, const void *p, uint32_t n)
{
	if (buf_room(b) < n)
		buf_compact(b);
	if (b->cap - b->end < n)
		return -ENOSPC;
	memcpy(b->data + b->end, p, n);
	b->end += n;
	return 0;
}

struct conn *conn_next(struct conn *c)
{
	return c->next;
}

struct conn *conn_ready_next(struct conn *c)
{
	struct conn *next = c->ready_next;

	c->queued = 0;
	c->ready_next = NULL;
	return next;
}

static void flow_close_pipe(struct flow *f)
{
	if (f->pipe_r >= 0)
		close(f->pipe_r);
	if (f->pipe_w >= 0)
		close(f->pipe_w);
	f->pipe_r = f->pipe_w = -1;
	f->in_pipe = 0;
}

static int flow_open_pipe(struct conn *c, struct flow *f)
{
	int p[2];

	if (f->pipe_r >= 0)
		return 0;
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -errno;
	/* a larger pipe moves more per splice call; failure only costs speed */
	(void)fcntl(p[1], F_SETPIPE_SZ, (int)c->w->cf->pipe_size);
	f->pipe_r = p[0];
	f->pipe_w = p[1];
	return 0;
}

static void flow_reset_body(struct flow *f)
{
	f->body = B_NONE;
	f->left = 0;
	memset(&f->ch, 0, sizeof(f->ch));
	f->body_done = 0;
	f->moved = 0;
}

static void conn_queue(struct conn *c)
{
	if (c->queued)
		return;
	c->queued = 1;
	c->ready_next = c->w->ready;
	c->w->ready = c;
}

static void set_deadline(struct conn *c, uint32_t ms)
{
	c->deadline = c->w->now_ms + ms;
}

/* ---- access log ---- */

static void access_log(struct conn *c)
{
	char line[1024];
	char tbuf[64];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (g_access_fd < 0)
		return;
	gmtime_r(&now, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line),
		     "%s %s %s \"%s %s HTTP/1.%d\" host=%s status=%d bytes_in=%llu "
		     "bytes_out=%llu backend=%s/%s duration_ms=%llu\n",
		     tbuf, c->l->name, c->peer, c->method_s[0] ? c->method_s : "-",
		     c->path[0] ? c->path : "-", c->version_minor, c->host[0] ? c->host : "-",
		     c->status, (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
		     c->pool ? c->pool->name : "-", c->srv ? c->srv->name : "-",
		     (unsigned long long)(c->w->now_ms - c->t_start));
	if (n > (int)sizeof(line))
		n = sizeof(line);
	/* one write(2) per line: O_APPEND keeps lines of concurrent workers whole */
	if (write(g_access_fd, line, (size_t)n) == -1) {
		/* nothing sensible to do: logging must not stop the proxy */
	}
}

/* ---- teardown ---- */

static void upstream_close(struct conn *c)
{
	if (c->ufd < 0)
		return;
	epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
	close(c->ufd);
	c->ufd = -1;
	if (c->srv) {
		atomic_fetch_sub(&c->srv->conn_active, 1);
		lb_conn_release(&c->srv->pool->lb, (int)(c->srv - c->srv->pool->servers));
	}
	c->resp_keepalive = 0;
	/* data from an old upstream must never be mistaken for the next response */
	c->resp.in.start = c->resp.in.end = 0;
	c->resp.out.start = c->resp.out.end = 0;
	c->req.out.start = c->req.out.end = 0;
	flow_close_pipe(&c->req);
	flow_close_pipe(&c->resp);
}

void conn_free(struct conn *c)
{
	struct worker *w = c->w;

	if (c->dead)
		return;
	upstream_close(c);
	if (c->cfd >= 0) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->cfd, NULL);
		close(c->cfd);
		atomic_fetch_sub(&g_nconns, 1);
	}
	flow_close_pipe(&c->req);
	flow_close_pipe(&c->resp);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->queued) {
		struct conn **pp = &w->ready;

		while (*pp && *pp != c)
			pp = &(*pp)->ready_next;
		if (*pp)
			*pp = c->ready_next;
	}
	/* the same epoll batch may still hold an event for the other socket of this
	 * connection: keep the memory until the batch is done (conn_reap) */
	c->dead = 1;
	c->dead_next = w->graveyard;
	w->graveyard = c;
}

static void conn_release(struct conn *c)
{
	free(c->req.in.data);
	free(c->req.out.data);
	free(c->resp.in.data);
	free(c->resp.out.data);
	free(c->msg);
	free(c->rmsg);
	free(c->req_head);
	free(c);
}

void conn_reap(struct worker *w)
{
	while (w->graveyard) {
		struct conn *c = w->graveyard;

		w->graveyard = c->dead_next;
		conn_release(c);
	}
}

/* ---- responses generated by spliced ---- */

static const char *status_text(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

/*
 * conn_fail_request - answer the client with a small error response and close after it.
 * The body never names a backend: only the status and a fixed phrase.
 */
static int conn_fail_request(struct conn *c, int status)
{
	char out[512];
	char body[128];
	int bl, n;

	upstream_close(c);
	c->status = status;
	if (c->resp_started) {
		/* part of a response went out already: the only honest signal left is a close */
		access_log(c);
		conn_free(c);
		return -1;
	}
	bl = snprintf(body, sizeof(body), "%d %s\n", status, status_text(status));
	n = snprintf(out, sizeof(out),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
		     "Connection: close\r\nCache-Control: no-store\r\n\r\n%s",
		     status, status_text(status), bl, body);
	c->resp.out.start = c->resp.out.end = 0;
	buf_append(&c->resp.out, out, (uint32_t)n);
	c->bytes_out = (uint64_t)n;
	access_log(c);
	c->st = CS_CLOSING;
	c->req_keepalive = 0;
	set_deadline(c, c->w->cf->timeout_client_ms);
	return 1;
}

/* ---- I/O helpers ---- */

/* returns bytes written (> 0), 0 on EAGAIN, -errno on error */
static ssize_t send_some(int fd, const char *p, size_t n)
{
	ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (r == -1)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	return r;
}

/* returns bytes read (> 0), 0 on EOF, -EAGAIN, or -errno */
static ssize_t recv_some(int fd, char *p, size_t n)
{
	ssize_t r = recv(fd, p, n, MSG_DONTWAIT);

	if (r == -1)
		return errno == EINTR ? -EAGAIN : -errno;
	return r;
}

static int flush_buf(int fd, struct buf *b, int *progress)
{
	while (buf_len(b)) {
		ssize_t r = send_some(fd, b->data + b->start, buf_len(b));

		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EAGAIN;
		buf_consume(b, (uint32_t)r);
		*progress = 1;
	}
	return 0;
}

/* ---- body relay ---- */

enum flow_rc {
	FLOW_BLOCKED = 0, /* waiting on a socket (edge re-armed) */
	FLOW_DONE = 1,	  /* body complete and flushed */
	FLOW_ERR_SRC = -1,
	FLOW_ERR_DST = -2,
	FLOW_BAD_FRAMING = -3,
	FLOW_EARLY_EOF = -4,
};

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
static void flow_account(struct flow *f, uint64_t n)
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
 * *moved_total accumulates bytes written to dst (for stats and fairness).
 */
static int flow_run(struct conn *c, struct flow *f, int src, int dst, uint64_t *moved_total,
		    int *progress)
{
	for (;;) {
		int rc;

		rc = flush_buf(dst, &f->out, progress);
		if (rc == -EAGAIN)
			return FLOW_BLOCKED;
		if (rc < 0)
			return FLOW_ERR_DST;
		while (f->in_pipe) {
			ssize_t r = splice(f->pipe_r, NULL, dst, NULL, f->in_pipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

			if (r == -1) {
				if (errno == EAGAIN || errno == EINTR)
					return FLOW_BLOCKED;
				return FLOW_ERR_DST;
			}
			f->in_pipe -= (uint32_t)r;
			*moved_total += (uint64_t)r;
			*progress = 1;
		}
		if (f->body_done || f->body == B_NONE) {
			f->body_done = 1;
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
			if (buf_len(&f->out) == before && !f->body_done && f->body != B_CHUNKED)
				return FLOW_BLOCKED; /* out full */
			if (buf_len(&f->out) != before || f->body_done)
				continue;
			/* chunked walker needs more bytes than are buffered: read below */
		}
		if (f->src_eof) {
			if (f->body == B_EOF) {
				f->body_done = 1;
				continue;
			}
			if (f->body == B_TUNNEL) {
				if (!f->dst_shut) {
					shutdown(dst, SHUT_WR);
					f->dst_shut = 1;
				}
				f->body_done = 1;
				return FLOW_DONE;
			}
			return FLOW_EARLY_EOF;
		}
		{
			uint64_t span = flow_span(f);

			if (span && !buf_len(&f->in) && !flow_open_pipe(c, f)) {
				size_t want = span < c->w->cf->pipe_size ? (size_t)span
									 : c->w->cf->pipe_size;
				ssize_t r = splice(src, NULL, f->pipe_w, NULL, want,
						   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

				if (r == -1) {
					if (errno == EAGAIN || errno == EINTR)
						return FLOW_BLOCKED;
					return FLOW_ERR_SRC;
				}
				if (r == 0) {
					f->src_eof = 1;
					continue;
				}
				f->in_pipe += (uint32_t)r;
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
			r = recv_some(src, f->in.data + f->in.end, room);
			if (r == -EAGAIN)
				return FLOW_BLOCKED;
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

/* ---- request handling ---- */

static void span_copy(char *dst, size_t cap, const char *base, struct http_span s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(dst, base + s.off, n);
	dst[n] = '\0';
}

static int upstream_connect(struct conn *c);

/* pick a server not tried yet; -1 when none is usable */
static struct server *pick_server(struct conn *c)
{
	struct pool *p = c->pool;
	uint8_t usable_stack[64] = {0};
	uint8_t *usable =
		p->nservers <= sizeof(usable_stack) ? usable_stack : calloc(p->nservers, 1);
	int idx;

	if (!usable)
		return NULL;
	for (unsigned i = 0; i < p->nservers; i++) {
		struct server *s = &p->servers[i];

		usable[i] = atomic_load(&s->failed_until_ms) <= c->w->now_ms;
		for (unsigned t = 0; t < c->ntried && usable[i]; t++)
			if (c->tried[t] == s->id)
				usable[i] = 0;
	}
	idx = lb_pick(&p->lb, usable, c->hash_key);
	if (usable != usable_stack)
		free(usable);
	return idx < 0 ? NULL : &p->servers[idx];
}

/* a connect attempt failed: remember, mark the server, try another or answer 503 */
static int connect_failed(struct conn *c, const char *why)
{
	struct server *s = c->srv;

	if (s) {
		atomic_fetch_add(&s->conn_fail, 1);
		atomic_store(&s->failed_until_ms, c->w->now_ms + s->pool->fail_timeout_ms);
		log_warnx("pool %s server %s: connect failed (%s), marked down for %u ms",
			  s->pool->name, s->name, why, s->pool->fail_timeout_ms);
	}
	upstream_close(c);
	c->srv = NULL;
	if (c->ntried > c->pool->retries)
		return conn_fail_request(c, 503);
	return upstream_connect(c);
}

static int upstream_connect(struct conn *c)
{
	struct server *s = pick_server(c);
	struct epoll_event ev;
	int fd, one = 1;

	if (!s)
		return conn_fail_request(c, 503);
	c->srv = s;
	if (c->ntried < MAX_TRIES)
		c->tried[c->ntried++] = s->id;
	fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("socket");
		c->srv = NULL;
		return conn_fail_request(c, 503);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ufd = fd;
	atomic_fetch_add(&s->conn_active, 1);
	atomic_fetch_add(&s->conn_total, 1);
	lb_conn_acquire(&s->pool->lb, (int)(s - s->pool->servers));
	c->utag.fd = fd;
	c->uev = 0;
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = &c->utag;
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		log_warn("epoll_ctl");
		return conn_fail_request(c, 503);
	}
	c->upstream_fresh = 1;
	c->st = CS_CONNECT;
	set_deadline(c, c->pool->connect_timeout_ms);
	if (connect(fd, (struct sockaddr *)&s->addr, s->addrlen) == -1 && errno != EINPROGRESS)
		return connect_failed(c, strerror(errno));
	return 1;
}

/* the upstream is connected (or reused): queue the head and start the exchange */
static int start_exchange(struct conn *c)
{
	c->req.out.start = c->req.out.end = 0;
	if (buf_append(&c->req.out, c->req_head, c->req_head_len))
		return conn_fail_request(c, 431);
	c->st = CS_EXCHANGE;
	memset(c->rmsg, 0, sizeof(*c->rmsg));
	flow_reset_body(&c->resp);
	c->resp.src_eof = 0;
	atomic_fetch_add(&c->srv->requests, 1);
	set_deadline(c, c->w->cf->timeout_server_ms);
	return 1;
}

static int handle_request(struct conn *c, int head_len)
{
	struct http_msg *m = c->msg;
	const char *b = c->req.in.data + c->req.in.start;
	const struct route *r;
	struct http_rewrite rw;
	const char *connhdr = NULL;
	int n;

	c->t_start = c->w->now_ms;
	c->method = m->method;
	c->version_minor = m->version_minor;
	span_copy(c->method_s, sizeof(c->method_s), b, m->method_s);
	span_copy(c->path, sizeof(c->path), b, m->target);
	if (route_host_normalize(b + m->host.off, m->host.len, c->host, sizeof(c->host)) < 0)
		c->host[0] = '\0';
	c->bytes_in = (uint64_t)head_len;
	c->bytes_out = 0;
	c->resp_started = 0;
	c->status = 0;
	c->requests++;
	c->req_keepalive = !(m->flags & HTTP_F_CONN_CLOSE) &&
			   (m->version_minor == 1 || (m->flags & HTTP_F_CONN_KEEPALIVE));
	c->upgrade = (m->method == HTTP_M_CONNECT) ||
		     ((m->flags & HTTP_F_UPGRADE) && (m->flags & HTTP_F_CONN_UPGRADE));

	r = route_match(c->l, b + m->host.off, m->host.len, b + m->path.off, m->path.len);
	if (!r) {
		c->pool = NULL;
		c->srv = NULL;
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, 404);
	}

	if (r->pool->hash_key == HASH_HEADER) {
		int h = http_find_header(b, m, r->pool->hash_header);

		c->hash_key = h >= 0 ? lb_hash(b + m->hdrs[h].value.off, m->hdrs[h].value.len)
				     : lb_hash(c->peer, strlen(c->peer));
	} else {
		c->hash_key = lb_hash(c->peer, strlen(c->peer));
	}

	if (c->upgrade)
		connhdr = m->method == HTTP_M_CONNECT ? NULL : "upgrade";
	memset(&rw, 0, sizeof(rw));
	rw.client_ip = c->peer;
	rw.proto = "http";
	rw.via = "1.1 spliced";
	rw.connection = connhdr;
	rw.keep_upgrade = c->upgrade;
	n = http_rewrite_head(b, m, 1, &rw, c->req_head, c->w->cf->max_header_size + 1024);
	if (n < 0) {
		buf_consume(&c->req.in, (uint32_t)head_len);
		return conn_fail_request(c, 431);
	}
	c->req_head_len = (uint32_t)n;

	flow_reset_body(&c->req);
	switch (m->framing) {
	case HTTP_BODY_LENGTH:
		c->req.body = m->content_length ? B_LENGTH : B_NONE;
		c->req.left = m->content_length;
		break;
	case HTTP_BODY_CHUNKED:
		c->req.body = B_CHUNKED;
		break;
	default:
		c->req.body = B_NONE;
		break;
	}
	buf_consume(&c->req.in, (uint32_t)head_len);
	if (c->req.body == B_CHUNKED && buf_len(&c->req.in)) {
		/* chunk framing that arrived with the head is checked before any backend sees
		 * the request; later framing errors abort the upstream connection */
		struct http_chunked probe = c->req.ch;

		if (http_chunked_feed(&probe, c->req.in.data + c->req.in.start,
				      buf_len(&c->req.in)) < 0)
			return conn_fail_request(c, 400);
	}

	c->ntried = 0;
	/* a keep-alive upstream to the same pool carries the next request; a new pool means
	 * a new upstream connection */
	if (c->ufd >= 0 && c->pool == r->pool && c->resp_keepalive && c->srv && !c->resp.src_eof &&
	    !(c->uev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		c->upstream_fresh = 0;
		c->tried[c->ntried++] = c->srv->id;
		return start_exchange(c);
	}
	upstream_close(c);
	c->pool = r->pool;
	c->srv = NULL;
	return upstream_connect(c);
}

static int step_head(struct conn *c)
{
	struct buf *in = &c->req.in;
	uint32_t max_head = c->w->cf->max_header_size;

	for (;;) {
		if (buf_len(in)) {
			int r = http_parse_request(in->data + in->start, buf_len(in), max_head,
						   c->msg);

			if (r > 0)
				return handle_request(c, r);
			if (r < 0) {
				log_debug("%s: request rejected with %d", c->peer, -r);
				c->method_s[0] = c->path[0] = c->host[0] = '\0';
				c->pool = NULL;
				c->srv = NULL;
				c->t_start = c->w->now_ms;
				in->start = in->end = 0;
				return conn_fail_request(c, -r);
			}
		}
		if (in->start) {
			/* the parser works on offsets from the head start: keep it at 0 */
			buf_compact(in);
			memset(c->msg, 0, sizeof(*c->msg));
		}
		if (in->end == in->cap) {
			c->t_start = c->w->now_ms;
			return conn_fail_request(c, 431);
		}
		{
			ssize_t r = recv_some(c->cfd, in->data + in->end, in->cap - in->end);

			if (r == -EAGAIN)
				return 0;
			if (r <= 0) {
				if (r < 0 || buf_len(in))
					log_debug("%s: client closed mid-head", c->peer);
				conn_free(c);
				return -1;
			}
			if (!c->head_seen) {
				c->head_seen = 1;
				set_deadline(c, c->w->cf->timeout_header_ms);
			}
			in->end += (uint32_t)r;
		}
	}
}

static int step_connect(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!(c->uev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return 0;
	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err)
		return connect_failed(c, strerror(err));
	if (c->uev & EPOLLHUP)
		return connect_failed(c, "hang-up");
	return start_exchange(c);
}

/* request (and response) complete: log, then next request or close */
static int finish_request(struct conn *c)
{
	access_log(c);
	if (c->srv) {
		atomic_fetch_add(&c->srv->bytes_up, c->bytes_in);
		atomic_fetch_add(&c->srv->bytes_down, c->bytes_out);
	}
	if (!c->resp_keepalive || !c->req.body_done)
		upstream_close(c);
	if (!c->req_keepalive || !c->req.body_done) {
		/* a response that ended before its request did leaves the client stream
		 * at an unknown position: close (after a lingering drain) */
		c->st = CS_CLOSING;
		set_deadline(c, c->w->cf->timeout_client_ms);
		return 1;
	}
	c->st = CS_HEAD;
	c->head_seen = 0;
	memset(c->msg, 0, sizeof(*c->msg));
	set_deadline(c, c->w->cf->timeout_idle_ms);
	return 1;
}

/* the upstream answered nothing: retry an idempotent request on a fresh connection */
static int retry_or_fail(struct conn *c, int status, const char *why)
{
	int idempotent = c->method == HTTP_M_GET || c->method == HTTP_M_HEAD ||
			 c->method == HTTP_M_OPTIONS || c->method == HTTP_M_PUT ||
			 c->method == HTTP_M_DELETE || c->method == HTTP_M_TRACE;

	if (!c->resp_started && buf_len(&c->resp.in) == 0 && c->req.moved == 0 &&
	    (idempotent || c->req.body == B_NONE) && c->ntried <= c->pool->retries) {
		log_debug("%s: upstream %s/%s %s, retrying", c->peer, c->pool->name,
			  c->srv ? c->srv->name : "-", why);
		if (c->upstream_fresh && c->srv)
			atomic_fetch_add(&c->srv->conn_fail, 1);
		/* nothing of the body moved yet (req.moved == 0): the flow state still
		 * describes the whole body, and start_exchange() queues the head again */
		upstream_close(c);
		c->srv = NULL;
		return upstream_connect(c);
	}
	log_warnx("%s: upstream %s/%s %s", c->peer, c->pool->name, c->srv ? c->srv->name : "-",
		  why);
	return conn_fail_request(c, status);
}

static int response_head(struct conn *c, int *progress)
{
	struct buf *in = &c->resp.in;
	struct http_msg *m = c->rmsg;
	uint32_t max_head = c->w->cf->max_header_size;

	for (;;) {
		if (buf_len(in)) {
			int r = http_parse_response(in->data + in->start, buf_len(in), max_head,
						    c->method, m);

			if (r < 0)
				return conn_fail_request(c, 502);
			if (r > 0) {
				const char *b = in->data + in->start;
				struct http_rewrite rw;
				char *tmp = c->req_head; /* free again: the request head went out */
				int informational =
					m->status >= 100 && m->status < 200 && m->status != 101;
				int tunnel = (m->status == 101 && c->upgrade &&
					      c->method != HTTP_M_CONNECT) ||
					     (c->method == HTTP_M_CONNECT && m->status >= 200 &&
					      m->status < 300);
				int n;

				if (m->status == 101 && !tunnel)
					return conn_fail_request(c, 502);
				c->status = m->status;
				memset(&rw, 0, sizeof(rw));
				rw.via = "1.1 spliced";
				rw.keep_upgrade = tunnel;
				if (tunnel)
					rw.connection = m->status == 101 ? "upgrade" : NULL;
				else if (!informational)
					rw.connection = c->req_keepalive ? NULL : "close";
				if (!informational && !tunnel) {
					c->resp_keepalive = !(m->flags & HTTP_F_CONN_CLOSE) &&
							    m->version_minor == 1 &&
							    m->framing != HTTP_BODY_UNTIL_CLOSE;
					if (m->framing == HTTP_BODY_UNTIL_CLOSE) {
						/* the client can only see the end as a close */
						c->req_keepalive = 0;
						rw.connection = "close";
					} else if (c->req_keepalive && c->version_minor == 0) {
						rw.connection = "keep-alive";
					}
				}
				n = http_rewrite_head(b, m, 0, &rw, tmp, max_head + 1024);
				if (n < 0 || buf_append(&c->resp.out, tmp, (uint32_t)n))
					return conn_fail_request(c, 502);
				buf_consume(in, (uint32_t)r);
				c->bytes_out += (uint64_t)n;
				c->resp_started = 1;
				*progress = 1;
				if (informational) {
					memset(m, 0, sizeof(*m));
					continue;
				}
				flow_reset_body(&c->resp);
				if (tunnel) {
					c->resp.body = B_TUNNEL;
					flow_reset_body(&c->req);
					c->req.body = B_TUNNEL;
					c->st = CS_TUNNEL;
					set_deadline(c, c->w->cf->timeout_tunnel_ms);
					return 1;
				}
				switch (m->framing) {
				case HTTP_BODY_LENGTH:
					c->resp.body = m->content_length ? B_LENGTH : B_NONE;
					c->resp.left = m->content_length;
					break;
				case HTTP_BODY_CHUNKED:
					c->resp.body = B_CHUNKED;
					break;
				case HTTP_BODY_UNTIL_CLOSE:
					c->resp.body = B_EOF;
					break;
				default:
					c->resp.body = B_NONE;
				}
				set_deadline(c, c->w->cf->timeout_client_ms);
				return 1;
			}
		}
		if (in->start) {
			buf_compact(in);
			memset(m, 0, sizeof(*m));
		}
		if (in->end == in->cap)
			return conn_fail_request(c, 502);
		{
			ssize_t r = recv_some(c->ufd, in->data + in->end, in->cap - in->end);

			if (r == -EAGAIN)
				return 0;
			if (r <= 0) {
				c->resp.src_eof = 1;
				if (buf_len(in))
					return conn_fail_request(c, 502);
				return retry_or_fail(c, 502,
						     r == 0 ? "closed before responding"
							    : strerror((int)-r));
			}
			in->end += (uint32_t)r;
			*progress = 1;
		}
	}
}

static int step_exchange(struct conn *c)
{
	int progress = 0;
	int rc;

	/* request body: client -> upstream */
	if (!c->req.body_done || buf_len(&c->req.out)) {
		uint64_t moved = 0;

		rc = flow_run(c, &c->req, c->cfd, c->ufd, &moved, &progress);
		c->bytes_in += moved;
		if (rc == FLOW_ERR_DST || rc == FLOW_ERR_SRC) {
			if (rc == FLOW_ERR_DST && !c->resp_started)
				return retry_or_fail(c, 502, "reset while receiving the request");
			conn_free(c);
			return -1;
		}
		if (rc == FLOW_EARLY_EOF) {
			log_debug("%s: client closed during the request body", c->peer);
			conn_free(c);
			return -1;
		}
		if (rc == FLOW_BAD_FRAMING) {
			if (!c->resp_started)
				return conn_fail_request(c, 400);
			conn_free(c);
			return -1;
		}
	}
	/* response head, then body: upstream -> client */
	if (c->resp.body == B_NONE && !c->resp.body_done && c->rmsg->head_len == 0) {
		rc = response_head(c, &progress);
		if (rc < 0)
			return -1;
		if (c->st != CS_EXCHANGE)
			return 1;
		if (c->rmsg->head_len == 0)
			return progress;
	}
	{
		uint64_t moved = 0;

		rc = flow_run(c, &c->resp, c->ufd, c->cfd, &moved, &progress);
		c->bytes_out += moved;
		if (rc == FLOW_ERR_DST) {
			conn_free(c);
			return -1;
		}
		if (rc == FLOW_ERR_SRC || rc == FLOW_EARLY_EOF || rc == FLOW_BAD_FRAMING) {
			log_warnx("%s: upstream %s/%s broke the response body", c->peer,
				  c->pool->name, c->srv ? c->srv->name : "-");
			c->status = 502;
			access_log(c);
			conn_free(c);
			return -1;
		}
		if (rc == FLOW_DONE)
			return finish_request(c);
	}
	if (progress)
		set_deadline(c, c->rmsg->head_len ? c->w->cf->timeout_client_ms
						  : c->w->cf->timeout_server_ms);
	return progress;
}

static int step_tunnel(struct conn *c)
{
	int progress = 0;
	uint64_t up = 0, down = 0;
	int a = FLOW_DONE, b = FLOW_DONE;

	if (!c->req.body_done)
		a = flow_run(c, &c->req, c->cfd, c->ufd, &up, &progress);
	if (!c->resp.body_done)
		b = flow_run(c, &c->resp, c->ufd, c->cfd, &down, &progress);
	c->bytes_in += up;
	c->bytes_out += down;
	if (a < 0 || b < 0 || (c->req.body_done && c->resp.body_done)) {
		if (c->srv) {
			atomic_fetch_add(&c->srv->bytes_up, c->bytes_in);
			atomic_fetch_add(&c->srv->bytes_down, c->bytes_out);
		}
		conn_free(c);
		return -1;
	}
	if (progress)
		set_deadline(c, c->w->cf->timeout_tunnel_ms);
	return progress;
}

/* flush the final response, then half-close and drain the client briefly (lingering close:
 * closing with unread input would send RST and could destroy the response in flight) */
static int step_closing(struct conn *c)
{
	int progress = 0;
	int rc = flush_buf(c->cfd, &c->resp.out, &progress);
	char sink[4096];

	if (rc == -EAGAIN)
		return 0;
	if (rc < 0) {
		conn_free(c);
		return -1;
	}
	if (!c->resp.dst_shut) {
		shutdown(c->cfd, SHUT_WR);
		c->resp.dst_shut = 1;
		if (c->deadline > c->w->now_ms + LINGER_MS)
			set_deadline(c, LINGER_MS);
	}
	for (int i = 0; i < 64; i++) {
		ssize_t r = recv_some(c->cfd, sink, sizeof(sink));

		if (r == -EAGAIN)
			return 0;
		if (r <= 0)
			break;
	}
	conn_free(c);
	return -1;
}

void conn_run(struct conn *c)
{
	if (c->dead)
		return;
	c->run_budget = 0;
	for (;;) {
		int r;

		switch (c->st) {
		case CS_HEAD:
			r = step_head(c);
			break;
		case CS_CONNECT:
			r = step_connect(c);
			break;
		case CS_EXCHANGE:
			r = step_exchange(c);
			break;
		case CS_TUNNEL:
			r = step_tunnel(c);
			break;
		default:
			r = step_closing(c);
			break;
		}
		if (r <= 0)
			return;
		if (c->queued)
			return; /* budget used: the worker runs us again after others */
	}
}

void conn_event(struct conn *c, uint32_t events, int upstream)
{
	if (c->dead)
		return;
	if (upstream)
		c->uev |= events;
	conn_run(c);
}

void conn_timer(struct conn *c)
{
	if (c->w->now_ms < c->deadline)
		return;
	switch (c->st) {
	case CS_HEAD:
		if (c->head_seen || buf_len(&c->req.in)) {
			c->t_start = c->w->now_ms;
			c->method_s[0] = c->path[0] = c->host[0] = '\0';
			c->pool = NULL;
			c->srv = NULL;
			c->req.in.start = c->req.in.end = 0;
			if (conn_fail_request(c, 408) > 0)
				conn_run(c);
			return;
		}
		conn_free(c);
		return;
	case CS_CONNECT:
		if (connect_failed(c, "timeout") > 0)
			conn_run(c);
		return;
	case CS_EXCHANGE:
		log_warnx("%s: upstream %s/%s timed out (%s)", c->peer, c->pool->name,
			  c->srv ? c->srv->name : "-",
			  c->rmsg->head_len ? "response body" : "waiting for response");
		if (!c->resp_started) {
			if (conn_fail_request(c, 504) > 0)
				conn_run(c);
			return;
		}
		conn_free(c);
		return;
	default:
		log_debug("%s: %s timeout", c->peer, state_name[c->st]);
		conn_free(c);
		return;
	}
}

int conn_new(struct worker *w, struct listener *l, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct epoll_event ev;
	uint32_t bufsz = w->cf->buffer_size;
	int one = 1;

	if (!c)
		goto err_close;
	c->w = w;
	c->l = l;
	c->cfd = fd;
	c->ufd = -1;
	c->req.pipe_r = c->req.pipe_w = c->resp.pipe_r = c->resp.pipe_w = -1;
	c->msg = calloc(1, sizeof(*c->msg));
	c->rmsg = calloc(1, sizeof(*c->rmsg));
	c->req_head = malloc(w->cf->max_header_size + 1024);
	if (!c->msg || !c->rmsg || !c->req_head || buf_alloc(&c->req.in, bufsz) ||
	    buf_alloc(&c->req.out, bufsz) || buf_alloc(&c->resp.in, bufsz) ||
	    buf_alloc(&c->resp.out, bufsz))
		goto err_free;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
				inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], c->peer,
					  sizeof(c->peer));
			else
				inet_ntop(AF_INET6, &s6->sin6_addr, c->peer, sizeof(c->peer));
		} else {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->peer,
				  sizeof(c->peer));
		}
	} else {
		snprintf(c->peer, sizeof(c->peer), "unknown");
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ctag.kind = EP_CLIENT;
	c->ctag.fd = fd;
	c->ctag.c = c;
	c->utag.kind = EP_UPSTREAM;
	c->utag.c = c;
	c->st = CS_HEAD;
	set_deadline(c, w->cf->timeout_header_ms);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = &c->ctag;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		int err = -errno;

		conn_free(c);
		return err;
	}
	return 0;

err_free:
	conn_release(c);
err_close:
	close(fd);
	atomic_fetch_sub(&g_nconns, 1);
	return -ENOMEM;
}
