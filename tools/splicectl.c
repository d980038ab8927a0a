// SPDX-License-Identifier: MIT
/*
 * splicectl - talk to a running spliced through its control socket (object/verb grammar,
 * -j for JSON, bpftool style). The protocol is one request line, answered by text lines and a
 * last line "OK" or "ERR message" (userspace/control.h).
 *
 * Exit status: 0 OK, 1 the daemon answered ERR (its message on stderr), 2 usage error,
 * 3 cannot connect to the control socket (or it broke off without an answer).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "version.h"

#define DEFAULT_SOCKET "/run/spliced/control.sock"
#define REQUEST_MAX 4096
#define ANSWER_TIMEOUT_S 120 /* a reload of a large configuration takes a while, not this long */

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: splicectl [-s SOCKET] [-j] OBJECT COMMAND [ARGS...]\n"
		"\n"
		"  splicectl [-j] show info|pools|servers|routes|connections|stats|acl|config\n"
		"  splicectl [-j] server set POOL SERVER weight N|drain|maintenance|ready\n"
		"  splicectl [-j] acl deny|allow|del CIDR\n"
		"  splicectl [-j] reload\n"
		"  splicectl [-j] log reopen\n"
		"\n"
		"options:\n"
		"  -s, --socket PATH   control socket (default %s)\n"
		"  -j, --json          answer in JSON (always a valid document)\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n"
		"\n"
		"exit status: 0 ok, 1 the daemon refused (message on stderr), 2 usage error,\n"
		"3 cannot reach the daemon\n",
		DEFAULT_SOCKET);
}

/* the grammar, checked before anything is sent: 0, or -1 after a message */
static int check_command(int argc, char **argv)
{
	if (argc < 1)
		goto bad;
	if (!strcmp(argv[0], "show")) {
		static const char *const objs[] = {"info",	  "pools", "servers", "routes",
						   "connections", "stats", "acl",     "config"};

		if (argc != 2)
			goto bad;
		for (unsigned i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
			if (!strcmp(argv[1], objs[i]))
				return 0;
		fprintf(stderr, "splicectl: unknown object to show '%s'\n", argv[1]);
		goto bad;
	}
	if (!strcmp(argv[0], "server")) {
		if (argc < 5 || strcmp(argv[1], "set"))
			goto bad;
		if (!strcmp(argv[4], "weight")) {
			char *end;
			long w;

			if (argc != 6)
				goto bad;
			errno = 0;
			w = strtol(argv[5], &end, 10);
			if (errno || *end || end == argv[5] || w < 0 || w > 1000) {
				fprintf(stderr, "splicectl: weight must be 0 to 1000, not '%s'\n",
					argv[5]);
				return -1;
			}
			return 0;
		}
		if (argc == 5 && (!strcmp(argv[4], "drain") || !strcmp(argv[4], "maintenance") ||
				  !strcmp(argv[4], "ready")))
			return 0;
		goto bad;
	}
	if (!strcmp(argv[0], "reload") && argc == 1)
		return 0;
	if (!strcmp(argv[0], "acl") && argc == 3 &&
	    (!strcmp(argv[1], "deny") || !strcmp(argv[1], "allow") || !strcmp(argv[1], "del")))
		return 0;
	if (!strcmp(argv[0], "log") && argc == 2 && !strcmp(argv[1], "reopen"))
		return 0;
bad:
	usage(stderr);
	return -1;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static int connect_to(const char *path, int json)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "splicectl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int err = errno;

		fprintf(stderr,
			"splicectl: cannot connect to %s: %s (is spliced running with "
			"'control %s;' in its global section? -s selects another socket)\n",
			path, strerror(err), path);
		if (json) {
			char msg[256];

			snprintf(msg, sizeof(msg), "cannot connect to %s: %s", path, strerror(err));
			printf("{\"error\":");
			json_string(stdout, msg);
			printf("}\n");
		}
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* read until the daemon closes; NULL on error */
static char *read_all(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	for (;;) {
		ssize_t r;

		if (cap - n < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			if (errno == EAGAIN)
				errno = ETIMEDOUT;
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* print the daemon's answer (ans[0..len), modified in place); returns the exit status */
static int print_answer(char *ans, size_t len, int json, const char *sock)
{
	const char *status, *body;
	char *last;

	/* the last line is the status */
	while (len && ans[len - 1] == '\n')
		ans[--len] = '\0';
	last = strrchr(ans, '\n');
	if (last) {
		*last = '\0';
		status = last + 1;
		body = ans;
	} else {
		status = ans; /* a one-line answer is only the status */
		body = "";
	}
	if (!strcmp(status, "OK")) {
		if (*body)
			printf("%s\n", body);
		else if (json)
			printf("null\n");
		return EXIT_OK;
	}
	if (!strncmp(status, "ERR", 3)) {
		const char *msg = status[3] == ' ' ? status + 4 : "error";

		if (json) {
			if (*body && !strchr(body, '\n') && body[0] == '{') {
				printf("%s\n", body); /* the daemon's own document (reload) */
			} else {
				printf("{\"error\":");
				json_string(stdout, msg);
				printf("}\n");
			}
		} else if (*body) {
			fprintf(stderr, "%s\n", body);
		}
		fprintf(stderr, "splicectl: %s\n", msg);
		return EXIT_ERR;
	}
	fprintf(stderr, "splicectl: %s closed the connection without a complete answer\n", sock);
	if (json)
		printf("{\"error\":\"no complete answer from the daemon\"}\n");
	return EXIT_CONNECT;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = DEFAULT_SOCKET;
	char req[REQUEST_MAX], *ans;
	size_t len = 0, off;
	int json = 0, ch, fd, rc;

	while ((ch = getopt_long(argc, argv, "+s:jVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'V':
			printf("splicectl %s\n", SPLICED_VERSION);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (check_command(argc, argv)) {
		if (json)
			printf("{\"error\":\"usage\"}\n");
		return EXIT_USAGE;
	}

	/* one line; the daemon splits it at blanks, so an argument cannot hold one */
	off = (size_t)snprintf(req, sizeof(req), "%s", json ? "json" : "");
	for (int i = 0; i < argc; i++) {
		for (const char *p = argv[i]; *p; p++) {
			if ((unsigned char)*p <= ' ' || *p == 0x7f) {
				fprintf(stderr,
					"splicectl: argument '%s' holds a blank or a "
					"control character\n",
					argv[i]);
				return EXIT_USAGE;
			}
		}
		off += (size_t)snprintf(req + off, off < sizeof(req) ? sizeof(req) - off : 0,
					"%s%s", off ? " " : "", argv[i]);
		if (off >= sizeof(req) - 1) {
			fprintf(stderr, "splicectl: request too long\n");
			return EXIT_USAGE;
		}
	}
	req[off++] = '\n';

	fd = connect_to(sock, json);
	if (fd < 0)
		return EXIT_CONNECT;
	{
		struct timeval tv = {.tv_sec = ANSWER_TIMEOUT_S};

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (send_all(fd, req, off) || shutdown(fd, SHUT_WR) == -1) {
		fprintf(stderr, "splicectl: %s: %s\n", sock, strerror(errno));
		close(fd);
		return EXIT_CONNECT;
	}
	ans = read_all(fd, &len);
	close(fd);
	if (!ans) {
		int err = errno;

		fprintf(stderr, "splicectl: reading from %s: %s\n", sock, strerror(err));
		if (json) {
			printf("{\"error\":");
			json_string(stdout, strerror(err));
			printf("}\n");
		}
		return EXIT_CONNECT;
	}
	rc = print_answer(ans, len, json, sock);
	free(ans);
	return rc;
}
