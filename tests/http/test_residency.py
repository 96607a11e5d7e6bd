"""Residency through the HTTP API (DESIGN §2, spec A/B/D/E/F): keep_alive expiry and
expires_at, keep_alive 0, pinning and its stickiness, the server's OLLAMA_KEEP_ALIVE,
OLLAMA_MAX_LOADED_MODELS, the memory budget, parallel slots and the queue limit."""
import datetime
import os
import re
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
SLOW = None  # path of a model slow enough to overlap requests (made with mkmodel)


def parse_time(s):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    assert m, s
    frac = (m.group(2) or ".0")[:7]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.datetime.fromisoformat(m.group(1) + frac + tz).timestamp()


def entry(s, name):
    for m in s.ps():
        if m["name"] == name:
            return m
    return None


def make_slow_model(tmp):
    path = os.path.join(tmp, "slow.gguf")
    subprocess.run([ds.BIN, "debug", "mkmodel", path, "--dim", "512", "--layers", "8",
                    "--ffn", "1536", "--heads", "8", "--type", "Q8_0", "--ctx", "4096"],
                   check=True, timeout=300, stdout=subprocess.DEVNULL)
    return path


def test_keep_alive_2s_then_gone():
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        t0 = time.time()
        r = s.generate("m", keep_alive="2s", options=GREEDY)
        assert r.status == 200, r
        e = entry(s, "m:latest")
        assert e is not None, s.ps()
        exp = parse_time(e["expires_at"])
        assert t0 + 0.5 < exp < time.time() + 2.5, (e["expires_at"], time.time())
        assert e["keep_alive_source"] == "request", e
        s.wait_for(lambda: entry(s, "m:latest") is None, timeout=10, what="expiry")
        assert time.time() - t0 >= 1.5, "expired too early"


def test_keep_alive_0_unloads_after_answer():
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        r = s.generate("m", keep_alive=0, options=GREEDY)
        assert r.status == 200 and len(r.json()["response"]) > 0, r
        s.wait_for(lambda: entry(s, "m:latest") is None, timeout=5, what="unload")


