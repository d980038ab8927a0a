// SPDX-License-Identifier: MIT
/*
 * fuzz_conf.c - libFuzzer target for the configuration language, through the public conf.h API
 * only (conf_load_string, conf_free).
 *
 * Input: the configuration text (up to the first NUL byte; conf_load refuses a file holding
 * one). Properties checked (abort() on violation):
 *   - a text is refused (NULL) exactly when at least one message was written, and every
 *     message reads "fuzz.conf:LINE: text" with 1 <= LINE <= the number of lines + 1;
 *   - a loaded configuration is consistent: every route names a pool that exists (or none),
 *     every server points back to its pool and sits in cf->servers under its id;
 *   - loading the same text again gives the same verdict and the same messages.
 * Seeds: tests/fuzz/corpus/conf, every configuration in the tests (tests/fuzz/conf_seeds.py
 * writes them).
 *
 * Nesting depth: with -max_len=8192 (make fuzz, tests/run.sh) a text holds at most 4096 nested
 * blocks, far below the depth at which the parser's recursion exhausted the stack ("x{" repeated
 * 100000 times, a known bug fixed in the parser itself): the target does not look for it.
 *
 * The environment is made deterministic, harmless and fast: getaddrinfo() resolves numeric
 * addresses and "localhost" only (no DNS query per input), access() admits regular files
 * only, so a certificate path such as /dev/zero or a FIFO cannot hang OpenSSL's PEM reader,
 * and SSL_CTX_set_default_verify_paths() does not decode the system's CA bundle (300 ms per
 * pool with `tls on` under ASan: it would take most of the fuzzing time).
 */
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#define NAME "fuzz.conf"

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	struct addrinfo h = {0};

	if (!real)
		real = (int (*)(const char *, const char *, const struct addrinfo *,
				struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
	if (hints)
		h = *hints;
	if (node && strcmp(node, "localhost"))
		h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

int access(const char *path, int mode)
{
	static int (*real)(const char *, int);
	struct stat st;

	if (!real)
		real = (int (*)(const char *, int))dlsym(RTLD_NEXT, "access");
	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EACCES;
		return -1;
	}
	return real(path, mode);
}

struct ssl_ctx_st;
int SSL_CTX_set_default_verify_paths(struct ssl_ctx_st *ctx);

int SSL_CTX_set_default_verify_paths(struct ssl_ctx_st *ctx)
{
	(void)ctx;
	return 1;
}

/* load text; the messages land in *msgs (caller frees) */
static struct config *load(const char *text, char **msgs, size_t *len)
{
	FILE *f = open_memstream(msgs, len);
	struct config *cf;

	CHECK(f);
	cf = conf_load_string(NAME, text, f);
	CHECK(fclose(f) == 0);
	return cf;
}

static void check_messages(const char *msgs, size_t len, int lines)
{
	const char *p = msgs, *end = msgs + len;

	CHECK(len == 0 || msgs[len - 1] == '\n');
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		char *q;
		long line;

		CHECK(eol);
		CHECK(!strncmp(p, NAME ":", sizeof(NAME)));
		line = strtol(p + sizeof(NAME), &q, 10);
		CHECK(q > p + sizeof(NAME) && q < eol && *q == ':');
		CHECK(line >= 1 && line <= lines + 1);
		p = eol + 1;
	}
}

static void check_config(struct config *cf)
{
	unsigned nservers = 0;

	CHECK(cf->nlisteners > 0);
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		const struct listener *l = &cf->listeners[i];

		for (unsigned r = 0; r < l->nroutes; r++) {
			const struct route *rt = &l->routes[r];

			if (rt->pool_name[0])
				CHECK(rt->pool && conf_find_pool(cf, rt->pool_name) == rt->pool);
		}
	}
	for (unsigned i = 0; i < cf->npools; i++) {
		const struct pool *p = &cf->pools[i];

		CHECK(p->lb_ready);
		for (unsigned s = 0; s < p->nservers; s++) {
			const struct server *sv = &p->servers[s];

			CHECK(sv->pool == p && sv->id < cf->nservers && cf->servers[sv->id] == sv);
		}
		nservers += p->nservers;
	}
	CHECK(nservers == cf->nservers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size);
	char *m1 = NULL, *m2 = NULL;
	size_t l1 = 0, l2 = 0;
	struct config *cf;
	int lines = 1, ok;

	CHECK(text);
	for (const char *p = text; *p; p++)
		lines += *p == '\n';

	cf = load(text, &m1, &l1);
	ok = cf != NULL;
	CHECK(ok == (l1 == 0));
	check_messages(m1, l1, lines);
	if (cf)
		check_config(cf);
	conf_free(cf);

	cf = load(text, &m2, &l2);
	CHECK((cf != NULL) == ok && l1 == l2 && !memcmp(m1, m2, l1));
	conf_free(cf);

	free(m1);
	free(m2);
	free(text);
	return 0;
}
