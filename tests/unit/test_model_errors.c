/* test_model_errors.c — eng_model_open refuses bad models with a message that names the
 * problem: a missing required key, a tensor whose shape disagrees with the hyper-parameters, an
 * unsupported architecture, an unsupported tensor type, inconsistent head counts. The files are
 * built with gguf_writer in a temporary folder (tokenizer keys copied from stories260K), and a
 * well-formed one of the same build is checked to open, so every failure is the one meant. */
#include <stdlib.h>
#include <unistd.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "test.h"

#define N_EMBD 32
#define N_HEAD 4
#define N_HEAD_KV 2
#define N_FF 64
#define N_VOCAB 512 /* stories260K's vocabulary */

/* What to break in the file. */
typedef struct spec {
    const char *arch;        /* NULL: "llama" */
    const char *skip_key;    /* a metadata key left out */
    const char *skip_tensor; /* a tensor left out */
    const char *bad_shape;   /* a tensor given one row too many */
    const char *bad_type;    /* a tensor stored as I32 */
    int64_t n_head_kv;       /* 0: N_HEAD_KV */
    bool output;             /* write output.weight (untied) */
} spec;

static char g_dir[256];
static float g_zeros[N_VOCAB * N_EMBD + 64];

static void add_u32(gguf_writer *w, const spec *s, const char *key, uint32_t v)
{
    if (s->skip_key && strcmp(s->skip_key, key) == 0) return;
    gguf_writer_set_u32(w, key, v);
}

static bool add_tensor(gguf_writer *w, const spec *s, const char *name, int64_t ne0, int64_t ne1)
{
    if (s->skip_tensor && strcmp(s->skip_tensor, name) == 0) return true;
    if (s->bad_shape && strcmp(s->bad_shape, name) == 0) ne1 += 1;
    int type = s->bad_type && strcmp(s->bad_type, name) == 0 ? CORE_TYPE_I32 : CORE_TYPE_F32;
    int64_t ne[2] = {ne0, ne1};
    int n_dims = ne1 > 1 ? 2 : 1;
    size_t size = (size_t)(ne0 * ne1) * 4;
    core_err err;
    if (gguf_writer_add_tensor(w, name, type, n_dims, ne, g_zeros, size, &err)) {
        printf("  add_tensor %s: %s\n", name, err.msg);
        return false;
    }
    return true;
}

/* Writes the model described by s to <g_dir>/<file>; returns the path (static). */
static const char *build(const spec *s, const char *file)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    const char *arch = s->arch ? s->arch : "llama";
    core_err err;
    gguf_file *src = NULL;
    gguf_writer *w = NULL;
    bool ok = gguf_open(&src, test_shared_path("models/stories260K.gguf"), &err) == 0 &&
              gguf_writer_new(&w, &err) == 0;
    if (!ok) {
        printf("  setup: %s\n", err.msg);
        gguf_close(src);
        return NULL;
    }
    char key[128];
    if (!s->skip_key || strcmp(s->skip_key, "general.architecture") != 0) {
        gguf_writer_set_str(w, "general.architecture", arch);
    }
#define K(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    add_u32(w, s, K("context_length"), 128);
    add_u32(w, s, K("embedding_length"), N_EMBD);
    add_u32(w, s, K("block_count"), 1);
    add_u32(w, s, K("feed_forward_length"), N_FF);
    add_u32(w, s, K("attention.head_count"), N_HEAD);
    add_u32(w, s, K("attention.head_count_kv"), s->n_head_kv ? (uint32_t)s->n_head_kv : N_HEAD_KV);
    if (!s->skip_key || strcmp(s->skip_key, K("attention.layer_norm_rms_epsilon")) != 0) {
        gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-5f);
    }
#undef K
    ok = gguf_writer_copy_kv(w, src, "tokenizer.", &err) == 0;
    int64_t hd = N_EMBD / N_HEAD, kv = N_HEAD_KV * hd;
    ok = ok && add_tensor(w, s, "token_embd.weight", N_EMBD, N_VOCAB) &&
         add_tensor(w, s, "output_norm.weight", N_EMBD, 1) &&
         (!s->output || add_tensor(w, s, "output.weight", N_EMBD, N_VOCAB)) &&
         add_tensor(w, s, "blk.0.attn_norm.weight", N_EMBD, 1) &&
         add_tensor(w, s, "blk.0.attn_q.weight", N_EMBD, N_EMBD) &&
         add_tensor(w, s, "blk.0.attn_k.weight", N_EMBD, kv) &&
         add_tensor(w, s, "blk.0.attn_v.weight", N_EMBD, kv) &&
         add_tensor(w, s, "blk.0.attn_output.weight", N_EMBD, N_EMBD) &&
         add_tensor(w, s, "blk.0.ffn_norm.weight", N_EMBD, 1) &&
         add_tensor(w, s, "blk.0.ffn_gate.weight", N_EMBD, N_FF) &&
         add_tensor(w, s, "blk.0.ffn_up.weight", N_EMBD, N_FF) &&
         add_tensor(w, s, "blk.0.ffn_down.weight", N_FF, N_EMBD);
    if (ok && gguf_writer_write(w, path, &err)) {
        printf("  write: %s\n", err.msg);
        ok = false;
    }
    gguf_writer_free(w);
    gguf_close(src);
    return ok ? path : NULL;
}

