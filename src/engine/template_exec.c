/* template_exec.c — executes a parsed Go template (template_parse.c) over a small value model
 * (nil, bool, int, float, string, list, map; template_ast.h), and the public eng_tmpl_* API.
 *
 * Semantics follow Go's text/template as Ollama runs it (missingkey=zero), with one
 * deliberate leniency: a missing field, or a field of nil, is nil and prints as nothing (Go
 * would print "<no value>" or fail). Maps and lists print as JSON, as Ollama's tool types do
 * through their String methods.
 *
 * Every render has its own state (struct eng_texec) and value arena, so a template may be
 * rendered by several threads at once. Limits: ENG_TMPL_MAX_OUT bytes of output,
 * ENG_TMPL_MAX_HEAP bytes of values, ENG_TMPL_MAX_STEPS executed nodes; past them the render
 * fails with CORE_LIMIT instead of exhausting the machine. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/template_ast.h"

enum { CTL_NONE, CTL_BREAK, CTL_CONTINUE };

// ---- errors and values ----

int eng_texec_fail(eng_texec *x, int code, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return core_err_set(x->err, code, "template: line %d: %s", x->line, msg);
}

static int ex_nomem(eng_texec *x)
{
    return eng_texec_fail(x, CORE_LIMIT, "rendering needs more than %zu bytes of memory",
                          (size_t)ENG_TMPL_MAX_HEAP);
}

const char *eng_tval_kind_name(int kind)
{
    switch (kind) {
    case ENG_TV_NIL: return "nil";
    case ENG_TV_BOOL: return "bool";
    case ENG_TV_INT: return "int";
    case ENG_TV_FLOAT: return "float";
    case ENG_TV_STR: return "string";
    case ENG_TV_LIST: return "list";
    case ENG_TV_MAP: return "map";
    default: return "?";
    }
}

bool eng_tval_truth(const eng_tval *v)
{
    switch (v->kind) {
    case ENG_TV_BOOL: return v->u.b;
    case ENG_TV_INT: return v->u.i != 0;
    case ENG_TV_FLOAT: return v->u.f != 0;
    case ENG_TV_STR: return v->u.s.n != 0;
    case ENG_TV_LIST: return v->u.list.n != 0;
    case ENG_TV_MAP: return v->u.map.n != 0;
    default: return false;
    }
}

int eng_tval_str_new(eng_texec *x, const char *s, size_t n, eng_tval *out)
{
    char *p = eng_tarena_strdup(&x->heap, s, n);
    if (!p) return ex_nomem(x);
    out->kind = ENG_TV_STR;
    out->u.s.p = p;
    out->u.s.n = n;
    return CORE_OK;
}

const eng_tval *eng_tval_map_get(const eng_tval *m, const char *key, size_t key_len)
{
    if (m->kind != ENG_TV_MAP) return NULL;
    for (size_t i = 0; i < m->u.map.n; i++) {
        const char *k = m->u.map.entries[i].key;
        if (strlen(k) == key_len && memcmp(k, key, key_len) == 0) {
            return &m->u.map.entries[i].val;
        }
    }
    return NULL;
}

static int ex_out(eng_texec *x, const char *s, size_t n, size_t start)
{
    if (x->out->len - start + n > ENG_TMPL_MAX_OUT) {
        return eng_texec_fail(x, CORE_LIMIT, "output larger than %zu bytes",
                              (size_t)ENG_TMPL_MAX_OUT);
    }
    return core_buf_append(x->out, s, n) ? ex_nomem(x) : CORE_OK;
}

// ---- variables ----

static int var_push(eng_texec *x, const char *name, const eng_tval *v)
{
    if (x->n_vars == x->cap_vars) {
        size_t cap = x->cap_vars ? x->cap_vars * 2 : 16;
        struct eng_tvar *nv = realloc(x->vars, cap * sizeof *nv);
        if (!nv) return ex_nomem(x);
        x->vars = nv;
        x->cap_vars = cap;
    }
    x->vars[x->n_vars].name = name;
    x->vars[x->n_vars].val = *v;
    x->n_vars++;
    return CORE_OK;
}

static struct eng_tvar *var_find(eng_texec *x, const char *name)
{
    for (size_t i = x->n_vars; i-- > 0;) {
        if (strcmp(x->vars[i].name, name) == 0) return &x->vars[i];
    }
    return NULL;
}

// ---- evaluation ----

static bool alive(const eng_texec *x, int id) { return id <= x->cut_id; }

/* Whether a pipeline survives Ollama's cut after .Response (a command whose arguments were
 * all removed removes its whole pipeline, as in Ollama's deleteNode). */
