/* test_sched_engine.c — the scheduler driving the real engine on small models made by
 * eng_mkmodel (and the shared stories260K.gguf): generation through slots, two slots in
 * one batch matching a single-slot run, prefix reuse, cancellation, reload on a larger
 * num_ctx, keep_alive expiry, the budget evicting a real model, embeddings, and RSS falling
 * after an unload. Every wait is bounded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sched/sched.h"
#include "test.h"

#define MS 1000000LL

static char dir[64], model_a[128], model_b[128], model_big[128];

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool make_models(void)
{
    snprintf(dir, sizeof dir, "/tmp/dwell-sched-XXXXXX");
    if (!mkdtemp(dir)) return false;
    snprintf(model_a, sizeof model_a, "%s/a.gguf", dir);
    snprintf(model_b, sizeof model_b, "%s/b.gguf", dir);
    snprintf(model_big, sizeof model_big, "%s/big.gguf", dir);
    eng_mkmodel_params p;
    core_err e;
    eng_mkmodel_params_default(&p);
    p.seed = 1;
    if (eng_mkmodel(model_a, &p, &e)) {
        printf("mkmodel: %s\n", e.msg);
        return false;
    }
    p.seed = 2;
    if (eng_mkmodel(model_b, &p, &e)) return false;
    p.seed = 3;
    p.n_embd = 1024;
    p.n_ff = 2816;
    p.n_layer = 4;
    p.n_head = 8;
    p.n_head_kv = 8;
    p.type = CORE_TYPE_F32; /* ~70 MB of weights: an unload is visible in RSS */
    if (eng_mkmodel(model_big, &p, &e)) {
        printf("mkmodel big: %s\n", e.msg);
        return false;
    }
    return true;
}

static sched *start(sched_config *c)
{
    sched *s = NULL;
    core_err e;
    int rc = sched_new(&s, c, &e);
    CHECK_MSG(rc == CORE_OK, "%s", e.msg);
    return s;
}

static void gen_params(sched_params *p, const char *path, const char *prompt, int32_t n)
{
    sched_params_default(p);
    p->model.path = path;
    p->model.name = strrchr(path, '/') + 1;
    p->prompt = prompt;
    p->prompt_len = strlen(prompt);
    p->num_predict = n;
    p->sampler.temperature = 0; /* greedy: deterministic */
    p->want_context = true;
}

/* Reads r to its end; text into buf. Returns the final event type (bounded: 60 s). */
static int finish(sched_req *r, sched_event *ev, core_buf *text)
{
    for (int i = 0; i < 6000; i++) {
        int rc = sched_req_next(r, 10, ev, NULL);
        if (rc == CORE_TIMEOUT) continue;
        if (rc) return -1;
        if (ev->type == SCHED_EV_TEXT) {
            if (text) core_buf_append(text, ev->text.data, ev->text.len);
            continue;
        }
        return ev->type;
    }
    return -2;
}

static int run(sched *s, const sched_params *p, sched_event *ev, core_buf *text)
{
    sched_req *r;
    core_err e;
    int rc = sched_submit(s, p, &r, &e);
    if (rc) {
        printf("  submit: %s\n", e.msg);
        return -3;
    }
    int t = finish(r, ev, text);
    if (t == SCHED_EV_ERROR) printf("  error: %s\n", ev->err.msg);
    sched_req_free(r);
    return t;
}

static bool info(sched *s, const char *path, sched_model_info *out)
{
    sched_snap snap;
    sched_snapshot(s, &snap, NULL);
    bool found = false;
    for (size_t i = 0; i < snap.n_models; i++)
        if (!strcmp(snap.models[i].path, path)) {
            found = true;
            if (out) *out = snap.models[i];
        }
    sched_snap_deinit(&snap);
    return found;
}

static bool wait_gone(sched *s, const char *path, int ms)
{
    for (int i = 0; i < ms / 5 && info(s, path, NULL); i++) sleep_ms(5);
    return !info(s, path, NULL);
}

// ---- tests ----

