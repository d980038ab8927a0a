/* SPDX-License-Identifier: MIT */
/* buildinfo.h - `spliced -V`: the release, how this binary was built, what this kernel offers. */
#ifndef SPLICED_BUILDINFO_H
#define SPLICED_BUILDINFO_H

#include <stdio.h>

/*
 * buildinfo_print - one line each: "spliced VERSION", "build: ..." (compiler, flags, libraries
 * built against and run with), "kernel: ...", then the kernel features the data paths use:
 * "sockhash:", "ktls tx:", "ktls rx:", "btf:" with yes, no (why) or unknown (why). Probes load
 * nothing and leave nothing behind; without CAP_BPF the bpf() probes answer "unknown".
 */
void buildinfo_print(FILE *f);

#endif
