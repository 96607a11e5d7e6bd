/* obs.h — observability: the residency event log, stats snapshots for /api/stats and
 * `dwell stats`, and Prometheus text for /metrics.
 *
 * The scheduler owns the per-model and total counters (sched_snapshot); obs adds the
 * process and machine figures (RSS, MemAvailable, RAM) and keeps a bounded log of residency
 * events fed by sched_config.on_event (set it to obs_events_hook with the log as ud).
 * Threads: every function is safe from any thread; the event log has its own mutex, taken
 * inside the scheduler's lock (lock order: sched → obs). */
#ifndef DWELL_OBS_H
#define DWELL_OBS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "sched/sched.h"

// ---- event log ----

typedef struct obs_events obs_events;

/* One residency event, copied out of the log. */
typedef struct obs_event {
    uint64_t seq;            /* 1, 2, ... in order; never reused */
    int kind;                /* enum sched_event_kind */
    int64_t wall_ns;
    char name[128];
    char reason[256];
    size_t bytes;
    int64_t duration_ns;
} obs_event;

/* A ring of the last `cap` events (0 = 256). */
int obs_events_new(obs_events **out, size_t cap, core_err *err);
void obs_events_free(obs_events *log);
/* Fits sched_config.on_event: ud is the obs_events. Quick; never calls sched. */
void obs_events_hook(void *ud, const sched_event_rec *ev);
/* Copies up to `cap` events with seq > after, oldest first; returns how many. */
size_t obs_events_since(obs_events *log, uint64_t after, obs_event *out, size_t cap);
/* Counts by kind since start (index enum sched_event_kind, SCHED_EVT_REJECT + 1 entries). */
void obs_events_counts(obs_events *log, uint64_t counts[6]);

// ---- stats ----

typedef struct obs_stats {
    sched_snap sched;        /* models, budget, queue, totals */
    int64_t wall_ns;         /* when it was taken */
    size_t rss_bytes;        /* this process */
    size_t mem_available;    /* /proc/meminfo MemAvailable */
    size_t ram_bytes;
} obs_stats;

/* Takes a snapshot (never waits for a load). Free with obs_stats_deinit. */
int obs_stats_collect(sched *s, obs_stats *out, core_err *err);
void obs_stats_deinit(obs_stats *st);

/* The /api/stats body, as docs/api.md documents it: {"time", "models":[…], "server":{…}}.
 * Returns a new reference (NULL when out of memory). */
json_t *obs_stats_json(const obs_stats *st);
/* Prometheus text exposition (dwell_* metrics). */
int obs_metrics_text(const obs_stats *st, core_buf *out);

#endif
