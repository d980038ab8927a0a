/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - the process: the current configuration, the workers, and the main thread's event
 * loop (daemon.c: the fds other modules watch - signals, the 1 s tick, the control socket, the
 * metrics endpoint, a live upgrade's sockets). Everything that changes the running
 * configuration (reload, admin commands, upgrade) runs on the main thread, so those operations
 * never race each other.
 */
#ifndef SPLICED_DAEMON_H
#define SPLICED_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "types.h"

struct worker;
struct daemon;

/* a file descriptor watched by the main loop */
typedef void (*daemon_fd_cb)(struct daemon *d, int fd, uint32_t events, void *arg);

struct daemon {
	struct config *cf; /* current configuration (one reference held here) */
	struct options *opt;
	char **argv; /* as started (live upgrade runs the binary again with them) */
	struct worker *workers;
	unsigned nworkers;
	int epfd;	   /* main loop */
	uint64_t start_ms; /* monotonic */
	time_t start_wall;
	unsigned generation; /* configuration generation: 1 at start, +1 per reload */
	uint64_t reloads, reload_failures;
	char exe[4096]; /* this binary, resolved at start (live upgrade re-executes it) */
	int stopping;	/* SIGTERM: draining */
	int upgraded;	/* handed over to a new process: keep the pins at exit */
	int upgrading;	/* old process: an upgrade is running */
	uint64_t drain_deadline_ms; /* monotonic */
};

extern struct daemon g_daemon;

/*
 * A service of the main thread (the control socket, the metrics endpoint): the hooks start-up,
 * reload and exit call for each entry of daemon_services[], in that order, so that neither
 * main.c nor reload.c names a service (nginx modules register their hooks the same way).
 */
struct daemon_service {
	const char *name; /* in messages: "control socket" */
	size_t addr_off;  /* offsetof(struct config, the service's address string) */
	/*
	 * reconfigure - follow new_cf (old_cf: the configuration the service runs on now, NULL
	 * at start). Main thread. Returns 0, or -errno with every reason logged and written to
	 * errf (when not NULL); the service then stays as it was.
	 */
	int (*reconfigure)(struct daemon *d, const struct config *old_cf,
			   const struct config *new_cf, FILE *errf);
	/* takeover - this process was started by a live upgrade (called before reconfigure) */
	void (*takeover)(void);
	/* close - exit: close the service's sockets and clients */
	void (*close)(struct daemon *d);
};

/* every service, NULL-terminated (services.c) */
extern const struct daemon_service *const daemon_services[];

/* daemon_loop_init - create the main loop's epoll set (d->epfd); 0 or -errno. */
int daemon_loop_init(struct daemon *d);
/* daemon_watch - call cb on the main thread when fd has events (EPOLLIN...); 0 or -errno. */
int daemon_watch(struct daemon *d, int fd, uint32_t events, daemon_fd_cb cb, void *arg);
/* daemon_unwatch - stop watching fd (does not close it). Safe from inside a callback, also for
 * a fd whose event is still pending in the current batch (it is then not called). */
void daemon_unwatch(struct daemon *d, int fd);
/* daemon_loop_once - wait up to timeout_ms (-1: no limit) for events and call the callbacks of
 * the watched fds that have them. Returns the number of events, or -errno (EINTR included). */
int daemon_loop_once(struct daemon *d, int timeout_ms);
/* daemon_loop_close - forget every watch and close the epoll set (the fds stay open). */
void daemon_loop_close(struct daemon *d);

/*
 * daemon_reload - load the configuration file again, validate it, open what it needs (new
 * listeners, TLS contexts), then swap it in on every worker. On any error nothing changes and
 * every error is written to errf. Main thread only. Returns 0 or -1.
 */
int daemon_reload(struct daemon *d, FILE *errf);

#endif
