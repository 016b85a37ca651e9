"""The read path at the bound (issue 27 item 4), one layer at a time, no server, nothing timed:

* a run's blocks are served as its body arrives: a reader of the run's first block gets it while
  the GET is still reading the rest (``ArrivingRun``, ``storage.progress``);
* a failure midway fails only the blocks not yet arrived;
* a read from the object's byte 0, two kernel READs long without a gap, gets the whole window at
  once (``START_READS``); a stream that starts elsewhere, or leaves a gap, ramps up as before;
* under memory pressure idle pooled buffers are freed before cached blocks are evicted.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cottoncandy.cache.blocks import BlockCache
from cottoncandy.cache.budget import MemoryBudget
from cottoncandy.cache.buffers import BufferPool
from cottoncandy.cache.prefetch import START_READS, ObjectReader
from cottoncandy.storage import progress

BLOCK = 64 * 1024
SIZE = 256 * BLOCK
DATA = (bytes(range(251)) * (SIZE // 251 + 1))[:SIZE]


class SlowBody:
    """A fetch that fills its buffer through ``progress.fill`` a block at a time, waiting after the
    first block until the test lets it go on (the rest of a body still on the wire)."""

    def __init__(self, fail_after_first: bool = False):
        self.first_in = threading.Event()
        self.go_on = threading.Event()
        self.fail_after_first = fail_after_first
        self.fetches: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> memoryview:
        self.fetches.append((start, end))
        buffer = memoryview(bytearray(end - start))
        source = memoryview(DATA)[start:end]
        pos = 0

        def readinto(into: memoryview) -> int:
            nonlocal pos
            if pos >= BLOCK:
                self.first_in.set()
                assert self.go_on.wait(10)
                if self.fail_after_first:
                    raise ConnectionResetError(104, "reset midway")
            n = min(len(into), BLOCK, len(source) - pos)
            into[:n] = source[pos : pos + n]
            pos += n
            return n

        progress.fill(readinto, buffer)
        return buffer


def make_reader(fetch, size: int = SIZE, budget: MemoryBudget | None = None, cache_bytes: int = SIZE,
                progressive: bool = True) -> ObjectReader:
    return ObjectReader(BlockCache(cache_bytes, budget), ThreadPoolExecutor(4), fetch, ("k", "etag"), size,
                        block_size=BLOCK, max_window=64 * BLOCK, run_size=8 * BLOCK, budget=budget,
                        progressive=progressive)


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PIECE", BLOCK)


def test_a_runs_first_block_is_served_before_its_body_ends() -> None:
    body = SlowBody()
    r = make_reader(body)
    run = r.pool.submit(r._fetch_run, 8, 8)  # a read-ahead run: blocks 8..15, one GET
    assert body.first_in.wait(10)  # block 8 is in, the rest is not
    assert r.read(8 * BLOCK, BLOCK) == DATA[8 * BLOCK : 9 * BLOCK]  # served now: the GET is still going
    assert not run.done()
    body.go_on.set()
    run.result(10)
    assert r.read(9 * BLOCK, 7 * BLOCK) == DATA[9 * BLOCK : 16 * BLOCK]
    assert body.fetches[0] == (8 * BLOCK, 16 * BLOCK)  # one GET for the run; the reads' read-ahead aside,
    assert all(start >= 16 * BLOCK for start, _ in body.fetches[1:])  # none of its blocks was fetched again


def test_without_progressive_a_run_is_handed_out_whole() -> None:
    body = SlowBody()
    r = make_reader(body, progressive=False)
    run = r.pool.submit(r._fetch_run, 8, 8)
    assert body.first_in.wait(10)
    assert r.cache.get(r._block_id(8)) is None  # a fetch that is not the store's body reports to nobody
    body.go_on.set()
    run.result(10)
    assert r.cache.get(r._block_id(8)) is not None


def test_a_failure_midway_fails_only_the_blocks_not_arrived() -> None:
    body = SlowBody(fail_after_first=True)
    r = make_reader(body)
    run = r.pool.submit(r._fetch_run, 8, 8)
    assert body.first_in.wait(10)
    body.go_on.set()
    with pytest.raises(ConnectionResetError):
        run.result(10)
    assert r.cache.get(r._block_id(8)) is not None  # arrived: kept
    assert r.cache.get(r._block_id(9)) is None and r.cache.waiting(r._block_id(9)) is None  # free to fetch again


def test_a_report_about_another_buffer_is_ignored() -> None:
    def fetch(start: int, end: int) -> bytes:
        progress.fill(lambda into: len(into), memoryview(bytearray(3)))  # e.g. a small fetch inside the fetch
        return DATA[start:end]

    r = make_reader(fetch)
    r._fetch_run(0, 4)
    assert r.read(0, 4 * BLOCK) == DATA[: 4 * BLOCK]


def planned_runs(r: ObjectReader, reads: list[tuple[int, int]]) -> list[list[tuple[int, int, int]]]:
    return [r._plan_prefetch(offset, offset + length)[0] for offset, length in reads]


def window_blocks(runs: list[tuple[int, int, int]]) -> int:
    return sum(count for _, count, _ in runs)


READ = 2 * BLOCK  # a kernel READ


def test_a_read_from_byte_0_gets_the_whole_window_after_a_few_reads() -> None:
    r = make_reader(lambda start, end: DATA[start:end])
    planned_runs(r, [(i * READ, READ) for i in range(START_READS)])
    assert r._prefetched_to - START_READS * 2 == r.max_window_blocks  # the whole window ahead of the reader


def test_reads_out_of_order_still_count_as_from_byte_0() -> None:
    """The kernel's read-ahead READs, handled by several threads, arrive out of order."""
    r = make_reader(lambda start, end: DATA[start:end])
    order = [0, 1, 3, 2, 4, 6, 5]
    planned_runs(r, [(i * READ, READ) for i in order])
    assert r._prefetched_to >= 2 * len(order) + r.max_window_blocks - 2  # the whole window ahead


