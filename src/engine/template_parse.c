/* template_parse.c — the parser for the subset of Go's text/template that Ollama's
 * templates use (ref: pkg.go.dev/text/template, spec/ollama-compat.md appendix A).
 *
 * The lexer (template_lex.c) turns the whole source into tokens first; the parser is
 * recursive descent over them and builds the AST of template_ast.h in
 * the template's arena. Nesting of control structures and parentheses is capped at
 * ENG_TMPL_MAX_DEPTH, so a hostile template cannot exhaust the stack. Every error names the
 * line and what was unexpected, as Go's parser does.
 *
 * Supported: text, {{ pipeline }}, trim markers {{- -}}, comments, variables ($, $x := …,
 * $x = …), fields and chains, parenthesised pipelines, if/else if/else, range (with one or two
 * variables, else), with/else with, break, continue, string/raw/char/number/bool/nil constants.
 * Not supported (clear error): define, template, block. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/template_ast.h"

// ---- parser ----

typedef struct parser {
    eng_tmpl *t;
    const eng_ttok *toks;
    size_t n, i;
    core_err *err;
    int next_id;
    int depth;
    int range_depth;
    bool in_action;      /* parsing an action's pipeline (for the .Response cut) */
    const char **vars;   /* names in scope, innermost last */
    size_t n_vars, cap_vars;
} parser;

enum { STOP_EOF, STOP_END, STOP_ELSE };

static const char *const ps_keywords[] = {"if", "else", "end", "range", "with", "break",
                                          "continue", "define", "template", "block", NULL};

/* A token as Go's messages show it: keywords as <if>, the rest quoted (cut after 20 bytes). */
static const char *tok_desc(const eng_ttok *k, char *buf, size_t cap)
{
    if (k->type == ENG_TK_EOF) return "EOF";
    for (size_t i = 0; k->type == ENG_TK_IDENT && ps_keywords[i]; i++) {
        if (strlen(ps_keywords[i]) == k->n && memcmp(ps_keywords[i], k->p, k->n) == 0) {
            snprintf(buf, cap, "<%s>", ps_keywords[i]);
            return buf;
        }
    }
    const char *p = k->type == ENG_TK_FIELD ? k->p - 1 : k->p;
    size_t n = k->type == ENG_TK_FIELD ? k->n + 1 : k->n;
    if (k->type == ENG_TK_RIGHT) p = "}}", n = 2;
    snprintf(buf, cap, "\"%.*s%s\"", (int)(n > 20 ? 20 : n), p, n > 20 ? "..." : "");
    return buf;
}

static int ps_fail(parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ps_fail(parser *p, int line, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return core_err_set(p->err, CORE_FORMAT, "template: line %d: %s", line, msg);
}

static int ps_unexpected(parser *p, const eng_ttok *k, const char *where)
{
    char buf[64];
    return ps_fail(p, k->line, "unexpected %s in %s", tok_desc(k, buf, sizeof buf), where);
}

static int ps_nomem(parser *p)
{
    return core_err_set(p->err, CORE_NOMEM, "template: out of memory");
}

static const eng_ttok *ps_peek(const parser *p) { return &p->toks[p->i]; }
static const eng_ttok *ps_next(parser *p)
{
    const eng_ttok *k = &p->toks[p->i];
    if (k->type != ENG_TK_EOF) p->i++;
    return k;
}

static bool tok_is(const eng_ttok *k, int type, const char *word)
{
    return k->type == type && strlen(word) == k->n && memcmp(k->p, word, k->n) == 0;
}

static int ps_var_push(parser *p, const char *name)
{
    if (p->n_vars == p->cap_vars) {
        size_t cap = p->cap_vars ? p->cap_vars * 2 : 16;
        const char **v = realloc(p->vars, cap * sizeof *v);
        if (!v) return ps_nomem(p);
        p->vars = v;
        p->cap_vars = cap;
    }
    p->vars[p->n_vars++] = name;
    return CORE_OK;
}

static bool ps_var_known(const parser *p, const char *name, size_t n)
{
    for (size_t i = p->n_vars; i-- > 0;) {
        if (strlen(p->vars[i]) == n && memcmp(p->vars[i], name, n) == 0) return true;
    }
    return false;
}

/* Grows an arena array of elements of size `size` from n to twice its capacity (the old
 * array stays in the arena: at most half of such memory is wasted). */
static int ps_grow(parser *p, void **arr, size_t *cap, size_t n, size_t size)
{
    size_t ncap = *cap ? *cap * 2 : 4;
    void *a = eng_tarena_alloc(&p->t->arena, ncap * size);
    if (!a) return ps_nomem(p);
    if (n) memcpy(a, *arr, n * size);
    *arr = a;
    *cap = ncap;
    return CORE_OK;
}

static int ps_list_add(parser *p, eng_tlist *l, eng_tnode *node)
{
    if (l->n == l->cap) {
        int rc = ps_grow(p, (void **)&l->nodes, &l->cap, l->n, sizeof *l->nodes);
        if (rc) return rc;
    }
    l->nodes[l->n++] = node;
    return CORE_OK;
}

static eng_tnode *ps_node_new(parser *p, int kind, int line)
{
    eng_tnode *n = eng_tarena_alloc(&p->t->arena, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->id = p->next_id++;
    n->line = line;
    return n;
}

static bool ci_eq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n) return false;
    for (size_t i = 0; i < n; i++) {
        if (tolower((unsigned char)a[i]) != b[i]) return false;
    }
    return true;
}

