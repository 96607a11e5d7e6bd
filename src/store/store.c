/* store.c — opening the store, finding manifests, list, resolve, copy, delete, prune.
 *
 * Locking: see store.h. Readers (list, resolve) take the rwlock shared, mutators (copy,
 * delete, create, prune) exclusively. All paths below manifests/ are built from validated
 * name parts or from directory entries that were themselves validated as name parts. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "store/internal.h"

#define PATH_CAP 4096

// ---- open and close ----

int store_root_default(char *buf, size_t cap, core_err *err)
{
    const char *env = getenv("OLLAMA_MODELS");
    if (env) {
        /* envconfig trims spaces and then quotes. */
        while (isspace((unsigned char)*env) || *env == '"' || *env == '\'') env++;
        size_t n = strlen(env);
        while (n && (isspace((unsigned char)env[n - 1]) || env[n - 1] == '"' ||
                     env[n - 1] == '\'')) {
            n--;
        }
        if (n) {
            if (n >= cap) return core_err_set(err, CORE_INVALID, "OLLAMA_MODELS is too long");
            memcpy(buf, env, n);
            buf[n] = '\0';
            return CORE_OK;
        }
    }
    const char *home = getenv("HOME");
    if (!home || !*home) {
        return core_err_set(err, CORE_INVALID, "neither OLLAMA_MODELS nor HOME is set");
    }
    int n = snprintf(buf, cap, "%s/.ollama/models", home);
    if (n < 0 || (size_t)n >= cap) return core_err_set(err, CORE_INVALID, "HOME is too long");
    return CORE_OK;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Older stores named blobs "sha256:<hex>"; Ollama renames them at start-up. */
static void rename_old_blobs(store *s)
{
    DIR *d = opendir(s->blobs);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char digest[STORE_DIGEST_BUF];
        if (strncmp(e->d_name, "sha256:", 7) != 0) continue;
        if (store_digest_parse(e->d_name, digest, NULL)) continue;
        char from[PATH_CAP], to[PATH_CAP];
        snprintf(from, sizeof from, "%s/%s", s->blobs, e->d_name);
        if (store_blob_path(s, digest, to, sizeof to, NULL)) continue;
        if (rename(from, to) != 0) CORE_WARN("store: cannot rename %s: %s", from, strerror(errno));
    }
    closedir(d);
}

