/* SPDX-License-Identifier: MIT */
/*
 * acl.h - listener access lists (`allow`/`deny` of a listener, `splicectl acl`): enforced in
 * the kernel by a socket filter on every listening socket (bpf/acl.bpf.c) when it can be
 * loaded and attached, else by the worker right after accept. Data plane; the maps are pinned
 * beside the kernel data path's (spliced_deny, spliced_allow, spliced_acl_stats).
 *
 * Two scopes: the run-time one (`splicectl acl deny|allow CIDR`, or an entry written with
 * bpftool under port 0) covers every listener and is looked at first; then the listener's own
 * list from the file. A reload rewrites the listeners' entries and keeps the run-time ones, so
 * a run-time entry wins over the file until `splicectl acl del` removes it; a restart starts
 * without them. The lists act on the TCP peer.
 */
#ifndef SPLICED_ACL_H
#define SPLICED_ACL_H

#include <stdint.h>
#include <sys/socket.h>

#include "obuf.h"
#include "types.h"

/*
 * acl_init - load the listener filter and its maps under cf->pin_path (adopt: a live upgrade,
 * reuse the maps the previous process pinned, with their run-time entries), probe that a
 * listening socket takes the filter, and write cf's lists. disabled (--no-splice,
 * --no-kernel-acl) or any failure (logged once): the lists are enforced after accept. Main
 * thread, before the listeners open. Returns 1 when the kernel enforces them, 0 if not.
 */
int acl_init(struct config *cf, int disabled, int adopt);

/* acl_kernel_on - does the kernel enforce the lists? */
int acl_kernel_on(void);

/* acl_attach - put the filter on a listening socket (no-op without the kernel filter); a
 * failure is logged and leaves that socket to the after-accept check. 0 or -errno. */
int acl_attach(int fd);

/*
 * acl_sync - make the listeners' entries of the maps those of cf (a reload, after the new
 * listening sockets are ready): new ones written first, then the stale ones deleted, run-time
 * entries untouched. Main thread. 0 or -errno (logged; the maps may hold a mix).
 */
int acl_sync(struct config *cf);

/*
 * acl_refused - the after-accept check of a connection from peer on listener l: 1 when the
 * run-time list or l's list denies it (counted, logged in the access log; the caller closes
 * the socket), 0 otherwise (always 0 while the kernel filter enforces the lists). Any worker.
 */
int acl_refused(const struct listener *l, const struct sockaddr_storage *peer);

enum acl_op { ACL_OP_DENY, ACL_OP_ALLOW, ACL_OP_DEL };

/*
 * acl_runtime - `splicectl acl deny|allow|del CIDR`: a run-time entry added (replacing one of
 * the other kind for the same CIDR) or removed. Main thread. 0, -EINVAL (not a CIDR), -ENOENT
 * (del: no such entry), -ENOSPC or another -errno; err receives a message.
 */
int acl_runtime(enum acl_op op, const char *cidr, char *err, size_t errlen);

/* acl_show - every entry (run-time, then the listeners'): scope, action, CIDR, origin, hits;
 * read from the maps when the kernel enforces them, so entries written with bpftool show */
int acl_show(const struct config *cf, int json, struct obuf *o);

/* acl_kernel_counters - SYNs the filter looked at and dropped, summed over CPUs; -ENOENT
 * without the filter */
int acl_kernel_counters(uint64_t *seen, uint64_t *dropped);

/* acl_fini - detach nothing (sockets keep their filter until they close), unpin the maps
 * unless keep_pins (a live upgrade hands them on), free the object. */
void acl_fini(int keep_pins);

#endif
