/* SPDX-License-Identifier: MIT */
/*
 * sticky.h - session affinity (sticky.c): the key `balance hash` balances a request on (the
 * client address, a header, a cookie, the request-target, a query argument) and the pool's
 * `sticky cookie`, which names the server that answered so the client comes back to it while
 * it is usable. Part of the connection module.
 */
#ifndef SPLICED_STICKY_H
#define SPLICED_STICKY_H

#include <stddef.h>

#include "conn-t.h"

/*
 * sticky_request - for a request head m (bytes at b) routed to pool p: c->hash_key from the
 * pool's hash key (the client address when the request has no such header, cookie or query
 * argument), and c->sticky_srv, the server the request's sticky cookie names (NULL: none, or a
 * value that names no server of p).
 */
void sticky_request(struct conn *c, const struct pool *p, const struct http_msg *m, const char *b);

/*
 * sticky_response - the Set-Cookie value the response to c's request carries, written into
 * buf (len bytes), or NULL for none: with `sticky cookie`, when the server that answered is not
 * the one the request's cookie named (first visit, or the server was not usable and the
 * request moved). The value is the server's opaque cookie (struct server.cookie).
 */
const char *sticky_response(const struct conn *c, char *buf, size_t len);

#endif
