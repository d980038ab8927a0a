/* SPDX-License-Identifier: MIT */
/*
 * transport.h - reading and writing one socket of a connection (transport.c), behind one small
 * ops table per kind of socket: plain TCP (in the kernel path's maps or not), TLS whose record
 * crypto OpenSSL does, and TLS whose record crypto the kernel took for one or both directions
 * (kTLS). Callers never ask which kind a socket is to move bytes: a socket that cannot splice(2)
 * says so (transport_rcv_pipe_ok / transport_snd_pipe_ok) and the caller copies instead.
 *
 * Every I/O function below returns the same way:
 *   > 0      bytes moved;
 *   0        end of stream (receiving only);
 *   -EAGAIN  would block: the socket's epoll edge is re-armed, or the connection waits on the
 *            kernel path (c->kernel_wait is set: it is looked at again within a millisecond);
 *   other -errno: the socket failed (-EPROTO: the TLS stream cannot go on); the caller closes.
 */
#ifndef SPLICED_TRANSPORT_H
#define SPLICED_TRANSPORT_H

#include <sys/types.h>

#include "conn-t.h"

struct transport_ops {
	const char *name; /* for logs: who does the record crypto ("plain" without TLS) */
	/* copy up to n received bytes into p */
	ssize_t (*rcv_buf)(struct conn *c, struct side *s, char *p, size_t n);
	/* send up to n bytes from p */
	ssize_t (*snd_buf)(struct conn *c, struct side *s, const char *p, size_t n);
	/* splice(2) up to n received bytes into the pipe pipe_w; NULL: never possible */
	ssize_t (*rcv_pipe)(struct conn *c, struct side *s, int pipe_w, size_t n);
	/* splice(2) up to n bytes from the pipe pipe_r into the socket; NULL: never possible */
	ssize_t (*snd_pipe)(struct conn *c, struct side *s, int pipe_r, size_t n);
};

/* transport_plain - s is a plain TCP socket (also: s's TLS object is gone) */
void transport_plain(struct side *s);

/* transport_tls - s speaks TLS through ssl, OpenSSL doing the record crypto (s owns ssl) */
void transport_tls(struct side *s, struct ssl_st *ssl);

/* transport_ktls - after the handshake: the kernel took the transmit (tx) and/or the receive
 * (rx) record crypto of s */
void transport_ktls(struct side *s, int tx, int rx);

/* transport_free - free s's TLS object, if any; s is plain again */
void transport_free(struct side *s);

/* transport_close_notify - end the stream at the TLS level (close_notify, best effort); nothing
 * on a plain socket */
void transport_close_notify(struct side *s);

static inline ssize_t transport_recv(struct conn *c, struct side *s, char *p, size_t n)
{
	return s->transport->rcv_buf(c, s, p, n);
}

static inline ssize_t transport_send(struct conn *c, struct side *s, const char *p, size_t n)
{
	return s->transport->snd_buf(c, s, p, n);
}

/* transport_flush - send b into s until it is empty: 0, -EAGAIN or -errno; *progress is set
 * when a byte went out */
int transport_flush(struct conn *c, struct side *s, struct buf *b, int *progress);

/* transport_rcv_pipe_ok / transport_snd_pipe_ok - may bytes move with splice(2) out of s / into
 * s now? (If not, they are copied with transport_recv / transport_send.) */
int transport_rcv_pipe_ok(const struct side *s);
int transport_snd_pipe_ok(const struct side *s);

/* transport_rcv_pipe / transport_snd_pipe - only where the _ok function above said yes */
static inline ssize_t transport_rcv_pipe(struct conn *c, struct side *s, int pipe_w, size_t n)
{
	return s->transport->rcv_pipe(c, s, pipe_w, n);
}

static inline ssize_t transport_snd_pipe(struct conn *c, struct side *s, int pipe_r, size_t n)
{
	return s->transport->snd_pipe(c, s, pipe_r, n);
}

/* transport_pending - 1 when the transport holds received bytes the socket no longer has
 * (OpenSSL read ahead): a peek at the socket does not see them */
int transport_pending(const struct side *s);

/*
 * Read readiness of a plain socket outside the maps: after EAGAIN, or a short read, its receive
 * queue is empty, and with edge-triggered epoll the next byte brings an event (conn_event clears
 * the mark), so reading before that would only cost an EAGAIN. Not for TLS (OpenSSL buffers
 * records) or sockets in the maps (the verdict passes bytes up on its own schedule). A short read
 * does not mark a socket whose hang-up was already reported: that edge is spent, EOF must be read.
 * transport_rd_empty - 1 when s is known empty that way;
 * transport_set_rd_empty - s was found empty (a peek): remember it where the mark is exact.
 */
int transport_rd_empty(const struct side *s);
void transport_set_rd_empty(struct side *s);

#endif
