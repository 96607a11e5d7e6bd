"""POST /api/pull against a fake registry on 127.0.0.1 (fakeregistry.py): the progress
objects in Ollama's shapes, the store it leaves behind (Ollama's layout, usable at once), and
every failure: wrong bytes, missing or garbage manifests, an unreachable registry, a client
that goes away mid-download (and the resume that follows), concurrent pulls."""
import hashlib
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402
import fakeregistry as fr  # noqa: E402

S = None
GGUF = None      # bytes of a small model from `dwell debug mkmodel`
GGUF2 = None     # others (different seeds): weights no earlier test stored
GGUF3 = None
GGUF4 = None


def setup():
    global S, GGUF, GGUF2, GGUF3, GGUF4
    tmp = tempfile.mkdtemp(prefix="dwell-pull-")
    GGUF = fr.make_gguf(os.path.join(tmp, "a.gguf"), seed=1)
    GGUF2 = fr.make_gguf(os.path.join(tmp, "b.gguf"), seed=2)
    GGUF3 = fr.make_gguf(os.path.join(tmp, "c.gguf"), seed=3)
    GGUF4 = fr.make_gguf(os.path.join(tmp, "d.gguf"), seed=4)
    S = ds.Server(env={"NO_PROXY": "*"})


def pull(reg, ref, stream=True, server=None, **extra):
    body = {"model": reg.name(ref), "insecure": True, "stream": stream}
    body.update(extra)
    return (server or S).post("/api/pull", body, timeout=120)


def blobs_dir(server=None):
    return os.path.join((server or S).models_dir, "blobs")


def blob_files(server=None):
    d = blobs_dir(server)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def partials(server=None):
    return [f for f in blob_files(server) if not (f.startswith("sha256-") and len(f) == 71)]


def has_blob(digest, server=None):
    return os.path.exists(os.path.join(blobs_dir(server), digest.replace(":", "-")))


def manifest_path(reg, model, tag="latest", server=None):
    return os.path.join((server or S).models_dir, "manifests", reg.host, "library", model, tag)


def tag_names():
    return [m["name"] for m in S.get("/api/tags").json()["models"]]


# ---- success ----

def test_streamed_pull_reports_ollamas_progress_and_stores_the_model():
    with fr.Registry() as reg:
        m = fr.Model(GGUF, params={"temperature": 0, "num_predict": 4}, system="Be brief.")
        reg.add("library/tiny:latest", m)
        r = pull(reg, "library/tiny:latest")
        assert r.status == 200 and r.headers["content-type"] == "application/x-ndjson", r
        lines = r.lines()
        statuses = [l["status"] for l in lines]
        assert statuses[0] == "pulling manifest", statuses
        assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"], statuses
        for d in m.all_digests():
            mine = [l for l in lines if l.get("digest") == d]
            assert mine, (d, lines)
            assert all(l["status"] == "pulling " + d[7:19] for l in mine), mine
            assert all(l["total"] == len(m.blobs[d]) for l in mine), mine
            assert mine[-1]["completed"] == len(m.blobs[d]), mine
            assert has_blob(d), d
        # Ollama's layout: manifests/<host>/<namespace>/<model>/<tag>, the manifest as
        # Go's json.Marshal writes it (no newline at the end), digest = sha256 of it
        path = manifest_path(reg, "tiny")
        raw = open(path, "rb").read()
        assert not raw.endswith(b"\n") and json.loads(raw) == json.loads(m.manifest), raw
        tags = {t["name"]: t for t in S.get("/api/tags").json()["models"]}
        t = tags[reg.host + "/library/tiny:latest"]
        assert t["digest"] == hashlib.sha256(raw).hexdigest(), t
        assert t["size"] == sum(len(b) for b in m.blobs.values()), t
        assert partials() == [], blob_files()


