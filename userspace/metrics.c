// SPDX-License-Identifier: MIT
/*
 * metrics.c - the Prometheus endpoint (see metrics.h): a tiny non-blocking HTTP/1.1 server on
 * the main thread, and the rendering of every counter the daemon keeps (stats.h, the server
 * atomics, health, the BPF verdict counters).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "acl.h"
#include "admin.h"
#include "clock.h"
#include "health_state.h"
#include "log.h"
#include "metrics.h"
#include "obuf.h"
#include "splice.h"
#include "stats.h"
#include "version.h"
#include "worker.h"

/* the listening socket's number, for the process a live upgrade executes (it inherits the fd) */
#define ENV_FD "SPLICED_METRICS_FD"

struct m_client {
	struct admin_client a; /* first: fd, output buffer, idle clock (since accept) */
	char in[METRICS_REQUEST_MAX];
	size_t inlen;
	int answered; /* the response is in out: close once it is sent */
};

static void client_event(struct daemon *d, int fd, uint32_t events, void *arg);
static void take_pending(struct daemon *d);
static int m_in_progress(const struct admin_client *a);

static struct {
	struct admin_srv srv;
	char addr[80];
	int takeover; /* started by a live upgrade (metrics_takeover) */
	int pending;  /* the address is still held by the old process: retry every second */
	struct sockaddr_storage paddr;
	socklen_t plen;
} M = {.srv = {.name = "metrics",
	       .env_fd = ENV_FD,
	       .client_size = sizeof(struct m_client),
	       .max_clients = METRICS_CLIENTS_MAX,
	       .idle_ms = METRICS_IDLE_MS,
	       .client_event = client_event,
	       .in_progress = m_in_progress,
	       .on_tick = take_pending,
	       .lfd = -1,
	       .tfd = -1}};

/* ---- rendering ---- */

