/* SPDX-License-Identifier: MIT */
/*
 * accesslog.h - the access log (`global { access_log TARGET [format text|json]; }`).
 *
 * Workers never wait for it: a line goes into an internal pipe (one non-blocking write of at
 * most ACCESSLOG_LINE_MAX <= PIPE_BUF bytes, so lines of concurrent workers stay whole) and a
 * thread of this module moves the pipe to the target: a file (O_APPEND), stderr, or syslog.
 * When the target is slower than the requests (a slow disk, a pipe or FIFO nobody reads, a
 * full syslog socket) the internal pipe fills and further lines are dropped and counted
 * (accesslog_dropped, `spliced_log_dropped_total`) instead of stalling a request.
 *
 * The line itself is built here from a record the connection fills (accesslog_line): text, or
 * JSON Lines with stable field names (docs/CONFIG.md, "Access log").
 */
#ifndef SPLICED_ACCESSLOG_H
#define SPLICED_ACCESSLOG_H

#include <stdint.h>
#include <stdio.h>

#include "types.h"

#define ACCESSLOG_LINE_MAX 4096 /* bytes of one line, newline included (PIPE_BUF) */

/* one finished request, as conn.c knows it; strings are NUL-terminated, NULL or "": unknown */
struct accesslog_rec {
	uint64_t time_ms; /* wall clock when the request ended, ms since the epoch */
	const char *listener;
	const char *client; /* address of the peer */
	const char *method;
	const char *target; /* the request target as received */
	int version_minor;  /* HTTP/1.x */
	const char *host;   /* lower case, without port */
	int status;	    /* sent to the client; 0: none */
	uint64_t bytes_in, bytes_out;
	const char *pool, *server; /* NULL: none chosen */
	uint64_t duration_ms;
	unsigned tries;	   /* servers tried (retries: more than one); 0: no pool */
	const char *tls;   /* NULL: plain TCP; else how records are encrypted ("ktls-tx", ...) */
	const char *route; /* the route's name ("api", "#2"); NULL: none matched */
	const char *request_id; /* NULL: `request_id` off */
	const char *term;    /* NULL or "": completed; else why it ended early ("client_closed") */
	const char *refused; /* NULL: served; else why spliced refused it ("acl_deny", ...) */
};

/*
 * accesslog_line - the record as one line in format (enum accesslog_format), newline included,
 * into buf (len >= 64). Every byte a client chose is escaped: in JSON as \" \\ \n ... and
 * \u00XX for other bytes below 0x20 and from 0x7f up (a byte, not a UTF-8 sequence, so every
 * line is valid JSON whatever was sent); in text as \xHH for '"', '\\', blanks in fields and
 * the same bytes. A line longer than len is cut at a field boundary and still valid (fields
 * shortened, "truncated":true in JSON). Returns the length. Pure: unit-tested.
 */
size_t accesslog_line(const struct accesslog_rec *r, int format, char *buf, size_t len);

/* where workers write lines (the internal pipe's write end); -1: no access log ("off").
 * Prefer accesslog_write, which counts what it drops. */
extern int g_access_fd;

/* accesslog_write - queue one line (at most ACCESSLOG_LINE_MAX bytes) without blocking; a line
 * that does not fit now is dropped and counted. Any thread. */
void accesslog_write(const char *line, size_t len);

/* accesslog_dropped - lines dropped so far (the target could not keep up) */
uint64_t accesslog_dropped(void);

/* accesslog_format - the format of the current configuration's access log */
int accesslog_format(void);

/*
 * accesslog_open - at start, while root: the internal pipe and the target cf->access_log
 * ("stderr" or "": a copy of stderr; "off": none; "syslog[:FACILITY]"). Returns 0 or -errno
 * (nothing left open).
 */
int accesslog_open(const struct config *cf);

/* accesslog_start - the thread that moves lines to the target; after the privilege drop
 * (capabilities and no_new_privs are per thread) and before the workers. 0 or -errno. */
int accesslog_start(void);

/* accesslog_file_fd - the target's descriptor when it is a file (privdrop gives it to the
 * user), else -1 */
int accesslog_file_fd(void);

/*
 * accesslog_reopen - reload, SIGUSR1, `splicectl log reopen`: open ncf's target again by name
 * and put it under the number the thread writes to (dup2 is atomic: no line is lost or torn).
 * Returns 0, or -1 with the reason written to errf (logged when errf is NULL); the old target
 * then stays. Main thread.
 */
int accesslog_reopen(const struct config *ncf, FILE *errf);

/* accesslog_refused - the line of a connection from peer that listener l refused before it
 * carried a request (`refused=REASON`, status 0). Any worker. */
void accesslog_refused(const struct listener *l, const struct sockaddr_storage *peer,
		       const char *reason);

/* accesslog_close - at exit, after the workers stopped: what is queued goes out (for up to a
 * second when the target does not take it), then the thread ends */
void accesslog_close(void);

#endif
