/* The thread pool (every ith runs exactly once per run, across many runs, with and without
 * the workers falling asleep in between), kern_default_threads, and kern_matmul/kern_get_row
 * against a naive product. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "test.h"

#define MAX_T 8

typedef struct {
    atomic_int count[MAX_T];
    atomic_int bad_nth;
    int want_nth;
} count_arg;

static void count_task(void *arg, int ith, int nth)
{
    count_arg *c = arg;
    if (nth != c->want_nth || ith < 0 || ith >= nth) {
        atomic_fetch_add(&c->bad_nth, 1);
        return;
    }
    atomic_fetch_add(&c->count[ith], 1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

TEST(pool_runs_every_ith_once)
{
    static const int sizes[] = {1, 2, 3, 4};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        kern_pool *p = NULL;
        core_err err;
        CHECK_EQ_INT(kern_pool_new(&p, sizes[s], &err), CORE_OK);
        if (!p) continue;
        CHECK_EQ_INT(kern_pool_size(p), sizes[s]);
        count_arg c;
        memset(&c, 0, sizeof c);
        c.want_nth = sizes[s];
        enum { RUNS = 3000 };
        for (int r = 0; r < RUNS; r++) {
            kern_pool_run(p, count_task, &c);
            /* after each run every ith has run exactly r + 1 times */
            for (int i = 0; i < sizes[s]; i++) {
                if (atomic_load(&c.count[i]) != r + 1) {
                    CHECK_MSG(0, "pool %d run %d: ith %d ran %d times", sizes[s], r, i,
                              atomic_load(&c.count[i]));
                    r = RUNS;
                    break;
                }
            }
            if (r % 500 == 499) sleep_ms(3); /* let the workers go to sleep */
        }
        CHECK_EQ_INT(atomic_load(&c.bad_nth), 0);
        kern_pool_free(p);
    }
    kern_pool_free(NULL);
}

TEST(pool_wakes_after_sleep)
{
    kern_pool *p = NULL;
    CHECK_EQ_INT(kern_pool_new(&p, 3, NULL), CORE_OK);
    count_arg c;
    memset(&c, 0, sizeof c);
    c.want_nth = 3;
    for (int r = 0; r < 10; r++) {
        sleep_ms(2); /* longer than the spin: workers are asleep on the condvar */
        kern_pool_run(p, count_task, &c);
    }
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(atomic_load(&c.count[i]), 10);
    kern_pool_free(p);
}

TEST(pool_bad_sizes)
{
    kern_pool *p = (kern_pool *)1;
    core_err err;
    CHECK_EQ_INT(kern_pool_new(&p, 0, &err), CORE_INVALID);
    CHECK(p == NULL);
    CHECK_CONTAINS(err.msg, "threads");
    CHECK_EQ_INT(kern_pool_new(&p, 100000, &err), CORE_INVALID);
    int n = kern_default_threads();
    CHECK(n >= 1 && n <= 4096);
}

/* kern_default_threads honours a cgroup v2 cpu.max quota (a fake tree via DWELL_CGROUP_ROOT). */
TEST(default_threads_cgroup_quota)
{
    char dir[] = "/tmp/dwell-kern-cg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/cpu.max", dir);
    const char *old = getenv("DWELL_CGROUP_ROOT");
    char *saved = old ? strdup(old) : NULL;
    setenv("DWELL_CGROUP_ROOT", dir, 1);
    int base = kern_default_threads(); /* no cpu.max yet: the affinity count */
    CHECK(base >= 1);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("50000 100000\n", f); /* half a CPU: still one thread */
        fclose(f);
        CHECK_EQ_INT(kern_default_threads(), 1);
    }
    f = fopen(path, "w");
    if (f) {
        fputs("max 100000\n", f);
        fclose(f);
        CHECK_EQ_INT(kern_default_threads(), base);
    }
    f = fopen(path, "w");
    if (f) {
        fputs("100000000 100000\n", f); /* 1000 CPUs: capped by the affinity count */
        fclose(f);
        CHECK_EQ_INT(kern_default_threads(), base);
    }
    f = fopen(path, "w");
    if (f) {
        fputs("garbage\n", f);
        fclose(f);
        CHECK_EQ_INT(kern_default_threads(), base);
    }
    remove(path);
    rmdir(dir);
    if (saved) setenv("DWELL_CGROUP_ROOT", saved, 1);
    else unsetenv("DWELL_CGROUP_ROOT");
    free(saved);
}

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

