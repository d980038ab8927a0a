/* SPDX-License-Identifier: MIT */
/*
 * tls.h - TLS termination: per-listener OpenSSL contexts, certificates chosen by SNI (exact and
 * wildcard SAN names, the first certificate is the default), protocol range, ciphers, ALPN.
 * Certificates and keys are validated when the configuration is loaded, so `spliced -n` reports
 * a missing file, a key that does not match, or an expired certificate.
 */
#ifndef SPLICED_TLS_H
#define SPLICED_TLS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "types.h"

/*
 * tls_listener_load - build the contexts of a listener that has `tls certificate` lines.
 * Every problem is written to errf as "FILE:LINE: message" (file = the config file).
 * Returns the number of errors (0: l->tls is ready; free with tls_listener_free).
 */
int tls_listener_load(struct listener *l, const char *file, FILE *errf);
void tls_listener_free(struct listener *l);

/*
 * tls_name_match - does a certificate name (exact, or "*.example.com" covering exactly one
 * leftmost label) match the SNI host name? Case-insensitive. 1 or 0.
 */
int tls_name_match(const char *pattern, const char *host);

/* tls_parse_protocol - "TLSv1.2" / "TLSv1.3" -> OpenSSL version constant, or 0. */
int tls_parse_protocol(const char *s);

/* tls_cert_names - how many names the listener's certificate idx answers for (tests). */
unsigned tls_cert_count(const struct listener *l);

/*
 * tls_select_cert - the index of the certificate serving host name `sni` (NULL or no match:
 * 0, the default). Exact names win over wildcards; among equals the first listed wins.
 */
unsigned tls_select_cert(const struct listener *l, const char *sni);

/*
 * tls_pool_load - the client context of a pool with `tls` (certificate verification on by
 * default against `ca FILE` or the system store). Errors as for listeners; 0 when ready.
 */
int tls_pool_load(struct pool *p, const char *file, FILE *errf);
void tls_pool_free(struct pool *p);

/* ---- per-connection TLS (userspace crypto) ---- */

struct ssl_st;

/* tls_conn_new - a server-side TLS object for an accepted socket of a TLS listener;
 * NULL on allocation failure. Free with tls_conn_free. */
struct ssl_st *tls_conn_new(struct listener *l, int fd);
void tls_conn_free(struct ssl_st *ssl);

/* tls_upstream_new - a client-side TLS object on a connected upstream socket of pool p, with
 * SNI (the pool's sni, else the server's host name) and host name verification when on. */
struct ssl_st *tls_upstream_new(struct pool *p, struct server *s, int fd);

/*
 * tls_handshake - drive a non-blocking handshake. Returns 1 when complete, 0 while it waits on
 * the socket, or -EPROTO (why holds OpenSSL's reason) when it failed.
 */
int tls_handshake(struct ssl_st *ssl, char *why, size_t whylen);

/* tls_read - > 0 bytes, 0 at the end (close_notify, or a TCP close without it), -EAGAIN, or
 * -ECONNRESET / -EPROTO. */
ssize_t tls_read(struct ssl_st *ssl, void *buf, size_t len);

/* tls_write - > 0 bytes written, 0 when blocked (retry with the same bytes), -EPIPE on error. */
ssize_t tls_write(struct ssl_st *ssl, const void *buf, size_t len);

/* tls_close_notify - send close_notify once (best effort, non-blocking). */
void tls_close_notify(struct ssl_st *ssl);

/* tls_describe - "TLSv1.3 TLS_AES_256_GCM_SHA384 sni=host" for logs. */
void tls_describe(struct ssl_st *ssl, char *buf, size_t len);

#endif
