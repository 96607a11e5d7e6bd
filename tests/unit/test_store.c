/* test_store.c — the model store on disk: blobs, create/list/resolve/copy/delete, blob GC,
 * an Ollama-written store, damaged stores. Every test works in its own temporary directory
 * under /tmp, removed at the end; the GGUF is copied in from $DWELL_SHARED/models. */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"

#define GGUF_REL "models/stories260K.gguf"

static char g_root[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static store *tmp_store(void)
{
    snprintf(g_root, sizeof g_root, "/tmp/dwell-test-store-XXXXXX");
    if (!mkdtemp(g_root)) return NULL;
    char root[300];
    snprintf(root, sizeof root, "%s/models", g_root);
    store *s = NULL;
    core_err err;
    if (store_open(&s, root, &err)) printf("  store_open: %s\n", err.msg);
    return s;
}

static void tmp_done(store *s)
{
    store_close(s);
    nftw(g_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    }
    closedir(d);
    return n;
}

static int n_blobs(store *s)
{
    char p[512];
    snprintf(p, sizeof p, "%s/blobs", store_root(s));
    return count_files(p);
}

static bool path_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

/* Imports the shared GGUF and creates `name` from it with a template and a system. */
static int make_model(store *s, const char *name, char digest[STORE_DIGEST_BUF])
{
    core_err err;
    int rc = store_blob_import(s, test_shared_path(GGUF_REL), digest, &err);
    if (rc) {
        printf("  import: %s\n", err.msg);
        return rc;
    }
    const char *fn[] = {"stories260K.gguf"};
    const char *fd[] = {digest};
    store_create_req req = {.model = name, .file_names = fn, .file_digests = fd, .n_files = 1,
                            .template_text = "{{ .Prompt }}", .system = "You are terse.",
                            .params_json = "{\"num_ctx\":256,\"stop\":[\"</s>\"]}"};
    rc = store_create(s, &req, NULL, NULL, NULL, &err);
    if (rc) printf("  create: %s\n", err.msg);
    return rc;
}

// ---- blobs ----

TEST(store_blob_writer_stores_good_digest)
{
    store *s = tmp_store();
    CHECK(s != NULL);
    if (!s) return;
    char want[STORE_DIGEST_BUF], got[STORE_DIGEST_BUF];
    store_digest_of("hello world", 11, want);
    store_blob_writer *w;
    core_err err;
    CHECK_EQ_INT(store_blob_writer_begin(s, want, &w, &err), CORE_OK);
    CHECK_EQ_INT(store_blob_writer_write(w, "hello ", 6, &err), CORE_OK);
    CHECK_EQ_INT(store_blob_writer_write(w, "world", 5, &err), CORE_OK);
    CHECK_EQ_INT(store_blob_writer_commit(w, got, &err), CORE_OK);
    CHECK_EQ_STR(got, want);
    CHECK(store_blob_exists(s, want));
    CHECK_EQ_INT(n_blobs(s), 1);
    char path[512];
    CHECK_EQ_INT(store_blob_path(s, want, path, sizeof path, NULL), CORE_OK);
    CHECK_CONTAINS(path, "/blobs/sha256-");
    tmp_done(s);
}

TEST(store_blob_writer_mismatch_leaves_nothing)
{
    store *s = tmp_store();
    if (!s) return;
    char want[STORE_DIGEST_BUF];
    store_digest_of("expected", 8, want);
    store_blob_writer *w;
    core_err err;
    CHECK_EQ_INT(store_blob_writer_begin(s, want, &w, &err), CORE_OK);
    CHECK_EQ_INT(store_blob_writer_write(w, "something else", 14, &err), CORE_OK);
    CHECK_EQ_INT(store_blob_writer_commit(w, NULL, &err), CORE_INVALID);
    CHECK_CONTAINS(err.msg, "digest mismatch, expected \"sha256:");
    CHECK_CONTAINS(err.msg, want);
    CHECK(!store_blob_exists(s, want));
    CHECK_EQ_INT(n_blobs(s), 0);
    tmp_done(s);
}

TEST(store_blob_writer_abort_and_bad_digest)
{
    store *s = tmp_store();
    if (!s) return;
    store_blob_writer *w;
    core_err err;
    CHECK_EQ_INT(store_blob_writer_begin(s, "sha256:../../etc", &w, &err), CORE_INVALID);
    CHECK_EQ_INT(store_blob_writer_begin(s, NULL, &w, &err), CORE_OK);
    CHECK_EQ_INT(store_blob_writer_write(w, "partial", 7, &err), CORE_OK);
    CHECK_EQ_INT(n_blobs(s), 1); /* the private temporary file */
    store_blob_writer_abort(w);
    CHECK_EQ_INT(n_blobs(s), 0);
    CHECK(!store_blob_exists(s, "not a digest"));
    tmp_done(s);
}

TEST(store_blob_import_hashes_the_file)
{
    store *s = tmp_store();
    if (!s) return;
    char d1[STORE_DIGEST_BUF], d2[STORE_DIGEST_BUF];
    core_err err;
    CHECK_EQ_INT(store_blob_import(s, test_shared_path(GGUF_REL), d1, &err), CORE_OK);
    CHECK(store_blob_exists(s, d1));
    char *data;
    size_t len;
    CHECK_EQ_INT(core_file_read(test_shared_path(GGUF_REL), SIZE_MAX, &data, &len, NULL), CORE_OK);
    store_digest_of(data, len, d2);
    free(data);
    CHECK_EQ_STR(d1, d2);
    CHECK_EQ_INT(store_blob_import(s, "/nonexistent/file.gguf", d1, &err), CORE_NOTFOUND);
    tmp_done(s);
}

// ---- create, list, resolve ----

TEST(store_create_list_resolve_round_trip)
{
    store *s = tmp_store();
    if (!s) return;
    char gd[STORE_DIGEST_BUF];
    CHECK_EQ_INT(make_model(s, "tiny", gd), CORE_OK);
    store_entry *v;
    size_t n;
    core_err err;
    CHECK_EQ_INT(store_list(s, &v, &n, &err), CORE_OK);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_EQ_STR(v[0].display, "tiny:latest");
        CHECK_EQ_STR(v[0].details.format, "gguf");
        CHECK_EQ_STR(v[0].details.family, "llama");
        CHECK_EQ_INT(v[0].details.n_families, 1);
        CHECK_EQ_STR(v[0].details.parameter_size, "293K");
        CHECK(v[0].details.quantization_level[0] != '\0');
        CHECK(v[0].size > 1000000);
        CHECK_EQ_INT(strlen(v[0].digest), 64);
        CHECK(v[0].modified_ns > 0);
    }
    store_model *m;
    CHECK_EQ_INT(store_resolve(s, "TINY:Latest", &m, &err), CORE_OK);
    if (m) {
        char gp[512];
        store_blob_path(s, gd, gp, sizeof gp, NULL);
        CHECK_EQ_STR(m->model_path, gp);
        CHECK_EQ_STR(m->template_text, "{{ .Prompt }}");
        CHECK_EQ_STR(m->system_text, "You are terse.");
        CHECK_CONTAINS(m->params_json, "\"num_ctx\":256");
        CHECK(m->license == NULL && m->messages_json == NULL);
        CHECK_EQ_STR(m->display, "tiny:latest");
        CHECK_EQ_STR(m->full, "registry.ollama.ai/library/tiny:latest");
        if (n == 1) {
            CHECK_EQ_STR(m->digest, v[0].digest);
            CHECK_EQ_INT(m->size, v[0].size);
        }
        CHECK_EQ_STR(m->details.parent_model, "");
        /* the manifest is one line of JSON as Ollama writes it, and its digest is its hash */
        char *raw = NULL;
        size_t len = 0;
        CHECK_EQ_INT(core_file_read(m->manifest_path, SIZE_MAX, &raw, &len, NULL), CORE_OK);
        if (raw) {
            const char *head = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker."
                               "distribution.manifest.v2+json\",\"config\":{\"mediaType\":"
                               "\"application/vnd.docker.container.image.v1+json\",\"digest\":"
                               "\"sha256:";
            CHECK(strncmp(raw, head, strlen(head)) == 0);
            CHECK(len > 0 && raw[len - 1] == '\n' && !memchr(raw, '\n', len - 1));
            CHECK_CONTAINS(raw, "\"mediaType\":\"application/vnd.ollama.image.model\"");
            CHECK_CONTAINS(raw, "\"mediaType\":\"application/vnd.ollama.image.template\"");
            char d[STORE_DIGEST_BUF];
            store_digest_of(raw, len, d);
            CHECK_EQ_STR(d + 7, m->digest);
            free(raw);
        }
        store_model_free(m);
    }
    store_list_free(v);
    CHECK_EQ_INT(store_resolve(s, "nothere", &m, &err), CORE_NOTFOUND);
    CHECK_EQ_STR(err.msg, "model 'nothere:latest' not found");
    CHECK_EQ_INT(store_resolve(s, "../tiny", &m, &err), CORE_INVALID);
    tmp_done(s);
}

