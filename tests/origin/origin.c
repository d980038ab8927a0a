// SPDX-License-Identifier: BSD-2-Clause
/*
 * origin: the HTTP/1.1 origin server the end-to-end tests start as proxy backends.
 *
 * A test peer, not a product: one detached thread per connection with blocking sockets keeps
 * it obviously correct while still moving several GiB/s over loopback. Request heads are parsed
 * leniently; request body framing (Content-Length, chunked) is handled exactly, because the
 * tests check what the proxy forwarded. Every response carries X-Backend (the -n name) and
 * X-Conn-Req (1-based index of the request on its TCP connection) so tests can tell which
 * backend answered and whether connections were reused.
 *
 * Endpoints and options are listed in usage() below.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define PATTERN_SIZE (1u << 20)	 /* /size bodies repeat this block */
#define WRITE_CHUNK (256u << 10) /* largest single send of body data */
#define RBUF_SIZE (256u << 10)	 /* per-connection read buffer */
#define HEAD_MAX (64u << 10)	 /* larger request heads get 431 */
#define LINE_MAX_LEN (8u << 10)	 /* chunk-size and trailer lines */
#define HOLD_SECONDS 60
#define THREAD_STACK (256u << 10)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static const char *backend_name = "origin";
static int log_fd = -1;
static const char *delay_file; /* -D: milliseconds to wait before answering, read per request */
static int fixed_status;       /* -S: answer every plain request with this status */
static int log_inflight;       /* -I: log lines end with " inflight=N" */
static _Atomic int inflight;   /* requests received whose response has not started yet */

/*
 * The 1 MiB pattern block followed by a copy of its first WRITE_CHUNK bytes, so that a send of
 * up to WRITE_CHUNK bytes starting at any offset inside the block is one contiguous range.
 */
static unsigned char *pattern;

static const unsigned int chunk_cycle[] = {1, 17, 4096, 65536, 300000};

struct conn {
	int fd;
	unsigned char *buf; /* unread input is buf[off, len) */
	size_t off;
	size_t len;
	unsigned long nreq;
	char *head; /* current request head as received, head_len bytes */
	size_t head_len;
	char *work; /* NUL-split copy of head used for parsing */
	int busy;   /* counted in inflight: the request's response has not started */
	int reset;  /* end with a reset instead of a FIN (/size/N?reset_at=M) */
};

/* the response of c's request starts: it no longer counts in inflight (before its first byte
 * goes out, so a proxy that waits for the response before sending the next request never sees
 * two counted at once) */
static void unbusy(struct conn *c)
{
	if (c->busy) {
		c->busy = 0;
		atomic_fetch_sub(&inflight, 1);
	}
}

struct request {
	char *method;
	char *target;
	char *version;
	char *path;
	char *query;  /* after '?', or "" */
	char *ws_key; /* Sec-WebSocket-Key or NULL */
	int is_head;
	int conn_close;
	int http10;
	int has_cl;
	uint64_t cl;
	int chunked;
	int upgrade_ws;
	int expect_continue;
};

typedef void (*body_cb)(void *ctx, const unsigned char *data, size_t n);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: origin -p PORT [-a ADDR] [-n NAME] [-l LOGFILE] [-P PIDFILE] [-D FILE] [-S N] [-I]\n"
		"  -p, --port PORT      TCP port (0 = ephemeral, printed on stdout)\n"
		"  -a, --addr ADDR      listen address, IPv4 or IPv6 (default 127.0.0.1)\n"
		"  -n, --name NAME      backend name for X-Backend and default bodies (default origin)\n"
		"  -l, --log FILE       append \"METHOD TARGET\" per request\n"
		"  -P, --pidfile FILE   write the PID once listening\n"
		"  -D, --delay-file FILE  wait the milliseconds FILE holds (when it exists) before\n"
		"                       answering a request (read per request: a test makes it slow)\n"
		"  -S, --status N       answer every request but /hold, /upload and upgrades with N\n"
		"  -I, --log-inflight   end each log line with \" inflight=N\" (requests not answered yet)\n"
		"endpoints: /size/N[k|m|g][?chunked=1|?close=1][&pause_ms=M][&reset_at=M]  /upload\n"
		"           /echo[?leak=1]\n"
		"           /status/NNN\n"
		"           /slow?ms=N  /hold  any request with Upgrade: websocket\n"
		"           .../switch/PROTO (101 to PROTO whatever was asked, then echo)\n"
		"           anything else\n");
}

