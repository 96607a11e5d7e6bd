/* resolve.c — a name to everything needed to load and show the model (store_model).
 *
 * Every blob the manifest names is checked before anything is read: a missing blob is
 * CORE_NOTFOUND, a blob whose size differs from the manifest (a truncated copy) is
 * CORE_FORMAT, each message naming the model and the blob. Text layers are read whole (they
 * are small); the weights are only named by path, never read here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "store/internal.h"

#define PATH_CAP 4096

void store_model_free(store_model *m)
{
    if (!m) return;
    free(m->manifest_path);
    free(m->model_path);
    for (size_t i = 0; i < m->n_adapters; i++) free(m->adapter_paths[i]);
    free(m->adapter_paths);
    for (size_t i = 0; i < m->n_projectors; i++) free(m->projector_paths[i]);
    free(m->projector_paths);
    free(m->template_text);
    free(m->system_text);
    free(m->params_json);
    free(m->license);
    free(m->messages_json);
    free(m->renderer);
    free(m->parser);
    free(m);
}

static int check_blob(store *s, const char *what, const store_layer *l, core_err *err)
{
    char path[PATH_CAP];
    int rc = store_blob_path(s, l->digest, path, sizeof path, err);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            return core_err_set(err, CORE_NOTFOUND, "model '%s': blob %s (%s) is missing", what,
                                l->digest, l->media_type);
        }
        return core_err_set(err, CORE_IO, "model '%s': blob %s: %s", what, l->digest,
                            strerror(errno));
    }
    if ((uint64_t)st.st_size != l->size) {
        return core_err_set(err, CORE_FORMAT,
                            "model '%s': blob %s (%s) is %lld bytes but the manifest says "
                            "%llu (truncated or damaged)",
                            what, l->digest, l->media_type, (long long)st.st_size,
                            (unsigned long long)l->size);
    }
    return CORE_OK;
}

static int append_path(store *s, char ***v, size_t *n, const char *digest)
{
    char path[PATH_CAP];
    if (store_blob_path(s, digest, path, sizeof path, NULL)) return CORE_INVALID;
    char **p = realloc(*v, (*n + 1) * sizeof **v);
    if (!p) return CORE_NOMEM;
    *v = p;
    if (!(p[*n] = strdup(path))) return CORE_NOMEM;
    (*n)++;
    return CORE_OK;
}

/* Reads a text layer; `json_type` (0 = plain text) says what JSON it must hold. */
static int read_text(store *s, const char *what, const store_layer *l, int json_type,
                     char **out, core_err *err)
{
    size_t len;
    char *text;
    int rc = store_blob_read(s, l->digest, STORE_TEXT_LAYER_MAX, &text, &len, err);
    if (rc) return rc;
    if (json_type) {
        json_t *j = json_loadb(text, len, 0, NULL);
        bool ok = j && (int)json_typeof(j) == json_type;
        json_decref(j);
        if (!ok) {
            free(text);
            return core_err_set(err, CORE_FORMAT, "model '%s': layer %s (%s) is not a JSON %s",
                                what, l->digest, l->media_type,
                                json_type == JSON_OBJECT ? "object" : "array");
        }
    }
    free(*out); /* a later layer of the same kind wins, as in Ollama's loop */
    *out = text;
    return CORE_OK;
}

