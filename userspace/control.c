// SPDX-License-Identifier: MIT
/*
 * control.c - the control socket: listening socket lifecycle, per-client buffered line reads
 * and answers, and the commands (see control.h, docs/OPERATIONS.md).
 *
 * Everything runs on the main thread: the socket and its clients are fds watched by the main
 * loop, and the commands that change the running configuration (server set, reload) run where
 * reloads and upgrades run, so they never race each other. Reading the workers' connections
 * goes through conn_snapshot() (a short per-worker lock, no I/O under it); answers are built in
 * memory first and sent without blocking.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "admin.h"
#include "clock.h"
#include "conn.h"
#include "control.h"
#include "health_state.h"
#include "log.h"
#include "obuf.h"
#include "splice.h"
#include "stats.h"
#include "version.h"
#include "worker.h"

#define MAX_ARGS 16
/* the listening socket's number, for the process a live upgrade executes (it inherits the fd) */
#define ENV_FD "SPLICED_CONTROL_FD"

struct ctl_client {
	struct admin_client a; /* first: fd, output buffer, idle clock (since the last activity) */
	char in[CONTROL_LINE_MAX];
	size_t inlen;
	int eof;     /* the client shut down its side: answer what it sent, then close */
	int closing; /* close once the answer is out */
	int discard; /* then half-close and drop input until EOF (an over-long line: closing
		      * with unread input would reset the connection and lose the ERR line) */
};

static void client_event(struct daemon *d, int fd, uint32_t events, void *arg);

static struct {
	struct admin_srv srv;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file we created: removed at close only while it is still ours */
	ino_t ino;
	int takeover; /* started by a live upgrade: inherit or replace the old process's socket */
} C = {.srv = {.name = "control",
	       .env_fd = ENV_FD,
	       .client_size = sizeof(struct ctl_client),
	       .max_clients = CONTROL_CLIENTS_MAX,
	       .busy = "ERR too many control clients\n",
	       .out_max = 64u << 20,
	       .idle_ms = CONTROL_IDLE_MS,
	       .client_event = client_event,
	       .lfd = -1,
	       .tfd = -1}};

