"""Conformance: the scheduler's identity, reuse, reload and loading (spec C), the loaded-model
limit, memory fit and eviction (spec E) and parallel slots and the queue (spec F), against a
real `dwell serve`. DESIGN.md §2 and §4 win where they differ (departures 2-6, 11)."""
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402
import confutil as cu  # noqa: E402
from confutil import GREEDY, entry  # noqa: E402

# a floor under every decode step, so that long generations overlap the requests that
# follow them whatever the machine's speed (DWELL_DEBUG_STEP_DELAY)
ds.DEFAULT_ENV["DWELL_DEBUG_STEP_DELAY"] = "3ms"

SLOW = None   # a synthetic model slow enough to overlap requests
SLOW2 = None  # another one (different blob)
QWEN = os.path.join(ds.MODELS, "tiny-qwen2-q8_0.gguf")
RAND = os.path.join(ds.MODELS, "llama-2-tiny-random.gguf")
Q40 = os.path.join(ds.MODELS, "tiny-llama-q4_0.gguf")


def ok(r):
    assert r.status == 200, r
    return r.json()


def loads(s):
    return cu.stats(s)["server"]["loads"]


# ---- C: identity, reuse, reload, loading ----

def test_aliases_share_one_loaded_model():
    # spec C.23: names whose manifests point at the same weights share one loaded model
    # (copies, and derived models that only change SYSTEM/TEMPLATE); ps shows the loader's
    with ds.Server() as s:
        s.create("a", ds.STORIES)
        r = s.post("/api/copy", {"source": "a", "destination": "b"})
        assert r.status == 200, r
        r = s.post("/api/create", {"model": "c", "from": "a", "system": "Be brief.",
                                   "stream": False})
        assert r.status == 200, r
        for name in ("a", "b", "c", "b:latest"):
            ok(s.generate(name, options=GREEDY))
        assert s.ps_names() == ["a:latest"], s.ps()
        st = cu.stats(s)
        assert st["server"]["loads"] == 1 and st["models"][0]["cold_loads"] == 1, st
        assert st["models"][0]["warm_hits"] >= 3, st["models"][0]


def test_resident_model_is_reused_warm():
    # spec C.24 and 0.2: a request for a resident model takes it straight away
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        o = ok(s.generate("m", options=GREEDY))
        cold = o["load_duration"]
        for _ in range(3):
            o = ok(s.generate("m", options=GREEDY))
            assert o["load_duration"] < 50_000_000, o  # < 50 ms: no queue, no load
        ms = cu.model_stats(s, "m:latest")
        assert ms["cold_loads"] == 1 and ms["warm_hits"] == 3, (ms, cold)


def test_sampling_options_never_reload():
    # spec C.25: sampling options (and GPU-only options dwell ignores) never reload
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        ok(s.generate("m", options=GREEDY))
        for opts in ({"temperature": 0.9}, {"top_k": 3}, {"top_p": 0.5}, {"min_p": 0.1},
                     {"seed": 7}, {"stop": ["zz"]}, {"num_predict": 2},
                     {"repeat_penalty": 1.3}, {"repeat_last_n": 8},
                     {"presence_penalty": 0.5}, {"frequency_penalty": 0.5}, {"num_keep": 2},
                     {"num_gpu": 99}, {"main_gpu": 0}, {"use_mmap": False},
                     {"use_mlock": True}, {"num_gpu": -1}):
            o = dict(opts)
            o.setdefault("num_predict", 2)
            ok(s.generate("m", options=o))
        assert loads(s) == 1, (cu.stats(s)["server"], s.log()[-2000:])


def test_load_time_options_reload():
    # spec C.25: a different num_batch or num_thread reloads the model (once idle)
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        ok(s.generate("m", options=GREEDY))
        ok(s.generate("m", options=dict(GREEDY, num_thread=1)))
        assert loads(s) == 2, cu.stats(s)["server"]
        ok(s.generate("m", options=dict(GREEDY, num_thread=1)))
        assert loads(s) == 2
        ok(s.generate("m", options=dict(GREEDY, num_batch=64)))
        assert loads(s) == 3, cu.stats(s)["server"]
        assert "reason reload" in s.log(), s.log()[-2000:]
        assert len(s.ps()) == 1, s.ps()


