/* core.h — the pieces every subsystem uses: error codes and messages, logging, growable
 * buffers, time, checked arithmetic and memory probes.
 *
 * Nothing here owns threads; every function is safe to call from any thread unless its
 * comment says otherwise. */
#ifndef DWELL_CORE_H
#define DWELL_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DWELL_VERSION "0.1.0"
/* The Ollama version whose API dwell matches (what /api/version reports as "version"). */
#define DWELL_OLLAMA_VERSION "0.6.5"

// ---- errors ----

/* A failure: its code and a message that says what and where. Fallible functions take a
 * `core_err *err` as their last parameter; NULL is allowed and means "code only". */
typedef struct core_err {
    int code;
    char msg[256];
} core_err;

/* Fills err (if not NULL) with code and the printf-style message, and returns code, so a
 * failure is one line: `return core_err_set(err, CORE_FORMAT, "bad magic %08x", m);`. */
int core_err_set(core_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clears err to CORE_OK with an empty message. */
void core_err_clear(core_err *err);
/* The fixed message of a code ("out of memory"); never NULL. */
const char *core_code_str(int code);
/* The name of a code ("NOMEM"); never NULL. */
const char *core_code_name(int code);

/* Programmer errors only (never bad input): prints the condition and aborts. */
#define CORE_ASSERT(cond)                                                     \
    do {                                                                      \
        if (!(cond)) core_assert_fail(#cond, __FILE__, __LINE__);             \
    } while (0)
_Noreturn void core_assert_fail(const char *cond, const char *file, int line);

// ---- logging ----

enum core_log_level { CORE_LOG_DEBUG = 0, CORE_LOG_INFO, CORE_LOG_WARN, CORE_LOG_ERROR };

/* Writes one line to stderr: `time=2026-11-27T21:16:18.123Z level=INFO msg...`. Lines from
 * different threads never interleave. Lines below the current level are dropped. */
void core_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void core_log_set_level(int level);
int core_log_get_level(void);
#define CORE_DEBUG(...) core_log(CORE_LOG_DEBUG, __VA_ARGS__)
#define CORE_INFO(...) core_log(CORE_LOG_INFO, __VA_ARGS__)
#define CORE_WARN(...) core_log(CORE_LOG_WARN, __VA_ARGS__)
#define CORE_ERROR(...) core_log(CORE_LOG_ERROR, __VA_ARGS__)

// ---- growable byte buffer ----

/* A growable byte buffer, always NUL-terminated past `len` once anything was added.
 * Owner: whoever declared it; passed by pointer. core_buf_deinit frees it. */
typedef struct core_buf {
    char *data;
    size_t len;
    size_t cap;
} core_buf;

void core_buf_init(core_buf *b);
void core_buf_deinit(core_buf *b);
/* Ensures room for `extra` more bytes (plus the NUL). CORE_NOMEM on failure. */
int core_buf_reserve(core_buf *b, size_t extra);
int core_buf_append(core_buf *b, const void *data, size_t len);
int core_buf_append_str(core_buf *b, const char *s);
int core_buf_printf(core_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int core_buf_vprintf(core_buf *b, const char *fmt, va_list ap);
/* Empties the buffer, keeping its memory. */
void core_buf_reset(core_buf *b);
/* Hands the data to the caller (who frees it with free()) and leaves the buffer empty.
 * Never NULL unless out of memory: an empty buffer gives "". */
char *core_buf_steal(core_buf *b);

// ---- checked arithmetic ----

/* Each returns false (and leaves *out unspecified) when the result overflows. */
static inline bool core_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool core_add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline bool core_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

// ---- time ----

/* Monotonic clock in nanoseconds (for durations and timers). */
int64_t core_mono_ns(void);
/* Wall clock in nanoseconds since the Unix epoch. */
int64_t core_wall_ns(void);
/* Formats a wall time as RFC 3339 with nanoseconds in UTC
 * ("2026-11-27T21:16:18.123456789Z"), or with the local offset when `local` is true, as
 * Go's time.Time marshals. buf needs at least 40 bytes. */
void core_time_format(int64_t wall_ns, bool local, char *buf, size_t cap);

// ---- files ----

/* Reads a whole file into a NUL-terminated heap buffer (caller frees). */
int core_file_read(const char *path, char **out, size_t *len, core_err *err);
/* Writes data to path atomically: a temporary file beside it, fsync, rename, fsync of the
 * directory. A crash never leaves a half-written file at path. */
int core_file_write_atomic(const char *path, const void *data, size_t len, core_err *err);
/* mkdir -p with mode 0755. */
int core_mkdirs(const char *path, core_err *err);

// ---- tensor types ----

/* Tensor element types, numbered as GGUF files number them (ggml's enum ggml_type). */
enum core_type {
    CORE_TYPE_F32 = 0,
    CORE_TYPE_F16 = 1,
    CORE_TYPE_Q4_0 = 2,
    CORE_TYPE_Q4_1 = 3,
    CORE_TYPE_Q5_0 = 6,
    CORE_TYPE_Q5_1 = 7,
    CORE_TYPE_Q8_0 = 8,
    CORE_TYPE_Q8_1 = 9,
    CORE_TYPE_Q2_K = 10,
    CORE_TYPE_Q3_K = 11,
    CORE_TYPE_Q4_K = 12,
    CORE_TYPE_Q5_K = 13,
    CORE_TYPE_Q6_K = 14,
    CORE_TYPE_Q8_K = 15,
    CORE_TYPE_I8 = 24,
    CORE_TYPE_I16 = 25,
    CORE_TYPE_I32 = 26,
    CORE_TYPE_I64 = 27,
    CORE_TYPE_F64 = 28,
    CORE_TYPE_BF16 = 30,
};

/* Block geometry of a type: `blck_size` elements are stored in `type_size` bytes. */
typedef struct core_type_info {
    int type;
    const char *name; /* "Q4_K" */
    int64_t blck_size;
    size_t type_size;
} core_type_info;

/* The row of `type`, or NULL for a type id dwell does not know. */
const core_type_info *core_type_get(int type);
/* Looks a type up by name, case-insensitively ("q8_0"); NULL if unknown. */
const core_type_info *core_type_by_name(const char *name);
/* Bytes of a row of ne0 elements; false when the type is unknown, ne0 is not a multiple of
 * the block size, or the size overflows. */
bool core_type_row_size(int type, int64_t ne0, size_t *out);

// ---- memory probes ----

/* Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown. */
size_t core_rss_bytes(void);
/* Physical RAM in bytes, 0 if unknown. */
size_t core_ram_bytes(void);
/* MemAvailable from /proc/meminfo in bytes, 0 if unknown. */
size_t core_mem_available_bytes(void);

#endif