static void report(FILE *errf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(FILE *errf, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s", msg);
	if (errf)
		fprintf(errf, "%s\n", msg);
}

/* ---- commands ---- */

static uint64_t now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *splice_mode_name(enum splice_mode m)
{
	return m == SPLICE_ON ? "on" : m == SPLICE_OFF ? "off" : "auto";
}

static const char *admin_name(uint8_t admin)
{
	if (admin & SRV_ADMIN_MAINT)
		return "maintenance";
	if (admin & SRV_ADMIN_DRAIN)
		return "drain";
	return "none";
}

/* the state shown to operators: ejection and a zero weight are visible as such */
static const char *server_state(struct server *s, const struct health_view *v)
{
	if (v->state == SRV_UP && v->ejected)
		return "ejected";
	if (v->state == SRV_UP && !__atomic_load_n(&s->weight, __ATOMIC_RELAXED))
		return "draining";
	return health_state_name(v->state);
}

static void check_text(const struct server *s, const struct health_view *v, char *out, size_t len)
{
	if (s->pool->health.type == HEALTH_CHECK_NONE)
		snprintf(out, len, "-");
	else if (v->last_ok < 0)
		snprintf(out, len, "pending");
	else
		snprintf(out, len, "%s:%s", v->last_ok ? "ok" : "fail", v->last_result);
}

static unsigned total_connections(void)
{
	return atomic_load(&g_nconns);
}

static int show_info(struct daemon *d, int json, struct obuf *o)
{
	struct config *cf = d->cf;
	uint64_t up_ms = clock_ms() - d->start_ms;
	int kern = splice_kernel_available();
	char started[32];
	struct tm tm;

	gmtime_r(&d->start_wall, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (json) {
		ob_printf(o,
			  "{\"version\":\"%s\",\"pid\":%d,\"started\":\"%s\",\"uptime_s\":%llu,"
			  "\"config\":",
			  SPLICED_VERSION, (int)getpid(), started,
			  (unsigned long long)(up_ms / 1000));
		ob_json_str(o, cf->file);
		ob_printf(o,
			  ",\"generation\":%u,\"workers\":%u,\"connections\":%u,\"reloads\":%llu,"
			  "\"reload_failures\":%llu,\"data_paths\":{\"kernel\":%s,\"splice\":true,"
			  "\"ktls\":false},\"listeners\":[",
			  d->generation, d->nworkers, total_connections(),
			  (unsigned long long)d->reloads, (unsigned long long)d->reload_failures,
			  kern ? "true" : "false");
		for (unsigned i = 0; i < cf->nlisteners; i++) {
			struct listener *l = &cf->listeners[i];

			ob_printf(o, "%s{\"name\":", i ? "," : "");
			ob_json_str(o, l->name);
			ob_printf(o, ",\"tls\":%s,\"splice\":\"%s\",\"binds\":[",
				  l->tls ? "true" : "false", splice_mode_name(l->splice));
			for (unsigned b = 0; b < l->nbinds; b++) {
				ob_printf(o, "%s", b ? "," : "");
				ob_json_str(o, l->binds[b].str);
			}
			ob_printf(o, "]}");
		}
		ob_printf(o, "],\"pools\":%u,\"servers\":%u}\n", cf->npools, cf->nservers);
		return 0;
	}
	ob_printf(o, "version      %s\n", SPLICED_VERSION);
	ob_printf(o, "pid          %d\n", (int)getpid());
	ob_printf(o, "started      %s\n", started);
	ob_printf(o, "uptime       %llus\n", (unsigned long long)(up_ms / 1000));
	ob_printf(o, "config       %s\n", cf->file);
	ob_printf(o, "generation   %u\n", d->generation);
	ob_printf(o, "reloads      %llu (%llu failed)\n", (unsigned long long)d->reloads,
		  (unsigned long long)d->reload_failures);
	ob_printf(o, "workers      %u\n", d->nworkers);
	ob_printf(o, "connections  %u\n", total_connections());
	ob_printf(o, "data paths   kernel %s, splice yes, ktls no\n", kern ? "yes" : "no");
	ob_printf(o, "pools        %u\n", cf->npools);
	ob_printf(o, "servers      %u\n", cf->nservers);
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener *l = &cf->listeners[i];

		ob_printf(o, "listener     %s", l->name);
		for (unsigned b = 0; b < l->nbinds; b++)
			ob_printf(o, " %s", l->binds[b].str);
		ob_printf(o, " (%s, splice %s)\n", l->tls ? "tls" : "http",
			  splice_mode_name(l->splice));
	}
	return 0;
}

static int show_pools(struct daemon *d, int json, struct obuf *o)
{
	struct config *cf = d->cf;

	if (json)
		ob_printf(o, "[");
	else
		ob_printf(o, "%-16s %-12s %7s %4s %7s %10s %8s %8s %8s %8s %8s\n", "POOL",
			  "BALANCE", "SERVERS", "UP", "ACTIVE", "REQUESTS", "1XX", "2XX", "3XX",
			  "4XX", "5XX");
	for (unsigned i = 0; i < cf->npools; i++) {
		struct pool *p = &cf->pools[i];
		struct pool_stats *st = &p->st;
		unsigned up = 0;
		int64_t active = 0;

		for (unsigned s = 0; s < p->nservers; s++) {
			int64_t a = atomic_load(&p->servers[s].conn_active);

			up += health_server_usable(&p->servers[s], clock_ms());
			active += a > 0 ? a : 0;
		}
		if (json) {
			ob_printf(o, "%s{\"name\":", i ? "," : "");
			ob_json_str(o, p->name);
			ob_printf(
				o,
				",\"balance\":\"%s\",\"servers\":%u,\"usable\":%u,\"tls\":%s,"
				"\"active\":%lld,\"requests\":%llu,\"status\":{\"1xx\":%llu,\"2xx\":%llu,"
				"\"3xx\":%llu,\"4xx\":%llu,\"5xx\":%llu,\"other\":%llu}}",
				lb_algo_name(p->algo), p->nservers, up,
				p->tls_on ? "true" : "false", (long long)active,
				(unsigned long long)stats_get(&st->requests),
				(unsigned long long)stats_get(&st->status_class[1]),
				(unsigned long long)stats_get(&st->status_class[2]),
				(unsigned long long)stats_get(&st->status_class[3]),
				(unsigned long long)stats_get(&st->status_class[4]),
				(unsigned long long)stats_get(&st->status_class[5]),
				(unsigned long long)stats_get(&st->status_class[0]));
		} else {
			ob_printf(
				o,
				"%-16s %-12s %7u %4u %7lld %10llu %8llu %8llu %8llu %8llu %8llu\n",
				p->name, lb_algo_name(p->algo), p->nservers, up, (long long)active,
				(unsigned long long)stats_get(&st->requests),
				(unsigned long long)stats_get(&st->status_class[1]),
				(unsigned long long)stats_get(&st->status_class[2]),
				(unsigned long long)stats_get(&st->status_class[3]),
				(unsigned long long)stats_get(&st->status_class[4]),
				(unsigned long long)stats_get(&st->status_class[5]));
		}
	}
	if (json)
		ob_printf(o, "]\n");
	return 0;
}

/* a route's conditions in the configuration's words, "; "-separated, into out */
static void route_conditions(const struct route *r, char *out, size_t cap)
{
	size_t off = 0;
	char one[512];

	out[0] = '\0';
	for (unsigned h = 0; h < r->nhosts; h++)
		off += (size_t)snprintf(out + off, cap - off, "%shost %s", off ? "; " : "",
					r->hosts[h]);
	if (r->path[0] && off < cap)
		off += (size_t)snprintf(out + off, cap - off, "%spath %s", off ? "; " : "",
					r->path);
	for (unsigned i = 0; i < r->nconds && off < cap; i++) {
		rule_cond_describe(&r->conds[i], one, sizeof(one));
		off += (size_t)snprintf(out + off, cap - off, "%s%s", off ? "; " : "", one);
	}
}

static int show_routes(struct daemon *d, int json, struct obuf *o)
{
	struct config *cf = d->cf;
	char conds[2048];
	int first = 1;

	if (json)
		ob_printf(o, "[");
	else
		ob_printf(o, "%-16s %-16s %-16s %10s %s\n", "LISTENER", "ROUTE", "POOL", "MATCHES",
			  "CONDITIONS");
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener *l = &cf->listeners[i];

		for (unsigned k = 0; k < l->nroutes; k++) {
			struct route *r = &l->routes[k];
			unsigned long long n = atomic_load(&r->matches);
			const char *pool = r->pool ? r->pool->name : "-";

			route_conditions(r, conds, sizeof(conds));
			if (!json) {
				ob_printf(o, "%-16s %-16s %-16s %10llu %s%s\n", l->name, r->name,
					  pool, n, conds[0] ? conds : "(every request)",
					  r->act.ret_code ? " (returns)" : "");
				continue;
			}
			ob_printf(o, "%s{\"listener\":", first ? "" : ",");
			ob_json_str(o, l->name);
			ob_printf(o, ",\"route\":");
			ob_json_str(o, r->name);
			ob_printf(o, ",\"pool\":");
			if (r->pool)
				ob_json_str(o, r->pool->name);
			else
				ob_printf(o, "null");
			ob_printf(o, ",\"matches\":%llu,\"return\":%d,\"conditions\":", n,
				  r->act.ret_code);
			ob_json_str(o, conds);
			ob_printf(o, "}");
			first = 0;
		}
	}
	if (json)
		ob_printf(o, "]\n");
	return 0;
}

