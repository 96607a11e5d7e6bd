/* api_native.c — /api/generate, /api/chat, /api/embed and /api/embeddings.
 *
 * Each handler validates the request completely before touching the scheduler (types,
 * keep_alive, unsupported features → 400), resolves the model (unknown → 404, DESIGN §4.9),
 * handles the empty-prompt load/unload forms (spec B), builds the prompt and submits. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

// ---- shared request plumbing (the request itself is a srv_ireq, infer.c) ----

/* Rejects what dwell cannot serve yet, rather than ignoring it. */
static int check_unsupported(json_t *b, const char *model, core_err *err)
{
    json_t *v = json_object_get(b, "format");
    if (v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v)))
        return core_err_set(err, CORE_UNSUPPORTED, "format (JSON mode or a schema) is not "
                            "supported by dwell yet");
    v = json_object_get(b, "images");
    if (json_is_array(v) && json_array_size(v) > 0)
        return core_err_set(err, CORE_UNSUPPORTED, "images are not supported by dwell yet");
    v = json_object_get(b, "tools");
    if (json_is_array(v) && json_array_size(v) > 0) {
        /* spec I.73: "<full name> does not support tools" */
        store_name n;
        char full[STORE_NAME_MAX];
        if (store_name_parse(&n, model, NULL) == CORE_OK) store_name_full(&n, full, sizeof full);
        else snprintf(full, sizeof full, "%s", model);
        return core_err_set(err, CORE_UNSUPPORTED, "%s does not support tools (dwell has no "
                            "tool calling yet)", full);
    }
    v = json_object_get(b, "think");
    if (v && !json_is_null(v) && !json_is_false(v))
        return core_err_set(err, CORE_UNSUPPORTED, "\"%s\" does not support thinking", model);
    v = json_object_get(b, "logprobs");
    if (json_is_true(v))
        return core_err_set(err, CORE_UNSUPPORTED, "logprobs are not supported by dwell yet");
    int64_t top = 0;
    int rc = srv_json_int(b, "GenerateRequest", "top_logprobs", &top, err);
    if (rc) return rc;
    if (top < 0 || top > 20) /* spec G.59 */
        return core_err_set(err, CORE_INVALID, "top_logprobs must be between 0 and 20");
    return CORE_OK;
}

/* The types of every field of the native inference requests (spec G.59-61, I.70);
 * keep_alive, input and the message list's elements are checked where they are read. */
static const srv_field k_generate_fields[] = {
    {"model", SRV_F_STR},        {"prompt", SRV_F_STR},       {"suffix", SRV_F_STR},
    {"system", SRV_F_STR},       {"template", SRV_F_STR},     {"context", SRV_F_ARRAY},
    {"stream", SRV_F_BOOL},      {"raw", SRV_F_BOOL},         {"format", SRV_F_STR_OR_OBJ},
    {"images", SRV_F_STR_ARRAY}, {"options", SRV_F_OBJECT},   {"think", SRV_F_BOOL_OR_STR},
    {"truncate", SRV_F_BOOL},    {"shift", SRV_F_BOOL},       {"logprobs", SRV_F_BOOL},
    {"top_logprobs", SRV_F_INT},
};
static const srv_field k_chat_fields[] = {
    {"model", SRV_F_STR},       {"messages", SRV_F_ARRAY},  {"stream", SRV_F_BOOL},
    {"format", SRV_F_STR_OR_OBJ}, {"tools", SRV_F_ARRAY},   {"options", SRV_F_OBJECT},
    {"think", SRV_F_BOOL_OR_STR}, {"truncate", SRV_F_BOOL}, {"shift", SRV_F_BOOL},
    {"logprobs", SRV_F_BOOL},   {"top_logprobs", SRV_F_INT},
};
static const srv_field k_message_fields[] = {
    {"role", SRV_F_STR},        {"content", SRV_F_STR},     {"thinking", SRV_F_STR},
    {"images", SRV_F_STR_ARRAY}, {"tool_calls", SRV_F_ARRAY}, {"tool_name", SRV_F_STR},
    {"tool_call_id", SRV_F_STR},
};
static const srv_field k_embed_fields[] = {
    {"model", SRV_F_STR},      {"truncate", SRV_F_BOOL},  {"dimensions", SRV_F_INT},
    {"options", SRV_F_OBJECT},
};
static const srv_field k_embeddings_fields[] = {
    {"model", SRV_F_STR}, {"prompt", SRV_F_STR}, {"options", SRV_F_OBJECT},
};