static bool pipe_alive(const eng_texec *x, const eng_tpipe *p)
{
    if (!alive(x, p->id)) return false;
    for (size_t c = 0; c < p->n_cmds; c++) {
        size_t n = 0;
        for (size_t a = 0; a < p->cmds[c].n_args; a++) {
            const eng_targ *g = &p->cmds[c].args[a];
            if (alive(x, g->id) && (g->kind != ENG_TA_PIPE || pipe_alive(x, g->pipe))) n++;
        }
        if (n == 0) return false;
    }
    return true;
}

static bool arg_alive(const eng_texec *x, const eng_targ *g)
{
    return alive(x, g->id) && (g->kind != ENG_TA_PIPE || pipe_alive(x, g->pipe));
}

static int ex_fields(eng_texec *x, eng_tval v, const char *const *fields, size_t n,
                     eng_tval *out)
{
    for (size_t i = 0; i < n; i++) {
        if (v.kind == ENG_TV_NIL) break;
        if (v.kind != ENG_TV_MAP) {
            return eng_texec_fail(x, CORE_INVALID, "can't evaluate field %s in type %s",
                                  fields[i], eng_tval_kind_name(v.kind));
        }
        const eng_tval *f = eng_tval_map_get(&v, fields[i], strlen(fields[i]));
        if (f) {
            v = *f;
        } else {
            v.kind = ENG_TV_NIL;
        }
    }
    *out = v;
    return CORE_OK;
}

static int ex_pipe(eng_texec *x, const eng_tpipe *p, const eng_tval *dot, eng_tval *out);

static int ex_call(eng_texec *x, const eng_tcmd *c, size_t first, const eng_tval *dot,
                   const eng_tval *final, eng_tval *out);

/* An argument's value. A function name as an argument is a call without arguments. */
static int ex_arg(eng_texec *x, const eng_targ *g, const eng_tval *dot, eng_tval *out)
{
    x->line = g->line;
    switch (g->kind) {
    case ENG_TA_FIELD: return ex_fields(x, *dot, g->fields, g->n_fields, out);
    case ENG_TA_VAR: {
        struct eng_tvar *v = var_find(x, g->name);
        if (!v) return eng_texec_fail(x, CORE_INTERNAL, "undefined variable %s", g->name);
        return ex_fields(x, v->val, g->fields, g->n_fields, out);
    }
    case ENG_TA_DOT: *out = *dot; return CORE_OK;
    case ENG_TA_NIL: out->kind = ENG_TV_NIL; return CORE_OK;
    case ENG_TA_BOOL: out->kind = ENG_TV_BOOL; out->u.b = g->b; return CORE_OK;
    case ENG_TA_INT: out->kind = ENG_TV_INT; out->u.i = g->i; return CORE_OK;
    case ENG_TA_FLOAT: out->kind = ENG_TV_FLOAT; out->u.f = g->f; return CORE_OK;
    case ENG_TA_STR:
        out->kind = ENG_TV_STR;
        out->u.s.p = g->str;
        out->u.s.n = g->str_len;
        return CORE_OK;
    case ENG_TA_FUNC: {
        eng_tcmd one = {.args = (eng_targ *)g, .n_args = 1, .line = g->line};
        return ex_call(x, &one, 0, dot, NULL, out);
    }
    case ENG_TA_PIPE: {
        eng_tval v;
        int rc = ex_pipe(x, g->pipe, dot, &v);
        if (rc) return rc;
        return ex_fields(x, v, g->fields, g->n_fields, out);
    }
    default: return eng_texec_fail(x, CORE_INTERNAL, "bad argument");
    }
}

/* Calls the function named by c->args[first] with the live arguments after it, plus the
 * value piped in from the previous command (final) as the last one. */
