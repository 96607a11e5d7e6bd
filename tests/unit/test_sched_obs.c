/* test_sched_obs.c — obs: the residency event log ring fed through the scheduler's hook
 * (what a reader that fell behind is told, waiting for new events, closing), an event's
 * JSON, and the /api/stats JSON built from a snapshot. The Prometheus text is
 * test_obs_metrics.c's. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/obs.h"
#include "test.h"

static void push(obs_events *log, int kind, const char *name, const char *reason)
{
    sched_event_rec ev = {.kind = kind, .wall_ns = core_wall_ns(), .name = name, .path = "/p",
                          .reason = reason, .bytes = 1234, .duration_ns = 5};
    obs_events_hook(log, &ev);
}

TEST(obs_events_keeps_the_last_cap_in_order)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 4, NULL), CORE_OK);
    obs_event out[8];
    CHECK_EQ_INT(obs_events_since(log, 0, out, 8, NULL), 0);
    for (int i = 0; i < 6; i++) push(log, i % 2 ? SCHED_EVT_UNLOAD : SCHED_EVT_LOAD, "m", "r");
    size_t n = obs_events_since(log, 0, out, 8, NULL);
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(out[0].seq, 3);
    CHECK_EQ_INT(out[3].seq, 6);
    CHECK_EQ_STR(out[3].name, "m");
    CHECK_EQ_INT(out[3].bytes, 1234);
    n = obs_events_since(log, 5, out, 8, NULL);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(out[0].seq, 6);
    CHECK_EQ_INT(obs_events_since(log, 4, out, 1, NULL), 1);
    CHECK_EQ_INT(out[0].seq, 5);
    uint64_t counts[6];
    obs_events_counts(log, counts);
    CHECK_EQ_INT(counts[SCHED_EVT_LOAD], 3);
    CHECK_EQ_INT(counts[SCHED_EVT_UNLOAD], 3);
    obs_events_free(log);
}

TEST(obs_events_truncates_long_text)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 0, NULL), CORE_OK);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    push(log, SCHED_EVT_REJECT, big, big);
    obs_event e;
    CHECK_EQ_INT(obs_events_since(log, 0, &e, 1, NULL), 1);
    CHECK_EQ_INT(strlen(e.name), sizeof e.name - 1);
    CHECK_EQ_INT(strlen(e.reason), sizeof e.reason - 1);
    obs_events_free(log);
}

TEST(obs_events_tells_a_late_reader_what_it_missed)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 4, NULL), CORE_OK);
    for (int i = 0; i < 6; i++) push(log, SCHED_EVT_LOAD, "m", "r"); /* ring keeps 3..6 */
    obs_event out[8];
    uint64_t missed = 99;
    CHECK_EQ_INT(obs_events_since(log, 0, out, 8, &missed), 4);
    CHECK_EQ_INT(missed, 2); /* 1 and 2 are gone */
    CHECK_EQ_INT(out[0].seq, 3);
    CHECK_EQ_INT(obs_events_since(log, 1, out, 8, &missed), 4);
    CHECK_EQ_INT(missed, 1);
    CHECK_EQ_INT(obs_events_since(log, 2, out, 8, &missed), 4);
    CHECK_EQ_INT(missed, 0);
    CHECK_EQ_INT(obs_events_since(log, 6, out, 8, &missed), 0);
    CHECK_EQ_INT(missed, 0);
    obs_events_free(log);
}

TEST(obs_events_range_follows_the_ring)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 4, NULL), CORE_OK);
    uint64_t oldest, newest;
    obs_events_range(log, &oldest, &newest);
    CHECK_EQ_INT(oldest, 1);
    CHECK_EQ_INT(newest, 0);
    for (int i = 0; i < 6; i++) push(log, SCHED_EVT_LOAD, "m", "r");
    obs_events_range(log, &oldest, &newest);
    CHECK_EQ_INT(oldest, 3);
    CHECK_EQ_INT(newest, 6);
    obs_events_free(log);
}

