/* test_mkmodel.c — eng_mkmodel: the synthetic models it writes have the standard keys and
 * tensor shapes, every weight type quantizes to values with the intended spread, the
 * built-in vocabulary is a consistent byte-level BPE, and bad parameters are refused with a
 * message that says which. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "test.h"

static char g_tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", g_tmpdir, name);
    return p;
}

static uint32_t get_u32(const gguf_file *f, const char *key)
{
    uint32_t v = 0;
    core_err e;
    if (gguf_get_u32(f, key, &v, &e)) printf("  %s\n", e.msg);
    return v;
}

static gguf_file *make_and_open(const eng_mkmodel_params *p, const char *name)
{
    core_err e;
    int rc = eng_mkmodel(tmp_path(name), p, &e);
    CHECK_MSG(rc == CORE_OK, "%s", e.msg);
    if (rc) return NULL;
    gguf_file *f = NULL;
    rc = gguf_open(&f, tmp_path(name), &e);
    CHECK_MSG(rc == CORE_OK, "%s", e.msg);
    return f;
}

static void check_shape(const gguf_file *f, const char *name, int type, int64_t ne0, int64_t ne1)
{
    const gguf_tensor *t = gguf_tensor_find(f, name);
    CHECK_MSG(t != NULL, "tensor %s missing", name);
    if (!t) return;
    CHECK_MSG(t->type == type, "%s: type %d, want %d", name, t->type, type);
    CHECK_MSG(t->ne[0] == ne0 && t->ne[1] == ne1, "%s: shape %lld x %lld, want %lld x %lld", name,
              (long long)t->ne[0], (long long)t->ne[1], (long long)ne0, (long long)ne1);
    bool matrix = strstr(name, ".weight") != NULL && strstr(name, "norm") == NULL;
    CHECK_EQ_INT(t->n_dims, matrix ? 2 : 1);
}

TEST(mkmodel_default_has_standard_keys_and_shapes)
{
    eng_mkmodel_params p;
    eng_mkmodel_params_default(&p);
    gguf_file *f = make_and_open(&p, "default.gguf");
    if (!f) return;
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s, NULL) == 0 && gguf_str_eq(s, "llama"));
    CHECK(gguf_get_str(f, "general.name", &s, NULL) == 0 && s.len > 0);
    CHECK_EQ_INT(get_u32(f, "general.file_type"), 7);
    CHECK_EQ_INT(get_u32(f, "llama.context_length"), 2048);
    CHECK_EQ_INT(get_u32(f, "llama.embedding_length"), 256);
    CHECK_EQ_INT(get_u32(f, "llama.block_count"), 2);
    CHECK_EQ_INT(get_u32(f, "llama.feed_forward_length"), 768);
    CHECK_EQ_INT(get_u32(f, "llama.attention.head_count"), 4);
    CHECK_EQ_INT(get_u32(f, "llama.attention.head_count_kv"), 2);
    CHECK_EQ_INT(get_u32(f, "llama.rope.dimension_count"), 64);
    double d;
    CHECK(gguf_get_float(f, "llama.attention.layer_norm_rms_epsilon", &d, NULL) == 0 &&
          fabs(d - 1e-5) < 1e-9);
    CHECK(gguf_get_float(f, "llama.rope.freq_base", &d, NULL) == 0 && d == 10000.0);
    const gguf_array *toks;
    CHECK(gguf_get_array(f, "tokenizer.ggml.tokens", &toks, NULL) == 0);
    int64_t n_vocab = (int64_t)toks->n;
    CHECK_EQ_INT(gguf_tensor_count(f), 2 + 2 * 9);
    check_shape(f, "token_embd.weight", CORE_TYPE_Q8_0, 256, n_vocab);
    check_shape(f, "output_norm.weight", CORE_TYPE_F32, 256, 1);
    CHECK(gguf_tensor_find(f, "output.weight") == NULL);
    for (int l = 0; l < 2; l++) {
        char n[64];
#define SHAPE(suffix, ty, a, b)                                                                    \
    snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                                                 \
    check_shape(f, n, ty, a, b)
        SHAPE("attn_norm.weight", CORE_TYPE_F32, 256, 1);
        SHAPE("attn_q.weight", CORE_TYPE_Q8_0, 256, 256);
        SHAPE("attn_k.weight", CORE_TYPE_Q8_0, 256, 128);
        SHAPE("attn_v.weight", CORE_TYPE_Q8_0, 256, 128);
        SHAPE("attn_output.weight", CORE_TYPE_Q8_0, 256, 256);
        SHAPE("ffn_norm.weight", CORE_TYPE_F32, 256, 1);
        SHAPE("ffn_gate.weight", CORE_TYPE_Q8_0, 256, 768);
        SHAPE("ffn_up.weight", CORE_TYPE_Q8_0, 256, 768);
        SHAPE("ffn_down.weight", CORE_TYPE_Q8_0, 768, 256);
#undef SHAPE
    }
    gguf_close(f);
}

TEST(mkmodel_builtin_vocab_is_consistent_bpe)
{
    eng_mkmodel_params p;
    eng_mkmodel_params_default(&p);
    p.n_layer = 1;
    gguf_file *f = make_and_open(&p, "vocab.gguf");
    if (!f) return;
    gguf_str s;
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &s, NULL) == 0 && gguf_str_eq(s, "gpt2"));
    CHECK(gguf_get_str(f, "tokenizer.ggml.pre", &s, NULL) == 0 && gguf_str_eq(s, "default"));
    CHECK(gguf_get_str(f, "tokenizer.chat_template", &s, NULL) == 0 && s.len > 50 &&
          memmem(s.ptr, s.len, "<|im_start|>assistant", 21) != NULL);
    bool b = true;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b, NULL) == 0 && !b);
    const gguf_array *toks, *types, *merges;
    CHECK(gguf_get_array(f, "tokenizer.ggml.tokens", &toks, NULL) == 0);
    CHECK(gguf_get_array(f, "tokenizer.ggml.token_type", &types, NULL) == 0);
    CHECK(gguf_get_array(f, "tokenizer.ggml.merges", &merges, NULL) == 0);
    if (!toks || !types || !merges) goto out;
    CHECK_EQ_INT(types->n, toks->n);
    CHECK(merges->n >= 200 && merges->n <= 600);
    CHECK_EQ_INT(toks->n, 256 + merges->n + 3);
    /* GPT-2 order: "!" first, "Ġ" (the space byte, U+0120) at 220. */
    CHECK(gguf_str_eq(toks->strs[0], "!"));
    CHECK(gguf_str_eq(toks->strs[220], "\xC4\xA0"));
    CHECK(gguf_str_eq(merges->strs[0], "\xC4\xA0 t"));
    uint32_t bos = get_u32(f, "tokenizer.ggml.bos_token_id");
    uint32_t eos = get_u32(f, "tokenizer.ggml.eos_token_id");
    CHECK(bos == eos && bos < toks->n && gguf_str_eq(toks->strs[bos], "<|endoftext|>"));
    CHECK(gguf_str_eq(toks->strs[toks->n - 1], "<|im_end|>"));
    CHECK(gguf_str_eq(toks->strs[toks->n - 2], "<|im_start|>"));
    for (uint64_t i = 0; i < toks->n; i++) {
        CHECK_EQ_INT(gguf_array_int(types, i), i + 3 >= toks->n ? 3 : 1);
    }
    /* Every merge joins two tokens into a token. */
    int bad = 0;
    for (uint64_t m = 0; m < merges->n; m++) {
        const char *r = merges->strs[m].ptr;
        size_t len = merges->strs[m].len;
        const char *sp = memchr(r, ' ', len);
        if (!sp) {
            bad++;
            continue;
        }
        size_t la = (size_t)(sp - r), lb = len - la - 1;
        bool fa = false, fb = false, fab = false;
        for (uint64_t i = 0; i < toks->n; i++) {
            gguf_str t = toks->strs[i];
            fa |= t.len == la && memcmp(t.ptr, r, la) == 0;
            fb |= t.len == lb && memcmp(t.ptr, sp + 1, lb) == 0;
            fab |= t.len == la + lb && memcmp(t.ptr, r, la) == 0 &&
                   memcmp(t.ptr + la, sp + 1, lb) == 0;
        }
        bad += !(fa && fb && fab);
    }
    CHECK_EQ_INT(bad, 0);
