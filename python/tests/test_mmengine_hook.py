"""InterleaveRecorderHook against a stand-in runner with mmengine's attribute names and hook order.

Fast unit tests; test_mmengine_real.py runs the hook in a real mmengine 0.10.7 Runner. The stand-in
follows mmengine's IterBasedTrainLoop.run_iter and Runner.register_hook / call_hook: hooks run in
priority order (HIGHEST=0 ... LOWEST=100, ties in registration order); before_train_iter (PET-DINO's
prompt-type switch at NORMAL), model.train_step (with the optimizer update), after_train_iter (a
param-scheduler hook at LOW steps the lr for the NEXT iteration there, as mmengine's
ParamSchedulerHook does), and only then the loop's iteration counter (runner.iter) goes up.
"""

import os
import tempfile
import unittest

from _util import read_log, scenario

import interleave_mmengine as hookmod
import interleave_sdk as sdk

# mmengine.runner.priority.Priority
PRIORITY = {"HIGHEST": 0, "VERY_HIGH": 10, "HIGH": 30, "ABOVE_NORMAL": 40, "NORMAL": 50,
            "BELOW_NORMAL": 60, "LOW": 70, "VERY_LOW": 90, "LOWEST": 100}


class FakeOptimizer:
    def __init__(self, groups):
        self.param_groups = groups


class FakeOptimWrapper:
    """mmengine's OptimWrapper accumulation counter: update_params counts, should_update says."""

    def __init__(self, groups, accumulative_counts=1):
        self.optimizer = FakeOptimizer(groups)
        self._inner_count = 0
        self._accumulative_counts = accumulative_counts

    def update_params(self):
        self._inner_count += 1

    def should_update(self):
        return self._inner_count % self._accumulative_counts == 0


class PetDinoLikeModel:
    def __init__(self):
        self.prompt_type = "visual"

    def train_step(self, it, optim_wrapper):
        optim_wrapper.update_params()
        loss_cls, loss_bbox = 1.0 / (1 + it), 0.5
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss": loss_cls + loss_bbox, "acc": 0.9}


class Wrapped:
    """Like MMDistributedDataParallel: the real model is .module."""

    def __init__(self, module):
        self.module = module


class Hook:
    priority = "NORMAL"

    def before_run(self, runner):
        pass

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        pass

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        pass

    def after_run(self, runner):
        pass


class PromptSwitchHook(Hook):
    """PET-DINO's switch, in before_train_iter at the default custom-hook priority."""

    def __init__(self, switch):
        self.switch = switch

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        getattr(runner.model, "module", runner.model).prompt_type = self.switch(runner.iter)


class StandInParamSchedulerHook(Hook):
    """mmengine's ParamSchedulerHook: priority LOW, steps every scheduler in after_train_iter, so the
    param groups then hold the lr of the next iteration. lr of iteration k = initial_lr x factor(k)."""

    priority = "LOW"

    def __init__(self, factor):
        self.factor = factor

    def before_run(self, runner):
        for g in runner.optim_wrapper.optimizer.param_groups:
            g["initial_lr"] = g["lr"]
            g["lr"] = g["initial_lr"] * self.factor(0)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for g in runner.optim_wrapper.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * self.factor(runner.iter + 1)


class Logger:
    def __init__(self):
        self.warnings = []

    def warning(self, msg):
        self.warnings.append(msg)


def petdino_switch(it):
    return "visual" if (it + 1) % 9 < 8 else "text"


