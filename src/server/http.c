/* http.c — the libmicrohttpd side: routing, request bodies, CORS, replies and the daemon.
 *
 * MHD calls the access handler several times per request: once when the headers are in
 * (we allocate the srv_req, route it, check CORS and the announced body size), once per body
 * chunk (accumulated up to SRV_MAX_JSON_BODY, or streamed to disk for blob uploads) and once
 * more when the body is complete (we run the route's handler, which queues one response).
 * The request-completed callback frees the srv_req and, if a streamed response did not
 * finish, cancels its producer (client gone). Threads: one MHD thread per connection. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/internal.h"

// ---- routes ----

typedef struct srv_route {
    const char *path;     /* exact path, or a prefix when it ends in '/' and prefix is set */
    bool prefix;
    int methods;
    srv_handler fn;
    bool oai;
    bool upload;          /* the body is streamed to disk */
} srv_route;

static srv_route g_routes[64];
static size_t g_n_routes;

void srv_route_add(const char *path, bool prefix, int methods, srv_handler fn, bool oai,
                   bool upload)
{
    CORE_ASSERT(g_n_routes < sizeof g_routes / sizeof g_routes[0]);
    g_routes[g_n_routes++] = (srv_route){path, prefix, methods, fn, oai, upload};
}

static int method_bit(const char *m)
{
    if (!strcmp(m, "GET")) return SRV_GET;
    if (!strcmp(m, "HEAD")) return SRV_HEAD;
    if (!strcmp(m, "POST")) return SRV_POST;
    if (!strcmp(m, "DELETE")) return SRV_DELETE;
    if (!strcmp(m, "PUT")) return SRV_PUT;
    return 0;
}

/* The route for path, or NULL. *path_known is set when some route has the path (so a
 * method mismatch is a 405, not a 404). */
static const srv_route *route_find(const char *path, int mbit, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < g_n_routes; i++) {
        const srv_route *rt = &g_routes[i];
        size_t n = strlen(rt->path);
        bool match = rt->prefix ? (strncmp(path, rt->path, n) == 0 && path[n])
                                : strcmp(path, rt->path) == 0;
        if (!match) continue;
        *path_known = true;
        if (rt->methods & mbit) return rt;
    }
    return NULL;
}

// ---- replies ----

static void add_common_headers(srv_req *r, struct MHD_Response *resp)
{
    if (r->origin[0]) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
}

static enum MHD_Result queue(srv_req *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp) return MHD_NO;
    add_common_headers(r, resp);
    enum MHD_Result res = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->replied = true;
    return res;
}

enum MHD_Result srv_reply_raw(srv_req *r, unsigned status, const char *ctype, const void *data,
                              size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    return queue(r, status, resp);
}

enum MHD_Result srv_reply_json(srv_req *r, unsigned status, json_t *j)
{
    if (!j) return srv_reply_raw(r, status, NULL, "", 0);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (!s) return srv_reply_raw(r, 500, "text/plain", "out of memory", 13);
    enum MHD_Result res =
        srv_reply_raw(r, status, "application/json; charset=utf-8", s, strlen(s));
    free(s);
    return res;
}

static const char *oai_type(unsigned status)
{
    if (status == 404) return "not_found_error";
    if (status >= 500) return "api_error";
    return "invalid_request_error";
}

static enum MHD_Result reply_verror(srv_req *r, unsigned status, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    srv_utf8_fix(msg);
    json_t *j;
    if (r->oai) {
        j = json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", msg, "type",
                      oai_type(status), "param", "code");
    } else {
        j = json_pack("{s:s}", "error", msg);
    }
    if (status >= 500) CORE_WARN("%s %s: %u %s", r->method, r->path, status, msg);
    else CORE_DEBUG("%s %s: %u %s", r->method, r->path, status, msg);
    return srv_reply_json(r, status, j);
}

enum MHD_Result srv_reply_error(srv_req *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result res = reply_verror(r, status, fmt, ap);
    va_end(ap);
    return res;
}

unsigned srv_code_status(int code)
{
    switch (code) {
    case CORE_OK: return 200;
    case CORE_NOTFOUND: return 404;
    case CORE_INVALID:
    case CORE_FORMAT:
    case CORE_UNSUPPORTED:
    case CORE_PROTOCOL: return 400;
    case CORE_EXISTS: return 409;
    case CORE_BUSY: return 503;
    case CORE_CANCELLED: return 499;
    case CORE_LIMIT: /* spec E.43: a model larger than the memory budget is a 500 */
    case CORE_TIMEOUT:
    case CORE_NOMEM:
    case CORE_IO:
    case CORE_INTERNAL:
    default: return 500;
    }
}

enum MHD_Result srv_reply_err(srv_req *r, const core_err *err)
{
    const char *msg = err->msg[0] ? err->msg : core_code_str(err->code);
    return srv_reply_error(r, srv_code_status(err->code), "%s", msg);
}

json_t *srv_body_json(srv_req *r, enum MHD_Result *res)
{
    if (r->body.len == 0) {
        *res = srv_reply_error(r, 400, "missing request body");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        *res = srv_reply_error(r, 400, "invalid JSON: %s at line %d column %d", je.text,
                               je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        *res = srv_reply_error(r, 400, "json: cannot unmarshal %s into a request object",
                               srv_json_type_name(j));
        json_decref(j);
        return NULL;
    }
    return j;
}

// ---- the access handler ----

static srv_req *req_new(srv_server *s, struct MHD_Connection *c, const char *url,
                        const char *method)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->conn = c;
    r->t_arrival = core_mono_ns();
    snprintf(r->method, sizeof r->method, "%s", method);
    size_t n = strcspn(url, "?");
    if (n >= sizeof r->path) n = sizeof r->path - 1;
    memcpy(r->path, url, n);
    r->path[n] = 0;
    core_buf_init(&r->body);
    atomic_fetch_add(&s->active, 1);
    return r;
}

