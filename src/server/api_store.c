/* api_store.c — the store endpoints: blobs, create, tags, copy, delete (show is in
 * api_show.c).
 *
 * Blob uploads stream to a private temporary file through the store's blob writer (no size
 * cap: the digest is verified at the end and nothing is stored on a mismatch).
 *
 * A create runs store_create on a worker thread (task.c) whose progress callback queues
 * each `{"status":…}` line as it happens; the response reads the queue (appendix C). The
 * handler waits for the first line before it answers, so what store_create refuses before
 * its first status (names, files, blobs, `from`) has a real status code (spec H.68); an
 * error after that is the last line `{"error":…}`. A create cannot be cancelled (it leaves
 * the store consistent either way): a client that goes away stops the stream, the worker
 * finishes, and the response's free joins it — so the daemon's shutdown waits for it
 * before the store is closed. Not streamed: the handler waits for the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "sched/sched.h"
#include "store/store.h"

// ---- blobs ----

struct srv_upload {
    store_blob_writer *w;
    char digest[STORE_DIGEST_BUF];
    bool existed;        /* already stored: the body is read and dropped */
    bool failed;
    core_err err;
};

void srv_upload_free(srv_upload *u)
{
    if (!u) return;
    if (u->w) store_blob_writer_abort(u->w);
    free(u);
}

static const char *blob_digest_arg(const srv_req *r)
{
    return r->path + strlen("/api/blobs/");
}

bool srv_upload_begin(srv_req *r, enum MHD_Result *res)
{
    if (strcmp(r->method, "POST") != 0) return true;
    srv_upload *u = calloc(1, sizeof *u);
    if (!u) {
        *res = srv_reply_error(r, 500, "out of memory");
        return false;
    }
    r->upload = u;
    core_err err;
    if (store_digest_parse(blob_digest_arg(r), u->digest, &err)) {
        *res = srv_reply_err(r, &err);
        return false;
    }
    if (store_blob_exists(r->srv->store, u->digest)) {
        u->existed = true;
        return true;
    }
    if (store_blob_writer_begin(r->srv->store, u->digest, &u->w, &err)) {
        *res = srv_reply_err(r, &err);
        return false;
    }
    return true;
}

void srv_upload_feed(srv_req *r, const char *data, size_t len)
{
    srv_upload *u = r->upload;
    if (!u || u->existed || u->failed) return;
    if (store_blob_writer_write(u->w, data, len, &u->err)) {
        u->failed = true;
        store_blob_writer_abort(u->w);
        u->w = NULL;
    }
}

enum MHD_Result srv_h_blob(srv_req *r)
{
    core_err err;
    char digest[STORE_DIGEST_BUF];
    if (store_digest_parse(blob_digest_arg(r), digest, &err)) return srv_reply_err(r, &err);
    if (strcmp(r->method, "HEAD") == 0) {
        if (store_blob_exists(r->srv->store, digest)) return srv_reply_raw(r, 200, NULL, "", 0);
        return srv_reply_error(r, 404, "blob \"%s\" not found", digest);
    }
    srv_upload *u = r->upload;
    if (!u) return srv_reply_error(r, 500, "internal error: no upload state");
    if (u->existed) return srv_reply_raw(r, 200, NULL, "", 0);
    if (u->failed) return srv_reply_err(r, &u->err);
    store_blob_writer *w = u->w;
    u->w = NULL; /* commit frees it in every case */
    if (store_blob_writer_commit(w, NULL, &err)) return srv_reply_err(r, &err);
    CORE_INFO("blob %s stored", digest);
    return srv_reply_raw(r, 201, NULL, "", 0);
}

// ---- create ----