int store_open(store **out, const char *root, core_err *err)
{
    if (!root || !*root) return core_err_set(err, CORE_INVALID, "empty store root");
    if (strlen(root) > PATH_CAP - 600) {
        return core_err_set(err, CORE_INVALID, "store root %.64s… is too long", root);
    }
    store *s = calloc(1, sizeof *s);
    if (!s) return core_err_set(err, CORE_NOMEM, "out of memory");
    s->root = strdup(root);
    s->manifests = path_join(root, "manifests");
    s->blobs = path_join(root, "blobs");
    if (!s->root || !s->manifests || !s->blobs) {
        store_close(s);
        return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    int rc = core_mkdirs(s->manifests, err);
    if (!rc) rc = core_mkdirs(s->blobs, err);
    if (rc) {
        free(s->root);
        free(s->manifests);
        free(s->blobs);
        free(s);
        return rc;
    }
    /* Writers first: a steady stream of listings must not starve a create or delete. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    atomic_init(&s->tmp_seq, 0);
    /* For store_pull. Reference counted by curl; not thread-safe, hence here, at start-up. */
    s->curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    rename_old_blobs(s);
    *out = s;
    return CORE_OK;
}

void store_close(store *s)
{
    if (!s) return;
    if (s->root && s->manifests && s->blobs) pthread_rwlock_destroy(&s->lock);
    if (s->curl_ready) curl_global_cleanup();
    free(s->root);
    free(s->manifests);
    free(s->blobs);
    free(s);
}

const char *store_root(const store *s)
{
    return s->root;
}

// ---- finding manifests ----

/* Finds the entry of dir named want: exactly, else case-insensitively. found gets its
 * on-disk name. */
static bool find_entry(const char *dir, const char *want, char *found, size_t cap)
{
    char p[PATH_CAP];
    struct stat st;
    int k = snprintf(p, sizeof p, "%s/%s", dir, want);
    if (k < 0 || (size_t)k >= sizeof p) return false;
    if (stat(p, &st) == 0) {
        snprintf(found, cap, "%s", want);
        return true;
    }
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool ok = false;
    while ((e = readdir(d))) {
        if (strcasecmp(e->d_name, want) == 0 && strlen(e->d_name) < cap) {
            snprintf(found, cap, "%s", e->d_name);
            ok = true;
            break;
        }
    }
    closedir(d);
    return ok;
}

int store_manifest_path(const store *s, const store_name *n, char *path, size_t cap,
                        core_err *err)
{
    int k = snprintf(path, cap, "%s/%s/%s/%s/%s", s->manifests, n->host, n->ns, n->model,
                     n->tag);
    if (k < 0 || (size_t)k >= cap) return core_err_set(err, CORE_INVALID, "path too long");
    return CORE_OK;
}

/* Walks the four levels host/ns/model/tag; returns how many matched (4 = the manifest). */
static int walk_name(store *s, const store_name *n, store_name *canon)
{
    const char *want[4] = {n->host, n->ns, n->model, n->tag};
    char *got[4] = {canon->host, canon->ns, canon->model, canon->tag};
    size_t caps[4] = {sizeof canon->host, sizeof canon->ns, sizeof canon->model,
                      sizeof canon->tag};
    char dir[PATH_CAP];
    snprintf(dir, sizeof dir, "%s", s->manifests);
    int level = 0;
    for (; level < 4; level++) {
        if (!find_entry(dir, want[level], got[level], caps[level])) break;
        size_t len = strlen(dir);
        snprintf(dir + len, sizeof dir - len, "/%s", got[level]);
    }
    for (int i = level; i < 4; i++) snprintf(got[i], caps[i], "%s", want[i]);
    return level;
}

int store_manifest_find(store *s, const store_name *n, char *path, size_t cap,
                        store_name *canon)
{
    store_name c;
    if (walk_name(s, n, &c) < 4) return CORE_NOTFOUND;
    struct stat st;
    if (store_manifest_path(s, &c, path, cap, NULL) || stat(path, &st) != 0 ||
        !S_ISREG(st.st_mode)) {
        return CORE_NOTFOUND;
    }
    if (canon) *canon = c;
    return CORE_OK;
}

void store_name_canonical(store *s, const store_name *n, store_name *out)
{
    walk_name(s, n, out);
}

int store_manifest_load(const char *path, const char *what, store_manifest *m, char **raw_out,
                        size_t *raw_len, core_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return core_err_set(err, errno == ENOENT ? CORE_NOTFOUND : CORE_IO, "%s: %s", what,
                            strerror(errno));
    }
    if ((size_t)st.st_size > STORE_JSON_MAX) {
        return core_err_set(err, CORE_FORMAT, "%s: manifest is too large", what);
    }
    char *raw;
    size_t len;
    int rc = core_file_read(path, STORE_JSON_MAX, &raw, &len, err);
    if (rc) return rc;
    rc = store_manifest_parse(raw, len, what, m, err);
    if (rc || !raw_out) {
        free(raw);
    } else {
        *raw_out = raw;
        *raw_len = len;
    }
    return rc;
}

// ---- walking every manifest ----

typedef int (*walk_fn)(const store_name *n, const char *path, void *ud);

/* Calls fn for every manifest file whose four path parts form a valid name (temporary
 * files, dot files and stray names are skipped). Stops at the first non-zero fn result. */