static int show_servers(struct daemon *d, int json, struct obuf *o)
{
	struct config *cf = d->cf;

	if (json)
		ob_printf(o, "[");
	else
		ob_printf(o,
			  "%-12s %-12s %-22s %-11s %-11s %6s %6s %8s %9s %6s %-16s %9s %12s "
			  "%12s %12s %12s\n",
			  "POOL", "SERVER", "ADDRESS", "STATE", "ADMIN", "WEIGHT", "LB_W", "ACTIVE",
			  "REQUESTS", "FAILS", "CHECK", "CHECK_US", "USER_UP", "USER_DOWN",
			  "KERN_UP", "KERN_DOWN");
	for (unsigned i = 0; i < cf->nservers; i++) {
		struct server *s = cf->servers[i];
		struct health_view v;
		char check[80];
		int64_t active = atomic_load(&s->conn_active);

		health_server_view(s, &v);
		check_text(s, &v, check, sizeof(check));
		if (active < 0)
			active = 0;
		if (json) {
			ob_printf(o, "%s{\"pool\":", i ? "," : "");
			ob_json_str(o, s->pool->name);
			ob_printf(o, ",\"server\":");
			ob_json_str(o, s->name);
			ob_printf(o, ",\"address\":");
			ob_json_str(o, s->spec);
			ob_printf(
				o,
				",\"state\":\"%s\",\"admin\":\"%s\",\"weight\":%u,\"lb_weight\":%u,"
				"\"backup\":%s,\"active\":%lld,\"connections\":%llu,"
				"\"requests\":%llu,\"failures\":%llu,",
				server_state(s, &v), admin_name(v.admin),
				__atomic_load_n(&s->weight, __ATOMIC_RELAXED), v.lb_weight,
				s->backup ? "true" : "false", (long long)active,
				(unsigned long long)atomic_load(&s->conn_total),
				(unsigned long long)atomic_load(&s->requests),
				(unsigned long long)atomic_load(&s->conn_fail));
			ob_printf(o, "\"check\":{\"result\":");
			ob_json_str(o, check);
			if (v.last_ok < 0)
				ob_printf(o, ",\"latency_us\":null");
			else
				ob_printf(o, ",\"latency_us\":%u", v.last_latency_us);
			ob_printf(o, ",\"checks\":%llu},\"transitions\":%u,\"reason\":",
				  (unsigned long long)v.checks, v.transitions);
			ob_json_str(o, v.reason);
			ob_printf(o,
				  ",\"bytes\":{\"user_up\":%llu,\"user_down\":%llu,"
				  "\"kernel_up\":%llu,\"kernel_down\":%llu}}",
				  (unsigned long long)atomic_load(&s->bytes_up),
				  (unsigned long long)atomic_load(&s->bytes_down),
				  (unsigned long long)atomic_load(&s->kern_bytes_up),
				  (unsigned long long)atomic_load(&s->kern_bytes_down));
		} else {
			char lat[16];

			if (v.last_ok < 0)
				snprintf(lat, sizeof(lat), "-");
			else
				snprintf(lat, sizeof(lat), "%u", v.last_latency_us);
			ob_printf(
				o,
				"%-12s %-12s %-22s %-11s %-11s %6u %6u %8lld %9llu %6llu %-16s %9s "
				"%12llu %12llu %12llu %12llu\n",
				s->pool->name, s->name, s->spec, server_state(s, &v),
				admin_name(v.admin), __atomic_load_n(&s->weight, __ATOMIC_RELAXED),
				v.lb_weight, (long long)active,
				(unsigned long long)atomic_load(&s->requests),
				(unsigned long long)atomic_load(&s->conn_fail), check, lat,
				(unsigned long long)atomic_load(&s->bytes_up),
				(unsigned long long)atomic_load(&s->bytes_down),
				(unsigned long long)atomic_load(&s->kern_bytes_up),
				(unsigned long long)atomic_load(&s->kern_bytes_down));
		}
	}
	if (json)
		ob_printf(o, "]\n");
	return 0;
}

