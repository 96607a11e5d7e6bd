/* internal.h — shared between the cli/ files only.
 *
 * The CLI runs on the process's main thread (the spinner in format.c has a helper thread of
 * its own that only writes to stderr). Every command returns the process exit code and has
 * already printed any error as one `Error: …` line on stderr. */
#ifndef DWELL_CLI_INTERNAL_H
#define DWELL_CLI_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/core.h"

/* Debug subcommands; argv[0] is the subcommand name. Each returns an exit code. */
int cli_debug_gguf(int argc, char **argv);     /* debug_gguf.c */
int cli_debug_mkmodel(int argc, char **argv);  /* debug_mkmodel.c */
int cli_debug_tokenize(int argc, char **argv); /* debug_tok.c */
int cli_debug_logits(int argc, char **argv);   /* debug_eval.c */
int cli_debug_generate(int argc, char **argv); /* debug_eval.c */

// ---- commands (argv[0] is the command name; each returns an exit code) ----

int cli_cmd_run(int argc, char **argv);    /* cmd_run.c */
int cli_cmd_ps(int argc, char **argv);     /* cmd_ps.c */
int cli_cmd_stop(int argc, char **argv);   /* cmd_ps.c */
int cli_cmd_list(int argc, char **argv);   /* cmd_ps.c */
int cli_cmd_show(int argc, char **argv);   /* cmd_show.c */
int cli_cmd_create(int argc, char **argv); /* cmd_create.c */
int cli_cmd_cp(int argc, char **argv);     /* cmd_create.c */
int cli_cmd_rm(int argc, char **argv);     /* cmd_create.c */
int cli_cmd_stats(int argc, char **argv);  /* cmd_stats.c */
int cli_cmd_pull(int argc, char **argv);   /* cmd_pull.c */

/* Pulls model through the server's /api/pull, showing the progress on stderr (a redrawn bar
 * on a terminal, plain lines otherwise). Used by `pull` and by `run` for a missing model. */
int cli_pull(const char *model, bool insecure, core_err *err);

// ---- arguments (args.c) ----

/* One flag of a command. The parser fills `set` and `value`. */
typedef struct cli_flag {
    const char *name;       /* long name without "--" */
    char short_name;        /* 'f', or 0 */
    const char *value_name; /* "string" for a flag that takes a value, NULL for a switch */
    const char *help;
    bool set;
    const char *value; /* points into argv */
} cli_flag;

typedef struct cli_cmd {
    const char *name;  /* "run" */
    const char *usage; /* "MODEL [PROMPT]" */
    const char *short_help;
    cli_flag *flags;
    size_t n_flags;
    int min_args, max_args; /* positional arguments; max -1 = any */
} cli_cmd;

enum { CLI_ARGS_OK = 0, CLI_ARGS_ERROR = 1, CLI_ARGS_HELP = 2 };

/* Parses argv (argv[0] is the command name) into cmd->flags and the positional arguments
 * (pointers into argv; pos needs room for argc). `--` ends the flags. Prints the help on
 * -h/--help (CLI_ARGS_HELP) and an `Error: …` line on a bad flag or argument count
 * (CLI_ARGS_ERROR). */
int cli_args_parse(cli_cmd *cmd, int argc, char **argv, const char **pos, int *n_pos);
/* Prints a command's help (cobra's layout) to f. */
void cli_cmd_help(const cli_cmd *cmd, FILE *f);
/* The flag named `name` of cmd (CORE_ASSERT that it exists). */
cli_flag *cli_flag_get(cli_cmd *cmd, const char *name);

// ---- HTTP to the server (http.c) ----

/* Set by the SIGINT handler that cli_sigint_install puts in place; the transfer callbacks
 * check it and abort the request (the server then cancels the generation). */
extern volatile sig_atomic_t cli_interrupted;
/* Installs the SIGINT handler (without SA_RESTART, so a blocking read returns EINTR). */
void cli_sigint_install(void);

/* The server address from OLLAMA_HOST as "host:port" (default 127.0.0.1:11434). */
const char *cli_host(void);
/* Prints `Error: <msg>` on stderr and returns 1 (the exit code). */
int cli_err_print(const core_err *err);

/* A request with an optional JSON body (NULL: none). A 2xx answer stores the parsed JSON body
 * in *out if out is not NULL (NULL when the body is empty). Otherwise the server's "error"
 * message is returned: CORE_NOTFOUND for 404, CORE_INVALID for other 4xx, CORE_PROTOCOL for
 * the rest; an unreachable server gives CORE_IO with "could not connect to a dwell server at
 * HOST, run 'dwell serve' to start it". *status (may be NULL) gets the HTTP status. */
int cli_http_json(const char *method, const char *path, json_t *body, json_t **out, long *status,
                  core_err *err);

/* Called once per NDJSON object of a streamed answer. Returning nonzero stops the transfer
 * (cli_http_stream then returns CORE_CANCELLED). `obj` is borrowed. */
typedef int (*cli_line_fn)(json_t *obj, void *ud);
/* POSTs body to path and calls fn for each line. A line `{"error":…}` ends the stream with
 * that message (CORE_PROTOCOL). Ctrl-C (cli_interrupted) aborts it with CORE_CANCELLED. */
int cli_http_stream(const char *path, json_t *body, cli_line_fn fn, void *ud, core_err *err);

