/* settings.c — the server's environment, read once at start-up, validated and logged.
 *
 * Every variable is trimmed of whitespace and of surrounding quote characters (as Ollama
 * does). Unlike Ollama, an invalid value is an error that stops the server with a message
 * naming the variable (DESIGN §2: "Anything unparsable: the server refuses to start").
 * Owner: the main thread writes the settings before any other thread starts; afterwards they
 * are read-only and shared. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

// ---- helpers ----

/* Copies the trimmed value of env var name into buf; false when unset or empty. */
static bool env_get(const char *name, char *buf, size_t cap)
{
    const char *v = getenv(name);
    if (!v) return false;
    while (*v && isspace((unsigned char)*v)) v++;
    size_t n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1])) n--;
    while (n > 0 && (*v == '"' || *v == '\'')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '"' || v[n - 1] == '\'')) n--;
    if (n == 0) return false;
    if (n >= cap) n = cap - 1;
    memcpy(buf, v, n);
    buf[n] = 0;
    return true;
}

static int env_uint(const char *name, int64_t max, int64_t *out, core_err *err)
{
    char v[64];
    if (!env_get(name, v, sizeof v)) return CORE_OK;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < 0 || x > max || !isdigit((unsigned char)v[0]))
        return core_err_set(err, CORE_INVALID,
                            "%s=%s: expected a whole number from 0 to %lld", name, v,
                            (long long)max);
    *out = x;
    return CORE_OK;
}

// ---- durations and sizes (thin wrappers over core's shared parsers) ----

int srv_duration_parse(const char *s, bool bare_minutes, int64_t *out_ns, core_err *err)
{
    return core_duration_parse(s, bare_minutes ? CORE_BARE_MINUTES : CORE_BARE_SECONDS,
                               out_ns, err);
}

void srv_duration_format(int64_t ns, char *buf, size_t cap)
{
    core_duration_format(ns, buf, cap);
}

int srv_size_parse(const char *s, size_t *out, core_err *err)
{
    return core_size_parse(s, out, err);
}

// ---- host ----

static int parse_host(srv_settings *st, const char *v, core_err *err)
{
    const char *p = v;
    int default_port = 11434;
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
        default_port = 80;
    } else if (strncmp(p, "https://", 8) == 0) {
        return core_err_set(err, CORE_INVALID, "OLLAMA_HOST=%s: https is not supported by "
                            "dwell serve (put a TLS proxy in front)", v);
    } else if (strstr(p, "://")) {
        return core_err_set(err, CORE_INVALID, "OLLAMA_HOST=%s: unknown scheme", v);
    }
    char hp[256];
    size_t n = strcspn(p, "/");
    if (n >= sizeof hp) return core_err_set(err, CORE_INVALID, "OLLAMA_HOST=%s: too long", v);
    memcpy(hp, p, n);
    hp[n] = 0;
    char *host = hp;
    char *port = NULL;
    if (hp[0] == '[') {
        char *rb = strchr(hp, ']');
        if (!rb) return core_err_set(err, CORE_INVALID, "OLLAMA_HOST=%s: missing ']'", v);
        *rb = 0;
        host = hp + 1;
        if (rb[1] == ':') port = rb + 2;
        else if (rb[1]) return core_err_set(err, CORE_INVALID, "OLLAMA_HOST=%s: bad host", v);
    } else {
        char *c = strrchr(hp, ':');
        if (c && strchr(hp, ':') == c) {
            *c = 0;
            port = c + 1;
        }
    }
    st->port = default_port;
    if (port) {
        char *end;
        long x = strtol(port, &end, 10);
        if (!*port || *end || x < 0 || x > 65535)
            return core_err_set(err, CORE_INVALID, "OLLAMA_HOST=%s: port must be 0 to 65535",
                                v);
        st->port = (int)x;
    }
    if (!*host) host = "0.0.0.0";
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    snprintf(st->host, sizeof st->host, "%s", host);
    return CORE_OK;
}

// ---- origins ----

static const char *const k_default_origins[] = {
    "http://localhost", "https://localhost", "http://localhost:*", "https://localhost:*",
    "http://127.0.0.1", "https://127.0.0.1", "http://127.0.0.1:*", "https://127.0.0.1:*",
    "http://0.0.0.0", "https://0.0.0.0", "http://0.0.0.0:*", "https://0.0.0.0:*",
    "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*",
};

static int origins_add(srv_settings *st, const char *o, size_t len)
{
    if (st->n_origins == SRV_MAX_ORIGINS) return CORE_LIMIT;
    char *c = malloc(len + 1);
    if (!c) return CORE_NOMEM;
    memcpy(c, o, len);
    c[len] = 0;
    st->origins[st->n_origins++] = c;
    return CORE_OK;
}

