/* api_obs.c — what monitors and routers read: GET /api/stats (JSON), GET /metrics
 * (Prometheus text) and GET /api/events (the residency event log, as NDJSON).
 *
 * /api/stats and /metrics format one obs_stats snapshot each, so the two agree.
 *
 * /api/events follows the event log with a streaming response (stream.c): the producer
 * copies the events after the last id it sent, then waits on the log's condition variable
 * for the next one (at most the reader's 100 ms between checks for a vanished client). A
 * heartbeat line follows the history at once (so the client sees the response start and
 * knows it is live) and again whenever nothing was sent for a while, so that proxies keep
 * the connection. A reader that fell so far behind that the ring (OBS_EVENTS_CAP events) moved
 * past it gets one `dropped` line naming the lost ids. Shutdown closes the log: every open
 * stream ends at once, cleanly, so draining does not wait for them.
 *
 * Threads: handlers and producers run on their connection's MHD thread; the producer's
 * cancel flag is set from the request-completed callback. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/internal.h"

#define EVENTS_BATCH 32
#define EVENTS_MAX_LIST 4096                           /* most events in one ?stream=false */
#define EVENTS_BEAT_NS (15 * (int64_t)1000000000)      /* default heartbeat interval */
#define EVENTS_BEAT_MIN_NS ((int64_t)1000000000)
#define EVENTS_BEAT_MAX_NS (3600 * (int64_t)1000000000)

// ---- snapshots ----

static int stats_collect(srv_req *r, obs_stats *st, core_err *err)
{
    int rc = obs_stats_collect(r->srv->sched, st, err);
    if (rc) return rc;
    st->http_active = atomic_load(&r->srv->active);
    st->event_streams = atomic_load(&r->srv->event_streams);
    return CORE_OK;
}

enum MHD_Result srv_h_stats(srv_req *r)
{
    obs_stats st;
    core_err err;
    if (stats_collect(r, &st, &err)) return srv_reply_err(r, &err);
    json_t *j = obs_stats_json(&st);
    obs_stats_deinit(&st);
    if (!j) {
        core_err_set(&err, CORE_NOMEM, "out of memory for the stats");
        return srv_reply_err(r, &err);
    }
    return srv_reply_json(r, 200, j);
}

enum MHD_Result srv_h_metrics(srv_req *r)
{
    obs_stats st;
    core_err err;
    if (stats_collect(r, &st, &err)) return srv_reply_err(r, &err);
    core_buf b;
    core_buf_init(&b);
    int rc = obs_metrics_text(&st, &b);
    obs_stats_deinit(&st);
    enum MHD_Result res;
    if (rc) res = srv_reply_error(r, 500, "out of memory for the metrics");
    else res = srv_reply_raw(r, 200, OBS_METRICS_CTYPE, b.data, b.len);
    core_buf_deinit(&b);
    return res;
}

// ---- /api/events: query ----

typedef struct events_query {
    bool stream;
    bool has_since;
    uint64_t since;
    int64_t beat_ns;
} events_query;

/* Go's strconv.ParseBool, as Ollama reads boolean query values. */
static int parse_bool(const char *v, bool *out)
{
    static const char *const words[] = {"1", "t", "T", "true", "TRUE", "True",
                                         "0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(v, words[i]) != 0) continue;
        *out = i < 6;
        return CORE_OK;
    }
    return CORE_INVALID;
}

/* Reads ?stream=, ?since= and ?heartbeat=; false when it has replied 400. */
static bool events_query_read(srv_req *r, events_query *q, enum MHD_Result *res)
{
    *q = (events_query){.stream = true, .beat_ns = EVENTS_BEAT_NS};
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "stream");
    if (v && parse_bool(v, &q->stream)) {
        *res = srv_reply_error(r, 400, "invalid stream \"%.64s\": want true or false", v);
        return false;
    }
    v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "since");
    if (v) {
        char *end = NULL;
        q->since = strtoull(v, &end, 10);
        if (!*v || *v == '-' || *v == '+' || *end) {
            *res = srv_reply_error(r, 400, "invalid since \"%.64s\": want an event id (a whole "
                                   "number, 0 for the whole history)", v);
            return false;
        }
        q->has_since = true;
    }
    v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "heartbeat");
    if (v) {
        core_err err;
        if (srv_duration_parse(v, false, &q->beat_ns, &err) || q->beat_ns < EVENTS_BEAT_MIN_NS ||
            q->beat_ns > EVENTS_BEAT_MAX_NS) {
            *res = srv_reply_error(r, 400, "invalid heartbeat \"%.64s\": want a duration from "
                                   "1s to 1h (a bare number is seconds)", v);
            return false;
        }
    }
    return true;
}

/* The id to start after: `since`, or the one before the oldest event kept when there is
 * none or when it is past the newest id (ids start again at 1 when the server restarts, so
 * a client resuming against a new server gets the new server's whole history). */
static uint64_t events_start(obs_events *log, const events_query *q)
{
    uint64_t oldest, newest;
    obs_events_range(log, &oldest, &newest);
    if (!q->has_since || q->since > newest) return oldest - 1;
    return q->since;
}