def test_num_ctx_larger_reloads_smaller_does_not():
    # spec C.25/C.26/C.32 with departure 6: only a larger num_ctx reloads; num_ctx is clamped
    # to [4, trained context] before comparing
    with ds.Server() as s:
        s.create("m", ds.STORIES)
        ok(s.generate("m", options=dict(GREEDY, num_ctx=256)))
        assert entry(s, "m:latest")["context_length"] == 256
        ok(s.generate("m", options=dict(GREEDY, num_ctx=128)))
        e = entry(s, "m:latest")
        assert e["context_length"] == 256 and loads(s) == 1, (e, cu.stats(s)["server"])
        ok(s.generate("m", options=dict(GREEDY, num_ctx=300)))
        e = entry(s, "m:latest")
        assert e["context_length"] == 300 and loads(s) == 2, e
        train = cu.model_stats(s, "m:latest")["n_ctx_train"]
        ok(s.generate("m", options=dict(GREEDY, num_ctx=train * 10)))
        assert entry(s, "m:latest")["context_length"] == train and loads(s) == 3
        ok(s.generate("m", options=dict(GREEDY, num_ctx=train * 20)))
        assert loads(s) == 3, "equal after clamping must not reload"
        ok(s.generate("m", options=GREEDY))  # the default (trained context here) is equal
        assert loads(s) == 3, "the default num_ctx must not reload an equal context"
        ok(s.post("/api/generate", {"model": "m", "keep_alive": 0}))
        s.wait_for(lambda: not s.ps(), what="unload")
        ok(s.generate("m", options=dict(GREEDY, num_ctx=1)))
        assert entry(s, "m:latest")["context_length"] == 4, s.ps()


def test_reload_waits_for_in_flight():
    # spec C.27: the old instance first finishes its in-flight requests, then reloads
    with ds.Server() as s:
        s.create("slow", SLOW)
        ok(s.generate("slow", options={"num_predict": 1, "num_ctx": 512}))
        st = cu.Stream(s, "slow", n=300, body={"model": "slow", "prompt": "Once upon a time",
                                               "options": {"num_predict": 300, "temperature": 0,
                                                           "num_ctx": 512}}).wait_first()
        t0 = time.time()
        o = ok(s.generate("slow", options={"num_predict": 2, "num_ctx": 1024}))
        st.join()
        assert st.status == 200 and st.done() and st.lines[-1]["eval_count"] == 300, \
            st.lines[-1:]
        assert st.t_end <= time.time() and o["load_duration"] > 0.2e9, (o, time.time() - t0)
        assert entry(s, "slow:latest")["context_length"] == 1024 and loads(s) == 2, s.ps()


# spec C.28 "only one load at a time" is replaced by DESIGN §2 ("loads of different models
# may run concurrently"); local GGUF loads finish in milliseconds, so it is not observable
# over HTTP. The rest of C.28 (a departed client's pending request is dropped) is tested:

def test_pending_request_of_departed_client_is_dropped():
    # spec C.28: a pending request whose client has disconnected is dropped (never loads)
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as s:
        s.create("slow", SLOW)
        s.create("other", ds.STORIES)
        ok(s.generate("slow", options={"num_predict": 1}))
        st = cu.Stream(s, "slow", n=300).wait_first()
        rc = cu.RawClient(s, "/api/generate", {"model": "other", "prompt": "x",
                                               "options": {"num_predict": 1}})
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] >= 1, timeout=10,
                   what="the request for other to wait")
        rc.close()
        st.join()
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] == 0, timeout=10,
                   what="the queue to empty")
        time.sleep(0.3)
        assert loads(s) == 1 and s.ps_names() == ["slow:latest"], (s.ps_names(),
                                                                   cu.stats(s)["server"])