/* 0, or -ENOMEM (the answer is an ERR) */
static int show_connections(struct daemon *d, int json, struct obuf *o)
{
	unsigned cap = total_connections() + 64, n = 0, first = 1;
	struct conn_info *ci;
	uint64_t now = now_realtime_ns();

	/* connections opened while we walk may not fit: they are left out (counted) */
	ci = calloc(cap, sizeof(*ci));
	if (!ci)
		return -ENOMEM;
	if (json)
		ob_printf(o, "[");
	else
		ob_printf(o,
			  "%-3s %-12s %-23s %-23s %-12s %-12s %-10s %-9s %8s %12s %12s %12s %12s\n",
			  "WRK", "LISTENER", "CLIENT", "UPSTREAM", "POOL", "SERVER", "STATE",
			  "PATH", "AGE_S", "USER_UP", "USER_DOWN", "KERN_UP", "KERN_DOWN");
	for (unsigned w = 0; w < d->nworkers; w++) {
		unsigned got = conn_snapshot(&d->workers[w], ci + n, cap - n);

		n += got < cap - n ? got : cap - n;
	}
	for (unsigned i = 0; i < n; i++) {
		struct conn_info *c = &ci[i];
		uint64_t age_ms = now > c->start_ns ? (now - c->start_ns) / 1000000 : 0;

		if (json) {
			ob_printf(o, "%s{\"worker\":%u,\"listener\":", first ? "" : ",", c->worker);
			first = 0;
			ob_json_str(o, c->listener);
			ob_printf(o, ",\"client\":");
			ob_json_str(o, c->client);
			ob_printf(o, ",\"upstream\":");
			if (c->upstream[0])
				ob_json_str(o, c->upstream);
			else
				ob_printf(o, "null");
			ob_printf(o, ",\"pool\":");
			if (c->pool[0])
				ob_json_str(o, c->pool);
			else
				ob_printf(o, "null");
			ob_printf(o, ",\"server\":");
			if (c->server[0])
				ob_json_str(o, c->server);
			else
				ob_printf(o, "null");
			ob_printf(
				o,
				",\"state\":\"%s\",\"path\":\"%s\",\"age_ms\":%llu,\"requests\":%u,"
				"\"cookie\":%llu,\"bytes\":{\"user_up\":%llu,\"user_down\":%llu,"
				"\"kernel_up\":%llu,\"kernel_down\":%llu}}",
				c->state, c->path, (unsigned long long)age_ms, c->requests,
				(unsigned long long)c->cookie, (unsigned long long)c->user_up,
				(unsigned long long)c->user_down, (unsigned long long)c->kern_up,
				(unsigned long long)c->kern_down);
		} else {
			ob_printf(
				o,
				"%-3u %-12s %-23s %-23s %-12s %-12s %-10s %-9s %8.1f %12llu %12llu "
				"%12llu %12llu\n",
				c->worker, c->listener, c->client,
				c->upstream[0] ? c->upstream : "-", c->pool[0] ? c->pool : "-",
				c->server[0] ? c->server : "-", c->state, c->path,
				(double)age_ms / 1000, (unsigned long long)c->user_up,
				(unsigned long long)c->user_down, (unsigned long long)c->kern_up,
				(unsigned long long)c->kern_down);
		}
	}
	if (json)
		ob_printf(o, "]\n");
	free(ci);
	return 0;
}

static uint64_t *class_counts(struct config *cf, uint64_t out[6])
{
	stats_requests_by_class(cf, out);
	return out;
}

