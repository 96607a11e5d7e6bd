/* test_gguf.c — the GGUF reader and writer: round trips, and every kind of malformed file
 * gives a FORMAT error naming what and where (never a crash). Files are built by hand with
 * the small byte builder below, or with the writer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "test.h"

// ---- byte builder ----

static void b_u32(core_buf *b, uint32_t v)
{
    core_buf_append(b, &v, 4);
}
static void b_u64(core_buf *b, uint64_t v)
{
    core_buf_append(b, &v, 8);
}
static void b_str(core_buf *b, const char *s)
{
    b_u64(b, strlen(s));
    core_buf_append(b, s, strlen(s));
}
static void b_hdr(core_buf *b, uint32_t version, uint64_t n_t, uint64_t n_kv)
{
    core_buf_append(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_t);
    b_u64(b, n_kv);
}
static void b_kv_u32(core_buf *b, const char *key, uint32_t v)
{
    b_str(b, key);
    b_u32(b, GGUF_VT_UINT32);
    b_u32(b, v);
}
static void b_kv_str(core_buf *b, const char *key, const char *v)
{
    b_str(b, key);
    b_u32(b, GGUF_VT_STRING);
    b_str(b, v);
}
static void b_tinfo(core_buf *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type,
                    uint64_t off)
{
    b_str(b, name);
    b_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++)
        b_u64(b, ne[i]);
    b_u32(b, type);
    b_u64(b, off);
}
static void b_pad(core_buf *b, size_t align)
{
    static const char z[256];
    while (b->len % align)
        core_buf_append(b, z, 1);
}
static void b_zeros(core_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        core_buf_append(b, "\0", 1);
}

/* Opens b, expecting a FORMAT error whose message contains want. */
static int open_fail(const core_buf *b, core_err *e)
{
    gguf_file *f = NULL;
    int rc = gguf_open_mem(&f, b->data, b->len, e);
    if (rc == CORE_OK) {
        gguf_close(f);
        snprintf(e->msg, sizeof e->msg, "(opened fine)");
    }
    return rc;
}

#define EXPECT_FORMAT(buf, want)                                                                   \
    do {                                                                                           \
        core_err e_;                                                                               \
        int rc_ = open_fail(buf, &e_);                                                             \
        CHECK_EQ_INT(rc_, CORE_FORMAT);                                                            \
        CHECK_CONTAINS(e_.msg, want);                                                              \
    } while (0)

/* One tensor file: a header with one kv, one tensor of F32 [8] at offset off. */
static void one_tensor(core_buf *b, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off,
                       size_t data_bytes)
{
    b_hdr(b, 3, 1, 1);
    b_kv_str(b, "general.architecture", "llama");
    b_tinfo(b, "blk.0.attn_q.weight", nd, ne, type, off);
    b_pad(b, 32);
    b_zeros(b, data_bytes);
}

static char g_tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", g_tmpdir, name);
    return p;
}

// ---- the writer's round trip ----

static int fill_iota(void *ctx, void *dst, size_t size, core_err *err)
{
    (void)err;
    float *f = dst;
    for (size_t i = 0; i < size / 4; i++)
        f[i] = (float)i * *(const float *)ctx;
    return CORE_OK;
}

/* Writes a file with every scalar type, string arrays, numeric arrays, alignment 64 and
 * three tensors (two borrowed, one filled). */
