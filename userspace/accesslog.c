// SPDX-License-Identifier: MIT
/*
 * accesslog.c - the access log (see accesslog.h): the line of a request (or of a connection
 * refused before it carried one) as text or JSON, the internal pipe the workers write into
 * without blocking, and the thread that moves it to the target (a file, stderr, syslog).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "clock.h"
#include "log.h"

_Static_assert(ACCESSLOG_LINE_MAX <= 4096, "a line is one atomic pipe write (PIPE_BUF)");

/* ---- the line ---- */

/* output bytes a field may take (escapes included): their sum stays below ACCESSLOG_LINE_MAX
 * with the fixed parts, so a line is never cut in the middle */
#define CAP_TARGET 1280
#define CAP_HOST 1536 /* any Host (HOST_MAX_LEN) whole, every byte escaped */
#define CAP_SHORT 128 /* method, client, request ID */
#define CAP_NAME 64   /* configured names (listener, pool, server), tls mode, term reason */

struct out {
	char *buf;
	size_t len, off;
	int truncated;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->off + n >= o->len) {
		o->truncated = 1;
		n = o->off + 1 < o->len ? o->len - o->off - 1 : 0;
	}
	memcpy(o->buf + o->off, s, n);
	o->off += n;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/*
 * s escaped, at most cap output bytes (a cut never splits an escape). JSON: the escapes of
 * RFC 8259 and \u00XX for any other byte below 0x20 or from 0x7f up. Text: \xHH for '"', '\\',
 * ' ' and the same bytes, so that a field is one word and the request line stays quoted.
 */
static void put_esc(struct out *o, const char *s, size_t cap, int json)
{
	size_t used = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char e[8];
		size_t n;

		if (json && (*p == '"' || *p == '\\')) {
			e[0] = '\\';
			e[1] = (char)*p;
			n = 2;
		} else if (json && *p == '\n') {
			memcpy(e, "\\n", n = 2);
		} else if (json && *p == '\r') {
			memcpy(e, "\\r", n = 2);
		} else if (json && *p == '\t') {
			memcpy(e, "\\t", n = 2);
		} else if (*p < 0x20 || *p >= 0x7f || (!json && strchr("\"\\ ", *p))) {
			n = (size_t)snprintf(e, sizeof(e), json ? "\\u%04x" : "\\x%02x", *p);
		} else {
			e[0] = (char)*p;
			n = 1;
		}
		if (used + n > cap) {
			o->truncated = 1;
			return;
		}
		put(o, e, n);
		used += n;
	}
}

/* "KEY":"escaped" or "KEY":null */
static void json_str(struct out *o, const char *key, const char *v, size_t cap)
{
	putf(o, ",\"%s\":", key);
	if (!v || !*v) {
		put(o, "null", 4);
		return;
	}
	put(o, "\"", 1);
	put_esc(o, v, cap, 1);
	put(o, "\"", 1);
}

/* a text field: the escaped value, or "-" */
static void text_field(struct out *o, const char *v, size_t cap)
{
	if (!v || !*v)
		put(o, "-", 1);
	else
		put_esc(o, v, cap, 0);
}