static int check_field_types(json_t *b, const char *where, core_err *err)
{
#define SRV_CHECK(tbl) srv_json_check_fields(b, where, tbl, sizeof tbl / sizeof tbl[0], err)
    if (!strcmp(where, "GenerateRequest")) return SRV_CHECK(k_generate_fields);
    if (!strcmp(where, "ChatRequest")) return SRV_CHECK(k_chat_fields);
    if (!strcmp(where, "EmbedRequest")) return SRV_CHECK(k_embed_fields);
    if (!strcmp(where, "EmbeddingRequest")) return SRV_CHECK(k_embeddings_fields);
    return CORE_OK;
#undef SRV_CHECK
}

/* Common front half: model, keep_alive, unsupported features, options. On failure it has
 * replied; returns false. */
static bool nreq_begin(srv_req *r, srv_ireq *q, const char *where, const char **model,
                       bool require_model, enum MHD_Result *res)
{
    core_err err;
    core_err_clear(&err);
    const char *legacy = NULL;
    if (check_field_types(q->body, where, &err) ||
        srv_json_str(q->body, where, "model", model, &err) ||
        srv_json_str(q->body, where, "name", &legacy, &err) ||
        srv_json_keep_alive(q->body, &q->ka_set, &q->ka_ns, &err) ||
        check_unsupported(q->body, *model ? *model : "", &err)) {
        *res = srv_reply_err(r, &err);
        return false;
    }
    if (!*model || !**model) *model = legacy;
    if (require_model && (!*model || !**model)) {
        *res = srv_reply_error(r, 400, "model is required");
        return false;
    }
    json_t *opts = json_object_get(q->body, "options");
    if (json_is_null(opts)) opts = NULL;
    if (!srv_ireq_model(r, q, *model ? *model : "", opts, res)) return false;
    /* spec G.59: truncate false fails a prompt longer than the context instead of cutting
     * it (embed reads its own truncate) */
    json_t *tr = json_object_get(q->body, "truncate");
    if (json_is_boolean(tr)) q->p.truncate = json_is_true(tr);
    return true;
}

/* The one object that answers a load or unload: done, with done_reason; frees j. */
static enum MHD_Result reply_done(srv_req *r, srv_job *j, const char *reason)
{
    sched_event ev = {0};
    ev.type = SCHED_EV_DONE;
    ev.done_reason = reason;
    json_t *o = srv_native_obj(j, "", &ev);
    srv_job_free(j);
    return srv_reply_json(r, 200, o);
}

/* The load (empty prompt) and unload (empty prompt, keep_alive 0) forms of spec B. */
static enum MHD_Result load_or_unload(srv_req *r, srv_ireq *q, int kind, const char *model)
{
    srv_job *j = srv_job_new(r, kind, model);
    if (!j) return srv_reply_error(r, 500, "out of memory");
    core_err err;
    if (q->ka_set && q->ka_ns == 0) {
        bool was = false;
        sched_unload(r->srv->sched, q->m->model_path, &was, NULL);
        if (was) CORE_INFO("unloading %s: requested (keep_alive 0)", q->m->display);
        return reply_done(r, j, "unload");
    }
    q->p.kind = SCHED_LOAD;
    if (sched_submit(r->srv->sched, &q->p, &j->req, &err)) {
        srv_job_free(j);
        return srv_reply_err(r, &err);
    }
    srv_job_wait(r, j);
    if (j->ev.type == SCHED_EV_ERROR) {
        core_err e = j->ev.err;
        srv_job_free(j);
        return srv_reply_err(r, &e);
    }
    return reply_done(r, j, "load");
}

// ---- /api/generate ----

static int read_context(srv_ireq *q, core_err *err)
{
    json_t *v = json_object_get(q->body, "context");
    if (!v || json_is_null(v)) return CORE_OK;
    if (!json_is_array(v))
        return core_err_set(err, CORE_INVALID, "json: cannot unmarshal %s into Go struct field "
                            "GenerateRequest.context of type []int", srv_json_type_name(v));
    size_t n = json_array_size(v);
    q->ctx_tokens = malloc((n + 1) * sizeof *q->ctx_tokens);
    if (!q->ctx_tokens) return core_err_set(err, CORE_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
            json_integer_value(e) > INT32_MAX)
            return core_err_set(err, CORE_INVALID, "context[%zu] is not a token id", i);
        q->ctx_tokens[i] = (int32_t)json_integer_value(e);
    }
    q->p.context = q->ctx_tokens;
    q->p.n_context = n;
    return CORE_OK;
}

