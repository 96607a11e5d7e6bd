/* context.c — a model's working state: the KV cache of each sequence and the scratch
 * buffers of the forward pass (forward.c), sized once for n_batch tokens.
 *
 * Memory: one anonymous mapping holds every buffer (KV cache, activations, logits), laid out
 * by ctx_layout, which eng_ctx_estimate also uses, so the estimate is the allocation.
 * eng_ctx_free unmaps it, returning the memory to the system at once (no allocator cache).
 * Pages are committed as they are first written, so RSS grows with the cache's use.
 *
 * Logits are kept for at most n_out_max tokens per decode (max(n_seq, 32), at most n_batch):
 * a batch wanting more gets CORE_LIMIT. A full [n_batch][n_vocab] buffer would cost 256 MB for
 * a 128k vocabulary at n_batch 512, for a case (logits of every prompt token) nobody uses.
 *
 * Batches: a NULL seq puts every token in sequence 0; a NULL want asks for the last token only.
 *
 * Owner: one thread at a time (a scheduler slot loop); the pool's workers only run inside
 * eng_ctx_decode. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/internal.h"

#define ENG_ALIGN 64
#define ENG_OUT_MIN 32

// ---- layout ----

typedef struct ctx_dims {
    int64_t n_ctx;
    int32_t n_seq, n_batch, n_threads, n_out_max;
    int kv_type;
    bool embeddings;
} ctx_dims;

/* Offsets of every buffer in the region; sizes in bytes. */
typedef struct ctx_layout {
    size_t k_cache, v_cache, seq_len, x, xb, xb2, q, k, v, att, hb, hb2, scores, pos, out_row,
        logits, embd, rope_theta, act_q;
    size_t total;
} ctx_layout;

static bool add_buf(size_t *off, size_t *slot, size_t n, size_t elem)
{
    size_t bytes, end;
    if (!core_mul_size(n, elem, &bytes)) return false;
    *slot = *off;
    if (!core_add_size(*off, bytes, &end)) return false;
    if (!core_add_size(end, ENG_ALIGN - 1, &end)) return false;
    *off = end & ~(size_t)(ENG_ALIGN - 1);
    return true;
}

/* The quantized activations of the largest matmul input (kern_matmul_act's work buffer). */
static size_t act_q_bytes(const eng_hparams *h, const ctx_dims *d)
{
    int64_t n_in = h->n_embd;
    if (h->n_ff > n_in) n_in = h->n_ff;
    if (h->n_head * h->n_embd_head > n_in) n_in = h->n_head * h->n_embd_head;
    return kern_matmul_work_size(n_in, d->n_batch);
}