/* Records which of the data's top-level names a field mentions (as Ollama's Vars()). */
static void ps_note_ident(parser *p, const char *name, size_t n)
{
    if (ci_eq(name, n, "messages")) p->t->uses_messages = true;
    if (ci_eq(name, n, "response")) p->t->uses_response = true;
    if (ci_eq(name, n, "suffix")) p->t->uses_suffix = true;
    if (ci_eq(name, n, "tools")) p->t->uses_tools = true;
}

/* Appends the adjacent .Field tokens that follow an operand to its chain (with `first`, the
 * current token, a field, starts the chain whatever precedes it). */
static int ps_chain(parser *p, eng_targ *a, bool first)
{
    size_t n = first ? 1 : 0;
    while (p->toks[p->i + n].type == ENG_TK_FIELD && p->toks[p->i + n].adjacent) n++;
    if (!n) return CORE_OK;
    const char **f = eng_tarena_alloc(&p->t->arena, (a->n_fields + n) * sizeof *f);
    if (!f) return ps_nomem(p);
    if (a->n_fields) memcpy(f, a->fields, a->n_fields * sizeof *f);
    for (size_t k = 0; k < n; k++) {
        const eng_ttok *t = ps_next(p);
        f[a->n_fields + k] = eng_tarena_strdup(&p->t->arena, t->p, t->n);
        if (!f[a->n_fields + k]) return ps_nomem(p);
        ps_note_ident(p, t->p, t->n);
        if (p->in_action && p->t->cut_id < 0 && a->kind == ENG_TA_FIELD &&
            tok_is(t, ENG_TK_FIELD, "Response")) {
            p->t->cut_id = a->id;
        }
    }
    a->fields = f;
    a->n_fields += n;
    return CORE_OK;
}

static int ps_unquote(parser *p, const eng_ttok *k, eng_targ *a);
static int ps_number(parser *p, const eng_ttok *k, eng_targ *a);
static int ps_pipeline(parser *p, eng_tpipe **out, const char *context, int end_type);

