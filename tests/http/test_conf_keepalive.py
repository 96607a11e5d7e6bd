"""Conformance: keep_alive values, parsing and precedence (spec A), the explicit load and
unload forms (spec B) and expiry / expires_at (spec D), against a real `dwell serve`.
DESIGN.md §2 and §4 win over the spec where they differ (departures 1, 7, 8 here)."""
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402
import confutil as cu  # noqa: E402
from confutil import GREEDY, entry  # noqa: E402

# a floor under every decode step, so that long generations overlap the requests that
# follow them whatever the machine's speed (DWELL_DEBUG_STEP_DELAY)
ds.DEFAULT_ENV["DWELL_DEBUG_STEP_DELAY"] = "3ms"

S = None        # one shared server with "m" (stories260K) and "slow"
SLOW = None     # path of the slow synthetic model
M = "m:latest"


def unload(s, model="m", name=M):
    r = s.post("/api/generate", {"model": model, "keep_alive": 0})
    assert r.status == 200 and r.json()["done_reason"] == "unload", r
    s.wait_for(lambda: entry(s, name) is None, timeout=10, what="unload of " + name)


def load_with(ka, model="m"):
    """Loads `model` with the empty-prompt form carrying keep_alive ka; returns its ps entry."""
    r = S.post("/api/generate", {"model": model, "keep_alive": ka})
    assert r.status == 200 and r.json()["done_reason"] == "load", (ka, r)
    e = entry(S, model + ":latest")
    assert e is not None, (ka, S.ps())
    return e


# ---- A: values, parsing, precedence ----

def test_json_number_is_seconds_fractions_allowed():
    # spec A.1: a JSON number is seconds and may be fractional
    unload(S)
    for ka, shown, secs in [(42, "42s", 42), (42.5, "42.5s", 42.5), (300, "5m0s", 300)]:
        t0 = time.time()
        e = load_with(ka)
        assert e["keep_alive"] == shown and e["keep_alive_source"] == "request", (ka, e)
        left = cu.parse_time(e["expires_at"]) - t0
        assert secs - 1 < left < secs + 2, (ka, left, e)
    # 0 and 0.0 are zero: with a prompt the answer comes, then the model is gone
    for zero in (0, 0.0):
        load_with("1h")
        r = S.generate("m", keep_alive=zero, options=GREEDY)
        assert r.status == 200 and r.json()["response"], (zero, r)
        S.wait_for(lambda: entry(S, M) is None, timeout=10, what="unload after %r" % zero)


def test_json_string_go_durations():
    # spec A.2: Go duration syntax with chained units; "0", "+0", "-0" are zero
    unload(S)
    for ka, shown in [("10m", "10m0s"), ("1h30m", "1h30m0s"), ("1.5h", "1h30m0s"),
                      ("500ms", "500ms"), ("90s", "1m30s"), ("2h0m5s", "2h0m5s"),
                      ("1000000us", "1s"), ("1000000\u00b5s", "1s"), ("3000000000ns", "3s")]:
        e = load_with(ka)
        assert e["keep_alive"] == shown and e["pinned"] is False, (ka, e)
    for zero in ("0", "+0", "-0"):
        load_with("1h")
        r = S.generate("m", keep_alive=zero, options=GREEDY)
        assert r.status == 200, (zero, r)
        S.wait_for(lambda: entry(S, M) is None, timeout=10, what="unload after %r" % zero)
    # no w or y units; d is dwell's extension (departure 1)
    for bad in ("1w", "1y"):
        r = S.generate("m", keep_alive=bad, options=GREEDY)
        assert r.status == 400 and bad in r.json()["error"], (bad, r)
    e = load_with("2d")
    assert e["keep_alive"] == "48h0m0s", e
    left = cu.parse_time(e["expires_at"]) - time.time()
    assert 2 * 86400 - 60 < left < 2 * 86400 + 60, left


