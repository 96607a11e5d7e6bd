/* detok.c — from token ids back to text: one token's bytes (llama.cpp's token_to_piece), a
 * whole sequence (llama_detokenize with remove_special=false) and the streaming detokenizer
 * that hands out only whole UTF-8 characters.
 *
 * An eng_detok belongs to one thread (a slot); the vocab it reads is immutable.
 * ref: llama.cpp src/llama-vocab.cpp (token_to_piece, detokenize). */
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"

/* Appends token id's piece, skipping up to `lstrip` leading spaces. */
static int piece(const eng_vocab *v, int32_t id, bool special, int lstrip, core_buf *out)
{
    if (id < 0 || id >= v->n) return CORE_INVALID;
    int attr = v->attr[id];
    const char *t = eng_vocab_tok(v, id);
    size_t n = v->len[id];
    bool special_attr = attr == ENG_TOK_CONTROL || attr == ENG_TOK_UNKNOWN;
    if (special_attr && !special) return CORE_OK;
    char tmp[4];
    if (special_attr || attr == ENG_TOK_USER_DEFINED) {
        /* the stored text as it is */
    } else if (v->type == ENG_VOCAB_SPM && attr == ENG_TOK_BYTE) {
        /* "<0xXX>" */
        unsigned b = 0;
        for (size_t i = 3; i < 5 && n == 6; i++) {
            char c = t[i];
            b = b * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        tmp[0] = (char)b;
        t = tmp;
        n = n == 6 ? 1 : 0;
    } else if (attr == ENG_TOK_NORMAL && v->type == ENG_VOCAB_SPM) {
        /* ▁ -> space, as llama_unescape_whitespace */
        if (core_buf_reserve(out, n)) return CORE_NOMEM;
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(t + i, "\xe2\x96\x81", 3) == 0) {
                if (lstrip > 0) {
                    lstrip--;
                } else {
                    out->data[out->len++] = ' ';
                }
                i += 3;
            } else {
                lstrip = 0;
                out->data[out->len++] = t[i++];
            }
        }
        out->data[out->len] = 0;
        return CORE_OK;
    } else if (attr == ENG_TOK_NORMAL && v->type == ENG_VOCAB_BPE) {
        /* GPT-2 codepoints -> bytes (llama_decode_text); a codepoint outside the mapping
         * is kept as its UTF-8 */
        if (core_buf_reserve(out, n)) return CORE_NOMEM;
        for (size_t off = 0; off < n;) {
            size_t o0 = off;
            uint32_t cp = eng_utf8_decode(t, n, &off);
            int b = eng_cp_to_byte(cp);
            if (b >= 0) {
                if (b == ' ' && lstrip > 0) {
                    lstrip--;
                    continue;
                }
                lstrip = 0;
                out->data[out->len++] = (char)b;
            } else {
                lstrip = 0;
                memcpy(out->data + out->len, t + o0, off - o0);
                out->len += off - o0;
            }
        }
        out->data[out->len] = 0;
        return CORE_OK;
    } else {
        return CORE_OK; /* unused / undefined tokens, and BPE byte tokens: nothing */
    }
    while (lstrip > 0 && n > 0 && *t == ' ') {
        t++;
        n--;
        lstrip--;
    }
    return core_buf_append(out, t, n);
}

int eng_token_to_piece(const eng_vocab *v, int32_t id, bool unparse_special, core_buf *out)
{
    return piece(v, id, unparse_special, 0, out);
}

/* llama.cpp's clean_spaces passes: " ?" " !" " ." " ," lose the space, as do " 's" " 'm"
 * " 're" " 've". */
static void clean_spaces(char *s, size_t *len)
{
    size_t n = *len, o = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) o--;
        s[o++] = x;
    }
    n = o;
    o = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm') {
                o--;
            } else if (i + 2 < n) {
                char x2 = s[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) o--;
            }
        }
        s[o++] = x;
    }
    *len = o;
}

int eng_detokenize(const eng_vocab *v, const int32_t *ids, size_t n, bool unparse_special,
                   core_buf *out)
{
    size_t start = out->len;
    int lstrip = v->add_space_prefix ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        int rc = piece(v, ids[i], unparse_special, lstrip, out);
        if (rc) {
            out->len = start;
            if (out->data) out->data[start] = 0;
            return rc;
        }
        lstrip = 0;
    }
    if (v->clean_spaces && out->len > start) {
        size_t len = out->len - start;
        clean_spaces(out->data + start, &len);
        out->len = start + len;
        out->data[out->len] = 0;
    }
    return CORE_OK;
}

// ---- streaming ----

void eng_detok_init(eng_detok *d, const eng_vocab *v, bool first_token)
{
    memset(d, 0, sizeof *d);
    d->v = v;
    d->first = first_token;
}

static int emit_replacement(core_buf *out)
{
    return core_buf_append(out, "\xef\xbf\xbd", 3);
}

/* Moves the whole characters of pending+bytes to out; keeps an incomplete tail pending. */
static int detok_feed(eng_detok *d, const char *bytes, size_t n, core_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        d->pending[d->n_pending++] = bytes[i];
        for (;;) {
            int c = eng_utf8_check((const unsigned char *)d->pending, d->n_pending);
            if (c == 0) break; /* incomplete: wait for more */
            size_t used = c > 0 ? (size_t)c : 1;
            if (c > 0 ? core_buf_append(out, d->pending, used) : emit_replacement(out)) {
                return CORE_NOMEM;
            }
            /* an invalid start drops one byte and the rest is looked at again */
            memmove(d->pending, d->pending + used, d->n_pending - used);
            d->n_pending -= used;
            if (d->n_pending == 0) break;
        }
    }
    return CORE_OK;
}

int eng_detok_push(eng_detok *d, int32_t id, core_buf *out)
{
    /* The piece is appended to out, then taken back into a stack buffer and fed through the
     * UTF-8 check together with what was pending. Pieces are token texts, short in practice;
     * only a piece over 256 bytes costs an allocation. */
    size_t start = out->len;
    int rc = piece(d->v, id, false, d->first && d->v->add_space_prefix ? 1 : 0, out);
    d->first = false;
    if (rc || out->len == start) return rc;
    size_t n = out->len - start;
    char small[256];
    char *copy = n <= sizeof small ? small : malloc(n);
    if (!copy) {
        out->len = start;
        out->data[start] = 0;
        return CORE_NOMEM;
    }
    memcpy(copy, out->data + start, n);
    out->len = start;
    out->data[start] = 0;
    rc = detok_feed(d, copy, n, out);
    if (copy != small) free(copy);
    return rc;
}

void eng_detok_flush(eng_detok *d, core_buf *out)
{
    if (d->n_pending > 0) emit_replacement(out);
    d->n_pending = 0;
}
