/* template_funcs.c — the functions a template may call: Go's text/template builtins (and, or,
 * not, eq, ne, lt, le, gt, ge, len, index, slice, print, printf, println, html, js, urlquery,
 * call) and Ollama's extras (json, currentDate, yesterdayDate, toTypeScriptType), plus value
 * printing as JSON.
 *
 * Deliberate leniencies (documented in docs/chat-formats.md): nil compares unequal to
 * anything but nil instead of failing; len of nil is 0; index and slice of nil are nil; ints
 * and floats compare by value. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/template_ast.h"

typedef int (*tfunc)(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out);

// ---- JSON and number printing ----

/* A float as Go prints it: fmt's %v (json false) uses the shortest digits that read back as
 * f, in exponent form when the exponent is < -4 or >= 6 ("1e+06"); encoding/json (json true)
 * switches to exponent form only below 1e-6 or from 1e21, and writes "1e-07" as "1e-7". */
static void fmt_float(double f, char *buf, size_t cap, bool json)
{
    if (isnan(f)) { snprintf(buf, cap, "NaN"); return; }
    if (isinf(f)) { snprintf(buf, cap, f > 0 ? "+Inf" : "-Inf"); return; }
    char e[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, f);
    const char *ep = strchr(e, 'e');
    int exp = ep ? atoi(ep + 1) : 0;
    bool use_e = f != 0 && (json ? (exp < -6 || exp >= 21) : (exp < -4 || exp >= 6));
    if (use_e) {
        if (json && ep && ep[2] == '0' && ep[3]) {
            size_t k = (size_t)(ep - e) + 2;
            memmove(e + k, e + k + 1, strlen(e + k));
        }
        snprintf(buf, cap, "%s", e);
        return;
    }
    int decimals = p - 1 - exp;
    snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, f);
}

static int json_str(const char *s, size_t n, core_buf *out)
{
    static const char hex[] = "0123456789abcdef";
    int rc = core_buf_append(out, "\"", 1);
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            rc = core_buf_append(out, esc, 2);
        } else if (c == '\n') {
            rc = core_buf_append(out, "\\n", 2);
        } else if (c == '\r') {
            rc = core_buf_append(out, "\\r", 2);
        } else if (c == '\t') {
            rc = core_buf_append(out, "\\t", 2);
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            /* encoding/json escapes <, > and & for HTML safety */
            snprintf(esc, sizeof esc, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            rc = core_buf_append(out, esc, 6);
        } else if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            rc = core_buf_append_str(out, (unsigned char)s[i + 2] == 0xA8 ? "\\u2028"
                                                                          : "\\u2029");
            i += 2;
        } else {
            rc = core_buf_append(out, &s[i], 1);
        }
    }
    return rc ? rc : core_buf_append(out, "\"", 1);
}

int eng_tval_json(const eng_tval *v, core_buf *out)
{
    char num[64];
    int rc = CORE_OK;
    switch (v->kind) {
    case ENG_TV_NIL: return core_buf_append_str(out, "null");
    case ENG_TV_BOOL: return core_buf_append_str(out, v->u.b ? "true" : "false");
    case ENG_TV_INT: return core_buf_printf(out, "%lld", (long long)v->u.i);
    case ENG_TV_FLOAT:
        if (!isfinite(v->u.f)) return core_buf_append_str(out, "null");
        fmt_float(v->u.f, num, sizeof num, true);
        return core_buf_append_str(out, num);
    case ENG_TV_STR: return json_str(v->u.s.p, v->u.s.n, out);
    case ENG_TV_LIST:
        rc = core_buf_append(out, "[", 1);
        for (size_t i = 0; i < v->u.list.n && !rc; i++) {
            if (i) rc = core_buf_append(out, ",", 1);
            if (!rc) rc = eng_tval_json(&v->u.list.items[i], out);
        }
        return rc ? rc : core_buf_append(out, "]", 1);
    case ENG_TV_MAP:
        rc = core_buf_append(out, "{", 1);
        for (size_t i = 0; i < v->u.map.n && !rc; i++) {
            const eng_tmap_entry *e = &v->u.map.entries[i];
            if (i) rc = core_buf_append(out, ",", 1);
            if (!rc) rc = json_str(e->key, strlen(e->key), out);
            if (!rc) rc = core_buf_append(out, ":", 1);
            if (!rc) rc = eng_tval_json(&e->val, out);
        }
        return rc ? rc : core_buf_append(out, "}", 1);
    default: return CORE_INTERNAL;
    }
}

