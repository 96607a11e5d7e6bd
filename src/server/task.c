/* task.c — a store operation (create, pull) run on a worker thread of its own, reporting
 * `{"status":…}` lines as it goes (spec appendix C, H.68).
 *
 * The worker emits lines into a queue; the HTTP thread either waits for the end (not
 * streamed) or waits for the first line(s) and then hands the queue to a streamed response,
 * whose producer sends the queued lines and, at the end, `{"status":"success"}` or
 * `{"error":…}`. Waiting before the response starts lets an error that comes before the
 * first lines be answered with a real status code.
 *
 * Threads and ownership: the srv_task is shared by the worker (which emits and sets the
 * result) and the HTTP side (which waits, streams and frees); everything shared is under mu.
 * The cancel flag is an atomic: set by the HTTP side (client gone, forced shutdown), read by
 * the work whenever it likes. srv_task_free cancels, joins the worker, then frees — so the
 * daemon's shutdown (which frees every response) waits for the work before the store is
 * closed. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/internal.h"

struct srv_task {
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* a line was queued or the work ended */
    core_buf lines;          /* NDJSON lines not yet sent (under mu) */
    size_t n_emitted;        /* lines emitted so far (under mu) */
    size_t last_off;         /* offset in lines of the last queued line (under mu) */
    char last_key[80];       /* its coalescing key, "" for none (under mu) */
    bool done;               /* the work returned; rc and err are set (under mu) */
    int rc;
    core_err err;
    atomic_bool cancel;
    srv_task_fn fn;
    void *arg;
    void (*free_arg)(void *);
    pthread_t thread;
    bool started;            /* thread is running or ran: join it */
};

static void *task_main(void *p)
{
    srv_task *t = p;
    core_err err;
    core_err_clear(&err);
    int rc = t->fn(t, t->arg, &err);
    if (rc && !err.msg[0]) core_err_set(&err, rc, "%s", core_code_str(rc));
    /* It goes out as a JSON string: a message that quotes foreign bytes (a registry's error
     * page) or was cut inside a character by core_err's size would leave the client with
     * an empty reply, or a stream without its last line. */
    if (rc) srv_utf8_fix(err.msg);
    pthread_mutex_lock(&t->mu);
    t->rc = rc;
    t->err = err;
    t->done = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int srv_task_start(srv_task **out, srv_task_fn fn, void *arg, void (*free_arg)(void *),
                   core_err *err)
{
    srv_task *t = calloc(1, sizeof *t);
    if (!t) {
        if (free_arg) free_arg(arg);
        return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    core_buf_init(&t->lines);
    atomic_init(&t->cancel, false);
    t->fn = fn;
    t->arg = arg;
    t->free_arg = free_arg;
    if (pthread_create(&t->thread, NULL, task_main, t) != 0) {
        srv_task_free(t);
        return core_err_set(err, CORE_BUSY, "cannot start a worker thread");
    }
    t->started = true;
    *out = t;
    return CORE_OK;
}

void srv_task_free(srv_task *t)
{
    if (!t) return;
    atomic_store(&t->cancel, true);
    if (t->started) pthread_join(t->thread, NULL);
    if (t->free_arg) t->free_arg(t->arg);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    core_buf_deinit(&t->lines);
    free(t);
}

const atomic_bool *srv_task_cancel_flag(srv_task *t)
{
    return &t->cancel;
}

void srv_task_emit(srv_task *t, json_t *obj, const char *key)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s) return;
    pthread_mutex_lock(&t->mu);
    /* A progress line replaces the previous one of the same key that is still queued, so a
     * slow reader gets the latest figures instead of a growing backlog. */
    if (key && key[0] && t->last_off < t->lines.len && strcmp(key, t->last_key) == 0) {
        t->lines.len = t->last_off;
    }
    t->last_off = t->lines.len;
    snprintf(t->last_key, sizeof t->last_key, "%s", key ? key : "");
    core_buf_append_str(&t->lines, s);
    core_buf_append_str(&t->lines, "\n");
    t->n_emitted++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    free(s);
}

void srv_task_status(srv_task *t, const char *status)
{
    srv_task_emit(t, json_pack("{s:s}", "status", status), NULL);
}

/* Waits on cv for at most ms (mu held). */
static void cv_wait_ms(srv_task *t, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (int64_t)ms * 1000000;
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&t->cv, &t->mu, &ts);
}

static bool task_wait(srv_task *t, srv_req *r, size_t n_lines)
{
    pthread_mutex_lock(&t->mu);
    while (!t->done && t->n_emitted < n_lines) {
        cv_wait_ms(t, 100);
        if (!atomic_load(&t->cancel) &&
            (srv_conn_gone(r->conn) || atomic_load(&r->srv->force_stop))) {
            atomic_store(&t->cancel, true);
        }
    }
    bool done = t->done;
    pthread_mutex_unlock(&t->mu);
    return done;
}

static int task_result(srv_task *t, core_err *err)
{
    pthread_mutex_lock(&t->mu);
    int rc = t->done ? t->rc : CORE_BUSY;
    if (err) *err = t->err;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

// ---- the streamed response ----

static int task_next(void *ctx, core_buf *out, int timeout_ms)
{
    srv_task *t = ctx;
    pthread_mutex_lock(&t->mu);
    if (!t->done && t->lines.len == 0) cv_wait_ms(t, timeout_ms);
    if (t->lines.len) {
        core_buf_append(out, t->lines.data, t->lines.len);
        core_buf_reset(&t->lines);
        t->last_off = 0;
        t->last_key[0] = '\0';
    }
    bool done = t->done;
    pthread_mutex_unlock(&t->mu);
    if (!done) return SRV_NEXT_MORE;
    json_t *last = t->rc == CORE_OK ? json_pack("{s:s}", "status", "success")
                                    : json_pack("{s:s}", "error", t->err.msg);
    char *s = last ? json_dumps(last, JSON_COMPACT) : NULL;
    if (s) {
        core_buf_append_str(out, s);
        core_buf_append_str(out, "\n");
    }
    free(s);
    json_decref(last);
    return SRV_NEXT_END;
}

static void task_cancel(void *ctx)
{
    srv_task *t = ctx;
    atomic_store(&t->cancel, true);
}

static void task_free(void *ctx)
{
    srv_task_free(ctx);
}

enum MHD_Result srv_task_respond(srv_req *r, srv_task *t, bool stream, size_t n_first,
                                 unsigned (*status_of)(int code))
{
    if (!status_of) status_of = srv_code_status;
    if (!task_wait(t, r, stream ? n_first : SIZE_MAX)) {
        srv_producer p = {task_next, task_cancel, task_free, t};
        return srv_reply_stream(r, 200, "application/x-ndjson", &p);
    }
    core_err err;
    int rc = task_result(t, &err);
    pthread_mutex_lock(&t->mu);
    bool early = t->n_emitted < n_first;
    pthread_mutex_unlock(&t->mu);
    if (rc && (!stream || early)) {
        srv_task_free(t);
        return srv_reply_error(r, status_of(rc), "%s", err.msg);
    }
    if (!stream) {
        srv_task_free(t);
        return srv_reply_json(r, 200, json_pack("{s:s}", "status", "success"));
    }
    srv_producer p = {task_next, task_cancel, task_free, t};
    return srv_reply_stream(r, 200, "application/x-ndjson", &p);
}
