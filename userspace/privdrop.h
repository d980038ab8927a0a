/* SPDX-License-Identifier: MIT */
/* privdrop.h - switch to the configured user, keeping only the capabilities still needed. */
#ifndef SPLICED_PRIVDROP_H
#define SPLICED_PRIVDROP_H

#include "types.h"

/* privdrop - no-op without `user`; 0 or -1 (logged). Call before any thread starts. */
int privdrop(const struct config *cf, int access_fd, const char *control_path);

#endif