TEST(store_create_from_model_replaces_layers)
{
    store *s = tmp_store();
    if (!s) return;
    char gd[STORE_DIGEST_BUF];
    CHECK_EQ_INT(make_model(s, "base", gd), CORE_OK);
    const char *lic[] = {"MIT", "Apache-2.0"};
    store_create_req req = {.model = "me/derived:v1", .from = "base", .system = "Be kind.",
                            .licenses = lic, .n_licenses = 2,
                            .params_json = "{\"temperature\":0.5,\"num_ctx\":512}",
                            .messages_json = "[{\"role\":\"user\",\"content\":\"hi\"}]"};
    core_err err;
    char digest[65];
    CHECK_EQ_INT(store_create(s, &req, NULL, NULL, digest, &err), CORE_OK);
    store_model *m = NULL;
    CHECK_EQ_INT(store_resolve(s, "me/derived:v1", &m, &err), CORE_OK);
    if (m) {
        CHECK_EQ_STR(m->digest, digest);
        CHECK_EQ_STR(m->display, "me/derived:v1");
        CHECK_EQ_STR(m->system_text, "Be kind.");
        CHECK_EQ_STR(m->template_text, "{{ .Prompt }}"); /* kept from base */
        CHECK_EQ_STR(m->license, "MIT\nApache-2.0");
        CHECK_CONTAINS(m->params_json, "\"num_ctx\":512");
        CHECK_CONTAINS(m->params_json, "\"temperature\":0.5");
        CHECK_CONTAINS(m->params_json, "\"stop\":[\"</s>\"]"); /* merged from base */
        CHECK_CONTAINS(m->messages_json, "\"content\":\"hi\"");
        CHECK_EQ_STR(m->details.parent_model, "base:latest");
        CHECK_EQ_STR(m->details.family, "llama");
        store_model_free(m);
    }
    store_create_req bad = {.model = "x", .from = "missing"};
    CHECK_EQ_INT(store_create(s, &bad, NULL, NULL, NULL, &err), CORE_NOTFOUND);
    tmp_done(s);
}

