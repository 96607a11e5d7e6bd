/* sched.c — the scheduler thread: the table of loaded models, the pending queue, admission
 * (count cap, memory budget, LRU eviction of idle models, pins), keep-alive timers, loads and
 * unloads on worker threads.
 *
 * Owner: everything in `struct sched` is guarded by s->mu. Only the scheduler thread adds or
 * removes entries and pending requests and starts or joins worker threads; loader, unloader
 * and runner threads only set flags and counters under s->mu and signal s->cv. So the
 * scheduler thread may drop the lock (to probe a file) and keep its pointers.
 * ref: DESIGN.md §2; spec/ollama-compat.md §0, A–F and DESIGN §4's departures. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

// ---- constants ----

#define SCHED_DEFAULT_KA_NS (5LL * 60 * 1000000000LL)
#define SCHED_BUSY_MSG "server busy, please try again.  maximum pending requests exceeded"

// ---- types ----

/* Per weights path, for as long as the server runs: the probe cache and counters. */
typedef struct sched_pathrec {
    struct sched_pathrec *next;
    char *path;
    bool probed;
    sched_probe probe;
    uint64_t requests, warm_hits, cold_loads, tokens, prompt_tokens;
    int64_t last_load_ns;
} sched_pathrec;

struct sched_entry {
    sched_entry *next;
    sched_pathrec *rec;
    char *name, *path, *digest;
    int state;                  /* enum sched_state */
    sched_load_opts opts;
    size_t est_bytes, measured_bytes, kv_bytes, weight_bytes;
    int64_t ka_ns;
    int ka_src;
    int32_t refs;               /* requests attached (running or waiting for a slot) */
    bool timer_armed;
    int64_t expires_mono, idle_wall, last_used_wall, loaded_wall, loaded_mono;
    int64_t load_start_mono, load_deadline;
    bool want_unload;           /* unload once idle (explicit, reload, eviction) */
    bool draining;              /* no new requests attach (reload or eviction pending) */
    const char *unload_reason;
    /* load / unload worker */
    pthread_t worker;
    bool worker_live, load_done, unload_done, abandoned;
    int load_rc;
    core_err load_err;
    sched_inst *inst;
    atomic_bool load_cancel;
    sched_req *wait_head, *wait_tail; /* requests waiting for this load */
    int32_t n_waiters;
    sched_runner *run;
};

struct sched {
    sched_config cfg;
    const sched_backend *be;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    pthread_t th;
    bool stopping;
    sched_entry *entries;
    sched_pathrec *recs;
    sched_req *pend_head, *pend_tail;
    int32_t n_waiting;
    uint64_t loads, load_failures, unloads, evictions, expiries, rejected_busy, requests;
    uint64_t rejected_pinned, rejected_too_large;
    int64_t start_mono;
};

// ---- small helpers ----

static size_t entry_size(const sched_entry *e)
{
    return e->measured_bytes ? e->measured_bytes : e->est_bytes;
}

static bool entry_pinned(const sched_entry *e)
{
    return e->ka_ns == SCHED_FOREVER;
}

/* t + d (both >= 0) for a deadline, saturated at SCHED_FOREVER: a keep-alive of centuries
 * (a request may send "2562047h") must not wrap around into the past. */
static int64_t deadline_after(int64_t t, int64_t d)
{
    return d > SCHED_FOREVER - t ? SCHED_FOREVER : t + d;
}

static void fmt_size(size_t b, char *buf, size_t cap)
{
    core_size_format(b, buf, cap);
}

static void sched_emit(sched *s, int kind, const char *name, const char *path,
                       const char *reason, size_t bytes, int64_t dur)
{
    if (!s->cfg.on_event) return;
    sched_event_rec ev = {.kind = kind, .wall_ns = core_wall_ns(), .name = name, .path = path,
                          .reason = reason, .bytes = bytes, .duration_ns = dur};
    s->cfg.on_event(s->cfg.event_ud, &ev);
}

static sched_entry *entry_find(sched *s, const char *path)
{
    for (sched_entry *e = s->entries; e; e = e->next)
        if (!strcmp(e->path, path)) return e;
    return NULL;
}

static sched_pathrec *rec_get(sched *s, const char *path)
{
    for (sched_pathrec *p = s->recs; p; p = p->next)
        if (!strcmp(p->path, path)) return p;
    sched_pathrec *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->path = strdup(path);
    if (!p->path) {
        free(p);
        return NULL;
    }
    p->next = s->recs;
    s->recs = p;
    return p;
}

static void pend_push(sched *s, sched_req *r)
{
    r->next = NULL;
    if (s->pend_tail) s->pend_tail->next = r;
    else s->pend_head = r;
    s->pend_tail = r;
}

/* Removes r from the pending list given its predecessor. */
static void pend_remove(sched *s, sched_req *prev, sched_req *r)
{
    if (prev) prev->next = r->next;
    else s->pend_head = r->next;
    if (s->pend_tail == r) s->pend_tail = prev;
    r->next = NULL;
}

static void unwait_locked(sched *s, sched_req *r)
{
    if (r->waiting) {
        r->waiting = false;
        s->n_waiting--;
    }
}

/* Fails a request that is not attached to any model (pending or load waiter). */
static void fail_unattached(sched *s, sched_req *r, int code, const char *msg)
{
    unwait_locked(s, r);
    sched_req_fail(r, code, "%s", msg);
}

