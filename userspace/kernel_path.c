// SPDX-License-Identifier: MIT
/*
 * kernel_path.c - the hand-off between the daemon and the BPF verdict for one connection: when a
 * span goes to the kernel, pairing the two sockets in the maps, opening a window for exactly the
 * rest of a body, counting what the verdict moved, and the drain checks that keep the daemon's
 * writes and a half-close behind every byte the kernel redirected (docs/KERNEL_PATH.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conn-t.h"
#include "conn.h"
#include "flow.h"
#include "kernel_path.h"
#include "log.h"
#include "splice.h"

static struct side *side_peer(struct conn *c, struct side *s)
{
	return s == &c->client ? &c->upstream : &c->client;
}

/* kernel-redirected bytes into s, from every peer it had */
static uint64_t kernel_bytes_into(struct conn *c, struct side *s)
{
	struct side *p = side_peer(c, s);
	uint64_t v = s->kern_in_closed;

	if (side_in_maps(p) && p->paired)
		v += p->bpf.st->kern_fwd - p->kern_base;
	return v;
}

/*
 * kernel_drained - every byte the kernel redirected into s has reached s's send queue
 * (tcpi_bytes_acked + SIOCOUTQ - SYN >= daemon writes + kernel writes). The daemon writes into
 * s only when this holds, so its bytes can never overtake redirected ones (rule 1, drain before
 * write: docs/KERNEL_PATH.md#the-three-ordering-rules).
 */
int kernel_drained(struct conn *c, struct side *s)
{
	uint64_t kern = kernel_bytes_into(c, s), sent;

	if (kern == s->verified)
		return 1;
	if (splice_tcp_sent(*s->fd, &sent))
		return 1; /* the socket is broken: the write reports it */
	if (sent - s->syn_adj >= s->written + kern) {
		s->verified = kern;
		return 1;
	}
	c->kernel_wait = 1;
	return 0;
}

