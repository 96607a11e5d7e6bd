/* test_logits.c — the engine against llama.cpp's goldens for every model in
 * DWELL_SHARED/models, with an F32 KV cache and each prompt evaluated as one batch:
 *   - last-position logits within 1e-3 of the F32 twin's goldens (the file's own for models
 *     with no twin), as golden/README.md prescribes for an f32-activation engine;
 *   - the top-10 ids equal wherever the golden logit gaps are decisive (> 2 × tolerance);
 *   - the 16 greedy ids equal up to the first step whose golden margin is below 2 × tolerance;
 *   - stories260K's greedy text after "Hello" is llama.cpp's.
 * All of the above run the exact path (kern_set_f32_act(true): f32 activations). The default
 * fast path, which quantizes activations as ggml does for Q8_0/Q4_0/Q4_K/Q6_K weights, is held
 * to the bound golden/README.md gives such an engine against each file's own goldens:
 *   - last-position logits within FAST_TOL of the file's own llama.cpp logits, and the argmax
 *     equal where the golden top-2 gap is decisive (> 2 × FAST_TOL). */
#include "golden_engine.h"
#include "kernels/kernels.h"

/* golden/README.md: "start from max |dlogit| <= 1e-2 against the file's own goldens, tighten
 * if it holds" for an engine that copies ggml's activation quantization. On the Q8_0/Q4_0
 * files it holds at 1e-6 (the same arithmetic as llama.cpp), so FAST_TOL is 1e-3. The K-quant
 * files are more fragile: one activation landing on a rounding boundary is enough to move the
 * logits by 0.055 (tiny-llama256-q4_k prompt 2 with the scalar kernels, whose sums run in a
 * different order than ggml's; the AVX2 ones match to 8e-6), and tiny-llama256-mixed has
 * F16/BF16 matrices that ggml multiplies with F16/BF16-rounded activations and dwell with f32
 * ones: these files are held to the README's bound for K-quant files, 0.1. */
#define FAST_TOL 1e-3
#define FAST_TOL_K 0.1

typedef struct model_case {
    const char *name;
    eng_model *m;
    eng_ctx *c;
    json_t *g;    /* the model's golden.json */
    json_t *twin; /* the twin's golden.json (== g when there is none) */
    const char *twin_name;
    int64_t n_vocab;
} model_case;

static bool case_open(model_case *mc, const char *name)
{
    memset(mc, 0, sizeof *mc);
    mc->name = name;
    mc->g = golden_json(name);
    if (!mc->g) return false;
    mc->twin_name = golden_twin(mc->g, name);
    mc->twin = strcmp(mc->twin_name, name) == 0 ? json_incref(mc->g) : golden_json(mc->twin_name);
    mc->m = golden_open(name);
    if (!mc->twin || !mc->m) return false;
    mc->n_vocab = eng_model_hparams(mc->m)->n_vocab;
    mc->c = golden_ctx(mc->m, 1, 2, ENG_KV_F32);
    return mc->c != NULL;
}

static void case_close(model_case *mc)
{
    eng_ctx_free(mc->c);
    eng_model_release(mc->m);
    json_decref(mc->twin);
    json_decref(mc->g);
}

/* Top-10 ids: position j must match wherever the golden gaps on both sides of it are
 * decisive. */
static void check_top10(const model_case *mc, int pi, const float *l)
{
    const json_t *top =
        json_object_get(json_array_get(json_object_get(mc->twin, "prompts"), (size_t)pi), "top10");
    int n = (int)json_array_size(top);
    CHECK_MSG(n == 10, "%s: top10 of prompt %d has %d entries", mc->name, pi, n);
    if (n != 10) return;
    int32_t gid[10];
    double gl[10];
    for (int j = 0; j < 10; j++) {
        gid[j] = (int32_t)json_integer_value(json_array_get(json_array_get(top, (size_t)j), 0));
        gl[j] = json_number_value(json_array_get(json_array_get(top, (size_t)j), 1));
    }
    /* our top 10, by logit descending then id ascending */
    int32_t ours[10];
    for (int j = 0; j < 10; j++) {
        int32_t best = -1;
        for (int64_t i = 0; i < mc->n_vocab; i++) {
            bool taken = false;
            for (int k = 0; k < j; k++)
                taken |= ours[k] == i;
            if (taken) continue;
            if (best < 0 || l[i] > l[best]) best = (int32_t)i;
        }
        ours[j] = best;
    }
    for (int j = 0; j < 10; j++) {
        bool before = j == 0 || gl[j - 1] - gl[j] > 2 * GOLDEN_TOL;
        bool after = j == 9 || gl[j] - gl[j + 1] > 2 * GOLDEN_TOL;
        if (!before || !after) continue;
        CHECK_MSG(ours[j] == gid[j], "%s prompt %d: top10[%d] is %d, golden %d", mc->name, pi, j,
                  (int)ours[j], (int)gid[j]);
    }
}

