/* api_openai.c — the OpenAI-compatible routes: /v1/chat/completions, /v1/completions,
 * /v1/embeddings, /v1/models and /v1/models/{model}.
 *
 * They share the scheduler with the native routes. As in Ollama, the OpenAI fields become
 * the request's options layer, with temperature and top_p 1.0 when not given (spec G.63),
 * over the model's parameters; an Ollama `options` object is not read (spec G.63: no
 * num_ctx on /v1). Extension (DESIGN §4.8): `keep_alive` is honoured. Errors use OpenAI's
 * shape (http.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

/* Model, keep_alive, unsupported features and the sampling fields of a request (a srv_ireq,
 * infer.c). Replies on failure. */
static bool oreq_begin(srv_req *r, srv_ireq *q, const char **model, enum MHD_Result *res)
{
    core_err err;
    core_err_clear(&err);
    static const srv_field fields[] = {
        {"model", SRV_F_STR},           {"stream", SRV_F_BOOL},
        {"stream_options", SRV_F_OBJECT}, {"max_tokens", SRV_F_INT},
        {"max_completion_tokens", SRV_F_INT}, {"temperature", SRV_F_NUM},
        {"top_p", SRV_F_NUM},           {"seed", SRV_F_INT},
        {"frequency_penalty", SRV_F_NUM}, {"presence_penalty", SRV_F_NUM},
        {"stop", SRV_F_STR_OR_STR_ARRAY}, {"user", SRV_F_STR},
        {"tools", SRV_F_ARRAY},
    };
    if (srv_json_check_fields(q->body, "request", fields, sizeof fields / sizeof fields[0],
                              &err) ||
        srv_json_str(q->body, "request", "model", model, &err) ||
        srv_json_keep_alive(q->body, &q->ka_set, &q->ka_ns, &err)) {
        *res = srv_reply_err(r, &err);
        return false;
    }
    json_t *v = json_object_get(q->body, "tools");
    if (json_is_array(v) && json_array_size(v)) {
        *res = srv_reply_error(r, 400, "tools are not supported by dwell yet");
        return false;
    }
    v = json_object_get(q->body, "response_format");
    json_t *type = json_is_object(v) ? json_object_get(v, "type") : NULL;
    if (v && !json_is_null(v) && !(json_is_string(type) &&
                                   !strcmp(json_string_value(type), "text"))) {
        *res = srv_reply_error(r, 400, "response_format (JSON mode or a schema) is not "
                               "supported by dwell yet");
        return false;
    }
    int64_t n = 1;
    if (srv_json_int(q->body, "request", "n", &n, &err) || n != 1) {
        *res = srv_reply_error(r, 400, "only n = 1 is supported");
        return false;
    }
    if (json_is_true(json_object_get(q->body, "logprobs")) ||
        json_is_true(json_object_get(q->body, "echo"))) {
        *res = srv_reply_error(r, 400, "logprobs and echo are not supported by dwell yet");
        return false;
    }
    if (!*model || !**model) {
        *res = srv_reply_error(r, 400, "model is required");
        return false;
    }
    /* The OpenAI fields become the request's options layer; Ollama's /v1 defaults
     * (temperature and top_p 1.0) are part of it, so they override the model's params. */
    json_t *layer = json_pack("{s:f,s:f}", "temperature", 1.0, "top_p", 1.0);
    static const struct { const char *oai, *opt; } map[] = {
        {"temperature", "temperature"}, {"top_p", "top_p"}, {"seed", "seed"},
        {"frequency_penalty", "frequency_penalty"}, {"presence_penalty", "presence_penalty"},
        {"max_tokens", "num_predict"}, {"max_completion_tokens", "num_predict"},
        {"stop", "stop"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        json_t *x = json_object_get(q->body, map[i].oai);
        if (x && !json_is_null(x)) json_object_set(layer, map[i].opt, x);
    }
    bool ok = srv_ireq_model(r, q, *model, layer, res);
    json_decref(layer);
    return ok;
}

/* stream_options.include_usage */
static bool include_usage(const srv_ireq *q)
{
    return json_is_true(json_object_get(json_object_get(q->body, "stream_options"),
                                        "include_usage"));
}

/* Text of a message content: a string or an array of {type:"text", text} parts. */
static int content_text(srv_ireq *q, json_t *c, const char **out, core_err *err)
{
    if (!c || json_is_null(c)) {
        *out = "";
        return CORE_OK;
    }
    if (json_is_string(c)) {
        *out = json_string_value(c);
        return CORE_OK;
    }
    if (!json_is_array(c)) return core_err_set(err, CORE_INVALID, "invalid message content");
    core_buf b;
    core_buf_init(&b);
    for (size_t i = 0; i < json_array_size(c); i++) {
        json_t *part = json_array_get(c, i);
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type || strcmp(type, "text") != 0) {
            core_buf_deinit(&b);
            return core_err_set(err, CORE_UNSUPPORTED, "content parts of type \"%s\" are not "
                                "supported by dwell yet", type ? type : "?");
        }
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t) core_buf_append_str(&b, t);
    }
    char *s = srv_ireq_own(q, core_buf_steal(&b));
    core_buf_deinit(&b);
    if (!s) return core_err_set(err, CORE_NOMEM, "out of memory");
    *out = s;
    return CORE_OK;
}

