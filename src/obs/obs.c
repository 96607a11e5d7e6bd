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

static json_t *time_or_null(int64_t wall_ns)
{
    if (!wall_ns) return json_null();
    char buf[48];
    if (wall_ns == SCHED_FOREVER) return json_string("forever");
    core_time_format(wall_ns, false, buf, sizeof buf);
    return json_string(buf);
}

static json_t *stats_model(const sched_model_info *mi)
{
    const char *state = sched_state_name(mi->state);
    if (mi->state == SCHED_STATE_READY) state = mi->in_flight > 0 ? "busy" : "idle";
    return json_pack(
        "{s:s,s:s,s:s,s:s,s:b,s:I,s:s,s:o,s:o,s:o,s:o,"
        "s:{s:I,s:I,s:I,s:I,s:I,s:I},s:I,s:I,s:i,s:i,s:i,s:i,"
        "s:I,s:I,s:I,s:I,s:I,s:I}",
        "name", mi->name, "path", mi->path, "digest", mi->digest, "state", state,
        "pinned", mi->pinned, "keep_alive_ns", (json_int_t)mi->keep_alive_ns,
        "keep_alive_source", sched_ka_source_name(mi->keep_alive_source),
        "expires_at", time_or_null(mi->expires_at), "last_used", time_or_null(mi->last_used),
        "loaded_at", time_or_null(mi->loaded_at), "kv_type",
        json_string(mi->kv_type == 1 ? "f32" : "f16"),
        "memory", "estimated_bytes", (json_int_t)mi->est_bytes, "measured_bytes",
        (json_int_t)mi->measured_bytes, "resident_bytes", (json_int_t)mi->resident_bytes,
        "size_bytes", (json_int_t)mi->size_bytes,
        "weight_bytes", (json_int_t)mi->weight_bytes, "kv_bytes", (json_int_t)mi->kv_bytes,
        "num_ctx", (json_int_t)mi->num_ctx, "n_ctx_train", (json_int_t)mi->n_ctx_train,
        "slots", (int)mi->slots, "slots_busy", (int)mi->slots_busy, "in_flight",
        (int)mi->in_flight, "waiting", (int)mi->waiting,
        "requests_served", (json_int_t)mi->requests, "warm_hits", (json_int_t)mi->warm_hits,
        "cold_loads", (json_int_t)mi->cold_loads, "last_load_ns",
        (json_int_t)mi->last_load_ns, "tokens_generated", (json_int_t)mi->tokens_generated,
        "keep_alive_ms", (json_int_t)(mi->keep_alive_ns == SCHED_FOREVER
                                          ? -1 : mi->keep_alive_ns / 1000000));
}

json_t *obs_stats_json(const obs_stats *st)
{
    const sched_snap *snap = &st->sched;
    json_t *models = json_array();
    for (size_t i = 0; i < snap->n_models; i++)
        json_array_append_new(models, stats_model(&snap->models[i]));
    char now[48];
    core_time_format(st->wall_ns, false, now, sizeof now);
    return json_pack(
        "{s:s,s:o,s:{s:I,s:s,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:i,"
        "s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
        "time", now, "models", models, "server",
        "budget_bytes", (json_int_t)snap->budget_bytes, "budget_source",
        core_budget_source_name(snap->budget_source), "models_bytes",
        (json_int_t)snap->models_bytes, "mem_available_bytes", (json_int_t)st->mem_available,
        "rss_bytes", (json_int_t)st->rss_bytes, "ram_bytes", (json_int_t)st->ram_bytes,
        "queue_depth", (int)snap->queue_depth, "max_queue", (int)snap->max_queue,
        "max_loaded", (int)snap->max_loaded, "num_parallel", (int)snap->num_parallel,
        "loads", (json_int_t)snap->loads, "load_failures", (json_int_t)snap->load_failures,
        "unloads", (json_int_t)snap->unloads, "evictions", (json_int_t)snap->evictions,
        "expiries", (json_int_t)snap->expiries, "rejected_busy",
        (json_int_t)snap->rejected_busy, "requests", (json_int_t)snap->requests);
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
