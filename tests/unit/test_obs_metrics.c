/* test_obs_metrics.c — obs_metrics_text (GET /metrics) parsed back with a strict reader of
 * the Prometheus text format 0.0.4: every line is a HELP, a TYPE or a sample; HELP and TYPE
 * come once per family, before its samples; a family's samples are contiguous; label values
 * unescape to the exact model name; counters (and only counters) end in _total; no series
 * twice. Then the figures are checked against obs_stats_json of the same snapshot. */
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"
#include "test.h"

// ---- a strict reader of the text format ----

#define MAX_SAMPLES 512
#define MAX_FAMILIES 128

typedef struct sample {
    char name[96];
    char labels[1024]; /* unescaped: k=v\1k=v\1, in order */
    double value;
} sample;

typedef struct parsed {
    sample s[MAX_SAMPLES];
    size_t n;
    char fam[MAX_FAMILIES][96];
    char type[MAX_FAMILIES][16];
    size_t n_fam;
    char err[256]; /* empty when the text is well-formed */
} parsed;

static bool name_ok(const char *s, size_t n)
{
    if (!n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

/* Reads {k="v",…} at *pp into out (unescaped); false on any malformed byte. */
static bool read_labels(const char **pp, char *out, size_t cap)
{
    const char *p = *pp;
    size_t o = 0;
    if (*p != '{') return true;
    p++;
    while (*p != '}') {
        const char *k = p;
        while (*p && *p != '=') p++;
        if (*p != '=' || !name_ok(k, (size_t)(p - k)) || p[1] != '"') return false;
        if (o + (size_t)(p - k) + 2 >= cap) return false;
        memcpy(out + o, k, (size_t)(p - k));
        o += (size_t)(p - k);
        out[o++] = '=';
        for (p += 2; *p != '"'; p++) {
            if (!*p || *p == '\n' || o + 2 >= cap) return false;
            char c = *p;
            if (c == '\\') {
                p++;
                if (*p == 'n') c = '\n';
                else if (*p == '\\' || *p == '"') c = *p;
                else return false;
            }
            out[o++] = c;
        }
        out[o++] = '\1';
        p++;
        if (*p == ',') p++;
        else if (*p != '}') return false;
    }
    out[o] = 0;
    *pp = p + 1;
    return true;
}

static bool read_value(const char *p, double *v)
{
    if (!strcmp(p, "+Inf")) *v = INFINITY;
    else if (!strcmp(p, "-Inf")) *v = -INFINITY;
    else if (!strcmp(p, "NaN")) *v = NAN;
    else {
        char *end;
        *v = strtod(p, &end);
        if (end == p || *end) return false;
    }
    return true;
}

static int family_find(const parsed *ps, const char *name)
{
    for (size_t i = 0; i < ps->n_fam; i++)
        if (!strcmp(ps->fam[i], name)) return (int)i;
    return -1;
}

/* One line; false (with ps->err set) when it breaks the format. cur: the family whose
 * HELP/TYPE came last (its samples follow), typed: its TYPE was seen. */
static bool parse_line(parsed *ps, const char *line, int *cur, bool *typed)
{
    char word[16], name[96];
    if (!strncmp(line, "# HELP ", 7)) {
        if (sscanf(line + 7, "%95s", name) != 1 || !name_ok(name, strlen(name)) ||
            family_find(ps, name) >= 0 || ps->n_fam == MAX_FAMILIES) {
            snprintf(ps->err, sizeof ps->err, "bad or repeated HELP: %.200s", line);
            return false;
        }
        snprintf(ps->fam[ps->n_fam], sizeof ps->fam[0], "%s", name);
        *cur = (int)ps->n_fam++;
        *typed = false;
        return true;
    }
    if (!strncmp(line, "# TYPE ", 7)) {
        if (sscanf(line + 7, "%95s %15s", name, word) != 2 || *cur < 0 || *typed ||
            strcmp(name, ps->fam[*cur]) != 0 ||
            (strcmp(word, "counter") && strcmp(word, "gauge"))) {
            snprintf(ps->err, sizeof ps->err, "TYPE not right after its HELP: %.200s", line);
            return false;
        }
        bool total = strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total");
        if (total != !strcmp(word, "counter")) {
            snprintf(ps->err, sizeof ps->err, "_total must go with counter: %.200s", line);
            return false;
        }
        snprintf(ps->type[*cur], sizeof ps->type[0], "%s", word);
        *typed = true;
        return true;
    }
    size_t nl = strcspn(line, "{ ");
    sample *s = &ps->s[ps->n];
    const char *p = line + nl;
    if (ps->n == MAX_SAMPLES || !name_ok(line, nl) || nl >= sizeof s->name || *cur < 0 ||
        !*typed || strncmp(line, ps->fam[*cur], nl) != 0 || ps->fam[*cur][nl] != 0 ||
        !read_labels(&p, s->labels, sizeof s->labels) || *p != ' ' ||
        !read_value(p + 1, &s->value)) {
        snprintf(ps->err, sizeof ps->err, "bad sample (or outside its family): %.200s", line);
        return false;
    }
    memcpy(s->name, line, nl);
    s->name[nl] = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (!strcmp(ps->s[i].name, s->name) && !strcmp(ps->s[i].labels, s->labels)) {
            snprintf(ps->err, sizeof ps->err, "series twice: %.200s", line);
            return false;
        }
    }
    ps->n++;
    return true;
}

static bool parse(parsed *ps, const char *text)
{
    memset(ps, 0, sizeof *ps);
    int cur = -1;
    bool typed = false;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (!e) {
            snprintf(ps->err, sizeof ps->err, "last line has no newline");
            return false;
        }
        char line[2048];
        size_t n = (size_t)(e - p);
        if (n >= sizeof line || n == 0) {
            snprintf(ps->err, sizeof ps->err, "empty or overlong line");
            return false;
        }
        memcpy(line, p, n);
        line[n] = 0;
        if (!parse_line(ps, line, &cur, &typed)) return false;
        p = e + 1;
    }
    return true;
}

