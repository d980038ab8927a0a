// SPDX-License-Identifier: MIT
/*
 * lb.c - server selection for one pool: smooth weighted round robin, weighted least
 * connections, consistent hashing and power-of-two random choices, one ops table each.
 *
 * lb_pick owns the policy shared by every algorithm (usable mask, drain, primary/backup class)
 * and hands the algorithm a single eligibility mask, so each ops->pick only has to choose among
 * members whose mask byte is set. Everything runs under lb->lock; nothing here blocks.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lb.h"

/*
 * Upper bound on ring points. Weights are 32-bit and each unit costs LB_VNODES_PER_WEIGHT points
 * of 16 bytes, so an absurd weight would otherwise turn into a multi-gigabyte allocation.
 */
#define LB_RING_MAX_POINTS (1u << 22)

static const char *const algo_names[] = {
	[LB_ROUND_ROBIN] = "round_robin",
	[LB_LEAST_CONN] = "least_conn",
	[LB_HASH] = "hash",
	[LB_RANDOM2] = "random",
};

/* murmur3 fmix64: FNV-1a alone avalanches poorly in the high bits, which the ring search uses. */
static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

uint64_t lb_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return fmix64(h);
}

int lb_algo_parse(const char *s, enum lb_algo *out)
{
	size_t i;

	if (!s || !out)
		return -EINVAL;
	for (i = 0; i < sizeof(algo_names) / sizeof(algo_names[0]); i++) {
		if (strcmp(s, algo_names[i]) == 0) {
			*out = (enum lb_algo)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Returns "unknown" rather than NULL for an out-of-range value so it is always printable. */
const char *lb_algo_name(enum lb_algo a)
{
	if ((unsigned)a >= sizeof(algo_names) / sizeof(algo_names[0]))
		return "unknown";
	return algo_names[a];
}

/*
 * The eligibility mask lb_pick builds for ops->pick lives right after m[n] in the same
 * allocation: struct lb is a fixed ABI in lb.h, and a scratch buffer allocated per pick could
 * fail on the hot path. It is only touched under lb->lock.
 */
static uint8_t *lb_mask(struct lb *lb)
{
	return (uint8_t *)(lb->m + lb->n);
}

static void reset_cur(struct lb *lb)
{
	unsigned i;

	for (i = 0; i < lb->n; i++)
		lb->m[i].cur = 0;
}

/*
 * Smooth weighted round robin among members with sel[i] set (nginx ngx_http_upstream_get_peer):
 * every candidate gains its weight, the richest is picked and pays back the total. Over any
 * window of total-weight picks each member is chosen exactly weight times, spread evenly.
 */
static int swrr_pick(struct lb *lb, const uint8_t *sel)
{
	int64_t total = 0;
	int best = -1;
	unsigned i;

	for (i = 0; i < lb->n; i++) {
		struct lb_member *m = &lb->m[i];

		if (!sel[i])
			continue;
		m->cur += m->weight;
		total += m->weight;
		if (best < 0 || m->cur > lb->m[best].cur)
			best = (int)i;
	}
	if (best >= 0)
		lb->m[best].cur -= total;
	return best;
}

static int build_reset(struct lb *lb)
{
	reset_cur(lb);
	return 0;
}

static int rr_pick(struct lb *lb, const uint8_t *usable, uint64_t key)
{
	(void)key;
	return swrr_pick(lb, usable);
}

/* a is less loaded than b relative to weight: active_a/w_a < active_b/w_b without dividing. */
static int load_less(const struct lb_member *a, const struct lb_member *b)
{
	return (uint64_t)a->active * b->weight < (uint64_t)b->active * a->weight;
}

static int load_equal(const struct lb_member *a, const struct lb_member *b)
{
	return (uint64_t)a->active * b->weight == (uint64_t)b->active * a->weight;
}

/*
 * Least active/weight wins. Ties go through smooth WRR rather than "lowest index" so that an
 * idle pool (all zero) or short-lived connections still spread in proportion to weight.
 */
static int lc_pick(struct lb *lb, const uint8_t *usable, uint64_t key)
{
	uint8_t *tied = lb_mask(lb);
	int best = -1;
	unsigned i;

	(void)key;
	for (i = 0; i < lb->n; i++) {
		if (!usable[i])
			continue;
		if (best < 0 || load_less(&lb->m[i], &lb->m[best]))
			best = (int)i;
	}
	if (best < 0)
		return -1;
	/* usable is our own mask buffer: narrow it in place to the tied members. */
	for (i = 0; i < lb->n; i++)
		tied[i] = usable[i] && load_equal(&lb->m[i], &lb->m[best]);
	return swrr_pick(lb, tied);
}

static int ring_cmp(const void *pa, const void *pb)
{
	const struct lb_ring_point *a = pa, *b = pb;

	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	/* equal hashes (rare): order by idx so qsort's instability cannot shuffle the ring */
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/*
 * Point j of a member hashes (name_hash, j) encoded little-endian by hand, so the ring - and
 * therefore which server a client sticks to - is the same on every host and architecture.
 */
static uint64_t point_hash(uint64_t name_hash, uint32_t vnode)
{
	unsigned char buf[12];
	int i;

	for (i = 0; i < 8; i++)
		buf[i] = (unsigned char)(name_hash >> (8 * i));
	for (i = 0; i < 4; i++)
		buf[8 + i] = (unsigned char)(vnode >> (8 * i));
	return lb_hash(buf, sizeof(buf));
}

/*
 * Every member with weight > 0, primary or backup, gets weight * LB_VNODES_PER_WEIGHT points
 * derived from its name alone: adding, removing or downing a server only moves the arcs that
 * server owned. On failure the previous ring is kept (still correct except for the new weight).
 */
static int hash_build(struct lb *lb)
{
	struct lb_ring_point *ring;
	uint64_t len = 0;
	unsigned i, k = 0;
	uint32_t j;

	reset_cur(lb);
	for (i = 0; i < lb->n; i++)
		len += (uint64_t)lb->m[i].weight * LB_VNODES_PER_WEIGHT;
	if (len > LB_RING_MAX_POINTS)
		return -E2BIG;
	ring = malloc((len ? len : 1) * sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	for (i = 0; i < lb->n; i++) {
		uint32_t pts = lb->m[i].weight * LB_VNODES_PER_WEIGHT;

		for (j = 0; j < pts; j++) {
			ring[k].hash = point_hash(lb->m[i].name_hash, j);
			ring[k].idx = i;
			k++;
		}
	}
	qsort(ring, k, sizeof(*ring), ring_cmp);
	free(lb->ring);
	lb->ring = ring;
	lb->ring_len = k;
	return 0;
}

/*
 * First ring point at or after the key whose member is eligible, wrapping once. The key is run
 * through fmix64 (a bijection) first so that callers passing raw addresses or small integers
 * still land uniformly on the ring; an already hashed key loses nothing.
 */
static int hash_pick(struct lb *lb, const uint8_t *usable, uint64_t key)
{
	unsigned lo = 0, hi = lb->ring_len, i;
	uint64_t h = fmix64(key);

	if (!lb->ring_len)
		return -1;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (lb->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = 0; i < lb->ring_len; i++) {
		const struct lb_ring_point *p = &lb->ring[(lo + i) % lb->ring_len];

		if (p->idx < lb->n && usable[p->idx])
			return (int)p->idx;
	}
	return -1;
}

/* xorshift64*: good enough for load spreading, no global state, no locking of its own. */
static uint64_t rng_next(struct lb *lb)
{
	uint64_t x = lb->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	lb->rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/*
 * Weighted draw among sel[] minus `skip` (-1: none); total is their weight sum, nonzero.
 * The modulo bias is at most total / 2^64, far below anything measurable.
 */
static int weighted_draw(struct lb *lb, const uint8_t *sel, int skip, uint64_t total)
{
	uint64_t r = rng_next(lb) % total;
	int last = -1;
	unsigned i;

	for (i = 0; i < lb->n; i++) {
		if (!sel[i] || (int)i == skip)
			continue;
		last = (int)i;
		if (r < lb->m[i].weight)
			return (int)i;
		r -= lb->m[i].weight;
	}
	return last;
}

/*
 * Power of two choices: two distinct members drawn with probability proportional to weight,
 * the lower active/weight wins and a tie keeps the first draw. With equal load that makes the
 * result exactly weight-proportional; under skewed load the busier of any pair loses.
 */
static int random_pick(struct lb *lb, const uint8_t *usable, uint64_t key)
{
	uint64_t total = 0;
	unsigned i;
	int a, b;

	(void)key;
	for (i = 0; i < lb->n; i++)
		if (usable[i])
			total += lb->m[i].weight;
	if (!total)
		return -1;
	a = weighted_draw(lb, usable, -1, total);
	if (total == lb->m[a].weight)
		return a; /* the only candidate */
	b = weighted_draw(lb, usable, a, total - lb->m[a].weight);
	return load_less(&lb->m[b], &lb->m[a]) ? b : a;
}

static const struct lb_ops rr_ops = {
	.name = "round_robin",
	.build = build_reset,
	.pick = rr_pick,
};

static const struct lb_ops lc_ops = {
	.name = "least_conn",
	.build = build_reset,
	.pick = lc_pick,
};

static const struct lb_ops hash_ops = {
	.name = "hash",
	.build = hash_build,
	.pick = hash_pick,
};

static const struct lb_ops random_ops = {
	.name = "random",
	.build = build_reset,
	.pick = random_pick,
};

static const struct lb_ops *const algo_ops[] = {
	[LB_ROUND_ROBIN] = &rr_ops,
	[LB_LEAST_CONN] = &lc_ops,
	[LB_HASH] = &hash_ops,
	[LB_RANDOM2] = &random_ops,
};

/*
 * Seed differs per balancer and per run so pools do not pick in lockstep; it is never zero,
 * the one state xorshift cannot leave.
 */
static uint64_t rng_seed(const struct lb *lb)
{
	struct timespec ts = {0};
	uint64_t s;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	s = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)lb;
	s = fmix64(s ^ ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec));
	return s ? s : 0x9e3779b97f4a7c15ULL;
}

/*
 * backup may be NULL (all primary). names may be NULL, in which case the ring identity is the
 * member index, so removing a server remaps the servers after it: pass names for LB_HASH.
 * n must be 1..INT_MAX. Errors: -EINVAL (bad arguments or algo), -ENOMEM, -E2BIG (hash ring
 * would exceed LB_RING_MAX_POINTS), or the pthread_mutex_init error negated.
 */
int lb_init(struct lb *lb, enum lb_algo algo, unsigned n, const uint32_t *weights,
	    const uint8_t *backup, const char *const *names)
{
	unsigned i;
	int err;

	if (!lb || !weights || n == 0 || n > INT_MAX ||
	    (unsigned)algo >= sizeof(algo_ops) / sizeof(algo_ops[0]))
		return -EINVAL;
	memset(lb, 0, sizeof(*lb));
	lb->algo = algo;
	lb->ops = algo_ops[algo];
	lb->n = n;
	/* members followed by the n-byte eligibility mask, see lb_mask() */
	lb->m = calloc(1, n * sizeof(*lb->m) + n);
	if (!lb->m)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		lb->m[i].weight = weights[i];
		lb->m[i].backup = backup ? !!backup[i] : 0;
		if (names && names[i])
			lb->m[i].name_hash = lb_hash(names[i], strlen(names[i]));
		else
			lb->m[i].name_hash = lb_hash(&i, sizeof(i));
	}
	lb->rng = rng_seed(lb);
	err = lb->ops->build(lb);
	if (err)
		goto err_free_members;
	err = pthread_mutex_init(&lb->lock, NULL);
	if (err) {
		err = -err;
		goto err_free_ring;
	}
	return 0;

err_free_ring:
	free(lb->ring);
err_free_members:
	free(lb->m);
	memset(lb, 0, sizeof(*lb));
	return err;
}

/* Only after a successful lb_init, once, with no other thread inside the balancer. */
void lb_free(struct lb *lb)
{
	if (!lb || !lb->m)
		return;
	pthread_mutex_destroy(&lb->lock);
	free(lb->ring);
	free(lb->m);
	memset(lb, 0, sizeof(*lb));
}

/*
 * The class decision is made once here rather than in each algorithm: a primary with
 * weight 0 (draining) does not count as usable, so draining every primary fails over to the
 * backups instead of returning -1. usable may be NULL to mean "all usable".
 */
int lb_pick(struct lb *lb, const uint8_t *usable, uint64_t key)
{
	uint8_t *mask;
	uint8_t cls = 1;
	int any = 0, idx;
	unsigned i;

	if (!lb || !lb->m)
		return -1;
	pthread_mutex_lock(&lb->lock);
	mask = lb_mask(lb);
	for (i = 0; i < lb->n; i++) {
		mask[i] = (!usable || usable[i]) && lb->m[i].weight > 0;
		if (mask[i] && !lb->m[i].backup)
			cls = 0;
	}
	for (i = 0; i < lb->n; i++) {
		mask[i] = mask[i] && lb->m[i].backup == cls;
		any |= mask[i];
	}
	idx = any ? lb->ops->pick(lb, mask, key) : -1;
	pthread_mutex_unlock(&lb->lock);
	return idx;
}

/*
 * Rebuilds algorithm state so the new weight takes effect at once: the hash ring gains or loses
 * the member's points, and the WRR credits restart from zero so a member coming back from drain
 * does not carry a stale debt. Out-of-range idx is ignored.
 */
void lb_set_weight(struct lb *lb, unsigned idx, uint32_t weight)
{
	if (!lb || !lb->m || idx >= lb->n)
		return;
	pthread_mutex_lock(&lb->lock);
	if (lb->m[idx].weight != weight) {
		lb->m[idx].weight = weight;
		/* on failure the old ring stays: consistent, only the new weight is ignored */
		(void)lb->ops->build(lb);
	}
	pthread_mutex_unlock(&lb->lock);
}

void lb_conn_acquire(struct lb *lb, int idx)
{
	if (!lb || !lb->m || idx < 0 || (unsigned)idx >= lb->n)
		return;
	pthread_mutex_lock(&lb->lock);
	if (lb->m[idx].active < UINT32_MAX)
		lb->m[idx].active++;
	pthread_mutex_unlock(&lb->lock);
}

/* Never goes below 0, so a double release after an error path cannot wrap the counter. */
void lb_conn_release(struct lb *lb, int idx)
{
	if (!lb || !lb->m || idx < 0 || (unsigned)idx >= lb->n)
		return;
	pthread_mutex_lock(&lb->lock);
	if (lb->m[idx].active > 0)
		lb->m[idx].active--;
	pthread_mutex_unlock(&lb->lock);
}
