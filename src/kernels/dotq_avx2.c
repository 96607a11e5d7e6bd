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
#include "kernels/simd_avx2.h"

// ---- helpers ----

/* Weight bytes fetched ahead of use. A matmul reads its rows once, in order, from memory: the
 * hardware prefetcher alone left a single thread at ~70% of the in-cache speed for Q8_0
 * (bench_kernels 48: 5.8 -> 8.1 GB/s with it); prefetching past the end of a row is harmless
 * (the next row follows, and a prefetch never faults). */
#define W_PREFETCH 1024

/* Prefetches the lines covering bytes [p, p + n). */
static inline void prefetch_lines(const char *p, size_t n)
{
    for (size_t o = 0; o < n; o += 64)
        _mm_prefetch(p + o, _MM_HINT_T0);
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

/* Half a Q6_K block (128 codes) as 4 x 32 unsigned bytes in 0..63: the low 4 bits from ql
 * (64 bytes), the high 2 from qh (32 bytes); q[k] holds codes 32k .. 32k + 31. */
static inline void q6_unpack(const uint8_t *ql, const uint8_t *qh, __m256i q[4])
{
    const __m256i low = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)ql);
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 32));
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)qh);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, low),
                           _mm256_slli_epi16(_mm256_and_si256(h, three), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, low),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), three), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), three), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), three), 4));
}

/* A float at p, which the activation row's layout leaves unaligned in general. */
static inline float ldf(const float *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The f32 scales that follow the nb blocks of a quantized Q8_0 activation row (unaligned: read
 * them with ldf or unaligned vector loads). */
static inline const float *act_scales(const void *a, int64_t nb)
{
    return (const float *)(const void *)((const uint8_t *)a + (size_t)nb * sizeof(kern_block_q8_0));
}

/* The f16 scales of 8 weight blocks of `stride` bytes starting at p, as 8 floats: one gather of
 * the 32-bit words at the scales, the low halves packed by a shuffle, one conversion. */
static inline __m256 scales8(const void *p, int stride)
{
    const __m256i idx =
        _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
    __m256i g = _mm256_i32gather_epi32((const int *)p, idx, 1);
    const __m256i pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    g = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(g, pick), _MM_SHUFFLE(3, 1, 2, 0));
    return _mm256_cvtph_ps(_mm256_castsi256_si128(g));
}

static inline __m256 lane(__m256 v, int j)
{
    return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(j));
}

/* Blocks are taken 8 at a time: their 8 scale products come from one gather, one load and one
 * multiply, and each block's broadcast is one permute. The gather may read 2 bytes past the
 * last scale (its 32-bit word), which lie inside the block (the codes follow the scale). */
float kern_dot_q_q8_0_avx2(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q8_0 *x = w, *y = a;
    const int64_t nb = n / KERN_QK;
    const float *dy = act_scales(a, nb);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        _mm_prefetch((const char *)(x + i) + W_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i) + W_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i) + W_PREFETCH + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i) + W_PREFETCH + 192, _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i) + W_PREFETCH + 256, _MM_HINT_T0);
        const __m256 s = _mm256_mul_ps(scales8(&x[i].d, sizeof *x), _mm256_loadu_ps(dy + i));
        for (int j = 0; j < 8; j += 2) {
            __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)(const void *)x[i + j].qs),
                                _mm256_loadu_si256((const __m256i *)(const void *)y[i + j].qs));
            __m256i p1 = dot_i8(_mm256_loadu_si256((const __m256i *)(const void *)x[i + j + 1].qs),
                                _mm256_loadu_si256((const __m256i *)(const void *)y[i + j + 1].qs));
            acc0 = _mm256_fmadd_ps(lane(s, j), _mm256_cvtepi32_ps(p0), acc0);
            acc1 = _mm256_fmadd_ps(lane(s, j + 1), _mm256_cvtepi32_ps(p1), acc1);
        }
    }
    for (; i < nb; i++) {
        __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)(const void *)x[i].qs),
                            _mm256_loadu_si256((const __m256i *)(const void *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(kern_avx2_f16(x[i].d) * ldf(dy + i)),
                               _mm256_cvtepi32_ps(p0), acc0);
    }
    return kern_avx2_hsum8(_mm256_add_ps(acc0, acc1));
}

