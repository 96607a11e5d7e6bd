/* test_chat_templates.c — the template renderer and dwell's chat-format table against the
 * fixtures in $DWELL_SHARED/fixtures/chat-templates (Ollama's built-in templates with their
 * expected renderings, and real GGUF Jinja templates mapped to format names).
 *
 * (a) every *.gotmpl renders the three conversations of testdata/<name>.gotmpl/ byte for byte
 *     (chatqa, llama2-chat, mistral-instruct, openchat and vicuna may add one trailing space,
 *     which Ollama's own test strips);
 * (b) every Jinja→name pair of index.json and testdata/templates.jsonl selects that name;
 * (c) every table format with fixture data renders the same files with its own template,
 *     and its stop strings are the fixture's "stop" parameter. */
#include <dirent.h>
#include <jansson.h>

#include "engine/engine.h"
#include "test.h"

static const char *dir_path(void)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/fixtures/chat-templates", test_shared());
    return buf;
}

static char *read_rel(const char *rel, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir_path(), rel);
    char *data = NULL;
    size_t n = 0;
    core_err err;
    if (core_file_read(path, SIZE_MAX, &data, &n, &err)) return NULL;
    if (len) *len = n;
    return data;
}

static const eng_msg conv_user[] = {{"user", "Hello, how are you?"}};
static const eng_msg conv_uau[] = {
    {"user", "Hello, how are you?"},
    {"assistant", "I'm doing great. How can I help you today?"},
    {"user", "I'd like to show off how chat templating works!"},
};
static const eng_msg conv_suau[] = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello, how are you?"},
    {"assistant", "I'm doing great. How can I help you today?"},
    {"user", "I'd like to show off how chat templating works!"},
};
static const struct {
    const char *name;
    const eng_msg *msgs;
    size_t n;
} cases[] = {
    {"user", conv_user, 1},
    {"user-assistant-user", conv_uau, 3},
    {"system-user-assistant-user", conv_suau, 4},
};

static bool may_add_space(const char *name)
{
    static const char *const names[] = {"chatqa", "llama2-chat", "mistral-instruct",
                                        "openchat", "vicuna"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) return true;
    }
    return false;
}

/* Renders src for the three conversations and compares with testdata/<name>.gotmpl/<case>.
 * Returns the number of cases that matched. */
static int check_renders(const char *label, const char *name, const char *src)
{
    eng_tmpl *t = NULL;
    core_err err = {0};
    int rc = eng_tmpl_parse(&t, src, strlen(src), &err);
    CHECK_MSG(rc == 0, "%s %s: parse: %s", label, name, err.msg);
    if (rc) return 0;
    CHECK_MSG(eng_tmpl_uses_messages(t), "%s %s: not a .Messages template", label, name);
    int ok = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char rel[512];
        snprintf(rel, sizeof rel, "testdata/%s.gotmpl/%s", name, cases[c].name);
        size_t elen = 0;
        char *expect = read_rel(rel, &elen);
        CHECK_MSG(expect != NULL, "missing fixture %s", rel);
        if (!expect) continue;
        core_buf out;
        core_buf_init(&out);
        rc = eng_tmpl_render_chat(t, NULL, cases[c].msgs, cases[c].n, &out, &err);
        CHECK_MSG(rc == 0, "%s %s/%s: render: %s", label, name, cases[c].name, err.msg);
        if (rc == 0 && may_add_space(name) && out.len == elen + 1 &&
            out.data[out.len - 1] == ' ') {
            out.len--;
        }
        bool same = rc == 0 && out.len == elen && memcmp(out.data ? out.data : "", expect,
                                                          elen) == 0;
        CHECK_MSG(same, "%s %s/%s:\n--- got (%zu bytes)\n%.*s\n--- want (%zu bytes)\n%s\n---",
                  label, name, cases[c].name, out.len, (int)out.len,
                  out.data ? out.data : "", elen, expect);
        ok += same;
        core_buf_deinit(&out);
        free(expect);
    }
    eng_tmpl_free(t);
    return ok;
}

TEST(ollama_templates_render_fixture_conversations)
{
    DIR *d = opendir(dir_path());
    CHECK_MSG(d != NULL, "cannot open %s", dir_path());
    if (!d) return;
    int n_templates = 0, n_ok = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 8 || strcmp(e->d_name + n - 7, ".gotmpl") != 0) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 7), e->d_name);
        char *src = read_rel(e->d_name, NULL);
        CHECK(src != NULL);
        if (!src) continue;
        n_templates++;
        n_ok += check_renders("ollama", name, src);
        free(src);
    }
    closedir(d);
    CHECK_MSG(n_templates >= 20, "only %d templates found", n_templates);
    CHECK_EQ_INT(n_ok, n_templates * 3);
}