static int ex_call(eng_texec *x, const eng_tcmd *c, size_t first, const eng_tval *dot,
                   const eng_tval *final, eng_tval *out)
{
    const eng_targ *fn = &c->args[first];
    size_t n = 0;
    for (size_t a = first + 1; a < c->n_args; a++) n += arg_alive(x, &c->args[a]);
    n += final != NULL;
    if (fn->func == ENG_TF_AND || fn->func == ENG_TF_OR) {
        /* Lazy, as Go 1.18+: stops at the first false (and) or true (or) argument and
         * returns it; otherwise the last. */
        if (n == 0) return eng_texec_fail(x, CORE_INVALID, "wrong number of args for %s: "
                                          "want at least 1 got 0", fn->name);
        bool is_and = fn->func == ENG_TF_AND;
        for (size_t a = first + 1; a <= c->n_args; a++) {
            eng_tval v;
            if (a == c->n_args) {
                if (!final) break;
                v = *final;
            } else {
                if (!arg_alive(x, &c->args[a])) continue;
                int rc = ex_arg(x, &c->args[a], dot, &v);
                if (rc) return rc;
            }
            *out = v;
            if (eng_tval_truth(&v) != is_and) return CORE_OK;
        }
        return CORE_OK;
    }
    eng_tval stack_args[8];
    eng_tval *args = stack_args;
    if (n > sizeof stack_args / sizeof stack_args[0]) {
        args = eng_tarena_alloc(&x->heap, n * sizeof *args);
        if (!args) return ex_nomem(x);
    }
    size_t k = 0;
    for (size_t a = first + 1; a < c->n_args; a++) {
        if (!arg_alive(x, &c->args[a])) continue;
        int rc = ex_arg(x, &c->args[a], dot, &args[k++]);
        if (rc) return rc;
    }
    if (final) args[k++] = *final;
    x->line = fn->line;
    return eng_tfunc_call(x, fn->func, args, k, out);
}

static int ex_command(eng_texec *x, const eng_tcmd *c, const eng_tval *dot,
                      const eng_tval *final, eng_tval *out)
{
    size_t first = 0;
    while (first < c->n_args && !arg_alive(x, &c->args[first])) first++;
    const eng_targ *g = &c->args[first];
    x->line = g->line;
    if (g->kind == ENG_TA_FUNC) return ex_call(x, c, first, dot, final, out);
    size_t live = 0;
    for (size_t a = first + 1; a < c->n_args; a++) live += arg_alive(x, &c->args[a]);
    if (live || final) {
        if (g->kind == ENG_TA_FIELD || g->kind == ENG_TA_VAR) {
            return eng_texec_fail(x, CORE_INVALID, "%s%s%s is not a method but has arguments",
                                  g->kind == ENG_TA_VAR ? g->name : "",
                                  g->n_fields ? "." : "",
                                  g->n_fields ? g->fields[g->n_fields - 1] : "");
        }
        return eng_texec_fail(x, CORE_INVALID, "can't give argument to non-function");
    }
    return ex_arg(x, g, dot, out);
}

static int ex_pipe(eng_texec *x, const eng_tpipe *p, const eng_tval *dot, eng_tval *out)
{
    if (++x->depth > ENG_TMPL_MAX_DEPTH * 2) {
        return eng_texec_fail(x, CORE_LIMIT, "nesting too deep");
    }
    eng_tval v = {.kind = ENG_TV_NIL};
    for (size_t c = 0; c < p->n_cmds; c++) {
        eng_tval r;
        int rc = ex_command(x, &p->cmds[c], dot, c ? &v : NULL, &r);
        if (rc) return rc;
        v = r;
    }
    x->depth--;
    *out = v;
    return CORE_OK;
}

/* Declares or assigns the pipeline's variable (actions, if, with). */
static int ex_decl(eng_texec *x, const eng_tpipe *p, const eng_tval *v)
{
    if (p->n_decl == 0) return CORE_OK;
    if (p->assign) {
        struct eng_tvar *var = var_find(x, p->decl[0]);
        if (!var) return eng_texec_fail(x, CORE_INTERNAL, "undefined variable %s", p->decl[0]);
        var->val = *v;
        return CORE_OK;
    }
    return var_push(x, p->decl[0], v);
}

