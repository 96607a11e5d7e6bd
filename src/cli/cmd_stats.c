/* cmd_stats.c — `dwell stats`: what is in memory right now, how much, and for how long.
 *
 * A live view of GET /api/stats (docs/api.md), redrawn every second like `docker stats`:
 * the server's memory budget and where it came from, what the models use, the system's
 * available memory, the queue and the load/eviction counters, then one row per loaded model,
 * then the last few residency events (GET /api/events?stream=false, fetched from the last
 * id seen so that each refresh asks for a handful). --no-stream prints one snapshot; --json
 * prints the server's snapshot objects, one per line. Only a terminal gets the full-screen
 * redraw (alternate screen, cursor hidden); other output gets plain snapshots separated by a
 * blank line. Ctrl-C leaves. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/internal.h"

#define STATS_EVENTS 5        /* residency events shown under the table */
#define STATS_REASON_MAX 80   /* a longer reason is cut (with "...") */

static void size_str(int64_t b, char *buf, size_t cap)
{
    core_size_format(b > 0 ? (size_t)b : 0, buf, cap);
}

/* Time left before the model unloads: "4m59s", "forever", "-" while busy (no timer runs),
 * "unloading" once past. */
static void until_str(json_t *m, int64_t now, char *buf, size_t cap)
{
    const char *exp = cli_jstr(m, "expires_at"), *state = cli_jstr(m, "state");
    int64_t t;
    if (strcmp(state, "loading") == 0 || strcmp(state, "unloading") == 0) {
        snprintf(buf, cap, "%s", strcmp(state, "loading") == 0 ? "-" : "unloading");
    } else if (json_is_true(json_object_get(m, "pinned")) || strcmp(exp, "forever") == 0) {
        snprintf(buf, cap, "forever");
    } else if (!exp[0] || !cli_time_parse(exp, &t)) {
        snprintf(buf, cap, "-");
    } else if (t <= now) {
        snprintf(buf, cap, "unloading");
    } else {
        core_duration_format((t - now) / 1000000000 * 1000000000, buf, cap);
    }
}

static void load_time_str(int64_t ns, char *buf, size_t cap)
{
    if (ns <= 0)
        snprintf(buf, cap, "-");
    else if (ns < 1000000000)
        snprintf(buf, cap, "%.1f ms", (double)ns / 1e6);
    else
        snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
}

static void render_header(json_t *snap, FILE *f)
{
    json_t *s = json_object_get(snap, "server");
    char budget[32], used[32], avail[32], rss[32], ram[32];
    int64_t b = cli_jint(s, "budget_bytes"), u = cli_jint(s, "models_bytes");
    size_str(b, budget, sizeof budget);
    size_str(u, used, sizeof used);
    size_str(cli_jint(s, "mem_available_bytes"), avail, sizeof avail);
    size_str(cli_jint(s, "rss_bytes"), rss, sizeof rss);
    size_str(cli_jint(s, "ram_bytes"), ram, sizeof ram);
    char tm[48];
    snprintf(tm, sizeof tm, "%.19s", cli_jstr(snap, "time"));
    if (tm[10] == 'T') tm[10] = ' ';
    fprintf(f, "dwell stats  %s  %s UTC\n\n", cli_host(), tm);
    if (b > 0)
        fprintf(f,
                "MEMORY    budget %s (%s)    models %s (%.1f%% of budget)    available %s"
                "    server RSS %s    RAM %s\n",
                budget, cli_jstr(s, "budget_source"), used, 100.0 * (double)u / (double)b, avail,
                rss, ram);
    else
        fprintf(f,
                "MEMORY    budget unlimited    models %s    available %s    server RSS %s"
                "    RAM %s\n",
                used, avail, rss, ram);
    fprintf(f,
            "ACTIVITY  queue %lld/%lld    loads %lld    unloads %lld    evictions %lld    "
            "expiries %lld    failed loads %lld    requests %lld\n\n",
            (long long)cli_jint(s, "queue_depth"), (long long)cli_jint(s, "max_queue"),
            (long long)cli_jint(s, "loads"), (long long)cli_jint(s, "unloads"),
            (long long)cli_jint(s, "evictions"), (long long)cli_jint(s, "expiries"),
            (long long)cli_jint(s, "load_failures"), (long long)cli_jint(s, "requests"));
}

static void render(json_t *snap, FILE *f)
{
    render_header(snap, f);
    cli_table t;
    cli_table_init(&t, 12);
    const char *head[] = {"NAME",   "STATE", "ESTIMATED", "MEASURED",  "KV CACHE", "IN FLIGHT",
                          "SERVED", "WARM",  "COLD",      "LAST LOAD", "UNTIL",    "KEEP-ALIVE"};
    for (int i = 0; i < 12; i++)
        cli_table_add(&t, head[i]);
    int64_t now = core_wall_ns();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(snap, "models"), i, m)
    {
        json_t *mem = json_object_get(m, "memory");
        char est[32], meas[32], kv[32], fl[48], served[24], warm[24], cold[24], load[32];
        char until[32], ka[32], kas[80];
        size_str(cli_jint(mem, "estimated_bytes"), est, sizeof est);
        size_str(cli_jint(mem, "resident_bytes"), meas, sizeof meas);
        size_str(cli_jint(mem, "kv_bytes"), kv, sizeof kv);
        snprintf(fl, sizeof fl, "%lld/%lld", (long long)cli_jint(m, "in_flight"),
                 (long long)cli_jint(m, "slots"));
        if (cli_jint(m, "waiting") > 0)
            snprintf(fl + strlen(fl), sizeof fl - strlen(fl), " +%lld waiting",
                     (long long)cli_jint(m, "waiting"));
        snprintf(served, sizeof served, "%lld", (long long)cli_jint(m, "requests_served"));
        snprintf(warm, sizeof warm, "%lld", (long long)cli_jint(m, "warm_hits"));
        snprintf(cold, sizeof cold, "%lld", (long long)cli_jint(m, "cold_loads"));
        load_time_str(cli_jint(m, "last_load_ns"), load, sizeof load);
        until_str(m, now, until, sizeof until);
        int64_t ka_ns = cli_jint(m, "keep_alive_ns");
        if (json_is_true(json_object_get(m, "pinned")) || ka_ns == INT64_MAX)
            snprintf(ka, sizeof ka, "forever");
        else
            core_duration_format(ka_ns, ka, sizeof ka);
        snprintf(kas, sizeof kas, "%s (%s)", ka, cli_jstr(m, "keep_alive_source"));
        const char *row[] = {cli_jstr(m, "name"),
                             cli_jstr(m, "state"),
                             est,
                             meas,
                             kv,
                             fl,
                             served,
                             warm,
                             cold,
                             load,
                             until,
                             kas};
        for (int k = 0; k < 12; k++)
            cli_table_add(&t, row[k]);
    }
    cli_table_print(&t, "", f);
    if (json_array_size(json_object_get(snap, "models")) == 0) fprintf(f, "(no models loaded)\n");
    cli_table_deinit(&t);
}

