"""End-to-end tests of the dwell commands against a real server with a temporary store:
create, list, show, run (one answer), ps, stop, cp, rm, --version, help, and the errors."""
import json
import os
import re
import time

from clitest import (STORIES, Server, create_stories, dwell, fails, main, ok, parse_table,
                     write_modelfile)

S = None


def server():
    global S
    if S is None:
        S = Server()
        create_stories(S, "story")
    return S


def expires_in(s, name):
    """Seconds until the model's expires_at from /api/ps, or None when not loaded."""
    for m in s.ps():
        if m["name"].startswith(name):
            out, _ = ok(s, "stats", "--json", "--no-stream")
            snap = json.loads(out)
            for sm in snap["models"]:
                if sm["name"] == m["name"] and sm["expires_at"] not in (None, "forever"):
                    t = sm["expires_at"]
                    return _rfc3339(t) - _rfc3339(snap["time"])
            return float("inf")
    return None


def _rfc3339(t):
    m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(\.\d+)?Z", t)
    import calendar
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    return calendar.timegm((y, mo, d, h, mi, sec)) + float(m.group(7) or 0)


def unload_all(s):
    for name in s.ps_names():
        ok(s, "stop", name)
    s.wait_for(lambda: not s.ps(), timeout=20, what="no model loaded")


# ---- create, list, show ----

def test_create_from_gguf_says_what_it_does():
    s = server()
    out, err = create_stories(s, "made")
    assert "gathering model components" in err, err
    assert "writing manifest" in err and err.rstrip().endswith("success"), err
    assert "\x1b[" not in err, "no escapes when stderr is not a terminal: %r" % err
    assert "made:latest" in ok(s, "list")[0]


def test_create_from_model_with_parameters_and_keep_alive_unit():
    s = server()
    mf = write_modelfile('FROM story\nPARAMETER keep_alive 10\nPARAMETER stop "<end>"\n'
                         'PARAMETER stop "###"\nSYSTEM """Tell\nstories."""\nLICENSE MIT\n'
                         'MESSAGE user hello\n')
    ok(s, "create", "derived", "-f", mf)
    params, _ = ok(s, "show", "derived", "--parameters")
    assert re.search(r"^keep_alive\s+\"?10m0s\"?\s*$", params, re.M), params
    assert params.count("stop") == 2, params
    system, _ = ok(s, "show", "derived", "--system")
    assert system == "Tell\nstories.\n", repr(system)
    assert ok(s, "show", "derived", "--license")[0].strip() == "MIT"


def test_create_relative_from_path_is_relative_to_the_modelfile():
    s = server()
    folder = os.path.dirname(write_modelfile("x"))
    os.symlink(STORIES, os.path.join(folder, "weights.gguf"))
    mf = write_modelfile("# a comment\nfrom ./weights.gguf\n", folder)
    ok(s, "create", "rel", "-f", mf)
    ok(s, "rm", "rel")


def test_create_bad_modelfile_names_the_line():
    s = server()
    mf = write_modelfile("FROM story\nPARAMETER temperature hot\n")
    assert "line 2" in fails(s, "create", "bad", "-f", mf)
    mf = write_modelfile("FROM story\nBOGUS x\n")
    assert "line 2" in fails(s, "create", "bad", "-f", mf)
    assert "Modelfile" in fails(s, "create", "bad", "-f", "/nonexistent/Modelfile")
    mf = write_modelfile("PARAMETER temperature 0\n")
    assert "no FROM" in fails(s, "create", "bad", "-f", mf)
    # a folder where a file belongs is named as such, not "no such file" or "I/O error"
    folder = os.path.dirname(mf)
    assert "Is a directory" in fails(s, "create", "bad", "-f", folder)
    rc, _, err = dwell(s, "create", "bad", "-f", write_modelfile("FROM %s\n" % folder))
    assert rc == 1 and "Is a directory" in err, (rc, err)
    # a Modelfile that never ends (a device) is refused after 16 MiB, not read until OOM
    assert "more than 16777216 bytes" in fails(s, "create", "bad", "-f", "/dev/zero")


def test_list_table_and_prefix():
    s = server()
    out, _ = ok(s, "list")
    names, rows = parse_table(out)
    assert names == ["NAME", "ID", "SIZE", "MODIFIED"], names
    row = [r for r in rows if r["NAME"] == "story:latest"][0]
    tags = {m["name"]: m for m in s.get("/api/tags").json()["models"]}
    assert row["ID"] == tags["story:latest"]["digest"][:12]
    assert row["SIZE"] == "1.2 MB", row
    assert row["MODIFIED"].endswith(" ago"), row
    out, _ = ok(s, "ls", "STO")
    assert [r["NAME"] for r in parse_table(out)[1]] == ["story:latest"], out


