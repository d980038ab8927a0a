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

/*
 * Per-socket state of the kernel data path ("spliced_socks", an mmap-able array indexed by slot;
 * "spliced_slot_of" maps a socket cookie to its slot). The first block is written only by the
 * verdict program (which runs serialized per socket), the second only by the daemon (plain
 * 64-bit stores into the mmap-ed array). Offsets are in "verdict coordinates": byte 0 is the
 * first byte the daemon had not read when the socket was inserted.
 */
struct spliced_sock {
	/* written by BPF */
	__u64 seen;	  /* bytes handed to the verdict (stream offset reached) */
	__u64 kern_fwd;	  /* bytes redirected to the peer */
	__u64 passed;	  /* bytes left to the daemon (SK_PASS) */
	__u64 next_seq;	  /* next expected TCP sequence + 1 (0: unknown) */
	__u64 cap_hits;	  /* skbs passed up because the peer was over the in-flight cap */
	__u64 trims;	  /* skbs whose head repeated already delivered bytes */
	__u64 trimmed;	  /* repeated bytes cut from those heads */
	__u64 trim_fails; /* skbs dropped because their repeated head could not be cut (lost) */
	/* written by the daemon */
	__u64 user_fwd;	 /* passed bytes the daemon has written to the peer */
	__u64 win_end;	 /* redirect only bytes below this offset */
	__u64 user_in;	 /* bytes the daemon wrote INTO this socket */
	__u64 syn_adj;	 /* 1 when this socket's tcpi_bytes_acked counts its SYN */
	__u64 cap;	 /* most bytes in flight into the peer before falling back to PASS */
	__u32 peer_slot; /* slot of the peer socket */
	__u32 enabled;	 /* 0: pass everything up */
	__u64 user_pad[2];
};

/* one proxied connection ("spliced_conns", key = client socket cookie), for bpftool */
struct spliced_conn {
	char client[48];   /* address:port */
	char upstream[48]; /* address:port */
	char pool[32];
	char server[32];
	__u64 start_ns; /* CLOCK_REALTIME nanoseconds */
	__u64 kern_bytes_up;
	__u64 kern_bytes_down;
	__u64 user_bytes_up;
	__u64 user_bytes_down;
	__u32 server_id;
	__u32 flags; /* SPLICED_CONN_* */
};

#define SPLICED_CONN_KERNEL 0x1 /* sockets are in the sockhash */
#define SPLICED_CONN_TUNNEL 0x2

#define SPLICED_WIN_ALL (~0ULL)

#define SPLICED_MAX_SERVERS 4096
#define SPLICED_MAX_SOCKS 65536

#endif
