/* vocab.c — the vocabulary: reading tokenizer.ggml.* from a GGUF file, its hash tables
 * (text -> id, merge pair -> rank), special and end-of-generation tokens, and eng_tokenize,
 * which splits the text around special tokens and hands the rest to the SentencePiece
 * (tok_spm.c) or byte-level BPE (tok_bpe.c) tokenizer.
 *
 * Behaviour follows llama.cpp's llama-vocab.cpp (the copy Ollama v0.20.0 vendors), whose
 * outputs are the goldens in shared/golden: defaults when keys are absent, the special-token
 * partition (longest special first), the SentencePiece leading-space rule.
 *
 * Departure: llama.cpp gives a "gpt2" vocabulary without bos/eos keys the ids 11/11 (GPT-2's
 * ","); dwell leaves them unset (-1) instead.
 *
 * Threads: an eng_vocab is immutable after eng_vocab_load; tokenizing allocates its scratch
 * per call and may run on any number of threads at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"
#include "gguf/gguf.h"

#define VOCAB_MAX_TOKENS (1 << 24)
#define VOCAB_MAX_MERGES (1 << 24)

// ---- hashing ----

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define HASH_SEED 0xcbf29ce484222325ull

static uint32_t table_cap(int64_t n)
{
    uint32_t cap = 16;
    while ((int64_t)cap < 2 * n) cap <<= 1;
    return cap;
}

int32_t eng_vocab_lookup(const eng_vocab *v, const char *s, size_t len)
{
    uint32_t i = (uint32_t)hash_bytes(HASH_SEED, s, len) & v->tok_mask;
    for (;;) {
        int32_t id = v->tok_slot[i];
        if (id < 0) return -1;
        if (v->len[id] == len && memcmp(eng_vocab_tok(v, id), s, len) == 0) return id;
        i = (i + 1) & v->tok_mask;
    }
}

static uint64_t merge_hash(const char *l, size_t ll, const char *r, size_t rl)
{
    uint64_t h = hash_bytes(HASH_SEED, l, ll);
    h = hash_bytes(h ^ 0xFF, "\xff", 1); /* a separator no UTF-8 text contains */
    return hash_bytes(h, r, rl);
}

int32_t eng_vocab_merge_rank(const eng_vocab *v, const char *l, size_t ll, const char *r,
                             size_t rl)
{
    if (!v->merge_slot) return -1;
    uint32_t i = (uint32_t)merge_hash(l, ll, r, rl) & v->merge_mask;
    for (;;) {
        int32_t rank = v->merge_slot[i];
        if (rank < 0) return -1;
        const eng_merge *m = &v->merges[rank];
        if (m->l_len == ll && m->r_len == rl && memcmp(v->pool + m->l_off, l, ll) == 0 &&
            memcmp(v->pool + m->r_off, r, rl) == 0) {
            return rank;
        }
        i = (i + 1) & v->merge_mask;
    }
}

// ---- loading ----

static int get_opt_array(const gguf_file *f, const char *key, const gguf_array **out,
                         int64_t n, bool numeric, core_err *err)
{
    *out = NULL;
    int rc = gguf_get_array(f, key, out, err);
    if (rc == CORE_NOTFOUND) {
        *out = NULL;
        return CORE_OK;
    }
    if (rc) return rc;
    if ((*out)->n != (uint64_t)n) {
        return core_err_set(err, CORE_FORMAT, "%s has %llu elements, expected %lld (one per token)",
                            key, (unsigned long long)(*out)->n, (long long)n);
    }
    int t = (*out)->type;
    if (numeric && (t == GGUF_VT_STRING || t == GGUF_VT_ARRAY || t == GGUF_VT_BOOL)) {
        return core_err_set(err, CORE_FORMAT, "%s: elements must be numbers", key);
    }
    return CORE_OK;
}

static int get_opt_bool(const gguf_file *f, const char *key, bool *val, core_err *err)
{
    bool b;
    int rc = gguf_get_bool(f, key, &b, err);
    if (rc == CORE_NOTFOUND) return CORE_OK;
    if (rc) return rc;
    *val = b;
    return CORE_OK;
}

/* A special token id key: absent leaves *id; out of range is an error unless `lenient`
 * (then it is ignored with a warning, as llama.cpp does for all of them). */
