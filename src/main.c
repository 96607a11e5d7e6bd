/* main.c — the dwell executable: `dwell serve` runs the server, everything else is the
 * command line. Only main decides the exit code. */
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) return srv_serve_main(argc - 1, argv + 1);
    return cli_main(argc, argv);
}