static void collect_status(const char *st, void *ud)
{
    char *buf = ud;
    strncat(buf, st, 2000 - strlen(buf) - 2);
    strcat(buf, "|");
}

TEST(store_create_rejects_bad_requests)
{
    store *s = tmp_store();
    if (!s) return;
    core_err err;
    store_create_req none = {.model = "m"};
    CHECK_EQ_INT(store_create(s, &none, NULL, NULL, NULL, &err), CORE_INVALID);
    CHECK_EQ_STR(err.msg, "neither 'from' or 'files' was specified");
    char d[STORE_DIGEST_BUF];
    store_digest_of("x", 1, d);
    const char *abs_name[] = {"/etc/passwd"}, *dot_name[] = {"a/../../b.gguf"};
    const char *dg[] = {d};
    store_create_req r1 = {.model = "m", .file_names = abs_name, .file_digests = dg,
                           .n_files = 1};
    CHECK_EQ_INT(store_create(s, &r1, NULL, NULL, NULL, &err), CORE_INVALID);
    CHECK_EQ_STR(err.msg, "file path must be relative");
    r1.file_names = dot_name;
    CHECK_EQ_INT(store_create(s, &r1, NULL, NULL, NULL, &err), CORE_INVALID);
    const char *ok_name[] = {"model.gguf"}, *bad_dg[] = {"sha256:zz"};
    store_create_req r2 = {.model = "m", .file_names = ok_name, .file_digests = bad_dg,
                           .n_files = 1};
    CHECK_EQ_INT(store_create(s, &r2, NULL, NULL, NULL, &err), CORE_INVALID);
    r2.file_digests = dg; /* valid but never uploaded */
    CHECK_EQ_INT(store_create(s, &r2, NULL, NULL, NULL, &err), CORE_NOTFOUND);
    /* a blob that is not GGUF */
    char nd[STORE_DIGEST_BUF];
    store_blob_writer *w;
    store_blob_writer_begin(s, NULL, &w, NULL);
    store_blob_writer_write(w, "not a gguf file at all", 22, NULL);
    store_blob_writer_commit(w, nd, NULL);
    const char *nd_arr[] = {nd};
    r2.file_digests = nd_arr;
    CHECK_EQ_INT(store_create(s, &r2, NULL, NULL, NULL, &err), CORE_INVALID);
    CHECK_CONTAINS(err.msg, "GGUF");
    const char *st_name[] = {"model-00001.safetensors"};
    r2.file_names = st_name;
    CHECK_EQ_INT(store_create(s, &r2, NULL, NULL, NULL, &err), CORE_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "GGUF");
    store_create_req r3 = {.model = "../evil", .from = "x"};
    CHECK_EQ_INT(store_create(s, &r3, NULL, NULL, NULL, &err), CORE_INVALID);
    store_entry *v;
    size_t n;
    CHECK_EQ_INT(store_list(s, &v, &n, NULL), CORE_OK);
    CHECK_EQ_INT(n, 0);
    store_list_free(v);
    tmp_done(s);
}

