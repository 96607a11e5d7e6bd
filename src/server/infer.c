/* infer.c — what the inference endpoints share: resolving the model, building the prompt
 * from its template, submitting to the scheduler, waiting for events while watching the
 * connection, and turning events into NDJSON or SSE.
 *
 * A srv_job belongs to the HTTP thread that made it until it is handed to a streaming
 * response (srv_reply_stream), which then owns it; its cancel() may run on another thread
 * and only calls sched_req_cancel (thread-safe). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "server/internal.h"

bool srv_conn_gone(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
                                                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&pfd, 1, 0) <= 0) return false;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

// ---- model resolution ----

int srv_model_resolve(srv_req *r, const char *name, store_model **out, unsigned *status,
                      char *msg, size_t cap)
{
    core_err err;
    *out = NULL;
    if (!name || !*name) {
        *status = 404;
        snprintf(msg, cap, "model '' not found");
        return CORE_NOTFOUND;
    }
    if (!store_name_valid(name)) {
        *status = 400;
        snprintf(msg, cap, "invalid model name \"%s\"", name);
        return CORE_INVALID;
    }
    if (!store_model_exists(r->srv->store, name)) {
        *status = 404;
        if (r->oai) snprintf(msg, cap, "model \"%s\" not found", name);
        else if (!strncmp(r->path, "/api/embed", 10)) /* embed and embeddings */
            snprintf(msg, cap, "model \"%s\" not found, try pulling it first", name);
        else snprintf(msg, cap, "model '%s' not found", name);
        return CORE_NOTFOUND;
    }
    if (store_resolve(r->srv->store, name, out, &err)) {
        /* Installed but damaged (a blob deleted or truncated): the server's problem. */
        *status = err.code == CORE_INVALID ? 400 : 500;
        snprintf(msg, cap, "%s", err.msg);
        return err.code;
    }
    if (!(*out)->model_path) {
        store_model_free(*out);
        *out = NULL;
        *status = 400;
        snprintf(msg, cap, "model '%s' has no weights layer", name);
        return CORE_INVALID;
    }
    if ((*out)->n_adapters) {
        /* Running the base weights alone would answer as another model. */
        store_model_free(*out);
        *out = NULL;
        *status = 400;
        snprintf(msg, cap, "model '%s' has an adapter (LoRA) layer: adapters are not "
                 "supported by dwell yet", name);
        return CORE_UNSUPPORTED;
    }
    return CORE_OK;
}

void srv_sched_model(const store_model *m, const char *as_sent, sched_model *out)
{
    (void)as_sent;
    memset(out, 0, sizeof *out);
    out->name = m->display;
    out->path = m->model_path;
    out->digest = m->digest;
}

// ---- building a request ----

bool srv_ireq_init(srv_req *r, srv_ireq *q, enum MHD_Result *res)
{
    memset(q, 0, sizeof *q);
    core_buf_init(&q->prompt);
    q->body = srv_body_json(r, res);
    if (q->body) return true;
    srv_ireq_free(q);
    return false;
}

void srv_ireq_free(srv_ireq *q)
{
    json_decref(q->body);
    json_decref(q->model_params);
    store_model_free(q->m);
    eng_tmpl_free(q->tmpl);
    core_buf_deinit(&q->prompt);
    free(q->ctx_tokens);
    free(q->msgs);
    for (size_t i = 0; i < q->n_owned; i++) free(q->owned[i]);
    free(q->owned);
}

char *srv_ireq_own(srv_ireq *q, char *s)
{
    if (!s) return NULL;
    char **o = realloc(q->owned, (q->n_owned + 1) * sizeof *o);
    if (!o) {
        free(s);
        return NULL;
    }
    q->owned = o;
    q->owned[q->n_owned++] = s;
    return s;
}

bool srv_ireq_model(srv_req *r, srv_ireq *q, const char *model, json_t *opts,
                    enum MHD_Result *res)
{
    unsigned status;
    char msg[512];
    if (srv_model_resolve(r, model, &q->m, &status, msg, sizeof msg)) {
        *res = srv_reply_error(r, status, "%s", msg);
        return false;
    }
    sched_params_default(&q->p);
    srv_sched_model(q->m, model, &q->p.model);
    q->p.has_keep_alive = q->ka_set;
    q->p.keep_alive_ns = q->ka_ns;
    if (q->m->params_json) {
        q->model_params = json_loads(q->m->params_json, 0, NULL);
        if (q->model_params && !json_is_object(q->model_params)) {
            json_decref(q->model_params);
            q->model_params = NULL;
        }
    }
    core_err err;
    core_err_clear(&err);
    if (srv_options_apply(q->model_params, opts, &q->p, &q->stops, &err)) {
        *res = srv_reply_err(r, &err);
        return false;
    }
    return true;
}

