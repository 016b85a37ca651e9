"""Progress bars for long transfers: one line on stderr, redrawn at most ten times a second.

Shown only when the interface is ``verbose`` and stderr is a terminal, so logs, pipes, CI and
notebooks' captured output stay clean. Updates come from worker threads (multipart parts,
parallel GETs, dask parts), hence the lock. Transfers smaller than ``MIN_BYTES`` get no bar.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

MIN_BYTES = 64 * 2**20
REDRAW_SECONDS = 0.1


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class Progress:
    """Counts work done (bytes, or items with ``unit='items'``) and draws it when enabled."""

    def __init__(self, total: int | None, label: str, *, enabled: bool = True, unit: str = "B",
                 stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(enabled and isatty is not None and isatty())
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._drawn = 0.0

    def update(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and now - self._drawn >= REDRAW_SECONDS:
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
                self._draw(time.monotonic(), end="\n")
                self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
