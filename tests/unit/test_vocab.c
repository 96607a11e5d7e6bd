/* test_vocab.c — loading vocabularies (validation, defaults, special and end-of-generation
 * tokens) and tokenizing with small vocabularies written here with the GGUF writer: a
 * byte-level BPE vocabulary like the one `dwell debug mkmodel` builds in, and a small
 * SentencePiece one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "test.h"

/* ---- building vocabularies ---- */

static char g_path[64];

/* The UTF-8 of GPT-2's codepoint for byte b (bytes_to_unicode), computed independently of
 * the engine: printable bytes stand for themselves, the rest count up from U+0100. */
static void gpt2_byte_text(unsigned b, char *out)
{
    unsigned cp = b;
    bool direct = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!direct) {
        unsigned n = 0;
        for (unsigned x = 0; x < b; x++) {
            n += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE);
        }
        cp = 0x100 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* Merge results get ids 256.. in rank order: he=256 ll=257 hell=258 hello=259 Ġw=260
 * Ġwo=261 12=262 34=263 123=264; then <|endoftext|>=265 <|im_start|>=266 <|im_end|>=267. */
enum { BPE_N_MERGES = 9, BPE_N = 256 + BPE_N_MERGES + 3 };
static const char *const g_merges[BPE_N_MERGES] = {"h e", "l l", "he ll", "hell o", "Ġ w",
                                                   "Ġw o", "1 2", "3 4", "12 3"};
static const char *const g_merged[BPE_N_MERGES] = {"he", "ll", "hell", "hello", "Ġw", "Ġwo",
                                                   "12", "34", "123"};

typedef struct vopts {
    const char *model, *pre;
    int n_types;      /* token_type length; -1 = the token count */
    int64_t bos, eos; /* -1 = key absent */
    int add_bos;      /* -1 = key absent */
} vopts;

static vopts bpe_opts(void) { return (vopts){"gpt2", "default", -1, -1, -1, -1}; }

/* Writes a byte-level BPE vocabulary: 256 byte tokens, the merges above, then
 * <|endoftext|> <|im_start|> <|im_end|> as control tokens. */
static int write_bpe(const vopts *o)
{
    static char texts[BPE_N][16];
    const char *toks[BPE_N];
    int32_t types[BPE_N];
    for (int i = 0; i < 256; i++) gpt2_byte_text((unsigned)i, texts[i]);
    for (int i = 0; i < BPE_N_MERGES; i++) snprintf(texts[256 + i], 16, "%s", g_merged[i]);
    snprintf(texts[BPE_N - 3], 16, "<|endoftext|>");
    snprintf(texts[BPE_N - 2], 16, "<|im_start|>");
    snprintf(texts[BPE_N - 1], 16, "<|im_end|>");
    for (int i = 0; i < BPE_N; i++) {
        toks[i] = texts[i];
        types[i] = i >= BPE_N - 3 ? ENG_TOK_CONTROL : ENG_TOK_NORMAL;
    }
    gguf_writer *w = NULL;
    core_err err;
    if (gguf_writer_new(&w, &err)) return -1;
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.model", o->model);
    if (o->pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", o->pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, BPE_N);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types,
                        o->n_types < 0 ? BPE_N : (size_t)o->n_types);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", g_merges, BPE_N_MERGES);
    if (o->bos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)o->bos);
    if (o->eos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)o->eos);
    if (o->add_bos >= 0) gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", o->add_bos);
    int rc = gguf_writer_write(w, g_path, &err);
    if (rc) printf("  write: %s\n", err.msg);
    gguf_writer_free(w);
    return rc;
}

/* Loads g_path; returns the vocab or NULL with the error in *err. */
static eng_vocab *load(core_err *err)
{
    gguf_file *f = NULL;
    eng_vocab *v = NULL;
    if (gguf_open(&f, g_path, err) == CORE_OK) eng_vocab_load(&v, f, err);
    gguf_close(f); /* the vocab keeps its own copies */
    return v;
}

static eng_vocab *load_bpe(const vopts *o)
{
    core_err err = {0};
    if (write_bpe(o)) return NULL;
    eng_vocab *v = load(&err);
    if (!v) printf("  load: %s\n", err.msg);
    return v;
}