static int walk_level(const char *dir, int level, store_name *n, walk_fn fn, void *ud)
{
    DIR *d = opendir(dir);
    if (!d) return CORE_OK;
    struct dirent *e;
    int rc = CORE_OK;
    char *parts[4] = {n->host, n->ns, n->model, n->tag};
    size_t caps[4] = {sizeof n->host, sizeof n->ns, sizeof n->model, sizeof n->tag};
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= caps[level]) continue;
        snprintf(parts[level], caps[level], "%s", e->d_name);
        char sub[PATH_CAP];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(sub, &st) != 0) continue;
        if (level < 3) {
            if (S_ISDIR(st.st_mode)) rc = walk_level(sub, level + 1, n, fn, ud);
            continue;
        }
        if (!S_ISREG(st.st_mode)) continue;
        char full[STORE_NAME_MAX];
        store_name check;
        store_name_full(n, full, sizeof full);
        if (store_name_parse(&check, full, NULL) || strcmp(check.host, n->host) ||
            strcmp(check.ns, n->ns) || strcmp(check.model, n->model) ||
            strcmp(check.tag, n->tag)) {
            continue;
        }
        rc = fn(n, sub, ud);
    }
    closedir(d);
    return rc;
}

static int walk_manifests(store *s, walk_fn fn, void *ud)
{
    store_name n;
    memset(&n, 0, sizeof n);
    return walk_level(s->manifests, 0, &n, fn, ud);
}

// ---- digest sets (for GC) ----

typedef struct digest_set {
    char (*d)[STORE_DIGEST_BUF];
    size_t n, cap;
    bool corrupt; /* some manifest could not be read */
} digest_set;

static int set_add(digest_set *ds, const char *digest)
{
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 64;
        void *p = realloc(ds->d, cap * sizeof *ds->d);
        if (!p) return CORE_NOMEM;
        ds->d = p;
        ds->cap = cap;
    }
    memcpy(ds->d[ds->n++], digest, STORE_DIGEST_BUF);
    return CORE_OK;
}

static bool set_has(const digest_set *ds, const char *digest)
{
    for (size_t i = 0; i < ds->n; i++) {
        if (strcmp(ds->d[i], digest) == 0) return true;
    }
    return false;
}

static int collect_fn(const store_name *n, const char *path, void *ud)
{
    digest_set *ds = ud;
    store_manifest m;
    core_err e;
    char what[STORE_NAME_MAX];
    store_name_display(n, what, sizeof what);
    if (store_manifest_load(path, what, &m, NULL, NULL, &e)) {
        CORE_WARN("store: %s", e.msg);
        ds->corrupt = true;
        return CORE_OK;
    }
    int rc = set_add(ds, m.config.digest);
    for (size_t i = 0; !rc && i < m.n_layers; i++) rc = set_add(ds, m.layers[i].digest);
    store_manifest_deinit(&m);
    return rc;
}

static void remove_blob(store *s, const char *digest)
{
    char path[PATH_CAP];
    if (store_blob_path(s, digest, path, sizeof path, NULL)) return;
    if (unlink(path) != 0 && errno != ENOENT) {
        CORE_WARN("store: cannot remove %s: %s", path, strerror(errno));
    } else {
        CORE_DEBUG("store: removed unused blob %s", digest);
    }
}

int store_gc_layers(store *s, const store_manifest *m, core_err *err)
{
    digest_set ds = {0};
    int rc = walk_manifests(s, collect_fn, &ds);
    if (rc) {
        free(ds.d);
        return core_err_set(err, CORE_NOMEM, "out of memory while collecting blob references");
    }
    if (ds.corrupt) {
        /* A blob that only an unreadable manifest references would be lost for good. */
        CORE_WARN("store: a manifest is unreadable; unused blobs are kept");
    } else {
        if (!set_has(&ds, m->config.digest)) remove_blob(s, m->config.digest);
        for (size_t i = 0; i < m->n_layers; i++) {
            if (!set_has(&ds, m->layers[i].digest)) remove_blob(s, m->layers[i].digest);
        }
    }
    free(ds.d);
    return CORE_OK;
}

/* Removes the empty directories from path's parent up to (not including) manifests/. */
static void prune_parents(store *s, const char *path)
{
    char dir[PATH_CAP];
    snprintf(dir, sizeof dir, "%s", path);
    size_t root_len = strlen(s->manifests);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) <= root_len) break;
        *slash = '\0';
        if (rmdir(dir) != 0) break;
    }
}