static int get_opt_id(const gguf_file *f, const char *key, int64_t n, bool lenient, int32_t *id,
                      core_err *err)
{
    uint64_t u;
    int rc = gguf_get_u64(f, key, &u, err);
    if (rc == CORE_NOTFOUND) return CORE_OK;
    if (rc) return rc;
    if (u == UINT32_MAX || u == UINT64_MAX) return CORE_OK; /* "none", as some files write it */
    if (u >= (uint64_t)n) {
        if (lenient) {
            CORE_WARN("vocab: %s = %llu is not a token id (%lld tokens): ignored", key,
                      (unsigned long long)u, (long long)n);
            return CORE_OK;
        }
        return core_err_set(err, CORE_FORMAT, "%s = %llu is out of range (%lld tokens)", key,
                            (unsigned long long)u, (long long)n);
    }
    *id = (int32_t)u;
    return CORE_OK;
}

static int parse_pre(eng_vocab *v, const gguf_file *f, core_err *err)
{
    gguf_str s = {0};
    int rc = gguf_get_str(f, "tokenizer.ggml.pre", &s, err);
    if (rc && rc != CORE_NOTFOUND) return rc;
    v->clean_spaces = true;
    v->pre = ENG_PRE_DEFAULT;
    if (rc == CORE_NOTFOUND || gguf_str_eq(s, "default")) return CORE_OK;
    static const char *const llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3",
                                         "falcon-h1", "pixtral", "midm-2.0", "lfm2"};
    static const char *const gpt2[] = {"gpt-2", "gpt2", "phi-2", "jina-es", "jina-de",
                                       "gigachat", "jina-v2-es", "jina-v2-de", "jina-v2-code",
                                       "roberta-bpe"};
    static const char *const smollm[] = {"smollm", "starcoder", "refact", "command-r",
                                         "codeshell", "exaone", "minerva-7b"};
    for (size_t i = 0; i < sizeof llama3 / sizeof *llama3; i++) {
        if (gguf_str_eq(s, llama3[i])) {
            v->pre = ENG_PRE_LLAMA3;
            v->ignore_merges = true;
            v->add_bos = true;
            return CORE_OK;
        }
    }
    for (size_t i = 0; i < sizeof gpt2 / sizeof *gpt2; i++) {
        if (gguf_str_eq(s, gpt2[i])) {
            v->pre = ENG_PRE_GPT2;
            return CORE_OK;
        }
    }
    if (gguf_str_eq(s, "qwen2") || gguf_str_eq(s, "deepseek-r1-qwen")) {
        v->pre = ENG_PRE_QWEN2;
        v->clean_spaces = false;
        return CORE_OK;
    }
    for (size_t i = 0; i < sizeof smollm / sizeof *smollm; i++) {
        if (gguf_str_eq(s, smollm[i])) {
            v->pre = ENG_PRE_SMOLLM;
            v->clean_spaces = !(gguf_str_eq(s, "smollm") || gguf_str_eq(s, "command-r"));
            return CORE_OK;
        }
    }
    return core_err_set(err, CORE_UNSUPPORTED,
                        "tokenizer.ggml.pre \"%.*s\" is not supported (dwell knows default, "
                        "llama-bpe/llama3, gpt2, qwen2, smollm, starcoder)",
                        (int)(s.len > 64 ? 64 : s.len), s.ptr);
}

