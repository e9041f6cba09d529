"""The PEP 517 build backend of interleave's Python SDK: standard library only.

``pip install ./python`` (or ``pip install "git+URL#subdirectory=python"``) builds the wheel with
this file (pyproject.toml: ``requires = []``, ``backend-path = ["_build"]``), so pip's isolated
build needs nothing from PyPI: no setuptools, no wheel, works offline (``--no-index``).

It builds a pure-Python wheel (py3-none-any) of the top-level modules in MODULES, with
``.dist-info`` METADATA (metadata 2.1), WHEEL and RECORD (sha256 of every file), an sdist (the
modules, README.md, pyproject.toml and this backend, with PKG-INFO) and, for ``pip install -e``,
an editable wheel (PEP 660) whose .pth file puts this folder on sys.path.

Hooks run with the current directory at the project root (the folder holding pyproject.toml).
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

NAME = "interleave-sdk"
DIST = "interleave_sdk"  # the name as it appears in file names (PEP 427 / 625)
SUMMARY = "interleave's Python SDK: the step protocol server, the Recorder and the mmengine hook"
MODULES = ["interleave_sdk.py", "interleave_mmengine.py", "interleave_reference_trainer.py"]
SDIST_EXTRA = ["README.md", "pyproject.toml", "_build/interleave_build.py"]
TAG = "py3-none-any"


def _root():
    return os.getcwd()


def _version():
    with open(os.path.join(_root(), "interleave_sdk.py"), encoding="utf-8") as f:
        m = re.search(r'^SDK_VERSION = "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("interleave_sdk.py has no SDK_VERSION = \"...\" line")
    return m.group(1)


def _readme():
    path = os.path.join(_root(), "README.md")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()


def _metadata():
    head = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {_version()}",
        f"Summary: {SUMMARY}",
        "License: MIT",
        "Requires-Python: >=3.8",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: License :: OSI Approved :: MIT License",
        "Description-Content-Type: text/markdown",
    ]
    return "\n".join(head) + "\n\n" + _readme()


def _wheel_file():
    return f"Wheel-Version: 1.0\nGenerator: interleave_build ({_version()})\nRoot-Is-Purelib: true\nTag: {TAG}\n"


def _dist_info():
    return f"{DIST}-{_version()}.dist-info"


def _date_time():
    """The timestamp of every archive entry: SOURCE_DATE_EPOCH when set (reproducible builds)."""
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01, zip's earliest
    return time.gmtime(max(epoch, 315532800))[:6]


def _record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest}"


class _Wheel:
    def __init__(self, path):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.records = []
        self.when = _date_time()

    def add(self, arcname, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        info = zipfile.ZipInfo(arcname, date_time=self.when)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        self.records.append(f"{arcname},{_record_hash(data)},{len(data)}")

    def close(self, dist_info):
        record = f"{dist_info}/RECORD"
        body = "\n".join(self.records + [f"{record},,"]) + "\n"
        info = zipfile.ZipInfo(record, date_time=self.when)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, body.encode("utf-8"))
        self.zip.close()


def _write_dist_info(wheel):
    di = _dist_info()
    wheel.add(f"{di}/METADATA", _metadata())
    wheel.add(f"{di}/WHEEL", _wheel_file())
    wheel.add(f"{di}/top_level.txt", "".join(m[:-3] + "\n" for m in MODULES))
    return di


def _build(wheel_directory, files):
    name = f"{DIST}-{_version()}-{TAG}.whl"
    wheel = _Wheel(os.path.join(wheel_directory, name))
    try:
        for arcname, data in files:
            wheel.add(arcname, data)
        wheel.close(_write_dist_info(wheel))
    except BaseException:
        wheel.zip.close()
        os.unlink(os.path.join(wheel_directory, name))
        raise
    return name


# ---- PEP 517 ----------------------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    di = _dist_info()
    os.makedirs(os.path.join(metadata_directory, di), exist_ok=True)
    for name, text in (("METADATA", _metadata()), ("WHEEL", _wheel_file())):
        with open(os.path.join(metadata_directory, di, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return di


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = []
    for m in MODULES:
        with open(os.path.join(_root(), m), "rb") as f:
            files.append((m, f.read()))
    return _build(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel whose .pth file puts the source folder on sys.path (edits take effect at once)."""
    return _build(wheel_directory, [(f"__editable__.{DIST}.pth", os.path.abspath(_root()) + "\n")])


def build_sdist(sdist_directory, config_settings=None):
    base = f"{DIST}-{_version()}"
    name = f"{base}.tar.gz"
    mtime = time.mktime(_date_time() + (0, 0, -1)) if "SOURCE_DATE_EPOCH" in os.environ else 315532800

    def add(tar, arcname, data):
        info = tarfile.TarInfo(f"{base}/{arcname}")
        info.size = len(data)
        info.mtime = int(mtime)
        info.mode = 0o644
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(data))

    path = os.path.join(sdist_directory, name)
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel in MODULES + SDIST_EXTRA:
            with open(os.path.join(_root(), rel), "rb") as f:
                add(tar, rel, f.read())
        add(tar, "PKG-INFO", _metadata().encode("utf-8"))
    return name
