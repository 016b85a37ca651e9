"""s3rver (Node.js, npm) on loopback: a second, independent S3 implementation for the store contract.

Every other test talks to moto; an answer moto and our client agree on by accident (both Python,
both reading the same botocore models) would pass unnoticed. s3rver is written from S3's
documentation in JavaScript: where it and moto both take what our store sends, the contract
(``contract.StoreContract``) holds against two readings of S3, not one.

What it is not: a signature check. s3rver verifies SigV2 signatures but, for SigV4 (what botocore
and our fast path send), checks only that the access key is its one account's (``S3RVER``/``S3RVER``,
``ACCESS_KEY``/``SECRET_KEY`` here). Signatures are checked by the local S3 server's authenticating
mode (``s3server``).

Where it comes from: ``scripts/provision.sh`` installs it with npm into ``scripts/s3rver/node_modules``
(versions pinned by ``scripts/s3rver/package-lock.json``); ``CCFS_S3RVER`` names another
``s3rver.js``. ``missing()`` says what is absent (node, the package), so a test can skip with that
reason on a machine without them.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

#: s3rver's one built-in account (any other key is InvalidAccessKeyId)
ACCESS_KEY = SECRET_KEY = "S3RVER"
#: where ``scripts/provision.sh`` installs it, in a source checkout
INSTALLED = Path(__file__).resolve().parents[2] / "scripts" / "s3rver" / "node_modules" / "s3rver" / "bin" / "s3rver.js"
_LISTENING = re.compile(r"S3rver listening on ([^\s:]+):(\d+)")


def script() -> Path:
    """The ``s3rver.js`` to run (``CCFS_S3RVER``, else where provision installs it)."""
    return Path(os.environ.get("CCFS_S3RVER") or INSTALLED)


def missing() -> str | None:
    """Why s3rver cannot run here (what to install), or ``None`` when it can."""
    if shutil.which("node") is None:
        return "node is not installed (install nodejs and npm, then run bash scripts/provision.sh)"
    if not script().is_file():
        return (f"s3rver is not installed at {script()} (run bash scripts/provision.sh, which installs it "
                f"with npm; it needs npm and the package registry once)")
    return None


def _node_flags(node: str) -> list[str]:
    """s3rver makes its continuation tokens with DES, which the OpenSSL 3 of Node 17 and later leaves
    to its legacy provider: without it every truncated LIST page is a 500 InternalError."""
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    major = version.strip().lstrip("v").split(".")[0]
    return ["--openssl-legacy-provider"] if major.isdigit() and int(major) >= 17 else []


class S3rver:
    """``node s3rver.js`` serving a temporary folder on ``host``, on a port it picks."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._folder: str | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> S3rver:
        """Start it and wait for its "listening" line; ``RuntimeError`` with its output if it does not come."""
        reason = missing()
        if reason is not None:
            raise RuntimeError(reason)
        self._folder = tempfile.mkdtemp(prefix="s3rver-")
        node = shutil.which("node") or "node"
        self._process = subprocess.Popen(
            [node, *_node_flags(node), str(script()), "--directory", self._folder, "--address", self.host,
             "--port", "0", "--silent"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        stdout = self._process.stdout
        assert stdout is not None
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:  # every line it prints, all its life: a full pipe would stop it
            for line in stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=read, name="s3rver-output", daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line:  # it ended
                break
            seen.append(line.rstrip())
            found = _LISTENING.search(line)
            if found:
                self.port = int(found.group(2))
                return self
        self.stop()
        raise RuntimeError(f"s3rver did not start within {timeout:.0f} s: {' / '.join(seen)[-2000:]}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> S3rver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
