/* reader.c — the GGUF reader: maps a file read-only and validates all of it before use.
 *
 * Layout (ref: ggml docs/gguf.md), all little-endian:
 *   magic "GGUF", u32 version (2 or 3), u64 n_tensors, u64 n_kv,
 *   n_kv × { string key, u32 vtype, value },
 *   n_tensors × { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
 *   padding to `general.alignment` (default 32), then the tensor data section.
 * A string is a u64 length and that many bytes; an array is u32 element type, u64 count,
 * then the elements.
 *
 * Every read goes through a cursor that checks the bytes are there; every count is checked
 * against what the remaining bytes could hold before anything is allocated, so memory use is
 * bounded by a small multiple of the file size and parsing time is linear in it. Numeric
 * arrays are not copied: they point into the mapping. Keys and tensor names are copied
 * NUL-terminated and indexed by a hash table.
 *
 * Threads: see gguf.h (immutable after open). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

/* Nested arrays deeper than this are rejected (real files nest at most once). */
#define GGUF_MAX_DEPTH 8
/* Smallest encodings, to bound counts by the bytes left: a kv is a key length (8), a type
 * (4) and at least one byte of value; a tensor entry is a name length (8), n_dims (4), one
 * dimension (8), a type (4) and an offset (8). */
#define GGUF_MIN_KV_BYTES 13
#define GGUF_MIN_TENSOR_BYTES 32

typedef struct gguf_cur {
    const uint8_t *p;
    size_t size;
    size_t pos;
} gguf_cur;

// ---- static helpers ----

static size_t cur_left(const gguf_cur *c)
{
    return c->size - c->pos;
}

static bool cur_u32(gguf_cur *c, uint32_t *v)
{
    if (cur_left(c) < 4) return false;
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return true;
}

static bool cur_u64(gguf_cur *c, uint64_t *v)
{
    if (cur_left(c) < 8) return false;
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return true;
}

/* Reads a string header and checks its bytes are there; *s points into the mapping. */
static bool cur_str(gguf_cur *c, gguf_str *s)
{
    uint64_t len;
    if (!cur_u64(c, &len)) return false;
    if (len > cur_left(c)) {
        c->pos -= 8;
        return false;
    }
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return true;
}

static int index_init(gguf_index *ix, int64_t n)
{
    size_t cap = 16;
    while (cap < (size_t)n * 2)
        cap *= 2; /* n is bounded by the file size: no overflow */
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    return ix->slots ? CORE_OK : CORE_NOMEM;
}

/* Inserts position i for name; the caller checked it is absent. */
static void index_put(gguf_index *ix, const char *name, int64_t i)
{
    size_t h = gguf_name_hash(name, strlen(name)) & ix->mask;
    while (ix->slots[h] != 0)
        h = (h + 1) & ix->mask;
    ix->slots[h] = i + 1;
}

static void array_free(gguf_array *a)
{
    if (!a) return;
    if (a->arrs) {
        for (uint64_t i = 0; i < a->n; i++)
            array_free((gguf_array *)&a->arrs[i]);
        free((void *)a->arrs);
    }
    free((void *)a->strs);
}

/* Copies a name out of the mapping, NUL-terminated; NULL when it holds a NUL byte or memory
 * is short (*nul tells which). */
static char *name_dup(gguf_str s, bool *nul)
{
    *nul = memchr(s.ptr, 0, (size_t)s.len) != NULL;
    if (*nul) return NULL;
    char *d = malloc((size_t)s.len + 1);
    if (!d) return NULL;
    memcpy(d, s.ptr, (size_t)s.len);
    d[s.len] = '\0';
    return d;
}

/* Parses the body of an array (element type and count already read at c). `what` names the
 * key for messages. */
