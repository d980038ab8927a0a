// SPDX-License-Identifier: MIT
/*
 * tls.c - OpenSSL server contexts for TLS listeners: one SSL_CTX per certificate, the first is
 * the default; the SNI callback moves a handshake to the context whose SAN names match.
 * Everything is validated when a loaded configuration is prepared (tls_prepare), which
 * `spliced -n` and a reload do, so broken certificates are caught before a reload swaps.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

#define MAX_NAMES 64

struct tls_counters g_tls_counters;
static int g_ktls; /* new client connections ask OpenSSL for kTLS (tls_ktls_init) */

struct tls_cert {
	SSL_CTX *ctx;
	char *names[MAX_NAMES]; /* SAN DNS names (or the CN when there is no SAN), lower case */
	unsigned nnames;
};

/*
 * Session ticket keys, generated in memory, shared by every certificate of a listener (a
 * ticket stays valid across SNI names and workers). keys[0] encrypts new tickets; the older
 * ones only decrypt, and a ticket they open is renewed. Rotation happens lazily when a ticket
 * is made or opened: after TICKET_KEYS rotation periods a ticket cannot be opened any more
 * and the client does a full handshake.
 */
#define TICKET_KEYS 2

struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	uint8_t valid;
};

struct tls_tickets {
	pthread_mutex_t lock;
	uint64_t rotate_ms;
	uint64_t born_ms; /* when keys[0] became current */
	struct ticket_key keys[TICKET_KEYS];
};

struct tls_server {
	struct tls_cert *certs;
	unsigned ncerts;
	struct tls_tickets tickets;
};

static int g_ex_tickets = -1; /* SSL_CTX ex_data index: the listener's struct tls_tickets */
static pthread_once_t g_ex_once = PTHREAD_ONCE_INIT;

static void ex_init(void)
{
	g_ex_tickets = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int ticket_key_new(struct ticket_key *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return -EIO;
	k->valid = 1;
	return 0;
}

/* rotate as many periods as went by (called with the lock held); -EIO when RAND failed */
static int tickets_rotate(struct tls_tickets *t, uint64_t now)
{
	uint64_t periods = (now - t->born_ms) / t->rotate_ms;

	if (!periods)
		return 0;
	if (periods >= TICKET_KEYS)
		periods = TICKET_KEYS;
	for (uint64_t p = 0; p < periods; p++) {
		memmove(&t->keys[1], &t->keys[0], sizeof(t->keys[0]) * (TICKET_KEYS - 1));
		if (ticket_key_new(&t->keys[0])) {
			t->keys[0].valid = 0;
			return -EIO;
		}
		/* a period that went by without a key: its slot is gone too */
		if (periods == TICKET_KEYS)
			for (unsigned i = 1; i < TICKET_KEYS; i++)
				t->keys[i].valid = 0;
	}
	t->born_ms += (now - t->born_ms) / t->rotate_ms * t->rotate_ms;
	return 0;
}

int tls_tickets_current(struct tls_server *ts, unsigned char name[16], uint64_t now_ms)
{
	struct tls_tickets *t = &ts->tickets;
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = tickets_rotate(t, now_ms);
	if (!rc && !t->keys[0].valid)
		rc = -EIO;
	if (!rc)
		memcpy(name, t->keys[0].name, 16);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int tls_tickets_find(struct tls_server *ts, const unsigned char name[16], uint64_t now_ms)
{
	struct tls_tickets *t = &ts->tickets;
	int found = -1;

	pthread_mutex_lock(&t->lock);
	tickets_rotate(t, now_ms);
	for (int i = 0; i < TICKET_KEYS; i++)
		if (t->keys[i].valid && !memcmp(t->keys[i].name, name, 16))
			found = i;
	pthread_mutex_unlock(&t->lock);
	return found;
}

/*
 * OpenSSL's ticket callback: enc = 1 makes a ticket with the current key (1 = done, -1 =
 * error); enc = 0 opens one: 0 = unknown key (full handshake), 1 = current key, 2 = an older
 * key (use it, and issue a new ticket), -1 = error.
 */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
		     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_tickets *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), g_ex_tickets);
	struct ticket_key k;
	OSSL_PARAM params[3];
	int idx = -1;

	if (!t)
		return enc ? -1 : 0;
	pthread_mutex_lock(&t->lock);
	if (tickets_rotate(t, mono_ms()) == 0) {
		if (enc) {
			idx = t->keys[0].valid ? 0 : -1;
		} else {
			for (int i = 0; i < TICKET_KEYS; i++)
				if (t->keys[i].valid && !memcmp(t->keys[i].name, name, 16))
					idx = i;
		}
		if (idx >= 0)
			k = t->keys[idx];
	}
	pthread_mutex_unlock(&t->lock);
	if (idx < 0)
		return enc ? -1 : 0;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (enc) {
		memcpy(name, k.name, 16);
		if (RAND_bytes(iv, 16) != 1 ||
		    !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) ||
		    !EVP_MAC_CTX_set_params(hctx, params))
			idx = -1;
		OPENSSL_cleanse(&k, sizeof(k));
		return idx < 0 ? -1 : 1;
	}
	if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) ||
	    !EVP_MAC_CTX_set_params(hctx, params))
		idx = -1;
	OPENSSL_cleanse(&k, sizeof(k));
	if (idx < 0)
		return -1;
	return idx == 0 ? 1 : 2;
}

