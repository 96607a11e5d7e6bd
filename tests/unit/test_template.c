/* test_template.c — the Go-template renderer: constructs, functions, Ollama's chat prompt
 * construction, and errors (with their line numbers) and limits on hostile templates. */
#include "engine/engine.h"
#include "test.h"

static const eng_msg chat4[] = {
    {"system", "SYS"},
    {"user", "hi"},
    {"assistant", "yo"},
    {"user", "again"},
};

static char last_err[256];

/* Renders src with .System "S", .Prompt "P", .Messages = chat4; returns a malloc'd string,
 * or NULL with the message in last_err. */
static char *render(const char *src)
{
    eng_tmpl *t = NULL;
    core_err err = {0};
    last_err[0] = '\0';
    if (eng_tmpl_parse(&t, src, strlen(src), &err)) {
        snprintf(last_err, sizeof last_err, "%s", err.msg);
        return NULL;
    }
    eng_tmpl_vars v = {.system = "S", .prompt = "P", .messages = chat4, .n_messages = 4};
    core_buf out;
    core_buf_init(&out);
    int rc = eng_tmpl_render(t, &v, &out, &err);
    eng_tmpl_free(t);
    if (rc) {
        snprintf(last_err, sizeof last_err, "%s", err.msg);
        core_buf_deinit(&out);
        return NULL;
    }
    return core_buf_steal(&out);
}

#define CHECK_RENDER(src, want)                                         \
    do {                                                                \
        char *got_ = render(src);                                       \
        CHECK_MSG(got_ != NULL, "%s: %s", src, last_err);               \
        if (got_) CHECK_EQ_STR(got_, want);                             \
        free(got_);                                                     \
    } while (0)

#define CHECK_FAILS(src, needle)                                        \
    do {                                                                \
        char *got_ = render(src);                                       \
        CHECK_MSG(got_ == NULL, "%s rendered \"%s\"", src, got_);       \
        free(got_);                                                     \
        CHECK_CONTAINS(last_err, needle);                               \
    } while (0)

static char *chat(const char *src, const char *system, const eng_msg *m, size_t n)
{
    eng_tmpl *t = NULL;
    core_err err = {0};
    if (eng_tmpl_parse(&t, src, strlen(src), &err)) {
        snprintf(last_err, sizeof last_err, "%s", err.msg);
        return NULL;
    }
    core_buf out;
    core_buf_init(&out);
    int rc = eng_tmpl_render_chat(t, system, m, n, &out, &err);
    eng_tmpl_free(t);
    if (rc) {
        snprintf(last_err, sizeof last_err, "%s", err.msg);
        core_buf_deinit(&out);
        return NULL;
    }
    return core_buf_steal(&out);
}

// ---- text, actions, whitespace ----

TEST(template_renders_text_and_fields)
{
    CHECK_RENDER("plain text", "plain text");
    CHECK_RENDER("a{{ .Prompt }}b{{.System}}c", "aPbSc");
    CHECK_RENDER("[{{ .Response }}][{{ .Suffix }}]", "[][]");
    CHECK_RENDER("[{{ .Missing }}][{{ .Missing.Deeper }}]", "[][]");
    CHECK_RENDER("{{ (index .Messages 1).Role }}", "user");
}

TEST(template_trim_markers_and_comments)
{
    CHECK_RENDER("a  \n {{- .Prompt }}", "aP");
    CHECK_RENDER("{{ .Prompt -}} \n\t b", "Pb");
    CHECK_RENDER("a {{- .Prompt -}} b", "aPb");
    CHECK_RENDER("x{{-3}}", "x-3");
    CHECK_RENDER("a {{/* a comment */}} b", "a  b");
    CHECK_RENDER("a {{- /* trimmed \n comment */ -}} b", "ab");
    CHECK_RENDER("line1\n{{- \"\" }}\nline2", "line1\nline2");
}