static void pattern_init(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t i;
	int b;

	pattern = malloc(PATTERN_SIZE + WRITE_CHUNK);
	if (!pattern) {
		perror("malloc");
		exit(1);
	}
	/* xorshift64, stored little-endian explicitly so the body does not depend on the host */
	for (i = 0; i < PATTERN_SIZE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		for (b = 0; b < 8; b++)
			pattern[i + b] = (unsigned char)(x >> (8 * b));
	}
	memcpy(pattern + PATTERN_SIZE, pattern, WRITE_CHUNK);
}

/* Send every byte of iov[0..cnt) (iov is consumed); 0 or -errno. */
static int send_iov_all(int fd, struct iovec *iov, int cnt, int more)
{
	struct msghdr msg;
	ssize_t n;

	while (cnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			cnt--;
			continue;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = cnt;
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && cnt > 0) {
			if ((size_t)n >= iov->iov_len) {
				n -= iov->iov_len;
				iov->iov_len = 0;
				iov++;
				cnt--;
			} else {
				iov->iov_base = (char *)iov->iov_base + n;
				iov->iov_len -= n;
				n = 0;
			}
		}
	}
	return 0;
}

static int send_all(int fd, const void *p, size_t n, int more)
{
	struct iovec iov = {.iov_base = (void *)p, .iov_len = n};

	return send_iov_all(fd, &iov, 1, more);
}

/* Send pattern bytes [off, off + n) of the endless body; 0 or -errno. */
static int send_pattern(int fd, uint64_t off, uint64_t n, int more)
{
	size_t o, k;
	int err;

	while (n > 0) {
		o = off % PATTERN_SIZE;
		k = n < WRITE_CHUNK ? (size_t)n : WRITE_CHUNK;
		err = send_all(fd, pattern + o, k, more || k < n);
		if (err)
			return err;
		off += k;
		n -= k;
	}
	return 0;
}

/*
 * Read more input into c->buf. Returns bytes read, 0 on EOF, -ENOBUFS when the buffer is full
 * of unconsumed data, or -errno.
 */
static ssize_t conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->off == c->len) {
		c->off = 0;
		c->len = 0;
	} else if (c->len == RBUF_SIZE && c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == RBUF_SIZE)
		return -ENOBUFS;
	for (;;) {
		n = recv(c->fd, c->buf + c->len, RBUF_SIZE - c->len, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->len += n;
		return n;
	}
}

/*
 * Find the end of a request head in c->buf[off, len), lenient about bare LF. Returns the head
 * length including the blank line, or 0 if not complete yet.
 */
