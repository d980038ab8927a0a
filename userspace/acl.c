// SPDX-License-Identifier: MIT
/*
 * acl.c - listener access lists (see acl.h): the socket filter of bpf/acl.bpf.c loaded, probed
 * and attached to every listening socket, its LPM tries written from the configuration and by
 * `splicectl acl`; without it, the same decision in userspace right after accept.
 *
 * The maps are the truth while the kernel enforces the lists: `show acl` reads them, so an
 * entry an operator wrote with bpftool is seen by the daemon as it is by the filter. Without
 * the filter the run-time entries live in a small table here (read by every worker under a
 * read lock, written by the control socket).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "accesslog.h"
#include "acl.h"
#include "acl_abi.h"
#include "acl.skel.h"
#include "log.h"
#include "stats.h"

_Static_assert(sizeof(struct spliced_acl_key) == 24, "ABI: acl key");
_Static_assert(sizeof(struct spliced_acl_val) == 16, "ABI: acl value");
_Static_assert(sizeof(struct spliced_acl_stats) == 16, "ABI: acl stats");

static struct acl_bpf *skel;
static char pin_dir[PATH_MAX];
static int kernel_on;
static int fd_deny = -1, fd_allow = -1, fd_stats = -1, prog_fd = -1;

static const char *const pinned[] = {"spliced_deny", "spliced_allow", "spliced_acl_stats"};

/* run-time entries while the kernel does not enforce the lists */
struct rt_entry {
	struct rule_cidr cidr;
	uint8_t deny;
	uint64_t hits; /* __atomic adds under the read lock */
};

static pthread_rwlock_t rt_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct rt_entry *rt;
static unsigned nrt;
static _Atomic unsigned rt_count; /* nrt, read without the lock by the fast path */

int acl_kernel_on(void)
{
	return kernel_on;
}

static struct bpf_map *map_of(unsigned i)
{
	struct bpf_map *maps[] = {skel->maps.spliced_deny, skel->maps.spliced_allow,
				  skel->maps.spliced_acl_stats};

	return maps[i];
}

/* a live upgrade: the previous process's maps, run-time entries included; 0 or -errno */
static int reuse_pins(void)
{
	for (unsigned i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
		char path[PATH_MAX + 64];
		int fd, err;

		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned[i]);
		fd = bpf_obj_get(path);
		if (fd == -1)
			return -errno;
		err = bpf_map__reuse_fd(map_of(i), fd);
		close(fd);
		if (err)
			return err;
	}
	return 0;
}

static int pin_maps(int adopted)
{
	for (unsigned i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
		char path[PATH_MAX + 64];
		int err;

		if (adopted)
			continue; /* reused maps are pinned already */
		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned[i]);
		/* a stale pin from an earlier run (crash) would make pinning fail */
		unlink(path);
		err = bpf_map__pin(map_of(i), path);
		if (err)
			return err;
	}
	return 0;
}

/* can a listening socket take the filter? (a kernel or a policy may refuse SO_ATTACH_BPF) */
static int probe_attach(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &prog_fd, sizeof(prog_fd)) == -1)
		err = -errno;
	close(fd);
	return err;
}

static void unload(void)
{
	acl_bpf__destroy(skel);
	skel = NULL;
	fd_deny = fd_allow = fd_stats = prog_fd = -1;
}

