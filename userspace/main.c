// SPDX-License-Identifier: MIT
/*
 * main.c - command line, start-up order, signals.
 *
 * Start-up: parse + validate config (all errors) -> open access log -> load BPF, pin maps ->
 * bind every listener (one SO_REUSEPORT socket per worker, so bind errors are fatal before any
 * thread starts) -> start workers -> start the health thread -> publish stats every second
 * until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "health.h"
#include "log.h"
#include "tls.h"
#include "splice.h"
#include "worker.h"

#define SPLICED_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f, "usage: spliced -f FILE [-d] [-n] [-v...] [--no-splice] [--no-ktls] [-V] [-h]\n"
		   "  -f, --config FILE   configuration file\n"
		   "  -d, --foreground    stay in the foreground, log to stderr\n"
		   "  -n, --check         validate the configuration and exit\n"
		   "  -v, --verbose       more logging (repeat for libbpf messages)\n"
		   "      --no-splice     never use the BPF kernel data path\n"
		   "      --no-ktls       never hand TLS record crypto to the kernel\n"
		   "  -V, --version       print the version\n"
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

static int open_access_log(const struct config *cf)
{
	if (!strcmp(cf->access_log, "off"))
		return -1;
	if (!cf->access_log[0] || !strcmp(cf->access_log, "stderr"))
		return dup(STDERR_FILENO);
	return open(cf->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'f'},
		{"foreground", no_argument, NULL, 'd'},
		{"check", no_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"no-splice", no_argument, NULL, 'S'},
		{"no-ktls", no_argument, NULL, 'K'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct options opt = {0};
	struct config *cf;
	struct worker *workers;
	unsigned nworkers;
	sigset_t set;
	int ch, sig;

	while ((ch = getopt_long(argc, argv, "f:dnvVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			opt.config_file = optarg;
			break;
		case 'd':
			opt.foreground = 1;
			break;
		case 'n':
			opt.check_only = 1;
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
		case 'V':
			printf("spliced %s\n", SPLICED_VERSION);
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
	if (opt.check_only) {
		printf("configuration OK\n");
		conf_free(cf);
		return 0;
	}
	if (!opt.foreground && daemon(0, 0) == -1) {
		perror("daemon");
		return 1;
	}
	log_init(opt.foreground, opt.verbose);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);

	g_access_fd = open_access_log(cf);
	if (g_access_fd == -1 && strcmp(cf->access_log, "off"))
		fatal("cannot open access log %s", cf->access_log);

	splice_init(cf, opt.no_splice);
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

	/* block the signals before threads start so only this thread receives them */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	for (unsigned i = 0; i < nworkers; i++) {
		workers[i].id = i;
		workers[i].cf = cf;
		workers[i].opt = &opt;
		if (worker_listen(&workers[i]))
			fatalx("cannot start: listener address unavailable");
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
	log_info("spliced %s started: %u listener%s, %u pool%s, %u worker%s", SPLICED_VERSION,
		 cf->nlisteners, cf->nlisteners == 1 ? "" : "s", cf->npools,
		 cf->npools == 1 ? "" : "s", nworkers, nworkers == 1 ? "" : "s");
	for (unsigned i = 0; i < cf->nlisteners; i++)
		for (unsigned b = 0; b < cf->listeners[i].nbinds; b++)
			log_info("listener %s on %s", cf->listeners[i].name,
				 cf->listeners[i].binds[b].str);

	for (;;) {
		struct timespec ts = {.tv_sec = 1};

		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == -1) {
			splice_publish_stats(cf);
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			log_warnx("SIGHUP: configuration reload is not implemented yet; ignored");
		if (sig == SIGUSR2)
			log_warnx("SIGUSR2: live upgrade is not implemented yet; ignored");
	}
	log_info("signal %d: stopping", sig);
	if (g_tls_counters.handshakes)
		log_info("TLS: %llu handshakes, kTLS tx on %llu, rx on %llu, %llu closed for a "
			 "record kTLS could not follow",
			 g_tls_counters.handshakes, g_tls_counters.ktls_tx, g_tls_counters.ktls_rx,
			 g_tls_counters.ktls_closed);
	health_stop();
	for (unsigned i = 0; i < nworkers; i++)
		worker_stop(&workers[i]);
	free(workers);
	splice_fini();
	if (g_access_fd >= 0)
		close(g_access_fd);
	conf_free(cf);
	return 0;
}
