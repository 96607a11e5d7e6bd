/* obs.c — the residency event log (a bounded ring fed by the scheduler's event hook), stats
 * snapshots with process and machine memory figures, and their JSON and Prometheus forms.
 *
 * Owner: the log's ring and counters are guarded by its mutex; snapshots are plain values
 * owned by the caller. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"

// ---- event log ----

#define OBS_N_KINDS 6

struct obs_events {
    pthread_mutex_t mu;
    obs_event *ring;
    size_t cap;
    uint64_t next_seq; /* seq of the next event; the ring holds [next_seq - n, next_seq) */
    size_t n;
    uint64_t counts[OBS_N_KINDS];
};

int obs_events_new(obs_events **out, size_t cap, core_err *err)
{
    if (!cap) cap = 256;
    obs_events *log = calloc(1, sizeof *log);
    if (log) log->ring = calloc(cap, sizeof *log->ring);
    if (!log || !log->ring) {
        free(log);
        return core_err_set(err, CORE_NOMEM, "out of memory for the event log");
    }
    pthread_mutex_init(&log->mu, NULL);
    log->cap = cap;
    log->next_seq = 1;
    *out = log;
    return CORE_OK;
}

void obs_events_free(obs_events *log)
{
    if (!log) return;
    pthread_mutex_destroy(&log->mu);
    free(log->ring);
    free(log);
}

void obs_events_hook(void *ud, const sched_event_rec *ev)
{
    obs_events *log = ud;
    if (!log || !ev) return;
    pthread_mutex_lock(&log->mu);
    obs_event *e = &log->ring[(log->next_seq - 1) % log->cap];
    e->seq = log->next_seq++;
    e->kind = ev->kind;
    e->wall_ns = ev->wall_ns;
    snprintf(e->name, sizeof e->name, "%s", ev->name ? ev->name : "");
    snprintf(e->reason, sizeof e->reason, "%s", ev->reason ? ev->reason : "");
    e->bytes = ev->bytes;
    e->duration_ns = ev->duration_ns;
    if (log->n < log->cap) log->n++;
    if (ev->kind >= 0 && ev->kind < OBS_N_KINDS) log->counts[ev->kind]++;
    pthread_mutex_unlock(&log->mu);
}

size_t obs_events_since(obs_events *log, uint64_t after, obs_event *out, size_t cap)
{
    pthread_mutex_lock(&log->mu);
    uint64_t first = log->next_seq - log->n;
    if (after + 1 > first) first = after + 1;
    size_t k = 0;
    for (uint64_t s = first; s < log->next_seq && k < cap; s++)
        out[k++] = log->ring[(s - 1) % log->cap];
    pthread_mutex_unlock(&log->mu);
    return k;
}

void obs_events_counts(obs_events *log, uint64_t counts[6])
{
    pthread_mutex_lock(&log->mu);
    memcpy(counts, log->counts, sizeof log->counts);
    pthread_mutex_unlock(&log->mu);
}

// ---- stats ----

int obs_stats_collect(sched *s, obs_stats *out, core_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = sched_snapshot(s, &out->sched, err);
    if (rc) return rc;
    out->wall_ns = core_wall_ns();
    out->rss_bytes = core_rss_bytes();
    out->mem_available = core_mem_available_bytes();
    out->ram_bytes = core_ram_bytes();
    return CORE_OK;
}

void obs_stats_deinit(obs_stats *st)
{
    if (!st) return;
    sched_snap_deinit(&st->sched);
}

/* Appends s as a JSON string. */
static void json_str(core_buf *b, const char *s)
{
    core_buf_append_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') core_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20) core_buf_printf(b, "\\u%04x", *p);
        else core_buf_append(b, p, 1);
    }
    core_buf_append_str(b, "\"");
}