static void family(struct obuf *o, const char *name, const char *type, const char *help)
{
	ob_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* one sample of a per-server metric: NAME{pool="..",server=".." then fmt, which goes on from
 * there (more labels, "} ", the value, the newline) */
static void server_sample(struct obuf *o, const char *name, const struct server *s, const char *fmt,
			  ...) __attribute__((format(printf, 4, 5)));
static void server_sample(struct obuf *o, const char *name, const struct server *s, const char *fmt,
			  ...)
{
	va_list ap;

	ob_printf(o, "%s{pool=\"", name);
	ob_label(o, s->pool->name);
	ob_printf(o, "\",server=\"");
	ob_label(o, s->name);
	ob_printf(o, "\"");
	va_start(ap, fmt);
	ob_vprintf(o, fmt, ap);
	va_end(ap);
}

static void render_routes(struct config *cf, struct obuf *o)
{
	family(o, "spliced_route_matches_total", "counter",
	       "Requests a route was selected for, by listener and route (its name, or #N).");
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener *l = &cf->listeners[i];

		for (unsigned k = 0; k < l->nroutes; k++) {
			ob_printf(o, "spliced_route_matches_total{listener=\"");
			ob_label(o, l->name);
			ob_printf(o, "\",route=\"");
			ob_label(o, l->routes[k].name);
			ob_printf(o, "\"} %llu\n",
				  (unsigned long long)atomic_load(&l->routes[k].matches));
		}
	}
}

/* one sample of a per-pool metric: NAME{pool=".." then fmt, as server_sample() */
static void pool_sample(struct obuf *o, const char *name, const struct pool *p, const char *fmt,
			...) __attribute__((format(printf, 4, 5)));
static void pool_sample(struct obuf *o, const char *name, const struct pool *p, const char *fmt,
			...)
{
	va_list ap;

	ob_printf(o, "%s{pool=\"", name);
	ob_label(o, p->name);
	ob_printf(o, "\"");
	va_start(ap, fmt);
	ob_vprintf(o, fmt, ap);
	va_end(ap);
}

/* retries, the queue and slow-server ejections of every pool */
static void render_pools(struct config *cf, struct obuf *o)
{
	family(o, "spliced_pool_retries_total", "counter",
	       "Tries after the first of a request, by pool and cause (retry_on: connect_failure, "
	       "timeout, reset, 502, 503, 504).");
	for (unsigned i = 0; i < cf->npools; i++)
		for (unsigned k = 0; k < STATS_RETRY_CAUSES; k++)
			pool_sample(o, "spliced_pool_retries_total", &cf->pools[i],
				    ",cause=\"%s\"} %llu\n", stats_retry_cause_name(k),
				    (unsigned long long)stats_get(&cf->pools[i].st.retries[k]));
	family(o, "spliced_pool_queue_length", "gauge",
	       "Requests waiting for a server slot (max_conn) now.");
	for (unsigned i = 0; i < cf->npools; i++)
		pool_sample(o, "spliced_pool_queue_length", &cf->pools[i], "} %u\n",
			    atomic_load(&cf->pools[i].queue.len));
	family(o, "spliced_pool_queued_total", "counter",
	       "Requests that waited in the pool's queue for a server slot.");
	for (unsigned i = 0; i < cf->npools; i++)
		pool_sample(o, "spliced_pool_queued_total", &cf->pools[i], "} %llu\n",
			    (unsigned long long)stats_get(&cf->pools[i].st.queued));
	family(o, "spliced_pool_queue_rejected_total", "counter",
	       "Requests answered 503 by the queue: full (on arrival) or timeout (waited too long).");
	for (unsigned i = 0; i < cf->npools; i++) {
		pool_sample(o, "spliced_pool_queue_rejected_total", &cf->pools[i],
			    ",reason=\"full\"} %llu\n",
			    (unsigned long long)stats_get(&cf->pools[i].st.queue_full));
		pool_sample(o, "spliced_pool_queue_rejected_total", &cf->pools[i],
			    ",reason=\"timeout\"} %llu\n",
			    (unsigned long long)stats_get(&cf->pools[i].st.queue_timeout));
	}
	family(o, "spliced_pool_slow_ejections_total", "counter",
	       "Servers ejected by the pool's `eject slow` rule.");
	for (unsigned i = 0; i < cf->npools; i++)
		pool_sample(o, "spliced_pool_slow_ejections_total", &cf->pools[i], "} %llu\n",
			    (unsigned long long)stats_get(&cf->pools[i].st.slow_ejections));
}

static void render_requests(struct config *cf, struct obuf *o)
{
	family(o, "spliced_requests_total", "counter",
	       "Requests answered (tunnels count when they end), by listener, pool and status "
	       "code; pool=\"\" when no pool was chosen, code=\"0\" when nothing was answered.");
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener *l = &cf->listeners[i];

		for (unsigned s = 0; s < STATS_CODE_SLOTS; s++) {
			struct stats_code *sc = &l->st.codes[s];

			if (!atomic_load_explicit(&sc->ready, memory_order_acquire))
				continue;
			ob_printf(o, "spliced_requests_total{listener=\"");
			ob_label(o, l->name);
			ob_printf(o, "\",pool=\"");
			ob_label(o, sc->pool);
			ob_printf(o, "\",code=\"%u\"} %llu\n", sc->code,
				  (unsigned long long)stats_get(&sc->count));
		}
	}
	family(o, "spliced_request_duration_seconds", "histogram",
	       "Time from a complete request head to the end of its response, by listener.");
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener *l = &cf->listeners[i];
		uint64_t cum = 0;

		for (unsigned b = 0; b <= STATS_DUR_BUCKETS; b++) {
			cum += stats_get(&l->st.dur_bucket[b]);
			ob_printf(o, "spliced_request_duration_seconds_bucket{listener=\"");
			ob_label(o, l->name);
			if (b < STATS_DUR_BUCKETS)
				ob_printf(o, "\",le=\"%g\"} %llu\n",
					  (double)stats_dur_bound_ms(b) / 1000,
					  (unsigned long long)cum);
			else
				ob_printf(o, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		}
		ob_printf(o, "spliced_request_duration_seconds_sum{listener=\"");
		ob_label(o, l->name);
		ob_printf(o, "\"} %.3f\n", (double)stats_get(&l->st.dur_sum_ms) / 1000);
		ob_printf(o, "spliced_request_duration_seconds_count{listener=\"");
		ob_label(o, l->name);
		ob_printf(o, "\"} %llu\n", (unsigned long long)cum);
	}
	family(o, "spliced_listener_connections_total", "counter",
	       "Client connections accepted, by listener.");
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		ob_printf(o, "spliced_listener_connections_total{listener=\"");
		ob_label(o, cf->listeners[i].name);
		ob_printf(o, "\"} %llu\n",
			  (unsigned long long)stats_get(&cf->listeners[i].st.connections));
	}
}