out:
    gguf_close(f);
}

/* Dequantized weights of every type have the intended spread: std 1/sqrt(fan_in). */
TEST(mkmodel_writes_every_type)
{
    static const struct {
        int type;
        uint32_t ftype;
    } types[] = {
        {CORE_TYPE_F32, 0},   {CORE_TYPE_F16, 1},   {CORE_TYPE_BF16, 32}, {CORE_TYPE_Q8_0, 7},
        {CORE_TYPE_Q4_0, 2},  {CORE_TYPE_Q4_1, 3},  {CORE_TYPE_Q5_0, 8},  {CORE_TYPE_Q5_1, 9},
        {CORE_TYPE_Q4_K, 14}, {CORE_TYPE_Q5_K, 16}, {CORE_TYPE_Q6_K, 18},
    };
    float *row = malloc(512 * sizeof *row);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const kern_traits *kt = kern_traits_get(types[k].type);
        if (!kt || !kt->from_float) {
            CHECK_MSG(0, "type %d has no quantizer", types[k].type);
            continue;
        }
        eng_mkmodel_params p;
        eng_mkmodel_params_default(&p);
        p.n_layer = 1;
        p.n_ff = 512;
        p.type = types[k].type;
        char name[32];
        snprintf(name, sizeof name, "type%d.gguf", types[k].type);
        gguf_file *f = make_and_open(&p, name);
        if (!f) continue;
        CHECK_EQ_INT(get_u32(f, "general.file_type"), types[k].ftype);
        const gguf_tensor *t = gguf_tensor_find(f, "blk.0.ffn_down.weight");
        CHECK(t && t->type == types[k].type && t->ne[0] == 512 && t->ne[1] == 256);
        if (t) {
            size_t row_bytes;
            core_type_row_size(t->type, t->ne[0], &row_bytes);
            double sum = 0, sum2 = 0;
            for (int r = 0; r < 8; r++) {
                kt->to_float((const char *)t->data + (size_t)r * row_bytes, row, 512);
                for (int i = 0; i < 512; i++) {
                    sum += row[i];
                    sum2 += (double)row[i] * row[i];
                }
            }
            double mean = sum / 4096, sd = sqrt(sum2 / 4096 - mean * mean);
            double want = 1.0 / sqrt(512.0);
            CHECK_MSG(fabs(mean) < 0.01 && sd > want * 0.85 && sd < want * 1.15,
                      "type %s: mean %g sd %g want %g", kt->name, mean, sd, want);
        }
        const gguf_tensor *n = gguf_tensor_find(f, "blk.0.attn_norm.weight");
        CHECK(n && n->type == CORE_TYPE_F32);
        if (n) {
            const float *w = n->data;
            for (int i = 0; i < 256; i++)
                CHECK(w[i] > 0.85f && w[i] < 1.15f);
        }
        gguf_close(f);
        unlink(tmp_path(name));
    }
    free(row);
}

