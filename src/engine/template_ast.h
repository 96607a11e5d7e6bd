/* template_ast.h — private to the Go-template renderer (template_parse.c, template_exec.c,
 * template_funcs.c, template_chat.c). Not part of the engine's public contract.
 *
 * The renderer has three stages:
 *   eng_tlexer + parser (template_parse.c)  source text → a small AST, allocated in an arena
 *   executor (template_exec.c)         AST + data → text, over a small value model
 *   functions (template_funcs.c)       Go's builtins and Ollama's extras
 *
 * A parsed template is immutable; any number of threads may render it at once, each with its
 * own executor state (and its own value arena). */
#ifndef DWELL_ENGINE_TEMPLATE_AST_H
#define DWELL_ENGINE_TEMPLATE_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "engine/engine.h"

/* Limits against hostile templates (they come from users through /api/create). */
#define ENG_TMPL_MAX_SRC (1u << 20)          /* bytes of template source */
#define ENG_TMPL_MAX_DEPTH 64                /* nested if/range/with and parentheses */
#define ENG_TMPL_MAX_OUT ((size_t)64 << 20)  /* bytes of rendered output */
#define ENG_TMPL_MAX_HEAP ((size_t)64 << 20) /* bytes of values made while rendering */
#define ENG_TMPL_MAX_STEPS 5000000           /* nodes executed in one render */

// ---- arena ----

/* A chunked bump allocator: everything of one parse (or one render) is freed at once. */
typedef struct eng_tarena_chunk eng_tarena_chunk;
typedef struct eng_tarena {
    eng_tarena_chunk *head;
    size_t used;  /* bytes handed out, for the cap */
    size_t cap;   /* 0 = no cap */
} eng_tarena;

void eng_tarena_init(eng_tarena *a, size_t cap);
void eng_tarena_deinit(eng_tarena *a);
/* Zeroed memory, 16-byte aligned; NULL when out of memory or past the cap. */
void *eng_tarena_alloc(eng_tarena *a, size_t size);
/* A NUL-terminated copy of n bytes of s. */
char *eng_tarena_strdup(eng_tarena *a, const char *s, size_t n);

// ---- AST ----

enum eng_targ_kind {
    ENG_TA_FIELD,  /* .A.B           fields[] */
    ENG_TA_VAR,    /* $x.A.B         name = "$x", fields[] */
    ENG_TA_DOT,    /* .              */
    ENG_TA_NIL,    /* nil            */
    ENG_TA_BOOL,   /* true / false   */
    ENG_TA_INT,    /* 42, 0x2a, 'c'  */
    ENG_TA_FLOAT,  /* 1.5            */
    ENG_TA_STR,    /* "..." or `...` (unescaped) */
    ENG_TA_FUNC,   /* a function name: func = index in the function table */
    ENG_TA_PIPE,   /* ( pipeline ).A.B   pipe, fields[] */
};

typedef struct eng_tpipe eng_tpipe;

typedef struct eng_targ {
    int kind;      /* enum eng_targ_kind */
    int id;        /* position in document order (see eng_tmpl.cut_id) */
    int line;
    const char *name;       /* ENG_TA_VAR: "$x"; ENG_TA_FUNC: the function's name */
    const char **fields;    /* field chain */
    size_t n_fields;
    const char *str;        /* ENG_TA_STR */
    size_t str_len;
    int64_t i;              /* ENG_TA_INT */
    double f;               /* ENG_TA_FLOAT */
    bool b;                 /* ENG_TA_BOOL */
    int func;               /* ENG_TA_FUNC */
    eng_tpipe *pipe;        /* ENG_TA_PIPE */
} eng_targ;

typedef struct eng_tcmd {
    eng_targ *args;
    size_t n_args;
    int line;
} eng_tcmd;

struct eng_tpipe {
    int id;
    int line;
    const char *decl[2];  /* declared or assigned variables ("$x") */
    int n_decl;
    bool assign;          /* `=` rather than `:=` */
    eng_tcmd *cmds;
    size_t n_cmds;
};

enum eng_tnode_kind {
    ENG_TN_TEXT,
    ENG_TN_ACTION,
    ENG_TN_IF,
    ENG_TN_RANGE,
    ENG_TN_WITH,
    ENG_TN_BREAK,
    ENG_TN_CONTINUE,
};

typedef struct eng_tnode eng_tnode;
typedef struct eng_tlist {
    eng_tnode **nodes;
    size_t n;
    size_t cap;
} eng_tlist;

struct eng_tnode {
    int kind;  /* enum eng_tnode_kind */
    int id;
    int line;
    const char *text;  /* ENG_TN_TEXT */
    size_t text_len;
    eng_tpipe *pipe;   /* ACTION, IF, RANGE, WITH */
    eng_tlist list;    /* IF, RANGE, WITH: the body */
    eng_tlist else_list; /* `else`: an `else if`/`else with` is one nested node here */
    bool has_else;
};

