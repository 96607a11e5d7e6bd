/* server.h — `dwell serve`: Ollama's HTTP API on libmicrohttpd. */
#ifndef DWELL_SERVER_H
#define DWELL_SERVER_H

/* Runs the server until SIGINT/SIGTERM; argv[0] is "serve". Returns the exit code. */
int srv_serve_main(int argc, char **argv);

#endif
