// SPDX-License-Identifier: MIT
/*
 * test_lb.c - unit tests for the balancer (userspace/lb.c): distribution, smoothness, masks,
 * drain, backups, consistent-hash stability and a concurrency smoke test.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "lb.h"
#include "test.h"

#define NPICKS 10000
#define MAXM 16

static const enum lb_algo all_algos[] = {LB_ROUND_ROBIN, LB_LEAST_CONN, LB_HASH, LB_RANDOM2};
#define NALGOS (sizeof(all_algos) / sizeof(all_algos[0]))

static const char *const five_names[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80",
					 "10.0.0.5:80"};
static const char *const generic_names[MAXM] = {"s0",  "s1",  "s2",  "s3", "s4",  "s5",
						"s6",  "s7",  "s8",  "s9", "s10", "s11",
						"s12", "s13", "s14", "s15"};

static uint8_t all_usable[MAXM] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

/* worst share error seen, per algorithm, reported at the end */
static double worst_abs[NALGOS], worst_rel[NALGOS];

/* one pick, with a connection opened and closed at once (what least_conn/random see) */
static int pick_once(struct lb *lb, const uint8_t *usable, uint64_t key)
{
	int idx = lb_pick(lb, usable, key);

	if (idx >= 0) {
		lb_conn_acquire(lb, idx);
		lb_conn_release(lb, idx);
	}
	return idx;
}

/*
 * Checks that each member's share of NPICKS picks is within 2 percentage points of its weight
 * share (|observed - expected| <= 0.02). For hashing the keys are distinct so the picks sample
 * the ring; that algorithm's bound is tested separately because ring variance dominates.
 */
static void check_distribution(enum lb_algo algo, const uint32_t *w, unsigned n)
{
	unsigned long counts[MAXM] = {0};
	uint64_t wsum = 0;
	struct lb lb;
	unsigned i;
	int err;

	err = lb_init(&lb, algo, n, w, NULL, generic_names);
	if (!ASSERT_EQ(err, 0, "lb_init"))
		return;
	/*
	 * Fixed seed so a failure reproduces. 2 share points is >= 4 standard deviations of 10,000
	 * weighted draws for every share used here, so it holds for any seed, not a lucky one.
	 */
	lb.rng = 0x2545f4914f6cdd1dULL ^ (n * 0x9e3779b97f4a7c15ULL);
	for (i = 0; i < n; i++)
		wsum += w[i];
	for (i = 0; i < NPICKS; i++) {
		int idx = pick_once(&lb, all_usable, lb_hash(&i, sizeof(i)));

		if (!ASSERT_TRUE(idx >= 0 && (unsigned)idx < n, "idx %d", idx))
			goto out;
		counts[idx]++;
	}
	for (i = 0; i < n; i++) {
		double exp = (double)w[i] / (double)wsum;
		double got = (double)counts[i] / NPICKS;
		double abs_err = fabs(got - exp), rel_err = abs_err / exp;

		if (abs_err > worst_abs[algo])
			worst_abs[algo] = abs_err;
		if (rel_err > worst_rel[algo])
			worst_rel[algo] = rel_err;
		ASSERT_TRUE(abs_err <= 0.02, "%s member %u: share %.4f expected %.4f",
			    lb_algo_name(algo), i, got, exp);
	}
out:
	lb_free(&lb);
}

static void test_algo_parse_name(void)
{
	enum lb_algo a = LB_HASH;
	unsigned i;

	for (i = 0; i < NALGOS; i++) {
		ASSERT_EQ(lb_algo_parse(lb_algo_name(all_algos[i]), &a), 0, "parse");
		ASSERT_EQ(a, all_algos[i], "round trip");
	}
	ASSERT_STREQ(lb_algo_name(LB_ROUND_ROBIN), "round_robin", "name");
	ASSERT_STREQ(lb_algo_name(LB_LEAST_CONN), "least_conn", "name");
	ASSERT_STREQ(lb_algo_name(LB_HASH), "hash", "name");
	ASSERT_STREQ(lb_algo_name(LB_RANDOM2), "random", "name");
	a = LB_HASH;
	ASSERT_EQ(lb_algo_parse("roundrobin", &a), -EINVAL, "unknown");
	ASSERT_EQ(lb_algo_parse("", &a), -EINVAL, "empty");
	ASSERT_EQ(lb_algo_parse("Hash", &a), -EINVAL, "case");
	ASSERT_EQ(lb_algo_parse("hash ", &a), -EINVAL, "trailing space");
	ASSERT_EQ(lb_algo_parse(NULL, &a), -EINVAL, "NULL");
	ASSERT_EQ(a, LB_HASH, "out untouched on error");
	ASSERT_STREQ(lb_algo_name((enum lb_algo)42), "unknown", "out of range name");
}

