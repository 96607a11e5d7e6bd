/* template_lex.c — the arena and the eng_tlexer of the Go-template renderer.
 *
 * The eng_tlexer turns the whole template into tokens before parsing: text (with the whitespace
 * that trim markers remove already removed), the delimiters, and the words inside actions.
 * Comments produce no token. Token text points into the source. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/template_ast.h"

// ---- arena ----

struct eng_tarena_chunk {
    eng_tarena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void eng_tarena_init(eng_tarena *a, size_t cap)
{
    a->head = NULL;
    a->used = 0;
    a->cap = cap;
}

void eng_tarena_deinit(eng_tarena *a)
{
    if (!a) return;
    eng_tarena_chunk *c = a->head;
    while (c) {
        eng_tarena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

void *eng_tarena_alloc(eng_tarena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    if (a->cap && (size > a->cap || a->used > a->cap - size)) return NULL;
    eng_tarena_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t csize = size > 16384 ? size : 16384;
        c = malloc(sizeof *c + csize);
        if (!c) return NULL;
        c->size = csize;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *eng_tarena_strdup(eng_tarena *a, const char *s, size_t n)
{
    char *p = eng_tarena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

// ---- eng_tlexer ----

static bool lx_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool lx_alnum(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

static int lx_push(eng_tlexer *l, int type, const char *p, size_t n, int line, bool adjacent)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        eng_ttok *t = realloc(l->toks, cap * sizeof *t);
        if (!t) return core_err_set(l->err, CORE_NOMEM, "template: out of memory");
        l->toks = t;
        l->cap = cap;
    }
    l->toks[l->n++] = (eng_ttok){type, p, n, line, adjacent};
    return CORE_OK;
}

static int lx_count_lines(const char *p, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) k += p[i] == '\n';
    return k;
}

/* A quoted string, raw string or char constant starting at l->pos. */
static int lx_quoted(eng_tlexer *l, char q, int type, bool adjacent)
{
    size_t start = l->pos;
    int line = l->line;
    l->pos++;
    while (l->pos < l->len && l->src[l->pos] != q) {
        char c = l->src[l->pos];
        if (q != '`' && c == '\\' && l->pos + 1 < l->len) {
            l->pos += 2;
            continue;
        }
        if (q != '`' && c == '\n') break;
        if (c == '\n') l->line++;
        l->pos++;
    }
    if (l->pos >= l->len || l->src[l->pos] != q) {
        return core_err_set(l->err, CORE_FORMAT, "template: line %d: unterminated %s", line,
                            q == '`' ? "raw quoted string" : q == '"' ? "quoted string"
                                                                      : "character constant");
    }
    l->pos++;
    return lx_push(l, type, l->src + start, l->pos - start, line, adjacent);
}

/* Inside {{ }}: lexes up to and including the right delimiter; sets *trim_next for -}}. */
static int lx_action(eng_tlexer *l, bool *trim_next)
{
    bool adjacent = false;
    for (;;) {
        if (l->pos >= l->len) {
            return core_err_set(l->err, CORE_FORMAT, "template: line %d: unclosed action",
                                l->line);
        }
        const char *s = l->src + l->pos;
        size_t rest = l->len - l->pos;
        char c = s[0];
        if (lx_space(c) && rest >= 4 && s[1] == '-' && s[2] == '}' && s[3] == '}') {
            l->line += c == '\n';
            l->pos += 4;
            *trim_next = true;
            return lx_push(l, ENG_TK_RIGHT, s, 4, l->line, false);
        }
        if (rest >= 2 && c == '}' && s[1] == '}') {
            l->pos += 2;
            return lx_push(l, ENG_TK_RIGHT, s, 2, l->line, adjacent);
        }
        if (lx_space(c)) {
            l->line += c == '\n';
            l->pos++;
            adjacent = false;
            continue;
        }
        int rc = CORE_OK, line = l->line;
        if (c == '"' || c == '`' || c == '\'') {
            int t = c == '"' ? ENG_TK_STR : c == '`' ? ENG_TK_RAWSTR : ENG_TK_CHAR;
            rc = lx_quoted(l, c, t, adjacent);
        } else if (c == '|' || c == '(' || c == ')' || c == ',' || c == '=') {
            int t = c == '|' ? ENG_TK_PIPE : c == '(' ? ENG_TK_LPAREN : c == ')' ? ENG_TK_RPAREN
                  : c == ',' ? ENG_TK_COMMA : ENG_TK_ASSIGN;
            rc = lx_push(l, t, s, 1, line, adjacent);
            l->pos++;
        } else if (c == ':' && rest >= 2 && s[1] == '=') {
            rc = lx_push(l, ENG_TK_DECL, s, 2, line, adjacent);
            l->pos += 2;
        } else if (isdigit((unsigned char)c) ||
                   ((c == '-' || c == '+' || c == '.') && rest >= 2 &&
                    isdigit((unsigned char)s[1]))) {
            size_t n = 1;
            while (n < rest && (lx_alnum(s[n]) || s[n] == '.' ||
                                ((s[n] == '-' || s[n] == '+') &&
                                 (s[n - 1] == 'e' || s[n - 1] == 'E' || s[n - 1] == 'p' ||
                                  s[n - 1] == 'P')))) {
                n++;
            }
            rc = lx_push(l, ENG_TK_NUM, s, n, line, adjacent);
            l->pos += n;
        } else if (c == '.' || c == '$') {
            size_t n = 1;
            while (n < rest && lx_alnum(s[n])) n++;
            if (c == '.') {
                rc = n == 1 ? lx_push(l, ENG_TK_DOT, s, 1, line, adjacent)
                            : lx_push(l, ENG_TK_FIELD, s + 1, n - 1, line, adjacent);
            } else {
                rc = lx_push(l, ENG_TK_VAR, s, n, line, adjacent);
            }
            l->pos += n;
        } else if (lx_alnum(c)) {
            size_t n = 1;
            while (n < rest && lx_alnum(s[n])) n++;
            rc = lx_push(l, ENG_TK_IDENT, s, n, line, adjacent);
            l->pos += n;
        } else {
            return core_err_set(l->err, CORE_FORMAT,
                                "template: line %d: unexpected character '%c' in action", line,
                                isprint((unsigned char)c) ? c : '?');
        }
        if (rc) return rc;
        adjacent = true;
    }
}