TEST(sched_engine_generates_greedy_with_context)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    gen_params(&p, model_a, "Hello there", 8);
    sched_event ev = {0};
    core_buf t;
    core_buf_init(&t);
    CHECK_EQ_INT(run(s, &p, &ev, &t), SCHED_EV_DONE);
    CHECK(ev.eval_count >= 1 && ev.eval_count <= 8);
    if (ev.eval_count == 8) CHECK_EQ_STR(ev.done_reason, "length");
    CHECK(ev.prompt_eval_count > 0);
    CHECK(ev.n_context == (size_t)ev.prompt_eval_count + (size_t)ev.eval_count ||
          !strcmp(ev.done_reason, "stop"));
    CHECK(ev.eval_ns > 0 && ev.total_ns >= ev.eval_ns);
    sched_model_info m;
    CHECK(info(s, model_a, &m));
    CHECK_EQ_INT(m.num_ctx, 2048); /* 4096 clamped to the trained 2048 */
    CHECK(m.measured_bytes > m.weight_bytes && m.kv_bytes > 0);
    CHECK(m.est_bytes > 0);
    /* Same prompt again: the cached prefix is reused, the text is the same. */
    core_buf t2;
    core_buf_init(&t2);
    int64_t first_prompt = ev.prompt_eval_count;
    CHECK_EQ_INT(run(s, &p, &ev, &t2), SCHED_EV_DONE);
    CHECK(ev.prompt_eval_count < first_prompt);
    CHECK_EQ_STR(t2.data ? t2.data : "", t.data ? t.data : "");
    core_buf_deinit(&t);
    core_buf_deinit(&t2);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_engine_two_slots_match_one_slot)
{
    sched_config c;
    sched_config_default(&c);
    c.num_parallel = 2;
    sched *s = start(&c);
    sched_params p1, p2;
    gen_params(&p1, model_a, "Once upon a time", 12);
    gen_params(&p2, model_a, "The quick brown fox", 12);
    sched_req *r1, *r2;
    CHECK_EQ_INT(sched_submit(s, &p1, &r1, NULL), CORE_OK);
    CHECK_EQ_INT(sched_submit(s, &p2, &r2, NULL), CORE_OK);
    sched_event ev = {0};
    core_buf a, b, a1, b1;
    core_buf_init(&a);
    core_buf_init(&b);
    core_buf_init(&a1);
    core_buf_init(&b1);
    CHECK_EQ_INT(finish(r1, &ev, &a), SCHED_EV_DONE);
    CHECK_EQ_INT(finish(r2, &ev, &b), SCHED_EV_DONE);
    sched_req_free(r1);
    sched_req_free(r2);
    sched_free(s);
    /* One slot, one request at a time: the same greedy text. */
    c.num_parallel = 1;
    s = start(&c);
    CHECK_EQ_INT(run(s, &p1, &ev, &a1), SCHED_EV_DONE);
    CHECK_EQ_INT(run(s, &p2, &ev, &b1), SCHED_EV_DONE);
    CHECK_EQ_STR(a.data ? a.data : "", a1.data ? a1.data : "");
    CHECK_EQ_STR(b.data ? b.data : "", b1.data ? b1.data : "");
    core_buf_deinit(&a);
    core_buf_deinit(&b);
    core_buf_deinit(&a1);
    core_buf_deinit(&b1);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_engine_cancel_frees_slot)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    gen_params(&p, model_a, "Tell me a story", 100000);
    p.sampler.temperature = 0.8f; /* keep generating */
    sched_req *r1, *r2;
    CHECK_EQ_INT(sched_submit(s, &p, &r1, NULL), CORE_OK);
    sched_event ev = {0};
    gen_params(&p, model_a, "Hi", 3);
    CHECK_EQ_INT(sched_submit(s, &p, &r2, NULL), CORE_OK);
    sleep_ms(100);
    sched_req_cancel(r1);
    int t1 = finish(r1, &ev, NULL);
    /* It may have ended by itself (end of generation) before the cancel. */
    CHECK(t1 == SCHED_EV_ERROR || t1 == SCHED_EV_DONE);
    if (t1 == SCHED_EV_ERROR) CHECK_EQ_INT(ev.err.code, CORE_CANCELLED);
    CHECK_EQ_INT(finish(r2, &ev, NULL), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(info(s, model_a, &m));
    CHECK_EQ_INT(m.slots_busy, 0);
    CHECK_EQ_INT(m.in_flight, 0);
    sched_req_free(r1);
    sched_req_free(r2);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_engine_reload_on_larger_num_ctx)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    gen_params(&p, model_a, "Hi", 2);
    p.num_ctx = 256;
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(info(s, model_a, &m));
    CHECK_EQ_INT(m.num_ctx, 256);
    size_t kv256 = m.kv_bytes;
    p.num_ctx = 128;
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    CHECK(info(s, model_a, &m));
    CHECK_EQ_INT(m.num_ctx, 256);
    CHECK_EQ_INT(m.cold_loads, 1);
    p.num_ctx = 1024;
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    CHECK(info(s, model_a, &m));
    CHECK_EQ_INT(m.num_ctx, 1024);
    CHECK_EQ_INT(m.cold_loads, 2);
    CHECK(m.kv_bytes > kv256);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_engine_keep_alive_expiry_and_zero)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    gen_params(&p, model_a, "Hi", 2);
    p.has_keep_alive = true;
    p.keep_alive_ns = 300 * MS;
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    CHECK(info(s, model_a, NULL));
    CHECK(wait_gone(s, model_a, 5000));
    p.keep_alive_ns = 0;
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    CHECK(wait_gone(s, model_a, 2000));
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_engine_budget_evicts_real_model)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    gen_params(&p, model_a, "Hi", 1);
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(info(s, model_a, &m));
    sched_free(s);
    c.budget_bytes = m.measured_bytes + m.measured_bytes / 2; /* room for one */
    c.budget_source = CORE_BUDGET_ENV;
    s = start(&c);
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    gen_params(&p, model_b, "Hi", 1);
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    CHECK(!info(s, model_a, NULL));
    CHECK(info(s, model_b, NULL));
    gen_params(&p, model_big, "Hi", 1); /* larger than the whole budget */
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_ERROR);
    CHECK_EQ_INT(ev.err.code, CORE_LIMIT);
    CHECK_CONTAINS(ev.err.msg, "memory budget");
    sched_snap snap;
    sched_snapshot(s, &snap, NULL);
    CHECK_EQ_INT(snap.evictions, 1);
    sched_snap_deinit(&snap);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_engine_embeddings_are_normalized)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    sched_params_default(&p);
    p.kind = SCHED_EMBED;
    p.model.path = model_a;
    const char *inputs[] = {"hello world", "a different sentence"};
    p.inputs = inputs;
    p.n_inputs = 2;
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    CHECK_EQ_INT(ev.n_embd_rows, 2);
    CHECK_EQ_INT(ev.n_embd, 256);
    CHECK(ev.prompt_eval_count > 2);
    for (size_t r = 0; r < ev.n_embd_rows && ev.embd; r++) {
        double n = 0;
        for (size_t i = 0; i < ev.n_embd; i++) n += (double)ev.embd[r * ev.n_embd + i] *
                                                    ev.embd[r * ev.n_embd + i];
        CHECK(fabs(n - 1.0) < 1e-4);
    }
    bool differ = false;
    for (size_t i = 0; i < ev.n_embd && ev.embd; i++)
        differ |= ev.embd[i] != ev.embd[ev.n_embd + i];
    CHECK(differ);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_engine_stories_generates_text)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    char path[4096];
    snprintf(path, sizeof path, "%s", test_shared_path("models/stories260K.gguf"));
    gen_params(&p, path, "Once upon a time", 16);
    sched_event ev = {0};
    core_buf t;
    core_buf_init(&t);
    CHECK_EQ_INT(run(s, &p, &ev, &t), SCHED_EV_DONE);
    CHECK(t.len > 0);
    printf("  stories260K: \"%s\"\n", t.data ? t.data : "");
    core_buf_deinit(&t);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_engine_unload_frees_memory)
{
    const char *san = getenv("DWELL_SANITIZE");
    if (san && !strcmp(san, "1")) {
        printf("  (skipped under ASan: freed memory is kept)\n");
        return;
    }
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    size_t before = core_rss_bytes();
    sched_params p;
    gen_params(&p, model_big, "Hi", 1);
    p.num_ctx = 512;
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev, NULL), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(info(s, model_big, &m));
    size_t loaded = core_rss_bytes();
    CHECK_MSG(loaded > before + m.weight_bytes / 2, "RSS %zu -> %zu, weights %zu", before,
              loaded, m.weight_bytes);
    bool was = false;
    CHECK_EQ_INT(sched_unload(s, model_big, &was, NULL), CORE_OK);
    CHECK(was);
    CHECK(wait_gone(s, model_big, 5000));
    size_t after = core_rss_bytes();
    CHECK_MSG(after + m.weight_bytes / 2 < loaded, "RSS %zu -> %zu after unload", loaded, after);
    sched_event_deinit(&ev);
    sched_free(s);
}

int main(void)
{
    if (!make_models()) {
        printf("cannot make the test models\n");
        return 1;
    }
    RUN(sched_engine_generates_greedy_with_context);
    RUN(sched_engine_two_slots_match_one_slot);
    RUN(sched_engine_cancel_frees_slot);
    RUN(sched_engine_reload_on_larger_num_ctx);
    RUN(sched_engine_keep_alive_expiry_and_zero);
    RUN(sched_engine_budget_evicts_real_model);
    RUN(sched_engine_embeddings_are_normalized);
    RUN(sched_engine_stories_generates_text);
    RUN(sched_engine_unload_frees_memory);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("cannot remove %s\n", dir);
    return test_summary();
}