/* The options a request would load with, given the model's probe. */
static void req_load_opts(const sched *s, const sched_req *r, const sched_probe *p,
                          sched_load_opts *o)
{
    int64_t n = r->num_ctx > 0 ? r->num_ctx : s->cfg.num_ctx;
    if (n < 4) n = 4;
    if (p->n_ctx_train > 0 && n > p->n_ctx_train) n = p->n_ctx_train;
    o->num_ctx = n;
    o->n_seq = s->cfg.num_parallel > 0 ? s->cfg.num_parallel : 1;
    o->n_batch = r->num_batch > 0 ? r->num_batch : 0;
    o->n_threads = r->num_thread > 0 ? r->num_thread : s->cfg.n_threads;
    o->kv_type = s->cfg.kv_type;
}

/* A loaded model serves r unless r needs more context or other load-time options
 * (departure 6: a smaller num_ctx is served as is). */
static bool needs_reload(const sched *s, const sched_entry *e, const sched_req *r)
{
    sched_load_opts o;
    req_load_opts(s, r, &e->rec->probe, &o);
    if (o.num_ctx > e->opts.num_ctx) return true;
    if (r->num_batch > 0 && r->num_batch != e->opts.n_batch) return true;
    if (r->num_thread > 0 && r->num_thread != e->opts.n_threads) return true;
    return false;
}

// ---- attach and release ----

static void release_locked(sched *s, sched_entry *e, sched_req *r);

/* Hands r to the ready model e: counts it, applies its keep_alive (sticky), stops the
 * timer, and queues it for a slot (or answers a LOAD request at once). */
static void attach(sched *s, sched_entry *e, sched_req *r)
{
    e->refs++;
    r->entry = e;
    r->t_acquired = core_mono_ns();
    e->timer_armed = false;
    if (r->has_ka) {
        e->ka_ns = r->ka_ns;
        e->ka_src = SCHED_KA_REQUEST;
    } else if (e->ka_src != SCHED_KA_REQUEST) {
        /* Only a request's value sticks; otherwise the keep-alive is that of the model this
         * request named (several names can share one loaded file), else the server's. */
        if (r->model_has_ka) {
            e->ka_ns = r->model_ka_ns;
            e->ka_src = SCHED_KA_MODEL;
        } else {
            e->ka_ns = s->cfg.keep_alive_ns;
            e->ka_src = s->cfg.keep_alive_source;
        }
    }
    if (r->warm) e->rec->warm_hits++;
    if (r->kind == SCHED_LOAD) {
        unwait_locked(s, r);
        r->fin.done_reason = "load";
        release_locked(s, e, r);
        sched_req_finish(r);
        return;
    }
    sched_runner_push(e->run, r);
}

static void release_locked(sched *s, sched_entry *e, sched_req *r)
{
    unwait_locked(s, r);
    r->entry = NULL;
    e->refs--;
    e->rec->requests++;
    e->rec->tokens += (uint64_t)(r->fin.eval_count > 0 ? r->fin.eval_count : 0);
    e->rec->prompt_tokens +=
        (uint64_t)(r->fin.prompt_eval_count > 0 ? r->fin.prompt_eval_count : 0);
    s->requests++;
    int64_t now = core_wall_ns();
    e->last_used_wall = now;
    if (e->refs == 0) {
        e->idle_wall = now;
        if (e->ka_ns != SCHED_FOREVER && e->ka_ns > 0) {
            e->timer_armed = true;
            e->expires_mono = deadline_after(core_mono_ns(), e->ka_ns);
        }
    }
    pthread_cond_signal(&s->cv);
}

void sched_release(sched *s, sched_entry *e, sched_req *r)
{
    pthread_mutex_lock(&s->mu);
    release_locked(s, e, r);
    pthread_mutex_unlock(&s->mu);
}

void sched_unwait(sched *s, sched_req *r)
{
    pthread_mutex_lock(&s->mu);
    unwait_locked(s, r);
    pthread_mutex_unlock(&s->mu);
}

// ---- workers: load and unload ----

typedef struct worker_arg {
    sched *s;
    sched_entry *e;
} worker_arg;

