"""The reference PyTorch trainer: determinism, checkpoint/restore in a new process, accumulation,
seed checks, the alignment switch, evaluation and the bare loop. Skipped (loudly) without torch."""

import json
import os
import sys
import tempfile
import unittest

from _util import HAVE_TORCH, PYDIR, TORCH_SKIP, Child, scenario

import interleave_sdk as sdk

if HAVE_TORCH:
    import torch

    import interleave_reference_trainer as rt

    torch.set_num_threads(1)

TRAINER = os.path.join(PYDIR, "interleave_reference_trainer.py")

SPEC = sdk.normalize_spec({
    "name": "ref-test",
    "seed": 11,
    "phases": [
        {"name": "text-only", "steps": 6, "ratio": {"visual": 0, "text": 1}},
        {"name": "joint", "steps": 60, "ratio": {"visual": 3, "text": 1}},
    ],
    "batch": {"visual": {"size": 2, "accumulation": 2}, "text": {"size": 2}},
    "optimizer": {"kind": "adamw", "lr": 1e-3, "weightDecay": 0.05,
                  "groups": [{"name": "backbone", "lrMultiplier": 0.1}, {"name": "text-encoder", "lrMultiplier": 0.1},
                             {"name": "rest"}]},
    "lr": {"warmup": {"kind": "linear", "steps": 10, "startFactor": 0.1}},
})
OPTIONS = {"evalImages": 12}


def hello(c, spec=SPEC, options=OPTIONS):
    return c.rpc({"type": "hello", "id": 0, "protocol": 1, "spec": spec, "options": options})


def run_steps(c, steps, first_id):
    out = []
    for i, s in enumerate(steps):
        r = c.rpc({"type": "step", "id": first_id + i, "plan": sdk.plan_step(SPEC, s)})
        assert r["type"] == "outcome", r
        out.append(r["losses"])
    return out


@unittest.skipUnless(HAVE_TORCH, TORCH_SKIP)
class CheckpointRestore(unittest.TestCase):
    def test_restore_in_a_new_process_continues_exactly(self):
        # The engine checkpoints right after an update: the first update at or after step 16
        # (past the warm-up, in the joint phase).
        split = next(s for s in range(15, 66) if sdk.plan_step(SPEC, s)["update"]) + 1
        n = 36
        with tempfile.TemporaryDirectory() as d:
            ck = os.path.join(d, "ck.pt")
            a = Child([sys.executable, TRAINER, "--threads", "1"])
            ready = hello(a)
            self.assertEqual(ready["type"], "ready", ready)
            self.assertEqual(ready["capabilities"], {"evaluate": True, "checkpoint": True})
            self.assertEqual(ready["info"]["alignWeight"], "1")
            self.assertEqual(ready["framework"], f"torch {torch.__version__}")
            self.assertEqual(ready["reproducible"], "exact")  # CPU, one thread: bit for bit
            straight = run_steps(a, range(split), 1)
            self.assertEqual(a.rpc({"type": "checkpoint", "id": 100, "path": ck})["type"], "checkpointed")
            straight += run_steps(a, range(split, n), 101)
            ev = a.rpc({"type": "evaluate", "id": 200})
            a.rpc({"type": "close", "id": 201})
            self.assertEqual(a.finish()[0], 0)

            b = Child([sys.executable, TRAINER, "--threads", "1"])
            hello(b)
            self.assertEqual(b.rpc({"type": "restore", "id": 1, "path": ck}), {"type": "restored", "id": 1, "path": ck})
            resumed = run_steps(b, range(split, n), 2)
            ev2 = b.rpc({"type": "evaluate", "id": 200})
            b.rpc({"type": "close", "id": 201})
            self.assertEqual(b.finish()[0], 0)
        self.assertEqual(resumed, straight[split:])  # bit-identical floats
        self.assertEqual(ev2, ev)
        self.assertIn("align", straight[-1])
        # Same (spec, seed) in this process: identical losses again (determinism).
        t = rt.Trainer(SPEC, OPTIONS)
        again = [t.step(sdk.plan_step(SPEC, s))["losses"] for s in range(split)]
        self.assertEqual(again, straight[:split])


