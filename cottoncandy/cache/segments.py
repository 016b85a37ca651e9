"""Decoded bytes of a gzip body read through seek points: a ``RangeFetch`` for ``prefetch.ObjectReader``.

Why: with seek points (``formats.zran``) a read of decoded bytes ``[a, b)`` needs only the stretches
of the body between the point before ``a`` and the point at or after ``b``, each inflated from its
point's priming state. Given to an ``ObjectReader`` as its fetch, the mount's block cache, read-ahead
and memory budget then work on decoded bytes exactly as for a raw array.

Each compressed byte is fetched once per whole read. The reader's runs (8 MiB, up to 16 in flight)
do not line up with the stretches (about ``zran.SPAN`` of output each, ending at deflate block
boundaries), so a stretch is usually wanted by two runs, often at the same time, and by several
files of the same version (``np.load`` opens one three times). Hence:

* one ``SegmentFetch`` per version, shared by the files open on it (``gzip_points.point_fetch``);
* the stretches a read needs that nobody has or is fetching are claimed together, and each run of
  adjacent claimed stretches is one ranged GET; a stretch another read is fetching is waited for;
* an inflated stretch is kept until every byte of it has been handed out once (then the block cache
  above holds those bytes), within :func:`keep_limit` bytes (least recently used first beyond it),
  charged to the mount's ``MemoryBudget`` while kept, as is each compressed run while it inflates.

A whole read therefore fetches every stretch once (measured: a 64 MiB float32 array, 30.0 MB body,
fetched 42.9 MB in 24 GETs before, when only the last 2 stretches of each file were kept).

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
from concurrent.futures import Future
from dataclasses import dataclass, field

from .. import waits
from ..formats import zran
from ..singleflight import SingleFlight
from .budget import MemoryBudget

log = logging.getLogger(__name__)

#: inflated stretches kept at most (bytes), whatever the budget: 16 runs in flight each leave at most
#: one stretch half handed out, ~16 x ``zran.SPAN``
KEEP_BYTES = 64 * 2**20


def keep_limit(budget: MemoryBudget | None) -> int:
    """Bytes of inflated stretches one version keeps: :data:`KEEP_BYTES`, at most a quarter of the
    budget, never under two stretches (a read across a point needs both)."""
    if budget is None or not budget.limit:
        return KEEP_BYTES
    return max(2 * zran.SPAN, min(KEEP_BYTES, budget.limit // 4))


@dataclass
class _Kept:
    """An inflated stretch and the parts of it not yet handed out."""

    data: bytes
    left: list[tuple[int, int]] = field(default_factory=list)  # [a, b) offsets in ``data``, sorted, disjoint

    def hand_out(self, a: int, b: int) -> bool:
        """Mark ``[a, b)`` handed out; True once nothing is left."""
        rest: list[tuple[int, int]] = []
        for lo, hi in self.left:
            if hi <= a or b <= lo:
                rest.append((lo, hi))
                continue
            if lo < a:
                rest.append((lo, a))
            if b < hi:
                rest.append((b, hi))
        self.left = rest
        return not rest


class SegmentFetch:
    """``fetch(start, end)`` -> decoded bytes ``[start, end)`` of the array, through ``points``.

    ``fetch_body(start, end)``: compressed bytes ``[start, end)`` of the pinned body (a ranged GET).
    ``fallback(start, end)``: the same decoded bytes by another way (the whole decode), used once a
    stretch failed its check; ``on_bad(why)`` is called then, once. Safe to call from many threads.
    """

    def __init__(self, points: list[zran.SeekPoint], body_size: int, nbytes: int,
                 fetch_body: Callable[[int, int], bytes | bytearray | memoryview],
                 fallback: Callable[[int, int], bytes], on_bad: Callable[[str], None],
                 budget: MemoryBudget | None = None, keep_bytes: int | None = None):
        self.points = points
        self.body_size = body_size
        self.nbytes = nbytes
        self.fetch_body = fetch_body
        self.fallback = fallback
        self.on_bad = on_bad
        self._starts = [p.out_start for p in points]
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self.keep_bytes = keep_limit(budget) if keep_bytes is None else keep_bytes
        self.budget = budget
        self._charged = [0]  # bytes of kept stretches charged to ``budget``
        weakref.finalize(self, _let_go, budget, self._charged)
        self._lock = threading.Lock()
        self._inflight: SingleFlight[int, bytes] = SingleFlight(self._lock)
        self.broken = False
        self.inflated = 0  # stretches inflated (for tests and logs)
        self.gets = 0  # ranged GETs of the body
        self.fetched = 0  # compressed bytes fetched

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

    def close(self) -> None:
        """Let go of the kept stretches (and their charge to the budget)."""
        with self._lock:
            self._charge(-sum(len(kept.data) for kept in self._kept.values()))
            self._kept.clear()

    # --- reading ---------------------------------------------------------------------------------
    def _span(self, start: int, end: int) -> range:
        """The stretches covering decoded bytes ``[start, end)``."""
        if not 0 <= start < end <= self.nbytes:
            raise ValueError(f"decoded bytes {start}-{end} lie outside the array's {self.nbytes}")
        first = max(0, bisect.bisect_right(self._starts, start) - 1)
        last = max(0, bisect.bisect_left(self._starts, end) - 1)
        return range(first, last + 1)

    def _read(self, start: int, end: int) -> bytes:
        wanted = self._span(start, end)
        have: dict[int, bytes] = {}
        waiting: dict[int, Future[bytes]] = {}
        claimed: list[int] = []
        with self._lock:
            for i in wanted:
                kept = self._kept.get(i)
                if kept is not None:
                    self._kept.move_to_end(i)
                    have[i] = kept.data
                elif (pending := self._inflight.waiting(i)) is not None:
                    waiting[i] = pending
                else:
                    self._inflight.claim(i)
                    claimed.append(i)
        unsettled = set(claimed)
        for run in _adjacent(claimed):
            have.update(self._load(run, unsettled))
        for i, pending in waiting.items():
            waits.done(pending)
            have[i] = pending.result()  # another read's failure (a bad stretch) is this read's too
        pieces = []
        with self._lock:
            for i in wanted:
                base = self.points[i].out_start
                data = have[i]
                a, b = max(start, base) - base, min(end, base + len(data)) - base
                pieces.append(data[a:b] if (a, b) != (0, len(data)) else data)
                self._handed_out(i, a, b)
        if sum(len(piece) for piece in pieces) != end - start:
            raise ValueError(f"decoded bytes {start}-{end} lie past the last seek point's stretch")
        return b"".join(pieces) if len(pieces) != 1 else pieces[0]

    def _load(self, run: list[int], unsettled: set[int]) -> dict[int, bytes]:
        """Fetch the adjacent stretches ``run`` (claimed by this read) in one ranged GET, inflate each,
        keep it and settle its claim (leaving ``unsettled``). On a failure every claim of this read
        still in ``unsettled`` fails with it."""
        lo = zran.segment_bounds(self.points, run[0], self.body_size, self.nbytes)[0]
        hi = zran.segment_bounds(self.points, run[-1], self.body_size, self.nbytes)[1]
        done: dict[int, bytes] = {}
        if self.budget is not None:  # the compressed run while it inflates
            self.budget.charge(hi - lo)
        try:
            body = memoryview(self.fetch_body(lo, hi))
            with self._lock:
                self.gets += 1
                self.fetched += hi - lo
            for i in run:
                start, end, out_start, out_end = zran.segment_bounds(self.points, i, self.body_size, self.nbytes)
                data = zran.inflate_segment(self.points[i], body[start - lo : end - lo], out_end - out_start)
                with self._lock:
                    self.inflated += 1
                    self._keep(i, data)
                    future = self._inflight.waiting(i)
                    self._inflight.release(i)
                    unsettled.discard(i)
                assert future is not None
                future.set_result(data)
                done[i] = data
        except BaseException as exc:
            with self._lock:
                failed = [self._inflight.waiting(i) for i in sorted(unsettled)]
                for i in unsettled:
                    self._inflight.release(i)
                unsettled.clear()
            for future in failed:
                if future is not None and not future.done():
                    future.set_exception(exc)
                    future.exception()  # seen: a claim no one waits for logs nothing at collection
            raise
        finally:
            if self.budget is not None:
                self.budget.credit(hi - lo)
        return done

    # --- kept stretches (call with the lock held) -----------------------------------------------
    def _keep(self, i: int, data: bytes) -> None:
        self._kept[i] = _Kept(data, [(0, len(data))])
        self._charge(len(data))
        held = sum(len(kept.data) for kept in self._kept.values())
        while held > self.keep_bytes and len(self._kept) > 1:
            _, oldest = self._kept.popitem(last=False)
            held -= len(oldest.data)
            self._charge(-len(oldest.data))

    def _handed_out(self, i: int, a: int, b: int) -> None:
        kept = self._kept.get(i)
        if kept is not None and kept.hand_out(a, b):
            del self._kept[i]
            self._charge(-len(kept.data))

    def _charge(self, nbytes: int) -> None:
        """Kept stretches' bytes in the budget (negative: let go); what is still charged when this
        fetch is collected (its last file closed) is credited then (``_let_go``)."""
        if self.budget is not None and nbytes:
            self._charged[0] += nbytes
            (self.budget.charge if nbytes >= 0 else self.budget.credit)(abs(nbytes))

    @property
    def kept_bytes(self) -> int:
        with self._lock:
            return sum(len(kept.data) for kept in self._kept.values())


def _adjacent(indexes: list[int]) -> list[list[int]]:
    """Runs of consecutive numbers in the sorted ``indexes``."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] + 1 == i:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _let_go(budget: MemoryBudget | None, charged: list[int]) -> None:
    if budget is not None and charged[0]:
        budget.credit(charged[0])
        charged[0] = 0