TEST(matmul_matches_naive)
{
    static const int types[] = {CORE_TYPE_F32, CORE_TYPE_F16, CORE_TYPE_Q8_0, CORE_TYPE_Q4_0,
                                CORE_TYPE_Q5_1, CORE_TYPE_Q4_K, CORE_TYPE_Q6_K};
    static const int64_t outs[] = {1, 37, 100};
    kern_pool *p2 = NULL, *p3 = NULL;
    CHECK_EQ_INT(kern_pool_new(&p2, 2, NULL), CORE_OK);
    CHECK_EQ_INT(kern_pool_new(&p3, 3, NULL), CORE_OK);
    const int64_t n_in = 512, n_tok = 5;
    float *wf = malloc(sizeof(float) * n_in * 100), *x = malloc(sizeof(float) * n_in * n_tok);
    float *y = malloc(sizeof(float) * 100 * n_tok), *row = malloc(sizeof(float) * n_in);
    uint8_t *wq = malloc((size_t)n_in * 100 * 4);
    for (int64_t i = 0; i < n_in * 100; i++) wf[i] = frand();
    for (int64_t i = 0; i < n_in * n_tok; i++) x[i] = frand();
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const kern_traits *t = kern_traits_get(types[ti]);
        size_t rb = (size_t)(n_in / t->blck_size) * t->type_size;
        for (int64_t o = 0; o < 100; o++) t->from_float(wf + o * n_in, wq + o * rb, n_in);
        for (size_t oi = 0; oi < sizeof outs / sizeof outs[0]; oi++) {
            int64_t n_out = outs[oi];
            kern_pool *pools[3] = {NULL, p2, p3};
            for (int pi = 0; pi < 3; pi++) {
                for (int64_t k = 0; k < n_out * n_tok; k++) y[k] = NAN;
                kern_matmul(pools[pi], types[ti], wq, rb, n_in, n_out, x, n_tok, y);
                int bad = 0;
                for (int64_t o = 0; o < n_out; o++) {
                    kern_get_row(types[ti], wq, rb, n_in, o, row);
                    for (int64_t k = 0; k < n_tok; k++) {
                        double want = 0, mag = 0;
                        for (int64_t i = 0; i < n_in; i++) {
                            want += (double)row[i] * x[k * n_in + i];
                            mag += fabs((double)row[i] * x[k * n_in + i]);
                        }
                        float got = y[k * n_out + o];
                        /* the pool only splits rows: bit-identical to one dot call */
                        float one = t->dot_f32(n_in, wq + o * rb, x + k * n_in);
                        if (!(fabs(got - want) <= 1e-5 * mag) || got != one) bad++;
                    }
                }
                CHECK_MSG(bad == 0, "%s n_out %lld pool %d: %d wrong", t->name,
                          (long long)n_out, pi, bad);
            }
        }
    }
    free(wf), free(x), free(y), free(row), free(wq);
    kern_pool_free(p2);
    kern_pool_free(p3);
}

TEST(get_row_dequantizes_the_row)
{
    const kern_traits *t = kern_traits_ref(CORE_TYPE_Q8_0);
    float w[3 * 64], dst[64], want[64];
    uint8_t q[3 * 68];
    for (int i = 0; i < 3 * 64; i++) w[i] = (float)i;
    t->from_float(w, q, 3 * 64);
    kern_get_row(CORE_TYPE_Q8_0, q, 68, 64, 2, dst);
    t->to_float(q + 2 * 68, want, 64);
    CHECK(memcmp(dst, want, sizeof dst) == 0);
    CHECK(fabsf(dst[0] - 128.0f) < 1.0f && fabsf(dst[63] - 191.0f) < 1.0f);
}

int main(void)
{
    RUN(pool_runs_every_ith_once);
    RUN(pool_wakes_after_sleep);
    RUN(pool_bad_sizes);
    RUN(default_threads_cgroup_quota);
    RUN(matmul_matches_naive);
    RUN(get_row_dequantizes_the_row);
    return test_summary();
}
