/* internal.h — kernels' private declarations: the block structs exactly as GGUF stores them,
 * the scalar reference functions, and the SIMD kernels the dispatcher may pick.
 *
 * Block layouts and dequantization formulas follow ggml (ggml-common.h, ggml-quants.c);
 * every struct is packed to its byte size in the file and checked with static_assert.
 * All multi-byte fields are little-endian (dwell runs on little-endian x86-64 only). */
#ifndef DWELL_KERNELS_INTERNAL_H
#define DWELL_KERNELS_INTERNAL_H

#include <assert.h>
#include <stdint.h>

#include "kernels/kernels.h"

#define KERN_QK 32   /* elements per block of the "legacy" quants */
#define KERN_QK_K 256 /* elements per super-block of the K-quants */

// ---- legacy 32-element blocks ----

/* Q4_0: 4.5 bits/weight. x = d * (q - 8), q in 0..15; qs[j] holds element j in its low
 * nibble and element j + 16 in its high nibble. */
typedef struct {
    uint16_t d; /* f16 scale */
    uint8_t qs[KERN_QK / 2];
} kern_block_q4_0;
static_assert(sizeof(kern_block_q4_0) == 18, "Q4_0 block is 18 bytes");

/* Q4_1: 5 bits/weight. x = d * q + m, q in 0..15; nibbles as Q4_0. */
typedef struct {
    uint16_t d; /* f16 scale */
    uint16_t m; /* f16 minimum */
    uint8_t qs[KERN_QK / 2];
} kern_block_q4_1;
static_assert(sizeof(kern_block_q4_1) == 20, "Q4_1 block is 20 bytes");

/* Q5_0: 5.5 bits/weight. x = d * (q - 16), q in 0..31: the low 4 bits in nibbles as Q4_0, the
 * 5th bit of element j in bit j of qh (a little-endian uint32). */
typedef struct {
    uint16_t d;    /* f16 scale */
    uint8_t qh[4]; /* 5th bits */
    uint8_t qs[KERN_QK / 2];
} kern_block_q5_0;
static_assert(sizeof(kern_block_q5_0) == 22, "Q5_0 block is 22 bytes");

/* Q5_1: 6 bits/weight. x = d * q + m, q in 0..31; bits as Q5_0. */
typedef struct {
    uint16_t d; /* f16 scale */
    uint16_t m; /* f16 minimum */
    uint8_t qh[4];
    uint8_t qs[KERN_QK / 2];
} kern_block_q5_1;
static_assert(sizeof(kern_block_q5_1) == 24, "Q5_1 block is 24 bytes");

/* Q8_0: 8.5 bits/weight. x = d * q, q in -128..127 (the quantizer uses -127..127). */
typedef struct {
    uint16_t d; /* f16 scale */
    int8_t qs[KERN_QK];
} kern_block_q8_0;
static_assert(sizeof(kern_block_q8_0) == 34, "Q8_0 block is 34 bytes");

// ---- K-quants: 256-element super-blocks ----

/* Q2_K: 2.625 bits/weight. 16 sub-blocks of 16; scales[i] = scale (low nibble) | min (high
 * nibble). x = d * sc * q - dmin * m, q in 0..3. qs: two halves of 128 elements, 32 bytes each;
 * bits 2k..2k+1 of byte l hold element 32k + l of the half. */
typedef struct {
    uint8_t scales[KERN_QK_K / 16];
    uint8_t qs[KERN_QK_K / 4];
    uint16_t d;    /* f16 super-block scale of the scales */
    uint16_t dmin; /* f16 super-block scale of the mins */
} kern_block_q2_K;
static_assert(sizeof(kern_block_q2_K) == 84, "Q2_K block is 84 bytes");

/* Q3_K: 3.4375 bits/weight. 16 sub-blocks of 16 with 6-bit signed scales (stored + 32, packed
 * in 12 bytes). x = d * (sc - 32) * (q - (hbit ? 0 : 4)), q the 2 low bits as Q2_K and hbit
 * bit j of hmask[l] for the 32-element group j. */
typedef struct {
    uint8_t hmask[KERN_QK_K / 8];
    uint8_t qs[KERN_QK_K / 4];
    uint8_t scales[12];
    uint16_t d; /* f16 super-block scale */
} kern_block_q3_K;
static_assert(sizeof(kern_block_q3_K) == 110, "Q3_K block is 110 bytes");

