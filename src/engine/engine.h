/* engine.h — dwell's inference engine: a model (weights as views into the GGUF mapping),
 * its tokenizer, contexts (KV cache + scratch for several sequences), the forward pass, the
 * sampler, stop strings, streaming detokenization and chat templates.
 *
 * Sections, each implemented in its own files:
 *   model       model.c       load a GGUF, hyper-parameters, weights
 *   context     context.c     KV cache, batched forward pass (forward.c), logits/embeddings
 *   vocab       vocab.c, tok_spm.c, tok_bpe.c, unicode*.c   tokenizers
 *   sampler     sampler.c     sampling, stop strings
 *   template    template.c    Go-template subset renderer; chatfmt.c: dwell's chat formats
 *
 * Threads: an eng_model is immutable after eng_model_open and shared by reference count
 * (atomic). An eng_ctx, eng_sampler, eng_stop and eng_detok each belong to one thread at a
 * time (the scheduler's slot loop). Vocab and templates are immutable and shareable. */
#ifndef DWELL_ENGINE_H
#define DWELL_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct eng_model eng_model;
typedef struct eng_vocab eng_vocab;
typedef struct eng_ctx eng_ctx;

// ---- model ----

enum eng_arch { ENG_ARCH_LLAMA = 0, ENG_ARCH_QWEN2 = 1 };
enum eng_rope_style { ENG_ROPE_NORM = 0, ENG_ROPE_NEOX = 1 };

/* Hyper-parameters read from the GGUF metadata (`<arch>.*` keys) and tensor shapes. */
typedef struct eng_hparams {
    int arch;                 /* enum eng_arch */
    char arch_name[32];       /* "llama", "qwen2" */
    int64_t n_vocab;
    int64_t n_ctx_train;      /* <arch>.context_length */
    int64_t n_embd;           /* <arch>.embedding_length */
    int64_t n_layer;          /* <arch>.block_count */
    int64_t n_head;           /* <arch>.attention.head_count */
    int64_t n_head_kv;        /* <arch>.attention.head_count_kv (default n_head) */
    int64_t n_embd_head;      /* n_embd / n_head unless key_length says otherwise */
    int64_t n_ff;             /* <arch>.feed_forward_length */
    float rms_eps;            /* <arch>.attention.layer_norm_rms_epsilon */
    float rope_freq_base;     /* <arch>.rope.freq_base (default 10000) */
    float rope_freq_scale;    /* 1 / <arch>.rope.scaling.factor for linear scaling, else 1 */
    int64_t n_rot;            /* <arch>.rope.dimension_count (default n_embd_head) */
    int rope_style;           /* enum eng_rope_style */
    int file_type;            /* general.file_type, -1 if absent */
    int64_t n_params;         /* total number of weight elements */
    size_t weight_bytes;      /* bytes of tensor data */
} eng_hparams;

typedef struct eng_model_params {
    bool populate; /* read every weight page at load (MAP_POPULATE), so RSS is measured true */
} eng_model_params;

/* Opens a GGUF model: maps it, checks that the architecture is supported, that every
 * required key is present and every tensor's type and shape agree with the
 * hyper-parameters. Errors name the key or tensor. *out is written only on success, with a
 * reference count of 1. params may be NULL (defaults). */
int eng_model_open(eng_model **out, const char *path, const eng_model_params *params,
                   core_err *err);
/* Reference counting: acquire adds one; release drops one and unmaps and frees the model
 * when it reaches zero. NULL is allowed in release. */
eng_model *eng_model_acquire(eng_model *m);
void eng_model_release(eng_model *m);

const eng_hparams *eng_model_hparams(const eng_model *m);
/* Bytes of the model's file mapping resident in RAM now (mincore). */
size_t eng_model_resident_bytes(const eng_model *m);
/* The model's vocabulary, valid while the model is. */
const eng_vocab *eng_model_vocab(const eng_model *m);
/* A metadata string of the model file (e.g. "tokenizer.chat_template", "general.name"),
 * copied into buf (NUL-terminated, truncated to cap); false if absent or not a string.
 * eng_model_meta_str_dup returns a malloc'd copy (caller frees) or NULL. */
