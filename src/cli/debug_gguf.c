/* debug_gguf.c — placeholder until the command is written. */
#include <stdio.h>

#include "cli/internal.h"

int cli_debug_gguf(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "Error: dwell debug %s is not implemented yet\n", argv[0]);
    return 1;
}