static int write_sample(const char *path, float *f32data, uint8_t *q8data, core_err *e)
{
    gguf_writer *w;
    if (gguf_writer_new(&w, e)) return -1;
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int64_t i64 = -5000000000LL;
    double f64 = 2.718281828459045;
    gguf_writer_set_u32(w, "general.alignment", 64);
    gguf_writer_set_val(w, "t.u8", GGUF_VT_UINT8, &u8);
    gguf_writer_set_val(w, "t.i8", GGUF_VT_INT8, &i8);
    gguf_writer_set_val(w, "t.u16", GGUF_VT_UINT16, &u16);
    gguf_writer_set_val(w, "t.i16", GGUF_VT_INT16, &i16);
    gguf_writer_set_u32(w, "t.u32", 4000000000u);
    gguf_writer_set_i32(w, "t.i32", -2000000000);
    gguf_writer_set_f32(w, "t.f32", 1.5f);
    gguf_writer_set_bool(w, "t.bool", true);
    gguf_writer_set_str(w, "t.str", "replaced");
    gguf_writer_set_str(w, "t.str", "héllo");
    gguf_writer_set_u64(w, "t.u64", 18000000000000000000ull);
    gguf_writer_set_val(w, "t.i64", GGUF_VT_INT64, &i64);
    gguf_writer_set_val(w, "t.f64", GGUF_VT_FLOAT64, &f64);
    gguf_writer_set_str_n(w, "t.nul", "a\0b", 3);
    const char *strs[] = {"a", "", "Ġthe"};
    gguf_writer_set_arr_str(w, "t.arr_str", strs, 3);
    int32_t ints[] = {3, -1, 7, 1 << 30};
    gguf_writer_set_arr(w, "t.arr_i32", GGUF_VT_INT32, ints, 4);
    float fl[] = {0.5f, -2.0f};
    gguf_writer_set_arr(w, "t.arr_f32", GGUF_VT_FLOAT32, fl, 2);
    gguf_writer_set_arr(w, "t.arr_empty", GGUF_VT_UINT8, NULL, 0);
    for (int i = 0; i < 40; i++)
        f32data[i] = (float)i - 20;
    for (int i = 0; i < 68; i++)
        q8data[i] = (uint8_t)(i * 37);
    int64_t ne_a[] = {8, 5}, ne_b[] = {64}, ne_c[] = {16, 2, 1, 2};
    static float scale = 0.25f;
    int rc = gguf_writer_add_tensor(w, "a", CORE_TYPE_F32, 2, ne_a, f32data, 160, e);
    if (!rc) rc = gguf_writer_add_tensor(w, "b.q8", CORE_TYPE_Q8_0, 1, ne_b, q8data, 68, e);
    if (!rc) rc = gguf_writer_add_tensor_fn(w, "c", CORE_TYPE_F32, 4, ne_c, fill_iota, &scale, e);
    if (!rc) rc = gguf_writer_write(w, path, e);
    gguf_writer_free(w);
    return rc;
}

TEST(gguf_writer_round_trips_every_value_type)
{
    float f32data[40];
    uint8_t q8data[68];
    core_err e;
    const char *path = tmp_path("sample.gguf");
    int rc = write_sample(path, f32data, q8data, &e);
    CHECK_MSG(rc == CORE_OK, "%s", e.msg);
    gguf_file *f;
    rc = gguf_open(&f, path, &e);
    CHECK_MSG(rc == CORE_OK, "%s", e.msg);
    if (rc) return;
    CHECK_EQ_INT(gguf_version(f), 3);
    CHECK_EQ_INT(gguf_alignment(f), 64);
    CHECK_EQ_INT(gguf_data_offset(f) % 64, 0);
    CHECK_EQ_INT(gguf_kv_count(f), 18);
    CHECK_EQ_STR(gguf_kv_key(f, 0), "general.alignment");
    uint64_t u;
    int64_t i;
    uint32_t u32;
    double d;
    bool b;
    gguf_str s;
    CHECK(gguf_get_u64(f, "t.u8", &u, NULL) == 0 && u == 200);
    CHECK(gguf_get_i64(f, "t.i8", &i, NULL) == 0 && i == -100);
    CHECK(gguf_get_u32(f, "t.u16", &u32, NULL) == 0 && u32 == 60000);
    CHECK(gguf_get_i64(f, "t.i16", &i, NULL) == 0 && i == -30000);
    CHECK(gguf_get_u32(f, "t.u32", &u32, NULL) == 0 && u32 == 4000000000u);
    CHECK(gguf_get_i64(f, "t.i32", &i, NULL) == 0 && i == -2000000000);
    CHECK(gguf_get_float(f, "t.f32", &d, NULL) == 0 && d == 1.5);
    CHECK(gguf_get_bool(f, "t.bool", &b, NULL) == 0 && b);
    CHECK(gguf_get_str(f, "t.str", &s, NULL) == 0 && gguf_str_eq(s, "héllo"));
    CHECK(gguf_get_u64(f, "t.u64", &u, NULL) == 0 && u == 18000000000000000000ull);
    CHECK(gguf_get_i64(f, "t.i64", &i, NULL) == 0 && i == -5000000000LL);
    CHECK(gguf_get_float(f, "t.f64", &d, NULL) == 0 && d == 2.718281828459045);
    CHECK(gguf_get_str(f, "t.nul", &s, NULL) == 0 && s.len == 3 && memcmp(s.ptr, "a\0b", 3) == 0);
    const gguf_array *a;
    CHECK(gguf_get_array(f, "t.arr_str", &a, NULL) == 0 && a->type == GGUF_VT_STRING && a->n == 3 &&
          gguf_str_eq(a->strs[1], "") && gguf_str_eq(a->strs[2], "Ġthe"));
    CHECK(gguf_get_array(f, "t.arr_i32", &a, NULL) == 0 && a->n == 4 &&
          gguf_array_int(a, 1) == -1 && gguf_array_int(a, 3) == 1 << 30);
    CHECK(gguf_get_array(f, "t.arr_f32", &a, NULL) == 0 && gguf_array_float(a, 1) == -2.0);
    CHECK(gguf_get_array(f, "t.arr_empty", &a, NULL) == 0 && a->n == 0);
    CHECK_EQ_INT(gguf_tensor_count(f), 3);
    const gguf_tensor *t = gguf_tensor_find(f, "a");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 8 && t->ne[1] == 5 && t->ne[2] == 1);
    CHECK(t && t->size == 160 && memcmp(t->data, f32data, 160) == 0);
    t = gguf_tensor_find(f, "b.q8");
    CHECK(t && t->type == CORE_TYPE_Q8_0 && t->size == 68 && memcmp(t->data, q8data, 68) == 0);
    CHECK(t && t->offset % 64 == 0);
    t = gguf_tensor_find(f, "c");
    CHECK(t && t->n_dims == 4 && t->ne[3] == 2 && t->size == 256);
    CHECK(t && ((const float *)t->data)[63] == 63 * 0.25f);
    CHECK(gguf_tensor_find(f, "nope") == NULL);
    CHECK(gguf_kv_find(f, "nope") < 0);
    gguf_close(f);
}