static size_t find_head_end(const struct conn *c)
{
	const unsigned char *p = c->buf + c->off;
	size_t n = c->len - c->off, i;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/*
 * Read the next request head and copy it to c->head. Returns 1 when a head is ready, 0 on a
 * clean EOF between requests, -E2BIG for an oversized head, or another -errno.
 */
static int read_head(struct conn *c)
{
	size_t hl;
	ssize_t n;

	for (;;) {
		/* tolerate stray CRLFs between requests (RFC 9112 section 2.2) */
		while (c->off < c->len && (c->buf[c->off] == '\r' || c->buf[c->off] == '\n'))
			c->off++;
		hl = find_head_end(c);
		if (hl > HEAD_MAX)
			return -E2BIG;
		if (hl) {
			memcpy(c->head, c->buf + c->off, hl);
			memcpy(c->work, c->buf + c->off, hl);
			c->head[hl] = '\0';
			c->work[hl] = '\0';
			c->head_len = hl;
			c->off += hl;
			return 1;
		}
		if (c->len - c->off >= HEAD_MAX)
			return -E2BIG;
		n = conn_fill(c);
		if (n == 0)
			return c->off == c->len ? 0 : -ECONNRESET;
		if (n < 0)
			return (int)n;
	}
}

/* Read one line (chunk size or trailer); *line points into c->buf until the next fill. */
static int read_line(struct conn *c, char **line, size_t *len)
{
	unsigned char *p, *nl;
	size_t l;
	ssize_t n;

	for (;;) {
		p = c->buf + c->off;
		nl = memchr(p, '\n', c->len - c->off);
		if (nl) {
			l = nl - p;
			c->off += l + 1;
			if (l > 0 && p[l - 1] == '\r')
				l--;
			*line = (char *)p;
			*len = l;
			return 0;
		}
		if (c->len - c->off > LINE_MAX_LEN)
			return -E2BIG;
		if (c->off > 0 && c->off < c->len) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		n = conn_fill(c);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return (int)n;
	}
}

/* Pass exactly n input bytes to cb; 0 or -errno (-ECONNRESET on early EOF). */
static int read_exact(struct conn *c, uint64_t n, body_cb cb, void *ctx)
{
	size_t k;
	ssize_t r;

	while (n > 0) {
		if (c->off == c->len) {
			r = conn_fill(c);
			if (r == 0)
				return -ECONNRESET;
			if (r < 0)
				return (int)r;
		}
		k = c->len - c->off;
		if (k > n)
			k = (size_t)n;
		if (cb)
			cb(ctx, c->buf + c->off, k);
		c->off += k;
		n -= k;
	}
	return 0;
}

/*
 * Consume the request body per its framing, feeding the decoded bytes to cb (may be NULL).
 * Returns 0 or -errno; -EBADMSG for malformed chunked framing. *total gets the decoded length.
 */
static int read_body(struct conn *c, const struct request *rq, body_cb cb, void *ctx,
		     uint64_t *total)
{
	uint64_t sz;
	size_t len, i;
	char *line;
	int err, digits, v;

	*total = 0;
	if (!rq->chunked) {
		if (!rq->has_cl)
			return 0;
		*total = rq->cl;
		return read_exact(c, rq->cl, cb, ctx);
	}
	for (;;) {
		err = read_line(c, &line, &len);
		if (err)
			return err;
		sz = 0;
		digits = 0;
		for (i = 0; i < len && isxdigit((unsigned char)line[i]); i++) {
			v = isdigit((unsigned char)line[i])
				    ? line[i] - '0'
				    : tolower((unsigned char)line[i]) - 'a' + 10;
			if (sz >> 56)
				return -EBADMSG;
			sz = sz * 16 + v;
			digits++;
		}
		if (!digits || (i < len && line[i] != ';' && line[i] != ' ' && line[i] != '\t'))
			return -EBADMSG;
		if (sz == 0)
			break;
		err = read_exact(c, sz, cb, ctx);
		if (err)
			return err;
		*total += sz;
		err = read_line(c, &line, &len);
		if (err)
			return err;
		if (len != 0)
			return -EBADMSG;
	}
	/* trailer section up to the blank line */
	do {
		err = read_line(c, &line, &len);
		if (err)
			return err;
	} while (len != 0);
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

/*
 * Format the response head into out (size cap). body_len < 0 means no Content-Length.
 * extra is appended verbatim (each line CRLF-terminated) and may be "".
 */
static int format_head(const struct conn *c, const struct request *rq, char *out, size_t cap,
		       int status, const char *ctype, int64_t body_len, const char *extra)
{
	char cl[48] = "";
	int n;

	if (body_len >= 0)
		snprintf(cl, sizeof(cl), "Content-Length: %" PRId64 "\r\n", body_len);
	n = snprintf(out, cap,
		     "HTTP/1.1 %d %s\r\nX-Backend: %s\r\nX-Conn-Req: %lu\r\n%s%s%s%s%s%s\r\n",
		     status, reason(status), backend_name, c->nreq, ctype ? "Content-Type: " : "",
		     ctype ? ctype : "", ctype ? "\r\n" : "", cl, extra,
		     rq && rq->conn_close ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= cap)
		return -EOVERFLOW;
	return n;
}

/* Send a complete response with an in-memory body (omitted for HEAD); 0 or -errno. */
static int send_simple(struct conn *c, const struct request *rq, int status, const char *ctype,
		       const void *body, size_t body_len)
{
	char head[1024];
	struct iovec iov[2];
	int n;

	unbusy(c);

	n = format_head(c, rq, head, sizeof(head), status, ctype, (int64_t)body_len, "");
	if (n < 0)
		return n;
	iov[0].iov_base = head;
	iov[0].iov_len = n;
	iov[1].iov_base = (void *)body;
	iov[1].iov_len = rq && rq->is_head ? 0 : body_len;
	return send_iov_all(c->fd, iov, 2, 0);
}

static int send_text(struct conn *c, const struct request *rq, int status, const char *text)
{
	return send_simple(c, rq, status, "text/plain", text, strlen(text));
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Is tok one of the comma-separated tokens in list (case-insensitive)? */
static int has_token(const char *list, const char *tok)
{
	size_t tl = strlen(tok), l;
	const char *p = list, *e;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		e = p;
		while (*e && *e != ',')
			e++;
		l = e - p;
		while (l > 0 && (p[l - 1] == ' ' || p[l - 1] == '\t'))
			l--;
		if (l == tl && strncasecmp(p, tok, tl) == 0)
			return 1;
		p = e;
	}
	return 0;
}

/* Parse c->work in place into rq; 0 or -EBADMSG. */
static int parse_head(struct conn *c, struct request *rq)
{
	char *line, *next, *colon, *name, *val, *sp, *p, *end;
	unsigned long long v;
	int first = 1;

	memset(rq, 0, sizeof(*rq));
	for (line = c->work; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		p = line + strlen(line);
		if (p > line && p[-1] == '\r')
			p[-1] = '\0';
		if (!*line)
			break;
		if (first) {
			first = 0;
			rq->method = line;
			sp = strpbrk(line, " \t");
			if (!sp)
				return -EBADMSG;
			*sp++ = '\0';
			rq->target = sp + strspn(sp, " \t");
			sp = strpbrk(rq->target, " \t");
			if (sp) {
				*sp++ = '\0';
				rq->version = trim(sp);
			} else {
				rq->version = "HTTP/0.9";
			}
			continue;
		}
		colon = strchr(line, ':');
		if (!colon)
			continue; /* lenient: ignore junk lines */
		*colon = '\0';
		name = trim(line);
		val = trim(colon + 1);
		if (!strcasecmp(name, "Content-Length")) {
			errno = 0;
			v = strtoull(val, &end, 10);
			if (!isdigit((unsigned char)*val) || *end || errno)
				return -EBADMSG;
			if (rq->has_cl && rq->cl != v)
				return -EBADMSG;
			rq->has_cl = 1;
			rq->cl = v;
		} else if (!strcasecmp(name, "Transfer-Encoding")) {
			if (has_token(val, "chunked"))
				rq->chunked = 1;
		} else if (!strcasecmp(name, "Connection")) {
			if (has_token(val, "close"))
				rq->conn_close = 1;
		} else if (!strcasecmp(name, "Upgrade")) {
			if (strcasestr(val, "websocket"))
				rq->upgrade_ws = 1;
		} else if (!strcasecmp(name, "Sec-WebSocket-Key")) {
			rq->ws_key = val;
		} else if (!strcasecmp(name, "Expect")) {
			if (!strcasecmp(val, "100-continue"))
				rq->expect_continue = 1;
		}
	}
	if (!rq->method || !*rq->target)
		return -EBADMSG;
	if (strcasecmp(rq->version, "HTTP/1.1") != 0) {
		rq->http10 = 1;
		rq->conn_close = 1;
	}
	rq->is_head = !strcmp(rq->method, "HEAD");

	/* absolute-form: drop scheme and authority */
	p = rq->target;
	if (!strncasecmp(p, "http://", 7) || !strncasecmp(p, "https://", 8)) {
		p = strstr(p, "://") + 3;
		p = strchr(p, '/');
	}
	/* path and query are split in a heap copy so the logged target stays intact */
	rq->path = strdup(p ? p : "/");
	if (!rq->path)
		return -ENOMEM;
	sp = strchr(rq->path, '?');
	if (sp) {
		*sp++ = '\0';
		rq->query = sp;
	} else {
		rq->query = rq->path + strlen(rq->path);
	}
	return 0;
}

/* Value of key in a query string, copied into out; 1 if found. */
static int query_get(const char *q, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key), l;
	const char *e;

	while (*q) {
		e = strchr(q, '&');
		if (!e)
			e = q + strlen(q);
		if (!strncmp(q, key, kl) && (q[kl] == '=' || q + kl == e)) {
			q += kl;
			if (*q == '=')
				q++;
			l = e - q;
			if (l >= cap)
				l = cap - 1;
			memcpy(out, q, l);
			out[l] = '\0';
			return 1;
		}
		q = *e ? e + 1 : e;
	}
	return 0;
}

static int query_flag(const char *q, const char *key)
{
	char v[16];

	return query_get(q, key, v, sizeof(v)) && strcmp(v, "0") && strcasecmp(v, "false");
}

/* "123", "4k", "10m", "1g" -> bytes; 0 or -EINVAL. */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end || v > (UINT64_MAX >> (shift + 1)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static void log_request(const struct request *rq, int now_inflight)
{
	size_t ml, tl, n;
	char *line;

	if (log_fd == -1)
		return;
	ml = strlen(rq->method);
	tl = strlen(rq->target);
	line = malloc(ml + tl + 32);
	if (!line)
		return;
	memcpy(line, rq->method, ml);
	line[ml] = ' ';
	memcpy(line + ml + 1, rq->target, tl);
	n = ml + 1 + tl;
	if (log_inflight)
		n += (size_t)snprintf(line + n, 24, " inflight=%d", now_inflight);
	line[n++] = '\n';
	/* one write(2) on an O_APPEND fd: lines from concurrent threads never interleave */
	if (write(log_fd, line, n) == -1)
		perror("origin: log write");
	free(line);
}

/* -D: the delay the file asks for now (0 when it is missing or empty) */
static void delay_from_file(void)
{
	char buf[32];
	struct timespec ts;
	ssize_t n;
	long ms;
	int fd;

	if (!delay_file)
		return;
	fd = open(delay_file, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	ms = atol(buf);
	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void sha_cb(void *ctx, const unsigned char *data, size_t n)
{
	EVP_DigestUpdate(ctx, data, n);
}

/* Return values of the handlers: 0 keep the connection, 1 close it, -errno close it. */

static int handle_size(struct conn *c, struct request *rq, const char *arg)
{
	char head[1024];
	uint64_t n, off = 0, k;
	unsigned int ci = 0;
	int close_mode, chunked, hl, err;
	char ch[32], v[32];
	struct iovec iov[3];
	long pause_ms;

	if (parse_size(arg, &n))
		return send_text(c, rq, 400, "bad size\n") ?: 0;
	close_mode = query_flag(rq->query, "close");
	chunked = !close_mode && query_flag(rq->query, "chunked");
	if (chunked && rq->http10) {
		/* HTTP/1.0 cannot receive chunked */
		close_mode = 1;
		chunked = 0;
	}
	if (close_mode)
		rq->conn_close = 1;
	hl = format_head(c, rq, head, sizeof(head), 200, "application/octet-stream",
			 close_mode || chunked ? -1 : (int64_t)n,
			 chunked ? "Transfer-Encoding: chunked\r\n" : "");
	if (hl < 0)
		return hl;
	pause_ms = query_get(rq->query, "pause_ms", v, sizeof(v)) ? atol(v) : 0;
	err = send_all(c->fd, head, hl, !rq->is_head && (n > 0 || chunked) && pause_ms <= 0);
	if (err || rq->is_head)
		return err ?: rq->conn_close;
	if (pause_ms > 0) {
		/* the head alone first: the proxy sees a quiet upstream before the body */
		struct timespec ts = {.tv_sec = pause_ms / 1000,
				      .tv_nsec = (pause_ms % 1000) * 1000000L};

		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	if (!chunked && query_get(rq->query, "reset_at", v, sizeof(v)) && parse_size(v, &k) == 0 &&
	    k < n) {
		/* the first M bytes, then a reset: a server cut mid-body (the rest never
		 * comes, and no FIN says the body ended) */
		err = send_pattern(c->fd, 0, k, 0);
		if (!err) {
			/* let the bytes leave before the reset drops what is unsent */
			struct timespec ts = {.tv_nsec = 100000000L};

			nanosleep(&ts, NULL);
		}
		c->reset = 1;
		return 1;
	}
	if (!chunked) {
		err = send_pattern(c->fd, 0, n, 0);
		return err ?: rq->conn_close;
	}
	while (off < n) {
		k = chunk_cycle[ci++ % (sizeof(chunk_cycle) / sizeof(chunk_cycle[0]))];
		if (k > n - off)
			k = n - off;
		if (k <= WRITE_CHUNK) {
			iov[0].iov_base = ch;
			iov[0].iov_len = snprintf(ch, sizeof(ch), "%" PRIx64 "\r\n", k);
			iov[1].iov_base = pattern + off % PATTERN_SIZE;
			iov[1].iov_len = k;
			iov[2].iov_base = "\r\n";
			iov[2].iov_len = 2;
			err = send_iov_all(c->fd, iov, 3, 1);
		} else {
			err = send_all(c->fd, ch, snprintf(ch, sizeof(ch), "%" PRIx64 "\r\n", k),
				       1);
			err = err ?: send_pattern(c->fd, off, k, 1);
			err = err ?: send_all(c->fd, "\r\n", 2, 1);
		}
		if (err)
			return err;
		off += k;
	}
	err = send_all(c->fd, "0\r\n\r\n", 5, 0);
	return err ?: rq->conn_close;
}

static int handle_upload(struct conn *c, struct request *rq)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char out[2 * EVP_MAX_MD_SIZE + 32];
	uint64_t total;
	EVP_MD_CTX *ctx;
	int err, n;

	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		err = -EIO;
		goto free_ctx;
	}
	err = read_body(c, rq, sha_cb, ctx, &total);
	if (err == -EBADMSG || err == -E2BIG)
		err = send_text(c, rq, 400, "bad chunked framing\n") ?: 1;
	if (err)
		goto free_ctx;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	n = 0;
	for (i = 0; i < mdlen; i++)
		n += snprintf(out + n, sizeof(out) - n, "%02x", md[i]);
	snprintf(out + n, sizeof(out) - n, " %" PRIu64 "\n", total);
	err = send_text(c, rq, 200, out) ?: rq->conn_close;
free_ctx:
	EVP_MD_CTX_free(ctx);
	return err;
}

static int handle_hold(struct conn *c, struct request *rq)
{
	struct timespec start, now;
	struct pollfd pfd;
	char head[1024];
	long left_ms;
	int hl, err;
	ssize_t r;

	hl = format_head(c, rq, head, sizeof(head), 200, "application/octet-stream", 100, "");
	if (hl < 0)
		return hl;
	err = send_all(c->fd, head, hl, 0);
	if (err)
		return err;
	/* keep the promise of 100 bytes unfulfilled; give up early if the peer leaves */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left_ms = HOLD_SECONDS * 1000L - ((now.tv_sec - start.tv_sec) * 1000L +
						  (now.tv_nsec - start.tv_nsec) / 1000000L);
		if (left_ms <= 0)
			break;
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left_ms) <= 0)
			continue;
		r = recv(c->fd, c->buf, RBUF_SIZE, 0);
		if (r == 0 || (r == -1 && errno != EINTR))
			break;
	}
	return 1;
}

