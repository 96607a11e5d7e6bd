/* obs.h — observability: the residency event log (GET /api/events), stats snapshots for
 * /api/stats and `dwell stats`, and Prometheus text for GET /metrics.
 *
 * The scheduler owns the per-model and total counters (sched_snapshot); obs adds the
 * process and machine figures (RSS, MemAvailable, RAM) and keeps a bounded log of residency
 * events fed by sched_config.on_event (set it to obs_events_hook with the log as ud).
 * Threads: every function is safe from any thread; the event log has its own mutex, taken
 * inside the scheduler's lock (lock order: sched → obs). Readers wait for new events on the
 * log's condition variable, never holding any other lock. */
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

/* A ring of the last `cap` events (0 = OBS_EVENTS_CAP). */
#define OBS_EVENTS_CAP 256
int obs_events_new(obs_events **out, size_t cap, core_err *err);
void obs_events_free(obs_events *log);
/* Fits sched_config.on_event: ud is the obs_events. Quick; never calls sched. Wakes the
 * readers waiting in obs_events_wait. */
void obs_events_hook(void *ud, const sched_event_rec *ev);
/* Copies up to `cap` events with seq > after, oldest first; returns how many. When some of
 * the events after `after` have already left the ring, *missed (may be NULL) is set to how
 * many and the copy starts at the oldest event kept; otherwise *missed is 0. */
size_t obs_events_since(obs_events *log, uint64_t after, obs_event *out, size_t cap,
                        uint64_t *missed);
/* The seqs of the oldest event kept and of the newest (oldest = newest + 1 when the ring is
 * empty; newest = 0 before the first event). */
void obs_events_range(obs_events *log, uint64_t *oldest, uint64_t *newest);
/* Counts by kind since start (index enum sched_event_kind, SCHED_EVT_REJECT + 1 entries). */
void obs_events_counts(obs_events *log, uint64_t counts[6]);

enum { OBS_WAIT_EVENT = 0, OBS_WAIT_TIMEOUT = 1, OBS_WAIT_CLOSED = 2 };
/* Waits up to timeout_ms for an event with seq > after. Returns OBS_WAIT_EVENT when there
 * is one, OBS_WAIT_TIMEOUT, or OBS_WAIT_CLOSED (at once) after obs_events_close. */
int obs_events_wait(obs_events *log, uint64_t after, int timeout_ms);
/* Wakes every waiter and makes later waits return OBS_WAIT_CLOSED (server shutdown). Events
 * are still recorded afterwards. */
void obs_events_close(obs_events *log);

/* One event as the JSON object /api/events sends: {"id","time","type","model","reason",
 * "bytes","duration_ns"}. Returns a new reference (NULL when out of memory). */
json_t *obs_event_json(const obs_event *e);

// ---- stats ----

typedef struct obs_stats {
    sched_snap sched;        /* models, budget, queue, totals */
    int64_t wall_ns;         /* when it was taken */
    size_t rss_bytes;        /* this process */
    size_t mem_available;    /* /proc/meminfo MemAvailable */
    size_t ram_bytes;
    /* Figures only the HTTP server knows: it fills them after obs_stats_collect (0 else). */
    int32_t http_active;     /* requests being handled, the one asking included */
    int32_t event_streams;   /* open GET /api/events streams */
} obs_stats;

/* Takes a snapshot (never waits for a load). Free with obs_stats_deinit. */
int obs_stats_collect(sched *s, obs_stats *out, core_err *err);
void obs_stats_deinit(obs_stats *st);

/* The /api/stats body, as docs/api.md documents it: {"time", "models":[…], "server":{…}}.
 * Returns a new reference (NULL when out of memory). */
json_t *obs_stats_json(const obs_stats *st);

// ---- Prometheus (metrics.c) ----

/* The Content-Type of obs_metrics_text's output. */
#define OBS_METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"
/* Appends the Prometheus text exposition (format 0.0.4) of st to out: dwell_* families,
 * each with HELP and TYPE before its samples; counters end in _total; per-model series are
 * labelled model="NAME",digest="first 12 hex digits". The figures are st's, so they agree
 * with obs_stats_json(st). Returns CORE_NOMEM if out could not grow. */
int obs_metrics_text(const obs_stats *st, core_buf *out);

#endif
