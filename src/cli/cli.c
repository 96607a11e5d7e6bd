/* cli.c — command dispatch for the dwell command line, `dwell help` and `dwell --version`.
 *
 * Every command but `serve` (main.c) and `debug` (debug.c) talks to the server over HTTP at
 * OLLAMA_HOST. The command names, their aliases and the messages follow Ollama's CLI (spec
 * section J); `stats` is dwell's own. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "cli/internal.h"

static const struct {
    const char *name;
    const char *alias;
    int (*fn)(int, char **);
    const char *help;
} g_cmds[] = {
    {"serve", NULL, NULL, "Start dwell"},
    {"create", NULL, cli_cmd_create, "Create a model from a Modelfile"},
    {"show", NULL, cli_cmd_show, "Show information for a model"},
    {"run", NULL, cli_cmd_run, "Run a model"},
    {"pull", NULL, cli_cmd_pull, "Pull a model from a registry"},
    {"stop", NULL, cli_cmd_stop, "Stop a running model"},
    {"list", "ls", cli_cmd_list, "List models"},
    {"ps", NULL, cli_cmd_ps, "List running models"},
    {"stats", NULL, cli_cmd_stats, "Show what is in memory, live (like docker stats)"},
    {"cp", NULL, cli_cmd_cp, "Copy a model"},
    {"rm", NULL, cli_cmd_rm, "Remove a model"},
    {"debug", NULL, cli_debug_main,
     "Inspect model files (gguf, mkmodel, tokenize, logits, "
     "generate)"},
    {"help", NULL, NULL, "Help about any command"},
};
#define N_CMDS (sizeof g_cmds / sizeof g_cmds[0])

static void usage(FILE *f)
{
    fputs("Large language model runner\n\n"
          "Usage:\n"
          "  dwell [flags]\n"
          "  dwell [command]\n"
          "\n"
          "Available Commands:\n",
          f);
    for (size_t i = 0; i < N_CMDS; i++)
        fprintf(f, "  %-11s %s\n", g_cmds[i].name, g_cmds[i].help);
    fputs("\n"
          "Flags:\n"
          "  -h, --help      help for dwell\n"
          "  -v, --version   Show version information\n"
          "\n"
          "Use \"dwell [command] --help\" for more information about a command.\n",
          f);
}

/* `dwell --version`: the server's version when one answers, and the client's. */
static int version(void)
{
    json_t *v;
    core_err err;
    if (cli_http_json("GET", "/api/version", NULL, &v, NULL, &err) == CORE_OK) {
        const char *dv = json_string_value(json_object_get(v, "dwell_version"));
        const char *ov = json_string_value(json_object_get(v, "version"));
        printf("dwell version is %s (Ollama API %s)\n", dv ? dv : "unknown", ov ? ov : "unknown");
        if (!dv || strcmp(dv, DWELL_VERSION) != 0)
            printf("Warning: client version is %s\n", DWELL_VERSION);
        json_decref(v);
    } else {
        printf("Warning: could not connect to a running dwell instance\n");
        printf("Warning: client version is %s (Ollama API %s)\n", DWELL_VERSION,
               DWELL_OLLAMA_VERSION);
    }
    return 0;
}

static int find_cmd(const char *name)
{
    for (size_t i = 0; i < N_CMDS; i++)
        if (strcmp(name, g_cmds[i].name) == 0 ||
            (g_cmds[i].alias && strcmp(name, g_cmds[i].alias) == 0))
            return (int)i;
    return -1;
}

/* `dwell help [COMMAND]` is `dwell COMMAND --help`. */
static int help(int argc, char **argv)
{
    if (argc < 3) {
        usage(stdout);
        return 0;
    }
    int i = find_cmd(argv[2]);
    if (i < 0 || !g_cmds[i].fn) {
        if (i >= 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "Error: unknown help topic \"%s\"\n", argv[2]);
        return 1;
    }
    char *args[] = {argv[2], (char *)"--help", NULL};
    return g_cmds[i].fn(2, args);
}

int cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0) return help(argc, argv);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = version();
        curl_global_cleanup();
        return rc;
    }
    if (strcmp(argv[1], "debug") == 0) return cli_debug_main(argc - 1, argv + 1);
    int i = find_cmd(argv[1]);
    if (i < 0 || !g_cmds[i].fn) {
        if (argv[1][0] == '-')
            fprintf(stderr, "Error: unknown flag: %s\n", argv[1]);
        else
            fprintf(stderr, "Error: unknown command \"%s\" for \"dwell\"\n", argv[1]);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = g_cmds[i].fn(argc - 1, argv + 1);
    curl_global_cleanup();
    return rc;
}