TEST(gguf_getters_check_types_and_ranges)
{
    float f32data[40];
    uint8_t q8data[68];
    core_err e;
    const char *path = tmp_path("getters.gguf");
    CHECK(write_sample(path, f32data, q8data, &e) == CORE_OK);
    gguf_file *f;
    if (gguf_open(&f, path, &e)) return;
    uint32_t u32;
    int64_t i;
    uint64_t u;
    bool b;
    CHECK_EQ_INT(gguf_get_u32(f, "missing", &u32, &e), CORE_NOTFOUND);
    CHECK_EQ_INT(gguf_get_u32(f, "t.str", &u32, &e), CORE_FORMAT);
    CHECK_CONTAINS(e.msg, "t.str has type STRING");
    CHECK_EQ_INT(gguf_get_u64(f, "t.i8", &u, &e), CORE_FORMAT);
    CHECK_CONTAINS(e.msg, "negative");
    CHECK_EQ_INT(gguf_get_u32(f, "t.u64", &u32, &e), CORE_FORMAT);
    CHECK_CONTAINS(e.msg, "does not fit");
    CHECK_EQ_INT(gguf_get_i64(f, "t.u64", &i, &e), CORE_FORMAT);
    CHECK_EQ_INT(gguf_get_bool(f, "t.u8", &b, &e), CORE_FORMAT);
    gguf_close(f);
}

TEST(gguf_writer_rejects_bad_tensors)
{
    gguf_writer *w;
    core_err e;
    CHECK(gguf_writer_new(&w, &e) == CORE_OK);
    float x[64] = {0};
    int64_t ne[] = {30};
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "q", CORE_TYPE_Q8_0, 1, ne, x, 34, &e), CORE_INVALID);
    CHECK_CONTAINS(e.msg, "block size");
    ne[0] = 16;
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "f", CORE_TYPE_F32, 1, ne, x, 60, &e), CORE_INVALID);
    CHECK_CONTAINS(e.msg, "need 64");
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "f", CORE_TYPE_F32, 1, ne, x, 64, &e), CORE_OK);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "f", CORE_TYPE_F32, 1, ne, x, 64, &e), CORE_INVALID);
    CHECK_CONTAINS(e.msg, "duplicate tensor f");
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "g", 99, 1, ne, x, 64, &e), CORE_INVALID);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "g", CORE_TYPE_F32, 5, ne, x, 64, &e), CORE_INVALID);
    gguf_writer_set_u32(w, "general.alignment", 48);
    CHECK_EQ_INT(gguf_writer_write(w, tmp_path("bad.gguf"), &e), CORE_INVALID);
    CHECK_CONTAINS(e.msg, "power of two");
    CHECK(access(tmp_path("bad.gguf"), F_OK) != 0);
    gguf_writer_free(w);
}

static int fill_fail(void *ctx, void *dst, size_t size, core_err *err)
{
    (void)ctx;
    (void)dst;
    (void)size;
    return core_err_set(err, CORE_CANCELLED, "producer gave up");
}

