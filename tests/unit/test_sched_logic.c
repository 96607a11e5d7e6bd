/* test_sched_logic.c — the scheduler's residency logic (admission, eviction, pins, timers,
 * queue bound, slots, cancellation, reload) driven through a fake backend whose models
 * have chosen sizes and whose "generation" emits one "x" per step. The same scheduler runs
 * the engine in test_sched_engine.c. Every wait is bounded. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched/internal.h"
#include "test.h"

#define MS 1000000LL
#define MIB ((size_t)1 << 20)

// ---- the fake backend ----

typedef struct fake_model {
    const char *path;
    size_t weights;
    int64_t n_ctx_train;
    int load_ms;
} fake_model;

static const fake_model fake_models[] = {
    {"/fake/a.gguf", 100 * MIB, 8192, 5},
    {"/fake/b.gguf", 100 * MIB, 8192, 5},
    {"/fake/c.gguf", 100 * MIB, 8192, 5},
    {"/fake/big.gguf", 900 * MIB, 8192, 5},
    {"/fake/slow.gguf", 50 * MIB, 8192, 400},
};

struct sched_inst {
    size_t bytes;
};

typedef struct fake_slot {
    int32_t want, made;
} fake_slot;

static atomic_int fake_loads, fake_unloads, fake_max_active, fake_step_ms;

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const fake_model *fake_find(const char *path)
{
    for (size_t i = 0; i < sizeof fake_models / sizeof fake_models[0]; i++)
        if (!strcmp(fake_models[i].path, path)) return &fake_models[i];
    return NULL;
}

static int fake_probe(const char *path, sched_probe *out, core_err *err)
{
    const fake_model *m = fake_find(path);
    if (!m) return core_err_set(err, CORE_IO, "%s: no such file", path);
    out->weight_bytes = m->weights;
    out->n_ctx_train = m->n_ctx_train;
    return CORE_OK;
}

/* 1 KiB of "KV" per token per slot. */
static size_t fake_estimate(const sched_probe *p, const sched_load_opts *o)
{
    return p->weight_bytes + (size_t)o->num_ctx * (size_t)o->n_seq * 1024;
}

static int fake_load(const char *path, const sched_load_opts *o, const atomic_bool *cancel,
                     sched_inst **out, core_err *err)
{
    const fake_model *m = fake_find(path);
    sched_probe p = {.weight_bytes = m->weights, .n_ctx_train = m->n_ctx_train};
    for (int t = 0; t < m->load_ms; t++) {
        if (atomic_load(cancel)) return core_err_set(err, CORE_CANCELLED, "load cancelled");
        sleep_ms(1);
    }
    sched_inst *in = malloc(sizeof *in);
    if (!in) return core_err_set(err, CORE_NOMEM, "oom");
    in->bytes = fake_estimate(&p, o);
    atomic_fetch_add(&fake_loads, 1);
    *out = in;
    return CORE_OK;
}

static size_t fake_measured(sched_inst *in, size_t *kv, size_t *w)
{
    *kv = 0;
    *w = in->bytes;
    return in->bytes;
}

static void fake_unload(sched_inst *in)
{
    atomic_fetch_add(&fake_unloads, 1);
    free(in);
}

static int fake_slot_init(sched_inst *in, sched_slot *sl, core_err *err)
{
    (void)in;
    sl->state = calloc(1, sizeof(fake_slot));
    return sl->state ? CORE_OK : core_err_set(err, CORE_NOMEM, "oom");
}

static void fake_slot_deinit(sched_inst *in, sched_slot *sl)
{
    (void)in;
    free(sl->state);
    sl->state = NULL;
}

static int fake_prepare(sched_inst *in, sched_req *r, core_err *err)
{
    (void)in;
    (void)r;
    (void)err;
    return CORE_OK;
}

static int fake_begin(sched_inst *in, sched_slot *sl, core_err *err)
{
    (void)in;
    (void)err;
    fake_slot *f = sl->state;
    f->made = 0;
    f->want = sl->req->num_predict > 0 ? sl->req->num_predict : 3;
    return CORE_OK;
}

