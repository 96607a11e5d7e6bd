/* internal.h — shared between the server's files (never included outside src/server).
 *
 * Threads: libmicrohttpd runs one thread per connection; each request (srv_req) belongs to
 * its connection's thread. The srv_server object is written by the main thread before the
 * daemon starts and is read-only afterwards except for the documented atomics. A streaming
 * response (srv_stream) is shared by the connection thread (which reads it) and the
 * request-completed callback (which may cancel it), so it is reference counted. */
#ifndef DWELL_SERVER_INTERNAL_H
#define DWELL_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "obs/obs.h"
#include "sched/sched.h"
#include "store/store.h"

#define SRV_FOREVER INT64_MAX
#define SRV_MAX_ORIGINS 64
#define SRV_MAX_JSON_BODY ((size_t)64 << 20)

// ---- settings (settings.c) ----

typedef struct srv_settings {
    char host[256];
    int port;
    int64_t keep_alive_ns;        /* SRV_FOREVER = pinned */
    char keep_alive_source[32];   /* "default" or "OLLAMA_KEEP_ALIVE" */
    int max_loaded;               /* 0 = no count cap */
    int num_parallel;             /* >= 1 */
    int max_queue;
    int64_t load_timeout_ns;      /* 0 = none */
    int64_t step_delay_ns;        /* DWELL_DEBUG_STEP_DELAY; 0 = none */
    int64_t context_length;       /* default num_ctx */
    bool kv_f32;
    char models[4096];
    bool noprune;                 /* OLLAMA_NOPRUNE: keep unused blobs (start-up and pull) */
    char *origins[SRV_MAX_ORIGINS];
    size_t n_origins;
    char origins_env[1024];
    int log_level;
    size_t mem_budget;
    bool mem_budget_set;
    size_t mem_reserve;
    char cgroup_root[1024];
} srv_settings;

int srv_settings_load(srv_settings *st, core_err *err);
void srv_settings_log(const srv_settings *st);
void srv_settings_deinit(srv_settings *st);
int srv_duration_parse(const char *s, bool bare_minutes, int64_t *out_ns, core_err *err);
void srv_duration_format(int64_t ns, char *buf, size_t cap);
int srv_size_parse(const char *s, size_t *out, core_err *err);
bool srv_origin_allowed(const srv_settings *st, const char *origin);

// ---- server and requests (http.c) ----

typedef struct srv_server {
    srv_settings set;
    struct store *store;
    struct sched *sched;
    struct MHD_Daemon *daemon;
    atomic_int active;      /* requests between first callback and completion */
    atomic_bool stopping;   /* shutdown: new requests get 503 */
    atomic_bool force_stop; /* shutdown grace period over: streams are cancelled */
    obs_events *events;     /* residency events (the scheduler's hook feeds it) */
    atomic_int event_streams; /* open GET /api/events streams */
    bool host_check;        /* loopback listener: non-local Host headers get 403 (I.77) */
} srv_server;

typedef struct srv_upload srv_upload;
typedef struct srv_stream srv_stream;

typedef struct srv_req {
    srv_server *srv;
    struct MHD_Connection *conn;
    char method[16];
    char path[512];           /* url path, without the query */
    const void *route;
    bool oai;                 /* /v1 route: OpenAI error shapes */
    core_buf body;
    bool body_too_large;
    srv_upload *upload;       /* POST /api/blobs: streamed to disk */
    srv_stream *stream;       /* a streaming response, for cancellation */
    char origin[512];         /* allowed Origin to echo, "" if none */
    int64_t t_arrival;        /* core_mono_ns at the first callback */
    bool replied;
} srv_req;

/* Each handler queues exactly one response and returns MHD's result. */
typedef enum MHD_Result (*srv_handler)(srv_req *r);

enum { SRV_GET = 1, SRV_HEAD = 2, SRV_POST = 4, SRV_DELETE = 8, SRV_PUT = 16 };

/* Registers a route (before srv_http_start). prefix: path matches anything under it. oai:
 * OpenAI error shapes. upload: the body is streamed to disk (srv_upload_*). */
void srv_route_add(const char *path, bool prefix, int methods, srv_handler fn, bool oai,
                   bool upload);
int srv_http_start(srv_server *s, core_err *err);
/* Stops accepting new connections (existing ones go on). */
void srv_http_quiesce(srv_server *s);
void srv_http_stop(srv_server *s);

enum MHD_Result srv_reply_raw(srv_req *r, unsigned status, const char *ctype, const void *data,
                              size_t len);
