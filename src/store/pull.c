/* pull.c — store_pull: a model from a registry into the store, as Ollama's pull does
 * (contract in store.h). The HTTP is registry.c's; this file validates the manifest,
 * downloads blobs into partial files and commits the manifest.
 *
 * A blob is downloaded into blobs/sha256-<hex>-dwell-partial (a name Ollama's download
 * never globs: its part files are "…-partial-N"; both prunings remove it, being no digest).
 * Whoever downloads holds an exclusive flock on that file; another puller of the same blob
 * (this process or another) polls for the lock and then looks again: if the blob is now
 * stored it is done, else it resumes the partial itself. After taking the lock, the file
 * descriptor is checked to still be the file at the partial's name (the previous holder may
 * have renamed it into place or removed it).
 *
 * Thread: the caller's (a worker of the server); nothing here is shared but the disk, and
 * the store lock is taken only for the final commit. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "store/internal.h"

#define PATH_CAP 4096
#define PULL_MAX_LAYERS 1024
#define PULL_MAX_BLOB ((uint64_t)1 << 44) /* 16 TiB: more is a broken manifest */
#define PULL_MANIFEST_TIMEOUT_S 60
#define PULL_TRIES 3                      /* per blob, for transient network failures */
#define PULL_COMMIT_ROUNDS 3              /* re-fetches of blobs removed before the commit */
#define PULL_TICK_NS (100 * 1000000LL)    /* progress events at most this often */
#define PULL_HASH_CHUNK ((size_t)1 << 20)

/* One blob to fetch (the config or a layer; duplicates removed). */
typedef struct pull_blob {
    char digest[STORE_DIGEST_BUF];
    uint64_t size;
} pull_blob;

typedef struct pull_ctx {
    store *s;
    const store_pull_opts *o;
    store_http http;
    store_name name;
    char display[STORE_NAME_MAX];
    char base[STORE_HOST_MAX + 3 * STORE_PART_MAX + 32]; /* scheme://host/v2/ns/model */
    pull_blob *blobs;
    size_t n_blobs;
} pull_ctx;

// ---- progress ----

static bool is_cancelled(const pull_ctx *c)
{
    return c->o->cancel && atomic_load(c->o->cancel);
}

static void emit_status(pull_ctx *c, const char *status)
{
    store_pull_event ev = {status, NULL, 0, 0};
    if (c->o->progress) c->o->progress(&ev, c->o->ud);
}

static void emit_blob(pull_ctx *c, const pull_blob *b, uint64_t completed)
{
    char status[32];
    snprintf(status, sizeof status, "pulling %.12s", b->digest + 7);
    store_pull_event ev = {status, b->digest, b->size, completed};
    if (c->o->progress) c->o->progress(&ev, c->o->ud);
}

// ---- the manifest ----

static int bad_manifest(core_err *err, const char *what)
{
    return core_err_set(err, CORE_PROTOCOL, "pull model manifest: invalid manifest: %s", what);
}

/* "sha256:" and 64 lowercase hex digits, nothing else (it becomes a file name). */
static bool digest_strict(const char *s)
{
    if (strlen(s) != STORE_DIGEST_LEN || strncmp(s, "sha256:", 7) != 0) return false;
    for (int i = 7; i < STORE_DIGEST_LEN; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
    }
    return true;
}

static bool media_type_ok(const char *mt)
{
    size_t n = strlen(STORE_MT_PREFIX), len = strlen(mt);
    if (len <= n || len > n + 64 || strncmp(mt, STORE_MT_PREFIX, n) != 0) return false;
    for (size_t i = n; i < len; i++) {
        char ch = mt[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
              ch == '+')) {
            return false;
        }
    }
    return true;
}

/* The text layers store_resolve reads into memory, capped there as here. */
static bool is_text_layer(const char *mt)
{
    static const char *const text[] = {STORE_MT_TEMPLATE, STORE_MT_PROMPT, STORE_MT_SYSTEM,
                                       STORE_MT_PARAMS, STORE_MT_MESSAGES, STORE_MT_LICENSE};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        if (strcmp(mt, text[i]) == 0) return true;
    }
    return false;
}