static bool ctx_layout_make(const eng_hparams *h, const ctx_dims *d, ctx_layout *L)
{
    memset(L, 0, sizeof *L);
    size_t nb = (size_t)d->n_batch, off = 0;
    size_t n_q = (size_t)(h->n_head * h->n_embd_head),
           n_kv = (size_t)(h->n_head_kv * h->n_embd_head);
    size_t kv_elem = d->kv_type == ENG_KV_F32 ? sizeof(float) : sizeof(uint16_t);
    size_t kv_n;
    if (!core_mul_size((size_t)d->n_seq * (size_t)h->n_layer, (size_t)d->n_ctx, &kv_n) ||
        !core_mul_size(kv_n, n_kv, &kv_n)) {
        return false;
    }
    bool ok = add_buf(&off, &L->k_cache, kv_n, kv_elem) &&
              add_buf(&off, &L->v_cache, kv_n, kv_elem) &&
              add_buf(&off, &L->seq_len, (size_t)d->n_seq, sizeof(int64_t)) &&
              add_buf(&off, &L->x, nb * (size_t)h->n_embd, sizeof(float)) &&
              add_buf(&off, &L->xb, nb * (size_t)h->n_embd, sizeof(float)) &&
              add_buf(&off, &L->xb2, nb * (size_t)h->n_embd, sizeof(float)) &&
              add_buf(&off, &L->q, nb * n_q, sizeof(float)) &&
              add_buf(&off, &L->k, nb * n_kv, sizeof(float)) &&
              add_buf(&off, &L->v, nb * n_kv, sizeof(float)) &&
              add_buf(&off, &L->att, nb * n_q, sizeof(float)) &&
              add_buf(&off, &L->hb, nb * (size_t)h->n_ff, sizeof(float)) &&
              add_buf(&off, &L->hb2, nb * (size_t)h->n_ff, sizeof(float)) &&
              add_buf(&off, &L->scores, (size_t)d->n_threads * (size_t)d->n_ctx, sizeof(float)) &&
              add_buf(&off, &L->pos, nb, sizeof(int64_t)) &&
              add_buf(&off, &L->out_row, nb, sizeof(int32_t)) &&
              add_buf(&off, &L->logits, (size_t)d->n_out_max * (size_t)h->n_vocab, sizeof(float)) &&
              add_buf(&off, &L->embd, d->embeddings ? (size_t)d->n_out_max * (size_t)h->n_embd : 0,
                      sizeof(float)) &&
              add_buf(&off, &L->rope_theta, (size_t)h->n_rot / 2, sizeof(float)) &&
              add_buf(&off, &L->act_q, act_q_bytes(h, d), 1);
    L->total = off;
    return ok;
}

/* Resolves the defaults of p into d; false with a message when a value is out of range. */
static int ctx_dims_make(const eng_hparams *h, const eng_ctx_params *p, ctx_dims *d, core_err *err)
{
    d->n_ctx = p->n_ctx > 0 ? p->n_ctx : h->n_ctx_train;
    d->n_seq = p->n_seq;
    d->n_batch = p->n_batch > 0 ? p->n_batch : 512;
    d->n_threads = p->n_threads > 0 ? p->n_threads : kern_default_threads();
    d->kv_type = p->kv_type;
    d->embeddings = p->embeddings;
    if (d->n_ctx <= 0 || d->n_ctx > ((int64_t)1 << 31)) {
        return core_err_set(err, CORE_INVALID, "context: n_ctx %lld out of range",
                            (long long)d->n_ctx);
    }
    if (d->n_seq < 1 || d->n_seq > 4096) {
        return core_err_set(err, CORE_INVALID, "context: n_seq %d must be 1..4096", (int)d->n_seq);
    }
    if (d->n_batch > 65536 || p->n_batch < 0) {
        return core_err_set(err, CORE_INVALID, "context: n_batch %d must be 1..65536",
                            (int)p->n_batch);
    }
    if (d->n_threads > 1024) {
        return core_err_set(err, CORE_INVALID, "context: n_threads %d must be 1..1024",
                            (int)d->n_threads);
    }
    if (d->kv_type != ENG_KV_F16 && d->kv_type != ENG_KV_F32) {
        return core_err_set(err, CORE_INVALID, "context: unknown KV cache type %d", d->kv_type);
    }
    d->n_out_max = d->n_seq > ENG_OUT_MIN ? d->n_seq : ENG_OUT_MIN;
    if (d->n_out_max > d->n_batch) d->n_out_max = d->n_batch;
    return CORE_OK;
}

// ---- public ----

size_t eng_ctx_estimate(const eng_hparams *h, const eng_ctx_params *p)
{
    ctx_dims d;
    ctx_layout L;
    if (ctx_dims_make(h, p, &d, NULL) != CORE_OK || !ctx_layout_make(h, &d, &L)) {
        return SIZE_MAX;
    }
    return L.total + sizeof(eng_ctx);
}

