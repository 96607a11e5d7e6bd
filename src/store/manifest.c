/* manifest.c — manifest and config JSON (spec K items 87-88), and the GGUF facts that go
 * into a config.
 *
 * Manifests are written as Ollama's Go encoder writes them: keys in struct order
 * (schemaVersion, mediaType, config, layers; in a layer mediaType, digest, size, then from
 * and name only when set), compact, one line ending in "\n". Readers ignore unknown keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gguf/gguf.h"
#include "store/internal.h"

// ---- layers ----

void store_layer_deinit(store_layer *l)
{
    free(l->from);
    free(l->name);
    l->from = l->name = NULL;
}

int store_layer_copy(store_layer *dst, const store_layer *src)
{
    *dst = *src;
    dst->from = src->from ? strdup(src->from) : NULL;
    dst->name = src->name ? strdup(src->name) : NULL;
    if ((src->from && !dst->from) || (src->name && !dst->name)) {
        store_layer_deinit(dst);
        return CORE_NOMEM;
    }
    return CORE_OK;
}

void store_manifest_deinit(store_manifest *m)
{
    store_layer_deinit(&m->config);
    for (size_t i = 0; i < m->n_layers; i++) store_layer_deinit(&m->layers[i]);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

static int layer_parse(json_t *o, const char *what, const char *which, store_layer *l,
                       core_err *err)
{
    memset(l, 0, sizeof *l);
    if (!json_is_object(o)) {
        return core_err_set(err, CORE_FORMAT, "%s: %s is not an object", what, which);
    }
    json_t *mt = json_object_get(o, "mediaType"), *dg = json_object_get(o, "digest");
    json_t *sz = json_object_get(o, "size");
    if (!json_is_string(mt) || json_string_length(mt) >= sizeof l->media_type) {
        return core_err_set(err, CORE_FORMAT, "%s: %s has no valid mediaType", what, which);
    }
    if (!json_is_string(dg) || store_digest_parse(json_string_value(dg), l->digest, NULL)) {
        return core_err_set(err, CORE_FORMAT, "%s: %s has no valid digest", what, which);
    }
    if (!json_is_integer(sz) || json_integer_value(sz) < 0) {
        return core_err_set(err, CORE_FORMAT, "%s: %s has no valid size", what, which);
    }
    snprintf(l->media_type, sizeof l->media_type, "%s", json_string_value(mt));
    l->size = (uint64_t)json_integer_value(sz);
    json_t *from = json_object_get(o, "from"), *name = json_object_get(o, "name");
    if (json_is_string(from) && json_string_length(from)) {
        l->from = strdup(json_string_value(from));
        if (!l->from) return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    if (json_is_string(name) && json_string_length(name)) {
        l->name = strdup(json_string_value(name));
        if (!l->name) {
            store_layer_deinit(l);
            return core_err_set(err, CORE_NOMEM, "out of memory");
        }
    }
    return CORE_OK;
}

int store_manifest_parse(const char *json, size_t len, const char *what, store_manifest *out,
                         core_err *err)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) {
        return core_err_set(err, CORE_FORMAT, "%s: corrupt manifest: %s (line %d)", what,
                            je.text, je.line);
    }
    int rc = CORE_OK;
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(root) || !json_is_array(layers)) {
        rc = core_err_set(err, CORE_FORMAT, "%s: corrupt manifest: no layers array", what);
        goto out;
    }
    json_t *sv = json_object_get(root, "schemaVersion");
    if (sv && (!json_is_integer(sv) || json_integer_value(sv) != 2)) {
        rc = core_err_set(err, CORE_FORMAT, "%s: unsupported manifest schemaVersion", what);
        goto out;
    }
    rc = layer_parse(json_object_get(root, "config"), what, "config", &out->config, err);
    if (rc) goto out;
    size_t n = json_array_size(layers);
    out->layers = calloc(n ? n : 1, sizeof *out->layers);
    if (!out->layers) {
        rc = core_err_set(err, CORE_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char which[32];
        snprintf(which, sizeof which, "layer %zu", i);
        rc = layer_parse(json_array_get(layers, i), what, which, &out->layers[i], err);
        if (rc) goto out;
        out->n_layers++;
    }
out:
    json_decref(root);
    if (rc) store_manifest_deinit(out);
    return rc;
}

static json_t *layer_json(const store_layer *l)
{
    json_t *o = json_object();
    if (!o) return NULL;
    if (json_object_set_new(o, "mediaType", json_string(l->media_type)) ||
        json_object_set_new(o, "digest", json_string(l->digest)) ||
        json_object_set_new(o, "size", json_integer((json_int_t)l->size)) ||
        (l->from && json_object_set_new(o, "from", json_string(l->from))) ||
        (l->name && json_object_set_new(o, "name", json_string(l->name)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int store_manifest_encode(const store_manifest *m, char **out, size_t *len, core_err *err)
{
    json_t *root = json_object(), *layers = json_array();
    bool ok = root && layers &&
              !json_object_set_new(root, "schemaVersion", json_integer(2)) &&
              !json_object_set_new(root, "mediaType", json_string(STORE_MT_MANIFEST));
    if (ok) {
        json_t *cfg = layer_json(&m->config);
        ok = cfg && !json_object_set_new(root, "config", cfg); /* set_new frees cfg on error */
    }
    for (size_t i = 0; ok && i < m->n_layers; i++) {
        json_t *l = layer_json(&m->layers[i]);
        ok = l && !json_array_append_new(layers, l);
    }
    if (ok) {
        ok = !json_object_set_new(root, "layers", layers);
        layers = NULL; /* owned by root now, or freed by set_new */
    }
    char *s = ok ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(layers);
    json_decref(root);
    if (!s) return core_err_set(err, CORE_NOMEM, "cannot encode the manifest");
    size_t n = strlen(s);
    char *buf = malloc(n + 2);
    if (!buf) {
        free(s);
        return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    memcpy(buf, s, n);
    buf[n] = '\n';
    buf[n + 1] = '\0';
    free(s);
    *out = buf;
    *len = n + 1;
    return CORE_OK;
}

