#!/usr/bin/env bash
# The CUDA paths of the reference trainer and the pytorch adapter, on a machine with an NVIDIA GPU.
# Prepared on a CPU-only machine and NOT YET RUN. From the project's root:
#
#   PYTHON=/path/to/python-with-cuda-torch sh python/gpu_check.sh [OUTDIR]
#
# 1. torch sees a CUDA device (name, torch and CUDA versions);
# 2. the Python suite (python/tests) with that interpreter;
# 3. the reference trainer's bare loop on cuda, twice (450 steps of trex2-joint-8to1, then an
#    evaluation): step times, and how far two identical runs drift apart (max relative difference
#    of the total loss): the number behind the engine's CUDA replay tolerance (1e-2, a guess);
# 4. if node and node_modules are there: `interleave run --adapter pytorch --device cuda` for 450
#    steps (memory: allocated / reserved / in-step peak bytes), verify --log, replay (says which
#    tolerance applied).
# Everything lands in OUTDIR (default $OUT, else ./gpu-check-out): summary.txt and the JSON files.
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-/usr/bin/python3}
out=${1:-${OUT:-gpu-check-out}}
mkdir -p "$out"
log() { echo "$*" | tee -a "$out/summary.txt"; }
: >"$out/summary.txt"

log "== 1. CUDA as torch sees it ($py)"
"$py" - <<'PY' 2>&1 | tee -a "$out/summary.txt" || exit 1
import sys, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if not torch.cuda.is_available():
    sys.exit("no CUDA device: nothing to check here")
print("device 0:", torch.cuda.get_device_name(0))
PY

log "== 2. python/tests"
"$py" -m unittest discover -s python/tests 2>&1 | tail -4 | tee -a "$out/summary.txt"

log "== 3. bare loop on cuda, twice"
for i in 1 2; do
  t0=$SECONDS
  "$py" python/interleave_reference_trainer.py --device cuda --bare-loop scenarios/trex2-joint-8to1.json \
    --steps 450 --out "$out/bare-$i.json" --evaluate 2>&1 | tail -2 | tee -a "$out/summary.txt"
  log "bare loop $i: $((SECONDS - t0)) s wall, start-up included"
done
"$py" - "$out/bare-1.json" "$out/bare-2.json" <<'PY' 2>&1 | tee -a "$out/summary.txt"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
d = [abs(x["total"] - y["total"]) / max(abs(x["total"]), abs(y["total"]), 1e-30) for x, y in zip(a["rows"], b["rows"])]
first = next((r["step"] for r, x in zip(a["rows"], d) if x > 0), None)
print(f"max relative difference of the total loss between two identical cuda runs: {max(d):.3g} (first differing step: {first})")
for m, s in a["summary"].items():
    print(f"{m}: {s['meanMs']:.3f} ms mean, {s['medianMs']:.3f} ms median over {s['steps']} steps")
print("evaluation:", a.get("evaluation"), "/", b.get("evaluation"))
PY

if command -v node >/dev/null 2>&1 && [ -e node_modules/effect ]; then
  log "== 4. interleave run --adapter pytorch --device cuda"
  store="$out/runs.db"
  export INTERLEAVE_PROGRESS=0
  node bin/interleave.mjs run scenarios/trex2-joint-8to1.json --adapter pytorch --python "$py" --device cuda \
    --steps 450 --run-id gpu450 --store "$store" --json >"$out/run.json" 2>"$out/run.stderr"
  log "run exit $?: $(tail -c 600 "$out/run.stderr")"
  node bin/interleave.mjs verify --log gpu450 --store "$store" 2>&1 | tail -2 | tee -a "$out/summary.txt"
  node bin/interleave.mjs export gpu450 --store "$store" --out "$out/gpu450.jsonl" 2>&1 | tee -a "$out/summary.txt"
  "$py" - "$out/gpu450.jsonl" <<'PY' 2>&1 | tee -a "$out/summary.txt"
import json, sys
steps = [json.loads(l)["data"] for l in open(sys.argv[1]) if '"StepCompleted"' in l]
keys = sorted({k for s in steps for k in s["memory"]})
print("memory keys recorded:", keys)
for m in ("visual", "text"):
    peak = [s["memory"].get("peakBytes", 0) for s in steps if s["modality"] == m]
    if peak:
        print(f"{m}: in-step peak {min(peak)} .. {max(peak)} bytes over {len(peak)} steps")
PY
  node bin/interleave.mjs replay gpu450 --store "$store" 2>&1 | tail -2 | tee -a "$out/summary.txt"
else
  log "== 4. skipped: no node / node_modules here (run the CLI part where the project is installed)"
fi
log "done: $out"
