// SPDX-License-Identifier: MIT
/*
 * worker.c - one epoll loop per thread. Each worker owns SO_REUSEPORT listening sockets for
 * every bind, so the kernel spreads new connections over workers and no lock is taken on the
 * accept path. Connection deadlines are swept every 100 ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "clock.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "queue.h"
#include "stats.h"
#include "upstream_idle.h"
#include "worker.h"

#define MAX_EVENTS 256
#define SWEEP_MS 100
#define KPOLL_MS 1 /* kernel windows and drains give no event: look again this soon */

_Atomic uint32_t g_nconns;

/* fork window of a live upgrade: closes hold the read side, the fork the write side, so no
 * close that skipped EPOLL_CTL_DEL can overlap the fork */
static pthread_rwlock_t fork_lock = PTHREAD_RWLOCK_INITIALIZER;
static int fork_window;

void worker_close_watched(int epfd, int fd)
{
	pthread_rwlock_rdlock(&fork_lock);
	if (__atomic_load_n(&fork_window, __ATOMIC_RELAXED))
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	pthread_rwlock_unlock(&fork_lock);
}

void worker_fork_begin(void)
{
	pthread_rwlock_wrlock(&fork_lock);
	__atomic_store_n(&fork_window, 1, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&fork_lock);
}

void worker_fork_end(void)
{
	__atomic_store_n(&fork_window, 0, __ATOMIC_RELAXED);
}

/* accepted sockets inherit TCP_NODELAY from their listener: one setsockopt per listener
 * instead of one per connection (also for listeners taken over from an older process) */
static void listener_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int worker_listen_one(const struct bind_addr *b)
{
	int fd, one = 1;

	fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto err;
	/* [::]:80 and 0.0.0.0:80 may both be configured: keep the families apart */
	if (b->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto err;
	if (bind(fd, (const struct sockaddr *)&b->addr, b->addrlen) == -1)
		goto err;
	if (listen(fd, 4096) == -1)
		goto err;
	(void)acl_attach(fd); /* listener access lists in the kernel, when available */
	return fd;
err : {
	int err = -errno;

	close(fd);
	return err;
}
}

int worker_listen(struct worker *w)
{
	struct config *cf = w->cf;
	unsigned n = 0;

	for (unsigned i = 0; i < cf->nlisteners; i++)
		n += cf->listeners[i].nbinds;
	w->ltags = calloc(n, sizeof(*w->ltags));
	if (!w->ltags)
		return -ENOMEM;
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		struct listener *l = &cf->listeners[i];

		for (unsigned b = 0; b < l->nbinds; b++) {
			int fd = worker_listen_one(&l->binds[b]);

			if (fd < 0) {
				errno = -fd;
				log_warn("listener %s: cannot listen on %s", l->name,
					 l->binds[b].str);
				return fd;
			}
			w->ltags[w->nltags].kind = EP_LISTEN;
			w->ltags[w->nltags].fd = fd;
			w->ltags[w->nltags].l = l;
			w->ltags[w->nltags].bind = b;
			w->nltags++;
		}
	}
	return 0;
}

/*
 * Out of descriptors (or memory), accept fails and the connections stay in the listen queue.
 * The listener is edge-triggered: no new event comes for them until another connection
 * arrives, so a starved socket is retried on the sweep (every SWEEP_MS), as nginx and HAProxy
 * retry on a timer. An episode runs from the first socket of the process that starves until
 * every starved socket has emptied its queue: one warning, one accept_paused count, one line at
 * its end.
 */
static _Atomic unsigned accept_starved;

static void starve_begin(struct ep_tag *t, int err)
{
	if (t->starved)
		return;
	t->starved = 1;
	if (atomic_fetch_add(&accept_starved, 1) == 0) {
		log_warnx("listener %s: accept: %s: new connections wait in the listen queue, "
			  "accept is retried every %d ms",
			  t->l->name, strerror(err), SWEEP_MS);
		stats_error(STATS_ERR_ACCEPT_PAUSED);
	}
}