static int ps_operand(parser *p, eng_targ *a)
{
    const eng_ttok *k = ps_next(p);
    a->id = p->next_id++;
    a->line = k->line;
    int rc = CORE_OK;
    switch (k->type) {
    case ENG_TK_FIELD:
        a->kind = ENG_TA_FIELD;
        p->i--; /* the first field is part of the chain */
        return ps_chain(p, a, true);
    case ENG_TK_VAR:
        if (!ps_var_known(p, k->p, k->n)) {
            return ps_fail(p, k->line, "undefined variable \"%.*s\"", (int)k->n, k->p);
        }
        a->kind = ENG_TA_VAR;
        a->name = eng_tarena_strdup(&p->t->arena, k->p, k->n);
        if (!a->name) return ps_nomem(p);
        return ps_chain(p, a, false);
    case ENG_TK_DOT: a->kind = ENG_TA_DOT; return CORE_OK;
    case ENG_TK_STR:
    case ENG_TK_RAWSTR: a->kind = ENG_TA_STR; return ps_unquote(p, k, a);
    case ENG_TK_CHAR:
    case ENG_TK_NUM: return ps_number(p, k, a);
    case ENG_TK_LPAREN:
        if (++p->depth > ENG_TMPL_MAX_DEPTH) {
            return ps_fail(p, k->line, "nesting deeper than %d levels", ENG_TMPL_MAX_DEPTH);
        }
        a->kind = ENG_TA_PIPE;
        rc = ps_pipeline(p, &a->pipe, "parenthesized pipeline", ENG_TK_RPAREN);
        p->depth--;
        return rc ? rc : ps_chain(p, a, false);
    case ENG_TK_IDENT:
        if (tok_is(k, ENG_TK_IDENT, "true") || tok_is(k, ENG_TK_IDENT, "false")) {
            a->kind = ENG_TA_BOOL;
            a->b = k->p[0] == 't';
            return CORE_OK;
        }
        if (tok_is(k, ENG_TK_IDENT, "nil")) {
            a->kind = ENG_TA_NIL;
            return CORE_OK;
        }
        for (size_t i = 0; ps_keywords[i]; i++) {
            if (tok_is(k, ENG_TK_IDENT, ps_keywords[i])) return ps_unexpected(p, k, "operand");
        }
        a->kind = ENG_TA_FUNC;
        a->func = eng_tfunc_find(k->p, k->n);
        if (a->func < 0) {
            return ps_fail(p, k->line, "function \"%.*s\" not defined", (int)k->n, k->p);
        }
        a->name = eng_tfunc_name(a->func);
        return CORE_OK;
    default: return ps_unexpected(p, k, "operand");
    }
}

/* One command: operands up to '|' or the end token. */
static int ps_command(parser *p, eng_tcmd *c, int end_type, const char *context)
{
    eng_targ *args = NULL;
    size_t n = 0, cap = 0;
    c->line = ps_peek(p)->line;
    for (;;) {
        const eng_ttok *k = ps_peek(p);
        if (k->type == end_type || k->type == ENG_TK_PIPE) break;
        if (k->type == ENG_TK_EOF || k->type == ENG_TK_RIGHT || k->type == ENG_TK_RPAREN) {
            return ps_unexpected(p, k, context);
        }
        if (n == cap) {
            int rc = ps_grow(p, (void **)&args, &cap, n, sizeof *args);
            if (rc) return rc;
        }
        int rc = ps_operand(p, &args[n]);
        if (rc) return rc;
        n++;
    }
    if (n == 0) return ps_unexpected(p, ps_peek(p), context);
    if (n > 1 && args[0].kind != ENG_TA_FUNC && args[0].kind != ENG_TA_FIELD &&
        args[0].kind != ENG_TA_VAR && args[0].kind != ENG_TA_PIPE) {
        return ps_fail(p, c->line, "can't give argument to non-function");
    }
    if (n == 1 && args[0].kind == ENG_TA_NIL) return ps_fail(p, c->line, "nil is not a command");
    c->args = args;
    c->n_args = n;
    return CORE_OK;
}

