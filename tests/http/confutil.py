"""confutil.py — helpers shared by the conformance tests test_conf_*.py (spec
shared/spec/ollama-compat.md sections 0, A-F and 2, with DESIGN.md §2 and §4): time parsing,
/api/ps lookups, models made with `dwell debug mkmodel`, streaming clients that record when
each line arrived, and a raw-socket client that can disconnect. Every wait is bounded."""
import datetime
import json
import os
import re
import socket
import subprocess
import threading
import time

import dwellserver as ds

GREEDY = {"temperature": 0, "num_predict": 4}


def parse_time(s):
    """RFC 3339 (nanoseconds, Z or offset) → Unix seconds (float)."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    assert m, s
    year = int(m.group(1))
    frac = float("0" + (m.group(7) or ".0"))
    off = 0
    if m.group(8) != "Z":
        sign = 1 if m.group(8)[0] == "+" else -1
        off = sign * (int(m.group(8)[1:3]) * 3600 + int(m.group(8)[4:6]) * 60)
    # datetime cannot go past year 9999; keep the arithmetic in days for far dates.
    d = datetime.date(year, int(m.group(2)), int(m.group(3)))
    days = (d - datetime.date(1970, 1, 1)).days
    return (days * 86400 + int(m.group(4)) * 3600 + int(m.group(5)) * 60 + int(m.group(6))
            + frac - off)


def entry(s, name):
    for m in s.ps():
        if m["name"] == name:
            return m
    return None


def stats(s):
    r = s.get("/api/stats")
    assert r.status == 200, r
    return r.json()


def model_stats(s, name):
    for m in stats(s)["models"]:
        if m["name"] == name:
            return m
    return None


def make_model(tmp, name, dim="512", layers="8", ffn="1536", heads="8", typ="Q8_0",
               ctx="4096"):
    """A synthetic model (the default one is 512 wide and 8 layers deep, Q8_0); the modules
    that overlap requests also slow every step with DWELL_DEBUG_STEP_DELAY."""
    path = os.path.join(tmp, name)
    if not os.path.exists(path):
        subprocess.run([ds.BIN, "debug", "mkmodel", path, "--dim", dim, "--layers", layers,
                        "--ffn", ffn, "--heads", heads, "--type", typ, "--ctx", ctx],
                       check=True, timeout=300, stdout=subprocess.DEVNULL)
    return path


class Stream:
    """A streamed /api/generate (or another endpoint) on its own thread, recording the
    arrival time of every NDJSON line."""

    def __init__(self, s, model, n=100, path="/api/generate", body=None, timeout=120):
        self.status = None
        self.lines = []
        self.times = []
        self.error = None
        self.t_start = time.time()
        self.t_end = None
        self.first = threading.Event()
        b = body or {"model": model, "prompt": "Once upon a time",
                     "options": {"temperature": 0, "num_predict": n}}
        self.th = threading.Thread(target=self._run, args=(s, path, b, timeout), daemon=True)
        self.th.start()

    def _run(self, s, path, body, timeout):
        try:
            c = s.conn(timeout)
            c.request("POST", path, body=json.dumps(body),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            self.status = r.status
            buf = b""
            while True:
                chunk = r.read1(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        self.lines.append(json.loads(line))
                        self.times.append(time.time())
                        self.first.set()
            if buf.strip():
                self.lines.append(json.loads(buf))
                self.times.append(time.time())
            c.close()
        except Exception as e:  # noqa: BLE001 - reported by join()
            self.error = e
        finally:
            self.t_end = time.time()
            self.first.set()

    def wait_first(self, timeout=60):
        assert self.first.wait(timeout), "no first line within %ss" % timeout
        return self

    def join(self, timeout=120):
        self.th.join(timeout)
        assert not self.th.is_alive(), "stream still running after %ss" % timeout
        assert self.error is None, self.error
        return self

    def done(self):
        return self.lines and self.lines[-1].get("done") is True


class RawClient:
    """A request over a plain socket, so the test can walk away (disconnect) at any time."""

    def __init__(self, s, path, body):
        data = json.dumps(body).encode()
        self.sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        self.sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % (path.encode(), len(data)) + data)

    def read_all(self, timeout=60):
        self.sock.settimeout(timeout)
        got = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            got += chunk
        self.sock.close()
        return got

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def year_of(ts):
    return int(ts[:4])
