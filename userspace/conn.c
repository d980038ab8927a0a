// SPDX-License-Identifier: MIT
/*
 * conn.c - the connection state machine: lifecycle, one step_* function per state, retries,
 * timers, generated responses, the access log (see conn.h for the states and for the files
 * the steps call: heads in conn_head.c, bodies in flow.c, the upstream in conn_upstream.c).
 *
 * Sockets are edge-triggered; every event runs conn_run(), which makes all progress possible
 * until each direction is blocked on EAGAIN (which re-arms its edge) or on the other side.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "conf.h"
#include "conn-t.h"
#include "conn.h"
#include "conn_head.h"
#include "conn_limits.h"
#include "conn_rules.h"
#include "conn_upstream.h"
#include "flow.h"
#include "health_state.h"
#include "http.h"
#include "kernel_path.h"
#include "lb.h"
#include "log.h"
#include "queue.h"
#include "retry.h"
#include "spare.h"
#include "splice.h"
#include "stats.h"
#include "tls.h"
#include "transport.h"
#include "worker.h"

#define LINGER_MS 2000

const char *conn_state_name(int st)
{
	static const char *const names[] = {"head",    "connect",   "exchange",	   "tunnel",
					    "closing", "handshake", "uphandshake", "queue"};

	return st >= 0 && (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

struct conn *conn_next(struct conn *c)
{
	return c->next;
}

struct conn *conn_kpoll_next(struct conn *c)
{
	struct conn *next = c->kpoll_next;

	c->kpoll_queued = 0;
	c->kpoll_next = NULL;
	return next;
}

struct conn *conn_ready_next(struct conn *c)
{
	struct conn *next = c->ready_next;

	c->queued = 0;
	c->ready_next = NULL;
	return next;
}

void conn_queue(struct conn *c)
{
	if (c->queued)
		return;
	c->queued = 1;
	c->ready_next = c->w->ready;
	c->w->ready = c;
}

void conn_set_deadline(struct conn *c, uint32_t ms)
{
	c->deadline = c->w->now_ms + ms;
}

/* ---- access log ---- */

static const char *const term_name[] = {"",
					"aborted",
					"client_closed",
					"client_timeout",
					"client_framing",
					"server_closed",
					"server_timeout",
					"stopped"};

