/* debug_eval.c — `dwell debug logits` and `dwell debug generate`: run the engine directly on a
 * model file, without a server. Used by the golden tests' tooling and for the README demo.
 *
 *   dwell debug logits FILE --tokens 1,2,3 [--threads N] [--kv f32|f16] --out OUT
 *       evaluates the tokens as one batch from an empty cache and writes the last token's
 *       logits, n_vocab little-endian float32, to OUT (F32 KV cache unless --kv f16).
 *   dwell debug generate FILE (--tokens 1,2,3 | --prompt TEXT) [-n 16] [--threads N]
 *       [--kv f32|f16]
 *       greedy: the argmax of the prompt's last logits (ties to the lowest id), then each
 *       chosen token is fed alone. Prints the generated ids as one JSON array; with --prompt
 *       the text is tokenized with the model's vocabulary (BOS as the vocabulary says),
 *       generation stops at an end-of-generation token, and the generated text follows on a
 *       second line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/internal.h"
#include "engine/engine.h"

typedef struct eval_args {
    const char *file;
    const char *out;
    const char *prompt;
    eng_tokens tokens;
    int n_threads;
    int n_predict;
    int kv_type;
} eval_args;

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_tokens(const char *s, eng_tokens *t)
{
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || v < 0 || v > INT32_MAX) return -1;
        if (eng_tokens_push(t, (int32_t)v)) return -1;
        s = end;
        while (*s == ' ')
            s++;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return t->n ? 0 : -1;
}

/* Parses argv (argv[0] is the subcommand). Returns 0, or 1 after printing the error. */
static const char g_logits_usage[] =
    "Usage: dwell debug logits FILE --tokens 1,2,3 [--threads N] [--kv f32|f16] --out OUT\n"
    "\n"
    "Evaluates the tokens as one batch from an empty cache and writes the last position's\n"
    "logits to OUT as n_vocab little-endian float32 (F32 KV cache unless --kv f16).\n";

static const char g_generate_usage[] =
    "Usage: dwell debug generate FILE (--tokens 1,2,3 | --prompt TEXT) [-n 16] [--threads N]\n"
    "                            [--kv f32|f16]\n"
    "\n"
    "Greedy continuation: prints the generated ids as one JSON array. With --prompt the text\n"
    "is tokenized with the model's vocabulary, generation stops at an end-of-generation\n"
    "token, and the generated text follows on a second line.\n";

static int parse_args(int argc, char **argv, bool generate, eval_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(generate ? g_generate_usage : g_logits_usage, stdout);
            return 2;
        }
    }
    a->n_predict = 16;
    a->kv_type = ENG_KV_F32;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(arg, "--tokens") == 0 || strcmp(arg, "--threads") == 0 ||
                     strcmp(arg, "--kv") == 0 || strcmp(arg, "--out") == 0 ||
                     strcmp(arg, "-n") == 0 || strcmp(arg, "--prompt") == 0;
        if (takes && !val) {
            fprintf(stderr, "Error: %s needs a value\n", arg);
            return 1;
        }
        long v;
        if (strcmp(arg, "--tokens") == 0) {
            if (parse_tokens(val, &a->tokens)) {
                fprintf(stderr, "Error: --tokens wants comma-separated ids, got \"%s\"\n", val);
                return 1;
            }
        } else if (strcmp(arg, "--threads") == 0) {
            if (parse_int(val, 1, 1024, &v)) {
                fprintf(stderr, "Error: --threads wants 1..1024, got \"%s\"\n", val);
                return 1;
            }
            a->n_threads = (int)v;
        } else if (strcmp(arg, "--kv") == 0) {
            if (strcmp(val, "f32") == 0)
                a->kv_type = ENG_KV_F32;
            else if (strcmp(val, "f16") == 0)
                a->kv_type = ENG_KV_F16;
            else {
                fprintf(stderr, "Error: --kv wants f32 or f16, got \"%s\"\n", val);
                return 1;
            }
        } else if (strcmp(arg, "--out") == 0 && !generate) {
            a->out = val;
        } else if (strcmp(arg, "-n") == 0 && generate) {
            if (parse_int(val, 0, 1 << 20, &v)) {
                fprintf(stderr, "Error: -n wants a count, got \"%s\"\n", val);
                return 1;
            }
            a->n_predict = (int)v;
        } else if (strcmp(arg, "--prompt") == 0 && generate) {
            a->prompt = val;
        } else if (arg[0] == '-' || a->file) {
            fprintf(stderr, "Error: unexpected argument \"%s\" (see 'dwell debug --help')\n", arg);
            return 1;
        } else {
            a->file = arg;
            continue;
        }
        i++;
    }
    if (!a->file) {
        fprintf(stderr, "Error: dwell debug %s needs a model FILE\n", argv[0]);
        return 1;
    }
    if (!a->tokens.n && !a->prompt) {
        fprintf(stderr, "Error: dwell debug %s needs --tokens%s\n", argv[0],
                generate ? " or --prompt" : "");
        return 1;
    }
    if (a->tokens.n && a->prompt) {
        fprintf(stderr, "Error: give --tokens or --prompt, not both\n");
        return 1;
    }
    if (!generate && !a->out) {
        fprintf(stderr, "Error: dwell debug logits needs --out OUT\n");
        return 1;
    }
    return 0;
}