/* 101 to proto (with Sec-WebSocket-Accept when the request has a key), then a raw echo */
static int handle_websocket(struct conn *c, struct request *rq, const char *proto)
{
	char head[1024], extra[256], keybuf[256], accept[64];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int hl, err;
	ssize_t r;

	if (strlen(proto) > 64)
		return send_text(c, rq, 400, "protocol name too long\n") ?: 1;
	snprintf(extra, sizeof(extra), "Upgrade: %s\r\nConnection: Upgrade\r\n", proto);
	if (rq->ws_key && strlen(rq->ws_key) < 128) {
		snprintf(keybuf, sizeof(keybuf), "%s" WS_GUID, rq->ws_key);
		if (EVP_Digest(keybuf, strlen(keybuf), md, &mdlen, EVP_sha1(), NULL)) {
			EVP_EncodeBlock((unsigned char *)accept, md, mdlen);
			snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
				 "Sec-WebSocket-Accept: %s\r\n", accept);
		}
	}
	rq->conn_close = 0; /* the header would contradict the upgrade */
	hl = format_head(c, rq, head, sizeof(head), 101, NULL, -1, extra);
	if (hl < 0)
		return hl;
	err = send_all(c->fd, head, hl, 0);
	if (err)
		return err;
	/* raw echo, starting with whatever arrived right behind the head */
	for (;;) {
		if (c->off < c->len) {
			err = send_all(c->fd, c->buf + c->off, c->len - c->off, 0);
			if (err)
				return err;
		}
		c->off = c->len = 0;
		r = recv(c->fd, c->buf, RBUF_SIZE, 0);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		c->len = r;
	}
	shutdown(c->fd, SHUT_WR);
	return 1;
}

