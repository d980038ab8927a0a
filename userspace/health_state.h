/* SPDX-License-Identifier: MIT */
/*
 * health_state.h - server health state: passive ejection fed by the workers, active check
 * results fed by the health thread (health.h), admin states, slow start, and the balancer
 * weights that follow from all of it. No thread and no socket of its own.
 *
 * State of a server (struct server_health in types.h):
 *   up          takes new requests. The initial state, also with checks configured (HAProxy's
 *               assumption): a server that fails `fall` checks in a row goes down.
 *   down        failed `fall` consecutive active checks; `rise` consecutive successes bring it
 *               back up (through slow start when configured).
 *   draining    admin drain: no new requests, existing connections finish; checks go on.
 *   maintenance admin (or the `maintenance` server option): no requests, no checks. Leaving it
 *               (`ready`) puts the server up at once, one failed check away from down
 *               (HAProxy's behaviour), and checks it immediately.
 * Passive ejection is a time-limited mark on top of the state: `eject consecutive_failures N`
 * connect failures, timeouts or 5xx responses in a row eject the server for base, 2*base,
 * 4*base ... up to max; so does `eject slow F`: a mean response-head latency over the window
 * above F times the median of the other servers' means. Never more than max_ejection_percent
 * of a pool's servers are ejected at once. Neither a failure mark nor an ejection makes the
 * pool refuse a request while a server might answer (health_server_may_answer).
 *
 * Threads: workers call health_server_usable() and health_passive_result(); the health thread
 * reports checks and ticks; the control socket may call health_set_admin() and
 * health_format_status(). Everything here is safe to call from any thread.
 */
#ifndef SPLICED_HEALTH_STATE_H
#define SPLICED_HEALTH_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

/*
 * health_server_usable - 1 when s may take a NEW request at now_ms (clock_ms() time):
 * state up, configured weight > 0, not passively ejected, and not inside the short
 * failed_until_ms mark conn.c sets after a failed connect. 0 otherwise. Lock-free (atomics
 * only); requests already running on s are not affected by a 0.
 */
int health_server_usable(struct server *s, uint64_t now_ms);

/*
 * health_server_may_answer - 1 when s might answer a request whatever its short-term marks:
 * state up (active checks and admin say so) and weight > 0, failure mark (fail_timeout) and
 * passive ejection ignored. The pick falls back to these servers when no server is usable, so
 * that marks never turn the last server that might answer into a 503. Lock-free.
 */
int health_server_may_answer(struct server *s);

/*
 * health_server_reusable - 1 when an idle keep-alive connection to s may carry another
 * request: anything but down or maintenance (a draining server finishes its connections'
 * work; an ejected one keeps the connections it has). Lock-free.
 */
int health_server_reusable(struct server *s);

/*
 * health_passive_result - report the outcome of real traffic to s: ok = 0 for a connect failure
 * or a 5xx response (why: short text for the log, e.g. "refused", "status 502"), ok = 1 for a
 * success, which resets the consecutive failure count. After the pool's eject threshold of
 * failures in a row, s is ejected (unless that would put more than max_ejection_percent of the
 * pool's servers in ejection at once): no new requests for the back-off time. Hot path: a
 * success costs one atomic load; only an ejection takes a lock.
 */
void health_passive_result(struct server *s, int ok, const char *why, uint64_t now_ms);

/*
 * health_head_latency - a response head arrived from s us microseconds after its request
 * went out: added to the current window of the pool's `eject slow` rule (nothing when the
 * pool has none). Two relaxed atomic adds; any thread.
 */
void health_head_latency(struct server *s, uint64_t us);

/*
 * health_effective_weight - the balancer weight s should have at now_ms, in balancer units
 * (configured weight * pool->weight_scale): 0 unless the state is up and s is not ejected;
 * during slow start it ramps linearly from a tenth of the weight (at least 1) to all of it.
 * The health thread passes it to lb_set_weight(); pure apart from reading s.
 */
uint32_t health_effective_weight(struct server *s, uint64_t now_ms);

/*
 * health_set_admin - admin state change: "drain" (no new requests, connections finish),
 * "maint" or "maintenance" (out of rotation, checks stop), "ready" (clears both).
 * Logs the transition with reason "admin". Returns 0, or -EINVAL for an unknown word.
 */
