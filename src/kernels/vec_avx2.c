/* vec_avx2.c — AVX2 + FMA + F16C versions of vec_ref.c's attention kernels, 8 elements per
 * step with a scalar tail. The F16 conversion is exact, so each element gets the same
 * product as the reference; only fused multiply-add rounding differs (one rounding instead of
 * two). Called only after dispatch.c's cpuid check. */
#include <immintrin.h>

#include "kernels/internal.h"
#include "kernels/simd_avx2.h"

// ---- attention over strided cache rows ----
/* rows_dot keeps 4 rows' partial sums in 4 accumulators and reduces them together; rows_wsum
 * keeps 32 output elements in registers while it walks every row, instead of reading and
 * writing the output once per row. */

#define ROW_LOAD_F32(row, i) _mm256_loadu_ps((const float *)(row) + (i))
#define ROW_LOAD_F16(row, i)                                                                 \
    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)(row) + (i))))
#define ROW_AT_F32(row, i) (((const float *)(row))[i])
#define ROW_AT_F16(row, i) _cvtsh_ss(((const uint16_t *)(row))[i])

/* The 4 horizontal sums of a..d, as one vector. */
static inline __m128 hsum4x8(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

#define DEFINE_ROWS(T, LOAD, AT)                                                             \
    void kern_rows_dot_##T##_avx2(int64_t n_rows, int64_t n, const void *base, size_t stride, \
                                  const float *q, float scale, float *out)                   \
    {                                                                                        \
        const uint8_t *b = base;                                                             \
        int64_t p = 0;                                                                       \
        for (; p + 4 <= n_rows; p += 4) {                                                    \
            const uint8_t *r0 = b + (size_t)p * stride, *r1 = r0 + stride;                   \
            const uint8_t *r2 = r1 + stride, *r3 = r2 + stride;                              \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                       \
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                       \
            int64_t i = 0;                                                                   \
            for (; i + 8 <= n; i += 8) {                                                     \
                const __m256 qv = _mm256_loadu_ps(q + i);                                    \
                a0 = _mm256_fmadd_ps(LOAD(r0, i), qv, a0);                                   \
                a1 = _mm256_fmadd_ps(LOAD(r1, i), qv, a1);                                   \
                a2 = _mm256_fmadd_ps(LOAD(r2, i), qv, a2);                                   \
                a3 = _mm256_fmadd_ps(LOAD(r3, i), qv, a3);                                   \
            }                                                                                \
            float s[4];                                                                      \
            _mm_storeu_ps(s, hsum4x8(a0, a1, a2, a3));                                       \
            for (; i < n; i++) {                                                             \
                s[0] += q[i] * AT(r0, i), s[1] += q[i] * AT(r1, i);                          \
                s[2] += q[i] * AT(r2, i), s[3] += q[i] * AT(r3, i);                          \
            }                                                                                \
            for (int k = 0; k < 4; k++) out[p + k] = s[k] * scale;                           \
        }                                                                                    \
        for (; p < n_rows; p++) {                                                            \
            const uint8_t *r = b + (size_t)p * stride;                                       \
            __m256 a = _mm256_setzero_ps();                                                  \
            int64_t i = 0;                                                                   \
            for (; i + 8 <= n; i += 8) a = _mm256_fmadd_ps(LOAD(r, i), _mm256_loadu_ps(q + i), a); \
            float s = kern_avx2_hsum8(a);                                                    \
            for (; i < n; i++) s += q[i] * AT(r, i);                                         \
            out[p] = s * scale;                                                              \
        }                                                                                    \
    }                                                                                        \
                                                                                             \
    void kern_rows_wsum_##T##_avx2(int64_t n_rows, int64_t n, const void *base,              \
                                   size_t stride, const float *w, float *out)                \
    {                                                                                        \
        const uint8_t *b = base;                                                             \
        int64_t i = 0;                                                                       \
        for (; i + 32 <= n; i += 32) {                                                       \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                       \
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                       \
            for (int64_t p = 0; p < n_rows; p++) {                                           \
                const uint8_t *r = b + (size_t)p * stride;                                   \
                const __m256 wv = _mm256_set1_ps(w[p]);                                      \
                a0 = _mm256_fmadd_ps(wv, LOAD(r, i), a0);                                    \
                a1 = _mm256_fmadd_ps(wv, LOAD(r, i + 8), a1);                                \
                a2 = _mm256_fmadd_ps(wv, LOAD(r, i + 16), a2);                               \
                a3 = _mm256_fmadd_ps(wv, LOAD(r, i + 24), a3);                               \
            }                                                                                \
            _mm256_storeu_ps(out + i, a0), _mm256_storeu_ps(out + i + 8, a1);                \
            _mm256_storeu_ps(out + i + 16, a2), _mm256_storeu_ps(out + i + 24, a3);          \
        }                                                                                    \
        for (; i + 8 <= n; i += 8) {                                                         \
            __m256 a = _mm256_setzero_ps();                                                  \
            for (int64_t p = 0; p < n_rows; p++) {                                           \
                a = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), LOAD(b + (size_t)p * stride, i), a); \
            }                                                                                \
            _mm256_storeu_ps(out + i, a);                                                    \
        }                                                                                    \
        for (; i < n; i++) {                                                                 \
            float s = 0.0f;                                                                  \
            for (int64_t p = 0; p < n_rows; p++) s += w[p] * AT(b + (size_t)p * stride, i); \
            out[i] = s;                                                                      \
        }                                                                                    \
    }

DEFINE_ROWS(f32, ROW_LOAD_F32, ROW_AT_F32)
DEFINE_ROWS(f16, ROW_LOAD_F16, ROW_AT_F16)