/* Greedy from the prompt's logits l (the cache holds the prompt); returns the steps compared. */
static int check_greedy(model_case *mc, int pi, const float *prompt_logits, int32_t *ids_out)
{
    const json_t *p = json_array_get(json_object_get(mc->twin, "prompts"), (size_t)pi);
    const json_t *steps = json_object_get(p, "greedy_steps");
    int n_steps = (int)json_array_size(steps);
    CHECK_MSG(n_steps == 16, "%s: %d greedy steps", mc->name, n_steps);
    float *l = malloc((size_t)mc->n_vocab * sizeof *l);
    if (!l) return 0;
    memcpy(l, prompt_logits, (size_t)mc->n_vocab * sizeof *l);
    int compared = 0;
    for (int s = 0; s < n_steps && s < 16; s++) {
        const json_t *st = json_array_get(steps, (size_t)s);
        int32_t gid = (int32_t)json_integer_value(json_array_get(st, 0));
        double margin =
            json_number_value(json_array_get(st, 1)) - json_number_value(json_array_get(st, 2));
        int32_t id = golden_argmax(l, mc->n_vocab);
        if (ids_out) ids_out[s] = id;
        if (margin < 2 * GOLDEN_TOL) break; /* a different choice here is legitimate */
        CHECK_MSG(id == gid, "%s prompt %d: greedy step %d is %d, golden %d", mc->name, pi, s,
                  (int)id, (int)gid);
        if (id != gid) break;
        compared++;
        if (s + 1 < n_steps && !golden_eval(mc->c, 0, &id, 1, l, mc->n_vocab)) {
            CHECK(0);
            break;
        }
    }
    free(l);
    return compared;
}

static void run_model(const char *name)
{
    model_case mc;
    bool ok = case_open(&mc, name);
    CHECK_MSG(ok, "%s: cannot set up", name);
    float *l = ok ? malloc((size_t)mc.n_vocab * sizeof *l) : NULL;
    for (int pi = 0; l && pi < 3; pi++) {
        int32_t ids[GOLDEN_MAX_TOKENS], tw[GOLDEN_MAX_TOKENS];
        int n = golden_prompt(mc.g, pi, ids, GOLDEN_MAX_TOKENS);
        int nt = golden_prompt(mc.twin, pi, tw, GOLDEN_MAX_TOKENS);
        CHECK_MSG(n > 0 && n == nt && memcmp(ids, tw, (size_t)n * sizeof *ids) == 0,
                  "%s prompt %d: tokens differ from the twin's", name, pi);
        eng_ctx_seq_truncate(mc.c, 0, 0);
        if (!golden_eval(mc.c, 0, ids, n, l, mc.n_vocab)) {
            CHECK_MSG(0, "%s prompt %d: evaluation failed", name, pi);
            continue;
        }
        float *ref = golden_logits(mc.twin_name, pi, mc.n_vocab);
        CHECK(ref != NULL);
        if (!ref) continue;
        double md = golden_max_diff(l, ref, mc.n_vocab);
        CHECK_MSG(md <= GOLDEN_TOL, "%s prompt %d: max |dlogit| %.3g vs %s", name, pi, md,
                  mc.twin_name);
        printf("  %-22s p%d: max |dlogit| %.2g vs %s", name, pi, md, mc.twin_name);
        check_top10(&mc, pi, l);
        int32_t gen[16];
        int steps = check_greedy(&mc, pi, l, gen);
        printf(", greedy %d/16 compared\n", steps);
        free(ref);
    }
    free(l);
    case_close(&mc);
}

TEST(engine_matches_goldens_for_every_shared_model)
{
    char *names[GOLDEN_MAX_MODELS];
    int n = golden_models(names, GOLDEN_MAX_MODELS);
    CHECK_MSG(n >= 15, "only %d models in %s/models", n, test_shared());
    for (int i = 0; i < n; i++) {
        run_model(names[i]);
        free(names[i]);
    }
}