static int check_entry(json_t *o, bool is_config, size_t i, core_err *err)
{
    char what[96];
    const char *which = is_config ? "config" : "layer";
    json_t *mt = json_object_get(o, "mediaType"), *dg = json_object_get(o, "digest");
    json_t *sz = json_object_get(o, "size");
    if (!json_is_object(o)) {
        snprintf(what, sizeof what, "%s %zu is not an object", which, i);
        return bad_manifest(err, what);
    }
    const char *m = json_string_value(mt);
    if (!m || (is_config ? strcmp(m, STORE_MT_CONFIG) != 0 : !media_type_ok(m))) {
        snprintf(what, sizeof what, "%s %zu: unsupported mediaType \"%.40s\"", which, i,
                 m ? m : "");
        return bad_manifest(err, what);
    }
    if (!json_is_string(dg) || !digest_strict(json_string_value(dg))) {
        snprintf(what, sizeof what, "%s %zu: digest is not sha256:<64 lowercase hex>", which, i);
        return bad_manifest(err, what);
    }
    json_int_t size = json_is_integer(sz) ? json_integer_value(sz) : -1;
    uint64_t cap = is_config ? STORE_JSON_MAX
                             : is_text_layer(m) ? STORE_TEXT_LAYER_MAX : PULL_MAX_BLOB;
    if (size < 0 || (uint64_t)size > cap) {
        snprintf(what, sizeof what, "%s %zu: size is not an integer from 0 to %llu", which, i,
                 (unsigned long long)cap);
        return bad_manifest(err, what);
    }
    return CORE_OK;
}

/* Everything store.h promises about a registry's manifest, before anything is trusted. */
static int manifest_check(const char *raw, size_t len, core_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return bad_manifest(err, je.text);
    int rc = CORE_OK;
    json_t *sv = json_object_get(root, "schemaVersion"), *mt = json_object_get(root, "mediaType");
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(root)) {
        rc = bad_manifest(err, "not a JSON object");
    } else if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        rc = bad_manifest(err, "schemaVersion is not 2");
    } else if (!json_is_string(mt) || strcmp(json_string_value(mt), STORE_MT_MANIFEST) != 0) {
        rc = bad_manifest(err, "mediaType is not " STORE_MT_MANIFEST);
    } else if (!json_is_array(layers) || json_array_size(layers) > PULL_MAX_LAYERS) {
        rc = bad_manifest(err, "layers is not an array of at most 1024 entries");
    } else {
        rc = check_entry(json_object_get(root, "config"), true, 0, err);
        for (size_t i = 0; !rc && i < json_array_size(layers); i++)
            rc = check_entry(json_array_get(layers, i), false, i, err);
    }
    json_decref(root);
    return rc;
}

typedef struct body_buf {
    core_buf b;
    size_t max;
    core_err *err;
} body_buf;

static int body_collect(void *ud, long status, int64_t range_start, const char *data,
                        size_t len)
{
    (void)status, (void)range_start;
    body_buf *bb = ud;
    if (bb->b.len + len > bb->max) {
        return core_err_set(bb->err, CORE_PROTOCOL, "the registry's answer is larger than %zu "
                            "bytes", bb->max);
    }
    if (len && core_buf_append(&bb->b, data, len))
        return core_err_set(bb->err, CORE_NOMEM, "out of memory");
    return CORE_OK;
}