/* Serve one parsed request; 0 keep-alive, 1 close, -errno close. */
static int dispatch(struct conn *c, struct request *rq)
{
	char msg[128], v[32];
	uint64_t total;
	struct timespec ts;
	long ms;
	int err, status;

	if (strstr(rq->path, "/switch/"))
		return handle_websocket(c, rq, strstr(rq->path, "/switch/") + 8);
	if (rq->upgrade_ws)
		return handle_websocket(c, rq, "websocket");
	if (!strcmp(rq->path, "/hold"))
		return handle_hold(c, rq);
	if (rq->expect_continue && !rq->http10 && (rq->chunked || (rq->has_cl && rq->cl))) {
		err = send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, 0);
		if (err)
			return err;
	}
	if (!strcmp(rq->path, "/upload"))
		return handle_upload(c, rq);

	/* the rest ignore the request body */
	err = read_body(c, rq, NULL, NULL, &total);
	if (err == -EBADMSG || err == -E2BIG)
		return send_text(c, rq, 400, "bad chunked framing\n") ?: 1;
	if (err)
		return err;
	delay_from_file();
	if (fixed_status) {
		snprintf(msg, sizeof(msg), "%d %s from %s\n", fixed_status, reason(fixed_status),
			 backend_name);
		return send_text(c, rq, fixed_status, msg) ?: rq->conn_close;
	}
	if (!strncmp(rq->path, "/size/", 6))
		return handle_size(c, rq, rq->path + 6);
	if (!strcmp(rq->path, "/echo") && strstr(rq->query, "leak=1")) {
		/* what backends say about themselves, for the tests of hidden headers */
		char head[1024];
		struct iovec iov[2];
		int n = format_head(c, rq, head, sizeof(head), 200, "text/plain",
				    (int64_t)c->head_len,
				    "Server: Apache/2.4.57 (Debian)\r\nX-Powered-By: PHP/8.2\r\n");

		if (n < 0)
			return n;
		iov[0].iov_base = head;
		iov[0].iov_len = (size_t)n;
		iov[1].iov_base = c->head;
		iov[1].iov_len = rq->is_head ? 0 : c->head_len;
		return send_iov_all(c->fd, iov, 2, 0) ?: rq->conn_close;
	}
	if (!strcmp(rq->path, "/echo"))
		return send_simple(c, rq, 200, "text/plain", c->head, c->head_len)
			       ?: rq->conn_close;
	if (!strncmp(rq->path, "/status/", 8)) {
		status = atoi(rq->path + 8);
		if (status < 200 || status > 599)
			return send_text(c, rq, 400, "bad status\n") ?: rq->conn_close;
		if (status == 204 || status == 304) {
			char head[1024];
			int hl = format_head(c, rq, head, sizeof(head), status, NULL, -1, "");

			if (hl < 0)
				return hl;
			return send_all(c->fd, head, hl, 0) ?: rq->conn_close;
		}
		snprintf(msg, sizeof(msg), "%d %s\n", status, reason(status));
		return send_text(c, rq, status, msg) ?: rq->conn_close;
	}
	if (!strcmp(rq->path, "/slow") && query_get(rq->query, "ms", v, sizeof(v))) {
		ms = atol(v);
		if (ms > 0) {
			ts.tv_sec = ms / 1000;
			ts.tv_nsec = (ms % 1000) * 1000000L;
			while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
				;
		}
	}
	snprintf(msg, sizeof(msg), "%s\n", backend_name);
	return send_text(c, rq, 200, msg) ?: rq->conn_close;
}

