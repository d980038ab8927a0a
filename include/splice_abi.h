/* SPDX-License-Identifier: MIT */
/*
 * splice_abi.h - map keys and values shared by bpf/splice.bpf.c and the daemon.
 * Fixed-size fields only, explicit padding, no pointers: these are read with bpftool through BTF.
 */
#ifndef SPLICED_SPLICE_ABI_H
#define SPLICED_SPLICE_ABI_H

/* per-CPU counters of the kernel data path ("spliced_kern", one entry, key 0) */
struct spliced_kern_counters {
	__u64 redirect_bytes; /* bytes the verdict redirected to the peer socket */
	__u64 redirect_skbs;
	__u64 pass_skbs; /* skbs left to the daemon (SK_PASS) */
	__u64 drop_skbs; /* zero-length FIN skbs dropped */
	__u64 no_peer;	 /* redirects refused: peer not in the targets map */
};

/* per-server totals ("spliced_servers", key = server id, see splicectl / bpftool) */
struct spliced_server_stats {
	char pool[64];
	char server[64];
	__u64 requests;
	__u64 conn_total;
	__u64 conn_fail;
	__u64 conn_active;
	__u64 user_bytes_up;   /* client -> server, moved by the daemon */
	__u64 user_bytes_down; /* server -> client, moved by the daemon */
	__u64 kern_bytes_up;   /* client -> server, moved by the BPF verdict */
	__u64 kern_bytes_down; /* server -> client, moved by the BPF verdict */
};

#define SPLICED_MAX_SERVERS 4096
#define SPLICED_MAX_SOCKS 65536

#endif