static int parse_array(gguf_cur *c, gguf_array *a, int depth, const char *what, core_err *err)
{
    size_t at = c->pos;
    uint32_t et;
    uint64_t n;
    if (!cur_u32(c, &et) || !cur_u64(c, &n)) {
        return core_err_set(err, CORE_FORMAT,
                            "key %s: array header at byte offset %zu runs "
                            "past the end of the file",
                            what, at);
    }
    if (et > GGUF_VT_FLOAT64) {
        return core_err_set(err, CORE_FORMAT,
                            "key %s: unknown array element type %" PRIu32 " at byte offset %zu",
                            what, et, at);
    }
    a->type = (int)et;
    a->n = 0;
    size_t es = gguf_vtype_size((int)et);
    size_t min = es ? es : (et == GGUF_VT_STRING ? 8 : 12);
    if (n > cur_left(c) / min) {
        return core_err_set(err, CORE_FORMAT,
                            "key %s: array of %" PRIu64 " %s elements at "
                            "byte offset %zu does not fit in the %zu bytes left",
                            what, n, gguf_vtype_name((int)et), at, cur_left(c));
    }
    if (es) {
        a->data = c->p + c->pos;
        a->n = n;
        c->pos += (size_t)n * es;
        return CORE_OK;
    }
    if (et == GGUF_VT_STRING) {
        gguf_str *s = calloc(n ? n : 1, sizeof *s);
        if (!s) return core_err_set(err, CORE_NOMEM, "key %s: out of memory", what);
        a->strs = s;
        for (uint64_t i = 0; i < n; i++) {
            if (!cur_str(c, &s[i])) {
                return core_err_set(err, CORE_FORMAT,
                                    "key %s: string %" PRIu64 " of the array "
                                    "at byte offset %zu runs past the end of the file",
                                    what, i, c->pos);
            }
        }
        a->n = n;
        return CORE_OK;
    }
    if (depth + 1 >= GGUF_MAX_DEPTH) {
        return core_err_set(err, CORE_FORMAT,
                            "key %s: arrays nested more than %d deep at "
                            "byte offset %zu",
                            what, GGUF_MAX_DEPTH, at);
    }
    gguf_array *sub = calloc(n ? n : 1, sizeof *sub);
    if (!sub) return core_err_set(err, CORE_NOMEM, "key %s: out of memory", what);
    a->arrs = sub;
    for (uint64_t i = 0; i < n; i++) {
        a->n = i + 1; /* so that array_free frees what was parsed */
        int rc = parse_array(c, &sub[i], depth + 1, what, err);
        if (rc) return rc;
    }
    a->n = n;
    return CORE_OK;
}

static int parse_kv(gguf_file *f, gguf_cur *c, int64_t i, core_err *err)
{
    gguf_kv *kv = &f->kvs[i];
    size_t at = c->pos;
    gguf_str k;
    if (!cur_str(c, &k)) {
        return core_err_set(err, CORE_FORMAT,
                            "key %" PRId64 " at byte offset %zu runs past "
                            "the end of the file",
                            i, at);
    }
    if (k.len == 0) {
        return core_err_set(err, CORE_FORMAT, "key %" PRId64 " at byte offset %zu is empty", i, at);
    }
    bool nul;
    kv->key = name_dup(k, &nul);
    if (nul) {
        return core_err_set(err, CORE_FORMAT,
                            "key %" PRId64 " at byte offset %zu contains a "
                            "NUL byte",
                            i, at);
    }
    if (!kv->key) return core_err_set(err, CORE_NOMEM, "out of memory reading keys");
    if (gguf_index_find(&f->kv_index, kv->key, (size_t)k.len, gguf_kv_name_at, f) >= 0) {
        return core_err_set(err, CORE_FORMAT, "duplicate key %s at byte offset %zu", kv->key, at);
    }
    index_put(&f->kv_index, kv->key, i);
    uint32_t t;
    size_t tat = c->pos;
    if (!cur_u32(c, &t)) {
        return core_err_set(err, CORE_FORMAT,
                            "key %s: value type at byte offset %zu runs "
                            "past the end of the file",
                            kv->key, tat);
    }
    if (t > GGUF_VT_FLOAT64) {
        return core_err_set(err, CORE_FORMAT,
                            "key %s: unknown value type %" PRIu32 " at byte "
                            "offset %zu",
                            kv->key, t, tat);
    }
    kv->type = (int)t;
    if (t == GGUF_VT_ARRAY) {
        kv->arr = calloc(1, sizeof *kv->arr);
        if (!kv->arr) return core_err_set(err, CORE_NOMEM, "out of memory reading keys");
        return parse_array(c, kv->arr, 0, kv->key, err);
    }
    if (t == GGUF_VT_STRING) {
        if (!cur_str(c, &kv->val.s)) {
            return core_err_set(err, CORE_FORMAT,
                                "key %s: string value at byte offset %zu "
                                "runs past the end of the file",
                                kv->key, c->pos);
        }
        return CORE_OK;
    }
    size_t es = gguf_vtype_size((int)t);
    if (cur_left(c) < es) {
        return core_err_set(err, CORE_FORMAT,
                            "key %s: %s value at byte offset %zu runs past "
                            "the end of the file",
                            kv->key, gguf_vtype_name((int)t), c->pos);
    }
    gguf_scalar_read(c->p + c->pos, (int)t, &kv->val);
    c->pos += es;
    return CORE_OK;
}