static void test_init_rejects(void)
{
	uint32_t w[1] = {1};
	struct lb lb;

	ASSERT_EQ(lb_init(&lb, LB_ROUND_ROBIN, 0, w, NULL, NULL), -EINVAL, "n == 0");
	ASSERT_EQ(lb_init(&lb, (enum lb_algo)9, 1, w, NULL, NULL), -EINVAL, "bad algo");
	ASSERT_EQ(lb_init(&lb, LB_ROUND_ROBIN, 1, NULL, NULL, NULL), -EINVAL, "no weights");
	w[0] = UINT32_MAX;
	ASSERT_EQ(lb_init(&lb, LB_HASH, 1, w, NULL, NULL), -E2BIG, "ring too big");
}

static void test_distribution_all(void)
{
	static const uint32_t w532[] = {5, 3, 2};
	static const uint32_t w1111[] = {1, 1, 1, 1};
	static const uint32_t wskew[] = {10, 1, 1};
	unsigned a;

	for (a = 0; a < NALGOS; a++) {
		if (all_algos[a] == LB_HASH)
			continue; /* test_hash_distribution: ring variance, not sampling */
		check_distribution(all_algos[a], w532, 3);
		check_distribution(all_algos[a], w1111, 4);
		check_distribution(all_algos[a], wskew, 3);
	}
}

/* Deterministic algorithms hit the weight share exactly over whole WRR cycles. */
static void test_rr_exact_cycles(void)
{
	static const uint32_t w[] = {5, 3, 2};
	unsigned long counts[3] = {0};
	struct lb lb;
	unsigned i;

	if (!ASSERT_EQ(lb_init(&lb, LB_ROUND_ROBIN, 3, w, NULL, NULL), 0, "init"))
		return;
	for (i = 0; i < 10 * 1000; i++)
		counts[lb_pick(&lb, all_usable, 0)]++;
	ASSERT_EQ(counts[0], 5000, "w5");
	ASSERT_EQ(counts[1], 3000, "w3");
	ASSERT_EQ(counts[2], 2000, "w2");
	lb_free(&lb);
}

/* nginx's documented sequence for weights 5,1,1 is a a b a c a a. */
static void test_rr_nginx_sequence(void)
{
	static const uint32_t w[] = {5, 1, 1};
	static const int want[] = {0, 0, 1, 0, 2, 0, 0};
	struct lb lb;
	unsigned r, i;

	if (!ASSERT_EQ(lb_init(&lb, LB_ROUND_ROBIN, 3, w, NULL, NULL), 0, "init"))
		return;
	for (r = 0; r < 3; r++)
		for (i = 0; i < 7; i++)
			ASSERT_EQ(lb_pick(&lb, all_usable, 0), want[i], "sequence");
	lb_free(&lb);
}

/* No member runs longer than ceil(w_i / w_min) + 1 picks in a row. */
static void check_smooth(enum lb_algo algo, const uint32_t *w, unsigned n)
{
	unsigned run = 0, i, wmin = UINT32_MAX;
	int prev = -1;
	struct lb lb;

	if (!ASSERT_EQ(lb_init(&lb, algo, n, w, NULL, NULL), 0, "init"))
		return;
	for (i = 0; i < n; i++)
		if (w[i] < wmin)
			wmin = w[i];
	for (i = 0; i < NPICKS; i++) {
		int idx = pick_once(&lb, all_usable, 0);
		unsigned limit;

		if (!ASSERT_TRUE(idx >= 0, "pick"))
			break;
		run = idx == prev ? run + 1 : 1;
		prev = idx;
		limit = (w[idx] + wmin - 1) / wmin + 1;
		if (!ASSERT_TRUE(run <= limit, "%s: member %d picked %u times in a row (limit %u)",
				 lb_algo_name(algo), idx, run, limit))
			break;
	}
	lb_free(&lb);
}

