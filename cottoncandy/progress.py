"""Progress of long transfers: a bar for people, and a callback for programs.

What is counted: the bytes the caller handed over or asked for. For an array that is the array's
bytes (``nbytes``), whatever its codec: an upload counts the array bytes whose encoded form has
been sent, a download the array bytes whose stored form has been fetched. Stores count what they
move (compressed bytes); :class:`BodyMap` turns those counts into array bytes, through the body's
layout, wherever an array path hands a body to a store. So a transfer's total is a number its
count reaches exactly, when the last byte has moved: bars end at 100% and callbacks at
``(total, total)`` for every codec, never below, never above. Objects and files are their own bytes.

The bar is ``tqdm.auto`` when tqdm is installed (a widget in Jupyter with ipywidgets, text on stderr
elsewhere), else one line on stderr redrawn at most ten times a second. Either is drawn only when the
transfer is ``enabled`` (the interface's ``verbose``) and someone can see it: stderr is a terminal or
a Jupyter kernel's stream, so logs, pipes and CI stay clean. With ``threshold=True`` (single
transfers) totals smaller than ``MIN_BYTES`` get no bar; the test is on the same total the bar
shows, so an 80 MiB array that gzip stores in 80 KiB gets one, both ways (``MIN_BYTES`` is read when
the total is known: ``cottoncandy.progress.MIN_BYTES = 0`` shows every one).

``callback=`` follows fsspec's convention (``fsspec.callbacks.Callback``): any object with
``set_size(total)`` and ``relative_update(n)`` (``absolute_update`` is not needed), so fsspec's
``TqdmCallback`` and friends work as they are; a plain callable is called as ``fn(done, total)``.
Callbacks are told about every transfer, whatever its size and ``verbose``. Updates come from worker
threads (multipart parts, parallel GETs, dask parts), hence the locks: callbacks are called one at a
time, but not always from the caller's thread.
"""

from __future__ import annotations

import bisect
import sys
import threading
import time
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, TextIO, runtime_checkable

MIN_BYTES = 64 * 2**20
REDRAW_SECONDS = 0.1


@runtime_checkable
class SizedCallback(Protocol):
    """fsspec's ``Callback`` as transfers use it."""

    def set_size(self, size: int) -> Any: ...

    def relative_update(self, inc: int = 1) -> Any: ...


#: what ``callback=`` takes: an fsspec-like callback, or ``fn(done, total)``
ProgressCallback = SizedCallback | Callable[[int, int | None], Any]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def big_enough(total: int) -> bool:
    """Whether a transfer of ``total`` bytes is long enough to deserve a bar."""
    return total >= MIN_BYTES


def visible(stream: Any) -> bool:
    """A person sees ``stream``: a terminal, or the stream a Jupyter kernel sends to the notebook."""
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return True
    return type(stream).__module__.startswith("ipykernel.")


def _tqdm_class() -> Any:
    """``tqdm.auto.tqdm``, or ``None`` when tqdm is not installed."""
    try:
        with warnings.catch_warnings():
            # in a kernel without ipywidgets tqdm.auto warns once and draws text: that is fine here
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def _check_callback(callback: Any) -> None:
    if callback is not None and not isinstance(callback, SizedCallback) and not callable(callback):
        raise TypeError(f"callback must have set_size() and relative_update() (fsspec's Callback) or be "
                        f"callable as fn(done, total), not {type(callback).__name__}")


class BodyMap:
    """Array bytes moved, from stored bytes moved: the store's progress for a body that is not the array.

    The body is described by segments in order, each ``stored`` bytes of the body that carry
    ``array`` bytes of the array: a whole encoded body is one segment, a streamed gzip body a
    header and trailer carrying none, then one segment per block, declared as it is compressed
    (before its bytes can be sent). ``n`` stored bytes moved (``map(n)``, from any thread) advance
    a count ``w`` of stored bytes; ``report`` is told the array bytes of the first ``w`` bytes of
    the segments, linear within one, as increments.

    Invariants: what is reported never decreases and never exceeds the array bytes declared; it
    reaches the array's whole size exactly when the stored bytes moved reach the body's size. A
    store whose parts finish out of order (parallel parts, the first part of a streamed upload
    sent last) only makes the middle of the count an estimate, never its end. Segments carrying
    no array bytes (headers, trailers) are best declared first, so the end is reached with the
    last stored byte, not before it.
    """

    def __init__(self, report: Callable[[int], None]):
        self._report = report
        self._stored_ends: list[int] = []
        self._array_ends: list[int] = []
        self._moved = 0
        self._reported = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, report: Callable[[int], None] | None, stored: int, array: int) -> Callable[[int], None] | None:
        """The store's progress for a body of ``stored`` bytes holding ``array`` bytes, for ``report``
        counting array bytes: ``report`` itself when the two are the same bytes (or there is none)."""
        if report is None or stored == array:
            return report
        meter = cls(report)
        meter.segment(stored, array)
        return meter

    @property
    def array_total(self) -> int:
        """Array bytes of the segments declared so far."""
        return self._array_ends[-1] if self._array_ends else 0

    def segment(self, stored: int, array: int) -> None:
        """The body's next ``stored`` bytes carry ``array`` bytes of the array."""
        if stored < 0 or array < 0:
            raise ValueError(f"a body segment has no negative sizes ({stored}, {array})")
        with self._lock:
            self._stored_ends.append((self._stored_ends[-1] if self._stored_ends else 0) + stored)
            self._array_ends.append(self.array_total + array)
            self._advance()

    def __call__(self, n: int) -> None:
        with self._lock:
            self._moved += n
            self._advance()

    def _advance(self) -> None:
        done = self._array_at(self._moved)
        if done > self._reported:
            step, self._reported = done - self._reported, done
            self._report(step)

    def _array_at(self, moved: int) -> int:
        i = bisect.bisect_right(self._stored_ends, moved)
        if i == len(self._stored_ends):
            return self.array_total
        stored_lo = self._stored_ends[i - 1] if i else 0
        array_lo = self._array_ends[i - 1] if i else 0
        span = self._stored_ends[i] - stored_lo  # > 0: a segment of length 0 ends where it starts
        return array_lo + (moved - stored_lo) * (self._array_ends[i] - array_lo) // span