static void json_time(core_buf *b, int64_t wall_ns)
{
    char t[48];
    if (wall_ns == SCHED_FOREVER) {
        /* Ollama shows a forever keep_alive as now + 2^63-1 ns (about 292 years, "2318-...").
         * That instant does not fit in int64 ns since the epoch, so format now and move the
         * year: a display hack, good to within a leap day. */
        core_time_format(core_wall_ns(), true, t, sizeof t);
        int year = atoi(t);
        char out[64];
        snprintf(out, sizeof out, "%04d%.40s", (year + 292) % 10000, t + 4);
        json_str(b, out);
        return;
    }
    if (wall_ns <= 0) {
        core_buf_append_str(b, "null");
        return;
    }
    core_time_format(wall_ns, true, t, sizeof t);
    json_str(b, t);
}

static void model_json(core_buf *b, const sched_model_info *m)
{
    char ka[32];
    core_duration_format(m->keep_alive_ns, ka, sizeof ka);
    core_buf_append_str(b, "{\"name\":");
    json_str(b, m->name);
    core_buf_append_str(b, ",\"model\":");
    json_str(b, m->name);
    core_buf_append_str(b, ",\"digest\":");
    json_str(b, m->digest);
    core_buf_append_str(b, ",\"state\":");
    json_str(b, m->state == SCHED_STATE_READY ? (m->in_flight ? "busy" : "idle")
                                              : sched_state_name(m->state));
    core_buf_printf(b, ",\"in_flight\":%d,\"slots\":%d,\"slots_busy\":%d,\"waiting\":%d",
                    m->in_flight, m->slots, m->slots_busy, m->waiting);
    core_buf_append_str(b, ",\"keep_alive\":");
    json_str(b, ka);
    core_buf_printf(b, ",\"keep_alive_ns\":%lld,\"keep_alive_source\":",
                    (long long)(m->pinned ? -1 : m->keep_alive_ns));
    json_str(b, sched_ka_source_name(m->keep_alive_source));
    core_buf_printf(b, ",\"pinned\":%s,\"expires_at\":", m->pinned ? "true" : "false");
    json_time(b, m->expires_at);
    core_buf_append_str(b, ",\"last_used\":");
    json_time(b, m->last_used);
    core_buf_append_str(b, ",\"loaded_at\":");
    json_time(b, m->loaded_at);
    core_buf_printf(b,
                    ",\"context_length\":%lld,\"size\":%zu,\"size_estimated\":%zu,"
                    "\"size_measured\":%zu,\"weights_bytes\":%zu,\"kv_bytes\":%zu,"
                    "\"requests\":%llu,\"warm_hits\":%llu,\"cold_loads\":%llu,"
                    "\"last_load_duration\":%lld,\"tokens_generated\":%llu}",
                    (long long)m->num_ctx, m->size_bytes, m->est_bytes, m->measured_bytes,
                    m->weight_bytes, m->kv_bytes, (unsigned long long)m->requests,
                    (unsigned long long)m->warm_hits, (unsigned long long)m->cold_loads,
                    (long long)m->last_load_ns, (unsigned long long)m->tokens_generated);
}

