/* SPDX-License-Identifier: MIT */
/*
 * splice.h - the BPF side: skeleton lifecycle, pinned maps, the kernel data path (socket
 * insertion, window state, drain checks), stats export. Only splice.c includes the generated
 * splice.skel.h.
 */
#ifndef SPLICED_SPLICE_H
#define SPLICED_SPLICE_H

#include <linux/types.h>
#include <stdint.h>

#include "splice_abi.h"
#include "types.h"

/* one socket's handle in the kernel data path */
struct ksock {
	uint32_t slot; /* 0: not in the maps */
	uint64_t cookie;
	struct spliced_sock *st; /* mmap-ed window state */
	int in_map;		 /* in the verdict sockhash (stays until close) */
};

/*
 * splice_init - load the BPF object, pin its maps under cf->pin_path (mounting bpffs at
 * /sys/fs/bpf when needed) and, unless disabled, attach the verdict. Never fatal: on any failure
 * the reason is logged once and the daemon serves on the userspace path.
 * Returns 1 when the kernel data path is available, 0 if not.
 */
int splice_init(struct config *cf, int disabled);
int splice_kernel_available(void);

/*
 * splice_probe_features - for `spliced -V`, without loading anything: can this kernel create a
 * SOCKHASH and load sk_skb programs, and does it describe itself with BTF? Each answer is
 * written as "yes", "no" or "unknown (why)" (bpf() refused the probe: no CAP_BPF).
 */
void splice_probe_features(char *sockhash, size_t slen, char *btf, size_t blen);

/* splice_library - "libbpf 1.1" */
const char *splice_library(void);

/* splice_probe_access - can this thread still use the maps (bpf() on an open map fd)? 0 or
 * -EPERM (privdrop.c probes with CAP_BPF dropped from the effective set). */
int splice_probe_access(void);

/*
 * splice_insert - put a connected pair into the maps (or pair a new b with an a already there):
 * both as redirect targets, then both into the verdict map (a redirect to a peer not in a map
 * yet is dropped), then wake bytes queued before insertion (they would wait for more data; see
 * docs/KERNEL_PATH.md#sockmap-facts-the-design-rests-on). The window
 * starts disabled: every byte is passed up until the caller opens one. Returns 0; -ENOSPC when
 * no slot is free; -EOPNOTSUPP (a socket already got FIN) or another -errno: the pair stays on
 * the userspace path (a socket that made it into the verdict map stays there until close).
 */
int splice_insert(struct ksock *a, int afd, struct ksock *b, int bfd, uint64_t cap);

/* splice_release - forget a socket after it was closed; frees its slot. */
void splice_release(struct ksock *k);

/* splice_queued - nonzero when the socket has unread bytes in its receive queue (SIOCINQ). */
int splice_queued(int fd);

/* splice_tcp_sent - bytes that reached the socket's send queue: tcpi_bytes_acked + SIOCOUTQ. */
int splice_tcp_sent(int fd, uint64_t *sent);
/* splice_tcp_received - tcpi_bytes_received (counts a received FIN as one byte). */
int splice_tcp_received(int fd, uint64_t *received);

/* connection table for bpftool (key: client socket cookie) */
void splice_conn_update(uint64_t key, const struct spliced_conn *info);
void splice_conn_delete(uint64_t key);

/* sum the per-CPU verdict counters; 0 or -errno */
int splice_read_kern_counters(struct spliced_kern_counters *sum);

/* splice_publish_stats - copy the per-server counters into the pinned spliced_servers map. */
void splice_publish_stats(struct config *cf);

/* splice_fini - unpin maps, unmap, destroy the skeleton. */
void splice_fini(int keep_pins);

/* live upgrade: the map fds travel to the next process over the upgrade socket */
enum {
	SPLICE_FD_KERN,
	SPLICE_FD_SERVERS,
	SPLICE_FD_CONNS,
	SPLICE_FD_SOCKS,
	SPLICE_FD_TARGETS,
	SPLICE_FD_ACTIVE,
	SPLICE_FD_SLOT_OF,
	SPLICE_NFDS
};
/* splice_export - the map fds (still owned here), slot count, verdict attached; -ENOENT
 * without maps. */
int splice_export(int fds[SPLICE_NFDS], uint32_t *nslots, int *kernel_on);
/* splice_freeze - no new insertions (the old process during an upgrade). */
void splice_freeze(int on);
/* splice_slots_in_use - calloc-ed list of the slots in use now (*n entries). */
uint32_t *splice_slots_in_use(uint32_t *n);
/* splice_adopt - the new process: use the previous process's maps (verdict already attached
 * when kernel is set); the slots in_use stay reserved until splice_release_reserved(). */
int splice_adopt(struct config *cf, const int fds[SPLICE_NFDS], uint32_t nslots, int kernel,
		 const uint32_t *in_use, uint32_t nin_use);
/* splice_adopt_slot - a handed-over connection's socket takes over its slot. */
int splice_adopt_slot(struct ksock *k, uint32_t slot, uint64_t cookie, int in_map);
/* splice_release_reserved - the previous process is gone: its remaining slots are free. */
void splice_release_reserved(void);

#endif
