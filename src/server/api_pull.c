/* api_pull.c — POST /api/pull: a model from its registry into the store (store_pull).
 *
 * The request is Ollama's: `model` (or the legacy `name`), `insecure` (http instead of
 * https) and `stream` (default true). The pull runs on a worker thread (task.c) and
 * reports Ollama's progress objects: {"status":"pulling manifest"}, then per blob
 * {"status":"pulling <12 hex>","digest","total","completed"} (total and completed left
 * out when zero, as Go's omitempty does), {"status":"verifying sha256 digest"},
 * {"status":"writing manifest"}, maybe {"status":"removing unused layers"}, and
 * {"status":"success"}.
 *
 * Departure: Ollama sends "pulling manifest" at once and reports a failure to get the
 * manifest as a last {"error"} line under status 200. dwell holds the response until the
 * manifest is in (or the first blob reported), so those failures have a status code: 404
 * the registry has no such model, 502 the registry is unreachable or answered badly, 504 it
 * timed out, 507 not enough disk space, 400 a bad name. A failure after that (a blob, a
 * digest mismatch, the disk) is the last line {"error":…} as in Ollama. Not streamed: one
 * {"status":"success"}, or the error with the same codes.
 *
 * No scheduler lock is held: the pull touches only the store (its lock is taken for the
 * final commit). A client that goes away cancels the download within a second; the partial
 * file stays for the next pull to resume. */
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "store/store.h"

typedef struct pull_job {
    store *store;
    char *name;     /* as sent */
    bool insecure;
    bool prune;
} pull_job;

static void pull_job_free(void *p)
{
    pull_job *pj = p;
    free(pj->name);
    free(pj);
}

/* store_pull's progress callback: one line per event; a blob's progress replaces its own
 * previous line while that is still queued. */
static void pull_progress(const store_pull_event *ev, void *ud)
{
    srv_task *t = ud;
    if (!ev->digest) {
        srv_task_status(t, ev->status);
        return;
    }
    json_t *o = json_pack("{s:s,s:s}", "status", ev->status, "digest", ev->digest);
    if (o && ev->total) json_object_set_new(o, "total", json_integer((json_int_t)ev->total));
    if (o && ev->completed)
        json_object_set_new(o, "completed", json_integer((json_int_t)ev->completed));
    srv_task_emit(t, o, ev->digest);
}

static int pull_work(srv_task *t, void *arg, core_err *err)
{
    pull_job *pj = arg;
    store_pull_opts o = {.insecure = pj->insecure, .prune = pj->prune,
                         .cancel = srv_task_cancel_flag(t), .progress = pull_progress, .ud = t};
    CORE_INFO("pull %s%s: started", pj->name, pj->insecure ? " (insecure)" : "");
    int rc = store_pull(pj->store, pj->name, &o, err);
    if (rc == CORE_CANCELLED) CORE_INFO("pull %s: cancelled", pj->name);
    else if (rc) CORE_WARN("pull %s failed: %s", pj->name, err->msg);
    return rc;
}

/* The status of a pull's error (store.h lists the codes). */
static unsigned pull_status(int code)
{
    switch (code) {
    case CORE_PROTOCOL: return 502; /* the registry failed us */
    case CORE_TIMEOUT: return 504;
    case CORE_LIMIT: return 507;    /* not enough disk space */
    default: return srv_code_status(code);
    }
}

enum MHD_Result srv_h_pull(srv_req *r)
{
    enum MHD_Result res;
    json_t *j = srv_body_json(r, &res);
    if (!j) return res;
    const char *name;
    bool insecure = false, stream = true;
    core_err err;
    core_err_clear(&err);
    if (!srv_model_arg(r, j, "PullRequest", &name, &res)) goto out;
    if (srv_json_bool(j, "PullRequest", "insecure", &insecure, &err) ||
        srv_json_bool(j, "PullRequest", "stream", &stream, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    pull_job *pj = calloc(1, sizeof *pj);
    if (pj) pj->name = strdup(name);
    if (!pj || !pj->name) {
        free(pj);
        res = srv_reply_error(r, 500, "out of memory");
        goto out;
    }
    pj->store = r->srv->store;
    pj->insecure = insecure;
    pj->prune = !r->srv->set.noprune;
    srv_task *t;
    if (srv_task_start(&t, pull_work, pj, pull_job_free, &err)) {
        res = srv_reply_err(r, &err);
        goto out;
    }
    /* Two lines: "pulling manifest" and the first blob's progress, which comes only once
     * the manifest is in and checked. */
    res = srv_task_respond(r, t, stream, 2, pull_status);
out:
    json_decref(j);
    return res;
}