size_t accesslog_line(const struct accesslog_rec *r, int format, char *buf, size_t len)
{
	struct out o = {.buf = buf, .len = len};
	time_t sec = (time_t)(r->time_ms / 1000);
	char tbuf[32];
	struct tm tm;

	gmtime_r(&sec, &tm);
	if (format == ACCESSLOG_JSON) {
		strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
		putf(&o, "{\"time\":\"%s.%03uZ\"", tbuf, (unsigned)(r->time_ms % 1000));
		json_str(&o, "listener", r->listener, CAP_NAME);
		json_str(&o, "client", r->client, CAP_SHORT);
		json_str(&o, "method", r->method, CAP_SHORT);
		json_str(&o, "target", r->target, CAP_TARGET);
		putf(&o, ",\"version\":\"HTTP/1.%d\"", r->version_minor);
		json_str(&o, "host", r->host, CAP_HOST);
		putf(&o, ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu", r->status,
		     (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out);
		json_str(&o, "pool", r->pool, CAP_NAME);
		json_str(&o, "server", r->server, CAP_NAME);
		putf(&o, ",\"duration_ms\":%llu,\"tries\":%u", (unsigned long long)r->duration_ms,
		     r->tries);
		json_str(&o, "tls", r->tls, CAP_NAME);
		json_str(&o, "route", r->route, CAP_NAME);
		json_str(&o, "request_id", r->request_id, CAP_SHORT);
		json_str(&o, "term", r->term, CAP_NAME);
		json_str(&o, "refused", r->refused, CAP_NAME);
		if (o.truncated)
			putf(&o, ",\"truncated\":true");
		put(&o, "}", 1);
	} else {
		strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		putf(&o, "%s ", tbuf);
		text_field(&o, r->listener, CAP_NAME);
		put(&o, " ", 1);
		text_field(&o, r->client, CAP_SHORT);
		put(&o, " \"", 2);
		text_field(&o, r->method, CAP_SHORT);
		put(&o, " ", 1);
		text_field(&o, r->target, CAP_TARGET);
		putf(&o, " HTTP/1.%d\" host=", r->version_minor);
		text_field(&o, r->host, CAP_HOST);
		putf(&o, " status=%d bytes_in=%llu bytes_out=%llu backend=", r->status,
		     (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out);
		text_field(&o, r->pool, CAP_NAME);
		put(&o, "/", 1);
		text_field(&o, r->server, CAP_NAME);
		putf(&o, " duration_ms=%llu", (unsigned long long)r->duration_ms);
		if (r->tries > 1)
			putf(&o, " tries=%u", r->tries);
		if (r->tls && *r->tls) {
			put(&o, " tls=", 5);
			text_field(&o, r->tls, CAP_NAME);
		}
		if (r->route && *r->route) {
			put(&o, " route=", 7);
			text_field(&o, r->route, CAP_NAME);
		}
		if (r->request_id && *r->request_id) {
			put(&o, " request_id=", 12);
			text_field(&o, r->request_id, CAP_SHORT);
		}
		if (r->term && *r->term) {
			put(&o, " term=", 6);
			text_field(&o, r->term, CAP_NAME);
		}
		if (r->refused && *r->refused) {
			put(&o, " refused=", 9);
			text_field(&o, r->refused, CAP_NAME);
		}
	}
	/* the newline always fits: put() keeps one byte free */
	o.buf[o.off++] = '\n';
	return o.off;
}

/* ---- the pipe and the thread ---- */

int g_access_fd = -1;

static struct {
	int rd, wr;	    /* the internal pipe; workers write into wr (g_access_fd) */
	int target;	    /* the file or stderr copy the thread writes to; -1: syslog or off */
	_Atomic int kind;   /* what target is (enum target) */
	_Atomic int format; /* enum accesslog_format of the current configuration */
	_Atomic int facility;
	_Atomic uint64_t dropped;
	_Atomic uint64_t stop_ms; /* accesslog_close: give up on the target after this; 0: never */
	int thread_on;
	pthread_t thread;
} A = {.rd = -1, .wr = -1, .target = -1};

enum target { T_OFF, T_FD, T_SYSLOG };

void accesslog_write(const char *line, size_t len)
{
	int fd = g_access_fd;

	if (fd < 0)
		return;
	/* one write of <= PIPE_BUF bytes into a non-blocking pipe: all of it, or EAGAIN */
	if (write(fd, line, len) != (ssize_t)len)
		atomic_fetch_add(&A.dropped, 1);
}

uint64_t accesslog_dropped(void)
{
	return atomic_load(&A.dropped);
}

int accesslog_format(void)
{
	return atomic_load(&A.format);
}

int accesslog_file_fd(void)
{
	return atomic_load(&A.kind) == T_FD ? A.target : -1;
}

/* wait until fd takes more, or 200 ms pass: 1 ready, 0 not (yet) */
static int wait_fd(int fd, short ev)
{
	struct pollfd p = {.fd = fd, .events = ev};

	return poll(&p, 1, 200) == 1;
}

/* buf[0..n) to the target; gives up only when asked to stop (the rest is dropped and counted) */
static void deliver(char *buf, size_t n)
{
	int kind = atomic_load(&A.kind);

	if (kind == T_OFF)
		return;
	if (kind == T_SYSLOG) {
		int fac = atomic_load(&A.facility);

		for (char *p = buf, *nl; p < buf + n; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(buf + n - p));
			if (!nl)
				nl = buf + n;
			syslog(fac | LOG_INFO, "%.*s", (int)(nl - p), p);
		}
		return;
	}
	while (kind == T_FD && n) {
		ssize_t w = write(A.target, buf, n);

		if (w > 0) {
			buf += w;
			n -= (size_t)w;
		} else if (w == -1 && errno == EAGAIN) {
			uint64_t stop = atomic_load(&A.stop_ms);

			if (stop && clock_ms() >= stop)
				break;
			wait_fd(A.target, POLLOUT);
		} else if (w == -1 && errno == EINTR) {
			continue;
		} else {
			break; /* EIO, ENOSPC, EPIPE: nothing to wait for */
		}
	}
	if (n) {
		/* whole lines lost (each line ends with '\n') */
		for (char *p = buf; p < buf + n; p++)
			if (*p == '\n')
				atomic_fetch_add(&A.dropped, 1);
	}
}

/*
 * The thread: pipe -> target. Lines enter the pipe whole; a read may end inside a line, whose
 * start waits in buf for the rest, so that syslog gets whole lines and a file never sees two
 * halves apart. Ends at EOF of the pipe (accesslog_close).
 */
static void *writer(void *arg)
{
	static char buf[65536 + ACCESSLOG_LINE_MAX];
	size_t have = 0;

	(void)arg;
	for (;;) {
		ssize_t r = read(A.rd, buf + have, sizeof(buf) - have);
		char *last;

		if (r == -1 && errno == EAGAIN) {
			wait_fd(A.rd, POLLIN);
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		last = memrchr(buf, '\n', have);
		if (!last)
			continue;
		deliver(buf, (size_t)(last + 1 - buf));
		have -= (size_t)(last + 1 - buf);
		memmove(buf, last + 1, have);
	}
	return NULL;
}

/* the target of cf as a new descriptor (O_NONBLOCK: a FIFO nobody reads must not hold the
 * thread past accesslog_close), or -1 for syslog and off; *kind says which. -errno on error. */
static int open_target(const struct config *cf, int *kind)
{
	int fd;

	if (!strcmp(cf->access_log, "off")) {
		*kind = T_OFF;
		return -1;
	}
	if (!strncmp(cf->access_log, "syslog", 6) &&
	    (!cf->access_log[6] || cf->access_log[6] == ':')) {
		*kind = T_SYSLOG;
		return -1;
	}
	*kind = T_FD;
	if (cf->access_log[0] && strcmp(cf->access_log, "stderr")) {
		fd = open(cf->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK,
			  0640);
		return fd == -1 ? -errno : fd;
	}
	/*
	 * stderr: a pipe gets a description of its own, non-blocking without changing the one
	 * the daemon's messages use; anything else (a file: its offset is shared with those
	 * messages) is the same description.
	 */
	{
		struct stat st;

		if (fstat(STDERR_FILENO, &st) == 0 && S_ISFIFO(st.st_mode)) {
			fd = open("/proc/self/fd/2", O_WRONLY | O_CLOEXEC | O_NONBLOCK);
			if (fd >= 0)
				return fd;
		}
	}
	fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	return fd == -1 ? -errno : fd;
}

static void set_config(const struct config *cf, int kind)
{
	atomic_store(&A.format, cf->access_log_format);
	atomic_store(&A.facility, cf->access_log_facility);
	atomic_store(&A.kind, kind);
}

int accesslog_open(const struct config *cf)
{
	int p[2], kind, fd, err;

	fd = open_target(cf, &kind);
	if (fd < -1)
		return fd;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1) {
		err = -errno;
		goto err_target;
	}
	/* room for bursts while the target is slow: 1 MiB when allowed (fs.pipe-max-size) */
	(void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	A.rd = p[0];
	A.wr = p[1];
	A.target = fd;
	set_config(cf, kind);
	atomic_store(&A.stop_ms, 0);
	g_access_fd = kind == T_OFF ? -1 : A.wr;
	return 0;

err_target:
	if (fd >= 0)
		close(fd);
	A.target = -1;
	return err;
}

int accesslog_start(void)
{
	int err = -pthread_create(&A.thread, NULL, writer, NULL);

	A.thread_on = !err;
	return err;
}

int accesslog_reopen(const struct config *ncf, FILE *errf)
{
	int fd, kind;

	fd = open_target(ncf, &kind);
	if (fd < -1) {
		if (errf)
			fprintf(errf, "%s: cannot open access log %s: %s\n", ncf->file,
				ncf->access_log, strerror(-fd));
		else
			log_warnx("cannot open access log %s: %s", ncf->access_log, strerror(-fd));
		return -1;
	}
	if (fd >= 0) {
		if (A.target >= 0) {
			/* the thread keeps its number; the description under it changes at once */
			dup2(fd, A.target);
			close(fd);
		} else {
			A.target = fd;
		}
	}
	set_config(ncf, kind);
	g_access_fd = kind == T_OFF ? -1 : A.wr;
	return 0;
}

void accesslog_close(void)
{
	g_access_fd = -1;
	if (A.thread_on) {
		/* EOF for the thread once it read what is queued; a target that takes nothing
		 * holds it a second at most */
		atomic_store(&A.stop_ms, clock_ms() + 1000);
		close(A.wr);
		pthread_join(A.thread, NULL);
		A.thread_on = 0;
	} else if (A.wr >= 0) {
		close(A.wr);
	}
	if (A.rd >= 0)
		close(A.rd);
	if (A.target >= 0)
		close(A.target);
	A.rd = A.wr = A.target = -1;
}

void accesslog_refused(const struct listener *l, const struct sockaddr_storage *peer,
		       const char *reason)
{
	char line[ACCESSLOG_LINE_MAX], addr[INET6_ADDRSTRLEN] = "";
	struct timespec now;
	struct accesslog_rec r = {
		.listener = l->name, .client = addr, .version_minor = 1, .refused = reason};

	if (g_access_fd < 0)
		return;
	if (peer->ss_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)peer)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], addr, sizeof(addr));
		else
			inet_ntop(AF_INET6, a6, addr, sizeof(addr));
	} else if (peer->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, addr,
			  sizeof(addr));
	}
	clock_gettime(CLOCK_REALTIME, &now);
	r.time_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	accesslog_write(line, accesslog_line(&r, accesslog_format(), line, sizeof(line)));
}
