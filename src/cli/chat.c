/* chat.c — the interactive `dwell run MODEL` session: line editing and history (libedit's
 * readline API, history in ~/.dwell/history), `"""` multi-line messages and the slash
 * commands (/set, /show, /clear, /bye, /?).
 *
 * Signals: SIGINT only sets cli_interrupted (no SA_RESTART). During an answer that aborts the
 * transfer and the session goes on; at the prompt it makes readline return, and the session
 * says how to leave. Ctrl-D on an empty line leaves; the model stays loaded (spec item 82). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli/internal.h"

static const char g_help[] = "Available Commands:\n"
                             "  /set            Set session variables\n"
                             "  /show           Show model information\n"
                             "  /clear          Clear session context\n"
                             "  /bye            Exit\n"
                             "  /?, /help       Help for a command\n"
                             "  /? shortcuts    Help for keyboard shortcuts\n"
                             "\n"
                             "Use \"\"\" to begin a multi-line message.\n\n";

static const char g_help_set[] = "Available Commands:\n"
                                 "  /set parameter ...     Set a parameter\n"
                                 "  /set system <string>   Set system message\n"
                                 "  /set history           Enable history\n"
                                 "  /set nohistory         Disable history\n"
                                 "  /set wordwrap          Enable wordwrap\n"
                                 "  /set nowordwrap        Disable wordwrap\n"
                                 "  /set format json       Enable JSON mode\n"
                                 "  /set noformat          Disable formatting\n"
                                 "  /set verbose           Show LLM stats\n"
                                 "  /set quiet             Disable LLM stats\n\n";

static const char g_help_show[] = "Available Commands:\n"
                                  "  /show info         Show details for this model\n"
                                  "  /show license      Show model license\n"
                                  "  /show modelfile    Show Modelfile for this model\n"
                                  "  /show parameters   Show parameters for this model\n"
                                  "  /show system       Show system message\n"
                                  "  /show template     Show prompt template\n\n";

static const char g_help_keys[] = "Available keyboard shortcuts:\n"
                                  "  Ctrl + a            Move to the beginning of the line (Home)\n"
                                  "  Ctrl + e            Move to the end of the line (End)\n"
                                  "  Ctrl + k            Delete the sentence after the cursor\n"
                                  "  Ctrl + u            Delete the sentence before the cursor\n"
                                  "  Ctrl + w            Delete the word before the cursor\n"
                                  "  Ctrl + l            Clear the screen\n"
                                  "  Ctrl + c            Stop the model from responding\n"
                                  "  Ctrl + d            Exit dwell (/bye)\n\n";

typedef struct chat {
    cli_run *run;
    bool history;
    char history_path[1024];
} chat;

// ---- /set ----

static void set_parameter(chat *c, const char *args)
{
    char name[64];
    size_t n = strcspn(args, " \t");
    const char *value = args + n + strspn(args + n, " \t");
    if (n == 0 || n >= sizeof name || !*value) {
        printf("Usage:\n  /set parameter <name> <value>\n\n");
        return;
    }
    memcpy(name, args, n);
    name[n] = 0;
    core_err err;
    int rc;
    if (strcmp(name, "keep_alive") == 0)
        rc = cli_keepalive_arg(value, "keep_alive", c->run->keep_alive, sizeof c->run->keep_alive,
                               &err);
    else
        rc = cli_param_set(c->run->options, name, value, &err);
    if (rc)
        printf("Couldn't set parameter: %s\n\n", err.msg);
    else
        printf("Set parameter '%s' to '%s'\n", name, value);
}

static void cmd_set(chat *c, const char *args)
{
    cli_run *run = c->run;
    size_t n = strcspn(args, " \t");
    const char *rest = args + n + strspn(args + n, " \t");
    if (n == 9 && strncmp(args, "parameter", 9) == 0) {
        set_parameter(c, rest);
    } else if (n == 6 && strncmp(args, "system", 6) == 0) {
        free(run->system);
        run->system = strdup(rest);
        printf("Set system message.\n");
    } else if (n == 7 && strncmp(args, "verbose", 7) == 0) {
        run->verbose = true;
        printf("Set 'verbose' mode.\n");
    } else if (n == 5 && strncmp(args, "quiet", 5) == 0) {
        run->verbose = false;
        printf("Set 'quiet' mode.\n");
    } else if (n == 8 && strncmp(args, "wordwrap", 8) == 0) {
        run->wordwrap = true;
        printf("Set 'wordwrap' mode.\n");
    } else if (n == 10 && strncmp(args, "nowordwrap", 10) == 0) {
        run->wordwrap = false;
        printf("Set 'nowordwrap' mode.\n");
    } else if (n == 7 && strncmp(args, "history", 7) == 0) {
        c->history = true;
        printf("Set 'history' mode.\n");
    } else if (n == 9 && strncmp(args, "nohistory", 9) == 0) {
        c->history = false;
        printf("Set 'nohistory' mode.\n");
    } else if (n == 6 && strncmp(args, "format", 6) == 0 && strcmp(rest, "json") == 0) {
        run->format = "json";
        printf("Set format to 'json' mode.\n");
    } else if (n == 8 && strncmp(args, "noformat", 8) == 0) {
        run->format = NULL;
        printf("Disabled format.\n");
    } else {
        fputs(g_help_set, stdout);
    }
}

// ---- /show ----

static void show_text(const char *text, const char *none)
{
    if (!text[0]) {
        printf("%s\n", none);
        return;
    }
    fputs(text, stdout);
    if (text[strlen(text) - 1] != '\n') fputc('\n', stdout);
}

static void show_parameters(cli_run *run)
{
    const char *p = cli_jstr(run->show, "parameters");
    if (p[0]) {
        printf("Model defined parameters:\n");
        show_text(p, "");
    } else {
        printf("No parameters were specified for this model.\n");
    }
    if (json_object_size(run->options) || run->keep_alive[0]) {
        printf("\nUser defined parameters:\n");
        const char *k;
        json_t *v;
        json_object_foreach(run->options, k, v)
        {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%-30s %s\n", k, s ? s : "");
            free(s);
        }
        if (run->keep_alive[0]) printf("%-30s %s\n", "keep_alive", run->keep_alive);
    }
    fputc('\n', stdout);
}

static void cmd_show(chat *c, const char *what)
{
    cli_run *run = c->run;
    if (strcmp(what, "info") == 0) {
        cli_show_info(run->show, false, stdout);
    } else if (strcmp(what, "license") == 0) {
        show_text(cli_jstr(run->show, "license"), "No license was specified for this model.");
    } else if (strcmp(what, "modelfile") == 0) {
        show_text(cli_jstr(run->show, "modelfile"), "");
    } else if (strcmp(what, "parameters") == 0) {
        show_parameters(run);
    } else if (strcmp(what, "system") == 0) {
        show_text(run->system ? run->system : cli_jstr(run->show, "system"),
                  "No system message was specified for this model.");
    } else if (strcmp(what, "template") == 0) {
        show_text(cli_jstr(run->show, "template"), "No prompt template was specified for this "
                                                   "model.");
    } else {
        if (what[0])
            printf("Unknown command '/show %s'. Type /? for help\n", what);
        else
            fputs(g_help_show, stdout);
    }
}

// ---- a turn ----

/* Sends the chat with `text` as the next user message; keeps the answer in the history,
 * or drops the message when the answer was stopped or failed. */
