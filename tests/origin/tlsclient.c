// SPDX-License-Identifier: MIT
/*
 * tlsclient.c - a TLS test client that does what curl and python's ssl cannot: send a TLS 1.3
 * KeyUpdate (or a close_notify) in the middle of a transfer.
 *
 *   tlsclient HOST PORT SNI CAFILE [--tls 1.2|1.3] [--get PATH [--again]] [--put BYTES]
 *             [--event keyupdate|keyupdate-req|close-notify]
 *
 * --get PATH: GET with a Content-Length response; the event happens once half of the body
 * arrived; --again then sends a second GET /size/1k on the same connection (the server sees a
 * KeyUpdate sent during a download only when it reads the next request).
 * --put BYTES: PUT /upload of BYTES pseudo-random bytes; the event happens after half of them.
 * One line per request on stdout:
 *   "status=200 bytes=N sha256=HEX"              a complete response (the body's digest; for an
 *                                                upload the body is the origin's "HEX LEN")
 *   "sent=HEX LEN"                               (upload) digest and length of what was sent
 *   "closed after N body bytes: REASON"          the server closed or the connection broke
 * Blocking sockets with 20 s timeouts: every run ends in bounded time. Exit 0 unless setup
 * failed (2).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

enum event { EV_NONE, EV_KEYUPDATE, EV_KEYUPDATE_REQ, EV_CLOSE_NOTIFY };

static enum event ev;

static void hex(const unsigned char *md, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static const char *why(SSL *ssl, int r)
{
	static char buf[256];
	int e = SSL_get_error(ssl, r);

	if (e == SSL_ERROR_ZERO_RETURN)
		return "close_notify";
	if (e == SSL_ERROR_SYSCALL)
		return errno ? strerror(errno) : "TCP close";
	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	return buf;
}

/* the event, once: a KeyUpdate goes out with SSL_do_handshake (no data needed) */
static int do_event(SSL *ssl)
{
	switch (ev) {
	case EV_KEYUPDATE:
	case EV_KEYUPDATE_REQ:
		if (!SSL_key_update(ssl, ev == EV_KEYUPDATE_REQ ? SSL_KEY_UPDATE_REQUESTED
								: SSL_KEY_UPDATE_NOT_REQUESTED) ||
		    SSL_do_handshake(ssl) != 1) {
			fprintf(stderr, "key update failed\n");
			return -1;
		}
		fprintf(stderr, "event: key update sent\n");
		return 0;
	case EV_CLOSE_NOTIFY:
		SSL_shutdown(ssl);
		fprintf(stderr, "event: close_notify sent\n");
		return 0;
	default:
		return 0;
	}
}

