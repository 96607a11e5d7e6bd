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

static bool is_control(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f;
}

/* Escapes the control characters of line[from, len) in place (\n, \r, \t, \xNN), within
 * cap bytes, and returns the new length: a message quotes what clients send (a model name
 * may hold a newline), and one log line must stay one line — no forged entries. */
static size_t escape_controls(char *line, size_t from, size_t len, size_t cap)
{
    size_t i = from;
    while (i < len && !is_control(line[i])) i++;
    if (i == len) return len; /* the usual case: nothing to do */
    char tmp[2048];
    size_t o = 0;
    for (i = from; i < len && o + 4 < sizeof tmp; i++) {
        unsigned char c = (unsigned char)line[i];
        if (!is_control(line[i])) {
            tmp[o++] = (char)c;
            continue;
        }
        const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (e) o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%s", e);
        else o += (size_t)snprintf(tmp + o, sizeof tmp - o, "\\x%02x", c);
    }
    if (o > cap - from) o = cap - from;
    memcpy(line + from, tmp, o);
    return from + o;
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
    len = escape_controls(line, (size_t)n, len, sizeof line - 1);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