static int parse_tensor_info(gguf_file *f, gguf_cur *c, int64_t i, core_err *err)
{
    gguf_tensor *t = &f->tensors[i];
    size_t at = c->pos;
    gguf_str s;
    if (!cur_str(c, &s)) {
        return core_err_set(err, CORE_FORMAT,
                            "tensor %" PRId64 " at byte offset %zu: name runs "
                            "past the end of the file",
                            i, at);
    }
    if (s.len == 0) {
        return core_err_set(err, CORE_FORMAT,
                            "tensor %" PRId64 " at byte offset %zu: empty "
                            "name",
                            i, at);
    }
    bool nul;
    char *name = name_dup(s, &nul);
    if (nul) {
        return core_err_set(err, CORE_FORMAT,
                            "tensor %" PRId64 " at byte offset %zu: name "
                            "contains a NUL byte",
                            i, at);
    }
    if (!name) return core_err_set(err, CORE_NOMEM, "out of memory reading tensors");
    t->name = name;
    if (gguf_index_find(&f->tensor_index, name, (size_t)s.len, gguf_tensor_name_at, f) >= 0) {
        return core_err_set(err, CORE_FORMAT, "duplicate tensor %s at byte offset %zu", name, at);
    }
    index_put(&f->tensor_index, name, i);
    uint32_t nd;
    if (!cur_u32(c, &nd)) goto trunc;
    if (nd < 1 || nd > GGUF_MAX_DIMS) {
        return core_err_set(err, CORE_FORMAT,
                            "tensor %s: %" PRIu32 " dimensions (must be 1 to "
                            "%d)",
                            name, nd, GGUF_MAX_DIMS);
    }
    t->n_dims = (int)nd;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if (!cur_u64(c, &ne)) goto trunc;
        if (ne == 0 || ne > (uint64_t)INT64_MAX) {
            return core_err_set(err, CORE_FORMAT,
                                "tensor %s: dimension %" PRIu32 " is %" PRId64
                                " (must be at least 1)",
                                name, d, (int64_t)ne);
        }
        t->ne[d] = (int64_t)ne;
    }
    uint32_t type;
    uint64_t off;
    if (!cur_u32(c, &type) || !cur_u64(c, &off)) goto trunc;
    t->offset = off;
    const core_type_info *ti = core_type_get((int)type);
    if (type > INT32_MAX || !ti) {
        return core_err_set(err, CORE_FORMAT, "tensor %s: unknown type %" PRIu32, name, type);
    }
    t->type = (int)type;
    int64_t n_el = t->ne[0];
    for (int d = 1; d < GGUF_MAX_DIMS; d++) {
        if (!core_mul_i64(n_el, t->ne[d], &n_el)) {
            return core_err_set(err, CORE_FORMAT, "tensor %s: element count overflows", name);
        }
    }
    size_t row, size = 0;
    if (t->ne[0] % ti->blck_size != 0) {
        return core_err_set(err, CORE_FORMAT,
                            "tensor %s: row length %" PRId64 " is not a "
                            "multiple of the %s block size %" PRId64,
                            name, t->ne[0], ti->name, ti->blck_size);
    }
    if (!core_type_row_size(t->type, t->ne[0], &row) ||
        !core_mul_size(row, (size_t)(n_el / t->ne[0]), &size)) {
        return core_err_set(err, CORE_FORMAT, "tensor %s: byte size overflows", name);
    }
    t->size = size;
    return CORE_OK;
trunc:
    return core_err_set(err, CORE_FORMAT,
                        "tensor %s: entry at byte offset %zu runs past the "
                        "end of the file",
                        name, at);
}