// ---- statements ----

static int ex_list(eng_texec *x, const eng_tlist *l, const eng_tval *dot, int *ctl);

static int ex_range_body(eng_texec *x, const eng_tnode *n, const eng_tval *key,
                         const eng_tval *elem, int *ctl)
{
    size_t mark = x->n_vars;
    const eng_tpipe *p = n->pipe;
    int rc = CORE_OK;
    if (p->n_decl == 1) {
        rc = p->assign ? ex_decl(x, p, elem) : var_push(x, p->decl[0], elem);
    } else if (p->n_decl == 2) {
        if (p->assign) {
            struct eng_tvar *a = var_find(x, p->decl[0]), *b = var_find(x, p->decl[1]);
            if (!a || !b) return eng_texec_fail(x, CORE_INTERNAL, "undefined variable");
            a->val = *key;
            b->val = *elem;
        } else {
            rc = var_push(x, p->decl[0], key);
            if (!rc) rc = var_push(x, p->decl[1], elem);
        }
    }
    if (!rc) rc = ex_list(x, &n->list, elem, ctl);
    x->n_vars = mark;
    return rc;
}

static int ex_range(eng_texec *x, const eng_tnode *n, const eng_tval *dot)
{
    eng_tval v;
    int rc = ex_pipe(x, n->pipe, dot, &v);
    if (rc) return rc;
    size_t count = 0;
    int ctl = CTL_NONE;
    if (v.kind == ENG_TV_LIST || v.kind == ENG_TV_MAP || v.kind == ENG_TV_INT) {
        count = v.kind == ENG_TV_LIST ? v.u.list.n
              : v.kind == ENG_TV_MAP ? v.u.map.n : (v.u.i > 0 ? (size_t)v.u.i : 0);
        for (size_t i = 0; i < count; i++) {
            eng_tval key = {.kind = ENG_TV_INT}, elem;
            key.u.i = (int64_t)i;
            if (v.kind == ENG_TV_LIST) {
                elem = v.u.list.items[i];
            } else if (v.kind == ENG_TV_MAP) {
                const char *k = v.u.map.entries[i].key;
                key.kind = ENG_TV_STR;
                key.u.s.p = k;
                key.u.s.n = strlen(k);
                elem = v.u.map.entries[i].val;
            } else {
                elem = key;
            }
            if (++x->steps > ENG_TMPL_MAX_STEPS) {
                x->line = n->line;
                return eng_texec_fail(x, CORE_LIMIT, "more than %d steps", ENG_TMPL_MAX_STEPS);
            }
            ctl = CTL_NONE;
            rc = ex_range_body(x, n, &key, &elem, &ctl);
            if (rc) return rc;
            if (ctl == CTL_BREAK) break;
        }
    } else if (v.kind != ENG_TV_NIL) {
        x->line = n->line;
        return eng_texec_fail(x, CORE_INVALID, "range can't iterate over %s",
                              eng_tval_kind_name(v.kind));
    }
    if (count == 0 && n->has_else) {
        ctl = CTL_NONE;
        rc = ex_list(x, &n->else_list, dot, &ctl);
        if (ctl != CTL_NONE) {
            /* break/continue in a range's else belongs to an enclosing range */
            return eng_texec_fail(x, CORE_INVALID, "break or continue outside range body");
        }
    }
    return rc;
}

