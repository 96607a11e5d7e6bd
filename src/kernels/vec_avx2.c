/* vec_avx2.c — AVX2 + FMA + F16C versions of vec_ref.c's kernels (out += a * v), 8 elements
 * per step with a scalar tail. The F16 conversion is exact, so each element gets the same
 * product as the reference; only fused multiply-add rounding differs (one rounding instead of
 * two). Called only after dispatch.c's cpuid check. */
#include <immintrin.h>

#include "kernels/internal.h"

void kern_mad_f32_avx2(int64_t n, float a, const void *restrict v, float *restrict out)
{
    const float *x = v;
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(out + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(out + i)));
    }
    for (; i < n; i++)
        out[i] += a * x[i];
}

void kern_mad_f16_avx2(int64_t n, float a, const void *restrict v, float *restrict out)
{
    const uint16_t *x = v;
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(x + i)));
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(out + i)));
    }
    for (; i < n; i++)
        out[i] += a * _cvtsh_ss(x[i]);
}
