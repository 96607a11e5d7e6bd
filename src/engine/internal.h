/* internal.h — engine/'s private declarations, shared between the engine's own files only
 * (other subsystems include engine/engine.h). Each section belongs to the files named in
 * its banner. */
#ifndef DWELL_ENGINE_INTERNAL_H
#define DWELL_ENGINE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"

// ---- model (model.c), used by context.c and forward.c ----

/* A weight matrix: a view into the model's mapping. n_out rows of n_in elements of `type`
 * (ne[0] = n_in innermost), row stride row_bytes. */
typedef struct eng_weight {
    const char *name; /* the tensor's name, owned by the gguf_file */
    const void *data;
    int type;         /* enum core_type, supported by kern_traits_get */
    int64_t n_in;
    int64_t n_out;
    size_t row_bytes;
} eng_weight;

/* One transformer block. Vectors are f32 copies owned by the model (the file may store them
 * in any supported type); biases are NULL when the architecture has none. */
typedef struct eng_layer {
    const float *attn_norm; /* [n_embd] */
    eng_weight wq;          /* [n_embd] -> [n_head * n_embd_head] */
    eng_weight wk;          /* [n_embd] -> [n_head_kv * n_embd_head] */
    eng_weight wv;          /* [n_embd] -> [n_head_kv * n_embd_head] */
    eng_weight wo;          /* [n_head * n_embd_head] -> [n_embd] */
    const float *bq;        /* [n_head * n_embd_head] (qwen2) or NULL */
    const float *bk;        /* [n_head_kv * n_embd_head] (qwen2) or NULL */
    const float *bv;        /* [n_head_kv * n_embd_head] (qwen2) or NULL */
    const float *ffn_norm;  /* [n_embd] */
    eng_weight w_gate;      /* [n_embd] -> [n_ff] */
    eng_weight w_up;        /* [n_embd] -> [n_ff] */
    eng_weight w_down;      /* [n_ff] -> [n_embd] */
} eng_layer;

/* Immutable after eng_model_open; shared by reference count. */
struct eng_model {
    atomic_int refs;
    gguf_file *gguf;         /* owns the mapping every eng_weight points into */
    eng_vocab *vocab;
    eng_hparams hp;
    eng_weight tok_embd;     /* [n_vocab] rows of [n_embd] */
    eng_weight output;       /* [n_embd] -> [n_vocab]; token_embd when tied */
    bool tied;
    const float *output_norm;/* [n_embd] */
    const float *rope_freqs; /* [n_rot / 2] frequency divisors (Llama 3.1), or NULL */
    eng_layer *layers;       /* [n_layer] */
    float *vecs;             /* the f32 copies the pointers above point into */
};

// ---- context (context.c) and forward pass (forward.c) ----

/* A context: KV cache and scratch for n_seq sequences and n_batch tokens per call, all in one
 * anonymous mapping made by eng_ctx_new (munmap'd by eng_ctx_free, so the memory goes back to
 * the system). Owned by one thread at a time. */
struct eng_ctx {
    eng_model *model;     /* a reference, released by eng_ctx_free */
    eng_hparams hp;       /* a copy of the model's */
    int64_t n_ctx;
    int32_t n_seq, n_batch, n_threads, n_out_max;
    int kv_type;          /* enum eng_kv_type */
    bool embeddings;
    kern_pool *pool;
    void *region;         /* the one mapping every buffer below lives in */
    size_t region_bytes;
    /* KV cache, [n_seq][n_layer][n_ctx][n_embd_kv] of f16 (uint16_t) or f32 */
    void *k_cache, *v_cache;
    int64_t *seq_len;     /* [n_seq] tokens in each sequence's cache */
    /* activations for the batch, f32 */
    float *x;             /* [n_batch][n_embd] residual stream */
    float *xb;            /* [n_batch][n_embd] normed input of a sublayer */
    float *xb2;           /* [n_batch][n_embd] a sublayer's output */
    float *q;             /* [n_batch][n_head * n_embd_head] */
    float *k, *v;         /* [n_batch][n_head_kv * n_embd_head] */
    float *att;           /* [n_batch][n_head * n_embd_head] attention output */
    float *hb, *hb2;      /* [n_batch][n_ff] */
    float *scores;        /* [n_threads][n_ctx] attention scores, one row per worker */
    int64_t *pos;         /* [n_batch] position of each batch token in its sequence */
    int32_t *out_row;     /* [n_batch] row in logits/embd of a wanted token, or -1 */
    float *logits;        /* [n_out_max][n_vocab] */
    float *embd;          /* [n_out_max][n_embd] when embeddings, else NULL */
    float *rope_theta;    /* [n_rot / 2] per-pair frequency: freq_scale * base^(-2i/n_rot) / ff */
    void *act_q;          /* [act_q_bytes] a matmul's quantized input (kern_matmul_act work) */
    size_t act_q_bytes;
};

/* forward.c: evaluates a validated batch (positions in c->pos, rows in c->out_row). Returns
 * CORE_OK or CORE_CANCELLED; does not update c->seq_len. */
int eng_forward(eng_ctx *c, const eng_batch *b, int32_t n_out, const atomic_bool *cancel);

#endif