static int show_stats(struct daemon *d, int json, struct obuf *o)
{
	struct spliced_kern_counters k;
	int have_kern = splice_read_kern_counters(&k) == 0;
	uint64_t c6[6], *cls = class_counts(d->cf, c6);
	struct {
		const char *name;
		uint64_t v;
	} rows[] = {
		{"connections_total", stats_get(&g_stats.connections_total)},
		{"connections_active", total_connections()},
		{"requests_total", stats_get(&g_stats.requests_total)},
		{"tunnels_total", stats_get(&g_stats.tunnels_total)},
		{"tls_handshakes_ok", stats_get(&g_stats.tls_ok)},
		{"tls_handshakes_failed", stats_get(&g_stats.tls_failed)},
		{"bytes_user_up", stats_get(&g_stats.user_bytes_up)},
		{"bytes_user_down", stats_get(&g_stats.user_bytes_down)},
		{"requests_1xx", cls[1]},
		{"requests_2xx", cls[2]},
		{"requests_3xx", cls[3]},
		{"requests_4xx", cls[4]},
		{"requests_5xx", cls[5]},
		{"requests_other", cls[0]},
		{"bytes_splice_up", stats_get(&g_stats.splice_bytes_up)},
		{"bytes_splice_down", stats_get(&g_stats.splice_bytes_down)},
		{"bytes_kernel_up", stats_get(&g_stats.kern_bytes_up)},
		{"bytes_kernel_down", stats_get(&g_stats.kern_bytes_down)},
		{"reloads", d->reloads},
		{"reload_failures", d->reload_failures},
	};
	unsigned nrows = sizeof(rows) / sizeof(rows[0]);

	if (json)
		ob_printf(o, "{");
	for (unsigned i = 0; i < nrows; i++) {
		if (json)
			ob_printf(o, "%s\"%s\":%llu", i ? "," : "", rows[i].name,
				  (unsigned long long)rows[i].v);
		else
			ob_printf(o, "%-28s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
	}
	if (json)
		ob_printf(o, ",\"errors\":{");
	for (unsigned e = 0; e < STATS_ERR_MAX; e++) {
		uint64_t v = stats_get(&g_stats.errors[e]);

		if (json)
			ob_printf(o, "%s\"%s\":%llu", e ? "," : "", stats_error_name(e),
				  (unsigned long long)v);
		else
			ob_printf(o, "errors.%-21s %llu\n", stats_error_name(e),
				  (unsigned long long)v);
	}
	{
		/* connection requests the listener filter dropped: refused in the kernel */
		uint64_t seen = 0, dropped = 0;

		(void)acl_kernel_counters(&seen, &dropped);
		if (json)
			ob_printf(o, ",\"acl_kernel_drop\":%llu", (unsigned long long)dropped);
		else
			ob_printf(o, "errors.%-21s %llu\n", "acl_kernel_drop",
				  (unsigned long long)dropped);
	}
	if (json) {
		ob_printf(o, "},\"kernel\":");
		if (have_kern)
			ob_printf(o,
				  "{\"redirect_bytes\":%llu,\"redirect_skbs\":%llu,"
				  "\"pass_skbs\":%llu,\"drop_skbs\":%llu,\"no_peer\":%llu}}\n",
				  (unsigned long long)k.redirect_bytes,
				  (unsigned long long)k.redirect_skbs,
				  (unsigned long long)k.pass_skbs, (unsigned long long)k.drop_skbs,
				  (unsigned long long)k.no_peer);
		else
			ob_printf(o, "null}\n");
	} else if (have_kern) {
		ob_printf(o, "%-28s %llu\n", "kernel.redirect_bytes",
			  (unsigned long long)k.redirect_bytes);
		ob_printf(o, "%-28s %llu\n", "kernel.redirect_skbs",
			  (unsigned long long)k.redirect_skbs);
		ob_printf(o, "%-28s %llu\n", "kernel.pass_skbs", (unsigned long long)k.pass_skbs);
		ob_printf(o, "%-28s %llu\n", "kernel.drop_skbs", (unsigned long long)k.drop_skbs);
		ob_printf(o, "%-28s %llu\n", "kernel.no_peer", (unsigned long long)k.no_peer);
	}
	return 0;
}

static struct server *find_server(struct config *cf, const char *pool, const char *name)
{
	for (unsigned i = 0; i < cf->npools; i++) {
		struct pool *p = &cf->pools[i];

		if (strcmp(p->name, pool))
			continue;
		for (unsigned s = 0; s < p->nservers; s++)
			if (!strcmp(p->servers[s].name, name))
				return &p->servers[s];
	}
	return NULL;
}

/* strict decimal 0..max; 0 or -EINVAL */
static int parse_uint(const char *s, unsigned max, uint32_t *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 10)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static void verb_usage(struct obuf *o, const char *verb);
static int do_help(struct daemon *d, int json, char **av, int ac, struct obuf *o);

/* `server set POOL SERVER weight N|drain|maintenance|ready`; returns 0 or 1 (ERR written) */
static int server_set(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	struct server *s;
	uint32_t w;

	/* the table let through `server set` with 5 or 6 words; the setting says which */
	if (strcmp(av[4], "weight") ? ac != 5 : ac != 6) {
		ob_printf(o, "ERR usage: ");
		verb_usage(o, "server");
		ob_printf(o, "\n");
		return 1;
	}
	s = find_server(d->cf, av[2], av[3]);
	if (!s) {
		ob_printf(o, "ERR no server '%.64s' in pool '%.64s'\n", av[3], av[2]);
		return 1;
	}
	if (!strcmp(av[4], "weight")) {
		if (parse_uint(av[5], 1000, &w) || health_set_weight(s, w)) {
			ob_printf(o, "ERR invalid weight '%.32s' (0 to 1000)\n", av[5]);
			return 1;
		}
	} else if (!strcmp(av[4], "drain") || !strcmp(av[4], "maintenance") ||
		   !strcmp(av[4], "ready")) {
		if (health_set_admin(s, av[4])) {
			ob_printf(o, "ERR cannot set '%s'\n", av[4]);
			return 1;
		}
	} else {
		ob_printf(o,
			  "ERR unknown server setting '%.32s' (weight N, drain, maintenance, "
			  "ready)\n",
			  av[4]);
		return 1;
	}
	{
		struct health_view v;

		health_server_view(s, &v);
		if (json) {
			ob_printf(o, "{\"pool\":");
			ob_json_str(o, s->pool->name);
			ob_printf(o, ",\"server\":");
			ob_json_str(o, s->name);
			ob_printf(o, ",\"state\":\"%s\",\"admin\":\"%s\",\"weight\":%u}\n",
				  server_state(s, &v), admin_name(v.admin),
				  __atomic_load_n(&s->weight, __ATOMIC_RELAXED));
		} else {
			ob_printf(o, "pool %s server %s: state %s, admin %s, weight %u\n",
				  s->pool->name, s->name, server_state(s, &v), admin_name(v.admin),
				  __atomic_load_n(&s->weight, __ATOMIC_RELAXED));
		}
	}
	ob_printf(o, "OK\n");
	return 0;
}

static int show_acl(struct daemon *d, int json, struct obuf *o)
{
	return acl_show(d->cf, json, o);
}

/* `acl deny|allow|del CIDR`: a run-time entry of the listener access lists (acl.h) */
static int acl_set(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	enum acl_op op = !strcmp(av[1], "deny")	   ? ACL_OP_DENY
			 : !strcmp(av[1], "allow") ? ACL_OP_ALLOW
						   : ACL_OP_DEL;
	char err[160];

	(void)d;
	(void)ac;
	if (acl_runtime(op, av[2], err, sizeof(err))) {
		ob_printf(o, "ERR %s\n", err);
		return 1;
	}
	log_info("control: acl %s %s", av[1], av[2]);
	if (json) {
		ob_printf(o, "{\"acl\":\"%s\",\"cidr\":", av[1]);
		ob_json_str(o, av[2]);
		ob_printf(o, ",\"enforced\":\"%s\"}\n", acl_kernel_on() ? "kernel" : "accept");
	}
	ob_printf(o, "OK\n");
	return 0;
}

static int do_reload(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *errf = open_memstream(&buf, &len);
	int rc;

	(void)av;
	(void)ac;
	if (!errf) {
		ob_printf(o, "ERR out of memory\n");
		return 1;
	}
	log_info("control: reloading %s", d->cf->file);
	rc = daemon_reload(d, errf);
	fclose(errf);
	if (json) {
		ob_printf(o, "{\"result\":\"%s\",\"generation\":%u,\"errors\":[",
			  rc ? "failed" : "ok", d->generation);
	}
	{
		char *save = NULL, *line;
		int first = 1;

		for (line = buf ? strtok_r(buf, "\n", &save) : NULL; line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (json) {
				ob_printf(o, "%s", first ? "" : ",");
				ob_json_str(o, line);
			} else {
				ob_printf(o, "%s\n", line);
			}
			first = 0;
		}
	}
	free(buf);
	if (json)
		ob_printf(o, "]}\n");
	if (rc) {
		ob_printf(o, "ERR reload failed, the running configuration is unchanged\n");
		return 1;
	}
	ob_printf(o, "OK\n");
	return 0;
}

/*
 * The commands: `[json] VERB [OBJECT] ARGS...`. A request runs the row whose verb and object
 * (NULL: none) it names, when it has min_words..max_words words ("json" not counted). A `show`
 * row builds a document (0, or -ENOMEM); control_execute() ends it with OK. A `run` row
 * answers the whole request, OK or ERR, and returns 0 or 1 (ERR written).
 */
static const struct ctl_cmd {
	const char *verb;
	const char *object;
	int min_words, max_words;
	const char *args; /* after the verb and object, for usage and help */
	int (*show)(struct daemon *d, int json, struct obuf *o);
	int (*run)(struct daemon *d, int json, char **av, int ac, struct obuf *o);
} cmds[] = {
	{"show", "info", 2, 2, .show = show_info},
	{"show", "pools", 2, 2, .show = show_pools},
	{"show", "servers", 2, 2, .show = show_servers},
	{"show", "routes", 2, 2, .show = show_routes},
	{"show", "connections", 2, 2, .show = show_connections},
	{"show", "stats", 2, 2, .show = show_stats},
	{"show", "acl", 2, 2, .show = show_acl},
	{"acl", "deny", 3, 3, .args = "CIDR", .run = acl_set},
	{"acl", "allow", 3, 3, .args = "CIDR", .run = acl_set},
	{"acl", "del", 3, 3, .args = "CIDR", .run = acl_set},
	{"server", "set", 5, 6, .args = "POOL SERVER weight N|drain|maintenance|ready",
	 .run = server_set},
	{"reload", NULL, 1, 1, .run = do_reload},
	{"help", NULL, 1, 1, .run = do_help},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* "show info|pools|servers|connections|stats", "server set POOL SERVER ...", "reload" */
static void verb_usage(struct obuf *o, const char *verb)
{
	const struct ctl_cmd *last = NULL;

	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS; c++) {
		if (strcmp(c->verb, verb))
			continue;
		if (!last)
			ob_printf(o, "%s", verb);
		if (c->object)
			ob_printf(o, "%s%s", last ? "|" : " ", c->object);
		last = c;
	}
	if (last && last->args)
		ob_printf(o, " %s", last->args);
}

/* the objects of a verb: "info, pools, servers, connections, stats" */
static void verb_objects(struct obuf *o, const char *verb)
{
	int n = 0;

	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS; c++)
		if (!strcmp(c->verb, verb) && c->object)
			ob_printf(o, "%s%s", n++ ? ", " : "", c->object);
}

