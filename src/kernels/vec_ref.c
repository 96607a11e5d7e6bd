/* vec_ref.c — scalar references of the vector kernels attention uses on the KV cache, whose
 * rows are F32 or F16: scores of many rows against a query (rows_dot) and the weighted sum of
 * rows (rows_wsum). The SIMD versions are in vec_avx2.c; tests/kernels/test_kern_vec.c
 * compares them. */
#include "kernels/internal.h"

/* Element i of a row of F32 (f16 false) or F16 values. */
static inline float row_at(const void *row, int64_t i, bool f16)
{
    return f16 ? kern_f16_to_f32(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

static void rows_dot(bool f16, int64_t n_rows, int64_t n, const void *base, size_t stride,
                     const float *q, float scale, float *out)
{
    for (int64_t p = 0; p < n_rows; p++) {
        const void *row = (const uint8_t *)base + (size_t)p * stride;
        float s = 0.0f;
        for (int64_t i = 0; i < n; i++) s += q[i] * row_at(row, i, f16);
        out[p] = s * scale;
    }
}

static void rows_wsum(bool f16, int64_t n_rows, int64_t n, const void *base, size_t stride,
                      const float *w, float *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = 0.0f;
    for (int64_t p = 0; p < n_rows; p++) {
        const void *row = (const uint8_t *)base + (size_t)p * stride;
        for (int64_t i = 0; i < n; i++) out[i] += w[p] * row_at(row, i, f16);
    }
}

void kern_rows_dot_f32_ref(int64_t n_rows, int64_t n, const void *base, size_t stride,
                           const float *q, float scale, float *out)
{
    rows_dot(false, n_rows, n, base, stride, q, scale, out);
}

void kern_rows_dot_f16_ref(int64_t n_rows, int64_t n, const void *base, size_t stride,
                           const float *q, float scale, float *out)
{
    rows_dot(true, n_rows, n, base, stride, q, scale, out);
}

void kern_rows_wsum_f32_ref(int64_t n_rows, int64_t n, const void *base, size_t stride,
                            const float *w, float *out)
{
    rows_wsum(false, n_rows, n, base, stride, w, out);
}

void kern_rows_wsum_f16_ref(int64_t n_rows, int64_t n, const void *base, size_t stride,
                            const float *w, float *out)
{
    rows_wsum(true, n_rows, n, base, stride, w, out);
}
