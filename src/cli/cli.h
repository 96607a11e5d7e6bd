/* cli.h — the dwell command line (everything but `serve`, which main.c hands to server/).
 *
 * The commands talk to a running server over HTTP (libcurl) at OLLAMA_HOST; only `dwell
 * debug …` opens model files itself (through engine/ and gguf/). */
#ifndef DWELL_CLI_H
#define DWELL_CLI_H

/* Runs the command in argv (argv[0] is the program name). Returns the process exit code:
 * 0 on success, 1 on any error (already printed as one `Error: …` line on stderr). */
int cli_main(int argc, char **argv);

/* `dwell debug SUBCOMMAND …`: argv[0] is "debug". */
int cli_debug_main(int argc, char **argv);

#endif