enum MHD_Result srv_ireq_submit(srv_req *r, srv_ireq *q, int kind, const char *model,
                                bool stream, bool want_context, bool include_usage)
{
    if (q->stops.n == 0 && q->fmt_stops) {
        for (size_t i = 0; q->fmt_stops[i] && q->stops.n < SRV_MAX_STOPS; i++)
            q->stops.v[q->stops.n++] = q->fmt_stops[i];
        q->p.stops = q->stops.v;
        q->p.n_stops = q->stops.n;
    }
    q->p.kind = SCHED_GENERATE;
    q->p.prompt = q->prompt.data ? q->prompt.data : "";
    q->p.prompt_len = q->prompt.len;
    q->p.want_context = want_context;
    srv_job *j = srv_job_new(r, kind, model);
    if (!j) return srv_reply_error(r, 500, "out of memory");
    j->stream = stream;
    j->want_context = want_context;
    j->include_usage = include_usage;
    core_err err;
    if (sched_submit(r->srv->sched, &q->p, &j->req, &err)) {
        srv_job_free(j);
        return srv_reply_err(r, &err);
    }
    CORE_DEBUG("%s: prompt of %zu bytes submitted", model, q->prompt.len);
    return srv_job_respond(r, j);
}

// ---- templates ----

/* The Jinja chat template of the GGUF at path (malloc'd), or NULL. */
static char *gguf_jinja(const char *path)
{
    gguf_file *f = NULL;
    if (gguf_open(&f, path, NULL)) return NULL;
    gguf_str s;
    char *out = NULL;
    if (gguf_get_str(f, "tokenizer.chat_template", &s, NULL) == CORE_OK) {
        out = malloc(s.len + 1);
        if (out) {
            memcpy(out, s.ptr, s.len);
            out[s.len] = 0;
        }
    }
    gguf_close(f);
    return out;
}

int srv_template_for(const store_model *m, const char *override, eng_tmpl **out,
                     const char *const **fmt_stops, core_err *err)
{
    *fmt_stops = NULL;
    const char *src = override && *override ? override : m->template_text;
    if (!src) {
        char *jinja = gguf_jinja(m->model_path);
        const eng_chat_format *f = eng_chat_format_for_jinja(jinja);
        free(jinja);
        src = f->template_src;
        *fmt_stops = f->stops;
        CORE_DEBUG("model %s: no template layer, using chat format %s", m->display, f->name);
    }
    if (eng_tmpl_parse(out, src, strlen(src), err)) {
        core_err e = *err;
        return core_err_set(err, CORE_INVALID, "template: %s", e.msg);
    }
    return CORE_OK;
}

// ---- waiting ----

int srv_job_wait(srv_req *r, srv_job *j)
{
    int64_t cancelled_at = 0;
    for (;;) {
        core_err err;
        int rc = sched_req_next(j->req, 100, &j->ev, &err);
        if (rc == CORE_OK) return CORE_OK;
        if (rc != CORE_TIMEOUT) {
            j->ev.type = SCHED_EV_ERROR;
            j->ev.err = err;
            return CORE_OK;
        }
        if (!cancelled_at && (srv_conn_gone(r->conn) || atomic_load(&r->srv->force_stop))) {
            /* The final event (CANCELLED) follows within a token; take it. */
            sched_req_cancel(j->req);
            cancelled_at = core_mono_ns();
        }
        if (cancelled_at && core_mono_ns() - cancelled_at > 30 * (int64_t)1000000000) {
            j->ev.type = SCHED_EV_ERROR;
            core_err_set(&j->ev.err, CORE_CANCELLED, "request canceled");
            return CORE_OK;
        }
    }
}

void srv_job_free(srv_job *j)
{
    if (!j) return;
    if (j->req) sched_req_free(j->req);
    sched_event_deinit(&j->ev);
    core_buf_deinit(&j->text);
    core_buf_deinit(&j->line);
    free(j);
}