int eng_tval_print(eng_texec *x, const eng_tval *v, core_buf *out)
{
    char num[64];
    (void)x;
    switch (v->kind) {
    case ENG_TV_NIL: return CORE_OK;
    case ENG_TV_STR: return core_buf_append(out, v->u.s.p, v->u.s.n);
    case ENG_TV_BOOL: return core_buf_append_str(out, v->u.b ? "true" : "false");
    case ENG_TV_INT: return core_buf_printf(out, "%lld", (long long)v->u.i);
    case ENG_TV_FLOAT:
        fmt_float(v->u.f, num, sizeof num, false);
        return core_buf_append_str(out, num);
    default: return eng_tval_json(v, out);
    }
}

/* fmt's %v of a value is what the template prints. */
static int print_v(eng_texec *x, const eng_tval *v, core_buf *b)
{
    return eng_tval_print(x, v, b);
}

/* Moves b's content into a string value in the render's arena. */
static int buf_result(eng_texec *x, int rc, core_buf *b, eng_tval *out)
{
    if (!rc) {
        if (b->len > ENG_TMPL_MAX_OUT) {
            rc = eng_texec_fail(x, CORE_LIMIT, "string larger than %zu bytes",
                                (size_t)ENG_TMPL_MAX_OUT);
        } else {
            rc = eng_tval_str_new(x, b->data ? b->data : "", b->len, out);
        }
    } else if (rc == CORE_NOMEM) {
        rc = eng_texec_fail(x, CORE_NOMEM, "out of memory");
    }
    core_buf_deinit(b);
    return rc;
}

// ---- comparison ----

static bool is_num(const eng_tval *v) { return v->kind == ENG_TV_INT || v->kind == ENG_TV_FLOAT; }
static double num_of(const eng_tval *v) { return v->kind == ENG_TV_INT ? (double)v->u.i : v->u.f; }

/* -1, 0, 1 for ordered kinds; sets *ok false for values that cannot be compared. */
static int compare(eng_texec *x, const eng_tval *a, const eng_tval *b, bool ordered, int *res)
{
    if (a->kind == ENG_TV_LIST || a->kind == ENG_TV_MAP || b->kind == ENG_TV_LIST ||
        b->kind == ENG_TV_MAP) {
        return eng_texec_fail(x, CORE_INVALID, "non-comparable type %s",
                              eng_tval_kind_name(a->kind == ENG_TV_LIST ||
                                                 a->kind == ENG_TV_MAP ? a->kind : b->kind));
    }
    if (!ordered && (a->kind == ENG_TV_NIL || b->kind == ENG_TV_NIL)) {
        *res = a->kind == b->kind ? 0 : 1;
        return CORE_OK;
    }
    if (is_num(a) && is_num(b)) {
        if (a->kind == ENG_TV_INT && b->kind == ENG_TV_INT) {
            *res = (a->u.i > b->u.i) - (a->u.i < b->u.i);
        } else {
            double p = num_of(a), q = num_of(b);
            *res = (p > q) - (p < q);
        }
        return CORE_OK;
    }
    if (a->kind == ENG_TV_STR && b->kind == ENG_TV_STR) {
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
        if (c == 0) c = (a->u.s.n > b->u.s.n) - (a->u.s.n < b->u.s.n);
        *res = (c > 0) - (c < 0);
        return CORE_OK;
    }
    if (!ordered && a->kind == ENG_TV_BOOL && b->kind == ENG_TV_BOOL) {
        *res = a->u.b != b->u.b;
        return CORE_OK;
    }
    return eng_texec_fail(x, CORE_INVALID, "incompatible types for comparison: %s and %s",
                          eng_tval_kind_name(a->kind), eng_tval_kind_name(b->kind));
}