/* Copies the token texts and merges into one pool and builds both hash tables. */
static int build_tables(eng_vocab *v, const gguf_array *toks, const gguf_array *merges,
                        core_err *err)
{
    size_t total = 0;
    for (int64_t i = 0; i < v->n; i++) total += toks->strs[i].len + 1;
    if (merges) {
        for (uint64_t i = 0; i < merges->n; i++) total += merges->strs[i].len + 1;
    }
    if (total >= UINT32_MAX) {
        return core_err_set(err, CORE_LIMIT, "tokenizer: %zu bytes of token text is too much",
                            total);
    }
    v->pool = malloc(total + 1);
    v->off = malloc(sizeof *v->off * (size_t)v->n);
    v->len = malloc(sizeof *v->len * (size_t)v->n);
    uint32_t cap = table_cap(v->n);
    v->tok_mask = cap - 1;
    v->tok_slot = malloc(sizeof *v->tok_slot * cap);
    if (!v->pool || !v->off || !v->len || !v->tok_slot) {
        return core_err_set(err, CORE_NOMEM, "tokenizer: out of memory");
    }
    memset(v->tok_slot, 0xFF, sizeof *v->tok_slot * cap);
    size_t pos = 0;
    for (int64_t i = 0; i < v->n; i++) {
        const gguf_str *s = &toks->strs[i];
        memcpy(v->pool + pos, s->ptr, s->len);
        v->pool[pos + s->len] = 0;
        v->off[i] = (uint32_t)pos;
        v->len[i] = (uint32_t)s->len;
        pos += s->len + 1;
        /* duplicates: the last id wins, as llama.cpp's token_to_id map */
        uint32_t h = (uint32_t)hash_bytes(HASH_SEED, s->ptr, s->len) & v->tok_mask;
        while (v->tok_slot[h] >= 0) {
            int32_t o = v->tok_slot[h];
            if (v->len[o] == s->len && memcmp(eng_vocab_tok(v, o), s->ptr, s->len) == 0) break;
            h = (h + 1) & v->tok_mask;
        }
        v->tok_slot[h] = (int32_t)i;
    }
    if (!merges) return CORE_OK;

    v->n_merges = (int64_t)merges->n;
    v->merges = malloc(sizeof *v->merges * (merges->n ? merges->n : 1));
    cap = table_cap(v->n_merges);
    v->merge_mask = cap - 1;
    v->merge_slot = malloc(sizeof *v->merge_slot * cap);
    if (!v->merges || !v->merge_slot) {
        return core_err_set(err, CORE_NOMEM, "tokenizer: out of memory for the merges");
    }
    memset(v->merge_slot, 0xFF, sizeof *v->merge_slot * cap);
    for (uint64_t i = 0; i < merges->n; i++) {
        const gguf_str *s = &merges->strs[i];
        char *dst = v->pool + pos;
        memcpy(dst, s->ptr, s->len);
        dst[s->len] = 0;
        /* "left right", split at the first space after the first byte (llama.cpp) */
        const char *sp = s->len > 1 ? memchr(dst + 1, ' ', s->len - 1) : NULL;
        eng_merge *m = &v->merges[i];
        m->l_off = m->r_off = (uint32_t)pos;
        m->l_len = m->r_len = 0;
        if (sp) {
            m->l_len = (uint32_t)(sp - dst);
            m->r_off = (uint32_t)(pos + m->l_len + 1);
            m->r_len = (uint32_t)(s->len - m->l_len - 1);
        }
        pos += s->len + 1;
        const char *l = v->pool + m->l_off, *r = v->pool + m->r_off;
        uint32_t h = (uint32_t)merge_hash(l, m->l_len, r, m->r_len) & v->merge_mask;
        bool dup = false;
        while (v->merge_slot[h] >= 0) {
            const eng_merge *o = &v->merges[v->merge_slot[h]];
            if (o->l_len == m->l_len && o->r_len == m->r_len &&
                memcmp(v->pool + o->l_off, l, m->l_len) == 0 &&
                memcmp(v->pool + o->r_off, r, m->r_len) == 0) {
                dup = true; /* the first (lowest rank) wins */
                break;
            }
            h = (h + 1) & v->merge_mask;
        }
        if (!dup) v->merge_slot[h] = (int32_t)i;
    }
    return CORE_OK;
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const eng_vocab *v = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->len[x] != v->len[y]) return v->len[x] > v->len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* End-of-generation tokens by text (llama.cpp marks these and makes them control tokens),
 * the special-token list for the partition, and the SPM byte tokens. */
static int build_specials(eng_vocab *v, core_err *err)
{
    static const char *const eog_texts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
        "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
        "<end_of_utterance>",
    };
    v->eog = calloc((size_t)v->n, 1);
    v->specials = malloc(sizeof *v->specials * (size_t)v->n);
    if (!v->eog || !v->specials) return core_err_set(err, CORE_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < sizeof eog_texts / sizeof *eog_texts; i++) {
        int32_t id = eng_vocab_lookup(v, eog_texts[i], strlen(eog_texts[i]));
        if (id < 0) continue;
        v->eog[id] = 1;
        v->attr[id] = ENG_TOK_CONTROL;
        if (v->eot < 0 && strcmp(eog_texts[i], "<|eom_id|>") != 0 &&
            strcmp(eog_texts[i], "<|return|>") != 0 && strcmp(eog_texts[i], "<|call|>") != 0) {
            v->eot = id;
        }
    }
    if (v->eom < 0) v->eom = eng_vocab_lookup(v, "<|eom_id|>", 10);
    if (v->eos >= 0) v->eog[v->eos] = 1;
    if (v->eot >= 0) v->eog[v->eot] = 1;
    if (v->eom >= 0) v->eog[v->eom] = 1;

    for (int64_t i = 0; i < v->n; i++) {
        int a = v->attr[i];
        if ((a == ENG_TOK_CONTROL || a == ENG_TOK_USER_DEFINED || a == ENG_TOK_UNKNOWN) &&
            v->len[i] > 0) {
            v->specials[v->n_specials++] = (int32_t)i;
        }
    }
    qsort_r(v->specials, (size_t)v->n_specials, sizeof *v->specials, cmp_special, v);

    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        int32_t id = eng_vocab_lookup(v, name, 6);
        if (id < 0) {
            char c = (char)b;
            id = eng_vocab_lookup(v, &c, 1);
        }
        v->byte_tok[b] = id >= 0 ? id : v->unk;
    }
    return CORE_OK;
}

