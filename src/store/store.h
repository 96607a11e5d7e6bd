/* store.h — the model store, in Ollama's on-disk layout, so an existing Ollama store is read
 * as it is (spec K, G, appendix C).
 *
 *   <root>/manifests/<host>/<namespace>/<model>/<tag>   one line of JSON (docker v2 manifest)
 *   <root>/blobs/sha256-<64 hex>                          content-addressed files
 *
 * <root> is $OLLAMA_MODELS, by default $HOME/.ollama/models (store_root_default).
 *
 * Names are `[host/][namespace/]model[:tag]` with the defaults registry.ollama.ai, library and
 * latest. Every part is checked against Ollama's rules before it touches a path, so no name
 * can reach outside the store ("..", "/x", "a/../b" and friends are CORE_INVALID). Looking up
 * an existing model is case-insensitive per part; create/copy reuse the casing of the parts
 * that already exist on disk.
 *
 * Errors (code → what the server answers):
 *   CORE_INVALID  bad name, bad digest, bad create request, digest mismatch   → 400
 *   CORE_NOTFOUND unknown model, missing blob (also a blob a manifest names)  → 404
 *   CORE_FORMAT   corrupt manifest/config JSON, truncated blob, bad GGUF      → 500
 *   CORE_IO, CORE_NOMEM                                                       → 500
 * store_pull adds CORE_PROTOCOL (the registry failed), CORE_TIMEOUT and CORE_LIMIT (disk
 * space), which the server answers with 502, 504 and 507.
 * Messages name the model and the blob; for the not-found cases they read like Ollama's
 * ("model 'llama2:latest' not found"), but the server may phrase its own reply per endpoint.
 *
 * Threads: a store is shared by all HTTP threads and the scheduler; every function may be
 * called from any thread. Inside there is exactly one lock, a rwlock: create, copy,
 * delete and the commit at the end of a pull take it exclusively (so delete's blob GC never races a create that references the
 * same blobs); resolve, list, blob_exists take it shared. Blob writers take no lock while
 * streaming (the temporary file is private; the final rename is atomic and content-addressed).
 * Lock order: the store lock is a leaf — no other module's lock is taken while it is held,
 * and the create progress callback (called with it held) must not call into the store.
 * Disk writes are crash-safe: every blob and manifest is written to a temporary name, fsynced
 * and renamed, so a half-written file is never visible under its final name. */
#ifndef DWELL_STORE_H
#define DWELL_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

// ---- names ----

#define STORE_DEFAULT_HOST "registry.ollama.ai"
#define STORE_DEFAULT_NAMESPACE "library"
#define STORE_DEFAULT_TAG "latest"
#define STORE_HOST_MAX 350 /* bytes of the host part */
#define STORE_PART_MAX 80  /* bytes of the namespace, model and tag parts */
/* Enough for any full or display name, with its NUL. */
#define STORE_NAME_MAX (STORE_HOST_MAX + 3 * STORE_PART_MAX + 8)

/* A parsed, validated, fully qualified name (defaults filled in). */
typedef struct store_name {
    char host[STORE_HOST_MAX + 1];
    char ns[STORE_PART_MAX + 1];
    char model[STORE_PART_MAX + 1];
    char tag[STORE_PART_MAX + 1];
} store_name;

/* Parses s as Ollama's model.ParseName does (an optional "scheme://" before the host is
 * dropped) and fills the defaults. CORE_INVALID ("invalid model name") when any part is
 * empty, too long, or has a character the part does not allow. */
int store_name_parse(store_name *out, const char *s, core_err *err);
/* True when s parses. */
bool store_name_valid(const char *s);
/* The shortest display form: "llama2:latest", "user/m:tag", "host:5000/ns/m:tag". The tag is
 * always shown. cap should be STORE_NAME_MAX. */
void store_name_display(const store_name *n, char *buf, size_t cap);
/* The full form "registry.ollama.ai/library/llama2:latest". */
void store_name_full(const store_name *n, char *buf, size_t cap);
/* Case-insensitive equality of every part (how Ollama compares names). */
bool store_name_equal(const store_name *a, const store_name *b);

// ---- digests ----

/* "sha256:" + 64 lowercase hex, and its NUL. */
#define STORE_DIGEST_LEN 71
#define STORE_DIGEST_BUF 72

