/* dot_avx2.c — AVX2 + FMA dot products of a weight row with f32 activations.
 *
 * Each kernel dequantizes 8 weights at a time with exactly the float operations of its
 * scalar reference (same products, same rounding, no contraction), so the weights are
 * bit-identical to to_float's; only the order of the final accumulation differs (FMA into
 * several vector accumulators). Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt) and
 * called only after dispatch.c's cpuid check. Tested against the _ref kernels in
 * tests/kernels/test_kern_simd.c. */
#include <immintrin.h>
#include <string.h>

#include "kernels/internal.h"
#include "kernels/simd_avx2.h"

// ---- helpers ----

/* 8 bytes at p, zero-extended to 8 int32 lanes. */
static inline __m256i load8_u8(const uint8_t *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v));
}

static inline __m256i load8_i8(const int8_t *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v));
}

// ---- F32, F16, BF16 ----

float kern_dot_f32_f32_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const float *wf = w;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i), _mm256_loadu_ps(x + i), a0);
    }
    float sum = kern_avx2_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += wf[i] * x[i];
    return sum;
}

float kern_dot_f32_f16_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const uint16_t *h = w;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8)));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
    }
    float sum = kern_avx2_hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += kern_avx2_f16(h[i]) * x[i];
    return sum;
}

float kern_dot_f32_bf16_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const uint16_t *h = w;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
        __m256i v1 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i + 8)));
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)),
                             _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)),
                             _mm256_loadu_ps(x + i + 8), a1);
    }
    float sum = kern_avx2_hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += kern_bf16_to_f32(h[i]) * x[i];
    return sum;
}

// ---- Q8_0, Q4_0 ----

float kern_dot_f32_q8_0_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q8_0 *b = w;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK; i++, x += KERN_QK) {
        const __m256 d = _mm256_set1_ps(kern_avx2_f16(b[i].d));
        for (int j = 0; j < KERN_QK; j += 16) {
            __m256 w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(load8_i8(b[i].qs + j)), d);
            __m256 w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(load8_i8(b[i].qs + j + 8)), d);
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j + 8), a1);
        }
    }
    return kern_avx2_hsum8(_mm256_add_ps(a0, a1));
}

float kern_dot_f32_q4_0_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q4_0 *b = w;
    const __m256i low = _mm256_set1_epi32(0x0F), eight = _mm256_set1_epi32(8);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK; i++, x += KERN_QK) {
        const __m256 d = _mm256_set1_ps(kern_avx2_f16(b[i].d));
        for (int j = 0; j < KERN_QK / 2; j += 8) {
            __m256i q = load8_u8(b[i].qs + j);
            __m256i q0 = _mm256_sub_epi32(_mm256_and_si256(q, low), eight);
            __m256i q1 = _mm256_sub_epi32(_mm256_srli_epi32(q, 4), eight);
            __m256 w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(q0), d);
            __m256 w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(q1), d);
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j + KERN_QK / 2), a1);
        }
    }
    return kern_avx2_hsum8(_mm256_add_ps(a0, a1));
}

// ---- Q4_K, Q6_K ----

float kern_dot_f32_q4_K_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q4_K *b = w;
    const __m256i low = _mm256_set1_epi32(0x0F);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = kern_avx2_f16(b[i].d), min = kern_avx2_f16(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int is = 0; is < 8; is += 2, q += 32, x += 64) {
            uint8_t sc, m;
            kern_scale_min_k4(is, b[i].scales, &sc, &m);
            const __m256 d1 = _mm256_set1_ps(d * (float)sc), m1 = _mm256_set1_ps(min * (float)m);
            kern_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            const __m256 d2 = _mm256_set1_ps(d * (float)sc), m2 = _mm256_set1_ps(min * (float)m);
            for (int l = 0; l < 32; l += 8) {
                __m256i v = load8_u8(q + l);
                __m256 w0 = _mm256_sub_ps(
                    _mm256_mul_ps(d1, _mm256_cvtepi32_ps(_mm256_and_si256(v, low))), m1);
                __m256 w1 = _mm256_sub_ps(
                    _mm256_mul_ps(d2, _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4))), m2);
                a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + l), a0);
                a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 32 + l), a1);
            }
        }
    }
    return kern_avx2_hsum8(_mm256_add_ps(a0, a1));
}

float kern_dot_f32_q6_K_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q6_K *b = w;
    const __m256i low = _mm256_set1_epi32(0x0F), three = _mm256_set1_epi32(3);
    const __m256i off = _mm256_set1_epi32(32);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = kern_avx2_f16(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, x += 128) {
            for (int l = 0; l < 32; l += 8) {
                const int is = l / 16;
                __m256i lo0 = load8_u8(ql + l), lo1 = load8_u8(ql + l + 32);
                __m256i h = load8_u8(qh + l);
                __m256i q1 = _mm256_or_si256(_mm256_and_si256(lo0, low),
                                             _mm256_slli_epi32(_mm256_and_si256(h, three), 4));
                __m256i q2 = _mm256_or_si256(
                    _mm256_and_si256(lo1, low),
                    _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2), three), 4));
                __m256i q3 = _mm256_or_si256(
                    _mm256_srli_epi32(lo0, 4),
                    _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 4), three), 4));
                __m256i q4 = _mm256_or_si256(_mm256_srli_epi32(lo1, 4),
                                             _mm256_slli_epi32(_mm256_srli_epi32(h, 6), 4));
                __m256 w1 = _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[is]),
                                          _mm256_cvtepi32_ps(_mm256_sub_epi32(q1, off)));
                __m256 w2 = _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[is + 2]),
                                          _mm256_cvtepi32_ps(_mm256_sub_epi32(q2, off)));
                __m256 w3 = _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[is + 4]),
                                          _mm256_cvtepi32_ps(_mm256_sub_epi32(q3, off)));
                __m256 w4 = _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[is + 6]),
                                          _mm256_cvtepi32_ps(_mm256_sub_epi32(q4, off)));
                a0 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + l), a0);
                a1 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + l + 32), a1);
                a2 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + l + 64), a2);
                a3 = _mm256_fmadd_ps(w4, _mm256_loadu_ps(x + l + 96), a3);
            }
        }
    }
    return kern_avx2_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// ---- Q4_1, Q5_0, Q5_1, Q5_K ----

