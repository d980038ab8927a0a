/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - Prometheus text exposition (format 0.0.4) on `global { metrics ADDR:PORT; }`:
 * plain HTTP/1.1, GET /metrics, one response per connection, then close. Served on the main
 * thread's event loop (daemon_watch), non-blocking; a request head is at most
 * METRICS_REQUEST_MAX bytes; other paths get 404. Metric names: docs/OPERATIONS.md.
 */
#ifndef SPLICED_METRICS_H
#define SPLICED_METRICS_H

#include <stdio.h>

#include "daemon.h"

#define METRICS_REQUEST_MAX 8192
#define METRICS_CLIENTS_MAX 64
#define METRICS_IDLE_MS 10000 /* a scrape connection must send its request within this */

struct obuf;

/*
 * metrics_reconfigure - make the endpoint follow new_cf->metrics (old_cf: the configuration
 * the current socket belongs to; NULL at start). Same address: nothing happens. A new address
 * is bound first, then the old socket is closed (scrapes in progress finish). Main thread
 * only. Returns 0, or -errno with the reason logged and written to errf (when not NULL); the
 * old socket, if any, then stays.
 */
int metrics_reconfigure(struct daemon *d, const struct config *old_cf, const struct config *new_cf,
			FILE *errf);

/*
 * metrics_takeover - this process was started by a live upgrade: at start, an address the old
 * process still listens on is not an error; it is bound as soon as the old process lets go
 * (tried every second), and until then the old process answers the scrapes.
 */
void metrics_takeover(void);

/* metrics_close - close the listening socket and every scrape connection. */
void metrics_close(struct daemon *d);

/* the metrics endpoint as a service of the main thread (daemon_services[]) */
extern const struct daemon_service metrics_service;

/* metrics_render - append the whole exposition text for d to out. */
void metrics_render(struct daemon *d, struct obuf *out);

#endif
