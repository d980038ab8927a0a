// SPDX-License-Identifier: MIT
/*
 * test_health.c - unit tests for userspace/health_state.c, the health state without the
 * health thread: the health, eject, slow_start and maintenance configuration (values and
 * FILE:LINE errors), the state machine
 * (rise/fall counting, reasons, transitions, admin drain/maintenance/ready), slow start ramp
 * values, the ejection back-off and its decay, the max_ejection_percent cap, and what reaches
 * the balancer. Times are synthetic milliseconds unless a test says otherwise.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "health_state.h"
#include "test.h"

#define CONF_NAME "test.conf"
#define T0 1000000ULL /* synthetic clock start, ms */

static char *msgs;
static size_t msgs_len;

static struct config *load(const char *text)
{
	FILE *f;
	struct config *cf;

	free(msgs);
	msgs = NULL;
	msgs_len = 0;
	f = open_memstream(&msgs, &msgs_len);
	if (!f) {
		perror("open_memstream");
		exit(2);
	}
	cf = conf_load_string(CONF_NAME, text, f);
	fclose(f);
	return cf;
}

/* 1 when some message reads "test.conf:LINE: ...what..." */
static int has_error(int line, const char *what)
{
	char prefix[64];
	const char *p = msgs;
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%s:%d: ", CONF_NAME, line);

	while (p && *p) {
		const char *eol = strchrnul(p, '\n');
		size_t len = (size_t)(eol - p);

		if (len >= plen && !strncmp(p, prefix, plen) &&
		    memmem(p + plen, len - plen, what, strlen(what)))
			return 1;
		p = *eol ? eol + 1 : eol;
	}
	return 0;
}

static void expect_error(const char *text, int line, const char *what)
{
	struct config *cf = load(text);

	if (!ASSERT_TRUE(cf == NULL, "config with an error loaded"))
		conf_free(cf);
	ASSERT_TRUE(has_error(line, what), "no '%s:%d: ...%s...' in:\n%s", CONF_NAME, line, what,
		    msgs ? msgs : "");
}

static uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define LISTENER "listener l { bind 127.0.0.1:1; route { pool p; } }\n"

/* a pool p of n servers 127.0.0.1:10000+i with the given pool statements */
static struct config *pool_of(unsigned n, const char *stmts, const char *server_opts)
{
	static char text[65536];
	size_t off = 0;
	struct config *cf;

	off += (size_t)snprintf(text + off, sizeof(text) - off, LISTENER "pool p {\n%s\n", stmts);
	for (unsigned i = 0; i < n; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
					"server s%u 127.0.0.1:%u %s;\n", i, 10000 + i,
					i == 0 && server_opts ? server_opts : "");
	snprintf(text + off, sizeof(text) - off, "}\n");
	cf = load(text);
	if (!cf) {
		fprintf(stderr, "# config did not load:\n%s", msgs ? msgs : "");
		exit(2);
	}
	return cf;
}

static uint64_t stats_of_slow(struct pool *p)
{
	return atomic_load(&p->st.slow_ejections);
}

static int state_of(struct server *s)
{
	return atomic_load(&s->h.state);
}

/* ---- configuration ---- */

static void test_conf_health_http(void)
{
	struct config *cf =
		load(LISTENER "pool p {\n"
			      "\thealth http /healthz host api.example.com interval 500ms "
			      "timeout 200ms rise 4 fall 5 status 200-204;\n"
			      "\tslow_start 30s;\n"
			      "\teject consecutive_failures 7 base 2s max 1m;\n"
			      "\tmax_ejection_percent 20;\n"
			      "\tserver a 127.0.0.1:80 weight 3;\n"
			      "\tserver b 127.0.0.1:81 maintenance;\n"
			      "}\n");
	struct pool *p;

	if (!ASSERT_TRUE(cf != NULL, "load failed:\n%s", msgs))
		return;
	p = &cf->pools[0];
	ASSERT_EQ(p->health.type, HEALTH_CHECK_HTTP, "type");
	ASSERT_STREQ(p->health.path, "/healthz", "path");
	ASSERT_STREQ(p->health.host, "api.example.com", "host");
	ASSERT_EQ(p->health.interval_ms, 500, "interval");
	ASSERT_EQ(p->health.timeout_ms, 200, "timeout");
	ASSERT_EQ(p->health.rise, 4, "rise");
	ASSERT_EQ(p->health.fall, 5, "fall");
	ASSERT_EQ(p->health.status_lo, 200, "status lo");
	ASSERT_EQ(p->health.status_hi, 204, "status hi");
	ASSERT_EQ(p->health.tls, 0, "no TLS keyword yet");
	ASSERT_EQ(p->slow_start_ms, 30000, "slow_start");
	ASSERT_EQ(p->eject_failures, 7, "eject N");
	ASSERT_EQ(p->eject_base_ms, 2000, "eject base");
	ASSERT_EQ(p->eject_max_ms, 60000, "eject max");
	ASSERT_EQ(p->max_ejection_percent, 20, "max_ejection_percent");
	/* slow start gives the balancer 10 units per weight unit */
	ASSERT_EQ(p->weight_scale, 10, "weight scale with slow start");
	ASSERT_EQ(p->lb.m[0].weight, 30, "balancer weight of a");
	ASSERT_EQ(state_of(&p->servers[0]), SRV_UP, "a starts up");
	ASSERT_EQ(p->servers[1].maintenance, 1, "maintenance option");
	ASSERT_EQ(state_of(&p->servers[1]), SRV_MAINT, "b starts in maintenance");
	ASSERT_EQ(p->lb.m[1].weight, 0, "b is out of the balancer");
	ASSERT_EQ(health_server_usable(&p->servers[1], T0), 0, "b not usable");
	conf_free(cf);
}

