"""``BUCKET.localhost`` reaches loopback in tests, without touching the machine's name resolution.

Virtual-hosted S3 addressing puts the bucket in the host name (``http://test-bucket.localhost:PORT/key``).
RFC 6761 says every ``*.localhost`` name is loopback, and curl and browsers resolve them so, but glibc
does not unless nss-myhostname is installed (a fresh Debian: ``getent hosts foo.localhost`` finds
nothing). Editing ``/etc/hosts`` would need root and a wildcard it cannot express, so instead:

* ``resolve_localhost_names()`` wraps ``socket.getaddrinfo`` in this process so that a name ending in
  ``.localhost`` is looked up as ``127.0.0.1`` (every other name as before);
* ``child_environment()`` gives a child Python process (a ``ccfs mount`` daemon) the same, through a
  ``sitecustomize.py`` on ``PYTHONPATH`` that loads this file by path (this module imports only the
  standard library, so a child does not import cottoncandy for it) and then runs any other
  ``sitecustomize`` it hides.

Test-only: the library itself never changes how names resolve.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

SUFFIX = ".localhost"
_SITECUSTOMIZE = '''\
"""Written by cottoncandy.testing.localnames: *.localhost resolves to loopback in this process."""
import importlib.machinery, importlib.util, os, sys
_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("_cc_localnames", {module!r})
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
_mod.resolve_localhost_names()
_other = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here])
if _other is not None and _other.loader is not None:
    _other.loader.exec_module(importlib.util.module_from_spec(_other))
'''


def _is_local_name(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return isinstance(host, str) and host.lower().rstrip(".").endswith(SUFFIX)


def resolving_localhost(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (a ``getaddrinfo``) looking up every ``*.localhost`` name as 127.0.0.1 (a test may
    install it for its own duration with ``monkeypatch``)."""
    if getattr(original, "_cc_localnames", False):
        return original

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return original("127.0.0.1" if _is_local_name(host) else host, *args, **kwargs)

    getaddrinfo._cc_localnames = True  # type: ignore[attr-defined]
    return getaddrinfo


def resolve_localhost_names() -> None:
    """Make ``*.localhost`` resolve to 127.0.0.1 in this process (idempotent)."""
    socket.getaddrinfo = resolving_localhost(socket.getaddrinfo)


def child_environment(env: dict[str, str] | None = None, folder: Path | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with ``PYTHONPATH`` led by ``folder`` (default: a new temporary
    one), whose ``sitecustomize.py`` makes ``*.localhost`` resolve to loopback in any Python child started
    with it."""
    env = dict(os.environ if env is None else env)
    folder = folder or Path(tempfile.mkdtemp(prefix="cc-localnames-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(module=os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    return env