static int do_help(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	(void)d;
	(void)json;
	(void)av;
	(void)ac;
	ob_printf(o, "commands ([json ] before any of them answers in JSON):\n");
	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS; c++) {
		if (c > cmds && !strcmp(c[-1].verb, c->verb))
			continue; /* a verb's rows are together: one line for them */
		ob_printf(o, "  ");
		verb_usage(o, c->verb);
		ob_printf(o, "\n");
	}
	ob_printf(o, "OK\n");
	return 0;
}

/*
 * No row fits the request av[0..ac) whose verb has rows: say why. A verb without objects takes
 * no other form (its words are an unknown command); one with a choice of objects names them
 * when the object is the only thing wrong; anything else gets the verb's usage.
 */
static int no_fit(struct obuf *o, char **av, int ac)
{
	int objects = 0, fits = 0;

	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS; c++) {
		if (strcmp(c->verb, av[0]))
			continue;
		objects += c->object != NULL;
		fits |= ac >= c->min_words && ac <= c->max_words;
	}
	if (!objects) {
		ob_printf(o, "ERR unknown command '%.32s' (try 'help')\n", av[0]);
	} else if (objects > 1 && fits) {
		ob_printf(o, "ERR unknown object '%.32s' (", av[1]);
		verb_objects(o, av[0]);
		ob_printf(o, ")\n");
	} else {
		ob_printf(o, "ERR usage: ");
		verb_usage(o, av[0]);
		ob_printf(o, "\n");
	}
	return 1;
}

