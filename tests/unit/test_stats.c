// SPDX-License-Identifier: MIT
/*
 * test_stats.c - unit tests for the run-time counters (userspace/stats.c) and the output buffer
 * of the control socket and the metrics endpoint (userspace/obuf.c): (pool, status) slots,
 * their exhaustion, concurrent first use of a slot, histogram buckets, reason names, JSON and
 * Prometheus label escaping, growth and the size cap.
 */
#include <pthread.h>
#include <stdint.h>

#include "obuf.h"
#include "stats.h"
#include "test.h"

static struct listener L;
static struct pool P1 = {.name = "p1"}, P2 = {.name = "p2"};

static uint64_t code_count(struct listener *l, const char *pool, int code)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < STATS_CODE_SLOTS; i++) {
		struct stats_code *sc = &l->st.codes[i];

		if (atomic_load(&sc->ready) && sc->code == code && !strcmp(sc->pool, pool))
			n += atomic_load(&sc->count);
	}
	return n;
}

static void test_codes(void)
{
	memset(&L, 0, sizeof(L));
	memset(&g_stats, 0, sizeof(g_stats));
	for (int i = 0; i < 5; i++)
		stats_request(&L, &P1, 200, 0);
	stats_request(&L, &P2, 200, 3);
	stats_request(&L, &P1, 503, 7);
	stats_request(&L, NULL, 404, 0);
	stats_request(&L, NULL, 0, 0);
	stats_request(&L, &P1, 70000, 0); /* nonsense status: counted as 0 */
	ASSERT_EQ(code_count(&L, "p1", 200), 5, "p1 200");
	ASSERT_EQ(code_count(&L, "p2", 200), 1, "p2 200");
	ASSERT_EQ(code_count(&L, "p1", 503), 1, "p1 503");
	ASSERT_EQ(code_count(&L, "", 404), 1, "no pool 404");
	ASSERT_EQ(code_count(&L, "", 0), 1, "no pool, no status");
	ASSERT_EQ(code_count(&L, "p1", 0), 1, "out of range status");
	ASSERT_EQ(atomic_load(&L.st.requests), 10, "listener requests");
	ASSERT_EQ(atomic_load(&g_stats.requests_total), 10, "global requests");
	ASSERT_EQ(atomic_load(&P1.st.requests), 7, "pool p1 requests");
	ASSERT_EQ(atomic_load(&P1.st.status_class[2]), 5, "pool p1 2xx");
	ASSERT_EQ(atomic_load(&P1.st.status_class[5]), 1, "pool p1 5xx");
	ASSERT_EQ(atomic_load(&P1.st.status_class[0]), 1, "pool p1 other");
	ASSERT_EQ(atomic_load(&L.st.codes_lost), 0, "nothing lost");
}

static void test_codes_full(void)
{
	memset(&L, 0, sizeof(L));
	/* more distinct pairs than slots: the rest is counted as lost, nothing is overwritten */
	for (int c = 100; c < 100 + STATS_CODE_SLOTS + 10; c++)
		stats_request(&L, &P1, c, 0);
	ASSERT_EQ(atomic_load(&L.st.codes_lost), 10, "lost pairs");
	ASSERT_EQ(code_count(&L, "p1", 100), 1, "first pair kept");
	ASSERT_EQ(atomic_load(&L.st.requests), STATS_CODE_SLOTS + 10, "requests");
}

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++)
		stats_request(&L, (i & 1) ? &P1 : &P2, 200 + (i % 4), 0);
	return NULL;
}

static void test_codes_concurrent(void)
{
	pthread_t t[4];

	memset(&L, 0, sizeof(L));
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* 4 pairs (odd statuses with p1), each claimed once: every request lands in one slot */
	for (int c = 200; c < 204; c++) {
		ASSERT_EQ(code_count(&L, "p1", c) + code_count(&L, "p2", c), 4 * 5000,
			  "requests per status");
		ASSERT_EQ(code_count(&L, (c & 1) ? "p1" : "p2", c), 4 * 5000, "pool of a status");
	}
	{
		unsigned used = 0;

		for (unsigned i = 0; i < STATS_CODE_SLOTS; i++)
			used += atomic_load(&L.st.codes[i].key) != 0;
		ASSERT_EQ(used, 4, "slots used (no pair claimed twice)");
	}
}

