/* sched.h — the residency manager (DESIGN.md §2): the table of loaded models, admission
 * against a count cap and a memory budget, LRU eviction of idle models, pinning, keep-alive
 * timers, the bounded queue, and OLLAMA_NUM_PARALLEL slots per model decoded together.
 *
 * Threads and ownership:
 *   - One **scheduler thread** (started by sched_new) owns the model table, the pending queue
 *     and the keep-alive timers. It never loads or computes itself.
 *   - **Loader threads** (one per load in progress, short-lived) open the GGUF and allocate
 *     the context, so loads of different models run concurrently.
 *   - One **runner thread** per loaded model owns its engine context and its slots and runs
 *     one batched eng_ctx_decode per step over every active slot.
 *   - **HTTP threads** call sched_submit, then block in sched_req_next for the request's
 *     events (with a timeout, so they can check their connection), call sched_req_cancel
 *     when the client is gone, and sched_req_free at the end.
 * Every public function here is safe to call from any thread.
 * Lock order (internal): scheduler mutex → runner mutex → request mutex. No lock is held
 * across compute, file I/O or the event callback's own locks other than obs's.
 *
 * Identity: a loaded model is keyed by its GGUF weights path (spec C.23): aliases that share
 * the blob share the loaded model; /api/ps reports the name of the request that loaded it. */
#ifndef DWELL_SCHED_H
#define DWELL_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "engine/engine.h"

typedef struct sched sched;
typedef struct sched_req sched_req;
typedef struct sched_event_rec sched_event_rec;

/* A keep-alive that never expires (any negative input becomes this): the model is pinned. */
#define SCHED_FOREVER INT64_MAX

/* Where the keep-alive in force came from (precedence, highest first: request > model >
 * server > default). */
enum sched_ka_source {
    SCHED_KA_DEFAULT = 0, /* 5m */
    SCHED_KA_SERVER = 1,  /* the server's OLLAMA_KEEP_ALIVE */
    SCHED_KA_MODEL = 2,   /* the model's PARAMETER keep_alive */
    SCHED_KA_REQUEST = 3, /* a request's keep_alive (sticks until another request sets one) */
};
/* "default", "server", "model", "request"; never NULL. */
const char *sched_ka_source_name(int source);

// ---- configuration ----

typedef struct sched_config {
    int32_t num_parallel;    /* slots per model (OLLAMA_NUM_PARALLEL); 0 is taken as 1 */
    int32_t max_loaded;      /* OLLAMA_MAX_LOADED_MODELS; 0 = no count cap */
    int32_t max_queue;       /* OLLAMA_MAX_QUEUE: every waiting request (loads and slots) */
    int64_t load_timeout_ns; /* OLLAMA_LOAD_TIMEOUT; <= 0 or SCHED_FOREVER = none */
    int64_t keep_alive_ns;   /* the server's keep-alive (negative or SCHED_FOREVER = pinned) */
    int keep_alive_source;   /* SCHED_KA_SERVER if OLLAMA_KEEP_ALIVE was set, else DEFAULT */
    int64_t num_ctx;         /* default num_ctx (OLLAMA_CONTEXT_LENGTH), >= 4 */
    int kv_type;             /* enum eng_kv_type (OLLAMA_KV_CACHE_TYPE): ENG_KV_F16 default */
    int32_t n_threads;       /* compute threads per model context; 0 = engine default */
    int64_t step_delay_ns;   /* DWELL_DEBUG_STEP_DELAY: a pause after every decode step
                                (to test clients against a slow model); 0 = none */
    size_t budget_bytes;     /* memory budget for all loaded models; 0 = unlimited */
    int budget_source;       /* enum core_budget_source, reported by snapshots */
    /* Optional event hook (obs_events_hook fits it), called on the scheduler or a loader
     * thread for every load, unload, eviction, expiry and rejection, with the scheduler's
     * lock held: it must be quick and must not call back into sched. */
    void (*on_event)(void *ud, const sched_event_rec *ev);
    void *event_ud;
} sched_config;

/* Defaults: 1 slot, no count cap, queue 512, load timeout 5m, keep-alive 5m (DEFAULT), num_ctx
 * 4096, f16 KV, unlimited budget (the server sets it from core_budget_probe). */
