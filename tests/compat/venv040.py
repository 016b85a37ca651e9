"""The side virtual environment holding cottoncandy 0.4.0, built once and cached between runs.

Where: ``$CCFS_COMPAT_VENV``, else ``~/.cache/ccfs-compat/venv040``; how it is built, cached and
shared by pytest-xdist workers: ``tests/sidevenv.py``. A failure to build is an error, never a
skip: the differential tests are the proof of drop-in compatibility and must not silently vanish.
"""

from __future__ import annotations

from pathlib import Path

from tests.sidevenv import SideVenv

REQUIREMENTS = Path(__file__).resolve().parent / "requirements-040.txt"
VENV040 = SideVenv(what="cottoncandy 0.4.0", requirements=REQUIREMENTS, name="venv040", env_var="CCFS_COMPAT_VENV",
                   lock="compat040",
                   check="import cottoncandy, numpy, scipy, dask.array; "
                         "assert 'site-packages' in cottoncandy.__file__, cottoncandy.__file__")


def ensure_venv(log=print) -> Path:  # type: ignore[no-untyped-def]
    """The 0.4.0 environment's python, building the environment first if it is missing or stale."""
    return VENV040.ensure(log)


if __name__ == "__main__":
    print(ensure_venv())
