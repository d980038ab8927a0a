/* SPDX-License-Identifier: MIT */
/*
 * tls.h - TLS termination: per-listener OpenSSL contexts, certificates chosen by SNI (exact and
 * wildcard SAN names, the first certificate is the default), protocol range, ciphers, ALPN.
 * Certificates and keys are validated when a loaded configuration is prepared (tls_prepare), so
 * `spliced -n` reports a missing file, a key that does not match, or an expired certificate.
 */
#ifndef SPLICED_TLS_H
#define SPLICED_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "types.h"

/*
 * tls_prepare - the preparing step of a configuration conf_load() parsed: build the OpenSSL
 * contexts of every listener with `tls certificate` lines and of every pool with `tls`, which
 * reads and checks the certificate, key and CA files (as HAProxy prepares its bind lines after
 * parsing). Every problem is written to errf as "FILE:LINE: message" (FILE = cf->file).
 * Returns the number of errors: 0 when every context is ready. Whatever it built, after errors
 * too, belongs to cf: conf_free() releases it (cf->release).
 */
int tls_prepare(struct config *cf, FILE *errf);

/*
 * tls_name_match - does a certificate name (exact, or "*.example.com" covering exactly one
 * leftmost label) match the SNI host name? Case-insensitive. 1 or 0.
 */
int tls_name_match(const char *pattern, const char *host);

/* tls_cert_names - how many names the listener's certificate idx answers for (tests). */
unsigned tls_cert_count(const struct listener *l);

/*
 * tls_select_cert - the index of the certificate serving host name `sni` (NULL or no match:
 * 0, the default). Exact names win over wildcards; among equals the first listed wins.
 */
unsigned tls_select_cert(const struct listener *l, const char *sni);

/*
 * tls_tickets_find - which session ticket key of the listener has this name at now_ms
 * (CLOCK_MONOTONIC ms; rotates first): 0 the current one, > 0 an older one (tickets are
 * renewed), -1 none (the client does a full handshake). For tests.
 */
struct tls_server;
int tls_tickets_find(struct tls_server *ts, const unsigned char name[16], uint64_t now_ms);
/* tls_tickets_current - the name of the key new tickets get at now_ms; 0 or -EIO. */
int tls_tickets_current(struct tls_server *ts, unsigned char name[16], uint64_t now_ms);

/* ---- per-connection TLS (userspace crypto) ---- */

struct ssl_st;

/* tls_conn_new - a server-side TLS object for an accepted socket of a TLS listener;
 * NULL on allocation failure. Free with tls_conn_free. */
struct ssl_st *tls_conn_new(struct listener *l, int fd);
void tls_conn_free(struct ssl_st *ssl);

/*
 * tls_upstream_name - the name the upstream TLS of pool p checks on server s (the pool's sni,
 * else the host part of the server's address spec), for SNI and verification; returns 1 when
 * it is an address literal (no SNI then, and the certificate must name the address).
 */
int tls_upstream_name(const struct pool *p, const struct server *s, char *out, size_t len);

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

/* ---- kTLS (record crypto in the kernel) ---- */

/*
 * tls_ktls_init - probe whether this kernel (TLS ULP) and this OpenSSL (KTLS build) can take
 * the record crypto and decide whether new client connections ask OpenSSL for it (never when
 * `disabled`, i.e. --no-ktls). Returns 1 when kTLS will be tried, else 0 with the reason in
 * why. Call once before the workers start; the caller logs the result.
 */
int tls_ktls_init(int disabled, char *why, size_t len);

/*
 * tls_ktls_probe_dirs - for `spliced -V`: does this kernel take the transmit (*tx) and the
 * receive (*rx) record crypto of a TLS 1.2 AES-GCM-128 session? Probed on a loopback TCP
 * connection made for it (nothing is sent). 1 or 0 each; why says what failed, or is "".
 */
void tls_ktls_probe_dirs(int *tx, int *rx, char *why, size_t len);

/* tls_library - the OpenSSL this process runs with ("OpenSSL 3.0.17 1 Jul 2025") */
const char *tls_library(void);

/*
 * tls_ktls_state - after a completed handshake: did the kernel really take the transmit
 * and/or receive crypto? (OpenSSL falls back to userspace crypto silently.)
 */
void tls_ktls_state(struct ssl_st *ssl, int *tx, int *rx);

/* tls_pending - 1 when OpenSSL holds received bytes (decrypted or not) that the socket no
 * longer has: the next bytes must come from tls_read, not from splice(2). */
int tls_pending(struct ssl_st *ssl);

/*
 * tls_ktls_control - the next record on a kTLS RX socket is not application data (splice(2)
 * failed with EINVAL): read it with recvmsg() and TLS_GET_RECORD_TYPE. Returns 0 for a
 * close_notify (the end of the stream), -EAGAIN when nothing complete is there yet, or
 * -EPROTO for anything else (a fatal alert; a handshake record such as a TLS 1.3 KeyUpdate
 * or a renegotiation, which a kernel-owned receive key cannot follow): why says which.
 */
int tls_ktls_control(int fd, char *why, size_t whylen);

/*
 * tls_key_update_pending - the peer asked for a TLS 1.3 KeyUpdate that OpenSSL will answer
 * with our next write; with kTLS TX the kernel cannot change its key (Linux < 6.14, and no
 * OpenSSL 3.0 support at all), so the caller must close instead of writing.
 */
int tls_key_update_pending(struct ssl_st *ssl);

/* counters of client-side TLS connections since start (atomics; for logs and tests) */
struct tls_counters {
	unsigned long long handshakes;	/* completed client handshakes */
	unsigned long long ktls_tx;	/* ... where the kernel took the transmit crypto */
	unsigned long long ktls_rx;	/* ... where the kernel took the receive crypto */
	unsigned long long ktls_closed; /* closed because of a record kTLS could not follow */
};
extern struct tls_counters g_tls_counters;

#endif