static void test_histogram(void)
{
	static const uint64_t ms[] = {0, 1, 2, 5, 6, 100, 101, 10000, 10001, 1000000};
	/* bounds 1 5 10 50 100 250 500 1000 2500 5000 10000 +Inf: a value equal to a bound
	 * belongs to it (le) */
	static const unsigned want[STATS_DUR_BUCKETS + 1] = {2, 2, 1, 0, 1, 1, 0, 0, 0, 0, 1, 2};

	memset(&L, 0, sizeof(L));
	for (unsigned i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		stats_request(&L, &P1, 200, ms[i]);
	for (unsigned b = 0; b <= STATS_DUR_BUCKETS; b++)
		ASSERT_EQ(atomic_load(&L.st.dur_bucket[b]), want[b], "bucket");
	ASSERT_EQ(atomic_load(&L.st.dur_sum_ms),
		  0 + 1 + 2 + 5 + 6 + 100 + 101 + 10000 + 10001 + 1000000, "sum");
	ASSERT_EQ(stats_dur_bound_ms(0), 1, "first bound");
	ASSERT_EQ(stats_dur_bound_ms(STATS_DUR_BUCKETS - 1), 10000, "last bound");
}

static void test_reasons(void)
{
	for (unsigned e = 0; e < STATS_ERR_MAX; e++) {
		const char *n = stats_error_name(e);

		ASSERT_TRUE(n && *n && strcmp(n, "?"), "reason %u has no name", e);
		for (const char *p = n; *p; p++)
			ASSERT_TRUE((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
					    *p == '_',
				    "reason %s: '%c' is not a label character", n, *p);
	}
	ASSERT_STREQ(stats_error_name(STATS_ERR_MAX), "?", "out of range");
	ASSERT_EQ(stats_error_of_status(400), STATS_ERR_PARSE_400, "400");
	ASSERT_EQ(stats_error_of_status(503), STATS_ERR_NO_SERVER_503, "503");
	ASSERT_EQ(stats_error_of_status(418), STATS_ERR_OTHER_STATUS, "418");
}

static void test_obuf_escape(void)
{
	struct obuf b = {0};

	ob_json_str(&b, "a\"b\\c\n\x01\x7f/é");
	ob_put(&b, "", 1);
	ASSERT_STREQ(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\\u007f/é\"", "json string");
	ob_reset(&b);
	ob_label(&b, "x\"y\\z\nw");
	ob_put(&b, "", 1);
	ASSERT_STREQ(b.p, "x\\\"y\\\\z\\nw", "label value");
	ob_free(&b);
}

static void test_obuf_growth_and_cap(void)
{
	struct obuf b = {0}, small = {.max = 100};
	char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 50; i++)
		ob_printf(&b, "%s%d", big, i);
	ASSERT_EQ(b.len, 50 * (sizeof(big) - 1) + 10 + 40 * 2, "grown length");
	ASSERT_EQ(b.failed, 0, "not failed");
	ASSERT_TRUE(b.p[b.len - 1] == '9' && b.p[b.len - 2] == '4', "last bytes");
	ob_free(&b);

	ob_printf(&small, "%s", "0123456789");
	ASSERT_EQ(small.len, 10, "fits");
	ob_printf(&small, "%s", big);
	ASSERT_EQ(small.failed, 1, "over the cap");
	ASSERT_EQ(small.len, 10, "nothing appended past the cap");
	ob_printf(&small, "x");
	ASSERT_EQ(small.len, 10, "no appends after a failure");
	ob_free(&small);
}

int main(void)
{
	RUN_TEST(test_codes);
	RUN_TEST(test_codes_full);
	RUN_TEST(test_codes_concurrent);
	RUN_TEST(test_histogram);
	RUN_TEST(test_reasons);
	RUN_TEST(test_obuf_escape);
	RUN_TEST(test_obuf_growth_and_cap);
	return TEST_DONE();
}