bool eng_model_meta_str(const eng_model *m, const char *key, char *buf, size_t cap);
char *eng_model_meta_str_dup(const eng_model *m, const char *key);
/* A human name for the file type ("Q4_K_M", "Q8_0", "F16"), as Ollama reports it in
 * details.quantization_level; never NULL. */
const char *eng_file_type_name(int file_type);
/* "8.0B" style parameter size, as Ollama's details.parameter_size. */
void eng_param_size_str(int64_t n_params, char *buf, size_t cap);

// ---- context: KV cache and forward pass ----

enum eng_kv_type { ENG_KV_F16 = 0, ENG_KV_F32 = 1 };

typedef struct eng_ctx_params {
    int64_t n_ctx;    /* tokens per sequence (cache length); 0 = model's n_ctx_train */
    int32_t n_seq;    /* number of independent sequences (slots); >= 1 */
    int32_t n_batch;  /* most tokens evaluated in one eng_ctx_decode call; 0 = 512 */
    int32_t n_threads;/* compute threads; 0 = kern_default_threads() */
    int kv_type;      /* enum eng_kv_type */
    bool embeddings;  /* keep the final hidden state per token (for /api/embed) */
} eng_ctx_params;

/* Bytes a context with these parameters allocates for model hparams h (KV cache, activations,
 * logits, scratch), for admission before anything is allocated. */
size_t eng_ctx_estimate(const eng_hparams *h, const eng_ctx_params *p);

/* Allocates the KV cache and scratch buffers (all at once; nothing is allocated per token)
 * and starts the compute pool. Keeps a reference to m. CORE_NOMEM if memory is short. */
int eng_ctx_new(eng_ctx **out, eng_model *m, const eng_ctx_params *p, core_err *err);
void eng_ctx_free(eng_ctx *c);
size_t eng_ctx_bytes(const eng_ctx *c); /* bytes actually allocated */
/* Bytes of the context's buffers resident in RAM now (mincore): the KV cache becomes resident
 * as sequences grow, so this is at most eng_ctx_bytes. */
size_t eng_ctx_resident_bytes(const eng_ctx *c);
int64_t eng_ctx_n_ctx(const eng_ctx *c);
int32_t eng_ctx_n_seq(const eng_ctx *c);

/* A batch: token i is appended to sequence seq[i] at that sequence's next position.
 * Tokens of one sequence must appear in order. want[i] asks for the logits (and, with
 * params.embeddings, the hidden state) of token i. */
typedef struct eng_batch {
    int32_t n;
    const int32_t *tokens;
    const int32_t *seq;
    const bool *want;
} eng_batch;

/* Evaluates a batch (at most n_batch tokens). Returns CORE_CANCELLED when *cancel becomes
 * true between layers (cancel may be NULL), CORE_LIMIT when a sequence would pass n_ctx,
 * CORE_INVALID for a bad token id or sequence. On any failure the sequences are left as they
 * were before the call. */
int eng_ctx_decode(eng_ctx *c, const eng_batch *b, const atomic_bool *cancel, core_err *err);
/* Logits (n_vocab floats) of batch token i that had want[i]; valid until the next decode.
 * NULL if i had no want. */
const float *eng_ctx_logits(const eng_ctx *c, int32_t i);
/* Final hidden state after the output norm (n_embd floats) of batch token i; NULL unless
 * params.embeddings and want[i]. */
const float *eng_ctx_embd(const eng_ctx *c, int32_t i);
/* Number of tokens in a sequence's cache. */
int64_t eng_ctx_seq_len(const eng_ctx *c, int32_t seq);
/* Keeps the first n tokens of a sequence (0 clears it): for prompt-prefix reuse. */
void eng_ctx_seq_truncate(eng_ctx *c, int32_t seq, int64_t n);

// ---- vocabulary and tokenizers ----

enum eng_vocab_type { ENG_VOCAB_SPM = 1, ENG_VOCAB_BPE = 2 };
/* Token types as stored in tokenizer.ggml.token_type. */
enum eng_tok_attr {
    ENG_TOK_NORMAL = 1,
    ENG_TOK_UNKNOWN = 2,
    ENG_TOK_CONTROL = 3,
    ENG_TOK_USER_DEFINED = 4,
    ENG_TOK_UNUSED = 5,
    ENG_TOK_BYTE = 6,
};

