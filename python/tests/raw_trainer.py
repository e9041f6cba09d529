"""A step-protocol trainer written by hand (no SDK), that misbehaves on request: for the engine's
tests of what it does when a trainer breaks the protocol (test/adapters/exec-adapter.test.ts).

    raw_trainer.py [--garbage-at K] [--exit-at K] [--hang-at K] [--wrong-id-at K]
                   [--wrong-type-at K] [--bare-nan-at K] [--stderr-lines N] [--protocol V]
                   [--print-before-ready] [--ignore-term] [--stateless] [--extra-line-at K]
                   [--refuse-hello] [--once FILE] [--bad-kind-at K]

Steps reply with losses {"total": 1/(1+step)}; `--stderr-lines N` writes N numbered lines to
stderr on every step; `--ignore-term` ignores SIGTERM (the engine must escalate to SIGKILL).
"""

import argparse
import json
import os
import signal
import sys
import time

ap = argparse.ArgumentParser()
for name in ("garbage-at", "exit-at", "hang-at", "wrong-id-at", "wrong-type-at", "bare-nan-at", "extra-line-at",
             "bad-kind-at"):
    ap.add_argument(f"--{name}", type=int, default=-1)
ap.add_argument("--stderr-lines", type=int, default=0)
ap.add_argument("--protocol", type=int, default=1)
ap.add_argument("--print-before-ready", action="store_true")
ap.add_argument("--ignore-term", action="store_true")
ap.add_argument("--stateless", action="store_true")
ap.add_argument("--refuse-hello", action="store_true")
ap.add_argument("--once", metavar="FILE", help="--hang-at / --exit-at only while FILE does not exist (then create it)")
a = ap.parse_args()

if a.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def err(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


if a.once:
    if os.path.exists(a.once):
        a.hang_at = a.exit_at = -1
    else:
        open(a.once, "w").close()

lines = 0
for raw in sys.stdin:
    if not raw.strip():
        continue
    req = json.loads(raw)
    rid, kind = req["id"], req["type"]
    if kind == "hello" and a.refuse_hello:
        send({"type": "failure", "id": rid, "kind": "trainer-error",
              "message": "RuntimeError: device cuda was asked for, but torch sees no CUDA device"})
    elif kind == "hello":
        if a.print_before_ready:
            print("Loading model weights... done")
        send({"type": "ready", "id": rid, "protocol": a.protocol, "trainer": {"name": "raw", "version": "0"},
              "device": "cpu", "framework": "none", "stateless": a.stateless,
              "capabilities": {"evaluate": False, "checkpoint": False}, "info": {"pid": str(os.getpid())}})
    elif kind == "step":
        s = req["plan"]["step"]
        for _ in range(a.stderr_lines):
            lines += 1
            err(f"stderr line {lines}")
        if s == a.exit_at:
            err("Traceback (most recent call last):")
            err('  File "raw_trainer.py", line 1, in step')
            err(f"RuntimeError: the trainer fell over at step {s}")
            os._exit(3)
        if s == a.hang_at:
            err(f"hanging at step {s}")
            while True:
                time.sleep(1)
        if s == a.garbage_at:
            print(f"epoch 0 iter {s}: loss=0.5")  # a stray print on the protocol channel
            sys.stdout.flush()
            continue
        if s == a.bare_nan_at:
            sys.stdout.write(json.dumps({"type": "outcome", "id": rid, "step": s, "losses": {"total": float("nan")},
                                         "durationMs": 1.0, "samples": 1}) + "\n")
            sys.stdout.flush()
            continue
        if s == a.bad_kind_at:
            send({"type": "failure", "id": rid, "kind": "toString", "message": "not a kind"})
            continue
        if s == a.wrong_id_at:
            rid += 1
        reply = {"type": "outcome", "id": rid, "step": s, "losses": {"total": 1.0 / (1 + s)}, "durationMs": 0.5,
                 "samples": 2, "memory": {"rssBytes": 1000}}
        if s == a.wrong_type_at:
            reply = {"type": "checkpointed", "id": rid, "path": "/nowhere"}
        send(reply)
        if s == a.extra_line_at:
            send(reply)
    elif kind == "close":
        send({"type": "closed", "id": rid})
        break
    else:
        send({"type": "failure", "id": rid, "kind": "trainer-error", "message": f"{kind} is not supported"})
