"""Conformance, spec item G.63: the OpenAI-compatible routes — the shapes of
chat.completion, chat.completion.chunk, text_completion, the model list, embeddings and the
error objects; SSE framing; the defaults (temperature and top_p 1.0); and the 400s for what
dwell does not serve (images, tools, JSON mode or a schema)."""
import base64
import json
import os
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402

S = None
MSG = [{"role": "user", "content": "Once upon a time"}]


def sse_events(r):
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/event-stream"), r.headers
    text = r.body.decode()
    assert text.endswith("data: [DONE]\n\n"), text[-100:]
    events = text.split("\n\n")
    assert events[-1] == "", events[-3:]
    events = events[:-1]
    for e in events:
        assert e.startswith("data: ") and "\n" not in e, e
    assert events[-1] == "data: [DONE]", events[-1]
    return [json.loads(e[6:]) for e in events[:-1]]


def assert_oai_error(r, status, typ=None):
    assert r.status == status, r
    assert r.headers["content-type"].startswith("application/json"), r.headers
    o = r.json()
    assert list(o) == ["error"], o
    e = o["error"]
    assert set(e) == {"message", "type", "param", "code"}, e
    assert isinstance(e["message"], str) and e["message"] and e["param"] is None \
        and e["code"] is None, e
    want = typ or {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    assert e["type"] == want, e
    return e["message"]


def test_chat_completion_shape():
    t0 = int(time.time())
    r = S.post("/v1/chat/completions", {"model": "stories", "messages": MSG, "max_tokens": 5,
                                        "temperature": 0})
    assert r.status == 200 and r.headers["content-type"].startswith("application/json"), r
    o = r.json()
    assert set(o) >= {"id", "object", "created", "model", "choices", "usage"}, o
    assert o["object"] == "chat.completion" and o["model"] == "stories", o
    assert isinstance(o["id"], str) and o["id"].startswith("chatcmpl-"), o
    assert abs(o["created"] - t0) < 60, o
    assert len(o["choices"]) == 1, o
    c = o["choices"][0]
    assert c["index"] == 0 and c["finish_reason"] == "length", c
    assert c["message"]["role"] == "assistant" and isinstance(c["message"]["content"], str), c
    u = o["usage"]
    assert set(u) >= {"prompt_tokens", "completion_tokens", "total_tokens"}, u
    assert u["completion_tokens"] == 5 and u["prompt_tokens"] > 0, u
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u


def test_chat_completion_chunks():
    body = {"model": "stories", "messages": MSG, "max_tokens": 6, "temperature": 0,
            "stream": True}
    chunks = sse_events(S.post("/v1/chat/completions", body))
    assert len(chunks) >= 2, chunks
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-"), ids
    for c in chunks:
        assert c["object"] == "chat.completion.chunk" and c["model"] == "stories", c
        assert isinstance(c["created"], int) and len(c["choices"]) == 1, c
        ch = c["choices"][0]
        assert ch["index"] == 0 and set(ch) >= {"delta", "finish_reason"}, ch
        assert "usage" not in c or c["usage"] is None, c
    for c in chunks[:-1]:
        assert c["choices"][0]["finish_reason"] is None, c
        assert c["choices"][0]["delta"].get("role", "assistant") == "assistant", c
    assert chunks[-1]["choices"][0]["finish_reason"] == "length", chunks[-1]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    full = S.post("/v1/chat/completions", dict(body, stream=False)).json()
    assert text == full["choices"][0]["message"]["content"], (text, full)
    # stream_options.include_usage: one more chunk with no choices and the usage
    chunks = sse_events(S.post("/v1/chat/completions",
                               dict(body, stream_options={"include_usage": True})))
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6, \
        chunks[-1]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length", chunks[-2]


def test_stream_defaults_false_on_v1():
    r = S.post("/v1/chat/completions", {"model": "stories", "messages": MSG, "max_tokens": 2})
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert r.json()["object"] == "chat.completion", r


def test_text_completion_shape():
    body = {"model": "stories", "prompt": "Once upon a time", "max_tokens": 5,
            "temperature": 0}
    r = S.post("/v1/completions", body)
    o = r.json()
    assert r.status == 200 and o["object"] == "text_completion", o
    assert o["id"].startswith("cmpl-") and o["model"] == "stories", o
    c = o["choices"][0]
    assert set(c) >= {"text", "index", "finish_reason"} and c["index"] == 0, c
    assert c["finish_reason"] == "length", c
    u = o["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
    # the prompt is raw (no template): the same as a raw native generate
    n = S.post("/api/generate", {"model": "stories", "prompt": "Once upon a time", "raw": True,
                                 "stream": False,
                                 "options": {"temperature": 0, "num_predict": 5}}).json()
    assert c["text"] == n["response"], (c, n)
    chunks = sse_events(S.post("/v1/completions", dict(body, stream=True)))
    for ch in chunks:
        assert ch["object"] == "text_completion" and "text" in ch["choices"][0], ch
    assert "".join(ch["choices"][0]["text"] for ch in chunks) == c["text"], chunks
    assert chunks[-1]["choices"][0]["finish_reason"] == "length", chunks[-1]


def test_defaults_temperature_and_top_p_one():
    # spec G.63: /v1 gives temperature 1.0 and top_p 1.0 by default
    outs = []
    for seed in (7, 8, 9):
        o = S.post("/v1/completions", {"model": "stories", "prompt": "Once upon a time",
                                       "max_tokens": 12, "seed": seed}).json()
        n = S.post("/api/generate", {"model": "stories", "prompt": "Once upon a time",
                                     "raw": True, "stream": False,
                                     "options": {"seed": seed, "temperature": 1.0, "top_p": 1.0,
                                                 "num_predict": 12}}).json()
        assert o["choices"][0]["text"] == n["response"], (seed, o, n)
        outs.append(n["response"])
    assert len(set(outs)) > 1, "seeds made no difference: the test proves nothing"


def test_defaults_override_model_parameters_and_options_are_not_read():
    # spec G.63: the /v1 defaults (temperature 1.0, top_p 1.0) are request options, so they
    # win over the model's parameters (as in Ollama); an Ollama `options` object is not read
    S.create("cold", ds.STORIES, parameters={"temperature": 0, "top_p": 0.5})
    outs = []
    for seed in (7, 8, 9):
        for path, body in [("/v1/completions", {"prompt": "Once upon a time"}),
                           ("/v1/chat/completions",
                            {"messages": [{"role": "user", "content": "Once upon a time"}]})]:
            o = S.post(path, dict(body, model="cold", max_tokens=12, seed=seed,
                                  options={"temperature": 0, "num_predict": 1})).json()
            u = o["usage"]
            assert u["completion_tokens"] > 1, (path, o)
            if path == "/v1/completions":
                text = o["choices"][0]["text"]
                n = S.post("/api/generate", {"model": "cold", "prompt": "Once upon a time",
                                             "raw": True, "stream": False,
                                             "options": {"seed": seed, "temperature": 1.0,
                                                         "top_p": 1.0, "num_predict": 12}}).json()
                assert text == n["response"], (seed, o, n)
                outs.append(text)
    assert len(set(outs)) > 1, "seeds made no difference: the model's temperature 0 won"


def test_models_list_and_one():
    # spec G.63: {"object":"list","data":[{"id","object":"model","created","owned_by"}]}
    r = S.get("/v1/models")
    assert r.status == 200, r
    o = r.json()
    assert set(o) == {"object", "data"} and o["object"] == "list", o
    by = {m["id"]: m for m in o["data"]}
    assert set(by) >= {"stories:latest", "team/tale:v1"}, by
    for m in o["data"]:
        assert set(m) == {"id", "object", "created", "owned_by"} and m["object"] == "model", m
        assert isinstance(m["created"], int) and m["created"] > 1600000000, m
    assert by["stories:latest"]["owned_by"] == "library", by
    assert by["team/tale:v1"]["owned_by"] == "team", by
    tags = {t["name"]: t for t in S.get("/api/tags").json()["models"]}
    t = ds.parse_rfc3339(tags["stories:latest"]["modified_at"])[0]
    assert abs(by["stories:latest"]["created"] - int(t)) <= 1, (by, t)
    for name in ("stories:latest", "team/tale:v1", "stories"):
        r = S.get("/v1/models/" + name)
        assert r.status == 200, (name, r)
        m = r.json()
        assert set(m) == {"id", "object", "created", "owned_by"} and m["object"] == "model", m
    assert S.get("/v1/models/team/tale:v1").json()["owned_by"] == "team"
    assert_oai_error(S.get("/v1/models/ghost"), 404)


def test_embeddings_shape_and_base64():
    r = S.post("/v1/embeddings", {"model": "stories", "input": ["Once", "upon a time"]})
    o = r.json()
    assert r.status == 200 and set(o) >= {"object", "data", "model", "usage"}, o
    assert o["object"] == "list" and o["model"] == "stories", o
    assert [d["index"] for d in o["data"]] == [0, 1], o
    for d in o["data"]:
        assert d["object"] == "embedding" and isinstance(d["embedding"], list), d
        assert abs(sum(x * x for x in d["embedding"]) - 1) < 1e-3, "not normalised"
    assert o["usage"]["prompt_tokens"] > 0 and \
        o["usage"]["total_tokens"] == o["usage"]["prompt_tokens"], o["usage"]
    r = S.post("/v1/embeddings", {"model": "stories", "input": "Once",
                                  "encoding_format": "base64"})
    b = r.json()["data"][0]["embedding"]
    raw = base64.b64decode(b)
    floats = struct.unpack("<%df" % (len(raw) // 4), raw)
    want = o["data"][0]["embedding"]
    assert len(floats) == len(want) and all(abs(x - y) < 1e-5 for x, y in zip(floats, want))
    one = S.post("/v1/embeddings", {"model": "stories", "input": "Once"}).json()
    assert len(one["data"]) == 1, one


def test_error_objects():
    # spec G.63: {"error":{"message","type","param":null,"code":null}}
    msg = assert_oai_error(S.post("/v1/chat/completions", {"model": "stories",
                                                           "messages": []}), 400)
    assert msg == "[] is too short - 'messages'", msg
    assert_oai_error(S.post("/v1/chat/completions", {"model": "ghost", "messages": MSG}), 404)
    assert_oai_error(S.post("/v1/completions", {"model": "ghost", "prompt": "x"}), 404)
    assert_oai_error(S.post("/v1/embeddings", {"model": "ghost", "input": "x"}), 404)
    assert_oai_error(S.post("/v1/chat/completions", "{bad json"), 400)
    assert_oai_error(S.post("/v1/chat/completions", b""), 400)
    assert_oai_error(S.post("/v1/chat/completions", {"messages": MSG}), 400)
    assert_oai_error(S.post("/v1/chat/completions", {"model": "stories", "messages": MSG,
                                                     "n": 2}), 400)
    assert_oai_error(S.post("/v1/embeddings", {"model": "stories", "input": []}), 400)
    assert_oai_error(S.post("/v1/embeddings", {"model": "stories", "input": "x",
                                               "encoding_format": "hex"}), 400)


def test_unsupported_features_400():
    # DESIGN §4: images, tools and `format` (JSON mode or schema) are a clear 400
    image = [{"type": "text", "text": "what is this"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    cases = [
        {"messages": [{"role": "user", "content": image}]},
        {"messages": MSG, "tools": tools},
        {"messages": MSG + [{"role": "assistant", "content": "",
                             "tool_calls": [{"id": "1", "type": "function",
                                             "function": {"name": "f", "arguments": "{}"}}]}]},
        {"messages": MSG + [{"role": "tool", "content": "42", "tool_call_id": "1"}]},
        {"messages": MSG, "response_format": {"type": "json_object"}},
        {"messages": MSG, "response_format": {"type": "json_schema",
                                              "json_schema": {"name": "x",
                                                              "schema": {"type": "object"}}}},
    ]
    for extra in cases:
        body = {"model": "stories", "max_tokens": 2}
        body.update(extra)
        msg = assert_oai_error(S.post("/v1/chat/completions", body), 400)
        assert re.search(r"support", msg), msg
    ok = {"model": "stories", "messages": MSG, "max_tokens": 2,
          "response_format": {"type": "text"}}
    assert S.post("/v1/chat/completions", ok).status == 200
    text_parts = [{"type": "text", "text": "Once upon"}, {"type": "text", "text": " a time"}]
    r = S.post("/v1/chat/completions", {"model": "stories", "max_tokens": 2,
                                        "messages": [{"role": "user", "content": text_parts}]})
    assert r.status == 200, r
    for path, body in [("/api/generate", {"prompt": "x", "format": "json"}),
                       ("/api/generate", {"prompt": "x", "format": {"type": "object"}}),
                       ("/api/generate", {"prompt": "x", "images": ["aGk="]}),
                       ("/api/chat", {"messages": MSG, "format": "json"}),
                       ("/api/chat", {"messages": MSG, "tools": tools}),
                       ("/api/chat", {"messages": [dict(MSG[0], images=["aGk="])]})]:
        r = S.post(path, dict(body, model="stories"))
        assert r.status == 400 and list(r.json()) == ["error"], (path, body, r)


def test_stop_and_max_tokens():
    full = S.post("/v1/completions", {"model": "stories", "prompt": "Once upon a time",
                                      "max_tokens": 16, "temperature": 0}).json()
    text = full["choices"][0]["text"]
    words = text.split()
    assert len(words) >= 3, text
    stop = words[2]
    o = S.post("/v1/completions", {"model": "stories", "prompt": "Once upon a time",
                                   "max_tokens": 16, "temperature": 0, "stop": [stop]}).json()
    assert stop not in o["choices"][0]["text"], (stop, o)
    assert o["choices"][0]["finish_reason"] == "stop", o


def test_still_serving():
    assert S.alive() and S.get("/").status == 200


def main():
    global S
    with ds.Server() as s:
        S = s
        s.create("stories", ds.STORIES)
        assert s.post("/api/copy", {"source": "stories", "destination": "team/tale:v1"}).status == 200
        ds.main([test_chat_completion_shape, test_chat_completion_chunks,
                 test_stream_defaults_false_on_v1, test_text_completion_shape,
                 test_defaults_temperature_and_top_p_one, test_models_list_and_one,
                 test_embeddings_shape_and_base64, test_error_objects,
                 test_unsupported_features_400, test_stop_and_max_tokens, test_still_serving])


if __name__ == "__main__":
    main()