/* the request that just ended, as a record for accesslog.c, which builds and queues the line */
static void access_log(struct conn *c)
{
	char line[ACCESSLOG_LINE_MAX];
	struct timespec now;
	struct accesslog_rec r = {
		.listener = c->l->name,
		.client = c->peer,
		.method = c->method_s,
		.target = c->path,
		.version_minor = c->version_minor,
		.host = c->host,
		.status = c->status,
		.bytes_in = c->bytes_in,
		.bytes_out = c->bytes_out,
		.pool = c->pool ? c->pool->name : NULL,
		.server = c->srv ? c->srv->name : NULL,
		.duration_ms = c->w->now_ms - c->t_start,
		.tries = c->pool ? c->ntried : 0,
		.tls = c->client.ssl ? c->client.transport->name : NULL,
		.route = c->route ? c->route->name : NULL,
		.request_id = conn_rules_request_id(c),
		.term = term_name[c->term],
		.refused = c->refused,
	};

	if (g_access_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	r.time_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	accesslog_write(line, accesslog_line(&r, accesslog_format(), line, sizeof(line)));
}

/* request_done - one request is over (answered, failed or a tunnel closed): count, log */
static void request_done(struct conn *c)
{
	stats_request(c->l, c->pool, c->status,
		      c->w->now_ms > c->t_start ? c->w->now_ms - c->t_start : 0);
	if (c->term == TERM_CLIENT_CLOSED || c->term == TERM_CLIENT_TIMEOUT ||
	    c->term == TERM_CLIENT_FRAMING)
		stats_error(STATS_ERR_CLIENT_ABORTED);
	access_log(c);
	c->ntried = 0;
	conn_limits_request_done(c);
	c->in_request = 0;
	c->term = TERM_NONE;
}

/* conn_abort - frees c: the request in flight ends here for reason t (counted and logged
 * once, by conn_free) */
static void conn_abort(struct conn *c, enum conn_term t)
{
	if (c->in_request && !c->term)
		c->term = t;
	conn_free(c);
}

/* ---- teardown ---- */

/* conn_unlink - frees c: off every list of the worker; the memory goes to the graveyard */
void conn_unlink(struct conn *c)
{
	struct worker *w = c->w;

	if (c->kpoll_queued) {
		struct conn **pp = &w->kpoll;

		while (*pp && *pp != c)
			pp = &(*pp)->kpoll_next;
		if (*pp)
			*pp = c->kpoll_next;
		c->kpoll_queued = 0;
	}
	flow_close_pipe(c, &c->req);
	flow_close_pipe(c, &c->resp);
	/* the control socket walks the list from the main thread (conn_snapshot) */
	pthread_mutex_lock(&w->conns_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&w->conns_lock);
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

/* conn_free - frees c (see conn.h): both sockets closed, c unlinked, memory kept until
 * conn_reap */
void conn_free(struct conn *c)
{
	struct worker *w = c->w;

	if (c->dead)
		return;
	/* a request that reached routing is logged and counted however it ends */
	if (c->in_request) {
		if (!c->term)
			c->term = c->w->stop ? TERM_STOPPED : TERM_ABORTED;
		request_done(c);
	}
	conn_upstream_close(c);
	conn_limits_close(c);
	if (c->cfd >= 0) {
		worker_close_watched(w->epfd, c->cfd);
		c->cfd = -1;
		atomic_fetch_sub(&g_nconns, 1);
	}
	if (side_in_maps(&c->client)) {
		splice_conn_delete(c->client.bpf.cookie);
		splice_release(&c->client.bpf);
	}
	transport_free(&c->client);
	conn_unlink(c);
}

/* conn_release - frees c's memory: a connection that is unlinked, or was never linked */
static void conn_release(struct conn *c)
{
	conn_mem_free(c);
	conn_rules_free(c);
	spare_count(&c->w->spare, -(int64_t)sizeof(*c));
	if (c->cf)
		conf_unref(c->cf);
	free(c);
}

int conn_idle(const struct conn *c)
{
	return c->st == CS_HEAD && !c->head_seen && !buf_len(&c->req.in);
}

/* what conn_reclaim closes first: idle keep-alive connections, then incomplete heads (the
 * oldest first); UINT64_MAX: never */
static uint64_t reclaim_key(const struct conn *c)
{
	if (c->dead || (c->st != CS_HEAD && c->st != CS_HANDSHAKE))
		return UINT64_MAX;
	if (c->st == CS_HEAD && c->requests && conn_idle(c))
		return c->wait_ms;
	return (1ull << 62) + c->wait_ms;
}

#define RECLAIM_MAX 32

unsigned conn_reclaim(struct worker *w, unsigned n)
{
	struct conn *pick[RECLAIM_MAX];
	uint64_t key[RECLAIM_MAX];
	unsigned np = 0;

	if (n > RECLAIM_MAX)
		n = RECLAIM_MAX;
	/* one pass keeping the n smallest keys in order (n is small) */
	for (struct conn *c = w->conns; c && n; c = c->next) {
		uint64_t k = reclaim_key(c);
		unsigned i;

		if (k == UINT64_MAX || (np == n && k >= key[np - 1]))
			continue;
		if (np < n)
			np++;
		for (i = np - 1; i > 0 && key[i - 1] > k; i--) {
			key[i] = key[i - 1];
			pick[i] = pick[i - 1];
		}
		key[i] = k;
		pick[i] = c;
	}
	for (unsigned i = 0; i < np; i++) {
		log_debug("%s: closed at max_connections (%s, waiting %llu ms)", pick[i]->peer,
			  key[i] < (1ull << 62) ? "idle keep-alive" : "incomplete head",
			  (unsigned long long)(w->now_ms - pick[i]->wait_ms));
		stats_error(STATS_ERR_OVER_CAPACITY_CLOSED);
		conn_free(pick[i]);
	}
	return np;
}

/* conn_reap - frees the memory of w's connections freed during the batch */
void conn_reap(struct worker *w)
{
	while (w->graveyard) {
		struct conn *c = w->graveyard;

		w->graveyard = c->dead_next;
		conn_release(c);
	}
}

/* ---- responses generated by spliced ---- */

/*
 * conn_fail_request - may free c: answer the client with a small error response and close
 * after it (STEP_AGAIN: c is CLOSING), or close at once when part of a response went out
 * already (STEP_FREED). The body never names a backend: only the status and a fixed phrase.
 */
enum step_rc conn_fail_request(struct conn *c, int status)
{
	char out[4096], hdrs[2048], value[2048], dflt[128];
	const char *body = dflt, *type = "text/plain";
	size_t blen, hl;
	int n, vl = 0;

	if (conn_mem_full(c, &c->resp.out)) {
		conn_free(c);
		return STEP_FREED;
	}
	conn_upstream_close(c);
	c->status = status;
	/* a route's `return` is an answer, not an error; a full `limit conn` is not a
	 * server's failure */
	if (status == 503 && c->refused)
		stats_error(STATS_ERR_LIMIT_CONN);
	else if (!c->route || conn_rules_return(c) != status)
		stats_error(stats_error_of_status(status));
	if (c->resp_started) {
		/* part of a response went out already: the only honest signal left is a close */
		request_done(c);
		conn_free(c);
		return STEP_FREED;
	}
	blen = (size_t)snprintf(dflt, sizeof(dflt), "%d %s\n", status, http_reason(status));
	/* a route's `return`: its text is the body, or its URL the Location of a redirect */
	if (c->route && conn_rules_return(c) == status)
		vl = conn_rules_return_value(c, value, sizeof(value));
	if (vl > 0 && (status < 300 || status >= 400)) {
		body = value;
		blen = (size_t)vl;
	}
	hl = conn_rules_generated(c, status, &body, &blen, &type, hdrs, sizeof(hdrs));
	n = snprintf(out, sizeof(out),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "%s%.*s%s%.*s"
		     "Connection: close\r\nCache-Control: no-store\r\n\r\n",
		     status, http_reason(status), type, blen,
		     vl > 0 && status >= 300 && status < 400 ? "Location: " : "",
		     vl > 0 && status >= 300 && status < 400 ? vl : 0, value,
		     vl > 0 && status >= 300 && status < 400 ? "\r\n" : "", (int)hl, hdrs);
	if (n < 0 || (size_t)n >= sizeof(out))
		n = 0;
	c->resp.out.start = c->resp.out.end = 0;
	if (!n || buf_append(&c->resp.out, out, (uint32_t)n) ||
	    buf_append(&c->resp.out, body, (uint32_t)blen)) {
		/* what the rules made does not fit: the plain answer */
		c->resp.out.start = c->resp.out.end = 0;
		n = snprintf(out, sizeof(out),
			     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu"
			     "\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n%s",
			     status, http_reason(status), strlen(dflt), dflt);
		buf_append(&c->resp.out, out, (uint32_t)n);
		blen = 0;
	}
	c->bytes_out = (uint64_t)n + blen;
	request_done(c);
	c->st = CS_CLOSING;
	c->req_keepalive = 0;
	c->linger = 1; /* the client may still be sending: drain before closing */
	conn_set_deadline(c, c->cf->timeout_client_ms);
	return STEP_AGAIN;
}

/* ---- the steps of the state machine, retries ---- */

/* may this request go to another server after a failure? (idempotent, or no body) */
int conn_retryable(const struct conn *c)
{
	int idempotent = c->method == HTTP_M_GET || c->method == HTTP_M_HEAD ||
			 c->method == HTTP_M_OPTIONS || c->method == HTTP_M_PUT ||
			 c->method == HTTP_M_DELETE || c->method == HTTP_M_TRACE;

	return idempotent || c->req.body == B_NONE;
}

/* start_exchange - may free c: the upstream is connected (or reused): queue the head and
 * start the exchange */
enum step_rc conn_start_exchange(struct conn *c)
{
	c->req.out.start = c->req.out.end = 0;
	if (buf_append(&c->req.out, c->req_head, c->req_head_len))
		return conn_fail_request(c, 431);
	c->st = CS_EXCHANGE;
	memset(c->rmsg, 0, sizeof(*c->rmsg));
	flow_reset_body(&c->resp);
	c->resp.src_eof = 0;
	atomic_fetch_add(&c->srv->requests, 1);
	c->t_sent_ms = c->w->now_ms;
	conn_set_deadline(c, c->pool->timeout_server_ms);
	return STEP_AGAIN;
}

/* head_parse - parse what req.in holds of a head: > 0 head length (c->msg filled), 0 more
 * bytes needed, < 0 an HTTP status to refuse it with, or -ENOMEM. The parse runs in the worker's
 * w->head_msg; only its progress stays with c (head_scan) until the head is complete. */
static int head_parse(struct conn *c)
{
	struct buf *in = &c->req.in;
	struct http_msg *m = c->w->head_msg;
	int r;

	memset(m, 0, sizeof(*m));
	m->scan = c->head_scan;
	r = http_parse_request(in->data + in->start, buf_len(in), c->cf->max_header_size, m);
	c->head_scan = r == 0 ? m->scan : 0;
	if (r <= 0)
		return r;
	if (conn_mem_exchange(c))
		return -ENOMEM;
	*c->msg = *m;
	return r;
}

/* step_head - may free c: read and parse the request head (CS_HEAD) */
static enum step_rc step_head(struct conn *c)
{
	struct buf *in = &c->req.in;

	for (;;) {
		if (buf_len(in)) {
			int r = head_parse(c);

			if (r > 0)
				return conn_head_request(c, r);
			if (r == -ENOMEM) {
				conn_free(c);
				return STEP_FREED;
			}
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
			c->head_scan = 0;
		}
		/* a head buffer only once bytes are there; a full one grows up to buffer_size */
		if (!in->data && transport_rd_empty(&c->client))
			return STEP_WAIT;
		if (!in->data || in->end == in->cap) {
			int rc = conn_mem_grow(c, in);

			if (rc == -ENOSPC) {
				c->t_start = c->w->now_ms;
				return conn_fail_request(c, 431);
			}
			if (rc) {
				conn_free(c);
				return STEP_FREED;
			}
		}
		{
			uint32_t room = in->cap - in->end;
			ssize_t r;

			r = transport_recv(c, &c->client, in->data + in->end, room);
			if (r == -EAGAIN) {
				/* nothing came: an idle connection holds no head buffer */
				conn_mem_head_idle(c);
				return STEP_WAIT;
			}
			if (r <= 0) {
				if (r < 0 || buf_len(in))
					log_debug("%s: client closed mid-head", c->peer);
				conn_free(c);
				return STEP_FREED;
			}
			if (!c->head_seen) {
				c->head_seen = 1;
				conn_set_deadline(c, c->cf->timeout_header_ms);
			}
			in->end += (uint32_t)r;
		}
	}
}

/* step_connect - may free c: the connect to the upstream completes (CS_CONNECT) */
static enum step_rc step_connect(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!(c->uev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return STEP_WAIT;
	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err)
		return conn_upstream_failed(c, strerror(err));
	if (c->uev & EPOLLHUP)
		return conn_upstream_failed(c, "hang-up");
	if (c->pool->tls_on) {
		struct ssl_st *ssl = tls_upstream_new(c->pool, c->srv, c->ufd);

		if (!ssl)
			return conn_fail_request(c, 502);
		transport_tls(&c->upstream, ssl);
		c->st = CS_UPHANDSHAKE;
		return STEP_AGAIN;
	}
	return conn_start_exchange(c);
}

/* step_uphandshake - may free c: TLS with the upstream (CS_UPHANDSHAKE); a failed handshake
 * or certificate check answers 502 */
static enum step_rc step_uphandshake(struct conn *c)
{
	char why[256];
	int r = tls_handshake(c->upstream.ssl, why, sizeof(why));

	if (r == 0)
		return STEP_WAIT;
	if (r < 0) {
		log_warnx("%s: upstream %s/%s: TLS handshake failed: %s", c->peer, c->pool->name,
			  c->srv->name, why);
		return conn_fail_request(c, 502);
	}
	return conn_start_exchange(c);
}

/* request (and response) complete: log, then next request or close */
/* fold the kernel-moved bytes of this message into the request and server counters */
static void count_kernel(struct conn *c)
{
	c->bytes_in += c->req.kern_moved;
	c->bytes_out += c->resp.kern_moved;
	if (c->srv) {
		atomic_fetch_add(&c->srv->kern_bytes_up, c->req.kern_moved);
		atomic_fetch_add(&c->srv->kern_bytes_down, c->resp.kern_moved);
	}
	stats_add(&g_stats.kern_bytes_up, c->req.kern_moved);
	stats_add(&g_stats.kern_bytes_down, c->resp.kern_moved);
	c->req.kern_moved = 0;
	c->resp.kern_moved = 0;
}

/*
 * config_follow - after a reload, move the connection to the current configuration at a request
 * boundary: the next request is routed by the new rules. The upstream belongs to a server of
 * the old configuration, so it is closed. A connection stays on its old configuration (alive
 * until it closes) when its buffers were sized by different limits or it speaks TLS (the SSL
 * object belongs to the old listener's context). Returns 0, or -1 when its listener is gone.
 */
int conn_config_follow(struct conn *c)
{
	struct config *ncf = c->w->cf, *old = c->cf;
	struct listener *nl = NULL;

	if (old == ncf)
		return 0;
	for (unsigned i = 0; i < ncf->nlisteners; i++)
		if (!strcmp(ncf->listeners[i].name, c->l->name))
			nl = &ncf->listeners[i];
	if (!nl)
		return -1;
	if (c->client.ssl || nl->tls || ncf->max_header_size != old->max_header_size ||
	    ncf->buffer_size != old->buffer_size)
		return 0;
	conn_upstream_close(c);
	conf_ref(ncf);
	/* conn_snapshot() reads these from the main thread: it must never hold a pointer into
	 * the old configuration once that may be freed (by the unref below) */
	pthread_mutex_lock(&c->w->conns_lock);
	c->pool = NULL;
	c->srv = NULL;
	c->cf = ncf;
	c->l = nl;
	pthread_mutex_unlock(&c->w->conns_lock);
	if (!side_in_maps(&c->client))
		c->kernel_ok =
			splice_kernel_available() && nl->splice != SPLICE_OFF && !c->kernel_failed;
	c->kernel_all = nl->splice == SPLICE_ON;
	conf_unref(old);
	return 0;
}

/* the daemon's bytes of the request that ends (before count_kernel() adds the kernel's) */
static void count_user(struct conn *c)
{
	if (c->srv) {
		atomic_fetch_add(&c->srv->bytes_up, c->bytes_in);
		atomic_fetch_add(&c->srv->bytes_down, c->bytes_out);
	}
	stats_add(&g_stats.user_bytes_up, c->bytes_in);
	stats_add(&g_stats.user_bytes_down, c->bytes_out);
	c->user_done_in += c->bytes_in;
	c->user_done_out += c->bytes_out;
}

/* finish_request - never frees c: the response is complete: count and log the request, then
 * wait for the next one or close (always STEP_AGAIN) */
static enum step_rc finish_request(struct conn *c)
{
	count_user(c);
	count_kernel(c); /* after: the server's user counters hold only the daemon's bytes */
	request_done(c);
	/* the route's rules are this request's: an answer before the next is routed has none */
	c->route = NULL;
	/* bytes past the end of this response: the connection can carry nothing more */
	if (c->resp_keepalive)
		(void)conn_upstream_check_idle(c);
	/* the upstream is released as soon as it can carry nothing more for this client, and
	 * after every request when its server's max_conn counts requests in flight */
	if (!c->resp_keepalive || !c->req.body_done || !c->req_keepalive ||
	    (c->srv && c->srv->max_conn))
		conn_upstream_close(c);
	if (!c->req_keepalive || !c->req.body_done || conn_config_follow(c)) {
		/* a response that ended before its request did leaves the client stream
		 * at an unknown position: close (after a lingering drain); so does a
		 * listener removed by a reload */
		c->linger = !c->req.body_done;
		c->st = CS_CLOSING;
		conn_set_deadline(c, c->cf->timeout_client_ms);
		return STEP_AGAIN;
	}
	/* nothing of this request may leak into what is logged or answered for the next */
	c->resp_started = 0;
	c->bytes_in = c->bytes_out = 0;
	c->status = 0;
	c->st = CS_HEAD;
	conn_mem_idle(c); /* an idle connection holds nothing but itself */
	c->t_start = c->w->now_ms;
	c->wait_ms = c->w->now_ms;
	if (buf_len(&c->req.in)) {
		/* part of the next head is already here (pipelined): the header timeout runs */
		c->head_seen = 1;
		conn_set_deadline(c, c->cf->timeout_header_ms);
	} else {
		c->head_seen = 0;
		conn_set_deadline(c, c->cf->timeout_idle_ms);
	}
	return STEP_AGAIN;
}

/* waiting_on_server - no response yet, or nothing of the response left to deliver */
static int waiting_on_server(struct conn *c)
{
	return !c->rmsg->head_len || (!buf_len(&c->resp.out) && !c->resp.in_pipe);
}

/*
 * exchange_timeout - inactivity allowed now: the server's timeout while spliced waits on the
 * upstream (waiting_on_server), else the client's.
 */
uint32_t conn_exchange_timeout(struct conn *c)
{
	return waiting_on_server(c) ? c->pool->timeout_server_ms : c->pool->timeout_client_ms;
}

/* conn_retry_or_fail - may free c: the upstream closed or reset before answering: retry.c
 * decides (the `reset` cause of retry_on) */
enum step_rc conn_retry_or_fail(struct conn *c, int status, const char *why)
{
	return retry_or_fail(c, RETRY_RESET, status, why);
}

/* response_broken - may free c: the server broke the response body (flow result rc): a 502
 * when not a byte of the response reached the client yet, else the connection closes */
static enum step_rc response_broken(struct conn *c, int rc)
{
	log_warnx("%s: upstream %s/%s broke the response body (%s)", c->peer, c->pool->name,
		  c->srv ? c->srv->name : "-",
		  rc == FLOW_BAD_FRAMING ? "bad chunk framing"
		  : rc == FLOW_EARLY_EOF ? "closed before its end"
					 : "read error");
	stats_error(STATS_ERR_UPSTREAM_BROKEN);
	if (c->client.written == c->resp_mark && !c->resp.kern_moved) {
		/* not a byte of it reached the client: it gets an honest answer */
		c->resp_started = 0;
		c->resp.out.start = c->resp.out.end = 0;
		return conn_fail_request(c, 502);
	}
	c->status = 502;
	conn_abort(c, TERM_SERVER_CLOSED);
	return STEP_FREED;
}

/* step_exchange - may free c: request body up, response head and body down (CS_EXCHANGE) */
static enum step_rc step_exchange(struct conn *c)
{
	int progress = 0;
	int rc;

	/* request body: client -> upstream */
	if (!c->req.body_done || buf_len(&c->req.out) || c->req.in_pipe) {
		uint64_t moved = 0;

		rc = flow_run(c, &c->req, &moved, &progress);
		c->bytes_in += moved;
		if (rc == FLOW_ERR_DST || rc == FLOW_ERR_SRC) {
			if (rc == FLOW_ERR_DST && !c->resp_started)
				return conn_retry_or_fail(c, 502,
							  "reset while receiving the request");
			conn_abort(c, rc == FLOW_ERR_DST ? TERM_SERVER_CLOSED : TERM_CLIENT_CLOSED);
			return STEP_FREED;
		}
		if (rc == FLOW_EARLY_EOF) {
			log_debug("%s: client closed during the request body", c->peer);
			conn_abort(c, TERM_CLIENT_CLOSED);
			return STEP_FREED;
		}
		if (rc == FLOW_BAD_FRAMING) {
			if (!c->resp_started)
				return conn_fail_request(c, 400);
			conn_abort(c, TERM_CLIENT_FRAMING);
			return STEP_FREED;
		}
		if (rc == FLOW_TOO_LARGE) {
			/* max_body_size: the upstream connection carries part of a body and is
			 * closed either way (conn_fail_request / conn_abort never keep it) */
			c->refused = "body_too_large";
			if (!c->resp_started)
				return conn_fail_request(c, 413);
			stats_error(STATS_ERR_TOO_LARGE_413);
			conn_abort(c, TERM_CLIENT_FRAMING);
			return STEP_FREED;
		}
	}
	/* response head, then body: upstream -> client */
	if (c->resp.body == B_NONE && !c->resp.body_done && c->rmsg->head_len == 0) {
		if (conn_head_response(c, &progress) == STEP_FREED)
			return STEP_FREED;
		if (c->st != CS_EXCHANGE)
			return STEP_AGAIN;
		if (c->rmsg->head_len == 0) {
			/* a 100 Continue must reach the client now: it waits for it to send
			 * the body */
			rc = transport_flush(c, &c->client, &c->resp.out, &progress);
			if (rc < 0 && rc != -EAGAIN) {
				conn_abort(c, TERM_CLIENT_CLOSED);
				return STEP_FREED;
			}
			return progress ? STEP_AGAIN : STEP_WAIT;
		}
	}
	{
		uint64_t moved = 0;

		rc = flow_run(c, &c->resp, &moved, &progress);
		c->bytes_out += moved;
		if (rc == FLOW_ERR_DST) {
			conn_abort(c, TERM_CLIENT_CLOSED);
			return STEP_FREED;
		}
		if (rc == FLOW_ERR_SRC || rc == FLOW_EARLY_EOF || rc == FLOW_BAD_FRAMING)
			return response_broken(c, rc);
		if (rc == FLOW_DONE)
			return finish_request(c);
	}
	if (progress)
		conn_set_deadline(c, conn_exchange_timeout(c));
	return progress ? STEP_AGAIN : STEP_WAIT;
}

/* tunnel_end - frees c: a tunnel is over (or aborted): count, log, close; abort sends RST to
 * both sides */
static void tunnel_end(struct conn *c, int abort)
{
	static const struct linger rst = {.l_onoff = 1, .l_linger = 0};
	int dummy = 0;

	if (c->req.kernel_span)
		kernel_account(&c->req, &dummy);
	if (c->resp.kernel_span)
		kernel_account(&c->resp, &dummy);
	count_user(c);
	stats_add(&g_stats.tunnels_total, 1);
	count_kernel(c);
	request_done(c);
	if (abort) {
		setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		if (c->ufd >= 0)
			setsockopt(c->ufd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	}
	conn_free(c);
}

/* step_tunnel - may free c: relay both directions of a tunnel (CS_TUNNEL) */
static enum step_rc step_tunnel(struct conn *c)
{
	int progress = 0;
	uint64_t up = 0, down = 0;
	int a = FLOW_DONE, b = FLOW_DONE;

	if (!c->req.body_done)
		a = flow_run(c, &c->req, &up, &progress);
	if (!c->resp.body_done)
		b = flow_run(c, &c->resp, &down, &progress);
	c->bytes_in += up;
	c->bytes_out += down;
	if (a < 0 || b < 0 || (c->req.body_done && c->resp.body_done)) {
		tunnel_end(c, a < 0 || b < 0);
		return STEP_FREED;
	}
	if ((c->cev | c->uev) & EPOLLERR) {
		/* a reset on either side: the other side learns it as a reset too */
		tunnel_end(c, 1);
		return STEP_FREED;
	}
	if (progress)
		conn_set_deadline(c, c->cf->timeout_tunnel_ms);
	return progress ? STEP_AGAIN : STEP_WAIT;
}

/* step_closing - may free c: flush the final response, then half-close and drain the client
 * briefly (lingering close: closing with unread input would send RST and could destroy the
 * response in flight) */
static enum step_rc step_closing(struct conn *c)
{
	int progress = 0;
	int rc = transport_flush(c, &c->client, &c->resp.out, &progress);
	char sink[4096];

	if (rc == -EAGAIN)
		return STEP_WAIT;
	if (rc < 0) {
		conn_free(c);
		return STEP_FREED;
	}
	if (!c->resp.dst_shut) {
		/* redirected bytes still on their way into the client would be lost */
		if (!kernel_drained(c, &c->client))
			return STEP_WAIT;
		/* a complete exchange with nothing unread closes at once: close() sends a FIN,
		 * and only unread input would turn it into a RST */
		transport_close_notify(&c->client);
		if (!c->linger && !buf_len(&c->req.in) && !splice_queued(c->cfd)) {
			conn_free(c);
			return STEP_FREED;
		}
		shutdown(c->cfd, SHUT_WR);
		c->resp.dst_shut = 1;
		if (c->deadline > c->w->now_ms + LINGER_MS)
			conn_set_deadline(c, LINGER_MS);
	}
	for (int i = 0; i < 64; i++) {
		ssize_t r = transport_recv(c, &c->client, sink, sizeof(sink));

		if (r == -EAGAIN)
			return STEP_WAIT;
		if (r <= 0)
			break;
	}
	conn_free(c);
	return STEP_FREED;
}

/* step_handshake - may free c: TLS handshake on the client socket (non-blocking; the header
 * timeout bounds it); then note what the kernel took (kTLS) */
static enum step_rc step_handshake(struct conn *c)
{
	char why[256];
	int r = tls_handshake(c->client.ssl, why, sizeof(why));

	if (r == 0)
		return STEP_WAIT;
	if (r < 0) {
		log_debug("%s: TLS handshake failed: %s", c->peer, why);
		stats_add(&g_stats.tls_failed, 1);
		stats_error(STATS_ERR_TLS_HANDSHAKE);
		conn_free(c);
		return STEP_FREED;
	}
	stats_add(&g_stats.tls_ok, 1);
	{
		int tx, rx;

		tls_ktls_state(c->client.ssl, &tx, &rx);
		transport_ktls(&c->client, tx, rx);
		__atomic_fetch_add(&g_tls_counters.handshakes, 1, __ATOMIC_RELAXED);
		if (tx)
			__atomic_fetch_add(&g_tls_counters.ktls_tx, 1, __ATOMIC_RELAXED);
		if (rx)
			__atomic_fetch_add(&g_tls_counters.ktls_rx, 1, __ATOMIC_RELAXED);
	}
	if (log_verbosity() > 0) {
		tls_describe(c->client.ssl, why, sizeof(why));
		log_debug("%s: TLS %s ktls=%s", c->peer, why, c->client.transport->name);
	}
	c->st = CS_HEAD;
	conn_set_deadline(c, c->cf->timeout_header_ms);
	return STEP_AGAIN;
}

static void conn_run_once(struct conn *c);

/* conn_run - may free c (see conn.h) */
void conn_run(struct conn *c)
{
	if (c->dead)
		return;
	c->kernel_wait = 0;
	conn_run_once(c);
	if (!c->dead && c->kernel_wait && !c->kpoll_queued) {
		/* the kernel gives no signal when a window is done or a queue drained */
		c->kpoll_queued = 1;
		c->kpoll_next = c->w->kpoll;
		c->w->kpoll = c;
	}
}

/* conn_run_once - may free c: run the steps until one waits (or frees c) */
static void conn_run_once(struct conn *c)
{
	c->run_budget = 0;
	for (;;) {
		enum step_rc r;

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
		case CS_HANDSHAKE:
			r = step_handshake(c);
			break;
		case CS_UPHANDSHAKE:
			r = step_uphandshake(c);
			break;
		case CS_QUEUE:
			r = queue_step(c);
			break;
		default:
			r = step_closing(c);
			break;
		}
		if (r != STEP_AGAIN)
			return;
		if (c->queued)
			return; /* budget used: the worker runs us again after others */
	}
}

/* conn_event - may free c (see conn.h) */
void conn_event(struct conn *c, uint32_t events, int upstream)
{
	if (c->dead)
		return;
	if (upstream)
		c->uev |= events;
	else
		c->cev |= events;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		(upstream ? &c->upstream : &c->client)->rd_empty = 0;
		/* between requests, a kept upstream has nothing to say */
		if (upstream && c->st == CS_HEAD && c->ufd >= 0)
			(void)conn_upstream_check_idle(c);
	}
	conn_run(c);
}

/* conn_timer - may free c (see conn.h) */
void conn_timer(struct conn *c)
{
	if (c->w->now_ms < c->deadline)
		return;
	switch (c->st) {
	case CS_HEAD:
		if (c->head_seen || buf_len(&c->req.in)) {
			c->t_start = c->w->now_ms;
			c->method_s[0] = c->path[0] = c->host[0] = '\0';
			c->route = NULL;
			c->pool = NULL;
			c->srv = NULL;
			c->req.in.start = c->req.in.end = 0;
			if (conn_fail_request(c, 408) == STEP_AGAIN)
				conn_run(c);
			return;
		}
		conn_free(c);
		return;
	case CS_CONNECT:
	case CS_UPHANDSHAKE:
		if (conn_upstream_failed(c, c->st == CS_CONNECT
						    ? "timeout"
						    : "TLS handshake timeout") == STEP_AGAIN)
			conn_run(c);
		return;
	case CS_EXCHANGE:
		log_warnx("%s: upstream %s/%s timed out (%s)", c->peer, c->pool->name,
			  c->srv ? c->srv->name : "-",
			  c->rmsg->head_len ? "response body" : "waiting for response");
		if (!c->resp_started) {
			if (!c->rmsg->head_len && c->req.body_done && c->srv)
				health_passive_result(c->srv, 0, "timeout", c->w->now_ms);
			if (retry_or_fail(c, RETRY_TIMEOUT, 504, "timed out") == STEP_AGAIN)
				conn_run(c);
			return;
		}
		conn_abort(c, waiting_on_server(c) ? TERM_SERVER_TIMEOUT : TERM_CLIENT_TIMEOUT);
		return;
	case CS_QUEUE:
		if (queue_expired(c) == STEP_AGAIN)
			conn_run(c);
		return;
	case CS_TUNNEL: {
		uint64_t k = kernel_tunnel_bytes(c);

		/* bytes the kernel moves wake nobody: they count as activity here */
		if (k != c->tunnel_kern) {
			c->tunnel_kern = k;
			conn_set_deadline(c, c->cf->timeout_tunnel_ms);
			return;
		}
		log_debug("%s: tunnel timeout", c->peer);
		tunnel_end(c, 0);
		return;
	}
	default:
		log_debug("%s: %s timeout", c->peer, conn_state_name(c->st));
		if (c->st == CS_HANDSHAKE) {
			stats_add(&g_stats.tls_failed, 1);
			stats_error(STATS_ERR_TLS_HANDSHAKE);
		}
		conn_free(c);
		return;
	}
}

/* conn_peer - the client's address and port for logs, from peer (what accept() returned) or
 * looked up */
static void conn_peer(struct conn *c, int fd, const struct sockaddr_storage *peer,
		      socklen_t peerlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (peer && peerlen && peerlen <= sizeof(ss)) {
		memcpy(&ss, peer, peerlen);
		sl = peerlen;
	}
	if (!(peer && peerlen) && getpeername(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(c->peer, sizeof(c->peer), "unknown");
		return;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		c->peer_port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], c->peer, sizeof(c->peer));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, c->peer, sizeof(c->peer));
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->peer,
			  sizeof(c->peer));
		c->peer_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
}

