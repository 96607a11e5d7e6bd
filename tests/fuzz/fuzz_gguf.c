/* fuzz_gguf.c — libFuzzer target for the GGUF reader: opens the input as a GGUF file and,
 * when it opens, walks every metadata value (nested arrays included) and every tensor, so
 * that anything the reader accepts is also safe to use. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf/gguf.h"

static volatile uint64_t g_sink;

static void walk_array(const gguf_array *a)
{
    for (uint64_t i = 0; i < a->n; i++) {
        switch (a->type) {
        case GGUF_VT_STRING:
            if (a->strs[i].len) g_sink += (uint8_t)a->strs[i].ptr[a->strs[i].len - 1];
            break;
        case GGUF_VT_ARRAY:
            walk_array(&a->arrs[i]);
            break;
        default:
            g_sink += (uint64_t)gguf_array_int(a, i) + (uint64_t)(gguf_array_float(a, i) != 0);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f;
    core_err err;
    if (gguf_open_mem(&f, data, size, &err) != CORE_OK) {
        g_sink += strlen(err.msg);
        return 0;
    }
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        const char *key = gguf_kv_key(f, i);
        if (gguf_kv_find(f, key) != i) __builtin_trap();
        gguf_scalar v;
        const gguf_array *a = NULL;
        gguf_kv_value(f, i, &v, &a);
        if (gguf_kv_type(f, i) == GGUF_VT_ARRAY) {
            walk_array(a);
        } else if (gguf_kv_type(f, i) == GGUF_VT_STRING) {
            if (v.s.len) g_sink += (uint8_t)v.s.ptr[v.s.len - 1];
        }
        uint64_t u;
        double d;
        g_sink +=
            (uint64_t)gguf_get_u64(f, key, &u, &err) + (uint64_t)gguf_get_float(f, key, &d, &err);
    }
    const uint8_t *end = (const uint8_t *)gguf_base(f) + gguf_file_size(f);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (gguf_tensor_find(f, t->name) != t) __builtin_trap();
        if ((const uint8_t *)t->data + t->size > end) __builtin_trap();
        if (t->size)
            g_sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
    }
    gguf_close(f);
    return 0;
}
