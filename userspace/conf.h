/* SPDX-License-Identifier: MIT */
/* conf.h - configuration language: parse, validate, resolve; errors as FILE:LINE: message. */
#ifndef SPLICED_CONF_H
#define SPLICED_CONF_H

#include <stdio.h>

#include "types.h"

/*
 * conf_load - parse and validate the file at path into a new config (text -> struct config).
 * Loading reads no other file and opens no socket or TLS context: the daemon prepares a loaded
 * config before it uses it (tls_prepare; listening sockets: worker.c), so the parser links
 * without OpenSSL. Every error is written to errf as "FILE:LINE: message" (all of them, not
 * just the first). Returns the config (owned by the caller, free with conf_free) or NULL when
 * any error was found.
 */
struct config *conf_load(const char *path, FILE *errf);

/* conf_load_string - same, from a string (unit tests); name is used in messages. */
struct config *conf_load_string(const char *name, const char *text, FILE *errf);

/* conf_free - free cf and whatever its preparing step built (cf->release); NULL is fine. */
void conf_free(struct config *cf);

/*
 * conf_ref, conf_unref - references to a loaded configuration: the daemon holds one on the
 * current configuration and every connection one on the configuration it runs under. Any
 * thread. The last conf_unref frees cf (conf_free).
 */
void conf_ref(struct config *cf);
void conf_unref(struct config *cf);

/* conf_parse_duration - "250ms", "10s", "2m", "1h", bare number = seconds; 0 or -EINVAL. */
int conf_parse_duration(const char *s, uint32_t *ms);
/* conf_parse_size - "512", "16k", "1m", "1g" (binary units); 0 or -EINVAL. */
int conf_parse_size(const char *s, uint64_t *out);
/* conf_parse_addr - "1.2.3.4:80", "[::1]:80", "host:80" (resolved now); 0 or -errno/EAI. */
int conf_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, int passive,
		    char *why, size_t whylen);

/*
 * conf_dump_keywords - every keyword of the configuration tables (conf_keywords.c), one
 * "BLOCK WORD" line each ("global workers", "pool.server weight"), for `spliced
 * --dump-keywords` and the documentation checks.
 */
void conf_dump_keywords(FILE *f);

/*
 * conf_print - the configuration cf as text that conf_load accepts and that loads into the same
 * configuration: `global` and every pool with each keyword's value, defaults included (from the
 * keyword tables), the listener blocks as the file writes them. For `spliced -T` and
 * `splicectl show config`. Values set at run time (splicectl server set) are not in cf.
 */
void conf_print(FILE *f, const struct config *cf);

/* conf_find_pool - pool by name or NULL. */
struct pool *conf_find_pool(struct config *cf, const char *name);

#endif