static int fake_step(sched_inst *in, sched_slot *const *act, int32_t n, core_err *err)
{
    (void)in;
    (void)err;
    int cur = atomic_load(&fake_max_active);
    while (n > cur && !atomic_compare_exchange_weak(&fake_max_active, &cur, n)) {
    }
    sleep_ms(atomic_load(&fake_step_ms));
    for (int32_t i = 0; i < n; i++) {
        fake_slot *f = act[i]->state;
        sched_req_emit(act[i]->req, "x", 1);
        if (++f->made >= f->want) {
            act[i]->req->fin.done_reason = "length";
            act[i]->req->fin.eval_count = f->made;
            act[i]->done = true;
        }
    }
    return CORE_OK;
}

static void fake_end(sched_inst *in, sched_slot *sl)
{
    (void)in;
    (void)sl;
}

static const sched_backend fake_backend = {
    .name = "fake",
    .probe = fake_probe,
    .estimate = fake_estimate,
    .load = fake_load,
    .measured = fake_measured,
    .unload = fake_unload,
    .slot_init = fake_slot_init,
    .slot_deinit = fake_slot_deinit,
    .prepare = fake_prepare,
    .affinity = NULL,
    .begin = fake_begin,
    .step = fake_step,
    .end = fake_end,
};

// ---- helpers ----

static sched *start(sched_config *c)
{
    atomic_store(&fake_loads, 0);
    atomic_store(&fake_unloads, 0);
    atomic_store(&fake_max_active, 0);
    atomic_store(&fake_step_ms, 1);
    sched *s = NULL;
    core_err e;
    CHECK_EQ_INT(sched_new_with_backend(&s, c, &fake_backend, &e), CORE_OK);
    return s;
}

static void params(sched_params *p, const char *path, int32_t n_predict)
{
    sched_params_default(p);
    p->model.path = path;
    p->model.name = strrchr(path, '/') + 1;
    p->prompt = "hi";
    p->prompt_len = 2;
    p->num_predict = n_predict;
}

/* Reads a request to its end (bounded: 10 s); returns the final event type. */
static int finish(sched_req *r, sched_event *ev, size_t *n_text)
{
    size_t text = 0;
    for (int i = 0; i < 1000; i++) {
        int rc = sched_req_next(r, 10, ev, NULL);
        if (rc == CORE_TIMEOUT) continue;
        if (rc) return -1;
        if (ev->type == SCHED_EV_TEXT) {
            text += ev->text.len;
            continue;
        }
        if (n_text) *n_text = text;
        return ev->type;
    }
    return -2;
}

static int run(sched *s, const sched_params *p, sched_event *ev)
{
    sched_req *r;
    core_err e;
    if (sched_submit(s, p, &r, &e)) return -3;
    int t = finish(r, ev, NULL);
    sched_req_free(r);
    return t;
}

static int run_simple(sched *s, const char *path, int64_t ka_ns, bool has_ka)
{
    sched_params p;
    params(&p, path, 2);
    p.has_keep_alive = has_ka;
    p.keep_alive_ns = ka_ns;
    sched_event ev = {0};
    int t = run(s, &p, &ev);
    sched_event_deinit(&ev);
    return t;
}

static bool is_loaded(sched *s, const char *path, sched_model_info *out)
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

/* Waits up to ms for the model to be gone (want_gone) or present. */
static bool wait_loaded(sched *s, const char *path, bool want, int ms)
{
    for (int i = 0; i < ms / 5; i++) {
        if (is_loaded(s, path, NULL) == want) return true;
        sleep_ms(5);
    }
    return is_loaded(s, path, NULL) == want;
}

// ---- tests ----

TEST(sched_generates_and_reports_done)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    params(&p, "/fake/a.gguf", 4);
    sched_req *r;
    CHECK_EQ_INT(sched_submit(s, &p, &r, NULL), CORE_OK);
    sched_event ev = {0};
    size_t n = 0;
    CHECK_EQ_INT(finish(r, &ev, &n), SCHED_EV_DONE);
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_STR(ev.done_reason, "length");
    CHECK(ev.total_ns > 0 && ev.load_ns > 0 && ev.load_ns <= ev.total_ns);
    CHECK_EQ_INT(sched_req_next(r, 0, &ev, NULL), CORE_INVALID);
    sched_req_free(r);
    sched_event_deinit(&ev);
    sched_model_info m;
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.cold_loads, 1);
    CHECK_EQ_INT(m.keep_alive_source, SCHED_KA_DEFAULT);
    CHECK_EQ_INT(m.keep_alive_ns, 300000 * MS);
    CHECK_EQ_INT(m.num_ctx, 4096);
    CHECK(!m.pinned);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 0, false), SCHED_EV_DONE);
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.warm_hits, 1);
    CHECK_EQ_INT(m.requests, 2);
    CHECK_EQ_INT(atomic_load(&fake_loads), 1);
    sched_free(s);
    CHECK_EQ_INT(atomic_load(&fake_unloads), 1);
}

