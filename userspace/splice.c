// SPDX-License-Identifier: MIT
/*
 * splice.c - the BPF side: skeleton lifecycle, pinned maps, the kernel data path's socket
 * insertion, window publication and drain checks, and stats export.
 *
 * The per-socket window state lives in an mmap-ed BPF array (spliced_socks): the verdict writes
 * its counters there, the daemon its window with plain 64-bit stores, no syscall per update.
 */
#include <errno.h>
#include <linux/magic.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "splice.h"
#include "splice_abi.h"
#include "splice.skel.h"

_Static_assert(sizeof(struct spliced_kern_counters) == 40, "ABI: kern counters");
_Static_assert(sizeof(struct spliced_server_stats) == 192, "ABI: server stats");
_Static_assert(sizeof(struct spliced_sock) == 128, "ABI: sock state");
_Static_assert(sizeof(struct spliced_conn) == 208, "ABI: conn table");

static struct splice_bpf *skel;
static char pin_dir[PATH_MAX];
static int kernel_on;		   /* verdict attached: the kernel path may be used */
static struct spliced_sock *socks; /* mmap of spliced_socks */
static uint32_t nslots;
static uint32_t *free_slots;
static uint32_t nfree;
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static int fd_targets, fd_active, fd_slot_of, fd_conns;
static int fd_kern = -1, fd_servers = -1, fd_socks = -1;
static int maps_on;	   /* maps exist (loaded here or adopted from the previous process) */
static int adopted;	   /* maps came from the previous process over the upgrade socket */
static _Atomic int frozen; /* live upgrade in progress: no new insertions */
static uint8_t *reserved;  /* adopted: slots the previous process still uses */

static const char *const pinned[] = {"spliced_kern", "spliced_servers", "spliced_conns",
				     "spliced_socks"};

static int ensure_bpffs(const char *dir)
{
	struct statfs st;

	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC)
		goto mkdirs;
	if (mkdir("/sys/fs/bpf", 0700) == -1 && errno != EEXIST)
		return -errno;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") == -1)
		return -errno;
mkdirs:
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

static int pin_map(struct bpf_map *map)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(map));
	/* a stale pin from an earlier run (crash) would make pinning fail */
	unlink(path);
	return bpf_map__pin(map, path);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return log_libbpf((int)level, fmt, ap);
}

/* attach the verdict and map the socket state; 0 or -errno (the kernel path stays off) */
static int kernel_setup(void)
{
	int err;

	fd_targets = bpf_map__fd(skel->maps.spliced_targets);
	fd_active = bpf_map__fd(skel->maps.spliced_active);
	fd_slot_of = bpf_map__fd(skel->maps.spliced_slot_of);
	socks = mmap(NULL, (size_t)nslots * sizeof(*socks), PROT_READ | PROT_WRITE, MAP_SHARED,
		     bpf_map__fd(skel->maps.spliced_socks), 0);
	if (socks == MAP_FAILED) {
		socks = NULL;
		return -errno;
	}
	free_slots = calloc(nslots, sizeof(*free_slots));
	if (!free_slots)
		return -ENOMEM;
	/* slot 0 stays unused so a zero peer_slot never names a live socket */
	for (uint32_t i = nslots - 1; i >= 1; i--)
		free_slots[nfree++] = i;
	/* libbpf 1.1 has no bpf_program__attach_sockmap */
	if (bpf_prog_attach(bpf_program__fd(skel->progs.spliced_verdict), fd_active,
			    BPF_SK_SKB_STREAM_VERDICT, 0)) {
		err = -errno;
		return err;
	}
	return 0;
}

