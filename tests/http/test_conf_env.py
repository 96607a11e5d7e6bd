"""Conformance: the server's environment (spec section 2 with DESIGN.md §2 and §4): defaults,
parsing (whitespace and quotes stripped, a bare keep-alive number is minutes, the `d` unit,
invalid values stop the server naming the value), OLLAMA_HOST/MODELS/DEBUG/ORIGINS, removed
variables ignored, and dwell's memory budget: DWELL_MEMORY_BUDGET sizes and a fake cgroup
tree (v2 memory.max, v1 memory.limit_in_bytes) under DWELL_CGROUP_ROOT."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402
import confutil as cu  # noqa: E402
from confutil import GREEDY, entry  # noqa: E402

SLOW = None
GiB = 1 << 30
MiB = 1 << 20


def refused(env, timeout=30):
    """Runs `dwell serve` with env (on top of a clean one) and expects it to refuse to start."""
    e = {k: v for k, v in os.environ.items()
         if not (k.startswith("OLLAMA_") or k.startswith("DWELL_MEMORY")
                 or k == "DWELL_CGROUP_ROOT")}
    e.update({"OLLAMA_HOST": "127.0.0.1:0", "OLLAMA_MODELS": "/tmp/dwell-conf-env-none"})
    e.update(env)
    p = subprocess.run([ds.BIN, "serve"], env=e, capture_output=True, timeout=timeout)
    return p.returncode, p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")


def settings_line(s):
    return "\n".join(l for l in s.log_lines if "settings:" in l)


def budget(s):
    st = cu.stats(s)["server"]
    return st["budget_bytes"], st["budget_source"]


# ---- OLLAMA_KEEP_ALIVE ----

def test_keep_alive_env_bare_number_is_minutes():
    # spec §2 / A.12 with DESIGN §2: a bare number is minutes, shown with its unit in the log
    for raw, shown in [("2", "2m0s"), ("300", "5h0m0s"), ("1.5", "1m30s"), ("1d", "24h0m0s"),
                       ("1h30m", "1h30m0s"), ("45s", "45s"), (" '10m' ", "10m0s"),
                       ('"3"', "3m0s")]:
        with ds.Server(env={"OLLAMA_KEEP_ALIVE": raw}) as s:
            assert "OLLAMA_KEEP_ALIVE=%s (OLLAMA_KEEP_ALIVE)" % shown in settings_line(s), \
                (raw, settings_line(s))
            if raw == "2":
                s.create("m", ds.STORIES)
                ok = s.generate("m", options=GREEDY)
                assert ok.status == 200
                e = entry(s, "m:latest")
                assert e["keep_alive"] == "2m0s" and e["keep_alive_source"] == "server", e


def test_keep_alive_env_default_negative_and_zero():
    # spec §2: default 5m; negative = forever (pinned); 0 = unload after every request
    with ds.Server() as s:
        assert "OLLAMA_KEEP_ALIVE=5m0s (default)" in settings_line(s), settings_line(s)
    with ds.Server(env={"OLLAMA_KEEP_ALIVE": "-1"}) as s:
        assert "OLLAMA_KEEP_ALIVE=forever" in settings_line(s), settings_line(s)
        s.create("m", ds.STORIES)
        s.generate("m", options=GREEDY)
        e = entry(s, "m:latest")
        assert e["pinned"] is True and e["keep_alive_source"] == "server", e
    with ds.Server(env={"OLLAMA_KEEP_ALIVE": "0"}) as s:
        s.create("m", ds.STORIES)
        r = s.generate("m", options=GREEDY)
        assert r.status == 200 and r.json()["response"], r
        s.wait_for(lambda: entry(s, "m:latest") is None, timeout=10, what="unload")


def test_invalid_values_refuse_to_start():
    # DESIGN §2 (departure from spec §2's silent fallback): an unparsable value stops the
    # server with exit 1 and a message naming the variable and the value
    cases = [("OLLAMA_KEEP_ALIVE", "???"), ("OLLAMA_KEEP_ALIVE", "1w"),
             ("OLLAMA_LOAD_TIMEOUT", "soon"), ("OLLAMA_MAX_LOADED_MODELS", "-1"),
             ("OLLAMA_MAX_LOADED_MODELS", "0x10"), ("OLLAMA_NUM_PARALLEL", "two"),
             ("OLLAMA_MAX_QUEUE", "1e3"), ("OLLAMA_CONTEXT_LENGTH", "-5"),
             ("OLLAMA_KV_CACHE_TYPE", "q3_weird"), ("OLLAMA_DEBUG", "verbose"),
             ("OLLAMA_HOST", "127.0.0.1:70000"), ("DWELL_MEMORY_BUDGET", "lots"),
             ("DWELL_MEMORY_BUDGET", "12XB"), ("DWELL_MEMORY_BUDGET", "-5GiB"),
             ("DWELL_MEMORY_RESERVE", "some"), ("DWELL_DEBUG_STEP_DELAY", "slow"),
             ("DWELL_DEBUG_STEP_DELAY", "11s")]
    for k, v in cases:
        rc, out = refused({k: v})
        assert rc == 1, (k, v, rc, out)
        assert k in out and v in out, (k, v, out)


# ---- other OLLAMA_* variables ----

def test_counts_and_queue_settings():
    # spec §2: OLLAMA_MAX_LOADED_MODELS, OLLAMA_NUM_PARALLEL, OLLAMA_MAX_QUEUE
    env = {"OLLAMA_MAX_LOADED_MODELS": "3", "OLLAMA_NUM_PARALLEL": "4",
           "OLLAMA_MAX_QUEUE": "7"}
    with ds.Server(env=env) as s:
        st = cu.stats(s)["server"]
        assert (st["max_loaded"], st["num_parallel"], st["max_queue"]) == (3, 4, 7), st
        s.create("m", ds.STORIES)
        s.generate("m", options=GREEDY)
        assert entry(s, "m:latest")["slots"] == 4
    with ds.Server() as s:
        st = cu.stats(s)["server"]
        assert (st["max_loaded"], st["num_parallel"], st["max_queue"]) == (0, 1, 512), st


def test_load_timeout_parsing():
    # spec §2: OLLAMA_LOAD_TIMEOUT parses like the keep-alive; 0 or negative = no timeout
    for raw, shown in [(None, "5m0s"), ("0", "none"), ("-1", "none"), ("10", "10m0s"),
                       ("30s", "30s")]:
        env = {"OLLAMA_LOAD_TIMEOUT": raw} if raw is not None else {}
        with ds.Server(env=env) as s:
            assert "OLLAMA_LOAD_TIMEOUT=%s " % shown in settings_line(s), (raw,
                                                                          settings_line(s))
            if raw == "30s":
                s.create("m", ds.STORIES)
                assert s.generate("m", options=GREEDY).status == 200


def test_debug_step_delay():
    # dwell's own DWELL_DEBUG_STEP_DELAY: every decode step takes at least that long, and the
    # server says so in its log
    with ds.Server(env={"DWELL_DEBUG_STEP_DELAY": "40ms"}) as s:
        s.create("m", ds.STORIES)
        s.generate("m", options=GREEDY)
        t0 = time.time()
        o = s.generate("m", options={"temperature": 0, "num_predict": 12}).json()
        took = time.time() - t0
        assert o["eval_count"] == 12 and took >= 12 * 0.04, (o["eval_count"], took)
        assert "DWELL_DEBUG_STEP_DELAY=40ms" in s.log(), s.log()[-1500:]
    with ds.Server() as s:
        assert "DWELL_DEBUG_STEP_DELAY" not in s.log(), s.log()[-1500:]


def test_context_length_default_and_env():
    # DESIGN §4 / spec C.32: default num_ctx 4096, OLLAMA_CONTEXT_LENGTH sets it
    for env, want in [({}, 4096), ({"OLLAMA_CONTEXT_LENGTH": "1000"}, 1000),
                      ({"OLLAMA_CONTEXT_LENGTH": " 2048 "}, 2048),
                      ({"OLLAMA_CONTEXT_LENGTH": "0"}, 4096)]:  # 0 = automatic (CPU: 4096)
        with ds.Server(env=env) as s:
            s.create("m", SLOW)  # trained context 8192
            s.generate("m", options={"num_predict": 1})
            assert entry(s, "m:latest")["context_length"] == want, (env, s.ps())
            s.generate("m", options={"num_predict": 1, "num_ctx": 600})
            assert entry(s, "m:latest")["context_length"] == want  # smaller: served as is


def test_kv_cache_type():
    # DESIGN §4: OLLAMA_KV_CACHE_TYPE f16 (default) or f32; f32 doubles the KV cache
    kv = {}
    for t in (None, "f16", "F32"):
        with ds.Server(env={"OLLAMA_KV_CACHE_TYPE": t} if t else {}) as s:
            s.create("m", SLOW)
            s.generate("m", options={"num_predict": 1, "num_ctx": 1024})
            ms = cu.model_stats(s, "m:latest")
            kv[t] = (ms["kv_type"], ms["memory"]["kv_bytes"])
    assert kv[None][0] == "f16" and kv["f16"] == kv[None] and kv["F32"][0] == "f32", kv
    per_slot_f16 = 8 * 1024 * 256 * 2
    assert kv["F32"][1] - kv[None][1] == per_slot_f16, kv


def test_host_forms():
    # spec §2: OLLAMA_HOST with a scheme, localhost, quotes; the log names the address
    for raw in ("http://127.0.0.1:0", "localhost:0", "'127.0.0.1:0'"):
        with ds.Server(env={"OLLAMA_HOST": raw}) as s:
            assert s.get("/").body == b"Ollama is running", raw


def test_host_ipv6_loopback():
    # spec §2: IPv6 is accepted with brackets (and a port)
    import re
    import socket
    import threading
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        print("no IPv6 loopback here: skipped")
        return
    e = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
    e.update({"OLLAMA_HOST": "[::1]:0", "OLLAMA_MODELS": "/tmp/dwell-conf-env-none"})
    p = subprocess.Popen([ds.BIN, "serve"], env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        port = []
        done = threading.Event()

        def read():
            for raw in p.stdout:
                m = re.search(r"listening on \[?::1\]?:(\d+)", raw.decode(errors="replace"))
                if m and not port:
                    port.append(int(m.group(1)))
                    done.set()
            done.set()
        threading.Thread(target=read, daemon=True).start()
        assert done.wait(20) and port, "no listening line"
        import http.client
        c = http.client.HTTPConnection("::1", port[0], timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"Ollama is running"
        c.close()
    finally:
        p.kill()
        p.wait(10)


def test_models_default_is_home_ollama_models():
    # spec §2 / K.85: OLLAMA_MODELS defaults to $HOME/.ollama/models
    home = tempfile.mkdtemp(prefix="dwell-home-")
    try:
        with ds.Server(env={"OLLAMA_MODELS": "", "HOME": home}) as s:
            assert ("OLLAMA_MODELS=%s/.ollama/models" % home) in settings_line(s)
            s.create("m", ds.STORIES)
            man = os.path.join(home, ".ollama", "models", "manifests", "registry.ollama.ai",
                               "library", "m", "latest")
            assert os.path.isfile(man), os.listdir(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_debug_levels():
    # spec §2: OLLAMA_DEBUG empty/0/false = INFO, 1/true/2 = DEBUG
    for raw, debug in [("0", False), ("false", False), ("1", True), ("true", True),
                       ("2", True)]:
        with ds.Server(env={"OLLAMA_DEBUG": raw}) as s:
            s.create("m", ds.STORIES)
            s.generate("m", options=GREEDY)
            has = "level=DEBUG" in s.log()
            assert has == debug, (raw, s.log()[-1500:])


def test_origins_env_adds_to_builtin_list():
    # spec §2 OLLAMA_ORIGINS: comma-separated extra origins, wildcards allowed
    hdr = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    with ds.Server() as s:
        assert s.request("OPTIONS", "/api/generate", headers=hdr).status == 403
        assert s.request("GET", "/api/tags", headers={"Origin": "http://localhost:3000"}
                         ).status == 200
    with ds.Server(env={"OLLAMA_ORIGINS": "https://*.example.com, chrome-extension://*"}) as s:
        r = s.request("OPTIONS", "/api/generate", headers=hdr)
        assert r.status in (200, 204), r
        assert r.headers.get("access-control-allow-origin") in ("https://app.example.com",
                                                                "*"), r.headers
        r = s.request("GET", "/api/tags", headers={"Origin": "chrome-extension://abc"})
        assert r.status == 200, r
        r = s.request("GET", "/api/tags", headers={"Origin": "https://evil.test"})
        assert r.status == 403, r


def test_removed_and_gpu_variables_are_ignored():
    # spec §2: removed variables (and GPU-only ones, meaningless on a CPU server) are
    # accepted and ignored
    env = {"OLLAMA_MULTIUSER_CACHE": "1", "OLLAMA_NEW_ENGINE": "1", "OLLAMA_TMPDIR": "/nope",
           "OLLAMA_RUNNERS_DIR": "/nope", "OLLAMA_INTEL_GPU": "1", "OLLAMA_FLASH_ATTENTION": "1",
           "OLLAMA_SCHED_SPREAD": "1", "OLLAMA_GPU_OVERHEAD": "1000", "OLLAMA_NOPRUNE": "1",
           "OLLAMA_LLM_LIBRARY": "cpu", "CUDA_VISIBLE_DEVICES": "0", "OLLAMA_NOHISTORY": "1"}
    with ds.Server(env=env) as s:
        s.create("m", ds.STORIES)
        assert s.generate("m", options=GREEDY).status == 200


# ---- the memory budget ----

def test_memory_budget_sizes():
    # DESIGN §2: DWELL_MEMORY_BUDGET accepts decimal and binary units and plain bytes
    for raw, want in [("250MB", 250 * 10**6), ("8GiB", 8 * GiB), ("1073741824", GiB),
                      ("8g", 8 * GiB), ("512MiB", 512 * MiB), (" 1.5GiB ", int(1.5 * GiB)),
                      ("2gb", 2 * 10**9)]:
        with ds.Server(env={"DWELL_MEMORY_BUDGET": raw}) as s:
            assert budget(s) == (want, "DWELL_MEMORY_BUDGET"), (raw, budget(s))


def fake_cgroup(tmp, version, value):
    root = tempfile.mkdtemp(prefix="cg%d-" % version, dir=tmp)
    if version == 2:
        with open(os.path.join(root, "memory.max"), "w") as f:
            f.write(value + "\n")
        with open(os.path.join(root, "cgroup.controllers"), "w") as f:
            f.write("cpu memory pids\n")
    else:
        os.makedirs(os.path.join(root, "memory"))
        with open(os.path.join(root, "memory", "memory.limit_in_bytes"), "w") as f:
            f.write(value + "\n")
    return root


def ram_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def test_budget_follows_fake_cgroup_v2_and_v1(tmp):
    # DESIGN §2: budget = min(cgroup limit, RAM) - reserve (default 1 GiB, at most half the
    # limit); DWELL_MEMORY_BUDGET overrides; "max" / huge v1 values mean no limit
    ram = ram_bytes()
    assert ram > 4 * GiB, ram
    cases = [
        (2, str(3 * GiB), {}, 2 * GiB, "cgroup v2"),
        (2, str(3 * GiB), {"DWELL_MEMORY_RESERVE": "512MiB"}, 3 * GiB - 512 * MiB, "cgroup v2"),
        (2, str(GiB), {}, GiB // 2, "cgroup v2"),              # reserve cut to half
        (1, str(4 * GiB), {}, 3 * GiB, "cgroup v1"),
        (1, str(1536 * MiB), {"DWELL_MEMORY_RESERVE": "1024KiB"}, 1535 * MiB, "cgroup v1"),
        (2, "max", {}, ram - GiB, "RAM"),
        (1, "9223372036854771712", {}, ram - GiB, "RAM"),
        (2, str(3 * GiB), {"DWELL_MEMORY_BUDGET": "100MB"}, 100 * 10**6,
         "DWELL_MEMORY_BUDGET"),
    ]
    for version, value, extra, want, source in cases:
        root = fake_cgroup(tmp, version, value)
        env = dict(extra, DWELL_CGROUP_ROOT=root)
        with ds.Server(env=env) as s:
            got = budget(s)
            assert got == (want, source), (version, value, extra, got, want, source)


def self_cgroup(version):
    """This process's cgroup path for v2 ("0::/x") or v1's memory controller, or None."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) != 3:
                continue
            if version == 2 and parts[0] == "0" and parts[1] == "":
                return parts[2]
            if version == 1 and "memory" in parts[1].split(","):
                return parts[2]
    return None


