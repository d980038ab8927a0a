// SPDX-License-Identifier: MIT
/*
 * conn_upstream.c - the upstream side of a connection: pick a server, connect to it (or take a
 * parked connection to it), check that a kept connection stayed quiet between two requests,
 * park or close it. What a failed attempt leads to (another server, 503) is decided here too;
 * retrying a request that got no answer is conn.c's (retry_or_fail).
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn-t.h"
#include "conn.h"
#include "conn_upstream.h"
#include "flow.h"
#include "health_state.h"
#include "kernel_path.h"
#include "lb.h"
#include "log.h"
#include "queue.h"
#include "retry.h"
#include "stats.h"
#include "transport.h"
#include "upstream_idle.h"
#include "worker.h"

static enum step_rc upstream_connect(struct conn *c);

/*
 * A server may only speak when asked: bytes that arrive on an upstream connection while no
 * request is outstanding on it (an unsolicited response, or bytes past the end of the last
 * response) must never be taken for the answer to a later request, which may be another
 * client's (parked connections). Such a connection is closed, counted, and the next request
 * goes out on a fresh one.
 */
enum upstream_idle {
	UPSTREAM_QUIET,	 /* nothing received, no hang-up: may carry the next request */
	UPSTREAM_HUNGUP, /* the server closed or reset it: close, nothing to count */
	UPSTREAM_SPOKE	 /* bytes with no request outstanding: close and count */
};

/* sock_idle_state - look at an idle socket's receive queue without consuming it */
static enum upstream_idle sock_idle_state(int fd)
{
	char b;
	ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return UPSTREAM_QUIET;
	return r > 0 ? UPSTREAM_SPOKE : UPSTREAM_HUNGUP;
}

/*
 * kept_upstream_state - the kept upstream connection of c, between two requests: anything
 * buffered from it, or waiting in its socket? The socket is only peeked at when no read found
 * it empty since its last event (plain sockets outside the maps, see transport.h): the common
 * keep-alive case costs no system call.
 */
static enum upstream_idle kept_upstream_state(struct conn *c)
{
	enum upstream_idle st;

