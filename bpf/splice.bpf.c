// SPDX-License-Identifier: GPL-2.0
/*
 * splice.bpf.c - the kernel data path of spliced.
 *
 * Maps (pinned under pin_path, BTF-typed for bpftool):
 *   spliced_kern     per-CPU counters of the verdict program
 *   spliced_servers  per-server totals, written by the daemon, read by bpftool/splicectl
 *   spliced_targets  SOCKHASH, no programs: each socket stored under its PEER's cookie, so the
 *                    verdict finds the redirect target with one lookup (DESIGN.md pitfall 6)
 *   spliced_active   SOCKHASH with the verdict attached; inserting a socket starts forwarding
 * The verdict program is loaded at start-up as the probe of the kernel path; attaching it is the
 * kernel data path's job (issue 3) and is not done yet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "splice_abi.h"

char LICENSE[] SEC("license") = "GPL";

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

SEC("sk_skb/stream_verdict")
int spliced_verdict(struct __sk_buff *skb)
{
	struct spliced_kern_counters *kc;
	__u32 zero = 0;
	__u64 cookie;
	long ret;

	kc = bpf_map_lookup_elem(&spliced_kern, &zero);
	/* the zero-length FIN skb must not be redirected: the target would get EPIPE */
	if (skb->len == 0) {
		if (kc)
			kc->drop_skbs++;
		return SK_DROP;
	}
	cookie = bpf_get_socket_cookie(skb);
	ret = bpf_sk_redirect_hash(skb, &spliced_targets, &cookie, 0);
	if (ret != SK_PASS) {
		if (kc)
			kc->no_peer++;
		return SK_PASS;
	}
	if (kc) {
		kc->redirect_bytes += skb->len;
		kc->redirect_skbs++;
	}
	return ret;
}
