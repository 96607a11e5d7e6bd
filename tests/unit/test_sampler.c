/* test_sampler.c — the sampling chain: greedy, penalties, top_k/top_p/min_p cuts, seeds and
 * the shape of the distribution with fixed seeds. */
#include "engine/engine.h"
#include "test.h"

static eng_sampler_params greedy_params(void)
{
    eng_sampler_params p;
    eng_sampler_params_default(&p);
    p.temperature = 0.0f;
    p.repeat_penalty = 1.0f;
    p.has_seed = true;
    p.seed = 42;
    return p;
}

static eng_sampler *make(const eng_sampler_params *p, int64_t n)
{
    eng_sampler *s = NULL;
    core_err err;
    int rc = eng_sampler_new(&s, p, n, &err);
    if (rc) printf("  eng_sampler_new: %s\n", err.msg);
    return s;
}

TEST(sampler_defaults_are_ollamas)
{
    eng_sampler_params p;
    eng_sampler_params_default(&p);
    CHECK(p.temperature == 0.8f);
    CHECK_EQ_INT(p.top_k, 40);
    CHECK(p.top_p == 0.9f);
    CHECK(p.min_p == 0.0f);
    CHECK(p.repeat_penalty == 1.1f);
    CHECK_EQ_INT(p.repeat_last_n, 64);
    CHECK(p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
}

TEST(sampler_greedy_takes_argmax_ties_to_lowest_id)
{
    eng_sampler_params p = greedy_params();
    eng_sampler *s = make(&p, 6);
    CHECK(s);
    if (!s) return;
    const float l1[6] = {0.1f, 3.0f, -1.0f, 2.9f, 0.0f, 1.0f};
    CHECK_EQ_INT(eng_sampler_sample(s, l1), 1);
    const float l2[6] = {1.0f, 5.0f, 2.0f, 5.0f, 5.0f, 0.0f};
    CHECK_EQ_INT(eng_sampler_sample(s, l2), 1);
    const float l3[6] = {-2.0f, -2.0f, -3.0f, -4.0f, -5.0f, -6.0f};
    CHECK_EQ_INT(eng_sampler_sample(s, l3), 0);
    eng_sampler_free(s);
}

TEST(sampler_does_not_modify_logits)
{
    eng_sampler_params p;
    eng_sampler_params_default(&p);
    p.has_seed = true;
    eng_sampler *s = make(&p, 4);
    if (!s) return;
    float l[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    eng_sampler_accept(s, 3);
    (void)eng_sampler_sample(s, l);
    CHECK(l[0] == 1.0f && l[1] == 2.0f && l[2] == 3.0f && l[3] == 4.0f);
    eng_sampler_free(s);
}

TEST(sampler_repeat_penalty_divides_positive_multiplies_negative)
{
    eng_sampler_params p = greedy_params();
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 64;
    eng_sampler *s = make(&p, 3);
    if (!s) return;
    /* id 0: 3.0 → 1.5 < 2.0, so id 1 wins once 0 was seen. */
    const float l[3] = {3.0f, 2.0f, -1.0f};
    CHECK_EQ_INT(eng_sampler_sample(s, l), 0);
    eng_sampler_accept(s, 0);
    CHECK_EQ_INT(eng_sampler_sample(s, l), 1);
    /* negative: -1 * 2 = -2 stays below; with ids 0 and 1 penalized to 1.5 and 1.0, a
     * negative logit that is multiplied gets worse, never better. */
    const float neg[3] = {-1.0f, -1.5f, -1.9f};
    eng_sampler_reset(s);
    eng_sampler_accept(s, 0);
    /* -1 → -2: now -1.5 is best. */
    CHECK_EQ_INT(eng_sampler_sample(s, neg), 1);
    eng_sampler_free(s);
}

TEST(sampler_repeat_window_forgets_old_tokens)
{
    eng_sampler_params p = greedy_params();
    p.repeat_penalty = 10.0f;
    p.repeat_last_n = 2;
    eng_sampler *s = make(&p, 4);
    if (!s) return;
    const float l[4] = {4.0f, 3.0f, 2.0f, 1.0f};
    eng_sampler_accept(s, 0);
    CHECK_EQ_INT(eng_sampler_sample(s, l), 1);
    eng_sampler_accept(s, 1);
    CHECK_EQ_INT(eng_sampler_sample(s, l), 2);
    eng_sampler_accept(s, 2); /* window is now {1, 2}: 0 is free again */
    CHECK_EQ_INT(eng_sampler_sample(s, l), 0);
    eng_sampler_reset(s);
    CHECK_EQ_INT(eng_sampler_sample(s, l), 0);
    eng_sampler_free(s);
}

TEST(sampler_repeat_last_n_zero_disables_penalties)
{
    eng_sampler_params p = greedy_params();
    p.repeat_penalty = 10.0f;
    p.presence_penalty = 5.0f;
    p.repeat_last_n = 0;
    eng_sampler *s = make(&p, 3);
    if (!s) return;
    const float l[3] = {1.0f, 0.5f, 0.0f};
    eng_sampler_accept(s, 0);
    CHECK_EQ_INT(eng_sampler_sample(s, l), 0);
    eng_sampler_free(s);
}

TEST(sampler_whole_context_window_counts_everything)
{
    eng_sampler_params p = greedy_params();
    p.frequency_penalty = 1.0f;
    p.repeat_last_n = -1;
    eng_sampler *s = make(&p, 3);
    if (!s) return;
    const float l[3] = {5.0f, 2.5f, 0.0f};
    for (int i = 0; i < 3; i++)
        eng_sampler_accept(s, 0); /* 5 - 3 = 2 < 2.5 */
    CHECK_EQ_INT(eng_sampler_sample(s, l), 1);
    eng_sampler_free(s);
}

TEST(sampler_presence_and_frequency_penalties)
{
    eng_sampler_params p = greedy_params();
    p.presence_penalty = 0.6f;
    p.repeat_last_n = 64;
    eng_sampler *s = make(&p, 3);
    if (!s) return;
    const float l[3] = {1.0f, 0.5f, 0.0f};
    eng_sampler_accept(s, 0);
    eng_sampler_accept(s, 0);
    CHECK_EQ_INT(eng_sampler_sample(s, l), 1); /* 1 - 0.6 = 0.4 < 0.5 */
    eng_sampler_free(s);

    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.3f;
    s = make(&p, 3);
    if (!s) return;
    eng_sampler_accept(s, 0);
    CHECK_EQ_INT(eng_sampler_sample(s, l), 0); /* 1 - 0.3 = 0.7 */
    eng_sampler_accept(s, 0);
    CHECK_EQ_INT(eng_sampler_sample(s, l), 1); /* 1 - 0.6 = 0.4 */
    eng_sampler_free(s);
}

/* Draws n samples and counts each id. */
static void histogram(eng_sampler *s, const float *l, int64_t n_vocab, int n, int *hist)
{
    for (int64_t i = 0; i < n_vocab; i++)
        hist[i] = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = eng_sampler_sample(s, l);
        if (id >= 0 && id < n_vocab) hist[id]++;
    }
}

static eng_sampler_params plain_params(float temp)
{
    eng_sampler_params p;
    eng_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.has_seed = true;
    p.seed = 1234;
    return p;
}

TEST(sampler_distribution_matches_softmax)
{
    eng_sampler_params p = plain_params(1.0f);
    eng_sampler *s = make(&p, 4);
    if (!s) return;
    /* probabilities 0.1, 0.2, 0.3, 0.4 */
    const float l[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    enum { N = 20000 };
    int hist[4];
    histogram(s, l, 4, N, hist);
    const double want[4] = {0.1, 0.2, 0.3, 0.4};
    for (int i = 0; i < 4; i++) {
        double f = (double)hist[i] / N;
        CHECK_MSG(fabs(f - want[i]) < 0.015, "id %d: %.4f vs %.2f", i, f, want[i]);
    }
    eng_sampler_free(s);
}

TEST(sampler_temperature_sharpens_and_flattens)
{
    const float l[2] = {1.0f, 0.0f}; /* T=1: 0.731; T=0.5: 0.881; T=2: 0.622 */
    const float temps[3] = {0.5f, 1.0f, 2.0f};
    const double want[3] = {0.8808, 0.7311, 0.6225};
    for (int t = 0; t < 3; t++) {
        eng_sampler_params p = plain_params(temps[t]);
        eng_sampler *s = make(&p, 2);
        if (!s) return;
        enum { N = 20000 };
        int hist[2];
        histogram(s, l, 2, N, hist);
        double f = (double)hist[0] / N;
        CHECK_MSG(fabs(f - want[t]) < 0.015, "T=%g: %.4f vs %.4f", (double)temps[t], f, want[t]);
        eng_sampler_free(s);
    }
}

TEST(sampler_top_k_keeps_only_k_best)
{
    eng_sampler_params p = plain_params(1.0f);
    p.top_k = 2;
    eng_sampler *s = make(&p, 5);
    if (!s) return;
    const float l[5] = {0.0f, 2.0f, 0.0f, 2.0f, 1.9f};
    enum { N = 4000 };
    int hist[5];
    histogram(s, l, 5, N, hist);
    CHECK_EQ_INT(hist[0] + hist[2] + hist[4], 0);
    CHECK(hist[1] > N / 3 && hist[3] > N / 3);
    eng_sampler_free(s);
}

TEST(sampler_top_p_keeps_the_crossing_token)
{
    eng_sampler_params p = plain_params(1.0f);
    p.top_p = 0.5f;
    eng_sampler *s = make(&p, 4);
    if (!s) return;
    /* probs 0.4, 0.3, 0.2, 0.1: cumulative 0.4 < 0.5, 0.7 >= 0.5 → keep ids 3 and 2. */
    const float l[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    enum { N = 7000 };
    int hist[4];
    histogram(s, l, 4, N, hist);
    CHECK_EQ_INT(hist[0] + hist[1], 0);
    double f3 = (double)hist[3] / N; /* 0.4 / 0.7 */
    CHECK_MSG(fabs(f3 - 4.0 / 7.0) < 0.02, "%.4f", f3);
    eng_sampler_free(s);
}

TEST(sampler_top_p_is_over_the_top_k_set)
{
    eng_sampler_params p = plain_params(1.0f);
    p.top_k = 2;
    p.top_p = 0.6f;
    eng_sampler *s = make(&p, 4);
    if (!s) return;
    /* top_k=2 leaves 0.4 and 0.3 → renormalized 0.571, 0.429: 0.571 < 0.6 so both stay. */
    const float l[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    enum { N = 4000 };
    int hist[4];
    histogram(s, l, 4, N, hist);
    CHECK_EQ_INT(hist[0] + hist[1], 0);
    CHECK(hist[2] > N / 4 && hist[3] > N / 4);
    eng_sampler_free(s);
}

TEST(sampler_min_p_drops_unlikely_tokens)
{
    eng_sampler_params p = plain_params(1.0f);
    p.min_p = 0.5f;
    eng_sampler *s = make(&p, 4);
    if (!s) return;
    /* relative to the best (0.4): 0.3 (0.75) and 0.2 (0.5) stay, 0.1 (0.25) goes. */
    const float l[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    enum { N = 4000 };
    int hist[4];
    histogram(s, l, 4, N, hist);
    CHECK_EQ_INT(hist[0], 0);
    CHECK(hist[1] > 0 && hist[2] > 0 && hist[3] > 0);
    eng_sampler_free(s);
}

TEST(sampler_same_seed_same_sequence_and_reset_repeats)
{
    eng_sampler_params p;
    eng_sampler_params_default(&p);
    p.has_seed = true;
    p.seed = 7;
    enum { V = 50, N = 64 };
    float l[V];
    for (int i = 0; i < V; i++)
        l[i] = (float)((i * 37) % 11) * 0.3f;
    eng_sampler *a = make(&p, V), *b = make(&p, V);
    if (!a || !b) return;
    int32_t sa[N], sb[N];
    bool differs_from_first = false;
    for (int i = 0; i < N; i++) {
        sa[i] = eng_sampler_sample(a, l);
        sb[i] = eng_sampler_sample(b, l);
        if (sa[i] != sa[0]) differs_from_first = true;
    }
    CHECK(memcmp(sa, sb, sizeof sa) == 0);
    CHECK(differs_from_first); /* it does sample, not pick one token */
    eng_sampler_reset(a);
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(eng_sampler_sample(a, l), sa[i]);
    eng_sampler_free(a);
    eng_sampler_free(b);

    p.seed = 8;
    eng_sampler *c = make(&p, V);
    if (!c) return;
    int same = 0;
    for (int i = 0; i < N; i++)
        same += eng_sampler_sample(c, l) == sa[i];
    CHECK(same < N);
    eng_sampler_free(c);
}

TEST(sampler_large_vocab_top_k_picks_from_best)
{
    eng_sampler_params p;
    eng_sampler_params_default(&p);
    p.has_seed = true;
    p.seed = 3;
    p.top_k = 5;
    p.top_p = 1.0f;
    p.repeat_penalty = 1.0f;
    enum { V = 128256 };
    float *l = malloc(V * sizeof *l);
    eng_sampler *s = make(&p, V);
    if (!l || !s) {
        free(l);
        eng_sampler_free(s);
        CHECK(0);
        return;
    }
    for (int i = 0; i < V; i++)
        l[i] = (float)(i % 1000) * 0.001f;
    for (int i = 0; i < 5; i++)
        l[1000 + i * 7] = 10.0f;
    for (int i = 0; i < 200; i++) {
        int32_t id = eng_sampler_sample(s, l);
        CHECK(id >= 1000 && id <= 1028 && (id - 1000) % 7 == 0);
    }
    eng_sampler_free(s);
    free(l);
}

TEST(sampler_handles_nan_and_infinite_logits)
{
    eng_sampler_params p = plain_params(1.0f);
    eng_sampler *s = make(&p, 3);
    if (!s) return;
    const float l[3] = {NAN, -INFINITY, 1.0f};
    for (int i = 0; i < 50; i++)
        CHECK_EQ_INT(eng_sampler_sample(s, l), 2);
    const float all[3] = {-INFINITY, -INFINITY, -INFINITY};
    int32_t id = eng_sampler_sample(s, all);
    CHECK(id >= 0 && id < 3);
    eng_sampler_free(s);
}

TEST(sampler_rejects_bad_parameters)
{
    eng_sampler_params p;
    eng_sampler_params_default(&p);
    eng_sampler *s = NULL;
    core_err err;
    CHECK_EQ_INT(eng_sampler_new(&s, &p, 0, &err), CORE_INVALID);
    p.temperature = -1.0f;
    CHECK_EQ_INT(eng_sampler_new(&s, &p, 10, &err), CORE_INVALID);
    CHECK_CONTAINS(err.msg, "temperature");
    eng_sampler_params_default(&p);
    p.repeat_last_n = -5;
    CHECK_EQ_INT(eng_sampler_new(&s, &p, 10, &err), CORE_INVALID);
    CHECK(s == NULL);
}

int main(void)
{
    RUN(sampler_defaults_are_ollamas);
    RUN(sampler_greedy_takes_argmax_ties_to_lowest_id);
    RUN(sampler_does_not_modify_logits);
    RUN(sampler_repeat_penalty_divides_positive_multiplies_negative);
    RUN(sampler_repeat_window_forgets_old_tokens);
    RUN(sampler_repeat_last_n_zero_disables_penalties);
    RUN(sampler_whole_context_window_counts_everything);
    RUN(sampler_presence_and_frequency_penalties);
    RUN(sampler_distribution_matches_softmax);
    RUN(sampler_temperature_sharpens_and_flattens);
    RUN(sampler_top_k_keeps_only_k_best);
    RUN(sampler_top_p_keeps_the_crossing_token);
    RUN(sampler_top_p_is_over_the_top_k_set);
    RUN(sampler_min_p_drops_unlikely_tokens);
    RUN(sampler_same_seed_same_sequence_and_reset_repeats);
    RUN(sampler_large_vocab_top_k_picks_from_best);
    RUN(sampler_handles_nan_and_infinite_logits);
    RUN(sampler_rejects_bad_parameters);
    return test_summary();
}
