"""A staged file over a compressed stored array (issue 26): nothing is fetched or decoded at open or at
a WRITE; a read decodes only the gzip blocks holding it (a body without blocks: whole, at the first
read or commit); a commit re-encodes the array exactly, with the program's bytes over the base's; what
a commit fetched is kept, so the next commit of the same file fetches nothing again. A counting
wrapper over the S3 store (on the local server) or the memory store says what was asked of it."""

from __future__ import annotations

import errno
import logging
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cottoncandy import waits
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.formats import pgzip
from cottoncandy.formats.npy import npy_header
from cottoncandy.formats.raw import spec_for_body
from cottoncandy.storage.base import ObjectStore
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.writes.commit import commit
from cottoncandy.writes.kinds import Target
from cottoncandy.writes.staged import Base, StagedFile
from cottoncandy.writes.staged_kind import StagedKind
from cottoncandy.writes.staging import StagingArea

BLOCK = 64 * 1024  # the gzip writer's block size in these tests: a 1 MiB array is 16 blocks


class Counting:
    """Every call to the store's reading methods, with the bytes each returned."""

    def __init__(self, inner: ObjectStore):
        self.inner = inner
        self.calls: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        data = self.inner.get_range(key, start, end, if_match)
        self.calls.append(("range", len(data)))
        return data

    def readinto(self, key: str, start: int, buffer: memoryview, if_match: str | None = None) -> None:
        self.inner.readinto(key, start, buffer, if_match)
        self.calls.append(("range", len(buffer)))

    def open_read(self, key: str, if_match: str | None = None) -> Any:
        self.calls.append(("whole", self.inner.head(key).size))
        return self.inner.open_read(key, if_match)

    def download_into(self, key: str, out: memoryview, **kwargs: Any) -> None:
        self.inner.download_into(key, out, **kwargs)
        self.calls.append(("whole", len(out)))

    def fetched(self) -> int:
        return sum(n for _, n in self.calls)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)
    return BLOCK


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    return MemoryStore()


def rows() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 50, size=(1024, 128)).astype("<i8")  # 1 MiB, compressible


def staged_over(store: ObjectStore, key: str, array: np.ndarray, codec: str, tmp_path: Path,
                limit: int = 2**30) -> tuple[StagedFile, Counting, Base]:
    write_raw_array(store, key, array, compression=codec)
    info = store.head(key)
    spec = spec_for_body(info.metadata, info.size, key)
    base = Base(info, npy_header(spec), spec)
    counting = Counting(store)
    staged = StagedFile(StagingArea(tmp_path / "cache", limit), counting, f"{key}.npy", key, base)  # type: ignore[arg-type]
    return staged, counting, base


@pytest.mark.parametrize("codec", ["gzip", "zlib", "bz2", "lzma", "Zstd", "LZ4"])
def test_writes_then_commit_store_the_exact_array(store: ObjectStore, tmp_path: Path, small_blocks: int,
                                                  codec: str) -> None:
    array = rows()
    staged, counting, base = staged_over(store, "a", array, codec, tmp_path)
    h = len(base.header)
    assert counting.calls == []  # opening decodes nothing
    staged.write(h + 8 * 1000, np.int64(-1).tobytes())  # inside one block
    staged.write(h + 300 * 1024 - 4, np.full(3, -2, "<i8").tobytes())  # across a block edge
    assert counting.calls == []  # nor does a WRITE
    expected = array.copy()
    expected.reshape(-1)[1000] = -1
    flat = expected.reshape(-1).view("u1")
    flat[300 * 1024 - 4 : 300 * 1024 + 20] = np.full(3, -2, "<i8").view("u1")
    # a read over the bytes just written sees them, not the base's
    assert staged.read(24, h + 300 * 1024 - 4) == flat[300 * 1024 - 4 : 300 * 1024 + 20].tobytes()
    info = commit(staged, "a", "a.npy")
    assert info.metadata is not None and info.metadata["compression"].lower() == codec.lower()
    np.testing.assert_array_equal(read_raw_array(store, "a"), expected)
    staged.discard()


