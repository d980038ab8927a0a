/* SPDX-License-Identifier: MIT */
/* version.h - the release, shared by the daemon, its control socket and splicectl. */
#ifndef SPLICED_VERSION_H
#define SPLICED_VERSION_H

#define SPLICED_VERSION "0.1.0"

#endif