int eng_ctx_new(eng_ctx **out, eng_model *m, const eng_ctx_params *p, core_err *err)
{
    const eng_hparams *h = eng_model_hparams(m);
    ctx_dims d;
    ctx_layout L;
    int rc = ctx_dims_make(h, p, &d, err);
    if (rc) return rc;
    if (!ctx_layout_make(h, &d, &L)) {
        return core_err_set(err, CORE_NOMEM,
                            "context: the buffers for n_ctx %lld x n_seq %d "
                            "overflow the address space",
                            (long long)d.n_ctx, (int)d.n_seq);
    }
    eng_ctx *c = calloc(1, sizeof *c);
    if (!c) return core_err_set(err, CORE_NOMEM, "context: out of memory");
    void *region = mmap(NULL, L.total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
        free(c);
        return core_err_set(err, CORE_NOMEM,
                            "context: cannot allocate %zu bytes for the KV "
                            "cache and scratch",
                            L.total);
    }
    rc = kern_pool_new(&c->pool, d.n_threads, err);
    if (rc) {
        munmap(region, L.total);
        free(c);
        return rc;
    }
    c->model = eng_model_acquire(m);
    c->hp = *h;
    c->n_ctx = d.n_ctx;
    c->n_seq = d.n_seq;
    c->n_batch = d.n_batch;
    c->n_threads = d.n_threads;
    c->n_out_max = d.n_out_max;
    c->kv_type = d.kv_type;
    c->embeddings = d.embeddings;
    c->region = region;
    c->region_bytes = L.total;
    char *r = region;
    c->k_cache = r + L.k_cache;
    c->v_cache = r + L.v_cache;
    c->seq_len = (int64_t *)(void *)(r + L.seq_len);
    c->x = (float *)(void *)(r + L.x);
    c->xb = (float *)(void *)(r + L.xb);
    c->xb2 = (float *)(void *)(r + L.xb2);
    c->q = (float *)(void *)(r + L.q);
    c->k = (float *)(void *)(r + L.k);
    c->v = (float *)(void *)(r + L.v);
    c->att = (float *)(void *)(r + L.att);
    c->hb = (float *)(void *)(r + L.hb);
    c->hb2 = (float *)(void *)(r + L.hb2);
    c->scores = (float *)(void *)(r + L.scores);
    c->pos = (int64_t *)(void *)(r + L.pos);
    c->out_row = (int32_t *)(void *)(r + L.out_row);
    c->logits = (float *)(void *)(r + L.logits);
    c->embd = d.embeddings ? (float *)(void *)(r + L.embd) : NULL;
    c->rope_theta = (float *)(void *)(r + L.rope_theta);
    c->act_q = r + L.act_q;
    c->act_q_bytes = act_q_bytes(h, &d);
    /* per-pair RoPE frequency, as ggml_rope_ext computes it (ext_factor 0: plain scaling) */
    const float *ff = m->rope_freqs;
    for (int64_t i = 0; i < h->n_rot / 2; i++) {
        double th = (double)h->rope_freq_scale *
                    pow((double)h->rope_freq_base, -2.0 * (double)i / (double)h->n_rot);
        if (ff) th /= ff[i];
        c->rope_theta[i] = (float)th;
    }
    for (int32_t i = 0; i < c->n_batch; i++)
        c->out_row[i] = -1;
    *out = c;
    return CORE_OK;
}

void eng_ctx_free(eng_ctx *c)
{
    if (!c) return;
    kern_pool_free(c->pool);
    munmap(c->region, c->region_bytes);
    eng_model_release(c->model);
    free(c);
}

size_t eng_ctx_bytes(const eng_ctx *c)
{
    return c->region_bytes + sizeof *c;
}

size_t eng_ctx_resident_bytes(const eng_ctx *c)
{
    return core_mem_resident(c->region, c->region_bytes) + sizeof *c;
}

int64_t eng_ctx_n_ctx(const eng_ctx *c)
{
    return c->n_ctx;
}

int32_t eng_ctx_n_seq(const eng_ctx *c)
{
    return c->n_seq;
}

