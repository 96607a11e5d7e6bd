/* The scalar reference kernels: dequantization of hand-built blocks against values computed
 * by hand from the documented layouts (so the reference is not only tested against itself),
 * round trips from_float -> to_float within per-type error bounds, and the ref dot products
 * against a double-precision dot of the dequantized row. */
#include <stdint.h>
#include <string.h>

#include "kernels/internal.h"
#include "test.h"

#define F16_ONE 0x3C00
#define F16_HALF 0x3800
#define F16_QUARTER 0x3400
#define F16_EIGHTH 0x3000
#define F16_MINUS_ONE 0xBC00

static float out[512];

static void dequant(int type, const void *blk, int64_t n)
{
    const kern_traits *t = kern_traits_ref(type);
    CHECK(t != NULL);
    if (t) t->to_float(blk, out, n);
}

TEST(traits_match_core_table)
{
    static const int types[] = {CORE_TYPE_F32,  CORE_TYPE_F16,  CORE_TYPE_BF16, CORE_TYPE_Q4_0,
                                CORE_TYPE_Q4_1, CORE_TYPE_Q5_0, CORE_TYPE_Q5_1, CORE_TYPE_Q8_0,
                                CORE_TYPE_Q2_K, CORE_TYPE_Q3_K, CORE_TYPE_Q4_K, CORE_TYPE_Q5_K,
                                CORE_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const kern_traits *r = kern_traits_ref(types[i]), *g = kern_traits_get(types[i]);
        const core_type_info *c = core_type_get(types[i]);
        CHECK(r && g && c);
        if (!r || !g || !c) continue;
        CHECK_EQ_INT(r->type, types[i]);
        CHECK_EQ_STR(r->name, c->name);
        CHECK_EQ_INT(r->blck_size, c->blck_size);
        CHECK_EQ_INT(r->type_size, c->type_size);
        CHECK(r->to_float && r->dot_f32 && r->from_float);
        CHECK(g->to_float && g->dot_f32 && g->blck_size == r->blck_size);
    }
    CHECK(kern_traits_get(CORE_TYPE_Q8_K) == NULL);
    CHECK(kern_traits_get(CORE_TYPE_I32) == NULL);
    CHECK(kern_traits_get(-1) == NULL);
    CHECK(kern_traits_get(1000) == NULL);
    CHECK(kern_traits_ref(29) == NULL);
}

TEST(dequant_q4_0)
{
    kern_block_q4_0 b = {.d = F16_HALF};
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    dequant(CORE_TYPE_Q4_0, &b, 32);
    CHECK(out[0] == -4.0f && out[8] == 0.0f && out[15] == 3.5f);
    CHECK(out[16] == 3.5f && out[31] == -4.0f);
    for (int j = 0; j < 16; j++) {
        CHECK(out[j] == (float)(j - 8) * 0.5f);
        CHECK(out[16 + j] == (float)(7 - j) * 0.5f);
    }
}

TEST(dequant_q4_1)
{
    kern_block_q4_1 b = {.d = F16_QUARTER, .m = F16_MINUS_ONE};
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    dequant(CORE_TYPE_Q4_1, &b, 32);
    CHECK(out[0] == -1.0f && out[15] == 2.75f && out[16] == 2.75f && out[31] == -1.0f);
    for (int j = 0; j < 16; j++) {
        CHECK(out[j] == (float)j * 0.25f - 1.0f);
        CHECK(out[16 + j] == (float)(15 - j) * 0.25f - 1.0f);
    }
}

TEST(dequant_q5_0)
{
    /* 5th bits set for elements 0, 16 and 31 only */
    kern_block_q5_0 b = {.d = F16_ONE, .qh = {0x01, 0x00, 0x01, 0x80}};
    memset(b.qs, 0, sizeof b.qs);
    b.qs[0] = 0x3F;
    b.qs[1] = 0x21;
    dequant(CORE_TYPE_Q5_0, &b, 32);
    CHECK(out[0] == 15.0f);  /* 0xF | 0x10 = 31, - 16 */
    CHECK(out[16] == 3.0f);  /* 0x3 | 0x10 = 19, - 16 */
    CHECK(out[1] == -15.0f); /* 1 - 16 */
    CHECK(out[17] == -14.0f);
    CHECK(out[15] == -16.0f);
    CHECK(out[31] == 0.0f); /* 0 | 0x10 - 16 */
}

