/* writer.c — the GGUF v3 writer.
 *
 * Metadata values are serialized into their file encoding as they are set (a u32 type then
 * the value), so writing is a concatenation and replacing a key swaps one buffer. Tensors
 * are either borrowed buffers or fill callbacks that produce one tensor at a time, so a
 * model of any size is written with one tensor's worth of memory. The file is written to a
 * temporary file beside the target through a 1 MiB buffer, fsynced and renamed into place:
 * a crash never leaves a half-written file at the path.
 *
 * Threads: a gguf_writer belongs to one thread. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/internal.h"

#define GGUF_WRITE_BUF (1u << 20)

// ---- types ----

typedef struct wkv {
    char *key;
    core_buf val; /* u32 vtype + encoded value */
} wkv;

typedef struct wtensor {
    char *name;
    int type;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    size_t size;
    uint64_t offset;
    const void *data; /* borrowed, or NULL when fill is set */
    gguf_tensor_fill_fn fill;
    void *ctx;
} wtensor;

struct gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
};

/* A buffered output file; the first error sticks in rc/err. */
typedef struct wout {
    int fd;
    char *buf;
    size_t len;
    uint64_t written;
    int rc;
    core_err *err;
    const char *path;
} wout;

// ---- static helpers: values ----

static int put_u32(core_buf *b, uint32_t v)
{
    return core_buf_append(b, &v, 4);
}
static int put_u64(core_buf *b, uint64_t v)
{
    return core_buf_append(b, &v, 8);
}

static int put_str(core_buf *b, const char *s, uint64_t len)
{
    int rc = put_u64(b, len);
    return rc ? rc : core_buf_append(b, s, (size_t)len);
}

/* Starts (or restarts) the value of key: returns its buffer, emptied, or NULL. */
static core_buf *kv_slot(gguf_writer *w, const char *key)
{
    if (!key || !*key) return NULL;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            core_buf_reset(&w->kvs[i].val);
            return &w->kvs[i].val;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *k = realloc(w->kvs, cap * sizeof *k);
        if (!k) return NULL;
        w->kvs = k;
        w->cap_kv = cap;
    }
    char *dup = strdup(key);
    if (!dup) return NULL;
    wkv *kv = &w->kvs[w->n_kv++];
    kv->key = dup;
    core_buf_init(&kv->val);
    return &kv->val;
}

/* Drops a key whose value could not be completed (out of memory). */
static void kv_drop(gguf_writer *w, const core_buf *val)
{
    for (size_t i = 0; i < w->n_kv; i++) {
        if (&w->kvs[i].val != val) continue;
        free(w->kvs[i].key);
        core_buf_deinit(&w->kvs[i].val);
        memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
        w->n_kv--;
        return;
    }
}

static int set_fixed(gguf_writer *w, const char *key, int vtype, const void *v)
{
    size_t es = gguf_vtype_size(vtype);
    if (!es) return CORE_INVALID;
    core_buf *b = kv_slot(w, key);
    if (!b) return key && *key ? CORE_NOMEM : CORE_INVALID;
    if (put_u32(b, (uint32_t)vtype) || core_buf_append(b, v, es)) {
        kv_drop(w, b);
        return CORE_NOMEM;
    }
    return CORE_OK;
}

/* Encodes an array read from a gguf_file (element type, count, elements). */
static int put_array(core_buf *b, const gguf_array *a)
{
    if (put_u32(b, (uint32_t)a->type) || put_u64(b, a->n)) return CORE_NOMEM;
    size_t es = gguf_vtype_size(a->type);
    if (es) return a->n ? core_buf_append(b, a->data, (size_t)a->n * es) : CORE_OK;
    for (uint64_t i = 0; i < a->n; i++) {
        int rc = a->type == GGUF_VT_STRING ? put_str(b, a->strs[i].ptr, a->strs[i].len)
                                           : put_array(b, &a->arrs[i]);
        if (rc) return rc;
    }
    return CORE_OK;
}

