/* SPDX-License-Identifier: MIT */
/*
 * types.h - the daemon's shared structures, in one place (a table of contents for the code):
 * configuration (listeners, routes, pools, servers), worker threads and connections.
 */
#ifndef SPLICED_TYPES_H
#define SPLICED_TYPES_H

#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lb.h"
#include "rules.h"

#define NAME_MAX_LEN 64
#define HOST_MAX_LEN 256
#define MAX_BINDS 16
#define MAX_ROUTE_HOSTS 8
#define UPGRADE_LIST_MAX 128 /* `upgrade_protocols` names, space-separated, NUL included */

enum splice_mode { SPLICE_AUTO = 0, SPLICE_ON, SPLICE_OFF };
/* `underscore_headers`: request headers with '_' in their name (Content_Length) */
enum underscore_mode { UNDERSCORE_DROP = 0, UNDERSCORE_REJECT, UNDERSCORE_PASS };
/* `access_log ... format F;` */
enum accesslog_format { ACCESSLOG_TEXT = 0, ACCESSLOG_JSON };
#define SPLICE_MIN_BODY_OFF UINT64_MAX
/* what `balance hash` hashes (sticky.c): the client address, a header, a cookie, the
 * request-target, or a query argument; the name is pool->hash_name */
enum hash_key { HASH_SOURCE = 0, HASH_HEADER, HASH_COOKIE, HASH_URI, HASH_QUERY };

/* pool->retry_on bits (`retry_on`, retry.c): what makes a request go to another server */
#define RETRY_CONNECT 0x01 /* connect refused, timed out or reset */
#define RETRY_TIMEOUT 0x02 /* no response head within `timeout server` */
#define RETRY_RESET 0x04   /* the server closed or reset before a byte of a response */
#define RETRY_502 0x08	   /* a response with this status */
#define RETRY_503 0x10
#define RETRY_504 0x20
#define RETRY_DEFAULT (RETRY_CONNECT | RETRY_RESET)

/* active health checks of a pool (health.c); HEALTH_CHECK_NONE: servers are assumed up */
enum health_check { HEALTH_CHECK_NONE = 0, HEALTH_CHECK_HTTP, HEALTH_CHECK_TCP };

/* server state as the workers see it (struct server_health.state) */
enum server_state {
	SRV_UP = 0,   /* takes new requests (unless passively ejected or weight 0) */
	SRV_DOWN,     /* failed `fall` active checks in a row */
	SRV_DRAINING, /* admin drain: no new requests, existing connections finish */
	SRV_MAINT,    /* maintenance (admin or config): no requests, no checks */
};

/* struct server_health.admin bits */
#define SRV_ADMIN_DRAIN 0x1
#define SRV_ADMIN_MAINT 0x2

struct health_conf {
	enum health_check type;
	char path[HOST_MAX_LEN];       /* HTTP: request target */
	char host[HOST_MAX_LEN];       /* HTTP: Host header; "" = the server's address */
	uint32_t interval_ms;	       /* start to start */
	uint32_t timeout_ms;	       /* whole check: connect, request, response */
	unsigned rise;		       /* consecutive successes that bring a down server up */
	unsigned fall;		       /* consecutive failures that take an up server down */
	unsigned status_lo, status_hi; /* HTTP: accepted status range */
	uint8_t tls; /* HTTP checks over TLS even without the pool's `tls` (no keyword yet); a
		      * pool with `tls` always checks over TLS, see health.c check_tls_setup() */
};

/*
 * Run-time health of one server. The atomics are read by workers without a lock; the plain
 * fields belong to health.c and are only touched under its lock.
 */
struct server_health {
	_Atomic int state;		   /* enum server_state */
	_Atomic uint64_t ejected_until_ms; /* passive ejection: no new requests before */
	_Atomic uint32_t consec_fail;	   /* passive: connect failures / 5xx in a row */
	_Atomic uint32_t transitions;	   /* state changes, ejections included */
	_Atomic uint64_t up_since_ms;	   /* start of the slow start ramp; 0: none */
	/* under the health lock */
	uint8_t admin;	    /* SRV_ADMIN_* */
	uint8_t check_down; /* what active checks say (0: up, the initial assumption) */
	uint8_t ejected;    /* an ejection whose end was not logged yet */
	uint8_t recheck;    /* check as soon as possible (left maintenance) */
	uint8_t probation;  /* left maintenance: the first failed check takes it down */
	unsigned rise_cnt, fall_cnt;
	unsigned nejections;	  /* ejection back-off exponent, decays while healthy */
	uint64_t eject_end_ms;	  /* end of the last ejection (back-off decay) */
	uint64_t last_change_ms;  /* last transition */
	uint64_t last_check_ms;	  /* last active check result */
	uint64_t checks;	  /* active check results */
	uint32_t last_latency_us; /* of the last active check */
	int8_t last_ok;		  /* last active check: 1 ok, 0 failed, -1 none yet */
	uint32_t lb_weight;	  /* weight last given to the balancer */
	char last_result[48];	  /* "status 200", "timeout", "refused", ... */
	char reason[64];	  /* of the last transition */
};

