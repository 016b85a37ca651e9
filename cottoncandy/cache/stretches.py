"""Decoded bytes of a compressed body read stretch by stretch: the one reader of gzip arrays in place.

Why: a gzip body can be read without inflating all of it wherever inflating may start afresh. Our
writer's bodies carry a block index (``formats.pgzip``: every block starts on a byte, needs no
window, and the index gives its CRC-32); 0.4.0's bodies get seek points on their first full decode
(``formats.zran``: a bit offset, a 32 KiB window and the CRC-32 of the stretch up to the next
point). Both are tables of *stretches*: compressed bytes ``[start, end)`` that inflate alone to
decoded bytes ``[out_start, out_end)``, the stretches tiling the array. A block of ours is a seek
point at a byte-aligned start with an empty window and a known CRC. :class:`StretchReader` reads
through any such table (``cache.inflated.BlockTable``, ``cache.segments.PointTable``); the tables
say only where each stretch lies and how it inflates and is checked.

What the reader does for a read of decoded bytes ``[a, b)`` (a ``RangeFetch`` of
``prefetch.ObjectReader``, so the mount's block cache, read-ahead and memory budget work on decoded
bytes exactly as on a raw array's):

* the stretches it needs that nobody has or is fetching are claimed together, and each run of
  adjacent claimed stretches is one ranged GET (``fetch_body``); a stretch another read is fetching
  is waited for (``SingleFlight``); the body's first bytes, when given (``first``: the mount's
  lookup fetched them), serve a run lying in them once, without a GET;
* each stretch is inflated alone and must give exactly its length (and its CRC where known);
* an inflated stretch is kept until every byte of it was handed out once, within
  :func:`keep_limit` bytes (least recently used let go first beyond it): reader runs that do not
  line up with the stretches (seek points end at deflate blocks) then fetch each compressed byte
  once; a table whose stretches the reads line up with (``aligned``: our blocks, as the mount's
  reader blocks are gzip blocks) has nothing to keep;
* the compressed bytes of a run in flight, and the kept stretches, are charged to ``budget``;
  the answer is written into a buffer from ``allocate`` (the mount's pool).

Failures, each failing only its own object: a stretch that does not inflate to its place
(``ValueError`` from the table: the table is wrong, or the body is not the one it describes) tells
``on_bad`` once and sends this and every later read to ``fallback`` (the whole decode, which checks
the body's own CRC-32 and length). A table may instead fail one stretch alone with an ``OSError``
(our block whose bytes do not match the CRC-32 its own index gives: ``pgzip.BlockCrcError``, EIO,
nothing tells which is damaged, so no values are served for it): that read fails, others go on.

Thread-safe; a reader may be shared by every file open on one version (``gzip_points.OpenFetches``).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from .. import waits
from ..singleflight import SingleFlight
from .budget import MemoryBudget

Buffer = bytes | bytearray | memoryview

#: inflated stretches one reader keeps at most (bytes), whatever the budget: 16 read-ahead runs in
#: flight each leave at most one stretch half handed out, ~16 x 4 MiB
KEEP_BYTES = 64 * 2**20


class StretchTable(Protocol):
    """Where the stretches of one compressed body lie and how each inflates (see the module)."""

    #: decoded bytes of the whole array (the stretches tile ``[0, nbytes)``)
    nbytes: int
    #: decoded bytes of a usual stretch (the reader keeps at least two)
    span: int
    #: whether reads ask for whole stretches (the mount's reader blocks are our gzip blocks): then a
    #: stretch is kept only for the reads that want it now, nothing past them
    aligned: bool

    def __len__(self) -> int: ...

    def bounds(self, i: int) -> tuple[int, int, int, int]:
        """Compressed ``[start, end)`` to fetch and decoded ``[out_start, out_end)`` of stretch ``i``."""
        ...

    def index_of(self, pos: int) -> int:
        """The stretch holding decoded byte ``pos`` (``0 <= pos < nbytes``)."""
        ...

    def inflate(self, i: int, data: memoryview) -> Buffer:
        """Stretch ``i``'s decoded bytes from its compressed bytes ``data``, checked; ``ValueError``
        if it does not fit the table, or an ``OSError`` failing this stretch alone."""
        ...


def keep_limit(budget: MemoryBudget | None, span: int) -> int:
    """Bytes of inflated stretches one reader keeps: :data:`KEEP_BYTES`, at most a quarter of the
    budget, never under two stretches of ``span`` bytes (a read across a stretch's end needs both)."""
    if budget is None or not budget.limit:
        return max(2 * span, KEEP_BYTES)
    return max(2 * span, min(KEEP_BYTES, budget.limit // 4))


@dataclass
class _Kept:
    """An inflated stretch and the parts of it not yet handed out."""

    data: Buffer
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


def _bytearray(n: int) -> memoryview:
    return memoryview(bytearray(n))


class StretchReader:
    """``reader(start, end)`` -> decoded bytes ``[start, end)`` of the array, through ``table``.

    ``fetch_body(start, end)``: compressed bytes ``[start, end)`` of the pinned body (one ranged GET).
    ``fallback(start, end)``: the same decoded bytes by another way (the whole decode), used once a
    stretch did not fit the table; ``on_bad(why)`` is called then, once. ``allocate(n)``: a writable
    buffer for an answer (default: a fresh ``bytearray``). ``first``: the body's first bytes, if
    someone fetched them already.
    ``keep_bytes``: the bound on kept stretches (default :func:`keep_limit`, or 0 for an aligned
    table: none is kept beyond the reads that want it now).
    """

    def __init__(self, table: StretchTable, fetch_body: Callable[[int, int], Buffer],
                 fallback: Callable[[int, int], Buffer], on_bad: Callable[[str], None], *,
                 allocate: Callable[[int], memoryview] | None = None, first: Buffer | None = None,
                 budget: MemoryBudget | None = None, keep_bytes: int | None = None):
        self.table = table
        self.nbytes = table.nbytes
        self.fetch_body = fetch_body
        self.fallback = fallback
        self.on_bad = on_bad
        self.allocate = allocate or _bytearray
        self.budget = budget
        if keep_bytes is None:
            keep_bytes = 0 if table.aligned else keep_limit(budget, table.span)
        self.keep_bytes = keep_bytes
        self._first = _held_stretches(table, first)
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self._charged = [0]  # bytes of kept stretches charged to ``budget``
        weakref.finalize(self, _let_go, budget, self._charged)
        self._lock = threading.Lock()
        self._inflight: SingleFlight[int, Buffer] = SingleFlight(self._lock)
        self.broken = False
        self.inflated = 0  # stretches inflated (for tests and logs)
        self.gets = 0  # ranged GETs of the body
        self.fetched = 0  # compressed bytes fetched

    def __call__(self, start: int, end: int) -> Buffer:
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

    @property
    def kept_bytes(self) -> int:
        with self._lock:
            return sum(len(kept.data) for kept in self._kept.values())

    # --- reading ---------------------------------------------------------------------------------
    def _read(self, start: int, end: int) -> memoryview:
        if not 0 <= start < end <= self.nbytes:
            raise ValueError(f"decoded bytes {start}-{end} lie outside the array's {self.nbytes}")
        wanted = range(self.table.index_of(start), self.table.index_of(end - 1) + 1)
        have: dict[int, Buffer] = {}
        waiting: dict[int, Future[Buffer]] = {}
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
        alone: OSError | None = None
        for run in _adjacent(claimed):
            done, failed = self._load(run, unsettled)
            have.update(done)
            alone = alone or failed
        for i, pending in waiting.items():
            waits.done(pending)
            have[i] = pending.result()  # another read's failure (a bad stretch) is this read's too
        if alone is not None:
            raise alone
        out = self.allocate(end - start)
        filled = 0
        for i in wanted:
            out_start, out_end = self.table.bounds(i)[2:]
            a, b = max(start, out_start), min(end, out_end)
            out[a - start : b - start] = memoryview(have[i])[a - out_start : b - out_start]
            filled += b - a
            with self._lock:
                self._handed_out(i, a - out_start, b - out_start)
        if filled != end - start:
            raise ValueError(f"decoded bytes {start}-{end} are not covered by the stretches {wanted}")
        return out

    def _compressed(self, lo: int, hi: int) -> Buffer:
        """Compressed bytes ``[lo, hi)``: from ``first`` when it holds them (once: the caches above
        keep what is made of them), else one ranged GET."""
        with self._lock:
            first = self._first
            if first is not None and hi <= len(first):
                self._first = None
                return first[lo:hi]
            self.gets += 1
            self.fetched += hi - lo
        return self.fetch_body(lo, hi)

    def _load(self, run: list[int], unsettled: set[int]) -> tuple[dict[int, Buffer], OSError | None]:
        """Fetch the adjacent stretches ``run`` (claimed by this read) in one ranged GET, inflate each,
        keep it and settle its claim (leaving ``unsettled``): the stretches inflated, and the first
        error of a stretch failing alone (an ``OSError`` from the table: it settles with that error,
        the others of the run are still served; the read raises it once its other runs are settled).
        On any other failure every claim of this read still in ``unsettled`` fails with it."""
        lo, hi = self.table.bounds(run[0])[0], self.table.bounds(run[-1])[1]
        done: dict[int, Buffer] = {}
        alone: OSError | None = None
        if self.budget is not None:  # the compressed run while it inflates
            self.budget.charge(hi - lo)
        try:
            body = memoryview(self._compressed(lo, hi)).cast("B")
            for i in run:
                start, end, out_start, out_end = self.table.bounds(i)
                try:
                    data = self.table.inflate(i, body[start - lo : end - lo])
                except OSError as exc:  # this stretch alone (its own index's CRC): the run goes on
                    alone = alone or exc
                    self._settle(i, unsettled, error=exc)
                    continue
                if len(data) != out_end - out_start:
                    raise ValueError(f"stretch {i} inflated to {len(data)} bytes, not {out_end - out_start}")
                with self._lock:
                    self.inflated += 1
                    self._keep(i, data)
                self._settle(i, unsettled, result=data)
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
        return done, alone

    def _settle(self, i: int, unsettled: set[int], *, result: Buffer | None = None,
                error: BaseException | None = None) -> None:
        """End this read's claim of stretch ``i`` with its data or its error (waiters get either)."""
        with self._lock:
            future = self._inflight.waiting(i)
            self._inflight.release(i)
            unsettled.discard(i)
        assert future is not None
        if error is not None:
            future.set_exception(error)
            future.exception()  # seen, as above
        else:
            assert result is not None
            future.set_result(result)

    # --- kept stretches (call with the lock held) -----------------------------------------------
    def _keep(self, i: int, data: Buffer) -> None:
        self._kept[i] = _Kept(data, [(0, len(data))])
        self._charge(len(data))
        held = sum(len(kept.data) for kept in self._kept.values())
        while held > self.keep_bytes and self._kept:
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
        reader is collected (its last file closed) is credited then (``_let_go``)."""
        if self.budget is not None and nbytes:
            self._charged[0] += nbytes
            (self.budget.charge if nbytes >= 0 else self.budget.credit)(abs(nbytes))


def _adjacent(indexes: list[int]) -> list[list[int]]:
    """Runs of consecutive numbers in the sorted ``indexes``."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] + 1 == i:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _held_stretches(table: StretchTable, first: Buffer | None) -> memoryview | None:
    """A copy of the stretches ``first`` (the body's first bytes, maybe a pooled buffer that will be
    reused) holds whole, or ``None`` if it holds none."""
    if first is None:
        return None
    held = 0
    for i in range(len(table)):
        end = table.bounds(i)[1]
        if end > len(first):
            break
        held = end
    return memoryview(bytes(memoryview(first)[:held])) if held else None


def _let_go(budget: MemoryBudget | None, charged: list[int]) -> None:
    if budget is not None and charged[0]:
        budget.credit(charged[0])
        charged[0] = 0
