/* api_show.c — POST /api/show: the model's layers, a generated Modelfile, its parameters,
 * capabilities and the GGUF metadata (model_info). Never loads the model: the GGUF header
 * is read through the mapping only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "server/internal.h"

/* GGUF strings are not guaranteed UTF-8: an invalid one shows as "". */
static json_t *str_json(const char *p, uint64_t len)
{
    json_t *s = json_stringn(p, (size_t)len);
    return s ? s : json_string("");
}

static json_t *gguf_value(const gguf_file *f, int64_t i, bool verbose)
{
    gguf_scalar sc;
    const gguf_array *arr = NULL;
    gguf_kv_value(f, i, &sc, &arr);
    switch (gguf_kv_type(f, i)) {
    case GGUF_VT_UINT8: case GGUF_VT_UINT16: case GGUF_VT_UINT32: case GGUF_VT_UINT64:
        return json_integer((json_int_t)sc.u);
    case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64:
        return json_integer(sc.i);
    case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64: return json_real(sc.f);
    case GGUF_VT_BOOL: return json_boolean(sc.b);
    case GGUF_VT_STRING: return str_json(sc.s.ptr, sc.s.len);
    case GGUF_VT_ARRAY: break;
    default: return json_null();
    }
    json_t *a = json_array();
    if (!arr || (arr->n > 5 && !verbose)) return a; /* Ollama: long arrays become [] */
    for (uint64_t k = 0; k < arr->n; k++) {
        switch (arr->type) {
        case GGUF_VT_STRING:
            json_array_append_new(a, str_json(arr->strs[k].ptr, arr->strs[k].len));
            break;
        case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64:
            json_array_append_new(a, json_real(gguf_array_float(arr, k)));
            break;
        case GGUF_VT_BOOL:
            json_array_append_new(a, json_boolean(gguf_array_int(arr, k) != 0));
            break;
        case GGUF_VT_ARRAY: json_array_append_new(a, json_array()); break;
        default: json_array_append_new(a, json_integer(gguf_array_int(arr, k))); break;
        }
    }
    return a;
}

static json_t *model_info(const char *path, bool verbose, json_t **tensors)
{
    gguf_file *f = NULL;
    core_err err;
    json_t *info = json_object();
    if (gguf_open(&f, path, &err)) {
        CORE_WARN("show: cannot read %s: %s", path, err.msg);
        return info;
    }
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        const char *k = gguf_kv_key(f, i);
        if (!strcmp(k, "general.name") || !strcmp(k, "tokenizer.chat_template")) continue;
        json_object_set_new(info, k, gguf_value(f, i, verbose));
    }
    int64_t params = 0;
    json_t *ts = verbose ? json_array() : NULL;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        int64_t ne = 1;
        for (int d = 0; d < t->n_dims; d++) ne *= t->ne[d];
        params += ne;
        if (ts) {
            json_t *shape = json_array();
            for (int d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->ne[d]));
            const core_type_info *ti = core_type_get(t->type);
            json_array_append_new(ts, json_pack("{s:s,s:s,s:o}", "name", t->name, "type",
                                                ti ? ti->name : "?", "shape", shape));
        }
    }
    if (!json_object_get(info, "general.parameter_count"))
        json_object_set_new(info, "general.parameter_count", json_integer(params));
    gguf_close(f);
    *tensors = ts;
    return info;
}

/* A parameter value as Go's fmt prints it (Ollama formats them with %#v for the
 * `parameters` text and %v for the Modelfile): integers as they are, floats in their
 * shortest form that reads back the same (0.7, not 0.69999999999999996; 0, not 0.0),
 * strings quoted when `quote` (%#v) and bare otherwise. Returns malloc'ed text or NULL. */
static char *param_value_text(const json_t *e, bool quote)
{
    if (json_is_real(e)) {
        double d = json_real_value(e);
        char b[40];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(b, sizeof b, "%.*g", prec, d);
            if (strtod(b, NULL) == d) break;
        }
        return strdup(b);
    }
    if (json_is_string(e) && !quote) return strdup(json_string_value(e));
    return json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT);
}

