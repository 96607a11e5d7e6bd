/* jsonutil.c — typed access to request fields, keep_alive, timestamps.
 *
 * Wrong types are client errors (400) worded like Go's decoder, which Ollama's clients
 * show as they are: "json: cannot unmarshal number into Go struct field
 * GenerateRequest.prompt of type string". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

const char *srv_json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    default: return "null";
    }
}

static int type_err(core_err *err, const json_t *v, const char *where, const char *key,
                    const char *want)
{
    return core_err_set(err, CORE_INVALID,
                        "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                        srv_json_type_name(v), where, key, want);
}

int srv_json_str(json_t *obj, const char *where, const char *key, const char **out,
                 core_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return CORE_OK;
    if (!json_is_string(v)) return type_err(err, v, where, key, "string");
    *out = json_string_value(v);
    return CORE_OK;
}

int srv_json_bool(json_t *obj, const char *where, const char *key, bool *out, core_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return CORE_OK;
    if (!json_is_boolean(v)) return type_err(err, v, where, key, "bool");
    *out = json_is_true(v);
    return CORE_OK;
}

int srv_json_int(json_t *obj, const char *where, const char *key, int64_t *out,
                 core_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return CORE_OK;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return CORE_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9e18) {
            *out = (int64_t)d;
            return CORE_OK;
        }
    }
    return type_err(err, v, where, key, "int");
}

int srv_json_num(json_t *obj, const char *where, const char *key, double *out, core_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return CORE_OK;
    if (!json_is_number(v)) return type_err(err, v, where, key, "float64");
    *out = json_number_value(v);
    return CORE_OK;
}

int srv_json_keep_alive(json_t *obj, bool *set, int64_t *ns, core_err *err)
{
    *set = false;
    json_t *v = json_object_get(obj, "keep_alive");
    if (!v || json_is_null(v)) return CORE_OK;
    if (json_is_number(v)) {
        double x = json_number_value(v);
        if (x < 0) *ns = SRV_FOREVER;
        else if (x * 1e9 >= 9.2e18) *ns = SRV_FOREVER;
        else *ns = (int64_t)(x * 1e9);
        *set = true;
        return CORE_OK;
    }
    if (json_is_string(v)) {
        core_err e;
        if (srv_duration_parse(json_string_value(v), false, ns, &e))
            return core_err_set(err, CORE_INVALID,
                                "%s (keep_alive: a number of seconds or a duration such as "
                                "\"5m\", \"1h30m\", \"-1\")",
                                e.msg);
        *set = true;
        return CORE_OK;
    }
    return core_err_set(err, CORE_INVALID, "invalid keep_alive: unsupported type '%s' "
                        "(expected a number of seconds or a duration string)",
                        srv_json_type_name(v));
}

void srv_now_utc(char *buf, size_t cap)
{
    core_time_format(core_wall_ns(), false, buf, cap);
}

void srv_json_line(core_buf *out, json_t *o, bool sse)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return;
    if (sse) core_buf_append_str(out, "data: ");
    core_buf_append_str(out, s);
    core_buf_append_str(out, sse ? "\n\n" : "\n");
    free(s);
}

/* The length of the well-formed UTF-8 character at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 when there is none. */
static size_t utf8_char_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void srv_utf8_fix(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_char_len(p);
        if (n) p += n;
        else *p++ = '?';
    }
}