class StandInRunner:
    def __init__(self, model, optim_wrapper, hooks, switch=petdino_switch, factor=None):
        self.model = model
        self.optim_wrapper = optim_wrapper
        self.logger = Logger()
        self._hooks = []
        self._iter = 0
        self.register_hook(PromptSwitchHook(switch))
        if factor is not None:
            self.register_hook(StandInParamSchedulerHook(factor))
        for h in hooks:
            self.register_hook(h)

    def register_hook(self, hook):
        """mmengine's: insert after the last hook whose priority is not lower (a larger number)."""
        p = PRIORITY[hook.priority]
        for i in range(len(self._hooks) - 1, -1, -1):
            if p >= PRIORITY[self._hooks[i].priority]:
                self._hooks.insert(i + 1, hook)
                return
        self._hooks.insert(0, hook)

    @property
    def iter(self):
        return self._iter

    def call_hook(self, name, **kw):
        for h in self._hooks:
            getattr(h, name)(self, **kw)

    def train(self, iters, batch_size=16):
        self.call_hook("before_run")
        inner = getattr(self.model, "module", self.model)
        for _ in range(iters):
            data = {"inputs": [object()] * batch_size}
            self.call_hook("before_train_iter", batch_idx=self._iter, data_batch=data)
            outputs = inner.train_step(self._iter, self.optim_wrapper)
            self.call_hook("after_train_iter", batch_idx=self._iter, data_batch=data, outputs=outputs)
            self._iter += 1
        self.call_hook("after_run")


def named_groups(lr):
    return [{"name": "backbone", "lr": lr * 0.01}, {"name": "language-model", "lr": lr * 0.01},
            {"name": "neck", "lr": lr * 0.01}, {"name": "head", "lr": lr}, {"name": "head", "lr": lr, "weight_decay": 0}]


class Param:
    """Stands in for a torch Parameter: only its identity matters."""


class NamedModel(PetDinoLikeModel):
    """PET-DINO's module names; named_parameters() like torch's."""

    NAMES = ("query_embed", "backbone.stem.weight", "backbone.stem.bias", "neck.proj.weight", "language_model.emb.weight",
             "encoder.layer.weight", "decoder.layer.weight", "bbox_head.fc.weight", "bbox_head.fc.bias")

    def __init__(self):
        super().__init__()
        self.params = [(n, Param()) for n in self.NAMES]

    def named_parameters(self):
        return iter(self.params)


def paramwise_groups(model, lr, mults):
    """mmengine's DefaultOptimWrapperConstructor with paramwise_cfg: one unnamed group per parameter,
    lr = base x lr_mult of the first custom key found in the name (here: the prefix)."""
    groups = []
    for name, p in model.named_parameters():
        mult = next((m for k, m in mults.items() if k in name), 1.0)
        groups.append({"params": [p], "lr": lr * mult})
    return groups


PETDINO_MULTS = {"backbone": 0.01, "language_model": 0.01, "neck": 0.01}