/* Whether any matrix of the model takes the quantized-activation path. */
static bool uses_quantized_act(const char *name)
{
    static const char *const q[] = {"q8_0", "q4_0", "q4_k", "mixed"};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        if (strstr(name, q[i])) return true;
    }
    return false;
}

static void run_model_fast(const char *name)
{
    model_case mc;
    bool ok = case_open(&mc, name);
    CHECK_MSG(ok, "%s: cannot set up", name);
    double tol = strstr(name, "mixed") || strstr(name, "_k") ? FAST_TOL_K : FAST_TOL;
    float *l = ok ? malloc((size_t)mc.n_vocab * sizeof *l) : NULL;
    for (int pi = 0; l && pi < 3; pi++) {
        int32_t ids[GOLDEN_MAX_TOKENS];
        int n = golden_prompt(mc.g, pi, ids, GOLDEN_MAX_TOKENS);
        eng_ctx_seq_truncate(mc.c, 0, 0);
        if (!golden_eval(mc.c, 0, ids, n, l, mc.n_vocab)) {
            CHECK_MSG(0, "%s prompt %d: evaluation failed", name, pi);
            continue;
        }
        float *ref = golden_logits(name, pi, mc.n_vocab);
        CHECK(ref != NULL);
        if (!ref) continue;
        double md = golden_max_diff(l, ref, mc.n_vocab);
        CHECK_MSG(md <= tol, "%s prompt %d: max |dlogit| %.3g vs its own goldens (fast path)",
                  name, pi, md);
        const json_t *top = json_object_get(
            json_array_get(json_object_get(mc.g, "prompts"), (size_t)pi), "top10");
        double g0 = json_number_value(json_array_get(json_array_get(top, 0), 1));
        double g1 = json_number_value(json_array_get(json_array_get(top, 1), 1));
        int32_t gid = (int32_t)json_integer_value(json_array_get(json_array_get(top, 0), 0));
        if (g0 - g1 > 2 * tol) CHECK_EQ_INT(golden_argmax(l, mc.n_vocab), gid);
        printf("  %-22s p%d: max |dlogit| %.2g vs its own goldens (fast path)\n", name, pi, md);
        free(ref);
    }
    free(l);
    case_close(&mc);
}

TEST(fast_path_matches_each_files_own_goldens)
{
    kern_set_f32_act(false);
    char *names[GOLDEN_MAX_MODELS];
    int n = golden_models(names, GOLDEN_MAX_MODELS);
    int ran = 0;
    for (int i = 0; i < n; i++) {
        if (uses_quantized_act(names[i])) {
            run_model_fast(names[i]);
            ran++;
        }
        free(names[i]);
    }
    CHECK_MSG(ran >= 7, "only %d models use the quantized-activation path", ran);
}

TEST(stories260k_greedy_text_is_llama_cpps)
{
    model_case mc;
    bool ok = case_open(&mc, "stories260K");
    CHECK(ok);
    int32_t ids[GOLDEN_MAX_TOKENS], gen[16] = {0};
    int n = ok ? golden_prompt(mc.g, 0, ids, GOLDEN_MAX_TOKENS) : 0;
    float *l = ok ? malloc((size_t)mc.n_vocab * sizeof *l) : NULL;
    if (l && n > 0 && golden_eval(mc.c, 0, ids, n, l, mc.n_vocab)) {
        CHECK_EQ_INT(check_greedy(&mc, 0, l, gen), 16);
        core_buf prompt, text;
        core_buf_init(&prompt);
        core_buf_init(&text);
        for (int i = 1; i < n; i++)
            eng_token_to_piece(eng_model_vocab(mc.m), ids[i], false, &prompt);
        for (int i = 0; i < 16; i++)
            eng_token_to_piece(eng_model_vocab(mc.m), gen[i], false, &text);
        CHECK_EQ_STR(prompt.data, " Hello");
        CHECK_EQ_STR(text.data, " was a big, red ball. He was very excit");
        core_buf_deinit(&prompt);
        core_buf_deinit(&text);
    } else {
        CHECK(0);
    }
    free(l);
    case_close(&mc);
}

int main(void)
{
    kern_set_f32_act(true); /* the exact path: 1e-3 against the F32 twins */
    RUN(engine_matches_goldens_for_every_shared_model);
    RUN(stories260k_greedy_text_is_llama_cpps);
    RUN(fast_path_matches_each_files_own_goldens);
    return test_summary();
}
