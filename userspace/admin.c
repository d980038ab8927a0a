// SPDX-License-Identifier: MIT
/*
 * admin.c - the listening socket and client list shared by the control socket and the metrics
 * endpoint (see admin.h). Runs on the main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "log.h"
#include "worker.h"

void admin_client_close(struct daemon *d, struct admin_client *cl)
{
	struct admin_srv *s = cl->srv;

	for (struct admin_client **pp = &s->clients; *pp; pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	daemon_unwatch(d, cl->fd);
	close(cl->fd);
	ob_free(&cl->out);
	free(cl);
	s->nclients--;
}

void admin_close_all(struct daemon *d, struct admin_srv *s)
{
	while (s->clients)
		admin_client_close(d, s->clients);
}

/* make_room - close one client so a new one fits (see admin_srv.in_progress); 0 when done */
static int make_room(struct daemon *d, struct admin_srv *s)
{
	struct admin_client *idle = NULL, *any = NULL;

	if (!s->in_progress || !s->clients)
		return -1;
	for (struct admin_client *cl = s->clients; cl; cl = cl->next) {
		if (!any || cl->since_ms < any->since_ms)
			any = cl;
		if (!s->in_progress(cl) && (!idle || cl->since_ms < idle->since_ms))
			idle = cl;
	}
	if (!s->evicting)
		log_warnx("%s: %u clients, closing the longest idle ones to serve new ones",
			  s->name, s->nclients);
	s->evicting = 1;
	admin_client_close(d, idle ? idle : any);
	return 0;
}

static void accept_event(struct daemon *d, int fd, uint32_t events, void *arg)
{
	struct admin_srv *s = arg;

	(void)events;
	if (d->upgrading) {
		/* the new process shares this socket: new clients wait for it in the backlog
		 * (the 1 s timer watches again if the upgrade is given up) */
		daemon_unwatch(d, fd);
		s->paused = 1;
		return;
	}
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct admin_client *cl;

		if (cfd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn("%s: accept", s->name);
			return;
		}
		if (s->nclients >= s->max_clients && make_room(d, s)) {
			if (s->busy)
				(void)!send(cfd, s->busy, strlen(s->busy),
					    MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			continue;
		}
		cl = calloc(1, s->client_size);
		if (!cl) {
			close(cfd);
			continue;
		}
		cl->srv = s;
		cl->fd = cfd;
		cl->out.max = s->out_max;
		cl->since_ms = clock_ms();
		if (daemon_watch(d, cfd, ADMIN_CLIENT_EVENTS, s->client_event, cl)) {
			close(cfd);
			free(cl);
			continue;
		}
		cl->next = s->clients;
		s->clients = cl;
		s->nclients++;
	}
}

int admin_watch(struct daemon *d, struct admin_srv *s, int fd)
{
	return daemon_watch(d, fd, EPOLLIN | EPOLLET, accept_event, s);
}

static void timer_event(struct daemon *d, int fd, uint32_t events, void *arg)
{
	struct admin_srv *s = arg;
	uint64_t n, now = clock_ms();
	struct admin_client *cl, *next;

	(void)events;
	(void)!read(fd, &n, sizeof(n));

	for (cl = s->clients; cl; cl = next) {
		next = cl->next;
		if (now - cl->since_ms >= s->idle_ms)
			admin_client_close(d, cl);
	}
	if (s->nclients < s->max_clients / 2)
		s->evicting = 0; /* the next episode is logged again */
	/* the upgrade was given up: serve again (what queued meanwhile is reported) */
	if (s->paused && !d->upgrading && s->lfd >= 0 && admin_watch(d, s, s->lfd) == 0)
		s->paused = 0;
	if (s->on_tick)
		s->on_tick(d);
}

void admin_timer_start(struct daemon *d, struct admin_srv *s)
{
	struct itimerspec its = {.it_interval = {.tv_sec = 1}, .it_value = {.tv_sec = 1}};

	if (s->tfd >= 0)
		return;
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tfd >= 0 && (timerfd_settime(s->tfd, 0, &its, NULL) == -1 ||
			    daemon_watch(d, s->tfd, EPOLLIN, timer_event, s))) {
		close(s->tfd);
		s->tfd = -1;
	}
	if (s->tfd < 0)
		log_warn("%s: timer (idle clients are not closed)", s->name);
}

void admin_timer_stop(struct daemon *d, struct admin_srv *s)
{
	if (s->tfd < 0)
		return;
	daemon_unwatch(d, s->tfd);
	close(s->tfd);
	s->tfd = -1;
}

void admin_publish_fd(const struct admin_srv *s, int fd)
{
	char num[16];

	if (fd < 0) {
		unsetenv(s->env_fd);
		return;
	}
	snprintf(num, sizeof(num), "%d", fd);
	if (fcntl(fd, F_SETFD, 0) == 0)
		setenv(s->env_fd, num, 1);
}

int admin_inherit_fd(const struct admin_srv *s, struct sockaddr_storage *ss)
{
	const char *v = getenv(s->env_fd);
	socklen_t len = sizeof(*ss), ol;
	struct stat st;
	int fd, on = 0;
	char *end;
	long n;

	if (!v)
		return -1;
	n = strtol(v, &end, 10);
	unsetenv(s->env_fd);
	if (*end || n < 3 || n > INT_MAX)
		return -1;
	fd = (int)n;
	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode))
		return -1;
	memset(ss, 0, sizeof(*ss));
	ol = sizeof(on);
	if (getsockname(fd, (struct sockaddr *)ss, &len) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) == -1 || !on) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}