static int load_arrays(eng_vocab *v, const gguf_file *f, const gguf_array **toks,
                       const gguf_array **merges, core_err *err)
{
    int rc = gguf_get_array(f, "tokenizer.ggml.tokens", toks, err);
    if (rc == CORE_NOTFOUND) {
        return core_err_set(err, CORE_FORMAT, "tokenizer.ggml.tokens is missing");
    }
    if (rc) return rc;
    if ((*toks)->type != GGUF_VT_STRING) {
        return core_err_set(err, CORE_FORMAT, "tokenizer.ggml.tokens must be an array of strings");
    }
    if ((*toks)->n == 0 || (*toks)->n > VOCAB_MAX_TOKENS) {
        return core_err_set(err, CORE_FORMAT, "tokenizer.ggml.tokens has %llu tokens (1..%d)",
                            (unsigned long long)(*toks)->n, VOCAB_MAX_TOKENS);
    }
    v->n = (int64_t)(*toks)->n;

    const gguf_array *types = NULL, *scores = NULL;
    if ((rc = get_opt_array(f, "tokenizer.ggml.token_type", &types, v->n, true, err))) return rc;
    if ((rc = get_opt_array(f, "tokenizer.ggml.scores", &scores, v->n, true, err))) return rc;
    v->score = malloc(sizeof *v->score * (size_t)v->n);
    v->attr = malloc((size_t)v->n);
    if (!v->score || !v->attr) return core_err_set(err, CORE_NOMEM, "tokenizer: out of memory");
    for (int64_t i = 0; i < v->n; i++) {
        v->score[i] = scores ? (float)gguf_array_float(scores, (uint64_t)i) : 0.0f;
        int64_t t = types ? gguf_array_int(types, (uint64_t)i) : ENG_TOK_NORMAL;
        v->attr[i] = (uint8_t)(t >= ENG_TOK_NORMAL && t <= ENG_TOK_BYTE ? t : 0);
    }

    *merges = NULL;
    if (v->type != ENG_VOCAB_BPE) return CORE_OK;
    rc = gguf_get_array(f, "tokenizer.ggml.merges", merges, err);
    if (rc == CORE_NOTFOUND) {
        return core_err_set(err, CORE_FORMAT, "tokenizer.ggml.merges is missing (needed by a "
                            "gpt2 byte-level BPE vocabulary)");
    }
    if (rc) return rc;
    if ((*merges)->type != GGUF_VT_STRING || (*merges)->n > VOCAB_MAX_MERGES) {
        return core_err_set(err, CORE_FORMAT, "tokenizer.ggml.merges must be an array of at "
                            "most %d strings", VOCAB_MAX_MERGES);
    }
    return CORE_OK;
}

static int load_ids(eng_vocab *v, const gguf_file *f, core_err *err)
{
    int rc;
    const int64_t n = v->n;
    if ((rc = get_opt_id(f, "tokenizer.ggml.bos_token_id", n, false, &v->bos, err)) ||
        (rc = get_opt_id(f, "tokenizer.ggml.eos_token_id", n, false, &v->eos, err)) ||
        (rc = get_opt_id(f, "tokenizer.ggml.unknown_token_id", n, false, &v->unk, err)) ||
        (rc = get_opt_id(f, "tokenizer.ggml.eot_token_id", n, false, &v->eot, err)) ||
        (rc = get_opt_id(f, "tokenizer.ggml.eom_token_id", n, false, &v->eom, err)) ||
        (rc = get_opt_id(f, "tokenizer.ggml.padding_token_id", n, true, &v->pad, err))) {
        return rc;
    }
    if ((rc = get_opt_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos, err)) ||
        (rc = get_opt_bool(f, "tokenizer.ggml.add_eos_token", &v->add_eos, err)) ||
        (rc = get_opt_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err))) {
        return rc;
    }
    if (v->add_bos && v->bos < 0) {
        CORE_WARN("vocab: the vocabulary adds BOS but has no BOS token: not adding it");
        v->add_bos = false;
    }
    if (v->add_eos && v->eos < 0) {
        CORE_WARN("vocab: the vocabulary adds EOS but has no EOS token: not adding it");
        v->add_eos = false;
    }
    return CORE_OK;
}