TEST(mkmodel_qwen2_untied_has_biases_and_output)
{
    eng_mkmodel_params p;
    eng_mkmodel_params_default(&p);
    p.arch = "qwen2";
    p.tied = false;
    p.n_layer = 3;
    p.n_head = 8;
    p.n_head_kv = 2;
    p.n_ff = 256;
    p.type = CORE_TYPE_Q4_K;
    p.embd_type = CORE_TYPE_Q6_K;
    p.n_embd = 256;
    p.name = "tiny qwen";
    gguf_file *f = make_and_open(&p, "qwen2.gguf");
    if (!f) return;
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s, NULL) == 0 && gguf_str_eq(s, "qwen2"));
    CHECK(gguf_get_str(f, "general.name", &s, NULL) == 0 && gguf_str_eq(s, "tiny qwen"));
    CHECK_EQ_INT(get_u32(f, "general.file_type"), 15);
    CHECK_EQ_INT(get_u32(f, "qwen2.block_count"), 3);
    CHECK_EQ_INT(get_u32(f, "qwen2.attention.head_count_kv"), 2);
    double d;
    CHECK(gguf_get_float(f, "qwen2.rope.freq_base", &d, NULL) == 0 && d == 1e6);
    CHECK(gguf_kv_find(f, "llama.block_count") < 0);
    CHECK_EQ_INT(gguf_tensor_count(f), 3 + 3 * 12);
    const gguf_array *toks;
    CHECK(gguf_get_array(f, "tokenizer.ggml.tokens", &toks, NULL) == 0);
    int64_t n_vocab = toks ? (int64_t)toks->n : 0;
    check_shape(f, "token_embd.weight", CORE_TYPE_Q6_K, 256, n_vocab);
    check_shape(f, "output.weight", CORE_TYPE_Q4_K, 256, n_vocab);
    check_shape(f, "blk.2.attn_q.bias", CORE_TYPE_F32, 256, 1);
    check_shape(f, "blk.2.attn_k.bias", CORE_TYPE_F32, 64, 1);
    check_shape(f, "blk.2.attn_v.bias", CORE_TYPE_F32, 64, 1);
    check_shape(f, "blk.2.attn_k.weight", CORE_TYPE_Q4_K, 256, 64);
    gguf_close(f);
}