def test_pin_sticks():
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        s.generate("m", keep_alive=-1, options=GREEDY)
        e = entry(s, "m:latest")
        assert e["pinned"] is True, e
        assert parse_time(e["expires_at"]) > time.time() + 100 * 365 * 86400, e
        s.generate("m", options=GREEDY)
        s.post("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                                        "max_tokens": 2})
        e = entry(s, "m:latest")
        assert e["pinned"] is True and e["keep_alive_source"] == "request", e
        assert parse_time(e["expires_at"]) > time.time() + 100 * 365 * 86400, e


def test_server_keep_alive_bare_number_is_minutes():
    with ds.Server(env={"OLLAMA_KEEP_ALIVE": "1"}) as s:
        assert "1m0s" in s.log() or "1m" in s.log(), s.log()
        s.create("m", ds.STORIES)
        s.generate("m", options=GREEDY)
        e = entry(s, "m:latest")
        left = parse_time(e["expires_at"]) - time.time()
        assert 50 < left < 61, (left, e)
        assert e["keep_alive_source"] == "server", e


def test_invalid_env_refuses_to_start():
    for k, v in [("OLLAMA_KEEP_ALIVE", "forever-ish"), ("OLLAMA_NUM_PARALLEL", "-2"),
                 ("DWELL_MEMORY_BUDGET", "lots"), ("OLLAMA_HOST", "127.0.0.1:99999")]:
        env = dict(os.environ, OLLAMA_HOST="127.0.0.1:0", OLLAMA_MODELS="/tmp/dwell-none")
        env[k] = v
        p = subprocess.run([ds.BIN, "serve"], env=env, capture_output=True, timeout=30)
        assert p.returncode == 1 and k.encode() in p.stderr, (k, p.returncode, p.stderr)


def test_max_loaded_models_evicts():
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as s:
        s.create("a", ds.STORIES)
        s.create("b", ds.TINY)
        s.generate("a", options=GREEDY)
        assert s.ps_names() == ["a:latest"], s.ps()
        s.generate("b", options=GREEDY)
        assert s.ps_names() == ["b:latest"], s.ps()
        s.generate("a", options=GREEDY)
        assert s.ps_names() == ["a:latest"], s.ps()
        st = s.get("/api/stats").json()
        assert st["server"]["evictions"] >= 2, st["server"]


def test_budget_makes_models_evict_each_other():
    with ds.Server() as probe:
        probe.create("a", ds.STORIES)
        probe.create("b", ds.TINY)
        probe.generate("a", options=GREEDY)
        probe.generate("b", options=GREEDY)
        sizes = {m["name"]: m["size"] for m in probe.ps()}
        assert len(sizes) == 2, probe.ps()
        models_dir = probe.models_dir
        budget = max(sizes.values()) + min(sizes.values()) // 2
        probe.kill()
        with ds.Server(env={"DWELL_MEMORY_BUDGET": str(budget)}, models_dir=models_dir) as s:
            st = s.get("/api/stats").json()["server"]
            assert st["budget_bytes"] == budget and st["budget_source"] == "DWELL_MEMORY_BUDGET", st
            s.generate("a", options=GREEDY)
            s.generate("b", options=GREEDY)
            assert s.ps_names() == ["b:latest"], s.ps()
            s.generate("a", options=GREEDY)
            assert s.ps_names() == ["a:latest"], s.ps()


def stream_times(s, model, n, out, key):
    body = {"model": model, "prompt": "Once upon a time", "options": {"temperature": 0,
                                                                       "num_predict": n}}
    c = s.conn(120)
    import json as _j
    c.request("POST", "/api/generate", body=_j.dumps(body))
    r = c.getresponse()
    times = []
    buf = b""
    while True:
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                times.append(time.time())
    c.close()
    out[key] = (r.status, times)


def test_num_parallel_two_streams_progress_together():
    with ds.Server(env={"OLLAMA_NUM_PARALLEL": "2"}) as s:
        s.create("slow", SLOW)
        s.generate("slow", options={"num_predict": 1})
        out = {}
        ts = [threading.Thread(target=stream_times, args=(s, "slow", 40, out, k)) for k in "ab"]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        (sa, ta), (sb, tb) = out["a"], out["b"]
        assert sa == 200 and sb == 200 and len(ta) > 10 and len(tb) > 10, out
        # Both progressed together: each got tokens before the other one finished.
        assert ta[0] < tb[-1] and tb[0] < ta[-1], (ta[0], ta[-1], tb[0], tb[-1])
        overlap = min(ta[-1], tb[-1]) - max(ta[0], tb[0])
        span = max(ta[-1], tb[-1]) - min(ta[0], tb[0])
        assert overlap > 0.5 * span, (overlap, span)


def test_max_queue_exceeded_503_at_once():
    import confutil as cu
    with ds.Server(env={"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_MAX_QUEUE": "1"}) as s:
        s.create("slow", SLOW)
        s.generate("slow", options={"num_predict": 1})
        # a holds the only slot (its first token is out: it left the queue) ...
        a = cu.Stream(s, "slow", n=150).wait_first()
        # ... b takes the only queue place ...
        b = cu.Stream(s, "slow", n=2)
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] >= 1, what="b waiting")
        # ... so c is refused at once
        t0 = time.time()
        r = s.generate("slow", options={"num_predict": 2})
        assert r.status == 503 and "maximum pending requests exceeded" in r.json()["error"], r
        assert time.time() - t0 < 1.0, time.time() - t0
        a.join()
        b.join()
        assert a.status == 200 and a.done() and b.status == 200 and b.done(), (a.lines[-1:],
                                                                               b.lines[-1:])


def main():
    global SLOW
    ds.need_env()
    import tempfile
    tmp = tempfile.mkdtemp(prefix="dwell-slow-")
    try:
        SLOW = make_slow_model(tmp)
        ds.main([test_keep_alive_2s_then_gone, test_keep_alive_0_unloads_after_answer,
                 test_pin_sticks, test_server_keep_alive_bare_number_is_minutes,
                 test_invalid_env_refuses_to_start, test_max_loaded_models_evicts,
                 test_budget_makes_models_evict_each_other,
                 test_num_parallel_two_streams_progress_together,
                 test_max_queue_exceeded_503_at_once])
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
