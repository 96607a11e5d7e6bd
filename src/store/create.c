/* create.c — /api/create over the store (spec appendix C, Ollama's server/create.go).
 *
 * The layers are assembled in Ollama's order: the base layers (every layer of `from`, each
 * marked with from=<its display name>, and/or the GGUF blobs of `files`), then the adapters,
 * then template, system, license, params and messages, each replacing the layers of its kind
 * that the base brought (params are merged, the request's keys winning). The config records
 * the GGUF facts of the weights, projector and adapter layers. The manifest is written last
 * and atomically; the blobs of a replaced manifest that nothing uses any more are removed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "store/internal.h"

#define PATH_CAP 4096

typedef struct layer_vec {
    store_layer *v;
    size_t n, cap;
} layer_vec;

/* What goes into the config blob. */
typedef struct config_facts {
    char format[STORE_FIELD_MAX], family[STORE_FIELD_MAX];
    char families[STORE_MAX_FAMILIES][STORE_FIELD_MAX];
    int n_families;
    char model_type[STORE_FIELD_MAX], file_type[STORE_FIELD_MAX];
    char *renderer, *parser, *requires_;
} config_facts;

typedef struct create_ctx {
    store *s;
    store_progress_fn progress;
    void *ud;
    layer_vec layers;
    config_facts cfg;
} create_ctx;

// ---- helpers ----

static void status(create_ctx *c, const char *fmt, const char *arg)
{
    if (!c->progress) return;
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    c->progress(msg, c->ud);
}

/* Appends a deep copy of l. */
static int vec_push(layer_vec *lv, const store_layer *l)
{
    if (lv->n == lv->cap) {
        size_t cap = lv->cap ? lv->cap * 2 : 8;
        void *p = realloc(lv->v, cap * sizeof *lv->v);
        if (!p) return CORE_NOMEM;
        lv->v = p;
        lv->cap = cap;
    }
    int rc = store_layer_copy(&lv->v[lv->n], l);
    if (!rc) lv->n++;
    return rc;
}

/* Removes every layer of media type mt (and mt2, may be NULL). */
static void vec_remove(layer_vec *lv, const char *mt, const char *mt2)
{
    size_t k = 0;
    for (size_t i = 0; i < lv->n; i++) {
        const char *m = lv->v[i].media_type;
        if (!strcmp(m, mt) || (mt2 && !strcmp(m, mt2))) {
            store_layer_deinit(&lv->v[i]);
        } else {
            lv->v[k++] = lv->v[i];
        }
    }
    lv->n = k;
}

static void vec_deinit(layer_vec *lv)
{
    for (size_t i = 0; i < lv->n; i++) store_layer_deinit(&lv->v[i]);
    free(lv->v);
}

static bool file_name_relative(const char *name)
{
    if (!name || !*name || name[0] == '/' || name[0] == '\\') return false;
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/\\");
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        p += n;
        if (*p) p++;
    }
    return true;
}

/* Records a GGUF layer's facts in the config, first non-empty value winning (cmp.Or). */
static void note_facts(config_facts *cfg, const store_gguf_facts *f)
{
    if (!cfg->format[0]) snprintf(cfg->format, sizeof cfg->format, "gguf");
    if (!cfg->family[0]) snprintf(cfg->family, sizeof cfg->family, "%s", f->architecture);
    if (!cfg->model_type[0]) {
        snprintf(cfg->model_type, sizeof cfg->model_type, "%s", f->parameter_size);
    }
    if (!cfg->file_type[0]) snprintf(cfg->file_type, sizeof cfg->file_type, "%s", f->file_type);
    if (!f->architecture[0]) return;
    for (int i = 0; i < cfg->n_families; i++) {
        if (!strcmp(cfg->families[i], f->architecture)) return;
    }
    if (cfg->n_families < STORE_MAX_FAMILIES) {
        snprintf(cfg->families[cfg->n_families++], STORE_FIELD_MAX, "%s", f->architecture);
    }
}

