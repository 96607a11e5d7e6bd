/* simd_avx2.h — the small inline helpers every AVX2 kernel file uses. Include only from
 * files compiled with -mavx2 -mfma -mf16c (the *_avx2.c files). */
#ifndef DWELL_KERNELS_SIMD_AVX2_H
#define DWELL_KERNELS_SIMD_AVX2_H

#include <immintrin.h>
#include <stdint.h>

/* F16C conversion: the same value as kern_f16_to_f32 for every non-NaN half (checked
 * exhaustively in test_kern_convert), without a call per block. */
static inline float kern_avx2_f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* The sum of the 8 lanes of v. */
static inline float kern_avx2_hsum8(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

#endif