def test_nested_cgroup_smallest_limit_wins(tmp):
    # DESIGN §2 / docs/residency.md: the smallest limit on the path from the process's own
    # cgroup up to the root counts (a limit on a parent slice too). Needs a non-root cgroup.
    ran = 0
    for version, base, fname in ((2, "", "memory.max"), (1, "memory", "memory.limit_in_bytes")):
        own = self_cgroup(version)
        if not own or own.strip("/") == "":
            continue
        for own_limit, root_limit in ((1536 * MiB, 3 * GiB), (3 * GiB, 1536 * MiB)):
            root = tempfile.mkdtemp(prefix="cgn%d-" % version, dir=tmp)
            d = os.path.join(root, base, own.strip("/"))
            os.makedirs(d)
            with open(os.path.join(d, fname), "w") as f:
                f.write("%d\n" % own_limit)
            with open(os.path.join(root, base, fname), "w") as f:
                f.write("%d\n" % root_limit)
            with ds.Server(env={"DWELL_CGROUP_ROOT": root,
                                "DWELL_MEMORY_RESERVE": "512MiB"}) as s:
                want = min(own_limit, root_limit) - 512 * MiB
                assert budget(s) == (want, "cgroup v%d" % version), (version, own, budget(s))
            ran += 1
    if not ran:
        print("this process is in the root cgroup: nested limits not exercised")


