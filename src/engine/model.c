/* model.c — opening a GGUF model: hyper-parameters, weight views, validation.
 *
 * eng_model_open maps the file (gguf_open), reads `<arch>.*` hyper-parameters with
 * llama.cpp's defaults, loads the vocabulary, and binds every tensor the forward pass needs,
 * checking its shape against the hyper-parameters and its type against the kernels' traits
 * table. Every failure names the key or tensor at fault. Weight matrices stay views into the
 * mapping; the few small vectors (norms, biases, rope factors) are copied to f32 once.
 *
 * Supported: arch `llama` (Llama 2/3, Mistral, TinyLlama, SmolLM: dense, no experts) and
 * `qwen2` (q/k/v biases, NEOX RoPE).
 *
 * Threads: immutable after eng_model_open; the reference count is atomic. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/internal.h"
#include "kernels/kernels.h"

// ---- hyper-parameters ----

/* Reads "<arch>.<suffix>" as an integer; CORE_NOTFOUND is an error only when required. */
static int key_i64(const gguf_file *f, const char *arch, const char *suffix, bool required,
                   int64_t *out, core_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = gguf_get_i64(f, key, out, err);
    if (rc == CORE_NOTFOUND) {
        if (!required) return CORE_NOTFOUND;
        return core_err_set(err, CORE_FORMAT, "model: required key %s is missing", key);
    }
    return rc;
}

static int key_float(const gguf_file *f, const char *arch, const char *suffix, bool required,
                     double *out, core_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = gguf_get_float(f, key, out, err);
    if (rc == CORE_NOTFOUND) {
        if (!required) return CORE_NOTFOUND;
        return core_err_set(err, CORE_FORMAT, "model: required key %s is missing", key);
    }
    return rc;
}

/* A positive count no larger than max. */
static int check_count(const char *arch, const char *what, int64_t v, int64_t max, core_err *err)
{
    if (v <= 0 || v > max) {
        return core_err_set(err, CORE_FORMAT, "model: %s.%s is %lld (must be 1..%lld)", arch, what,
                            (long long)v, (long long)max);
    }
    return CORE_OK;
}

static int read_rope_scaling(const gguf_file *f, eng_hparams *h, core_err *err)
{
    const char *arch = h->arch_name;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    gguf_str type = {0};
    int rc = gguf_get_str(f, key, &type, err);
    if (rc != CORE_OK && rc != CORE_NOTFOUND) return rc;
    double factor = 0.0;
    rc = key_float(f, arch, "rope.scaling.factor", false, &factor, err);
    if (rc != CORE_OK && rc != CORE_NOTFOUND) return rc;
    if (rc == CORE_NOTFOUND) {
        /* the older key, still written by some converters */
        rc = key_float(f, arch, "rope.scale_linear", false, &factor, err);
        if (rc != CORE_OK && rc != CORE_NOTFOUND) return rc;
    }
    h->rope_freq_scale = 1.0f;
    bool linear = type.ptr == NULL || gguf_str_eq(type, "linear");
    if (type.ptr && gguf_str_eq(type, "none")) return CORE_OK;
    if (!linear) {
        return core_err_set(err, CORE_UNSUPPORTED,
                            "model: %s is \"%.*s\"; dwell supports none and linear", key,
                            (int)(type.len > 32 ? 32 : type.len), type.ptr);
    }
    if (factor != 0.0) {
        if (!(factor > 0.0) || !isfinite(factor)) {
            return core_err_set(err, CORE_FORMAT, "model: %s.rope.scaling.factor %g is invalid",
                                arch, factor);
        }
        h->rope_freq_scale = (float)(1.0 / factor);
    }
    return CORE_OK;
}