/* starve_end - t accepts again (quiet: t is closed or replaced, which ends nothing) */
static void starve_end(struct ep_tag *t, int quiet)
{
	if (!t->starved)
		return;
	t->starved = 0;
	if (atomic_fetch_sub(&accept_starved, 1) == 1 && !quiet)
		log_info("listener %s: accepting again", t->l->name);
}

/*
 * At max_connections new clients wait in the listen queue (HAProxy does the same) instead of
 * being refused: accepting stops, and resumes when a slot is free (after the event batch that
 * freed it, or on the sweep for slots other workers freed). While clients wait, the worker
 * closes its connections that are slowest to send a request head to admit them
 * (conn_reclaim: idle keep-alive ones first, then the oldest incomplete heads), as nginx drains
 * its reusable connections. An episode runs from the first client that waits until the
 * connections are below 90% of the limit again: one warning, one max_connections count, one
 * line at its end.
 */
static _Atomic int limit_episode;

static void limit_begin(struct worker *w, struct ep_tag *t)
{
	if (atomic_exchange(&limit_episode, 1))
		return;
	log_warnx("listener %s: max_connections (%u) reached: new connections wait in the listen "
		  "queue, the slowest to send a request are closed to admit them",
		  t->l->name, w->cf->max_connections);
	stats_error(STATS_ERR_MAX_CONNECTIONS);
}

/* limit_check - on the sweep: has the episode ended? */
static void limit_check(struct worker *w)
{
	uint64_t n = atomic_load(&g_nconns);

	if (atomic_load(&limit_episode) && !w->nfull &&
	    n * 10 < (uint64_t)w->cf->max_connections * 9 && atomic_exchange(&limit_episode, 0))
		log_info("below max_connections again (%llu connections)", (unsigned long long)n);
}

/* full_begin - t has clients waiting that no slot could be made for: retried (full_end: not) */
static void full_begin(struct worker *w, struct ep_tag *t)
{
	if (t->full)
		return;
	t->full = 1;
	w->nfull++;
}

static void full_end(struct worker *w, struct ep_tag *t)
{
	if (!t->full)
		return;
	t->full = 0;
	w->nfull--;
}

/* listen_queued - clients waiting in a listening socket's accept queue (TCP_INFO reports it
 * for a listener in tcpi_unacked); 1 when it cannot be told */
static unsigned listen_queued(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 || ti.tcpi_state != TCP_LISTEN)
		return 1;
	return ti.tcpi_unacked;
}

/* slot_take - count one more connection if max_connections allows it; 1 when counted */
static int slot_take(struct worker *w)
{
	if (atomic_fetch_add(&g_nconns, 1) < w->cf->max_connections)
		return 1;
	atomic_fetch_sub(&g_nconns, 1);
	return 0;
}

static void accept_all(struct worker *w, struct ep_tag *t)
{
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd;

		if (!slot_take(w)) {
			unsigned waiting = listen_queued(t->fd);

			/* nobody waiting: the next arrival raises a new edge */
			if (!waiting)
				return;
			limit_begin(w, t);
			if (!conn_reclaim(w, waiting) || !slot_take(w)) {
				full_begin(w, t);
				return;
			}
		}
		fd = accept4(t->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			int err = errno;

			atomic_fetch_sub(&g_nconns, 1);
			if (err == EAGAIN || err == EINTR) {
				/* the episode ends with the queue empty, not at the first accept
				 * that works: descriptors come back a few at a time */
				starve_end(t, 0);
				full_end(w, t);
				return;
			}
			if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
				starve_begin(t, err);
				return;
			}
			continue; /* ECONNABORTED and friends: the next one may be fine */
		}
		if (acl_refused(t->l, &peer)) { /* denied without the kernel filter */
			close(fd);
			atomic_fetch_sub(&g_nconns, 1);
			continue;
		}
		/* adding the socket to epoll reports data that is already there */
		conn_new(w, t->l, fd, &peer, plen);
	}
}

static int same_addr(const struct bind_addr *b, const struct sockaddr_storage *ss, socklen_t len)
{
	return b->addrlen == len && !memcmp(&b->addr, ss, len);
}

