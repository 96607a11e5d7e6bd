"""The interactive `dwell run MODEL` driven through a pseudo-terminal: a prompt and its
streamed answer, /set verbose, Ctrl-C in the middle of an answer, \"\"\" multi-line input,
/show, /set parameter, /clear, Ctrl-C at the prompt, /bye and Ctrl-D."""
import re
import time

from clitest import ANSI, STORIES, Pty, Server, create_stories, main, ok, write_modelfile

S = None
TERM = {"TERM": "xterm"}


def server():
    global S
    if S is None:
        S = Server()
        create_stories(S, "story")
    return S


def session(**env):
    e = dict(TERM)
    e.update(env)
    p = Pty(server(), "run", "story", env=e)
    p.expect(r">>> ", 60)
    return p


def answer_text(chunk):
    """The answer in what was read after a prompt was typed: drop the echoed line."""
    lines = chunk.replace("\r", "").split("\n")
    return "\n".join(l for l in lines[1:] if not l.startswith(">>>")).strip()


def test_prompt_gets_a_streamed_answer_and_the_model_stays_loaded():
    with session() as p:
        p.line("Once upon a time")
        text = answer_text(p.expect(r"\n>>> ", 60))
        assert len(text) > 5, repr(text)
        assert "story:latest" in server().ps_names()
        p.line("/bye")
        assert p.wait() == 0
    assert "story:latest" in server().ps_names(), "/bye leaves the model loaded"


def test_clear_resets_the_session():
    with session() as p:
        p.line("Once upon a time")
        p.expect(r"\n>>> ", 60)
        p.line("/clear")
        p.expect(r"Cleared session context\s*\n>>> ", 10)
        p.line("/bye")
        assert p.wait() == 0


def test_set_verbose_prints_timings():
    with session() as p:
        p.line("/set verbose")
        p.expect(r"Set 'verbose' mode\.\s*\n>>> ", 10)
        p.line("Once")
        out = p.expect(r"eval rate:\s+\d+\.\d\d tokens/s", 60)
        for k in ("total duration:", "load duration:", "prompt eval count:", "eval count:"):
            assert k in out, (k, out)
        p.expect(r">>> ", 10)
        p.line("/set quiet")
        p.expect(r"Set 'quiet' mode\.\s*\n>>> ", 10)
        p.line("Once")
        out = p.expect(r"\n>>> ", 60)
        assert "eval rate" not in out, out
        p.line("/bye")
        assert p.wait() == 0


def generated(s):
    """Tokens the server has generated for story:latest so far (GET /api/stats)."""
    r = s.get("/api/stats")
    assert r.status == 200, r
    return sum(m["tokens_generated"] for m in r.json()["models"] if m["name"] == "story:latest")


def test_ctrl_c_stops_the_answer_not_the_session():
    s = server()
    with session() as p:
        p.line("/set parameter num_predict 4000")
        p.expect(r"Set parameter 'num_predict' to '4000'\s*\n>>> ", 10)
        before = generated(s)
        p.line("Once upon a time")
        p.expect(r"Once upon a time\r?\n", 10)  # the echo of the typed line
        p.expect(r"\w+ \w+ \w+ \w+", 60)  # the answer is streaming
        t0 = time.time()
        p.send("\x03")
        p.expect(r"\n>>> ", 10)
        assert time.time() - t0 < 5
        # The server stopped generating: nothing is in flight any more, and the answer was
        # cut short (greedy stories260K never ends by itself before its 2048-token context
        # is full, so a Ctrl-C that did nothing would show about 2000 tokens here).
        s.wait_for(lambda: all(m.get("in_flight", 0) == 0 for m in s.ps()), timeout=5,
                   what="the generation to be cancelled")
        n = generated(s) - before
        assert 0 < n < 1000, "tokens generated for the interrupted answer: %d" % n
        # The session goes on.
        p.line("/set parameter num_predict 12")
        p.expect(r"\n>>> ", 10)
        p.line("Once")
        assert len(answer_text(p.expect(r"\n>>> ", 60))) > 0
        # Ctrl-C at the prompt says how to leave.
        p.send("\x03")
        p.expect(r"Use Ctrl \+ d or /bye to exit\.\s*\n>>> ", 10)
        p.line("/bye")
        assert p.wait() == 0


def test_multiline_input():
    with session() as p:
        p.line('"""Once upon')
        p.expect(r"\.\.\. ", 10)
        p.line('a time"""')
        out = p.expect(r"\n>>> ", 60)
        assert len(out.strip()) > 10, out
        p.line('"""Once"""')
        p.expect(r"\n>>> ", 60)
        p.line("/bye")
        assert p.wait() == 0


