// SPDX-License-Identifier: GPL-2.0
/*
 * splice.bpf.c - the kernel data path of spliced.
 *
 * Maps (pinned under pin_path, BTF-typed for bpftool):
 *   spliced_kern     per-CPU counters of the verdict program
 *   spliced_servers  per-server totals, written by the daemon
 *   spliced_conns    connection table, written by the daemon
 *   spliced_targets  SOCKHASH, no programs: each socket stored under its PEER's cookie, so the
 *                    verdict finds the redirect target with one lookup; every socket is a
 *                    target before either enters spliced_active (a redirect to a peer not in
 *                    a map yet is dropped silently)
 *   spliced_active   SOCKHASH with the verdict attached; inserting a socket starts the verdict
 *   spliced_slot_of  socket cookie -> slot in spliced_socks
 *   spliced_socks    per-socket window state (see include/splice_abi.h), mmap-ed by the daemon
 *
 * Verdict-only (no stream parser): with a parser, SK_PASS data corrupts the receive bookkeeping
 * on this kernel (docs/KERNEL_PATH.md#why-the-verdict-runs-without-a-stream-parser). The rule
 * that keeps bytes in order: an skb is redirected only when every byte before it has already
 * been forwarded (passed == user_fwd: the daemon has written all it was given) and it ends
 * inside the window the daemon authorized, and the peer is under its in-flight cap. Anything
 * else is SK_PASS: the daemon reads it and forwards it itself.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "splice_abi.h"

char LICENSE[] SEC("license") = "GPL";

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct spliced_kern_counters);
} spliced_kern SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPLICED_MAX_SERVERS);
	__type(key, __u32);
	__type(value, struct spliced_server_stats);
} spliced_servers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPLICED_MAX_SOCKS);
	__type(key, __u64);
	__type(value, struct spliced_conn);
} spliced_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SPLICED_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
} spliced_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SPLICED_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
} spliced_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPLICED_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u32);
} spliced_slot_of SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPLICED_MAX_SOCKS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct spliced_sock);
} spliced_socks SEC(".maps");

/* bytes queued into the peer that it has not had acknowledged yet */
static __always_inline __u64 peer_in_flight(struct spliced_sock *st, struct spliced_sock *pst,
					    __u64 *cookie)
{
	struct bpf_sock *peer;
	struct tcp_sock *tp;
	__u64 acked, queued;

	peer = bpf_map_lookup_elem(&spliced_targets, cookie);
	if (!peer)
		return ~0ULL;
	/* bpf_tcp_sock and bpf_sk_fullsock are rejected in sk_skb; skc_to_tcp_sock is not */
	tp = bpf_skc_to_tcp_sock(peer);
	acked = tp ? BPF_CORE_READ(tp, bytes_acked) : 0;
	bpf_sk_release(peer);
	if (!tp)
		return ~0ULL;
	queued = st->kern_fwd + pst->user_in + pst->syn_adj;
	return queued > acked ? queued - acked : 0;
}

struct trim_ctx {
	struct __sk_buff *skb;
	__s32 left; /* repeated bytes still to cut from the head */
};

/* bpf_loop callback: cut up to 4095 bytes (the most sk_skb_adjust_room takes per call) */
static long trim_step(__u32 i, void *arg)
{
	struct trim_ctx *t = arg;
	__s32 n = t->left > 4095 ? 4095 : t->left;

	if (n <= 0 || bpf_skb_adjust_room(t->skb, -n, 0, 0))
		return 1;
	t->left -= n;
	return t->left > 0 ? 0 : 1;
}

SEC("sk_skb/stream_verdict")
int spliced_verdict(struct __sk_buff *skb)
{
	struct spliced_kern_counters *kc;
	struct spliced_sock *st, *pst;
	struct sk_buff *kskb;
	struct tcp_skb_cb *cb;
	__u32 zero = 0, *slot, pslot, seq;
	__u64 cookie, off, len;
	int redirect = 0;

	kc = bpf_map_lookup_elem(&spliced_kern, &zero);
	/* the zero-length FIN skb must not be redirected: the target would get EPIPE */
	if (skb->len == 0) {
		if (kc)
			kc->drop_skbs++;
		return SK_DROP;
	}
	cookie = bpf_get_socket_cookie(skb);
	slot = bpf_map_lookup_elem(&spliced_slot_of, &cookie);
	if (!slot)
		goto pass_untracked;
	st = bpf_map_lookup_elem(&spliced_socks, slot);
	if (!st)
		goto pass_untracked;

	/* after a retransmission the receive path may hand over an skb whose head was already
	 * delivered: trim what was seen (sk_skb_adjust_room pulls at most 4095 bytes a call) */
	kskb = bpf_cast_to_kern_ctx(skb);
	cb = (struct tcp_skb_cb *)&kskb->cb[0];
	seq = BPF_CORE_READ(cb, seq);
	if (!st->next_seq) {
		/* first skb since insertion: the daemon may have read its head already, and
		 * tcp_read_skb() hands over whole skbs, so start from what was copied */
		struct bpf_sock *self = bpf_map_lookup_elem(&spliced_active, &cookie);

		/* kskb->sk is an RCU pointer skc_to_tcp_sock rejects; the sockhash lookup
		 * returns a referenced socket it accepts */
		if (self) {
			struct tcp_sock *tp = bpf_skc_to_tcp_sock(self);

			if (tp)
				st->next_seq = (__u64)BPF_CORE_READ(tp, copied_seq) + 1;
			bpf_sk_release(self);
		}
	}
	if (st->next_seq) {
		__u32 expect = (__u32)(st->next_seq - 1);
		__s32 dup = (__s32)(expect - seq);

		if (dup > 0) {
			struct trim_ctx t = {.skb = skb, .left = dup};

			st->trims++;
			if ((__u32)dup >= skb->len)
				return SK_DROP;
			/* a partly read skb at insertion can repeat far more than 4095 bytes: make
			 * the repeated head linear once, so each trim below only moves a pointer
			 * (if that allocation fails the trims pull 4095 bytes at a time) */
			if (dup > 4095)
				bpf_skb_pull_data(skb, (__u32)dup);
			bpf_loop((__u32)(dup + 4094) / 4095, trim_step, &t, 0);
			st->trimmed += (__u64)(dup - t.left);
			if (t.left > 0) {
				st->trim_fails++;
				return SK_DROP; /* cannot trim: dropping beats duplicating */
			}
		}
	}
	len = skb->len;
	st->next_seq = (__u64)(__u32)(seq + (__u32)len) + 1;

	off = st->seen;
	st->seen = off + len;
	if (st->enabled && st->passed == st->user_fwd && off + len <= st->win_end) {
		pslot = st->peer_slot;
		pst = bpf_map_lookup_elem(&spliced_socks, &pslot);
		if (pst && peer_in_flight(st, pst, &cookie) + len <= st->cap)
			redirect = 1;
		else
			st->cap_hits++;
	}
	if (redirect && bpf_sk_redirect_hash(skb, &spliced_targets, &cookie, 0) == SK_PASS) {
		st->kern_fwd += len;
		if (kc) {
			kc->redirect_bytes += len;
			kc->redirect_skbs++;
		}
		return SK_PASS;
	}
	if (redirect && kc)
		kc->no_peer++;
	st->passed += len;
	if (kc)
		kc->pass_skbs++;
	return SK_PASS;

pass_untracked:
	if (kc)
		kc->pass_skbs++;
	return SK_PASS;
}
