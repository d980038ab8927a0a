// SPDX-License-Identifier: MIT
/*
 * queue.c - per-server caps and the pool queue (see queue.h). One process-wide mutex guards
 * every pool's queue, every server's slot count and the workers' granted lists: it is only taken
 * for servers with max_conn, and held for a few pointer moves.
 *
 * A waiting request is linked in its pool's queue (Q_WAITING); a release hands the slot to the
 * head of the queue, moves it to its worker's granted list (Q_GRANTED) and wakes that worker,
 * which runs it (queue_run_granted): FIFO across workers, and a freed slot is never taken by a
 * request that arrived later.
 */
#include <pthread.h>
#include <sys/epoll.h>

#include "conn-t.h"
#include "conn.h"
#include "conn_upstream.h"
#include "health_state.h"
#include "log.h"
#include "queue.h"
#include "stats.h"
#include "worker.h"

enum { Q_NONE = 0, Q_WAITING, Q_GRANTED };

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;

int queue_full(const struct server *s)
{
	return s->max_conn &&
	       (atomic_load_explicit(&s->slots, memory_order_relaxed) >= s->max_conn ||
		atomic_load_explicit(&s->pool->queue.len, memory_order_relaxed));
}

/* caller holds queue_lock: a slot of s for c when one is free and nobody waits */
static int take_locked(struct conn *c, struct server *s)
{
	if (atomic_load(&s->slots) >= s->max_conn || atomic_load(&s->pool->queue.len))
		return 0;
	atomic_fetch_add(&s->slots, 1);
	c->slot_srv = s;
	return 1;
}

int queue_take_slot(struct conn *c, struct server *s)
{
	int ok;

	if (c->slot_srv == s)
		return 1; /* granted while it waited */
	if (c->slot_srv)
		queue_release(c);
	if (!s->max_conn)
		return 1;
	pthread_mutex_lock(&queue_lock);
	ok = take_locked(c, s);
	pthread_mutex_unlock(&queue_lock);
	return ok;
}

/* caller holds queue_lock: unlink c from the list it is in */
static void unlink_locked(struct conn *c)
{
	if (c->qstate == Q_WAITING) {
		struct pool_queue *q = &c->pool->queue;

		if (c->qprev)
			c->qprev->qnext = c->qnext;
		else
			q->head = c->qnext;
		if (c->qnext)
			c->qnext->qprev = c->qprev;
		else
			q->tail = c->qprev;
		atomic_fetch_sub(&q->len, 1);
	} else if (c->qstate == Q_GRANTED) {
		if (c->qprev)
			c->qprev->qnext = c->qnext;
		else
			c->w->qgranted = c->qnext;
		if (c->qnext)
			c->qnext->qprev = c->qprev;
	}
	c->qnext = c->qprev = NULL;
	c->qstate = Q_NONE;
}

/* caller holds queue_lock: the slot of s that a request gave up goes to the oldest waiting
 * request of the pool when s may take it; returns the worker to wake, or NULL */
static struct worker *give_locked(struct server *s)
{
	struct conn *n = s->pool->queue.head;

	if (!n || !health_server_may_answer(s)) {
		atomic_fetch_sub(&s->slots, 1);
		return NULL;
	}
	unlink_locked(n);
	n->slot_srv = s;
	n->qstate = Q_GRANTED;
	n->qprev = NULL;
	n->qnext = n->w->qgranted;
	if (n->qnext)
		n->qnext->qprev = n;
	n->w->qgranted = n;
	atomic_store(&n->w->qwake, 1);
	return n->w;
}

void queue_release(struct conn *c)
{
	struct worker *wake = NULL;

	if (!c->qstate && !c->slot_srv)
		return;
	pthread_mutex_lock(&queue_lock);
	if (c->qstate)
		unlink_locked(c);
	if (c->slot_srv) {
		wake = give_locked(c->slot_srv);
		c->slot_srv = NULL;
	}
	pthread_mutex_unlock(&queue_lock);
	if (wake && wake != c->w)
		worker_wake(wake);
}

enum step_rc queue_wait(struct conn *c)
{
	struct pool *p = c->pool;
	struct pool_queue *q = &p->queue;
	uint64_t now = c->w->now_ms;

	pthread_mutex_lock(&queue_lock);
	/* a slot freed since the pick, with nobody waiting: take it rather than wait for one
	 * that no release would announce */
	if (!q->len) {
		for (unsigned i = 0; i < p->nservers; i++) {
			struct server *s = &p->servers[i];
			int tried = 0;

			for (unsigned t = 0; t < c->ntried; t++)
				tried |= c->tried[t] == s->id;
			if (!s->max_conn || tried || !health_server_usable(s, now))
				continue;
			if (take_locked(c, s)) {
				pthread_mutex_unlock(&queue_lock);
				return conn_upstream_connect(c, s, 1);
			}
		}
	}
	if (atomic_load(&q->len) >= p->queue_max) {
		pthread_mutex_unlock(&queue_lock);
		stats_add(&p->st.queue_full, 1);
		log_debug("%s: pool %s: every server at max_conn, queue full (%u)", c->peer,
			  p->name, p->queue_max);
		return conn_fail_request(c, 503);
	}
	c->qstate = Q_WAITING;
	c->qnext = NULL;
	c->qprev = q->tail;
	if (q->tail)
		q->tail->qnext = c;
	else
		q->head = c;
	q->tail = c;
	atomic_fetch_add(&q->len, 1);
	pthread_mutex_unlock(&queue_lock);
	stats_add(&p->st.queued, 1);
	c->st = CS_QUEUE;
	conn_set_deadline(c, p->queue_timeout_ms);
	return STEP_WAIT;
}

enum step_rc queue_step(struct conn *c)
{
	struct server *s = NULL;

	pthread_mutex_lock(&queue_lock);
	if (c->qstate == Q_GRANTED) {
		unlink_locked(c);
		s = c->slot_srv;
	}
	pthread_mutex_unlock(&queue_lock);
	if (s)
		return conn_upstream_connect(c, s, 1);
	if (c->cev & (EPOLLHUP | EPOLLERR)) {
		c->term = TERM_CLIENT_CLOSED;
		conn_free(c);
		return STEP_FREED;
	}
	return STEP_WAIT;
}

enum step_rc queue_expired(struct conn *c)
{
	struct pool *p = c->pool;

	pthread_mutex_lock(&queue_lock);
	if (c->qstate == Q_GRANTED) {
		/* granted just now: the slot is used rather than wasted */
		unlink_locked(c);
		pthread_mutex_unlock(&queue_lock);
		return conn_upstream_connect(c, c->slot_srv, 1);
	}
	unlink_locked(c);
	pthread_mutex_unlock(&queue_lock);
	stats_add(&p->st.queue_timeout, 1);
	log_debug("%s: pool %s: no server slot within %u ms", c->peer, p->name,
		  p->queue_timeout_ms);
	return conn_fail_request(c, 503);
}

void queue_run_granted(struct worker *w)
{
	struct conn *c;

	if (!atomic_exchange(&w->qwake, 0))
		return;
	pthread_mutex_lock(&queue_lock);
	c = w->qgranted;
	pthread_mutex_unlock(&queue_lock);
	/* each one takes itself off the list in queue_step (under the lock); remember the next
	 * before running one: running it may queue it again */
	while (c) {
		struct conn *next;

		pthread_mutex_lock(&queue_lock);
		next = c->qnext;
		pthread_mutex_unlock(&queue_lock);
		conn_run(c);
		c = next;
	}
}
