/* serve.c — `dwell serve`: reads the settings, opens the store, starts the scheduler and the
 * HTTP daemon, then waits for SIGINT/SIGTERM and shuts down in order: stop accepting, let
 * running requests finish (at most SRV_DRAIN_SECONDS; /api/events streams end at once),
 * cancel what is left, unload every model, exit 0.
 *
 * Threads: the main thread owns the srv_server; signals are blocked in every thread (the
 * mask is inherited) and taken with sigwait here. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/internal.h"
#include "server/server.h"

#define SRV_DRAIN_SECONDS 10

static void usage(FILE *f)
{
    fprintf(f,
            "Usage:\n  dwell serve\n\n"
            "Start dwell's HTTP server (Ollama's API).\n\n"
            "Environment variables:\n"
            "  OLLAMA_HOST               address to bind (default 127.0.0.1:11434; port 0 = a "
            "free port)\n"
            "  OLLAMA_MODELS             the model store (default ~/.ollama/models)\n"
            "  OLLAMA_KEEP_ALIVE         how long a model stays loaded after use (default 5m; "
            "a bare number is minutes; negative = forever)\n"
            "  OLLAMA_MAX_LOADED_MODELS  most models loaded at once (default 0 = no count cap)\n"
            "  OLLAMA_NUM_PARALLEL       parallel requests per model (default 1)\n"
            "  OLLAMA_MAX_QUEUE          most waiting requests before 503 (default 512)\n"
            "  OLLAMA_LOAD_TIMEOUT       give up on a stalled load after this (default 5m)\n"
            "  OLLAMA_CONTEXT_LENGTH     default num_ctx (default 4096)\n"
            "  OLLAMA_KV_CACHE_TYPE      f16 (default) or f32\n"
            "  OLLAMA_ORIGINS            extra allowed CORS origins, comma-separated\n"
            "  OLLAMA_NOPRUNE            true: keep unused blobs (at start-up and after a "
            "pull)\n"
            "  OLLAMA_DEBUG              1 for debug logging\n"
            "  DWELL_MEMORY_BUDGET       memory for loaded models (default: cgroup limit or "
            "RAM, minus the reserve)\n"
            "  DWELL_MEMORY_RESERVE      memory kept free for everything else (default 1GiB)\n"
            "  DWELL_CGROUP_ROOT         where to read the cgroup limit (default "
            "/sys/fs/cgroup)\n"
            "  DWELL_DEBUG_STEP_DELAY    pause after every decode step, e.g. 20ms (for "
            "testing clients against a slow model)\n");
}

static void routes(void)
{
    srv_route_add("/", false, SRV_GET | SRV_HEAD, srv_h_root, false, false);
    srv_route_add("/api/version", false, SRV_GET | SRV_HEAD, srv_h_version, false, false);
    srv_route_add("/api/blobs/", true, SRV_HEAD | SRV_POST, srv_h_blob, false, true);
    srv_route_add("/api/create", false, SRV_POST, srv_h_create, false, false);
    srv_route_add("/api/tags", false, SRV_GET | SRV_HEAD, srv_h_tags, false, false);
    srv_route_add("/api/show", false, SRV_POST, srv_h_show, false, false);
    srv_route_add("/api/copy", false, SRV_POST, srv_h_copy, false, false);
    srv_route_add("/api/delete", false, SRV_DELETE, srv_h_delete, false, false);
    srv_route_add("/api/pull", false, SRV_POST, srv_h_pull, false, false);
    srv_route_add("/api/ps", false, SRV_GET, srv_h_ps, false, false);
    srv_route_add("/api/stats", false, SRV_GET, srv_h_stats, false, false);
    srv_route_add("/api/events", false, SRV_GET, srv_h_events, false, false);
    srv_route_add("/metrics", false, SRV_GET | SRV_HEAD, srv_h_metrics, false, false);
    srv_route_add("/api/generate", false, SRV_POST, srv_h_generate, false, false);
    srv_route_add("/api/chat", false, SRV_POST, srv_h_chat, false, false);
    srv_route_add("/api/embed", false, SRV_POST, srv_h_embed, false, false);
    srv_route_add("/api/embeddings", false, SRV_POST, srv_h_embeddings, false, false);
    srv_route_add("/v1/chat/completions", false, SRV_POST, srv_h_oai_chat, true, false);
    srv_route_add("/v1/completions", false, SRV_POST, srv_h_oai_completions, true, false);
    srv_route_add("/v1/embeddings", false, SRV_POST, srv_h_oai_embeddings, true, false);
    srv_route_add("/v1/models", false, SRV_GET, srv_h_oai_models, true, false);
    srv_route_add("/v1/models/", true, SRV_GET, srv_h_oai_model, true, false);
}

static int start_sched(srv_server *s, core_err *err)
{
    core_budget b;
    core_budget_compute(s->set.cgroup_root, s->set.mem_reserve, s->set.mem_budget_set,
                        s->set.mem_budget, &b);
    char bs[32], rs[32];
    core_size_format(b.bytes, bs, sizeof bs);
    core_size_format(b.reserve, rs, sizeof rs);
    CORE_INFO("memory budget %s (source %s%s%s, reserve %s)",
              b.source == CORE_BUDGET_UNLIMITED ? "unlimited" : bs,
              core_budget_source_name(b.source), b.cgroup_file[0] ? " " : "", b.cgroup_file,
              rs);
    sched_config c;
    sched_config_default(&c);
    c.num_parallel = s->set.num_parallel;
    c.max_loaded = s->set.max_loaded;
    c.max_queue = s->set.max_queue;
    c.load_timeout_ns = s->set.load_timeout_ns;
    c.step_delay_ns = s->set.step_delay_ns;
    c.keep_alive_ns = s->set.keep_alive_ns;
    c.keep_alive_source = strcmp(s->set.keep_alive_source, "default") ? SCHED_KA_SERVER
                                                                        : SCHED_KA_DEFAULT;
    c.num_ctx = s->set.context_length;
    c.kv_type = s->set.kv_f32 ? ENG_KV_F32 : ENG_KV_F16;
    c.budget_bytes = b.bytes;
    c.budget_source = b.source;
    int rc = obs_events_new(&s->events, 0, err);
    if (rc) return rc;
    c.on_event = obs_events_hook;
    c.event_ud = s->events;
    return sched_new(&s->sched, &c, err);
}

/* spec K.89: at start-up, unless OLLAMA_NOPRUNE is true, blobs older than an hour that no
 * manifest uses (and files whose names are not digests, such as partial downloads) are
 * removed, and so are empty manifest directories. */
