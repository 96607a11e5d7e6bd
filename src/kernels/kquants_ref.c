/* kquants_ref.c — scalar reference kernels for the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
 * (256-element super-blocks; layouts in internal.h).
 *
 * to_float is bit-exact with ggml's dequantize_row_q*_K (same float operations in the same
 * order; ref: ggml-quants.c). from_float is dwell's own straightforward quantizer (not ggml's
 * iterative search): each sub-block gets its scale (and min) from its range, the sub-block
 * scales are quantized against the super-block f16 scale(s), then every element is rounded to
 * the nearest code under its final, quantized scale. Its output is valid and dequantizes close
 * to the input; it is used to write test models, not to match llama-quantize byte for byte. */
#include <math.h>
#include <string.h>

#include "kernels/internal.h"

// ---- helpers ----

/* Nearest integer to v clamped to [lo, hi]; NaN gives lo. */
static inline int q_round(float v, int lo, int hi)
{
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)lroundf(v);
}

/* Asymmetric sub-block fit for n elements: x ~ scale * q - min with q in 0..nmax, min >= 0. */
static void fit_scale_min(const float *x, int n, int nmax, float *scale, float *min)
{
    float lo = 0.0f, hi = 0.0f;
    for (int i = 0; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    *scale = (hi - lo) / (float)nmax;
    *min = -lo;
}

/* Quantizes n elements to codes 0..nmax under dl and ml: x ~ dl * q - ml. */
static void quantize_codes_asym(const float *x, int n, float dl, float ml, int nmax, uint8_t *q)
{
    for (int i = 0; i < n; i++) {
        q[i] = dl > 0.0f ? (uint8_t)q_round((x[i] + ml) / dl, 0, nmax) : 0;
    }
}

// ---- Q2_K ----

void kern_to_float_q2_K_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q2_K *b = src;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = kern_f16_to_f32(b[i].d);
        const float min = kern_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int g = 0; g < 2; g++) {
                    uint8_t sc = b[i].scales[is++];
                    float dl = d * (float)(sc & 0xF), ml = min * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++) {
                        *dst++ = dl * (float)((q[l + 16 * g] >> shift) & 3) - ml;
                    }
                }
            }
        }
    }
}

void kern_from_float_q2_K_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q2_K *b = dst;
    for (int64_t i = 0; i < n / KERN_QK_K; i++, src += KERN_QK_K) {
        float scales[16], mins[16], max_scale = 0.0f, max_min = 0.0f;
        for (int s = 0; s < 16; s++) {
            fit_scale_min(src + 16 * s, 16, 3, &scales[s], &mins[s]);
            if (scales[s] > max_scale) max_scale = scales[s];
            if (mins[s] > max_min) max_min = mins[s];
        }
        b[i].d = kern_f32_to_f16(max_scale / 15.0f);
        b[i].dmin = kern_f32_to_f16(max_min / 15.0f);
        const float d = kern_f16_to_f32(b[i].d), dmin = kern_f16_to_f32(b[i].dmin);
        uint8_t codes[KERN_QK_K];
        for (int s = 0; s < 16; s++) {
            int ls = d > 0.0f ? q_round(scales[s] / d, 0, 15) : 0;
            int lm = dmin > 0.0f ? q_round(mins[s] / dmin, 0, 15) : 0;
            b[i].scales[s] = (uint8_t)(ls | (lm << 4));
            quantize_codes_asym(src + 16 * s, 16, d * (float)ls, dmin * (float)lm, 3,
                                codes + 16 * s);
        }
        memset(b[i].qs, 0, sizeof b[i].qs);
        for (int e = 0; e < KERN_QK_K; e++) {
            int half = e / 128, j = (e % 128) / 32, l = e % 32;
            b[i].qs[32 * half + l] |= (uint8_t)(codes[e] << (2 * j));
        }
    }
}

float kern_dot_f32_q2_K_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK_K, sizeof(kern_block_q2_K), kern_to_float_q2_K_ref, x);
}

// ---- Q3_K ----