TEST(gguf_writer_fill_error_leaves_no_file)
{
    gguf_writer *w;
    core_err e;
    CHECK(gguf_writer_new(&w, &e) == CORE_OK);
    int64_t ne[] = {32, 2};
    CHECK(gguf_writer_add_tensor_fn(w, "t", CORE_TYPE_Q8_0, 2, ne, fill_fail, NULL, &e) == 0);
    CHECK_EQ_INT(gguf_writer_write(w, tmp_path("fail.gguf"), &e), CORE_CANCELLED);
    CHECK_CONTAINS(e.msg, "producer gave up");
    CHECK(access(tmp_path("fail.gguf"), F_OK) != 0);
    /* Nor a temporary file beside it. */
    DIR *d = opendir(g_tmpdir);
    struct dirent *de;
    int n_tmp = 0;
    while (d && (de = readdir(d)))
        n_tmp += strstr(de->d_name, "fail.gguf") != NULL;
    if (d) closedir(d);
    CHECK_EQ_INT(n_tmp, 0);
    gguf_writer_free(w);
}

/* A hand-made file with nested arrays (2 levels) of every kind, copied by copy_kv. */
TEST(gguf_nested_arrays_round_trip_through_copy_kv)
{
    core_buf b;
    core_buf_init(&b);
    b_hdr(&b, 2, 0, 3);
    b_kv_str(&b, "tokenizer.ggml.model", "gpt2");
    b_str(&b, "tokenizer.nested");
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, GGUF_VT_ARRAY); /* outer: 2 arrays */
    b_u64(&b, 2);
    b_u32(&b, GGUF_VT_STRING); /* [ "x", "yz" ] */
    b_u64(&b, 2);
    b_str(&b, "x");
    b_str(&b, "yz");
    b_u32(&b, GGUF_VT_ARRAY); /* [ [1,2,3] ] */
    b_u64(&b, 1);
    b_u32(&b, GGUF_VT_UINT16);
    b_u64(&b, 3);
    uint16_t v16[] = {1, 2, 65535};
    core_buf_append(&b, v16, 6);
    b_kv_u32(&b, "other.key", 5);
    gguf_file *src;
    core_err e;
    int rc = gguf_open_mem(&src, b.data, b.len, &e);
    CHECK_MSG(rc == CORE_OK, "%s", e.msg);
    if (rc) goto out;
    CHECK_EQ_INT(gguf_version(src), 2);
    gguf_writer *w;
    gguf_writer_new(&w, NULL);
    CHECK(gguf_writer_copy_kv(w, src, "tokenizer.", &e) == CORE_OK);
    CHECK(gguf_writer_write(w, tmp_path("nested.gguf"), &e) == CORE_OK);
    gguf_writer_free(w);
    gguf_close(src);
    gguf_file *f;
    rc = gguf_open(&f, tmp_path("nested.gguf"), &e);
    CHECK_MSG(rc == CORE_OK, "%s", e.msg);
    if (rc) goto out;
    CHECK_EQ_INT(gguf_kv_count(f), 2);
    CHECK(gguf_kv_find(f, "other.key") < 0);
    const gguf_array *a;
    CHECK(gguf_get_array(f, "tokenizer.nested", &a, NULL) == CORE_OK);
    CHECK(a->type == GGUF_VT_ARRAY && a->n == 2);
    CHECK(a->arrs[0].type == GGUF_VT_STRING && a->arrs[0].n == 2 &&
          gguf_str_eq(a->arrs[0].strs[1], "yz"));
    const gguf_array *inner = &a->arrs[1].arrs[0];
    CHECK(a->arrs[1].n == 1 && inner->type == GGUF_VT_UINT16 && inner->n == 3 &&
          gguf_array_int(inner, 2) == 65535);
    gguf_close(f);
out:
    core_buf_deinit(&b);
}

// ---- truncation ----

