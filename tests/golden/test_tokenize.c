/* test_tokenize.c — the tokenizers against llama.cpp's tokenizations in shared/golden.
 *
 * For every golden/<model>/ with a tokenize.json (and tokenize_long.json where present), every
 * case must tokenize exactly as recorded in all four modes (add_special x parse_special), and
 * llama_detokenize of the recorded tokens (unparse_special = parse_special) must give the
 * recorded bytes. The prompts of every golden.json must tokenize (with BOS) to their ids.
 * Only the vocabulary of each model is loaded. */
#include <dirent.h>
#include <jansson.h>
#include <time.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "test.h"

#define MAX_MODELS 64

static const char *const g_modes[4] = {"plain", "bos", "special", "bos_special"};

/* A loaded vocabulary and the file it came from. */
typedef struct tmodel {
    gguf_file *f;
    eng_vocab *v;
} tmodel;

static int tmodel_open(tmodel *m, const char *rel)
{
    core_err err = {0};
    memset(m, 0, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_shared(), rel);
    if (gguf_open(&m->f, path, &err) || eng_vocab_load(&m->v, m->f, &err)) {
        printf("  %s: %s\n", rel, err.msg);
        gguf_close(m->f);
        m->f = NULL;
        return -1;
    }
    return 0;
}

static void tmodel_close(tmodel *m)
{
    eng_vocab_free(m->v);
    gguf_close(m->f);
    memset(m, 0, sizeof *m);
}

static char *hex_to_bytes(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned b = 0;
        sscanf(hex + 2 * i, "%2x", &b);
        out[i] = (char)b;
    }
    *len = n;
    return out;
}

static json_t *load_json(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/%s/%s", test_shared(), dir, name);
    FILE *fp = fopen(path, "r");
    if (!fp) return NULL;
    fclose(fp);
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!j) printf("  %s: %s (line %d)\n", path, jerr.text, jerr.line);
    return j;
}

/* The golden model directories, sorted. */
static size_t list_golden_dirs(char names[][128], size_t cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/golden", test_shared());
    DIR *d = opendir(path);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 128) continue;
        char sub[4352];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        DIR *s = opendir(sub);
        if (!s) continue;
        closedir(s);
        size_t len = strlen(e->d_name); /* < 128, checked above */
        memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    qsort(names, n, 128, (int (*)(const void *, const void *))strcmp);
    return n;
}

static void hex_of(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", (unsigned char)s[i]);
    out[2 * n] = 0;
}

/* Checks every case of one tokenize*.json; returns the number of mismatches. */
static int check_cases(const char *dir, const eng_vocab *v, json_t *doc, const char *file)
{
    int bad = 0;
    json_t *cases = json_object_get(doc, "cases");
    CHECK_MSG(json_array_size(cases) > 0, "%s/%s has no cases", dir, file);
    size_t ci;
    json_t *c;
    json_array_foreach(cases, ci, c) {
        size_t len;
        char *text = hex_to_bytes(json_string_value(json_object_get(c, "utf8_hex")), &len);
        for (int mode = 0; mode < 4; mode++) {
            json_t *want = json_object_get(json_object_get(c, "tokens"), g_modes[mode]);
            eng_tokens got = {0};
            core_err err = {0};
            int rc = eng_tokenize(v, text, len, mode & 1, mode >= 2, &got, &err);
            bool same = rc == CORE_OK && got.n == json_array_size(want);
            size_t first_diff = 0;
            for (size_t i = 0; same && i < got.n; i++) {
                if (got.ids[i] != json_integer_value(json_array_get(want, i))) {
                    same = false;
                    first_diff = i;
                }
            }
            CHECK_MSG(same, "%s/%s case %zu mode %s: rc %d, %zu tokens (want %zu), first "
                      "difference at %zu (got %d)", dir, file, ci, g_modes[mode], rc, got.n,
                      json_array_size(want), first_diff,
                      first_diff < got.n ? got.ids[first_diff] : -1);
            bad += !same;
            eng_tokens_free(&got);

            /* detokenize the recorded ids */
            size_t nw = json_array_size(want);
            int32_t *ids = malloc(sizeof *ids * (nw + 1));
            for (size_t i = 0; i < nw; i++) ids[i] = (int32_t)json_integer_value(json_array_get(want, i));
            core_buf b;
            core_buf_init(&b);
            rc = eng_detokenize(v, ids, nw, mode >= 2, &b);
            char *hex = malloc(2 * b.len + 1);
            hex_of(b.data ? b.data : "", b.len, hex);
            const char *want_hex =
                json_string_value(json_object_get(json_object_get(c, "detokenized_utf8_hex"),
                                                  g_modes[mode]));
            bool dsame = rc == CORE_OK && want_hex && strcmp(hex, want_hex) == 0;
            CHECK_MSG(dsame, "%s/%s case %zu mode %s detokenized:\n    got  %.200s\n    want %.200s",
                      dir, file, ci, g_modes[mode], hex, want_hex ? want_hex : "(none)");
            bad += !dsame;
            free(hex);
            free(ids);
            core_buf_deinit(&b);
        }
        free(text);
    }
    return bad;
}

