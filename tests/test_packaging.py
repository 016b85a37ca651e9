"""Installing the project: setuptools builds it without a warning, the wheel ships ``py.typed``, and the venv
holds exactly the locked versions of requirements/ (scripts/lock.sh, scripts/venv.sh).

The build runs setuptools' PEP 517 hooks on a copy of the sources (the hooks write ``*.egg-info`` and
``build/`` beside them), with the test environment's setuptools (the test extra asks for >= 77, the
version ``pyproject.toml``'s SPDX license string needs), so no package registry is involved.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOOKS = """
import sys, warnings
warnings.simplefilter("always")
from setuptools import build_meta
print("WHEEL", build_meta.build_wheel(sys.argv[1]))
print("EDITABLE", build_meta.build_editable(sys.argv[1]))
"""


def test_build_has_no_setuptools_warnings_and_ships_py_typed(tmp_path: Path) -> None:
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} is older than the 77 the build requires")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("cottoncandy", "ccfs"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path / "dist"
    out.mkdir()
    result = subprocess.run([sys.executable, "-c", HOOKS, str(out)], cwd=src, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    printed = result.stdout + result.stderr
    noisy = [line for line in printed.splitlines()
             if "Warning" in line or "deprecat" in line.lower() or "careful" in line]
    assert not noisy, noisy
    wheels = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.startswith(("WHEEL",
                                                                                                         "EDITABLE"))}
    with zipfile.ZipFile(out / wheels["WHEEL"]) as wheel:
        names = set(wheel.namelist())
    assert {"cottoncandy/py.typed", "ccfs/py.typed"} <= names
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "docs/"))]


def _locked(path: Path) -> dict[str, str]:
    """``name -> version`` of a lock in requirements/ (names normalized as PEP 503 does)."""
    import re

    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_the_venv_holds_exactly_the_locked_versions() -> None:
    """scripts/venv.sh installs with the lock of this Python (CCFS_LOCK): every locked package that is
    installed has the locked version, and the test tools' whole set is installed (the [test] extra is the
    union of the extras). Run through README's test command, which sets CCFS_LOCK."""
    import os
    import re
    import sysconfig
    from importlib import metadata

    lock = os.environ.get("CCFS_LOCK")
    if lock is None:
        pytest.skip("not run through scripts/test.sh, which installs from the lock and sets CCFS_LOCK")
    assert lock, f"scripts/venv.sh found no lock for Python {sys.version_info[:2]} in requirements/"
    pins = _locked(Path(lock))
    # the venv's own site-packages: not sys.path, where setuptools' vendored copies may sit once a build ran
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    installed = {re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version
                 for dist in metadata.distributions(path=sorted(site))}
    wrong = {name: (want, installed.get(name)) for name, want in pins.items() if installed.get(name) != want}
    assert not wrong, f"installed versions differ from {lock} (locked, installed): {wrong}"


def test_every_supported_python_has_a_lock_of_every_environment() -> None:
    """scripts/lock.sh writes, for each Python pyproject.toml admits, the project's lock (every extra) and the
    side venvs' locks; each pins what pyproject.toml asks for."""
    import re

    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    supported = re.search(r'^SUPPORTED=\((.*)\)$', (root / "scripts" / "lock.sh").read_text(), re.M)
    assert supported is not None
    versions = supported.group(1).split()
    assert versions[0] == project["requires-python"].removeprefix(">=")
    wanted = {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-")
              for spec in project["dependencies"] + [s for extra in project["optional-dependencies"].values()
                                                     for s in extra]}
    for version in versions:
        pins = _locked(root / "requirements" / f"py{version}.txt")
        assert wanted <= set(pins), (version, wanted - set(pins))
        assert "pip" in pins and "setuptools" in pins
        assert "cottoncandy" in _locked(root / "requirements" / f"compat040-py{version}.txt")