enum MHD_Result srv_h_oai_chat(srv_req *r)
{
    enum MHD_Result res;
    srv_ireq q;
    if (!srv_ireq_init(r, &q, &res)) return res;
    const char *model = NULL;
    bool stream = false;
    core_err err;
    core_err_clear(&err);
    json_t *msgs = json_object_get(q.body, "messages");
    if (srv_json_bool(q.body, "request", "stream", &stream, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        res = srv_reply_error(r, 400, "[] is too short - 'messages'");
        goto out;
    }
    if (!oreq_begin(r, &q, &model, &res)) goto out;
    size_t n = json_array_size(msgs), k = 0;
    q.msgs = calloc(n + 1, sizeof *q.msgs);
    if (!q.msgs) {
        res = srv_reply_error(r, 500, "out of memory");
        goto out;
    }
    if (q.m->system_text && *q.m->system_text) {
        const char *r0 = json_string_value(json_object_get(json_array_get(msgs, 0), "role"));
        if (!r0 || strcmp(r0, "system") != 0) q.msgs[k++] = (eng_msg){"system", q.m->system_text};
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *text = "";
        if (!role) {
            res = srv_reply_error(r, 400, "messages[%zu]: role is required", i);
            goto out;
        }
        if (!strcmp(role, "developer")) role = "system";
        json_t *tc = json_object_get(m, "tool_calls");
        if ((json_is_array(tc) && json_array_size(tc)) || !strcmp(role, "tool")) {
            res = srv_reply_error(r, 400, "tool calls are not supported by dwell yet");
            goto out;
        }
        if (content_text(&q, json_object_get(m, "content"), &text, &err)) {
            res = srv_reply_err(r, &err);
            goto out;
        }
        q.msgs[k++] = (eng_msg){role, text};
    }
    if (srv_template_for(q.m, NULL, &q.tmpl, &q.fmt_stops, &err) ||
        eng_tmpl_render_chat(q.tmpl, NULL, q.msgs, k, &q.prompt, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    res = srv_ireq_submit(r, &q, SRV_JOB_OAI_CHAT, model, stream, false, include_usage(&q));
out:
    srv_ireq_free(&q);
    return res;
}

enum MHD_Result srv_h_oai_completions(srv_req *r)
{
    enum MHD_Result res;
    srv_ireq q;
    if (!srv_ireq_init(r, &q, &res)) return res;
    const char *model = NULL, *prompt = NULL, *suffix = NULL;
    bool stream = false;
    core_err err;
    core_err_clear(&err);
    json_t *pv = json_object_get(q.body, "prompt");
    if (json_is_array(pv) && json_array_size(pv) == 1 &&
        json_is_string(json_array_get(pv, 0)))
        prompt = json_string_value(json_array_get(pv, 0));
    else if (json_is_string(pv)) prompt = json_string_value(pv);
    if (!prompt) {
        res = srv_reply_error(r, 400, "prompt must be a string (or an array of one string)");
        goto out;
    }
    if (srv_json_bool(q.body, "request", "stream", &stream, &err) ||
        srv_json_str(q.body, "request", "suffix", &suffix, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    if (!oreq_begin(r, &q, &model, &res)) goto out;
    if (suffix && *suffix) {
        /* Fill-in-the-middle needs the template's .Suffix. */
        if (srv_template_for(q.m, NULL, &q.tmpl, &q.fmt_stops, &err)) {
            res = srv_reply_err(r, &err);
            goto out;
        }
        if (!eng_tmpl_uses_suffix(q.tmpl)) {
            res = srv_reply_error(r, 400, "%s does not support insert", q.m->full);
            goto out;
        }
        eng_tmpl_vars vars = {.prompt = prompt, .suffix = suffix};
        if (eng_tmpl_render(q.tmpl, &vars, &q.prompt, &err)) {
            res = srv_reply_err(r, &err);
            goto out;
        }
    } else {
        core_buf_append_str(&q.prompt, prompt); /* Ollama: /v1/completions is raw */
    }
    q.fmt_stops = NULL; /* the prompt is raw: the chat format's stops are not added */
    res = srv_ireq_submit(r, &q, SRV_JOB_OAI_COMPLETION, model, stream, false,
                          include_usage(&q));
out:
    srv_ireq_free(&q);
    return res;
}

// ---- embeddings ----

static char *base64_floats(const float *v, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *b = (const unsigned char *)v; /* little-endian float32, as OpenAI */
    size_t len = n * sizeof(float);
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t x = (uint32_t)b[i] << 16;
        if (i + 1 < len) x |= (uint32_t)b[i + 1] << 8;
        if (i + 2 < len) x |= b[i + 2];
        out[o++] = tbl[(x >> 18) & 63];
        out[o++] = tbl[(x >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(x >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[x & 63] : '=';
    }
    out[o] = 0;
    return out;
}

enum MHD_Result srv_h_oai_embeddings(srv_req *r)
{
    enum MHD_Result res;
    srv_ireq q;
    if (!srv_ireq_init(r, &q, &res)) return res;
    const char *model = NULL, *enc = NULL;
    const char **inputs = NULL;
    size_t n = 0;
    int64_t dims = 0;
    core_err err;
    core_err_clear(&err);
    json_t *in = json_object_get(q.body, "input");
    if (json_is_string(in)) {
        inputs = malloc(sizeof *inputs);
        if (inputs) inputs[n++] = json_string_value(in);
    } else if (json_is_array(in)) {
        inputs = malloc((json_array_size(in) + 1) * sizeof *inputs);
        for (size_t i = 0; inputs && i < json_array_size(in); i++) {
            if (!json_is_string(json_array_get(in, i))) {
                res = srv_reply_error(r, 400, "invalid input type: dwell accepts strings "
                                      "(token arrays are not supported)");
                goto out;
            }
            inputs[n++] = json_string_value(json_array_get(in, i));
        }
    }
    if (n == 0) {
        res = srv_reply_error(r, 400, "invalid input: expected a non-empty string or array "
                              "of strings");
        goto out;
    }
    if (srv_json_str(q.body, "request", "encoding_format", &enc, &err) ||
        srv_json_int(q.body, "request", "dimensions", &dims, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    if (enc && strcmp(enc, "float") && strcmp(enc, "base64")) {
        res = srv_reply_error(r, 400, "encoding_format must be \"float\" or \"base64\"");
        goto out;
    }
    if (!oreq_begin(r, &q, &model, &res)) goto out;
    q.p.kind = SCHED_EMBED;
    q.p.inputs = inputs;
    q.p.n_inputs = n;
    q.p.normalize = true;
    srv_job *j = NULL;
    if (srv_embed_run(r, &q.p, &j, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < j->ev.n_embd_rows; i++) {
        json_t *row = srv_embd_row(j->ev.embd + i * j->ev.n_embd, j->ev.n_embd, dims, true);
        json_t *emb = row;
        if (enc && !strcmp(enc, "base64")) {
            size_t k = json_array_size(row);
            float *f = malloc((k + 1) * sizeof *f);
            for (size_t t = 0; f && t < k; t++) f[t] = (float)json_real_value(json_array_get(row, t));
            char *s = f ? base64_floats(f, k) : NULL;
            emb = json_string(s ? s : "");
            free(s);
            free(f);
            json_decref(row);
        }
        json_array_append_new(data, json_pack("{s:s,s:o,s:I}", "object", "embedding",
                                              "embedding", emb, "index", (json_int_t)i));
    }
    int64_t toks = j->ev.embd_prompt_tokens;
    srv_job_free(j);
    res = srv_reply_json(r, 200, json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list",
                                           "data", data, "model", model, "usage",
                                           "prompt_tokens", (json_int_t)toks, "total_tokens",
                                           (json_int_t)toks));
out:
    free(inputs);
    srv_ireq_free(&q);
    return res;
}

// ---- models ----

static json_t *oai_model_obj(const char *display, const store_name *n, int64_t modified_ns)
{
    const char *owner = strcmp(n->ns, STORE_DEFAULT_NAMESPACE) == 0 ? "library" : n->ns;
    return json_pack("{s:s,s:s,s:I,s:s}", "id", display, "object", "model", "created",
                     (json_int_t)(modified_ns / 1000000000), "owned_by", owner);
}

enum MHD_Result srv_h_oai_models(srv_req *r)
{
    store_entry *e = NULL;
    size_t n = 0;
    core_err err;
    if (store_list(r->srv->store, &e, &n, &err)) return srv_reply_err(r, &err);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, oai_model_obj(e[i].display, &e[i].name, e[i].modified_ns));
    store_list_free(e);
    return srv_reply_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

enum MHD_Result srv_h_oai_model(srv_req *r)
{
    const char *name = r->path + strlen("/v1/models/");
    char decoded[512];
    snprintf(decoded, sizeof decoded, "%s", name);
    MHD_http_unescape(decoded);
    store_model *m = NULL;
    if (!store_name_valid(decoded))
        return srv_reply_error(r, 400, "invalid model name \"%s\"", decoded);
    if (!store_model_exists(r->srv->store, decoded) ||
        store_resolve(r->srv->store, decoded, &m, NULL) != CORE_OK) {
        store_model_free(m);
        return srv_reply_error(r, 404, "model \"%s\" not found", decoded);
    }
    json_t *o = oai_model_obj(decoded, &m->name, m->modified_ns);
    store_model_free(m);
    return srv_reply_json(r, 200, o);
}