TEST(template_string_constants_and_escapes)
{
    CHECK_RENDER("{{ \"a\\tb\\n\\\"q\\\"\\\\\" }}", "a\tb\n\"q\"\\");
    CHECK_RENDER("{{ \"\\u00e9\\x41\\101\" }}", "\xc3\xa9" "AA");
    CHECK_RENDER("{{ `raw\\n` }}", "raw\\n");
    CHECK_RENDER("{{ 'a' }} {{ 0x10 }} {{ 1_000 }} {{ 2.5 }} {{ 1e6 }}", "97 16 1000 2.5 1e+06");
    CHECK_RENDER("{{ true }} {{ false }}", "true false");
}

// ---- control structures ----

TEST(template_if_else_chain_and_truthiness)
{
    CHECK_RENDER("{{ if .Prompt }}yes{{ else }}no{{ end }}", "yes");
    CHECK_RENDER("{{ if .Response }}yes{{ else }}no{{ end }}", "no");
    CHECK_RENDER("{{ if 0 }}a{{ else if \"\" }}b{{ else if .Tools }}c{{ else }}d{{ end }}", "d");
    CHECK_RENDER("{{ if 1 }}a{{ end }}{{ if .Messages }}b{{ end }}{{ if .Tools }}c{{ end }}", "ab");
    CHECK_RENDER("{{ if and .Prompt .System }}1{{ end }}{{ if or .Response .Tools }}2{{ end }}",
                 "1");
    CHECK_RENDER("{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ or 0 \"\" }}", "0 x ");
    CHECK_RENDER("{{ if not .Response }}empty{{ end }}", "empty");
}

TEST(template_range_forms)
{
    CHECK_RENDER("{{ range .Messages }}{{ .Role }},{{ end }}", "system,user,assistant,user,");
    CHECK_RENDER("{{ range $i, $m := .Messages }}{{ $i }}={{ $m.Content }} {{ end }}",
                 "0=SYS 1=hi 2=yo 3=again ");
    CHECK_RENDER("{{ range $m := .Messages }}{{ $m.Role }}{{ end }}",
                 "systemuserassistantuser");
    CHECK_RENDER("{{ range .Tools }}x{{ else }}no tools{{ end }}", "no tools");
    CHECK_RENDER("{{ range .Messages }}{{ if eq .Role \"system\" }}{{ continue }}{{ end }}"
                 "{{ if eq .Content \"yo\" }}{{ break }}{{ end }}{{ .Content }};{{ end }}",
                 "hi;");
    CHECK_RENDER("{{ range .Messages }}{{ $.Prompt }}{{ end }}", "PPPP");
    CHECK_RENDER("{{ range 3 }}{{ . }}{{ end }}", "012");
}

TEST(template_range_over_map_is_sorted)
{
    CHECK_RENDER("{{ range $k, $v := index .Messages 0 }}{{ $k }};{{ end }}",
                 "Content;Images;Role;Thinking;ToolCalls;ToolName;");
}

TEST(template_with_and_variables)
{
    CHECK_RENDER("{{ with .Prompt }}<{{ . }}>{{ end }}", "<P>");
    CHECK_RENDER("{{ with .Response }}x{{ else }}none{{ end }}", "none");
    CHECK_RENDER("{{ with .Response }}x{{ else with .System }}[{{ . }}]{{ end }}", "[S]");
    CHECK_RENDER("{{ $x := \"a\" }}{{ if true }}{{ $x = \"b\" }}{{ end }}{{ $x }}", "b");
    CHECK_RENDER("{{ $s := \"\" }}{{ range .Messages }}{{ $s = printf \"%s%s\" $s .Content }}"
                 "{{ end }}{{ $s }}", "SYShiyoagain");
    CHECK_RENDER("{{ if $v := .Prompt }}{{ $v }}{{ end }}", "P");
    CHECK_RENDER("{{- $last := eq (len (slice $.Messages 3)) 1 }}{{ $last }}", "true");
}

// ---- functions ----

TEST(template_comparisons)
{
    CHECK_RENDER("{{ eq .Prompt \"P\" }} {{ eq 1 2 3 1 }} {{ ne 1 2 }} {{ eq .Missing nil }}",
                 "true true true true");
    CHECK_RENDER("{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1 2.5 }}",
                 "true true true false");
    CHECK_FAILS("{{ eq .Prompt 1 }}", "incompatible types");
    CHECK_FAILS("{{ lt .Messages 1 }}", "non-comparable");
}

