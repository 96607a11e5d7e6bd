/* tok_spm.c — SentencePiece tokenization the way llama.cpp's llm_tokenizer_spm does it (BPE
 * over the piece scores, not the unigram model): the text is split into UTF-8 characters,
 * every adjacent pair that is a token goes into a priority queue by score, the best pair is
 * merged and its new neighbours queued, until nothing merges. A final symbol that is not a
 * token falls back to its bytes (<0xXX> tokens, else the byte itself, else unk).
 *
 * Also the bigram heap that the BPE tokenizer shares. Scratch is allocated per call; no
 * state survives it. ref: llama.cpp src/llama-vocab.cpp (llm_tokenizer_spm_session). */
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"

// ---- bigram heap ----

static bool bigram_before(const eng_bigram *x, const eng_bigram *y)
{
    return x->key < y->key || (x->key == y->key && x->left < y->left);
}

void eng_heap_push(eng_heap *h, eng_bigram b)
{
    CORE_ASSERT(h->n < h->cap);
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&b, &h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = b;
}

eng_bigram eng_heap_pop(eng_heap *h)
{
    eng_bigram top = h->a[0];
    eng_bigram last = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bigram_before(&h->a[c + 1], &h->a[c])) c++;
        if (!bigram_before(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n > 0) h->a[i] = last;
    return top;
}

// ---- SentencePiece ----

static void spm_try_bigram(const eng_vocab *v, const eng_sym *sym, int32_t l, int32_t r,
                           eng_heap *h)
{
    if (l < 0 || r < 0) return;
    int32_t id = eng_vocab_lookup(v, sym[l].text, sym[l].n + sym[r].n);
    if (id < 0) return;
    eng_heap_push(h, (eng_bigram){-(double)v->score[id], l, r, sym[l].n, sym[r].n});
}

static int spm_emit(const eng_vocab *v, const eng_sym *s, eng_tokens *out, core_err *err)
{
    int32_t id = eng_vocab_lookup(v, s->text, s->n);
    if (id >= 0) {
        if (eng_tokens_push(out, id)) return core_err_set(err, CORE_NOMEM, "tokenize: out of memory");
        return CORE_OK;
    }
    for (uint32_t j = 0; j < s->n; j++) {
        unsigned char b = (unsigned char)s->text[j];
        int32_t bt = v->byte_tok[b];
        if (bt < 0) {
            return core_err_set(err, CORE_UNSUPPORTED, "tokenize: byte 0x%02X has no token "
                                "(no <0x%02X> byte token and no unknown token)", b, b);
        }
        if (eng_tokens_push(out, bt)) return core_err_set(err, CORE_NOMEM, "tokenize: out of memory");
    }
    return CORE_OK;
}

int eng_spm_tokenize(const eng_vocab *v, const char *text, size_t len, eng_tokens *out,
                     core_err *err)
{
    if (len == 0) return CORE_OK;
    eng_sym *sym = malloc(sizeof *sym * len);
    eng_heap h = {malloc(sizeof(eng_bigram) * (3 * len + 3)), 0, 3 * len + 3};
    if (!sym || !h.a) {
        free(sym);
        free(h.a);
        return core_err_set(err, CORE_NOMEM, "tokenize: out of memory");
    }
    int32_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t cl = eng_utf8_len((unsigned char)text[off]);
        if (cl > len - off) cl = len - off;
        sym[n] = (eng_sym){text + off, (uint32_t)cl, n - 1, off + cl == len ? -1 : n + 1};
        off += cl;
        n++;
    }
    for (int32_t i = 1; i < n; i++) spm_try_bigram(v, sym, i - 1, i, &h);
    while (h.n > 0) {
        eng_bigram b = eng_heap_pop(&h);
        eng_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n != b.ln || r->n != b.rn) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        spm_try_bigram(v, sym, l->prev, b.left, &h);
        spm_try_bigram(v, sym, b.left, l->next, &h);
    }
    int rc = CORE_OK;
    for (int32_t i = 0; i != -1 && rc == CORE_OK; i = sym[i].next) rc = spm_emit(v, &sym[i], out, err);
    free(sym);
    free(h.a);
    return rc;
}