// ---- list ----

typedef struct list_ctx {
    store *s;
    store_entry *v;
    size_t n, cap;
} list_ctx;

static int list_one(list_ctx *c, const store_name *n, const char *path, store_entry *e)
{
    char what[STORE_NAME_MAX];
    store_name_display(n, what, sizeof what);
    struct stat st;
    store_manifest m;
    char *raw;
    size_t raw_len;
    core_err err = {0};
    if (stat(path, &st) != 0 || store_manifest_load(path, what, &m, &raw, &raw_len, &err)) {
        CORE_WARN("store: skipping a manifest: %s", err.msg);
        return CORE_NOTFOUND;
    }
    memset(e, 0, sizeof *e);
    e->name = *n;
    snprintf(e->display, sizeof e->display, "%s", what);
    e->modified_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    char dg[STORE_DIGEST_BUF];
    store_digest_of(raw, raw_len, dg);
    memcpy(e->digest, dg + 7, 65);
    free(raw);
    e->size = m.config.size;
    for (size_t i = 0; i < m.n_layers; i++) e->size += m.layers[i].size;
    char *cfg;
    size_t cfg_len;
    int rc = store_blob_read(c->s, m.config.digest, STORE_JSON_MAX, &cfg, &cfg_len, &err);
    if (!rc) {
        rc = store_config_parse(cfg, cfg_len, &e->details, NULL, NULL, NULL, &err);
        free(cfg);
    }
    store_manifest_deinit(&m);
    if (rc) CORE_WARN("store: skipping %s: config %s", what, err.msg);
    return rc;
}

static int list_fn(const store_name *n, const char *path, void *ud)
{
    list_ctx *c = ud;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        void *p = realloc(c->v, cap * sizeof *c->v);
        if (!p) return CORE_NOMEM;
        c->v = p;
        c->cap = cap;
    }
    if (list_one(c, n, path, &c->v[c->n]) == CORE_OK) c->n++;
    return CORE_OK;
}

static int entry_cmp(const void *a, const void *b)
{
    const store_entry *x = a, *y = b;
    if (x->modified_ns != y->modified_ns) return x->modified_ns > y->modified_ns ? -1 : 1;
    return strcmp(x->display, y->display);
}

int store_list(store *s, store_entry **out, size_t *n, core_err *err)
{
    list_ctx c = {.s = s};
    pthread_rwlock_rdlock(&s->lock);
    int rc = walk_manifests(s, list_fn, &c);
    pthread_rwlock_unlock(&s->lock);
    if (rc) {
        free(c.v);
        return core_err_set(err, CORE_NOMEM, "out of memory while listing models");
    }
    if (c.n) qsort(c.v, c.n, sizeof *c.v, entry_cmp);
    *out = c.v;
    *n = c.n;
    return CORE_OK;
}

void store_list_free(store_entry *entries)
{
    free(entries);
}

// ---- copy and delete ----