def test_numeric_string_is_seconds_and_garbage_is_400():
    # spec A.3 with departure 1: a numeric string is seconds ("300" = 5m, "-1" = forever);
    # an unparsable string is 400 naming the value, and nothing is loaded or unloaded.
    unload(S)
    e = load_with("300")
    assert e["keep_alive"] == "5m0s", e
    e = load_with("2.5")
    assert e["keep_alive"] == "2.5s", e
    e = load_with("-1")
    assert e["pinned"] is True and e["keep_alive"] == "forever", e
    load_with("1h")
    for bad in ("abc", "5 m", "1h30", "--1s", ""):
        r = S.post("/api/generate", {"model": "m", "prompt": "x", "keep_alive": bad})
        assert r.status == 400, (bad, r)
        msg = r.json()["error"]
        assert "keep_alive" in msg and ('"%s"' % bad) in msg, (bad, msg)
        e = entry(S, M)
        assert e is not None and e["keep_alive"] == "1h0m0s", (bad, e)  # untouched
    r = S.post("/api/generate", {"model": "m", "keep_alive": "abc"})
    assert r.status == 400 and 'time: invalid duration "abc"' in r.json()["error"], r
    unload(S)
    r = S.post("/api/generate", {"model": "m", "prompt": "x", "keep_alive": "abc"})
    assert r.status == 400, r
    r = S.post("/api/chat", {"model": "m", "messages": [], "keep_alive": "zz"})
    assert r.status == 400, r
    assert entry(S, M) is None, S.ps()  # nothing was loaded


def test_negative_means_forever():
    # spec A.4: any negative number or string pins the model
    unload(S)
    for ka in (-1, -3.14, "-1m", "-5h", "-1s", "-2"):
        e = load_with(ka)
        assert e["pinned"] is True and e["keep_alive"] == "forever", (ka, e)
        assert cu.year_of(e["expires_at"]) > time.gmtime().tm_year + 200, (ka, e)
        load_with("1h")  # un-pin before the next value
    st = cu.model_stats(S, M)
    assert st["keep_alive_ms"] == 3600000, st


