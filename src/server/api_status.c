/* api_status.c — GET /, /api/version and /api/ps (/api/stats is api_obs.c's).
 *
 * /api/ps reads one sched_snapshot (a brief lock in the scheduler; never blocked by a
 * load) and formats it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/internal.h"

enum MHD_Result srv_h_root(srv_req *r)
{
    return srv_reply_raw(r, 200, "text/plain; charset=utf-8", "Ollama is running", 17);
}

enum MHD_Result srv_h_version(srv_req *r)
{
    return srv_reply_json(r, 200, json_pack("{s:s,s:s}", "version", DWELL_OLLAMA_VERSION,
                                            "dwell_version", DWELL_VERSION));
}

/* now + Go's maximum duration (2^63-1 ns, about 292 years), which is what Ollama shows for
 * a model kept forever (spec D.37). It is past what int64 nanoseconds since the epoch can
 * hold, so it is formatted from seconds here: RFC 3339, nanoseconds, local offset. */
static void forever_str(int64_t now, char *buf, size_t cap)
{
    time_t secs = (time_t)(now / 1000000000LL) + (time_t)(INT64_MAX / 1000000000LL);
    long nsec = (long)(now % 1000000000LL) + (long)(INT64_MAX % 1000000000LL);
    if (nsec >= 1000000000L) {
        nsec -= 1000000000L;
        secs += 1;
    }
    struct tm tm;
    localtime_r(&secs, &tm);
    char date[40];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    char frac[16] = "";
    if (nsec) {
        snprintf(frac, sizeof frac, ".%09ld", nsec);
        size_t n = strlen(frac);
        while (n > 1 && frac[n - 1] == '0') frac[--n] = '\0';
    }
    long off = tm.tm_gmtoff / 60;
    if (off == 0) {
        snprintf(buf, cap, "%s%sZ", date, frac);
        return;
    }
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(buf, cap, "%s%s%c%02d:%02d", date, frac, sign, (int)(off / 60 % 24),
             (int)(off % 60));
}

/* expires_at as /api/ps shows it: RFC 3339 in the local offset; pinned → about 292 years
 * ahead (what Go prints for now + max duration), 0 → now. */
static void expires_str(int64_t expires_at, char *buf, size_t cap)
{
    int64_t now = core_wall_ns();
    int64_t t = expires_at;
    if (t == SCHED_FOREVER) {
        forever_str(now, buf, cap);
        return;
    }
    if (t <= 0) t = now; /* keep_alive 0: about to unload */
    core_time_format(t, true, buf, cap);
}

static json_t *ps_entry(srv_server *s, const sched_model_info *mi)
{
    char exp[96], last[48], ka[64];
    expires_str(mi->expires_at, exp, sizeof exp);
    if (mi->last_used) core_time_format(mi->last_used, true, last, sizeof last);
    else snprintf(last, sizeof last, "%s", "");
    srv_duration_format(mi->keep_alive_ns, ka, sizeof ka);
    /* details come from the store (the name the model was loaded under). */
    json_t *details = NULL;
    store_model *m = NULL;
    if (store_resolve(s->store, mi->name, &m, NULL) == CORE_OK)
        details = srv_details_json(&m->details);
    store_model_free(m);
    if (!details) details = json_object();
    const char *state = sched_state_name(mi->state);
    if (mi->state == SCHED_STATE_READY) state = mi->in_flight > 0 ? "busy" : "idle";
    return json_pack(
        "{s:s,s:s,s:I,s:s,s:o,s:s,s:I,s:I,"
        "s:s,s:i,s:i,s:i,s:s,s:s,s:s*,s:b,s:I}",
        "name", mi->name, "model", mi->name, "size", (json_int_t)mi->size_bytes, "digest",
        mi->digest, "details", details, "expires_at", exp, "size_vram", (json_int_t)0,
        "context_length", (json_int_t)mi->num_ctx,
        "state", state, "in_flight", (int)mi->in_flight, "slots", (int)mi->slots,
        "slots_busy", (int)mi->slots_busy, "keep_alive", ka, "keep_alive_source",
        sched_ka_source_name(mi->keep_alive_source), "last_used",
        mi->last_used ? last : NULL, "pinned", mi->pinned, "resident_bytes",
        (json_int_t)mi->resident_bytes);
}

static int cmp_expires(const void *a, const void *b)
{
    const sched_model_info *x = a, *y = b;
    int64_t ex = x->expires_at / 1000000000, ey = y->expires_at / 1000000000;
    return ex < ey ? 1 : ex > ey ? -1 : 0;
}

enum MHD_Result srv_h_ps(srv_req *r)
{
    sched_snap snap;
    core_err err;
    if (sched_snapshot(r->srv->sched, &snap, &err)) return srv_reply_err(r, &err);
    if (snap.n_models > 1) qsort(snap.models, snap.n_models, sizeof *snap.models, cmp_expires);
    json_t *models = json_array();
    for (size_t i = 0; i < snap.n_models; i++)
        json_array_append_new(models, ps_entry(r->srv, &snap.models[i]));
    sched_snap_deinit(&snap);
    return srv_reply_json(r, 200, json_pack("{s:o}", "models", models));
}
