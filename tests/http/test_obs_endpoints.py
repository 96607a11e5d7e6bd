"""GET /metrics and GET /api/events against a real `dwell serve` (DESIGN §4 item 10, §6):
the Prometheus text parsed strictly, its figures against /api/stats, counters that only
grow; the residency events of a load, an expiry, a keep_alive 0 unload, an eviction by
OLLAMA_MAX_LOADED_MODELS, a failed load, rejections (too large, queue full) in order with
increasing ids; ?since= resuming; the `dropped` marker of a bounded log; a live stream that
gets an event after it connected; a client that walks away (its stream is freed); SIGTERM
with an open stream (the server still exits 0 at once)."""
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402
import confutil as cu  # noqa: E402

Q40 = os.path.join(ds.MODELS, "tiny-llama-q4_0.gguf")
L3 = os.path.join(ds.MODELS, "tiny-llama3-q8_0.gguf")  # 23 MB loaded: over a 16 MiB budget
GREEDY = {"temperature": 0, "num_predict": 4}
METRICS_CTYPE = "text/plain; version=0.0.4; charset=utf-8"


def ok(r):
    assert r.status == 200, r
    return r


# ---- a strict reader of the Prometheus text format 0.0.4 ----

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(\{.*\})? (\S+)$" % _NAME)
_LABEL = re.compile(r'(%s)="((?:[^"\\\n]|\\[\\"n])*)"(,|\})' % r"[a-zA-Z_][a-zA-Z0-9_]*")


def _labels(text):
    """{k="v",…} → tuple of (k, unescaped v); AssertionError when malformed."""
    if not text:
        return ()
    out, i = [], 1
    while i < len(text):
        m = _LABEL.match(text, i)
        assert m, "bad labels %r" % text
        v = re.sub(r"\\(.)", lambda g: "\n" if g.group(1) == "n" else g.group(1), m.group(2))
        out.append((m.group(1), v))
        i = m.end()
        if m.group(3) == "}":
            assert i == len(text), "text after labels %r" % text
    return tuple(out)


def parse_metrics(text):
    """{(name, labels): value} plus {name: type}; asserts the format's rules: every line a
    HELP, TYPE or sample; HELP then TYPE once per family before its contiguous samples;
    counters (only they) end in _total; no series twice."""
    assert text.endswith("\n"), "no final newline"
    samples, types, cur, typed = {}, {}, None, False
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert re.fullmatch(_NAME, name) and name not in types, line
            cur, typed = name, False
            types[name] = None
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name == cur and not typed and typ in ("counter", "gauge"), line
            assert (typ == "counter") == name.endswith("_total"), line
            types[name], typed = typ, True
        else:
            m = _SAMPLE.match(line)
            assert m and m.group(1) == cur and typed, "sample outside its family: %r" % line
            key = (m.group(1), _labels(m.group(2)))
            assert key not in samples, "series twice: %r" % line
            v = m.group(3)
            samples[key] = math.inf if v == "+Inf" else float(v)
    return samples, types


def metrics(s):
    r = ok(s.get("/metrics"))
    assert r.headers["content-type"] == METRICS_CTYPE, r.headers
    return parse_metrics(r.body.decode())[0]


def mval(samples, name, model=None, **labels):
    """The value of the series name{…} (model: its model label; other labels exact)."""
    for (n, ls), v in samples.items():
        d = dict(ls)
        if n != name or (model is not None and d.get("model") != model):
            continue
        if all(d.get(k) == str(x) for k, x in labels.items()):
            return v
    return None


# ---- event streams ----

