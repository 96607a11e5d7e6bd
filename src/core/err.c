/* err.c — error codes, messages and the failure helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int core_err_set(core_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void core_err_clear(core_err *err)
{
    if (err) {
        err->code = CORE_OK;
        err->msg[0] = '\0';
    }
}

const char *core_code_str(int code)
{
    switch (code) {
#define CORE_CODE_STR(name, value, msg) \
    case value:                        \
        return msg;
        CORE_CODES(CORE_CODE_STR)
#undef CORE_CODE_STR
    }
    return "unknown error";
}

const char *core_code_name(int code)
{
    switch (code) {
#define CORE_CODE_NAME(name, value, msg) \
    case value:                         \
        return #name;
        CORE_CODES(CORE_CODE_NAME)
#undef CORE_CODE_NAME
    }
    return "UNKNOWN";
}

void core_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "dwell: assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}