static eng_tval bool_val(bool b)
{
    eng_tval v = {.kind = ENG_TV_BOOL};
    v.u.b = b;
    return v;
}

static int f_eq(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    for (size_t i = 1; i < n; i++) {
        int r, rc = compare(x, &a[0], &a[i], false, &r);
        if (rc) return rc;
        if (r == 0) {
            *out = bool_val(true);
            return CORE_OK;
        }
    }
    *out = bool_val(false);
    return CORE_OK;
}

static int f_ne(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    int rc = f_eq(x, a, n, out);
    out->u.b = !out->u.b;
    return rc;
}

static int ordered(eng_texec *x, const eng_tval *a, int *r)
{
    return compare(x, &a[0], &a[1], true, r);
}

static int f_lt(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    int r, rc = ordered(x, a, &r);
    (void)n;
    *out = bool_val(r < 0);
    return rc;
}

static int f_le(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    int r, rc = ordered(x, a, &r);
    (void)n;
    *out = bool_val(r <= 0);
    return rc;
}

static int f_gt(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    int r, rc = ordered(x, a, &r);
    (void)n;
    *out = bool_val(r > 0);
    return rc;
}

static int f_ge(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    int r, rc = ordered(x, a, &r);
    (void)n;
    *out = bool_val(r >= 0);
    return rc;
}

static int f_not(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    (void)x, (void)n;
    *out = bool_val(!eng_tval_truth(&a[0]));
    return CORE_OK;
}

// ---- collections ----

static int f_len(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    (void)n;
    out->kind = ENG_TV_INT;
    switch (a[0].kind) {
    case ENG_TV_NIL: out->u.i = 0; return CORE_OK;
    case ENG_TV_STR: out->u.i = (int64_t)a[0].u.s.n; return CORE_OK;
    case ENG_TV_LIST: out->u.i = (int64_t)a[0].u.list.n; return CORE_OK;
    case ENG_TV_MAP: out->u.i = (int64_t)a[0].u.map.n; return CORE_OK;
    default:
        return eng_texec_fail(x, CORE_INVALID, "error calling len: len of type %s",
                              eng_tval_kind_name(a[0].kind));
    }
}

static int int_arg(eng_texec *x, const char *fn, const eng_tval *v, int64_t *out)
{
    if (v->kind != ENG_TV_INT) {
        return eng_texec_fail(x, CORE_INVALID, "error calling %s: cannot index with type %s",
                              fn, eng_tval_kind_name(v->kind));
    }
    *out = v->u.i;
    return CORE_OK;
}

static int f_index(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    eng_tval v = a[0];
    for (size_t i = 1; i < n; i++) {
        if (v.kind == ENG_TV_NIL) break;
        if (v.kind == ENG_TV_MAP) {
            if (a[i].kind != ENG_TV_STR) {
                return eng_texec_fail(x, CORE_INVALID, "error calling index: map key must be "
                                      "a string, not %s", eng_tval_kind_name(a[i].kind));
            }
            const eng_tval *e = eng_tval_map_get(&v, a[i].u.s.p, a[i].u.s.n);
            v = e ? *e : (eng_tval){.kind = ENG_TV_NIL};
        } else if (v.kind == ENG_TV_LIST || v.kind == ENG_TV_STR) {
            int64_t k = 0;
            int rc = int_arg(x, "index", &a[i], &k);
            if (rc) return rc;
            size_t len = v.kind == ENG_TV_LIST ? v.u.list.n : v.u.s.n;
            if (k < 0 || (uint64_t)k >= len) {
                return eng_texec_fail(x, CORE_INVALID, "error calling index: index out of "
                                      "range: %lld", (long long)k);
            }
            if (v.kind == ENG_TV_LIST) {
                v = v.u.list.items[k];
            } else {
                eng_tval b = {.kind = ENG_TV_INT};
                b.u.i = (unsigned char)v.u.s.p[k];
                v = b;
            }
        } else {
            return eng_texec_fail(x, CORE_INVALID, "error calling index: can't index item of "
                                  "type %s", eng_tval_kind_name(v.kind));
        }
    }
    *out = v;
    return CORE_OK;
}