/* Fetches, checks and parses the manifest; raw gets its bytes. */
static int manifest_fetch(pull_ctx *c, store_manifest *m, core_err *err)
{
    char url[sizeof c->base + STORE_PART_MAX + 16];
    snprintf(url, sizeof url, "%s/manifests/%s", c->base, c->name.tag);
    body_buf bb = {.max = STORE_PULL_MANIFEST_MAX, .err = err};
    core_buf_init(&bb.b);
    store_http_req q = {.url = url, .accept = STORE_MT_MANIFEST, .follow = false,
                        .total_timeout_s = PULL_MANIFEST_TIMEOUT_S, .body = body_collect,
                        .ud = &bb};
    long status;
    bool transient;
    int rc = store_http_get(&c->http, &q, &status, &transient, err);
    if (rc && rc != CORE_CANCELLED && rc != CORE_NOMEM) {
        core_err inner = *err;
        core_err_set(err, rc, "pull model manifest: %s", inner.msg);
    }
    if (!rc && status == 404) {
        rc = core_err_set(err, CORE_NOTFOUND, "pull model manifest: file does not exist");
    } else if (!rc && status != 200) {
        size_t n = bb.b.len < 200 ? bb.b.len : 200;
        while (n && (bb.b.data[n - 1] == '\n' || bb.b.data[n - 1] == '\r')) n--;
        rc = core_err_set(err, CORE_PROTOCOL, "pull model manifest: %ld: %.*s", status, (int)n,
                          n ? bb.b.data : "");
    }
    if (!rc) rc = manifest_check(bb.b.data, bb.b.len, err);
    if (!rc) rc = store_manifest_parse(bb.b.data, bb.b.len, "pull model manifest", m, err);
    core_buf_deinit(&bb.b);
    return rc;
}

/* The blobs to fetch, each digest once: the layers, then the config (Ollama's order). */
static int blobs_collect(pull_ctx *c, const store_manifest *m, core_err *err)
{
    c->blobs = calloc(m->n_layers + 1, sizeof *c->blobs);
    if (!c->blobs) return core_err_set(err, CORE_NOMEM, "out of memory");
    for (size_t i = 0; i <= m->n_layers; i++) {
        const store_layer *l = i < m->n_layers ? &m->layers[i] : &m->config;
        bool seen = false;
        for (size_t k = 0; k < c->n_blobs && !seen; k++) {
            if (strcmp(c->blobs[k].digest, l->digest) != 0) continue;
            if (c->blobs[k].size != l->size) {
                return bad_manifest(err, "one digest is listed with two sizes");
            }
            seen = true;
        }
        if (seen) continue;
        memcpy(c->blobs[c->n_blobs].digest, l->digest, STORE_DIGEST_BUF);
        c->blobs[c->n_blobs++].size = l->size;
    }
    return CORE_OK;
}

// ---- blobs on disk ----

static int blob_paths(pull_ctx *c, const pull_blob *b, char *final, char *part, core_err *err)
{
    int rc = store_blob_path(c->s, b->digest, final, PATH_CAP, err);
    if (rc) return rc;
    int n = snprintf(part, PATH_CAP, "%s-dwell-partial", final);
    if (n < 0 || n >= PATH_CAP) return core_err_set(err, CORE_INVALID, "path too long");
    return CORE_OK;
}

