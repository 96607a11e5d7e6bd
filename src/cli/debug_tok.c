/* debug_tok.c — `dwell debug tokenize`: tokenizes a text with a model file's vocabulary and
 * prints the ids as one JSON array. Only the tokenizer is read (gguf_open + eng_vocab_load);
 * the weights are never touched, so it is quick on any model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/internal.h"
#include "engine/engine.h"
#include "gguf/gguf.h"

static const char g_tok_usage[] =
    "Usage: dwell debug tokenize FILE [--bos] [--special] [--detok] (--hex HEX | [--] TEXT)\n"
    "\n"
    "Tokenizes TEXT (or the bytes given as HEX) with FILE's vocabulary and prints the token\n"
    "ids as one JSON array. Only the tokenizer is loaded, not the weights.\n"
    "\n"
    "Options:\n"
    "  --bos       add the vocabulary's special tokens (BOS/EOS as it says): add_special\n"
    "  --special   turn special-token text (\"<s>\", \"<|eot_id|>\") into those tokens:\n"
    "              parse_special\n"
    "  --detok     also print, on a second line, the detokenization of the ids as hex\n"
    "              (llama_detokenize with remove_special=false, unparse_special=--special)\n"
    "  --hex HEX   the input as hex bytes (e.g. 48656c6c6f), for exact or invalid UTF-8\n";

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex into a malloc'd buffer; NULL (with a message printed) when it is not hex. */
static char *hex_decode(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2) {
        fprintf(stderr, "Error: --hex needs an even number of hex digits\n");
        return NULL;
    }
    char *out = malloc(n / 2 + 1);
    if (!out) {
        fprintf(stderr, "Error: out of memory\n");
        return NULL;
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_val(hex[i]), lo = hex_val(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "Error: --hex: \"%c%c\" at offset %zu is not a hex byte\n", hex[i],
                    hex[i + 1], i);
            free(out);
            return NULL;
        }
        out[i / 2] = (char)(hi * 16 + lo);
    }
    *len = n / 2;
    return out;
}

typedef struct tok_args {
    const char *file, *text, *hex;
    bool bos, special, detok;
} tok_args;

static int parse_args(int argc, char **argv, tok_args *a)
{
    memset(a, 0, sizeof *a);
    bool rest = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!rest && (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)) {
            fputs(g_tok_usage, stdout);
            return 0;
        } else if (!rest && strcmp(s, "--bos") == 0) {
            a->bos = true;
        } else if (!rest && strcmp(s, "--special") == 0) {
            a->special = true;
        } else if (!rest && strcmp(s, "--detok") == 0) {
            a->detok = true;
        } else if (!rest && strcmp(s, "--hex") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "Error: --hex needs a value\n");
                return 1;
            }
            a->hex = argv[++i];
        } else if (!rest && strcmp(s, "--") == 0) {
            rest = true;
        } else if (!rest && s[0] == '-' && s[1] == '-') {
            fprintf(stderr, "Error: unknown option %s (see 'dwell debug tokenize --help')\n", s);
            return 1;
        } else if (!a->file) {
            a->file = s;
        } else if (!a->text) {
            a->text = s;
        } else {
            fprintf(stderr, "Error: more than one TEXT argument (quote the text)\n");
            return 1;
        }
    }
    if (!a->file || (!a->text && !a->hex) || (a->text && a->hex)) {
        fputs(g_tok_usage, stderr);
        return 1;
    }
    return -1;
}

static int print_result(const eng_vocab *v, const eng_tokens *t, const tok_args *a)
{
    putchar('[');
    for (size_t i = 0; i < t->n; i++) printf(i ? ", %d" : "%d", (int)t->ids[i]);
    puts("]");
    if (!a->detok) return 0;
    core_buf b;
    core_buf_init(&b);
    if (eng_detokenize(v, t->ids, t->n, a->special, &b)) {
        core_buf_deinit(&b);
        fprintf(stderr, "Error: detokenize failed\n");
        return 1;
    }
    for (size_t i = 0; i < b.len; i++) printf("%02x", (unsigned char)b.data[i]);
    putchar('\n');
    core_buf_deinit(&b);
    return 0;
}

int cli_debug_tokenize(int argc, char **argv)
{
    tok_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    size_t len = 0;
    char *owned = NULL;
    const char *text = a.text;
    if (a.hex) {
        owned = hex_decode(a.hex, &len);
        if (!owned) return 1;
        text = owned;
    } else {
        len = strlen(text);
    }
    core_err err = {0};
    gguf_file *f = NULL;
    eng_vocab *v = NULL;
    eng_tokens toks = {0};
    rc = 1;
    if (gguf_open(&f, a.file, &err) || eng_vocab_load(&v, f, &err) ||
        eng_tokenize(v, text, len, a.bos, a.special, &toks, &err)) {
        if (strstr(err.msg, a.file)) {
            fprintf(stderr, "Error: %s\n", err.msg);
        } else {
            fprintf(stderr, "Error: %s: %s\n", a.file, err.msg);
        }
    } else {
        rc = print_result(v, &toks, &a);
    }
    eng_tokens_free(&toks);
    eng_vocab_free(v);
    gguf_close(f);
    free(owned);
    return rc;
}