/* Unpacks the 16 6-bit scales of a Q3_K block (each still offset by 32). */
static void q3_K_scales(const uint8_t raw[12], int8_t out[16])
{
    for (int j = 0; j < 16; j++) {
        int low = j < 8 ? raw[j] & 0xF : raw[j - 8] >> 4;
        int high = (raw[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)(low | (high << 4));
    }
}

void kern_to_float_q3_K_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q3_K *b = src;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d_all = kern_f16_to_f32(b[i].d);
        int8_t scales[16];
        q3_K_scales(b[i].scales, scales);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int g = 0; g < 2; g++) {
                    float dl = d_all * (float)(scales[is++] - 32);
                    for (int l = 16 * g; l < 16 * g + 16; l++) {
                        int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        *dst++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

void kern_from_float_q3_K_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q3_K *b = dst;
    for (int64_t i = 0; i < n / KERN_QK_K; i++, src += KERN_QK_K) {
        float scales[16], max_scale = 0.0f, amax_scale = 0.0f;
        for (int s = 0; s < 16; s++) {
            float amax = 0.0f, max = 0.0f;
            for (int l = 0; l < 16; l++) {
                float v = src[16 * s + l];
                if (fabsf(v) > amax) {
                    amax = fabsf(v);
                    max = v;
                }
            }
            scales[s] = max / -4.0f; /* the extreme element maps to code -4 */
            if (fabsf(scales[s]) > amax_scale) {
                amax_scale = fabsf(scales[s]);
                max_scale = scales[s];
            }
        }
        memset(b[i].scales, 0, sizeof b[i].scales);
        memset(b[i].hmask, 0, sizeof b[i].hmask);
        memset(b[i].qs, 0, sizeof b[i].qs);
        b[i].d = kern_f32_to_f16(max_scale / -32.0f);
        const float d = kern_f16_to_f32(b[i].d);
        for (int s = 0; s < 16; s++) {
            int ls = d != 0.0f ? q_round(scales[s] / d, -32, 31) : 0;
            int l6 = ls + 32;
            if (s < 8) b[i].scales[s] |= (uint8_t)(l6 & 0xF);
            else b[i].scales[s - 8] |= (uint8_t)((l6 & 0xF) << 4);
            b[i].scales[8 + s % 4] |= (uint8_t)((l6 >> 4) << (2 * (s / 4)));
            const float dl = d * (float)ls;
            for (int l = 0; l < 16; l++) {
                int e = 16 * s + l;
                int q = dl != 0.0f ? q_round(src[e] / dl, -4, 3) + 4 : 4;
                int half = e / 128, j = (e % 128) / 32, ll = e % 32;
                b[i].qs[32 * half + ll] |= (uint8_t)((q & 3) << (2 * j));
                if (q & 4) b[i].hmask[ll] |= (uint8_t)(1u << (4 * half + j));
            }
        }
    }
}

float kern_dot_f32_q3_K_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK_K, sizeof(kern_block_q3_K), kern_to_float_q3_K_ref, x);
}

// ---- Q4_K and Q5_K ----

/* Fits 8 sub-blocks of 32 (codes 0..nmax) and packs their 6-bit scales and mins against the
 * super-block d and dmin. Returns the per-element codes in `codes`. */
static void quantize_k4_scales(const float *x, int nmax, uint16_t *d16, uint16_t *dmin16,
                               uint8_t packed[12], uint8_t codes[KERN_QK_K])
{
    float scales[8], mins[8], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        fit_scale_min(x + 32 * s, 32, nmax, &scales[s], &mins[s]);
        if (scales[s] > max_scale) max_scale = scales[s];
        if (mins[s] > max_min) max_min = mins[s];
    }
    *d16 = kern_f32_to_f16(max_scale / 63.0f);
    *dmin16 = kern_f32_to_f16(max_min / 63.0f);
    const float d = kern_f16_to_f32(*d16), dmin = kern_f16_to_f32(*dmin16);
    uint8_t ls[8], lm[8];
    for (int s = 0; s < 8; s++) {
        ls[s] = d > 0.0f ? (uint8_t)q_round(scales[s] / d, 0, 63) : 0;
        lm[s] = dmin > 0.0f ? (uint8_t)q_round(mins[s] / dmin, 0, 63) : 0;
        quantize_codes_asym(x + 32 * s, 32, d * (float)ls[s], dmin * (float)lm[s], nmax,
                            codes + 32 * s);
    }
    for (int j = 0; j < 4; j++) {
        packed[j] = (uint8_t)(ls[j] | ((ls[j + 4] >> 4) << 6));
        packed[j + 4] = (uint8_t)(lm[j] | ((lm[j + 4] >> 4) << 6));
        packed[j + 8] = (uint8_t)((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
    }
}

void kern_to_float_q4_K_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q4_K *b = src;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = kern_f16_to_f32(b[i].d);
        const float min = kern_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int is = 0; is < 8; is += 2, q += 32) {
            uint8_t sc, m;
            kern_scale_min_k4(is, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = min * (float)m;
            kern_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = min * (float)m;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void kern_from_float_q4_K_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q4_K *b = dst;
    for (int64_t i = 0; i < n / KERN_QK_K; i++, src += KERN_QK_K) {
        uint8_t codes[KERN_QK_K];
        quantize_k4_scales(src, 15, &b[i].d, &b[i].dmin, b[i].scales, codes);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                b[i].qs[32 * c + l] =
                    (uint8_t)(codes[64 * c + l] | (codes[64 * c + 32 + l] << 4));
            }
        }
    }
}