void sched_config_default(sched_config *c);

/* Starts the scheduler thread with the engine as its backend. cfg is copied.
 * *out is written only on success. */
int sched_new(sched **out, const sched_config *cfg, core_err *err);
/* Stops accepting requests, fails every waiting request with CORE_CANCELLED, cancels every
 * running one, unloads every model (spec D.39) and joins all threads. NULL is allowed. */
void sched_free(sched *s);

// ---- requests ----

enum sched_kind {
    SCHED_GENERATE = 0, /* completion: streamed text, then a DONE event */
    SCHED_EMBED = 1,    /* embeddings of inputs[], in the DONE event */
    SCHED_LOAD = 2,     /* just load (or reuse) the model: DONE with done_reason "load" */
};

enum sched_pooling {
    SCHED_POOL_LAST = 0, /* hidden state of the last token (Ollama for decoder-only models) */
    SCHED_POOL_MEAN = 1, /* mean over the input's tokens */
};

/* The model a request is for, filled by the server from the store's resolved model. All
 * strings are borrowed for the duration of sched_submit (copied). */
typedef struct sched_model {
    const char *name;     /* display name as requested ("llama3.2:latest"), for ps and logs */
    const char *path;     /* GGUF weights path: the identity of the loaded model */
    const char *digest;   /* manifest digest (hex, no "sha256:"), for ps; may be NULL */
    /* The model's PARAMETER keep_alive, parsed with the person rule (bare number = minutes). */
    bool has_keep_alive;
    int64_t keep_alive_ns;
} sched_model;

/* Everything a request needs. The server merges the model's params and the request's
 * options into this (request wins) and validates them; sched only clamps (num_ctx to
 * [4, n_ctx_train]). All pointers are borrowed for the duration of sched_submit. */
typedef struct sched_params {
    int kind;                  /* enum sched_kind */
    sched_model model;

    /* The request's keep_alive (JSON rule: bare number = seconds), if it gave one. */
    bool has_keep_alive;
    int64_t keep_alive_ns;

    /* Load-time options: a loaded model is reloaded (once idle) when a request needs a
     * larger num_ctx, or sets num_batch/num_thread to other values than it was loaded with.
     * 0 = not set (server default / engine default). */
    int64_t num_ctx;
    int32_t num_batch;
    int32_t num_thread;

    /* Generation input: context tokens (the deprecated /api/generate `context`) followed by
     * the tokenized prompt. The prompt is tokenized with parse_special, and with add_special
     * (BOS) only when there is no context. */
    const char *prompt;
    size_t prompt_len;
    const int32_t *context;
    size_t n_context;

    eng_sampler_params sampler;
    const char *const *stops;  /* stop strings */
    size_t n_stops;
    int32_t num_predict;       /* <= 0 (-1, -2): until end of generation or context full */
    int32_t num_keep;          /* prompt tokens kept (after BOS) when the prompt is too long;
                                  < 0 = default 4 (Ollama) */
    bool want_context;         /* return the `context` tokens in DONE (/api/generate, !raw) */
    bool truncate;             /* prompt/input longer than num_ctx: truncate (true) or fail
                                  with "the input length exceeds the context length" */

    /* Embeddings: inputs[n_inputs], pooled per `pooling`, L2-normalized if `normalize`
     * (/api/embed yes, /api/embeddings no). */
    const char *const *inputs;
    size_t n_inputs;
    int pooling;               /* enum sched_pooling */
    bool normalize;
} sched_params;

/* Sets everything to "not set": kind GENERATE, Ollama's sampler defaults, num_keep -1,
 * truncate true, pooling LAST, normalize true. */
void sched_params_default(sched_params *p);

/* Submits a request and returns at once. Immediate failures (nothing to wait for):
 *   CORE_BUSY    the queue is full (OLLAMA_MAX_QUEUE): 503 "server busy, please try again.
 *                maximum pending requests exceeded"; also "shutting down";
 *   CORE_INVALID bad parameters (e.g. no path, kind EMBED without inputs).
 * Everything else (load failures, pinned models in the way, model larger than the budget,
 * timeouts) comes as the request's ERROR event. *out is owned by the caller, who must call
 * sched_req_free exactly once. */