srv_job *srv_job_new(srv_req *r, int kind, const char *model_as_sent)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->srv = r->srv;
    snprintf(j->model, sizeof j->model, "%s", model_as_sent);
    core_buf_init(&j->text);
    core_buf_init(&j->line);
    j->created = core_wall_ns() / 1000000000;
    static atomic_uint_fast64_t counter;
    snprintf(j->id, sizeof j->id, "%s-%llu", kind == SRV_JOB_OAI_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)(atomic_fetch_add(&counter, 1) + 1));
    return j;
}

// ---- formatting ----

static void add_metrics(json_t *o, const sched_event *ev)
{
    const struct { const char *k; int64_t v; } m[] = {
        {"total_duration", ev->total_ns},     {"load_duration", ev->load_ns},
        {"prompt_eval_count", ev->prompt_eval_count},
        {"prompt_eval_duration", ev->prompt_eval_ns},
        {"eval_count", ev->eval_count},       {"eval_duration", ev->eval_ns},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (m[i].v) json_object_set_new(o, m[i].k, json_integer(m[i].v));
}

/* A native object (generate or chat) with text, done flag and, when done, the metrics. */
json_t *srv_native_obj(const srv_job *j, const char *text, const sched_event *done_ev)
{
    char ts[48];
    srv_now_utc(ts, sizeof ts);
    json_t *o = json_pack("{s:s,s:s}", "model", j->model, "created_at", ts);
    if (j->kind == SRV_JOB_CHAT)
        json_object_set_new(o, "message", json_pack("{s:s,s:s}", "role", "assistant",
                                                    "content", text));
    else json_object_set_new(o, "response", json_string(text));
    json_object_set_new(o, "done", json_boolean(done_ev != NULL));
    if (done_ev) {
        json_object_set_new(o, "done_reason", json_string(done_ev->done_reason
                                                             ? done_ev->done_reason : "stop"));
        if (j->want_context && done_ev->n_context) {
            json_t *ctx = json_array();
            for (size_t i = 0; i < done_ev->n_context; i++)
                json_array_append_new(ctx, json_integer(done_ev->context[i]));
            json_object_set_new(o, "context", ctx);
        }
        add_metrics(o, done_ev);
    }
    return o;
}

json_t *srv_oai_obj(const srv_job *j, const char *text, const sched_event *done_ev,
                    bool chunk)
{
    json_t *choice;
    const char *finish = NULL;
    if (done_ev) finish = done_ev->done_reason && !strcmp(done_ev->done_reason, "length")
                              ? "length" : "stop";
    if (j->kind == SRV_JOB_OAI_CHAT) {
        json_t *msg = json_pack("{s:s,s:s}", "role", "assistant", "content", text);
        choice = json_pack("{s:i,s:o,s:o}", "index", 0, chunk ? "delta" : "message", msg,
                           "finish_reason", finish ? json_string(finish) : json_null());
    } else {
        choice = json_pack("{s:s,s:i,s:o}", "text", text, "index", 0, "finish_reason",
                           finish ? json_string(finish) : json_null());
    }
    const char *object = j->kind == SRV_JOB_OAI_CHAT
                             ? (chunk ? "chat.completion.chunk" : "chat.completion")
                             : "text_completion";
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o]}", "id", j->id, "object", object,
                          "created", (json_int_t)j->created, "model", j->model,
                          "system_fingerprint", "fp_ollama", "choices", choice);
    if (done_ev && (!chunk || j->include_usage)) {
        json_object_set_new(o, "usage", json_pack("{s:I,s:I,s:I}", "prompt_tokens",
                                                  (json_int_t)done_ev->prompt_eval_count,
                                                  "completion_tokens",
                                                  (json_int_t)done_ev->eval_count,
                                                  "total_tokens",
                                                  (json_int_t)(done_ev->prompt_eval_count +
                                                               done_ev->eval_count)));
    }
    return o;
}

static json_t *error_obj(const srv_job *j, const core_err *e)
{
    char msg[sizeof e->msg];
    snprintf(msg, sizeof msg, "%s", e->msg[0] ? e->msg : core_code_str(e->code));
    srv_utf8_fix(msg); /* a stream must not end without its last line */
    if (j->kind == SRV_JOB_OAI_CHAT || j->kind == SRV_JOB_OAI_COMPLETION)
        return json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", msg, "type", "api_error",
                         "param", "code");
    return json_pack("{s:s}", "error", msg);
}