TEST(template_len_index_slice)
{
    CHECK_RENDER("{{ len .Messages }} {{ len .Prompt }} {{ len .Tools }}", "4 1 0");
    CHECK_RENDER("{{ (index .Messages 3).Content }} {{ index \"AB\" 1 }}", "again 66");
    CHECK_RENDER("{{ slice \"hello\" 1 3 }}|{{ slice \"hello\" 2 }}|"
                 "{{ len (slice .Messages 1 3) }}", "el|llo|2");
    CHECK_FAILS("{{ index .Messages 9 }}", "index out of range: 9");
    CHECK_FAILS("{{ slice \"abc\" 2 1 }}", "invalid slice index");
    CHECK_FAILS("{{ len 3 }}", "len of type int");
}

TEST(template_print_functions)
{
    CHECK_RENDER("{{ print 1 2 \"a\" 3 }}", "1 2a3");
    CHECK_RENDER("{{ println \"a\" 1 }}", "a 1\n");
    CHECK_RENDER("{{ printf \"%s|%d|%5.2f|%x|%q|%t|%v|%%|%-3s|\" \"s\" 42 3.14159 255 \"q\" true "
                 "2.5 \"l\" }}", "s|42| 3.14|ff|\"q\"|true|2.5|%|l  |");
    CHECK_RENDER("{{ printf \"%d %s\" \"x\" }}", "%!d(string=x) %!s(MISSING)");
    CHECK_RENDER("{{ .Prompt | printf \"<%s>\" }}", "<P>");
    CHECK_RENDER("{{ \"a\" | printf \"%s%s\" \"b\" }}", "ba");
}

TEST(template_escapers_and_json)
{
    CHECK_RENDER("{{ html \"<a href='x'>&\\\"\" }}", "&lt;a href=&#39;x&#39;&gt;&amp;&#34;");
    CHECK_RENDER("{{ js \"it's <b>\" }}", "it\\'s \\u003Cb\\u003E");
    CHECK_RENDER("{{ urlquery \"a b&c/é\" }}", "a+b%26c%2F%C3%A9");
    CHECK_RENDER("{{ json .Prompt }} {{ json 1 }} {{ json .Tools }} {{ json \"<\\n>\" }}",
                 "\"P\" 1 [] \"\\u003c\\n\\u003e\"");
    CHECK_RENDER("{{ json (index .Messages 1) }}",
                 "{\"Content\":\"hi\",\"Images\":[],\"Role\":\"user\",\"Thinking\":\"\","
                 "\"ToolCalls\":[],\"ToolName\":\"\"}");
    char *d = render("{{ currentDate }}");
    CHECK(d && strlen(d) == 10 && d[4] == '-' && d[7] == '-');
    free(d);
}

// ---- Ollama's chat prompt construction (spec section L) ----

TEST(chat_messages_template_gets_collated_system)
{
    char *s = chat("{{ .System }}|{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}",
                   NULL, chat4, 4);
    CHECK_EQ_STR(s, "SYS|system:SYS;user:hi;assistant:yo;user:again;");
    free(s);
    const eng_msg two_sys[] = {{"system", "A"}, {"user", "u"}, {"system", "B"}};
    s = chat("{{ .System }}{{ if .Messages }}{{ end }}", NULL, two_sys, 3);
    CHECK_EQ_STR(s, "A\n\nB");
    free(s);
}

TEST(chat_merges_consecutive_roles_but_not_tools)
{
    const eng_msg m[] = {{"user", "a"}, {"user", "b"}, {"tool", "t1"}, {"tool", "t2"}};
    char *s = chat("{{ range .Messages }}[{{ .Role }}={{ .Content }}]{{ end }}", NULL, m, 4);
    CHECK_EQ_STR(s, "[user=a\n\nb][tool=t1][tool=t2]");
    free(s);
}

TEST(chat_prepends_system_unless_present)
{
    const eng_msg u[] = {{"user", "hi"}};
    char *s = chat("{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}", "DEF", u, 1);
    CHECK_EQ_STR(s, "system:DEF;user:hi;");
    free(s);
    s = chat("{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}", "DEF", chat4, 4);
    CHECK_EQ_STR(s, "system:SYS;user:hi;assistant:yo;user:again;");
    free(s);
}