static int put_scalar(core_buf *b, int t, const gguf_scalar *v)
{
    uint8_t raw[8];
    switch (t) {
    case GGUF_VT_UINT8:
    case GGUF_VT_INT8:
        raw[0] = (uint8_t)v->u;
        break;
    case GGUF_VT_BOOL:
        raw[0] = v->b ? 1 : 0;
        break;
    case GGUF_VT_UINT16:
    case GGUF_VT_INT16: {
        uint16_t x = (uint16_t)v->u;
        memcpy(raw, &x, 2);
        break;
    }
    case GGUF_VT_UINT32:
    case GGUF_VT_INT32: {
        uint32_t x = (uint32_t)v->u;
        memcpy(raw, &x, 4);
        break;
    }
    case GGUF_VT_UINT64:
    case GGUF_VT_INT64:
        memcpy(raw, &v->u, 8);
        break;
    case GGUF_VT_FLOAT32: {
        float x = (float)v->f;
        memcpy(raw, &x, 4);
        break;
    }
    case GGUF_VT_FLOAT64:
        memcpy(raw, &v->f, 8);
        break;
    default:
        return CORE_INVALID;
    }
    return core_buf_append(b, raw, gguf_vtype_size(t));
}

// ---- static helpers: output ----

static void out_flush(wout *o)
{
    const char *p = o->buf;
    while (o->rc == CORE_OK && o->len) {
        ssize_t n = write(o->fd, p, o->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            o->rc = core_err_set(o->err, CORE_IO, "%s: write: %s", o->path, strerror(errno));
            break;
        }
        p += n;
        o->len -= (size_t)n;
    }
    o->len = 0;
}

static void out_put(wout *o, const void *data, size_t len)
{
    const char *p = data;
    o->written += len;
    while (o->rc == CORE_OK && len) {
        size_t room = GGUF_WRITE_BUF - o->len;
        size_t n = len < room ? len : room;
        memcpy(o->buf + o->len, p, n);
        o->len += n;
        p += n;
        len -= n;
        if (o->len == GGUF_WRITE_BUF) out_flush(o);
    }
}

static void out_pad(wout *o, size_t align)
{
    static const char zeros[64];
    while (o->written % align) {
        size_t n = align - (size_t)(o->written % align);
        out_put(o, zeros, n < sizeof zeros ? n : sizeof zeros);
    }
}

static void out_str(wout *o, const char *s)
{
    uint64_t n = strlen(s);
    out_put(o, &n, 8);
    out_put(o, s, (size_t)n);
}

/* general.alignment if it was set, else the default; CORE_INVALID if it is not a UINT32
 * power of two. */
static int writer_alignment(const gguf_writer *w, size_t *out, core_err *err)
{
    *out = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        uint32_t t, v;
        memcpy(&t, w->kvs[i].val.data, 4);
        if (t != GGUF_VT_UINT32) {
            return core_err_set(err, CORE_INVALID, "general.alignment must be a UINT32");
        }
        memcpy(&v, w->kvs[i].val.data + 4, 4);
        if (v == 0 || (v & (v - 1)) != 0) {
            return core_err_set(err, CORE_INVALID,
                                "general.alignment %" PRIu32 " is not a "
                                "power of two",
                                v);
        }
        *out = v;
    }
    return CORE_OK;
}

