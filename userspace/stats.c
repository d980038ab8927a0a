// SPDX-License-Identifier: MIT
/*
 * stats.c - lock-free counters (see stats.h).
 */
#include <stdio.h>
#include <string.h>

#include "lb.h"
#include "stats.h"

struct global_stats g_stats;

/* Prometheus' default buckets, in ms: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 s would hide the
 * fast end of a proxy; these start at 1 ms */
static const uint32_t dur_bounds_ms[STATS_DUR_BUCKETS] = {1,   5,    10,   50,	 100,  250,
							  500, 1000, 2500, 5000, 10000};

uint32_t stats_dur_bound_ms(unsigned i)
{
	return i < STATS_DUR_BUCKETS ? dur_bounds_ms[i] : UINT32_MAX;
}

const char *stats_error_name(unsigned e)
{
	static const char *const names[STATS_ERR_MAX] = {
		[STATS_ERR_PARSE_400] = "parse_400",
		[STATS_ERR_NO_ROUTE_404] = "no_route_404",
		[STATS_ERR_CLIENT_TIMEOUT_408] = "client_timeout_408",
		[STATS_ERR_TOO_LARGE_413] = "too_large_413",
		[STATS_ERR_HEADER_TOO_LARGE_431] = "header_too_large_431",
		[STATS_ERR_NOT_IMPLEMENTED_501] = "not_implemented_501",
		[STATS_ERR_BAD_GATEWAY_502] = "bad_gateway_502",
		[STATS_ERR_NO_SERVER_503] = "no_server_503",
		[STATS_ERR_UPSTREAM_TIMEOUT_504] = "upstream_timeout_504",
		[STATS_ERR_VERSION_505] = "version_505",
		[STATS_ERR_OTHER_STATUS] = "other_status",
		[STATS_ERR_CONNECT_FAILED] = "connect_failed",
		[STATS_ERR_UPSTREAM_BROKEN] = "upstream_broken",
		[STATS_ERR_UPSTREAM_UNSOLICITED] = "upstream_unsolicited",
		[STATS_ERR_CLIENT_ABORTED] = "client_aborted",
		[STATS_ERR_TLS_HANDSHAKE] = "tls_handshake",
		[STATS_ERR_OVER_CAPACITY_CLOSED] = "over_capacity_closed",
		[STATS_ERR_ACCEPT_PAUSED] = "accept_paused",
		[STATS_ERR_MAX_CONNECTIONS] = "max_connections",
		[STATS_ERR_HEADER_DROPPED] = "header_dropped",
		[STATS_ERR_ACL_DENIED] = "acl_denied",
		[STATS_ERR_FORBIDDEN_403] = "forbidden_403",
		[STATS_ERR_METHOD_405] = "method_405",
		[STATS_ERR_URI_TOO_LONG_414] = "uri_too_long_414",
		[STATS_ERR_UNDERSCORE] = "underscore_header",
		[STATS_ERR_UNDERSCORE_DROPPED] = "underscore_dropped",
		[STATS_ERR_LIMIT_CONN] = "limit_conn",
		[STATS_ERR_LIMIT_RATE_429] = "limit_rate_429",
	};

	return e < STATS_ERR_MAX ? names[e] : "?";
}

const char *stats_retry_cause_name(unsigned i)
{
	/* in the order of the RETRY_* bits (types.h) */
	static const char *const names[STATS_RETRY_CAUSES] = {
		"connect_failure", "timeout", "reset", "502", "503", "504",
	};

	return i < STATS_RETRY_CAUSES ? names[i] : "?";
}

enum stats_error stats_error_of_status(int status)
{
	switch (status) {
	case 400:
		return STATS_ERR_PARSE_400;
	case 403:
		return STATS_ERR_FORBIDDEN_403;
	case 404:
		return STATS_ERR_NO_ROUTE_404;
	case 405:
		return STATS_ERR_METHOD_405;
	case 414:
		return STATS_ERR_URI_TOO_LONG_414;
	case 429:
		return STATS_ERR_LIMIT_RATE_429;
	case 408:
		return STATS_ERR_CLIENT_TIMEOUT_408;
	case 413:
		return STATS_ERR_TOO_LARGE_413;
	case 431:
		return STATS_ERR_HEADER_TOO_LARGE_431;
	case 501:
		return STATS_ERR_NOT_IMPLEMENTED_501;
	case 502:
		return STATS_ERR_BAD_GATEWAY_502;
	case 503:
		return STATS_ERR_NO_SERVER_503;
	case 504:
		return STATS_ERR_UPSTREAM_TIMEOUT_504;
	case 505:
		return STATS_ERR_VERSION_505;
	default:
		return STATS_ERR_OTHER_STATUS;
	}
}

/* never 0; the status sits in the low 10 bits, bit 10 is always set */
static uint64_t code_key(const char *pool, int status)
{
	uint64_t h = lb_hash(pool, strlen(pool));

	return (h & ~(uint64_t)0x7ff) | 0x400 | ((uint64_t)status & 0x3ff);
}

void stats_request(struct listener *l, struct pool *p, int status, uint64_t dur_ms)
{
	struct listener_stats *st = &l->st;
	const char *pname = p ? p->name : "";
	unsigned i, b;
	uint64_t key;

	if (status < 0 || status > 999)
		status = 0;
	key = code_key(pname, status);
	stats_add(&st->requests, 1);
	stats_add(&g_stats.requests_total, 1);
	for (b = 0; b < STATS_DUR_BUCKETS && dur_ms > dur_bounds_ms[b]; b++)
		;
	stats_add(&st->dur_bucket[b], 1);
	stats_add(&st->dur_sum_ms, dur_ms);
	if (p) {
		stats_add(&p->st.requests, 1);
		stats_add(&p->st.status_class[status >= 100 && status < 600 ? status / 100 : 0], 1);
	}
	/* open addressing, linear probing; a slot's key is written once and never changes */
	for (i = 0; i < STATS_CODE_SLOTS; i++) {
		struct stats_code *sc = &st->codes[(key + i) % STATS_CODE_SLOTS];
		uint64_t cur = atomic_load_explicit(&sc->key, memory_order_acquire);

		if (!cur) {
			uint64_t zero = 0;

			if (atomic_compare_exchange_strong(&sc->key, &zero, key)) {
				/* ours: describe it, then let readers see it */
				snprintf(sc->pool, sizeof(sc->pool), "%s", pname);
				sc->code = (uint16_t)status;
				atomic_store_explicit(&sc->ready, 1, memory_order_release);
				cur = key;
			} else {
				cur = zero; /* somebody else claimed it meanwhile */
			}
		}
		if (cur == key) {
			stats_add(&sc->count, 1);
			return;
		}
	}
	stats_add(&st->codes_lost, 1);
}

void stats_requests_by_class(struct config *cf, uint64_t out[6])
{
	memset(out, 0, 6 * sizeof(out[0]));
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener_stats *st = &cf->listeners[i].st;

		for (unsigned s = 0; s < STATS_CODE_SLOTS; s++) {
			struct stats_code *sc = &st->codes[s];

			if (!atomic_load_explicit(&sc->ready, memory_order_acquire))
				continue;
			out[sc->code >= 100 && sc->code < 600 ? sc->code / 100 : 0] +=
				stats_get(&sc->count);
		}
	}
}