/* "key value" lines, the key left-justified to 30 columns; stop repeats per value. */
static void params_text(json_t *params, core_buf *out, core_buf *mf)
{
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            char *shown = param_value_text(e, true);
            char *bare = param_value_text(e, false);
            if (shown && bare) {
                if (out->len) core_buf_append_str(out, "\n");
                core_buf_printf(out, "%-30s %s", k, shown);
                if (json_is_string(e)) core_buf_printf(mf, "PARAMETER %s \"%s\"\n", k, bare);
                else core_buf_printf(mf, "PARAMETER %s %s\n", k, bare);
            }
            free(shown);
            free(bare);
        }
    }
}

static json_t *capabilities(const store_model *m)
{
    json_t *caps = json_array();
    json_array_append_new(caps, json_string("completion"));
    if (m->template_text) {
        eng_tmpl *t = NULL;
        if (eng_tmpl_parse(&t, m->template_text, strlen(m->template_text), NULL) == CORE_OK &&
            eng_tmpl_uses_suffix(t))
            json_array_append_new(caps, json_string("insert"));
        eng_tmpl_free(t);
    }
    return caps;
}

static json_t *show_json(const store_model *m, bool verbose)
{
    core_buf mf, params;
    core_buf_init(&mf);
    core_buf_init(&params);
    core_buf_printf(&mf, "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile "
                    "based on this, replace FROM with:\n# FROM %s\n\nFROM %s\n", m->display,
                    m->model_path ? m->model_path : m->display);
    if (m->template_text) core_buf_printf(&mf, "TEMPLATE \"\"\"%s\"\"\"\n", m->template_text);
    if (m->system_text) core_buf_printf(&mf, "SYSTEM \"\"\"%s\"\"\"\n", m->system_text);
    json_t *pj = m->params_json ? json_loads(m->params_json, 0, NULL) : NULL;
    if (json_is_object(pj)) params_text(pj, &params, &mf);
    if (m->license) core_buf_printf(&mf, "LICENSE \"\"\"%s\"\"\"\n", m->license);
    json_t *msgs = m->messages_json ? json_loads(m->messages_json, 0, NULL) : NULL;
    if (!json_is_array(msgs)) {
        json_decref(msgs);
        msgs = NULL;
    }
    for (size_t i = 0; msgs && i < json_array_size(msgs); i++) {
        json_t *e = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(e, "role"));
        const char *content = json_string_value(json_object_get(e, "content"));
        core_buf_printf(&mf, "MESSAGE %s \"\"\"%s\"\"\"\n", role ? role : "user",
                        content ? content : "");
    }
    json_t *tensors = NULL;
    json_t *info = m->model_path ? model_info(m->model_path, verbose, &tensors) : json_object();
    char ts[48];
    core_time_format(m->modified_ns, true, ts, sizeof ts);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:s}",
                          "license", m->license ? m->license : "",
                          "modelfile", mf.data ? mf.data : "",
                          "parameters", params.data ? params.data : "",
                          "template", m->template_text ? m->template_text : "",
                          "system", m->system_text ? m->system_text : "",
                          "details", srv_details_json(&m->details),
                          "model_info", info, "capabilities", capabilities(m),
                          "modified_at", ts);
    if (msgs) json_object_set_new(o, "messages", msgs);
    if (tensors) json_object_set_new(o, "tensors", tensors);
    json_decref(pj);
    core_buf_deinit(&mf);
    core_buf_deinit(&params);
    return o;
}

enum MHD_Result srv_h_show(srv_req *r)
{
    enum MHD_Result res;
    json_t *j = srv_body_json(r, &res);
    if (!j) return res;
    const char *name = NULL;
    bool verbose = false;
    core_err err;
    store_model *m = NULL;
    store_name n;
    if (srv_json_bool(j, "ShowRequest", "verbose", &verbose, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    if (!srv_model_arg(r, j, "ShowRequest", &name, &res)) goto out;
    if (store_name_parse(&n, name, &err)) {
        res = srv_reply_err(r, &err); /* valid names parse: not reached */
        goto out;
    }
    if (!store_model_exists(r->srv->store, name)) {
        char disp[STORE_NAME_MAX];
        store_name_display(&n, disp, sizeof disp);
        res = srv_reply_error(r, 404, "model '%s' not found", disp);
        goto out;
    }
    if (store_resolve(r->srv->store, name, &m, &err)) {
        res = srv_reply_error(r, 500, "%s", err.msg);
        goto out;
    }
    res = srv_reply_json(r, 200, show_json(m, verbose));
out:
    store_model_free(m);
    json_decref(j);
    return res;
}