TEST(dequant_q5_1)
{
    kern_block_q5_1 b = {.d = F16_HALF, .m = F16_ONE, .qh = {0xFF, 0x00, 0x00, 0x80}};
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | (j << 4));
    dequant(CORE_TYPE_Q5_1, &b, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(out[j] == (float)(j + (j < 8 ? 16 : 0)) * 0.5f + 1.0f);
        CHECK(out[16 + j] == (float)(j + (j == 15 ? 16 : 0)) * 0.5f + 1.0f);
    }
    CHECK(out[7] == 12.5f && out[8] == 5.0f && out[31] == 16.5f);
}

TEST(dequant_q8_0)
{
    kern_block_q8_0 b = {.d = F16_EIGHTH};
    for (int j = 0; j < 32; j++) b.qs[j] = (int8_t)(j * 8 - 128);
    b.qs[31] = 127;
    dequant(CORE_TYPE_Q8_0, &b, 32);
    CHECK(out[0] == -16.0f && out[1] == -15.0f && out[16] == 0.0f && out[31] == 15.875f);
}

TEST(dequant_q2_K)
{
    kern_block_q2_K b = {.d = F16_ONE, .dmin = F16_HALF};
    for (int s = 0; s < 16; s++) b.scales[s] = (uint8_t)(s | ((15 - s) << 4));
    memset(b.qs, 0xE4, sizeof b.qs); /* codes 0,1,2,3 at shifts 0,2,4,6 */
    dequant(CORE_TYPE_Q2_K, &b, 256);
    for (int e = 0; e < 256; e++) {
        int s = e / 16, code = (e % 128) / 32;
        float want = (float)s * (float)code - 0.5f * (float)(15 - s);
        if (out[e] != want) {
            CHECK_MSG(0, "Q2_K element %d: %g, want %g", e, out[e], want);
            break;
        }
    }
    CHECK(out[0] == -7.5f && out[255] == 45.0f);
}

TEST(dequant_q3_K)
{
    /* unpacked 6-bit scales 3, 7, ..., 63 (minus 32: -29..31), packed by hand */
    kern_block_q3_K b = {.d = F16_QUARTER,
                         .scales = {0x33, 0x77, 0xBB, 0xFF, 0x33, 0x77, 0xBB, 0xFF, 0xE4, 0xE4,
                                    0xE4, 0xE4}};
    memset(b.qs, 0xE4, sizeof b.qs);
    memset(b.hmask, 0x0F, sizeof b.hmask); /* high bit set in the first half only */
    dequant(CORE_TYPE_Q3_K, &b, 256);
    for (int e = 0; e < 256; e++) {
        int s = e / 16, half = e / 128, code = (e % 128) / 32;
        float want = 0.25f * (float)(4 * s + 3 - 32) * (float)(code - (half ? 4 : 0));
        if (out[e] != want) {
            CHECK_MSG(0, "Q3_K element %d: %g, want %g", e, out[e], want);
            break;
        }
    }
    CHECK(out[0] == 0.0f && out[255] == 0.25f * 31.0f * -1.0f);
}

/* Q4_K/Q5_K scales: sc = {1,2,3,4,5,6,7,63}, m = {0,1,2,3,4,5,6,63}, packed by hand. */
static const uint8_t k4_scales[12] = {1, 2, 3, 0xC4, 0, 1, 2, 0xC3, 0x45, 0x56, 0x67, 0xFF};
static const float k4_values[8] = {1.0f, 3.5f, 2.0f, 6.5f, 3.0f, 9.5f, 4.0f, 94.5f};

TEST(dequant_q4_K)
{
    kern_block_q4_K b = {.d = F16_ONE, .dmin = F16_HALF};
    memcpy(b.scales, k4_scales, 12);
    memset(b.qs, 0x21, sizeof b.qs); /* code 1 in even sub-blocks, 2 in odd ones */
    dequant(CORE_TYPE_Q4_K, &b, 256);
    for (int e = 0; e < 256; e++) {
        if (out[e] != k4_values[e / 32]) {
            CHECK_MSG(0, "Q4_K element %d: %g, want %g", e, out[e], k4_values[e / 32]);
            break;
        }
    }
}

TEST(dequant_q5_K)
{
    kern_block_q5_K b = {.d = F16_ONE, .dmin = F16_HALF};
    memcpy(b.scales, k4_scales, 12);
    memset(b.qs, 0x21, sizeof b.qs);
    memset(b.qh, 0x80, sizeof b.qh); /* 5th bit for all of sub-block 7 */
    b.qh[3] |= 0x01;                 /* and element 3 of sub-block 0 */
    dequant(CORE_TYPE_Q5_K, &b, 256);
    for (int e = 0; e < 256; e++) {
        float want = k4_values[e / 32];
        if (e / 32 == 7) want = 63.0f * 18.0f - 31.5f;
        if (e == 3) want = 17.0f;
        if (out[e] != want) {
            CHECK_MSG(0, "Q5_K element %d: %g, want %g", e, out[e], want);
            break;
        }
    }
}

