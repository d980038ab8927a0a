/* SPDX-License-Identifier: MIT */
/*
 * transport.h - reading and writing one socket of a connection (transport.c).
 */
#ifndef SPLICED_TRANSPORT_H
#define SPLICED_TRANSPORT_H

#include <sys/types.h>

#include "conn-t.h"

int plain_side(const struct kside *s);

/* read from a side; rule 3: on a spliced socket, EOF counts only once every passed byte
 * was read. Returns > 0, 0 on EOF, -EAGAIN or -errno. */
ssize_t side_recv(struct conn *c, struct kside *s, char *p, size_t n);

/* write to a side after rule 1; returns bytes written (> 0), 0 when blocked, -errno */
ssize_t side_send(struct conn *c, struct kside *s, const char *p, size_t n);

/* flush_buf - write b into s until empty: 0, -EAGAIN (blocked) or -errno */
int flush_buf(struct conn *c, struct kside *s, struct buf *b, int *progress);

/* may bytes of s be spliced out of it / into it now? */
int splice_src_ok(const struct kside *s);
int splice_dst_ok(const struct kside *s);

#endif
