// SPDX-License-Identifier: MIT
/*
 * control.c - the control socket: listening socket lifecycle, per-client buffered line reads
 * and answers, and the commands (see control.h, docs/OPERATIONS.md).
 *
 * Everything runs on the main thread: the socket and its clients are fds watched by the main
 * loop, and the commands that change the running configuration (server set, reload) run where
 * reloads and upgrades run, so they never race each other. Reading the workers' connections
 * goes through conn_snapshot() (a short per-worker lock, no I/O under it); answers are built in
 * memory first and sent without blocking.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "acl.h"
#include "admin.h"
#include "clock.h"
#include "conn.h"
#include "control.h"
#include "control-i.h"
#include "health_state.h"
#include "log.h"
#include "obuf.h"
#include "splice.h"
#include "stats.h"
#include "version.h"
#include "worker.h"

#define MAX_ARGS 16
/* the listening socket's number, for the process a live upgrade executes (it inherits the fd) */
#define ENV_FD "SPLICED_CONTROL_FD"

struct ctl_client {
	struct admin_client a; /* first: fd, output buffer, idle clock (since the last activity) */
	char in[CONTROL_LINE_MAX];
	size_t inlen;
	int eof;     /* the client shut down its side: answer what it sent, then close */
	int closing; /* close once the answer is out */
	int discard; /* then half-close and drop input until EOF (an over-long line: closing
		      * with unread input would reset the connection and lose the ERR line) */
};

static void client_event(struct daemon *d, int fd, uint32_t events, void *arg);

static struct {
	struct admin_srv srv;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file we created: removed at close only while it is still ours */
	ino_t ino;
	int takeover; /* started by a live upgrade: inherit or replace the old process's socket */
} C = {.srv = {.name = "control",
	       .env_fd = ENV_FD,
	       .client_size = sizeof(struct ctl_client),
	       .max_clients = CONTROL_CLIENTS_MAX,
	       .busy = "ERR too many control clients\n",
	       .out_max = 64u << 20,
	       .idle_ms = CONTROL_IDLE_MS,
	       .client_event = client_event,
	       .lfd = -1,
	       .tfd = -1}};

