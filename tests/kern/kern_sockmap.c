// SPDX-License-Identifier: MIT
/*
 * kern_sockmap.c - kernel tier: the sockmap data path (userspace/splice.c and bpf/splice.bpf.c)
 * on real loopback TCP sockets, because sk_skb programs cannot be driven by BPF_PROG_TEST_RUN.
 *
 * Topology of every test: a "client" socket connected to an accepted proxy-side socket P1, and a
 * proxy-side socket P2 connected to an accepted "backend" socket. (P1, P2) go into the maps with
 * splice_insert() and get their windows the way the daemon opens them (kernel_path.c:
 * kernel_pair, kernel_open). The proxy side is a single-threaded pump that mirrors the daemon's
 * flow_run (flow.c): it forwards what the verdict passed up, writes into a socket only after
 * the kernel's bytes into it reached its send queue (rule 1, drain before write:
 * kernel_drained), treats recv() == 0 as EOF only when every passed byte was read (rule 3) and
 * propagates a FIN only once the source is drained (kernel_src_drained; a half-close before
 * that truncates the stream). The rules: docs/KERNEL_PATH.md#the-three-ordering-rules and
 * #sockmap-facts-the-design-rests-on. Client and backend are threads writing
 * and verifying a counter pattern (64-bit little-endian words, word k = seed << 40 | k, the same
 * as tests/kern/pattern.py) that locates any misplaced byte in the source stream.
 *
 * Tests: 1. 2 GiB each way at once, byte-exact, counters account for every byte; 2. the
 * in-flight cap bounds memory while the backend stalls; 3. bytes queued before insertion are
 * flushed by the SO_RCVLOWAT kick; 4. FIN and half-close both ways with the drain rule;
 * 5. insertion after FIN fails with EOPNOTSUPP and the pair works in userspace; 6. an RST is
 * seen within 1 s and release leaves no map entry; 7. 100,000 short insert/close cycles leak
 * no map entry and no fd; 8. (report only) a window opened on a socket whose head the proxy
 * read itself while the stream keeps coming: tcp_read_skb() hands the verdict whole skbs, so
 * the unread tail of a partly read skb comes back with its read head (repeated bytes);
 * 9. on one pair, thousands of spans each way alternate between the pump (reads and writes
 * them itself) and kernel windows of exact length (kernel_open for a Content-Length
 * body), sizes 1 B to 4 MiB so boundaries fall inside skbs, both directions at once, writers
 * streaming without pauses at boundaries (flat out, and paced below the pump's speed so that
 * windows latch onto the kernel); insertion happens mid-stream; every byte must arrive once,
 * in order, and be counted by exactly one path. KERN_SOCKMAP_SEED=N replays a span plan.
 *
 * TAP on stdout, measurements as "# " lines. Every loop is bounded in time and count.
 * KERN_SOCKMAP_SCALE=N divides the large transfer sizes by N and KERN_SOCKMAP_ONLY=SUBSTR runs
 * only the matching tests (quick runs while developing). Needs root and a kernel with sockmap;
 * otherwise every test is reported as skipped.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "log.h"
#include "splice.h"
#include "splice_abi.h"
#include "test.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

#define CAP (4 * MiB)		/* the daemon's default splice_cap */
#define CHUNK (256 * KiB)	/* client/backend send and recv size */
#define FLOW_BUF (256 * KiB)	/* the pump's buffer per direction (the daemon: buffer_size) */
#define IO_TIMEOUT_MS 100	/* SO_RCVTIMEO/SO_SNDTIMEO of client and backend sockets */
#define MAX_JUMPS 8		/* discontinuities recorded per stream */
#define SEED_UP 0x51ULL		/* client -> backend */
#define SEED_DOWN 0xd0ULL	/* backend -> client */
#define MAX_ITER 64		/* pump steps per direction per turn */
#define MAP_ITER_MAX (1u << 21) /* bound of a map key walk */

static struct config cf;
static int lfd_proxy = -1, lfd_backend = -1;
static int port_proxy, port_backend;
static uint64_t scale = 1;
static int fd_slot_of = -1, fd_targets = -1, fd_active = -1, fd_conns = -1;

/* ---- time, sockets ---- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int listen_lo(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(fd, 512) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1) {
		int err = -errno;

		close(fd);
		return err;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static int connect_lo(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* accept one connection within 2 s */
static int accept_one(int lfd)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	int fd;

	if (poll(&pfd, 1, 2000) != 1)
		return -ETIMEDOUT;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

static void set_io_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = IO_TIMEOUT_MS * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* client <-> P1 (accepted), P2 (connected) <-> backend */
struct quad {
	int c, p1, p2, b;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void quad_close(struct quad *q)
{
	close_fd(&q->c);
	close_fd(&q->p1);
	close_fd(&q->p2);
	close_fd(&q->b);
}

static int quad_open(struct quad *q)
{
	q->c = q->p1 = q->p2 = q->b = -1;
	if ((q->c = connect_lo(port_proxy)) < 0 || (q->p1 = accept_one(lfd_proxy)) < 0 ||
	    (q->p2 = connect_lo(port_backend)) < 0 || (q->b = accept_one(lfd_backend)) < 0) {
		int err = q->c < 0 ? q->c : q->p1 < 0 ? q->p1 : q->p2 < 0 ? q->p2 : q->b;

		quad_close(q);
		return err;
	}
	set_io_timeouts(q->c);
	set_io_timeouts(q->b);
	return 0;
}

static int inq(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCINQ, &n) == -1 ? -1 : n;
}

/* ---- the pattern ---- */

static inline uint64_t pat_word(uint64_t seed, uint64_t k)
{
	return seed << 40 | k;
}

static inline uint8_t pat_byte(uint64_t seed, uint64_t off)
{
	return (uint8_t)(pat_word(seed, off >> 3) >> (8 * (off & 7)));
}

/* the pattern bytes [off, off + n) */
static void pat_fill(uint8_t *p, uint64_t off, size_t n, uint64_t seed)
{
	size_t i = 0;

	for (; i < n && ((off + i) & 7); i++)
		p[i] = pat_byte(seed, off + i);
	for (; i + 8 <= n; i += 8) {
		uint64_t w = htole64(pat_word(seed, (off + i) >> 3));

		memcpy(p + i, &w, 8);
	}
	for (; i < n; i++)
		p[i] = pat_byte(seed, off + i);
}

/* index of the first byte of p that is not pattern byte off + i, or n */
static size_t pat_check(const uint8_t *p, size_t n, uint64_t off, uint64_t seed)
{
	size_t i = 0;

	for (; i < n && ((off + i) & 7); i++)
		if (p[i] != pat_byte(seed, off + i))
			return i;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		if (w != htole64(pat_word(seed, (off + i) >> 3)))
			break;
	}
	for (; i < n; i++)
		if (p[i] != pat_byte(seed, off + i))
			return i;
	return n;
}

/* which source offset do the bytes at p come from? 1 and *src when 24+ bytes agree */
static int pat_locate(const uint8_t *p, size_t n, uint64_t seed, uint64_t *src)
{
	for (size_t a = 0; a < 8 && a + 8 <= n; a++) {
		uint64_t w, k, s;

		memcpy(&w, p + a, 8);
		w = le64toh(w);
		if (w >> 40 != seed)
			continue;
		k = w & ((1ULL << 40) - 1);
		if (k * 8 < a)
			continue;
		s = k * 8 - a;
		if (pat_check(p, n < 24 ? n : 24, s, seed) == (n < 24 ? n : 24)) {
			*src = s;
			return 1;
		}
	}
	return 0;
}

/* incremental verifier: follows the stream through discontinuities and records them */
struct verify {
	uint64_t seed;
	int64_t delta; /* source offset - stream offset, changed by each discontinuity */
	unsigned jumps;
	unsigned garbage; /* mismatches that match no source offset */
	uint64_t jump_at[MAX_JUMPS];
	int64_t jump_by[MAX_JUMPS]; /* < 0: bytes repeated, > 0: bytes skipped (or reordered) */
};

static void verify_chunk(struct verify *v, const uint8_t *p, size_t n, uint64_t off)
{
	size_t i = 0;

	for (int guard = 0; i < n && guard < 64; guard++) {
		size_t bad =
			pat_check(p + i, n - i, (uint64_t)((int64_t)(off + i) + v->delta), v->seed);
		uint64_t src;

		if (bad == n - i)
			return;
		i += bad;
		if (!pat_locate(p + i, n - i, v->seed, &src)) {
			v->garbage++;
			return;
		}
		if (v->jumps < MAX_JUMPS) {
			v->jump_at[v->jumps] = off + i;
			v->jump_by[v->jumps] = (int64_t)src - (int64_t)(off + i) - v->delta;
		}
		v->jumps++;
		v->delta = (int64_t)src - (int64_t)(off + i);
	}
}

static int verify_clean(const struct verify *v)
{
	return !v->jumps && !v->garbage && !v->delta;
}

static void verify_report(const char *what, const struct verify *v)
{
	if (verify_clean(v))
		return;
	printf("#   %s: %u discontinuities, %u garbage runs\n", what, v->jumps, v->garbage);
	for (unsigned i = 0; i < v->jumps && i < MAX_JUMPS; i++)
		printf("#     at stream offset %llu: %s %lld bytes\n",
		       (unsigned long long)v->jump_at[i], v->jump_by[i] < 0 ? "repeats" : "skips",
		       (long long)llabs(v->jump_by[i]));
}

/* ---- client and backend threads ---- */

/* one client or backend thread; set shut, rst_at and delay_ms before xfer_start */
struct xfer {
	int fd;
	uint64_t seed;
	uint64_t total;	 /* writer: bytes to send; reader: bytes expected (report only) */
	int shut;	 /* writer: shutdown(SHUT_WR) after the last byte */
	uint64_t rst_at; /* writer: after this many bytes, close with SO_LINGER 0 (0: never) */
	uint64_t pace;	 /* writer: bytes per second on average, random send sizes (0: flat out) */
	unsigned delay_ms;
	double deadline;
	/* results */
	uint64_t done; /* bytes sent / received (atomic) */
	int eof;
	int err;
	int finished; /* atomic */
	double t_rst, t_end;
	struct verify v;
	pthread_t th;
	int started;
};

