/* SPDX-License-Identifier: MIT */
/*
 * conn.h - one client connection and its upstream: the proxy state machine
 *   HEAD (read + parse request head) -> route -> pick -> CONNECT (with failover)
 *   -> EXCHANGE (request body up, response head + body down) -> HEAD again (keep-alive)
 *   or TUNNEL (101 Upgrade / CONNECT 2xx) or CLOSING (error response, lingering close).
 * The hand-off point for the kernel data path is the body relay of EXCHANGE/TUNNEL: each span
 * has an exact length known before a byte of it is moved (flow_span()).
 *
 * The connection module is conn.c (lifecycle, the steps, retries, timers, generated
 * responses, access log) and the files it calls: conn_head.c (request and response heads),
 * conn_upstream.c (the upstream socket), flow.c (body relay), transport.c (socket I/O),
 * kernel_path.c (the kernel data path's hand-off rules), conn_handover.c (live upgrade),
 * conn_show.c (`show connections`). The first part of this header is what the rest of the
 * daemon calls; the last part is shared by those files only.
 */
#ifndef SPLICED_CONN_H
#define SPLICED_CONN_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "types.h"
#include "http.h"

struct worker;
struct listener;
struct conn;
struct buf;

/* conn_new - take ownership of an accepted client socket; registers it with the worker.
 * peer: the address accept() returned (NULL: looked up). Returns 0, or -errno (the fd is closed
 * either way on error). */
int conn_new(struct worker *w, struct listener *l, int fd, const struct sockaddr_storage *peer,
	     socklen_t peerlen);

/* conn_event - may free c: epoll events for the client (upstream = 0) or upstream
 * (upstream = 1) socket. A freed connection is dead (c->dead): its memory lasts until
 * conn_reap, and every later call on it returns at once. */
void conn_event(struct conn *c, uint32_t events, int upstream);

/* conn_run - may free c: make all progress possible now (used for the ready list). */
void conn_run(struct conn *c);

/* conn_timer - may free c: check the connection's deadline against w->now_ms. */
void conn_timer(struct conn *c);

/* conn_free - frees c: close both sockets and unlink; the memory is released by conn_reap()
 * once the current epoll batch is done (a later event of the batch may name this connection). */
void conn_free(struct conn *c);

/* conn_idle - a keep-alive connection waiting for its next request, nothing of it received */
int conn_idle(const struct conn *c);

/*
 * conn_reclaim - frees up to n of w's connections: at max_connections with clients waiting in
 * the listen queue, close the connections slowest to send a request head to admit them: idle
 * keep-alive connections first (the longest idle first), then incomplete heads (a TLS
 * handshake counts as one; a connection that sent nothing yet too), the oldest first.
 * Connections in an exchange, a tunnel or closing are never taken. Returns how many closed.
 */
unsigned conn_reclaim(struct worker *w, unsigned n);

/* conn_reap - frees the memory of the connections freed during the last batch. */
void conn_reap(struct worker *w);

/* list linkage for the worker */
struct conn *conn_next(struct conn *c);

/* conn_ready_next - the next connection on the ready list; takes c off it (c may then be run
 * and queue itself again). */
struct conn *conn_ready_next(struct conn *c);

/* conn_kpoll_next - the same for the kernel poll list. */
struct conn *conn_kpoll_next(struct conn *c);

/* one live connection as `show connections` reports it (a snapshot, see conn_snapshot) */
struct conn_info {
	unsigned worker;
	char listener[NAME_MAX_LEN];
	char client[INET6_ADDRSTRLEN + 8];   /* address:port */
	char upstream[INET6_ADDRSTRLEN + 8]; /* address:port, "" when not connected */
	char pool[NAME_MAX_LEN];	     /* "" before routing */
	char server[NAME_MAX_LEN];
	const char *state; /* "head", "exchange", "tunnel", ... (static strings) */
	const char *path;  /* "kernel", "splice", "userspace" or "tls" */
	uint64_t start_ns; /* CLOCK_REALTIME */
	uint64_t cookie;   /* client socket cookie in the BPF maps; 0: never inserted */
	unsigned requests;
	uint64_t user_up, user_down; /* bytes the daemon moved (client -> server, back) */
	uint64_t kern_up, kern_down; /* bytes the BPF verdict redirected */
};

