// SPDX-License-Identifier: MIT
/*
 * conn_handover.c - live upgrade: hand a connection to the next process at a hand-over point,
 * or take one over from the previous process (the record is struct conn_handover, conn.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "conf.h"
#include "conn-t.h"
#include "conn.h"
#include "conn_upstream.h"
#include "lb.h"
#include "log.h"
#include "splice.h"
#include "worker.h"

/* the phases a connection can be handed over in, once nothing is buffered */
int conn_hold_phase(const struct conn *c)
{
	if (c->client.ssl || c->upstream.ssl)
		return 0;
	if (c->st == CS_TUNNEL)
		return 1; /* in the kernel or not: the window state is in the shared slots */
	return c->st == CS_EXCHANGE && c->req.body_done && c->resp_started && !c->resp.body_done &&
	       !c->req.kernel_span && !c->resp.kernel_span;
}

int conn_handable(const struct conn *c)
{
	if (c->dead || c->client.ssl || c->upstream.ssl)
		return 0;
	if (buf_len(&c->req.in) || buf_len(&c->req.out) || buf_len(&c->resp.in) ||
	    buf_len(&c->resp.out) || c->req.in_pipe || c->resp.in_pipe)
		return 0;
	if (c->st == CS_HEAD)
		return !c->head_seen;
	return conn_hold_phase(c);
}

int conn_hold(struct conn *c, int on)
{
	if (!on) {
		if (c->hold) {
			c->hold = 0;
			conn_queue(c); /* edges consumed while holding: look again */
		}
		return 0;
	}
	c->hold = 1;
	return !c->client.ssl;
}

static void side_to_record(const struct side *s, struct conn_handover_side *o)
{
	o->slot = s->bpf.slot;
	o->in_map = (uint32_t)s->bpf.in_map;
	o->cookie = s->bpf.cookie;
	o->read = s->read;
	o->written = s->written;
	o->base = s->base;
	o->kern_base = s->kern_base;
	o->kern_in_closed = s->kern_in_closed;
	o->verified = s->verified;
	o->syn_adj = s->syn_adj;
	o->paired = s->paired;
}

static void side_from_record(struct side *s, const struct conn_handover_side *o)
{
	if (o->slot && splice_adopt_slot(&s->bpf, o->slot, o->cookie, (int)o->in_map))
		log_warnx("upgrade: slot %u of a handed-over socket cannot be adopted", o->slot);
	s->read = o->read;
	s->written = o->written;
	s->base = o->base;
	s->kern_base = o->kern_base;
	s->kern_in_closed = o->kern_in_closed;
	s->verified = o->verified;
	s->syn_adj = o->syn_adj;
	s->paired = (uint8_t)o->paired;
}

static void flow_to_record(const struct flow *f, struct conn_handover_flow *o)
{
	o->body = (uint32_t)f->body;
	o->body_done = f->body_done;
	o->src_eof = f->src_eof;
	o->dst_shut = f->dst_shut;
	o->left = f->left;
	o->moved = f->moved;
	o->kern_seen = f->kern_seen;
	o->kern_moved = f->kern_moved;
	o->kernel_span = f->kernel_span;
	o->chunk_out = f->chunk_out;
	o->ch = f->ch;
}

static void flow_from_record(struct flow *f, const struct conn_handover_flow *o)
{
	f->body = (enum body)o->body;
	f->body_done = o->body_done;
	f->src_eof = o->src_eof;
	f->dst_shut = o->dst_shut;
	f->left = o->left;
	f->moved = o->moved;
	f->kern_seen = o->kern_seen;
	f->kern_moved = o->kern_moved;
	f->kernel_span = o->kernel_span;
	f->chunk_out = o->chunk_out;
	f->ch = o->ch;
}

void conn_detach(struct conn *c, struct conn_handover *rec, int *cfd, int *ufd)
{
	struct worker *w = c->w;

	memset(rec, 0, sizeof(*rec));
	rec->magic = CONN_HANDOVER_MAGIC;
	rec->size = sizeof(*rec);
	/* an idle keep-alive upstream is not worth moving: the next request is balanced anew */
	if (c->st == CS_HEAD)
		conn_upstream_close(c);
	rec->st = (uint32_t)c->st;
	rec->has_upstream = c->ufd >= 0;
	snprintf(rec->listener, sizeof(rec->listener), "%s", c->l->name);
	if (c->pool)
		snprintf(rec->pool, sizeof(rec->pool), "%s", c->pool->name);
	if (c->srv)
		snprintf(rec->server, sizeof(rec->server), "%s", c->srv->name);
	side_to_record(&c->client, &rec->client);
	side_to_record(&c->upstream, &rec->upstream);
	flow_to_record(&c->req, &rec->req);
	flow_to_record(&c->resp, &rec->resp);
	rec->start_ns = c->start_ns;
	rec->t_start_ms = c->t_start;
	rec->tunnel_kern = c->tunnel_kern;
	rec->bytes_in = c->bytes_in;
	rec->bytes_out = c->bytes_out;
	rec->deadline_left_ms = c->deadline > w->now_ms ? c->deadline - w->now_ms : 0;
	rec->requests = c->requests;
	rec->peer_port = c->peer_port;
	rec->status = c->status;
	rec->method = (int32_t)c->method;
	rec->version_minor = c->version_minor;
	rec->kernel_ok = c->kernel_ok;
	rec->kernel_failed = c->kernel_failed;
	rec->req_keepalive = (uint8_t)c->req_keepalive;
	rec->resp_keepalive = (uint8_t)c->resp_keepalive;
	rec->upgrade = (uint8_t)c->upgrade;
	rec->resp_started = (uint8_t)c->resp_started;
	rec->head_seen = (uint8_t)c->head_seen;
	snprintf(rec->peer, sizeof(rec->peer), "%s", c->peer);
	snprintf(rec->host, sizeof(rec->host), "%s", c->host);
	snprintf(rec->path, sizeof(rec->path), "%s", c->path);
	snprintf(rec->method_s, sizeof(rec->method_s), "%s", c->method_s);

	/* the sockets and their kernel slots now belong to the next process */
	*cfd = c->cfd;
	*ufd = c->ufd;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->cfd, NULL);
	if (c->ufd >= 0) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
		worker_utag_drop(w, c->ut);
		c->ut = NULL;
	}
	c->cfd = c->ufd = -1;
	memset(&c->client.bpf, 0, sizeof(c->client.bpf));
	memset(&c->upstream.bpf, 0, sizeof(c->upstream.bpf));
	if (c->srv) {
		atomic_fetch_sub(&c->srv->conn_active, 1);
		lb_conn_release(&c->srv->pool->lb, (int)(c->srv - c->srv->pool->servers));
		c->srv = NULL;
	}
	/* still in g_nconns: the caller takes it out once rec is queued for sending */
	conn_unlink(c);
}