static void report(FILE *errf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(FILE *errf, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s", msg);
	if (errf)
		fprintf(errf, "%s\n", msg);
}

/* ---- commands (the show renderers are in control_show.c) ---- */

static struct server *find_server(struct config *cf, const char *pool, const char *name)
{
	for (unsigned i = 0; i < cf->npools; i++) {
		struct pool *p = &cf->pools[i];

		if (strcmp(p->name, pool))
			continue;
		for (unsigned s = 0; s < p->nservers; s++)
			if (!strcmp(p->servers[s].name, name))
				return &p->servers[s];
	}
	return NULL;
}

/* strict decimal 0..max; 0 or -EINVAL */
static int parse_uint(const char *s, unsigned max, uint32_t *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 10)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static void verb_usage(struct obuf *o, const char *verb);
static int do_help(struct daemon *d, int json, char **av, int ac, struct obuf *o);

/* `server set POOL SERVER weight N|drain|maintenance|ready`; returns 0 or 1 (ERR written) */
static int server_set(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	struct server *s;
	uint32_t w;

	/* the table let through `server set` with 5 or 6 words; the setting says which */
	if (strcmp(av[4], "weight") ? ac != 5 : ac != 6) {
		ob_printf(o, "ERR usage: ");
		verb_usage(o, "server");
		ob_printf(o, "\n");
		return 1;
	}
	s = find_server(d->cf, av[2], av[3]);
	if (!s) {
		ob_printf(o, "ERR no server '%.64s' in pool '%.64s'\n", av[3], av[2]);
		return 1;
	}
	if (!strcmp(av[4], "weight")) {
		if (parse_uint(av[5], 1000, &w) || health_set_weight(s, w)) {
			ob_printf(o, "ERR invalid weight '%.32s' (0 to 1000)\n", av[5]);
			return 1;
		}
	} else if (!strcmp(av[4], "drain") || !strcmp(av[4], "maintenance") ||
		   !strcmp(av[4], "ready")) {
		if (health_set_admin(s, av[4])) {
			ob_printf(o, "ERR cannot set '%s'\n", av[4]);
			return 1;
		}
	} else {
		ob_printf(o,
			  "ERR unknown server setting '%.32s' (weight N, drain, maintenance, "
			  "ready)\n",
			  av[4]);
		return 1;
	}
	{
		struct health_view v;

		health_server_view(s, &v);
		if (json) {
			ob_printf(o, "{\"pool\":");
			ob_json_str(o, s->pool->name);
			ob_printf(o, ",\"server\":");
			ob_json_str(o, s->name);
			ob_printf(o, ",\"state\":\"%s\",\"admin\":\"%s\",\"weight\":%u}\n",
				  control_server_state(s, &v), control_admin_name(v.admin),
				  __atomic_load_n(&s->weight, __ATOMIC_RELAXED));
		} else {
			ob_printf(o, "pool %s server %s: state %s, admin %s, weight %u\n",
				  s->pool->name, s->name, control_server_state(s, &v),
				  control_admin_name(v.admin),
				  __atomic_load_n(&s->weight, __ATOMIC_RELAXED));
		}
	}
	ob_printf(o, "OK\n");
	return 0;
}

static int show_acl(struct daemon *d, int json, struct obuf *o)
{
	return acl_show(d->cf, json, o);
}

/* `acl deny|allow|del CIDR`: a run-time entry of the listener access lists (acl.h) */
static int acl_set(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	enum acl_op op = !strcmp(av[1], "deny")	   ? ACL_OP_DENY
			 : !strcmp(av[1], "allow") ? ACL_OP_ALLOW
						   : ACL_OP_DEL;
	char err[160];

	(void)d;
	(void)ac;
	if (acl_runtime(op, av[2], err, sizeof(err))) {
		ob_printf(o, "ERR %s\n", err);
		return 1;
	}
	log_info("control: acl %s %s", av[1], av[2]);
	if (json) {
		ob_printf(o, "{\"acl\":\"%s\",\"cidr\":", av[1]);
		ob_json_str(o, av[2]);
		ob_printf(o, ",\"enforced\":\"%s\"}\n", acl_kernel_on() ? "kernel" : "accept");
	}
	ob_printf(o, "OK\n");
	return 0;
}

/* err_stream - a stream an action writes its errors to (*buf once closed); NULL after
 * answering ERR when there is no memory for it */
static FILE *err_stream(char **buf, size_t *len, struct obuf *o)
{
	FILE *f = open_memstream(buf, len);

	if (!f)
		ob_printf(o, "ERR out of memory\n");
	return f;
}

static int do_reload(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *errf = err_stream(&buf, &len, o);
	int rc;

	(void)av;
	(void)ac;
	if (!errf)
		return 1;
	log_info("control: reloading %s", d->cf->file);
	rc = daemon_reload(d, errf);
	fclose(errf);
	if (json) {
		ob_printf(o, "{\"result\":\"%s\",\"generation\":%u,\"errors\":[",
			  rc ? "failed" : "ok", d->generation);
	}
	{
		char *save = NULL, *line;
		int first = 1;

		for (line = buf ? strtok_r(buf, "\n", &save) : NULL; line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (json) {
				ob_printf(o, "%s", first ? "" : ",");
				ob_json_str(o, line);
			} else {
				ob_printf(o, "%s\n", line);
			}
			first = 0;
		}
	}
	free(buf);
	if (json)
		ob_printf(o, "]}\n");
	if (rc) {
		ob_printf(o, "ERR reload failed, the running configuration is unchanged\n");
		return 1;
	}
	ob_printf(o, "OK\n");
	return 0;
}

/* log reopen: the access log file again by its name (after logrotate renamed it), as SIGUSR1 */
static int log_reopen(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *errf = err_stream(&buf, &len, o);
	int rc;

	(void)av;
	(void)ac;
	if (!errf)
		return 1;
	log_info("control: reopening the access log");
	rc = accesslog_reopen(d->cf, errf);
	fclose(errf);
	if (rc) {
		/* one line: the protocol's ERR ends the answer */
		for (char *p = buf; p && *p; p++)
			if (*p == '\n')
				*p = p[1] ? ' ' : '\0';
		log_warnx("%s", buf ? buf : "cannot reopen the access log");
		ob_printf(o, "ERR %s; the old file stays in use\n", buf ? buf : "cannot reopen");
		free(buf);
		return 1;
	}
	free(buf);
	if (json) {
		ob_printf(o, "{\"reopened\":");
		ob_json_str(o, d->cf->access_log[0] ? d->cf->access_log : "stderr");
		ob_printf(o, "}\n");
	}
	ob_printf(o, "OK\n");
	return 0;
}

/*
 * The commands: `[json] VERB [OBJECT] ARGS...`. A request runs the row whose verb and object
 * (NULL: none) it names, when it has min_words..max_words words ("json" not counted). A `show`
 * row builds a document (0, or -ENOMEM); control_execute() ends it with OK. A `run` row
 * answers the whole request, OK or ERR, and returns 0 or 1 (ERR written).
 */
static const struct ctl_cmd {
	const char *verb;
	const char *object;
	int min_words, max_words;
	const char *args; /* after the verb and object, for usage and help */
	int (*show)(struct daemon *d, int json, struct obuf *o);
	int (*run)(struct daemon *d, int json, char **av, int ac, struct obuf *o);
} cmds[] = {
	{"show", "info", 2, 2, .show = control_show_info},
	{"show", "pools", 2, 2, .show = control_show_pools},
	{"show", "servers", 2, 2, .show = control_show_servers},
	{"show", "routes", 2, 2, .show = control_show_routes},
	{"show", "connections", 2, 2, .show = control_show_connections},
	{"show", "stats", 2, 2, .show = control_show_stats},
	{"show", "config", 2, 2, .show = control_show_config},
	{"show", "acl", 2, 2, .show = show_acl},
	{"acl", "deny", 3, 3, .args = "CIDR", .run = acl_set},
	{"acl", "allow", 3, 3, .args = "CIDR", .run = acl_set},
	{"acl", "del", 3, 3, .args = "CIDR", .run = acl_set},
	{"server", "set", 5, 6, .args = "POOL SERVER weight N|drain|maintenance|ready",
	 .run = server_set},
	{"reload", NULL, 1, 1, .run = do_reload},
	{"log", "reopen", 2, 2, .run = log_reopen},
	{"help", NULL, 1, 1, .run = do_help},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* "show info|pools|servers|connections|stats", "server set POOL SERVER ...", "reload" */
static void verb_usage(struct obuf *o, const char *verb)
{
	const struct ctl_cmd *last = NULL;

	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS; c++) {
		if (strcmp(c->verb, verb))
			continue;
		if (!last)
			ob_printf(o, "%s", verb);
		if (c->object)
			ob_printf(o, "%s%s", last ? "|" : " ", c->object);
		last = c;
	}
	if (last && last->args)
		ob_printf(o, " %s", last->args);
}

/* the objects of a verb: "info, pools, servers, connections, stats" */
static void verb_objects(struct obuf *o, const char *verb)
{
	int n = 0;

	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS; c++)
		if (!strcmp(c->verb, verb) && c->object)
			ob_printf(o, "%s%s", n++ ? ", " : "", c->object);
}