TEST(mkmodel_is_deterministic_in_the_seed)
{
    eng_mkmodel_params p;
    eng_mkmodel_params_default(&p);
    p.n_layer = 1;
    core_err e;
    CHECK(eng_mkmodel(tmp_path("s1a.gguf"), &p, &e) == CORE_OK);
    CHECK(eng_mkmodel(tmp_path("s1b.gguf"), &p, &e) == CORE_OK);
    p.seed = 2;
    CHECK(eng_mkmodel(tmp_path("s2.gguf"), &p, &e) == CORE_OK);
    char *a = NULL, *b = NULL, *c = NULL;
    size_t la = 0, lb = 0, lc = 0;
    core_file_read(tmp_path("s1a.gguf"), SIZE_MAX, &a, &la, NULL);
    core_file_read(tmp_path("s1b.gguf"), SIZE_MAX, &b, &lb, NULL);
    core_file_read(tmp_path("s2.gguf"), SIZE_MAX, &c, &lc, NULL);
    CHECK(a && b && c && la > 100000);
    CHECK(la == lb && a && b && memcmp(a, b, la) == 0);
    CHECK(la == lc && a && c && memcmp(a, c, la) != 0);
    free(a);
    free(b);
    free(c);
    unlink(tmp_path("s1a.gguf"));
    unlink(tmp_path("s1b.gguf"));
    unlink(tmp_path("s2.gguf"));
}

TEST(mkmodel_copies_vocab_from_another_model)
{
    const char *src = test_shared_path("models/tiny-llama3-q8_0.gguf");
    char srcpath[4096];
    snprintf(srcpath, sizeof srcpath, "%s", src);
    eng_mkmodel_params p;
    eng_mkmodel_params_default(&p);
    p.n_layer = 1;
    p.n_embd = 64;
    p.n_head = 2;
    p.n_head_kv = 1;
    p.n_ff = 128;
    p.vocab_from = srcpath;
    gguf_file *f = make_and_open(&p, "llama3vocab.gguf");
    gguf_file *g = NULL;
    CHECK(gguf_open(&g, srcpath, NULL) == CORE_OK);
    if (!f || !g) goto out;
    const gguf_array *ta, *tb, *ma, *mb;
    CHECK(gguf_get_array(f, "tokenizer.ggml.tokens", &ta, NULL) == 0);
    CHECK(gguf_get_array(g, "tokenizer.ggml.tokens", &tb, NULL) == 0);
    CHECK(gguf_get_array(f, "tokenizer.ggml.merges", &ma, NULL) == 0);
    CHECK(gguf_get_array(g, "tokenizer.ggml.merges", &mb, NULL) == 0);
    CHECK(ta->n == tb->n && ta->n > 100000);
    CHECK(ma->n == mb->n && ma->n > 100000);
    CHECK(ta->strs[ta->n - 1].len == tb->strs[tb->n - 1].len &&
          memcmp(ta->strs[ta->n - 1].ptr, tb->strs[tb->n - 1].ptr, ta->strs[ta->n - 1].len) == 0);
    int copied = 0;
    for (int64_t i = 0; i < gguf_kv_count(g); i++) {
        if (strncmp(gguf_kv_key(g, i), "tokenizer.", 10) != 0) continue;
        copied++;
        CHECK_MSG(gguf_kv_find(f, gguf_kv_key(g, i)) >= 0, "%s not copied", gguf_kv_key(g, i));
    }
    CHECK(copied >= 5);
    check_shape(f, "token_embd.weight", CORE_TYPE_Q8_0, 64, (int64_t)tb->n);
out:
    gguf_close(f);
    gguf_close(g);
    unlink(tmp_path("llama3vocab.gguf"));
}

