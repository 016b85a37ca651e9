"""Side virtual environments for tests that need packages the main venv must not hold, built once and cached.

Used for cottoncandy 0.4.0 (its own pins; ``tests/compat``) and for s3fs (it pins aiobotocore, which pins
botocore: kept out of the main venv so boto3 keeps its own pins; ``tests/refs``). Where: the
environment variable named by ``env_var``, else ``~/.cache/ccfs-compat/NAME``. The install takes the
versions of ``requirements/LOCK-py3.X.txt`` for the running Python (scripts/lock.sh writes them) as pip
constraints, as the main venv does, so a fresh machine builds what the suite last passed with. A stamp file
holds the hash of the requirements and lock files (and the Python version), so an environment is rebuilt
only when they change.
Building needs the package registry (CI has it); a failure is an error, never a skip: the tests that
need one are proofs that must not silently vanish.

The suite runs on several pytest-xdist workers, each of which may ask for an environment at once: an
exclusive ``flock`` on a file beside it makes one build it while the others wait, then find it built
(the stamp is checked again under the lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STAMP = ".ccfs-compat-stamp"
LOCKS = Path(__file__).resolve().parent.parent / "requirements"


def quiet_env(home: Path) -> dict[str, str]:
    """An environment whose HOME (and so any options.cfg) is a scratch folder, without AWS_/CCFS_/PYTHON*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CCFS_", "PYTHON"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(Path(home) / "data"), XDG_CONFIG_HOME=str(Path(home) / "config"),
               PYTHONDONTWRITEBYTECODE="1")
    return env


@dataclass(frozen=True)
class SideVenv:
    #: what it holds, for messages ("cottoncandy 0.4.0")
    what: str
    #: pip requirements file; its hash is the stamp
    requirements: Path
    #: folder name under ~/.cache/ccfs-compat, and the variable that overrides the whole path
    name: str
    env_var: str
    #: Python code run in it after the install: the build fails unless it succeeds
    check: str
    #: the lock's name in requirements/ (``{lock}-py3.X.txt``), written by scripts/lock.sh
    lock: str

    def lock_file(self) -> Path | None:
        """This Python's lock, or None where scripts/lock.sh writes none (the newest releases are taken)."""
        path = LOCKS / f"{self.lock}-py{sys.version_info[0]}.{sys.version_info[1]}.txt"
        return path if path.is_file() else None

    def venv_dir(self) -> Path:
        env = os.environ.get(self.env_var)
        return Path(env) if env else Path.home() / ".cache" / "ccfs-compat" / self.name

    def wanted_stamp(self) -> str:
        lock = self.lock_file()
        text = self.requirements.read_bytes() + (lock.read_bytes() if lock else b"")
        text += f"{sys.version_info[:2]}".encode()
        return hashlib.sha256(text).hexdigest()

    def python(self) -> Path:
        return self.venv_dir() / "bin" / "python"

    def is_built(self) -> bool:
        stamp = self.venv_dir() / STAMP
        return stamp.is_file() and stamp.read_text().strip() == self.wanted_stamp() and self.python().exists()

    def ensure(self, log: Callable[[str], object] = print) -> Path:
        """The environment's python, building the environment first if it is missing or stale.

        Safe to call from several processes at once: the build happens under an exclusive lock."""
        venv = self.venv_dir()
        if self.is_built():
            return self.python()
        venv.parent.mkdir(parents=True, exist_ok=True)
        with open(venv.parent / f"{venv.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if self.is_built():  # another worker built it while this one waited
                return self.python()
            return self._build(log)

    def _build(self, log: Callable[[str], object]) -> Path:
        venv = self.venv_dir()
        started = time.monotonic()
        if venv.exists():
            shutil.rmtree(venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        python = str(self.python())
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
            lock = self.lock_file()
            subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "-r", str(self.requirements), *(["-c", str(lock)] if lock else [])],
                           check=True, capture_output=True, text=True)
            # run from inside the venv: from the repo's root (the tests' cwd) ``-c`` would put the
            # checkout first on sys.path and ``import cottoncandy`` would check ours, not 0.4.0
            subprocess.run([python, "-c", self.check], check=True, capture_output=True, text=True,
                           env=quiet_env(venv / "home"), cwd=str(venv))
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(f"could not build the {self.what} environment in {venv} "
                               f"(command {' '.join(map(str, exc.cmd[:4]))}... exited {exc.returncode}):\n"
                               f"{(exc.stderr or '')[-3000:]}") from exc
        (venv / STAMP).write_text(self.wanted_stamp())
        log(f"built the {self.what} environment in {venv} in {time.monotonic() - started:.0f} s")
        return self.python()