static void test_rr_smooth(void)
{
	static const uint32_t w31[] = {3, 1};
	static const uint32_t w532[] = {5, 3, 2};
	static const uint32_t w1011[] = {10, 1, 1};
	static const uint32_t w1111[] = {1, 1, 1, 1};
	static const uint32_t w7_3[] = {7, 3};
	int seq[4], i;
	struct lb lb;

	check_smooth(LB_ROUND_ROBIN, w31, 2);
	check_smooth(LB_ROUND_ROBIN, w532, 3);
	check_smooth(LB_ROUND_ROBIN, w1011, 3);
	check_smooth(LB_ROUND_ROBIN, w1111, 4);
	check_smooth(LB_ROUND_ROBIN, w7_3, 2);
	/* least_conn with immediate release degenerates to the same smooth WRR */
	check_smooth(LB_LEAST_CONN, w532, 3);
	check_smooth(LB_LEAST_CONN, w31, 2);

	/* weights 3,1: one b in every four, never two b's together */
	if (!ASSERT_EQ(lb_init(&lb, LB_ROUND_ROBIN, 2, w31, NULL, NULL), 0, "init"))
		return;
	for (i = 0; i < 4; i++)
		seq[i] = lb_pick(&lb, all_usable, 0);
	ASSERT_EQ(seq[0] + seq[1] + seq[2] + seq[3], 1, "one b per cycle");
	ASSERT_EQ(seq[0], 0, "starts with a");
	lb_free(&lb);
}

/* A member that keeps connections open gets fewer new ones under least_conn and random. */
static void check_long_connections(enum lb_algo algo)
{
	static const uint32_t w[] = {1, 1, 1};
	enum { SLOW_HOLD = 20 };
	unsigned long counts[3] = {0};
	int held[SLOW_HOLD];
	unsigned nheld = 0, i, head = 0;
	struct lb lb;

	if (!ASSERT_EQ(lb_init(&lb, algo, 3, w, NULL, NULL), 0, "init"))
		return;
	/* member 0 is slow: its connections live for SLOW_HOLD picks, the others' close at once */
	for (i = 0; i < NPICKS; i++) {
		int idx = lb_pick(&lb, all_usable, 0);

		if (!ASSERT_TRUE(idx >= 0, "pick"))
			break;
		counts[idx]++;
		lb_conn_acquire(&lb, idx);
		if (idx != 0) {
			lb_conn_release(&lb, idx);
		} else {
			if (nheld == SLOW_HOLD) {
				lb_conn_release(&lb, held[head]);
				nheld--;
				head = (head + 1) % SLOW_HOLD;
			}
			held[(head + nheld) % SLOW_HOLD] = idx;
			nheld++;
		}
	}
	while (nheld--) {
		lb_conn_release(&lb, held[head]);
		head = (head + 1) % SLOW_HOLD;
	}
	ASSERT_TRUE(counts[0] * 4 < counts[1] && counts[0] * 4 < counts[2],
		    "%s: slow member got %lu vs %lu/%lu", lb_algo_name(algo), counts[0], counts[1],
		    counts[2]);
	ASSERT_EQ(lb.m[0].active + lb.m[1].active + lb.m[2].active, 0, "all released");
	lb_free(&lb);
}

static void test_lc_long_connections(void)
{
	static const uint32_t w[] = {2, 1};
	struct lb lb;
	int i;

	check_long_connections(LB_LEAST_CONN);

	/* weighted: 2 active on weight 2 ties 1 active on weight 1 */
	if (!ASSERT_EQ(lb_init(&lb, LB_LEAST_CONN, 2, w, NULL, NULL), 0, "init"))
		return;
	lb_conn_acquire(&lb, 0);
	lb_conn_acquire(&lb, 0);
	lb_conn_acquire(&lb, 0);
	for (i = 0; i < 10; i++)
		ASSERT_EQ(lb_pick(&lb, all_usable, 0), 1, "3/2 > 0/1");
	lb_conn_acquire(&lb, 1);
	lb_conn_acquire(&lb, 1);
	/* 3/2 < 2/1 */
	ASSERT_EQ(lb_pick(&lb, all_usable, 0), 0, "3/2 < 2/1");
	lb_free(&lb);
}