static int read_hparams(const gguf_file *f, eng_hparams *h, core_err *err)
{
    memset(h, 0, sizeof *h);
    gguf_str arch;
    int rc = gguf_get_str(f, "general.architecture", &arch, err);
    if (rc == CORE_NOTFOUND) {
        return core_err_set(err, CORE_FORMAT,
                            "model: required key general.architecture is "
                            "missing");
    }
    if (rc) return rc;
    if (gguf_str_eq(arch, "llama")) {
        h->arch = ENG_ARCH_LLAMA;
        h->rope_style = ENG_ROPE_NORM;
    } else if (gguf_str_eq(arch, "qwen2")) {
        h->arch = ENG_ARCH_QWEN2;
        h->rope_style = ENG_ROPE_NEOX;
    } else {
        return core_err_set(err, CORE_UNSUPPORTED,
                            "model: unsupported architecture \"%.*s\" (dwell runs llama and "
                            "qwen2)",
                            (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    }
    snprintf(h->arch_name, sizeof h->arch_name, "%s",
             h->arch == ENG_ARCH_LLAMA ? "llama" : "qwen2");
    const char *a = h->arch_name;
    const int64_t big = (int64_t)1 << 31;
    if ((rc = key_i64(f, a, "context_length", true, &h->n_ctx_train, err))) return rc;
    if ((rc = key_i64(f, a, "embedding_length", true, &h->n_embd, err))) return rc;
    if ((rc = key_i64(f, a, "block_count", true, &h->n_layer, err))) return rc;
    if ((rc = key_i64(f, a, "feed_forward_length", true, &h->n_ff, err))) return rc;
    if ((rc = key_i64(f, a, "attention.head_count", true, &h->n_head, err))) return rc;
    rc = key_i64(f, a, "attention.head_count_kv", false, &h->n_head_kv, err);
    if (rc == CORE_NOTFOUND)
        h->n_head_kv = h->n_head;
    else if (rc)
        return rc;
    if ((rc = check_count(a, "context_length", h->n_ctx_train, big, err))) return rc;
    if ((rc = check_count(a, "embedding_length", h->n_embd, big, err))) return rc;
    if ((rc = check_count(a, "block_count", h->n_layer, 4096, err))) return rc;
    if ((rc = check_count(a, "feed_forward_length", h->n_ff, big, err))) return rc;
    if ((rc = check_count(a, "attention.head_count", h->n_head, 65536, err))) return rc;
    if ((rc = check_count(a, "attention.head_count_kv", h->n_head_kv, 65536, err))) return rc;
    if (h->n_head % h->n_head_kv != 0) {
        return core_err_set(err, CORE_FORMAT,
                            "model: %s.attention.head_count %lld is not a multiple of "
                            "head_count_kv %lld",
                            a, (long long)h->n_head, (long long)h->n_head_kv);
    }
    int64_t experts = 0;
    rc = key_i64(f, a, "expert_count", false, &experts, err);
    if (rc != CORE_OK && rc != CORE_NOTFOUND) return rc;
    if (rc == CORE_OK && experts > 0) {
        return core_err_set(err, CORE_UNSUPPORTED,
                            "model: %s.expert_count is %lld: mixture-of-experts models are not "
                            "supported",
                            a, (long long)experts);
    }

    /* head size: key_length if present (must equal value_length), else n_embd / n_head */
    int64_t kl = 0, vl = 0;
    int rk = key_i64(f, a, "attention.key_length", false, &kl, err);
    if (rk != CORE_OK && rk != CORE_NOTFOUND) return rk;
    int rv = key_i64(f, a, "attention.value_length", false, &vl, err);
    if (rv != CORE_OK && rv != CORE_NOTFOUND) return rv;
    if (rk == CORE_OK) {
        if ((rc = check_count(a, "attention.key_length", kl, 65536, err))) return rc;
        if (rv == CORE_OK && vl != kl) {
            return core_err_set(err, CORE_UNSUPPORTED,
                                "model: %s.attention.key_length %lld differs from "
                                "value_length %lld",
                                a, (long long)kl, (long long)vl);
        }
        h->n_embd_head = kl;
    } else {
        if (h->n_embd % h->n_head != 0) {
            return core_err_set(err, CORE_FORMAT,
                                "model: %s.embedding_length %lld is not a multiple of "
                                "attention.head_count %lld",
                                a, (long long)h->n_embd, (long long)h->n_head);
        }
        h->n_embd_head = h->n_embd / h->n_head;
    }

    double eps = 0.0;
    if ((rc = key_float(f, a, "attention.layer_norm_rms_epsilon", true, &eps, err))) return rc;
    if (!(eps > 0.0) || eps > 1.0) {
        return core_err_set(err, CORE_FORMAT,
                            "model: %s.attention.layer_norm_rms_epsilon %g is invalid", a, eps);
    }
    h->rms_eps = (float)eps;
    double base = 10000.0;
    rc = key_float(f, a, "rope.freq_base", false, &base, err);
    if (rc != CORE_OK && rc != CORE_NOTFOUND) return rc;
    if (!(base > 0.0) || !isfinite(base)) {
        return core_err_set(err, CORE_FORMAT, "model: %s.rope.freq_base %g is invalid", a, base);
    }
    h->rope_freq_base = (float)base;
    rc = key_i64(f, a, "rope.dimension_count", false, &h->n_rot, err);
    if (rc == CORE_NOTFOUND)
        h->n_rot = h->n_embd_head;
    else if (rc)
        return rc;
    if (h->n_rot <= 0 || h->n_rot > h->n_embd_head || h->n_rot % 2 != 0) {
        return core_err_set(err, CORE_FORMAT,
                            "model: %s.rope.dimension_count %lld must be even and in 2..%lld", a,
                            (long long)h->n_rot, (long long)h->n_embd_head);
    }
    if ((rc = read_rope_scaling(f, h, err))) return rc;
    int64_t ft = -1;
    rc = gguf_get_i64(f, "general.file_type", &ft, err);
    if (rc != CORE_OK && rc != CORE_NOTFOUND) return rc;
    h->file_type = rc == CORE_OK && ft >= 0 && ft < 4096 ? (int)ft : -1;
    core_err_clear(err);
    return CORE_OK;
}

// ---- tensors ----

static void shape_str(char *buf, size_t cap, int n_dims, const int64_t *ne)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < n_dims && o < cap; i++) {
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)ne[i]);
    }
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* Finds tensor `name` and checks that its shape is exactly ne (n_dims dims, 1 or 2) and
 * its type is one the kernels compute with. *out is NULL (and CORE_OK) when the tensor is
 * absent and optional. */