TEST(store_create_reports_progress)
{
    store *s = tmp_store();
    if (!s) return;
    char gd[STORE_DIGEST_BUF];
    store_blob_import(s, test_shared_path(GGUF_REL), gd, NULL);
    const char *fn[] = {"m.gguf"}, *fd[] = {gd};
    store_create_req req = {.model = "p", .file_names = fn, .file_digests = fd, .n_files = 1,
                            .system = "hi"};
    char buf[2000] = "";
    CHECK_EQ_INT(store_create(s, &req, collect_status, buf, NULL, NULL), CORE_OK);
    CHECK_CONTAINS(buf, "parsing GGUF|using existing layer sha256:");
    CHECK_CONTAINS(buf, "creating new layer sha256:");
    CHECK_CONTAINS(buf, "writing manifest|");
    tmp_done(s);
}

// ---- copy and delete ----

TEST(store_copy_and_delete_keep_shared_blobs)
{
    store *s = tmp_store();
    if (!s) return;
    char gd[STORE_DIGEST_BUF];
    CHECK_EQ_INT(make_model(s, "orig", gd), CORE_OK);
    int blobs = n_blobs(s);
    core_err err;
    CHECK_EQ_INT(store_copy(s, "orig", "user/alias:v2", &err), CORE_OK);
    CHECK_EQ_INT(n_blobs(s), blobs);
    CHECK_EQ_INT(store_copy(s, "ghost", "x", &err), CORE_NOTFOUND);
    CHECK_EQ_STR(err.msg, "model \"ghost\" not found");
    CHECK_EQ_INT(store_copy(s, "orig", "../x", &err), CORE_INVALID);
    store_model *a, *b;
    CHECK_EQ_INT(store_resolve(s, "orig", &a, NULL), CORE_OK);
    CHECK_EQ_INT(store_resolve(s, "user/alias:v2", &b, NULL), CORE_OK);
    CHECK_EQ_STR(a->digest, b->digest);
    CHECK_EQ_STR(a->model_path, b->model_path);
    store_model_free(a);
    store_model_free(b);

    CHECK_EQ_INT(store_delete(s, "orig", &err), CORE_OK);
    CHECK_EQ_INT(n_blobs(s), blobs); /* all still used by the alias */
    CHECK(store_blob_exists(s, gd));
    CHECK(!store_model_exists(s, "orig"));
    char dir[512];
    snprintf(dir, sizeof dir, "%s/manifests/registry.ollama.ai/library/orig", store_root(s));
    CHECK(!path_exists(dir)); /* emptied directories pruned */
    CHECK_EQ_INT(store_delete(s, "orig", &err), CORE_NOTFOUND);
    CHECK_EQ_STR(err.msg, "model 'orig' not found");

    CHECK_EQ_INT(store_delete(s, "User/Alias:V2", &err), CORE_OK);
    CHECK_EQ_INT(n_blobs(s), 0);
    snprintf(dir, sizeof dir, "%s/manifests", store_root(s));
    CHECK_EQ_INT(count_files(dir), 0);
    tmp_done(s);
}