static void test_conf_defaults(void)
{
	struct config *cf = load(LISTENER "pool p { health tcp; server a 127.0.0.1:80; }\n"
					  "pool q { server a 127.0.0.1:80; }\n");
	struct pool *p, *q;

	if (!ASSERT_TRUE(cf != NULL, "load failed:\n%s", msgs))
		return;
	p = &cf->pools[0];
	q = &cf->pools[1];
	ASSERT_EQ(p->health.type, HEALTH_CHECK_TCP, "tcp");
	ASSERT_EQ(p->health.interval_ms, 2000, "default interval");
	ASSERT_EQ(p->health.timeout_ms, 1000, "default timeout");
	ASSERT_EQ(p->health.rise, 2, "default rise");
	ASSERT_EQ(p->health.fall, 3, "default fall");
	ASSERT_EQ(p->health.status_lo, 200, "default status lo");
	ASSERT_EQ(p->health.status_hi, 399, "default status hi");
	ASSERT_EQ(q->health.type, HEALTH_CHECK_NONE, "no checks by default");
	ASSERT_EQ(q->slow_start_ms, 0, "slow start off");
	ASSERT_EQ(q->eject_failures, 5, "passive ejection on by default");
	ASSERT_EQ(q->eject_base_ms, 10000, "default base");
	ASSERT_EQ(q->eject_max_ms, 300000, "default max");
	ASSERT_EQ(q->max_ejection_percent, 50, "default max_ejection_percent");
	ASSERT_EQ(q->weight_scale, 1, "no scale without slow start");
	ASSERT_EQ(q->lb.m[0].weight, 1, "configured weight reaches the balancer");
	ASSERT_EQ(state_of(&q->servers[0]), SRV_UP, "unchecked server is up");
	conf_free(cf);

	cf = load(LISTENER
		  "pool p { eject off; health http / status 204; server a 127.0.0.1:80; }\n");
	if (!ASSERT_TRUE(cf != NULL, "load failed:\n%s", msgs))
		return;
	ASSERT_EQ(cf->pools[0].eject_failures, 0, "eject off");
	ASSERT_EQ(cf->pools[0].health.status_lo, 204, "single status lo");
	ASSERT_EQ(cf->pools[0].health.status_hi, 204, "single status hi");
	conf_free(cf);
}