// ---- public: loading ----

int eng_vocab_load(eng_vocab **out, const void *file, core_err *err)
{
    const gguf_file *f = file;
    if (!out || !f) return core_err_set(err, CORE_INVALID, "eng_vocab_load: NULL argument");
    gguf_str model;
    int rc = gguf_get_str(f, "tokenizer.ggml.model", &model, err);
    if (rc == CORE_NOTFOUND) {
        return core_err_set(err, CORE_FORMAT, "tokenizer.ggml.model is missing: the file has "
                            "no tokenizer");
    }
    if (rc) return rc;
    eng_vocab *v = calloc(1, sizeof *v);
    if (!v) return core_err_set(err, CORE_NOMEM, "tokenizer: out of memory");
    v->bos = v->eos = v->unk = v->pad = v->eot = v->eom = -1;
    if (gguf_str_eq(model, "llama")) {
        v->type = ENG_VOCAB_SPM;
        v->add_space_prefix = true;
        v->add_bos = true;
    } else if (gguf_str_eq(model, "gpt2")) {
        v->type = ENG_VOCAB_BPE;
        if ((rc = parse_pre(v, f, err))) goto fail;
    } else {
        rc = core_err_set(err, CORE_UNSUPPORTED,
                          "tokenizer.ggml.model \"%.*s\" is not supported (dwell reads "
                          "\"llama\" SentencePiece and \"gpt2\" byte-level BPE vocabularies)",
                          (int)(model.len > 64 ? 64 : model.len), model.ptr);
        goto fail;
    }
    const gguf_array *toks = NULL, *merges = NULL;
    if ((rc = load_arrays(v, f, &toks, &merges, err))) goto fail;
    if (v->type == ENG_VOCAB_SPM && v->n >= 3) { /* llama.cpp's defaults for "llama" */
        v->unk = 0;
        v->bos = 1;
        v->eos = 2;
    }
    if ((rc = load_ids(v, f, err))) goto fail;
    if ((rc = build_tables(v, toks, merges, err))) goto fail;
    if ((rc = build_specials(v, err))) goto fail;
    *out = v;
    return CORE_OK;
fail:
    eng_vocab_free(v);
    return rc;
}

void eng_vocab_free(eng_vocab *v)
{
    if (!v) return;
    free(v->pool);
    free(v->off);
    free(v->len);
    free(v->score);
    free(v->attr);
    free(v->tok_slot);
    free(v->merges);
    free(v->merge_slot);
    free(v->specials);
    free(v->eog);
    free(v);
}

// ---- public: accessors ----

int eng_vocab_type(const eng_vocab *v) { return v->type; }
int64_t eng_vocab_n(const eng_vocab *v) { return v->n; }
int32_t eng_vocab_bos(const eng_vocab *v) { return v->bos; }
int32_t eng_vocab_eos(const eng_vocab *v) { return v->eos; }
bool eng_vocab_add_bos(const eng_vocab *v) { return v->add_bos; }
bool eng_vocab_add_eos(const eng_vocab *v) { return v->add_eos; }

bool eng_vocab_is_eog(const eng_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n && v->eog[id];
}

const char *eng_vocab_text(const eng_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n ? eng_vocab_tok(v, id) : NULL;
}

int eng_vocab_attr(const eng_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n ? v->attr[id] : 0;
}

int32_t eng_vocab_find(const eng_vocab *v, const char *s)
{
    return s ? eng_vocab_lookup(v, s, strlen(s)) : -1;
}

// ---- token lists ----

int eng_tokens_push(eng_tokens *t, int32_t id)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *ids = realloc(t->ids, cap * sizeof *ids);
        if (!ids) return CORE_NOMEM;
        t->ids = ids;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return CORE_OK;
}

