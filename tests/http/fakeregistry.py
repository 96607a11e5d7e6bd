"""fakeregistry.py — a Docker-registry-v2-style model registry on 127.0.0.1 (port 0) that
speaks what Ollama's registry speaks to a pull:

  GET /v2/<namespace>/<model>/manifests/<tag>   the manifest (404 when unknown)
  GET /v2/<namespace>/<model>/blobs/<digest>    a blob (Range: bytes=N- answered with 206),
                                                or a 307 to /cdn/<hex> when redirecting

It counts every request, remembers Range headers, and has knobs for the failure cases of the
pull tests: wrong blob bytes, a garbage or oversized manifest, a slow blob, a blob that
redirects to any URL, a registry that ignores Range (200 with the whole blob) or answers it
with a wrong Content-Range, a blob cut short after N bytes, any status and body for a
manifest or a blob. Every wait is bounded; stop() shuts it down.
"""
import hashlib
import http.server
import json
import os
import re
import subprocess
import threading
import time

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_gguf(path, seed=1):
    """A small random-weight model written by `dwell debug mkmodel`."""
    subprocess.run([os.environ["DWELL_BIN"], "debug", "mkmodel", path, "--dim", "64",
                    "--layers", "1", "--heads", "2", "--ffn", "128", "--ctx", "256",
                    "--seed", str(seed)], check=True, capture_output=True, timeout=60)
    with open(path, "rb") as f:
        return f.read()


class Model:
    """A model as a registry holds it: the manifest bytes and its blobs by digest."""

    def __init__(self, gguf, params=None, system=None):
        self.blobs = {}
        layers = [self._layer("application/vnd.ollama.image.model", gguf)]
        if system is not None:
            layers.append(self._layer("application/vnd.ollama.image.system", system.encode()))
        if params is not None:
            layers.append(self._layer("application/vnd.ollama.image.params",
                                      json.dumps(params).encode()))
        config = json.dumps({"model_format": "gguf", "model_family": "llama",
                             "model_families": ["llama"], "model_type": "1M",
                             "file_type": "Q8_0", "architecture": "amd64",
                             "os": "linux"}).encode()
        cfg = self._layer(MT_CONFIG, config)
        self.manifest = json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                                    "config": cfg, "layers": layers}).encode()
        self.config_digest = cfg["digest"]
        self.layer_digests = [l["digest"] for l in layers]

    def _layer(self, media_type, data):
        d = digest_of(data)
        self.blobs[d] = data
        return {"mediaType": media_type, "digest": d, "size": len(data)}

    def all_digests(self):
        return self.layer_digests + [self.config_digest]


class Registry:
    def __init__(self):
        self.models = {}          # "ns/model:tag" -> Model
        self.raw_manifests = {}   # "ns/model:tag" -> bytes served as is (garbage tests)
        self.bad_blobs = {}       # digest -> bytes served instead of the real ones
        self.redirect = False     # blobs answer 307 to /cdn/<hex>
        self.slow = {}            # digest -> seconds to sleep after each 16 KiB chunk
        self.redirect_to = {}     # digest -> absolute URL its blob answers 307 to
        self.ignore_range = False # a Range request gets 200 and the whole blob
        self.range_lie = {}       # digest -> start a 206's Content-Range claims (bytes sent
                                  #           are still the ones asked for)
        self.cut = {}             # digest -> the next answer drops after this many body bytes
                                  #           (once: the knob is used up)
        self.fail = {}            # "ns/model:tag" or digest -> (status, body) answered instead
        self.requests = []        # (method, path, range header or None)
        self.lock = threading.Lock()
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                with reg.lock:
                    reg.requests.append(("GET", self.path, self.headers.get("Range")))
                try:
                    reg._get(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hung up (the tests make dwell do that) is no news

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()

    def add(self, name, model):
        """name: "ns/model:tag"."""
        self.models[name] = model

    def name(self, ref):
        """The pull name of "ns/model:tag" on this registry."""
        return "%s/%s" % (self.host, ref)

    def count(self, pattern):
        """How many requests had a path matching the regular expression."""
        with self.lock:
            return sum(1 for (_, p, _) in self.requests if re.search(pattern, p))

    def ranges(self):
        with self.lock:
            return [r for (_, _, r) in self.requests if r]

    # ---- answers ----

    def _send(self, h, status, body=b"", ctype="application/json", extra=None):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _blob(self, digest):
        if digest in self.bad_blobs:
            return self.bad_blobs[digest]
        for m in self.models.values():
            if digest in m.blobs:
                return m.blobs[digest]
        return None

    def _get(self, h):
        m = re.match(r"^/v2/([^/]+)/([^/]+)/manifests/([^/]+)$", h.path)
        if m:
            ref = "%s/%s:%s" % m.groups()
            if ref in self.fail:
                return self._send(h, *self.fail[ref])
            if h.headers.get("Accept") != MT_MANIFEST:
                return self._send(h, 400, b'{"errors":[{"code":"BAD_ACCEPT"}]}')
            if ref in self.raw_manifests:
                return self._send(h, 200, self.raw_manifests[ref], MT_MANIFEST)
            if ref not in self.models:
                return self._send(h, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            return self._send(h, 200, self.models[ref].manifest, MT_MANIFEST)
        m = re.match(r"^/v2/[^/]+/[^/]+/blobs/(sha256:[0-9a-f]{64})$", h.path)
        if m and m.group(1) in self.fail:
            return self._send(h, *self.fail[m.group(1)])
        if m and m.group(1) in self.redirect_to:
            return self._send(h, 307, b"", extra={"Location": self.redirect_to[m.group(1)]})
        if m and self.redirect:
            return self._send(h, 307, b"", extra={"Location": "/cdn/" + m.group(1)[7:]})
        if not m:
            m = re.match(r"^/cdn/([0-9a-f]{64})$", h.path)
            digest = "sha256:" + m.group(1) if m else None
        else:
            digest = m.group(1)
        data = self._blob(digest) if digest else None
        if data is None:
            return self._send(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        start = 0
        rng = h.headers.get("Range")
        status = 200
        extra = {}
        if rng and not self.ignore_range:
            rm = re.match(r"^bytes=(\d+)-$", rng)
            start = int(rm.group(1)) if rm else 0
            if start >= len(data):
                return self._send(h, 416, b"")
            status = 206
            claim = self.range_lie.get(digest, start)
            extra["Content-Range"] = "bytes %d-%d/%d" % (claim, len(data) - 1, len(data))
        body = data[start:]
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            h.send_header(k, v)
        h.end_headers()
        with self.lock:
            cut = self.cut.pop(digest, None)
        if cut is not None:  # the whole rest promised, only part of it sent, then hang up
            h.wfile.write(body[:cut])
            h.wfile.flush()
            h.close_connection = True
            return
        delay = self.slow.get(digest, 0)
        for i in range(0, len(body), 16384):
            h.wfile.write(body[i:i + 16384])
            h.wfile.flush()
            if delay:
                time.sleep(delay)
