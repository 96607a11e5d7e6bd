/* The quantized-activation path (actq_ref.c, dotq_avx2.c): the activation quantizers round as
 * documented, each _ref integer dot equals the dot of the dequantized operands, each SIMD
 * kernel (one activation row, and four at once) matches its _ref on random weights, random
 * bytes (every code and packed-scale pattern), zeros and odd block counts, and kern_matmul_act
 * is dot_q_x4 per group of 4 tokens and dot_q for the rest, split over a pool, or exactly
 * kern_matmul when f32 activations are forced. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/internal.h"
#include "test.h"

/* |simd - ref| <= TOL * sum |w * a| (f32 reassociation of exact integer block sums). */
#define TOL_Q8_0 1e-5
#define TOL_Q4_0 1e-5
#define TOL_Q4_K 1e-5
#define TOL_Q6_K 1e-5
/* _ref vs double math on the dequantized operands: f32 rounding of the block scales only. */
#define TOL_REF 1e-5

static const int g_types[] = {CORE_TYPE_Q8_0, CORE_TYPE_Q4_0, CORE_TYPE_Q4_K, CORE_TYPE_Q6_K};
static const double g_tol[] = {TOL_Q8_0, TOL_Q4_0, TOL_Q4_K, TOL_Q6_K};
#define N_TYPES 4
#define MAX_N (KERN_QK_K * 9)

static uint64_t rng = 0x2545F4914F6CDD1Dull;
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

/* The activations a quantized row stands for. */
static void act_dequant(const kern_traits *t, const void *a, float *out, int64_t n)
{
    if (t->act_blck_size == KERN_QK) {
        kern_to_float_q8_0_ref(a, out, n);
        return;
    }
    const kern_block_q8_K *b = a;
    for (int64_t i = 0; i < n; i++)
        out[i] = b[i / KERN_QK_K].d * (float)b[i / KERN_QK_K].qs[i % KERN_QK_K];
}

/* Fills a weight row: 0 random floats through from_float, 1 random bytes with sane f16 scales,
 * 2 zeros. */
static void fill_weights(const kern_traits *t, uint8_t *w, int64_t n, int mode, float *tmp)
{
    size_t rb = (size_t)(n / t->blck_size) * t->type_size;
    if (mode == 2) {
        memset(w, 0, rb);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        tmp[i] = frand() * 3.0f;
    t->from_float(tmp, w, n);
    if (mode == 0) return;
    for (size_t i = 0; i < rb; i++)
        w[i] = (uint8_t)rnd();
    /* restore finite scales: f16 fields at known offsets per block */
    for (int64_t b = 0; b < n / t->blck_size; b++) {
        uint8_t *blk = w + (size_t)b * t->type_size;
        uint16_t h = kern_f32_to_f16(ldexpf(frand(), -4));
        uint16_t h2 = kern_f32_to_f16(ldexpf(frand(), -6));
        if (t->type == CORE_TYPE_Q6_K) {
            memcpy(blk + 208, &h, 2);
        } else {
            memcpy(blk, &h, 2);
            if (t->type == CORE_TYPE_Q4_K) memcpy(blk + 2, &h2, 2);
        }
    }
}

static void run_type(int ti, int64_t n, int wmode, int amode, float *tmp, float *x, float *wf,
                     float *af, uint8_t *w, uint8_t *a)
{
    const kern_traits *t = kern_traits_get(g_types[ti]), *r = kern_traits_ref(g_types[ti]);
    fill_weights(r, w, n, wmode, tmp);
    for (int64_t i = 0; i < n; i++)
        x[i] = amode == 0 ? frand() : amode == 1 ? 0.0f : frand() * 1e4f;
    r->quantize_act(x, a, n);
    r->to_float(w, wf, n);
    act_dequant(r, a, af, n);
    double want = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        want += (double)wf[i] * af[i];
        mag += fabs((double)wf[i] * af[i]);
    }
    float ref = r->dot_q(n, w, a), got = t->dot_q(n, w, a);
    /* the x4 kernel on four copies of the row, strided as a matmul lays them out */
    size_t ab = (size_t)(n / r->act_blck_size) * r->act_type_size;
    for (int k = 1; k < 4; k++)
        memcpy(a + (size_t)k * ab, a, ab);
    float x4[4], x4r[4];
    t->dot_q_x4(n, w, a, ab, x4);
    r->dot_q_x4(n, w, a, ab, x4r);
    for (int k = 0; k < 4; k++) {
        CHECK_MSG(x4r[k] == ref, "%s: x4 ref row %d differs from dot_q ref", r->name, k);
        CHECK_MSG(fabs(x4[k] - ref) <= g_tol[ti] * mag + 1e-30, "%s n %lld x4 row %d: %g vs %g",
                  r->name, (long long)n, k, (double)x4[k], (double)ref);
    }
    CHECK_MSG(fabs(ref - want) <= TOL_REF * mag + 1e-30, "%s n %lld ref %g want %g", r->name,
              (long long)n, (double)ref, want);
    CHECK_MSG(fabs(got - ref) <= g_tol[ti] * mag + 1e-30, "%s n %lld mode %d/%d: %g vs ref %g",
              r->name, (long long)n, wmode, amode, (double)got, (double)ref);
}

