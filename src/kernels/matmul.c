/* matmul.c — the weight-times-activations product and row lookup used by the forward pass.
 *
 * kern_matmul splits the n_out weight rows into chunks of tiles that threads take in turn from
 * an atomic counter. Inside a chunk a thread walks tiles of MM_TILE rows; for each tile it
 * loops over the tokens, so a tile of weights is fetched from memory once per call and stays in
 * cache for all tokens, while one token's activations stay in L1 across the tile.
 *
 * kern_matmul_act first quantizes the activations once per call (split across the pool for a
 * batch) and then runs the same tiling with the type's integer dot products, four tokens per
 * weight row where it can (actq_ref.c explains why). */
#include <stdatomic.h>

#include "kernels/internal.h"

#define MM_TILE 16 /* rows per tile; also the granularity of the per-thread split */

typedef struct {
    kern_dot_f32_fn dot;
    kern_dot_q_fn dot_q; /* set: the quantized-activation path, x_q rows of xq_row_bytes */
    kern_dot_q_x4_fn dot_q_x4;
    const uint8_t *x_q;
    size_t xq_row_bytes;
    const uint8_t *w;
    size_t w_row_bytes;
    int64_t n_in, n_out, n_tok;
    const float *x;
    float *y;
    atomic_int_fast64_t next; /* the next chunk of tiles to take (mm_worker) */
} mm_task;

static void mm_range(const mm_task *t, int64_t o0, int64_t o1)
{
    for (int64_t r0 = o0; r0 < o1; r0 += MM_TILE) {
        int64_t r1 = r0 + MM_TILE < o1 ? r0 + MM_TILE : o1;
        int64_t k = 0;
        /* four tokens per weight row: each block is unpacked once for all four */
        for (; t->dot_q_x4 && k + 4 <= t->n_tok; k += 4) {
            const uint8_t *ak = t->x_q + (size_t)k * t->xq_row_bytes;
            for (int64_t o = r0; o < r1; o++) {
                float out[4];
                t->dot_q_x4(t->n_in, t->w + (size_t)o * t->w_row_bytes, ak, t->xq_row_bytes, out);
                for (int j = 0; j < 4; j++) t->y[(k + j) * t->n_out + o] = out[j];
            }
        }
        for (; k < t->n_tok; k++) {
            float *yk = t->y + k * t->n_out;
            if (t->dot_q) {
                const uint8_t *ak = t->x_q + (size_t)k * t->xq_row_bytes;
                for (int64_t o = r0; o < r1; o++) {
                    yk[o] = t->dot_q(t->n_in, t->w + (size_t)o * t->w_row_bytes, ak);
                }
                continue;
            }
            const float *xk = t->x + k * t->n_in;
            for (int64_t o = r0; o < r1; o++) {
                yk[o] = t->dot(t->n_in, t->w + (size_t)o * t->w_row_bytes, xk);
            }
        }
    }
}

/* Threads take chunks of tiles from an atomic counter rather than fixed ranges, so a thread
 * that loses its core for a while (a shared machine, or the other pools of a busy server) is
 * covered by the others instead of holding up the op. Each row is still computed by one dot
 * call, so the result does not depend on the thread count or the split. */
static void mm_worker(void *arg, int ith, int nth)
{
    (void)ith;
    mm_task *t = arg;
    int64_t n_tiles = (t->n_out + MM_TILE - 1) / MM_TILE;
    int64_t chunk = n_tiles / ((int64_t)nth * 4); /* about 4 chunks per thread */
    if (chunk < 1) chunk = 1;
    for (;;) {
        /* relaxed: the counter only hands out disjoint chunks; kern_pool_run's start and
         * join order the data */
        int64_t c = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        int64_t o0 = c * chunk * MM_TILE, o1 = o0 + chunk * MM_TILE;
        if (o0 >= t->n_out) break;
        mm_range(t, o0, o1 < t->n_out ? o1 : t->n_out);
    }
}

#define QA_MIN_TOK 8 /* tokens from which activation quantization is split across the pool */

typedef struct {
    kern_quantize_act_fn quantize;
    const float *x;
    int64_t n_in, n_tok;
    uint8_t *xq;
    size_t xq_row;
} qa_task;