static void test_random_load_aware(void)
{
	static const uint32_t w[] = {1, 1, 1, 1};
	struct lb lb;
	int i;

	check_long_connections(LB_RANDOM2);

	/* two distinct candidates are compared, so a loaded member loses every comparison */
	if (!ASSERT_EQ(lb_init(&lb, LB_RANDOM2, 4, w, NULL, NULL), 0, "init"))
		return;
	lb_conn_acquire(&lb, 2);
	for (i = 0; i < 1000; i++)
		if (!ASSERT_TRUE(lb_pick(&lb, all_usable, 0) != 2, "loaded member picked"))
			break;
	lb_free(&lb);
}

/* Only members with usable[i] != 0 are picked, for every algorithm. */
static void test_usable_mask(void)
{
	static const uint32_t w[] = {5, 3, 2, 1, 1};
	static const uint8_t usable[] = {0, 1, 0, 1, 1};
	unsigned long counts[5];
	unsigned a, i;

	for (a = 0; a < NALGOS; a++) {
		struct lb lb;

		if (!ASSERT_EQ(lb_init(&lb, all_algos[a], 5, w, NULL, five_names), 0, "init"))
			continue;
		memset(counts, 0, sizeof(counts));
		for (i = 0; i < NPICKS; i++) {
			int idx = pick_once(&lb, usable, lb_hash(&i, sizeof(i)));

			if (!ASSERT_TRUE(idx >= 0 && usable[idx], "%s picked %d",
					 lb_algo_name(all_algos[a]), idx))
				break;
			counts[idx]++;
		}
		ASSERT_TRUE(counts[1] && counts[3] && counts[4], "%s: all usable get traffic",
			    lb_algo_name(all_algos[a]));
		lb_free(&lb);
	}
}

/* Weight 0 is never picked, from lb_init or lb_set_weight, and returning it restores it. */
static void test_weight_zero_drain(void)
{
	static const uint32_t w[] = {0, 2, 1};
	unsigned long counts[3];
	unsigned a, i;

	for (a = 0; a < NALGOS; a++) {
		enum lb_algo algo = all_algos[a];
		struct lb lb;

		if (!ASSERT_EQ(lb_init(&lb, algo, 3, w, NULL, five_names), 0, "init"))
			continue;
		memset(counts, 0, sizeof(counts));
		for (i = 0; i < NPICKS; i++)
			counts[pick_once(&lb, all_usable, lb_hash(&i, sizeof(i)))]++;
		ASSERT_EQ(counts[0], 0, lb_algo_name(algo));

		lb_set_weight(&lb, 1, 0);
		memset(counts, 0, sizeof(counts));
		for (i = 0; i < NPICKS; i++)
			counts[pick_once(&lb, all_usable, lb_hash(&i, sizeof(i)))]++;
		ASSERT_EQ(counts[2], NPICKS, lb_algo_name(algo));

		lb_set_weight(&lb, 2, 0);
		ASSERT_EQ(lb_pick(&lb, all_usable, 7), -1, "all drained");

		lb_set_weight(&lb, 0, 1);
		lb_set_weight(&lb, 1, 1);
		lb_set_weight(&lb, 2, 1);
		lb_set_weight(&lb, 7, 1); /* out of range: ignored */
		memset(counts, 0, sizeof(counts));
		for (i = 0; i < NPICKS; i++)
			counts[pick_once(&lb, all_usable, lb_hash(&i, sizeof(i)))]++;
		ASSERT_TRUE(counts[0] && counts[1] && counts[2], "%s: undrained get traffic",
			    lb_algo_name(algo));
		lb_free(&lb);
	}
}

/*
 * Backups (3, 4) are used only when no primary with weight > 0 is usable, and then share the
 * load by weight; when one primary comes back it takes everything again.
 */