static void render_servers(struct config *cf, struct obuf *o)
{
	static const char *const states[] = {"up", "down", "draining", "maintenance", "ejected"};
	struct health_view *v = calloc(cf->nservers ? cf->nservers : 1, sizeof(*v));

	if (!v) {
		o->failed = 1;
		return;
	}
	for (unsigned i = 0; i < cf->nservers; i++)
		health_server_view(cf->servers[i], &v[i]);

	family(o, "spliced_server_up", "gauge",
	       "1 when the server takes new requests (state up, not ejected, weight > 0).");
	for (unsigned i = 0; i < cf->nservers; i++) {
		struct server *s = cf->servers[i];
		int up = v[i].state == SRV_UP && !v[i].ejected &&
			 __atomic_load_n(&s->weight, __ATOMIC_RELAXED) > 0;

		server_sample(o, "spliced_server_up", s, "} %d\n", up);
	}
	family(o, "spliced_server_state", "gauge",
	       "1 for the server's current state (ejected: passively ejected while up).");
	for (unsigned i = 0; i < cf->nservers; i++) {
		const char *cur = v[i].state == SRV_UP && v[i].ejected
					  ? "ejected"
					  : health_state_name(v[i].state);

		for (unsigned k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
			server_sample(o, "spliced_server_state", cf->servers[i],
				      ",state=\"%s\"} %d\n", states[k], !strcmp(cur, states[k]));
		}
	}
	family(o, "spliced_server_weight", "gauge",
	       "Configured weight (changed at run time by splicectl server set ... weight).");
	for (unsigned i = 0; i < cf->nservers; i++) {
		server_sample(o, "spliced_server_weight", cf->servers[i], "} %u\n",
			      __atomic_load_n(&cf->servers[i]->weight, __ATOMIC_RELAXED));
	}
	family(o, "spliced_server_balancer_weight", "gauge",
	       "Weight the balancer uses now (0 when not usable; ramps during slow start).");
	for (unsigned i = 0; i < cf->nservers; i++) {
		server_sample(o, "spliced_server_balancer_weight", cf->servers[i], "} %u\n",
			      v[i].lb_weight);
	}
	family(o, "spliced_server_active_connections", "gauge",
	       "Upstream connections open to the server.");
	for (unsigned i = 0; i < cf->nservers; i++) {
		int64_t a = atomic_load(&cf->servers[i]->conn_active);

		server_sample(o, "spliced_server_active_connections", cf->servers[i], "} %lld\n",
			      (long long)(a > 0 ? a : 0));
	}
	family(o, "spliced_server_requests_total", "counter", "Requests sent to the server.");
	for (unsigned i = 0; i < cf->nservers; i++) {
		server_sample(o, "spliced_server_requests_total", cf->servers[i], "} %llu\n",
			      (unsigned long long)atomic_load(&cf->servers[i]->requests));
	}
	family(o, "spliced_server_connections_total", "counter",
	       "Upstream connections opened to the server.");
	for (unsigned i = 0; i < cf->nservers; i++) {
		server_sample(o, "spliced_server_connections_total", cf->servers[i], "} %llu\n",
			      (unsigned long long)atomic_load(&cf->servers[i]->conn_total));
	}
	family(o, "spliced_server_connect_failures_total", "counter",
	       "Failed upstream connects to the server.");
	for (unsigned i = 0; i < cf->nservers; i++) {
		server_sample(o, "spliced_server_connect_failures_total", cf->servers[i],
			      "} %llu\n",
			      (unsigned long long)atomic_load(&cf->servers[i]->conn_fail));
	}
	family(o, "spliced_server_bytes_total", "counter",
	       "Bytes relayed for the server's requests by direction (up: client to server) and "
	       "path (userspace: moved by the daemon, kernel: redirected by the BPF verdict), "
	       "counted when a request or tunnel ends.");
	for (unsigned i = 0; i < cf->nservers; i++) {
		struct server *s = cf->servers[i];
		struct {
			const char *dir, *path;
			uint64_t v;
		} b[] = {
			{"up", "userspace", atomic_load(&s->bytes_up)},
			{"down", "userspace", atomic_load(&s->bytes_down)},
			{"up", "kernel", atomic_load(&s->kern_bytes_up)},
			{"down", "kernel", atomic_load(&s->kern_bytes_down)},
		};

		for (unsigned k = 0; k < 4; k++) {
			server_sample(o, "spliced_server_bytes_total", s,
				      ",direction=\"%s\",path=\"%s\"} %llu\n", b[k].dir, b[k].path,
				      (unsigned long long)b[k].v);
		}
	}
	family(o, "spliced_health_check_duration_seconds", "gauge",
	       "Duration of the server's last active health check.");
	for (unsigned i = 0; i < cf->nservers; i++) {
		if (v[i].last_ok < 0)
			continue;
		server_sample(o, "spliced_health_check_duration_seconds", cf->servers[i],
			      "} %.6f\n", (double)v[i].last_latency_us / 1e6);
	}
	family(o, "spliced_health_check_up", "gauge",
	       "1 when the server's last active health check passed.");
	for (unsigned i = 0; i < cf->nservers; i++) {
		if (v[i].last_ok < 0)
			continue;
		server_sample(o, "spliced_health_check_up", cf->servers[i], "} %d\n", v[i].last_ok);
	}
	family(o, "spliced_health_checks_total", "counter", "Active health checks completed.");
	for (unsigned i = 0; i < cf->nservers; i++) {
		server_sample(o, "spliced_health_checks_total", cf->servers[i], "} %llu\n",
			      (unsigned long long)v[i].checks);
	}
	free(v);
}

