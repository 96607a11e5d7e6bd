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
/* Sleeps for ns nanoseconds (restarting after signals); ns <= 0 returns at once. */
void core_sleep_ns(int64_t ns);
/* Formats a wall time as RFC 3339 with nanoseconds in UTC
 * ("2026-11-27T21:16:18.123456789Z"), or with the local offset when `local` is true, as
 * Go's time.Time marshals. buf needs at least 40 bytes. */
void core_time_format(int64_t wall_ns, bool local, char *buf, size_t cap);

// ---- files ----

/* Reads a whole file into a NUL-terminated heap buffer (caller frees); a file longer than
 * max bytes (or a device that never ends) is CORE_LIMIT, read no further than max + 1. */
int core_file_read(const char *path, size_t max, char **out, size_t *len, core_err *err);
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
/* Bytes of the mapping [addr, addr+len) that are resident in RAM now (mincore(2)): what a
 * model's weights or a context's buffers really occupy, as opposed to what was mapped. */
size_t core_mem_resident(const void *addr, size_t len);
/* Gives the heap's free memory back to the operating system (malloc_trim), one caller at a
 * time; a no-op in sanitizer builds, whose allocator is not glibc's. */
void core_heap_trim(void);

// ---- durations and memory sizes (duration.c) ----

/* A duration that never ends: every negative duration parses to this (a pinned model). */
#define CORE_DURATION_FOREVER INT64_MAX

/* What a number without a unit means (DESIGN.md §2). */
enum core_bare_unit {
    CORE_BARE_MINUTES = 0, /* typed by a person: env vars, CLI flags, Modelfile */
    CORE_BARE_SECONDS = 1, /* the JSON API: a JSON number or a numeric string */
};

/* Parses a Go-style duration: an optional sign, then one or more decimal numbers each with a
 * unit (ns, us, µs, ms, s, m, h, d), e.g. "10m", "1h30m", "1.5h", "-1", "500ms". A bare
 * number (no unit anywhere) is minutes or seconds as `bare` says; "0" is zero either way.
 * Surrounding whitespace is ignored. Negative values give CORE_DURATION_FOREVER.
 * Errors (CORE_INVALID) use Go's wording: `time: invalid duration "abc"`,
 * `time: unknown unit "w" in duration "1w"`, `time: missing unit in duration "1h30"`. */
int core_duration_parse(const char *s, int bare, int64_t *out_ns, core_err *err);
/* A JSON number of seconds (fractions allowed). Negative gives CORE_DURATION_FOREVER; NaN,
 * infinities and values past int64 nanoseconds are CORE_INVALID. */
int core_duration_from_seconds(double secs, int64_t *out_ns, core_err *err);
/* Formats like Go's time.Duration.String ("5m0s", "1h30m0s", "300ms", "1.5s", "0s"); a
 * negative or CORE_DURATION_FOREVER value gives "forever". buf needs 32 bytes. The result
 * always carries a unit, so it parses back to the same value under either bare rule. */
void core_duration_format(int64_t ns, char *buf, size_t cap);

/* Parses a memory size: a number (fractions allowed) with an optional unit, case-insensitive:
 * none or B = bytes; KB MB GB TB = decimal (10^3...); K M G T, KiB MiB GiB TiB = binary
 * (2^10..., like docker --memory); spaces between number and unit allowed. "250MB",
 * "8GiB", "8g", "1073741824". CORE_INVALID names the value on error (negative, overflow,
 * unknown unit). */
int core_size_parse(const char *s, size_t *out, core_err *err);
/* "1.5 GiB", "250.0 MiB", "512 B": binary units, one decimal. buf needs 32 bytes. */
void core_size_format(size_t bytes, char *buf, size_t cap);

// ---- memory budget (cgroup.c) ----

enum core_budget_source {
    CORE_BUDGET_UNLIMITED = 0, /* nothing known (RAM unreadable): no budget */
    CORE_BUDGET_RAM = 1,       /* physical RAM minus the reserve */
    CORE_BUDGET_CGROUP_V2 = 2, /* memory.max minus the reserve */
    CORE_BUDGET_CGROUP_V1 = 3, /* memory.limit_in_bytes minus the reserve */
    CORE_BUDGET_ENV = 4,       /* DWELL_MEMORY_BUDGET */
};
/* "unlimited", "RAM", "cgroup v2", "cgroup v1", "DWELL_MEMORY_BUDGET"; never NULL. */
const char *core_budget_source_name(int source);

typedef struct core_budget {
    size_t bytes;        /* the budget (0 only with CORE_BUDGET_UNLIMITED) */
    int source;          /* enum core_budget_source */
    size_t ram;          /* physical RAM */
    size_t cgroup_limit; /* the cgroup's limit, 0 if none ("max" or unlimited) */
    size_t reserve;      /* what was taken off */
    char cgroup_file[512]; /* the file the limit came from, "" if none */
} core_budget;

/* The memory limit of this process's cgroup under `root` (NULL = /sys/fs/cgroup): the
 * smallest limit found on the path from the process's own cgroup (read from
 * /proc/self/cgroup) up to the root, for v2 (`<root>/<path>/memory.max`) and then v1
 * (`<root>/memory/<path>/memory.limit_in_bytes`, or `<root>/<path>/memory.limit_in_bytes`).
 * A fake tree for tests only needs `<root>/memory.max` (v2) or
 * `<root>/memory/memory.limit_in_bytes` (v1). "max" and values of 2^62 or more mean no
 * limit. Returns 0 (no limit) or the bytes; *version gets 2, 1 or 0; file (may be NULL)
 * gets the path read. */
size_t core_cgroup_limit(const char *root, int *version, char *file, size_t file_cap);

/* Computes the budget: `override` (DWELL_MEMORY_BUDGET) if has_override; otherwise
 * min(cgroup limit, RAM) minus `reserve` (DWELL_MEMORY_RESERVE, usually 1 GiB), where a
 * reserve of half the limit or more is cut to half (so a small container still gets a
 * budget). Never fails. */
void core_budget_compute(const char *cgroup_root, size_t reserve, bool has_override,
                         size_t override, core_budget *out);
/* The same from the environment: DWELL_CGROUP_ROOT, DWELL_MEMORY_RESERVE (default 1 GiB),
 * DWELL_MEMORY_BUDGET. CORE_INVALID names the variable when a size does not parse. */
int core_budget_from_env(core_budget *out, core_err *err);

#endif