class Progress:
    """Counts work done (bytes, or items with ``unit='items'``), draws it when enabled and visible,
    and reports it to ``callback``.

    ``total`` may be ``None`` when it is not known yet: :meth:`set_total` announces it later (the
    callback's ``set_size`` is called then; with ``threshold=True`` the bar waits for it).
    ``threshold``: no bar when the total is under :data:`MIN_BYTES`.
    ``bar``: ``'auto'`` (tqdm when installed, else our line), ``'tqdm'`` or ``'line'``.
    """

    def __init__(self, total: int | None, label: str, *, enabled: bool = True, unit: str = "B",
                 stream: TextIO | None = None, callback: ProgressCallback | None = None, bar: str = "auto",
                 threshold: bool = False):
        _check_callback(callback)
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self.callback = callback
        self._wanted = bool(enabled and visible(self.stream))  # someone would see a bar
        self._threshold = threshold
        self._bar = bar
        self.drawing = False  # a bar is being drawn
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._drawn = 0.0
        self._tqdm: Any = None
        if total is not None or not threshold:
            self._open_bar()
        if callback is not None and total is not None and isinstance(callback, SizedCallback):
            callback.set_size(total)

    def _open_bar(self) -> None:
        """Start drawing, if someone sees it and the total deserves it."""
        if not self._wanted or self.drawing or (self._threshold and not big_enough(self.total or 0)):
            return
        self.drawing = True
        if self._bar != "line":
            tqdm = _tqdm_class()
            if tqdm is not None:
                scaled = {"unit_scale": True, "unit_divisor": 1024} if self.unit == "B" else {}
                self._tqdm = tqdm(total=self.total or None, desc=self.label, unit=self.unit, file=self.stream,
                                  leave=True, mininterval=REDRAW_SECONDS, **scaled)
                if self.done:
                    self._tqdm.update(self.done)

    def set_total(self, total: int) -> None:
        """Announce the total once it is known (before the work it counts, or during it)."""
        with self._lock:
            self.total = total
            if self.callback is not None:
                if isinstance(self.callback, SizedCallback):
                    self.callback.set_size(total)
                else:
                    self.callback(self.done, total)
            if self._tqdm is not None:
                done = self._tqdm.n
                self._tqdm.reset(total=total or None)
                self._tqdm.update(done)
            else:
                self._open_bar()

    def update(self, n: int) -> None:
        """``n`` more done (0: no news, nobody is told)."""
        if not n:
            return
        with self._lock:
            self.done += n
            if self.callback is not None:
                if isinstance(self.callback, SizedCallback):
                    self.callback.relative_update(n)
                else:
                    self.callback(self.done, self.total)
            if not self.drawing:
                return
            if self._tqdm is not None:
                self._tqdm.update(n)
                return
            now = time.monotonic()
            if now - self._drawn >= REDRAW_SECONDS:
                self._drawn = now
                self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        elapsed = max(now - self._start, 1e-9)
        if self.unit == "B":
            amount = human_bytes(self.done) + (f" / {human_bytes(self.total)}" if self.total else "")
            rate = f"  {human_bytes(self.done / elapsed)}/s"
        else:
            amount = f"{self.done}" + (f"/{self.total}" if self.total else "") + f" {self.unit}"
            rate = ""
        percent = f"{100 * self.done / self.total:5.1f}% " if self.total else ""
        self.stream.write(f"\r{self.label}: {percent}{amount}{rate}\x1b[K{end}")
        self.stream.flush()

    def close(self) -> None:
        """Stop drawing: the bar keeps its last state (a tqdm widget turns green when the count reached
        its total, red when a failure stopped it short)."""
        with self._lock:
            if self.drawing:
                if self._tqdm is not None:
                    self._tqdm.close()
                else:
                    self._draw(time.monotonic(), end="\n")
                self.drawing = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
