/* Every SIMD dot kernel against its scalar reference: random quantized rows, rows of random
 * bytes (every bit pattern of the codes and packed scales, with finite f16 scales), all-zero
 * rows and activations, the largest f16 scales, and odd block counts / lengths that leave a
 * scalar tail. The tolerance is f32 reassociation only: the SIMD kernels dequantize to the
 * same weights bit for bit and differ from the reference only in the order of the sums. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/internal.h"
#include "test.h"

/* |simd - ref| <= TOL * sum |w * x|, named per type (all f32 reassociation). */
#define TOL_F32 1e-5
#define TOL_F16 1e-5
#define TOL_BF16 1e-5
#define TOL_Q8_0 1e-5
#define TOL_Q4_0 1e-5
#define TOL_Q4_K 1e-5
#define TOL_Q6_K 1e-5
#define TOL_Q4_1 1e-5
#define TOL_Q5_0 1e-5
#define TOL_Q5_1 1e-5
#define TOL_Q5_K 1e-5

typedef struct {
    int type;
    const char *isa;
    kern_dot_f32_fn fn;
    double tol;
} simd_case;

static uint64_t rng = 0x853C49E6748FEA9Bull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float frand(void)
{
    return (float)((rnd() >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

/* A random finite f16 in [-2^e, 2^e]. */
static uint16_t rand_f16(int e)
{
    return kern_f32_to_f16(ldexpf(frand(), e));
}

/* Byte offsets of the f16 scale fields in a block of type (count in *n). */
static const int *f16_fields(int type, int *n)
{
    static const int at0[] = {0}, at02[] = {0, 2}, q2k[] = {80, 82}, q3k[] = {108},
                     q6k[] = {208};
    *n = 1;
    switch (type) {
    case CORE_TYPE_Q4_0: case CORE_TYPE_Q5_0: case CORE_TYPE_Q8_0: return at0;
    case CORE_TYPE_Q2_K: *n = 2; return q2k;
    case CORE_TYPE_Q3_K: return q3k;
    case CORE_TYPE_Q6_K: return q6k;
    case CORE_TYPE_Q4_1: case CORE_TYPE_Q5_1: case CORE_TYPE_Q4_K: case CORE_TYPE_Q5_K:
        *n = 2;
        return at02;
    default: *n = 0; return at0;
    }
}

/* Overwrites every element (plain types) or every f16 scale field (block types): `big` sets
 * the largest finite magnitudes, otherwise random finite values. */
static void fix_scales(int type, uint8_t *row, int64_t n, bool big)
{
    const kern_traits *t = kern_traits_ref(type);
    int n_f;
    const int *off = f16_fields(type, &n_f);
    int e = type == CORE_TYPE_Q4_K || type == CORE_TYPE_Q2_K ? -4 : 0;
    for (int64_t b = 0; b < n / t->blck_size; b++) {
        uint8_t *p = row + (size_t)b * t->type_size;
        uint16_t h;
        if (type == CORE_TYPE_F32) {
            float v = big ? ((b & 1) ? -3e38f : 3e38f) : frand() * 100.0f;
            memcpy(p, &v, 4);
        } else if (type == CORE_TYPE_BF16) {
            h = big ? ((b & 1) ? 0xFF7F : 0x7F7F) : kern_f32_to_bf16(frand() * 100.0f);
            memcpy(p, &h, 2);
        } else if (type == CORE_TYPE_F16) {
            h = big ? ((b & 1) ? 0xFBFF : 0x7BFF) : rand_f16(4);
            memcpy(p, &h, 2);
        }
        for (int k = 0; k < n_f; k++) {
            h = big ? ((b & 1) ? 0xFBFF : 0x7BFF) : rand_f16(e);
            memcpy(p + off[k], &h, 2);
        }
    }
}

/* Random bytes with every f16 scale field replaced by a finite value. */
static void random_bytes_row(int type, uint8_t *row, int64_t n)
{
    const kern_traits *t = kern_traits_ref(type);
    size_t size = (size_t)(n / t->blck_size) * t->type_size;
    for (size_t i = 0; i < size; i++) row[i] = (uint8_t)rnd();
    fix_scales(type, row, n, false);
}

/* The largest scales: every f16 scale +-65504, all code bits set. */
static void max_scale_row(int type, uint8_t *row, int64_t n)
{
    const kern_traits *t = kern_traits_ref(type);
    memset(row, 0xFF, (size_t)(n / t->blck_size) * t->type_size);
    fix_scales(type, row, n, true);
}

static int check_one(const simd_case *c, const uint8_t *row, const float *x, int64_t n,
                     const char *what)
{
    const kern_traits *t = kern_traits_ref(c->type);
    static float w[16384];
    t->to_float(row, w, n);
    double mag = 0;
    for (int64_t i = 0; i < n; i++) mag += fabs((double)w[i] * x[i]);
    float ref = t->dot_f32(n, row, x), got = c->fn(n, row, x);
    if (!(fabs((double)got - ref) <= c->tol * mag) && !(isinf(ref) && got == ref)) {
        CHECK_MSG(0, "%s %s %s n=%lld: %.9g, ref %.9g (sum|wx| %.3g)", t->name, c->isa, what,
                  (long long)n, got, ref, mag);
        return 1;
    }
    return 0;
}

static void run_case(const simd_case *c)
{
    const kern_traits *t = kern_traits_ref(c->type);
    static uint8_t row[16384 * 4];
    static float x[16384], src[16384];
    int64_t bs = t->blck_size;
    /* block counts: 1, 3, 7 (odd), 33, and a long row; plain types also get ragged tails */
    int64_t lens[8] = {bs, 3 * bs, 7 * bs, 33 * bs, 8192};
    int n_lens = 5;
    if (bs == 1) {
        lens[5] = 13, lens[6] = 31, lens[7] = 1001;
        n_lens = 8;
    }
    int fails = 0;
    for (int li = 0; li < n_lens && fails < 3; li++) {
        int64_t n = lens[li];
        for (int64_t i = 0; i < n; i++) x[i] = frand();
        for (int rep = 0; rep < 4; rep++) {
            for (int64_t i = 0; i < n; i++) src[i] = frand() * (rep + 1);
            t->from_float(src, row, n);
            fails += check_one(c, row, x, n, "quantized");
            random_bytes_row(c->type, row, n);
            fails += check_one(c, row, x, n, "random bytes");
        }
        memset(row, 0, sizeof row);
        fails += check_one(c, row, x, n, "zero weights");
        max_scale_row(c->type, row, n);
        for (int64_t i = 0; i < n; i++) x[i] = frand() * 1e-6f;
        fails += check_one(c, row, x, n, "max scales");
        memset(x, 0, sizeof(float) * (size_t)n);
        random_bytes_row(c->type, row, n);
        fails += check_one(c, row, x, n, "zero activations");
    }
}

TEST(avx2_vs_ref)
{
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        printf("  no AVX2 on this CPU: nothing to test\n");
        return;
    }
    const simd_case cases[] = {
        {CORE_TYPE_F32, "avx2", kern_dot_f32_f32_avx2, TOL_F32},
        {CORE_TYPE_F16, "avx2", kern_dot_f32_f16_avx2, TOL_F16},
        {CORE_TYPE_BF16, "avx2", kern_dot_f32_bf16_avx2, TOL_BF16},
        {CORE_TYPE_Q8_0, "avx2", kern_dot_f32_q8_0_avx2, TOL_Q8_0},
        {CORE_TYPE_Q4_0, "avx2", kern_dot_f32_q4_0_avx2, TOL_Q4_0},
        {CORE_TYPE_Q4_K, "avx2", kern_dot_f32_q4_K_avx2, TOL_Q4_K},
        {CORE_TYPE_Q6_K, "avx2", kern_dot_f32_q6_K_avx2, TOL_Q6_K},
        {CORE_TYPE_Q4_1, "avx2", kern_dot_f32_q4_1_avx2, TOL_Q4_1},
        {CORE_TYPE_Q5_0, "avx2", kern_dot_f32_q5_0_avx2, TOL_Q5_0},
        {CORE_TYPE_Q5_1, "avx2", kern_dot_f32_q5_1_avx2, TOL_Q5_1},
        {CORE_TYPE_Q5_K, "avx2", kern_dot_f32_q5_K_avx2, TOL_Q5_K},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

TEST(avx512_vs_ref)
{
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))) {
        printf("  no AVX-512 on this CPU: nothing to test\n");
        return;
    }
    const simd_case cases[] = {
        {CORE_TYPE_F32, "avx512", kern_dot_f32_f32_avx512, TOL_F32},
        {CORE_TYPE_F16, "avx512", kern_dot_f32_f16_avx512, TOL_F16},
        {CORE_TYPE_Q8_0, "avx512", kern_dot_f32_q8_0_avx512, TOL_Q8_0},
        {CORE_TYPE_Q4_0, "avx512", kern_dot_f32_q4_0_avx512, TOL_Q4_0},
        {CORE_TYPE_Q4_K, "avx512", kern_dot_f32_q4_K_avx512, TOL_Q4_K},
        {CORE_TYPE_Q6_K, "avx512", kern_dot_f32_q6_K_avx512, TOL_Q6_K},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

TEST(dispatched_vs_ref)
{
    static const int types[] = {CORE_TYPE_F32,  CORE_TYPE_F16,  CORE_TYPE_BF16, CORE_TYPE_Q4_0,
                                CORE_TYPE_Q4_1, CORE_TYPE_Q5_0, CORE_TYPE_Q5_1, CORE_TYPE_Q8_0,
                                CORE_TYPE_Q2_K, CORE_TYPE_Q3_K, CORE_TYPE_Q4_K, CORE_TYPE_Q5_K,
                                CORE_TYPE_Q6_K};
    printf("  dispatched ISA: %s\n", kern_isa());
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const kern_traits *g = kern_traits_get(types[i]);
        simd_case c = {types[i], kern_isa(), g->dot_f32, 1e-5};
        run_case(&c);
        /* the dispatched dequantizer is bit-exact with the reference */
        static uint8_t row[8192];
        static float a[2048], b[2048];
        random_bytes_row(types[i], row, 2048 / (g->blck_size == 1 ? 4 : 1));
        int64_t n = 2048 / (g->blck_size == 1 ? 4 : 1);
        g->to_float(row, a, n);
        kern_traits_ref(types[i])->to_float(row, b, n);
        CHECK(memcmp(a, b, sizeof(float) * (size_t)n) == 0);
    }
    /* F16 dequantization over every half, NaNs included */
    static uint16_t all[65536];
    static float fa[65536], fb[65536];
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    kern_traits_get(CORE_TYPE_F16)->to_float(all, fa, 65536 - 3); /* odd tail too */
    kern_traits_ref(CORE_TYPE_F16)->to_float(all, fb, 65536 - 3);
    CHECK(memcmp(fa, fb, sizeof(float) * (65536 - 3)) == 0);
    kern_force_scalar(true);
    CHECK_EQ_STR(kern_isa(), "scalar");
    CHECK(kern_traits_get(CORE_TYPE_Q4_K) == kern_traits_ref(CORE_TYPE_Q4_K));
    kern_force_scalar(false);
}

int main(void)
{
    RUN(avx2_vs_ref);
    RUN(avx512_vs_ref);
    RUN(dispatched_vs_ref);
    return test_summary();
}