TEST(store_replacing_a_model_collects_its_old_blobs)
{
    store *s = tmp_store();
    if (!s) return;
    char gd[STORE_DIGEST_BUF];
    CHECK_EQ_INT(make_model(s, "m", gd), CORE_OK);
    int before = n_blobs(s);
    store_create_req req = {.model = "m", .from = "m", .system = "A different system."};
    CHECK_EQ_INT(store_create(s, &req, NULL, NULL, NULL, NULL), CORE_OK);
    /* the old system blob and the old config are gone, the new ones are there */
    CHECK_EQ_INT(n_blobs(s), before);
    store_model *m;
    CHECK_EQ_INT(store_resolve(s, "m", &m, NULL), CORE_OK);
    CHECK_EQ_STR(m->system_text, "A different system.");
    store_model_free(m);
    tmp_done(s);
}

// ---- an Ollama store, damaged stores ----

/* Writes text as a blob file by hand, as Ollama lays it out; returns its digest. */
static void hand_blob(store *s, const char *text, char d[STORE_DIGEST_BUF])
{
    store_digest_of(text, strlen(text), d);
    char p[512];
    store_blob_path(s, d, p, sizeof p, NULL);
    write_file(p, text, strlen(text));
}

static void hand_manifest(store *s, const char *rel, const char *json)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/manifests/%s", store_root(s), rel);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", p);
    *strrchr(dir, '/') = '\0';
    core_mkdirs(dir, NULL);
    write_file(p, json, strlen(json));
}

