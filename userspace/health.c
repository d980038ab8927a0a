// SPDX-License-Identifier: MIT
/*
 * health.c - the active health checks (see health.h; the states and their contracts are in
 * health_state.h).
 *
 * One thread, one epoll loop. HTTP checks run on the libcurl multi interface driven by
 * CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION and curl_multi_socket_action(), so curl's
 * sockets sit in our epoll set and nothing blocks; TCP checks are non-blocking connects on the
 * same loop. Every check lives in a min-heap keyed on the time it is next due (its start, or
 * its deadline while it runs), so a loop iteration costs O(log n) however many servers exist.
 * First checks are spread over the interval (server k of n starts at k * interval / n plus a
 * little jitter) and later ones run at a fixed rate from there, so 1,000 servers never fire at
 * once.
 *
 * The state machine those checks drive (health_state.c) is plain functions over struct server
 * that the workers call too, and the unit tests without the thread.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "health.h"
#include "lb.h"
#include "log.h"
#include "tls.h"

#define MAX_EVENTS 128
#define STATUS_LOG_MS 10000
#define HTTP_GRACE_MS 1000 /* after the curl timeout, before the thread gives up on a check */

/* epoll tags: kind in the high 32 bits, fd or check index in the low ones */
enum { TAG_WAKE = 1, TAG_CURL, TAG_TCP };
#define TAG(kind, v) (((uint64_t)(kind) << 32) | (uint32_t)(v))

/* one server's active check (health thread only) */
struct hcheck {
	struct server *s;
	uint64_t due_ms; /* idle: next start; running: deadline */
	uint64_t start_ms;
	uint64_t start_us;
	unsigned heap_idx;
	int running;
	int fd; /* TCP check socket, -1 */
	CURL *easy;
	struct curl_slist *hdrs;
	struct curl_slist *connect_to; /* TLS checks by name: the name -> the server's address */
	char url[HOST_MAX_LEN * 2 + 64];
	char errbuf[CURL_ERROR_SIZE];
};

/* the thread's state: there is one health thread per process */
static struct {
	struct config *cf;
	pthread_t thread;
	int started;
	volatile int stop;
	int epfd;
	int wakefd; /* the thread's eventfd (health_set_waker), -1 */
	CURLM *multi;
	uint64_t curl_due_ms; /* UINT64_MAX: curl wants no timeout */
	struct hcheck *checks;
	unsigned nchecks;
	struct hcheck **heap;
	unsigned nheap;
	uint64_t rng;
} H = {.epfd = -1, .wakefd = -1};

static void log_status(struct config *cf)
{
	int need = health_format_status(cf, NULL, 0);
	char *buf = malloc((size_t)need + 1), *line, *save = NULL;

	if (!buf)
		return;
	health_format_status(cf, buf, (size_t)need + 1);
	/* one message per line: log lines are bounded and syslog wants no newlines */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		log_debug("health: %s", line);
	free(buf);
}

/* ---- check scheduling: a binary min-heap of checks on due_ms ---- */

static void heap_swap(unsigned a, unsigned b)
{
	struct hcheck *t = H.heap[a];

	H.heap[a] = H.heap[b];
	H.heap[b] = t;
	H.heap[a]->heap_idx = a;
	H.heap[b]->heap_idx = b;
}