TEST(gguf_rejects_every_truncation)
{
    float f32data[40];
    uint8_t q8data[68];
    core_err e;
    const char *path = tmp_path("trunc.gguf");
    CHECK(write_sample(path, f32data, q8data, &e) == CORE_OK);
    char *data;
    size_t len;
    if (core_file_read(path, SIZE_MAX, &data, &len, &e)) return;
    gguf_file *f;
    CHECK(gguf_open_mem(&f, data, len, &e) == CORE_OK);
    const gguf_tensor *last = gguf_tensor_at(f, 2);
    size_t end = gguf_data_offset(f) + last->offset + last->size;
    gguf_close(f);
    int n_bad = 0;
    for (size_t n = 0; n < end; n++) {
        /* A fresh heap copy each time so ASan sees any read past the end. */
        char *cut = malloc(n ? n : 1);
        memcpy(cut, data, n);
        int rc = gguf_open_mem(&f, cut, n, &e);
        if (rc == CORE_OK) gguf_close(f);
        if (rc != CORE_FORMAT && n_bad++ < 5) printf("  cut at %zu: rc %d %s\n", n, rc, e.msg);
        free(cut);
    }
    CHECK_EQ_INT(n_bad, 0);
    /* Messages at the section boundaries. */
    gguf_open_mem(&f, data, 10, &e);
    CHECK_CONTAINS(e.msg, "header truncated");
    gguf_open_mem(&f, data, 300, &e); /* past the count checks, inside the kvs */
    CHECK_CONTAINS(e.msg, "runs past the end of the file");
    gguf_open_mem(&f, data, end - 1, &e);
    CHECK_CONTAINS(e.msg, "tensor c: data ends 1 bytes past the end of the file");
    free(data);
}

TEST(gguf_truncated_in_tensor_table_names_the_tensor)
{
    core_buf b;
    core_buf_init(&b);
    uint64_t ne[] = {8, 4};
    one_tensor(&b, 2, ne, CORE_TYPE_F32, 0, 128);
    size_t header_end = 24 + 8 + 20 + 4 + 8 + 5;
    core_buf cut = b;
    cut.len = header_end + 8 + 19 + 4 + 8; /* cut inside the dims */
    EXPECT_FORMAT(&cut, "tensor blk.0.attn_q.weight: entry at byte offset");
    cut.len = header_end + 4;
    EXPECT_FORMAT(&cut, "tensor 0 at byte offset");
    cut.len = b.len - 128; /* data section missing */
    EXPECT_FORMAT(&cut, "data ends 128 bytes past the end of the file");
    core_buf_deinit(&b);
}

// ---- header ----

TEST(gguf_rejects_bad_magic)
{
    core_buf b;
    core_buf_init(&b);
    core_buf_append(&b, "GGML", 4);
    b_u32(&b, 3);
    b_u64(&b, 0);
    b_u64(&b, 0);
    EXPECT_FORMAT(&b, "not a GGUF file");
    core_buf_reset(&b);
    EXPECT_FORMAT(&b, "not a GGUF file");
    core_buf_deinit(&b);
}

TEST(gguf_rejects_version_1_and_4)
{
    core_buf b;
    core_buf_init(&b);
    b_hdr(&b, 1, 0, 0);
    EXPECT_FORMAT(&b, "version 1 is not supported");
    core_buf_reset(&b);
    b_hdr(&b, 4, 0, 0);
    EXPECT_FORMAT(&b, "version 4 is not supported");
    core_buf_reset(&b);
    b_hdr(&b, 3u << 24, 0, 0);
    EXPECT_FORMAT(&b, "big-endian");
    core_buf_reset(&b);
    b_hdr(&b, 2, 0, 0);
    gguf_file *f;
    CHECK(gguf_open_mem(&f, b.data, b.len, NULL) == CORE_OK);
    gguf_close(f);
    core_buf_deinit(&b);
}

TEST(gguf_rejects_absurd_counts)
{
    core_buf b;
    core_buf_init(&b);
    b_hdr(&b, 3, 0, (uint64_t)1 << 62);
    b_kv_u32(&b, "a", 1);
    EXPECT_FORMAT(&b, "metadata count 4611686018427387904 is impossible");
    core_buf_reset(&b);
    b_hdr(&b, 3, UINT64_MAX, 1);
    b_kv_u32(&b, "a", 1);
    EXPECT_FORMAT(&b, "tensor count 18446744073709551615 is impossible");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 3); /* 3 kvs promised, room for 2 */
    b_kv_u32(&b, "a", 1);
    b_kv_u32(&b, "b", 1);
    b_zeros(&b, 14);
    EXPECT_FORMAT(&b, "key 2 at byte offset");
    core_buf_deinit(&b);
}

// ---- metadata ----

