"""``testing.localnames``: ``*.localhost`` is loopback in the test process and in Python children, and
nothing else changes (other names resolve as before, another ``sitecustomize`` still runs)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cottoncandy.testing.localnames import child_environment, resolve_localhost_names

PROBE = ("import socket; print(socket.getaddrinfo('bucket.localhost', 80, type=socket.SOCK_STREAM)[0][4][0]);"
         "import sys; print(getattr(sys, 'other_sitecustomize_ran', False))")


def test_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)  # put back after the test: nothing leaks
    resolve_localhost_names()
    resolve_localhost_names()  # idempotent: one wrapper
    assert socket.getaddrinfo("a-b.localhost", 80, type=socket.SOCK_STREAM)[0][4][0] == "127.0.0.1"
    assert socket.getaddrinfo(b"x.y.LOCALHOST.", 80, type=socket.SOCK_STREAM)[0][4][0] == "127.0.0.1"
    assert socket.getaddrinfo("127.0.0.2", 80, type=socket.SOCK_STREAM)[0][4][0] == "127.0.0.2"


def test_children_and_another_sitecustomize(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import sys\nsys.other_sitecustomize_ran = True\n")
    env = child_environment({"PATH": "/usr/bin:/bin", "PYTHONPATH": str(other)}, folder=tmp_path / "names")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["127.0.0.1", "True"], out.stderr