int control_execute(struct daemon *d, const char *line, struct obuf *o)
{
	char copy[CONTROL_LINE_MAX];
	char *av[MAX_ARGS], *save = NULL, *tok;
	const struct ctl_cmd *cmd = NULL;
	int ac = 0, json = 0, known = 0;

	for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p >= 0x7f) {
			ob_printf(o, "ERR control or non-ASCII character in the request\n");
			return 1;
		}
	}
	if (strlen(line) >= sizeof(copy)) {
		ob_printf(o, "ERR request too long\n");
		return 1;
	}
	strcpy(copy, line);
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (ac == MAX_ARGS) {
			ob_printf(o, "ERR too many arguments\n");
			return 1;
		}
		av[ac++] = tok;
	}
	if (ac && !strcmp(av[0], "json")) {
		json = 1;
		memmove(av, av + 1, (size_t)--ac * sizeof(av[0]));
	}
	if (!ac) {
		ob_printf(o, "ERR empty request (try 'help')\n");
		return 1;
	}
	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS && !cmd; c++) {
		if (strcmp(c->verb, av[0]))
			continue;
		known = 1;
		if ((!c->object || (ac > 1 && !strcmp(c->object, av[1]))) && ac >= c->min_words &&
		    ac <= c->max_words)
			cmd = c;
	}
	if (!known) {
		ob_printf(o, "ERR unknown command '%.32s' (try 'help')\n", av[0]);
		return 1;
	}
	if (!cmd)
		return no_fit(o, av, ac);
	if (cmd->run)
		return cmd->run(d, json, av, ac, o);
	if (cmd->show(d, json, o)) {
		ob_printf(o, "ERR out of memory\n");
		return 1;
	}
	if (o->failed)
		return 1; /* the caller answers ERR: the document was cut */
	ob_printf(o, "OK\n");
	return 0;
}

/* ---- clients ---- */

/* run the first complete line of cl->in, if any; 1 when one ran */
static int client_run_line(struct daemon *d, struct ctl_client *cl)
{
	char *nl = memchr(cl->in, '\n', cl->inlen);
	size_t n;

	if (!nl)
		return 0;
	*nl = '\0';
	n = (size_t)(nl - cl->in);
	if (n && cl->in[n - 1] == '\r')
		cl->in[n - 1] = '\0';
	{
		struct obuf ans = {0};

		/* an answer that does not fit whole becomes one ERR line */
		if (memchr(cl->in, '\0', n))
			ob_printf(&ans, "ERR control or non-ASCII character in the request\n");
		else
			control_execute(d, cl->in, &ans);
		if (ans.failed)
			ob_printf(&cl->a.out, "ERR answer too large or out of memory\n");
		else
			ob_put(&cl->a.out, ans.p, ans.len);
		ob_free(&ans);
	}
	memmove(cl->in, nl + 1, cl->inlen - n - 1);
	cl->inlen -= n + 1;
	return 1;
}

/* a busy client had its turn: watch it anew, so the edge-triggered registration reports it
 * again at once (it is writable) after the other fds of the main loop had theirs */
static void client_yield(struct daemon *d, struct ctl_client *cl)
{
	daemon_unwatch(d, cl->a.fd);
	if (daemon_watch(d, cl->a.fd, ADMIN_CLIENT_EVENTS, client_event, cl))
		admin_client_close(d, &cl->a);
}