TEST(chat_legacy_template_runs_per_turn_and_cuts_after_response)
{
    const char *src = "{{ if .System }}<s>{{ .System }}</s>{{ end }}"
                      "{{ if .Prompt }}<u>{{ .Prompt }}</u>{{ end }}<a>{{ .Response }}</a>";
    char *s = chat(src, NULL, chat4, 4);
    CHECK_EQ_STR(s, "<s>SYS</s><u>hi</u><a>yo</a><u>again</u><a>");
    free(s);
}

TEST(chat_legacy_template_without_response_gets_it_appended)
{
    eng_tmpl *t = NULL;
    CHECK(eng_tmpl_parse(&t, "{{ .Prompt }}", 13, NULL) == 0);
    CHECK(!eng_tmpl_uses_messages(t));
    eng_tmpl_free(t);
    char *s = chat("{{ .Prompt }}", NULL, chat4, 4);
    CHECK_EQ_STR(s, "hiyoagain");
    free(s);
    s = chat("[INST] {{ .Prompt }} [/INST]", NULL, chat4, 4);
    CHECK_EQ_STR(s, "[INST] hi [/INST]yo[INST] again [/INST]");
    free(s);
}

TEST(template_reports_uses_messages_and_suffix)
{
    eng_tmpl *t = NULL;
    const char *fim = "<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>";
    CHECK(eng_tmpl_parse(&t, fim, strlen(fim), NULL) == 0);
    CHECK(eng_tmpl_uses_suffix(t));
    CHECK(!eng_tmpl_uses_messages(t));
    eng_tmpl_free(t);
    const char *msgs = "{{ range $.Messages }}{{ end }}";
    CHECK(eng_tmpl_parse(&t, msgs, strlen(msgs), NULL) == 0);
    CHECK(eng_tmpl_uses_messages(t));
    CHECK(!eng_tmpl_uses_suffix(t));
    eng_tmpl_free(t);
}

// ---- errors ----

TEST(template_parse_errors_name_line_and_token)
{
    CHECK_FAILS("a\nb {{ .Prompt ", "line 2: unclosed action");
    CHECK_FAILS("{{ foo .Prompt }}", "function \"foo\" not defined");
    CHECK_FAILS("{{ .Prompt | 3 }}", "non executable command in pipeline stage 2");
    CHECK_FAILS("{{ .Prompt | }}", "unexpected \"}}\"");
    CHECK_FAILS("x\n\n{{ if .Prompt }}x", "line 3: unexpected EOF: if (line 3) has no end");
    CHECK_FAILS("{{ end }}", "unexpected {{end}}");
    CHECK_FAILS("{{ else }}", "unexpected {{else}}");
    CHECK_FAILS("{{ if }}{{ end }}", "unexpected \"}}\" in if");
    CHECK_FAILS("{{ $x }}", "undefined variable \"$x\"");
    CHECK_FAILS("{{ if 1 }}{{ $y := 1 }}{{ end }}{{ $y }}", "undefined variable \"$y\"");
    CHECK_FAILS("{{ \"abc }}", "unterminated quoted string");
    CHECK_FAILS("{{ break }}", "{{break}} outside {{range}}");
    CHECK_FAILS("{{ template \"x\" }}", "not supported");
    CHECK_FAILS("{{ 3 4 }}", "can't give argument to non-function");
    CHECK_FAILS("{{ \"\\q\" }}", "bad escape");
    CHECK_FAILS("{{ 12abc }}", "bad number syntax");
    CHECK_FAILS("{{/* open ", "unclosed comment");
    CHECK_FAILS("{{ if nil }}{{ end }}", "nil is not a command");
    CHECK_FAILS("{{ # }}", "unexpected character '#'");
}

TEST(template_exec_errors_say_what_failed)
{
    CHECK_FAILS("\n{{ printf 3 }}", "line 2: error calling printf");
    CHECK_FAILS("{{ not 1 2 }}", "wrong number of args for not: want 1 got 2");
    CHECK_FAILS("{{ .Prompt.X }}", "can't evaluate field X in type string");
    CHECK_FAILS("{{ range .Prompt }}{{ end }}", "range can't iterate over string");
    CHECK_FAILS("{{ .Prompt 1 }}", "is not a method but has arguments");
}