static void heap_up(unsigned i)
{
	while (i && H.heap[(i - 1) / 2]->due_ms > H.heap[i]->due_ms) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(unsigned i)
{
	for (;;) {
		unsigned l = 2 * i + 1, r = l + 1, m = i;

		if (l < H.nheap && H.heap[l]->due_ms < H.heap[m]->due_ms)
			m = l;
		if (r < H.nheap && H.heap[r]->due_ms < H.heap[m]->due_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

static void reschedule(struct hcheck *c, uint64_t due_ms)
{
	uint64_t old = c->due_ms;

	c->due_ms = due_ms;
	if (due_ms < old)
		heap_up(c->heap_idx);
	else
		heap_down(c->heap_idx);
}

static uint64_t rand64(void)
{
	H.rng ^= H.rng << 13;
	H.rng ^= H.rng >> 7;
	H.rng ^= H.rng << 17;
	return H.rng;
}

/* ---- running checks ---- */

static void check_finish(struct hcheck *c, int ok, const char *what, uint64_t now_ms)
{
	const struct health_conf *hc = &c->s->pool->health;
	uint64_t lat = clock_us() - c->start_us;
	uint64_t next = c->start_ms + hc->interval_ms;
	int prev_ok = c->s->h.last_ok; /* written only by this thread */

	c->running = 0;
	health_check_result(c->s, ok, what, lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat, now_ms);
	/* curl's own words for the first failure of a streak, not for every one */
	if (!ok && prev_ok != 0 && c->errbuf[0])
		log_debug("pool %s server %s: check failed: %s", c->s->pool->name, c->s->name,
			  c->errbuf);
	/* fixed rate from the first, staggered start keeps checks spread over the interval */
	reschedule(c, next > now_ms ? next : now_ms);
}

static void connect_what(int err, char *what, size_t len)
{
	if (err == ECONNREFUSED)
		snprintf(what, len, "refused");
	else if (err == ETIMEDOUT)
		snprintf(what, len, "timeout");
	else if (err == ECONNRESET)
		snprintf(what, len, "reset");
	else
		snprintf(what, len, "connect: %s", strerror(err));
}

/* no TIME_WAIT left behind by checks: close with a reset (HAProxy does the same) */
static void set_nolinger(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void tcp_close(struct hcheck *c)
{
	epoll_ctl(H.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

static void tcp_start(struct hcheck *c, uint64_t now_ms)
{
	struct server *s = c->s;
	struct epoll_event ev = {.events = EPOLLOUT};
	char what[64];

	c->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		snprintf(what, sizeof(what), "socket: %s", strerror(errno));
		check_finish(c, 0, what, now_ms);
		return;
	}
	set_nolinger(c->fd);
	if (connect(c->fd, (struct sockaddr *)&s->addr, s->addrlen) == 0) {
		close(c->fd);
		c->fd = -1;
		check_finish(c, 1, "connected", now_ms);
		return;
	}
	if (errno != EINPROGRESS) {
		connect_what(errno, what, sizeof(what));
		close(c->fd);
		c->fd = -1;
		check_finish(c, 0, what, now_ms);
		return;
	}
	ev.data.u64 = TAG(TAG_TCP, c - H.checks);
	if (epoll_ctl(H.epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
		snprintf(what, sizeof(what), "epoll: %s", strerror(errno));
		close(c->fd);
		c->fd = -1;
		check_finish(c, 0, what, now_ms);
		return;
	}
	c->running = 1;
	reschedule(c, now_ms + s->pool->health.timeout_ms);
}

static void tcp_event(struct hcheck *c, uint64_t now_ms)
{
	int err = 0;
	socklen_t len = sizeof(err);
	char what[64];

	if (!c->running || c->fd < 0)
		return;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	tcp_close(c);
	if (err) {
		connect_what(err, what, sizeof(what));
		check_finish(c, 0, what, now_ms);
	} else {
		check_finish(c, 1, "connected", now_ms);
	}
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

static int curl_sockopt(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	int one = 1;

	(void)clientp;
	(void)purpose;
	/* a live upgrade's exec must not hand a check's socket to the new process */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	set_nolinger(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return CURL_SOCKOPT_OK;
}

/* HTTP checks follow the pool's upstream TLS (`tls` in the pool, or health.tls) */
static int check_tls(const struct pool *p)
{
	return p->health.tls || p->tls_on;
}

/*
 * check_tls_setup - the verification a pool's upstream TLS does, for curl: the pool's CA file
 * (else the system store), verify on|off, and the same name (sni, else the server's host)
 * for SNI and the certificate check. The URL then carries that name and CURLOPT_CONNECT_TO
 * sends the connection to the server's address literal, so curl resolves nothing.
 */
static void check_tls_setup(CURL *e, const struct pool *p)
{
	long verify = p->tls_on ? (p->tls_verify ? 1L : 0L) : 1L;

	if (!check_tls(p))
		return;
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (p->tls_ca[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, p->tls_ca);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
}

/* the easy handle of an HTTP check, built once and re-added to the multi for every check */
static int http_setup(struct hcheck *c)
{
	const struct server *s = c->s;
	const struct health_conf *hc = &s->pool->health;
	int tls = check_tls(s->pool);
	const char *scheme = tls ? "https" : "http";
	char addr[INET6_ADDRSTRLEN], hosthdr[HOST_MAX_LEN + 8], name[HOST_MAX_LEN];
	char connect_to[HOST_MAX_LEN + INET6_ADDRSTRLEN + 32];
	unsigned port;
	int v6 = s->addr.ss_family == AF_INET6;

	if (v6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&s->addr;

		inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof(addr));
		port = ntohs(a->sin6_port);
		snprintf(c->url, sizeof(c->url), "%s://[%s]:%u%s", scheme, addr, port, hc->path);
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&s->addr;

		inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
		port = ntohs(a->sin_port);
		snprintf(c->url, sizeof(c->url), "%s://%s:%u%s", scheme, addr, port, hc->path);
	}
	c->easy = curl_easy_init();
	if (!c->easy)
		return -ENOMEM;
	if (tls && s->pool->tls_on && !tls_upstream_name(s->pool, s, name, sizeof(name))) {
		/* a host name: SNI and verification use it, the connection goes to the address */
		snprintf(c->url, sizeof(c->url), "https://%s:%u%s", name, port, hc->path);
		snprintf(connect_to, sizeof(connect_to), v6 ? "%s:%u:[%s]:%u" : "%s:%u:%s:%u", name,
			 port, addr, port);
		c->connect_to = curl_slist_append(NULL, connect_to);
		if (!c->connect_to)
			return -ENOMEM;
		curl_easy_setopt(c->easy, CURLOPT_CONNECT_TO, c->connect_to);
	}
	if (hc->host[0]) {
		snprintf(hosthdr, sizeof(hosthdr), "Host: %s", hc->host);
		c->hdrs = curl_slist_append(c->hdrs, hosthdr);
	}
	c->hdrs = curl_slist_append(c->hdrs, "Connection: close");
	if (!c->hdrs)
		return -ENOMEM;
	/* the URL holds an address literal: curl resolves nothing, so it starts no resolver
	 * thread; one connection per check, as HAProxy does, and never through a proxy */
	curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)hc->timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)hc->timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "spliced-health");
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(c->easy, CURLOPT_SOCKOPTFUNCTION, curl_sockopt);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	check_tls_setup(c->easy, s->pool);
	return 0;
}

static void http_start(struct hcheck *c, uint64_t now_ms)
{
	CURLMcode mc;

	if (!c->easy && http_setup(c)) {
		check_finish(c, 0, "internal: no memory", now_ms);
		return;
	}
	c->errbuf[0] = '\0';
	mc = curl_multi_add_handle(H.multi, c->easy);
	if (mc != CURLM_OK) {
		char what[64];

		snprintf(what, sizeof(what), "internal: %s", curl_multi_strerror(mc));
		check_finish(c, 0, what, now_ms);
		return;
	}
	c->running = 1;
	/* curl enforces the timeout; this deadline only catches a check curl lost track of */
	reschedule(c, now_ms + c->s->pool->health.timeout_ms + HTTP_GRACE_MS);
}

static void http_done(struct hcheck *c, CURLcode rc, uint64_t now_ms)
{
	const struct health_conf *hc = &c->s->pool->health;
	char what[64];
	long status = 0, oserr = 0;
	int ok = 0;

	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &oserr);
	curl_multi_remove_handle(H.multi, c->easy);
	switch (rc) {
	case CURLE_OK:
		if (status >= 100) {
			ok = status >= (long)hc->status_lo && status <= (long)hc->status_hi;
			snprintf(what, sizeof(what), "status %ld", status);
		} else {
			snprintf(what, sizeof(what), "bad response");
		}
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(what, sizeof(what), "timeout");
		break;
	case CURLE_COULDNT_CONNECT:
		connect_what(oserr ? (int)oserr : ECONNREFUSED, what, sizeof(what));
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		snprintf(what, sizeof(what), status ? "bad response" : "reset");
		break;
	case CURLE_PEER_FAILED_VERIFICATION: {
		/* "SSL certificate problem: unable to get local issuer certificate" */
		const char *p = strstr(c->errbuf, "problem: ");

		snprintf(what, sizeof(what), "TLS certificate: %.46s",
			 p ? p + 9 : (c->errbuf[0] ? c->errbuf : "verification failed"));
		break;
	}
	case CURLE_SSL_CONNECT_ERROR:
		snprintf(what, sizeof(what), "TLS handshake failed");
		break;
	default:
		/* garbage, an empty reply, HTTP/0.9, a broken body */
		snprintf(what, sizeof(what), "bad response");
		break;
	}
	check_finish(c, ok, what, now_ms);
}

static void http_abort(struct hcheck *c, uint64_t now_ms)
{
	curl_multi_remove_handle(H.multi, c->easy);
	snprintf(c->errbuf, sizeof(c->errbuf), "no answer from curl within the timeout");
	check_finish(c, 0, "timeout", now_ms);
}

static void curl_drain(uint64_t now_ms)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(H.multi, &left))) {
		struct hcheck *c = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		if (c && c->running)
			http_done(c, m->data.result, now_ms);
	}
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest in a socket into our epoll set */
static int curl_socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct epoll_event ev = {0};

	(void)e;
	(void)userp;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		/* curl may have closed it already: ENOENT/EBADF are fine */
		epoll_ctl(H.epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	/* level-triggered: curl reads only as much as it wants per socket_action call */
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	ev.data.u64 = TAG(TAG_CURL, fd);
	if (epoll_ctl(H.epfd, EPOLL_CTL_MOD, fd, &ev) == -1 &&
	    (errno != ENOENT || epoll_ctl(H.epfd, EPOLL_CTL_ADD, fd, &ev) == -1))
		log_warn("health: epoll_ctl on a check socket");
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer for the whole multi handle */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	(void)userp;
	H.curl_due_ms = timeout_ms < 0 ? UINT64_MAX : clock_ms() + (uint64_t)timeout_ms;
	return 0;
}

static void check_due(struct hcheck *c, uint64_t now_ms)
{
	struct server *s = c->s;

	if (c->running) {
		if (c->fd >= 0) {
			tcp_close(c);
			check_finish(c, 0, "timeout", now_ms);
		} else {
			http_abort(c, now_ms);
		}
		return;
	}
	if (atomic_load(&s->h.state) == SRV_MAINT) {
		reschedule(c, now_ms + s->pool->health.interval_ms);
		return;
	}
	c->start_ms = now_ms;
	c->start_us = clock_us();
	c->errbuf[0] = '\0';
	if (s->pool->health.type == HEALTH_CHECK_TCP)
		tcp_start(c, now_ms);
	else
		http_start(c, now_ms);
}

/* rechecks asked by health_set_admin (back from maintenance) */
static void take_rechecks(uint64_t now_ms)
{
	for (unsigned i = 0; i < H.nchecks; i++) {
		struct hcheck *c = &H.checks[i];

		if (health_take_recheck(c->s) && !c->running)
			reschedule(c, now_ms);
	}
}

static void *health_main(void *arg)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t now = clock_ms(), next_tick = now, next_status = now + STATUS_LOG_MS;
	int running;

	(void)arg;
	while (!H.stop) {
		uint64_t wake = next_tick < next_status ? next_tick : next_status;
		int n, timeout;

		if (H.nheap && H.heap[0]->due_ms < wake)
			wake = H.heap[0]->due_ms;
		if (H.curl_due_ms < wake)
			wake = H.curl_due_ms;
		now = clock_ms();
		if (wake <= now)
			timeout = 0;
		else
			timeout = (int)(wake - now < HEALTH_TICK_MAX_MS ? wake - now
									: HEALTH_TICK_MAX_MS);
		n = epoll_wait(H.epfd, evs, MAX_EVENTS, timeout);
		if (n == -1 && errno != EINTR) {
			log_warn("health: epoll_wait");
			break;
		}
		now = clock_ms();
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			uint32_t v = (uint32_t)tag, ev = evs[i].events;

			switch (tag >> 32) {
			case TAG_WAKE: {
				uint64_t cnt;

				(void)!read(H.wakefd, &cnt, sizeof(cnt));
				take_rechecks(now);
				next_tick = now;
				break;
			}
			case TAG_CURL:
				curl_multi_socket_action(
					H.multi, (curl_socket_t)v,
					(ev & EPOLLIN ? CURL_CSELECT_IN : 0) |
						(ev & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
						(ev & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0),
					&running);
				break;
			case TAG_TCP:
				if (v < H.nchecks)
					tcp_event(&H.checks[v], now);
				break;
			}
		}
		if (H.curl_due_ms <= now) {
			H.curl_due_ms = UINT64_MAX;
			curl_multi_socket_action(H.multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		curl_drain(now);
		while (H.nheap && H.heap[0]->due_ms <= now)
			check_due(H.heap[0], now);
		if (now >= next_tick)
			next_tick = now + health_tick(H.cf, now);
		if (now >= next_status) {
			next_status = now + STATUS_LOG_MS;
			if (log_verbosity() >= 1)
				log_status(H.cf);
		}
	}
	return NULL;
}

/* ---- lifecycle ---- */

/*
 * fds_open - the descriptors open now, as a bitmap of *nbits bits (0..*nbits-1); NULL when
 * /proc/self/fd cannot be read. The caller frees it.
 */
static uint8_t *fds_open(int *nbits)
{
	DIR *d = opendir("/proc/self/fd");
	uint8_t *map = NULL;
	struct dirent *e;
	int n = 0;

	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		/* not the directory's own descriptor: closed below, it may be curl's next */
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d))
			continue;
		if (fd >= n) {
			int nn = (fd / 1024 + 1) * 1024;
			uint8_t *m = realloc(map, (size_t)nn / 8);

			if (!m) {
				free(map);
				closedir(d);
				return NULL;
			}
			memset(m + n / 8, 0, (size_t)(nn - n) / 8);
			map = m;
			n = nn;
		}
		map[fd / 8] |= (uint8_t)(1u << (fd % 8));
	}
	closedir(d);
	*nbits = n;
	return map;
}

/*
 * multi_init - curl_multi_init(), whose descriptors are made close-on-exec. libcurl (7.88)
 * opens its wakeup socketpair without SOCK_CLOEXEC: every live upgrade's exec would hand both
 * ends to the new process, which never closes them (two more descriptors per upgrade, found by
 * the soak test). Every descriptor that appears meanwhile gets FD_CLOEXEC: the daemon's own
 * (other threads') have it already, and the sockets a live upgrade hands over on purpose are
 * published on the main thread, which is here.
 */
static CURLM *multi_init(void)
{
	int nbits = 0;
	uint8_t *before = fds_open(&nbits);
	CURLM *m = curl_multi_init();
	DIR *d;
	struct dirent *e;

	if (!m || !before || !(d = opendir("/proc/self/fd"))) {
		free(before);
		return m;
	}
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), fl;

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd < 3 || fd == dirfd(d))
			continue;
		if (fd < nbits && (before[fd / 8] & (1u << (fd % 8))))
			continue;
		fl = fcntl(fd, F_GETFD);
		if (fl != -1 && !(fl & FD_CLOEXEC))
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	closedir(d);
	free(before);
	return m;
}