/* A growable list of token ids; free with eng_tokens_free. */
typedef struct eng_tokens {
    int32_t *ids;
    size_t n;
    size_t cap;
} eng_tokens;
int eng_tokens_push(eng_tokens *t, int32_t id);
void eng_tokens_free(eng_tokens *t);

/* Reads the tokenizer.ggml.* keys of an open GGUF (passed as `const void *` to keep gguf.h
 * out of this header: it is a `const gguf_file *`). Used by eng_model_open and by tests. */
int eng_vocab_load(eng_vocab **out, const void *gguf_file, core_err *err);
void eng_vocab_free(eng_vocab *v);

int eng_vocab_type(const eng_vocab *v);
int64_t eng_vocab_n(const eng_vocab *v);
int32_t eng_vocab_bos(const eng_vocab *v); /* -1 if none */
int32_t eng_vocab_eos(const eng_vocab *v); /* -1 if none */
bool eng_vocab_add_bos(const eng_vocab *v);
bool eng_vocab_add_eos(const eng_vocab *v);
/* True for end-of-generation tokens (eos, eot, and tokens such as <|eot_id|>, <|eom_id|>,
 * <|end_of_text|>, <|im_end|> marked by their text). */
bool eng_vocab_is_eog(const eng_vocab *v, int32_t id);
/* The token's stored text (NUL-terminated, owned by the vocab) and type. */
const char *eng_vocab_text(const eng_vocab *v, int32_t id);
int eng_vocab_attr(const eng_vocab *v, int32_t id);
/* Id of a token whose text is exactly s, or -1. */
int32_t eng_vocab_find(const eng_vocab *v, const char *s);

/* Tokenizes len bytes of text, appending ids to out. add_special adds BOS (and EOS) as the
 * vocabulary's flags say; parse_special turns special-token text ("<s>", "<|eot_id|>") into
 * those tokens instead of tokenizing it as text. These are llama_tokenize's two flags. */
int eng_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_special,
                 bool parse_special, eng_tokens *out, core_err *err);
/* Appends the bytes of one token to out: SentencePiece's ▁ becomes a space, byte tokens
 * become their byte, byte-level BPE symbols become their bytes. Control tokens give their text
 * only with unparse_special. */
int eng_token_to_piece(const eng_vocab *v, int32_t id, bool unparse_special, core_buf *out);
/* llama_detokenize(remove_special=false, unparse_special): the whole text of ids, with
 * SentencePiece's leading space removed and BPE clean_spaces applied where the vocab says. */
int eng_detokenize(const eng_vocab *v, const int32_t *ids, size_t n, bool unparse_special,
                   core_buf *out);

/* Streaming detokenizer: feed one token at a time and get only whole UTF-8 characters out,
 * never half of one; eng_detok_flush returns what is left at the end. Owned by one slot. */
typedef struct eng_detok {
    const eng_vocab *v;
    char pending[8];
    size_t n_pending;
    bool first;        /* the next token is the first of the output */
} eng_detok;
void eng_detok_init(eng_detok *d, const eng_vocab *v, bool first_token);
int eng_detok_push(eng_detok *d, int32_t id, core_buf *out);
void eng_detok_flush(eng_detok *d, core_buf *out);

// ---- sampler ----

typedef struct eng_sampler_params {
    float temperature;     /* 0 = greedy (argmax, ties to the lowest id) */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    int32_t repeat_last_n; /* 0: off, -1: the whole context */
    float presence_penalty;
    float frequency_penalty;
    uint64_t seed;
    bool has_seed;         /* without a seed the sampler seeds itself from the clock */
} eng_sampler_params;

/* Ollama's defaults: temperature 0.8, top_k 40, top_p 0.9, min_p 0, repeat_penalty 1.1,
 * repeat_last_n 64, presence/frequency 0. */
void eng_sampler_params_default(eng_sampler_params *p);

typedef struct eng_sampler eng_sampler;
int eng_sampler_new(eng_sampler **out, const eng_sampler_params *p, int64_t n_vocab,
                    core_err *err);
void eng_sampler_free(eng_sampler *s);
/* Records a token of the context (prompt or generated) for the penalties. */
void eng_sampler_accept(eng_sampler *s, int32_t id);
void eng_sampler_reset(eng_sampler *s);
/* Picks the next token from logits (n_vocab floats, not modified). Allocation-free. */
int32_t eng_sampler_sample(eng_sampler *s, const float *logits);