static void prune_store(const srv_settings *set, struct store *st)
{
    if (set->noprune) {
        CORE_INFO("store: OLLAMA_NOPRUNE is set, unused blobs are kept");
        return;
    }
    size_t n = 0;
    core_err err;
    if (store_prune(st, 3600, &n, &err)) CORE_WARN("store: pruning failed: %s", err.msg);
    else if (n) CORE_INFO("store: pruned %zu unused files from blobs/", n);
}

/* Waits for a stop signal. */
static int wait_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0) {
    }
    return sig;
}

static void shutdown_server(srv_server *s)
{
    atomic_store(&s->stopping, true);
    obs_events_close(s->events); /* open /api/events streams end now */
    srv_http_quiesce(s);
    int64_t deadline = core_mono_ns() + SRV_DRAIN_SECONDS * (int64_t)1000000000;
    while (atomic_load(&s->active) > 0 && core_mono_ns() < deadline) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&s->active) > 0)
        CORE_WARN("shutdown: %d requests still running after %d s, cancelling them",
                  atomic_load(&s->active), SRV_DRAIN_SECONDS);
    atomic_store(&s->force_stop, true);
    srv_http_stop(s);
    /* sched_free unloads every model itself, logged with reason "shutdown" (spec D.39). */
    int n = 0;
    sched_snap snap;
    if (sched_snapshot(s->sched, &snap, NULL) == CORE_OK) {
        n = (int)snap.n_models;
        sched_snap_deinit(&snap);
    }
    sched_free(s->sched);
    s->sched = NULL;
    CORE_INFO("shutdown: %d models unloaded, bye", n);
}

int srv_serve_main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "Error: unknown argument \"%s\" (see dwell serve --help)\n", argv[i]);
        return 1;
    }
    static srv_server s;
    core_err err;
    if (srv_settings_load(&s.set, &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    core_log_set_level(s.set.log_level);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    srv_settings_log(&s.set);
    int rc = 1;
    if (store_open(&s.store, s.set.models, &err)) {
        CORE_ERROR("cannot open the model store %s: %s", s.set.models, err.msg);
        goto out;
    }
    prune_store(&s.set, s.store);
    if (start_sched(&s, &err)) {
        CORE_ERROR("cannot start the scheduler: %s", err.msg);
        goto out;
    }
    routes();
    if (srv_http_start(&s, &err)) {
        CORE_ERROR("%s", err.msg);
        goto out;
    }
    CORE_INFO("listening on %s:%d (dwell %s, Ollama API %s)", s.set.host, s.set.port,
              DWELL_VERSION, DWELL_OLLAMA_VERSION);
    int sig = wait_signal(&set);
    CORE_INFO("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    shutdown_server(&s);
    rc = 0;
out:
    srv_http_stop(&s);
    sched_free(s.sched);
    obs_events_free(s.events); /* after sched_free: its shutdown unloads still post events */
    store_close(s.store);
    srv_settings_deinit(&s.set);
    return rc;
}
