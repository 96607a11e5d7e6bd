/* chatfmt.c — dwell's own table of chat formats, for GGUF files imported without an Ollama
 * template layer (see docs/chat-formats.md).
 *
 * Each format has a name (Ollama's names for the same formats, so `ollama show` output
 * matches), a Go template written here for dwell's renderer (template_*.c), and the stop
 * strings Ollama's built-in templates set for it. A GGUF's Jinja `tokenizer.chat_template`
 * selects a format by fingerprint: an ordered list of rules, each a set of marker strings
 * that must all occur in the Jinja text; the first rule that matches wins. Markers are the
 * distinctive turn tokens and headers of each format, so a rule matches the whole family of
 * Jinja templates that produce that format, not one exact text. Rules for formats that
 * contain another's markers come first (gemma3 before gemma, llama2's <<SYS>> before
 * mistral's [INST], phi-3's <|end|> before zephyr's <|user|>, …).
 *
 * When nothing matches (or there is no Jinja template) the fallback is "raw": the prompt as it
 * is, after the system prompt if there is one — Ollama's own default template `{{ .Prompt }}`,
 * which is right for base models such as stories260K.
 *
 * Everything here is immutable static data; safe from any thread. */
#include <string.h>

#include "engine/engine.h"

// ---- stop strings (the "stop" parameters of Ollama's built-in templates) ----

#define STOPS(...) ((const char *const[]){__VA_ARGS__, NULL})

// ---- the table ----

/* Templates are written on several C lines for reading; only "\n" inside the strings is
 * output. They are all .Messages templates: Ollama's renderer joins all system messages into
 * .System and merges consecutive messages of one role before they get here. */