/* Sends j (reference stolen; NULL = empty body) as application/json. */
enum MHD_Result srv_reply_json(srv_req *r, unsigned status, json_t *j);
/* {"error":"msg"} on native routes, {"error":{"message":…,"type":…}} on /v1. */
enum MHD_Result srv_reply_error(srv_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a core code to an HTTP status (one table) and replies with err's message. */
enum MHD_Result srv_reply_err(srv_req *r, const core_err *err);
unsigned srv_code_status(int code);

/* Parses the body as a JSON object. On failure it has already replied (400) and returns
 * NULL with *res set to the reply's result. */
json_t *srv_body_json(srv_req *r, enum MHD_Result *res);

// ---- streaming responses (stream.c) ----

enum { SRV_NEXT_MORE = 0, SRV_NEXT_END = 1 };

/* A producer of response bytes. next() appends zero or more bytes to out, waiting at most
 * timeout_ms for something to send; it returns SRV_NEXT_END when nothing more will come.
 * cancel() is called (from any thread, at most once) when the client went away or the
 * server stops; free() when the response is destroyed. */
typedef struct srv_producer {
    int (*next)(void *ctx, core_buf *out, int timeout_ms);
    void (*cancel)(void *ctx);
    void (*free)(void *ctx);
    void *ctx;
} srv_producer;

/* Queues a streaming response fed by p (taken over: p->free is called in every case). */
enum MHD_Result srv_reply_stream(srv_req *r, unsigned status, const char *ctype,
                                 const srv_producer *p);
/* Called by http.c when the request ends; cancels the producer unless it completed. */
void srv_stream_request_done(srv_stream *s, bool completed_ok);

// ---- store operations on a worker thread (task.c) ----

/* A create or pull running on a worker thread of its own, reporting NDJSON status lines. */
typedef struct srv_task srv_task;
/* The work, run on the worker thread: returns a core code and fills err. */
typedef int (*srv_task_fn)(srv_task *t, void *arg, core_err *err);

/* Starts fn(arg) on a new thread; free_arg(arg) (may be NULL) runs when the task is freed,
 * after the worker has ended — also when the start fails. */
int srv_task_start(srv_task **out, srv_task_fn fn, void *arg, void (*free_arg)(void *),
                   core_err *err);
/* Sets the cancel flag, joins the worker and frees. NULL is allowed. */
void srv_task_free(srv_task *t);
/* From the worker: queues obj (stolen) as one line. A line with a key (e.g. a digest)
 * replaces the previous line of the same key if that one is still queued. */
void srv_task_emit(srv_task *t, json_t *obj, const char *key);
/* From the worker: queues {"status": status}. */
void srv_task_status(srv_task *t, const char *status);
/* The flag the work checks to stop early (set when the client goes away or at a forced
 * shutdown); valid while the task lives. */
const atomic_bool *srv_task_cancel_flag(srv_task *t);
/* Answers the request with t (taken over). Not streamed: waits for the end, then
 * {"status":"success"} or the error with status_of(code) (NULL: srv_code_status).
 * Streamed: waits until n_first lines were emitted or the work ended; an error by then is
 * answered with its status code, otherwise the lines stream and end with
 * {"status":"success"} or {"error":…}. While waiting, a client that goes away cancels. */
enum MHD_Result srv_task_respond(srv_req *r, srv_task *t, bool stream, size_t n_first,
                                 unsigned (*status_of)(int code));

// ---- JSON field helpers (jsonutil.c) ----

/* Each reads an optional field of obj. Absent or null leaves *out untouched and returns
 * CORE_OK; a wrong type fills err (CORE_INVALID) with a message naming where and field. */
int srv_json_str(json_t *obj, const char *where, const char *key, const char **out,
                 core_err *err);
int srv_json_bool(json_t *obj, const char *where, const char *key, bool *out, core_err *err);
int srv_json_int(json_t *obj, const char *where, const char *key, int64_t *out,
                 core_err *err);
int srv_json_num(json_t *obj, const char *where, const char *key, double *out,
                 core_err *err);
/* The JSON type's name as Go's decoder words it ("number", "string", "bool", "object"). */
const char *srv_json_type_name(const json_t *j);
/* keep_alive of a request: absent/null → *set = false. A number is seconds, a string a
 * duration (bare numeric string = seconds, DESIGN §4.1). Negative = SRV_FOREVER. */
int srv_json_keep_alive(json_t *obj, bool *set, int64_t *ns, core_err *err);
/* RFC 3339 time for created_at (UTC, nanoseconds). */
void srv_now_utc(char *buf, size_t cap);
/* Appends o (reference stolen; NULL or out of memory appends nothing) as one compact NDJSON
 * line, or as an SSE `data:` event when sse. */
void srv_json_line(core_buf *out, json_t *o, bool sse);
/* Makes s (NUL-terminated, changed in place) valid UTF-8 for a JSON string: every byte that
 * does not belong to a well-formed character becomes '?'. Error messages need it: they
 * quote what the client sent (a URL path is any bytes) and may be cut inside a character
 * by a fixed-size buffer, and jansson refuses such a string (the reply would be empty). */
void srv_utf8_fix(char *s);

// ---- request checks (reqcheck.c) ----

/* The JSON kinds a request field may have. */
enum {
    SRV_F_STR, SRV_F_BOOL, SRV_F_INT, SRV_F_NUM, SRV_F_ARRAY, SRV_F_OBJECT, SRV_F_STR_ARRAY,
    SRV_F_STR_OR_OBJ, SRV_F_BOOL_OR_STR, SRV_F_STR_OR_STR_ARRAY
};
typedef struct srv_field {
    const char *key;
    int kind;
} srv_field;

/* Checks the types of the fields f[0..n) of obj (absent or null fields pass): a wrong type
 * is CORE_INVALID worded like Go's decoder, naming where.key. */
int srv_json_check_fields(json_t *obj, const char *where, const srv_field *f, size_t n,
                          core_err *err);
/* Whether the server listens on a loopback address (then the Host header is checked). */
bool srv_listen_is_loopback(const char *listen_host);
/* spec I.77: a Host header (with or without a port) naming this machine, a loopback,
 * private or unspecified address, localhost, or a name under .localhost/.local/.internal. */
bool srv_host_allowed(const char *host_header);

// ---- options (options.c) ----

#define SRV_MAX_STOPS 16
/* Stop strings gathered from the layers (borrowed from their JSON). */
typedef struct srv_stops {
    const char *v[SRV_MAX_STOPS];
    size_t n;
} srv_stops;

/* Checks the types of an options object (is_params: a model's params layer, which may also
 * hold keep_alive). A wrong type is CORE_INVALID (400) in a params layer and CORE_INTERNAL
 * (500, spec I.75) in a request's options. Unknown keys are logged and ignored. */
int srv_options_check(json_t *opts, bool is_params, core_err *err);
/* Layers model params (may be NULL) and request options (may be NULL) onto p (which has its
 * defaults). Stop strings end up in st and p->stops. */
int srv_options_apply(json_t *model_params, json_t *req_opts, sched_params *p, srv_stops *st,
                      core_err *err);

/* The `details` object of tags, show and ps (api_store.c). */
json_t *srv_details_json(const store_details *d);
/* The model a store request names (api_store.c): `model`, else the legacy `name`; required
 * (400 "model is required") and a valid name (400). False when it has replied. */
bool srv_model_arg(srv_req *r, json_t *j, const char *where, const char **name,
                   enum MHD_Result *res);

// ---- inference jobs (infer.c) ----

enum { SRV_JOB_GENERATE, SRV_JOB_CHAT, SRV_JOB_OAI_CHAT, SRV_JOB_OAI_COMPLETION };

/* One submitted inference request and its response state. */
typedef struct srv_job {
    int kind;
    srv_server *srv;
    sched_req *req;
    sched_event ev;          /* the current event */
    bool have_event;         /* ev was fetched but not yet sent */
    bool stream;
    bool want_context;
    bool include_usage;      /* /v1 stream_options.include_usage */
    char model[STORE_NAME_MAX]; /* the name as sent, echoed in responses */
    char id[48];             /* /v1 id */
    int64_t created;         /* /v1 created, unix seconds */
    core_buf text;           /* accumulated text when not streaming */
    core_buf line;
} srv_job;

bool srv_conn_gone(struct MHD_Connection *c);
/* Resolves a model for an inference endpoint: status and msg say what to answer on error
 * (an unknown model is worded per route, spec I.71). */
int srv_model_resolve(srv_req *r, const char *name, store_model **out, unsigned *status,
                      char *msg, size_t cap);
void srv_sched_model(const store_model *m, const char *as_sent, sched_model *out);

/* One inference request while its handler builds it (native and /v1 alike). */
typedef struct srv_ireq {
    json_t *body;
    json_t *model_params;    /* the model's params layer, or NULL */
    store_model *m;
    eng_tmpl *tmpl;
    const char *const *fmt_stops; /* the chat format's stops (no template layer), or NULL */
    sched_params p;
    srv_stops stops;
    core_buf prompt;
    int32_t *ctx_tokens;
    eng_msg *msgs;
    char **owned;            /* strings made here (lower-cased roles, joined parts) */
    size_t n_owned;
    bool ka_set;             /* the request's keep_alive */
    int64_t ka_ns;
} srv_ireq;

/* Zeroes q and reads the body as a JSON object; false when it has replied (400), and then
 * q needs no srv_ireq_free. */
bool srv_ireq_init(srv_req *r, srv_ireq *q, enum MHD_Result *res);
void srv_ireq_free(srv_ireq *q);
/* Keeps s (malloc'd, may be NULL) until q is freed; NULL when s is NULL or memory ran out
 * (s is freed then). */
char *srv_ireq_own(srv_ireq *q, char *s);
/* Resolves model (the name as sent), then fills q->p: defaults, the model, the request's
 * keep_alive (q->ka_*), and the options layered over the model's params (opts: the
 * request's options object, or NULL). False when it has replied. */
bool srv_ireq_model(srv_req *r, srv_ireq *q, const char *model, json_t *opts,
                    enum MHD_Result *res);
/* Submits q->prompt for generation and answers (stream or one object). Without stop
 * strings from the options, the chat format's (q->fmt_stops) are used. */
enum MHD_Result srv_ireq_submit(srv_req *r, srv_ireq *q, int kind, const char *model,
                                bool stream, bool want_context, bool include_usage);
/* The template for m: override, else its template layer, else dwell's chat format matching
 * the GGUF's Jinja template (its stop strings in *fmt_stops). */
int srv_template_for(const store_model *m, const char *override, eng_tmpl **out,
                     const char *const **fmt_stops, core_err *err);
srv_job *srv_job_new(srv_req *r, int kind, const char *model_as_sent);
void srv_job_free(srv_job *j);
/* Waits for the next event, cancelling the request if the client goes away. */
int srv_job_wait(srv_req *r, srv_job *j);
/* Answers with the job's events (stream or one object); takes the job over. */
enum MHD_Result srv_job_respond(srv_req *r, srv_job *j);
json_t *srv_native_obj(const srv_job *j, const char *text, const sched_event *done_ev);
json_t *srv_oai_obj(const srv_job *j, const char *text, const sched_event *done_ev, bool chunk);

/* Runs an embedding (or load) request to its DONE event (api_native.c). */
int srv_embed_run(srv_req *r, sched_params *p, srv_job **out, core_err *err);
/* One embedding as a JSON array, cut to dims (> 0) and then re-normalized. */
json_t *srv_embd_row(const float *v, size_t n, int64_t dims, bool renorm);

// ---- handlers ----

enum MHD_Result srv_h_root(srv_req *r);
enum MHD_Result srv_h_version(srv_req *r);
enum MHD_Result srv_h_blob(srv_req *r);
enum MHD_Result srv_h_create(srv_req *r);
enum MHD_Result srv_h_tags(srv_req *r);
enum MHD_Result srv_h_show(srv_req *r);
enum MHD_Result srv_h_copy(srv_req *r);
enum MHD_Result srv_h_delete(srv_req *r);
enum MHD_Result srv_h_pull(srv_req *r);
enum MHD_Result srv_h_ps(srv_req *r);
enum MHD_Result srv_h_stats(srv_req *r);
enum MHD_Result srv_h_metrics(srv_req *r);
enum MHD_Result srv_h_events(srv_req *r);
enum MHD_Result srv_h_generate(srv_req *r);
enum MHD_Result srv_h_chat(srv_req *r);
enum MHD_Result srv_h_embed(srv_req *r);
enum MHD_Result srv_h_embeddings(srv_req *r);
enum MHD_Result srv_h_oai_chat(srv_req *r);
enum MHD_Result srv_h_oai_completions(srv_req *r);
enum MHD_Result srv_h_oai_embeddings(srv_req *r);
enum MHD_Result srv_h_oai_models(srv_req *r);
enum MHD_Result srv_h_oai_model(srv_req *r);

/* Blob uploads stream to disk (api_store.c): begin on the first callback (may reply with an
 * error and return false), feed data, and the handler finishes it. */
bool srv_upload_begin(srv_req *r, enum MHD_Result *res);
void srv_upload_feed(srv_req *r, const char *data, size_t len);
void srv_upload_free(srv_upload *u);

#endif
