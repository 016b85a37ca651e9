"""writes.parts: WRITEs packed into whole parts, in buffers reused only once nothing else refers to them
(no server: the pool and the store's part cutter, one layer at a time)."""

from __future__ import annotations

import io

import numpy as np

from cottoncandy.arrays.raw import read_raw_array
from cottoncandy.storage.base import WholePart
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.storage.s3.store import _cut_parts
from cottoncandy.writes.kinds import Target
from cottoncandy.writes.memory import WriteMemory
from cottoncandy.writes.parts import PartBuffers, PartFiller
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.streaming import StreamingFile


def test_writes_of_any_size_become_whole_parts_and_a_rest() -> None:
    filler = PartFiller(PartBuffers(10, most=4))
    body = bytes(range(37))
    parts = []
    for start in range(0, len(body), 7):  # 7-byte WRITEs across 10-byte parts
        parts += [bytes(p) for p in filler.add(body[start : start + 7])]
    rest = filler.rest()
    assert [len(p) for p in parts] == [10, 10, 10]
    assert rest is not None and b"".join(parts) + bytes(rest) == body
    assert filler.rest() is None  # empty after


def test_a_part_is_refilled_only_once_nobody_else_holds_it() -> None:
    buffers = PartBuffers(8, most=3)
    filler = PartFiller(buffers)
    first = next(filler.add(b"a" * 8))
    view = memoryview(first)  # the sender still reading it
    second = next(filler.add(b"b" * 8))
    assert second is not first and bytes(view) == b"a" * 8  # not overwritten while viewed
    second_id = id(second)
    del second  # sent: nobody refers to it any more
    third = next(filler.add(b"c" * 8))
    assert id(third) == second_id and buffers.made == 2  # filled again, no new buffer
    assert bytes(view) == b"a" * 8 and bytes(third) == b"c" * 8
    del view, third
    assert next(filler.add(b"d" * 8)) is not first  # ``first`` is still held here


def test_the_pool_keeps_at_most_most_buffers() -> None:
    buffers = PartBuffers(4, most=2)
    held = [buffers.take() for _ in range(5)]  # all still in use: five made, two kept
    assert buffers.made == 5 and len({id(b) for b in held}) == 5
    del held
    again = [buffers.take(), buffers.take()]
    assert buffers.made == 5 and len({id(b) for b in again}) == 2  # the two kept ones, reused


def test_the_store_sends_a_whole_part_as_it_is_and_copies_anything_else() -> None:
    whole = WholePart(b"x" * 16)
    plain = bytearray(b"y" * 16)
    parts = list(_cut_parts([whole, plain, b"z" * 5], 16))
    assert parts[0] is whole  # handed over: no copy
    assert parts[1] is not plain and bytes(parts[1]) == bytes(plain)
    assert bytes(parts[2]) == b"z" * 5
    # a whole part that does not start a part is cut like any chunk
    shifted = list(_cut_parts([b"ab", WholePart(b"w" * 16)], 16))
    assert [bytes(p) for p in shifted] == [b"ab" + b"w" * 14, b"w" * 2]


def test_a_streamed_file_keeps_none_of_the_bytes_it_is_lent() -> None:
    """The mount lends each WRITE's bytes for the call only (``ccfs.libfuse.Fuse.write``): libfuse
    fills the same buffer with the next request. Here each lent buffer is overwritten right after its
    write: had the writer kept a view of it, the stored array would hold those bytes."""
    array = np.random.default_rng(5).random((700, 1024))  # 5.5 MiB: parts of 1 MiB, and a rest
    out = io.BytesIO()
    np.save(out, array)
    data = out.getvalue()
    store = MemoryStore()
    file = StreamingFile(store, Target("a.npy", "a.npy", "a"), WriteSettings(part_size=2**20), WriteMemory(2**30, 1))
    for start in range(0, len(data), 300_001):  # WRITEs that cross parts
        buffer = bytearray(data[start : start + 300_001])
        lent = memoryview(buffer)
        file.write(start, lent)
        lent.release()
        buffer[:] = b"\xff" * len(buffer)  # libfuse's next request
    info = file.flush()
    assert info is not None and info.key == "a"
    np.testing.assert_array_equal(read_raw_array(store, "a"), array)


def _saved(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _stream(store: MemoryStore, memory: WriteMemory, name: str, data: bytes) -> None:
    file = StreamingFile(store, Target(f"{name}.npy", f"{name}.npy", name), WriteSettings(part_size=2**20), memory)
    for start in range(0, len(data), 2**20):
        file.write(start, data[start : start + 2**20])
    assert file.flush() is not None


def test_files_streamed_one_after_another_fill_the_same_buffers() -> None:
    """The mount's pool: the second file fills the buffers the first one sent, no new ones (each new
    16 MiB buffer costs its pages faulted in and zeroed); both arrays are stored exactly."""
    store, memory = MemoryStore(), WriteMemory(64 * 2**20, 1, keep_idle=3600)
    first, second = (np.random.default_rng(seed).random((1300, 1024)) for seed in (1, 2))  # 10 MiB: 10 parts
    _stream(store, memory, "a", _saved(first))
    pool = memory.part_buffers(2**20, 1)
    made = pool.made
    assert 0 < made <= WriteSettings().parts_per_file
    _stream(store, memory, "b", _saved(second))
    assert pool.made == made  # no buffer made for the second file
    np.testing.assert_array_equal(read_raw_array(store, "a"), first)
    np.testing.assert_array_equal(read_raw_array(store, "b"), second)


def test_a_buffer_one_file_is_filling_is_never_given_to_another() -> None:
    buffers = PartBuffers(8, most=4)
    one, other = PartFiller(buffers), PartFiller(buffers)
    assert list(one.add(b"a" * 5)) == []  # one's part: being filled, held by its filler
    assert list(other.add(b"b" * 5)) == []
    first, second = one.rest(), other.rest()
    assert first is not None and second is not None
    assert bytes(first) == b"a" * 5 and bytes(second) == b"b" * 5 and buffers.made == 2


def test_the_pool_is_emptied_once_no_file_has_written_for_a_while() -> None:
    memory = WriteMemory(64 * 2**20, 1, keep_idle=0)
    pool = memory.part_buffers(2**20, 1)  # the pool the file below fills (taken first: with keep_idle=0
    # the emptying may already have run when the stream returns, and a pool asked for then is a new one)
    _stream(MemoryStore(), memory, "a", _saved(np.zeros((300, 1024))))  # 2.3 MiB: a multipart upload
    assert pool.made >= 1  # the file used this pool
    emptying = memory._emptying
    if emptying is not None:
        emptying.join(10)
    assert pool.kept == 0 and memory.part_buffers(2**20, 1) is not pool  # a new pool for the next file


def test_the_pool_is_kept_while_a_file_takes_memory_meanwhile() -> None:
    memory = WriteMemory(64 * 2**20, 1, keep_idle=3600)
    pool = memory.part_buffers(2**20, 1)
    pool.take()
    memory.take(10, "a")
    memory.give(10)
    takes = memory._takes
    memory.take(10, "b")  # a file came before the timer fired
    memory._empty_if_idle(takes)
    assert pool.kept == 1 and memory.part_buffers(2**20, 1) is pool
    memory.give(10)
    assert memory._emptying is not None
    memory._emptying.cancel()
