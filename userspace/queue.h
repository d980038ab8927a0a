/* SPDX-License-Identifier: MIT */
/*
 * queue.h - per-server connection caps (`server ... max_conn N`) and the pool's queue
 * (`queue N timeout D`): a request that finds every usable server at its cap waits, oldest
 * first across all workers, for a slot; 503 when the queue is full or the wait runs out
 * (HAProxy's maxconn and queue). Part of the connection module (queue.c).
 *
 * A request holds a slot of its server (c->slot_srv) from the connect until its upstream is
 * released (conn_upstream_close); a released slot goes straight to the oldest waiting request
 * of the pool, whose worker is woken to run it. Pools without max_conn never take the lock.
 */
#ifndef SPLICED_QUEUE_H
#define SPLICED_QUEUE_H

#include "conn.h"

struct conn;
struct server;
struct worker;

/* queue_full - 1 when s takes no new request now: at its max_conn, or requests of its pool are
 * waiting already (they go first). A racy read for the pick; queue_take_slot() decides. */
int queue_full(const struct server *s);

/*
 * queue_take_slot - a slot of s for c: 1 when c holds one (or s has no cap, or the slot was
 * granted to c while it waited), 0 when s is full or others wait first.
 */
int queue_take_slot(struct conn *c, struct server *s);

/*
 * queue_wait - may free c: no server has a free slot: wait in the pool's queue (CS_QUEUE,
 * STEP_WAIT), or take a slot freed meanwhile (STEP_AGAIN, c->slot_srv set: connect to it), or
 * answer 503 when the queue is full (the pool's `queue` is 0 when not configured).
 */
enum step_rc queue_wait(struct conn *c);

/* queue_step - may free c: CS_QUEUE: connect once a slot was granted; a client that hung up
 * meanwhile is closed */
enum step_rc queue_step(struct conn *c);

/* queue_expired - may free c: the wait ran out (the pool's queue timeout): 503 */
enum step_rc queue_expired(struct conn *c);

/* queue_release - never frees c: leave the queue, give back c's slot (to the oldest waiting
 * request of the pool, when one can take it) */
void queue_release(struct conn *c);

/* queue_run_granted - worker thread: run the connections of w that were granted a slot */
void queue_run_granted(struct worker *w);

#endif