TEST(gguf_rejects_absurd_string_and_array_lengths)
{
    core_buf b;
    core_buf_init(&b);
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, (uint64_t)1 << 60);
    core_buf_append(&b, "key.name", 8);
    b_u32(&b, GGUF_VT_UINT32);
    b_u32(&b, 0);
    EXPECT_FORMAT(&b, "key 0 at byte offset 24 runs past the end of the file");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "general.name");
    b_u32(&b, GGUF_VT_STRING);
    b_u64(&b, UINT64_MAX);
    b_zeros(&b, 16);
    EXPECT_FORMAT(&b, "key general.name: string value at byte offset 48 runs past");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "tokenizer.ggml.tokens");
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, GGUF_VT_STRING);
    b_u64(&b, (uint64_t)1 << 40);
    b_str(&b, "a");
    EXPECT_FORMAT(&b, "key tokenizer.ggml.tokens: array of 1099511627776 STRING elements");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "tokenizer.ggml.scores");
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, GGUF_VT_FLOAT32);
    b_u64(&b, 5);
    b_zeros(&b, 16);
    EXPECT_FORMAT(&b, "does not fit in the 16 bytes left");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "tokenizer.ggml.tokens");
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, GGUF_VT_STRING);
    b_u64(&b, 2);
    b_str(&b, "a");
    b_u64(&b, 1000);
    b_zeros(&b, 8);
    EXPECT_FORMAT(&b, "key tokenizer.ggml.tokens: string 1 of the array");
    core_buf_deinit(&b);
}

TEST(gguf_rejects_deep_nesting)
{
    core_buf b;
    core_buf_init(&b);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "deep");
    b_u32(&b, GGUF_VT_ARRAY);
    for (int i = 0; i < 100; i++) {
        b_u32(&b, GGUF_VT_ARRAY);
        b_u64(&b, 1);
    }
    b_u32(&b, GGUF_VT_UINT8);
    b_u64(&b, 0);
    EXPECT_FORMAT(&b, "key deep: arrays nested more than 8 deep");
    core_buf_deinit(&b);
}

TEST(gguf_rejects_bad_value_types)
{
    core_buf b;
    core_buf_init(&b);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, 13);
    b_u64(&b, 0);
    EXPECT_FORMAT(&b, "key k: unknown value type 13");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, 77);
    b_u64(&b, 0);
    EXPECT_FORMAT(&b, "key k: unknown array element type 77");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, GGUF_VT_UINT64);
    b_u32(&b, 0);
    EXPECT_FORMAT(&b, "key k: UINT64 value at byte offset");
    core_buf_deinit(&b);
}

TEST(gguf_rejects_duplicate_empty_and_nul_keys)
{
    core_buf b;
    core_buf_init(&b);
    b_hdr(&b, 3, 0, 2);
    b_kv_u32(&b, "llama.block_count", 1);
    b_kv_u32(&b, "llama.block_count", 2);
    EXPECT_FORMAT(&b, "duplicate key llama.block_count");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 3);
    core_buf_append(&b, "a\0b", 3);
    b_u32(&b, GGUF_VT_UINT8);
    b_zeros(&b, 1);
    EXPECT_FORMAT(&b, "contains a NUL byte");
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "", 1);
    EXPECT_FORMAT(&b, "key 0 at byte offset 24 is empty");
    core_buf_deinit(&b);
}

TEST(gguf_rejects_bad_general_alignment)
{
    static const uint32_t bad[] = {0, 3, 48, 1u << 31};
    core_buf b;
    core_buf_init(&b);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        core_buf_reset(&b);
        b_hdr(&b, 3, 0, 1);
        b_kv_u32(&b, "general.alignment", bad[i]);
        EXPECT_FORMAT(&b, "general.alignment");
        EXPECT_FORMAT(&b, "not a power of two");
    }
    core_buf_reset(&b);
    b_hdr(&b, 3, 0, 1);
    b_kv_str(&b, "general.alignment", "32");
    EXPECT_FORMAT(&b, "general.alignment has type STRING");
    /* A valid one moves the data section. */
    core_buf_reset(&b);
    b_hdr(&b, 3, 1, 1);
    b_kv_u32(&b, "general.alignment", 256);
    uint64_t ne[] = {4};
    b_tinfo(&b, "t", 1, ne, CORE_TYPE_F32, 0);
    b_pad(&b, 256);
    b_zeros(&b, 16);
    gguf_file *f;
    core_err e;
    CHECK(gguf_open_mem(&f, b.data, b.len, &e) == CORE_OK);
    if (f) {
        CHECK_EQ_INT(gguf_data_offset(f), 256);
        CHECK_EQ_INT(gguf_alignment(f), 256);
        gguf_close(f);
    }
    core_buf_deinit(&b);
}

// ---- tensors ----