static void test_backup(void)
{
	static const uint32_t w[] = {1, 1, 1, 3, 1};
	static const uint8_t backup[] = {0, 0, 0, 1, 1};
	uint8_t usable[5] = {1, 1, 1, 1, 1};
	unsigned long counts[5];
	unsigned a, i;

	for (a = 0; a < NALGOS; a++) {
		enum lb_algo algo = all_algos[a];
		const char *an = lb_algo_name(algo);
		struct lb lb;

		if (!ASSERT_EQ(lb_init(&lb, algo, 5, w, backup, five_names), 0, "init"))
			continue;
		memset(usable, 1, sizeof(usable));
		memset(counts, 0, sizeof(counts));
		for (i = 0; i < NPICKS; i++)
			counts[pick_once(&lb, usable, lb_hash(&i, sizeof(i)))]++;
		ASSERT_TRUE(counts[3] == 0 && counts[4] == 0, "%s: backup used with primaries", an);

		/* primaries down */
		usable[0] = usable[1] = usable[2] = 0;
		memset(counts, 0, sizeof(counts));
		for (i = 0; i < NPICKS; i++)
			counts[pick_once(&lb, usable, lb_hash(&i, sizeof(i)))]++;
		ASSERT_EQ(counts[3] + counts[4], NPICKS, an);
		ASSERT_TRUE(counts[3] > counts[4] && counts[4] > 0, "%s: backups %lu/%lu", an,
			    counts[3], counts[4]);
		if (algo != LB_HASH)
			ASSERT_TRUE(fabs(counts[3] / (double)NPICKS - 0.75) <= 0.02,
				    "%s: backup share %lu", an, counts[3]);

		/* a usable primary with weight 0 is draining: still fail over to backups */
		usable[1] = 1;
		lb_set_weight(&lb, 1, 0);
		ASSERT_TRUE(lb.m[1].weight == 0, "weight set");
		for (i = 0; i < 100; i++) {
			int idx = pick_once(&lb, usable, lb_hash(&i, sizeof(i)));

			if (!ASSERT_TRUE(idx == 3 || idx == 4, "%s: drained primary: %d", an, idx))
				break;
		}

		/* one primary back: it takes everything */
		usable[2] = 1;
		for (i = 0; i < 100; i++)
			if (!ASSERT_EQ(pick_once(&lb, usable, lb_hash(&i, sizeof(i))), 2, an))
				break;

		/* nothing usable at all */
		memset(usable, 0, sizeof(usable));
		ASSERT_EQ(lb_pick(&lb, usable, 1), -1, an);
		lb_free(&lb);
	}
}

static void test_none_usable(void)
{
	static const uint32_t w[] = {1, 2, 3};
	static const uint32_t wz[] = {0, 0, 0};
	static const uint8_t none[3] = {0, 0, 0};
	static const uint8_t only_backup_down[3] = {1, 1, 0};
	static const uint8_t all_backup[3] = {1, 1, 1};
	unsigned a;

	for (a = 0; a < NALGOS; a++) {
		const char *an = lb_algo_name(all_algos[a]);
		struct lb lb;

		if (!ASSERT_EQ(lb_init(&lb, all_algos[a], 3, w, NULL, NULL), 0, "init"))
			continue;
		ASSERT_EQ(lb_pick(&lb, none, 42), -1, an);
		lb_free(&lb);

		if (!ASSERT_EQ(lb_init(&lb, all_algos[a], 3, wz, NULL, NULL), 0, "init"))
			continue;
		ASSERT_EQ(lb_pick(&lb, all_usable, 42), -1, an);
		lb_free(&lb);

		if (!ASSERT_EQ(lb_init(&lb, all_algos[a], 3, w, all_backup, NULL), 0, "init"))
			continue;
		ASSERT_EQ(lb_pick(&lb, none, 42), -1, an);
		ASSERT_TRUE(lb_pick(&lb, only_backup_down, 42) >= 0, "%s: all-backup pool", an);
		lb_free(&lb);
	}
}

static void test_conn_counting(void)
{
	static const uint32_t w[] = {1, 1};
	struct lb lb;

	if (!ASSERT_EQ(lb_init(&lb, LB_LEAST_CONN, 2, w, NULL, NULL), 0, "init"))
		return;
	lb_conn_release(&lb, 0);
	ASSERT_EQ(lb.m[0].active, 0, "release never below 0");
	lb_conn_acquire(&lb, 0);
	lb_conn_acquire(&lb, 0);
	ASSERT_EQ(lb.m[0].active, 2, "acquire");
	lb_conn_release(&lb, 0);
	lb_conn_release(&lb, 0);
	lb_conn_release(&lb, 0);
	ASSERT_EQ(lb.m[0].active, 0, "release floor");
	lb_conn_acquire(&lb, -1); /* ignored, e.g. the -1 of a failed pick */
	lb_conn_acquire(&lb, 2);
	lb_conn_release(&lb, -1);
	ASSERT_EQ(lb.m[0].active + lb.m[1].active, 0, "out of range ignored");
	lb_free(&lb);
}