static void chat_turn(chat *c, const char *text)
{
    cli_run *run = c->run;
    json_array_append_new(run->messages, json_pack("{s:s,s:s}", "role", "user", "content", text));
    json_t *send = json_array();
    if (run->system)
        json_array_append_new(send,
                              json_pack("{s:s,s:s}", "role", "system", "content", run->system));
    json_array_extend(send, run->messages);
    char *reply = NULL;
    core_err err;
    cli_interrupted = 0;
    int rc = cli_run_answer(run, NULL, send, &reply, &err);
    json_decref(send);
    if (rc == CORE_OK) {
        json_array_append_new(run->messages, json_pack("{s:s,s:s}", "role", "assistant", "content",
                                                       reply ? reply : ""));
    } else {
        json_array_remove(run->messages, json_array_size(run->messages) - 1);
        if (rc != CORE_CANCELLED) cli_err_print(&err);
    }
    free(reply);
    cli_interrupted = 0;
    fputc('\n', stdout);
    fflush(stdout);
}

/* A slash command; returns true when the session ends. */
static bool slash(chat *c, const char *line)
{
    size_t n = strcspn(line, " \t");
    const char *rest = line + n + strspn(line + n, " \t");
    if ((n == 4 && strncmp(line, "/bye", 4) == 0) || (n == 5 && strncmp(line, "/exit", 5) == 0))
        return true;
    if (n == 6 && strncmp(line, "/clear", 6) == 0) {
        json_array_clear(c->run->messages);
        printf("Cleared session context\n");
    } else if (n == 4 && strncmp(line, "/set", 4) == 0) {
        cmd_set(c, rest);
    } else if (n == 5 && strncmp(line, "/show", 5) == 0) {
        cmd_show(c, rest);
    } else if ((n == 2 && strncmp(line, "/?", 2) == 0) ||
               (n == 5 && strncmp(line, "/help", 5) == 0)) {
        if (strcmp(rest, "shortcuts") == 0 || strcmp(rest, "shortcut") == 0)
            fputs(g_help_keys, stdout);
        else if (strcmp(rest, "set") == 0)
            fputs(g_help_set, stdout);
        else if (strcmp(rest, "show") == 0)
            fputs(g_help_show, stdout);
        else
            fputs(g_help, stdout);
    } else {
        printf("Unknown command '%.*s'. Type /? for help\n", (int)n, line);
    }
    fflush(stdout);
    return false;
}