static void test_conf_errors(void)
{
	expect_error(LISTENER "pool p {\n health http healthz;\n server a 127.0.0.1:80; }\n", 3,
		     "PATH starting with '/'");
	expect_error(LISTENER "pool p {\n server a 127.0.0.1:80;\n health udp;\n}\n", 4,
		     "unknown health 'udp' (expected http, tcp)");
	expect_error(LISTENER
		     "pool p {\n health http / status 500-200;\n server a 127.0.0.1:80; }\n",
		     3, "invalid status range '500-200'");
	expect_error(LISTENER "pool p {\n health http / status 99;\n server a 127.0.0.1:80; }\n", 3,
		     "invalid status range '99'");
	expect_error(LISTENER "pool p {\n health http / interval 5ms;\n server a 127.0.0.1:80; }\n",
		     3, "invalid duration '5ms' for 'health interval' (at least 10ms)");
	expect_error(LISTENER "pool p {\n health tcp timeout 0;\n server a 127.0.0.1:80; }\n", 3,
		     "invalid duration '0' for 'health timeout' (greater than 0)");
	expect_error(LISTENER "pool p {\n health tcp rise 0;\n server a 127.0.0.1:80; }\n", 3,
		     "invalid number '0' for 'health rise'");
	expect_error(LISTENER "pool p {\n health tcp fall;\n server a 127.0.0.1:80; }\n", 3,
		     "health tcp option 'fall' needs a value");
	expect_error(LISTENER "pool p {\n health tcp status 200;\n server a 127.0.0.1:80; }\n", 3,
		     "unknown health tcp option 'status'");
	expect_error(LISTENER "pool p {\n health http / host \"a b\";\n server a 127.0.0.1:80; }\n",
		     3, "invalid health host 'a b'");
	expect_error(LISTENER "pool p {\n health tcp;\n health tcp;\n server a 127.0.0.1:80; }\n",
		     4, "more than one 'health' in pool 'p'");
	expect_error(LISTENER "pool p {\n slow_start soon;\n server a 127.0.0.1:80; }\n", 3,
		     "invalid duration 'soon'");
	expect_error(LISTENER "pool p {\n eject 5;\n server a 127.0.0.1:80; }\n", 3,
		     "unknown eject '5' (expected consecutive_failures, slow, off)");
	expect_error(LISTENER
		     "pool p {\n eject consecutive_failures 0;\n server a 127.0.0.1:80; }\n",
		     3, "invalid number '0' for 'eject consecutive_failures'");
	expect_error(LISTENER "pool p {\n eject consecutive_failures 3 base 1m max 10s;\n"
			      " server a 127.0.0.1:80; }\n",
		     3, "eject max (10000 ms) is shorter than base (60000 ms)");
	expect_error(LISTENER "pool p {\n eject consecutive_failures 3 every 1s;\n"
			      " server a 127.0.0.1:80; }\n",
		     3, "unknown eject option 'every'");
	expect_error(LISTENER "pool p {\n max_ejection_percent 101;\n server a 127.0.0.1:80; }\n",
		     3, "invalid number '101' for 'max_ejection_percent'");
	expect_error(
		LISTENER "pool p {\n server a 127.0.0.1:80 maint;\n}\n", 3,
		"unknown server option 'maint' (expected weight N, backup, maintenance, max_conn N)");
	/* several errors at once, each at its line */
	expect_error(LISTENER
		     "pool p {\n health http x;\n slow_start -1;\n server a 127.0.0.1:80; }\n",
		     4, "invalid duration '-1'");
	ASSERT_TRUE(has_error(3, "PATH starting with '/'"), "first error kept too:\n%s", msgs);
}

/* ---- state machine ---- */

static void test_fall_and_rise(void)
{
	struct config *cf = pool_of(2, "health http /h rise 2 fall 3;", NULL);
	struct server *s = &cf->pools[0].servers[0];
	uint64_t t = T0;

	ASSERT_EQ(state_of(s), SRV_UP, "initially up with checks");
	ASSERT_EQ(health_server_usable(s, t), 1, "usable initially");
	ASSERT_EQ(health_check_result(s, 0, "status 503", 100, t += 100), 0, "1st failure");
	ASSERT_EQ(health_check_result(s, 0, "status 503", 100, t += 100), 0, "2nd failure");
	/* a success in between restarts the count */
	ASSERT_EQ(health_check_result(s, 1, "status 200", 100, t += 100), 0, "success");
	ASSERT_EQ(health_check_result(s, 0, "status 503", 100, t += 100), 0, "1st again");
	ASSERT_EQ(health_check_result(s, 0, "timeout", 100, t += 100), 0, "2nd again");
	ASSERT_EQ(state_of(s), SRV_UP, "still up after fall - 1 failures");
	ASSERT_EQ(health_check_result(s, 0, "status 503", 250, t += 100), 1, "3rd: transition");
	ASSERT_EQ(state_of(s), SRV_DOWN, "down after fall failures");
	ASSERT_STREQ(s->h.reason, "status 503", "reason of the transition");
	ASSERT_EQ(atomic_load(&s->h.transitions), 1, "one transition");
	ASSERT_EQ(s->h.last_latency_us, 250, "latency recorded");
	ASSERT_STREQ(s->h.last_result, "status 503", "last result");
	ASSERT_EQ(s->h.checks, 6, "checks counted");
	ASSERT_EQ(health_server_usable(s, t), 0, "down is not usable");
	ASSERT_EQ(cf->pools[0].lb.m[0].weight, 0, "down server out of the balancer");
	ASSERT_EQ(cf->pools[0].lb.m[1].weight, 1, "other server untouched");
	/* more failures change nothing */
	ASSERT_EQ(health_check_result(s, 0, "refused", 0, t += 100), 0, "failure while down");
	ASSERT_EQ(atomic_load(&s->h.transitions), 1, "no transition while down");
	/* rise: 2 successes in a row, a failure restarts */
	ASSERT_EQ(health_check_result(s, 1, "status 200", 90, t += 100), 0, "1st success");
	ASSERT_EQ(health_check_result(s, 0, "bad response", 90, t += 100), 0, "failure");
	ASSERT_EQ(health_check_result(s, 1, "status 200", 90, t += 100), 0, "1st success again");
	ASSERT_EQ(state_of(s), SRV_DOWN, "still down after rise - 1");
	ASSERT_EQ(health_check_result(s, 1, "status 204", 90, t += 100), 1, "2nd: transition");
	ASSERT_EQ(state_of(s), SRV_UP, "up after rise successes");
	ASSERT_STREQ(s->h.reason, "status 204", "reason of the up transition");
	ASSERT_EQ(atomic_load(&s->h.transitions), 2, "two transitions");
	ASSERT_EQ(health_server_usable(s, t), 1, "usable again");
	ASSERT_EQ(cf->pools[0].lb.m[0].weight, 1, "back in the balancer");
	conf_free(cf);
}