def test_a_read_decodes_only_the_blocks_holding_it(store: ObjectStore, tmp_path: Path, small_blocks: int) -> None:
    array = rows()
    staged, counting, base = staged_over(store, "b", array, "gzip", tmp_path)
    h = len(base.header)
    got = staged.read(16, h + 5 * BLOCK + 100)
    assert got == array.reshape(-1).view("u1")[5 * BLOCK + 100 : 5 * BLOCK + 116].tobytes()
    body = base.info.size
    # the index (one ranged GET of the header) and one block's compressed bytes; nothing streamed whole
    assert [kind for kind, _ in counting.calls] == ["range", "range"], counting.calls
    assert counting.fetched() < body // 4, (counting.calls, body)
    assert staged.held.total == BLOCK  # that block is kept, decoded
    calls = len(counting.calls)
    staged.read(16, h + 5 * BLOCK + 9000)  # the same block again: from the staged file
    assert len(counting.calls) == calls
    staged.discard()


def test_a_body_without_blocks_is_decoded_whole_once_per_commit(store: ObjectStore, tmp_path: Path) -> None:
    array = rows()
    staged, counting, base = staged_over(store, "c", array, "zlib", tmp_path)
    h = len(base.header)
    staged.write(h, np.int64(7).tobytes())
    commit(staged, "c", "c.npy")
    assert [kind for kind, _ in counting.calls] == ["whole"]  # one streamed decode of the base
    assert staged.held.total == staged.size  # kept: the next commit decodes nothing
    staged.write(h + 8, np.int64(8).tobytes())
    commit(staged, "c", "c.npy")
    assert [kind for kind, _ in counting.calls] == ["whole"]
    expected = array.copy()
    expected.reshape(-1)[:2] = [7, 8]
    np.testing.assert_array_equal(read_raw_array(store, "c"), expected)
    staged.discard()


def test_a_full_budget_still_commits_exactly(store: ObjectStore, tmp_path: Path, small_blocks: int) -> None:
    """The staging budget cannot keep the decoded base: the commit puts it in its buffers only."""
    array = rows()
    staged, counting, base = staged_over(store, "d", array, "gzip", tmp_path, limit=256 * 1024)
    h = len(base.header)
    staged.write(h + 16, np.int64(-9).tobytes())
    commit(staged, "d", "d.npy")
    expected = array.copy()
    expected.reshape(-1)[2] = -9
    np.testing.assert_array_equal(read_raw_array(store, "d"), expected)
    assert staged.area.used <= 256 * 1024
    staged.discard()
    assert staged.area.used == 0


def forge_block_crc(store: ObjectStore, key: str, block: int) -> None:
    """Flip bits of block ``block``'s CRC-32 in ``key``'s index; the blocks stay as written."""
    info = store.head(key)
    body = bytearray(store.get_range(key, 0, info.size))
    count = struct.unpack_from("<I", body, 16 + 9)[0]
    at = pgzip.HEADER_FIXED + 4 * count + 4 * block
    struct.pack_into("<I", body, at, struct.unpack_from("<I", body, at)[0] ^ 0xFF)
    store.put(key, bytes(body), dict(info.metadata or {}))


