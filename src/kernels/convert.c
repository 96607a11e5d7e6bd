/* convert.c — f16 and bf16 <-> f32, bit-exact with ggml's scalar conversions.
 *
 * f16 -> f32 and bf16 -> f32 are exact. f32 -> f16 rounds to nearest, ties to even; overflow
 * gives inf and NaN gives the quiet NaN 0x7E00 with the sign kept (ggml's portable
 * ggml_compute_fp32_to_fp16). f32 -> bf16 rounds to nearest even, keeps subnormals, and turns
 * a NaN into a quiet NaN by setting mantissa bit 6 (ggml_compute_fp32_to_bf16). */
#include <string.h>

#include "kernels/internal.h"

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float kern_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    if (exp == 0x1F) { /* inf or NaN: keep the payload, quiet a signalling NaN */
        uint32_t bits = sign | 0x7F800000 | (man << 13);
        if (man) bits |= 0x00400000;
        return f32_from_bits(bits);
    }
    if (exp == 0) { /* zero or subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return f32_from_bits(sign | f32_bits(v));
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t kern_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7FFFFFFF;
    if (x > 0x7F800000) return sign | 0x7E00;   /* NaN */
    if (x >= 0x477FF000) return sign | 0x7C00;  /* rounds past 65504: inf */
    if (x >= 0x38800000) {                      /* normal f16 (>= 2^-14) */
        uint32_t r = x + 0xFFF + ((x >> 13) & 1); /* round to nearest even at bit 13 */
        return (uint16_t)(sign | ((r - 0x38000000) >> 13));
    }
    /* f16 subnormal or zero: round (mantissa * 2^(e-150)) to a multiple of 2^-24 */
    uint32_t e = x >> 23;
    if (e == 0) return sign; /* f32 subnormals are far below 2^-25 */
    uint32_t man = (x & 0x7FFFFF) | 0x800000;
    uint32_t shift = 126 - e; /* >= 14 here */
    if (shift >= 32) return sign;
    uint32_t r = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float kern_bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t kern_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