static uint64_t ref_fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static void test_lb_hash(void)
{
	/* FNV-1a 64 offset basis for "", 0xaf63dc4c8601ec8c for "a" (published test vectors) */
	ASSERT_TRUE(lb_hash("", 0) == ref_fmix64(0xcbf29ce484222325ULL), "empty");
	ASSERT_TRUE(lb_hash("a", 1) == ref_fmix64(0xaf63dc4c8601ec8cULL), "\"a\"");
	ASSERT_TRUE(lb_hash("foobar", 6) == ref_fmix64(0x85944171f73967e8ULL), "\"foobar\"");
	ASSERT_TRUE(lb_hash("ab", 2) != lb_hash("ba", 2), "order matters");
}

/* key -> member for 5 named servers with the given usable mask */
static void map_keys(struct lb *lb, const uint8_t *usable, int *out, unsigned nkeys)
{
	unsigned i;

	for (i = 0; i < nkeys; i++) {
		char k[32];
		int len = snprintf(k, sizeof(k), "198.51.%u.%u", i / 256, i % 256);

		out[i] = lb_pick(lb, usable, lb_hash(k, (size_t)len));
	}
}

static void test_hash_stability(void)
{
	static const uint32_t w[] = {1, 1, 1, 1, 1};
	static int first[NPICKS], again[NPICKS];
	struct lb lb, lb2;
	unsigned i;

	if (!ASSERT_EQ(lb_init(&lb, LB_HASH, 5, w, NULL, five_names), 0, "init"))
		return;
	map_keys(&lb, all_usable, first, NPICKS);
	/* interleave other traffic and connection counts: hashing must ignore both */
	for (i = 0; i < 1000; i++)
		lb_conn_acquire(&lb, pick_once(&lb, all_usable, i));
	map_keys(&lb, all_usable, again, NPICKS);
	for (i = 0; i < NPICKS; i++)
		if (!ASSERT_EQ(again[i], first[i], "same key, same member"))
			break;
	/* a second balancer built from the same names agrees (no per-instance randomness) */
	if (!ASSERT_EQ(lb_init(&lb2, LB_HASH, 5, w, NULL, five_names), 0, "init"))
		goto out;
	map_keys(&lb2, all_usable, again, NPICKS);
	for (i = 0; i < NPICKS; i++)
		if (!ASSERT_EQ(again[i], first[i], "same key, other instance"))
			break;
	lb_free(&lb2);
out:
	lb_free(&lb);
}

static void test_hash_one_down(void)
{
	static const uint32_t w[] = {1, 1, 1, 1, 1};
	static int before[NPICKS], after[NPICKS], restored[NPICKS];
	unsigned long moved_to[5] = {0};
	uint8_t usable[5] = {1, 1, 1, 1, 1};
	unsigned down, i;
	struct lb lb;

	if (!ASSERT_EQ(lb_init(&lb, LB_HASH, 5, w, NULL, five_names), 0, "init"))
		return;
	map_keys(&lb, usable, before, NPICKS);
	for (down = 0; down < 5; down++) {
		unsigned long lost = 0;

		memset(usable, 1, sizeof(usable));
		usable[down] = 0;
		memset(moved_to, 0, sizeof(moved_to));
		map_keys(&lb, usable, after, NPICKS);
		for (i = 0; i < NPICKS; i++) {
			if (before[i] == (int)down) {
				lost++;
				if (!ASSERT_TRUE(after[i] >= 0 && after[i] != (int)down, "moved"))
					break;
				moved_to[after[i]]++;
			} else if (!ASSERT_EQ(after[i], before[i], "unaffected key moved")) {
				break;
			}
		}
		ASSERT_TRUE(lost > 0, "server %u had keys", down);
		for (i = 0; i < 5; i++)
			if (i != down)
				ASSERT_TRUE(moved_to[i] > 0, "down %u: %u got none of %lu", down, i,
					    lost);
	}
	/* back up: the original mapping returns exactly */
	map_keys(&lb, all_usable, restored, NPICKS);
	ASSERT_TRUE(memcmp(restored, before, sizeof(before)) == 0, "restored");

	/* draining through lb_set_weight (ring rebuilt without it) behaves the same */
	lb_set_weight(&lb, 2, 0);
	map_keys(&lb, all_usable, after, NPICKS);
	for (i = 0; i < NPICKS; i++)
		if (!ASSERT_TRUE(before[i] == 2 ? after[i] != 2 : after[i] == before[i], "drain"))
			break;
	lb_set_weight(&lb, 2, 1);
	map_keys(&lb, all_usable, restored, NPICKS);
	ASSERT_TRUE(memcmp(restored, before, sizeof(before)) == 0, "undrained");
	lb_free(&lb);
}