static int find_tensor(const gguf_file *f, const char *name, int n_dims, const int64_t *ne,
                       bool required, const gguf_tensor **out, core_err *err)
{
    *out = NULL;
    const gguf_tensor *t = gguf_tensor_find(f, name);
    if (!t) {
        if (!required) return CORE_OK;
        return core_err_set(err, CORE_FORMAT, "model: tensor %s is missing", name);
    }
    bool ok = true;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) {
        int64_t want = i < n_dims ? ne[i] : 1;
        if (t->ne[i] != want) ok = false;
    }
    if (!ok) {
        char want_s[96], got_s[96];
        shape_str(want_s, sizeof want_s, n_dims, ne);
        shape_str(got_s, sizeof got_s, t->n_dims, t->ne);
        return core_err_set(err, CORE_FORMAT,
                            "model: tensor %s has shape %s, expected %s for these "
                            "hyper-parameters",
                            name, got_s, want_s);
    }
    if (!kern_traits_get(t->type)) {
        const core_type_info *ti = core_type_get(t->type);
        return core_err_set(err, CORE_UNSUPPORTED,
                            "model: tensor %s has type %s, which dwell cannot compute with", name,
                            ti ? ti->name : "unknown");
    }
    *out = t;
    return CORE_OK;
}

static int bind_weight(const gguf_file *f, const char *name, int64_t n_in, int64_t n_out,
                       bool required, eng_weight *w, core_err *err)
{
    const int64_t ne[2] = {n_in, n_out};
    const gguf_tensor *t;
    int rc = find_tensor(f, name, 2, ne, required, &t, err);
    if (rc || !t) return rc;
    size_t row;
    if (!core_type_row_size(t->type, n_in, &row)) {
        const core_type_info *ti = core_type_get(t->type);
        return core_err_set(err, CORE_FORMAT,
                            "model: tensor %s: rows of %lld elements do not fit type %s blocks",
                            name, (long long)n_in, ti ? ti->name : "unknown");
    }
    *w = (eng_weight){t->name, t->data, t->type, n_in, n_out, row};
    return CORE_OK;
}

