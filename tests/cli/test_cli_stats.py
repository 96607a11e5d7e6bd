"""`dwell stats`: the one-shot snapshot (--no-stream), the JSON snapshots (--json) and the live
full-screen view through a pseudo-terminal. Its figures must agree with /api/ps and with the
server process's RSS, show a loaded model's memory and drop it once the model is unloaded;
the last residency events (GET /api/events) are listed under the table."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from clitest import (BIN, Pty, Server, client_env, create_stories, main, ok, parse_table)
from dwellserver import rss_kb

S = None
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def server():
    global S
    if S is None:
        S = Server()
        create_stories(S, "story")
    return S


def size_of(text):
    """"3.9 MiB" → bytes (the precision of the one-decimal display)."""
    m = re.fullmatch(r"([\d.]+) (B|KiB|MiB|GiB|TiB)", text.strip())
    assert m, text
    return float(m.group(1)) * UNITS[m.group(2)]


def close(a, b, unit_of):
    """a (displayed) is b rounded to one decimal of its unit."""
    return abs(a - b) <= 0.051 * unit_of


def models_table(out):
    """The model table of a text snapshot (the lines from the NAME header to the events)."""
    lines = out.splitlines()
    start = [i for i, l in enumerate(lines) if l.startswith("NAME ")][0]
    end = ([i for i, l in enumerate(lines) if l.startswith("RECENT EVENTS")] + [len(lines)])[0]
    body = [l for l in lines[start:end] if l.strip() and not l.startswith("(")]
    return parse_table("\n".join(body))[1]


def events_table(out):
    """The rows under RECENT EVENTS ([] when there is no such section)."""
    lines = out.splitlines()
    start = [i + 1 for i, l in enumerate(lines) if l.startswith("RECENT EVENTS")]
    if not start:
        return []
    return parse_table("\n".join(l for l in lines[start[0]:] if l.strip()))[1]


def load(s, keep_alive="5m"):
    r = s.generate("story", keep_alive=keep_alive)
    assert r.status == 200, r


def unload(s):
    for n in s.ps_names():
        ok(s, "stop", n)
    s.wait_for(lambda: not s.ps(), timeout=20, what="unload")


def test_no_stream_shows_a_loaded_models_memory_and_agrees_with_ps():
    s = server()
    load(s)
    out, err = ok(s, "stats", "--no-stream")
    assert "\x1b[" not in out, "no escapes when not a terminal"
    assert re.search(r"budget \S+ \S+ \((RAM|cgroup v[12]|DWELL_MEMORY_BUDGET)\)", out), out
    rows = models_table(out)
    assert [r["NAME"] for r in rows] == ["story:latest"], out
    row = rows[0]
    ps = s.ps()[0]
    assert row["STATE"] == "idle", row
    assert close(size_of(row["MEASURED"]), ps["resident_bytes"], UNITS["MiB"]), (row, ps)
    assert close(size_of(row["ESTIMATED"]), ps["size"], UNITS["MiB"]), (row, ps)
    assert size_of(row["KV CACHE"]) > 0
    assert row["SERVED"] == "1" and row["COLD"] == "1", row
    assert re.fullmatch(r"4m5\ds|5m0s", row["UNTIL"]), row
    assert row["KEEP-ALIVE"] == "5m0s (request)", row
    m = re.search(r"models (\S+ \S+)", out)
    assert close(size_of(m.group(1)), ps["size"], UNITS["MiB"]), (m.group(1), ps["size"])


def test_no_stream_rss_agrees_with_the_server_process():
    s = server()
    out, _ = ok(s, "stats", "--no-stream")
    shown = size_of(re.search(r"server RSS (\S+ \S+)", out).group(1))
    actual = rss_kb(s.proc.pid) * 1024
    assert abs(shown - actual) <= max(0.15 * actual, 4 << 20), (shown, actual)


def test_json_snapshot_matches_api_ps():
    s = server()
    load(s)
    out, _ = ok(s, "stats", "--json", "--no-stream")
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    snap = json.loads(lines[0])
    ps = s.ps()[0]
    m = snap["models"][0]
    assert m["name"] == ps["name"] and m["digest"] == ps["digest"]
    assert m["memory"]["resident_bytes"] == ps["resident_bytes"]
    assert m["memory"]["size_bytes"] == ps["size"]
    assert snap["server"]["models_bytes"] == ps["size"]
    actual = rss_kb(s.proc.pid) * 1024
    assert abs(snap["server"]["rss_bytes"] - actual) <= max(0.15 * actual, 4 << 20)


def test_unloaded_model_is_gone_from_stats():
    s = server()
    load(s)
    assert "story:latest" in ok(s, "stats", "--no-stream")[0]
    unload(s)
    out, _ = ok(s, "stats", "--no-stream")
    assert models_table(out) == [], out
    assert "(no models loaded)" in out
    snap = json.loads(ok(s, "stats", "--json", "--no-stream")[0])
    assert snap["models"] == [] and snap["server"]["models_bytes"] == 0, snap
    assert snap["server"]["unloads"] >= 1


def test_no_stream_lists_the_last_residency_events():
    s = server()
    load(s)
    unload(s)
    load(s, keep_alive="0")
    s.wait_for(lambda: not s.ps(), timeout=20, what="keep_alive 0 unload")
    out, _ = ok(s, "stats", "--no-stream")
    rows = events_table(out)
    want = [e for e in s.get("/api/events?stream=false").json()["events"]][-5:]
    assert len(rows) == min(5, len(want)) >= 4, out
    assert [(r["EVENT"], r["MODEL"]) for r in rows] == [(e["type"], e["model"]) for e in want]
    assert rows[-1]["EVENT"] == "unload" and rows[-1]["REASON"] == "keep_alive 0", rows
    assert rows[-2]["EVENT"] == "load" and rows[-2]["REASON"] == "loaded", rows
    assert [r["TIME"] for r in rows] == [e["time"][11:19] for e in want], rows
    assert close(size_of(rows[-1]["SIZE"]), want[-1]["bytes"], UNITS["MiB"]), rows
    assert "requested" in [r["REASON"] for r in rows], rows  # `dwell stop`
    assert "RECENT EVENTS" not in ok(s, "stats", "--json", "--no-stream")[0]


def test_json_stream_prints_one_object_per_second():
    s = server()
    p = subprocess.Popen([BIN, "stats", "--json"], env=client_env(s), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        a = json.loads(p.stdout.readline())
        b = json.loads(p.stdout.readline())
        assert 0.5 <= time.time() - t0 <= 5, time.time() - t0
        assert a["time"] != b["time"] and "server" in b
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0


def test_plain_stream_has_no_escapes():
    s = server()
    p = subprocess.Popen([BIN, "stats"], env=client_env(s), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(2.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=10)
    out = out.decode()
    assert p.returncode == 0
    assert out.count("dwell stats") >= 2, out
    assert "\x1b" not in out, repr(out[:200])


def test_live_view_on_a_terminal_refreshes_and_follows_loads():
    s = server()
    unload(s)
    with Pty(s, "stats", env={"TERM": "xterm"}) as p:
        p.expect(r"\x1b\[\?1049h", 10)  # the alternate screen
        p.expect(r"no models loaded", 10)
        load(s)
        out = p.expect(r"story:latest\s+idle\s+\S+ \S+\s+\S+ \S+", 10)
        assert "\x1b" not in out  # stripped by expect; the redraw used escapes:
        assert "\x1b[H\x1b[2J" in p.raw
        unload(s)
        p.expect(r"\x1b\[2J[^\x1b]*no models loaded", 10)
        p.send("\x03")
        assert p.wait(10) == 0
        assert p.raw.rstrip().endswith("\x1b[?1049l"), repr(p.raw[-40:])


def test_budget_source_env_and_cgroup():
    with Server(env={"DWELL_MEMORY_BUDGET": "3GiB"}) as s:
        out, _ = ok(s, "stats", "--no-stream")
        assert "budget 3.0 GiB (DWELL_MEMORY_BUDGET)" in out, out
    root = tempfile.mkdtemp(prefix="dwell-cgroup-")
    with open(os.path.join(root, "memory.max"), "w") as f:
        f.write("%d\n" % (4 << 30))
    with Server(env={"DWELL_CGROUP_ROOT": root, "DWELL_MEMORY_RESERVE": "1GiB"}) as s:
        out, _ = ok(s, "stats", "--no-stream")
        assert "budget 3.0 GiB (cgroup v2)" in out, out


if __name__ == "__main__":
    try:
        main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
    finally:
        if S is not None:
            S.close()
