"""Shared helpers of the python suite."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
ROOT = os.path.dirname(PYDIR)
SCENARIOS = os.path.join(ROOT, "scenarios")
# INTERLEAVE_SDK_INSTALLED=1: the suite tests the installed package (pip install ./python), not python/.
INSTALLED = os.environ.get("INTERLEAVE_SDK_INSTALLED") == "1"
if not INSTALLED and PYDIR not in sys.path:
    sys.path.insert(0, PYDIR)

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
    TORCH_SKIP = ""
except Exception as e:  # noqa: BLE001
    HAVE_TORCH = False
    TORCH_SKIP = (
        f"!!! torch is not importable by {sys.executable} ({e}); the reference-trainer tests are SKIPPED. "
        "Run the suite with /usr/bin/python3 (Debian's python3-torch) to include them. !!!"
    )
    sys.stderr.write(f"\n{TORCH_SKIP}\n\n")


def scenario(name):
    with open(os.path.join(SCENARIOS, f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Child:
    """A protocol child process: send a request, read its reply line."""

    def __init__(self, argv, env=None):
        e = dict(os.environ)
        e["PYTHONPATH"] = PYDIR + os.pathsep + e.get("PYTHONPATH", "")
        e.update(env or {})
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)

    def send_raw(self, line: bytes):
        self.p.stdin.write(line)
        self.p.stdin.flush()

    def rpc(self, req):
        self.send_raw((json.dumps(req) + "\n").encode())
        return self.reply()

    def reply(self):
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError(f"the child closed stdout; stderr:\n{self.p.stderr.read().decode()[-3000:]}")
        return json.loads(line)

    def finish(self, timeout=60):
        self.p.stdin.close()
        rest = self.p.stdout.read()
        err = self.p.stderr.read().decode()
        rc = self.p.wait(timeout=timeout)
        self.p.stdout.close()
        self.p.stderr.close()
        return rc, rest, err
