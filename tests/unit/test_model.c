/* test_model.c — the model API beyond the forward pass: hyper-parameters and their defaults,
 * metadata strings, Ollama's names for file types and parameter sizes, reference counting,
 * populate, the context size estimate, and RoPE scaling (linear factor and rope_freqs). */
#include <stdlib.h>
#include <unistd.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "test.h"

static eng_model *open_shared(const char *name, bool populate)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    eng_model_params p = {.populate = populate};
    eng_model *m = NULL;
    core_err err;
    if (eng_model_open(&m, test_shared_path(rel), &p, &err)) printf("  %s: %s\n", rel, err.msg);
    return m;
}

TEST(model_reads_llama_hparams_with_defaults)
{
    eng_model *m = open_shared("stories260K", false);
    CHECK(m);
    if (!m) return;
    const eng_hparams *h = eng_model_hparams(m);
    CHECK_EQ_INT(h->arch, ENG_ARCH_LLAMA);
    CHECK_EQ_STR(h->arch_name, "llama");
    CHECK_EQ_INT(h->n_vocab, 512);
    CHECK_EQ_INT(h->n_embd, 64);
    CHECK_EQ_INT(h->n_layer, 5);
    CHECK_EQ_INT(h->n_head, 8);
    CHECK_EQ_INT(h->n_head_kv, 4);
    CHECK_EQ_INT(h->n_embd_head, 8);
    CHECK_EQ_INT(h->n_ff, 172);
    CHECK_EQ_INT(h->n_rot, 8);
    CHECK_EQ_INT(h->n_ctx_train, 2048);
    CHECK(h->rope_freq_base == 10000.0f); /* no key in the file: llama.cpp's default */
    CHECK(h->rope_freq_scale == 1.0f);
    CHECK_EQ_INT(h->rope_style, ENG_ROPE_NORM);
    CHECK(fabsf(h->rms_eps - 1e-5f) < 1e-9f);
    CHECK(h->n_params > 200000 && h->n_params < 300000);
    CHECK(h->weight_bytes == (size_t)h->n_params * 4); /* all F32 */
    CHECK_EQ_INT(eng_vocab_n(eng_model_vocab(m)), 512);
    eng_model_release(m);
}

TEST(model_reads_qwen2_hparams)
{
    eng_model *m = open_shared("tiny-qwen2-q8_0", false);
    CHECK(m);
    if (!m) return;
    const eng_hparams *h = eng_model_hparams(m);
    CHECK_EQ_INT(h->arch, ENG_ARCH_QWEN2);
    CHECK_EQ_INT(h->rope_style, ENG_ROPE_NEOX);
    CHECK(h->rope_freq_base == 1e6f);
    CHECK_EQ_INT(h->n_head_kv, 2);
    CHECK_EQ_STR(eng_file_type_name(h->file_type), "Q8_0");
    eng_model_release(m);
}

TEST(model_meta_strings)
{
    eng_model *m = open_shared("tiny-llama3-q8_0", false);
    CHECK(m);
    if (!m) return;
    char buf[64];
    CHECK(eng_model_meta_str(m, "general.architecture", buf, sizeof buf));
    CHECK_EQ_STR(buf, "llama");
    CHECK(eng_model_meta_str(m, "tokenizer.ggml.model", buf, sizeof buf));
    CHECK_EQ_STR(buf, "gpt2");
    char small[4];
    CHECK(eng_model_meta_str(m, "tokenizer.ggml.model", small, sizeof small));
    CHECK_EQ_STR(small, "gpt"); /* truncated, still terminated */
    CHECK(!eng_model_meta_str(m, "no.such.key", buf, sizeof buf));
    CHECK(!eng_model_meta_str(m, "llama.block_count", buf, sizeof buf)); /* not a string */
    char *tmpl = eng_model_meta_str_dup(m, "tokenizer.chat_template");
    CHECK(tmpl && strstr(tmpl, "start_header_id"));
    free(tmpl);
    CHECK(eng_model_meta_str_dup(m, "no.such.key") == NULL);
    eng_model_release(m);
}

TEST(model_file_type_names_are_ollamas)
{
    CHECK_EQ_STR(eng_file_type_name(0), "F32");
    CHECK_EQ_STR(eng_file_type_name(1), "F16");
    CHECK_EQ_STR(eng_file_type_name(2), "Q4_0");
    CHECK_EQ_STR(eng_file_type_name(7), "Q8_0");
    CHECK_EQ_STR(eng_file_type_name(15), "Q4_K_M");
    CHECK_EQ_STR(eng_file_type_name(17), "Q5_K_M");
    CHECK_EQ_STR(eng_file_type_name(18), "Q6_K");
    CHECK_EQ_STR(eng_file_type_name(32), "BF16");
    CHECK_EQ_STR(eng_file_type_name(5), "unknown"); /* removed Q4_2 */
    CHECK_EQ_STR(eng_file_type_name(-1), "unknown");
    CHECK_EQ_STR(eng_file_type_name(100000), "unknown");
}

