/* test_duration.c — the shared duration and memory-size parsers (core/duration.c):
 * both bare-number rules, every unit, compounds, negatives, Go's error messages. */
#include "core/core.h"
#include "test.h"

#define S 1000000000LL
#define MIN (60 * S)

typedef struct dur_case {
    const char *in;
    int bare;
    int64_t want;
} dur_case;

static const dur_case ok_cases[] = {
    {"0", CORE_BARE_MINUTES, 0},
    {"0", CORE_BARE_SECONDS, 0},
    {"+0", CORE_BARE_SECONDS, 0},
    {"-0", CORE_BARE_SECONDS, 0},
    {"2", CORE_BARE_MINUTES, 2 * MIN},      /* OLLAMA_KEEP_ALIVE=2: two minutes */
    {"300", CORE_BARE_SECONDS, 300 * S},    /* JSON "300": seconds (departure 1) */
    {"300", CORE_BARE_MINUTES, 300 * MIN},  /* person: 5 hours */
    {"2.5", CORE_BARE_SECONDS, 2500000000LL},
    {"1.5", CORE_BARE_MINUTES, 90 * S},
    {" 10m ", CORE_BARE_SECONDS, 10 * MIN},
    {"10m", CORE_BARE_MINUTES, 10 * MIN},
    {"1h30m", CORE_BARE_SECONDS, 90 * MIN},
    {"1.5h", CORE_BARE_SECONDS, 90 * MIN},
    {"500ms", CORE_BARE_SECONDS, 500000000LL},
    {"300ms", CORE_BARE_MINUTES, 300000000LL},
    {"42ns", CORE_BARE_SECONDS, 42},
    {"7us", CORE_BARE_SECONDS, 7000},
    {"7\xc2\xb5s", CORE_BARE_SECONDS, 7000},
    {"7\xce\xbcs", CORE_BARE_SECONDS, 7000},
    {"30s", CORE_BARE_MINUTES, 30 * S},
    {"1d", CORE_BARE_SECONDS, 86400 * S},
    {"1d12h", CORE_BARE_SECONDS, 36 * 3600 * S},
    {".5s", CORE_BARE_SECONDS, 500000000LL},
    {"1.s", CORE_BARE_SECONDS, S},
    {"2h45m30.5s", CORE_BARE_SECONDS, (2 * 3600 + 45 * 60 + 30) * S + 500000000LL},
    {"-1", CORE_BARE_MINUTES, CORE_DURATION_FOREVER},
    {"-1", CORE_BARE_SECONDS, CORE_DURATION_FOREVER},
    {"-1m", CORE_BARE_SECONDS, CORE_DURATION_FOREVER},
    {"-5h", CORE_BARE_MINUTES, CORE_DURATION_FOREVER},
    {"-3.14", CORE_BARE_SECONDS, CORE_DURATION_FOREVER},
};

TEST(duration_parses_units_compounds_and_bare_numbers)
{
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        int64_t v = -12345;
        core_err e;
        int rc = core_duration_parse(ok_cases[i].in, ok_cases[i].bare, &v, &e);
        CHECK_MSG(rc == CORE_OK, "\"%s\": %s", ok_cases[i].in, e.msg);
        CHECK_MSG(v == ok_cases[i].want, "\"%s\" (bare %s): %lld != %lld", ok_cases[i].in,
                  ok_cases[i].bare ? "seconds" : "minutes", (long long)v,
                  (long long)ok_cases[i].want);
    }
}

typedef struct dur_bad {
    const char *in;
    const char *msg;
} dur_bad;

static const dur_bad bad_cases[] = {
    {"abc", "time: invalid duration \"abc\""},
    {"", "time: invalid duration \"\""},
    {"-", "time: invalid duration \"-\""},
    {"1w", "time: unknown unit \"w\" in duration \"1w\""},
    {"5y", "time: unknown unit \"y\" in duration \"5y\""},
    {"1h30", "time: missing unit in duration \"1h30\""},
    {"m", "time: invalid duration \"m\""},
    {".m", "time: invalid duration \".m\""},
    {"1..5s", "time: missing unit in duration \"1..5s\""},
    {"1-2", "time: unknown unit \"-\" in duration \"1-2\""},
    {"9999999999999h", "time: invalid duration \"9999999999999h\""},
    {"300000000000000000000s", "time: invalid duration \"300000000000000000000s\""},
    {"10 m", "time: unknown unit \" m\" in duration \"10 m\""},
};

TEST(duration_rejects_with_go_messages)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        int64_t v = 777;
        core_err e;
        core_err_clear(&e);
        int rc = core_duration_parse(bad_cases[i].in, CORE_BARE_SECONDS, &v, &e);
        CHECK_MSG(rc == CORE_INVALID, "\"%s\" accepted as %lld", bad_cases[i].in,
                  (long long)v);
        CHECK_EQ_STR(e.msg, bad_cases[i].msg);
        CHECK_EQ_INT(v, 777); /* output untouched on error */
    }
}

TEST(duration_null_is_invalid)
{
    int64_t v;
    core_err e;
    CHECK_EQ_INT(core_duration_parse(NULL, CORE_BARE_SECONDS, &v, &e), CORE_INVALID);
}

