/* cmd_show.c — `dwell show MODEL`: a model's summary (architecture, parameters, context,
 * capabilities, parameters, system, license; metadata and tensors with -v) or one of its
 * parts (--modelfile, --template, --parameters, --system, --license), from /api/show. */
#include <stdlib.h>
#include <string.h>

#include "cli/internal.h"

/* A JSON value as one table cell (strings bare, the rest as compact JSON). */
static char *cell_of(json_t *v)
{
    if (json_is_string(v)) return strdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : strdup("");
}

static void section(const char *title, cli_table *t, FILE *f)
{
    if (t->n_cells == 0) return;
    fprintf(f, "  %s\n", title);
    cli_table_print(t, "    ", f);
    fputc('\n', f);
}

static void row2(cli_table *t, const char *a, const char *b)
{
    cli_table_add(t, a);
    cli_table_add(t, b);
}

/* The first two non-empty lines of a text section (System, License). */
static void text_section(const char *title, const char *text, FILE *f)
{
    cli_table t;
    cli_table_init(&t, 1);
    int shown = 0;
    const char *p = text;
    while (*p && shown < 2) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        while (len && (p[0] == ' ' || p[0] == '\t'))
            p++, len--;
        if (len) {
            char *line = strndup(p, len);
            if (line) cli_table_add(&t, line);
            free(line);
            shown++;
        }
        p += len + (nl ? 1 : 0);
        if (!nl) break;
    }
    section(title, &t, f);
    cli_table_deinit(&t);
}

static void model_section(json_t *show, FILE *f)
{
    json_t *info = json_object_get(show, "model_info");
    json_t *det = json_object_get(show, "details");
    const char *arch = cli_jstr(info, "general.architecture");
    cli_table t;
    cli_table_init(&t, 2);
    if (arch[0]) row2(&t, "architecture", arch);
    row2(&t, "parameters", cli_jstr(det, "parameter_size"));
    const char *lens[][2] = {{"context_length", "context length"},
                             {"embedding_length", "embedding length"}};
    for (int i = 0; i < 2; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s.%s", arch, lens[i][0]);
        json_t *v = json_object_get(info, key);
        if (!v) continue;
        char *c = cell_of(v);
        row2(&t, lens[i][1], c ? c : "");
        free(c);
    }
    row2(&t, "quantization", cli_jstr(det, "quantization_level"));
    section("Model", &t, f);
    cli_table_deinit(&t);
}

/* "parameters" is "key   value" lines; shown as a two-column table. */
static void parameters_section(json_t *show, FILE *f)
{
    cli_table t;
    cli_table_init(&t, 2);
    char *params = strdup(cli_jstr(show, "parameters"));
    for (char *save = NULL, *line = params ? strtok_r(params, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = line + strcspn(line, " \t");
        char *val = sp + strspn(sp, " \t");
        if (*sp) *sp = 0;
        row2(&t, line, val);
    }
    free(params);
    section("Parameters", &t, f);
    cli_table_deinit(&t);
}

/* -v: every metadata key and the tensor table. */
static void verbose_sections(json_t *show, FILE *f)
{
    cli_table t;
    cli_table_init(&t, 2);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(show, "model_info"), k, v)
    {
        char *c = cell_of(v);
        row2(&t, k, c ? c : "");
        free(c);
    }
    section("Metadata", &t, f);
    cli_table_deinit(&t);
    cli_table_init(&t, 3);
    size_t i;
    json_array_foreach(json_object_get(show, "tensors"), i, v)
    {
        char *shape = cell_of(json_object_get(v, "shape"));
        cli_table_add(&t, cli_jstr(v, "name"));
        cli_table_add(&t, cli_jstr(v, "type"));
        cli_table_add(&t, shape ? shape : "");
        free(shape);
    }
    section("Tensors", &t, f);
    cli_table_deinit(&t);
}

void cli_show_info(json_t *show, bool verbose, FILE *f)
{
    model_section(show, f);
    cli_table t;
    cli_table_init(&t, 1);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(show, "capabilities"), i, v)
        cli_table_add(&t, json_string_value(v));
    section("Capabilities", &t, f);
    cli_table_deinit(&t);
    parameters_section(show, f);
    if (verbose) verbose_sections(show, f);
    text_section("System", cli_jstr(show, "system"), f);
    text_section("License", cli_jstr(show, "license"), f);
}

int cli_cmd_show(int argc, char **argv)
{
    cli_flag flags[] = {
        {"license", 0, NULL, "Show license of a model", false, NULL},
        {"modelfile", 0, NULL, "Show Modelfile of a model", false, NULL},
        {"parameters", 0, NULL, "Show parameters of a model", false, NULL},
        {"template", 0, NULL, "Show template of a model", false, NULL},
        {"system", 0, NULL, "Show system message of a model", false, NULL},
        {"verbose", 'v', NULL, "Show detailed model information", false, NULL},
    };
    cli_cmd cmd = {"show", "MODEL", "Show information for a model", flags, 6, 1, 1};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    const char *field = NULL;
    for (int i = 0; i < 5; i++) {
        if (!flags[i].set) continue;
        if (field) {
            fprintf(stderr, "Error: only one of '--license', '--modelfile', '--parameters', "
                            "'--system', or '--template' can be specified\n");
            return 1;
        }
        field = flags[i].name;
    }
    json_t *req = json_pack("{s:s,s:b}", "model", pos[0], "verbose", flags[5].set), *res;
    core_err err;
    rc = cli_http_json("POST", "/api/show", req, &res, NULL, &err);
    json_decref(req);
    if (rc) return cli_err_print(&err);
    if (field) {
        const char *s = cli_jstr(res, field);
        fputs(s, stdout);
        if (s[0] && s[strlen(s) - 1] != '\n') fputc('\n', stdout);
    } else {
        cli_show_info(res, flags[5].set, stdout);
    }
    json_decref(res);
    return 0;
}