/* Reads an object of name → digest strings into parallel arrays (borrowed from j). */
static int read_files(json_t *obj, const char *key, const char ***names, const char ***digests,
                      size_t *n, core_err *err)
{
    json_t *v = json_object_get(obj, key);
    *n = 0;
    if (!v || json_is_null(v)) return CORE_OK;
    if (!json_is_object(v))
        return core_err_set(err, CORE_INVALID, "json: cannot unmarshal %s into Go struct field "
                            "CreateRequest.%s of type map[string]string",
                            srv_json_type_name(v), key);
    size_t cnt = json_object_size(v);
    *names = calloc(cnt + 1, sizeof **names);
    *digests = calloc(cnt + 1, sizeof **digests);
    if (!*names || !*digests) return core_err_set(err, CORE_NOMEM, "out of memory");
    const char *k;
    json_t *d;
    json_object_foreach(v, k, d) {
        if (!json_is_string(d))
            return core_err_set(err, CORE_INVALID, "%s: the digest of \"%s\" must be a string",
                                key, k);
        (*names)[*n] = k;
        (*digests)[*n] = json_string_value(d);
        (*n)++;
    }
    return CORE_OK;
}

static int read_licenses(json_t *obj, const char ***out, size_t *n, core_err *err)
{
    json_t *v = json_object_get(obj, "license");
    *n = 0;
    if (!v || json_is_null(v)) return CORE_OK;
    if (json_is_string(v)) {
        *out = calloc(1, sizeof **out);
        if (!*out) return core_err_set(err, CORE_NOMEM, "out of memory");
        (*out)[0] = json_string_value(v);
        *n = 1;
        return CORE_OK;
    }
    if (!json_is_array(v)) goto bad;
    *out = calloc(json_array_size(v) + 1, sizeof **out);
    if (!*out) return core_err_set(err, CORE_NOMEM, "out of memory");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) goto bad;
        (*out)[(*n)++] = json_string_value(e);
    }
    return CORE_OK;
bad:
    return core_err_set(err, CORE_INVALID, "license must be a string or an array of strings");
}

static int read_messages(json_t *obj, char **out, core_err *err)
{
    json_t *v = json_object_get(obj, "messages");
    if (!v || json_is_null(v)) return CORE_OK;
    if (!json_is_array(v))
        return core_err_set(err, CORE_INVALID, "messages must be an array of {role, content}");
    size_t i;
    json_t *m;
    json_t *clean = json_array();
    json_array_foreach(v, i, m) {
        const char *role = NULL, *content = NULL;
        if (!json_is_object(m) || srv_json_str(m, "Message", "role", &role, err) ||
            srv_json_str(m, "Message", "content", &content, err) || !role) {
            json_decref(clean);
            if (err && err->code) return err->code;
            return core_err_set(err, CORE_INVALID, "messages[%zu]: needs a role and content",
                                i);
        }
        json_array_append_new(clean, json_pack("{s:s,s:s}", "role", role, "content",
                                               content ? content : ""));
    }
    *out = json_dumps(clean, JSON_COMPACT);
    json_decref(clean);
    return *out ? CORE_OK : core_err_set(err, CORE_NOMEM, "out of memory");
}

typedef struct create_args {
    store_create_req req;
    const char **fnames, **fdigests, **anames, **adigests, **licenses;
    char *params, *messages;
    bool stream;
} create_args;

static void create_args_free(create_args *a)
{
    free(a->fnames);
    free(a->fdigests);
    free(a->anames);
    free(a->adigests);
    free(a->licenses);
    free(a->params);
    free(a->messages);
}

