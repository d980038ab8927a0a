// SPDX-License-Identifier: MIT
/*
 * reload.c - configuration reload (SIGHUP, `splicectl reload`).
 *
 * Order: load and validate the whole file (every error reported) -> prepare it (TLS contexts:
 * certificates and keys are read and checked) -> check what a reload cannot change -> open the
 * new listening sockets on every worker, reusing each socket whose address stays (a reused
 * socket keeps its accept queue, so nothing queued is lost) -> reopen the access log -> restart
 * the health thread with the state of every server that stays -> post the new configuration to
 * every worker and wait until each runs on it. Any failure before the post leaves the running
 * configuration untouched.
 *
 * Connections keep the configuration they were accepted under (a reference) until their next
 * request boundary, where conn.c moves them to the new one (config_follow()); the old
 * configuration is freed when its last connection is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accesslog.h"
#include "acl.h"
#include "clock.h"
#include "conf.h"
#include "daemon.h"
#include "health.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

static struct server *find_server(struct pool *p, const char *name)
{
	for (unsigned i = 0; i < p->nservers; i++)
		if (!strcmp(p->servers[i].name, name))
			return &p->servers[i];
	return NULL;
}

/* a route's match counter goes on under the same name in the same listener */
static void carry_route_matches(struct listener *nl, const struct listener *ol)
{
	for (unsigned i = 0; i < nl->nroutes; i++)
		for (unsigned k = 0; k < ol->nroutes; k++)
			if (!strcmp(nl->routes[i].name, ol->routes[k].name))
				atomic_store(&nl->routes[i].matches,
					     atomic_load(&ol->routes[k].matches));
}

/* carry_over - run-time state of what stays (same names, same server address) */
static void carry_over(struct config *old, struct config *ncf)
{
	uint64_t now = clock_ms();

	/* listener and pool counters (stats.h): one struct copy each, by name. Requests that
	 * end on the old configuration after this copy are not counted in the new one. */
	for (unsigned i = 0; i < ncf->nlisteners; i++)
		for (unsigned k = 0; k < old->nlisteners; k++)
			if (!strcmp(ncf->listeners[i].name, old->listeners[k].name)) {
				ncf->listeners[i].st = old->listeners[k].st;
				carry_route_matches(&ncf->listeners[i], &old->listeners[k]);
			}
	for (unsigned i = 0; i < ncf->npools; i++) {
		struct pool *op = conf_find_pool(old, ncf->pools[i].name);

		if (op)
			ncf->pools[i].st = op->st;
	}

	for (unsigned i = 0; i < ncf->npools; i++) {
		struct pool *np = &ncf->pools[i];
		struct pool *op = conf_find_pool(old, np->name);

		if (!op)
			continue;
		for (unsigned k = 0; k < np->nservers; k++) {
			struct server *s = &np->servers[k];
			struct server *os = find_server(op, s->name);

			if (!os || os->addrlen != s->addrlen ||
			    memcmp(&os->addr, &s->addr, s->addrlen))
				continue;
			atomic_store(&s->requests, atomic_load(&os->requests));
			atomic_store(&s->conn_total, atomic_load(&os->conn_total));
			atomic_store(&s->conn_fail, atomic_load(&os->conn_fail));
			atomic_store(&s->bytes_up, atomic_load(&os->bytes_up));
			atomic_store(&s->bytes_down, atomic_load(&os->bytes_down));
			atomic_store(&s->kern_bytes_up, atomic_load(&os->kern_bytes_up));
			atomic_store(&s->kern_bytes_down, atomic_load(&os->kern_bytes_down));
			atomic_store(&s->failed_until_ms, atomic_load(&os->failed_until_ms));
			health_adopt(s, os, now);
		}
	}
}

/* unchangeable - settings a reload cannot apply; errors (return -1) or warnings */
static int unchangeable(const struct config *old, const struct config *ncf, FILE *errf)
{
	int bad = 0;

	if (strcmp(old->pin_path, ncf->pin_path)) {
		fprintf(errf,
			"%s: pin_path cannot change on reload (%s -> %s): restart or upgrade\n",
			ncf->file, old->pin_path, ncf->pin_path);
		bad = 1;
	}
	if (strcmp(old->user, ncf->user) || strcmp(old->group, ncf->group)) {
		fprintf(errf, "%s: user/group cannot change on reload: restart\n", ncf->file);
		bad = 1;
	}
	if (old->workers != ncf->workers)
		log_warnx("reload: 'workers' changes at the next restart or upgrade");
	return bad ? -1 : 0;
}

static int reload(struct daemon *d, FILE *errf)
{
	struct config *old = d->cf, *ncf;
	unsigned prepared = 0;
	int rc;

	if (d->upgrading || d->stopping) {
		fprintf(errf, "%s: not now: %s\n", d->opt->config_file,
			d->upgrading ? "a live upgrade is running" : "stopping");
		return -1;
	}
	ncf = conf_load(d->opt->config_file, errf);
	if (!ncf)
		return -1;
	if (tls_prepare(ncf, errf)) {
		conf_free(ncf);
		return -1;
	}
	if (d->opt->pid_file)
		snprintf(ncf->pid_file, sizeof(ncf->pid_file), "%s", d->opt->pid_file);
	conf_ref(ncf);
	if (unchangeable(old, ncf, errf))
		goto fail;
	for (; prepared < d->nworkers; prepared++) {
		rc = worker_swap_prepare(&d->workers[prepared], ncf, errf);
		if (rc)
			goto fail;
	}
	if (accesslog_reopen(ncf, errf))
		goto fail;
	health_stop();
	carry_over(old, ncf);
	rc = health_start(ncf);
	if (rc) {
		fprintf(errf, "cannot start the health checks: %s\n", strerror(-rc));
		if (health_start(old))
			log_warnx("reload: health checks of the running configuration could "
				  "not restart either");
		goto fail;
	}
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_swap_post(&d->workers[i], ncf);
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_swap_wait(&d->workers[i]);
	d->cf = ncf;
	d->generation++;
	/* the listeners' entries of the kernel lists follow the file; run-time ones stay */
	(void)acl_sync(ncf);
	/* a socket that cannot move stays where it is (logged): the reload itself is done */
	for (const struct daemon_service *const *sv = daemon_services; *sv; sv++)
		(*sv)->reconfigure(d, old, ncf, NULL);
	conf_unref(old);
	return 0;
fail:
	while (prepared)
		worker_swap_abort(&d->workers[--prepared]);
	conf_unref(ncf);
	return -1;
}

int daemon_reload(struct daemon *d, FILE *errf)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int rc;

	if (!mem) {
		log_warn("reload: cannot collect errors");
		return -1;
	}
	rc = reload(d, mem);
	fclose(mem);
	if (rc) {
		d->reload_failures++;
		/* every error goes to the log and to the caller; the old configuration runs on */
		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
			log_warnx("reload: %s", line);
			if (errf)
				fprintf(errf, "%s\n", line);
		}
		log_warnx("reload of %s failed: still running generation %u", d->opt->config_file,
			  d->generation);
	} else {
		d->reloads++;
		log_info("configuration %s reloaded: generation %u, %u listener%s, %u pool%s",
			 d->opt->config_file, d->generation, d->cf->nlisteners,
			 d->cf->nlisteners == 1 ? "" : "s", d->cf->npools,
			 d->cf->npools == 1 ? "" : "s");
	}
	free(text);
	return rc;
}