float kern_dot_f32_q4_1_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q4_1 *b = w;
    const __m256i low = _mm256_set1_epi32(0x0F);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK; i++, x += KERN_QK) {
        const __m256 d = _mm256_set1_ps(kern_avx2_f16(b[i].d));
        const __m256 m = _mm256_set1_ps(kern_avx2_f16(b[i].m));
        for (int j = 0; j < KERN_QK / 2; j += 8) {
            __m256i q = load8_u8(b[i].qs + j);
            __m256 w0 = _mm256_add_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(q, low)), d), m);
            __m256 w1 = _mm256_add_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(q, 4)), d), m);
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j + KERN_QK / 2), a1);
        }
    }
    return kern_avx2_hsum8(_mm256_add_ps(a0, a1));
}

/* The 5th bits of elements j..j+7 of a Q5 block (bit j+lane of qh), as 0 or 16 per lane. */
static inline __m256i q5_high(uint32_t qh, int j)
{
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i bits = _mm256_srlv_epi32(_mm256_set1_epi32((int)qh),
                                     _mm256_add_epi32(lanes, _mm256_set1_epi32(j)));
    return _mm256_slli_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(1)), 4);
}

static inline uint32_t q5_qh(const uint8_t qh[4])
{
    uint32_t v;
    memcpy(&v, qh, sizeof v);
    return v;
}

float kern_dot_f32_q5_0_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q5_0 *b = w;
    const __m256i low = _mm256_set1_epi32(0x0F), sixteen = _mm256_set1_epi32(16);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK; i++, x += KERN_QK) {
        const __m256 d = _mm256_set1_ps(kern_avx2_f16(b[i].d));
        const uint32_t qh = q5_qh(b[i].qh);
        for (int j = 0; j < KERN_QK / 2; j += 8) {
            __m256i q = load8_u8(b[i].qs + j);
            __m256i q0 = _mm256_or_si256(_mm256_and_si256(q, low), q5_high(qh, j));
            __m256i q1 = _mm256_or_si256(_mm256_srli_epi32(q, 4), q5_high(qh, j + 16));
            __m256 w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q0, sixteen)), d);
            __m256 w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q1, sixteen)), d);
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j + KERN_QK / 2), a1);
        }
    }
    return kern_avx2_hsum8(_mm256_add_ps(a0, a1));
}

float kern_dot_f32_q5_1_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q5_1 *b = w;
    const __m256i low = _mm256_set1_epi32(0x0F);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK; i++, x += KERN_QK) {
        const __m256 d = _mm256_set1_ps(kern_avx2_f16(b[i].d));
        const __m256 m = _mm256_set1_ps(kern_avx2_f16(b[i].m));
        const uint32_t qh = q5_qh(b[i].qh);
        for (int j = 0; j < KERN_QK / 2; j += 8) {
            __m256i q = load8_u8(b[i].qs + j);
            __m256i q0 = _mm256_or_si256(_mm256_and_si256(q, low), q5_high(qh, j));
            __m256i q1 = _mm256_or_si256(_mm256_srli_epi32(q, 4), q5_high(qh, j + 16));
            __m256 w0 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q0), d), m);
            __m256 w1 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q1), d), m);
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j + KERN_QK / 2), a1);
        }
    }
    return kern_avx2_hsum8(_mm256_add_ps(a0, a1));
}

float kern_dot_f32_q5_K_avx2(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q5_K *b = w;
    const __m256i low = _mm256_set1_epi32(0x0F), one = _mm256_set1_epi32(1);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = kern_avx2_f16(b[i].d), min = kern_avx2_f16(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int is = 0; is < 8; is += 2, q += 32, x += 64) {
            uint8_t sc, m;
            kern_scale_min_k4(is, b[i].scales, &sc, &m);
            const __m256 d1 = _mm256_set1_ps(d * (float)sc), m1 = _mm256_set1_ps(min * (float)m);
            kern_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            const __m256 d2 = _mm256_set1_ps(d * (float)sc), m2 = _mm256_set1_ps(min * (float)m);
            for (int l = 0; l < 32; l += 8) {
                __m256i v = load8_u8(q + l), h = load8_u8(b[i].qh + l);
                __m256i h0 = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, is), one), 4);
                __m256i h1 =
                    _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, is + 1), one), 4);
                __m256i q0 = _mm256_add_epi32(_mm256_and_si256(v, low), h0);
                __m256i q1 = _mm256_add_epi32(_mm256_srli_epi32(v, 4), h1);
                __m256 w0 = _mm256_sub_ps(_mm256_mul_ps(d1, _mm256_cvtepi32_ps(q0)), m1);
                __m256 w1 = _mm256_sub_ps(_mm256_mul_ps(d2, _mm256_cvtepi32_ps(q1)), m2);
                a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + l), a0);
                a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 32 + l), a1);
            }
        }
    }
    return kern_avx2_hsum8(_mm256_add_ps(a0, a1));
}

// ---- dequantization ----

void kern_to_float_f16_avx2(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    }
    for (; i < n; i++) dst[i] = kern_f16_to_f32(h[i]);
}
