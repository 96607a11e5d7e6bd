/* vec_ref.c — scalar references of the small vector kernels attention uses on the KV cache:
 * out += a * v for a row v of F32 or F16 (the cache's element types). The SIMD versions are in
 * vec_avx2.c; tests/kernels/test_kern_vec.c compares them. */
#include "kernels/internal.h"

void kern_mad_f32_ref(int64_t n, float a, const void *restrict v, float *restrict out)
{
    const float *x = v;
    for (int64_t i = 0; i < n; i++)
        out[i] += a * x[i];
}

void kern_mad_f16_ref(int64_t n, float a, const void *restrict v, float *restrict out)
{
    const uint16_t *x = v;
    for (int64_t i = 0; i < n; i++)
        out[i] += a * kern_f16_to_f32(x[i]);
}
