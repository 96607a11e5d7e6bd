/* tok_bpe.c — byte-level BPE (GPT-2 style) the way llama.cpp's llm_tokenizer_bpe does it.
 *
 * 1. The text is decoded to codepoints (invalid UTF-8 becomes U+FFFD) and pre-tokenized into
 *    words by the split regex of the vocabulary's pre type. The regexes are written out as
 *    code, one scanner per pattern, following llama.cpp's unicode_regex_split_custom_gpt2 /
 *    _llama3 (qwen2's pattern is llama3's with \p{N} instead of \p{N}{1,3}):
 *      gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *              ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *    "default" is llama.cpp's chain [\p{P}$+<=>^~|]+, then gpt2, then \p{N}+, then
 *    [0-9][0-9][0-9]; smollm/starcoder is \p{N} then gpt2. Each pattern of a chain splits
 *    every word of the previous one into its matches and the text between them.
 * 2. Each word's bytes are mapped to GPT-2's printable codepoints; with ignore_merges a word
 *    that is itself a token is that token.
 * 3. Otherwise the word's symbols (one per byte) are merged by merge rank, lowest first, with
 *    a priority queue; each final symbol is looked up as a token.
 *
 * Scratch is allocated per call. ref: llama.cpp src/llama-vocab.cpp, src/unicode.cpp. */
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"

#define CP_NONE 0xFFFFFFFFu
#define F_WLN (ENG_UCD_WHITESPACE | ENG_UCD_LETTER | ENG_UCD_NUMBER)

// ---- pre-tokenizer scanners ----

/* One scanner over the word [ini, end): cpt/flags outside read as none / 0. */
typedef struct scan {
    const uint32_t *cps;
    const uint16_t *fl;
    size_t ini, end, prev;
    uint32_t *lens;
    size_t n_lens;
} scan;

static uint32_t sc_cp(const scan *s, size_t p) { return p < s->end ? s->cps[p] : CP_NONE; }
static uint16_t sc_fl(const scan *s, size_t p) { return p < s->end ? s->fl[p] : 0; }