static void *writer_main(void *arg)
{
	struct xfer *x = arg;
	uint8_t *buf = malloc(CHUNK);
	uint64_t done = 0;

	if (!buf) {
		x->err = ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < x->delay_ms / 10 && now() < x->deadline; i++)
		sleep_ms(10);
	uint64_t rnd = x->seed * 0x9e3779b97f4a7c15ULL + 1;
	double t0 = now();

	while (done < x->total && now() < x->deadline) {
		size_t n = x->total - done < CHUNK ? (size_t)(x->total - done) : CHUNK;
		ssize_t r;

		if (x->pace) {
			/* sends of random size (skb boundaries anywhere), sleeping to keep the
			 * average rate: the proxy is faster than such a peer and catches up */
			double ahead = (double)done / (double)x->pace - (now() - t0);

			rnd ^= rnd << 13;
			rnd ^= rnd >> 7;
			rnd ^= rnd << 17;
			n = 1 + (size_t)(rnd % n);
			if (ahead > 0.001)
				sleep_ms((unsigned)(ahead * 1e3));
		}

		if (x->rst_at && done >= x->rst_at) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			double t = now();

			setsockopt(x->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			__atomic_store(&x->t_rst, &t, __ATOMIC_RELEASE);
			close(x->fd);
			x->fd = -1;
			break;
		}
		pat_fill(buf, done, n, x->seed);
		r = send(x->fd, buf, n, MSG_NOSIGNAL);
		if (r == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			x->err = errno;
			break;
		}
		done += (uint64_t)r;
		__atomic_store_n(&x->done, done, __ATOMIC_RELEASE);
	}
	if (done == x->total && x->shut && shutdown(x->fd, SHUT_WR) == -1)
		x->err = errno;
out:
	free(buf);
	x->t_end = now();
	__atomic_store_n(&x->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct xfer *x = arg;
	uint8_t *buf = malloc(CHUNK);
	uint64_t done = 0;

	if (!buf) {
		x->err = ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < x->delay_ms / 10 && now() < x->deadline; i++)
		sleep_ms(10);
	while (now() < x->deadline) {
		ssize_t r = recv(x->fd, buf, CHUNK, 0);

		if (r == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			x->err = errno;
			break;
		}
		if (r == 0) {
			x->eof = 1;
			break;
		}
		verify_chunk(&x->v, buf, (size_t)r, done);
		done += (uint64_t)r;
		__atomic_store_n(&x->done, done, __ATOMIC_RELEASE);
	}
out:
	free(buf);
	x->t_end = now();
	__atomic_store_n(&x->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void xfer_start(struct xfer *x, int fd, int reader, uint64_t seed, uint64_t total,
		       double deadline)
{
	x->fd = fd;
	x->seed = seed;
	x->v.seed = seed;
	x->total = total;
	x->deadline = deadline;
	x->started = !pthread_create(&x->th, NULL, reader ? reader_main : writer_main, x);
	if (!x->started) {
		x->err = EAGAIN;
		x->finished = 1;
	}
}

static int xfer_finished(struct xfer *x)
{
	return __atomic_load_n(&x->finished, __ATOMIC_ACQUIRE);
}

/* threads end by their own deadline: joining is bounded */
static void xfer_join(struct xfer *x)
{
	if (x->started)
		pthread_join(x->th, NULL);
	x->started = 0;
}

static uint64_t xfer_done(struct xfer *x)
{
	return __atomic_load_n(&x->done, __ATOMIC_ACQUIRE);
}

/* ---- the proxy side: the daemon's flow_run, single-threaded ---- */

/* one proxy-side socket (the daemon's struct side, conn-t.h) */
struct side {
	int fd;
	struct ksock k;
	uint64_t read, written, base, verified;
	uint32_t syn_adj; /* tcpi_bytes_acked counts the SYN (connected sockets) */
	struct side *peer;
};

/* one direction (the daemon's struct flow, conn-t.h) */
struct flow {
	struct side *src, *dst;
	uint8_t *buf;
	size_t start, end;
	int kspan, src_eof, dst_shut, done;
	int err; /* -errno of the first failure */
	int err_on_src;
	double t_err;
	/* measurements */
	uint64_t user_bytes;  /* bytes the pump forwarded */
	uint64_t rule1_waits; /* writes held back until the kernel's bytes were queued */
	uint64_t rule3_waits; /* recv() == 0 while passed bytes were unread */
	uint64_t fin_waits;   /* EOF seen, FIN held back until the source was drained */
	uint64_t bypass;      /* most bytes read beyond what the verdict had passed */
	uint64_t discard;     /* bytes to drop after recv(): already forwarded (RV_FIXUP) */
};

struct pump {
	struct side s1, s2; /* P1, P2 */
	struct flow up, down;
	int pollerr; /* POLLERR/POLLHUP seen on P1 */
	double t_pollerr;
	double max_idle; /* longest time pump_run went without moving a byte */
};

static int kin(const struct side *s)
{
	return s->k.slot != 0;
}

static uint64_t st_load(const __u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* kernel_drained (kernel_path.c): every byte the kernel redirected into s has reached s's send
 * queue */
static int kern_drained(struct side *s)
{
	uint64_t kern = kin(s->peer) ? st_load(&s->peer->k.st->kern_fwd) : 0, sent;

	if (kern == s->verified)
		return 1;
	if (splice_tcp_sent(s->fd, &sent))
		return 1; /* broken: the write reports it */
	if (sent - s->syn_adj >= s->written + kern) {
		s->verified = kern;
		return 1;
	}
	return 0;
}

/* kernel_src_drained (kernel_path.c): after EOF, has the verdict seen every byte and did it
 * all reach the destination's send queue? */
static int src_drained(struct flow *f)
{
	uint64_t received;

	if (!kin(f->src))
		return 1;
	if (splice_tcp_received(f->src->fd, &received))
		return 1;
	if (f->src->base + st_load(&f->src->k.st->seen) + 1 < received)
		return 0;
	return kern_drained(f->dst);
}

static void flow_fail(struct flow *f, int err, int on_src)
{
	f->err = err;
	f->err_on_src = on_src;
	f->t_err = now();
}

/* one turn of a direction; returns 1 when something moved */
/* a read that went beyond what the verdict passed: the largest overshoot is reported */
static void note_bypass(struct flow *f)
{
	if (kin(f->src)) {
		uint64_t passed = st_load(&f->src->k.st->passed);
		uint64_t mine = f->src->read - f->src->base;

		if (mine > passed && mine - passed > f->bypass)
			f->bypass = mine - passed;
	}
}

/* rule 3, EOF after every passed byte: recv() == 0 is EOF only once every passed byte was read
 * (docs/KERNEL_PATH.md#the-three-ordering-rules) */
static int eof_allowed(struct flow *f)
{
	if (kin(f->src) && st_load(&f->src->k.st->passed) > f->src->read - f->src->base) {
		f->rule3_waits++;
		return 0;
	}
	return 1;
}

static int flow_step(struct flow *f)
{
	int progress = 0;

	for (int i = 0; i < MAX_ITER && !f->done && !f->err; i++) {
		ssize_t r;

		if (f->end > f->start) {
			if (!kern_drained(f->dst)) {
				f->rule1_waits++;
				break;
			}
			r = send(f->dst->fd, f->buf + f->start, f->end - f->start,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (r == -1) {
				if (errno != EAGAIN && errno != EINTR)
					flow_fail(f, -errno, 0);
				break;
			}
			f->dst->written += (uint64_t)r;
			if (kin(f->dst))
				f->dst->k.st->user_in = f->dst->written;
			f->start += (size_t)r;
			f->user_bytes += (uint64_t)r;
			if (f->start == f->end)
				f->start = f->end = 0;
			progress = 1;
			continue;
		}
		/* everything the pump was given is written: the verdict may go on */
		if (f->kspan)
			__atomic_store_n(&f->src->k.st->user_fwd, f->src->read - f->src->base,
					 __ATOMIC_RELEASE);
		if (f->src_eof) {
			if (!src_drained(f)) {
				f->fin_waits++;
				break;
			}
			if (!f->dst_shut && shutdown(f->dst->fd, SHUT_WR) == -1 &&
			    errno != ENOTCONN)
				flow_fail(f, -errno, 0);
			f->dst_shut = 1;
			f->done = 1;
			progress = 1;
			break;
		}
		r = recv(f->src->fd, f->buf, FLOW_BUF, MSG_DONTWAIT);
		if (r > 0) {
			f->src->read += (uint64_t)r;
			f->end = (size_t)r;
			if (f->discard) {
				f->start =
					f->discard < (uint64_t)r ? (size_t)f->discard : (size_t)r;
				f->discard -= f->start;
				if (f->start == f->end)
					f->start = f->end = 0;
			}
			note_bypass(f);
			progress = 1;
			continue;
		}
		if (r == 0) {
			if (!eof_allowed(f))
				break;
			f->src_eof = 1;
			progress = 1;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			flow_fail(f, -errno, 1);
		break;
	}
	return progress;
}

static int pump_init(struct pump *p, int p1, int p2)
{
	memset(p, 0, sizeof(*p));
	p->s1.fd = p1;
	p->s2.fd = p2;
	p->s2.syn_adj = 1; /* connected sockets count their SYN in tcpi_bytes_acked */
	p->s1.peer = &p->s2;
	p->s2.peer = &p->s1;
	p->up.src = &p->s1;
	p->up.dst = &p->s2;
	p->down.src = &p->s2;
	p->down.dst = &p->s1;
	p->up.buf = malloc(FLOW_BUF);
	p->down.buf = malloc(FLOW_BUF);
	return p->up.buf && p->down.buf ? 0 : -ENOMEM;
}

static void pump_free(struct pump *p)
{
	free(p->up.buf);
	free(p->down.buf);
	p->up.buf = p->down.buf = NULL;
}

/* splice_insert plus kernel_pair's bookkeeping; 0 or -errno */
static int pump_insert(struct pump *p)
{
	int rc = splice_insert(&p->s1.k, p->s1.fd, &p->s2.k, p->s2.fd, CAP);

	if (rc)
		return rc;
	p->s1.base = p->s1.read;
	p->s2.base = p->s2.read;
	p->s1.k.st->user_in = p->s1.written;
	p->s2.k.st->user_in = p->s2.written;
	p->s1.k.st->syn_adj = p->s1.syn_adj;
	p->s2.k.st->syn_adj = p->s2.syn_adj;
	p->s1.k.st->user_fwd = p->s1.read - p->s1.base;
	p->s2.k.st->user_fwd = p->s2.read - p->s2.base;
	p->s1.k.st->enabled = 1;
	p->s2.k.st->enabled = 1;
	return 0;
}

static int pump_insert_cap(struct pump *p, uint64_t cap)
{
	int rc = pump_insert(p);

	if (!rc) {
		p->s1.k.st->cap = cap;
		p->s2.k.st->cap = cap;
	}
	return rc;
}

/* kernel_open (kernel_path.c): a window over the rest of the stream, the pump's own bytes all
 * written */
static void flow_open(struct flow *f)
{
	struct spliced_sock *st = f->src->k.st;
	uint64_t off = f->src->read - f->src->base;

	f->kspan = 1;
	st->user_fwd = off;
	/* publish the end last: the verdict may run on another CPU right now */
	__atomic_store_n(&st->win_end, SPLICED_WIN_ALL, __ATOMIC_RELEASE);
}

/* wait up to 1 ms for either socket (the daemon polls kernel waits every 1 ms too) */
static void pump_wait(struct pump *p)
{
	struct pollfd pfd[2] = {{.fd = p->s1.fd, .events = POLLIN | POLLRDHUP},
				{.fd = p->s2.fd, .events = POLLIN | POLLRDHUP}};

	if (p->down.end > p->down.start)
		pfd[0].events |= POLLOUT;
	if (p->up.end > p->up.start)
		pfd[1].events |= POLLOUT;
	if (poll(pfd, 2, 1) > 0 && (pfd[0].revents & (POLLERR | POLLHUP)) && !p->pollerr) {
		p->pollerr = 1;
		p->t_pollerr = now();
	}
}

/* run both directions until done(arg) or both are done (done == NULL) or failed, or deadline */
static void pump_run(struct pump *p, double deadline, int (*done)(void *), void *arg)
{
	double last = now();

	for (;;) {
		double t = now();
		int progress;

		progress = flow_step(&p->up);
		progress |= flow_step(&p->down);
		if (progress) {
			if (t - last > p->max_idle)
				p->max_idle = t - last;
			last = t;
		}
		if (done ? done(arg) : (p->up.done && p->down.done))
			break;
		if (p->up.err || p->down.err || t > deadline)
			break;
		if (!progress)
			pump_wait(p);
	}
	if (now() - last > p->max_idle)
		p->max_idle = now() - last;
}

static void pump_release(struct pump *p)
{
	close_fd(&p->s1.fd);
	close_fd(&p->s2.fd);
	splice_release(&p->s1.k);
	splice_release(&p->s2.k);
}

static void flow_report(const char *name, const struct flow *f)
{
	const struct spliced_sock *st = f->src->k.st;

	if (!st) {
		printf("#   %s: userspace %llu B\n", name, (unsigned long long)f->user_bytes);
		return;
	}
	printf("#   %s: seen %llu kern_fwd %llu passed %llu user_fwd %llu trims %llu "
	       "cap_hits %llu; pump: %llu B, rule-1 waits %llu, rule-3 waits %llu, FIN waits "
	       "%llu\n",
	       name, (unsigned long long)st->seen, (unsigned long long)st->kern_fwd,
	       (unsigned long long)st->passed, (unsigned long long)st->user_fwd,
	       (unsigned long long)st->trims, (unsigned long long)st->cap_hits,
	       (unsigned long long)f->user_bytes, (unsigned long long)f->rule1_waits,
	       (unsigned long long)f->rule3_waits, (unsigned long long)f->fin_waits);
}

/* the verdict accounted every byte of a direction that moved total bytes after insertion */
static void check_accounting(const char *name, struct flow *f, uint64_t total)
{
	const struct spliced_sock *st = f->src->k.st;

	ASSERT_EQ(st->seen, total, name);
	ASSERT_EQ(st->kern_fwd + st->passed, st->seen, name);
	ASSERT_EQ(st->passed, f->src->read - f->src->base, name);
	ASSERT_EQ(st->user_fwd, st->passed, name);
	ASSERT_EQ(f->bypass, 0, name);
}

/* ---- map and fd inspection ---- */

/* the skeleton's map fds, found among this process's own fds by map name */
static void find_maps(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		return;
	while ((de = readdir(d)) && n++ < 4096) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		char path[300], link[64];
		ssize_t r;
		int fd = atoi(de->d_name);

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		r = readlink(path, link, sizeof(link) - 1);
		if (r <= 0)
			continue;
		link[r] = '\0';
		if (strcmp(link, "anon_inode:bpf-map"))
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		if (!strcmp(info.name, "spliced_slot_of"))
			fd_slot_of = fd;
		else if (!strcmp(info.name, "spliced_targets"))
			fd_targets = fd;
		else if (!strcmp(info.name, "spliced_active"))
			fd_active = fd;
		else if (!strcmp(info.name, "spliced_conns"))
			fd_conns = fd;
	}
	closedir(d);
}

/* entries in a map keyed by a 64-bit cookie; -1 when it cannot be walked */
static long map_entries(int fd)
{
	uint64_t key, next;
	long n = 0;

	if (fd < 0)
		return -1;
	if (bpf_map_get_next_key(fd, NULL, &next))
		return errno == ENOENT ? 0 : -1;
	do {
		key = next;
		n++;
	} while (n < MAP_ITER_MAX && !bpf_map_get_next_key(fd, &key, &next));
	return n;
}

static void check_maps_empty(const char *when)
{
	ASSERT_EQ(map_entries(fd_slot_of), 0, when);
	ASSERT_EQ(map_entries(fd_targets), 0, when);
	ASSERT_EQ(map_entries(fd_active), 0, when);
	ASSERT_EQ(map_entries(fd_conns), 0, when);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d) && n < 1 << 20)
		n++;
	closedir(d);
	return n;
}

static uint64_t kern_redirected(void)
{
	struct spliced_kern_counters kc;

	return splice_read_kern_counters(&kc) ? 0 : kc.redirect_bytes;
}

static uint64_t sysctl_max(const char *path)
{
	unsigned long long a, b, c;
	FILE *f = fopen(path, "r");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%llu %llu %llu", &a, &b, &c);
	fclose(f);
	return n == 3 ? c : 0;
}

/* TCP memory of the whole host in bytes (/proc/net/sockstat "TCP: ... mem PAGES") */
static long sockstat_tcp_mem(void)
{
	char line[256];
	FILE *f = fopen("/proc/net/sockstat", "r");
	long pages = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *m = strstr(line, " mem ");

		if (!strncmp(line, "TCP:", 4) && m)
			pages = atol(m + 5);
	}
	fclose(f);
	return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

/* what ss -tm shows as skmem: receive queue, send queue and backlog memory of one socket */
static uint64_t skmem(int fd)
{
	__u32 mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);

	memset(mem, 0, sizeof(mem));
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == -1)
		return 0;
	return (uint64_t)mem[SK_MEMINFO_RMEM_ALLOC] + mem[SK_MEMINFO_WMEM_QUEUED] +
	       mem[SK_MEMINFO_BACKLOG];
}

/* ---- shared scenario: a quad, threads on both ends, the pump in the middle ---- */

struct scene {
	struct quad q;
	struct pump p;
	struct xfer cw, cr, bw, br; /* client writer/reader, backend writer/reader */
};

static int scene_open(struct scene *s)
{
	memset(s, 0, sizeof(*s));
	s->p.s1.fd = s->p.s2.fd = -1;
	s->cw.fd = s->cr.fd = s->bw.fd = s->br.fd = -1;
	if (quad_open(&s->q))
		return -1;
	if (pump_init(&s->p, s->q.p1, s->q.p2)) {
		s->p.s1.fd = s->p.s2.fd = -1;
		quad_close(&s->q);
		return -1;
	}
	/* the pump owns P1 and P2 from here */
	s->q.p1 = s->q.p2 = -1;
	return 0;
}

static void scene_join(struct scene *s)
{
	xfer_join(&s->cw);
	xfer_join(&s->cr);
	xfer_join(&s->bw);
	xfer_join(&s->br);
}

static int scene_running(struct scene *s)
{
	return (s->cw.started && !xfer_finished(&s->cw)) ||
	       (s->cr.started && !xfer_finished(&s->cr)) ||
	       (s->bw.started && !xfer_finished(&s->bw)) ||
	       (s->br.started && !xfer_finished(&s->br));
}

static void scene_close(struct scene *s)
{
	/* a test that gave up early: wake blocked threads instead of waiting for their deadline
	 * (a writer that resets its socket itself owns that fd) */
	if (scene_running(s)) {
		if (s->q.c >= 0 && !s->cw.rst_at)
			shutdown(s->q.c, SHUT_RDWR);
		if (s->q.b >= 0)
			shutdown(s->q.b, SHUT_RDWR);
	}
	scene_join(s);
	if (s->cw.rst_at && s->cw.fd < 0)
		s->q.c = -1; /* the writer closed it */
	quad_close(&s->q);
	pump_release(&s->p);
	pump_free(&s->p);
}

static int all_finished(void *arg)
{
	struct scene *s = arg;

	return s->p.up.done && s->p.down.done && (!s->cr.started || xfer_finished(&s->cr)) &&
	       (!s->br.started || xfer_finished(&s->br));
}

/* ---- 1. duplex byte-exact streams ---- */

/* n bytes each way at once with the in-flight cap at cap */
static void duplex(uint64_t n, uint64_t cap)
{
	uint64_t k0 = kern_redirected(), k1;
	struct scene s;
	double t0, dt;

	if (!ASSERT_TRUE(!scene_open(&s), "quad"))
		return;
	if (!ASSERT_EQ(pump_insert_cap(&s.p, cap), 0, "splice_insert"))
		goto out;
	flow_open(&s.p.up);
	flow_open(&s.p.down);
	t0 = now();
	s.cw.shut = s.bw.shut = 1;
	xfer_start(&s.cw, s.q.c, 0, SEED_UP, n, t0 + 60);
	xfer_start(&s.bw, s.q.b, 0, SEED_DOWN, n, t0 + 60);
	xfer_start(&s.cr, s.q.c, 1, SEED_DOWN, n, t0 + 60);
	xfer_start(&s.br, s.q.b, 1, SEED_UP, n, t0 + 60);
	pump_run(&s.p, t0 + 60, all_finished, &s);
	scene_join(&s);
	dt = now() - t0;
	k1 = kern_redirected();

	printf("# duplex, cap %llu MiB: %llu MiB each way in %.2f s: %.2f GB/s total, up %.2f "
	       "GB/s, down %.2f GB/s\n",
	       (unsigned long long)(cap / MiB), (unsigned long long)(n / MiB), dt,
	       2.0 * (double)n / dt / 1e9, (double)n / (s.br.t_end - t0) / 1e9,
	       (double)n / (s.cr.t_end - t0) / 1e9);
	flow_report("up (client->backend)", &s.p.up);
	flow_report("down (backend->client)", &s.p.down);
	printf("#   verdict counters: +%llu B redirected (kern_fwd sum %llu): the kernel carried "
	       "%.1f %% of the bytes, the pump the rest; longest pause in pump traffic %.1f ms\n",
	       (unsigned long long)(k1 - k0),
	       (unsigned long long)(s.p.s1.k.st->kern_fwd + s.p.s2.k.st->kern_fwd),
	       100.0 * (double)(s.p.s1.k.st->kern_fwd + s.p.s2.k.st->kern_fwd) / (2.0 * (double)n),
	       s.p.max_idle * 1e3);
	verify_report("backend received", &s.br.v);
	verify_report("client received", &s.cr.v);

	ASSERT_EQ(s.br.done, n, "backend bytes");
	ASSERT_EQ(s.cr.done, n, "client bytes");
	ASSERT_TRUE(s.br.eof && s.cr.eof, "EOF at both ends (backend %d client %d)", s.br.eof,
		    s.cr.eof);
	ASSERT_TRUE(verify_clean(&s.br.v) && verify_clean(&s.cr.v), "byte-exact");
	ASSERT_EQ(s.cw.err + s.bw.err + s.cr.err + s.br.err, 0, "thread errors");
	ASSERT_EQ(s.p.up.err + s.p.down.err, 0, "pump errors");
	check_accounting("up", &s.p.up, n);
	check_accounting("down", &s.p.down, n);
	ASSERT_EQ(k1 - k0, s.p.s1.k.st->kern_fwd + s.p.s2.k.st->kern_fwd,
		  "redirect_bytes == kern_fwd");
	ASSERT_TRUE(s.p.s1.k.st->kern_fwd && s.p.s2.k.st->kern_fwd, "the kernel carried bytes");
out:
	scene_close(&s);
	check_maps_empty("after duplex");
}

static void test_duplex_2g(void)
{
	duplex(2 * GiB / scale, CAP);
	/* for comparison: the cap effectively off, so the verdict never has to pass data up */
	duplex(1 * GiB / scale, 1ULL << 40);
}

/* ---- 2. in-flight cap ---- */

struct sampler {
	struct scene *s;
	double from, to; /* sampling window (absolute) */
	long tcp_mem0;
	uint64_t max_inflight, max_skmem;
	uint64_t early_inflight, late_inflight; /* max in the first and second half */
	long max_tcp_mem;
	unsigned samples;
	double t0;
	int finished; /* atomic */
	pthread_t th;
};

static void *sampler_main(void *arg)
{
	struct sampler *sm = arg;
	struct scene *s = sm->s;
	double mid = (sm->from + sm->to) / 2;

	while (now() < sm->from)
		sleep_ms(5);
	for (unsigned i = 0; i < 10000 && now() < sm->to; i++) {
		uint64_t sent = xfer_done(&s->cw), got = xfer_done(&s->br);
		uint64_t inflight = sent > got ? sent - got : 0;
		uint64_t mem =
			skmem(s->q.c) + skmem(s->p.s1.fd) + skmem(s->p.s2.fd) + skmem(s->q.b);
		long tcp = sockstat_tcp_mem() - sm->tcp_mem0;

		if (inflight > sm->max_inflight)
			sm->max_inflight = inflight;
		if (now() < mid && inflight > sm->early_inflight)
			sm->early_inflight = inflight;
		if (now() >= mid && inflight > sm->late_inflight)
			sm->late_inflight = inflight;
		if (mem > sm->max_skmem)
			sm->max_skmem = mem;
		if (tcp > sm->max_tcp_mem)
			sm->max_tcp_mem = tcp;
		sm->samples++;
		sleep_ms(20);
	}
	__atomic_store_n(&sm->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int sampler_finished(void *arg)
{
	struct sampler *sm = arg;

	return __atomic_load_n(&sm->finished, __ATOMIC_ACQUIRE);
}

/* client pushes total bytes, the backend does not read for stall_ms, sm samples meanwhile */
static int cap_run(uint64_t cap, uint64_t total, unsigned stall_ms, struct sampler *sm,
		   struct scene *s)
{
	double t0;

	memset(sm, 0, sizeof(*sm));
	if (scene_open(s))
		return -1;
	if (pump_insert_cap(&s->p, cap))
		return -1;
	flow_open(&s->p.up);
	flow_open(&s->p.down);
	sm->s = s;
	sm->tcp_mem0 = sockstat_tcp_mem();
	t0 = now();
	sm->t0 = t0;
	s->cw.shut = 1;
	s->br.delay_ms = stall_ms;
	xfer_start(&s->cw, s->q.c, 0, SEED_UP, total, t0 + 60);
	xfer_start(&s->br, s->q.b, 1, SEED_UP, total, t0 + 60);
	/* nothing flows down: the backend closes its side once it has read everything */
	sm->from = t0 + 0.5;
	sm->to = t0 + stall_ms / 1000.0 - 0.1;
	if (pthread_create(&sm->th, NULL, sampler_main, sm))
		return -1;
	pump_run(&s->p, t0 + 60, sampler_finished, sm);
	pthread_join(sm->th, NULL);
	return 0;
}

static int up_done(void *arg)
{
	struct scene *s = arg;

	return s->p.up.done && xfer_finished(&s->br);
}

static void test_inflight_cap(void)
{
	uint64_t total = 1 * GiB / scale, ctl_total = 512 * MiB / scale;
	uint64_t rmax = sysctl_max("/proc/sys/net/ipv4/tcp_rmem");
	uint64_t wmax = sysctl_max("/proc/sys/net/ipv4/tcp_wmem");
	uint64_t bound = CAP + 2 * rmax + 2 * wmax + 2 * FLOW_BUF + 4 * MiB;
	struct sampler sm;
	struct scene s;
	double dt;

	if (!ASSERT_TRUE(!cap_run(CAP, total, 3000, &sm, &s), "setup")) {
		scene_close(&s);
		return;
	}
	/* the stall is over once the sampler returned; let the rest flow, then close down */
	pump_run(&s.p, now() + 60, up_done, &s);
	shutdown(s.q.b, SHUT_WR);
	pump_run(&s.p, now() + 5, NULL, NULL);
	scene_join(&s);
	dt = now() - sm.t0;

	printf("# cap %llu MiB, backend stalled 3 s while the client pushed %llu MiB (%u samples)\n",
	       (unsigned long long)(CAP / MiB), (unsigned long long)(total / MiB), sm.samples);
	printf("#   in flight end to end (sent - read): max %.1f MiB (first half %.1f, second half "
	       "%.1f); skmem of the 4 sockets max %.1f MiB; host TCP mem +%.1f MiB; bound %.1f MiB "
	       "(cap + 2 tcp_rmem max + 2 tcp_wmem max + buffers)\n",
	       (double)sm.max_inflight / MiB, (double)sm.early_inflight / MiB,
	       (double)sm.late_inflight / MiB, (double)sm.max_skmem / MiB,
	       (double)sm.max_tcp_mem / MiB, (double)bound / MiB);
	printf("#   then all %llu MiB delivered in %.2f s total\n",
	       (unsigned long long)(total / MiB), dt);
	flow_report("up", &s.p.up);
	verify_report("backend received", &s.br.v);
	ASSERT_TRUE(sm.samples > 10, "samples %u", sm.samples);
	ASSERT_TRUE(sm.max_inflight < bound, "in flight %llu >= bound %llu",
		    (unsigned long long)sm.max_inflight, (unsigned long long)bound);
	ASSERT_TRUE(sm.max_skmem < bound, "skmem %llu >= bound %llu",
		    (unsigned long long)sm.max_skmem, (unsigned long long)bound);
	ASSERT_TRUE(sm.late_inflight <= sm.early_inflight + 4 * MiB,
		    "in flight kept growing: %llu then %llu", (unsigned long long)sm.early_inflight,
		    (unsigned long long)sm.late_inflight);
	ASSERT_TRUE(s.p.up.src->k.st->cap_hits > 0, "the cap engaged");
	ASSERT_EQ(s.br.done, total, "backend bytes");
	ASSERT_TRUE(s.br.eof && verify_clean(&s.br.v), "intact and EOF (eof %d)", s.br.eof);
	ASSERT_EQ(s.p.up.err + s.p.down.err + s.cw.err + s.br.err, 0, "errors");
	check_accounting("up", &s.p.up, total);
	scene_close(&s);
	check_maps_empty("after cap");

	/* control, report only: the same stall with the cap off shows what the cap prevents */
	if (cap_run(1ULL << 40, ctl_total, 1500, &sm, &s) == 0) {
		pump_run(&s.p, now() + 30, up_done, &s);
		shutdown(s.q.b, SHUT_WR);
		pump_run(&s.p, now() + 5, NULL, NULL);
		scene_join(&s);
		printf("#   control, cap off, 1.5 s stall, %llu MiB pushed: in flight max %.1f MiB, "
		       "skmem max %.1f MiB, host TCP mem +%.1f MiB; delivered %s\n",
		       (unsigned long long)(ctl_total / MiB), (double)sm.max_inflight / MiB,
		       (double)sm.max_skmem / MiB, (double)sm.max_tcp_mem / MiB,
		       s.br.done == ctl_total && verify_clean(&s.br.v) ? "intact" : "NOT intact");
	}
	scene_close(&s);
	check_maps_empty("after cap control");
}

/* ---- 3. bytes queued before insertion ---- */

static int got_at_least(void *arg)
{
	struct xfer *x = arg;

	return xfer_done(x) >= x->total || xfer_finished(x);
}

static void test_prequeued(void)
{
	/* pre fits in P1's initial receive window (tcp_rmem default 128 KiB) */
	const uint64_t pre = 96 * KiB + 13, post = 1 * MiB + 7;
	uint8_t *buf = malloc(pre);
	struct scene s;
	double t0, t1;
	ssize_t r;

	if (!ASSERT_TRUE(buf && !scene_open(&s), "setup")) {
		free(buf);
		return;
	}
	pat_fill(buf, 0, pre, SEED_UP);
	r = send(s.q.c, buf, pre, MSG_NOSIGNAL);
	ASSERT_EQ(r, (long long)pre, "pre-insert send");
	for (int i = 0; i < 1000 && inq(s.p.s1.fd) < (int)pre; i++)
		sleep_ms(1);
	ASSERT_EQ(inq(s.p.s1.fd), (long long)pre, "queued on P1 before insertion");
	t0 = now();
	if (!ASSERT_EQ(pump_insert(&s.p), 0, "splice_insert"))
		goto out;
	/* the SO_RCVLOWAT kick in splice_insert hands the queued bytes to the verdict at once,
	 * without a recv() or more data: the verdict has seen them all */
	for (int i = 0; i < 100 && st_load(&s.p.s1.k.st->seen) < pre; i++)
		sleep_ms(1);
	t1 = now();
	ASSERT_EQ(st_load(&s.p.s1.k.st->seen), pre, "verdict saw the queued bytes (kick)");
	printf("# pre-queued: the verdict saw the %llu queued bytes %.2f ms after insertion; "
	       "kern_fwd %llu passed %llu (the kick runs inside splice_insert, before a window "
	       "can be opened)\n",
	       (unsigned long long)pre, (t1 - t0) * 1e3, (unsigned long long)s.p.s1.k.st->kern_fwd,
	       (unsigned long long)s.p.s1.k.st->passed);
	flow_open(&s.p.up); /* offset 0: nothing was read */
	flow_open(&s.p.down);
	/* the backend reader counts; the client sends nothing more until the queued bytes are out */
	xfer_start(&s.br, s.q.b, 1, SEED_UP, pre, t0 + 10);
	pump_run(&s.p, t0 + 2, got_at_least, &s.br);
	t1 = now();
	ASSERT_EQ(xfer_done(&s.br), pre, "queued bytes delivered without more data");
	printf("#   they reached the backend %llu B, in order, %.2f ms after insertion (kern_fwd "
	       "%llu, passed %llu)\n",
	       (unsigned long long)pre, (t1 - t0) * 1e3, (unsigned long long)s.p.s1.k.st->kern_fwd,
	       (unsigned long long)s.p.s1.k.st->passed);
	/* then the stream goes on: the client sends the rest (continuing the pattern) and closes */
	{
		uint64_t off = pre;
		uint8_t *more = malloc(post);

		if (more) {
			pat_fill(more, off, post, SEED_UP);
			for (int i = 0; i < 1000 && off < pre + post; i++) {
				r = send(s.q.c, more + (off - pre), pre + post - off, MSG_NOSIGNAL);
				if (r > 0)
					off += (uint64_t)r;
				else if (r == -1 && errno != EAGAIN && errno != EINTR)
					break;
				flow_step(&s.p.up);
			}
			free(more);
		}
		ASSERT_EQ(off, pre + post, "client sent the rest");
	}
	shutdown(s.q.c, SHUT_WR);
	shutdown(s.q.b, SHUT_WR);
	s.br.total = pre + post;
	pump_run(&s.p, now() + 10, all_finished, &s);
	scene_join(&s);
	flow_report("up", &s.p.up);
	verify_report("backend received", &s.br.v);
	ASSERT_EQ(s.br.done, pre + post, "backend bytes");
	ASSERT_TRUE(s.br.eof && verify_clean(&s.br.v), "in order, then EOF (eof %d)", s.br.eof);
	check_accounting("up", &s.p.up, pre + post);
out:
	free(buf);
	scene_close(&s);
	check_maps_empty("after pre-queued");
}

/* ---- 4. FIN and half-close with the drain rule ---- */

struct hc_stats {
	unsigned rounds;
	uint64_t fin_waits, rule3_waits, bytes;
	unsigned held_back; /* directions where the drain rule held the FIN back at least once */
};

/* one direction of a half-close round: src endpoint writes n then shuts down */
static int half_close_dir(struct scene *s, int up, uint64_t n, struct hc_stats *hs)
{
	struct xfer *w = up ? &s->cw : &s->bw, *r = up ? &s->br : &s->cr;
	struct flow *f = up ? &s->p.up : &s->p.down;
	double t0 = now();
	int ok;

	memset(w, 0, sizeof(*w));
	memset(r, 0, sizeof(*r));
	w->shut = 1;
	xfer_start(w, up ? s->q.c : s->q.b, 0, up ? SEED_UP : SEED_DOWN, n, t0 + 5);
	xfer_start(r, up ? s->q.b : s->q.c, 1, up ? SEED_UP : SEED_DOWN, n, t0 + 5);
	while (!(f->done && xfer_finished(r)) && now() < t0 + 5 && !f->err) {
		if (!flow_step(f) && !flow_step(up ? &s->p.down : &s->p.up))
			pump_wait(&s->p);
	}
	xfer_join(w);
	xfer_join(r);
	ok = ASSERT_EQ(r->done, n, up ? "backend got exactly N" : "client got exactly N");
	ok &= ASSERT_TRUE(r->eof && verify_clean(&r->v) && !r->err && !w->err && !f->err,
			  "%s: eof %d err %d/%d/%d n %llu", up ? "up" : "down", r->eof, r->err,
			  w->err, f->err, (unsigned long long)n);
	if (!ok) {
		struct pollfd pfd = {.fd = f->src->fd, .events = POLLIN | POLLRDHUP};
		uint64_t rcvd = 0;

		splice_tcp_received(f->src->fd, &rcvd);
		poll(&pfd, 1, 0);
		printf("#   stuck %s: src_eof %d dst_shut %d done %d; src read %llu base %llu, "
		       "tcpi_bytes_received %llu, SIOCINQ %d, revents 0x%x; seen %llu passed %llu "
		       "kern_fwd %llu; rule-3 waits %llu FIN waits %llu rule-1 waits %llu\n",
		       up ? "up" : "down", f->src_eof, f->dst_shut, f->done,
		       (unsigned long long)f->src->read, (unsigned long long)f->src->base,
		       (unsigned long long)rcvd, inq(f->src->fd), pfd.revents,
		       (unsigned long long)f->src->k.st->seen,
		       (unsigned long long)f->src->k.st->passed,
		       (unsigned long long)f->src->k.st->kern_fwd,
		       (unsigned long long)f->rule3_waits, (unsigned long long)f->fin_waits,
		       (unsigned long long)f->rule1_waits);
		{
			char cmd[200];

			snprintf(cmd, sizeof(cmd),
				 "ss -tnmie '( sport = :%d or dport = :%d )' | sed 's/^/#     /'",
				 up ? port_proxy : port_backend, up ? port_proxy : port_backend);
			fflush(stdout);
			if (system(cmd))
				printf("#     (ss failed)\n");
		}
	}
	if (f->fin_waits)
		hs->held_back++;
	hs->fin_waits += f->fin_waits;
	hs->rule3_waits += f->rule3_waits;
	hs->bytes += n;
	return ok;
}

static void test_half_close(void)
{
	static const uint64_t sizes[] = {1,	      10,	   1000,	  65535,
					 65536,	      65537,	   200 * KiB + 1, 1 * MiB,
					 3 * MiB + 7, 16 * MiB + 3};
	const unsigned nsizes = sizeof(sizes) / sizeof(sizes[0]);
	struct hc_stats hs = {0};
	double t0 = now();

	for (unsigned i = 0; i < 120 && now() < t0 + 12; i++) {
		uint64_t a = sizes[i % nsizes], b = sizes[(i * 7 + 3) % nsizes];
		int first_up = !(i & 1);
		struct scene s;
		int ok;

		if (!ASSERT_TRUE(!scene_open(&s), "quad"))
			break;
		if (!ASSERT_EQ(pump_insert(&s.p), 0, "splice_insert")) {
			scene_close(&s);
			break;
		}
		flow_open(&s.p.up);
		flow_open(&s.p.down);
		ok = half_close_dir(&s, first_up, a, &hs);
		ok &= half_close_dir(&s, !first_up, b, &hs);
		if (ok) {
			check_accounting("up", &s.p.up, first_up ? a : b);
			check_accounting("down", &s.p.down, first_up ? b : a);
		}
		scene_close(&s);
		hs.rounds++;
		if (!ok)
			break;
	}
	printf("# half-close: %u rounds (each: one direction sends N and shuts down, then the "
	       "other), %llu B; FIN held back by the drain rule in %u of %u directions (%llu "
	       "polls), rule-3 waits %llu\n",
	       hs.rounds, (unsigned long long)hs.bytes, hs.held_back, 2 * hs.rounds,
	       (unsigned long long)hs.fin_waits, (unsigned long long)hs.rule3_waits);
	ASSERT_TRUE(hs.rounds >= 20, "only %u rounds", hs.rounds);
	check_maps_empty("after half-close");
}

/* ---- 5. insertion after FIN ---- */

static int wait_rdhup(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLRDHUP);
}

/* the FIN'd side is the client (a) or the backend (b) */
static void insert_after_fin(int client_fin)
{
	/* n1 and the FIN fit in P1's/P2's initial receive window */
	const uint64_t n1 = 60 * KiB + 5, n2 = 700 * KiB + 3;
	struct scene s;
	uint8_t *buf = malloc(n1);
	int rc;

	if (!ASSERT_TRUE(buf && !scene_open(&s), "setup")) {
		free(buf);
		return;
	}
	pat_fill(buf, 0, n1, client_fin ? SEED_UP : SEED_DOWN);
	ASSERT_EQ(send(client_fin ? s.q.c : s.q.b, buf, n1, MSG_NOSIGNAL), (long long)n1,
		  "send before FIN");
	shutdown(client_fin ? s.q.c : s.q.b, SHUT_WR);
	ASSERT_TRUE(wait_rdhup(client_fin ? s.p.s1.fd : s.p.s2.fd, 1000), "FIN arrived");
	rc = pump_insert(&s.p);
	printf("# insert after FIN on the %s side: splice_insert = %d (%s); P1 %s the verdict "
	       "map\n",
	       client_fin ? "client (a)" : "backend (b)", rc, strerror(-rc),
	       kin(&s.p.s1) ? "stays in" : "not in");
	ASSERT_EQ(rc, -EOPNOTSUPP, "splice_insert after FIN");
	ASSERT_EQ(s.p.s2.k.slot, 0, "b not kept");
	if (client_fin)
		ASSERT_EQ(s.p.s1.k.slot, 0, "a not kept");
	/* userspace path from here: the other end sends and closes too */
	{
		struct xfer *w = client_fin ? &s.bw : &s.cw;
		struct xfer *r1 = client_fin ? &s.br : &s.cr, *r2 = client_fin ? &s.cr : &s.br;
		double t0 = now();

		xfer_start(r1, client_fin ? s.q.b : s.q.c, 1, client_fin ? SEED_UP : SEED_DOWN, n1,
			   t0 + 10);
		w->shut = 1;
		xfer_start(w, client_fin ? s.q.b : s.q.c, 0, client_fin ? SEED_DOWN : SEED_UP, n2,
			   t0 + 10);
		xfer_start(r2, client_fin ? s.q.c : s.q.b, 1, client_fin ? SEED_DOWN : SEED_UP, n2,
			   t0 + 10);
		pump_run(&s.p, t0 + 10, all_finished, &s);
		scene_join(&s);
		ASSERT_TRUE(r1->done == n1 && r1->eof && verify_clean(&r1->v),
			    "first direction: %llu of %llu, eof %d", (unsigned long long)r1->done,
			    (unsigned long long)n1, r1->eof);
		ASSERT_TRUE(r2->done == n2 && r2->eof && verify_clean(&r2->v),
			    "second direction: %llu of %llu, eof %d", (unsigned long long)r2->done,
			    (unsigned long long)n2, r2->eof);
		ASSERT_EQ(s.p.up.err + s.p.down.err, 0, "pump errors");
		if (kin(&s.p.s1))
			ASSERT_EQ(s.p.s1.k.st->kern_fwd, 0, "nothing redirected from P1");
	}
	free(buf);
	scene_close(&s);
	check_maps_empty("after insert-after-FIN");
}

static void test_insert_after_fin(void)
{
	insert_after_fin(1);
	insert_after_fin(0);
}

/* ---- 6. RST ---- */

static int p1_failed(void *arg)
{
	struct scene *s = arg;

	return s->p.pollerr || (s->p.up.err && s->p.up.err_on_src) ||
	       (s->p.down.err && !s->p.down.err_on_src);
}

static void test_rst(void)
{
	struct scene s;
	double t0, t_rst, t_det;
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (!ASSERT_TRUE(!scene_open(&s), "quad"))
		return;
	if (!ASSERT_EQ(pump_insert(&s.p), 0, "splice_insert"))
		goto out;
	flow_open(&s.p.up);
	flow_open(&s.p.down);
	t0 = now();
	/* both directions stream; the client resets after 32 MiB without reading its side */
	s.cw.rst_at = 32 * MiB;
	xfer_start(&s.cw, s.q.c, 0, SEED_UP, 1 * GiB, t0 + 10);
	xfer_start(&s.bw, s.q.b, 0, SEED_DOWN, 1 * GiB, t0 + 10);
	xfer_start(&s.br, s.q.b, 1, SEED_UP, 1 * GiB, t0 + 10);
	pump_run(&s.p, t0 + 10, p1_failed, &s);
	t_det = now();
	__atomic_load(&s.cw.t_rst, &t_rst, __ATOMIC_ACQUIRE);
	getsockopt(s.p.s1.fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	printf("# RST: client reset after %llu MiB sent; P1: %s%s%s%s%s, detected %.1f ms after "
	       "the reset (SO_ERROR now: %s)\n",
	       (unsigned long long)(xfer_done(&s.cw) / MiB), s.p.pollerr ? "POLLERR/POLLHUP " : "",
	       s.p.up.err ? "recv: " : "", s.p.up.err ? strerror(-s.p.up.err) : "",
	       s.p.down.err ? " send: " : "", s.p.down.err ? strerror(-s.p.down.err) : "",
	       t_rst > 0 ? (t_det - t_rst) * 1e3 : -1.0, soerr ? strerror(soerr) : "none");
	ASSERT_TRUE(t_rst > 0, "the client reset");
	ASSERT_TRUE(p1_failed(&s), "P1 reported the reset");
	ASSERT_TRUE(t_det - t_rst < 1.0, "detected within 1 s: %.3f s", t_det - t_rst);
	/* the proxy closes both sides, the backend's threads see it and end */
	pump_release(&s.p);
	for (int i = 0; i < 600 && !(xfer_finished(&s.bw) && xfer_finished(&s.br)); i++)
		sleep_ms(5);
	printf("#   backend ends %.1f ms after the reset: writer %s, reader %s after %llu MiB "
	       "(%s)\n",
	       (now() - t_rst) * 1e3, xfer_finished(&s.bw) ? strerror(s.bw.err) : "running",
	       s.br.eof	  ? "EOF"
	       : s.br.err ? strerror(s.br.err)
			  : "running",
	       (unsigned long long)(xfer_done(&s.br) / MiB),
	       verify_clean(&s.br.v) ? "in order" : "NOT in order");
	ASSERT_TRUE(verify_clean(&s.br.v), "what the backend got is a clean prefix");
	check_maps_empty("after RST and release");
out:
	scene_close(&s);
	check_maps_empty("after RST");
}

/* ---- 7. many short insert/close cycles ---- */

static int recv_exact(int fd, char *p, size_t *have, size_t want)
{
	ssize_t r = recv(fd, p + *have, want - *have, MSG_DONTWAIT);

	if (r > 0)
		*have += (size_t)r;
	return r == 0 || (r == -1 && errno != EAGAIN && errno != EINTR) ? -1 : 0;
}

static void test_cycles(void)
{
	const unsigned target = (unsigned)(100000 / scale);
	unsigned done = 0, kernel_both = 0, failures = 0;
	int fds0 = count_fds(), fds1;
	double t0 = now(), dt;
	struct pump p;

	if (!ASSERT_EQ(pump_init(&p, -1, -1), 0, "pump"))
		return;
	for (; done < target && now() < t0 + 60; done++) {
		uint8_t *ub = p.up.buf, *db = p.down.buf;
		char gb[16], gc[16];
		size_t hb = 0, hc = 0;
		struct quad q;
		double until;
		int bad = 0;

		if (quad_open(&q)) {
			failures++;
			break;
		}
		memset(&p, 0, sizeof(p));
		p.up.buf = ub;
		p.down.buf = db;
		p.s1.fd = q.p1;
		p.s2.fd = q.p2;
		p.s2.syn_adj = 1;
		p.s1.peer = &p.s2;
		p.s2.peer = &p.s1;
		p.up.src = p.down.dst = &p.s1;
		p.up.dst = p.down.src = &p.s2;
		q.p1 = q.p2 = -1;
		if (pump_insert(&p)) {
			failures++;
			quad_close(&q);
			pump_release(&p);
			break;
		}
		flow_open(&p.up);
		flow_open(&p.down);
		if (send(q.c, "0123456789", 10, MSG_NOSIGNAL) != 10 ||
		    send(q.b, "abcdefghij", 10, MSG_NOSIGNAL) != 10)
			bad = 1;
		until = now() + 2;
		while (!bad && (hb < 10 || hc < 10) && now() < until) {
			int progress = flow_step(&p.up) | flow_step(&p.down);

			if (recv_exact(q.b, gb, &hb, 10) || recv_exact(q.c, gc, &hc, 10))
				bad = 1;
			if (!progress && (hb < 10 || hc < 10))
				pump_wait(&p);
		}
		if (bad || hb != 10 || hc != 10 || memcmp(gb, "0123456789", 10) ||
		    memcmp(gc, "abcdefghij", 10))
			failures++;
		if (p.s1.k.st->kern_fwd == 10 && p.s2.k.st->kern_fwd == 10)
			kernel_both++;
		quad_close(&q);
		pump_release(&p);
		if (failures)
			break;
	}
	dt = now() - t0;
	pump_free(&p);
	fds1 = count_fds();
	printf("# cycles: %u of %u insert/close cycles in %.1f s (%.0f/s, %.0f us each); both "
	       "directions in the kernel in %u; failures %u; fds %d -> %d\n",
	       done, target, dt, done / dt, dt / (done ? done : 1) * 1e6, kernel_both, failures,
	       fds0, fds1);
	ASSERT_EQ(failures, 0, "failed cycles");
	ASSERT_TRUE(done == target || dt >= 59, "%u cycles", done);
	ASSERT_EQ(kernel_both, done, "cycles carried by the kernel both ways");
	ASSERT_EQ(fds1, fds0, "no leaked fds");
	check_maps_empty("after cycles");
}

/* ---- 8. investigation (report only): a window opened while the stream keeps coming ---- */

enum rv {
	RV_PLAIN,   /* read 32 KiB, write it to P2, insert while data arrives, open the window */
	RV_QUIET,   /* same, but insert only after a read left P1's receive queue empty */
	RV_FIRST,   /* insert before reading anything: the 32 KiB are read as passed data */
	RV_RCVBUF,  /* RV_PLAIN with SO_RCVBUFFORCE 64 MiB on P1 and P2 */
	RV_NWINDOW, /* RV_PLAIN but the window stays closed (everything passed up) */
	RV_FIXUP,   /* RV_PLAIN, then the pump detects the repeated head and drops it */
	RV_COUNT,
};

static const char *const rv_name[RV_COUNT] = {
	"read 32K, insert while streaming",	 "insert at a quiet point (SIOCINQ 0)",
	"insert first, read 32K as passed data", "read 32K, insert; SO_RCVBUF 64M",
	"read 32K, insert, window closed",	 "read 32K, insert, userspace offset fixup",
};

static const unsigned rv_runs[RV_COUNT] = {4, 12, 12, 4, 4, 12};

/*
 * RV_FIXUP: tcp_read_skb hands the verdict whole skbs, so an skb the pump had partly read
 * before insertion is seen (and passed) again from its start. Right after insertion the kick
 * has run the verdict over everything queued, so base + seen - tcpi_bytes_received is the
 * repeated head: move the pump's offsets back by it and drop that many passed bytes.
 * Returns the bytes found repeated (0 when the sample raced with arrivals 8 times).
 */
static uint64_t fixup_repeat(struct pump *p)
{
	for (int i = 0; i < 8; i++) {
		uint64_t seen1 = st_load(&p->s1.k.st->seen), seen2, rcvd;

		if (splice_tcp_received(p->s1.fd, &rcvd))
			return 0;
		seen2 = st_load(&p->s1.k.st->seen);
		if (seen1 != seen2)
			continue;
		if (p->s1.base + seen1 > rcvd && p->s1.base + seen1 - rcvd < 1 * MiB) {
			uint64_t dup = p->s1.base + seen1 - rcvd;

			p->s1.read -= dup;
			p->s1.base -= dup;
			p->s1.k.st->user_fwd = 0;
			p->up.discard = dup;
			return dup;
		}
		return 0;
	}
	return 0;
}

struct rr_stats {
	unsigned runs, bad, partial; /* partial: P1 had unread bytes at insertion */
	unsigned timeouts;	     /* runs that did not finish in time */
	uint64_t fixed;		     /* RV_FIXUP: repeated bytes found and dropped */
	double max_idle, max_time;   /* longest pump idle gap and run time */
	unsigned repeats, skips, garbage, short_or_long;
	uint64_t max_bypass;
	int64_t verdict_offset_err; /* last nonzero seen - (sent - base) */
	char first[200];
};

/* write all of p to fd within 2 s (before insertion: plain TCP) */
static int send_all(int fd, const uint8_t *p, size_t n)
{
	double until = now() + 2;
	size_t off = 0;

	while (off < n && now() < until) {
		ssize_t r = send(fd, p + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r > 0) {
			off += (size_t)r;
		} else if (r == -1 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		} else {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			poll(&pfd, 1, 1);
		}
	}
	return off == n ? 0 : -ETIMEDOUT;
}

/* recv up to want bytes from P1 within 2 s, forward them to P2; bookkeeping as the pump */
static int head_copy(struct pump *p, size_t want, int drain)
{
	double until = now() + 2;
	size_t got = 0;

	/* drain: go on until a read leaves the queue empty, for at most 8 MiB more (the client
	 * must not finish: a socket that received a FIN cannot be inserted) */
	while ((got < want || (drain && got < want + 8 * MiB)) && now() < until) {
		size_t room = drain ? FLOW_BUF : want - got;
		ssize_t r = recv(p->s1.fd, p->up.buf, room, MSG_DONTWAIT);
		int err;

		if (r > 0) {
			got += (size_t)r;
			p->s1.read += (uint64_t)r;
			if ((err = send_all(p->s2.fd, p->up.buf, (size_t)r)))
				return err;
			p->s2.written += (uint64_t)r;
			if (kin(&p->s2))
				p->s2.k.st->user_in = p->s2.written;
			if (drain && got >= want && inq(p->s1.fd) == 0)
				return 0;
			continue;
		}
		if (r == 0)
			return -ENODATA;
		if (r == -1 && errno != EAGAIN && errno != EINTR)
			return -errno;
		{
			struct pollfd pfd = {.fd = p->s1.fd, .events = POLLIN};

			poll(&pfd, 1, 1);
		}
	}
	return got >= want ? 0 : -ETIMEDOUT;
}

static void reorder_run(enum rv v, uint64_t total, size_t head, struct rr_stats *rs)
{
	struct scene s;
	double t0;
	int rc, q = -1;

	if (scene_open(&s))
		return;
	if (v == RV_RCVBUF) {
		int sz = 64 << 20;

		setsockopt(s.p.s1.fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
		setsockopt(s.p.s2.fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	}
	t0 = now();
	s.cw.shut = 1;
	xfer_start(&s.cw, s.q.c, 0, SEED_UP, total, t0 + 10);
	xfer_start(&s.br, s.q.b, 1, SEED_UP, total, t0 + 10);
	if (v == RV_FIRST) {
		/* let whole skbs queue up first: unread is not the same as partly read */
		for (int i = 0; i < 100 && inq(s.p.s1.fd) < (int)(64 * KiB); i++)
			sleep_ms(1);
		q = inq(s.p.s1.fd);
		rc = pump_insert(&s.p);
		if (!rc)
			rc = head_copy(&s.p, head, 0);
	} else {
		rc = head_copy(&s.p, head, v == RV_QUIET);
		q = inq(s.p.s1.fd);
		if (!rc)
			rc = pump_insert(&s.p);
	}
	if (rc) {
		printf("#     %s: setup failed: %s\n", rv_name[v], strerror(-rc));
		goto out;
	}
	if (q > 0)
		rs->partial++;
	if (v == RV_FIXUP)
		rs->fixed += fixup_repeat(&s.p);
	if (v != RV_NWINDOW)
		flow_open(&s.p.up);
	else
		s.p.up.kspan = 0; /* everything is passed up and forwarded by the pump */
	flow_open(&s.p.down);
	pump_run(&s.p, t0 + 10, up_done, &s);
	shutdown(s.q.b, SHUT_WR);
	pump_run(&s.p, now() + 1, NULL, NULL);
	scene_join(&s);
	rs->runs++;
	if (!up_done(&s))
		rs->timeouts++;
	if (s.p.max_idle > rs->max_idle)
		rs->max_idle = s.p.max_idle;
	if (now() - t0 > rs->max_time)
		rs->max_time = now() - t0;
	{
		const struct spliced_sock *st = s.p.s1.k.st;
		int64_t verr = (int64_t)st->seen - (int64_t)(total - s.p.s1.base);
		int bad = !verify_clean(&s.br.v) || s.br.done != total;

		if (llabs(verr) > llabs(rs->verdict_offset_err))
			rs->verdict_offset_err = verr;
		if (s.p.up.bypass > rs->max_bypass)
			rs->max_bypass = s.p.up.bypass;
		if (s.br.done != total)
			rs->short_or_long++;
		rs->garbage += s.br.v.garbage;
		for (unsigned i = 0; i < s.br.v.jumps && i < MAX_JUMPS; i++) {
			if (s.br.v.jump_by[i] < 0)
				rs->repeats++;
			else
				rs->skips++;
		}
		if (bad) {
			rs->bad++;
			if (!rs->first[0])
				snprintf(
					rs->first, sizeof(rs->first),
					"SIOCINQ at insertion %d, backend got %llu of %llu, first "
					"jump at %llu by %lld, verdict seen - expected %lld, seen %llu "
					"kern %llu passed %llu",
					q, (unsigned long long)s.br.done, (unsigned long long)total,
					(unsigned long long)(s.br.v.jumps ? s.br.v.jump_at[0] : 0),
					(long long)(s.br.v.jumps ? s.br.v.jump_by[0] : 0),
					(long long)verr, (unsigned long long)st->seen,
					(unsigned long long)st->kern_fwd,
					(unsigned long long)st->passed);
		}
	}
out:
	scene_close(&s);
}

static void test_reorder_investigation(void)
{
	const uint64_t total = 64 * MiB / (scale > 8 ? 8 : scale);
	double t0 = now();

	printf("# reorder investigation (report only): client streams %llu MiB, the proxy reads "
	       "the first 32 KiB (+ 0-30 KB, varied per run) itself, then inserts and opens a "
	       "window\n",
	       (unsigned long long)(total / MiB));
	for (int v = 0; v < RV_COUNT; v++) {
		struct rr_stats rs;

		memset(&rs, 0, sizeof(rs));
		for (unsigned i = 0; i < rv_runs[v] && now() < t0 + 40; i++)
			reorder_run((enum rv)v, total, 32 * KiB + (i * 4099) % 30000, &rs);
		printf("#   %-40s %u/%u runs not byte-exact (insert with unread bytes on P1 in %u); "
		       "repeats %u skips %u garbage %u wrong length %u; most bytes read beyond "
		       "'passed' %llu; largest verdict offset error %lld; unfinished %u, longest run "
		       "%.2f s, "
		       "longest pump idle %.0f ms\n",
		       rv_name[v], rs.bad, rs.runs, rs.partial, rs.repeats, rs.skips, rs.garbage,
		       rs.short_or_long, (unsigned long long)rs.max_bypass,
		       (long long)rs.verdict_offset_err, rs.timeouts, rs.max_time,
		       rs.max_idle * 1e3);
		if (rs.first[0])
			printf("#     first failure: %s\n", rs.first);
		if (v == RV_FIXUP)
			printf("#     repeated bytes found and dropped by the pump: %llu\n",
			       (unsigned long long)rs.fixed);
	}
	printf("#   map entries left: slot_of %ld targets %ld active %ld\n",
	       map_entries(fd_slot_of), map_entries(fd_targets), map_entries(fd_active));
}

/* ---- 9. alternating daemon spans and kernel windows ---- */

#define ALT_SPANS 3000	     /* spans per direction (divided by KERN_SOCKMAP_SCALE) */
#define ALT_TIME 60	     /* seconds: the bound of one run */
#define ALT_INSERT_AT_SPAN 3 /* insert at the first kernel span from this one on */

/*
 * One direction of the alternating test: the stream is cut into spans, each either carried by
 * the pump ("daemon span": a head or a small body, read with recv() and written with send())
 * or authorized to the kernel ("kernel span": kernel_open for a body of known length,
 * window [read - base, read - base + left)). The pump's bookkeeping mirrors the daemon's flow_run:
 * bytes it read beyond the current span wait in its buffer for the next one; a window opens
 * only when the buffer is empty (everything read has been written); kernel_account() counts
 * kern_fwd deltas against the span's length after every read and before the buffer is taken
 * from, so passed bytes that belong to the next span are never counted into this one.
 */
struct alt {
	struct flow *f;
	uint64_t *size; /* span sizes */
	uint8_t *kern;	/* span kinds: 1 kernel window, 0 daemon */
	unsigned nspans, idx;
	uint64_t total;	    /* bytes in all spans */
	uint64_t left;	    /* bytes of span idx not accounted yet */
	int open;	    /* a window is open for span idx */
	size_t take;	    /* f->buf[start, take) is accounted (may be written) */
	uint64_t kern_seen; /* src kern_fwd already accounted */
	int all_done;	    /* every span accounted: EOF must come next */
	int *insert;	    /* shared: the pair is in the maps */
	struct pump *p;
	/* results */
	uint64_t kern_bytes, user_bytes, windows, kspans, kspans_kern, kspans_all_kern;
	uint64_t span_kern; /* kernel bytes of the current span */
	uint64_t overrun;   /* kernel bytes beyond a span's end (must stay 0) */
	uint64_t stale;	    /* kern_fwd moved while no window was open (must stay 0) */
	uint64_t extra;	    /* bytes read after the last span (must stay 0) */
	uint64_t early_eof; /* EOF before the last span was complete (must stay 0) */
};

static uint64_t alt_rand(uint64_t *s)
{
	/* xorshift64*: deterministic per seed, good enough for sizes */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static int alt_plan(struct alt *a, unsigned nspans, unsigned max_bits, uint64_t seed)
{
	a->size = calloc(nspans, sizeof(*a->size));
	a->kern = calloc(nspans, 1);
	if (!a->size || !a->kern)
		return -ENOMEM;
	a->nspans = nspans;
	for (unsigned i = 0; i < nspans; i++) {
		unsigned bits = (unsigned)(alt_rand(&seed) % max_bits);

		a->size[i] = (1ULL << bits) + alt_rand(&seed) % (1ULL << bits);
		a->kern[i] = (uint8_t)(alt_rand(&seed) & 1);
		a->total += a->size[i];
	}
	a->left = a->size[0];
	return 0;
}

static void alt_free(struct alt *a)
{
	free(a->size);
	free(a->kern);
}

/* kernel_open (kernel_path.c) for a body of known length: window [off, off + left) */
static void alt_open(struct alt *a)
{
	struct spliced_sock *st = a->f->src->k.st;
	uint64_t k = st_load(&st->kern_fwd);
	/* the stream offset counts the bytes the kernel carried too (the daemon never read
	 * them); every one of them lies before this point since no window reached past it */
	uint64_t off = a->f->src->read - a->f->src->base + k;

	if (k != a->kern_bytes)
		a->stale++;
	a->kern_seen = k;
	a->open = 1;
	a->span_kern = 0;
	a->windows++;
	a->f->kspan = 1;
	st->user_fwd = a->f->src->read - a->f->src->base;
	/* publish the end last: the verdict may run on another CPU right now */
	__atomic_store_n(&st->win_end, off + a->left, __ATOMIC_RELEASE);
}

/* kernel_account (kernel_path.c): the verdict's redirects count against the span's length */
static int alt_account(struct alt *a)
{
	uint64_t k, d;

	if (!kin(a->f->src))
		return 0;
	k = st_load(&a->f->src->k.st->kern_fwd);
	d = k - a->kern_seen;
	if (!d)
		return 0;
	if (!a->open) {
		a->stale += d;
		a->kern_seen = k;
		return 1;
	}
	if (d > a->left) {
		a->overrun += d - a->left;
		d = a->left;
	}
	a->kern_seen = k;
	a->left -= d;
	a->kern_bytes += d;
	a->span_kern += d;
	return 1;
}

/* the current span is accounted: move to the next one */
static void alt_next(struct alt *a)
{
	if (a->kern[a->idx]) {
		a->kspans++;
		if (a->span_kern)
			a->kspans_kern++;
		if (a->span_kern == a->size[a->idx])
			a->kspans_all_kern++;
	}
	a->open = 0;
	a->span_kern = 0;
	a->f->kspan = 0;
	if (++a->idx == a->nspans) {
		a->all_done = 1;
		return;
	}
	a->left = a->size[a->idx];
}

/* one turn of a direction (flow_step with spans); returns 1 when something moved */
static int alt_step(struct alt *a)
{
	struct flow *f = a->f;
	int progress = 0;

	for (int i = 0; i < MAX_ITER && !f->done && !f->err; i++) {
		ssize_t r;

		if (a->take > f->start) {
			if (!kern_drained(f->dst)) {
				f->rule1_waits++;
				break;
			}
			r = send(f->dst->fd, f->buf + f->start, a->take - f->start,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (r == -1) {
				if (errno != EAGAIN && errno != EINTR)
					flow_fail(f, -errno, 0);
				break;
			}
			f->dst->written += (uint64_t)r;
			if (kin(f->dst))
				f->dst->k.st->user_in = f->dst->written;
			f->start += (size_t)r;
			f->user_bytes += (uint64_t)r;
			if (f->start == f->end)
				f->start = f->end = a->take = 0;
			progress = 1;
			continue;
		}
		progress |= alt_account(a);
		if (!a->all_done && !a->left) {
			alt_next(a);
			progress = 1;
			continue;
		}
		if (!a->all_done && f->end > a->take) {
			size_t n = f->end - a->take;

			if (n > a->left)
				n = (size_t)a->left;
			a->take += n;
			a->left -= n;
			a->user_bytes += n;
			progress = 1;
			continue;
		}
		if (f->end > f->start) {
			/* bytes beyond the last span: the writer sent more than planned */
			a->extra += f->end - a->take;
			flow_fail(f, -EPROTO, 1);
			break;
		}
		/* the buffer is empty: everything the pump read has been written */
		if (!a->all_done && a->kern[a->idx] && !a->open) {
			if (!*a->insert && a->idx >= ALT_INSERT_AT_SPAN) {
				/* like kernel_pair, but without waiting for a quiet
				 * point: the other direction may be in the middle of an skb */
				if (pump_insert(a->p)) {
					flow_fail(f, -EOPNOTSUPP, 0);
					break;
				}
				*a->insert = 1;
			}
			if (*a->insert) {
				alt_open(a);
				progress = 1;
				continue;
			}
		}
		if (a->open)
			__atomic_store_n(&f->src->k.st->user_fwd, f->src->read - f->src->base,
					 __ATOMIC_RELEASE);
		if (f->src_eof) {
			if (!a->all_done) {
				a->early_eof++;
				flow_fail(f, -ENODATA, 1);
				break;
			}
			if (!src_drained(f)) {
				f->fin_waits++;
				break;
			}
			if (!f->dst_shut && shutdown(f->dst->fd, SHUT_WR) == -1 &&
			    errno != ENOTCONN)
				flow_fail(f, -errno, 0);
			f->dst_shut = 1;
			f->done = 1;
			progress = 1;
			break;
		}
		r = recv(f->src->fd, f->buf, FLOW_BUF, MSG_DONTWAIT);
		if (r > 0) {
			f->src->read += (uint64_t)r;
			f->end = (size_t)r;
			a->take = 0;
			note_bypass(f);
			progress = 1;
			continue;
		}
		if (r == 0) {
			if (!eof_allowed(f))
				break;
			f->src_eof = 1;
			progress = 1;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			flow_fail(f, -errno, 1);
		break;
	}
	return progress;
}

struct alt_scene {
	struct scene s;
	struct alt up, down;
};

static int alt_finished(void *arg)
{
	struct alt_scene *as = arg;

	return all_finished(&as->s);
}

static void alt_report(const char *name, const struct alt *a)
{
	const struct flow *f = a->f;
	const struct spliced_sock *st = f->src->k.st;

	printf("#   %s: %u spans, %llu MiB: kernel %llu B (%.1f %%), pump %llu B; %llu kernel "
	       "spans, %llu windows, the kernel carried part of %llu and all of %llu; inserted "
	       "after %llu B; rule-1 waits %llu",
	       name, a->idx, (unsigned long long)(a->total / MiB),
	       (unsigned long long)a->kern_bytes, 100.0 * (double)a->kern_bytes / (double)a->total,
	       (unsigned long long)a->user_bytes, (unsigned long long)a->kspans,
	       (unsigned long long)a->windows, (unsigned long long)a->kspans_kern,
	       (unsigned long long)a->kspans_all_kern, (unsigned long long)f->src->base,
	       (unsigned long long)f->rule1_waits);
	if (st)
		printf("; verdict: seen %llu kern_fwd %llu passed %llu trims %llu (%llu B, %llu "
		       "failed) cap_hits %llu",
		       (unsigned long long)st->seen, (unsigned long long)st->kern_fwd,
		       (unsigned long long)st->passed, (unsigned long long)st->trims,
		       (unsigned long long)st->trimmed, (unsigned long long)st->trim_fails,
		       (unsigned long long)st->cap_hits);
	printf("\n");
}

static void alt_check(const char *name, struct alt *a, struct xfer *r)
{
	const struct spliced_sock *st = a->f->src->k.st;

	verify_report(name, &r->v);
	ASSERT_EQ(r->done, a->total, name);
	ASSERT_TRUE(r->eof && verify_clean(&r->v) && !r->err, "%s: byte-exact then EOF", name);
	ASSERT_EQ(a->idx, a->nspans, name);
	ASSERT_EQ(a->kern_bytes + a->user_bytes, a->total, name);
	ASSERT_EQ(a->overrun + a->stale + a->extra + a->early_eof, 0, name);
	if (!ASSERT_TRUE(st != NULL, "%s: inserted", name))
		return;
	ASSERT_EQ(st->kern_fwd, a->kern_bytes, name);
	ASSERT_EQ(st->seen, a->total - a->f->src->base, name);
	ASSERT_EQ(st->kern_fwd + st->passed, st->seen, name);
	ASSERT_EQ(st->passed, a->f->src->read - a->f->src->base, name);
}

/* nspans spans each way of 1 B to 2^max_bits - 1 B (log-uniform), writers at pace B/s each
 * (0: as fast as they can) */
static void alt_run(unsigned nspans, unsigned max_bits, uint64_t seed, uint64_t pace,
		    uint64_t tot[2])
{
	static struct alt_scene as;
	uint64_t k0 = kern_redirected(), k1;
	int inserted = 0;
	double t0, dt;

	memset(&as, 0, sizeof(as));
	if (!ASSERT_TRUE(!scene_open(&as.s), "quad"))
		return;
	as.up.f = &as.s.p.up;
	as.down.f = &as.s.p.down;
	as.up.p = as.down.p = &as.s.p;
	as.up.insert = as.down.insert = &inserted;
	if (!ASSERT_TRUE(
		    !alt_plan(&as.up, nspans, max_bits, seed) &&
			    !alt_plan(&as.down, nspans, max_bits, seed ^ 0x9e3779b97f4a7c15ULL),
		    "plan"))
		goto out;
	t0 = now();
	as.s.cw.shut = as.s.bw.shut = 1;
	as.s.cw.pace = as.s.bw.pace = pace;
	xfer_start(&as.s.cw, as.s.q.c, 0, SEED_UP, as.up.total, t0 + ALT_TIME);
	xfer_start(&as.s.bw, as.s.q.b, 0, SEED_DOWN, as.down.total, t0 + ALT_TIME);
	xfer_start(&as.s.cr, as.s.q.c, 1, SEED_DOWN, as.down.total, t0 + ALT_TIME);
	xfer_start(&as.s.br, as.s.q.b, 1, SEED_UP, as.up.total, t0 + ALT_TIME);
	for (;;) {
		int progress = alt_step(&as.up) | alt_step(&as.down);

		if (alt_finished(&as) || as.s.p.up.err || as.s.p.down.err || now() > t0 + ALT_TIME)
			break;
		if (!progress)
			pump_wait(&as.s.p);
	}
	if (scene_running(&as.s)) {
		/* a failed run: end the threads now instead of at their deadline */
		shutdown(as.s.q.c, SHUT_RDWR);
		shutdown(as.s.q.b, SHUT_RDWR);
	}
	scene_join(&as.s);
	dt = now() - t0;
	k1 = kern_redirected();
	printf("# alternating windows, writers %s (seed %#llx): %.2f s, %.2f GB/s total\n",
	       pace ? "paced" : "flat out", (unsigned long long)seed, dt,
	       (double)(as.up.total + as.down.total) / dt / 1e9);
	alt_report("up (client->backend)", &as.up);
	alt_report("down (backend->client)", &as.down);
	if (as.s.p.up.err || as.s.p.down.err)
		printf("#   pump errors: up %s, down %s\n", strerror(-as.s.p.up.err),
		       strerror(-as.s.p.down.err));
	alt_check("up", &as.up, &as.s.br);
	alt_check("down", &as.down, &as.s.cr);
	ASSERT_EQ(as.s.cw.err + as.s.bw.err, 0, "writer errors");
	ASSERT_EQ(as.s.p.up.err + as.s.p.down.err, 0, "pump errors");
	ASSERT_EQ(as.s.p.up.bypass + as.s.p.down.bypass, 0, "read beyond passed");
	ASSERT_EQ(k1 - k0, as.up.kern_bytes + as.down.kern_bytes, "redirect_bytes");
	/* how much the windows carried depends on scheduling (flat out, the verdict mostly finds
	 * passed bytes still unread when a window opens; under qemu TCG even the paced run may
	 * get none): reported above, not asserted. The byte checks are the assertion. */
	tot[0] += as.up.kern_bytes + as.down.kern_bytes;
	tot[1] += as.up.user_bytes + as.down.user_bytes;
out:
	alt_free(&as.up);
	alt_free(&as.down);
	scene_close(&as.s);
	check_maps_empty("after alternating windows");
}

static void test_alternating_windows(void)
{
	const char *s = getenv("KERN_SOCKMAP_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) * 2654435761ULL;
	unsigned n = (unsigned)(ALT_SPANS / scale);
	uint64_t tot[2] = {0, 0};

	/* flat out, spans up to 4 MiB: the pump is the bottleneck and the verdict mostly finds
	 * passed bytes still unread when a window opens, so the kernel carries little */
	alt_run(n < 8 ? 8 : n, 22, seed | 1, 0, tot);
	/* writers slower than the pump (peers on a network), spans up to 1 MiB: windows latch
	 * onto the kernel, which then carries a large share */
	alt_run(n < 8 ? 8 : n, 20, (seed + 2) | 1, 50 * MiB, tot);
	printf("#   kernel carried %llu MiB, the pump %llu MiB (rerun with KERN_SOCKMAP_SEED=%#llx)\n",
	       (unsigned long long)(tot[0] / MiB), (unsigned long long)(tot[1] / MiB),
	       (unsigned long long)(seed | 1));
}

/* ---- main ---- */

static const char *only; /* KERN_SOCKMAP_ONLY: run the tests whose name contains it */

/* RUN_TEST with the optional filter and the test's run time */
#define RUN(fn)                                                  \
	do {                                                     \
		double ___t = now();                             \
		if (only && !strstr(#fn, only))                  \
			break;                                   \
		RUN_TEST(fn);                                    \
		printf("# %s took %.1f s\n", #fn, now() - ___t); \
	} while (0)

static void skip_all(const char *why)
{
	static const char *const names[] = {
		"test_duplex_2g",  "test_inflight_cap",		 "test_prequeued",
		"test_half_close", "test_insert_after_fin",	 "test_rst",
		"test_cycles",	   "test_reorder_investigation", "test_alternating_windows"};

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		printf("ok %u - %s # skip %s\n", i + 1, names[i], why);
	printf("1..%u\n", (unsigned)(sizeof(names) / sizeof(names[0])));
}

int main(void)
{
	const char *sc = getenv("KERN_SOCKMAP_SCALE");
	double t0 = now();
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	only = getenv("KERN_SOCKMAP_ONLY");
	if (sc && atoi(sc) > 1)
		scale = (uint64_t)atoi(sc);
	if (geteuid() != 0) {
		skip_all("not root (BPF sockmap needs CAP_BPF/CAP_NET_ADMIN)");
		return 0;
	}
	log_init(1, 0);
	snprintf(cf.pin_path, sizeof(cf.pin_path), "/sys/fs/bpf/spliced-kern-test-%d",
		 (int)getpid());
	cf.max_connections = 1024;
	if (!splice_init(&cf, 0)) {
		splice_fini(0);
		skip_all("no kernel data path (splice_init failed, see the log above)");
		return 0;
	}
	find_maps();
	lfd_proxy = listen_lo(&port_proxy);
	lfd_backend = listen_lo(&port_backend);
	if (lfd_proxy < 0 || lfd_backend < 0 || fd_slot_of < 0 || fd_targets < 0 || fd_active < 0 ||
	    fd_conns < 0) {
		printf("not ok 1 - setup (listeners %d %d, maps %d %d %d %d)\n", lfd_proxy,
		       lfd_backend, fd_slot_of, fd_targets, fd_active, fd_conns);
		printf("1..1\n");
		splice_fini(0);
		return 1;
	}
	printf("# pin_path %s, tcp_rmem max %llu, tcp_wmem max %llu, scale 1/%llu\n", cf.pin_path,
	       (unsigned long long)sysctl_max("/proc/sys/net/ipv4/tcp_rmem"),
	       (unsigned long long)sysctl_max("/proc/sys/net/ipv4/tcp_wmem"),
	       (unsigned long long)scale);

	RUN(test_duplex_2g);
	RUN(test_inflight_cap);
	RUN(test_prequeued);
	RUN(test_half_close);
	RUN(test_insert_after_fin);
	RUN(test_rst);
	RUN(test_cycles);
	RUN(test_reorder_investigation);
	RUN(test_alternating_windows);

	close(lfd_proxy);
	close(lfd_backend);
	splice_fini(0);
	printf("# total %.1f s\n", now() - t0);
	rc = TEST_DONE();
	return rc;
}