/* An Ollama-written llama2:latest: the model blob, template, params, license and config. */
static void hand_ollama_model(store *s, char model_path[512])
{
    char md[STORE_DIGEST_BUF], td[STORE_DIGEST_BUF], pd[STORE_DIGEST_BUF];
    char ld[STORE_DIGEST_BUF], cd[STORE_DIGEST_BUF];
    store_blob_import(s, test_shared_path(GGUF_REL), md, NULL);
    store_blob_path(s, md, model_path, 512, NULL);
    struct stat st;
    stat(model_path, &st);
    const char *tmpl = "[INST] <<SYS>>{{ .System }}<</SYS>>\n\n{{ .Prompt }} [/INST]\n";
    const char *params = "{\"stop\":[\"[INST]\",\"[/INST]\"]}";
    const char *lic = "LLAMA 2 COMMUNITY LICENSE AGREEMENT";
    hand_blob(s, tmpl, td);
    hand_blob(s, params, pd);
    hand_blob(s, lic, ld);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":"
             "[\"llama\"],\"model_type\":\"7B\",\"file_type\":\"Q4_0\",\"architecture\":"
             "\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":"
             "[\"%s\"]},\"some_future_key\":{\"x\":1}}",
             md);
    hand_blob(s, cfg, cd);
    char man[4096];
    snprintf(man, sizeof man,
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution."
             "manifest.v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker.container."
             "image.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":["
             "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"%s\","
             "\"size\":%lld},"
             "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"%s\","
             "\"size\":%zu},"
             "{\"mediaType\":\"application/vnd.ollama.image.license\",\"digest\":\"%s\","
             "\"size\":%zu},"
             "{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"%s\","
             "\"size\":%zu}]}",
             cd, strlen(cfg), md, (long long)st.st_size, td, strlen(tmpl), ld, strlen(lic), pd,
             strlen(params));
    hand_manifest(s, "registry.ollama.ai/library/llama2/latest", man);
}

TEST(store_reads_an_ollama_written_store)
{
    store *s = tmp_store();
    if (!s) return;
    char mp[512];
    hand_ollama_model(s, mp);
    /* an old-style blob name is renamed when the store is opened again */
    char d[STORE_DIGEST_BUF], old[600];
    store_digest_of("old", 3, d);
    snprintf(old, sizeof old, "%s/blobs/%s", store_root(s), d);
    write_file(old, "old", 3);
    char root[300];
    snprintf(root, sizeof root, "%s", store_root(s));
    store_close(s);
    CHECK_EQ_INT(store_open(&s, root, NULL), CORE_OK);
    CHECK(!path_exists(old));
    CHECK(store_blob_exists(s, d));

    store_entry *v;
    size_t n;
    CHECK_EQ_INT(store_list(s, &v, &n, NULL), CORE_OK);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_EQ_STR(v[0].display, "llama2:latest");
        CHECK_EQ_STR(v[0].details.parameter_size, "7B");
        CHECK_EQ_STR(v[0].details.quantization_level, "Q4_0");
    }
    store_list_free(v);
    store_model *m;
    core_err err;
    CHECK_EQ_INT(store_resolve(s, "llama2", &m, &err), CORE_OK);
    if (m) {
        CHECK_EQ_STR(m->model_path, mp);
        CHECK_CONTAINS(m->template_text, "[INST] <<SYS>>");
        CHECK_EQ_STR(m->license, "LLAMA 2 COMMUNITY LICENSE AGREEMENT");
        CHECK_CONTAINS(m->params_json, "[/INST]");
        CHECK(m->system_text == NULL);
        store_model_free(m);
    }
    tmp_done(s);
}

TEST(store_detects_missing_and_truncated_blobs)
{
    store *s = tmp_store();
    if (!s) return;
    char mp[512];
    hand_ollama_model(s, mp);
    store_model *m;
    core_err err;
    /* truncate the weights */
    CHECK_EQ_INT(truncate(mp, 1000), 0);
    CHECK_EQ_INT(store_resolve(s, "llama2", &m, &err), CORE_FORMAT);
    CHECK_CONTAINS(err.msg, "llama2:latest");
    CHECK_CONTAINS(err.msg, "sha256:");
    CHECK_CONTAINS(err.msg, "truncated");
    unlink(mp);
    CHECK_EQ_INT(store_resolve(s, "llama2", &m, &err), CORE_NOTFOUND);
    CHECK_CONTAINS(err.msg, "llama2:latest");
    CHECK_CONTAINS(err.msg, "is missing");
    tmp_done(s);
}

