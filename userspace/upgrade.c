// SPDX-License-Identifier: MIT
/*
 * upgrade.c - live upgrade on SIGUSR2, with established connections handed over.
 *
 * The old process (O) forks and executes its own binary path again (the file may have been
 * replaced: that is the upgrade) with the same arguments and SPLICED_UPGRADE_FD naming one end of
 * a SOCK_SEQPACKET socketpair. The new process (N) loads its configuration, then:
 *
 *   N -> O  HELLO      its pid
 *   O -> N  MAPS       the BPF map fds (the verdict stays attached to them), slot count; O stops
 *                      inserting sockets into the kernel path from here on
 *   O -> N  SLOTS...   the socket-state slots O uses (N allocates around them until O is gone)
 *   O -> N  LISTENER...  every worker's listening socket with its address
 *   O -> N  LISTENERS_END
 *   N       takes the listening sockets whose address it still binds (opens new ones for new
 *           addresses), drops privileges, starts its workers: both processes accept now
 *   N -> O  READY
 *   O       stops accepting (the sockets stay open in N: nothing queued is lost, nothing is
 *           refused), holds every connection (reads nothing more) until it reaches a hand-over
 *           point (conn.h), then sends it:
 *   O -> N  CONN...    struct conn_handover + the client (and upstream) socket
 *   O -> N  DONE       once every connection is handed over or after upgrade_timeout; what is
 *                      left finishes in O (drain_timeout), then O exits; its maps stay pinned
 *   N       on EOF (O exited): the slots O still had are free
 *
 * Anything failing before READY (N cannot load its configuration, dies, times out) leaves O
 * serving as before. N dying after READY: O listens again and keeps what it still has.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acl.h"
#include "clock.h"
#include "daemon.h"
#include "log.h"
#include "splice.h"
#include "upgrade.h"
#include "worker.h"

#define ENV_FD "SPLICED_UPGRADE_FD"
#define MAX_FDS 8
#define SLOTS_PER_MSG 2048

enum ho_type {
	HO_HELLO = 1,
	HO_ERR,
	HO_MAPS,
	HO_SLOTS,
	HO_LISTENER,
	HO_LISTENERS_END,
	HO_READY,
	HO_CONN,
	HO_DONE,
};

struct ho_hdr {
	uint32_t type;
	uint32_t nfds;
};

struct ho_maps {
	uint32_t nslots;
	int32_t kernel_on;
	int32_t have_maps;
};

struct ho_listener {
	uint32_t worker;
	uint32_t addrlen;
	struct sockaddr_storage addr;
	char str[80];
};

union ho_body {
	int32_t pid;
	struct ho_maps maps;
	struct ho_listener lst;
	struct {
		uint32_t n;
		uint32_t slot[SLOTS_PER_MSG];
	} slots;
	struct conn_handover conn;
	struct {
		uint32_t handed, left;
	} done;
	char text[512];
};

struct ho_msg {
	struct ho_hdr h;
	union ho_body b;
};

/* ---- messages ---- */

static int ho_send(int fd, uint32_t type, const void *body, size_t len, const int *fds, int nfds)
{
	struct ho_msg m;
	struct iovec iov;
	struct msghdr mh = {0};
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];

	memset(&m.h, 0, sizeof(m.h));
	m.h.type = type;
	m.h.nfds = (uint32_t)nfds;
	if (len)
		memcpy(&m.b, body, len);
	iov.iov_base = &m;
	iov.iov_len = sizeof(m.h) + len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* ho_recv - one message; fds[] gets its descriptors (*nfds). 0, -EAGAIN, or -errno/-EPIPE */