TEST(obs_events_wait_times_out_without_events)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 0, NULL), CORE_OK);
    push(log, SCHED_EVT_LOAD, "m", "r");
    int64_t t0 = core_mono_ns();
    CHECK_EQ_INT(obs_events_wait(log, 1, 50), OBS_WAIT_TIMEOUT);
    int64_t waited = core_mono_ns() - t0;
    CHECK(waited >= 45000000 && waited < 2000000000);
    CHECK_EQ_INT(obs_events_wait(log, 0, 50), OBS_WAIT_EVENT); /* seq 1 is after 0 */
    obs_events_free(log);
}

static void *push_later(void *arg)
{
    core_sleep_ns(30000000);
    push(arg, SCHED_EVT_EXPIRE, "late", "5m0s");
    return NULL;
}

static void *close_later(void *arg)
{
    core_sleep_ns(30000000);
    obs_events_close(arg);
    return NULL;
}

TEST(obs_events_wait_wakes_on_an_event)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 0, NULL), CORE_OK);
    pthread_t th;
    pthread_create(&th, NULL, push_later, log);
    int64_t t0 = core_mono_ns();
    CHECK_EQ_INT(obs_events_wait(log, 0, 10000), OBS_WAIT_EVENT);
    CHECK(core_mono_ns() - t0 < 5000000000LL); /* woken, not timed out */
    pthread_join(th, NULL);
    obs_event e;
    CHECK_EQ_INT(obs_events_since(log, 0, &e, 1, NULL), 1);
    CHECK_EQ_STR(e.name, "late");
    obs_events_free(log);
}

TEST(obs_events_close_wakes_waiters)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 0, NULL), CORE_OK);
    pthread_t th;
    pthread_create(&th, NULL, close_later, log);
    int64_t t0 = core_mono_ns();
    CHECK_EQ_INT(obs_events_wait(log, 0, 10000), OBS_WAIT_CLOSED);
    CHECK(core_mono_ns() - t0 < 5000000000LL);
    pthread_join(th, NULL);
    CHECK_EQ_INT(obs_events_wait(log, 0, 10000), OBS_WAIT_CLOSED); /* at once from now on */
    push(log, SCHED_EVT_UNLOAD, "m", "shutdown"); /* still recorded */
    uint64_t oldest, newest;
    obs_events_range(log, &oldest, &newest);
    CHECK_EQ_INT(newest, 1);
    obs_events_free(log);
}

TEST(obs_event_json_has_the_fields)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 0, NULL), CORE_OK);
    push(log, SCHED_EVT_EVICT, "a:latest", "to make room for b:latest");
    obs_event e;
    CHECK_EQ_INT(obs_events_since(log, 0, &e, 1, NULL), 1);
    json_t *j = obs_event_json(&e);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    CHECK_CONTAINS(text, "\"id\":1,");
    CHECK_CONTAINS(text, "\"type\":\"evict\"");
    CHECK_CONTAINS(text, "\"model\":\"a:latest\"");
    CHECK_CONTAINS(text, "\"reason\":\"to make room for b:latest\"");
    CHECK_CONTAINS(text, "\"bytes\":1234");
    CHECK_CONTAINS(text, "\"duration_ns\":5");
    CHECK_CONTAINS(text, "\"time\":\"20");
    CHECK_CONTAINS(text, "Z\"");
    free(text);
    json_decref(j);
    obs_events_free(log);
}

