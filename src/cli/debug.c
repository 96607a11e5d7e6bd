/* debug.c — `dwell debug …`: inspection commands that open model files directly, used by the
 * tests and by anyone debugging a model. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/internal.h"

static const char g_debug_usage[] =
    "Usage: dwell debug COMMAND [ARGS]\n"
    "\n"
    "Inspect models without a server. Each command takes --help.\n"
    "\n"
    "Commands:\n"
    "  gguf FILE [--json]                 print a GGUF file's metadata and tensor table\n"
    "  mkmodel OUT.gguf [OPTIONS]         write a model with random weights (--help)\n"
    "  tokenize FILE [--bos] [--special] [--detok] (--hex HEX | [--] TEXT)\n"
    "                                     print token ids as a JSON array\n"
    "  logits FILE --tokens 1,2,3 [--threads N] [--kv f32|f16] --out OUT\n"
    "                                     write the last position's logits (float32 LE)\n"
    "  generate FILE (--tokens 1,2,3 | --prompt TEXT) [-n 16] [--threads N] [--kv f32|f16]\n"
    "                                     greedy continuation as a JSON array of ids\n";

int cli_debug_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(g_debug_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"gguf", cli_debug_gguf},         {"mkmodel", cli_debug_mkmodel},
        {"tokenize", cli_debug_tokenize}, {"logits", cli_debug_logits},
        {"generate", cli_debug_generate},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "Error: unknown debug command \"%s\" (see 'dwell debug --help')\n", argv[1]);
    return 1;
}
