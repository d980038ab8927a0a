// SPDX-License-Identifier: MIT
/*
 * obuf.c - growable output buffer (see obuf.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "obuf.h"

#define OB_DEFAULT_MAX (64u << 20)

static int ob_reserve(struct obuf *b, size_t n)
{
	size_t max = b->max ? b->max : OB_DEFAULT_MAX, cap;
	char *p;

	if (b->failed)
		return -1;
	if (b->len + n <= b->cap)
		return 0;
	if (b->len + n > max) {
		b->failed = 1;
		return -1;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n)
		cap *= 2;
	if (cap > max)
		cap = max;
	p = realloc(b->p, cap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void ob_put(struct obuf *b, const char *s, size_t n)
{
	if (ob_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void ob_vprintf(struct obuf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	if (b->failed)
		return;
	va_copy(again, ap);
	n = vsnprintf(b->cap > b->len ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
	if (n >= 0 && (size_t)n >= b->cap - b->len && !ob_reserve(b, (size_t)n + 1))
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, again);
	va_end(again);
	if (n >= 0 && !b->failed && (size_t)n < b->cap - b->len)
		b->len += (size_t)n;
}

void ob_printf(struct obuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ob_vprintf(b, fmt, ap);
	va_end(ap);
}

void ob_json_str(struct obuf *b, const char *s)
{
	ob_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p};

			ob_put(b, e, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			ob_printf(b, "\\u%04x", *p);
		} else {
			ob_put(b, (const char *)p, 1);
		}
	}
	ob_put(b, "\"", 1);
}

void ob_label(struct obuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			ob_put(b, "\\\\", 2);
		else if (*s == '"')
			ob_put(b, "\\\"", 2);
		else if (*s == '\n')
			ob_put(b, "\\n", 2);
		else
			ob_put(b, s, 1);
	}
}

size_t ob_pending(const struct obuf *b)
{
	return b->len - b->off;
}

int ob_flush(struct obuf *b, int fd)
{
	while (b->off < b->len) {
		ssize_t r = send(fd, b->p + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r == -1) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -EAGAIN : -errno;
		}
		b->off += (size_t)r;
	}
	b->off = b->len = 0;
	return 0;
}

void ob_reset(struct obuf *b)
{
	b->len = b->off = 0;
	b->failed = 0;
}

void ob_free(struct obuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
