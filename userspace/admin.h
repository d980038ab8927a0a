/* SPDX-License-Identifier: MIT */
/*
 * admin.h - what the daemon's two small servers on the main thread share (the control socket,
 * control.c, and the metrics endpoint, metrics.c): a listening socket watched by the main
 * loop, a bounded list of clients each with an output buffer and an idle clock, accepting
 * paused while a live upgrade runs (the new process accepts on the shared socket) and resumed
 * if the upgrade is given up, and the socket's number handed to the new process in the
 * environment.
 *
 * A module embeds struct admin_client first in its own client struct, fills the constant part
 * of struct admin_srv and gets its client_event callback called with its client as arg.
 */
#ifndef SPLICED_ADMIN_H
#define SPLICED_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "daemon.h"
#include "obuf.h"

struct admin_srv;

/* how clients are watched (edge-triggered, both ways) */
#define ADMIN_CLIENT_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

struct admin_client {
	struct admin_client *next;
	struct admin_srv *srv;
	int fd;
	uint64_t since_ms; /* the idle clock: accept, or the last activity (the module's choice) */
	struct obuf out;
};

struct admin_srv {
	/* set by the module */
	const char *name;     /* in log lines: "control", "metrics" */
	const char *env_fd;   /* environment variable that carries lfd across an upgrade */
	size_t client_size;   /* of the module's client struct (struct admin_client first) */
	unsigned max_clients; /* more are closed at once */
	const char *busy;     /* said to a client over max_clients first (NULL: nothing) */
	/* over max_clients, make room instead of refusing (NULL: refuse): the oldest client
	 * for which this says 0 (nothing in progress worth keeping) is closed, else the oldest
	 * of all, so idle connections can never keep a new client out */
	int (*in_progress)(const struct admin_client *cl);
	size_t out_max;			   /* a client's output buffer limit (0: none) */
	uint64_t idle_ms;		   /* clients idle this long are closed by the 1 s timer */
	daemon_fd_cb client_event;	   /* events of a client, arg: its struct */
	void (*on_tick)(struct daemon *d); /* more to do every second (NULL: nothing) */
	/* state */
	int lfd;      /* listening socket, -1: none */
	int tfd;      /* the module's 1 s timer, -1: none */
	int paused;   /* an upgrade runs: the new process accepts, not this one */
	int evicting; /* clients were closed to make room (logged once per episode) */
	struct admin_client *clients;
	unsigned nclients;
};

/* admin_watch - watch fd (s->lfd or its replacement) for new clients; 0 or -errno */
int admin_watch(struct daemon *d, struct admin_srv *s, int fd);
/* admin_client_close - unlink, unwatch, close and free a client */
void admin_client_close(struct daemon *d, struct admin_client *cl);
/* admin_close_all - close every client (the listening socket stays the caller's) */
void admin_close_all(struct daemon *d, struct admin_srv *s);
/* admin_timer_start - start the 1 s timer (once): it closes idle clients, accepts again after
 * an upgrade was given up, then calls s->on_tick; a failure only means none of that, logged */
void admin_timer_start(struct daemon *d, struct admin_srv *s);
void admin_timer_stop(struct daemon *d, struct admin_srv *s);
/* admin_inherit_fd - the listening socket an older process handed down in s->env_fd (the
 * variable is consumed), non-blocking, with its address in ss; -1 when there is none or it is
 * not a listening socket */
int admin_inherit_fd(const struct admin_srv *s, struct sockaddr_storage *ss);
/* admin_publish_fd - hand fd down to a process a live upgrade executes: no close-on-exec, its
 * number in s->env_fd (fd < 0: unset it) */
void admin_publish_fd(const struct admin_srv *s, int fd);

#endif
