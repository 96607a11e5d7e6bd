/* actq_ref.c — the quantized-activation path, scalar reference: activation quantizers (Q8_0 and
 * Q8_K, ggml's "vec_dot types") and integer dot products of weight rows with them.
 *
 * Why: a weight row times f32 activations must turn every weight into a float (convert,
 * scale, FMA), which caps a core at a few weights per cycle, far below memory bandwidth for
 * 4-bit weights. Quantizing the activations once per matmul to int8 blocks lets the dot be
 * integer multiply-adds on packed bytes (maddubs / dpbusd), 32 weights per instruction, with
 * one float scale per block. The activations' rounding moves logits a little (golden/README.md:
 * up to 0.24 on the tiny models vs the exact f32 result), so this is the fast path only; the
 * f32-activation path stays the exact reference (kern_set_f32_act).
 *
 * A quantized Q8_0 activation row is its n/32 kern_block_q8_0, then the n/32 block scales d
 * again as f32 (the f16 value, exactly), then the n/32 products d * sum(qs) as f32: the SIMD
 * kernels read 8 scales with one load instead of converting one f16 per block, and Q4_0 uses
 * sum (q - 8) y = sum q y - 8 sum y with unsigned codes (KERN_ACT_Q8_0_SIZE bytes per block).
 *
 * Rounding matches ggml's x86 build, so this path reproduces llama.cpp's own logits closely:
 * Q8_0: d = amax / 127 stored as f16, q = round-to-nearest-even(x * (127 / amax)) (ggml's
 * AVX2 quantize_row_q8_0). Q8_K: iscale = -127 / max (max: the element of largest |x|, signed),
 * q = min(127, nearest(iscale * x)), d = 1 / iscale as f32 (quantize_row_q8_K_ref).
 * The integer sums are exact; the SIMD kernels (dotq_avx2.c) differ from these only in the
 * order of the float sums. */
#include <math.h>
#include <string.h>

#include "kernels/internal.h"

// ---- activation quantizers ----

/* round-to-nearest-even(v) clamped to -127..127, NaN as 0, without libm calls (the quantizer
 * runs over every activation of every matmul): adding and subtracting 1.5 * 2^23 rounds a float
 * of magnitude < 2^22 to an integer in the default rounding mode, as ggml's nearest_int. */
static inline int8_t q_round(float v)
{
    if (!(v == v)) return 0;
    v = v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
    return (int8_t)(int)((v + 12582912.0f) - 12582912.0f);
}

void kern_quantize_act_q8_0_ref(const float *restrict x, void *restrict dst, int64_t n)
{
    kern_block_q8_0 *b = dst;
    uint8_t *dscale = (uint8_t *)dst + (size_t)(n / KERN_QK) * sizeof *b;
    for (int64_t i = 0; i < n / KERN_QK; i++, x += KERN_QK) {
        float amax = 0.0f;
        for (int j = 0; j < KERN_QK; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) amax = ax; /* NaN never compares greater: ignored, as by fmaxf */
        }
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = kern_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < KERN_QK; j++) {
            b[i].qs[j] = q_round(x[j] * id);
            sum += b[i].qs[j];
        }
        const float df = kern_f16_to_f32(b[i].d), ds = df * (float)sum;
        /* unaligned in general: memcpy */
        memcpy(dscale + (size_t)i * sizeof df, &df, sizeof df);
        memcpy(dscale + (size_t)(n / KERN_QK + i) * sizeof ds, &ds, sizeof ds);
    }
}

void kern_quantize_act_q8_K_ref(const float *restrict x, void *restrict dst, int64_t n)
{
    kern_block_q8_K *b = dst;
    for (int64_t i = 0; i < n / KERN_QK_K; i++, x += KERN_QK_K) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < KERN_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < KERN_QK_K; j++)
            b[i].qs[j] = q_round(iscale * x[j]);
        for (int j = 0; j < KERN_QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)s;
        }
        b[i].d = 1.0f / iscale;
    }
}

// ---- integer dot products ----

float kern_dot_q_q8_0_ref(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q8_0 *x = w, *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / KERN_QK; i++) {
        int s = 0;
        for (int j = 0; j < KERN_QK; j++)
            s += x[i].qs[j] * y[i].qs[j];
        sum += (float)s * (kern_f16_to_f32(x[i].d) * kern_f16_to_f32(y[i].d));
    }
    return sum;
}

float kern_dot_q_q4_0_ref(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q4_0 *x = w;
    const kern_block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / KERN_QK; i++) {
        int s = 0;
        for (int j = 0; j < KERN_QK / 2; j++) {
            s += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            s += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + KERN_QK / 2];
        }
        sum += (float)s * (kern_f16_to_f32(x[i].d) * kern_f16_to_f32(y[i].d));
    }
    return sum;
}

/* Q4_K: sum = d * yd * sum_s sc_s * (q . y)_s - dmin * yd * sum_s m_s * (bsums of s). */
float kern_dot_q_q4_K_ref(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q4_K *x = w;
    const kern_block_q8_K *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const int8_t *qy = y[i].qs;
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++, q += 32, qy += 64) {
            uint8_t sc0, m0, sc1, m1;
            kern_scale_min_k4(2 * c, x[i].scales, &sc0, &m0);
            kern_scale_min_k4(2 * c + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q[l] & 0xF) * qy[l];
                s1 += (q[l] >> 4) * qy[l + 32];
            }
            sumi += sc0 * s0 + sc1 * s1;
            const int16_t *bs = y[i].bsums + 4 * c;
            summ += m0 * (bs[0] + bs[1]) + m1 * (bs[2] + bs[3]);
        }
        const float d = y[i].d * kern_f16_to_f32(x[i].d);
        const float dmin = y[i].d * kern_f16_to_f32(x[i].dmin);
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

float kern_dot_q_q6_K_ref(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q6_K *x = w;
    const kern_block_q8_K *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales, *qy = y[i].qs;
        int sumi = 0;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, qy += 128) {
            int s[8] = {0};
            for (int l = 0; l < 32; l++) {
                int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                int is = l / 16;
                s[is] += q1 * qy[l];
                s[is + 2] += q2 * qy[l + 32];
                s[is + 4] += q3 * qy[l + 64];
                s[is + 6] += q4 * qy[l + 96];
            }
            for (int k = 0; k < 8; k++)
                sumi += sc[k] * s[k];
        }
        sum += y[i].d * kern_f16_to_f32(x[i].d) * (float)sumi;
    }
    return sum;
}

// ---- four activation rows at once: the oracle of the x4 kernels ----

#define X4_REF(t)                                                                                  \
    void kern_dot_q_x4_##t##_ref(int64_t n, const void *restrict w, const void *restrict a,        \
                                 size_t a_stride, float *restrict out)                             \
    {                                                                                              \
        for (int k = 0; k < 4; k++) {                                                              \
            out[k] = kern_dot_q_##t##_ref(n, w, (const uint8_t *)a + (size_t)k * a_stride);        \
        }                                                                                          \
    }

X4_REF(q8_0)
X4_REF(q4_0)
X4_REF(q4_K)
X4_REF(q6_K)