int acl_init(struct config *cf, int disabled, int adopt)
{
	int adopted = 0, err;

	if (disabled) {
		log_info("acl: listener access lists enforced after accept (kernel filter off)");
		return 0;
	}
	snprintf(pin_dir, sizeof(pin_dir), "%s", cf->pin_path);
	if (mkdir(pin_dir, 0700) == -1 && errno != EEXIST) {
		log_warn("acl: cannot create %s; access lists enforced after accept", pin_dir);
		return 0;
	}
	skel = acl_bpf__open();
	if (!skel) {
		log_warnx("acl: cannot open the BPF object (%s); access lists enforced after "
			  "accept",
			  strerror(errno));
		return 0;
	}
	if (adopt) {
		err = reuse_pins();
		if (err)
			log_warnx("acl: the previous process's maps are not usable (%s); run-time "
				  "entries start empty",
				  strerror(-err));
		adopted = !err;
	}
	err = acl_bpf__load(skel);
	if (err) {
		log_warnx("acl: cannot load the listener filter (%s); access lists enforced after "
			  "accept",
			  strerror(-err));
		goto err_destroy;
	}
	err = pin_maps(adopted);
	if (err) {
		log_warnx("acl: cannot pin maps under %s (%s); access lists enforced after accept",
			  pin_dir, strerror(-err));
		goto err_destroy;
	}
	fd_deny = bpf_map__fd(skel->maps.spliced_deny);
	fd_allow = bpf_map__fd(skel->maps.spliced_allow);
	fd_stats = bpf_map__fd(skel->maps.spliced_acl_stats);
	prog_fd = bpf_program__fd(skel->progs.spliced_acl_filter);
	err = probe_attach();
	if (err) {
		log_warnx("acl: listening sockets refuse the filter (%s); access lists enforced "
			  "after accept",
			  strerror(-err));
		goto err_unpin;
	}
	kernel_on = 1;
	err = acl_sync(cf);
	if (err) {
		kernel_on = 0;
		goto err_unpin;
	}
	log_info("acl: listener access lists enforced in the kernel (maps under %s)", pin_dir);
	return 1;

err_unpin:
	for (unsigned i = 0; i < sizeof(pinned) / sizeof(pinned[0]) && !adopted; i++) {
		char path[PATH_MAX + 64];

		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned[i]);
		unlink(path);
	}
err_destroy:
	unload();
	return 0;
}

int acl_attach(int fd)
{
	if (!kernel_on)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &prog_fd, sizeof(prog_fd)) == -1) {
		int err = -errno;

		log_warn("acl: cannot attach the filter to a listening socket");
		return err;
	}
	return 0;
}

/* ---- keys ---- */

static uint16_t bind_port(const struct bind_addr *b)
{
	if (b->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&b->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&b->addr)->sin_port);
}

static void make_key(struct spliced_acl_key *k, uint16_t port, const struct rule_cidr *c)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = SPLICED_ACL_PORT_BITS + c->bits;
	k->port[0] = (uint8_t)(port >> 8);
	k->port[1] = (uint8_t)port;
	memcpy(k->addr, c->addr, sizeof(k->addr));
}

static uint16_t key_port(const struct spliced_acl_key *k)
{
	return (uint16_t)(k->port[0] << 8 | k->port[1]);
}

static void key_cidr(const struct spliced_acl_key *k, struct rule_cidr *c)
{
	unsigned bits =
		k->prefixlen > SPLICED_ACL_PORT_BITS ? k->prefixlen - SPLICED_ACL_PORT_BITS : 0;

	memcpy(c->addr, k->addr, sizeof(c->addr));
	c->bits = (uint8_t)(bits > 128 ? 128 : bits);
}

/* does a listener of cf with a bind on port list cidr c as deny (or allow)? */
static int wanted(const struct config *cf, uint16_t port, const struct rule_cidr *c, int deny)
{
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		const struct listener *l = &cf->listeners[i];
		unsigned b;

		for (b = 0; b < l->nbinds; b++)
			if (bind_port(&l->binds[b]) == port)
				break;
		if (b == l->nbinds)
			continue;
		for (unsigned e = 0; e < l->act.acl.n; e++) {
			const struct rule_acl_entry *x = &l->act.acl.e[e];

			if (x->deny == deny && x->cidr.bits == c->bits &&
			    !memcmp(x->cidr.addr, c->addr, 16))
				return 1;
		}
	}
	return 0;
}

/* write one file entry, keeping its hits when it is there already */
static int put_file_entry(const struct spliced_acl_key *k, int deny)
{
	struct spliced_acl_val v = {.prefixlen = k->prefixlen, .origin = SPLICED_ACL_FILE};
	struct spliced_acl_val old;
	int fd = deny ? fd_deny : fd_allow;

	if (bpf_map_lookup_elem(fd, k, &old) == 0 && old.origin == SPLICED_ACL_FILE)
		v.hits = old.hits;
	if (bpf_map_update_elem(fd, k, &v, BPF_ANY))
		return -errno;
	return 0;
}

