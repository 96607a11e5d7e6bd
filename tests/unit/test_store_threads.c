/* test_store_threads.c — the store used from several threads at once, as HTTP threads do:
 * creates, copies, lists, resolves and deletes interleave; at the end only the base model
 * and exactly its blobs remain, and every resolve along the way succeeded or was a clean
 * not-found (a model deleted by its own thread), never a damaged read. */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "test.h"

#define N_THREADS 4
#define N_ROUNDS 12

static char g_root[256];
static store *g_store;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int n_blobs(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/blobs", store_root(g_store));
    DIR *d = opendir(p);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    }
    closedir(d);
    return n;
}

typedef struct worker {
    int id;
    int failures;
    char msg[300];
} worker;

static void fail(worker *w, const char *what, const core_err *err)
{
    if (!w->failures++) snprintf(w->msg, sizeof w->msg, "%s: %s", what, err->msg);
}

static void *work(void *arg)
{
    worker *w = arg;
    for (int k = 0; k < N_ROUNDS; k++) {
        char name[64], alias[64], sys[64];
        snprintf(name, sizeof name, "t%d-m%d", w->id, k);
        snprintf(alias, sizeof alias, "alias/t%d:r%d", w->id, k);
        /* every other round shares its system text with another thread's model */
        snprintf(sys, sizeof sys, "system %d", k % 2 ? k : w->id * 100 + k);
        store_create_req req = {.model = name, .from = "base", .system = sys};
        core_err err;
        if (store_create(g_store, &req, NULL, NULL, NULL, &err)) fail(w, "create", &err);
        if (store_copy(g_store, name, alias, &err)) fail(w, "copy", &err);
        store_entry *v;
        size_t n;
        if (store_list(g_store, &v, &n, &err)) fail(w, "list", &err);
        else store_list_free(v);
        store_model *m;
        if (store_resolve(g_store, alias, &m, &err)) {
            fail(w, "resolve", &err);
        } else {
            if (!m->system_text || strcmp(m->system_text, sys) != 0) fail(w, "system", &err);
            store_model_free(m);
        }
        if (store_resolve(g_store, "base", &m, &err)) fail(w, "resolve base", &err);
        else store_model_free(m);
        if (store_delete(g_store, name, &err)) fail(w, "delete", &err);
        if (store_delete(g_store, alias, &err)) fail(w, "delete alias", &err);
    }
    return NULL;
}

TEST(store_survives_concurrent_create_copy_delete)
{
    snprintf(g_root, sizeof g_root, "/tmp/dwell-test-store-XXXXXX");
    CHECK(mkdtemp(g_root) != NULL);
    char root[300];
    snprintf(root, sizeof root, "%s/models", g_root);
    core_err err;
    CHECK_EQ_INT(store_open(&g_store, root, &err), CORE_OK);
    if (!g_store) return;
    char gd[STORE_DIGEST_BUF];
    CHECK_EQ_INT(store_blob_import(g_store, test_shared_path("models/stories260K.gguf"), gd,
                                   &err),
                 CORE_OK);
    const char *fn[] = {"w.gguf"}, *fd[] = {gd};
    store_create_req base = {.model = "base", .file_names = fn, .file_digests = fd,
                             .n_files = 1, .template_text = "{{ .Prompt }}"};
    CHECK_EQ_INT(store_create(g_store, &base, NULL, NULL, NULL, &err), CORE_OK);
    int base_blobs = n_blobs();

    pthread_t th[N_THREADS];
    worker ws[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        ws[i].id = i;
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(ws[i].failures == 0, "thread %d: %d failures, first %s", i, ws[i].failures,
                  ws[i].msg);
    }
    store_entry *v;
    size_t n;
    CHECK_EQ_INT(store_list(g_store, &v, &n, NULL), CORE_OK);
    CHECK_EQ_INT(n, 1);
    if (n == 1) CHECK_EQ_STR(v[0].display, "base:latest");
    store_list_free(v);
    CHECK_EQ_INT(n_blobs(), base_blobs);
    store_close(g_store);
    nftw(g_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    test_shared();
    RUN(store_survives_concurrent_create_copy_delete);
    return test_summary();
}