/* Removing server 3 from the configuration keeps every other server's keys where they were. */
static void test_hash_removed(void)
{
	static const uint32_t w[] = {1, 1, 1, 1, 1};
	static const char *const four_names[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80",
						 "10.0.0.5:80"};
	/* index in the 4-member pool of each of the 5 original servers */
	static const int new_idx[] = {0, 1, 2, -1, 3};
	static int before[NPICKS], after[NPICKS];
	unsigned long moved_to[4] = {0};
	struct lb lb5, lb4;
	unsigned i;

	if (!ASSERT_EQ(lb_init(&lb5, LB_HASH, 5, w, NULL, five_names), 0, "init"))
		return;
	if (!ASSERT_EQ(lb_init(&lb4, LB_HASH, 4, w, NULL, four_names), 0, "init"))
		goto out5;
	map_keys(&lb5, all_usable, before, NPICKS);
	map_keys(&lb4, all_usable, after, NPICKS);
	for (i = 0; i < NPICKS; i++) {
		if (before[i] == 3) {
			moved_to[after[i]]++;
			continue;
		}
		if (!ASSERT_EQ(after[i], new_idx[before[i]], "remaining server's key moved"))
			break;
	}
	for (i = 0; i < 4; i++)
		ASSERT_TRUE(moved_to[i] > 0, "removed server's keys reach %u", i);
	lb_free(&lb4);
out5:
	lb_free(&lb5);
}

/*
 * Ring share of each server over 100,000 distinct keys (enough that the measurement reflects the
 * ring, not key sampling). Returns the worst absolute (share points) and relative deviation from
 * the weight share through *abs_worst and *rel_worst.
 */
static void hash_spread(const char *const *names, const uint32_t *w, unsigned n, double *abs_worst,
			double *rel_worst)
{
	unsigned long counts[MAXM] = {0};
	const unsigned nkeys = 100000;
	uint64_t wsum = 0;
	struct lb lb;
	unsigned i;

	*abs_worst = *rel_worst = 0;
	if (!ASSERT_EQ(lb_init(&lb, LB_HASH, n, w, NULL, names), 0, "init"))
		return;
	for (i = 0; i < n; i++)
		wsum += w[i];
	for (i = 0; i < nkeys; i++) {
		char k[32];
		int len = snprintf(k, sizeof(k), "client-%u", i);

		counts[lb_pick(&lb, all_usable, lb_hash(k, (size_t)len))]++;
	}
	for (i = 0; i < n; i++) {
		double exp = (double)w[i] / (double)wsum;
		double d = fabs((double)counts[i] / nkeys - exp);

		if (d > *abs_worst)
			*abs_worst = d;
		if (d / exp > *rel_worst)
			*rel_worst = d / exp;
	}
	lb_free(&lb);
}

/*
 * With LB_VNODES_PER_WEIGHT = 40 points per server at weight 1, a server's arc share has a
 * relative standard deviation of about 1/sqrt(40) = 16 %: that is ring variance, not a bug. So
 * at weight 1 the bound is 10 share points; 10 % relative is checked where the ring has enough
 * points for it to be a real property (weight 25 = 1000 points, 3 standard deviations), and
 * weighted shares at 2 points with weights 50,30,20.
 */