void metrics_render(struct daemon *d, struct obuf *o)
{
	struct config *cf = d->cf;
	struct spliced_kern_counters k;

	family(o, "spliced_info", "gauge", "Version of the running daemon.");
	ob_printf(o, "spliced_info{version=\"%s\"} 1\n", SPLICED_VERSION);
	family(o, "spliced_uptime_seconds", "gauge", "Seconds since the daemon started.");
	ob_printf(o, "spliced_uptime_seconds %llu\n",
		  (unsigned long long)((clock_ms() - d->start_ms) / 1000));
	family(o, "spliced_config_generation", "gauge",
	       "Configuration generation: 1 at start, +1 per successful reload.");
	ob_printf(o, "spliced_config_generation %u\n", d->generation);
	family(o, "spliced_config_reloads_total", "counter", "Configuration reloads by result.");
	ob_printf(o, "spliced_config_reloads_total{result=\"ok\"} %llu\n",
		  (unsigned long long)d->reloads);
	ob_printf(o, "spliced_config_reloads_total{result=\"failed\"} %llu\n",
		  (unsigned long long)d->reload_failures);
	family(o, "spliced_log_dropped_total", "counter",
	       "Access log lines dropped because the target (file, pipe, syslog) did not keep up.");
	ob_printf(o, "spliced_log_dropped_total %llu\n", (unsigned long long)accesslog_dropped());

	render_requests(cf, o);
	render_routes(cf, o);

	family(o, "spliced_bytes_total", "counter",
	       "Bytes relayed by direction (up: client to server) and path (userspace: moved by "
	       "the daemon with read/write or splice(2); kernel: redirected by the BPF verdict), "
	       "counted when a request or tunnel ends.");
	ob_printf(o, "spliced_bytes_total{direction=\"up\",path=\"userspace\"} %llu\n",
		  (unsigned long long)stats_get(&g_stats.user_bytes_up));
	ob_printf(o, "spliced_bytes_total{direction=\"down\",path=\"userspace\"} %llu\n",
		  (unsigned long long)stats_get(&g_stats.user_bytes_down));
	ob_printf(o, "spliced_bytes_total{direction=\"up\",path=\"kernel\"} %llu\n",
		  (unsigned long long)stats_get(&g_stats.kern_bytes_up));
	ob_printf(o, "spliced_bytes_total{direction=\"down\",path=\"kernel\"} %llu\n",
		  (unsigned long long)stats_get(&g_stats.kern_bytes_down));
	family(o, "spliced_splice_bytes_total", "counter",
	       "Of the userspace bytes: body bytes moved with splice(2), by direction (live).");
	ob_printf(o, "spliced_splice_bytes_total{direction=\"up\"} %llu\n",
		  (unsigned long long)stats_get(&g_stats.splice_bytes_up));
	ob_printf(o, "spliced_splice_bytes_total{direction=\"down\"} %llu\n",
		  (unsigned long long)stats_get(&g_stats.splice_bytes_down));
	if (splice_read_kern_counters(&k) == 0) {
		family(o, "spliced_kernel_redirect_bytes_total", "counter",
		       "Bytes the BPF verdict redirected so far (live, both directions).");
		ob_printf(o, "spliced_kernel_redirect_bytes_total %llu\n",
			  (unsigned long long)k.redirect_bytes);
		family(o, "spliced_kernel_skbs_total", "counter",
		       "skbs seen by the BPF verdict, by what it did with them.");
		ob_printf(o, "spliced_kernel_skbs_total{verdict=\"redirect\"} %llu\n",
			  (unsigned long long)k.redirect_skbs);
		ob_printf(o, "spliced_kernel_skbs_total{verdict=\"pass\"} %llu\n",
			  (unsigned long long)k.pass_skbs);
		ob_printf(o, "spliced_kernel_skbs_total{verdict=\"drop\"} %llu\n",
			  (unsigned long long)k.drop_skbs);
	}

	family(o, "spliced_connections_active", "gauge", "Client connections open.");
	ob_printf(o, "spliced_connections_active %u\n", atomic_load(&g_nconns));
	family(o, "spliced_connections_total", "counter", "Client connections accepted.");
	ob_printf(o, "spliced_connections_total %llu\n",
		  (unsigned long long)stats_get(&g_stats.connections_total));
	family(o, "spliced_tunnels_total", "counter", "Upgrade and CONNECT tunnels ended.");
	ob_printf(o, "spliced_tunnels_total %llu\n",
		  (unsigned long long)stats_get(&g_stats.tunnels_total));
	family(o, "spliced_tls_handshakes_total", "counter", "Client TLS handshakes by result.");
	ob_printf(o, "spliced_tls_handshakes_total{result=\"ok\"} %llu\n",
		  (unsigned long long)stats_get(&g_stats.tls_ok));
	ob_printf(o, "spliced_tls_handshakes_total{result=\"failed\"} %llu\n",
		  (unsigned long long)stats_get(&g_stats.tls_failed));
	family(o, "spliced_errors_total", "counter",
	       "Errors by reason: responses spliced generated (parse_400, no_route_404, ...) and "
	       "events (connect_failed per attempt, upstream_broken, upstream_unsolicited, "
	       "client_aborted, tls_handshake, over_capacity_closed, accept_paused, "
	       "max_connections, header_dropped).");
	for (unsigned e = 0; e < STATS_ERR_MAX; e++)
		ob_printf(o, "spliced_errors_total{reason=\"%s\"} %llu\n", stats_error_name(e),
			  (unsigned long long)stats_get(&g_stats.errors[e]));
	{
		/* SYNs the listener filter dropped (bpf/acl.bpf.c): refused before accept */
		uint64_t seen = 0, dropped = 0;

		(void)acl_kernel_counters(&seen, &dropped);
		ob_printf(o, "spliced_errors_total{reason=\"acl_kernel_drop\"} %llu\n",
			  (unsigned long long)dropped);
	}

	render_pools(cf, o);
	render_servers(cf, o);
}

