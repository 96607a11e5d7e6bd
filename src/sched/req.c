/* req.c — a request: the copy of its parameters, and its event channel between the thread
 * that produces its output (runner or scheduler) and the HTTP thread that reads it.
 *
 * Ownership: a request has two holds, the caller's (dropped by sched_req_free) and the
 * scheduler's (dropped when the final event is posted); whichever goes last frees it.
 * Pieces of text (one per token) are appended to one buffer with their end offsets queued
 * beside it, so producing a token costs an append into already-reserved memory, and the
 * reader still gets one event per piece, as Ollama streams one object per token (spec H.64). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

// ---- helpers ----

static char *req_strdup(const char *s)
{
    return strdup(s ? s : "");
}

static char **req_strv_dup(const char *const *v, size_t n, bool *ok)
{
    *ok = true;
    if (!n) return NULL;
    char **out = calloc(n, sizeof *out);
    if (!out) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = req_strdup(v[i]);
        if (!out[i]) *ok = false;
    }
    return out;
}

static void req_strv_free(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void req_destroy(sched_req *r)
{
    free(r->name);
    free(r->path);
    free(r->digest);
    free(r->prompt);
    free(r->context);
    req_strv_free(r->stops, r->n_stops);
    req_strv_free(r->inputs, r->n_inputs);
    eng_tokens_free(&r->toks);
    sched_event_deinit(&r->fin);
    core_buf_deinit(&r->text);
    free(r->ends);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

// ---- internal ----

void sched_params_default(sched_params *p)
{
    memset(p, 0, sizeof *p);
    p->kind = SCHED_GENERATE;
    eng_sampler_params_default(&p->sampler);
    p->num_keep = -1;
    p->truncate = true;
    p->pooling = SCHED_POOL_LAST;
    p->normalize = true;
}

int sched_req_make(sched_req **out, const sched_params *p, core_err *err)
{
    sched_req *r = calloc(1, sizeof *r);
    if (!r) return core_err_set(err, CORE_NOMEM, "out of memory for a request");
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    core_buf_init(&r->text);
    r->holds = 2;
    r->kind = p->kind;
    r->name = req_strdup(p->model.name ? p->model.name : p->model.path);
    r->path = req_strdup(p->model.path);
    r->digest = req_strdup(p->model.digest);
    r->model_has_ka = p->model.has_keep_alive;
    r->model_ka_ns = p->model.keep_alive_ns < 0 ? SCHED_FOREVER : p->model.keep_alive_ns;
    r->has_ka = p->has_keep_alive;
    r->ka_ns = p->keep_alive_ns < 0 ? SCHED_FOREVER : p->keep_alive_ns;
    r->num_ctx = p->num_ctx;
    r->num_batch = p->num_batch;
    r->num_thread = p->num_thread;
    r->prompt = malloc(p->prompt_len + 1);
    if (r->prompt) {
        if (p->prompt_len) memcpy(r->prompt, p->prompt, p->prompt_len);
        r->prompt[p->prompt_len] = 0;
    }
    r->prompt_len = p->prompt_len;
    if (p->n_context) {
        r->context = malloc(p->n_context * sizeof *r->context);
        if (r->context) memcpy(r->context, p->context, p->n_context * sizeof *r->context);
        r->n_context = r->context ? p->n_context : 0;
    }
    r->sampler = p->sampler;
    bool ok1, ok2;
    r->stops = req_strv_dup(p->stops, p->n_stops, &ok1);
    r->n_stops = r->stops ? p->n_stops : 0;
    r->inputs = req_strv_dup(p->inputs, p->n_inputs, &ok2);
    r->n_inputs = r->inputs ? p->n_inputs : 0;
    r->num_predict = p->num_predict;
    r->num_keep = p->num_keep;
    r->want_context = p->want_context;
    r->truncate = p->truncate;
    r->normalize = p->normalize;
    r->pooling = p->pooling;
    r->t_arrive = core_mono_ns();
    atomic_init(&r->cancel, false);
    if (!r->name || !r->path || !r->digest || !r->prompt || !ok1 || !ok2 ||
        (p->n_context && !r->context)) {
        req_destroy(r);
        return core_err_set(err, CORE_NOMEM, "out of memory for a request");
    }
    *out = r;
    return CORE_OK;
}

void sched_req_drop(sched_req *r)
{
    pthread_mutex_lock(&r->mu);
    int left = --r->holds;
    pthread_mutex_unlock(&r->mu);
    if (left == 0) req_destroy(r);
}

void sched_req_emit(sched_req *r, const char *text, size_t len)
{
    if (!len) return;
    pthread_mutex_lock(&r->mu);
    int rc = core_buf_append(&r->text, text, len);
    if (!rc && r->n_ends == r->cap_ends) {
        size_t cap = r->cap_ends ? r->cap_ends * 2 : 64;
        size_t *e = realloc(r->ends, cap * sizeof *e);
        if (e) {
            r->ends = e;
            r->cap_ends = cap;
        } else {
            rc = CORE_NOMEM;
        }
    }
    if (!rc) r->ends[r->n_ends++] = r->text.len;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (rc) atomic_store(&r->cancel, true); /* out of memory: stop this request */
}