/* [decl :=] command { '|' command } end_type. Declared variables enter scope here. */
static int ps_pipeline(parser *p, eng_tpipe **out, const char *context, int end_type)
{
    eng_tpipe *pipe = eng_tarena_alloc(&p->t->arena, sizeof *pipe);
    if (!pipe) return ps_nomem(p);
    pipe->id = p->next_id++;
    pipe->line = ps_peek(p)->line;
    const eng_ttok *k0 = ps_peek(p);
    if (k0->type == ENG_TK_VAR) {
        size_t save = p->i, nd = 0;
        const eng_ttok *names[2];
        names[nd++] = ps_next(p);
        if (ps_peek(p)->type == ENG_TK_COMMA && strcmp(context, "range") == 0) {
            ps_next(p);
            if (ps_peek(p)->type != ENG_TK_VAR) return ps_unexpected(p, ps_peek(p), "range");
            names[nd++] = ps_next(p);
        }
        const eng_ttok *op = ps_peek(p);
        if (op->type == ENG_TK_DECL || op->type == ENG_TK_ASSIGN) {
            ps_next(p);
            pipe->assign = op->type == ENG_TK_ASSIGN;
            pipe->n_decl = (int)nd;
            for (size_t d = 0; d < nd; d++) {
                if (pipe->assign && !ps_var_known(p, names[d]->p, names[d]->n)) {
                    return ps_fail(p, names[d]->line, "undefined variable \"%.*s\"",
                                   (int)names[d]->n, names[d]->p);
                }
                pipe->decl[d] = eng_tarena_strdup(&p->t->arena, names[d]->p, names[d]->n);
                if (!pipe->decl[d]) return ps_nomem(p);
            }
        } else if (nd == 2) {
            return ps_unexpected(p, op, context);
        } else {
            p->i = save;
        }
    }
    eng_tcmd *cmds = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            int rc = ps_grow(p, (void **)&cmds, &cap, n, sizeof *cmds);
            if (rc) return rc;
        }
        int rc = ps_command(p, &cmds[n], end_type, context);
        if (rc) return rc;
        int k = cmds[n].args[0].kind;
        if (n > 0 && k != ENG_TA_FUNC && k != ENG_TA_FIELD && k != ENG_TA_VAR &&
            k != ENG_TA_PIPE) {
            return ps_fail(p, cmds[n].line, "non executable command in pipeline stage %zu",
                           n + 1);
        }
        n++;
        if (ps_peek(p)->type != ENG_TK_PIPE) break;
        ps_next(p);
    }
    ps_next(p); /* end_type */
    pipe->cmds = cmds;
    pipe->n_cmds = n;
    if (!pipe->assign) {
        for (int d = 0; d < pipe->n_decl; d++) {
            int rc = ps_var_push(p, pipe->decl[d]);
            if (rc) return rc;
        }
    }
    *out = pipe;
    return CORE_OK;
}

static int ps_list(parser *p, eng_tlist *list, int *stop);

/* if / range / with, after the keyword; consumes through the matching {{ end }}. */
static int ps_control_node(parser *p, int kind, int line, eng_tnode **out)
{
    static const char *const names[] = {[ENG_TN_IF] = "if", [ENG_TN_RANGE] = "range",
                                        [ENG_TN_WITH] = "with"};
    if (++p->depth > ENG_TMPL_MAX_DEPTH) {
        return ps_fail(p, line, "nesting deeper than %d levels", ENG_TMPL_MAX_DEPTH);
    }
    eng_tnode *n = ps_node_new(p, kind, line);
    if (!n) return ps_nomem(p);
    size_t var_mark = p->n_vars;
    bool was_action = p->in_action;
    p->in_action = false;
    int rc = ps_pipeline(p, &n->pipe, names[kind], ENG_TK_RIGHT);
    p->in_action = was_action;
    if (rc) return rc;
    int stop;
    if (kind == ENG_TN_RANGE) p->range_depth++;
    rc = ps_list(p, &n->list, &stop);
    if (kind == ENG_TN_RANGE) p->range_depth--;
    if (rc) return rc;
    if (stop == STOP_ELSE) {
        n->has_else = true;
        const eng_ttok *k = ps_peek(p);
        bool chained = (kind == ENG_TN_IF && tok_is(k, ENG_TK_IDENT, "if")) ||
                       (kind == ENG_TN_WITH && tok_is(k, ENG_TK_IDENT, "with"));
        if (chained) {
            ps_next(p);
            eng_tnode *inner;
            rc = ps_control_node(p, kind, k->line, &inner);
            if (!rc) rc = ps_list_add(p, &n->else_list, inner);
            if (rc) return rc;
            stop = STOP_END; /* the inner node consumed the shared {{ end }} */
        } else {
            if (ps_peek(p)->type != ENG_TK_RIGHT) return ps_unexpected(p, ps_peek(p), "else");
            ps_next(p);
            rc = ps_list(p, &n->else_list, &stop);
            if (rc) return rc;
            if (stop == STOP_ELSE) return ps_fail(p, ps_peek(p)->line, "expected end; found "
                                                  "else");
        }
    }
    if (stop == STOP_EOF) {
        return ps_fail(p, ps_peek(p)->line, "unexpected EOF: %s (line %d) has no end",
                       names[kind], line);
    }
    p->n_vars = var_mark;
    p->depth--;
    *out = n;
    return CORE_OK;
}