static void out_body(wout *o, const gguf_writer *w, size_t align)
{
    out_put(o, "GGUF", 4);
    uint32_t version = 3;
    uint64_t n_t = w->n_t, n_kv = w->n_kv;
    out_put(o, &version, 4);
    out_put(o, &n_t, 8);
    out_put(o, &n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        out_str(o, w->kvs[i].key);
        out_put(o, w->kvs[i].val.data, w->kvs[i].val.len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        out_str(o, t->name);
        uint32_t nd = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        out_put(o, &nd, 4);
        out_put(o, t->ne, 8 * (size_t)t->n_dims);
        out_put(o, &type, 4);
        out_put(o, &t->offset, 8);
    }
    out_pad(o, align);
}

static void out_tensors(wout *o, const gguf_writer *w, size_t align)
{
    void *scratch = NULL;
    size_t scratch_cap = 0;
    for (size_t i = 0; i < w->n_t && o->rc == CORE_OK; i++) {
        const wtensor *t = &w->ts[i];
        const void *data = t->data;
        if (t->fill) {
            if (t->size > scratch_cap) {
                free(scratch);
                scratch = malloc(t->size);
                scratch_cap = scratch ? t->size : 0;
                if (!scratch) {
                    o->rc = core_err_set(o->err, CORE_NOMEM,
                                         "tensor %s: out of memory (%zu "
                                         "bytes)",
                                         t->name, t->size);
                    break;
                }
            }
            int rc = t->fill(t->ctx, scratch, t->size, o->err);
            if (rc) {
                o->rc = rc;
                break;
            }
            data = scratch;
        }
        out_put(o, data, t->size);
        out_pad(o, align);
    }
    free(scratch);
}

static int add_tensor(gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                      wtensor **out, core_err *err)
{
    if (!name || !*name) return core_err_set(err, CORE_INVALID, "tensor with an empty name");
    for (size_t i = 0; i < w->n_t; i++) {
        if (strcmp(w->ts[i].name, name) == 0) {
            return core_err_set(err, CORE_INVALID, "duplicate tensor %s", name);
        }
    }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        return core_err_set(err, CORE_INVALID, "tensor %s: %d dimensions (must be 1 to %d)", name,
                            n_dims, GGUF_MAX_DIMS);
    }
    const core_type_info *ti = core_type_get(type);
    if (!ti) return core_err_set(err, CORE_INVALID, "tensor %s: unknown type %d", name, type);
    wtensor t = {.type = type, .n_dims = n_dims};
    size_t rows = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1) {
            return core_err_set(err, CORE_INVALID, "tensor %s: dimension %d is %" PRId64, name, d,
                                t.ne[d]);
        }
        if (d > 0 && !core_mul_size(rows, (size_t)t.ne[d], &rows)) {
            return core_err_set(err, CORE_INVALID, "tensor %s: too many elements", name);
        }
    }
    size_t row;
    if (!core_type_row_size(type, t.ne[0], &row)) {
        return core_err_set(err, CORE_INVALID,
                            "tensor %s: row length %" PRId64 " is not a "
                            "multiple of the %s block size %" PRId64,
                            name, t.ne[0], ti->name, ti->blck_size);
    }
    if (!core_mul_size(row, rows, &t.size)) {
        return core_err_set(err, CORE_INVALID, "tensor %s: byte size overflows", name);
    }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *ts = realloc(w->ts, cap * sizeof *ts);
        if (!ts) return core_err_set(err, CORE_NOMEM, "out of memory");
        w->ts = ts;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) return core_err_set(err, CORE_NOMEM, "out of memory");
    w->ts[w->n_t] = t;
    *out = &w->ts[w->n_t++];
    return CORE_OK;
}

static void fsync_dir_of(const char *path)
{
    char *dup = strdup(path);
    if (!dup) return;
    int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dup);
}

// ---- public ----

int gguf_writer_new(gguf_writer **out, core_err *err)
{
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return core_err_set(err, CORE_NOMEM, "out of memory");
    *out = w;
    return CORE_OK;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        core_buf_deinit(&w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->ts[i].name);
    free(w->kvs);
    free(w->ts);
    free(w);
}

int gguf_writer_set_val(gguf_writer *w, const char *key, int vtype, const void *data)
{
    return set_fixed(w, key, vtype, data);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v)
{
    return set_fixed(w, key, GGUF_VT_UINT32, &v);
}

int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v)
{
    return set_fixed(w, key, GGUF_VT_INT32, &v);
}

int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v)
{
    return set_fixed(w, key, GGUF_VT_UINT64, &v);
}

int gguf_writer_set_f32(gguf_writer *w, const char *key, float v)
{
    return set_fixed(w, key, GGUF_VT_FLOAT32, &v);
}

int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return set_fixed(w, key, GGUF_VT_BOOL, &b);
}