void eng_tokens_free(eng_tokens *t)
{
    if (!t) return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

// ---- tokenize: special-token partition ----

/* A piece of the input: raw text [off, off+len) or a special token (id >= 0). */
typedef struct frag {
    size_t off, len;
    int32_t id;
} frag;

/* llama.cpp's tokenizer_st_partition: for each special token, longest first, split every raw
 * fragment at each of its occurrences (leftmost first). Without parse_special only
 * user-defined tokens are matched. Returns the fragment count in *out (one of a, b). */
static size_t partition(const eng_vocab *v, const char *text, size_t len, bool parse_special,
                        frag *a, frag *b, frag **out)
{
    size_t n = 1;
    a[0] = (frag){0, len, -1};
    for (int64_t s = 0; s < v->n_specials; s++) {
        int32_t id = v->specials[s];
        int attr = v->attr[id];
        if (!parse_special && attr != ENG_TOK_USER_DEFINED) continue;
        const char *t = eng_vocab_tok(v, id);
        size_t tl = v->len[id];
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            frag fr = a[i];
            if (fr.id >= 0 || fr.len < tl) {
                b[m++] = fr;
                continue;
            }
            size_t pos = fr.off, end = fr.off + fr.len;
            while (end - pos >= tl) {
                const char *hit = memmem(text + pos, end - pos, t, tl);
                if (!hit) break;
                size_t at = (size_t)(hit - text);
                if (at > pos) b[m++] = (frag){pos, at - pos, -1};
                b[m++] = (frag){at, tl, id};
                pos = at + tl;
            }
            if (pos < end) b[m++] = (frag){pos, end - pos, -1};
        }
        frag *tmp = a;
        a = b;
        b = tmp;
        n = m;
    }
    *out = a;
    return n;
}

/* SentencePiece text of one raw fragment: spaces escaped to U+2581, with a leading one when
 * asked. Returns the length written into buf (room for 3 * len + 3). */
static size_t spm_escape(const char *s, size_t len, bool prefix, char *buf)
{
    size_t o = 0;
    if (prefix) {
        memcpy(buf, "\xe2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(buf + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            buf[o++] = s[i];
        }
    }
    return o;
}

static int tokenize_frags(const eng_vocab *v, const char *text, const frag *fr, size_t n,
                          char *esc, eng_tokens *out, core_err *err)
{
    bool prev_special = true; /* SPM: prefix the first fragment and any after a special */
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (fr[i].id >= 0) {
            if (eng_tokens_push(out, fr[i].id)) {
                return core_err_set(err, CORE_NOMEM, "tokenize: out of memory");
            }
            prev_special = true;
            continue;
        }
        if (v->type == ENG_VOCAB_SPM) {
            size_t el = spm_escape(text + fr[i].off, fr[i].len,
                                   v->add_space_prefix && prev_special, esc);
            rc = eng_spm_tokenize(v, esc, el, out, err);
        } else {
            rc = eng_bpe_tokenize(v, text + fr[i].off, fr[i].len, out, err);
        }
        if (rc) return rc;
        prev_special = false;
    }
    return CORE_OK;
}

int eng_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_special,
                 bool parse_special, eng_tokens *out, core_err *err)
{
    if (!v || !out || (!text && len)) {
        return core_err_set(err, CORE_INVALID, "eng_tokenize: NULL argument");
    }
    if (len > ((size_t)1 << 30)) {
        return core_err_set(err, CORE_LIMIT, "tokenize: %zu bytes of text is too long", len);
    }
    size_t n0 = out->n;
    if (add_special && v->add_bos && eng_tokens_push(out, v->bos)) goto nomem;
    if (len > 0) {
        size_t cap = 2 * len + 2;
        frag *a = malloc(sizeof *a * cap), *b = malloc(sizeof *b * cap), *fr = NULL;
        char *esc = v->type == ENG_VOCAB_SPM ? malloc(3 * len + 3) : NULL;
        if (!a || !b || (v->type == ENG_VOCAB_SPM && !esc)) {
            free(a);
            free(b);
            free(esc);
            goto nomem;
        }
        size_t n = partition(v, text, len, parse_special, a, b, &fr);
        int rc = tokenize_frags(v, text, fr, n, esc, out, err);
        free(a);
        free(b);
        free(esc);
        if (rc) {
            out->n = n0;
            return rc;
        }
    }
    if (add_special && v->add_eos && eng_tokens_push(out, v->eos)) goto nomem;
    return CORE_OK;
nomem:
    out->n = n0;
    return core_err_set(err, CORE_NOMEM, "tokenize: out of memory");
}
