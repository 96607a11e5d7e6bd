/* forward.c — the transformer forward pass for llama and qwen2, in the manner of llama2.c's
 * run.c: plain loops over f32 activations, one layer after the other.
 *
 * A batch's tokens go through every weight matrix together (kern_matmul over [n_tok][n_in]),
 * so prefill reads each weight once per batch; attention is per token, over that token's own
 * sequence in the KV cache, causal by position, and split across the pool by (token, head).
 *
 *   x = token_embd[tok]
 *   per layer:  xb = rmsnorm(x) * attn_norm
 *               q, k, v = Wq xb (+bq), Wk xb (+bk), Wv xb (+bv);  RoPE(q, k) at pos
 *               cache[seq][layer][pos] = k, v
 *               att = softmax(q·K / sqrt(head)) V  per head (GQA: head h reads kv head h/group)
 *               x += Wo att
 *               xb = rmsnorm(x) * ffn_norm;  x += Wdown (silu(Wgate xb) * Wup xb)
 *   wanted tokens: logits = Woutput (rmsnorm(x) * output_norm)
 *
 * ref: llama.cpp build_llama / build_qwen2 (the graph), ggml_rope_ext (RoPE NORM: adjacent
 * pairs; NEOX: first and second halves), ggml_rms_norm (sum in double, then 1/sqrt in f32).
 * Scores and softmax are f32; the KV cache is f32 or f16 (rounded when stored). Matmuls with
 * Q8_0/Q4_0/Q4_K/Q6_K weights quantize their input activations as ggml does and use integer
 * dot products (kern_matmul_act); DWELL_F32_ACT=1 / kern_set_f32_act keeps them f32 (exact).
 *
 * Threads: runs on the context's owner thread; the matmuls and attention fan out to its pool
 * and join before the next step. Nothing here allocates. */
#include <math.h>
#include <string.h>

#include "engine/internal.h"

// ---- small ops ----

