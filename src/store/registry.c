/* registry.c — one HTTP GET against a model registry (libcurl), for pull.c.
 *
 * The registry speaks the Docker registry v2 protocol as Ollama's does: manifests at
 * `<scheme>://<host>/v2/<namespace>/<model>/manifests/<tag>`, blobs at
 * `…/blobs/<digest>` (which may redirect, e.g. to a CDN). This file only moves bytes: the
 * body of the final response goes to the caller's callback together with the HTTP status
 * and the start of a 206's Content-Range; everything else (statuses, sizes, digests) is
 * pull.c's business.
 *
 * Bounds: a connect timeout, a stall timeout (less than 1 byte/s for that long aborts), an
 * optional total timeout, at most 8 redirects, only http/https (only https when not
 * insecure, also after a redirect). Cancellation: curl calls the progress callback at least
 * once a second even when no byte moves, and it aborts when the cancel flag is set.
 * Proxies: curl's usual environment variables (http_proxy, HTTPS_PROXY, NO_PROXY), as
 * Ollama honours HTTP(S)_PROXY.
 *
 * Threads: a call runs on the caller's thread with its own curl handle; curl_global_init is
 * done by store_open (see store.h). CURLOPT_NOSIGNAL keeps curl away from signals. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "store/internal.h"

#define REG_MAX_REDIRS 8L

typedef struct reg_call {
    const store_http *h;
    const store_http_req *q;
    CURL *curl;
    bool started;         /* the body callback has seen the final response */
    int64_t range_start;  /* from the last response's Content-Range, -1 if none */
    int body_rc;          /* what the body callback returned (non-zero aborts) */
    bool cancelled;
} reg_call;

static bool cancelled(const store_http *h)
{
    return h->cancel && atomic_load(h->cancel);
}

/* Headers of every response (redirects included): a status line resets what we know. */
static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
    reg_call *c = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        c->range_start = -1;
    } else if (len > 14 && strncasecmp(line, "Content-Range:", 14) == 0) {
        /* "Content-Range: bytes 100-199/200" */
        const char *p = line + 14;
        const char *end = line + len;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p > 6 && strncasecmp(p, "bytes ", 6) == 0) {
            p += 6;
            int64_t v = 0;
            bool any = false;
            while (p < end && isdigit((unsigned char)*p) && v < INT64_MAX / 10 - 10) {
                v = v * 10 + (*p++ - '0');
                any = true;
            }
            if (any && p < end && *p == '-') c->range_start = v;
        }
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    reg_call *c = ud;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    c->started = true;
    c->body_rc = c->q->body(c->q->ud, status, c->range_start, data, len);
    return c->body_rc ? 0 : len; /* a short count makes curl stop with CURLE_WRITE_ERROR */
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    reg_call *c = ud;
    if (cancelled(c->h)) {
        c->cancelled = true;
        return 1;
    }
    if (c->q->tick) c->q->tick(c->q->ud);
    return 0;
}

static void setup(reg_call *c, char *errbuf, struct curl_slist **hdrs)
{
    CURL *k = c->curl;
    const store_http *h = c->h;
    const store_http_req *q = c->q;
    const char *protos = h->insecure ? "http,https" : "https";
    curl_easy_setopt(k, CURLOPT_URL, q->url);
    curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, protos);
    curl_easy_setopt(k, CURLOPT_REDIR_PROTOCOLS_STR, protos);
    curl_easy_setopt(k, CURLOPT_FOLLOWLOCATION, q->follow ? 1L : 0L);
    curl_easy_setopt(k, CURLOPT_MAXREDIRS, REG_MAX_REDIRS);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT, (long)h->connect_timeout_s);
    curl_easy_setopt(k, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(k, CURLOPT_LOW_SPEED_TIME, (long)h->stall_timeout_s);
    if (q->total_timeout_s > 0) curl_easy_setopt(k, CURLOPT_TIMEOUT, (long)q->total_timeout_s);
    curl_easy_setopt(k, CURLOPT_USERAGENT, "dwell/" DWELL_VERSION);
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(k, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(k, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(k, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(k, CURLOPT_XFERINFODATA, c);
    if (q->range_from > 0) {
        char range[32];
        snprintf(range, sizeof range, "%" PRIu64 "-", q->range_from);
        curl_easy_setopt(k, CURLOPT_RANGE, range); /* curl copies the string */
    }
    if (q->accept) {
        char accept[160];
        snprintf(accept, sizeof accept, "Accept: %s", q->accept);
        *hdrs = curl_slist_append(NULL, accept);
        curl_easy_setopt(k, CURLOPT_HTTPHEADER, *hdrs);
    }
}

int store_http_get(const store_http *h, const store_http_req *q, long *status, bool *transient,
                   core_err *err)
{
    *status = 0;
    *transient = false;
    if (cancelled(h)) return core_err_set(err, CORE_CANCELLED, "pull cancelled");
    reg_call c = {.h = h, .q = q, .range_start = -1};
    c.curl = curl_easy_init();
    if (!c.curl) return core_err_set(err, CORE_NOMEM, "cannot start an HTTP request");
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    setup(&c, errbuf, &hdrs);
    CURLcode cc = curl_easy_perform(c.curl);
    curl_easy_getinfo(c.curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c.curl);
    curl_slist_free_all(hdrs);
    if (c.body_rc) return c.body_rc; /* the body callback filled err itself */
    if (c.cancelled || (cc != CURLE_OK && cancelled(h)))
        return core_err_set(err, CORE_CANCELLED, "pull cancelled");
    if (cc == CURLE_OK) {
        if (!c.started) { /* no body at all: let the caller see the status */
            c.body_rc = q->body(q->ud, *status, c.range_start, NULL, 0);
            if (c.body_rc) return c.body_rc;
        }
        return CORE_OK;
    }
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        *transient = true;
        return core_err_set(err, CORE_TIMEOUT, "Get \"%.300s\": %s", q->url, why);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_URL_MALFORMAT:
        return core_err_set(err, CORE_PROTOCOL, "Get \"%.300s\": %s", q->url, why);
    default:
        *transient = true;
        return core_err_set(err, CORE_PROTOCOL, "Get \"%.300s\": %s", q->url, why);
    }
}
