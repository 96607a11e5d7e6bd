/* The attention row kernels (vec_ref.c, vec_avx2.c), SIMD vs the scalar reference: out += a * v
 * for F32 and F16 rows on every length 0..70 (full vectors and scalar tails); rows_dot and
 * rows_wsum over strided rows; the dispatched table has them for exactly the KV cache's types. */
#include <stdlib.h>
#include <string.h>

#include "kernels/internal.h"
#include "test.h"

/* rows kernels: f32 reassociation, relative to the sum of |terms| */
#define TOL_ROWS 1e-6

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

/* Rows of up to 130 elements (full 32-wide chunks, 8-wide steps, scalar tails) at a stride
 * larger than the row, 0..9 rows (groups of 4 and leftovers), F32 and F16. */
static void check_rows(const kern_traits *simd, const kern_traits *ref, int f16, const char *name)
{
    enum { MAXR = 9, MAXN = 130, STRIDE = 136 };
    static float rf[MAXR * STRIDE];
    static uint16_t rh[MAXR * STRIDE];
    float q[MAXN], w[MAXR], o1[MAXN + 4], o2[MAXN + 4];
    static const int64_t ns[] = {1, 7, 8, 31, 32, 64, 80, 130};
    int bad = 0;
    for (int i = 0; i < MAXR * STRIDE; i++) {
        rf[i] = frand() * 2.0f;
        rh[i] = kern_f32_to_f16(rf[i]);
    }
    const void *base = f16 ? (const void *)rh : (const void *)rf;
    size_t stride = STRIDE * (f16 ? sizeof(uint16_t) : sizeof(float));
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        int64_t n = ns[ni];
        for (int64_t nr = 0; nr <= MAXR; nr++) {
            double mag = 0;
            for (int64_t i = 0; i < n; i++) q[i] = frand(), mag += fabs(q[i]) * 2.0;
            for (int64_t p = 0; p < nr; p++) w[p] = frand();
            simd->rows_dot(nr, n, base, stride, q, 0.125f, o1);
            ref->rows_dot(nr, n, base, stride, q, 0.125f, o2);
            for (int64_t p = 0; p < nr; p++) bad += !(fabs(o1[p] - o2[p]) <= TOL_ROWS * mag);
            o1[n] = o2[n] = 42.0f; /* must stay: out has n elements */
            simd->rows_wsum(nr, n, base, stride, w, o1);
            ref->rows_wsum(nr, n, base, stride, w, o2);
            for (int64_t i = 0; i < n; i++) bad += !(fabs(o1[i] - o2[i]) <= TOL_ROWS * 2.0 * MAXR);
            bad += o1[n] != 42.0f;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d rows_dot / rows_wsum results wrong", name, bad);
}

TEST(rows_kernels_match_ref)
{
    for (int f16 = 0; f16 < 2; f16++) {
        int type = f16 ? CORE_TYPE_F16 : CORE_TYPE_F32;
        const kern_traits *g = kern_traits_get(type), *r = kern_traits_ref(type);
        CHECK(g->rows_dot && g->rows_wsum && r->rows_dot && r->rows_wsum);
        check_rows(g, r, f16, f16 ? "f16" : "f32");
    }
}

TEST(attention_kernels_exist_for_the_kv_cache_types_only)
{
    CHECK(kern_traits_get(CORE_TYPE_F32)->rows_dot != NULL);
    CHECK(kern_traits_get(CORE_TYPE_F16)->rows_wsum != NULL);
    CHECK(kern_traits_ref(CORE_TYPE_F16)->rows_dot == kern_rows_dot_f16_ref);
    CHECK(kern_traits_get(CORE_TYPE_Q8_0)->rows_wsum == NULL);
    CHECK(kern_traits_get(CORE_TYPE_Q8_0)->rows_dot == NULL);
}

int main(void)
{
    kern_init();
    RUN(rows_kernels_match_ref);
    RUN(attention_kernels_exist_for_the_kv_cache_types_only);
    return test_summary();
}
