/* dotq_avx2.c — AVX2 integer dot products of weight rows with quantized activations (Q8_0 for
 * Q8_0/Q4_0 weights, Q8_K for Q4_K/Q6_K): the fast path of actq_ref.c.
 *
 * Bytes are multiplied with maddubs (unsigned x signed -> pairs of int16), then summed to int32
 * with madd; a block's int32 sum is exact and is scaled by the product of the two block scales
 * in float. Signed weights (Q8_0, Q4_0 - 8) use the sign trick: |w| (unsigned) times
 * sign(w) * y. No int16 overflow: |w| <= 128 and |y| <= 127 give pairs <= 32512. The integer
 * sums equal the _ref kernels' exactly; only the float accumulation order differs.
 * Compiled with -mavx2 -mfma -mf16c; called only after dispatch.c's cpuid check. Tested
 * against the _ref kernels in tests/kernels/test_kern_dotq.c. */
#include <immintrin.h>
#include <string.h>

#include "kernels/internal.h"

// ---- helpers ----

static inline float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

static inline float hsum8(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline int hsum8_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* 8 int32 lanes, each the sum of 4 products of signed bytes x * y. */
static inline __m256i dot_i8(__m256i x, __m256i y)
{
    __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

/* 32 nibbles of a Q4 block: low nibbles (elements 0..15) then high nibbles (16..31). */
static inline __m256i q4_unpack(const uint8_t *qs)
{
    __m128i q = _mm_loadu_si128((const __m128i *)(const void *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// ---- Q8_0, Q4_0 (x Q8_0) ----

float kern_dot_q_q8_0_avx2(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q8_0 *x = w, *y = a;
    const int64_t nb = n / KERN_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)(const void *)x[i].qs),
                            _mm256_loadu_si256((const __m256i *)(const void *)y[i].qs));
        __m256i p1 = dot_i8(_mm256_loadu_si256((const __m256i *)(const void *)x[i + 1].qs),
                            _mm256_loadu_si256((const __m256i *)(const void *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)),
                               _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i + 1].d) * f16(y[i + 1].d)),
                               _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)(const void *)x[i].qs),
                            _mm256_loadu_si256((const __m256i *)(const void *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)),
                               _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

float kern_dot_q_q4_0_avx2(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q4_0 *x = w;
    const kern_block_q8_0 *y = a;
    const int64_t nb = n / KERN_QK;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256i q0 = _mm256_sub_epi8(q4_unpack(x[i].qs), eight);
        __m256i q1 = _mm256_sub_epi8(q4_unpack(x[i + 1].qs), eight);
        __m256i p0 = dot_i8(q0, _mm256_loadu_si256((const __m256i *)(const void *)y[i].qs));
        __m256i p1 = dot_i8(q1, _mm256_loadu_si256((const __m256i *)(const void *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)),
                               _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i + 1].d) * f16(y[i + 1].d)),
                               _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        __m256i q0 = _mm256_sub_epi8(q4_unpack(x[i].qs), eight);
        __m256i p0 = dot_i8(q0, _mm256_loadu_si256((const __m256i *)(const void *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)),
                               _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

// ---- Q4_K, Q6_K (x Q8_K) ----

float kern_dot_q_q4_K_avx2(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q4_K *x = w;
    const kern_block_q8_K *y = a;
    const __m256i low = _mm256_set1_epi8(0x0F);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const int8_t *qy = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        int summ = 0;
        for (int c = 0; c < 4; c++, q += 32, qy += 64) {
            uint8_t sc0, m0, sc1, m1;
            kern_scale_min_k4(2 * c, x[i].scales, &sc0, &m0);
            kern_scale_min_k4(2 * c + 1, x[i].scales, &sc1, &m1);
            const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)q);
            const __m256i lo = _mm256_and_si256(v, low);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            __m256i p0 = _mm256_maddubs_epi16(
                lo, _mm256_loadu_si256((const __m256i *)(const void *)qy));
            __m256i p1 = _mm256_maddubs_epi16(
                hi, _mm256_loadu_si256((const __m256i *)(const void *)(qy + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc0)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc1)));
            const int16_t *bs = y[i].bsums + 4 * c;
            summ += m0 * (bs[0] + bs[1]) + m1 * (bs[2] + bs[3]);
        }
        const float d = y[i].d * f16(x[i].d), dmin = y[i].d * f16(x[i].dmin);
        sum += d * (float)hsum8_i32(sumi) - dmin * (float)summ;
    }
    return sum;
}

float kern_dot_q_q6_K_avx2(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q6_K *x = w;
    const kern_block_q8_K *y = a;
    const __m256i low = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
    const __m256i m32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales, *qy = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, qy += 128) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, low),
                                   _mm256_slli_epi16(_mm256_and_si256(h, three), 4));
            q[1] = _mm256_or_si256(
                _mm256_and_si256(l1, low),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), three), 4));
            q[2] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), low),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), three), 4));
            q[3] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), three), 4));
            for (int k = 0; k < 4; k++) {
                const __m256i vy =
                    _mm256_loadu_si256((const __m256i *)(const void *)(qy + 32 * k));
                /* (q - 32) . y = q . y - 32 . y, both unsigned x signed */
                __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], vy),
                                             _mm256_maddubs_epi16(m32, vy));
                const __m256i s = _mm256_setr_m128i(_mm_set1_epi16(sc[2 * k]),
                                                    _mm_set1_epi16(sc[2 * k + 1]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * f16(x[i].d)), _mm256_cvtepi32_ps(sumi),
                              acc);
    }
    return hsum8(acc);
}