/* Tokenizes s into a "1 2 3" string for easy comparison. */
static const char *tok_str(const eng_vocab *v, const char *s, bool add, bool special)
{
    static char buf[1024];
    eng_tokens t = {0};
    core_err err = {0};
    buf[0] = 0;
    if (eng_tokenize(v, s, strlen(s), add, special, &t, &err)) {
        snprintf(buf, sizeof buf, "error: %s", err.msg);
    }
    size_t o = 0;
    for (size_t i = 0; i < t.n && o < sizeof buf - 16; i++) {
        o += (size_t)snprintf(buf + o, sizeof buf - o, i ? " %d" : "%d", t.ids[i]);
    }
    eng_tokens_free(&t);
    return buf;
}

/* ---- tests ---- */

TEST(bpe_builtin_vocab_merges_by_rank)
{
    vopts o = bpe_opts();
    eng_vocab *v = load_bpe(&o);
    CHECK(v != NULL);
    if (!v) return;
    CHECK_EQ_INT(eng_vocab_type(v), ENG_VOCAB_BPE);
    CHECK_EQ_INT(eng_vocab_n(v), BPE_N);
    /* "hello" -> he, ll, hell, hello; " world" -> Ġw, Ġwo, then r l d as bytes */
    CHECK_EQ_STR(tok_str(v, "hello world", false, false), "259 261 114 108 100");
    /* bytes without merges are their byte tokens (byte values as ids here); invalid UTF-8
     * comes in as U+FFFD, as in llama.cpp */
    CHECK_EQ_STR(tok_str(v, "\x01\xc3\xbf", false, false), "1 195 191");
    CHECK_EQ_STR(tok_str(v, "\x01\xff", false, false), "1 239 191 189");
    eng_vocab_free(v);
}

TEST(bpe_special_text_needs_parse_special)
{
    vopts o = bpe_opts();
    eng_vocab *v = load_bpe(&o);
    if (!v) {
        CHECK(0);
        return;
    }
    int32_t im_start = eng_vocab_find(v, "<|im_start|>");
    CHECK_EQ_INT(im_start, BPE_N - 2);
    char want[64];
    snprintf(want, sizeof want, "%d 259", im_start);
    CHECK_EQ_STR(tok_str(v, "<|im_start|>hello", false, true), want);
    /* without parse_special the text is ordinary text: many tokens, none of them special */
    const char *plain = tok_str(v, "<|im_start|>", false, false);
    CHECK(strstr(plain, "266") == NULL && strlen(plain) > 8);
    eng_vocab_free(v);
}

TEST(bpe_eog_tokens_are_marked_by_text)
{
    vopts o = bpe_opts();
    eng_vocab *v = load_bpe(&o);
    if (!v) {
        CHECK(0);
        return;
    }
    CHECK(eng_vocab_is_eog(v, eng_vocab_find(v, "<|endoftext|>")));
    CHECK(eng_vocab_is_eog(v, eng_vocab_find(v, "<|im_end|>")));
    CHECK(!eng_vocab_is_eog(v, eng_vocab_find(v, "<|im_start|>")));
    CHECK(!eng_vocab_is_eog(v, 'a'));
    CHECK(!eng_vocab_is_eog(v, -1));
    CHECK(!eng_vocab_is_eog(v, BPE_N));
    /* no bos key: none, and nothing is added */
    CHECK_EQ_INT(eng_vocab_bos(v), -1);
    CHECK_EQ_STR(tok_str(v, "hello", true, false), "259");
    eng_vocab_free(v);
}

TEST(bpe_detokenize_round_trips_bytes)
{
    vopts o = bpe_opts();
    eng_vocab *v = load_bpe(&o);
    if (!v) {
        CHECK(0);
        return;
    }
    const char text[] = "hello world\n\t\x01\xc3\xa9\xff end ";
    eng_tokens t = {0};
    CHECK_EQ_INT(eng_tokenize(v, text, sizeof text - 1, false, false, &t, NULL), CORE_OK);
    core_buf b;
    core_buf_init(&b);
    /* "default" pre cleans spaces, so leave punctuation out of the text */
    CHECK_EQ_INT(eng_detokenize(v, t.ids, t.n, false, &b), CORE_OK);
    CHECK_EQ_INT(b.len, sizeof text - 1 + 2); /* \xff is invalid UTF-8: it came in as U+FFFD */
    CHECK(memcmp(b.data, text, 16) == 0);
    core_buf_reset(&b);
    int32_t ctl = eng_vocab_find(v, "<|im_end|>");
    CHECK_EQ_INT(eng_token_to_piece(v, ctl, false, &b), CORE_OK);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(eng_token_to_piece(v, ctl, true, &b), CORE_OK);
    CHECK_EQ_STR(b.data, "<|im_end|>");
    core_buf_deinit(&b);
    eng_tokens_free(&t);
    eng_vocab_free(v);
}

