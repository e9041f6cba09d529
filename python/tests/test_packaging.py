"""python/ as a package: the in-tree PEP 517 backend (python/_build/interleave_build.py) builds a
correct wheel and sdist with the standard library alone, and pip installs it offline into a fresh
venv (--no-index: nothing comes from PyPI), regular and editable.

With INTERLEAVE_SDK_INSTALLED=1 (.ci/run runs the suite from such a venv) the suite imports the
installed modules; test_the_suite_imports_the_installed_sdk checks that it does.
"""

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile

from _util import INSTALLED, PYDIR

MODULES = ["interleave_mmengine.py", "interleave_reference_trainer.py", "interleave_sdk.py"]


def backend(call, *args):
    """Runs a backend hook as a build frontend would: in a child, cwd = the project root."""
    code = (
        "import sys, json; sys.path.insert(0, '_build'); import interleave_build as b; "
        f"print(json.dumps(getattr(b, {call!r})(*json.loads(sys.argv[1]))))"
    )
    r = subprocess.run([sys.executable, "-c", code, json.dumps(list(args))], cwd=args_root(),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"{call} failed:\n{r.stderr}")
    return json.loads(r.stdout)


_ROOT = [PYDIR]


def args_root():
    return _ROOT[0]


def sdk_version():
    with open(os.path.join(PYDIR, "interleave_sdk.py"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("SDK_VERSION = "):
                return line.split('"')[1]
    raise AssertionError("no SDK_VERSION")


class Backend(unittest.TestCase):
    def setUp(self):
        if INSTALLED:
            self.skipTest("the suite runs against the installed package; the build is tested from the source tree")
        self.tmp = tempfile.TemporaryDirectory()
        _ROOT[0] = PYDIR

    def tearDown(self):
        _ROOT[0] = PYDIR
        self.tmp.cleanup()

    def check_wheel(self, path):
        v = sdk_version()
        self.assertEqual(os.path.basename(path), f"interleave_sdk-{v}-py3-none-any.whl")
        di = f"interleave_sdk-{v}.dist-info"
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            self.assertEqual(sorted(n for n in names if not n.startswith(di)), MODULES)
            record = list(csv.reader(io.StringIO(z.read(f"{di}/RECORD").decode())))
            self.assertEqual(sorted(r[0] for r in record), sorted(names))
            for name, digest, size in record:
                if name == f"{di}/RECORD":
                    self.assertEqual((digest, size), ("", ""))
                    continue
                data = z.read(name)
                want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                self.assertEqual((digest, int(size)), (want, len(data)), name)
            meta = z.read(f"{di}/METADATA").decode()
            self.assertIn("Metadata-Version: 2.1\nName: interleave-sdk\n", meta)
            self.assertIn(f"\nVersion: {v}\n", meta)
            wheel = z.read(f"{di}/WHEEL").decode()
            self.assertIn("Root-Is-Purelib: true\nTag: py3-none-any\n", wheel)
            with open(os.path.join(PYDIR, "interleave_sdk.py"), "rb") as f:
                self.assertEqual(z.read("interleave_sdk.py"), f.read())

    def test_wheel(self):
        name = backend("build_wheel", self.tmp.name)
        self.check_wheel(os.path.join(self.tmp.name, name))

    def test_sdist_builds_the_same_wheel(self):
        name = backend("build_sdist", self.tmp.name)
        v = sdk_version()
        self.assertEqual(name, f"interleave_sdk-{v}.tar.gz")
        with tarfile.open(os.path.join(self.tmp.name, name)) as t:
            members = sorted(m.name for m in t.getmembers())
            t.extractall(self.tmp.name)
        base = f"interleave_sdk-{v}"
        self.assertEqual(members, sorted(f"{base}/{n}" for n in MODULES + [
            "PKG-INFO", "README.md", "pyproject.toml", "_build/interleave_build.py"]))
        out = os.path.join(self.tmp.name, "out")
        os.mkdir(out)
        _ROOT[0] = os.path.join(self.tmp.name, base)
        self.check_wheel(os.path.join(out, backend("build_wheel", out)))

    def test_requires_nothing(self):
        for hook in ("get_requires_for_build_wheel", "get_requires_for_build_sdist", "get_requires_for_build_editable"):
            self.assertEqual(backend(hook), [], hook)
        with open(os.path.join(PYDIR, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
        self.assertIn("requires = []", text)
        self.assertIn('backend-path = ["_build"]', text)


class PipInstall(unittest.TestCase):
    """A fresh venv (with the system's site-packages, as CI makes it), pip install --no-index."""

    def setUp(self):
        if INSTALLED:
            self.skipTest("the suite runs against the installed package already")
        self.tmp = tempfile.TemporaryDirectory()
        self.venv = os.path.join(self.tmp.name, "venv")
        r = subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", self.venv],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"python3 -m venv failed (Debian: apt-get install python3-venv):\n{r.stderr}")
        self.py = os.path.join(self.venv, "bin", "python")

    def tearDown(self):
        self.tmp.cleanup()

    def pip(self, *args):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        r = subprocess.run([self.py, "-m", "pip", "install", "--no-index", "--quiet", *args], cwd=self.tmp.name,
                           env=env, capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, f"pip install {' '.join(args)}:\n{r.stdout}\n{r.stderr}")

    def where(self):
        """Where the venv's python, started outside python/, imports both modules from."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        r = subprocess.run([self.py, "-c", "import interleave_sdk as s, interleave_mmengine as m; "
                            "print(s.__file__); print(m.__file__); print(s.read_log.__name__, s.group_lrs.__name__)"],
                           cwd=self.tmp.name, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split()

    def test_install_and_editable_install(self):
        self.pip(PYDIR)
        sdk, hook, *_ = self.where()
        self.assertTrue(sdk.startswith(self.venv) and sdk.endswith("interleave_sdk.py"), sdk)
        self.assertTrue(hook.startswith(self.venv), hook)
        self.pip("-e", PYDIR)
        sdk, hook, *_ = self.where()
        self.assertEqual((sdk, hook), (os.path.join(PYDIR, "interleave_sdk.py"), os.path.join(PYDIR, "interleave_mmengine.py")))


class Installed(unittest.TestCase):
    def test_the_suite_imports_the_installed_sdk(self):
        import interleave_mmengine
        import interleave_sdk

        here = os.path.dirname(os.path.abspath(interleave_sdk.__file__))
        if INSTALLED:
            self.assertNotEqual(here, PYDIR)
            self.assertNotEqual(os.path.dirname(os.path.abspath(interleave_mmengine.__file__)), PYDIR)
        else:
            self.assertEqual(here, PYDIR)


if __name__ == "__main__":
    unittest.main()