/* read one response; prints its line; 0 when complete, -1 when the connection ended */
static int response(SSL *ssl, int event_at_half)
{
	static char buf[65536];
	char small[256] = "";
	size_t have = 0, hlen = 0;
	unsigned long long clen = 0, got = 0;
	int status = 0, done_event = !event_at_half;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen;
	char mdhex[2 * EVP_MAX_MD_SIZE + 1];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *end;
	int r;

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (;;) {
		r = SSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have));
		if (r <= 0) {
			printf("closed after 0 body bytes: %s\n", why(ssl, r));
			EVP_MD_CTX_free(ctx);
			return -1;
		}
		have += (size_t)r;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end)
			break;
		if (have == sizeof(buf) - 1) {
			printf("closed after 0 body bytes: head too long\n");
			EVP_MD_CTX_free(ctx);
			return -1;
		}
	}
	hlen = (size_t)(end + 4 - buf);
	sscanf(buf, "HTTP/1.%*d %d", &status);
	{
		char *cl = strcasestr(buf, "\r\ncontent-length:");

		if (cl && cl < end)
			clen = strtoull(cl + 17, NULL, 10);
	}
	got = have - hlen;
	EVP_DigestUpdate(ctx, buf + hlen, got);
	memcpy(small, buf + hlen, got < sizeof(small) ? got : sizeof(small));
	while (got < clen) {
		if (!done_event && got >= clen / 2) {
			done_event = 1;
			if (do_event(ssl))
				break;
		}
		r = SSL_read(ssl, buf, sizeof(buf));
		if (r <= 0) {
			printf("closed after %llu body bytes: %s\n", got, why(ssl, r));
			EVP_MD_CTX_free(ctx);
			return -1;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		if (got < sizeof(small))
			memcpy(small + got, buf,
			       (size_t)r < sizeof(small) - got ? (size_t)r : sizeof(small) - got);
		got += (unsigned long long)r;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	hex(md, mdlen, mdhex);
	if (got < 200)
		printf("status=%d bytes=%llu body=%.*s\n", status, got, (int)strcspn(small, "\n"),
		       small);
	else
		printf("status=%d bytes=%llu sha256=%s\n", status, got, mdhex);
	return 0;
}

static int put(SSL *ssl, const char *sni, unsigned long long n)
{
	static unsigned char chunk[65536];
	char head[512];
	unsigned long long sent = 0;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen;
	char mdhex[2 * EVP_MAX_MD_SIZE + 1];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int done_event = 0, r;

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	r = snprintf(head, sizeof(head),
		     "PUT /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %llu\r\n\r\n", sni, n);
	if (SSL_write(ssl, head, r) != r) {
		printf("closed after 0 body bytes: %s\n", why(ssl, -1));
		return -1;
	}
	while (sent < n) {
		size_t k = n - sent < sizeof(chunk) ? (size_t)(n - sent) : sizeof(chunk);

		if (!done_event && sent >= n / 2) {
			done_event = 1;
			if (do_event(ssl))
				break;
		}
		for (size_t i = 0; i < k; i += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(chunk + i, &x, 8);
		}
		r = SSL_write(ssl, chunk, (int)k);
		if (r <= 0) {
			printf("closed after %llu body bytes: %s\n", sent, why(ssl, r));
			EVP_MD_CTX_free(ctx);
			return -1;
		}
		EVP_DigestUpdate(ctx, chunk, (size_t)r);
		sent += (unsigned long long)r;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	hex(md, mdlen, mdhex);
	printf("sent=%s %llu\n", mdhex, sent);
	fflush(stdout);
	return response(ssl, 0);
}

int main(int argc, char **argv)
{
	const char *get = NULL;
	unsigned long long put_n = 0;
	int tls = 0, again = 0, fd, one = 1;
	struct timeval tv = {.tv_sec = 20};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	SSL_CTX *ctx;
	SSL *ssl;

	if (argc < 5) {
		fprintf(stderr, "usage: tlsclient HOST PORT SNI CAFILE [--tls 1.2|1.3] "
				"[--get PATH [--again]] [--put BYTES] "
				"[--event keyupdate|keyupdate-req|close-notify]\n");
		return 2;
	}
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--tls") && i + 1 < argc)
			tls = !strcmp(argv[++i], "1.2") ? TLS1_2_VERSION : TLS1_3_VERSION;
		else if (!strcmp(argv[i], "--get") && i + 1 < argc)
			get = argv[++i];
		else if (!strcmp(argv[i], "--again"))
			again = 1;
		else if (!strcmp(argv[i], "--put") && i + 1 < argc)
			put_n = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--event") && i + 1 < argc) {
			i++;
			ev = !strcmp(argv[i], "keyupdate")	 ? EV_KEYUPDATE
			     : !strcmp(argv[i], "keyupdate-req") ? EV_KEYUPDATE_REQ
			     : !strcmp(argv[i], "close-notify")	 ? EV_CLOSE_NOTIFY
								 : EV_NONE;
		} else {
			fprintf(stderr, "tlsclient: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[4], NULL) != 1)
		return 2;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (tls) {
		SSL_CTX_set_min_proto_version(ctx, tls);
		SSL_CTX_set_max_proto_version(ctx, tls);
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if (fd == -1 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("tlsclient: connect");
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, argv[3]);
	SSL_set1_host(ssl, argv[3]);
	if (SSL_connect(ssl) != 1) {
		fprintf(stderr, "tlsclient: handshake failed: %s\n", why(ssl, -1));
		return 2;
	}
	fprintf(stderr, "tlsclient: %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	if (put_n) {
		put(ssl, argv[3], put_n);
	} else if (get) {
		char head[512];
		int r = snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", get,
				 argv[3]);

		if (SSL_write(ssl, head, r) == r && response(ssl, 1) == 0 && again) {
			r = snprintf(head, sizeof(head),
				     "GET /size/1k HTTP/1.1\r\nHost: %s\r\n\r\n", argv[3]);
			if (SSL_write(ssl, head, r) != r)
				printf("closed after 0 body bytes: %s\n", why(ssl, -1));
			else
				response(ssl, 0);
		}
	}
	fflush(stdout);
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return 0;
}
