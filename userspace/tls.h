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

#endif
