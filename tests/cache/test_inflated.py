"""``cache.inflated`` read through ``cache.stretches``: decoded bytes of an indexed gzip body by block, with a
counting fetch (no server)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cottoncandy.cache.budget import MemoryBudget
from cottoncandy.cache.inflated import BlockTable, Indexes
from cottoncandy.cache.stretches import StretchReader
from cottoncandy.formats import pgzip

BLOCK = 2**16


def body_of(data: bytes, block: int = BLOCK) -> tuple[bytes, pgzip.Index]:
    with ThreadPoolExecutor(2) as pool:
        gz = pgzip.ParallelGzip(memoryview(data), pool, block_size=block)
        pieces = list(gz.chunks())
    body = gz.header() + b"".join(pieces)
    count = pgzip.block_count(len(data), block)
    return body, pgzip.parse_index(body[: pgzip.header_size(count)], block, count, len(data), len(body))


class Counting:
    def __init__(self, body: bytes):
        self.body, self.calls = body, []  # type: ignore[var-annotated]

    def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        return self.body[start:end]


@pytest.fixture
def data() -> bytes:
    return (np.random.default_rng(2).integers(0, 20, 5 * BLOCK + 1234, dtype=np.uint8)).tobytes()


def test_a_run_is_one_fetch_and_inflates_only_its_blocks(data: bytes) -> None:
    body, index = body_of(data)
    fetch, budget = Counting(body), MemoryBudget(2**30)
    reader = StretchReader(BlockTable(index, len(data)), fetch, lambda a, b: b"", lambda why: None, budget=budget)
    assert bytes(reader(BLOCK, 3 * BLOCK)) == data[BLOCK : 3 * BLOCK]
    assert fetch.calls == [(index.blocks[1].start, index.blocks[2].end)] and reader.inflated == 2
    assert bytes(reader(5 * BLOCK, len(data))) == data[5 * BLOCK :]  # the short last block
    assert bytes(reader(BLOCK + 5, 2 * BLOCK + 9)) == data[BLOCK + 5 : 2 * BLOCK + 9]  # cut inside blocks
    assert budget.used == 0  # compressed bytes in flight were charged, then credited


def test_block_zero_comes_from_the_first_bytes(data: bytes) -> None:
    body, index = body_of(data)
    fetch = Counting(body)
    reader = StretchReader(BlockTable(index, len(data)), fetch, lambda a, b: b"", lambda why: None,
                           first=body[: index.blocks[0].end + 10])
    assert bytes(reader(0, BLOCK)) == data[:BLOCK] and fetch.calls == []
    assert bytes(reader(0, BLOCK)) == data[:BLOCK] and len(fetch.calls) == 1  # used once only


def test_a_block_that_does_not_fit_sends_every_read_to_the_fallback(data: bytes) -> None:
    body, index = body_of(data)
    forged = pgzip.Index([pgzip.Block(b.start + (7 if i == 1 else 0), b.end, b.out_start, b.out_end)
                          for i, b in enumerate(index.blocks)], index.trailer_at)
    told: list[str] = []
    fallback = Counting(data)
    reader = StretchReader(BlockTable(forged, len(data)), Counting(body), fallback, told.append)
    assert bytes(reader(BLOCK, 2 * BLOCK)) == data[BLOCK : 2 * BLOCK]
    assert bytes(reader(0, BLOCK)) == data[:BLOCK]  # block 0 is sound, but the fetch no longer trusts the index
    assert len(told) == 1 and fallback.calls == [(BLOCK, 2 * BLOCK), (0, BLOCK)]


def test_indexes_are_read_once_per_version() -> None:
    loads: list[int] = []
    indexes = Indexes(max_blocks=4)

    def load() -> None:
        loads.append(1)

    assert indexes.get(("k", "e1"), load) is None and indexes.get(("k", "e1"), load) is None
    assert len(loads) == 1  # no index is remembered too
