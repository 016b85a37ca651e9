"""``cache.inflated`` (read through ``cache.stretches``) with a version 2 index: each block inflated alone is
checked against its CRC-32.

A block whose CRC does not match fails the read that covers it with ``BlockCrcError`` (EIO, naming the
object and the block), aligned or cut inside the block, with nothing from the fallback (which would
hide the damage); reads of other blocks still work, and the budget is credited. No server.
"""

from __future__ import annotations

import dataclasses
import errno

import numpy as np
import pytest

from cottoncandy.cache.budget import MemoryBudget
from cottoncandy.cache.inflated import BlockTable
from cottoncandy.cache.stretches import StretchReader
from cottoncandy.formats import pgzip
from tests.cache.test_inflated import BLOCK, Counting, body_of


@pytest.fixture
def data() -> bytes:
    return (np.random.default_rng(4).integers(0, 20, 5 * BLOCK + 999, dtype=np.uint8)).tobytes()


def test_the_index_carries_each_blocks_crc(data: bytes) -> None:
    _, index = body_of(data)
    assert [b.crc for b in index.blocks] == [pgzip.deflate.crc32(data[b.out_start : b.out_end]) for b in index.blocks]


@pytest.mark.parametrize("span", [(2 * BLOCK, 3 * BLOCK), (BLOCK, 4 * BLOCK), (2 * BLOCK + 5, 2 * BLOCK + 100)],
                         ids=["aligned", "run", "cut"])
def test_a_wrong_crc_fails_that_read_naming_the_object(data: bytes, span: tuple[int, int]) -> None:
    body, index = body_of(data)
    forged = pgzip.Index([dataclasses.replace(b, crc=(b.crc or 0) ^ 1) if i == 2 else b
                          for i, b in enumerate(index.blocks)], index.trailer_at)
    told: list[str] = []
    fallback = Counting(data)
    budget = MemoryBudget(2**30)
    reader = StretchReader(BlockTable(forged, len(data), "s3://bucket/arr"), Counting(body), fallback, told.append,
                           budget=budget)
    with pytest.raises(pgzip.BlockCrcError, match="s3://bucket/arr: gzip block 2 decodes to CRC-32") as caught:
        reader(*span)
    assert caught.value.errno == errno.EIO and isinstance(caught.value, OSError)
    assert bytes(reader(0, 2 * BLOCK)) == data[: 2 * BLOCK]  # the blocks that check out still read
    assert bytes(reader(3 * BLOCK, len(data))) == data[3 * BLOCK :]
    assert told == [] and fallback.calls == [] and not reader.broken
    assert budget.used == 0
