/* cgroup.c — the memory budget: how many bytes all loaded models may use together.
 *
 * budget = min(cgroup limit, physical RAM) − reserve, or DWELL_MEMORY_BUDGET when set.
 * The cgroup limit is the smallest one on the path from this process's cgroup (read from
 * /proc/self/cgroup) up to the hierarchy root, so a limit set on a parent slice counts too.
 * Inside a container the process's cgroup is usually "/" and the limit is in the root's
 * memory.max (v2) or memory/memory.limit_in_bytes (v1). DWELL_CGROUP_ROOT replaces
 * /sys/fs/cgroup, so tests can point it at a fake tree holding just those files.
 * Stateless; safe from any thread. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

// ---- helpers ----

#define CG_UNLIMITED_FROM ((size_t)1 << 62) /* v1 reports "no limit" as ~2^63 rounded down */

/* Reads a limit file: 0 = no limit or unreadable, else bytes. *found says if it existed. */
static size_t cg_read_limit(const char *path, bool *found)
{
    *found = false;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[64] = {0};
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!ok) return 0;
    *found = true;
    if (!strncmp(line, "max", 3)) return 0;
    char *end;
    unsigned long long v = strtoull(line, &end, 10);
    if (end == line || v == ULLONG_MAX || v >= (unsigned long long)CG_UNLIMITED_FROM) return 0;
    return (size_t)v;
}

/* The process's cgroup path for v2 ("0::/x") or for v1's memory controller, "" if none. */
static void cg_self_path(int version, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':');
        if (!c1) continue;
        char *c2 = strchr(c1 + 1, ':');
        if (!c2) continue;
        *c2 = 0;
        const char *ctrls = c1 + 1, *path = c2 + 1;
        bool match = false;
        if (version == 2) {
            match = !strncmp(line, "0:", 2) && ctrls[0] == 0;
        } else {
            char tmp[256];
            snprintf(tmp, sizeof tmp, ",%s,", ctrls);
            match = strstr(tmp, ",memory,") != NULL;
        }
        if (match) {
            snprintf(out, cap, "%s", path);
            break;
        }
    }
    fclose(f);
}

/* The smallest limit in `<base><path>/<file>` for path and each ancestor, down to base. */
static size_t cg_walk(const char *base, const char *self, const char *file, bool *any,
                      char *used, size_t used_cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", self);
    size_t best = 0;
    for (int guard = 0; guard < 64; guard++) {
        size_t n = strlen(path);
        while (n > 0 && path[n - 1] == '/') path[--n] = 0;
        char full[1600];
        snprintf(full, sizeof full, "%s%s%s/%s", base, n && path[0] != '/' ? "/" : "", path,
                 file);
        bool found;
        size_t v = cg_read_limit(full, &found);
        if (found) *any = true;
        if (v && (!best || v < best)) {
            best = v;
            if (used) snprintf(used, used_cap, "%s", full);
        }
        if (n == 0) break;
        char *slash = strrchr(path, '/');
        if (!slash) path[0] = 0;
        else *slash = 0;
    }
    return best;
}

// ---- public ----

const char *core_budget_source_name(int source)
{
    switch (source) {
    case CORE_BUDGET_RAM: return "RAM";
    case CORE_BUDGET_CGROUP_V2: return "cgroup v2";
    case CORE_BUDGET_CGROUP_V1: return "cgroup v1";
    case CORE_BUDGET_ENV: return "DWELL_MEMORY_BUDGET";
    default: return "unlimited";
    }
}

size_t core_cgroup_limit(const char *root, int *version, char *file, size_t file_cap)
{
    if (!root || !*root) root = "/sys/fs/cgroup";
    if (file && file_cap) file[0] = 0;
    *version = 0;
    char self[1024];
    bool any = false;

    cg_self_path(2, self, sizeof self);
    size_t v2 = cg_walk(root, self, "memory.max", &any, file, file_cap);
    if (v2) {
        *version = 2;
        return v2;
    }
    if (any) { /* a v2 hierarchy with no limit anywhere: "max" */
        *version = 2;
        return 0;
    }

    cg_self_path(1, self, sizeof self);
    char base[1100];
    snprintf(base, sizeof base, "%s/memory", root);
    size_t v1 = cg_walk(base, self, "memory.limit_in_bytes", &any, file, file_cap);
    if (!v1) v1 = cg_walk(root, self, "memory.limit_in_bytes", &any, file, file_cap);
    if (v1 || any) *version = 1;
    return v1;
}

void core_budget_compute(const char *cgroup_root, size_t reserve, bool has_override,
                         size_t override, core_budget *out)
{
    memset(out, 0, sizeof *out);
    out->ram = core_ram_bytes();
    int version = 0;
    out->cgroup_limit = core_cgroup_limit(cgroup_root, &version, out->cgroup_file,
                                          sizeof out->cgroup_file);
    if (has_override) {
        out->bytes = override;
        out->source = CORE_BUDGET_ENV;
        return;
    }
    size_t limit = out->ram;
    out->source = out->ram ? CORE_BUDGET_RAM : CORE_BUDGET_UNLIMITED;
    if (out->cgroup_limit && (!limit || out->cgroup_limit < limit)) {
        limit = out->cgroup_limit;
        out->source = version == 1 ? CORE_BUDGET_CGROUP_V1 : CORE_BUDGET_CGROUP_V2;
    } else {
        out->cgroup_file[0] = 0;
    }
    if (!limit) return; /* nothing known: unlimited */
    if (reserve >= limit / 2) reserve = limit / 2;
    out->reserve = reserve;
    out->bytes = limit - reserve;
}

int core_budget_from_env(core_budget *out, core_err *err)
{
    size_t reserve = (size_t)1 << 30, override = 0;
    bool has_override = false;
    const char *v = getenv("DWELL_MEMORY_RESERVE");
    core_err e;
    if (v && *v && core_size_parse(v, &reserve, &e))
        return core_err_set(err, CORE_INVALID, "DWELL_MEMORY_RESERVE: %s", e.msg);
    v = getenv("DWELL_MEMORY_BUDGET");
    if (v && *v) {
        if (core_size_parse(v, &override, &e))
            return core_err_set(err, CORE_INVALID, "DWELL_MEMORY_BUDGET: %s", e.msg);
        has_override = true;
    }
    core_budget_compute(getenv("DWELL_CGROUP_ROOT"), reserve, has_override, override, out);
    return CORE_OK;
}
