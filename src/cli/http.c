/* http.c — the CLI's HTTP client (libcurl, one easy handle per request).
 *
 * Answers are JSON objects or NDJSON streams. A stream is split into lines in the write
 * callback and each line handed to the caller as it arrives, so tokens print as they come.
 * Ctrl-C sets cli_interrupted; the progress callback then aborts the transfer, the server
 * sees the connection close and cancels the generation.
 *
 * Owning thread: the main thread (curl_global_init is done by cli_main). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "cli/internal.h"

volatile sig_atomic_t cli_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_sigint_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read must return EINTR */
    sigaction(SIGINT, &sa, NULL);
}

int cli_err_print(const core_err *err)
{
    fprintf(stderr, "Error: %s\n", err->msg[0] ? err->msg : core_code_str(err->code));
    return 1;
}

// ---- the server's address ----

/* OLLAMA_HOST as Ollama's envconfig.Host reads it: an optional scheme, a host (default
 * 127.0.0.1) and a port (default 11434, or 80/443 for an explicit http/https scheme). */
const char *cli_host(void)
{
    static char host[300];
    if (host[0]) return host;
    const char *v = getenv("OLLAMA_HOST");
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", v ? v : "");
    char *p = tmp;
    while (*p == ' ' || *p == '"' || *p == '\'')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '"' || p[n - 1] == '\''))
        p[--n] = 0;
    const char *port = "11434";
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
        port = "80";
    } else if (strncmp(p, "https://", 8) == 0) {
        p += 8;
        port = "443";
    }
    char *slash = strchr(p, '/');
    if (slash) *slash = 0;
    char *colon = strrchr(p, ':');
    char *bracket = strrchr(p, ']');
    if (colon && (!bracket || colon > bracket)) {
        *colon = 0;
        if (colon[1]) port = colon + 1;
    }
    if (!*p) p = "127.0.0.1";
    snprintf(host, sizeof host, "%s:%s", p, port);
    return host;
}

static void url_for(const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "http://%s%s", cli_host(), path);
}

// ---- one request ----

typedef struct http_call {
    CURL *curl;
    core_buf body; /* the whole answer (JSON) or the unfinished line (stream) */
    cli_line_fn line_fn;
    void *ud;
    bool stopped;      /* line_fn asked to stop */
    core_err line_err; /* an {"error":…} line of the stream */
    bool has_line_err;
} http_call;

static long status_of(http_call *c)
{
    long st = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &st);
    return st;
}

/* Hands every complete line in c->body to the line callback and keeps the rest. */
static int stream_lines(http_call *c)
{
    size_t start = 0;
    for (size_t i = 0; i < c->body.len; i++) {
        if (c->body.data[i] != '\n') continue;
        size_t len = i - start;
        const char *line = c->body.data + start;
        start = i + 1;
        if (len == 0) continue;
        json_error_t je;
        json_t *obj = json_loadb(line, len, 0, &je);
        if (!obj) {
            core_err_set(&c->line_err, CORE_PROTOCOL, "bad line from the server: %s", je.text);
            c->has_line_err = true;
            return 1;
        }
        json_t *e = json_object_get(obj, "error");
        if (json_is_string(e)) {
            core_err_set(&c->line_err, CORE_PROTOCOL, "%s", json_string_value(e));
            c->has_line_err = true;
            json_decref(obj);
            return 1;
        }
        int stop = c->line_fn(obj, c->ud);
        json_decref(obj);
        if (stop) {
            c->stopped = true;
            return 1;
        }
    }
    memmove(c->body.data, c->body.data + start, c->body.len - start);
    c->body.len -= start;
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    http_call *c = ud;
    size_t n = size * nmemb;
    if (cli_interrupted) return 0;
    if (core_buf_append(&c->body, ptr, n)) return 0;
    long st = status_of(c);
    if (c->line_fn && st >= 200 && st < 300 && stream_lines(c)) return 0;
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud, (void)dt, (void)dn, (void)ut, (void)un;
    return cli_interrupted ? 1 : 0;
}

static void call_init(http_call *c, const char *method, const char *path)
{
    memset(c, 0, sizeof *c);
    core_buf_init(&c->body);
    c->curl = curl_easy_init();
    char url[512];
    url_for(path, url, sizeof url);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "dwell/" DWELL_VERSION);
    curl_easy_setopt(c->curl, CURLOPT_PROXY, ""); /* the server is local: ignore *_proxy */
}

static void call_deinit(http_call *c)
{
    curl_easy_cleanup(c->curl);
    core_buf_deinit(&c->body);
}

