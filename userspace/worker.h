/* SPDX-License-Identifier: MIT */
/*
 * worker.h - worker threads: one epoll loop each, SO_REUSEPORT listeners, timers.
 */
#ifndef SPLICED_WORKER_H
#define SPLICED_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "types.h"

struct conn;

enum ep_kind { EP_LISTEN = 1, EP_CLIENT, EP_UPSTREAM, EP_WAKE };

/* epoll user data: what the fd is and what it belongs to */
struct ep_tag {
	uint8_t kind;
	int fd;
	struct listener *l; /* EP_LISTEN */
	struct conn *c;	    /* EP_CLIENT, EP_UPSTREAM */
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
	uint8_t *usable; /* pick_server() scratch: one byte per server of the largest pool */
	uint64_t last_sweep_ms;
	volatile int stop;
};

/* process-wide state shared by workers */
extern _Atomic uint32_t g_nconns; /* client connections open, for max_connections */
extern int g_access_fd;		  /* -1: no access log */

/* worker_listen - create the listening sockets of every bind for one worker (SO_REUSEPORT).
 * Returns 0 or -errno, logging which address failed. */
int worker_listen(struct worker *w);

/* worker_start - start the thread; 0 or -errno. */
int worker_start(struct worker *w);

/* worker_stop - ask the loop to exit and join it; closes its connections and listeners. */
void worker_stop(struct worker *w);

uint64_t worker_clock_ms(void);

#endif