static int ex_node(eng_texec *x, const eng_tnode *n, const eng_tval *dot, int *ctl)
{
    if (++x->steps > ENG_TMPL_MAX_STEPS) {
        x->line = n->line;
        return eng_texec_fail(x, CORE_LIMIT, "more than %d steps", ENG_TMPL_MAX_STEPS);
    }
    size_t mark = x->n_vars;
    eng_tval v;
    int rc = CORE_OK;
    x->line = n->line;
    switch (n->kind) {
    case ENG_TN_TEXT: return ex_out(x, n->text, n->text_len, 0);
    case ENG_TN_ACTION:
        if (!pipe_alive(x, n->pipe)) return CORE_OK;
        rc = ex_pipe(x, n->pipe, dot, &v);
        if (rc) return rc;
        if (n->pipe->n_decl) return ex_decl(x, n->pipe, &v);
        return eng_tval_print(x, &v, x->out) ? ex_nomem(x) : CORE_OK;
    case ENG_TN_IF:
    case ENG_TN_WITH:
        rc = ex_pipe(x, n->pipe, dot, &v);
        if (!rc) rc = ex_decl(x, n->pipe, &v);
        if (rc) break;
        if (eng_tval_truth(&v)) {
            rc = ex_list(x, &n->list, n->kind == ENG_TN_WITH ? &v : dot, ctl);
        } else if (n->has_else) {
            rc = ex_list(x, &n->else_list, dot, ctl);
        }
        break;
    case ENG_TN_RANGE: rc = ex_range(x, n, dot); break;
    case ENG_TN_BREAK: *ctl = CTL_BREAK; break;
    case ENG_TN_CONTINUE: *ctl = CTL_CONTINUE; break;
    default: rc = eng_texec_fail(x, CORE_INTERNAL, "bad node");
    }
    x->n_vars = mark;
    return rc;
}

static int ex_list(eng_texec *x, const eng_tlist *l, const eng_tval *dot, int *ctl)
{
    if (++x->depth > ENG_TMPL_MAX_DEPTH * 2) {
        return eng_texec_fail(x, CORE_LIMIT, "nesting too deep");
    }
    for (size_t i = 0; i < l->n && *ctl == CTL_NONE; i++) {
        if (!alive(x, l->nodes[i]->id)) continue;
        int rc = ex_node(x, l->nodes[i], dot, ctl);
        if (rc) return rc;
    }
    x->depth--;
    return CORE_OK;
}

/* Runs t over data, appending to out; cut_id as in eng_texec. out is left as it was on
 * failure. */
static int ex_run(const eng_tmpl *t, eng_texec *x, const eng_tval *data, int cut_id)
{
    x->t = t;
    x->cut_id = cut_id;
    x->steps = 0;
    x->depth = 0;
    x->line = 1;
    size_t start = x->out->len;
    x->n_vars = 0;
    int rc = var_push(x, "$", data);
    int ctl = CTL_NONE;
    if (!rc) rc = ex_list(x, &t->root, data, &ctl);
    if (rc && x->out->data) {
        x->out->len = start;
        x->out->data[start] = '\0';
    }
    return rc;
}

// ---- data ----

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const eng_tmap_entry *)a)->key, ((const eng_tmap_entry *)b)->key);
}

static eng_tval str_val(const char *s)
{
    eng_tval v = {.kind = ENG_TV_STR};
    v.u.s.p = s ? s : "";
    v.u.s.n = s ? strlen(s) : 0;
    return v;
}

static eng_tval empty_list(void)
{
    eng_tval v = {.kind = ENG_TV_LIST};
    v.u.list.items = NULL;
    v.u.list.n = 0;
    return v;
}

/* A map of n entries, sorted by key, in the render's arena. */
static int map_new(eng_texec *x, const eng_tmap_entry *e, size_t n, eng_tval *out)
{
    eng_tmap_entry *m = eng_tarena_alloc(&x->heap, n * sizeof *m);
    if (!m) return ex_nomem(x);
    memcpy(m, e, n * sizeof *m);
    qsort(m, n, sizeof *m, entry_cmp);
    out->kind = ENG_TV_MAP;
    out->u.map.entries = m;
    out->u.map.n = n;
    return CORE_OK;
}

/* One message as Ollama's api.Message has it (the fields a template may mention). */
static int msg_val(eng_texec *x, const char *role, const char *content, eng_tval *out)
{
    eng_tmap_entry e[] = {
        {"Content", str_val(content)},  {"Images", empty_list()},
        {"Role", str_val(role)},        {"Thinking", str_val("")},
        {"ToolCalls", empty_list()},    {"ToolName", str_val("")},
    };
    return map_new(x, e, sizeof e / sizeof e[0], out);
}

