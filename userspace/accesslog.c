// SPDX-License-Identifier: MIT
/*
 * accesslog.c - the access log file (see accesslog.h); the lines themselves are conn.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "accesslog.h"

int g_access_fd = -1;

int accesslog_open(const struct config *cf)
{
	if (!strcmp(cf->access_log, "off"))
		g_access_fd = -1;
	else if (!cf->access_log[0] || !strcmp(cf->access_log, "stderr"))
		g_access_fd = dup(STDERR_FILENO);
	else
		g_access_fd = open(cf->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (g_access_fd == -1 && strcmp(cf->access_log, "off"))
		return -errno;
	return 0;
}

/* the same fd number keeps serving the workers (dup2 is atomic) */
int accesslog_reopen(const struct config *ncf, FILE *errf)
{
	int fd;

	if (!strcmp(ncf->access_log, "off")) {
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	} else if (!ncf->access_log[0] || !strcmp(ncf->access_log, "stderr")) {
		fd = dup(STDERR_FILENO);
	} else {
		fd = open(ncf->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd == -1) {
			fprintf(errf, "%s: cannot open access log %s: %s\n", ncf->file,
				ncf->access_log, strerror(errno));
			return -1;
		}
	}
	if (fd == -1)
		return 0;
	if (g_access_fd >= 0) {
		dup2(fd, g_access_fd);
		close(fd);
		if (!strcmp(ncf->access_log, "off"))
			g_access_fd = -1; /* the old number stays open on /dev/null */
	} else if (strcmp(ncf->access_log, "off")) {
		g_access_fd = fd;
	} else {
		close(fd);
	}
	return 0;
}

void accesslog_close(void)
{
	if (g_access_fd >= 0)
		close(g_access_fd);
	g_access_fd = -1;
}