int worker_swap_prepare(struct worker *w, struct config *ncf, FILE *errf)
{
	struct ep_tag *tags;
	unsigned n = 0, k = 0;
	uint8_t *taken;

	for (unsigned i = 0; i < ncf->nlisteners; i++)
		n += ncf->listeners[i].nbinds;
	tags = calloc(n ? n : 1, sizeof(*tags));
	taken = calloc(w->nltags ? w->nltags : 1, 1);
	if (!tags || !taken) {
		free(tags);
		free(taken);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < ncf->nlisteners; i++) {
		struct listener *l = &ncf->listeners[i];

		for (unsigned b = 0; b < l->nbinds; b++) {
			int fd = -1;

			for (unsigned o = 0; o < w->nltags && fd < 0; o++) {
				const struct ep_tag *t = &w->ltags[o];

				if (!taken[o] && t->fd >= 0 &&
				    same_addr(&l->binds[b], &t->l->binds[t->bind].addr,
					      t->l->binds[t->bind].addrlen)) {
					taken[o] = 1;
					fd = t->fd;
					tags[k].reused = 1;
				}
			}
			if (fd < 0)
				fd = worker_listen_one(&l->binds[b]);
			if (fd < 0) {
				fprintf(errf, "%s:%d: listener %s: cannot listen on %s: %s\n",
					ncf->file, l->binds[b].line, l->name, l->binds[b].str,
					strerror(-fd));
				w->next_ltags = tags;
				w->next_nltags = k;
				worker_swap_abort(w);
				free(taken);
				return fd;
			}
			tags[k].kind = EP_LISTEN;
			tags[k].fd = fd;
			tags[k].l = l;
			tags[k].bind = b;
			k++;
		}
	}
	free(taken);
	w->next_ltags = tags;
	w->next_nltags = k;
	return 0;
}

void worker_swap_abort(struct worker *w)
{
	for (unsigned i = 0; i < w->next_nltags; i++)
		if (!w->next_ltags[i].reused)
			close(w->next_ltags[i].fd);
	free(w->next_ltags);
	w->next_ltags = NULL;
	w->next_nltags = 0;
}

void worker_wake(struct worker *w)
{
	uint64_t one = 1;

	(void)!write(w->wakefd, &one, sizeof(one));
}

void worker_swap_post(struct worker *w, struct config *ncf)
{
	atomic_store(&w->swapped, 0);
	atomic_store(&w->next_cf, ncf);
	worker_wake(w);
}

void worker_swap_wait(struct worker *w)
{
	/* the worker answers within one loop turn (its longest sleep is SWEEP_MS) */
	while (!atomic_load(&w->swapped)) {
		struct timespec ts = {.tv_nsec = 200000};

		nanosleep(&ts, NULL);
	}
}

/* swap_apply - worker thread: run on the posted configuration and listener set */
static void swap_apply(struct worker *w, struct config *ncf)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
	unsigned most = 1;

	for (unsigned o = 0; o < w->nltags; o++) {
		int kept = 0;

		starve_end(&w->ltags[o], 1); /* a kept socket is retried below */
		full_end(w, &w->ltags[o]);
		for (unsigned i = 0; i < w->next_nltags && !kept; i++)
			kept = w->next_ltags[i].fd == w->ltags[o].fd;
		if (!kept && w->ltags[o].fd >= 0) {
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->ltags[o].fd, NULL);
			close(w->ltags[o].fd);
		}
	}
	for (unsigned i = 0; i < w->next_nltags; i++) {
		struct ep_tag *t = &w->next_ltags[i];

		ev.data.ptr = t;
		listener_nodelay(t->fd);
		if (epoll_ctl(w->epfd, t->reused ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t->fd, &ev) == -1)
			log_warn("worker %u: cannot watch listener %s", w->id, t->l->name);
	}
	free(w->ltags);
	w->ltags = w->next_ltags;
	w->nltags = w->next_nltags;
	w->next_ltags = NULL;
	w->next_nltags = 0;
	for (unsigned i = 0; i < ncf->npools; i++)
		if (ncf->pools[i].nservers > most)
			most = ncf->pools[i].nservers;
	{
		uint8_t *u = calloc(most, 1);

		if (u) {
			free(w->usable);
			w->usable = u;
		}
	}
	w->cf = ncf;
	spare_config(&w->spare, ncf->buffer_size, ncf->pipe_size, ncf->buffer_pool);
	/* server ids belong to a configuration: parked connections go */
	upstream_idle_flush(w, 1);
	/* an edge may have been consumed by the old registration: look for queued clients */
	for (unsigned i = 0; i < w->nltags; i++)
		accept_all(w, &w->ltags[i]);
	atomic_store(&w->swapped, 1);
}

