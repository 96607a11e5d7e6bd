/* metrics.c — GET /metrics: a stats snapshot as Prometheus text exposition format 0.0.4.
 *
 * Every family is written as "# HELP", "# TYPE", then its samples, so each family's lines
 * are contiguous and typed before use. Counters end in _total and only grow while the server
 * runs (per-model ones are kept per weights file across reloads, so a model's series comes
 * back where it left off). Per-model series carry model="NAME" and digest="12 hex digits"
 * (the ID column of `dwell ps`): two loaded models can share a name for a while when a
 * model is re-created while its old weights are still loaded, and the digest keeps their
 * series apart. Label values are escaped as the format says (\\, \", \n).
 * ref: https://prometheus.io/docs/instrumenting/exposition_formats/ (text format 0.0.4).
 *
 * Owner: pure formatting of a caller-owned obs_stats; no state. Every write goes through a
 * `prom` that remembers the first failure to grow the buffer, so running out of memory is
 * reported once at the end instead of after each line. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"

#define PROM_INF ((double)INFINITY)

// ---- text primitives ----

typedef struct prom {
    core_buf *b;
    int rc; /* the first failure, CORE_OK while none */
} prom;

static void prom_put(prom *p, const char *s, size_t n)
{
    int rc = core_buf_append(p->b, s, n);
    if (rc && !p->rc) p->rc = rc;
}

