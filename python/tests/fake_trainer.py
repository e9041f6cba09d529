"""A torch-free trainer for the protocol tests: its behaviour comes from the hello options.

options: nanAt (step whose total loss is NaN), raiseAt (step that raises ValueError), oomAt (step
that raises RuntimeError("CUDA out of memory ...")), assertAt (a "device-side assert" error),
noisy (print() and os.write(1, ...) on every request, to check stdout stays clean).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import interleave_sdk as sdk  # noqa: E402

state = {"opts": {}, "w": 0.0, "steps": 0}


def noise(where):
    if state["opts"].get("noisy"):
        print(f"stray print in {where}")
        sys.stdout.write(f"stray sys.stdout.write in {where}\n")
        os.write(1, f"stray os.write(1) in {where}\n".encode())


def hello(spec, options):
    state["opts"] = options
    state["spec"] = spec
    noise("hello")
    return {"device": "fake", "framework": "none", "flavour": 42}


def step(plan):
    noise("step")
    o, s = state["opts"], plan["step"]
    if o.get("nanAt") == s:
        return {"cls": 1.0, "total": float("nan")}
    if o.get("raiseAt") == s:
        raise ValueError(f"broken batch at step {s}\nsecond line")
    if o.get("oomAt") == s:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if o.get("assertAt") == s:
        raise RuntimeError("CUDA error: device-side assert triggered")
    state["steps"] += 1
    if plan["update"]:
        state["w"] += plan["lr"][next(iter(plan["lr"]))]
    loss = 1.0 / (1 + s)
    if plan["modality"] == "text":
        return sdk.StepResult({"cls": loss, "total": loss}, samples=3, memory={"peakBytes": 123})
    return {"cls": loss, "box": 0.5, "total": loss + 0.5}


def checkpoint(path):
    with open(path, "w") as f:
        json.dump({"w": state["w"], "steps": state["steps"], "seed": state["spec"].get("seed", 0)}, f)


def restore(path):
    with open(path) as f:
        doc = json.load(f)
    if doc["seed"] != state["spec"].get("seed", 0):
        raise ValueError(f"checkpoint of seed {doc['seed']}")
    state["w"], state["steps"] = doc["w"], doc["steps"]


def evaluate():
    noise("evaluate")
    return {"metric": "fake", "values": {"visual": 0.5, "text": state["w"]}, "chance": 1 / 3}


if __name__ == "__main__":
    sys.exit(sdk.serve(step, checkpoint=checkpoint, restore=restore, evaluate=evaluate, hello=hello,
                       name="fake", version="9"))