/* Accepts "sha256:<64 hex>" and "sha256-<64 hex>" (either hex case, as Ollama does) and
 * writes the canonical "sha256:<64 lowercase hex>" to out. CORE_INVALID otherwise
 * ("invalid digest \"…\""). */
int store_digest_parse(const char *s, char out[STORE_DIGEST_BUF], core_err *err);
/* The SHA-256 of data as a canonical digest. */
void store_digest_of(const void *data, size_t len, char out[STORE_DIGEST_BUF]);

// ---- the store ----

typedef struct store store;

/* The default root: $OLLAMA_MODELS (trimmed) when set, else $HOME/.ollama/models.
 * CORE_INVALID when neither is set or the result does not fit. */
int store_root_default(char *buf, size_t cap, core_err *err);
/* Opens (creating manifests/ and blobs/ with mode 0755 when missing) the store at root. Old
 * blob names "sha256:<hex>" are renamed to "sha256-<hex>" as Ollama does at start-up.
 * Call it from the main thread before other threads use libcurl: it initialises libcurl
 * for store_pull (curl_global_init, undone by store_close). */
int store_open(store **out, const char *root, core_err *err);
void store_close(store *s);
const char *store_root(const store *s);

// ---- blobs ----

/* Path of the blob for a (parsed or unparsed) digest: <root>/blobs/sha256-<hex>. */
int store_blob_path(const store *s, const char *digest, char *buf, size_t cap, core_err *err);
/* True when the blob file exists (a malformed digest is simply false). */
bool store_blob_exists(store *s, const char *digest);

/* Streams one blob in: begin → write* → commit (or abort). The data goes to a private
 * temporary file in blobs/ while it is hashed. commit checks the hash against the expected
 * digest (if one was given), fsyncs and renames the file to its final name; on a mismatch
 * it answers CORE_INVALID `digest mismatch, expected "sha256:…", got "sha256:…"` and leaves
 * nothing behind. commit and abort always free the writer. A writer belongs to one thread. */
typedef struct store_blob_writer store_blob_writer;
/* expected may be NULL: then commit stores the data under whatever digest it has. */
int store_blob_writer_begin(store *s, const char *expected, store_blob_writer **out,
                            core_err *err);
int store_blob_writer_write(store_blob_writer *w, const void *data, size_t len, core_err *err);
/* digest_out (may be NULL) receives the digest of the data. */
int store_blob_writer_commit(store_blob_writer *w, char digest_out[STORE_DIGEST_BUF],
                             core_err *err);
void store_blob_writer_abort(store_blob_writer *w);
/* Copies a local file into the store, hashing it on the way; digest_out gets its digest. */
int store_blob_import(store *s, const char *path, char digest_out[STORE_DIGEST_BUF],
                      core_err *err);

// ---- models ----

#define STORE_MAX_FAMILIES 8
#define STORE_FIELD_MAX 64

/* The `details` object of /api/tags, /api/show and /api/ps. */
typedef struct store_details {
    char parent_model[STORE_NAME_MAX]; /* the model layer's "from", "" if none */
    char format[STORE_FIELD_MAX];      /* "gguf" */
    char family[STORE_FIELD_MAX];      /* "llama" */
    char families[STORE_MAX_FAMILIES][STORE_FIELD_MAX];
    int n_families;
    char parameter_size[STORE_FIELD_MAX];     /* "7.2B" */
    char quantization_level[STORE_FIELD_MAX]; /* "Q4_0" */
} store_details;

/* One row of the listing (/api/tags, /v1/models). */
typedef struct store_entry {
    store_name name;              /* the parts as they are on disk */
    char display[STORE_NAME_MAX]; /* "llama2:latest": both `name` and `model` */
    int64_t modified_ns;          /* manifest mtime, wall clock ns */
    uint64_t size;                /* config + layer sizes from the manifest */
    char digest[65];              /* hex SHA-256 of the manifest bytes, no prefix */
    store_details details;
} store_entry;

/* Every model, newest modified_ns first. Unreadable or corrupt manifests are skipped with a
 * warning in the log (as Ollama's listing does). Free with store_list_free. */
int store_list(store *s, store_entry **out, size_t *n, core_err *err);
void store_list_free(store_entry *entries);

/* Everything the server and scheduler need about one model, resolved from its manifest.
 * Strings are heap-owned by the struct; absent layers are NULL. */
