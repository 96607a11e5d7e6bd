/* time.c — clocks and RFC 3339 formatting. */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"

int64_t core_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t core_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void core_sleep_ns(int64_t ns)
{
    if (ns <= 0) return;
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000LL),
                          .tv_nsec = (long)(ns % 1000000000LL)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void core_time_format(int64_t wall_ns, bool local, char *buf, size_t cap)
{
    time_t secs = (time_t)(wall_ns / 1000000000LL);
    long nsec = (long)(wall_ns % 1000000000LL);
    if (nsec < 0) {
        nsec += 1000000000L;
        secs -= 1;
    }
    struct tm tm;
    if (local) {
        localtime_r(&secs, &tm);
    } else {
        gmtime_r(&secs, &tm);
    }
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    /* Go trims trailing zeros of the fraction (RFC3339Nano). */
    char frac[16] = "";
    if (nsec) {
        snprintf(frac, sizeof frac, ".%09ld", nsec);
        size_t n = 10;
        while (n > 1 && frac[n - 1] == '0') frac[--n] = '\0';
    }
    if (!local || tm.tm_gmtoff == 0) {
        snprintf(buf, cap, "%s%s%s", date, frac, local ? "Z" : "Z");
        return;
    }
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(buf, cap, "%s%s%c%02ld:%02ld", date, frac, sign, off / 60, off % 60);
}