void sched_req_finish(sched_req *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->fin.type != SCHED_EV_ERROR) r->fin.type = SCHED_EV_DONE;
    r->fin.total_ns = core_mono_ns() - r->t_arrive;
    if (r->t_acquired) r->fin.load_ns = r->t_acquired - r->t_arrive;
    r->finished = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    sched_req_drop(r);
}

void sched_req_fail(sched_req *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->fin.type = SCHED_EV_ERROR;
    r->fin.err.code = code;
    vsnprintf(r->fin.err.msg, sizeof r->fin.err.msg, fmt, ap);
    va_end(ap);
    sched_req_finish(r);
}

// ---- public ----

void sched_event_deinit(sched_event *ev)
{
    if (!ev) return;
    core_buf_deinit(&ev->text);
    free(ev->context);
    free(ev->embd);
    memset(ev, 0, sizeof *ev);
}

/* Moves the final event's fields into ev, swapping array ownership. */
static void req_take_final(sched_req *r, sched_event *ev)
{
    core_buf keep_text = ev->text;
    int32_t *ctx = ev->context;
    size_t ctx_cap = ev->context_cap;
    float *embd = ev->embd;
    size_t embd_cap = ev->embd_cap;
    *ev = r->fin;
    ev->text = keep_text;
    core_buf_reset(&ev->text);
    /* The request's arrays go to the event; the event's old ones back to the request. */
    r->fin.context = ctx;
    r->fin.context_cap = ctx_cap;
    r->fin.n_context = 0;
    r->fin.embd = embd;
    r->fin.embd_cap = embd_cap;
    r->fin.n_embd_rows = 0;
    core_buf_init(&r->fin.text);
}

int sched_req_next(sched_req *r, int timeout_ms, sched_event *ev, core_err *err)
{
    pthread_mutex_lock(&r->mu);
    if (r->final_taken) {
        pthread_mutex_unlock(&r->mu);
        return core_err_set(err, CORE_INVALID, "the request's final event was already taken");
    }
    struct timespec dl;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    while (!r->n_ends && !r->finished) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&r->cv, &r->mu);
        } else if (pthread_cond_timedwait(&r->cv, &r->mu, &dl)) {
            if (!r->n_ends && !r->finished) {
                pthread_mutex_unlock(&r->mu);
                return CORE_TIMEOUT;
            }
        }
    }
    if (r->n_ends) {
        size_t end = r->ends[0];
        core_buf_reset(&ev->text);
        if (core_buf_append(&ev->text, r->text.data + r->head, end - r->head)) {
            pthread_mutex_unlock(&r->mu);
            atomic_store(&r->cancel, true);
            return core_err_set(err, CORE_NOMEM, "out of memory for the request's text");
        }
        ev->type = SCHED_EV_TEXT;
        r->head = end;
        memmove(r->ends, r->ends + 1, --r->n_ends * sizeof *r->ends);
        if (!r->n_ends) {
            core_buf_reset(&r->text);
            r->head = 0;
        }
    } else {
        req_take_final(r, ev);
        r->final_taken = true;
    }
    pthread_mutex_unlock(&r->mu);
    return CORE_OK;
}

const char *sched_req_model_name(const sched_req *r)
{
    return r->name;
}