typedef struct store_model {
    store_name name;               /* canonical parts as found on disk */
    char display[STORE_NAME_MAX];  /* "llama2:latest" */
    char full[STORE_NAME_MAX];     /* "registry.ollama.ai/library/llama2:latest" */
    char digest[65];               /* hex SHA-256 of the manifest bytes */
    char *manifest_path;
    char *model_path;              /* the GGUF weights blob (the runner's identity); NULL if
                                      the manifest has no model layer */
    char **adapter_paths;          /* LoRA GGUF blobs */
    size_t n_adapters;
    char **projector_paths;        /* vision/audio projector GGUF blobs */
    size_t n_projectors;
    char *template_text;           /* template (or legacy prompt) layer text */
    char *system_text;
    char *params_json;             /* the params layer: a JSON object, as stored */
    char *license;                 /* all license layers joined with "\n" */
    char *messages_json;           /* the messages layer: a JSON array, as stored */
    char *renderer, *parser;       /* from the config, NULL if absent */
    store_details details;
    int64_t modified_ns;           /* manifest mtime */
    uint64_t size;                 /* config + layer sizes */
} store_model;

/* Resolves name (parsed and looked up case-insensitively) to its model. Every blob the
 * manifest names is checked: a missing one is CORE_NOTFOUND and a size that differs from
 * the manifest CORE_FORMAT, each naming the model and the blob; a corrupt manifest or config
 * is CORE_FORMAT. *out is the caller's, freed with store_model_free. */
int store_resolve(store *s, const char *name, store_model **out, core_err *err);
void store_model_free(store_model *m);
/* True when a manifest exists for name. */
bool store_model_exists(store *s, const char *name);

/* Progress of a create: called with Ollama's status strings ("parsing GGUF",
 * "using existing layer sha256:…", "creating new layer sha256:…", "writing manifest"), with
 * the store lock held (so it must not call into the store). The caller sends "success"
 * itself after store_create returns CORE_OK. */
typedef void (*store_progress_fn)(const char *status, void *ud);

/* The /api/create request, as plain values (the server has already decoded the JSON).
 * Arrays are parallel; NULL/0 means "not given". A given value replaces the same kind of
 * layer of `from` (template, system, messages, licenses); parameters are merged over the
 * base model's, keys given here winning. */
typedef struct store_create_req {
    const char *model;                    /* required: the new name */
    const char *from;                     /* an existing model name */
    const char *const *file_names;        /* `files`: relative names → uploaded blobs */
    const char *const *file_digests;
    size_t n_files;
    const char *const *adapter_names;     /* `adapters`, the same shape */
    const char *const *adapter_digests;
    size_t n_adapters;
    const char *template_text;            /* NULL or "" keeps the base model's */
    const char *system;                   /* NULL or "" keeps the base model's */
    const char *const *licenses;          /* replaces the base model's licenses */
    size_t n_licenses;
    const char *params_json;              /* a JSON object text */
    const char *messages_json;            /* a JSON array of {role, content} text */
} store_create_req;

/* Creates (or replaces) the model req->model, as Ollama's create does (appendix C): the base
 * layers come from `from` and/or the GGUF in `files` (one weights file; a GGUF whose
 * metadata marks it a projector/adapter gets that layer type), then template, system,
 * license, params and messages layers, then a config blob with the GGUF facts
 * (general.architecture, parameter count from the tensor shapes, general.file_type), then
 * the manifest. Replacing a model removes the blobs of the old manifest no manifest uses
 * any more. Errors: neither from nor files → CORE_INVALID "neither 'from' or 'files' was
 * specified"; a file name that is absolute or has ".." → CORE_INVALID "file path must be
 * relative"; a missing from or blob → CORE_NOTFOUND; a file that is not GGUF → CORE_INVALID;
 * a *.safetensors file → CORE_UNSUPPORTED (dwell imports GGUF only). These request errors
 * (and an unknown `from`, or a blob of `files` that was never uploaded) come before the
 * first progress call, so a server can still answer them with a status code; what fails
 * later (a file that is not GGUF, I/O) comes after some status lines.
 * digest_out (may be NULL) gets the hex digest of the new manifest. */
int store_create(store *s, const store_create_req *req, store_progress_fn progress, void *ud,
                 char digest_out[65], core_err *err);