static int read_alignment(gguf_file *f, core_err *err)
{
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = gguf_kv_find(f, "general.alignment");
    if (i < 0) return CORE_OK;
    const gguf_kv *kv = &f->kvs[i];
    int t = kv->type;
    bool is_int =
        gguf_vtype_size(t) && t != GGUF_VT_BOOL && t != GGUF_VT_FLOAT32 && t != GGUF_VT_FLOAT64;
    if (!is_int) {
        return core_err_set(err, CORE_FORMAT,
                            "general.alignment has type %s (must be an "
                            "integer)",
                            gguf_vtype_name(t));
    }
    bool neg =
        (t == GGUF_VT_INT8 || t == GGUF_VT_INT16 || t == GGUF_VT_INT32 || t == GGUF_VT_INT64) &&
        kv->val.i < 0;
    uint64_t a = kv->val.u;
    if (neg || a == 0 || (a & (a - 1)) != 0 || a > ((uint64_t)1 << 30)) {
        return core_err_set(err, CORE_FORMAT,
                            "general.alignment %" PRId64 " is not a power of "
                            "two between 1 and 2^30",
                            neg ? kv->val.i : (int64_t)a);
    }
    f->alignment = (size_t)a;
    return CORE_OK;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Places every tensor in the data section: aligned, inside the file, not overlapping. */
static int place_tensors(gguf_file *f, core_err *err)
{
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment != 0) {
            return core_err_set(err, CORE_FORMAT,
                                "tensor %s: offset %" PRIu64 " is not a "
                                "multiple of the alignment %zu",
                                t->name, t->offset, f->alignment);
        }
        size_t avail = f->size - f->data_offset;
        if (t->offset > avail || t->size > avail - t->offset) {
            uint64_t end; /* relative to the end of the file, saturated */
            if (__builtin_add_overflow(t->offset, (uint64_t)t->size, &end)) end = UINT64_MAX;
            return core_err_set(err, CORE_FORMAT,
                                "tensor %s: data ends %" PRIu64 " bytes past "
                                "the end of the file",
                                t->name, end - avail);
        }
        t->data = f->base + f->data_offset + t->offset;
    }
    if (f->n_tensors < 2) return CORE_OK;
    const gguf_tensor **order = malloc((size_t)f->n_tensors * sizeof *order);
    if (!order) return core_err_set(err, CORE_NOMEM, "out of memory checking tensors");
    for (int64_t i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset);
    int rc = CORE_OK;
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor *p = order[i - 1], *t = order[i];
        if (p->offset + p->size > t->offset) {
            rc = core_err_set(err, CORE_FORMAT,
                              "tensor %s: data at offset %" PRIu64 " overlaps "
                              "tensor %s (offset %" PRIu64 ", %zu bytes)",
                              t->name, t->offset, p->name, p->offset, p->size);
            break;
        }
    }
    free(order);
    return rc;
}

static int parse_header(gguf_file *f, gguf_cur *c, uint64_t *n_tensors, uint64_t *n_kv,
                        core_err *err)
{
    if (c->size < 4 || memcmp(c->p, "GGUF", 4) != 0) {
        uint8_t m[4] = {0};
        memcpy(m, c->p, c->size < 4 ? c->size : 4);
        return core_err_set(err, CORE_FORMAT,
                            "not a GGUF file (magic %02x %02x %02x %02x, "
                            "expected \"GGUF\")",
                            m[0], m[1], m[2], m[3]);
    }
    c->pos = 4;
    uint32_t v;
    if (!cur_u32(c, &v)) {
        return core_err_set(err, CORE_FORMAT, "GGUF header truncated (file is %zu bytes)", c->size);
    }
    if (v == 1) {
        return core_err_set(err, CORE_FORMAT,
                            "GGUF version 1 is not supported (only versions "
                            "2 and 3); convert the file with a current llama.cpp");
    }
    if (v != 2 && v != 3) {
        bool swapped = (v & 0xffff) == 0 && v != 0;
        return core_err_set(err, CORE_FORMAT,
                            "GGUF version %" PRIu32 " is not supported (only "
                            "versions 2 and 3)%s",
                            v, swapped ? "; a big-endian file?" : "");
    }
    f->version = v;
    if (!cur_u64(c, n_tensors) || !cur_u64(c, n_kv)) {
        return core_err_set(err, CORE_FORMAT, "GGUF header truncated (file is %zu bytes)", c->size);
    }
    if (*n_kv > cur_left(c) / GGUF_MIN_KV_BYTES) {
        return core_err_set(err, CORE_FORMAT,
                            "metadata count %" PRIu64 " is impossible: the "
                            "file has %zu bytes left after the header",
                            *n_kv, cur_left(c));
    }
    if (*n_tensors > cur_left(c) / GGUF_MIN_TENSOR_BYTES) {
        return core_err_set(err, CORE_FORMAT,
                            "tensor count %" PRIu64 " is impossible: the "
                            "file has %zu bytes left after the header",
                            *n_tensors, cur_left(c));
    }
    return CORE_OK;
}