/* Q4_K: 4.5 bits/weight. 8 sub-blocks of 32 with a 6-bit scale and a 6-bit min each, packed in
 * 12 bytes (see kern_scale_min_k4). x = d * sc * q - dmin * m, q in 0..15. qs: four chunks of
 * 32 bytes; chunk c holds sub-block 2c in the low nibbles and 2c+1 in the high nibbles. */
typedef struct {
    uint16_t d;    /* f16 super-block scale of the scales */
    uint16_t dmin; /* f16 super-block scale of the mins */
    uint8_t scales[12];
    uint8_t qs[KERN_QK_K / 2];
} kern_block_q4_K;
static_assert(sizeof(kern_block_q4_K) == 144, "Q4_K block is 144 bytes");

/* Q5_K: 5.5 bits/weight. As Q4_K with q in 0..31: the 5th bit of element l of sub-block s is
 * bit s of qh[l]. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[KERN_QK_K / 8];
    uint8_t qs[KERN_QK_K / 2];
} kern_block_q5_K;
static_assert(sizeof(kern_block_q5_K) == 176, "Q5_K block is 176 bytes");

/* Q6_K: 6.5625 bits/weight. 16 sub-blocks of 16 with int8 scales. x = d * sc * (q - 32), q in
 * 0..63. Two halves of 128 elements (ql 64 bytes, qh 32 bytes, 8 scales each); in a half,
 * element l + 32k (l < 32) takes its low 4 bits from ql[l + 32(k&1)] (low nibble for k < 2,
 * high nibble otherwise) and its top 2 bits from qh[l] bits 2k..2k+1; its scale is element
 * index / 16. */
typedef struct {
    uint8_t ql[KERN_QK_K / 2];
    uint8_t qh[KERN_QK_K / 4];
    int8_t scales[KERN_QK_K / 16];
    uint16_t d; /* f16 super-block scale */
} kern_block_q6_K;
static_assert(sizeof(kern_block_q6_K) == 210, "Q6_K block is 210 bytes");

/* Q8_K: activations only (ggml's vec_dot type of the K-quants), never stored in files.
 * x = d * q, q in -127..127, d an f32; bsums[j] = sum of qs[16j..16j+15] (the K-quant mins
 * multiply these). */
typedef struct {
    float d;
    int8_t qs[KERN_QK_K];
    int16_t bsums[KERN_QK_K / 16];
} kern_block_q8_K;
static_assert(sizeof(kern_block_q8_K) == 292, "Q8_K block is 292 bytes");

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K `scales` array: j < 4 uses the
 * low 6 bits of bytes j and j+4; j >= 4 takes its low 4 bits from byte j+4 (scale: low nibble,
 * min: high nibble) and its top 2 bits from the top bits of bytes j-4 (scale) and j (min). */
static inline void kern_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// ---- scalar reference kernels (quants_ref.c, kquants_ref.c) ----

#define KERN_DECLARE_REF(t)                                                              \
    void kern_to_float_##t##_ref(const void *restrict src, float *restrict dst, int64_t n); \
    void kern_from_float_##t##_ref(const float *restrict src, void *restrict dst, int64_t n); \
    float kern_dot_f32_##t##_ref(int64_t n, const void *restrict w, const float *restrict x);

KERN_DECLARE_REF(f32)
KERN_DECLARE_REF(f16)
KERN_DECLARE_REF(bf16)
KERN_DECLARE_REF(q4_0)
KERN_DECLARE_REF(q4_1)
KERN_DECLARE_REF(q5_0)
KERN_DECLARE_REF(q5_1)
KERN_DECLARE_REF(q8_0)
KERN_DECLARE_REF(q2_K)
KERN_DECLARE_REF(q3_K)
KERN_DECLARE_REF(q4_K)
KERN_DECLARE_REF(q5_K)
KERN_DECLARE_REF(q6_K)

#undef KERN_DECLARE_REF

/* Sum of a[i] * b[i] in f32, in order (n <= a block): the reference summation every
 * scalar dot product uses. */