static bool is_gguf_layer(const char *mt)
{
    return !strcmp(mt, STORE_MT_MODEL) || !strcmp(mt, STORE_MT_PROJECTOR) ||
           !strcmp(mt, STORE_MT_ADAPTER);
}

static int blob_facts(create_ctx *c, const char *digest, store_gguf_facts *f, core_err *err)
{
    char path[PATH_CAP];
    int rc = store_blob_path(c->s, digest, path, sizeof path, err);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) != 0) {
        return core_err_set(err, CORE_NOTFOUND, "blob \"%s\" not found", digest);
    }
    return store_gguf_facts_read(path, f, err);
}

/* Stores text as a blob and appends its layer. */
static int add_text_layer(create_ctx *c, const char *mt, const char *text, size_t len,
                          core_err *err)
{
    store_layer l;
    memset(&l, 0, sizeof l);
    bool created;
    int rc = store_blob_put(c->s, text, len, l.digest, &created, err);
    if (rc) return rc;
    snprintf(l.media_type, sizeof l.media_type, "%s", mt);
    l.size = len;
    status(c, created ? "creating new layer %s" : "using existing layer %s", l.digest);
    if (vec_push(&c->layers, &l)) return core_err_set(err, CORE_NOMEM, "out of memory");
    return CORE_OK;
}

// ---- base layers ----

static int base_from(create_ctx *c, const char *from, bool have_files, core_err *err)
{
    store_name fn, canon;
    if (store_name_parse(&fn, from, NULL)) {
        return core_err_set(err, CORE_INVALID, "invalid model name \"%.160s\"", from);
    }
    char path[PATH_CAP], disp[STORE_NAME_MAX];
    if (store_manifest_find(c->s, &fn, path, sizeof path, &canon)) {
        return core_err_set(err, CORE_NOTFOUND, "model '%.160s' not found", from);
    }
    store_name_display(&canon, disp, sizeof disp);
    store_manifest m;
    int rc = store_manifest_load(path, disp, &m, NULL, NULL, err);
    if (rc) return rc;
    for (size_t i = 0; !rc && i < m.n_layers; i++) {
        store_layer *l = &m.layers[i];
        /* The request's own weights replace the base model's. */
        if (have_files && !strcmp(l->media_type, STORE_MT_MODEL)) continue;
        if (!store_blob_exists(c->s, l->digest)) {
            rc = core_err_set(err, CORE_NOTFOUND, "model '%s': blob %s (%s) is missing", disp,
                              l->digest, l->media_type);
            break;
        }
        if (is_gguf_layer(l->media_type)) {
            store_gguf_facts f;
            rc = blob_facts(c, l->digest, &f, err);
            if (rc) break;
            note_facts(&c->cfg, &f);
        }
        free(l->from);
        if (!(l->from = strdup(disp))) rc = core_err_set(err, CORE_NOMEM, "out of memory");
        status(c, "using existing layer %s", l->digest);
        if (!rc && vec_push(&c->layers, l)) rc = core_err_set(err, CORE_NOMEM, "no memory");
    }
    /* renderer, parser and requires carry over from the base config. */
    char *cfg;
    size_t cfg_len;
    if (!rc && store_blob_read(c->s, m.config.digest, STORE_JSON_MAX, &cfg, &cfg_len, NULL) ==
                   CORE_OK) {
        store_details d;
        store_config_parse(cfg, cfg_len, &d, &c->cfg.renderer, &c->cfg.parser,
                           &c->cfg.requires_, NULL);
        free(cfg);
    }
    store_manifest_deinit(&m);
    return rc;
}

