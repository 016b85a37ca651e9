"""Reading an object through the block cache, with a sequential prefetcher.

The model is mountpoint-s3's prefetcher: a read fetches only the blocks it needs, one GET per
missing stretch (a random row costs one GET), and every read that continues the stream grows a
read-ahead window (twice the bytes read in the streak) up to ``max_window`` bytes, fetched as
multi-block runs on a bounded pool so several ranged GETs are in flight. The kernel keeps several
read-ahead requests in flight and they arrive out of order, so "continues the stream" means
"lands within the window around its front"; anything else is a seek and resets the window.
Two kinds of stream skip the doubling and get the whole window at once: one already a few MiB long
(``SURE_STREAK``), and one read from the object's byte 0 for a few READs without a gap
(``START_READS``: a whole-file read). Blocks land in the shared ``BlockCache`` as views of the run's
buffer (no copy per block), so readers of one version share them; with ``progressive`` each block
lands as soon as the GET's body has passed it (``ArrivingRun``), so a reader waits for the bytes it
needs, not for the end of the run they came in. Blocks are aligned to the *file* the object is shown in
(``origin``: where the object's byte 0 sits in it, e.g. after a ``.npy`` header): the kernel asks
for page-aligned ranges, so a read then falls inside one block and is answered with views, never
a join of two blocks. A long sequential stream lets go of the blocks it has passed:
the kernel's page cache holds those bytes, and a scan larger than the cache would only push
everything else out of an LRU for no hit (mountpoint-s3 keeps no read data at all by default).
How large the runs and the window are is the stream's ``StreamTuning`` (``tuning.py``: from the
latency and throughput its own fetches show), or fixed sizes without one.
Read-ahead is reserved in the shared ``MemoryBudget`` before it is fetched and held until the
stream passes it (or seeks away, or the file is closed): a run that does not fit is not started,
so all readers together never fetch ahead more than the cache can keep until they arrive.
A reader given an ``interrupted`` check (the mount gives libfuse's) never blocks in a fetch
itself: what it must wait for is fetched on the ``demand`` pool, and it waits in short slices,
giving up with ``EINTR`` once the check says its caller was signalled -- a process killed while
its read waited on a slow server otherwise stays unkillable until the fetch ends.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor, Future, wait
from typing import TypeVar

from ..storage import progress
from .blocks import BlockCache
from .budget import MemoryBudget
from .tuning import StreamTuning

log = logging.getLogger(__name__)

#: fetch(start, end) -> exactly the object's bytes [start, end)
RangeFetch = Callable[[int, int], bytes]
T = TypeVar("T")
#: how often a waiting read checks whether it was interrupted (seconds)
WAIT_SLICE = 0.1


def wait_interruptibly(future: Future[T], interrupted: Callable[[], bool]) -> T:
    """``future.result()``, or ``InterruptedError`` (EINTR) as soon as ``interrupted()`` says so."""
    while not wait([future], timeout=WAIT_SLICE).done:
        if interrupted():
            raise InterruptedError(errno.EINTR, "read interrupted by a signal")
    return future.result()


#: a stream this long (bytes read in a row) is a scan beyond doubt: it gets the whole window at once
#: instead of twice its streak. Measured (256 MiB, 20 ms to first byte, 100 MB/s per connection): doubling
#: kept one GET in flight for the first ~290 ms of a cold read and 2-5 until ~500 ms; a random mmap row
#: (the kernel's few read-ahead READs: a streak of at most ~1 MiB) never gets this far
SURE_STREAK = 4 * 2**20
#: a stream read from the object's first byte without a gap (READs out of order aside) for this many
#: READs is a whole-file read (cat, cp, np.load without mmap): it gets the whole window at once.
#: Doubling from the first block cost GETs one after another (~25 ms each at 20 ms to the first byte)
#: before the window was in flight. The least that is not a memmap's open: np.load(mmap_mode='r')
#: reads its header from byte 0 with one small read(), and the kernel's read-ahead for it sends 3 READs
#: from byte 0 (128 KiB each, measured, Linux 6.18; fewer, larger ones with a larger --read-ahead), so
#: a 4th READ from byte 0 is a reader going on. Measured against 6 (medians of paired rounds, 256 MiB):
#: cold read at 20 ms, 0.85 -> 0.92 of 8 x 8 MiB GETs from a new process; np.load on loopback, 2.06x ->
#: 1.77x download_raw_array; a memmap's open still fetches 0.75 MiB. A threshold of 2 cost a window
#: (64 MiB and more) for each open of a memmap
START_READS = 4
#: a stream of a raw object that starts at its byte 0 fetches its first this-many bytes at once (the
#: blocks after the first in one background GET, beside the first block's own): what a memmap's open
#: fetched there anyway (3 blocks of 256 KiB with the header's offset, in GETs one after the other as
#: its header read's 3 READs doubled the window), and what a whole-file read needs before its 4th READ
#: opens the window (``START_READS``). Measured (256 MiB, 20 ms to the first byte, 7 paired rounds):
#: cold read 0.90 -> 0.94 of 8 x 8 MiB GETs from a new process (with 768 KiB; 512 KiB covers the same
#: READs, and a memmap's open fetched 1 MiB with 768)
START_BYTES = 512 * 1024
#: a reader that waited this long (seconds) for a read-ahead that then failed takes the failure as its own
LONG_WAIT = 4.0


class ArrivingRun:
    """The claimed blocks of one ranged GET, handed to the cache in order as its body fills the buffer.

    ``filled`` is the store's progress report (``storage.progress``, on the fetching thread): every
    block whose last byte has arrived is fulfilled then, as a view of the buffer being filled (bytes
    reported are final: the GET is pinned to its version). Only the first buffer of the run's size
    reported is taken, so a report about some other buffer (a fetch inside the fetch) is ignored.
    ``finish`` hands out the rest from the fetch's answer; ``fail`` fails the blocks not handed out.
    """

    def __init__(self, cache: BlockCache, idents: Sequence[Hashable], futures: list[Future[bytes]], cuts: list[int]):
        self.cache = cache
        self.idents = idents
        self.futures = futures
        self.cuts = cuts  # where each block ends in the run's buffer
        self.done = 0  # blocks handed out so far
        self.buffer: memoryview | None = None

    def filled(self, buffer: memoryview, nbytes: int) -> None:
        if self.buffer is None:
            if len(buffer) != self.cuts[-1]:
                return
            self.buffer = buffer
        elif buffer is not self.buffer:
            return
        stop = self.done
        while stop < len(self.cuts) and self.cuts[stop] <= nbytes:
            stop += 1
        if stop > self.done:
            self._hand_out(buffer, stop)

    def _hand_out(self, buffer: memoryview, stop: int) -> None:
        lo = self.cuts[self.done - 1] if self.done else 0
        blocks = []
        for i in range(self.done, stop):
            blocks.append(buffer[lo : self.cuts[i]])
            lo = self.cuts[i]
        self.cache.fulfil(self.idents[self.done : stop], blocks, self.futures[self.done : stop])
        self.done = stop

    def finish(self, data: memoryview) -> None:
        """The whole body is in ``data``: hand out the blocks not handed out yet (no copy per block)."""
        if self.done < len(self.cuts):
            self._hand_out(data, len(self.cuts))

    def fail(self, exc: BaseException, remember: bool) -> None:
        if self.done < len(self.cuts):
            self.cache.fail(self.idents[self.done :], self.futures[self.done :], exc, remember=remember)
            self.done = len(self.cuts)


class ObjectReader:
    """One open object version: ``read(offset, length)`` answers from cache, fetching what is missing."""

    def __init__(self, cache: BlockCache, pool: Executor, fetch: RangeFetch, ident: tuple[str, str], size: int,
                 block_size: int = 2**20, max_window: int = 64 * 2**20, run_size: int = 8 * 2**20,
                 origin: int = 0, budget: MemoryBudget | None = None,
                 interrupted: Callable[[], bool] | None = None, demand: Executor | None = None,
                 tuning: StreamTuning | None = None, progressive: bool = False, start_bytes: int = 0):
        """``progressive``: ``fetch`` fills its answer through the store's body reads on the calling
        thread (``storage.progress``), so blocks can be served before the whole run is in.
        ``start_bytes``: a stream from the object's byte 0 fetches that many bytes at once (at most a
        run; ``START_BYTES`` suits a raw object, whose bytes cost only their transfer)."""
        self.start_bytes = start_bytes
        if not 0 <= origin < block_size:
            raise ValueError(f"origin {origin} must lie within the first block ({block_size} bytes)")
        self.origin = origin
        self.budget = budget
        self.interrupted = interrupted if demand is not None else None
        self.demand = demand
        self._held = 0  # bytes reserved ahead in ``budget`` for blocks this stream has not reached
        self.cache = cache
        self.pool = pool
        self.fetch = fetch
        self.ident = ident
        self.size = size
        self.block_size = block_size
        self.max_window_blocks = max(1, max_window // block_size)
        self.run_blocks = max(1, run_size // block_size)
        #: sizes runs and the window from this stream's fetches (``tuning``); None: the fixed sizes above
        self.tuning = tuning
        self.progressive = progressive
        self._lock = threading.Lock()
        self._next_offset = -1
        self._streak = 0
        self._prefetched_to = 0  # block index up to which prefetch was scheduled (exclusive)
        self._stream_start = 0  # first block of the current sequential stream
        #: the stream began in the file's first block and has left no gap since: a whole-file read
        self._from_start = False
        self._reads = 0  # READs in the current stream
        #: the current stream: a seek or close starts another, and runs planned for an earlier one
        #: and still queued are not fetched (their reservation went with that stream)
        self._stream = 0
        #: a stream this long (bytes) releases the blocks it has passed. At most a quarter of the
        #: cache: under memory pressure the LRU drops the oldest-*used* blocks first, and blocks the
        #: reader just passed are newer than those fetched ahead and not read yet. With --cache-size
        #: 64M and a 128 MiB threshold a cold sequential read lost its read-ahead that way and read
        #: on, one 256 KiB GET per kernel READ (7 s for 256 MiB on loopback instead of 1)
        self.release_after = max(self.run_blocks * block_size, min(max_window, cache.capacity // 4))

    # --- blocks ------------------------------------------------------------------------------
    def _block_id(self, index: int) -> tuple[str, str, int]:
        return (*self.ident, index)

    def _fetch_run(self, first: int, count: int, every_stretch: bool = False, demand: bool = False) -> None:
        """Fetch blocks [first, first+count) that nobody else has: one ranged GET per unclaimed
        stretch (only the first stretch unless ``every_stretch``). ``demand``: a reader waits for it,
        so its failure is answered again for a while (``BlockCache.failure``); a read-ahead's is not
        (a reader then asks for itself: a transient fault ahead of it must not fail its read).
        With ``progressive``, each block goes to the cache as soon as the GET's body has passed it
        (``ArrivingRun``): a reader waiting on a run's first block does not wait for its last."""
        ids = [self._block_id(i) for i in range(first, first + count)]
        while ids:
            skip, futures = self.cache.claim(ids)
            if not futures:
                return
            first += skip
            claimed = ids[skip : skip + len(futures)]
            start, end = self._span(first, first + len(futures))
            cuts = [self._span(i, i + 1)[1] - start for i in range(first, first + len(futures))]
            arriving = ArrivingRun(self.cache, claimed, futures, cuts)
            began = time.monotonic()
            try:
                if self.progressive:
                    with progress.reporting(arriving.filled):
                        data = self.fetch(start, end)
                else:
                    data = self.fetch(start, end)
            except BaseException as exc:
                arriving.fail(exc, remember=demand)
                raise
            if self.tuning is not None:
                self.tuning.observe(end - start, time.monotonic() - began)
            arriving.finish(memoryview(data))
            if not every_stretch:
                return
            first += len(futures)
            ids = ids[skip + len(futures):]

    def _background_run(self, first: int, count: int, stream: int = 0) -> None:
        with self._lock:  # blocks the stream has passed (and released) while this run waited
            if stream != self._stream:
                return  # planned for a stream since abandoned (a seek, the file closed): fetched for nobody
            passed = max(0, self._stream_start - first)
        first, count = first + passed, count - passed
        if count <= 0:
            return
        try:  # every stretch: a run cut at a block cached earlier (a row read before) must not
            # leave the rest of its blocks to be read on demand, one GET of a block per kernel READ
            self._fetch_run(first, count, every_stretch=True)
        except Exception as exc:  # the reader that needs the block will see the error itself
            log.debug("prefetch of %s blocks %d+%d failed: %s", self.ident[0], first, count, exc)

    def _span(self, first: int, stop: int) -> tuple[int, int]:
        """The object's bytes [start, end) that blocks [first, stop) hold."""
        return (max(0, first * self.block_size - self.origin),
                min(self.size, stop * self.block_size - self.origin))

    def _block(self, index: int) -> bytes:
        ident = self._block_id(index)

        def fetch() -> bytes:
            try:
                return self.fetch(*self._span(index, index + 1))
            except BaseException as exc:
                self.cache.note_failure([ident], exc)
                raise

        block = self.cache.get(ident)
        if block is not None:
            return block
        pending = self.cache.waiting(ident)
        if pending is not None:
            began = time.monotonic()
            try:
                return pending.result() if self.interrupted is None else wait_interruptibly(pending, self.interrupted)
            except InterruptedError:
                raise
            except Exception as exc:
                # that fetch failed: ask ourselves (a quick fault ahead of the reader must not fail its
                # read), unless this reader already waited out a long failure (a stalled body): then
                # it is the reader's failure, answered again for a while to the kernel's retry
                if time.monotonic() - began >= LONG_WAIT and isinstance(exc, OSError):
                    self.cache.note_failure([ident], exc)
                    raise
        self._raise_recent_failure(index)
        if self.interrupted is None:
            return self.cache.get_or_fetch(ident, fetch)
        return self._wait(self.cache.get_or_fetch, ident, fetch)

    def _raise_recent_failure(self, index: int) -> None:
        """Raise the error a fetch of block ``index`` failed with moments ago (``BlockCache.failure``)."""
        exc = self.cache.failure(self._block_id(index))
        if exc is not None:
            raise exc

    def _wait(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the demand pool, waited for interruptibly."""
        assert self.demand is not None and self.interrupted is not None
        return wait_interruptibly(self.demand.submit(fn, *args), self.interrupted)

    def seed(self, data: memoryview | bytes) -> bool:
        """Take ``data``, the object's first bytes fetched by someone else (a lookup, with the
        metadata), as block 0 if it covers that block; True if the block is now cached from it."""
        start, end = self._span(0, 1)
        if len(data) < end or end <= start:
            return False
        ident = self._block_id(0)
        skip, futures = self.cache.claim([ident])
        if skip or not futures:
            return False  # cached or being fetched already
        self.cache.fulfil([ident], [memoryview(data)[:end]], futures)
        return True

    # --- prefetch ----------------------------------------------------------------------------
    def _plan_prefetch(self, offset: int, end: int) -> tuple[list[tuple[int, int, int]], range]:
        """Update the streak for a read of the file's bytes [offset, end); return the runs to fetch
        ahead and the blocks the stream has passed and no longer needs cached.

        The window is twice the bytes read sequentially so far (capped): a stream earns its
        read-ahead, so a few kernel read-ahead requests after a random access cost little, while
        a long sequential read soon keeps ``max_window`` bytes in flight.
        """
        last_block = (end - 1) // self.block_size
        total_blocks = -(-(self.size + self.origin) // self.block_size)
        max_window_blocks, run_blocks = self._geometry()
        with self._lock:
            # the kernel keeps several read-ahead requests in flight and they arrive out of order:
            # anything inside the window around the stream's front continues the stream
            slack = max(4 * self.block_size, 2 * (end - offset), min(self._streak, max_window_blocks
                                                                      * self.block_size))
            sequential = self._next_offset >= 0 and abs(offset - self._next_offset) <= slack
            if sequential:
                # the kernel's read-ahead READs arrive out of order (handled by several libfuse
                # threads): one up to two READs past the front leaves no gap yet
                self._from_start = self._from_start and offset <= self._next_offset + 2 * (end - offset)
                self._reads += 1
                self._streak += end - offset
                self._next_offset = max(self._next_offset, end)
            else:
                self._streak = end - offset
                self._prefetched_to = last_block + 1
                self._next_offset = end
                self._stream_start = offset // self.block_size
                self._from_start = offset == self.origin  # the object's byte 0
                self._reads = 1
                self._stream += 1
                self._hold_ahead(0)
                return self._start_run(total_blocks), range(0)
            passed = range(0)
            if self._streak >= self.release_after:
                # keep a margin behind the front for kernel requests still arriving out of order
                margin = max(4 * (end - offset), run_blocks * self.block_size)
                behind = max(0, offset - margin) // self.block_size
                passed = range(self._stream_start, behind)
                self._stream_start = max(self._stream_start, behind)
            window = min(max_window_blocks, -(-2 * self._streak // self.block_size))
            if self._streak >= SURE_STREAK or (self._from_start and self._reads >= START_READS):
                window = max_window_blocks  # a scan beyond doubt: the whole window at once
            start = max(self._prefetched_to, last_block + 1)
            stop = min(total_blocks, last_block + 1 + window)
            run = min(run_blocks, window)
            front = (self._next_offset - 1) // self.block_size + 1  # first block the stream has not read
            self._hold_ahead(max(0, self._prefetched_to - front) * self.block_size)
            if stop - start < run and stop < total_blocks:
                return [], passed  # wait until a whole run is due: fewer, larger GETs
            runs = []
            for first in range(start, stop, run):
                count = min(run, stop - first)
                if self.budget is not None and not self.budget.reserve_ahead(count * self.block_size):
                    break  # no room until use: read on demand beyond this point
                self._held += count * self.block_size if self.budget is not None else 0
                runs.append((first, count, self._stream))
                self._prefetched_to = max(self._prefetched_to, first + count)
        return runs, passed

    def _start_run(self, total_blocks: int) -> list[tuple[int, int, int]]:
        """A new stream's run: the rest of its first ``start_bytes`` (at most a run) if it starts at the
        object's byte 0 (``_from_start``), else none; lock held."""
        if not self._from_start or not self.start_bytes:
            return []
        start = self._prefetched_to
        stop = min(total_blocks, -(-(self.start_bytes + self.origin) // self.block_size),
                   start + self._geometry()[1])
        nbytes = (stop - start) * self.block_size
        if stop <= start or (self.budget is not None and not self.budget.reserve_ahead(nbytes)):
            return []
        self._held += nbytes if self.budget is not None else 0
        self._prefetched_to = stop
        return [(start, stop - start, self._stream)]

    def _geometry(self) -> tuple[int, int]:
        """(window, run) in blocks: the tuning's plan, or the fixed sizes."""
        if self.tuning is None:
            return self.max_window_blocks, self.run_blocks
        plan = self.tuning.plan
        return max(1, plan.window // self.block_size), max(1, plan.run // self.block_size)

    def _hold_ahead(self, nbytes: int) -> None:
        """Keep ``nbytes`` reserved ahead (fewer once the stream passed blocks); lock held."""
        if self.budget is not None and nbytes < self._held:
            self.budget.release_ahead(self._held - nbytes)
            self._held = nbytes

    def close(self) -> None:
        """The file is closed: what was reserved ahead for it is free for other readers."""
        with self._lock:
            self._stream += 1
            self._hold_ahead(0)
        plan = self.tuning.plan if self.tuning is not None else None
        if plan is not None and plan.latency is not None and plan.throughput is not None:
            log.debug("%s: first byte %.1f ms, %.0f MB/s per connection: runs of %d MiB, %d MiB ahead",
                      self.ident[0], plan.latency * 1000, plan.throughput / 1e6, plan.run >> 20, plan.window >> 20)

    # --- the read ----------------------------------------------------------------------------
    def read_pieces(self, offset: int, length: int) -> list[memoryview | bytes]:
        """The object's bytes [offset, offset+length) as views of cached blocks, in order (no copy)."""
        end = min(self.size, offset + length)
        if offset >= end:
            return []
        first, last = (offset + self.origin) // self.block_size, (end + self.origin - 1) // self.block_size
        runs, passed = self._plan_prefetch(offset + self.origin, end + self.origin)
        for run in runs:
            self.pool.submit(self._background_run, *run)
        if passed:
            self.cache.discard([self._block_id(i) for i in passed])
        if first == last:  # the usual READ: one block, already cached (one lock, no fetch logic)
            block = self.cache.get(self._block_id(first))
            if block is not None:
                return [self._piece(first, block, offset, end)]
        missing = [i for i in range(first, last + 1) if not self.cache.contains(self._block_id(i))]
        for index in missing:  # failed moments ago: the kernel asking again is answered at once
            self._raise_recent_failure(index)
        if missing:  # what is needed now and nobody is fetching: one GET per stretch
            if self.interrupted is None:
                self._fetch_run(missing[0], missing[-1] - missing[0] + 1, every_stretch=True, demand=True)
            else:
                self._wait(self._fetch_run, missing[0], missing[-1] - missing[0] + 1, True, True)
        return [self._piece(index, self._block(index), offset, end) for index in range(first, last + 1)]

    def _piece(self, index: int, block: bytes, offset: int, end: int) -> memoryview | bytes:
        """The part of block ``index`` inside the object's bytes [offset, end), as a view."""
        base = max(0, index * self.block_size - self.origin)  # where the block starts in the object
        lo, hi = max(offset, base) - base, min(end, base + len(block)) - base
        return block if lo == 0 and hi == len(block) else block[lo:hi]

    def read(self, offset: int, length: int) -> bytes:
        return joined(self.read_pieces(offset, length))


def joined(pieces: list[memoryview | bytes]) -> bytes:
    """``read_pieces``' answer as one buffer (a copy only when there are several pieces)."""
    if len(pieces) == 1:
        return pieces[0]
    return b"".join(pieces)