/* Opens the model and a one-sequence context for n_ctx tokens, batch n_batch. */
static int open_engine(const eval_args *a, int64_t n_ctx, int32_t n_batch, eng_model **m,
                       eng_ctx **c)
{
    core_err err;
    if (eng_model_open(m, a->file, NULL, &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    eng_ctx_params p = {
        .n_ctx = n_ctx,
        .n_seq = 1,
        .n_batch = n_batch,
        .n_threads = a->n_threads,
        .kv_type = a->kv_type,
    };
    if (eng_ctx_new(c, *m, &p, &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        eng_model_release(*m);
        return 1;
    }
    return 0;
}

/* Evaluates ids as one batch, wanting the last token's logits. */
static const float *eval_batch(eng_ctx *c, const int32_t *ids, size_t n)
{
    core_err err;
    eng_batch b = {.n = (int32_t)n, .tokens = ids, .seq = NULL, .want = NULL};
    if (eng_ctx_decode(c, &b, NULL, &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return NULL;
    }
    return eng_ctx_logits(c, (int32_t)n - 1);
}

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++) {
        if (x[i] > x[best]) best = i;
    }
    return (int32_t)best;
}

int cli_debug_logits(int argc, char **argv)
{
    eval_args a;
    int prc = parse_args(argc, argv, false, &a);
    if (prc) {
        eng_tokens_free(&a.tokens);
        return prc == 2 ? 0 : 1;
    }
    eng_model *m = NULL;
    eng_ctx *c = NULL;
    int rc = 1;
    if (a.tokens.n > INT32_MAX) goto done;
    if (open_engine(&a, (int64_t)a.tokens.n, (int32_t)a.tokens.n, &m, &c)) goto done;
    const float *logits = eval_batch(c, a.tokens.ids, a.tokens.n);
    if (!logits) goto done;
    size_t n_vocab = (size_t)eng_model_hparams(m)->n_vocab;
    core_err err;
    /* x86-64 is little-endian: the floats are written as they are in memory */
    if (core_file_write_atomic(a.out, logits, n_vocab * sizeof(float), &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        goto done;
    }
    rc = 0;
done:
    eng_ctx_free(c);
    eng_model_release(m);
    eng_tokens_free(&a.tokens);
    return rc;
}

static int print_text(const eng_vocab *v, const eng_tokens *gen)
{
    core_buf text;
    core_buf_init(&text);
    int rc = eng_detokenize(v, gen->ids, gen->n, false, &text);
    if (rc) {
        fprintf(stderr, "Error: cannot detokenize the output\n");
    } else {
        fwrite(text.data ? text.data : "", 1, text.len, stdout);
        fputc('\n', stdout);
    }
    core_buf_deinit(&text);
    return rc ? 1 : 0;
}

int cli_debug_generate(int argc, char **argv)
{
    eval_args a;
    int prc = parse_args(argc, argv, true, &a);
    if (prc) {
        eng_tokens_free(&a.tokens);
        return prc == 2 ? 0 : 1;
    }
    eng_model *m = NULL;
    eng_ctx *c = NULL;
    eng_tokens gen = {0};
    core_err err;
    int rc = 1;
    if (a.prompt) {
        if (eng_model_open(&m, a.file, NULL, &err)) {
            fprintf(stderr, "Error: %s\n", err.msg);
            goto done;
        }
        if (eng_tokenize(eng_model_vocab(m), a.prompt, strlen(a.prompt), true, false, &a.tokens,
                         &err)) {
            fprintf(stderr, "Error: %s\n", err.msg);
            goto done;
        }
        eng_model_release(m);
        m = NULL;
        if (!a.tokens.n) {
            fprintf(stderr, "Error: the prompt gives no tokens\n");
            goto done;
        }
    }
    if (a.tokens.n > INT32_MAX / 2) goto done;
    int64_t n_ctx = (int64_t)a.tokens.n + a.n_predict;
    if (open_engine(&a, n_ctx, (int32_t)a.tokens.n, &m, &c)) goto done;
    const eng_vocab *v = eng_model_vocab(m);
    int64_t n_vocab = eng_model_hparams(m)->n_vocab;
    const float *logits = eval_batch(c, a.tokens.ids, a.tokens.n);
    for (int i = 0; logits && i < a.n_predict; i++) {
        int32_t id = argmax(logits, n_vocab);
        if (a.prompt && eng_vocab_is_eog(v, id)) break;
        if (eng_tokens_push(&gen, id)) goto done;
        if (i + 1 < a.n_predict) logits = eval_batch(c, &id, 1);
    }
    if (!logits) goto done;
    fputc('[', stdout);
    for (size_t i = 0; i < gen.n; i++)
        printf("%s%d", i ? "," : "", (int)gen.ids[i]);
    fputs("]\n", stdout);
    rc = a.prompt ? print_text(v, &gen) : 0;
done:
    eng_tokens_free(&gen);
    eng_ctx_free(c);
    eng_model_release(m);
    eng_tokens_free(&a.tokens);
    return rc;
}