// ---- the loop ----

static void history_open(chat *c)
{
    const char *home = getenv("HOME");
    c->history = true;
    if (!home || !home[0]) return;
    char dir[900];
    if ((size_t)snprintf(dir, sizeof dir, "%s/.dwell", home) >= sizeof dir) return;
    mkdir(dir, 0755);
    snprintf(c->history_path, sizeof c->history_path, "%s/history", dir);
    using_history();
    stifle_history(1000);
    read_history(c->history_path);
}

static void history_add(chat *c, const char *text)
{
    if (!c->history || !text[0]) return;
    add_history(text);
    if (c->history_path[0]) write_history(c->history_path);
}

/* Strips a trailing `"""` (and the whitespace before it); true when there was one. */
static bool ends_multiline(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n < 3 || strncmp(s + n - 3, "\"\"\"", 3) != 0) return false;
    s[n - 3] = 0;
    return true;
}

/* readline's character source. A Ctrl-C that lands before readline blocks in read(2) would
 * otherwise be lost (the handler only sets a flag, and read then waits for a key): this
 * waits for input in short polls and gives readline an end of file once the flag is set. */
static int chat_getc(FILE *f)
{
    int fd = fileno(f);
    for (;;) {
        if (cli_interrupted) return EOF;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, 100);
        if (n < 0 && errno != EINTR) return EOF;
        if (n <= 0) continue;
        unsigned char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r == 1) return ch;
        if (r == 0) return EOF;
        if (errno != EINTR && errno != EAGAIN) return EOF;
    }
}

int cli_chat_main(cli_run *run)
{
    chat c = {run, true, ""};
    core_err err;
    rl_catch_signals = 0; /* SIGINT is ours: it stops an answer, not the session */
    rl_getc_function = chat_getc;
    cli_sigint_install();
    if (cli_run_answer(run, NULL, NULL, NULL, &err)) return cli_err_print(&err); /* preload */
    history_open(&c);
    core_buf multi;
    core_buf_init(&multi);
    bool in_multi = false;
    cli_interrupted = 0;
    for (;;) {
        /* The flag is not cleared here: a Ctrl-C typed while the prompt was being drawn
         * must still count (chat_getc sees it). Each handler below clears it. */
        char *line = readline(in_multi ? "... " : ">>> ");
        if (!line) {
            if (cli_interrupted) {
                cli_interrupted = 0;
                in_multi = false;
                core_buf_reset(&multi);
                printf("\nUse Ctrl + d or /bye to exit.\n");
                continue;
            }
            printf("\n");
            break;
        }
        bool complete = true;
        if (in_multi) {
            complete = ends_multiline(line);
            core_buf_append_str(&multi, "\n");
            core_buf_append_str(&multi, line);
        } else if (strncmp(line, "\"\"\"", 3) == 0) {
            core_buf_reset(&multi);
            memmove(line, line + 3, strlen(line + 3) + 1);
            complete = strlen(line) >= 3 && ends_multiline(line);
            core_buf_append_str(&multi, line);
            in_multi = !complete;
            if (!complete) {
                free(line);
                continue;
            }
        }
        if (in_multi && !complete) {
            free(line);
            continue;
        }
        const char *text = line;
        if (in_multi || multi.len) text = multi.data ? multi.data : "";
        in_multi = false;
        history_add(&c, text);
        const char *t = text + strspn(text, " \t\n");
        bool done = false;
        if (t[0] == '/' && !multi.len)
            done = slash(&c, t);
        else if (t[0])
            chat_turn(&c, text);
        core_buf_reset(&multi);
        free(line);
        if (done) break;
    }
    core_buf_deinit(&multi);
    return 0;
}