int obs_stats_json(const obs_stats *st, core_buf *b)
{
    const sched_snap *s = &st->sched;
    core_buf_append_str(b, "{\"models\":[");
    for (size_t i = 0; i < s->n_models; i++) {
        if (i) core_buf_append_str(b, ",");
        model_json(b, &s->models[i]);
    }
    core_buf_printf(b, "],\"memory\":{\"budget\":%zu,\"budget_source\":", s->budget_bytes);
    json_str(b, core_budget_source_name(s->budget_source));
    core_buf_printf(b, ",\"models\":%zu,\"rss\":%zu,\"available\":%zu,\"ram\":%zu}",
                    s->models_bytes, st->rss_bytes, st->mem_available, st->ram_bytes);
    core_buf_printf(b, ",\"queue\":{\"depth\":%d,\"max\":%d}", s->queue_depth, s->max_queue);
    core_buf_printf(b, ",\"max_loaded_models\":%d,\"num_parallel\":%d", s->max_loaded,
                    s->num_parallel);
    core_buf_printf(b,
                    ",\"totals\":{\"loads\":%llu,\"load_failures\":%llu,\"unloads\":%llu,"
                    "\"evictions\":%llu,\"expiries\":%llu,\"rejected_busy\":%llu,"
                    "\"requests\":%llu}}",
                    (unsigned long long)s->loads, (unsigned long long)s->load_failures,
                    (unsigned long long)s->unloads, (unsigned long long)s->evictions,
                    (unsigned long long)s->expiries, (unsigned long long)s->rejected_busy,
                    (unsigned long long)s->requests);
    return b->data ? CORE_OK : CORE_NOMEM;
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void prom_label(core_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') core_buf_printf(b, "\\%c", *s);
        else if (*s == '\n') core_buf_append_str(b, "\\n");
        else core_buf_append(b, s, 1);
    }
}

int obs_metrics_text(const obs_stats *st, core_buf *b)
{
    const sched_snap *s = &st->sched;
    static const struct {
        const char *name, *help;
    } per[] = {
        {"dwell_model_resident_bytes", "Bytes a loaded model uses (measured, else estimated)."},
        {"dwell_model_in_flight", "Requests holding the model."},
        {"dwell_model_requests_total", "Requests served by the model."},
        {"dwell_model_cold_loads_total", "Loads of the model."},
    };
    for (size_t k = 0; k < sizeof per / sizeof per[0]; k++) {
        core_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", per[k].name, per[k].help,
                        per[k].name, strstr(per[k].name, "_total") ? "counter" : "gauge");
        for (size_t i = 0; i < s->n_models; i++) {
            const sched_model_info *m = &s->models[i];
            unsigned long long v = k == 0   ? m->size_bytes
                                   : k == 1 ? (unsigned long long)m->in_flight
                                   : k == 2 ? m->requests
                                            : m->cold_loads;
            core_buf_printf(b, "%s{model=\"", per[k].name);
            prom_label(b, m->name);
            core_buf_printf(b, "\"} %llu\n", v);
        }
    }
    core_buf_printf(b,
                    "# TYPE dwell_memory_budget_bytes gauge\ndwell_memory_budget_bytes %zu\n"
                    "# TYPE dwell_models_bytes gauge\ndwell_models_bytes %zu\n"
                    "# TYPE dwell_process_rss_bytes gauge\ndwell_process_rss_bytes %zu\n"
                    "# TYPE dwell_mem_available_bytes gauge\ndwell_mem_available_bytes %zu\n"
                    "# TYPE dwell_queue_depth gauge\ndwell_queue_depth %d\n",
                    s->budget_bytes, s->models_bytes, st->rss_bytes, st->mem_available,
                    s->queue_depth);
    core_buf_printf(b,
                    "# TYPE dwell_loads_total counter\ndwell_loads_total %llu\n"
                    "# TYPE dwell_load_failures_total counter\ndwell_load_failures_total %llu\n"
                    "# TYPE dwell_unloads_total counter\ndwell_unloads_total %llu\n"
                    "# TYPE dwell_evictions_total counter\ndwell_evictions_total %llu\n"
                    "# TYPE dwell_expiries_total counter\ndwell_expiries_total %llu\n"
                    "# TYPE dwell_rejected_busy_total counter\ndwell_rejected_busy_total %llu\n"
                    "# TYPE dwell_requests_total counter\ndwell_requests_total %llu\n",
                    (unsigned long long)s->loads, (unsigned long long)s->load_failures,
                    (unsigned long long)s->unloads, (unsigned long long)s->evictions,
                    (unsigned long long)s->expiries, (unsigned long long)s->rejected_busy,
                    (unsigned long long)s->requests);
    return b->data ? CORE_OK : CORE_NOMEM;
}
