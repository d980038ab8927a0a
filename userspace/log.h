/* SPDX-License-Identifier: MIT */
/* log.h - diagnostics (relayd style): stderr in the foreground, syslog otherwise. */
#ifndef SPLICED_LOG_H
#define SPLICED_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_WARN = 0, LOG_LVL_INFO = 1, LOG_LVL_DEBUG = 2 };

/* log_init - foreground: write to stderr; else syslog. verbose: 0 warn+info, 1 +debug. */
void log_init(int foreground, int verbose);
int log_verbosity(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* + strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* libbpf print callback, routed one level quieter than our own messages. */
int log_libbpf(int level, const char *fmt, va_list ap);

#endif