int health_set_admin(struct server *s, const char *what);

/*
 * health_set_weight - change s's configured weight at run time (0..1000; 0 = drain: no new
 * requests). The balancer gets the effective weight at once (state, ejection and slow start
 * still apply, as for the configured weight). Returns 0, or -EINVAL when weight is out of
 * range. Any thread.
 */
int health_set_weight(struct server *s, uint32_t weight);

/* what the status commands and the metrics show of a server's health (health_server_view) */
struct health_view {
	int state;		  /* enum server_state */
	int ejected;		  /* passively ejected right now */
	uint8_t admin;		  /* SRV_ADMIN_* */
	uint32_t lb_weight;	  /* weight the balancer has now */
	int8_t last_ok;		  /* last active check: 1 ok, 0 failed, -1 none yet */
	uint32_t last_latency_us; /* of the last active check */
	uint64_t checks;	  /* active check results */
	uint32_t transitions;
	uint64_t last_change_ms; /* clock_ms() time of the last transition; 0: none */
	char last_result[48];
	char reason[64];
};

/* health_server_view - a consistent copy of s's health (under the health lock). */
void health_server_view(struct server *s, struct health_view *v);

/*
 * health_format_status - render one line per server (after a header line): pool, server,
 * state, balancer weight / configured weight, last check result, its latency in us, checks,
 * transitions, and the reason and age of the last transition. Writes at most len bytes,
 * always NUL-terminated when len > 0, and returns the length the whole table needs
 * (snprintf semantics: a return >= len means it was cut).
 */
int health_format_status(struct config *cf, char *buf, size_t len);

/*
 * Pure pieces of the machinery, exported for the unit tests (no thread, no I/O apart from the
 * transition log line). Times are clock_ms() milliseconds.
 */

/* health_check_result - apply one active check result to s: ok, what ("status 200",
 * "timeout", ...) and latency. Counts rise/fall, changes the state at the threshold and logs
 * "pool P server S: up -> down (status 503, 3 checks)". Ignored in maintenance. Returns 1 when
 * the state changed, else 0. */
int health_check_result(struct server *s, int ok, const char *what, uint32_t latency_us,
			uint64_t now_ms);

#define HEALTH_TICK_MAX_MS 1000

/* health_tick - housekeeping for every server of cf: end expired ejections (logged, with slow
 * start), give the balancer each server's effective weight when it changed, and at the end of
 * each pool's `eject slow` window eject the servers far slower than the others. Returns the
 * milliseconds until something needs the next tick (ramp step or ejection end), at most
 * HEALTH_TICK_MAX_MS. */
uint32_t health_tick(struct config *cf, uint64_t now_ms);

/* health_eject_allowed - 1 when one more of nservers may be ejected while nejected already
 * are: (nejected + 1) * 100 <= nservers * percent. */
int health_eject_allowed(unsigned nservers, unsigned nejected, unsigned percent);

/* health_ejection_ms - length of the n-th (1-based) ejection in a row for pool p:
 * eject_base_ms doubled n - 1 times, at most eject_max_ms. */
uint32_t health_ejection_ms(const struct pool *p, unsigned n);

/* health_median - the median of v[0..n) (sorts v; the mean of the two middle values when n is
 * even; 0 when n is 0). */
uint64_t health_median(uint64_t *v, unsigned n);

/* health_state_name - "up", "down", "draining", "maintenance" ("?" when out of range). */
const char *health_state_name(int state);

/*
 * health_adopt - configuration reload: s (new configuration) takes over the run-time health of
 * old (same pool and server name, same address): state, admin marks, ejection, check history.
 * The balancer weight follows the new configuration. Call while the health thread is stopped.
 */
void health_adopt(struct server *s, const struct server *old, uint64_t now_ms);

/*
 * The health thread's side (health.c). health_set_waker - the eventfd written when a recheck
 * or a shorter tick is due (-1: none; the caller closes it only after unregistering it).
 * health_wake - write it now. health_take_recheck - 1 when health_set_admin asked for an
 * immediate check of s since the last call, else 0 (the request is consumed).
 */
void health_set_waker(int fd);
void health_wake(void);
int health_take_recheck(struct server *s);

#endif