class HookRecords(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "run.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def steps(self):
        return [e["data"] for e in read_log(self.path) if e["type"] == "StepCompleted"]

    def assertLrs(self, got, expected, msg=None):
        self.assertEqual(list(got), list(expected), msg)
        for g in expected:
            self.assertLess(abs(got[g] - expected[g]), 1e-12 * expected[g], (msg, g, got[g], expected[g]))

    def test_petdino_like_run(self):
        spec = scenario("petdino-swin-t")
        hook = hookmod.InterleaveRecorderHook(self.path, spec)
        # The lr follows petdino-swin-t's warm-up; the stand-in scheduler moves it in after_train_iter.
        factor = lambda k: sdk.plan_step(spec, k)["lr"]["head"] / 4e-4  # noqa: E731
        runner = StandInRunner(Wrapped(PetDinoLikeModel()), FakeOptimWrapper(named_groups(4e-4)), [hook], factor=factor)
        runner.train(20)
        self.assertIs(runner._hooks[-1], hook)  # LOWEST: after the switch (NORMAL) and the scheduler (LOW)
        log = read_log(self.path)
        self.assertEqual([e["position"] for e in log], list(range(len(log))))
        self.assertEqual(log[0]["type"], "RunStarted")
        self.assertEqual(log[0]["data"]["source"], "recorder: mmengine")
        self.assertEqual(log[0]["data"]["specHash"], sdk.spec_hash(spec))
        self.assertEqual(log[-1]["type"], "RunCompleted")
        steps = [e["data"] for e in log if e["type"] == "StepCompleted"]
        self.assertEqual([d["step"] for d in steps], list(range(20)))  # runner.iter inside after_train_iter
        mods = "".join(d["modality"][0] for d in steps)
        # PET-DINO's predicate puts text at iterations 7, 16, ...: recorded as the model said.
        self.assertEqual(mods, "vvvvvvvt" + "vvvvvvvvt" + "vvv")
        self.assertEqual(steps[7]["position"], 8)  # coordinates from the spec: offset 1 shifts the cycle
        for d in steps:  # each iteration's own lr, not the next one's (the scheduler has already stepped)
            self.assertLrs(d["lr"], sdk.plan_step(spec, d["step"])["lr"], d["step"])
        d = steps[3]
        self.assertEqual(d["losses"], {"loss_cls": 0.25, "loss_bbox": 0.5, "total": 0.75})  # "acc" is no loss
        self.assertEqual(d["samples"], 16)
        self.assertIs(d["update"], True)
        self.assertGreaterEqual(d["durationMs"], 0)
        self.assertTrue(set(d["memory"]) <= set(sdk.MEMORY_KEYS))
        self.assertEqual(runner.logger.warnings, [])

    def test_unnamed_paramwise_groups_by_parameter_names(self):
        """PET-DINO's paramwise_cfg: one unnamed group per parameter. Spec group names are matched to
        parameter-name prefixes (language-model ~ language_model); "head" matches none and takes the rest."""
        spec = scenario("petdino-swin-t")
        model = NamedModel()
        hook = hookmod.InterleaveRecorderHook(self.path, spec)
        ow = FakeOptimWrapper(paramwise_groups(model, 4e-4, PETDINO_MULTS))
        runner = StandInRunner(Wrapped(model), ow, [hook], factor=lambda k: 0.1 if k < 3 else 1.0)
        runner.train(5)
        steps = self.steps()
        self.assertEqual(len(steps), 5)
        self.assertLrs(steps[2]["lr"], {"backbone": 4e-7, "language-model": 4e-7, "neck": 4e-7, "head": 4e-5})
        self.assertLrs(steps[3]["lr"], {"backbone": 4e-6, "language-model": 4e-6, "neck": 4e-6, "head": 4e-4})
        self.assertEqual(hook._assignment, ["head", "backbone", "backbone", "neck", "language-model", "head", "head",
                                            "head", "head"])
        self.assertEqual(runner.logger.warnings, [])

    def test_explicit_group_prefixes_override(self):
        spec = scenario("trex2-joint-8to1")  # backbone, text-encoder, visual-encoder, head
        model = NamedModel()
        prefixes = {"backbone": ["backbone", "neck"], "text-encoder": "language_model", "visual-encoder": ["query_embed"]}
        mults = {"backbone": 0.1, "neck": 0.1, "language_model": 0.1}
        hook = hookmod.InterleaveRecorderHook(self.path, spec, group_prefixes=prefixes, modality=lambda *a: "visual")
        StandInRunner(model, FakeOptimWrapper(paramwise_groups(model, 1e-4, mults)), [hook]).train(2)
        self.assertEqual(self.steps()[0]["lr"],
                         {"backbone": 1e-5, "text-encoder": 1e-5, "visual-encoder": 1e-4, "head": 1e-4})

    def test_unnamed_groups_by_index_and_accumulation(self):
        spec = scenario("visual-accumulate-4")
        model = PetDinoLikeModel()
        model.mode = "text"
        hook = hookmod.InterleaveRecorderHook(self.path, spec, modality_attr="runner.current_prompt")
        groups = [{"lr": 1e-5}, {"lr": 1e-5}, {"lr": 1e-4}, {"lr": 1e-4}]
        runner = StandInRunner(model, FakeOptimWrapper(groups, accumulative_counts=4), [hook])
        runner.current_prompt = "VISUAL"
        runner.train(8)
        steps = self.steps()
        self.assertEqual([d["update"] for d in steps], [False, False, False, True] * 2)
        self.assertEqual([d["micro"] for d in steps], [0, 1, 2, 3] * 2)
        self.assertEqual(steps[0]["lr"], {"backbone": 1e-5, "text-encoder": 1e-5, "visual-encoder": 1e-4, "head": 1e-4})

    def test_callable_modality_and_total_without_loss_key(self):
        spec = scenario("trex2-joint-8to1")
        calls = []

        def modality(runner, batch_idx, data_batch, outputs):
            calls.append(batch_idx)
            return "text" if runner.iter < 90 else "visual"

        class M:
            def train_step(self, it, ow):
                ow.update_params()
                return {"loss_a": 1.0, "loss_b": 2.0}

        groups = [{"name": n, "lr": 0.1} for n in ("backbone", "text-encoder", "visual-encoder", "head")]
        hook = hookmod.InterleaveRecorderHook(self.path, spec, modality=modality)
        StandInRunner(M(), FakeOptimWrapper(groups), [hook]).train(3, batch_size=8)
        steps = self.steps()
        self.assertEqual(calls, [0, 1, 2])
        self.assertEqual(steps[0]["losses"], {"loss_a": 1.0, "loss_b": 2.0, "total": 3.0})
        self.assertEqual(steps[0]["modality"], "text")


class HookNeverStopsTraining(unittest.TestCase):
    """Any error inside the hook: one warning in mmengine's log, RunAborted with the reason in
    interleave's, nothing more from the hook; the training runs to its end."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "run.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def run_broken(self, hook, model=None, groups=None, iters=6, **kw):
        trained = []

        class Counting(PetDinoLikeModel):
            def train_step(self, it, ow):
                trained.append(it)
                return super().train_step(it, ow)

        runner = StandInRunner(model or Counting(), FakeOptimWrapper(groups or named_groups(1e-4)), [hook], **kw)
        runner.train(iters)
        if model is None:
            self.assertEqual(trained, list(range(iters)))
        self.assertEqual(len(runner.logger.warnings), 1, runner.logger.warnings)
        log = read_log(self.path) if os.path.exists(self.path) else []
        return runner.logger.warnings[0], log

    def test_mismatched_groups(self):
        hook = hookmod.InterleaveRecorderHook(self.path, scenario("petdino-swin-t"))
        warning, log = self.run_broken(hook, groups=[{"lr": 1}] * 3)
        self.assertIn("3 param groups without a 'name' key and the spec has 4", warning)
        self.assertIn("at iteration 0", warning)
        self.assertEqual([e["type"] for e in log], ["RunStarted", "RunAborted"])
        self.assertIn("training went on", log[-1]["data"]["reason"])
        self.assertIn("3 param groups", log[-1]["data"]["reason"])

    def test_unknown_prompt_type(self):
        hook = hookmod.InterleaveRecorderHook(self.path, scenario("petdino-swin-t"))
        warning, log = self.run_broken(hook, switch=lambda it: "audio" if it == 2 else "visual")
        self.assertIn("neither visual nor text", warning)
        self.assertEqual([e["type"] for e in log], ["RunStarted", "PhaseStarted"] + ["StepCompleted"] * 2 + ["RunAborted"])
        self.assertIn("before_train_iter at iteration 2", log[-1]["data"]["reason"])

    def test_raising_callable_mid_run(self):
        def modality(runner, *a):
            if runner.iter == 4:
                raise KeyError("prompt")
            return "visual"

        hook = hookmod.InterleaveRecorderHook(self.path, scenario("petdino-swin-t"), modality=modality)
        warning, log = self.run_broken(hook, iters=9)
        self.assertIn("after_train_iter at iteration 4", warning)
        self.assertIn("KeyError", warning)
        self.assertEqual([d["data"]["step"] for d in log if d["type"] == "StepCompleted"], [0, 1, 2, 3])
        self.assertEqual(log[-1]["type"], "RunAborted")
        self.assertIsNotNone(hook.failure)

    def test_unreadable_spec(self):
        hook = hookmod.InterleaveRecorderHook(self.path, os.path.join(self.dir.name, "missing.json"))
        warning, log = self.run_broken(hook)
        self.assertIn("before_run", warning)
        self.assertEqual(log, [])

    def test_without_mmengine_it_is_a_plain_class(self):
        if hookmod.HAVE_MMENGINE:
            self.skipTest("mmengine is installed")
        self.assertEqual(hookmod.InterleaveRecorderHook.__mro__[1], object)


if __name__ == "__main__":
    unittest.main()