/* After {{: one action. Sets *stop for {{ end }} / {{ else }}, else adds a node. */
static int ps_action(parser *p, eng_tlist *list, int *stop)
{
    const eng_ttok *k = ps_peek(p);
    int line = k->line;
    *stop = -1;
    if (k->type == ENG_TK_IDENT) {
        if (tok_is(k, ENG_TK_IDENT, "end") || tok_is(k, ENG_TK_IDENT, "else")) {
            ps_next(p);
            *stop = k->p[1] == 'n' ? STOP_END : STOP_ELSE;
            if (*stop == STOP_END) {
                if (ps_peek(p)->type != ENG_TK_RIGHT) return ps_unexpected(p, ps_peek(p), "end");
                ps_next(p);
            }
            return CORE_OK;
        }
        int kind = tok_is(k, ENG_TK_IDENT, "if") ? ENG_TN_IF
                 : tok_is(k, ENG_TK_IDENT, "range") ? ENG_TN_RANGE
                 : tok_is(k, ENG_TK_IDENT, "with") ? ENG_TN_WITH : -1;
        if (kind >= 0) {
            ps_next(p);
            eng_tnode *n;
            int rc = ps_control_node(p, kind, line, &n);
            return rc ? rc : ps_list_add(p, list, n);
        }
        if (tok_is(k, ENG_TK_IDENT, "break") || tok_is(k, ENG_TK_IDENT, "continue")) {
            ps_next(p);
            if (p->range_depth == 0) {
                return ps_fail(p, line, "{{%.*s}} outside {{range}}", (int)k->n, k->p);
            }
            if (ps_peek(p)->type != ENG_TK_RIGHT) {
                return ps_unexpected(p, ps_peek(p), k->p[0] == 'b' ? "break" : "continue");
            }
            ps_next(p);
            eng_tnode *n = ps_node_new(p, k->p[0] == 'b' ? ENG_TN_BREAK : ENG_TN_CONTINUE, line);
            return n ? ps_list_add(p, list, n) : ps_nomem(p);
        }
        if (tok_is(k, ENG_TK_IDENT, "define") || tok_is(k, ENG_TK_IDENT, "template") ||
            tok_is(k, ENG_TK_IDENT, "block")) {
            return ps_fail(p, line, "{{%.*s}} is not supported", (int)k->n, k->p);
        }
    }
    eng_tnode *n = ps_node_new(p, ENG_TN_ACTION, line);
    if (!n) return ps_nomem(p);
    p->in_action = true;
    int rc = ps_pipeline(p, &n->pipe, "command", ENG_TK_RIGHT);
    p->in_action = false;
    return rc ? rc : ps_list_add(p, list, n);
}

static int ps_list(parser *p, eng_tlist *list, int *stop)
{
    for (;;) {
        const eng_ttok *k = ps_next(p);
        int rc = CORE_OK;
        if (k->type == ENG_TK_EOF) {
            *stop = STOP_EOF;
            return CORE_OK;
        }
        if (k->type == ENG_TK_TEXT) {
            eng_tnode *n = ps_node_new(p, ENG_TN_TEXT, k->line);
            if (!n) return ps_nomem(p);
            n->text_len = k->n;
            n->text = eng_tarena_strdup(&p->t->arena, k->p, k->n);
            if (!n->text) return ps_nomem(p);
            rc = ps_list_add(p, list, n);
        } else if (k->type == ENG_TK_LEFT) {
            int s;
            rc = ps_action(p, list, &s);
            if (!rc && s >= 0) {
                *stop = s;
                return CORE_OK;
            }
        } else {
            rc = ps_unexpected(p, k, "template text");
        }
        if (rc) return rc;
    }
}