/* Ends the current token at e (empty tokens are dropped). */
static void sc_add(scan *s, size_t e)
{
    if (e > s->prev) s->lens[s->n_lens++] = (uint32_t)(e - s->prev);
    s->prev = e;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd at pos (case-insensitive when fold): the length, or 0. */
static size_t contraction(const scan *s, size_t pos, bool fold)
{
    if (s->cps[pos] != '\'' || pos + 1 >= s->end) return 0;
    uint32_t a = s->cps[pos + 1];
    if (fold) a = ascii_lower(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= s->end) return 0;
    uint32_t b = s->cps[pos + 2];
    if (fold) b = ascii_lower(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* The whitespace rules shared by both patterns: \s+(?!\S) then \s+ (and, for llama3,
 * \s*[\r\n]+ first). Returns the new position. */
static size_t scan_spaces(scan *s, size_t pos, bool crlf_rule)
{
    size_t nws = 0, last_rn = 0;
    while (sc_fl(s, pos + nws) & ENG_UCD_WHITESPACE) {
        uint32_t c = sc_cp(s, pos + nws);
        if (c == '\r' || c == '\n') last_rn = pos + nws + 1;
        nws++;
    }
    if (crlf_rule && last_rn > 0) {
        pos = last_rn;
    } else if (nws > 1 && sc_cp(s, pos + nws) != CP_NONE) {
        pos += nws - 1;
    } else if (nws > 0) {
        pos += nws;
    } else {
        pos++; /* no match: one codepoint on its own */
    }
    sc_add(s, pos);
    return pos;
}

static void split_gpt2(scan *s)
{
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = s->cps[pos];
        size_t c = contraction(s, pos, false);
        if (c) {
            sc_add(s, pos += c);
            continue;
        }
        uint16_t f2 = cpt == ' ' ? sc_fl(s, pos + 1) : s->fl[pos];
        uint16_t cls = f2 & ENG_UCD_LETTER ? ENG_UCD_LETTER : f2 & ENG_UCD_NUMBER ? ENG_UCD_NUMBER : 0;
        if (cls) { /* ' ?\p{L}+' and ' ?\p{N}+' */
            pos += cpt == ' ';
            while (sc_fl(s, pos) & cls) pos++;
            sc_add(s, pos);
            continue;
        }
        if (!(f2 & F_WLN) && f2) { /* ' ?[^\s\p{L}\p{N}]+' */
            pos += cpt == ' ';
            while (!(sc_fl(s, pos) & F_WLN) && sc_fl(s, pos)) pos++;
            sc_add(s, pos);
            continue;
        }
        pos = scan_spaces(s, pos, false);
    }
}

static void split_llama3(scan *s, size_t max_digits)
{
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = s->cps[pos];
        uint16_t f = s->fl[pos];
        size_t c = contraction(s, pos, true);
        if (c) {
            sc_add(s, pos += c);
            continue;
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(cpt == '\r' || cpt == '\n' || (f & ENG_UCD_NUMBER)) &&
            ((f & ENG_UCD_LETTER) || (sc_fl(s, pos + 1) & ENG_UCD_LETTER))) {
            pos++;
            while (sc_fl(s, pos) & ENG_UCD_LETTER) pos++;
            sc_add(s, pos);
            continue;
        }
        if (f & ENG_UCD_NUMBER) { /* \p{N}{1,max_digits} */
            size_t start = pos;
            while (sc_fl(s, pos) & ENG_UCD_NUMBER) {
                if (++pos - start >= max_digits) {
                    sc_add(s, pos);
                    start = pos;
                }
            }
            sc_add(s, pos);
            continue;
        }
        /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
        uint16_t f2 = cpt == ' ' ? sc_fl(s, pos + 1) : f;
        if (!(f2 & F_WLN) && f) {
            pos += cpt == ' ';
            while (!(f2 & F_WLN) && f2) f2 = sc_fl(s, ++pos);
            uint32_t c2 = sc_cp(s, pos);
            while (c2 == '\r' || c2 == '\n') c2 = sc_cp(s, ++pos);
            sc_add(s, pos);
            continue;
        }
        pos = scan_spaces(s, pos, true);
    }
}

enum { M_PUNCT_RUN, M_NUMBER_RUN, M_NUMBER_ONE, M_DIGIT3 };

static bool is_default_punct(uint32_t c, uint16_t f)
{
    return (f & ENG_UCD_PUNCT) || (c < 128 && c && strchr("$+<=>^~|", (int)c));
}

/* A simple pattern: its matches and the text between them become words. */
static void split_match(scan *s, int kind)
{
    for (size_t pos = s->ini; pos < s->end;) {
        size_t m = 0;
        if (kind == M_PUNCT_RUN) {
            while (pos + m < s->end && is_default_punct(s->cps[pos + m], s->fl[pos + m])) m++;
        } else if (kind == M_NUMBER_RUN || kind == M_NUMBER_ONE) {
            while (pos + m < s->end && (s->fl[pos + m] & ENG_UCD_NUMBER)) {
                m++;
                if (kind == M_NUMBER_ONE) break;
            }
        } else {
            while (m < 3 && pos + m < s->end && s->cps[pos + m] >= '0' && s->cps[pos + m] <= '9') m++;
            if (m < 3) m = 0;
        }
        if (m == 0) {
            pos++;
            continue;
        }
        sc_add(s, pos); /* the text before the match */
        sc_add(s, pos += m);
    }
    sc_add(s, s->end);
}

/* Applies one pattern to every word of in[0..n_in) (lengths over cps), writing out. */
static size_t split_step(const uint32_t *cps, const uint16_t *fl, const uint32_t *in, size_t n_in,
                         uint32_t *out, int step)
{
    scan s = {cps, fl, 0, 0, 0, out, 0};
    size_t start = 0;
    for (size_t i = 0; i < n_in; i++) {
        s.ini = s.prev = start;
        s.end = start + in[i];
        start = s.end;
        switch (step) {
        case 0: split_gpt2(&s); break;
        case 1: split_llama3(&s, 3); break;
        case 2: split_llama3(&s, 1); break;
        default: split_match(&s, step - 10); break;
        }
    }
    return s.n_lens;
}

size_t eng_bpe_split(int pre, const uint32_t *cps, const uint16_t *fl, size_t n, uint32_t *lens,
                     uint32_t *tmp)
{
    static const int chains[][5] = {
        [ENG_PRE_DEFAULT] = {10 + M_PUNCT_RUN, 0, 10 + M_NUMBER_RUN, 10 + M_DIGIT3, -1},
        [ENG_PRE_LLAMA3] = {1, -1},
        [ENG_PRE_GPT2] = {0, -1},
        [ENG_PRE_QWEN2] = {2, -1},
        [ENG_PRE_SMOLLM] = {10 + M_NUMBER_ONE, 0, -1},
    };
    if (n == 0) return 0;
    const int *chain = chains[pre >= 0 && pre <= ENG_PRE_SMOLLM ? pre : ENG_PRE_GPT2];
    /* ping-pong between the two buffers so that the result lands in lens */
    size_t steps = 0;
    while (chain[steps] >= 0) steps++;
    uint32_t *bufs[2] = {steps % 2 ? tmp : lens, steps % 2 ? lens : tmp};
    bufs[0][0] = (uint32_t)n;
    size_t cnt = 1;
    for (size_t i = 0; i < steps; i++) {
        cnt = split_step(cps, fl, bufs[i % 2], cnt, bufs[(i + 1) % 2], chain[i]);
    }
    return cnt;
}

// ---- merges ----

typedef struct bpe_scratch {
    uint32_t *cps, *lens, *tmp;
    uint16_t *fl;
    char *enc;
    eng_sym *sym;
    eng_heap heap;
} bpe_scratch;

static void bpe_try_bigram(const eng_vocab *v, const eng_sym *sym, int32_t l, int32_t r,
                           eng_heap *h)
{
    if (l < 0 || r < 0) return;
    int32_t rank = eng_vocab_merge_rank(v, sym[l].text, sym[l].n, sym[r].text, sym[r].n);
    if (rank < 0) return;
    eng_heap_push(h, (eng_bigram){(double)rank, l, r, sym[l].n, sym[r].n});
}

/* Byte-encodes word cps[0..n) into enc and splits it into one symbol per byte. */
static int32_t bpe_symbols(const uint32_t *cps, size_t n, char *enc, size_t *enc_len, eng_sym *sym)
{
    size_t o = 0;
    int32_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        char raw[4];
        size_t rl = eng_utf8_encode(cps[i], raw);
        for (size_t j = 0; j < rl; j++) {
            size_t el = eng_utf8_encode(eng_byte_to_cp((uint8_t)raw[j]), enc + o);
            sym[ns] = (eng_sym){enc + o, (uint32_t)el, ns - 1, ns + 1};
            o += el;
            ns++;
        }
    }
    sym[ns - 1].next = -1;
    *enc_len = o;
    return ns;
}