TEST(model_param_size_is_ollamas_human_number)
{
    char b[32];
    eng_param_size_str(8030261248, b, sizeof b);
    CHECK_EQ_STR(b, "8.0B");
    eng_param_size_str(3212749824, b, sizeof b);
    CHECK_EQ_STR(b, "3.2B");
    eng_param_size_str(7000000000, b, sizeof b);
    CHECK_EQ_STR(b, "7B");
    eng_param_size_str(6738415616, b, sizeof b);
    CHECK_EQ_STR(b, "6.7B");
    eng_param_size_str(494032768, b, sizeof b);
    CHECK_EQ_STR(b, "494.03M");
    eng_param_size_str(135000000, b, sizeof b);
    CHECK_EQ_STR(b, "135M");
    eng_param_size_str(260000, b, sizeof b);
    CHECK_EQ_STR(b, "260K");
    eng_param_size_str(292616, b, sizeof b);
    CHECK_EQ_STR(b, "293K");
    eng_param_size_str(999, b, sizeof b);
    CHECK_EQ_STR(b, "999");
}

TEST(model_refcount_keeps_it_alive)
{
    eng_model *m = open_shared("tiny-llama-q4_0", false);
    CHECK(m);
    if (!m) return;
    CHECK(eng_model_acquire(m) == m);
    eng_model_release(m);
    /* still usable: one reference left */
    CHECK_EQ_INT(eng_model_hparams(m)->n_layer, 2);
    /* a context holds its own reference */
    eng_ctx_params p = {.n_ctx = 16, .n_seq = 1, .n_batch = 4, .n_threads = 1};
    eng_ctx *c = NULL;
    core_err err;
    CHECK_EQ_INT(eng_ctx_new(&c, m, &p, &err), CORE_OK);
    eng_model_release(m);
    if (c) {
        int32_t t[2] = {1, 15043};
        eng_batch b = {.n = 2, .tokens = t};
        CHECK_EQ_INT(eng_ctx_decode(c, &b, NULL, &err), CORE_OK);
        CHECK(eng_ctx_logits(c, 1) != NULL);
    }
    eng_ctx_free(c);
    eng_model_release(NULL);
}

TEST(model_populate_makes_weights_resident)
{
    if (getenv("DWELL_SANITIZE") && strcmp(getenv("DWELL_SANITIZE"), "1") == 0) return;
    size_t before = core_rss_bytes();
    eng_model *m = open_shared("tiny-llama-f32", true);
    CHECK(m);
    if (!m) return;
    size_t after = core_rss_bytes();
    size_t w = eng_model_hparams(m)->weight_bytes;
    CHECK_MSG(after >= before + w * 9 / 10, "RSS grew %zu for %zu bytes of weights", after - before,
              w);
    eng_model_release(m);
}

TEST(ctx_estimate_bounds_bytes_and_scales_with_ctx)
{
    eng_model *m = open_shared("tiny-llama-f16", false);
    CHECK(m);
    if (!m) return;
    const eng_hparams *h = eng_model_hparams(m);
    eng_ctx_params p = {.n_ctx = 512, .n_seq = 2, .n_batch = 64, .n_threads = 2};
    size_t est = eng_ctx_estimate(h, &p);
    eng_ctx *c = NULL;
    core_err err;
    CHECK_EQ_INT(eng_ctx_new(&c, m, &p, &err), CORE_OK);
    if (c) {
        CHECK(eng_ctx_bytes(c) <= est);
        CHECK_EQ_INT(eng_ctx_n_ctx(c), 512);
        CHECK_EQ_INT(eng_ctx_n_seq(c), 2);
    }
    eng_ctx_free(c);
    /* the KV cache: 2 (k, v) x n_seq x n_layer x n_ctx x n_embd_kv x 2 bytes (f16) */
    eng_ctx_params p2 = p;
    p2.n_ctx = 1024;
    size_t kv_growth = (size_t)(2 * 2 * h->n_layer * 512 * h->n_head_kv * h->n_embd_head * 2);
    size_t grow = eng_ctx_estimate(h, &p2) - est;
    CHECK(grow >= kv_growth && grow < kv_growth + 64 * 1024);
    /* defaults: n_ctx 0 = the model's, n_batch 0 = 512 */
    eng_ctx_params d = {.n_seq = 1};
    CHECK(eng_ctx_estimate(h, &d) > eng_ctx_estimate(h, &p) / 8);
    eng_ctx_params bad = {.n_seq = 0};
    CHECK(eng_ctx_new(&c, m, &bad, &err) == CORE_INVALID);
    eng_model_release(m);
}

// ---- RoPE scaling ----

/* Copies tiny-llama-f32 to path with extra keys/tensors: linear scaling factor (0 = none)
 * and a rope_freqs tensor of `ff` (0 = none). */