static void *load_thread(void *arg)
{
    worker_arg *w = arg;
    sched *s = w->s;
    sched_entry *e = w->e;
    free(w);
    core_err err;
    core_err_clear(&err);
    sched_inst *inst = NULL;
    int rc = s->be->load(e->path, &e->opts, &e->load_cancel, &inst, &err);
    size_t kv = 0, weights = 0, measured = 0;
    if (rc == CORE_OK) measured = s->be->measured(inst, &kv, &weights);
    pthread_mutex_lock(&s->mu);
    e->load_done = true;
    e->load_rc = rc;
    e->load_err = err;
    e->inst = inst;
    if (rc == CORE_OK) {
        e->measured_bytes = measured;
        e->kv_bytes = kv;
        e->weight_bytes = weights;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *unload_thread(void *arg)
{
    worker_arg *w = arg;
    sched *s = w->s;
    sched_entry *e = w->e;
    free(w);
    /* Detach the runner first so snapshots and cancels stop looking at it. */
    pthread_mutex_lock(&s->mu);
    sched_runner *run = e->run;
    e->run = NULL;
    pthread_mutex_unlock(&s->mu);
    /* The runner cancels and releases anything still attached (shutdown only). */
    sched_runner_stop(run);
    if (e->inst) s->be->unload(e->inst);
    core_heap_trim(); /* give the freed heap back to the OS so RSS falls */
    pthread_mutex_lock(&s->mu);
    e->inst = NULL;
    e->unload_done = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int start_worker(sched *s, sched_entry *e, void *(*fn)(void *))
{
    worker_arg *w = malloc(sizeof *w);
    if (!w) return CORE_NOMEM;
    w->s = s;
    w->e = e;
    if (pthread_create(&e->worker, NULL, fn, w)) {
        free(w);
        return CORE_NOMEM;
    }
    e->worker_live = true;
    return CORE_OK;
}

static void start_unload(sched *s, sched_entry *e, const char *reason)
{
    char sz[32];
    fmt_size(entry_size(e), sz, sizeof sz);
    e->state = SCHED_STATE_UNLOADING;
    e->timer_armed = false;
    e->unload_reason = reason;
    CORE_INFO("sched: unloading %s: reason %s, %s", e->name, reason, sz);
    if (start_worker(s, e, unload_thread)) {
        /* No thread: unload here (rare; costs the scheduler a pause). */
        CORE_WARN("sched: no thread for unloading %s: unloading inline", e->name);
        sched_runner *run = e->run;
        e->run = NULL;
        pthread_mutex_unlock(&s->mu);
        sched_runner_stop(run);
        if (e->inst) s->be->unload(e->inst);
        core_heap_trim();
        pthread_mutex_lock(&s->mu);
        e->inst = NULL;
        e->unload_done = true;
    }
}

static void entry_free(sched_entry *e)
{
    free(e->name);
    free(e->path);
    free(e->digest);
    free(e);
}

static void entry_remove(sched *s, sched_entry *e)
{
    sched_entry **pp = &s->entries;
    while (*pp && *pp != e) pp = &(*pp)->next;
    if (*pp) *pp = e->next;
    entry_free(e);
}

/* Creates a LOADING entry for r and starts its loader thread. */
static void start_load(sched *s, sched_req *r, sched_pathrec *rec, const sched_load_opts *o,
                       size_t est)
{
    sched_entry *e = calloc(1, sizeof *e);
    if (e) {
        e->name = strdup(r->name);
        e->path = strdup(r->path);
        e->digest = strdup(r->digest);
    }
    if (!e || !e->name || !e->path || !e->digest) {
        if (e) entry_free(e);
        fail_unattached(s, r, CORE_NOMEM, "out of memory starting a load");
        return;
    }
    e->rec = rec;
    e->state = SCHED_STATE_LOADING;
    e->opts = *o;
    e->est_bytes = est;
    e->weight_bytes = rec->probe.weight_bytes;
    if (r->has_ka) {
        e->ka_ns = r->ka_ns;
        e->ka_src = SCHED_KA_REQUEST;
    } else if (r->model_has_ka) {
        e->ka_ns = r->model_ka_ns;
        e->ka_src = SCHED_KA_MODEL;
    } else {
        e->ka_ns = s->cfg.keep_alive_ns;
        e->ka_src = s->cfg.keep_alive_source;
    }
    e->load_start_mono = core_mono_ns();
    int64_t lt = s->cfg.load_timeout_ns;
    e->load_deadline =
        lt > 0 && lt != SCHED_FOREVER ? deadline_after(e->load_start_mono, lt) : 0;
    atomic_init(&e->load_cancel, false);
    e->wait_head = e->wait_tail = r;
    r->next = NULL;
    e->n_waiters = 1;
    e->next = s->entries;
    s->entries = e;
    char sz[32], ka[32];
    fmt_size(est, sz, sizeof sz);
    core_duration_format(e->ka_ns, ka, sizeof ka);
    CORE_INFO("sched: loading %s (%s): estimated %s, num_ctx %lld x %d slots, keep_alive %s "
              "(%s)", e->name, e->path, sz, (long long)o->num_ctx, o->n_seq, ka,
              sched_ka_source_name(e->ka_src));
    if (start_worker(s, e, load_thread)) {
        e->load_done = true;
        e->load_rc = core_err_set(&e->load_err, CORE_NOMEM, "cannot start a loader thread");
    }
}

// ---- the scheduler loop's steps ----

static void handle_load_done(sched *s, sched_entry *e)
{
    pthread_join(e->worker, NULL);
    e->worker_live = false;
    int64_t dur = core_mono_ns() - e->load_start_mono;
    char sz[32], est[32];
    if (e->load_rc != CORE_OK) {
        if (e->abandoned && e->load_rc == CORE_CANCELLED) {
            /* nobody waits for it, or it timed out (counted and reported then) */
            CORE_INFO("sched: load of %s stopped after %.2fs: nobody waits for it", e->name,
                      (double)dur / 1e9);
        } else {
            s->load_failures++;
            CORE_ERROR("sched: load of %s failed after %.2fs: %s", e->name, (double)dur / 1e9,
                       e->load_err.msg);
            sched_emit(s, SCHED_EVT_LOAD_FAILED, e->name, e->path, e->load_err.msg,
                       e->est_bytes, dur);
        }
        for (sched_req *r = e->wait_head, *n; r; r = n) {
            n = r->next;
            fail_unattached(s, r, e->load_rc, e->load_err.msg);
        }
        entry_remove(s, e);
        return;
    }
    e->rec->cold_loads++;
    e->rec->last_load_ns = dur;
    s->loads++;
    fmt_size(e->measured_bytes, sz, sizeof sz);
    fmt_size(e->est_bytes, est, sizeof est);
    CORE_INFO("sched: loaded %s in %.2fs: %s resident (estimated %s)", e->name,
              (double)dur / 1e9, sz, est);
    sched_emit(s, SCHED_EVT_LOAD, e->name, e->path, "loaded", e->measured_bytes, dur);
    e->loaded_wall = e->last_used_wall = core_wall_ns();
    e->loaded_mono = core_mono_ns();
    if (e->abandoned || s->stopping) {
        start_unload(s, e, s->stopping ? "shutdown" : "abandoned");
        return;
    }
    core_err err;
    if (sched_runner_start(&e->run, s, e, s->be, e->inst, e->opts.n_seq,
                           s->cfg.step_delay_ns, &err)) {
        CORE_ERROR("sched: %s: %s", e->name, err.msg);
        for (sched_req *r = e->wait_head, *n; r; r = n) {
            n = r->next;
            fail_unattached(s, r, err.code, err.msg);
        }
        e->wait_head = e->wait_tail = NULL;
        e->n_waiters = 0;
        start_unload(s, e, "runner failed");
        return;
    }
    e->state = SCHED_STATE_READY;
    sched_req *r = e->wait_head;
    e->wait_head = e->wait_tail = NULL;
    e->n_waiters = 0;
    while (r) {
        sched_req *n = r->next;
        r->next = NULL;
        attach(s, e, r);
        r = n;
    }
    if (e->refs == 0) { /* every waiter was a LOAD, or left: the timer starts now */
        e->idle_wall = core_wall_ns();
        if (e->ka_ns > 0 && e->ka_ns != SCHED_FOREVER) {
            e->timer_armed = true;
            e->expires_mono = deadline_after(core_mono_ns(), e->ka_ns);
        }
    }
}

static void handle_unload_done(sched *s, sched_entry *e)
{
    pthread_join(e->worker, NULL);
    e->worker_live = false;
    int64_t resident = e->loaded_mono ? core_mono_ns() - e->loaded_mono : 0;
    char sz[32];
    fmt_size(entry_size(e), sz, sizeof sz);
    s->unloads++;
    CORE_INFO("sched: unloaded %s: reason %s, freed %s, resident %.2fs", e->name,
              e->unload_reason ? e->unload_reason : "unknown", sz, (double)resident / 1e9);
    sched_emit(s, SCHED_EVT_UNLOAD, e->name, e->path, e->unload_reason, entry_size(e),
               resident);
    entry_remove(s, e);
}

/* Load waiters that left, and load timeouts. */
static void check_loading(sched *s, sched_entry *e, int64_t now)
{
    if (s->stopping) {
        for (sched_req *r = e->wait_head, *n; r; r = n) {
            n = r->next;
            fail_unattached(s, r, CORE_BUSY, "server is shutting down");
        }
        e->wait_head = e->wait_tail = NULL;
        e->n_waiters = 0;
        e->abandoned = true;
        atomic_store(&e->load_cancel, true);
        return;
    }
    sched_req *prev = NULL;
    for (sched_req *r = e->wait_head, *n; r; r = n) {
        n = r->next;
        if (!atomic_load(&r->cancel)) {
            prev = r;
            continue;
        }
        if (prev) prev->next = n;
        else e->wait_head = n;
        if (e->wait_tail == r) e->wait_tail = prev;
        e->n_waiters--;
        fail_unattached(s, r, CORE_CANCELLED, "request canceled");
    }
    if (e->abandoned) return;
    if (e->load_deadline && now > e->load_deadline) {
        char t[32];
        core_duration_format(s->cfg.load_timeout_ns, t, sizeof t);
        char msg[256];
        snprintf(msg, sizeof msg, "timed out waiting for %s to load after %s", e->name, t);
        CORE_ERROR("sched: %s", msg);
        for (sched_req *r = e->wait_head, *n; r; r = n) {
            n = r->next;
            fail_unattached(s, r, CORE_TIMEOUT, msg);
        }
        e->wait_head = e->wait_tail = NULL;
        e->n_waiters = 0;
        e->abandoned = true;
        atomic_store(&e->load_cancel, true);
        s->load_failures++;
        sched_emit(s, SCHED_EVT_LOAD_FAILED, e->name, e->path, msg, e->est_bytes,
                   now - e->load_start_mono);
    } else if (e->n_waiters == 0) {
        /* departure 5: a load continues while anyone waits for it */
        CORE_INFO("sched: load of %s abandoned: no request waits for it", e->name);
        e->abandoned = true;
        atomic_store(&e->load_cancel, true);
    }
}

/* Idle models that must go: keep_alive 0, explicit unload, reload, eviction, expiry. */
static void check_ready(sched *s, sched_entry *e, int64_t now)
{
    if (e->refs > 0) return;
    if (s->stopping) {
        start_unload(s, e, "shutdown");
    } else if (e->want_unload) {
        if (e->unload_reason && !strcmp(e->unload_reason, "evicted")) s->evictions++;
        start_unload(s, e, e->unload_reason ? e->unload_reason : "requested");
    } else if (e->ka_ns == 0) {
        start_unload(s, e, "keep_alive 0");
    } else if (e->timer_armed && now >= e->expires_mono) {
        char ka[32];
        core_duration_format(e->ka_ns, ka, sizeof ka);
        CORE_INFO("sched: %s expired: idle for keep_alive %s (%s)", e->name, ka,
                  sched_ka_source_name(e->ka_src));
        s->expiries++;
        sched_emit(s, SCHED_EVT_EXPIRE, e->name, e->path, ka, entry_size(e), e->ka_ns);
        start_unload(s, e, "expired");
    }
}

/* Marks e for eviction (now if idle, else when its requests finish). why: "to make room
 * for NAME (the limit in the way)", for the log and the event. */
static void evict(sched *s, sched_entry *e, const char *why)
{
    char sz[32];
    fmt_size(entry_size(e), sz, sizeof sz);
    CORE_INFO("sched: evicting %s (%s, %s) %s", e->name, sz,
              e->refs ? "busy: after its requests" : "idle", why);
    sched_emit(s, SCHED_EVT_EVICT, e->name, e->path, why, entry_size(e), 0);
    e->want_unload = true;
    e->draining = true;
    e->unload_reason = "evicted";
    if (e->refs == 0) {
        s->evictions++;
        start_unload(s, e, "evicted");
    }
}

/* Order for victims: idle before busy, then least recently used first. */
static int victim_cmp(const void *a, const void *b)
{
    const sched_entry *x = *(sched_entry *const *)a, *y = *(sched_entry *const *)b;
    if ((x->refs > 0) != (y->refs > 0)) return x->refs > 0 ? 1 : -1;
    return x->last_used_wall < y->last_used_wall ? -1 : x->last_used_wall > y->last_used_wall;
}

enum { ADMIT_LOAD, ADMIT_WAIT, ADMIT_FAIL };

/* Decides whether a model of `est` bytes can load now, must wait, or cannot load (then
 * msg says why). Starts the evictions it needs. */
static int admit(sched *s, const char *name, size_t est, char *msg, size_t cap)
{
    size_t used = 0, freeing = 0, budget = s->cfg.budget_bytes;
    int32_t count = 0, count_freeing = 0, n = 0;
    for (sched_entry *e = s->entries; e; e = e->next) {
        used += entry_size(e);
        count++;
        if (e->state == SCHED_STATE_UNLOADING || e->draining) {
            freeing += entry_size(e);
            count_freeing++;
        }
        n++;
    }
    size_t need_mem = budget && used + est > budget ? used + est - budget : 0;
    int32_t max = s->cfg.max_loaded;
    int32_t need_cnt = max > 0 && count + 1 > max ? count + 1 - max : 0;
    if (need_mem == 0 && need_cnt == 0) return ADMIT_LOAD;
    if (freeing >= need_mem && count_freeing >= need_cnt) return ADMIT_WAIT;
    need_mem = need_mem > freeing ? need_mem - freeing : 0;
    need_cnt = need_cnt > count_freeing ? need_cnt - count_freeing : 0;

    sched_entry **cand = calloc((size_t)n + 1, sizeof *cand);
    if (!cand) return ADMIT_WAIT;
    int32_t nc = 0;
    size_t loading_bytes = 0;
    int32_t loading_cnt = 0;
    for (sched_entry *e = s->entries; e; e = e->next) {
        if (entry_pinned(e) || e->draining || e->state == SCHED_STATE_UNLOADING) continue;
        if (e->state == SCHED_STATE_LOADING) {
            loading_bytes += entry_size(e);
            loading_cnt++;
            continue;
        }
        cand[nc++] = e;
    }
    qsort(cand, (size_t)nc, sizeof *cand, victim_cmp);
    size_t got = 0;
    int32_t got_cnt = 0, take = 0;
    while (take < nc && (got < need_mem || got_cnt < need_cnt)) {
        got += entry_size(cand[take]);
        got_cnt++;
        take++;
    }
    int res;
    if (got >= need_mem && got_cnt >= need_cnt) {
        char why[256], bs[32];
        fmt_size(budget, bs, sizeof bs);
        if (need_cnt > 0)
            snprintf(why, sizeof why, "to make room for %s (OLLAMA_MAX_LOADED_MODELS=%d)", name,
                     max);
        else
            snprintf(why, sizeof why, "to make room for %s (memory budget %s, %s)", name, bs,
                     core_budget_source_name(s->cfg.budget_source));
        for (int32_t i = 0; i < take; i++) evict(s, cand[i], why);
        res = ADMIT_WAIT;
    } else if (got + loading_bytes >= need_mem && got_cnt + loading_cnt >= need_cnt) {
        res = ADMIT_WAIT; /* loads in progress may become evictable once ready */
    } else {
        /* Only pinned models stand in the way (departure 2). */
        core_buf b;
        core_buf_init(&b);
        char sz[32], bs[32];
        fmt_size(est, sz, sizeof sz);
        core_buf_printf(&b, "cannot load %s (%s): it fits only by evicting pinned models:", name,
                        sz);
        const char *sep = " ";
        for (sched_entry *e = s->entries; e; e = e->next) {
            if (!entry_pinned(e)) continue;
            fmt_size(entry_size(e), bs, sizeof bs);
            core_buf_printf(&b, "%s%s (%s)", sep, e->name, bs);
            sep = ", ";
        }
        if (budget) {
            fmt_size(budget, bs, sizeof bs);
            core_buf_printf(&b, "; memory budget %s (%s)", bs,
                            core_budget_source_name(s->cfg.budget_source));
        }
        if (max > 0) core_buf_printf(&b, "; OLLAMA_MAX_LOADED_MODELS=%d", max);
        snprintf(msg, cap, "%s", b.data ? b.data : "pinned models are in the way");
        core_buf_deinit(&b);
        res = ADMIT_FAIL;
    }
    free(cand);
    return res;
}

/* Tries to place one pending request; true when it left the pending list. */
static bool place(sched *s, sched_req *r)
{
    sched_entry *e = entry_find(s, r->path);
    if (e) {
        if (e->state == SCHED_STATE_READY && !e->draining && !needs_reload(s, e, r)) {
            r->warm = true;
            attach(s, e, r);
            return true;
        }
        if (e->state == SCHED_STATE_LOADING && !e->abandoned && !needs_reload(s, e, r)) {
            r->next = NULL;
            if (e->wait_tail) e->wait_tail->next = r;
            else e->wait_head = r;
            e->wait_tail = r;
            e->n_waiters++;
            return true;
        }
        if (e->state == SCHED_STATE_READY && !e->draining) {
            CORE_INFO("sched: %s will reload (num_ctx %lld -> %lld or other load options) "
                      "once idle", e->name, (long long)e->opts.num_ctx, (long long)r->num_ctx);
            e->draining = true;
            e->want_unload = true;
            e->unload_reason = "reload";
            if (e->refs == 0) start_unload(s, e, "reload");
        }
        return false;
    }
    sched_pathrec *rec = rec_get(s, r->path);
    if (!rec) {
        fail_unattached(s, r, CORE_NOMEM, "out of memory");
        return true;
    }
    if (!rec->probed) {
        core_err err;
        sched_probe pr;
        memset(&pr, 0, sizeof pr);
        pthread_mutex_unlock(&s->mu);
        int rc = s->be->probe(r->path, &pr, &err);
        pthread_mutex_lock(&s->mu);
        if (rc) {
            s->load_failures++;
            CORE_ERROR("sched: cannot load %s: %s", r->name, err.msg);
            sched_emit(s, SCHED_EVT_LOAD_FAILED, r->name, r->path, err.msg, 0, 0);
            fail_unattached(s, r, rc, err.msg);
            return true;
        }
        rec->probe = pr;
        rec->probed = true;
        if (entry_find(s, r->path)) return false; /* cannot happen: only we add entries */
    }
    sched_load_opts o;
    req_load_opts(s, r, &rec->probe, &o);
    size_t est = s->be->estimate(&rec->probe, &o);
    char msg[512];
    if (s->cfg.budget_bytes && est > s->cfg.budget_bytes) {
        char a[32], b[32];
        fmt_size(est, a, sizeof a);
        fmt_size(s->cfg.budget_bytes, b, sizeof b);
        snprintf(msg, sizeof msg, "model %s requires %s (weights and context for num_ctx %lld "
                 "x %d slots), more than the whole memory budget of %s (%s)", r->name, a,
                 (long long)o.num_ctx, o.n_seq, b,
                 core_budget_source_name(s->cfg.budget_source));
        CORE_WARN("sched: %s", msg);
        s->rejected_too_large++;
        sched_emit(s, SCHED_EVT_REJECT, r->name, r->path, msg, est, 0);
        fail_unattached(s, r, CORE_LIMIT, msg);
        return true;
    }
    int a = admit(s, r->name, est, msg, sizeof msg);
    if (a == ADMIT_WAIT) return false;
    if (a == ADMIT_FAIL) {
        CORE_WARN("sched: %s", msg);
        s->rejected_pinned++;
        sched_emit(s, SCHED_EVT_REJECT, r->name, r->path, msg, est, 0);
        fail_unattached(s, r, CORE_BUSY, msg);
        return true;
    }
    start_load(s, r, rec, &o, est);
    return true;
}

static void process_pending(sched *s)
{
    sched_req *prev = NULL;
    for (;;) {
        sched_req *r = prev ? prev->next : s->pend_head;
        if (!r) break;
        pend_remove(s, prev, r);
        bool gone = true;
        if (s->stopping) fail_unattached(s, r, CORE_BUSY, "server is shutting down");
        else if (atomic_load(&r->cancel)) fail_unattached(s, r, CORE_CANCELLED, "request canceled");
        else gone = place(s, r);
        if (!gone) { /* back where it was (place may have dropped the lock: re-read) */
            r->next = prev ? prev->next : s->pend_head;
            if (prev) prev->next = r;
            else s->pend_head = r;
            if (!r->next) s->pend_tail = r;
            prev = r;
        }
    }
}

/* When nothing is pending any more (the requests that asked for them left), a busy model
 * still draining for an eviction or a reload goes back to normal service: an eviction or a
 * reload happens only while a request waits for it (the spirit of departure 5). */
static void undo_orphan_drains(sched *s)
{
    if (s->pend_head || s->stopping) return;
    for (sched_entry *e = s->entries; e; e = e->next) {
        if (e->state != SCHED_STATE_READY || !e->draining || e->refs == 0 ||
            !e->unload_reason)
            continue;
        if (strcmp(e->unload_reason, "evicted") && strcmp(e->unload_reason, "reload")) continue;
        CORE_INFO("sched: %s stays: the request it was to %s for has left", e->name,
                  strcmp(e->unload_reason, "reload") ? "be evicted" : "reload");
        e->draining = false;
        e->want_unload = false;
        e->unload_reason = NULL;
    }
}

static void *sched_main(void *arg)
{
    sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int64_t now = core_mono_ns();
        for (sched_entry *e = s->entries, *n; e; e = n) {
            n = e->next;
            if (e->state == SCHED_STATE_LOADING && e->load_done) handle_load_done(s, e);
            else if (e->state == SCHED_STATE_UNLOADING && e->unload_done)
                handle_unload_done(s, e);
        }
        for (sched_entry *e = s->entries; e; e = e->next) {
            if (e->state == SCHED_STATE_LOADING) {
                check_loading(s, e, now);
            } else if (e->state == SCHED_STATE_READY) {
                if (s->stopping && e->refs > 0) start_unload(s, e, "shutdown");
                else check_ready(s, e, now);
            }
        }
        process_pending(s);
        undo_orphan_drains(s);
        if (s->stopping && !s->entries && !s->pend_head) break;
        int64_t wake = 0;
        for (sched_entry *e = s->entries; e; e = e->next) {
            if (e->state == SCHED_STATE_READY && e->refs == 0 && e->timer_armed &&
                (!wake || e->expires_mono < wake))
                wake = e->expires_mono;
            if (e->state == SCHED_STATE_LOADING && e->load_deadline && !e->abandoned &&
                (!wake || e->load_deadline < wake))
                wake = e->load_deadline + 1;
        }
        bool any_done = false;
        for (sched_entry *e = s->entries; e; e = e->next)
            if ((e->state == SCHED_STATE_LOADING && e->load_done) ||
                (e->state == SCHED_STATE_UNLOADING && e->unload_done))
                any_done = true;
        if (any_done) continue;
        if (wake) {
            struct timespec ts = {.tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL};
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        } else {
            pthread_cond_wait(&s->cv, &s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

// ---- public ----

const char *sched_ka_source_name(int source)
{
    switch (source) {
    case SCHED_KA_SERVER: return "server";
    case SCHED_KA_MODEL: return "model";
    case SCHED_KA_REQUEST: return "request";
    default: return "default";
    }
}

const char *sched_state_name(int state)
{
    switch (state) {
    case SCHED_STATE_LOADING: return "loading";
    case SCHED_STATE_READY: return "ready";
    case SCHED_STATE_UNLOADING: return "unloading";
    default: return "unknown";
    }
}

const char *sched_event_kind_name(int kind)
{
    static const char *names[] = {"load", "load_failed", "unload", "evict", "expire", "reject"};
    return kind >= 0 && kind < (int)(sizeof names / sizeof names[0]) ? names[kind] : "unknown";
}

void sched_config_default(sched_config *c)
{
    memset(c, 0, sizeof *c);
    c->num_parallel = 1;
    c->max_loaded = 0;
    c->max_queue = 512;
    c->load_timeout_ns = SCHED_DEFAULT_KA_NS;
    c->keep_alive_ns = SCHED_DEFAULT_KA_NS;
    c->keep_alive_source = SCHED_KA_DEFAULT;
    c->num_ctx = 4096;
    c->kv_type = ENG_KV_F16;
    c->budget_source = CORE_BUDGET_UNLIMITED;
}

int sched_new_with_backend(sched **out, const sched_config *cfg, const sched_backend *be,
                           core_err *err)
{
    sched *s = calloc(1, sizeof *s);
    if (!s) return core_err_set(err, CORE_NOMEM, "out of memory for the scheduler");
    s->cfg = *cfg;
    if (s->cfg.num_parallel < 1) s->cfg.num_parallel = 1;
    if (s->cfg.num_ctx < 4) s->cfg.num_ctx = 4;
    if (s->cfg.keep_alive_ns < 0) s->cfg.keep_alive_ns = SCHED_FOREVER;
    s->be = be;
    s->start_mono = core_mono_ns();
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->th, NULL, sched_main, s)) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return core_err_set(err, CORE_NOMEM, "cannot start the scheduler thread");
    }
    *out = s;
    return CORE_OK;
}

void sched_free(sched *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    for (sched_pathrec *p = s->recs, *n; p; p = n) {
        n = p->next;
        free(p->path);
        free(p);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int sched_submit(sched *s, const sched_params *p, sched_req **out, core_err *err)
{
    if (!p->model.path || !p->model.path[0])
        return core_err_set(err, CORE_INVALID, "no model path");
    if (p->kind < SCHED_GENERATE || p->kind > SCHED_LOAD)
        return core_err_set(err, CORE_INVALID, "unknown request kind %d", p->kind);
    if (p->n_inputs && !p->inputs) return core_err_set(err, CORE_INVALID, "no inputs");
    sched_req *r;
    int rc = sched_req_make(&r, p, err);
    if (rc) return rc;
    r->s = s;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        r->holds = 1;
        sched_req_drop(r);
        return core_err_set(err, CORE_BUSY, "server is shutting down");
    }
    if (s->cfg.max_queue > 0 && s->n_waiting >= s->cfg.max_queue) {
        s->rejected_busy++;
        const char *who = p->model.name ? p->model.name : p->model.path;
        char msg[160];
        snprintf(msg, sizeof msg, "queue full: %d requests already wait (OLLAMA_MAX_QUEUE)",
                 s->cfg.max_queue);
        sched_emit(s, SCHED_EVT_REJECT, who, p->model.path, msg, 0, 0);
        pthread_mutex_unlock(&s->mu);
        CORE_WARN("sched: request for %s refused: %s", who, msg);
        r->holds = 1;
        sched_req_drop(r);
        return core_err_set(err, CORE_BUSY, SCHED_BUSY_MSG);
    }
    s->n_waiting++;
    r->waiting = true;
    sched_entry *e = entry_find(s, r->path);
    if (e && e->state == SCHED_STATE_READY && !e->draining && !needs_reload(s, e, r)) {
        r->warm = true;
        attach(s, e, r); /* spec 0.2: a resident model skips the queue */
    } else {
        pend_push(s, r);
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    *out = r;
    return CORE_OK;
}

void sched_req_cancel(sched_req *r)
{
    if (!r) return;
    atomic_store(&r->cancel, true);
    sched *s = r->s;
    pthread_mutex_lock(&s->mu);
    if (r->entry && r->entry->run) sched_runner_wake(r->entry->run);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void sched_req_free(sched_req *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    bool finished = r->finished;
    pthread_mutex_unlock(&r->mu);
    if (!finished) sched_req_cancel(r);
    sched_req_drop(r);
}

int sched_unload(sched *s, const char *path, bool *was_resident, core_err *err)
{
    if (!path) return core_err_set(err, CORE_INVALID, "no model path");
    pthread_mutex_lock(&s->mu);
    sched_entry *e = entry_find(s, path);
    if (was_resident) *was_resident = e != NULL;
    if (e && e->state != SCHED_STATE_UNLOADING) {
        e->ka_ns = 0;
        e->ka_src = SCHED_KA_REQUEST;
        e->timer_armed = false;
        e->want_unload = true;
        if (!e->unload_reason) e->unload_reason = "requested";
        if (e->state == SCHED_STATE_LOADING && e->n_waiters == 0) e->abandoned = true;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return CORE_OK;
}

static void info_fill(sched *s, sched_entry *e, sched_model_info *m, int64_t now_wall)
{
    snprintf(m->name, sizeof m->name, "%s", e->name);
    snprintf(m->path, sizeof m->path, "%s", e->path);
    snprintf(m->digest, sizeof m->digest, "%s", e->digest);
    m->state = e->state;
    m->in_flight = e->refs;
    m->slots = e->opts.n_seq;
    m->slots_busy = e->run ? sched_runner_busy(e->run) : 0;
    m->waiting = e->n_waiters + (e->refs > m->slots_busy ? e->refs - m->slots_busy : 0);
    m->keep_alive_ns = e->ka_ns;
    m->keep_alive_source = e->ka_src;
    m->pinned = entry_pinned(e);
    if (m->pinned) m->expires_at = SCHED_FOREVER;
    else if (e->ka_ns == 0 || e->want_unload || e->state == SCHED_STATE_UNLOADING)
        m->expires_at = now_wall;
    else if (e->refs == 0 && e->timer_armed)
        m->expires_at = deadline_after(e->idle_wall, e->ka_ns);
    else m->expires_at = deadline_after(now_wall, e->ka_ns);
    m->last_used = e->last_used_wall;
    m->loaded_at = e->loaded_wall;
    m->num_ctx = e->opts.num_ctx;
    m->n_ctx_train = e->rec->probe.n_ctx_train;
    m->kv_type = e->opts.kv_type;
    m->est_bytes = e->est_bytes;
    m->measured_bytes = e->measured_bytes;
    m->size_bytes = entry_size(e);
    /* A runner is detached under this lock before its instance is freed (unload_thread), so
     * an attached runner means the instance is alive. */
    if (e->run && e->inst && s->be->resident) m->resident_bytes = s->be->resident(e->inst);
    m->weight_bytes = e->weight_bytes;
    m->kv_bytes = e->kv_bytes;
    m->requests = e->rec->requests;
    m->warm_hits = e->rec->warm_hits;
    m->cold_loads = e->rec->cold_loads;
    m->last_load_ns = e->rec->last_load_ns;
    m->tokens_generated = e->rec->tokens;
    m->prompt_tokens = e->rec->prompt_tokens;
    (void)s;
}

int sched_snapshot(sched *s, sched_snap *out, core_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    for (sched_entry *e = s->entries; e; e = e->next) n++;
    if (n) {
        out->models = calloc(n, sizeof *out->models);
        if (!out->models) {
            pthread_mutex_unlock(&s->mu);
            return core_err_set(err, CORE_NOMEM, "out of memory for a snapshot");
        }
    }
    int64_t now = core_wall_ns();
    for (sched_entry *e = s->entries; e; e = e->next) {
        info_fill(s, e, &out->models[out->n_models], now);
        out->models_bytes += entry_size(e);
        out->n_models++;
    }
    out->budget_bytes = s->cfg.budget_bytes;
    out->budget_source = s->cfg.budget_source;
    out->queue_depth = s->n_waiting;
    out->max_queue = s->cfg.max_queue;
    out->max_loaded = s->cfg.max_loaded;
    out->num_parallel = s->cfg.num_parallel;
    out->loads = s->loads;
    out->load_failures = s->load_failures;
    out->unloads = s->unloads;
    out->evictions = s->evictions;
    out->expiries = s->expiries;
    out->rejected_busy = s->rejected_busy;
    out->rejected_pinned = s->rejected_pinned;
    out->rejected_too_large = s->rejected_too_large;
    out->requests = s->requests;
    out->uptime_ns = core_mono_ns() - s->start_mono;
    pthread_mutex_unlock(&s->mu);
    return CORE_OK;
}

void sched_snap_deinit(sched_snap *snap)
{
    if (!snap) return;
    free(snap->models);
    memset(snap, 0, sizeof *snap);
}