static int append_license(store *s, store_model *m, const store_layer *l, core_err *err)
{
    char *text = NULL;
    int rc = read_text(s, m->display, l, 0, &text, err);
    if (rc) return rc;
    if (!m->license) {
        m->license = text;
        return CORE_OK;
    }
    size_t a = strlen(m->license), b = strlen(text);
    char *j = realloc(m->license, a + b + 2);
    if (!j) {
        free(text);
        return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    j[a] = '\n';
    memcpy(j + a + 1, text, b + 1);
    m->license = j;
    free(text);
    return CORE_OK;
}

static int read_layers(store *s, store_model *m, const store_manifest *mf, core_err *err)
{
    int rc = CORE_OK;
    for (size_t i = 0; !rc && i < mf->n_layers; i++) {
        const store_layer *l = &mf->layers[i];
        const char *mt = l->media_type;
        char path[PATH_CAP];
        if (!strcmp(mt, STORE_MT_MODEL)) {
            rc = store_blob_path(s, l->digest, path, sizeof path, err);
            if (rc) break;
            free(m->model_path);
            if (!(m->model_path = strdup(path))) rc = CORE_NOMEM;
            snprintf(m->details.parent_model, sizeof m->details.parent_model, "%s",
                     l->from ? l->from : "");
        } else if (!strcmp(mt, STORE_MT_ADAPTER)) {
            rc = append_path(s, &m->adapter_paths, &m->n_adapters, l->digest);
        } else if (!strcmp(mt, STORE_MT_PROJECTOR)) {
            rc = append_path(s, &m->projector_paths, &m->n_projectors, l->digest);
        } else if (!strcmp(mt, STORE_MT_TEMPLATE) || !strcmp(mt, STORE_MT_PROMPT)) {
            rc = read_text(s, m->display, l, 0, &m->template_text, err);
        } else if (!strcmp(mt, STORE_MT_SYSTEM)) {
            rc = read_text(s, m->display, l, 0, &m->system_text, err);
        } else if (!strcmp(mt, STORE_MT_PARAMS)) {
            rc = read_text(s, m->display, l, JSON_OBJECT, &m->params_json, err);
        } else if (!strcmp(mt, STORE_MT_MESSAGES)) {
            rc = read_text(s, m->display, l, JSON_ARRAY, &m->messages_json, err);
        } else if (!strcmp(mt, STORE_MT_LICENSE)) {
            rc = append_license(s, m, l, err);
        }
        /* embed (deprecated), tensor, json, draft and unknown types are ignored. */
    }
    if (rc == CORE_NOMEM) core_err_set(err, CORE_NOMEM, "out of memory");
    return rc;
}

static int resolve_locked(store *s, const store_name *n, store_model *m, core_err *err)
{
    char path[PATH_CAP];
    if (store_manifest_find(s, n, path, sizeof path, &m->name)) {
        char d[STORE_NAME_MAX];
        store_name_display(n, d, sizeof d);
        return core_err_set(err, CORE_NOTFOUND, "model '%s' not found", d);
    }
    store_name_display(&m->name, m->display, sizeof m->display);
    store_name_full(&m->name, m->full, sizeof m->full);
    if (!(m->manifest_path = strdup(path))) return core_err_set(err, CORE_NOMEM, "no memory");
    struct stat st;
    store_manifest mf;
    char *raw;
    size_t raw_len;
    if (stat(path, &st) != 0) {
        return core_err_set(err, CORE_NOTFOUND, "model '%s' not found", m->display);
    }
    m->modified_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    int rc = store_manifest_load(path, m->display, &mf, &raw, &raw_len, err);
    if (rc) return rc;
    char dg[STORE_DIGEST_BUF];
    store_digest_of(raw, raw_len, dg);
    memcpy(m->digest, dg + 7, 65);
    free(raw);
    m->size = mf.config.size;
    rc = check_blob(s, m->display, &mf.config, err);
    for (size_t i = 0; !rc && i < mf.n_layers; i++) {
        m->size += mf.layers[i].size;
        rc = check_blob(s, m->display, &mf.layers[i], err);
    }
    if (!rc) {
        char *cfg;
        size_t cfg_len;
        rc = store_blob_read(s, mf.config.digest, STORE_JSON_MAX, &cfg, &cfg_len, err);
        if (!rc) {
            rc = store_config_parse(cfg, cfg_len, &m->details, &m->renderer, &m->parser, NULL,
                                    err);
            free(cfg);
            if (rc == CORE_FORMAT) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                core_err_set(err, CORE_FORMAT, "model '%s': %s", m->display, msg);
            }
        }
    }
    if (!rc) rc = read_layers(s, m, &mf, err);
    store_manifest_deinit(&mf);
    return rc;
}

int store_resolve(store *s, const char *name, store_model **out, core_err *err)
{
    store_name n;
    int rc = store_name_parse(&n, name, err);
    if (rc) return rc;
    store_model *m = calloc(1, sizeof *m);
    if (!m) return core_err_set(err, CORE_NOMEM, "out of memory");
    pthread_rwlock_rdlock(&s->lock);
    rc = resolve_locked(s, &n, m, err);
    pthread_rwlock_unlock(&s->lock);
    if (rc) {
        store_model_free(m);
        return rc;
    }
    *out = m;
    return CORE_OK;
}
