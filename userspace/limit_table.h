/* SPDX-License-Identifier: MIT */
/*
 * limit_table.h - the table of per-client limit states (`limit conn`, `limit rate`) that every
 * worker shares: one entry per (limit, client key), found by a 64-bit hash of both, bounded
 * (limit_table_size entries, allocated once at start), the least recently used entry evicted
 * when a new key needs room. Shards with a mutex each keep workers apart. Core layer: no I/O.
 *
 * Memory: sizeof(struct limit_entry) (48 bytes) plus 4 bytes of hash bucket per entry, so the
 * default 65536 entries take about 3.3 MiB. An evicted entry forgets its client: a key that
 * comes back starts with a full bucket and no connections counted, and the connections of an
 * evicted key that close later are not subtracted from anyone (a generation number says so).
 */
#ifndef SPLICED_LIMIT_TABLE_H
#define SPLICED_LIMIT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define LIMIT_TABLE_DEFAULT 65536

struct limit_entry {
	uint64_t key;
	uint64_t tokens;	    /* limit rate: millionths of a request */
	uint64_t last_us;	    /* limit rate: last refill */
	uint32_t conns;		    /* limit conn: held now */
	uint32_t gen;		    /* bumped when the entry is given to another key */
	uint32_t prev, next, hnext; /* LRU list and hash chain (indexes + 1; 0: none) */
	uint32_t pad;
};

/* a held connection slot (limit conn), to give back with limit_conn_put */
struct limit_ref {
	uint32_t idx; /* entry index + 1; 0: nothing held */
	uint32_t gen;
	uint16_t shard;
};

/* limit_table_init - allocate room for entries (at least 1024) once; 0 or -ENOMEM. A second
 * call keeps the first size (a reload cannot resize it). */
int limit_table_init(uint32_t entries);
void limit_table_free(void);

/* limit_key - the entry key of a limit (scope: which limit) for a client key value */
uint64_t limit_key(uint64_t scope, const void *val, size_t len);

/* limit_conn_take - one more connection (or request in flight) for key, if fewer than max are
 * held: 1 and *ref filled, or 0 (over the limit, nothing held) */
int limit_conn_take(uint64_t key, uint32_t max, struct limit_ref *ref);
/* limit_conn_put - give back what ref holds (nothing when its entry was evicted meanwhile) */
void limit_conn_put(struct limit_ref *ref);

/*
 * limit_rate_take - a token bucket of burst requests refilled with rate requests per period_s
 * seconds: 1 when key may make one more request now (a token taken), else 0 with *retry_s the
 * seconds until a token is there (at least 1).
 */
int limit_rate_take(uint64_t key, uint32_t rate, uint32_t period_s, uint32_t burst, uint64_t now_us,
		    uint32_t *retry_s);

/* limit_table_stats - entries in use, capacity, evictions so far */
void limit_table_stats(uint64_t *used, uint64_t *cap, uint64_t *evictions);

#endif
