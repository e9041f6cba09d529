"""interleave's Python SDK: serve the step protocol, or record interleave's own event log.

Two ways for a Python trainer to meet interleave (see docs/step-protocol.md):

* **Driven mode** -- :func:`serve`. interleave's engine starts the trainer as a child process and
  sends it one request per JSON line on stdin (``hello``, ``step``, ``checkpoint``, ``restore``,
  ``evaluate``, ``close``); the SDK calls the trainer's callbacks, times every step itself, samples
  memory, maps exceptions to failure kinds and writes one reply line per request on stdout.
  While serving, ``sys.stdout`` *and* file descriptor 1 point at stderr, so a stray ``print`` (or a
  C library writing to fd 1) cannot corrupt the protocol channel; protocol lines go to a private
  duplicate of the original stdout.

* **Recording mode** -- :class:`Recorder`. A trainer that owns its loop (mmengine, Lightning, a
  hand-written loop) writes interleave's JSONL event log itself, which ``interleave verify --log``
  and ``interleave import`` read. The trainer states what each iteration *did* (modality, lr of
  every group, whether it applied an update, its losses); the Recorder adds the schedule
  coordinates (phase, cycle, position, micro-step) that a loop does not know, from the spec.

Standard library only. torch is used when (and only when) the trainer process has already
imported it: the SDK never imports torch itself, so it works in any Python >= 3.8.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import random
import sys
import time
import traceback
from decimal import Decimal
from hashlib import sha256
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

__all__ = [
    "PROTOCOL_VERSION",
    "SDK_VERSION",
    "EVENT_VERSIONS",
    "MEMORY_KEYS",
    "StepFailure",
    "StepResult",
    "serve",
    "Recorder",
    "js_number",
    "canonical_json",
    "hash_json",
    "spec_hash",
    "normalize_spec",
    "total_steps",
    "group_names",
    "coordinates",
    "plan_step",
    "text_steps_before",
    "classify_exception",
    "sample_memory",
    "rss_bytes",
    "environment",
]

PROTOCOL_VERSION = 1
SDK_VERSION = "0.1.0"

#: Schema version of each event type this SDK writes (StepCompleted v2: the memory object with
#: allocatedBytes / reservedBytes / peakBytes / deviceBytes / rssBytes).
EVENT_VERSIONS: Dict[str, int] = {
    "RunStarted": 1,
    "PhaseStarted": 1,
    "StepCompleted": 2,
    "StepFailed": 1,
    "EvalCompleted": 1,
    "Checkpointed": 1,
    "RunCompleted": 1,
    "RunAborted": 1,
}

#: Keys of a StepCompleted (v2) memory object; every key is optional.
MEMORY_KEYS = ("allocatedBytes", "reservedBytes", "peakBytes", "deviceBytes", "rssBytes")

FAILURE_KINDS = ("nan-loss", "out-of-memory", "device-lost", "trainer-error")


# ---- JavaScript-compatible canonical JSON and the spec hash ---------------------------------------


def js_number(x: Any) -> str:
    """A number formatted exactly as JavaScript's ``JSON.stringify`` (Number::toString) does.

    Shortest round-trip digits (those of Python's ``repr``), in JavaScript's notation: integral
    values without ``.0``, plain decimals while the decimal exponent is in [-7, 21), exponent form
    (``1e-7``, ``1.5e+21``) outside. ``-0`` prints as ``0``; NaN and infinities as ``null``, as
    JSON.stringify writes them.
    """
    if isinstance(x, bool):
        raise TypeError("js_number: a bool is not a number")
    if isinstance(x, int):
        if abs(x) < 2**53:
            return str(x)
        x = float(x)  # JavaScript would hold the nearest double
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return "null"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_number(-x)
    _, digit_tuple, exp = Decimal(repr(x)).as_tuple()
    digits = "".join(str(d) for d in digit_tuple).lstrip("0")
    stripped = digits.rstrip("0")
    exp += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = exp + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{sign}{abs(e)}"


def _js_string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    # JSON.stringify escapes lone surrogates (Python would leave them raw and fail to encode).
    if any(0xD800 <= ord(c) <= 0xDFFF for c in s):
        out = "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in out)
    return out


def _is_array_index(key: str) -> bool:
    # ECMAScript array index: canonical decimal of an integer in [0, 2**32 - 2].
    return key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _js_key_order(keys: Iterable[str]) -> List[str]:
    """Key order of ``Object.fromEntries(entries sorted by < )`` as JSON.stringify then walks it:
    array-index keys first in numeric order, then the others in UTF-16 code-unit order."""
    keys = list(keys)
    index = sorted((k for k in keys if _is_array_index(k)), key=int)
    other = sorted((k for k in keys if not _is_array_index(k)), key=_utf16_key)
    return index + other


def canonical_json(value: Any) -> str:
    """interleave's canonical JSON (core/events.ts canonicalJson): object keys sorted, no spaces,
    numbers and strings as JavaScript's JSON.stringify writes them."""
    parts: List[str] = []

    def walk(v: Any) -> None:
        if v is None:
            parts.append("null")
        elif v is True:
            parts.append("true")
        elif v is False:
            parts.append("false")
        elif isinstance(v, (int, float)):
            parts.append(js_number(v))
        elif isinstance(v, str):
            parts.append(_js_string(v))
        elif isinstance(v, Mapping):
            for k in v:
                if not isinstance(k, str):
                    raise TypeError(f"canonical_json: object key {k!r} is not a string")
            parts.append("{")
            first = True
            for k in _js_key_order(v.keys()):
                if not first:
                    parts.append(",")
                first = False
                parts.append(_js_string(k))
                parts.append(":")
                walk(v[k])
            parts.append("}")
        elif isinstance(v, (list, tuple)):
            parts.append("[")
            for i, item in enumerate(v):
                if i:
                    parts.append(",")
                walk(item)
            parts.append("]")
        else:
            raise TypeError(f"canonical_json: {type(v).__name__} is not JSON")

    walk(value)
    return "".join(parts)


def hash_json(value: Any) -> str:
    """First 16 hex digits of sha256(canonical_json(value)), as core/events.ts hashJson."""
    return sha256(canonical_json(value).encode("utf-8", "surrogatepass")).hexdigest()[:16]


# ---- the spec: interleave's defaults, the planner's coordinates ----------------------------------


def normalize_spec(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """The scenario with interleave's decoding defaults filled in (core/spec.ts), so that a spec
    hashes as interleave hashes it (``RunStarted.specHash`` = hash of the decoded spec): ``seed`` 0,
    ``description`` "", a phase's ``order`` visual-first, ``accumulation`` 1, the optimizer's
    ``weightDecay`` 0, ``beta1`` 0.9, ``beta2`` 0.999, ``epsilon`` 1e-8, ``momentum`` 0, ``lr`` with
    ``decay`` none and ``modalityFactor`` 1/1, a warm-up's ``startFactor`` 0.001, a cosine decay's
    ``floor`` 0. Keys it does not know are kept as they are. Raises ValueError on a spec without
    the structure the planner needs (phases, batch, optimizer groups), naming the field.
    """
    if not isinstance(spec, Mapping):
        raise ValueError("spec: must be a JSON object")
    s = json.loads(json.dumps(spec))  # deep copy, JSON values only
    s.setdefault("description", "")
    s.setdefault("seed", 0)
    phases = s.get("phases")
    if not isinstance(phases, list) or not phases:
        raise ValueError("spec.phases: needs at least one phase")
    for i, p in enumerate(phases):
        if not isinstance(p, dict):
            raise ValueError(f"spec.phases[{i}]: must be an object")
        for key in ("name", "steps", "ratio"):
            if key not in p:
                raise ValueError(f"spec.phases[{i}].{key}: missing")
        r = p["ratio"]
        if not isinstance(r, dict) or not all(isinstance(r.get(m), int) and r.get(m) >= 0 for m in ("visual", "text")):
            raise ValueError(f"spec.phases[{i}].ratio: needs integers visual and text >= 0")
        if r["visual"] + r["text"] == 0:
            raise ValueError(f"spec.phases[{i}].ratio: visual and text cannot both be 0")
        if not isinstance(p["steps"], int) or p["steps"] < 1:
            raise ValueError(f"spec.phases[{i}].steps: must be an integer >= 1")
        p.setdefault("order", "visual-first")
    batch = s.get("batch")
    if not isinstance(batch, dict):
        raise ValueError("spec.batch: missing")
    for m in ("visual", "text"):
        b = batch.get(m)
        if not isinstance(b, dict) or "size" not in b:
            raise ValueError(f"spec.batch.{m}.size: missing")
        b.setdefault("accumulation", 1)
    opt = s.get("optimizer")
    if not isinstance(opt, dict) or not isinstance(opt.get("groups"), list) or not opt["groups"]:
        raise ValueError("spec.optimizer.groups: needs at least one group")
    for key, dflt in (("weightDecay", 0), ("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8), ("momentum", 0)):
        opt.setdefault(key, dflt)
    lr = s.setdefault("lr", {})
    lr.setdefault("decay", {"kind": "none"})
    lr.setdefault("modalityFactor", {"visual": 1, "text": 1})
    if isinstance(lr.get("warmup"), dict):
        lr["warmup"].setdefault("startFactor", 0.001)
    if isinstance(lr.get("decay"), dict) and lr["decay"].get("kind") == "cosine":
        lr["decay"].setdefault("floor", 0)
    return s


def spec_hash(spec: Mapping[str, Any], normalize: bool = True) -> str:
    """The ``specHash`` interleave records for this scenario (of the decoded spec by default)."""
    return hash_json(normalize_spec(spec) if normalize else spec)


def total_steps(spec: Mapping[str, Any]) -> int:
    return sum(int(p["steps"]) for p in spec["phases"])


def group_names(spec: Mapping[str, Any]) -> List[str]:
    return [g["name"] for g in spec["optimizer"]["groups"]]


def _visual_upto(v: int, t: int, order: str, m: int) -> int:
    """Visual steps among cycle-relative indices [0, m)."""
    c = v + t
    full = (m // c) * v
    rest = m % c
    return full + (max(rest - t, 0) if order == "text-first" else min(rest, v))


def _is_visual(phase: Mapping[str, Any], i: int) -> bool:
    v, t = phase["ratio"]["visual"], phase["ratio"]["text"]
    pos = (i + int(phase.get("offset", 0))) % (v + t)
    return pos >= t if phase.get("order", "visual-first") == "text-first" else pos < v


def _visual_in(phase: Mapping[str, Any], n: int) -> int:
    """Visual steps among the first n steps of a phase (with its optional offset)."""
    v, t = phase["ratio"]["visual"], phase["ratio"]["text"]
    order = phase.get("order", "visual-first")
    off = int(phase.get("offset", 0))
    return _visual_upto(v, t, order, n + off) - _visual_upto(v, t, order, off)


def coordinates(spec: Mapping[str, Any], step: int) -> Dict[str, Any]:
    """Schedule coordinates of a global step, from the spec alone: ``phase``, ``phaseIndex``,
    ``phaseStart``, ``phaseStep``, ``cycle`` = floor((phaseStep + offset) / (V+T)) and
    ``position`` = (phaseStep + offset) mod (V+T), where ``offset`` is the phase's optional
    ``offset`` key (default 0)."""
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    start = 0
    for index, p in enumerate(spec["phases"]):
        n = int(p["steps"])
        if step < start + n:
            c = p["ratio"]["visual"] + p["ratio"]["text"]
            k = step - start + int(p.get("offset", 0))
            return {
                "phase": p["name"],
                "phaseIndex": index,
                "phaseStart": start,
                "phaseStep": step - start,
                "cycle": k // c,
                "position": k % c,
            }
        start += n
    raise ValueError(f"step {step} is outside the schedule (0..{start - 1})")


def _schedule_factor(spec: Mapping[str, Any], step: int, total: int) -> float:
    lr = spec.get("lr") or {}
    warm = lr.get("warmup")
    w = int(warm["steps"]) if warm else 0
    if warm and step < w:
        if step == w - 1:
            return 1
        sf = warm.get("startFactor", 0.001)
        return sf + ((1 - sf) * step) / (w - 1) if warm["kind"] == "linear" else sf
    decay = lr.get("decay") or {"kind": "none"}
    if decay["kind"] == "multistep":
        passed = sum(1 for m in decay["milestones"] if m <= step)
        return decay["gamma"] ** passed
    if decay["kind"] == "cosine":
        floor = decay.get("floor", 0)
        span = max(1, total - w - 1)
        t = min(step - w, span)
        return floor + (1 - floor) * 0.5 * (1 + math.cos((math.pi * t) / span))
    return 1


def plan_step(spec: Mapping[str, Any], step: int) -> Dict[str, Any]:
    """A port of interleave's planner (core/plan.ts planStep): what global step ``step`` does.

    For tests and for running a schedule without the engine (the reference trainer's bare loop).
    The engine's plan is the authority: in driven mode, use the plan it sends. With a phase
    ``offset`` the first block of the phase may be partial; accumulation groups then count from
    the phase's first step (this SDK's reading of the offset feature).
    """
    spec = normalize_spec(spec)
    co = coordinates(spec, step)
    phase = spec["phases"][co["phaseIndex"]]
    v, t = phase["ratio"]["visual"], phase["ratio"]["text"]
    ps = co["phaseStep"]
    steps = int(phase["steps"])
    visual = _is_visual(phase, ps)
    modality = "visual" if visual else "text"
    if v == 0 or t == 0:
        block_start, block_end = 0, steps
    else:
        visual_first = phase.get("order", "visual-first") != "text-first"
        in_cycle = 0 if visual == visual_first else (v if visual_first else t)
        block_start = ps - (co["position"] - in_cycle)
        block_end = min(block_start + (v if visual else t), steps)
        block_start = max(block_start, 0)
    acc = int(spec["batch"][modality].get("accumulation", 1))
    off = ps - block_start
    micro = off % acc
    update = micro == acc - 1 or ps == block_end - 1
    total = total_steps(spec)
    factor = _schedule_factor(spec, step, total) * (spec.get("lr") or {}).get("modalityFactor", {}).get(modality, 1)
    base = {}
    o = spec["optimizer"]
    for g in o["groups"]:
        base[g["name"]] = g["lr"] if g.get("lr") is not None else o["lr"] * g.get("lrMultiplier", 1)
    return {
        "step": step,
        "phase": co["phase"],
        "phaseStep": ps,
        "modality": modality,
        "cycle": co["cycle"],
        "position": co["position"],
        "micro": micro,
        "update": update,
        "lr": {name: b * factor for name, b in base.items()},
    }


def text_steps_before(spec: Mapping[str, Any], phase_name: str, phase_step: int) -> int:
    """Text steps of the schedule before step ``phase_step`` of phase ``phase_name``."""
    n = 0
    for p in spec["phases"]:
        if p["name"] == phase_name:
            return n + phase_step - _visual_in(p, phase_step)
        n += int(p["steps"]) - _visual_in(p, int(p["steps"]))
    raise ValueError(f'phase "{phase_name}" is not in the spec')


# ---- memory -------------------------------------------------------------------------------------


def rss_bytes() -> Optional[int]:
    """Resident set size of this process now, from /proc/self/statm (Linux); None elsewhere.
    (``resource.getrusage``'s ru_maxrss is the lifetime *peak*, a different number: not used.)"""
    try:
        with open("/proc/self/statm", "rb") as f:
            resident = int(f.read().split()[1])
        return resident * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _torch():
    """torch if this process has imported it (the SDK never imports it itself)."""
    return sys.modules.get("torch")


def _cuda_in_use() -> bool:
    torch = _torch()
    try:
        return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001 - a broken CUDA install must not break the SDK
        return False


def _cuda_synchronize() -> None:
    if _cuda_in_use():
        _torch().cuda.synchronize()


def _reset_peak() -> None:
    if _cuda_in_use():
        _torch().cuda.reset_peak_memory_stats()


def sample_memory(peak: bool = True) -> Dict[str, int]:
    """Memory after a step, StepCompleted v2 keys, unknown ones omitted. With CUDA in use:
    ``allocatedBytes`` (torch.cuda.memory_allocated: live tensors), ``reservedBytes``
    (torch.cuda.memory_reserved: the caching allocator's pool) and, when ``peak``, ``peakBytes``
    (torch.cuda.max_memory_allocated since the last reset_peak_memory_stats, which the SDK calls
    before every step). Always ``rssBytes`` where /proc is readable."""
    out: Dict[str, int] = {}
    if _cuda_in_use():
        cuda = _torch().cuda
        out["allocatedBytes"] = int(cuda.memory_allocated())
        out["reservedBytes"] = int(cuda.memory_reserved())
        if peak:
            out["peakBytes"] = int(cuda.max_memory_allocated())
    rss = rss_bytes()
    if rss is not None:
        out["rssBytes"] = rss
    return out


# ---- environment --------------------------------------------------------------------------------

_BLAS_LIBRARIES = ("libblas", "libcblas", "libopenblas", "libmkl_rt", "libmkl_core", "libblis", "libflexiblas")
_TORCH_BUILD_KEYS = ("BLAS_INFO", "LAPACK_INFO", "USE_CUDA", "USE_CUDNN", "USE_MKLDNN", "USE_OPENMP")


def _mapped_blas() -> List[str]:
    """Real paths of the BLAS libraries mapped into this process, in load order (/proc/self/maps
    shows paths with symlinks resolved: ``libblas.so.3`` as the alternative it points at)."""
    found: List[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) == 6 else ""
                if path.startswith("/") and os.path.basename(path).startswith(_BLAS_LIBRARIES) and path not in found:
                    found.append(path)
    except OSError:
        pass
    return sorted(found, key=lambda p: not os.path.basename(p).startswith("libblas."))  # libblas.so.3 first


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _torch_build(torch: Any) -> Tuple[str, Optional[str]]:
    """torch's build in short (git hash, BLAS / LAPACK / CUDA / oneDNN / OpenMP settings) and the
    CPU capability its kernels dispatch to (AVX2, AVX512, ...), from torch.__config__.show()."""
    shown = ""
    try:
        shown = str(torch.__config__.show())
    except Exception:  # noqa: BLE001 - a build without __config__ still has a version
        pass
    settings: Dict[str, str] = {}
    capability = None
    for line in shown.splitlines():
        line = line.strip(" -\t")
        if line.startswith("Build settings:"):
            for item in line[len("Build settings:"):].split(","):
                k, _, v = item.strip().partition("=")
                if k in _TORCH_BUILD_KEYS:
                    settings[k] = v
        elif line.startswith("CPU capability usage:"):
            capability = line.partition(":")[2].strip()
    git = str(getattr(getattr(torch, "version", None), "git_version", "") or "unknown")
    build = " ".join([f"git {git}"] + [f"{k}={settings[k]}" for k in _TORCH_BUILD_KEYS if k in settings])
    return build, capability


def environment() -> Dict[str, str]:
    """What an exact re-execution of this process's steps depends on besides their inputs, as
    strings: ``python``; with torch imported ``torch`` (``__version__``), ``torchBuild`` (git hash
    and BLAS / LAPACK / CUDA / oneDNN / OpenMP build settings), ``cpuCapability`` (the kernels'
    instruction set), ``cuda`` and ``cudnn`` (versions, or ``none``), ``threads``
    (``torch.get_num_threads()``); ``numpy`` when imported; ``blas`` (the BLAS libraries mapped in
    this process, real paths, e.g. which alternative ``libblas.so.3`` resolves to); ``cpu`` (the
    model name); with CUDA in use ``gpu`` (the current device's name) and ``cudnnFlags``. The SDK
    sends it in the ``ready`` reply; interleave records it and names what differs when a replay
    diverges. Call it after the model is set up (threads set, CUDA initialised)."""
    env: Dict[str, str] = {"python": platform.python_version()}
    torch = _torch()
    if torch is not None:
        env["torch"] = str(torch.__version__)
        build, capability = _torch_build(torch)
        env["torchBuild"] = build
        if capability:
            env["cpuCapability"] = capability
        env["cuda"] = str(getattr(torch.version, "cuda", None) or "none")
        try:
            cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        except Exception:  # noqa: BLE001
            cudnn = None
        env["cudnn"] = str(cudnn or "none")
        env["threads"] = str(torch.get_num_threads())
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        env["numpy"] = str(getattr(numpy, "__version__", "?"))
    blas = _mapped_blas()
    env["blas"] = ", ".join(blas) if blas else "none mapped"
    env["cpu"] = _cpu_model()
    if _cuda_in_use():
        try:
            env["gpu"] = str(torch.cuda.get_device_name(torch.cuda.current_device()))
            env["cudnnFlags"] = (f"deterministic={torch.backends.cudnn.deterministic} "
                                 f"benchmark={torch.backends.cudnn.benchmark}")
        except Exception:  # noqa: BLE001 - a broken CUDA context must not break hello
            pass
    return env


# ---- failures -----------------------------------------------------------------------------------


class StepFailure(Exception):
    """Raise from a callback to report a failure of a given kind (nan-loss, out-of-memory,
    device-lost, trainer-error) with your own message."""

    def __init__(self, kind: str, message: str):
        if kind not in FAILURE_KINDS:
            raise ValueError(f"StepFailure kind must be one of {', '.join(FAILURE_KINDS)}, got {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message


def _one_line(s: str, limit: int = 2000) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def classify_exception(e: BaseException) -> Tuple[str, str]:
    """(kind, one-line message) for an exception raised by a trainer callback."""
    if isinstance(e, StepFailure):
        return e.kind, _one_line(e.message)
    text = str(e)
    lower = text.lower()
    torch = _torch()
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch else None
    if (oom_type is not None and isinstance(e, oom_type)) or isinstance(e, MemoryError) or (
        isinstance(e, RuntimeError) and "out of memory" in lower
    ):
        return "out-of-memory", _one_line(f"{type(e).__name__}: {text}")
    if "device-side assert" in lower or "cuda error" in lower:
        return "device-lost", _one_line(f"{type(e).__name__}: {text}")
    return "trainer-error", _one_line(f"{type(e).__name__}: {text}")


# ---- driven mode: serve() ------------------------------------------------------------------------


class StepResult:
    """What a step callback may return: losses (with "total"), samples, optionally memory
    (StepCompleted v2 keys; the SDK's own sample is used for keys you leave out)."""

    __slots__ = ("losses", "samples", "memory")

    def __init__(self, losses: Mapping[str, Any], samples: int, memory: Optional[Mapping[str, Any]] = None):
        self.losses = losses
        self.samples = samples
        self.memory = memory


def _as_float(x: Any) -> float:
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, bool):
        raise TypeError("a bool is not a loss")
    return float(x)


class _ProtocolError(Exception):
    pass


def _check_reproducible(r: Any) -> Any:
    """``None``, ``"exact"`` or ``{"relTolerance": x >= 0, "durationRelTolerance"?: y >= 0}``."""
    if r is None or r == "exact":
        return r
    ok = isinstance(r, Mapping) and set(r) <= {"relTolerance", "durationRelTolerance"} and "relTolerance" in r
    if ok:
        vals = [r[k] for k in r]
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in vals)
    if not ok:
        raise ValueError(f'reproducible must be "exact" or {{"relTolerance": x, "durationRelTolerance": y}} with numbers >= 0, got {r!r}')
    return {str(k): float(v) for k, v in r.items()}


def _log(msg: str) -> None:
    try:
        sys.stderr.write(f"[interleave-sdk] {msg}\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001
        pass


class _Server:
    def __init__(self, out, callbacks: Dict[str, Optional[Callable]], name: str, version: str, stateless: bool,
                 reproducible: Any = None):
        self.out = out
        self.cb = callbacks
        self.name = name
        self.version = version
        self.stateless = stateless
        self.reproducible = reproducible
        self.spec: Optional[Dict[str, Any]] = None
        self.greeted = False

    # -- output --
    def send(self, reply: Dict[str, Any]) -> None:
        line = json.dumps(reply, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        self.out.write(line.encode("utf-8") + b"\n")
        self.out.flush()

    def fail(self, rid: Any, kind: str, message: str) -> None:
        self.send({"type": "failure", "id": rid, "kind": kind, "message": _one_line(message)})

    # -- dispatch --
    def handle(self, raw: bytes) -> bool:
        """Handles one request line; False when the session is over (close)."""
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return True
        try:
            req = json.loads(text)
        except ValueError as e:
            self.fail(None, "trainer-error", f"invalid request: not JSON ({e})")
            return True
        if not isinstance(req, dict):
            self.fail(None, "trainer-error", "invalid request: expected a JSON object")
            return True
        rid = req.get("id")
        if not isinstance(rid, int) or isinstance(rid, bool):
            self.fail(rid if isinstance(rid, (int, float, str)) else None, "trainer-error",
                      f"invalid request: id must be an integer, got {json.dumps(rid)}")
            return True
        kind = req.get("type")
        handler = {
            "hello": self.on_hello,
            "step": self.on_step,
            "checkpoint": self.on_checkpoint,
            "restore": self.on_restore,
            "evaluate": self.on_evaluate,
            "close": self.on_close,
        }.get(kind)  # type: ignore[arg-type]
        if handler is None:
            self.fail(rid, "trainer-error", f"invalid request: unknown type {json.dumps(kind)}")
            return True
        if kind not in ("hello", "close") and not self.greeted:
            self.fail(rid, "trainer-error", f"invalid request: {kind} before hello")
            return True
        try:
            return handler(rid, req) is not False
        except _ProtocolError as e:
            self.fail(rid, "trainer-error", f"invalid request: {e}")
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            k, message = classify_exception(e)
            if isinstance(e, StepFailure):
                _log(f"{req.get('type')} {rid}: {k}: {message}")
            else:
                traceback.print_exc(file=sys.stderr)
            self.fail(rid, k, message)
        return True

    def on_hello(self, rid: int, req: Dict[str, Any]) -> None:
        if req.get("protocol") != PROTOCOL_VERSION:
            raise _ProtocolError(
                f"protocol version {json.dumps(req.get('protocol'))} is not supported (this SDK speaks {PROTOCOL_VERSION})"
            )
        spec = req.get("spec")
        options = req.get("options", {})
        if not isinstance(spec, dict):
            raise _ProtocolError("hello needs a spec object")
        if not isinstance(options, dict):
            raise _ProtocolError("hello options must be an object")
        info: Dict[str, Any] = {}
        if self.cb["hello"] is not None:
            got = self.cb["hello"](spec, options)
            if got is not None:
                if not isinstance(got, Mapping):
                    raise TypeError(f"hello callback must return a dict or None, got {type(got).__name__}")
                info = dict(got)
        torch = _torch()
        reproducible = _check_reproducible(info.pop("reproducible", self.reproducible))
        extra = info.pop("environment", None) or {}
        if not isinstance(extra, Mapping):
            raise TypeError(f"hello callback's environment must be a dict, got {type(extra).__name__}")
        env = environment()
        env.update({str(k): str(v) for k, v in extra.items()})
        device = str(info.pop("device", "cpu"))
        framework = str(info.pop("framework", f"torch {torch.__version__}" if torch else f"python {platform.python_version()}"))
        reply: Dict[str, Any] = {
            "type": "ready",
            "id": rid,
            "protocol": PROTOCOL_VERSION,
            "trainer": {"name": self.name, "version": self.version},
            "device": device,
            "framework": framework,
            "stateless": bool(self.stateless),
            "capabilities": {
                "evaluate": self.cb["evaluate"] is not None,
                "checkpoint": self.cb["checkpoint"] is not None and self.cb["restore"] is not None,
            },
        }
        if info:
            reply["info"] = {str(k): str(v) for k, v in info.items()}
        if reproducible is not None:
            reply["reproducible"] = reproducible
        reply["environment"] = env
        self.spec = spec
        self.greeted = True
        self.send(reply)

    def on_step(self, rid: int, req: Dict[str, Any]) -> None:
        plan = req.get("plan")
        if not isinstance(plan, dict):
            raise _ProtocolError("step needs a plan object")
        for key in ("step", "modality", "update", "lr"):
            if key not in plan:
                raise _ProtocolError(f"plan.{key}: missing")
        if plan["modality"] not in ("visual", "text"):
            raise _ProtocolError(f"plan.modality must be visual or text, got {json.dumps(plan['modality'])}")
        _cuda_synchronize()
        _reset_peak()
        t0 = time.perf_counter()
        got = self.cb["step"](plan)
        _cuda_synchronize()
        duration = (time.perf_counter() - t0) * 1000.0
        losses_in, samples, memory_in = self._unpack(got, plan)
        losses: Dict[str, float] = {}
        for k, v in losses_in.items():
            losses[str(k)] = _as_float(v)
        if "total" not in losses:
            raise StepFailure("trainer-error", f'step {plan["step"]}: the step callback returned no "total" loss')
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            shown = ", ".join(f"{k}={v}" for k, v in bad.items())
            raise StepFailure("nan-loss", f"non-finite loss at step {plan['step']} ({plan['modality']}): {shown}")
        memory = sample_memory()
        if memory_in:
            for k, v in memory_in.items():
                if k in MEMORY_KEYS and v is not None and math.isfinite(float(v)):
                    memory[k] = int(v)
        self.send(
            {
                "type": "outcome",
                "id": rid,
                "step": plan["step"],
                "losses": losses,
                "durationMs": duration,
                "samples": int(samples),
                "memory": memory,
            }
        )

    def _unpack(self, got: Any, plan: Mapping[str, Any]):
        memory = None
        if isinstance(got, StepResult):
            losses, samples, memory = got.losses, got.samples, got.memory
        elif isinstance(got, tuple) and len(got) in (2, 3):
            losses, samples = got[0], got[1]
            memory = got[2] if len(got) == 3 else None
        elif isinstance(got, Mapping) and "losses" in got:
            losses, samples, memory = got["losses"], got.get("samples"), got.get("memory")
        elif isinstance(got, Mapping):
            losses, samples = got, None
        elif hasattr(got, "losses"):
            losses, samples, memory = got.losses, getattr(got, "samples", None), getattr(got, "memory", None)
        else:
            raise StepFailure("trainer-error", f"step callback returned {type(got).__name__}; expected a dict of losses")
        if not isinstance(losses, Mapping):
            raise StepFailure("trainer-error", f"step callback losses are a {type(losses).__name__}, not a dict")
        if samples is None:
            samples = int(self.spec["batch"][plan["modality"]]["size"]) if self.spec else 0
        return losses, samples, memory

    def _path(self, req: Dict[str, Any]) -> str:
        path = req.get("path")
        if not isinstance(path, str) or not path:
            raise _ProtocolError(f"{req.get('type')} needs a path")
        return path

    def on_checkpoint(self, rid: int, req: Dict[str, Any]) -> None:
        path = self._path(req)
        if self.cb["checkpoint"] is None:
            raise StepFailure("trainer-error", "this trainer cannot checkpoint")
        self.cb["checkpoint"](path)
        self.send({"type": "checkpointed", "id": rid, "path": path})

    def on_restore(self, rid: int, req: Dict[str, Any]) -> None:
        path = self._path(req)
        if self.cb["restore"] is None:
            raise StepFailure("trainer-error", "this trainer cannot restore a checkpoint")
        self.cb["restore"](path)
        self.send({"type": "restored", "id": rid, "path": path})

    def on_evaluate(self, rid: int, req: Dict[str, Any]) -> None:
        if self.cb["evaluate"] is None:
            raise StepFailure("trainer-error", "this trainer has no evaluate")
        got = self.cb["evaluate"]()
        if not isinstance(got, Mapping) or not isinstance(got.get("values"), Mapping):
            raise StepFailure("trainer-error", "evaluate must return {metric, values: {visual, text}, chance?}")
        values = {m: _as_float(got["values"][m]) for m in ("visual", "text") if m in got["values"]}
        if set(values) != {"visual", "text"} or not all(math.isfinite(v) for v in values.values()):
            raise StepFailure("trainer-error", f"evaluate values must be finite visual and text numbers, got {values}")
        reply: Dict[str, Any] = {"type": "evaluation", "id": rid, "metric": str(got.get("metric", "metric")), "values": values}
        if got.get("chance") is not None:
            chance = _as_float(got["chance"])
            if math.isfinite(chance):
                reply["chance"] = chance
        self.send(reply)

    def on_close(self, rid: int, req: Dict[str, Any]) -> bool:
        if self.cb["close"] is not None:
            try:
                self.cb["close"]()
            except Exception:  # noqa: BLE001 - closing is best effort; the reply still says closed
                traceback.print_exc(file=sys.stderr)
        self.send({"type": "closed", "id": rid})
        return False


def serve(
    step: Callable[[Dict[str, Any]], Any],
    checkpoint: Optional[Callable[[str], None]] = None,
    restore: Optional[Callable[[str], None]] = None,
    evaluate: Optional[Callable[[], Mapping[str, Any]]] = None,
    hello: Optional[Callable[[Dict[str, Any], Dict[str, Any]], Optional[Mapping[str, Any]]]] = None,
    name: str = "python-trainer",
    version: str = "0",
    stateless: bool = False,
    close: Optional[Callable[[], None]] = None,
    reproducible: Any = None,
    stdin: Optional[Any] = None,
    stdout: Optional[Any] = None,
) -> int:
    """Serves interleave's step protocol (docs/step-protocol.md, version 1) until ``close`` or
    end of input; returns 0 after ``close`` and 1 when the input ended without it.

    Callbacks:
      ``hello(spec, options)`` -> dict or None: set up the model; ``device`` and ``framework`` keys
      go to the ready reply, ``environment`` (a dict) is merged over :func:`environment`'s, any
      other keys go to its ``info`` (as strings).
      ``step(plan)`` -> a dict of losses with ``"total"`` (samples = the spec's batch size), or
      ``{"losses": ..., "samples": n, "memory": {...}}``, a :class:`StepResult`, or a tuple
      ``(losses, samples)``. Losses may be floats or 0-d tensors. The SDK times the call itself
      (perf_counter, after torch.cuda.synchronize() when CUDA is in use), samples memory, checks
      every loss is finite (non-finite -> failure ``nan-loss``) and maps exceptions
      (:func:`classify_exception`; traceback to stderr).
      ``checkpoint(path)`` / ``restore(path)`` / ``evaluate()`` -> ``{"metric", "values":
      {"visual", "text"}, "chance"?}`` / ``close()``: optional.

    ``reproducible`` (optional; the hello callback may return a ``"reproducible"`` key instead,
    once it knows the device): how exactly a re-execution of the run reproduces it, for
    ``interleave replay``: ``"exact"`` (bit-identical losses, e.g. CPU torch with a fixed thread
    count) or ``{"relTolerance": x, "durationRelTolerance": y}`` (y optional). Unset, the engine
    assumes 1e-6 relative on CPU and 1e-2 on a CUDA device.

    While serving, ``sys.stdout`` and file descriptor 1 write to stderr; protocol replies go to a
    duplicate of the original stdout (or to ``stdout`` when given, a binary stream, for tests).
    """
    callbacks = {"step": step, "checkpoint": checkpoint, "restore": restore, "evaluate": evaluate,
                 "hello": hello, "close": close}
    saved_stdout = sys.stdout
    saved_fd = None
    if stdout is None:
        sys.stdout.flush()
        saved_fd = os.dup(1)
        out = os.fdopen(os.dup(saved_fd), "wb", buffering=0)
        os.dup2(2, 1)  # C-level writes to fd 1 land on stderr too
    else:
        out = stdout
    sys.stdout = sys.stderr
    inp = stdin if stdin is not None else sys.stdin.buffer
    server = _Server(out, callbacks, name, version, stateless, _check_reproducible(reproducible))
    rc = 1
    try:
        while True:
            line = inp.readline()
            if not line:
                _log("input ended without close")
                break
            if isinstance(line, str):
                line = line.encode("utf-8")
            if not server.handle(line):
                rc = 0
                break
    except BrokenPipeError:
        _log("the engine closed the protocol pipe")
    finally:
        sys.stdout = saved_stdout
        if saved_fd is not None:
            try:
                out.close()
            except OSError:
                pass
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
    return rc


# ---- recording mode: Recorder ---------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _run_stamp() -> str:
    t = time.gmtime()
    return time.strftime("%Y%m%d-%H%M%S", t) + f"-{random.randrange(0x10000):04x}"


def _finite(name: str, x: Any) -> float:
    v = _as_float(x)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


class Recorder:
    """Writes interleave's JSONL event log from a training loop the trainer owns.

    ``Recorder(path, spec)`` creates (or overwrites) ``path`` and writes ``RunStarted`` at once; then call :meth:`step` after every
    training iteration, :meth:`evaluation` after an evaluation, and :meth:`close` at the end (or
    use it as a context manager: an exception in the block writes ``RunAborted`` with its text).
    Each line is flushed as it is written, so a killed trainer leaves a valid prefix.

    Arguments: ``spec`` the scenario (a dict, or a path to its JSON file); ``run_id`` (default
    NAME-YYYYMMDD-HHMMSS-XXXX); ``seed`` (default the spec's, else 0); ``trainer_name`` /
    ``trainer_version`` / ``framework`` / ``device`` and ``info`` (strings) describe the trainer in
    ``adapter.info``; ``steps`` the planned length (default the spec's total); ``normalize``
    fills interleave's decoding defaults into the recorded spec so that ``specHash`` equals the
    hash interleave gives the same scenario (True by default).
    """

    def __init__(
        self,
        path: str,
        spec: Any,
        run_id: Optional[str] = None,
        seed: Optional[int] = None,
        trainer_name: str = "python-trainer",
        trainer_version: Optional[str] = None,
        framework: Optional[str] = None,
        device: Optional[str] = None,
        info: Optional[Mapping[str, Any]] = None,
        steps: Optional[int] = None,
        versions: Optional[Mapping[str, str]] = None,
        normalize: bool = True,
    ):
        if isinstance(spec, (str, os.PathLike)):
            with open(spec, encoding="utf-8") as f:
                spec = json.load(f)
        self.spec: Dict[str, Any] = normalize_spec(spec) if normalize else json.loads(json.dumps(spec))
        if not normalize:
            normalize_spec(self.spec)  # validates the structure, the recorded spec stays as given
        self.total = total_steps(self.spec)
        self.groups = group_names(self.spec)
        if seed is None:
            seed = self.spec.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = seed
        planned = self.total if steps is None else min(self.total, int(steps))
        if planned < 1:
            raise ValueError(f"steps must be >= 1, got {steps!r}")
        self.run_id = run_id or f"{self.spec.get('name', 'run')}-{_run_stamp()}"
        self.path = str(path)
        self._file = open(self.path, "w", encoding="utf-8", newline="\n")
        self._position = 0
        self._steps_written = 0
        self._last_step = -1
        self._phase: Optional[str] = None
        self._micro_key: Optional[Tuple[str, str]] = None
        self._micro = 0
        self._closed = False
        torch = _torch()
        adapter_info: Dict[str, str] = {"trainer": trainer_name}
        if trainer_version is not None:
            adapter_info["trainerVersion"] = str(trainer_version)
        adapter_info["framework"] = str(framework or (f"torch {torch.__version__}" if torch else f"python {platform.python_version()}"))
        adapter_info["device"] = str(device or "unknown")
        adapter_info["durationMs"] = "trainer-given, or the Recorder's wall time between consecutive step() calls"
        for k, v in (info or {}).items():
            adapter_info[str(k)] = str(v)
        vers: Dict[str, str] = {"python": platform.python_version(), "interleave-sdk": SDK_VERSION}
        if torch is not None:
            vers["torch"] = str(torch.__version__)
        for k, v in (versions or {}).items():
            vers[str(k)] = str(v)
        self._write(
            "RunStarted",
            {
                "runId": self.run_id,
                "spec": self.spec,
                "specHash": hash_json(self.spec),
                "source": f"recorder: {trainer_name}",
                "steps": planned,
                "seed": seed,
                "adapter": {"kind": "recorder", "options": {}, "info": adapter_info},
                "versions": vers,
                "startedAt": _now_ms(),
                "engine": {"evalEvery": 0, "checkpointEvery": 0},
            },
        )
        self._clock = time.perf_counter()

    # -- writing --
    def _write(self, kind: str, data: Dict[str, Any]) -> None:
        if self._closed:
            raise RuntimeError(f"the Recorder of {self.path} is closed")
        payload = dict(data)
        payload["_tag"] = kind
        env = {"type": kind, "version": EVENT_VERSIONS[kind], "position": self._position,
               "recordedAt": _now_ms(), "data": payload}
        self._file.write(json.dumps(env, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n")
        self._file.flush()
        self._position += 1

    def step(
        self,
        iter: int,  # noqa: A002 - mmengine's word
        modality: str,
        lr: Mapping[str, Any],
        losses: Mapping[str, Any],
        duration_ms: Optional[float] = None,
        samples: Optional[int] = None,
        update: bool = True,
        memory: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Records one training iteration (global 0-based index ``iter``) as the trainer ran it.

        ``modality`` ("visual" / "text"), ``lr`` (the lr of EVERY parameter group of the spec,
        by group name), ``update`` (whether this iteration applied an optimizer update), ``losses``
        (with "total") and ``memory`` (StepCompleted v2 keys, e.g. from :func:`sample_memory`) are
        the trainer's: they are what ``interleave verify`` checks against the schedule, so they are
        never taken from the spec. ``samples`` defaults to the spec's batch size of the modality.
        ``duration_ms``: when None, the wall time since the previous step() call (for the first
        step, since the Recorder was created), which then includes whatever the loop does between
        iterations (logging, data loading).

        The Recorder adds phase, phaseStep, cycle and position (from the spec) and micro (micro-
        steps since the last recorded update in the same phase and modality). A non-finite loss is
        written as a ``StepFailed`` (kind nan-loss) instead. Returns the payload written.
        """
        now = time.perf_counter()
        if duration_ms is None:
            duration_ms = (now - self._clock) * 1000.0
        self._clock = now
        if not isinstance(iter, int) or isinstance(iter, bool):
            raise ValueError(f"iter must be an integer, got {iter!r}")
        if iter <= self._last_step:
            raise ValueError(f"step {iter} recorded after step {self._last_step}: steps must be strictly increasing")
        if modality not in ("visual", "text"):
            raise ValueError(f'modality must be "visual" or "text", got {modality!r}')
        co = coordinates(self.spec, iter)
        missing = [g for g in self.groups if g not in lr]
        if missing:
            raise ValueError(f"lr is missing parameter group(s) {', '.join(missing)} (the spec has {', '.join(self.groups)})")
        lrs = {str(g): _finite(f"lr[{g}]", v) for g, v in lr.items()}
        vals = {str(k): _as_float(v) for k, v in losses.items()}
        if "total" not in vals:
            raise ValueError('losses need a "total"')
        mem: Dict[str, float] = {}
        for k, v in (memory or {}).items():
            if k not in MEMORY_KEYS:
                raise ValueError(f"memory key {k!r} is not one of {', '.join(MEMORY_KEYS)}")
            if v is not None:
                f = _finite(f"memory.{k}", v)
                mem[k] = int(f) if f.is_integer() and abs(f) < 2**53 else f
        duration = _finite("duration_ms", duration_ms)
        if samples is None:
            samples = int(self.spec["batch"][modality]["size"])
        if co["phase"] != self._phase:
            self._write("PhaseStarted", {"phase": co["phase"], "index": co["phaseIndex"], "step": iter})
            self._phase = co["phase"]
        key = (co["phase"], modality)
        if key != self._micro_key:
            self._micro = 0
            self._micro_key = key
        micro = self._micro
        self._last_step = iter
        bad = {k: v for k, v in vals.items() if not math.isfinite(v)}
        if bad:
            shown = ", ".join(f"{k}={v}" for k, v in bad.items())
            data = {"step": iter, "phase": co["phase"], "modality": modality, "kind": "nan-loss",
                    "message": f"non-finite loss at step {iter} ({modality}): {shown}"}
            self._write("StepFailed", data)
            self._micro = 0 if update else self._micro + 1
            return data
        data = {
            "step": iter,
            "phase": co["phase"],
            "phaseStep": co["phaseStep"],
            "modality": modality,
            "cycle": co["cycle"],
            "position": co["position"],
            "micro": micro,
            "update": bool(update),
            "lr": lrs,
            "losses": vals,
            "durationMs": duration,
            "samples": int(samples),
            "memory": mem,
        }
        self._write("StepCompleted", data)
        self._steps_written += 1
        self._micro = 0 if update else self._micro + 1
        return data

    def evaluation(self, step: int, metric: str, values: Mapping[str, Any], chance: Optional[float] = None) -> None:
        """Records an evaluation after step ``step`` (the last step trained): EvalCompleted."""
        data: Dict[str, Any] = {
            "step": int(step),
            "metric": str(metric),
            "values": {m: _finite(f"values.{m}", values[m]) for m in ("visual", "text")},
        }
        if chance is not None:
            data["chance"] = _finite("chance", chance)
        self._write("EvalCompleted", data)

    def checkpointed(self, step: int, file: str) -> None:
        """Records that a checkpoint holding the effect of steps up to ``step`` was written."""
        self._write("Checkpointed", {"step": int(step), "file": str(file)})

    def close(self, status: str = "completed", reason: Optional[str] = None, step: Optional[int] = None) -> None:
        """Ends the log: RunCompleted (status "completed") or RunAborted (status "aborted", with
        ``reason`` and optionally the failing ``step``). A second close does nothing."""
        if self._closed:
            return
        if status == "completed":
            self._write("RunCompleted", {"steps": self._steps_written, "completedAt": _now_ms()})
        elif status == "aborted":
            data: Dict[str, Any] = {"reason": _one_line(reason or "aborted"), "abortedAt": _now_ms()}
            if step is not None:
                data["step"] = int(step)
            self._write("RunAborted", data)
        else:
            raise ValueError(f'status must be "completed" or "aborted", got {status!r}')
        self._closed = True
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def steps_written(self) -> int:
        return self._steps_written

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.close("completed")
        elif not self._closed:
            self.close("aborted", f"{exc_type.__name__}: {exc}")
        return False


# ---- parameter groups and reading logs back -------------------------------------------------------
# (Recording mode's helpers: which optimizer param group is which spec group; a log as rows.)

__all__ += ["group_lrs", "param_group_names", "read_log"]


def _norm_name(s: str) -> str:
    return str(s).replace("-", "_")


def _spec_group_names(spec: Any) -> List[str]:
    if hasattr(spec, "spec") and isinstance(getattr(spec, "spec"), Mapping):  # a Recorder
        spec = spec.spec
    if isinstance(spec, Mapping):
        return group_names(spec)
    return [str(n) for n in spec]


def _param_groups(optimizer: Any) -> List[Mapping[str, Any]]:
    groups = getattr(optimizer, "param_groups", optimizer)
    return list(groups)


def _by_parameter_names(
    groups: List[Mapping[str, Any]], names: List[str], model: Any, prefixes: Optional[Mapping[str, Any]]
) -> List[Optional[str]]:
    """Spec group of each param group, from the names of the parameters it holds (``id(p)``
    against ``model.named_parameters()``); see :func:`param_group_names`."""
    table: Dict[str, List[str]] = {}
    for n in names:
        if prefixes is None:
            table[n] = [_norm_name(n)]
        else:
            given = prefixes.get(n, [])
            table[n] = [_norm_name(p) for p in ([given] if isinstance(given, str) else list(given))]
    unknown = [k for k in (prefixes or {}) if k not in names]
    if unknown:
        raise ValueError(f"group_prefixes names group(s) {', '.join(unknown)} that the spec does not have ({', '.join(names)})")
    pname: Dict[int, str] = {id(p): str(k) for k, p in model.named_parameters()}
    owner: Dict[str, Optional[str]] = {}
    used = set()
    for key in pname.values():
        nk = _norm_name(key)
        best, best_len = None, -1
        for n, pres in table.items():
            for pre in pres:
                if (nk == pre or nk.startswith(pre + ".")) and len(pre) > best_len:
                    best, best_len = n, len(pre)
        owner[key] = best
        if best is not None:
            used.add(best)
    rest_candidates = [n for n in names if not table[n] or (prefixes is None and n not in used)]
    leftovers = [k for k, o in owner.items() if o is None]
    if leftovers:
        if len(rest_candidates) != 1:
            why = ("no spec group is left to take them" if not rest_candidates else
                   f"{len(rest_candidates)} spec groups ({', '.join(rest_candidates)}) could take them")
            raise ValueError(
                f"{len(leftovers)} parameter(s) ({', '.join(leftovers[:5])}{', ...' if len(leftovers) > 5 else ''}) "
                f"match no spec group's prefix and {why}: give each spec group its parameter-name prefixes "
                "(group_lrs(prefixes={spec group: [prefix, ...]}), the mmengine hook's group_prefixes)"
            )
        for k in leftovers:
            owner[k] = rest_candidates[0]
    out: List[Optional[str]] = []
    for i, g in enumerate(groups):
        found = set()
        for p in g.get("params", []):
            key = pname.get(id(p))
            if key is None:
                raise ValueError(f"param group {i} holds a parameter that is not among model.named_parameters()")
            found.add(owner[key])
        if len(found) > 1:
            raise ValueError(f"param group {i} mixes parameters of spec groups {', '.join(sorted(map(str, found)))}")
        out.append(found.pop() if found else None)
    return out


def param_group_names(
    optimizer: Any, spec: Any, model: Any = None, prefixes: Optional[Mapping[str, Any]] = None
) -> List[Optional[str]]:
    """The spec group each of ``optimizer.param_groups`` belongs to (None for an empty group).

    ``spec``: the scenario dict, a Recorder, or the list of group names. In this order:
      * ``prefixes`` given (``{"backbone": ["backbone"], "language-model": ["language_model", "bert"],
        ...}``, needs ``model``): each parameter goes to the spec group with the longest matching
        prefix of its name in ``model.named_parameters()`` (a prefix matches the whole name or up
        to a "."; "-" and "_" count as the same); the one spec group given no prefix takes the rest;
      * every param group has a ``"name"`` key: that name;
      * ``model`` given: the same prefix matching with each spec group's own name as its prefix
        (``language-model`` matches ``language_model.*``); the one spec group whose name matches no
        parameter takes the rest (mmengine's ``paramwise_cfg`` builds one unnamed group per
        parameter: this is how those groups are told apart);
      * as many param groups as spec groups: by index, in the spec's order.
    Anything else raises ValueError saying what to pass.
    """
    groups = _param_groups(optimizer)
    names = _spec_group_names(spec)
    if prefixes is not None:
        if model is None:
            raise ValueError("prefixes need the model (its named_parameters) to match parameters by name")
        return _by_parameter_names(groups, names, model, prefixes)
    if groups and all("name" in g for g in groups):
        return [str(g["name"]) for g in groups]
    problem = ""
    if model is not None and hasattr(model, "named_parameters"):
        try:
            return _by_parameter_names(groups, names, model, None)
        except ValueError as e:
            problem = f"; by parameter names: {e}"
    if len(groups) == len(names):
        return list(names)
    raise ValueError(
        f"the optimizer has {len(groups)} param groups without a 'name' key and the spec has {len(names)} "
        f"({', '.join(names)}){problem}: name the groups, pass the model (to match parameter names to "
        "spec group names) or prefixes={spec group: [parameter-name prefixes]} (the mmengine hook's "
        "group_prefixes), or group_lr=callable(param_groups) -> {group: lr} to the hook"
    )


def group_lrs(
    optimizer: Any,
    spec: Any,
    model: Any = None,
    prefixes: Optional[Mapping[str, Any]] = None,
    assignment: Optional[List[Optional[str]]] = None,
) -> Dict[str, float]:
    """The lr of every spec group, read from ``optimizer.param_groups`` (a torch optimizer, or the
    list itself), for :meth:`Recorder.step`'s ``lr``. Which param group is which spec group:
    :func:`param_group_names` (or a precomputed ``assignment``, its result). Param groups of one
    spec group must agree on the lr (relative 1e-9; decay / no-decay splits do); otherwise the spec
    cannot describe the optimizer and this raises ValueError. Read it while the iteration's lr is in
    force: before ``scheduler.step()``."""
    groups = _param_groups(optimizer)
    names = assignment if assignment is not None else param_group_names(groups, spec, model, prefixes)
    if len(names) != len(groups):
        raise ValueError(f"the assignment names {len(names)} param groups, the optimizer has {len(groups)}")
    out: Dict[str, float] = {}
    for i, (n, g) in enumerate(zip(names, groups)):
        if n is None:
            continue
        lr = float(g["lr"])
        if n in out:
            if abs(out[n] - lr) > 1e-9 * max(abs(out[n]), abs(lr)):
                raise ValueError(
                    f"param groups of spec group {n!r} have different lrs ({out[n]!r} and, at group {i}, {lr!r}): "
                    "the spec gives a group one lr"
                )
            continue
        out[n] = lr
    spec_names = _spec_group_names(spec)
    missing = [n for n in spec_names if n not in out]
    if missing:
        raise ValueError(f"no param group belongs to spec group(s) {', '.join(missing)} (of {', '.join(spec_names)})")
    ordered = {n: out[n] for n in spec_names if n in out}
    ordered.update({n: v for n, v in out.items() if n not in ordered})
    return ordered


def _flatten(row: Dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            row[f"{key}.{k}"] = v


def read_log(path: str) -> Dict[str, Any]:
    """An interleave JSONL log (``interleave export RUN --format jsonl``, or a Recorder's) as rows:

    ``{"run": {runId, source, specHash, steps, seed, adapter, spec, ending, reason},
       "steps": [{step, phase, phaseStep, modality, cycle, position, micro, update, durationMs,
                  samples, "losses.total", "losses.<name>"..., "lr.<group>"..., "memory.<key>"...}],
       "failures": [{step, phase, modality, kind, message}],
       "evals": [{step, metric, "values.visual", "values.text", chance}]}``

    Flat dicts of plain numbers and strings, so ``pandas.DataFrame(read_log(p)["steps"])`` is a
    table with one column per figure. ``ending`` is "completed", "aborted" (with ``reason``) or
    "incomplete". StepCompleted v1 memory keys are renamed as interleave does (logicalBytes ->
    allocatedBytes, deviceAllocatedBytes -> reservedBytes); other event types are skipped.
    """
    run: Dict[str, Any] = {"ending": "incomplete"}
    steps: List[Dict[str, Any]] = []
    failures: List[Dict[str, Any]] = []
    evals: List[Dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                env = json.loads(line)
                kind, data = env["type"], env["data"]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{number}: not an interleave event line ({e})") from None
            if kind == "RunStarted" and "runId" not in run:
                for k in ("runId", "source", "specHash", "steps", "seed", "adapter", "spec"):
                    if k in data:
                        run[k] = data[k]
            elif kind == "StepCompleted":
                row = {k: data.get(k) for k in ("step", "phase", "phaseStep", "modality", "cycle", "position",
                                                "micro", "update", "durationMs", "samples")}
                memory = dict(data.get("memory") or {})
                if int(env.get("version", 2)) < 2:
                    if "logicalBytes" in memory:
                        memory["allocatedBytes"] = memory.pop("logicalBytes")
                    if "deviceAllocatedBytes" in memory:
                        memory["reservedBytes"] = memory.pop("deviceAllocatedBytes")
                _flatten(row, "losses", data.get("losses"))
                _flatten(row, "lr", data.get("lr"))
                _flatten(row, "memory", memory)
                steps.append(row)
            elif kind == "StepFailed":
                failures.append({k: data.get(k) for k in ("step", "phase", "modality", "kind", "message")})
            elif kind == "EvalCompleted":
                row = {"step": data.get("step"), "metric": data.get("metric")}
                _flatten(row, "values", data.get("values"))
                if "chance" in data:
                    row["chance"] = data["chance"]
                evals.append(row)
            elif kind == "RunCompleted":
                run["ending"] = "completed"
            elif kind == "RunAborted":
                run["ending"] = "aborted"
                run["reason"] = data.get("reason")
    return {"run": run, "steps": steps, "failures": failures, "evals": evals}
