// SPDX-License-Identifier: MIT
/*
 * main.c - command line, start-up order, signals.
 *
 * Start-up: parse + validate config (all errors) -> prepare it (TLS
 * contexts) -> open access log -> load BPF, pin maps ->
 * bind every listener (one SO_REUSEPORT socket per worker, so bind errors are fatal before any
 * thread starts) -> start workers -> start the health thread -> the main thread's event loop
 * (daemon.c), where this file watches a signalfd (reload, upgrade, log reopen, drain, stop) and
 * a 1 s tick
 * that publishes stats, next to the fds other modules watch.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "buildinfo.h"
#include "clock.h"
#include "conf.h"
#include "daemon.h"
#include "acl.h"
#include "health.h"
#include "limit_table.h"
#include "log.h"
#include "privdrop.h"
#include "tls.h"
#include "upgrade.h"
#include "splice.h"
#include "version.h"
#include "worker.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: spliced -f FILE [-d] [-n] [-T] [-P FILE] [-v...] [--no-splice] [--no-ktls] "
		"[--no-kernel-acl] [-V] [-h]\n"
		"  -f, --config FILE   configuration file\n"
		"  -d, --foreground    stay in the foreground, log to stderr\n"
		"  -P, --pid-file FILE write the pid there (overrides pid_file)\n"
		"  -n, --check         validate the configuration and exit\n"
		"  -T, --print-config  validate it, print it with every default filled in, exit\n"
		"  -v, --verbose       more logging (repeat for libbpf messages)\n"
		"      --no-splice     never use the BPF kernel data path\n"
		"      --no-ktls       never hand TLS record crypto to the kernel\n"
		"      --no-kernel-acl enforce listener allow/deny after accept, not in the kernel\n"
		"  -V, --version       print the version, build flags, kernel features, exit\n"
		"  -h, --help          this text\n");
}

static void raise_nofile(void)
{
	struct rlimit rl;

	/* two sockets and up to four pipe fds per connection */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* the parent of a daemonized start waits for this: 1 byte once serving, EOF on failure */
static int ready_fd = -1;

/* daemonize - fork; the parent exits 0 only once the child serves (pid file written), so a
 * service manager that reads the pid file after the parent exits (Type=forking) finds it */
static int daemonize(void)
{
	int p[2], devnull;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		perror("spliced: fork");
		return -1;
	}
	if (pid > 0) {
		char ok;

		close(p[1]);
		_exit(read(p[0], &ok, 1) == 1 ? 0 : 1);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
	if (chdir("/") == -1)
		return -1;
	devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		dup2(devnull, STDERR_FILENO);
		if (devnull > STDERR_FILENO)
			close(devnull);
	}
	return 0;
}

static void write_pid_file(const struct config *cf)
{
	char buf[32];
	int fd, n;

	if (!cf->pid_file[0])
		return;
	fd = open(cf->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (fd == -1 || write(fd, buf, (size_t)n) != n)
		log_warn("cannot write the pid file %s", cf->pid_file);
	if (fd >= 0)
		close(fd);
}

enum { RUN, DRAIN, STOP };

/* what the signals of the last batch of events asked for (on_signal) */
static int signalled = RUN;

static void on_signal(struct daemon *d, int sfd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
			if (d->stopping) {
				log_info("SIGTERM again: stopping now");
				signalled = STOP;
				return;
			}
			signalled = DRAIN;
			break;
		case SIGINT:
			log_info("SIGINT: stopping now");
			signalled = STOP;
			return;
		case SIGHUP:
			if (d->stopping) {
				log_warnx("SIGHUP while stopping: ignored");
				break;
			}
			log_info("SIGHUP: reloading %s", d->cf->file);
			daemon_reload(d, NULL);
			break;
		case SIGUSR2:
			upgrade_start(d, d->argv);
			break;
		case SIGUSR1:
			/* logrotate renamed the file (and made a new one): write to that */
			log_info("SIGUSR1: reopening the access log");
			if (accesslog_reopen(d->cf, NULL))
				log_warnx(
					"cannot reopen the access log: the old file stays in use");
			break;
		}
	}
}

/* drain_start - graceful stop: workers stop accepting and keep-alive; in-flight requests and
 * tunnels get until drain_timeout */
static void drain_start(struct daemon *d)
{
	d->stopping = 1;
	d->drain_deadline_ms = clock_ms() + d->cf->drain_timeout_ms;
	log_info("SIGTERM: stopping: no new connections, %u open finish their requests "
		 "(up to %u ms)",
		 atomic_load(&g_nconns), d->cf->drain_timeout_ms);
	for (unsigned i = 0; i < d->nworkers; i++) {
		atomic_store(&d->workers[i].draining, 1);
		worker_wake(&d->workers[i]);
	}
}