TEST(duration_from_json_seconds)
{
    int64_t v;
    core_err e;
    CHECK_EQ_INT(core_duration_from_seconds(42, &v, &e), CORE_OK);
    CHECK_EQ_INT(v, 42 * S);
    CHECK_EQ_INT(core_duration_from_seconds(42.5, &v, &e), CORE_OK);
    CHECK_EQ_INT(v, 42500000000LL);
    CHECK_EQ_INT(core_duration_from_seconds(0.0, &v, &e), CORE_OK);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(core_duration_from_seconds(-1, &v, &e), CORE_OK);
    CHECK_EQ_INT(v, CORE_DURATION_FOREVER);
    CHECK_EQ_INT(core_duration_from_seconds(-3.14, &v, &e), CORE_OK);
    CHECK_EQ_INT(v, CORE_DURATION_FOREVER);
    CHECK_EQ_INT(core_duration_from_seconds(1e300, &v, &e), CORE_INVALID);
    CHECK_EQ_INT(core_duration_from_seconds(NAN, &v, &e), CORE_INVALID);
    CHECK_EQ_INT(core_duration_from_seconds(INFINITY, &v, &e), CORE_INVALID);
}

typedef struct fmt_case {
    int64_t ns;
    const char *want;
} fmt_case;

TEST(duration_formats_like_go)
{
    static const fmt_case cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {1500, "1.5\xc2\xb5s"},
        {300000000LL, "300ms"},
        {1500000000LL, "1.5s"},
        {5 * MIN, "5m0s"},
        {2 * MIN, "2m0s"},
        {90 * MIN, "1h30m0s"},
        {300 * MIN, "5h0m0s"},
        {86400 * S, "24h0m0s"},
        {61 * S + 250000000LL, "1m1.25s"},
        {CORE_DURATION_FOREVER, "forever"},
        {-1, "forever"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        core_duration_format(cases[i].ns, buf, sizeof buf);
        CHECK_EQ_STR(buf, cases[i].want);
    }
}

TEST(duration_format_round_trips_under_both_rules)
{
    static const int64_t vals[] = {0, 7, 1500, 300000000LL, 2 * MIN, 90 * MIN + 3 * S,
                                   300 * MIN, 123456789012LL};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char buf[32];
        core_duration_format(vals[i], buf, sizeof buf);
        for (int bare = 0; bare < 2; bare++) {
            int64_t v = -5;
            CHECK_EQ_INT(core_duration_parse(buf, bare, &v, NULL), CORE_OK);
            CHECK_MSG(v == vals[i], "%s -> %lld, want %lld", buf, (long long)v,
                      (long long)vals[i]);
        }
    }
}

typedef struct size_case {
    const char *in;
    size_t want;
} size_case;

TEST(size_parses_decimal_and_binary_units)
{
    static const size_case cases[] = {
        {"1073741824", 1073741824ULL},
        {"250MB", 250000000ULL},
        {"250mb", 250000000ULL},
        {"1KB", 1000},
        {"2GB", 2000000000ULL},
        {"1TB", 1000000000000ULL},
        {"8GiB", 8ULL << 30},
        {"8gib", 8ULL << 30},
        {"8g", 8ULL << 30},
        {"8G", 8ULL << 30},
        {"512M", 512ULL << 20},
        {"512MiB", 512ULL << 20},
        {"4k", 4096},
        {"1KiB", 1024},
        {"1.5GiB", 3ULL << 29},
        {"0.5 GB", 500000000ULL},
        {" 100 B ", 100},
        {"0", 0},
        {"2T", 2ULL << 40},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t v = 1;
        core_err e;
        int rc = core_size_parse(cases[i].in, &v, &e);
        CHECK_MSG(rc == CORE_OK, "\"%s\": %s", cases[i].in, e.msg);
        CHECK_MSG(v == cases[i].want, "\"%s\": %zu != %zu", cases[i].in, v, cases[i].want);
    }
}

TEST(size_rejects_bad_values_naming_them)
{
    static const char *bad[] = {"", "abc", "-1GB", "8XB", "1.2.3GB", "GB",
                                "99999999999999999999999", "20000000000TB", "8 GiBs"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t v = 42;
        core_err e;
        core_err_clear(&e);
        CHECK_MSG(core_size_parse(bad[i], &v, &e) == CORE_INVALID, "\"%s\" accepted", bad[i]);
        CHECK_CONTAINS(e.msg, "invalid memory size");
        if (bad[i][0]) CHECK_CONTAINS(e.msg, bad[i]);
        CHECK_EQ_INT(v, 42);
    }
}

TEST(size_formats_binary)
{
    char buf[32];
    core_size_format(512, buf, sizeof buf);
    CHECK_EQ_STR(buf, "512 B");
    core_size_format(3ULL << 29, buf, sizeof buf);
    CHECK_EQ_STR(buf, "1.5 GiB");
    core_size_format(250ULL << 20, buf, sizeof buf);
    CHECK_EQ_STR(buf, "250.0 MiB");
}

int main(void)
{
    RUN(duration_parses_units_compounds_and_bare_numbers);
    RUN(duration_rejects_with_go_messages);
    RUN(duration_null_is_invalid);
    RUN(duration_from_json_seconds);
    RUN(duration_formats_like_go);
    RUN(duration_format_round_trips_under_both_rules);
    RUN(size_parses_decimal_and_binary_units);
    RUN(size_rejects_bad_values_naming_them);
    RUN(size_formats_binary);
    return test_summary();
}
