// SPDX-License-Identifier: MIT
/*
 * pingpong - sequential keep-alive GETs on one connection; prints latency statistics.
 *
 *   pingpong HOST PORT PATH COUNT [WARMUP]
 *
 * Sends one request, reads the complete response (head + Content-Length body), sends the next.
 * Output, one line: "median_us p99_us min_us max_us count". Exit 1 on any protocol or socket
 * error (message on stderr), so a proxy that drops the connection shows up as a failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* one request/response; 0 or -1 */
static int roundtrip(int fd, const char *req, size_t reqlen)
{
	size_t have = 0, head_len = 0, body_len = 0;
	ssize_t n;
	char *end, *p;

	if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) {
		perror("pingpong: send");
		return -1;
	}
	for (;;) {
		n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (n == 0) {
			fprintf(stderr, "pingpong: connection closed by peer\n");
			return -1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("pingpong: recv");
			return -1;
		}
		have += n;
		buf[have] = '\0';
		if (!head_len) {
			end = strstr(buf, "\r\n\r\n");
			if (!end) {
				if (have >= sizeof(buf) - 1) {
					fprintf(stderr, "pingpong: response head too large\n");
					return -1;
				}
				continue;
			}
			head_len = end - buf + 4;
			if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
				fprintf(stderr, "pingpong: unexpected status line: %.40s\n", buf);
				return -1;
			}
			p = strcasestr(buf, "\r\ncontent-length:");
			if (!p || p > end) {
				fprintf(stderr, "pingpong: response without Content-Length\n");
				return -1;
			}
			body_len = strtoul(p + 17, NULL, 10);
			if (head_len + body_len > sizeof(buf) - 1) {
				fprintf(stderr, "pingpong: body too large for this client\n");
				return -1;
			}
		}
		if (have > head_len + body_len) {
			fprintf(stderr, "pingpong: extra bytes after the response\n");
			return -1;
		}
		if (have == head_len + body_len)
			return 0;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char req[512];
	int fd, one = 1, count, warmup, i;
	size_t reqlen;
	double *lat, t0;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: pingpong HOST PORT PATH COUNT [WARMUP]\n");
		return 2;
	}
	count = atoi(argv[4]);
	warmup = argc > 5 ? atoi(argv[5]) : 100;
	if (count < 1 || warmup < 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "pingpong: bad arguments\n");
		return 2;
	}
	sa.sin_port = htons(atoi(argv[2]));
	reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%s\r\n\r\n", argv[3],
			  argv[1], argv[2]);
	lat = calloc(count, sizeof(*lat));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (!lat || fd < 0) {
		perror("pingpong");
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("pingpong: connect");
		return 1;
	}
	for (i = 0; i < warmup; i++)
		if (roundtrip(fd, req, reqlen))
			return 1;
	for (i = 0; i < count; i++) {
		t0 = now_us();
		if (roundtrip(fd, req, reqlen)) {
			fprintf(stderr, "pingpong: failed at request %d of %d\n", i + 1, count);
			return 1;
		}
		lat[i] = now_us() - t0;
	}
	close(fd);
	qsort(lat, count, sizeof(*lat), cmp_double);
	printf("%.1f %.1f %.1f %.1f %d\n", lat[count / 2], lat[(int)(count * 0.99)], lat[0],
	       lat[count - 1], count);
	return 0;
}