TEST(dequant_q6_K)
{
    kern_block_q6_K b = {.d = F16_HALF};
    for (int s = 0; s < 16; s++) b.scales[s] = (int8_t)(s - 8);
    memset(b.ql, 0x5A, sizeof b.ql);
    memset(b.qh, 0xE4, sizeof b.qh);
    /* the 4 groups of 32 in a half: low bits 0xA,0xA,0x5,0x5 and top bits 0,1,2,3 */
    static const int codes[4] = {10 - 32, 26 - 32, 37 - 32, 53 - 32};
    dequant(CORE_TYPE_Q6_K, &b, 256);
    for (int e = 0; e < 256; e++) {
        float want = 0.5f * (float)(e / 16 - 8) * (float)codes[(e % 128) / 32];
        if (out[e] != want) {
            CHECK_MSG(0, "Q6_K element %d: %g, want %g", e, out[e], want);
            break;
        }
    }
    CHECK(out[0] == 0.5f * -8.0f * -22.0f);
}

TEST(dequant_f16_bf16_f32)
{
    uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7BFF};
    dequant(CORE_TYPE_F16, h, 4);
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0x1p-24f && out[3] == 65504.0f);
    uint16_t bf[3] = {0x3F80, 0xC040, 0x4049};
    dequant(CORE_TYPE_BF16, bf, 3);
    CHECK(out[0] == 1.0f && out[1] == -3.0f && out[2] == 3.140625f);
    float f[2] = {1.5f, -7.25f};
    dequant(CORE_TYPE_F32, f, 2);
    CHECK(out[0] == 1.5f && out[1] == -7.25f);
}

// ---- round trips ----

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

/* Fills n values: a mix of scales per 32-block, some blocks all zero, some constant. */
static void fill_random(float *x, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++) {
        int kind = (int)(b % 7);
        float scale = kind == 0 ? 1e-3f : kind == 1 ? 30.0f : 1.0f;
        for (int j = 0; j < 32; j++) {
            float v = frand() * scale;
            if (kind == 5) v = 0.0f;
            if (kind == 6) v = -0.75f;
            if (kind == 4 && j % 3 == 0) v += 2.0f;
            x[b * 32 + j] = v;
        }
    }
}

typedef struct {
    int type;
    double max_rel; /* bound on |err| / (max |x| of the block of blck_size) */
    double rms_rel; /* bound on rms(err) / rms(x) over the row */
    int n_codes;    /* largest |code|: a tiny block's d is an f16 subnormal, rounded to a
                     * multiple of 2^-24, which moves the top code by up to n_codes * 2^-25 */
} rt_case;

TEST(round_trip_bounds)
{
    /* Legacy bounds: a step is d = amax/8 (Q4_0), range/15 (Q4_1), amax/16 (Q5_0), range/31
     * (Q5_1), amax/127 (Q8_0); the error is half a step (a whole one when the clamp at the top
     * code bites) plus the f16 rounding of d and m. K-quants: also the 6-bit scales. */
    static const rt_case cases[] = {
        {CORE_TYPE_F32, 0.0, 0.0, 0},          {CORE_TYPE_F16, 1.0 / 2048, 1.0 / 2048, 0},
        {CORE_TYPE_BF16, 1.0 / 256, 1.0 / 256, 0}, {CORE_TYPE_Q8_0, 0.6 / 127, 0.01, 128},
        {CORE_TYPE_Q4_0, 1.01 / 8, 0.15, 9},   {CORE_TYPE_Q4_1, 0.61 * 2 / 15, 0.1, 16},
        {CORE_TYPE_Q5_0, 1.01 / 16, 0.07, 17}, {CORE_TYPE_Q5_1, 0.61 * 2 / 31, 0.05, 32},
        {CORE_TYPE_Q2_K, 0.5, 0.4, 0},         {CORE_TYPE_Q3_K, 0.4, 0.2, 0},
        {CORE_TYPE_Q4_K, 0.1, 0.08, 0},        {CORE_TYPE_Q5_K, 0.05, 0.04, 0},
        {CORE_TYPE_Q6_K, 0.04, 0.02, 0},
    };
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    fill_random(x, N);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const kern_traits *t = kern_traits_ref(cases[c].type);
        t->from_float(x, q, N);
        t->to_float(q, y, N);
        double worst = 0, se = 0, sx = 0;
        int64_t bs = t->blck_size < 32 ? 32 : t->blck_size;
        for (int64_t b = 0; b < N / bs; b++) {
            double amax = 0;
            for (int64_t j = 0; j < bs; j++) amax = fmax(amax, fabs(x[b * bs + j]));
            for (int64_t j = 0; j < bs; j++) {
                double e = fabs((double)x[b * bs + j] - y[b * bs + j]);
                se += e * e;
                sx += (double)x[b * bs + j] * x[b * bs + j];
                e = fmax(0.0, e - cases[c].n_codes * 0x1p-25);
                if (amax > 0) worst = fmax(worst, e / amax);
                else worst = fmax(worst, e > 0 ? 1e9 : 0);
            }
        }
        double rms = sqrt(se / sx);
        CHECK_MSG(worst <= cases[c].max_rel, "%s: max rel err %.4g > %.4g", t->name, worst,
                  cases[c].max_rel);
        CHECK_MSG(rms <= cases[c].rms_rel, "%s: rms rel err %.4g > %.4g", t->name, rms,
                  cases[c].rms_rel);
        printf("  %-5s round trip: max %.3g rms %.3g\n", t->name, worst, rms);
    }
}

