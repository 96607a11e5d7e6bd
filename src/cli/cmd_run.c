/* cmd_run.c — `dwell run MODEL [PROMPT]`: one answer for a prompt (or piped stdin), or the
 * interactive chat of chat.c. Streams the answer as it arrives, word-wrapped on a terminal,
 * with a spinner while the model loads and Ollama's timing lines with --verbose. A model
 * the server does not have is pulled first (cmd_pull.c), as Ollama's run does.
 *
 * Keep-alive (DESIGN.md §2): --keepalive, else the client's own OLLAMA_KEEP_ALIVE, is sent as
 * each request's keep_alive, always as a string with its unit ("2m0s"), so a bare "2" means
 * two minutes here and cannot be read as two seconds by the server. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/internal.h"

// ---- the answer writer: word wrap on a terminal ----

typedef struct writer {
    bool wrap;
    int width;
    int col;       /* display column of the cursor */
    int spaces;    /* spaces received after the last word, printed only before the next one */
    bool keep_indent; /* the line began at a newline of the answer: keep its leading spaces */
    core_buf word; /* the word being received, not printed yet */
    core_buf all;  /* the whole answer */
    bool started;  /* the first piece arrived (the spinner is gone) */
    json_t *final; /* the done:true object */
} writer;

static void line_break(writer *w, bool from_text)
{
    fputc('\n', stdout);
    w->col = 0;
    w->spaces = 0;
    w->keep_indent = from_text;
}

/* Prints the word received so far, on the next line if it does not fit on this one (the
 * spaces before it are then dropped, so that no line ends in a space). */
static void word_flush(writer *w)
{
    if (!w->word.len) return;
    int ww = (int)cli_utf8_width(w->word.data);
    int sp = w->col > 0 || w->keep_indent ? w->spaces : 0;
    if (w->col + sp > 0 && w->col + sp + ww > w->width) {
        line_break(w, false);
        sp = 0;
    }
    for (int i = 0; i < sp; i++) fputc(' ', stdout);
    fwrite(w->word.data, 1, w->word.len, stdout);
    w->col += sp + ww;
    w->spaces = 0;
    w->keep_indent = false;
    core_buf_reset(&w->word);
}

static void writer_put(writer *w, const char *s)
{
    core_buf_append_str(&w->all, s);
    if (!w->wrap) {
        fputs(s, stdout);
        fflush(stdout);
        return;
    }
    for (; *s; s++) {
        if (*s == '\n') {
            word_flush(w);
            line_break(w, true);
        } else if (*s == ' ') {
            word_flush(w);
            if (w->spaces < w->width) w->spaces++;
        } else {
            core_buf_append(&w->word, s, 1);
            if ((int)w->word.len >= w->width) word_flush(w);
        }
    }
    fflush(stdout);
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

static int on_piece(json_t *obj, void *ud)
{
    writer *w = ud;
    const char *piece = json_string_value(json_object_get(obj, "response"));
    if (!piece)
        piece = json_string_value(json_object_get(json_object_get(obj, "message"), "content"));
    if (piece && piece[0] && !w->started) {
        cli_spinner_stop();
        w->started = true;
    }
    if (piece && piece[0]) writer_put(w, piece);
    if (json_is_true(json_object_get(obj, "done"))) {
        json_decref(w->final);
        w->final = json_incref(obj);
    }
    return 0;
}

// ---- timings (--verbose, /set verbose) ----

/* Ollama's api.Metrics.Summary, on stderr: a line per metric that is present. */
static void print_timings(json_t *fin)
{
    char d[32];
    int64_t total = cli_jint(fin, "total_duration"), load = cli_jint(fin, "load_duration");
    int64_t pc = cli_jint(fin, "prompt_eval_count"), pd = cli_jint(fin, "prompt_eval_duration");
    int64_t ec = cli_jint(fin, "eval_count"), ed = cli_jint(fin, "eval_duration");
    if (total > 0) {
        core_duration_format(total, d, sizeof d);
        fprintf(stderr, "total duration:       %s\n", d);
    }
    if (load > 0) {
        core_duration_format(load, d, sizeof d);
        fprintf(stderr, "load duration:        %s\n", d);
    }
    if (pc > 0) fprintf(stderr, "prompt eval count:    %lld token(s)\n", (long long)pc);
    if (pd > 0) {
        core_duration_format(pd, d, sizeof d);
        fprintf(stderr, "prompt eval duration: %s\n", d);
        fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", (double)pc / ((double)pd / 1e9));
    }
    if (ec > 0) fprintf(stderr, "eval count:           %lld token(s)\n", (long long)ec);
    if (ed > 0) {
        core_duration_format(ed, d, sizeof d);
        fprintf(stderr, "eval duration:        %s\n", d);
        fprintf(stderr, "eval rate:            %.2f tokens/s\n", (double)ec / ((double)ed / 1e9));
    }
}

// ---- requests ----

static json_t *request_body(cli_run *run, const char *prompt, json_t *messages)
{
    json_t *b = json_pack("{s:s,s:b}", "model", run->model, "stream", 1);
    if (messages)
        json_object_set(b, "messages", messages);
    else if (prompt)
        json_object_set_new(b, "prompt", json_string(prompt));
    if (run->keep_alive[0]) json_object_set_new(b, "keep_alive", json_string(run->keep_alive));
    if (prompt || messages) {
        if (run->format) json_object_set_new(b, "format", json_string(run->format));
        if (json_object_size(run->options)) json_object_set(b, "options", run->options);
    }
    return b;
}

int cli_run_answer(cli_run *run, const char *prompt, json_t *messages, char **reply, core_err *err)
{
    writer w = {0};
    w.wrap = run->wordwrap && isatty(STDOUT_FILENO);
    w.width = term_width() - 1;
    if (w.width < 10) w.width = 10;
    core_buf_init(&w.word);
    core_buf_init(&w.all);
    json_t *body = request_body(run, prompt, messages);
    cli_spinner_start(NULL);
    int rc = cli_http_stream(messages ? "/api/chat" : "/api/generate", body, on_piece, &w, err);
    cli_spinner_stop();
    json_decref(body);
    if (w.wrap) word_flush(&w);
    if (w.all.len) fputc('\n', stdout);
    fflush(stdout);
    if (rc == CORE_OK && run->verbose && w.final && (prompt || messages)) print_timings(w.final);
    if (reply && rc == CORE_OK) *reply = core_buf_steal(&w.all);
    json_decref(w.final);
    core_buf_deinit(&w.word);
    core_buf_deinit(&w.all);
    return rc;
}

// ---- the command ----

/* The prompt of a one-shot run: piped stdin, then the arguments, joined by spaces. */
static char *join_prompt(const char **args, int n, bool read_stdin)
{
    core_buf b;
    core_buf_init(&b);
    if (read_stdin) {
        char buf[4096];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, stdin)) > 0)
            core_buf_append(&b, buf, k);
    }
    for (int i = 0; i < n; i++) {
        if (b.len) core_buf_append_str(&b, " ");
        core_buf_append_str(&b, args[i]);
    }
    return core_buf_steal(&b);
}

