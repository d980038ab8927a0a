/* SPDX-License-Identifier: MIT */
/*
 * http-i.h - private to the HTTP module (http.c: parsing and normalization, http_rewrite.c:
 * head rewriting): the lexical helpers both use (RFC 9110 tokens, lists, case-insensitive
 * comparison of spans). ASCII only, no locale.
 */
#ifndef SPLICED_HTTP_I_H
#define SPLICED_HTTP_I_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"

static inline int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	switch (c) {
	case '!':
	case '#':
	case '$':
	case '%':
	case '&':
	case '\'':
	case '*':
	case '+':
	case '-':
	case '.':
	case '^':
	case '_':
	case '`':
	case '|':
	case '~':
		return 1;
	}
	return 0;
}

/* control characters that may never appear in a head (CR and LF are checked as pairs) */
static inline int is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static inline int is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static inline int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ASCII only: header names and tokens are compared without the locale */
static inline unsigned char to_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static inline int mem_ieq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (to_lower(a[i]) != to_lower(b[i]))
			return 0;
	return 1;
}

static inline int span_ieq(const char *buf, struct http_span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && mem_ieq(buf + s.off, lit, n);
}

static inline struct http_span mk_span(size_t off, size_t len)
{
	struct http_span s = {.off = (uint32_t)off, .len = (uint32_t)len};

	return s;
}

/*
 * Walk a comma-separated list (RFC 9110 5.6.1) starting at *pos in buf[..end). Stores the next
 * non-empty element, OWS-trimmed, in *el and returns 1; returns 0 at the end of the list. Empty
 * elements are skipped as the RFC requires of recipients.
 */
static inline int list_next(const char *buf, size_t *pos, size_t end, struct http_span *el)
{
	size_t i = *pos, s, e;

	while (i < end) {
		while (i < end && (is_ows(buf[i]) || buf[i] == ','))
			i++;
		if (i >= end)
			break;
		s = i;
		while (i < end && buf[i] != ',')
			i++;
		e = i;
		while (e > s && is_ows(buf[e - 1]))
			e--;
		*pos = i;
		*el = mk_span(s, e - s);
		return 1;
	}
	*pos = end;
	return 0;
}

static inline int span_is_token(const char *buf, struct http_span s)
{
	uint32_t i;

	if (!s.len)
		return 0;
	for (i = 0; i < s.len; i++)
		if (!is_tchar(buf[s.off + i]))
			return 0;
	return 1;
}

#endif