int splice_init(struct config *cf, int disabled)
{
	uint32_t socks_max;
	int err;

	libbpf_set_print(libbpf_print);
	snprintf(pin_dir, sizeof(pin_dir), "%s", cf->pin_path);
	err = ensure_bpffs(pin_dir);
	if (err) {
		log_warnx("bpf: cannot prepare %s (%s); maps not pinned, kernel data path off",
			  pin_dir, strerror(-err));
		return 0;
	}
	skel = splice_bpf__open();
	if (!skel) {
		log_warnx("bpf: cannot open the BPF object (%s); kernel data path off",
			  strerror(errno));
		return 0;
	}
	/* two sockets per connection, plus the unused slot 0 */
	socks_max = cf->max_connections * 2 + 1;
	if (socks_max > (1u << 20))
		socks_max = 1u << 20;
	nslots = socks_max;
	bpf_map__set_max_entries(skel->maps.spliced_servers, cf->nservers ? cf->nservers : 1);
	bpf_map__set_max_entries(skel->maps.spliced_socks, socks_max);
	bpf_map__set_max_entries(skel->maps.spliced_slot_of, socks_max);
	bpf_map__set_max_entries(skel->maps.spliced_targets, socks_max);
	bpf_map__set_max_entries(skel->maps.spliced_active, socks_max);
	bpf_map__set_max_entries(skel->maps.spliced_conns, socks_max);
	if (disabled)
		bpf_program__set_autoload(skel->progs.spliced_verdict, false);
	err = splice_bpf__load(skel);
	if (err) {
		log_warnx("bpf: cannot load the BPF object (%s); kernel data path off",
			  strerror(-err));
		goto err_destroy;
	}
	if ((err = pin_map(skel->maps.spliced_kern)) ||
	    (err = pin_map(skel->maps.spliced_servers)) ||
	    (err = pin_map(skel->maps.spliced_conns)) ||
	    (err = pin_map(skel->maps.spliced_socks))) {
		log_warnx("bpf: cannot pin maps under %s (%s)", pin_dir, strerror(-err));
		goto err_destroy;
	}
	fd_conns = bpf_map__fd(skel->maps.spliced_conns);
	fd_kern = bpf_map__fd(skel->maps.spliced_kern);
	fd_servers = bpf_map__fd(skel->maps.spliced_servers);
	fd_socks = bpf_map__fd(skel->maps.spliced_socks);
	fd_targets = bpf_map__fd(skel->maps.spliced_targets);
	fd_active = bpf_map__fd(skel->maps.spliced_active);
	fd_slot_of = bpf_map__fd(skel->maps.spliced_slot_of);
	maps_on = 1;
	splice_publish_stats(cf);
	if (disabled) {
		log_info("bpf: maps pinned under %s; kernel data path disabled (--no-splice)",
			 pin_dir);
		return 0;
	}
	err = kernel_setup();
	if (err) {
		log_warnx("bpf: sockhash verdict unavailable (%s); kernel data path off",
			  strerror(-err));
		return 0;
	}
	kernel_on = 1;
	log_info("bpf: maps pinned under %s; kernel data path on", pin_dir);
	return 1;

err_destroy:
	splice_bpf__destroy(skel);
	skel = NULL;
	return 0;
}

/* a libbpf probe's answer (1 yes, 0 no, -errno could not tell) as words */
static void probe_words(int rc, char *buf, size_t len)
{
	if (rc > 0)
		snprintf(buf, len, "yes");
	else if (rc == 0)
		snprintf(buf, len, "no");
	else
		snprintf(buf, len, "unknown (%s)", strerror(-rc));
}

void splice_probe_features(char *sockhash, size_t slen, char *btf, size_t blen)
{
	struct btf *vmlinux;
	int map, prog;

	/* libbpf's own messages about the probes are not for a -V report */
	libbpf_set_print(NULL);
	map = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL);
	prog = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_SKB, NULL);
	if (map > 0 && prog <= 0)
		map = prog; /* a sockhash without sk_skb programs is of no use here */
	probe_words(map, sockhash, slen);
	vmlinux = btf__load_vmlinux_btf();
	if (vmlinux) {
		snprintf(btf, blen, "yes (%u types)", btf__type_cnt(vmlinux));
		btf__free(vmlinux);
	} else {
		snprintf(btf, blen, "no (%s)", strerror(errno));
	}
}

const char *splice_library(void)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "libbpf %u.%u", libbpf_major_version(), libbpf_minor_version());
	return buf;
}

int splice_probe_access(void)
{
	struct spliced_conn info;
	uint64_t key = 0;

	if (!maps_on)
		return 0;
	if (bpf_map_lookup_elem(fd_conns, &key, &info) == -1 && errno == EPERM)
		return -EPERM;
	return 0;
}

int splice_kernel_available(void)
{
	return kernel_on;
}

static int slot_get(uint32_t *slot)
{
	int rc = -ENOSPC;

	pthread_mutex_lock(&slot_lock);
	if (nfree) {
		*slot = free_slots[--nfree];
		rc = 0;
	}
	pthread_mutex_unlock(&slot_lock);
	return rc;
}