static bool write_variant(const char *path, float factor, float ff)
{
    core_err err;
    gguf_file *src = NULL;
    gguf_writer *w = NULL;
    if (gguf_open(&src, test_shared_path("models/tiny-llama-f32.gguf"), &err) ||
        gguf_writer_new(&w, &err)) {
        printf("  %s\n", err.msg);
        gguf_close(src);
        return false;
    }
    bool ok = gguf_writer_copy_kv(w, src, "", &err) == 0;
    if (factor > 0.0f) {
        gguf_writer_set_str(w, "llama.rope.scaling.type", "linear");
        gguf_writer_set_f32(w, "llama.rope.scaling.factor", factor);
    }
    for (int64_t i = 0; ok && i < gguf_tensor_count(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        ok = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size,
                                    &err) == 0;
    }
    float freqs[8]; /* n_rot / 2 = 16 / 2 */
    for (int i = 0; i < 8; i++)
        freqs[i] = ff;
    int64_t ne[1] = {8};
    if (ok && ff > 0.0f) {
        ok = gguf_writer_add_tensor(w, "rope_freqs.weight", CORE_TYPE_F32, 1, ne, freqs,
                                    sizeof freqs, &err) == 0;
    }
    if (ok) ok = gguf_writer_write(w, path, &err) == 0;
    if (!ok) printf("  %s\n", err.msg);
    gguf_writer_free(w);
    gguf_close(src);
    return ok;
}

/* Last logits of a fixed 40-token prompt; caller frees. */
static float *variant_logits(const char *path, float *freq_scale)
{
    eng_model *m = NULL;
    core_err err;
    if (eng_model_open(&m, path, NULL, &err)) {
        printf("  %s\n", err.msg);
        return NULL;
    }
    *freq_scale = eng_model_hparams(m)->rope_freq_scale;
    int64_t nv = eng_model_hparams(m)->n_vocab;
    eng_ctx_params p = {
        .n_ctx = 64, .n_seq = 1, .n_batch = 64, .n_threads = 1, .kv_type = ENG_KV_F32};
    eng_ctx *c = NULL;
    float *out = NULL;
    if (eng_ctx_new(&c, m, &p, &err) == 0) {
        int32_t t[40];
        for (int i = 0; i < 40; i++)
            t[i] = 1 + (i * 7919) % 31999;
        eng_batch b = {.n = 40, .tokens = t};
        if (eng_ctx_decode(c, &b, NULL, &err) == 0 && (out = malloc((size_t)nv * 4))) {
            memcpy(out, eng_ctx_logits(c, 39), (size_t)nv * 4);
        }
    }
    eng_ctx_free(c);
    eng_model_release(m);
    return out;
}

TEST(rope_linear_scaling_equals_rope_freqs_of_the_same_factor)
{
    char dir[] = "/tmp/dwell-test-model-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p_lin[64], p_ff[64], p_one[64];
    snprintf(p_lin, sizeof p_lin, "%s/lin.gguf", dir);
    snprintf(p_ff, sizeof p_ff, "%s/ff.gguf", dir);
    snprintf(p_one, sizeof p_one, "%s/one.gguf", dir);
    bool ok = write_variant(p_lin, 2.0f, 0.0f) && write_variant(p_ff, 0.0f, 2.0f) &&
              write_variant(p_one, 0.0f, 1.0f);
    CHECK(ok);
    float s_base, s_lin, s_ff, s_one;
    float *base =
        ok ? variant_logits(test_shared_path("models/tiny-llama-f32.gguf"), &s_base) : NULL;
    float *lin = ok ? variant_logits(p_lin, &s_lin) : NULL;
    float *ffl = ok ? variant_logits(p_ff, &s_ff) : NULL;
    float *one = ok ? variant_logits(p_one, &s_one) : NULL;
    CHECK(base && lin && ffl && one);
    if (base && lin && ffl && one) {
        CHECK(s_lin == 0.5f && s_ff == 1.0f && s_base == 1.0f);
        double d_same = 0, d_scaled = 0, d_one = 0;
        for (int i = 0; i < 32000; i++) {
            d_same = fmax(d_same, fabs(lin[i] - ffl[i]));
            d_scaled = fmax(d_scaled, fabs(lin[i] - base[i]));
            d_one = fmax(d_one, fabs(one[i] - base[i]));
        }
        CHECK_MSG(d_same < 1e-5, "linear x2 vs rope_freqs 2: %g", d_same);
        CHECK_MSG(d_scaled > 1e-2, "scaling changed nothing: %g", d_scaled);
        CHECK_MSG(d_one == 0.0, "rope_freqs of 1 changed the logits: %g", d_one);
    }
    free(base);
    free(lin);
    free(ffl);
    free(one);
    unlink(p_lin);
    unlink(p_ff);
    unlink(p_one);
    rmdir(dir);
}

int main(void)
{
    RUN(model_reads_llama_hparams_with_defaults);
    RUN(model_reads_qwen2_hparams);
    RUN(model_meta_strings);
    RUN(model_file_type_names_are_ollamas);
    RUN(model_param_size_is_ollamas_human_number);
    RUN(model_refcount_keeps_it_alive);
    RUN(model_populate_makes_weights_resident);
    RUN(ctx_estimate_bounds_bytes_and_scales_with_ctx);
    RUN(rope_linear_scaling_equals_rope_freqs_of_the_same_factor);
    return test_summary();
}
