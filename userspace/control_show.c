// SPDX-License-Identifier: MIT
/*
 * control_show.c - the `show` documents of the control socket (info, pools, routes, servers,
 * connections, stats), text or JSON, from the running configuration and the counters. Called
 * by control.c's command table on the main thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "clock.h"
#include "conf.h"
#include "conn.h"
#include "control-i.h"
#include "health_state.h"
#include "obuf.h"
#include "splice.h"
#include "stats.h"
#include "version.h"
#include "worker.h"

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

const char *control_admin_name(uint8_t admin)
{
	if (admin & SRV_ADMIN_MAINT)
		return "maintenance";
	if (admin & SRV_ADMIN_DRAIN)
		return "drain";
	return "none";
}

/* the state shown to operators: ejection and a zero weight are visible as such */
const char *control_server_state(struct server *s, const struct health_view *v)
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

int control_show_info(struct daemon *d, int json, struct obuf *o)
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

int control_show_pools(struct daemon *d, int json, struct obuf *o)
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

int control_show_routes(struct daemon *d, int json, struct obuf *o)
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

int control_show_servers(struct daemon *d, int json, struct obuf *o)
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
				control_server_state(s, &v), control_admin_name(v.admin),
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
				s->pool->name, s->name, s->spec, control_server_state(s, &v),
				control_admin_name(v.admin),
				__atomic_load_n(&s->weight, __ATOMIC_RELAXED), v.lb_weight,
				(long long)active, (unsigned long long)atomic_load(&s->requests),
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
int control_show_connections(struct daemon *d, int json, struct obuf *o)
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

int control_show_stats(struct daemon *d, int json, struct obuf *o)
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

/* the running configuration with every default filled in (conf_print) */
int control_show_config(struct daemon *d, int json, struct obuf *o)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return -ENOMEM;
	conf_print(f, d->cf);
	if (fclose(f)) {
		free(text);
		return -ENOMEM;
	}
	if (json) {
		ob_printf(o, "{\"file\":");
		ob_json_str(o, d->cf->file);
		ob_printf(o, ",\"generation\":%u,\"text\":", d->generation);
		ob_json_str(o, text);
		ob_printf(o, "}\n");
	} else {
		ob_printf(o,
			  "# %s, generation %u, every default filled in (splicectl show config)\n",
			  d->cf->file, d->generation);
		ob_printf(o, "%s", text);
	}
	free(text);
	return 0;
}