/* The last STATS_EVENTS residency events as an array (new reference), or NULL when the
 * server has none to give (an older server without /api/events, or an error): the view goes
 * on without them. *last_id: the newest id seen, kept between refreshes. */
static json_t *recent_events(uint64_t *last_id)
{
    char path[96];
    uint64_t since = *last_id > STATS_EVENTS ? *last_id - STATS_EVENTS : 0;
    snprintf(path, sizeof path, "/api/events?stream=false&since=%llu", (unsigned long long)since);
    json_t *j = NULL;
    if (cli_http_json("GET", path, NULL, &j, NULL, NULL) || !j) return NULL;
    json_t *ev = json_object_get(j, "events");
    size_t n = json_array_size(ev);
    json_t *out = json_array();
    for (size_t i = n > STATS_EVENTS ? n - STATS_EVENTS : 0; i < n; i++)
        json_array_append(out, json_array_get(ev, i));
    *last_id = (uint64_t)cli_jint(j, "last_id");
    json_decref(j);
    return out;
}

static void render_events(json_t *events, FILE *f)
{
    if (!json_array_size(events)) return;
    cli_table t;
    cli_table_init(&t, 5);
    const char *head[] = {"TIME", "EVENT", "MODEL", "SIZE", "REASON"};
    for (int i = 0; i < 5; i++)
        cli_table_add(&t, head[i]);
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        char tm[16], size[32], reason[STATS_REASON_MAX + 4];
        const char *when = cli_jstr(e, "time"), *why = cli_jstr(e, "reason");
        snprintf(tm, sizeof tm, "%.8s", strlen(when) > 11 ? when + 11 : when); /* HH:MM:SS */
        if (cli_jint(e, "bytes") > 0) size_str(cli_jint(e, "bytes"), size, sizeof size);
        else snprintf(size, sizeof size, "-");
        snprintf(reason, sizeof reason, "%s", why);
        if (strlen(why) > STATS_REASON_MAX) {
            size_t k = STATS_REASON_MAX - 3;
            while (k > 0 && (reason[k] & 0xC0) == 0x80) k--; /* not inside a UTF-8 char */
            memcpy(reason + k, "...", 4);
        }
        const char *row[] = {tm, cli_jstr(e, "type"), cli_jstr(e, "model"), size, reason};
        for (int k = 0; k < 5; k++)
            cli_table_add(&t, row[k]);
    }
    fprintf(f, "\nRECENT EVENTS (UTC)\n");
    cli_table_print(&t, "", f);
    cli_table_deinit(&t);
}

/* Sleeps up to ms, returning early on Ctrl-C. */
static void nap(int ms)
{
    for (int i = 0; i < ms / 50 && !cli_interrupted; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int cli_cmd_stats(int argc, char **argv)
{
    cli_flag flags[] = {
        {"no-stream", 0, NULL, "Print one snapshot and exit", false, NULL},
        {"json", 0, NULL, "Print JSON snapshots, one object per line", false, NULL},
    };
    cli_cmd cmd = {"stats", "", "Show what is in memory, live (like docker stats)", flags, 2, 0, 0};
    const char *pos[argc + 1];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    bool once = flags[0].set, as_json = flags[1].set;
    bool screen = !once && !as_json && isatty(STDOUT_FILENO);
    cli_sigint_install();
    if (screen) fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, hide cursor */
    core_err err;
    rc = 0;
    uint64_t last_id = 0;
    for (int n = 0; !cli_interrupted; n++) {
        json_t *snap;
        if (cli_http_json("GET", "/api/stats", NULL, &snap, NULL, &err)) {
            if (cli_interrupted) break;
            if (screen) fputs("\033[?25h\033[?1049l", stdout);
            fflush(stdout);
            return cli_err_print(&err);
        }
        if (as_json) {
            char *s = json_dumps(snap, JSON_COMPACT);
            if (s) printf("%s\n", s);
            free(s);
        } else {
            if (screen)
                fputs("\033[H\033[2J", stdout);
            else if (n > 0)
                fputc('\n', stdout);
            render(snap, stdout);
            json_t *events = recent_events(&last_id);
            render_events(events, stdout);
            json_decref(events);
            if (screen) fputs("\n(Ctrl-C to quit)\n", stdout);
        }
        json_decref(snap);
        fflush(stdout);
        if (once) break;
        nap(1000);
    }
    if (screen) fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    return rc;
}
