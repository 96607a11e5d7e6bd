/* test_sched_obs.c — obs: the residency event log ring fed through the scheduler's hook, the
 * /api/stats JSON and the Prometheus text built from a snapshot. */
#include <stdlib.h>
#include <string.h>

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
    CHECK_EQ_INT(obs_events_since(log, 0, out, 8), 0);
    for (int i = 0; i < 6; i++) push(log, i % 2 ? SCHED_EVT_UNLOAD : SCHED_EVT_LOAD, "m", "r");
    size_t n = obs_events_since(log, 0, out, 8);
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(out[0].seq, 3);
    CHECK_EQ_INT(out[3].seq, 6);
    CHECK_EQ_STR(out[3].name, "m");
    CHECK_EQ_INT(out[3].bytes, 1234);
    n = obs_events_since(log, 5, out, 8);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(out[0].seq, 6);
    CHECK_EQ_INT(obs_events_since(log, 4, out, 1), 1);
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
    CHECK_EQ_INT(obs_events_since(log, 0, &e, 1), 1);
    CHECK_EQ_INT(strlen(e.name), sizeof e.name - 1);
    CHECK_EQ_INT(strlen(e.reason), sizeof e.reason - 1);
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

TEST(obs_metrics_text_has_models_and_totals)
{
    obs_stats st;
    fake_stats(&st);
    core_buf b;
    core_buf_init(&b);
    CHECK_EQ_INT(obs_metrics_text(&st, &b), CORE_OK);
    CHECK_CONTAINS(b.data, "dwell_model_resident_bytes{model=\"llama3.2:latest\"} 1000");
    CHECK_CONTAINS(b.data, "dwell_model_in_flight{model=\"we\\\"ird\"} 0");
    CHECK_CONTAINS(b.data, "dwell_evictions_total 7");
    CHECK_CONTAINS(b.data, "dwell_memory_budget_bytes 5000");
    CHECK_CONTAINS(b.data, "# TYPE dwell_model_requests_total counter");
    core_buf_deinit(&b);
    obs_stats_deinit(&st);
}

int main(void)
{
    RUN(obs_events_keeps_the_last_cap_in_order);
    RUN(obs_events_truncates_long_text);
    RUN(obs_stats_json_has_the_fields);
    RUN(obs_metrics_text_has_models_and_totals);
    return test_summary();
}
