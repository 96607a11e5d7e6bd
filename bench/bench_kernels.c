/* bench_kernels — GB/s of each type's dot_f32 (scalar reference vs the dispatched kernel) and,
 * for types with a quantized-activation path, of its dispatched dot_q, over
 * a weight matrix larger than the caches, kern_matmul throughput with 1 and 2 threads, and the
 * thread pool's per-run overhead. Prints the CPU model and the ISA in use.
 *
 *   bench_kernels [MiB of weights per type, default 32] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

#define ROW 4096

static uint8_t *g_work; /* quantized activations of 16 tokens */
static size_t g_work_size;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(out, cap, "%s", c + 2);
                out[strcspn(out, "\n")] = 0;
            }
            break;
        }
    }
    fclose(f);
}

/* Best of `reps` passes of dot_f32 over all rows; returns GB/s of weight bytes. */
static double bench_dot(kern_dot_f32_fn dot, const uint8_t *w, size_t rb, int64_t rows,
                        const float *x, int reps, float *sink)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        int64_t t0 = core_mono_ns();
        float s = 0;
        for (int64_t i = 0; i < rows; i++) s += dot(ROW, w + (size_t)i * rb, x);
        double dt = (double)(core_mono_ns() - t0) * 1e-9;
        *sink += s;
        if (dt < best) best = dt;
    }
    return (double)rb * (double)rows / best / 1e9;
}

/* As bench_dot for the quantized-activation kernel (activations quantized once). */
static double bench_dot_q(kern_dot_q_fn dot, const uint8_t *w, size_t rb, int64_t rows,
                          const void *a, int reps, float *sink)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        int64_t t0 = core_mono_ns();
        float s = 0;
        for (int64_t i = 0; i < rows; i++) s += dot(ROW, w + (size_t)i * rb, a);
        double dt = (double)(core_mono_ns() - t0) * 1e-9;
        *sink += s;
        if (dt < best) best = dt;
    }
    return (double)rb * (double)rows / best / 1e9;
}

static double bench_matmul(kern_pool *p, int type, const uint8_t *w, size_t rb, int64_t rows,
                           const float *x, int64_t n_tok, float *y, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        int64_t t0 = core_mono_ns();
        kern_matmul_act(p, type, w, rb, ROW, rows, x, n_tok, y, g_work, g_work_size);
        double dt = (double)(core_mono_ns() - t0) * 1e-9;
        if (dt < best) best = dt;
    }
    return best;
}

static void empty_task(void *arg, int ith, int nth)
{
    (void)arg, (void)ith, (void)nth;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 32;
    if (mib < 1 || mib > 4096) {
        fprintf(stderr, "usage: bench_kernels [MiB of weights per type, 1..4096]\n");
        return 2;
    }
    kern_init();
    char model[256];
    cpu_model(model, sizeof model);
    printf("cpu: %s\nisa: %s\ndefault threads: %d\nweights per type: %zu MiB, row %d\n\n",
           model, kern_isa(), kern_default_threads(), mib, ROW);

    static const int types[] = {CORE_TYPE_F32,  CORE_TYPE_F16,  CORE_TYPE_BF16, CORE_TYPE_Q8_0,
                                CORE_TYPE_Q4_0, CORE_TYPE_Q4_1, CORE_TYPE_Q5_0, CORE_TYPE_Q5_1,
                                CORE_TYPE_Q4_K, CORE_TYPE_Q5_K, CORE_TYPE_Q6_K};
    float *x = malloc(sizeof(float) * ROW * 16), *src = malloc(sizeof(float) * ROW);
    float *y = malloc(sizeof(float) * 16 * (mib << 20) / 256);
    uint8_t *w = malloc(mib << 20);
    g_work_size = kern_matmul_work_size(ROW, 16);
    g_work = malloc(g_work_size);
    kern_pool *p2 = NULL;
    core_err err;
    if (!x || !src || !y || !w || !g_work || kern_pool_new(&p2, 2, &err) != CORE_OK) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        return 1;
    }
    for (int i = 0; i < ROW * 16; i++) x[i] = frand();
    float sink = 0;
    printf("%-5s %9s %9s %7s %9s | matmul GB/s: %7s %7s %9s %9s\n", "type", "ref GB/s",
           "simd GB/s", "ratio", "q GB/s", "1t tok1", "2t tok1", "1t tok16", "2t tok16");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const kern_traits *t = kern_traits_get(types[ti]), *r = kern_traits_ref(types[ti]);
        size_t rb = (size_t)(ROW / t->blck_size) * t->type_size;
        int64_t rows = (int64_t)((mib << 20) / rb);
        for (int64_t i = 0; i < rows; i++) {
            for (int k = 0; k < ROW; k++) src[k] = frand();
            r->from_float(src, w + (size_t)i * rb, ROW);
        }
        double g_ref = bench_dot(r->dot_f32, w, rb, rows, x, 2, &sink);
        double g_fast = bench_dot(t->dot_f32, w, rb, rows, x, 3, &sink);
        double g_q = 0;
        if (t->dot_q) {
            t->quantize_act(x, g_work, ROW);
            g_q = bench_dot_q(t->dot_q, w, rb, rows, g_work, 3, &sink);
        }
        double bytes = (double)rb * (double)rows;
        double m11 = bytes / bench_matmul(NULL, types[ti], w, rb, rows, x, 1, y, 3) / 1e9;
        double m21 = bytes / bench_matmul(p2, types[ti], w, rb, rows, x, 1, y, 3) / 1e9;
        double m116 = bytes / bench_matmul(NULL, types[ti], w, rb, rows, x, 16, y, 2) / 1e9;
        double m216 = bytes / bench_matmul(p2, types[ti], w, rb, rows, x, 16, y, 2) / 1e9;
        printf("%-5s %9.2f %9.2f %6.1fx %9.2f | %19.2f %7.2f %9.2f %9.2f\n", t->name, g_ref,
               g_fast, g_fast / g_ref, g_q, m11, m21, m116, m216);
        fflush(stdout);
    }
    /* pool overhead: back-to-back empty runs */
    int64_t t0 = core_mono_ns();
    enum { RUNS = 20000 };
    for (int i = 0; i < RUNS; i++) kern_pool_run(p2, empty_task, NULL);
    printf("\npool (2 threads): %.2f us per empty run\n",
           (double)(core_mono_ns() - t0) / RUNS / 1000.0);
    printf("(checksum %g)\n", (double)sink);
    kern_pool_free(p2);
    free(x), free(src), free(y), free(w), free(g_work);
    return 0;
}