static int msgs_val(eng_texec *x, const eng_msg *msgs, size_t n, eng_tval *out)
{
    eng_tval *items = eng_tarena_alloc(&x->heap, (n ? n : 1) * sizeof *items);
    if (!items) return ex_nomem(x);
    for (size_t i = 0; i < n; i++) {
        int rc = msg_val(x, msgs[i].role, msgs[i].content, &items[i]);
        if (rc) return rc;
    }
    out->kind = ENG_TV_LIST;
    out->u.list.items = items;
    out->u.list.n = n;
    return CORE_OK;
}

static void ex_init(eng_texec *x, const eng_tmpl *t, core_buf *out, core_err *err)
{
    memset(x, 0, sizeof *x);
    x->t = t;
    x->out = out;
    x->err = err;
    eng_tarena_init(&x->heap, ENG_TMPL_MAX_HEAP);
}

static void ex_deinit(eng_texec *x)
{
    eng_tarena_deinit(&x->heap);
    free(x->vars);
}

// ---- public API ----

int eng_tmpl_parse(eng_tmpl **out, const char *src, size_t len, core_err *err)
{
    eng_tmpl *t = calloc(1, sizeof *t);
    if (!t) return core_err_set(err, CORE_NOMEM, "template: out of memory");
    eng_tarena_init(&t->arena, 0);
    int rc = eng_tmpl_parse_into(t, src ? src : "", src ? len : 0, err);
    if (rc) {
        eng_tmpl_free(t);
        return rc;
    }
    *out = t;
    return CORE_OK;
}

void eng_tmpl_free(eng_tmpl *t)
{
    if (!t) return;
    eng_tarena_deinit(&t->arena);
    free(t);
}

bool eng_tmpl_uses_messages(const eng_tmpl *t) { return t->uses_messages; }
bool eng_tmpl_uses_suffix(const eng_tmpl *t) { return t->uses_suffix; }

int eng_tmpl_render(const eng_tmpl *t, const eng_tmpl_vars *vars, core_buf *out,
                    core_err *err)
{
    static const eng_tmpl_vars none;
    if (!vars) vars = &none;
    eng_texec x;
    ex_init(&x, t, out, err);
    eng_tval msgs, data;
    int rc = msgs_val(&x, vars->messages, vars->n_messages, &msgs);
    if (!rc) {
        eng_tmap_entry e[] = {
            {"System", str_val(vars->system)},     {"Prompt", str_val(vars->prompt)},
            {"Response", str_val(vars->response)}, {"Suffix", str_val(vars->suffix)},
            {"Messages", msgs},                    {"Tools", empty_list()},
        };
        rc = map_new(&x, e, sizeof e / sizeof e[0], &data);
    }
    if (!rc) rc = ex_run(t, &x, &data, INT32_MAX);
    ex_deinit(&x);
    return rc;
}

// ---- chat (ref: spec section L; Ollama's template.Execute and collate) ----

/* Merges consecutive messages of one role (never tool messages) with "\n\n", as Ollama's
 * collate does, into the render's arena. *system gets all system messages joined by "\n\n". */
static int collate(eng_texec *x, const eng_msg *msgs, size_t n, eng_msg **out, size_t *n_out,
                   const char **system)
{
    eng_msg *m = eng_tarena_alloc(&x->heap, (n ? n : 1) * sizeof *m);
    core_buf sys, cur;
    core_buf_init(&sys);
    core_buf_init(&cur);
    size_t k = 0;
    int rc = CORE_OK;
    for (size_t i = 0; i < n && m && !rc; i++) {
        const char *role = msgs[i].role ? msgs[i].role : "";
        const char *content = msgs[i].content ? msgs[i].content : "";
        if (strcmp(role, "system") == 0) {
            if (sys.len) rc |= core_buf_append_str(&sys, "\n\n");
            rc |= core_buf_append_str(&sys, content);
        }
        if (k > 0 && strcmp(m[k - 1].role, role) == 0 && strcmp(role, "tool") != 0) {
            core_buf_reset(&cur);
            rc |= core_buf_append_str(&cur, m[k - 1].content);
            rc |= core_buf_append_str(&cur, "\n\n");
            rc |= core_buf_append_str(&cur, content);
            m[k - 1].content = rc ? NULL : eng_tarena_strdup(&x->heap, cur.data, cur.len);
            if (!m[k - 1].content) rc = CORE_NOMEM;
        } else {
            m[k].role = role;
            m[k].content = content;
            k++;
        }
    }
    *system = sys.len ? eng_tarena_strdup(&x->heap, sys.data, sys.len) : "";
    core_buf_deinit(&sys);
    core_buf_deinit(&cur);
    if (!m || rc || !*system) return ex_nomem(x);
    *out = m;
    *n_out = k;
    return CORE_OK;
}

