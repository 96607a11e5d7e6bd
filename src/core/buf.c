/* buf.c — growable byte buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void core_buf_init(core_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void core_buf_deinit(core_buf *b)
{
    if (!b) return;
    free(b->data);
    core_buf_init(b);
}

int core_buf_reserve(core_buf *b, size_t extra)
{
    size_t need;
    if (!core_add_size(b->len, extra, &need) || !core_add_size(need, 1, &need)) {
        return CORE_NOMEM;
    }
    if (need <= b->cap) return CORE_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (!core_mul_size(cap, 2, &cap)) return CORE_NOMEM;
    }
    char *p = realloc(b->data, cap);
    if (!p) return CORE_NOMEM;
    b->data = p;
    b->cap = cap;
    return CORE_OK;
}

int core_buf_append(core_buf *b, const void *data, size_t len)
{
    int rc = core_buf_reserve(b, len);
    if (rc) return rc;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return CORE_OK;
}

int core_buf_append_str(core_buf *b, const char *s)
{
    return core_buf_append(b, s, strlen(s));
}

int core_buf_vprintf(core_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return CORE_INTERNAL;
    int rc = core_buf_reserve(b, (size_t)n);
    if (rc) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return CORE_OK;
}

int core_buf_printf(core_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = core_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void core_buf_reset(core_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

char *core_buf_steal(core_buf *b)
{
    char *p = b->data;
    if (!p) p = calloc(1, 1);
    core_buf_init(b);
    return p;
}