static int f_slice(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    const eng_tval *v = &a[0];
    if (v->kind == ENG_TV_NIL) {
        *out = *v;
        return CORE_OK;
    }
    if (v->kind != ENG_TV_LIST && v->kind != ENG_TV_STR) {
        return eng_texec_fail(x, CORE_INVALID, "error calling slice: can't slice item of type "
                              "%s", eng_tval_kind_name(v->kind));
    }
    if (n > 4 || (n == 4 && v->kind == ENG_TV_STR)) {
        return eng_texec_fail(x, CORE_INVALID, "error calling slice: too many slice indexes: "
                              "%zu", n - 1);
    }
    int64_t len = (int64_t)(v->kind == ENG_TV_LIST ? v->u.list.n : v->u.s.n);
    int64_t idx[3] = {0, len, len};
    for (size_t i = 1; i < n; i++) {
        int rc = int_arg(x, "slice", &a[i], &idx[i - 1]);
        if (rc) return rc;
        if (idx[i - 1] < 0 || idx[i - 1] > len) {
            return eng_texec_fail(x, CORE_INVALID, "error calling slice: index out of range: "
                                  "%lld", (long long)idx[i - 1]);
        }
    }
    if (n == 2) idx[1] = len;
    if (idx[0] > idx[1] || (n == 4 && idx[1] > idx[2])) {
        return eng_texec_fail(x, CORE_INVALID, "error calling slice: invalid slice index: "
                              "%lld > %lld", (long long)idx[0], (long long)idx[1]);
    }
    *out = *v;
    if (v->kind == ENG_TV_LIST) {
        out->u.list.items = v->u.list.items + idx[0];
        out->u.list.n = (size_t)(idx[1] - idx[0]);
    } else {
        out->u.s.p = v->u.s.p + idx[0];
        out->u.s.n = (size_t)(idx[1] - idx[0]);
    }
    return CORE_OK;
}

// ---- printing ----

/* fmt.Sprint: a space between operands when neither side is a string. */
static int f_print(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    core_buf b;
    core_buf_init(&b);
    int rc = core_buf_append(&b, "", 0);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && a[i].kind != ENG_TV_STR && a[i - 1].kind != ENG_TV_STR) {
            rc = core_buf_append(&b, " ", 1);
        }
        if (!rc) rc = print_v(x, &a[i], &b);
    }
    return buf_result(x, rc, &b, out);
}

static int f_println(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    core_buf b;
    core_buf_init(&b);
    int rc = core_buf_append(&b, "", 0);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = core_buf_append(&b, " ", 1);
        if (!rc) rc = print_v(x, &a[i], &b);
    }
    if (!rc) rc = core_buf_append(&b, "\n", 1);
    return buf_result(x, rc, &b, out);
}

/* strconv.Quote, for %q: printable characters (and all of UTF-8 above ASCII) as they are. */
static int go_quote(const char *s, size_t n, core_buf *b)
{
    int rc = core_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': rc = core_buf_append_str(b, "\\\""); break;
        case '\\': rc = core_buf_append_str(b, "\\\\"); break;
        case '\n': rc = core_buf_append_str(b, "\\n"); break;
        case '\r': rc = core_buf_append_str(b, "\\r"); break;
        case '\t': rc = core_buf_append_str(b, "\\t"); break;
        default:
            if (c < 0x20 || c == 0x7F) rc = core_buf_printf(b, "\\x%02x", c);
            else rc = core_buf_append(b, &s[i], 1);
        }
    }
    return rc ? rc : core_buf_append(b, "\"", 1);
}

