// SPDX-License-Identifier: MIT
/*
 * limit_table.c - the shared table of limit states (see limit_table.h). Entries live in
 * LIMIT_SHARDS arrays, each with its own lock, hash buckets, LRU list and free list; a key's
 * shard is fixed by its hash, so a client's states never move between locks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "limit_table.h"

#define LIMIT_SHARDS 16
#define TOKEN 1000000ull /* a request in the bucket's units */

struct shard {
	pthread_mutex_t lock;
	struct limit_entry *e;
	uint32_t cap, used;
	uint32_t *bucket;	     /* cap buckets: first entry index + 1 */
	uint32_t lru_head, lru_tail; /* most recently used first */
	uint32_t free_head;
	uint64_t evictions;
};

static struct shard shards[LIMIT_SHARDS];
static _Atomic int ready;

_Static_assert(sizeof(struct limit_entry) == 48, "limit_entry size is documented");

int limit_table_init(uint32_t entries)
{
	uint32_t per;

	if (atomic_load(&ready))
		return 0;
	if (entries < 1024)
		entries = 1024;
	per = entries / LIMIT_SHARDS;
	for (unsigned s = 0; s < LIMIT_SHARDS; s++) {
		struct shard *sh = &shards[s];

		pthread_mutex_init(&sh->lock, NULL);
		sh->e = calloc(per, sizeof(*sh->e));
		sh->bucket = calloc(per, sizeof(*sh->bucket));
		if (!sh->e || !sh->bucket) {
			limit_table_free();
			return -ENOMEM;
		}
		sh->cap = per;
		/* every entry starts on the free list, chained through next */
		for (uint32_t i = 0; i < per; i++)
			sh->e[i].next = i + 2 <= per ? i + 2 : 0;
		sh->free_head = 1;
	}
	atomic_store(&ready, 1);
	return 0;
}

void limit_table_free(void)
{
	for (unsigned s = 0; s < LIMIT_SHARDS; s++) {
		free(shards[s].e);
		free(shards[s].bucket);
		memset(&shards[s], 0, sizeof(shards[s]));
	}
	atomic_store(&ready, 0);
}