/* delete the listeners' entries of map fd that cf does not want */
static int drop_stale(const struct config *cf, int fd, int deny)
{
	struct spliced_acl_key *stale = NULL, k, next;
	unsigned n = 0, cap = 0;
	void *prev = NULL;
	int err = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct rule_cidr c;

		k = next;
		prev = &k;
		key_cidr(&k, &c);
		if (!key_port(&k) || wanted(cf, key_port(&k), &c, deny))
			continue;
		if (n == cap) {
			struct spliced_acl_key *ns;

			cap = cap ? 2 * cap : 64;
			ns = realloc(stale, cap * sizeof(*ns));
			if (!ns) {
				free(stale);
				return -ENOMEM;
			}
			stale = ns;
		}
		stale[n++] = k;
	}
	/* deleting while walking an LPM trie may skip keys: collected first */
	for (unsigned i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT)
			err = -errno;
	free(stale);
	return err;
}

int acl_sync(struct config *cf)
{
	int err = 0;

	if (!kernel_on)
		return 0;
	for (unsigned i = 0; i < cf->nlisteners; i++) {
		const struct listener *l = &cf->listeners[i];

		for (unsigned b = 0; b < l->nbinds; b++) {
			uint16_t port = bind_port(&l->binds[b]);
			unsigned o;

			/* [::]:80 and 0.0.0.0:80 of one listener share the port's entries */
			for (o = 0; o < b; o++)
				if (bind_port(&l->binds[o]) == port)
					break;
			for (unsigned e = 0; o == b && e < l->act.acl.n && !err; e++) {
				const struct rule_acl_entry *x = &l->act.acl.e[e];
				struct spliced_acl_key k;

				make_key(&k, port, &x->cidr);
				err = put_file_entry(&k, x->deny);
			}
		}
	}
	if (!err)
		err = drop_stale(cf, fd_deny, 1);
	if (!err)
		err = drop_stale(cf, fd_allow, 0);
	if (err) {
		errno = -err;
		log_warn("acl: cannot write the listeners' access lists into the maps");
	}
	return err;
}

/* ---- after accept ---- */

/* the run-time scope in userspace: the longest matching prefix decides, a deny wins a tie
 * (as the filter decides) */
static enum rule_acl_verdict runtime_decide(const uint8_t *addr)
{
	enum rule_acl_verdict v = RULE_ACL_NONE;
	int best = -1;

	pthread_rwlock_rdlock(&rt_lock);
	for (unsigned i = 0; i < nrt; i++) {
		if (!rule_cidr_match(&rt[i].cidr, addr))
			continue;
		if (best < 0 || rt[i].cidr.bits > rt[best].cidr.bits ||
		    (rt[i].cidr.bits == rt[best].cidr.bits && rt[i].deny))
			best = (int)i;
	}
	if (best >= 0) {
		__atomic_fetch_add(&rt[best].hits, 1, __ATOMIC_RELAXED);
		v = rt[best].deny ? RULE_ACL_DENY : RULE_ACL_ALLOW;
	}
	pthread_rwlock_unlock(&rt_lock);
	return v;
}

int acl_refused(const struct listener *l, const struct sockaddr_storage *peer)
{
	enum rule_acl_verdict v = RULE_ACL_NONE;
	uint8_t addr[16];
	unsigned idx;

	if (kernel_on || (!l->act.acl.n && !atomic_load_explicit(&rt_count, memory_order_relaxed)))
		return 0;
	if (rule_addr_of(peer, addr))
		return 0;
	if (atomic_load_explicit(&rt_count, memory_order_relaxed))
		v = runtime_decide(addr);
	if (v == RULE_ACL_NONE) {
		v = rule_acl_decide(&l->act.acl, addr, &idx);
		if (v != RULE_ACL_NONE)
			__atomic_fetch_add(&((struct listener *)l)->act.acl.e[idx].hits, 1,
					   __ATOMIC_RELAXED);
	}
	if (v != RULE_ACL_DENY)
		return 0;
	stats_error(STATS_ERR_ACL_DENIED);
	accesslog_refused(l, peer, "acl_deny");
	return 1;
}

/* ---- run time ---- */

