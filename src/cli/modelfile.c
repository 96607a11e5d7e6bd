/* modelfile.c — reads a Modelfile (spec appendix C) into the /api/create request.
 *
 * Instructions are case-insensitive, one per line, `#` starts a comment line. A value is the
 * rest of the line, a "double-quoted" string or a """triple-quoted""" string that may span
 * lines. PARAMETER values get their JSON type here (the server checks them again); `stop`
 * accumulates; `keep_alive` is a duration typed by a person and is stored with its unit
 * (DESIGN.md §2), so "PARAMETER keep_alive 10" is "10m0s" in the model. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/internal.h"

// ---- parameter values ----

enum { P_INT, P_FLOAT, P_BOOL, P_STOP, P_DURATION };

static const struct {
    const char *name;
    int type;
} g_params[] = {
    {"num_ctx", P_INT},
    {"num_batch", P_INT},
    {"num_gpu", P_INT},
    {"main_gpu", P_INT},
    {"num_thread", P_INT},
    {"num_keep", P_INT},
    {"seed", P_INT},
    {"num_predict", P_INT},
    {"top_k", P_INT},
    {"repeat_last_n", P_INT},
    {"mirostat", P_INT},
    {"temperature", P_FLOAT},
    {"top_p", P_FLOAT},
    {"min_p", P_FLOAT},
    {"typical_p", P_FLOAT},
    {"repeat_penalty", P_FLOAT},
    {"presence_penalty", P_FLOAT},
    {"frequency_penalty", P_FLOAT},
    {"mirostat_tau", P_FLOAT},
    {"mirostat_eta", P_FLOAT},
    {"tfs_z", P_FLOAT},
    {"penalize_newline", P_BOOL},
    {"use_mmap", P_BOOL},
    {"use_mlock", P_BOOL},
    {"numa", P_BOOL},
    {"low_vram", P_BOOL},
    {"stop", P_STOP},
    {"keep_alive", P_DURATION},
};

int cli_param_set(json_t *params, const char *name, const char *value, core_err *err)
{
    int type = -1;
    for (size_t i = 0; i < sizeof g_params / sizeof g_params[0]; i++)
        if (strcasecmp(g_params[i].name, name) == 0)
            type = g_params[i].type, name = g_params[i].name;
    if (type < 0) return core_err_set(err, CORE_INVALID, "unknown parameter '%s'", name);
    char *end;
    json_t *v = NULL;
    switch (type) {
    case P_INT: {
        errno = 0;
        long long n = strtoll(value, &end, 10);
        if (errno || end == value || *end)
            return core_err_set(err, CORE_INVALID, "invalid int value [%s] for %s", value, name);
        v = json_integer(n);
        break;
    }
    case P_FLOAT: {
        double d = strtod(value, &end);
        if (end == value || *end)
            return core_err_set(err, CORE_INVALID, "invalid float value [%s] for %s", value, name);
        v = json_real(d);
        break;
    }
    case P_BOOL:
        if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
            v = json_true();
        else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0)
            v = json_false();
        else
            return core_err_set(err, CORE_INVALID, "invalid bool value [%s] for %s", value, name);
        break;
    case P_STOP: {
        json_t *arr = json_object_get(params, "stop");
        if (!json_is_array(arr)) {
            arr = json_array();
            json_object_set_new(params, "stop", arr);
        }
        json_array_append_new(arr, json_string(value));
        return CORE_OK;
    }
    case P_DURATION: {
        char buf[32];
        int rc = cli_keepalive_arg(value, "keep_alive", buf, sizeof buf, err);
        if (rc) return rc;
        v = json_string(buf);
        break;
    }
    }
    json_object_set_new(params, name, v);
    return CORE_OK;
}

// ---- lines and values ----

typedef struct mf_reader {
    const char *p;
    int line;
    core_err *err;
} mf_reader;

/* Reads a value starting at r->p (after the instruction's whitespace) into out; a
 * triple-quoted value may run over several lines. */
static int read_value(mf_reader *r, core_buf *out)
{
    const char *p = r->p;
    if (strncmp(p, "\"\"\"", 3) == 0) {
        const char *end = strstr(p + 3, "\"\"\"");
        if (!end)
            return core_err_set(r->err, CORE_INVALID, "line %d: unterminated \"\"\" string",
                                r->line);
        for (const char *q = p; q < end; q++)
            r->line += *q == '\n';
        core_buf_append(out, p + 3, (size_t)(end - p - 3));
        p = end + 3;
    } else if (*p == '"') {
        for (p++; *p && *p != '"' && *p != '\n'; p++) {
            if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
            core_buf_append(out, p, 1);
        }
        if (*p != '"')
            return core_err_set(r->err, CORE_INVALID, "line %d: unterminated quoted string",
                                r->line);
        p++;
    } else {
        const char *e = p + strcspn(p, "\n");
        const char *t = e;
        while (t > p && isspace((unsigned char)t[-1]))
            t--;
        core_buf_append(out, p, (size_t)(t - p));
        p = e;
    }
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    if (*p && *p != '\n')
        return core_err_set(r->err, CORE_INVALID, "line %d: unexpected text after the value",
                            r->line);
    r->p = p;
    if (core_buf_reserve(out, 1)) return core_err_set(r->err, CORE_NOMEM, "out of memory");
    out->data[out->len] = 0;
    return CORE_OK;
}

