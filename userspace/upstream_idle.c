// SPDX-License-Identifier: MIT
/*
 * upstream_idle.c - parked upstream connections (see upstream_idle.h). A parked socket stays
 * registered with the worker's epoll under its own heap tag; only the tag's owner changes
 * (NULL while parked), so parking and taking cost no system call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "log.h"
#include "stats.h"
#include "upstream_idle.h"

int upstream_idle_put(struct worker *w, struct ep_tag *t, uint32_t server_id, unsigned max,
		      uint64_t until_ms, uint64_t read, uint64_t written)
{
	unsigned have = 0;

	for (unsigned i = 0; i < w->nidle; i++)
		have += w->idle[i].server_id == server_id;
	if (have >= max)
		return -1;
	if (w->nidle == w->idle_cap) {
		unsigned cap = w->idle_cap ? w->idle_cap * 2 : 64;
		struct idle_upstream *n = realloc(w->idle, cap * sizeof(*n));

		if (!n)
			return -1;
		w->idle = n;
		w->idle_cap = cap;
	}
	t->c = NULL;
	w->idle[w->nidle].tag = t;
	w->idle[w->nidle].server_id = server_id;
	w->idle[w->nidle].until_ms = until_ms;
	w->idle[w->nidle].read = read;
	w->idle[w->nidle].written = written;
	w->nidle++;
	return 0;
}

static void idle_remove(struct worker *w, unsigned i)
{
	memmove(&w->idle[i], &w->idle[i + 1], (w->nidle - i - 1) * sizeof(*w->idle));
	w->nidle--;
}

struct ep_tag *upstream_idle_take(struct worker *w, uint32_t server_id, uint64_t *read,
				  uint64_t *written)
{
	/* the most recently parked first: the least likely to be closed by the server soon */
	for (unsigned i = w->nidle; i-- > 0;) {
		struct ep_tag *t;

		if (w->idle[i].server_id != server_id)
			continue;
		t = w->idle[i].tag;
		*read = w->idle[i].read;
		*written = w->idle[i].written;
		idle_remove(w, i);
		return t;
	}
	return NULL;
}

void upstream_idle_event(struct worker *w, struct ep_tag *t, uint32_t events)
{
	char b;
	ssize_t r;

	if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return; /* writable: nothing to say */
	/* still silent after all? (an event computed before the last read of the response) */
	r = recv(t->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r == -1 && errno == EAGAIN && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return;
	for (unsigned i = 0; i < w->nidle; i++) {
		if (w->idle[i].tag == t) {
			/* a server may only speak when asked: what it says now would be taken
			 * for the answer to the next request, another client's */
			if (r > 0) {
				log_warnx(
					"parked upstream connection received bytes with no request "
					"outstanding: closed");
				stats_error(STATS_ERR_UPSTREAM_UNSOLICITED);
			}
			idle_remove(w, i);
			worker_utag_close(w, t);
			return;
		}
	}
}

void upstream_idle_flush(struct worker *w, int all)
{
	for (unsigned i = w->nidle; i-- > 0;) {
		if (all || w->idle[i].until_ms <= w->now_ms) {
			struct ep_tag *t = w->idle[i].tag;

			idle_remove(w, i);
			worker_utag_close(w, t);
		}
	}
}