class EventStream:
    """GET /api/events (query q) on a raw socket, read on a thread: lines as they come."""

    def __init__(self, s, q=""):
        self.sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
        self.sock.sendall(b"GET /api/events%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Connection: close\r\n\r\n" % q.encode())
        self.lines, self.head, self.eof, self.error = [], None, False, None
        self.cv = threading.Condition()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        buf = b""
        try:
            f = self.sock.makefile("rb")
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                c = f.read(1)
                assert c, "no headers"
                head += c
            with self.cv:
                self.head = head.decode()
                self.cv.notify_all()
            assert "Transfer-Encoding: chunked" in self.head, self.head
            while True:
                size = int(f.readline().strip(), 16)
                if size == 0:
                    break
                buf += f.read(size)
                f.read(2)
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    with self.cv:
                        self.lines.append(json.loads(line))
                        self.cv.notify_all()
        except Exception as e:  # noqa: BLE001 - reported by the waits
            self.error = e
        finally:
            with self.cv:
                self.eof = True
                self.cv.notify_all()

    def wait(self, cond, timeout=20, what="lines"):
        end = time.time() + timeout
        with self.cv:
            while not cond(self.lines):
                left = end - time.time()
                assert left > 0 and not self.eof, "timed out/eof waiting for %s: %r %r" % (
                    what, self.lines[-5:], self.error)
                self.cv.wait(left)

    def events(self):
        with self.cv:
            return [x for x in self.lines if x["type"] not in ("heartbeat", "dropped")]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def history(s, q=""):
    return ok(s.get("/api/events?stream=false" + q)).json()


def corrupt_in_place(s, gguf):
    """Overwrites a stored blob's magic, keeping its size: the store still resolves it,
    the load fails."""
    digest = s.upload(gguf)
    p = os.path.join(s.models_dir, "blobs", digest.replace(":", "-"))
    with open(p, "r+b") as f:
        f.write(b"XXXX")


# ---- /metrics ----

def test_metrics_before_and_after_a_load():
    with ds.Server() as s:
        m0 = metrics(s)
        assert mval(m0, "dwell_models_loaded") == 0
        assert not [k for k in m0 if k[0].startswith("dwell_model_")], m0
        assert mval(m0, "dwell_memory_budget_bytes") > 0
        assert mval(m0, "dwell_memory_budget_info", source="RAM") == 1, m0
        assert mval(m0, "dwell_http_requests_in_flight") >= 1  # this scrape
        s.create("m", ds.STORIES)
        ok(s.generate("m", options=GREEDY))
        m1 = metrics(s)
        assert mval(m1, "dwell_models_loaded") == 1
        assert mval(m1, "dwell_model_state", "m:latest", state="idle") == 1, m1
        assert mval(m1, "dwell_model_state", "m:latest", state="busy") == 0
        assert mval(m1, "dwell_model_requests_total", "m:latest") == 1
        assert mval(m1, "dwell_model_cold_loads_total", "m:latest") == 1
        assert mval(m1, "dwell_model_tokens_generated_total", "m:latest") == 4
        assert mval(m1, "dwell_model_prompt_tokens_total", "m:latest") > 0
        assert 0 < mval(m1, "dwell_model_resident_bytes", "m:latest") <= \
            mval(m1, "dwell_model_measured_bytes", "m:latest")
        assert 290 < mval(m1, "dwell_model_keep_alive_remaining_seconds", "m:latest") <= 300
        assert mval(m1, "dwell_model_keep_alive_seconds", "m:latest") == 300
        assert mval(m1, "dwell_loads_total") == 1 and mval(m1, "dwell_requests_total") == 1
        digest = [dict(k[1])["digest"] for k in m1 if k[0] == "dwell_model_size_bytes"]
        assert digest == [s.ps()[0]["digest"][:12]], digest
        ok(s.generate("m", keep_alive=-1, options=GREEDY))
        m2 = metrics(s)
        assert mval(m2, "dwell_model_keep_alive_seconds", "m:latest") == math.inf
        assert mval(m2, "dwell_model_pinned", "m:latest") == 1
        assert mval(m2, "dwell_model_warm_hits_total", "m:latest") == 1


def _between(a, x, b):
    return min(a, b) <= x <= max(a, b)


