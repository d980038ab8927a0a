// SPDX-License-Identifier: MIT
/*
 * accesslog.c - the access log file (see accesslog.h); the request lines themselves are conn.c's,
 * the lines of connections refused before they carried a request are written here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
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

void accesslog_refused(const struct listener *l, const struct sockaddr_storage *peer,
		       const char *reason)
{
	char line[512], addr[INET6_ADDRSTRLEN] = "-", tbuf[64];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	if (g_access_fd < 0)
		return;
	if (peer->ss_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)peer)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], addr, sizeof(addr));
		else
			inet_ntop(AF_INET6, a6, addr, sizeof(addr));
	} else if (peer->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, addr,
			  sizeof(addr));
	}
	gmtime_r(&now, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* the fields of a request line (conn.c), for a connection that never carried one */
	n = snprintf(line, sizeof(line),
		     "%s %s %s \"- - HTTP/1.1\" host=- status=0 bytes_in=0 bytes_out=0 "
		     "backend=-/- duration_ms=0 refused=%s\n",
		     tbuf, l->name, addr, reason);
	if (n > (int)sizeof(line))
		n = sizeof(line);
	if (write(g_access_fd, line, (size_t)n) == -1) {
		/* logging must not stop the proxy */
	}
}