static void test_fall_one_rise_one(void)
{
	struct config *cf = pool_of(1, "health tcp rise 1 fall 1;", NULL);
	struct server *s = &cf->pools[0].servers[0];

	ASSERT_EQ(health_check_result(s, 0, "refused", 0, T0), 1, "fall 1: first failure");
	ASSERT_STREQ(s->h.reason, "refused", "reason");
	ASSERT_EQ(health_check_result(s, 1, "connected", 0, T0 + 1), 1, "rise 1");
	conf_free(cf);
}

static void test_admin(void)
{
	struct config *cf = pool_of(2, "health http /h rise 2 fall 3;", NULL);
	struct server *s = &cf->pools[0].servers[0];
	uint64_t t = real_ms();

	ASSERT_EQ(health_set_admin(s, "sideways"), -EINVAL, "unknown admin word");
	ASSERT_EQ(health_set_admin(s, "drain"), 0, "drain");
	ASSERT_EQ(state_of(s), SRV_DRAINING, "draining");
	ASSERT_STREQ(s->h.reason, "admin", "admin reason");
	ASSERT_EQ(health_server_usable(s, t), 0, "draining takes no new requests");
	ASSERT_EQ(cf->pools[0].lb.m[0].weight, 0, "drain is weight 0 in the balancer");
	/* checks go on while draining and can take it down */
	health_check_result(s, 0, "timeout", 0, t);
	health_check_result(s, 0, "timeout", 0, t);
	ASSERT_EQ(health_check_result(s, 0, "timeout", 0, t), 1, "draining -> down");
	ASSERT_EQ(state_of(s), SRV_DOWN, "down wins over draining");
	health_check_result(s, 1, "status 200", 0, t);
	ASSERT_EQ(health_check_result(s, 1, "status 200", 0, t), 1, "down -> draining");
	ASSERT_EQ(state_of(s), SRV_DRAINING, "back to draining, not up");
	ASSERT_EQ(health_set_admin(s, "ready"), 0, "ready");
	ASSERT_EQ(state_of(s), SRV_UP, "ready -> up");
	ASSERT_EQ(cf->pools[0].lb.m[0].weight, 1, "weight restored");

	ASSERT_EQ(health_set_admin(s, "maint"), 0, "maint");
	ASSERT_EQ(state_of(s), SRV_MAINT, "maintenance");
	ASSERT_EQ(health_server_usable(s, t), 0, "maintenance is not usable");
	/* check results are recorded but do not count in maintenance */
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(health_check_result(s, 0, "refused", 0, t), 0, "ignored in maint");
	ASSERT_EQ(state_of(s), SRV_MAINT, "still maintenance");
	ASSERT_EQ(health_set_admin(s, "drain"), 0, "maint -> drain");
	ASSERT_EQ(state_of(s), SRV_DRAINING, "drain from maintenance");
	ASSERT_EQ(health_set_admin(s, "maintenance"), 0, "maintenance (long word)");
	ASSERT_EQ(health_set_admin(s, "ready"), 0, "ready from maintenance");
	ASSERT_EQ(state_of(s), SRV_UP, "up at once when leaving maintenance");
	ASSERT_EQ(s->h.recheck, 1, "an immediate check is asked for");
	/* ... but one failed check away from down */
	ASSERT_EQ(health_check_result(s, 0, "status 500", 0, t), 1, "first failure takes it down");
	ASSERT_EQ(state_of(s), SRV_DOWN, "down");
	ASSERT_EQ(atomic_load(&s->h.transitions), 9, "every transition counted");
	ASSERT_EQ(health_server_reusable(s), 0, "down: keep-alive connections not reused");
	/* after one passed check, the normal fall applies again */
	health_set_admin(s, "maint");
	ASSERT_EQ(health_server_reusable(s), 0, "maintenance: not reused");
	health_set_admin(s, "ready");
	ASSERT_EQ(health_check_result(s, 1, "status 200", 0, t), 0, "passed check");
	ASSERT_EQ(health_check_result(s, 0, "status 500", 0, t), 0, "one failure: still up");
	ASSERT_EQ(health_check_result(s, 0, "status 500", 0, t), 0, "two failures: still up");
	ASSERT_EQ(health_check_result(s, 0, "status 500", 0, t), 1, "fall failures: down");
	health_set_admin(s, "drain");
	health_check_result(s, 1, "status 200", 0, t);
	health_check_result(s, 1, "status 200", 0, t);
	ASSERT_EQ(state_of(s), SRV_DRAINING, "draining");
	ASSERT_EQ(health_server_reusable(s), 1, "draining: open connections finish their work");
	conf_free(cf);
}