TEST(sched_keep_alive_expires_after_idle)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    int64_t t0 = core_mono_ns();
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 300 * MS, true), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.keep_alive_source, SCHED_KA_REQUEST);
    CHECK(m.expires_at > core_wall_ns());
    CHECK(wait_loaded(s, "/fake/a.gguf", false, 3000));
    CHECK(core_mono_ns() - t0 >= 300 * MS);
    sched_snap snap;
    sched_snapshot(s, &snap, NULL);
    CHECK_EQ_INT(snap.expiries, 1);
    CHECK_EQ_INT(snap.unloads, 1);
    sched_snap_deinit(&snap);
    sched_free(s);
}

TEST(sched_next_request_cancels_expiry)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 300 * MS, true), SCHED_EV_DONE);
    sleep_ms(200);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 0, false), SCHED_EV_DONE); /* sticky 300ms */
    sleep_ms(200); /* 400 ms after the first, 200 after the second: still there */
    CHECK(is_loaded(s, "/fake/a.gguf", NULL));
    CHECK(wait_loaded(s, "/fake/a.gguf", false, 3000));
    CHECK_EQ_INT(atomic_load(&fake_loads), 1);
    sched_free(s);
}

TEST(sched_keep_alive_zero_unloads_when_idle)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 0, true), SCHED_EV_DONE);
    CHECK(wait_loaded(s, "/fake/a.gguf", false, 2000));
    CHECK_EQ_INT(atomic_load(&fake_unloads), 1);
    sched_free(s);
}

TEST(sched_keep_alive_precedence_model_then_server)
{
    sched_config c;
    sched_config_default(&c);
    c.keep_alive_ns = 120000 * MS;
    c.keep_alive_source = SCHED_KA_SERVER;
    sched *s = start(&c);
    sched_params p;
    params(&p, "/fake/a.gguf", 1);
    p.model.has_keep_alive = true;
    p.model.keep_alive_ns = 600000 * MS;
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.keep_alive_source, SCHED_KA_MODEL);
    CHECK_EQ_INT(m.keep_alive_ns, 600000 * MS);
    CHECK_EQ_INT(run_simple(s, "/fake/b.gguf", 0, false), SCHED_EV_DONE);
    CHECK(is_loaded(s, "/fake/b.gguf", &m));
    CHECK_EQ_INT(m.keep_alive_source, SCHED_KA_SERVER);
    CHECK_EQ_INT(m.keep_alive_ns, 120000 * MS);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_pin_sticks_and_is_never_evicted)
{
    sched_config c;
    sched_config_default(&c);
    c.max_loaded = 1;
    sched *s = start(&c);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", -1, true), SCHED_EV_DONE);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 0, false), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK(m.pinned);
    CHECK_EQ_INT(m.keep_alive_ns, SCHED_FOREVER);
    CHECK_EQ_INT(m.expires_at, SCHED_FOREVER);
    sched_params p;
    params(&p, "/fake/b.gguf", 1);
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_ERROR);
    CHECK_EQ_INT(ev.err.code, CORE_BUSY);
    CHECK_CONTAINS(ev.err.msg, "pinned");
    CHECK_CONTAINS(ev.err.msg, "a.gguf");
    CHECK_CONTAINS(ev.err.msg, "MiB");
    CHECK(is_loaded(s, "/fake/a.gguf", NULL));
    CHECK(!is_loaded(s, "/fake/b.gguf", NULL));
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_max_loaded_evicts_least_recently_used)
{
    sched_config c;
    sched_config_default(&c);
    c.max_loaded = 2;
    sched *s = start(&c);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 0, false), SCHED_EV_DONE);
    CHECK_EQ_INT(run_simple(s, "/fake/b.gguf", 0, false), SCHED_EV_DONE);
    sleep_ms(2);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 0, false), SCHED_EV_DONE); /* b is now LRU */
    CHECK_EQ_INT(run_simple(s, "/fake/c.gguf", 0, false), SCHED_EV_DONE);
    CHECK(is_loaded(s, "/fake/a.gguf", NULL));
    CHECK(!is_loaded(s, "/fake/b.gguf", NULL));
    CHECK(is_loaded(s, "/fake/c.gguf", NULL));
    sched_snap snap;
    sched_snapshot(s, &snap, NULL);
    CHECK_EQ_INT(snap.evictions, 1);
    CHECK_EQ_INT(snap.n_models, 2);
    sched_snap_deinit(&snap);
    sched_free(s);
}