def test_metrics_agree_with_stats():
    # /metrics, /api/stats, /metrics on a quiet server: every figure /api/stats gives lies
    # between the two scrapes (equal for everything that does not move by itself)
    with ds.Server(env={"DWELL_MEMORY_BUDGET": "512MiB"}) as s:
        s.create("a", ds.STORIES)
        s.create("b", ds.TINY)
        ok(s.generate("a", options=GREEDY))
        ok(s.generate("b", keep_alive="1h", options=GREEDY))
        ok(s.post("/api/embed", {"model": "a", "input": ["hello there", "x"]}))
        m1, st, m2 = metrics(s), cu.stats(s), metrics(s)
        srv = st["server"]
        pairs = {"dwell_memory_budget_bytes": "budget_bytes",
                 "dwell_models_bytes": "models_bytes", "dwell_ram_bytes": "ram_bytes",
                 "dwell_queue_depth": "queue_depth", "dwell_max_queue": "max_queue",
                 "dwell_max_loaded_models": "max_loaded", "dwell_num_parallel": "num_parallel",
                 "dwell_loads_total": "loads", "dwell_load_failures_total": "load_failures",
                 "dwell_unloads_total": "unloads", "dwell_evictions_total": "evictions",
                 "dwell_expiries_total": "expiries", "dwell_requests_total": "requests",
                 "dwell_event_streams": "event_streams"}
        for name, key in pairs.items():
            assert mval(m1, name) == srv[key] == mval(m2, name), (name, mval(m1, name),
                                                                  srv[key])
        assert _between(mval(m1, "dwell_uptime_seconds"), srv["uptime_ns"] / 1e9,
                        mval(m2, "dwell_uptime_seconds"))
        assert mval(m1, "dwell_memory_budget_info", source=srv["budget_source"]) == 1
        for reason, key in (("queue_full", "rejected_busy"), ("pinned", "rejected_pinned"),
                            ("too_large", "rejected_too_large")):
            assert mval(m1, "dwell_rejections_total", reason=reason) == srv[key]
        for proc in ("rss_bytes", "mem_available_bytes"):
            name = "dwell_process_rss_bytes" if proc == "rss_bytes" else \
                "dwell_mem_available_bytes"
            assert abs(mval(m1, name) - srv[proc]) < max(srv[proc] * 0.2, 64 << 20), proc
        assert len(st["models"]) == 2
        for m in st["models"]:
            name = m["name"]
            per = {"dwell_model_measured_bytes": m["memory"]["measured_bytes"],
                   "dwell_model_estimated_bytes": m["memory"]["estimated_bytes"],
                   "dwell_model_size_bytes": m["memory"]["size_bytes"],
                   "dwell_model_kv_bytes": m["memory"]["kv_bytes"],
                   "dwell_model_weight_bytes": m["memory"]["weight_bytes"],
                   "dwell_model_resident_bytes": m["memory"]["resident_bytes"],
                   "dwell_model_requests_total": m["requests_served"],
                   "dwell_model_warm_hits_total": m["warm_hits"],
                   "dwell_model_cold_loads_total": m["cold_loads"],
                   "dwell_model_tokens_generated_total": m["tokens_generated"],
                   "dwell_model_prompt_tokens_total": m["prompt_tokens"],
                   "dwell_model_in_flight": m["in_flight"], "dwell_model_slots": m["slots"],
                   "dwell_model_context_length": m["num_ctx"]}
            for metric, v in per.items():
                assert _between(mval(m1, metric, name), v, mval(m2, metric, name)), \
                    (name, metric, mval(m1, metric, name), v)
            assert mval(m1, "dwell_model_state", name, state=m["state"]) == 1
            assert mval(m1, "dwell_model_last_load_seconds", name) == m["last_load_ns"] / 1e9
            left = (cu.parse_time(m["expires_at"]) - cu.parse_time(st["time"]))
            assert _between(mval(m1, "dwell_model_keep_alive_remaining_seconds", name) + 0.01,
                            left, mval(m2, "dwell_model_keep_alive_remaining_seconds",
                                       name) - 0.01), (name, left)
        a = cu.model_stats(s, "a:latest")
        assert a["prompt_tokens"] > 0 and mval(m1, "dwell_model_prompt_tokens_total",
                                               "a:latest") == a["prompt_tokens"]


