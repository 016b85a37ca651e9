"""Arrays decoded whole, kept block by block in the persistent disk tier (``cache.disk.KeptDecoded``),
without a kernel: every block is written even through a queue far smaller than the array (the keeper
waits for room, it never drops), the first block last (so ``kept`` means whole), once per process;
an array larger than the folder's room is not kept; a ``DecodedOnDisk`` of the same geometry then
reads it without decoding."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from cottoncandy.cache.disk import HEADER, DecodedOnDisk, DiskBlockStore, KeptDecoded

BLOCK = 4096
DECODED_BYTES = bytes(range(251)) * 400  # 100,400 bytes: 25 blocks, the first cut short by the origin
IDENT = "s3 http://e b\0k"
ORIGIN = 128  # a .npy header's length: blocks are cut where the file's are


def read(offset: int, length: int) -> bytes:
    return DECODED_BYTES[offset : offset + length]


def wait_kept(keeper: KeptDecoded, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not keeper.kept():
        assert time.monotonic() < deadline, "not kept in time"
        time.sleep(0.02)


def test_every_block_is_kept_through_a_small_queue_and_read_without_decoding(tmp_path: Path) -> None:
    store = DiskBlockStore(tmp_path, 2**20, queue_bytes=BLOCK, wait_for_room=0.0)  # one block queued at most
    keeper = KeptDecoded(store, IDENT, "e1", len(DECODED_BYTES), BLOCK, ORIGIN)
    assert not keeper.kept()
    assert keeper.start(read, "s3://b/k")
    assert not keeper.start(read, "s3://b/k")  # being kept: once
    wait_kept(keeper)
    store.flush()
    assert store.dropped == 0 and store.written == len(keeper.spans) == 25
    store.close()
    again = DiskBlockStore(tmp_path, 2**20)
    asked: list[tuple[int, int]] = []

    def decode(start: int, end: int) -> bytes:
        asked.append((start, end))
        return DECODED_BYTES[start:end]

    reader = DecodedOnDisk(again, IDENT, "e1", decode, lambda n: memoryview(bytearray(n)), BLOCK, ORIGIN)
    assert bytes(reader(0, len(DECODED_BYTES))) == DECODED_BYTES
    assert asked == [] and again.hits == 25
    assert KeptDecoded(again, IDENT, "e1", len(DECODED_BYTES), BLOCK, ORIGIN).kept()
    assert not KeptDecoded(again, IDENT, "e2", len(DECODED_BYTES), BLOCK, ORIGIN).kept()  # another version
    assert not KeptDecoded(again, IDENT, "e1", len(DECODED_BYTES), BLOCK, 0).kept()  # another geometry
    again.close()


def test_the_first_block_is_written_last(tmp_path: Path) -> None:
    store = DiskBlockStore(tmp_path, 2**20)
    keeper = KeptDecoded(store, IDENT, "e1", len(DECODED_BYTES), BLOCK, ORIGIN)
    gate, reached = threading.Event(), threading.Event()

    def slow_read(offset: int, length: int) -> bytes:
        if offset == keeper.spans[-1][0]:  # every block but this one and the first is queued by now
            reached.set()
            gate.wait(10)
        return read(offset, length)

    assert keeper.start(slow_read, "s3://b/k")
    assert reached.wait(10)
    store.flush()
    assert not keeper.kept() and store.written == len(keeper.spans) - 2  # the last and the first wait
    gate.set()
    wait_kept(keeper)
    store.close()


def test_an_array_larger_than_the_folder_is_not_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    size = len(DECODED_BYTES)
    store = DiskBlockStore(tmp_path, size + 25 * HEADER.size - 1)  # one byte short of the array and its headers
    keeper = KeptDecoded(store, IDENT, "e1", size, BLOCK, ORIGIN)
    with caplog.at_level(logging.INFO, logger="cottoncandy.cache.disk"):
        assert not keeper.start(read, "s3://b/k")
    assert any("s3://b/k" in r.getMessage() and "not kept across mounts" in r.getMessage() for r in caplog.records)
    store.flush()
    assert store.written == 0 and not keeper.kept()
    room = DiskBlockStore(tmp_path / "room", size + 25 * HEADER.size, reserved=lambda: 1)  # spills take room too
    assert not KeptDecoded(room, IDENT, "e1", size, BLOCK, ORIGIN).start(read, "s3://b/k")
    room.close()
    store.close()
