/* cmd_create.c — `dwell create NAME -f Modelfile`, `dwell cp` and `dwell rm`.
 *
 * create reads the Modelfile here (modelfile.c), uploads each local file as a blob (HEAD
 * first, POST only when the server lacks it) with a progress line, then sends /api/create and
 * shows the server's status lines as they stream in. Progress goes to stderr, as Ollama's
 * does; on a terminal the current line is redrawn in place, otherwise each step is one line. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli/internal.h"

/* "sha256:<hex>" of a file. The server checks it again when the blob arrives. */
static int file_digest(const char *path, char out[72], core_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return core_err_set(err, CORE_IO, "open %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        fclose(f);
        return core_err_set(err, CORE_NOMEM, "sha256: out of memory");
    }
    static unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    if (bad) return core_err_set(err, CORE_IO, "read %s: %s", path, strerror(bad));
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return CORE_OK;
}

typedef struct progress {
    bool tty;
    char digest[72];
    int last_pct;
} progress;

static void status_line(progress *p, const char *msg, bool final)
{
    if (p->tty)
        fprintf(stderr, "\r%s\033[K%s", msg, final ? "\n" : "");
    else if (final)
        fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

static void on_upload(size_t done, size_t total, void *ud)
{
    progress *p = ud;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == p->last_pct || !p->tty) return;
    p->last_pct = pct;
    char bar[41], msg[200];
    int fill = pct * 40 / 100;
    for (int i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : ' ';
    bar[40] = 0;
    snprintf(msg, sizeof msg, "copying file %.19s... %3d%% [%s]", p->digest, pct, bar);
    status_line(p, msg, false);
}

/* Makes sure the server has the file as a blob; *digest gets its "sha256:…". */
static int push_blob(const char *path, progress *p, char digest[72], core_err *err)
{
    status_line(p, "gathering model components", true);
    int rc = file_digest(path, digest, err);
    if (rc) return rc;
    char url[128];
    snprintf(url, sizeof url, "/api/blobs/%s", digest);
    long st = 0;
    rc = cli_http_json("HEAD", url, NULL, NULL, &st, err);
    if (rc == CORE_OK) return CORE_OK; /* already there */
    if (rc != CORE_NOTFOUND) return rc;
    snprintf(p->digest, sizeof p->digest, "%s", digest);
    p->last_pct = -1;
    rc = cli_http_upload(url, path, on_upload, p, err);
    if (rc) return rc;
    char msg[128];
    snprintf(msg, sizeof msg, "copying file %s 100%%", digest);
    status_line(p, msg, true);
    return CORE_OK;
}

static int on_create_line(json_t *obj, void *ud)
{
    const char *s = json_string_value(json_object_get(obj, "status"));
    if (s) status_line(ud, s, true);
    return 0;
}

static int attach_file(json_t *req, const char *key, const char *path, progress *p, core_err *err)
{
    char digest[72];
    int rc = push_blob(path, p, digest, err);
    if (rc) return rc;
    const char *base = strrchr(path, '/');
    json_object_set_new(req, key, json_pack("{s:s}", base ? base + 1 : path, digest));
    return CORE_OK;
}

int cli_cmd_create(int argc, char **argv)
{
    cli_flag flags[] = {
        {"file", 'f', "string", "Name of the Modelfile (default \"Modelfile\")", false, NULL},
        {"quantize", 'q', "string", "Quantize model to this level (not supported by dwell)", false,
         NULL},
    };
    cli_cmd cmd = {"create", "MODEL", "Create a model from a Modelfile", flags, 2, 1, 1};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    core_err err;
    const char *path = flags[0].set ? flags[0].value : "Modelfile";
    char *text = NULL;
    size_t len;
    if (core_file_read(path, CLI_MODELFILE_MAX, &text, &len, &err)) {
        if (err.code != CORE_NOTFOUND) return cli_err_print(&err); /* a folder, unreadable */
        core_err_set(&err, CORE_IO,
                     "open %s: no such file or directory (write a Modelfile "
                     "with a FROM line, or name one with -f)",
                     path);
        return cli_err_print(&err);
    }
    cli_modelfile mf;
    rc = cli_modelfile_parse(text, path, &mf, &err);
    free(text);
    if (rc) return cli_err_print(&err);
    progress p = {isatty(STDERR_FILENO) != 0, "", -1};
    json_t *req = mf.req;
    json_object_set_new(req, "model", json_string(pos[0]));
    if (flags[1].set) json_object_set_new(req, "quantize", json_string(flags[1].value));
    if (mf.from_model) json_object_set_new(req, "from", json_string(mf.from_model));
    if (mf.from_path) rc = attach_file(req, "files", mf.from_path, &p, &err);
    if (!rc && mf.adapter_path) rc = attach_file(req, "adapters", mf.adapter_path, &p, &err);
    if (!rc) rc = cli_http_stream("/api/create", req, on_create_line, &p, &err);
    cli_modelfile_deinit(&mf);
    return rc ? cli_err_print(&err) : 0;
}

int cli_cmd_cp(int argc, char **argv)
{
    cli_cmd cmd = {"cp", "SOURCE DESTINATION", "Copy a model", NULL, 0, 2, 2};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    core_err err;
    json_t *req = json_pack("{s:s,s:s}", "source", pos[0], "destination", pos[1]);
    rc = cli_http_json("POST", "/api/copy", req, NULL, NULL, &err);
    json_decref(req);
    if (rc) return cli_err_print(&err);
    printf("copied '%s' to '%s'\n", pos[0], pos[1]);
    return 0;
}

int cli_cmd_rm(int argc, char **argv)
{
    cli_cmd cmd = {"rm", "MODEL [MODEL...]", "Remove a model", NULL, 0, 1, -1};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    for (int i = 0; i < n_pos; i++) {
        core_err err;
        json_t *req = json_pack("{s:s}", "model", pos[i]);
        rc = cli_http_json("DELETE", "/api/delete", req, NULL, NULL, &err);
        json_decref(req);
        if (rc) return cli_err_print(&err);
        printf("deleted '%s'\n", pos[i]);
    }
    return 0;
}