/* The value of name{labels} (labels as read_labels writes them, "" for none); NAN if absent. */
static double value_of(const parsed *ps, const char *name, const char *labels)
{
    for (size_t i = 0; i < ps->n; i++)
        if (!strcmp(ps->s[i].name, name) && !strcmp(ps->s[i].labels, labels))
            return ps->s[i].value;
    return NAN;
}

// ---- fixtures ----

#define WEIRD "we\"ird\\na\nme"

static void fake_stats(obs_stats *st)
{
    memset(st, 0, sizeof *st);
    st->wall_ns = core_wall_ns();
    st->sched.models = calloc(2, sizeof *st->sched.models);
    st->sched.n_models = 2;
    sched_model_info *a = &st->sched.models[0], *b = &st->sched.models[1];
    snprintf(a->name, sizeof a->name, "llama3.2:latest");
    snprintf(a->digest, sizeof a->digest, "abc123def4567890");
    a->state = SCHED_STATE_READY;
    a->in_flight = 1;
    a->slots = 2;
    a->slots_busy = 1;
    a->keep_alive_ns = 300000000000LL;
    a->expires_at = st->wall_ns + 300000000000LL;
    a->est_bytes = 1200;
    a->measured_bytes = 1000;
    a->size_bytes = 1000;
    a->resident_bytes = 900;
    a->kv_bytes = 200;
    a->weight_bytes = 800;
    a->num_ctx = 4096;
    a->requests = 12;
    a->warm_hits = 11;
    a->cold_loads = 1;
    a->last_load_ns = 1500000000;
    a->tokens_generated = 3456;
    a->prompt_tokens = 789;
    snprintf(b->name, sizeof b->name, "%s", WEIRD);
    snprintf(b->digest, sizeof b->digest, "ffff");
    b->state = SCHED_STATE_LOADING;
    b->pinned = true;
    b->keep_alive_ns = SCHED_FOREVER;
    b->expires_at = SCHED_FOREVER;
    b->est_bytes = 5000;
    b->size_bytes = 5000;
    st->sched.budget_bytes = 0; /* unlimited */
    st->sched.budget_source = CORE_BUDGET_UNLIMITED;
    st->sched.models_bytes = 6000;
    st->sched.queue_depth = 3;
    st->sched.max_queue = 512;
    st->sched.loads = 4;
    st->sched.load_failures = 1;
    st->sched.unloads = 2;
    st->sched.evictions = 7;
    st->sched.expiries = 5;
    st->sched.rejected_busy = 8;
    st->sched.rejected_pinned = 9;
    st->sched.rejected_too_large = 10;
    st->sched.requests = 40;
    st->sched.uptime_ns = 2500000000;
    st->rss_bytes = 42;
    st->mem_available = 43;
    st->ram_bytes = 44;
    st->http_active = 2;
    st->event_streams = 1;
}

