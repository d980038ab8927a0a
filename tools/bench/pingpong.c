// SPDX-License-Identifier: MIT
/*
 * pingpong - sequential keep-alive GETs on one connection; prints latency statistics.
 *
 *   pingpong HOST PORT PATH COUNT [WARMUP] [TUNNEL_BYTES]
 *
 * Sends one request, reads the complete response (head + Content-Length body), sends the next.
 * With TUNNEL_BYTES > 0 it first upgrades the connection (WebSocket handshake on PATH, the
 * origin then echoes raw bytes) and each round trip is TUNNEL_BYTES out and the same back:
 * the latency of a tunnel, which spliced carries on its kernel path.
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

/* send a message whole (blocking socket); 0 or -1 */
static int send_msg(int fd, const void *p, size_t len)
{
	if (send(fd, p, len, MSG_NOSIGNAL) != (ssize_t)len) {
		perror("pingpong: send");
		return -1;
	}
	return 0;
}

/* recv what is there (up to cap), again after EINTR; > 0, or -1 once it said why */
static ssize_t recv_some(int fd, char *p, size_t cap, const char *what)
{
	for (;;) {
		ssize_t n = recv(fd, p, cap, 0);

		if (n > 0)
			return n;
		if (n == 0) {
			fprintf(stderr, "pingpong: %s closed by peer\n", what);
			return -1;
		}
		if (errno != EINTR) {
			perror("pingpong: recv");
			return -1;
		}
	}
}

/* one request/response; 0 or -1 */
static int roundtrip(int fd, const char *req, size_t reqlen)
{
	size_t have = 0, head_len = 0, body_len = 0;
	ssize_t n;
	char *end, *p;

	if (send_msg(fd, req, reqlen))
		return -1;
	for (;;) {
		n = recv_some(fd, buf + have, sizeof(buf) - 1 - have, "connection");
		if (n < 0)
			return -1;
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

/* tunnel round trip: len bytes out, the same len back */
static int echo_roundtrip(int fd, const char *msg, size_t len)
{
	size_t have = 0;
	ssize_t n;

	if (send_msg(fd, msg, len))
		return -1;
	while (have < len) {
		n = recv_some(fd, buf + have, len - have, "tunnel");
		if (n < 0)
			return -1;
		have += n;
	}
	if (memcmp(buf, msg, len)) {
		fprintf(stderr, "pingpong: the echo differs from what was sent\n");
		return -1;
	}
	return 0;
}

/* WebSocket upgrade: send the handshake, read up to the end of the 101 head; 0 or -1 */
static int upgrade(int fd, const char *host, const char *port, const char *path)
{
	char req[512];
	size_t have = 0, reqlen;
	ssize_t n;

	reqlen = snprintf(req, sizeof(req),
			  "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: Upgrade\r\n"
			  "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
			  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
			  path, host, port);
	if (send_msg(fd, req, reqlen))
		return -1;
	/* byte by byte: nothing after the head may be consumed (the origin sends nothing) */
	while (have < 4 || memcmp(buf + have - 4, "\r\n\r\n", 4)) {
		if (have >= sizeof(buf) - 1) {
			fprintf(stderr, "pingpong: upgrade response head too large\n");
			return -1;
		}
		n = recv_some(fd, buf + have, 1, "connection (no upgrade response)");
		if (n < 0)
			return -1;
		have++;
	}
	if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
		fprintf(stderr, "pingpong: upgrade refused: %.40s\n", buf);
		return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char req[512], *msg = NULL;
	int fd, one = 1, count, warmup, i, rc;
	size_t reqlen, tunnel;
	double *lat, t0;

	if (argc < 5 || argc > 7) {
		fprintf(stderr, "usage: pingpong HOST PORT PATH COUNT [WARMUP] [TUNNEL_BYTES]\n");
		return 2;
	}
	count = atoi(argv[4]);
	warmup = argc > 5 ? atoi(argv[5]) : 100;
	tunnel = argc > 6 ? strtoul(argv[6], NULL, 10) : 0;
	if (count < 1 || warmup < 0 || tunnel > sizeof(buf) || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
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
	if (tunnel) {
		msg = malloc(tunnel);
		if (!msg || upgrade(fd, argv[1], argv[2], argv[3]))
			return 1;
		for (size_t k = 0; k < tunnel; k++)
			msg[k] = (char)('a' + k % 26);
	}
	for (i = 0; i < warmup + count; i++) {
		t0 = now_us();
		rc = tunnel ? echo_roundtrip(fd, msg, tunnel) : roundtrip(fd, req, reqlen);
		if (rc && i < warmup)
			return 1;
		if (rc) {
			fprintf(stderr, "pingpong: failed at request %d of %d\n", i + 1 - warmup,
				count);
			return 1;
		}
		if (i >= warmup)
			lat[i - warmup] = now_us() - t0;
	}
	close(fd);
	qsort(lat, count, sizeof(*lat), cmp_double);
	printf("%.1f %.1f %.1f %.1f %d\n", lat[count / 2], lat[(int)(count * 0.99)], lat[0],
	       lat[count - 1], count);
	return 0;
}