static void on_tick(struct daemon *d, int tfd, uint32_t events, void *arg)
{
	uint64_t n;

	(void)events;
	(void)arg;
	(void)!read(tfd, &n, sizeof(n));
	splice_publish_stats(d->cf);
}

/* main_loop - run until SIGINT, or SIGTERM and the drain */
static void main_loop(struct daemon *d)
{
	for (;;) {
		signalled = RUN;
		daemon_loop_once(d, d->stopping || d->upgrading ? 50 : -1);
		if (signalled == STOP)
			return;
		if (signalled == DRAIN)
			drain_start(d);
		if (d->upgrading && upgrade_poll(d))
			return; /* everything is in the new process */
		if (d->stopping) {
			unsigned left = atomic_load(&g_nconns);

			if (!left) {
				log_info("drained: every connection finished");
				return;
			}
			if (clock_ms() >= d->drain_deadline_ms) {
				log_info("drain timeout: closing %u connection%s", left,
					 left == 1 ? "" : "s");
				return;
			}
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'f'},
		{"foreground", no_argument, NULL, 'd'},
		{"pid-file", required_argument, NULL, 'P'},
		{"check", no_argument, NULL, 'n'},
		{"print-config", no_argument, NULL, 'T'},
		{"verbose", no_argument, NULL, 'v'},
		{"no-splice", no_argument, NULL, 'S'},
		{"no-ktls", no_argument, NULL, 'K'},
		{"no-kernel-acl", no_argument, NULL, 'A'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{"dump-keywords", no_argument, NULL, 'D'},
		{NULL, 0, NULL, 0},
	};
	static struct options opt;
	struct daemon *d = &g_daemon;
	struct config *cf;
	struct worker *workers;
	unsigned nworkers;
	sigset_t set;
	int ch, sfd, tfd, upfd = upgrade_inherited_fd(), print_config = 0;

	while ((ch = getopt_long(argc, argv, "f:dnTP:vVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'P':
			if (optarg[0] != '/' || strlen(optarg) >= PATH_MAX) {
				fprintf(stderr, "spliced: --pid-file needs an absolute path\n");
				return 2;
			}
			opt.pid_file = optarg;
			break;
		case 'f':
			opt.config_file = optarg;
			break;
		case 'd':
			opt.foreground = 1;
			break;
		case 'n':
			opt.check_only = 1;
			break;
		case 'T':
			opt.check_only = print_config = 1;
			break;
		case 'v':
			opt.verbose++;
			break;
		case 'S':
			opt.no_splice = 1;
			break;
		case 'K':
			opt.no_ktls = 1;
			break;
		case 'A':
			opt.no_kernel_acl = 1;
			break;
		case 'D': /* hidden: the configuration keywords, for tests/e2e/docs.bats */
			conf_dump_keywords(stdout);
			return 0;
		case 'V':
			buildinfo_print(stdout);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !opt.config_file) {
		usage(stderr);
		return 2;
	}
	cf = conf_load(opt.config_file, stderr);
	if (!cf)
		return 1;
	/* certificates are checked here, so -n reports them too */
	if (tls_prepare(cf, stderr)) {
		conf_free(cf);
		return 1;
	}
	if (opt.pid_file)
		snprintf(cf->pid_file, sizeof(cf->pid_file), "%s", opt.pid_file);
	if (print_config) {
		printf("# %s, every default filled in (spliced -T)\n", cf->file);
		conf_print(stdout, cf);
		conf_free(cf);
		return fflush(stdout) ? 1 : 0;
	}
	if (opt.check_only) {
		printf("configuration OK\n");
		conf_free(cf);
		return 0;
	}
	if (!opt.foreground && daemonize())
		return 1;
	log_init(opt.foreground, opt.verbose);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);

	d->opt = &opt;
	d->argv = argv;
	d->cf = cf;
	d->generation = 1;
	d->start_ms = clock_ms();
	d->start_wall = time(NULL);
	conf_ref(cf);
	{
		ssize_t len = readlink("/proc/self/exe", d->exe, sizeof(d->exe) - 1);

		d->exe[len > 0 ? len : 0] = '\0';
	}
	if (daemon_loop_init(d))
		fatal("epoll_create1");

	{
		int rc = accesslog_open(cf);

		if (rc) {
			errno = -rc;
			fatal("cannot open access log %s", cf->access_log);
		}
	}

	{
		char why[128];

		if (tls_ktls_init(opt.no_ktls, why, sizeof(why)))
			log_info("kTLS: available");
		else if (opt.no_ktls)
			log_info("kTLS: off (--no-ktls), TLS record crypto in userspace");
		else
			log_info("kTLS: unavailable (%s), TLS record crypto in userspace", why);
	}

	nworkers = cf->workers ? cf->workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (!nworkers)
		nworkers = 1;
	workers = calloc(nworkers, sizeof(*workers));
	if (!workers)
		fatalx("out of memory");
	d->workers = workers;
	d->nworkers = nworkers;

	/* block the signals before threads start so only the signalfd receives them */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (sfd == -1 || tfd == -1)
		fatal("signalfd/timerfd");
	{
		struct itimerspec its = {.it_interval = {.tv_sec = 1}, .it_value = {.tv_sec = 1}};
		int rc;

		timerfd_settime(tfd, 0, &its, NULL);
		rc = daemon_watch(d, sfd, EPOLLIN, on_signal, NULL);
		if (!rc)
			rc = daemon_watch(d, tfd, EPOLLIN, on_tick, NULL);
		if (rc) {
			errno = -rc;
			fatal("epoll_ctl");
		}
	}

	for (unsigned i = 0; i < nworkers; i++) {
		workers[i].id = i;
		workers[i].cf = cf;
		workers[i].opt = &opt;
	}
	/* the shared `limit` table: sized once (a reload cannot change limit_table_size) */
	if (limit_table_init(cf->limit_table_size))
		fatalx("out of memory for the limit table (limit_table_size %u)",
		       cf->limit_table_size);
	if (upfd >= 0) {
		/* live upgrade: maps and listening sockets come from the running process */
		if (upgrade_receive(d, upfd))
			fatalx("upgrade: cannot take over; the old process keeps serving");
	} else {
		splice_init(cf, opt.no_splice);
		/* before the listeners: each one gets the filter as it opens */
		acl_init(cf, opt.no_splice || opt.no_kernel_acl, 0);
		for (unsigned i = 0; i < nworkers; i++)
			if (worker_listen(&workers[i]))
				fatalx("cannot start: listener address unavailable");
	}
	/* before any thread starts, like the listeners: an unusable socket is fatal; a live
	 * upgrade takes over the old process's control socket and metrics address */
	for (const struct daemon_service *const *sv = daemon_services; *sv; sv++) {
		if (upfd >= 0)
			(*sv)->takeover();
		if ((*sv)->reconfigure(d, NULL, cf, NULL))
			fatalx("cannot start: %s %s unusable", (*sv)->name,
			       (const char *)cf + (*sv)->addr_off);
	}
	write_pid_file(cf);
	/* everything that needs root is open: become `user` before any thread starts */
	if (privdrop(cf, accesslog_file_fd(), cf->control))
		fatalx("cannot drop privileges to user '%s'", cf->user);
	{
		int rc = accesslog_start();

		if (rc) {
			errno = -rc;
			fatal("cannot start the access log thread");
		}
	}
	for (unsigned i = 0; i < nworkers; i++) {
		int rc = worker_start(&workers[i]);

		if (rc) {
			errno = -rc;
			fatal("cannot start worker %u", i);
		}
	}
	{
		int rc = health_start(cf);

		if (rc) {
			errno = -rc;
			fatal("cannot start the health checks");
		}
	}
	log_info("spliced %s started: %u listener%s, %u pool%s, %u worker%s, pid %d",
		 SPLICED_VERSION, cf->nlisteners, cf->nlisteners == 1 ? "" : "s", cf->npools,
		 cf->npools == 1 ? "" : "s", nworkers, nworkers == 1 ? "" : "s", (int)getpid());
	for (unsigned i = 0; i < cf->nlisteners; i++)
		for (unsigned b = 0; b < cf->listeners[i].nbinds; b++)
			log_info("listener %s on %s", cf->listeners[i].name,
				 cf->listeners[i].binds[b].str);

	if (upfd >= 0 && upgrade_ready(d, upfd))
		fatalx("upgrade: the old process went away");
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "", 1);
		close(ready_fd);
		ready_fd = -1;
	}
	main_loop(d);

	d->stopping = 1;
	if (g_tls_counters.handshakes)
		log_info("TLS: %llu handshakes, kTLS tx on %llu, rx on %llu, %llu closed for a "
			 "record kTLS could not follow",
			 g_tls_counters.handshakes, g_tls_counters.ktls_tx, g_tls_counters.ktls_rx,
			 g_tls_counters.ktls_closed);
	for (const struct daemon_service *const *sv = daemon_services; *sv; sv++)
		(*sv)->close(d);
	health_stop();
	for (unsigned i = 0; i < nworkers; i++)
		worker_stop(&workers[i]);
	free(workers);
	acl_fini(d->upgraded);
	splice_fini(d->upgraded);
	/* after an upgrade the file names the new process */
	if (d->cf->pid_file[0] && !d->upgraded)
		unlink(d->cf->pid_file);
	accesslog_close();
	conf_unref(d->cf);
	daemon_loop_close(d);
	close(sfd);
	close(tfd);
	return 0;
}
