/* access.c — the read side of an open gguf_file: header fields, metadata lookup by key
 * (hash index), typed getters with range checks, array element conversion, tensors; plus
 * the value-type helpers the reader and writer share.
 *
 * Threads: everything here only reads an immutable gguf_file. */
#include <inttypes.h>
#include <string.h>

#include "gguf/internal.h"

// ---- shared helpers (internal.h) ----

const char *gguf_vtype_name(int t)
{
    static const char *const names[] = {"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                        "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                        "UINT64", "INT64",   "FLOAT64"};
    if (t >= 0 && t <= GGUF_VT_FLOAT64) return names[t];
    return "unknown";
}

/* Byte size of a fixed-size element type, 0 for STRING/ARRAY/unknown. */
size_t gguf_vtype_size(int t)
{
    switch (t) {
    case GGUF_VT_UINT8:
    case GGUF_VT_INT8:
    case GGUF_VT_BOOL:
        return 1;
    case GGUF_VT_UINT16:
    case GGUF_VT_INT16:
        return 2;
    case GGUF_VT_UINT32:
    case GGUF_VT_INT32:
    case GGUF_VT_FLOAT32:
        return 4;
    case GGUF_VT_UINT64:
    case GGUF_VT_INT64:
    case GGUF_VT_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

void gguf_scalar_read(const uint8_t *p, int t, gguf_scalar *v)
{
    memset(v, 0, sizeof *v);
    switch (t) {
    case GGUF_VT_UINT8:
        v->u = p[0];
        v->i = p[0];
        break;
    case GGUF_VT_INT8:
        v->i = (int8_t)p[0];
        v->u = (uint64_t)v->i;
        break;
    case GGUF_VT_BOOL:
        v->b = p[0] != 0;
        v->u = v->b;
        v->i = v->b;
        break;
    case GGUF_VT_UINT16: {
        uint16_t x;
        memcpy(&x, p, 2);
        v->u = x;
        v->i = x;
        break;
    }
    case GGUF_VT_INT16: {
        int16_t x;
        memcpy(&x, p, 2);
        v->i = x;
        v->u = (uint64_t)x;
        break;
    }
    case GGUF_VT_UINT32: {
        uint32_t x;
        memcpy(&x, p, 4);
        v->u = x;
        v->i = x;
        break;
    }
    case GGUF_VT_INT32: {
        int32_t x;
        memcpy(&x, p, 4);
        v->i = x;
        v->u = (uint64_t)x;
        break;
    }
    case GGUF_VT_UINT64: {
        memcpy(&v->u, p, 8);
        v->i = (int64_t)v->u;
        break;
    }
    case GGUF_VT_INT64: {
        memcpy(&v->i, p, 8);
        v->u = (uint64_t)v->i;
        break;
    }
    case GGUF_VT_FLOAT32: {
        float x;
        memcpy(&x, p, 4);
        v->f = x;
        break;
    }
    case GGUF_VT_FLOAT64:
        memcpy(&v->f, p, 8);
        break;
    default:
        break;
    }
    if (t == GGUF_VT_FLOAT32 || t == GGUF_VT_FLOAT64) return;
    if (t != GGUF_VT_STRING) v->f = (t == GGUF_VT_UINT64) ? (double)v->u : (double)v->i;
}

uint64_t gguf_name_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Position of name among names[] through the index, or -1. */
int64_t gguf_index_find(const gguf_index *ix, const char *name, size_t len,
                        const char *(*name_at)(const void *, int64_t), const void *ctx)
{
    if (!ix->slots) return -1;
    for (size_t h = gguf_name_hash(name, len) & ix->mask;; h = (h + 1) & ix->mask) {
        int64_t s = ix->slots[h];
        if (s == 0) return -1;
        const char *n = name_at(ctx, s - 1);
        if (strlen(n) == len && memcmp(n, name, len) == 0) return s - 1;
    }
}

const char *gguf_kv_name_at(const void *ctx, int64_t i)
{
    return ((const gguf_file *)ctx)->kvs[i].key;
}

const char *gguf_tensor_name_at(const void *ctx, int64_t i)
{
    return ((const gguf_file *)ctx)->tensors[i].name;
}

// ---- public: header ----

uint32_t gguf_version(const gguf_file *f)
{
    return f->version;
}
size_t gguf_file_size(const gguf_file *f)
{
    return f->size;
}
const void *gguf_base(const gguf_file *f)
{
    return f->base;
}
size_t gguf_data_offset(const gguf_file *f)
{
    return f->data_offset;
}
size_t gguf_alignment(const gguf_file *f)
{
    return f->alignment;
}

// ---- public: metadata ----

int64_t gguf_kv_count(const gguf_file *f)
{
    return f->n_kv;
}

int64_t gguf_kv_find(const gguf_file *f, const char *key)
{
    return gguf_index_find(&f->kv_index, key, strlen(key), gguf_kv_name_at, f);
}

const char *gguf_kv_key(const gguf_file *f, int64_t i)
{
    CORE_ASSERT(i >= 0 && i < f->n_kv);
    return f->kvs[i].key;
}

int gguf_kv_type(const gguf_file *f, int64_t i)
{
    CORE_ASSERT(i >= 0 && i < f->n_kv);
    return f->kvs[i].type;
}

void gguf_kv_value(const gguf_file *f, int64_t i, gguf_scalar *scalar, const gguf_array **arr)
{
    CORE_ASSERT(i >= 0 && i < f->n_kv);
    if (scalar) *scalar = f->kvs[i].val;
    if (arr) *arr = f->kvs[i].arr;
}

static bool vtype_is_int(int t)
{
    return t == GGUF_VT_UINT8 || t == GGUF_VT_INT8 || t == GGUF_VT_UINT16 || t == GGUF_VT_INT16 ||
           t == GGUF_VT_UINT32 || t == GGUF_VT_INT32 || t == GGUF_VT_UINT64 || t == GGUF_VT_INT64;
}

static bool vtype_is_signed(int t)
{
    return t == GGUF_VT_INT8 || t == GGUF_VT_INT16 || t == GGUF_VT_INT32 || t == GGUF_VT_INT64;
}

static int get_kv(const gguf_file *f, const char *key, const gguf_kv **out, core_err *err)
{
    int64_t i = gguf_kv_find(f, key);
    if (i < 0) return core_err_set(err, CORE_NOTFOUND, "key %s not found", key);
    *out = &f->kvs[i];
    return CORE_OK;
}

static int wrong_type(const gguf_kv *kv, const char *wanted, core_err *err)
{
    return core_err_set(err, CORE_FORMAT, "key %s has type %s, wanted %s", kv->key,
                        gguf_vtype_name(kv->type), wanted);
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, core_err *err)
{
    const gguf_kv *kv;
    int rc = get_kv(f, key, &kv, err);
    if (rc) return rc;
    if (!vtype_is_int(kv->type)) return wrong_type(kv, "an integer", err);
    if (!vtype_is_signed(kv->type) && kv->val.u > (uint64_t)INT64_MAX) {
        return core_err_set(err, CORE_FORMAT, "key %s: value %" PRIu64 " does not fit in int64",
                            key, kv->val.u);
    }
    *out = kv->val.i;
    return CORE_OK;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, core_err *err)
{
    const gguf_kv *kv;
    int rc = get_kv(f, key, &kv, err);
    if (rc) return rc;
    if (!vtype_is_int(kv->type)) return wrong_type(kv, "an integer", err);
    if (vtype_is_signed(kv->type) && kv->val.i < 0) {
        return core_err_set(err, CORE_FORMAT, "key %s: value %" PRId64 " is negative", key,
                            kv->val.i);
    }
    *out = kv->val.u;
    return CORE_OK;
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, core_err *err)
{
    uint64_t v;
    int rc = gguf_get_u64(f, key, &v, err);
    if (rc) return rc;
    if (v > UINT32_MAX) {
        return core_err_set(err, CORE_FORMAT, "key %s: value %" PRIu64 " does not fit in uint32",
                            key, v);
    }
    *out = (uint32_t)v;
    return CORE_OK;
}

int gguf_get_float(const gguf_file *f, const char *key, double *out, core_err *err)
{
    const gguf_kv *kv;
    int rc = get_kv(f, key, &kv, err);
    if (rc) return rc;
    if (!vtype_is_int(kv->type) && kv->type != GGUF_VT_FLOAT32 && kv->type != GGUF_VT_FLOAT64) {
        return wrong_type(kv, "a number", err);
    }
    *out = kv->val.f;
    return CORE_OK;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, core_err *err)
{
    const gguf_kv *kv;
    int rc = get_kv(f, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_VT_BOOL) return wrong_type(kv, "BOOL", err);
    *out = kv->val.b;
    return CORE_OK;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, core_err *err)
{
    const gguf_kv *kv;
    int rc = get_kv(f, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_VT_STRING) return wrong_type(kv, "STRING", err);
    *out = kv->val.s;
    return CORE_OK;
}

int gguf_get_array(const gguf_file *f, const char *key, const gguf_array **out, core_err *err)
{
    const gguf_kv *kv;
    int rc = get_kv(f, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_VT_ARRAY) return wrong_type(kv, "ARRAY", err);
    *out = kv->arr;
    return CORE_OK;
}

int64_t gguf_array_int(const gguf_array *a, uint64_t i)
{
    CORE_ASSERT(i < a->n && a->data);
    size_t es = gguf_vtype_size(a->type);
    gguf_scalar v;
    gguf_scalar_read((const uint8_t *)a->data + i * es, a->type, &v);
    if (a->type == GGUF_VT_FLOAT32 || a->type == GGUF_VT_FLOAT64) {
        if (!(v.f > -9.2e18 && v.f < 9.2e18)) return v.f > 0 ? INT64_MAX : INT64_MIN;
        return (int64_t)v.f;
    }
    return v.i;
}

double gguf_array_float(const gguf_array *a, uint64_t i)
{
    CORE_ASSERT(i < a->n && a->data);
    size_t es = gguf_vtype_size(a->type);
    gguf_scalar v;
    gguf_scalar_read((const uint8_t *)a->data + i * es, a->type, &v);
    return v.f;
}

bool gguf_str_eq(gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

// ---- public: tensors ----

int64_t gguf_tensor_count(const gguf_file *f)
{
    return f->n_tensors;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i)
{
    CORE_ASSERT(i >= 0 && i < f->n_tensors);
    return &f->tensors[i];
}

const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name)
{
    int64_t i = gguf_index_find(&f->tensor_index, name, strlen(name), gguf_tensor_name_at, f);
    return i < 0 ? NULL : &f->tensors[i];
}