static void test_no_checks(void)
{
	struct config *cf = pool_of(2, "", NULL);
	struct server *s = &cf->pools[0].servers[0];

	ASSERT_EQ(state_of(s), SRV_UP, "up without checks");
	ASSERT_EQ(health_server_usable(s, T0), 1, "usable without checks");
	/* the short failed_until_ms mark set by conn.c is honoured */
	atomic_store(&s->failed_until_ms, T0 + 500);
	ASSERT_EQ(health_server_usable(s, T0), 0, "failed_until_ms honoured");
	ASSERT_EQ(health_server_usable(s, T0 + 500), 1, "mark expired");
	/* passive ejection applies without any health config */
	for (int i = 0; i < 5; i++)
		health_passive_result(s, 0, "refused", T0 + 600);
	ASSERT_EQ(health_server_usable(s, T0 + 600), 0, "ejected without health config");
	conf_free(cf);

	/* configured weight 0: drain, never usable */
	cf = load(LISTENER "pool p { server a 127.0.0.1:80 weight 0; server b 127.0.0.1:81; }\n");
	if (!ASSERT_TRUE(cf != NULL, "load failed:\n%s", msgs))
		return;
	ASSERT_EQ(health_server_usable(&cf->pools[0].servers[0], T0), 0, "weight 0 drains");
	ASSERT_EQ(health_effective_weight(&cf->pools[0].servers[0], T0), 0, "weight 0 stays 0");
	conf_free(cf);
}

/* ---- slow start ---- */

static void test_slow_start(void)
{
	struct config *cf = pool_of(2, "health tcp rise 1 fall 1; slow_start 10s;", "weight 2");
	struct pool *p = &cf->pools[0];
	struct server *s = &p->servers[0];
	uint64_t up;

	ASSERT_EQ(health_effective_weight(s, T0), 20, "full weight at start: no ramp at boot");
	health_check_result(s, 0, "refused", 0, T0);
	ASSERT_EQ(health_effective_weight(s, T0), 0, "down: 0");
	up = T0 + 1000;
	health_check_result(s, 1, "connected", 0, up);
	ASSERT_EQ(state_of(s), SRV_UP, "up again");
	/* 20 units: 2 at the start, linear to 20 at 10 s */
	ASSERT_EQ(health_effective_weight(s, up), 2, "a tenth at the start");
	ASSERT_EQ(health_effective_weight(s, up + 2500), 6, "25 %: 2 + 18/4 = 6.5 -> 6");
	ASSERT_EQ(health_effective_weight(s, up + 5000), 11, "50 %: 11");
	ASSERT_EQ(health_effective_weight(s, up + 9999), 19, "just before the end");
	ASSERT_EQ(health_effective_weight(s, up + 10000), 20, "full at slow_start");
	ASSERT_EQ(health_effective_weight(s, up + 60000), 20, "full after");
	/* health_tick hands the ramp to the balancer and asks for the next step soon */
	ASSERT_EQ(health_tick(cf, up + 5000), 100, "ramping: next tick in 100 ms");
	ASSERT_EQ(p->lb.m[0].weight, 11, "balancer follows the ramp");
	ASSERT_EQ(p->lb.m[1].weight, 10, "other server at full weight (1 x 10)");
	ASSERT_EQ(health_tick(cf, up + 10000), 1000, "ramp done: idle tick");
	ASSERT_EQ(p->lb.m[0].weight, 20, "full weight in the balancer");
	ASSERT_EQ(atomic_load(&s->h.up_since_ms), 0, "ramp forgotten");
	conf_free(cf);

	/* weight 1 still ramps thanks to the scale; draining -> up does not ramp */
	cf = pool_of(1, "slow_start 1s;", NULL);
	s = &cf->pools[0].servers[0];
	ASSERT_EQ(health_set_admin(s, "drain"), 0, "drain");
	ASSERT_EQ(health_set_admin(s, "ready"), 0, "ready");
	ASSERT_EQ(health_effective_weight(s, real_ms()), 10, "from draining: no ramp");
	ASSERT_EQ(health_set_admin(s, "maint"), 0, "maint");
	ASSERT_EQ(health_set_admin(s, "ready"), 0, "ready");
	up = atomic_load(&s->h.up_since_ms);
	ASSERT_TRUE(up != 0, "ramp started from maintenance");
	ASSERT_EQ(health_effective_weight(s, up), 1, "weight 1 starts at 1 of 10 units");
	ASSERT_EQ(health_effective_weight(s, up + 500), 5, "half way: 5.5 -> 5");
	conf_free(cf);
}

