/* golden_engine.h — helpers shared by the engine's golden tests: the list of shared models,
 * their golden.json (jansson), the reference logits files, and running prompts through an
 * eng_ctx. Everything is read from DWELL_SHARED; nothing is copied. */
#ifndef DWELL_GOLDEN_ENGINE_H
#define DWELL_GOLDEN_ENGINE_H

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "test.h"

#define GOLDEN_TOL 1e-3
#define GOLDEN_MAX_MODELS 64
#define GOLDEN_MAX_TOKENS 512

/* Sorted names (without .gguf) of the models in DWELL_SHARED/models; returns the count. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline int golden_models(char **names, int cap)
{
    DIR *d = opendir(test_shared_path("models"));
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".gguf") == 0) {
            names[n] = malloc(len - 4);
            if (!names[n]) break;
            memcpy(names[n], e->d_name, len - 5);
            names[n][len - 5] = '\0';
            n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}

static inline json_t *golden_json(const char *name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "golden/%s/golden.json", name);
    json_error_t je;
    json_t *j = json_load_file(test_shared_path(rel), 0, &je);
    if (!j) printf("  cannot read %s: %s\n", rel, je.text);
    return j;
}

/* The golden folder whose logits an f32-activation engine must reproduce for this model. */
static inline const char *golden_twin(const json_t *g, const char *name)
{
    const json_t *t = json_object_get(g, "same_weights_as_f32_model");
    return json_is_string(t) ? json_string_value(t) : name;
}

/* Prompt i's token ids into ids (cap entries); returns the count (0 on error). */
static inline int golden_prompt(const json_t *g, int i, int32_t *ids, int cap)
{
    const json_t *p = json_array_get(json_object_get(g, "prompts"), (size_t)i);
    const json_t *t = json_object_get(p, "tokens");
    int n = (int)json_array_size(t);
    if (n > cap) return 0;
    for (int k = 0; k < n; k++)
        ids[k] = (int32_t)json_integer_value(json_array_get(t, (size_t)k));
    return n;
}

/* Reads golden/<dir>/logits_p<i>.f32 (n floats) into a malloc'd array. */
static inline float *golden_logits(const char *dir, int i, int64_t n)
{
    char rel[512];
    snprintf(rel, sizeof rel, "golden/%s/logits_p%d.f32", dir, i);
    FILE *f = fopen(test_shared_path(rel), "rb");
    if (!f) {
        printf("  cannot open %s\n", rel);
        return NULL;
    }
    float *x = malloc((size_t)n * sizeof *x);
    size_t got = x ? fread(x, sizeof *x, (size_t)n, f) : 0;
    int extra = fgetc(f);
    fclose(f);
    if (got != (size_t)n || extra != EOF) {
        printf("  %s does not hold %lld floats\n", rel, (long long)n);
        free(x);
        return NULL;
    }
    return x;
}

static inline eng_model *golden_open(const char *name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    eng_model *m = NULL;
    core_err err;
    if (eng_model_open(&m, test_shared_path(rel), NULL, &err)) {
        printf("  %s: %s\n", rel, err.msg);
        return NULL;
    }
    return m;
}

static inline eng_ctx *golden_ctx(eng_model *m, int32_t n_seq, int32_t n_threads, int kv_type)
{
    eng_ctx_params p = {
        .n_ctx = 256, .n_seq = n_seq, .n_batch = 256, .n_threads = n_threads, .kv_type = kv_type};
    eng_ctx *c = NULL;
    core_err err;
    if (eng_ctx_new(&c, m, &p, &err)) printf("  eng_ctx_new: %s\n", err.msg);
    return c;
}

/* Appends n tokens to sequence seq as one batch; copies the last token's logits to out. */
static inline bool golden_eval(eng_ctx *c, int32_t seq, const int32_t *ids, int n, float *out,
                               int64_t n_vocab)
{
    static int32_t seqs[GOLDEN_MAX_TOKENS];
    static bool want[GOLDEN_MAX_TOKENS];
    if (n < 1 || n > GOLDEN_MAX_TOKENS) return false;
    for (int i = 0; i < n; i++) {
        seqs[i] = seq;
        want[i] = i == n - 1;
    }
    eng_batch b = {.n = n, .tokens = ids, .seq = seqs, .want = want};
    core_err err;
    if (eng_ctx_decode(c, &b, NULL, &err)) {
        printf("  decode: %s\n", err.msg);
        return false;
    }
    const float *l = eng_ctx_logits(c, n - 1);
    if (!l) return false;
    memcpy(out, l, (size_t)n_vocab * sizeof *out);
    return true;
}

static inline int32_t golden_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++) {
        if (x[i] > x[best]) best = i;
    }
    return (int32_t)best;
}

static inline double golden_max_diff(const float *a, const float *b, int64_t n)
{
    double md = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN counts as a difference */
    }
    return md;
}

#endif