def test_concurrent_requests_one_load():
    # spec C.29: concurrent requests for a model that is not resident make one load
    with ds.Server() as s:
        s.create("m", SLOW)
        out = []

        def go():
            out.append(s.generate("m", options={"num_predict": 3}).status)
        ts = [threading.Thread(target=go) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert out == [200] * 4, out
        assert loads(s) == 1 and cu.model_stats(s, "m:latest")["cold_loads"] == 1


def test_load_continues_while_anyone_waits():
    # spec C.30 with departure 5: a load is cancelled only when nobody waits for it; here
    # the load waits in the queue (the only slot is busy), the first requester leaves, the
    # second still gets its answer from the model loaded for both
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as s:
        s.create("slow", SLOW)
        s.create("other", ds.STORIES)
        ok(s.generate("slow", options={"num_predict": 1}))
        st = cu.Stream(s, "slow", n=300).wait_first()
        quitter = cu.RawClient(s, "/api/generate", {"model": "other", "prompt": "x",
                                                    "options": {"num_predict": 1}})
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] >= 1, timeout=10,
                   what="the first waiter")
        stayer = cu.Stream(s, "other", n=3)
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] >= 2, timeout=10,
                   what="the second waiter")
        quitter.close()
        st.join()
        stayer.join()
        assert stayer.status == 200 and stayer.done(), stayer.lines[-1:]
        assert s.ps_names() == ["other:latest"], s.ps()


# spec C.31 (OLLAMA_LOAD_TIMEOUT as a stall timeout) cannot be provoked over HTTP: a local
# GGUF maps in milliseconds. Its parsing is in test_conf_env.py; the timeout itself is in
# tests/unit/test_sched_logic.c with a fake backend.

def test_context_is_num_ctx_times_slots():
    # spec C.33: the context memory is num_ctx x slots; ps context_length is per slot
    # slow.gguf: 8 layers, 8 heads of 64, 2 KV heads → 128 K and 128 V values per token
    # and layer, f16: 1024 tokens take 8 * 1024 * 256 * 2 bytes per slot
    per_slot = 8 * 1024 * 256 * 2
    sizes = {}
    for par in ("1", "3"):
        with ds.Server(env={"OLLAMA_NUM_PARALLEL": par}) as s:
            s.create("m", SLOW)
            ok(s.generate("m", options={"num_predict": 1, "num_ctx": 1024}))
            e = entry(s, "m:latest")
            assert e["context_length"] == 1024 and e["slots"] == int(par), e
            sizes[par] = cu.model_stats(s, "m:latest")["memory"]["kv_bytes"]
    assert sizes["3"] - sizes["1"] == 2 * per_slot, (sizes, per_slot)


# spec C.34 (retry after a GPU out-of-memory error, evicting everything) is not applicable:
# dwell admits a model against its memory budget before loading, on the CPU.

# ---- E: loaded-model limit, memory fit, eviction ----

def test_max_loaded_models_caps_the_count():
    # spec E.41: with N resident, a different model evicts one even if memory is free
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "2"}) as s:
        for name, path in (("a", ds.STORIES), ("b", ds.TINY), ("c", QWEN)):
            s.create(name, path)
            ok(s.generate(name, options=GREEDY))
        assert len(s.ps()) == 2 and "c:latest" in s.ps_names(), s.ps()
        st = cu.stats(s)["server"]
        assert st["evictions"] == 1 and st["max_loaded"] == 2, st


def test_no_count_cap_by_default():
    # spec E.42/E.49 with departure 11: OLLAMA_MAX_LOADED_MODELS defaults to 0, no count cap
    with ds.Server() as s:
        names = []
        for name, path in (("a", ds.STORIES), ("b", ds.TINY), ("c", QWEN), ("d", RAND),
                           ("e", Q40)):
            s.create(name, path)
            ok(s.generate(name, options=GREEDY))
            names.append(name + ":latest")
        assert sorted(s.ps_names()) == names, s.ps()
        st = cu.stats(s)["server"]
        assert st["max_loaded"] == 0 and st["evictions"] == 0, st


def probe_sizes(models):
    """Loads every (name, path) on a server without limits; returns {name: size}, models_dir
    and the server (killed, directory kept)."""
    p = ds.Server()
    for name, path in models:
        p.create(name, path)
        ok(p.generate(name, options=GREEDY))
    sizes = {m["name"].split(":")[0]: m["size"] for m in p.ps()}
    p.kill()
    return sizes, p


def test_larger_than_budget_fails_at_once():
    # spec E.43 with DESIGN §2: a model larger than the whole budget fails at once, naming
    # its size and the budget; nothing resident is evicted for it
    sizes, p = probe_sizes([("small", ds.STORIES), ("slow", SLOW)])
    budget = sizes["slow"] // 2
    try:
        with ds.Server(env={"DWELL_MEMORY_BUDGET": str(budget)}, models_dir=p.models_dir) as s:
            ok(s.generate("small", options=GREEDY))
            t0 = time.time()
            r = s.generate("slow", options=GREEDY)
            assert r.status == 500 and time.time() - t0 < 2, r
            msg = r.json()["error"]
            assert "MiB" in msg and "budget" in msg and "slow" in msg, msg
            assert s.ps_names() == ["small:latest"], s.ps()
    finally:
        p.close()