static inline float kern_dot_block_ref(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* The reference dot product of a quantized row with f32 activations: each block of blck
 * elements (type_size bytes) is dequantized with dq and summed with kern_dot_block_ref.
 * n is a multiple of blck, and blck <= KERN_QK_K. */
float kern_dot_blocks_ref(int64_t n, const void *w, int64_t blck, size_t type_size,
                          kern_to_float_fn dq, const float *x);

// ---- vector kernels for attention (vec_ref.c, vec_avx2.c) ----

#define KERN_DECLARE_ROWS(t, isa)                                                         \
    void kern_rows_dot_##t##_##isa(int64_t n_rows, int64_t n, const void *base, size_t stride, \
                                   const float *q, float scale, float *out);                 \
    void kern_rows_wsum_##t##_##isa(int64_t n_rows, int64_t n, const void *base,            \
                                    size_t stride, const float *w, float *out);
KERN_DECLARE_ROWS(f32, ref)
KERN_DECLARE_ROWS(f16, ref)
KERN_DECLARE_ROWS(f32, avx2)
KERN_DECLARE_ROWS(f16, avx2)
#undef KERN_DECLARE_ROWS

// ---- quantized-activation path (actq_ref.c, dotq_avx2.c) ----

/* Bytes per 32 activations of a quantized Q8_0 activation row: the block, plus its scale d and
 * d * (sum of its codes), as f32, in two arrays that follow the row's blocks (actq_ref.c). */
#define KERN_ACT_Q8_0_SIZE (sizeof(kern_block_q8_0) + 2 * sizeof(float))

/* Activation quantizers, rounding exactly as ggml's x86 build (round to nearest even). */
void kern_quantize_act_q8_0_ref(const float *restrict x, void *restrict dst, int64_t n);
void kern_quantize_act_q8_K_ref(const float *restrict x, void *restrict dst, int64_t n);
/* Integer dot products of a weight row with a quantized activation row. */
float kern_dot_q_q8_0_ref(int64_t n, const void *restrict w, const void *restrict a);
float kern_dot_q_q4_0_ref(int64_t n, const void *restrict w, const void *restrict a);
float kern_dot_q_q4_K_ref(int64_t n, const void *restrict w, const void *restrict a);
float kern_dot_q_q6_K_ref(int64_t n, const void *restrict w, const void *restrict a);
float kern_dot_q_q8_0_avx2(int64_t n, const void *restrict w, const void *restrict a);
float kern_dot_q_q4_0_avx2(int64_t n, const void *restrict w, const void *restrict a);
float kern_dot_q_q4_K_avx2(int64_t n, const void *restrict w, const void *restrict a);
float kern_dot_q_q6_K_avx2(int64_t n, const void *restrict w, const void *restrict a);
/* One weight row against 4 activation rows a + k * a_stride (k < 4) into out[0..3]. */
#define KERN_DECLARE_X4(t, isa)                                                            \
    void kern_dot_q_x4_##t##_##isa(int64_t n, const void *restrict w, const void *restrict a, \
                                   size_t a_stride, float *restrict out);
KERN_DECLARE_X4(q8_0, ref)
KERN_DECLARE_X4(q4_0, ref)
KERN_DECLARE_X4(q4_K, ref)
KERN_DECLARE_X4(q6_K, ref)
KERN_DECLARE_X4(q8_0, avx2)
KERN_DECLARE_X4(q4_0, avx2)
KERN_DECLARE_X4(q4_K, avx2)
KERN_DECLARE_X4(q6_K, avx2)
#undef KERN_DECLARE_X4

// ---- SIMD kernels (dot_avx2.c, dot_avx512.c); call only after the cpuid check ----

float kern_dot_f32_f32_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_f16_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_bf16_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q8_0_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q4_0_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q4_K_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q6_K_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q4_1_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q5_0_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q5_1_avx2(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q5_K_avx2(int64_t n, const void *restrict w, const float *restrict x);
/* F16C dequantization: bit-exact with kern_to_float_f16_ref (NaN payloads included). */
void kern_to_float_f16_avx2(const void *restrict src, float *restrict dst, int64_t n);

float kern_dot_f32_f32_avx512(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_f16_avx512(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q8_0_avx512(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q4_0_avx512(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q4_K_avx512(int64_t n, const void *restrict w, const float *restrict x);
float kern_dot_f32_q6_K_avx512(int64_t n, const void *restrict w, const float *restrict x);

#endif
