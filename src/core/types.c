/* types.c — the tensor type table (GGML type ids): names and block geometry.
 *
 * Shared by gguf/ (to size tensors) and kernels/ (whose traits add the arithmetic).
 * ref: ggml.h enum ggml_type, and the block structs of ggml-common.h. */
#include <string.h>
#include <strings.h>

#include "core/core.h"

static const core_type_info g_types[] = {
    {CORE_TYPE_F32, "F32", 1, 4},
    {CORE_TYPE_F16, "F16", 1, 2},
    {CORE_TYPE_Q4_0, "Q4_0", 32, 18},
    {CORE_TYPE_Q4_1, "Q4_1", 32, 20},
    {CORE_TYPE_Q5_0, "Q5_0", 32, 22},
    {CORE_TYPE_Q5_1, "Q5_1", 32, 24},
    {CORE_TYPE_Q8_0, "Q8_0", 32, 34},
    {CORE_TYPE_Q8_1, "Q8_1", 32, 36},
    {CORE_TYPE_Q2_K, "Q2_K", 256, 84},
    {CORE_TYPE_Q3_K, "Q3_K", 256, 110},
    {CORE_TYPE_Q4_K, "Q4_K", 256, 144},
    {CORE_TYPE_Q5_K, "Q5_K", 256, 176},
    {CORE_TYPE_Q6_K, "Q6_K", 256, 210},
    {CORE_TYPE_Q8_K, "Q8_K", 256, 292},
    {CORE_TYPE_I8, "I8", 1, 1},
    {CORE_TYPE_I16, "I16", 1, 2},
    {CORE_TYPE_I32, "I32", 1, 4},
    {CORE_TYPE_I64, "I64", 1, 8},
    {CORE_TYPE_F64, "F64", 1, 8},
    {CORE_TYPE_BF16, "BF16", 1, 2},
};

const core_type_info *core_type_get(int type)
{
    for (size_t i = 0; i < sizeof g_types / sizeof g_types[0]; i++) {
        if (g_types[i].type == type) return &g_types[i];
    }
    return NULL;
}

const core_type_info *core_type_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof g_types / sizeof g_types[0]; i++) {
        if (strcasecmp(g_types[i].name, name) == 0) return &g_types[i];
    }
    return NULL;
}

bool core_type_row_size(int type, int64_t ne0, size_t *out)
{
    const core_type_info *t = core_type_get(type);
    if (!t || ne0 < 0 || ne0 % t->blck_size != 0) return false;
    return core_mul_size((size_t)(ne0 / t->blck_size), t->type_size, out);
}
