/* backend_eng.c — the scheduler's engine backend: loads a GGUF with its pages populated and
 * one context of OLLAMA_NUM_PARALLEL sequences, and runs the slots of a model in one batched
 * eng_ctx_decode per step (the next token of every generating slot, then prompt chunks in
 * the room left), sampling, detokenizing and cutting stop strings per slot.
 *
 * Prompts: a slot keeps the tokens of its KV cache; a new request reuses the longest common
 * prefix (eng_ctx_seq_truncate) and evaluates only the rest. A prompt that does not fit the
 * context keeps its first num_keep tokens (default 4, plus BOS) and drops the oldest tokens
 * after them so that prompt + one generated token fit (Ollama's truncation; dwell has no
 * context shift, so generation then stops with "length" when the context is full).
 * Embeddings: the final hidden state of the last token (or the mean over tokens), then
 * L2-normalized when asked.
 *
 * Owner: the instance's context, batch buffers and slot states belong to the model's runner
 * thread; load/unload run on the scheduler's worker threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

// ---- types ----

struct sched_inst {
    eng_model *m;
    eng_ctx *c;
    const eng_vocab *v;
    eng_hparams hp;
    int64_t n_ctx;
    int32_t n_batch, n_out_max;
    int32_t *b_tok, *b_seq; /* [n_batch] */
    bool *b_want;           /* [n_batch] */
    int32_t *b_idx;         /* per active slot: batch index of its wanted token, or -1 */
    int32_t *b_take;        /* per active slot: tokens it put in the batch */
};

typedef struct eslot {
    eng_tokens cache;   /* tokens in this sequence's KV cache */
    eng_sampler *smp;
    eng_stop *stop;
    eng_detok detok;
    core_buf piece, out;
    size_t pos;         /* next prompt / input token to evaluate */
    size_t keep;        /* cached prefix reused */
    bool gen;           /* prompt done: generating */
    int32_t pending;    /* sampled, not yet evaluated; -1 none */
    int64_t n_gen, t_begin, t_prompt;
    /* embeddings */
    size_t input;       /* index of the input being embedded */
    eng_tokens etoks;
    float *acc;         /* [n_embd] */
    int64_t n_acc;
} eslot;

// ---- helpers ----

static void inst_free(sched_inst *in)
{
    if (!in) return;
    eng_ctx_free(in->c);
    eng_model_release(in->m);
    free(in->b_tok);
    free(in->b_seq);
    free(in->b_want);
    free(in->b_idx);
    free(in->b_take);
    free(in);
}

static void ctx_params(const sched_load_opts *o, eng_ctx_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_ctx = o->num_ctx;
    p->n_seq = o->n_seq;
    p->n_batch = o->n_batch;
    p->n_threads = o->n_threads;
    p->kv_type = o->kv_type;
    p->embeddings = true; /* one context serves generate and embed */
}

static int tokenize(const sched_inst *in, const char *text, size_t len, bool add_special,
                    eng_tokens *out, core_err *err)
{
    return eng_tokenize(in->v, text, len, add_special, true, out, err);
}

/* Cuts toks to fit `room` tokens, keeping the first `keep` (Ollama's prompt truncation). */
static void truncate_keep(eng_tokens *t, size_t room, size_t keep)
{
    if (t->n <= room) return;
    if (keep > room / 2) keep = room / 2;
    size_t drop = t->n - room;
    memmove(t->ids + keep, t->ids + keep + drop, (t->n - keep - drop) * sizeof *t->ids);
    t->n = room;
}

// ---- model ----

static int be_probe(const char *path, sched_probe *out, core_err *err)
{
    eng_model *m;
    eng_model_params mp = {.populate = false};
    int rc = eng_model_open(&m, path, &mp, err);
    if (rc) return rc;
    out->hp = *eng_model_hparams(m);
    out->weight_bytes = out->hp.weight_bytes;
    out->n_ctx_train = out->hp.n_ctx_train;
    eng_model_release(m);
    return CORE_OK;
}

static size_t be_estimate(const sched_probe *p, const sched_load_opts *o)
{
    eng_ctx_params cp;
    ctx_params(o, &cp);
    size_t c = eng_ctx_estimate(&p->hp, &cp), t;
    if (c == SIZE_MAX || !core_add_size(c, p->weight_bytes, &t)) return SIZE_MAX;
    return t;
}

