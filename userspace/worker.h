/* SPDX-License-Identifier: MIT */
/*
 * worker.h - worker threads: one epoll loop each, SO_REUSEPORT listeners, timers.
 */
#ifndef SPLICED_WORKER_H
#define SPLICED_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "spare.h"
#include "types.h"

struct conn;
struct idle_upstream;
struct http_msg;

enum ep_kind { EP_LISTEN = 1, EP_CLIENT, EP_UPSTREAM, EP_WAKE, EP_DEAD };

/* epoll user data: what the fd is and what it belongs to */
struct ep_tag {
	uint8_t kind;
	int fd;
	struct listener *l; /* EP_LISTEN */
	uint8_t reused;	    /* EP_LISTEN: socket carried over from the previous configuration */
	uint8_t starved;    /* EP_LISTEN: accept ran out of descriptors or memory (retried) */
	uint8_t full;	    /* EP_LISTEN: clients wait at max_connections (retried) */
	uint16_t bind;	    /* EP_LISTEN: index in l->binds */
	struct conn *c;	    /* EP_CLIENT, EP_UPSTREAM (NULL: a parked upstream connection) */
	struct ep_tag *dead_next; /* EP_UPSTREAM: freed after the event batch */
};

struct worker {
	unsigned id;
	pthread_t thread;
	int epfd;
	int wakefd;
	struct ep_tag wake_tag;
	struct config *cf;
	const struct options *opt;
	struct ep_tag *ltags; /* one per (listener, bind) */
	unsigned nltags;
	uint64_t now_ms;
	struct conn *conns;	    /* every connection of this worker (doubly linked) */
	pthread_mutex_t conns_lock; /* linking/unlinking conns (the owner reads them without it);
				     * held by readers on other threads (conn_snapshot) */
	struct conn *ready;	    /* connections to run again without an event (fairness) */
	struct conn *graveyard;	    /* freed during this batch, released after it */
	struct conn *kpoll;	    /* waiting on the kernel data path: run again in 1 ms */
	uint8_t *usable;    /* pick_server() scratch: one byte per server of the largest pool */
	struct spare spare; /* spare buffers and pipes of the connections (spare.h) */
	struct http_msg *head_msg; /* where request heads are parsed while they arrive */
	unsigned nfull;		   /* listening sockets with t->full set */
	struct idle_upstream
		*idle;		  /* parked upstream connections, oldest first (upstream_idle.c) */
	struct ep_tag *dead_tags; /* upstream tags to free after the event batch */
	/* connections granted a server slot by another thread (queue.c, under its lock), and
	 * the flag that says the list is worth a look */
	struct conn *qgranted;
	_Atomic int qwake;
	unsigned nidle, idle_cap;
	uint64_t last_sweep_ms;
	volatile int stop;
	/* reload: the main thread prepares the next listener set (worker_swap_prepare), posts it
	 * with the new configuration, and the worker swaps both at the top of its loop */
	struct ep_tag *next_ltags;
	unsigned next_nltags;
	struct config *_Atomic next_cf;
	_Atomic int swapped;
	_Atomic int draining; /* graceful stop: no keep-alive, listeners closed */
	int drain_started;    /* worker thread: drain_begin() ran */
	/* live upgrade, old process: WORKER_HO_* set by the main thread (worker_handover);
	 * ho_phase is what the worker did about it last */
	_Atomic int handover;
	int ho_phase;
	/* live upgrade hand-over queues, filled and drained by the main thread (upgrade.c) under
	 * ho_lock: old process, the connections this worker detached (ho_out, oldest first; each
	 * one written to ho_notify); new process, the connections it is to adopt (adopt_q) */
	pthread_mutex_t ho_lock;
	struct handover_item *ho_out, **ho_out_tail;
	int ho_notify;
	struct handover_item *adopt_q;
};

/* client connections open in this process (max_connections; accepted and adopted ones count
 * until conn.c frees or hands them over) */