/* conn_sides - the two sockets of c and the two directions between them */
static void conn_sides(struct conn *c, int adopt)
{
	c->client.fd = &c->cfd;
	c->upstream.fd = &c->ufd;
	transport_plain(&c->client);
	transport_plain(&c->upstream);
	/* registering with epoll reports bytes already there as an event */
	c->client.rd_empty = !adopt;
	c->upstream.syn_adj = 1; /* connected sockets count their SYN in tcpi_bytes_acked */
	c->req.src = &c->client;
	c->req.dst = &c->upstream;
	c->resp.src = &c->upstream;
	c->resp.dst = &c->client;
	c->req.pipe_r = c->req.pipe_w = c->resp.pipe_r = c->resp.pipe_w = -1;
}

struct conn *conn_create(struct worker *w, struct listener *l, int fd,
			 const struct sockaddr_storage *peer, socklen_t peerlen, int adopt)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev;
	struct timespec ts;

	if (!c)
		goto err_close;
	c->w = w;
	c->cf = w->cf;
	conf_ref(c->cf);
	c->l = l;
	c->cfd = fd;
	c->ufd = -1;
	conn_sides(c, adopt);
	spare_count(&w->spare, sizeof(*c)); /* buffers come when bytes do (conn_mem.c) */
	c->wait_ms = w->now_ms;
	conn_peer(c, fd, peer, peerlen);
	if (conn_limits_accept(c)) /* the listener's `limit conn`: refused, counted, logged */
		goto err_free;
	/* TCP_NODELAY comes from the listener (listener_nodelay in worker.c) */
	c->ctag.kind = EP_CLIENT;
	c->ctag.fd = fd;
	c->ctag.c = c;
	/* a TLS socket cannot join a sockmap: with userspace crypto the socket carries records,
	 * and a kTLS socket cannot enter a map on current kernels (docs/TLS.md#data-paths); kTLS
	 * uses splice(2) instead */
	c->kernel_ok = splice_kernel_available() && l->splice != SPLICE_OFF && !l->tls;
	c->kernel_all = l->splice == SPLICE_ON;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->start_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	c->st = CS_HEAD;
	if (l->tls && !adopt) {
		struct ssl_st *ssl = tls_conn_new(l, fd);

		if (!ssl)
			goto err_free;
		transport_tls(&c->client, ssl);
		c->st = CS_HANDSHAKE;
	}
	conn_set_deadline(c, c->cf->timeout_header_ms);
	stats_add(&g_stats.connections_total, 1);
	stats_add(&l->st.connections, 1);
	pthread_mutex_lock(&w->conns_lock);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	pthread_mutex_unlock(&w->conns_lock);
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = &c->ctag;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		conn_free(c);
		return NULL;
	}
	return c;

err_free:
	conn_release(c);
err_close:
	close(fd);
	atomic_fetch_sub(&g_nconns, 1);
	return NULL;
}

int conn_new(struct worker *w, struct listener *l, int fd, const struct sockaddr_storage *peer,
	     socklen_t peerlen)
{
	return conn_create(w, l, fd, peer, peerlen, 0) ? 0 : -ENOMEM;
}