static void conn_serve(struct conn *c)
{
	struct request rq;
	int rc;

	for (;;) {
		rc = read_head(c);
		if (rc <= 0) {
			if (rc == -E2BIG) {
				c->nreq++;
				send_text(c, NULL, 431, "request head too large\n");
			}
			return;
		}
		c->nreq++;
		rc = parse_head(c, &rq);
		if (rc) {
			free(rq.path);
			send_text(c, NULL, 400, "bad request\n");
			return;
		}
		c->busy = 1;
		log_request(&rq, atomic_fetch_add(&inflight, 1) + 1);
		rc = dispatch(c, &rq);
		unbusy(c);
		free(rq.path);
		if (rc)
			return;
	}
}

/*
 * Send FIN, then drain input for a moment before close(2): closing with unread input makes the
 * kernel send RST, which can destroy a response (e.g. a 431) the peer has not read yet.
 */
static void linger_close(struct conn *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int i;

	if (c->reset) {
		struct linger rst = {.l_onoff = 1, .l_linger = 0};

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		close(c->fd);
		return;
	}
	if (shutdown(c->fd, SHUT_WR) == 0) {
		for (i = 0; i < 20; i++) {
			if (poll(&pfd, 1, 50) == 0)
				continue;
			if (recv(c->fd, c->buf, RBUF_SIZE, MSG_DONTWAIT) <= 0)
				break;
		}
	}
	close(c->fd);
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;

	conn_serve(c);
	linger_close(c);
	free(c->work);
	free(c->head);
	free(c->buf);
	free(c);
	return NULL;
}