TEST(sched_budget_too_small_for_two_evicts_idle)
{
    sched_config c;
    sched_config_default(&c);
    c.budget_bytes = 150 * MIB; /* one 100 MiB model (+4 MiB KV) at a time */
    c.budget_source = CORE_BUDGET_ENV;
    sched *s = start(&c);
    CHECK_EQ_INT(run_simple(s, "/fake/a.gguf", 0, false), SCHED_EV_DONE);
    CHECK_EQ_INT(run_simple(s, "/fake/b.gguf", 0, false), SCHED_EV_DONE);
    CHECK(!is_loaded(s, "/fake/a.gguf", NULL));
    CHECK(is_loaded(s, "/fake/b.gguf", NULL));
    sched_snap snap;
    sched_snapshot(s, &snap, NULL);
    CHECK(snap.models_bytes <= snap.budget_bytes);
    CHECK_EQ_INT(snap.budget_source, CORE_BUDGET_ENV);
    sched_snap_deinit(&snap);
    sched_free(s);
}

TEST(sched_model_larger_than_budget_fails_at_once)
{
    sched_config c;
    sched_config_default(&c);
    c.budget_bytes = 500 * MIB;
    c.budget_source = CORE_BUDGET_CGROUP_V2;
    sched *s = start(&c);
    sched_params p;
    params(&p, "/fake/big.gguf", 1);
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_ERROR);
    CHECK_EQ_INT(ev.err.code, CORE_LIMIT);
    CHECK_CONTAINS(ev.err.msg, "904.0 MiB"); /* 900 MiB weights + 4 MiB context */
    CHECK_CONTAINS(ev.err.msg, "500.0 MiB");
    CHECK_CONTAINS(ev.err.msg, "cgroup v2");
    CHECK_EQ_INT(atomic_load(&fake_loads), 0);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_load_waits_for_busy_model_to_finish)
{
    sched_config c;
    sched_config_default(&c);
    c.budget_bytes = 150 * MIB;
    sched *s = start(&c);
    atomic_store(&fake_step_ms, 5);
    sched_params pa, pb;
    params(&pa, "/fake/a.gguf", 40); /* ~200 ms busy */
    params(&pb, "/fake/b.gguf", 1);
    sched_req *ra, *rb;
    CHECK_EQ_INT(sched_submit(s, &pa, &ra, NULL), CORE_OK);
    CHECK(wait_loaded(s, "/fake/a.gguf", true, 2000));
    CHECK_EQ_INT(sched_submit(s, &pb, &rb, NULL), CORE_OK);
    sched_event ev = {0};
    CHECK_EQ_INT(finish(rb, &ev, NULL), SCHED_EV_DONE);
    CHECK_EQ_INT(finish(ra, &ev, NULL), SCHED_EV_DONE); /* a was not cut short */
    CHECK(!is_loaded(s, "/fake/a.gguf", NULL));
    CHECK(is_loaded(s, "/fake/b.gguf", NULL));
    sched_req_free(ra);
    sched_req_free(rb);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_queue_bound_gives_busy)
{
    sched_config c;
    sched_config_default(&c);
    c.max_queue = 1;
    sched *s = start(&c);
    atomic_store(&fake_step_ms, 5);
    sched_params p;
    params(&p, "/fake/a.gguf", 40);
    sched_req *r1, *r2, *r3;
    CHECK_EQ_INT(sched_submit(s, &p, &r1, NULL), CORE_OK);
    sched_model_info m;
    for (int i = 0; i < 400 && !(is_loaded(s, "/fake/a.gguf", &m) && m.slots_busy == 1); i++)
        sleep_ms(5);
    CHECK_EQ_INT(sched_submit(s, &p, &r2, NULL), CORE_OK); /* waits for the slot */
    core_err e;
    CHECK_EQ_INT(sched_submit(s, &p, &r3, &e), CORE_BUSY);
    CHECK_EQ_STR(e.msg, "server busy, please try again.  maximum pending requests exceeded");
    sched_snap snap;
    sched_snapshot(s, &snap, NULL);
    CHECK_EQ_INT(snap.queue_depth, 1);
    CHECK_EQ_INT(snap.rejected_busy, 1);
    sched_snap_deinit(&snap);
    sched_event ev = {0};
    CHECK_EQ_INT(finish(r1, &ev, NULL), SCHED_EV_DONE);
    CHECK_EQ_INT(finish(r2, &ev, NULL), SCHED_EV_DONE);
    sched_req_free(r1);
    sched_req_free(r2);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_two_slots_progress_together)
{
    sched_config c;
    sched_config_default(&c);
    c.num_parallel = 2;
    sched *s = start(&c);
    atomic_store(&fake_step_ms, 5);
    sched_params p;
    params(&p, "/fake/a.gguf", 20);
    sched_req *r1, *r2;
    CHECK_EQ_INT(sched_submit(s, &p, &r1, NULL), CORE_OK);
    CHECK_EQ_INT(sched_submit(s, &p, &r2, NULL), CORE_OK);
    sched_event ev = {0};
    size_t n1 = 0, n2 = 0;
    CHECK_EQ_INT(finish(r1, &ev, &n1), SCHED_EV_DONE);
    CHECK_EQ_INT(finish(r2, &ev, &n2), SCHED_EV_DONE);
    CHECK_EQ_INT(n1, 20);
    CHECK_EQ_INT(n2, 20);
    CHECK_EQ_INT(atomic_load(&fake_max_active), 2);
    sched_model_info m;
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.slots, 2);
    CHECK_EQ_INT(m.est_bytes, 100 * MIB + 2 * 4096 * 1024);
    sched_req_free(r1);
    sched_req_free(r2);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_cancel_frees_the_slot)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    atomic_store(&fake_step_ms, 5);
    sched_params p;
    params(&p, "/fake/a.gguf", 100000);
    sched_req *r1, *r2;
    CHECK_EQ_INT(sched_submit(s, &p, &r1, NULL), CORE_OK);
    sched_event ev = {0};
    CHECK_EQ_INT(sched_req_next(r1, 2000, &ev, NULL), CORE_OK); /* it runs */
    CHECK_EQ_INT(ev.type, SCHED_EV_TEXT);
    params(&p, "/fake/a.gguf", 2);
    CHECK_EQ_INT(sched_submit(s, &p, &r2, NULL), CORE_OK);
    sched_req_cancel(r1);
    CHECK_EQ_INT(finish(r1, &ev, NULL), SCHED_EV_ERROR);
    CHECK_EQ_INT(ev.err.code, CORE_CANCELLED);
    CHECK_EQ_INT(finish(r2, &ev, NULL), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.in_flight, 0);
    CHECK_EQ_INT(m.slots_busy, 0);
    sched_req_free(r1);
    sched_req_free(r2);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_free_with_requests_running_cancels_them)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    params(&p, "/fake/a.gguf", 100000);
    sched_req *r1, *r2;
    CHECK_EQ_INT(sched_submit(s, &p, &r1, NULL), CORE_OK);
    CHECK_EQ_INT(sched_submit(s, &p, &r2, NULL), CORE_OK);
    sched_event ev = {0};
    CHECK_EQ_INT(sched_req_next(r1, 2000, &ev, NULL), CORE_OK);
    sched_free(s);
    CHECK_EQ_INT(finish(r1, &ev, NULL), SCHED_EV_ERROR);
    CHECK_EQ_INT(finish(r2, &ev, NULL), SCHED_EV_ERROR);
    sched_req_free(r1);
    sched_req_free(r2);
    sched_event_deinit(&ev);
    CHECK_EQ_INT(atomic_load(&fake_unloads), 1);
}

