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

#define NAME_MAX_LEN 64
#define HOST_MAX_LEN 256
#define MAX_BINDS 16
#define MAX_ROUTE_HOSTS 8

enum splice_mode { SPLICE_AUTO = 0, SPLICE_ON, SPLICE_OFF };
enum hash_key { HASH_SOURCE = 0, HASH_HEADER };

struct server {
	char name[NAME_MAX_LEN];
	char spec[HOST_MAX_LEN]; /* HOST:PORT as configured */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint32_t weight;
	uint8_t backup;
	uint32_t id; /* index in the global server table (BPF per-server stats key) */
	struct pool *pool;
	int line;
	/* runtime, shared by all workers */
	_Atomic uint64_t failed_until_ms; /* passive failure mark: skip until then */
	_Atomic uint64_t requests;
	_Atomic uint64_t conn_total;
	_Atomic uint64_t conn_fail;
	_Atomic uint64_t bytes_up;   /* client -> server, moved by the daemon */
	_Atomic uint64_t bytes_down; /* server -> client, moved by the daemon */
	_Atomic int64_t conn_active;
};

struct pool {
	char name[NAME_MAX_LEN];
	int line;
	enum lb_algo algo;
	enum hash_key hash_key;
	char hash_header[NAME_MAX_LEN];
	struct server *servers;
	unsigned nservers;
	struct lb lb;
	int lb_ready;
	uint32_t connect_timeout_ms;
	uint32_t fail_timeout_ms; /* how long a failed server is skipped */
	unsigned retries;
	int used; /* referenced by a route */
};

struct route {
	char hosts[MAX_ROUTE_HOSTS][HOST_MAX_LEN]; /* lower case; "*.x" matches subdomains of x */
	unsigned nhosts;
	char path[HOST_MAX_LEN]; /* path prefix; "" matches all */
	char pool_name[NAME_MAX_LEN];
	struct pool *pool;
	int line;
};

struct bind_addr {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char str[80];
	int line;
};

struct listener {
	char name[NAME_MAX_LEN];
	int line;
	struct bind_addr binds[MAX_BINDS];
	unsigned nbinds;
	struct route *routes;
	unsigned nroutes;
	enum splice_mode splice;
};

struct config {
	char file[PATH_MAX];
	char pin_path[PATH_MAX];
	char access_log[PATH_MAX];   /* "" or "stderr": stderr; "off": none; else a file */
	unsigned workers;	     /* 0: one per CPU */
	uint32_t timeout_header_ms;  /* whole request head must arrive within */
	uint32_t timeout_idle_ms;    /* keep-alive wait for the next request */
	uint32_t timeout_connect_ms; /* default for pools */
	uint32_t timeout_server_ms;  /* wait for response head / inactivity on a request */
	uint32_t timeout_client_ms;  /* inactivity while sending a body or response */
	uint32_t timeout_tunnel_ms;  /* inactivity in Upgrade/CONNECT tunnels */
	uint32_t max_header_size;
	uint32_t max_connections;
	uint32_t buffer_size; /* per direction userspace buffer */
	uint32_t pipe_size;   /* splice(2) pipe capacity */
	uint32_t fail_timeout_ms;
	unsigned retries;
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
	int foreground;
	int check_only;
	int verbose;
	int no_splice;
	int no_ktls;
};

#endif