static void slot_put(uint32_t slot)
{
	pthread_mutex_lock(&slot_lock);
	free_slots[nfree++] = slot;
	pthread_mutex_unlock(&slot_lock);
}

static int sock_cookie(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) == -1)
		return -errno;
	return 0;
}

int splice_insert(struct ksock *a, int afd, struct ksock *b, int bfd, uint64_t cap)
{
	/* sockhash values are 64-bit fds here: never pass an int's address */
	uint64_t afd64 = (uint64_t)afd, bfd64 = (uint64_t)bfd;
	int a_new = !a->slot;
	int one = 1;
	int err;

	if (!kernel_on || atomic_load(&frozen))
		return -EOPNOTSUPP;
	if (a_new) {
		memset(a, 0, sizeof(*a));
		if ((err = sock_cookie(afd, &a->cookie)))
			return err;
		if (slot_get(&a->slot))
			return -ENOSPC;
		a->st = &socks[a->slot];
		memset((void *)a->st, 0, sizeof(*a->st));
	}
	memset(b, 0, sizeof(*b));
	if ((err = sock_cookie(bfd, &b->cookie)))
		goto err_a;
	if (slot_get(&b->slot)) {
		err = -ENOSPC;
		goto err_a;
	}
	b->st = &socks[b->slot];
	memset((void *)b->st, 0, sizeof(*b->st));
	b->st->peer_slot = a->slot;
	b->st->cap = cap;
	a->st->cap = cap;
	if ((a_new && bpf_map_update_elem(fd_slot_of, &a->cookie, &a->slot, BPF_ANY)) ||
	    bpf_map_update_elem(fd_slot_of, &b->cookie, &b->slot, BPF_ANY)) {
		err = -errno;
		goto err_slots;
	}
	/* redirect targets first: a redirect to a peer not yet in the map is dropped silently
	 * (docs/KERNEL_PATH.md#sockmap-facts-the-design-rests-on) */
	if (bpf_map_update_elem(fd_targets, &a->cookie, &bfd64, BPF_ANY) ||
	    bpf_map_update_elem(fd_targets, &b->cookie, &afd64, BPF_ANY)) {
		err = -errno;
		goto err_targets;
	}
	a->st->peer_slot = b->slot;
	if (a_new) {
		if (bpf_map_update_elem(fd_active, &a->cookie, &afd64, BPF_ANY)) {
			/* EOPNOTSUPP: FIN already received, no insertion after FIN */
			err = -errno;
			goto err_targets;
		}
		a->in_map = 1;
	}
	if (bpf_map_update_elem(fd_active, &b->cookie, &bfd64, BPF_ANY)) {
		/* a is live in the verdict map and must stay there (a socket leaves the maps only
		 * by closing: removing a live one loses data); its window stays closed, so every
		 * byte is passed up and the connection carries on in userspace */
		err = -errno;
		bpf_map_delete_elem(fd_targets, &a->cookie);
		bpf_map_delete_elem(fd_targets, &b->cookie);
		bpf_map_delete_elem(fd_slot_of, &b->cookie);
		slot_put(b->slot);
		memset(b, 0, sizeof(*b));
		return err;
	}
	b->in_map = 1;
	/* bytes queued before insertion wait for more data unless woken
	 * (docs/KERNEL_PATH.md#sockmap-facts-the-design-rests-on) */
	setsockopt(afd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	setsockopt(bfd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	return 0;

err_targets:
	bpf_map_delete_elem(fd_targets, &a->cookie);
	bpf_map_delete_elem(fd_targets, &b->cookie);
err_slots:
	bpf_map_delete_elem(fd_slot_of, &b->cookie);
	slot_put(b->slot);
	memset(b, 0, sizeof(*b));
err_a:
	if (a_new && a->slot) {
		bpf_map_delete_elem(fd_slot_of, &a->cookie);
		slot_put(a->slot);
		memset(a, 0, sizeof(*a));
	}
	return err;
}

void splice_release(struct ksock *k)
{
	if (!k->slot)
		return;
	/* the socket is closed: the kernel already dropped it from both sockhashes */
	bpf_map_delete_elem(fd_slot_of, &k->cookie);
	bpf_map_delete_elem(fd_targets, &k->cookie);
	memset((void *)k->st, 0, sizeof(*k->st));
	slot_put(k->slot);
	memset(k, 0, sizeof(*k));
}

int splice_queued(int fd)
{
	int n = 0;

	if (ioctl(fd, SIOCINQ, &n) == -1)
		return 1;
	return n > 0;
}

int splice_tcp_sent(int fd, uint64_t *sent)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int outq;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return -errno;
	/* a reset socket never acknowledges anything again: report it instead of waiting */
	if (ti.tcpi_state == 7 /* TCP_CLOSE, not in linux/tcp.h */)
		return -ENOTCONN;
	if (ioctl(fd, SIOCOUTQ, &outq) == -1)
		return -errno;
	*sent = ti.tcpi_bytes_acked + (uint64_t)outq;
	return 0;
}

int splice_tcp_received(int fd, uint64_t *received)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return -errno;
	*received = ti.tcpi_bytes_received;
	return 0;
}