TEST(sched_reload_on_larger_num_ctx_only)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    sched_event ev = {0};
    params(&p, "/fake/a.gguf", 1);
    p.num_ctx = 1024;
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_DONE);
    sched_model_info m;
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.num_ctx, 1024);
    p.num_ctx = 512; /* smaller: served as is */
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_DONE);
    CHECK_EQ_INT(atomic_load(&fake_loads), 1);
    p.num_ctx = 2048; /* larger: reload */
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_DONE);
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.num_ctx, 2048);
    CHECK_EQ_INT(atomic_load(&fake_loads), 2);
    p.num_ctx = 100000; /* clamped to the trained 8192 */
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_DONE);
    CHECK(is_loaded(s, "/fake/a.gguf", &m));
    CHECK_EQ_INT(m.num_ctx, 8192);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_load_request_and_explicit_unload)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    params(&p, "/fake/a.gguf", 1);
    p.kind = SCHED_LOAD;
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_DONE);
    CHECK_EQ_STR(ev.done_reason, "load");
    CHECK(is_loaded(s, "/fake/a.gguf", NULL));
    bool was = false;
    CHECK_EQ_INT(sched_unload(s, "/fake/a.gguf", &was, NULL), CORE_OK);
    CHECK(was);
    CHECK(wait_loaded(s, "/fake/a.gguf", false, 2000));
    CHECK_EQ_INT(sched_unload(s, "/fake/a.gguf", &was, NULL), CORE_OK);
    CHECK(!was);
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_load_failure_reaches_the_request)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    params(&p, "/fake/missing.gguf", 1);
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_ERROR);
    CHECK_EQ_INT(ev.err.code, CORE_IO);
    CHECK_CONTAINS(ev.err.msg, "missing.gguf");
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_load_abandoned_when_nobody_waits)
{
    sched_config c;
    sched_config_default(&c);
    sched *s = start(&c);
    sched_params p;
    params(&p, "/fake/slow.gguf", 1);
    sched_req *r;
    CHECK_EQ_INT(sched_submit(s, &p, &r, NULL), CORE_OK);
    sleep_ms(50);
    sched_req_cancel(r);
    sched_event ev = {0};
    CHECK_EQ_INT(finish(r, &ev, NULL), SCHED_EV_ERROR);
    CHECK_EQ_INT(ev.err.code, CORE_CANCELLED);
    sched_req_free(r);
    CHECK(wait_loaded(s, "/fake/slow.gguf", false, 3000));
    CHECK_EQ_INT(atomic_load(&fake_loads), 0); /* the fake load saw the cancel flag */
    sched_event_deinit(&ev);
    sched_free(s);
}

