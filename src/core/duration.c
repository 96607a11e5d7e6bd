/* duration.c — the one duration parser every input shares (env vars, CLI flags, Modelfile,
 * the JSON API) and the memory-size parser of DWELL_MEMORY_BUDGET / DWELL_MEMORY_RESERVE.
 *
 * Durations follow Go's time.ParseDuration (same grammar, same error wording, integer
 * arithmetic so "1.5h" is exact) with dwell's two extensions (DESIGN.md §2): the unit `d`
 * (24h), and a bare number with no unit, which means minutes when a person typed it and
 * seconds when it came through the JSON API. Every negative value means "forever".
 * Stateless; safe from any thread. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

// ---- constants ----

#define NS_PER_S 1000000000ULL

typedef struct dur_unit {
    const char *name;
    uint64_t ns;
} dur_unit;

static const dur_unit dur_units[] = {
    {"ns", 1ULL},
    {"us", 1000ULL},
    {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000ULL}, /* U+03BC greek mu */
    {"ms", 1000000ULL},
    {"s", NS_PER_S},
    {"m", 60ULL * NS_PER_S},
    {"h", 3600ULL * NS_PER_S},
    {"d", 86400ULL * NS_PER_S},
};

// ---- helpers ----

static int dur_invalid(core_err *err, const char *orig)
{
    return core_err_set(err, CORE_INVALID, "time: invalid duration \"%s\"", orig);
}

/* Leading decimal integer; false on overflow past 2^63. */
static bool dur_leading_int(const char **sp, uint64_t *v)
{
    const char *s = *sp;
    uint64_t x = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (x > (1ULL << 63) / 10) return false;
        x = x * 10 + (uint64_t)(*s - '0');
        if (x > (1ULL << 63)) return false;
    }
    *v = x;
    *sp = s;
    return true;
}

/* Fraction digits after '.': f / scale; digits past precision are dropped like Go does. */
static void dur_leading_fraction(const char **sp, uint64_t *f, double *scale)
{
    const char *s = *sp;
    uint64_t x = 0;
    double sc = 1;
    bool overflow = false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (overflow) continue;
        if (x > (UINT64_MAX >> 1) / 10) {
            overflow = true;
            continue;
        }
        x = x * 10 + (uint64_t)(*s - '0');
        sc *= 10;
    }
    *f = x;
    *scale = sc;
    *sp = s;
}

/* True when s (past its sign) is only digits and dots: a bare number ("300", "2.5"). */
static bool dur_is_bare(const char *s)
{
    for (; *s; s++)
        if (!(isdigit((unsigned char)*s) || *s == '.')) return false;
    return true;
}

/* Trims surrounding whitespace into buf; false if it does not fit. */
static bool dur_trim(const char *s, char *buf, size_t cap)
{
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    if (n >= cap) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    return true;
}

// ---- durations ----

int core_duration_parse(const char *in, int bare, int64_t *out_ns, core_err *err)
{
    if (!in) in = "";
    char orig[128];
    if (!dur_trim(in, orig, sizeof orig)) return dur_invalid(err, "(too long)");
    const char *s = orig;
    bool neg = false;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    if (!strcmp(s, "0")) {
        *out_ns = 0;
        return CORE_OK;
    }
    if (!*s) return dur_invalid(err, orig);

    /* dwell's extension: a bare number takes the caller's unit. */
    char withunit[136];
    if (dur_is_bare(s)) {
        snprintf(withunit, sizeof withunit, "%s%s", s, bare == CORE_BARE_SECONDS ? "s" : "m");
        s = withunit;
    }

    uint64_t d = 0;
    while (*s) {
        if (!(*s == '.' || (*s >= '0' && *s <= '9'))) return dur_invalid(err, orig);
        const char *start = s;
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!dur_leading_int(&s, &v)) return dur_invalid(err, orig);
        bool pre = s != start, post = false;
        if (*s == '.') {
            s++;
            const char *fs = s;
            dur_leading_fraction(&s, &f, &scale);
            post = s != fs;
        }
        if (!pre && !post) return dur_invalid(err, orig);
        size_t i = 0;
        while (s[i] && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9')) i++;
        if (i == 0)
            return core_err_set(err, CORE_INVALID, "time: missing unit in duration \"%s\"",
                                orig);
        const dur_unit *u = NULL;
        for (size_t k = 0; k < sizeof dur_units / sizeof dur_units[0]; k++)
            if (strlen(dur_units[k].name) == i && !strncmp(s, dur_units[k].name, i))
                u = &dur_units[k];
        if (!u)
            return core_err_set(err, CORE_INVALID,
                                "time: unknown unit \"%.*s\" in duration \"%s\"", (int)i, s,
                                orig);
        s += i;
        if (v > (1ULL << 63) / u->ns) return dur_invalid(err, orig);
        v *= u->ns;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)u->ns / scale));
            if (v > (1ULL << 63)) return dur_invalid(err, orig);
        }
        d += v;
        if (d > (1ULL << 63)) return dur_invalid(err, orig);
    }
    if (neg) {
        *out_ns = d == 0 ? 0 : CORE_DURATION_FOREVER;
        return CORE_OK;
    }
    if (d > (uint64_t)INT64_MAX) return dur_invalid(err, orig);
    *out_ns = (int64_t)d;
    return CORE_OK;
}

int core_duration_from_seconds(double secs, int64_t *out_ns, core_err *err)
{
    if (isnan(secs) || isinf(secs))
        return core_err_set(err, CORE_INVALID, "invalid duration: %g seconds", secs);
    if (secs < 0) {
        *out_ns = CORE_DURATION_FOREVER;
        return CORE_OK;
    }
    double ns = secs * 1e9;
    if (ns >= 9.2e18)
        return core_err_set(err, CORE_INVALID, "invalid duration: %g seconds is too long",
                            secs);
    *out_ns = (int64_t)llround(ns);
    return CORE_OK;
}

