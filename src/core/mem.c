/* mem.c — memory probes: this process's RSS, physical RAM, MemAvailable. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

size_t core_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2) return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (size_t)resident * (size_t)(page > 0 ? page : 4096);
}

size_t core_ram_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (size_t)pages * (size_t)page;
}

size_t core_mem_available_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long v;
        if (sscanf(line, "MemAvailable: %lu kB", &v) == 1) {
            kb = v;
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

size_t core_mem_resident(const void *addr, size_t len)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t page = (size_t)(ps > 0 ? ps : 4096);
    if (!addr || !len) return 0;
    uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(page - 1);
    size_t span = (size_t)((uintptr_t)addr + len - start);
    size_t n_pages = (span + page - 1) / page;
    /* In chunks, so a large mapping needs only a small vector. */
    unsigned char vec[4096];
    size_t resident = 0;
    for (size_t done = 0; done < n_pages;) {
        size_t n = n_pages - done < sizeof vec ? n_pages - done : sizeof vec;
        if (mincore((void *)(start + done * page), n * page, vec) != 0) return 0;
        for (size_t i = 0; i < n; i++) resident += vec[i] & 1;
        done += n;
    }
    return resident * page;
}

void core_heap_trim(void)
{
#ifndef DWELL_SANITIZE
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    malloc_trim(0);
    pthread_mutex_unlock(&mu);
#endif
}
