/* gguf.h — reading and writing GGUF files (versions 2 and 3).
 *
 * The reader maps the file read-only and validates everything before use: every count,
 * string length, offset and size is checked against the file size with overflow-checked
 * arithmetic, so a malformed file gives a CORE_FORMAT error whose message says what is wrong
 * and where ("tensor blk.3.attn_q.weight: data ends 4096 bytes past the end of the file"),
 * never a crash or a hang. Tensors are views into the mapping.
 *
 * ref: the GGUF specification (ggml docs/gguf.md).
 *
 * Threads: a gguf_file is immutable after gguf_open returns and may be read from any number
 * of threads at once; gguf_close must not race with readers. A gguf_writer belongs to one
 * thread. */
#ifndef DWELL_GGUF_H
#define DWELL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Metadata value types, numbered as in the file. */
enum gguf_vtype {
    GGUF_VT_UINT8 = 0,
    GGUF_VT_INT8 = 1,
    GGUF_VT_UINT16 = 2,
    GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4,
    GGUF_VT_INT32 = 5,
    GGUF_VT_FLOAT32 = 6,
    GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8,
    GGUF_VT_ARRAY = 9,
    GGUF_VT_UINT64 = 10,
    GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

/* A string inside the mapping: NOT NUL-terminated, `len` bytes at `ptr`. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

/* An array value. For numeric and bool element types `data` points at `n` packed
 * little-endian elements inside the mapping (possibly unaligned: read them with the
 * gguf_array_* helpers). For STRING elements `strs` has the `n` strings; for ARRAY elements
 * `arrs` has the `n` nested arrays. Owned by the gguf_file. */
typedef struct gguf_array {
    int type; /* enum gguf_vtype of the elements */
    uint64_t n;
    const void *data;
    const gguf_str *strs;
    const struct gguf_array *arrs;
} gguf_array;

/* A tensor's entry. `data` points into the mapping; `size` is its byte size computed from
 * the type and shape; `offset` is relative to the start of the data section. */
typedef struct gguf_tensor {
    const char *name; /* NUL-terminated copy, owned by the gguf_file */
    int type;         /* enum core_type */
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* element counts, ne[0] innermost; unused dims are 1 */
    uint64_t offset;
    size_t size;
    const void *data;
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Opens and validates path, mapping it read-only (MAP_PRIVATE). *out is written only on
 * success; the caller owns it and releases it with gguf_close. */
int gguf_open(gguf_file **out, const char *path, core_err *err);
/* The same over a caller's buffer (borrowed: it must outlive the gguf_file). For fuzzing and
 * tests. */
int gguf_open_mem(gguf_file **out, const void *data, size_t size, core_err *err);
/* Unmaps and frees; NULL is allowed. */
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);
/* Start of the mapping and of the (aligned) tensor data section. */
const void *gguf_base(const gguf_file *f);
size_t gguf_data_offset(const gguf_file *f);
size_t gguf_alignment(const gguf_file *f);

// ---- metadata ----

int64_t gguf_kv_count(const gguf_file *f);
/* Index of key, or -1 if absent. */
int64_t gguf_kv_find(const gguf_file *f, const char *key);
/* Key i (NUL-terminated, owned by the file) and its value type. */
const char *gguf_kv_key(const gguf_file *f, int64_t i);
int gguf_kv_type(const gguf_file *f, int64_t i);

/* Typed getters by key. Each returns CORE_OK, CORE_NOTFOUND when the key is absent, or
 * CORE_FORMAT when it has a type that cannot be read as asked (the message names the key and
 * both types). Integer getters accept any integer type whose value fits; gguf_get_float
 * accepts FLOAT32, FLOAT64 and integers. */
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, core_err *err);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, core_err *err);
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, core_err *err);
int gguf_get_float(const gguf_file *f, const char *key, double *out, core_err *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, core_err *err);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, core_err *err);
int gguf_get_array(const gguf_file *f, const char *key, const gguf_array **out, core_err *err);
/* Value i whatever its type, for dumping: for scalars *scalar is filled (integers in .i/.u,
 * floats in .f, bool in .b, string in .s); for arrays *arr. */
typedef struct gguf_scalar {
    int64_t i;
    uint64_t u;
    double f;
    bool b;
    gguf_str s;
} gguf_scalar;
void gguf_kv_value(const gguf_file *f, int64_t i, gguf_scalar *scalar, const gguf_array **arr);

/* Element i of a numeric or bool array, converted. i must be < a->n. */
int64_t gguf_array_int(const gguf_array *a, uint64_t i);
double gguf_array_float(const gguf_array *a, uint64_t i);

/* The name of a value type ("UINT32", "STRING"), "unknown" for other numbers. */
const char *gguf_vtype_name(int vtype);

/* Convenience: true when s equals the NUL-terminated c. */
bool gguf_str_eq(gguf_str s, const char *c);

// ---- tensors ----

int64_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
/* The tensor named name, or NULL. */
const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name);

// ---- writer ----

/* Builds a GGUF v3 file in memory-light form: metadata is copied in; tensor data is
 * borrowed until gguf_writer_write returns. Keys are written in the order they were set;
 * setting a key again replaces its value. */
typedef struct gguf_writer gguf_writer;

int gguf_writer_new(gguf_writer **out, core_err *err);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* An array of n strings (each NUL-terminated), copied. */
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, size_t n);
/* An array of n numeric elements of vtype (packed native little-endian), copied. */
int gguf_writer_set_arr(gguf_writer *w, const char *key, int vtype, const void *data, size_t n);
/* Copies every metadata key of src whose name starts with prefix (e.g. "tokenizer."). */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const char *prefix, core_err *err);
/* Adds a tensor; data (size must equal the size of type and shape) is borrowed. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, int type, int n_dims,
                           const int64_t *ne, const void *data, size_t size, core_err *err);
/* Any fixed-size scalar (every vtype but STRING and ARRAY); data points at one native
 * little-endian value of vtype, copied. */
int gguf_writer_set_val(gguf_writer *w, const char *key, int vtype, const void *data);
/* A string of len bytes (may hold any bytes, NUL included), copied. */
int gguf_writer_set_str_n(gguf_writer *w, const char *key, const char *v, size_t len);
/* Fills dst (size bytes, the tensor's whole data) when gguf_writer_write reaches the tensor,
 * so that large files are written one tensor at a time. Returns CORE_OK or an error (filled
 * into err), which aborts the write. */
typedef int (*gguf_tensor_fill_fn)(void *ctx, void *dst, size_t size, core_err *err);
/* Adds a tensor whose data is produced by fill(ctx, ...) during gguf_writer_write; ctx is
 * borrowed until then. */
int gguf_writer_add_tensor_fn(gguf_writer *w, const char *name, int type, int n_dims,
                              const int64_t *ne, gguf_tensor_fill_fn fill, void *ctx,
                              core_err *err);
/* Writes the file atomically (temporary file, fsync, rename). The data section is aligned to
 * general.alignment when that key was set (a UINT32 power of two), else to 32 bytes. */
int gguf_writer_write(gguf_writer *w, const char *path, core_err *err);

#endif
