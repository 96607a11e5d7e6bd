/* sampler.c — picking the next token from logits.
 *
 * The chain is llama.cpp's (and so Ollama's) default order:
 *   penalties (repeat, presence, frequency over the last repeat_last_n tokens)
 *   → top_k → top_p → min_p → temperature → draw from the softmax.
 * temperature 0 is greedy: the argmax of the penalized logits, ties to the lowest id.
 *
 * Design: every buffer is sized in eng_sampler_new (n_vocab entries), so
 * eng_sampler_sample allocates nothing. Candidates are kept in a binary max-heap ordered by
 * (logit descending, id ascending) and popped lazily: top_k = 40 over a 128k vocabulary costs
 * one O(n) heapify plus 40 pops, not a full sort. The heap order makes every cut (and so the
 * result for a given seed) independent of how ties happen to be laid out in memory.
 *
 * Randomness: splitmix64 (ref: Steele, Lea, Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014), seeded from params.seed or from the clock; eng_sampler_reset
 * restores the seeded state so a reset sampler repeats itself.
 *
 * Owner: one thread at a time (a scheduler slot). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

// ---- types ----

typedef struct eng_cand {
    float logit;
    int32_t id;
} eng_cand;

struct eng_sampler {
    eng_sampler_params p;
    int64_t n_vocab;
    uint64_t seed;    /* the seed the RNG restarts from on reset */
    uint64_t rng;     /* splitmix64 state */
    float *work;      /* [n_vocab] f32: penalized logits */
    eng_cand *heap;   /* [n_vocab]: candidate max-heap */
    eng_cand *kept;   /* [n_vocab]: candidates that survive the cuts, best first */
    float *prob;      /* [n_vocab]: their probabilities at the end */
    uint32_t *counts; /* [n_vocab]: occurrences of each id in the penalty window */
    int32_t *ring;    /* [repeat_last_n]: the window, when repeat_last_n > 0 */
    int64_t ring_cap, ring_len, ring_head;
};

// ---- random numbers ----

static uint64_t smix_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double smix_uniform(uint64_t *state)
{
    return (double)(smix_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

// ---- candidate heap ----

/* True when a ranks before b: higher logit, or the same logit and a lower id. */
static bool cand_before(eng_cand a, eng_cand b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static void heap_sift_down(eng_cand *h, int64_t n, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < n && cand_before(h[l], h[best])) best = l;
        if (r < n && cand_before(h[r], h[best])) best = r;
        if (best == i) return;
        eng_cand t = h[i];
        h[i] = h[best];
        h[best] = t;
        i = best;
    }
}

static void heap_build(eng_cand *h, int64_t n)
{
    for (int64_t i = n / 2 - 1; i >= 0; i--)
        heap_sift_down(h, n, i);
}

static eng_cand heap_pop(eng_cand *h, int64_t *n)
{
    eng_cand top = h[0];
    h[0] = h[--*n];
    heap_sift_down(h, *n, 0);
    return top;
}

// ---- penalties ----

static bool penalties_active(const eng_sampler_params *p)
{
    return p->repeat_last_n != 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f ||
                                     p->frequency_penalty != 0.0f);
}

/* llama.cpp's penalties: a token seen in the window has its logit divided by repeat_penalty
 * when positive, multiplied when not; then count * frequency + presence is subtracted. */
static void apply_penalties(eng_sampler *s)
{
    const eng_sampler_params *p = &s->p;
    for (int64_t i = 0; i < s->n_vocab; i++) {
        uint32_t c = s->counts[i];
        if (c == 0) continue;
        float l = s->work[i];
        if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0.0f) {
            l = l <= 0.0f ? l * p->repeat_penalty : l / p->repeat_penalty;
        }
        l -= (float)c * p->frequency_penalty + p->presence_penalty;
        s->work[i] = l;
    }
}

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++) {
        if (x[i] > x[best]) best = i; /* strict: ties stay with the lowest id */
    }
    return (int32_t)best;
}

// ---- public ----

void eng_sampler_params_default(eng_sampler_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.9f;
    p->min_p = 0.0f;
    p->repeat_penalty = 1.1f;
    p->repeat_last_n = 64;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->seed = 0;
    p->has_seed = false;
}

int eng_sampler_new(eng_sampler **out, const eng_sampler_params *p, int64_t n_vocab, core_err *err)
{
    if (n_vocab <= 0 || n_vocab > INT32_MAX) {
        return core_err_set(err, CORE_INVALID, "sampler: vocabulary size %lld out of range",
                            (long long)n_vocab);
    }
    if (!isfinite(p->temperature) || p->temperature < 0.0f) {
        return core_err_set(err, CORE_INVALID, "sampler: temperature %g must be >= 0",
                            (double)p->temperature);
    }
    if (!isfinite(p->top_p) || !isfinite(p->min_p) || !isfinite(p->repeat_penalty) ||
        !isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty)) {
        return core_err_set(err, CORE_INVALID, "sampler: a parameter is not a finite number");
    }
    if (p->repeat_last_n < -1) {
        return core_err_set(err, CORE_INVALID, "sampler: repeat_last_n %d must be >= -1",
                            (int)p->repeat_last_n);
    }
    eng_sampler *s = calloc(1, sizeof *s);
    if (!s) return core_err_set(err, CORE_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    size_t n = (size_t)n_vocab;
    s->work = malloc(n * sizeof *s->work);
    s->heap = malloc(n * sizeof *s->heap);
    s->kept = malloc(n * sizeof *s->kept);
    s->prob = malloc(n * sizeof *s->prob);
    s->counts = calloc(n, sizeof *s->counts);
    if (p->repeat_last_n > 0) {
        s->ring_cap = p->repeat_last_n;
        s->ring = malloc((size_t)s->ring_cap * sizeof *s->ring);
    }
    if (!s->work || !s->heap || !s->kept || !s->prob || !s->counts || (s->ring_cap && !s->ring)) {
        eng_sampler_free(s);
        return core_err_set(err, CORE_NOMEM, "sampler: out of memory for %lld tokens",
                            (long long)n_vocab);
    }
    s->seed = p->has_seed ? p->seed : (uint64_t)core_wall_ns() ^ (uint64_t)(uintptr_t)s;
    s->rng = s->seed;
    *out = s;
    return CORE_OK;
}