TEST(obs_events_keep_text_valid_utf8)
{
    obs_events *log;
    CHECK_EQ_INT(obs_events_new(&log, 0, NULL), CORE_OK);
    /* "é" (2 bytes) cut in half by the 256-byte reason, and a stray 0xff byte */
    char reason[300];
    memset(reason, 'x', sizeof reason);
    memcpy(reason + 254, "\xc3\xa9", 2);
    reason[sizeof reason - 1] = 0;
    push(log, SCHED_EVT_LOAD_FAILED, "m\xff", reason);
    obs_event e;
    CHECK_EQ_INT(obs_events_since(log, 0, &e, 1, NULL), 1);
    CHECK_EQ_STR(e.name, "m?");
    CHECK_EQ_INT(e.reason[254], '?');
    json_t *j = obs_event_json(&e);
    CHECK(j != NULL); /* jansson refuses invalid UTF-8 */
    json_decref(j);
    obs_events_free(log);
}

static void fake_stats(obs_stats *st)
{
    memset(st, 0, sizeof *st);
    st->sched.models = calloc(2, sizeof *st->sched.models);
    st->sched.n_models = 2;
    sched_model_info *a = &st->sched.models[0], *b = &st->sched.models[1];
    snprintf(a->name, sizeof a->name, "llama3.2:latest");
    snprintf(a->digest, sizeof a->digest, "abc123");
    a->state = SCHED_STATE_READY;
    a->in_flight = 1;
    a->slots = 2;
    a->keep_alive_ns = 300000000000LL;
    a->keep_alive_source = SCHED_KA_SERVER;
    a->expires_at = core_wall_ns();
    a->size_bytes = 1000;
    snprintf(b->name, sizeof b->name, "we\"ird");
    b->state = SCHED_STATE_READY;
    b->pinned = true;
    b->keep_alive_ns = SCHED_FOREVER;
    b->keep_alive_source = SCHED_KA_REQUEST;
    b->expires_at = SCHED_FOREVER;
    st->sched.budget_bytes = 5000;
    st->sched.budget_source = CORE_BUDGET_CGROUP_V1;
    st->sched.models_bytes = 1000;
    st->sched.queue_depth = 3;
    st->sched.max_queue = 512;
    st->sched.evictions = 7;
    st->rss_bytes = 42;
}

TEST(obs_stats_json_has_the_fields)
{
    obs_stats st;
    fake_stats(&st);
    json_t *j = obs_stats_json(&st);
    CHECK(j != NULL);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    CHECK_CONTAINS(text, "\"name\":\"llama3.2:latest\"");
    CHECK_CONTAINS(text, "\"state\":\"busy\"");
    CHECK_CONTAINS(text, "\"state\":\"idle\"");
    CHECK_CONTAINS(text, "\"keep_alive_ms\":300000");
    CHECK_CONTAINS(text, "\"keep_alive_source\":\"server\"");
    CHECK_CONTAINS(text, "\"keep_alive_ms\":-1");
    CHECK_CONTAINS(text, "\"pinned\":true");
    CHECK_CONTAINS(text, "we\\\"ird");
    CHECK_CONTAINS(text, "\"budget_source\":\"cgroup v1\"");
    CHECK_CONTAINS(text, "\"queue_depth\":3");
    CHECK_CONTAINS(text, "\"max_queue\":512");
    CHECK_CONTAINS(text, "\"evictions\":7");
    CHECK_CONTAINS(text, "\"rss_bytes\":42");
    CHECK_CONTAINS(text, "\"size_bytes\":1000");
    /* a pinned model never expires */
    CHECK_CONTAINS(text, "\"expires_at\":\"forever\"");
    free(text);
    json_decref(j);
    obs_stats_deinit(&st);
}

int main(void)
{
    RUN(obs_events_keeps_the_last_cap_in_order);
    RUN(obs_events_truncates_long_text);
    RUN(obs_stats_json_has_the_fields);
    RUN(obs_events_tells_a_late_reader_what_it_missed);
    RUN(obs_events_range_follows_the_ring);
    RUN(obs_events_wait_times_out_without_events);
    RUN(obs_events_wait_wakes_on_an_event);
    RUN(obs_events_close_wakes_waiters);
    RUN(obs_event_json_has_the_fields);
    RUN(obs_events_keep_text_valid_utf8);
    return test_summary();
}
