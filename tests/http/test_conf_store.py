"""Conformance, spec section K (the on-disk store: layout, names, case rules, manifests,
layer media types, start-up pruning) and appendix C (blobs, create, the Modelfile as the CLI
sends it), against a real `dwell serve` with a temporary store."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402

S = None
MT = "application/vnd.ollama.image."
GREEDY = {"temperature": 0, "num_predict": 6}


def blob_file(models_dir, digest):
    return os.path.join(models_dir, "blobs", digest.replace(":", "-"))


def manifest(name, **kw):
    with open(ds.manifest_file(S.models_dir, name, **kw), "rb") as f:
        raw = f.read()
    return raw, json.loads(raw)


def layers_by_type(man):
    out = {}
    for l in man["layers"]:
        out.setdefault(l["mediaType"][len(MT):], []).append(l)
    return out


def names():
    return [m["name"] for m in S.get("/api/tags").json()["models"]]


# ---- K.85 layout ----

def test_layout_paths_and_modes():
    # spec K.85: manifests/<host>/<namespace>/<model>/<tag>, blobs/sha256-<hex>, dirs 0755,
    # blobs 0644 (the server runs with umask 022)
    S.create("lay", ds.STORIES, system="layout")
    mf = ds.manifest_file(S.models_dir, "lay")
    assert os.path.isfile(mf), os.listdir(os.path.join(S.models_dir, "manifests"))
    raw, man = manifest("lay")
    for d in [man["config"]] + man["layers"]:
        p = blob_file(S.models_dir, d["digest"])
        assert os.path.isfile(p), p
        assert os.path.basename(p).startswith("sha256-") and len(os.path.basename(p)) == 71
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o644, oct(os.stat(p).st_mode)
        assert os.path.getsize(p) == d["size"], d
        assert ds.sha256_file(p) == d["digest"][7:], d
    for d in ["", "manifests", "manifests/registry.ollama.ai",
              "manifests/registry.ollama.ai/library", "manifests/registry.ollama.ai/library/lay",
              "blobs"]:
        p = os.path.join(S.models_dir, d)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o755, (d, oct(os.stat(p).st_mode))
    for f in os.listdir(os.path.join(S.models_dir, "blobs")):
        assert ":" not in f and "partial" not in f, f


def test_default_root_is_home_ollama_models():
    # spec K.85: OLLAMA_MODELS unset → $HOME/.ollama/models
    home = tempfile.mkdtemp(prefix="dwell-home-")
    try:
        # an empty OLLAMA_MODELS counts as unset, as in Ollama
        with ds.Server(env={"HOME": home, "OLLAMA_MODELS": ""}) as s:
            r = s.get("/api/tags")
            assert r.status == 200 and r.json() == {"models": []}, r
            assert os.path.isdir(os.path.join(home, ".ollama", "models", "blobs")), \
                os.listdir(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_legacy_colon_blob_names_renamed_at_start():
    # spec K.85: older stores used blobs/sha256:<hex>; renamed on start-up
    root = tempfile.mkdtemp(prefix="dwell-store-")
    try:
        with ds.Server(models_dir=root) as s:
            s.create("old", ds.STORIES)
        blobs = os.path.join(root, "blobs")
        for f in os.listdir(blobs):
            os.rename(os.path.join(blobs, f), os.path.join(blobs, f.replace("-", ":", 1)))
        with ds.Server(models_dir=root) as s:
            assert all(f.startswith("sha256-") for f in os.listdir(blobs)), os.listdir(blobs)
            r = s.generate("old", "Once upon a time", options=GREEDY)
            assert r.status == 200 and r.json()["done"], r
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- K.86 names ----

def test_display_names():
    # spec K.86: the default host is left out, and the default namespace with it; the tag is
    # always shown
    for sent, shown, path in [
            ("plainname", "plainname:latest", ("plainname", "latest", "library", "registry.ollama.ai")),
            ("registry.ollama.ai/library/full:v1", "full:v1", ("full", "v1", "library", "registry.ollama.ai")),
            ("team/tool:v2", "team/tool:v2", ("tool", "v2", "team", "registry.ollama.ai")),
            ("example.com:5000/team/m.x_y-z:t.1_a-b", "example.com:5000/team/m.x_y-z:t.1_a-b",
             ("m.x_y-z", "t.1_a-b", "team", "example.com:5000")),
            ("_u/9m", "_u/9m:latest", ("9m", "latest", "_u", "registry.ollama.ai"))]:
        r = S.post("/api/copy", {"source": "base", "destination": sent})
        assert r.status == 200, (sent, r)
        assert shown in names(), (sent, names())
        m, tag, ns, host = path
        assert os.path.isfile(ds.manifest_file(S.models_dir, m, tag=tag, ns=ns, host=host)), sent
        sh = S.post("/api/show", {"model": sent})
        assert sh.status == 200, (sent, sh)
        r = S.post("/api/generate", {"model": sent, "keep_alive": "1m"})
        assert r.status == 200, (sent, r)
        assert shown in S.ps_names(), (shown, S.ps())
        S.post("/api/generate", {"model": sent, "keep_alive": 0})


def test_name_characters_and_lengths():
    # spec K.86: each part starts with a letter, digit or _; then - _ . (model, tag),
    # - _ (namespace), - _ . : (host); host up to 350 characters, other parts up to 80
    valid = ["a" * 80, "m:" + "t" * 80, "n" * 80 + "/m", "h" * 350 + "/ns/m", "9", "_x",
             "A-b_c.d", "host.x:99/ns-_/m"]
    invalid = ["a" * 81, "m:" + "t" * 81, "n" * 81 + "/m", "h" * 351 + "/ns/m", "-x", ".x",
               "x/.y", "n.s/m", "m:t:u", "ns/m/", "/m", "m:", "a b", "m@x", "x/y/z/w",
               "ns/../m", "..", ".", "m:-t", "é"]
    for n in valid:
        r = S.post("/api/show", {"model": n})
        assert r.status == 404, (n, r)  # valid, just not installed
    for n in invalid:
        r = S.post("/api/show", {"model": n})
        assert r.status == 400, (n, r)
        r = S.post("/api/copy", {"source": "base", "destination": n})
        assert r.status == 400, (n, r)
        r = S.post("/api/create", {"model": n, "from": "base"})
        assert r.status == 400, (n, r)
    for root, dirs, files in os.walk(S.models_dir):
        assert os.path.realpath(root).startswith(os.path.realpath(S.models_dir)), root


def test_path_like_names_never_leave_the_store():
    # spec K.86: a path-like name is refused everywhere and writes nothing outside manifests/
    outside = os.path.join(S.tmp, "escaped")
    for n in ["../../escaped", "/tmp/x", "..%2f..%2fx", "a\\..\\b", "ns/../../x", "x:../../y"]:
        for method, path, body in [
                ("POST", "/api/create", {"model": n, "from": "base"}),
                ("POST", "/api/copy", {"source": "base", "destination": n}),
                ("POST", "/api/copy", {"source": n, "destination": "z"}),
                ("DELETE", "/api/delete", {"model": n}),
                ("POST", "/api/show", {"model": n}),
                ("POST", "/api/generate", {"model": n, "prompt": "x"})]:
            r = S.request(method, path, body)
            assert r.status == 400, (n, path, r)
    assert not os.path.exists(outside)
    r = S.get("/v1/models/..%2F..%2Fx")
    assert r.status in (400, 404), r


def test_lookup_is_case_insensitive():
    # spec K.86: lookup of an existing model is case-insensitive per part
    r = S.post("/api/copy", {"source": "base", "destination": "Team/MixedCase:Tag"})
    assert r.status == 200, r
    for n in ["team/mixedcase:tag", "TEAM/MIXEDCASE:TAG", "Team/MixedCase:tag"]:
        assert S.post("/api/show", {"model": n}).status == 200, n
        r = S.generate(n, "Once", options={"temperature": 0, "num_predict": 1})
        assert r.status == 200, (n, r)
    # writing under another case reuses the existing entry rather than adding one
    r = S.post("/api/copy", {"source": "base", "destination": "team/mixedcase:TAG"})
    assert r.status == 200, r
    found = [n for n in names() if n.lower() == "team/mixedcase:tag"]
    assert len(found) == 1, found
    r = S.request("DELETE", "/api/delete", {"model": "TEAM/MIXEDCASE:tag"})
    assert r.status == 200, r
    assert not [n for n in names() if n.lower() == "team/mixedcase:tag"], names()


# ---- K.87, K.88 manifests and layers ----

def test_manifest_is_one_line_docker_v2():
    # spec K.87
    S.create("mani", ds.STORIES, template="T {{ .Prompt }}", system="S",
             parameters={"num_ctx": 256, "stop": ["<|eot_id|>"]}, license=["L1", "L2"],
             messages=[{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}])
    raw, man = manifest("mani")
    assert b"\n" not in raw.rstrip(b"\n"), raw[:200]
    assert man["schemaVersion"] == 2, man
    assert man["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json", man
    assert man["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json", man
    for l in [man["config"]] + man["layers"]:
        assert l["digest"].startswith("sha256:") and len(l["digest"]) == 71, l
        assert isinstance(l["size"], int), l
    tags = S.get("/api/tags").json()["models"]
    e = [t for t in tags if t["name"] == "mani:latest"][0]
    assert e["digest"] == hashlib.sha256(raw).hexdigest(), e


def test_layer_media_types_and_contents():
    # spec K.88: model, template, system, params, messages, license layers and the config
    raw, man = manifest("mani")
    by = layers_by_type(man)
    assert set(by) >= {"model", "template", "system", "params", "messages", "license"}, by
    assert len(by["model"]) == 1 and len(by["license"]) == 2, by

    def text(l):
        with open(blob_file(S.models_dir, l["digest"]), "rb") as f:
            return f.read().decode()
    assert text(by["template"][0]) == "T {{ .Prompt }}"
    assert text(by["system"][0]) == "S"
    assert [text(l) for l in by["license"]] == ["L1", "L2"]
    assert json.loads(text(by["params"][0])) == {"num_ctx": 256, "stop": ["<|eot_id|>"]}
    assert json.loads(text(by["messages"][0])) == [{"role": "user", "content": "u"},
                                                   {"role": "assistant", "content": "a"}]
    with open(blob_file(S.models_dir, man["config"]["digest"])) as f:
        cfg = json.load(f)
    assert cfg["model_format"] == "gguf" and cfg["model_family"] == "llama", cfg
    assert cfg["model_families"] == ["llama"] and cfg["architecture"] and cfg["os"], cfg
    assert "model_type" in cfg and "file_type" in cfg, cfg
    d = S.post("/api/show", {"model": "mani"}).json()["details"]
    assert d["parameter_size"] == cfg["model_type"] and d["quantization_level"] == cfg["file_type"]


def write_blob(root, data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs", "sha256-" + h), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + h, "size": len(data)}


def test_reads_an_ollama_written_store():
    # spec K.88: a store as Ollama writes it: the legacy `prompt` template type, an `embed`
    # layer (ignored), two licenses, `from` on the model layer (parent_model), a config with
    # keys dwell does not know and the old rootfs
    root = tempfile.mkdtemp(prefix="dwell-ostore-")
    try:
        os.makedirs(os.path.join(root, "blobs"))
        with open(ds.STORIES, "rb") as f:
            model = write_blob(root, f.read())
        layers = [dict(model, mediaType=MT + "model", **{"from": "library/stories:base"}),
                  dict(write_blob(root, b"Once upon a time, {{ .Prompt }}"),
                       mediaType=MT + "prompt"),
                  dict(write_blob(root, b"be kind"), mediaType=MT + "system"),
                  dict(write_blob(root, b'{"temperature":0,"num_predict":6,"stop":["zzz"]}'),
                       mediaType=MT + "params"),
                  dict(write_blob(root, b"\x00\x01 not a model"), mediaType=MT + "embed"),
                  dict(write_blob(root, b"License A"), mediaType=MT + "license"),
                  dict(write_blob(root, b"License B"), mediaType=MT + "license")]
        cfg = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
               "model_type": "260K", "file_type": "F32", "architecture": "amd64",
               "os": "linux", "renderer": "", "parser": "", "requires": "0.1.0",
               "future_key": {"nested": [1, 2]},
               "rootfs": {"type": "layers", "diff_ids": [model["digest"]]}}
        config = dict(write_blob(root, json.dumps(cfg).encode()),
                      mediaType="application/vnd.docker.container.image.v1+json")
        man = {"schemaVersion": 2,
               "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "config": config, "layers": layers}
        d = os.path.join(root, "manifests", "registry.ollama.ai", "library", "ostories")
        os.makedirs(d)
        with open(os.path.join(d, "latest"), "w") as f:
            f.write(json.dumps(man, separators=(",", ":")))
        lora = dict(man, layers=layers + [dict(model, mediaType=MT + "adapter")])
        d2 = os.path.join(root, "manifests", "registry.ollama.ai", "library", "lora")
        os.makedirs(d2)
        with open(os.path.join(d2, "latest"), "w") as f:
            f.write(json.dumps(lora, separators=(",", ":")))
        with ds.Server(models_dir=root) as s:
            tags = s.get("/api/tags").json()["models"]
            assert sorted(t["name"] for t in tags) == ["lora:latest", "ostories:latest"], tags
            # an adapter layer cannot be applied: a clear 400 rather than the base model's
            # answers (show still works: it never loads)
            r = s.post("/api/generate", {"model": "lora", "prompt": "Once", "stream": False})
            assert r.status == 400 and "adapter" in r.json()["error"], r
            assert s.post("/api/show", {"model": "lora"}).status == 200
            assert tags[0]["details"]["parameter_size"] == "260K", tags
            sh = s.post("/api/show", {"model": "ostories"}).json()
            assert sh["template"] == "Once upon a time, {{ .Prompt }}", sh
            assert sh["system"] == "be kind" and sh["license"] == "License A\nLicense B", sh
            assert sh["details"]["parent_model"] == "library/stories:base", sh["details"]
            o = s.post("/api/generate", {"model": "ostories", "prompt": "Lily",
                                         "stream": False}).json()
            want = s.post("/api/generate", {"model": "ostories", "raw": True, "stream": False,
                                            "prompt": "Once upon a time, Lily"}).json()
            assert o["response"] == want["response"] and o["eval_count"] <= 6, (o, want)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- K.89 pruning ----

def test_startup_prune():
    # spec K.89: blobs older than 1 h that no manifest uses and files whose names are not
    # digests go at start-up, recent ones stay; empty manifest directories go; OLLAMA_NOPRUNE
    # keeps everything; a corrupt manifest skips the pruning
    root = tempfile.mkdtemp(prefix="dwell-prune-")
    try:
        with ds.Server(models_dir=root) as s:
            s.create("keep", ds.STORIES, system="kept")
        blobs = os.path.join(root, "blobs")
        old = time.time() - 7200
        for f in os.listdir(blobs):
            os.utime(os.path.join(blobs, f), (old, old))
        files = {}
        for key, name in [("orphan_old", "sha256-" + "1" * 64), ("orphan_new", "sha256-" + "2" * 64),
                          ("partial", "sha256-" + "3" * 64 + "-partial"),
                          ("partial_n", "sha256-" + "4" * 64 + "-partial-0"), ("junk", "junk.tmp")]:
            p = os.path.join(blobs, name)
            with open(p, "wb") as f:
                f.write(b"x")
            if key != "orphan_new":
                os.utime(p, (old, old))
            files[key] = p
        empty = os.path.join(root, "manifests", "registry.ollama.ai", "ghostns", "ghost")
        os.makedirs(empty)
        with ds.Server(models_dir=root, env={"OLLAMA_NOPRUNE": "1"}):
            pass
        assert all(os.path.exists(p) for p in files.values()), os.listdir(blobs)
        with ds.Server(models_dir=root) as s:
            for key in ("orphan_old", "partial", "partial_n", "junk"):
                assert not os.path.exists(files[key]), (key, os.listdir(blobs))
            assert os.path.exists(files["orphan_new"]), "a recent blob was pruned"
            assert not os.path.exists(empty), "empty manifest directory left"
            r = s.generate("keep", "Once", options=GREEDY)
            assert r.status == 200, r
            assert s.post("/api/show", {"model": "keep"}).json()["system"] == "kept"
        # a corrupt manifest: nothing is pruned
        os.utime(files["orphan_new"], (old, old))
        bad = os.path.join(root, "manifests", "registry.ollama.ai", "library", "bad")
        os.makedirs(bad)
        with open(os.path.join(bad, "latest"), "w") as f:
            f.write("{not json")
        with ds.Server(models_dir=root) as s:
            assert os.path.exists(files["orphan_new"]), "pruned despite a corrupt manifest"
            assert s.get("/api/tags").status == 200
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- appendix C: blobs and create ----

def test_blob_endpoints():
    # appendix C
    data = b"some bytes for a blob"
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    r = S.request("HEAD", "/api/blobs/" + good)
    assert r.status == 404 and r.body == b"", r
    r = S.post("/api/blobs/" + good, data)
    assert r.status == 201, r
    assert S.request("HEAD", "/api/blobs/" + good).status == 200
    assert S.post("/api/blobs/" + good, data).status == 200
    other = "sha256:" + "ab" * 32
    r = S.post("/api/blobs/" + other, data)
    assert r.status == 400, r
    assert r.json() == {"error": 'digest mismatch, expected "%s", got "%s"' % (other, good)}, r
    assert S.request("HEAD", "/api/blobs/" + other).status == 404
    for bad in ("sha256:xyz", "sha256:" + "g" * 64, "md5:" + "0" * 32, "sha256:" + "0" * 63,
                "sha256-" + "0" * 65, "nothing"):
        r = S.request("HEAD", "/api/blobs/" + bad)
        assert r.status == 400, (bad, r)
        r = S.post("/api/blobs/" + bad, data)
        assert r.status == 400 and "error" in r.json(), (bad, r)


def test_create_streamed_status_lines():
    # appendix C: NDJSON {"status"} lines ending with success
    digest = S.upload(ds.STORIES)
    r = S.post("/api/create", {"model": "streamed", "files": {"stories.gguf": digest},
                               "system": "s"})
    assert r.status == 200 and r.headers["content-type"] == "application/x-ndjson", r
    lines = r.lines()
    assert all(list(l) == ["status"] for l in lines), lines
    st = [l["status"] for l in lines]
    assert st[-1] == "success" and "writing manifest" in st, st
    assert any(x.startswith("using existing layer sha256:") or x.startswith("parsing GGUF")
               for x in st), st
    r = S.post("/api/create", {"model": "streamed2", "files": {"stories.gguf": digest},
                               "stream": False})
    assert r.status == 200 and r.json() == {"status": "success"}, r
    # the lines go out while the create runs: a chunked body, not one buffered at the end
    assert r.headers.get("transfer-encoding") != "chunked", r.headers
    r = S.post("/api/create", {"model": "streamed3", "from": "streamed", "system": "t"})
    assert r.status == 200 and r.headers.get("transfer-encoding") == "chunked", r.headers
    st = [l["status"] for l in r.lines()]
    assert st[0].startswith("using existing layer sha256:") and st[-1] == "success", st
    assert "writing manifest" in st, st


def test_create_streamed_error_after_start():
    # appendix C, spec H.68: an error once the status lines have started is a last
    # {"error"} line (status 200, no success); before that it has its real status
    notgguf = S.upload(__file__)
    r = S.post("/api/create", {"model": "late", "files": {"x.gguf": notgguf}})
    assert r.status == 200 and r.headers["content-type"] == "application/x-ndjson", r
    lines = r.lines()
    assert lines[0] == {"status": "parsing GGUF"}, lines
    assert list(lines[-1]) == ["error"] and "GGUF" in lines[-1]["error"], lines
    assert all(list(l) == ["status"] and l["status"] != "success" for l in lines[:-1]), lines
    assert "late:latest" not in names(), names()
    missing = "sha256:" + "6" * 64
    r = S.post("/api/create", {"model": "early", "files": {"x.gguf": missing}})
    assert r.status == 404 and r.json() == {"error": 'blob "%s" not found' % missing}, r
    r = S.post("/api/create", {"model": "early", "from": "never-made"})
    assert r.status == 404 and r.json() == {"error": "model 'never-made' not found"}, r
    r = S.post("/api/create", {"model": "bad name", "from": "base"})
    assert r.status == 400 and list(r.json()) == ["error"], r
    assert "early:latest" not in names(), names()


def test_create_errors():
    # appendix C
    r = S.post("/api/create", {"model": "e1"})
    assert r.status == 400 and r.json() == {"error": "neither 'from' or 'files' was specified"}
    digest = S.upload(ds.STORIES)
    for fname in ("/abs/x.gguf", "../x.gguf", "a/../../x.gguf"):
        r = S.post("/api/create", {"model": "e2", "files": {fname: digest}})
        assert r.status == 400 and r.json() == {"error": "file path must be relative"}, (fname, r)
    r = S.post("/api/create", {"model": "e3", "files": {"x.gguf": "sha256:zz"}})
    assert r.status == 400, r
    r = S.post("/api/create", {"model": "e4", "from": "never-made"})
    assert r.status == 404, r
    r = S.post("/api/create", {"model": "e5", "from": "base", "quantize": "q4_K_M"})
    assert r.status == 400, r
    r = S.post("/api/create", {"model": "e6", "files": {"x.gguf": "sha256:" + "5" * 64}})
    assert r.status in (400, 404) and "error" in r.json(), r
    r = S.post("/api/create", {"model": "e8", "files": {"x.gguf": digest},
                               "adapters": {"lora.gguf": digest}})
    assert r.status == 400 and "adapters" in r.json()["error"], r
    notgguf = S.upload(__file__)
    r = S.post("/api/create", {"model": "e7", "files": {"x.gguf": notgguf}, "stream": False})
    assert r.status == 400 and "error" in r.json(), r
    # a template that does not parse is refused at create (as Ollama), not stored to fail
    # every later request; streamed too, since it is found before the first status line
    for stream in (False, True):
        r = S.post("/api/create", {"model": "e9", "from": "base", "template": "{{ .Prompt",
                                   "stream": stream})
        assert r.status == 400, r
        assert r.json()["error"].startswith("template error: "), r
    for n in ("e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"):
        assert n + ":latest" not in names(), names()


def test_create_from_model_overrides_and_merges():
    # appendix C: values of the request override those of `from`; parameters merge per key
    S.create("parent", ds.STORIES, template="P {{ .Prompt }}", system="parent system",
             parameters={"temperature": 0.5, "top_k": 7}, license="parent license",
             messages=[{"role": "user", "content": "pu"}])
    r = S.post("/api/create", {"model": "child", "from": "parent", "system": "child system",
                               "parameters": {"top_k": 3}, "stream": False})
    assert r.status == 200, r
    c = S.post("/api/show", {"model": "child"}).json()
    assert c["system"] == "child system" and c["template"] == "P {{ .Prompt }}", c
    assert c["license"] == "parent license" and c["messages"] == [{"role": "user", "content": "pu"}]
    params = {l.split()[0]: l.split()[1] for l in c["parameters"].split("\n")}
    assert params["top_k"] == "3" and float(params["temperature"]) == 0.5, params
    p = S.post("/api/show", {"model": "parent"}).json()
    assert p["system"] == "parent system", p
    _, pm = manifest("parent")
    _, cm = manifest("child")
    pw, cw = layers_by_type(pm)["model"][0], layers_by_type(cm)["model"][0]
    assert pw["digest"] == cw["digest"], (pw, cw)  # the weights blob is shared


def test_cli_modelfile_create():
    # appendix C: the CLI reads the Modelfile (instructions case-insensitive, comments,
    # triple-quoted and quoted values, repeatable PARAMETER stop and LICENSE, MESSAGE, FROM a
    # path relative to the Modelfile), uploads the GGUF as a blob (HEAD first) and sends JSON
    d = tempfile.mkdtemp(prefix="dwell-mf-", dir=S.tmp)
    shutil.copy(ds.STORIES, os.path.join(d, "w.gguf"))
    with open(os.path.join(d, "Modelfile"), "w") as f:
        f.write('# a comment\nfrom ./w.gguf\nPARAMETER temperature 0\nparameter stop "<a>"\n'
                'PARAMETER stop "<b>"\nTEMPLATE """{{ if .System }}{{ .System }} {{ end }}'
                '{{ .Prompt }}"""\nSYSTEM "Once upon a time"\nLICENSE """first\nlicense"""\n'
                'license second\nMESSAGE user hello\nMESSAGE assistant """hi there"""\n')
    env = dict(os.environ, OLLAMA_HOST="127.0.0.1:%d" % S.port)
    p = subprocess.run([ds.BIN, "create", "fromfile", "-f", os.path.join(d, "Modelfile")],
                       env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
    sh = S.post("/api/show", {"model": "fromfile"}).json()
    assert sh["template"] == "{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}", sh
    assert sh["system"] == "Once upon a time" and sh["license"] == "first\nlicense\nsecond", sh
    assert sh["messages"] == [{"role": "user", "content": "hello"},
                              {"role": "assistant", "content": "hi there"}], sh["messages"]
    stops = [l.split(None, 1)[1].strip('"') for l in sh["parameters"].split("\n")
             if l.startswith("stop")]
    assert stops == ["<a>", "<b>"], sh["parameters"]
    digest = "sha256:" + ds.sha256_file(ds.STORIES)
    assert S.request("HEAD", "/api/blobs/" + digest).status == 200
    a = S.generate("fromfile", "there was a girl", options={"num_predict": 6}).json()
    b = S.generate("base", "Once upon a time there was a girl", raw=True,
                   options={"temperature": 0, "num_predict": 6}).json()
    assert a["response"] == b["response"], (a, b)


def test_still_serving():
    assert S.alive() and S.get("/").status == 200


def main():
    global S
    os.umask(0o022)
    with ds.Server() as s:
        S = s
        s.create("base", ds.STORIES)
        ds.main([test_layout_paths_and_modes, test_default_root_is_home_ollama_models,
                 test_legacy_colon_blob_names_renamed_at_start, test_display_names,
                 test_name_characters_and_lengths, test_path_like_names_never_leave_the_store,
                 test_lookup_is_case_insensitive, test_manifest_is_one_line_docker_v2,
                 test_layer_media_types_and_contents, test_reads_an_ollama_written_store,
                 test_startup_prune, test_blob_endpoints, test_create_streamed_status_lines,
                 test_create_errors, test_create_from_model_overrides_and_merges,
                 test_cli_modelfile_create, test_still_serving])


if __name__ == "__main__":
    main()
