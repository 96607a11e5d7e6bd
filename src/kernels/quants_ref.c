/* quants_ref.c — scalar reference kernels for F32, F16, BF16 and the 32-element block types
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
 *
 * to_float is bit-exact with ggml's dequantize_row_* and from_float follows ggml's reference
 * quantizers (quantize_row_*_ref) rounding for rounding (ref: ggml-quants.c). The dot products
 * dequantize one block at a time into a stack buffer, sum the block's products in f32 and add
 * the block sums: the oracle the SIMD kernels are tested against. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/internal.h"

// ---- helpers ----

/* Truncates v + bias to an int in [0, hi] (ggml casts (int8_t)(v + bias) and clamps with MIN;
 * the clamp below also keeps NaN input away from an undefined float-to-int conversion). */
static inline int q_trunc(float v, int hi)
{
    if (!(v >= 0.0f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

float kern_dot_blocks_ref(int64_t n, const void *w, int64_t blck, size_t type_size,
                          kern_to_float_fn dq, const float *x)
{
    const uint8_t *p = w;
    float buf[KERN_QK_K], sum = 0.0f;
    for (int64_t i = 0; i < n / blck; i++) {
        dq(p + (size_t)i * type_size, buf, blck);
        sum += kern_dot_block_ref(buf, x + i * blck, blck);
    }
    return sum;
}

// ---- F32, F16, BF16 ----

void kern_to_float_f32_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void kern_from_float_f32_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

float kern_dot_f32_f32_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    const float *wf = w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i += KERN_QK) {
        int64_t m = n - i < KERN_QK ? n - i : KERN_QK;
        sum += kern_dot_block_ref(wf + i, x + i, m);
    }
    return sum;
}

/* The dot of a row of 16-bit floats (F16 or BF16, converted by dq) with x, 32 at a time as
 * the block types, with a partial last group (these rows may have any length). */
static float dot_halves_ref(int64_t n, const uint16_t *h, kern_to_float_fn dq, const float *x)
{
    float buf[KERN_QK], sum = 0.0f;
    for (int64_t i = 0; i < n; i += KERN_QK) {
        int64_t m = n - i < KERN_QK ? n - i : KERN_QK;
        dq(h + i, buf, m);
        sum += kern_dot_block_ref(buf, x + i, m);
    }
    return sum;
}

void kern_to_float_f16_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = kern_f16_to_f32(h[i]);
}

void kern_from_float_f16_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = kern_f32_to_f16(src[i]);
}

float kern_dot_f32_f16_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return dot_halves_ref(n, w, kern_to_float_f16_ref, x);
}

void kern_to_float_bf16_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = kern_bf16_to_f32(h[i]);
}

void kern_from_float_bf16_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = kern_f32_to_bf16(src[i]);
}

float kern_dot_f32_bf16_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return dot_halves_ref(n, w, kern_to_float_bf16_ref, x);
}

// ---- Q4_0 ----