/* Unsigned codes: sum (q - 8) * y = sum q * y - 8 * sum y, the second term from the
 * activation row's d * sum(qs) array (one FMA per 8 blocks) instead of a sign fix per block. */
float kern_dot_q_q4_0_avx2(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q4_0 *x = w;
    const kern_block_q8_0 *y = a;
    const int64_t nb = n / KERN_QK;
    const float *dy = act_scales(a, nb), *dsum = dy + nb;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), corr = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        _mm_prefetch((const char *)(x + i) + W_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i) + W_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)(x + i) + W_PREFETCH + 128, _MM_HINT_T0);
        const __m256 dx = scales8(&x[i].d, sizeof *x);
        const __m256 s = _mm256_mul_ps(dx, _mm256_loadu_ps(dy + i));
        corr = _mm256_fmadd_ps(dx, _mm256_loadu_ps(dsum + i), corr);
        for (int j = 0; j < 8; j += 2) {
            __m256i p0 = _mm256_madd_epi16(
                _mm256_maddubs_epi16(
                    q4_unpack(x[i + j].qs),
                    _mm256_loadu_si256((const __m256i *)(const void *)y[i + j].qs)),
                ones);
            __m256i p1 = _mm256_madd_epi16(
                _mm256_maddubs_epi16(
                    q4_unpack(x[i + j + 1].qs),
                    _mm256_loadu_si256((const __m256i *)(const void *)y[i + j + 1].qs)),
                ones);
            acc0 = _mm256_fmadd_ps(lane(s, j), _mm256_cvtepi32_ps(p0), acc0);
            acc1 = _mm256_fmadd_ps(lane(s, j + 1), _mm256_cvtepi32_ps(p1), acc1);
        }
    }
    float sum = kern_avx2_hsum8(_mm256_add_ps(acc0, acc1)) - 8.0f * kern_avx2_hsum8(corr);
    for (; i < nb; i++) {
        __m256i p0 = _mm256_madd_epi16(
            _mm256_maddubs_epi16(q4_unpack(x[i].qs),
                                 _mm256_loadu_si256((const __m256i *)(const void *)y[i].qs)),
            ones);
        const float dxi = kern_avx2_f16(x[i].d);
        sum += dxi * ldf(dy + i) * kern_avx2_hsum8(_mm256_cvtepi32_ps(p0)) -
               8.0f * dxi * ldf(dsum + i);
    }
    return sum;
}

// ---- Q4_K, Q6_K (x Q8_K) ----

/* The 8 6-bit scales (sc[0..7]) and mins (m[0..7]) of a Q4_K/Q5_K super-block, unpacked
 * with 32-bit masks instead of kern_scale_min_k4 per sub-block (same values: the bytes moved
 * are those the formula in internal.h names). */