/* drain_begin - graceful stop: take what is queued, stop listening, close idle connections;
 * the rest finish their request (no keep-alive, see conn.c) */
static void drain_begin(struct worker *w)
{
	for (unsigned i = 0; i < w->nltags; i++) {
		accept_all(w, &w->ltags[i]);
		starve_end(&w->ltags[i], 1);
		full_end(w, &w->ltags[i]);
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->ltags[i].fd, NULL);
		close(w->ltags[i].fd);
		w->ltags[i].fd = -1;
	}
	w->drain_started = 1;
}

/* ---- upstream sockets' epoll tags ---- */

struct ep_tag *worker_utag_new(int fd, struct conn *c)
{
	struct ep_tag *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->kind = EP_UPSTREAM;
	t->fd = fd;
	t->c = c;
	return t;
}

void worker_utag_drop(struct worker *w, struct ep_tag *t)
{
	/* the batch being processed may still hold an event for it */
	t->c = NULL;
	t->fd = -1;
	t->kind = EP_DEAD;
	t->dead_next = w->dead_tags;
	w->dead_tags = t;
}

void worker_utag_close(struct worker *w, struct ep_tag *t)
{
	worker_close_watched(w->epfd, t->fd);
	worker_utag_drop(w, t);
}

void worker_reap_tags(struct worker *w)
{
	while (w->dead_tags) {
		struct ep_tag *t = w->dead_tags;

		w->dead_tags = t->dead_next;
		free(t);
	}
}

/* ---- live upgrade, old process ---- */

static void listeners_pause(struct worker *w, int pause)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET};

	for (unsigned i = 0; i < w->nltags; i++) {
		if (w->ltags[i].fd < 0)
			continue;
		if (pause) {
			accept_all(w, &w->ltags[i]);
			/* the new process accepts what is left */
			starve_end(&w->ltags[i], 1);
			full_end(w, &w->ltags[i]);
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->ltags[i].fd, NULL);
		} else {
			ev.data.ptr = &w->ltags[i];
			epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->ltags[i].fd, &ev);
			accept_all(w, &w->ltags[i]);
		}
	}
}

static void hold_all(struct worker *w, int on)
{
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = conn_next(c);
		conn_hold(c, on);
	}
}

static void ho_transition(struct worker *w, int ho)
{
	switch (ho) {
	case WORKER_HO_HAND:
		listeners_pause(w, 1);
		hold_all(w, 1);
		break;
	case WORKER_HO_ABORT:
		listeners_pause(w, 0);
		hold_all(w, 0);
		break;
	case WORKER_HO_DRAIN:
		hold_all(w, 0);
		atomic_store(&w->draining, 1);
		break;
	}
	w->ho_phase = ho;
}

void worker_handover(struct worker *w, int phase, int notify_fd)
{
	w->ho_notify = notify_fd;
	atomic_store(&w->handover, phase);
	worker_wake(w);
}

/* handed_push - queue a detached connection for the main thread to send */
static void handed_push(struct worker *w, struct handover_item *it)
{
	uint64_t one = 1;

	it->next = NULL;
	pthread_mutex_lock(&w->ho_lock);
	if (!w->ho_out_tail)
		w->ho_out_tail = &w->ho_out;
	*w->ho_out_tail = it;
	w->ho_out_tail = &it->next;
	pthread_mutex_unlock(&w->ho_lock);
	(void)!write(w->ho_notify, &one, sizeof(one));
}

