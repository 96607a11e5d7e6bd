"""Robustness against hostile or careless input that the conformance tests do not cover:
values far outside the range of the field they land in, and the regressions an adversarial
run against the server found. Each test is bounded and deterministic; the server must keep
serving throughout (the sanitizer build turns undefined behaviour into a failed test).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dwellserver as ds  # noqa: E402

S = None


def assert_native_error(r, status, what):
    assert r.status == status, (what, r)
    o = r.json()
    assert list(o) == ["error"] and isinstance(o["error"], str) and o["error"], (what, o)


# ---- numbers far outside their option's range ----

def test_huge_integer_options_saturate():
    # Integer options are int32 inside; a JSON number far outside that range used to be
    # converted unchecked (undefined behaviour: num_predict 2^31 became INT_MIN). Each must
    # be served, with the value saturated.
    big = [2 ** 31, 2 ** 40, 1e300, -1e300, 2 ** 63 - 1, -(2 ** 63)]
    for opt in ("num_predict", "top_k", "repeat_last_n", "num_keep", "seed"):
        for v in big:
            opts = {"temperature": 0, "num_predict": 2, "num_ctx": 32, opt: v}
            r = S.generate("m", "Once", options=opts)
            if opt == "repeat_last_n" and v < -1:  # the sampler's own check: -1 at least
                assert_native_error(r, 400, (opt, v))
                continue
            assert r.status == 200, (opt, v, r)
            o = r.json()
            assert o["done"], (opt, v, o)
            if opt == "num_predict":
                # negative: no limit; positive beyond int32: no limit either; the context
                # (num_ctx 32, the model's own 2048 once loaded larger) ends it
                assert o["done_reason"] == "length", (v, o)


def test_repeat_window_is_capped_by_the_context():
    # repeat_last_n 2^31-1 (or 2^40, saturated) used to make the sampler reserve a window of
    # 2^31 tokens (8 GiB) for every request; the window is now at most the context, as -1
    # is. Under a 3 GiB address-space limit the old reservation fails the request.
    if os.environ.get("DWELL_SANITIZE") == "1":
        return  # sanitizer builds reserve terabytes of address space: no limit can apply
    with ds.Server(limit_as=3 << 30) as s:
        s.create("m", ds.STORIES)
        for v in (2 ** 31 - 1, 2 ** 40, -1):
            r = s.generate("m", "Once", options={"temperature": 0, "num_predict": 4,
                                                  "repeat_last_n": v, "repeat_penalty": 1.5})
            assert r.status == 200 and r.json()["eval_count"] == 4, (v, r)


def test_num_batch_beyond_engine_limit_400():
    # num_batch above the engine's 65536 used to pass the option check and fail the load's
    # memory estimate: a 500 claiming the model needs 16 EiB. It is a bad option: 400.
    r = S.generate("m", "Once", options={"num_batch": 1e6, "num_predict": 1})
    assert_native_error(r, 400, "num_batch 1e6")
    assert "num_batch" in r.json()["error"], r
    r = S.generate("m", "Once", options={"num_batch": 65536, "num_predict": 1})
    assert r.status == 200, r


def test_model_keep_alive_parameter_of_centuries():
    # A model's PARAMETER keep_alive is minutes; 1e300 of them used to overflow the
    # conversion to nanoseconds. It means "forever". (Another GGUF than m's: a loaded model
    # is shared by every name of its weights.)
    S.create("kaforever", ds.TINY, parameters={"keep_alive": 1e300})
    r = S.generate("kaforever", "Once", options={"num_predict": 1})
    assert r.status == 200, r
    e = [m for m in S.ps() if m["name"] == "kaforever:latest"]
    assert e and e[0]["pinned"], S.ps()
    r = S.post("/api/generate", {"model": "kaforever", "keep_alive": 0})
    assert r.status == 200, r


def test_too_many_stop_strings_refused():
    # Stop strings past the 16th were silently dropped: a 17th that matched did not stop
    # the generation. More than 16 is refused (400, on every layer that takes them); up to
    # 16 every one is honoured.
    stops = ["zz%d" % i for i in range(15)] + ["time"]
    greedy = {"temperature": 0, "num_predict": 8}
    r = S.generate("m", "Once", options=dict(greedy, stop=stops))
    assert r.status == 200, r
    o = r.json()
    assert o["done_reason"] == "stop" and "time" not in o["response"], o
    r = S.generate("m", "Once", options=dict(greedy, stop=["zz"] + stops))
    assert_native_error(r, 400, "17 stop strings")
    assert "stop" in r.json()["error"], r
    r = S.post("/v1/completions", {"model": "m", "prompt": "Once", "max_tokens": 8,
                                   "stop": ["zz"] + stops})
    assert r.status == 400 and "stop" in r.json()["error"]["message"], r
    r = S.post("/api/create", {"model": "manystops", "from": "m", "stream": False,
                               "parameters": {"stop": ["zz"] + stops}})
    assert_native_error(r, 400, "create with 17 stop strings")


def test_log_lines_cannot_be_forged():
    # A model name is logged as the client sent it; a newline in it used to start a new
    # log line that looked like the server's own. Control characters are escaped.
    forged = "x\ntime=2000-01-01T00:00:00.000Z level=ERROR msg=forged\r\x1b[2J"
    r = S.post("/api/generate", {"model": forged, "prompt": "hi"})
    assert_native_error(r, 400, "a name with a newline")
    r = S.post("/api/create", {"model": "forge", "from": forged, "stream": False})
    assert r.status in (400, 404), r
    S.wait_for(lambda: "msg=forged" in S.log(), timeout=5, what="the name in the log")
    for line in S.log().splitlines():
        assert not line.startswith("time=2000"), line
        assert "\r" not in line and "\x1b" not in line, repr(line)
    assert "\\ntime=2000-01-01" in S.log() and "\\x1b[2J" in S.log(), S.log()[-2000:]


def test_still_serving():
    assert S.alive()
    r = S.generate("m", "Once", options={"temperature": 0, "num_predict": 2})
    assert r.status == 200 and r.json()["done"], r


def main():
    global S
    with ds.Server() as s:
        S = s
        s.create("m", ds.STORIES)
        ds.main([test_huge_integer_options_saturate, test_repeat_window_is_capped_by_the_context,
                 test_num_batch_beyond_engine_limit_400,
                 test_model_keep_alive_parameter_of_centuries, test_too_many_stop_strings_refused,
                 test_log_lines_cannot_be_forged, test_still_serving])


if __name__ == "__main__":
    main()
