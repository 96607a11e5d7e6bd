/* The kernels against real files: the tiny-llama family in DWELL_SHARED/models holds the same
 * weights in every type (golden/README.md "Same weights across types"), so dequantizing any
 * tensor of tiny-llama-{f16,q8_0,q4_0,q4_1,q5_0,q5_1} must give the F32 file's tensor bit for
 * bit, and tiny-llama256-{q4_k,q5_k,mixed} (Q4_K, Q5_K, Q6_K, Q8_0, Q4_0, F16, BF16) must all
 * agree with each other. The dispatched dot products are checked against the reference ones on
 * these real rows too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "test.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

static gguf_file *open_model(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    gguf_file *f = NULL;
    core_err err;
    if (gguf_open(&f, test_shared_path(rel), &err) != CORE_OK) {
        CHECK_MSG(0, "cannot open %s: %s", rel, err.msg);
        return NULL;
    }
    return f;
}

static int64_t n_rows(const gguf_tensor *t)
{
    int64_t r = 1;
    for (int d = 1; d < t->n_dims; d++) r *= t->ne[d];
    return r;
}

/* Dequantizes every tensor of a and b and compares them bit for bit; returns tensors checked. */
static int compare_files(gguf_file *a, gguf_file *b, const char *what)
{
    int checked = 0;
    float *ra = NULL, *rb = NULL;
    for (int64_t i = 0; i < gguf_tensor_count(b); i++) {
        const gguf_tensor *tb = gguf_tensor_at(b, i);
        const gguf_tensor *ta = gguf_tensor_find(a, tb->name);
        CHECK_MSG(ta != NULL, "%s: %s missing", what, tb->name);
        if (!ta) continue;
        CHECK(ta->ne[0] == tb->ne[0] && n_rows(ta) == n_rows(tb));
        const kern_traits *ka = kern_traits_get(ta->type), *kb = kern_traits_get(tb->type);
        CHECK_MSG(ka && kb, "%s: %s has an unsupported type", what, tb->name);
        if (!ka || !kb) continue;
        int64_t n = ta->ne[0];
        size_t sa = ta->size / (size_t)n_rows(ta), sb = tb->size / (size_t)n_rows(tb);
        ra = realloc(ra, sizeof(float) * (size_t)n);
        rb = realloc(rb, sizeof(float) * (size_t)n);
        int64_t bad = 0;
        for (int64_t r = 0; r < n_rows(tb); r++) {
            kern_get_row(ta->type, ta->data, sa, n, r, ra);
            kern_get_row(tb->type, tb->data, sb, n, r, rb);
            if (memcmp(ra, rb, sizeof(float) * (size_t)n) != 0 && bad++ == 0) {
                for (int64_t k = 0; k < n; k++) {
                    if (ra[k] != rb[k]) {
                        printf("  %s %s row %lld col %lld: %s %.9g vs %s %.9g\n", what,
                               tb->name, (long long)r, (long long)k, ka->name, ra[k], kb->name,
                               rb[k]);
                        break;
                    }
                }
            }
        }
        CHECK_MSG(bad == 0, "%s: %s: %lld rows differ", what, tb->name, (long long)bad);
        checked++;
    }
    free(ra);
    free(rb);
    return checked;
}

TEST(legacy_types_equal_f32)
{
    static const char *names[] = {"tiny-llama-f16",  "tiny-llama-q8_0", "tiny-llama-q4_0",
                                  "tiny-llama-q4_1", "tiny-llama-q5_0", "tiny-llama-q5_1"};
    gguf_file *f32 = open_model("tiny-llama-f32");
    if (!f32) return;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        gguf_file *f = open_model(names[i]);
        if (!f) continue;
        int n = compare_files(f32, f, names[i]);
        CHECK_EQ_INT(n, gguf_tensor_count(f32));
        gguf_close(f);
    }
    gguf_close(f32);
}

TEST(kquant_types_agree)
{
    gguf_file *q4k = open_model("tiny-llama256-q4_k");
    gguf_file *q5k = open_model("tiny-llama256-q5_k");
    gguf_file *mix = open_model("tiny-llama256-mixed");
    if (q4k && q5k) CHECK(compare_files(q4k, q5k, "q4_k/q5_k") == gguf_tensor_count(q4k));
    if (q4k && mix) CHECK(compare_files(q4k, mix, "q4_k/mixed") == gguf_tensor_count(q4k));
    gguf_close(q4k);
    gguf_close(q5k);
    gguf_close(mix);
}

/* Dispatched dot vs reference dot on the real rows of every weight type in the files. */
TEST(simd_dot_on_real_rows)
{
    static const char *names[] = {"tiny-llama-f16",  "tiny-llama-q8_0", "tiny-llama-q4_0",
                                  "tiny-llama-q4_1", "tiny-llama-q5_0", "tiny-llama-q5_1",
                                  "tiny-llama256-mixed", "tiny-llama256-q4_k",
                                  "tiny-llama256-q5_k"};
    float x[1024];
    for (int i = 0; i < 1024; i++) x[i] = frand();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        gguf_file *f = open_model(names[i]);
        if (!f) continue;
        for (int64_t ti = 0; ti < gguf_tensor_count(f); ti++) {
            const gguf_tensor *t = gguf_tensor_at(f, ti);
            const kern_traits *k = kern_traits_get(t->type), *r = kern_traits_ref(t->type);
            if (!k || t->ne[0] > 1024 || t->n_dims < 2) continue;
            int64_t n = t->ne[0], rows = n_rows(t) < 64 ? n_rows(t) : 64;
            size_t rs = t->size / (size_t)n_rows(t);
            float w[1024];
            for (int64_t row = 0; row < rows; row++) {
                const uint8_t *p = (const uint8_t *)t->data + (size_t)row * rs;
                r->to_float(p, w, n);
                double mag = 0;
                for (int64_t j = 0; j < n; j++) mag += fabs((double)w[j] * x[j]);
                float a = k->dot_f32(n, p, x), b = r->dot_f32(n, p, x);
                if (!(fabs((double)a - b) <= 1e-5 * mag)) {
                    CHECK_MSG(0, "%s %s row %lld: %s dot %.9g, ref %.9g", names[i], t->name,
                              (long long)row, kern_isa(), a, b);
                    break;
                }
            }
        }
        gguf_close(f);
    }
}

int main(void)
{
    RUN(legacy_types_equal_f32);
    RUN(kquant_types_agree);
    RUN(simd_dot_on_real_rows);
    return test_summary();
}
