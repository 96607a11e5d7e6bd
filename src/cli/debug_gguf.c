/* debug_gguf.c — `dwell debug gguf FILE [--json]`: a GGUF file's header, metadata and tensor
 * table, as text for people or as one JSON object for scripts and tests. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/internal.h"
#include "gguf/gguf.h"

/* Arrays longer than this are summarized: in JSON as {"type": ..., "n": ...}; as text by
 * their first few elements. */
#define CLI_GGUF_JSON_MAX_ARRAY 16
#define CLI_GGUF_TEXT_ARRAY_HEAD 8
#define CLI_GGUF_TEXT_MAX_STR 120

static const char g_usage[] =
    "Usage: dwell debug gguf FILE [--json]\n"
    "\n"
    "Prints a GGUF file's version, alignment, metadata and tensor table (name, type, shape,\n"
    "offset in the data section, bytes). Long arrays are abbreviated: as text by their first\n"
    "8 elements; with --json, arrays of more than 16 elements are shown as\n"
    "{\"type\": ELEMENT_TYPE, \"n\": COUNT} instead of their elements.\n"
    "\n"
    "Options:\n"
    "  --json    print one JSON object: {\"version\", \"alignment\", \"data_offset\",\n"
    "            \"file_size\", \"metadata\": {key: value}, \"tensors\": [{\"name\", \"type\",\n"
    "            \"shape\", \"offset\", \"bytes\"}]}\n";

// ---- text ----

static void print_escaped(const char *s, uint64_t len, uint64_t max)
{
    putchar('"');
    for (uint64_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (len > max) printf("... (%" PRIu64 " bytes)", len);
}

static void print_array_elem(const gguf_array *a, uint64_t i)
{
    switch (a->type) {
    case GGUF_VT_STRING:
        print_escaped(a->strs[i].ptr, a->strs[i].len, 40);
        break;
    case GGUF_VT_ARRAY:
        printf("[%s × %" PRIu64 "]", gguf_vtype_name(a->arrs[i].type), a->arrs[i].n);
        break;
    case GGUF_VT_FLOAT32:
    case GGUF_VT_FLOAT64:
        printf("%g", gguf_array_float(a, i));
        break;
    case GGUF_VT_BOOL:
        fputs(gguf_array_int(a, i) ? "true" : "false", stdout);
        break;
    case GGUF_VT_UINT64:
        printf("%" PRIu64, (uint64_t)gguf_array_int(a, i));
        break;
    default:
        printf("%" PRId64, gguf_array_int(a, i));
        break;
    }
}

static void print_value(const gguf_file *f, int64_t i)
{
    gguf_scalar v;
    const gguf_array *a;
    gguf_kv_value(f, i, &v, &a);
    int t = gguf_kv_type(f, i);
    switch (t) {
    case GGUF_VT_STRING:
        print_escaped(v.s.ptr, v.s.len, CLI_GGUF_TEXT_MAX_STR);
        break;
    case GGUF_VT_ARRAY:
        printf("[%s × %" PRIu64 "] [", gguf_vtype_name(a->type), a->n);
        for (uint64_t k = 0; k < a->n && k < CLI_GGUF_TEXT_ARRAY_HEAD; k++) {
            if (k) fputs(", ", stdout);
            print_array_elem(a, k);
        }
        fputs(a->n > CLI_GGUF_TEXT_ARRAY_HEAD ? ", ...]" : "]", stdout);
        break;
    case GGUF_VT_FLOAT32:
    case GGUF_VT_FLOAT64:
        printf("%g", v.f);
        break;
    case GGUF_VT_BOOL:
        fputs(v.b ? "true" : "false", stdout);
        break;
    case GGUF_VT_UINT8:
    case GGUF_VT_UINT16:
    case GGUF_VT_UINT32:
    case GGUF_VT_UINT64:
        printf("%" PRIu64, v.u);
        break;
    default:
        printf("%" PRId64, v.i);
        break;
    }
}

static void print_text(const gguf_file *f, const char *path)
{
    printf("file: %s\n", path);
    printf("version: %" PRIu32 "  alignment: %zu  data offset: %zu  size: %zu bytes\n",
           gguf_version(f), gguf_alignment(f), gguf_data_offset(f), gguf_file_size(f));
    printf("\nmetadata (%" PRId64 " keys):\n", gguf_kv_count(f));
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        printf("  %-44s %-8s ", gguf_kv_key(f, i), gguf_vtype_name(gguf_kv_type(f, i)));
        print_value(f, i);
        putchar('\n');
    }
    printf("\ntensors (%" PRId64 "):\n", gguf_tensor_count(f));
    printf("  %-36s %-6s %-24s %12s %12s\n", "NAME", "TYPE", "SHAPE", "OFFSET", "BYTES");
    size_t total = 0;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[96];
        size_t n = 0;
        for (int d = 0; d < t->n_dims; d++) {
            n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%" PRId64, d ? " x " : "",
                                  t->ne[d]);
        }
        printf("  %-36s %-6s %-24s %12" PRIu64 " %12zu\n", t->name, core_type_get(t->type)->name,
               shape, t->offset, t->size);
        total += t->size;
    }
    printf("  total tensor bytes: %zu\n", total);
}