static const eng_chat_format formats[] = {
    {"raw",
     "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}{{ .Response }}",
     STOPS(NULL)},
    {"llama3-instruct",
     "{{ range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
     "{{ .Content }}<|eot_id|>{{ end }}"
     "<|start_header_id|>assistant<|end_header_id|>\n\n",
     STOPS("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")},
    {"chatml",
     "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
     "<|im_start|>assistant\n",
     STOPS("<|im_start|>", "<|im_end|>")},
    {"phi-3",
     "{{ range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n",
     STOPS("<|end|>", "<|system|>", "<|user|>", "<|assistant|>")},
    {"zephyr",
     "{{ range .Messages }}<|{{ .Role }}|>\n{{ .Content }}</s>\n{{ end }}<|assistant|>\n",
     STOPS("<|system|>", "</s>", "<|user|>", "<|assistant|>")},
    {"gemma-instruct",
     /* Gemma has no system turn: pending system text opens the next user turn. */
     "{{ $sys := \"\" }}{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}"
     "{{ if $sys }}{{ $sys = printf \"%s\\n\\n%s\" $sys .Content }}"
     "{{ else }}{{ $sys = .Content }}{{ end }}"
     "{{ else }}<start_of_turn>{{ if eq .Role \"assistant\" }}model{{ else }}{{ .Role }}{{ end }}\n"
     "{{ if and $sys (eq .Role \"user\") }}{{ $sys }}\n{{ $sys = \"\" }}{{ end }}"
     "{{ .Content }}<end_of_turn>\n{{ end }}"
     "{{ end }}<start_of_turn>model\n",
     STOPS("<start_of_turn>", "<end_of_turn>")},
    {"gemma3-instruct",
     "{{ $sys := .System }}{{ range .Messages }}"
     "{{ if eq .Role \"user\" }}<start_of_turn>user\n"
     "{{ if $sys }}{{ $sys }}\n\n{{ $sys = \"\" }}{{ end }}{{ .Content }}<end_of_turn>\n"
     "{{ else if eq .Role \"assistant\" }}<start_of_turn>model\n{{ .Content }}<end_of_turn>\n"
     "{{ end }}{{ end }}<start_of_turn>model\n\n",
     STOPS("<end_of_turn>")},
    {"mistral-instruct",
     "[INST] {{ range .Messages }}"
     "{{ if eq .Role \"system\" }}{{ .Content }}\n\n"
     "{{ else if eq .Role \"user\" }}{{ .Content }}[/INST]"
     "{{ else if eq .Role \"assistant\" }} {{ .Content }}</s>[INST] "
     "{{ end }}{{ end }}",
     STOPS("<|im_start|>", "<|im_end|>")},
    {"llama2-chat",
     /* The system text goes in <<SYS>> of the next user turn. */
     "[INST] {{ $sys := \"\" }}{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}"
     "{{ if $sys }}{{ $sys = printf \"%s\\n\\n%s\" $sys .Content }}"
     "{{ else }}{{ $sys = .Content }}{{ end }}"
     "{{ else if eq .Role \"user\" }}<<SYS>>{{ if $sys }}\n{{ $sys }}\n{{ $sys = \"\" }}{{ end }}"
     "<</SYS>>\n\n{{ .Content }} [/INST]"
     "{{ else if eq .Role \"assistant\" }} {{ .Content }}</s><s>[INST] "
     "{{ end }}{{ end }}",
     STOPS("[INST]", "[/INST]", "<<SYS>>", "<</SYS>>")},
    {"codellama-70b-instruct",
     "{{ range .Messages }}Source: {{ .Role }}\n\n {{ .Content }} <step> {{ end }}"
     "Source: assistant\nDestination: user\n\n ",
     STOPS("Source:", "Destination:", "<step>")},
    {"command-r",
     "{{ if .System }}<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{ .System }}"
     "<|END_OF_TURN_TOKEN|>{{ end }}"
     "{{ range .Messages }}{{ if ne .Role \"system\" }}<|START_OF_TURN_TOKEN|>"
     "{{ if eq .Role \"user\" }}<|USER_TOKEN|>{{ .Content }}"
     "{{ else if eq .Role \"assistant\" }}<|CHATBOT_TOKEN|>{{ .Content }}"
     "{{ else if eq .Role \"tool\" }}<|SYSTEM_TOKEN|><results>\nconsole_output: {{ .Content }}"
     "\n</results>{{ end }}<|END_OF_TURN_TOKEN|>{{ end }}{{ end }}"
     "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\n",
     STOPS("<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>")},
    {"openchat",
     "{{ range .Messages }}GPT4 Correct "
     "{{ if eq .Role \"system\" }}System{{ else if eq .Role \"user\" }}User"
     "{{ else if eq .Role \"assistant\" }}Assistant{{ else }}{{ .Role }}{{ end }}: "
     "{{ .Content }}<|end_of_turn|>{{ end }}GPT4 Correct Assistant:",
     STOPS("<|end_of_turn|>")},
    {"alfred",
     "{{ range .Messages }}<start_{{ .Role }}>{{ .Content }}<end_message>{{ end }}"
     "<start_assistant>",
     STOPS("<start_system>", "<end_message>", "<start_user>", "<start_assistant>")},
    {"alpaca",
     "{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}{{ .Content }}\n\n"
     "{{ else if eq .Role \"user\" }}### Instruction:\n{{ .Content }}\n\n"
     "{{ else if eq .Role \"assistant\" }}### Response:\n{{ .Content }}\n\n"
     "{{ end }}{{ end }}### Response:\n",
     STOPS("### Instruction:", "### Response")},
    {"starcoder2-instruct",
     "{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}{{ .Content }}\n\n"
     "{{ else if eq .Role \"user\" }}### Instruction\n{{ .Content }}\n\n"
     "{{ else if eq .Role \"assistant\" }}### Response\n{{ .Content }}<|endoftext|>\n\n"
     "{{ end }}{{ end }}### Response\n",
     STOPS("### Instruction", "### Response", "<|endoftext|>")},
    {"magicoder",
     "{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}{{ .Content }}\n\n"
     "{{ else if eq .Role \"user\" }}@@ Instruction\n{{ .Content }}\n\n"
     "{{ else if eq .Role \"assistant\" }}@@ Response\n{{ .Content }}\n\n"
     "{{ end }}{{ end }}@@ Response\n",
     STOPS("@@ Instruction", "@@ Response")},
    {"solar-instruct",
     "{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}### System:\n{{ .Content }}\n\n"
     "{{ else if eq .Role \"user\" }}### User:\n{{ .Content }}\n\n"
     "{{ else if eq .Role \"assistant\" }}### Assistant:\n{{ .Content }}</s>\n\n"
     "{{ end }}{{ end }}### Assistant:\n",
     STOPS("### System:", "### User:", "### Assistant")},
    {"vicuna",
     "{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}{{ .Content }}\n\n"
     "{{ else if eq .Role \"user\" }}USER: {{ .Content }}\n"
     "{{ else if eq .Role \"assistant\" }}ASSISTANT: {{ .Content }}</s>\n"
     "{{ end }}{{ end }}ASSISTANT:",
     STOPS("USER:", "ASSISTANT:")},
    {"granite-instruct",
     "{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}System:{{ else if eq .Role \"user\" }}Question:"
     "{{ else if eq .Role \"assistant\" }}Answer:{{ end }}\n{{ .Content }}\n\n"
     "{{ end }}Answer:\n",
     STOPS("System:", "Question:", "Answer:")},
    {"falcon-instruct",
     "{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}System: {{ .Content }}\n"
     "{{ else }}{{ if eq .Role \"user\" }}User:{{ else if eq .Role \"assistant\" }}Falcon:"
     "{{ end }}\n{{ .Content }}\n{{ end }}{{ end }}Falcon:\n",
     STOPS("User:", "Assistant:")},
    {"chatqa",
     "{{ range .Messages }}"
     "{{ if eq .Role \"system\" }}System:{{ else if eq .Role \"user\" }}User:"
     "{{ else if eq .Role \"assistant\" }}Assistant:{{ end }} {{ .Content }}\n\n"
     "{{ end }}Assistant:",
     STOPS("System:", "User:", "Assistant:", "<|begin_of_text|>")},
};