/* The server's {"error":"…"} of a failed answer, or the status line's meaning. */
static int status_err(http_call *c, long st, core_err *err)
{
    int code = st == 404 ? CORE_NOTFOUND : st >= 400 && st < 500 ? CORE_INVALID : CORE_PROTOCOL;
    json_t *j = c->body.len ? json_loadb(c->body.data, c->body.len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    if (json_is_string(e)) {
        core_err_set(err, code, "%s", json_string_value(e));
    } else if (c->body.len && c->body.len < 200 && !j) {
        core_err_set(err, code, "%.*s", (int)c->body.len, c->body.data);
    } else {
        core_err_set(err, code, "the server answered HTTP %ld", st);
    }
    json_decref(j);
    return code;
}

/* Runs the call and maps transport failures to errors. */
static int call_perform(http_call *c, core_err *err)
{
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc == CURLE_OK) return CORE_OK;
    if (c->has_line_err) {
        if (err) *err = c->line_err;
        return c->line_err.code;
    }
    if (c->stopped || cli_interrupted || rc == CURLE_ABORTED_BY_CALLBACK)
        return core_err_set(err, CORE_CANCELLED, "cancelled");
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_OPERATION_TIMEDOUT)
        return core_err_set(err, CORE_IO,
                            "could not connect to a dwell server at %s, run 'dwell serve' to "
                            "start it",
                            cli_host());
    return core_err_set(err, CORE_IO, "%s: %s", cli_host(), curl_easy_strerror(rc));
}

int cli_http_json(const char *method, const char *path, json_t *body, json_t **out, long *status,
                  core_err *err)
{
    if (out) *out = NULL;
    http_call c;
    call_init(&c, method, path);
    char *text = NULL;
    struct curl_slist *hdr = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text) {
            call_deinit(&c);
            return core_err_set(err, CORE_NOMEM, "out of memory");
        }
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(c.curl, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c.curl, CURLOPT_POSTFIELDS, text);
    }
    int rc = call_perform(&c, err);
    long st = status_of(&c);
    if (status) *status = st;
    if (rc == CORE_OK && (st < 200 || st >= 300)) rc = status_err(&c, st, err);
    if (rc == CORE_OK && out && c.body.len) {
        json_error_t je;
        *out = json_loadb(c.body.data, c.body.len, 0, &je);
        if (!*out) rc = core_err_set(err, CORE_PROTOCOL, "bad answer from the server: %s", je.text);
    }
    curl_slist_free_all(hdr);
    free(text);
    call_deinit(&c);
    return rc;
}

int cli_http_stream(const char *path, json_t *body, cli_line_fn fn, void *ud, core_err *err)
{
    http_call c;
    call_init(&c, "POST", path);
    c.line_fn = fn;
    c.ud = ud;
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        call_deinit(&c);
        return core_err_set(err, CORE_NOMEM, "out of memory");
    }
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c.curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c.curl, CURLOPT_POSTFIELDS, text);
    int rc = call_perform(&c, err);
    long st = status_of(&c);
    if (rc == CORE_OK && (st < 200 || st >= 300)) {
        rc = status_err(&c, st, err);
    } else if (rc == CORE_OK && c.body.len) {
        /* A last line without its newline. */
        if (core_buf_append(&c.body, "\n", 1) == CORE_OK && stream_lines(&c) && c.has_line_err) {
            if (err) *err = c.line_err;
            rc = c.line_err.code;
        }
    }
    curl_slist_free_all(hdr);
    free(text);
    call_deinit(&c);
    return rc;
}

// ---- uploads ----

typedef struct upload_state {
    FILE *f;
    size_t done, total;
    cli_upload_fn fn;
    void *ud;
} upload_state;

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    upload_state *u = ud;
    if (cli_interrupted) return CURL_READFUNC_ABORT;
    size_t n = fread(buf, 1, size * nitems, u->f);
    u->done += n;
    if (u->fn) u->fn(u->done, u->total, u->ud);
    return n;
}

int cli_http_upload(const char *path, const char *file, cli_upload_fn fn, void *ud, core_err *err)
{
    struct stat sb;
    FILE *f = fopen(file, "rb");
    if (!f || fstat(fileno(f), &sb) != 0) {
        int e = errno;
        if (f) fclose(f);
        return core_err_set(err, CORE_IO, "open %s: %s", file, strerror(e));
    }
    upload_state u = {f, 0, (size_t)sb.st_size, fn, ud};
    http_call c;
    call_init(&c, "POST", path);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(c.curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c.curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c.curl, CURLOPT_CUSTOMREQUEST, "POST");
    curl_easy_setopt(c.curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c.curl, CURLOPT_READDATA, &u);
    curl_easy_setopt(c.curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sb.st_size);
    int rc = call_perform(&c, err);
    long st = status_of(&c);
    if (rc == CORE_OK && (st < 200 || st >= 300)) rc = status_err(&c, st, err);
    curl_slist_free_all(hdr);
    call_deinit(&c);
    fclose(f);
    return rc;
}
