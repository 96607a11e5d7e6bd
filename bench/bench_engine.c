/* bench_engine.c — prefill and decode throughput of the engine.
 *
 *   bench_engine [MODEL.gguf] [--threads N] [--prompt N] [--gen N] [--kv f16|f32]
 *
 * Without MODEL it writes a synthetic llama model (eng_mkmodel: dim 1024, 8 layers, 16/4
 * heads, ffn 2816, Q8_0) to a temporary file first; for the reference figures use the 1.1B
 * models of ../shared/ANCHORS.md (`dwell debug mkmodel` or mkgguf.py). Reports the CPU, the
 * kernel ISA, the thread count, load time, prefill tok/s (the prompt as one batch) and decode
 * tok/s (greedy, one token at a time). Never part of the test run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "kernels/kernels.h"

static void cpu_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            if (c) {
                snprintf(buf, cap, "%s", c + 2);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++) {
        if (x[i] > x[best]) best = i;
    }
    return (int32_t)best;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int threads = 0, n_prompt = 128, n_gen = 32, kv = ENG_KV_F16;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--prompt") == 0 && i + 1 < argc)
            n_prompt = atoi(argv[++i]);
        else if (strcmp(argv[i], "--gen") == 0 && i + 1 < argc)
            n_gen = atoi(argv[++i]);
        else if (strcmp(argv[i], "--kv") == 0 && i + 1 < argc)
            kv = strcmp(argv[++i], "f32") == 0 ? ENG_KV_F32 : ENG_KV_F16;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr,
                    "usage: %s [MODEL.gguf] [--threads N] [--prompt N] [--gen N] "
                    "[--kv f16|f32]\n",
                    argv[0]);
            return 1;
        }
    }
    if (n_prompt < 1 || n_gen < 0 || threads < 0) {
        fprintf(stderr, "bad counts\n");
        return 1;
    }
    core_err err;
    char tmp[] = "/tmp/dwell-bench-XXXXXX";
    char made[64] = "";
    if (!path) {
        if (!mkdtemp(tmp)) return 1;
        snprintf(made, sizeof made, "%s/bench.gguf", tmp);
        eng_mkmodel_params mp;
        eng_mkmodel_params_default(&mp);
        mp.n_embd = 1024;
        mp.n_layer = 8;
        mp.n_head = 16;
        mp.n_head_kv = 4;
        mp.n_ff = 2816;
        mp.name = "bench";
        if (eng_mkmodel(made, &mp, &err)) {
            fprintf(stderr, "mkmodel: %s\n", err.msg);
            return 1;
        }
        path = made;
    }
    kern_init();
    int64_t t0 = core_mono_ns();
    eng_model *m = NULL;
    eng_model_params mpar = {.populate = true};
    if (eng_model_open(&m, path, &mpar, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double load_s = (double)(core_mono_ns() - t0) / 1e9;
    const eng_hparams *h = eng_model_hparams(m);
    eng_ctx_params cp = {.n_ctx = n_prompt + n_gen + 1,
                         .n_seq = 1,
                         .n_batch = n_prompt,
                         .n_threads = threads,
                         .kv_type = kv};
    eng_ctx *c = NULL;
    int32_t *toks = malloc((size_t)n_prompt * sizeof *toks);
    if (!toks || eng_ctx_new(&c, m, &cp, &err)) {
        fprintf(stderr, "context: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n_prompt; i++)
        toks[i] = (int32_t)((i * 7919 + 13) % h->n_vocab);
    eng_batch b = {.n = n_prompt, .tokens = toks};
    t0 = core_mono_ns();
    if (eng_ctx_decode(c, &b, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double prefill_s = (double)(core_mono_ns() - t0) / 1e9;
    int32_t id = argmax(eng_ctx_logits(c, n_prompt - 1), h->n_vocab);
    t0 = core_mono_ns();
    for (int i = 0; i < n_gen; i++) {
        eng_batch one = {.n = 1, .tokens = &id};
        if (eng_ctx_decode(c, &one, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        id = argmax(eng_ctx_logits(c, 0), h->n_vocab);
    }
    double decode_s = (double)(core_mono_ns() - t0) / 1e9;
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    char ps[32];
    eng_param_size_str(h->n_params, ps, sizeof ps);
    printf("cpu: %s\nisa: %s\nthreads: %d\n", cpu, kern_isa(),
           threads ? threads : kern_default_threads());
    printf("model: %s (%s params, %s, %.1f MB of weights)\n", path, ps,
           eng_file_type_name(h->file_type), (double)h->weight_bytes / 1e6);
    printf("load (populate): %.3f s\n", load_s);
    printf("prefill: %d tokens in %.3f s = %.1f tok/s\n", n_prompt, prefill_s,
           n_prompt / prefill_s);
    if (n_gen > 0) {
        printf("decode: %d tokens in %.3f s = %.1f tok/s (%.1f GB/s of weights)\n", n_gen, decode_s,
               n_gen / decode_s, (double)h->weight_bytes * n_gen / decode_s / 1e9);
    }
    printf("context: %.1f MB\n", (double)eng_ctx_bytes(c) / 1e6);
    eng_ctx_free(c);
    eng_model_release(m);
    free(toks);
    if (made[0]) {
        unlink(made);
        rmdir(tmp);
    }
    return 0;
}