def test_null_and_absent_mean_not_specified():
    # spec A.5 and A.9: null and absent leave the model's value in place (sticky)
    unload(S)
    load_with("17m")
    for body in ({"model": "m", "prompt": "Hi", "options": GREEDY, "stream": False},
                 {"model": "m", "prompt": "Hi", "options": GREEDY, "stream": False,
                  "keep_alive": None}):
        r = S.post("/api/generate", body)
        assert r.status == 200, r
        e = entry(S, M)
        assert e["keep_alive"] == "17m0s" and e["keep_alive_source"] == "request", (body, e)
    r = S.post("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                             "options": GREEDY, "stream": False, "keep_alive": None})
    assert r.status == 200, r
    assert entry(S, M)["keep_alive"] == "17m0s", entry(S, M)
    # a request that gives a value replaces it
    S.generate("m", keep_alive="3m", options=GREEDY)
    assert entry(S, M)["keep_alive"] == "3m0s", entry(S, M)


def test_wrong_types_are_400():
    # spec A.6: bool, object, array → 400 naming the type; nothing changes
    load_with("11m")
    for ka, tname in [(True, "bool"), (False, "bool"), ({"a": 1}, "object"), ([1], "array")]:
        for path, body in [("/api/generate", {"model": "m", "prompt": "x"}),
                           ("/api/chat", {"model": "m", "messages": []}),
                           ("/api/embed", {"model": "m", "input": "x"})]:
            b = dict(body, keep_alive=ka)
            r = S.post(path, b)
            assert r.status == 400, (path, ka, r)
            msg = r.json()["error"]
            assert "keep_alive" in msg and tname in msg, (path, ka, msg)
    assert entry(S, M)["keep_alive"] == "11m0s", entry(S, M)


def test_v1_endpoints_honour_keep_alive():
    # spec A.7 with departure 8: keep_alive is read on /v1 too (Ollama ignores it there)
    unload(S)
    r = S.post("/v1/completions", {"model": "m", "prompt": "Once", "max_tokens": 2,
                                   "keep_alive": "13m"})
    assert r.status == 200, r
    e = entry(S, M)
    assert e["keep_alive"] == "13m0s" and e["keep_alive_source"] == "request", e
    r = S.post("/v1/embeddings", {"model": "m", "input": "x", "keep_alive": -1})
    assert r.status == 200 and entry(S, M)["pinned"] is True, (r, entry(S, M))
    # a /v1 request without keep_alive leaves the pin (spec A.9)
    r = S.post("/v1/chat/completions", {"model": "m", "max_tokens": 2,
                                        "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 200 and entry(S, M)["pinned"] is True, (r, entry(S, M))
    r = S.post("/v1/chat/completions", {"model": "m", "max_tokens": 2, "keep_alive": True,
                                        "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 400, r
    unload(S)


def test_precedence_on_load():
    # spec A.8 with DESIGN §2: request > model PARAMETER keep_alive > server OLLAMA_KEEP_ALIVE
    # > 5m. The model's bare number is minutes (a person typed it).
    with ds.Server(env={"OLLAMA_KEEP_ALIVE": "3"}) as s:
        s.create("plain", ds.STORIES)
        s.create("param", ds.TINY, parameters={"keep_alive": "7m"})
        s.create("bare", ds.TINY, parameters={"keep_alive": "2"})  # shares param's blob
        s.generate("plain", options=GREEDY)
        e = entry(s, "plain:latest")
        assert e["keep_alive"] == "3m0s" and e["keep_alive_source"] == "server", e
        s.generate("param", options=GREEDY)
        e = entry(s, "param:latest")
        assert e["keep_alive"] == "7m0s" and e["keep_alive_source"] == "model", e
        unload(s, "param", "param:latest")
        s.generate("bare", options=GREEDY)
        e = entry(s, "bare:latest")
        assert e["keep_alive"] == "2m0s" and e["keep_alive_source"] == "model", e
        unload(s, "bare", "bare:latest")
        s.generate("param", keep_alive="20s", options=GREEDY)
        e = entry(s, "param:latest")
        assert e["keep_alive"] == "20s" and e["keep_alive_source"] == "request", e
        unload(s, "param", "param:latest")
        # two names on one loaded file: each request without keep_alive gets the keep-alive
        # of the model it named (the entry keeps the name it was loaded under)...
        s.generate("param", options=GREEDY)
        s.generate("bare", options=GREEDY)
        e = entry(s, "param:latest")
        assert e["keep_alive"] == "2m0s" and e["keep_alive_source"] == "model", e
        s.generate("plain", options=GREEDY)  # another file: param's entry is untouched
        s.generate("param", options=GREEDY)
        e = entry(s, "param:latest")
        assert e["keep_alive"] == "7m0s" and e["keep_alive_source"] == "model", e
        # ... until a request sets one: that sticks, whichever name comes next
        s.generate("bare", keep_alive="20s", options=GREEDY)
        s.generate("param", options=GREEDY)
        e = entry(s, "param:latest")
        assert e["keep_alive"] == "20s" and e["keep_alive_source"] == "request", e
    with ds.Server() as s:
        s.create("plain", ds.STORIES)
        s.generate("plain", options=GREEDY)
        e = entry(s, "plain:latest")
        assert e["keep_alive"] == "5m0s" and e["keep_alive_source"] == "default", e


def test_sticky_value_last_writer_wins():
    # spec A.9 and A.10: a value given by a request replaces the model's; omitted leaves it
    unload(S)
    load_with("1h")
    for _ in range(2):
        S.generate("m", options=GREEDY)
        assert entry(S, M)["keep_alive"] == "1h0m0s", entry(S, M)
    S.post("/api/embed", {"model": "m", "input": "x", "keep_alive": "9m"})
    assert entry(S, M)["keep_alive"] == "9m0s", entry(S, M)
    S.post("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                         "stream": False, "options": GREEDY})
    assert entry(S, M)["keep_alive"] == "9m0s", entry(S, M)


def test_keep_alive_0_from_another_client_waits_for_in_flight():
    # spec A.10 and B.15: one request with keep_alive 0 unloads the model once every
    # in-flight request on it has finished, whoever sent them
    S.generate("slow", keep_alive="1h", options={"num_predict": 1})
    st = cu.Stream(S, "slow", n=300).wait_first()
    r = S.post("/api/generate", {"model": "slow", "keep_alive": 0})
    assert r.status == 200 and r.json()["done_reason"] == "unload", r
    time.sleep(0.2)
    e = entry(S, "slow:latest")
    assert e is not None and e["in_flight"] >= 1, e  # still serving
    # spec B.18: until it is gone, ps shows it with expires_at <= now (CLI "Stopping...")
    assert cu.parse_time(e["expires_at"]) <= time.time() + 0.5, e
    st.join()
    assert st.status == 200 and st.done() and st.lines[-1]["eval_count"] == 300, st.lines[-1:]
    S.wait_for(lambda: entry(S, "slow:latest") is None, timeout=10, what="unload after stream")


def test_countdown_starts_when_idle():
    # spec A.11 and D.35: a model busy for longer than its keep-alive is not unloaded; it
    # stays exactly keep-alive after its last request ends (here: the client walks away)
    S.generate("slow", keep_alive="1s", options={"num_predict": 1})
    c = cu.RawClient(S, "/api/generate", {"model": "slow", "prompt": "Once upon a time",
                                          "options": {"num_predict": 100000, "temperature": 0}})
    try:
        c.sock.settimeout(30)
        got = b""
        while got.count(b"\n") < 4:
            chunk = c.sock.recv(65536)
            assert chunk, got
            got += chunk
        time.sleep(1.6)
        e = entry(S, "slow:latest")
        assert e is not None and e["state"] == "busy", (e, got[-300:], S.log()[-1500:])
    finally:
        c.close()
    t_end = time.time()
    e = S.wait_for(lambda: (lambda x: x if x and x["state"] == "idle" else None)(
        entry(S, "slow:latest")), timeout=5, step=0.02, what="idle after the client left")
    exp = cu.parse_time(e["expires_at"])
    assert t_end - 0.2 < exp - 1.0 < t_end + 0.6, (exp, t_end)
    S.wait_for(lambda: entry(S, "slow:latest") is None, timeout=10, what="expiry")
    gone = time.time()
    assert 0.6 < gone - t_end < 3.0, gone - t_end


def test_next_request_cancels_the_timer():
    # spec 0.4/0.5: the timer starts at idle and the next request stops it; a model used
    # more often than its keep-alive never expires (and is never reloaded)
    unload(S)
    S.generate("m", keep_alive="800ms", options=GREEDY)
    cold = cu.model_stats(S, M)["cold_loads"]
    for _ in range(5):
        time.sleep(0.5)
        r = S.generate("m", options=GREEDY)
        assert r.status == 200, r
    assert entry(S, M) is not None and cu.model_stats(S, M)["cold_loads"] == cold
    S.wait_for(lambda: entry(S, M) is None, timeout=5, what="expiry after the last request")


# ---- B: load and unload forms ----

def test_generate_load_form():
    # spec B.13: one JSON object even when streaming was asked; model echoed as sent;
    # done_reason "load"; the idle timer starts right away
    unload(S)
    for name in ("m", "m:latest", "M"):
        r = S.post("/api/generate", {"model": name, "stream": True, "keep_alive": "1h"})
        assert r.status == 200 and r.headers["content-type"].startswith("application/json"), r
        o = r.json()
        assert o == {"model": name, "created_at": o["created_at"], "response": "",
                     "done": True, "done_reason": "load"}, o
        assert o["created_at"].endswith("Z"), o
        assert abs(cu.parse_time(o["created_at"]) - time.time()) < 5, o
    r = S.post("/api/generate", {"model": "m", "prompt": "", "keep_alive": "700ms"})
    assert r.json()["done_reason"] == "load", r
    e = entry(S, M)
    assert e is not None and e["state"] == "idle", e
    S.wait_for(lambda: entry(S, M) is None, timeout=5, what="the load form's timer")


def test_chat_load_form():
    # spec B.14: messages absent, [] or null
    unload(S)
    for extra in ({}, {"messages": []}, {"messages": None}):
        body = dict({"model": "m", "stream": True}, **extra)
        r = S.post("/api/chat", body)
        assert r.status == 200, (extra, r)
        o = r.json()
        assert o["done"] is True and o["done_reason"] == "load" and o["model"] == "m", o
        assert o["message"] == {"role": "assistant", "content": ""}, o
        assert entry(S, M) is not None, S.ps()


def test_unload_form_does_not_load():
    # spec B.15 / B.17: keep_alive 0 with an empty prompt never loads; a non-resident
    # installed model answers the same 200
    unload(S)
    st0 = cu.stats(S)["server"]["loads"]
    for ka in (0, 0.0, "0", "0s"):
        r = S.post("/api/generate", {"model": "m", "keep_alive": ka})
        o = r.json()
        assert r.status == 200 and o["done_reason"] == "unload" and o["response"] == "", o
        assert o["done"] is True and o["model"] == "m", o
    time.sleep(0.2)
    assert entry(S, M) is None and cu.stats(S)["server"]["loads"] == st0, S.ps()


def test_chat_unload_form_and_unknown_model():
    # spec B.16 and B.17
    load_with("1h")
    r = S.post("/api/chat", {"model": "m", "messages": [], "keep_alive": 0})
    o = r.json()
    assert r.status == 200 and o["done_reason"] == "unload", o
    assert o["message"] == {"role": "assistant", "content": ""}, o
    S.wait_for(lambda: entry(S, M) is None, timeout=10, what="chat unload")
    r = S.post("/api/chat", {"model": "m", "keep_alive": 0})
    assert r.status == 200 and r.json()["done_reason"] == "unload", r
    for path, body in [("/api/generate", {"model": "nosuch", "keep_alive": 0}),
                       ("/api/chat", {"model": "nosuch", "messages": [], "keep_alive": 0})]:
        r = S.post(path, body)
        assert r.status == 404 and r.json()["error"] == "model 'nosuch' not found", (path, r)


def test_prompt_with_keep_alive_0_answers_then_unloads():
    # spec B.19 (chat, streamed): the whole reply first, then the model leaves
    unload(S)
    r = S.post("/api/chat", {"model": "m", "keep_alive": 0, "options": GREEDY,
                             "messages": [{"role": "user", "content": "Tell me a story"}]})
    lines = r.lines()
    assert r.status == 200 and lines[-1]["done"] is True, lines[-2:]
    assert lines[-1]["done_reason"] in ("stop", "length"), lines[-1]
    S.wait_for(lambda: entry(S, M) is None, timeout=10, what="unload after chat")


# spec B.20 is not applicable: dwell has no embedding-only models (every GGUF it runs is a
# decoder that can generate), so there is no "does not support generate" case to unload.


def test_embed_empty_input_loads():
    # spec B.21: empty input loads and returns no duration fields; keep_alive 0 loads and
    # unloads right afterwards; /api/embeddings with an empty prompt answers {"embedding":[]}
    unload(S)
    for extra in ({"input": ""}, {"input": []}, {}):
        r = S.post("/api/embed", dict({"model": "m"}, **extra))
        assert r.status == 200 and r.json() == {"model": "m", "embeddings": []}, (extra, r)
        assert entry(S, M) is not None, S.ps()
        unload(S)
    loads = cu.stats(S)["server"]["loads"]
    r = S.post("/api/embed", {"model": "m", "input": [], "keep_alive": 0})
    assert r.status == 200 and r.json()["embeddings"] == [], r
    assert cu.stats(S)["server"]["loads"] == loads + 1  # it did load
    S.wait_for(lambda: entry(S, M) is None, timeout=10, what="embed keep_alive 0 unload")
    for extra in ({"prompt": ""}, {}):
        r = S.post("/api/embeddings", dict({"model": "m"}, **extra))
        assert r.status == 200 and r.json() == {"embedding": []}, (extra, r)
        assert entry(S, M) is not None, S.ps()


def test_delete_unloads():
    # spec B.22 with departure 7: /api/delete also unloads the model
    S.create("victim", SLOW)
    S.generate("victim", keep_alive=-1, options={"num_predict": 1})
    assert entry(S, "victim:latest")["pinned"] is True
    r = S.request("DELETE", "/api/delete", {"model": "victim"})
    assert r.status == 200 and r.body == b"", r
    S.wait_for(lambda: entry(S, "victim:latest") is None, timeout=10, what="unload on delete")
    r = S.generate("victim", options=GREEDY)
    assert r.status == 404, r


# ---- D: expiry and expires_at ----

def test_expires_at_set_at_idle_transition():
    # spec D.35: expires_at = idle time + keep-alive, fixed (not recomputed per call), and
    # moved forward by the next request
    unload(S)
    S.generate("m", keep_alive="30s", options=GREEDY)
    t_idle = time.time()
    e1 = entry(S, M)
    time.sleep(0.4)
    e2 = entry(S, M)
    assert e1["expires_at"] == e2["expires_at"], (e1["expires_at"], e2["expires_at"])
    exp = cu.parse_time(e1["expires_at"])
    assert t_idle + 29 < exp < t_idle + 30.5, (exp - t_idle)
    time.sleep(0.3)
    S.generate("m", options=GREEDY)
    exp2 = cu.parse_time(entry(S, M)["expires_at"])
    assert exp2 > exp + 0.2, (exp, exp2)
    # ps is sorted by expires_at, latest first (spec G.56)
    S.generate("slow", keep_alive="1h", options={"num_predict": 1})
    names = S.ps_names()
    assert names.index("slow:latest") < names.index(M), names


def test_expires_at_of_first_request_moves_with_now():
    # spec D.36: until the first request has finished, expires_at reads now + keep-alive
    S.post("/api/generate", {"model": "slow", "keep_alive": 0})
    S.wait_for(lambda: entry(S, "slow:latest") is None, timeout=10, what="slow unloaded")
    body = {"model": "slow", "prompt": "Once upon a time", "keep_alive": "10s",
            "options": {"num_predict": 400, "temperature": 0}}
    st = cu.Stream(S, "slow", body=body).wait_first()
    a = entry(S, "slow:latest")
    ta = time.time()
    time.sleep(0.5)
    b = entry(S, "slow:latest")
    tb = time.time()
    st.join()
    ea, eb = cu.parse_time(a["expires_at"]), cu.parse_time(b["expires_at"])
    assert abs(ea - (ta + 10)) < 1 and abs(eb - (tb + 10)) < 1, (ea - ta, eb - tb)
    last = {k: v for k, v in st.lines[-1].items() if k != "context"}
    assert eb > ea + 0.3, (ea, eb, last, st.times[-1] - st.times[0], len(st.lines))


def test_forever_is_about_292_years_ahead():
    # spec D.37: a forever keep-alive shows an expires_at ~292 years ahead (Go's now + max
    # duration), in the local offset with nanoseconds
    e = load_with(-1)
    exp = cu.parse_time(e["expires_at"])
    years = (exp - time.time()) / (365.2425 * 86400)
    assert 291.5 < years < 293, (years, e["expires_at"])
    load_with("1h")


def test_centuries_keep_alive_does_not_wrap():
    # a keep-alive just under the int64 limit of nanoseconds ("9223372036s", ~292 years)
    # once wrapped the expiry deadline (now + keep-alive) into the past: the model was
    # unloaded at once and /api/ps showed a time before 1970. It must stay loaded, with an
    # expires_at centuries ahead.
    load_with("9223372036s")
    time.sleep(0.5)
    e = entry(S, M)
    assert e is not None, S.ps()
    years = (cu.parse_time(e["expires_at"]) - time.time()) / (365.2425 * 86400)
    assert 200 < years < 293, (years, e["expires_at"])
    load_with("1h")


def test_sigterm_unloads_everything_and_nothing_persists():
    # spec D.39: SIGTERM unloads every model whatever its keep-alive; after a restart
    # nothing is loaded until a request arrives
    s = ds.Server()
    try:
        s.create("a", ds.STORIES)
        s.create("b", ds.TINY)
        s.generate("a", keep_alive=-1, options=GREEDY)
        s.generate("b", keep_alive="1h", options=GREEDY)
        assert len(s.ps()) == 2
        rc = s.stop(signal.SIGTERM)
        assert rc == 0, (rc, s.log()[-2000:])
        log = s.log()
        assert "unloaded a:latest: reason shutdown" in log, log[-3000:]
        assert "unloaded b:latest: reason shutdown" in log, log[-3000:]
        s.start()
        assert s.ps() == [], s.ps()
        assert cu.stats(s)["server"]["loads"] == 0
    finally:
        s.close()


# spec D.38 (idle timer firing unloads) is covered by test_residency.py
# test_keep_alive_2s_then_gone and test_countdown_starts_when_idle above.
# spec D.40 is not applicable: dwell's runner is a thread inside the server, not a child
# process that can crash or hang on its own.


def main():
    global S, SLOW
    ds.need_env()
    tmp = tempfile.mkdtemp(prefix="dwell-conf-ka-")
    try:
        SLOW = cu.make_model(tmp, "slow.gguf")
        with ds.Server() as s:
            S = s
            s.create("m", ds.STORIES)
            s.create("slow", SLOW)
            ds.main([
                test_json_number_is_seconds_fractions_allowed, test_json_string_go_durations,
                test_numeric_string_is_seconds_and_garbage_is_400, test_negative_means_forever,
                test_null_and_absent_mean_not_specified, test_wrong_types_are_400,
                test_v1_endpoints_honour_keep_alive, test_precedence_on_load,
                test_sticky_value_last_writer_wins,
                test_keep_alive_0_from_another_client_waits_for_in_flight,
                test_countdown_starts_when_idle, test_next_request_cancels_the_timer,
                test_generate_load_form, test_chat_load_form,
                test_unload_form_does_not_load, test_chat_unload_form_and_unknown_model,
                test_prompt_with_keep_alive_0_answers_then_unloads,
                test_embed_empty_input_loads, test_delete_unloads,
                test_expires_at_set_at_idle_transition,
                test_expires_at_of_first_request_moves_with_now,
                test_forever_is_about_292_years_ahead, test_centuries_keep_alive_does_not_wrap,
                test_sigterm_unloads_everything_and_nothing_persists])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