@unittest.skipUnless(HAVE_TORCH, TORCH_SKIP)
class TrainerInProcess(unittest.TestCase):
    def snapshot(self, t):
        return {n: p.detach().clone() for n, p in t.model.params.items()}

    def changed(self, before, t, module):
        return any(not torch.equal(before[n], p) for n, p in t.model.params.items() if t.model.module[n] == module)

    def test_accumulation_updates_only_when_the_plan_says(self):
        t = rt.Trainer(SPEC, OPTIONS)
        for s in range(6):  # text-only phase
            t.step(sdk.plan_step(SPEC, s))
        p6, p7 = sdk.plan_step(SPEC, 6), sdk.plan_step(SPEC, 7)
        self.assertEqual((p6["modality"], p6["update"], p7["update"]), ("visual", False, True))
        before = self.snapshot(t)
        t.step(p6)
        self.assertEqual(t.pending, 1)
        self.assertFalse(any(self.changed(before, t, m) for m in rt.MODULES), "no update on a micro-step")
        self.assertIsNotNone(t.model.params["visual/box1/w"].grad)
        t.step(p7)
        self.assertEqual(t.pending, 0)
        self.assertTrue(self.changed(before, t, "visual-encoder"))
        self.assertTrue(self.changed(before, t, "backbone"))
        self.assertFalse(self.changed(before, t, "text-encoder"), "a visual update never trains the text encoder")
        self.assertTrue(all(p.grad is None for p in t.model.params.values()))
        # A text update leaves the visual prompt encoder alone.
        s = next(s for s in range(8, 66) if sdk.plan_step(SPEC, s)["modality"] == "text")
        for k in range(8, s):
            t.step(sdk.plan_step(SPEC, k))
        before = self.snapshot(t)
        t.step(sdk.plan_step(SPEC, s))
        self.assertTrue(self.changed(before, t, "text-encoder"))
        self.assertFalse(self.changed(before, t, "visual-encoder"))

    def test_restore_mid_accumulation_and_other_optimizers(self):
        # Not what the engine does (it checkpoints after updates), but restore must hold then too.
        with tempfile.TemporaryDirectory() as d:
            ck = os.path.join(d, "ck.pt")
            t = rt.Trainer(SPEC, OPTIONS)
            for s in range(7):
                t.step(sdk.plan_step(SPEC, s))
            self.assertEqual(t.pending, 1)
            t.checkpoint(ck)
            straight = [t.step(sdk.plan_step(SPEC, s))["losses"] for s in range(7, 12)]
            u = rt.Trainer(SPEC, OPTIONS)
            u.restore(ck)
            self.assertEqual(u.pending, 1)
            self.assertEqual([u.step(sdk.plan_step(SPEC, s))["losses"] for s in range(7, 12)], straight)
        for name in ("text-first-3to2", "petdino-swin-t"):
            spec = sdk.normalize_spec(scenario(name))
            spec["batch"] = {"visual": {"size": 2, "accumulation": 2}, "text": {"size": 2, "accumulation": 1}}
            for kind in ("sgd", "adam", "adamw"):
                spec["optimizer"]["kind"] = kind
                t = rt.Trainer(spec, OPTIONS)
                for s in range(3):
                    losses = t.step(sdk.plan_step(spec, s))["losses"]
                    self.assertTrue(all(v == v and abs(v) < 1e6 for v in losses.values()), (name, kind, losses))

    def test_lr_scale_and_groups(self):
        t = rt.Trainer(SPEC, OPTIONS)
        plan = sdk.plan_step(SPEC, 0)
        t.step(plan)
        for g in t.optimizer.param_groups:
            self.assertAlmostEqual(g["lr"], plan["lr"][g["name"]] * 10)  # tiny preset: lrScale 10
        self.assertEqual(t.groups, {"backbone": "backbone", "neck": "rest", "text-encoder": "text-encoder",
                                    "visual-encoder": "rest", "head": "rest"})
        decays = {(g["name"], g["weight_decay"]) for g in t.optimizer.param_groups}
        self.assertIn(("rest", 0.0), decays)
        self.assertIn(("rest", 0.05), decays)
        no_decay = [n for n, d in t.model.decay.items() if not d]
        for name in ("text/tokens", "backbone/pos", "head/bias", "neck/ln/g", "head/box1/b"):
            self.assertIn(name, no_decay)
        self.assertEqual(rt.assign_groups(sdk.group_names(scenario("petdino-swin-t"))),
                         {"backbone": "backbone", "neck": "neck", "text-encoder": "language-model",
                          "visual-encoder": "head", "head": "head"})
        t2 = rt.Trainer(SPEC, {"lrScale": 1, **OPTIONS})
        t2.step(plan)
        self.assertAlmostEqual(t2.optimizer.param_groups[0]["lr"], plan["lr"][t2.optimizer.param_groups[0]["name"]])

    def test_seed_mismatch_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            ck = os.path.join(d, "ck.pt")
            t = rt.Trainer(SPEC, OPTIONS)
            t.step(sdk.plan_step(SPEC, 0))
            t.checkpoint(ck)
            other = rt.Trainer({**SPEC, "seed": 12}, OPTIONS)
            with self.assertRaisesRegex(ValueError, "checkpoint written with seed 11, this session runs seed 12"):
                other.restore(ck)
            kind, msg = sdk.classify_exception(ValueError("x"))
            self.assertEqual(kind, "trainer-error")
            with self.assertRaisesRegex(ValueError, "preset"):
                rt.Trainer(SPEC, {"preset": "small", **OPTIONS}).restore(ck)

    def test_align_weight_zero_drops_the_alignment_loss(self):
        visual = next(s for s in range(6, 66) if sdk.plan_step(SPEC, s)["modality"] == "visual")
        on = rt.Trainer(SPEC, OPTIONS)
        off = rt.Trainer(SPEC, {"alignWeight": 0, **OPTIONS})
        self.assertEqual(off.info()["alignWeight"], "0")
        for s in range(visual):
            self.assertEqual(on.step(sdk.plan_step(SPEC, s))["losses"], off.step(sdk.plan_step(SPEC, s))["losses"])
        a = on.step(sdk.plan_step(SPEC, visual))["losses"]
        b = off.step(sdk.plan_step(SPEC, visual))["losses"]
        self.assertGreater(a["align"], 0)
        self.assertNotIn("align", b)
        self.assertEqual((a["cls"], a["box"]), (b["cls"], b["box"]))
        # No alignment before the schedule's first text step (nothing trained the text encoder).
        vo = sdk.normalize_spec(scenario("visual-only"))
        vo["batch"]["visual"]["size"] = 2
        self.assertNotIn("align", rt.Trainer(vo, OPTIONS).step(sdk.plan_step(vo, 0))["losses"])

    def test_evaluate_and_data(self):
        t = rt.Trainer(SPEC, OPTIONS)
        ev = t.evaluate()
        self.assertEqual(ev["metric"], "recall@iou0.5")
        self.assertAlmostEqual(ev["chance"], 1 / 3)
        for m in ("visual", "text"):
            self.assertTrue(0 <= ev["values"][m] <= 1)
        geo = rt.PRESETS["tiny"]
        a, b = rt.batch_at(geo, 11, "visual", 5, 3), rt.batch_at(geo, 11, "visual", 5, 3)
        self.assertTrue(torch.equal(a.patches, b.patches) and torch.equal(a.targets, b.targets))
        c = rt.batch_at(geo, 11, "text", 5, 3)
        self.assertFalse(torch.equal(a.patches, c.patches), "the two loaders draw different images")
        self.assertEqual(tuple(a.patches.shape), (3 * 64, 48))
        self.assertEqual(tuple(a.targets.shape), (9, 3 * 64))
        self.assertEqual(tuple(c.targets.shape), (16, 3 * 64))
        self.assertTrue(bool((a.targets.sum(1) > 0).all()), "every visual prompt has its own object as a positive")
        for row in a.classes.tolist():
            self.assertEqual(len(set(row)), 3)

    def test_bad_options(self):
        with self.assertRaisesRegex(ValueError, "unknown option"):
            rt.Trainer(SPEC, {"backend": "wasm"})
        with self.assertRaisesRegex(ValueError, "unknown preset"):
            rt.Trainer(SPEC, {"preset": "huge"})
        if not torch.cuda.is_available():
            with self.assertRaisesRegex(RuntimeError, "sees no CUDA device"):
                rt.Trainer(SPEC, {"device": "cuda"})

    def test_bare_loop(self):
        with tempfile.TemporaryDirectory() as d:
            spec_path = os.path.join(d, "spec.json")
            with open(spec_path, "w") as f:
                json.dump(SPEC, f)
            out = os.path.join(d, "timings.json")
            doc = rt.bare_loop(spec_path, 8, out, OPTIONS, "cpu", evaluate=False)
            with open(out) as f:
                self.assertEqual(json.load(f)["steps"], 8)
        self.assertEqual([r["step"] for r in doc["rows"]], list(range(8)))
        self.assertEqual(doc["summary"]["text"]["steps"], 6)
        self.assertEqual(doc["summary"]["visual"]["steps"], 2)
        self.assertTrue(all(r["durationMs"] > 0 for r in doc["rows"]))


@unittest.skipUnless(HAVE_TORCH, TORCH_SKIP)
class CudaAtHello(unittest.TestCase):
    def test_cuda_unavailable_is_a_failure_at_hello(self):
        if torch.cuda.is_available():
            self.skipTest("CUDA is available here")
        c = Child([sys.executable, TRAINER, "--device", "cuda"])
        r = hello(c)
        self.assertEqual((r["type"], r["id"], r["kind"]), ("failure", 0, "trainer-error"))
        self.assertIn("sees no CUDA device", r["message"])
        c.rpc({"type": "close", "id": 1})
        self.assertEqual(c.finish()[0], 0)


if __name__ == "__main__":
    unittest.main()