// ---- JSON ----

/* A JSON string of len bytes; bytes that are not valid UTF-8 become U+FFFD. */
static json_t *json_bytes(const char *s, uint64_t len)
{
    json_t *j = json_stringn(s, (size_t)len);
    if (j) return j;
    core_buf b;
    core_buf_init(&b);
    for (uint64_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        json_t *one = n && i + n <= len ? json_stringn(s + i, n) : NULL;
        if (one) {
            json_decref(one);
            core_buf_append(&b, s + i, n);
            i += n;
        } else {
            core_buf_append_str(&b, "\xEF\xBF\xBD");
            i++;
        }
    }
    j = json_stringn(b.data ? b.data : "", b.len);
    core_buf_deinit(&b);
    return j;
}

static json_t *json_num_float(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *json_array_value(const gguf_array *a)
{
    if (a->n > CLI_GGUF_JSON_MAX_ARRAY) {
        return json_pack("{s:s, s:I}", "type", gguf_vtype_name(a->type), "n", (json_int_t)a->n);
    }
    json_t *arr = json_array();
    for (uint64_t i = 0; i < a->n; i++) {
        json_t *e;
        switch (a->type) {
        case GGUF_VT_STRING:
            e = json_bytes(a->strs[i].ptr, a->strs[i].len);
            break;
        case GGUF_VT_ARRAY:
            e = json_array_value(&a->arrs[i]);
            break;
        case GGUF_VT_FLOAT32:
        case GGUF_VT_FLOAT64:
            e = json_num_float(gguf_array_float(a, i));
            break;
        case GGUF_VT_BOOL:
            e = json_boolean(gguf_array_int(a, i));
            break;
        case GGUF_VT_UINT64:
            e = gguf_array_int(a, i) < 0 ? json_real((double)(uint64_t)gguf_array_int(a, i))
                                         : json_integer(gguf_array_int(a, i));
            break;
        default:
            e = json_integer(gguf_array_int(a, i));
            break;
        }
        json_array_append_new(arr, e);
    }
    return arr;
}

static json_t *json_value(const gguf_file *f, int64_t i)
{
    gguf_scalar v;
    const gguf_array *a;
    gguf_kv_value(f, i, &v, &a);
    switch (gguf_kv_type(f, i)) {
    case GGUF_VT_STRING:
        return json_bytes(v.s.ptr, v.s.len);
    case GGUF_VT_ARRAY:
        return json_array_value(a);
    case GGUF_VT_FLOAT32:
    case GGUF_VT_FLOAT64:
        return json_num_float(v.f);
    case GGUF_VT_BOOL:
        return json_boolean(v.b);
    case GGUF_VT_UINT64:
        return v.u > (uint64_t)INT64_MAX ? json_real((double)v.u) : json_integer((json_int_t)v.u);
    default:
        return json_integer(v.i);
    }
}

static int print_json(const gguf_file *f)
{
    json_t *meta = json_object();
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        /* Keys are bytes too: make them valid UTF-8 or jansson would drop them. */
        const char *key = gguf_kv_key(f, i);
        json_t *k = json_bytes(key, strlen(key));
        json_object_set_new(meta, k ? json_string_value(k) : "", json_value(f, i));
        json_decref(k);
    }
    json_t *tensors = json_array();
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        json_t *shape = json_array();
        for (int d = 0; d < t->n_dims; d++)
            json_array_append_new(shape, json_integer(t->ne[d]));
        json_array_append_new(tensors,
                              json_pack("{s:s, s:s, s:o, s:I, s:I}", "name", t->name, "type",
                                        core_type_get(t->type)->name, "shape", shape, "offset",
                                        (json_int_t)t->offset, "bytes", (json_int_t)t->size));
    }
    json_t *root = json_pack(
        "{s:I, s:I, s:I, s:I, s:o, s:o}", "version", (json_int_t)gguf_version(f), "alignment",
        (json_int_t)gguf_alignment(f), "data_offset", (json_int_t)gguf_data_offset(f), "file_size",
        (json_int_t)gguf_file_size(f), "metadata", meta, "tensors", tensors);
    if (!root) {
        fprintf(stderr, "Error: out of memory building the JSON output\n");
        return 1;
    }
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(root);
    return rc == 0 ? 0 : 1;
}

int cli_debug_gguf(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(g_usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "Error: unknown option %s (see 'dwell debug gguf --help')\n", argv[i]);
            return 1;
        } else if (path) {
            fprintf(stderr, "Error: more than one FILE given (%s, %s)\n", path, argv[i]);
            return 1;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fputs(g_usage, stderr);
        return 1;
    }
    gguf_file *f;
    core_err err;
    if (gguf_open(&f, path, &err) != CORE_OK) {
        /* Parse errors say what and where inside the file; add which file. */
        if (strstr(err.msg, path))
            fprintf(stderr, "Error: %s\n", err.msg);
        else
            fprintf(stderr, "Error: %s: %s\n", path, err.msg);
        return 1;
    }
    int rc = 0;
    if (json) {
        rc = print_json(f);
    } else {
        print_text(f, path);
    }
    fflush(stdout);
    gguf_close(f);
    return rc;
}