extern _Atomic uint32_t g_nconns;

enum {
	WORKER_HO_NONE = 0,
	WORKER_HO_HAND,	 /* pause listeners, hold connections, hand each one over when quiet */
	WORKER_HO_ABORT, /* the new process failed: listen again, release the held */
	WORKER_HO_DRAIN, /* upgrade timeout: what is left finishes here (drain) */
};

/* worker_listen_one - a listening socket for b (SO_REUSEPORT); fd or -errno */
int worker_listen_one(const struct bind_addr *b);

/* worker_listen - create the listening sockets of every bind for one worker (SO_REUSEPORT).
 * Returns 0 or -errno, logging which address failed. */
int worker_listen(struct worker *w);

/* worker_start - start the thread; 0 or -errno. */
int worker_start(struct worker *w);

/* worker_stop - ask the loop to exit and join it; closes its connections and listeners. */
void worker_stop(struct worker *w);

/* worker_swap_prepare - build w's listening sockets for ncf, reusing the worker's current socket
 * for every address that stays (so no queued connection is lost). Main thread; 0 or -errno
 * (nothing changed). */
int worker_swap_prepare(struct worker *w, struct config *ncf, FILE *errf);
/* worker_swap_abort - undo worker_swap_prepare (closes only the sockets it created). */
void worker_swap_abort(struct worker *w);
/* worker_swap_post - hand the prepared set and ncf to the worker; worker_swap_wait - wait until
 * it runs on them (the old configuration is then no longer the worker's). */
void worker_swap_post(struct worker *w, struct config *ncf);
void worker_swap_wait(struct worker *w);
/*
 * worker_close_watched - close a socket that is registered with the worker's epoll. Closing
 * the last reference drops the registration by itself, so no EPOLL_CTL_DEL is needed, except
 * while another process may hold a copy of the fd: between the fork and the exec of a live
 * upgrade (worker_fork_begin/_end) the child has every fd, the socket would stay open there and
 * keep raising events for a connection that is gone. Then the registration is removed first.
 */
void worker_close_watched(int epfd, int fd);
/* the main thread around the fork of a live upgrade: begin before fork(), end once the child
 * has executed its binary (its first message) or is gone */
void worker_fork_begin(void);
void worker_fork_end(void);

/*
 * Upstream sockets carry their own epoll tag (heap), so that a connection can be parked and
 * taken again without any epoll_ctl: the tag's owner changes, the registration stays.
 * worker_utag_new - a tag for a new upstream socket (registered by the caller), or NULL.
 * worker_utag_close - close the socket (worker_close_watched) and free the tag after the batch.
 * worker_utag_drop - free the tag after the batch; the socket is the caller's (handed over).
 */
struct ep_tag *worker_utag_new(int fd, struct conn *c);
void worker_utag_close(struct worker *w, struct ep_tag *t);
void worker_utag_drop(struct worker *w, struct ep_tag *t);
/* worker_reap_tags - free the tags dropped during the batch (after conn_reap) */
void worker_reap_tags(struct worker *w);

/*
 * Live upgrade: the worker side of the hand-over, driven by the main thread (upgrade.c).
 * worker_handover - old process: move w to phase WORKER_HO_*; while it hands over, every
 * connection it detaches is queued for worker_handed_take and notify_fd (an eventfd) written.
 * worker_handed_take - old process: the connections w detached since the last call, oldest
 * first, or NULL; the caller owns them (records and sockets).
 * worker_adopt_push - new process: give w a connection received from the old process to adopt
 * on its thread; w owns it from here (it logs and closes it when it cannot be adopted).
 */
void worker_handover(struct worker *w, int phase, int notify_fd);
struct handover_item *worker_handed_take(struct worker *w);
void worker_adopt_push(struct worker *w, struct handover_item *it);

/* worker_wake - interrupt the worker's epoll_wait. */
void worker_wake(struct worker *w);

#endif
