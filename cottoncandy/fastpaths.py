"""The fast paths' fence: one switch, lazy look-ups of private names, one warning per fallback kind.

Two places go past their library's public API to save CPU on every request: the signed-request
client (``storage/s3_signed.py``: botocore's signer, credentials and connection settings, taken
from the client's private attributes) and the ``Fuse`` subclass of ``ccfs/libfuse.py`` (mfusepy's
callback internals: readdirplus, zero-copy reads, kept thread states, ``fuse_interrupted``).
Nothing in a library's release notes promises those names, so none is imported at module level:
each is looked up at first use through ``private``. When one is missing, the caller takes the
public path (plain boto3 calls; mfusepy's stock ``FUSE``), and ``fell_back`` logs one warning per
kind per process and counts every fallback (``fallbacks()``, for tests and diagnostics).

The switch: ``CCFS_FAST_PATHS=0`` in the environment (or ``ccfs mount --no-fast-paths``, or
``Settings(fast_paths=False)`` for one interface's stores) turns the fast paths off: the public
path is then taken deliberately, without a warning.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import types
from collections import Counter
from typing import Any

log = logging.getLogger(__name__)

#: the environment variable that turns the fast paths off (``0``, ``false``, ``no``, ``off``)
ENV = "CCFS_FAST_PATHS"
_OFF = frozenset({"0", "false", "no", "off"})

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_warned: set[str] = set()
_disabled = False  # set by ``disable()`` (``ccfs mount --no-fast-paths``) for the whole process


class Unavailable(LookupError):
    """A private name a fast path needs is missing (renamed or removed by a library release)."""


def enabled() -> bool:
    """Whether the fast paths may be taken in this process (the environment is read at each call)."""
    return not _disabled and os.environ.get(ENV, "1").strip().lower() not in _OFF


def disable() -> None:
    """Turn the fast paths off for the rest of this process (and the processes it forks)."""
    global _disabled
    _disabled = True


def private(owner: object, *names: str) -> Any:
    """``owner.<names[0]>.<names[1]>...``; ``owner`` may be a module's dotted name, imported here.

    Raises ``Unavailable`` naming what is missing, never ``ImportError``/``AttributeError``: the
    caller decides which public path replaces the fast one.
    """
    if isinstance(owner, str):
        where = owner
    elif isinstance(owner, (type, types.ModuleType)):
        where = owner.__name__
    else:
        where = type(owner).__name__
    try:
        value = importlib.import_module(owner) if isinstance(owner, str) else owner
    except ImportError as exc:
        raise Unavailable(f"no module {where} ({exc})") from exc
    for name in names:
        try:
            value = getattr(value, name)
        except AttributeError:
            raise Unavailable(f"{where} has no attribute {name!r}") from None
        where += f".{name}"
    return value


def fell_back(kind: str, reason: str, public_path: str) -> None:
    """Count one fallback of ``kind``; log a warning the first time ``kind`` falls back in this process."""
    with _lock:
        _counts[kind] += 1
        first = kind not in _warned
        _warned.add(kind)
    if first:
        log.warning("fast path %s unavailable (%s); using %s instead (set %s=0 to silence this)",
                    kind, reason, public_path, ENV)


def fallbacks() -> dict[str, int]:
    """How many times each kind of fast path fell back to the public path in this process."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Forget the counts and warnings (tests), and undo ``disable``."""
    global _disabled
    with _lock:
        _counts.clear()
        _warned.clear()
        _disabled = False