/* Copies the manifest of src to dst (byte for byte). CORE_NOTFOUND `model "SRC" not found`,
 * CORE_INVALID for an invalid source or destination name. */
int store_copy(store *s, const char *src, const char *dst, core_err *err);
/* Removes the manifest of name, then every blob of it that no other manifest uses, then the
 * manifest directories left empty. CORE_NOTFOUND `model 'NAME' not found`. */
int store_delete(store *s, const char *name, core_err *err);

/* Start-up pruning as Ollama does it unless OLLAMA_NOPRUNE is set: among the files in blobs/
 * older than grace_s seconds, removes those whose names are not digests (partial uploads)
 * and blobs no manifest uses; removes empty manifest directories. Skipped (with a warning)
 * when any manifest is corrupt. n_removed (may be NULL) counts removed files. */
int store_prune(store *s, int64_t grace_s, size_t *n_removed, core_err *err);

// ---- pull ----

/* The largest manifest a registry may send. */
#define STORE_PULL_MANIFEST_MAX ((size_t)1 << 20)

/* One progress report of a pull, in the shapes of Ollama's /api/pull: a status alone
 * ("pulling manifest", "verifying sha256 digest", "writing manifest", "removing unused
 * layers"), or a blob's progress (status "pulling <first 12 hex of the digest>", digest,
 * total and completed bytes). */
typedef struct store_pull_event {
    const char *status;
    const char *digest; /* "sha256:…" for a blob's progress, else NULL */
    uint64_t total, completed;
} store_pull_event;
/* Called on the pulling thread; "removing unused layers" comes with the store lock held,
 * so the callback must not call into the store. */
typedef void (*store_pull_fn)(const store_pull_event *ev, void *ud);

typedef struct store_pull_opts {
    bool insecure;             /* http instead of https (Ollama's `insecure`) */
    bool prune;                /* remove the blobs of a replaced manifest that nothing uses
                                  any more (unless OLLAMA_NOPRUNE) */
    const atomic_bool *cancel; /* set from another thread to stop; NULL: not cancellable */
    store_pull_fn progress;    /* may be NULL */
    void *ud;
    int connect_timeout_s;     /* 0: 15 s */
    int stall_timeout_s;       /* no byte for this long fails the transfer; 0: 30 s */
} store_pull_opts;

/* Pulls name from its registry as Ollama does: GET
 * <scheme>://<host>/v2/<namespace>/<model>/manifests/<tag> (Accept: the Docker v2 manifest
 * type), validated strictly (schema 2, media types, "sha256:<64 lowercase hex>" digests,
 * sizes, at most STORE_PULL_MANIFEST_MAX bytes); then every blob that is not already stored
 * with its size, from …/blobs/<digest> (redirects followed), into
 * blobs/sha256-<hex>-dwell-partial, hashed as it arrives, checked against the digest and
 * the size, fsynced and renamed. An interrupted download (client gone, network failure)
 * keeps its partial file and a later pull resumes it with a Range request; a partial whose
 * bytes are wrong (digest mismatch, too many bytes) is removed. Transient network failures
 * are retried (3 tries per blob). Concurrent pulls of the same blob wait for each other (an
 * flock on the partial file, across processes too). Last, under the store lock, every blob
 * is checked to be there (one removed meanwhile by a delete is fetched again), the
 * manifest is written atomically under manifests/<host>/<namespace>/<model>/<tag> (Ollama's
 * encoding, so the digest matches Ollama's), and with o->prune the old manifest's blobs that
 * nothing uses any more are removed. The caller reports "success" itself.
 * Errors: CORE_INVALID invalid name; CORE_NOTFOUND `pull model manifest: file does not
 * exist` (the registry answered 404) or a blob the registry does not have; CORE_PROTOCOL
 * the registry failed (unreachable, an error status, a bad or too large manifest, a blob
 * whose bytes do not match its digest: `digest mismatch, file must be downloaded again:
 * want sha256:…, got sha256:…`); CORE_TIMEOUT connect or stall timeout; CORE_LIMIT not
 * enough disk space; CORE_CANCELLED; CORE_IO the local disk failed. The errors of the
 * manifest stage (all but IO, the blob ones and CANCELLED after it) come before the first
 * blob's progress event. */
int store_pull(store *s, const char *name, const store_pull_opts *o, core_err *err);

#endif
