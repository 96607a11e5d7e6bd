/* matmul.c — the weight-times-activations product and row lookup used by the forward pass.
 *
 * kern_matmul splits the n_out weight rows into one contiguous range per thread. Inside its
 * range a thread walks tiles of MM_TILE rows; for each tile it loops over the tokens, so a tile
 * of weights is fetched from memory once per call and stays in cache for all tokens, while one
 * token's activations stay in L1 across the tile.
 *
 * kern_matmul_act first quantizes the activations once per call (on the calling thread: n_tok
 * rows of n_in, small next to the n_out rows of weights) and then runs the same tiling with the
 * type's integer dot product (actq_ref.c explains why). */
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

static void mm_worker(void *arg, int ith, int nth)
{
    const mm_task *t = arg;
    int64_t n_tiles = (t->n_out + MM_TILE - 1) / MM_TILE;
    int64_t per = n_tiles / nth, extra = n_tiles % nth;
    int64_t tile0 = ith * per + (ith < extra ? ith : extra);
    int64_t tile1 = tile0 + per + (ith < extra ? 1 : 0);
    int64_t o0 = tile0 * MM_TILE, o1 = tile1 * MM_TILE;
    if (o1 > t->n_out) o1 = t->n_out;
    if (o0 < o1) mm_range(t, o0, o1);
}

static void mm_run(kern_pool *p, mm_task *t)
{
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
    mm_task t = {tr->dot_f32, NULL, NULL, NULL, 0, w, w_row_bytes, n_in, n_out, n_tok, x, y};
    mm_run(p, &t);
}

size_t kern_matmul_work_size(int64_t n_in, int64_t n_tok)
{
    /* Q8_K rows (292 bytes per 256) are the larger of the two activation types */
    size_t row = (size_t)((n_in + KERN_QK_K - 1) / KERN_QK_K) * sizeof(kern_block_q8_K);
    return row * (size_t)n_tok;
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
    for (int64_t k = 0; k < n_tok; k++) {
        tr->quantize_act(x + k * n_in, xq + (size_t)k * xq_row, n_in);
    }
    mm_task t = {tr->dot_f32, tr->dot_q, tr->dot_q_x4, xq, xq_row, w, w_row_bytes, n_in, n_out, n_tok, x, y};
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