static int do_help(struct daemon *d, int json, char **av, int ac, struct obuf *o)
{
	(void)d;
	(void)json;
	(void)av;
	(void)ac;
	ob_printf(o, "commands ([json ] before any of them answers in JSON):\n");
	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS; c++) {
		if (c > cmds && !strcmp(c[-1].verb, c->verb))
			continue; /* a verb's rows are together: one line for them */
		ob_printf(o, "  ");
		verb_usage(o, c->verb);
		ob_printf(o, "\n");
	}
	ob_printf(o, "OK\n");
	return 0;
}

/*
 * No row fits the request av[0..ac) whose verb has rows: say why. A verb without objects takes
 * no other form (its words are an unknown command); one with a choice of objects names them
 * when the object is the only thing wrong; anything else gets the verb's usage.
 */
static int no_fit(struct obuf *o, char **av, int ac)
{
	int objects = 0, fits = 0;

	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS; c++) {
		if (strcmp(c->verb, av[0]))
			continue;
		objects += c->object != NULL;
		fits |= ac >= c->min_words && ac <= c->max_words;
	}
	if (!objects) {
		ob_printf(o, "ERR unknown command '%.32s' (try 'help')\n", av[0]);
	} else if (objects > 1 && fits) {
		ob_printf(o, "ERR unknown object '%.32s' (", av[1]);
		verb_objects(o, av[0]);
		ob_printf(o, ")\n");
	} else {
		ob_printf(o, "ERR usage: ");
		verb_usage(o, av[0]);
		ob_printf(o, "\n");
	}
	return 1;
}

