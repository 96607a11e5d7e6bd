/* test.h — a minimal test harness for dwell's C tests.
 *
 *   TEST(gguf_rejects_bad_magic) { ... CHECK(x == 1); CHECK_EQ_INT(a, b); ... }
 *   int main(void) { RUN(gguf_rejects_bad_magic); return test_summary(); }
 *
 * Each failed check prints file:line and the expression; test_summary prints
 * "N passed, N failed" and returns the exit code. */
#ifndef DWELL_TEST_H
#define DWELL_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_n_pass, test_n_fail, test_cur_failed;

#define TEST(name) static void test_##name(void)
#define RUN(name)                                                         \
    do {                                                                  \
        test_cur_failed = 0;                                              \
        test_##name();                                                    \
        if (test_cur_failed) {                                            \
            test_n_fail++;                                                \
            printf("FAIL %s\n", #name);                                   \
        } else {                                                          \
            test_n_pass++;                                                \
            printf("ok   %s\n", #name);                                   \
        }                                                                 \
        fflush(stdout);                                                   \
    } while (0)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            test_cur_failed = 1;                                              \
        }                                                                     \
    } while (0)

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        if (!(cond)) {                                                        \
            printf("  %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            printf(__VA_ARGS__);                                              \
            printf("\n");                                                     \
            test_cur_failed = 1;                                              \
        }                                                                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                              \
    do {                                                                                \
        long long test_a_ = (long long)(a), test_b_ = (long long)(b);                   \
        if (test_a_ != test_b_) {                                                       \
            printf("  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a,  \
                   #b, test_a_, test_b_);                                               \
            test_cur_failed = 1;                                                        \
        }                                                                               \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                              \
    do {                                                                                \
        const char *test_a_ = (a), *test_b_ = (b);                                      \
        if (!test_a_ || !test_b_ || strcmp(test_a_, test_b_) != 0) {                    \
            printf("  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__,  \
                   #a, #b, test_a_ ? test_a_ : "(null)", test_b_ ? test_b_ : "(null)"); \
            test_cur_failed = 1;                                                        \
        }                                                                               \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                     \
    do {                                                                                \
        const char *test_h_ = (hay), *test_n_ = (needle);                               \
        if (!test_h_ || !strstr(test_h_, test_n_)) {                                    \
            printf("  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,     \
                   test_h_ ? test_h_ : "(null)", test_n_);                              \
            test_cur_failed = 1;                                                        \
        }                                                                               \
    } while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", test_n_pass, test_n_fail);
    return test_n_fail ? 1 : 0;
}

/* The shared test assets folder (DWELL_SHARED); a missing one fails the test. */
static inline const char *test_shared(void)
{
    const char *s = getenv("DWELL_SHARED");
    if (!s || !*s) {
        printf("DWELL_SHARED is not set: run the tests through ctest\n");
        exit(1);
    }
    return s;
}

/* "<DWELL_SHARED>/<rel>" in a static buffer (one at a time). */
static inline const char *test_shared_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", test_shared(), rel);
    return buf;
}

#endif