static int be_load(const char *path, const sched_load_opts *o, const atomic_bool *cancel,
                   sched_inst **out, core_err *err)
{
    sched_inst *in = calloc(1, sizeof *in);
    if (!in) return core_err_set(err, CORE_NOMEM, "out of memory loading %s", path);
    eng_model_params mp = {.populate = true};
    int rc = eng_model_open(&in->m, path, &mp, err);
    if (rc) goto fail;
    if (atomic_load(cancel)) {
        rc = core_err_set(err, CORE_CANCELLED, "load of %s cancelled", path);
        goto fail;
    }
    in->hp = *eng_model_hparams(in->m);
    in->v = eng_model_vocab(in->m);
    eng_ctx_params cp;
    ctx_params(o, &cp);
    rc = eng_ctx_new(&in->c, in->m, &cp, err);
    if (rc) goto fail;
    in->n_ctx = eng_ctx_n_ctx(in->c);
    in->n_batch = o->n_batch > 0 ? o->n_batch : 512;
    in->n_out_max = o->n_seq > 32 ? o->n_seq : 32;
    if (in->n_out_max > in->n_batch) in->n_out_max = in->n_batch;
    size_t nb = (size_t)in->n_batch, ns = (size_t)o->n_seq;
    in->b_tok = malloc(nb * sizeof *in->b_tok);
    in->b_seq = malloc(nb * sizeof *in->b_seq);
    in->b_want = malloc(nb * sizeof *in->b_want);
    in->b_idx = malloc(ns * sizeof *in->b_idx);
    in->b_take = malloc(ns * sizeof *in->b_take);
    if (!in->b_tok || !in->b_seq || !in->b_want || !in->b_idx || !in->b_take) {
        rc = core_err_set(err, CORE_NOMEM, "out of memory for batch buffers");
        goto fail;
    }
    *out = in;
    return CORE_OK;
fail:
    inst_free(in);
    return rc;
}

static size_t be_measured(sched_inst *in, size_t *kv, size_t *weights)
{
    *kv = eng_ctx_bytes(in->c);
    *weights = in->hp.weight_bytes;
    return *kv + *weights;
}

static size_t be_resident(sched_inst *in)
{
    return eng_model_resident_bytes(in->m) + eng_ctx_resident_bytes(in->c);
}

static void be_unload(sched_inst *in)
{
    inst_free(in);
}

// ---- slots ----

static int be_slot_init(sched_inst *in, sched_slot *sl, core_err *err)
{
    eslot *es = calloc(1, sizeof *es);
    if (!es) return core_err_set(err, CORE_NOMEM, "out of memory for a slot");
    es->cache.cap = (size_t)in->n_ctx + 1;
    es->cache.ids = malloc(es->cache.cap * sizeof *es->cache.ids);
    es->acc = malloc((size_t)in->hp.n_embd * sizeof *es->acc);
    core_buf_init(&es->piece);
    core_buf_init(&es->out);
    if (!es->cache.ids || !es->acc || core_buf_reserve(&es->piece, 256) ||
        core_buf_reserve(&es->out, 256)) {
        free(es->cache.ids);
        free(es->acc);
        core_buf_deinit(&es->piece);
        core_buf_deinit(&es->out);
        free(es);
        return core_err_set(err, CORE_NOMEM, "out of memory for a slot");
    }
    es->pending = -1;
    sl->state = es;
    return CORE_OK;
}

static void be_slot_deinit(sched_inst *in, sched_slot *sl)
{
    (void)in;
    eslot *es = sl->state;
    if (!es) return;
    eng_sampler_free(es->smp);
    eng_stop_free(es->stop);
    eng_tokens_free(&es->cache);
    eng_tokens_free(&es->etoks);
    free(es->acc);
    core_buf_deinit(&es->piece);
    core_buf_deinit(&es->out);
    free(es);
    sl->state = NULL;
}