static void client_event(struct daemon *d, int fd, uint32_t events, void *arg)
{
	struct ctl_client *cl = arg;
	unsigned budget = 64; /* lines run or reads done before other fds get a turn */

	(void)fd;
	cl->a.since_ms = clock_ms();
	if (events & EPOLLERR) {
		admin_client_close(d, &cl->a);
		return;
	}
	for (;; budget--) {
		int rc = ob_flush(&cl->a.out, cl->a.fd);

		if (rc == 0 && !budget) {
			client_yield(d, cl);
			return;
		}
		if (rc == -EAGAIN)
			return; /* EPOLLOUT (edge) brings us back */
		if (rc < 0 || cl->a.out.failed) {
			admin_client_close(d, &cl->a);
			return;
		}
		if (cl->closing && cl->discard) {
			char sink[4096];
			ssize_t r;

			if (cl->discard == 1) {
				shutdown(cl->a.fd, SHUT_WR);
				cl->discard = 2;
			}
			while ((r = recv(cl->a.fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0 &&
			       --budget)
				;
			if (r > 0) {
				client_yield(d, cl);
				return;
			}
			if (r == -1 && errno == EAGAIN)
				return; /* the idle timer ends it if the client never closes */
			admin_client_close(d, &cl->a);
			return;
		}
		if (cl->closing) {
			admin_client_close(d, &cl->a);
			return;
		}
		if (client_run_line(d, cl))
			continue;
		if (cl->eof) {
			cl->closing = 1;
			continue;
		}
		if (cl->inlen == sizeof(cl->in)) {
			ob_printf(&cl->a.out, "ERR request line too long (at most %u bytes)\n",
				  CONTROL_LINE_MAX - 1);
			cl->closing = 1; /* the rest of that line cannot be told from a request */
			cl->discard = 1;
			continue;
		}
		{
			ssize_t r = recv(cl->a.fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen,
					 MSG_DONTWAIT);

			if (r == -1) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					return;
				admin_client_close(d, &cl->a);
				return;
			}
			if (r == 0) {
				/* a last line without its newline still counts */
				if (cl->inlen && cl->inlen < sizeof(cl->in))
					cl->in[cl->inlen++] = '\n';
				cl->eof = 1;
				continue;
			}
			cl->inlen += (size_t)r;
		}
	}
}

/*
 * inherit_fd - the listening socket the old process handed down (ENV_FD), when it is a
 * listening unix socket bound to path; else -1 (a socket for another path is closed: it was
 * the old process's and nobody else uses it here).
 */
static int inherit_fd(const char *path)
{
	struct sockaddr_storage ss;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
	int fd = admin_inherit_fd(&C.srv, &ss);

	if (fd < 0)
		return -1;
	if (sun->sun_family != AF_UNIX || strncmp(sun->sun_path, path, sizeof(sun->sun_path))) {
		close(fd);
		return -1;
	}
	log_info("control socket %s inherited from the previous process", path);
	return fd;
}

/* ---- the listening socket ---- */

/* copy a socket path into a sun_path-sized buffer, truncating */
static void copy_path(char dst[sizeof(C.path)], const char *src)
{
	size_t n = strnlen(src, sizeof(C.path) - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* the directory must exist (one level is created) and must not be writable by others */
static int check_dir(const char *path, FILE *errf)
{
	char tmp[sizeof(C.path)];
	struct stat st;
	char *dir;

	copy_path(tmp, path);
	dir = dirname(tmp);
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || mkdir(dir, 0750) == -1 || stat(dir, &st) == -1) {
			int err = errno;

			report(errf, "control socket %s: directory %s: %s", path, dir,
			       strerror(err));
			return -err;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		report(errf, "control socket %s: %s is not a directory", path, dir);
		return -ENOTDIR;
	}
	if (st.st_mode & S_IWOTH) {
		report(errf,
		       "control socket %s: directory %s is writable by others (mode %04o): "
		       "refusing to serve the control socket there",
		       path, dir, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* a file at path: remove it when it is a socket nobody answers on; 0 or -errno */
static int clear_stale(const char *path, FILE *errf)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		report(errf, "control socket %s: the path exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (rc == 0 || errno == EAGAIN) {
		close(fd);
		report(errf, "control socket %s: another process is serving it", path);
		return -EADDRINUSE;
	}
	close(fd);
	if (errno != ECONNREFUSED) {
		report(errf, "control socket %s: %s", path, strerror(errno));
		return -EADDRINUSE;
	}
	if (unlink(path) == -1 && errno != ENOENT)
		return -errno;
	log_info("control socket %s: removed a stale socket", path);
	return 0;
}

void control_takeover(void)
{
	C.takeover = 1;
}

/*
 * open_socket - a listening socket at path. A live upgrade binds a temporary name beside it
 * and renames it over the old process's socket: clients always find one of the two, and the old
 * process keeps the clients it has. *st gets the socket file's identity.
 */
static int open_socket(const char *path, FILE *errf, struct stat *st)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int tmp = 0, fd, rc;
	mode_t old;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		report(errf, "control socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	rc = check_dir(path, errf);
	if (rc)
		return rc;
	if (C.takeover && snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.%d", path,
				   (int)getpid()) < (int)sizeof(sun.sun_path)) {
		tmp = 1;
		unlink(sun.sun_path);
	} else {
		rc = clear_stale(path, errf);
		if (rc)
			return rc;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto err;
	/* created 0660 from the start: no moment where others could connect; the main thread
	 * is the only one that creates files while it runs */
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc == -1)
		goto err_close;
	if (chmod(sun.sun_path, 0660) == -1 || listen(fd, 64) == -1 ||
	    (tmp && rename(sun.sun_path, path) == -1) || stat(path, st) == -1) {
		int err = errno;

		unlink(sun.sun_path);
		errno = err;
		goto err_close;
	}
	if (tmp)
		log_info("control socket %s taken over from the previous process", path);
	return fd;
err_close : {
	int err = errno;

	close(fd);
	errno = err;
}
err:
	rc = -errno;
	report(errf, "control socket %s: %s", path, strerror(-rc));
	return rc;
}

/* remove the socket file unless another process (a live upgrade) put its own there */
static void unlink_ours(void)
{
	struct stat st;

	if (stat(C.path, &st) == 0 && st.st_dev == C.dev && st.st_ino == C.ino)
		unlink(C.path);
}

int control_reconfigure(struct daemon *d, const struct config *old_cf, const struct config *new_cf,
			FILE *errf)
{
	const char *np = new_cf ? new_cf->control : "";
	struct stat st = {0};
	int fd = -1, rc;

	if (old_cf && !strcmp(old_cf->control, np) && (C.srv.lfd >= 0) == (np[0] != 0))
		return 0;
	if (np[0]) {
		fd = C.takeover && !old_cf ? inherit_fd(np) : -1;
		if (fd >= 0 && stat(np, &st) == -1)
			memset(&st, 0, sizeof(st));
		if (fd < 0)
			fd = open_socket(np, errf, &st);
		if (fd < 0)
			return fd;
		rc = admin_watch(d, &C.srv, fd);
		if (rc) {
			close(fd);
			unlink(np);
			report(errf, "control socket %s: %s", np, strerror(-rc));
			return rc;
		}
		admin_timer_start(d, &C.srv);
	}
	if (C.srv.lfd >= 0) {
		daemon_unwatch(d, C.srv.lfd);
		close(C.srv.lfd);
		if (strcmp(C.path, np))
			unlink_ours();
		log_info("control socket %s closed", C.path);
	}
	C.srv.lfd = fd;
	C.srv.paused = 0;
	C.dev = st.st_dev;
	C.ino = st.st_ino;
	admin_publish_fd(&C.srv, fd);
	copy_path(C.path, np); /* open_socket() checked that it fits */
	if (fd >= 0)
		log_info("control socket on %s", np);
	return 0;
}

void control_close(struct daemon *d)
{
	admin_close_all(d, &C.srv);
	if (C.srv.lfd >= 0) {
		if (!C.srv.paused)
			daemon_unwatch(d, C.srv.lfd);
		close(C.srv.lfd);
		/* after a live upgrade the new process serves the same socket file */
		if (!d->upgraded)
			unlink_ours();
		C.srv.lfd = -1;
		admin_publish_fd(&C.srv, -1);
	}
	admin_timer_stop(d, &C.srv);
}

const struct daemon_service control_service = {
	.name = "control socket",
	.addr_off = offsetof(struct config, control),
	.reconfigure = control_reconfigure,
	.takeover = control_takeover,
	.close = control_close,
};
