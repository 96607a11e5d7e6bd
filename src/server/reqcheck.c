/* reqcheck.c — request checks shared by the handlers: the JSON types of a request's fields
 * (spec I.70: a wrong type is a 400 worded like Go's decoder, for every field, not only the
 * ones a handler reads) and the Host header guard against DNS rebinding (spec I.77). */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/internal.h"

// ---- field types ----

static bool str_array(const json_t *v)
{
    if (!json_is_array(v)) return false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i))) return false;
    return true;
}

static bool kind_ok(int kind, const json_t *v)
{
    switch (kind) {
    case SRV_F_STR: return json_is_string(v);
    case SRV_F_BOOL: return json_is_boolean(v);
    case SRV_F_INT:
        return json_is_integer(v) || (json_is_real(v) && fabs(json_real_value(v)) < 9e18 &&
                                      json_real_value(v) == floor(json_real_value(v)));
    case SRV_F_NUM: return json_is_number(v);
    case SRV_F_ARRAY: return json_is_array(v);
    case SRV_F_OBJECT: return json_is_object(v);
    case SRV_F_STR_ARRAY: return str_array(v);
    case SRV_F_STR_OR_OBJ: return json_is_string(v) || json_is_object(v);
    case SRV_F_BOOL_OR_STR: return json_is_boolean(v) || json_is_string(v);
    case SRV_F_STR_OR_STR_ARRAY: return json_is_string(v) || str_array(v);
    default: return false;
    }
}

static const char *kind_go_name(int kind)
{
    switch (kind) {
    case SRV_F_STR: return "string";
    case SRV_F_BOOL: return "bool";
    case SRV_F_INT: return "int";
    case SRV_F_NUM: return "float64";
    case SRV_F_ARRAY: return "[]interface {}";
    case SRV_F_OBJECT: return "map[string]interface {}";
    case SRV_F_STR_ARRAY: return "[]string";
    case SRV_F_STR_OR_OBJ: return "string or object";
    case SRV_F_BOOL_OR_STR: return "bool or string";
    case SRV_F_STR_OR_STR_ARRAY: return "string or []string";
    default: return "?";
    }
}

int srv_json_check_fields(json_t *obj, const char *where, const srv_field *f, size_t n,
                          core_err *err)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(obj, f[i].key);
        if (!v || json_is_null(v) || kind_ok(f[i].kind, v)) continue;
        return core_err_set(err, CORE_INVALID,
                            "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                            srv_json_type_name(v), where, f[i].key, kind_go_name(f[i].kind));
    }
    return CORE_OK;
}

// ---- the Host header ----

static bool addr_is_local_v4(uint32_t a) /* host byte order */
{
    return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) ||
           (a >> 16) == (192u << 8 | 168) || a == 0;
}

static bool addr_is_local_v6(const struct in6_addr *a)
{
    static const struct in6_addr any = IN6ADDR_ANY_INIT;
    if (IN6_IS_ADDR_LOOPBACK(a) || !memcmp(a, &any, sizeof any)) return true;
    if ((a->s6_addr[0] & 0xfe) == 0xfc) return true; /* fc00::/7, unique local */
    if (IN6_IS_ADDR_V4MAPPED(a)) {
        uint32_t v4;
        memcpy(&v4, a->s6_addr + 12, 4);
        return addr_is_local_v4(ntohl(v4));
    }
    return false;
}

/* An address of one of this machine's interfaces. */
static bool addr_is_interface(int family, const void *addr)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0) return false;
    bool found = false;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != family) continue;
        if (family == AF_INET)
            found = !memcmp(&((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, addr, 4);
        else
            found = !memcmp(&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, addr, 16);
    }
    freeifaddrs(ifs);
    return found;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcasecmp(s + n - k, suffix) == 0;
}

bool srv_listen_is_loopback(const char *listen_host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, listen_host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, listen_host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

bool srv_host_allowed(const char *host_header)
{
    if (!host_header || !*host_header) return true;
    char host[300];
    const char *h = host_header;
    size_t n;
    if (h[0] == '[') { /* [v6]:port */
        const char *close = strchr(h, ']');
        if (!close) return false;
        h++;
        n = (size_t)(close - h);
    } else {
        const char *colon = strchr(h, ':');
        /* more than one ':' without brackets: a bare IPv6 address */
        n = colon && !strchr(colon + 1, ':') ? (size_t)(colon - h) : strlen(h);
    }
    if (n == 0 || n >= sizeof host) return n == 0;
    memcpy(host, h, n);
    host[n] = 0;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return addr_is_local_v4(ntohl(a4.s_addr)) || addr_is_interface(AF_INET, &a4);
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return addr_is_local_v6(&a6) || addr_is_interface(AF_INET6, &a6);
    if (!strcasecmp(host, "localhost")) return true;
    if (ends_with(host, ".localhost") || ends_with(host, ".local") ||
        ends_with(host, ".internal"))
        return true;
    char me[256];
    if (gethostname(me, sizeof me) == 0) {
        me[sizeof me - 1] = 0;
        if (!strcasecmp(host, me)) return true;
    }
    return false;
}