def test_lru_eviction_not_shortest_keep_alive():
    # spec E.45 with departure 3: the least recently used idle model leaves, whatever the
    # keep-alives (Ollama would evict the shortest keep-alive, "a")
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "2"}) as s:
        s.create("a", ds.STORIES)
        s.create("b", ds.TINY)
        s.create("c", QWEN)
        ok(s.generate("a", keep_alive="2m", options=GREEDY))
        ok(s.generate("b", keep_alive="1h", options=GREEDY))
        ok(s.generate("a", options=GREEDY))  # a is now the most recently used
        ok(s.generate("c", options=GREEDY))
        assert sorted(s.ps_names()) == ["a:latest", "c:latest"], s.ps()
        assert "evicting b:latest" in s.log(), s.log()[-2000:]


def test_pinned_never_evicted_503_names_them():
    # departure 2 (spec E.45 says -1 can be evicted): a pinned model is never evicted for
    # another one; a load that could fit only by evicting pinned models fails at once with
    # 503 naming the pinned models and their sizes
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "2"}) as s:
        for n, p in (("a", ds.STORIES), ("b", ds.TINY), ("c", QWEN)):
            s.create(n, p)
        ok(s.generate("a", keep_alive=-1, options=GREEDY))
        ok(s.generate("b", options=GREEDY))
        ok(s.generate("c", options=GREEDY))  # b (unpinned) leaves, a stays
        assert sorted(s.ps_names()) == ["a:latest", "c:latest"], s.ps()
        ok(s.generate("c", keep_alive="-1m", options=GREEDY))
        sizes = {m["name"]: m["size"] for m in s.ps()}
        t0 = time.time()
        r = s.generate("b", options=GREEDY)
        assert r.status == 503 and time.time() - t0 < 2, r
        msg = r.json()["error"]
        assert "a:latest" in msg and "c:latest" in msg and "pinned" in msg, msg
        assert "MiB" in msg or "KiB" in msg, msg
        assert sorted(s.ps_names()) == ["a:latest", "c:latest"], s.ps()
        assert all(m["pinned"] for m in s.ps()) and len(sizes) == 2
    sizes, p = probe_sizes([("a", ds.STORIES), ("slow", SLOW)])
    try:
        budget = sizes["slow"] + sizes["a"] // 2
        with ds.Server(env={"DWELL_MEMORY_BUDGET": str(budget)}, models_dir=p.models_dir) as s:
            ok(s.generate("a", keep_alive=-1, options=GREEDY))
            r = s.generate("slow", options=GREEDY)
            assert r.status == 503, r
            msg = r.json()["error"]
            assert "a:latest" in msg and "budget" in msg, msg
            assert s.ps_names() == ["a:latest"], s.ps()
    finally:
        p.close()


def test_budget_evicts_as_many_as_needed():
    # spec E.46 (dwell evicts all the victims it needs in one decision, LRU first)
    sizes, p = probe_sizes([("a", ds.STORIES), ("b", ds.TINY), ("c", QWEN), ("slow", SLOW)])
    try:
        budget = sizes["slow"] + max(sizes["a"], sizes["b"], sizes["c"]) + 1024
        with ds.Server(env={"DWELL_MEMORY_BUDGET": str(budget)}, models_dir=p.models_dir) as s:
            for n in ("a", "b", "c"):
                ok(s.generate(n, options=GREEDY))
            assert len(s.ps()) == 3, s.ps()
            ok(s.generate("c", options=GREEDY))  # c most recent
            ok(s.generate("slow", options=GREEDY))
            names = sorted(s.ps_names())
            assert names == ["c:latest", "slow:latest"], (names, sizes, budget)
            st = cu.stats(s)["server"]
            assert st["evictions"] == 2 and st["models_bytes"] <= budget, st
    finally:
        p.close()


