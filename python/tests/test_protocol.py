"""serve(): the step protocol through a real subprocess pipe, with a torch-free fake trainer."""

import json
import os
import sys
import tempfile
import unittest

from _util import HERE, Child

import interleave_sdk as sdk

SPEC = {
    "name": "proto",
    "seed": 5,
    "phases": [{"name": "joint", "steps": 20, "ratio": {"visual": 2, "text": 1}}],
    "batch": {"visual": {"size": 4}, "text": {"size": 6}},
    "optimizer": {"kind": "adamw", "lr": 0.001, "groups": [{"name": "backbone"}, {"name": "head"}]},
}


def fake(options=None):
    c = Child([sys.executable, os.path.join(HERE, "fake_trainer.py")])
    ready = c.rpc({"type": "hello", "id": 0, "protocol": 1, "spec": sdk.normalize_spec(SPEC), "options": options or {}})
    return c, ready


class ProtocolRoundTrip(unittest.TestCase):
    def test_full_session(self):
        c, ready = fake({"noisy": True})
        self.assertEqual(ready["type"], "ready")
        self.assertEqual(ready["id"], 0)
        self.assertEqual(ready["protocol"], 1)
        self.assertEqual(ready["trainer"], {"name": "fake", "version": "9"})
        self.assertEqual(ready["device"], "fake")
        self.assertEqual(ready["framework"], "none")
        self.assertIs(ready["stateless"], False)
        self.assertEqual(ready["capabilities"], {"evaluate": True, "checkpoint": True})
        self.assertEqual(ready["info"], {"flavour": "42"})
        spec = sdk.normalize_spec(SPEC)
        rid = 1
        for s in range(6):
            plan = sdk.plan_step(spec, s)
            r = c.rpc({"type": "step", "id": rid, "plan": plan})
            self.assertEqual(r["type"], "outcome", r)
            self.assertEqual((r["id"], r["step"]), (rid, s))
            self.assertIn("total", r["losses"])
            self.assertGreaterEqual(r["durationMs"], 0)
            if plan["modality"] == "text":
                self.assertEqual(r["samples"], 3)  # StepResult's samples
                self.assertEqual(r["memory"]["peakBytes"], 123)  # trainer-given key kept
            else:
                self.assertEqual(r["samples"], 4)  # default: the spec's batch size
                self.assertNotIn("peakBytes", r["memory"])  # no CUDA: no peak
            if sys.platform.startswith("linux"):
                self.assertGreater(r["memory"]["rssBytes"], 0)
            self.assertTrue(set(r["memory"]) <= set(sdk.MEMORY_KEYS))
            rid += 1
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ck.json")
            self.assertEqual(c.rpc({"type": "checkpoint", "id": rid, "path": path}),
                             {"type": "checkpointed", "id": rid, "path": path})
            rid += 1
            self.assertEqual(c.rpc({"type": "restore", "id": rid, "path": path}),
                             {"type": "restored", "id": rid, "path": path})
            rid += 1
        ev = c.rpc({"type": "evaluate", "id": rid})
        self.assertEqual(ev["type"], "evaluation")
        self.assertEqual(ev["metric"], "fake")
        self.assertEqual(set(ev["values"]), {"visual", "text"})
        self.assertAlmostEqual(ev["chance"], 1 / 3)
        rid += 1
        self.assertEqual(c.rpc({"type": "close", "id": rid}), {"type": "closed", "id": rid})
        rc, rest, err = c.finish()
        self.assertEqual(rc, 0)
        self.assertEqual(rest, b"", "nothing may follow the closed reply on stdout")
        # The stray prints all went to stderr, the protocol channel stayed clean.
        for what in ("stray print in step", "stray sys.stdout.write in step", "stray os.write(1) in step"):
            self.assertIn(what, err)

    def test_every_stdout_line_is_a_reply(self):
        # Independent check: raw stdout bytes, each line JSON with a type and an id.
        c, _ = fake({"noisy": True})
        spec = sdk.normalize_spec(SPEC)
        for i in range(3):
            c.send_raw((json.dumps({"type": "step", "id": i + 1, "plan": sdk.plan_step(spec, i)}) + "\n").encode())
        c.send_raw(b'{"type":"close","id":4}\n')
        rc, rest, _ = c.finish()
        lines = rest.decode().splitlines()
        self.assertEqual(rc, 0)
        self.assertEqual([json.loads(x)["id"] for x in lines], [1, 2, 3, 4])

    def test_eof_without_close_exits_1(self):
        c, _ = fake()
        rc, rest, err = c.finish()
        self.assertEqual((rc, rest), (1, b""))
        self.assertIn("input ended without close", err)


