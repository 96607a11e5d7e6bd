/* cli.c — command dispatch for the dwell command line. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

static const char g_usage[] =
    "Usage:\n"
    "  dwell [flags]\n"
    "  dwell [command]\n"
    "\n"
    "Available Commands:\n"
    "  serve       Start dwell\n"
    "  debug       Inspect model files (gguf, mkmodel, tokenize, logits, generate)\n"
    "  help        Help about any command\n"
    "\n"
    "Flags:\n"
    "  -h, --help      help for dwell\n"
    "  -v, --version   Show version information\n";

int cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(g_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
        printf("dwell version is %s (Ollama API %s)\n", DWELL_VERSION, DWELL_OLLAMA_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "debug") == 0) return cli_debug_main(argc - 1, argv + 1);
    fprintf(stderr, "Error: unknown command \"%s\" for \"dwell\"\n", argv[1]);
    return 1;
}