// ---- config ----

static void copy_str(char *dst, size_t cap, json_t *v)
{
    dst[0] = '\0';
    if (json_is_string(v)) snprintf(dst, cap, "%s", json_string_value(v));
}

static int dup_str(char **dst, json_t *v)
{
    *dst = NULL;
    if (!json_is_string(v) || !json_string_length(v)) return CORE_OK;
    *dst = strdup(json_string_value(v));
    return *dst ? CORE_OK : CORE_NOMEM;
}

int store_config_parse(const char *json, size_t len, store_details *d, char **renderer,
                       char **parser, char **requires_, core_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return core_err_set(err, CORE_FORMAT, "corrupt config: %s",
                            root ? "not an object" : je.text);
    }
    copy_str(d->format, sizeof d->format, json_object_get(root, "model_format"));
    copy_str(d->family, sizeof d->family, json_object_get(root, "model_family"));
    copy_str(d->parameter_size, sizeof d->parameter_size, json_object_get(root, "model_type"));
    copy_str(d->quantization_level, sizeof d->quantization_level,
             json_object_get(root, "file_type"));
    d->n_families = 0;
    json_t *fams = json_object_get(root, "model_families");
    for (size_t i = 0; json_is_array(fams) && i < json_array_size(fams); i++) {
        json_t *f = json_array_get(fams, i);
        if (!json_is_string(f) || d->n_families >= STORE_MAX_FAMILIES) continue;
        copy_str(d->families[d->n_families++], STORE_FIELD_MAX, f);
    }
    int rc = CORE_OK;
    if (renderer) rc |= dup_str(renderer, json_object_get(root, "renderer"));
    if (parser) rc |= dup_str(parser, json_object_get(root, "parser"));
    if (requires_) rc |= dup_str(requires_, json_object_get(root, "requires"));
    json_decref(root);
    return rc ? core_err_set(err, CORE_NOMEM, "out of memory") : CORE_OK;
}

// ---- GGUF facts ----

void store_human_number(uint64_t n, char *buf, size_t cap)
{
    static const struct {
        uint64_t unit;
        char suffix;
        const char *frac_fmt;
    } units[] = {
        {1000000000000ull, 'T', "%.1f%c"},
        {1000000000ull, 'B', "%.1f%c"},
        {1000000ull, 'M', "%.2f%c"},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (n < units[i].unit) continue;
        double v = (double)n / (double)units[i].unit;
        if (n % units[i].unit == 0) snprintf(buf, cap, "%.0f%c", v, units[i].suffix);
        else snprintf(buf, cap, units[i].frac_fmt, v, units[i].suffix);
        return;
    }
    if (n >= 1000) snprintf(buf, cap, "%.0fK", (double)n / 1000.0);
    else snprintf(buf, cap, "%llu", (unsigned long long)n);
}

