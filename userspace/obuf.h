/* SPDX-License-Identifier: MIT */
/*
 * obuf.h - a growable output buffer for the main thread's small servers (control socket,
 * metrics endpoint): printf appends, JSON and Prometheus label string escaping, non-blocking
 * flush to a socket. An allocation failure or the size cap sets `failed` and drops later
 * appends; the caller reports it instead of sending a truncated answer as a whole one.
 */
#ifndef SPLICED_OBUF_H
#define SPLICED_OBUF_H

#include <stdarg.h>
#include <stddef.h>

struct obuf {
	char *p;
	size_t len; /* bytes held */
	size_t off; /* bytes already sent */
	size_t cap;
	size_t max; /* most bytes it may hold (0: 64 MiB) */
	int failed;
};

void ob_printf(struct obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ob_vprintf(struct obuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void ob_put(struct obuf *b, const char *s, size_t n);
/* a JSON string literal, quotes included (control characters as \u00XX) */
void ob_json_str(struct obuf *b, const char *s);
/* a Prometheus label value, without the quotes (\\, \", \n escaped) */
void ob_label(struct obuf *b, const char *s);
/* bytes not sent yet */
size_t ob_pending(const struct obuf *b);
/* send what is pending; 0 when all of it left, -EAGAIN when the socket is full, or -errno.
 * A fully sent buffer is emptied (its memory kept). */
int ob_flush(struct obuf *b, int fd);
void ob_reset(struct obuf *b);
void ob_free(struct obuf *b);

#endif