def test_show_and_help_commands():
    with session() as p:
        p.line("/show info")
        out = p.expect(r"\n>>> ", 10)
        assert re.search(r"architecture\s+llama", out), out
        p.line("/show parameters")
        out = p.expect(r"\n>>> ", 10)
        assert "Model defined parameters:" in out and "num_predict" in out, out
        p.line("/set system You tell stories.")
        p.expect(r"Set system message\.\s*\n>>> ", 10)
        p.line("/show system")
        assert "You tell stories." in p.expect(r"\n>>> ", 10)
        p.line("/show template")
        p.expect(r"\n>>> ", 10)
        p.line("/show license")
        assert "No license was specified" in p.expect(r"\n>>> ", 10)
        p.line("/?")
        out = p.expect(r"\n>>> ", 10)
        assert "/bye" in out and '"""' in out, out
        p.line("/set parameter bogus 1")
        assert "Couldn't set parameter" in p.expect(r"\n>>> ", 10)
        p.line("/nonsense")
        assert "Unknown command '/nonsense'" in p.expect(r"\n>>> ", 10)
        p.line("/bye")
        assert p.wait() == 0


def test_ctrl_d_leaves():
    with session() as p:
        p.send("\x04")
        assert p.wait() == 0
    assert "story:latest" in server().ps_names(), "Ctrl-D leaves the model loaded"


def test_keep_alive_env_applies_to_the_interactive_session():
    s = server()
    for name in s.ps_names():
        s.post("/api/generate", {"model": name, "keep_alive": 0})
    s.wait_for(lambda: not s.ps(), timeout=10, what="nothing loaded")
    with session(OLLAMA_KEEP_ALIVE="7") as p:
        m = s.ps()[0]
        assert m["keep_alive"] == "7m0s", m
        p.line("Once")
        p.expect(r"\n>>> ", 60)
        assert s.ps()[0]["keep_alive"] == "7m0s"
        p.line("/bye")
        assert p.wait() == 0


def test_the_spinner_shows_while_loading_on_a_terminal():
    s = server()
    for name in s.ps_names():
        s.post("/api/generate", {"model": name, "keep_alive": 0})
    s.wait_for(lambda: not s.ps(), timeout=10, what="nothing loaded")
    with Pty(s, "run", "story", "Once upon a time", env=TERM) as p:
        assert p.wait(60) == 0
        assert re.search("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", p.raw), repr(p.raw[:200])


def test_word_wrap_on_a_terminal_and_nowordwrap():
    s = server()
    mf = write_modelfile("FROM story\nPARAMETER num_predict 120\nPARAMETER temperature 0\n")
    ok(s, "create", "long", "-f", mf)
    with Pty(s, "run", "long", "Once upon a time", env=TERM, cols=40) as p:
        assert p.wait(60) == 0
        lines = ANSI.sub("", p.raw).replace("\r", "").split("\n")
        text = [l for l in lines if l.strip() and not re.search("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", l)]
        assert len(text) >= 3, lines
        assert all(len(l) <= 40 for l in text), [l for l in text if len(l) > 40]
        # a wrapped line never ends in the space that separated it from the next word
        assert not [l for l in text if l.endswith(" ")], [l for l in text if l.endswith(" ")]
    with Pty(s, "run", "long", "Once upon a time", "--nowordwrap", env=TERM, cols=40) as p:
        assert p.wait(60) == 0
        lines = ANSI.sub("", p.raw).replace("\r", "").split("\n")
        # The terminal itself folds long lines, so look at the logical lines: without
        # wrapping, the answer's own lines are longer than the terminal.
        assert any(len(l) > 40 for l in lines), lines


def test_create_shows_upload_progress_on_a_terminal():
    s = server()
    mf = write_modelfile("FROM %s\n" % STORIES)
    # A fresh server has no blob yet, so the file is uploaded.
    fresh = Server()
    try:
        with Pty(fresh, "create", "up", "-f", mf, env=TERM) as p:
            assert p.wait(60) == 0
            assert re.search(r"copying file sha256:[0-9a-f.]+ +\d+%", p.raw), repr(p.raw)
            assert "success" in p.raw
    finally:
        fresh.close()
    # The second time the blob is there: nothing to copy.
    with Pty(s, "create", "up2", "-f", mf, env=TERM) as p:
        assert p.wait(60) == 0
        assert "copying file" not in p.raw and "success" in p.raw, repr(p.raw)


if __name__ == "__main__":
    try:
        main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
    finally:
        if S is not None:
            S.close()