/* Copies a 1-D tensor of n elements into dst as f32. */
static int bind_vec(const gguf_file *f, const char *name, int64_t n, bool required, float *dst,
                    const float **out, core_err *err)
{
    const gguf_tensor *t;
    int rc = find_tensor(f, name, 1, &n, required, &t, err);
    if (rc) return rc;
    if (!t) {
        *out = NULL;
        return CORE_OK;
    }
    const kern_traits *tr = kern_traits_get(t->type);
    if (n % tr->blck_size != 0) {
        return core_err_set(err, CORE_FORMAT,
                            "model: tensor %s: %lld elements do not fit %s "
                            "blocks",
                            name, (long long)n, tr->name);
    }
    tr->to_float(t->data, dst, n);
    *out = dst;
    return CORE_OK;
}

/* Number of f32 values the model copies: per layer 2 norms + 3 biases, the output norm and
 * the rope factors. */
static size_t vecs_count(const eng_hparams *h)
{
    int64_t q = h->n_head * h->n_embd_head, kv = h->n_head_kv * h->n_embd_head;
    return (size_t)(h->n_layer * (2 * h->n_embd + q + 2 * kv) + h->n_embd + h->n_rot / 2);
}

static int bind_layer(eng_model *m, int64_t il, float **vp, core_err *err)
{
    const gguf_file *f = m->gguf;
    const eng_hparams *h = &m->hp;
    eng_layer *L = &m->layers[il];
    int64_t n_q = h->n_head * h->n_embd_head, n_kv = h->n_head_kv * h->n_embd_head;
    bool bias = h->arch == ENG_ARCH_QWEN2;
    char name[96];
    int rc;
#define NAME(s) (snprintf(name, sizeof name, "blk.%lld." s, (long long)il), name)
    if ((rc = bind_vec(f, NAME("attn_norm.weight"), h->n_embd, true, *vp, &L->attn_norm, err)))
        return rc;
    *vp += h->n_embd;
    if ((rc = bind_weight(f, NAME("attn_q.weight"), h->n_embd, n_q, true, &L->wq, err))) return rc;
    if ((rc = bind_weight(f, NAME("attn_k.weight"), h->n_embd, n_kv, true, &L->wk, err))) return rc;
    if ((rc = bind_weight(f, NAME("attn_v.weight"), h->n_embd, n_kv, true, &L->wv, err))) return rc;
    if ((rc = bind_weight(f, NAME("attn_output.weight"), n_q, h->n_embd, true, &L->wo, err)))
        return rc;
    /* qwen2 requires its biases; llama takes them when a file has them (as llama.cpp does) */
    if ((rc = bind_vec(f, NAME("attn_q.bias"), n_q, bias, *vp, &L->bq, err))) return rc;
    *vp += n_q;
    if ((rc = bind_vec(f, NAME("attn_k.bias"), n_kv, bias, *vp, &L->bk, err))) return rc;
    *vp += n_kv;
    if ((rc = bind_vec(f, NAME("attn_v.bias"), n_kv, bias, *vp, &L->bv, err))) return rc;
    *vp += n_kv;
    if ((rc = bind_vec(f, NAME("ffn_norm.weight"), h->n_embd, true, *vp, &L->ffn_norm, err)))
        return rc;
    *vp += h->n_embd;
    if ((rc = bind_weight(f, NAME("ffn_gate.weight"), h->n_embd, h->n_ff, true, &L->w_gate, err)))
        return rc;
    if ((rc = bind_weight(f, NAME("ffn_up.weight"), h->n_embd, h->n_ff, true, &L->w_up, err)))
        return rc;
    if ((rc = bind_weight(f, NAME("ffn_down.weight"), h->n_ff, h->n_embd, true, &L->w_down, err)))
        return rc;
#undef NAME
    return CORE_OK;
}

