"""The server core and the store endpoints: root, version, routing errors, CORS, blobs,
create, tags, show, copy, delete — and that the server keeps serving after every bad
request."""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402

S = None


def test_root_and_version():
    r = S.get("/")
    assert r.status == 200 and r.body == b"Ollama is running", r
    r = S.request("HEAD", "/")
    assert r.status == 200, r
    v = S.get("/api/version").json()
    assert v["version"].count(".") == 2 and "dwell_version" in v, v


def test_unknown_route_404_wrong_method_405():
    r = S.get("/api/nothing")
    assert r.status == 404 and r.body == b"404 page not found", r
    r = S.get("/api/generate")
    assert r.status == 405, r
    r = S.post("/api/tags", {})
    assert r.status == 405, r


def test_bad_json_missing_body():
    r = S.post("/api/generate", "{not json")
    assert r.status == 400 and "error" in r.json(), r
    r = S.post("/api/chat", b"")
    assert r.status == 400 and r.json()["error"] == "missing request body", r
    r = S.post("/api/show", "[1,2]")
    assert r.status == 400, r
    r = S.post("/api/generate", {"model": 5})
    assert r.status == 400 and "cannot unmarshal number" in r.json()["error"], r


def test_unknown_model_404_everywhere():
    for path, body in [("/api/generate", {"model": "nope", "prompt": "hi"}),
                       ("/api/chat", {"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
                       ("/api/embed", {"model": "nope", "input": "x"}),
                       ("/api/embeddings", {"model": "nope", "prompt": "x"}),
                       ("/api/show", {"model": "nope"}),
                       ("/api/delete", {"model": "nope"})]:
        method = "DELETE" if path == "/api/delete" else "POST"
        r = S.request(method, path, body)
        assert r.status == 404, (path, r)
        assert "not found" in r.json()["error"], (path, r)
    r = S.post("/api/generate", {"model": "nope", "prompt": "hi"})
    assert r.json()["error"] == "model 'nope' not found", r
    r = S.post("/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 404 and r.json()["error"]["type"] == "not_found_error", r


def test_path_like_names_400():
    for name in ["../../etc/passwd", "/abs/x", "a/../b", "x:../y", "a b"]:
        r = S.post("/api/generate", {"model": name, "prompt": "hi"})
        assert r.status == 400, (name, r)
        r = S.post("/api/show", {"model": name})
        assert r.status == 400, (name, r)
        r = S.post("/api/create", {"model": name, "from": "m1"})
        assert r.status == 400, (name, r)
    r = S.post("/api/create", {"model": "ok", "files": {"../x.gguf": "sha256:" + "0" * 64}})
    assert r.status == 400, r


def test_cors():
    r = S.get("/api/version", headers={"Origin": "http://localhost:3000"})
    assert r.status == 200 and r.headers.get("access-control-allow-origin") == "http://localhost:3000", r.headers
    r = S.request("OPTIONS", "/api/chat", headers={"Origin": "app://thing",
                                                   "Access-Control-Request-Method": "POST"})
    assert r.status == 204 and "POST" in r.headers.get("access-control-allow-methods", ""), r
    r = S.get("/api/version", headers={"Origin": "http://evil.example"})
    assert r.status == 403, r


def test_blob_upload_verifies_digest():
    data = b"hello blob " * 1000
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    bad = "sha256:" + hashlib.sha256(b"other").hexdigest()
    r = S.request("HEAD", "/api/blobs/" + bad)
    assert r.status == 404, r
    r = S.post("/api/blobs/" + bad, data)
    assert r.status == 400 and "digest mismatch" in r.json()["error"], r
    assert S.request("HEAD", "/api/blobs/" + bad).status == 404
    blobs = os.path.join(S.models_dir, "blobs")
    assert not any(bad[7:] in f for f in os.listdir(blobs)), os.listdir(blobs)
    r = S.post("/api/blobs/" + good, data)
    assert r.status == 201, r
    assert S.request("HEAD", "/api/blobs/" + good).status == 200
    r = S.post("/api/blobs/" + good, data)
    assert r.status == 200, r
    r = S.post("/api/blobs/sha256:xyz", data)
    assert r.status == 400, r


def test_create_tags_show():
    r = S.create("m1", ds.STORIES, template="{{ .Prompt }}", system="be brief",
                 parameters={"temperature": 0, "stop": ["<|end|>"]}, license="MIT")
    assert r.json() == {"status": "success"}, r
    digest = S.upload(ds.STORIES)
    r = S.post("/api/create", {"model": "m2", "files": {"s.gguf": digest}})
    lines = r.lines()
    assert r.status == 200 and lines[-1] == {"status": "success"}, r
    assert all("status" in l for l in lines), lines
    tags = S.get("/api/tags").json()["models"]
    names = [m["name"] for m in tags]
    assert "m1:latest" in names and "m2:latest" in names, names
    t = tags[names.index("m1:latest")]
    for k in ("model", "modified_at", "size", "digest", "details"):
        assert k in t, t
    assert t["details"]["format"] == "gguf" and t["details"]["family"] == "llama", t
    sh = S.post("/api/show", {"model": "m1"}).json()
    assert sh["template"] == "{{ .Prompt }}" and sh["system"] == "be brief", sh
    assert sh["license"] == "MIT", sh
    assert sh["modelfile"].startswith('# Modelfile generated by "ollama show"'), sh["modelfile"]
    assert "temperature" in sh["parameters"] and "stop" in sh["parameters"], sh["parameters"]
    assert sh["model_info"]["general.architecture"] == "llama", sh["model_info"].keys()
    assert "completion" in sh["capabilities"], sh
    r = S.post("/api/show", {"model": "missing"})
    assert r.status == 404 and r.json()["error"] == "model 'missing:latest' not found", r
    r = S.post("/api/show", {})
    assert r.status == 400 and r.json()["error"] == "model is required", r


def test_create_errors():
    r = S.post("/api/create", {"model": "x"})
    assert r.status == 400 and "neither 'from' or 'files'" in r.json()["error"], r
    r = S.post("/api/create", {"model": "x", "from": "m1", "quantize": "q4_0"})
    assert r.status == 400 and "quantize" in r.json()["error"], r
    r = S.post("/api/create", {"model": "x", "from": "does-not-exist"})
    assert r.status == 404, r
    r = S.post("/api/create", {"model": "x", "from": "m1", "parameters": {"num_ctx": "big"}})
    assert r.status == 400 and "num_ctx" in r.json()["error"], r
    r = S.post("/api/create", {"model": "x", "files": {"a.gguf": "sha256:" + "1" * 64}})
    assert r.status in (400, 404), r


def test_create_from_overrides():
    S.create("base", ds.STORIES, system="one")
    r = S.post("/api/create", {"model": "derived", "from": "base", "system": "two", "stream": False})
    assert r.status == 200, r
    assert S.post("/api/show", {"model": "derived"}).json()["system"] == "two"
    assert S.post("/api/show", {"model": "base"}).json()["system"] == "one"


def test_copy_delete():
    S.create("orig", ds.STORIES)
    r = S.post("/api/copy", {"source": "orig", "destination": "copy1"})
    assert r.status == 200 and r.body == b"", r
    r = S.post("/api/copy", {"source": "nope", "destination": "copy2"})
    assert r.status == 404, r
    names = [m["name"] for m in S.get("/api/tags").json()["models"]]
    assert "copy1:latest" in names, names
    r = S.request("DELETE", "/api/delete", {"model": "copy1"})
    assert r.status == 200, r
    r = S.request("DELETE", "/api/delete", {"model": "copy1"})
    assert r.status == 404 and r.json()["error"] == "model 'copy1' not found" or "not found" in r.json()["error"], r
    names = [m["name"] for m in S.get("/api/tags").json()["models"]]
    assert "copy1:latest" not in names and "orig:latest" in names, names


def test_v1_models():
    r = S.get("/v1/models").json()
    assert r["object"] == "list" and any(m["id"] == "m1:latest" for m in r["data"]), r
    m = [x for x in r["data"] if x["id"] == "m1:latest"][0]
    assert m["object"] == "model" and m["owned_by"] == "library" and m["created"] > 0, m
    r = S.get("/v1/models/m1:latest")
    assert r.status == 200 and r.json()["id"] == "m1:latest", r
    r = S.get("/v1/models/nope")
    assert r.status == 404 and r.json()["error"]["type"] == "not_found_error", r


def test_large_body_and_headers_rejected():
    big = b'{"model":"' + b"a" * (65 << 20) + b'"}'
    try:
        r = S.post("/api/generate", big)
        assert r.status == 413, r
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused from the Content-Length before the body was read
    try:
        r = S.get("/api/version", headers={"X-Big": "b" * (300 * 1024)})
        assert r.status in (413, 431, 400), r
    except (ConnectionError, OSError):
        pass  # MHD may close the connection outright
    assert S.get("/").status == 200


def test_still_serving():
    assert S.alive()
    assert S.get("/").status == 200


def main():
    global S
    with ds.Server() as s:
        S = s
        ds.main([test_root_and_version, test_unknown_route_404_wrong_method_405,
                 test_bad_json_missing_body, test_cors, test_blob_upload_verifies_digest,
                 test_create_tags_show, test_unknown_model_404_everywhere,
                 test_path_like_names_400, test_create_errors, test_create_from_overrides,
                 test_copy_delete, test_v1_models, test_large_body_and_headers_rejected,
                 test_still_serving])


if __name__ == "__main__":
    main()
