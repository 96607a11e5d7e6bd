/* blob.c — content-addressed blobs: paths, the streaming writer, imports, atomic writes.
 *
 * A blob is written to "blobs/sha256-<hex>-partial-dwell-<pid>-<seq>" (a name that Ollama's
 * and dwell's pruning both treat as a partial download), hashed as it is written, then
 * fsynced and renamed to "blobs/sha256-<hex>". Two writers of the same blob race harmlessly:
 * both renames put identical bytes in place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/internal.h"

struct store_blob_writer {
    store *s;
    int fd;
    char tmp[4096];
    bool has_expected;
    char expected[STORE_DIGEST_BUF];
    EVP_MD_CTX *md;
    uint64_t n_bytes;
};

// ---- helpers ----

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void store_fsync_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    if (slash == dir) slash[1] = '\0';
    else *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

int store_write_atomic(store *s, const char *path, const void *data, size_t len,
                       core_err *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return core_err_set(err, CORE_INTERNAL, "%s: not an absolute path", path);
    char tmp[4096];
    unsigned seq = atomic_fetch_add(&s->tmp_seq, 1);
    int n = snprintf(tmp, sizeof tmp, "%.*s/.%s.tmp-%ld-%u", (int)(slash - path), path,
                     slash + 1, (long)getpid(), seq);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return core_err_set(err, CORE_INVALID, "%s: path too long", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return core_err_set(err, CORE_IO, "%s: %s", tmp, strerror(errno));
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return core_err_set(err, CORE_IO, "%s: %s", path, strerror(e));
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return core_err_set(err, CORE_IO, "%s: %s", path, strerror(e));
    }
    store_fsync_parent(path);
    return CORE_OK;
}

// ---- paths ----

int store_blob_path(const store *s, const char *digest, char *buf, size_t cap, core_err *err)
{
    char d[STORE_DIGEST_BUF];
    int rc = store_digest_parse(digest, d, err);
    if (rc) return rc;
    int n = snprintf(buf, cap, "%s/sha256-%s", s->blobs, d + 7);
    if (n < 0 || (size_t)n >= cap) {
        return core_err_set(err, CORE_INVALID, "blob path too long under %s", s->blobs);
    }
    return CORE_OK;
}

bool store_blob_exists(store *s, const char *digest)
{
    char path[4096];
    if (store_blob_path(s, digest, path, sizeof path, NULL)) return false;
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// ---- the writer ----

int store_blob_writer_begin(store *s, const char *expected, store_blob_writer **out,
                            core_err *err)
{
    store_blob_writer *w = calloc(1, sizeof *w);
    if (!w) return core_err_set(err, CORE_NOMEM, "out of memory");
    w->s = s;
    w->fd = -1;
    if (expected) {
        int rc = store_digest_parse(expected, w->expected, err);
        if (rc) {
            free(w);
            return rc;
        }
        w->has_expected = true;
    }
    unsigned seq = atomic_fetch_add(&s->tmp_seq, 1);
    snprintf(w->tmp, sizeof w->tmp, "%s/sha256-%s-partial-dwell-%ld-%u", s->blobs,
             w->has_expected ? w->expected + 7 : "unknown", (long)getpid(), seq);
    w->md = EVP_MD_CTX_new();
    if (!w->md || !EVP_DigestInit_ex(w->md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(w->md);
        free(w);
        return core_err_set(err, CORE_INTERNAL, "cannot start a SHA-256 digest");
    }
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int rc = core_err_set(err, CORE_IO, "%s: %s", w->tmp, strerror(errno));
        EVP_MD_CTX_free(w->md);
        free(w);
        return rc;
    }
    *out = w;
    return CORE_OK;
}

int store_blob_writer_write(store_blob_writer *w, const void *data, size_t len, core_err *err)
{
    if (len == 0) return CORE_OK;
    if (!EVP_DigestUpdate(w->md, data, len)) {
        return core_err_set(err, CORE_INTERNAL, "SHA-256 update failed");
    }
    if (write_all(w->fd, data, len) != 0) {
        return core_err_set(err, CORE_IO, "%s: %s", w->tmp, strerror(errno));
    }
    w->n_bytes += len;
    return CORE_OK;
}

void store_blob_writer_abort(store_blob_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    unlink(w->tmp);
    EVP_MD_CTX_free(w->md);
    free(w);
}

int store_blob_writer_commit(store_blob_writer *w, char digest_out[STORE_DIGEST_BUF],
                             core_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char got[STORE_DIGEST_BUF];
    int rc = CORE_OK;
    if (!EVP_DigestFinal_ex(w->md, md, &n) || n != 32) {
        rc = core_err_set(err, CORE_INTERNAL, "SHA-256 final failed");
        goto out;
    }
    memcpy(got, "sha256:", 7);
    store_hex(md, 32, got + 7);
    if (w->has_expected && strcmp(got, w->expected) != 0) {
        rc = core_err_set(err, CORE_INVALID, "digest mismatch, expected \"%s\", got \"%s\"",
                          w->expected, got);
        goto out;
    }
    if (fsync(w->fd) != 0) {
        rc = core_err_set(err, CORE_IO, "%s: fsync: %s", w->tmp, strerror(errno));
        goto out;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        rc = core_err_set(err, CORE_IO, "%s: close: %s", w->tmp, strerror(errno));
        goto out;
    }
    char final[4096];
    rc = store_blob_path(w->s, got, final, sizeof final, err);
    if (rc) goto out;
    if (rename(w->tmp, final) != 0) {
        rc = core_err_set(err, CORE_IO, "rename to %s: %s", final, strerror(errno));
        goto out;
    }
    store_fsync_parent(final);
    if (digest_out) memcpy(digest_out, got, STORE_DIGEST_BUF);
out:
    store_blob_writer_abort(w); /* closes, unlinks the temporary name (gone after a rename) */
    return rc;
}