static int ho_recv(int fd, struct ho_msg *m, size_t *blen, int *fds, int *nfds, int flags)
{
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	struct msghdr mh = {0};
	ssize_t n;

	*nfds = 0;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EAGAIN ? -EAGAIN : -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (int i = 0; i < k; i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (*nfds < MAX_FDS)
					fds[(*nfds)++] = f;
				else
					close(f);
			}
		}
	}
	if (n == 0)
		return -EPIPE;
	if ((size_t)n < sizeof(m->h) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (int i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		return -EPROTO;
	}
	*blen = (size_t)n - sizeof(m->h);
	return 0;
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* ---- old process ---- */

static struct {
	int fd;
	unsigned next_worker;
	unsigned adopted;
} N = {.fd = -1};

static struct {
	int fd;	       /* our end of the socketpair; -1: no upgrade running */
	pid_t child;   /* what we forked (the new process, or its daemon() parent) */
	pid_t new_pid; /* from HELLO */
	int ready;     /* READY received: connections are being handed over */
	int done_sent; /* DONE sent: what is left drains here */
	uint64_t deadline;
	unsigned handed;
	int efd; /* eventfd: workers queued connections */
} O = {.fd = -1, .efd = -1};

static void set_workers(struct daemon *d, int ho)
{
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_handover(&d->workers[i], ho, O.efd);
}

/* send_handed - send the connections of q to the new process, close them here, free q */
static void send_handed(struct handover_item *q)
{
	while (q) {
		struct handover_item *next = q->next;
		int fds[2] = {q->cfd, q->ufd};

		if (O.fd < 0 ||
		    ho_send(O.fd, HO_CONN, &q->rec, sizeof(q->rec), fds, q->ufd >= 0 ? 2 : 1)) {
			/* the new process is gone: this connection is lost with it */
			log_warnx("upgrade: cannot hand over the connection of %s", q->rec.peer);
		} else {
			O.handed++;
		}
		close(q->cfd);
		if (q->ufd >= 0)
			close(q->ufd);
		free(q);
		q = next;
	}
}

/* send what the workers queued */
static void send_queued(struct daemon *d)
{
	uint64_t n;

	(void)!read(O.efd, &n, sizeof(n));
	for (unsigned i = 0; i < d->nworkers; i++)
		send_handed(worker_handed_take(&d->workers[i]));
}

static void on_efd(struct daemon *d, int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	send_queued(d);
}

static void abort_upgrade(struct daemon *d, const char *why)
{
	log_warnx("upgrade failed: %s; this process (pid %d) keeps serving", why, (int)getpid());
	if (O.ready)
		set_workers(d, WORKER_HO_ABORT);
	splice_freeze(0);
	daemon_unwatch(d, O.fd);
	close(O.fd);
	O.fd = -1;
	O.ready = 0;
	d->upgrading = 0;
}

static int send_state(struct daemon *d)
{
	int fds[SPLICE_NFDS];
	struct ho_maps maps = {0};
	uint32_t n = 0, *slots;
	int kernel = 0;

	if (splice_export(fds, &maps.nslots, &kernel) == 0) {
		maps.have_maps = 1;
		maps.kernel_on = kernel;
	}
	/* from here on this process leaves the slots alone: no new kernel sockets */
	splice_freeze(1);
	if (ho_send(O.fd, HO_MAPS, &maps, sizeof(maps), fds, maps.have_maps ? SPLICE_NFDS : 0))
		return -1;
	slots = splice_slots_in_use(&n);
	for (uint32_t off = 0; off < n || (!n && !off); off += SLOTS_PER_MSG) {
		union ho_body b;
		uint32_t k = n - off < SLOTS_PER_MSG ? n - off : SLOTS_PER_MSG;

		b.slots.n = k;
		if (k)
			memcpy(b.slots.slot, slots + off, k * sizeof(uint32_t));
		if (ho_send(O.fd, HO_SLOTS, &b, sizeof(uint32_t) * (k + 1), NULL, 0)) {
			free(slots);
			return -1;
		}
		if (!n)
			break;
	}
	free(slots);
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];

		for (unsigned t = 0; t < w->nltags; t++) {
			struct ho_listener l = {0};
			const struct bind_addr *b = &w->ltags[t].l->binds[w->ltags[t].bind];

			if (w->ltags[t].fd < 0)
				continue;
			l.worker = i;
			l.addrlen = b->addrlen;
			memcpy(&l.addr, &b->addr, b->addrlen);
			snprintf(l.str, sizeof(l.str), "%s", b->str);
			if (ho_send(O.fd, HO_LISTENER, &l, sizeof(l), &w->ltags[t].fd, 1))
				return -1;
		}
	}
	return ho_send(O.fd, HO_LISTENERS_END, &d->nworkers, sizeof(uint32_t), NULL, 0);
}

