// SPDX-License-Identifier: MIT
/*
 * transport.c - bytes in and out of one socket of a connection: plain TCP (in the kernel path's
 * maps or not), TLS through OpenSSL, and kTLS sockets that splice(2) records the kernel
 * encrypts or decrypts.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "conn-t.h"
#include "kernel_path.h"
#include "log.h"
#include "tls.h"
#include "transport.h"

/*
 * Read readiness of a plain socket outside the maps: after EAGAIN, or a short read, its receive
 * queue is empty, and with edge-triggered epoll the next byte brings an event (conn_event clears
 * the mark), so reading before that would only cost an EAGAIN. Not for TLS (OpenSSL buffers
 * records) or sockets in the maps (the verdict passes bytes up on its own schedule). A short read
 * does not mark a socket whose hang-up was already reported: that edge is spent, EOF must be read.
 */
int plain_side(const struct kside *s)
{
	return !s->ssl && !kin(s);
}

/* returns bytes read (> 0), 0 on EOF, -EAGAIN, or -errno */
static ssize_t recv_some(int fd, char *p, size_t n)
{
	ssize_t r = recv(fd, p, n, MSG_DONTWAIT);

	if (r == -1)
		return errno == EINTR ? -EAGAIN : -errno;
	return r;
}

/* read from a side; rule 3: on a spliced socket, EOF counts only once every passed byte
 * was read. Returns > 0, 0 on EOF, -EAGAIN or -errno. */
ssize_t side_recv(struct conn *c, struct kside *s, char *p, size_t n)
{
	ssize_t r;

	if (s->rd_empty && plain_side(s))
		return -EAGAIN;
	r = s->ssl ? tls_read(s->ssl, p, n) : recv_some(*s->fd, p, n);
	if ((r > 0 || r == -EAGAIN) && s->ktls_tx && tls_key_update_pending(s->ssl)) {
		/* OpenSSL would answer with its own KeyUpdate and switch keys under the
		 * kernel, which keeps encrypting with the old one: close before any write */
		log_info("%s: TLS KeyUpdate requested by the client; kTLS TX cannot rekey on "
			 "this kernel: closing",
			 c->peer);
		__atomic_fetch_add(&g_tls_counters.ktls_closed, 1, __ATOMIC_RELAXED);
		tls_close_notify(s->ssl);
		return -EPROTO;
	}
	if (r > 0) {
		uint32_t ev = s == &c->kc ? c->cev : c->uev;

		s->read += (uint64_t)r;
		if ((size_t)r < n && plain_side(s) && !(ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			s->rd_empty = 1;
		return r;
	}
	if (r == -EAGAIN && plain_side(s))
		s->rd_empty = 1;
	if (r == 0 && kin(s) && s->k.st->passed > s->read - s->base) {
		c->kpoll = 1;
		return -EAGAIN;
	}
	return r;
}

/* write to a side after rule 1; returns bytes written (> 0), 0 when blocked, -errno */
ssize_t side_send(struct conn *c, struct kside *s, const char *p, size_t n)
{
	ssize_t r;

	if (s->ssl) {
		r = tls_write(s->ssl, p, n);
		if (r > 0)
			s->written += (uint64_t)r;
		return r;
	}
	if (!kern_drained(c, s))
		return 0;
	r = send(*s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r == -1)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	s->written += (uint64_t)r;
	if (kin(s))
		s->k.st->user_in = s->written;
	return r;
}

int flush_buf(struct conn *c, struct kside *s, struct buf *b, int *progress)
{
	while (buf_len(b)) {
		ssize_t r = side_send(c, s, b->data + b->start, buf_len(b));

		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EAGAIN;
		buf_consume(b, (uint32_t)r);
		*progress = 1;
	}
	return 0;
}

/*
 * splice(2) reads the receive queue: only from sockets outside the maps (the verdict hands
 * passed bytes to recvmsg only); on a TLS side only when the kernel decrypts (kTLS RX) and
 * OpenSSL holds no bytes read ahead, else the bytes there are records, not payload.
 */
int splice_src_ok(const struct kside *s)
{
	if (kin(s))
		return 0;
	return !s->ssl || (s->ktls_rx && !tls_pending(s->ssl));
}

/* splice(2) into a TLS side only when the kernel encrypts (kTLS TX); the splice calls carry
 * no SPLICE_F_MORE, so the kernel never holds back the last record of a span */
int splice_dst_ok(const struct kside *s)
{
	return !s->ssl || s->ktls_tx;
}