int control_execute(struct daemon *d, const char *line, struct obuf *o)
{
	char copy[CONTROL_LINE_MAX];
	char *av[MAX_ARGS], *save = NULL, *tok;
	const struct ctl_cmd *cmd = NULL;
	int ac = 0, json = 0, known = 0;

	for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p >= 0x7f) {
			ob_printf(o, "ERR control or non-ASCII character in the request\n");
			return 1;
		}
	}
	if (strlen(line) >= sizeof(copy)) {
		ob_printf(o, "ERR request too long\n");
		return 1;
	}
	strcpy(copy, line);
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (ac == MAX_ARGS) {
			ob_printf(o, "ERR too many arguments\n");
			return 1;
		}
		av[ac++] = tok;
	}
	if (ac && !strcmp(av[0], "json")) {
		json = 1;
		memmove(av, av + 1, (size_t)--ac * sizeof(av[0]));
	}
	if (!ac) {
		ob_printf(o, "ERR empty request (try 'help')\n");
		return 1;
	}
	for (const struct ctl_cmd *c = cmds; c < cmds + NCMDS && !cmd; c++) {
		if (strcmp(c->verb, av[0]))
			continue;
		known = 1;
		if ((!c->object || (ac > 1 && !strcmp(c->object, av[1]))) && ac >= c->min_words &&
		    ac <= c->max_words)
			cmd = c;
	}
	if (!known) {
		ob_printf(o, "ERR unknown command '%.32s' (try 'help')\n", av[0]);
		return 1;
	}
	if (!cmd)
		return no_fit(o, av, ac);
	if (cmd->run)
		return cmd->run(d, json, av, ac, o);
	if (cmd->show(d, json, o)) {
		ob_printf(o, "ERR out of memory\n");
		return 1;
	}
	if (o->failed)
		return 1; /* the caller answers ERR: the document was cut */
	ob_printf(o, "OK\n");
	return 0;
}

/* ---- clients ---- */

/* run the first complete line of cl->in, if any; 1 when one ran */
static int client_run_line(struct daemon *d, struct ctl_client *cl)
{
	char *nl = memchr(cl->in, '\n', cl->inlen);
	size_t n;

	if (!nl)
		return 0;
	*nl = '\0';
	n = (size_t)(nl - cl->in);
	if (n && cl->in[n - 1] == '\r')
		cl->in[n - 1] = '\0';
	{
		struct obuf ans = {0};

		/* an answer that does not fit whole becomes one ERR line */
		if (memchr(cl->in, '\0', n))
			ob_printf(&ans, "ERR control or non-ASCII character in the request\n");
		else
			control_execute(d, cl->in, &ans);
		if (ans.failed)
			ob_printf(&cl->a.out, "ERR answer too large or out of memory\n");
		else
			ob_put(&cl->a.out, ans.p, ans.len);
		ob_free(&ans);
	}
	memmove(cl->in, nl + 1, cl->inlen - n - 1);
	cl->inlen -= n + 1;
	return 1;
}

/* a busy client had its turn: watch it anew, so the edge-triggered registration reports it
 * again at once (it is writable) after the other fds of the main loop had theirs */
static void client_yield(struct daemon *d, struct ctl_client *cl)
{
	daemon_unwatch(d, cl->a.fd);
	if (daemon_watch(d, cl->a.fd, ADMIN_CLIENT_EVENTS, client_event, cl))
		admin_client_close(d, &cl->a);
}

