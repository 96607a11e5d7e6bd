"""`dwell pull` and the pull that `dwell run` does for a missing model, against a fake
registry on 127.0.0.1 (tests/http/fakeregistry.py): plain progress lines when stderr is not
a terminal, a progress bar on a terminal, Ollama's error line, --help."""
import os
import re
import tempfile

from clitest import Pty, Server, dwell, fails, main, ok

import fakeregistry as fr  # tests/http is on the path (clitest puts it there)

S = None
GGUF = None
REG = None


def setup():
    global S, GGUF, REG
    GGUF = fr.make_gguf(os.path.join(tempfile.mkdtemp(prefix="dwell-cli-pull-"), "m.gguf"))
    S = Server(env={"NO_PROXY": "*"})
    REG = fr.Registry()
    REG.add("library/tiny:latest", fr.Model(GGUF, params={"temperature": 0, "num_predict": 4}))
    REG.add("library/chatty:latest", fr.Model(GGUF, system="a run pulls me",
                                              params={"temperature": 0, "num_predict": 4}))
    REG.add("library/tty:latest", fr.Model(GGUF, system="shown on a terminal"))


def test_pull_prints_plain_progress_lines_when_not_a_terminal():
    m = REG.models["library/tiny:latest"]
    out, err = ok(S, "pull", REG.name("library/tiny"), "--insecure")
    assert out == "", out
    lines = err.splitlines()
    assert lines[0] == "pulling manifest", lines
    assert lines[-3:] == ["verifying sha256 digest", "writing manifest", "success"], lines
    for d in m.all_digests():
        mine = [l for l in lines if l.startswith("pulling %s..." % d[7:19])]
        assert len(mine) == 1, (d, lines)
        assert re.fullmatch(r"pulling [0-9a-f]{12}\.\.\. 100% \d+(\.\d)? (B|KB|MB|GB)",
                            mine[0]), mine
    out, _ = ok(S, "list")
    assert REG.host + "/library/tiny:latest" in out, out


def test_pull_errors_are_one_line():
    line = fails(S, "pull", REG.name("library/absent"), "--insecure")
    assert line == "Error: pull model manifest: file does not exist", line
    line = fails(S, "pull", "../etc/passwd")
    assert line.startswith("Error: invalid model name"), line
    assert "arg" in fails(S, "pull")


def test_pull_help():
    out, _ = ok(S, "pull", "--help")
    assert "Usage:\n  dwell pull MODEL [flags]" in out and "--insecure" in out, out
    assert out == ok(S, "help", "pull")[0]
    assert re.search(r"^  pull\s", ok(S, "help")[0], re.M)
    assert "--insecure" in ok(S, "run", "--help")[0]


def test_run_pulls_a_missing_model_first():
    name = REG.name("library/chatty")
    rc, out, err = dwell(S, "run", name, "hello", "--insecure")
    assert rc == 0, (rc, out, err)
    assert err.splitlines()[0] == "pulling manifest" and "success" in err.splitlines(), err
    assert out.strip() != "", out
    # now it is there: no second pull
    before = REG.count(r"/manifests/")
    rc, out, err = dwell(S, "run", name, "hello")
    assert rc == 0 and "pulling" not in err, (rc, out, err)
    assert REG.count(r"/manifests/") == before


def test_run_of_a_model_no_registry_has_says_why():
    line = fails(S, "run", "127.0.0.1:9/library/ghost", "hi", "--insecure")
    assert line.startswith('Error: pull model manifest: Get "http://127.0.0.1:9/v2/library/'
                           'ghost/manifests/latest": '), line


def test_pull_on_a_terminal_draws_a_progress_bar():
    m = REG.models["library/tty:latest"]
    with Pty(S, "pull", REG.name("library/tty"), "--insecure") as p:
        p.expect("pulling manifest")
        weights = m.layer_digests[0]
        text = p.expect(r"pulling %s\.\.\. 100%% \u2595\u2588+\u258f \d+ KB" % weights[7:19])
        assert "\u2595" in text, text
        p.expect("success")
        assert p.wait() == 0


if __name__ == "__main__":
    setup()
    try:
        main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
    finally:
        REG.stop()
        S.close()
