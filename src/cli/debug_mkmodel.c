/* debug_mkmodel.c — `dwell debug mkmodel OUT.gguf [OPTIONS]`: writes a llama- or
 * qwen2-shaped model with random weights through eng_mkmodel (engine/mkmodel.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/internal.h"
#include "engine/engine.h"

static const char g_usage[] =
    "Usage: dwell debug mkmodel OUT.gguf [OPTIONS]\n"
    "\n"
    "Writes a model with random weights (deterministic from --seed) and, unless --vocab-from\n"
    "is given, a small built-in byte-level BPE vocabulary with a ChatML chat template.\n"
    "\n"
    "Options:\n"
    "  --arch llama|qwen2   architecture (default llama; qwen2 adds q/k/v biases)\n"
    "  --dim N              embedding length (default 256)\n"
    "  --layers N           number of blocks (default 2)\n"
    "  --heads N            attention heads (default 4)\n"
    "  --kv-heads N         key/value heads (default 2 if it divides --heads, else --heads)\n"
    "  --ffn N              feed-forward length (default 768)\n"
    "  --ctx N              context length (default 2048)\n"
    "  --type T             weight type: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K\n"
    "                       Q6_K (default Q8_0)\n"
    "  --embd-type T        type of token_embd.weight (default: --type)\n"
    "  --untied             write a separate output.weight (default: tied to token_embd)\n"
    "  --vocab-from FILE    copy the tokenizer.* keys (vocabulary, merges, template) of FILE\n"
    "  --seed N             random seed (default 1)\n"
    "  --name NAME          general.name\n";

static const char *const g_types[] = {"F32",  "F16",  "BF16", "Q8_0", "Q4_0", "Q4_1",
                                      "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"};

static int parse_type(const char *opt, const char *s, int *out)
{
    for (size_t i = 0; i < sizeof g_types / sizeof g_types[0]; i++) {
        if (strcasecmp(s, g_types[i]) == 0) {
            *out = core_type_by_name(g_types[i])->type;
            return 0;
        }
    }
    fprintf(stderr,
            "Error: %s %s: unknown type (one of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 "
            "Q5_1 Q4_K Q5_K Q6_K)\n",
            opt, s);
    return 1;
}

static int parse_int(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "Error: %s %s: expected an integer from %" PRId64 " to %" PRId64 "\n", opt,
                s, min, max);
        return 1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "Error: %s %s: expected a non-negative integer\n", opt, s);
        return 1;
    }
    *out = v;
    return 0;
}

/* Parses the options into p; returns -1 to continue, else an exit code. */
static int parse_args(int argc, char **argv, eng_mkmodel_params *p, const char **out_path)
{
    bool kv_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(g_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--untied") == 0) {
            p->tied = false;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (*out_path) {
                fprintf(stderr, "Error: more than one output file (%s, %s)\n", *out_path, a);
                return 1;
            }
            *out_path = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "Error: %s needs a value (see 'dwell debug mkmodel --help')\n", a);
            return 1;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "--arch") == 0)
            p->arch = v;
        else if (strcmp(a, "--dim") == 0)
            bad = parse_int(a, v, 1, 1 << 20, &p->n_embd);
        else if (strcmp(a, "--layers") == 0)
            bad = parse_int(a, v, 1, 1024, &p->n_layer);
        else if (strcmp(a, "--heads") == 0)
            bad = parse_int(a, v, 1, 1 << 20, &p->n_head);
        else if (strcmp(a, "--kv-heads") == 0) {
            bad = parse_int(a, v, 1, 1 << 20, &p->n_head_kv);
            kv_given = true;
        } else if (strcmp(a, "--ffn") == 0)
            bad = parse_int(a, v, 1, 1 << 20, &p->n_ff);
        else if (strcmp(a, "--ctx") == 0)
            bad = parse_int(a, v, 1, 1 << 24, &p->n_ctx);
        else if (strcmp(a, "--type") == 0)
            bad = parse_type(a, v, &p->type);
        else if (strcmp(a, "--embd-type") == 0)
            bad = parse_type(a, v, &p->embd_type);
        else if (strcmp(a, "--vocab-from") == 0)
            p->vocab_from = v;
        else if (strcmp(a, "--seed") == 0)
            bad = parse_u64(a, v, &p->seed);
        else if (strcmp(a, "--name") == 0)
            p->name = v;
        else {
            fprintf(stderr, "Error: unknown option %s (see 'dwell debug mkmodel --help')\n", a);
            return 1;
        }
        if (bad) return 1;
    }
    if (!*out_path) {
        fputs(g_usage, stderr);
        return 1;
    }
    if (!kv_given && p->n_head % p->n_head_kv != 0) p->n_head_kv = p->n_head;
    return -1;
}

int cli_debug_mkmodel(int argc, char **argv)
{
    eng_mkmodel_params p;
    eng_mkmodel_params_default(&p);
    const char *path = NULL;
    int rc = parse_args(argc, argv, &p, &path);
    if (rc >= 0) return rc;
    core_err err;
    if (eng_mkmodel(path, &p, &err) != CORE_OK) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    struct stat st;
    long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    printf("wrote %s: %s, %" PRId64 " layers, dim %" PRId64 ", heads %" PRId64 "/%" PRId64
           ", ffn %" PRId64 ", %s, %lld bytes\n",
           path, p.arch, p.n_layer, p.n_embd, p.n_head, p.n_head_kv, p.n_ff,
           core_type_get(p.type)->name, size);
    return 0;
}
