"""dwellserver.py — shared helper of the HTTP tests: runs a real `$DWELL_BIN serve` on
127.0.0.1 with a free port and a temporary model store, and talks to it.

Every wait is bounded; the server is always killed at the end (context manager and atexit).
"""
import atexit
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SHARED = os.environ.get("DWELL_SHARED", "")
BIN = os.environ.get("DWELL_BIN", "")
MODELS = os.path.join(SHARED, "models")
STORIES = os.path.join(MODELS, "stories260K.gguf")
TINY = os.path.join(MODELS, "tiny-llama-q8_0.gguf")

_live = []


def _cleanup():
    for s in list(_live):
        s.kill()


atexit.register(_cleanup)


def need_env():
    if not BIN or not os.path.exists(BIN):
        print("DWELL_BIN is not set or missing", file=sys.stderr)
        sys.exit(1)
    if not os.path.isdir(MODELS):
        print("DWELL_SHARED has no models/ (%r)" % SHARED, file=sys.stderr)
        sys.exit(1)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def lines(self):
        return [json.loads(l) for l in self.body.decode().split("\n") if l.strip()]

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


# Environment every Server of a test module gets (before its own env). Modules whose tests
# overlap requests set DWELL_DEBUG_STEP_DELAY here, so that a long generation stays long on
# a fast machine and the overlap does not depend on the machine's speed.
DEFAULT_ENV = {}


class Server:
    """A running `dwell serve`. env: extra environment variables."""

    def __init__(self, env=None, models_dir=None, start=True, limit_as=None):
        need_env()
        self.tmp = tempfile.mkdtemp(prefix="dwell-http-")
        self.models_dir = models_dir or os.path.join(self.tmp, "models")
        self.extra_env = dict(env or {})
        self.limit_as = limit_as  # bytes of address space (RLIMIT_AS) for the server, or None
        self.proc = None
        self.port = None
        self.log_lines = []
        self._log_lock = threading.Lock()
        if start:
            self.start()

    # ---- lifecycle ----

    def start(self, timeout=30):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith(("OLLAMA_", "DWELL_MEMORY", "DWELL_DEBUG_")) or k == "DWELL_CGROUP_ROOT":
                del env[k]
        env["OLLAMA_HOST"] = "127.0.0.1:0"
        env["OLLAMA_MODELS"] = self.models_dir
        env.setdefault("OLLAMA_DEBUG", "1")
        env.update(DEFAULT_ENV)
        env.update(self.extra_env)
        self.log_lines = []
        def limit():
            if self.limit_as:
                import resource
                resource.setrlimit(resource.RLIMIT_AS, (self.limit_as, self.limit_as))
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE,
                                     preexec_fn=limit if self.limit_as else None,
                                     stderr=subprocess.STDOUT)
        _live.append(self)
        port_box = []
        ready = threading.Event()

        def reader(proc):
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                with self._log_lock:
                    self.log_lines.append(line)
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m and not port_box:
                    port_box.append(int(m.group(1)))
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=reader, args=(self.proc,), daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or not port_box:
            self.kill()
            raise RuntimeError("server did not start:\n" + self.log())
        self.port = port_box[0]
        return self

    def log(self):
        with self._log_lock:
            return "\n".join(self.log_lines)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the server with sig and returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
            raise AssertionError("server did not exit within %d s after %s" % (timeout, sig))
        finally:
            if self in _live:
                _live.remove(self)
        # the process is gone: read what is left in the pipe, so that log() has its last lines
        if getattr(self, "_reader", None):
            self._reader.join(10)
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self in _live:
            _live.remove(self)

    def close(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        if a[0] is not None and a[0] is not SystemExit:
            sys.stderr.write("---- server log (last 60 lines) ----\n")
            sys.stderr.write("\n".join(self.log_lines[-60:]) + "\n")
        self.close()

    # ---- HTTP ----

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=120):
        c = self.conn(timeout)
        try:
            h = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                h.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def ps(self):
        r = self.get("/api/ps")
        assert r.status == 200, r
        return r.json()["models"]

    def ps_names(self):
        return [m["name"] for m in self.ps()]

    def wait_for(self, cond, timeout=20, step=0.05, what="condition"):
        end = time.time() + timeout
        while time.time() < end:
            v = cond()
            if v:
                return v
            time.sleep(step)
        raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))

    # ---- models ----

    def upload(self, path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = "sha256:" + h.hexdigest()
        r = self.request("HEAD", "/api/blobs/" + digest)
        if r.status != 200:
            with open(path, "rb") as f:
                data = f.read()
            r = self.post("/api/blobs/" + digest, data)
            assert r.status in (200, 201), r
        return digest

    def create(self, name, gguf=STORIES, **fields):
        digest = self.upload(gguf)
        body = {"model": name, "files": {os.path.basename(gguf): digest}, "stream": False}
        body.update(fields)
        r = self.post("/api/create", body)
        assert r.status == 200, r
        return r

    def generate(self, model, prompt="Once upon a time", stream=False, **kw):
        body = {"model": model, "prompt": prompt, "stream": stream}
        opts = kw.pop("options", {"temperature": 0, "num_predict": 8})
        body["options"] = opts
        body.update(kw)
        return self.post("/api/generate", body)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Runner:
    """Runs named test functions, prints a summary and exits 1 on any failure."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def run(self, fn):
        t0 = time.time()
        try:
            fn()
            self.passed += 1
            print("PASS %s (%.1fs)" % (fn.__name__, time.time() - t0), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure
            import traceback
            traceback.print_exc()
            self.failed.append(fn.__name__)
            print("FAIL %s: %s" % (fn.__name__, e), flush=True)

    def finish(self):
        print("%d passed, %d failed %s" % (self.passed, len(self.failed), self.failed or ""))
        sys.exit(1 if self.failed else 0)


def main(tests):
    r = Runner()
    only = os.environ.get("DWELL_TEST_ONLY")
    for t in tests:
        if only and only not in t.__name__:
            continue
        r.run(t)
    r.finish()


# ---- helpers of the conformance tests (tests/http/test_conf_*.py) ----

_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
                      r"(Z|[+-]\d\d:\d\d)$")


def parse_rfc3339(s):
    """(unix seconds as float, offset string) of an RFC 3339 time; AssertionError if s is
    not one."""
    import calendar
    m = _RFC3339.match(s)
    assert m, "not an RFC 3339 time: %r" % (s,)
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    t = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)) + frac
    off = m.group(8)
    if off != "Z":
        sign = 1 if off[0] == "+" else -1
        t -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    return t, off


def manifest_file(models_dir, name, tag="latest", ns="library", host="registry.ollama.ai"):
    return os.path.join(models_dir, "manifests", host, ns, name, tag)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