static void rmsnorm(float *restrict out, const float *restrict x, const float *restrict w,
                    int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void add_bias(float *restrict y, const float *restrict b, int64_t n_tok, int64_t n)
{
    if (!b) return;
    for (int64_t t = 0; t < n_tok; t++) {
        for (int64_t i = 0; i < n; i++)
            y[t * n + i] += b[i];
    }
}

/* Rotates the first n_rot dims of each of n_heads heads of vec (head size hd) by pos. */
static void rope(float *vec, int64_t n_heads, int64_t hd, int64_t n_rot, int style,
                 const float *theta, int64_t pos)
{
    int64_t half = n_rot / 2;
    for (int64_t j = 0; j < half; j++) {
        double a = (double)pos * (double)theta[j];
        float cs = (float)cos(a), sn = (float)sin(a);
        int64_t i0 = style == ENG_ROPE_NEOX ? j : 2 * j;
        int64_t i1 = style == ENG_ROPE_NEOX ? j + half : 2 * j + 1;
        for (int64_t h = 0; h < n_heads; h++) {
            float *v = vec + h * hd;
            float x0 = v[i0], x1 = v[i1];
            v[i0] = x0 * cs - x1 * sn;
            v[i1] = x0 * sn + x1 * cs;
        }
    }
}

static void matmul(eng_ctx *c, const eng_weight *w, const float *x, int64_t n_tok, float *y)
{
    kern_matmul_act(c->pool, w->type, w->data, w->row_bytes, w->n_in, w->n_out, x, n_tok, y,
                    c->act_q, c->act_q_bytes);
}

static size_t kv_index(const eng_ctx *c, int32_t seq, int64_t layer, int64_t pos)
{
    size_t n_kv = (size_t)(c->hp.n_head_kv * c->hp.n_embd_head);
    return (((size_t)seq * (size_t)c->hp.n_layer + (size_t)layer) * (size_t)c->n_ctx +
            (size_t)pos) *
           n_kv;
}

static void kv_store(eng_ctx *c, void *cache, size_t idx, const float *src, int64_t n)
{
    if (c->kv_type == ENG_KV_F32) {
        memcpy((float *)cache + idx, src, (size_t)n * sizeof(float));
    } else {
        uint16_t *dst = (uint16_t *)cache + idx;
        for (int64_t i = 0; i < n; i++)
            dst[i] = kern_f32_to_f16(src[i]);
    }
}

// ---- attention ----

typedef struct att_task {
    eng_ctx *c;
    const eng_batch *b;
    int64_t layer;
} att_task;

/* One (token, head) pair per work item, items ith, ith + nth, ... for worker ith. The head's
 * keys and values of positions 0..pos are rows n_kv apart in the cache: the scores and the
 * weighted sum each go through one SIMD row kernel of the cache's type (kern_traits). */
static void attention_worker(void *arg, int ith, int nth)
{
    const att_task *t = arg;
    eng_ctx *c = t->c;
    const eng_hparams *h = &c->hp;
    int64_t hd = h->n_embd_head, n_q = h->n_head * hd, group = h->n_head / h->n_head_kv;
    float scale = 1.0f / sqrtf((float)hd);
    float *scores = c->scores + (size_t)ith * (size_t)c->n_ctx;
    const kern_traits *kt =
        kern_traits_get(c->kv_type == ENG_KV_F32 ? CORE_TYPE_F32 : CORE_TYPE_F16);
    const size_t kv_elem = c->kv_type == ENG_KV_F32 ? sizeof(float) : sizeof(uint16_t);
    const size_t stride = (size_t)(h->n_head_kv * hd) * kv_elem; /* one position to the next */
    const uint8_t *kc = c->k_cache, *vc = c->v_cache;
    int64_t n_items = (int64_t)t->b->n * h->n_head;
    for (int64_t item = ith; item < n_items; item += nth) {
        int64_t i = item / h->n_head, head = item % h->n_head;
        int32_t seq = t->b->seq ? t->b->seq[i] : 0;
        int64_t n_pos = c->pos[i] + 1; /* causal: this token and those before it */
        const float *q = c->q + i * n_q + head * hd;
        size_t row0 = (kv_index(c, seq, t->layer, 0) + (size_t)((head / group) * hd)) * kv_elem;
        kt->rows_dot(n_pos, hd, kc + row0, stride, q, scale, scores);
        float max = -INFINITY;
        for (int64_t p = 0; p < n_pos; p++)
            if (scores[p] > max) max = scores[p];
        float sum = 0.0f;
        for (int64_t p = 0; p < n_pos; p++) {
            scores[p] = expf(scores[p] - max);
            sum += scores[p];
        }
        float inv = 1.0f / sum;
        for (int64_t p = 0; p < n_pos; p++)
            scores[p] *= inv;
        kt->rows_wsum(n_pos, hd, vc + row0, stride, scores, c->att + i * n_q + head * hd);
    }
}

// ---- the pass ----

static void layer_forward(eng_ctx *c, const eng_batch *b, int64_t il)
{
    const eng_hparams *h = &c->hp;
    const eng_layer *L = &c->model->layers[il];
    int64_t n = b->n, e = h->n_embd, hd = h->n_embd_head;
    int64_t n_q = h->n_head * hd, n_kv = h->n_head_kv * hd, ff = h->n_ff;

    // attention
    for (int64_t i = 0; i < n; i++)
        rmsnorm(c->xb + i * e, c->x + i * e, L->attn_norm, e, h->rms_eps);
    matmul(c, &L->wq, c->xb, n, c->q);
    matmul(c, &L->wk, c->xb, n, c->k);
    matmul(c, &L->wv, c->xb, n, c->v);
    add_bias(c->q, L->bq, n, n_q);
    add_bias(c->k, L->bk, n, n_kv);
    add_bias(c->v, L->bv, n, n_kv);
    for (int64_t i = 0; i < n; i++) {
        rope(c->q + i * n_q, h->n_head, hd, h->n_rot, h->rope_style, c->rope_theta, c->pos[i]);
        rope(c->k + i * n_kv, h->n_head_kv, hd, h->n_rot, h->rope_style, c->rope_theta, c->pos[i]);
        int32_t seq = b->seq ? b->seq[i] : 0;
        size_t idx = kv_index(c, seq, il, c->pos[i]);
        kv_store(c, c->k_cache, idx, c->k + i * n_kv, n_kv);
        kv_store(c, c->v_cache, idx, c->v + i * n_kv, n_kv);
    }
    att_task task = {c, b, il};
    kern_pool_run(c->pool, attention_worker, &task);
    matmul(c, &L->wo, c->att, n, c->xb2);
    for (int64_t i = 0; i < n * e; i++)
        c->x[i] += c->xb2[i];

    // feed-forward (SwiGLU)
    for (int64_t i = 0; i < n; i++)
        rmsnorm(c->xb + i * e, c->x + i * e, L->ffn_norm, e, h->rms_eps);
    matmul(c, &L->w_gate, c->xb, n, c->hb);
    matmul(c, &L->w_up, c->xb, n, c->hb2);
    for (int64_t i = 0; i < n * ff; i++) {
        float g = c->hb[i];
        c->hb[i] = g / (1.0f + expf(-g)) * c->hb2[i];
    }
    matmul(c, &L->w_down, c->hb, n, c->xb2);
    for (int64_t i = 0; i < n * e; i++)
        c->x[i] += c->xb2[i];
}

int eng_forward(eng_ctx *c, const eng_batch *b, int32_t n_out, const atomic_bool *cancel)
{
    const eng_model *m = c->model;
    const eng_hparams *h = &c->hp;
    int64_t e = h->n_embd;
    for (int32_t i = 0; i < b->n; i++) {
        kern_get_row(m->tok_embd.type, m->tok_embd.data, m->tok_embd.row_bytes, e, b->tokens[i],
                     c->x + (size_t)i * (size_t)e);
    }
    for (int64_t il = 0; il < h->n_layer; il++) {
        /* relaxed: a late look at the flag costs at most one more layer */
        if (cancel && atomic_load_explicit(cancel, memory_order_relaxed)) return CORE_CANCELLED;
        layer_forward(c, b, il);
    }
    if (n_out == 0) return CORE_OK;
    /* the wanted tokens' final hidden states, packed into xb rows 0..n_out-1 */
    for (int32_t i = 0; i < b->n; i++) {
        int32_t r = c->out_row[i];
        if (r < 0) continue;
        rmsnorm(c->xb + (size_t)r * (size_t)e, c->x + (size_t)i * (size_t)e, m->output_norm, e,
                h->rms_eps);
    }
    if (c->embd) memcpy(c->embd, c->xb, (size_t)n_out * (size_t)e * sizeof(float));
    matmul(c, &m->output, c->xb, n_out, c->logits);
    return CORE_OK;
}