static struct conn *conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->buf = malloc(RBUF_SIZE);
	c->head = malloc(HEAD_MAX + 1);
	c->work = malloc(HEAD_MAX + 1);
	if (!c->buf || !c->head || !c->work) {
		free(c->work);
		free(c->head);
		free(c->buf);
		free(c);
		return NULL;
	}
	return c;
}

static int listen_on(const char *addr, const char *port, unsigned int *bound_port)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256];
	size_t al = strlen(addr);
	int fd = -1, one = 1, rc;

	/* accept "[::1]" as well as "::1" */
	if (al >= 2 && addr[0] == '[' && addr[al - 1] == ']' && al - 2 < sizeof(host)) {
		memcpy(host, addr + 1, al - 2);
		host[al - 2] = '\0';
	} else {
		snprintf(host, sizeof(host), "%s", addr);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "origin: %s: %s\n", addr, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0)
			break;
		perror("origin: bind/listen");
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return -1;
	*bound_port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			*bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			*bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"addr", required_argument, NULL, 'a'},
		{"name", required_argument, NULL, 'n'},
		{"log", required_argument, NULL, 'l'},
		{"pidfile", required_argument, NULL, 'P'},
		{"delay-file", required_argument, NULL, 'D'},
		{"status", required_argument, NULL, 'S'},
		{"log-inflight", no_argument, NULL, 'I'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *port = NULL, *addr = "127.0.0.1", *logfile = NULL, *pidfile = NULL;
	unsigned int bound_port;
	pthread_attr_t attr;
	struct conn *c;
	pthread_t tid;
	FILE *pf;
	int opt, lfd, fd, one = 1;

	while ((opt = getopt_long(argc, argv, "p:a:n:l:P:D:S:Ih", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = optarg;
			break;
		case 'a':
			addr = optarg;
			break;
		case 'n':
			backend_name = optarg;
			break;
		case 'l':
			logfile = optarg;
			break;
		case 'P':
			pidfile = optarg;
			break;
		case 'D':
			delay_file = optarg;
			break;
		case 'S':
			fixed_status = atoi(optarg);
			if (fixed_status < 200 || fixed_status > 599 || fixed_status == 204 ||
			    fixed_status == 304) {
				fprintf(stderr, "origin: -S takes 200-599 (not 204/304)\n");
				return 2;
			}
			break;
		case 'I':
			log_inflight = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!port || optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	pattern_init();
	if (logfile) {
		log_fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log_fd == -1) {
			perror(logfile);
			return 1;
		}
	}
	lfd = listen_on(addr, port, &bound_port);
	if (lfd == -1)
		return 1;
	if (pidfile) {
		pf = fopen(pidfile, "w");
		if (!pf || fprintf(pf, "%ld\n", (long)getpid()) < 0 || fclose(pf) != 0) {
			perror(pidfile);
			return 1;
		}
	}
	printf("listening on %s:%u\n", addr, bound_port);
	fflush(stdout);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				usleep(10000);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = conn_new(fd);
		if (!c) {
			close(fd);
			continue;
		}
		if (pthread_create(&tid, &attr, conn_thread, c) != 0) {
			fprintf(stderr, "origin: pthread_create failed\n");
			close(fd);
			free(c->work);
			free(c->head);
			free(c->buf);
			free(c);
		}
	}
}