void eng_sampler_free(eng_sampler *s)
{
    if (!s) return;
    free(s->work);
    free(s->heap);
    free(s->kept);
    free(s->prob);
    free(s->counts);
    free(s->ring);
    free(s);
}

void eng_sampler_accept(eng_sampler *s, int32_t id)
{
    if (id < 0 || id >= s->n_vocab) return;
    if (s->ring_cap > 0) {
        if (s->ring_len == s->ring_cap) {
            int32_t old = s->ring[s->ring_head];
            s->counts[old]--;
            s->ring[s->ring_head] = id;
            s->ring_head = (s->ring_head + 1) % s->ring_cap;
        } else {
            s->ring[(s->ring_head + s->ring_len) % s->ring_cap] = id;
            s->ring_len++;
        }
        s->counts[id]++;
    } else if (s->p.repeat_last_n == -1) {
        if (s->counts[id] < UINT32_MAX) s->counts[id]++;
    }
}

void eng_sampler_reset(eng_sampler *s)
{
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
    s->ring_len = 0;
    s->ring_head = 0;
    s->rng = s->seed;
}

int32_t eng_sampler_sample(eng_sampler *s, const float *logits)
{
    const eng_sampler_params *p = &s->p;
    int64_t n = s->n_vocab;
    memcpy(s->work, logits, (size_t)n * sizeof *s->work);
    /* NaN would poison every comparison below: treat it as impossible. */
    for (int64_t i = 0; i < n; i++) {
        if (isnan(s->work[i])) s->work[i] = -INFINITY;
    }
    if (penalties_active(p)) apply_penalties(s);
    if (p->temperature <= 0.0f) return argmax(s->work, n);

    for (int64_t i = 0; i < n; i++)
        s->heap[i] = (eng_cand){s->work[i], (int32_t)i};
    int64_t n_heap = n;
    heap_build(s->heap, n_heap);

    /* top_k: the k best become the candidate set. Softmax for top_p is over that set. */
    int64_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    float max_logit = s->heap[0].logit;
    if (!isfinite(max_logit)) return s->heap[0].id; /* all -inf, or one +inf */
    int64_t n_kept = 0;
    double sum = 0.0;
    if (k < n) {
        for (int64_t i = 0; i < k; i++) {
            s->kept[i] = heap_pop(s->heap, &n_heap);
            sum += exp((double)s->kept[i].logit - max_logit);
        }
        n_kept = k;
    } else {
        for (int64_t i = 0; i < n; i++)
            sum += exp((double)s->work[i] - max_logit);
    }

    /* top_p and min_p both keep a prefix of the ranked candidates: walk it once. top_p keeps
     * the token whose probability takes the cumulative sum to p (llama.cpp); min_p keeps
     * tokens with logit >= max + log(min_p), i.e. probability >= min_p * max probability. */
    bool use_top_p = p->top_p < 1.0f;
    float min_logit = p->min_p > 0.0f ? max_logit + logf(p->min_p) : -INFINITY;
    double cum = 0.0;
    int64_t m = 0;
    for (;; m++) {
        eng_cand c;
        if (m < n_kept) {
            c = s->kept[m];
        } else if (k == n && n_heap > 0) {
            c = heap_pop(s->heap, &n_heap);
            s->kept[m] = c;
            n_kept = m + 1;
        } else {
            break;
        }
        if (m > 0 && c.logit < min_logit) break;
        if (m > 0 && use_top_p && cum >= p->top_p) break;
        cum += exp((double)c.logit - max_logit) / sum;
    }
    if (m == 0) m = 1;

    /* temperature, softmax over the survivors, draw. */
    double inv_t = 1.0 / p->temperature, total = 0.0;
    for (int64_t i = 0; i < m; i++) {
        double e = exp(((double)s->kept[i].logit - max_logit) * inv_t);
        if (!isfinite(e)) e = 0.0;
        s->prob[i] = (float)e;
        total += e;
    }
    if (!(total > 0.0)) return s->kept[0].id;
    double r = smix_uniform(&s->rng) * total, acc = 0.0;
    for (int64_t i = 0; i < m; i++) {
        acc += s->prob[i];
        if (r < acc) return s->kept[i].id;
    }
    return s->kept[m - 1].id;
}