static inline void k4_scales(const uint8_t scales[12], uint8_t sc[8], uint8_t m[8])
{
    uint32_t u[3], o[4];
    memcpy(u, scales, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    o[0] = u[0] & k1;
    o[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    o[2] = u[1] & k1;
    o[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    memcpy(sc, o, 8);
    memcpy(m, o + 2, 8);
}

float kern_dot_q_q4_K_avx2(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q4_K *x = w;
    const kern_block_q8_K *y = a;
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float summ_f = 0.0f;
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        prefetch_lines((const char *)(x + i) + W_PREFETCH, sizeof x[i]);
        uint8_t sc[8], m[8];
        k4_scales(x[i].scales, sc, m);
        /* mins: sum_j m_j * (bsums[2j] + bsums[2j+1]) */
        const __m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)y[i].bsums);
        const __m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(y[i].bsums + 8));
        int64_t m64;
        memcpy(&m64, m, 8);
        __m128i pm =
            _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(m64)), _mm_hadd_epi16(b0, b1));
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, _MM_SHUFFLE(1, 0, 3, 2)));
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, _MM_SHUFFLE(2, 3, 0, 1)));
        const uint8_t *q = x[i].qs;
        const int8_t *qy = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++, q += 32, qy += 64) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)q);
            const __m256i lo = _mm256_and_si256(v, low);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            __m256i p0 =
                _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(const void *)qy));
            __m256i p1 = _mm256_maddubs_epi16(
                hi, _mm256_loadu_si256((const __m256i *)(const void *)(qy + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        const float d = y[i].d * kern_avx2_f16(x[i].d), dmin = y[i].d * kern_avx2_f16(x[i].dmin);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        summ_f += dmin * (float)_mm_cvtsi128_si32(pm);
    }
    return kern_avx2_hsum8(acc) - summ_f;
}

/* pshufb masks picking int16 scale 2k (low 128-bit lane) and 2k+1 (high lane) in every word */
#define Q6_SHUF(a) (char)(2 * (a)), (char)(2 * (a) + 1)
#define Q6_SHUF8(a)                                                                                \
    Q6_SHUF(a), Q6_SHUF(a), Q6_SHUF(a), Q6_SHUF(a), Q6_SHUF(a), Q6_SHUF(a), Q6_SHUF(a), Q6_SHUF(a)

float kern_dot_q_q6_K_avx2(int64_t n, const void *restrict w, const void *restrict a)
{
    const kern_block_q6_K *x = w;
    const kern_block_q8_K *y = a;
    const __m256i m32 = _mm256_set1_epi8(32);
    const __m256i g_q6_shuf[4] = {
        _mm256_setr_epi8(Q6_SHUF8(0), Q6_SHUF8(1)), _mm256_setr_epi8(Q6_SHUF8(2), Q6_SHUF8(3)),
        _mm256_setr_epi8(Q6_SHUF8(4), Q6_SHUF8(5)), _mm256_setr_epi8(Q6_SHUF8(6), Q6_SHUF8(7))};
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        prefetch_lines((const char *)(x + i) + W_PREFETCH, sizeof x[i]);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales, *qy = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, qy += 128) {
            int64_t s64;
            memcpy(&s64, sc, 8);
            /* the 8 scales as int16 in both 128-bit lanes; lane L of q[k] takes sc[2k + L] */
            const __m256i sc16 =
                _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi64_si128(s64)));
            __m256i q[4];
            q6_unpack(ql, qh, q);
            for (int k = 0; k < 4; k++) {
                const __m256i vy = _mm256_loadu_si256((const __m256i *)(const void *)(qy + 32 * k));
                /* (q - 32) . y = q . y - 32 . y, both unsigned x signed */
                __m256i p =
                    _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], vy), _mm256_maddubs_epi16(m32, vy));
                const __m256i s = _mm256_shuffle_epi8(sc16, g_q6_shuf[k]);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * kern_avx2_f16(x[i].d)),
                              _mm256_cvtepi32_ps(sumi), acc);
    }
    return kern_avx2_hsum8(acc);
}

// ---- four activation rows at once (prefill) ----
/* One weight row against 4 activation rows (a, a + a_stride, ...): the weights are unpacked
 * once per block for all four, which is where a single-row dot spends most of its work. */

#define ACT(k) ((const void *)((const uint8_t *)a + (size_t)(k)*a_stride))

/* Q8_0 and Q4_0 x4: 8 blocks at a time as in the single-row kernels; the weight scales and
 * codes are unpacked once for the four tokens. A trailing partial group goes block by block. */
