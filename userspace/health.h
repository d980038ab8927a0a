/* SPDX-License-Identifier: MIT */
/*
 * health.h - active health checks: one thread with its own epoll loop runs HTTP checks
 * (libcurl multi interface) and TCP connects against every checked server, feeds the results
 * to the state machine (health_state.h) and runs its tick (ejection ends, slow start weights).
 * Control plane: the workers never call in here; they read and feed health_state.h.
 */
#ifndef SPLICED_HEALTH_H
#define SPLICED_HEALTH_H

#include "health_state.h"
#include "types.h"

/*
 * health_start - start the health thread for cf (checks, ejection expiry, slow start weights,
 * the status table at log_debug every 10 s). Call once, after the workers started; cf must
 * outlive health_stop(). Returns 0 or -errno (nothing is left running on failure).
 */
int health_start(struct config *cf);

/* health_stop - stop and join the thread, abort running checks, free everything. Safe to call
 * when health_start() was not called or failed. */
void health_stop(void);

#endif