def test_busy_victim_finishes_first():
    # spec E.47: an eviction waits for the victim's in-flight requests (which finish whole)
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as s:
        s.create("slow", SLOW)
        s.create("b", ds.STORIES)
        ok(s.generate("slow", options={"num_predict": 1}))
        st = cu.Stream(s, "slow", n=300).wait_first()
        late = []

        def late_request():  # arrives while slow drains: served later, not refused
            s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] >= 1, what="b waiting")
            late.append(s.generate("slow", options={"num_predict": 2, "temperature": 0}))
        th = threading.Thread(target=late_request)
        th.start()
        o = ok(s.generate("b", options=GREEDY))
        st.join()
        assert st.status == 200 and st.lines[-1]["eval_count"] == 300, st.lines[-1:]
        assert o["load_duration"] > 0.2e9, o  # it waited for the victim
        th.join(120)
        assert late and late[0].status == 200, late
        assert s.ps_names() == ["slow:latest"], s.ps()
        assert cu.stats(s)["server"]["evictions"] == 2, cu.stats(s)["server"]


def test_every_residency_change_is_logged_and_counted():
    # DESIGN §2: every load, unload, eviction and expiry is logged with its reason and counted
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as s:
        s.create("a", ds.STORIES)
        s.create("b", ds.TINY)
        ok(s.generate("a", keep_alive="300ms", options=GREEDY))
        s.wait_for(lambda: not s.ps(), timeout=10, what="expiry")
        ok(s.generate("a", options=GREEDY))
        ok(s.generate("b", options=GREEDY))          # evicts a
        ok(s.generate("b", keep_alive=0, options=GREEDY))
        s.wait_for(lambda: not s.ps(), timeout=10, what="keep_alive 0")
        ok(s.generate("a", options=GREEDY))
        ok(s.post("/api/generate", {"model": "a", "keep_alive": 0}))
        s.wait_for(lambda: not s.ps(), timeout=10, what="explicit unload")
        st = cu.stats(s)["server"]
        assert (st["loads"], st["unloads"], st["evictions"], st["expiries"]) == (4, 4, 1, 1), st
        log = s.log()
        for reason in ("reason expired", "reason evicted", "reason keep_alive 0",
                       "reason requested"):
            assert reason in log, (reason, log[-3000:])
        assert log.count("sched: loaded ") == 4, log[-3000:]


# spec E.44, E.48, E.50 (GPU fit, VRAM recovery, multi-GPU placement) are not applicable to
# a CPU-only server.

# ---- F: slots and the queue ----

def test_one_slot_by_default_and_0_is_1():
    # spec F.51: OLLAMA_NUM_PARALLEL defaults to 1, and 0 means 1; a second request waits
    # for the slot (FIFO), it is not refused
    for env in ({}, {"OLLAMA_NUM_PARALLEL": "0"}):
        with ds.Server(env=env) as s:
            assert cu.stats(s)["server"]["num_parallel"] == 1
            s.create("slow", SLOW)
            ok(s.generate("slow", options={"num_predict": 1}))
            assert entry(s, "slow:latest")["slots"] == 1
            if env:
                continue
            a = cu.Stream(s, "slow", n=60).wait_first()
            b = cu.Stream(s, "slow", n=60)
            a.join()
            b.join()
            assert a.status == 200 and b.status == 200, (a.status, b.status)
            # b's first token comes only after a's last one (one slot)
            assert b.times[0] >= a.times[-1] - 0.05, (b.times[0], a.times[-1])


def test_waiters_are_served_in_arrival_order():
    # spec 0.3 and F.51: pending loads are handled FIFO, and requests waiting for a slot are
    # served roughly FIFO
    with ds.Server(env={"OLLAMA_MAX_LOADED_MODELS": "1"}) as s:
        s.create("slow", SLOW)
        s.create("b", ds.STORIES)
        s.create("c", ds.TINY)
        ok(s.generate("slow", options={"num_predict": 1}))
        a = cu.Stream(s, "slow", n=300).wait_first()
        wb = cu.Stream(s, "b", n=2)
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] >= 1, what="b waiting")
        wc = cu.Stream(s, "c", n=2)
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] >= 2, what="c waiting")
        for st in (a, wb, wc):
            st.join()
            assert st.status == 200 and st.done(), st.lines[-1:]
        log = s.log()
        assert 0 < log.index("loading b:latest") < log.index("loading c:latest"), log[-2500:]
        assert wb.times[-1] <= wc.times[0], (wb.times, wc.times)
    with ds.Server() as s:
        s.create("slow", SLOW)
        ok(s.generate("slow", options={"num_predict": 1}))
        a = cu.Stream(s, "slow", n=300).wait_first()
        order = []
        streams = []
        for i in range(3):
            streams.append(cu.Stream(s, "slow", n=5))
            s.wait_for(lambda: (entry(s, "slow:latest") or {}).get("in_flight", 0) >= 2 + i,
                       what="waiter %d" % i)
        a.join()
        for st in streams:
            st.join()
            assert st.status == 200, st.status
            order.append(st.times[0])
        assert order == sorted(order), order