struct server {
	char name[NAME_MAX_LEN];
	char spec[HOST_MAX_LEN]; /* HOST:PORT as configured */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint32_t weight;      /* in use: the file's, or one set at run time (splicectl) */
	uint32_t weight_file; /* as configured */
	uint8_t backup;
	uint8_t maintenance; /* `maintenance` option: starts in SRV_MAINT */
	uint32_t id;	     /* index in the global server table (BPF per-server stats key) */
	unsigned max_conn;   /* `max_conn`: requests in flight at once; 0: no cap (queue.c) */
	char cookie[20];     /* `sticky cookie` value naming it (opaque: a hash of its name) */
	struct pool *pool;
	int line;
	/* runtime, shared by all workers */
	_Atomic uint64_t failed_until_ms; /* passive failure mark: skip until then */
	_Atomic uint64_t requests;
	_Atomic uint64_t conn_total;
	_Atomic uint64_t conn_fail;
	_Atomic uint64_t bytes_up;	  /* client -> server, moved by the daemon */
	_Atomic uint64_t bytes_down;	  /* server -> client, moved by the daemon */
	_Atomic uint64_t kern_bytes_up;	  /* client -> server, redirected by the kernel */
	_Atomic uint64_t kern_bytes_down; /* server -> client, redirected by the kernel */
	_Atomic int64_t conn_active;
	_Atomic uint32_t slots; /* requests holding one of max_conn (queue.c, under its lock) */
	/* response-head latency of the current slow-ejection window (added by the workers,
	 * taken by the health tick: health_state.c) */
	_Atomic uint64_t head_lat_sum_us;
	_Atomic uint64_t head_lat_n;
	struct server_health h; /* health.c */
};

/*
 * Run-time statistics (stats.c, metrics.c, control.c). Atomics only: workers add to them on the
 * request path without a lock. A listener's and a pool's counters are one plain member each
 * (`st`), so a reload carries them over to the listener/pool of the same name in the new
 * configuration with one struct copy while no worker runs requests on the new one yet.
 */
#define STATS_DUR_BUCKETS 11 /* request duration histogram bounds, stats_dur_bound_ms() */
#define STATS_CODE_SLOTS 64  /* (pool, status) pairs counted per listener */

/* requests of one listener that ended with one status for one pool ("": no pool chosen) */
struct stats_code {
	_Atomic uint64_t key;	/* 0: free; else stats_code_key(pool, status), set once */
	_Atomic uint64_t count; /* requests */
	_Atomic int ready;	/* pool and code below are written (set after them) */
	uint16_t code;
	char pool[NAME_MAX_LEN];
};

struct listener_stats {
	struct stats_code codes[STATS_CODE_SLOTS];
	_Atomic uint64_t codes_lost; /* requests whose (pool, status) found no free slot */
	_Atomic uint64_t requests;
	_Atomic uint64_t connections;			    /* accepted */
	_Atomic uint64_t dur_bucket[STATS_DUR_BUCKETS + 1]; /* not cumulative; last: +Inf */
	_Atomic uint64_t dur_sum_ms;
};

#define STATS_RETRY_CAUSES 6 /* the RETRY_* bits, in their order (retry_cause_name()) */

struct pool_stats {
	_Atomic uint64_t requests;
	_Atomic uint64_t status_class[6];	      /* [1] 1xx ... [5] 5xx; [0] anything else */
	_Atomic uint64_t retries[STATS_RETRY_CAUSES]; /* tries after the first, by cause */
	_Atomic uint64_t queued;		      /* requests that waited in the queue */
	_Atomic uint64_t queue_full;		      /* 503: the queue was full */
	_Atomic uint64_t queue_timeout;		      /* 503: the wait ran out */
	_Atomic uint64_t slow_ejections;	      /* servers ejected for latency */
};

struct conn;

