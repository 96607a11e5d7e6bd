"""The inference endpoints: /api/generate and /api/chat (streamed and not), the load/unload
forms, the final object's fields, options, unsupported features, embeddings and the /v1
routes (SSE with [DONE], usage, OpenAI error shapes)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402

S = None
GREEDY = {"temperature": 0, "num_predict": 12}


def test_generate_not_streamed():
    r = S.generate("stories", "Once upon a time", options=GREEDY)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/json"), r.headers
    o = r.json()
    assert o["done"] is True and o["model"] == "stories" and o["created_at"].endswith("Z"), o
    assert o["done_reason"] in ("stop", "length"), o
    assert isinstance(o["response"], str) and len(o["response"]) > 0, o
    for k in ("total_duration", "load_duration", "prompt_eval_count", "eval_count",
              "eval_duration", "context"):
        assert k in o, (k, o)
    assert o["eval_count"] <= 12, o
    assert all(isinstance(t, int) for t in o["context"]), o


def test_generate_greedy_is_deterministic_and_readable():
    a = S.generate("stories", "Once upon a time", options=GREEDY).json()["response"]
    b = S.generate("stories", "Once upon a time", options=GREEDY).json()["response"]
    assert a == b, (a, b)
    assert sum(c.isalpha() for c in a) > len(a) // 2, a


def test_generate_streamed():
    r = S.generate("stories", "Once upon a time", stream=True, options=GREEDY)
    assert r.status == 200 and r.headers["content-type"] == "application/x-ndjson", r
    lines = r.lines()
    assert len(lines) >= 2, lines
    assert all(l["done"] is False for l in lines[:-1]), lines
    assert all("total_duration" not in l for l in lines[:-1]), lines
    last = lines[-1]
    assert last["done"] is True and last["response"] == "" and "eval_count" in last, last
    text = "".join(l["response"] for l in lines)
    full = S.generate("stories", "Once upon a time", options=GREEDY).json()["response"]
    assert text == full, (text, full)


def test_generate_raw_and_context():
    o = S.generate("stories", "Once upon a time", raw=True, options=GREEDY).json()
    assert "context" not in o, o
    r = S.post("/api/generate", {"model": "stories", "prompt": "x", "raw": True,
                                 "system": "s"})
    assert r.status == 400, r
    o1 = S.generate("stories", "Once upon a time", options=GREEDY).json()
    o2 = S.generate("stories", " and then", context=o1["context"], options=GREEDY).json()
    assert o2["done"] and len(o2["context"]) > len(o1["context"]), o2


def test_stop_and_num_predict():
    o = S.generate("stories", "Once upon a time", options={"temperature": 0, "num_predict": 3}).json()
    assert o["eval_count"] <= 3 and o["done_reason"] == "length", o
    full = S.generate("stories", "Once upon a time", options=GREEDY).json()["response"]
    word = full.split()[2] if len(full.split()) > 2 else full.split()[-1]
    o = S.generate("stories", "Once upon a time",
                   options={"temperature": 0, "num_predict": 12, "stop": [word]}).json()
    assert word not in o["response"] and o["done_reason"] == "stop", (word, o)


def test_options_types_and_unknown():
    r = S.generate("stories", options={"num_ctx": "big"})
    assert r.status == 500 and "num_ctx" in r.json()["error"], r  # spec I.75
    r = S.generate("stories", options={"temperature": "hot"})
    assert r.status == 500, r
    r = S.generate("stories", options={"temperature": 0, "num_predict": 2, "no_such_option": 1})
    assert r.status == 200, r


def test_unsupported_features_400():
    for extra in [{"format": "json"}, {"format": {"type": "object"}}, {"images": ["aGk="]},
                  {"think": True}, {"suffix": "tail"}]:
        r = S.generate("stories", **extra)
        assert r.status == 400, (extra, r)
    r = S.post("/api/chat", {"model": "stories", "messages": [{"role": "user", "content": "hi"}],
                             "tools": [{"type": "function", "function": {"name": "f"}}]})
    assert r.status == 400, r
    r = S.post("/api/chat", {"model": "stories", "messages": [
        {"role": "user", "content": "hi", "images": ["aGk="]}]})
    assert r.status == 400, r


def test_load_and_unload_forms():
    r = S.post("/api/generate", {"model": "stories"})
    o = r.json()
    assert r.status == 200 and o["done_reason"] == "load" and o["response"] == "" and o["done"], o
    assert "stories:latest" in S.ps_names()
    r = S.post("/api/chat", {"model": "stories", "messages": []})
    o = r.json()
    assert o["done_reason"] == "load" and o["message"] == {"role": "assistant", "content": ""}, o
    r = S.post("/api/generate", {"model": "stories", "keep_alive": 0})
    assert r.json()["done_reason"] == "unload", r
    S.wait_for(lambda: "stories:latest" not in S.ps_names(), what="unload")
    r = S.post("/api/generate", {"model": "stories", "keep_alive": 0})
    assert r.status == 200 and r.json()["done_reason"] == "unload", r
    r = S.post("/api/generate", {"model": "ghost", "keep_alive": 0})
    assert r.status == 404, r


def test_chat():
    msgs = [{"role": "user", "content": "Tell me a story"}]
    r = S.post("/api/chat", {"model": "stories", "messages": msgs, "stream": False,
                             "options": GREEDY})
    o = r.json()
    assert r.status == 200 and o["message"]["role"] == "assistant", o
    assert o["done"] and "eval_count" in o and "context" not in o, o
    r = S.post("/api/chat", {"model": "stories", "messages": msgs, "options": GREEDY})
    lines = r.lines()
    assert lines[-1]["done"] and all("message" in l for l in lines), lines
    assert "".join(l["message"]["content"] for l in lines) == o["message"]["content"]
    r = S.post("/api/chat", {"messages": msgs})
    assert r.status == 400 and r.json()["error"] == "model is required", r


def test_keep_alive_type_and_value_errors():
    for ka in [True, {"a": 1}, [1], "abc", "1w"]:
        r = S.post("/api/generate", {"model": "stories", "prompt": "x", "keep_alive": ka})
        assert r.status == 400 and "keep_alive" in r.json()["error"] or "duration" in r.json()["error"], (ka, r)
    r = S.post("/api/generate", {"model": "stories", "prompt": "x", "keep_alive": "300",
                                 "options": {"num_predict": 1}})
    assert r.status == 200, r  # DESIGN §4.1: a numeric string is seconds
    assert S.get("/").status == 200


def test_embed():
    r = S.post("/api/embed", {"model": "stories", "input": ["hello", "world"]})
    o = r.json()
    assert r.status == 200 and len(o["embeddings"]) == 2, o
    v = o["embeddings"][0]
    n = sum(x * x for x in v) ** 0.5
    assert abs(n - 1) < 1e-3, n
    assert o["prompt_eval_count"] > 0 and "total_duration" in o, o
    r = S.post("/api/embed", {"model": "stories", "input": "hello", "dimensions": 8})
    assert len(r.json()["embeddings"][0]) == 8, r
    r = S.post("/api/embed", {"model": "stories", "input": [1, 2]})
    assert r.status == 400 and r.json()["error"] == "invalid input type", r
    r = S.post("/api/embed", {"model": "stories"})
    assert r.status == 200 and r.json()["embeddings"] == [], r
    r = S.post("/api/embeddings", {"model": "stories", "prompt": "hello"})
    assert r.status == 200 and len(r.json()["embedding"]) > 0, r


def test_v1_chat_and_completions():
    body = {"model": "stories", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 6, "temperature": 0}
    o = S.post("/v1/chat/completions", body).json()
    assert o["object"] == "chat.completion" and o["choices"][0]["message"]["role"] == "assistant", o
    assert o["usage"]["completion_tokens"] <= 6 and o["usage"]["total_tokens"] > 0, o
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    r = S.post("/v1/chat/completions", body)
    assert r.headers["content-type"].startswith("text/event-stream"), r.headers
    events = [e for e in r.body.decode().split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]", events[-3:]
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks), chunks
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length"), chunks[-2]
    assert chunks[-1]["choices"] == [], chunks[-1]  # include_usage: a last chunk of usage
    assert "usage" in chunks[-1], chunks[-1]
    r = S.post("/v1/chat/completions", {"model": "stories", "messages": []})
    assert r.status == 400 and r.json()["error"]["type"] == "invalid_request_error", r
    o = S.post("/v1/completions", {"model": "stories", "prompt": "Once upon", "max_tokens": 5,
                                   "temperature": 0}).json()
    assert o["object"] == "text_completion" and isinstance(o["choices"][0]["text"], str), o
    o = S.post("/v1/embeddings", {"model": "stories", "input": ["a", "b"]}).json()
    assert o["object"] == "list" and len(o["data"]) == 2 and o["data"][1]["index"] == 1, o


def test_v1_keep_alive_extension():
    S.post("/api/generate", {"model": "stories", "keep_alive": 0})
    S.wait_for(lambda: "stories:latest" not in S.ps_names(), what="unload")
    body = {"model": "stories", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 2, "keep_alive": 0}
    assert S.post("/v1/chat/completions", body).status == 200
    S.wait_for(lambda: "stories:latest" not in S.ps_names(), what="unload after /v1 keep_alive 0")


def main():
    global S
    with ds.Server() as s:
        S = s
        s.create("stories", ds.STORIES)
        ds.main([test_generate_not_streamed, test_generate_greedy_is_deterministic_and_readable,
                 test_generate_streamed, test_generate_raw_and_context, test_stop_and_num_predict,
                 test_options_types_and_unknown, test_unsupported_features_400,
                 test_load_and_unload_forms, test_chat, test_keep_alive_type_and_value_errors,
                 test_embed, test_v1_chat_and_completions, test_v1_keep_alive_extension])


if __name__ == "__main__":
    main()