/* FNV-1a, then a final mix: the scope and the value */
uint64_t limit_key(uint64_t scope, const void *val, size_t len)
{
	const unsigned char *p = val;
	uint64_t h = 1469598103934665603ull ^ scope;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

static struct limit_entry *E(struct shard *sh, uint32_t i)
{
	return &sh->e[i - 1];
}

static void lru_unlink(struct shard *sh, uint32_t i)
{
	struct limit_entry *x = E(sh, i);

	if (x->prev)
		E(sh, x->prev)->next = x->next;
	else
		sh->lru_head = x->next;
	if (x->next)
		E(sh, x->next)->prev = x->prev;
	else
		sh->lru_tail = x->prev;
	x->prev = x->next = 0;
}

static void lru_front(struct shard *sh, uint32_t i)
{
	struct limit_entry *x = E(sh, i);

	x->prev = 0;
	x->next = sh->lru_head;
	if (sh->lru_head)
		E(sh, sh->lru_head)->prev = i;
	sh->lru_head = i;
	if (!sh->lru_tail)
		sh->lru_tail = i;
}

static void hash_unlink(struct shard *sh, uint32_t i)
{
	uint32_t *pp = &sh->bucket[E(sh, i)->key % sh->cap];

	while (*pp && *pp != i)
		pp = &E(sh, *pp)->hnext;
	if (*pp)
		*pp = E(sh, i)->hnext;
}

/* the entry of key, made (a fresh one, or the least recently used one reused) when missing;
 * *fresh says which. Under sh->lock. */
static uint32_t entry_of(struct shard *sh, uint64_t key, int *fresh)
{
	uint32_t b = (uint32_t)(key % sh->cap), i;

	for (i = sh->bucket[b]; i; i = E(sh, i)->hnext) {
		if (E(sh, i)->key == key) {
			lru_unlink(sh, i);
			lru_front(sh, i);
			*fresh = 0;
			return i;
		}
	}
	if (sh->free_head) {
		i = sh->free_head;
		sh->free_head = E(sh, i)->next;
		sh->used++;
	} else {
		/* full: the least recently used entry, preferably one holding no connection */
		uint32_t k = sh->lru_tail;

		for (int n = 0; k && n < 8 && E(sh, k)->conns; n++)
			k = E(sh, k)->prev;
		i = k ? k : sh->lru_tail;
		lru_unlink(sh, i);
		hash_unlink(sh, i);
		sh->evictions++;
	}
	{
		struct limit_entry *x = E(sh, i);
		uint32_t gen = x->gen + 1;

		memset(x, 0, sizeof(*x));
		x->key = key;
		x->gen = gen;
		x->hnext = sh->bucket[b];
		sh->bucket[b] = i;
	}
	lru_front(sh, i);
	*fresh = 1;
	return i;
}

int limit_conn_take(uint64_t key, uint32_t max, struct limit_ref *ref)
{
	unsigned s = (unsigned)(key >> 60) % LIMIT_SHARDS;
	struct shard *sh = &shards[s];
	int fresh, ok = 0;
	uint32_t i;

	ref->idx = 0;
	if (!atomic_load_explicit(&ready, memory_order_acquire))
		return 1;
	pthread_mutex_lock(&sh->lock);
	i = entry_of(sh, key, &fresh);
	if (E(sh, i)->conns < max) {
		E(sh, i)->conns++;
		ref->idx = i;
		ref->gen = E(sh, i)->gen;
		ref->shard = (uint16_t)s;
		ok = 1;
	}
	pthread_mutex_unlock(&sh->lock);
	return ok;
}

void limit_conn_put(struct limit_ref *ref)
{
	struct shard *sh;

	if (!ref->idx || !atomic_load_explicit(&ready, memory_order_acquire))
		return;
	sh = &shards[ref->shard];
	pthread_mutex_lock(&sh->lock);
	if (E(sh, ref->idx)->gen == ref->gen && E(sh, ref->idx)->conns)
		E(sh, ref->idx)->conns--;
	pthread_mutex_unlock(&sh->lock);
	ref->idx = 0;
}

int limit_rate_take(uint64_t key, uint32_t rate, uint32_t period_s, uint32_t burst, uint64_t now_us,
		    uint32_t *retry_s)
{
	struct shard *sh = &shards[(key >> 60) % LIMIT_SHARDS];
	uint64_t cap = (uint64_t)burst * TOKEN;
	struct limit_entry *x;
	int fresh, ok;

	*retry_s = 0;
	if (!atomic_load_explicit(&ready, memory_order_acquire) || !rate || !period_s)
		return 1;
	pthread_mutex_lock(&sh->lock);
	x = E(sh, entry_of(sh, key, &fresh));
	if (fresh) {
		x->tokens = cap;
	} else if (now_us > x->last_us) {
		/* rate requests per period_s seconds: rate / period_s units per microsecond */
		uint64_t add = (now_us - x->last_us) * rate / period_s;

		x->tokens = add >= cap - x->tokens ? cap : x->tokens + add;
	}
	x->last_us = now_us;
	ok = x->tokens >= TOKEN;
	if (ok) {
		x->tokens -= TOKEN;
	} else {
		uint64_t need = TOKEN - x->tokens; /* units, refilled rate / period_s per us */
		uint64_t us = (need * period_s + rate - 1) / rate;

		*retry_s = (uint32_t)((us + 999999) / 1000000);
		if (!*retry_s)
			*retry_s = 1;
	}
	pthread_mutex_unlock(&sh->lock);
	return ok;
}

void limit_table_stats(uint64_t *used, uint64_t *cap, uint64_t *evictions)
{
	*used = *cap = *evictions = 0;
	for (unsigned s = 0; s < LIMIT_SHARDS; s++) {
		pthread_mutex_lock(&shards[s].lock);
		*used += shards[s].used;
		*cap += shards[s].cap;
		*evictions += shards[s].evictions;
		pthread_mutex_unlock(&shards[s].lock);
	}
}
