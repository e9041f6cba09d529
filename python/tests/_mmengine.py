"""Where real mmengine 0.10.7 is, for the tests that run a real Runner (in child processes, so the
suite's own process never imports it).

In order: INTERLEAVE_MMENGINE_PATH (what ``../shared/vendor/mmengine.sh`` prints; .ci/run sets it),
mmengine already importable (PYTHONPATH), or the folder that script unpacks into
(INTERLEAVE_VENDOR_CACHE, else ~/.cache/interleave-vendor) when it has run before. Without mmengine the
tests skip with a loud message; INTERLEAVE_REQUIRE_MMENGINE=1 (CI) makes that a failure.
"""

import os
import subprocess
import sys

from _util import PYDIR

REQUIRE = os.environ.get("INTERLEAVE_REQUIRE_MMENGINE") == "1"
HOW = ('export INTERLEAVE_MMENGINE_PATH="$(../shared/vendor/mmengine.sh)" from the repository root '
       "(the vendored mmengine, see shared/vendor/README.md)")


def _candidates():
    env = os.environ.get("INTERLEAVE_MMENGINE_PATH")
    if env:
        yield env
        return
    yield ""
    cache = os.environ.get("INTERLEAVE_VENDOR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "interleave-vendor")
    if os.path.isfile(os.path.join(cache, "mmengine-0.10.7", "mmengine", "__init__.py")):
        yield os.pathsep.join([os.path.join(cache, "mmengine-0.10.7"), os.path.join(cache, "stubs")])


def child_env(path):
    """Environment for a child that imports mmengine (from ``path``) and the SDK. The SDK comes from
    python/ unless INTERLEAVE_SDK_INSTALLED=1 (then the installed package is the one tested)."""
    env = dict(os.environ)
    parts = [p for p in (path, env.get("PYTHONPATH", "")) if p]
    if os.environ.get("INTERLEAVE_SDK_INSTALLED") != "1":
        parts.insert(0, PYDIR)
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _find():
    tried = []
    for path in _candidates():
        r = subprocess.run(
            [sys.executable, "-c", "import mmengine; from mmengine.runner import Runner; print(mmengine.__version__)"],
            env=child_env(path), capture_output=True, text=True, timeout=300,
        )
        if r.returncode == 0:
            return path, r.stdout.strip(), None
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        tried.append(f"{path or 'PYTHONPATH'}: {last}")
    return None, None, "; ".join(tried)


MMENGINE_PATH, MMENGINE_VERSION, MMENGINE_MISSING = _find()
MMENGINE_SKIP = ""
if MMENGINE_MISSING is not None:
    MMENGINE_SKIP = (f"!!! mmengine is not importable by {sys.executable} ({MMENGINE_MISSING}); the real-mmengine "
                     f"tests are SKIPPED. To run them: {HOW}. !!!")
    if not REQUIRE:
        sys.stderr.write(f"\n{MMENGINE_SKIP}\n\n")