/* A .Messages template: one run with System, Messages, Tools and an empty Response. */
static int chat_messages(eng_texec *x, const eng_msg *m, size_t n, const char *system)
{
    eng_tval msgs, data;
    int rc = msgs_val(x, m, n, &msgs);
    if (rc) return rc;
    eng_tval f = {.kind = ENG_TV_BOOL};
    f.u.b = false;
    eng_tmap_entry e[] = {
        {"System", str_val(system)}, {"Messages", msgs},   {"Tools", empty_list()},
        {"Response", str_val("")},   {"Think", f},         {"ThinkLevel", str_val("")},
        {"IsThinkSet", f},
    };
    rc = map_new(x, e, sizeof e / sizeof e[0], &data);
    return rc ? rc : ex_run(x->t, x, &data, INT32_MAX);
}

static int chat_turn(eng_texec *x, const char *system, const char *prompt, const char *response,
                     int cut_id)
{
    eng_tval data;
    eng_tmap_entry e[] = {
        {"System", str_val(system)}, {"Prompt", str_val(prompt)},
        {"Response", str_val(response)},
    };
    int rc = map_new(x, e, sizeof e / sizeof e[0], &data);
    return rc ? rc : ex_run(x->t, x, &data, cut_id);
}

/* A legacy template: one run per turn of System/Prompt/Response; the last turn is rendered
 * with everything after its first {{ .Response }} removed. */
static int chat_legacy(eng_texec *x, const eng_msg *m, size_t n)
{
    const char *system = "", *prompt = "", *response = "";
    for (size_t i = 0; i < n; i++) {
        const char *role = m[i].role;
        bool flush = (strcmp(role, "system") == 0 && (*prompt || *response)) ||
                     (strcmp(role, "user") == 0 && *response);
        if (flush) {
            int rc = chat_turn(x, system, prompt, response, INT32_MAX);
            if (rc) return rc;
            system = prompt = response = "";
        }
        if (strcmp(role, "system") == 0) system = m[i].content;
        else if (strcmp(role, "user") == 0) prompt = m[i].content;
        else if (strcmp(role, "assistant") == 0) response = m[i].content;
    }
    return chat_turn(x, system, prompt, response, x->t->cut_id < 0 ? INT32_MAX : x->t->cut_id);
}

int eng_tmpl_render_chat(const eng_tmpl *t, const char *system, const eng_msg *msgs,
                         size_t n_msgs, core_buf *out, core_err *err)
{
    eng_texec x;
    ex_init(&x, t, out, err);
    size_t start = out->len;
    const eng_msg *all = msgs;
    size_t n_all = n_msgs;
    int rc = CORE_OK;
    /* The model's or request's system prompt goes first unless the chat starts with one
     * (Ollama's ChatHandler). */
    if (system && *system && (n_msgs == 0 || !msgs[0].role || strcmp(msgs[0].role, "system"))) {
        eng_msg *m = eng_tarena_alloc(&x.heap, (n_msgs + 1) * sizeof *m);
        if (!m) {
            rc = ex_nomem(&x);
        } else {
            m[0] = (eng_msg){"system", system};
            if (n_msgs) memcpy(m + 1, msgs, n_msgs * sizeof *m);
            all = m;
            n_all = n_msgs + 1;
        }
    }
    eng_msg *coll = NULL;
    size_t n_coll = 0;
    const char *sys = "";
    if (!rc) rc = collate(&x, all, n_all, &coll, &n_coll, &sys);
    if (!rc) {
        rc = t->uses_messages ? chat_messages(&x, coll, n_coll, sys)
                              : chat_legacy(&x, coll, n_coll);
    }
    if (rc && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    ex_deinit(&x);
    return rc;
}
