/* test_stop.c — stop strings over streamed text: hold-back, spanning pushes, never emitting
 * the stop string or what follows it. */
#include "engine/engine.h"
#include "test.h"

static eng_stop *make(const char *const *stops, size_t n)
{
    eng_stop *s = NULL;
    core_err err;
    if (eng_stop_new(&s, stops, n, &err)) printf("  eng_stop_new: %s\n", err.msg);
    return s;
}

/* Pushes each piece, returns the index of the push that stopped (or -1) and the output. */
static int feed(eng_stop *s, const char *const *pieces, size_t n, core_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (eng_stop_push(s, pieces[i], strlen(pieces[i]), out)) return (int)i;
    }
    eng_stop_flush(s, out);
    return -1;
}

TEST(stop_passes_text_through_without_stops)
{
    eng_stop *s = make(NULL, 0);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    const char *p[] = {"Hello", ", ", "world"};
    CHECK_EQ_INT(feed(s, p, 3, &out), -1);
    CHECK_EQ_STR(out.data, "Hello, world");
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_detects_stop_inside_one_push)
{
    const char *stops[] = {"STOP"};
    eng_stop *s = make(stops, 1);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    const char *p[] = {"abc", "xSTOPyz", "more"};
    CHECK_EQ_INT(feed(s, p, 3, &out), 1);
    CHECK_EQ_STR(out.data, "abcx");
    /* after a stop, nothing more is emitted */
    CHECK(eng_stop_push(s, "zzz", 3, &out));
    eng_stop_flush(s, &out);
    CHECK_EQ_STR(out.data, "abcx");
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_detects_stop_spanning_several_pushes)
{
    const char *stops[] = {"<|end|>"};
    eng_stop *s = make(stops, 1);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    CHECK(!eng_stop_push(s, "Hi <", 4, &out));
    CHECK_EQ_STR(out.data, "Hi "); /* "<" is held back */
    CHECK(!eng_stop_push(s, "|en", 3, &out));
    CHECK_EQ_STR(out.data, "Hi ");
    CHECK(eng_stop_push(s, "d|> trailing", 12, &out));
    CHECK_EQ_STR(out.data, "Hi ");
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_releases_held_text_that_turns_out_different)
{
    const char *stops[] = {"<|end|>"};
    eng_stop *s = make(stops, 1);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    CHECK(!eng_stop_push(s, "a <|e", 5, &out));
    CHECK_EQ_STR(out.data, "a ");
    CHECK(!eng_stop_push(s, "x", 1, &out));
    CHECK_EQ_STR(out.data, "a <|ex");
    CHECK(!eng_stop_push(s, "<", 1, &out));
    eng_stop_flush(s, &out);
    CHECK_EQ_STR(out.data, "a <|ex<"); /* flush gives the held-back text */
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_overlapping_prefix_is_found)
{
    /* "aab" in "aaab": a naive matcher that drops the held "aa" on mismatch misses it. */
    const char *stops[] = {"aab"};
    eng_stop *s = make(stops, 1);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    const char *p[] = {"x", "a", "a", "a", "b", "c"};
    CHECK_EQ_INT(feed(s, p, 6, &out), 4);
    CHECK_EQ_STR(out.data, "xa");
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_earliest_of_several_stops_wins)
{
    const char *stops[] = {"world", "lo, w", "\n\n"};
    eng_stop *s = make(stops, 3);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    const char *p[] = {"Hel", "lo, world"};
    CHECK_EQ_INT(feed(s, p, 2, &out), 1);
    CHECK_EQ_STR(out.data, "Hel");
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_at_the_very_start_emits_nothing)
{
    const char *stops[] = {"User:"};
    eng_stop *s = make(stops, 1);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    const char *p[] = {"Us", "er", ":", " hi"};
    CHECK_EQ_INT(feed(s, p, 4, &out), 2);
    CHECK(out.len == 0);
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_handles_utf8_stop_strings)
{
    const char *stops[] = {"\xe2\x80\x94"
                           "END"}; /* "—END" */
    eng_stop *s = make(stops, 1);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    const char *p[] = {"caf\xc3\xa9 ", "\xe2\x80\x94", "EN", "D!"};
    CHECK_EQ_INT(feed(s, p, 4, &out), 3);
    CHECK_EQ_STR(out.data, "caf\xc3\xa9 ");
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_ignores_empty_stop_strings)
{
    const char *stops[] = {"", "END"};
    eng_stop *s = make(stops, 2);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    const char *p[] = {"abc", "de"};
    CHECK_EQ_INT(feed(s, p, 2, &out), -1);
    CHECK_EQ_STR(out.data, "abcde");
    core_buf_deinit(&out);
    eng_stop_free(s);
}

TEST(stop_many_small_pushes_stay_bounded)
{
    const char *stops[] = {"###"};
    eng_stop *s = make(stops, 1);
    if (!s) return;
    core_buf out;
    core_buf_init(&out);
    for (int i = 0; i < 10000; i++)
        CHECK(!eng_stop_push(s, i % 3 == 2 ? "x" : "#", 1, &out));
    CHECK(out.len >= 10000 - 2);
    CHECK(eng_stop_push(s, "###", 3, &out));
    core_buf_deinit(&out);
    eng_stop_free(s);
}

int main(void)
{
    RUN(stop_passes_text_through_without_stops);
    RUN(stop_detects_stop_inside_one_push);
    RUN(stop_detects_stop_spanning_several_pushes);
    RUN(stop_releases_held_text_that_turns_out_different);
    RUN(stop_overlapping_prefix_is_found);
    RUN(stop_earliest_of_several_stops_wins);
    RUN(stop_at_the_very_start_emits_nothing);
    RUN(stop_handles_utf8_stop_strings);
    RUN(stop_ignores_empty_stop_strings);
    RUN(stop_many_small_pushes_stay_bounded);
    return test_summary();
}
