/* runner.c — one thread per loaded model: takes requests from its queue into free slots
 * (the slot whose cache shares the longest prefix with the prompt), and runs one batched
 * backend step per iteration over every active slot, so OLLAMA_NUM_PARALLEL requests
 * progress together. A cancelled request leaves its slot before the next step (within one
 * token).
 *
 * Owner: the runner thread owns the slots and the backend instance's compute state.
 * run->mu guards the queue, `stop` and `n_busy`. */
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

// ---- helpers ----

/* Ends r with an error: gives the model back first (r may be freed by finish). */
static void runner_fail(sched_runner *run, sched_req *r, int code, const char *msg)
{
    sched_release(run->s, run->e, r);
    sched_req_fail(r, code, "%s", msg);
}

static void slot_close(sched_runner *run, sched_slot *sl, int code, const char *msg)
{
    sched_req *r = sl->req;
    run->be->end(run->inst, sl);
    sl->req = NULL;
    sl->done = false;
    pthread_mutex_lock(&run->mu);
    run->n_busy--;
    pthread_mutex_unlock(&run->mu);
    if (code) {
        runner_fail(run, r, code, msg);
    } else {
        sched_release(run->s, run->e, r);
        sched_req_finish(r);
    }
}

/* Prepares r and puts it on the free slot with the best cached prefix. */
static void runner_admit(sched_runner *run, sched_req *r)
{
    sched_unwait(run->s, r);
    if (atomic_load(&r->cancel)) {
        runner_fail(run, r, CORE_CANCELLED, "request canceled");
        return;
    }
    core_err err;
    core_err_clear(&err);
    if (run->be->prepare(run->inst, r, &err)) {
        runner_fail(run, r, err.code ? err.code : CORE_INTERNAL, err.msg);
        return;
    }
    sched_slot *best = NULL;
    size_t best_n = 0;
    for (int32_t i = 0; i < run->n_slots; i++) {
        sched_slot *sl = &run->slots[i];
        if (sl->req) continue;
        size_t n = run->be->affinity ? run->be->affinity(run->inst, sl, r) : 0;
        if (!best || n > best_n) {
            best = sl;
            best_n = n;
        }
    }
    CORE_ASSERT(best != NULL); /* the caller took r only with a free slot */
    best->req = r;
    best->done = false;
    pthread_mutex_lock(&run->mu);
    run->n_busy++;
    pthread_mutex_unlock(&run->mu);
    if (run->be->begin(run->inst, best, &err))
        slot_close(run, best, err.code ? err.code : CORE_INTERNAL, err.msg);
}

/* One step over the active slots; cancelled ones leave first. */
static void runner_step(sched_runner *run)
{
    int32_t n = 0;
    for (int32_t i = 0; i < run->n_slots; i++) {
        sched_slot *sl = &run->slots[i];
        if (!sl->req) continue;
        if (atomic_load(&sl->req->cancel)) {
            slot_close(run, sl, CORE_CANCELLED, "request canceled");
            continue;
        }
        if (sl->done) {
            slot_close(run, sl, 0, NULL);
            continue;
        }
        run->active[n++] = sl;
    }
    if (!n) return;
    core_err err;
    core_err_clear(&err);
    int rc = run->be->step(run->inst, run->active, n, &err);
    for (int32_t i = 0; i < n; i++) {
        sched_slot *sl = run->active[i];
        if (rc == CORE_CANCELLED && !atomic_load(&sl->req->cancel)) continue; /* retry */
        if (rc && rc != CORE_CANCELLED) slot_close(run, sl, rc, err.msg);
        else if (sl->done) slot_close(run, sl, 0, NULL);
    }
    if (run->step_delay_ns > 0) core_sleep_ns(run->step_delay_ns);
}

static void runner_shutdown(sched_runner *run)
{
    for (int32_t i = 0; i < run->n_slots; i++)
        if (run->slots[i].req) slot_close(run, &run->slots[i], CORE_CANCELLED, "request canceled");
    for (;;) {
        pthread_mutex_lock(&run->mu);
        sched_req *r = run->q_head;
        if (r) {
            run->q_head = r->next;
            if (!run->q_head) run->q_tail = NULL;
            r->next = NULL;
        }
        pthread_mutex_unlock(&run->mu);
        if (!r) break;
        runner_fail(run, r, CORE_CANCELLED, "request canceled");
    }
}

