"""clitest.py — shared helper of the CLI tests: a real `dwell serve` (tests/http/dwellserver.py)
with a temporary store, the `dwell` command run against it, and a pseudo-terminal session for
the interactive parts. Every wait is bounded."""
import errno
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))

import dwellserver  # noqa: E402
from dwellserver import BIN, STORIES, Server, main  # noqa: E402,F401

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def client_env(server, extra=None):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("OLLAMA_"):
            del env[k]
    if server is not None:
        env["OLLAMA_HOST"] = "127.0.0.1:%d" % server.port
    env["HOME"] = tempfile.mkdtemp(prefix="dwell-cli-home-")
    env.update(extra or {})
    return env


def dwell(server, *args, env=None, stdin=None, timeout=120):
    """Runs `dwell ARGS` against server; returns (exit code, stdout, stderr)."""
    p = subprocess.run([BIN] + list(args), env=client_env(server, env),
                       input=stdin.encode() if isinstance(stdin, str) else (stdin or b""),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def ok(server, *args, **kw):
    rc, out, err = dwell(server, *args, **kw)
    assert rc == 0, "dwell %s: rc %d\nstdout: %s\nstderr: %s" % (" ".join(args), rc, out, err)
    return out, err


def fails(server, *args, **kw):
    """Runs a command that must fail: exit 1 and one `Error: …` line on stderr."""
    rc, out, err = dwell(server, *args, **kw)
    assert rc == 1, "dwell %s: expected exit 1, got %d (%s%s)" % (" ".join(args), rc, out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), "stderr: %r" % err
    return lines[0]


def write_modelfile(text, folder=None):
    folder = folder or tempfile.mkdtemp(prefix="dwell-mf-")
    path = os.path.join(folder, "Modelfile")
    with open(path, "w") as f:
        f.write(text)
    return path


def create_stories(server, name, extra="PARAMETER num_predict 12\nPARAMETER temperature 0\n"):
    """Creates NAME from stories260K.gguf with `dwell create NAME -f Modelfile`."""
    mf = write_modelfile("FROM %s\n%s" % (STORIES, extra))
    return ok(server, "create", name, "-f", mf)


def parse_table(text):
    """Splits Ollama's borderless table on the header's column starts: a list of dicts."""
    lines = [l for l in text.splitlines() if l.strip()]
    head = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:(?<=^)|(?<=    ))\S", head)]
    names = [head[s:e].strip() for s, e in zip(starts, starts[1:] + [None])]
    rows = []
    for l in lines[1:]:
        cells = [l[s:e].strip() if e else l[s:].strip() for s, e in zip(starts, starts[1:] + [0])]
        rows.append(dict(zip(names, cells)))
    return names, rows


class Pty:
    """`dwell ARGS` on a pseudo-terminal (so readline, Ctrl-C and colours behave as for a
    person). Output is collected with ANSI escapes kept in .raw."""

    def __init__(self, server, *args, env=None, rows=40, cols=100):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                os.execve(BIN, [BIN] + list(args), client_env(server, env))
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.raw = ""
        self.mark = 0
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno == errno.EIO:
                return None
            raise
        if not data:
            return None
        self.raw += data.decode(errors="replace")
        return True

    def expect(self, pattern, timeout=60):
        """Waits for the regex in the output after the last match; returns the text read up
        to the end of the match (escapes stripped)."""
        rx = re.compile(pattern)
        end = time.time() + timeout
        while True:
            m = rx.search(self.raw, self.mark)
            if m:
                text = self.raw[self.mark:m.end()]
                self.mark = m.end()
                return ANSI.sub("", text)
            left = end - time.time()
            if left <= 0:
                raise AssertionError("timed out waiting for %r; output since last match:\n%r"
                                     % (pattern, self.raw[self.mark:][-2000:]))
            if self._read(min(left, 0.5)) is None and not rx.search(self.raw, self.mark):
                raise AssertionError("the process ended before %r; output since last match:"
                                     "\n%r" % (pattern, self.raw[self.mark:][-2000:]))

    def send(self, text):
        # As a person would, type a moment after the prompt appeared: readline switches the
        # terminal to raw mode around printing its prompt, and a mode switch may flush input
        # that arrived in the same instant.
        time.sleep(0.1)
        os.write(self.fd, text.encode())

    def line(self, text):
        self.send(text + "\r")

    def wait(self, timeout=20):
        """Waits for the process to exit (draining its output); returns its exit code."""
        end = time.time() + timeout
        while time.time() < end:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                while self._read(0.1):
                    pass
                return self.status
            self._read(0.1)
        raise AssertionError("process did not exit; output tail:\n%r" % self.raw[-1500:])

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            self.status = -9
        try:
            os.close(self.fd)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