static int parse_origins(srv_settings *st, core_err *err)
{
    for (size_t i = 0; i < sizeof k_default_origins / sizeof k_default_origins[0]; i++)
        if (origins_add(st, k_default_origins[i], strlen(k_default_origins[i])))
            return core_err_set(err, CORE_NOMEM, "out of memory");
    char v[sizeof st->origins_env];
    if (!env_get("OLLAMA_ORIGINS", v, sizeof v)) return CORE_OK;
    snprintf(st->origins_env, sizeof st->origins_env, "%s", v);
    for (char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        char *s = p;
        size_t len = n;
        while (len && isspace((unsigned char)*s)) {
            s++;
            len--;
        }
        while (len && isspace((unsigned char)s[len - 1])) len--;
        if (len && origins_add(st, s, len))
            return core_err_set(err, CORE_LIMIT, "OLLAMA_ORIGINS: more than %d origins",
                                SRV_MAX_ORIGINS);
        p += n;
        if (*p == ',') p++;
    }
    return CORE_OK;
}

/* Glob match with '*' only. */
static bool glob_match(const char *pat, const char *s)
{
    if (!*pat) return !*s;
    if (*pat == '*') {
        for (;; s++) {
            if (glob_match(pat + 1, s)) return true;
            if (!*s) return false;
        }
    }
    return *s && (*pat == *s) && glob_match(pat + 1, s + 1);
}

bool srv_origin_allowed(const srv_settings *st, const char *origin)
{
    for (size_t i = 0; i < st->n_origins; i++) {
        if (strcmp(st->origins[i], "*") == 0) return true;
        if (glob_match(st->origins[i], origin)) return true;
    }
    return false;
}

// ---- load, log, free ----

static int parse_debug(srv_settings *st, core_err *err)
{
    char v[32];
    st->log_level = CORE_LOG_INFO;
    if (!env_get("OLLAMA_DEBUG", v, sizeof v)) return CORE_OK;
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcmp(v, "f")) return CORE_OK;
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcmp(v, "t") || !strcmp(v, "2")) {
        st->log_level = CORE_LOG_DEBUG;
        return CORE_OK;
    }
    if (!strcmp(v, "-1")) st->log_level = CORE_LOG_WARN;
    else if (!strcmp(v, "-2")) st->log_level = CORE_LOG_ERROR;
    else
        return core_err_set(err, CORE_INVALID, "OLLAMA_DEBUG=%s: expected 0, 1, 2, -1, -2, "
                            "true or false", v);
    return CORE_OK;
}

static int parse_durations(srv_settings *st, core_err *err)
{
    char v[64];
    core_err e;
    st->keep_alive_ns = 5 * 60 * (int64_t)1000000000;
    snprintf(st->keep_alive_source, sizeof st->keep_alive_source, "default");
    if (env_get("OLLAMA_KEEP_ALIVE", v, sizeof v)) {
        if (srv_duration_parse(v, true, &st->keep_alive_ns, &e))
            return core_err_set(err, CORE_INVALID, "OLLAMA_KEEP_ALIVE=%s: %s (a bare number "
                                "is minutes; units ns us ms s m h d)", v, e.msg);
        snprintf(st->keep_alive_source, sizeof st->keep_alive_source, "OLLAMA_KEEP_ALIVE");
    }
    st->load_timeout_ns = 5 * 60 * (int64_t)1000000000;
    if (env_get("OLLAMA_LOAD_TIMEOUT", v, sizeof v)) {
        if (srv_duration_parse(v, true, &st->load_timeout_ns, &e))
            return core_err_set(err, CORE_INVALID, "OLLAMA_LOAD_TIMEOUT=%s: %s", v, e.msg);
        if (st->load_timeout_ns <= 0 || st->load_timeout_ns == SRV_FOREVER)
            st->load_timeout_ns = 0; /* no timeout */
    }
    st->step_delay_ns = 0;
    if (env_get("DWELL_DEBUG_STEP_DELAY", v, sizeof v)) {
        if (srv_duration_parse(v, false, &st->step_delay_ns, &e))
            return core_err_set(err, CORE_INVALID, "DWELL_DEBUG_STEP_DELAY=%s: %s", v, e.msg);
        if (st->step_delay_ns < 0 || st->step_delay_ns > 10 * (int64_t)1000000000)
            return core_err_set(err, CORE_INVALID, "DWELL_DEBUG_STEP_DELAY=%s: expected a "
                                "duration from 0 to 10s", v);
    }
    return CORE_OK;
}

static int parse_memory(srv_settings *st, core_err *err)
{
    char v[64];
    core_err e;
    st->mem_reserve = (size_t)1 << 30;
    if (env_get("DWELL_MEMORY_RESERVE", v, sizeof v) && srv_size_parse(v, &st->mem_reserve, &e))
        return core_err_set(err, CORE_INVALID, "DWELL_MEMORY_RESERVE=%s: %s", v, e.msg);
    if (env_get("DWELL_MEMORY_BUDGET", v, sizeof v)) {
        if (srv_size_parse(v, &st->mem_budget, &e))
            return core_err_set(err, CORE_INVALID, "DWELL_MEMORY_BUDGET=%s: %s", v, e.msg);
        st->mem_budget_set = true;
    }
    if (!env_get("DWELL_CGROUP_ROOT", st->cgroup_root, sizeof st->cgroup_root))
        snprintf(st->cgroup_root, sizeof st->cgroup_root, "/sys/fs/cgroup");
    return CORE_OK;
}