float kern_dot_f32_q4_K_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK_K, sizeof(kern_block_q4_K), kern_to_float_q4_K_ref, x);
}

void kern_to_float_q5_K_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q5_K *b = src;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = kern_f16_to_f32(b[i].d);
        const float min = kern_f16_to_f32(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < 8; is += 2, ql += 32) {
            uint8_t sc, m;
            kern_scale_min_k4(is, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = min * (float)m;
            kern_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = min * (float)m;
            for (int l = 0; l < 32; l++) {
                *dst++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            }
            for (int l = 0; l < 32; l++) {
                *dst++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            }
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

void kern_from_float_q5_K_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q5_K *b = dst;
    for (int64_t i = 0; i < n / KERN_QK_K; i++, src += KERN_QK_K) {
        uint8_t codes[KERN_QK_K];
        quantize_k4_scales(src, 31, &b[i].d, &b[i].dmin, b[i].scales, codes);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                uint8_t lo = codes[64 * c + l], hi = codes[64 * c + 32 + l];
                b[i].qs[32 * c + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
                b[i].qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        }
    }
}

float kern_dot_f32_q5_K_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK_K, sizeof(kern_block_q5_K), kern_to_float_q5_K_ref, x);
}

// ---- Q6_K ----

void kern_to_float_q6_K_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q6_K *b = src;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = kern_f16_to_f32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int half = 0; half < 2; half++, dst += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l] = d * (float)sc[is] * (float)q1;
                dst[l + 32] = d * (float)sc[is + 2] * (float)q2;
                dst[l + 64] = d * (float)sc[is + 4] * (float)q3;
                dst[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void kern_from_float_q6_K_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q6_K *b = dst;
    for (int64_t i = 0; i < n / KERN_QK_K; i++, src += KERN_QK_K) {
        float scales[16], max_scale = 0.0f, amax_scale = 0.0f;
        for (int s = 0; s < 16; s++) {
            float amax = 0.0f, max = 0.0f;
            for (int l = 0; l < 16; l++) {
                float v = src[16 * s + l];
                if (fabsf(v) > amax) {
                    amax = fabsf(v);
                    max = v;
                }
            }
            scales[s] = max / -32.0f; /* the extreme element maps to code -32 */
            if (fabsf(scales[s]) > amax_scale) {
                amax_scale = fabsf(scales[s]);
                max_scale = scales[s];
            }
        }
        b[i].d = kern_f32_to_f16(max_scale / -128.0f);
        const float d = kern_f16_to_f32(b[i].d);
        uint8_t codes[KERN_QK_K];
        for (int s = 0; s < 16; s++) {
            int ls = d != 0.0f ? q_round(scales[s] / d, -128, 127) : 0;
            b[i].scales[s] = (int8_t)ls;
            const float dl = d * (float)ls;
            for (int l = 0; l < 16; l++) {
                float v = src[16 * s + l];
                codes[16 * s + l] = (uint8_t)((dl != 0.0f ? q_round(v / dl, -32, 31) : 0) + 32);
            }
        }
        memset(b[i].ql, 0, sizeof b[i].ql);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int e = 0; e < KERN_QK_K; e++) {
            int half = e / 128, v = e % 128, k = v / 32, l = v % 32;
            uint8_t *ql = &b[i].ql[64 * half + l + 32 * (k & 1)];
            *ql |= (uint8_t)((codes[e] & 0xF) << (k < 2 ? 0 : 4));
            b[i].qh[32 * half + l] |= (uint8_t)((codes[e] >> 4) << (2 * k));
        }
    }
}

float kern_dot_f32_q6_K_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK_K, sizeof(kern_block_q6_K), kern_to_float_q6_K_ref, x);
}