TEST(bpe_pre_types_split_numbers_differently)
{
    /* gpt2 keeps "1234" whole (12, then 34 outranks 123); llama-bpe and "default" cut it
     * into 123|4; qwen2 into single digits (byte tokens '1' = 49 ...) */
    const char *pres[] = {"gpt2", "llama-bpe", "default", "qwen2"};
    const char *want[] = {"262 263", "264 52", "264 52", "49 50 51 52"};
    for (int i = 0; i < 4; i++) {
        vopts o = bpe_opts();
        o.pre = pres[i];
        eng_vocab *v = load_bpe(&o);
        CHECK_MSG(v != NULL, "pre %s", pres[i]);
        if (!v) continue;
        CHECK_EQ_STR(tok_str(v, "1234", false, false), want[i]);
        eng_vocab_free(v);
    }
}

TEST(vocab_rejects_unknown_model_and_pre)
{
    core_err err = {0};
    vopts o = bpe_opts();
    o.model = "bert";
    CHECK_EQ_INT(write_bpe(&o), 0);
    CHECK(load(&err) == NULL);
    CHECK_EQ_INT(err.code, CORE_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "bert");
    o = bpe_opts();
    o.pre = "klingon";
    CHECK_EQ_INT(write_bpe(&o), 0);
    CHECK(load(&err) == NULL);
    CHECK_EQ_INT(err.code, CORE_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "klingon");
}

TEST(vocab_rejects_bad_lengths_and_ids)
{
    core_err err = {0};
    vopts o = bpe_opts();
    o.n_types = 10;
    CHECK_EQ_INT(write_bpe(&o), 0);
    CHECK(load(&err) == NULL);
    CHECK_EQ_INT(err.code, CORE_FORMAT);
    CHECK_CONTAINS(err.msg, "tokenizer.ggml.token_type");
    o = bpe_opts();
    o.eos = 100000;
    CHECK_EQ_INT(write_bpe(&o), 0);
    CHECK(load(&err) == NULL);
    CHECK_EQ_INT(err.code, CORE_FORMAT);
    CHECK_CONTAINS(err.msg, "tokenizer.ggml.eos_token_id");
}

TEST(vocab_llama_bpe_adds_bos_by_default)
{
    vopts o = bpe_opts();
    o.pre = "llama-bpe";
    o.bos = BPE_N - 3;
    eng_vocab *v = load_bpe(&o);
    if (!v) {
        CHECK(0);
        return;
    }
    CHECK(eng_vocab_add_bos(v));
    char want[32];
    snprintf(want, sizeof want, "%d 259", BPE_N - 3);
    CHECK_EQ_STR(tok_str(v, "hello", true, false), want);
    eng_vocab_free(v);
    o.pre = "qwen2";
    v = load_bpe(&o);
    if (!v) {
        CHECK(0);
        return;
    }
    CHECK(!eng_vocab_add_bos(v));
    CHECK_EQ_STR(tok_str(v, "hello", true, false), "259");
    eng_vocab_free(v);
    o.add_bos = 1;
    v = load_bpe(&o);
    CHECK(v && eng_vocab_add_bos(v));
    eng_vocab_free(v);
}

