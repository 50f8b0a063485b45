/* test.h - a minimal test harness for the unit test executables.
 *
 * Each executable defines cases with TEST(name) and lists them in main via
 * RUN(name). A failed CHECK prints file:line and the expression and marks the
 * current case failed (the case returns). main ends with TEST_END(), which
 * prints "N passed, N failed" and returns 0, 1, or 77 when every case
 * skipped. SKIP("why") marks the current case skipped.
 */
#ifndef SL_TEST_H
#define SL_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed_, test_failed_, test_skipped_, test_cur_failed_, test_cur_skipped_;

#define TEST(name) static void test_##name(void)

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);              \
            test_cur_failed_ = 1;                                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__,         \
                    __LINE__, #a, #b, a_, b_);                                                     \
            test_cur_failed_ = 1;                                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define SKIP(why)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "  skipped: %s\n", why);                                                   \
        test_cur_skipped_ = 1;                                                                     \
        return;                                                                                    \
    } while (0)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        test_cur_failed_ = 0;                                                                      \
        test_cur_skipped_ = 0;                                                                     \
        fprintf(stderr, "- %s\n", #name);                                                          \
        test_##name();                                                                             \
        if (test_cur_failed_) {                                                                    \
            test_failed_++;                                                                        \
            fprintf(stderr, "  FAILED: %s\n", #name);                                              \
        } else if (test_cur_skipped_) {                                                            \
            test_skipped_++;                                                                       \
        } else {                                                                                   \
            test_passed_++;                                                                        \
        }                                                                                          \
    } while (0)

#define TEST_END()                                                                                 \
    do {                                                                                           \
        printf("%d passed, %d failed, %d skipped\n", test_passed_, test_failed_, test_skipped_);   \
        if (test_failed_ > 0) {                                                                    \
            return 1;                                                                              \
        }                                                                                          \
        return (test_passed_ == 0 && test_skipped_ > 0) ? 77 : 0;                                  \
    } while (0)

#endif