/* Skips a comment (l->pos at its opening slash-star); the right delimiter must follow. */
static int lx_comment(eng_tlexer *l, bool *trim_next)
{
    int line = l->line;
    const char *end = NULL;
    for (size_t i = l->pos + 2; i + 1 < l->len; i++) {
        if (l->src[i] == '*' && l->src[i + 1] == '/') {
            end = l->src + i;
            break;
        }
    }
    if (!end) {
        return core_err_set(l->err, CORE_FORMAT, "template: line %d: unclosed comment", line);
    }
    size_t after = (size_t)(end - l->src) + 2;
    l->line += lx_count_lines(l->src + l->pos, after - l->pos);
    l->pos = after;
    const char *s = l->src + l->pos;
    size_t rest = l->len - l->pos;
    if (rest >= 4 && lx_space(s[0]) && s[1] == '-' && s[2] == '}' && s[3] == '}') {
        l->line += s[0] == '\n';
        l->pos += 4;
        *trim_next = true;
        return CORE_OK;
    }
    if (rest >= 2 && s[0] == '}' && s[1] == '}') {
        l->pos += 2;
        return CORE_OK;
    }
    return core_err_set(l->err, CORE_FORMAT, "template: line %d: comment ends before closing "
                        "delimiter", l->line);
}

int eng_tlex_run(eng_tlexer *l)
{
    bool trim_next = false;
    while (l->pos < l->len) {
        const char *s = l->src + l->pos;
        const char *open = NULL;
        for (size_t i = 0; i + 1 < l->len - l->pos; i++) {
            if (s[i] == '{' && s[i + 1] == '{') {
                open = s + i;
                break;
            }
        }
        size_t text_n = open ? (size_t)(open - s) : l->len - l->pos;
        bool trim_left = open && open + 3 < l->src + l->len && open[2] == '-' &&
                         lx_space(open[3]);
        const char *tp = s;
        size_t tn = text_n;
        if (trim_next) {
            while (tn && lx_space(*tp)) tp++, tn--;
        }
        if (trim_left) {
            while (tn && lx_space(tp[tn - 1])) tn--;
        }
        int rc = CORE_OK;
        if (tn) rc = lx_push(l, ENG_TK_TEXT, tp, tn, l->line, false);
        if (rc) return rc;
        l->line += lx_count_lines(s, text_n);
        l->pos += text_n;
        trim_next = false;
        if (!open) break;
        l->pos += trim_left ? 3 : 2;
        if (l->pos + 1 < l->len && l->src[l->pos] == '/' && l->src[l->pos + 1] == '*') {
            rc = lx_comment(l, &trim_next);
        } else if (trim_left && l->pos + 2 < l->len && l->src[l->pos + 1] == '/' &&
                   l->src[l->pos + 2] == '*') {
            l->pos++;
            rc = lx_comment(l, &trim_next);
        } else {
            rc = lx_push(l, ENG_TK_LEFT, open, 2, l->line, false);
            if (!rc) rc = lx_action(l, &trim_next);
        }
        if (rc) return rc;
    }
    return lx_push(l, ENG_TK_EOF, l->src + l->len, 0, l->line, false);
}
