/* pool.c — the compute thread pool: persistent workers that run one task at a time.
 *
 * kern_pool_run publishes (fn, arg) and bumps a generation counter; the caller runs ith 0 and
 * the workers ith 1..nth-1, then the caller waits until the pending count reaches zero. Both
 * sides spin for a short while (a decode step issues many small tasks back to back) and then
 * sleep on a condition variable, so an idle server burns no CPU. Nothing is allocated per run.
 *
 * Ownership: the pool belongs to the thread that created it; kern_pool_run and kern_pool_free
 * must be called from one thread at a time (never concurrently). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/internal.h"

#define POOL_MAX_THREADS 512
#define POOL_SPIN_NS 200000 /* spin up to 0.2 ms before sleeping */

struct kern_pool {
    int n_threads;
    pthread_t *threads; /* n_threads - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* workers sleep here waiting for a new generation */
    pthread_cond_t cv_done; /* the caller sleeps here waiting for pending == 0 */
    kern_task_fn fn;
    void *arg;
    atomic_uint_fast64_t gen;
    atomic_int pending;
    atomic_int n_sleeping;
    atomic_bool caller_sleeping;
    atomic_bool stop;
};

typedef struct {
    kern_pool *pool;
    int ith;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until pred(pool) is true or POOL_SPIN_NS passed; returns pred's last value. */
static bool spin_until(kern_pool *p, bool (*pred)(kern_pool *, uint64_t), uint64_t v)
{
    int64_t start = 0;
    for (int i = 0;; i++) {
        if (pred(p, v)) return true;
        cpu_relax();
        /* past the first few microseconds, let another runnable thread have the core (an
         * oversubscribed machine: several pools, or more threads than cores) */
        if (i > 2048) sched_yield();
        if ((i & 255) == 255) {
            int64_t now = core_mono_ns();
            if (start == 0) start = now;
            else if (now - start > POOL_SPIN_NS) return pred(p, v);
        }
    }
}

static bool gen_changed(kern_pool *p, uint64_t seen)
{
    return atomic_load(&p->gen) != seen || atomic_load(&p->stop);
}

static bool all_done(kern_pool *p, uint64_t unused)
{
    (void)unused;
    return atomic_load(&p->pending) == 0;
}

static void *worker_main(void *varg)
{
    worker_arg wa = *(worker_arg *)varg;
    free(varg);
    kern_pool *p = wa.pool;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(p, gen_changed, seen)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while (!gen_changed(p, seen)) pthread_cond_wait(&p->cv_work, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load(&p->gen);
        p->fn(p->arg, wa.ith, p->n_threads);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

int kern_pool_new(kern_pool **out, int n_threads, core_err *err)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > POOL_MAX_THREADS) {
        return core_err_set(err, CORE_INVALID, "thread pool: %d threads (want 1..%d)",
                            n_threads, POOL_MAX_THREADS);
    }
    kern_init();
    kern_pool *p = calloc(1, sizeof *p);
    if (!p) return core_err_set(err, CORE_NOMEM, "thread pool: out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            kern_pool_free(p);
            return core_err_set(err, CORE_NOMEM, "thread pool: out of memory");
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        int rc = wa ? 0 : ENOMEM;
        if (wa) {
            *wa = (worker_arg){p, i};
            rc = pthread_create(&p->threads[i - 1], NULL, worker_main, wa);
            if (rc != 0) free(wa);
        }
        if (rc != 0) {
            p->n_threads = i; /* only the first i - 1 workers exist */
            kern_pool_free(p);
            return core_err_set(err, rc == ENOMEM ? CORE_NOMEM : CORE_INTERNAL,
                                "thread pool: cannot start worker %d: %s", i, strerror(rc));
        }
    }
    *out = p;
    return CORE_OK;
}

void kern_pool_free(kern_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_work);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int kern_pool_size(const kern_pool *p)
{
    return p ? p->n_threads : 1;
}

void kern_pool_run(kern_pool *p, kern_task_fn fn, void *arg)
{
    if (!p || p->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_fetch_add(&p->gen, 1); /* publishes fn/arg (seq_cst) */
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n_threads);
    if (spin_until(p, all_done, 0)) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->caller_sleeping, true);
    while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->cv_done, &p->mu);
    atomic_store(&p->caller_sleeping, false);
    pthread_mutex_unlock(&p->mu);
}

// ---- default thread count ----

/* ceil(quota / period) from a cgroup v2 cpu.max file, or 0 when absent or "max". */
static int cgroup_cpu_limit(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char quota[32] = {0};
    long long period = 0;
    int n = fscanf(f, "%31s %lld", quota, &period);
    fclose(f);
    if (n != 2 || strcmp(quota, "max") == 0 || period <= 0) return 0;
    char *end;
    long long q = strtoll(quota, &end, 10);
    if (*end || q <= 0) return 0;
    long long cpus = (q + period - 1) / period;
    return cpus > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)cpus;
}

/* The cpu.max of this process's own cgroup (from /proc/self/cgroup), else the root's (what a
 * container sees). DWELL_CGROUP_ROOT replaces /sys/fs/cgroup (tests). */
static int cgroup_cpus(void)
{
    const char *root = getenv("DWELL_CGROUP_ROOT");
    if (!root || !*root) root = "/sys/fs/cgroup";
    char path[4096], line[1024];
    int limit = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "0::", 3) != 0) continue;
            line[strcspn(line, "\n")] = 0;
            if (strcmp(line + 3, "/") != 0) {
                snprintf(path, sizeof path, "%s%s/cpu.max", root, line + 3);
                limit = cgroup_cpu_limit(path);
            }
            break;
        }
        fclose(f);
    }
    if (limit == 0) {
        snprintf(path, sizeof path, "%s/cpu.max", root);
        limit = cgroup_cpu_limit(path);
    }
    return limit;
}

int kern_default_threads(void)
{
    int n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n < 1) n = 1;
    int quota = cgroup_cpus();
    if (quota > 0 && quota < n) n = quota;
    return n;
}
