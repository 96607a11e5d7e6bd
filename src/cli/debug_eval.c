/* debug_eval.c — placeholder until the commands are written. */
#include <stdio.h>

#include "cli/internal.h"

int cli_debug_logits(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "Error: dwell debug %s is not implemented yet\n", argv[0]);
    return 1;
}

int cli_debug_generate(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "Error: dwell debug %s is not implemented yet\n", argv[0]);
    return 1;
}
