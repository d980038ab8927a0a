/* SPDX-License-Identifier: MIT */
/*
 * conn-t.h - the types of one client connection, shared by the files of the connection module
 * (conn.c and the files it was split into); conn.h holds the functions. Nothing outside the
 * connection module includes this file: the rest of the daemon sees struct conn as opaque.
 */
#ifndef SPLICED_CONN_T_H
#define SPLICED_CONN_T_H

#include <netinet/in.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "limit_table.h"
#include "splice.h"
#include "types.h"
#include "worker.h"

struct transport_ops;

#define MAX_TRIES 101
#define RUN_BUDGET (8u << 20) /* bytes moved per conn_run before yielding to others */
#define CONN_HEAD_MIN 1024    /* first size of a head buffer (doubled as a head grows) */

enum conn_state {
	CS_HEAD,
	CS_CONNECT,
	CS_EXCHANGE,
	CS_TUNNEL,
	CS_CLOSING,
	CS_HANDSHAKE,	/* TLS with the client */
	CS_UPHANDSHAKE, /* TLS with the upstream */
	CS_QUEUE	/* waiting for a server slot (queue.c) */
};
enum body { B_NONE, B_LENGTH, B_CHUNKED, B_EOF, B_TUNNEL };

/* why a request ended before its exchange completed (access log `term=`, see docs/CONFIG.md) */
enum conn_term {
	TERM_NONE,	     /* completed, or answered by spliced (the status says why) */
	TERM_ABORTED,	     /* closed for another reason */
	TERM_CLIENT_CLOSED,  /* the client closed or reset before the response was complete */
	TERM_CLIENT_TIMEOUT, /* the client stopped reading or sending (timeout client) */
	TERM_CLIENT_FRAMING, /* the request body's framing broke after the response started */
	TERM_SERVER_CLOSED,  /* the server closed, reset or broke the response body */
	TERM_SERVER_TIMEOUT, /* the server stopped sending (timeout server) */
	TERM_STOPPED	     /* the daemon stopped (SIGINT, or drain_timeout ran out) */
};

/*
 * One socket of the connection (c->client or c->upstream), with what the kernel data path
 * needs to know about it. bpf is its handle in the kernel path's maps (slot 0: not in them,
 * side_in_maps()); bpf.st points to its window state in the mmap-ed spliced_socks map
 * (struct spliced_sock, include/splice_abi.h; docs/KERNEL_PATH.md explains the fields).
 */
struct side {
	int *fd;		 /* &conn->cfd or &conn->ufd */
	struct ksock bpf;	 /* handle in the maps */
	uint64_t read;		 /* bytes the daemon read from it (since accept/connect) */
	uint64_t written;	 /* bytes the daemon wrote into it */
	uint64_t base;		 /* read when inserted: verdict offset 0 */
	uint64_t kern_base;	 /* bpf.st->kern_fwd when paired with the current peer */
	uint64_t kern_in_closed; /* kernel bytes into it from peers already closed */
	uint64_t verified;	 /* kernel bytes into it known to be in its send queue */
	uint32_t syn_adj;	 /* tcpi_bytes_acked counts the SYN (connected sockets) */
	uint8_t paired;		 /* in the maps, paired with the current peer */
	uint8_t rd_empty; /* socket known empty until its next EPOLLIN (transport_rd_empty) */
	const struct transport_ops *transport; /* how bytes move in and out (transport.h) */
	struct ssl_st *ssl; /* TLS: OpenSSL (the handshake, heads; all records without kTLS) */
};

/* one direction: source socket -> destination socket */
struct flow {
	struct side *src, *dst;
	struct buf in;	/* read from the source, not yet consumed */
	struct buf out; /* queued for the destination */
	int pipe_r, pipe_w;
	uint32_t in_pipe; /* bytes in the pipe */
	enum body body;
	uint64_t left; /* B_LENGTH: body bytes still to move */
	struct http_chunked ch;
	uint8_t body_done;
	uint8_t src_eof;
	uint8_t dst_shut;
	uint8_t chunk_out;   /* B_EOF re-framed: the destination gets it as chunks */
	uint8_t chunk_crlf;  /* chunk_out: the span in the pipe is a chunk, CRLF after it */
	uint64_t moved;	     /* body bytes moved this message */
	uint8_t kernel_span; /* a kernel window is open for the rest of this body */
	uint64_t kern_seen;  /* src kern_fwd already accounted */
	uint64_t kern_moved; /* body bytes the kernel moved this message */
	uint64_t limit;	     /* chunked: most body data bytes (framing not counted); 0: none */
};