TEST(dotq_simd_matches_ref)
{
    float *tmp = malloc(sizeof(float) * MAX_N), *x = malloc(sizeof(float) * MAX_N);
    float *wf = malloc(sizeof(float) * MAX_N), *af = malloc(sizeof(float) * MAX_N);
    uint8_t *w = malloc(MAX_N * 2), *a = malloc(MAX_N * 2 * 4);
    static const int64_t nblk[] = {1, 2, 3, 7, 9};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const kern_traits *t = kern_traits_ref(g_types[ti]);
        CHECK(t->quantize_act != NULL && t->dot_q != NULL && t->dot_q_x4 != NULL);
        for (size_t bi = 0; bi < sizeof nblk / sizeof nblk[0]; bi++) {
            int64_t n =
                nblk[bi] * (t->blck_size > t->act_blck_size ? t->blck_size : t->act_blck_size);
            for (int wm = 0; wm < 3; wm++) {
                for (int am = 0; am < 3; am++) {
                    for (int rep = 0; rep < 4; rep++)
                        run_type(ti, n, wm, am, tmp, x, wf, af, w, a);
                }
            }
        }
    }
    free(tmp), free(x), free(wf), free(af), free(w), free(a);
}

TEST(quantize_act_rounds_to_the_nearest_step)
{
    float x[KERN_QK_K], back[KERN_QK_K];
    /* 8 blocks + the trailing f32 scales and scaled sums (8 x 8 bytes) */
    kern_block_q8_0 q0[KERN_QK_K / KERN_QK + 2];
    kern_block_q8_K qk;
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < KERN_QK_K; i++)
            x[i] = frand() * (float)(rep + 1);
        kern_quantize_act_q8_0_ref(x, q0, KERN_QK_K);
        kern_to_float_q8_0_ref(q0, back, KERN_QK_K);
        for (int b = 0; b < KERN_QK_K / KERN_QK; b++) {
            float amax = 0, d = kern_f16_to_f32(q0[b].d);
            int has127 = 0;
            for (int j = 0; j < KERN_QK; j++) {
                amax = fmaxf(amax, fabsf(x[b * KERN_QK + j]));
                has127 |= abs(q0[b].qs[j]) == 127;
            }
            CHECK(has127);
            float df;
            memcpy(&df, (const uint8_t *)q0 + 8 * sizeof(kern_block_q8_0) + 4 * (size_t)b, 4);
            CHECK(df == d); /* the trailing f32 copy of the scale */
            float ds;
            int sum = 0;
            memcpy(&ds, (const uint8_t *)q0 + 8 * sizeof(kern_block_q8_0) + 32 + 4 * (size_t)b, 4);
            for (int j = 0; j < KERN_QK; j++)
                sum += q0[b].qs[j];
            CHECK(ds == d * (float)sum); /* then d * sum of the codes */
            for (int j = 0; j < KERN_QK; j++) {
                /* the step is amax/127; d is its f16 rounding */
                CHECK(fabsf(back[b * KERN_QK + j] - x[b * KERN_QK + j]) <=
                      0.5f * amax / 127.0f + 128.0f * fabsf(d - amax / 127.0f) + 1e-6f * amax);
            }
        }
        kern_quantize_act_q8_K_ref(x, &qk, KERN_QK_K);
        for (int j = 0; j < KERN_QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += qk.qs[16 * j + l];
            CHECK_EQ_INT(qk.bsums[j], s);
        }
        for (int i = 0; i < KERN_QK_K; i++) {
            CHECK(fabsf(qk.d * (float)qk.qs[i] - x[i]) <= 0.5f * fabsf(qk.d) * 1.0001f);
        }
    }
    memset(x, 0, sizeof x);
    kern_quantize_act_q8_K_ref(x, &qk, KERN_QK_K);
    CHECK(qk.d == 0.0f && qk.qs[5] == 0 && qk.bsums[3] == 0);
}