/* One word (PARAMETER's name, MESSAGE's role) at r->p; skips the whitespace after it. */
static int read_word(mf_reader *r, char *buf, size_t cap, const char *what)
{
    size_t n = strcspn(r->p, " \t\r\n");
    if (n == 0 || n >= cap)
        return core_err_set(r->err, CORE_INVALID, "line %d: missing %s", r->line, what);
    memcpy(buf, r->p, n);
    buf[n] = 0;
    r->p += n;
    r->p += strspn(r->p, " \t");
    return CORE_OK;
}

/* A FROM or ADAPTER value that names a file: "~/x", a path relative to the Modelfile's folder
 * or an absolute one. Returns NULL when it does not name an existing file. */
static char *resolve_path(const char *v, const char *mf_path, bool must)
{
    char buf[4096];
    if (v[0] == '~' && v[1] == '/' && getenv("HOME")) {
        snprintf(buf, sizeof buf, "%s%s", getenv("HOME"), v + 1);
    } else if (v[0] == '/') {
        snprintf(buf, sizeof buf, "%s", v);
    } else {
        const char *slash = strrchr(mf_path, '/');
        if (slash)
            snprintf(buf, sizeof buf, "%.*s/%s", (int)(slash - mf_path), mf_path, v);
        else
            snprintf(buf, sizeof buf, "%s", v);
    }
    struct stat sb;
    if (stat(buf, &sb) == 0 || must) return strdup(buf);
    return NULL;
}

static bool looks_like_path(const char *v)
{
    return v[0] == '/' || v[0] == '.' || v[0] == '~' || strstr(v, ".gguf") != NULL;
}

// ---- instructions ----

static int apply(mf_reader *r, char *ins, const char *mf_path, cli_modelfile *mf)
{
    core_buf val;
    core_buf_init(&val);
    char word[64];
    int rc = CORE_OK;
    if (strcasecmp(ins, "parameter") == 0) {
        if (!(rc = read_word(r, word, sizeof word, "parameter name")) &&
            !(rc = read_value(r, &val))) {
            json_t *params = json_object_get(mf->req, "parameters");
            if (!params) json_object_set_new(mf->req, "parameters", params = json_object());
            core_err e;
            if (cli_param_set(params, word, val.data, &e))
                rc = core_err_set(r->err, CORE_INVALID, "line %d: %s", r->line, e.msg);
        }
    } else if (strcasecmp(ins, "message") == 0) {
        if (!(rc = read_word(r, word, sizeof word, "message role")) &&
            !(rc = read_value(r, &val))) {
            for (char *c = word; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            if (strcmp(word, "system") && strcmp(word, "user") && strcmp(word, "assistant")) {
                rc = core_err_set(r->err, CORE_INVALID,
                                  "line %d: message role must be one of "
                                  "\"system\", \"user\", or \"assistant\"",
                                  r->line);
            } else {
                json_t *msgs = json_object_get(mf->req, "messages");
                if (!msgs) json_object_set_new(mf->req, "messages", msgs = json_array());
                json_array_append_new(msgs,
                                      json_pack("{s:s,s:s}", "role", word, "content", val.data));
            }
        }
    } else if ((rc = read_value(r, &val)) != CORE_OK) {
    } else if (strcasecmp(ins, "from") == 0) {
        free(mf->from_path), free(mf->from_model);
        mf->from_path = resolve_path(val.data, mf_path, looks_like_path(val.data));
        mf->from_model = mf->from_path ? NULL : strdup(val.data);
    } else if (strcasecmp(ins, "adapter") == 0) {
        free(mf->adapter_path);
        mf->adapter_path = resolve_path(val.data, mf_path, true);
    } else if (strcasecmp(ins, "template") == 0 || strcasecmp(ins, "system") == 0) {
        for (char *c = ins; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        json_object_set_new(mf->req, ins, json_string(val.data));
    } else if (strcasecmp(ins, "license") == 0) {
        json_t *lic = json_object_get(mf->req, "license");
        if (!lic) json_object_set_new(mf->req, "license", lic = json_array());
        json_array_append_new(lic, json_string(val.data));
    } else {
        rc = core_err_set(r->err, CORE_INVALID,
                          "line %d: command must be one of \"from\", "
                          "\"license\", \"template\", \"system\", \"adapter\", \"parameter\", "
                          "or \"message\"",
                          r->line);
    }
    core_buf_deinit(&val);
    return rc;
}

int cli_modelfile_parse(const char *text, const char *path, cli_modelfile *mf, core_err *err)
{
    memset(mf, 0, sizeof *mf);
    mf->req = json_object();
    mf_reader r = {text, 1, err};
    while (*r.p) {
        r.p += strspn(r.p, " \t\r");
        if (*r.p == '\n' || *r.p == '#' || !*r.p) {
            r.p += strcspn(r.p, "\n");
            if (*r.p == '\n') r.p++, r.line++;
            continue;
        }
        char ins[32];
        size_t n = strcspn(r.p, " \t\r\n");
        snprintf(ins, sizeof ins, "%.*s", (int)(n < sizeof ins - 1 ? n : sizeof ins - 1), r.p);
        r.p += n;
        r.p += strspn(r.p, " \t");
        int rc = apply(&r, ins, path, mf);
        if (rc) {
            cli_modelfile_deinit(mf);
            return rc;
        }
    }
    if (!mf->from_path && !mf->from_model) {
        cli_modelfile_deinit(mf);
        return core_err_set(err, CORE_INVALID, "no FROM line");
    }
    return CORE_OK;
}

void cli_modelfile_deinit(cli_modelfile *mf)
{
    free(mf->from_path);
    free(mf->from_model);
    free(mf->adapter_path);
    json_decref(mf->req);
    memset(mf, 0, sizeof *mf);
}