struct handover_item *worker_handed_take(struct worker *w)
{
	struct handover_item *q;

	pthread_mutex_lock(&w->ho_lock);
	q = w->ho_out;
	w->ho_out = NULL;
	w->ho_out_tail = &w->ho_out;
	pthread_mutex_unlock(&w->ho_lock);
	return q;
}

/* ho_sweep - hand over every connection at a hand-over point; TLS ones close when idle */
static void ho_sweep(struct worker *w)
{
	for (struct conn *c = w->conns, *next; c; c = next) {
		struct handover_item *it;

		next = conn_next(c);
		if (!conn_handable(c)) {
			if (conn_idle(c) && !conn_hold(c, 1))
				conn_free(c); /* TLS state cannot move: an idle one just closes */
			continue;
		}
		it = calloc(1, sizeof(*it));
		if (!it)
			return;
		conn_detach(c, &it->rec, &it->cfd, &it->ufd);
		handed_push(w, it);
		/* counted until queued: the main thread sends what is queued before it looks */
		atomic_fetch_sub(&g_nconns, 1);
	}
}

/* ---- live upgrade, new process ---- */

void worker_adopt_push(struct worker *w, struct handover_item *it)
{
	pthread_mutex_lock(&w->ho_lock);
	it->next = w->adopt_q;
	w->adopt_q = it;
	pthread_mutex_unlock(&w->ho_lock);
	worker_wake(w);
}

/* adopt_queued - worker thread: adopt what the main thread queued */
static void adopt_queued(struct worker *w)
{
	struct handover_item *q;

	pthread_mutex_lock(&w->ho_lock);
	q = w->adopt_q;
	w->adopt_q = NULL;
	pthread_mutex_unlock(&w->ho_lock);
	while (q) {
		struct handover_item *next = q->next;
		int rc = conn_adopt(w, &q->rec, q->cfd, q->ufd);

		if (rc)
			log_warnx("upgrade: connection of %s not adopted (%s)", q->rec.peer,
				  strerror(-rc));
		free(q);
		q = next;
	}
}

static void sweep(struct worker *w)
{
	struct conn *c = w->conns, *next;

	/* starved or full listening sockets (paused ones are left to the new process) */
	for (unsigned i = 0; i < w->nltags && w->ho_phase != WORKER_HO_HAND; i++)
		if ((w->ltags[i].starved || w->ltags[i].full) && w->ltags[i].fd >= 0)
			accept_all(w, &w->ltags[i]);
	limit_check(w);
	/* after a spike, freed heap goes back to the system */
	spare_sweep(&w->spare);
	if (w->nidle)
		upstream_idle_flush(w, 0);
	while (c) {
		next = conn_next(c);
		if (w->drain_started && conn_idle(c))
			conn_free(c);
		else
			conn_timer(c);
		c = next;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[MAX_EVENTS];

	while (!w->stop) {
		struct config *ncf = atomic_exchange(&w->next_cf, NULL);

		if (ncf)
			swap_apply(w, ncf);
		{
			int ho = atomic_load(&w->handover);

			if (ho != w->ho_phase)
				ho_transition(w, ho);
			if (w->ho_phase == WORKER_HO_HAND)
				ho_sweep(w);
			if (w->adopt_q)
				adopt_queued(w);
		}
		if (!w->drain_started && atomic_load(&w->draining)) {
			drain_begin(w);
			sweep(w);
		}
		int timeout = w->ready			      ? 0
			      : w->kpoll		      ? KPOLL_MS
			      : w->ho_phase == WORKER_HO_HAND ? 10
							      : SWEEP_MS;
		int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout);

		w->now_ms = clock_ms();
		for (int i = 0; i < n; i++) {
			struct ep_tag *t = evs[i].data.ptr;

			switch (t->kind) {
			case EP_LISTEN:
				accept_all(w, t);
				break;
			case EP_CLIENT:
				conn_event(t->c, evs[i].events, 0);
				break;
			case EP_UPSTREAM:
				if (t->c)
					conn_event(t->c, evs[i].events, 1);
				else
					upstream_idle_event(w, t, evs[i].events);
				break;
			case EP_DEAD:
				break;
			case EP_WAKE: {
				uint64_t cnt;

				/* level-triggered: read, or every epoll_wait returns at once */
				(void)!read(w->wakefd, &cnt, sizeof(cnt));
				break;
			}
			}
		}
		/* requests that waited for a server slot and got one (queue.c) */
		queue_run_granted(w);
		/* connections that used their budget run again after everyone else */
		{
			struct conn *r = w->ready;

			w->ready = NULL;
			while (r) {
				struct conn *next = conn_ready_next(r);

				conn_run(r);
				r = next;
			}
		}
		if (w->kpoll) {
			struct conn *k = w->kpoll;

			w->kpoll = NULL;
			while (k) {
				struct conn *next = conn_kpoll_next(k);

				conn_run(k);
				k = next;
			}
		}
		/* clients waiting at max_connections get the slots this batch freed */
		if (w->nfull && w->ho_phase != WORKER_HO_HAND &&
		    atomic_load(&g_nconns) < w->cf->max_connections)
			for (unsigned i = 0; i < w->nltags; i++)
				if (w->ltags[i].full && w->ltags[i].fd >= 0)
					accept_all(w, &w->ltags[i]);
		if (w->now_ms - w->last_sweep_ms >= SWEEP_MS) {
			w->last_sweep_ms = w->now_ms;
			sweep(w);
		}
		conn_reap(w);
		worker_reap_tags(w);
	}
	return NULL;
}