/*
 * conn_snapshot - copy what `show connections` needs of w's connections into out (at most max
 * entries). Any thread: it holds w->conns_lock (which conn_new/conn_free take to link and unlink)
 * while it walks the list, so no connection is released under it; the fields themselves are
 * read while the worker runs, so a value may be one event old (word-sized loads, never torn).
 * Returns the number of connections w has (may exceed max: then only max were copied).
 */
unsigned conn_snapshot(struct worker *w, struct conn_info *out, unsigned max);

/*
 * Live upgrade (upgrade.c): a connection at a hand-over point travels to the next process as
 * this record plus its sockets (SCM_RIGHTS). Hand-over points: a keep-alive connection waiting
 * for its next request, a tunnel, or a response body being relayed after the whole request went
 * up; in each case with nothing buffered in the daemon (buffers and pipes empty) and no TLS.
 * Sockets in the kernel data path keep their slot: the maps are shared by both processes.
 */
#define CONN_HANDOVER_MAGIC 0x53504c33u /* "SPL3": bump when the record changes */

struct conn_handover_side {
	uint32_t slot; /* 0: not in the maps */
	uint32_t in_map;
	uint64_t cookie;
	uint64_t read, written, base, kern_base, kern_in_closed, verified;
	uint32_t syn_adj;
	uint32_t paired;
};

struct conn_handover_flow {
	uint32_t body; /* enum body */
	uint8_t body_done, src_eof, dst_shut, kernel_span;
	uint8_t chunk_out, pad[7];
	uint64_t left, moved, kern_seen, kern_moved;
	struct http_chunked ch;
};

struct conn_handover {
	uint32_t magic;
	uint32_t size; /* sizeof(struct conn_handover) */
	uint32_t st;   /* CS_HEAD, CS_EXCHANGE or CS_TUNNEL */
	uint32_t has_upstream;
	char listener[64], pool[64], server[64];
	struct conn_handover_side client, upstream;
	struct conn_handover_flow req, resp;
	uint64_t start_ns, t_start_ms, tunnel_kern, bytes_in, bytes_out, deadline_left_ms;
	uint32_t requests, peer_port;
	int32_t status, method, version_minor;
	uint8_t kernel_ok, kernel_failed, req_keepalive, resp_keepalive, upgrade, resp_started,
		head_seen;
	char peer[48];
	char host[128], path[256], method_s[16];
};

/* one connection on its way to the next process: the record and its sockets */
struct handover_item {
	struct conn_handover rec;
	int cfd, ufd; /* ufd: -1 when none */
	struct handover_item *next;
};

/* conn_handable - at a hand-over point now. */
int conn_handable(const struct conn *c);
/* conn_hold - 1: stop reading so the connection reaches a hand-over point (buffers drain);
 * 0: carry on (the upgrade gave up on it). Returns whether it can ever be handed over. */
int conn_hold(struct conn *c, int on);
/* conn_detach - frees c: fill rec, give up the sockets (*cfd, *ufd; -1 when none) and forget
 * the connection here without closing anything the next process needs. The connection still
 * counts in g_nconns: the caller releases it once rec is queued, so that no count of zero is
 * seen while a record waits to be queued (upgrade.c ends the hand-over at zero). */
void conn_detach(struct conn *c, struct conn_handover *rec, int *cfd, int *ufd);
/* conn_adopt - the next process: a connection from rec and its sockets; 0 or -errno (the
 * sockets are closed on error). */
int conn_adopt(struct worker *w, const struct conn_handover *rec, int cfd, int ufd);

/* ---- between the files of the connection module (conn-t.h holds their types) ---- */