/* The GGUF blobs of `files` (or `adapters` when adapter is set). */
static int base_files(create_ctx *c, const char *const *names, const char *const *digests,
                      size_t n, bool adapter, core_err *err)
{
    if (n) status(c, "%s", "parsing GGUF");
    int n_model = 0;
    for (size_t i = 0; i < n; i++) {
        char digest[STORE_DIGEST_BUF];
        int rc = store_digest_parse(digests[i], digest, err);
        if (rc) return rc;
        store_gguf_facts f;
        rc = blob_facts(c, digest, &f, err);
        if (rc) return rc;
        store_layer l;
        memset(&l, 0, sizeof l);
        snprintf(l.media_type, sizeof l.media_type, "%s", adapter ? STORE_MT_ADAPTER : f.media_type);
        memcpy(l.digest, digest, sizeof l.digest);
        char path[PATH_CAP];
        struct stat st;
        if (store_blob_path(c->s, digest, path, sizeof path, err) || stat(path, &st) != 0) {
            return core_err_set(err, CORE_NOTFOUND, "blob \"%s\" not found", digest);
        }
        l.size = (uint64_t)st.st_size;
        if (!strcmp(l.media_type, STORE_MT_MODEL) && ++n_model > 1) {
            return core_err_set(err, CORE_INVALID,
                                "more than one GGUF weights file in 'files' (%s)", names[i]);
        }
        note_facts(&c->cfg, &f);
        status(c, "using existing layer %s", digest);
        if (vec_push(&c->layers, &l)) return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    return CORE_OK;
}

// ---- replacing layers ----

static int set_text(create_ctx *c, const char *mt, const char *legacy, const char *text,
                    core_err *err)
{
    if (!text || !*text) return CORE_OK;
    vec_remove(&c->layers, mt, legacy);
    return add_text_layer(c, mt, text, strlen(text), err);
}

static int set_licenses(create_ctx *c, const store_create_req *req, core_err *err)
{
    if (!req->n_licenses) return CORE_OK;
    vec_remove(&c->layers, STORE_MT_LICENSE, NULL);
    for (size_t i = 0; i < req->n_licenses; i++) {
        const char *t = req->licenses[i] ? req->licenses[i] : "";
        int rc = add_text_layer(c, STORE_MT_LICENSE, t, strlen(t), err);
        if (rc) return rc;
    }
    return CORE_OK;
}

/* j as JSON text followed by a newline, as Go's json.Encoder ends what it writes (NULL, or
 * NULL j, when out of memory); *len counts the newline. */
static char *dumps_line(const json_t *j, size_t flags, size_t *len)
{
    char *s = j ? json_dumps(j, flags) : NULL;
    if (!s) return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    *len = n + 1;
    return t;
}

/* JSON text as Go's json.Encoder writes it: compact, map keys sorted, a final newline. */
static int add_json_layer(create_ctx *c, const char *mt, json_t *j, core_err *err)
{
    size_t n;
    char *t = dumps_line(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY, &n);
    if (!t) return core_err_set(err, CORE_NOMEM, "cannot encode %s", mt);
    int rc = add_text_layer(c, mt, t, n, err);
    free(t);
    return rc;
}

static int set_params(create_ctx *c, json_t *params, core_err *err)
{
    if (!params) return CORE_OK;
    for (size_t i = 0; i < c->layers.n; i++) {
        if (strcmp(c->layers.v[i].media_type, STORE_MT_PARAMS)) continue;
        char *text;
        size_t len;
        int rc = store_blob_read(c->s, c->layers.v[i].digest, STORE_TEXT_LAYER_MAX, &text, &len,
                                 err);
        if (rc) return rc;
        json_t *old = json_loadb(text, len, 0, NULL);
        free(text);
        if (!json_is_object(old)) {
            json_decref(old);
            return core_err_set(err, CORE_FORMAT, "the base model's params layer %s is not a "
                                "JSON object", c->layers.v[i].digest);
        }
        json_object_update_missing(params, old);
        json_decref(old);
    }
    if (json_object_size(params) == 0) return CORE_OK;
    vec_remove(&c->layers, STORE_MT_PARAMS, NULL);
    return add_json_layer(c, STORE_MT_PARAMS, params, err);
}

static int set_messages(create_ctx *c, json_t *messages, core_err *err)
{
    /* As Ollama: an empty list keeps the base model's messages. */
    if (!messages || json_array_size(messages) == 0) return CORE_OK;
    vec_remove(&c->layers, STORE_MT_MESSAGES, NULL);
    return add_json_layer(c, STORE_MT_MESSAGES, messages, err);
}

// ---- config and manifest ----

static int add_config(create_ctx *c, store_layer *out, core_err *err)
{
    config_facts *f = &c->cfg;
    json_t *o = json_object(), *fams = json_array(), *diff = json_array(), *rootfs = json_object();
    bool ok = o && fams && diff && rootfs;
    for (int i = 0; ok && i < f->n_families; i++) {
        ok = !json_array_append_new(fams, json_string(f->families[i]));
    }
    for (size_t i = 0; ok && i < c->layers.n; i++) {
        ok = !json_array_append_new(diff, json_string(c->layers.v[i].digest));
    }
    ok = ok && !json_object_set_new(o, "model_format", json_string(f->format)) &&
         !json_object_set_new(o, "model_family", json_string(f->family)) &&
         !json_object_set(o, "model_families", f->n_families ? fams : json_null()) &&
         !json_object_set_new(o, "model_type", json_string(f->model_type)) &&
         !json_object_set_new(o, "file_type", json_string(f->file_type)) &&
         (!f->renderer || !json_object_set_new(o, "renderer", json_string(f->renderer))) &&
         (!f->parser || !json_object_set_new(o, "parser", json_string(f->parser))) &&
         (!f->requires_ || !json_object_set_new(o, "requires", json_string(f->requires_))) &&
         !json_object_set_new(o, "architecture", json_string("amd64")) &&
         !json_object_set_new(o, "os", json_string("linux")) &&
         !json_object_set_new(rootfs, "type", json_string("layers")) &&
         !json_object_set(rootfs, "diff_ids", diff) && !json_object_set(o, "rootfs", rootfs);
    size_t n;
    char *t = dumps_line(ok ? o : NULL, JSON_COMPACT | JSON_PRESERVE_ORDER, &n);
    json_decref(o);
    json_decref(fams);
    json_decref(diff);
    json_decref(rootfs);
    if (!t) return core_err_set(err, CORE_NOMEM, "cannot encode the config");
    memset(out, 0, sizeof *out);
    snprintf(out->media_type, sizeof out->media_type, "%s", STORE_MT_CONFIG);
    out->size = n;
    int rc = store_blob_put(c->s, t, n, out->digest, NULL, err);
    free(t);
    return rc;
}

static int write_manifest(create_ctx *c, const store_name *name, char digest_out[65],
                          core_err *err)
{
    store_manifest m = {.layers = c->layers.v, .n_layers = c->layers.n};
    int rc = add_config(c, &m.config, err);
    if (rc) return rc;
    char *raw;
    size_t len;
    rc = store_manifest_encode(&m, &raw, &len, err);
    if (rc) return rc;
    store_name canon;
    store_name_canonical(c->s, name, &canon);
    char path[PATH_CAP], dir[PATH_CAP], disp[STORE_NAME_MAX];
    store_name_display(&canon, disp, sizeof disp);
    rc = store_manifest_path(c->s, &canon, path, sizeof path, err);
    store_manifest old;
    bool have_old = !rc && store_manifest_load(path, disp, &old, NULL, NULL, NULL) == CORE_OK;
    if (!rc) {
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = '\0';
        rc = core_mkdirs(dir, err);
    }
    status(c, "%s", "writing manifest");
    if (!rc) rc = store_write_atomic(c->s, path, raw, len, err);
    if (!rc && digest_out) {
        char dg[STORE_DIGEST_BUF];
        store_digest_of(raw, len, dg);
        memcpy(digest_out, dg + 7, 65);
    }
    free(raw);
    if (have_old) {
        if (!rc) rc = store_gc_layers(c->s, &old, err);
        store_manifest_deinit(&old);
    }
    return rc;
}

// ---- the request ----

/* Everything that can be refused before any status line goes out (so that the server can
 * answer it with a real status code): the names, the file names and digests, and that the
 * blobs of `files` and `adapters` were uploaded. */
static int check_request(store *s, const store_create_req *req, store_name *name,
                         json_t **params, json_t **messages, core_err *err)
{
    if (store_name_parse(name, req->model, NULL)) {
        return core_err_set(err, CORE_INVALID, "invalid model name");
    }
    if ((!req->from || !*req->from) && !req->n_files) {
        return core_err_set(err, CORE_INVALID, "neither 'from' or 'files' was specified");
    }
    for (size_t i = 0; i < req->n_files + req->n_adapters; i++) {
        bool ad = i >= req->n_files;
        const char *nm = ad ? req->adapter_names[i - req->n_files] : req->file_names[i];
        const char *dg = ad ? req->adapter_digests[i - req->n_files] : req->file_digests[i];
        char d[STORE_DIGEST_BUF];
        if (!file_name_relative(nm)) {
            return core_err_set(err, CORE_INVALID, "file path must be relative");
        }
        int rc = store_digest_parse(dg, d, err);
        if (rc) return rc;
        if (!store_blob_exists(s, d)) {
            return core_err_set(err, CORE_NOTFOUND, "blob \"%s\" not found", d);
        }
        size_t len = strlen(nm);
        if (len >= 12 && !strcmp(nm + len - 12, ".safetensors")) {
            return core_err_set(err, CORE_UNSUPPORTED, "%.100s: importing safetensors is not "
                                "supported; convert the model to GGUF first", nm);
        }
    }
    json_error_t je;
    if (req->params_json) {
        *params = json_loads(req->params_json, 0, &je);
        if (!json_is_object(*params)) {
            return core_err_set(err, CORE_INVALID, "parameters must be a JSON object");
        }
    }
    if (req->messages_json) {
        *messages = json_loads(req->messages_json, 0, &je);
        if (!json_is_array(*messages)) {
            return core_err_set(err, CORE_INVALID, "messages must be a JSON array");
        }
    }
    return CORE_OK;
}

int store_create(store *s, const store_create_req *req, store_progress_fn progress, void *ud,
                 char digest_out[65], core_err *err)
{
    store_name name;
    json_t *params = NULL, *messages = NULL;
    int rc = check_request(s, req, &name, &params, &messages, err);
    if (rc) {
        json_decref(params);
        json_decref(messages);
        return rc;
    }
    create_ctx c = {.s = s, .progress = progress, .ud = ud};
    pthread_rwlock_wrlock(&s->lock);
    if (req->from && *req->from) rc = base_from(&c, req->from, req->n_files > 0, err);
    if (!rc) rc = base_files(&c, req->file_names, req->file_digests, req->n_files, false, err);
    if (!rc) {
        rc = base_files(&c, req->adapter_names, req->adapter_digests, req->n_adapters, true,
                        err);
    }
    if (!rc) rc = set_text(&c, STORE_MT_TEMPLATE, STORE_MT_PROMPT, req->template_text, err);
    if (!rc) rc = set_text(&c, STORE_MT_SYSTEM, NULL, req->system, err);
    if (!rc) rc = set_licenses(&c, req, err);
    if (!rc) rc = set_params(&c, params, err);
    if (!rc) rc = set_messages(&c, messages, err);
    if (!rc) rc = write_manifest(&c, &name, digest_out, err);
    pthread_rwlock_unlock(&s->lock);
    json_decref(params);
    json_decref(messages);
    vec_deinit(&c.layers);
    free(c.cfg.renderer);
    free(c.cfg.parser);
    free(c.cfg.requires_);
    return rc;
}