def test_a_forged_block_crc_falls_back_to_the_whole_decode(tmp_path: Path, small_blocks: int,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    array = rows()
    write_raw_array(store, "e", array, compression="gzip")
    forge_block_crc(store, "e", 3)
    info = store.head("e")
    spec = spec_for_body(info.metadata, info.size, "e")
    base = Base(info, npy_header(spec), spec)
    staged = StagedFile(StagingArea(tmp_path / "cache"), store, "e.npy", "e", base)
    h = len(base.header)
    with caplog.at_level(logging.INFO, logger="cottoncandy.writes"):
        assert staged.read(8, h + 3 * BLOCK) == array.reshape(-1)[3 * BLOCK // 8].tobytes()
    assert any("does not fit its index" in r.getMessage() and "block 3" in r.getMessage() for r in caplog.records)
    staged.write(h, np.int64(1).tobytes())
    commit(staged, "e", "e.npy")
    expected = array.copy()
    expected.reshape(-1)[0] = 1
    np.testing.assert_array_equal(read_raw_array(store, "e"), expected)
    staged.discard()


def test_a_damaged_body_is_eio_naming_the_object(tmp_path: Path) -> None:
    store = MemoryStore()
    write_raw_array(store, "f", rows(), compression="zlib")
    info = store.head("f")
    body = bytearray(store.get("f"))
    body[len(body) // 2] ^= 0xFF
    store.put("f", bytes(body), dict(info.metadata or {}))
    info = store.head("f")
    spec = spec_for_body(info.metadata, info.size, "f")
    staged = StagedFile(StagingArea(tmp_path / "cache"), store, "f.npy", "f", Base(info, npy_header(spec), spec))
    with pytest.raises(OSError) as caught:
        staged.read(8, len(npy_header(spec)) + 4096)
    assert caught.value.errno == errno.EIO and "f" in str(caught.value)
    staged.discard()


def test_commits_of_a_growing_file_fetch_its_start_once(store: ObjectStore, tmp_path: Path) -> None:
    """A loop of commands appending to one descriptor: each commit sends the whole small file, and
    only the first fetches the stored start (then it is kept in the staged file)."""
    store.put("log.txt", b"line 0\n")
    counting = Counting(store)
    staged = StagedFile(StagingArea(tmp_path / "cache"), counting, "log.txt", "log.txt",  # type: ignore[arg-type]
                        Base(store.head("log.txt")))
    for i in range(1, 10):
        staged.write(staged.size, b"line %d\n" % i)
        commit(staged, None, "log.txt")
    assert len(counting.calls) == 1, counting.calls
    assert store.get("log.txt") == b"".join(b"line %d\n" % i for i in range(10))
    staged.discard()


@pytest.mark.parametrize("codec", ["gzip", "zlib", "Zstd"])
def test_a_decode_gives_up_when_its_request_does_and_the_file_goes_on(tmp_path: Path, small_blocks: int,
                                                                     codec: str) -> None:
    """An interrupted FUSE request (``waits``' check says EINTR) stops the decode between pieces; what
    was decoded stays valid and a later read or commit completes the file exactly."""
    store = MemoryStore()
    array = rows()
    staged, _, base = staged_over(store, "i", array, codec, tmp_path)
    h = len(base.header)
    staged.write(h + 8, np.int64(5).tobytes())
    with waits.giving_up(lambda: errno.EINTR), pytest.raises(waits.GaveUp) as caught:
        staged.read(array.nbytes, h)
    assert caught.value.errno == errno.EINTR
    expected = array.copy()
    expected.reshape(-1)[1] = 5
    assert staged.read(array.nbytes, h) == expected.tobytes()
    commit(staged, "i", "i.npy")
    np.testing.assert_array_equal(read_raw_array(store, "i"), expected)
    staged.discard()


def test_the_last_close_is_not_given_up_when_the_mount_stops(tmp_path: Path, small_blocks: int) -> None:
    store = MemoryStore()
    array = rows()
    staged, _, base = staged_over(store, "r", array, "gzip", tmp_path)
    staged.write(len(base.header), np.int64(3).tobytes())
    kind = StagedKind(staged, Target("r.npy", "r.npy", "r", base.info))
    with waits.giving_up(lambda: errno.EIO):  # the daemon is stopping
        assert kind.release() is not None
    expected = array.copy()
    expected.reshape(-1)[0] = 3
    np.testing.assert_array_equal(read_raw_array(store, "r"), expected)


def test_a_body_without_blocks_needs_room_to_be_staged(tmp_path: Path) -> None:
    """A zlib array decodes whole for any range: with the budget too small to hold it, the commit is
    ENOSPC naming the file (decoding it whole again for each piece sent would cost the array's size
    squared), and nothing is stored."""
    store = MemoryStore()
    array = rows()
    staged, _, base = staged_over(store, "z", array, "zlib", tmp_path, limit=256 * 1024)
    before = store.head("z").etag
    staged.write(len(base.header), np.int64(1).tobytes())
    with pytest.raises(OSError) as caught:
        commit(staged, "z", "z.npy")
    assert caught.value.errno == errno.ENOSPC and "z.npy" in str(caught.value)
    assert store.head("z").etag == before
    staged.discard()


def test_a_failed_look_at_the_index_is_asked_again(tmp_path: Path, small_blocks: int) -> None:
    """A store error while reading the gzip index fails that read only; the next read looks again and
    still decodes by block (not the whole body for the rest of the file's life)."""
    array = rows()
    staged, counting, base = staged_over(MemoryStore(), "x", array, "gzip", tmp_path)
    inner = counting.get_range
    failures = [OSError(5, "reset")]

    def flaky(key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        if failures:
            raise failures.pop()
        return inner(key, start, end, if_match)

    counting.get_range = flaky  # type: ignore[method-assign]
    h = len(base.header)
    with pytest.raises(OSError):
        staged.read(8, h + 5 * BLOCK)
    assert staged.read(8, h + 5 * BLOCK) == array.reshape(-1)[5 * BLOCK // 8].tobytes()
    assert "whole" not in [kind for kind, _ in counting.calls]
    staged.discard()
