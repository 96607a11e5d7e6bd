/* matmul.c — the weight-times-activations product and row lookup used by the forward pass.
 *
 * kern_matmul splits the n_out weight rows into one contiguous range per thread. Inside its
 * range a thread walks tiles of MM_TILE rows; for each tile it loops over the tokens, so a tile
 * of weights is fetched from memory once per call and stays in cache for all tokens, while one
 * token's activations stay in L1 across the tile. */
#include "kernels/internal.h"

#define MM_TILE 16 /* rows per tile; also the granularity of the per-thread split */

typedef struct {
    kern_dot_f32_fn dot;
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
        for (int64_t k = 0; k < t->n_tok; k++) {
            const float *xk = t->x + k * t->n_in;
            float *yk = t->y + k * t->n_out;
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

void kern_matmul(kern_pool *p, int wtype, const void *w, size_t w_row_bytes, int64_t n_in,
                 int64_t n_out, const float *x, int64_t n_tok, float *y)
{
    const kern_traits *tr = kern_traits_get(wtype);
    CORE_ASSERT(tr != NULL);
    CORE_ASSERT(n_in >= 0 && n_in % tr->blck_size == 0);
    CORE_ASSERT(n_out >= 0 && n_tok >= 0);
    if (n_out == 0 || n_tok == 0) return;
    mm_task t = {tr->dot_f32, w, w_row_bytes, n_in, n_out, n_tok, x, y};
    /* Too little work to pay for waking the workers: stay on this thread. */
    if (!p || kern_pool_size(p) == 1 || n_out < 2 * MM_TILE) {
        mm_range(&t, 0, n_out);
        return;
    }
    kern_pool_run(p, mm_worker, &t);
}

void kern_get_row(int wtype, const void *w, size_t w_row_bytes, int64_t n_in, int64_t row,
                  float *dst)
{
    const kern_traits *tr = kern_traits_get(wtype);
    CORE_ASSERT(tr != NULL);
    CORE_ASSERT(n_in >= 0 && n_in % tr->blck_size == 0 && row >= 0);
    tr->to_float((const uint8_t *)w + (size_t)row * w_row_bytes, dst, n_in);
}