int sched_submit(sched *s, const sched_params *p, sched_req **out, core_err *err);

enum sched_ev_type {
    SCHED_EV_TEXT = 1,  /* text: a chunk of output (whole UTF-8 characters, stops removed) */
    SCHED_EV_DONE = 2,  /* the final event of a successful request */
    SCHED_EV_ERROR = 3, /* the final event of a failed one: err.code / err.msg */
};

/* One event. sched_req_next fills it; the text, context and embeddings buffers belong to
 * the event and are reused by the next sched_req_next on the same event; call
 * sched_event_deinit once at the end. Zero-initialize before first use. */
typedef struct sched_event {
    int type;                    /* enum sched_ev_type */
    core_buf text;               /* TEXT: the chunk (may hold several tokens' worth) */
    core_err err;                /* ERROR: the code and message. Codes:
                                    BUSY (503: pinned models in the way, shutting down),
                                    LIMIT (model larger than the budget; input exceeds the
                                    context with truncate false), TIMEOUT (load timeout),
                                    CANCELLED (request cancelled), NOMEM, IO, FORMAT,
                                    UNSUPPORTED (load failures), INTERNAL. */
    /* DONE: */
    const char *done_reason;     /* "stop", "length", "load" (static strings) */
    int64_t prompt_eval_count;   /* prompt tokens evaluated (cached prefix tokens excluded) */
    int64_t prompt_eval_ns;
    int64_t eval_count;          /* generated tokens */
    int64_t eval_ns;
    int64_t load_ns;             /* arrival → obtained the model (queue, evictions, load) */
    int64_t total_ns;            /* arrival → done */
    int32_t *context;            /* want_context: prompt + generated token ids */
    size_t n_context;
    size_t context_cap;
    float *embd;                 /* EMBED: n_inputs rows of n_embd floats */
    size_t n_embd;
    size_t n_embd_rows;
    size_t embd_cap;
    int64_t embd_prompt_tokens;  /* EMBED: tokens evaluated over all inputs */
} sched_event;

void sched_event_deinit(sched_event *ev);

/* Waits up to timeout_ms (< 0 = forever) for the request's next event. Returns CORE_OK with
 * *ev filled, CORE_TIMEOUT if nothing came in time (ev untouched: check the connection and
 * call again), or CORE_INVALID once the final event was already taken. Text events are
 * coalesced: one call returns all the text produced since the last. Only one thread may
 * read a request's events. */
int sched_req_next(sched_req *r, int timeout_ms, sched_event *ev, core_err *err);
/* Marks the request cancelled (client gone): a waiting request leaves the queue; a running
 * one stops within one token and frees its slot; a load nobody else waits for is abandoned.
 * The final event is then ERROR CANCELLED. Safe from any thread, any number of times. */
void sched_req_cancel(sched_req *r);
/* Releases the caller's hold on the request (cancels it first if it is not finished). */
void sched_req_free(sched_req *r);
/* The name of the model that is serving the request (as loaded), for logs. */
const char *sched_req_model_name(const sched_req *r);

// ---- explicit unload ----

/* Unloads the model loaded from `path` (spec B.15, `dwell stop`, /api/delete): sets its
 * keep-alive to 0 (source request) and cancels its timer; an idle model unloads now, a busy
 * one when its requests finish; a load in progress is unloaded once it is ready.
 * Returns CORE_OK whether or not the model was resident (*was_resident says which; may be
 * NULL). Asynchronous: /api/ps may list it briefly in state "unloading". */
int sched_unload(sched *s, const char *path, bool *was_resident, core_err *err);

// ---- snapshot for /api/ps and /api/stats ----

enum sched_state {
    SCHED_STATE_LOADING = 0,
    SCHED_STATE_READY = 1,     /* busy when in_flight > 0, idle otherwise */
    SCHED_STATE_UNLOADING = 2,
};
/* "loading", "ready" ("busy"/"idle" are derived from in_flight), "unloading". */
const char *sched_state_name(int state);