TEST(spm_shared_vocab_has_llama_defaults)
{
    core_err err = {0};
    gguf_file *f = NULL;
    eng_vocab *v = NULL;
    CHECK_EQ_INT(gguf_open(&f, test_shared_path("models/stories260K.gguf"), &err), CORE_OK);
    CHECK_EQ_INT(eng_vocab_load(&v, f, &err), CORE_OK);
    gguf_close(f);
    if (!v) return;
    CHECK_EQ_INT(eng_vocab_type(v), ENG_VOCAB_SPM);
    CHECK_EQ_INT(eng_vocab_bos(v), 1);
    CHECK_EQ_INT(eng_vocab_eos(v), 2);
    CHECK(eng_vocab_add_bos(v));
    CHECK(!eng_vocab_add_eos(v));
    CHECK(eng_vocab_is_eog(v, 2));
    CHECK_EQ_INT(eng_vocab_attr(v, 1), ENG_TOK_CONTROL);
    CHECK_EQ_INT(eng_vocab_attr(v, 3), ENG_TOK_BYTE);
    CHECK_EQ_STR(eng_vocab_text(v, 3), "<0x00>");
    CHECK(eng_vocab_text(v, 512) == NULL);
    /* a byte token's piece is the byte; "<s>" text becomes BOS only with parse_special */
    core_buf b;
    core_buf_init(&b);
    CHECK_EQ_INT(eng_token_to_piece(v, 3 + 0x41, false, &b), CORE_OK);
    CHECK_EQ_STR(b.data, "A");
    core_buf_deinit(&b);
    CHECK_EQ_STR(tok_str(v, "<s>", false, true), "1");
    CHECK(strcmp(tok_str(v, "<s>", false, false), "1") != 0);
    eng_vocab_free(v);
}

/* Random bytes (invalid UTF-8, NULs, special-token fragments) tokenize without error and,
 * for the byte-level vocabulary, detokenize to valid output of the right size. */
TEST(random_bytes_tokenize_and_detokenize)
{
    vopts o = bpe_opts();
    eng_vocab *bpe = load_bpe(&o);
    core_err err = {0};
    gguf_file *f = NULL;
    eng_vocab *spm = NULL;
    if (gguf_open(&f, test_shared_path("models/stories260K.gguf"), &err) == CORE_OK) {
        eng_vocab_load(&spm, f, &err);
    }
    gguf_close(f);
    CHECK(bpe && spm);
    if (!bpe || !spm) {
        eng_vocab_free(bpe);
        eng_vocab_free(spm);
        return;
    }
    static const char *const pieces[] = {"<|im_end|>", "<s>", "</s>", " ", "\n", "'s", "12",
                                         "\xf0\x9f", "\xe2\x96\x81", "<|", "a"};
    uint64_t seed = 12345;
    char text[256];
    core_buf b;
    core_buf_init(&b);
    for (int it = 0; it < 400; it++) {
        size_t len = 0;
        while (len < 200) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(seed >> 33);
            if (r % 4 == 0) {
                const char *p = pieces[(r >> 3) % (sizeof pieces / sizeof *pieces)];
                size_t pl = strlen(p);
                memcpy(text + len, p, pl);
                len += pl;
            } else {
                text[len++] = (char)(r >> 8);
            }
            if ((r >> 20) % 16 == 0) break;
        }
        for (int mode = 0; mode < 4; mode++) {
            eng_vocab *vs[2] = {bpe, spm};
            for (int k = 0; k < 2; k++) {
                eng_tokens t = {0};
                int rc = eng_tokenize(vs[k], text, len, mode & 1, mode >= 2, &t, &err);
                CHECK_MSG(rc == CORE_OK, "iteration %d: %s", it, err.msg);
                for (size_t i = 0; i < t.n; i++) CHECK(t.ids[i] >= 0 && t.ids[i] < eng_vocab_n(vs[k]));
                core_buf_reset(&b);
                CHECK_EQ_INT(eng_detokenize(vs[k], t.ids, t.n, true, &b), CORE_OK);
                eng_tokens_free(&t);
            }
        }
    }
    core_buf_deinit(&b);
    eng_vocab_free(bpe);
    eng_vocab_free(spm);
}

int main(void)
{
    snprintf(g_path, sizeof g_path, "/tmp/dwell-test-vocab-%ld.gguf", (long)getpid());
    RUN(bpe_builtin_vocab_merges_by_rank);
    RUN(bpe_special_text_needs_parse_special);
    RUN(bpe_eog_tokens_are_marked_by_text);
    RUN(bpe_detokenize_round_trips_bytes);
    RUN(bpe_pre_types_split_numbers_differently);
    RUN(vocab_rejects_unknown_model_and_pre);
    RUN(vocab_rejects_bad_lengths_and_ids);
    RUN(vocab_llama_bpe_adds_bos_by_default);
    RUN(spm_shared_vocab_has_llama_defaults);
    RUN(random_bytes_tokenize_and_detokenize);
    unlink(g_path);
    return test_summary();
}