static int bind_tensors(eng_model *m, core_err *err)
{
    const gguf_file *f = m->gguf;
    eng_hparams *h = &m->hp;
    const gguf_tensor *te = gguf_tensor_find(f, "token_embd.weight");
    if (!te) return core_err_set(err, CORE_FORMAT, "model: tensor token_embd.weight is missing");
    h->n_vocab = te->ne[1];
    int64_t nv = eng_vocab_n(m->vocab);
    if (h->n_vocab != nv) {
        return core_err_set(err, CORE_FORMAT,
                            "model: tensor token_embd.weight has %lld rows but the vocabulary "
                            "has %lld tokens",
                            (long long)h->n_vocab, (long long)nv);
    }
    int rc = bind_weight(f, "token_embd.weight", h->n_embd, h->n_vocab, true, &m->tok_embd, err);
    if (rc) return rc;
    m->output = (eng_weight){0};
    if ((rc = bind_weight(f, "output.weight", h->n_embd, h->n_vocab, false, &m->output, err)))
        return rc;
    m->tied = m->output.data == NULL;
    if (m->tied) m->output = m->tok_embd;

    m->vecs = malloc(vecs_count(h) * sizeof *m->vecs);
    m->layers = calloc((size_t)h->n_layer, sizeof *m->layers);
    if (!m->vecs || !m->layers) return core_err_set(err, CORE_NOMEM, "model: out of memory");
    float *vp = m->vecs;
    if ((rc = bind_vec(f, "output_norm.weight", h->n_embd, true, vp, &m->output_norm, err)))
        return rc;
    vp += h->n_embd;
    if ((rc = bind_vec(f, "rope_freqs.weight", h->n_rot / 2, false, vp, &m->rope_freqs, err)))
        return rc;
    vp += h->n_rot / 2;
    for (int64_t il = 0; il < h->n_layer; il++) {
        if ((rc = bind_layer(m, il, &vp, err))) return rc;
    }
    if (m->rope_freqs) {
        for (int64_t i = 0; i < h->n_rot / 2; i++) {
            if (!(m->rope_freqs[i] > 0.0f) || !isfinite(m->rope_freqs[i])) {
                return core_err_set(err, CORE_FORMAT,
                                    "model: tensor rope_freqs.weight has a non-positive factor");
            }
        }
    }
    /* totals over every tensor of the file, as Ollama counts parameters */
    h->n_params = 0;
    h->weight_bytes = 0;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        int64_t n = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            n *= t->ne[d];
        h->n_params += n;
        h->weight_bytes += t->size;
    }
    return CORE_OK;
}

/* Asks the kernel to read the whole mapping now and touches every page, so the weights are
 * resident (and counted in RSS) before the first token. */
static void populate(const gguf_file *f)
{
    const uint8_t *base = gguf_base(f);
    size_t size = gguf_file_size(f);
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    (void)madvise((void *)(uintptr_t)base, size, MADV_WILLNEED);
    volatile uint8_t sink = 0;
    for (size_t off = 0; off < size; off += (size_t)page)
        sink ^= base[off];
    (void)sink;
}

// ---- public ----

