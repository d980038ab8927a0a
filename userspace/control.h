/* SPDX-License-Identifier: MIT */
/*
 * control.h - the control socket (`global { control PATH; }`): a unix stream socket served on
 * the main thread's event loop (daemon_watch), speaking a line protocol that tools/splicectl
 * uses. Protocol, commands and output formats: docs/OPERATIONS.md.
 *
 *   request:  one line "[json ]VERB ARGS...\n" (at most CONTROL_LINE_MAX bytes)
 *   answer:   text lines, then "OK" or "ERR message" as the last line; with "json ", one JSON
 *             document (a single line) before that last line
 * A client may send several requests on one connection; after it shuts down its side, the
 * daemon answers what it sent and closes. Bad input gets "ERR ..." and never affects anything
 * else.
 */
#ifndef SPLICED_CONTROL_H
#define SPLICED_CONTROL_H

#include <stdio.h>

#include "daemon.h"

#define CONTROL_LINE_MAX 4096 /* longest request line, newline included */
#define CONTROL_CLIENTS_MAX 16
#define CONTROL_IDLE_MS 60000 /* a client that sends nothing for this long is closed */

/*
 * control_reconfigure - make the control socket follow new_cf->control (old_cf: the
 * configuration the current socket belongs to; NULL at start). Same path: nothing happens.
 * A new path is opened first: its directory must exist or is created (mode 0750) and must not
 * be writable by others; a socket file already there is replaced only when nothing answers on
 * it; the socket file gets mode 0660. Then the old socket is closed and its file removed
 * (clients connected to it stay until they are done). Main thread only.
 * Returns 0, or -errno with every reason logged and written to errf (when not NULL); then the
 * old socket, if any, stays as it was.
 */
int control_reconfigure(struct daemon *d, const struct config *old_cf, const struct config *new_cf,
			FILE *errf);

/*
 * control_takeover - this process was started by a live upgrade: at start, the control socket
 * of the old process (which still answers on the path) is replaced instead of refused. The old
 * process keeps its clients and, at exit, leaves the new socket file alone.
 */
void control_takeover(void);

/* control_close - close the listening socket and every client, and remove the socket file
 * unless it is no longer the one this process created (a live upgrade). */
void control_close(struct daemon *d);

/* the control socket as a service of the main thread (daemon_services[]) */
extern const struct daemon_service control_service;

/*
 * control_execute - run one request line (without the newline) and append the answer, last
 * line included, to out. The connection-independent core of the protocol, exported for
 * tests. Returns 0 when the answer ends in OK, 1 when it ends in ERR.
 */
struct obuf;
int control_execute(struct daemon *d, const char *line, struct obuf *out);

#endif