TEST(every_golden_tokenization_matches_llama_cpp)
{
    static char dirs[MAX_MODELS][128];
    size_t nd = list_golden_dirs(dirs, MAX_MODELS);
    CHECK_MSG(nd > 0, "no golden directories in %s/golden", test_shared());
    int n_models = 0, n_long = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *doc = load_json(dirs[i], "tokenize.json");
        if (!doc) continue;
        const char *model = json_string_value(json_object_get(doc, "model"));
        tmodel m;
        CHECK_MSG(model && tmodel_open(&m, model) == 0, "%s: cannot load the vocab", dirs[i]);
        if (!model || !m.v) {
            json_decref(doc);
            continue;
        }
        json_t *vj = json_object_get(doc, "vocab");
        CHECK_EQ_INT(eng_vocab_n(m.v), json_integer_value(json_object_get(vj, "n")));
        CHECK_EQ_INT(eng_vocab_bos(m.v), json_integer_value(json_object_get(vj, "bos")));
        CHECK_EQ_INT(eng_vocab_eos(m.v), json_integer_value(json_object_get(vj, "eos")));
        CHECK_EQ_INT(eng_vocab_add_bos(m.v), json_integer_value(json_object_get(vj, "add_bos")));
        CHECK_EQ_INT(eng_vocab_add_eos(m.v), json_integer_value(json_object_get(vj, "add_eos")));
        CHECK_EQ_INT(eng_vocab_type(m.v), json_integer_value(json_object_get(vj, "type")));
        int bad = check_cases(dirs[i], m.v, doc, "tokenize.json");
        json_decref(doc);
        json_t *lng = load_json(dirs[i], "tokenize_long.json");
        if (lng) {
            bad += check_cases(dirs[i], m.v, lng, "tokenize_long.json");
            json_decref(lng);
            n_long++;
        }
        printf("  %-24s %s\n", dirs[i], bad ? "MISMATCH" : "ok");
        n_models++;
        tmodel_close(&m);
    }
    CHECK_MSG(n_models >= 5, "only %d models with tokenize.json", n_models);
    CHECK_MSG(n_long >= 2, "only %d models with tokenize_long.json", n_long);
}

/* The model whose tokenizer a golden dir uses: its own file, or for an F32 twin that is not
 * shipped, the shipped model that names it as its same_weights_as_f32_model. */
