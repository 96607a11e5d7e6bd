/* err.h — dwell's error codes, one X-macro list (name, message).
 *
 * 0 is success; every error is negative. core_code_str() gives the message. */
#ifndef DWELL_CORE_ERR_H
#define DWELL_CORE_ERR_H

#define CORE_CODES(X)                                   \
    X(OK, 0, "success")                                 \
    X(NOMEM, -1, "out of memory")                       \
    X(IO, -2, "input/output error")                     \
    X(FORMAT, -3, "malformed data")                     \
    X(UNSUPPORTED, -4, "not supported")                 \
    X(NOTFOUND, -5, "not found")                        \
    X(BUSY, -6, "busy")                                 \
    X(LIMIT, -7, "limit exceeded")                      \
    X(TIMEOUT, -8, "timed out")                         \
    X(CANCELLED, -9, "cancelled")                       \
    X(PROTOCOL, -10, "protocol error")                  \
    X(INTERNAL, -11, "internal error")                  \
    X(INVALID, -12, "invalid argument")                 \
    X(EXISTS, -13, "already exists")

enum core_code {
#define CORE_CODE_ENUM(name, value, msg) CORE_##name = (value),
    CORE_CODES(CORE_CODE_ENUM)
#undef CORE_CODE_ENUM
};

#endif