def _totals(samples):
    return {k: v for k, v in samples.items() if k[0].endswith("_total")}


# ---- /api/events: the lifecycle ----

def test_events_of_the_residency_lifecycle_in_order():
    env = {"OLLAMA_MAX_LOADED_MODELS": "1", "DWELL_MEMORY_BUDGET": "16MiB"}
    with ds.Server(env=env) as s:
        s.create("a", ds.STORIES)
        s.create("b", ds.TINY)
        s.create("bad", Q40)
        s.create("big", L3)
        corrupt_in_place(s, Q40)
        live = EventStream(s)
        live.wait(lambda ls: ls and ls[0]["type"] == "heartbeat", what="the first heartbeat")
        assert live.lines[0]["last_id"] == 0, live.lines
        scrapes = [metrics(s)]
        ok(s.generate("a", keep_alive="1s", options=GREEDY))          # load a
        s.wait_for(lambda: not s.ps(), timeout=15, what="expiry")     # expire, unload
        ok(s.generate("a", keep_alive=0, options=GREEDY))             # load, unload
        s.wait_for(lambda: not s.ps(), timeout=15, what="keep_alive 0 unload")
        scrapes.append(metrics(s))
        ok(s.generate("a", options=GREEDY))                           # load a
        ok(s.generate("b", options=GREEDY))                           # evict a, unload, load b
        r = s.post("/api/generate", {"model": "bad", "prompt": "x"})  # load_failed
        assert r.status == 400 and "GGUF" in r.json()["error"], r
        r = s.generate("big", options=GREEDY)                          # reject: too large
        assert r.status == 500 and "memory budget" in r.json()["error"], r
        scrapes.append(metrics(s))
        want = [("load", "a:latest"), ("expire", "a:latest"), ("unload", "a:latest"),
                ("load", "a:latest"), ("unload", "a:latest"), ("load", "a:latest"),
                ("evict", "a:latest"), ("unload", "a:latest"), ("load", "b:latest"),
                ("load_failed", "bad:latest"), ("reject", "big:latest")]
        h = history(s)
        ev = h["events"]
        assert [(e["type"], e["model"]) for e in ev] == want, ev
        assert [e["id"] for e in ev] == list(range(1, len(want) + 1)), ev
        assert h["last_id"] == len(want) and h["dropped"] == 0, h
        reasons = [e["reason"] for e in ev]
        assert reasons[0] == "loaded" and reasons[1] == "1s" and reasons[2] == "expired"
        assert reasons[4] == "keep_alive 0", reasons
        assert reasons[6] == "to make room for b:latest (OLLAMA_MAX_LOADED_MODELS=1)", reasons
        assert reasons[7] == "evicted", reasons
        assert "GGUF" in reasons[9] and "16.0 MiB" in reasons[10], reasons
        assert ev[0]["bytes"] > 0 and ev[0]["duration_ns"] > 0, ev[0]
        assert ev[2]["duration_ns"] >= 0.9e9, ev[2]  # resident for about the keep-alive
        assert ev[1]["duration_ns"] == 1_000_000_000, ev[1]  # the keep-alive that expired
        assert ev[10]["bytes"] > 16 << 20, ev[10]  # the estimate that did not fit
        times = [cu.parse_time(e["time"]) for e in ev]
        assert times == sorted(times) and abs(times[-1] - time.time()) < 60, times
        # the live stream saw the same events, as they happened
        live.wait(lambda ls: len([x for x in ls if x["type"] != "heartbeat"]) >= len(want),
                  what="every event on the live stream")
        assert live.events() == ev, (live.events(), ev)
        live.close()
        # the counters agree with the events and only ever grew
        last = scrapes[-1]
        assert mval(last, "dwell_loads_total") == 4 and mval(last, "dwell_unloads_total") == 3
        assert mval(last, "dwell_expiries_total") == 1
        assert mval(last, "dwell_evictions_total") == 1
        assert mval(last, "dwell_load_failures_total") == 1
        assert mval(last, "dwell_rejections_total", reason="too_large") == 1
        for before, after in zip(scrapes, scrapes[1:]):
            for k, v in _totals(before).items():
                assert _totals(after).get(k, v) >= v, (k, v, _totals(after).get(k))


