#!/usr/bin/env python3
"""A training loop that owns its schedule and records interleave's event log with
``interleave_sdk.Recorder`` (recording mode: interleave does not drive this loop).

    recorder_loop.py SCENARIO.json OUT.jsonl [--steps N] [--model fake|reference] [--eval-every K]

The loop decides each iteration's prompt type itself, the way a T-Rex2-style trainer does: a
text-only stage, then ``visual_iters`` visual iterations followed by ``text_iters`` text ones, per
phase of the scenario (its numbers are read from the scenario so that the two agree; the switch
is this loop's own code, not interleave's planner). ``--model fake`` trains nothing (losses from a
formula; no torch needed); ``--model reference`` trains the reference PyTorch model
(interleave_reference_trainer.Trainer) in this loop. Then:

    interleave verify --log OUT.jsonl      # did the loop follow the schedule, step by step?
    interleave import OUT.jsonl            # keep it in the store beside driven runs
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import interleave_sdk as sdk  # noqa: E402


def prompt_type(phases, it):
    """This loop's switch: per phase, ``visual_iters`` visual then ``text_iters`` text iterations."""
    start = 0
    for p in phases:
        if it < start + p["steps"]:
            v, t = p["ratio"]["visual"], p["ratio"]["text"]
            k = (it - start) % (v + t)
            if p.get("order", "visual-first") == "text-first":
                return "visual" if k >= t else "text"
            return "visual" if k < v else "text"
        start += p["steps"]
    raise ValueError(f"iteration {it} is past the schedule")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--model", choices=("fake", "reference"), default="fake")
    ap.add_argument("--eval-every", type=int, default=0)
    a = ap.parse_args(argv)
    with open(a.scenario, encoding="utf-8") as f:
        spec = sdk.normalize_spec(json.load(f))
    n = sdk.total_steps(spec) if a.steps is None else min(a.steps, sdk.total_steps(spec))
    trainer = None
    if a.model == "reference":
        import torch

        import interleave_reference_trainer as rt

        torch.set_num_threads(1)
        trainer = rt.Trainer(spec, {})
    with sdk.Recorder(a.out, spec, steps=n, trainer_name=f"recorder-loop ({a.model})",
                      device="cpu", info={"loop": "examples/recorder_loop.py"}) as rec:
        for it in range(n):
            modality = prompt_type(spec["phases"], it)
            # lr and the update flag from the spec's schedule (warm-up, decay, accumulation).
            plan = dict(sdk.plan_step(spec, it), modality=modality)
            if trainer is not None:
                losses = trainer.step(plan)["losses"]
            else:
                base = 2.0 if modality == "visual" else 1.5
                losses = {"cls": base / (1 + 0.01 * it), "total": base / (1 + 0.01 * it) + 0.1}
            rec.step(it, modality, lr=plan["lr"], losses=losses, update=plan["update"], memory=sdk.sample_memory())
            if a.eval_every and (it + 1) % a.eval_every == 0 and trainer is not None:
                ev = trainer.evaluate()
                rec.evaluation(it, ev["metric"], ev["values"], ev.get("chance"))
    print(f"recorded {n} iterations to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
