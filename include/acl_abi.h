/* SPDX-License-Identifier: MIT */
/*
 * acl_abi.h - the access-list maps shared by bpf/acl.bpf.c and the daemon (userspace/acl.c).
 * Fixed-size fields only, explicit padding, no pointers: bpftool prints them through BTF, and
 * an operator writes them with `bpftool map update pinned PIN/spliced_deny key hex ...`
 * (docs/OPERATIONS.md, "Access lists").
 *
 * spliced_deny and spliced_allow are LPM tries over (listener port, client address). The port
 * is the local TCP port of a listener, big-endian as on the wire; port 0 is the run-time scope
 * that covers every listener (`splicectl acl`, bpftool). An IPv4 address is stored as
 * ::ffff:a.b.c.d, so 10.0.0.0/8 has prefixlen 16 + 96 + 8.
 */
#ifndef SPLICED_ACL_ABI_H
#define SPLICED_ACL_ABI_H

#define SPLICED_ACL_PORT_BITS 16

struct spliced_acl_key {
	__u32 prefixlen; /* bits of port and addr that must match: 16 + address bits */
	__u8 port[2];	 /* listener port, network order; 0 0: every listener (run time) */
	__u8 addr[16];	 /* IPv6, or IPv4 as ::ffff:a.b.c.d */
	__u8 pad[2];	 /* zero; never inside a prefix */
};

/* who wrote an entry (struct spliced_acl_val.origin) */
#define SPLICED_ACL_FILE 0    /* a listener's allow/deny in the configuration file */
#define SPLICED_ACL_RUNTIME 1 /* splicectl acl deny|allow */
/* anything else: written by someone else (bpftool); kept like a run-time entry */

struct spliced_acl_val {
	__u32 prefixlen; /* the key's prefixlen again: a deny and an allow match are compared by it */
	__u32 origin;	 /* SPLICED_ACL_* */
	__u64 hits;	 /* SYNs this entry decided (the longest match of the scope), BPF-written */
};

/* per-CPU counters of the listener filter ("spliced_acl_stats", one entry, key 0) */
struct spliced_acl_stats {
	__u64 syn_seen;	   /* connection requests (SYN without ACK) looked at */
	__u64 syn_dropped; /* of them, dropped by a deny */
};

#define SPLICED_ACL_MAX_ENTRIES 65536

#endif
