/* test_budget.c — the memory budget (core/cgroup.c) against fake cgroup trees: v2
 * memory.max, v1 memory.limit_in_bytes, "max" / unlimited, the reserve, the override and
 * DWELL_MEMORY_BUDGET from the environment. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "test.h"

#define GIB ((size_t)1 << 30)

/* A fresh temporary directory for one fake tree; removed by tree_rm. */
static void tree_new(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/dwell-cg-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void tree_write(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    CHECK_EQ_INT(core_mkdirs(path, NULL), CORE_OK);
    *slash = '/';
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void tree_rm(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

TEST(budget_cgroup_v2_limit_minus_reserve)
{
    char dir[64];
    tree_new(dir, sizeof dir);
    tree_write(dir, "memory.max", "4294967296\n");
    int version = -1;
    char file[512];
    CHECK_EQ_INT(core_cgroup_limit(dir, &version, file, sizeof file), 4 * GIB);
    CHECK_EQ_INT(version, 2);
    CHECK_CONTAINS(file, "memory.max");
    core_budget b;
    core_budget_compute(dir, GIB, false, 0, &b);
    if (core_ram_bytes() > 4 * GIB) {
        CHECK_EQ_INT(b.source, CORE_BUDGET_CGROUP_V2);
        CHECK_EQ_INT(b.bytes, 3 * GIB);
        CHECK_EQ_INT(b.cgroup_limit, 4 * GIB);
        CHECK_EQ_INT(b.reserve, GIB);
        CHECK_EQ_STR(core_budget_source_name(b.source), "cgroup v2");
    }
    tree_rm(dir);
}

TEST(budget_cgroup_v2_max_means_ram)
{
    char dir[64];
    tree_new(dir, sizeof dir);
    tree_write(dir, "memory.max", "max\n");
    int version = -1;
    CHECK_EQ_INT(core_cgroup_limit(dir, &version, NULL, 0), 0);
    CHECK_EQ_INT(version, 2);
    core_budget b;
    core_budget_compute(dir, GIB, false, 0, &b);
    CHECK_EQ_INT(b.source, CORE_BUDGET_RAM);
    CHECK_EQ_INT(b.cgroup_limit, 0);
    CHECK_EQ_INT(b.bytes, core_ram_bytes() - GIB);
    CHECK_EQ_STR(b.cgroup_file, "");
    tree_rm(dir);
}

TEST(budget_cgroup_v1_limit)
{
    char dir[64];
    tree_new(dir, sizeof dir);
    tree_write(dir, "memory/memory.limit_in_bytes", "2147483648\n");
    int version = -1;
    CHECK_EQ_INT(core_cgroup_limit(dir, &version, NULL, 0), 2 * GIB);
    CHECK_EQ_INT(version, 1);
    core_budget b;
    core_budget_compute(dir, 512u << 20, false, 0, &b);
    CHECK_EQ_INT(b.source, CORE_BUDGET_CGROUP_V1);
    CHECK_EQ_INT(b.bytes, 2 * GIB - (512u << 20));
    CHECK_EQ_STR(core_budget_source_name(b.source), "cgroup v1");
    tree_rm(dir);
}

TEST(budget_cgroup_v1_unlimited_value_means_none)
{
    char dir[64];
    tree_new(dir, sizeof dir);
    tree_write(dir, "memory/memory.limit_in_bytes", "9223372036854771712\n");
    int version = -1;
    CHECK_EQ_INT(core_cgroup_limit(dir, &version, NULL, 0), 0);
    CHECK_EQ_INT(version, 1);
    core_budget b;
    core_budget_compute(dir, GIB, false, 0, &b);
    CHECK_EQ_INT(b.source, CORE_BUDGET_RAM);
    tree_rm(dir);
}

TEST(budget_no_cgroup_files_uses_ram)
{
    char dir[64];
    tree_new(dir, sizeof dir);
    int version = -1;
    CHECK_EQ_INT(core_cgroup_limit(dir, &version, NULL, 0), 0);
    CHECK_EQ_INT(version, 0);
    core_budget b;
    core_budget_compute(dir, GIB, false, 0, &b);
    CHECK_EQ_INT(b.source, CORE_BUDGET_RAM);
    CHECK_EQ_INT(b.ram, core_ram_bytes());
    tree_rm(dir);
}

TEST(budget_reserve_capped_at_half_the_limit)
{
    char dir[64];
    tree_new(dir, sizeof dir);
    tree_write(dir, "memory.max", "536870912\n"); /* 512 MiB container, 1 GiB reserve */
    core_budget b;
    core_budget_compute(dir, GIB, false, 0, &b);
    CHECK_EQ_INT(b.source, CORE_BUDGET_CGROUP_V2);
    CHECK_EQ_INT(b.bytes, 256u << 20);
    CHECK_EQ_INT(b.reserve, 256u << 20);
    tree_rm(dir);
}

TEST(budget_smallest_limit_on_the_path_wins)
{
    /* The limit of the process's own cgroup and of its ancestors count: write a smaller one
     * deeper, on our real cgroup path (v2 "0::/x" or v1 "N:memory:/x"), and a larger one at
     * the root of the fake tree. */
    char v2[512] = "", v1[512] = "";
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        char line[600];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            char *m = strstr(line, ":memory:");
            if (!strncmp(line, "0::", 3)) snprintf(v2, sizeof v2, "%.500s", line + 3);
            else if (m) snprintf(v1, sizeof v1, "%.500s", m + 8);
        }
        fclose(f);
    }
    bool use_v2 = v2[0] && strcmp(v2, "/") != 0;
    bool use_v1 = !use_v2 && v1[0] && strcmp(v1, "/") != 0;
    if (!use_v2 && !use_v1) {
        printf("  (process is in the root cgroup: nothing deeper to test)\n");
        return;
    }
    char dir[64];
    tree_new(dir, sizeof dir);
    char rel[700];
    if (use_v2) {
        tree_write(dir, "memory.max", "8589934592\n");
        snprintf(rel, sizeof rel, "%s/memory.max", v2 + 1);
    } else {
        tree_write(dir, "memory/memory.limit_in_bytes", "8589934592\n");
        snprintf(rel, sizeof rel, "memory/%s/memory.limit_in_bytes", v1 + 1);
    }
    tree_write(dir, rel, "1073741824\n");
    int version = -1;
    char file[512];
    CHECK_EQ_INT(core_cgroup_limit(dir, &version, file, sizeof file), GIB);
    CHECK_EQ_INT(version, use_v2 ? 2 : 1);
    CHECK_CONTAINS(file, use_v2 ? v2 : v1);
    tree_rm(dir);
}

TEST(budget_override_wins)
{
    char dir[64];
    tree_new(dir, sizeof dir);
    tree_write(dir, "memory.max", "4294967296\n");
    core_budget b;
    core_budget_compute(dir, GIB, true, 250000000, &b);
    CHECK_EQ_INT(b.source, CORE_BUDGET_ENV);
    CHECK_EQ_INT(b.bytes, 250000000);
    CHECK_EQ_INT(b.cgroup_limit, 4 * GIB); /* still reported */
    tree_rm(dir);
}

TEST(budget_from_env)
{
    char dir[64];
    tree_new(dir, sizeof dir);
    tree_write(dir, "memory.max", "3221225472\n");
    setenv("DWELL_CGROUP_ROOT", dir, 1);
    setenv("DWELL_MEMORY_RESERVE", "512MiB", 1);
    unsetenv("DWELL_MEMORY_BUDGET");
    core_budget b;
    core_err e;
    CHECK_EQ_INT(core_budget_from_env(&b, &e), CORE_OK);
    if (core_ram_bytes() > 3 * GIB) {
        CHECK_EQ_INT(b.source, CORE_BUDGET_CGROUP_V2);
        CHECK_EQ_INT(b.bytes, 3 * GIB - (512u << 20));
    }
    setenv("DWELL_MEMORY_BUDGET", "250MB", 1);
    CHECK_EQ_INT(core_budget_from_env(&b, &e), CORE_OK);
    CHECK_EQ_INT(b.source, CORE_BUDGET_ENV);
    CHECK_EQ_INT(b.bytes, 250000000);
    setenv("DWELL_MEMORY_BUDGET", "lots", 1);
    CHECK_EQ_INT(core_budget_from_env(&b, &e), CORE_INVALID);
    CHECK_CONTAINS(e.msg, "DWELL_MEMORY_BUDGET");
    CHECK_CONTAINS(e.msg, "lots");
    unsetenv("DWELL_MEMORY_BUDGET");
    setenv("DWELL_MEMORY_RESERVE", "-3", 1);
    CHECK_EQ_INT(core_budget_from_env(&b, &e), CORE_INVALID);
    CHECK_CONTAINS(e.msg, "DWELL_MEMORY_RESERVE");
    unsetenv("DWELL_MEMORY_RESERVE");
    unsetenv("DWELL_CGROUP_ROOT");
    tree_rm(dir);
}

int main(void)
{
    RUN(budget_cgroup_v2_limit_minus_reserve);
    RUN(budget_cgroup_v2_max_means_ram);
    RUN(budget_cgroup_v1_limit);
    RUN(budget_cgroup_v1_unlimited_value_means_none);
    RUN(budget_no_cgroup_files_uses_ram);
    RUN(budget_reserve_capped_at_half_the_limit);
    RUN(budget_smallest_limit_on_the_path_wins);
    RUN(budget_override_wins);
    RUN(budget_from_env);
    return test_summary();
}
