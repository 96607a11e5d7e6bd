/* test_chatfmt.c — dwell's chat-format table: every entry is well-formed and renders, the
 * fingerprint rules pick the right format in their documented order, and the fallback. The
 * fixture-based checks are in tests/golden/test_chat_templates.c. */
#include "engine/engine.h"
#include "test.h"

static char *render_chat(const eng_chat_format *f, const char *system, const eng_msg *m,
                         size_t n)
{
    eng_tmpl *t = NULL;
    core_err err = {0};
    if (eng_tmpl_parse(&t, f->template_src, strlen(f->template_src), &err)) {
        printf("  %s: parse: %s\n", f->name, err.msg);
        return NULL;
    }
    core_buf out;
    core_buf_init(&out);
    int rc = eng_tmpl_render_chat(t, system, m, n, &out, &err);
    eng_tmpl_free(t);
    if (rc) {
        printf("  %s: render: %s\n", f->name, err.msg);
        core_buf_deinit(&out);
        return NULL;
    }
    return core_buf_steal(&out);
}

TEST(chatfmt_table_entries_are_well_formed)
{
    size_t n = 0;
    for (; eng_chat_format_at(n); n++) {
        const eng_chat_format *f = eng_chat_format_at(n);
        CHECK(f->name && *f->name && f->template_src && f->stops);
        CHECK(eng_chat_format_by_name(f->name) == f); /* names are unique */
        for (size_t k = 0; f->stops[k]; k++) CHECK(*f->stops[k]);
        eng_tmpl *t = NULL;
        core_err err = {0};
        CHECK_MSG(eng_tmpl_parse(&t, f->template_src, strlen(f->template_src), &err) == 0,
                  "%s: %s", f->name, err.msg);
        if (t) CHECK(eng_tmpl_uses_messages(t) == (strcmp(f->name, "raw") != 0));
        eng_tmpl_free(t);
    }
    CHECK(n >= 21);
    CHECK(eng_chat_format_at(n) == NULL);
    CHECK(eng_chat_format_by_name("no-such-format") == NULL);
    CHECK(eng_chat_format_by_name(NULL) == NULL);
}

TEST(chatfmt_every_format_renders_tools_and_odd_roles)
{
    const eng_msg m[] = {{"system", "S"}, {"user", "u"}, {"assistant", "a"}, {"tool", "t"},
                         {"ipython", "x"}, {"user", NULL}};
    for (size_t i = 0; eng_chat_format_at(i); i++) {
        char *s = render_chat(eng_chat_format_at(i), "default", m, 6);
        CHECK_MSG(s != NULL, "%s", eng_chat_format_at(i)->name);
        if (s) CHECK_CONTAINS(s, "u");
        free(s);
        s = render_chat(eng_chat_format_at(i), NULL, NULL, 0);
        CHECK_MSG(s != NULL, "%s with no messages", eng_chat_format_at(i)->name);
        free(s);
    }
}

static const char *pick(const char *jinja) { return eng_chat_format_for_jinja(jinja)->name; }

TEST(chatfmt_fingerprints_follow_the_documented_order)
{
    CHECK_EQ_STR(pick("{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' }} <|im_start|>"), "command-r");
    CHECK_EQ_STR(pick("'<|start_header_id|>' + role + '<|end_header_id|>'"), "llama3-instruct");
    CHECK_EQ_STR(pick("<start_of_turn>{{ '<start_of_image>' }}"), "gemma3-instruct");
    CHECK_EQ_STR(pick("{% set first_user_prefix = '' %}<start_of_turn>"), "gemma3-instruct");
    CHECK_EQ_STR(pick("'<start_of_turn>' + role"), "gemma-instruct");
    CHECK_EQ_STR(pick("'GPT4 Correct ' + message['role'].title()"), "openchat");
    CHECK_EQ_STR(pick("{{'<|im_start|>' + message['role']}}"), "chatml");
    CHECK_EQ_STR(pick("'<|user|>' + content + '<|end|>'"), "phi-3");
    CHECK_EQ_STR(pick("'<|user|>\\n' + content + eos_token"), "zephyr");
    CHECK_EQ_STR(pick("'<start_user>' + c + '<end_message>'"), "alfred");
    CHECK_EQ_STR(pick("'Source: ' + role + ' <step> '"), "codellama-70b-instruct");
    CHECK_EQ_STR(pick("'@@ Instruction\\n'"), "magicoder");
    CHECK_EQ_STR(pick("'### Instruction:\\n'"), "alpaca");
    CHECK_EQ_STR(pick("'### Instruction\n'"), "starcoder2-instruct");
    CHECK_EQ_STR(pick("'### User:\n' + c"), "solar-instruct");
    CHECK_EQ_STR(pick("'[INST] ' + '<<SYS>>\\n'"), "llama2-chat");
    CHECK_EQ_STR(pick("'[INST] ' + c + ' [/INST]'"), "mistral-instruct");
    CHECK_EQ_STR(pick("'Question:\\n' + c + 'Answer:'"), "granite-instruct");
    CHECK_EQ_STR(pick("'User: ' + c + 'Falcon:'"), "falcon-instruct");
    CHECK_EQ_STR(pick("'User: ' + c + 'Assistant: '"), "chatqa");
}

TEST(chatfmt_fallback_is_raw_prompt)
{
    const eng_chat_format *f = eng_chat_format_for_jinja("{% for m in messages %}{{ m }}");
    CHECK_EQ_STR(f->name, "raw");
    CHECK(f->stops[0] == NULL);
    const eng_msg u[] = {{"user", "Once upon a time"}};
    char *s = render_chat(f, NULL, u, 1);
    CHECK_EQ_STR(s, "Once upon a time");
    free(s);
    s = render_chat(f, "Be brief.", u, 1);
    CHECK_EQ_STR(s, "Be brief.\n\nOnce upon a time");
    free(s);
}

TEST(chatfmt_chatml_renders_a_chat)
{
    const eng_msg m[] = {{"user", "hi"}, {"assistant", "hello"}, {"user", "bye"}};
    char *s = render_chat(eng_chat_format_by_name("chatml"), "sys", m, 3);
    CHECK_EQ_STR(s, "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                    "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n"
                    "<|im_start|>assistant\n");
    free(s);
}

int main(void)
{
    RUN(chatfmt_table_entries_are_well_formed);
    RUN(chatfmt_every_format_renders_tools_and_odd_roles);
    RUN(chatfmt_fingerprints_follow_the_documented_order);
    RUN(chatfmt_fallback_is_raw_prompt);
    RUN(chatfmt_chatml_renders_a_chat);
    return test_summary();
}