/* Appends "<whole>[.<frac>]" where frac has `digits` digits with trailing zeros removed. */
static size_t dur_fmt_frac(char *buf, size_t cap, uint64_t v, int digits)
{
    uint64_t p = 1;
    for (int i = 0; i < digits; i++) p *= 10;
    uint64_t whole = v / p, frac = v % p;
    if (!frac) return (size_t)snprintf(buf, cap, "%llu", (unsigned long long)whole);
    char fb[24];
    snprintf(fb, sizeof fb, "%0*llu", digits, (unsigned long long)frac);
    size_t n = strlen(fb);
    while (n > 0 && fb[n - 1] == '0') fb[--n] = 0;
    return (size_t)snprintf(buf, cap, "%llu.%s", (unsigned long long)whole, fb);
}

void core_duration_format(int64_t ns, char *buf, size_t cap)
{
    if (!cap) return;
    if (ns < 0 || ns == CORE_DURATION_FOREVER) {
        snprintf(buf, cap, "forever");
        return;
    }
    uint64_t u = (uint64_t)ns;
    if (u == 0) {
        snprintf(buf, cap, "0s");
        return;
    }
    if (u < 1000) {
        snprintf(buf, cap, "%lluns", (unsigned long long)u);
        return;
    }
    if (u < 1000000) {
        size_t n = dur_fmt_frac(buf, cap, u, 3);
        if (n < cap) snprintf(buf + n, cap - n, "\xc2\xb5s");
        return;
    }
    if (u < NS_PER_S) {
        size_t n = dur_fmt_frac(buf, cap, u, 6);
        if (n < cap) snprintf(buf + n, cap - n, "ms");
        return;
    }
    uint64_t secs = u / NS_PER_S, sub = u % NS_PER_S;
    uint64_t h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
    char sb[40];
    dur_fmt_frac(sb, sizeof sb, s * NS_PER_S + sub, 9);
    if (h) snprintf(buf, cap, "%lluh%llum%ss", (unsigned long long)h, (unsigned long long)m, sb);
    else if (m) snprintf(buf, cap, "%llum%ss", (unsigned long long)m, sb);
    else snprintf(buf, cap, "%ss", sb);
}

// ---- memory sizes ----

typedef struct size_unit {
    const char *name;
    double mul;
} size_unit;

static const size_unit size_units[] = {
    {"", 1},
    {"b", 1},
    {"kb", 1e3},
    {"mb", 1e6},
    {"gb", 1e9},
    {"tb", 1e12},
    {"k", 1024.0},
    {"m", 1048576.0},
    {"g", 1073741824.0},
    {"t", 1099511627776.0},
    {"kib", 1024.0},
    {"mib", 1048576.0},
    {"gib", 1073741824.0},
    {"tib", 1099511627776.0},
};

int core_size_parse(const char *in, size_t *out, core_err *err)
{
    char v[128];
    if (!in || !dur_trim(in, v, sizeof v) || !v[0])
        return core_err_set(err, CORE_INVALID, "invalid memory size \"%s\"", in ? in : "");
    const char *s = v;
    if (!(isdigit((unsigned char)*s) || *s == '.'))
        return core_err_set(err, CORE_INVALID,
                            "invalid memory size \"%s\": expected a number such as 8GiB, "
                            "250MB or 1073741824",
                            v);
    const char *numstart = s;
    while (isdigit((unsigned char)*s) || *s == '.') s++;
    size_t numlen = (size_t)(s - numstart);
    char num[64];
    if (numlen >= sizeof num) return core_err_set(err, CORE_INVALID, "invalid memory size "
                                                  "\"%s\": number too long", v);
    memcpy(num, numstart, numlen);
    num[numlen] = 0;
    while (*s == ' ') s++;
    char unit[8];
    size_t ul = strlen(s);
    if (ul >= sizeof unit)
        return core_err_set(err, CORE_INVALID, "invalid memory size \"%s\": unknown unit "
                            "\"%s\" (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, K, M, G, T)", v, s);
    for (size_t i = 0; i <= ul; i++) unit[i] = (char)tolower((unsigned char)s[i]);
    const size_unit *u = NULL;
    for (size_t k = 0; k < sizeof size_units / sizeof size_units[0]; k++)
        if (!strcmp(unit, size_units[k].name)) u = &size_units[k];
    if (!u)
        return core_err_set(err, CORE_INVALID, "invalid memory size \"%s\": unknown unit "
                            "\"%s\" (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, K, M, G, T)", v, s);
    if (!strchr(num, '.')) { /* exact integer path */
        char *end;
        unsigned long long x = strtoull(num, &end, 10);
        size_t mul = (size_t)u->mul, r;
        if (*end || x == ULLONG_MAX || !core_mul_size((size_t)x, mul, &r))
            return core_err_set(err, CORE_INVALID, "invalid memory size \"%s\": too large", v);
        *out = r;
        return CORE_OK;
    }
    char *end;
    double x = strtod(num, &end);
    if (*end || end == num || isnan(x))
        return core_err_set(err, CORE_INVALID, "invalid memory size \"%s\"", v);
    double b = x * u->mul;
    if (b >= 1.8e19) return core_err_set(err, CORE_INVALID, "invalid memory size \"%s\": too "
                                         "large", v);
    *out = (size_t)b;
    return CORE_OK;
}

void core_size_format(size_t bytes, char *buf, size_t cap)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%zu B", bytes);
        return;
    }
    double v = (double)bytes;
    size_t i = 0;
    while (v >= 1024.0 && i + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        i++;
    }
    snprintf(buf, cap, "%.1f %s", v, units[i]);
}