def test_queue_bounds_load_waits_too():
    # spec F.53 with departure 4: OLLAMA_MAX_QUEUE bounds every waiting request; the 503
    # has Ollama's text (two spaces)
    env = {"OLLAMA_MAX_LOADED_MODELS": "1", "OLLAMA_MAX_QUEUE": "1"}
    with ds.Server(env=env) as s:
        s.create("slow", SLOW)
        s.create("b", ds.STORIES)
        s.create("c", ds.TINY)
        ok(s.generate("slow", options={"num_predict": 1}))
        st = cu.Stream(s, "slow", n=300).wait_first()   # holds the model and its slot
        wb = cu.Stream(s, "b", n=2)                      # waits for a load: queue 1
        s.wait_for(lambda: cu.stats(s)["server"]["queue_depth"] >= 1, timeout=10,
                   what="a waiting request")
        t0 = time.time()
        r = s.generate("c", options=GREEDY)
        assert r.status == 503, r
        assert r.json()["error"] == ("server busy, please try again.  maximum pending "
                                     "requests exceeded"), r
        assert time.time() - t0 < 1, time.time() - t0
        st.join()
        wb.join()
        assert wb.status == 200 and wb.done(), wb.lines[-1:]
        assert cu.stats(s)["server"]["rejected_busy"] == 1


def test_default_queue_is_512():
    # spec F.53 / §2: OLLAMA_MAX_QUEUE defaults to 512
    with ds.Server() as s:
        assert cu.stats(s)["server"]["max_queue"] == 512


def test_different_models_run_at_the_same_time():
    # spec F.54: two resident models each decode in parallel (one slot each); no replicas
    with ds.Server() as s:
        s.create("x", SLOW)
        s.create("y", SLOW2)
        ok(s.generate("x", options={"num_predict": 1}))
        ok(s.generate("y", options={"num_predict": 1}))
        a = cu.Stream(s, "x", n=400)
        b = cu.Stream(s, "y", n=400)
        a.join()
        b.join()
        assert a.status == 200 and b.status == 200
        overlap = min(a.times[-1], b.times[-1]) - max(a.times[0], b.times[0])
        span = max(a.times[-1], b.times[-1]) - min(a.times[0], b.times[0])
        assert overlap > 0.4 * span, (overlap, span)
        assert len(s.ps()) == 2 and loads(s) == 2, s.ps()


# spec F.52 (embedding-only models get one slot) is not applicable: dwell has no
# embedding-only models.


def main():
    global SLOW, SLOW2
    ds.need_env()
    tmp = tempfile.mkdtemp(prefix="dwell-conf-sched-")
    try:
        SLOW = cu.make_model(tmp, "slow.gguf")
        SLOW2 = cu.make_model(tmp, "slow2.gguf", layers="7")
        ds.main([
            test_aliases_share_one_loaded_model, test_resident_model_is_reused_warm,
            test_sampling_options_never_reload, test_load_time_options_reload,
            test_num_ctx_larger_reloads_smaller_does_not, test_reload_waits_for_in_flight,
            test_pending_request_of_departed_client_is_dropped,
            test_concurrent_requests_one_load, test_load_continues_while_anyone_waits,
            test_context_is_num_ctx_times_slots, test_max_loaded_models_caps_the_count,
            test_no_count_cap_by_default, test_larger_than_budget_fails_at_once,
            test_lru_eviction_not_shortest_keep_alive, test_pinned_never_evicted_503_names_them,
            test_budget_evicts_as_many_as_needed, test_busy_victim_finishes_first,
            test_every_residency_change_is_logged_and_counted,
            test_one_slot_by_default_and_0_is_1, test_waiters_are_served_in_arrival_order,
            test_queue_bounds_load_waits_too,
            test_default_queue_is_512, test_different_models_run_at_the_same_time])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