/* requests of a pool waiting for a server slot, oldest first (queue.c, under its lock) */
struct pool_queue {
	struct conn *head, *tail;
	_Atomic unsigned len; /* read without the lock by the metrics and the pick */
};

struct pool {
	char name[NAME_MAX_LEN];
	int line;
	enum lb_algo algo;
	enum hash_key hash_key;
	char hash_name[NAME_MAX_LEN]; /* header, cookie or query argument name */
	struct server *servers;
	unsigned nservers;
	struct lb lb;
	int lb_ready;
	uint32_t connect_timeout_ms;
	uint32_t timeout_server_ms; /* `timeout server` of the pool; 0 in the file: the global */
	uint32_t timeout_client_ms; /* `timeout client` of the pool; 0 in the file: the global */
	uint32_t fail_timeout_ms;   /* how long a failed server is skipped */
	unsigned retries;
	unsigned retry_on;	   /* RETRY_* bits */
	uint32_t retry_timeout_ms; /* no new try this long after the request head; 0: no limit */
	/* `sticky cookie NAME [ttl D]` (sticky.c) */
	char sticky_cookie[NAME_MAX_LEN]; /* "": off */
	uint32_t sticky_ttl_ms;		  /* Max-Age of the cookie; 0: a session cookie */
	/* `queue N timeout D` (queue.c): requests over every server's max_conn wait */
	unsigned queue_max; /* 0: none wait (503 at once) */
	uint32_t queue_timeout_ms;
	struct pool_queue queue; /* run-time */
	int used;		 /* referenced by a route */
	/* upstream TLS (tls.c): `tls [verify on|off] [ca FILE] [sni NAME];` */
	int tls_on;
	int tls_verify; /* default on */
	int tls_line;
	char tls_ca[PATH_MAX];
	char tls_sni[HOST_MAX_LEN];
	struct tls_client *tlsc;
	struct health_conf health;
	uint32_t slow_start_ms;	       /* 0: off */
	unsigned eject_failures;       /* passive ejection threshold; 0: off */
	uint32_t eject_base_ms;	       /* first ejection; doubles on each repeat */
	uint32_t eject_max_ms;	       /* longest ejection */
	unsigned max_ejection_percent; /* never more of the pool's servers ejected at once */
	/* `eject slow FACTOR [window D] [min_requests N] [threshold D]` (health_state.c) */
	unsigned eject_slow_factor;	  /* 0: off */
	uint32_t eject_slow_window_ms;	  /* latency is averaged over this window */
	unsigned eject_slow_min_requests; /* fewer answers in a window: not judged */
	uint32_t eject_slow_threshold_ms; /* a mean below this is never slow */
	uint64_t slow_window_end_ms;	  /* under the health lock */
	unsigned weight_scale;		  /* balancer units per unit of configured weight (>= 1) */
	unsigned keepalive; /* idle upstream connections kept per worker and server; 0 off */
	uint32_t keepalive_timeout_ms; /* how long one may stay idle */
	struct pool_stats st;	       /* carried over by a reload (same name) */
};

struct route {
	char hosts[MAX_ROUTE_HOSTS][HOST_MAX_LEN]; /* lower case; "*.x" matches subdomains of x */
	unsigned nhosts;
	char path[HOST_MAX_LEN]; /* path prefix (in normalized form); "" matches all */
	char pool_name[NAME_MAX_LEN];
	/* protocols a request may Upgrade to, lower case, space-separated ("": none): the
	 * route's `upgrade_protocols`, else its listener's, else "websocket" */
	char upgrade_protocols[UPGRADE_LIST_MAX];
	int upgrade_line;	 /* of the route's own `upgrade_protocols`; 0: inherited */
	char name[NAME_MAX_LEN]; /* `route NAME { }`, else "#N" (1-based, in its listener) */
	struct rule_cond *conds; /* rules.h: all must hold, after hosts and path */
	unsigned nconds;
	struct rule_actions act;  /* rules.h: applied after the listener's */
	_Atomic uint64_t matches; /* requests routed here (carried over by a reload) */
	struct pool *pool;	  /* NULL: the route answers itself (`return`) */
	int line;
};

struct bind_addr {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char str[80];
	int line;
};

struct tls_cert_conf {
	char cert[PATH_MAX];
	char key[PATH_MAX];
	int line;
};

/* `tls protocols` as TLS numbers them on the wire (and OpenSSL's TLS1_x_VERSION) */
#define CONF_TLS1_2 0x0303
#define CONF_TLS1_3 0x0304

