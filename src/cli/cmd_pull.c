/* cmd_pull.c — `dwell pull MODEL [--insecure]`, and the pull that `dwell run` does first
 * for a model the server does not have (as Ollama's run does).
 *
 * The server streams Ollama's progress objects (/api/pull); they are shown on stderr, as
 * Ollama's CLI shows them. On a terminal a blob's line is redrawn in place as a progress bar
 * ("pulling 8934d96d3f08...  45% ▕███████          ▏ 1.7 GB/3.8 GB"), ending at 100% with
 * the size; statuses ("pulling manifest", "verifying sha256 digest", "writing manifest",
 * "success") are lines of their own. Not on a terminal: one line per status and one per
 * blob once it is complete ("pulling 8934d96d3f08... 100% 3.8 GB"). Ctrl-C stops the
 * transfer; the server then stops the download and keeps its partial file for next time. */
#include <string.h>
#include <unistd.h>

#include "cli/internal.h"

#define BAR_WIDTH 25

typedef struct pull_view {
    bool tty;
    char digest[80];   /* the blob whose line is open (tty: being redrawn), "" if none */
    char status[128];  /* the last status printed */
    bool done_printed; /* non-tty: the open blob's completion line is out */
} pull_view;

/* Ends the blob line being redrawn. */
static void view_close_line(pull_view *v)
{
    if (v->tty && v->digest[0]) fputc('\n', stderr);
    v->digest[0] = '\0';
}

static void draw_bar(const char *digest, int64_t total, int64_t completed)
{
    char done[32], all[32], bar[BAR_WIDTH * 3 + 1];
    int pct = total > 0 ? (int)(completed * 100 / total) : 100;
    int fill = pct * BAR_WIDTH / 100;
    size_t n = 0;
    for (int i = 0; i < BAR_WIDTH; i++) {
        const char *cell = i < fill ? "\xe2\x96\x88" : " "; /* U+2588 FULL BLOCK */
        size_t k = strlen(cell);
        memcpy(bar + n, cell, k);
        n += k;
    }
    bar[n] = '\0';
    cli_human_bytes(total, all, sizeof all);
    cli_human_bytes(completed, done, sizeof done);
    if (completed >= total)
        fprintf(stderr, "\rpulling %.12s... 100%% \xe2\x96\x95%s\xe2\x96\x8f %s\033[K", digest,
                bar, all);
    else
        fprintf(stderr, "\rpulling %.12s... %3d%% \xe2\x96\x95%s\xe2\x96\x8f %s/%s\033[K", digest,
                pct, bar, done, all);
}

static void view_blob(pull_view *v, const char *digest, int64_t total, int64_t completed)
{
    const char *hex = strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
    if (strcmp(v->digest, digest) != 0) {
        view_close_line(v);
        snprintf(v->digest, sizeof v->digest, "%s", digest);
        v->done_printed = false;
        v->status[0] = '\0';
    }
    if (v->tty) {
        draw_bar(hex, total, completed);
    } else if (completed >= total && !v->done_printed) {
        char all[32];
        cli_human_bytes(total, all, sizeof all);
        fprintf(stderr, "pulling %.12s... 100%% %s\n", hex, all);
        v->done_printed = true;
    }
    fflush(stderr);
}

static int on_pull_line(json_t *obj, void *ud)
{
    pull_view *v = ud;
    const char *status = cli_jstr(obj, "status");
    const char *digest = cli_jstr(obj, "digest");
    if (digest[0]) {
        view_blob(v, digest, cli_jint(obj, "total"), cli_jint(obj, "completed"));
    } else if (status[0] && strcmp(status, v->status) != 0) {
        view_close_line(v);
        snprintf(v->status, sizeof v->status, "%s", status);
        fprintf(stderr, "%s\n", status);
        fflush(stderr);
    }
    return 0;
}

int cli_pull(const char *model, bool insecure, core_err *err)
{
    pull_view v = {.tty = isatty(STDERR_FILENO) != 0};
    json_t *req = json_pack("{s:s,s:b,s:b}", "model", model, "insecure", insecure, "stream", 1);
    cli_sigint_install();
    int rc = cli_http_stream("/api/pull", req, on_pull_line, &v, err);
    view_close_line(&v);
    json_decref(req);
    return rc;
}

int cli_cmd_pull(int argc, char **argv)
{
    cli_flag flags[] = {
        {"insecure", 0, NULL, "Use an insecure registry (http instead of https)", false, NULL},
    };
    cli_cmd cmd = {"pull", "MODEL", "Pull a model from a registry", flags, 1, 1, 1};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    core_err err;
    if (cli_pull(pos[0], flags[0].set, &err)) return cli_err_print(&err);
    return 0;
}
