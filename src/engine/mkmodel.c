/* mkmodel.c — synthetic models: a llama- or qwen2-shaped GGUF with random weights, for tests,
 * demos and memory measurements (`dwell debug mkmodel`).
 *
 * Weights are uniform random with standard deviation 1/sqrt(fan_in) (norm weights near 1,
 * biases small), drawn from a xoshiro256** generator seeded from (seed, tensor name), so a
 * tensor's values depend only on the seed and its name. Each tensor is generated row by row
 * and quantized with the kernels' from_float when the writer reaches it, so the memory used
 * is one tensor's bytes whatever the model size.
 *
 * Without --vocab-from the model gets a built-in byte-level BPE vocabulary ("gpt2" model):
 * the 256 byte symbols in GPT-2's bytes_to_unicode order, merges learned deterministically
 * from a built-in English text (standard BPE training: most frequent pair first, ties to the
 * lowest ids), and the special tokens <|endoftext|> (bos and eos), <|im_start|>, <|im_end|>,
 * with a ChatML chat template.
 *
 * Threads: runs on the caller's thread; no shared state. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"

#define MK_MAX_MERGES 600
#define MK_MAX_DIM (1 << 20)
#define MK_MAX_LAYERS 1024

static const char g_chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

/* The text the built-in merges are learned from: plain English, no apostrophes (GPT-2's
 * pre-tokenizer splits contractions apart, so merges across them would never apply). */
static const char g_train_text[] =
    "Once upon a time there was a little girl who lived in a small house near the forest. "
    "Every morning she would walk to the river with her mother and her brother to get water. "
    "The sun was shining and the birds were singing in the trees. One day the girl saw a "
    "big dog that was sitting under a tree. The dog looked sad, so she went to the dog and "
    "asked what was wrong. The dog said that he had lost his ball in the water and could "
    "not find it. The girl wanted to help him, so she looked for the ball all day long. "
    "When the sun went down she found the ball behind a large stone, and the dog was very "
    "happy. They played together until it was time to go home, and they were friends from "
    "that day on. The next morning the girl and the dog went back to the river to play "
    "again. Her mother said that she could keep the dog if she took care of him. "
    "This is a story about the people and the places of the world. In the beginning there "
    "were many questions, and the answers that people found were written in books. Each "
    "book was read by the students in the school, and the teacher would ask them what "
    "they had learned. The students said that the most important thing is to be kind to "
    "other people, to work hard, and to think about the things that matter. The user asks "
    "the assistant a question, and the assistant gives an answer that is helpful, honest "
    "and clear. The system message tells the assistant how to behave. There are 365 days "
    "in a year, 24 hours in a day and 60 minutes in an hour. The number of the house was "
    "42, and the year was 1999. Would you like to know more about this? Yes, please tell "
    "me more about the history of the city, the language of the people and the weather "
    "in the summer and the winter. The quick brown fox jumps over the lazy dog. What is "
    "the capital of France? The capital of France is Paris. How are you today? I am fine, "
    "thank you for asking. Hello, world! This is a test of the tokenizer and the model. "
    "The children were playing in the garden while their father was cooking dinner in the "
    "kitchen. After dinner they went outside to look at the stars, which were bright and "
    "beautiful in the dark night sky. Their father told them stories about the moon and the "
    "planets, and about the people who had traveled there. The children listened carefully "
    "and asked many questions, because they wanted to learn everything about the universe. "
    "Later that evening, when everyone was tired, they went inside and fell asleep quickly. "
    "In the morning, the weather was warm and the children decided to visit their friends "
    "who lived on the other side of the village. They walked along the road, talking and "
    "laughing, and stopped to watch the animals in the fields: horses, cows, sheep and a few "
    "little chickens. When they arrived, their friends were waiting for them with bread, "
    "fruit and fresh water. Everyone was happy to see each other again, and they played "
    "games until the evening. Programming a computer means writing instructions that the "
    "machine can follow. A function takes some input, performs a computation, and returns "
    "a result. The first program that many people write prints the words hello world. ";