/* adopt_upstream - may free c: c's upstream is the handed-over socket ufd; 0, or -errno when
 * it cannot be registered (ufd is closed and c freed) */
static int adopt_upstream(struct conn *c, int ufd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};

	c->ut = worker_utag_new(ufd, c);
	if (!c->ut) {
		close(ufd);
		conn_free(c);
		return -ENOMEM;
	}
	c->ufd = ufd;
	ev.data.ptr = c->ut;
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, ufd, &ev) == -1) {
		free(c->ut);
		c->ut = NULL;
		close(ufd);
		c->ufd = -1;
		conn_free(c);
		return -errno;
	}
	if (c->srv) {
		atomic_fetch_add(&c->srv->conn_active, 1);
		lb_conn_acquire(&c->pool->lb, (int)(c->srv - c->pool->servers));
	}
	return 0;
}

int conn_adopt(struct worker *w, const struct conn_handover *rec, int cfd, int ufd)
{
	struct config *cf = w->cf;
	struct listener *l = NULL;
	struct conn *c;

	if (rec->magic != CONN_HANDOVER_MAGIC || rec->size != sizeof(*rec) ||
	    (rec->st != CS_HEAD && rec->st != CS_EXCHANGE && rec->st != CS_TUNNEL) ||
	    (rec->st != CS_HEAD && ufd < 0)) {
		close(cfd);
		if (ufd >= 0)
			close(ufd);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cf->nlisteners; i++)
		if (!strcmp(cf->listeners[i].name, rec->listener))
			l = &cf->listeners[i];
	atomic_fetch_add(&g_nconns, 1);
	c = conn_create(w, l ? l : &cf->listeners[0], cfd, NULL, 0, 1);
	if (!c) {
		if (ufd >= 0)
			close(ufd);
		return -ENOMEM;
	}
	/* an exchange or a tunnel relays through the buffers of an exchange (conn_mem.c) */
	if (rec->st != CS_HEAD && conn_mem_exchange(c)) {
		if (ufd >= 0)
			close(ufd);
		conn_free(c);
		return -ENOMEM;
	}
	side_from_record(&c->client, &rec->client);
	side_from_record(&c->upstream, &rec->upstream);
	flow_from_record(&c->req, &rec->req);
	flow_from_record(&c->resp, &rec->resp);
	c->start_ns = rec->start_ns;
	c->t_start = rec->t_start_ms;
	c->tunnel_kern = rec->tunnel_kern;
	c->bytes_in = rec->bytes_in;
	c->bytes_out = rec->bytes_out;
	c->requests = rec->requests;
	c->status = rec->status;
	c->method = (enum http_method)rec->method;
	c->version_minor = rec->version_minor;
	c->kernel_ok = rec->kernel_ok && splice_kernel_available();
	c->kernel_failed = rec->kernel_failed;
	/* a connection whose listener is gone finishes what it does, then closes */
	c->req_keepalive = l ? rec->req_keepalive : 0;
	c->resp_keepalive = rec->resp_keepalive;
	c->upgrade = rec->upgrade;
	c->resp_started = rec->resp_started;
	c->head_seen = rec->head_seen;
	/* a request in flight was routed by the old process: logged here when it ends */
	c->in_request = rec->st != CS_HEAD;
	snprintf(c->host, sizeof(c->host), "%s", rec->host);
	snprintf(c->path, sizeof(c->path), "%s", rec->path);
	snprintf(c->method_s, sizeof(c->method_s), "%s", rec->method_s);
	c->pool = conf_find_pool(cf, rec->pool);
	if (c->pool) {
		for (unsigned i = 0; i < c->pool->nservers; i++)
			if (!strcmp(c->pool->servers[i].name, rec->server))
				c->srv = &c->pool->servers[i];
	}
	if (ufd >= 0) {
		int rc = adopt_upstream(c, ufd);

		if (rc)
			return rc;
	}
	c->st = (enum conn_state)rec->st;
	conn_set_deadline(c, rec->deadline_left_ms ? (uint32_t)rec->deadline_left_ms : 1000);
	conn_queue(c);
	return 0;
}