/* ---- passive ejection ---- */

static void test_ejection_backoff(void)
{
	struct config *cf = pool_of(4, "eject consecutive_failures 3 base 10s max 300s;", NULL);
	struct pool *p = &cf->pools[0];
	struct server *s = &p->servers[0];
	static const uint32_t want[] = {10000, 20000, 40000, 80000, 160000, 300000, 300000};
	uint64_t t = T0, until;

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ASSERT_EQ(health_ejection_ms(p, i + 1), want[i], "back-off doubles up to max");

	/* successes reset the consecutive count */
	health_passive_result(s, 0, "refused", t);
	health_passive_result(s, 0, "refused", t);
	health_passive_result(s, 1, NULL, t);
	health_passive_result(s, 0, "status 502", t);
	health_passive_result(s, 0, "status 502", t);
	ASSERT_EQ(health_server_usable(s, t), 1, "2 failures after a success: not ejected");
	health_passive_result(s, 0, "status 502", t);
	ASSERT_EQ(health_server_usable(s, t), 0, "3rd consecutive failure ejects");
	until = atomic_load(&s->h.ejected_until_ms);
	ASSERT_EQ(until - t, 10000, "first ejection: base");
	ASSERT_STREQ(s->h.reason, "passive: 3 consecutive failures", "ejection reason");
	ASSERT_EQ(atomic_load(&s->h.transitions), 1, "ejection counted as a transition");
	ASSERT_EQ(p->lb.m[0].weight, 0, "ejected server out of the balancer");
	ASSERT_EQ(state_of(s), SRV_UP, "state itself stays up");
	ASSERT_EQ(health_tick(cf, t + 4000), 1000, "ticks are at most a second apart");
	ASSERT_EQ(health_tick(cf, until - 300), 300, "tick wakes at the ejection end");
	ASSERT_EQ(health_server_usable(s, until - 1), 0, "ejected until the end");
	ASSERT_EQ(health_server_usable(s, until), 1, "usable at the end");
	health_tick(cf, until);
	ASSERT_EQ(s->h.ejected, 0, "ejection end noticed");
	ASSERT_STREQ(s->h.reason, "ejection ended", "end reason");
	ASSERT_EQ(p->lb.m[0].weight, 1, "back in the balancer");
	ASSERT_EQ(atomic_load(&s->h.transitions), 2, "end counted");

	/* failing again right away: twice as long, then four times */
	t = until + 100;
	for (int i = 0; i < 3; i++)
		health_passive_result(s, 0, "refused", t);
	until = atomic_load(&s->h.ejected_until_ms);
	ASSERT_EQ(until - t, 20000, "second ejection: 2 x base");
	health_tick(cf, until);
	t = until + 100;
	for (int i = 0; i < 3; i++)
		health_passive_result(s, 0, "refused", t);
	until = atomic_load(&s->h.ejected_until_ms);
	ASSERT_EQ(until - t, 40000, "third ejection: 4 x base");
	health_tick(cf, until);
	/* 25 s of calm (two base periods) forget two doublings: 4 x -> 2 x base */
	t = until + 25000;
	for (int i = 0; i < 3; i++)
		health_passive_result(s, 0, "refused", t);
	until = atomic_load(&s->h.ejected_until_ms);
	ASSERT_EQ(until - t, 20000, "after calm the back-off decays");
	health_tick(cf, until);
	/* a long calm forgets everything */
	t = until + 3600000;
	for (int i = 0; i < 3; i++)
		health_passive_result(s, 0, "refused", t);
	ASSERT_EQ(atomic_load(&s->h.ejected_until_ms) - t, 10000, "back to base after an hour");
	conf_free(cf);

	/* eject off: never */
	cf = pool_of(4, "eject off;", NULL);
	for (int i = 0; i < 100; i++)
		health_passive_result(&cf->pools[0].servers[0], 0, "refused", T0);
	ASSERT_EQ(health_server_usable(&cf->pools[0].servers[0], T0), 1, "eject off");
	conf_free(cf);
}