def test_cgroup_budget_is_enforced(tmp):
    # the budget from a fake cgroup limit really admits and refuses models
    root = fake_cgroup(tmp, 2, str(60 * MiB))
    env = {"DWELL_CGROUP_ROOT": root, "DWELL_MEMORY_RESERVE": "30MiB"}  # budget 30 MiB
    with ds.Server(env=env) as s:
        assert budget(s) == (30 * MiB, "cgroup v2"), budget(s)
        s.create("small", ds.STORIES)
        s.create("big", SLOW)  # about 52 MiB at num_ctx 4096
        assert s.generate("small", options=GREEDY).status == 200
        r = s.generate("big", options={"num_predict": 1})
        assert r.status >= 500, r
        msg = r.json()["error"]
        assert "30.0 MiB" in msg and "cgroup v2" in msg, msg
        assert s.ps_names() == ["small:latest"], s.ps()


def main():
    global SLOW
    ds.need_env()
    tmp = tempfile.mkdtemp(prefix="dwell-conf-env-")
    try:
        SLOW = cu.make_model(tmp, "slow.gguf", ctx="8192")

        def test_budget_follows_fake_cgroup():
            test_budget_follows_fake_cgroup_v2_and_v1(tmp)

        def test_budget_from_cgroup_is_enforced():
            test_cgroup_budget_is_enforced(tmp)

        def test_budget_from_nested_cgroups():
            test_nested_cgroup_smallest_limit_wins(tmp)
        ds.main([test_keep_alive_env_bare_number_is_minutes,
                 test_keep_alive_env_default_negative_and_zero,
                 test_invalid_values_refuse_to_start, test_counts_and_queue_settings,
                 test_load_timeout_parsing, test_debug_step_delay,
                 test_context_length_default_and_env,
                 test_kv_cache_type, test_host_forms, test_host_ipv6_loopback,
                 test_models_default_is_home_ollama_models,
                 test_debug_levels, test_origins_env_adds_to_builtin_list,
                 test_removed_and_gpu_variables_are_ignored, test_memory_budget_sizes,
                 test_budget_follows_fake_cgroup, test_budget_from_cgroup_is_enforced,
                 test_budget_from_nested_cgroups])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
