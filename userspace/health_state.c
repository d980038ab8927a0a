// SPDX-License-Identifier: MIT
/*
 * health_state.c - the state of every server (see health_state.h for the states and the
 * contracts): the state machine, slow start, passive ejection with its back-off and cap, admin
 * states, the balancer weights that follow, and the status table.
 *
 * Plain functions over struct server that any thread calls: the workers on their hot path
 * (health_server_usable, health_passive_result), the health thread with check results and its
 * tick (health.c), the control socket and the metrics endpoint. The non-atomic fields are
 * guarded by one process-wide mutex: transitions are rare, and the workers' hot path
 * (health_server_usable, a successful health_passive_result) only touches atomics. No thread of
 * its own: when something needs the health thread's attention sooner (a recheck, the end of an
 * ejection), the waker it registered is written.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "health_state.h"
#include "lb.h"
#include "log.h"

#define RAMP_STEP_MS 100
#define CONF_SLOW_MAX 256 /* servers of a pool judged for latency (the first ones) */

static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;
static int waker = -1; /* under health_lock: the health thread's eventfd, -1: none */

const char *health_state_name(int state)
{
	static const char *const names[] = {
		[SRV_UP] = "up",
		[SRV_DOWN] = "down",
		[SRV_DRAINING] = "draining",
		[SRV_MAINT] = "maintenance",
	};

	if (state < 0 || (unsigned)state >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[state];
}

/* ---- state machine (callers hold health_lock) ---- */

/* caller holds health_lock: nudge the thread to recompute its timers (rechecks, ejections) */
static void wake_locked(void)
{
	uint64_t one = 1;

	if (waker >= 0)
		(void)!write(waker, &one, sizeof(one));
}

void health_set_waker(int fd)
{
	pthread_mutex_lock(&health_lock);
	waker = fd;
	pthread_mutex_unlock(&health_lock);
}

void health_wake(void)
{
	pthread_mutex_lock(&health_lock);
	wake_locked();
	pthread_mutex_unlock(&health_lock);
}

int health_take_recheck(struct server *s)
{
	int r;

	pthread_mutex_lock(&health_lock);
	r = s->h.recheck;
	s->h.recheck = 0;
	pthread_mutex_unlock(&health_lock);
	return r;
}

static unsigned server_index(const struct server *s)
{
	return (unsigned)(s - s->pool->servers);
}

/* give the balancer the weight s should have now (no-op when unchanged) */
static void apply_weight(struct server *s, uint64_t now_ms)
{
	uint32_t w = health_effective_weight(s, now_ms);

	if (w == s->h.lb_weight)
		return;
	s->h.lb_weight = w;
	if (s->pool->lb_ready)
		lb_set_weight(&s->pool->lb, server_index(s), w);
}

void health_adopt(struct server *s, const struct server *old, uint64_t now_ms)
{
	uint32_t built = s->h.lb_weight; /* what the new balancer was built with */

	pthread_mutex_lock(&health_lock);
	/* a changed `maintenance` option in the file wins over the carried state */
	if (old->maintenance == s->maintenance) {
		memcpy(&s->h, &old->h, sizeof(s->h));
		/* likewise a weight set at run time stays unless the file's weight changed */
		if (s->weight_file == old->weight_file)
			__atomic_store_n(&s->weight,
					 __atomic_load_n(&old->weight, __ATOMIC_RELAXED),
					 __ATOMIC_RELAXED);
	}
	s->h.lb_weight = built;
	apply_weight(s, now_ms);
	pthread_mutex_unlock(&health_lock);
}

static int derive_state(const struct server_health *h)
{
	if (h->admin & SRV_ADMIN_MAINT)
		return SRV_MAINT;
	if (h->check_down)
		return SRV_DOWN;
	if (h->admin & SRV_ADMIN_DRAIN)
		return SRV_DRAINING;
	return SRV_UP;
}

/*
 * Recompute the state from admin bits and check verdict; on a change count it, remember why,
 * start slow start when the server comes back (not from draining: it stayed warm), log it and
 * fix the balancer weight. nchecks > 0 adds ", N checks" to the log line. 1 when it changed.
 */
static int update_state(struct server *s, const char *why, unsigned nchecks, uint64_t now_ms)
{
	struct server_health *h = &s->h;
	int old = atomic_load(&h->state), st = derive_state(h);

	if (old == st)
		return 0;
	atomic_store(&h->state, st);
	atomic_fetch_add(&h->transitions, 1);
	h->last_change_ms = now_ms;
	snprintf(h->reason, sizeof(h->reason), "%s", why);
	if (st == SRV_UP && old != SRV_DRAINING && s->pool->slow_start_ms)
		atomic_store(&h->up_since_ms, now_ms ? now_ms : 1);
	else if (st != SRV_UP)
		atomic_store(&h->up_since_ms, 0);
	if (nchecks)
		log_info("pool %s server %s: %s -> %s (%s, %u check%s)", s->pool->name, s->name,
			 health_state_name(old), health_state_name(st), why, nchecks,
			 nchecks == 1 ? "" : "s");
	else
		log_info("pool %s server %s: %s -> %s (%s)", s->pool->name, s->name,
			 health_state_name(old), health_state_name(st), why);
	apply_weight(s, now_ms);
	return 1;
}

int health_check_result(struct server *s, int ok, const char *what, uint32_t latency_us,
			uint64_t now_ms)
{
	struct server_health *h = &s->h;
	const struct health_conf *hc = &s->pool->health;
	int changed = 0;
	unsigned n;

	pthread_mutex_lock(&health_lock);
	h->checks++;
	h->last_check_ms = now_ms;
	h->last_latency_us = latency_us;
	h->last_ok = ok ? 1 : 0;
	snprintf(h->last_result, sizeof(h->last_result), "%s", what);
	if (h->admin & SRV_ADMIN_MAINT)
		goto out;
	if (ok) {
		h->fall_cnt = 0;
		h->probation = 0;
		if (h->check_down && ++h->rise_cnt >= hc->rise) {
			n = h->rise_cnt;
			h->rise_cnt = 0;
			h->check_down = 0;
			changed = update_state(s, what, n, now_ms);
		}
	} else {
		h->rise_cnt = 0;
		if (!h->check_down && (++h->fall_cnt >= hc->fall || h->probation)) {
			h->probation = 0;
			n = h->fall_cnt;
			h->fall_cnt = 0;
			h->check_down = 1;
			changed = update_state(s, what, n, now_ms);
		}
	}
out:
	pthread_mutex_unlock(&health_lock);
	return changed;
}

int health_set_admin(struct server *s, const char *what)
{
	struct server_health *h = &s->h;
	uint64_t now = clock_ms();
	uint8_t admin;

	if (!strcmp(what, "drain"))
		admin = SRV_ADMIN_DRAIN;
	else if (!strcmp(what, "maint") || !strcmp(what, "maintenance"))
		admin = SRV_ADMIN_MAINT;
	else if (!strcmp(what, "ready"))
		admin = 0;
	else
		return -EINVAL;
	pthread_mutex_lock(&health_lock);
	if ((h->admin & SRV_ADMIN_MAINT) && !(admin & SRV_ADMIN_MAINT)) {
		/* back from maintenance: up at once, but the first failed check takes it down
		 * (HAProxy), and that check runs now rather than an interval later */
		h->check_down = 0;
		h->rise_cnt = 0;
		h->fall_cnt = 0;
		if (s->pool->health.type != HEALTH_CHECK_NONE) {
			h->probation = 1;
			h->recheck = 1;
			wake_locked();
		}
	}
	h->admin = admin;
	update_state(s, "admin", 0, now);
	pthread_mutex_unlock(&health_lock);
	return 0;
}

int health_set_weight(struct server *s, uint32_t weight)
{
	if (weight > 1000)
		return -EINVAL;
	pthread_mutex_lock(&health_lock);
	/* workers read it without the lock (health_server_usable) */
	__atomic_store_n(&s->weight, weight, __ATOMIC_RELAXED);
	log_info("pool %s server %s: weight %u (admin)", s->pool->name, s->name, weight);
	apply_weight(s, clock_ms());
	pthread_mutex_unlock(&health_lock);
	return 0;
}

void health_server_view(struct server *s, struct health_view *v)
{
	struct server_health *h = &s->h;

	pthread_mutex_lock(&health_lock);
	v->state = atomic_load(&h->state);
	v->ejected = atomic_load(&h->ejected_until_ms) > clock_ms();
	v->admin = h->admin;
	v->lb_weight = h->lb_weight;
	v->last_ok = h->last_ok;
	v->last_latency_us = h->last_latency_us;
	v->checks = h->checks;
	v->transitions = atomic_load(&h->transitions);
	v->last_change_ms = h->last_change_ms;
	snprintf(v->last_result, sizeof(v->last_result), "%s", h->last_result);
	snprintf(v->reason, sizeof(v->reason), "%s", h->reason);
	pthread_mutex_unlock(&health_lock);
}

/* ---- passive ejection ---- */

int health_eject_allowed(unsigned nservers, unsigned nejected, unsigned percent)
{
	return (uint64_t)(nejected + 1) * 100 <= (uint64_t)nservers * percent;
}

uint32_t health_ejection_ms(const struct pool *p, unsigned n)
{
	uint64_t ms = p->eject_base_ms;

	for (unsigned i = 1; i < n && ms < p->eject_max_ms; i++)
		ms *= 2;
	return ms < p->eject_max_ms ? (uint32_t)ms : p->eject_max_ms;
}

int health_server_usable(struct server *s, uint64_t now_ms)
{
	if (!__atomic_load_n(&s->weight, __ATOMIC_RELAXED))
		return 0;
	if (atomic_load_explicit(&s->h.state, memory_order_relaxed) != SRV_UP)
		return 0;
	if (atomic_load_explicit(&s->h.ejected_until_ms, memory_order_relaxed) > now_ms)
		return 0;
	return atomic_load_explicit(&s->failed_until_ms, memory_order_relaxed) <= now_ms;
}

int health_server_may_answer(struct server *s)
{
	return __atomic_load_n(&s->weight, __ATOMIC_RELAXED) &&
	       atomic_load_explicit(&s->h.state, memory_order_relaxed) == SRV_UP;
}

int health_server_reusable(struct server *s)
{
	int st = atomic_load_explicit(&s->h.state, memory_order_relaxed);

	return st != SRV_DOWN && st != SRV_MAINT;
}

/*
 * eject_locked - caller holds health_lock: eject s now for its next back-off period; why (the
 * last failure) and the reason (printf) go to the log and the status table.
 */
static void eject_locked(struct server *s, uint64_t now_ms, const char *why, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void eject_locked(struct server *s, uint64_t now_ms, const char *why, const char *fmt, ...)
{
	struct server_health *h = &s->h;
	struct pool *p = s->pool;
	char reason[sizeof(h->reason) - 16];
	va_list ap;
	uint32_t ms;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* the back-off exponent forgets one doubling per base period spent without ejection */
	if (h->nejections && p->eject_base_ms) {
		uint64_t calm = now_ms > h->eject_end_ms ? now_ms - h->eject_end_ms : 0;
		uint64_t steps = calm / p->eject_base_ms;

		h->nejections = steps >= h->nejections ? 0 : h->nejections - (unsigned)steps;
	}
	h->nejections++;
	ms = health_ejection_ms(p, h->nejections);
	atomic_store(&h->ejected_until_ms, now_ms + ms);
	atomic_store(&h->consec_fail, 0);
	atomic_store(&h->up_since_ms, 0);
	atomic_fetch_add(&h->transitions, 1);
	h->ejected = 1;
	h->last_change_ms = now_ms;
	snprintf(h->reason, sizeof(h->reason), "passive: %s", reason);
	log_info("pool %s server %s: up -> ejected (passive: %s, last: %s) for %u ms", p->name,
		 s->name, reason, why ? why : "-", ms);
	apply_weight(s, now_ms);
	wake_locked();
}

void health_passive_result(struct server *s, int ok, const char *why, uint64_t now_ms)
{
	struct server_health *h = &s->h;
	struct pool *p = s->pool;
	unsigned n, nejected = 0;

	if (ok) {
		/* a load first: the common case writes nothing, so the line is not bounced */
		if (atomic_load_explicit(&h->consec_fail, memory_order_relaxed))
			atomic_store_explicit(&h->consec_fail, 0, memory_order_relaxed);
		return;
	}
	if (!p->eject_failures)
		return;
	n = atomic_fetch_add(&h->consec_fail, 1) + 1;
	if (n < p->eject_failures || atomic_load(&h->ejected_until_ms) > now_ms)
		return;
	pthread_mutex_lock(&health_lock);
	/* another worker may have ejected it meanwhile; a server that is not up has no
	 * traffic to protect */
	if (atomic_load(&h->ejected_until_ms) > now_ms || atomic_load(&h->state) != SRV_UP)
		goto out;
	for (unsigned i = 0; i < p->nservers; i++)
		nejected += atomic_load(&p->servers[i].h.ejected_until_ms) > now_ms;
	if (!health_eject_allowed(p->nservers, nejected, p->max_ejection_percent)) {
		if (n == p->eject_failures)
			log_info("pool %s server %s: %u consecutive failures (last: %s), not "
				 "ejected: %u of %u servers are already (max_ejection_percent %u)",
				 p->name, s->name, n, why ? why : "-", nejected, p->nservers,
				 p->max_ejection_percent);
		goto out;
	}
	eject_locked(s, now_ms, why, "%u consecutive failures", n);
out:
	pthread_mutex_unlock(&health_lock);
}

void health_head_latency(struct server *s, uint64_t us)
{
	if (!s->pool->eject_slow_factor)
		return;
	atomic_fetch_add_explicit(&s->head_lat_sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->head_lat_n, 1, memory_order_relaxed);
}

uint64_t health_median(uint64_t *v, unsigned n)
{
	/* insertion sort: a pool has few servers */
	for (unsigned i = 1; i < n; i++) {
		uint64_t x = v[i];
		unsigned j = i;

		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	if (!n)
		return 0;
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * slow_window - caller holds health_lock: the end of pool p's latency window. Each server's
 * mean response-head latency over the window is compared with the median of the means of the
 * pool's other servers (only servers with eject_slow_min_requests answers count); one above
 * eject_slow_factor times that median and above eject_slow_threshold_ms is ejected like a
 * failing server (same back-off, same max_ejection_percent). The window's sums start over.
 */
static void slow_window(struct pool *p, uint64_t now_ms)
{
	uint64_t mean[CONF_SLOW_MAX], others[CONF_SLOW_MAX];
	unsigned n = p->nservers < CONF_SLOW_MAX ? p->nservers : CONF_SLOW_MAX, nejected = 0;

	for (unsigned i = 0; i < n; i++) {
		struct server *s = &p->servers[i];
		uint64_t sum = atomic_exchange(&s->head_lat_sum_us, 0);
		uint64_t cnt = atomic_exchange(&s->head_lat_n, 0);

		mean[i] = cnt >= p->eject_slow_min_requests && cnt ? sum / cnt : UINT64_MAX;
		nejected += atomic_load(&s->h.ejected_until_ms) > now_ms;
	}
	for (unsigned i = 0; i < n; i++) {
		struct server *s = &p->servers[i];
		unsigned k = 0;
		uint64_t med;

		if (mean[i] == UINT64_MAX || mean[i] < (uint64_t)p->eject_slow_threshold_ms * 1000)
			continue;
		for (unsigned j = 0; j < n; j++)
			if (j != i && mean[j] != UINT64_MAX)
				others[k++] = mean[j];
		if (!k)
			continue;
		med = health_median(others, k);
		if (mean[i] <= med * p->eject_slow_factor)
			continue;
		if (atomic_load(&s->h.ejected_until_ms) > now_ms ||
		    atomic_load(&s->h.state) != SRV_UP)
			continue;
		if (!health_eject_allowed(p->nservers, nejected, p->max_ejection_percent)) {
			log_info(
				"pool %s server %s: slow (mean %llu ms, others %llu ms), not ejected: "
				"%u of %u servers are already (max_ejection_percent %u)",
				p->name, s->name, (unsigned long long)(mean[i] / 1000),
				(unsigned long long)(med / 1000), nejected, p->nservers,
				p->max_ejection_percent);
			continue;
		}
		{
			char why[64];

			snprintf(why, sizeof(why), "mean %llu ms, others %llu ms",
				 (unsigned long long)(mean[i] / 1000),
				 (unsigned long long)(med / 1000));
			eject_locked(s, now_ms, why, "slow: %llu ms against %llu ms",
				     (unsigned long long)(mean[i] / 1000),
				     (unsigned long long)(med / 1000));
		}
		atomic_fetch_add(&p->st.slow_ejections, 1);
		nejected++;
	}
}

/* ---- weights ---- */

uint32_t health_effective_weight(struct server *s, uint64_t now_ms)
{
	const struct pool *p = s->pool;
	uint64_t w = (uint64_t)__atomic_load_n(&s->weight, __ATOMIC_RELAXED) *
		     (p->weight_scale ? p->weight_scale : 1);
	uint64_t since, el;

	if (!w || atomic_load(&s->h.state) != SRV_UP ||
	    atomic_load(&s->h.ejected_until_ms) > now_ms)
		return 0;
	since = atomic_load(&s->h.up_since_ms);
	if (!since || !p->slow_start_ms || now_ms < since)
		return (uint32_t)w;
	el = now_ms - since;
	if (el >= p->slow_start_ms)
		return (uint32_t)w;
	/* linear from w/10 at the start to w at slow_start_ms */
	w = w * (p->slow_start_ms + 9 * el) / (10 * (uint64_t)p->slow_start_ms);
	return w ? (uint32_t)w : 1;
}

uint32_t health_tick(struct config *cf, uint64_t now_ms)
{
	uint64_t next = HEALTH_TICK_MAX_MS;

	pthread_mutex_lock(&health_lock);
	for (unsigned i = 0; i < cf->nservers; i++) {
		struct server *s = cf->servers[i];
		struct server_health *h = &s->h;
		uint64_t since;

		if (h->ejected) {
			uint64_t until = atomic_load(&h->ejected_until_ms);

			if (until <= now_ms) {
				int st = atomic_load(&h->state);

				h->ejected = 0;
				h->eject_end_ms = until;
				h->last_change_ms = now_ms;
				atomic_fetch_add(&h->transitions, 1);
				snprintf(h->reason, sizeof(h->reason), "ejection ended");
				if (st == SRV_UP && s->pool->slow_start_ms)
					atomic_store(&h->up_since_ms, now_ms ? now_ms : 1);
				log_info("pool %s server %s: ejected -> %s (ejection ended)",
					 s->pool->name, s->name, health_state_name(st));
			} else if (until - now_ms < next) {
				next = until - now_ms;
			}
		}
		since = atomic_load(&h->up_since_ms);
		if (since) {
			if (now_ms >= since + s->pool->slow_start_ms)
				atomic_store(&h->up_since_ms, 0); /* ramp done */
			else if (next > RAMP_STEP_MS)
				next = RAMP_STEP_MS;
		}
		apply_weight(s, now_ms);
	}
	for (unsigned i = 0; i < cf->npools; i++) {
		struct pool *p = &cf->pools[i];

		if (!p->eject_slow_factor)
			continue;
		if (!p->slow_window_end_ms)
			p->slow_window_end_ms = now_ms + p->eject_slow_window_ms;
		if (now_ms >= p->slow_window_end_ms) {
			slow_window(p, now_ms);
			p->slow_window_end_ms = now_ms + p->eject_slow_window_ms;
		}
		if (p->slow_window_end_ms - now_ms < next)
			next = p->slow_window_end_ms - now_ms;
	}
	pthread_mutex_unlock(&health_lock);
	return next ? (uint32_t)next : 1;
}

/* ---- status ---- */

int health_format_status(struct config *cf, char *buf, size_t len)
{
	uint64_t now = clock_ms();
	size_t off = 0;
	int n;

#define EMIT(...)                                                                     \
	do {                                                                          \
		n = snprintf(off < len ? buf + off : NULL, off < len ? len - off : 0, \
			     __VA_ARGS__);                                            \
		if (n > 0)                                                            \
			off += (size_t)n;                                             \
	} while (0)

	if (len)
		buf[0] = '\0';
	EMIT("%-12s %-16s %-11s %9s %-16s %10s %8s %5s  %s\n", "POOL", "SERVER", "STATE", "WEIGHT",
	     "LAST", "LATENCY_US", "CHECKS", "TRANS", "REASON (AGE)");
	pthread_mutex_lock(&health_lock);
	for (unsigned i = 0; i < cf->nservers; i++) {
		struct server *s = cf->servers[i];
		struct server_health *h = &s->h;
		const struct pool *p = s->pool;
		int st = atomic_load(&h->state);
		uint64_t until = atomic_load(&h->ejected_until_ms);
		const char *state = health_state_name(st);
		char weight[32], last[64], lat[16], age[32];

		if (st == SRV_UP && until > now)
			state = "ejected";
		else if (st == SRV_UP && !s->weight)
			state = "draining"; /* configured weight 0 */
		snprintf(weight, sizeof(weight), "%u/%u", h->lb_weight,
			 s->weight * (p->weight_scale ? p->weight_scale : 1));
		if (p->health.type == HEALTH_CHECK_NONE)
			snprintf(last, sizeof(last), "-");
		else if (h->last_ok < 0)
			snprintf(last, sizeof(last), "pending");
		else
			snprintf(last, sizeof(last), "%s:%s", h->last_ok ? "ok" : "fail",
				 h->last_result);
		if (h->last_ok < 0)
			snprintf(lat, sizeof(lat), "-");
		else
			snprintf(lat, sizeof(lat), "%u", h->last_latency_us);
		if (h->last_change_ms)
			snprintf(age, sizeof(age), "%llus ago",
				 (unsigned long long)((now - h->last_change_ms) / 1000));
		else
			snprintf(age, sizeof(age), "since start");
		EMIT("%-12s %-16s %-11s %9s %-16s %10s %8llu %5u  %s (%s)", p->name, s->name, state,
		     weight, last, lat, (unsigned long long)h->checks, atomic_load(&h->transitions),
		     h->reason[0] ? h->reason : "-", age);
		if (st == SRV_UP && until > now)
			EMIT(", ejected for %llus more",
			     (unsigned long long)((until - now + 999) / 1000));
		EMIT("\n");
	}
	pthread_mutex_unlock(&health_lock);
#undef EMIT
	return off > INT32_MAX ? INT32_MAX : (int)off;
}