int store_blob_import(store *s, const char *path, char digest_out[STORE_DIGEST_BUF],
                      core_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return core_err_set(err, errno == ENOENT ? CORE_NOTFOUND : CORE_IO, "%s: %s", path,
                            strerror(errno));
    }
    store_blob_writer *w;
    int rc = store_blob_writer_begin(s, NULL, &w, err);
    if (rc) {
        close(fd);
        return rc;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (!buf) {
        rc = core_err_set(err, CORE_NOMEM, "out of memory");
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = core_err_set(err, CORE_IO, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0) break;
        rc = store_blob_writer_write(w, buf, (size_t)n, err);
        if (rc) goto fail;
    }
    free(buf);
    close(fd);
    return store_blob_writer_commit(w, digest_out, err);
fail:
    free(buf);
    close(fd);
    store_blob_writer_abort(w);
    return rc;
}

// ---- small blobs ----

int store_blob_put(store *s, const void *data, size_t len, char digest_out[STORE_DIGEST_BUF],
                   bool *created, core_err *err)
{
    char digest[STORE_DIGEST_BUF], path[4096];
    store_digest_of(data, len, digest);
    int rc = store_blob_path(s, digest, path, sizeof path, err);
    if (rc) return rc;
    struct stat st;
    bool exists = stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len;
    if (!exists) {
        rc = store_write_atomic(s, path, data, len, err);
        if (rc) return rc;
    }
    if (created) *created = !exists;
    memcpy(digest_out, digest, STORE_DIGEST_BUF);
    return CORE_OK;
}

int store_blob_read(store *s, const char *digest, size_t max, char **out, size_t *len,
                    core_err *err)
{
    char path[4096];
    int rc = store_blob_path(s, digest, path, sizeof path, err);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) != 0) {
        return core_err_set(err, errno == ENOENT ? CORE_NOTFOUND : CORE_IO,
                            "blob %s: %s", digest, strerror(errno));
    }
    if ((uint64_t)st.st_size > max) {
        return core_err_set(err, CORE_LIMIT, "blob %s is %lld bytes, more than %zu", digest,
                            (long long)st.st_size, max);
    }
    return core_file_read(path, max, out, len, err);
}