static bool golden_model_path(const char *dir, json_t *g, char dirs[][128], size_t nd,
                              char *out, size_t cap)
{
    const char *model = json_string_value(json_object_get(g, "model"));
    if (model && strncmp(model, "models/", 7) == 0) {
        snprintf(out, cap, "%s", model);
        return true;
    }
    for (size_t i = 0; i < nd; i++) {
        json_t *o = load_json(dirs[i], "golden.json");
        if (!o) continue;
        const char *twin = json_string_value(json_object_get(o, "same_weights_as_f32_model"));
        const char *om = json_string_value(json_object_get(o, "model"));
        bool hit = twin && om && strcmp(twin, dir) == 0 && strncmp(om, "models/", 7) == 0;
        if (hit) snprintf(out, cap, "%s", om);
        json_decref(o);
        if (hit) return true;
    }
    return false;
}

TEST(golden_prompts_tokenize_to_their_ids)
{
    static char dirs[MAX_MODELS][128];
    size_t nd = list_golden_dirs(dirs, MAX_MODELS);
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/prompts.json", test_shared());
    json_error_t jerr;
    json_t *pj = json_load_file(path, 0, &jerr);
    CHECK_MSG(pj != NULL, "%s: %s", path, jerr.text);
    json_t *texts = json_object_get(pj, "prompts");
    int n_checked = 0;
    for (size_t i = 0; i < nd && pj; i++) {
        json_t *g = load_json(dirs[i], "golden.json");
        if (!g) continue;
        char model[512];
        tmodel m = {0};
        bool have = golden_model_path(dirs[i], g, dirs, nd, model, sizeof model);
        CHECK_MSG(have, "%s: no model for its tokenizer", dirs[i]);
        if (have && tmodel_open(&m, model) == 0) {
            json_t *prompts = json_object_get(g, "prompts");
            for (size_t p = 0; p < json_array_size(prompts); p++) {
                const char *text =
                    json_string_value(json_object_get(json_array_get(texts, p), "text"));
                json_t *want = json_object_get(json_array_get(prompts, p), "tokens");
                eng_tokens got = {0};
                core_err err = {0};
                int rc = eng_tokenize(m.v, text, strlen(text), true, false, &got, &err);
                bool same = rc == CORE_OK && got.n == json_array_size(want);
                for (size_t k = 0; same && k < got.n; k++) {
                    same = got.ids[k] == json_integer_value(json_array_get(want, k));
                }
                CHECK_MSG(same, "%s prompt %zu: %zu tokens, want %zu", dirs[i], p, got.n,
                          json_array_size(want));
                eng_tokens_free(&got);
                n_checked++;
            }
            tmodel_close(&m);
        }
        json_decref(g);
    }
    json_decref(pj);
    CHECK_MSG(n_checked >= 30, "only %d prompts checked", n_checked);
}

TEST(war_and_peace_tokenizes_fast)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/fixtures/text/war-and-peace.txt", test_shared());
    FILE *fp = fopen(path, "rb");
    CHECK_MSG(fp != NULL, "cannot open %s", path);
    if (!fp) return;
    static char text[20000];
    size_t len = fread(text, 1, sizeof text, fp);
    fclose(fp);
    const char *models[] = {"models/tiny-llama3-q8_0.gguf", "models/tiny-qwen2bpe-q8_0.gguf",
                            "models/llama-2-tiny-random.gguf"};
    for (size_t i = 0; i < 3; i++) {
        tmodel m;
        if (tmodel_open(&m, models[i]) != 0) {
            CHECK_MSG(0, "cannot load %s", models[i]);
            continue;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        eng_tokens got = {0};
        CHECK_EQ_INT(eng_tokenize(m.v, text, len, true, true, &got, NULL), CORE_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        printf("  %s: %zu bytes -> %zu tokens in %.1f ms\n", models[i], len, got.n, ms);
        /* generous under sanitizers; unoptimized this is ~10x the normal build */
        CHECK_MSG(ms < 3000.0, "%s: %.0f ms", models[i], ms);
        eng_tokens_free(&got);
        tmodel_close(&m);
    }
}

int main(void)
{
    RUN(every_golden_tokenization_matches_llama_cpp);
    RUN(golden_prompts_tokenize_to_their_ids);
    RUN(war_and_peace_tokenizes_fast);
    return test_summary();
}
