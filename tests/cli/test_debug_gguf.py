"""`dwell debug gguf` and `dwell debug mkmodel` from the command line: JSON output of a shared
model, clean errors (exit 1, one `Error:` line) for truncated and missing files, and a
synthetic model written by mkmodel read back through debug gguf."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BIN = os.environ.get("DWELL_BIN", "")
SHARED = os.environ.get("DWELL_SHARED", "")
MODEL = os.path.join(SHARED, "models", "tiny-llama256-mixed.gguf")


def run(*args, timeout=120):
    return subprocess.run([BIN, "debug", *args], capture_output=True, text=True,
                          timeout=timeout)


class DebugGguf(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dwell-test-debug-gguf-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_json_of_a_shared_model(self):
        r = run("gguf", MODEL, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["version"], 3)
        self.assertEqual(j["alignment"], 32)
        self.assertEqual(j["file_size"], os.path.getsize(MODEL))
        md = j["metadata"]
        self.assertEqual(md["general.architecture"], "llama")
        self.assertIsInstance(md["llama.block_count"], int)
        toks = md["tokenizer.ggml.tokens"]
        self.assertEqual(toks["type"], "STRING")  # long arrays are summarized
        self.assertGreater(toks["n"], 16)
        self.assertEqual(len(j["tensors"]), 20)
        types = {t["type"] for t in j["tensors"]}
        for want in ("Q6_K", "Q4_K", "Q8_0", "Q4_0", "F16", "BF16", "F32"):
            self.assertIn(want, types)
        emb = next(t for t in j["tensors"] if t["name"] == "token_embd.weight")
        self.assertEqual(len(emb["shape"]), 2)
        for t in j["tensors"]:
            self.assertEqual(t["offset"] % 32, 0)
            self.assertLessEqual(j["data_offset"] + t["offset"] + t["bytes"], j["file_size"])

    def test_text_output(self):
        r = run("gguf", MODEL)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("general.architecture", r.stdout)
        self.assertIn("token_embd.weight", r.stdout)
        self.assertIn("...", r.stdout)  # the token list is abbreviated
        self.assertLess(len(r.stdout), 20000)

    def test_truncated_copy_fails_cleanly(self):
        with open(MODEL, "rb") as f:
            data = f.read()
        path = os.path.join(self.tmp, "cut.gguf")
        for size, want in ((len(data) - 4096, "past the end of the file"),
                           (1000, "key tokenizer.ggml.tokens"),
                           (12, "header truncated")):
            with open(path, "wb") as f:
                f.write(data[:size])
            r = run("gguf", path, "--json")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertEqual(r.stdout, "")
            self.assertTrue(r.stderr.startswith("Error: "), r.stderr)
            self.assertIn(want, r.stderr)
            self.assertIn("cut.gguf", r.stderr)
            self.assertEqual(r.stderr.count("\n"), 1)

    def test_missing_and_not_gguf(self):
        r = run("gguf", os.path.join(self.tmp, "nope.gguf"), "--json")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("Error: "))
        self.assertIn("nope.gguf", r.stderr)
        path = os.path.join(self.tmp, "text.gguf")
        with open(path, "w") as f:
            f.write("hello, this is not a model\n")
        r = run("gguf", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a GGUF file", r.stderr)
        r = run("gguf", "--bogus", MODEL)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown option", r.stderr)

    def test_help_mentions_the_summary(self):
        r = run("gguf", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn('"n"', r.stdout)

    def test_mkmodel_round_trip(self):
        out = os.path.join(self.tmp, "m.gguf")
        r = run("mkmodel", out, "--arch", "qwen2", "--dim", "128", "--layers", "2",
                "--heads", "4", "--kv-heads", "2", "--ffn", "256", "--type", "Q4_0",
                "--untied", "--seed", "7", "--name", "cli-test")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(run("gguf", out, "--json").stdout)
        md = j["metadata"]
        self.assertEqual(md["general.architecture"], "qwen2")
        self.assertEqual(md["general.name"], "cli-test")
        self.assertEqual(md["general.file_type"], 2)
        self.assertEqual(md["qwen2.embedding_length"], 128)
        self.assertEqual(md["qwen2.attention.head_count_kv"], 2)
        self.assertEqual(md["tokenizer.ggml.model"], "gpt2")
        self.assertIn("<|im_start|>", md["tokenizer.chat_template"])
        names = {t["name"]: t for t in j["tensors"]}
        self.assertIn("output.weight", names)
        self.assertEqual(names["blk.1.attn_k.bias"]["shape"], [64])
        self.assertEqual(names["blk.0.ffn_down.weight"]["shape"], [256, 128])
        self.assertEqual(names["blk.0.ffn_down.weight"]["type"], "Q4_0")
        self.assertEqual(names["blk.0.ffn_norm.weight"]["type"], "F32")

    def test_mkmodel_rejects_bad_arguments(self):
        out = os.path.join(self.tmp, "bad.gguf")
        for args, want in ((["--dim", "100", "--heads", "3"], "not divisible by the head count"),
                           (["--type", "Q4_K", "--dim", "128"], "multiples of 256"),
                           (["--type", "Q7_0"], "unknown type"),
                           (["--layers", "zero"], "expected an integer"),
                           (["--dim"], "needs a value")):
            r = run("mkmodel", out, *args)
            self.assertEqual(r.returncode, 1, args)
            self.assertTrue(r.stderr.startswith("Error: "), r.stderr)
            self.assertIn(want, r.stderr)
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    if not BIN or not os.path.isfile(BIN):
        print("DWELL_BIN is not set or missing: run through ctest")
        sys.exit(1)
    if not os.path.isfile(MODEL):
        print(f"{MODEL} is missing (DWELL_SHARED)")
        sys.exit(1)
    unittest.main(verbosity=2)