TEST(store_corrupt_manifest_is_an_error_not_a_crash)
{
    store *s = tmp_store();
    if (!s) return;
    char gd[STORE_DIGEST_BUF];
    CHECK_EQ_INT(make_model(s, "good", gd), CORE_OK);
    hand_manifest(s, "registry.ollama.ai/library/bad/latest", "{\"schemaVersion\":2,\"lay");
    hand_manifest(s, "registry.ollama.ai/library/bad2/latest",
                  "{\"layers\":[{\"mediaType\":\"x\",\"digest\":\"../../etc/passwd\"}]}");
    store_model *m;
    core_err err;
    CHECK_EQ_INT(store_resolve(s, "bad", &m, &err), CORE_FORMAT);
    CHECK_CONTAINS(err.msg, "corrupt manifest");
    CHECK_EQ_INT(store_resolve(s, "bad2", &m, &err), CORE_FORMAT);
    store_entry *v;
    size_t n;
    CHECK_EQ_INT(store_list(s, &v, &n, NULL), CORE_OK);
    CHECK_EQ_INT(n, 1); /* the corrupt ones are skipped */
    store_list_free(v);
    /* deleting a good model while a manifest is corrupt keeps the blobs (no unsafe GC) */
    int blobs = n_blobs(s);
    CHECK_EQ_INT(store_delete(s, "good", &err), CORE_OK);
    CHECK_EQ_INT(n_blobs(s), blobs);
    CHECK_EQ_INT(store_delete(s, "bad", &err), CORE_OK);
    tmp_done(s);
}

TEST(store_prune_removes_partials_and_unused_blobs)
{
    store *s = tmp_store();
    if (!s) return;
    char gd[STORE_DIGEST_BUF], ud[STORE_DIGEST_BUF], p[600];
    CHECK_EQ_INT(make_model(s, "kept", gd), CORE_OK);
    int used = n_blobs(s);
    hand_blob(s, "unused", ud);
    snprintf(p, sizeof p, "%s/blobs/sha256-abc-partial-0", store_root(s));
    write_file(p, "x", 1);
    size_t removed = 99;
    CHECK_EQ_INT(store_prune(s, 3600, &removed, NULL), CORE_OK);
    CHECK_EQ_INT(removed, 0); /* everything is younger than the grace period */
    CHECK_EQ_INT(store_prune(s, -10, &removed, NULL), CORE_OK);
    CHECK_EQ_INT(removed, 2);
    CHECK_EQ_INT(n_blobs(s), used);
    CHECK(store_blob_exists(s, gd));
    CHECK(!store_blob_exists(s, ud));
    tmp_done(s);
}

TEST(store_root_default_uses_env)
{
    char buf[512];
    setenv("OLLAMA_MODELS", "  \"/srv/models\" ", 1);
    CHECK_EQ_INT(store_root_default(buf, sizeof buf, NULL), CORE_OK);
    CHECK_EQ_STR(buf, "/srv/models");
    unsetenv("OLLAMA_MODELS");
    setenv("HOME", "/home/u", 1);
    CHECK_EQ_INT(store_root_default(buf, sizeof buf, NULL), CORE_OK);
    CHECK_EQ_STR(buf, "/home/u/.ollama/models");
}

int main(void)
{
    test_shared();
    RUN(store_blob_writer_stores_good_digest);
    RUN(store_blob_writer_mismatch_leaves_nothing);
    RUN(store_blob_writer_abort_and_bad_digest);
    RUN(store_blob_import_hashes_the_file);
    RUN(store_create_list_resolve_round_trip);
    RUN(store_create_from_model_replaces_layers);
    RUN(store_create_rejects_bad_requests);
    RUN(store_create_reports_progress);
    RUN(store_copy_and_delete_keep_shared_blobs);
    RUN(store_replacing_a_model_collects_its_old_blobs);
    RUN(store_reads_an_ollama_written_store);
    RUN(store_detects_missing_and_truncated_blobs);
    RUN(store_corrupt_manifest_is_an_error_not_a_crash);
    RUN(store_prune_removes_partials_and_unused_blobs);
    RUN(store_root_default_uses_env);
    return test_summary();
}