static const char *const A_LABELS = "model=llama3.2:latest\1digest=abc123def456\1";
static const char *const B_LABELS = "model=" WEIRD "\1digest=ffff\1";

static bool text_of(const obs_stats *st, parsed *ps)
{
    core_buf b;
    core_buf_init(&b);
    bool ok = obs_metrics_text(st, &b) == CORE_OK && parse(ps, b.data);
    if (!ok) printf("  metrics text: %s\n%s\n", ps->err, b.data ? b.data : "(null)");
    core_buf_deinit(&b);
    return ok;
}

// ---- tests ----

TEST(metrics_text_is_well_formed)
{
    obs_stats st;
    fake_stats(&st);
    static parsed ps;
    CHECK(text_of(&st, &ps));
    CHECK(ps.n_fam > 30);
    obs_stats_deinit(&st);
}

TEST(metrics_escape_label_values_exactly)
{
    obs_stats st;
    fake_stats(&st);
    static parsed ps;
    CHECK(text_of(&st, &ps));
    /* the label unescapes to the very bytes of the name, quote, backslash and newline */
    CHECK_EQ_INT(value_of(&ps, "dwell_model_size_bytes", B_LABELS), 5000);
    CHECK_EQ_INT(value_of(&ps, "dwell_model_requests_total", A_LABELS), 12);
    obs_stats_deinit(&st);
}

TEST(metrics_with_no_models_still_typed)
{
    obs_stats st;
    memset(&st, 0, sizeof st);
    st.sched.budget_bytes = 1 << 20;
    static parsed ps;
    CHECK(text_of(&st, &ps));
    CHECK(family_find(&ps, "dwell_model_resident_bytes") >= 0);
    CHECK_EQ_INT(value_of(&ps, "dwell_memory_budget_bytes", ""), 1 << 20);
    CHECK_EQ_INT(value_of(&ps, "dwell_models_loaded", ""), 0);
}

TEST(metrics_state_is_one_hot)
{
    obs_stats st;
    fake_stats(&st);
    static parsed ps;
    CHECK(text_of(&st, &ps));
    static const char *const states[] = {"loading", "idle", "busy", "unloading"};
    for (int m = 0; m < 2; m++) {
        int ones = 0;
        for (int k = 0; k < 4; k++) {
            char l[1200];
            snprintf(l, sizeof l, "%sstate=%s\1", m ? B_LABELS : A_LABELS, states[k]);
            double v = value_of(&ps, "dwell_model_state", l);
            CHECK(v == 0 || v == 1);
            ones += v == 1;
            if (v == 1) CHECK_EQ_STR(states[k], m ? "loading" : "busy");
        }
        CHECK_EQ_INT(ones, 1);
    }
    obs_stats_deinit(&st);
}

TEST(metrics_pinned_and_unlimited_are_inf)
{
    obs_stats st;
    fake_stats(&st);
    static parsed ps;
    CHECK(text_of(&st, &ps));
    CHECK(isinf(value_of(&ps, "dwell_model_keep_alive_seconds", B_LABELS)));
    CHECK(isinf(value_of(&ps, "dwell_model_keep_alive_remaining_seconds", B_LABELS)));
    CHECK_EQ_INT(value_of(&ps, "dwell_model_pinned", B_LABELS), 1);
    CHECK_EQ_INT(value_of(&ps, "dwell_model_keep_alive_seconds", A_LABELS), 300);
    double left = value_of(&ps, "dwell_model_keep_alive_remaining_seconds", A_LABELS);
    CHECK(left > 299 && left <= 300);
    CHECK(isinf(value_of(&ps, "dwell_memory_budget_bytes", "")));
    CHECK_EQ_INT(value_of(&ps, "dwell_memory_budget_info", "source=unlimited\1"), 1);
    obs_stats_deinit(&st);
}