static void terr(FILE *errf, const char *file, int line, int *errors, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void terr(FILE *errf, const char *file, int line, int *errors, const char *fmt, ...)
{
	va_list ap;

	(*errors)++;
	if (!errf)
		return;
	fprintf(errf, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(errf, fmt, ap);
	va_end(ap);
	fputc('\n', errf);
}

/* the most useful OpenSSL reason on the error queue, which is then cleared */
static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* conf.c stores `tls protocols` as the versions on the wire, which OpenSSL uses as well */
_Static_assert(TLS1_2_VERSION == CONF_TLS1_2 && TLS1_3_VERSION == CONF_TLS1_3,
	       "TLS protocol version numbers");

int tls_name_match(const char *pattern, const char *host)
{
	if (pattern[0] == '*' && pattern[1] == '.') {
		/* the wildcard covers exactly one leftmost label (RFC 6125 6.4.3) */
		const char *dot = strchr(host, '.');

		return dot && dot != host && !strcasecmp(dot, pattern + 1);
	}
	return !strcasecmp(pattern, host);
}

unsigned tls_cert_count(const struct listener *l)
{
	return l->tls ? l->tls->ncerts : 0;
}

unsigned tls_select_cert(const struct listener *l, const char *sni)
{
	const struct tls_server *ts = l->tls;
	int wild = -1;

	if (!ts || !sni || !*sni)
		return 0;
	for (unsigned i = 0; i < ts->ncerts; i++) {
		for (unsigned n = 0; n < ts->certs[i].nnames; n++) {
			const char *name = ts->certs[i].names[n];

			if (name[0] == '*') {
				if (wild < 0 && tls_name_match(name, sni))
					wild = (int)i;
			} else if (tls_name_match(name, sni)) {
				return i;
			}
		}
	}
	return wild < 0 ? 0 : (unsigned)wild;
}

/* SNI: switch the handshake to the certificate that serves the requested name */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct listener *l = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	unsigned idx = tls_select_cert(l, sni);

	(void)alert;
	if (idx)
		SSL_set_SSL_CTX(ssl, l->tls->certs[idx].ctx);
	return SSL_TLSEXT_ERR_OK;
}

/* ALPN: we speak http/1.1 only; without a match the handshake goes on without ALPN */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x08http/1.1";

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, ours, sizeof(ours) - 1, in,
				  inlen) == OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_NOACK;
}

static void add_name(struct tls_cert *c, const char *name, size_t len)
{
	char *n;

	if (c->nnames >= MAX_NAMES || !len)
		return;
	n = strndup(name, len);
	if (!n)
		return;
	for (char *p = n; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	c->names[c->nnames++] = n;
}

static void collect_names(struct tls_cert *c, X509 *x)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	if (sans) {
		for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

			if (g->type == GEN_DNS)
				add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
					 (size_t)ASN1_STRING_length(g->d.dNSName));
		}
		GENERAL_NAMES_free(sans);
	}
	if (!c->nnames) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
						  sizeof(cn));

		if (n > 0)
			add_name(c, cn, (size_t)n);
	}
}

