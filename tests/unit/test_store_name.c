/* test_store_name.c — model name parsing, validation, display, and digest parsing. */
#include <string.h>

#include "store/store.h"
#include "test.h"

TEST(store_name_defaults_fill_host_namespace_tag)
{
    store_name n;
    CHECK_EQ_INT(store_name_parse(&n, "llama2", NULL), CORE_OK);
    CHECK_EQ_STR(n.host, "registry.ollama.ai");
    CHECK_EQ_STR(n.ns, "library");
    CHECK_EQ_STR(n.model, "llama2");
    CHECK_EQ_STR(n.tag, "latest");
}

TEST(store_name_parses_every_part)
{
    store_name n;
    CHECK_EQ_INT(store_name_parse(&n, "example.com:5000/me/my-model.v2:q4_0", NULL), CORE_OK);
    CHECK_EQ_STR(n.host, "example.com:5000");
    CHECK_EQ_STR(n.ns, "me");
    CHECK_EQ_STR(n.model, "my-model.v2");
    CHECK_EQ_STR(n.tag, "q4_0");
    CHECK_EQ_INT(store_name_parse(&n, "user/model", NULL), CORE_OK);
    CHECK_EQ_STR(n.ns, "user");
    CHECK_EQ_STR(n.tag, "latest");
    CHECK_EQ_INT(store_name_parse(&n, "https://host.io/ns/m:t", NULL), CORE_OK);
    CHECK_EQ_STR(n.host, "host.io");
}

TEST(store_name_display_is_shortest_with_tag)
{
    store_name n;
    char buf[STORE_NAME_MAX];
    store_name_parse(&n, "llama2", NULL);
    store_name_display(&n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "llama2:latest");
    store_name_parse(&n, "registry.ollama.ai/library/mistral:7b", NULL);
    store_name_display(&n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "mistral:7b");
    store_name_parse(&n, "user/model:tag", NULL);
    store_name_display(&n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "user/model:tag");
    store_name_parse(&n, "host.io/library/m", NULL);
    store_name_display(&n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "host.io/library/m:latest");
    store_name_full(&n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "host.io/library/m:latest");
    store_name_parse(&n, "x", NULL);
    store_name_full(&n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "registry.ollama.ai/library/x:latest");
}

TEST(store_name_rejects_path_like_and_malformed_names)
{
    static const char *bad[] = {
        "",           "../x",          "a/../../b",     "/etc/passwd",   "..",
        ".",          "./x",           "x/..",          "a/b/c/d/e",     "has space",
        "tab\tname",  "m:",            ":tag",          "/x",            "x/",
        "a//b",       "ns.dot/model",  "m:t/x",         "model:ta:g",    "-lead",
        ".hidden",    "m:.t",          "m:-t",          "ns/-m",         "a\\b",
        "mo@del",     "m:t@sha256:00", "uni\xc3\xa9",   "h/ns:x/m",      "host/ns/m/extra:t",
        "~/x",        "m*",            "m?",            "m\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        store_name n;
        core_err err;
        int rc = store_name_parse(&n, bad[i], &err);
        CHECK_MSG(rc == CORE_INVALID, "accepted \"%s\"", bad[i]);
        if (rc == CORE_INVALID) CHECK_CONTAINS(err.msg, "invalid model name");
    }
    CHECK(!store_name_valid(NULL));
}

TEST(store_name_enforces_length_limits)
{
    char buf[600];
    memset(buf, 'a', 80);
    buf[80] = '\0';
    CHECK(store_name_valid(buf));
    buf[80] = 'a';
    buf[81] = '\0';
    CHECK(!store_name_valid(buf));
    /* a host of 350 is fine, 351 is not */
    memset(buf, 'h', 350);
    memcpy(buf + 350, "/ns/m:t", 8);
    CHECK(store_name_valid(buf));
    memset(buf, 'h', 351);
    memcpy(buf + 351, "/ns/m:t", 8);
    CHECK(!store_name_valid(buf));
    /* a tag of 81 */
    memcpy(buf, "m:", 2);
    memset(buf + 2, 't', 81);
    buf[83] = '\0';
    CHECK(!store_name_valid(buf));
}

TEST(store_name_allows_characters_per_part)
{
    CHECK(store_name_valid("_model"));
    CHECK(store_name_valid("9lives:1.0-beta_2"));
    CHECK(store_name_valid("my_ns-x/model"));
    CHECK(!store_name_valid("my.ns/model")); /* namespace: no '.' */
    CHECK(!store_name_valid("ns/mo:del/x"));
    CHECK(store_name_valid("localhost:11434/ns/m"));
}

TEST(store_name_equal_ignores_case)
{
    store_name a, b;
    store_name_parse(&a, "Llama2:Latest", NULL);
    store_name_parse(&b, "llama2", NULL);
    CHECK(store_name_equal(&a, &b));
    store_name_parse(&b, "llama3", NULL);
    CHECK(!store_name_equal(&a, &b));
}

TEST(store_digest_accepts_colon_dash_and_upper_hex)
{
    char d[STORE_DIGEST_BUF];
    const char *hex = "A3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    char in[100];
    snprintf(in, sizeof in, "sha256:%s", hex);
    CHECK_EQ_INT(store_digest_parse(in, d, NULL), CORE_OK);
    CHECK_EQ_STR(d, "sha256:a3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    snprintf(in, sizeof in, "sha256-%s", hex);
    CHECK_EQ_INT(store_digest_parse(in, d, NULL), CORE_OK);
}

TEST(store_digest_rejects_malformed)
{
    char d[STORE_DIGEST_BUF];
    static const char *bad[] = {
        "", "sha256:", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
        "sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "../../../../etc/passwd/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(store_digest_parse(bad[i], d, NULL) == CORE_INVALID, "accepted %s", bad[i]);
    }
    CHECK(store_digest_parse(NULL, d, NULL) == CORE_INVALID);
}

TEST(store_digest_of_empty_is_known)
{
    char d[STORE_DIGEST_BUF];
    store_digest_of("", 0, d);
    CHECK_EQ_STR(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    store_digest_of("abc", 3, d);
    CHECK_EQ_STR(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    RUN(store_name_defaults_fill_host_namespace_tag);
    RUN(store_name_parses_every_part);
    RUN(store_name_display_is_shortest_with_tag);
    RUN(store_name_rejects_path_like_and_malformed_names);
    RUN(store_name_enforces_length_limits);
    RUN(store_name_allows_characters_per_part);
    RUN(store_name_equal_ignores_case);
    RUN(store_digest_accepts_colon_dash_and_upper_hex);
    RUN(store_digest_rejects_malformed);
    RUN(store_digest_of_empty_is_known);
    return test_summary();
}
