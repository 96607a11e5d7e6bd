/* log.c — one-line structured logging to stderr.
 *
 * Each line is formatted into a local buffer and written with one write(2), so lines from
 * different threads never interleave. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

static atomic_int g_level = CORE_LOG_INFO;

void core_log_set_level(int level)
{
    atomic_store(&g_level, level);
}

int core_log_get_level(void)
{
    return atomic_load(&g_level);
}

void core_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < atomic_load(&g_level)) return;
    if (level < CORE_LOG_DEBUG || level > CORE_LOG_ERROR) level = CORE_LOG_ERROR;

    char line[2048];
    char ts[48];
    core_time_format(core_wall_ns(), false, ts, sizeof ts);
    /* Milliseconds are enough in a log line: cut "…21:16:18.123456789Z" to "….123Z". */
    char *dot = strchr(ts, '.');
    if (dot && strlen(dot) > 4) strcpy(dot + 4, "Z");
    int n = snprintf(line, sizeof line, "time=%s level=%s msg=", ts, names[level]);
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
