"""Unloading returns the memory: the server's RSS (VmRSS) rises when a model of a few hundred
MB loads and falls back to within a few MB of the pre-load level after it is unloaded.
Normal build only (ASan keeps freed memory): exits 77 under DWELL_SANITIZE=1."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402


def test_rss_returns_after_unload(model):
    size_mb = os.path.getsize(model) / 1e6
    assert size_mb > 150, size_mb
    with ds.Server(env={"OLLAMA_CONTEXT_LENGTH": "512"}) as s:
        s.create("big", model)
        pid = s.proc.pid
        s.get("/api/ps")
        time.sleep(0.3)
        before = ds.rss_kb(pid)
        r = s.generate("big", "Hello", options={"temperature": 0, "num_predict": 2})
        assert r.status == 200, r
        loaded = ds.rss_kb(pid)
        assert loaded - before > 0.8 * size_mb * 1000, (before, loaded, size_mb)
        # The resident figure /api/ps reports is the truth: it accounts for the RSS growth.
        resident_kb = s.ps()[0]["resident_bytes"] / 1024
        grown_kb = loaded - before
        assert abs(resident_kb - grown_kb) < 0.1 * grown_kb + 8 * 1024, (resident_kb, grown_kb)
        r = s.post("/api/generate", {"model": "big", "keep_alive": 0})
        assert r.json()["done_reason"] == "unload", r
        s.wait_for(lambda: not s.ps(), timeout=10, what="unload")
        after = s.wait_for(lambda: (lambda v: v if v - before < 8 * 1024 else None)(ds.rss_kb(pid)),
                           timeout=5, what="RSS to fall back (before %d kB)" % before)
        print("RSS kB: before %d, loaded %d, after %d" % (before, loaded, after))


def main():
    if os.environ.get("DWELL_SANITIZE") == "1":
        print("skipped: memory figures are meaningless under ASan")
        sys.exit(77)
    ds.need_env()
    tmp = tempfile.mkdtemp(prefix="dwell-mem-")
    try:
        model = os.path.join(tmp, "big.gguf")
        subprocess.run([ds.BIN, "debug", "mkmodel", model, "--dim", "1024", "--layers", "8",
                        "--ffn", "2816", "--type", "F32", "--ctx", "512"], check=True,
                       timeout=300, stdout=subprocess.DEVNULL)
        def test_rss_falls_back_after_unload():
            test_rss_returns_after_unload(model)
        ds.main([test_rss_falls_back_after_unload])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