static int generate_prompt(srv_ireq *q, const char *prompt, const char *system,
                           const char *tmpl_override, const char *suffix, bool raw,
                           core_err *err)
{
    if (raw) return core_buf_append_str(&q->prompt, prompt) ? core_err_set(err, CORE_NOMEM,
                                                                          "out of memory") : 0;
    int rc = srv_template_for(q->m, tmpl_override, &q->tmpl, &q->fmt_stops, err);
    if (rc) return rc;
    if (suffix && *suffix && !eng_tmpl_uses_suffix(q->tmpl))
        return core_err_set(err, CORE_INVALID, "%s does not support insert", q->m->full);
    const char *sys = system && *system ? system : q->m->system_text;
    eng_msg msgs[2];
    size_t n = 0;
    if (sys && *sys) msgs[n++] = (eng_msg){"system", sys};
    msgs[n++] = (eng_msg){"user", prompt};
    eng_tmpl_vars vars = {.system = sys, .prompt = prompt, .suffix = suffix,
                          .messages = msgs, .n_messages = n};
    return eng_tmpl_render(q->tmpl, &vars, &q->prompt, err);
}

enum MHD_Result srv_h_generate(srv_req *r)
{
    enum MHD_Result res;
    srv_ireq q;
    if (!srv_ireq_init(r, &q, &res)) return res;
    const char *model = NULL, *prompt = NULL, *system = NULL, *tmpl = NULL, *suffix = NULL;
    bool stream = true, raw = false;
    core_err err;
    core_err_clear(&err);
    const char *W = "GenerateRequest";
    if (srv_json_str(q.body, W, "prompt", &prompt, &err) ||
        srv_json_str(q.body, W, "system", &system, &err) ||
        srv_json_str(q.body, W, "template", &tmpl, &err) ||
        srv_json_str(q.body, W, "suffix", &suffix, &err) ||
        srv_json_bool(q.body, W, "stream", &stream, &err) ||
        srv_json_bool(q.body, W, "raw", &raw, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    if (raw && ((tmpl && *tmpl) || (system && *system) || json_object_get(q.body, "context"))) {
        res = srv_reply_error(r, 400, "raw mode does not support template, system, or context");
        goto out;
    }
    if (!nreq_begin(r, &q, W, &model, false, &res)) goto out;
    if (!prompt || !*prompt) {
        res = load_or_unload(r, &q, SRV_JOB_GENERATE, model);
        goto out;
    }
    if (read_context(&q, &err) ||
        generate_prompt(&q, prompt, system, tmpl, suffix, raw, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    res = srv_ireq_submit(r, &q, SRV_JOB_GENERATE, model, stream, !raw, false);
out:
    srv_ireq_free(&q);
    return res;
}

// ---- /api/chat ----

/* Reads messages (model's MESSAGE layer first, then the request's; the model's SYSTEM first
 * unless the first request message is a system message). */
static int chat_messages(srv_ireq *q, json_t *reqmsgs, json_t *modelmsgs, size_t *n_out,
                         core_err *err)
{
    size_t nr = json_is_array(reqmsgs) ? json_array_size(reqmsgs) : 0;
    size_t nm = json_is_array(modelmsgs) ? json_array_size(modelmsgs) : 0;
    q->msgs = calloc(nr + nm + 2, sizeof *q->msgs);
    if (!q->msgs) return core_err_set(err, CORE_NOMEM, "out of memory");
    size_t n = 0;
    json_t *first = nr ? json_array_get(reqmsgs, 0) : NULL;
    json_t *first_role = first ? json_object_get(first, "role") : NULL;
    bool req_system_first = json_is_string(first_role) &&
                            !strcasecmp(json_string_value(first_role), "system");
    if (q->m->system_text && *q->m->system_text && !req_system_first)
        q->msgs[n++] = (eng_msg){"system", q->m->system_text};
    for (size_t pass = 0; pass < 2; pass++) {
        json_t *arr = pass == 0 ? modelmsgs : reqmsgs;
        size_t cnt = pass == 0 ? nm : nr;
        for (size_t i = 0; i < cnt; i++) {
            json_t *m = json_array_get(arr, i);
            const char *role = NULL, *content = NULL;
            if (!json_is_object(m))
                return core_err_set(err, CORE_INVALID, "json: cannot unmarshal %s into Go "
                                    "struct field ChatRequest.messages of type api.Message",
                                    srv_json_type_name(m));
            if (srv_json_check_fields(m, "Message", k_message_fields,
                                      sizeof k_message_fields / sizeof k_message_fields[0],
                                      err) ||
                srv_json_str(m, "Message", "role", &role, err) ||
                srv_json_str(m, "Message", "content", &content, err))
                return err->code;
            json_t *im = json_object_get(m, "images");
            if (json_is_array(im) && json_array_size(im))
                return core_err_set(err, CORE_UNSUPPORTED, "images are not supported by dwell "
                                    "yet");
            json_t *tc = json_object_get(m, "tool_calls");
            if (json_is_array(tc) && json_array_size(tc))
                return core_err_set(err, CORE_UNSUPPORTED, "tool calls are not supported by "
                                    "dwell yet");
            if (!role || !*role)
                return core_err_set(err, CORE_INVALID, "messages[%zu]: role is required", i);
            char *lr = srv_ireq_own(q, strdup(role));
            if (!lr) return core_err_set(err, CORE_NOMEM, "out of memory");
            for (char *c = lr; *c; c++) *c = (char)tolower((unsigned char)*c);
            q->msgs[n++] = (eng_msg){lr, content ? content : ""};
        }
    }
    *n_out = n;
    return CORE_OK;
}

enum MHD_Result srv_h_chat(srv_req *r)
{
    enum MHD_Result res;
    srv_ireq q;
    if (!srv_ireq_init(r, &q, &res)) return res;
    const char *model = NULL;
    bool stream = true;
    core_err err;
    core_err_clear(&err);
    json_t *msgs = json_object_get(q.body, "messages");
    json_t *modelmsgs = NULL;
    if (srv_json_bool(q.body, "ChatRequest", "stream", &stream, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    if (msgs && !json_is_null(msgs) && !json_is_array(msgs)) {
        res = srv_reply_error(r, 400, "json: cannot unmarshal %s into Go struct field "
                              "ChatRequest.messages of type []api.Message",
                              srv_json_type_name(msgs));
        goto out;
    }
    if (!nreq_begin(r, &q, "ChatRequest", &model, true, &res)) goto out;
    if (!msgs || json_array_size(msgs) == 0) {
        res = load_or_unload(r, &q, SRV_JOB_CHAT, model);
        goto out;
    }
    if (q.m->messages_json) modelmsgs = json_loads(q.m->messages_json, 0, NULL);
    size_t n = 0;
    if (chat_messages(&q, msgs, modelmsgs, &n, &err) ||
        srv_template_for(q.m, NULL, &q.tmpl, &q.fmt_stops, &err) ||
        eng_tmpl_render_chat(q.tmpl, NULL, q.msgs, n, &q.prompt, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    res = srv_ireq_submit(r, &q, SRV_JOB_CHAT, model, stream, false, false);
out:
    json_decref(modelmsgs);
    srv_ireq_free(&q);
    return res;
}

// ---- /api/embed and /api/embeddings ----

static int read_inputs(json_t *v, const char ***out, size_t *n, core_err *err)
{
    *n = 0;
    if (!v || json_is_null(v)) return CORE_OK;
    if (json_is_string(v)) {
        if (!*json_string_value(v)) return CORE_OK;
        *out = malloc(sizeof **out);
        if (!*out) return core_err_set(err, CORE_NOMEM, "out of memory");
        (*out)[0] = json_string_value(v);
        *n = 1;
        return CORE_OK;
    }
    if (!json_is_array(v)) return core_err_set(err, CORE_INVALID, "invalid input type");
    *out = malloc((json_array_size(v) + 1) * sizeof **out);
    if (!*out) return core_err_set(err, CORE_NOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) return core_err_set(err, CORE_INVALID, "invalid input type");
        (*out)[(*n)++] = json_string_value(e);
    }
    return CORE_OK;
}

/* Runs an embedding request to completion; on success j->ev is the DONE event. */
int srv_embed_run(srv_req *r, sched_params *p, srv_job **out, core_err *err)
{
    srv_job *j = srv_job_new(r, SRV_JOB_GENERATE, "");
    if (!j) return core_err_set(err, CORE_NOMEM, "out of memory");
    int rc = sched_submit(r->srv->sched, p, &j->req, err);
    if (rc) {
        srv_job_free(j);
        return rc;
    }
    do {
        srv_job_wait(r, j);
    } while (j->ev.type == SCHED_EV_TEXT);
    if (j->ev.type == SCHED_EV_ERROR) {
        *err = j->ev.err;
        srv_job_free(j);
        return err->code ? err->code : CORE_INTERNAL;
    }
    *out = j;
    return CORE_OK;
}

json_t *srv_embd_row(const float *v, size_t n, int64_t dims, bool renorm)
{
    size_t k = dims > 0 && (size_t)dims < n ? (size_t)dims : n;
    double scale = 1;
    if (renorm && k < n) {
        double ss = 0;
        for (size_t i = 0; i < k; i++) ss += (double)v[i] * v[i];
        if (ss > 0) scale = 1.0 / sqrt(ss);
    }
    json_t *row = json_array();
    for (size_t i = 0; i < k; i++) json_array_append_new(row, json_real(v[i] * scale));
    return row;
}

static enum MHD_Result embed_common(srv_req *r, bool legacy)
{
    enum MHD_Result res;
    srv_ireq q;
    if (!srv_ireq_init(r, &q, &res)) return res;
    const char *W = legacy ? "EmbeddingRequest" : "EmbedRequest";
    const char *model = NULL;
    const char **inputs = NULL;
    size_t n = 0;
    bool truncate = true;
    int64_t dims = 0;
    core_err err;
    core_err_clear(&err);
    json_t *in = json_object_get(q.body, legacy ? "prompt" : "input");
    if ((legacy && in && !json_is_null(in) && !json_is_string(in) &&
         core_err_set(&err, CORE_INVALID, "json: cannot unmarshal %s into Go struct field "
                      "EmbeddingRequest.prompt of type string", srv_json_type_name(in))) ||
        read_inputs(in, &inputs, &n, &err) ||
        srv_json_bool(q.body, W, "truncate", &truncate, &err) ||
        srv_json_int(q.body, W, "dimensions", &dims, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    if (!nreq_begin(r, &q, W, &model, true, &res)) goto out;
    if (n == 0) q.p.kind = SCHED_LOAD;
    else {
        q.p.kind = SCHED_EMBED;
        q.p.inputs = inputs;
        q.p.n_inputs = n;
        q.p.truncate = truncate;
        q.p.normalize = !legacy;
    }
    srv_job *j = NULL;
    if (srv_embed_run(r, &q.p, &j, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    json_t *o;
    if (legacy) {
        o = json_pack("{s:o}", "embedding", n ? srv_embd_row(j->ev.embd, j->ev.n_embd, 0, false)
                                              : json_array());
    } else {
        json_t *rows = json_array();
        for (size_t i = 0; i < j->ev.n_embd_rows && n; i++)
            json_array_append_new(rows, srv_embd_row(j->ev.embd + i * j->ev.n_embd,
                                                     j->ev.n_embd, dims, true));
        o = json_pack("{s:s,s:o}", "model", model, "embeddings", rows);
        if (n) {
            json_object_set_new(o, "total_duration", json_integer(j->ev.total_ns));
            json_object_set_new(o, "load_duration", json_integer(j->ev.load_ns));
            json_object_set_new(o, "prompt_eval_count",
                                json_integer(j->ev.embd_prompt_tokens));
        }
    }
    srv_job_free(j);
    /* spec B.21: keep_alive 0 on embed loads (or embeds) and then unloads. */
    if (q.ka_set && q.ka_ns == 0) sched_unload(r->srv->sched, q.m->model_path, NULL, NULL);
    res = srv_reply_json(r, 200, o);
out:
    free(inputs);
    srv_ireq_free(&q);
    return res;
}

enum MHD_Result srv_h_embed(srv_req *r)
{
    return embed_common(r, false);
}

enum MHD_Result srv_h_embeddings(srv_req *r)
{
    return embed_common(r, true);
}