static void release(void)
{
	for (unsigned i = 0; i < H.nchecks; i++) {
		struct hcheck *c = &H.checks[i];

		if (c->easy) {
			if (c->running && H.multi)
				curl_multi_remove_handle(H.multi, c->easy);
			curl_easy_cleanup(c->easy);
		}
		curl_slist_free_all(c->hdrs);
		curl_slist_free_all(c->connect_to);
		if (c->fd >= 0)
			close(c->fd);
	}
	if (H.multi)
		curl_multi_cleanup(H.multi);
	curl_global_cleanup();
	if (H.epfd >= 0)
		close(H.epfd);
	free(H.checks);
	free(H.heap);
	/* workers may be ejecting right now and write to the waker: unregister it first */
	health_set_waker(-1);
	if (H.wakefd >= 0)
		close(H.wakefd);
	memset(&H, 0, sizeof(H));
	H.epfd = H.wakefd = -1;
}

int health_start(struct config *cf)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG(TAG_WAKE, 0)};
	unsigned nchecked = 0, k = 0;
	uint64_t now = clock_ms();
	int rc, wakefd;

	if (H.started)
		return -EALREADY;
	H.cf = cf;
	H.curl_due_ms = UINT64_MAX;
	H.rng = clock_us() | 1;
	for (unsigned i = 0; i < cf->nservers; i++)
		nchecked += cf->servers[i]->pool->health.type != HEALTH_CHECK_NONE;
	H.checks = calloc(nchecked ? nchecked : 1, sizeof(*H.checks));
	H.heap = calloc(nchecked ? nchecked : 1, sizeof(*H.heap));
	if (!H.checks || !H.heap) {
		rc = -ENOMEM;
		goto err;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		rc = -ENOMEM;
		goto err;
	}
	H.multi = multi_init();
	if (!H.multi) {
		rc = -ENOMEM;
		goto err;
	}
	curl_multi_setopt(H.multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(H.multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	H.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (H.epfd == -1) {
		rc = -errno;
		goto err;
	}
	wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wakefd == -1) {
		rc = -errno;
		goto err;
	}
	H.wakefd = wakefd;
	health_set_waker(wakefd);
	if (epoll_ctl(H.epfd, EPOLL_CTL_ADD, wakefd, &ev) == -1) {
		rc = -errno;
		goto err;
	}
	/* server k of n starts at k * interval / n, plus up to half a slot of jitter */
	for (unsigned i = 0; i < cf->nservers; i++) {
		struct server *s = cf->servers[i];
		const struct health_conf *hc = &s->pool->health;
		struct hcheck *c;
		uint64_t slot;

		if (hc->type == HEALTH_CHECK_NONE)
			continue;
		c = &H.checks[k];
		c->s = s;
		c->fd = -1;
		slot = hc->interval_ms / nchecked;
		c->due_ms = now + (uint64_t)k * hc->interval_ms / nchecked +
			    (slot >= 2 ? rand64() % (slot / 2) : 0);
		c->heap_idx = k;
		H.heap[k] = c;
		H.nheap = ++k;
		heap_up(c->heap_idx);
	}
	H.nchecks = k;
	rc = -pthread_create(&H.thread, NULL, health_main, NULL);
	if (rc)
		goto err;
	H.started = 1;
	log_info("health: %u server%s checked, %u in total", nchecked, nchecked == 1 ? "" : "s",
		 cf->nservers);
	return 0;
err:
	release();
	return rc;
}

void health_stop(void)
{
	if (!H.started)
		return;
	H.stop = 1;
	health_wake();
	pthread_join(H.thread, NULL);
	release();
}
