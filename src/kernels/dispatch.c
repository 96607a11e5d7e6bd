/* dispatch.c — the traits tables and the runtime choice of kernels.
 *
 * Two tables indexed by type id: the scalar reference one (immutable) and the dispatched one,
 * filled once by kern_init() from cpuid (__builtin_cpu_supports) and never changed after.
 * DWELL_KERNEL_ISA=scalar|avx2|avx512 in the environment caps the choice (for debugging and
 * benchmarks); kern_force_scalar() switches kern_traits_get() to the reference table.
 * DWELL_F32_ACT=1 (or kern_set_f32_act) turns the quantized-activation path off. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/internal.h"

#define KERN_N_TYPES 31 /* type ids 0..30 (BF16 = 30) */

enum { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

static kern_traits g_ref[KERN_N_TYPES];
static kern_traits g_fast[KERN_N_TYPES];
static int g_isa = ISA_SCALAR;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_bool g_force_scalar;
static atomic_bool g_f32_act;

#define REF_ENTRY(T, t, bs, ts)                                                          \
    g_ref[CORE_TYPE_##T] = (kern_traits){CORE_TYPE_##T, #T, bs, ts, kern_to_float_##t##_ref, \
                                         kern_from_float_##t##_ref, kern_dot_f32_##t##_ref, \
                                         NULL, NULL, NULL, 0, 0, NULL, NULL}

/* The quantized-activation path of type T: act the Q8 block type (q8_0 / q8_K). */
#define ACT_ENTRY(tab, T, act, t)                                                         \
    do {                                                                                  \
        tab[CORE_TYPE_##T].quantize_act = kern_quantize_act_##act##_ref;                  \
        tab[CORE_TYPE_##T].dot_q = kern_dot_q_##t##_ref;                                  \
        tab[CORE_TYPE_##T].dot_q_x4 = kern_dot_q_x4_##t##_ref;                            \
        tab[CORE_TYPE_##T].act_blck_size = sizeof(kern_block_##act) == 34 ? KERN_QK : KERN_QK_K; \
        tab[CORE_TYPE_##T].act_type_size =                                                 \
            sizeof(kern_block_##act) == 34 ? KERN_ACT_Q8_0_SIZE : sizeof(kern_block_##act); \
    } while (0)

static void fill_ref(void)
{
    REF_ENTRY(F32, f32, 1, 4);
    REF_ENTRY(F16, f16, 1, 2);
    REF_ENTRY(BF16, bf16, 1, 2);
    REF_ENTRY(Q4_0, q4_0, KERN_QK, sizeof(kern_block_q4_0));
    REF_ENTRY(Q4_1, q4_1, KERN_QK, sizeof(kern_block_q4_1));
    REF_ENTRY(Q5_0, q5_0, KERN_QK, sizeof(kern_block_q5_0));
    REF_ENTRY(Q5_1, q5_1, KERN_QK, sizeof(kern_block_q5_1));
    REF_ENTRY(Q8_0, q8_0, KERN_QK, sizeof(kern_block_q8_0));
    REF_ENTRY(Q2_K, q2_K, KERN_QK_K, sizeof(kern_block_q2_K));
    REF_ENTRY(Q3_K, q3_K, KERN_QK_K, sizeof(kern_block_q3_K));
    REF_ENTRY(Q4_K, q4_K, KERN_QK_K, sizeof(kern_block_q4_K));
    REF_ENTRY(Q5_K, q5_K, KERN_QK_K, sizeof(kern_block_q5_K));
    REF_ENTRY(Q6_K, q6_K, KERN_QK_K, sizeof(kern_block_q6_K));
    g_ref[CORE_TYPE_F32].rows_dot = kern_rows_dot_f32_ref;
    g_ref[CORE_TYPE_F16].rows_dot = kern_rows_dot_f16_ref;
    g_ref[CORE_TYPE_F32].rows_wsum = kern_rows_wsum_f32_ref;
    g_ref[CORE_TYPE_F16].rows_wsum = kern_rows_wsum_f16_ref;
    ACT_ENTRY(g_ref, Q8_0, q8_0, q8_0);
    ACT_ENTRY(g_ref, Q4_0, q8_0, q4_0);
    ACT_ENTRY(g_ref, Q4_K, q8_K, q4_K);
    ACT_ENTRY(g_ref, Q6_K, q8_K, q6_K);
}

static int detect_isa(void)
{
    __builtin_cpu_init();
    int isa = ISA_SCALAR;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = ISA_AVX2;
    if (isa == ISA_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq")) {
        isa = ISA_AVX512;
    }
    const char *cap = getenv("DWELL_KERNEL_ISA");
    if (cap && strcmp(cap, "scalar") == 0) isa = ISA_SCALAR;
    else if (cap && strcmp(cap, "avx2") == 0 && isa > ISA_AVX2) isa = ISA_AVX2;
    return isa;
}

static void fill_fast(int isa)
{
    memcpy(g_fast, g_ref, sizeof g_fast);
    if (isa >= ISA_AVX2) {
        g_fast[CORE_TYPE_F32].dot_f32 = kern_dot_f32_f32_avx2;
        g_fast[CORE_TYPE_F16].dot_f32 = kern_dot_f32_f16_avx2;
        g_fast[CORE_TYPE_BF16].dot_f32 = kern_dot_f32_bf16_avx2;
        g_fast[CORE_TYPE_Q8_0].dot_f32 = kern_dot_f32_q8_0_avx2;
        g_fast[CORE_TYPE_Q4_0].dot_f32 = kern_dot_f32_q4_0_avx2;
        g_fast[CORE_TYPE_Q4_K].dot_f32 = kern_dot_f32_q4_K_avx2;
        g_fast[CORE_TYPE_Q6_K].dot_f32 = kern_dot_f32_q6_K_avx2;
        g_fast[CORE_TYPE_Q4_1].dot_f32 = kern_dot_f32_q4_1_avx2;
        g_fast[CORE_TYPE_Q5_0].dot_f32 = kern_dot_f32_q5_0_avx2;
        g_fast[CORE_TYPE_Q5_1].dot_f32 = kern_dot_f32_q5_1_avx2;
        g_fast[CORE_TYPE_Q5_K].dot_f32 = kern_dot_f32_q5_K_avx2;
        g_fast[CORE_TYPE_F16].to_float = kern_to_float_f16_avx2;
        g_fast[CORE_TYPE_Q8_0].dot_q = kern_dot_q_q8_0_avx2;
        g_fast[CORE_TYPE_Q4_0].dot_q = kern_dot_q_q4_0_avx2;
        g_fast[CORE_TYPE_Q4_K].dot_q = kern_dot_q_q4_K_avx2;
        g_fast[CORE_TYPE_Q6_K].dot_q = kern_dot_q_q6_K_avx2;
        g_fast[CORE_TYPE_F32].rows_dot = kern_rows_dot_f32_avx2;
        g_fast[CORE_TYPE_F16].rows_dot = kern_rows_dot_f16_avx2;
        g_fast[CORE_TYPE_F32].rows_wsum = kern_rows_wsum_f32_avx2;
        g_fast[CORE_TYPE_F16].rows_wsum = kern_rows_wsum_f16_avx2;
        g_fast[CORE_TYPE_Q8_0].dot_q_x4 = kern_dot_q_x4_q8_0_avx2;
        g_fast[CORE_TYPE_Q4_0].dot_q_x4 = kern_dot_q_x4_q4_0_avx2;
        g_fast[CORE_TYPE_Q4_K].dot_q_x4 = kern_dot_q_x4_q4_K_avx2;
        g_fast[CORE_TYPE_Q6_K].dot_q_x4 = kern_dot_q_x4_q6_K_avx2;
    }
    if (isa >= ISA_AVX512) {
        g_fast[CORE_TYPE_F32].dot_f32 = kern_dot_f32_f32_avx512;
        g_fast[CORE_TYPE_F16].dot_f32 = kern_dot_f32_f16_avx512;
        g_fast[CORE_TYPE_Q8_0].dot_f32 = kern_dot_f32_q8_0_avx512;
        g_fast[CORE_TYPE_Q4_0].dot_f32 = kern_dot_f32_q4_0_avx512;
        g_fast[CORE_TYPE_Q4_K].dot_f32 = kern_dot_f32_q4_K_avx512;
        g_fast[CORE_TYPE_Q6_K].dot_f32 = kern_dot_f32_q6_K_avx512;
    }
}

static void init_once(void)
{
    fill_ref();
    g_isa = detect_isa();
    const char *fa = getenv("DWELL_F32_ACT");
    if (fa && strcmp(fa, "1") == 0) atomic_store(&g_f32_act, true);
    fill_fast(g_isa);
}

void kern_init(void)
{
    pthread_once(&g_once, init_once);
}

const char *kern_isa(void)
{
    kern_init();
    if (atomic_load(&g_force_scalar)) return "scalar";
    return g_isa == ISA_AVX512 ? "avx512" : g_isa == ISA_AVX2 ? "avx2" : "scalar";
}

void kern_force_scalar(bool on)
{
    atomic_store(&g_force_scalar, on);
}

const kern_traits *kern_traits_get(int type)
{
    kern_init();
    if (type < 0 || type >= KERN_N_TYPES || !g_ref[type].dot_f32) return NULL;
    return atomic_load(&g_force_scalar) ? &g_ref[type] : &g_fast[type];
}

const kern_traits *kern_traits_ref(int type)
{
    kern_init();
    if (type < 0 || type >= KERN_N_TYPES || !g_ref[type].dot_f32) return NULL;
    return &g_ref[type];
}

void kern_set_f32_act(bool on)
{
    kern_init();
    atomic_store(&g_f32_act, on);
}

bool kern_f32_act(void)
{
    kern_init();
    return atomic_load(&g_f32_act);
}
