/* internal.h — what the store's files share; not for other subsystems. */
#ifndef DWELL_STORE_INTERNAL_H
#define DWELL_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

#define STORE_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define STORE_MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define STORE_MT_PREFIX "application/vnd.ollama.image."
#define STORE_MT_MODEL STORE_MT_PREFIX "model"
#define STORE_MT_ADAPTER STORE_MT_PREFIX "adapter"
#define STORE_MT_PROJECTOR STORE_MT_PREFIX "projector"
#define STORE_MT_TEMPLATE STORE_MT_PREFIX "template"
#define STORE_MT_PROMPT STORE_MT_PREFIX "prompt" /* legacy name of template */
#define STORE_MT_SYSTEM STORE_MT_PREFIX "system"
#define STORE_MT_PARAMS STORE_MT_PREFIX "params"
#define STORE_MT_MESSAGES STORE_MT_PREFIX "messages"
#define STORE_MT_LICENSE STORE_MT_PREFIX "license"

/* The largest text layer (template, system, params, license, messages) read into memory. */
#define STORE_TEXT_LAYER_MAX ((size_t)64 << 20)
/* The largest manifest or config read. */
#define STORE_JSON_MAX ((size_t)16 << 20)

struct store {
    char *root;
    char *manifests; /* <root>/manifests */
    char *blobs;     /* <root>/blobs */
    pthread_rwlock_t lock;
    atomic_uint tmp_seq; /* makes temporary names unique inside this process */
    bool curl_ready;     /* curl_global_init succeeded (for store_pull) */
};

/* One entry of a manifest (the config is one too). */
typedef struct store_layer {
    char media_type[128];
    char digest[STORE_DIGEST_BUF];
    uint64_t size;
    char *from; /* heap, NULL when absent */
    char *name; /* heap, NULL when absent */
} store_layer;

typedef struct store_manifest {
    store_layer config;
    store_layer *layers;
    size_t n_layers;
} store_manifest;

// ---- name.c ----
void store_hex(const unsigned char *md, size_t n, char *out);

// ---- blob.c ----
/* Writes data to path through a temporary ".<base>.tmp-<pid>-<seq>" beside it (a name no
 * reader takes for a model or a blob), fsync, rename, fsync of the directory. */
int store_write_atomic(store *s, const char *path, const void *data, size_t len,
                       core_err *err);
/* Stores data as a blob (no-op when present); digest_out gets its digest. *created tells
 * whether the blob was new (may be NULL). */
int store_blob_put(store *s, const void *data, size_t len, char digest_out[STORE_DIGEST_BUF],
                   bool *created, core_err *err);
/* Reads a small blob whole (at most max bytes) into a NUL-terminated heap buffer. */
int store_blob_read(store *s, const char *digest, size_t max, char **out, size_t *len,
                    core_err *err);
/* fsync of the directory that holds path (after a rename into it). */
void store_fsync_parent(const char *path);

// ---- manifest.c ----
int store_manifest_parse(const char *json, size_t len, const char *what, store_manifest *out,
                         core_err *err);
/* Encodes as Ollama's Go encoder does: one line of compact JSON and a newline. */
int store_manifest_encode(const store_manifest *m, char **out, size_t *len, core_err *err);
void store_manifest_deinit(store_manifest *m);
/* Deep-copies a layer (strings duplicated). */
int store_layer_copy(store_layer *dst, const store_layer *src);
void store_layer_deinit(store_layer *l);
/* Fills details (all but parent_model) and renderer/parser from a config blob's JSON. */
int store_config_parse(const char *json, size_t len, store_details *d, char **renderer,
                       char **parser, char **requires_, core_err *err);

/* Facts about a GGUF blob that go into the config. */
typedef struct store_gguf_facts {
    char architecture[STORE_FIELD_MAX];
    char parameter_size[STORE_FIELD_MAX];
    char file_type[STORE_FIELD_MAX];
    const char *media_type; /* STORE_MT_MODEL, _ADAPTER or _PROJECTOR */
} store_gguf_facts;
/* Opens the GGUF at path and reads its facts. CORE_INVALID when it is not GGUF,
 * CORE_FORMAT when it is a damaged one. */
int store_gguf_facts_read(const char *path, store_gguf_facts *f, core_err *err);
/* Ollama's format.HumanNumber: 7241732096 → "7.2B", 260000 → "260K". */
void store_human_number(uint64_t n, char *buf, size_t cap);

// ---- store.c ----
/* Finds the manifest of n, each part matched exactly first, then case-insensitively.
 * canon (may be NULL) gets the parts as on disk. CORE_NOTFOUND when absent. */
int store_manifest_find(store *s, const store_name *n, char *path, size_t cap,
                        store_name *canon);
/* The name with every part that already exists on disk (case-insensitively) replaced by
 * the on-disk spelling (Ollama's getExistingName), and its manifest path. */
void store_name_canonical(store *s, const store_name *n, store_name *out);
int store_manifest_path(const store *s, const store_name *n, char *path, size_t cap,
                        core_err *err);
/* Reads and parses the manifest at path; raw_out (may be NULL) keeps the bytes. */
int store_manifest_load(const char *path, const char *what, store_manifest *m, char **raw_out,
                        size_t *raw_len, core_err *err);
/* Removes the blobs of m that no manifest in the store uses (lock held exclusively). */
int store_gc_layers(store *s, const store_manifest *m, core_err *err);

// ---- registry.c ----

/* How a pull talks to a registry. */
typedef struct store_http {
    bool insecure;             /* http allowed (else https only, after redirects too) */
    int connect_timeout_s;
    int stall_timeout_s;       /* abort when less than 1 byte/s arrives for this long */
    const atomic_bool *cancel; /* NULL: never cancelled */
} store_http;

/* The body of the final response, in pieces: status is its HTTP status, range_start the
 * start of its Content-Range (-1 if none). Called once with len 0 when the response has no
 * body. Returns 0 to go on, or a core code (having filled its own error) to stop. */
typedef int (*store_http_body_fn)(void *ud, long status, int64_t range_start,
                                  const char *data, size_t len);

typedef struct store_http_req {
    const char *url;
    const char *accept;      /* Accept header, NULL for none */
    uint64_t range_from;     /* > 0: ask for the bytes from there on (Range) */
    bool follow;             /* follow redirects */
    int total_timeout_s;     /* 0 = none */
    store_http_body_fn body;
    void (*tick)(void *ud);  /* about once a second and as bytes arrive; may be NULL */
    void *ud;
} store_http_req;

/* One GET. CORE_OK when the transfer completed (whatever the status: the body callback saw
 * it), the body callback's code when it stopped the transfer, CORE_CANCELLED,
 * CORE_TIMEOUT (connect or stall) or CORE_PROTOCOL (unreachable, reset, too many
 * redirects, a scheme not allowed), worded `Get "URL": why`. *transient tells whether
 * trying again may help. */
int store_http_get(const store_http *h, const store_http_req *q, long *status, bool *transient,
                   core_err *err);

#endif
