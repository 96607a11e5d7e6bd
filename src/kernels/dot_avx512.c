/* dot_avx512.c — AVX-512 (F, BW, VL, DQ) dot products of a weight row with f32 activations.
 *
 * Same scheme as dot_avx2.c at twice the width: 16 weights per step are dequantized with
 * exactly the float operations of the scalar reference (bit-identical weights) and FMA'd
 * into vector accumulators; only the order of the sums differs from the _ref kernels. The
 * quantized types are compute-bound on one core (int->float conversion per weight), which is
 * where the wider vectors pay. Called only after dispatch.c's cpuid check. */
#include <immintrin.h>
#include <string.h>

#include "kernels/internal.h"

// ---- helpers ----

static inline float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* 16 bytes at p, zero- or sign-extended to 16 int32 lanes. */
static inline __m512i load16_u8(const uint8_t *p)
{
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline __m512i load16_i8(const int8_t *p)
{
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}

// ---- F32, F16 ----

float kern_dot_f32_f32_avx512(int64_t n, const void *restrict w, const float *restrict x)
{
    const float *wf = w;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wf + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(wf + i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(wf + i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(wf + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wf + i), _mm512_loadu_ps(x + i), a0);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) sum += wf[i] * x[i];
    return sum;
}

float kern_dot_f32_f16_avx512(int64_t n, const void *restrict w, const float *restrict x)
{
    const uint16_t *h = w;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(h + i)));
        __m512 w1 =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(h + i + 16)));
        a0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + i + 16), a1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(h + i)));
        a0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + i), a0);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < n; i++) sum += f16(h[i]) * x[i];
    return sum;
}

// ---- Q8_0, Q4_0 ----

float kern_dot_f32_q8_0_avx512(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q8_0 *b = w;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK; i++, x += KERN_QK) {
        const __m512 d = _mm512_set1_ps(f16(b[i].d));
        __m512 w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(load16_i8(b[i].qs)), d);
        __m512 w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(load16_i8(b[i].qs + 16)), d);
        a0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), a0);
        a1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

float kern_dot_f32_q4_0_avx512(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q4_0 *b = w;
    const __m512i low = _mm512_set1_epi32(0x0F), eight = _mm512_set1_epi32(8);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK; i++, x += KERN_QK) {
        const __m512 d = _mm512_set1_ps(f16(b[i].d));
        __m512i q = load16_u8(b[i].qs);
        __m512i q0 = _mm512_sub_epi32(_mm512_and_si512(q, low), eight);
        __m512i q1 = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
        __m512 w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(q0), d);
        __m512 w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(q1), d);
        a0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), a0);
        a1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// ---- Q4_K, Q6_K ----

float kern_dot_f32_q4_K_avx512(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q4_K *b = w;
    const __m512i low = _mm512_set1_epi32(0x0F);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = f16(b[i].d), min = f16(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int is = 0; is < 8; is += 2, q += 32, x += 64) {
            uint8_t sc, m;
            kern_scale_min_k4(is, b[i].scales, &sc, &m);
            const __m512 d1 = _mm512_set1_ps(d * (float)sc), m1 = _mm512_set1_ps(min * (float)m);
            kern_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            const __m512 d2 = _mm512_set1_ps(d * (float)sc), m2 = _mm512_set1_ps(min * (float)m);
            for (int l = 0; l < 32; l += 16) {
                __m512i v = load16_u8(q + l);
                __m512 w0 = _mm512_sub_ps(
                    _mm512_mul_ps(d1, _mm512_cvtepi32_ps(_mm512_and_si512(v, low))), m1);
                __m512 w1 = _mm512_sub_ps(
                    _mm512_mul_ps(d2, _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4))), m2);
                a0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + l), a0);
                a1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 32 + l), a1);
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

float kern_dot_f32_q6_K_avx512(int64_t n, const void *restrict w, const float *restrict x)
{
    const kern_block_q6_K *b = w;
    const __m512i low = _mm512_set1_epi32(0x0F), three = _mm512_set1_epi32(3);
    const __m512i off = _mm512_set1_epi32(32);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const float d = f16(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, x += 128) {
            for (int l = 0; l < 32; l += 16) {
                const int is = l / 16; /* 16 lanes = exactly one sub-block */
                __m512i lo0 = load16_u8(ql + l), lo1 = load16_u8(ql + l + 32);
                __m512i h = load16_u8(qh + l);
                __m512i q1 = _mm512_or_si512(_mm512_and_si512(lo0, low),
                                             _mm512_slli_epi32(_mm512_and_si512(h, three), 4));
                __m512i q2 = _mm512_or_si512(
                    _mm512_and_si512(lo1, low),
                    _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 2), three), 4));
                __m512i q3 = _mm512_or_si512(
                    _mm512_srli_epi32(lo0, 4),
                    _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 4), three), 4));
                __m512i q4 = _mm512_or_si512(_mm512_srli_epi32(lo1, 4),
                                             _mm512_slli_epi32(_mm512_srli_epi32(h, 6), 4));
                __m512 w1 = _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[is]),
                                          _mm512_cvtepi32_ps(_mm512_sub_epi32(q1, off)));
                __m512 w2 = _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[is + 2]),
                                          _mm512_cvtepi32_ps(_mm512_sub_epi32(q2, off)));
                __m512 w3 = _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[is + 4]),
                                          _mm512_cvtepi32_ps(_mm512_sub_epi32(q3, off)));
                __m512 w4 = _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[is + 6]),
                                          _mm512_cvtepi32_ps(_mm512_sub_epi32(q4, off)));
                a0 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + l), a0);
                a1 = _mm512_fmadd_ps(w2, _mm512_loadu_ps(x + l + 32), a1);
                a2 = _mm512_fmadd_ps(w3, _mm512_loadu_ps(x + l + 64), a2);
                a3 = _mm512_fmadd_ps(w4, _mm512_loadu_ps(x + l + 96), a3);
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