TEST(gguf_rejects_bad_dims)
{
    core_buf b;
    core_buf_init(&b);
    uint64_t ne[] = {8, 1, 1, 1, 1};
    one_tensor(&b, 0, ne, CORE_TYPE_F32, 0, 32);
    EXPECT_FORMAT(&b, "tensor blk.0.attn_q.weight: 0 dimensions (must be 1 to 4)");
    core_buf_reset(&b);
    one_tensor(&b, 5, ne, CORE_TYPE_F32, 0, 32);
    EXPECT_FORMAT(&b, "tensor blk.0.attn_q.weight: 5 dimensions");
    core_buf_reset(&b);
    uint64_t zero[] = {8, 0};
    one_tensor(&b, 2, zero, CORE_TYPE_F32, 0, 32);
    EXPECT_FORMAT(&b, "dimension 1 is 0");
    core_buf_reset(&b);
    uint64_t neg[] = {8, UINT64_MAX};
    one_tensor(&b, 2, neg, CORE_TYPE_F32, 0, 32);
    EXPECT_FORMAT(&b, "dimension 1 is -1");
    core_buf_reset(&b);
    uint64_t huge[] = {1u << 31, 1u << 31, 1u << 31, 4};
    one_tensor(&b, 4, huge, CORE_TYPE_F32, 0, 32);
    EXPECT_FORMAT(&b, "element count overflows");
    core_buf_reset(&b);
    uint64_t big[] = {1u << 31, 1u << 31};
    one_tensor(&b, 2, big, CORE_TYPE_F32, 0, 32);
    EXPECT_FORMAT(&b, "byte size overflows");
    core_buf_reset(&b);
    uint64_t odd[] = {40, 2};
    one_tensor(&b, 2, odd, CORE_TYPE_Q4_K, 0, 4096);
    EXPECT_FORMAT(&b, "row length 40 is not a multiple of the Q4_K block size 256");
    core_buf_deinit(&b);
}

TEST(gguf_rejects_unknown_tensor_type)
{
    core_buf b;
    core_buf_init(&b);
    uint64_t ne[] = {32};
    one_tensor(&b, 1, ne, 99, 0, 256);
    EXPECT_FORMAT(&b, "tensor blk.0.attn_q.weight: unknown type 99");
    core_buf_reset(&b);
    one_tensor(&b, 1, ne, 0xffffffffu, 0, 256);
    EXPECT_FORMAT(&b, "unknown type 4294967295");
    core_buf_deinit(&b);
}

TEST(gguf_rejects_offsets_past_end_and_misaligned)
{
    core_buf b;
    core_buf_init(&b);
    uint64_t ne[] = {8, 4};
    one_tensor(&b, 2, ne, CORE_TYPE_F32, 4096, 128);
    EXPECT_FORMAT(&b, "tensor blk.0.attn_q.weight: data ends 4096 bytes past the end");
    core_buf_reset(&b);
    one_tensor(&b, 2, ne, CORE_TYPE_F32, UINT64_MAX - 31, 128);
    EXPECT_FORMAT(&b, "past the end of the file");
    core_buf_reset(&b);
    one_tensor(&b, 2, ne, CORE_TYPE_F32, 16, 256);
    EXPECT_FORMAT(&b, "offset 16 is not a multiple of the alignment 32");
    core_buf_deinit(&b);
}

TEST(gguf_rejects_duplicate_and_overlapping_tensors)
{
    core_buf b;
    core_buf_init(&b);
    uint64_t ne[] = {16};
    b_hdr(&b, 3, 2, 0);
    b_tinfo(&b, "output.weight", 1, ne, CORE_TYPE_F32, 0);
    b_tinfo(&b, "output.weight", 1, ne, CORE_TYPE_F32, 64);
    b_pad(&b, 32);
    b_zeros(&b, 128);
    EXPECT_FORMAT(&b, "duplicate tensor output.weight");
    core_buf_reset(&b);
    b_hdr(&b, 3, 3, 0);
    b_tinfo(&b, "a", 1, ne, CORE_TYPE_F32, 128);
    b_tinfo(&b, "b", 1, ne, CORE_TYPE_F32, 0);
    b_tinfo(&b, "c", 1, ne, CORE_TYPE_F32, 32); /* b is 64 bytes: [0, 64) */
    b_pad(&b, 32);
    b_zeros(&b, 192);
    EXPECT_FORMAT(&b, "tensor c: data at offset 32 overlaps tensor b");
    core_buf_reset(&b);
    b_hdr(&b, 3, 1, 0);
    b_u64(&b, 0);
    b_u32(&b, 1);
    b_u64(&b, 4);
    b_u32(&b, 0);
    b_u64(&b, 0);
    b_pad(&b, 32);
    b_zeros(&b, 16);
    EXPECT_FORMAT(&b, "tensor 0 at byte offset 24: empty name");
    core_buf_deinit(&b);
}

