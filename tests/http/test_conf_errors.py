"""Conformance, spec section I (errors) and the robustness the project brief asks for: bad
JSON, wrong JSON types for every field, oversized bodies and headers, slow clients, unknown
routes and wrong methods — each answered with a clear status while the server keeps serving.
"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402

S = None
MSG = [{"role": "user", "content": "hi"}]

# Every JSON endpoint with a minimal valid body.
ENDPOINTS = [
    ("POST", "/api/generate", {"model": "stories", "prompt": "hi",
                               "options": {"num_predict": 1}}),
    ("POST", "/api/chat", {"model": "stories", "messages": MSG, "stream": False,
                           "options": {"num_predict": 1}}),
    ("POST", "/api/embed", {"model": "stories", "input": "hi"}),
    ("POST", "/api/embeddings", {"model": "stories", "prompt": "hi"}),
    ("POST", "/api/show", {"model": "stories"}),
    ("POST", "/api/create", {"model": "made", "from": "stories", "stream": False}),
    ("POST", "/api/copy", {"source": "stories", "destination": "copied"}),
    ("DELETE", "/api/delete", {"model": "copied"}),
    ("POST", "/v1/chat/completions", {"model": "stories", "messages": MSG, "max_tokens": 1}),
    ("POST", "/v1/completions", {"model": "stories", "prompt": "hi", "max_tokens": 1}),
    ("POST", "/v1/embeddings", {"model": "stories", "input": "hi"}),
]

# Fields of each native endpoint and a value of a wrong type for each (spec G.59-62, C).
WRONG_TYPES = {
    "/api/generate": {"model": 5, "prompt": 5, "suffix": 5, "system": 5, "template": 5,
                      "context": "1,2", "stream": "yes", "raw": 1, "format": 5,
                      "keep_alive": True, "images": "aGk=", "options": [1], "think": 5,
                      "truncate": "no", "shift": "no", "logprobs": "yes",
                      "top_logprobs": "2"},
    "/api/chat": {"model": 5, "messages": {"role": "user"}, "stream": "yes", "format": 5,
                  "keep_alive": [], "tools": "t", "options": "o", "think": 5,
                  "truncate": 1, "shift": 1, "logprobs": "yes", "top_logprobs": "2"},
    "/api/embed": {"model": 5, "input": 5, "truncate": "no", "dimensions": "8",
                   "keep_alive": {}, "options": 5},
    "/api/embeddings": {"model": 5, "prompt": 5, "keep_alive": {}, "options": 5},
    "/api/show": {"model": 5, "name": 5, "verbose": "yes"},
    "/api/create": {"model": 5, "from": 5, "files": ["x"], "adapters": "a", "template": 5,
                    "system": 5, "license": 5, "parameters": [1], "messages": "m",
                    "quantize": 5, "stream": "yes"},
    "/api/copy": {"source": 5, "destination": 5},
    "/api/delete": {"model": 5, "name": 5},
}

# Wrong types inside chat messages.
WRONG_MESSAGE_TYPES = [{"role": 5, "content": "x"}, {"role": "user", "content": 5},
                       {"role": "user", "content": "x", "images": "aGk="},
                       {"role": "user", "content": "x", "tool_calls": "t"}, "just a string"]


def assert_native_error(r, status, what):
    assert r.status == status, (what, r)
    o = r.json()
    assert list(o) == ["error"] and isinstance(o["error"], str) and o["error"], (what, o)


def assert_oai_error(r, status, what):
    assert r.status == status, (what, r)
    e = r.json()["error"]
    assert set(e) == {"message", "type", "param", "code"}, (what, e)
    assert e["param"] is None and e["code"] is None and e["message"], (what, e)
    want = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    assert e["type"] == want, (what, e)


def check_error(r, status, path, what):
    if path.startswith("/v1/"):
        assert_oai_error(r, status, what)
    else:
        assert_native_error(r, status, what)


# ---- I.70: bodies ----

def test_valid_bodies_accepted():
    for method, path, body in ENDPOINTS:
        r = S.request(method, path, body)
        assert r.status == 200, (path, r)


def test_empty_body_400():
    # spec I.70: missing request body
    for method, path, _ in ENDPOINTS:
        r = S.request(method, path, b"")
        check_error(r, 400, path, "empty body")
        if not path.startswith("/v1/"):
            assert r.json() == {"error": "missing request body"}, (path, r)


def test_malformed_json_400():
    # spec I.70: malformed JSON gives 400 with the decoder's message
    bad = [b"{not json", b'{"model":"stories"', b'{"model":"stories"} trailing',
           b"\xff\xfe{}", b'{"model":"st\x00ories"}', b"nul", b"[" * 5000 + b"]" * 5000,
           b'{"model":"stories","model":"x"}', b'{"a":1e99999}']
    for method, path, _ in ENDPOINTS:
        for body in bad:
            r = S.request(method, path, body, headers={"Content-Type": "application/json"})
            assert r.status in (400, 404) if body.startswith(b'{"model":"stories","model"') \
                else r.status == 400, (path, body[:40], r)
            check_error(r, r.status, path, body[:40])
    assert S.get("/").status == 200


def test_non_object_json_400():
    # spec I.70: a body that is JSON but not an object
    for method, path, _ in ENDPOINTS:
        for body in (b"[1,2]", b'"str"', b"42", b"null", b"true"):
            r = S.request(method, path, body)
            check_error(r, 400, path, body)


def test_wrong_field_types_400():
    # spec I.70: a wrong field type gives 400 (Go's wording for the well-known fields)
    for path, fields in WRONG_TYPES.items():
        base = dict([e for e in ENDPOINTS if e[1] == path][0][2])
        method = "DELETE" if path == "/api/delete" else "POST"
        for key, bad in fields.items():
            body = dict(base)
            body[key] = bad
            r = S.request(method, path, body)
            assert_native_error(r, 400, (path, key, bad))
    r = S.post("/api/generate", {"model": "stories", "prompt": 5})
    assert r.json() == {"error": "json: cannot unmarshal number into Go struct field "
                                 "GenerateRequest.prompt of type string"}, r
    for m in WRONG_MESSAGE_TYPES:
        r = S.post("/api/chat", {"model": "stories", "messages": [m]})
        assert_native_error(r, 400, ("message", m))


def test_wrong_types_v1_400():
    bad = [{"model": 5}, {"messages": "hi"}, {"messages": [{"role": 5, "content": "x"}]},
           {"messages": [{"role": "user", "content": 5}]}, {"stream": "yes"},
           {"max_tokens": "5"}, {"temperature": "hot"}, {"top_p": []}, {"seed": "1"},
           {"stop": 5}, {"keep_alive": True}, {"stream_options": 5}, {"n": "1"}]
    for extra in bad:
        body = {"model": "stories", "messages": MSG, "max_tokens": 1}
        body.update(extra)
        r = S.post("/v1/chat/completions", body)
        assert_oai_error(r, 400, extra)
    for extra in [{"prompt": 5}, {"suffix": 5}, {"max_tokens": "5"}, {"stream": 1}]:
        body = {"model": "stories", "prompt": "hi", "max_tokens": 1}
        body.update(extra)
        assert_oai_error(S.post("/v1/completions", body), 400, extra)
    for extra in [{"input": 5}, {"input": [1.5]}, {"encoding_format": 5},
                  {"dimensions": "8"}]:
        body = {"model": "stories", "input": "hi"}
        body.update(extra)
        assert_oai_error(S.post("/v1/embeddings", body), 400, extra)


def test_unknown_fields_ignored():
    # spec I.70
    for method, path, body in ENDPOINTS:
        b = dict(body)
        b["no_such_field"] = {"x": [1, 2, 3]}
        if path == "/api/copy":
            b["destination"] = "copied2"
        if path == "/api/delete":
            assert S.post("/api/copy", {"source": "stories", "destination": "copied"}).status == 200
        r = S.request(method, path, b)
        assert r.status == 200, (path, r)


# ---- I.71-73: models and capabilities ----

def test_unknown_model_404_with_name_as_sent():
    # spec I.71 with DESIGN §4.9: 404 on every endpoint, NAME as sent; the embedding
    # endpoints add "try pulling it first"
    for path, body in [("/api/generate", {"prompt": "hi"}), ("/api/chat", {"messages": MSG}),
                       ("/api/embed", {"input": "hi"}), ("/api/embeddings", {"prompt": "hi"}),
                       ("/api/generate", {}), ("/api/chat", {}), ("/api/embed", {}),
                       ("/api/embeddings", {})]:
        for name in ("ghost", "Ghost:v2", "someone/ghost"):
            b = dict(body, model=name)
            r = S.post(path, b)
            want = "model '%s' not found" % name
            if path.startswith("/api/embed"):
                want = 'model "%s" not found, try pulling it first' % name
            assert r.status == 404 and r.json() == {"error": want}, (path, name, r)
    for path, body in [("/v1/chat/completions", {"messages": MSG}),
                       ("/v1/completions", {"prompt": "hi"}),
                       ("/v1/embeddings", {"input": "hi"})]:
        r = S.post(path, dict(body, model="ghost"))
        assert_oai_error(r, 404, path)
        assert "ghost" in r.json()["error"]["message"], r
    assert_oai_error(S.get("/v1/models/ghost"), 404, "/v1/models/ghost")


def test_missing_model():
    # spec I.72
    r = S.post("/api/chat", {"messages": MSG})
    assert r.status == 400 and r.json() == {"error": "model is required"}, r
    r = S.post("/api/generate", {"prompt": "hi"})
    assert r.status == 404 and r.json() == {"error": "model '' not found"}, r
    for path in ("/api/embed", "/api/embeddings", "/api/show", "/api/delete"):
        r = S.request("DELETE" if path == "/api/delete" else "POST", path, {"input": "x"})
        assert_native_error(r, 400, path)


def test_invalid_model_name_400():
    # spec I.72: a name that is not valid is 400
    for name in ("bad name", "../x", "a/b/c/d", "x:", ":tag", "-lead", "a" * 81,
                 "h" * 351 + "/ns/m:t", "model:t@g"):
        for path, body in [("/api/generate", {"prompt": "hi"}), ("/api/chat", {"messages": MSG}),
                           ("/api/embed", {"input": "hi"}), ("/api/show", {})]:
            r = S.post(path, dict(body, model=name))
            assert_native_error(r, 400, (path, name))
            assert "invalid model name" in r.json()["error"], (path, name, r)


def test_error_quoting_non_utf8_is_still_json():
    # An error that quotes what the client sent must stay a JSON body: the bytes of a URL
    # path need not be UTF-8, and a long name is cut inside a character by the message
    # buffers. jansson refuses such a string, and the reply used to go out empty.
    r = S.get("/v1/models/%ff")
    assert_oai_error(r, 400, "/v1/models/%ff")
    for digest in ("%ff", "%e2%82%ac" * 40):
        r = S.post("/api/blobs/" + digest, b"x")
        assert_native_error(r, 400, "blob " + digest)
    name = "\u20ac" * 400  # 1200 bytes: cut inside a character by every message buffer
    for method, path, body in ENDPOINTS:
        key = {"/api/copy": "destination"}.get(path, "model")
        r = S.request(method, path, dict(body, **{key: name}))
        check_error(r, 400, path, "a long non-ASCII name")
        e = r.json()["error"]
        assert "invalid" in (e["message"] if path.startswith("/v1/") else e), r


def test_capability_errors_400():
    # spec I.73: thinking and tools are not supported: 400 with Ollama's wording
    r = S.post("/api/generate", {"model": "stories", "prompt": "hi", "think": True})
    assert r.status == 400 and r.json() == {"error": '"stories" does not support thinking'}, r
    r = S.post("/api/chat", {"model": "stories", "messages": MSG, "think": True})
    assert r.status == 400 and r.json() == {"error": '"stories" does not support thinking'}, r
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    r = S.post("/api/chat", {"model": "stories", "messages": MSG, "tools": tools})
    assert r.status == 400, r
    assert r.json()["error"].startswith(
        "registry.ollama.ai/library/stories:latest does not support tools"), r


def test_option_type_errors():
    # spec I.75: a wrong value type inside options is 500 naming the option, on every
    # endpoint that takes options
    for opt, val, typ in [("num_ctx", "big", "integer"), ("temperature", "hot", "float"),
                          ("num_predict", 1.5, "integer"), ("use_mmap", 1, "boolean")]:
        r = S.post("/api/generate", {"model": "stories", "prompt": "hi", "options": {opt: val}})
        assert r.status == 500, (opt, r)
        assert r.json() == {"error": 'option "%s" must be of type %s' % (opt, typ)}, r
    for path, body in [("/api/chat", {"messages": MSG}), ("/api/embed", {"input": "hi"}),
                       ("/api/embeddings", {"prompt": "hi"})]:
        r = S.post(path, dict(body, model="stories", options={"num_ctx": "big"}))
        assert r.status == 500, (path, r)
        assert r.json() == {"error": 'option "num_ctx" must be of type integer'}, (path, r)
    # /v1 reads no Ollama options object (spec G.63): it is ignored like any unknown field
    r = S.post("/v1/chat/completions", {"model": "stories", "messages": MSG, "max_tokens": 1,
                                        "options": {"num_ctx": "big"}})
    assert r.status == 200, r
    # a top-level field of the wrong type stays 400 (spec I.70)
    r = S.post("/api/generate", {"model": "stories", "prompt": "hi", "options": "big"})
    assert_native_error(r, 400, "options")
    r = S.post("/api/generate", {"model": "stories", "prompt": "hi",
                                 "options": {"num_predict": 1, "bogus_option": 3}})
    assert r.status == 200, r
    S.wait_for(lambda: "bogus_option" in S.log(), timeout=5, what="a warning in the log")


# ---- I.76: routes ----

def test_unknown_routes_404_plain_text():
    # spec I.76
    for method, path in [("GET", "/api/nothing"), ("POST", "/api/nothing"), ("GET", "/v1/x"),
                         ("POST", "/v2/chat"), ("GET", "/api"), ("GET", "/api/"),
                         ("GET", "/api/tags/x"), ("DELETE", "/nothing")]:
        r = S.request(method, path)
        assert r.status == 404 and r.body == b"404 page not found", (method, path, r)
        assert r.headers["content-type"].startswith("text/plain"), r.headers


def test_wrong_methods_405():
    # spec I.76: a known route with the wrong method
    for method, path in [("GET", "/api/generate"), ("GET", "/api/chat"), ("PUT", "/api/chat"),
                         ("POST", "/api/tags"), ("DELETE", "/api/tags"), ("POST", "/api/ps"),
                         ("GET", "/api/delete"), ("POST", "/api/delete"), ("GET", "/api/show"),
                         ("GET", "/api/create"), ("GET", "/api/embed"), ("POST", "/"),
                         ("POST", "/api/version"), ("GET", "/v1/chat/completions"),
                         ("POST", "/v1/models"), ("PATCH", "/api/generate"),
                         ("DELETE", "/api/blobs/sha256:" + "0" * 64)]:
        r = S.request(method, path)
        assert r.status == 405 and r.body == b"405 method not allowed", (method, path, r)


def test_host_header_check():
    # spec I.77: on a loopback listener, a Host that is not local gets 403 with an empty body
    # (DNS rebinding); local names pass.
    for host in ("evil.example.com", "example.com:11434", "1.2.3.4", "8.8.8.8:80"):
        r = S.get("/api/version", headers={"Host": host})
        assert r.status == 403 and r.body == b"", (host, r)
    for host in ("localhost", "localhost:11434", "127.0.0.1", "127.0.0.1:%d" % S.port,
                 "[::1]:80", "foo.localhost", "box.local", "svc.internal", "10.1.2.3",
                 "192.168.1.5:8080", "0.0.0.0", socket.gethostname()):
        r = S.get("/api/version", headers={"Host": host})
        assert r.status == 200, (host, r)


# ---- robustness ----

def raw_exchange(data, timeout=10, chunks=None, delay=0.0):
    """Sends data (or chunks with delay between them) on a new connection and returns the
    whole reply (until the server closes or timeout)."""
    s = socket.create_connection(("127.0.0.1", S.port), timeout=timeout)
    try:
        for i, c in enumerate(chunks or [data]):
            if i and delay:
                time.sleep(delay)
            s.sendall(c)
        out = b""
        end = time.time() + timeout
        while time.time() < end:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(body) >= int(line.split(b":")[1]):
                            return out
        return out
    finally:
        s.close()


def test_oversized_body_413_without_reading():
    # brief: a body over the limit is refused from its Content-Length, before it is read
    t0 = time.time()
    head = (b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            b"\r\nContent-Length: 1073741824\r\n\r\n")
    out = raw_exchange(head + b'{"model":', timeout=10)
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    assert b"too large" in out, out
    assert time.time() - t0 < 5, time.time() - t0
    # chunked (no Content-Length): refused once the limit is passed
    assert S.get("/").status == 200


def test_oversized_chunked_body_413():
    s = socket.create_connection(("127.0.0.1", S.port), timeout=30)
    try:
        s.sendall(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Type: application/json\r\n\r\n")
        chunk = b"a" * (1 << 20)
        sent = 0
        try:
            while sent < (70 << 20):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(10)
        out = b""
        try:
            while b"\r\n\r\n" not in out:
                b = s.recv(4096)
                if not b:
                    break
                out += b
        except (socket.timeout, ConnectionResetError):
            pass
        assert out == b"" or out.startswith(b"HTTP/1.1 413"), out[:200]
    finally:
        s.close()
    assert S.get("/").status == 200


def test_oversized_headers_refused():
    # brief: oversized request headers are refused (431/413/400 or the connection is closed)
    for size in (300 * 1024, 2 << 20):
        req = (b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * size +
               b"\r\n\r\n")
        try:
            out = raw_exchange(req, timeout=10)
        except (BrokenPipeError, ConnectionResetError):
            out = b""
        assert out == b"" or out.split(b" ")[1] in (b"413", b"431", b"400"), out[:200]
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(20000))
    try:
        out = raw_exchange(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        out = b""
    assert out == b"" or out.split(b" ")[1] in (b"413", b"431", b"400"), out[:200]
    assert S.get("/").status == 200


def test_slow_body_is_served_and_does_not_block_others():
    # brief: a client that sends its body slowly is served correctly, and others are served
    # meanwhile
    body = json.dumps({"model": "stories", "prompt": "Once upon a time", "stream": False,
                       "options": {"temperature": 0, "num_predict": 3}}).encode()
    head = (b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
    parts = [head] + [body[i:i + 8] for i in range(0, len(body), 8)]
    box = {}

    def slow():
        box["out"] = raw_exchange(None, timeout=30, chunks=parts, delay=0.15)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    t0 = time.time()
    for _ in range(5):
        assert S.get("/api/tags").status == 200
    assert time.time() - t0 < 2, "other requests waited for the slow client"
    t.join(40)
    assert not t.is_alive()
    out = box["out"]
    assert out.startswith(b"HTTP/1.1 200"), out[:300]
    o = json.loads(out.partition(b"\r\n\r\n")[2])
    assert o["done"] is True and o["eval_count"] == 3, o


def test_client_abandons_body_midway():
    # a client that announces a body and disappears halfway leaves the server serving
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", S.port), timeout=5)
        s.sendall(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
                  b'{"model":"sto')
        s.close()
    assert S.get("/").status == 200
    assert S.post("/api/show", {"model": "stories"}).status == 200


def test_garbage_request_lines():
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"POST /api/chat HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"):
        try:
            raw_exchange(junk, timeout=3)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert S.get("/").status == 200


def test_still_serving():
    assert S.alive()
    assert S.get("/").status == 200
    r = S.generate("stories", "Once", options={"temperature": 0, "num_predict": 2})
    assert r.status == 200 and r.json()["done"], r


def main():
    global S
    with ds.Server() as s:
        S = s
        s.create("stories", ds.STORIES)
        ds.main([test_valid_bodies_accepted, test_empty_body_400, test_malformed_json_400,
                 test_non_object_json_400, test_wrong_field_types_400, test_wrong_types_v1_400,
                 test_unknown_fields_ignored, test_unknown_model_404_with_name_as_sent,
                 test_missing_model, test_invalid_model_name_400,
                 test_error_quoting_non_utf8_is_still_json, test_capability_errors_400,
                 test_option_type_errors, test_unknown_routes_404_plain_text,
                 test_wrong_methods_405, test_host_header_check,
                 test_oversized_body_413_without_reading, test_oversized_chunked_body_413,
                 test_oversized_headers_refused, test_slow_body_is_served_and_does_not_block_others,
                 test_client_abandons_body_midway, test_garbage_request_lines, test_still_serving])


if __name__ == "__main__":
    main()