/* ---- the HTTP side ---- */

static void respond(struct m_client *cl, int status, const char *reason, const char *ctype,
		    const struct obuf *body, int head_only)
{
	size_t len = body ? body->len : 0;

	ob_printf(&cl->a.out,
		  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		  "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		  status, reason, ctype, len);
	if (body && !head_only)
		ob_put(&cl->a.out, body->p, body->len);
	cl->answered = 1;
}

static void respond_text(struct m_client *cl, int status, const char *reason)
{
	struct obuf b = {0};

	ob_printf(&b, "%d %s\n", status, reason);
	respond(cl, status, reason, "text/plain; charset=utf-8", &b, 0);
	ob_free(&b);
}

/* a whole head is in cl->in: answer it */
static void handle_request(struct daemon *d, struct m_client *cl)
{
	char method[16], target[256], version[16];
	int head;

	cl->in[cl->inlen < sizeof(cl->in) ? cl->inlen : sizeof(cl->in) - 1] = '\0';
	if (sscanf(cl->in, "%15s %255s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7)) {
		respond_text(cl, 400, "Bad Request");
		return;
	}
	if (strcmp(target, "/metrics") && strncmp(target, "/metrics?", 9)) {
		respond_text(cl, 404, "Not Found");
		return;
	}
	head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !head) {
		respond_text(cl, 405, "Method Not Allowed");
		return;
	}
	{
		struct obuf body = {.max = 64u << 20};

		metrics_render(d, &body);
		if (body.failed)
			respond_text(cl, 500, "Internal Server Error");
		else
			respond(cl, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body,
				head);
		ob_free(&body);
	}
}

static int head_complete(const struct m_client *cl)
{
	return memmem(cl->in, cl->inlen, "\r\n\r\n", 4) || memmem(cl->in, cl->inlen, "\n\n", 2);
}

/* a response is still being sent: what a full client list closes last (an idle connection,
 * a request still arriving, or one that only waits for the client's FIN goes first) */
static int m_in_progress(const struct admin_client *a)
{
	const struct m_client *cl = (const struct m_client *)a;

	return cl->answered && ob_pending(&a->out) > 0;
}

static void client_event(struct daemon *d, int fd, uint32_t events, void *arg)
{
	struct m_client *cl = arg;

	(void)fd;
	if (events & EPOLLERR) {
		admin_client_close(d, &cl->a);
		return;
	}
	while (!cl->answered) {
		ssize_t r;

		if (cl->inlen == sizeof(cl->in) - 1) {
			respond_text(cl, 431, "Request Header Fields Too Large");
			break;
		}
		r = recv(cl->a.fd, cl->in + cl->inlen, sizeof(cl->in) - 1 - cl->inlen,
			 MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN)
			return;
		if (r <= 0) {
			admin_client_close(d, &cl->a);
			return;
		}
		cl->inlen += (size_t)r;
		if (head_complete(cl))
			handle_request(d, cl);
	}
	{
		int rc = ob_flush(&cl->a.out, cl->a.fd);

		if (rc == -EAGAIN)
			return;
		/* sent (or the client is gone): one response per connection. Unread request
		 * bytes would turn the close into a RST that may destroy the response, so
		 * half-close first and let the timer reap it if the client never closes */
		if (rc == 0 && !cl->a.out.failed) {
			char sink[512];

			unsigned budget = 64;

			shutdown(cl->a.fd, SHUT_WR);
			/* bounded: a client that keeps sending is reaped by the timer */
			while (recv(cl->a.fd, sink, sizeof(sink), MSG_DONTWAIT) > 0 && --budget)
				;
			if (!budget)
				return;
			if (!(events & (EPOLLRDHUP | EPOLLHUP))) {
				ssize_t r = recv(cl->a.fd, sink, sizeof(sink), MSG_DONTWAIT);

				if (r == -1 && errno == EAGAIN)
					return; /* wait for the client's FIN */
			}
		}
		admin_client_close(d, &cl->a);
	}
}

static int open_socket(const struct sockaddr_storage *addr, socklen_t len, const char *str,
		       FILE *errf, int quiet);

/* the same address, port and family */
static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return 0;
}