/* Opens a model built from s; returns the code and leaves the message in err. */
static int try_open(const spec *s, core_err *err)
{
    const char *path = build(s, "m.gguf");
    if (!path) return 1;
    eng_model *m = NULL;
    core_err_clear(err);
    int rc = eng_model_open(&m, path, NULL, err);
    if (rc == CORE_OK) {
        CHECK(m != NULL);
        eng_model_release(m);
    } else {
        CHECK(m == NULL);
        printf("  -> %s\n", err->msg);
    }
    unlink(path);
    return rc;
}

TEST(model_well_formed_file_opens)
{
    spec s = {0};
    core_err err;
    CHECK_EQ_INT(try_open(&s, &err), CORE_OK);
    s.output = true;
    CHECK_EQ_INT(try_open(&s, &err), CORE_OK);
}

TEST(model_rejects_missing_required_keys)
{
    const char *keys[] = {"general.architecture",
                          "llama.embedding_length",
                          "llama.block_count",
                          "llama.feed_forward_length",
                          "llama.attention.head_count",
                          "llama.context_length",
                          "llama.attention.layer_norm_rms_epsilon"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        spec s = {.skip_key = keys[i]};
        core_err err;
        CHECK_EQ_INT(try_open(&s, &err), CORE_FORMAT);
        CHECK_CONTAINS(err.msg, keys[i]);
        CHECK_CONTAINS(err.msg, "missing");
    }
}

TEST(model_head_count_kv_defaults_to_head_count)
{
    spec s = {.skip_key = "llama.attention.head_count_kv"};
    core_err err;
    /* the k/v tensors are sized for 2 kv heads, so defaulting to 4 must be a shape error */
    CHECK_EQ_INT(try_open(&s, &err), CORE_FORMAT);
    CHECK_CONTAINS(err.msg, "blk.0.attn_k.weight");
    CHECK_CONTAINS(err.msg, "[32, 16]");
    CHECK_CONTAINS(err.msg, "[32, 32]");
}

TEST(model_rejects_tensor_shape_that_disagrees_with_hparams)
{
    const char *names[] = {"blk.0.attn_q.weight", "blk.0.ffn_down.weight", "token_embd.weight",
                           "blk.0.ffn_norm.weight"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        spec s = {.bad_shape = names[i]};
        core_err err;
        CHECK_EQ_INT(try_open(&s, &err), CORE_FORMAT);
        CHECK_CONTAINS(err.msg, names[i]);
    }
    spec s = {.bad_shape = "blk.0.attn_q.weight"};
    core_err err;
    try_open(&s, &err);
    CHECK_CONTAINS(err.msg, "shape [32, 33]");
    CHECK_CONTAINS(err.msg, "expected [32, 32]");
}

TEST(model_rejects_missing_tensor)
{
    spec s = {.skip_tensor = "blk.0.ffn_up.weight"};
    core_err err;
    CHECK_EQ_INT(try_open(&s, &err), CORE_FORMAT);
    CHECK_CONTAINS(err.msg, "blk.0.ffn_up.weight is missing");
}

TEST(model_rejects_unsupported_architecture)
{
    spec s = {.arch = "gpt2"};
    core_err err;
    CHECK_EQ_INT(try_open(&s, &err), CORE_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "unsupported architecture \"gpt2\"");
}

TEST(model_rejects_unsupported_tensor_type)
{
    spec s = {.bad_type = "blk.0.attn_v.weight"};
    core_err err;
    CHECK_EQ_INT(try_open(&s, &err), CORE_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "blk.0.attn_v.weight");
    CHECK_CONTAINS(err.msg, "I32");
}

TEST(model_rejects_head_count_not_multiple_of_kv)
{
    spec s = {.n_head_kv = 3};
    core_err err;
    CHECK_EQ_INT(try_open(&s, &err), CORE_FORMAT);
    CHECK_CONTAINS(err.msg, "head_count_kv");
}

TEST(model_rejects_qwen2_without_biases)
{
    spec s = {.arch = "qwen2"};
    core_err err;
    CHECK_EQ_INT(try_open(&s, &err), CORE_FORMAT);
    CHECK_CONTAINS(err.msg, "blk.0.attn_q.bias is missing");
}

TEST(model_rejects_missing_file)
{
    eng_model *m = NULL;
    core_err err;
    CHECK(eng_model_open(&m, "/nonexistent/dir/model.gguf", NULL, &err) != CORE_OK);
    CHECK(m == NULL);
    CHECK(err.msg[0] != '\0');
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/dwell-test-model-errors-XXXXXX");
    if (!mkdtemp(g_dir)) {
        printf("cannot make a temporary folder\n");
        return 1;
    }
    RUN(model_well_formed_file_opens);
    RUN(model_rejects_missing_required_keys);
    RUN(model_head_count_kv_defaults_to_head_count);
    RUN(model_rejects_tensor_shape_that_disagrees_with_hparams);
    RUN(model_rejects_missing_tensor);
    RUN(model_rejects_unsupported_architecture);
    RUN(model_rejects_unsupported_tensor_type);
    RUN(model_rejects_head_count_not_multiple_of_kv);
    RUN(model_rejects_qwen2_without_biases);
    RUN(model_rejects_missing_file);
    rmdir(g_dir);
    return test_summary();
}