/* llama.cpp's llama_ftype numbering, as Ollama names it (fs/ggml FileType.String). */
static const char *const file_type_names[] = {
    "F32",     "F16",     "Q4_0",   "Q4_1",   "Q4_1_F16", "Q4_2",   "Q4_3",   "Q8_0",
    "Q5_0",    "Q5_1",    "Q2_K",   "Q3_K_S", "Q3_K_M",   "Q3_K_L", "Q4_K_S", "Q4_K_M",
    "Q5_K_S",  "Q5_K_M",  "Q6_K",   "IQ2_XXS", "IQ2_XS",  "Q2_K_S", "IQ3_XS", "IQ3_XXS",
    "IQ1_S",   "IQ4_NL",  "IQ3_S",  "IQ3_M",  "IQ2_S",    "IQ2_M",  "IQ4_XS", "IQ1_M",
    "BF16",
};

/* No general.file_type: name the type that holds most bytes among the matrices. */
static void infer_file_type(const gguf_file *g, char *buf, size_t cap)
{
    uint64_t bytes[64] = {0};
    for (int64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (t->n_dims >= 2 && t->type >= 0 && t->type < 64) bytes[t->type] += t->size;
    }
    int best = -1;
    for (int t = 0; t < 64; t++) {
        if (bytes[t] && (best < 0 || bytes[t] > bytes[best])) best = t;
    }
    const core_type_info *ti = best >= 0 ? core_type_get(best) : NULL;
    snprintf(buf, cap, "%s", ti ? ti->name : "unknown");
}

int store_gguf_facts_read(const char *path, store_gguf_facts *f, core_err *err)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    char magic[4] = {0};
    size_t got = fp ? fread(magic, 1, 4, fp) : 0;
    if (fp) fclose(fp);
    if (got != 4 || memcmp(magic, "GGUF", 4) != 0) {
        return core_err_set(err, CORE_INVALID, "supplied file was not in GGUF format");
    }
    gguf_file *g;
    core_err gerr;
    if (gguf_open(&g, path, &gerr)) {
        return core_err_set(err, gerr.code == CORE_NOMEM ? CORE_NOMEM : CORE_FORMAT, "%s",
                            gerr.msg);
    }
    gguf_str s;
    if (gguf_get_str(g, "general.architecture", &s, NULL) == CORE_OK) {
        snprintf(f->architecture, sizeof f->architecture, "%.*s", (int)s.len, s.ptr);
    }
    uint64_t n_params = 0;
    for (int64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        uint64_t ne = 1;
        for (int d = 0; d < t->n_dims; d++) ne *= (uint64_t)t->ne[d];
        n_params += ne;
    }
    store_human_number(n_params, f->parameter_size, sizeof f->parameter_size);
    uint32_t ft;
    if (gguf_get_u32(g, "general.file_type", &ft, NULL) == CORE_OK) {
        if (ft < sizeof file_type_names / sizeof file_type_names[0]) {
            snprintf(f->file_type, sizeof f->file_type, "%s", file_type_names[ft]);
        } else {
            snprintf(f->file_type, sizeof f->file_type, "unknown");
        }
    } else {
        infer_file_type(g, f->file_type, sizeof f->file_type);
    }
    /* As Ollama's ggufLayers: general.type "adapter" → adapter layer; "projector" (or the
     * clip architecture of older mmproj files) → projector layer; else the weights. */
    f->media_type = STORE_MT_MODEL;
    if (gguf_get_str(g, "general.type", &s, NULL) == CORE_OK && gguf_str_eq(s, "adapter")) {
        f->media_type = STORE_MT_ADAPTER;
    } else if ((gguf_get_str(g, "general.type", &s, NULL) == CORE_OK &&
                gguf_str_eq(s, "projector")) ||
               strcmp(f->architecture, "clip") == 0) {
        f->media_type = STORE_MT_PROJECTOR;
    }
    gguf_close(g);
    return CORE_OK;
}
