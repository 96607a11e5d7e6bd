/* internal.h — sched's private structures: the backend interface (the engine, or a fake in
 * the scheduler's logic tests), requests, the loaded-model table and the per-model runner.
 *
 * Locks: s->mu (table, pending queue, counters) → run->mu (a runner's slot queue) →
 * r->mu (a request's event channel). Never taken in the other order; none is held across
 * a backend call. */
#ifndef DWELL_SCHED_INTERNAL_H
#define DWELL_SCHED_INTERNAL_H

#include <pthread.h>

#include "sched/sched.h"

typedef struct sched_inst sched_inst; /* a backend's loaded model, opaque */
typedef struct sched_entry sched_entry;
typedef struct sched_runner sched_runner;

// ---- backend ----

/* Load-time options, as the scheduler settled them. */
typedef struct sched_load_opts {
    int64_t num_ctx;   /* per slot, already clamped to [4, n_ctx_train] */
    int32_t n_seq;     /* slots */
    int32_t n_batch;   /* 0 = 512 */
    int32_t n_threads; /* 0 = engine default */
    int kv_type;
} sched_load_opts;

/* What the scheduler learns about a model file before loading it (cached per path). */
typedef struct sched_probe {
    size_t weight_bytes;
    int64_t n_ctx_train;
    eng_hparams hp; /* for the backend's estimate */
} sched_probe;

/* One request on one slot, as the runner hands it to the backend. */
typedef struct sched_slot {
    int32_t id;
    sched_req *req;  /* NULL = free */
    bool done;       /* set by step when the request finished (req->fin filled) */
    void *state;     /* the backend's per-slot state (made by load) */
} sched_slot;

typedef struct sched_backend {
    const char *name;
    /* Reads a model's header: weight bytes and trained context. Any thread. */
    int (*probe)(const char *path, sched_probe *out, core_err *err);
    /* Bytes a model would use with these options (weights + context). */
    size_t (*estimate)(const sched_probe *p, const sched_load_opts *o);
    /* Loads (on a loader thread). cancel: abandon early if it becomes true. */
    int (*load)(const char *path, const sched_load_opts *o, const atomic_bool *cancel,
                sched_inst **out, core_err *err);
    /* Measured bytes: weights resident + context allocations; *kv gets the latter. */
    size_t (*measured)(sched_inst *inst, size_t *kv, size_t *weights);
    /* Bytes of the instance resident in RAM now; NULL = unknown. Called with the scheduler
     * lock held, while a runner is attached (so the instance is alive): must be quick. */
    size_t (*resident)(sched_inst *inst);
    void (*unload)(sched_inst *inst);
    /* Runner thread: makes per-slot state (called once per slot after load) and frees it. */
    int (*slot_init)(sched_inst *inst, sched_slot *slot, core_err *err);
    void (*slot_deinit)(sched_inst *inst, sched_slot *slot);
    /* Runner thread: tokenizes the request (into r->toks) before a slot is chosen. */
    int (*prepare)(sched_inst *inst, sched_req *r, core_err *err);
    /* How many of r's tokens the slot has cached (prefix reuse), for picking a slot. */
    size_t (*affinity)(sched_inst *inst, const sched_slot *slot, const sched_req *r);
    /* Starts r on the slot (slot->req is set). */
    int (*begin)(sched_inst *inst, sched_slot *slot, core_err *err);
    /* One batched step over the active slots: each either progresses or sets done (with
     * r->fin filled). A return other than OK fails every active slot with err. */
    int (*step)(sched_inst *inst, sched_slot *const *active, int32_t n, core_err *err);
    /* The slot's request ended (done, cancelled or failed): reset per-request state. */
    void (*end)(sched_inst *inst, sched_slot *slot);
} sched_backend;

extern const sched_backend sched_engine_backend;

/* Starts a scheduler with the given backend (tests use a fake one). */
int sched_new_with_backend(sched **out, const sched_config *cfg, const sched_backend *be,
                           core_err *err);

// ---- requests ----

struct sched_req {
    sched *s;
    /* Immutable after submit (copies of sched_params). */
    int kind;
    char *name, *path, *digest;
    bool has_ka, model_has_ka;
    int64_t ka_ns, model_ka_ns;
    int64_t num_ctx;
    int32_t num_batch, num_thread;
    char *prompt;
    size_t prompt_len;
    int32_t *context;
    size_t n_context;
    eng_sampler_params sampler;
    char **stops;
    size_t n_stops;
    int32_t num_predict, num_keep;
    bool want_context, truncate, normalize;
    char **inputs;
    size_t n_inputs;
    int pooling;
    int64_t t_arrive;   /* mono ns */
    int64_t t_acquired; /* mono ns when it got the model (0 = not yet) */
    bool warm;          /* found the model ready */

    atomic_bool cancel;

    /* Runner/backend-owned while on a slot. */
    eng_tokens toks;    /* the prompt's tokens (prepare) */
    sched_event fin;    /* the final event being built (DONE fields or err) */

    /* Event channel, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    core_buf text;      /* text not yet taken: the pieces from text.data + head on */
    size_t head;        /* bytes of text already taken */
    size_t *ends;       /* [n_ends] end offset in text of each queued piece (one per token) */
    size_t n_ends, cap_ends;
    bool finished;      /* fin is final */
    bool final_taken;
    int holds;          /* 2: the caller and the scheduler; freed at 0 */

    /* Scheduler-owned (under s->mu) / runner-owned (under run->mu) links. */
    sched_req *next;
    sched_entry *entry;
    bool waiting;       /* counted in the queue depth */
};

/* Copies p into a new request with two holds (caller and scheduler). */
int sched_req_make(sched_req **out, const sched_params *p, core_err *err);
/* Appends generated text to the request's channel (runner thread). */
void sched_req_emit(sched_req *r, const char *text, size_t len);
/* Posts r->fin as the final event (type DONE or ERROR set by the caller) and drops the
 * scheduler's hold. */
void sched_req_finish(sched_req *r);
void sched_req_fail(sched_req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sched_req_drop(sched_req *r); /* drops one hold; frees at 0 */

// ---- runner ----

struct sched_runner {
    sched *s;
    sched_entry *e;
    const sched_backend *be;
    sched_inst *inst;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sched_req *q_head, *q_tail; /* waiting for a slot */
    bool stop;                  /* finish: cancel everything and exit */
    int32_t n_slots;
    int32_t n_busy;             /* read by snapshots under mu */
    sched_slot *slots;
    sched_slot **active;        /* scratch, n_slots */
    int64_t step_delay_ns;      /* pause after each step (sched_config.step_delay_ns) */
};

/* Starts the runner thread of a loaded model (inst borrowed; the entry unloads it). */
int sched_runner_start(sched_runner **out, sched *s, sched_entry *e, const sched_backend *be,
                       sched_inst *inst, int32_t n_slots, int64_t step_delay_ns,
                       core_err *err);
/* Queues r for a slot (r already holds a reference on the entry). */
void sched_runner_push(sched_runner *run, sched_req *r);
/* Wakes the runner (a request was cancelled). */
void sched_runner_wake(sched_runner *run);
int32_t sched_runner_busy(sched_runner *run);
/* Stops (cancelling whatever is left) and joins; frees the runner. NULL is allowed. */
void sched_runner_stop(sched_runner *run);

/* Runner → scheduler: r finished on entry e (done, failed or cancelled). */
void sched_release(sched *s, sched_entry *e, sched_req *r);
/* Runner → scheduler: r left the slot queue for a slot (queue depth). */
void sched_unwait(sched *s, sched_req *r);

#endif
