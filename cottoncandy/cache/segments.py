"""Decoded bytes of a gzip body read through seek points: a ``RangeFetch`` for ``prefetch.ObjectReader``.

Why: with seek points (``formats.zran``) a read of decoded bytes ``[a, b)`` needs only the stretches
of the body between the point before ``a`` and the point at or after ``b``: one ranged GET of their
compressed bytes each, inflated from the point's priming state. Given to an ``ObjectReader`` as its
fetch, the mount's block cache, read-ahead and memory budget then work on decoded bytes exactly as
for a raw array. The last few inflated stretches are kept (:data:`KEPT` of them, charged to the
mount's ``MemoryBudget`` until let go, as is each compressed stretch while it inflates) because
the reader's runs are smaller than a stretch: consecutive runs inside one stretch inflate it once,
and concurrent runs of one stretch share one inflation.

Invariants: a stretch is served only if it inflates to exactly its recorded length and CRC-32
(``zran.inflate_segment``); on the first one that does not, ``on_bad`` is told (the mount drops
the record) and every read of this fetch goes to ``fallback`` (the whole decode) from then on.
"""

from __future__ import annotations

import bisect
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

from ..formats import zran
from ..singleflight import SingleFlight
from .budget import MemoryBudget

log = logging.getLogger(__name__)

#: inflated stretches kept per fetch (each at most ``zran.SPAN`` plus one deflate block)
KEPT = 2


class SegmentFetch:
    """``fetch(start, end)`` -> decoded bytes ``[start, end)`` of the array, through ``points``.

    ``fetch_body(start, end)``: compressed bytes ``[start, end)`` of the pinned body (a ranged GET).
    ``fallback(start, end)``: the same decoded bytes by another way (the whole decode), used once a
    stretch failed its check; ``on_bad(why)`` is called then, once.
    """

    def __init__(self, points: list[zran.SeekPoint], body_size: int, nbytes: int,
                 fetch_body: Callable[[int, int], bytes], fallback: Callable[[int, int], bytes],
                 on_bad: Callable[[str], None], budget: MemoryBudget | None = None):
        self.points = points
        self.body_size = body_size
        self.nbytes = nbytes
        self.fetch_body = fetch_body
        self.fallback = fallback
        self.on_bad = on_bad
        self._starts = [p.out_start for p in points]
        self._kept: OrderedDict[int, bytes] = OrderedDict()
        self.budget = budget
        self._charged = [0]  # bytes of kept stretches charged to ``budget``
        weakref.finalize(self, _let_go, budget, self._charged)
        self._lock = threading.Lock()
        self._inflight: SingleFlight[int, bytes] = SingleFlight(self._lock)
        self.broken = False
        self.inflated = 0  # stretches inflated (for tests and logs)

    def _segment(self, i: int) -> bytes:
        """Stretch ``i`` inflated: kept, or inflated once for every caller asking meanwhile."""
        def cached() -> bytes | None:
            data = self._kept.get(i)
            if data is not None:
                self._kept.move_to_end(i)
            return data

        def keep(data: bytes) -> None:
            self._kept[i] = data
            self._charge(len(data))
            while len(self._kept) > KEPT:
                self._charge(-len(self._kept.popitem(last=False)[1]))

        return self._inflight.run(i, lambda: self._inflate(i), cached=cached, keep=keep)

    def _inflate(self, i: int) -> bytes:
        start, end, out_start, out_end = zran.segment_bounds(self.points, i, self.body_size, self.nbytes)
        if self.budget is not None:  # the compressed stretch while it inflates
            self.budget.charge(end - start)
        try:
            data = zran.inflate_segment(self.points[i], self.fetch_body(start, end), out_end - out_start)
        finally:
            if self.budget is not None:
                self.budget.credit(end - start)
        self.inflated += 1
        return data

    def _charge(self, nbytes: int) -> None:
        """Kept stretches' bytes in the budget (negative: let go); what is still charged when this
        fetch is collected (its file closed) is credited then (``_let_go``)."""
        if self.budget is not None:
            self._charged[0] += nbytes
            (self.budget.charge if nbytes >= 0 else self.budget.credit)(abs(nbytes))

    def close(self) -> None:
        """Let go of the kept stretches (and their charge to the budget)."""
        with self._lock:
            self._charge(-sum(len(data) for data in self._kept.values()))
            self._kept.clear()


    def __call__(self, start: int, end: int) -> bytes:
        if not self.broken:
            try:
                return self._read(start, end)
            except ValueError as exc:
                with self._lock:
                    first_failure, self.broken = not self.broken, True
                self.close()
                if first_failure:
                    self.on_bad(str(exc))
        return self.fallback(start, end)

    def _read(self, start: int, end: int) -> bytes:
        pieces = []
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        pos = start
        while pos < end:
            segment = self._segment(i)
            base = self.points[i].out_start
            pieces.append(segment[pos - base : min(end, base + len(segment)) - base])
            pos = base + len(segment)
            i += 1
            if i >= len(self.points) and pos < end:
                raise ValueError(f"decoded bytes {pos}-{end} lie past the last seek point's stretch")
        return b"".join(pieces) if len(pieces) != 1 else pieces[0]


def _let_go(budget: MemoryBudget | None, charged: list[int]) -> None:
    if budget is not None and charged[0]:
        budget.credit(charged[0])
        charged[0] = 0