void kern_dot_q_x4_q8_0_avx2(int64_t n, const void *restrict w, const void *restrict a,
                             size_t a_stride, float *restrict out)
{
    const kern_block_q8_0 *x = w;
    const kern_block_q8_0 *y[4] = {ACT(0), ACT(1), ACT(2), ACT(3)};
    const int64_t nb = n / KERN_QK;
    const float *dy[4] = {act_scales(y[0], nb), act_scales(y[1], nb), act_scales(y[2], nb),
                          act_scales(y[3], nb)};
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    const __m256i ones = _mm256_set1_epi16(1);
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        prefetch_lines((const char *)(x + i) + W_PREFETCH, 8 * sizeof *x);
        const __m256 dx = scales8(&x[i].d, sizeof *x);
        __m256 s[4];
        for (int k = 0; k < 4; k++)
            s[k] = _mm256_mul_ps(dx, _mm256_loadu_ps(dy[k] + i));
        for (int j = 0; j < 8; j++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)x[i + j].qs);
            const __m256i ax = _mm256_sign_epi8(xv, xv);
            for (int k = 0; k < 4; k++) {
                __m256i yv = _mm256_loadu_si256((const __m256i *)(const void *)y[k][i + j].qs);
                __m256i p =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(yv, xv)), ones);
                acc[k] = _mm256_fmadd_ps(lane(s[k], j), _mm256_cvtepi32_ps(p), acc[k]);
            }
        }
    }
    for (; i < nb; i++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)x[i].qs);
        const __m256i ax = _mm256_sign_epi8(xv, xv);
        const float dxi = kern_avx2_f16(x[i].d);
        for (int k = 0; k < 4; k++) {
            __m256i yv = _mm256_loadu_si256((const __m256i *)(const void *)y[k][i].qs);
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(yv, xv)), ones);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dxi * ldf(dy[k] + i)), _mm256_cvtepi32_ps(p),
                                     acc[k]);
        }
    }
    for (int k = 0; k < 4; k++)
        out[k] = kern_avx2_hsum8(acc[k]);
}

void kern_dot_q_x4_q4_0_avx2(int64_t n, const void *restrict w, const void *restrict a,
                             size_t a_stride, float *restrict out)
{
    const kern_block_q4_0 *x = w;
    const kern_block_q8_0 *y[4] = {ACT(0), ACT(1), ACT(2), ACT(3)};
    const int64_t nb = n / KERN_QK;
    const float *dy[4] = {act_scales(y[0], nb), act_scales(y[1], nb), act_scales(y[2], nb),
                          act_scales(y[3], nb)};
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    __m256 corr[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                      _mm256_setzero_ps()};
    float tail[4] = {0};
    const __m256i ones = _mm256_set1_epi16(1);
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        prefetch_lines((const char *)(x + i) + W_PREFETCH, 8 * sizeof *x);
        const __m256 dx = scales8(&x[i].d, sizeof *x);
        __m256 s[4];
        for (int k = 0; k < 4; k++) {
            s[k] = _mm256_mul_ps(dx, _mm256_loadu_ps(dy[k] + i));
            corr[k] = _mm256_fmadd_ps(dx, _mm256_loadu_ps(dy[k] + nb + i), corr[k]);
        }
        for (int j = 0; j < 8; j++) {
            const __m256i q = q4_unpack(x[i + j].qs); /* unsigned: the - 8 is in corr */
            for (int k = 0; k < 4; k++) {
                __m256i yv = _mm256_loadu_si256((const __m256i *)(const void *)y[k][i + j].qs);
                __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, yv), ones);
                acc[k] = _mm256_fmadd_ps(lane(s[k], j), _mm256_cvtepi32_ps(p), acc[k]);
            }
        }
    }
    for (; i < nb; i++) {
        const __m256i q = q4_unpack(x[i].qs);
        const float dxi = kern_avx2_f16(x[i].d);
        for (int k = 0; k < 4; k++) {
            __m256i yv = _mm256_loadu_si256((const __m256i *)(const void *)y[k][i].qs);
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, yv), ones);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dxi * ldf(dy[k] + i)), _mm256_cvtepi32_ps(p),
                                     acc[k]);
            tail[k] += dxi * ldf(dy[k] + nb + i);
        }
    }
    for (int k = 0; k < 4; k++)
        out[k] = kern_avx2_hsum8(acc[k]) - 8.0f * (kern_avx2_hsum8(corr[k]) + tail[k]);
}

