/* SPDX-License-Identifier: MIT */
/*
 * test.h - tiny unit test harness (kernel selftests style): bool-returning ASSERT_* macros,
 * TAP output ("ok N - name" / "not ok N - name"), exit status 1 when any test failed.
 */
#ifndef SPLICED_TEST_H
#define SPLICED_TEST_H

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int test_failed_asserts;
static int test_count, test_fail_count;

#define ASSERT_TRUE(cond, fmt, ...)                                                             \
	({                                                                                      \
		int ___ok = !!(cond);                                                           \
		if (!___ok) {                                                                   \
			test_failed_asserts++;                                                  \
			fprintf(stderr, "# %s:%d: ASSERT_TRUE(%s) failed: " fmt "\n", __FILE__, \
				__LINE__, #cond, ##__VA_ARGS__);                                \
		}                                                                               \
		___ok;                                                                          \
	})

#define ASSERT_EQ(a, b, what)                                                                 \
	({                                                                                    \
		long long ___a = (long long)(a), ___b = (long long)(b);                       \
		int ___ok = ___a == ___b;                                                     \
		if (!___ok) {                                                                 \
			test_failed_asserts++;                                                \
			fprintf(stderr, "# %s:%d: %s: %s == %lld, expected %lld\n", __FILE__, \
				__LINE__, what, #a, ___a, ___b);                              \
		}                                                                             \
		___ok;                                                                        \
	})

#define ASSERT_STREQ(a, b, what)                                                               \
	({                                                                                     \
		const char *___a = (a), *___b = (b);                                           \
		int ___ok = ___a && ___b && strcmp(___a, ___b) == 0;                           \
		if (!___ok) {                                                                  \
			test_failed_asserts++;                                                 \
			fprintf(stderr, "# %s:%d: %s: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
				what, ___a ? ___a : "(null)", ___b ? ___b : "(null)");         \
		}                                                                              \
		___ok;                                                                         \
	})

/* RUN_TEST(fn): run one test function, print its TAP line. */
#define RUN_TEST(fn)                                                 \
	do {                                                         \
		int ___before = test_failed_asserts;                 \
		fn();                                                \
		test_count++;                                        \
		if (test_failed_asserts != ___before) {              \
			test_fail_count++;                           \
			printf("not ok %d - %s\n", test_count, #fn); \
		} else {                                             \
			printf("ok %d - %s\n", test_count, #fn);     \
		}                                                    \
	} while (0)

/* TEST_MAIN_END: print the TAP plan and return the exit status. */
#define TEST_DONE()                            \
	({                                     \
		printf("1..%d\n", test_count); \
		test_fail_count ? 1 : 0;       \
	})

#endif
