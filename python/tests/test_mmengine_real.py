"""InterleaveRecorderHook in a real mmengine 0.10.7 Runner (python/tests/mmengine_toy.py: PET-DINO's
module names, AdamW with paramwise lr_mult custom_keys, LinearLR warm-up + MultiStepLR, PET-DINO's
prompt-type switch hook, 200 iterations of an IterBasedTrainLoop), run in child processes.

Skipped loudly without mmengine (see _mmengine.py); INTERLEAVE_REQUIRE_MMENGINE=1 fails instead.
test/adapters/mmengine-real.test.ts drives the same toy from vitest and adds global
accumulative_counts mixing modalities and the run's own scalars.json.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from _mmengine import MMENGINE_MISSING, MMENGINE_PATH, MMENGINE_SKIP, MMENGINE_VERSION, REQUIRE, child_env
from _util import HERE, ROOT, read_log, scenario

import interleave_sdk as sdk

TOY = os.path.join(HERE, "mmengine_toy.py")
SPEC_NAME = "petdino-mmengine-toy"
SPEC_FILE = os.path.join(HERE, "scenarios", f"{SPEC_NAME}.json")
ITERS = 200
NODE = shutil.which("node")


def toy_spec():
    with open(SPEC_FILE, encoding="utf-8") as f:
        return json.load(f)


def run_toy(work, *args, timeout=600):
    """Runs the toy in a child process; returns (stdout's last JSON line, all output, the interleave log)."""
    log = os.path.join(work, "run.jsonl")
    r = subprocess.run([sys.executable, TOY, "--work-dir", work, "--log", log, "--iters", str(ITERS), *args],
                       env=child_env(MMENGINE_PATH), capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    if r.returncode != 0:
        raise AssertionError(f"the mmengine toy run failed (exit {r.returncode}):\n{out[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1]), out, log


def mmengine_log_text(work):
    """The text of mmengine's own log file (work_dir/<timestamp>/<timestamp>.log)."""
    for dirpath, _dirs, files in os.walk(work):
        for f in files:
            if f.endswith(".log"):
                with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                    return fh.read()
    raise AssertionError(f"no mmengine log file under {work}")


def cli_verify(log, *args):
    if NODE is None:
        raise unittest.SkipTest("!!! node is not on PATH: the `interleave verify --log` check is SKIPPED !!!")
    r = subprocess.run([NODE, os.path.join(ROOT, "bin", "interleave.mjs"), "verify", "--log", log, *args, "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"interleave verify printed no JSON (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


class RealMmengine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if MMENGINE_MISSING is not None:
            if REQUIRE:
                raise AssertionError(f"INTERLEAVE_REQUIRE_MMENGINE=1 but {MMENGINE_SKIP}")
            raise unittest.SkipTest(MMENGINE_SKIP)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.work = os.path.join(cls.tmp.name, "run")
        cls.result, cls.output, cls.log_path = run_toy(cls.work)
        cls.log = read_log(cls.log_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_trains_every_iteration_and_records_it(self):
        self.assertEqual(self.result["iter"], ITERS)
        self.assertEqual(self.log[0]["type"], "RunStarted")
        self.assertEqual(self.log[0]["data"]["versions"]["mmengine"], MMENGINE_VERSION)
        self.assertEqual(MMENGINE_VERSION, "0.10.7")
        self.assertEqual(self.log[-1]["type"], "RunCompleted")
        steps = [e["data"] for e in self.log if e["type"] == "StepCompleted"]
        self.assertEqual([d["step"] for d in steps], list(range(ITERS)))
        self.assertNotIn("InterleaveRecorderHook stopped", self.output)

    def test_each_iteration_has_its_own_lr_modality_and_update(self):
        """The lr of all four spec groups, read from mmengine's one-group-per-parameter optimizer,
        is the spec's lr of THAT iteration (not the next one's: ParamSchedulerHook has stepped by
        the time after_train_iter runs); the modality is PET-DINO's predicate's."""
        spec = toy_spec()
        for e in self.log:
            if e["type"] != "StepCompleted":
                continue
            d = e["data"]
            plan = sdk.plan_step(spec, d["step"])
            self.assertEqual(sorted(d["lr"]), sorted(plan["lr"]))
            for g, want in plan["lr"].items():
                self.assertLess(abs(d["lr"][g] - want), 1e-9 * want, (d["step"], g, d["lr"][g], want))
            self.assertEqual(d["modality"], "visual" if (d["step"] + 1) % 9 < 8 else "text", d["step"])
            self.assertEqual(d["modality"], plan["modality"])
            self.assertIs(d["update"], True)
            self.assertEqual(set(d["losses"]), {"loss_cls", "loss_bbox", "total"})
            self.assertAlmostEqual(d["losses"]["total"], d["losses"]["loss_cls"] + d["losses"]["loss_bbox"], places=5)
            self.assertEqual(d["samples"], 8)
            self.assertGreater(d["durationMs"], 0)
            self.assertGreater(d["memory"]["rssBytes"], 0)

    def test_interleave_verify_passes_every_rule(self):
        rc, report = cli_verify(self.log_path)
        self.assertEqual((rc, report["violationTotal"], report["violations"][:3]), (0, 0, []))
        self.assertTrue(report["ok"])
        self.assertEqual(report["steps"], ITERS)
        for rule in ("lr-matches-spec", "lr-group-ratios", "lr-warmup", "lr-decay", "modality-pattern", "accumulation"):
            self.assertIn(rule, report["rulesChecked"])

    def test_read_log_of_the_run(self):
        rows = sdk.read_log(self.log_path)
        self.assertEqual(rows["run"]["ending"], "completed")
        self.assertEqual(len(rows["steps"]), ITERS)
        self.assertEqual(rows["steps"][7]["modality"], "text")
        self.assertIn("lr.language-model", rows["steps"][0])


class RealMmengineHookFailure(unittest.TestCase):
    """The same run with the recorder made to raise at iteration 60: training finishes all 200
    iterations, mmengine's log has ONE warning, interleave's log ends with RunAborted (the
    reason) after the 60 recorded steps, and verify checks that prefix."""

    def setUp(self):
        if MMENGINE_MISSING is not None:
            if REQUIRE:
                raise AssertionError(f"INTERLEAVE_REQUIRE_MMENGINE=1 but {MMENGINE_SKIP}")
            self.skipTest(MMENGINE_SKIP)
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_raising_hook_does_not_stop_training(self):
        work = os.path.join(self.tmp.name, "run")
        result, output, log_path = run_toy(work, "--raise-at", "60")
        self.assertEqual(result["iter"], ITERS)
        text = mmengine_log_text(work)
        warnings = [line for line in text.splitlines() if "InterleaveRecorderHook stopped recording" in line]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("WARNING", warnings[0])
        self.assertIn("after_train_iter at iteration 60", warnings[0])
        self.assertIn("planted failure", warnings[0])
        self.assertRegex(text, rf"\]\[{ITERS}/\d+\]")  # LoggerHook's row of the last iteration (mmengine's own log)
        log = read_log(log_path)
        self.assertEqual([e["data"]["step"] for e in log if e["type"] == "StepCompleted"], list(range(60)))
        self.assertEqual(log[-1]["type"], "RunAborted")
        self.assertIn("training went on", log[-1]["data"]["reason"])
        rc, report = cli_verify(log_path)
        # An unfinished log is judged at its recorded length: the 60 steps before the failure.
        self.assertEqual((rc, report["ok"], report["steps"], report["violationTotal"]), (0, True, 60, 0))


if __name__ == "__main__":
    unittest.main()
