"""Progress of long transfers: a bar for people, and a callback for programs.

The bar is ``tqdm.auto`` when tqdm is installed (a widget in Jupyter with ipywidgets, text on stderr
elsewhere), else one line on stderr redrawn at most ten times a second. Either is drawn only when the
interface is ``verbose`` and someone can see it: stderr is a terminal or a Jupyter kernel's stream,
so logs, pipes and CI stay clean. Transfers smaller than ``MIN_BYTES`` get no bar (read at each call:
``cottoncandy.progress.MIN_BYTES = 0`` shows every one).

``callback=`` follows fsspec's convention (``fsspec.callbacks.Callback``): any object with
``set_size(total)`` and ``relative_update(n)`` (``absolute_update`` is not needed), so fsspec's
``TqdmCallback`` and friends work as they are; a plain callable is called as ``fn(done, total)``.
Callbacks are told about every transfer, whatever its size and ``verbose``. Updates come from worker
threads (multipart parts, parallel GETs, dask parts), hence the lock: callbacks are called one at a
time, but not always from the caller's thread.
"""

from __future__ import annotations

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


class Progress:
    """Counts work done (bytes, or items with ``unit='items'``), draws it when enabled and visible,
    and reports it to ``callback``.

    ``bar``: ``'auto'`` (tqdm when installed, else our line), ``'tqdm'`` or ``'line'``.
    """

    def __init__(self, total: int | None, label: str, *, enabled: bool = True, unit: str = "B",
                 stream: TextIO | None = None, callback: ProgressCallback | None = None, bar: str = "auto"):
        _check_callback(callback)
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self.callback = callback
        self.enabled = bool(enabled and visible(self.stream))
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._drawn = 0.0
        self._tqdm: Any = None
        if self.enabled and bar != "line":
            tqdm = _tqdm_class()
            if tqdm is not None:
                scaled = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
                self._tqdm = tqdm(total=total or None, desc=label, unit=unit, file=self.stream, leave=True,
                                  mininterval=REDRAW_SECONDS, **scaled)
        if callback is not None and total is not None and isinstance(callback, SizedCallback):
            callback.set_size(total)

    def update(self, n: int) -> None:
        with self._lock:
            self.done += n
            if self.callback is not None:
                if isinstance(self.callback, SizedCallback):
                    self.callback.relative_update(n)
                else:
                    self.callback(self.done, self.total)
            if not self.enabled:
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
        with self._lock:
            if self.enabled:
                if self._tqdm is not None:
                    self._tqdm.close()
                else:
                    self._draw(time.monotonic(), end="\n")
                self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