void splice_conn_update(uint64_t key, const struct spliced_conn *info)
{
	if (maps_on)
		bpf_map_update_elem(fd_conns, &key, info, BPF_ANY);
}

void splice_conn_delete(uint64_t key)
{
	if (maps_on)
		bpf_map_delete_elem(fd_conns, &key);
}

int splice_read_kern_counters(struct spliced_kern_counters *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct spliced_kern_counters *v;
	__u32 zero = 0;

	memset(sum, 0, sizeof(*sum));
	if (!maps_on || ncpu <= 0)
		return -ENOENT;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd_kern, &zero, v)) {
		free(v);
		return -errno;
	}
	for (int i = 0; i < ncpu; i++) {
		sum->redirect_bytes += v[i].redirect_bytes;
		sum->redirect_skbs += v[i].redirect_skbs;
		sum->pass_skbs += v[i].pass_skbs;
		sum->drop_skbs += v[i].drop_skbs;
		sum->no_peer += v[i].no_peer;
	}
	free(v);
	return 0;
}

void splice_publish_stats(struct config *cf)
{
	int fd;

	if (!maps_on)
		return;
	fd = fd_servers;
	for (unsigned i = 0; i < cf->nservers; i++) {
		struct server *s = cf->servers[i];
		struct spliced_server_stats st;
		__u32 key = s->id;

		memset(&st, 0, sizeof(st));
		snprintf(st.pool, sizeof(st.pool), "%s", s->pool->name);
		snprintf(st.server, sizeof(st.server), "%s", s->name);
		st.requests = atomic_load(&s->requests);
		st.conn_total = atomic_load(&s->conn_total);
		st.conn_fail = atomic_load(&s->conn_fail);
		st.conn_active = (__u64)atomic_load(&s->conn_active);
		st.user_bytes_up = atomic_load(&s->bytes_up);
		st.user_bytes_down = atomic_load(&s->bytes_down);
		st.kern_bytes_up = atomic_load(&s->kern_bytes_up);
		st.kern_bytes_down = atomic_load(&s->kern_bytes_down);
		bpf_map_update_elem(fd, &key, &st, BPF_ANY);
	}
}

void splice_fini(int keep_pins)
{
	char path[PATH_MAX + 64];

	if (!maps_on)
		return;
	/* a live upgrade hands the maps to the next process: the pins stay */
	for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]) && !keep_pins; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned[i]);
		unlink(path);
	}
	if (!keep_pins)
		rmdir(pin_dir);
	if (socks)
		munmap(socks, (size_t)nslots * sizeof(*socks));
	socks = NULL;
	free(free_slots);
	free_slots = NULL;
	free(reserved);
	reserved = NULL;
	if (skel) {
		splice_bpf__destroy(skel);
		skel = NULL;
	} else {
		int fds[] = {fd_kern,	 fd_servers, fd_conns,	fd_socks,
			     fd_targets, fd_active,  fd_slot_of};

		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			close(fds[i]);
	}
	maps_on = kernel_on = 0;
}

/* ---- live upgrade (upgrade.c) ---- */