static int create_parse(json_t *j, create_args *a, core_err *err)
{
    store_create_req *q = &a->req;
    const char *quantize = NULL, *name = NULL;
    a->stream = true;
    if (srv_json_str(j, "CreateRequest", "model", &q->model, err) ||
        srv_json_str(j, "CreateRequest", "name", &name, err) ||
        srv_json_str(j, "CreateRequest", "from", &q->from, err) ||
        srv_json_str(j, "CreateRequest", "template", &q->template_text, err) ||
        srv_json_str(j, "CreateRequest", "system", &q->system, err) ||
        srv_json_str(j, "CreateRequest", "quantize", &quantize, err) ||
        srv_json_bool(j, "CreateRequest", "stream", &a->stream, err))
        return err->code;
    if (!q->model || !*q->model) q->model = name;
    if (!q->model || !*q->model) return core_err_set(err, CORE_INVALID, "model is required");
    if (!store_name_valid(q->model))
        return core_err_set(err, CORE_INVALID, "invalid model name \"%s\"", q->model);
    if (q->template_text && *q->template_text) {
        /* As Ollama: a template that does not parse is refused now, not at every request. */
        eng_tmpl *t = NULL;
        if (eng_tmpl_parse(&t, q->template_text, strlen(q->template_text), err)) {
            core_err e = *err;
            return core_err_set(err, CORE_INVALID, "template error: %s", e.msg);
        }
        eng_tmpl_free(t);
    }
    if (quantize && *quantize)
        return core_err_set(err, CORE_UNSUPPORTED, "quantize is not supported by dwell: "
                            "quantize the GGUF before importing it (requested \"%s\")",
                            quantize);
    if (json_object_get(j, "modelfile") && !json_object_get(j, "files") && !q->from)
        return core_err_set(err, CORE_INVALID, "the 'modelfile' field is not supported: send "
                            "'from' or 'files' (newer clients do this themselves)");
    if (read_files(j, "files", &a->fnames, &a->fdigests, &q->n_files, err) ||
        read_files(j, "adapters", &a->anames, &a->adigests, &q->n_adapters, err) ||
        read_licenses(j, &a->licenses, &q->n_licenses, err) ||
        read_messages(j, &a->messages, err))
        return err->code;
    if (q->n_adapters)
        return core_err_set(err, CORE_UNSUPPORTED, "adapters (LoRA) are not supported by "
                            "dwell yet");
    q->file_names = a->fnames;
    q->file_digests = a->fdigests;
    q->adapter_names = a->anames;
    q->adapter_digests = a->adigests;
    q->licenses = a->licenses;
    q->messages_json = a->messages;
    json_t *params = json_object_get(j, "parameters");
    if (params && !json_is_null(params)) {
        if (!json_is_object(params))
            return core_err_set(err, CORE_INVALID, "parameters must be an object");
        if (srv_options_check(params, true, err)) return err->code;
        a->params = json_dumps(params, JSON_COMPACT);
        if (!a->params) return core_err_set(err, CORE_NOMEM, "out of memory");
        q->params_json = a->params;
    }
    if (!q->from && !q->n_files)
        return core_err_set(err, CORE_INVALID, "neither 'from' or 'files' was specified");
    return CORE_OK;
}

/* A streamed create: shared by the worker (which runs store_create) and the response. */
/* A create on a worker thread (task.c). */
typedef struct create_job {
    store *store;
    json_t *body;           /* a's strings point into it */
    create_args a;
} create_job;

static void create_job_free(void *p)
{
    create_job *cj = p;
    create_args_free(&cj->a);
    json_decref(cj->body);
    free(cj);
}

/* store_create's progress callback (the store lock is held: queue the line and return). */
static void create_progress(const char *status, void *ud)
{
    srv_task_status(ud, status);
}

static int create_work(srv_task *t, void *arg, core_err *err)
{
    create_job *cj = arg;
    char digest[65];
    int rc = store_create(cj->store, &cj->a.req, create_progress, t, digest, err);
    if (rc == CORE_OK) CORE_INFO("created model %s (manifest %.12s)", cj->a.req.model, digest);
    else CORE_WARN("create %s failed: %s", cj->a.req.model, err->msg);
    return rc;
}

enum MHD_Result srv_h_create(srv_req *r)
{
    enum MHD_Result res;
    json_t *j = srv_body_json(r, &res);
    if (!j) return res;
    create_job *cj = calloc(1, sizeof *cj);
    if (!cj) {
        json_decref(j);
        return srv_reply_error(r, 500, "out of memory");
    }
    cj->store = r->srv->store;
    cj->body = j;
    core_err err;
    core_err_clear(&err);
    if (create_parse(j, &cj->a, &err)) {
        create_job_free(cj);
        return srv_reply_err(r, &err);
    }
    bool stream = cj->a.stream;
    srv_task *t;
    if (srv_task_start(&t, create_work, cj, create_job_free, &err)) return srv_reply_err(r, &err);
    /* A create cannot be cancelled: it ignores the task's cancel flag. */
    return srv_task_respond(r, t, stream, 1, NULL);
}