/* Formats the job's current event into out; true when it was the final one. */
static bool format_event(srv_job *j, core_buf *out)
{
    bool sse = j->kind == SRV_JOB_OAI_CHAT || j->kind == SRV_JOB_OAI_COMPLETION;
    sched_event *ev = &j->ev;
    switch (ev->type) {
    case SCHED_EV_TEXT:
        if (ev->text.len == 0) return false;
        srv_json_line(out, sse ? srv_oai_obj(j, ev->text.data, NULL, true)
                               : srv_native_obj(j, ev->text.data, NULL),
                      sse);
        return false;
    case SCHED_EV_DONE:
        if (sse) {
            /* The finish_reason chunk, then (stream_options.include_usage) one chunk with
             * no choices and the usage, as OpenAI and Ollama send them. */
            json_t *last = srv_oai_obj(j, "", ev, true);
            json_object_del(last, "usage");
            srv_json_line(out, last, true);
            if (j->include_usage) {
                json_t *u = srv_oai_obj(j, "", ev, true);
                json_object_set_new(u, "choices", json_array());
                srv_json_line(out, u, true);
            }
            core_buf_append_str(out, "data: [DONE]\n\n");
        } else {
            srv_json_line(out, srv_native_obj(j, "", ev), false);
        }
        return true;
    default:
        CORE_WARN("%s: request failed mid-stream: %s", j->model, ev->err.msg);
        srv_json_line(out, error_obj(j, &ev->err), sse);
        if (sse) core_buf_append_str(out, "data: [DONE]\n\n");
        return true;
    }
}

// ---- the streaming producer ----

static int job_next(void *ctx, core_buf *out, int timeout_ms)
{
    srv_job *j = ctx;
    if (j->have_event) {
        j->have_event = false;
        if (format_event(j, out)) return SRV_NEXT_END;
    }
    core_err err;
    int rc = sched_req_next(j->req, timeout_ms, &j->ev, &err);
    if (rc == CORE_TIMEOUT) return SRV_NEXT_MORE;
    if (rc != CORE_OK) {
        j->ev.type = SCHED_EV_ERROR;
        j->ev.err = err;
    }
    return format_event(j, out) ? SRV_NEXT_END : SRV_NEXT_MORE;
}

static void job_cancel(void *ctx)
{
    srv_job *j = ctx;
    sched_req_cancel(j->req);
}

static void job_free(void *ctx)
{
    srv_job_free(ctx);
}

enum MHD_Result srv_job_respond(srv_req *r, srv_job *j)
{
    /* Wait for the first event before any byte goes out, so an error that comes first (load
     * failure, budget, queue) gets a real HTTP status (spec H.68). */
    srv_job_wait(r, j);
    if (j->ev.type == SCHED_EV_ERROR) {
        core_err e = j->ev.err;
        srv_job_free(j);
        return srv_reply_err(r, &e);
    }
    if (j->stream) {
        j->have_event = true;
        srv_producer p = {job_next, job_cancel, job_free, j};
        bool sse = j->kind == SRV_JOB_OAI_CHAT || j->kind == SRV_JOB_OAI_COMPLETION;
        return srv_reply_stream(r, 200, sse ? "text/event-stream" : "application/x-ndjson",
                                &p);
    }
    /* Not streamed: gather the text, then one object. */
    for (;;) {
        if (j->ev.type == SCHED_EV_TEXT) {
            core_buf_append(&j->text, j->ev.text.data, j->ev.text.len);
        } else if (j->ev.type == SCHED_EV_DONE) {
            break;
        } else {
            core_err e = j->ev.err;
            srv_job_free(j);
            return srv_reply_err(r, &e);
        }
        srv_job_wait(r, j);
    }
    const char *text = j->text.data ? j->text.data : "";
    json_t *o = (j->kind == SRV_JOB_OAI_CHAT || j->kind == SRV_JOB_OAI_COMPLETION)
                    ? srv_oai_obj(j, text, &j->ev, false)
                    : srv_native_obj(j, text, &j->ev);
    srv_job_free(j);
    return srv_reply_json(r, 200, o);
}