def test_show_summary_and_flags():
    s = server()
    out, _ = ok(s, "show", "story")
    for section in ("  Model", "  Capabilities", "  Parameters"):
        assert section + "\n" in out, out
    assert re.search(r"^    architecture\s+llama", out, re.M), out
    assert re.search(r"^    context length\s+2048", out, re.M), out
    assert re.search(r"^    num_predict\s+12", out, re.M), out
    assert "Metadata" not in out
    out, _ = ok(s, "show", "story", "-v")
    assert "  Metadata" in out and "llama.block_count" in out, out
    mf, _ = ok(s, "show", "story", "--modelfile")
    assert mf.startswith("# Modelfile generated by"), mf
    assert "only one of" in fails(s, "show", "story", "--system", "--license")
    assert "not found" in fails(s, "show", "nosuchmodel")


# ---- run, ps, stop ----

def test_run_one_answer_and_piped_stdin():
    s = server()
    out, err = ok(s, "run", "story", "Once upon a time")
    assert len(out.strip()) > 5 and out.endswith("\n"), repr(out)
    assert "\x1b[" not in out + err, "no escapes when not a terminal"
    out2, _ = ok(s, "run", "story", stdin="Once upon a time")
    assert out2 == out, (out, out2)  # temperature 0: the same prompt, the same answer


def test_run_verbose_prints_ollamas_timing_lines():
    s = server()
    out, err = ok(s, "run", "story", "Once upon a time", "--verbose")
    keys = ["total duration:", "load duration:", "prompt eval count:", "prompt eval duration:",
            "prompt eval rate:", "eval count:", "eval duration:", "eval rate:"]
    for k in keys:
        assert re.search(r"^%s\s+\S" % re.escape(k), err, re.M), (k, err)
    assert re.search(r"^eval count:\s+12 token\(s\)$", err, re.M), err
    assert re.search(r"^eval rate:\s+\d+\.\d\d tokens/s$", err, re.M), err
    assert re.search(r"^total duration:\s+[\d.]+(ms|s|µs)$", err, re.M), err


def test_keep_alive_0_in_client_env_leaves_nothing_loaded():
    s = server()
    unload_all(s)
    ok(s, "run", "story", "Once", env={"OLLAMA_KEEP_ALIVE": "0"})
    s.wait_for(lambda: not s.ps(), timeout=10, what="the model to unload")
    out, _ = ok(s, "ps")
    assert out.split() == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], out


def si_size(n):
    """Ollama's format.HumanBytes (spec J.79): "N B" below 1000; else whole when >= 10 of
    the unit (truncated), one decimal unless whole."""
    for unit, f in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= f:
            v = n / f
            if v >= 10 or v == int(v):
                return "%d %s" % (int(v), unit)
            return "%.1f %s" % (v, unit)
    return "%d B" % n


def test_keep_alive_2_in_client_env_is_two_minutes():
    s = server()
    ok(s, "run", "story", "Once", env={"OLLAMA_KEEP_ALIVE": "2"})
    left = expires_in(s, "story")
    assert left is not None and 100 <= left <= 120.5, left
    out, _ = ok(s, "ps")
    names, rows = parse_table(out)
    assert names == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], names
    row = [r for r in rows if r["NAME"] == "story:latest"][0]
    assert row["UNTIL"] in ("About a minute from now", "2 minutes from now"), row
    assert row["PROCESSOR"] == "100% CPU" and row["CONTEXT"] == "2048", row
    ps = [m for m in s.ps() if m["name"] == "story:latest"][0]
    # SIZE is /api/ps's size in SI units (spec J.79); the size itself differs a little
    # between builds (ASan's allocator), so it is compared with the server's figure.
    assert 3.5e6 < ps["size"] < 5e6, ps["size"]
    assert row["ID"] == ps["digest"][:12] and row["SIZE"] == si_size(ps["size"]), (row, ps)
    assert ps["keep_alive"] == "2m0s", ps


def test_keepalive_flag_10s():
    s = server()
    ok(s, "run", "story", "Once", "--keepalive", "10s", env={"OLLAMA_KEEP_ALIVE": "2"})
    left = expires_in(s, "story")
    assert left is not None and 5 <= left <= 10.5, left
    out, _ = ok(s, "ps", "story")
    row = parse_table(out)[1][0]
    assert re.fullmatch(r"\d+ seconds from now", row["UNTIL"]), row