static void on_new_process(struct daemon *d, int fd, uint32_t events, void *arg)
{
	struct ho_msg m;
	size_t len;
	int fds[MAX_FDS], nfds, rc;

	(void)events;
	(void)arg;
	for (;;) {
		rc = ho_recv(fd, &m, &len, fds, &nfds, MSG_DONTWAIT);
		if (rc == -EAGAIN)
			return;
		/* a message means it executed its binary, EOF that it is gone: either way no
		 * other process holds copies of this one's fds any more */
		worker_fork_end();
		close_fds(fds, nfds);
		if (rc) {
			if (O.done_sent) { /* expected: it has everything */
				daemon_unwatch(d, O.fd);
				close(O.fd);
				O.fd = -1;
				return;
			}
			abort_upgrade(d, O.ready ? "the new process died while taking connections"
						 : "the new process exited before it was ready");
			return;
		}
		switch (m.h.type) {
		case HO_HELLO:
			O.new_pid = m.b.pid;
			log_info("upgrade: new process %d asks for the state", (int)O.new_pid);
			if (send_state(d)) {
				abort_upgrade(d, "cannot send the state to the new process");
				return;
			}
			break;
		case HO_ERR:
			m.b.text[sizeof(m.b.text) - 1] = '\0';
			abort_upgrade(d, m.b.text);
			return;
		case HO_READY:
			O.ready = 1;
			O.deadline = clock_ms() + d->cf->upgrade_timeout_ms;
			log_info("upgrade: pid %d is serving; handing over %u connection%s "
				 "(up to %u ms)",
				 (int)O.new_pid, atomic_load(&g_nconns),
				 atomic_load(&g_nconns) == 1 ? "" : "s", d->cf->upgrade_timeout_ms);
			set_workers(d, WORKER_HO_HAND);
			break;
		default:
			abort_upgrade(d, "unexpected message from the new process");
			return;
		}
	}
}

