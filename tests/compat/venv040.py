"""The side virtual environment holding cottoncandy 0.4.0, built once and cached between runs.

Where: ``$CCFS_COMPAT_VENV``, else ``~/.cache/ccfs-compat/venv040``. A stamp file holds the hash of
``requirements-040.txt`` (and the Python version), so the environment is rebuilt only when they
change. Building needs the package registry (CI has it); a failure is an error, never a skip: the
differential tests are the proof of drop-in compatibility and must not silently vanish.

The suite runs on several pytest-xdist workers, each of which may ask for the environment at once:
an exclusive ``flock`` on a file beside the environment makes one build it while the others wait,
then find it built (the stamp is checked again under the lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-040.txt"
STAMP = ".ccfs-compat-stamp"


def venv_dir() -> Path:
    env = os.environ.get("CCFS_COMPAT_VENV")
    return Path(env) if env else Path.home() / ".cache" / "ccfs-compat" / "venv040"


def wanted_stamp() -> str:
    text = REQUIREMENTS.read_bytes() + f"{sys.version_info[:2]}".encode()
    return hashlib.sha256(text).hexdigest()


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def is_built(venv: Path) -> bool:
    stamp = venv / STAMP
    return stamp.is_file() and stamp.read_text().strip() == wanted_stamp() and python_of(venv).exists()


def ensure_venv(log=print) -> Path:  # type: ignore[no-untyped-def]
    """The 0.4.0 environment's python, building the environment first if it is missing or stale.

    Safe to call from several processes at once: the build happens under an exclusive lock."""
    venv = venv_dir()
    if is_built(venv):
        return python_of(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if is_built(venv):  # another worker built it while this one waited
            return python_of(venv)
        return _build(venv, log)


def _build(venv: Path, log) -> Path:  # type: ignore[no-untyped-def]
    stamp = venv / STAMP
    started = time.monotonic()
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
        subprocess.run([str(python_of(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(REQUIREMENTS)], check=True, capture_output=True, text=True)
        subprocess.run([str(python_of(venv)), "-c", "import cottoncandy, numpy, scipy, dask.array"],
                       check=True, capture_output=True, text=True, env=quiet_env(venv / "home"))
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(venv, ignore_errors=True)
        raise RuntimeError(f"could not build the cottoncandy 0.4.0 environment in {venv} "
                           f"(command {' '.join(map(str, exc.cmd[:4]))}... exited {exc.returncode}):\n"
                           f"{(exc.stderr or '')[-3000:]}") from exc
    stamp.write_text(wanted_stamp())
    log(f"built the cottoncandy 0.4.0 environment in {venv} in {time.monotonic() - started:.0f} s")
    return python_of(venv)


def quiet_env(home: Path) -> dict[str, str]:
    """An environment whose HOME (and so 0.4.0's options.cfg) is a scratch folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CCFS_", "PYTHON"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(Path(home) / "data"), XDG_CONFIG_HOME=str(Path(home) / "config"),
               PYTHONDONTWRITEBYTECODE="1")
    return env


if __name__ == "__main__":
    print(ensure_venv())