static int runtime_kernel(enum acl_op op, const struct rule_cidr *c, char *err, size_t errlen)
{
	struct spliced_acl_key k;
	struct spliced_acl_val v;
	int fd = op == ACL_OP_DENY ? fd_deny : fd_allow, other = fd == fd_deny ? fd_allow : fd_deny;

	make_key(&k, 0, c);
	if (op == ACL_OP_DEL) {
		int gone = bpf_map_delete_elem(fd_deny, &k) == 0;

		gone |= bpf_map_delete_elem(fd_allow, &k) == 0;
		if (!gone) {
			snprintf(err, errlen, "no run-time entry for this address");
			return -ENOENT;
		}
		return 0;
	}
	memset(&v, 0, sizeof(v));
	if (bpf_map_lookup_elem(fd, &k, &v) == -1)
		memset(&v, 0, sizeof(v));
	v.prefixlen = k.prefixlen;
	v.origin = SPLICED_ACL_RUNTIME;
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY)) {
		int e = -errno;

		snprintf(err, errlen, "cannot write the map: %s", strerror(-e));
		return e;
	}
	(void)bpf_map_delete_elem(other, &k);
	return 0;
}

static int runtime_user(enum acl_op op, const struct rule_cidr *c, char *err, size_t errlen)
{
	int rc = 0;
	unsigned i;

	pthread_rwlock_wrlock(&rt_lock);
	for (i = 0; i < nrt; i++)
		if (rt[i].cidr.bits == c->bits && !memcmp(rt[i].cidr.addr, c->addr, 16))
			break;
	if (op == ACL_OP_DEL) {
		if (i == nrt) {
			snprintf(err, errlen, "no run-time entry for this address");
			rc = -ENOENT;
		} else {
			rt[i] = rt[--nrt];
		}
	} else if (i < nrt) {
		rt[i].deny = op == ACL_OP_DENY;
	} else if (nrt >= SPLICED_ACL_MAX_ENTRIES) {
		snprintf(err, errlen, "%d run-time entries already", SPLICED_ACL_MAX_ENTRIES);
		rc = -ENOSPC;
	} else {
		struct rt_entry *n = realloc(rt, sizeof(*n) * (nrt + 1));

		if (!n) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
		} else {
			rt = n;
			memset(&rt[nrt], 0, sizeof(rt[nrt]));
			rt[nrt].cidr = *c;
			rt[nrt].deny = op == ACL_OP_DENY;
			nrt++;
		}
	}
	atomic_store(&rt_count, nrt);
	pthread_rwlock_unlock(&rt_lock);
	return rc;
}

int acl_runtime(enum acl_op op, const char *cidr, char *err, size_t errlen)
{
	struct rule_cidr c;

	if (!strcmp(cidr, "all")) {
		memset(&c, 0, sizeof(c));
	} else if (rule_cidr_parse(cidr, &c)) {
		snprintf(err, errlen, "invalid address '%.64s' (ADDRESS or ADDRESS/BITS, or all)",
			 cidr);
		return -EINVAL;
	}
	return kernel_on ? runtime_kernel(op, &c, err, errlen) : runtime_user(op, &c, err, errlen);
}

/* ---- show acl ---- */

struct show_row {
	uint16_t port;
	uint8_t deny;
	uint32_t origin;
	uint64_t hits;
	struct rule_cidr cidr;
};

static const char *origin_name(uint32_t o)
{
	return o == SPLICED_ACL_FILE ? "file" : o == SPLICED_ACL_RUNTIME ? "runtime" : "external";
}

/* the listeners of cf with a bind on port, comma-separated */
static void port_scope(const struct config *cf, uint16_t port, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < cf->nlisteners; i++)
		for (unsigned b = 0; b < cf->listeners[i].nbinds; b++)
			if (bind_port(&cf->listeners[i].binds[b]) == port) {
				n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "",
						      cf->listeners[i].name);
				if (n >= cap)
					return;
				break;
			}
	if (!n)
		snprintf(out, cap, ":%u", port);
}

static void show_one(const struct config *cf, const struct show_row *r, int json, int first,
		     struct obuf *o)
{
	char cidr[INET6_ADDRSTRLEN + 8], scope[256];

	rule_cidr_format(&r->cidr, cidr, sizeof(cidr));
	if (r->port)
		port_scope(cf, r->port, scope, sizeof(scope));
	else
		snprintf(scope, sizeof(scope), "*");
	if (json) {
		ob_printf(o, "%s{\"scope\":", first ? "" : ",");
		ob_json_str(o, scope);
		ob_printf(o,
			  ",\"port\":%u,\"action\":\"%s\",\"cidr\":\"%s\",\"origin\":\"%s\","
			  "\"hits\":%llu}",
			  r->port, r->deny ? "deny" : "allow", cidr, origin_name(r->origin),
			  (unsigned long long)r->hits);
	} else {
		ob_printf(o, "%-16s %-6s %-43s %-8s %llu\n", scope, r->deny ? "deny" : "allow",
			  cidr, origin_name(r->origin), (unsigned long long)r->hits);
	}
}

