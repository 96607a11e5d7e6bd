/* obs.c — the residency event log (a bounded ring fed by the scheduler's event hook, with a
 * condition variable for readers that follow it live), stats snapshots with process and
 * machine figures, and their JSON form. The Prometheus form is in metrics.c.
 *
 * Owner: the log's ring and counters are guarded by its mutex; snapshots are plain values
 * owned by the caller. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/obs.h"

// ---- event log ----

#define OBS_N_KINDS 6

struct obs_events {
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* CLOCK_MONOTONIC; broadcast on every event and on close */
    obs_event *ring;
    size_t cap;
    uint64_t next_seq; /* seq of the next event; the ring holds [next_seq - n, next_seq) */
    size_t n;
    uint64_t counts[OBS_N_KINDS];
    bool closed;
};

int obs_events_new(obs_events **out, size_t cap, core_err *err)
{
    if (!cap) cap = OBS_EVENTS_CAP;
    obs_events *log = calloc(1, sizeof *log);
    if (log) log->ring = calloc(cap, sizeof *log->ring);
    if (!log || !log->ring) {
        free(log);
        return core_err_set(err, CORE_NOMEM, "out of memory for the event log");
    }
    pthread_mutex_init(&log->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&log->cv, &ca);
    pthread_condattr_destroy(&ca);
    log->cap = cap;
    log->next_seq = 1;
    *out = log;
    return CORE_OK;
}

void obs_events_free(obs_events *log)
{
    if (!log) return;
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->mu);
    free(log->ring);
    free(log);
}

/* Replaces every byte that is not part of a valid UTF-8 sequence with '?', so that a name or
 * reason cut by the fixed-size copy (or a file path in an error message) stays valid JSON
 * text. ref: RFC 3629 section 4 (no overlongs, no surrogates, nothing past U+10FFFF). */
static void utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
                 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = n > 0;
        for (size_t i = 1; ok && i < n; i++) ok = (p[i] & 0xC0) == 0x80;
        if (ok && n > 1) {
            uint32_t cp = *p & (0x7F >> n);
            for (size_t i = 1; i < n; i++) cp = cp << 6 | (p[i] & 0x3F);
            static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min[n] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
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
    utf8_clean(e->name);
    utf8_clean(e->reason);
    e->bytes = ev->bytes;
    e->duration_ns = ev->duration_ns;
    if (log->n < log->cap) log->n++;
    if (ev->kind >= 0 && ev->kind < OBS_N_KINDS) log->counts[ev->kind]++;
    pthread_cond_broadcast(&log->cv);
    pthread_mutex_unlock(&log->mu);
}

size_t obs_events_since(obs_events *log, uint64_t after, obs_event *out, size_t cap,
                        uint64_t *missed)
{
    pthread_mutex_lock(&log->mu);
    uint64_t oldest = log->next_seq - log->n;
    uint64_t first = after + 1 > oldest ? after + 1 : oldest;
    if (missed) *missed = after + 1 < oldest ? oldest - (after + 1) : 0;
    size_t k = 0;
    for (uint64_t s = first; s < log->next_seq && k < cap; s++)
        out[k++] = log->ring[(s - 1) % log->cap];
    pthread_mutex_unlock(&log->mu);
    return k;
}

void obs_events_range(obs_events *log, uint64_t *oldest, uint64_t *newest)
{
    pthread_mutex_lock(&log->mu);
    *oldest = log->next_seq - log->n;
    *newest = log->next_seq - 1;
    pthread_mutex_unlock(&log->mu);
}

void obs_events_counts(obs_events *log, uint64_t counts[6])
{
    pthread_mutex_lock(&log->mu);
    memcpy(counts, log->counts, sizeof log->counts);
    pthread_mutex_unlock(&log->mu);
}

int obs_events_wait(obs_events *log, uint64_t after, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t ns = until.tv_nsec + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&log->mu);
    int res = OBS_WAIT_TIMEOUT;
    for (;;) {
        if (log->closed) {
            res = OBS_WAIT_CLOSED;
            break;
        }
        if (log->next_seq - 1 > after) {
            res = OBS_WAIT_EVENT;
            break;
        }
        if (pthread_cond_timedwait(&log->cv, &log->mu, &until) != 0) break; /* timed out */
    }
    pthread_mutex_unlock(&log->mu);
    return res;
}

void obs_events_close(obs_events *log)
{
    if (!log) return;
    pthread_mutex_lock(&log->mu);
    log->closed = true;
    pthread_cond_broadcast(&log->cv);
    pthread_mutex_unlock(&log->mu);
}

json_t *obs_event_json(const obs_event *e)
{
    char t[48];
    core_time_format(e->wall_ns, false, t, sizeof t);
    return json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:I}", "id", (json_int_t)e->seq, "time", t,
                     "type", sched_event_kind_name(e->kind), "model", e->name, "reason",
                     e->reason, "bytes", (json_int_t)e->bytes, "duration_ns",
                     (json_int_t)e->duration_ns);
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
        "s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
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
        "prompt_tokens", (json_int_t)mi->prompt_tokens,
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
        "s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i}}",
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
        (json_int_t)snap->rejected_busy, "rejected_pinned", (json_int_t)snap->rejected_pinned,
        "rejected_too_large", (json_int_t)snap->rejected_too_large, "requests",
        (json_int_t)snap->requests, "uptime_ns", (json_int_t)snap->uptime_ns, "http_active",
        (int)st->http_active, "event_streams", (int)st->event_streams);
}