def test_keepalive_negative_is_forever():
    s = server()
    ok(s, "run", "story", "Once", "--keepalive", "-1")
    row = parse_table(ok(s, "ps")[0])[1][0]
    assert row["UNTIL"] == "Forever", row
    assert [m for m in s.ps() if m["name"] == "story:latest"][0]["pinned"] is True


def test_stop_unloads():
    s = server()
    ok(s, "run", "story", "")  # an empty prompt only loads
    assert "story:latest" in s.ps_names()
    out, err = ok(s, "stop", "story")
    assert out == "" and err == ""
    s.wait_for(lambda: "story:latest" not in s.ps_names(), timeout=10, what="unload")
    line = fails(s, "stop", "ghost")
    assert line == 'Error: couldn\'t find model "ghost" to stop', line


def test_ps_prefix_filter():
    s = server()
    ok(s, "run", "story", "")
    out, _ = ok(s, "ps", "nothing-like-this")
    assert len(out.strip().splitlines()) == 1, out
    out, _ = ok(s, "ps", "sto")
    assert "story:latest" in out
    unload_all(s)


# ---- cp, rm ----

def test_cp_and_rm():
    s = server()
    assert ok(s, "cp", "story", "copy")[0] == "copied 'story' to 'copy'\n"
    assert "copy:latest" in ok(s, "list")[0]
    assert ok(s, "rm", "copy")[0] == "deleted 'copy'\n"
    assert "copy:latest" not in ok(s, "list")[0]
    assert "not found" in fails(s, "rm", "copy")
    assert "not found" in fails(s, "cp", "ghost", "other")


# ---- errors, version, help ----

def test_no_server_is_one_error_line():
    line = fails(None, "ps", env={"OLLAMA_HOST": "127.0.0.1:9"})
    assert line == ("Error: could not connect to a dwell server at 127.0.0.1:9, run 'dwell "
                    "serve' to start it"), line
    fails(None, "run", "m", "hi", env={"OLLAMA_HOST": "127.0.0.1:9"})
    fails(None, "stats", "--no-stream", env={"OLLAMA_HOST": "127.0.0.1:9"})


def test_unknown_model_bad_flag_bad_duration():
    s = server()
    # a model the server lacks is pulled first, as Ollama's run does (a loopback registry
    # with nothing listening: no network needed)
    assert "pull model manifest" in fails(s, "run", "127.0.0.1:9/library/ghost", "hi",
                                          "--insecure")
    assert fails(s, "ps", "--bogus") == "Error: unknown flag: --bogus"
    assert "invalid --keepalive" in fails(s, "run", "story", "hi", "--keepalive", "5x")
    line = fails(s, "run", "story", "hi", env={"OLLAMA_KEEP_ALIVE": "soon"})
    assert "OLLAMA_KEEP_ALIVE" in line and "soon" in line, line
    assert "arg" in fails(s, "run")
    assert "arg" in fails(s, "cp", "one")
    assert "unknown command" in fails(s, "frobnicate")


def test_ollama_host_forms():
    s = server()
    for host in ("http://127.0.0.1:%d" % s.port, ":%d" % s.port, "127.0.0.1:%d/" % s.port,
                 '"127.0.0.1:%d"' % s.port):
        out, _ = ok(s, "list", env={"OLLAMA_HOST": host})
        assert "story:latest" in out, (host, out)


def test_version_shows_server_and_client():
    s = server()
    out, _ = ok(s, "--version")
    assert re.fullmatch(r"dwell version is \S+ \(Ollama API \S+\)\n", out), out
    out, _ = ok(None, "-v", env={"OLLAMA_HOST": "127.0.0.1:9"})
    assert "Warning: client version is" in out, out


def test_help_on_every_command():
    s = server()
    out, _ = ok(s, "help")
    for c in ("serve", "create", "show", "run", "stop", "list", "ps", "stats", "cp", "rm"):
        assert re.search(r"^  %s\s" % c, out, re.M), (c, out)
    for c in ("create", "show", "run", "stop", "list", "ls", "ps", "stats", "cp", "rm"):
        out, _ = ok(s, c, "--help")
        assert "Usage:\n  dwell " in out and "-h, --help" in out, (c, out)
        out2, _ = ok(s, "help", c)
        assert out2 == out
    assert "--keepalive" in ok(s, "run", "-h")[0]
    rc, out, err = dwell(s, "serve", "--help")
    assert rc == 0, (out, err)


if __name__ == "__main__":
    try:
        main([v for k, v in list(globals().items())
              if k.startswith("test_") and callable(v)])
    finally:
        if S is not None:
            S.close()
