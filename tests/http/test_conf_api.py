"""Conformance, spec sections G (endpoint fields), H (streaming and the final object), L
(prompt templates) and appendix B (sample payloads), against a real `dwell serve`.

The server runs with TZ set to a fixed 7-hours-behind-UTC zone, so that "the server's local
UTC offset" of /api/ps and /api/tags is observable (-07:00) and differs from created_at's Z.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402

S = None
GREEDY = {"temperature": 0, "num_predict": 8}
HEX64 = re.compile(r"^[0-9a-f]{64}$")
DETAILS_KEYS = {"parent_model", "format", "family", "families", "parameter_size",
                "quantization_level"}


def gen(model, prompt, **kw):
    r = S.generate(model, prompt, **kw)
    assert r.status == 200, r
    return r.json()


def unload_all():
    for name in S.ps_names():
        S.post("/api/generate", {"model": name, "keep_alive": 0})
    S.wait_for(lambda: S.ps() == [], what="every model unloaded")


# ---- G. endpoints ----

def test_root_and_version_get_and_head():
    # spec G.55
    r = S.get("/")
    assert r.status == 200 and r.body == b"Ollama is running", r
    r = S.request("HEAD", "/")
    assert r.status == 200 and r.body == b"", r
    r = S.get("/api/version")
    assert r.status == 200, r
    v = r.json()
    assert re.match(r"^\d+\.\d+\.\d+", v["version"]), v
    r = S.request("HEAD", "/api/version")
    assert r.status == 200 and r.body == b"", r


def test_ps_empty_is_models_empty_array():
    # spec G.56: {"models":[]} when nothing is resident
    unload_all()
    r = S.get("/api/ps")
    assert r.status == 200 and r.json() == {"models": []}, r
    assert r.headers["content-type"].startswith("application/json"), r.headers


def test_ps_entry_fields():
    # spec G.56, appendix B: name/model display names, digest without prefix (= SHA-256 of
    # the manifest file), details, expires_at RFC 3339 with nanoseconds in the local offset,
    # size, size_vram, context_length.
    unload_all()
    t0 = time.time()
    r = S.post("/api/generate", {"model": "stories", "keep_alive": "10m",
                                 "options": {"num_ctx": 256}})
    assert r.status == 200, r
    ps = S.ps()
    assert len(ps) == 1, ps
    m = ps[0]
    assert m["name"] == "stories:latest" and m["model"] == "stories:latest", m
    assert HEX64.match(m["digest"]), m
    mf = ds.manifest_file(S.models_dir, "stories")
    assert m["digest"] == ds.sha256_file(mf), (m["digest"], ds.sha256_file(mf))
    assert set(m["details"]) >= DETAILS_KEYS, m["details"]
    assert m["details"]["parent_model"] == "" and m["details"]["format"] == "gguf", m
    assert m["details"]["families"] == ["llama"], m
    assert isinstance(m["size"], int) and m["size"] > 1000000, m
    assert m["size_vram"] == 0, m  # CPU only: nothing is in GPU memory
    assert m["context_length"] == 256, m
    t, off = ds.parse_rfc3339(m["expires_at"])
    assert off == "-07:00", m["expires_at"]  # TZ of the server: local offset, not Z
    assert re.search(r"\.\d{1,9}-07:00$", m["expires_at"]), m["expires_at"]
    assert abs(t - (t0 + 600)) < 30, (t - t0, m["expires_at"])


def test_ps_namespaced_display_name():
    # spec G.56: `user/model:tag` display names
    r = S.post("/api/copy", {"source": "stories", "destination": "someone/tale:v1"})
    assert r.status == 200, r
    r = S.post("/api/generate", {"model": "someone/tale:v1", "keep_alive": "10m"})
    assert r.status == 200, r
    ps = S.ps()
    names = [m["name"] for m in ps]
    # Both names share one weights file, so one runner: ps shows the name that loaded it.
    assert "stories:latest" in names or "someone/tale:v1" in names, names
    unload_all()
    r = S.post("/api/generate", {"model": "someone/tale:v1", "keep_alive": "10m"})
    assert S.ps()[0]["name"] == "someone/tale:v1" and S.ps()[0]["model"] == "someone/tale:v1"
    unload_all()


def test_ps_sorted_by_expires_at_descending():
    # spec G.56
    unload_all()
    for name, ka in [("small", "1m"), ("stories", "1h"), ("mid", "10m")]:
        r = S.post("/api/generate", {"model": name, "keep_alive": ka})
        assert r.status == 200, (name, r)
    ps = S.ps()
    assert [m["name"] for m in ps] == ["stories:latest", "mid:latest", "small:latest"], ps
    times = [ds.parse_rfc3339(m["expires_at"])[0] for m in ps]
    assert times == sorted(times, reverse=True), times
    unload_all()


def test_tags_fields_and_digest():
    # spec G.57: name, model, modified_at (manifest mtime, local offset), size (config +
    # layers), digest (SHA-256 of the manifest bytes), details
    for method in ("GET", "HEAD"):
        r = S.request(method, "/api/tags")
        assert r.status == 200, (method, r)
    tags = S.get("/api/tags").json()["models"]
    e = [t for t in tags if t["name"] == "stories:latest"][0]
    assert e["model"] == "stories:latest", e
    mf = ds.manifest_file(S.models_dir, "stories")
    with open(mf, "rb") as f:
        raw = f.read()
    assert e["digest"] == hashlib.sha256(raw).hexdigest(), e
    man = json.loads(raw)
    want = man["config"]["size"] + sum(l["size"] for l in man["layers"])
    assert e["size"] == want, (e["size"], want)
    t, off = ds.parse_rfc3339(e["modified_at"])
    assert off == "-07:00", e["modified_at"]
    assert abs(t - os.stat(mf).st_mtime) < 1e-3, (t, os.stat(mf).st_mtime)
    assert set(e["details"]) >= DETAILS_KEYS, e


def test_tags_newest_first_and_never_loads():
    # spec G.57
    unload_all()
    now = time.time()
    for i, name in enumerate(["small", "mid", "stories"]):
        mf = ds.manifest_file(S.models_dir, name)
        os.utime(mf, (now - 1000 * (i + 1), now - 1000 * (i + 1)))
    names = [t["name"] for t in S.get("/api/tags").json()["models"]]
    order = [n for n in names if n in ("small:latest", "mid:latest", "stories:latest")]
    assert order == ["small:latest", "mid:latest", "stories:latest"], names
    times = [ds.parse_rfc3339(t["modified_at"])[0] for t in S.get("/api/tags").json()["models"]]
    assert times == sorted(times, reverse=True), times
    assert S.ps() == [], "listing loaded a model"


def test_show_fields():
    # spec G.58
    r = S.post("/api/show", {"model": "full"})
    assert r.status == 200, r
    sh = r.json()
    for k in ("license", "modelfile", "parameters", "template", "system", "details",
              "messages", "model_info", "capabilities", "modified_at"):
        assert k in sh, (k, sorted(sh))
    assert sh["modelfile"].startswith('# Modelfile generated by "ollama show"'), sh
    assert sh["license"] == "MIT\nApache-2.0", sh["license"]  # several, joined with \n
    assert sh["system"] == "You are a storyteller." and "{{ .Prompt }}" in sh["template"], sh
    assert sh["messages"] == [{"role": "user", "content": "Hi"},
                              {"role": "assistant", "content": "Hello"}], sh["messages"]
    lines = sh["parameters"].split("\n")
    assert any(re.match(r"^temperature {20}\s*0(\.0+)?$", l) for l in lines), lines
    for l in lines:  # key left-justified to 30 columns, then the value
        assert len(l) > 31 and l[30] == " " and l[:30].rstrip() and " " not in l[:30].rstrip(), l
    stops = [l[30:].strip() for l in lines if l.startswith("stop ")]
    assert stops == ["<end>", "<eos>"] or stops == ['"<end>"', '"<eos>"'], stops
    assert "general.name" not in sh["model_info"], sh["model_info"].keys()
    assert "tokenizer.chat_template" not in sh["model_info"], sh["model_info"].keys()
    assert sh["model_info"]["general.architecture"] == "llama", sh["model_info"]
    toks = sh["model_info"]["tokenizer.ggml.tokens"]
    assert toks == [], len(toks)  # arrays longer than 5 become [] unless verbose
    assert set(sh["details"]) >= DETAILS_KEYS, sh["details"]
    assert sh["capabilities"] == ["completion"], sh["capabilities"]
    ds.parse_rfc3339(sh["modified_at"])
    # the legacy key `name`, and verbose
    v = S.post("/api/show", {"name": "full", "verbose": True}).json()
    assert len(v["model_info"]["tokenizer.ggml.tokens"]) > 5, "verbose keeps long arrays"
    assert "general.name" not in v["model_info"], v["model_info"].keys()
    assert isinstance(v.get("tensors"), list) and v["tensors"], "verbose lists the tensors"
    t = v["tensors"][0]
    assert set(t) >= {"name", "type", "shape"}, t
    assert S.ps() == [] or all(m["name"] != "full:latest" for m in S.ps()), "show loaded"


def test_show_capabilities_insert():
    # spec G.58 / L.90: a template that uses .Suffix gives `insert`
    sh = S.post("/api/show", {"model": "fim"}).json()
    assert "completion" in sh["capabilities"] and "insert" in sh["capabilities"], sh


def test_show_parameters_printed_as_go_prints_them():
    # spec G.58 (Ollama formats each value with Go's %#v): a float is its shortest form
    # (0.7, not 0.69999999999999996; 0, not 0.0), a string is quoted; the Modelfile's
    # PARAMETER lines read back to the same values
    S.create("goparams", ds.STORIES, parameters={"temperature": 0.7, "top_p": 0.9,
                                                 "repeat_penalty": 1.1, "min_p": 0,
                                                 "num_ctx": 256, "stop": ["<end>"]})
    sh = S.post("/api/show", {"model": "goparams"}).json()
    got = {l[:30].rstrip(): l[31:] for l in sh["parameters"].split("\n")}
    assert got == {"temperature": "0.7", "top_p": "0.9", "repeat_penalty": "1.1",
                   "min_p": "0", "num_ctx": "256", "stop": '"<end>"'}, sh["parameters"]
    mf = sh["modelfile"]
    for line in ("PARAMETER temperature 0.7\n", "PARAMETER repeat_penalty 1.1\n",
                 "PARAMETER min_p 0\n", 'PARAMETER stop "<end>"\n'):
        assert line in mf, (line, mf)


def test_show_errors():
    # spec G.58: no model 400, unknown model 404 with the normalised name
    r = S.post("/api/show", {})
    assert r.status == 400 and r.json() == {"error": "model is required"}, r
    r = S.post("/api/show", {"model": "ghost"})
    assert r.status == 404 and r.json() == {"error": "model 'ghost:latest' not found"}, r
    r = S.post("/api/show", {"model": "someone/ghost:v2"})
    assert r.json() == {"error": "model 'someone/ghost:v2' not found"}, r


def test_generate_suffix_renders_through_template():
    # spec G.59 and L.90: suffix goes to the template's .Suffix
    a = gen("fim", "Once upon a time", suffix=" there was", options=GREEDY, raw=False)
    b = gen("stories", "<PRE>Once upon a time<SUF> there was<MID>", raw=True, options=GREEDY)
    assert a["response"] == b["response"], (a, b)
    r = S.generate("stories", "x", suffix="tail")
    assert r.status == 400 and "does not support insert" in r.json()["error"], r


def test_generate_raw_conflicts_400():
    # spec G.59: raw with template, system or context is 400
    for extra in [{"template": "{{ .Prompt }}"}, {"system": "s"}, {"context": [1, 2]}]:
        r = S.generate("stories", "x", raw=True, **extra)
        assert r.status == 400, (extra, r)


def test_generate_top_logprobs_range():
    # spec G.59: top_logprobs outside 0-20 is 400 (dwell refuses logprobs altogether, 400)
    for v in (-1, 21):
        r = S.generate("stories", "x", top_logprobs=v)
        assert r.status == 400, (v, r)
    r = S.generate("stories", "x", logprobs=True)
    assert r.status == 400, r


def test_generate_uses_model_template_and_system():
    # spec L.90: /api/generate renders through the model's template layer with its SYSTEM
    a = gen("tmpl", "Lily", options=GREEDY)
    b = gen("stories", "Once upon a time, there was a girl named Lily", raw=True,
            options=GREEDY)
    assert a["response"] == b["response"], (a["response"], b["response"])
    # the request's system replaces the model's
    c = gen("tmpl", "Lily", system="a boy", options=GREEDY)
    d = gen("stories", "Once upon a time, there was a boy named Lily", raw=True,
            options=GREEDY)
    assert c["response"] == d["response"], (c["response"], d["response"])
    # the request's template replaces the model's
    e = gen("tmpl", "Lily", template="Once upon a time, {{ .Prompt }}", options=GREEDY)
    f = gen("stories", "Once upon a time, Lily", raw=True, options=GREEDY)
    assert e["response"] == f["response"], (e, f)
    # raw skips the template
    g = gen("tmpl", "Once upon a time", raw=True, options=GREEDY)
    h = gen("stories", "Once upon a time", raw=True, options=GREEDY)
    assert g["response"] == h["response"], (g, h)


def chat(model, messages, **kw):
    body = {"model": model, "messages": messages, "stream": False, "options": GREEDY}
    body.update(kw)
    r = S.post("/api/chat", body)
    assert r.status == 200, r
    return r.json()


def test_chat_legacy_template_turns():
    # spec L.90: a legacy template runs once per turn; {{ .Response }} is appended when the
    # template names neither .Messages nor .Response; the last turn is cut after .Response.
    o = chat("plain", [{"role": "user", "content": "Once upon a time"},
                       {"role": "assistant", "content": " there was"},
                       {"role": "user", "content": " a girl"}])
    raw = gen("stories", "Once upon a time there was a girl", raw=True, options=GREEDY)
    assert o["message"]["content"] == raw["response"], (o, raw)


def test_chat_roles_lowercased_and_merged():
    # spec G.59: roles are lower-cased; L.90: consecutive same-role messages merge with \n\n
    o = chat("msgs", [{"role": "USER", "content": "Once upon"},
                      {"role": "User", "content": "a time"}])
    raw = gen("stories", "U:Once upon\n\na time|", raw=True, options=GREEDY)
    assert o["message"]["content"] == raw["response"], (o, raw)


def test_chat_model_system_and_messages_first():
    # spec G.59: the model's MESSAGEs come before the request's and its SYSTEM goes first
    # unless the first request message is a system message.
    o = chat("msgsys", [{"role": "user", "content": "Once"}])
    raw = gen("stories", "S:Lily|U:Tom|A:Sue|U:Once|", raw=True, options=GREEDY)
    assert o["message"]["content"] == raw["response"], (o, raw)
    o = chat("msgsys", [{"role": "system", "content": "Ben"}, {"role": "user", "content": "Once"}])
    raw = gen("stories", "U:Tom|A:Sue|S:Ben|U:Once|", raw=True, options=GREEDY)
    assert o["message"]["content"] == raw["response"], (o, raw)


def test_generate_and_chat_truncate_false():
    # spec G.59: truncate:false fails a prompt longer than the context (400) instead of
    # cutting it; the default (true) cuts it
    unload_all()  # the request's small num_ctx must be the loaded one (DESIGN §4.6)
    long = "Once upon a time there was a little girl. " * 20
    opts = {"num_ctx": 64, "num_predict": 2}
    r = S.post("/api/generate", {"model": "stories", "prompt": long, "truncate": False,
                                 "stream": False, "options": opts})
    assert r.status == 400, r
    assert r.json() == {"error": "the input length exceeds the context length"}, r
    r = S.post("/api/chat", {"model": "stories", "messages": [{"role": "user", "content": long}],
                             "truncate": False, "stream": False, "options": opts})
    assert r.status == 400 and "exceeds the context length" in r.json()["error"], r
    r = S.post("/api/generate", {"model": "stories", "prompt": long, "stream": False,
                                 "options": opts})
    assert r.status == 200 and r.json()["done"], r
    unload_all()


def test_template_functions_and_joined_system():
    # spec L.90: currentDate (the server's local date) and the extra functions; a Messages
    # template sees every system message joined with \n\n in .System
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 7 * 3600))
    a = gen("stories", "Lily", template="Once upon a time on {{ currentDate }} {{ .Prompt }}",
            options=GREEDY)
    b = gen("stories", "Once upon a time on %s Lily" % today, raw=True, options=GREEDY)
    assert a["response"] == b["response"], (today, a, b)
    o = chat("sysjoin", [{"role": "system", "content": "A"}, {"role": "user", "content": "Once"},
                         {"role": "system", "content": "B"}])
    raw = gen("stories", "S:A\n\nB|Once", raw=True, options=GREEDY)
    assert o["message"]["content"] == raw["response"], (o, raw)


def test_embed_fields_and_truncate():
    # spec G.60
    r = S.post("/api/embed", {"model": "stories", "input": "Once upon a time"})
    o = r.json()
    assert r.status == 200 and o["model"] == "stories", o
    for k in ("embeddings", "total_duration", "load_duration", "prompt_eval_count"):
        assert k in o, (k, o)
    assert len(o["embeddings"]) == 1, o
    long = "Once upon a time there was a little girl. " * 30
    unload_all()  # a smaller num_ctx is served by a loaded larger context (DESIGN §4.6)
    r = S.post("/api/embed", {"model": "stories", "input": long, "truncate": False,
                              "options": {"num_ctx": 64}})
    assert r.status == 400, r
    assert r.json() == {"error": "the input length exceeds the context length"}, r
    r = S.post("/api/embed", {"model": "stories", "input": long, "options": {"num_ctx": 64}})
    assert r.status == 200 and len(r.json()["embeddings"]) == 1, r
    v = S.post("/api/embed", {"model": "stories", "input": "Once", "dimensions": 4}).json()
    row = v["embeddings"][0]
    assert len(row) == 4 and abs(sum(x * x for x in row) - 1) < 1e-3, row
    r = S.post("/api/embed", {"model": "stories", "input": ["a", {"b": 1}]})
    assert r.status == 400 and r.json() == {"error": "invalid input type"}, r


def test_embeddings_legacy_not_normalised():
    # spec G.61
    r = S.post("/api/embeddings", {"model": "stories", "prompt": "Once upon a time"})
    o = r.json()
    assert r.status == 200 and list(o) == ["embedding"], o
    n = sum(x * x for x in o["embedding"]) ** 0.5
    assert abs(n - 1) > 1e-3, n
    e = S.post("/api/embed", {"model": "stories", "input": "Once upon a time"}).json()
    row = e["embeddings"][0]
    for a, b in zip(o["embedding"], row):
        assert abs(a / n - b) < 1e-4, (a / n, b)


def test_delete_and_copy_replies():
    # spec G.62
    r = S.post("/api/copy", {"source": "stories", "destination": "doomed"})
    assert r.status == 200 and r.body == b"", r
    r = S.post("/api/copy", {"source": "nope", "destination": "x2"})
    assert r.status == 404 and r.json() == {"error": 'model "nope" not found'}, r
    r = S.request("DELETE", "/api/delete", {"model": "doomed"})
    assert r.status == 200 and r.body == b"", r
    r = S.request("DELETE", "/api/delete", {"model": "doomed"})
    assert r.status == 404 and r.json() == {"error": "model 'doomed' not found"}, r


def test_delete_removes_unused_blobs_only():
    # spec G.62: the manifest goes, then the blobs no other manifest uses
    S.create("solo", ds.STORIES, system="only here, solo")
    man = json.load(open(ds.manifest_file(S.models_dir, "solo")))
    blobs = os.path.join(S.models_dir, "blobs")
    sys_layer = [l for l in man["layers"] if l["mediaType"].endswith(".system")][0]
    model_layer = [l for l in man["layers"] if l["mediaType"].endswith(".model")][0]
    f = lambda d: os.path.join(blobs, d.replace(":", "-"))  # noqa: E731
    assert os.path.exists(f(sys_layer["digest"]))
    r = S.request("DELETE", "/api/delete", {"model": "solo"})
    assert r.status == 200, r
    assert not os.path.exists(ds.manifest_file(S.models_dir, "solo"))
    assert not os.path.exists(f(sys_layer["digest"])), "unused layer left behind"
    assert os.path.exists(f(model_layer["digest"])), "a blob still in use was deleted"
    assert gen("stories", "Once", raw=True, options={"num_predict": 1})["done"]


# ---- H. streaming ----

def test_stream_defaults_true_ndjson_lines():
    # spec H.64, H.65: stream defaults to true; NDJSON, one object per line ending in \n
    r = S.post("/api/generate", {"model": "stories", "prompt": "Once upon a time",
                                 "options": GREEDY})
    assert r.status == 200 and r.headers["content-type"] == "application/x-ndjson", r
    body = r.body.decode()
    assert body.endswith("\n"), body[-50:]
    lines = body.split("\n")[:-1]
    assert len(lines) >= 2 and all(l.strip() for l in lines), lines
    objs = [json.loads(l) for l in lines]
    for o in objs[:-1]:
        assert set(o) == {"model", "created_at", "response", "done"}, o
        assert o["done"] is False and o["model"] == "stories", o
    r = S.post("/api/chat", {"model": "stories", "messages": [{"role": "user", "content": "Hi"}],
                             "options": GREEDY})
    assert r.headers["content-type"] == "application/x-ndjson", r.headers
    objs = r.lines()
    for o in objs[:-1]:
        assert set(o) == {"model", "created_at", "message", "done"}, o
        assert o["message"]["role"] == "assistant" and set(o["message"]) == {"role", "content"}
    r = S.post("/api/generate", {"model": "stories", "prompt": "Hi", "stream": False,
                                 "options": GREEDY})
    assert r.headers["content-type"] == "application/json; charset=utf-8", r.headers


def test_stream_is_flushed_as_tokens_arrive():
    # spec H.64: flushed as tokens arrive (the first line comes before the last is made)
    c = S.conn(60)
    body = json.dumps({"model": "stories", "prompt": "Once upon a time",
                       "options": {"temperature": 0, "num_predict": 200}})
    c.request("POST", "/api/generate", body=body, headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    t0 = time.time()
    first = resp.readline()
    t_first = time.time() - t0
    rest = resp.read()
    t_all = time.time() - t0
    c.close()
    assert json.loads(first)["done"] is False, first
    assert rest.strip().split(b"\n")[-1].find(b'"done":true') >= 0, rest[-200:]
    assert t_first < t_all, (t_first, t_all)


def test_stream_sends_one_object_per_token():
    # spec H.64: one object per token, even when the client reads more slowly than tokens
    # arrive (stories260K's pieces are ASCII, and no stop string holds text back)
    c = S.conn(60)
    body = json.dumps({"model": "stories", "prompt": "Once upon a time",
                       "options": {"temperature": 0, "num_predict": 64}})
    c.request("POST", "/api/generate", body=body, headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    time.sleep(1.0)  # let the whole answer queue up before reading any of it
    objs = [json.loads(l) for l in resp.read().split(b"\n") if l.strip()]
    c.close()
    last = objs[-1]
    assert last["done"] is True and last["done_reason"] == "length", last
    pieces = [o["response"] for o in objs[:-1]]
    assert len(pieces) == last["eval_count"] == 64, (len(pieces), last)
    assert all(pieces), pieces


def test_final_object_fields():
    # spec H.66, H.67, appendix B: done, done_reason, integer nanosecond metrics, context
    # unless raw, response "" when streamed, created_at in UTC with Z
    r = S.generate("stories", "Once upon a time", stream=True, options=GREEDY)
    last = r.lines()[-1]
    assert last["done"] is True and last["done_reason"] in ("stop", "length"), last
    assert last["response"] == "", last
    for k in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
              "eval_count", "eval_duration"):
        if k in last:
            assert isinstance(last[k], int) and last[k] > 0, (k, last)  # zero ones left out
    for k in ("total_duration", "prompt_eval_count", "eval_count", "eval_duration"):
        assert k in last, (k, last)
    assert isinstance(last["context"], list) and all(isinstance(t, int) for t in last["context"])
    assert last["created_at"].endswith("Z"), last
    t, off = ds.parse_rfc3339(last["created_at"])
    assert off == "Z" and abs(t - time.time()) < 60, last["created_at"]
    assert last["total_duration"] >= last.get("load_duration", 0), last
    assert last["total_duration"] >= last["eval_duration"], last
    o = gen("stories", "Once upon a time", raw=True, options=GREEDY)
    assert "context" not in o, o
    o = gen("stories", "Once upon a time", options={"temperature": 0, "num_predict": 2})
    assert o["done_reason"] == "length" and o["eval_count"] == 2, o


def test_load_duration_small_when_warm():
    # spec H.67: load_duration covers obtaining a runner; near zero for a warm model
    unload_all()
    cold = gen("stories", "Once", options={"temperature": 0, "num_predict": 1})
    warm = gen("stories", "Once", options={"temperature": 0, "num_predict": 1})
    assert cold["load_duration"] > warm.get("load_duration", 0), (cold, warm)
    assert warm.get("load_duration", 0) < 50_000_000, warm


def test_error_before_first_byte_has_real_status():
    # spec H.68: an error before any byte is a real status with {"error"} even when streaming
    r = S.post("/api/generate", {"model": "stories", "prompt": "x", "stream": True,
                                 "options": {"num_ctx": "big"}})
    assert r.status == 500 and list(r.json()) == ["error"], r  # spec I.75
    r = S.post("/api/chat", {"model": "ghost", "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 404 and list(r.json()) == ["error"], r


def test_not_streamed_concatenates_stream():
    # spec H.69
    lines = S.generate("stories", "Once upon a time", stream=True, options=GREEDY).lines()
    one = gen("stories", "Once upon a time", options=GREEDY)
    assert "".join(l["response"] for l in lines) == one["response"], (lines, one)
    assert one["eval_count"] == lines[-1]["eval_count"], (one, lines[-1])
    msgs = [{"role": "user", "content": "Hi"}]
    cl = S.post("/api/chat", {"model": "stories", "messages": msgs, "options": GREEDY}).lines()
    co = chat("stories", msgs)
    assert "".join(l["message"]["content"] for l in cl) == co["message"]["content"], (cl, co)


# ---- appendix B ----

def test_sample_payloads_load_and_unload():
    # appendix B: the exact key sets of the load and unload replies
    unload_all()
    o = S.post("/api/chat", {"model": "stories"}).json()
    assert set(o) == {"model", "created_at", "message", "done", "done_reason"}, o
    assert o["message"] == {"role": "assistant", "content": ""} and o["done_reason"] == "load"
    o = S.post("/api/generate", {"model": "stories", "keep_alive": 0}).json()
    assert set(o) == {"model", "created_at", "response", "done", "done_reason"}, o
    assert o["response"] == "" and o["done"] is True and o["done_reason"] == "unload", o
    assert o["model"] == "stories" and o["created_at"].endswith("Z"), o


def test_still_serving():
    assert S.alive() and S.get("/").status == 200


def setup(s):
    s.create("stories", ds.STORIES)
    for name, seed in (("small", 1), ("mid", 2)):
        path = os.path.join(s.tmp, name + ".gguf")
        subprocess.run([ds.BIN, "debug", "mkmodel", path, "--dim", "64", "--layers", "1",
                        "--heads", "2", "--ffn", "128", "--ctx", "256", "--seed", str(seed)],
                       check=True, capture_output=True, timeout=60)
        s.create(name, path)
    s.create("full", ds.STORIES, template="{{ .System }} {{ .Prompt }}",
             system="You are a storyteller.", license=["MIT", "Apache-2.0"],
             parameters={"temperature": 0, "stop": ["<end>", "<eos>"]},
             messages=[{"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "Hello"}])
    s.create("fim", ds.STORIES, template="<PRE>{{ .Prompt }}<SUF>{{ .Suffix }}<MID>")
    s.create("tmpl", ds.STORIES, template="Once upon a time, there was {{ .System }} named "
             "{{ .Prompt }}", system="a girl")
    s.create("plain", ds.STORIES, template="{{ .Prompt }}")
    s.create("msgs", ds.STORIES, template="{{ range .Messages }}"
             "{{ if eq .Role \"user\" }}U:{{ .Content }}|{{ else }}X{{ end }}{{ end }}")
    s.create("sysjoin", ds.STORIES, template="S:{{ .System }}|{{ range .Messages }}"
             "{{ if eq .Role \"user\" }}{{ .Content }}{{ end }}{{ end }}")
    s.create("msgsys", ds.STORIES, system="Lily",
             messages=[{"role": "user", "content": "Tom"},
                       {"role": "assistant", "content": "Sue"}],
             template="{{ range .Messages }}{{ if eq .Role \"user\" }}U{{ else if eq .Role "
             "\"system\" }}S{{ else }}A{{ end }}:{{ .Content }}|{{ end }}")


def main():
    global S
    with ds.Server(env={"TZ": "XYZ+07:00"}) as s:
        S = s
        setup(s)
        ds.main([test_root_and_version_get_and_head, test_ps_empty_is_models_empty_array,
                 test_ps_entry_fields, test_ps_namespaced_display_name,
                 test_ps_sorted_by_expires_at_descending, test_tags_fields_and_digest,
                 test_stream_sends_one_object_per_token,
                 test_tags_newest_first_and_never_loads, test_show_fields,
                 test_show_capabilities_insert, test_show_parameters_printed_as_go_prints_them,
                 test_show_errors,
                 test_generate_suffix_renders_through_template, test_generate_raw_conflicts_400,
                 test_generate_top_logprobs_range, test_generate_uses_model_template_and_system,
                 test_chat_legacy_template_turns, test_chat_roles_lowercased_and_merged,
                 test_chat_model_system_and_messages_first, test_generate_and_chat_truncate_false,
                 test_template_functions_and_joined_system, test_embed_fields_and_truncate,
                 test_embeddings_legacy_not_normalised, test_delete_and_copy_replies,
                 test_delete_removes_unused_blobs_only, test_stream_defaults_true_ndjson_lines,
                 test_stream_is_flushed_as_tokens_arrive, test_final_object_fields,
                 test_load_duration_small_when_warm, test_error_before_first_byte_has_real_status,
                 test_not_streamed_concatenates_stream, test_sample_payloads_load_and_unload,
                 test_still_serving])


if __name__ == "__main__":
    main()
