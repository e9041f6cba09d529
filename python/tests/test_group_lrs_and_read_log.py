"""sdk.group_lrs / param_group_names (which optimizer param group is which spec group) and
sdk.read_log (an exported log as rows).

The README's Recorder snippet, run as written on a plain torch.optim.AdamW whose param groups have
no "name" key (the old snippet's {g["name"]: g["lr"] ...} raised KeyError there), with a LambdaLR
scheduler following the scenario's warm-up: the recorded lr is each iteration's own and
`interleave verify --log` passes. read_log reads a log the real CLI exported.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from _util import HAVE_TORCH, HERE, ROOT, TORCH_SKIP

import interleave_sdk as sdk

NODE = shutil.which("node")
TOY_SPEC = os.path.join(HERE, "scenarios", "petdino-mmengine-toy.json")


def cli(*args):
    if NODE is None:
        raise unittest.SkipTest("!!! node is not on PATH: the interleave CLI part of this test is SKIPPED !!!")
    r = subprocess.run([NODE, os.path.join(ROOT, "bin", "interleave.mjs"), *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


class Param:
    pass


class Model:
    def __init__(self, names):
        self.params = [(n, Param()) for n in names]

    def named_parameters(self):
        return iter(self.params)

    def p(self, prefix):
        return [p for n, p in self.params if n.startswith(prefix + ".")]


class GroupLrs(unittest.TestCase):
    SPEC = {"optimizer": {"lr": 1e-4, "groups": [{"name": "backbone", "lr": 1e-5}, {"name": "text-encoder", "lr": 1e-5},
                                                 {"name": "visual-encoder"}, {"name": "head"}]}}

    def model(self):
        return Model(["backbone.w", "backbone.b", "text_encoder.w", "visual_encoder.w", "decoder.w", "box_head.w"])

    def test_by_index(self):
        groups = [{"lr": 1}, {"lr": 2}, {"lr": 3}, {"lr": 4}]
        self.assertEqual(sdk.group_lrs(groups, self.SPEC),
                         {"backbone": 1.0, "text-encoder": 2.0, "visual-encoder": 3.0, "head": 4.0})

    def test_by_name_key(self):
        groups = [{"name": "head", "lr": 4}, {"name": "backbone", "lr": 1}, {"name": "text-encoder", "lr": 2},
                  {"name": "visual-encoder", "lr": 3}, {"name": "head", "lr": 4, "weight_decay": 0}]
        self.assertEqual(list(sdk.group_lrs(groups, self.SPEC).items()),
                         [("backbone", 1.0), ("text-encoder", 2.0), ("visual-encoder", 3.0), ("head", 4.0)])

    def test_by_parameter_names_in_any_order(self):
        m = self.model()
        groups = [{"params": m.p("decoder") + m.p("box_head"), "lr": 4}, {"params": m.p("text_encoder"), "lr": 2},
                  {"params": m.p("backbone"), "lr": 1}, {"params": m.p("visual_encoder"), "lr": 3}]
        self.assertEqual(sdk.param_group_names(groups, self.SPEC, model=m), ["head", "text-encoder", "backbone", "visual-encoder"])
        self.assertEqual(sdk.group_lrs(groups, self.SPEC, model=m),
                         {"backbone": 1.0, "text-encoder": 2.0, "visual-encoder": 3.0, "head": 4.0})

    def test_explicit_prefixes(self):
        m = Model(["img.w", "bert.w", "prompt.w", "rest.w"])
        groups = [{"params": [p], "lr": float(i)} for i, (_, p) in enumerate(m.named_parameters())]
        prefixes = {"backbone": "img", "text-encoder": ["bert"], "visual-encoder": ["prompt"]}
        self.assertEqual(sdk.group_lrs(groups, self.SPEC, model=m, prefixes=prefixes),
                         {"backbone": 0.0, "text-encoder": 1.0, "visual-encoder": 2.0, "head": 3.0})

    def test_refusals_say_what_to_pass(self):
        with self.assertRaisesRegex(ValueError, "3 param groups without a 'name' key and the spec has 4"):
            sdk.group_lrs([{"lr": 1}] * 3, self.SPEC)
        m = self.model()
        mixed = [{"params": m.p("backbone") + m.p("decoder"), "lr": 1}]
        with self.assertRaisesRegex(ValueError, "mixes parameters of spec groups backbone, head"):
            sdk.param_group_names(mixed, self.SPEC, model=m, prefixes={
                "backbone": "backbone", "text-encoder": "text_encoder", "visual-encoder": "visual_encoder"})
        split = [{"params": m.p("backbone")[:1], "lr": 1}, {"params": m.p("backbone")[1:], "lr": 2},
                 {"params": m.p("text_encoder"), "lr": 1}, {"params": m.p("visual_encoder"), "lr": 1},
                 {"params": m.p("decoder") + m.p("box_head"), "lr": 1}]
        with self.assertRaisesRegex(ValueError, "param groups of spec group 'backbone' have different lrs"):
            sdk.group_lrs(split, self.SPEC, model=m)
        two_rest = Model(["backbone.w", "decoder.w"])
        with self.assertRaisesRegex(ValueError, "3 spec groups .* could take them"):
            sdk.param_group_names([{"params": [p for _, p in two_rest.named_parameters()], "lr": 1}], self.SPEC,
                                  model=two_rest, prefixes={"backbone": "backbone"})


@unittest.skipUnless(HAVE_TORCH, TORCH_SKIP)
class ReadmeSnippetOnPlainTorch(unittest.TestCase):
    def test_recorder_snippet_on_adamw(self):
        import torch
        from torch import nn

        torch.manual_seed(0)
        with open(TOY_SPEC, encoding="utf-8") as f:
            spec = sdk.normalize_spec(json.load(f))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone, self.neck = nn.Linear(4, 4), nn.Linear(4, 4)
                self.language_model, self.head = nn.Linear(4, 4), nn.Linear(4, 1)

            def forward(self, x, modality):
                f = self.neck(self.backbone(x))
                return self.head(self.language_model(f) if modality == "text" else f).pow(2).mean()

        model = Net()
        opt = torch.optim.AdamW([{"params": model.backbone.parameters(), "lr": 4e-6},
                                 {"params": model.language_model.parameters(), "lr": 4e-6},
                                 {"params": model.neck.parameters(), "lr": 4e-6},
                                 {"params": model.head.parameters(), "lr": 4e-4}])
        with self.assertRaises(KeyError):  # what the README used to say
            {g["name"]: g["lr"] for g in opt.param_groups}
        factor = lambda k: sdk.plan_step(spec, k)["lr"]["head"] / 4e-4  # noqa: E731 - the warm-up
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        n = 60
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "run.jsonl")
            # --- the README's snippet ---
            with sdk.Recorder(path, TOY_SPEC, trainer_name="my-loop", steps=n) as rec:
                for it in range(n):
                    lr = sdk.group_lrs(opt, rec.spec)  # this iteration's lr, before the scheduler moves it
                    modality = "visual" if (it + 1) % 9 < 8 else "text"  # what THIS iteration trains on
                    loss = model(torch.randn(8, 4), modality)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    rec.step(it, modality, lr=lr, losses={"total": loss}, update=True, memory=sdk.sample_memory())
            # ---
            rows = sdk.read_log(path)["steps"]
            self.assertEqual(len(rows), n)
            for r in rows:
                for g, want in sdk.plan_step(spec, r["step"])["lr"].items():
                    self.assertLess(abs(r[f"lr.{g}"] - want), 1e-9 * want, (r["step"], g))
            # And by parameter names, whatever the order of the groups: model=model.
            self.assertEqual(list(sdk.group_lrs(opt, spec, model=model)), ["backbone", "language-model", "neck", "head"])
            code, out, err = cli("verify", "--log", path)
            self.assertEqual(code, 0, out + err)
            self.assertRegex(out, r"PASS: all \d+ rules hold")


class ReadLog(unittest.TestCase):
    def test_a_log_exported_by_the_cli(self):
        with tempfile.TemporaryDirectory() as d:
            store, out = os.path.join(d, "runs.db"), os.path.join(d, "run.jsonl")
            code, o, e = cli("run", os.path.join(ROOT, "scenarios", "trex2-joint-8to1.json"), "--adapter", "sim",
                             "--steps", "120", "--eval-every", "50", "--store", store, "--run-id", "rl-1")
            self.assertEqual(code, 0, o + e)
            code, o, e = cli("export", "rl-1", "--format", "jsonl", "--out", out, "--store", store)
            self.assertEqual(code, 0, o + e)
            log = sdk.read_log(out)
        run, steps, evals = log["run"], log["steps"], log["evals"]
        self.assertEqual((run["runId"], run["ending"], run["steps"]), ("rl-1", "completed", 120))
        self.assertEqual(run["spec"]["name"], "trex2-joint-8to1")
        self.assertEqual([r["step"] for r in steps], list(range(120)))
        self.assertEqual({r["modality"] for r in steps[:90]}, {"text"})
        self.assertEqual(steps[90]["phase"], "joint")
        first = steps[0]
        for key in ("modality", "update", "durationMs", "samples", "micro", "cycle", "position", "phaseStep",
                    "losses.total", "lr.backbone", "lr.text-encoder", "lr.visual-encoder", "lr.head"):
            self.assertIn(key, first)
        self.assertTrue(any(k.startswith("memory.") for k in first), first)
        self.assertTrue(all(not isinstance(v, (dict, list)) for r in steps for v in r.values()))  # flat rows
        self.assertEqual(first["lr.backbone"], 1e-5)
        self.assertEqual([ev["step"] for ev in evals], [49, 99, 119])
        self.assertTrue({"metric", "values.visual", "values.text"} <= set(evals[0]))
        self.assertEqual(log["failures"], [])

    def test_version_1_memory_and_an_aborted_log(self):
        lines = [
            {"type": "RunStarted", "version": 1, "position": 0, "recordedAt": 0,
             "data": {"runId": "old", "source": "x", "steps": 2, "_tag": "RunStarted"}},
            {"type": "StepCompleted", "version": 1, "position": 1, "recordedAt": 0,
             "data": {"step": 0, "modality": "text", "lr": {"a": 0.1}, "losses": {"total": 1.0},
                      "memory": {"logicalBytes": 5, "deviceAllocatedBytes": 7}, "_tag": "StepCompleted"}},
            {"type": "StepFailed", "version": 1, "position": 2, "recordedAt": 0,
             "data": {"step": 1, "phase": "p", "modality": "visual", "kind": "nan-loss", "message": "m"}},
            {"type": "RunAborted", "version": 1, "position": 3, "recordedAt": 0, "data": {"reason": "why"}},
        ]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "old.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(json.dumps(x) for x in lines) + "\n\n")
            log = sdk.read_log(path)
        self.assertEqual(log["steps"][0]["memory.allocatedBytes"], 5)
        self.assertEqual(log["steps"][0]["memory.reservedBytes"], 7)
        self.assertEqual(log["failures"][0]["kind"], "nan-loss")
        self.assertEqual((log["run"]["ending"], log["run"]["reason"]), ("aborted", "why"))


if __name__ == "__main__":
    unittest.main()