/* build one certificate's context; returns the number of errors */
static int load_cert(struct listener *l, const struct tls_cert_conf *cc, struct tls_cert *c,
		     const char *file, FILE *errf)
{
	char why[256];
	int errors = 0;
	X509 *x;

	c->ctx = SSL_CTX_new(TLS_server_method());
	if (!c->ctx) {
		terr(errf, file, cc->line, &errors, "cannot create a TLS context: %s",
		     ssl_reason(why, sizeof(why)));
		return errors;
	}
	SSL_CTX_set_min_proto_version(c->ctx, l->tls_min ? l->tls_min : TLS1_2_VERSION);
	if (l->tls_max)
		SSL_CTX_set_max_proto_version(c->ctx, l->tls_max);
	if (l->tls_ciphers[0] && !SSL_CTX_set_cipher_list(c->ctx, l->tls_ciphers))
		terr(errf, file, l->tls_line, &errors, "no usable cipher in '%s'", l->tls_ciphers);
	SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(c->ctx,
			 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_tlsext_servername_callback(c->ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(c->ctx, l);
	SSL_CTX_set_alpn_select_cb(c->ctx, alpn_cb, NULL);
	/* resumption by tickets only (stateless: any worker can open them), keys rotated */
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_ex_data(c->ctx, g_ex_tickets, &l->tls->tickets);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(c->ctx, ticket_cb);
	/* no use keeping a ticket longer than its key can be found */
	SSL_CTX_set_timeout(c->ctx, (long)(l->tls->tickets.rotate_ms * TICKET_KEYS / 1000));
	/* name the usual mistakes plainly instead of OpenSSL's "system lib" */
	if (access(cc->cert, R_OK)) {
		terr(errf, file, cc->line, &errors, "cannot read certificate %s: %s", cc->cert,
		     strerror(errno));
		return errors;
	}
	if (access(cc->key, R_OK)) {
		terr(errf, file, cc->line, &errors, "cannot read key %s: %s", cc->key,
		     strerror(errno));
		return errors;
	}
	if (SSL_CTX_use_certificate_chain_file(c->ctx, cc->cert) != 1) {
		terr(errf, file, cc->line, &errors, "cannot load certificate %s: %s", cc->cert,
		     ssl_reason(why, sizeof(why)));
		return errors;
	}
	if (SSL_CTX_use_PrivateKey_file(c->ctx, cc->key, SSL_FILETYPE_PEM) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			terr(errf, file, cc->line, &errors, "key %s does not match certificate %s",
			     cc->key, cc->cert);
		} else {
			terr(errf, file, cc->line, &errors, "cannot load key %s: %s", cc->key,
			     ssl_reason(why, sizeof(why)));
		}
		return errors;
	}
	if (SSL_CTX_check_private_key(c->ctx) != 1) {
		terr(errf, file, cc->line, &errors, "key %s does not match certificate %s", cc->key,
		     cc->cert);
		ERR_clear_error();
		return errors;
	}
	x = SSL_CTX_get0_certificate(c->ctx);
	if (x && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		terr(errf, file, cc->line, &errors, "certificate %s has expired", cc->cert);
	else if (x && X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
		terr(errf, file, cc->line, &errors, "certificate %s is not valid yet", cc->cert);
	if (x)
		collect_names(c, x);
	return errors;
}

/* build the contexts of a listener that has `tls certificate` lines; the number of errors */
static int listener_prepare(struct listener *l, const char *file, FILE *errf)
{
	struct tls_server *ts;
	int errors = 0;

	if (!l->ncerts)
		return 0;
	ts = calloc(1, sizeof(*ts));
	if (ts)
		ts->certs = calloc(l->ncerts, sizeof(*ts->certs));
	if (!ts || !ts->certs) {
		free(ts);
		terr(errf, file, l->line, &errors, "out of memory");
		return errors;
	}
	l->tls = ts;
	ts->ncerts = l->ncerts;
	pthread_once(&g_ex_once, ex_init);
	pthread_mutex_init(&ts->tickets.lock, NULL);
	ts->tickets.rotate_ms = l->tls_ticket_rotate_ms ? l->tls_ticket_rotate_ms : 3600000u;
	ts->tickets.born_ms = mono_ms();
	if (ticket_key_new(&ts->tickets.keys[0]))
		terr(errf, file, l->line, &errors, "cannot make a session ticket key: %s",
		     ssl_reason((char[128]){0}, 128));
	for (unsigned i = 0; i < l->ncerts; i++)
		errors += load_cert(l, &l->certs[i], &ts->certs[i], file, errf);
	return errors;
}

static void listener_release(struct listener *l)
{
	struct tls_server *ts = l->tls;

	if (!ts)
		return;
	for (unsigned i = 0; i < ts->ncerts; i++) {
		SSL_CTX_free(ts->certs[i].ctx);
		for (unsigned n = 0; n < ts->certs[i].nnames; n++)
			free(ts->certs[i].names[n]);
	}
	free(ts->certs);
	pthread_mutex_destroy(&ts->tickets.lock);
	OPENSSL_cleanse(ts->tickets.keys, sizeof(ts->tickets.keys));
	free(ts);
	l->tls = NULL;
}

struct ssl_st *tls_conn_new(struct listener *l, int fd)
{
	SSL *ssl;

	if (!l->tls || !l->tls->ncerts)
		return NULL;
	ssl = SSL_new(l->tls->certs[0].ctx);
	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	/* a peer that closes without close_notify ends the stream like a TCP close: the body
	 * framing of HTTP already says whether the message was complete */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* per connection rather than per context: the decision is taken at start-up, after the
	 * contexts were built (the SNI switch to another context keeps the options) */
	if (g_ktls)
		SSL_set_options(ssl, SSL_OP_ENABLE_KTLS);
	SSL_set_accept_state(ssl);
	return ssl;
}

void tls_conn_free(struct ssl_st *ssl)
{
	SSL_free(ssl);
}

int tls_handshake(struct ssl_st *ssl, char *why, size_t whylen)
{
	int r = SSL_do_handshake(ssl);

	if (r == 1)
		return 1;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_SYSCALL:
		snprintf(why, whylen, "%s", errno ? strerror(errno) : "peer closed");
		ERR_clear_error();
		return -EPROTO;
	default:
		ssl_reason(why, whylen);
		return -EPROTO;
	}
}

ssize_t tls_read(struct ssl_st *ssl, void *buf, size_t len)
{
	int n = SSL_read(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

	if (n > 0)
		return n;
	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		return errno ? -errno : 0;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

ssize_t tls_write(struct ssl_st *ssl, const void *buf, size_t len)
{
	int n = SSL_write(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

	if (n > 0)
		return n;
	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	default:
		ERR_clear_error();
		return -EPIPE;
	}
}

void tls_close_notify(struct ssl_st *ssl)
{
	if (!(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) && SSL_is_init_finished(ssl)) {
		SSL_shutdown(ssl);
		ERR_clear_error();
	}
}

void tls_describe(struct ssl_st *ssl, char *buf, size_t len)
{
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	snprintf(buf, len, "%s %s sni=%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
		 sni ? sni : "-");
}

/* ---- kTLS ---- */

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

/*
 * The TLS ULP refuses a socket that is not connected with ENOTCONN, but only after the module
 * was found (and autoloaded): ENOTCONN on a fresh socket means "the kernel has kTLS",
 * ENOENT means it has no TLS ULP. Nothing is left behind on the socket.
 */
static int ktls_probe(char *why, size_t len)
{
	int fd, rc, err;

#ifdef OPENSSL_NO_KTLS
	snprintf(why, len, "OpenSSL built without kTLS");
	return 0;
#endif
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(why, len, "socket: %s", strerror(errno));
		return 0;
	}
	rc = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3);
	err = errno;
	close(fd);
	if (rc == 0 || err == ENOTCONN)
		return 1;
	if (err == ENOENT)
		snprintf(why, len, "the kernel has no TLS ULP");
	else
		snprintf(why, len, "TCP_ULP tls: %s", strerror(err));
	return 0;
}

/* a connected loopback pair: *c connected to *a; 0 or -errno (nothing left open) */
static int loopback_pair(int *c, int *a)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int l, err;

	*c = *a = -1;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l == -1)
		return -errno;
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) == -1)
		goto err_listen;
	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c == -1 || connect(*c, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		goto err_client;
	*a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*a == -1)
		goto err_client;
	close(l);
	return 0;