// ---- constants ----

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Go's escapes: \a \b \f \n \r \t \v \\ \' \" \xHH \ooo \uXXXX \UXXXXXXXX. Writes the decoded
 * bytes to o (room for the input length suffices) and returns their count, or -1. */
static long unescape(const char *s, size_t n, char *o)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            o[k++] = s[i];
            continue;
        }
        if (++i >= n) return -1;
        char c = s[i];
        const char *simple = strchr("abfnrtv\\'\"", c);
        if (simple && c) {
            static const char map[] = "\a\b\f\n\r\t\v\\'\"";
            o[k++] = map[simple - "abfnrtv\\'\""];
        } else if (c == 'x' || c == 'u' || c == 'U') {
            size_t nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (size_t d = 1; d <= nd; d++) {
                if (i + d >= n) return -1;
                int h = hexval(s[i + d]);
                if (h < 0) return -1;
                v = v * 16 + (uint32_t)h;
            }
            i += nd;
            if (c == 'x') o[k++] = (char)v;
            else k += utf8_put(o + k, v);
        } else if (c >= '0' && c <= '7') {
            if (i + 2 >= n) return -1;
            unsigned v = 0;
            for (size_t d = 0; d < 3; d++) {
                if (s[i + d] < '0' || s[i + d] > '7') return -1;
                v = v * 8 + (unsigned)(s[i + d] - '0');
            }
            if (v > 255) return -1;
            o[k++] = (char)v;
            i += 2;
        } else {
            return -1;
        }
    }
    return (long)k;
}

static int ps_unquote(parser *p, const eng_ttok *k, eng_targ *a)
{
    const char *body = k->p + 1;
    size_t n = k->n - 2;
    char *o = eng_tarena_alloc(&p->t->arena, n + 8);
    if (!o) return ps_nomem(p);
    if (k->type == ENG_TK_RAWSTR) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (body[i] != '\r') o[m++] = body[i]; /* Go drops \r from raw strings */
        }
        a->str = o;
        a->str_len = m;
        return CORE_OK;
    }
    long m = unescape(body, n, o);
    if (m < 0) return ps_fail(p, k->line, "bad escape in string %.*s", (int)k->n, k->p);
    o[m] = '\0';
    a->str = o;
    a->str_len = (size_t)m;
    return CORE_OK;
}