static void client_event(struct daemon *d, int fd, uint32_t events, void *arg)
{
	struct ctl_client *cl = arg;
	unsigned budget = 64; /* lines run or reads done before other fds get a turn */

	(void)fd;
	cl->a.since_ms = clock_ms();
	if (events & EPOLLERR) {
		admin_client_close(d, &cl->a);
		return;
	}
	for (;; budget--) {
		int rc = ob_flush(&cl->a.out, cl->a.fd);

		if (rc == 0 && !budget) {
			client_yield(d, cl);
			return;
		}
		if (rc == -EAGAIN)
			return; /* EPOLLOUT (edge) brings us back */
		if (rc < 0 || cl->a.out.failed) {
			admin_client_close(d, &cl->a);
			return;
		}
		if (cl->closing && cl->discard) {
			char sink[4096];
			ssize_t r;

			if (cl->discard == 1) {
				shutdown(cl->a.fd, SHUT_WR);
				cl->discard = 2;
			}
			while ((r = recv(cl->a.fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0 &&
			       --budget)
				;
			if (r > 0) {
				client_yield(d, cl);
				return;
			}
			if (r == -1 && errno == EAGAIN)
				return; /* the idle timer ends it if the client never closes */
			admin_client_close(d, &cl->a);
			return;
		}
		if (cl->closing) {
			admin_client_close(d, &cl->a);
			return;
		}
		if (client_run_line(d, cl))
			continue;
		if (cl->eof) {
			cl->closing = 1;
			continue;
		}
		if (cl->inlen == sizeof(cl->in)) {
			ob_printf(&cl->a.out, "ERR request line too long (at most %u bytes)\n",
				  CONTROL_LINE_MAX - 1);
			cl->closing = 1; /* the rest of that line cannot be told from a request */
			cl->discard = 1;
			continue;
		}
		{
			ssize_t r = recv(cl->a.fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen,
					 MSG_DONTWAIT);

			if (r == -1) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					return;
				admin_client_close(d, &cl->a);
				return;
			}
			if (r == 0) {
				/* a last line without its newline still counts */
				if (cl->inlen && cl->inlen < sizeof(cl->in))
					cl->in[cl->inlen++] = '\n';
				cl->eof = 1;
				continue;
			}
			cl->inlen += (size_t)r;
		}
	}
}

/*
 * inherit_fd - the listening socket the old process handed down (ENV_FD), when it is a
 * listening unix socket bound to path; else -1 (a socket for another path is closed: it was
 * the old process's and nobody else uses it here).
 */
static int inherit_fd(const char *path)
{
	struct sockaddr_storage ss;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
	int fd = admin_inherit_fd(&C.srv, &ss);

	if (fd < 0)
		return -1;
	if (sun->sun_family != AF_UNIX || strncmp(sun->sun_path, path, sizeof(sun->sun_path))) {
		close(fd);
		return -1;
	}
	log_info("control socket %s inherited from the previous process", path);
	return fd;
}

/* ---- the listening socket ---- */

/* copy a socket path into a sun_path-sized buffer, truncating */
static void copy_path(char dst[sizeof(C.path)], const char *src)
{
	size_t n = strnlen(src, sizeof(C.path) - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* the directory must exist (one level is created) and must not be writable by others */
static int check_dir(const char *path, FILE *errf)
{
	char tmp[sizeof(C.path)];
	struct stat st;
	char *dir;

	copy_path(tmp, path);
	dir = dirname(tmp);
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || mkdir(dir, 0750) == -1 || stat(dir, &st) == -1) {
			int err = errno;

			report(errf, "control socket %s: directory %s: %s", path, dir,
			       strerror(err));
			return -err;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		report(errf, "control socket %s: %s is not a directory", path, dir);
		return -ENOTDIR;
	}
	if (st.st_mode & S_IWOTH) {
		report(errf,
		       "control socket %s: directory %s is writable by others (mode %04o): "
		       "refusing to serve the control socket there",
		       path, dir, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* a file at path: remove it when it is a socket nobody answers on; 0 or -errno */
static int clear_stale(const char *path, FILE *errf)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		report(errf, "control socket %s: the path exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (rc == 0 || errno == EAGAIN) {
		close(fd);
		report(errf, "control socket %s: another process is serving it", path);
		return -EADDRINUSE;
	}
	close(fd);
	if (errno != ECONNREFUSED) {
		report(errf, "control socket %s: %s", path, strerror(errno));
		return -EADDRINUSE;
	}
	if (unlink(path) == -1 && errno != ENOENT)
		return -errno;
	log_info("control socket %s: removed a stale socket", path);
	return 0;
}

void control_takeover(void)
{
	C.takeover = 1;
}

/*
 * open_socket - a listening socket at path. A live upgrade binds a temporary name beside it
 * and renames it over the old process's socket: clients always find one of the two, and the old
 * process keeps the clients it has. *st gets the socket file's identity.
 */
static int open_socket(const char *path, FILE *errf, struct stat *st)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int tmp = 0, fd, rc;
	mode_t old;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		report(errf, "control socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	rc = check_dir(path, errf);
	if (rc)
		return rc;
	if (C.takeover && snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.%d", path,
				   (int)getpid()) < (int)sizeof(sun.sun_path)) {
		tmp = 1;
		unlink(sun.sun_path);
	} else {
		rc = clear_stale(path, errf);
		if (rc)
			return rc;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto err;
	/* created 0660 from the start: no moment where others could connect; the main thread
	 * is the only one that creates files while it runs */
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc == -1)
		goto err_close;
	if (chmod(sun.sun_path, 0660) == -1 || listen(fd, 64) == -1 ||
	    (tmp && rename(sun.sun_path, path) == -1) || stat(path, st) == -1) {
		int err = errno;

		unlink(sun.sun_path);
		errno = err;
		goto err_close;
	}
	if (tmp)
		log_info("control socket %s taken over from the previous process", path);
	return fd;
err_close : {
	int err = errno;

	close(fd);
	errno = err;
}
err:
	rc = -errno;
	report(errf, "control socket %s: %s", path, strerror(-rc));
	return rc;
}

/* remove the socket file unless another process (a live upgrade) put its own there */
static void unlink_ours(void)
{
	struct stat st;

	if (stat(C.path, &st) == 0 && st.st_dev == C.dev && st.st_ino == C.ino)
		unlink(C.path);
}

int control_reconfigure(struct daemon *d, const struct config *old_cf, const struct config *new_cf,
			FILE *errf)
{
	const char *np = new_cf ? new_cf->control : "";
	struct stat st = {0};
	int fd = -1, rc;

	if (old_cf && !strcmp(old_cf->control, np) && (C.srv.lfd >= 0) == (np[0] != 0))
		return 0;
	if (np[0]) {
		fd = C.takeover && !old_cf ? inherit_fd(np) : -1;
		if (fd >= 0 && stat(np, &st) == -1)
			memset(&st, 0, sizeof(st));
		if (fd < 0)
			fd = open_socket(np, errf, &st);
		if (fd < 0)
			return fd;
		rc = admin_watch(d, &C.srv, fd);
		if (rc) {
			close(fd);
			unlink(np);
			report(errf, "control socket %s: %s", np, strerror(-rc));
			return rc;
		}
		admin_timer_start(d, &C.srv);
	}
	if (C.srv.lfd >= 0) {
		daemon_unwatch(d, C.srv.lfd);
		close(C.srv.lfd);
		if (strcmp(C.path, np))
			unlink_ours();
		log_info("control socket %s closed", C.path);
	}
	C.srv.lfd = fd;
	C.srv.paused = 0;
	C.dev = st.st_dev;
	C.ino = st.st_ino;
	admin_publish_fd(&C.srv, fd);
	copy_path(C.path, np); /* open_socket() checked that it fits */
	if (fd >= 0)
		log_info("control socket on %s", np);
	return 0;
}

void control_close(struct daemon *d)
{
	admin_close_all(d, &C.srv);
	if (C.srv.lfd >= 0) {
		if (!C.srv.paused)
			daemon_unwatch(d, C.srv.lfd);
		close(C.srv.lfd);
		/* after a live upgrade the new process serves the same socket file */
		if (!d->upgraded)
			unlink_ours();
		C.srv.lfd = -1;
		admin_publish_fd(&C.srv, -1);
	}
	admin_timer_stop(d, &C.srv);
}

const struct daemon_service control_service = {
	.name = "control socket",
	.addr_off = offsetof(struct config, control),
	.reconfigure = control_reconfigure,
	.takeover = control_takeover,
	.close = control_close,
};