// ---- /api/events: the feed ----

typedef struct events_feed {
    srv_server *srv;
    uint64_t after;          /* the id of the last event sent (or reported dropped) */
    int64_t beat_ns;
    int64_t next_beat;       /* core_mono_ns when a heartbeat is due */
    bool live;               /* the history was sent (and the first heartbeat after it) */
    atomic_bool cancel;      /* client gone or forced shutdown */
    obs_event batch[EVENTS_BATCH];
} events_feed;

/* Copies the next batch of events after f->after into f->batch and moves f->after past
 * them; *missed: how many had already left the ring (skipped). Returns the batch size. */
static size_t feed_fetch(events_feed *f, uint64_t *missed)
{
    size_t n = obs_events_since(f->srv->events, f->after, f->batch, EVENTS_BATCH, missed);
    f->after += *missed;
    if (n) f->after = f->batch[n - 1].seq;
    return n;
}

/* Appends the next events as NDJSON lines (a `dropped` line first when some left the ring
 * unsent); false when there was nothing to send. */
static bool feed_copy(events_feed *f, core_buf *out)
{
    uint64_t from = f->after + 1, missed;
    size_t n = feed_fetch(f, &missed);
    if (missed)
        srv_json_line(out, json_pack("{s:s,s:I,s:I,s:I}", "type", "dropped", "count",
                                     (json_int_t)missed, "from_id", (json_int_t)from, "to_id",
                                     (json_int_t)(from + missed - 1)), false);
    for (size_t i = 0; i < n; i++) srv_json_line(out, obs_event_json(&f->batch[i]), false);
    return n || missed;
}

static void feed_heartbeat(events_feed *f, core_buf *out)
{
    char now[48];
    srv_now_utc(now, sizeof now);
    srv_json_line(out, json_pack("{s:s,s:s,s:I}", "type", "heartbeat", "time", now, "last_id",
                                 (json_int_t)f->after), false);
}

static int feed_next(void *ctx, core_buf *out, int timeout_ms)
{
    events_feed *f = ctx;
    if (atomic_load(&f->cancel) || atomic_load(&f->srv->stopping)) return SRV_NEXT_END;
    if (!feed_copy(f, out)) {
        int64_t now = core_mono_ns();
        if (f->live && now < f->next_beat) {
            int64_t until_beat_ms = (f->next_beat - now) / 1000000 + 1;
            int wait_ms = until_beat_ms < timeout_ms ? (int)until_beat_ms : timeout_ms;
            int w = obs_events_wait(f->srv->events, f->after, wait_ms);
            if (w == OBS_WAIT_CLOSED) return SRV_NEXT_END;
            if (w == OBS_WAIT_TIMEOUT || !feed_copy(f, out)) return SRV_NEXT_MORE;
        } else {
            feed_heartbeat(f, out); /* the first one says: history sent, live from here */
            f->live = true;
        }
    }
    if (f->live) f->next_beat = core_mono_ns() + f->beat_ns;
    return SRV_NEXT_MORE;
}

static void feed_cancel(void *ctx)
{
    events_feed *f = ctx;
    atomic_store(&f->cancel, true);
}

static void feed_free(void *ctx)
{
    events_feed *f = ctx;
    atomic_fetch_sub(&f->srv->event_streams, 1);
    CORE_DEBUG("events: stream closed after id %llu", (unsigned long long)f->after);
    free(f);
}

// ---- /api/events: the handler ----

/* ?stream=false: {"events":[…],"last_id":N,"dropped":K}, K counting the events after
 * `since` that had already left the ring. */
static enum MHD_Result events_list(srv_req *r, events_feed *f)
{
    json_t *events = json_array();
    uint64_t dropped = 0, missed;
    size_t n;
    do {
        n = feed_fetch(f, &missed);
        dropped += missed;
        for (size_t i = 0; i < n; i++) json_array_append_new(events, obs_event_json(&f->batch[i]));
    } while (n && json_array_size(events) < EVENTS_MAX_LIST);
    return srv_reply_json(r, 200, json_pack("{s:o,s:I,s:I}", "events", events, "last_id",
                                            (json_int_t)f->after, "dropped",
                                            (json_int_t)dropped));
}

enum MHD_Result srv_h_events(srv_req *r)
{
    events_query q;
    enum MHD_Result res;
    if (!events_query_read(r, &q, &res)) return res;
    events_feed *f = calloc(1, sizeof *f);
    if (!f) return srv_reply_error(r, 500, "out of memory");
    f->srv = r->srv;
    f->after = events_start(r->srv->events, &q);
    if (!q.stream) {
        res = events_list(r, f);
        free(f);
        return res;
    }
    f->beat_ns = q.beat_ns;
    atomic_init(&f->cancel, false);
    atomic_fetch_add(&r->srv->event_streams, 1);
    CORE_DEBUG("events: stream opened after id %llu", (unsigned long long)f->after);
    srv_producer p = {feed_next, feed_cancel, feed_free, f};
    return srv_reply_stream(r, 200, "application/x-ndjson", &p);
}
