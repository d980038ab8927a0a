/* SPDX-License-Identifier: MIT */
/*
 * accesslog.h - the access log file (`global { access_log ...; }`): opened at start, reopened by
 * a reload under the same descriptor number, one line per request written by the workers
 * (conn.c, one write(2) each on an O_APPEND file, so lines of concurrent workers stay whole).
 */
#ifndef SPLICED_ACCESSLOG_H
#define SPLICED_ACCESSLOG_H

#include <stdio.h>

#include "types.h"

/* where the workers write their lines; -1: no access log ("off") */
extern int g_access_fd;

/* accesslog_open - at start, before any worker runs: open cf->access_log ("stderr" or "": a
 * copy of stderr; "off": none). Returns 0 or -errno. */
int accesslog_open(const struct config *cf);

/* accesslog_reopen - reload: open ncf->access_log and put it under the number the workers use
 * (dup2 is atomic: no line is lost or torn). Returns 0, or -1 with the reason written to errf
 * (then the old file stays). Main thread. */
int accesslog_reopen(const struct config *ncf, FILE *errf);

/* accesslog_refused - the line of a connection from peer that listener l refused before it
 * carried a request (`refused=REASON`, status 0). Any worker. */
void accesslog_refused(const struct listener *l, const struct sockaddr_storage *peer,
		       const char *reason);

/* accesslog_close - at exit, after the workers stopped */
void accesslog_close(void);

#endif