err_client:
	err = errno;
	if (*c >= 0)
		close(*c);
	*c = -1;
	close(l);
	return -err;
err_listen:
	err = errno;
	close(l);
	return -err;
}

void tls_ktls_probe_dirs(int *tx, int *rx, char *why, size_t len)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info = {.version = TLS_1_2_VERSION, .cipher_type = TLS_CIPHER_AES_GCM_128}};
	int c, a, rc;

	*tx = *rx = 0;
	why[0] = '\0';
	rc = loopback_pair(&c, &a);
	if (rc) {
		snprintf(why, len, "loopback connection: %s", strerror(-rc));
		return;
	}
	if (setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", 3) == -1) {
		if (errno == ENOENT)
			snprintf(why, len, "the kernel has no TLS ULP");
		else
			snprintf(why, len, "TCP_ULP tls: %s", strerror(errno));
	} else {
		/* the key is zeros: the socket only carries the probe and is closed unused */
		*tx = setsockopt(c, SOL_TLS, TLS_TX, &ci, sizeof(ci)) == 0;
		if (!*tx)
			snprintf(why, len, "TLS_TX: %s", strerror(errno));
		*rx = setsockopt(c, SOL_TLS, TLS_RX, &ci, sizeof(ci)) == 0;
		if (!*rx && !why[0])
			snprintf(why, len, "TLS_RX: %s", strerror(errno));
	}
	close(c);
	close(a);
}