/* Decodes the first UTF-8 character of s (n bytes); returns its length or 0. */
static size_t utf8_get(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) return 0;
    if (u[0] < 0x80) { *cp = u[0]; return 1; }
    size_t len = (u[0] & 0xE0) == 0xC0 ? 2 : (u[0] & 0xF0) == 0xE0 ? 3
               : (u[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || len > n) return 0;
    uint32_t v = u[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (u[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static int ps_number(parser *p, const eng_ttok *k, eng_targ *a)
{
    char buf[128];
    if (k->type == ENG_TK_CHAR) {
        char o[16];
        if (k->n - 2 > 12) return ps_fail(p, k->line, "malformed character constant");
        long m = unescape(k->p + 1, k->n - 2, o);
        uint32_t cp = 0;
        if (m <= 0 || utf8_get(o, (size_t)m, &cp) != (size_t)m) {
            if (m == 1) cp = (unsigned char)o[0];
            else return ps_fail(p, k->line, "malformed character constant: %.*s", (int)k->n, k->p);
        }
        a->kind = ENG_TA_INT;
        a->i = cp;
        return CORE_OK;
    }
    size_t m = 0;
    for (size_t i = 0; i < k->n && m + 1 < sizeof buf; i++) {
        if (k->p[i] != '_') buf[m++] = k->p[i];
    }
    buf[m] = '\0';
    if (k->n >= sizeof buf) return ps_fail(p, k->line, "number too long");
    const char *s = buf;
    bool neg = false;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    int base = 10;
    const char *digits = s;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, digits = s + 2;
    else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) base = 8, digits = s + 2;
    else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) base = 2, digits = s + 2;
    else if (s[0] == '0' && s[1] && isdigit((unsigned char)s[1])) base = 8, digits = s + 1;
    char *end;
    errno = 0;
    unsigned long long u = strtoull(digits, &end, base);
    if (*digits && *end == '\0' && errno == 0 && u <= (unsigned long long)INT64_MAX + neg) {
        a->kind = ENG_TA_INT;
        a->i = neg ? (int64_t)(0 - u) : (int64_t)u;
        return CORE_OK;
    }
    if (base == 10 || base == 8) {
        errno = 0;
        double f = strtod(buf, &end);
        if (*end == '\0' && errno == 0 && end != buf) {
            a->kind = ENG_TA_FLOAT;
            a->f = f;
            return CORE_OK;
        }
    }
    return ps_fail(p, k->line, "bad number syntax: \"%.*s\"", (int)k->n, k->p);
}

// ---- entry ----

/* Ollama appends {{ .Response }} to a template that mentions neither .Messages nor
 * .Response (ref: spec L). */
static int ps_append_response(parser *p)
{
    eng_tnode *n = ps_node_new(p, ENG_TN_ACTION, p->toks[p->n - 1].line);
    eng_tpipe *pipe = eng_tarena_alloc(&p->t->arena, sizeof *pipe);
    eng_tcmd *cmd = eng_tarena_alloc(&p->t->arena, sizeof *cmd);
    eng_targ *arg = eng_tarena_alloc(&p->t->arena, sizeof *arg);
    const char **fields = eng_tarena_alloc(&p->t->arena, sizeof *fields);
    if (!n || !pipe || !cmd || !arg || !fields) return ps_nomem(p);
    pipe->id = p->next_id++;
    pipe->line = n->line;
    arg->kind = ENG_TA_FIELD;
    arg->id = p->next_id++;
    arg->line = n->line;
    fields[0] = "Response";
    arg->fields = fields;
    arg->n_fields = 1;
    cmd->args = arg;
    cmd->n_args = 1;
    cmd->line = n->line;
    pipe->cmds = cmd;
    pipe->n_cmds = 1;
    n->pipe = pipe;
    if (p->t->cut_id < 0) p->t->cut_id = arg->id;
    return ps_list_add(p, &p->t->root, n);
}

int eng_tmpl_parse_into(eng_tmpl *t, const char *src, size_t len, core_err *err)
{
    if (len > ENG_TMPL_MAX_SRC) {
        return core_err_set(err, CORE_LIMIT, "template: %zu bytes is larger than the limit of "
                            "%u", len, ENG_TMPL_MAX_SRC);
    }
    if (memchr(src, '\0', len)) {
        return core_err_set(err, CORE_FORMAT, "template: contains a NUL byte");
    }
    eng_tlexer l = {.src = src, .len = len, .line = 1, .err = err};
    int rc = eng_tlex_run(&l);
    if (rc) {
        free(l.toks);
        return rc;
    }
    parser p = {.t = t, .toks = l.toks, .n = l.n, .err = err};
    t->cut_id = -1;
    rc = ps_var_push(&p, "$");
    int stop = STOP_EOF;
    if (!rc) rc = ps_list(&p, &t->root, &stop);
    if (!rc && stop != STOP_EOF) {
        const eng_ttok *k = &p.toks[p.i > 0 ? p.i - 1 : 0];
        rc = ps_fail(&p, k->line, "unexpected {{%s}}", stop == STOP_END ? "end" : "else");
    }
    if (!rc && !t->uses_messages && !t->uses_response) rc = ps_append_response(&p);
    free(p.vars);
    free(l.toks);
    return rc;
}