def test_not_streamed_pull_and_legacy_name_field():
    with fr.Registry() as reg:
        reg.add("library/quiet:v1", fr.Model(GGUF))
        r = S.post("/api/pull", {"name": reg.name("library/quiet:v1"), "insecure": True,
                                 "stream": False})
        assert r.status == 200 and r.json() == {"status": "success"}, r
        assert reg.host + "/library/quiet:v1" in tag_names()


def test_pulled_model_shows_and_generates():
    with fr.Registry() as reg:
        reg.add("library/runner:latest", fr.Model(GGUF, params={"temperature": 0}))
        assert pull(reg, "library/runner", stream=False).status == 200
        name = reg.name("library/runner")
        r = S.post("/api/show", {"model": name})
        assert r.status == 200 and r.json()["details"]["family"] == "llama", r
        r = S.generate(name, "hello", options={"num_predict": 4})
        assert r.status == 200 and r.json()["done"] is True, r
        assert r.json()["eval_count"] > 0, r


def test_layers_already_present_are_not_downloaded_again():
    with fr.Registry() as reg:
        m = fr.Model(GGUF, system="again and again")
        reg.add("library/again:latest", m)
        assert pull(reg, "library/again").status == 200
        assert reg.count(r"/blobs/" + m.layer_digests[1]) == 1, reg.requests
        fetched = reg.count(r"/blobs/")
        r = pull(reg, "library/again")
        assert r.status == 200 and r.lines()[-1] == {"status": "success"}, r
        assert reg.count(r"/blobs/") == fetched, reg.requests
        assert reg.count(r"/manifests/") == 2
        # each blob is still reported, complete
        for d in m.all_digests():
            mine = [l for l in r.lines() if l.get("digest") == d]
            assert mine and mine[-1]["completed"] == len(m.blobs[d]), mine
        # a second name sharing the weights and the config fetches only its system layer
        sib = fr.Model(GGUF, system="other")
        reg.add("library/sibling:latest", sib)
        before = reg.count(r"/blobs/")
        assert pull(reg, "library/sibling").status == 200
        assert reg.count(r"/blobs/") - before == 1, reg.requests
        assert reg.count(r"/blobs/" + sib.layer_digests[1]) == 1, reg.requests


def test_blob_redirect_is_followed():
    with fr.Registry() as reg:
        reg.redirect = True
        m = fr.Model(GGUF2, system="behind a redirect")
        reg.add("library/cdn:latest", m)
        r = pull(reg, "library/cdn")
        assert r.status == 200 and r.lines()[-1] == {"status": "success"}, r
        for d in m.layer_digests:  # (the config is the one earlier tests stored)
            assert reg.count(r"^/cdn/" + d[7:]) == 1, reg.requests
        for d in m.all_digests():
            assert ds.sha256_file(os.path.join(blobs_dir(), d.replace(":", "-"))) == d[7:]


def test_repull_removes_layers_nothing_uses_unless_noprune():
    with fr.Registry() as reg:
        old = fr.Model(GGUF, system="first")
        reg.add("library/moving:latest", old)
        assert pull(reg, "library/moving").status == 200
        old_system = old.layer_digests[1]
        new = fr.Model(GGUF, system="second")
        reg.add("library/moving:latest", new)
        r = pull(reg, "library/moving")
        statuses = [l["status"] for l in r.lines()]
        assert "removing unused layers" in statuses, statuses
        assert statuses.index("removing unused layers") > statuses.index("writing manifest")
        assert not has_blob(old_system) and has_blob(new.layer_digests[1])
        assert has_blob(new.layer_digests[0])  # the shared weights stay
    with ds.Server(env={"OLLAMA_NOPRUNE": "1", "NO_PROXY": "*"}) as s2, fr.Registry() as reg:
        old = fr.Model(GGUF, system="first")
        reg.add("library/moving:latest", old)
        assert pull(reg, "library/moving", server=s2).status == 200
        reg.add("library/moving:latest", fr.Model(GGUF, system="second"))
        r = pull(reg, "library/moving", server=s2)
        assert "removing unused layers" not in [l["status"] for l in r.lines()], r
        assert has_blob(old.layer_digests[1], server=s2)


