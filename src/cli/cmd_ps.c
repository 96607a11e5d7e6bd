/* cmd_ps.c — `dwell ps`, `dwell stop` and `dwell list`: the loaded and the installed models,
 * in Ollama's table layout (spec section J, items 78–83). */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "cli/internal.h"

/* "100% CPU", "100% GPU", "19%/81% CPU/GPU" or "Unknown" (item 79). */
static void processor_str(int64_t size, int64_t vram, char *buf, size_t cap)
{
    if (vram == 0) {
        snprintf(buf, cap, "100%% CPU");
    } else if (vram == size) {
        snprintf(buf, cap, "100%% GPU");
    } else if (vram > size || size == 0) {
        snprintf(buf, cap, "Unknown");
    } else {
        int cpu = (int)lround((double)(size - vram) / (double)size * 100.0);
        snprintf(buf, cap, "%d%%/%d%% CPU/GPU", cpu, 100 - cpu);
    }
}

static void ps_until(json_t *m, int64_t now, char *buf, size_t cap)
{
    int64_t t;
    if (!cli_time_parse(cli_jstr(m, "expires_at"), &t)) {
        snprintf(buf, cap, "Unknown");
    } else if (t < now) {
        snprintf(buf, cap, "Stopping...");
    } else {
        cli_human_time(t, now, "Never", buf, cap);
    }
}

int cli_cmd_ps(int argc, char **argv)
{
    cli_cmd cmd = {"ps", "[PREFIX]", "List running models", NULL, 0, 0, 1};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    json_t *res;
    core_err err;
    if (cli_http_json("GET", "/api/ps", NULL, &res, NULL, &err)) return cli_err_print(&err);
    cli_table t;
    cli_table_init(&t, 6);
    const char *head[] = {"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"};
    for (int i = 0; i < 6; i++)
        cli_table_add(&t, head[i]);
    int64_t now = core_wall_ns();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(res, "models"), i, m)
    {
        const char *name = cli_jstr(m, "name");
        if (n_pos && strncmp(name, pos[0], strlen(pos[0])) != 0) continue;
        char id[13], size[32], proc[48], ctx[24], until[80];
        snprintf(id, sizeof id, "%.12s", cli_jstr(m, "digest"));
        cli_human_bytes(cli_jint(m, "size"), size, sizeof size);
        processor_str(cli_jint(m, "size"), cli_jint(m, "size_vram"), proc, sizeof proc);
        snprintf(ctx, sizeof ctx, "%lld", (long long)cli_jint(m, "context_length"));
        ps_until(m, now, until, sizeof until);
        const char *row[] = {name, id, size, proc, ctx, until};
        for (int k = 0; k < 6; k++)
            cli_table_add(&t, row[k]);
    }
    cli_table_print(&t, "", stdout);
    cli_table_deinit(&t);
    json_decref(res);
    return 0;
}

int cli_cmd_stop(int argc, char **argv)
{
    cli_cmd cmd = {"stop", "MODEL", "Stop a running model", NULL, 0, 1, 1};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    core_err err;
    json_t *req = json_pack("{s:s}", "model", pos[0]);
    rc = cli_http_json("POST", "/api/show", req, NULL, NULL, &err);
    json_decref(req);
    if (rc == CORE_NOTFOUND) {
        fprintf(stderr, "Error: couldn't find model \"%s\" to stop\n", pos[0]);
        return 1;
    }
    if (rc) return cli_err_print(&err);
    req =
        json_pack("{s:s,s:s,s:i,s:b}", "model", pos[0], "prompt", "", "keep_alive", 0, "stream", 0);
    rc = cli_http_json("POST", "/api/generate", req, NULL, NULL, &err);
    json_decref(req);
    return rc ? cli_err_print(&err) : 0;
}

int cli_cmd_list(int argc, char **argv)
{
    cli_cmd cmd = {argv[0], "[PREFIX]", "List models", NULL, 0, 0, 1};
    const char *pos[argc];
    int n_pos, rc = cli_args_parse(&cmd, argc, argv, pos, &n_pos);
    if (rc) return rc == CLI_ARGS_HELP ? 0 : 1;
    json_t *res;
    core_err err;
    if (cli_http_json("GET", "/api/tags", NULL, &res, NULL, &err)) return cli_err_print(&err);
    cli_table t;
    cli_table_init(&t, 4);
    const char *head[] = {"NAME", "ID", "SIZE", "MODIFIED"};
    for (int i = 0; i < 4; i++)
        cli_table_add(&t, head[i]);
    int64_t now = core_wall_ns();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(res, "models"), i, m)
    {
        const char *name = cli_jstr(m, "name");
        if (n_pos && strncasecmp(name, pos[0], strlen(pos[0])) != 0) continue;
        char id[13], size[32], mod[80];
        int64_t t_mod = 0;
        snprintf(id, sizeof id, "%.12s", cli_jstr(m, "digest"));
        cli_human_bytes(cli_jint(m, "size"), size, sizeof size);
        if (!cli_time_parse(cli_jstr(m, "modified_at"), &t_mod)) t_mod = 0;
        cli_human_time(t_mod, now, "Never", mod, sizeof mod);
        const char *row[] = {name, id, size, mod};
        for (int k = 0; k < 4; k++)
            cli_table_add(&t, row[k]);
    }
    cli_table_print(&t, "", stdout);
    cli_table_deinit(&t);
    json_decref(res);
    return 0;
}
