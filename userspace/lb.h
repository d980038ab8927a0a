/* SPDX-License-Identifier: MIT */
/*
 * lb.h - server selection for one pool, behind one ops table.
 *
 * Algorithms: smooth weighted round robin (nginx style, default), weighted least connections,
 * consistent hashing (ring with virtual nodes; key = client address or a named header) and
 * power-of-two random choices (weighted random sampling, lower load/weight wins).
 * The caller says which servers may take traffic through a `usable` array (up, not failed,
 * not excluded by a retry); weight 0 means drain and is never picked. Backup servers are
 * considered only when no primary server is usable. Thread-safe: one mutex per lb.
 */
#ifndef SPLICED_LB_H
#define SPLICED_LB_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum lb_algo {
	LB_ROUND_ROBIN = 0, /* "round_robin" */
	LB_LEAST_CONN,	    /* "least_conn" */
	LB_HASH,	    /* "hash" (source address or header: key chosen by the caller) */
	LB_RANDOM2,	    /* "random" (power of two choices) */
};

#define LB_VNODES_PER_WEIGHT 160 /* ring points per unit of weight, for the hash balancer */

struct lb_member {
	uint32_t weight;    /* configured weight; 0 = drain */
	uint8_t backup;	    /* 1: used only when no primary is usable */
	int64_t cur;	    /* smooth WRR running weight (private) */
	uint32_t active;    /* connections in flight, see lb_conn_acquire/release */
	uint64_t name_hash; /* stable identity for the hash ring (from the server name) */
};

struct lb_ring_point {
	uint64_t hash;
	uint32_t idx; /* member index */
};

struct lb;

struct lb_ops {
	const char *name;
	/* build algorithm state after members are set; 0 or -errno */
	int (*build)(struct lb *lb);
	/* pick among members whose usable[i] != 0 and weight > 0, restricted to the class
	 * (primary or backup) chosen by lb_pick; called with lb->lock held; index or -1 */
	int (*pick)(struct lb *lb, const uint8_t *usable, uint64_t key);
};

struct lb {
	enum lb_algo algo;
	const struct lb_ops *ops;
	pthread_mutex_t lock;
	unsigned n;
	struct lb_member *m;
	struct lb_ring_point *ring; /* sorted by hash; hash balancer only */
	unsigned ring_len;
	uint64_t rng; /* xorshift state; random balancer */
};

/* lb_algo_parse - "round_robin", "least_conn", "hash", "random" -> algo; 0 or -EINVAL. */
int lb_algo_parse(const char *s, enum lb_algo *out);
const char *lb_algo_name(enum lb_algo a);

/*
 * lb_init - set up a balancer for n members. weights[i], backup[i] and names[i] describe
 * member i (names give the hash ring identity, so the ring does not change when other servers
 * are added or removed). Returns 0 or -errno; on success free with lb_free().
 */
int lb_init(struct lb *lb, enum lb_algo algo, unsigned n, const uint32_t *weights,
	    const uint8_t *backup, const char *const *names);
void lb_free(struct lb *lb);

/*
 * lb_pick - choose a member. usable has n entries (nonzero = may take traffic). Primaries
 * first; backups only when no primary with weight > 0 is usable. key is the hash key for
 * LB_HASH (ignored otherwise). Returns the member index, or -1 when nothing is usable.
 */
int lb_pick(struct lb *lb, const uint8_t *usable, uint64_t key);

/* lb_set_weight - change a member's weight at run time (0 = drain). */
void lb_set_weight(struct lb *lb, unsigned idx, uint32_t weight);

/* lb_conn_acquire/release - count a connection in flight on member idx (least_conn, random). */
void lb_conn_acquire(struct lb *lb, int idx);
void lb_conn_release(struct lb *lb, int idx);

/* lb_hash - 64-bit hash (FNV-1a followed by a murmur3 finalizer) of a byte string. */
uint64_t lb_hash(const void *data, size_t len);

#endif