static int bpe_word(const eng_vocab *v, const uint32_t *cps, size_t n, bpe_scratch *sc,
                    eng_tokens *out)
{
    size_t enc_len;
    int32_t ns = bpe_symbols(cps, n, sc->enc, &enc_len, sc->sym);
    if (v->ignore_merges) {
        int32_t id = eng_vocab_lookup(v, sc->enc, enc_len);
        if (id >= 0) return eng_tokens_push(out, id);
    }
    eng_sym *sym = sc->sym;
    sc->heap.n = 0;
    for (int32_t i = 1; i < ns; i++) bpe_try_bigram(v, sym, i - 1, i, &sc->heap);
    while (sc->heap.n > 0) {
        eng_bigram b = eng_heap_pop(&sc->heap);
        eng_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n != b.ln || r->n != b.rn) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        bpe_try_bigram(v, sym, l->prev, b.left, &sc->heap);
        bpe_try_bigram(v, sym, b.left, l->next, &sc->heap);
    }
    for (int32_t i = 0; i != -1; i = sym[i].next) {
        int32_t id = eng_vocab_lookup(v, sym[i].text, sym[i].n);
        if (id >= 0) {
            if (eng_tokens_push(out, id)) return CORE_NOMEM;
            continue;
        }
        /* not a token: llama.cpp tries each byte of the symbol's text on its own */
        for (uint32_t j = 0; j < sym[i].n; j++) {
            int32_t bt = eng_vocab_lookup(v, sym[i].text + j, 1);
            if (bt >= 0 && eng_tokens_push(out, bt)) return CORE_NOMEM;
        }
    }
    return CORE_OK;
}

int eng_bpe_tokenize(const eng_vocab *v, const char *text, size_t len, eng_tokens *out,
                     core_err *err)
{
    if (len == 0) return CORE_OK;
    /* at most len codepoints; a codepoint is at most 4 bytes, each byte one symbol of at
     * most 2 bytes once mapped */
    bpe_scratch sc = {0};
    sc.cps = malloc(sizeof *sc.cps * len);
    sc.lens = malloc(sizeof *sc.lens * len);
    sc.tmp = malloc(sizeof *sc.tmp * len);
    sc.fl = malloc(sizeof *sc.fl * len);
    int rc = CORE_NOMEM;
    if (!sc.cps || !sc.lens || !sc.tmp || !sc.fl) goto done;
    size_t n = 0;
    for (size_t off = 0; off < len;) {
        sc.cps[n] = eng_utf8_decode(text, len, &off);
        sc.fl[n] = eng_ucd_flags(sc.cps[n]);
        n++;
    }
    size_t nw = eng_bpe_split(v->pre, sc.cps, sc.fl, n, sc.lens, sc.tmp);
    size_t longest = 0;
    for (size_t i = 0; i < nw; i++) longest = sc.lens[i] > longest ? sc.lens[i] : longest;
    sc.enc = malloc(8 * longest);
    sc.sym = malloc(sizeof *sc.sym * 4 * longest);
    sc.heap.cap = 12 * longest + 3;
    sc.heap.a = malloc(sizeof *sc.heap.a * sc.heap.cap);
    if (!sc.enc || !sc.sym || !sc.heap.a) goto done;
    size_t start = 0;
    for (size_t i = 0; i < nw; i++) {
        if ((rc = bpe_word(v, sc.cps + start, sc.lens[i], &sc, out))) goto done;
        start += sc.lens[i];
    }
    rc = CORE_OK;
done:
    free(sc.cps);
    free(sc.lens);
    free(sc.tmp);
    free(sc.fl);
    free(sc.enc);
    free(sc.sym);
    free(sc.heap.a);
    if (rc) return core_err_set(err, rc, "tokenize: out of memory");
    return CORE_OK;
}