/* Calls fn(jinja, name) for every pair of index.json and testdata/templates.jsonl; returns
 * the number of pairs. */
static int each_pair(void (*fn)(const char *jinja, const char *name))
{
    int n = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/index.json", dir_path());
    json_error_t jerr;
    json_t *idx = json_load_file(path, 0, &jerr);
    CHECK_MSG(json_is_array(idx), "index.json: %s", jerr.text);
    size_t i;
    json_t *item;
    json_array_foreach(idx, i, item) {
        const char *t = json_string_value(json_object_get(item, "template"));
        const char *name = json_string_value(json_object_get(item, "name"));
        CHECK(t && name);
        if (t && name) fn(t, name), n++;
    }
    json_decref(idx);

    size_t len = 0;
    char *jsonl = read_rel("testdata/templates.jsonl", &len);
    CHECK(jsonl != NULL);
    for (char *line = jsonl; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (*line) {
            json_t *obj = json_loads(line, 0, &jerr);
            CHECK_MSG(json_is_object(obj), "templates.jsonl: %s", jerr.text);
            const char *key;
            json_t *val;
            json_object_foreach(obj, key, val) {
                CHECK(json_is_string(val));
                if (json_is_string(val)) fn(json_string_value(val), key), n++;
            }
            json_decref(obj);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(jsonl);
    return n;
}

static void check_pair(const char *jinja, const char *name)
{
    const eng_chat_format *f = eng_chat_format_for_jinja(jinja);
    CHECK(f != NULL);
    CHECK_MSG(f && strcmp(f->name, name) == 0, "want %s, got %s for Jinja:\n%.300s...", name,
              f ? f->name : "(null)", jinja);
}

TEST(jinja_fingerprints_select_fixture_names)
{
    int n = each_pair(check_pair);
    CHECK_MSG(n >= 70, "only %d pairs", n);
}

static void check_covered(const char *jinja, const char *name)
{
    (void)jinja;
    CHECK_MSG(eng_chat_format_by_name(name) != NULL, "no table entry named %s", name);
}

TEST(table_covers_every_fixture_name)
{
    each_pair(check_covered);
    DIR *d = opendir(dir_path());
    CHECK(d != NULL);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 8 || strcmp(e->d_name + n - 7, ".gotmpl") != 0) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 7), e->d_name);
        CHECK_MSG(eng_chat_format_by_name(name) != NULL, "no table entry named %s", name);
    }
    if (d) closedir(d);
}

TEST(table_templates_render_fixture_conversations)
{
    int n_with_data = 0;
    for (size_t i = 0; eng_chat_format_at(i); i++) {
        const eng_chat_format *f = eng_chat_format_at(i);
        char rel[512];
        snprintf(rel, sizeof rel, "testdata/%s.gotmpl/user", f->name);
        char *probe = read_rel(rel, NULL);
        if (!probe) continue;
        free(probe);
        n_with_data++;
        CHECK_EQ_INT(check_renders("table", f->name, f->template_src), 3);
    }
    CHECK_MSG(n_with_data >= 20, "only %d formats have fixture data", n_with_data);
}

TEST(table_stops_match_fixture_parameters)
{
    int n_checked = 0;
    for (size_t i = 0; eng_chat_format_at(i); i++) {
        const eng_chat_format *f = eng_chat_format_at(i);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", dir_path(), f->name);
        json_error_t jerr;
        json_t *params = json_load_file(path, 0, &jerr);
        if (!params) continue;
        n_checked++;
        json_t *stop = json_object_get(params, "stop");
        size_t n = 0;
        while (f->stops[n]) n++;
        CHECK_MSG(json_array_size(stop) == n, "%s: %zu stops, fixture has %zu", f->name, n,
                  json_array_size(stop));
        for (size_t k = 0; k < n && k < json_array_size(stop); k++) {
            CHECK_EQ_STR(f->stops[k], json_string_value(json_array_get(stop, k)));
        }
        json_decref(params);
    }
    CHECK(n_checked >= 20);
}

TEST(unknown_or_missing_jinja_falls_back_to_raw)
{
    CHECK_EQ_STR(eng_chat_format_for_jinja(NULL)->name, "raw");
    CHECK_EQ_STR(eng_chat_format_for_jinja("")->name, "raw");
    CHECK_EQ_STR(eng_chat_format_for_jinja("{{ messages | join }}")->name, "raw");
}

int main(void)
{
    RUN(ollama_templates_render_fixture_conversations);
    RUN(jinja_fingerprints_select_fixture_names);
    RUN(table_covers_every_fixture_name);
    RUN(table_templates_render_fixture_conversations);
    RUN(table_stops_match_fixture_parameters);
    RUN(unknown_or_missing_jinja_falls_back_to_raw);
    return test_summary();
}
