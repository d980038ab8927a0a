/* SPDX-License-Identifier: MIT */
/*
 * upstream_idle.h - parked upstream connections (pool `keepalive`): an idle connection to a
 * server, kept by its worker for the next request to the same server, the way nginx keeps its
 * upstream keepalive module apart from the upstream core. conn.c parks and takes them; the
 * worker passes on the events of parked sockets and expires them on its sweep. Worker thread
 * only: each worker has its own parked connections (struct worker: idle, nidle, idle_cap).
 */
#ifndef SPLICED_UPSTREAM_IDLE_H
#define SPLICED_UPSTREAM_IDLE_H

#include <stdint.h>

#include "worker.h"

/* an idle upstream connection kept for the next request to the same server (pool keepalive) */
struct idle_upstream {
	struct ep_tag *tag;	/* the socket stays registered with epoll while parked */
	uint64_t read, written; /* bytes read from / written into it since connect: the kernel
				 * path's offsets and drain checks compare them with tcp_info */
	uint32_t server_id;
	uint64_t until_ms;
};

/* upstream_idle_put - park an idle upstream connection (its tag now belongs to the worker, its
 * owner is cleared); 0, or -1 when the server already has max parked (the caller closes it) */
int upstream_idle_put(struct worker *w, struct ep_tag *t, uint32_t server_id, unsigned max,
		      uint64_t until_ms, uint64_t read, uint64_t written);
/* upstream_idle_take - the most recently parked connection to the server, or NULL. A parked
 * socket that showed data or EOF was closed by upstream_idle_event, so what is here is silent. */
struct ep_tag *upstream_idle_take(struct worker *w, uint32_t server_id, uint64_t *read,
				  uint64_t *written);
/* upstream_idle_event - an event on a parked socket: anything but writability means the server
 * closed it (or broke protocol): close it */
void upstream_idle_event(struct worker *w, struct ep_tag *t, uint32_t events);
/* upstream_idle_flush - close parked connections (all, or only expired ones). */
void upstream_idle_flush(struct worker *w, int all);

#endif
