/* f16/bf16 <-> f32 conversions: edge cases by hand, an exhaustive f16 round trip, and a sweep
 * of f32 -> f16 against the CPU's own F16C conversion (round to nearest even). */
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"
#include "test.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

TEST(f32_to_f16_edges)
{
    CHECK_EQ_INT(kern_f32_to_f16(0.0f), 0x0000);
    CHECK_EQ_INT(kern_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ_INT(kern_f32_to_f16(1.0f), 0x3C00);
    CHECK_EQ_INT(kern_f32_to_f16(-2.0f), 0xC000);
    CHECK_EQ_INT(kern_f32_to_f16(65504.0f), 0x7BFF);
    CHECK_EQ_INT(kern_f32_to_f16(65519.99f), 0x7BFF); /* just under the tie */
    CHECK_EQ_INT(kern_f32_to_f16(65520.0f), 0x7C00);  /* tie with odd 0x7BFF: up to inf */
    CHECK_EQ_INT(kern_f32_to_f16(1e30f), 0x7C00);
    CHECK_EQ_INT(kern_f32_to_f16(-INFINITY), 0xFC00);
    CHECK_EQ_INT(kern_f32_to_f16(NAN), 0x7E00);
    CHECK_EQ_INT(kern_f32_to_f16(float_of(0xFFC00001)), 0xFE00);
    CHECK_EQ_INT(kern_f32_to_f16(float_of(0x7F800001)), 0x7E00); /* signalling NaN */
    /* ties to even in the normal range: 1 + 2^-11 is halfway between 0x3C00 and 0x3C01 */
    CHECK_EQ_INT(kern_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);
    CHECK_EQ_INT(kern_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02);
    CHECK_EQ_INT(kern_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
    /* smallest normal and the subnormals */
    CHECK_EQ_INT(kern_f32_to_f16(0x1p-14f), 0x0400);
    CHECK_EQ_INT(kern_f32_to_f16(0x1p-24f), 0x0001);
    CHECK_EQ_INT(kern_f32_to_f16(0x1p-25f), 0x0000);        /* tie: to even (0) */
    CHECK_EQ_INT(kern_f32_to_f16(1.5f * 0x1p-25f), 0x0001); /* above the tie */
    CHECK_EQ_INT(kern_f32_to_f16(3 * 0x1p-25f), 0x0002);    /* tie between 1 and 2: 2 */
    CHECK_EQ_INT(kern_f32_to_f16(5 * 0x1p-25f), 0x0002);    /* tie between 2 and 3: 2 */
    CHECK_EQ_INT(kern_f32_to_f16(1023 * 0x1p-24f), 0x03FF);
    CHECK_EQ_INT(kern_f32_to_f16(1023.5f * 0x1p-24f), 0x0400); /* rounds up into normal */
    CHECK_EQ_INT(kern_f32_to_f16(-0x1p-24f), 0x8001);
    CHECK_EQ_INT(kern_f32_to_f16(float_of(0x00000001)), 0x0000); /* f32 subnormal */
    CHECK_EQ_INT(kern_f32_to_f16(1e-10f), 0x0000);
}

TEST(f16_to_f32_edges)
{
    CHECK(bits_of(kern_f16_to_f32(0x0000)) == 0x00000000);
    CHECK(bits_of(kern_f16_to_f32(0x8000)) == 0x80000000);
    CHECK(kern_f16_to_f32(0x3C00) == 1.0f);
    CHECK(kern_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(kern_f16_to_f32(0x83FF) == -1023 * 0x1p-24f);
    CHECK(kern_f16_to_f32(0x0400) == 0x1p-14f);
    CHECK(kern_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(kern_f16_to_f32(0x7C00) == INFINITY);
    CHECK(kern_f16_to_f32(0xFC00) == -INFINITY);
    CHECK(isnan(kern_f16_to_f32(0x7E00)));
    CHECK(bits_of(kern_f16_to_f32(0x7E00)) == 0x7FC00000);
    CHECK(bits_of(kern_f16_to_f32(0x7C01)) == 0x7FC02000); /* payload kept, quieted */
}

TEST(f16_round_trip_exhaustive)
{
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue; /* NaNs */
        uint16_t back = kern_f32_to_f16(kern_f16_to_f32((uint16_t)h));
        if (back != h && bad++ < 5) printf("  f16 0x%04x -> 0x%04x\n", h, back);
    }
    CHECK_EQ_INT(bad, 0);
}

__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}

TEST(f16_matches_f16c)
{
    /* The oracle is the CPU's own conversion; a machine without F16C has none to compare
     * with (clang 14's __builtin_cpu_supports does not know "f16c": ask cpuid). */
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_F16C)) {
        printf("  (no F16C on this machine: the hardware comparison is skipped)\n");
        return;
    }
    int bad = 0;
    /* every f32 whose low 7 bits are one of a few patterns: all exponents, all rounding
     * situations of the 13 dropped bits (ties, just above and below) */
    static const uint32_t lows[] = {0x00, 0x01, 0x3F, 0x40, 0x41, 0x7F};
    for (uint32_t hi = 0; hi < (1u << 25); hi++) {
        for (size_t k = 0; k < sizeof lows / sizeof lows[0]; k++) {
            uint32_t u = (hi << 7) | lows[k];
            float f = float_of(u);
            if (isnan(f)) continue;
            uint16_t mine = kern_f32_to_f16(f), hw = hw_f32_to_f16(f);
            if (mine != hw && bad++ < 5) printf("  f32 0x%08x: 0x%04x vs F16C 0x%04x\n", u, mine, hw);
        }
    }
    CHECK_EQ_INT(bad, 0);
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;
        float a = kern_f16_to_f32((uint16_t)h), b = hw_f16_to_f32((uint16_t)h);
        if (bits_of(a) != bits_of(b) && bad++ < 5) printf("  f16 0x%04x differs\n", h);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(bf16_edges)
{
    CHECK_EQ_INT(kern_f32_to_bf16(1.0f), 0x3F80);
    CHECK_EQ_INT(kern_f32_to_bf16(-1.0f), 0xBF80);
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x3F808000)), 0x3F80); /* tie: to even */
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x3F818000)), 0x3F82); /* tie: to even (up) */
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x3F808001)), 0x3F81);
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x3F807FFF)), 0x3F80);
    CHECK_EQ_INT(kern_f32_to_bf16(INFINITY), 0x7F80);
    CHECK_EQ_INT(kern_f32_to_bf16(-INFINITY), 0xFF80);
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x7F7FFFFF)), 0x7F80); /* FLT_MAX rounds to inf */
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x7F800001)), 0x7FC0); /* NaN: quieted */
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0xFFC00001)), 0xFFC0);
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x7FA12345)), 0x7FE1);
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x00010000)), 0x0001); /* subnormals kept */
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x00008000)), 0x0000); /* tie: to even */
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x00018000)), 0x0002);
    CHECK_EQ_INT(kern_f32_to_bf16(float_of(0x80000000)), 0x8000);
    CHECK(kern_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(bits_of(kern_bf16_to_f32(0x0001)) == 0x00010000);
    CHECK(bits_of(kern_bf16_to_f32(0xFFC0)) == 0xFFC00000);
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7F80) == 0x7F80 && (h & 0x7F)) continue;
        if (kern_f32_to_bf16(kern_bf16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    RUN(f32_to_f16_edges);
    RUN(f16_to_f32_edges);
    RUN(f16_round_trip_exhaustive);
    RUN(f16_matches_f16c);
    RUN(bf16_edges);
    return test_summary();
}
