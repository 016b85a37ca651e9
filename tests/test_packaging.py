"""Installing the project: setuptools builds it without a warning, and the wheel ships ``py.typed``.

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
