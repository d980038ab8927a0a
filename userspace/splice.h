/* SPDX-License-Identifier: MIT */
/*
 * splice.h - the BPF side: skeleton lifecycle, pinned maps, probes, stats export.
 * Only splice.c includes the generated splice.skel.h.
 */
#ifndef SPLICED_SPLICE_H
#define SPLICED_SPLICE_H

#include "types.h"

/*
 * splice_init - probe and load the BPF object, pin its maps under cf->pin_path (mounting bpffs
 * at /sys/fs/bpf when needed). Never fatal: on any failure the reason is logged once and the
 * daemon runs on the userspace path. Returns 1 when the kernel path is available, 0 if not.
 */
int splice_init(struct config *cf, int disabled);

/* splice_publish_stats - copy the per-server counters into the pinned spliced_servers map. */
void splice_publish_stats(struct config *cf);

/* splice_fini - unpin maps and destroy the skeleton. */
void splice_fini(void);

#endif