struct tls_server; /* OpenSSL contexts of a listener, see tls.c */
struct tls_client; /* OpenSSL context of a pool's upstream TLS, see tls.c */

struct listener {
	char name[NAME_MAX_LEN];
	int line;
	struct bind_addr binds[MAX_BINDS];
	unsigned nbinds;
	struct route *routes;
	unsigned nroutes;
	enum splice_mode splice;
	char upgrade_protocols[UPGRADE_LIST_MAX]; /* `upgrade_protocols`, see struct route */
	int upgrade_line;			  /* 0: not set, routes get "websocket" */
	struct rule_actions act; /* rules.h: defaults every route of it applies first */
	unsigned max_uri_length; /* request-target bytes (414 beyond); 0: the parser's 8 KiB */
	unsigned max_headers;	 /* request header lines (431 beyond); 0: the parser's 128 */
	int underscore_headers;	 /* enum underscore_mode */
	/* TLS termination (tls.c); no certificate: plain HTTP */
	struct tls_cert_conf *certs;
	unsigned ncerts;
	int tls_min, tls_max; /* CONF_TLS1_x (the version on the wire); 0: library default */
	int tls_line;
	char tls_ciphers[256];	       /* TLS 1.2 cipher list; "" = default */
	uint32_t tls_ticket_rotate_ms; /* session ticket key lifetime; 0: default (1 h) */
	struct tls_server *tls;
	char *text; /* the block as the file writes it, normalized (conf_print); malloc'd */
	struct listener_stats st; /* carried over by a reload (same name) */
};

struct config {
	char file[PATH_MAX];
	char pin_path[PATH_MAX];
	char access_log[PATH_MAX];   /* "" or "stderr": stderr; "off": none; "syslog[:FACILITY]";
				      * else a file */
	int access_log_format;	     /* enum accesslog_format */
	int access_log_facility;     /* syslog(3) facility of "syslog[:FACILITY]" (LOG_DAEMON) */
	unsigned workers;	     /* 0: one per CPU */
	uint32_t timeout_header_ms;  /* whole request head must arrive within */
	uint32_t timeout_idle_ms;    /* keep-alive wait for the next request */
	uint32_t timeout_connect_ms; /* default for pools */
	uint32_t timeout_server_ms;  /* wait for response head / inactivity on a request */
	uint32_t timeout_client_ms;  /* inactivity while sending a body or response */
	uint32_t timeout_tunnel_ms;  /* inactivity in Upgrade/CONNECT tunnels */
	uint32_t max_header_size;
	uint32_t max_connections;
	unsigned limit_table_size; /* entries of the shared `limit` table (limit_table.h) */
	uint32_t buffer_size;	   /* per direction userspace buffer */
	uint32_t pipe_size;	   /* splice(2) pipe capacity */
	uint32_t buffer_pool;	   /* spare buffers (and pipes) each worker keeps for reuse */
	uint64_t splice_cap;	   /* bytes in flight into a peer before falling back to PASS */
	uint64_t splice_min_body;  /* splice auto: bodies this long go to the kernel path;
				   * SPLICE_MIN_BODY_OFF: bodies never do */
	uint32_t fail_timeout_ms;
	unsigned retries;
	/* operations */
	char control[PATH_MAX]; /* control socket path; "" = none */
	char metrics[80];	/* Prometheus endpoint ADDR:PORT; "" = none */
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_addrlen;
	char user[NAME_MAX_LEN];     /* drop privileges to this user; "" = stay */
	char group[NAME_MAX_LEN];    /* and group; "" = the user's primary group */
	uint32_t drain_timeout_ms;   /* SIGTERM / upgrade: in-flight requests may finish */
	uint32_t upgrade_timeout_ms; /* SIGUSR2: wait for connections to reach a hand-over point */
	char pid_file[PATH_MAX];     /* "" = none */
	_Atomic int refs;	     /* holders: the daemon (current) + every connection */
	/* frees what the preparing step (tls_prepare) built; NULL: nothing was prepared */
	void (*release)(struct config *cf);
	struct listener *listeners;
	unsigned nlisteners;
	struct pool *pools;
	unsigned npools;
	struct server **servers; /* every server, indexed by server->id */
	unsigned nservers;
};

/* global run-time options from the command line */
struct options {
	const char *config_file;
	const char *pid_file; /* -P: overrides pid_file */
	int foreground;
	int check_only;
	int verbose;
	int no_splice;
	int no_ktls;
	int no_kernel_acl; /* listener access lists after accept, not in the kernel */
};

#endif