int splice_export(int fds[SPLICE_NFDS], uint32_t *nslots_out, int *kernel_on_out)
{
	if (!maps_on)
		return -ENOENT;
	fds[SPLICE_FD_KERN] = fd_kern;
	fds[SPLICE_FD_SERVERS] = fd_servers;
	fds[SPLICE_FD_CONNS] = fd_conns;
	fds[SPLICE_FD_SOCKS] = fd_socks;
	fds[SPLICE_FD_TARGETS] = fd_targets;
	fds[SPLICE_FD_ACTIVE] = fd_active;
	fds[SPLICE_FD_SLOT_OF] = fd_slot_of;
	*nslots_out = nslots;
	*kernel_on_out = kernel_on;
	return 0;
}

void splice_freeze(int on)
{
	atomic_store(&frozen, on);
}

uint32_t *splice_slots_in_use(uint32_t *n)
{
	uint8_t *is_free;
	uint32_t *list, k = 0;

	*n = 0;
	if (!kernel_on)
		return NULL;
	is_free = calloc(nslots, 1);
	list = calloc(nslots, sizeof(*list));
	if (!is_free || !list) {
		free(is_free);
		free(list);
		return NULL;
	}
	pthread_mutex_lock(&slot_lock);
	for (uint32_t i = 0; i < nfree; i++)
		is_free[free_slots[i]] = 1;
	pthread_mutex_unlock(&slot_lock);
	for (uint32_t i = 1; i < nslots; i++)
		if (!is_free[i])
			list[k++] = i;
	free(is_free);
	*n = k;
	return list;
}

int splice_adopt(struct config *cf, const int fds[SPLICE_NFDS], uint32_t slots, int kernel,
		 const uint32_t *in_use, uint32_t nin_use)
{
	snprintf(pin_dir, sizeof(pin_dir), "%s", cf->pin_path);
	fd_kern = fds[SPLICE_FD_KERN];
	fd_servers = fds[SPLICE_FD_SERVERS];
	fd_conns = fds[SPLICE_FD_CONNS];
	fd_socks = fds[SPLICE_FD_SOCKS];
	fd_targets = fds[SPLICE_FD_TARGETS];
	fd_active = fds[SPLICE_FD_ACTIVE];
	fd_slot_of = fds[SPLICE_FD_SLOT_OF];
	maps_on = adopted = 1;
	nslots = slots;
	if (!kernel) {
		log_info("bpf: maps adopted from the previous process; kernel data path off");
		return 0;
	}
	socks = mmap(NULL, (size_t)nslots * sizeof(*socks), PROT_READ | PROT_WRITE, MAP_SHARED,
		     fd_socks, 0);
	free_slots = calloc(nslots, sizeof(*free_slots));
	reserved = calloc(nslots, 1);
	if (socks == MAP_FAILED || !free_slots || !reserved) {
		log_warn("bpf: cannot map the adopted socket state; kernel data path off");
		if (socks == MAP_FAILED)
			socks = NULL;
		return 0;
	}
	for (uint32_t i = 0; i < nin_use; i++)
		if (in_use[i] && in_use[i] < nslots)
			reserved[in_use[i]] = 1;
	for (uint32_t i = nslots - 1; i >= 1; i--)
		if (!reserved[i])
			free_slots[nfree++] = i;
	kernel_on = 1;
	log_info("bpf: maps under %s adopted from the previous process (%u slots in use there); "
		 "kernel data path on",
		 pin_dir, nin_use);
	return 1;
}

int splice_adopt_slot(struct ksock *k, uint32_t slot, uint64_t cookie, int in_map)
{
	if (!kernel_on || !slot || slot >= nslots)
		return -EINVAL;
	pthread_mutex_lock(&slot_lock);
	reserved[slot] = 0; /* this process owns it now: freed by its close */
	pthread_mutex_unlock(&slot_lock);
	k->slot = slot;
	k->cookie = cookie;
	k->st = &socks[slot];
	k->in_map = in_map;
	return 0;
}

void splice_release_reserved(void)
{
	uint32_t n = 0;

	if (!reserved)
		return;
	pthread_mutex_lock(&slot_lock);
	for (uint32_t i = 1; i < nslots; i++) {
		if (reserved[i]) {
			reserved[i] = 0;
			free_slots[nfree++] = i;
			n++;
		}
	}
	pthread_mutex_unlock(&slot_lock);
	if (n)
		log_info("bpf: %u slot%s of the previous process released", n, n == 1 ? "" : "s");
}
