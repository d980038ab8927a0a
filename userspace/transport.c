// SPDX-License-Identifier: MIT
/*
 * transport.c - bytes in and out of one socket of a connection: plain TCP (in the kernel path's
 * maps or not), TLS through OpenSSL, and kTLS sockets that splice(2) records the kernel
 * encrypts or decrypts. The return convention is in transport.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "conn-t.h"
#include "kernel_path.h"
#include "log.h"
#include "tls.h"
#include "transport.h"

/* ---- plain TCP ---- */

/* the plain socket is outside the maps: its read readiness mark is exact (transport.h) */
static int plain_outside_maps(const struct side *s);

/* read from a plain socket; on a socket in the maps EOF counts only once every byte the verdict
 * passed up was read (rule 3, EOF after every passed byte:
 * docs/KERNEL_PATH.md#the-three-ordering-rules) */
static ssize_t plain_rcv_buf(struct conn *c, struct side *s, char *p, size_t n)
{
	ssize_t r;

	if (s->rd_empty && plain_outside_maps(s))
		return -EAGAIN;
	r = recv(*s->fd, p, n, MSG_DONTWAIT);
	if (r == -1)
		r = errno == EINTR ? -EAGAIN : -errno;
	if (r > 0) {
		uint32_t ev = s == &c->client ? c->cev : c->uev;

		s->read += (uint64_t)r;
		if ((size_t)r < n && plain_outside_maps(s) &&
		    !(ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			s->rd_empty = 1;
		return r;
	}
	if (r == -EAGAIN && plain_outside_maps(s))
		s->rd_empty = 1;
	if (r == 0 && side_in_maps(s) && s->bpf.st->passed > s->read - s->base) {
		c->kernel_wait = 1;
		return -EAGAIN;
	}
	return r;
}

/* write into a plain socket once the kernel's bytes into it went out first (rule 1, drain
 * before write: docs/KERNEL_PATH.md#the-three-ordering-rules) */
static ssize_t plain_snd_buf(struct conn *c, struct side *s, const char *p, size_t n)
{
	ssize_t r;

	if (!kernel_drained(c, s))
		return -EAGAIN;
	r = send(*s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r == -1)
		return (errno == EAGAIN || errno == EINTR) ? -EAGAIN : -errno;
	s->written += (uint64_t)r;
	if (side_in_maps(s))
		s->bpf.st->user_in = s->written;
	return r;
}

/* splice(2) out of a socket: its receive queue holds payload (plain, or kTLS RX) */
static ssize_t splice_rcv_pipe(struct side *s, int pipe_w, size_t n)
{
	ssize_t r = splice(*s->fd, NULL, pipe_w, NULL, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

	if (r == -1) {
		if (errno == EAGAIN)
			s->rd_empty = 1;
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	}
	s->read += (uint64_t)r;
	return r;
}

static ssize_t plain_rcv_pipe(struct conn *c, struct side *s, int pipe_w, size_t n)
{
	(void)c;
	return splice_rcv_pipe(s, pipe_w, n);
}

/* splice(2) into a socket (plain, or kTLS TX), once the kernel's bytes into it went out first
 * (drain before write, as plain_snd_buf). The calls carry no SPLICE_F_MORE, so kTLS never
 * holds back the last record of a span. */
static ssize_t splice_snd_pipe(struct conn *c, struct side *s, int pipe_r, size_t n)
{
	ssize_t r;

	if (!kernel_drained(c, s))
		return -EAGAIN;
	r = splice(pipe_r, NULL, *s->fd, NULL, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (r == -1)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	s->written += (uint64_t)r;
	if (side_in_maps(s))
		s->bpf.st->user_in = s->written;
	return r;
}

static const struct transport_ops plain_ops = {
	.name = "plain",
	.rcv_buf = plain_rcv_buf,
	.snd_buf = plain_snd_buf,
	.rcv_pipe = plain_rcv_pipe,
	.snd_pipe = splice_snd_pipe,
};

static int plain_outside_maps(const struct side *s)
{
	return s->transport == &plain_ops && !side_in_maps(s);
}

/* ---- TLS: OpenSSL does the record crypto (all of it, or the direction kTLS did not take) ---- */

static ssize_t tls_rcv_buf(struct conn *c, struct side *s, char *p, size_t n)
{
	ssize_t r = tls_read(s->ssl, p, n);

	(void)c;
	if (r > 0)
		s->read += (uint64_t)r;
	return r;
}

static ssize_t tls_snd_buf(struct conn *c, struct side *s, const char *p, size_t n)
{
	ssize_t r = tls_write(s->ssl, p, n);

	(void)c;
	if (r == 0)
		return -EAGAIN;
	if (r > 0)
		s->written += (uint64_t)r;
	return r;
}

/* ---- kTLS: the kernel took the transmit and/or receive crypto ---- */

/* read through OpenSSL on a socket whose transmit key the kernel holds: a KeyUpdate request
 * cannot be followed */
static ssize_t ktls_tx_rcv_buf(struct conn *c, struct side *s, char *p, size_t n)
{
	ssize_t r = tls_read(s->ssl, p, n);

	if ((r > 0 || r == -EAGAIN) && tls_key_update_pending(s->ssl)) {
		/* OpenSSL would answer with its own KeyUpdate and switch keys under the
		 * kernel, which keeps encrypting with the old one: close before any write */
		log_info("%s: TLS KeyUpdate requested by the client; kTLS TX cannot rekey on "
			 "this kernel: closing",
			 c->peer);
		__atomic_fetch_add(&g_tls_counters.ktls_closed, 1, __ATOMIC_RELAXED);
		tls_close_notify(s->ssl);
		return -EPROTO;
	}
	if (r > 0)
		s->read += (uint64_t)r;
	return r;
}

/*
 * splice(2) out of a kTLS RX socket. When it fails with EINVAL the next record is not data:
 * read it (close_notify ends the stream; anything else closes: a kernel-owned receive key
 * cannot follow a KeyUpdate or renegotiation). EBADMSG: a record failed to decrypt.
 */
static ssize_t ktls_rcv_pipe(struct conn *c, struct side *s, int pipe_w, size_t n)
{
	ssize_t r = splice_rcv_pipe(s, pipe_w, n);
	char why[128];
	int rc;

	if (r >= 0 || r == -EAGAIN)
		return r;
	if (r == -EBADMSG) {
		log_info("%s: TLS record decryption failed (kTLS): closing", c->peer);
		return r;
	}
	if (r != -EINVAL) {
		log_debug("%s: splice from kTLS socket: %s", c->peer, strerror((int)-r));
		return r;
	}
	rc = tls_ktls_control(*s->fd, why, sizeof(why));
	if (rc == -EAGAIN)
		return -EAGAIN;
	if (rc == 0) {
		log_debug("%s: close_notify from the client (kTLS)", c->peer);
		return 0;
	}
	log_info("%s: %s on a kTLS connection: closing", c->peer, why);
	__atomic_fetch_add(&g_tls_counters.ktls_closed, 1, __ATOMIC_RELAXED);
	tls_close_notify(s->ssl);
	return -EPROTO;
}

/* the names say who does the record crypto (the access log's tls= field) */
static const struct transport_ops tls_ops = {
	.name = "userspace",
	.rcv_buf = tls_rcv_buf,
	.snd_buf = tls_snd_buf,
};

static const struct transport_ops ktls_tx_ops = {
	.name = "ktls-tx",
	.rcv_buf = ktls_tx_rcv_buf,
	.snd_buf = tls_snd_buf,
	.snd_pipe = splice_snd_pipe,
};

static const struct transport_ops ktls_rx_ops = {
	.name = "ktls-rx",
	.rcv_buf = tls_rcv_buf,
	.snd_buf = tls_snd_buf,
	.rcv_pipe = ktls_rcv_pipe,
};

static const struct transport_ops ktls_tx_rx_ops = {
	.name = "ktls-tx-rx",
	.rcv_buf = ktls_tx_rcv_buf,
	.snd_buf = tls_snd_buf,
	.rcv_pipe = ktls_rcv_pipe,
	.snd_pipe = splice_snd_pipe,
};

/* ---- choosing and using a transport ---- */

void transport_plain(struct side *s)
{
	s->ssl = NULL;
	s->transport = &plain_ops;
}

void transport_tls(struct side *s, struct ssl_st *ssl)
{
	s->ssl = ssl;
	s->transport = &tls_ops;
}

void transport_ktls(struct side *s, int tx, int rx)
{
	static const struct transport_ops *const by_dir[] = {&tls_ops, &ktls_tx_ops, &ktls_rx_ops,
							     &ktls_tx_rx_ops};

	s->transport = by_dir[(tx ? 1 : 0) | (rx ? 2 : 0)];
}

void transport_free(struct side *s)
{
	if (s->ssl)
		tls_conn_free(s->ssl);
	transport_plain(s);
}

void transport_close_notify(struct side *s)
{
	if (s->ssl)
		tls_close_notify(s->ssl);
}

int transport_flush(struct conn *c, struct side *s, struct buf *b, int *progress)
{
	while (buf_len(b)) {
		ssize_t r = transport_send(c, s, b->data + b->start, buf_len(b));

		if (r < 0)
			return (int)r;
		buf_consume(b, (uint32_t)r);
		*progress = 1;
	}
	return 0;
}

int transport_pending(const struct side *s)
{
	return s->ssl && tls_pending(s->ssl);
}

/*
 * splice(2) reads the receive queue: only from sockets outside the maps (the verdict hands
 * passed bytes to recvmsg only); on a kTLS RX socket only while OpenSSL holds no bytes read
 * ahead (the handshake may have read past its end).
 */
int transport_rcv_pipe_ok(const struct side *s)
{
	return s->transport->rcv_pipe && !side_in_maps(s) && !transport_pending(s);
}

int transport_snd_pipe_ok(const struct side *s)
{
	return s->transport->snd_pipe != NULL;
}

int transport_rd_empty(const struct side *s)
{
	return s->rd_empty && plain_outside_maps(s);
}

void transport_set_rd_empty(struct side *s)
{
	if (plain_outside_maps(s))
		s->rd_empty = 1;
}