static int run_keep_alive(cli_run *run, const cli_flag *flag, core_err *err)
{
    if (flag->set)
        return cli_keepalive_arg(flag->value, "--keepalive", run->keep_alive,
                                 sizeof run->keep_alive, err);
    const char *env = getenv("OLLAMA_KEEP_ALIVE");
    if (env && env[0])
        return cli_keepalive_arg(env, "OLLAMA_KEEP_ALIVE", run->keep_alive, sizeof run->keep_alive,
                                 err);
    return CORE_OK;
}

static int run_one(cli_run *run, const char **args, int n, bool piped)
{
    core_err err;
    char *prompt = join_prompt(args, n, piped);
    if (!prompt) {
        core_err_set(&err, CORE_NOMEM, "out of memory");
        return cli_err_print(&err);
    }
    /* `dwell run MODEL ""` only loads the model. */
    int rc = cli_run_answer(run, prompt[0] ? prompt : NULL, NULL, NULL, &err);
    free(prompt);
    return rc ? cli_err_print(&err) : 0;
}

int cli_cmd_run(int argc, char **argv)
{
    cli_flag flags[] = {
        {"format", 0, "string", "Response format (e.g. json)", false, NULL},
        {"keepalive", 0, "string",
         "Duration to keep a model loaded (e.g. 5m; a bare number "
         "is minutes)",
         false, NULL},
        {"nowordwrap", 0, NULL, "Don't wrap words to the next line automatically", false, NULL},
        {"verbose", 0, NULL, "Show timings for response", false, NULL},
        {"insecure", 0, NULL, "Use an insecure registry when the model has to be pulled", false,
         NULL},
    };
    cli_cmd cmd = {"run", "MODEL [PROMPT]", "Run a model", flags, 5, 1, -1};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    core_err err;
    cli_run run = {0};
    run.model = pos[0];
    run.verbose = flags[3].set;
    run.wordwrap = !flags[2].set;
    run.format = flags[0].set ? flags[0].value : NULL;
    if (run.format && run.format[0] == 0) run.format = NULL;
    if (run_keep_alive(&run, &flags[1], &err)) return cli_err_print(&err);
    json_t *req = json_pack("{s:s}", "model", run.model);
    rc = cli_http_json("POST", "/api/show", req, &run.show, NULL, &err);
    if (rc == CORE_NOTFOUND) { /* as Ollama's run: pull a model the server does not have */
        rc = cli_pull(run.model, flags[4].set, &err);
        if (!rc) rc = cli_http_json("POST", "/api/show", req, &run.show, NULL, &err);
    }
    json_decref(req);
    if (rc) return cli_err_print(&err);
    run.options = json_object();
    run.messages = json_array();
    bool piped = !isatty(STDIN_FILENO);
    if (n_pos > 1 || piped)
        rc = run_one(&run, pos + 1, n_pos - 1, piped);
    else
        rc = cli_chat_main(&run);
    json_decref(run.show);
    json_decref(run.options);
    json_decref(run.messages);
    free(run.system);
    return rc;
}