def test_queue_full_rejection_is_an_event():
    env = {"OLLAMA_MAX_QUEUE": "1", "OLLAMA_NUM_PARALLEL": "1", "DWELL_DEBUG_STEP_DELAY": "20ms"}
    with ds.Server(env=env) as s:
        s.create("a", ds.STORIES)
        ok(s.generate("a", options=GREEDY))
        running = cu.Stream(s, "a", n=150).wait_first()
        waiting = cu.Stream(s, "a", n=2)
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] == 1, timeout=10,
                   what="a waiting request")
        r = s.generate("a", options=GREEDY)
        assert r.status == 503, r
        running.join()
        waiting.join()
        ev = history(s)["events"]
        assert [e["type"] for e in ev] == ["load", "reject"], ev
        assert "OLLAMA_MAX_QUEUE" in ev[1]["reason"] and ev[1]["model"] == "a:latest", ev
        assert mval(metrics(s), "dwell_rejections_total", reason="queue_full") == 1


# ---- /api/events: resuming, bounds, bad queries ----

def _switch(s, n):
    """Alternates loads of a and b n times (OLLAMA_MAX_LOADED_MODELS=1): 3 events each."""
    for i in range(n):
        ok(s.post("/api/generate", {"model": "a" if i % 2 == 0 else "b"}))


def test_since_resumes_after_an_id():
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as s:
        s.create("a", ds.STORIES)
        s.create("b", ds.TINY)
        _switch(s, 3)  # load a; evict a, unload a, load b; evict b, unload b, load a
        all_ev = history(s)["events"]
        assert [e["id"] for e in all_ev] == list(range(1, 8)), all_ev
        h = history(s, "&since=4")
        assert h["events"] == all_ev[4:] and h["last_id"] == 7 and h["dropped"] == 0, h
        assert history(s, "&since=7")["events"] == []
        # a since past the newest id (a client resuming against a restarted server): all
        assert history(s, "&since=1000")["events"] == all_ev
        st = EventStream(s, "?since=5")
        st.wait(lambda ls: any(x["type"] == "heartbeat" for x in ls), what="the history")
        assert st.lines[-1] == {"type": "heartbeat", "time": st.lines[-1]["time"],
                                "last_id": 7}, st.lines
        assert [x["id"] for x in st.lines[:-1]] == [6, 7], st.lines
        ok(s.post("/api/generate", {"model": "b"}))  # evict a, unload a, load b
        st.wait(lambda ls: len(ls) >= 6, what="the new events")
        assert [x["id"] for x in st.events()] == [6, 7, 8, 9, 10], st.lines
        st.close()
        for q in ("since=-1", "since=abc", "since=", "stream=maybe", "heartbeat=0",
                  "heartbeat=2h", "heartbeat=xyz"):
            r = s.get("/api/events?" + q)
            assert r.status == 400 and q.split("=")[0] in r.json()["error"], (q, r)
        assert s.request("POST", "/api/events").status == 405