class ProtocolFailures(unittest.TestCase):
    def setUp(self):
        self.c, _ = fake({"nanAt": 1, "raiseAt": 2, "oomAt": 3, "assertAt": 4})
        self.spec = sdk.normalize_spec(SPEC)

    def tearDown(self):
        self.c.rpc({"type": "close", "id": 999})
        rc, _, self.err = self.c.finish()
        self.assertEqual(rc, 0)

    def step(self, s, rid):
        return self.c.rpc({"type": "step", "id": rid, "plan": sdk.plan_step(self.spec, s)})

    def test_failure_kinds(self):
        self.assertEqual(self.step(0, 1)["type"], "outcome")
        nan = self.step(1, 2)
        self.assertEqual((nan["type"], nan["id"], nan["kind"]), ("failure", 2, "nan-loss"))
        self.assertIn("total=nan", nan["message"])
        err = self.step(2, 3)
        self.assertEqual(err["kind"], "trainer-error")
        self.assertEqual(err["message"], "ValueError: broken batch at step 2 second line")  # one line
        self.assertNotIn("Traceback", err["message"])
        self.assertEqual(self.step(3, 4)["kind"], "out-of-memory")
        self.assertEqual(self.step(4, 5)["kind"], "device-lost")
        # The session goes on after failures.
        self.assertEqual(self.step(5, 6)["type"], "outcome")

    def test_garbage_and_invalid_requests(self):
        cases = [
            (b"this is not json\n", None, "not JSON"),
            (b"[1, 2]\n", None, "expected a JSON object"),
            (b'{"type":"step"}\n', None, "id must be an integer"),
            (b'{"type":"step","id":"7"}\n', "7", "id must be an integer"),
            (b'{"type":"launch","id":7}\n', 7, 'unknown type "launch"'),
            (b'{"type":"step","id":8}\n', 8, "step needs a plan"),
            (b'{"type":"step","id":9,"plan":{"step":0}}\n', 9, "plan.modality: missing"),
            (b'{"type":"checkpoint","id":10}\n', 10, "needs a path"),
        ]
        for raw, rid, what in cases:
            self.c.send_raw(raw)
            r = self.c.reply()
            self.assertEqual((r["type"], r["id"], r["kind"]), ("failure", rid, "trainer-error"), raw)
            self.assertIn(what, r["message"], raw)
        self.c.send_raw(b"\n")  # blank lines are ignored, no reply
        self.assertEqual(self.step(0, 11)["type"], "outcome")

    def test_restore_of_missing_file(self):
        r = self.c.rpc({"type": "restore", "id": 1, "path": "/nonexistent/ck.json"})
        self.assertEqual((r["type"], r["kind"]), ("failure", "trainer-error"))
        self.assertIn("FileNotFoundError", r["message"])