TEST(sched_load_timeout)
{
    sched_config c;
    sched_config_default(&c);
    c.load_timeout_ns = 100 * MS;
    sched *s = start(&c);
    sched_params p;
    params(&p, "/fake/slow.gguf", 1);
    sched_event ev = {0};
    CHECK_EQ_INT(run(s, &p, &ev), SCHED_EV_ERROR);
    CHECK_EQ_INT(ev.err.code, CORE_TIMEOUT);
    CHECK_CONTAINS(ev.err.msg, "timed out");
    CHECK_CONTAINS(ev.err.msg, "100ms");
    CHECK(wait_loaded(s, "/fake/slow.gguf", false, 3000));
    sched_event_deinit(&ev);
    sched_free(s);
}

int main(void)
{
    RUN(sched_generates_and_reports_done);
    RUN(sched_keep_alive_expires_after_idle);
    RUN(sched_next_request_cancels_expiry);
    RUN(sched_keep_alive_zero_unloads_when_idle);
    RUN(sched_keep_alive_precedence_model_then_server);
    RUN(sched_pin_sticks_and_is_never_evicted);
    RUN(sched_max_loaded_evicts_least_recently_used);
    RUN(sched_budget_too_small_for_two_evicts_idle);
    RUN(sched_model_larger_than_budget_fails_at_once);
    RUN(sched_load_waits_for_busy_model_to_finish);
    RUN(sched_queue_bound_gives_busy);
    RUN(sched_two_slots_progress_together);
    RUN(sched_cancel_frees_the_slot);
    RUN(sched_free_with_requests_running_cancels_them);
    RUN(sched_reload_on_larger_num_ctx_only);
    RUN(sched_load_request_and_explicit_unload);
    RUN(sched_load_failure_reaches_the_request);
    RUN(sched_load_abandoned_when_nobody_waits);
    RUN(sched_load_timeout);
    return test_summary();
}