/* Takes the cancelled requests out of the queue (under run->mu) into a list. */
static sched_req *runner_take_cancelled(sched_runner *run)
{
    sched_req *out = NULL, *prev = NULL;
    for (sched_req *r = run->q_head, *n; r; r = n) {
        n = r->next;
        if (!atomic_load(&r->cancel)) {
            prev = r;
            continue;
        }
        if (prev) prev->next = n;
        else run->q_head = n;
        if (run->q_tail == r) run->q_tail = prev;
        r->next = out;
        out = r;
    }
    return out;
}

static void *runner_main(void *arg)
{
    sched_runner *run = arg;
    for (;;) {
        pthread_mutex_lock(&run->mu);
        while (!run->stop && !run->n_busy && !run->q_head) pthread_cond_wait(&run->cv, &run->mu);
        if (run->stop) {
            pthread_mutex_unlock(&run->mu);
            break;
        }
        sched_req *gone = runner_take_cancelled(run);
        if (gone) {
            pthread_mutex_unlock(&run->mu);
            for (sched_req *r = gone, *n; r; r = n) {
                n = r->next;
                r->next = NULL;
                runner_fail(run, r, CORE_CANCELLED, "request canceled");
            }
            continue;
        }
        sched_req *take = NULL;
        if (run->q_head && run->n_busy < run->n_slots) {
            take = run->q_head;
            run->q_head = take->next;
            if (!run->q_head) run->q_tail = NULL;
            take->next = NULL;
        }
        pthread_mutex_unlock(&run->mu);
        if (take) runner_admit(run, take);
        runner_step(run);
    }
    runner_shutdown(run);
    return NULL;
}

// ---- internal API ----

int sched_runner_start(sched_runner **out, sched *s, sched_entry *e, const sched_backend *be,
                       sched_inst *inst, int32_t n_slots, int64_t step_delay_ns,
                       core_err *err)
{
    sched_runner *run = calloc(1, sizeof *run);
    if (!run) return core_err_set(err, CORE_NOMEM, "out of memory for a runner");
    run->s = s;
    run->e = e;
    run->be = be;
    run->inst = inst;
    run->n_slots = n_slots;
    run->step_delay_ns = step_delay_ns;
    run->slots = calloc((size_t)n_slots, sizeof *run->slots);
    run->active = calloc((size_t)n_slots, sizeof *run->active);
    if (!run->slots || !run->active) {
        free(run->slots);
        free(run->active);
        free(run);
        return core_err_set(err, CORE_NOMEM, "out of memory for %d slots", n_slots);
    }
    int32_t i = 0;
    for (; i < n_slots; i++) {
        run->slots[i].id = i;
        int rc = be->slot_init(inst, &run->slots[i], err);
        if (rc) break;
    }
    if (i < n_slots) {
        for (int32_t k = 0; k < i; k++) be->slot_deinit(inst, &run->slots[k]);
        free(run->slots);
        free(run->active);
        free(run);
        return err ? err->code : CORE_NOMEM;
    }
    pthread_mutex_init(&run->mu, NULL);
    pthread_cond_init(&run->cv, NULL);
    if (pthread_create(&run->th, NULL, runner_main, run)) {
        for (int32_t k = 0; k < n_slots; k++) be->slot_deinit(inst, &run->slots[k]);
        pthread_mutex_destroy(&run->mu);
        pthread_cond_destroy(&run->cv);
        free(run->slots);
        free(run->active);
        free(run);
        return core_err_set(err, CORE_NOMEM, "cannot start a runner thread");
    }
    *out = run;
    return CORE_OK;
}

void sched_runner_push(sched_runner *run, sched_req *r)
{
    pthread_mutex_lock(&run->mu);
    r->next = NULL;
    if (run->q_tail) run->q_tail->next = r;
    else run->q_head = r;
    run->q_tail = r;
    pthread_cond_signal(&run->cv);
    pthread_mutex_unlock(&run->mu);
}

void sched_runner_wake(sched_runner *run)
{
    pthread_mutex_lock(&run->mu);
    pthread_cond_signal(&run->cv);
    pthread_mutex_unlock(&run->mu);
}

int32_t sched_runner_busy(sched_runner *run)
{
    pthread_mutex_lock(&run->mu);
    int32_t n = run->n_busy;
    pthread_mutex_unlock(&run->mu);
    return n;
}

void sched_runner_stop(sched_runner *run)
{
    if (!run) return;
    pthread_mutex_lock(&run->mu);
    run->stop = true;
    pthread_cond_signal(&run->cv);
    pthread_mutex_unlock(&run->mu);
    pthread_join(run->th, NULL);
    for (int32_t i = 0; i < run->n_slots; i++) run->be->slot_deinit(run->inst, &run->slots[i]);
    pthread_mutex_destroy(&run->mu);
    pthread_cond_destroy(&run->cv);
    free(run->slots);
    free(run->active);
    free(run);
}