TEST(mkmodel_rejects_bad_parameters)
{
    struct {
        const char *arch;
        int64_t dim, heads, kv, ffn;
        int type;
        const char *want;
    } cases[] = {
        {"gpt9", 256, 4, 2, 768, CORE_TYPE_Q8_0, "unknown architecture \"gpt9\""},
        {"llama", 250, 4, 2, 768, CORE_TYPE_F32,
         "embedding length 250 is not divisible by the head count 4"},
        {"llama", 256, 4, 3, 768, CORE_TYPE_Q8_0,
         "head count 4 is not divisible by the KV head count 3"},
        {"llama", 96, 32, 32, 96, CORE_TYPE_F32, "head dimension 3 must be even"},
        {"llama", 128, 4, 2, 768, CORE_TYPE_Q4_K, "multiples of 256: embedding length 128"},
        {"llama", 256, 4, 2, 100, CORE_TYPE_Q8_0, "multiples of 32: feed-forward length 100"},
        {"llama", 0, 4, 2, 768, CORE_TYPE_Q8_0, "embedding length 0 is out of range"},
        {"llama", 256, 4, 2, 768, CORE_TYPE_Q8_1, "Q8_1 cannot be written"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eng_mkmodel_params p;
        eng_mkmodel_params_default(&p);
        p.arch = cases[i].arch;
        p.n_embd = cases[i].dim;
        p.n_head = cases[i].heads;
        p.n_head_kv = cases[i].kv;
        p.n_ff = cases[i].ffn;
        p.type = cases[i].type;
        core_err e;
        CHECK_EQ_INT(eng_mkmodel(tmp_path("bad.gguf"), &p, &e), CORE_INVALID);
        CHECK_CONTAINS(e.msg, cases[i].want);
    }
    eng_mkmodel_params p;
    eng_mkmodel_params_default(&p);
    char missing[128];
    snprintf(missing, sizeof missing, "%s", tmp_path("missing.gguf"));
    p.vocab_from = missing;
    core_err e;
    CHECK_EQ_INT(eng_mkmodel(tmp_path("bad.gguf"), &p, &e), CORE_NOTFOUND);
    CHECK_CONTAINS(e.msg, "missing.gguf");
    CHECK(access(tmp_path("bad.gguf"), F_OK) != 0);
}

int main(void)
{
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/dwell-test-mkmodel-XXXXXX");
    if (!mkdtemp(g_tmpdir)) return 1;
    RUN(mkmodel_default_has_standard_keys_and_shapes);
    RUN(mkmodel_builtin_vocab_is_consistent_bpe);
    RUN(mkmodel_writes_every_type);
    RUN(mkmodel_qwen2_untied_has_biases_and_output);
    RUN(mkmodel_is_deterministic_in_the_seed);
    RUN(mkmodel_copies_vocab_from_another_model);
    RUN(mkmodel_rejects_bad_parameters);
    const char *names[] = {"default.gguf", "vocab.gguf", "qwen2.gguf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp_path(names[i]));
    rmdir(g_tmpdir);
    return test_summary();
}