/*
 * What one step of the state machine tells conn_run: the step_* functions, and every function
 * that ends a step (conn_fail_request, conn_start_exchange, conn_upstream_connect, ...).
 */
enum step_rc {
	STEP_FREED = -1, /* the connection was freed (conn_free): touch nothing of it again */
	STEP_WAIT = 0,	 /* nothing more to do until an event, the deadline or the kernel poll */
	STEP_AGAIN = 1,	 /* progress, or a new state: run the state machine again */
};

/* conn_fail_request - may free c: answer status with a small generated response and close
 * after it (STEP_AGAIN), or close at once when part of a response went out (STEP_FREED) */
enum step_rc conn_fail_request(struct conn *c, int status);

/* conn_start_exchange - may free c: the upstream is connected (or reused): queue the request
 * head and start the exchange */
enum step_rc conn_start_exchange(struct conn *c);

/* conn_retryable - 1 when the request may go to another server after a failure */
int conn_retryable(const struct conn *c);

/* conn_retry_or_fail - may free c: the upstream answered nothing (why, for the log): send the
 * request again where that is safe (a reused connection: the same server on a new one; else
 * another server, up to the pool's retries), else answer status */
enum step_rc conn_retry_or_fail(struct conn *c, int status, const char *why);

/* conn_exchange_timeout - the inactivity allowed now in CS_EXCHANGE (ms) */
uint32_t conn_exchange_timeout(struct conn *c);

/* conn_config_follow - after a reload, move c to the current configuration at a request
 * boundary; 0, or -1 when its listener is gone (c must close after this request) */
int conn_config_follow(struct conn *c);

/* conn_queue - run c again after the other ready connections (fairness, or a look after an
 * edge consumed while it held) */
void conn_queue(struct conn *c);

/* conn_hold_phase - 1 when c is in a phase it can be handed over in, once nothing is buffered
 * (conn_handover.c) */
int conn_hold_phase(const struct conn *c);

/* conn_create - a connection for an accepted (adopt = 0) or handed-over (adopt = 1) client
 * socket, linked and registered with the worker; NULL on failure (fd is closed) */
struct conn *conn_create(struct worker *w, struct listener *l, int fd,
			 const struct sockaddr_storage *peer, socklen_t peerlen, int adopt);

/* conn_unlink - frees c (its memory goes to the graveyard, released by conn_reap): off every
 * list of the worker; the sockets are the caller's business */
void conn_unlink(struct conn *c);

/* conn_state_name - "head", "exchange", ... for logs and `show connections` ("?": unknown) */
const char *conn_state_name(int st);

/* conn_set_deadline - the connection's timer fires ms from now */
void conn_set_deadline(struct conn *c, uint32_t ms);

/*
 * The memory of a connection by phase (conn_mem.c). The functions returning int return 0 or
 * -ENOMEM (the caller closes the connection); what they allocated stays with c either way and
 * goes back with conn_mem_free.
 * conn_mem_head - a head buffer (req.in, CONN_HEAD_MIN bytes) when c holds none.
 * conn_mem_grow - b is full: twice its size up to buffer_size (the last step takes a pooled
 *   buffer), bytes kept; -ENOSPC when it is at buffer_size already.
 * conn_mem_full - b at buffer_size (taken from the worker's spare pool; bytes kept).
 * conn_mem_exchange - what an exchange uses: msg, rmsg (zeroed when new), req_head and the
 *   body buffers.
 * conn_mem_idle - between requests: the heads freed, every empty buffer and pipe given back
 *   (a buffer or pipe still holding bytes stays).
 * conn_mem_head_idle - a head buffer that stayed empty goes back (nothing arrived).
 * conn_mem_free - everything goes back (the connection is released).
 */
int conn_mem_head(struct conn *c);
int conn_mem_grow(struct conn *c, struct buf *b);
int conn_mem_full(struct conn *c, struct buf *b);
int conn_mem_exchange(struct conn *c);
void conn_mem_idle(struct conn *c);
void conn_mem_head_idle(struct conn *c);
void conn_mem_free(struct conn *c);

#endif