// ---- real files ----

TEST(gguf_opens_every_shared_model)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", test_shared_path("models"));
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return;
    int n_models = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".gguf") != 0) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        gguf_file *f;
        core_err e;
        int rc = gguf_open(&f, path, &e);
        CHECK_MSG(rc == CORE_OK, "%s: %s", de->d_name, e.msg);
        if (rc) continue;
        n_models++;
        gguf_str arch;
        CHECK_MSG(gguf_get_str(f, "general.architecture", &arch, NULL) == CORE_OK, "%s",
                  de->d_name);
        CHECK(gguf_tensor_count(f) >= 10);
        CHECK(gguf_tensor_find(f, "token_embd.weight") != NULL);
        CHECK(gguf_tensor_find(f, "blk.0.attn_q.weight") != NULL);
        const gguf_array *toks;
        CHECK(gguf_get_array(f, "tokenizer.ggml.tokens", &toks, NULL) == CORE_OK &&
              toks->type == GGUF_VT_STRING && toks->n > 200);
        unsigned seen = 0;
        for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            CHECK(core_type_get(t->type) != NULL);
            CHECK((const char *)t->data + t->size <=
                  (const char *)gguf_base(f) + gguf_file_size(f));
            if (t->type < 32) seen |= 1u << t->type;
            if (strstr(t->name, "_norm.weight")) CHECK(t->type == CORE_TYPE_F32);
        }
        if (strcmp(de->d_name, "tiny-llama256-mixed.gguf") == 0) {
            unsigned want = 1u << CORE_TYPE_Q6_K | 1u << CORE_TYPE_Q4_K | 1u << CORE_TYPE_Q8_0 |
                            1u << CORE_TYPE_Q4_0 | 1u << CORE_TYPE_F16 | 1u << CORE_TYPE_BF16;
            CHECK_EQ_INT(seen & want, want);
        }
        if (strcmp(de->d_name, "tiny-qwen2-q8_0.gguf") == 0) {
            CHECK(gguf_str_eq(arch, "qwen2"));
            CHECK(gguf_tensor_find(f, "blk.0.attn_q.bias") != NULL);
        }
        gguf_close(f);
    }
    closedir(d);
    CHECK(n_models >= 10);
}

TEST(gguf_open_reports_missing_file)
{
    gguf_file *f = NULL;
    core_err e;
    CHECK_EQ_INT(gguf_open(&f, tmp_path("does-not-exist.gguf"), &e), CORE_NOTFOUND);
    CHECK_CONTAINS(e.msg, "does-not-exist.gguf");
    CHECK_EQ_INT(gguf_open(&f, g_tmpdir, &e), CORE_IO);
    CHECK(f == NULL);
}

int main(void)
{
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/dwell-test-gguf-XXXXXX");
    if (!mkdtemp(g_tmpdir)) return 1;
    RUN(gguf_writer_round_trips_every_value_type);
    RUN(gguf_getters_check_types_and_ranges);
    RUN(gguf_writer_rejects_bad_tensors);
    RUN(gguf_writer_fill_error_leaves_no_file);
    RUN(gguf_nested_arrays_round_trip_through_copy_kv);
    RUN(gguf_rejects_every_truncation);
    RUN(gguf_truncated_in_tensor_table_names_the_tensor);
    RUN(gguf_rejects_bad_magic);
    RUN(gguf_rejects_version_1_and_4);
    RUN(gguf_rejects_absurd_counts);
    RUN(gguf_rejects_absurd_string_and_array_lengths);
    RUN(gguf_rejects_deep_nesting);
    RUN(gguf_rejects_bad_value_types);
    RUN(gguf_rejects_duplicate_empty_and_nul_keys);
    RUN(gguf_rejects_bad_general_alignment);
    RUN(gguf_rejects_bad_dims);
    RUN(gguf_rejects_unknown_tensor_type);
    RUN(gguf_rejects_offsets_past_end_and_misaligned);
    RUN(gguf_rejects_duplicate_and_overlapping_tensors);
    RUN(gguf_opens_every_shared_model);
    RUN(gguf_open_reports_missing_file);
    const char *names[] = {"sample.gguf", "getters.gguf", "nested.gguf", "trunc.gguf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp_path(names[i]));
    rmdir(g_tmpdir);
    return test_summary();
}
