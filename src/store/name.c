/* name.c — model names and digests.
 *
 * Names follow Ollama's types/model/name.go as restated in spec K item 86: the string is cut
 * at the last ':' (when it comes after the last '/') for the tag, then at '/' from the right
 * for the model, the namespace and the host; an empty part where a separator promised one
 * makes the name invalid; missing parts take the defaults. Each part then has to start with
 * a letter, digit or '_' and may contain, after that, '-' and '_' everywhere, '.' in the host,
 * model and tag, and ':' in the host only. Since no part may contain '/' nor start with '.',
 * a valid name can never climb out of manifests/. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "store/internal.h"

enum name_kind { KIND_HOST, KIND_NAMESPACE, KIND_MODEL, KIND_TAG };

static bool is_alnum_us(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

static bool part_valid(enum name_kind kind, const char *s)
{
    size_t len = strlen(s);
    size_t max = kind == KIND_HOST ? STORE_HOST_MAX : STORE_PART_MAX;
    if (len < 1 || len > max) return false;
    if (!is_alnum_us(s[0])) return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (is_alnum_us(c) || c == '-') continue;
        if (c == '.' && kind != KIND_NAMESPACE) continue;
        if (c == ':' && kind == KIND_HOST) continue;
        return false;
    }
    return true;
}

static int invalid(core_err *err, const char *s)
{
    return core_err_set(err, CORE_INVALID, "invalid model name \"%.160s\"", s ? s : "");
}

/* Cuts s at the last sep: returns the part after it (s is cut in place), or NULL when there
 * is no sep. *missing is set when either side of the separator is empty. */
static char *cut_last(char *s, char sep, bool *missing)
{
    char *p = strrchr(s, sep);
    if (!p) return NULL;
    *p = '\0';
    if (p == s || p[1] == '\0') *missing = true;
    return p + 1;
}

static void copy_part(char *dst, size_t cap, const char *src, const char *def)
{
    const char *v = (src && *src) ? src : def;
    size_t n = strlen(v);
    if (n >= cap) n = cap - 1; /* cannot happen: lengths were validated */
    memcpy(dst, v, n);
    dst[n] = '\0';
}

int store_name_parse(store_name *out, const char *s, core_err *err)
{
    if (!s || !*s) return invalid(err, s);
    char buf[STORE_NAME_MAX + 16];
    size_t len = strlen(s);
    if (len >= sizeof buf) return invalid(err, s);
    memcpy(buf, s, len + 1);

    bool missing = false;
    const char *tag = NULL, *model, *ns = NULL, *host = NULL;
    char *colon = strrchr(buf, ':'), *slash = strrchr(buf, '/');
    if (colon && (!slash || colon > slash)) tag = cut_last(buf, ':', &missing);
    model = cut_last(buf, '/', &missing);
    if (!model) {
        model = buf;
    } else {
        ns = cut_last(buf, '/', &missing);
        if (!ns) {
            ns = buf;
        } else {
            host = buf;
            char *scheme = strstr(buf, "://");
            if (scheme) host = scheme + 3;
        }
    }
    if (missing) return invalid(err, s);
    if ((host && !part_valid(KIND_HOST, host)) || (ns && !part_valid(KIND_NAMESPACE, ns)) ||
        !part_valid(KIND_MODEL, model) || (tag && !part_valid(KIND_TAG, tag))) {
        return invalid(err, s);
    }
    copy_part(out->host, sizeof out->host, host, STORE_DEFAULT_HOST);
    copy_part(out->ns, sizeof out->ns, ns, STORE_DEFAULT_NAMESPACE);
    copy_part(out->model, sizeof out->model, model, "");
    copy_part(out->tag, sizeof out->tag, tag, STORE_DEFAULT_TAG);
    return CORE_OK;
}

bool store_name_valid(const char *s)
{
    store_name n;
    return store_name_parse(&n, s, NULL) == CORE_OK;
}

void store_name_display(const store_name *n, char *buf, size_t cap)
{
    if (strcasecmp(n->host, STORE_DEFAULT_HOST) != 0) {
        snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    } else if (strcasecmp(n->ns, STORE_DEFAULT_NAMESPACE) != 0) {
        snprintf(buf, cap, "%s/%s:%s", n->ns, n->model, n->tag);
    } else {
        snprintf(buf, cap, "%s:%s", n->model, n->tag);
    }
}

void store_name_full(const store_name *n, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
}

bool store_name_equal(const store_name *a, const store_name *b)
{
    return strcasecmp(a->host, b->host) == 0 && strcasecmp(a->ns, b->ns) == 0 &&
           strcasecmp(a->model, b->model) == 0 && strcasecmp(a->tag, b->tag) == 0;
}

// ---- digests ----

void store_hex(const unsigned char *md, size_t n, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[md[i] >> 4];
        out[2 * i + 1] = hexd[md[i] & 15];
    }
    out[2 * n] = '\0';
}

int store_digest_parse(const char *s, char out[STORE_DIGEST_BUF], core_err *err)
{
    if (!s || strlen(s) != STORE_DIGEST_LEN || strncmp(s, "sha256", 6) != 0 ||
        (s[6] != ':' && s[6] != '-')) {
        return core_err_set(err, CORE_INVALID, "invalid digest \"%.100s\"", s ? s : "");
    }
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 64; i++) {
        char c = s[7 + i];
        if (!isxdigit((unsigned char)c)) {
            return core_err_set(err, CORE_INVALID, "invalid digest \"%.100s\"", s);
        }
        out[7 + i] = (char)tolower((unsigned char)c);
    }
    out[STORE_DIGEST_LEN] = '\0';
    return CORE_OK;
}

void store_digest_of(const void *data, size_t len, char out[STORE_DIGEST_BUF])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32) {
        /* Only an OpenSSL that cannot do SHA-256 at all gets here. */
        core_assert_fail("EVP_Digest(sha256) failed", __FILE__, __LINE__);
    }
    memcpy(out, "sha256:", 7);
    store_hex(md, 32, out + 7);
}
