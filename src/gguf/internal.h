/* internal.h — shared between the gguf/ files only: the layout of an open gguf_file and
 * the value-type helpers used by the reader (reader.c), the accessors (access.c) and the
 * writer (writer.c). */
#ifndef DWELL_GGUF_INTERNAL_H
#define DWELL_GGUF_INTERNAL_H

#include "gguf/gguf.h"

typedef struct gguf_kv {
    char *key;
    int type;
    gguf_scalar val; /* scalars */
    gguf_array *arr; /* arrays (owned) */
} gguf_kv;

/* Open-addressing hash index of names to positions; slots hold index + 1 (0 = empty). */
typedef struct gguf_index {
    int64_t *slots;
    size_t mask;
} gguf_index;

struct gguf_file {
    const uint8_t *base;
    size_t size;
    void *map; /* the mapping when opened from a path, else NULL */
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    int64_t n_kv;
    gguf_kv *kvs;
    gguf_index kv_index;
    int64_t n_tensors;
    gguf_tensor *tensors;
    gguf_index tensor_index;
};

/* Byte size of a fixed-size value type; 0 for STRING, ARRAY and unknown types. */
size_t gguf_vtype_size(int vtype);
/* Decodes one little-endian value of fixed-size vtype at p: integers into .i and .u (both
 * filled, converted), floats into .f (integers too, as doubles), bool into .b. */
void gguf_scalar_read(const uint8_t *p, int vtype, gguf_scalar *v);
/* FNV-1a of len bytes of s. */
uint64_t gguf_name_hash(const char *s, size_t len);
/* Position of the name (len bytes) in an index whose entry i is named name_at(ctx, i), or
 * -1. */
int64_t gguf_index_find(const gguf_index *ix, const char *name, size_t len,
                        const char *(*name_at)(const void *, int64_t), const void *ctx);
/* name_at callbacks for the key and tensor indexes; ctx is the gguf_file. */
const char *gguf_kv_name_at(const void *ctx, int64_t i);
const char *gguf_tensor_name_at(const void *ctx, int64_t i);

#endif