static void test_ejection_cap(void)
{
	struct config *cf = pool_of(10, "eject consecutive_failures 1 base 10s;", NULL);
	struct pool *p = &cf->pools[0];
	unsigned ejected = 0;

	ASSERT_EQ(health_eject_allowed(10, 4, 50), 1, "5th of 10 at 50 %");
	ASSERT_EQ(health_eject_allowed(10, 5, 50), 0, "6th of 10 at 50 %");
	ASSERT_EQ(health_eject_allowed(1, 0, 50), 0, "the only server of a pool at 50 %");
	ASSERT_EQ(health_eject_allowed(2, 0, 50), 1, "one of two at 50 %");
	ASSERT_EQ(health_eject_allowed(3, 1, 50), 0, "two of three is over 50 %");
	ASSERT_EQ(health_eject_allowed(1, 0, 100), 1, "100 %: everything");
	ASSERT_EQ(health_eject_allowed(1000, 0, 0), 0, "0 %: nothing");

	/* every server fails: only 5 of 10 are ejected */
	for (unsigned i = 0; i < p->nservers; i++)
		health_passive_result(&p->servers[i], 0, "refused", T0);
	for (unsigned i = 0; i < p->nservers; i++)
		ejected += !health_server_usable(&p->servers[i], T0);
	ASSERT_EQ(ejected, 5, "at most 50 % of 10 ejected at once");
	/* they keep failing: still 5 */
	for (unsigned i = 0; i < p->nservers; i++)
		health_passive_result(&p->servers[i], 0, "refused", T0 + 1000);
	ejected = 0;
	for (unsigned i = 0; i < p->nservers; i++)
		ejected += !health_server_usable(&p->servers[i], T0 + 1000);
	ASSERT_EQ(ejected, 5, "still 5 while the first five are out");
	/* once the first ejections end, others may take their place */
	health_tick(cf, T0 + 10000);
	for (unsigned i = 5; i < p->nservers; i++)
		health_passive_result(&p->servers[i], 0, "refused", T0 + 10000);
	ejected = 0;
	for (unsigned i = 5; i < p->nservers; i++)
		ejected += !health_server_usable(&p->servers[i], T0 + 10000);
	ASSERT_EQ(ejected, 5, "the other five once the first five are back");
	conf_free(cf);

	cf = pool_of(1, "", NULL);
	for (int i = 0; i < 20; i++)
		health_passive_result(&cf->pools[0].servers[0], 0, "refused", T0);
	ASSERT_EQ(health_server_usable(&cf->pools[0].servers[0], T0), 1,
		  "the only server of a pool is never ejected at 50 %");
	conf_free(cf);
}

static void test_ejection_not_when_down(void)
{
	struct config *cf = pool_of(4, "health tcp fall 1; eject consecutive_failures 1;", NULL);
	struct server *s = &cf->pools[0].servers[0];

	health_check_result(s, 0, "refused", 0, T0);
	health_passive_result(s, 0, "refused", T0);
	ASSERT_EQ(atomic_load(&s->h.ejected_until_ms), 0, "a down server is not ejected");
	conf_free(cf);
}

static void test_format_status(void)
{
	struct config *cf = pool_of(2, "health http /h fall 1;", NULL);
	char buf[4096], small[16];
	int n;

	health_check_result(&cf->pools[0].servers[1], 0, "status 503", 1234, real_ms());
	n = health_format_status(cf, buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && (size_t)n < sizeof(buf), "length %d", n);
	ASSERT_EQ((int)strlen(buf), n, "returned length");
	ASSERT_TRUE(strstr(buf, "STATE") != NULL, "header:\n%s", buf);
	ASSERT_TRUE(strstr(buf, "fail:status 503") != NULL, "last result:\n%s", buf);
	ASSERT_TRUE(strstr(buf, "1234") != NULL, "latency:\n%s", buf);
	ASSERT_TRUE(strstr(buf, " down ") != NULL, "state:\n%s", buf);
	ASSERT_TRUE(strstr(buf, "pending") != NULL, "unchecked yet:\n%s", buf);
	ASSERT_EQ(health_format_status(cf, small, sizeof(small)), n, "cut: same length returned");
	ASSERT_EQ((int)strlen(small), (int)sizeof(small) - 1, "cut output NUL-terminated");
	ASSERT_STREQ(health_state_name(SRV_MAINT), "maintenance", "state name");
	ASSERT_STREQ(health_state_name(42), "?", "unknown state name");
	conf_free(cf);
}