// ---- tags ----

json_t *srv_details_json(const store_details *d)
{
    json_t *fam = json_array();
    for (int i = 0; i < d->n_families; i++) json_array_append_new(fam, json_string(d->families[i]));
    return json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "parent_model", d->parent_model, "format",
                     d->format[0] ? d->format : "gguf", "family", d->family, "families", fam,
                     "parameter_size", d->parameter_size, "quantization_level",
                     d->quantization_level);
}

enum MHD_Result srv_h_tags(srv_req *r)
{
    store_entry *e = NULL;
    size_t n = 0;
    core_err err;
    if (store_list(r->srv->store, &e, &n, &err)) return srv_reply_err(r, &err);
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) {
        char ts[48];
        core_time_format(e[i].modified_ns, true, ts, sizeof ts);
        json_array_append_new(models,
                              json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", e[i].display,
                                        "model", e[i].display, "modified_at", ts, "size",
                                        (json_int_t)e[i].size, "digest", e[i].digest, "details",
                                        srv_details_json(&e[i].details)));
    }
    store_list_free(e);
    return srv_reply_json(r, 200, json_pack("{s:o}", "models", models));
}

// ---- copy and delete ----

enum MHD_Result srv_h_copy(srv_req *r)
{
    enum MHD_Result res;
    json_t *j = srv_body_json(r, &res);
    if (!j) return res;
    const char *src = NULL, *dst = NULL;
    core_err err;
    if (srv_json_str(j, "CopyRequest", "source", &src, &err) ||
        srv_json_str(j, "CopyRequest", "destination", &dst, &err)) {
        res = srv_reply_err(r, &err);
    } else if (!src || !*src || !dst || !*dst) {
        res = srv_reply_error(r, 400, "source and destination are required");
    } else if (store_copy(r->srv->store, src, dst, &err)) {
        res = srv_reply_err(r, &err);
    } else {
        CORE_INFO("copied model %s to %s", src, dst);
        res = srv_reply_raw(r, 200, NULL, "", 0);
    }
    json_decref(j);
    return res;
}

bool srv_model_arg(srv_req *r, json_t *j, const char *where, const char **name,
                   enum MHD_Result *res)
{
    const char *legacy = NULL;
    core_err err;
    *name = NULL;
    if (srv_json_str(j, where, "model", name, &err) ||
        srv_json_str(j, where, "name", &legacy, &err)) {
        *res = srv_reply_err(r, &err);
        return false;
    }
    if (!*name || !**name) *name = legacy;
    if (!*name || !**name) {
        *res = srv_reply_error(r, 400, "model is required");
        return false;
    }
    if (!store_name_valid(*name)) {
        *res = srv_reply_error(r, 400, "invalid model name \"%s\"", *name);
        return false;
    }
    return true;
}

enum MHD_Result srv_h_delete(srv_req *r)
{
    enum MHD_Result res;
    json_t *j = srv_body_json(r, &res);
    if (!j) return res;
    const char *name = NULL;
    core_err err;
    if (!srv_model_arg(r, j, "DeleteRequest", &name, &res)) goto out;
    /* DESIGN §4.7: delete also unloads. A model whose blobs are damaged cannot be resident
     * under its path anyway, so a failed resolve only skips the unload. */
    store_model *m = NULL;
    if (store_resolve(r->srv->store, name, &m, NULL) == CORE_OK && m->model_path) {
        bool was = false;
        sched_unload(r->srv->sched, m->model_path, &was, NULL);
        if (was) CORE_INFO("unloading %s: deleted", m->display);
    }
    store_model_free(m);
    if (store_delete(r->srv->store, name, &err)) {
        res = srv_reply_err(r, &err);
    } else {
        CORE_INFO("deleted model %s", name);
        res = srv_reply_raw(r, 200, NULL, "", 0);
    }
out:
    json_decref(j);
    return res;
}
