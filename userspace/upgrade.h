/* SPDX-License-Identifier: MIT */
/*
 * upgrade.h - live upgrade (SIGUSR2): the running process starts the binary again, hands over
 * its BPF maps, its listening sockets and its established connections over a unix socket
 * (SCM_RIGHTS), and exits when it has nothing left. See upgrade.c for the protocol.
 */
#ifndef SPLICED_UPGRADE_H
#define SPLICED_UPGRADE_H

#include "conn.h"

struct daemon;
struct worker;

/* old process: start an upgrade (main thread); logs and returns -1 when one cannot start */
int upgrade_start(struct daemon *d, char **argv);
/* old process: main loop hook; returns 1 when the process should exit now (all handed) */
int upgrade_poll(struct daemon *d);

/* new process: the fd from the environment, or -1 when this is a normal start */
int upgrade_inherited_fd(void);
/* new process, before workers start: receive maps and listeners; sets up splice and every
 * worker's listening sockets. 0 or -1 (then the old process keeps serving). */
int upgrade_receive(struct daemon *d, int fd);
/* new process, once workers run: tell the old one, then take connections (main loop) */
int upgrade_ready(struct daemon *d, int fd);

#endif