/* eject slow: the window's means against the median of the other servers */
static void test_slow_ejection(void)
{
	struct config *cf =
		pool_of(4, "eject slow 3 window 1s min_requests 3 threshold 50ms;", NULL);
	struct pool *p = &cf->pools[0];
	uint64_t v[] = {5, 1, 4, 2}, w[] = {3, 1, 2};

	ASSERT_EQ(health_median(v, 4), 3, "median of four: the mean of the middle two");
	ASSERT_EQ(health_median(w, 3), 2, "median of three");
	ASSERT_EQ(p->eject_slow_factor, 3, "factor");
	ASSERT_EQ(p->eject_slow_window_ms, 1000, "window");
	health_tick(cf, T0); /* the first window starts */
	for (int i = 0; i < 10; i++) {
		health_head_latency(&p->servers[0], 20000);
		health_head_latency(&p->servers[1], 25000);
		health_head_latency(&p->servers[2], 30000);
		health_head_latency(&p->servers[3], 400000); /* 400 ms */
	}
	health_tick(cf, T0 + 500);
	ASSERT_EQ(health_server_usable(&p->servers[3], T0 + 500), 1, "judged at the window's end");
	health_tick(cf, T0 + 1000);
	ASSERT_EQ(health_server_usable(&p->servers[3], T0 + 1000), 0, "the slow server is ejected");
	for (unsigned i = 0; i < 3; i++)
		ASSERT_EQ(health_server_usable(&p->servers[i], T0 + 1000), 1, "the others stay");
	ASSERT_EQ(stats_of_slow(p), 1, "counted");
	/* a next window: under the threshold nobody is slow, even 10x the others */
	for (int i = 0; i < 10; i++) {
		health_head_latency(&p->servers[0], 1000);
		health_head_latency(&p->servers[1], 40000);
		health_head_latency(&p->servers[2], 1000);
	}
	health_tick(cf, T0 + 2000);
	ASSERT_EQ(health_server_usable(&p->servers[1], T0 + 2000), 1, "40 ms is under 50 ms");
	/* too few answers: not judged */
	health_head_latency(&p->servers[1], 900000);
	health_head_latency(&p->servers[0], 1000);
	health_head_latency(&p->servers[0], 1000);
	health_head_latency(&p->servers[0], 1000);
	health_tick(cf, T0 + 3000);
	ASSERT_EQ(health_server_usable(&p->servers[1], T0 + 3000), 1, "one answer is not judged");
	conf_free(cf);
}

/* the last server that might answer: marks do not count, states do */
static void test_may_answer(void)
{
	struct config *cf = pool_of(2, "eject consecutive_failures 1;", NULL);
	struct pool *p = &cf->pools[0];

	health_passive_result(&p->servers[0], 0, "refused", T0);
	atomic_store(&p->servers[0].failed_until_ms, T0 + 10000);
	ASSERT_EQ(health_server_usable(&p->servers[0], T0), 0, "ejected and marked");
	ASSERT_EQ(health_server_may_answer(&p->servers[0]), 1, "but it might answer");
	ASSERT_EQ(health_set_admin(&p->servers[1], "maint"), 0, "maintenance");
	ASSERT_EQ(health_server_may_answer(&p->servers[1]), 0, "maintenance never answers");
	ASSERT_EQ(health_set_admin(&p->servers[1], "drain"), 0, "drain");
	ASSERT_EQ(health_server_may_answer(&p->servers[1]), 0, "draining never takes new ones");
	conf_free(cf);
}

int main(void)
{
	RUN_TEST(test_conf_health_http);
	RUN_TEST(test_conf_defaults);
	RUN_TEST(test_conf_errors);
	RUN_TEST(test_fall_and_rise);
	RUN_TEST(test_fall_one_rise_one);
	RUN_TEST(test_admin);
	RUN_TEST(test_no_checks);
	RUN_TEST(test_slow_start);
	RUN_TEST(test_ejection_backoff);
	RUN_TEST(test_ejection_cap);
	RUN_TEST(test_ejection_not_when_down);
	RUN_TEST(test_format_status);
	RUN_TEST(test_slow_ejection);
	RUN_TEST(test_may_answer);
	free(msgs);
	return TEST_DONE();
}
