/* kernels.h — tensor block formats, their arithmetic, and the compute thread pool.
 *
 * One traits table indexed by tensor type (enum core_type): block geometry, a dequantizer
 * and a dot product of a weight row with f32 activations. Each entry has a scalar `_ref`
 * oracle; kern_init() runs cpuid once and points the table at the fastest kernels this CPU
 * has (AVX2, AVX-512), each tested against its `_ref` in tests/kernels/.
 *
 * The scalar path keeps activations in f32 (the engine's correctness reference). A faster
 * path that quantizes activations (ggml's "vec_dot type") may be added per type later via
 * `vec_dot_type`/`from_float`/`vec_dot`.
 *
 * Threads: the traits table is immutable after kern_init(); kernels allocate nothing and take
 * no locks. A kern_pool is owned by one caller thread (the one that calls kern_pool_run). */
#ifndef DWELL_KERNELS_H
#define DWELL_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

// ---- scalar conversions ----

float kern_f16_to_f32(uint16_t h);
uint16_t kern_f32_to_f16(float f); /* round to nearest even, as ggml */
float kern_bf16_to_f32(uint16_t h);
uint16_t kern_f32_to_bf16(float f); /* round to nearest even, NaN kept quiet, as ggml */

// ---- type traits ----

/* n is always a multiple of blck_size in every function below. */
typedef void (*kern_to_float_fn)(const void *restrict src, float *restrict dst, int64_t n);
typedef void (*kern_from_float_fn)(const float *restrict src, void *restrict dst, int64_t n);
/* Dot product of n elements of a weight row w (this type) with f32 activations x. */
typedef float (*kern_dot_f32_fn)(int64_t n, const void *restrict w, const float *restrict x);
/* out[p] = scale * (q . row p) for p < n_rows; rows of n elements of this type, row p at
 * base + p * stride bytes (the KV cache's keys of one head). */
typedef void (*kern_rows_dot_fn)(int64_t n_rows, int64_t n, const void *base, size_t stride,
                                 const float *q, float scale, float *out);
/* out[i] = sum over p < n_rows of w[p] * row p [i], for i < n (out is overwritten). */
typedef void (*kern_rows_wsum_fn)(int64_t n_rows, int64_t n, const void *base, size_t stride,
                                  const float *w, float *out);
typedef void (*kern_quantize_act_fn)(const float *restrict x, void *restrict dst, int64_t n);
/* Dot product of n elements of a weight row w with quantized activations a. */
typedef float (*kern_dot_q_fn)(int64_t n, const void *restrict w, const void *restrict a);
/* out[k] = the dot of weight row w with quantized activation row a + k * a_stride, k < 4. */
typedef void (*kern_dot_q_x4_fn)(int64_t n, const void *restrict w, const void *restrict a,
                                 size_t a_stride, float *restrict out);

typedef struct kern_traits {
    int type;
    const char *name;
    int64_t blck_size;
    size_t type_size;
    kern_to_float_fn to_float;     /* dequantize; never NULL for a supported type */
    kern_from_float_fn from_float; /* quantize (reference rounding as ggml); may be NULL */
    kern_dot_f32_fn dot_f32;       /* never NULL for a supported type */
    /* The quantized-activation path (ggml's "vec_dot type"), NULL for types without one:
     * quantize_act turns n f32 activations into act_blck_size-element blocks of
     * act_type_size bytes (Q8_0 or Q8_K); dot_q is the dot of a weight row with them. */
    kern_quantize_act_fn quantize_act;
    kern_dot_q_fn dot_q;
    kern_dot_q_x4_fn dot_q_x4; /* 4 activation rows at once (prefill); set with dot_q */
    int64_t act_blck_size;
    size_t act_type_size;
    /* F32 and F16 only (attention over the KV cache), else NULL */
    kern_rows_dot_fn rows_dot;
    kern_rows_wsum_fn rows_wsum;
} kern_traits;

/* Fills the dispatch table once (thread-safe, idempotent). Every other kern_ function calls
 * it if needed, so calling it is optional but puts the cpuid cost at startup. */
void kern_init(void);
/* Name of the instruction set the table uses: "avx512", "avx2" or "scalar". */
const char *kern_isa(void);
/* Forces the scalar reference kernels (for tests and benchmarks); call before anything
 * else. */
void kern_force_scalar(bool on);

/* Makes kern_matmul_act compute with f32 activations (the exact path, as kern_matmul) instead
 * of quantizing them; also set by DWELL_F32_ACT=1 in the environment at kern_init. For tests
 * that compare with exact-math goldens; call between forward passes, not during one. */
void kern_set_f32_act(bool on);
bool kern_f32_act(void);

/* The traits of type, or NULL when dwell cannot compute with it. */
const kern_traits *kern_traits_get(int type);
/* The scalar reference traits of type (never SIMD), or NULL. */
const kern_traits *kern_traits_ref(int type);

// ---- thread pool ----

typedef struct kern_pool kern_pool;
/* A task runs on every thread of the pool: ith in [0, nth). */
typedef void (*kern_task_fn)(void *arg, int ith, int nth);

/* Starts n_threads - 1 workers (the calling thread is worker 0). */
int kern_pool_new(kern_pool **out, int n_threads, core_err *err);
/* Stops and joins the workers; NULL is allowed. */
void kern_pool_free(kern_pool *p);
int kern_pool_size(const kern_pool *p);
/* Runs fn(arg, ith, nth) on every thread and returns when all have finished. Workers wait
 * between tasks without burning CPU for long (spin briefly, then sleep). */
void kern_pool_run(kern_pool *p, kern_task_fn fn, void *arg);
/* Default thread count: the number of cores this process may use (sched_getaffinity and the
 * cgroup cpu.max quota), at least 1. */
int kern_default_threads(void);

// ---- operations used by the forward pass ----

/* y[t][o] = sum_i W[o][i] * x[t][i] for t < n_tok, o < n_out.
 * W: n_out rows of n_in elements of wtype, row stride w_row_bytes. x: [n_tok][n_in] f32.
 * y: [n_tok][n_out] f32. Rows are split across the pool (p may be NULL: single-threaded). */
void kern_matmul(kern_pool *p, int wtype, const void *w, size_t w_row_bytes, int64_t n_in,
                 int64_t n_out, const float *x, int64_t n_tok, float *y);
/* Bytes of the work buffer kern_matmul_act needs for n_tok rows of n_in activations, whatever
 * the weight type. */
size_t kern_matmul_work_size(int64_t n_in, int64_t n_tok);
/* As kern_matmul, but when wtype has a quantized-activation path (Q8_0, Q4_0, Q4_K, Q6_K) and
 * kern_f32_act() is false, first quantizes x into work (Q8_0 or Q8_K blocks, rounded as ggml
 * does) and then uses integer dot products: several times faster, and the results move by the
 * activations' rounding (as llama.cpp's do: golden/README.md). Otherwise exactly kern_matmul.
 * work: borrowed, at least kern_matmul_work_size(n_in, n_tok) bytes (asserted). */
void kern_matmul_act(kern_pool *p, int wtype, const void *w, size_t w_row_bytes, int64_t n_in,
                     int64_t n_out, const float *x, int64_t n_tok, float *y, void *work,
                     size_t work_size);
/* Dequantizes row `row` of a matrix of wtype (row stride w_row_bytes, n_in elements) into
 * dst (n_in floats): used for embedding lookups. */
void kern_get_row(int wtype, const void *w, size_t w_row_bytes, int64_t n_in, int64_t row,
                  float *dst);

#endif
