"""InterleaveRecorderHook against a stand-in runner with mmengine's attribute names.

mmengine is not installed here. The stand-in follows mmengine's IterBasedTrainLoop.run_iter:
before_train_iter, model.train_step (with the optimizer update), after_train_iter, and only then
the loop's iteration counter (runner.iter) goes up: inside after_train_iter, runner.iter is the
0-based index of the iteration just trained.
"""

import os
import tempfile
import unittest

from _util import read_log, scenario

import interleave_mmengine as hookmod
import interleave_sdk as sdk


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
    """Sets its prompt type the way PET-DINO's switch hook does: (iter + 1) % 9 < 8 -> visual."""

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


class StandInRunner:
    def __init__(self, model, optim_wrapper, hooks, switch=lambda it: "visual" if (it + 1) % 9 < 8 else "text"):
        self.model = model
        self.optim_wrapper = optim_wrapper
        self.hooks = hooks
        self._iter = 0
        self.switch = switch

    @property
    def iter(self):
        return self._iter

    def call_hook(self, name, **kw):
        for h in self.hooks:
            getattr(h, name)(self, **kw)

    def train(self, iters, batch_size=16):
        self.call_hook("before_run")
        inner = getattr(self.model, "module", self.model)
        for _ in range(iters):
            data = {"inputs": [object()] * batch_size}
            inner.prompt_type = self.switch(self._iter)  # PET-DINO's hook, in before_train_iter
            self.call_hook("before_train_iter", batch_idx=self._iter, data_batch=data)
            outputs = inner.train_step(self._iter, self.optim_wrapper)
            self.call_hook("after_train_iter", batch_idx=self._iter, data_batch=data, outputs=outputs)
            self._iter += 1
        self.call_hook("after_run")


def named_groups(lr):
    return [{"name": "backbone", "lr": lr * 0.01}, {"name": "language-model", "lr": lr * 0.01},
            {"name": "neck", "lr": lr * 0.01}, {"name": "head", "lr": lr}, {"name": "head", "lr": lr, "weight_decay": 0}]


class HookRecords(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "run.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def test_petdino_like_run(self):
        spec = scenario("petdino-swin-t")
        hook = hookmod.InterleaveRecorderHook(self.path, spec)
        runner = StandInRunner(Wrapped(PetDinoLikeModel()), FakeOptimWrapper(named_groups(4e-4)), [hook])
        runner.train(20)
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
        d = steps[3]
        low = 4e-4 * 0.01
        self.assertEqual(d["lr"], {"backbone": low, "language-model": low, "neck": low, "head": 4e-4})
        self.assertEqual(d["losses"], {"loss_cls": 0.25, "loss_bbox": 0.5, "total": 0.75})  # "acc" is no loss
        self.assertEqual(d["samples"], 16)
        self.assertIs(d["update"], True)
        self.assertGreaterEqual(d["durationMs"], 0)
        self.assertTrue(set(d["memory"]) <= set(sdk.MEMORY_KEYS))

    def test_unnamed_groups_by_index_and_accumulation(self):
        spec = scenario("visual-accumulate-4")
        model = PetDinoLikeModel()
        model.mode = "text"
        hook = hookmod.InterleaveRecorderHook(self.path, spec, modality_attr="runner.current_prompt")
        groups = [{"lr": 1e-5}, {"lr": 1e-5}, {"lr": 1e-4}, {"lr": 1e-4}]
        runner = StandInRunner(model, FakeOptimWrapper(groups, accumulative_counts=4), [hook])
        runner.current_prompt = "VISUAL"
        runner.train(8)
        steps = [e["data"] for e in read_log(self.path) if e["type"] == "StepCompleted"]
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
        steps = [e["data"] for e in read_log(self.path) if e["type"] == "StepCompleted"]
        self.assertEqual(calls, [0, 1, 2])
        self.assertEqual(steps[0]["losses"], {"loss_a": 1.0, "loss_b": 2.0, "total": 3.0})
        self.assertEqual(steps[0]["modality"], "text")

    def test_mismatched_groups_are_refused_clearly(self):
        hook = hookmod.InterleaveRecorderHook(self.path, scenario("petdino-swin-t"))
        runner = StandInRunner(PetDinoLikeModel(), FakeOptimWrapper([{"lr": 1}] * 3), [hook])
        with self.assertRaisesRegex(ValueError, "3 param groups without a 'name' key and the spec has 4"):
            runner.train(1)
        hook.recorder.close("aborted", "test")

    def test_unknown_prompt_type(self):
        hook = hookmod.InterleaveRecorderHook(self.path, scenario("petdino-swin-t"))
        runner = StandInRunner(PetDinoLikeModel(), FakeOptimWrapper(named_groups(1)), [hook], switch=lambda it: "audio")
        with self.assertRaisesRegex(ValueError, "neither visual nor text"):
            runner.train(1)
        hook.recorder.close("aborted", "test")

    def test_without_mmengine_it_is_a_plain_class(self):
        if hookmod.HAVE_MMENGINE:
            self.skipTest("mmengine is installed")
        self.assertEqual(hookmod.InterleaveRecorderHook.__mro__[1], object)


if __name__ == "__main__":
    unittest.main()
