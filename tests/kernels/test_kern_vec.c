/* The attention row kernels (vec_ref.c, vec_avx2.c): out += a * v for F32 and F16 rows, SIMD vs
 * the scalar reference, on random rows and every length 0..70 (full vectors and scalar tails),
 * plus the dispatched table pointing at a mad for exactly the KV cache's types. */
#include <stdlib.h>
#include <string.h>

#include "kernels/internal.h"
#include "test.h"

/* |simd - ref| <= TOL * (|out| + |a * v|): one FMA rounding instead of two. */
#define TOL_MAD 1e-6

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

static void check_mad(kern_mad_fn simd, kern_mad_fn ref, int f16, const char *name)
{
    float vf[80], o1[80], o2[80];
    uint16_t vh[80];
    int bad = 0;
    for (int n = 0; n <= 70; n++) {
        for (int rep = 0; rep < 8; rep++) {
            for (int i = 0; i < 80; i++) {
                vf[i] = frand() * 4.0f;
                vh[i] = kern_f32_to_f16(vf[i]);
                o1[i] = o2[i] = frand();
            }
            float a = frand() * 2.0f;
            const void *v = f16 ? (const void *)vh : (const void *)vf;
            simd(n, a, v, o1);
            ref(n, a, v, o2);
            for (int i = 0; i < 80; i++) {
                float vi = f16 ? kern_f16_to_f32(vh[i]) : vf[i];
                double tol = TOL_MAD * (fabs(o2[i]) + fabs(a * vi));
                if (i >= n ? o1[i] != o2[i] : !(fabs(o1[i] - o2[i]) <= tol)) bad++;
            }
        }
    }
    CHECK_MSG(bad == 0, "%s: %d elements wrong (or written past n)", name, bad);
}

TEST(mad_simd_matches_ref)
{
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        printf("  (no AVX2: skipped)\n");
        return;
    }
    check_mad(kern_mad_f32_avx2, kern_mad_f32_ref, 0, "f32 avx2");
    check_mad(kern_mad_f16_avx2, kern_mad_f16_ref, 1, "f16 avx2");
}

TEST(mad_exists_for_the_kv_cache_types_only)
{
    CHECK(kern_traits_get(CORE_TYPE_F32)->mad != NULL);
    CHECK(kern_traits_get(CORE_TYPE_F16)->mad != NULL);
    CHECK(kern_traits_ref(CORE_TYPE_F16)->mad == kern_mad_f16_ref);
    CHECK(kern_traits_get(CORE_TYPE_Q8_0)->mad == NULL);
}

int main(void)
{
    kern_init();
    RUN(mad_simd_matches_ref);
    RUN(mad_exists_for_the_kv_cache_types_only);
    return test_summary();
}