/* the entries of one map, run-time scope (want_rt) or the listeners' */
static int show_map(const struct config *cf, int fd, int deny, int want_rt, int json, int *first,
		    struct obuf *o)
{
	struct spliced_acl_key k, next;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct spliced_acl_val v;
		struct show_row r;

		k = next;
		prev = &k;
		if ((key_port(&k) == 0) != want_rt || bpf_map_lookup_elem(fd, &k, &v))
			continue;
		memset(&r, 0, sizeof(r));
		r.port = key_port(&k);
		r.deny = (uint8_t)deny;
		r.origin = v.origin;
		r.hits = v.hits;
		key_cidr(&k, &r.cidr);
		show_one(cf, &r, json, *first, o);
		*first = 0;
	}
	return 0;
}

int acl_show(const struct config *cf, int json, struct obuf *o)
{
	int first = 1;

	if (json)
		ob_printf(o, "{\"enforced\":\"%s\",\"entries\":[", kernel_on ? "kernel" : "accept");
	else
		ob_printf(o, "# enforced %s\n%-16s %-6s %-43s %-8s %s\n",
			  kernel_on ? "in the kernel" : "after accept", "scope", "action", "cidr",
			  "origin", "hits");
	if (kernel_on) {
		for (int want_rt = 1; want_rt >= 0; want_rt--) {
			show_map(cf, fd_deny, 1, want_rt, json, &first, o);
			show_map(cf, fd_allow, 0, want_rt, json, &first, o);
		}
	} else {
		pthread_rwlock_rdlock(&rt_lock);
		for (unsigned i = 0; i < nrt; i++) {
			struct show_row r = {.deny = rt[i].deny,
					     .origin = SPLICED_ACL_RUNTIME,
					     .hits = __atomic_load_n(&rt[i].hits, __ATOMIC_RELAXED),
					     .cidr = rt[i].cidr};

			show_one(cf, &r, json, first, o);
			first = 0;
		}
		pthread_rwlock_unlock(&rt_lock);
		for (unsigned i = 0; i < cf->nlisteners; i++) {
			const struct listener *l = &cf->listeners[i];

			for (unsigned e = 0; e < l->act.acl.n; e++) {
				struct show_row r = {.port = l->nbinds ? bind_port(&l->binds[0])
								       : 0,
						     .deny = l->act.acl.e[e].deny,
						     .origin = SPLICED_ACL_FILE,
						     .hits = __atomic_load_n(&l->act.acl.e[e].hits,
									     __ATOMIC_RELAXED),
						     .cidr = l->act.acl.e[e].cidr};

				show_one(cf, &r, json, first, o);
				first = 0;
			}
		}
	}
	if (json)
		ob_printf(o, "]}\n");
	return 0;
}

int acl_kernel_counters(uint64_t *seen, uint64_t *dropped)
{
	int ncpu = libbpf_num_possible_cpus();
	struct spliced_acl_stats *per;
	uint32_t key = 0;

	*seen = *dropped = 0;
	if (!kernel_on || ncpu <= 0)
		return -ENOENT;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd_stats, &key, per)) {
		free(per);
		return -errno;
	}
	for (int i = 0; i < ncpu; i++) {
		*seen += per[i].syn_seen;
		*dropped += per[i].syn_dropped;
	}
	free(per);
	return 0;
}

void acl_fini(int keep_pins)
{
	for (unsigned i = 0; i < sizeof(pinned) / sizeof(pinned[0]) && skel && !keep_pins; i++) {
		char path[PATH_MAX + 64];

		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned[i]);
		unlink(path);
	}
	if (skel)
		unload();
	kernel_on = 0;
	pthread_rwlock_wrlock(&rt_lock);
	free(rt);
	rt = NULL;
	nrt = 0;
	atomic_store(&rt_count, 0);
	pthread_rwlock_unlock(&rt_lock);
}
