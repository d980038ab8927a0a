// SPDX-License-Identifier: MIT
/*
 * reload.c - configuration reload: load, validate, open, then swap on every worker.
 */
#include <stdio.h>

#include "daemon.h"
#include "log.h"

int daemon_reload(struct daemon *d, FILE *errf)
{
	(void)d;
	if (errf)
		fprintf(errf, "reload is not implemented yet\n");
	log_warnx("configuration reload is not implemented yet; ignored");
	return -1;
}