int store_copy(store *s, const char *src, const char *dst, core_err *err)
{
    store_name sn, dn, canon;
    if (store_name_parse(&sn, src, NULL)) {
        return core_err_set(err, CORE_INVALID, "source \"%.160s\" is invalid", src ? src : "");
    }
    if (store_name_parse(&dn, dst, NULL)) {
        return core_err_set(err, CORE_INVALID, "destination \"%.160s\" is invalid",
                            dst ? dst : "");
    }
    char from[PATH_CAP], to[PATH_CAP];
    pthread_rwlock_wrlock(&s->lock);
    int rc;
    if (store_manifest_find(s, &sn, from, sizeof from, NULL)) {
        rc = core_err_set(err, CORE_NOTFOUND, "model \"%.160s\" not found", src);
        goto out;
    }
    store_name_canonical(s, &dn, &canon);
    rc = store_manifest_path(s, &canon, to, sizeof to, err);
    if (rc) goto out;
    char *raw;
    size_t len;
    rc = core_file_read(from, STORE_JSON_MAX, &raw, &len, err);
    if (rc) goto out;
    char dir[PATH_CAP];
    snprintf(dir, sizeof dir, "%s", to);
    *strrchr(dir, '/') = '\0';
    rc = core_mkdirs(dir, err);
    if (!rc) rc = store_write_atomic(s, to, raw, len, err);
    free(raw);
out:
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int store_delete(store *s, const char *name, core_err *err)
{
    store_name n, canon;
    if (store_name_parse(&n, name, NULL)) {
        return core_err_set(err, CORE_INVALID, "name \"%.160s\" is invalid", name ? name : "");
    }
    char path[PATH_CAP], what[STORE_NAME_MAX];
    pthread_rwlock_wrlock(&s->lock);
    int rc;
    if (store_manifest_find(s, &n, path, sizeof path, &canon)) {
        rc = core_err_set(err, CORE_NOTFOUND, "model '%.160s' not found", name);
        goto out;
    }
    store_name_display(&canon, what, sizeof what);
    store_manifest m;
    core_err lerr;
    bool have_m = store_manifest_load(path, what, &m, NULL, NULL, &lerr) == CORE_OK;
    if (!have_m) CORE_WARN("store: deleting %s with an unreadable manifest: %s", what, lerr.msg);
    if (unlink(path) != 0) {
        rc = core_err_set(err, CORE_IO, "cannot remove %s: %s", path, strerror(errno));
        if (have_m) store_manifest_deinit(&m);
        goto out;
    }
    prune_parents(s, path);
    rc = CORE_OK;
    if (have_m) {
        rc = store_gc_layers(s, &m, err);
        store_manifest_deinit(&m);
    }
out:
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

bool store_model_exists(store *s, const char *name)
{
    store_name n;
    char path[PATH_CAP];
    if (store_name_parse(&n, name, NULL)) return false;
    pthread_rwlock_rdlock(&s->lock);
    bool ok = store_manifest_find(s, &n, path, sizeof path, NULL) == CORE_OK;
    pthread_rwlock_unlock(&s->lock);
    return ok;
}

// ---- prune ----

static void prune_empty_dirs(const char *dir, int depth)
{
    if (depth > 4) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[PATH_CAP];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            prune_empty_dirs(sub, depth + 1);
            rmdir(sub); /* fails harmlessly when not empty */
        }
    }
    closedir(d);
}

static bool blob_name_valid(const char *name, char digest[STORE_DIGEST_BUF])
{
    return strncmp(name, "sha256-", 7) == 0 && store_digest_parse(name, digest, NULL) == 0;
}

int store_prune(store *s, int64_t grace_s, size_t *n_removed, core_err *err)
{
    size_t removed = 0;
    digest_set ds = {0};
    pthread_rwlock_wrlock(&s->lock);
    int rc = walk_manifests(s, collect_fn, &ds);
    if (rc) {
        rc = core_err_set(err, CORE_NOMEM, "out of memory while collecting blob references");
        goto out;
    }
    if (ds.corrupt) {
        CORE_WARN("store: a manifest is corrupt; skipping the pruning of blobs");
        goto out;
    }
    DIR *d = opendir(s->blobs);
    if (!d) {
        rc = core_err_set(err, CORE_IO, "%s: %s", s->blobs, strerror(errno));
        goto out;
    }
    int64_t cutoff = core_wall_ns() / 1000000000 - grace_s;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[PATH_CAP], digest[STORE_DIGEST_BUF];
        snprintf(path, sizeof path, "%s/%s", s->blobs, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_mtim.tv_sec > cutoff) {
            continue;
        }
        if (blob_name_valid(e->d_name, digest) && set_has(&ds, digest)) continue;
        if (unlink(path) == 0) {
            removed++;
            CORE_INFO("store: pruned %s", e->d_name);
        }
    }
    closedir(d);
    prune_empty_dirs(s->manifests, 0);
out:
    pthread_rwlock_unlock(&s->lock);
    free(ds.d);
    if (n_removed) *n_removed = removed;
    return rc;
}
