/* serve.c — placeholder until the server is written. */
#include <stdio.h>

#include "server/server.h"

int srv_serve_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "Error: dwell serve is not implemented yet\n");
    return 1;
}