static int be_prepare(sched_inst *in, sched_req *r, core_err *err)
{
    if (r->kind != SCHED_GENERATE) return CORE_OK;
    r->toks.n = 0;
    for (size_t i = 0; i < r->n_context; i++) {
        if (r->context[i] < 0 || r->context[i] >= in->hp.n_vocab)
            return core_err_set(err, CORE_INVALID, "context token %d is out of range",
                                (int)r->context[i]);
        if (eng_tokens_push(&r->toks, r->context[i]))
            return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    int rc = tokenize(in, r->prompt, r->prompt_len, r->n_context == 0, &r->toks, err);
    if (rc) return rc;
    if (r->toks.n == 0) {
        int32_t bos = eng_vocab_bos(in->v);
        if (bos < 0) return core_err_set(err, CORE_INVALID, "the prompt is empty");
        if (eng_tokens_push(&r->toks, bos)) return core_err_set(err, CORE_NOMEM, "oom");
    }
    size_t room = (size_t)in->n_ctx - 1;
    if (r->toks.n > room) {
        if (!r->truncate)
            return core_err_set(err, CORE_INVALID, "the input length exceeds the context length");
        size_t keep = (size_t)(r->num_keep >= 0 ? r->num_keep : 4);
        if (r->toks.ids[0] == eng_vocab_bos(in->v)) keep++;
        CORE_WARN("sched: prompt of %zu tokens truncated to the context of %lld (kept %zu)",
                  r->toks.n, (long long)in->n_ctx, keep);
        truncate_keep(&r->toks, room, keep);
    }
    return CORE_OK;
}

static size_t be_affinity(sched_inst *in, const sched_slot *sl, const sched_req *r)
{
    (void)in;
    const eslot *es = sl->state;
    size_t n = 0;
    while (n < es->cache.n && n < r->toks.n && es->cache.ids[n] == r->toks.ids[n]) n++;
    return n;
}

/* Starts embedding input es->input: tokenize, truncate, clear the sequence. */
static int embed_start(sched_inst *in, sched_slot *sl, core_err *err)
{
    eslot *es = sl->state;
    sched_req *r = sl->req;
    const char *text = r->inputs[es->input];
    es->etoks.n = 0;
    int rc = tokenize(in, text, strlen(text), true, &es->etoks, err);
    if (rc) return rc;
    if (es->etoks.n == 0) return core_err_set(err, CORE_INVALID, "input %zu is empty", es->input);
    if (es->etoks.n > (size_t)in->n_ctx) {
        if (!r->truncate)
            return core_err_set(err, CORE_INVALID, "the input length exceeds the context length");
        es->etoks.n = (size_t)in->n_ctx;
    }
    eng_ctx_seq_truncate(in->c, sl->id, 0);
    es->cache.n = 0;
    es->pos = 0;
    es->n_acc = 0;
    memset(es->acc, 0, (size_t)in->hp.n_embd * sizeof *es->acc);
    return CORE_OK;
}

static int be_begin(sched_inst *in, sched_slot *sl, core_err *err)
{
    eslot *es = sl->state;
    sched_req *r = sl->req;
    es->t_begin = core_mono_ns();
    es->t_prompt = 0;
    es->n_gen = 0;
    es->gen = false;
    es->pending = -1;
    if (r->kind == SCHED_EMBED) {
        size_t n = r->n_inputs * (size_t)in->hp.n_embd;
        if (n > r->fin.embd_cap) {
            float *e = realloc(r->fin.embd, (n ? n : 1) * sizeof *e);
            if (!e) return core_err_set(err, CORE_NOMEM, "out of memory for embeddings");
            r->fin.embd = e;
            r->fin.embd_cap = n;
        }
        r->fin.n_embd = (size_t)in->hp.n_embd;
        r->fin.n_embd_rows = 0;
        es->input = 0;
        if (r->n_inputs == 0) {
            sl->done = true;
            r->fin.done_reason = "stop";
            return CORE_OK;
        }
        return embed_start(in, sl, err);
    }
    size_t keep = be_affinity(in, sl, r);
    if (keep >= r->toks.n) keep = r->toks.n - 1; /* evaluate at least one token for logits */
    eng_ctx_seq_truncate(in->c, sl->id, (int64_t)keep);
    es->cache.n = keep;
    es->keep = keep;
    es->pos = keep;
    /* A penalty window never needs to be longer than the context (llama.cpp: -1 = n_ctx);
     * the cap also keeps a huge repeat_last_n from reserving gigabytes. */
    eng_sampler_params sp = r->sampler;
    if (sp.repeat_last_n == -1 || sp.repeat_last_n > in->n_ctx)
        sp.repeat_last_n = (int32_t)in->n_ctx;
    int rc = eng_sampler_new(&es->smp, &sp, in->hp.n_vocab, err);
    if (rc) return rc;
    for (size_t i = 0; i < r->toks.n; i++) eng_sampler_accept(es->smp, r->toks.ids[i]);
    if (r->n_stops) {
        rc = eng_stop_new(&es->stop, (const char *const *)r->stops, r->n_stops, err);
        if (rc) return rc;
    }
    eng_detok_init(&es->detok, in->v, false);
    return CORE_OK;
}

static void be_end(sched_inst *in, sched_slot *sl)
{
    (void)in;
    eslot *es = sl->state;
    /* A generation cancelled mid-way (client gone, Ctrl-C) still counts the tokens it made
     * (the model's tokens_generated in /api/stats); a finished one already set this. */
    if (sl->req && sl->req->kind != SCHED_EMBED) sl->req->fin.eval_count = es->n_gen;
    eng_sampler_free(es->smp);
    es->smp = NULL;
    eng_stop_free(es->stop);
    es->stop = NULL;
    es->pending = -1;
    if (sl->req && sl->req->kind == SCHED_EMBED) {
        eng_ctx_seq_truncate(in->c, sl->id, 0); /* nothing worth reusing */
        es->cache.n = 0;
    }
}

// ---- step ----

/* Finishes a generating slot: flushes held text, fills the final event. */
static void gen_finish(sched_inst *in, sched_slot *sl, const char *reason, bool flush_stop)
{
    (void)in;
    eslot *es = sl->state;
    sched_req *r = sl->req;
    core_buf_reset(&es->out);
    core_buf_reset(&es->piece);
    eng_detok_flush(&es->detok, &es->piece);
    if (es->stop) {
        if (es->piece.len) eng_stop_push(es->stop, es->piece.data, es->piece.len, &es->out);
        if (flush_stop) eng_stop_flush(es->stop, &es->out);
    } else if (es->piece.len) {
        core_buf_append(&es->out, es->piece.data, es->piece.len);
    }
    sched_req_emit(r, es->out.data, es->out.len);
    int64_t now = core_mono_ns();
    if (!es->t_prompt) es->t_prompt = now;
    r->fin.done_reason = reason;
    r->fin.prompt_eval_count = (int64_t)(r->toks.n - es->keep);
    r->fin.prompt_eval_ns = es->t_prompt - es->t_begin;
    r->fin.eval_count = es->n_gen;
    r->fin.eval_ns = now - es->t_prompt;
    if (r->want_context) {
        size_t n = es->cache.n + (es->pending >= 0);
        if (n > r->fin.context_cap) {
            int32_t *c = realloc(r->fin.context, n * sizeof *c);
            if (c) {
                r->fin.context = c;
                r->fin.context_cap = n;
            }
        }
        if (n <= r->fin.context_cap) {
            memcpy(r->fin.context, es->cache.ids, es->cache.n * sizeof *es->cache.ids);
            if (es->pending >= 0) r->fin.context[es->cache.n] = es->pending;
            r->fin.n_context = n;
        }
    }
    sl->done = true;
}

/* After the decode: one sampled token for a slot whose logits are ready. */
static void gen_token(sched_inst *in, sched_slot *sl, const float *logits)
{
    eslot *es = sl->state;
    sched_req *r = sl->req;
    if (!es->gen) {
        es->gen = true;
        es->t_prompt = core_mono_ns();
    }
    es->pending = -1;
    int32_t tok = eng_sampler_sample(es->smp, logits);
    eng_sampler_accept(es->smp, tok);
    es->n_gen++;
    if (eng_vocab_is_eog(in->v, tok)) {
        gen_finish(in, sl, "stop", true);
        return;
    }
    es->pending = tok;
    core_buf_reset(&es->piece);
    core_buf_reset(&es->out);
    eng_detok_push(&es->detok, tok, &es->piece);
    bool stopped = false;
    if (es->stop) stopped = eng_stop_push(es->stop, es->piece.data, es->piece.len, &es->out);
    else core_buf_append(&es->out, es->piece.data, es->piece.len);
    sched_req_emit(r, es->out.data, es->out.len);
    if (stopped) gen_finish(in, sl, "stop", false);
    else if (r->num_predict > 0 && es->n_gen >= r->num_predict) gen_finish(in, sl, "length", true);
    else if (es->cache.n + 1 >= (size_t)in->n_ctx) gen_finish(in, sl, "length", true);
}

/* Ends the current input of an embedding slot; starts the next or finishes. */
static int embed_input_done(sched_inst *in, sched_slot *sl, core_err *err)
{
    eslot *es = sl->state;
    sched_req *r = sl->req;
    size_t d = (size_t)in->hp.n_embd;
    float *row = r->fin.embd + es->input * d;
    double norm = 0;
    for (size_t i = 0; i < d; i++) {
        row[i] = r->pooling == SCHED_POOL_MEAN ? es->acc[i] / (float)es->n_acc : es->acc[i];
        norm += (double)row[i] * row[i];
    }
    if (r->normalize && norm > 0) {
        float inv = (float)(1.0 / sqrt(norm));
        for (size_t i = 0; i < d; i++) row[i] *= inv;
    }
    r->fin.n_embd_rows = es->input + 1;
    r->fin.embd_prompt_tokens += (int64_t)es->etoks.n;
    r->fin.prompt_eval_count = r->fin.embd_prompt_tokens;
    if (++es->input < r->n_inputs) return embed_start(in, sl, err);
    r->fin.prompt_eval_ns = core_mono_ns() - es->t_begin;
    r->fin.done_reason = "stop";
    sl->done = true;
    return CORE_OK;
}

static int be_step(sched_inst *in, sched_slot *const *act, int32_t n, core_err *err)
{
    int32_t nb = 0, outs = 0;
    /* Generating slots first (one token each), then prompt and input chunks. */
    for (int32_t k = 0; k < n; k++) {
        eslot *es = act[k]->state;
        in->b_idx[k] = -1;
        in->b_take[k] = 0;
        if (act[k]->req->kind == SCHED_GENERATE && es->gen && es->pending >= 0) {
            in->b_tok[nb] = es->pending;
            in->b_seq[nb] = act[k]->id;
            in->b_want[nb] = true;
            in->b_idx[k] = nb++;
            in->b_take[k] = 1;
            outs++;
        }
    }
    for (int32_t k = 0; k < n && nb < in->n_batch; k++) {
        sched_slot *sl = act[k];
        eslot *es = sl->state;
        sched_req *r = sl->req;
        if (in->b_take[k]) continue;
        bool embed = r->kind == SCHED_EMBED;
        const eng_tokens *t = embed ? &es->etoks : &r->toks;
        size_t left = t->n - es->pos;
        size_t take = left < (size_t)(in->n_batch - nb) ? left : (size_t)(in->n_batch - nb);
        bool mean = embed && r->pooling == SCHED_POOL_MEAN;
        if (mean && take > (size_t)(in->n_out_max - outs)) take = (size_t)(in->n_out_max - outs);
        if (!mean && outs >= in->n_out_max) take = 0;
        if (take == 0) continue;
        bool last_chunk = es->pos + take == t->n;
        for (size_t i = 0; i < take; i++) {
            in->b_tok[nb] = t->ids[es->pos + i];
            in->b_seq[nb] = sl->id;
            in->b_want[nb] = mean || (last_chunk && i == take - 1);
            if (in->b_want[nb]) outs++;
            nb++;
        }
        in->b_take[k] = (int32_t)take;
        in->b_idx[k] = last_chunk ? nb - 1 : -1;
    }
    if (nb == 0) return CORE_OK;
    eng_batch b = {.n = nb, .tokens = in->b_tok, .seq = in->b_seq, .want = in->b_want};
    int rc = eng_ctx_decode(in->c, &b, NULL, err);
    if (rc) return rc;
    for (int32_t k = 0; k < n; k++) {
        sched_slot *sl = act[k];
        eslot *es = sl->state;
        int32_t take = in->b_take[k];
        if (!take) continue;
        if (sl->req->kind == SCHED_EMBED) { /* its chunk is contiguous in the batch */
            int32_t first = -1;
            for (int32_t i = 0; i < nb; i++)
                if (in->b_seq[i] == sl->id) {
                    first = i;
                    break;
                }
            bool mean = sl->req->pooling == SCHED_POOL_MEAN;
            for (int32_t i = first; i < first + take; i++) {
                const float *e = eng_ctx_embd(in->c, i);
                if (!e) continue;
                if (mean) {
                    for (int64_t j = 0; j < in->hp.n_embd; j++) es->acc[j] += e[j];
                    es->n_acc++;
                } else {
                    memcpy(es->acc, e, (size_t)in->hp.n_embd * sizeof *e);
                }
            }
            es->pos += (size_t)take;
            if (es->pos == es->etoks.n && (rc = embed_input_done(in, sl, err))) return rc;
            continue;
        }
        if (es->gen) {
            es->cache.ids[es->cache.n++] = es->pending;
        } else {
            memcpy(es->cache.ids + es->cache.n, sl->req->toks.ids + es->pos,
                   (size_t)take * sizeof *es->cache.ids);
            es->cache.n += (size_t)take;
            es->pos += (size_t)take;
        }
        if (in->b_idx[k] >= 0) gen_token(in, sl, eng_ctx_logits(in->c, in->b_idx[k]));
    }
    return CORE_OK;
}

// ---- the backend and the constructor ----

const sched_backend sched_engine_backend = {
    .name = "engine",
    .probe = be_probe,
    .estimate = be_estimate,
    .load = be_load,
    .measured = be_measured,
    .resident = be_resident,
    .unload = be_unload,
    .slot_init = be_slot_init,
    .slot_deinit = be_slot_deinit,
    .prepare = be_prepare,
    .affinity = be_affinity,
    .begin = be_begin,
    .step = be_step,
    .end = be_end,
};

int sched_new(sched **out, const sched_config *cfg, core_err *err)
{
    return sched_new_with_backend(out, cfg, &sched_engine_backend, err);
}