struct eng_tmpl {
    eng_tarena arena;   /* owns every node, argument and string below */
    eng_tlist root;
    /* The id of the first `.Response` field in an action's pipeline, in document order, or -1.
     * Ollama renders the last turn of a legacy template with everything after it removed. */
    int cut_id;
    bool uses_messages, uses_response, uses_suffix, uses_tools;
};

// ---- values ----

enum eng_tval_kind { ENG_TV_NIL, ENG_TV_BOOL, ENG_TV_INT, ENG_TV_FLOAT, ENG_TV_STR,
                     ENG_TV_LIST, ENG_TV_MAP };

typedef struct eng_tval eng_tval;

typedef struct eng_tmap_entry eng_tmap_entry;

/* A value. Strings, lists and maps are borrowed views: into the caller's data, the template,
 * or the render's arena; they live until the render ends. Map entries are sorted by key. */
struct eng_tval {
    int kind;  /* enum eng_tval_kind */
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;
        struct { const eng_tval *items; size_t n; } list;
        struct { const eng_tmap_entry *entries; size_t n; } map;
    } u;
};

struct eng_tmap_entry {
    const char *key;
    eng_tval val;
};

// ---- executor state shared with the functions ----

typedef struct eng_texec eng_texec;

/* Render state (one per render, on the caller's stack). */
struct eng_texec {
    const eng_tmpl *t;
    eng_tarena heap;    /* values made while rendering */
    core_buf *out;
    core_err *err;
    int line;           /* line of the command being run, for messages */
    int cut_id;         /* nodes with a larger id are treated as deleted; INT32_MAX = none */
    int64_t steps;
    int depth;
    struct eng_tvar { const char *name; eng_tval val; } *vars;
    size_t n_vars, cap_vars;
};

/* Sets x->err to code and "line N: <message>"; returns code. */
int eng_texec_fail(eng_texec *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Truthiness as Go's text/template: false, 0, nil, "" and empty lists/maps are false. */
bool eng_tval_truth(const eng_tval *v);
/* Appends v as the template prints it (maps and lists as JSON, nil as nothing). */
int eng_tval_print(eng_texec *x, const eng_tval *v, core_buf *out);
/* Appends v as JSON (strings escaped as Go's encoding/json does). */
int eng_tval_json(const eng_tval *v, core_buf *out);
/* A string value copied into the render's arena. */
int eng_tval_str_new(eng_texec *x, const char *s, size_t n, eng_tval *out);
/* A map entry by key (NULL if absent). */
const eng_tval *eng_tval_map_get(const eng_tval *m, const char *key, size_t key_len);
/* The name of a value's kind, for messages ("string", "list", ...). */
const char *eng_tval_kind_name(int kind);

// ---- functions ----

enum { ENG_TF_AND = 0, ENG_TF_OR = 1 }; /* evaluated lazily by the executor */

/* Index of a function by name, or -1. */
int eng_tfunc_find(const char *name, size_t len);
const char *eng_tfunc_name(int f);
/* Calls function f (not and/or) with evaluated arguments. */
int eng_tfunc_call(eng_texec *x, int f, const eng_tval *args, size_t n, eng_tval *out);

// ---- lexer (template_lex.c) ----

enum eng_ttok_type {
    ENG_TK_EOF, ENG_TK_TEXT, ENG_TK_LEFT, ENG_TK_RIGHT, ENG_TK_IDENT, ENG_TK_FIELD, ENG_TK_VAR,
    ENG_TK_DOT, ENG_TK_STR, ENG_TK_RAWSTR, ENG_TK_CHAR, ENG_TK_NUM, ENG_TK_PIPE, ENG_TK_LPAREN,
    ENG_TK_RPAREN, ENG_TK_DECL, ENG_TK_ASSIGN, ENG_TK_COMMA,
};

typedef struct eng_ttok {
    int type;
    const char *p;  /* ENG_TK_FIELD: the name without the dot */
    size_t n;
    int line;
    bool adjacent;  /* no space between this token and the previous one */
} eng_ttok;

typedef struct eng_tlexer {
    const char *src;
    size_t len, pos;
    int line;
    eng_ttok *toks;
    size_t n, cap;
    core_err *err;
} eng_tlexer;

/* Lexes l->src[0, l->len) into l->toks (malloc'd; the caller frees it), ending with
 * ENG_TK_EOF. Errors name the line. */
int eng_tlex_run(eng_tlexer *l);

// ---- parser ----

/* Parses src into t (whose arena is initialised). Errors name the line. */
int eng_tmpl_parse_into(eng_tmpl *t, const char *src, size_t len, core_err *err);

#endif