class Handshake(unittest.TestCase):
    def test_traceback_goes_to_stderr(self):
        c, _ = fake({"raiseAt": 0})
        self.assertEqual(c.rpc({"type": "step", "id": 1, "plan": sdk.plan_step(SPEC, 0)})["kind"], "trainer-error")
        c.rpc({"type": "close", "id": 2})
        rc, _, err = c.finish()
        self.assertEqual(rc, 0)
        self.assertIn("Traceback", err)
        self.assertIn("broken batch at step 0", err)

    def test_wrong_protocol_and_requests_before_hello(self):
        c = Child([sys.executable, os.path.join(HERE, "fake_trainer.py")])
        r = c.rpc({"type": "step", "id": 1, "plan": sdk.plan_step(SPEC, 0)})
        self.assertEqual(r["kind"], "trainer-error")
        self.assertIn("before hello", r["message"])
        r = c.rpc({"type": "hello", "id": 2, "protocol": 2, "spec": SPEC, "options": {}})
        self.assertEqual((r["type"], r["id"]), ("failure", 2))
        self.assertIn("protocol version 2 is not supported", r["message"])
        self.assertEqual(c.rpc({"type": "hello", "id": 3, "protocol": 1, "spec": SPEC, "options": {}})["type"], "ready")
        c.rpc({"type": "close", "id": 4})
        self.assertEqual(c.finish()[0], 0)

    def test_in_process_streams_without_optional_callbacks(self):
        import io

        reqs = [
            {"type": "hello", "id": 0, "protocol": 1, "spec": SPEC, "options": {}},
            {"type": "step", "id": 1, "plan": sdk.plan_step(SPEC, 0)},
            {"type": "evaluate", "id": 2},
            {"type": "checkpoint", "id": 3, "path": "/tmp/x"},
            {"type": "close", "id": 4},
        ]
        inp = io.BytesIO("".join(json.dumps(r) + "\n" for r in reqs).encode())
        out = io.BytesIO()
        saved = sys.stdout
        rc = sdk.serve(lambda plan: (print("user print"), {"total": 0.25})[1], stdin=inp, stdout=out, stateless=True)
        self.assertIs(sys.stdout, saved)
        self.assertEqual(rc, 0)
        replies = [json.loads(x) for x in out.getvalue().decode().splitlines()]
        self.assertEqual([r["type"] for r in replies], ["ready", "outcome", "failure", "failure", "closed"])
        self.assertEqual(replies[0]["capabilities"], {"evaluate": False, "checkpoint": False})
        self.assertIs(replies[0]["stateless"], True)
        self.assertEqual(replies[1]["losses"], {"total": 0.25})
        self.assertIn("no evaluate", replies[2]["message"])
        self.assertIn("cannot checkpoint", replies[3]["message"])


class Reproducibility(unittest.TestCase):
    def serve(self, hello_result=None, **kw):
        import io

        reqs = [{"type": "hello", "id": 0, "protocol": 1, "spec": SPEC, "options": {}}, {"type": "close", "id": 1}]
        inp = io.BytesIO("".join(json.dumps(r) + "\n" for r in reqs).encode())
        out = io.BytesIO()
        hello = (lambda spec, options: dict(hello_result)) if hello_result is not None else None
        sdk.serve(lambda plan: {"total": 1.0}, hello=hello, stdin=inp, stdout=out, **kw)
        return [json.loads(x) for x in out.getvalue().decode().splitlines()][0]

    def test_ready_says_how_reproducible(self):
        self.assertNotIn("reproducible", self.serve())
        self.assertEqual(self.serve(reproducible="exact")["reproducible"], "exact")
        self.assertEqual(self.serve(reproducible={"relTolerance": 0.01})["reproducible"], {"relTolerance": 0.01})
        # The hello callback knows the device: its key wins, and is not left in info.
        ready = self.serve({"device": "cuda:0", "reproducible": {"relTolerance": 0.02, "durationRelTolerance": 0.5}},
                           reproducible="exact")
        self.assertEqual(ready["reproducible"], {"relTolerance": 0.02, "durationRelTolerance": 0.5})
        self.assertNotIn("info", ready)

    def test_bad_value_fails_hello(self):
        ready = self.serve({"reproducible": "roughly"})
        self.assertEqual((ready["type"], ready["id"], ready["kind"]), ("failure", 0, "trainer-error"))
        self.assertIn("reproducible must be", ready["message"])
        with self.assertRaises(ValueError):
            self.serve(reproducible={"relTolerance": -1})


if __name__ == "__main__":
    unittest.main()