void kern_to_float_q4_0_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / KERN_QK; i++, dst += KERN_QK) {
        const float d = kern_f16_to_f32(b[i].d);
        for (int j = 0; j < KERN_QK / 2; j++) {
            dst[j] = (float)((b[i].qs[j] & 0x0F) - 8) * d;
            dst[j + KERN_QK / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void kern_from_float_q4_0_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / KERN_QK; i++, src += KERN_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < KERN_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kern_f32_to_f16(d);
        for (int j = 0; j < KERN_QK / 2; j++) {
            int q0 = q_trunc(src[j] * id + 8.5f, 15);
            int q1 = q_trunc(src[j + KERN_QK / 2] * id + 8.5f, 15);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

float kern_dot_f32_q4_0_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK, sizeof(kern_block_q4_0), kern_to_float_q4_0_ref, x);
}

// ---- Q4_1 ----

void kern_to_float_q4_1_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / KERN_QK; i++, dst += KERN_QK) {
        const float d = kern_f16_to_f32(b[i].d);
        const float m = kern_f16_to_f32(b[i].m);
        for (int j = 0; j < KERN_QK / 2; j++) {
            dst[j] = (float)(b[i].qs[j] & 0x0F) * d + m;
            dst[j + KERN_QK / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void kern_from_float_q4_1_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / KERN_QK; i++, src += KERN_QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < KERN_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kern_f32_to_f16(d);
        b[i].m = kern_f32_to_f16(min);
        for (int j = 0; j < KERN_QK / 2; j++) {
            int q0 = q_trunc((src[j] - min) * id + 0.5f, 15);
            int q1 = q_trunc((src[j + KERN_QK / 2] - min) * id + 0.5f, 15);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

float kern_dot_f32_q4_1_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK, sizeof(kern_block_q4_1), kern_to_float_q4_1_ref, x);
}

// ---- Q5_0 ----

static inline uint32_t load_qh(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) |
           ((uint32_t)qh[3] << 24);
}

static inline void store_qh(uint8_t qh[4], uint32_t v)
{
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(v >> (8 * k));
}

void kern_to_float_q5_0_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / KERN_QK; i++, dst += KERN_QK) {
        const float d = kern_f16_to_f32(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < KERN_QK / 2; j++) {
            int h0 = (int)((qh >> j) << 4) & 0x10;
            int h1 = (int)(qh >> (j + 12)) & 0x10;
            dst[j] = (float)(((b[i].qs[j] & 0x0F) | h0) - 16) * d;
            dst[j + KERN_QK / 2] = (float)(((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void kern_from_float_q5_0_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / KERN_QK; i++, src += KERN_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < KERN_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kern_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < KERN_QK / 2; j++) {
            int q0 = q_trunc(src[j] * id + 16.5f, 31);
            int q1 = q_trunc(src[j + KERN_QK / 2] * id + 16.5f, 31);
            b[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + KERN_QK / 2);
        }
        store_qh(b[i].qh, qh);
    }
}

float kern_dot_f32_q5_0_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK, sizeof(kern_block_q5_0), kern_to_float_q5_0_ref, x);
}

// ---- Q5_1 ----

void kern_to_float_q5_1_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / KERN_QK; i++, dst += KERN_QK) {
        const float d = kern_f16_to_f32(b[i].d);
        const float m = kern_f16_to_f32(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < KERN_QK / 2; j++) {
            int h0 = (int)((qh >> j) << 4) & 0x10;
            int h1 = (int)(qh >> (j + 12)) & 0x10;
            dst[j] = (float)((b[i].qs[j] & 0x0F) | h0) * d + m;
            dst[j + KERN_QK / 2] = (float)((b[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void kern_from_float_q5_1_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / KERN_QK; i++, src += KERN_QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < KERN_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kern_f32_to_f16(d);
        b[i].m = kern_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < KERN_QK / 2; j++) {
            int q0 = q_trunc((src[j] - min) * id + 0.5f, 31);
            int q1 = q_trunc((src[j + KERN_QK / 2] - min) * id + 0.5f, 31);
            b[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + KERN_QK / 2);
        }
        store_qh(b[i].qh, qh);
    }
}

float kern_dot_f32_q5_1_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK, sizeof(kern_block_q5_1), kern_to_float_q5_1_ref, x);
}

// ---- Q8_0 ----

void kern_to_float_q8_0_ref(const void *restrict src, float *restrict dst, int64_t n)
{
    const kern_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / KERN_QK; i++, dst += KERN_QK) {
        const float d = kern_f16_to_f32(b[i].d);
        for (int j = 0; j < KERN_QK; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

void kern_from_float_q8_0_ref(const float *restrict src, void *restrict dst, int64_t n)
{
    kern_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / KERN_QK; i++, src += KERN_QK) {
        float amax = 0.0f;
        for (int j = 0; j < KERN_QK; j++) {
            if (fabsf(src[j]) > amax) amax = fabsf(src[j]);
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kern_f32_to_f16(d);
        for (int j = 0; j < KERN_QK; j++) {
            float v = roundf(src[j] * id);
            if (isnan(v)) v = 0.0f;
            v = fminf(fmaxf(v, -127.0f), 127.0f);
            b[i].qs[j] = (int8_t)v;
        }
    }
}

float kern_dot_f32_q8_0_ref(int64_t n, const void *restrict w, const float *restrict x)
{
    return kern_dot_blocks_ref(n, w, KERN_QK, sizeof(kern_block_q8_0), kern_to_float_q8_0_ref, x);
}
