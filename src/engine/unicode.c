/* unicode.c — the Unicode pieces the tokenizers need: codepoint flags (from the generated
 * table in unicode_data.c), UTF-8 decoding the lenient way llama.cpp does it, strict UTF-8
 * checking for the streaming detokenizer, and GPT-2's byte <-> unicode mapping.
 *
 * Pure functions over constant tables; callable from any thread. */
#include "engine/tok_internal.h"

uint16_t eng_ucd_flags(uint32_t cp)
{
    if (cp > 0x10FFFF) return ENG_UCD_UNDEFINED;
    size_t lo = 0, hi = eng_ucd_n_ranges; /* the ranges cover every codepoint, in order */
    while (lo + 1 < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (eng_ucd_ranges[mid].first <= cp) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return eng_ucd_ranges[lo].flags;
}

size_t eng_utf8_len(unsigned char lead)
{
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[lead >> 4];
}

uint32_t eng_utf8_decode(const char *s, size_t len, size_t *off)
{
    const unsigned char *u = (const unsigned char *)s + *off;
    size_t left = len - *off;
    if (!(u[0] & 0x80)) {
        *off += 1;
        return u[0];
    }
    size_t need = 0;
    uint32_t cp = 0;
    if (!(u[0] & 0x40)) {
        need = 0; /* a stray continuation byte */
    } else if (!(u[0] & 0x20)) {
        need = 2;
        cp = u[0] & 0x1F;
    } else if (!(u[0] & 0x10)) {
        need = 3;
        cp = u[0] & 0x0F;
    } else if (!(u[0] & 0x08)) {
        need = 4;
        cp = u[0] & 0x07;
    }
    if (need == 0 || left < need) goto invalid;
    for (size_t i = 1; i < need; i++) {
        if ((u[i] & 0xC0) != 0x80) goto invalid;
        cp = (cp << 6) | (u[i] & 0x3F);
    }
    *off += need;
    return cp;
invalid:
    *off += 1;
    return 0xFFFD;
}

size_t eng_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x10000) return eng_utf8_encode(cp, out);
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int eng_utf8_check(const unsigned char *s, size_t len)
{
    if (len == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        if (c == 0xED) hi = 0x9F;      /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        if (c == 0xF4) hi = 0x8F;      /* past U+10FFFF */
    } else {
        return -1; /* continuation byte, C0/C1 or F5..FF */
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= len) return 0;
        unsigned char b = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) return -1;
    }
    return (int)need;
}

// ---- GPT-2 byte mapping ----

/* Bytes that are printable and not space map to themselves; the other 68 map, in byte
 * order, to U+0100 and up. ref: GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py). */
static bool byte_is_direct(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t eng_byte_to_cp(uint8_t b)
{
    if (byte_is_direct(b)) return b;
    uint32_t n = 0; /* the number of non-direct bytes below b */
    if (b <= 0x20) {
        n = b;
    } else if (b <= 0xA0) {
        n = 33 + (b - 0x7F); /* 0x00..0x20 are 33 bytes; then 0x7F..0xA0 */
    } else {
        n = 33 + 34;         /* 0xAD, after 0x7F..0xA0 (34 bytes) */
    }
    return 0x100 + n;
}

int eng_cp_to_byte(uint32_t cp)
{
    if (cp < 0x100) return byte_is_direct(cp) ? (int)cp : -1;
    uint32_t n = cp - 0x100;
    if (n <= 32) return (int)n;
    if (n < 33 + 34) return (int)(0x7F + (n - 33));
    if (n == 67) return 0xAD;
    return -1;
}
