"""A ``LocalS3Server`` in a child process, described by the JSON line it prints (``--json``).

Why a child: moto's signature checking (``--auth``) and its backends are process-wide, so an
authenticating server cannot share a process with the open server every other test uses. The child
prints its endpoints, its CA file and its keys once it is serving; this object reads them, and talks
to the child's control paths (S3-only reset, request log) over loopback HTTP.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import IO, Any

from .s3identities import Identities
from .s3server import LOG_PATH, RESET_S3_PATH


def line_within(stream: IO[str], timeout: float, what: str) -> str:
    """One line from a child's output pipe within ``timeout`` seconds, read from the descriptor
    itself (a buffered ``readline`` after ``select`` could wait without end on half a line, and a
    line already buffered is invisible to ``select``). Bytes after the line stay for the next call.
    ``RuntimeError`` naming ``what`` if no whole line comes in time, or the child ended first."""
    pending = _pending.setdefault(stream.fileno(), bytearray())
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream.fileno(), selectors.EVENT_READ)
        while b"\n" not in pending:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise RuntimeError(f"{what}: no answer in {timeout:.0f} s")
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"{what}: the child process ended")
            pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line.decode() + "\n"


#: bytes read past a line, by descriptor (a child's pipe is read by ``line_within`` only)
_pending: dict[int, bytearray] = {}


def end_child(process: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Wait up to ``grace`` seconds for a child told to end, then kill it; close its output pipe."""
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)
    if process.stdout is not None:
        _pending.pop(process.stdout.fileno(), None)
        process.stdout.close()


class ServerProcess:
    """``python -m cottoncandy.testing.s3server --json ARGS...``, started and stopped by this object."""

    def __init__(self, *args: str):
        self.args = list(args)
        self.auth = "--auth" in args
        self._process: subprocess.Popen[str] | None = None
        self._stderr: Any = None
        self.description: dict[str, Any] = {}

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cottoncandy.testing.s3server", "--json", *self.args],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=os.environ.copy())
        assert self._process.stdout is not None
        try:
            line = line_within(self._process.stdout, timeout, "the local S3 server")
        except RuntimeError as exc:
            self._stderr.seek(0)
            error = self._stderr.read()[-2000:]
            self.stop()
            raise RuntimeError(f"{exc}: {error}") from None
        self.description = json.loads(line)
        return self

    @property
    def endpoint_url(self) -> str:
        return str(self.description["endpoint_url"])

    @property
    def virtual_endpoint_url(self) -> str:
        return str(self.description["virtual_endpoint_url"])

    @property
    def tls_endpoint_url(self) -> str:
        return str(self.description["tls_endpoint_url"])

    @property
    def ca_file(self) -> str:
        return str(self.description["ca_file"])

    @property
    def identities(self) -> Identities:
        return Identities.from_json(self.description["identities"])

    def _post(self, path: str) -> bytes:
        request = urllib.request.Request(self.endpoint_url + path, method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return bytes(answer.read())

    def reset(self) -> None:
        """Forget every bucket and object (the keys stay) and clear the request log."""
        self._post(RESET_S3_PATH if self.auth else "/moto-api/reset")
        self._post(LOG_PATH)

    def clear_log(self) -> None:
        self._post(LOG_PATH)

    def requests(self) -> list[dict[str, Any]]:
        """The request log: method, path, query, status, bytes_sent, range of every answer so far."""
        with urllib.request.urlopen(self.endpoint_url + LOG_PATH, timeout=30) as answer:
            entries: list[dict[str, Any]] = json.loads(answer.read())
        return entries

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            end_child(process)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