const char *tls_library(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}

int tls_ktls_init(int disabled, char *why, size_t len)
{
	if (disabled) {
		snprintf(why, len, "--no-ktls");
		g_ktls = 0;
		return 0;
	}
	g_ktls = ktls_probe(why, len);
	return g_ktls;
}

void tls_ktls_state(struct ssl_st *ssl, int *tx, int *rx)
{
	*tx = *rx = 0;
#ifndef OPENSSL_NO_KTLS
	*tx = BIO_get_ktls_send(SSL_get_wbio(ssl)) ? 1 : 0;
	*rx = BIO_get_ktls_recv(SSL_get_rbio(ssl)) ? 1 : 0;
#else
	(void)ssl;
#endif
}

int tls_pending(struct ssl_st *ssl)
{
	return SSL_has_pending(ssl) || SSL_pending(ssl) > 0;
}

int tls_key_update_pending(struct ssl_st *ssl)
{
	return SSL_get_key_update_type(ssl) != SSL_KEY_UPDATE_NONE;
}

int tls_ktls_control(int fd, char *why, size_t whylen)
{
	unsigned char rec[16384 + 256];
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = {.iov_base = rec, .iov_len = sizeof(rec)};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int type = -1;
	ssize_t n;

	n = recvmsg(fd, &mh, MSG_DONTWAIT);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return -EAGAIN;
		snprintf(why, whylen, "%s",
			 errno == EBADMSG ? "record decryption failed" : strerror(errno));
		return -EPROTO;
	}
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
		type = *(unsigned char *)CMSG_DATA(cm);
	if (n == 0 && type < 0)
		return 0; /* TCP end of stream */
	switch (type) {
	case 21: /* alert: level, description */
		if (n >= 2 && rec[1] == 0)
			return 0; /* close_notify */
		snprintf(why, whylen, "alert %d/%d from the peer", n >= 1 ? rec[0] : -1,
			 n >= 2 ? rec[1] : -1);
		return -EPROTO;
	case 22: /* handshake: message type first */
		if (n >= 1 && rec[0] == 24)
			snprintf(why, whylen,
				 "TLS 1.3 KeyUpdate, which kTLS RX cannot follow here");
		else if (n >= 1 && rec[0] == 1)
			snprintf(why, whylen, "renegotiation attempt (ClientHello)");
		else
			snprintf(why, whylen, "handshake message %d after the handshake",
				 n >= 1 ? rec[0] : -1);
		return -EPROTO;
	case 23: /* data after all (a race with splice): cannot happen, bytes would be lost */
		snprintf(why, whylen, "application data on the control path");
		return -EPROTO;
	default:
		snprintf(why, whylen, "record type %d", type);
		return -EPROTO;
	}
}

