/* test_detok.c — the streaming detokenizer: characters split across byte tokens come out
 * whole and never half, invalid bytes become U+FFFD instead of being held, the first token's
 * SentencePiece space is dropped, and the stream equals eng_detokenize for valid text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "test.h"

static eng_vocab *load(const char *rel)
{
    core_err err = {0};
    gguf_file *f = NULL;
    eng_vocab *v = NULL;
    if (gguf_open(&f, test_shared_path(rel), &err) == CORE_OK) eng_vocab_load(&v, f, &err);
    if (!v) printf("  %s: %s\n", rel, err.msg);
    gguf_close(f);
    return v;
}

/* True when s[0..n) is entirely valid UTF-8 (strict). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n || (c >= 0x80 && c < 0xC2) || c > 0xF4) return false;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return false;
        }
        i += k;
    }
    return true;
}

/* stories260K: <0xXX> is token 3 + XX */
#define BYTE_TOK(b) (3 + (b))

TEST(emoji_split_across_byte_tokens_comes_out_whole)
{
    eng_vocab *v = load("models/stories260K.gguf");
    if (!v) {
        CHECK(0);
        return;
    }
    const unsigned char dna[4] = {0xF0, 0x9F, 0xA7, 0xAC}; /* U+1F9EC */
    eng_detok d;
    eng_detok_init(&d, v, false);
    core_buf out;
    core_buf_init(&out);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(eng_detok_push(&d, BYTE_TOK(dna[i]), &out), CORE_OK);
        CHECK_EQ_INT(out.len, 0); /* never half a character */
    }
    CHECK_EQ_INT(eng_detok_push(&d, BYTE_TOK(dna[3]), &out), CORE_OK);
    CHECK_EQ_INT(out.len, 4);
    CHECK(out.len == 4 && memcmp(out.data, dna, 4) == 0);
    eng_detok_flush(&d, &out);
    CHECK_EQ_INT(out.len, 4);
    core_buf_deinit(&out);
    eng_vocab_free(v);
}

TEST(invalid_bytes_become_replacement_characters)
{
    eng_vocab *v = load("models/stories260K.gguf");
    if (!v) {
        CHECK(0);
        return;
    }
    eng_detok d;
    eng_detok_init(&d, v, false);
    core_buf out;
    core_buf_init(&out);
    /* a stray continuation byte: replaced at once */
    eng_detok_push(&d, BYTE_TOK(0x80), &out);
    CHECK_EQ_STR(out.data, "\xef\xbf\xbd");
    /* a lead byte followed by ASCII: the lead is replaced, the ASCII kept */
    core_buf_reset(&out);
    eng_detok_push(&d, BYTE_TOK(0xE4), &out);
    CHECK_EQ_INT(out.len, 0);
    eng_detok_push(&d, BYTE_TOK('a'), &out);
    CHECK_EQ_STR(out.data, "\xef\xbf\xbd" "a");
    /* an overlong lead (C0) and a surrogate start (ED A0) are invalid too */
    core_buf_reset(&out);
    eng_detok_push(&d, BYTE_TOK(0xC0), &out);
    eng_detok_push(&d, BYTE_TOK(0xED), &out);
    eng_detok_push(&d, BYTE_TOK(0xA0), &out);
    CHECK(valid_utf8((const unsigned char *)out.data, out.len));
    CHECK_EQ_INT(d.n_pending, 0);
    /* an incomplete character at the end is flushed as U+FFFD */
    core_buf_reset(&out);
    eng_detok_push(&d, BYTE_TOK(0xF0), &out);
    eng_detok_push(&d, BYTE_TOK(0x9F), &out);
    CHECK_EQ_INT(out.len, 0);
    eng_detok_flush(&d, &out);
    CHECK_EQ_STR(out.data, "\xef\xbf\xbd");
    CHECK_EQ_INT(d.n_pending, 0);
    core_buf_deinit(&out);
    eng_vocab_free(v);
}

TEST(first_token_loses_its_sentencepiece_space)
{
    eng_vocab *v = load("models/llama-2-tiny-random.gguf");
    if (!v) {
        CHECK(0);
        return;
    }
    int32_t hello = eng_vocab_find(v, "\xe2\x96\x81Hello");
    CHECK(hello >= 0);
    eng_detok d;
    core_buf out;
    core_buf_init(&out);
    eng_detok_init(&d, v, true);
    eng_detok_push(&d, hello, &out);
    eng_detok_push(&d, hello, &out);
    CHECK_EQ_STR(out.data, "Hello Hello");
    core_buf_reset(&out);
    eng_detok_init(&d, v, false);
    eng_detok_push(&d, hello, &out);
    CHECK_EQ_STR(out.data, " Hello");
    /* control tokens give nothing in the stream */
    core_buf_reset(&out);
    eng_detok_push(&d, eng_vocab_bos(v), &out);
    CHECK_EQ_INT(out.len, 0);
    core_buf_deinit(&out);
    eng_vocab_free(v);
}

/* Streams the tokens of text one by one, checking that every prefix is valid UTF-8, and
 * compares the whole with eng_detokenize. */
static void stream_equals_detokenize(const char *model, const char *text)
{
    eng_vocab *v = load(model);
    if (!v) {
        CHECK(0);
        return;
    }
    eng_tokens t = {0};
    CHECK_EQ_INT(eng_tokenize(v, text, strlen(text), false, false, &t, NULL), CORE_OK);
    core_buf whole, out;
    core_buf_init(&whole);
    core_buf_init(&out);
    eng_detokenize(v, t.ids, t.n, false, &whole);
    eng_detok d;
    eng_detok_init(&d, v, true);
    for (size_t i = 0; i < t.n; i++) {
        CHECK_EQ_INT(eng_detok_push(&d, t.ids[i], &out), CORE_OK);
        CHECK_MSG(valid_utf8((const unsigned char *)out.data, out.len),
                  "%s: invalid UTF-8 after token %zu", model, i);
    }
    eng_detok_flush(&d, &out);
    CHECK_MSG(out.len == whole.len && memcmp(out.data, whole.data, out.len) == 0,
              "%s: stream \"%s\" != detokenize \"%s\"", model, out.data, whole.data);
    core_buf_deinit(&whole);
    core_buf_deinit(&out);
    eng_tokens_free(&t);
    eng_vocab_free(v);
}

TEST(stream_equals_detokenize_for_valid_text)
{
    const char *text = "Hi \xf0\x9f\x91\x8b\xf0\x9f\x8f\xbd caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd "
                       "\xf0\x9d\x94\x98\xea\x99\xae 1234";
    stream_equals_detokenize("models/stories260K.gguf", text);
    stream_equals_detokenize("models/llama-2-tiny-random.gguf", text);
    stream_equals_detokenize("models/tiny-qwen2bpe-q8_0.gguf", text);
}

int main(void)
{
    RUN(emoji_split_across_byte_tokens_comes_out_whole);
    RUN(invalid_bytes_become_replacement_characters);
    RUN(first_token_loses_its_sentencepiece_space);
    RUN(stream_equals_detokenize_for_valid_text);
    return test_summary();
}