int eng_model_open(eng_model **out, const char *path, const eng_model_params *params, core_err *err)
{
    kern_init();
    eng_model *m = calloc(1, sizeof *m);
    if (!m) return core_err_set(err, CORE_NOMEM, "model: out of memory");
    atomic_init(&m->refs, 1);
    int rc = gguf_open(&m->gguf, path, err);
    if (rc) goto fail;
    if ((rc = read_hparams(m->gguf, &m->hp, err))) goto fail;
    if ((rc = eng_vocab_load(&m->vocab, m->gguf, err))) goto fail;
    if ((rc = bind_tensors(m, err))) goto fail;
    if (params && params->populate) populate(m->gguf);
    *out = m;
    return CORE_OK;
fail:
    eng_model_release(m);
    return rc;
}

eng_model *eng_model_acquire(eng_model *m)
{
    /* relaxed: taking a reference needs no ordering, the caller already holds one */
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void eng_model_release(eng_model *m)
{
    if (!m) return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
    eng_vocab_free(m->vocab);
    gguf_close(m->gguf);
    free(m->layers);
    free(m->vecs);
    free(m);
}

const eng_hparams *eng_model_hparams(const eng_model *m)
{
    return &m->hp;
}

size_t eng_model_resident_bytes(const eng_model *m)
{
    return core_mem_resident(gguf_base(m->gguf), gguf_file_size(m->gguf));
}

const eng_vocab *eng_model_vocab(const eng_model *m)
{
    return m->vocab;
}

bool eng_model_meta_str(const eng_model *m, const char *key, char *buf, size_t cap)
{
    gguf_str s;
    if (gguf_get_str(m->gguf, key, &s, NULL) != CORE_OK) return false;
    if (cap == 0) return true;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = '\0';
    return true;
}

char *eng_model_meta_str_dup(const eng_model *m, const char *key)
{
    gguf_str s;
    if (gguf_get_str(m->gguf, key, &s, NULL) != CORE_OK) return NULL;
    char *c = malloc((size_t)s.len + 1);
    if (!c) return NULL;
    memcpy(c, s.ptr, (size_t)s.len);
    c[s.len] = '\0';
    return c;
}

/* llama.cpp's enum llama_ftype, named as Ollama names it (fs/ggml FileType.String). */
const char *eng_file_type_name(int file_type)
{
    static const char *const names[] = {
        [0] = "F32",     [1] = "F16",      [2] = "Q4_0",     [3] = "Q4_1",    [4] = "Q4_1_F16",
        [7] = "Q8_0",    [8] = "Q5_0",     [9] = "Q5_1",     [10] = "Q2_K",   [11] = "Q3_K_S",
        [12] = "Q3_K_M", [13] = "Q3_K_L",  [14] = "Q4_K_S",  [15] = "Q4_K_M", [16] = "Q5_K_S",
        [17] = "Q5_K_M", [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S",
        [22] = "IQ3_XS", [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL", [26] = "IQ3_S",
        [27] = "IQ3_M",  [28] = "IQ2_S",   [29] = "IQ2_M",   [30] = "IQ4_XS", [31] = "IQ1_M",
        [32] = "BF16",   [36] = "TQ1_0",   [37] = "TQ2_0",
    };
    if (file_type < 0 || (size_t)file_type >= sizeof names / sizeof names[0]) return "unknown";
    return names[file_type] ? names[file_type] : "unknown";
}

/* Ollama's format.HumanNumber: "8B" for whole billions, "8.0B"-style one decimal otherwise,
 * two decimals for millions ("6.74M"), whole thousands ("260K"), the plain number below. */
void eng_param_size_str(int64_t n_params, char *buf, size_t cap)
{
    if (cap == 0) return;
    if (n_params < 0) n_params = 0;
    double n = (double)n_params;
    if (n_params >= 1000000000) {
        double b = n / 1e9;
        snprintf(buf, cap, b == floor(b) ? "%.0fB" : "%.1fB", b);
    } else if (n_params >= 1000000) {
        double mm = n / 1e6;
        snprintf(buf, cap, mm == floor(mm) ? "%.0fM" : "%.2fM", mm);
    } else if (n_params >= 1000) {
        snprintf(buf, cap, "%.0fK", n / 1e3);
    } else {
        snprintf(buf, cap, "%lld", (long long)n_params);
    }
}