struct tls_client {
	SSL_CTX *ctx;
};

/* the client context of a pool with `tls`; the number of errors */
static int pool_prepare(struct pool *p, const char *file, FILE *errf)
{
	char why[256];
	int errors = 0;

	if (!p->tls_on)
		return 0;
	p->tlsc = calloc(1, sizeof(*p->tlsc));
	if (!p->tlsc || !(p->tlsc->ctx = SSL_CTX_new(TLS_client_method()))) {
		terr(errf, file, p->tls_line, &errors, "cannot create a TLS context: %s",
		     ssl_reason(why, sizeof(why)));
		return errors;
	}
	SSL_CTX_set_min_proto_version(p->tlsc->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(p->tlsc->ctx, p->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (p->tls_ca[0]) {
		if (access(p->tls_ca, R_OK)) {
			terr(errf, file, p->tls_line, &errors, "cannot read CA file %s: %s",
			     p->tls_ca, strerror(errno));
		} else if (SSL_CTX_load_verify_locations(p->tlsc->ctx, p->tls_ca, NULL) != 1) {
			terr(errf, file, p->tls_line, &errors, "cannot load CA file %s: %s",
			     p->tls_ca, ssl_reason(why, sizeof(why)));
		}
	} else if (SSL_CTX_set_default_verify_paths(p->tlsc->ctx) != 1) {
		ERR_clear_error();
	}
	return errors;
}

static void pool_release(struct pool *p)
{
	if (!p->tlsc)
		return;
	SSL_CTX_free(p->tlsc->ctx);
	free(p->tlsc);
	p->tlsc = NULL;
}

static void release(struct config *cf)
{
	for (unsigned i = 0; i < cf->nlisteners; i++)
		listener_release(&cf->listeners[i]);
	for (unsigned i = 0; i < cf->npools; i++)
		pool_release(&cf->pools[i]);
}

int tls_prepare(struct config *cf, FILE *errf)
{
	int errors = 0;

	cf->release = release;
	for (unsigned i = 0; i < cf->nlisteners; i++)
		errors += listener_prepare(&cf->listeners[i], cf->file, errf);
	for (unsigned i = 0; i < cf->npools; i++)
		errors += pool_prepare(&cf->pools[i], cf->file, errf);
	return errors;
}

/* the host part of a "HOST:PORT" / "[V6]:PORT" server spec, for SNI and verification */
static void spec_host(const char *spec, char *out, size_t len)
{
	const char *end = strrchr(spec, ':');
	size_t n = end ? (size_t)(end - spec) : strlen(spec);

	if (spec[0] == '[' && n >= 2) {
		spec++;
		n -= 2;
	}
	if (n >= len)
		n = len - 1;
	memcpy(out, spec, n);
	out[n] = '\0';
}

int tls_upstream_name(const struct pool *p, const struct server *s, char *out, size_t len)
{
	struct in6_addr a6;

	if (p->tls_sni[0])
		snprintf(out, len, "%s", p->tls_sni);
	else
		spec_host(s->spec, out, len);
	return inet_pton(AF_INET, out, &a6) == 1 || inet_pton(AF_INET6, out, &a6) == 1;
}

struct ssl_st *tls_upstream_new(struct pool *p, struct server *s, int fd)
{
	char host[HOST_MAX_LEN];
	int is_ip;
	SSL *ssl;

	if (!p->tlsc)
		return NULL;
	ssl = SSL_new(p->tlsc->ctx);
	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1)
		goto err;
	is_ip = tls_upstream_name(p, s, host, sizeof(host));
	/* no SNI for literal addresses (RFC 6066 3) */
	if (!is_ip && !SSL_set_tlsext_host_name(ssl, host))
		goto err;
	if (p->tls_verify) {
		if (is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
			  : !SSL_set1_host(ssl, host))
			goto err;
	}
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_set_connect_state(ssl);
	return ssl;
err:
	ERR_clear_error();
	SSL_free(ssl);
	return NULL;
}