static void req_free(srv_req *r)
{
    if (!r) return;
    srv_upload_free(r->upload);
    core_buf_deinit(&r->body);
    atomic_fetch_sub(&r->srv->active, 1);
    free(r);
}

/* CORS: an Origin not in the list gets 403; an allowed one is echoed back. */
static bool cors_check(srv_req *r)
{
    const char *o = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!o || !*o) return true;
    if (!srv_origin_allowed(&r->srv->set, o)) return false;
    snprintf(r->origin, sizeof r->origin, "%s", o);
    return true;
}

static enum MHD_Result preflight(srv_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
                                                                MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                            "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, "
                            "X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-OS, "
                            "X-Stainless-Arch, X-Stainless-Retry-Count, X-Stainless-Runtime, "
                            "X-Stainless-Runtime-Version, X-Stainless-Async, "
                            "X-Stainless-Helper-Method, X-Stainless-Poll-Helper, "
                            "X-Stainless-Custom-Poll-Interval, X-Stainless-Timeout, "
                            "OpenAI-Beta, x-stainless-helper");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "43200");
    return queue(r, 204, resp);
}

/* First callback of a request: route, CORS and size checks. Returns MHD_YES to go on
 * (with *done false) or the result of an early reply (*done true). */
static enum MHD_Result first_call(srv_req *r, bool *done)
{
    *done = true;
    if (!cors_check(r)) return srv_reply_raw(r, 403, NULL, "", 0);
    if (r->srv->host_check &&
        !srv_host_allowed(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host"))) {
        CORE_DEBUG("%s %s: Host header not local, refused (403)", r->method, r->path);
        return srv_reply_raw(r, 403, NULL, "", 0);
    }
    if (atomic_load(&r->srv->stopping))
        return srv_reply_error(r, 503, "server is shutting down");
    if (!strcmp(r->method, "OPTIONS")) {
        const char *o = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
        if (o && *o) return preflight(r);
    }
    bool known;
    const srv_route *rt = route_find(r->path, method_bit(r->method), &known);
    r->oai = strncmp(r->path, "/v1/", 4) == 0;
    if (!rt && known) return srv_reply_raw(r, 405, "text/plain", "405 method not allowed", 22);
    if (!rt) return srv_reply_raw(r, 404, "text/plain", "404 page not found", 18);
    r->route = rt;
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (!rt->upload && cl && strtoull(cl, NULL, 10) > SRV_MAX_JSON_BODY)
        return srv_reply_error(r, 413, "request body too large (limit %zu MiB)",
                               SRV_MAX_JSON_BODY >> 20);
    if (rt->upload) {
        enum MHD_Result res;
        if (!srv_upload_begin(r, &res)) return res;
    }
    *done = false;
    return MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    srv_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        r = req_new(s, c, url, method);
        if (!r) return MHD_NO;
        *con_cls = r;
        bool done;
        enum MHD_Result res = first_call(r, &done);
        return res;
    }
    if (r->replied) { /* an early reply: discard the body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        const srv_route *rt = r->route;
        if (rt->upload) {
            srv_upload_feed(r, upload_data, *upload_size);
        } else if (!r->body_too_large) {
            if (r->body.len + *upload_size > SRV_MAX_JSON_BODY) {
                r->body_too_large = true;
                core_buf_deinit(&r->body);
            } else if (core_buf_append(&r->body, upload_data, *upload_size)) {
                r->body_too_large = true;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->body_too_large)
        return srv_reply_error(r, 413, "request body too large (limit %zu MiB)",
                               SRV_MAX_JSON_BODY >> 20);
    const srv_route *rt = r->route;
    enum MHD_Result res = rt->fn(r);
    if (!r->replied) return srv_reply_error(r, 500, "internal error: no reply");
    return res;
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    srv_req *r = *con_cls;
    if (!r) return;
    if (r->stream) srv_stream_request_done(r->stream, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
        toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
        CORE_DEBUG("%s %s: connection ended early (%d)", r->method, r->path, (int)toe);
    req_free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    CORE_DEBUG("http: %s", msg);
}

// ---- the daemon ----

int srv_http_start(srv_server *s, core_err *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t slen;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->set.host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)s->set.port);
        slen = sizeof *in4;
    } else if (inet_pton(AF_INET6, s->set.host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)s->set.port);
        slen = sizeof *in6;
        flags |= MHD_USE_IPv6;
    } else {
        return core_err_set(err, CORE_INVALID, "OLLAMA_HOST: \"%s\" is not an IP address",
                            s->set.host);
    }
    (void)slen;
    s->host_check = srv_listen_is_loopback(s->set.host);
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->set.port, NULL, NULL, access_cb, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        MHD_OPTION_END);
    if (!s->daemon)
        return core_err_set(err, CORE_IO, "cannot listen on %s:%d (address in use or not "
                            "available)", s->set.host, s->set.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di && di->port) s->set.port = di->port;
    return CORE_OK;
}

void srv_http_quiesce(srv_server *s)
{
    if (s->daemon) {
        MHD_socket fd = MHD_quiesce_daemon(s->daemon);
        if (fd != MHD_INVALID_SOCKET) close(fd);
    }
}

void srv_http_stop(srv_server *s)
{
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