#define N_FORMATS (sizeof formats / sizeof formats[0])

// ---- fingerprints ----

/* Checked in this order; a rule matches when every marker occurs in the Jinja text. */
static const struct {
    const char *name;
    const char *markers[3];
} rules[] = {
    {"command-r", {"<|START_OF_TURN_TOKEN|>"}},
    {"llama3-instruct", {"<|start_header_id|>"}},
    {"gemma3-instruct", {"<start_of_turn>", "<start_of_image>"}},
    {"gemma3-instruct", {"<start_of_turn>", "first_user_prefix"}},
    {"gemma-instruct", {"<start_of_turn>"}},
    {"openchat", {"GPT4 Correct"}},
    {"chatml", {"<|im_start|>"}},
    {"phi-3", {"<|end|>"}},
    {"zephyr", {"<|user|>"}},
    {"alfred", {"<start_user>"}},
    {"codellama-70b-instruct", {"Source: ", "<step>"}},
    {"magicoder", {"@@ Instruction"}},
    {"alpaca", {"### Instruction:"}},
    {"starcoder2-instruct", {"### Instruction"}},
    {"solar-instruct", {"### User:"}},
    {"llama2-chat", {"<<SYS>>"}},
    {"mistral-instruct", {"[INST]"}},
    {"granite-instruct", {"Question:", "Answer:"}},
    {"falcon-instruct", {"Falcon:"}},
    {"chatqa", {"User: ", "Assistant: "}},
};

// ---- public ----

const eng_chat_format *eng_chat_format_at(size_t i)
{
    return i < N_FORMATS ? &formats[i] : NULL;
}

const eng_chat_format *eng_chat_format_by_name(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < N_FORMATS; i++) {
        if (strcmp(formats[i].name, name) == 0) return &formats[i];
    }
    return NULL;
}

const eng_chat_format *eng_chat_format_for_jinja(const char *jinja)
{
    if (jinja && *jinja) {
        for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
            bool all = true;
            for (size_t m = 0; m < 3 && rules[r].markers[m] && all; m++) {
                all = strstr(jinja, rules[r].markers[m]) != NULL;
            }
            if (all) {
                const eng_chat_format *f = eng_chat_format_by_name(rules[r].name);
                if (f) return f;
            }
        }
    }
    return &formats[0]; /* "raw" */
}