/*
 * inherit_fd - the listening socket the old process handed down (ENV_FD) when it listens on
 * addr; else -1 (a socket on another address is closed: it was the old process's).
 */
static int inherit_fd(const struct sockaddr_storage *addr)
{
	struct sockaddr_storage ss;
	int fd = admin_inherit_fd(&M.srv, &ss);

	if (fd >= 0 && !same_addr(&ss, addr)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* every second: an address the previous process still held is taken once it is free */
static void take_pending(struct daemon *d)
{
	if (M.pending && M.srv.lfd < 0) {
		int lfd = open_socket(&M.paddr, M.plen, M.addr, NULL, 1);

		if (lfd >= 0 && admin_watch(d, &M.srv, lfd)) {
			close(lfd);
			lfd = -1;
		}
		if (lfd >= 0) {
			M.srv.lfd = lfd;
			M.pending = 0;
			admin_publish_fd(&M.srv, lfd);
			log_info("metrics endpoint on http://%s/metrics", M.addr);
		}
	}
}

void metrics_takeover(void)
{
	M.takeover = 1;
}

/* a listening socket on addr; -errno (reported unless quiet) */
static int open_socket(const struct sockaddr_storage *addr, socklen_t len, const char *str,
		       FILE *errf, int quiet)
{
	int fd, one = 1;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto err;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (addr->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (const struct sockaddr *)addr, len) == -1 || listen(fd, 64) == -1) {
		int err = errno;

		close(fd);
		errno = err;
		goto err;
	}
	return fd;
err : {
	int err = errno;

	if (!quiet)
		log_warnx("metrics endpoint %s: %s", str, strerror(err));
	if (errf)
		fprintf(errf, "metrics endpoint %s: %s\n", str, strerror(err));
	return -err;
}
}

int metrics_reconfigure(struct daemon *d, const struct config *old_cf, const struct config *new_cf,
			FILE *errf)
{
	const char *na = new_cf ? new_cf->metrics : "";
	int fd = -1, rc;

	/* the same address spelled another way is the same socket */
	if (old_cf && (M.srv.lfd >= 0) == (na[0] != 0) &&
	    (!na[0] ||
	     (old_cf->metrics_addrlen == new_cf->metrics_addrlen &&
	      !memcmp(&old_cf->metrics_addr, &new_cf->metrics_addr, new_cf->metrics_addrlen))))
		return 0;
	M.pending = 0;
	if (na[0]) {
		fd = M.takeover && !old_cf ? inherit_fd(&new_cf->metrics_addr) : -1;
		if (fd >= 0)
			log_info("metrics endpoint %s inherited from the previous process", na);
		else
			fd = open_socket(&new_cf->metrics_addr, new_cf->metrics_addrlen, na,
					 old_cf || !M.takeover ? errf : NULL,
					 !old_cf && M.takeover);
		if (fd == -EADDRINUSE && !old_cf && M.takeover) {
			/* the old process serves scrapes until it exits; then this one does */
			log_info("metrics endpoint %s: still held by the previous process, taken "
				 "when it is free",
				 na);
			M.pending = 1;
			M.paddr = new_cf->metrics_addr;
			M.plen = new_cf->metrics_addrlen;
			fd = -1;
			goto timer;
		}
		if (fd < 0)
			return fd;
		rc = admin_watch(d, &M.srv, fd);
		if (rc) {
			close(fd);
			if (errf)
				fprintf(errf, "metrics endpoint %s: %s\n", na, strerror(-rc));
			return rc;
		}
timer:
		admin_timer_start(d, &M.srv);
	}
	if (M.srv.lfd >= 0) {
		daemon_unwatch(d, M.srv.lfd);
		close(M.srv.lfd);
		log_info("metrics endpoint %s closed", M.addr);
	}
	M.srv.lfd = fd;
	M.srv.paused = 0;
	admin_publish_fd(&M.srv, fd);
	snprintf(M.addr, sizeof(M.addr), "%s", na);
	if (M.pending)
		return 0;
	if (fd >= 0)
		log_info("metrics endpoint on http://%s/metrics", na);
	return 0;
}

void metrics_close(struct daemon *d)
{
	admin_close_all(d, &M.srv);
	if (M.srv.lfd >= 0) {
		daemon_unwatch(d, M.srv.lfd);
		close(M.srv.lfd);
		M.srv.lfd = -1;
		admin_publish_fd(&M.srv, -1);
	}
	M.pending = 0;
	admin_timer_stop(d, &M.srv);
}

const struct daemon_service metrics_service = {
	.name = "metrics endpoint",
	.addr_off = offsetof(struct config, metrics),
	.reconfigure = metrics_reconfigure,
	.takeover = metrics_takeover,
	.close = metrics_close,
};