/* Stored, with the manifest's size (a cache hit, as Ollama's: the content is not hashed). */
static bool blob_present(const char *final, uint64_t size)
{
    struct stat st;
    return stat(final, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

/* Not enough room for what is missing fails before any download (spec: Ollama checks too).
 * A partial's bytes are not missing: a pull stopped by a full disk must be able to resume
 * once the rest fits. */
static int space_check(pull_ctx *c, core_err *err)
{
    uint64_t need = 0;
    for (size_t i = 0; i < c->n_blobs; i++) {
        char final[PATH_CAP], part[PATH_CAP];
        uint64_t size = c->blobs[i].size;
        int rc = blob_paths(c, &c->blobs[i], final, part, err);
        if (rc) return rc;
        if (blob_present(final, size)) continue;
        struct stat st;
        uint64_t have = stat(part, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        need += have <= size ? size - have : size; /* a longer one is started over */
    }
    struct statvfs vs;
    if (need == 0 || statvfs(c->s->blobs, &vs) != 0) return CORE_OK;
    uint64_t avail = (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize;
    if (need <= avail) return CORE_OK;
    char a[32], b[32];
    core_size_format((size_t)need, a, sizeof a);
    core_size_format((size_t)avail, b, sizeof b);
    return core_err_set(err, CORE_LIMIT, "not enough disk space to pull %s: it needs %s more, "
                        "%s is free in %s", c->display, a, b, c->s->blobs);
}

// ---- downloading one blob ----

/* The state of one blob's download, owned by the pulling thread. */
typedef struct dl {
    pull_ctx *c;
    const pull_blob *b;
    int fd;                 /* the partial file, locked */
    const char *part;
    EVP_MD_CTX *md;         /* SHA-256 of the bytes [0, have) */
    uint64_t have;
    int64_t last_emit;
    bool decided;           /* the response's status was looked at */
    bool error_body;        /* an error status: its body is collected for the message */
    long status;
    char body[256];         /* the start of an error body */
    size_t body_len;
    bool bad_bytes;         /* the partial's bytes are wrong: remove it */
    bool start_over;        /* the answer cannot continue the partial: it was emptied */
    core_err *err;
} dl;

static void dl_emit(dl *d, bool force)
{
    int64_t now = core_mono_ns();
    if (!force && now - d->last_emit < PULL_TICK_NS) return;
    d->last_emit = now;
    emit_blob(d->c, d->b, d->have);
}

static int dl_restart(dl *d)
{
    if (ftruncate(d->fd, 0) != 0 || !EVP_DigestInit_ex(d->md, EVP_sha256(), NULL)) {
        return core_err_set(d->err, CORE_IO, "%s: %s", d->part, strerror(errno));
    }
    d->have = 0;
    return CORE_OK;
}

/* The first body bytes (or the end of a bodiless answer): is this what we asked for? */
static int dl_decide(dl *d, long status, int64_t range_start)
{
    d->decided = true;
    d->status = status;
    if (status == 206 && range_start == (int64_t)d->have) return CORE_OK;
    if (status == 206) {
        /* Bytes from somewhere else (or no Content-Range): they cannot continue the partial,
         * and asking again would get the same. Empty it so that the next try asks for the
         * whole blob, without a Range. */
        core_err_set(d->err, CORE_PROTOCOL, "pull blob %s: the registry resumed at byte "
                     "%lld, not %llu", d->b->digest, (long long)range_start,
                     (unsigned long long)d->have);
        int rc = dl_restart(d);
        d->start_over = rc == CORE_OK;
        return rc ? rc : CORE_PROTOCOL;
    }
    if (status == 200) return d->have ? dl_restart(d) : CORE_OK; /* no ranges: from 0 */
    d->error_body = true;
    return CORE_OK;
}

static int dl_body(void *ud, long status, int64_t range_start, const char *data, size_t len)
{
    dl *d = ud;
    if (!d->decided) {
        int rc = dl_decide(d, status, range_start);
        if (rc) return rc;
    }
    if (d->error_body) {
        size_t room = sizeof d->body - 1 - d->body_len;
        size_t n = len < room ? len : room;
        memcpy(d->body + d->body_len, data, n);
        d->body_len += n;
        return CORE_OK;
    }
    if (len > d->b->size - d->have) {
        d->bad_bytes = true;
        return core_err_set(d->err, CORE_PROTOCOL, "pull blob %s: the registry sent more than "
                            "the %llu bytes of the manifest", d->b->digest,
                            (unsigned long long)d->b->size);
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(d->fd, data + done, len - done, (off_t)(d->have + done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return core_err_set(d->err, CORE_IO, "%s: %s", d->part, strerror(errno));
        done += (size_t)w;
    }
    if (!EVP_DigestUpdate(d->md, data, len))
        return core_err_set(d->err, CORE_INTERNAL, "SHA-256 update failed");
    d->have += len;
    dl_emit(d, false);
    return CORE_OK;
}

static void dl_tick(void *ud)
{
    dl_emit(ud, false);
}

/* One GET of the missing bytes [have, size). */
static int dl_transfer(dl *d, bool *transient)
{
    pull_ctx *c = d->c;
    char url[sizeof c->base + STORE_DIGEST_BUF + 16];
    snprintf(url, sizeof url, "%s/blobs/%s", c->base, d->b->digest);
    d->decided = d->error_body = d->start_over = false;
    d->body_len = 0;
    store_http_req q = {.url = url, .range_from = d->have, .follow = true, .body = dl_body,
                        .tick = dl_tick, .ud = d};
    long status;
    int rc = store_http_get(&c->http, &q, &status, transient, d->err);
    if (rc && d->start_over) *transient = true;
    if (rc) return rc;
    if (d->error_body) {
        d->body[d->body_len] = '\0';
        if (d->status == 416) { /* our range is past the registry's end: start again */
            *transient = true;
            rc = dl_restart(d);
            return rc ? rc : core_err_set(d->err, CORE_PROTOCOL, "pull blob %s: 416",
                                          d->b->digest);
        }
        if (d->status == 404) {
            return core_err_set(d->err, CORE_NOTFOUND, "pull blob %s: file does not exist",
                                d->b->digest);
        }
        return core_err_set(d->err, CORE_PROTOCOL, "pull blob %s: %ld: %s", d->b->digest,
                            d->status, d->body);
    }
    if (d->have < d->b->size) {
        *transient = true;
        return core_err_set(d->err, CORE_PROTOCOL, "pull blob %s: unexpected EOF after %llu "
                            "of %llu bytes", d->b->digest, (unsigned long long)d->have,
                            (unsigned long long)d->b->size);
    }
    return CORE_OK;
}

/* Hashes the bytes a partial already holds (a resumed download), reporting them as the
 * blob's progress as it goes: tens of GB take a minute, and the first report is what lets
 * the HTTP response start. */
static int dl_hash_existing(dl *d)
{
    struct stat st;
    if (fstat(d->fd, &st) != 0) return core_err_set(d->err, CORE_IO, "%s: %s", d->part,
                                                    strerror(errno));
    if ((uint64_t)st.st_size > d->b->size) return dl_restart(d);
    char *buf = malloc(PULL_HASH_CHUNK);
    if (!buf) return core_err_set(d->err, CORE_NOMEM, "out of memory");
    uint64_t off = 0, end = (uint64_t)st.st_size;
    int rc = CORE_OK;
    while (!rc && off < end) {
        if (is_cancelled(d->c)) {
            rc = core_err_set(d->err, CORE_CANCELLED, "pull cancelled");
            break;
        }
        size_t want = end - off < PULL_HASH_CHUNK ? (size_t)(end - off) : PULL_HASH_CHUNK;
        ssize_t n = pread(d->fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) rc = core_err_set(d->err, CORE_IO, "%s: cannot read", d->part);
        else if (!EVP_DigestUpdate(d->md, buf, (size_t)n)) rc = CORE_INTERNAL;
        else off += (uint64_t)n;
        d->have = off;
        if (!rc) dl_emit(d, false);
    }
    free(buf);
    return rc;
}

/* Checks the digest of the complete partial and renames it into place. */
static int dl_finish(dl *d, const char *final)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char got[STORE_DIGEST_BUF];
    if (!EVP_DigestFinal_ex(d->md, md, &n) || n != 32)
        return core_err_set(d->err, CORE_INTERNAL, "SHA-256 final failed");
    memcpy(got, "sha256:", 7);
    store_hex(md, 32, got + 7);
    if (strcmp(got, d->b->digest) != 0) {
        d->bad_bytes = true;
        return core_err_set(d->err, CORE_PROTOCOL, "digest mismatch, file must be downloaded "
                            "again: want %s, got %s", d->b->digest, got);
    }
    if (fsync(d->fd) != 0 || rename(d->part, final) != 0)
        return core_err_set(d->err, CORE_IO, "%s: %s", final, strerror(errno));
    store_fsync_parent(final);
    return CORE_OK;
}

/* The partial is locked by us: resume it, retry transient failures, verify, rename. */
static int dl_run(pull_ctx *c, const pull_blob *b, int fd, const char *part, const char *final,
                  core_err *err)
{
    dl d = {.c = c, .b = b, .fd = fd, .part = part, .err = err};
    d.md = EVP_MD_CTX_new();
    if (!d.md || !EVP_DigestInit_ex(d.md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(d.md);
        return core_err_set(err, CORE_INTERNAL, "cannot start a SHA-256 digest");
    }
    int rc = dl_hash_existing(&d);
    uint64_t resumed = d.have;
    dl_emit(&d, true);
    for (int attempt = 1; !rc && d.have < b->size; attempt++) {
        bool transient = false;
        rc = dl_transfer(&d, &transient);
        if (!rc || !transient || attempt == PULL_TRIES || is_cancelled(c)) break;
        CORE_WARN("pull %s: %s; trying again (%d of %d)", c->display, err->msg, attempt + 1,
                  PULL_TRIES);
        core_sleep_ns((int64_t)attempt * 500000000);
        rc = CORE_OK;
    }
    if (!rc) rc = dl_finish(&d, final);
    /* Bad bytes can never become the blob; an empty partial is no use for a resume. A
     * partial with good bytes (client gone, network down) stays for the next pull. Ask the
     * file, not d.have: a pull cancelled before it re-read the partial has hashed nothing
     * of a file full of good bytes. */
    struct stat st;
    if (rc && (d.bad_bytes || (fstat(fd, &st) == 0 && st.st_size == 0))) unlink(part);
    if (!rc) {
        dl_emit(&d, true);
        CORE_INFO("pull %s: stored %s (%llu bytes%s)", c->display, b->digest,
                  (unsigned long long)b->size, resumed ? ", resumed" : "");
    }
    EVP_MD_CTX_free(d.md);
    return rc;
}

/* Takes the partial's lock, waiting for another puller (whose progress we report). Returns
 * CORE_OK with the lock, CORE_EXISTS when fd is no longer the file at part (look again). */
static int partial_lock(pull_ctx *c, const pull_blob *b, int fd, const char *part,
                        core_err *err)
{
    int64_t last = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return core_err_set(err, CORE_IO, "%s: flock: %s", part, strerror(errno));
        if (is_cancelled(c)) return core_err_set(err, CORE_CANCELLED, "pull cancelled");
        struct stat st;
        if (core_mono_ns() - last >= PULL_TICK_NS && fstat(fd, &st) == 0) {
            last = core_mono_ns();
            uint64_t got = (uint64_t)st.st_size;
            emit_blob(c, b, got < b->size ? got : b->size);
        }
        core_sleep_ns(50 * 1000000);
    }
    struct stat a, p;
    if (fstat(fd, &a) != 0 || stat(part, &p) != 0 || a.st_ino != p.st_ino || a.st_dev != p.st_dev)
        return CORE_EXISTS;
    return CORE_OK;
}

static int blob_fetch(pull_ctx *c, const pull_blob *b, core_err *err)
{
    char final[PATH_CAP], part[PATH_CAP];
    int rc = blob_paths(c, b, final, part, err);
    for (int round = 0; !rc; round++) {
        if (blob_present(final, b->size)) {
            emit_blob(c, b, b->size);
            return CORE_OK;
        }
        if (round == 100) return core_err_set(err, CORE_BUSY, "%s: cannot get hold of it", part);
        int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return core_err_set(err, CORE_IO, "%s: %s", part, strerror(errno));
        rc = partial_lock(c, b, fd, part, err);
        if (rc == CORE_EXISTS) {
            close(fd);
            rc = CORE_OK;
            continue;
        }
        if (!rc && blob_present(final, b->size)) { /* finished by whoever held the lock */
            unlink(part);
            close(fd);
            continue;
        }
        if (!rc) rc = dl_run(c, b, fd, part, final, err);
        close(fd); /* releases the lock */
        return rc;
    }
    return rc;
}

// ---- commit ----

static bool manifest_has(const store_manifest *m, const char *digest)
{
    if (strcmp(m->config.digest, digest) == 0) return true;
    for (size_t i = 0; i < m->n_layers; i++) {
        if (strcmp(m->layers[i].digest, digest) == 0) return true;
    }
    return false;
}

/* Under the store lock: the manifest replaces the old one (if any), whose unused blobs go
 * when o->prune. *missing counts blobs that vanished (a delete's GC): then nothing is
 * written. */
static int commit_locked(pull_ctx *c, const store_manifest *m, const char *raw, size_t len,
                         size_t *missing, core_err *err)
{
    *missing = 0;
    for (size_t i = 0; i < c->n_blobs; i++) {
        char final[PATH_CAP], part[PATH_CAP];
        int rc = blob_paths(c, &c->blobs[i], final, part, err);
        if (rc) return rc;
        if (!blob_present(final, c->blobs[i].size)) (*missing)++;
    }
    if (*missing) return CORE_OK;
    store_name canon;
    char path[PATH_CAP], dir[PATH_CAP];
    store_name_canonical(c->s, &c->name, &canon);
    int rc = store_manifest_path(c->s, &canon, path, sizeof path, err);
    if (rc) return rc;
    store_manifest old;
    core_err lerr;
    bool have_old = store_manifest_load(path, c->display, &old, NULL, NULL, &lerr) == CORE_OK;
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    rc = core_mkdirs(dir, err);
    if (!rc) rc = store_write_atomic(c->s, path, raw, len, err);
    bool unused = false;
    for (size_t i = 0; have_old && i <= old.n_layers; i++) {
        const store_layer *l = i < old.n_layers ? &old.layers[i] : &old.config;
        if (!manifest_has(m, l->digest)) unused = true;
    }
    if (!rc && unused && c->o->prune) {
        emit_status(c, "removing unused layers");
        rc = store_gc_layers(c->s, &old, err);
    }
    if (have_old) store_manifest_deinit(&old);
    return rc;
}

static int commit(pull_ctx *c, const store_manifest *m, core_err *err)
{
    char *raw = NULL; /* encode leaves it unset when it fails */
    size_t len = 0;
    int rc = store_manifest_encode(m, &raw, &len, err);
    /* Ollama writes a pulled manifest with json.Marshal: no newline at the end (a created
     * one has it), and the model's digest is the hash of exactly these bytes. */
    if (!rc && len && raw[len - 1] == '\n') len--;
    for (int round = 0; !rc; round++) {
        size_t missing;
        pthread_rwlock_wrlock(&c->s->lock);
        rc = commit_locked(c, m, raw, len, &missing, err);
        pthread_rwlock_unlock(&c->s->lock);
        if (rc || !missing) break;
        if (round == PULL_COMMIT_ROUNDS) {
            rc = core_err_set(err, CORE_BUSY, "pull %s: blobs keep disappearing (a delete "
                              "running alongside?)", c->display);
            break;
        }
        CORE_WARN("pull %s: %zu blobs were removed meanwhile; fetching them again", c->display,
                  missing);
        for (size_t i = 0; !rc && i < c->n_blobs; i++) rc = blob_fetch(c, &c->blobs[i], err);
    }
    free(raw);
    return rc;
}

// ---- the pull ----

int store_pull(store *s, const char *name, const store_pull_opts *o, core_err *err)
{
    core_err local; /* the messages are used on the way (logs, wrapping): never NULL here */
    if (!err) err = &local;
    pull_ctx c = {.s = s, .o = o};
    if (store_name_parse(&c.name, name, NULL)) {
        return core_err_set(err, CORE_INVALID, "invalid model name \"%.160s\"", name ? name : "");
    }
    if (!s->curl_ready) return core_err_set(err, CORE_INTERNAL, "libcurl is not initialised");
    store_name_display(&c.name, c.display, sizeof c.display);
    snprintf(c.base, sizeof c.base, "%s://%s/v2/%s/%s", o->insecure ? "http" : "https",
             c.name.host, c.name.ns, c.name.model);
    c.http = (store_http){.insecure = o->insecure,
                          .connect_timeout_s = o->connect_timeout_s ? o->connect_timeout_s : 15,
                          .stall_timeout_s = o->stall_timeout_s ? o->stall_timeout_s : 30,
                          .cancel = o->cancel};
    emit_status(&c, "pulling manifest");
    store_manifest m;
    int rc = manifest_fetch(&c, &m, err);
    if (rc) return rc;
    rc = blobs_collect(&c, &m, err);
    if (!rc) rc = space_check(&c, err);
    for (size_t i = 0; !rc && i < c.n_blobs; i++) rc = blob_fetch(&c, &c.blobs[i], err);
    if (!rc) {
        /* Each blob was hashed as it arrived; the commit checks they are all in place. */
        emit_status(&c, "verifying sha256 digest");
        emit_status(&c, "writing manifest");
        rc = commit(&c, &m, err);
    }
    if (!rc) CORE_INFO("pulled %s (%zu blobs)", c.display, c.n_blobs);
    store_manifest_deinit(&m);
    free(c.blobs);
    return rc;
}
