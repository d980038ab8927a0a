// SPDX-License-Identifier: GPL-2.0
/*
 * acl.bpf.c - listener access lists in the kernel: a socket filter (SO_ATTACH_BPF) on every
 * listening socket of spliced drops the connection requests of denied clients, so a SYN from
 * a denied address is never answered and never becomes a connection the daemon accepts.
 *
 * Maps (pinned under pin_path, BTF-typed, see include/acl_abi.h):
 *   spliced_deny, spliced_allow  LPM tries over (listener port, client address)
 *   spliced_acl_stats            per-CPU counters
 *
 * The decision for a SYN to port P from address A: the run-time scope (port 0) first, then the
 * listener's (port P). In a scope the longest matching prefix of the two maps decides (a deny
 * wins a tie); no match in either scope lets the SYN in. The daemon writes a listener's
 * first-match list so that the longest match gives the same answer (dead rules removed, see
 * rule_acl_add() in userspace/rules.c).
 *
 * A socket filter on a TCP socket runs in tcp_v4_rcv()/tcp_v6_rcv() (tcp_filter()) with
 * skb->data at the TCP header; accepted sockets inherit the filter (sk_clone_lock), so
 * everything but a SYN without ACK is let through at the cost of one byte read.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "acl_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SPLICED_ACL_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct spliced_acl_key);
	__type(value, struct spliced_acl_val);
} spliced_deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SPLICED_ACL_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct spliced_acl_key);
	__type(value, struct spliced_acl_val);
} spliced_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct spliced_acl_stats);
} spliced_acl_stats SEC(".maps");

enum { ACL_NO_MATCH = 0, ACL_PASS, ACL_DROP };

/* the decision of one scope: key->port set by the caller */
static __always_inline int scope_decides(struct spliced_acl_key *key)
{
	struct spliced_acl_val *d, *a;
	__u32 dl, al;

	key->prefixlen = SPLICED_ACL_PORT_BITS + 128;
	d = bpf_map_lookup_elem(&spliced_deny, key);
	a = bpf_map_lookup_elem(&spliced_allow, key);
	/* one pointer tested at a time: clang folds `!d && !a` into an OR of the two
	 * pointers, which the verifier refuses ("pointer |= pointer prohibited") */
	if (!a) {
		if (!d)
			return ACL_NO_MATCH;
		__sync_fetch_and_add(&d->hits, 1);
		return ACL_DROP;
	}
	al = a->prefixlen;
	if (d) {
		dl = d->prefixlen;
		if (dl >= al) {
			__sync_fetch_and_add(&d->hits, 1);
			return ACL_DROP;
		}
	}
	__sync_fetch_and_add(&a->hits, 1);
	return ACL_PASS;
}

SEC("socket")
int spliced_acl_filter(struct __sk_buff *skb)
{
	struct spliced_acl_key key = {};
	struct spliced_acl_stats *st;
	__u8 flags, ver;
	__u16 port;
	__u32 zero = 0;
	int v;

	/* byte 13 of the TCP header: the flags; only a new connection request is looked at */
	if (bpf_skb_load_bytes(skb, 13, &flags, 1))
		return skb->len;
	if ((flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return skb->len;
	if (bpf_skb_load_bytes(skb, 2, &port, 2))
		return skb->len;
	/* the source address from the network header (skb->data is past it) */
	if (bpf_skb_load_bytes_relative(skb, 0, &ver, 1, BPF_HDR_START_NET))
		return skb->len;
	if ((ver >> 4) == 4) {
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		if (bpf_skb_load_bytes_relative(skb, 12, &key.addr[12], 4, BPF_HDR_START_NET))
			return skb->len;
	} else if ((ver >> 4) == 6) {
		if (bpf_skb_load_bytes_relative(skb, 8, key.addr, 16, BPF_HDR_START_NET))
			return skb->len;
	} else {
		return skb->len;
	}
	st = bpf_map_lookup_elem(&spliced_acl_stats, &zero);
	if (st)
		st->syn_seen++;
	/* run-time scope (port 0), then the listener's */
	v = scope_decides(&key);
	if (v == ACL_NO_MATCH) {
		__builtin_memcpy(key.port, &port, 2);
		v = scope_decides(&key);
	}
	if (v != ACL_DROP)
		return skb->len;
	if (st)
		st->syn_dropped++;
	return 0; /* tcp_filter(): the SYN is discarded, nothing answers it */
}