/* Checks the batch and fills c->pos and c->out_row; nothing else changes on failure. */
static int batch_prepare(eng_ctx *c, const eng_batch *b, int32_t *n_out, core_err *err)
{
    if (b->n < 1 || b->n > c->n_batch) {
        return core_err_set(err, CORE_INVALID, "decode: batch of %d tokens (must be 1..%d)",
                            (int)b->n, (int)c->n_batch);
    }
    if (!b->tokens) return core_err_set(err, CORE_INVALID, "decode: batch has no tokens");
    int32_t outs = 0;
    for (int32_t i = 0; i < b->n; i++) {
        int32_t t = b->tokens[i], s = b->seq ? b->seq[i] : 0;
        if (t < 0 || t >= c->hp.n_vocab) {
            return core_err_set(err, CORE_INVALID,
                                "decode: token %d at batch index %d is out of range (vocabulary "
                                "of %lld)",
                                (int)t, (int)i, (long long)c->hp.n_vocab);
        }
        if (s < 0 || s >= c->n_seq) {
            return core_err_set(err, CORE_INVALID,
                                "decode: sequence %d at batch index %d does not exist (n_seq %d)",
                                (int)s, (int)i, (int)c->n_seq);
        }
        bool want = b->want ? b->want[i] : i == b->n - 1;
        if (want && outs >= c->n_out_max) {
            return core_err_set(err, CORE_LIMIT,
                                "decode: batch wants the logits of more than %d tokens",
                                (int)c->n_out_max);
        }
        c->out_row[i] = want ? outs++ : -1;
    }
    /* positions: each sequence continues where its cache ends, in batch order */
    for (int32_t i = 0; i < b->n; i++) {
        int32_t s = b->seq ? b->seq[i] : 0;
        int64_t p = c->seq_len[s];
        for (int32_t j = 0; j < i; j++)
            p += (b->seq ? b->seq[j] : 0) == s;
        if (p >= c->n_ctx) {
            return core_err_set(err, CORE_LIMIT,
                                "decode: sequence %d would pass the context length %lld", (int)s,
                                (long long)c->n_ctx);
        }
        c->pos[i] = p;
    }
    *n_out = outs;
    return CORE_OK;
}

int eng_ctx_decode(eng_ctx *c, const eng_batch *b, const atomic_bool *cancel, core_err *err)
{
    int32_t n_out = 0;
    int rc = batch_prepare(c, b, &n_out, err);
    if (rc) {
        for (int32_t i = 0; i < c->n_batch; i++)
            c->out_row[i] = -1;
        return rc;
    }
    rc = eng_forward(c, b, n_out, cancel);
    if (rc) {
        for (int32_t i = 0; i < c->n_batch; i++)
            c->out_row[i] = -1;
        return core_err_set(err, rc, "decode: %s",
                            rc == CORE_CANCELLED ? "cancelled" : core_code_str(rc));
    }
    for (int32_t i = 0; i < b->n; i++)
        c->seq_len[b->seq ? b->seq[i] : 0]++;
    for (int32_t i = b->n; i < c->n_batch; i++)
        c->out_row[i] = -1;
    return CORE_OK;
}

const float *eng_ctx_logits(const eng_ctx *c, int32_t i)
{
    if (i < 0 || i >= c->n_batch || c->out_row[i] < 0) return NULL;
    return c->logits + (size_t)c->out_row[i] * (size_t)c->hp.n_vocab;
}

const float *eng_ctx_embd(const eng_ctx *c, int32_t i)
{
    if (!c->embd || i < 0 || i >= c->n_batch || c->out_row[i] < 0) return NULL;
    return c->embd + (size_t)c->out_row[i] * (size_t)c->hp.n_embd;
}

int64_t eng_ctx_seq_len(const eng_ctx *c, int32_t seq)
{
    if (seq < 0 || seq >= c->n_seq) return 0;
    return c->seq_len[seq];
}

void eng_ctx_seq_truncate(eng_ctx *c, int32_t seq, int64_t n)
{
    if (seq < 0 || seq >= c->n_seq) return;
    if (n < 0) n = 0;
    if (n < c->seq_len[seq]) c->seq_len[seq] = n;
}
