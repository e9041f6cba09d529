"""Recorder: interleave's JSONL log written from a loop the trainer owns."""

import math
import os
import tempfile
import unittest

from _util import SCENARIOS, read_log, scenario

import interleave_sdk as sdk

STEP_KEYS = {"_tag", "step", "phase", "phaseStep", "modality", "cycle", "position", "micro", "update", "lr",
             "losses", "durationMs", "samples", "memory"}
RUN_STARTED_KEYS = {"_tag", "runId", "spec", "specHash", "source", "steps", "seed", "adapter", "versions",
                    "startedAt", "engine"}


def tiny_spec():
    return {
        "name": "rec",
        "seed": 3,
        "phases": [
            {"name": "warm", "steps": 3, "ratio": {"visual": 0, "text": 1}},
            {"name": "joint", "steps": 9, "ratio": {"visual": 2, "text": 1}},
        ],
        "batch": {"visual": {"size": 4, "accumulation": 2}, "text": {"size": 2}},
        "optimizer": {"kind": "adamw", "lr": 0.001, "groups": [{"name": "backbone", "lrMultiplier": 0.1}, {"name": "head"}]},
    }


LR = {"backbone": 1e-4, "head": 1e-3}


class RecorderLog(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "run.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def run_schedule(self, rec, spec, upto):
        for s in range(upto):
            p = sdk.plan_step(spec, s)
            rec.step(s, p["modality"], lr=LR, losses={"cls": 1.0, "total": 2.0 / (1 + s)}, duration_ms=5.0,
                     update=p["update"], memory={"rssBytes": 1000 + s, "peakBytes": 10})

    def test_full_log(self):
        spec = tiny_spec()
        rec = sdk.Recorder(self.path, spec, trainer_name="loop", framework="torch x", device="cpu", info={"k": 1})
        self.run_schedule(rec, spec, 12)
        rec.evaluation(11, "recall", {"visual": 0.5, "text": 0.25}, chance=1 / 3)
        rec.close()
        log = read_log(self.path)
        self.assertEqual([e["position"] for e in log], list(range(len(log))))
        for e in log:
            self.assertEqual(set(e), {"type", "version", "position", "recordedAt", "data"})
            self.assertEqual(e["data"]["_tag"], e["type"])
            self.assertEqual(e["version"], sdk.EVENT_VERSIONS[e["type"]])
            self.assertIsInstance(e["recordedAt"], int)
        types = [e["type"] for e in log]
        self.assertEqual(types[0], "RunStarted")
        self.assertEqual(types[-1], "RunCompleted")
        self.assertEqual(types.count("StepCompleted"), 12)
        started = log[0]["data"]
        self.assertEqual(set(started), RUN_STARTED_KEYS)
        self.assertEqual(started["spec"], sdk.normalize_spec(spec))
        self.assertEqual(started["specHash"], sdk.spec_hash(spec))
        self.assertEqual(started["source"], "recorder: loop")
        self.assertEqual((started["steps"], started["seed"]), (12, 3))
        self.assertEqual(started["engine"], {"evalEvery": 0, "checkpointEvery": 0})
        self.assertEqual(started["adapter"]["kind"], "recorder")
        self.assertEqual(started["adapter"]["options"], {})
        info = started["adapter"]["info"]
        self.assertEqual((info["trainer"], info["framework"], info["device"], info["k"]), ("loop", "torch x", "cpu", "1"))
        self.assertTrue(all(isinstance(v, str) for v in info.values()))
        self.assertTrue(all(isinstance(v, str) for v in started["versions"].values()))
        self.assertIn("python", started["versions"])
        self.assertTrue(started["runId"].startswith("rec-"))
        # PhaseStarted right before each phase's first step.
        phases = [(i, e["data"]) for i, e in enumerate(log) if e["type"] == "PhaseStarted"]
        self.assertEqual([(d["phase"], d["index"], d["step"]) for _, d in phases], [("warm", 0, 0), ("joint", 1, 3)])
        for i, d in phases:
            self.assertEqual(log[i + 1]["type"], "StepCompleted")
            self.assertEqual(log[i + 1]["data"]["step"], d["step"])
        steps = [e["data"] for e in log if e["type"] == "StepCompleted"]
        for d in steps:
            self.assertEqual(set(d), STEP_KEYS)
            p = sdk.plan_step(spec, d["step"])
            for k in ("phase", "phaseStep", "modality", "cycle", "position", "micro", "update"):
                self.assertEqual(d[k], p[k], (d["step"], k))
            self.assertEqual(d["lr"], LR)
            self.assertEqual(d["memory"], {"rssBytes": 1000 + d["step"], "peakBytes": 10})
            self.assertEqual(d["durationMs"], 5.0)
        self.assertEqual(steps[0]["samples"], 2)  # text batch size from the spec
        self.assertEqual(steps[3]["samples"], 4)
        ev = log[-2]["data"]
        self.assertEqual((log[-2]["type"], ev["step"], ev["metric"], ev["values"]), ("EvalCompleted", 11, "recall", {"visual": 0.5, "text": 0.25}))
        self.assertAlmostEqual(ev["chance"], 1 / 3)
        self.assertEqual(log[-1]["data"]["steps"], 12)
        self.assertEqual(set(log[-1]["data"]), {"_tag", "steps", "completedAt"})

    def test_micro_counts_what_the_trainer_did(self):
        # The trainer accumulates 3 visual micro-steps across a text step: recorded as it happened.
        spec = tiny_spec()
        with sdk.Recorder(self.path, spec, steps=9) as rec:
            said = [("text", True), ("text", True), ("text", True),  # warm
                    ("visual", False), ("visual", False), ("text", True), ("visual", False), ("visual", True), ("text", True)]
            for s, (m, u) in enumerate(said):
                rec.step(s, m, lr=LR, losses={"total": 1.0}, update=u)
        steps = [e["data"] for e in read_log(self.path) if e["type"] == "StepCompleted"]
        self.assertEqual([d["micro"] for d in steps], [0, 0, 0, 0, 1, 0, 0, 1, 0])
        self.assertEqual([d["modality"] for d in steps], [m for m, _ in said])  # never from the spec
        self.assertEqual(read_log(self.path)[0]["data"]["steps"], 9)

    def test_context_manager_aborts_on_exception(self):
        spec = tiny_spec()
        with self.assertRaises(RuntimeError):
            with sdk.Recorder(self.path, spec) as rec:
                rec.step(0, "text", lr=LR, losses={"total": 1.0})
                raise RuntimeError("CUDA out of memory\nat step 1")
        log = read_log(self.path)
        self.assertEqual(log[-1]["type"], "RunAborted")
        self.assertEqual(log[-1]["data"]["reason"], "RuntimeError: CUDA out of memory at step 1")
        self.assertIn("abortedAt", log[-1]["data"])
        self.assertTrue(rec.closed)

    def test_close_aborted_with_step(self):
        rec = sdk.Recorder(self.path, tiny_spec())
        rec.close("aborted", "killed by the scheduler", step=4)
        rec.close()  # a second close does nothing
        last = read_log(self.path)[-1]
        self.assertEqual((last["type"], last["data"]["reason"], last["data"]["step"]), ("RunAborted", "killed by the scheduler", 4))
        with self.assertRaises(RuntimeError):
            rec.step(0, "text", lr=LR, losses={"total": 1})

    def test_nan_loss_becomes_step_failed(self):
        with sdk.Recorder(self.path, tiny_spec()) as rec:
            rec.step(0, "text", lr=LR, losses={"total": 1.0})
            rec.step(1, "text", lr=LR, losses={"cls": math.inf, "total": math.nan})
            rec.step(2, "text", lr=LR, losses={"total": 1.0})
        log = read_log(self.path)
        failed = [e["data"] for e in log if e["type"] == "StepFailed"]
        self.assertEqual(len(failed), 1)
        self.assertEqual((failed[0]["step"], failed[0]["kind"], failed[0]["phase"]), (1, "nan-loss", "warm"))
        self.assertEqual(set(failed[0]), {"_tag", "step", "phase", "modality", "kind", "message"})
        self.assertEqual(log[-1]["data"]["steps"], 2)

    def test_each_line_is_flushed(self):
        rec = sdk.Recorder(self.path, tiny_spec())
        rec.step(0, "text", lr=LR, losses={"total": 1.0})
        # Without close: what a killed trainer leaves is a valid prefix.
        log = read_log(self.path)
        self.assertEqual([e["type"] for e in log], ["RunStarted", "PhaseStarted", "StepCompleted"])
        rec.close()

    def test_measured_duration_between_calls(self):
        import time

        with sdk.Recorder(self.path, tiny_spec()) as rec:
            rec.step(0, "text", lr=LR, losses={"total": 1.0})
            time.sleep(0.02)
            rec.step(1, "text", lr=LR, losses={"total": 1.0})
        d = [e["data"]["durationMs"] for e in read_log(self.path) if e["type"] == "StepCompleted"]
        self.assertGreaterEqual(d[1], 15)

    def test_bad_input_is_refused(self):
        rec = sdk.Recorder(self.path, os.path.join(SCENARIOS, "visual-only.json"), seed=1)
        lr = {"backbone": 1, "text-encoder": 1, "visual-encoder": 1, "head": 1}
        with self.assertRaisesRegex(ValueError, "missing parameter group"):
            rec.step(0, "visual", lr={"backbone": 1}, losses={"total": 1})
        with self.assertRaisesRegex(ValueError, "modality"):
            rec.step(0, "audio", lr=lr, losses={"total": 1})
        with self.assertRaisesRegex(ValueError, "total"):
            rec.step(0, "visual", lr=lr, losses={"cls": 1})
        with self.assertRaisesRegex(ValueError, "memory key"):
            rec.step(0, "visual", lr=lr, losses={"total": 1}, memory={"logicalBytes": 1})
        rec.step(5, "visual", lr=lr, losses={"total": 1})
        with self.assertRaisesRegex(ValueError, "strictly increasing"):
            rec.step(5, "visual", lr=lr, losses={"total": 1})
        with self.assertRaisesRegex(ValueError, "outside the schedule"):
            rec.step(10**6, "visual", lr=lr, losses={"total": 1})
        rec.close()
        log = read_log(self.path)
        self.assertEqual(log[0]["data"]["seed"], 1)
        self.assertEqual(log[0]["data"]["specHash"], sdk.spec_hash(scenario("visual-only")))
        self.assertEqual([e["position"] for e in log], list(range(len(log))))


if __name__ == "__main__":
    unittest.main()
