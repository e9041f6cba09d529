"""An mmengine hook that records interleave's event log from an mmengine training run.

    custom_hooks = [dict(type="InterleaveRecorderHook", path="work_dirs/run.interleave.jsonl",
                         spec="scenarios/petdino-swin-t.json", modality_attr="prompt_type")]

(with ``custom_imports = dict(imports=["interleave_mmengine"])``), or in code:
``runner.register_hook(InterleaveRecorderHook(path, spec))``. Then ``interleave verify --log FILE``
checks the run followed its schedule, step by step.

mmengine is imported only if installed: with mmengine the class subclasses ``mmengine.hooks.Hook``
and is registered in ``HOOKS``; without it, it is a plain class with the same methods (the fast
tests drive it with a stand-in runner). Tested in a real mmengine 0.10.7 ``Runner``
(python/tests/test_mmengine_real.py, test/adapters/mmengine-real.test.ts: PET-DINO's optimizer
config and lr schedule, 200 iterations, ``interleave verify --log`` passing every rule).

What the hook relies on (mmengine 0.10.7, IterBasedTrainLoop / EpochBasedTrainLoop ``run_iter``):
``before_train_iter`` hooks, then ``model.train_step`` (forward, backward and, unless
accumulating, the optimizer update), then ``after_train_iter`` hooks, and only then ``_iter += 1``;
hooks run in priority order (HIGHEST=0 ... LOWEST=100, ties in registration order). So
``runner.iter`` is the 0-based index of the iteration in both hook points (mmengine's
``scalars.json`` rows say ``runner.iter + 1``); that is the recorded step. The hook's priority is
LOWEST: last in ``before_train_iter`` (after PET-DINO's prompt-type switch, NORMAL) and in
``after_train_iter`` (after ``ParamSchedulerHook``, LOW, which steps the lr for the NEXT iteration).

Per iteration it records:
  * step: ``runner.iter`` (+ ``step_offset``);
  * lr: of every spec group, read in ``before_train_iter`` (the lr the iteration trains with; in
    ``after_train_iter`` the scheduler has moved it on). Which of
    ``runner.optim_wrapper.optimizer.param_groups`` is which spec group: as
    :func:`interleave_sdk.param_group_names` says, with the (unwrapped) model: ``group_prefixes``
    when given, else a ``name`` key on every group, else the spec's group names matched to
    parameter-name prefixes (``-`` ~ ``_``; the one spec group that matches no parameter takes the
    rest: mmengine's ``paramwise_cfg`` builds one unnamed group per parameter), else by index.
    Computed once, at the first iteration. Or pass ``group_lr=callable(param_groups) -> {spec group: lr}``;
  * modality: ``modality_attr`` (a dotted attribute path on the model, unwrapped from DDP /
    MMDistributedDataParallel, or on the runner when it starts with ``runner.``) read in
    ``before_train_iter``, after every other hook has set the iteration up; or
    ``modality=callable(runner, batch_idx, data_batch, outputs)``, called in ``after_train_iter``.
    Values are mapped with ``modality_values`` (default: visual/vision/image -> visual,
    text/language -> text);
  * update: ``runner.optim_wrapper.should_update()`` when the wrapper has it (mmengine's
    accumulation counter, already advanced by ``update_params``; it counts every iteration, of
    either modality), else True;
  * losses: from ``outputs`` (train_step's log_vars): every key containing "loss"; total = the
    "loss" key if present, else the sum of those keys;
  * memory: with CUDA in use, torch.cuda.memory_allocated / memory_reserved and
    max_memory_allocated since ``before_train_iter`` (the hook resets the peak there); rss always;
  * durationMs: wall time from this hook's ``before_train_iter`` to its ``after_train_iter`` (after
    torch.cuda.synchronize() when CUDA is in use): train_step, plus the ``after_train_iter`` of the
    hooks that run before this one (logger, scheduler), without data loading;
  * samples: ``len(data_batch["inputs"])`` when there is such a list, else the spec's batch size.

A recorder never stops the training it watches: the first error inside the hook (at any hook
point) becomes one warning in mmengine's log (``runner.logger``) and a ``RunAborted`` event whose
reason says where and why recording stopped, "training went on without it"; the hook then does
nothing more. ``interleave verify --log`` checks the steps recorded before it. In a distributed
run only the main process (mmengine's ``get_rank() == 0``) records.

``after_run`` closes the log (RunCompleted). A crashed run leaves the log without a terminal event,
every line before the crash intact: ``interleave verify`` reads it as an unfinished run.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import interleave_sdk as sdk

try:  # pragma: no cover - mmengine is not installed where the tests run
    from mmengine.hooks import Hook as _HookBase
    from mmengine.registry import HOOKS as _HOOKS

    HAVE_MMENGINE = True
except Exception:  # noqa: BLE001 - ImportError, or a broken install
    _HookBase = object
    _HOOKS = None
    HAVE_MMENGINE = False

DEFAULT_MODALITY_VALUES: Dict[str, str] = {
    "visual": "visual",
    "vision": "visual",
    "image": "visual",
    "visual_prompt": "visual",
    "text": "text",
    "language": "text",
    "text_prompt": "text",
}


def _unwrap(model: Any) -> Any:
    """The model inside a DDP / MMDistributedDataParallel wrapper (``.module``), else the model."""
    return getattr(model, "module", model)


def _resolve(root: Any, path: str) -> Any:
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _scalar(x: Any) -> float:
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "numel") and x.numel() != 1:
        x = x.float().mean()
    if hasattr(x, "item"):
        x = x.item()
    return float(x)


class InterleaveRecorderHook(_HookBase):  # type: ignore[misc, valid-type]
    """Records every training iteration in interleave's JSONL log (see the module docstring)."""

    # Last of every hook in before_train_iter (after PET-DINO's prompt-type switch and anything else
    # that sets the iteration up) and in after_train_iter (mmengine reads this attribute).
    priority = "LOWEST"

    def __init__(
        self,
        path: str,
        spec: Any,
        modality_attr: str = "prompt_type",
        modality: Optional[Callable[..., Any]] = None,
        modality_values: Optional[Mapping[Any, str]] = None,
        group_lr: Optional[Callable[[Any], Mapping[str, float]]] = None,
        group_prefixes: Optional[Mapping[str, Any]] = None,
        step_offset: int = 0,
        trainer_name: str = "mmengine",
        run_id: Optional[str] = None,
        seed: Optional[int] = None,
        info: Optional[Mapping[str, Any]] = None,
    ):
        self.path = path
        self.spec = spec
        self.modality_attr = modality_attr
        self.modality_fn = modality
        self.modality_values = dict(DEFAULT_MODALITY_VALUES if modality_values is None else modality_values)
        self.group_lr = group_lr
        self.group_prefixes = None if group_prefixes is None else dict(group_prefixes)
        self.step_offset = int(step_offset)
        self.trainer_name = trainer_name
        self.run_id = run_id
        self.seed = seed
        self.info = dict(info or {})
        self.recorder: Optional[sdk.Recorder] = None
        self.failure: Optional[str] = None  # set by the first error: from then on the hook does nothing
        self._inactive = False  # a process other than the main one of a distributed run: records nothing
        self._t0: Optional[float] = None
        self._pending: Optional[Dict[str, Any]] = None  # what before_train_iter saw of this iteration
        self._assignment: Optional[List[Optional[str]]] = None

    # -- what the runner tells us --
    def _map_modality(self, runner: Any, raw: Any) -> str:
        key = raw.lower() if isinstance(raw, str) else raw
        if key in self.modality_values:
            return self.modality_values[key]
        if raw in self.modality_values:
            return self.modality_values[raw]
        raise ValueError(
            f"iteration {runner.iter}: prompt type {raw!r} is neither visual nor text "
            f"(known values: {', '.join(map(repr, self.modality_values))}; pass modality_values or modality=)"
        )

    def _modality_attr(self, runner: Any) -> str:
        if self.modality_attr.startswith("runner."):
            raw = _resolve(runner, self.modality_attr[len("runner."):])
        else:
            raw = _resolve(_unwrap(runner.model), self.modality_attr)
        return self._map_modality(runner, raw)

    def _lrs(self, runner: Any) -> Dict[str, float]:
        groups = runner.optim_wrapper.optimizer.param_groups
        if self.group_lr is not None:
            return {str(k): float(v) for k, v in self.group_lr(groups).items()}
        spec = self.recorder.spec  # type: ignore[union-attr]
        if self._assignment is None or len(self._assignment) != len(groups):
            model = _unwrap(getattr(runner, "model", None))
            self._assignment = sdk.param_group_names(
                groups, spec, model if hasattr(model, "named_parameters") else None, self.group_prefixes
            )
        return sdk.group_lrs(groups, spec, assignment=self._assignment)

    @staticmethod
    def _losses(outputs: Any) -> Dict[str, float]:
        if not isinstance(outputs, Mapping):
            raise ValueError(f"train_step outputs are a {type(outputs).__name__}, expected a dict of losses")
        parts = {str(k): _scalar(v) for k, v in outputs.items() if "loss" in str(k) and str(k) != "loss"}
        total = _scalar(outputs["loss"]) if "loss" in outputs else sum(parts.values())
        parts["total"] = total
        return parts

    def _samples(self, data_batch: Any, modality: str) -> Optional[int]:
        if isinstance(data_batch, Mapping) and isinstance(data_batch.get("inputs"), (list, tuple)):
            return len(data_batch["inputs"])
        if isinstance(data_batch, Mapping) and hasattr(data_batch.get("inputs"), "shape"):
            return int(data_batch["inputs"].shape[0])
        return None

    # -- a recorder never stops the training it watches --
    def _fail(self, runner: Any, where: str, e: BaseException) -> None:
        """The first error: one warning in mmengine's log, RunAborted (with the reason) in
        interleave's log, and the hook does nothing from then on; training goes on."""
        it = getattr(runner, "iter", "?")
        self.failure = (
            f"InterleaveRecorderHook stopped recording in {where} at iteration {it} "
            f"(training went on without it): {type(e).__name__}: {e}"
        )
        try:
            if self.recorder is not None and not self.recorder.closed:
                self.recorder.close("aborted", self.failure)
        except Exception as e2:  # noqa: BLE001 - e.g. the disk is full: the warning still goes out
            self.failure += f"; the interleave log could not be closed either: {type(e2).__name__}: {e2}"
        _warn(runner, f"{self.failure} (interleave log: {self.path})")

    def _guard(self, runner: Any, where: str, body: Callable[[], None]) -> None:
        if self.failure is not None or self._inactive:
            return
        try:
            body()
        except Exception as e:  # noqa: BLE001 - never raise into mmengine's loop
            self._fail(runner, where, e)

    # -- hook points --
    def before_run(self, runner: Any) -> None:
        self._guard(runner, "before_run", lambda: self._before_run(runner))

    def _before_run(self, runner: Any) -> None:
        if HAVE_MMENGINE:
            from mmengine.dist import get_rank  # noqa: PLC0415

            if get_rank() != 0:  # distributed: one log, from the main process
                self._inactive = True
                return
        torch = sdk._torch()
        device = "cuda" if sdk._cuda_in_use() or (torch is not None and torch.cuda.is_available()) else "cpu"
        info = {"hook": "interleave_mmengine.InterleaveRecorderHook", "modality": self.modality_attr, **self.info}
        versions = {}
        if HAVE_MMENGINE:
            import mmengine  # noqa: PLC0415

            info["mmengine"] = mmengine.__version__
            versions["mmengine"] = mmengine.__version__
        info["durationMs"] = (
            "wall time from this hook's before_train_iter to its after_train_iter (train_step: forward, backward, "
            "update; plus the after_train_iter of hooks that run before this one)"
        )
        info["lr"] = "each param group's lr in before_train_iter, before ParamSchedulerHook steps it"
        self.recorder = sdk.Recorder(
            self.path,
            self.spec,
            run_id=self.run_id,
            seed=self.seed,
            trainer_name=self.trainer_name,
            device=device,
            info=info,
            versions=versions,
        )

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        self._guard(runner, "before_train_iter", lambda: self._before_train_iter(runner))

    def _before_train_iter(self, runner: Any) -> None:
        if self.recorder is None:
            raise RuntimeError("before_train_iter before before_run")
        # The lr this iteration trains with: ParamSchedulerHook moves it on in after_train_iter.
        pending: Dict[str, Any] = {"iter": int(runner.iter), "lr": self._lrs(runner)}
        if self.modality_fn is None:
            pending["modality"] = self._modality_attr(runner)
        self._pending = pending
        sdk._cuda_synchronize()
        sdk._reset_peak()
        self._t0 = time.perf_counter()

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._guard(runner, "after_train_iter", lambda: self._after_train_iter(runner, batch_idx, data_batch, outputs))

    def _after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any, outputs: Any) -> None:
        sdk._cuda_synchronize()
        duration = None if self._t0 is None else (time.perf_counter() - self._t0) * 1000.0
        self._t0 = None
        pending, self._pending = self._pending, None
        if self.recorder is None or pending is None or pending["iter"] != int(runner.iter):
            raise RuntimeError(f"after_train_iter of iteration {runner.iter} without its before_train_iter")
        if self.modality_fn is not None:
            modality = self._map_modality(runner, self.modality_fn(runner, batch_idx, data_batch, outputs))
        else:
            modality = pending["modality"]
        wrapper = runner.optim_wrapper
        should = getattr(wrapper, "should_update", None)
        update = bool(should()) if callable(should) else True
        self.recorder.step(
            pending["iter"] + self.step_offset,
            modality,
            lr=pending["lr"],
            losses=self._losses(outputs),
            duration_ms=duration,
            samples=self._samples(data_batch, modality),
            update=update,
            memory=sdk.sample_memory(),
        )

    def after_val_epoch(self, runner: Any, metrics: Optional[Mapping[str, Any]] = None) -> None:
        """Records an evaluation when ``metrics`` carry both ``visual`` and ``text`` numbers
        (keys ending in "visual" / "text", e.g. "recall/visual"); otherwise nothing."""
        self._guard(runner, "after_val_epoch", lambda: self._after_val_epoch(runner, metrics))

    def _after_val_epoch(self, runner: Any, metrics: Optional[Mapping[str, Any]]) -> None:
        if self.recorder is None or not metrics:
            return
        found: Dict[str, float] = {}
        metric = ""
        for k, v in metrics.items():
            for m in ("visual", "text"):
                if str(k).endswith(m) and m not in found:
                    try:
                        found[m] = _scalar(v)
                    except (TypeError, ValueError):
                        continue
                    metric = metric or str(k)[: -len(m)].rstrip("/_.") or "metric"
        if len(found) == 2 and runner.iter > 0:
            self.recorder.evaluation(int(runner.iter) - 1 + self.step_offset, metric, found)

    def after_run(self, runner: Any) -> None:
        self._guard(runner, "after_run", lambda: self._after_run())

    def _after_run(self) -> None:
        if self.recorder is not None:
            self.recorder.close("completed")


def _warn(runner: Any, message: str) -> None:
    """One warning line in mmengine's log (runner.logger, else mmengine's current logger), or on
    stderr without mmengine."""
    try:
        logger = getattr(runner, "logger", None)
        if logger is not None and callable(getattr(logger, "warning", None)):
            logger.warning(message)
            return
        if HAVE_MMENGINE:
            from mmengine.logging import print_log  # noqa: PLC0415

            print_log(message, logger="current", level=logging.WARNING)
            return
    except Exception:  # noqa: BLE001 - fall through to stderr
        pass
    sys.stderr.write(f"WARNING: {message}\n")
    sys.stderr.flush()


if HAVE_MMENGINE:  # pragma: no cover
    _HOOKS.register_module(module=InterleaveRecorderHook, force=True)