def test_a_memmaps_header_read_does_not() -> None:
    """np.load(mmap_mode='r'): one small read() at 0, which the kernel's read-ahead makes 3 READs."""
    r = make_reader(lambda start, end: DATA[start:end])
    planned_runs(r, [(i * READ, READ) for i in range(3)])
    assert r._prefetched_to < 16  # a few blocks ahead, not the window


@pytest.mark.parametrize(("first", "gap"), [(BLOCK, 0), (0, BLOCK)], ids=["elsewhere", "gap"])
def test_other_streams_ramp_up(first: int, gap: int) -> None:
    r = make_reader(lambda start, end: DATA[start:end])
    reads = [(first, READ), *((first + gap + i * READ, READ) for i in range(1, START_READS + 1))]
    planned_runs(r, reads)  # not from byte 0, or a gap of a block after the first READ
    front = (reads[-1][0] + READ) // BLOCK
    assert 0 < r._prefetched_to - front < r.max_window_blocks  # twice the streak, as before


def test_idle_buffers_go_before_cached_blocks() -> None:
    budget = MemoryBudget(16 * BLOCK)
    pool = BufferPool(4 * BLOCK, keep=4, budget=budget)
    cache = BlockCache(16 * BLOCK, budget)
    held = [pool.take(4 * BLOCK) for _ in range(3)]
    del held  # three idle buffers: 12 blocks' worth, charged
    assert pool.idle == 3 and budget.used == 12 * BLOCK
    buffer = pool.take(4 * BLOCK)  # reused: 3 buffers charged, 2 idle
    blocks = [buffer[i * BLOCK : (i + 1) * BLOCK] for i in range(4)]
    cache.fulfil([("k", i) for i in range(4)], blocks, [*(cache.claim([("k", i)])[1][0] for i in range(4))])
    del buffer, blocks
    for i in range(4, 12):  # 8 more blocks, each its own buffer: over the budget
        block = pool.take(BLOCK)
        cache.fulfil([("k", i)], [block], cache.claim([("k", i)])[1])
        del block
    assert pool.idle == 1  # one idle buffer freed: just what the budget needed
    assert all(cache.get(("k", i)) is not None for i in range(12))  # and no block was evicted for them
    assert not budget.over()


def test_a_stream_from_byte_0_fetches_its_first_blocks_at_once() -> None:
    """The first READ at byte 0 plans the rest of the first ``START_BYTES`` as one run (the reader
    fetches the first block itself); a first READ elsewhere plans nothing."""
    from cottoncandy.cache.prefetch import START_BYTES

    r = make_reader(lambda start, end: DATA[start:end])
    r.start_bytes = START_BYTES
    (runs,) = planned_runs(r, [(0, READ)])
    want = min(-(-START_BYTES // BLOCK), READ // BLOCK + r.run_blocks)  # at most a run
    assert runs == [(READ // BLOCK, want - READ // BLOCK, runs[0][2])] and want > READ // BLOCK
    elsewhere = make_reader(lambda start, end: DATA[start:end])
    elsewhere.start_bytes = START_BYTES
    assert planned_runs(elsewhere, [(4 * BLOCK, READ)]) == [[]]
    assert planned_runs(make_reader(lambda start, end: DATA[start:end]), [(0, READ)]) == [[]]  # not asked
