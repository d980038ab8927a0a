/* SPDX-License-Identifier: MIT */
/*
 * clock.h - the daemon's one clock: CLOCK_MONOTONIC in milliseconds (deadlines, timers, ages)
 * and microseconds (latencies). Every thread reads the same clock, so a time taken on one
 * thread compares with one taken on another.
 */
#ifndef SPLICED_CLOCK_H
#define SPLICED_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