def test_a_reader_that_falls_behind_gets_a_dropped_marker():
    # the log keeps the last 256 events: resuming from an id that left it says so
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as s:
        s.create("a", ds.STORIES)
        s.create("b", ds.TINY)
        _switch(s, 90)  # 1 + 89 * 3 = 268 events
        h = history(s, "&since=3")
        assert h["last_id"] == 268 and h["dropped"] == 268 - 256 - 3, h
        assert len(h["events"]) == 256 and h["events"][0]["id"] == 13, h["events"][:2]
        whole = history(s)  # no since: the recent history, nothing reported missing
        assert whole["dropped"] == 0 and whole["events"] == h["events"]
        st = EventStream(s, "?since=3")
        st.wait(lambda ls: ls and ls[-1]["type"] == "heartbeat", what="the history")
        assert st.lines[0] == {"type": "dropped", "count": 9, "from_id": 4, "to_id": 12}, \
            st.lines[0]
        assert [x["id"] for x in st.lines[1:-1]] == list(range(13, 269))
        st.close()


# ---- /api/events: live streams and their connections ----

def test_live_stream_gets_an_event_after_it_connected():
    with ds.Server() as s:
        s.create("a", ds.STORIES)
        st = EventStream(s, "?heartbeat=1s")
        st.wait(lambda ls: len(ls) >= 1, what="the first heartbeat")
        assert st.head.startswith("HTTP/1.1 200") and "application/x-ndjson" in st.head
        t0 = time.time()
        st.wait(lambda ls: len(ls) >= 2, timeout=5, what="a heartbeat a second later")
        assert 0.5 < time.time() - t0 < 3 and st.lines[1]["type"] == "heartbeat", st.lines
        ok(s.post("/api/generate", {"model": "a"}))
        st.wait(lambda ls: st.events(), timeout=5, what="the load event")
        assert st.events()[0]["type"] == "load" and st.events()[0]["id"] == 1
        assert cu.stats(s)["server"]["event_streams"] == 1
        st.close()


def test_a_vanished_client_frees_its_stream():
    with ds.Server() as s:
        s.create("a", ds.STORIES)
        streams = [EventStream(s) for _ in range(5)]
        for st in streams:
            st.wait(lambda ls: ls, what="the first heartbeat")
        assert cu.stats(s)["server"]["event_streams"] == 5
        assert mval(metrics(s), "dwell_event_streams") == 5
        for st in streams:
            st.close()
        t0 = time.time()
        s.wait_for(lambda: cu.stats(s)["server"]["event_streams"] == 0, timeout=5,
                   what="the streams to be freed")
        assert time.time() - t0 < 3, time.time() - t0
        s.wait_for(lambda: cu.stats(s)["server"]["http_active"] == 1, timeout=5,
                   what="only the stats request in flight")
        assert s.log().count("events: stream closed") == 5, s.log()[-2000:]
        ok(s.post("/api/generate", {"model": "a"}))  # the server goes on
        assert history(s)["events"][0]["type"] == "load"


def test_sigterm_with_an_open_stream_exits_at_once():
    s = ds.Server()
    try:
        s.create("a", ds.STORIES)
        ok(s.post("/api/generate", {"model": "a"}))
        st = EventStream(s)
        st.wait(lambda ls: ls and ls[-1]["type"] == "heartbeat", what="the live part")
        t0 = time.time()
        rc = s.stop(signal.SIGTERM, timeout=10)
        took = time.time() - t0
        assert rc == 0 and took < 3, (rc, took, s.log()[-2000:])
        st.th.join(5)
        assert st.eof and st.error is None, st.error  # the chunked stream ended cleanly
        assert "unloaded a:latest: reason shutdown" in s.log()
    finally:
        s.close()


if __name__ == "__main__":
    ds.main([test_metrics_before_and_after_a_load, test_metrics_agree_with_stats,
             test_events_of_the_residency_lifecycle_in_order,
             test_queue_full_rejection_is_an_event, test_since_resumes_after_an_id,
             test_a_reader_that_falls_behind_gets_a_dropped_marker,
             test_live_stream_gets_an_event_after_it_connected,
             test_a_vanished_client_frees_its_stream,
             test_sigterm_with_an_open_stream_exits_at_once])