int gguf_writer_set_str_n(gguf_writer *w, const char *key, const char *v, size_t len)
{
    core_buf *b = kv_slot(w, key);
    if (!b) return key && *key ? CORE_NOMEM : CORE_INVALID;
    if (put_u32(b, GGUF_VT_STRING) || put_str(b, v, len)) {
        kv_drop(w, b);
        return CORE_NOMEM;
    }
    return CORE_OK;
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v)
{
    return gguf_writer_set_str_n(w, key, v, strlen(v));
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, size_t n)
{
    core_buf *b = kv_slot(w, key);
    if (!b) return key && *key ? CORE_NOMEM : CORE_INVALID;
    int rc = put_u32(b, GGUF_VT_ARRAY) || put_u32(b, GGUF_VT_STRING) || put_u64(b, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = put_str(b, v[i], strlen(v[i]));
    if (rc) {
        kv_drop(w, b);
        return CORE_NOMEM;
    }
    return CORE_OK;
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, int vtype, const void *data, size_t n)
{
    size_t es = gguf_vtype_size(vtype), bytes;
    if (!es || !core_mul_size(es, n, &bytes)) return CORE_INVALID;
    core_buf *b = kv_slot(w, key);
    if (!b) return key && *key ? CORE_NOMEM : CORE_INVALID;
    if (put_u32(b, GGUF_VT_ARRAY) || put_u32(b, (uint32_t)vtype) || put_u64(b, n) ||
        core_buf_append(b, data, bytes)) {
        kv_drop(w, b);
        return CORE_NOMEM;
    }
    return CORE_OK;
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const char *prefix, core_err *err)
{
    size_t plen = strlen(prefix);
    for (int64_t i = 0; i < gguf_kv_count(src); i++) {
        const char *key = gguf_kv_key(src, i);
        if (strncmp(key, prefix, plen) != 0) continue;
        int t = gguf_kv_type(src, i);
        gguf_scalar v;
        const gguf_array *a;
        gguf_kv_value(src, i, &v, &a);
        core_buf *b = kv_slot(w, key);
        if (!b) return core_err_set(err, CORE_NOMEM, "key %s: out of memory", key);
        int rc = put_u32(b, (uint32_t)t);
        if (!rc) {
            rc = t == GGUF_VT_ARRAY    ? put_array(b, a)
                 : t == GGUF_VT_STRING ? put_str(b, v.s.ptr, v.s.len)
                                       : put_scalar(b, t, &v);
        }
        if (rc) {
            kv_drop(w, b);
            return core_err_set(err, CORE_NOMEM, "key %s: out of memory", key);
        }
    }
    return CORE_OK;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, int type, int n_dims,
                           const int64_t *ne, const void *data, size_t size, core_err *err)
{
    wtensor *t;
    int rc = add_tensor(w, name, type, n_dims, ne, &t, err);
    if (rc) return rc;
    if (size != t->size || !data) {
        rc = core_err_set(err, CORE_INVALID,
                          "tensor %s: %zu bytes given, its type and shape "
                          "need %zu",
                          name, data ? size : 0, t->size);
        free(t->name);
        w->n_t--;
        return rc;
    }
    t->data = data;
    return CORE_OK;
}

int gguf_writer_add_tensor_fn(gguf_writer *w, const char *name, int type, int n_dims,
                              const int64_t *ne, gguf_tensor_fill_fn fill, void *ctx, core_err *err)
{
    if (!fill) return core_err_set(err, CORE_INVALID, "tensor %s: no fill function", name);
    wtensor *t;
    int rc = add_tensor(w, name, type, n_dims, ne, &t, err);
    if (rc) return rc;
    t->fill = fill;
    t->ctx = ctx;
    return CORE_OK;
}

int gguf_writer_write(gguf_writer *w, const char *path, core_err *err)
{
    size_t align;
    int rc = writer_alignment(w, &align, err);
    if (rc) return rc;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->ts[i].offset = off;
        uint64_t padded = ((uint64_t)w->ts[i].size + align - 1) / align * align;
        if (__builtin_add_overflow(off, padded, &off)) {
            return core_err_set(err, CORE_INVALID, "tensor data too large");
        }
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    char *buf = malloc(GGUF_WRITE_BUF);
    if (!tmp || !buf) {
        free(tmp);
        free(buf);
        return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = core_err_set(err, CORE_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        free(buf);
        return rc;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    wout o = {.fd = fd, .buf = buf, .err = err, .path = path};
    out_body(&o, w, align);
    out_tensors(&o, w, align);
    out_flush(&o);
    if (o.rc == CORE_OK && fsync(fd) != 0) {
        o.rc = core_err_set(err, CORE_IO, "%s: fsync: %s", path, strerror(errno));
    }
    if (close(fd) != 0 && o.rc == CORE_OK) {
        o.rc = core_err_set(err, CORE_IO, "%s: close: %s", path, strerror(errno));
    }
    if (o.rc == CORE_OK && rename(tmp, path) != 0) {
        o.rc = core_err_set(err, CORE_IO, "%s: rename: %s", path, strerror(errno));
    }
    if (o.rc != CORE_OK) {
        unlink(tmp);
    } else {
        fsync_dir_of(path);
    }
    free(tmp);
    free(buf);
    return o.rc;
}