TEST(matmul_act_is_dot_q_per_row_and_f32_when_forced)
{
    kern_pool *p2 = NULL;
    CHECK_EQ_INT(kern_pool_new(&p2, 2, NULL), CORE_OK);
    /* two groups of 4 tokens, then 2 alone; >= 8 tokens: the pool quantizes the activations */
    const int64_t n_in = 512, n_out = 77, n_tok = 10;
    float *wf = malloc(sizeof(float) * n_in * n_out), *x = malloc(sizeof(float) * n_in * n_tok);
    float *y = malloc(sizeof(float) * n_out * n_tok), *y2 = malloc(sizeof(float) * n_out * n_tok);
    uint8_t *wq = malloc((size_t)n_in * n_out * 2), *aq = malloc((size_t)n_in * 2 * n_tok);
    size_t ws = kern_matmul_work_size(n_in, n_tok);
    void *work = malloc(ws);
    for (int64_t i = 0; i < n_in * n_out; i++)
        wf[i] = frand();
    for (int64_t i = 0; i < n_in * n_tok; i++)
        x[i] = frand();
    for (int ti = 0; ti < N_TYPES; ti++) {
        const kern_traits *t = kern_traits_get(g_types[ti]);
        size_t rb = (size_t)(n_in / t->blck_size) * t->type_size;
        for (int64_t o = 0; o < n_out; o++)
            t->from_float(wf + o * n_in, wq + o * rb, n_in);
        kern_pool *pools[2] = {NULL, p2};
        for (int pi = 0; pi < 2; pi++) {
            kern_matmul_act(pools[pi], g_types[ti], wq, rb, n_in, n_out, x, n_tok, y, work, ws);
            int bad = 0;
            size_t ab = (size_t)(n_in / t->act_blck_size) * t->act_type_size;
            for (int64_t k = 0; k < n_tok; k++)
                t->quantize_act(x + k * n_in, aq + k * ab, n_in);
            for (int64_t o = 0; o < n_out; o++) {
                float out[8];
                t->dot_q_x4(n_in, wq + o * rb, aq, ab, out);
                t->dot_q_x4(n_in, wq + o * rb, aq + 4 * ab, ab, out + 4);
                for (int64_t k = 0; k < n_tok; k++) {
                    float want = k < 8 ? out[k] : t->dot_q(n_in, wq + o * rb, aq + k * ab);
                    bad += y[k * n_out + o] != want;
                }
            }
            CHECK_MSG(bad == 0, "%s pool %d: %d differ from dot_q_x4 / dot_q", t->name, pi, bad);
        }
        kern_set_f32_act(true);
        kern_matmul_act(p2, g_types[ti], wq, rb, n_in, n_out, x, n_tok, y, work, ws);
        kern_set_f32_act(false);
        kern_matmul(p2, g_types[ti], wq, rb, n_in, n_out, x, n_tok, y2);
        CHECK_MSG(memcmp(y, y2, sizeof(float) * (size_t)(n_out * n_tok)) == 0,
                  "%s: forced f32 activations differ from kern_matmul", t->name);
    }
    free(wf), free(x), free(y), free(y2), free(wq), free(aq), free(work);
    kern_pool_free(p2);
}

int main(void)
{
    kern_init();
    printf("isa: %s\n", kern_isa());
    RUN(dotq_simd_matches_ref);
    RUN(quantize_act_rounds_to_the_nearest_step);
    RUN(matmul_act_is_dot_q_per_row_and_f32_when_forced);
    return test_summary();
}