/* Every figure the metrics share with /api/stats is the same number in both. */
TEST(metrics_agree_with_stats_json)
{
    obs_stats st;
    fake_stats(&st);
    st.sched.budget_bytes = 123456;
    static parsed ps;
    CHECK(text_of(&st, &ps));
    json_t *j = obs_stats_json(&st);
    CHECK(j != NULL);
    json_t *srv = json_object_get(j, "server");
    static const char *const pairs[][2] = {
        {"dwell_memory_budget_bytes", "budget_bytes"}, {"dwell_models_bytes", "models_bytes"},
        {"dwell_process_rss_bytes", "rss_bytes"}, {"dwell_ram_bytes", "ram_bytes"},
        {"dwell_mem_available_bytes", "mem_available_bytes"},
        {"dwell_queue_depth", "queue_depth"}, {"dwell_max_queue", "max_queue"},
        {"dwell_loads_total", "loads"}, {"dwell_load_failures_total", "load_failures"},
        {"dwell_unloads_total", "unloads"}, {"dwell_evictions_total", "evictions"},
        {"dwell_expiries_total", "expiries"}, {"dwell_requests_total", "requests"},
        {"dwell_http_requests_in_flight", "http_active"},
        {"dwell_event_streams", "event_streams"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        CHECK_MSG(value_of(&ps, pairs[i][0], "") ==
                      (double)json_integer_value(json_object_get(srv, pairs[i][1])),
                  "%s", pairs[i][0]);
    CHECK_EQ_INT(value_of(&ps, "dwell_rejections_total", "reason=queue_full\1"), 8);
    CHECK_EQ_INT(value_of(&ps, "dwell_rejections_total", "reason=pinned\1"), 9);
    CHECK_EQ_INT(value_of(&ps, "dwell_rejections_total", "reason=too_large\1"), 10);
    CHECK(value_of(&ps, "dwell_uptime_seconds", "") == 2.5);
    json_t *m = json_array_get(json_object_get(j, "models"), 0);
    json_t *mem = json_object_get(m, "memory");
    static const char *const mem_pairs[][2] = {
        {"dwell_model_resident_bytes", "resident_bytes"},
        {"dwell_model_measured_bytes", "measured_bytes"},
        {"dwell_model_estimated_bytes", "estimated_bytes"},
        {"dwell_model_size_bytes", "size_bytes"}, {"dwell_model_kv_bytes", "kv_bytes"},
        {"dwell_model_weight_bytes", "weight_bytes"}};
    for (size_t i = 0; i < sizeof mem_pairs / sizeof mem_pairs[0]; i++)
        CHECK_MSG(value_of(&ps, mem_pairs[i][0], A_LABELS) ==
                      (double)json_integer_value(json_object_get(mem, mem_pairs[i][1])),
                  "%s", mem_pairs[i][0]);
    static const char *const model_pairs[][2] = {
        {"dwell_model_requests_total", "requests_served"},
        {"dwell_model_warm_hits_total", "warm_hits"},
        {"dwell_model_cold_loads_total", "cold_loads"},
        {"dwell_model_tokens_generated_total", "tokens_generated"},
        {"dwell_model_prompt_tokens_total", "prompt_tokens"},
        {"dwell_model_in_flight", "in_flight"}, {"dwell_model_slots", "slots"},
        {"dwell_model_slots_busy", "slots_busy"}, {"dwell_model_context_length", "num_ctx"}};
    for (size_t i = 0; i < sizeof model_pairs / sizeof model_pairs[0]; i++)
        CHECK_MSG(value_of(&ps, model_pairs[i][0], A_LABELS) ==
                      (double)json_integer_value(json_object_get(m, model_pairs[i][1])),
                  "%s", model_pairs[i][0]);
    CHECK(value_of(&ps, "dwell_model_last_load_seconds", A_LABELS) == 1.5);
    json_decref(j);
    obs_stats_deinit(&st);
}

int main(void)
{
    RUN(metrics_text_is_well_formed);
    RUN(metrics_escape_label_values_exactly);
    RUN(metrics_with_no_models_still_typed);
    RUN(metrics_state_is_one_hot);
    RUN(metrics_pinned_and_unlimited_are_inf);
    RUN(metrics_agree_with_stats_json);
    return test_summary();
}