	if (buf_len(&c->resp.in) || c->resp.in_pipe || transport_pending(&c->upstream))
		return UPSTREAM_SPOKE;
	if (c->resp.src_eof || (c->uev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return UPSTREAM_HUNGUP;
	if (transport_rd_empty(&c->upstream))
		return UPSTREAM_QUIET;
	st = sock_idle_state(c->ufd);
	if (st == UPSTREAM_QUIET)
		transport_set_rd_empty(&c->upstream);
	return st;
}

/*
 * upstream_check_idle - may close c's upstream (never c): close c's kept upstream connection
 * unless it is quiet (counting a server that spoke out of turn). Returns 1 when it stays.
 */
int conn_upstream_check_idle(struct conn *c)
{
	enum upstream_idle st;

	if (c->ufd < 0)
		return 0;
	st = kept_upstream_state(c);
	if (st == UPSTREAM_QUIET)
		return 1;
	if (st == UPSTREAM_SPOKE) {
		log_warnx("%s: upstream %s/%s sent bytes with no request outstanding: connection "
			  "closed",
			  c->peer, c->pool ? c->pool->name : "-", c->srv ? c->srv->name : "-");
		stats_error(STATS_ERR_UPSTREAM_UNSOLICITED);
	}
	c->resp_keepalive = 0; /* never parked */
	conn_upstream_close(c);
	return 0;
}

/*
 * upstream_park - keep an idle upstream connection for the next request to its server (pool
 * `keepalive`), instead of closing it: only at a message boundary both ways, with nothing
 * buffered, a response that allowed keep-alive, plain TCP outside the maps, under the current
 * configuration (server ids are per configuration). Returns 1 when parked.
 */
static int upstream_park(struct conn *c)
{
	struct server *s = c->srv;

	if (!s || !s->pool->keepalive || c->cf != c->w->cf || !c->resp_keepalive ||
	    !c->resp.body_done || !c->req.body_done || c->resp.src_eof || c->upstream.ssl ||
	    side_in_maps(&c->upstream) || buf_len(&c->req.out) || c->req.in_pipe ||
	    kept_upstream_state(c) != UPSTREAM_QUIET || !health_server_reusable(s))
		return 0;
	/* the socket stays registered with epoll: parking only changes its tag's owner */
	if (upstream_idle_put(c->w, c->ut, s->id, s->pool->keepalive,
			      c->w->now_ms + s->pool->keepalive_timeout_ms, c->upstream.read,
			      c->upstream.written))
		return 0; /* enough parked: conn_upstream_close() closes it */
	c->ut = NULL;
	c->ufd = -1;
	memset(&c->upstream, 0, sizeof(c->upstream));
	c->upstream.fd = &c->ufd;
	c->upstream.syn_adj = 1;
	transport_plain(&c->upstream);
	atomic_fetch_sub(&s->conn_active, 1);
	lb_conn_release(&s->pool->lb, (int)(s - s->pool->servers));
	c->resp_keepalive = 0;
	c->resp.in.start = c->resp.in.end = 0;
	c->resp.out.start = c->resp.out.end = 0;
	return 1;
}

/* conn_upstream_close - frees c's upstream side (never c): parks it when it can, else closes */
void conn_upstream_close(struct conn *c)
{
	queue_release(c); /* the server slot, or the place in the queue */
	if (c->ufd < 0)
		return;
	if (upstream_park(c))
		return;
	kernel_upstream_closing(c);
	transport_free(&c->upstream);
	worker_utag_close(c->w, c->ut);
	c->ut = NULL;
	c->ufd = -1;
	/* closing took the socket out of the sockhashes */
	splice_release(&c->upstream.bpf);
	memset(&c->upstream, 0, sizeof(c->upstream));
	c->upstream.fd = &c->ufd;
	c->upstream.syn_adj = 1;
	transport_plain(&c->upstream);
	c->req.kernel_span = 0;
	c->resp.kernel_span = 0;
	if (c->srv) {
		atomic_fetch_sub(&c->srv->conn_active, 1);
		lb_conn_release(&c->srv->pool->lb, (int)(c->srv - c->srv->pool->servers));
	}
	c->resp_keepalive = 0;
	/* data from an old upstream must never be mistaken for the next response */
	c->resp.in.start = c->resp.in.end = 0;
	c->resp.out.start = c->resp.out.end = 0;
	c->req.out.start = c->req.out.end = 0;
	flow_close_pipe(c, &c->req);
	flow_close_pipe(c, &c->resp);
}

static int tried(const struct conn *c, const struct server *s)
{
	for (unsigned t = 0; t < c->ntried; t++)
		if (c->tried[t] == s->id)
			return 1;
	return 0;
}

/*
 * pick_marked - no server is usable, but marks may hide some that might answer: a primary not
 * tried yet before a backup, the least busy first (an ejected server has no balancer weight, so
 * the balancer cannot choose here); the scan starts at a spot the request's hash key gives, so
 * equal servers share the load. NULL when none might answer.
 */
static struct server *pick_marked(struct conn *c)
{
	struct pool *p = c->pool;
	struct server *best = NULL;

	for (unsigned k = 0; k < p->nservers; k++) {
		struct server *s = &p->servers[(k + c->hash_key) % p->nservers];

		if (!health_server_may_answer(s) || tried(c, s) || queue_full(s))
			continue;
		if (!best || (best->backup && !s->backup) ||
		    (best->backup == s->backup &&
		     atomic_load(&s->conn_active) < atomic_load(&best->conn_active)))
			best = s;
	}
	return best;
}

/*
 * pick a server not tried yet; NULL when none is usable (c->pick_full: some would be, but are at
 * their max_conn). The sticky cookie's server first when it is usable; else the balancer among
 * the usable servers; and when marks left none (fail_timeout, passive ejection), among the
 * servers that might answer all the same: a mark must never turn the last server up into a 503
 * (nginx forgets its failure marks in that case too). Active checks and admin states still
 * decide.
 */
struct server *conn_upstream_pick(struct conn *c)
{
	struct pool *p = c->pool;
	uint8_t *usable = c->w->usable; /* per-worker scratch, sized for the largest pool */
	int idx, any = 0;

	c->pick_full = 0;
	if (c->sticky_srv && c->sticky_srv->pool == p) {
		struct server *s = c->sticky_srv;

		if (health_server_usable(s, c->w->now_ms) && !tried(c, s) && !queue_full(s))
			return s;
	}
	for (unsigned i = 0; i < p->nservers; i++) {
		struct server *s = &p->servers[i];

		usable[i] = health_server_usable(s, c->w->now_ms) && !tried(c, s);
		if (usable[i] && queue_full(s)) {
			usable[i] = 0;
			c->pick_full = 1;
		}
		any |= usable[i];
	}
	idx = any ? lb_pick(&p->lb, usable, c->hash_key) : -1;
	if (idx < 0 && !c->pick_full)
		return pick_marked(c);
	return idx < 0 ? NULL : &p->servers[idx];
}

/* upstream_head - may free c: a final response head arrived from c->srv (not forwarded yet):
 * its latency counts for the slow-server rule, and a 5xx may send the request elsewhere */
int conn_upstream_head(struct conn *c, enum step_rc *rc)
{
	if (c->srv && c->w->now_ms >= c->t_sent_ms)
		health_head_latency(c->srv, (c->w->now_ms - c->t_sent_ms) * 1000);
	return retry_response(c, rc);
}

/* connect_failed - may free c: a connect attempt failed: remember, mark the server, try
 * another or answer 503 */
enum step_rc conn_upstream_failed(struct conn *c, const char *why)
{
	struct server *s = c->srv;

	stats_error(STATS_ERR_CONNECT_FAILED);
	if (s) {
		atomic_fetch_add(&s->conn_fail, 1);
		atomic_store(&s->failed_until_ms, c->w->now_ms + s->pool->fail_timeout_ms);
		log_warnx("pool %s server %s: connect failed (%s), marked down for %u ms",
			  s->pool->name, s->name, why, s->pool->fail_timeout_ms);
		health_passive_result(s, 0, why, c->w->now_ms);
	}
	conn_upstream_close(c);
	c->srv = NULL;
	if (!retry_allowed(c, RETRY_CONNECT))
		return conn_fail_request(c, 503);
	return upstream_connect(c);
}

/* upstream_connect - may free c: the next try after a failed connect, on the server the
 * balancer picks (none: 503) */
static enum step_rc upstream_connect(struct conn *c)
{
	struct server *s = conn_upstream_pick(c);

	if (s)
		retry_count(c, RETRY_CONNECT);
	return conn_upstream_connect(c, s, 1);
}

/*
 * upstream_take_parked - a parked connection to s for c's request, if one is there and quiet:
 * 1 when c now holds it, 0 when there is none (every one found spoken or hung up is closed).
 */
static int upstream_take_parked(struct conn *c, struct server *s)
{
	struct ep_tag *t;
	uint64_t rd, wr;

	while ((t = upstream_idle_take(c->w, s->id, &rd, &wr))) {
		/* its last event may still be in this epoll batch: a parked connection goes to
		 * another client, so look at it once (the only system call of a reuse) */
		enum upstream_idle st = sock_idle_state(t->fd);

		if (st == UPSTREAM_QUIET)
			break;
		if (st == UPSTREAM_SPOKE) {
			log_warnx("pool %s server %s: parked connection received bytes with no "
				  "request outstanding: closed",
				  s->pool->name, s->name);
			stats_error(STATS_ERR_UPSTREAM_UNSOLICITED);
		}
		worker_utag_close(c->w, t);
	}
	if (!t)
		return 0;
	/* still registered with epoll; a server closing it meanwhile would have closed it
	 * (upstream_idle_event), and one closing it right now is a retryable failure */
	t->c = c;
	c->ut = t;
	c->ufd = t->fd;
	/* the socket's totals since connect, not this connection's: tcp_info counts every byte
	 * it ever moved, and the kernel path's drain checks compare the two
	 * (docs/KERNEL_PATH.md#the-three-ordering-rules) */
	c->upstream.read = rd;
	c->upstream.written = wr;
	c->upstream.rd_empty = 1;
	c->uev = 0;
	atomic_fetch_add(&s->conn_active, 1);
	lb_conn_acquire(&s->pool->lb, (int)(s - s->pool->servers));
	c->upstream_fresh = 0;
	return 1;
}

/* upstream_open - may free c: a new connection to s (CS_CONNECT) */
static enum step_rc upstream_open(struct conn *c, struct server *s)
{
	struct epoll_event ev;
	struct ep_tag *t;
	int fd, one = 1;

	fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("socket");
		c->srv = NULL;
		return conn_fail_request(c, 503);
	}
	t = worker_utag_new(fd, c);
	if (!t) {
		close(fd);
		c->srv = NULL;
		return conn_fail_request(c, 503);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ufd = fd;
	c->ut = t;
	c->upstream.rd_empty = 1; /* nothing to read before the response: its EPOLLIN says when */
	atomic_fetch_add(&s->conn_active, 1);
	atomic_fetch_add(&s->conn_total, 1);
	lb_conn_acquire(&s->pool->lb, (int)(s - s->pool->servers));
	c->uev = 0;
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = t;
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		log_warn("epoll_ctl");
		return conn_fail_request(c, 503);
	}
	c->upstream_fresh = 1;
	c->st = CS_CONNECT;
	conn_set_deadline(c, c->pool->connect_timeout_ms);
	if (connect(fd, (struct sockaddr *)&s->addr, s->addrlen) == -1 && errno != EINPROGRESS)
		return conn_upstream_failed(c, strerror(errno));
	return STEP_AGAIN;
}

enum step_rc conn_upstream_connect(struct conn *c, struct server *s, int parked_ok)
{
	/* every usable server at its max_conn: wait for a slot (or 503 when the queue is full) */
	if (!s)
		return c->pick_full ? queue_wait(c) : conn_fail_request(c, 503);
	if (!queue_take_slot(c, s))
		return queue_wait(c);
	c->srv = s;
	if (c->ntried < MAX_TRIES)
		c->tried[c->ntried++] = s->id;
	/* a parked connection to s carries the request when a failure could be retried (the
	 * server may close an idle connection just as the request goes out) */
	if (s->pool->keepalive && !s->pool->tls_on && c->cf == c->w->cf && conn_retryable(c) &&
	    parked_ok && upstream_take_parked(c, s))
		return conn_start_exchange(c);
	return upstream_open(c, s);
}