// ---- random numbers ----

typedef struct mk_rng {
    uint64_t s[4];
} mk_rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(mk_rng *r, uint64_t seed, const char *name)
{
    uint64_t x = seed;
    for (const char *p = name; *p; p++)
        x = (x ^ (uint8_t)*p) * 0x100000001b3ull;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (ref: Blackman and Vigna, "Scrambled linear pseudorandom number
 * generators"). */
static uint64_t rng_next(mk_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [-1, 1). */
static float rng_unit(mk_rng *r)
{
    return (float)((double)(rng_next(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

// ---- built-in vocabulary: byte-level BPE ----

typedef struct mk_vocab {
    char **tokens;
    size_t n_tokens, cap_tokens;
    char **merges;
    size_t n_merges;
} mk_vocab;

/* One pre-tokenized word of the training text, as token ids, with its count. */
typedef struct mk_word {
    int32_t *ids;
    size_t n;
    int count;
    char text[48];
} mk_word;

typedef struct mk_pair {
    int32_t a, b;
    int count;
} mk_pair;

static void vocab_free(mk_vocab *v)
{
    for (size_t i = 0; i < v->n_tokens; i++)
        free(v->tokens[i]);
    for (size_t i = 0; i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

static int vocab_add(mk_vocab *v, char *tok)
{
    if (!tok) return CORE_NOMEM;
    if (v->n_tokens == v->cap_tokens) {
        size_t cap = v->cap_tokens ? v->cap_tokens * 2 : 512;
        char **t = realloc(v->tokens, cap * sizeof *t);
        if (!t) {
            free(tok);
            return CORE_NOMEM;
        }
        v->tokens = t;
        v->cap_tokens = cap;
    }
    v->tokens[v->n_tokens++] = tok;
    return CORE_OK;
}

static int32_t vocab_find(const mk_vocab *v, const char *s)
{
    for (size_t i = 0; i < v->n_tokens; i++) {
        if (strcmp(v->tokens[i], s) == 0) return (int32_t)i;
    }
    return -1;
}

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100 + k in
 * byte order. Fills byte -> code point and the order in which GPT-2's vocabulary lists
 * them. ref: openai/gpt-2 encoder.py. */
static void bytes_to_unicode(uint32_t cp[256], int order[256])
{
    int n = 0, extra = 0;
    bool printable[256] = {false};
    for (int b = 0; b < 256; b++) {
        printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (printable[b]) {
            cp[b] = (uint32_t)b;
            order[n++] = b;
        }
    }
    for (int b = 0; b < 256; b++) {
        if (printable[b]) continue;
        cp[b] = 256u + (uint32_t)extra++;
        order[n++] = b;
    }
}

static char *utf8_of(uint32_t cp)
{
    char *s = malloc(4);
    if (!s) return NULL;
    if (cp < 0x80) {
        s[0] = (char)cp;
        s[1] = 0;
    } else {
        s[0] = (char)(0xC0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3F));
        s[2] = 0;
    }
    return s;
}

static int char_class(int c)
{
    if (isalpha(c)) return 1;
    if (isdigit(c)) return 2;
    if (c == ' ' || c == '\n') return 0;
    return 3;
}

/* Splits the training text as GPT-2's pattern would for plain ASCII: " ?letters",
 * " ?digits", " ?punctuation"; counts each distinct word. */
static int train_words(const int32_t byte_id[256], mk_word **out, size_t *n_out)
{
    mk_word *w = calloc(sizeof g_train_text, sizeof *w);
    *out = w;
    *n_out = 0;
    if (!w) return CORE_NOMEM;
    size_t n = 0;
    const char *p = g_train_text;
    while (*p) {
        const char *start = p;
        if (*p == ' ' && p[1] && char_class((uint8_t)p[1]) != 0) p++;
        int cls = char_class((uint8_t)*p);
        if (cls == 0) {
            p++;
            continue;
        }
        while (*p && char_class((uint8_t)*p) == cls)
            p++;
        size_t len = (size_t)(p - start);
        if (len >= sizeof w[0].text) continue;
        size_t i;
        for (i = 0; i < n; i++) {
            if (strlen(w[i].text) == len && memcmp(w[i].text, start, len) == 0) break;
        }
        if (i < n) {
            w[i].count++;
            continue;
        }
        memcpy(w[n].text, start, len);
        w[n].ids = malloc(len * sizeof *w[n].ids);
        if (!w[n].ids) return CORE_NOMEM; /* the caller frees *out */
        for (size_t k = 0; k < len; k++)
            w[n].ids[k] = byte_id[(uint8_t)start[k]];
        w[n].n = len;
        w[n].count = 1;
        *n_out = ++n;
    }
    return CORE_OK;
}

static int cmp_pair(const void *x, const void *y)
{
    const mk_pair *a = x, *b = y;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    return (a->b > b->b) - (a->b < b->b);
}

/* The most frequent adjacent pair over all words (ties: lowest ids); count 0 if none. */
static mk_pair best_pair(const mk_word *w, size_t n_words, mk_pair *scratch)
{
    size_t n = 0;
    for (size_t i = 0; i < n_words; i++) {
        for (size_t k = 0; k + 1 < w[i].n; k++) {
            scratch[n++] = (mk_pair){w[i].ids[k], w[i].ids[k + 1], w[i].count};
        }
    }
    qsort(scratch, n, sizeof *scratch, cmp_pair);
    mk_pair best = {0, 0, 0};
    for (size_t i = 0; i < n;) {
        mk_pair p = scratch[i];
        size_t j = i + 1;
        for (; j < n && scratch[j].a == p.a && scratch[j].b == p.b; j++)
            p.count += scratch[j].count;
        if (p.count > best.count) best = p;
        i = j;
    }
    return best;
}

static void apply_merge(mk_word *w, size_t n_words, mk_pair p, int32_t id)
{
    for (size_t i = 0; i < n_words; i++) {
        size_t o = 0;
        for (size_t k = 0; k < w[i].n; k++) {
            if (k + 1 < w[i].n && w[i].ids[k] == p.a && w[i].ids[k + 1] == p.b) {
                w[i].ids[o++] = id;
                k++;
            } else {
                w[i].ids[o++] = w[i].ids[k];
            }
        }
        w[i].n = o;
    }
}

static int learn_merges(mk_vocab *v, mk_word *w, size_t n_words)
{
    size_t n_sym = 0;
    for (size_t i = 0; i < n_words; i++)
        n_sym += w[i].n;
    mk_pair *scratch = malloc((n_sym ? n_sym : 1) * sizeof *scratch);
    v->merges = calloc(MK_MAX_MERGES, sizeof *v->merges);
    if (!scratch || !v->merges) {
        free(scratch);
        return CORE_NOMEM;
    }
    int rc = CORE_OK;
    while (v->n_merges < MK_MAX_MERGES) {
        mk_pair p = best_pair(w, n_words, scratch);
        if (p.count < 2) break;
        const char *a = v->tokens[p.a], *b = v->tokens[p.b];
        size_t la = strlen(a), lb = strlen(b);
        char *merged = malloc(la + lb + 1), *rule = malloc(la + lb + 2);
        if (!merged || !rule) {
            free(merged);
            free(rule);
            rc = CORE_NOMEM;
            break;
        }
        snprintf(merged, la + lb + 1, "%s%s", a, b);
        snprintf(rule, la + lb + 2, "%s %s", a, b);
        v->merges[v->n_merges++] = rule;
        int32_t id = vocab_find(v, merged);
        if (id >= 0) {
            free(merged);
        } else {
            id = (int32_t)v->n_tokens;
            if ((rc = vocab_add(v, merged))) break;
        }
        apply_merge(w, n_words, p, id);
    }
    free(scratch);
    return rc;
}

static int vocab_build(mk_vocab *v)
{
    uint32_t cp[256];
    int order[256];
    int32_t byte_id[256];
    bytes_to_unicode(cp, order);
    for (int i = 0; i < 256; i++) {
        int rc = vocab_add(v, utf8_of(cp[order[i]]));
        if (rc) return rc;
        byte_id[order[i]] = i;
    }
    mk_word *w = NULL;
    size_t n_words = 0;
    int rc = train_words(byte_id, &w, &n_words);
    if (!rc) rc = learn_merges(v, w, n_words);
    for (size_t i = 0; w && i < n_words; i++)
        free(w[i].ids);
    free(w);
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (size_t i = 0; !rc && i < 3; i++)
        rc = vocab_add(v, strdup(specials[i]));
    return rc;
}

/* Writes the tokenizer.* keys of the built-in vocabulary; *n_vocab gets its size. */
static int write_builtin_vocab(gguf_writer *w, int64_t *n_vocab, core_err *err)
{
    mk_vocab v = {0};
    int rc = vocab_build(&v);
    int32_t *types = rc ? NULL : malloc(v.n_tokens * sizeof *types);
    if (!types) {
        vocab_free(&v);
        return core_err_set(err, CORE_NOMEM, "out of memory building the vocabulary");
    }
    for (size_t i = 0; i < v.n_tokens; i++) {
        types[i] = i + 3 >= v.n_tokens ? ENG_TOK_CONTROL : ENG_TOK_NORMAL;
    }
    int32_t eot = (int32_t)v.n_tokens - 3;
    rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (!rc) rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    if (!rc)
        rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens,
                                     v.n_tokens);
    if (!rc)
        rc = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, v.n_tokens);
    if (!rc)
        rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges,
                                     v.n_merges);
    if (!rc) rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eot);
    if (!rc) rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eot);
    if (!rc) rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    if (!rc) rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (!rc) rc = gguf_writer_set_str(w, "tokenizer.chat_template", g_chatml_template);
    *n_vocab = (int64_t)v.n_tokens;
    free(types);
    vocab_free(&v);
    return rc ? core_err_set(err, rc, "out of memory writing the vocabulary") : CORE_OK;
}

static int copy_vocab(gguf_writer *w, const char *path, int64_t *n_vocab, core_err *err)
{
    gguf_file *f;
    int rc = gguf_open(&f, path, err);
    if (rc) return rc;
    const gguf_array *toks;
    rc = gguf_get_array(f, "tokenizer.ggml.tokens", &toks, err);
    if (!rc && (toks->type != GGUF_VT_STRING || toks->n == 0 || toks->n > INT32_MAX)) {
        rc = core_err_set(err, CORE_FORMAT,
                          "%s: tokenizer.ggml.tokens is not a non-empty "
                          "string array",
                          path);
    } else if (rc) {
        rc = core_err_set(err, rc, "%s has no tokenizer.ggml.tokens to copy", path);
    }
    if (!rc) {
        *n_vocab = (int64_t)toks->n;
        rc = gguf_writer_copy_kv(w, f, "tokenizer.", err);
    }
    gguf_close(f);
    return rc;
}

// ---- tensors ----

enum { MK_WEIGHT = 0, MK_NORM = 1, MK_BIAS = 2 };

typedef struct mk_tensor {
    char name[64];
    int type;
    int kind;
    int64_t ne0, ne1; /* row length, rows */
    uint64_t seed;
    float *row; /* scratch: ne0 floats, shared by all tensors (borrowed) */
} mk_tensor;

static int fill_tensor(void *ctx, void *dst, size_t size, core_err *err)
{
    const mk_tensor *t = ctx;
    const kern_traits *kt = kern_traits_get(t->type);
    size_t row_bytes;
    if (!kt || !kt->from_float || !core_type_row_size(t->type, t->ne0, &row_bytes) ||
        row_bytes * (size_t)t->ne1 != size) {
        return core_err_set(err, CORE_INTERNAL, "tensor %s: cannot quantize", t->name);
    }
    mk_rng r;
    rng_seed(&r, t->seed, t->name);
    /* Uniform on [-a, a] has standard deviation a/sqrt(3). */
    float a = t->kind == MK_WEIGHT ? sqrtf(3.0f / (float)t->ne0) : 0.1f;
    float base = t->kind == MK_NORM ? 1.0f : 0.0f;
    for (int64_t i = 0; i < t->ne1; i++) {
        for (int64_t k = 0; k < t->ne0; k++)
            t->row[k] = base + a * rng_unit(&r);
        kt->from_float(t->row, (char *)dst + (size_t)i * row_bytes, t->ne0);
    }
    return CORE_OK;
}

static int check_type(int type, const char *what, int64_t ne0, const char *dim_name, core_err *err)
{
    const core_type_info *ti = core_type_get(type);
    const kern_traits *kt = kern_traits_get(type);
    if (!ti || !kt || !kt->from_float) {
        return core_err_set(err, CORE_INVALID, "%s type %s cannot be written (no quantizer)", what,
                            ti ? ti->name : "unknown");
    }
    if (ne0 % ti->blck_size != 0) {
        return core_err_set(err, CORE_INVALID,
                            "%s type %s needs rows that are multiples of "
                            "%" PRId64 ": %s %" PRId64 " is not",
                            what, ti->name, ti->blck_size, dim_name, ne0);
    }
    return CORE_OK;
}

static int check_params(const eng_mkmodel_params *p, bool *qwen2, core_err *err)
{
    const char *arch = p->arch ? p->arch : "llama";
    *qwen2 = strcmp(arch, "qwen2") == 0;
    if (!*qwen2 && strcmp(arch, "llama") != 0) {
        return core_err_set(err, CORE_INVALID, "unknown architecture \"%s\" (llama or qwen2)",
                            arch);
    }
    const struct {
        const char *name;
        int64_t v, max;
    } dims[] = {
        {"embedding length", p->n_embd, MK_MAX_DIM},  {"layer count", p->n_layer, MK_MAX_LAYERS},
        {"head count", p->n_head, MK_MAX_DIM},        {"KV head count", p->n_head_kv, MK_MAX_DIM},
        {"feed-forward length", p->n_ff, MK_MAX_DIM}, {"context length", p->n_ctx, 1 << 24},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (dims[i].v < 1 || dims[i].v > dims[i].max) {
            return core_err_set(err, CORE_INVALID,
                                "%s %" PRId64 " is out of range (1 to %" PRId64 ")", dims[i].name,
                                dims[i].v, dims[i].max);
        }
    }
    if (p->n_embd % p->n_head != 0) {
        return core_err_set(err, CORE_INVALID,
                            "embedding length %" PRId64 " is not divisible "
                            "by the head count %" PRId64,
                            p->n_embd, p->n_head);
    }
    if (p->n_head % p->n_head_kv != 0) {
        return core_err_set(err, CORE_INVALID,
                            "head count %" PRId64 " is not divisible by "
                            "the KV head count %" PRId64,
                            p->n_head, p->n_head_kv);
    }
    if ((p->n_embd / p->n_head) % 2 != 0) {
        return core_err_set(err, CORE_INVALID,
                            "head dimension %" PRId64 " must be even "
                            "(RoPE rotates pairs)",
                            p->n_embd / p->n_head);
    }
    int rc = check_type(p->type, "weight", p->n_embd, "embedding length", err);
    if (!rc) rc = check_type(p->type, "weight", p->n_ff, "feed-forward length", err);
    int et = p->embd_type < 0 ? p->type : p->embd_type;
    if (!rc) rc = check_type(et, "embedding", p->n_embd, "embedding length", err);
    return rc;
}

/* llama_ftype of the model (ref: llama.h enum llama_ftype). */
static uint32_t file_type_of(int type, int embd_type)
{
    switch (type) {
    case CORE_TYPE_F32:
        return 0;
    case CORE_TYPE_F16:
        return 1;
    case CORE_TYPE_Q4_0:
        return 2;
    case CORE_TYPE_Q4_1:
        return 3;
    case CORE_TYPE_Q8_0:
        return 7;
    case CORE_TYPE_Q5_0:
        return 8;
    case CORE_TYPE_Q5_1:
        return 9;
    case CORE_TYPE_Q2_K:
        return 10;
    case CORE_TYPE_Q3_K:
        return 12;
    case CORE_TYPE_Q4_K:
        return embd_type == CORE_TYPE_Q6_K ? 15 : 14; /* Q4_K_M / Q4_K_S */
    case CORE_TYPE_Q5_K:
        return embd_type == CORE_TYPE_Q6_K ? 17 : 16; /* Q5_K_M / Q5_K_S */
    case CORE_TYPE_Q6_K:
        return 18;
    case CORE_TYPE_BF16:
        return 32;
    default:
        return 0;
    }
}

static int write_hparams(gguf_writer *w, const eng_mkmodel_params *p, bool qwen2)
{
    const char *arch = qwen2 ? "qwen2" : "llama";
    char key[96];
    int rc = gguf_writer_set_str(w, "general.architecture", arch);
    if (!rc) rc = gguf_writer_set_str(w, "general.name", p->name ? p->name : "dwell-mkmodel");
    int et = p->embd_type < 0 ? p->type : p->embd_type;
    if (!rc) rc = gguf_writer_set_u32(w, "general.file_type", file_type_of(p->type, et));
    if (!rc) rc = gguf_writer_set_u32(w, "general.quantization_version", 2);
    const struct {
        const char *k;
        int64_t v;
    } u[] = {
        {"context_length", p->n_ctx},
        {"embedding_length", p->n_embd},
        {"block_count", p->n_layer},
        {"feed_forward_length", p->n_ff},
        {"attention.head_count", p->n_head},
        {"attention.head_count_kv", p->n_head_kv},
        {"rope.dimension_count", p->n_embd / p->n_head},
    };
    for (size_t i = 0; !rc && i < sizeof u / sizeof u[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, u[i].k);
        rc = gguf_writer_set_u32(w, key, (uint32_t)u[i].v);
    }
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if (!rc) rc = gguf_writer_set_f32(w, key, qwen2 ? 1e-6f : 1e-5f);
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if (!rc) rc = gguf_writer_set_f32(w, key, qwen2 ? 1000000.0f : 10000.0f);
    return rc;
}

/* The tensor list in file order; returns the count (t may be NULL to count only). */
static size_t plan_tensors(mk_tensor *t, const eng_mkmodel_params *p, bool qwen2, int64_t n_vocab,
                           float *row)
{
    size_t n = 0;
    int64_t d = p->n_embd, kv = p->n_embd / p->n_head * p->n_head_kv;
    int et = p->embd_type < 0 ? p->type : p->embd_type;
#define MK_ADD(nm, ty, kd, a, b)                                                                   \
    do {                                                                                           \
        if (t) {                                                                                   \
            t[n] = (mk_tensor){                                                                    \
                .type = (ty), .kind = (kd), .ne0 = (a), .ne1 = (b), .seed = p->seed, .row = row};  \
            snprintf(t[n].name, sizeof t[n].name, "%s", nm);                                       \
        }                                                                                          \
        n++;                                                                                       \
    } while (0)
    MK_ADD("token_embd.weight", et, MK_WEIGHT, d, n_vocab);
    MK_ADD("output_norm.weight", CORE_TYPE_F32, MK_NORM, d, 1);
    if (!p->tied) MK_ADD("output.weight", p->type, MK_WEIGHT, d, n_vocab);
    for (int64_t l = 0; l < p->n_layer; l++) {
        char nm[64];
#define MK_LAYER(suffix, ty, kd, a, b)                                                             \
    do {                                                                                           \
        snprintf(nm, sizeof nm, "blk.%" PRId64 ".%s", l, suffix);                                  \
        MK_ADD(nm, ty, kd, a, b);                                                                  \
    } while (0)
        MK_LAYER("attn_norm.weight", CORE_TYPE_F32, MK_NORM, d, 1);
        MK_LAYER("attn_q.weight", p->type, MK_WEIGHT, d, d);
        MK_LAYER("attn_k.weight", p->type, MK_WEIGHT, d, kv);
        MK_LAYER("attn_v.weight", p->type, MK_WEIGHT, d, kv);
        if (qwen2) {
            MK_LAYER("attn_q.bias", CORE_TYPE_F32, MK_BIAS, d, 1);
            MK_LAYER("attn_k.bias", CORE_TYPE_F32, MK_BIAS, kv, 1);
            MK_LAYER("attn_v.bias", CORE_TYPE_F32, MK_BIAS, kv, 1);
        }
        MK_LAYER("attn_output.weight", p->type, MK_WEIGHT, d, d);
        MK_LAYER("ffn_norm.weight", CORE_TYPE_F32, MK_NORM, d, 1);
        MK_LAYER("ffn_gate.weight", p->type, MK_WEIGHT, d, p->n_ff);
        MK_LAYER("ffn_up.weight", p->type, MK_WEIGHT, d, p->n_ff);
        MK_LAYER("ffn_down.weight", p->type, MK_WEIGHT, p->n_ff, d);
#undef MK_LAYER
    }
#undef MK_ADD
    return n;
}

// ---- public ----

void eng_mkmodel_params_default(eng_mkmodel_params *p)
{
    *p = (eng_mkmodel_params){
        .arch = "llama",
        .n_embd = 256,
        .n_layer = 2,
        .n_head = 4,
        .n_head_kv = 2,
        .n_ff = 768,
        .n_ctx = 2048,
        .type = CORE_TYPE_Q8_0,
        .embd_type = -1,
        .tied = true,
        .vocab_from = NULL,
        .seed = 1,
        .name = NULL,
    };
}

int eng_mkmodel(const char *path, const eng_mkmodel_params *p, core_err *err)
{
    bool qwen2;
    int rc = check_params(p, &qwen2, err);
    if (rc) return rc;
    gguf_writer *w;
    if ((rc = gguf_writer_new(&w, err))) return rc;
    mk_tensor *ts = NULL;
    float *row = NULL;
    int64_t n_vocab = 0;
    if ((rc = write_hparams(w, p, qwen2))) {
        rc = core_err_set(err, rc, "out of memory writing metadata");
        goto out;
    }
    rc = p->vocab_from ? copy_vocab(w, p->vocab_from, &n_vocab, err)
                       : write_builtin_vocab(w, &n_vocab, err);
    if (rc) goto out;
    size_t n_t = plan_tensors(NULL, p, qwen2, n_vocab, NULL);
    int64_t max_row = p->n_embd > p->n_ff ? p->n_embd : p->n_ff;
    ts = calloc(n_t, sizeof *ts);
    row = malloc((size_t)max_row * sizeof *row);
    if (!ts || !row) {
        rc = core_err_set(err, CORE_NOMEM, "out of memory");
        goto out;
    }
    plan_tensors(ts, p, qwen2, n_vocab, row);
    for (size_t i = 0; i < n_t && !rc; i++) {
        int64_t ne[2] = {ts[i].ne0, ts[i].ne1};
        int n_dims = ts[i].kind == MK_WEIGHT ? 2 : 1;
        rc = gguf_writer_add_tensor_fn(w, ts[i].name, ts[i].type, n_dims, ne, fill_tensor, &ts[i],
                                       err);
    }
    if (!rc) rc = gguf_writer_write(w, path, err);
out:
    gguf_writer_free(w);
    free(ts);
    free(row);
    return rc;
}