/* Legacy quantizers reproduce ggml's rounding: a block on the grid d*(q-8) with q = 0 present
 * (so ggml's d = max/-8 is exactly d) comes back bit for bit. */
TEST(round_trip_exact_grid)
{
    float x[64], y[64];
    uint8_t q[128];
    for (int j = 0; j < 64; j++) x[j] = 0.25f * (float)((j * 7) % 16 - 8);
    x[5] = -2.0f, x[40] = -2.0f;
    const kern_traits *t = kern_traits_ref(CORE_TYPE_Q4_0);
    t->from_float(x, q, 64);
    t->to_float(q, y, 64);
    CHECK(memcmp(x, y, sizeof x) == 0);
    /* Q8_0: amax 63.5 in each block gives d = 0.5 exactly, so every half-integer survives */
    t = kern_traits_ref(CORE_TYPE_Q8_0);
    for (int j = 0; j < 64; j++) x[j] = 0.5f * (float)((j * 37) % 255 - 127);
    x[0] = -63.5f, x[32] = 63.5f;
    t->from_float(x, q, 64);
    t->to_float(q, y, 64);
    CHECK(memcmp(x, y, sizeof x) == 0);
}

TEST(ref_dot_matches_dequant)
{
    enum { N = 2048 };
    static float x[N], a[N], w[N];
    static uint8_t q[N * 4];
    fill_random(w, N);
    for (int i = 0; i < N; i++) a[i] = frand();
    static const int types[] = {CORE_TYPE_F32,  CORE_TYPE_F16,  CORE_TYPE_BF16, CORE_TYPE_Q4_0,
                                CORE_TYPE_Q4_1, CORE_TYPE_Q5_0, CORE_TYPE_Q5_1, CORE_TYPE_Q8_0,
                                CORE_TYPE_Q2_K, CORE_TYPE_Q3_K, CORE_TYPE_Q4_K, CORE_TYPE_Q5_K,
                                CORE_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const kern_traits *t = kern_traits_ref(types[i]);
        t->from_float(w, q, N);
        t->to_float(q, x, N);
        double want = 0, mag = 0;
        for (int k = 0; k < N; k++) {
            want += (double)x[k] * a[k];
            mag += fabs((double)x[k] * a[k]);
        }
        float got = t->dot_f32(N, q, a);
        CHECK_MSG(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s: dot %.9g want %.9g", t->name,
                  got, want);
    }
}

int main(void)
{
    RUN(traits_match_core_table);
    RUN(dequant_q4_0);
    RUN(dequant_q4_1);
    RUN(dequant_q5_0);
    RUN(dequant_q5_1);
    RUN(dequant_q8_0);
    RUN(dequant_q2_K);
    RUN(dequant_q3_K);
    RUN(dequant_q4_K);
    RUN(dequant_q5_K);
    RUN(dequant_q6_K);
    RUN(dequant_f16_bf16_f32);
    RUN(round_trip_bounds);
    RUN(round_trip_exact_grid);
    RUN(ref_dot_matches_dequant);
    return test_summary();
}
