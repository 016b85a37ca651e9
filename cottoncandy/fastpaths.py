"""The fast paths' fence: one switch, lazy look-ups of private names, one warning per fallback kind.

Two places go past their library's public API to save CPU on every request: the signed-request
client (``storage/s3/signed.py``: botocore's signer, credentials and connection settings, taken
from the client's private attributes) and the ``Fuse`` subclass of ``ccfs/libfuse.py`` (mfusepy's
callback internals: readdirplus, zero-copy reads, kept thread states, ``fuse_interrupted``).
Nothing in a library's release notes promises those names, so none is imported at module level:
each is looked up at first use through ``private``. When one is missing, the caller takes the
public path (plain boto3 calls; mfusepy's stock ``FUSE``), and ``fell_back`` logs one warning per
kind per process and counts every fallback (``fallbacks()``, for tests and diagnostics).

Refusals: a fast request the server did not answer as asked (a 403, a 301, a TLS failure, an answer
that is not the asked bytes) is asked again through boto3, costing a second request. ``refused``
counts each by cause (``refusals()``, shown by ``ccfs info --mount`` and the benchmarks), and after
a run of them -- ``RUN`` in a row, or ``RUN`` or more within ``WINDOW`` seconds that are at least two
thirds of the fast requests there -- logs ONE warning per cause per process, with what to change; ``answered``
(a fast request that was taken) ends a run. Answers boto3 would give alike (404, 412) are neither.

The switch: ``CCFS_FAST_PATHS=0`` in the environment (or ``ccfs mount --no-fast-paths``, or
``Settings(fast_paths=False)`` for one interface's stores) turns the fast paths off: the public
path is then taken deliberately, without a warning.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import types
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: the environment variable that turns the fast paths off (``0``, ``false``, ``no``, ``off``)
ENV = "CCFS_FAST_PATHS"
_OFF = frozenset({"0", "false", "no", "off"})

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_warned: set[str] = set()
_disabled = False  # set by ``disable()`` (``ccfs mount --no-fast-paths``) for the whole process

#: a warning after this many refusals in a row, or this many within ``WINDOW`` s that are two thirds of the requests
RUN = 20
WINDOW = 60.0
#: distinct causes counted, ``OTHER`` included: more (a hostile endpoint's inventions) count as ``OTHER``
MAX_CAUSES = 32
OTHER = "other causes"
_refused: Counter[str] = Counter()  # every refusal, by cause
_run: Counter[str] = Counter()  # refusals since the last answered fast request, by cause
_run_advice: dict[str, Callable[[], str]] = {}  # the latest advice of each cause of the run
_recent: deque[tuple[float, int]] = deque(maxlen=10_000)  # (when, _answered then) of recent refusals
_answered = 0  # fast requests taken (approximate under threads: it is only compared with refusals)
_refusal_warned: set[str] = set()  # causes a warning was about: never again in this process
_run_warned = False  # the current run had its warning


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
    caller decides which public path replaces the fast one. The switch (``enabled``) turns off the
    fast *paths*, the speed-ups; two safety hooks on boto3's path also use private names, through this
    fence, and stay on with it: the LIST body cap (``storage/s3/list_bodies.py``) and the order of botocore's
    200-error handler (``storage/s3.check_list_answers``), which keep a hostile LIST answer bounded.
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


def answered() -> None:
    """A fast request got the answer it asked for: a run of refusals ends (cheap: called per request)."""
    global _answered, _run_warned
    _answered += 1
    if _run:
        with _lock:
            _run.clear()
            _run_advice.clear()
            _run_warned = False


def refused(cause: str, advice: Callable[[], str]) -> None:
    """Count one fast request refused for ``cause`` (asked again on the public path). A run of
    refusals (see the module's text) logs one warning, about the run's commonest cause, unless that
    cause was warned about before in this process: ``advice()`` (called then only) says what happened
    and what to change."""
    global _run_warned
    now = time.monotonic()
    cause = "".join(c if c.isprintable() else "?" for c in cause[:120])
    with _lock:
        if cause not in _refused and len(_refused) >= MAX_CAUSES - 1:
            cause = OTHER
        _refused[cause] += 1
        _run[cause] += 1
        _run_advice[cause] = advice
        _recent.append((now, _answered))
        while _recent and now - _recent[0][0] > WINDOW:
            _recent.popleft()
        if _run_warned:
            return
        in_row = sum(_run.values())
        recent = len(_recent)
        answers = max(0, _answered - _recent[0][1])
        if in_row < RUN and not (recent >= RUN and recent >= 2 * answers):
            return
        _run_warned = True
        main = _run.most_common(1)[0][0]
        if main in _refusal_warned:
            return
        _refusal_warned.add(main)
        causes = ", ".join(f"{n} {c}" for c, n in _run.most_common())
        advice = _run_advice[main]
    how = f"{in_row} in a row" if in_row >= RUN else f"{recent} against {answers} taken in the last {WINDOW:.0f} s"
    log.warning("fast requests refused: %s (%s); each was asked again through boto3. %s "
                "(counts: ccfs info --mount MNT; %s=0 turns the fast paths off)", how, causes, advice(), ENV)


def refusals() -> dict[str, int]:
    """How many fast requests were refused in this process, by cause (each asked again publicly)."""
    with _lock:
        return dict(_refused)


def counts_line(counts: dict[str, int]) -> str:
    """Counts as one line, commonest first: ``25 (20 HTTP 403 SignatureDoesNotMatch, 5 HTTP 403)``;
    ``0`` for none (``ccfs info --mount``, the benchmarks)."""
    total = sum(counts.values())
    if not total:
        return "0"
    parts = ", ".join(f"{n} {cause}" for cause, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return f"{total} ({parts})"


def reset() -> None:
    """Forget the counts and warnings (tests), and undo ``disable``."""
    global _disabled, _answered, _run_warned
    with _lock:
        _counts.clear()
        _warned.clear()
        _refused.clear()
        _run.clear()
        _run_advice.clear()
        _recent.clear()
        _refusal_warned.clear()
        _run_warned = False
        _answered = 0
        _disabled = False