void kern_dot_q_x4_q4_K_avx2(int64_t n, const void *restrict w, const void *restrict a,
                             size_t a_stride, float *restrict out)
{
    const kern_block_q4_K *x = w;
    const kern_block_q8_K *y[4] = {ACT(0), ACT(1), ACT(2), ACT(3)};
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    float summ_f[4] = {0};
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        prefetch_lines((const char *)(x + i) + W_PREFETCH, sizeof x[i]);
        uint8_t sc[8], m[8];
        k4_scales(x[i].scales, sc, m);
        int64_t m64;
        memcpy(&m64, m, 8);
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(m64));
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int c = 0; c < 4; c++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(x[i].qs + 32 * c));
            const __m256i lo = _mm256_and_si256(v, low);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            const __m256i s0 = _mm256_set1_epi16(sc[2 * c]), s1 = _mm256_set1_epi16(sc[2 * c + 1]);
            for (int k = 0; k < 4; k++) {
                const int8_t *qy = y[k][i].qs + 64 * c;
                __m256i p0 =
                    _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(const void *)qy));
                __m256i p1 = _mm256_maddubs_epi16(
                    hi, _mm256_loadu_si256((const __m256i *)(const void *)(qy + 32)));
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_add_epi32(_mm256_madd_epi16(p0, s0),
                                                                     _mm256_madd_epi16(p1, s1)));
            }
        }
        const float dx = kern_avx2_f16(x[i].d), dminx = kern_avx2_f16(x[i].dmin);
        for (int k = 0; k < 4; k++) {
            const __m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)y[k][i].bsums);
            const __m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(y[k][i].bsums + 8));
            __m128i pm = _mm_madd_epi16(m16, _mm_hadd_epi16(b0, b1));
            pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, _MM_SHUFFLE(1, 0, 3, 2)));
            pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, _MM_SHUFFLE(2, 3, 0, 1)));
            const float d = y[k][i].d * dx, dmin = y[k][i].d * dminx;
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
            summ_f[k] += dmin * (float)_mm_cvtsi128_si32(pm);
        }
    }
    for (int k = 0; k < 4; k++)
        out[k] = kern_avx2_hsum8(acc[k]) - summ_f[k];
}

void kern_dot_q_x4_q6_K_avx2(int64_t n, const void *restrict w, const void *restrict a,
                             size_t a_stride, float *restrict out)
{
    const kern_block_q6_K *x = w;
    const kern_block_q8_K *y[4] = {ACT(0), ACT(1), ACT(2), ACT(3)};
    const __m256i m32 = _mm256_set1_epi8(32);
    const __m256i shuf[4] = {
        _mm256_setr_epi8(Q6_SHUF8(0), Q6_SHUF8(1)), _mm256_setr_epi8(Q6_SHUF8(2), Q6_SHUF8(3)),
        _mm256_setr_epi8(Q6_SHUF8(4), Q6_SHUF8(5)), _mm256_setr_epi8(Q6_SHUF8(6), Q6_SHUF8(7))};
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / KERN_QK_K; i++) {
        prefetch_lines((const char *)(x + i) + W_PREFETCH, sizeof x[i]);
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x[i].ql + 64 * half, *qh = x[i].qh + 32 * half;
            int64_t s64;
            memcpy(&s64, x[i].scales + 8 * half, 8);
            const __m256i sc16 =
                _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi64_si128(s64)));
            __m256i q[4];
            q6_unpack(ql, qh, q);
            for (int j = 0; j < 4; j++) {
                const __m256i s = _mm256_shuffle_epi8(sc16, shuf[j]);
                for (int k = 0; k < 4; k++) {
                    const __m256i vy = _mm256_loadu_si256(
                        (const __m256i *)(const void *)(y[k][i].qs + 128 * half + 32 * j));
                    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[j], vy),
                                                 _mm256_maddubs_epi16(m32, vy));
                    sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p, s));
                }
            }
        }
        const float dx = kern_avx2_f16(x[i].d);
        for (int k = 0; k < 4; k++) {
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(y[k][i].d * dx), _mm256_cvtepi32_ps(sumi[k]),
                                     acc[k]);
        }
    }
    for (int k = 0; k < 4; k++)
        out[k] = kern_avx2_hsum8(acc[k]);
}