static int parse_counts(srv_settings *st, core_err *err)
{
    int64_t x;
    x = 0;
    if (env_uint("OLLAMA_MAX_LOADED_MODELS", 1024, &x, err)) return err ? err->code : -1;
    st->max_loaded = (int)x;
    x = 1;
    if (env_uint("OLLAMA_NUM_PARALLEL", 256, &x, err)) return err ? err->code : -1;
    st->num_parallel = x == 0 ? 1 : (int)x;
    x = 512;
    if (env_uint("OLLAMA_MAX_QUEUE", 1000000, &x, err)) return err ? err->code : -1;
    st->max_queue = (int)x;
    x = 4096;
    if (env_uint("OLLAMA_CONTEXT_LENGTH", INT32_MAX, &x, err)) return err ? err->code : -1;
    st->context_length = x == 0 ? 4096 : x;
    if (st->context_length < 4) st->context_length = 4;
    char v[32];
    st->kv_f32 = false;
    if (env_get("OLLAMA_KV_CACHE_TYPE", v, sizeof v)) {
        if (!strcasecmp(v, "f32")) st->kv_f32 = true;
        else if (strcasecmp(v, "f16") != 0)
            return core_err_set(err, CORE_INVALID, "OLLAMA_KV_CACHE_TYPE=%s: dwell supports "
                                "f16 and f32", v);
    }
    return CORE_OK;
}

int srv_settings_load(srv_settings *st, core_err *err)
{
    memset(st, 0, sizeof *st);
    char v[4096];
    int rc;
    snprintf(st->host, sizeof st->host, "127.0.0.1");
    st->port = 11434;
    if (env_get("OLLAMA_HOST", v, sizeof v) && (rc = parse_host(st, v, err))) return rc;
    if ((rc = parse_debug(st, err)) || (rc = parse_durations(st, err)) ||
        (rc = parse_counts(st, err)) || (rc = parse_memory(st, err)) ||
        (rc = parse_origins(st, err)))
        return rc;
    /* A Go bool: false values keep pruning; any other non-empty text is true (spec §2). */
    if (env_get("OLLAMA_NOPRUNE", v, sizeof v))
        st->noprune = strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0 && strcasecmp(v, "f");
    if (!env_get("OLLAMA_MODELS", st->models, sizeof st->models)) {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return core_err_set(err, CORE_INVALID, "neither OLLAMA_MODELS nor HOME is set");
        snprintf(st->models, sizeof st->models, "%s/.ollama/models", home);
    }
    return CORE_OK;
}

void srv_settings_log(const srv_settings *st)
{
    char ka[64], lt[64], budget[64];
    srv_duration_format(st->keep_alive_ns, ka, sizeof ka);
    if (st->load_timeout_ns) srv_duration_format(st->load_timeout_ns, lt, sizeof lt);
    else snprintf(lt, sizeof lt, "none");
    if (st->mem_budget_set)
        snprintf(budget, sizeof budget, "%.1f MiB (DWELL_MEMORY_BUDGET)",
                 (double)st->mem_budget / 1048576.0);
    else snprintf(budget, sizeof budget, "auto (cgroup/RAM minus reserve)");
    CORE_INFO("settings: OLLAMA_HOST=%s:%d OLLAMA_MODELS=%s OLLAMA_KEEP_ALIVE=%s (%s) "
              "OLLAMA_MAX_LOADED_MODELS=%d%s OLLAMA_NUM_PARALLEL=%d OLLAMA_MAX_QUEUE=%d "
              "OLLAMA_LOAD_TIMEOUT=%s OLLAMA_CONTEXT_LENGTH=%lld tokens "
              "OLLAMA_KV_CACHE_TYPE=%s OLLAMA_DEBUG=%s OLLAMA_ORIGINS=%s",
              st->host, st->port, st->models, ka, st->keep_alive_source, st->max_loaded,
              st->max_loaded ? "" : " (no count cap)", st->num_parallel, st->max_queue, lt,
              (long long)st->context_length, st->kv_f32 ? "f32" : "f16",
              st->log_level == CORE_LOG_DEBUG ? "debug" : "info",
              st->origins_env[0] ? st->origins_env : "(built-in list)");
    CORE_INFO("settings: DWELL_MEMORY_BUDGET=%s DWELL_MEMORY_RESERVE=%.1f MiB "
              "DWELL_CGROUP_ROOT=%s",
              budget, (double)st->mem_reserve / 1048576.0, st->cgroup_root);
    if (st->step_delay_ns) {
        char d[64];
        srv_duration_format(st->step_delay_ns, d, sizeof d);
        CORE_WARN("settings: DWELL_DEBUG_STEP_DELAY=%s: every decode step is slowed down", d);
    }
}

void srv_settings_deinit(srv_settings *st)
{
    for (size_t i = 0; i < st->n_origins; i++) free(st->origins[i]);
    st->n_origins = 0;
}
