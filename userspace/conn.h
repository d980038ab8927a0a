/* SPDX-License-Identifier: MIT */
/*
 * conn.h - one client connection and its upstream: the proxy state machine
 *   HEAD (read + parse request head) -> route -> pick -> CONNECT (with failover)
 *   -> EXCHANGE (request body up, response head + body down) -> HEAD again (keep-alive)
 *   or TUNNEL (101 Upgrade / CONNECT 2xx) or CLOSING (error response, lingering close).
 * The hand-off point for the kernel data path is the body relay of EXCHANGE/TUNNEL: each span
 * has an exact length known before a byte of it is moved (flow_span()).
 */
#ifndef SPLICED_CONN_H
#define SPLICED_CONN_H

#include <stdint.h>

struct worker;
struct listener;
struct conn;

/* conn_new - take ownership of an accepted client socket; registers it with the worker.
 * Returns 0, or -errno (the fd is closed either way on error). */
int conn_new(struct worker *w, struct listener *l, int fd);

/* conn_event - epoll events for the client (upstream = 0) or upstream (upstream = 1) socket. */
void conn_event(struct conn *c, uint32_t events, int upstream);

/* conn_run - make all progress possible now (used for the ready list). */
void conn_run(struct conn *c);

/* conn_timer - check the connection's deadline against w->now_ms. */
void conn_timer(struct conn *c);

/* conn_free - close both sockets and unlink; the memory is released by conn_reap() once the
 * current epoll batch is done (a later event of the batch may name this connection). */
void conn_free(struct conn *c);

/* conn_idle - a keep-alive connection waiting for its next request, nothing of it received */
int conn_idle(const struct conn *c);

/* conn_reap - release connections freed during the last batch. */
void conn_reap(struct worker *w);

/* list linkage for the worker */
struct conn *conn_next(struct conn *c);

/* conn_ready_next - the next connection on the ready list; takes c off it (c may then be run
 * and queue itself again). */
struct conn *conn_ready_next(struct conn *c);

/* conn_kpoll_next - the same for the kernel poll list. */
struct conn *conn_kpoll_next(struct conn *c);

#endif
