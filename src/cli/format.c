/* format.c — how the CLI shows numbers, times and tables: Ollama's humanised sizes and times
 * (its format package), its borderless tables, the load spinner, and the rule that turns a
 * duration a person typed into one that carries its unit. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/internal.h"

// ---- sizes and durations ----

void cli_human_bytes(int64_t b, char *buf, size_t cap)
{
    static const struct {
        double size;
        const char *unit;
    } units[] = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if ((double)b < units[i].size) continue;
        double v = (double)b / units[i].size;
        if (v >= 10 || v == trunc(v))
            snprintf(buf, cap, "%d %s", (int)v, units[i].unit);
        else
            snprintf(buf, cap, "%.1f %s", v, units[i].unit);
        return;
    }
    snprintf(buf, cap, "%lld B", (long long)b);
}

void cli_human_duration(int64_t ns, char *buf, size_t cap)
{
    int64_t secs = ns / 1000000000;
    if (secs < 1) {
        snprintf(buf, cap, "Less than a second");
    } else if (secs == 1) {
        snprintf(buf, cap, "1 second");
    } else if (secs < 60) {
        snprintf(buf, cap, "%lld seconds", (long long)secs);
    } else if (secs / 60 == 1) {
        snprintf(buf, cap, "About a minute");
    } else if (secs / 60 < 60) {
        snprintf(buf, cap, "%lld minutes", (long long)(secs / 60));
    } else {
        long long h = llround((double)ns / 3.6e12);
        if (h == 1)
            snprintf(buf, cap, "About an hour");
        else if (h < 48)
            snprintf(buf, cap, "%lld hours", h);
        else if (h < 24 * 7 * 2)
            snprintf(buf, cap, "%lld days", h / 24);
        else if (h < 24 * 30 * 2)
            snprintf(buf, cap, "%lld weeks", h / 24 / 7);
        else if (h < 24 * 365 * 2)
            snprintf(buf, cap, "%lld months", h / 24 / 30);
        else
            snprintf(buf, cap, "%lld years", h / 24 / 365);
    }
}

void cli_human_time(int64_t t, int64_t now, const char *zero, char *buf, size_t cap)
{
    if (t == 0) {
        snprintf(buf, cap, "%s", zero);
        return;
    }
    char d[48];
    /* Go: int(delta.Hours())/24/365 < -20 means "Forever"; compare in seconds to avoid
     * overflowing a far-future time. */
    double delta_s = ((double)now - (double)t) / 1e9;
    if (delta_s / 3600.0 / 24.0 / 365.0 < -20) {
        snprintf(buf, cap, "Forever");
    } else if (t > now) {
        cli_human_duration(t - now, d, sizeof d);
        snprintf(buf, cap, "%s from now", d);
    } else {
        cli_human_duration(now - t, d, sizeof d);
        snprintf(buf, cap, "%s ago", d);
    }
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian), so no timegm/TZ is needed. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool cli_time_parse(const char *s, int64_t *out_ns)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return false;
    const char *p = s + n;
    double frac = 0, scale = 0.1;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) return false;
        off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z') {
        return false;
    }
    double secs = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600 + mi * 60 + sec - off;
    if (secs > 9.2e9) secs = 9.2e9; /* far future (a pinned model): clamp below int64 ns */
    *out_ns = (int64_t)(secs * 1e9) + (int64_t)(frac * 1e9);
    return true;
}

int cli_keepalive_arg(const char *typed, const char *what, char *out, size_t cap, core_err *err)
{
    int64_t ns;
    core_err e;
    if (core_duration_parse(typed, CORE_BARE_MINUTES, &ns, &e))
        return core_err_set(err, CORE_INVALID,
                            "invalid %s \"%s\": %s (a bare number is "
                            "minutes; units ns us ms s m h d)",
                            what, typed, e.msg);
    if (ns == CORE_DURATION_FOREVER)
        snprintf(out, cap, "-1m");
    else
        core_duration_format(ns, out, cap);
    return CORE_OK;
}

// ---- JSON ----

const char *cli_jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

int64_t cli_jint(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)json_number_value(v);
}

// ---- tables ----

size_t cli_utf8_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void cli_table_init(cli_table *t, int n_col)
{
    t->n_col = n_col;
    t->n_cells = 0;
    t->cells = NULL;
}

void cli_table_add(cli_table *t, const char *cell)
{
    char **c = realloc(t->cells, (t->n_cells + 1) * sizeof *c);
    char *dup = strdup(cell ? cell : "");
    if (!c || !dup) {
        free(dup);
        if (c) t->cells = c;
        return; /* out of memory: the cell is dropped, the table stays consistent */
    }
    t->cells = c;
    t->cells[t->n_cells++] = dup;
}

void cli_table_print(const cli_table *t, const char *indent, FILE *f)
{
    size_t w[16] = {0};
    int nc = t->n_col < 16 ? t->n_col : 16;
    for (size_t i = 0; i < t->n_cells; i++) {
        size_t cw = cli_utf8_width(t->cells[i]);
        if (cw > w[i % (size_t)t->n_col]) w[i % (size_t)t->n_col] = cw;
    }
    for (size_t i = 0; i < t->n_cells; i++) {
        int col = (int)(i % (size_t)t->n_col);
        if (col == 0) fputs(indent, f);
        if (col >= nc) continue;
        fputs(t->cells[i], f);
        size_t pad = w[col] - cli_utf8_width(t->cells[i]);
        if (col < t->n_col - 1) pad += 4;
        for (size_t k = 0; k < pad; k++)
            fputc(' ', f);
        if (col == t->n_col - 1) fputc('\n', f);
    }
}

void cli_table_deinit(cli_table *t)
{
    for (size_t i = 0; i < t->n_cells; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n_cells = 0;
}

// ---- spinner ----

/* Owned by the main thread; the helper thread reads g_spin_msg and the stop flag. */
static pthread_t g_spin_thread;
static pthread_mutex_t g_spin_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_spin_cv = PTHREAD_COND_INITIALIZER;
static bool g_spin_running, g_spin_stop;
static char g_spin_msg[128];

static void *spin_main(void *arg)
{
    (void)arg;
    static const char *frames[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
    pthread_mutex_lock(&g_spin_mu);
    for (unsigned i = 0; !g_spin_stop; i++) {
        fprintf(stderr, "\r%s%s%s\033[K", frames[i % 10], g_spin_msg[0] ? " " : "", g_spin_msg);
        fflush(stderr);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!g_spin_stop && pthread_cond_timedwait(&g_spin_cv, &g_spin_mu, &ts) == 0) {
        }
    }
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    pthread_mutex_unlock(&g_spin_mu);
    return NULL;
}

void cli_spinner_start(const char *msg)
{
    if (g_spin_running || !isatty(STDERR_FILENO)) return;
    snprintf(g_spin_msg, sizeof g_spin_msg, "%s", msg ? msg : "");
    g_spin_stop = false;
    if (pthread_create(&g_spin_thread, NULL, spin_main, NULL) == 0) g_spin_running = true;
}

void cli_spinner_stop(void)
{
    if (!g_spin_running) return;
    pthread_mutex_lock(&g_spin_mu);
    g_spin_stop = true;
    pthread_cond_signal(&g_spin_cv);
    pthread_mutex_unlock(&g_spin_mu);
    pthread_join(g_spin_thread, NULL);
    g_spin_running = false;
}