static int parse(gguf_file *f, core_err *err)
{
    gguf_cur c = {f->base, f->size, 0};
    uint64_t n_tensors = 0, n_kv = 0;
    int rc = parse_header(f, &c, &n_tensors, &n_kv, err);
    if (rc) return rc;
    f->kvs = calloc(n_kv ? n_kv : 1, sizeof *f->kvs);
    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    if (!f->kvs || !f->tensors || index_init(&f->kv_index, (int64_t)n_kv) ||
        index_init(&f->tensor_index, (int64_t)n_tensors)) {
        return core_err_set(err, CORE_NOMEM, "out of memory reading the GGUF header");
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        f->n_kv = (int64_t)i + 1; /* so that close frees what was parsed */
        if ((rc = parse_kv(f, &c, (int64_t)i, err))) return rc;
    }
    f->n_kv = (int64_t)n_kv;
    if ((rc = read_alignment(f, err))) return rc;
    for (uint64_t i = 0; i < n_tensors; i++) {
        f->n_tensors = (int64_t)i + 1;
        if ((rc = parse_tensor_info(f, &c, (int64_t)i, err))) return rc;
    }
    f->n_tensors = (int64_t)n_tensors;
    size_t pad = (f->alignment - c.pos % f->alignment) % f->alignment;
    size_t data;
    if (!core_add_size(c.pos, pad, &data) || data > f->size) {
        if (n_tensors > 0) {
            return core_err_set(err, CORE_FORMAT,
                                "tensor data section (at byte offset %zu) "
                                "starts past the end of the file (%zu bytes)",
                                c.pos + pad, f->size);
        }
        data = f->size;
    }
    f->data_offset = data;
    return place_tensors(f, err);
}

static int open_common(gguf_file **out, gguf_file *f, core_err *err)
{
    int rc = parse(f, err);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return CORE_OK;
}

// ---- public: open and close ----

int gguf_open_mem(gguf_file **out, const void *data, size_t size, core_err *err)
{
    if (!data && size) return core_err_set(err, CORE_INVALID, "gguf_open_mem: NULL data");
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return core_err_set(err, CORE_NOMEM, "out of memory");
    static const uint8_t empty[1];
    f->base = data ? data : empty;
    f->size = size;
    return open_common(out, f, err);
}

int gguf_open(gguf_file **out, const char *path, core_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return core_err_set(err, errno == ENOENT ? CORE_NOTFOUND : CORE_IO, "%s: %s", path,
                            strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = core_err_set(err, CORE_IO, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return core_err_set(err, CORE_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return core_err_set(err, CORE_FORMAT, "%s: not a GGUF file (%lld bytes)", path,
                            (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        return core_err_set(err, e == ENOMEM ? CORE_NOMEM : CORE_IO, "%s: mmap: %s", path,
                            strerror(e));
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        munmap(map, size);
        return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    f->base = map;
    f->size = size;
    f->map = map;
    return open_common(out, f, err);
}

void gguf_close(gguf_file *f)
{
    if (!f) return;
    for (int64_t i = 0; f->kvs && i < f->n_kv; i++) {
        free(f->kvs[i].key);
        array_free(f->kvs[i].arr);
        free(f->kvs[i].arr);
    }
    free(f->kvs);
    for (int64_t i = 0; f->tensors && i < f->n_tensors; i++)
        free((void *)f->tensors[i].name);
    free(f->tensors);
    free(f->kv_index.slots);
    free(f->tensor_index.slots);
    if (f->map) munmap(f->map, f->size);
    free(f);
}