typedef struct sched_model_info {
    char name[256];              /* as loaded */
    char path[1024];
    char digest[80];
    int state;                   /* enum sched_state */
    int32_t in_flight;           /* requests holding the model (running or waiting a slot) */
    int32_t slots;               /* OLLAMA_NUM_PARALLEL */
    int32_t slots_busy;
    int32_t waiting;             /* requests waiting for a slot or for this load */
    int64_t keep_alive_ns;       /* SCHED_FOREVER when pinned */
    int keep_alive_source;       /* enum sched_ka_source */
    bool pinned;
    /* Wall clock (ns since the epoch) when it expires: idle → idle time + keep_alive; busy
     * or never used → now + keep_alive (spec D.36); pinned → SCHED_FOREVER. 0 = keep_alive 0
     * and about to unload. */
    int64_t expires_at;
    int64_t last_used;           /* wall ns of the last request's end (or load), 0 if none */
    int64_t loaded_at;           /* wall ns when it became ready, 0 while loading */
    int64_t num_ctx;             /* per-slot context (context_length in /api/ps) */
    int64_t n_ctx_train;
    int kv_type;
    size_t est_bytes;            /* estimate before loading (weights + context) */
    size_t measured_bytes;       /* measured after loading (weights mapped + context
                                    allocations); 0 while loading */
    size_t size_bytes;           /* measured if known, else estimate: what the budget counts */
    size_t resident_bytes;       /* in RAM right now (mincore of the weight mapping and the
                                    context's buffers); 0 while loading or unloading */
    size_t weight_bytes;
    size_t kv_bytes;             /* context allocations (KV cache + scratch) */
    /* Counters for this loaded path (kept across reloads while the server runs). */
    uint64_t requests;           /* requests served (finished, any outcome) */
    uint64_t warm_hits;          /* requests that found it loaded */
    uint64_t cold_loads;         /* loads of this path */
    int64_t last_load_ns;        /* duration of the last load */
    uint64_t tokens_generated;
    uint64_t prompt_tokens;      /* prompt (and embedding input) tokens evaluated */
} sched_model_info;

typedef struct sched_snap {
    sched_model_info *models;    /* loaded or loading models, heap array */
    size_t n_models;
    size_t budget_bytes;         /* 0 = unlimited */
    int budget_source;           /* enum core_budget_source */
    size_t models_bytes;         /* sum of size_bytes */
    int32_t queue_depth;         /* waiting requests (loads and slots) */
    int32_t max_queue;
    int32_t max_loaded;
    int32_t num_parallel;
    /* Server totals since start. Refused requests by cause: the queue was full
     * (rejected_busy), only pinned models stood in the way, the model is larger than the
     * whole budget. */
    uint64_t loads, load_failures, unloads, evictions, expiries, rejected_busy, requests;
    uint64_t rejected_pinned, rejected_too_large;
    int64_t uptime_ns;           /* since sched_new */
} sched_snap;

/* Copies the current table (a brief lock; never waits for a load). Free with
 * sched_snap_deinit. */
int sched_snapshot(sched *s, sched_snap *out, core_err *err);
void sched_snap_deinit(sched_snap *snap);

// ---- events (for obs and logs) ----

enum sched_event_kind {
    SCHED_EVT_LOAD = 0,      /* a model became ready */
    SCHED_EVT_LOAD_FAILED,
    SCHED_EVT_UNLOAD,        /* reason: "expired", "keep_alive 0", "requested", "evicted",
                                "reload", "shutdown", "abandoned" */
    SCHED_EVT_EVICT,         /* chosen as eviction victim (an UNLOAD follows); reason "to
                                make room for NAME (the limit in the way)" */
    SCHED_EVT_EXPIRE,        /* keep-alive timer fired (an UNLOAD follows) */
    SCHED_EVT_REJECT,        /* a request refused (queue full, pinned in the way, too big) */
};
const char *sched_event_kind_name(int kind); /* "load", "load_failed", ... */

struct sched_event_rec {
    int kind;                /* enum sched_event_kind */
    int64_t wall_ns;
    const char *name;        /* borrowed for the call */
    const char *path;
    const char *reason;      /* short text, borrowed */
    size_t bytes;            /* the model's size */
    int64_t duration_ns;     /* load time for LOAD, resident time for UNLOAD */
};

#endif