static char *nested(const char *open, const char *close, int depth)
{
    size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc((lo + lc) * (size_t)depth + 16);
    size_t k = 0;
    for (int i = 0; i < depth; i++) memcpy(s + k, open, lo), k += lo;
    memcpy(s + k, "x", 1), k += 1;
    for (int i = 0; i < depth; i++) memcpy(s + k, close, lc), k += lc;
    s[k] = '\0';
    return s;
}

TEST(template_deep_nesting_is_an_error_not_a_crash)
{
    char *s = nested("{{ if 1 }}", "{{ end }}", 10000);
    CHECK_FAILS(s, "nesting deeper than");
    free(s);
    s = nested("{{ range .Messages }}", "{{ end }}", 60);
    free(render(s)); /* fine: within the limit, and bounded by the step limit */
    free(s);
    char *p = malloc(20100);
    size_t k = 0;
    memcpy(p, "{{ ", 3), k = 3;
    memset(p + k, '(', 10000), k += 10000;
    p[k++] = '1';
    memset(p + k, ')', 10000), k += 10000;
    memcpy(p + k, " }}", 4);
    CHECK_FAILS(p, "nesting deeper than");
    free(p);
    s = nested("{{ if 1 }}", "{{ end }}", 40);
    CHECK_RENDER(s, "x");
    free(s);
}

TEST(template_hostile_growth_hits_limits)
{
    CHECK_FAILS("{{ $s := \"xx\" }}{{ range 200 }}{{ $s = printf \"%s%s\" $s $s }}{{ end }}",
                "line 1:");
    CHECK_FAILS("{{ range 100000 }}{{ range 100000 }}{{ end }}{{ end }}", "steps");
    CHECK_FAILS("{{ range 1000000000 }}{{ $.Prompt }}{{ end }}", "steps");
}

TEST(template_rejects_nul_and_huge_sources)
{
    eng_tmpl *t = NULL;
    core_err err = {0};
    CHECK(eng_tmpl_parse(&t, "a\0b", 3, &err) == CORE_FORMAT);
    size_t n = (2u << 20);
    char *big = malloc(n);
    memset(big, 'a', n);
    CHECK(eng_tmpl_parse(&t, big, n, &err) == CORE_LIMIT);
    free(big);
}

TEST(render_failure_leaves_output_unchanged)
{
    eng_tmpl *t = NULL;
    const char *src = "partial {{ len 3 }}";
    CHECK(eng_tmpl_parse(&t, src, strlen(src), NULL) == 0);
    core_buf out;
    core_buf_init(&out);
    core_buf_append_str(&out, "keep");
    core_err err = {0};
    CHECK(eng_tmpl_render(t, NULL, &out, &err) == CORE_INVALID);
    CHECK_EQ_STR(out.data, "keep");
    core_buf_deinit(&out);
    eng_tmpl_free(t);
}

int main(void)
{
    RUN(template_renders_text_and_fields);
    RUN(template_trim_markers_and_comments);
    RUN(template_string_constants_and_escapes);
    RUN(template_if_else_chain_and_truthiness);
    RUN(template_range_forms);
    RUN(template_range_over_map_is_sorted);
    RUN(template_with_and_variables);
    RUN(template_comparisons);
    RUN(template_len_index_slice);
    RUN(template_print_functions);
    RUN(template_escapers_and_json);
    RUN(chat_messages_template_gets_collated_system);
    RUN(chat_merges_consecutive_roles_but_not_tools);
    RUN(chat_prepends_system_unless_present);
    RUN(chat_legacy_template_runs_per_turn_and_cuts_after_response);
    RUN(chat_legacy_template_without_response_gets_it_appended);
    RUN(template_reports_uses_messages_and_suffix);
    RUN(template_parse_errors_name_line_and_token);
    RUN(template_exec_errors_say_what_failed);
    RUN(template_deep_nesting_is_an_error_not_a_crash);
    RUN(template_hostile_growth_hits_limits);
    RUN(template_rejects_nul_and_huge_sources);
    RUN(render_failure_leaves_output_unchanged);
    return test_summary();
}