/* copy a string into a fixed BPF map field, truncating */
static void str_copy(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	while (n + 1 < cap && src[n])
		n++;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* make sure the current client/upstream pair is in the maps; 0 or -errno */
int kernel_pair(struct conn *c)
{
	int rc;

	if (c->upstream.paired)
		return 0;
	if (c->kernel_failed || c->ufd < 0 || c->client.ssl || c->upstream.ssl)
		return -EOPNOTSUPP;
	/* insert only at a quiet point: bytes queued before insertion are passed up and must be
	 * copied with recv/send (a socket in the maps cannot splice), while on a quiet pair the
	 * window latches at once. (Insertion mid-stream is byte-exact too since the verdict cuts
	 * a partly read skb's head: kern_sockmap test 9.) Try again when the flow next asks. */
	if ((!side_in_maps(&c->client) && splice_queued(c->cfd)) || splice_queued(c->ufd))
		return -EAGAIN;
	rc = splice_insert(&c->client.bpf, c->cfd, &c->upstream.bpf, c->ufd, c->cf->splice_cap);
	if (rc) {
		/* stay on the userspace path for the rest of this connection */
		c->kernel_failed = 1;
		log_debug("%s: kernel path not used: %s", c->peer, strerror(-rc));
		return rc;
	}
	if (!c->client.paired) {
		c->client.base = c->client.read;
		c->client.paired = 1;
	}
	c->client.kern_base = c->client.bpf.st->kern_fwd;
	c->upstream.base = c->upstream.read;
	c->upstream.kern_base = 0;
	c->upstream.paired = 1;
	c->client.bpf.st->user_in = c->client.written;
	c->upstream.bpf.st->user_in = c->upstream.written;
	c->client.bpf.st->syn_adj = c->client.syn_adj;
	c->upstream.bpf.st->syn_adj = c->upstream.syn_adj;
	c->client.bpf.st->user_fwd = c->client.read - c->client.base;
	c->upstream.bpf.st->user_fwd = c->upstream.read - c->upstream.base;
	c->client.bpf.st->enabled = 1;
	c->upstream.bpf.st->enabled = 1;
	if (c->srv) {
		struct spliced_conn info;

		memset(&info, 0, sizeof(info));
		snprintf(info.client, sizeof(info.client), "%.39s:%u", c->peer,
			 (unsigned)c->peer_port);
		str_copy(info.upstream, sizeof(info.upstream), c->srv->spec);
		str_copy(info.pool, sizeof(info.pool), c->pool->name);
		str_copy(info.server, sizeof(info.server), c->srv->name);
		info.start_ns = c->start_ns;
		info.server_id = c->srv->id;
		info.flags = SPLICED_CONN_KERNEL | (c->st == CS_TUNNEL ? SPLICED_CONN_TUNNEL : 0);
		splice_conn_update(c->client.bpf.cookie, &info);
	}
	return 0;
}

/*
 * kernel_wanted - does this span go to the kernel? Tunnels always (splice auto and on); bodies
 * of known length and bodies that run until close when the listener says "splice on", or with
 * "splice auto" when at least splice_min_body bytes of them are left. Chunked bodies stay with
 * the daemon: their framing must be parsed; so do bodies that run until close re-framed as
 * chunked for the client (chunk_out): the verdict cannot insert the chunk-size lines. Once a connection's sockets are in the maps they
 * can no longer use splice(2) (passed bytes are copied with recv/send), and a body whose first
 * bytes arrived with its head starts on the passed path until the daemon catches up with the
 * stream (docs/KERNEL_PATH.md), so small bodies are cheaper on splice(2).
 */
int kernel_wanted(struct conn *c, struct flow *f)
{
	uint64_t min = c->cf->splice_min_body;

	if (!c->kernel_ok || c->kernel_failed)
		return 0;
	if (f->body == B_TUNNEL)
		return 1;
	if ((f->body != B_LENGTH && f->body != B_EOF) || f->chunk_out)
		return 0;
	if (c->kernel_all)
		return 1;
	if (min == SPLICE_MIN_BODY_OFF)
		return 0;
	return f->body == B_EOF || f->left >= min;
}

/* open a window for the rest of f's body: the daemon's own bytes are all written */
void kernel_open(struct conn *c, struct flow *f)
{
	struct spliced_sock *st = f->src->bpf.st;
	uint64_t kern = __atomic_load_n(&st->kern_fwd, __ATOMIC_ACQUIRE);
	/* the verdict's offsets count the bytes the kernel carried too: the daemon read only
	 * the passed ones. Every redirected byte lies before this point (no earlier window
	 * reached past it), so the window starts at passed bytes read + kernel bytes. */
	uint64_t off = f->src->read - f->src->base + kern;

	f->kernel_span = 1;
	c->paths |= CONN_PATH_KERNEL;
	f->kern_seen = kern;
	st->user_fwd = f->src->read - f->src->base;
	/* publish the end last: the verdict may run on another CPU right now */
	__atomic_store_n(&st->win_end, f->body == B_LENGTH ? off + f->left : SPLICED_WIN_ALL,
			 __ATOMIC_RELEASE);
	log_debug("%s: kernel window [%llu, %llu) seen %llu passed %llu kern %llu", c->peer,
		  (unsigned long long)off, (unsigned long long)st->win_end,
		  (unsigned long long)st->seen, (unsigned long long)st->passed,
		  (unsigned long long)st->kern_fwd);
	c->kernel_wait = 1;
}

/* bytes the verdict redirected since the last look count as moved body bytes */
void kernel_account(struct flow *f, int *progress)
{
	uint64_t k = __atomic_load_n(&f->src->bpf.st->kern_fwd, __ATOMIC_ACQUIRE);
	uint64_t d = k - f->kern_seen;

	if (!d)
		return;
	f->kern_seen = k;
	flow_account(f, d);
	f->kern_moved += d;
	*progress = 1;
}

void kernel_caught_up(struct flow *f)
{
	__atomic_store_n(&f->src->bpf.st->user_fwd, f->src->read - f->src->base, __ATOMIC_RELEASE);
}

void kernel_span_end(struct conn *c, struct flow *f)
{
	struct spliced_sock *st = f->src->bpf.st;

	if (!f->kernel_span)
		return;
	log_debug("%s: kernel span done: read %llu seen %llu passed %llu kern %llu user_fwd %llu "
		  "trims %llu",
		  c->peer, (unsigned long long)(f->src->read - f->src->base),
		  (unsigned long long)st->seen, (unsigned long long)st->passed,
		  (unsigned long long)st->kern_fwd, (unsigned long long)st->user_fwd,
		  (unsigned long long)st->trims);
	f->kernel_span = 0;
}

/* after EOF on a spliced source: has the verdict seen every byte, and did all of it reach
 * the destination's send queue? A half-close before that truncates the stream: the kernel may
 * still hold its last bytes (docs/KERNEL_PATH.md#sockmap-facts-the-design-rests-on) */
int kernel_src_drained(struct conn *c, struct flow *f)
{
	uint64_t received;

	if (!side_in_maps(f->src))
		return 1;
	if (splice_tcp_received(*f->src->fd, &received))
		return 1;
	/* tcpi_bytes_received counts the FIN */
	if (f->src->base + f->src->bpf.st->seen + 1 < received) {
		c->kernel_wait = 1;
		return 0;
	}
	return kernel_drained(c, f->dst);
}

void kernel_upstream_closing(struct conn *c)
{
	if (!c->upstream.paired)
		return;
	/* what this upstream's verdict moved into the client stays on the client's books (the
	 * daemon's next write into the client waits for it: drain before write,
	 * docs/KERNEL_PATH.md#the-three-ordering-rules), and the client's window closes:
	 * offsets only grow */
	c->client.kern_in_closed += c->upstream.bpf.st->kern_fwd - c->upstream.kern_base;
	if (side_in_maps(&c->client)) {
		__atomic_store_n(&c->client.bpf.st->win_end, 0, __ATOMIC_RELEASE);
		/* and what the client's verdict moved into this upstream is off the books of the
		 * next one: the drain check there must not wait for bytes it never gets */
		c->client.kern_base = c->client.bpf.st->kern_fwd;
	}
}

uint64_t kernel_tunnel_bytes(struct conn *c)
{
	uint64_t k = 0;

	if (c->req.kernel_span)
		k += c->req.src->bpf.st->kern_fwd;
	if (c->resp.kernel_span)
		k += c->resp.src->bpf.st->kern_fwd;
	return k;
}