static int bad_verb(core_buf *b, char verb, const eng_tval *v, eng_texec *x)
{
    int rc = core_buf_printf(b, "%%!%c(%s=", verb, eng_tval_kind_name(v->kind));
    if (!rc) rc = print_v(x, v, b);
    return rc ? rc : core_buf_append(b, ")", 1);
}

/* One verb with its flags (spec: "%-08.3"), C-compatible for numbers. */
static int fmt_one(eng_texec *x, core_buf *b, const char *spec, size_t spec_n, char verb,
                   const eng_tval *v)
{
    char cf[48];
    if (spec_n > 30) spec_n = 30;
    switch (verb) {
    case 'v':
    case 's':
        if (verb == 's' && (v->kind == ENG_TV_INT || v->kind == ENG_TV_FLOAT ||
                            v->kind == ENG_TV_BOOL)) {
            return bad_verb(b, verb, v, x);
        }
        if (spec_n > 1) {
            /* width and precision: C's %s does the same for byte strings */
            core_buf tmp;
            core_buf_init(&tmp);
            int rc = print_v(x, v, &tmp);
            snprintf(cf, sizeof cf, "%.*ss", (int)spec_n, spec);
            if (!rc) rc = core_buf_printf(b, cf, tmp.data ? tmp.data : "");
            core_buf_deinit(&tmp);
            return rc;
        }
        return print_v(x, v, b);
    case 'q':
        if (v->kind != ENG_TV_STR) return bad_verb(b, verb, v, x);
        return go_quote(v->u.s.p, v->u.s.n, b);
    case 't':
        if (v->kind != ENG_TV_BOOL) return bad_verb(b, verb, v, x);
        return core_buf_append_str(b, v->u.b ? "true" : "false");
    case 'd':
    case 'o':
    case 'b':
    case 'c':
        if (v->kind != ENG_TV_INT) return bad_verb(b, verb, v, x);
        if (verb == 'c') {
            char u[8];
            uint32_t cp = (uint32_t)v->u.i;
            size_t k = 0;
            if (cp < 0x80) u[k++] = (char)cp;
            else if (cp < 0x800) {
                u[k++] = (char)(0xC0 | (cp >> 6));
                u[k++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                u[k++] = (char)(0xE0 | (cp >> 12));
                u[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[k++] = (char)(0x80 | (cp & 0x3F));
            } else {
                u[k++] = (char)(0xF0 | ((cp >> 18) & 7));
                u[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[k++] = (char)(0x80 | (cp & 0x3F));
            }
            return core_buf_append(b, u, k);
        }
        if (verb == 'b') {
            char bits[72];
            size_t k = sizeof bits;
            uint64_t u = v->u.i < 0 ? (uint64_t)0 - (uint64_t)v->u.i : (uint64_t)v->u.i;
            bits[--k] = '\0';
            do { bits[--k] = (char)('0' + (u & 1)); u >>= 1; } while (u);
            if (v->u.i < 0) bits[--k] = '-';
            return core_buf_append_str(b, bits + k);
        }
        snprintf(cf, sizeof cf, "%.*sll%c", (int)spec_n, spec, verb);
        return core_buf_printf(b, cf, (long long)v->u.i);
    case 'x':
    case 'X':
        if (v->kind == ENG_TV_INT) {
            snprintf(cf, sizeof cf, "%.*sll%c", (int)spec_n, spec, verb);
            return core_buf_printf(b, cf, (long long)v->u.i);
        }
        if (v->kind == ENG_TV_STR) {
            int rc = CORE_OK;
            for (size_t i = 0; i < v->u.s.n && !rc; i++) {
                rc = core_buf_printf(b, verb == 'x' ? "%02x" : "%02X",
                                     (unsigned char)v->u.s.p[i]);
            }
            return rc;
        }
        return bad_verb(b, verb, v, x);
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
        if (v->kind != ENG_TV_FLOAT) return bad_verb(b, verb, v, x);
        if ((verb == 'g' || verb == 'G') && !memchr(spec, '.', spec_n)) {
            char num[64];
            fmt_float(v->u.f, num, sizeof num, false);
            return core_buf_append_str(b, num);
        }
        snprintf(cf, sizeof cf, "%.*s%c", (int)spec_n, spec, verb);
        return core_buf_printf(b, cf, v->u.f);
    default:
        return core_buf_printf(b, "%%!%c(%s=", verb, eng_tval_kind_name(v->kind)) ||
               print_v(x, v, b) || core_buf_append(b, ")", 1);
    }
}

/* fmt.Sprintf with the common verbs: %v %s %q %d %o %b %c %x %X %e %f %g %t %%, flags
 * [-+# 0], width and precision. Mismatches print as Go does ("%!d(string=…)"). */
static int f_printf(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    if (a[0].kind != ENG_TV_STR) {
        return eng_texec_fail(x, CORE_INVALID, "error calling printf: format is a %s, not a "
                              "string", eng_tval_kind_name(a[0].kind));
    }
    const char *f = a[0].u.s.p;
    size_t fn = a[0].u.s.n, arg = 1;
    core_buf b;
    core_buf_init(&b);
    int rc = core_buf_append(&b, "", 0);
    for (size_t i = 0; i < fn && !rc;) {
        if (f[i] != '%') {
            size_t j = i;
            while (j < fn && f[j] != '%') j++;
            rc = core_buf_append(&b, f + i, j - i);
            i = j;
            continue;
        }
        size_t s = i++;
        while (i < fn && strchr("+-# 0", f[i])) i++;
        while (i < fn && isdigit((unsigned char)f[i])) i++;
        if (i < fn && f[i] == '.') {
            i++;
            while (i < fn && isdigit((unsigned char)f[i])) i++;
        }
        if (i >= fn) {
            rc = core_buf_append_str(&b, "%!(NOVERB)");
            break;
        }
        char verb = f[i++];
        if (verb == '%') {
            rc = core_buf_append(&b, "%", 1);
        } else if (arg >= n) {
            rc = core_buf_printf(&b, "%%!%c(MISSING)", verb);
        } else {
            rc = fmt_one(x, &b, f + s, i - 1 - s, verb, &a[arg++]);
        }
    }
    if (!rc && arg < n) {
        rc = core_buf_append_str(&b, "%!(EXTRA ");
        for (size_t i = arg; i < n && !rc; i++) {
            if (i > arg) rc = core_buf_append_str(&b, ", ");
            if (!rc) rc = core_buf_printf(&b, "%s=", eng_tval_kind_name(a[i].kind));
            if (!rc) rc = print_v(x, &a[i], &b);
        }
        if (!rc) rc = core_buf_append(&b, ")", 1);
    }
    return buf_result(x, rc, &b, out);
}

// ---- escaping ----

/* The text html/js/urlquery escape: a single string argument, or fmt.Sprint of all. */
static int escape_input(eng_texec *x, const eng_tval *a, size_t n, eng_tval *s)
{
    if (n == 1 && a[0].kind == ENG_TV_STR) {
        *s = a[0];
        return CORE_OK;
    }
    return f_print(x, a, n, s);
}

static int f_html(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    eng_tval s;
    int rc = escape_input(x, a, n, &s);
    if (rc) return rc;
    core_buf b;
    core_buf_init(&b);
    rc = core_buf_append(&b, "", 0);
    for (size_t i = 0; i < s.u.s.n && !rc; i++) {
        switch (s.u.s.p[i]) {
        case '"': rc = core_buf_append_str(&b, "&#34;"); break;
        case '\'': rc = core_buf_append_str(&b, "&#39;"); break;
        case '&': rc = core_buf_append_str(&b, "&amp;"); break;
        case '<': rc = core_buf_append_str(&b, "&lt;"); break;
        case '>': rc = core_buf_append_str(&b, "&gt;"); break;
        case '\0': rc = core_buf_append_str(&b, "\xEF\xBF\xBD"); break;
        default: rc = core_buf_append(&b, &s.u.s.p[i], 1);
        }
    }
    return buf_result(x, rc, &b, out);
}

static int f_js(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    eng_tval s;
    int rc = escape_input(x, a, n, &s);
    if (rc) return rc;
    core_buf b;
    core_buf_init(&b);
    rc = core_buf_append(&b, "", 0);
    for (size_t i = 0; i < s.u.s.n && !rc; i++) {
        unsigned char c = (unsigned char)s.u.s.p[i];
        if (c == '\\') rc = core_buf_append_str(&b, "\\\\");
        else if (c == '\'') rc = core_buf_append_str(&b, "\\'");
        else if (c == '"') rc = core_buf_append_str(&b, "\\\"");
        else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == '=') {
            rc = core_buf_printf(&b, "\\u%04X", c);
        } else {
            rc = core_buf_append(&b, &s.u.s.p[i], 1);
        }
    }
    return buf_result(x, rc, &b, out);
}

static int f_urlquery(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    eng_tval s;
    int rc = escape_input(x, a, n, &s);
    if (rc) return rc;
    core_buf b;
    core_buf_init(&b);
    rc = core_buf_append(&b, "", 0);
    for (size_t i = 0; i < s.u.s.n && !rc; i++) {
        unsigned char c = (unsigned char)s.u.s.p[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            rc = core_buf_append(&b, &s.u.s.p[i], 1);
        } else if (c == ' ') {
            rc = core_buf_append(&b, "+", 1);
        } else {
            rc = core_buf_printf(&b, "%%%02X", c);
        }
    }
    return buf_result(x, rc, &b, out);
}

static int f_call(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    (void)n, (void)out;
    return eng_texec_fail(x, CORE_INVALID, "error calling call: non-function of type %s",
                          eng_tval_kind_name(a[0].kind));
}

// ---- Ollama's extras ----

static int f_json(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    (void)n;
    core_buf b;
    core_buf_init(&b);
    int rc = eng_tval_json(&a[0], &b);
    return buf_result(x, rc, &b, out);
}

static int date_str(eng_texec *x, int days_back, eng_tval *out)
{
    time_t now = time(NULL) - (time_t)days_back * 86400;
    struct tm tm;
    char buf[32];
    if (!localtime_r(&now, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%d", &tm)) {
        return eng_texec_fail(x, CORE_INTERNAL, "cannot read the clock");
    }
    return eng_tval_str_new(x, buf, strlen(buf), out);
}

static int f_current_date(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    (void)a, (void)n;
    return date_str(x, 0, out);
}

static int f_yesterday_date(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    (void)a, (void)n;
    return date_str(x, 1, out);
}

/* The TypeScript type of a JSON-schema property ({"type": …, "items": …, "enum": […]}), as
 * Ollama's toTypeScriptType writes tool parameters: string, number, boolean, T[], a union of
 * enum literals, and `any` for what it cannot tell. */
static int ts_type(const eng_tval *p, core_buf *b, int depth)
{
    if (depth > 16) return core_buf_append_str(b, "any");
    const eng_tval *en = eng_tval_map_get(p, "enum", 4);
    if (en && en->kind == ENG_TV_LIST && en->u.list.n) {
        int rc = CORE_OK;
        for (size_t i = 0; i < en->u.list.n && !rc; i++) {
            if (i) rc = core_buf_append_str(b, " | ");
            if (!rc) rc = eng_tval_json(&en->u.list.items[i], b);
        }
        return rc;
    }
    const eng_tval *t = eng_tval_map_get(p, "type", 4);
    if (!t) t = eng_tval_map_get(p, "Type", 4);
    if (t && t->kind == ENG_TV_LIST && t->u.list.n) t = &t->u.list.items[0];
    if (!t || t->kind != ENG_TV_STR) return core_buf_append_str(b, "any");
    const char *s = t->u.s.p;
    size_t n = t->u.s.n;
    if ((n == 6 && !memcmp(s, "string", 6)) || (n == 7 && !memcmp(s, "boolean", 7)) ||
        (n == 4 && !memcmp(s, "null", 4))) {
        return core_buf_append(b, s, n);
    }
    if ((n == 6 && !memcmp(s, "number", 6)) || (n == 7 && !memcmp(s, "integer", 7))) {
        return core_buf_append_str(b, "number");
    }
    if (n == 5 && !memcmp(s, "array", 5)) {
        const eng_tval *items = eng_tval_map_get(p, "items", 5);
        int rc = items && items->kind == ENG_TV_MAP ? ts_type(items, b, depth + 1)
                                                    : core_buf_append_str(b, "any");
        return rc ? rc : core_buf_append_str(b, "[]");
    }
    if (n == 6 && !memcmp(s, "object", 6)) return core_buf_append_str(b, "object");
    return core_buf_append_str(b, "any");
}

static int f_to_ts_type(eng_texec *x, const eng_tval *a, size_t n, eng_tval *out)
{
    (void)n;
    core_buf b;
    core_buf_init(&b);
    int rc = a[0].kind == ENG_TV_MAP ? ts_type(&a[0], &b, 0) : core_buf_append_str(&b, "any");
    return buf_result(x, rc, &b, out);
}

// ---- table ----

static const struct {
    const char *name;
    tfunc fn;
    int min_args, max_args; /* max -1: any number */
} funcs[] = {
    [ENG_TF_AND] = {"and", NULL, 1, -1},
    [ENG_TF_OR] = {"or", NULL, 1, -1},
    {"not", f_not, 1, 1},
    {"eq", f_eq, 2, -1},
    {"ne", f_ne, 2, 2},
    {"lt", f_lt, 2, 2},
    {"le", f_le, 2, 2},
    {"gt", f_gt, 2, 2},
    {"ge", f_ge, 2, 2},
    {"len", f_len, 1, 1},
    {"index", f_index, 1, -1},
    {"slice", f_slice, 1, -1},
    {"print", f_print, 0, -1},
    {"printf", f_printf, 1, -1},
    {"println", f_println, 0, -1},
    {"html", f_html, 0, -1},
    {"js", f_js, 0, -1},
    {"urlquery", f_urlquery, 0, -1},
    {"call", f_call, 1, -1},
    {"json", f_json, 1, 1},
    {"currentDate", f_current_date, 0, 0},
    {"yesterdayDate", f_yesterday_date, 0, 0},
    {"toTypeScriptType", f_to_ts_type, 1, 1},
};

int eng_tfunc_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++) {
        if (strlen(funcs[i].name) == len && memcmp(funcs[i].name, name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const char *eng_tfunc_name(int f) { return funcs[f].name; }

int eng_tfunc_call(eng_texec *x, int f, const eng_tval *args, size_t n, eng_tval *out)
{
    int lo = funcs[f].min_args, hi = funcs[f].max_args;
    if ((int64_t)n < lo || (hi >= 0 && (int64_t)n > hi)) {
        if (hi == lo) {
            return eng_texec_fail(x, CORE_INVALID, "wrong number of args for %s: want %d got "
                                  "%zu", funcs[f].name, lo, n);
        }
        return eng_texec_fail(x, CORE_INVALID, "wrong number of args for %s: want at least %d "
                              "got %zu", funcs[f].name, lo, n);
    }
    out->kind = ENG_TV_NIL;
    return funcs[f].fn(x, args, n, out);
}