# ---- failures ----

def test_digest_mismatch_stores_nothing_and_leaves_no_partial():
    with fr.Registry() as reg:
        m = fr.Model(GGUF2, system="a system prompt no other test uses")
        reg.add("library/bad:latest", m)
        weights = m.layer_digests[1]  # the system layer: nobody stored it before
        wrong = bytearray(m.blobs[weights])
        wrong[len(wrong) // 2] ^= 0xFF
        reg.bad_blobs[weights] = bytes(wrong)
        r = pull(reg, "library/bad")
        assert r.status == 200, r
        last = r.lines()[-1]
        assert last["error"].startswith("digest mismatch, file must be downloaded again: want %s, got sha256:" % weights), last
        assert not has_blob(weights) and partials() == [], blob_files()
        assert not os.path.exists(manifest_path(reg, "bad"))
        r = pull(reg, "library/bad", stream=False)
        assert r.status == 502 and "digest mismatch" in r.json()["error"], r
        # more bytes than the manifest says: refused as they arrive
        reg.bad_blobs[weights] = m.blobs[weights] + b"extra"
        r = pull(reg, "library/bad", stream=False)
        assert r.status == 502 and "more than the" in r.json()["error"], r
        assert not has_blob(weights) and partials() == [], blob_files()
        assert reg.host + "/library/bad:latest" not in tag_names()
        assert S.get("/").status == 200


def test_missing_manifest_is_404_as_ollama_words_it():
    with fr.Registry() as reg:
        for stream in (True, False):
            r = pull(reg, "library/nothing:here", stream=stream)
            assert r.status == 404, r
            assert r.json() == {"error": "pull model manifest: file does not exist"}, r
        # a missing blob, after the manifest was fine
        m = fr.Model(GGUF, system="a layer the registry lost")
        reg.add("library/holey:latest", m)
        del m.blobs[m.layer_digests[1]]
        r = pull(reg, "library/holey")
        assert r.status == 200 and "file does not exist" in r.lines()[-1]["error"], r
        assert not os.path.exists(manifest_path(reg, "holey")) and partials() == []


def test_a_registry_error_that_is_not_utf8_still_reaches_the_client():
    # The start of the registry's answer goes into the message; bytes that are not UTF-8
    # (or a character cut at the end) must not cost the client the message.
    with fr.Registry() as reg:
        reg.fail["library/latin1:latest"] = (500, b"caf\xe9 \xff\xfe ferm\xe9")
        for stream in (False, True):
            r = pull(reg, "library/latin1", stream=stream)
            assert r.status == 502, r
            msg = r.json()["error"]
            assert msg.startswith("pull model manifest: 500: caf? ?? ferm?"), msg
        m = fr.Model(GGUF, system="an error from far away")
        reg.add("library/farblob:latest", m)
        reg.fail[m.layer_digests[1]] = (503, "\u20ac".encode() * 100)  # cut inside a character
        r = pull(reg, "library/farblob")
        assert r.status == 200, r
        last = r.lines()[-1]
        want = "pull blob %s: 503: \u20ac\u20ac" % m.layer_digests[1]
        assert last["error"].startswith(want) and last["error"].endswith("\u20ac??"), last
        r = pull(reg, "library/farblob", stream=False)
        assert r.status == 502 and r.json()["error"].startswith("pull blob "), r


def test_unreachable_registry_is_a_clear_502_and_the_server_stays_up():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    for stream in (True, False):
        r = S.post("/api/pull", {"model": "127.0.0.1:%d/library/x" % port, "insecure": True,
                                 "stream": stream})
        assert r.status == 502, r
        msg = r.json()["error"]
        assert msg.startswith('pull model manifest: Get "http://127.0.0.1:%d/v2/library/x/manifests/latest": ' % port), msg
    # without insecure the scheme is https: the plain-http registry cannot answer it
    with fr.Registry() as reg:
        reg.add("library/tls:latest", fr.Model(GGUF))
        r = S.post("/api/pull", {"model": reg.name("library/tls")})
        assert r.status == 502 and '"https://%s/v2/library/tls/manifests/latest"' % reg.host in r.json()["error"], r
    assert S.get("/").status == 200


def test_garbage_too_large_and_hostile_manifests_are_refused():
    with fr.Registry() as reg:
        m = fr.Model(GGUF)
        good = json.loads(m.manifest)
        cases = {
            "garbage": b"this is not json",
            "huge": b" " * (2 << 20) + m.manifest,
            "array": b"[1,2,3]",
            "schema1": json.dumps(dict(good, schemaVersion=1)).encode(),
            "mediatype": json.dumps(dict(good, mediaType="text/plain")).encode(),
            "pathdigest": json.dumps(dict(good, layers=[dict(good["layers"][0], digest="sha256:../../../etc/passwd")])).encode(),
            "upperhex": json.dumps(dict(good, layers=[dict(good["layers"][0], digest=good["layers"][0]["digest"].upper().replace("SHA256", "sha256"))])).encode(),
            "negsize": json.dumps(dict(good, layers=[dict(good["layers"][0], size=-1)])).encode(),
            "layertype": json.dumps(dict(good, layers=[dict(good["layers"][0], mediaType="application/x-evil")])).encode(),
            "noconfig": json.dumps({k: v for k, v in good.items() if k != "config"}).encode(),
        }
        for name, body in cases.items():
            reg.raw_manifests["library/%s:latest" % name] = body
            r = pull(reg, "library/" + name)
            assert r.status == 502, (name, r)
            msg = r.json()["error"]
            assert msg.startswith("pull model manifest: "), (name, msg)
            if name == "huge":
                assert "larger than 1048576 bytes" in msg, msg
            else:
                assert "invalid manifest" in msg, (name, msg)
        assert reg.count(r"/blobs/") == 0 and partials() == []
        assert not os.path.exists(os.path.join(S.models_dir, "manifests", reg.host))
        assert S.get("/").status == 200


def test_bad_requests_are_400():
    for body in ({}, {"model": ""}, {"model": "../../etc/passwd"}, {"model": "a b"},
                 {"model": "x/../y"}, {"model": 5}, {"model": "ok", "insecure": "yes"},
                 {"model": "ok", "stream": 1}):
        r = S.post("/api/pull", body)
        assert r.status == 400 and "error" in r.json(), (body, r)
    assert S.post("/api/pull", {}).json()["error"] == "model is required"
    r = S.post("/api/pull", b"")
    assert r.status == 400 and r.json()["error"] == "missing request body", r
    assert S.get("/api/pull").status == 405


# ---- disconnects, resume, concurrency ----

def open_stream(reg, ref, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", S.port, timeout=timeout)
    body = json.dumps({"model": reg.name(ref), "insecure": True})
    c.request("POST", "/api/pull", body=body, headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    assert resp.status == 200, resp.status
    return c, resp


def test_client_gone_mid_pull_stops_it_and_the_next_pull_resumes():
    with fr.Registry() as reg:
        m = fr.Model(GGUF3, system="resume me")
        reg.add("library/slow:latest", m)
        weights = m.layer_digests[0]
        size = len(m.blobs[weights])
        reg.slow[weights] = 0.4  # 16 KiB every 0.4 s
        c, resp = open_stream(reg, "library/slow")
        deadline = time.time() + 30
        while time.time() < deadline:
            obj = json.loads(resp.readline())
            if obj.get("digest") == weights and obj.get("completed", 0) > 0:
                break
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        S.wait_for(lambda: "pull %s: cancelled" % reg.name("library/slow") in S.log(),
                   timeout=20, what="the pull to stop")
        # nothing half-written under a real name, no manifest; the partial stays for later
        assert not has_blob(weights) and not os.path.exists(manifest_path(reg, "slow"))
        part = [f for f in partials() if f.startswith("sha256-" + weights[7:])]
        assert part == ["sha256-%s-dwell-partial" % weights[7:]], blob_files()
        have = os.path.getsize(os.path.join(blobs_dir(), part[0]))
        assert 0 < have < size, have
        assert S.get("/").status == 200
        # the next pull asks only for the rest
        reg.slow = {}
        r = pull(reg, "library/slow")
        assert r.status == 200 and r.lines()[-1] == {"status": "success"}, r
        assert any(rg.startswith("bytes=") and int(rg[6:-1]) > 0 for rg in reg.ranges()), reg.requests
        assert ds.sha256_file(os.path.join(blobs_dir(), weights.replace(":", "-"))) == weights[7:]
        assert partials() == []


def assert_stored_whole(digest):
    assert ds.sha256_file(os.path.join(blobs_dir(), digest.replace(":", "-"))) == digest[7:]
    assert partials() == [], blob_files()


def leave_partial(digest, data):
    """A partial download as an interrupted pull leaves it."""
    os.makedirs(blobs_dir(), exist_ok=True)
    with open(os.path.join(blobs_dir(), "sha256-%s-dwell-partial" % digest[7:]), "wb") as f:
        f.write(data)


def test_a_registry_that_ignores_range_sends_the_whole_blob_again():
    with fr.Registry() as reg:
        m = fr.Model(GGUF, system="no ranges here " * 4000)
        reg.add("library/norange:latest", m)
        sysd = m.layer_digests[1]
        leave_partial(sysd, m.blobs[sysd][:20000])
        reg.ignore_range = True  # 200 and every byte from the start
        r = pull(reg, "library/norange", stream=False)
        assert r.status == 200 and r.json() == {"status": "success"}, r
        assert reg.ranges() == ["bytes=20000-"], reg.requests
        assert_stored_whole(sysd)


def test_a_206_from_the_wrong_offset_starts_the_blob_over():
    # A registry (or a proxy) that answers a resume with bytes from elsewhere: the partial
    # cannot be continued, so it is dropped and the blob fetched whole, in the same pull.
    with fr.Registry() as reg:
        m = fr.Model(GGUF, system="a range from elsewhere " * 3000)
        reg.add("library/badrange:latest", m)
        sysd = m.layer_digests[1]
        leave_partial(sysd, m.blobs[sysd][:20000])
        reg.range_lie[sysd] = 0  # "Content-Range: bytes 0-…" for the bytes from 20000
        r = pull(reg, "library/badrange", stream=False)
        assert r.status == 200 and r.json() == {"status": "success"}, r
        asked = [rg for (_, p, rg) in reg.requests if sysd in p]
        assert asked == ["bytes=20000-", None], reg.requests
        assert_stored_whole(sysd)


def test_a_transfer_cut_short_is_resumed_in_the_same_pull():
    with fr.Registry() as reg:
        m = fr.Model(GGUF, system="cut short " * 5000)
        reg.add("library/cut:latest", m)
        sysd = m.layer_digests[1]
        reg.cut[sysd] = 12345  # the first answer hangs up after 12345 bytes
        r = pull(reg, "library/cut", stream=False)
        assert r.status == 200 and r.json() == {"status": "success"}, r
        asked = [rg for (_, p, rg) in reg.requests if sysd in p]
        assert asked == [None, "bytes=12345-"], reg.requests
        assert_stored_whole(sysd)


def test_redirects_to_schemes_other_than_http_are_refused():
    with fr.Registry() as reg:
        for url in ("file:///etc/passwd", "gopher://127.0.0.1:%d/x" % reg.port,
                    "ftp://127.0.0.1:%d/x" % reg.port):
            m = fr.Model(GGUF, system="redirected to " + url)
            reg.add("library/elsewhere:latest", m)
            sysd = m.layer_digests[1]
            reg.redirect_to = {sysd: url}
            r = pull(reg, "library/elsewhere", stream=False)
            assert r.status == 502, (url, r)
            assert 'Protocol "%s" not supported' % url.split(":")[0] in r.json()["error"], r
            assert not has_blob(sysd) and partials() == [], blob_files()
        assert not os.path.exists(manifest_path(reg, "elsewhere"))


def test_a_pull_stopped_before_it_rereads_a_partial_keeps_it():
    # The partial's bytes are good whether or not this pull got to hash them. (Here the
    # client goes as the first, tiny, layer starts; the pull usually stops right after
    # storing it, as it opens the next layer's partial.)
    with fr.Registry() as reg:
        tiny = fr.Model(GGUF, params={"stop": ["tiny"]})
        big = fr.Model(GGUF, system="a partial worth keeping " * 8000)
        reg.add("library/tiny-first:latest", tiny)
        reg.add("library/big-second:latest", big)
        good = json.loads(big.manifest)
        layers = [json.loads(tiny.manifest)["layers"][1], good["layers"][1]]
        reg.raw_manifests["library/keep:latest"] = json.dumps(dict(good, layers=layers)).encode()
        sysd = big.layer_digests[1]
        leave_partial(sysd, big.blobs[sysd][:100000])
        c, resp = open_stream(reg, "library/keep")
        assert json.loads(resp.readline()) == {"status": "pulling manifest"}
        assert json.loads(resp.readline())["digest"] == layers[0]["digest"]
        hang_up(c, reg, "library/keep")
        part = os.path.join(blobs_dir(), "sha256-%s-dwell-partial" % sysd[7:])
        assert os.path.exists(part) and os.path.getsize(part) >= 100000, blob_files()
        r = pull(reg, "library/keep", stream=False)
        assert r.status == 200 and r.json() == {"status": "success"}, r
        asked = [rg for (_, p, rg) in reg.requests if sysd in p]
        assert asked and asked[-1] and int(asked[-1][6:-1]) >= 100000, reg.requests
        assert partials() == [], blob_files()


def sparse_partial_model(reg, ref, size, seed, first=None):
    """A manifest for ref whose last layer is a blob of `size` bytes, with a partial that
    lacks 1 MiB of it (sparse: it takes no room), after the layer `first` if given. Returns
    the blob's digest and the partial's path."""
    config = fr.Model(GGUF)
    reg.add("library/config-of-%s" % ref, config)
    digest = "sha256:" + hashlib.sha256(seed).hexdigest()
    layers = ([first] if first else []) + [{"mediaType": "application/vnd.ollama.image.model",
                                            "digest": digest, "size": size}]
    manifest = dict(json.loads(config.manifest), layers=layers)
    reg.raw_manifests["library/%s:latest" % ref] = json.dumps(manifest).encode()
    part = os.path.join(blobs_dir(), "sha256-%s-dwell-partial" % digest[7:])
    with open(part, "wb") as f:
        f.truncate(size - (1 << 20))
    return digest, part


def hang_up(c, reg, ref):
    """Closes a pull's connection and waits for the server to stop that pull."""
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    S.wait_for(lambda: "pull %s: cancelled" % reg.name(ref) in S.log(), timeout=20,
               what="the pull to stop")


def test_the_disk_space_check_counts_the_bytes_a_partial_holds():
    # A pull stopped by a full disk leaves a partial holding most of the blob; once a little
    # room is made, the resume needs only the rest. The blob here is larger than the free
    # space and its partial lacks just 1 MiB.
    st = os.statvfs(blobs_dir())
    size = st.f_bavail * st.f_frsize + (64 << 30)
    assert size < (1 << 44), "the test needs a disk with less than 16 TiB free"
    with fr.Registry() as reg:
        small = fr.Model(GGUF, system="a small layer before the large one")
        reg.add("library/small:latest", small)
        first = json.loads(small.manifest)["layers"][1]
        _, part = sparse_partial_model(reg, "huge", size, b"more than the disk holds", first)
        try:
            c, resp = open_stream(reg, "library/huge")  # 200: no 507 before the download
            assert json.loads(resp.readline()) == {"status": "pulling manifest"}
            line = json.loads(resp.readline())
            assert line.get("digest") == first["digest"], line
            hang_up(c, reg, "library/huge")  # no need to hash the partial's 64 GiB and more
        finally:
            os.unlink(part)


def test_rereading_a_large_partial_reports_progress_at_once():
    # Resuming a big download first hashes what the partial holds (a minute for tens of GB);
    # the pull shows that as the blob's progress instead of keeping the client waiting for
    # its response.
    with fr.Registry() as reg:
        size = 64 << 30
        large, part = sparse_partial_model(reg, "large", size, b"a large partial download")
        try:
            c, resp = open_stream(reg, "library/large", timeout=10)  # not after 64 GiB were read
            assert json.loads(resp.readline()) == {"status": "pulling manifest"}
            line = json.loads(resp.readline())
            assert line["digest"] == large and line["total"] == size, line
            assert 0 < line["completed"] < size - (1 << 20), line
            hang_up(c, reg, "library/large")
            assert os.path.getsize(part) == size - (1 << 20)
            assert reg.count(r"/blobs/" + large) == 0, reg.requests
        finally:
            os.unlink(part)


def test_two_concurrent_pulls_of_one_model_download_once():
    with fr.Registry() as reg:
        m = fr.Model(GGUF4, system="twice")
        reg.add("library/twin:latest", m)
        weights = m.layer_digests[0]
        reg.slow[weights] = 0.1
        results = []

        def one():
            results.append(pull(reg, "library/twin"))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(results) == 2
        for r in results:
            assert r.status == 200 and r.lines()[-1] == {"status": "success"}, r
        assert reg.count(r"/blobs/" + weights) == 1, reg.requests
        assert ds.sha256_file(os.path.join(blobs_dir(), weights.replace(":", "-"))) == weights[7:]
        assert partials() == []
        assert tag_names().count(reg.host + "/library/twin:latest") == 1


def sanitizer_reports(log):
    return [l for l in log.splitlines() if "Sanitizer" in l or "runtime error:" in l]


def test_shutdown_during_a_pull_cancels_it_and_exits_cleanly():
    with ds.Server(env={"NO_PROXY": "*"}) as s2, fr.Registry() as reg:
        m = fr.Model(GGUF3, system="interrupted by a shutdown")
        reg.add("library/late:latest", m)
        reg.slow[m.layer_digests[0]] = 3.0  # far longer than the 10 s drain
        c = http.client.HTTPConnection("127.0.0.1", s2.port, timeout=60)
        c.request("POST", "/api/pull", body=json.dumps({"model": reg.name("library/late"),
                                                        "insecure": True}),
                  headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        assert resp.status == 200
        json.loads(resp.readline())
        t0 = time.time()
        rc = s2.stop(timeout=30)
        assert rc == 0, (rc, s2.log()[-3000:])
        assert time.time() - t0 < 25
        assert "pull %s: cancelled" % reg.name("library/late") in s2.log(), s2.log()[-2000:]
        assert sanitizer_reports(s2.log()) == [], s2.log()[-3000:]
        c.close()


def test_server_exits_cleanly_after_all_of_it():
    rc = S.stop()
    assert rc == 0 and sanitizer_reports(S.log()) == [], (rc, S.log()[-3000:])


if __name__ == "__main__":
    ds.need_env()
    setup()
    try:
        ds.main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
    finally:
        S.close()