static void prom_puts(prom *p, const char *s)
{
    prom_put(p, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void prom_printf(prom *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = core_buf_vprintf(p->b, fmt, ap);
    va_end(ap);
    if (rc && !p->rc) p->rc = rc;
}

/* A label value or HELP text: backslash and newline escaped, and quotes in label values. */
static void prom_escape(prom *p, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\') prom_puts(p, "\\\\");
        else if (*s == '\n') prom_puts(p, "\\n");
        else if (*s == '"' && quote) prom_puts(p, "\\\"");
        else prom_put(p, s, 1);
    }
}

static void prom_family(prom *p, const char *name, const char *type, const char *help)
{
    prom_printf(p, "# HELP %s ", name);
    prom_escape(p, help, false);
    prom_printf(p, "\n# TYPE %s %s\n", name, type);
}

/* A sample value: integers exactly, "+Inf" for infinity, else 12 significant digits. */
static void prom_value(prom *p, double v)
{
    if (v == PROM_INF) prom_puts(p, " +Inf\n");
    else if (v > -9e15 && v < 9e15 && v == (double)(int64_t)v)
        prom_printf(p, " %lld\n", (long long)v);
    else prom_printf(p, " %.12g\n", v);
}

/* name{labels} value, where labels is already "k=\"v\",…" (may be empty). */
static void prom_sample(prom *p, const char *name, const char *labels, double v)
{
    prom_puts(p, name);
    if (labels && *labels) prom_printf(p, "{%s}", labels);
    prom_value(p, v);
}

static void prom_single(prom *p, const char *name, const char *type, const char *help,
                        double v)
{
    prom_family(p, name, type, help);
    prom_sample(p, name, NULL, v);
}

// ---- per-model families ----

static double ns_to_s(int64_t ns)
{
    return ns == SCHED_FOREVER ? PROM_INF : (double)ns / 1e9;
}

/* Seconds until the keep-alive timer unloads the model: +Inf when pinned, 0 when it is
 * about to unload, the whole keep-alive while it is busy (the timer starts when it idles). */
static double ka_remaining(const sched_model_info *m, int64_t now)
{
    if (m->pinned || m->expires_at == SCHED_FOREVER) return PROM_INF;
    if (m->expires_at <= now) return 0;
    return (double)(m->expires_at - now) / 1e9;
}

enum {
    M_RESIDENT, M_MEASURED, M_ESTIMATED, M_SIZE, M_WEIGHT, M_KV, M_CTX, M_SLOTS, M_SLOTS_BUSY,
    M_IN_FLIGHT, M_WAITING, M_PINNED, M_KA, M_KA_LEFT, M_LAST_LOAD, M_REQUESTS, M_WARM, M_COLD,
    M_TOKENS, M_PROMPT_TOKENS, M_N
};

static const struct {
    const char *name, *help;
} g_model[M_N] = {
    [M_RESIDENT] = {"dwell_model_resident_bytes", "Bytes of the model in RAM now (mincore of "
                    "its weight mapping and context buffers); 0 while loading or unloading."},
    [M_MEASURED] = {"dwell_model_measured_bytes", "Bytes measured after loading (weights "
                    "mapped and context allocated); 0 while loading."},
    [M_ESTIMATED] = {"dwell_model_estimated_bytes", "Bytes estimated before loading (weights, "
                     "KV cache for num_ctx x slots, scratch)."},
    [M_SIZE] = {"dwell_model_size_bytes", "Bytes the memory budget counts for the model "
                "(measured if known, else the estimate)."},
    [M_WEIGHT] = {"dwell_model_weight_bytes", "Bytes of the model's weights."},
    [M_KV] = {"dwell_model_kv_bytes", "Bytes of the model's context allocations (KV cache and "
              "scratch)."},
    [M_CTX] = {"dwell_model_context_length", "Per-slot context length (num_ctx) loaded."},
    [M_SLOTS] = {"dwell_model_slots", "Parallel slots of the model (OLLAMA_NUM_PARALLEL)."},
    [M_SLOTS_BUSY] = {"dwell_model_slots_busy", "Slots decoding now."},
    [M_IN_FLIGHT] = {"dwell_model_in_flight", "Requests holding the model (running or waiting "
                     "for a slot)."},
    [M_WAITING] = {"dwell_model_waiting", "Requests waiting for a slot or for this load."},
    [M_PINNED] = {"dwell_model_pinned", "1 when the keep-alive is negative (never expires, "
                  "never evicted for another model)."},
    [M_KA] = {"dwell_model_keep_alive_seconds", "Keep-alive in force; +Inf when pinned."},
    [M_KA_LEFT] = {"dwell_model_keep_alive_remaining_seconds", "Seconds until the keep-alive "
                   "unloads the model; +Inf when pinned, the whole keep-alive while busy."},
    [M_LAST_LOAD] = {"dwell_model_last_load_seconds", "Duration of the model's last load."},
    [M_REQUESTS] = {"dwell_model_requests_total", "Requests served by the model (finished, "
                    "any outcome)."},
    [M_WARM] = {"dwell_model_warm_hits_total", "Requests that found the model loaded."},
    [M_COLD] = {"dwell_model_cold_loads_total", "Loads of the model."},
    [M_TOKENS] = {"dwell_model_tokens_generated_total", "Tokens generated by the model."},
    [M_PROMPT_TOKENS] = {"dwell_model_prompt_tokens_total", "Prompt and embedding input "
                         "tokens evaluated by the model (cached prefixes excluded)."},
};

static double model_value(int k, const sched_model_info *m, int64_t now)
{
    switch (k) {
    case M_RESIDENT: return (double)m->resident_bytes;
    case M_MEASURED: return (double)m->measured_bytes;
    case M_ESTIMATED: return (double)m->est_bytes;
    case M_SIZE: return (double)m->size_bytes;
    case M_WEIGHT: return (double)m->weight_bytes;
    case M_KV: return (double)m->kv_bytes;
    case M_CTX: return (double)m->num_ctx;
    case M_SLOTS: return m->slots;
    case M_SLOTS_BUSY: return m->slots_busy;
    case M_IN_FLIGHT: return m->in_flight;
    case M_WAITING: return m->waiting;
    case M_PINNED: return m->pinned ? 1 : 0;
    case M_KA: return ns_to_s(m->keep_alive_ns);
    case M_KA_LEFT: return ka_remaining(m, now);
    case M_LAST_LOAD: return (double)m->last_load_ns / 1e9;
    case M_REQUESTS: return (double)m->requests;
    case M_WARM: return (double)m->warm_hits;
    case M_COLD: return (double)m->cold_loads;
    case M_TOKENS: return (double)m->tokens_generated;
    default: return (double)m->prompt_tokens;
    }
}

/* model="NAME",digest="…": the labels of model m's series. */
static void model_labels(prom *p, const sched_model_info *m)
{
    prom_puts(p, "model=\"");
    prom_escape(p, m->name, true);
    prom_printf(p, "\",digest=\"%.12s\"", m->digest);
}

static const char *model_state(const sched_model_info *m)
{
    if (m->state == SCHED_STATE_READY) return m->in_flight > 0 ? "busy" : "idle";
    return sched_state_name(m->state);
}

static void models_text(prom *p, const obs_stats *st)
{
    const sched_snap *s = &st->sched;
    static const char *const states[] = {"loading", "idle", "busy", "unloading"};
    prom_family(p, "dwell_model_state", "gauge", "1 for the state the model is in (loading, "
                "idle, busy, unloading), 0 for the others.");
    for (size_t i = 0; i < s->n_models; i++) {
        for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
            prom_puts(p, "dwell_model_state{");
            model_labels(p, &s->models[i]);
            prom_printf(p, ",state=\"%s\"}", states[k]);
            prom_value(p, strcmp(states[k], model_state(&s->models[i])) == 0);
        }
    }
    for (int k = 0; k < M_N; k++) {
        const char *name = g_model[k].name;
        prom_family(p, name, strstr(name, "_total") ? "counter" : "gauge", g_model[k].help);
        for (size_t i = 0; i < s->n_models; i++) {
            prom_printf(p, "%s{", name);
            model_labels(p, &s->models[i]);
            prom_puts(p, "}");
            prom_value(p, model_value(k, &s->models[i], st->wall_ns));
        }
    }
}

