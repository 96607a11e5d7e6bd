/* tok_internal.h — shared between the tokenizer files only (vocab.c, tok_spm.c, tok_bpe.c,
 * unicode.c, unicode_data.c, detok.c): the vocabulary's layout, its hash tables and the
 * Unicode helpers. Nothing outside those files includes it.
 *
 * A vocabulary is immutable after eng_vocab_load and may be read from any thread. Every
 * string it holds is its own copy (the GGUF file may be closed after loading). */
#ifndef DWELL_ENGINE_TOK_INTERNAL_H
#define DWELL_ENGINE_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

// ---- unicode ----

/* Codepoint flags (tools/gen_unicode.py): the general category class and White_Space. */
enum {
    ENG_UCD_UNDEFINED = 0x01, /* Cn */
    ENG_UCD_NUMBER = 0x02,    /* \p{N} */
    ENG_UCD_LETTER = 0x04,    /* \p{L} */
    ENG_UCD_SEPARATOR = 0x08, /* \p{Z} */
    ENG_UCD_MARK = 0x10,      /* \p{M} */
    ENG_UCD_PUNCT = 0x20,     /* \p{P} */
    ENG_UCD_SYMBOL = 0x40,    /* \p{S} */
    ENG_UCD_CONTROL = 0x80,   /* \p{C} but Cn */
    ENG_UCD_WHITESPACE = 0x100, /* \s (the White_Space property) */
};

typedef struct eng_ucd_range {
    uint32_t first, last;
    uint16_t flags;
} eng_ucd_range;

extern const char eng_unicode_version[];
extern const eng_ucd_range eng_ucd_ranges[];
extern const size_t eng_ucd_n_ranges;

/* Flags of a codepoint; codepoints past U+10FFFF are UNDEFINED. */
uint16_t eng_ucd_flags(uint32_t cp);
/* Length of the UTF-8 sequence a lead byte announces, llama.cpp's way: 1 for ASCII and for
 * stray continuation bytes, 2/3/4 from the high bits. */
size_t eng_utf8_len(unsigned char lead);
/* Decodes one codepoint at s[*off] (len bytes in all) the lenient way llama.cpp does (no
 * overlong or surrogate checks); an invalid sequence consumes one byte and gives U+FFFD. */
uint32_t eng_utf8_decode(const char *s, size_t len, size_t *off);
/* Encodes cp (U+FFFD for cp > U+10FFFF) into out (4 bytes of room); returns the length. */
size_t eng_utf8_encode(uint32_t cp, char *out);
/* Length of the longest prefix of s[0..len) that is a complete, valid UTF-8 sequence of one
 * character (strict: no overlongs, surrogates or > U+10FFFF): 1..4; 0 if s is a valid but
 * incomplete start of one; -1 if it can never become valid. */
int eng_utf8_check(const unsigned char *s, size_t len);

/* GPT-2's byte <-> unicode mapping for byte-level BPE. */
uint32_t eng_byte_to_cp(uint8_t b);
/* The byte a codepoint stands for, or -1 when it is not in the mapping. */
int eng_cp_to_byte(uint32_t cp);

// ---- vocabulary ----

/* Pre-tokenizer (split regex) of a byte-level BPE vocabulary. */
enum eng_pre {
    ENG_PRE_DEFAULT = 0, /* "default"/absent: llama.cpp's adapted GPT-2 split chain */
    ENG_PRE_LLAMA3 = 1,  /* "llama-bpe", "llama3", "llama-v3", ... */
    ENG_PRE_GPT2 = 2,    /* "gpt-2", "gpt2", ... */
    ENG_PRE_QWEN2 = 3,   /* "qwen2", "deepseek-r1-qwen" */
    ENG_PRE_SMOLLM = 4,  /* "smollm", "starcoder", "refact", ... (\p{N} then GPT-2) */
};

/* A merge "left right" of tokenizer.ggml.merges: offsets into the vocab's pool. */
typedef struct eng_merge {
    uint32_t l_off, l_len, r_off, r_len;
} eng_merge;

struct eng_vocab {
    int type;  /* enum eng_vocab_type */
    int pre;   /* enum eng_pre (BPE only) */
    int64_t n; /* number of tokens */

    char *pool;        /* every token text, NUL-terminated, then every merge's text */
    uint32_t *off;     /* [n] start of token i's text in pool */
    uint32_t *len;     /* [n] its byte length */
    float *score;      /* [n] SentencePiece scores (0 when absent) */
    uint8_t *attr;     /* [n] enum eng_tok_attr (0 = undefined) */

    uint32_t tok_mask; /* token hash: open addressing, capacity tok_mask + 1 (power of 2) */
    int32_t *tok_slot; /* token id or -1 */

    int64_t n_merges;
    eng_merge *merges;   /* [n_merges] in rank order */
    uint32_t merge_mask; /* merge hash: like the token hash, values are ranks */
    int32_t *merge_slot;

    int32_t *specials;  /* control/user-defined/unknown ids, longest text first */
    int64_t n_specials;

    int32_t bos, eos, unk, pad, eot, eom; /* -1 when none */
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
    uint8_t *eog; /* [n] 1 for end-of-generation tokens */
    int32_t byte_tok[256]; /* SPM: token of each byte (<0xXX>, the byte itself, or unk) */
};

/* Id of the token whose text is s[0..len), or -1. */
int32_t eng_vocab_lookup(const eng_vocab *v, const char *s, size_t len);
/* Rank of the merge (left, right), or -1. */
int32_t eng_vocab_merge_rank(const eng_vocab *v, const char *l, size_t ll, const char *r,
                             size_t rl);
static inline const char *eng_vocab_tok(const eng_vocab *v, int32_t id)
{
    return v->pool + v->off[id];
}

/* A symbol of the merge loops: a run of bytes of the text, linked to its neighbours. */
typedef struct eng_sym {
    const char *text;
    uint32_t n;          /* 0 once merged into its left neighbour */
    int32_t prev, next;  /* -1 at the ends */
} eng_sym;

/* A candidate merge of two adjacent symbols; popped lowest key first, then lowest left.
 * ln/rn are the symbols' lengths when it was made: it is stale when either changed. */
typedef struct eng_bigram {
    double key; /* SPM: -score; BPE: merge rank */
    int32_t left, right;
    uint32_t ln, rn;
} eng_bigram;

/* A binary heap over caller-provided storage of cap entries. */
typedef struct eng_heap {
    eng_bigram *a;
    size_t n, cap;
} eng_heap;
void eng_heap_push(eng_heap *h, eng_bigram b); /* CORE_ASSERTs room: size cap for the worst */
eng_bigram eng_heap_pop(eng_heap *h);

/* The tokenizers proper: ordinary text (no special tokens) of one fragment, appended to
 * out. SPM: text is already escaped (spaces as ▁) and prefixed as needed. */
int eng_spm_tokenize(const eng_vocab *v, const char *text, size_t len, eng_tokens *out,
                     core_err *err);
int eng_bpe_tokenize(const eng_vocab *v, const char *text, size_t len, eng_tokens *out,
                     core_err *err);
/* Pre-tokenization of the BPE: splits cps[0..n) (with their flags fl) into words for pre
 * type `pre`, as llama.cpp's regex chain for that type does. Word lengths (in codepoints)
 * are written to lens; tmp is scratch; both need room for n. Returns the word count. */
size_t eng_bpe_split(int pre, const uint32_t *cps, const uint16_t *fl, size_t n, uint32_t *lens,
                     uint32_t *tmp);

#endif
