"""Read-ahead runs around blocks cached earlier (a row read before the scan): a run fetches every
stretch it claimed, so the blocks after a cached one are not left to be read on demand, one GET per
kernel READ (measured: an mmap mean after three row reads took 2.3 s instead of 0.5 s remote-like).
A counting fetch, no server; the run is called directly, so nothing here is timed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cottoncandy.cache.blocks import BlockCache
from cottoncandy.cache.prefetch import SURE_STREAK, ObjectReader

BLOCK = 4096
SIZE = 64 * BLOCK
DATA = bytes(i % 251 for i in range(SIZE))


def reader(fetches: list[tuple[int, int]]) -> ObjectReader:
    def fetch(start: int, end: int) -> bytes:
        fetches.append((start, end))
        return DATA[start:end]

    return ObjectReader(BlockCache(SIZE), ThreadPoolExecutor(2), fetch, ("k", "etag"), SIZE, block_size=BLOCK,
                        max_window=16 * BLOCK, run_size=8 * BLOCK)


def test_a_run_cut_at_a_cached_block_fetches_the_rest_too() -> None:
    fetches: list[tuple[int, int]] = []
    r = reader(fetches)
    r._fetch_run(20, 1)  # a row read first (by this or another reader of the version): block 20 cached
    fetches.clear()
    r._background_run(16, 8, r._stream)  # a read-ahead run over blocks 16..23
    assert fetches == [(16 * BLOCK, 20 * BLOCK), (21 * BLOCK, 24 * BLOCK)]  # both stretches, block 20 not again
    fetches.clear()
    assert r.read(21 * BLOCK, 3 * BLOCK) == DATA[21 * BLOCK:24 * BLOCK]
    assert fetches == []  # answered from what the run fetched


def test_a_sure_scan_is_a_few_mib() -> None:
    assert 2**20 < SURE_STREAK <= 8 * 2**20  # beyond a random row's kernel read-ahead, below a scan's first runs
