"""A set of byte offsets kept as sorted, disjoint, non-touching half-open ranges ``[start, end)``.

Why: a staged file tracks which of its bytes it holds and which a program changed; both are a few
runs (a memmap's dirty pages, an append), so runs in a sorted list with ``bisect`` answer "what of
``[a, b)`` is missing" in O(log n + runs touched). Invariant: ``starts[i] < ends[i] < starts[i+1]``
(touching runs are merged), so ``runs()`` is the one canonical form of a set.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

Range = tuple[int, int]


class RangeSet:
    """Byte offsets as merged half-open runs (module docstring)."""

    def __init__(self, runs: Iterable[Range] = ()):
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in runs:
            self.add(start, end)

    def __repr__(self) -> str:
        return f"RangeSet({self.runs()!r})"

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and self.runs() == other.runs()

    def runs(self) -> list[Range]:
        return list(zip(self._starts, self._ends))

    @property
    def total(self) -> int:
        """How many offsets the set holds."""
        return sum(e - s for s, e in zip(self._starts, self._ends))

    def add(self, start: int, end: int) -> int:
        """Add ``[start, end)``; how many offsets were new."""
        if end <= start:
            return 0
        new = (end - start) - self.covered(start, end)
        i = bisect.bisect_left(self._ends, start)  # first run ending at or after start: may touch
        j = bisect.bisect_right(self._starts, end)  # runs before j start at or before end: may touch
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]
        return new

    def remove(self, start: int, end: int) -> int:
        """Remove ``[start, end)``; how many offsets were removed."""
        if end <= start:
            return 0
        gone = self.covered(start, end)
        i = bisect.bisect_right(self._ends, start)  # first run ending after start
        j = bisect.bisect_left(self._starts, end)  # runs before j start before end
        if i >= j:
            return 0
        keep: list[Range] = []
        if self._starts[i] < start:
            keep.append((self._starts[i], start))
        if self._ends[j - 1] > end:
            keep.append((end, self._ends[j - 1]))
        self._starts[i:j] = [s for s, _ in keep]
        self._ends[i:j] = [e for _, e in keep]
        return gone

    def overlapping(self, start: int, end: int) -> Iterator[Range]:
        """The parts of the set inside ``[start, end)``, in order."""
        i = bisect.bisect_right(self._ends, start)
        while i < len(self._starts) and self._starts[i] < end:
            yield max(start, self._starts[i]), min(end, self._ends[i])
            i += 1

    def covered(self, start: int, end: int) -> int:
        """How many offsets of ``[start, end)`` the set holds."""
        return sum(e - s for s, e in self.overlapping(start, end))

    def missing(self, start: int, end: int) -> Iterator[Range]:
        """The parts of ``[start, end)`` not in the set, in order."""
        at = start
        for s, e in self.overlapping(start, end):
            if s > at:
                yield at, s
            at = e
        if at < end:
            yield at, end

    def intersects(self, start: int, end: int) -> bool:
        return next(self.overlapping(start, end), None) is not None

    def clip(self, end: int) -> int:
        """Drop every offset at or after ``end``; how many were dropped."""
        return self.remove(end, max(end, self._ends[-1] if self._ends else end))
