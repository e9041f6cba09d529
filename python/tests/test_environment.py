"""The environment the ready reply carries: what an exact replay depends on (issue 18, item 4b)."""

import io
import json
import os
import unittest

from _util import HAVE_TORCH, TORCH_SKIP

import interleave_sdk as sdk

SPEC = {
    "name": "env",
    "phases": [{"name": "joint", "steps": 4, "ratio": {"visual": 1, "text": 1}}],
    "batch": {"visual": {"size": 2}, "text": {"size": 2}},
    "optimizer": {"kind": "sgd", "lr": 0.1, "groups": [{"name": "all"}]},
}


def ready_of(hello):
    """The ready reply of an in-process serve() whose hello callback is `hello`."""
    hello_req = {"type": "hello", "id": 0, "protocol": 1, "spec": sdk.normalize_spec(SPEC), "options": {}}
    inp = io.BytesIO((json.dumps(hello_req) + "\n" + json.dumps({"type": "close", "id": 1}) + "\n").encode())
    out = io.BytesIO()
    sdk.serve(lambda plan: {"total": 1.0}, hello=hello, stdin=inp, stdout=out)
    return json.loads(out.getvalue().decode().splitlines()[0])


class Environment(unittest.TestCase):
    def test_ready_carries_the_environment(self):
        ready = ready_of(lambda spec, options: {"device": "cpu"})
        self.assertEqual(ready["type"], "ready")
        env = ready["environment"]
        self.assertTrue(all(isinstance(v, str) for v in env.values()), env)
        for key in ("python", "blas", "cpu"):
            self.assertIn(key, env)
        self.assertNotEqual(env["cpu"], "")
        if os.path.exists("/proc/cpuinfo"):
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                models = [line.partition(":")[2].strip() for line in f if line.startswith("model name")]
            if models:
                self.assertEqual(env["cpu"], models[0])
        # Not part of info: the engine records it apart, and compares it on replay.
        self.assertNotIn("environment", ready.get("info", {}))

    def test_the_hello_callback_adds_and_overrides_entries(self):
        ready = ready_of(lambda spec, options: {"environment": {"blas": "mine", "cudaGraphs": False}, "model": "m"})
        self.assertEqual(ready["environment"]["blas"], "mine")
        self.assertEqual(ready["environment"]["cudaGraphs"], "False")
        self.assertEqual(ready["info"], {"model": "m"})

    def test_an_environment_that_is_not_a_dict_is_refused(self):
        ready = ready_of(lambda spec, options: {"environment": "x86"})
        self.assertEqual(ready["type"], "failure")
        self.assertIn("environment must be a dict", ready["message"])

    def test_blas_libraries_are_real_paths_libblas_first(self):
        blas = sdk.environment()["blas"]
        if blas == "none mapped":
            self.skipTest("no BLAS library is mapped in this process")
        paths = blas.split(", ")
        for p in paths:
            self.assertTrue(os.path.isabs(p) and os.path.exists(p), p)
            self.assertEqual(os.path.realpath(p), p)
        libblas = [i for i, p in enumerate(paths) if os.path.basename(p).startswith("libblas.")]
        if libblas:
            self.assertEqual(libblas[0], 0)


@unittest.skipUnless(HAVE_TORCH, TORCH_SKIP)
class TorchEnvironment(unittest.TestCase):
    def test_torch_version_build_threads_and_blas(self):
        import torch

        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            env = sdk.environment()
        finally:
            torch.set_num_threads(threads)
        self.assertEqual(env["torch"], torch.__version__)
        self.assertEqual(env["threads"], "1")
        self.assertTrue(env["torchBuild"].startswith("git "), env["torchBuild"])
        self.assertIn("BLAS_INFO=", env["torchBuild"])
        self.assertEqual(env["cuda"], str(torch.version.cuda or "none"))
        self.assertIn("cudnn", env)
        # torch links a BLAS (Debian's python3-torch: libblas.so.3, whichever alternative it points at).
        self.assertNotEqual(env["blas"], "none mapped")
        if not torch.cuda.is_available():
            self.assertNotIn("gpu", env)


if __name__ == "__main__":
    unittest.main()
