/* args.c — flag and argument parsing for the dwell commands, with cobra's wording for errors
 * ("unknown flag: --x", "accepts 1 arg(s), received 2") and its help layout, since Ollama's
 * CLI is built on cobra and people (and scripts) know those messages. */
#include <stdio.h>
#include <string.h>

#include "cli/internal.h"

cli_flag *cli_flag_get(cli_cmd *cmd, const char *name)
{
    for (size_t i = 0; i < cmd->n_flags; i++)
        if (strcmp(cmd->flags[i].name, name) == 0) return &cmd->flags[i];
    core_assert_fail("unknown flag name", __FILE__, __LINE__); /* a programmer error */
}

void cli_cmd_help(const cli_cmd *cmd, FILE *f)
{
    fprintf(f, "%s\n\nUsage:\n  dwell %s%s%s [flags]\n\nFlags:\n", cmd->short_help, cmd->name,
            cmd->usage[0] ? " " : "", cmd->usage);
    /* Column of the help texts: after the longest "-x, --name type". */
    size_t w = strlen("-h, --help");
    for (size_t i = 0; i < cmd->n_flags; i++) {
        const cli_flag *fl = &cmd->flags[i];
        size_t n = 6 + strlen(fl->name) + (fl->value_name ? 1 + strlen(fl->value_name) : 0);
        if (n > w) w = n;
    }
    for (size_t i = 0; i <= cmd->n_flags; i++) {
        char left[128];
        if (i == cmd->n_flags) {
            snprintf(left, sizeof left, "-h, --help");
        } else {
            const cli_flag *fl = &cmd->flags[i];
            snprintf(left, sizeof left, "%c%c%c --%s%s%s", fl->short_name ? '-' : ' ',
                     fl->short_name ? fl->short_name : ' ', fl->short_name ? ',' : ' ', fl->name,
                     fl->value_name ? " " : "", fl->value_name ? fl->value_name : "");
        }
        if (i == cmd->n_flags)
            fprintf(f, "  %-*s   help for %s\n", (int)w, left, cmd->name);
        else
            fprintf(f, "  %-*s   %s\n", (int)w, left, cmd->flags[i].help);
    }
    fprintf(f, "\nEnvironment Variables:\n"
               "      OLLAMA_HOST                The dwell server's address (default "
               "127.0.0.1:11434)\n");
    if (strcmp(cmd->name, "run") == 0)
        fprintf(f, "      OLLAMA_KEEP_ALIVE          How long the model stays loaded after "
                   "each answer (a bare number is minutes)\n");
}

static cli_flag *find_long(cli_cmd *cmd, const char *name, size_t len)
{
    for (size_t i = 0; i < cmd->n_flags; i++)
        if (strlen(cmd->flags[i].name) == len && strncmp(cmd->flags[i].name, name, len) == 0)
            return &cmd->flags[i];
    return NULL;
}

static cli_flag *find_short(cli_cmd *cmd, char c)
{
    for (size_t i = 0; i < cmd->n_flags; i++)
        if (cmd->flags[i].short_name == c) return &cmd->flags[i];
    return NULL;
}

/* One "--name[=value]" or "-x" at argv[*i]; may consume argv[*i + 1]. */
static int parse_flag(cli_cmd *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    cli_flag *fl;
    const char *inline_val = NULL;
    if (a[1] == '-') {
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 4 && strncmp(name, "help", 4) == 0) return CLI_ARGS_HELP;
        fl = find_long(cmd, name, len);
        if (!fl) {
            fprintf(stderr, "Error: unknown flag: --%.*s\n", (int)len, name);
            return CLI_ARGS_ERROR;
        }
        if (eq) inline_val = eq + 1;
    } else {
        if (a[1] == 'h' && a[2] == 0) return CLI_ARGS_HELP;
        fl = find_short(cmd, a[1]);
        if (!fl) {
            fprintf(stderr, "Error: unknown shorthand flag: '%c' in %s\n", a[1], a);
            return CLI_ARGS_ERROR;
        }
        if (a[2]) inline_val = a[2] == '=' ? a + 3 : a + 2;
    }
    fl->set = true;
    if (!fl->value_name) {
        if (inline_val && strcmp(inline_val, "true") != 0) {
            if (strcmp(inline_val, "false") == 0) {
                fl->set = false;
                return CLI_ARGS_OK;
            }
            fprintf(stderr,
                    "Error: invalid argument \"%s\" for \"--%s\" flag: strconv.ParseBool: "
                    "parsing \"%s\": invalid syntax\n",
                    inline_val, fl->name, inline_val);
            return CLI_ARGS_ERROR;
        }
        return CLI_ARGS_OK;
    }
    if (inline_val) {
        fl->value = inline_val;
    } else if (*i + 1 < argc) {
        fl->value = argv[++*i];
    } else {
        fprintf(stderr, "Error: flag needs an argument: --%s\n", fl->name);
        return CLI_ARGS_ERROR;
    }
    return CLI_ARGS_OK;
}

int cli_args_parse(cli_cmd *cmd, int argc, char **argv, const char **pos, int *n_pos)
{
    *n_pos = 0;
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_done && strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (!flags_done && a[0] == '-' && a[1] != 0) {
            int rc = parse_flag(cmd, argc, argv, &i);
            if (rc == CLI_ARGS_HELP) cli_cmd_help(cmd, stdout);
            if (rc) return rc;
            continue;
        }
        pos[(*n_pos)++] = a;
    }
    int n = *n_pos;
    if (cmd->min_args == cmd->max_args && n != cmd->min_args) {
        fprintf(stderr, "Error: accepts %d arg(s), received %d\n", cmd->min_args, n);
        return CLI_ARGS_ERROR;
    }
    if (n < cmd->min_args) {
        fprintf(stderr, "Error: requires at least %d arg(s), only received %d\n", cmd->min_args, n);
        return CLI_ARGS_ERROR;
    }
    if (cmd->max_args >= 0 && n > cmd->max_args) {
        fprintf(stderr, "Error: accepts at most %d arg(s), received %d\n", cmd->max_args, n);
        return CLI_ARGS_ERROR;
    }
    return CLI_ARGS_OK;
}