// ---- server families ----

static void server_text(prom *p, const obs_stats *st)
{
    const sched_snap *s = &st->sched;
    prom_family(p, "dwell_build_info", "gauge", "Always 1; labels give dwell's version and the "
                "Ollama API version it matches.");
    prom_printf(p, "dwell_build_info{version=\"%s\",ollama_version=\"%s\"} 1\n",
                    DWELL_VERSION, DWELL_OLLAMA_VERSION);
    prom_single(p, "dwell_uptime_seconds", "gauge", "Seconds since the server started.",
                (double)s->uptime_ns / 1e9);
    prom_single(p, "dwell_memory_budget_bytes", "gauge", "Memory budget for all loaded models; "
                "+Inf when unlimited.", s->budget_bytes ? (double)s->budget_bytes : PROM_INF);
    prom_family(p, "dwell_memory_budget_info", "gauge", "Always 1; the source label says where "
                "the budget comes from.");
    prom_puts(p, "dwell_memory_budget_info{source=\"");
    prom_escape(p, core_budget_source_name(s->budget_source), true);
    prom_puts(p, "\"} 1\n");
    prom_single(p, "dwell_models_bytes", "gauge", "Sum of the loaded models' size_bytes (what "
                "the budget counts).", (double)s->models_bytes);
    prom_single(p, "dwell_models_loaded", "gauge", "Models loaded or loading.",
                (double)s->n_models);
    prom_single(p, "dwell_process_rss_bytes", "gauge", "Resident set size of the server.",
                (double)st->rss_bytes);
    prom_single(p, "dwell_mem_available_bytes", "gauge", "MemAvailable of /proc/meminfo.",
                (double)st->mem_available);
    prom_single(p, "dwell_ram_bytes", "gauge", "Physical RAM of the machine.",
                (double)st->ram_bytes);
    prom_single(p, "dwell_queue_depth", "gauge", "Requests waiting for a load or a slot.",
                s->queue_depth);
    prom_single(p, "dwell_max_queue", "gauge", "OLLAMA_MAX_QUEUE.", s->max_queue);
    prom_single(p, "dwell_max_loaded_models", "gauge", "OLLAMA_MAX_LOADED_MODELS (0 = no "
                "count cap).", s->max_loaded);
    prom_single(p, "dwell_num_parallel", "gauge", "OLLAMA_NUM_PARALLEL.", s->num_parallel);
    prom_single(p, "dwell_http_requests_in_flight", "gauge", "HTTP requests being handled, "
                "this scrape and open event streams included.", st->http_active);
    prom_single(p, "dwell_event_streams", "gauge", "Open GET /api/events streams.",
                st->event_streams);
}

static void totals_text(prom *p, const obs_stats *st)
{
    const sched_snap *s = &st->sched;
    static const char *const help[] = {
        "Models loaded.", "Loads that failed (bad file, out of memory, load timeout).",
        "Models unloaded, for any reason.", "Models evicted to make room for another.",
        "Models unloaded because their keep-alive expired.", "Requests finished."};
    static const char *const names[] = {
        "dwell_loads_total", "dwell_load_failures_total", "dwell_unloads_total",
        "dwell_evictions_total", "dwell_expiries_total", "dwell_requests_total"};
    const uint64_t v[] = {s->loads, s->load_failures, s->unloads, s->evictions, s->expiries,
                          s->requests};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        prom_single(p, names[k], "counter", help[k], (double)v[k]);
    prom_family(p, "dwell_rejections_total", "counter", "Requests refused at once: the queue "
                "was full (OLLAMA_MAX_QUEUE), only pinned models stood in the way, or the model "
                "is larger than the whole memory budget.");
    prom_sample(p, "dwell_rejections_total", "reason=\"queue_full\"", (double)s->rejected_busy);
    prom_sample(p, "dwell_rejections_total", "reason=\"pinned\"", (double)s->rejected_pinned);
    prom_sample(p, "dwell_rejections_total", "reason=\"too_large\"",
                (double)s->rejected_too_large);
}

int obs_metrics_text(const obs_stats *st, core_buf *out)
{
    prom p = {out, CORE_OK};
    server_text(&p, st);
    totals_text(&p, st);
    models_text(&p, st);
    return p.rc;
}