static void test_hash_distribution(void)
{
	static const uint32_t w1[] = {1, 1, 1, 1, 1};
	static const uint32_t w25[] = {25, 25, 25, 25, 25};
	static const uint32_t w532[] = {50, 30, 20};
	double a, r, a1 = 0, r1 = 0;

	hash_spread(five_names, w1, 5, &a, &r);
	ASSERT_TRUE(a <= 0.10, "5 x weight 1: %.2f share points", a * 100);
	a1 = a, r1 = r;
	hash_spread(generic_names, w1, 4, &a, &r);
	ASSERT_TRUE(a <= 0.10, "4 x weight 1: %.2f share points", a * 100);
	a1 = a > a1 ? a : a1, r1 = r > r1 ? r : r1;
	printf("# hash weight 1: worst %.2f share points (%.1f%% relative)\n", a1 * 100, r1 * 100);

	hash_spread(five_names, w25, 5, &a, &r);
	ASSERT_TRUE(r <= 0.10, "5 x weight 25: %.1f%% relative", r * 100);
	a1 = a, r1 = r;
	hash_spread(generic_names, w25, 4, &a, &r);
	ASSERT_TRUE(r <= 0.10, "4 x weight 25: %.1f%% relative", r * 100);
	a1 = a > a1 ? a : a1, r1 = r > r1 ? r : r1;
	printf("# hash weight 25: worst %.2f share points (%.1f%% relative)\n", a1 * 100, r1 * 100);

	hash_spread(generic_names, w532, 3, &a, &r);
	ASSERT_TRUE(a <= 0.02, "weights 50,30,20: %.2f share points", a * 100);
	printf("# hash weights 50,30,20: worst %.2f share points (%.1f%% relative)\n", a * 100,
	       r * 100);
}

struct thr_arg {
	struct lb *lb;
	unsigned seed;
	int bad;
};

/* each thread keeps up to 8 connections open at once so active really moves around */
static void *thr_main(void *p)
{
	struct thr_arg *t = p;
	int held[8];
	unsigned i, nheld = 0;

	for (i = 0; i < 100000; i++) {
		int idx = lb_pick(t->lb, all_usable, (uint64_t)t->seed * 1000003u + i);

		if (idx < 0 || (unsigned)idx >= t->lb->n) {
			t->bad++;
			continue;
		}
		lb_conn_acquire(t->lb, idx);
		if (nheld == 8) {
			lb_conn_release(t->lb, held[i % 8]);
			held[i % 8] = idx;
		} else {
			held[nheld++] = idx;
		}
		if (i % 10000 == 0)
			lb_set_weight(t->lb, t->seed % t->lb->n, 1 + i % 3);
	}
	while (nheld--)
		lb_conn_release(t->lb, held[nheld]);
	return NULL;
}

static void test_threads(void)
{
	static const uint32_t w[] = {3, 2, 1, 1};
	unsigned a, i;

	for (a = 0; a < NALGOS; a++) {
		struct thr_arg args[4];
		pthread_t th[4];
		unsigned total = 0, started;
		struct lb lb;

		if (!ASSERT_EQ(lb_init(&lb, all_algos[a], 4, w, NULL, generic_names), 0, "init"))
			continue;
		for (started = 0; started < 4; started++) {
			args[started] = (struct thr_arg){.lb = &lb, .seed = started + 1};
			if (pthread_create(&th[started], NULL, thr_main, &args[started]))
				break;
		}
		ASSERT_EQ(started, 4, "threads started");
		for (i = 0; i < started; i++) {
			pthread_join(th[i], NULL);
			ASSERT_EQ(args[i].bad, 0, "bad picks");
		}
		for (i = 0; i < 4; i++)
			total += lb.m[i].active;
		ASSERT_EQ(total, 0, lb_algo_name(all_algos[a]));
		lb_free(&lb);
	}
}

int main(void)
{
	unsigned a;

	RUN_TEST(test_algo_parse_name);
	RUN_TEST(test_init_rejects);
	RUN_TEST(test_lb_hash);
	RUN_TEST(test_distribution_all);
	RUN_TEST(test_rr_exact_cycles);
	RUN_TEST(test_rr_nginx_sequence);
	RUN_TEST(test_rr_smooth);
	RUN_TEST(test_lc_long_connections);
	RUN_TEST(test_random_load_aware);
	RUN_TEST(test_usable_mask);
	RUN_TEST(test_weight_zero_drain);
	RUN_TEST(test_backup);
	RUN_TEST(test_none_usable);
	RUN_TEST(test_conn_counting);
	RUN_TEST(test_hash_stability);
	RUN_TEST(test_hash_one_down);
	RUN_TEST(test_hash_removed);
	RUN_TEST(test_hash_distribution);
	RUN_TEST(test_threads);
	for (a = 0; a < NALGOS; a++)
		if (all_algos[a] != LB_HASH)
			printf("# %s: worst share error %.3f pp (%.2f%% relative)\n",
			       lb_algo_name(all_algos[a]), worst_abs[all_algos[a]] * 100,
			       worst_rel[all_algos[a]] * 100);
	return TEST_DONE();
}