int upgrade_start(struct daemon *d, char **argv)
{
	int sp[2];
	pid_t pid;

	if (d->upgrading || d->stopping || N.fd >= 0) {
		log_warnx("SIGUSR2: %s; ignored",
			  d->upgrading	? "an upgrade is already running"
			  : d->stopping ? "stopping"
					: "still taking connections from the previous process");
		return -1;
	}
	if (!d->exe[0]) {
		log_warnx("SIGUSR2: the binary's path is unknown; cannot upgrade");
		return -1;
	}
	if (O.efd < 0) {
		O.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (O.efd < 0 || daemon_watch(d, O.efd, EPOLLIN, on_efd, NULL)) {
			log_warn("upgrade: eventfd");
			return -1;
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("upgrade: socketpair");
		return -1;
	}
	worker_fork_begin();
	pid = fork();
	if (pid == -1) {
		worker_fork_end();
		log_warn("upgrade: fork");
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		char env[32];
		int fd = dup(sp[1]); /* without CLOEXEC */

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		snprintf(env, sizeof(env), "%d", fd);
		setenv(ENV_FD, env, 1);
		execv(d->exe, argv);
		fprintf(stderr, "spliced: upgrade: cannot execute %s: %s\n", d->exe,
			strerror(errno));
		_exit(127);
	}
	close(sp[1]);
	O.fd = sp[0];
	O.child = pid;
	O.ready = O.done_sent = 0;
	O.handed = 0;
	O.new_pid = 0;
	O.deadline = clock_ms() + 30000; /* for the new process to become ready */
	if (daemon_watch(d, O.fd, EPOLLIN, on_new_process, NULL)) {
		close(O.fd);
		O.fd = -1;
		return -1;
	}
	d->upgrading = 1;
	log_info("SIGUSR2: upgrading: started %s (pid %d)", d->exe, (int)pid);
	return 0;
}

int upgrade_poll(struct daemon *d)
{
	uint64_t now = clock_ms();
	unsigned left;
	int status;

	if (O.child > 0 && waitpid(O.child, &status, WNOHANG) == O.child) {
		worker_fork_end(); /* gone with its copies of the fds */
		O.child = 0;	   /* reaped; a failure shows up as EOF on the socket */
	}
	if (!d->upgrading)
		return 0;
	if (!O.ready) {
		if (now >= O.deadline) {
			if (O.child > 0)
				kill(O.child, SIGKILL);
			abort_upgrade(d, "the new process did not become ready in 30 s");
		}
		return 0;
	}
	/* read before sending: a worker queues a connection's record before it leaves the
	 * count, so at zero every record is queued and the send below takes it */
	left = atomic_load(&g_nconns);
	send_queued(d);
	if (O.done_sent)
		return 0;
	if (!left || now >= O.deadline) {
		left = atomic_load(&g_nconns);
		struct {
			uint32_t handed, left;
		} done = {O.handed, left};

		ho_send(O.fd, HO_DONE, &done, sizeof(done), NULL, 0);
		O.done_sent = 1;
		d->upgraded = 1;
		log_info("upgrade: %u connection%s handed over to pid %d, %u finish here", O.handed,
			 O.handed == 1 ? "" : "s", (int)O.new_pid, left);
		if (!left)
			return 1;
		/* what is left finishes here, like a graceful stop */
		set_workers(d, WORKER_HO_DRAIN);
		d->stopping = 1;
		d->drain_deadline_ms = now + d->cf->drain_timeout_ms;
	}
	return 0;
}

/* ---- new process (state N, above) ---- */

int upgrade_inherited_fd(void)
{
	const char *e = getenv(ENV_FD);
	int fd;

	if (!e)
		return -1;
	fd = atoi(e);
	unsetenv(ENV_FD);
	if (fd < 3 || fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	return fd;
}

struct recv_listener {
	struct ho_listener l;
	int fd;
	int used;
};

static int same_bind(const struct bind_addr *b, const struct ho_listener *l)
{
	return b->addrlen == l->addrlen && !memcmp(&b->addr, &l->addr, b->addrlen);
}

/* every worker's listening sockets: the old process's where the address stays */
static int take_listeners(struct daemon *d, struct recv_listener *rl, unsigned nrl,
			  unsigned old_workers)
{
	struct config *cf = d->cf;
	unsigned n = 0;

	for (unsigned i = 0; i < cf->nlisteners; i++)
		n += cf->listeners[i].nbinds;
	for (unsigned wi = 0; wi < d->nworkers; wi++) {
		struct worker *w = &d->workers[wi];

		w->ltags = calloc(n ? n : 1, sizeof(*w->ltags));
		if (!w->ltags)
			return -1;
		for (unsigned i = 0; i < cf->nlisteners; i++) {
			struct listener *l = &cf->listeners[i];

			for (unsigned b = 0; b < l->nbinds; b++) {
				int fd = -1, any = -1;

				for (unsigned k = 0; k < nrl; k++) {
					if (!same_bind(&l->binds[b], &rl[k].l))
						continue;
					if (!rl[k].used && rl[k].l.worker == wi % old_workers) {
						fd = rl[k].fd;
						rl[k].used = 1;
						break;
					}
					if (any < 0)
						any = (int)k;
				}
				if (fd < 0 && any >= 0) {
					/* more workers than before: share a socket */
					fd = rl[any].used ? dup(rl[any].fd) : rl[any].fd;
					rl[any].used = 1;
				}
				/* a taken socket gets this process's filter (same maps) */
				if (fd >= 0)
					(void)acl_attach(fd);
				if (fd < 0)
					fd = worker_listen_one(&l->binds[b]);
				if (fd < 0) {
					errno = -fd;
					log_warn("listener %s: cannot listen on %s", l->name,
						 l->binds[b].str);
					return -1;
				}
				w->ltags[w->nltags].kind = EP_LISTEN;
				w->ltags[w->nltags].fd = fd;
				w->ltags[w->nltags].l = l;
				w->ltags[w->nltags].bind = (uint16_t)b;
				w->nltags++;
			}
		}
	}
	return 0;
}

static void send_err(int fd, const char *why)
{
	char text[512];

	snprintf(text, sizeof(text), "new process: %s", why);
	ho_send(fd, HO_ERR, text, strlen(text) + 1, NULL, 0);
}

int upgrade_receive(struct daemon *d, int fd)
{
	struct recv_listener *rl = NULL;
	unsigned nrl = 0, old_workers = 1;
	uint32_t *slots = NULL, nslots_used = 0;
	int map_fds[SPLICE_NFDS], have_maps = 0, kernel = 0;
	uint32_t nslots = 0;
	struct timeval tv = {.tv_sec = 10};
	int32_t pid = (int32_t)getpid();
	int rc = -1;

	N.fd = fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (ho_send(fd, HO_HELLO, &pid, sizeof(pid), NULL, 0))
		return -1;
	for (;;) {
		struct ho_msg m;
		size_t len;
		int fds[MAX_FDS], nfds;

		if (ho_recv(fd, &m, &len, fds, &nfds, 0)) {
			log_warnx("upgrade: the old process went away during the hand-over");
			goto out;
		}
		if (m.h.type == HO_MAPS && len >= sizeof(m.b.maps)) {
			if (m.b.maps.have_maps && nfds == SPLICE_NFDS) {
				memcpy(map_fds, fds, sizeof(map_fds));
				have_maps = 1;
				kernel = m.b.maps.kernel_on;
				nslots = m.b.maps.nslots;
			} else {
				close_fds(fds, nfds);
			}
		} else if (m.h.type == HO_SLOTS && len >= sizeof(uint32_t)) {
			uint32_t k = m.b.slots.n;
			uint32_t *ns;

			if (k > SLOTS_PER_MSG || len < sizeof(uint32_t) * (k + 1))
				goto proto;
			ns = realloc(slots, (nslots_used + k + 1) * sizeof(*slots));
			if (!ns)
				goto out;
			slots = ns;
			memcpy(slots + nslots_used, m.b.slots.slot, k * sizeof(uint32_t));
			nslots_used += k;
		} else if (m.h.type == HO_LISTENER && len >= sizeof(m.b.lst) && nfds == 1) {
			struct recv_listener *nr = realloc(rl, (nrl + 1) * sizeof(*rl));

			if (!nr) {
				close(fds[0]);
				goto out;
			}
			rl = nr;
			rl[nrl].l = m.b.lst;
			rl[nrl].fd = fds[0];
			rl[nrl].used = 0;
			nrl++;
		} else if (m.h.type == HO_LISTENERS_END && len >= sizeof(uint32_t)) {
			memcpy(&old_workers, &m.b, sizeof(uint32_t));
			if (!old_workers)
				old_workers = 1;
			break;
		} else {
			close_fds(fds, nfds);
			goto proto;
		}
	}
	if (have_maps)
		splice_adopt(d->cf, map_fds, nslots, kernel && !d->opt->no_splice, slots,
			     nslots_used);
	else
		splice_init(d->cf, d->opt->no_splice);
	/* the previous process's access-list maps, run-time entries included */
	acl_init(d->cf, d->opt->no_splice || d->opt->no_kernel_acl, 1);
	if (take_listeners(d, rl, nrl, old_workers)) {
		send_err(fd, "cannot set up the listeners");
		goto out;
	}
	log_info("upgrade: took %u listening socket%s from the old process", nrl,
		 nrl == 1 ? "" : "s");
	rc = 0;
	goto out;
proto:
	log_warnx("upgrade: unexpected message from the old process");
	send_err(fd, "protocol error");
out:
	for (unsigned k = 0; k < nrl; k++)
		if (!rl[k].used)
			close(rl[k].fd); /* an address this configuration does not bind */
	free(rl);
	free(slots);
	return rc;
}

static void on_old_process(struct daemon *d, int fd, uint32_t events, void *arg)
{
	(void)events;
	(void)arg;
	for (;;) {
		struct ho_msg m;
		size_t len;
		int fds[MAX_FDS], nfds;
		int rc = ho_recv(fd, &m, &len, fds, &nfds, MSG_DONTWAIT);

		if (rc == -EAGAIN)
			return;
		if (rc) {
			/* the old process exited: whatever it still held is gone with it */
			daemon_unwatch(d, fd);
			close(fd);
			N.fd = -1;
			splice_release_reserved();
			log_info(
				"upgrade: complete: the old process is gone; %u connection%s adopted",
				N.adopted, N.adopted == 1 ? "" : "s");
			return;
		}
		if (m.h.type == HO_CONN && len == sizeof(struct conn_handover) && nfds >= 1) {
			struct handover_item *it = calloc(1, sizeof(*it));

			if (!it) {
				close_fds(fds, nfds);
				continue;
			}
			it->rec = m.b.conn;
			it->cfd = fds[0];
			it->ufd = nfds > 1 ? fds[1] : -1;
			close_fds(fds + 2, nfds > 2 ? nfds - 2 : 0);
			N.adopted++;
			worker_adopt_push(&d->workers[N.next_worker++ % d->nworkers], it);
		} else if (m.h.type == HO_DONE) {
			log_info("upgrade: the old process handed over %u connection%s, %u finish "
				 "there",
				 m.b.done.handed, m.b.done.handed == 1 ? "" : "s", m.b.done.left);
		} else {
			close_fds(fds, nfds);
			log_warnx("upgrade: unexpected message %u from the old process", m.h.type);
		}
	}
}

int upgrade_ready(struct daemon *d, int fd)
{
	int32_t pid = (int32_t)getpid();

	if (ho_send(fd, HO_READY, &pid, sizeof(pid), NULL, 0))
		return -1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return daemon_watch(d, fd, EPOLLIN, on_old_process, NULL);
}