/* Stop strings. Text is pushed as it is generated; eng_stop_push appends to `out` only the
 * text that can no longer be the start of a stop string, and returns true once a stop string
 * was completed (the stop string and anything after it are never emitted). Handles a stop
 * string spanning several tokens. */
typedef struct eng_stop eng_stop;
int eng_stop_new(eng_stop **out, const char *const *stops, size_t n_stops, core_err *err);
void eng_stop_free(eng_stop *s);
bool eng_stop_push(eng_stop *s, const char *text, size_t len, core_buf *out);
/* At the end of generation: appends the held-back text (it turned out not to be a stop). */
void eng_stop_flush(eng_stop *s, core_buf *out);

// ---- templates (Ollama's Go text/template subset) ----

typedef struct eng_tmpl eng_tmpl;

typedef struct eng_msg {
    const char *role;    /* "system", "user", "assistant", "tool" */
    const char *content;
} eng_msg;

/* The data a template sees: .System, .Prompt, .Response, .Suffix, .Messages (each with
 * .Role and .Content), .Tools (always empty for now). NULL strings render as "". */
typedef struct eng_tmpl_vars {
    const char *system;
    const char *prompt;
    const char *response;
    const char *suffix;
    const eng_msg *messages;
    size_t n_messages;
} eng_tmpl_vars;

/* Parses a template; errors give the line and what was unexpected. */
int eng_tmpl_parse(eng_tmpl **out, const char *src, size_t len, core_err *err);
void eng_tmpl_free(eng_tmpl *t);
int eng_tmpl_render(const eng_tmpl *t, const eng_tmpl_vars *vars, core_buf *out,
                    core_err *err);
/* True if the template uses .Messages (then chat messages go in as they are; otherwise
 * Ollama's fallback folds them into .System/.Prompt/.Response turns). */
bool eng_tmpl_uses_messages(const eng_tmpl *t);
/* True if the template references .Suffix (fill-in-the-middle support). */
bool eng_tmpl_uses_suffix(const eng_tmpl *t);

/* Renders a chat: messages through the template, Ollama's way (ref: spec section L). */
int eng_tmpl_render_chat(const eng_tmpl *t, const char *system, const eng_msg *msgs,
                         size_t n_msgs, core_buf *out, core_err *err);

/* dwell's own table of chat formats, for GGUF files imported without an Ollama template. */
typedef struct eng_chat_format {
    const char *name;        /* "llama3-instruct", "chatml", ... */
    const char *template_src;/* Go template, written here */
    const char *const *stops;/* NULL-terminated */
} eng_chat_format;

/* The format whose Jinja fingerprint matches jinja (a GGUF tokenizer.chat_template), or the
 * documented fallback when nothing matches (NULL jinja too). Never NULL. */
const eng_chat_format *eng_chat_format_for_jinja(const char *jinja);
/* The format called name, or NULL. */
const eng_chat_format *eng_chat_format_by_name(const char *name);
/* The whole table, for listing. */
const eng_chat_format *eng_chat_format_at(size_t i); /* NULL past the end */

// ---- synthetic models (dwell debug mkmodel) ----

/* What eng_mkmodel writes: a llama- or qwen2-shaped model with random weights ("test"-style
 * init: std about 1/sqrt(fan_in), norms near 1), quantized to `type`. */
typedef struct eng_mkmodel_params {
    const char *arch;        /* "llama" (default) or "qwen2" (adds q/k/v biases) */
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    int type;                /* enum core_type of the weight matrices */
    int embd_type;           /* type of token_embd; -1 = same as type */
    bool tied;               /* no output.weight: the logits use token_embd */
    const char *vocab_from;  /* copy tokenizer.* from this GGUF; NULL = built-in vocab */
    uint64_t seed;
    const char *name;        /* general.name */
} eng_mkmodel_params;

/* Defaults: llama, dim 256, 2 layers, 4/2 heads, ffn 768, ctx 2048, Q8_0, tied, built-in
 * byte-level BPE vocabulary with a chat template, seed 1. */
void eng_mkmodel_params_default(eng_mkmodel_params *p);
/* Writes the model to path atomically. */
int eng_mkmodel(const char *path, const eng_mkmodel_params *p, core_err *err);

#endif
