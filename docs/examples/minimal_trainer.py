"""A step-protocol trainer without the SDK: standard library only, the toy model y = w*x + b.
interleave run SCENARIO --adapter exec --cmd "python3 docs/examples/minimal_trainer.py" (docs/step-protocol.md)"""
import json, math, os, platform, random, sys, time

def reply(message):  # one JSON object per line on stdout, nothing else ever goes there
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

state = {"w": 0.0, "b": 0.0, "gw": 0.0, "gb": 0.0, "k": 0}  # weights, accumulated gradients, micro-steps
for line in sys.stdin:  # end of input (interleave killed): the loop ends and so does the process
    req = json.loads(line)
    rid, kind = req["id"], req["type"]
    try:
        if kind == "hello":  # spec: the scenario with every default filled in; options: --hello-options
            spec, options = req["spec"], req["options"]
            groups = [g["name"] for g in spec["optimizer"]["groups"]]
            own = {"w": groups[0], "b": groups[-1]}  # this model's parameters -> the spec's lr groups
            lr_scale = float(options.get("lrScale", 1))  # a trainer option of our own
            reply({"type": "ready", "id": rid, "protocol": 1, "trainer": {"name": "minimal", "version": "1"},
                   "device": "cpu", "framework": f"python {platform.python_version()}", "stateless": False,
                   "capabilities": {"evaluate": False, "checkpoint": True}, "info": {"groups": json.dumps(own)},
                   "reproducible": "exact", "environment": {"python": platform.python_version()}})
        elif kind == "step":
            plan, t0 = req["plan"], time.perf_counter()
            size = spec["batch"][plan["modality"]]["size"]  # samples: the batch size of the step's modality
            rng = random.Random(f"{spec['seed']}/{plan['modality']}/{plan['step']}")  # data: f(seed, step)
            xs = [rng.uniform(-1, 1) for _ in range(size)]
            errors = [state["w"] * x + state["b"] - (2 * x + 1) for x in xs]
            loss = sum(e * e for e in errors) / size  # this micro-step's own loss, not divided by accumulation
            if not math.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {plan['step']}")
            state["gw"] += sum(2 * e * x for e, x in zip(errors, xs)) / size
            state["gb"] += sum(2 * e for e in errors) / size
            state["k"] += 1
            if plan["update"]:  # the last micro-step of its accumulation group: apply the mean gradient
                state["w"] -= lr_scale * plan["lr"][own["w"]] * state["gw"] / state["k"]
                state["b"] -= lr_scale * plan["lr"][own["b"]] * state["gb"] / state["k"]
                state.update(gw=0.0, gb=0.0, k=0)
            reply({"type": "outcome", "id": rid, "step": plan["step"], "losses": {"total": loss},
                   "durationMs": (time.perf_counter() - t0) * 1000, "samples": size})
        elif kind == "checkpoint":  # interleave made the folder; the file at path is ours to write
            with open(req["path"] + ".tmp", "w") as f:
                json.dump({"seed": spec["seed"], **state}, f)
            os.replace(req["path"] + ".tmp", req["path"])  # complete or absent, even if killed mid-write
            reply({"type": "checkpointed", "id": rid, "path": req["path"]})
        elif kind == "restore":  # the state after the checkpointed step, bit for bit (JSON floats round-trip)
            with open(req["path"]) as f:
                saved = json.load(f)
            if saved.pop("seed") != spec["seed"]:
                raise ValueError("the checkpoint was written with another seed")
            state.update(saved)
            reply({"type": "restored", "id": rid, "path": req["path"]})
        elif kind == "close":
            reply({"type": "closed", "id": rid})
            break
        else:
            raise ValueError(f"this trainer cannot {kind}")
    except Exception as e:  # one line on stdout; a traceback would go to stderr
        failure = "nan-loss" if isinstance(e, FloatingPointError) else "trainer-error"
        reply({"type": "failure", "id": rid, "kind": failure, "message": f"{type(e).__name__}: {e}"})