struct conn {
	struct worker *w;
	struct conn *prev, *next;
	struct conn *ready_next;
	struct conn *dead_next;	 /* on the worker's graveyard, freed after the event batch */
	struct conn *kpoll_next; /* on the worker's kernel poll list */
	uint8_t queued;
	uint8_t dead;
	uint8_t kpoll_queued;  /* on the worker's kernel poll list */
	uint8_t kernel_wait;   /* waiting on the kernel (a window, a drain): poll it soon */
	uint8_t kernel_ok;     /* the kernel path may be used on this connection */
	uint8_t kernel_failed; /* insertion failed: userspace for good */
	uint8_t kernel_all;    /* splice on: every body of known length or until close too */
	uint8_t hold;	       /* live upgrade: read nothing more, reach a hand-over point */
	struct side client, upstream;
	uint64_t start_ns;
	struct config *cf; /* the configuration it was accepted under (a reference) */
	struct listener *l;
	int cfd, ufd;
	struct ep_tag ctag;
	struct ep_tag *ut;    /* the upstream's (heap: it outlives a parked connection) */
	uint32_t uev;	      /* upstream events seen since connect started */
	uint32_t cev;	      /* client events seen */
	uint64_t tunnel_kern; /* kernel bytes of the tunnel at the last timer look */
	uint16_t peer_port;
	uint8_t linger; /* CLOSING: drain the client's input before closing */
	char peer[INET6_ADDRSTRLEN];
	enum conn_state st;
	uint64_t deadline;
	struct flow req;  /* client -> upstream */
	struct flow resp; /* upstream -> client */
	/* what a connection holds depends on its phase (conn_mem.c): between requests nothing
	 * but itself; while a head arrives req.in (small, growing) and head_scan; during an
	 * exchange the rest below and the body buffers. NULL / no data when not held. */
	struct http_msg *msg;  /* current request head (from its exchange on) */
	struct http_msg *rmsg; /* current response head */
	uint32_t head_scan;    /* parser progress in the head being received (http_msg.scan) */
	uint64_t wait_ms;      /* when it began waiting for its current head (accept, or the end
				* of the previous response): the oldest are closed first at
				* max_connections (conn_reclaim) */
	/* current request */
	enum http_method method;
	int req_keepalive;  /* client connection may carry another request */
	int resp_keepalive; /* upstream connection may carry another request */
	int resp_chunked;   /* the response body runs until close and goes to the client
			     * chunked (response_connection) */
	int upgrade;	    /* request upgrades (to upgrade_proto); CONNECT counts too */
	int head_seen;	    /* some bytes of the current request head arrived */
	int resp_started;   /* response bytes were sent to the client */
	int upstream_fresh; /* upstream connection was opened for this request */
	int in_request;	    /* routed and not logged yet: conn_free logs it with term */
	uint64_t
		resp_mark; /* client.written before the final response head: none sent while equal */
	enum conn_term term;
	const char *refused; /* why spliced refused the request (access log `refused=`), NULL */
	struct limit_ref lim_conn[RULE_MAX_LIMITS]; /* the listener's `limit conn` (connection) */
	struct limit_ref lim_req[RULE_MAX_LIMITS];  /* the route's `limit conn` (this request) */
	uint32_t retry_after;			    /* 429: seconds for Retry-After */
	int status;
	char host[128];
	char path[256];
	const struct route *route;	/* the route of the current request (NULL: none) */
	struct conn_rules_state *rules; /* conn_rules.c, on first use */
	uint8_t peer_addr[16];		/* c->peer as 16 bytes (IPv4 mapped), once set */
	uint8_t peer_addr_set;
	char upgrade_proto[UPGRADE_LIST_MAX]; /* the Upgrade value forwarded; a 101 must pick
					       * from it */
	char method_s[16];
	int version_minor;
	struct pool *pool;
	struct server *srv;
	unsigned ntried; /* tries of this request so far (the access log's tries=) */
	uint32_t tried[MAX_TRIES];
	uint8_t pick_full;	    /* the last pick found servers only at their max_conn */
	uint8_t qstate;		    /* queue.c: not queued, waiting in the pool's queue, granted */
	struct conn *qnext, *qprev; /* queue.c: in the pool's queue or the worker's granted list */
	struct server *slot_srv;    /* queue.c: the server whose max_conn slot c holds */
	struct server *sticky_srv;  /* sticky.c: the server the request's cookie names, or NULL */
	uint64_t t_sent_ms;	    /* the request head was queued for the server */
	char *req_head;		    /* rewritten head, kept for retries */
	uint32_t req_head_len;
	uint64_t hash_key;
	uint64_t t_start;
	uint64_t bytes_in, bytes_out; /* this request, from / to the client */
	uint64_t run_budget;
	unsigned requests;
	/* for `show connections` (control.c reads them through conn_snapshot()) */
	uint8_t paths;			      /* CONN_PATH_* the connection used so far */
	uint64_t user_done_in, user_done_out; /* daemon bytes of finished requests */
};

#define CONN_PATH_SPLICE 0x1 /* a body moved with splice(2) */
#define CONN_PATH_KERNEL 0x2 /* a span was handed to the BPF verdict */

#endif
