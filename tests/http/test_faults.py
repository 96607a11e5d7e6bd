"""Faults: a client that leaves mid-stream (the server stays up and the slot is freed), a
model whose blob was deleted or truncated after creation (a clear error), a failed digest
(nothing stored), SIGKILL during a create (the store is consistent after a restart), and a
clean SIGTERM shutdown while a request runs."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402

# a floor under every decode step, so that long generations overlap the requests that
# follow them whatever the machine's speed (DWELL_DEBUG_STEP_DELAY)
ds.DEFAULT_ENV["DWELL_DEBUG_STEP_DELAY"] = "3ms"

GREEDY = {"temperature": 0, "num_predict": 4}


def blob_path(s, digest):
    return os.path.join(s.models_dir, "blobs", digest.replace(":", "-"))


def make_model(tmp, name="big.gguf", dim="512", layers="8"):
    path = os.path.join(tmp, name)
    subprocess.run([ds.BIN, "debug", "mkmodel", path, "--dim", dim, "--layers", layers,
                    "--ffn", "1536", "--heads", "8", "--type", "Q8_0", "--ctx", "4096"],
                   check=True, timeout=300, stdout=subprocess.DEVNULL)
    return path


def test_client_gone_mid_stream():
    with ds.Server(env={"OLLAMA_NUM_PARALLEL": "1"}) as s:
        s.create("slow", SLOW)
        s.generate("slow", options={"num_predict": 1})
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        body = json.dumps({"model": "slow", "prompt": "Once upon a time",
                           "options": {"num_predict": 2000}}).encode()
        sock.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        deadline = time.time() + 30
        while got.count(b"\n") < 12:
            assert time.time() < deadline, got
            chunk = sock.recv(4096)
            assert chunk, "the server closed the stream early: %r" % got
            got += chunk
        sock.close()
        t0 = time.time()

        def idle():
            m = [x for x in s.ps() if x["name"] == "slow:latest"]
            return m and m[0]["in_flight"] == 0 and m[0]["slots_busy"] == 0
        s.wait_for(idle, timeout=10, what="the slot to be freed")
        assert time.time() - t0 < 5, time.time() - t0
        r = s.generate("slow", options={"num_predict": 2})
        assert r.status == 200, r
        st = s.get("/api/stats").json()
        tokens = [m for m in st["models"] if m["name"] == "slow:latest"][0]["tokens_generated"]
        assert tokens < 1000, tokens  # the 2000-token request stopped early


def test_deleted_blob_clear_error():
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        digest = s.upload(ds.STORIES)
        os.unlink(blob_path(s, digest))
        r = s.generate("m", options=GREEDY)
        assert r.status >= 400 and r.status != 404 or "blob" in r.json()["error"], r
        err = r.json()["error"]
        assert "sha256" in err or "blob" in err, err
        assert s.get("/").status == 200
        r = s.request("DELETE", "/api/delete", {"model": "m"})
        assert r.status == 200, r


def test_truncated_blob_clear_error():
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        digest = s.upload(ds.STORIES)
        p = blob_path(s, digest)
        size = os.path.getsize(p)
        os.truncate(p, size // 2)
        r = s.generate("m", options=GREEDY)
        assert r.status >= 400, r
        err = r.json()["error"]
        assert "sha256" in err or "size" in err or "truncated" in err, err
        assert s.get("/").status == 200
        assert s.post("/api/show", {"model": "m"}).status >= 400


def test_failed_digest_stores_nothing():
    with ds.Server() as s:
        data = open(ds.STORIES, "rb").read()
        bad = "sha256:" + "ab" * 32
        r = s.post("/api/blobs/" + bad, data)
        assert r.status == 400 and "digest mismatch" in r.json()["error"], r
        assert os.listdir(os.path.join(s.models_dir, "blobs")) == [], os.listdir(
            os.path.join(s.models_dir, "blobs"))


def test_sigkill_during_create_store_consistent():
    with ds.Server() as s:
        s.create("keep", ds.STORIES)
        digest = s.upload(BIG)
        done = {}

        def create():
            try:
                done["r"] = s.post("/api/create", {"model": "victim", "files": {"b.gguf": digest},
                                                   "stream": False}, timeout=60)
            except Exception as e:  # noqa: BLE001 - the server dies under it
                done["e"] = e
        t = threading.Thread(target=create)
        t.start()
        time.sleep(0.05)
        s.proc.kill()
        s.proc.wait(10)
        t.join(30)
        s.start()
        tags = s.get("/api/tags").json()["models"]
        names = [m["name"] for m in tags]
        assert "keep:latest" in names, names
        for m in tags:  # every listed model resolves (all its blobs are whole)
            r = s.post("/api/show", {"model": m["name"]})
            assert r.status == 200, (m["name"], r)
        r = s.generate("keep", options=GREEDY)
        assert r.status == 200, r
        s.create("victim2", BIG)


def test_sigterm_lets_running_request_finish():
    # Streamed, so that SIGTERM goes out only once the request is known to be generating (a
    # polled /api/ps can miss a short generation altogether on a fast machine); 20 tokens, so
    # that even the sanitizer build finishes well within the server's 10 s shutdown grace.
    with ds.Server() as s:
        s.create("slow", SLOW)
        s.generate("slow", options={"num_predict": 1})
        c = s.conn(60)
        c.request("POST", "/api/generate", body=json.dumps(
            {"model": "slow", "prompt": "Once upon a time", "stream": True,
             "options": {"temperature": 0, "num_predict": 20}}),
            headers={"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 200, r.status
        first = json.loads(r.readline())
        assert not first["done"], first
        rc_box = {}
        t = threading.Thread(target=lambda: rc_box.update(rc=s.stop(signal.SIGTERM, timeout=60)))
        t.start()
        lines = [first]
        for _ in range(1000):
            line = r.readline()
            if not line:
                break
            lines.append(json.loads(line))
        c.close()
        t.join(70)
        assert rc_box.get("rc") == 0, (rc_box, s.log()[-2000:])
        last = lines[-1]
        assert last["done"], lines[-3:]
        # the generation went on after the signal: more than the one chunk seen before it
        assert len(lines) > 2 and last["eval_count"] >= len(lines) - 1, (len(lines), last)
        assert "unloaded" in s.log(), s.log()[-1000:]


SLOW = BIG = None


def main():
    global SLOW, BIG
    ds.need_env()
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp(prefix="dwell-faults-")
    try:
        SLOW = make_model(tmp)
        BIG = make_model(tmp, "bigger.gguf", "1024", "12")
        ds.main([test_client_gone_mid_stream, test_deleted_blob_clear_error,
                 test_truncated_blob_clear_error, test_failed_digest_stores_nothing,
                 test_sigkill_during_create_store_consistent,
                 test_sigterm_lets_running_request_finish])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
