// SPDX-License-Identifier: MIT
/*
 * daemon.c - the main thread's event loop: one epoll set, and a callback per watched fd (the
 * signalfd and the 1 s tick of main.c, the control socket, the metrics endpoint, the live
 * upgrade's sockets). What the events mean is the watchers' business: this file only waits and
 * dispatches, so every module of the control plane can use it without it knowing them.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "daemon.h"

#define MAX_EVENTS 32

struct daemon g_daemon;

struct watch {
	int fd;
	daemon_fd_cb cb;
	void *arg;
	struct watch *next;
};

static struct watch *watches;

int daemon_loop_init(struct daemon *d)
{
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	return d->epfd == -1 ? -errno : 0;
}

int daemon_watch(struct daemon *d, int fd, uint32_t events, daemon_fd_cb cb, void *arg)
{
	struct watch *wt = calloc(1, sizeof(*wt));
	struct epoll_event ev = {.events = events};

	if (!wt)
		return -ENOMEM;
	wt->fd = fd;
	wt->cb = cb;
	wt->arg = arg;
	ev.data.ptr = wt;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		int err = -errno;

		free(wt);
		return err;
	}
	wt->next = watches;
	watches = wt;
	return 0;
}

void daemon_unwatch(struct daemon *d, int fd)
{
	for (struct watch **pp = &watches; *pp; pp = &(*pp)->next) {
		if ((*pp)->fd == fd) {
			struct watch *wt = *pp;

			epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
			*pp = wt->next;
			/* an event of the current batch may still name it: daemon_loop_once()
			 * only calls watches that are still on the list */
			free(wt);
			return;
		}
	}
}

int daemon_loop_once(struct daemon *d, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(d->epfd, evs, MAX_EVENTS, timeout_ms);

	if (n == -1)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct watch *wt;

		/* the watch may have been removed by an earlier callback */
		for (wt = watches; wt && wt != evs[i].data.ptr; wt = wt->next)
			;
		if (wt && wt->cb)
			wt->cb(d, wt->fd, evs[i].events, wt->arg);
	}
	return n;
}

void daemon_loop_close(struct daemon *d)
{
	while (watches) {
		struct watch *wt = watches;

		watches = wt->next;
		free(wt);
	}
	close(d->epfd);
	d->epfd = -1;
}