int worker_start(struct worker *w)
{
	struct epoll_event ev;
	unsigned most = 1;
	int rc;

	/* before any connection exists: conn_snapshot() may be called from now on */
	pthread_mutex_init(&w->conns_lock, NULL);
	for (unsigned i = 0; i < w->cf->npools; i++)
		if (w->cf->pools[i].nservers > most)
			most = w->cf->pools[i].nservers;
	/* allocated once: picking a server must not allocate per request */
	w->usable = calloc(most, 1);
	if (!w->usable)
		return -ENOMEM;
	w->head_msg = calloc(1, sizeof(*w->head_msg));
	if (!w->head_msg)
		return -ENOMEM;
	rc = spare_init(&w->spare, w->cf->buffer_size, w->cf->pipe_size, w->cf->buffer_pool);
	if (rc)
		return rc;

	pthread_mutex_init(&w->ho_lock, NULL);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd == -1)
		return -errno;
	w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wakefd == -1)
		return -errno;
	w->wake_tag.kind = EP_WAKE;
	w->wake_tag.fd = w->wakefd;
	ev.events = EPOLLIN;
	ev.data.ptr = &w->wake_tag;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) == -1)
		return -errno;
	for (unsigned i = 0; i < w->nltags; i++) {
		ev.events = EPOLLIN | EPOLLET;
		ev.data.ptr = &w->ltags[i];
		listener_nodelay(w->ltags[i].fd);
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->ltags[i].fd, &ev) == -1)
			return -errno;
	}
	w->now_ms = clock_ms();
	w->last_sweep_ms = w->now_ms;
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	return -rc;
}

void worker_stop(struct worker *w)
{
	uint64_t one = 1;

	w->stop = 1;
	(void)!write(w->wakefd, &one, sizeof(one));
	pthread_join(w->thread, NULL);
	while (w->conns)
		conn_free(w->conns);
	conn_reap(w);
	upstream_idle_flush(w, 1);
	worker_reap_tags(w);
	free(w->idle);
	for (unsigned i = 0; i < w->nltags; i++)
		if (w->ltags[i].fd >= 0)
			close(w->ltags[i].fd);
	free(w->ltags);
	free(w->usable);
	free(w->head_msg);
	spare_destroy(&w->spare);
	close(w->wakefd);
	close(w->epfd);
	pthread_mutex_destroy(&w->conns_lock);
}