static void qa_worker(void *arg, int ith, int nth)
{
    const qa_task *q = arg;
    for (int64_t k = ith; k < q->n_tok; k += nth) {
        q->quantize(q->x + k * q->n_in, q->xq + (size_t)k * q->xq_row, q->n_in);
    }
}

static void mm_run(kern_pool *p, mm_task *t)
{
    atomic_init(&t->next, 0);
    /* Too little work to pay for waking the workers: stay on this thread. */
    if (!p || kern_pool_size(p) == 1 || t->n_out < 2 * MM_TILE) {
        mm_range(t, 0, t->n_out);
        return;
    }
    kern_pool_run(p, mm_worker, t);
}

void kern_matmul(kern_pool *p, int wtype, const void *w, size_t w_row_bytes, int64_t n_in,
                 int64_t n_out, const float *x, int64_t n_tok, float *y)
{
    const kern_traits *tr = kern_traits_get(wtype);
    CORE_ASSERT(tr != NULL);
    CORE_ASSERT(n_in >= 0 && n_in % tr->blck_size == 0);
    CORE_ASSERT(n_out >= 0 && n_tok >= 0);
    if (n_out == 0 || n_tok == 0) return;
    mm_task t = {.dot = tr->dot_f32, .w = w, .w_row_bytes = w_row_bytes, .n_in = n_in,
                 .n_out = n_out, .n_tok = n_tok, .x = x, .y = y};
    mm_run(p, &t);
}

size_t kern_matmul_work_size(int64_t n_in, int64_t n_tok)
{
    /* the larger of a Q8_K row (292 bytes per 256) and a Q8_0 one (42 per 32, with its f32
     * scales and sums) */
    size_t rk = (size_t)((n_in + KERN_QK_K - 1) / KERN_QK_K) * sizeof(kern_block_q8_K);
    size_t r0 = (size_t)((n_in + KERN_QK - 1) / KERN_QK) * KERN_ACT_Q8_0_SIZE;
    return (rk > r0 ? rk : r0) * (size_t)n_tok;
}

void kern_matmul_act(kern_pool *p, int wtype, const void *w, size_t w_row_bytes, int64_t n_in,
                     int64_t n_out, const float *x, int64_t n_tok, float *y, void *work,
                     size_t work_size)
{
    const kern_traits *tr = kern_traits_get(wtype);
    CORE_ASSERT(tr != NULL);
    if (!tr->dot_q || kern_f32_act() || n_in % tr->act_blck_size != 0) {
        kern_matmul(p, wtype, w, w_row_bytes, n_in, n_out, x, n_tok, y);
        return;
    }
    CORE_ASSERT(n_in >= 0 && n_in % tr->blck_size == 0);
    CORE_ASSERT(n_out >= 0 && n_tok >= 0);
    CORE_ASSERT(work != NULL && work_size >= kern_matmul_work_size(n_in, n_tok));
    if (n_out == 0 || n_tok == 0) return;
    size_t xq_row = (size_t)(n_in / tr->act_blck_size) * tr->act_type_size;
    uint8_t *xq = work;
    qa_task q = {tr->quantize_act, x, n_in, n_tok, xq, xq_row};
    /* a batch's rows are quantized by the whole pool (5% of a prefill on one thread); a single
     * row is not worth waking the workers for */
    if (p && kern_pool_size(p) > 1 && n_tok >= QA_MIN_TOK) {
        kern_pool_run(p, qa_worker, &q);
    } else {
        qa_worker(&q, 0, 1);
    }
    mm_task t = {.dot = tr->dot_f32, .dot_q = tr->dot_q, .dot_q_x4 = tr->dot_q_x4, .x_q = xq,
                 .xq_row_bytes = xq_row, .w = w, .w_row_bytes = w_row_bytes, .n_in = n_in,
                 .n_out = n_out, .n_tok = n_tok, .x = x, .y = y};
    mm_run(p, &t);
}

void kern_get_row(int wtype, const void *w, size_t w_row_bytes, int64_t n_in, int64_t row,
                  float *dst)
{
    const kern_traits *tr = kern_traits_get(wtype);
    CORE_ASSERT(tr != NULL);
    CORE_ASSERT(n_in >= 0 && n_in % tr->blck_size == 0 && row >= 0);
    tr->to_float((const uint8_t *)w + (size_t)row * w_row_bytes, dst, n_in);
}