/* Called while a file is uploaded. */
typedef void (*cli_upload_fn)(size_t done, size_t total, void *ud);
/* POSTs the file's bytes to path (a blob upload). 200/201 is success. */
int cli_http_upload(const char *path, const char *file, cli_upload_fn fn, void *ud, core_err *err);

// ---- formatting (format.c) ----

/* Ollama's format.HumanBytes: SI units, "4.7 GB", "42 GB", "2 GB", "512 B". buf ≥ 32. */
void cli_human_bytes(int64_t bytes, char *buf, size_t cap);
/* Ollama's humanDuration: "Less than a second", "1 second", "N seconds", "About a minute",
 * "N minutes", "About an hour", "N hours", "N days", "N weeks", "N months", "N years". */
void cli_human_duration(int64_t ns, char *buf, size_t cap);
/* Ollama's HumanTime for wall time t (ns): "<d> from now", "<d> ago", "Forever" (more than
 * 20 years ahead), or `zero` when t is 0. buf ≥ 64. */
void cli_human_time(int64_t t, int64_t now, const char *zero, char *buf, size_t cap);
/* Parses an RFC 3339 time ("2026-11-27T21:45:21.583623085Z", "…-07:00") into wall ns. */
bool cli_time_parse(const char *s, int64_t *out_ns);

/* A duration typed by a person (bare number = minutes, DESIGN.md §2) turned into a string
 * that carries its unit ("2" → "2m0s", "-1" → "-1m", "0" → "0s"). `what` names the source
 * in the error ("OLLAMA_KEEP_ALIVE", "--keepalive"). out ≥ 32. */
int cli_keepalive_arg(const char *typed, const char *what, char *out, size_t cap, core_err *err);

/* A borderless table in Ollama's layout: columns left-aligned, padded to the widest cell and
 * separated by 4 spaces. Cells are copied. */
typedef struct cli_table {
    int n_col;
    size_t n_cells;
    char **cells;
} cli_table;
void cli_table_init(cli_table *t, int n_col);
void cli_table_add(cli_table *t, const char *cell);
void cli_table_print(const cli_table *t, const char *indent, FILE *f);
void cli_table_deinit(cli_table *t);

/* A spinner on stderr while waiting (only when stderr is a terminal): a helper thread
 * redraws "⠋ msg" every 100 ms until cli_spinner_stop erases it. */
void cli_spinner_start(const char *msg);
void cli_spinner_stop(void);

/* A member of a JSON object as a string ("" when absent or not a string) or an integer (0). */
const char *cli_jstr(json_t *obj, const char *key);
int64_t cli_jint(json_t *obj, const char *key);

/* Display width of a UTF-8 string (code points; every one counted as one column). */
size_t cli_utf8_width(const char *s);

// ---- Modelfile (modelfile.c) ----

/* A parsed Modelfile. `from_path` is set when FROM names a local file (resolved against the
 * Modelfile's folder), `from_model` when it names a model. `req` holds the rest of the
 * /api/create request (parameters, template, system, license, messages). */
typedef struct cli_modelfile {
    char *from_path;
    char *from_model;
    char *adapter_path;
    json_t *req;
} cli_modelfile;

/* Parses text (the Modelfile at `path`, for relative FROM/ADAPTER paths and messages).
 * CORE_INVALID with the line number on a bad instruction. */
/* The longest Modelfile `dwell create` reads (its TEMPLATE, SYSTEM and LICENSE included). */
#define CLI_MODELFILE_MAX ((size_t)16 << 20)
int cli_modelfile_parse(const char *text, const char *path, cli_modelfile *mf, core_err *err);
void cli_modelfile_deinit(cli_modelfile *mf);
/* Sets parameter `name` (an option name or keep_alive) in the object params from the text a
 * person typed, with the option's JSON type; `stop` accumulates into an array. CORE_INVALID
 * for an unknown name or a value of the wrong type. */
int cli_param_set(json_t *params, const char *name, const char *value, core_err *err);

// ---- run (cmd_run.c) and the interactive chat (chat.c) ----

/* The state of one `dwell run`. Owner: cli_cmd_run, main thread. */
typedef struct cli_run {
    const char *model;
    char keep_alive[32]; /* with its unit, "" when none is sent */
    bool verbose;
    bool wordwrap;      /* wrap words (only when stdout is a terminal) */
    const char *format; /* "json" or NULL */
    json_t *options;    /* /set parameter values */
    char *system;       /* /set system, or NULL */
    json_t *messages;   /* the chat so far */
    json_t *show;       /* the model's /api/show answer */
} cli_run;

/* Streams one answer: /api/chat when messages is not NULL, /api/generate with prompt
 * otherwise (prompt NULL: only load). The text goes to stdout (word-wrapped on a terminal);
 * *reply (may be NULL) gets the whole text (caller frees). CORE_CANCELLED after Ctrl-C. */
int cli_run_answer(cli_run *run, const char *prompt, json_t *messages, char **reply, core_err *err);
/* The interactive session (chat.c). Returns the exit code. */
int cli_chat_main(cli_run *run);

// ---- show (cmd_show.c), shared with the chat's /show ----

/* Prints `dwell show`'s summary of an /api/show answer. */
void cli_show_info(json_t *show, bool verbose, FILE *f);

#endif
