/* file.c — whole-file reads, atomic writes, directory creation. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

int core_file_read(const char *path, size_t max, char **out, size_t *len, core_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return core_err_set(err, errno == ENOENT ? CORE_NOTFOUND : CORE_IO, "%s: %s", path,
                            strerror(errno));
    }
    core_buf b;
    core_buf_init(&b);
    for (;;) {
        if (core_buf_reserve(&b, 65536)) {
            close(fd);
            core_buf_deinit(&b);
            return core_err_set(err, CORE_NOMEM, "%s: out of memory", path);
        }
        size_t want = 65536;
        if (max - b.len < want) want = max - b.len + 1; /* one byte past max tells */
        ssize_t n = read(fd, b.data + b.len, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            core_buf_deinit(&b);
            return core_err_set(err, CORE_IO, "%s: %s", path, strerror(e));
        }
        if (n == 0) break;
        b.len += (size_t)n;
        if (b.len > max) {
            close(fd);
            core_buf_deinit(&b);
            return core_err_set(err, CORE_LIMIT, "%s: more than %zu bytes", path, max);
        }
    }
    close(fd);
    b.data[b.len] = '\0';
    if (len) *len = b.len;
    *out = b.data;
    return CORE_OK;
}

int core_file_write_atomic(const char *path, const void *data, size_t len, core_err *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return core_err_set(err, CORE_NOMEM, "out of memory");
    snprintf(tmp, plen + 32, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = core_err_set(err, CORE_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) goto fail;
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) goto fail;
    /* Make the rename itself durable. */
    char *dup = strdup(path);
    if (dup) {
        int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dup);
    }
    free(tmp);
    return CORE_OK;
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    int rc = core_err_set(err, CORE_IO, "%s: %s", path, strerror(e));
    free(tmp);
    return rc;
}

int core_mkdirs(const char *path, core_err *err)
{
    char *p = strdup(path);
    if (!p) return core_err_set(err, CORE_NOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int rc = core_err_set(err, CORE_IO, "mkdir %s: %s", p, strerror(errno));
            free(p);
            return rc;
        }
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        int rc = core_err_set(err, CORE_IO, "mkdir %s: %s", p, strerror(errno));
        free(p);
        return rc;
    }
    free(p);
    return CORE_OK;
}
