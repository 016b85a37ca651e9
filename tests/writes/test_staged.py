"""Staged files (issue 26 item 3): sparse private files, only read ranges fetched, commits that copy
what did not change; run against every store (the ``store`` fixture: S3 on the local server, local, memory)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.formats.npy import npy_header
from cottoncandy.formats.raw import spec_for_body
from cottoncandy.storage.base import MIN_COMPOSE_PIECE, ObjectStore
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.writes.base_bytes import FETCH_BLOCK
from cottoncandy.writes.commit import Incomplete, commit, plan
from cottoncandy.writes.ranges import RangeSet
from cottoncandy.writes.staged import Base, StagedFile
from cottoncandy.writes.staging import StagingArea

MiB = 2**20


def test_range_set_merges_and_cuts() -> None:
    s = RangeSet()
    assert s.add(0, 10) == 10 and s.add(20, 30) == 10 and s.add(10, 20) == 10
    assert s.runs() == [(0, 30)]
    assert s.remove(5, 8) == 3 and s.runs() == [(0, 5), (8, 30)]
    assert list(s.missing(0, 40)) == [(5, 8), (30, 40)]
    assert s.covered(4, 9) == 2 and s.clip(20) == 10 and s.runs() == [(0, 5), (8, 20)]
    assert s.add(3, 9) == 3 and s.runs() == [(0, 20)]


def test_plan_copies_long_clean_stretches_and_sends_changed_parts() -> None:
    size = 1024 * MiB
    dirty = RangeSet([(100 * MiB, 100 * MiB + 8_000_000)])
    pieces = plan(size, dirty, 16 * MiB)
    sent = sum(b - a for kind, a, b in pieces if kind == "send")
    assert sent == 8_000_000  # the changed stretch alone: longer than a part's least size
    assert pieces[0] == ("copy", 0, 100 * MiB)
    assert [p[0] for p in pieces] == ["copy", "send", "copy"]
    assert pieces[-1][2] == size and all(b - a >= MIN_COMPOSE_PIECE for _, a, b in pieces[:-1])
    assert all(pieces[i][2] == pieces[i + 1][1] for i in range(len(pieces) - 1))
    # a short clean gap between changes is sent with them; a new file is sent whole in parts
    near = plan(64 * MiB, RangeSet([(0, MiB), (3 * MiB, 4 * MiB)]), 16 * MiB)
    assert near == [("send", 0, 5 * MiB), ("copy", 5 * MiB, 64 * MiB)]
    assert plan(40 * MiB, RangeSet([(0, 40 * MiB)]), 16 * MiB) == [
        ("send", 0, 16 * MiB), ("send", 16 * MiB, 32 * MiB), ("send", 32 * MiB, 40 * MiB)]
    assert plan(36 * MiB, RangeSet([(0, 36 * MiB)]), 16 * MiB) == [
        ("send", 0, 16 * MiB), ("send", 16 * MiB, 36 * MiB)]
    assert plan(3, RangeSet([(0, 3)]), 16 * MiB) == [("send", 0, 3)]
    # a change at the very end: the last piece may be short (an append sends only what it added)
    tail = plan(30 * MiB, RangeSet([(30 * MiB - 10, 30 * MiB)]), 16 * MiB)
    assert tail == [("copy", 0, 30 * MiB - 10), ("send", 30 * MiB - 10, 30 * MiB)]


def test_staging_is_private_and_capped(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "cache", limit=MiB)
    assert stat.S_IMODE(os.stat(area.folder).st_mode) == 0o700
    staged = StagedFile(area, MemoryStore(), "a.bin", "a.bin")
    assert stat.S_IMODE(os.stat(staged.file).st_mode) == 0o600
    staged.write(10 * MiB, b"x" * 1000)  # a hole of 10 MiB costs nothing
    assert staged.size == 10 * MiB + 1000 and area.used == 1000
    assert os.stat(staged.file).st_blocks * 512 < MiB
    with pytest.raises(OSError) as refused:
        staged.write(0, bytes(MiB))
    assert refused.value.errno == errno.ENOSPC and area.used == 1000
    assert staged.read(4, 10 * MiB - 2) == b"\0\0xx"
    staged.truncate(5)
    assert area.used == 0 and staged.size == 5
    staged.discard()
    assert area.used == 0 and not staged.file.exists()


def _array_base(store: ObjectStore, key: str, array: np.ndarray, compression: object = False) -> Base:
    write_raw_array(store, key, array, compression=compression)
    info = store.head(key)
    spec = spec_for_body(info.metadata, info.size, key)
    return Base(info, npy_header(spec), spec)


def test_open_memmap_pattern_commits_a_raw_array(tmp_path: Path) -> None:
    """open_memmap: header, close (incomplete: not stored), reopen, 1 byte at the end, pages out of order, fsync."""
    store = MemoryStore()
    area = StagingArea(None)
    array = np.arange(300_000, dtype="<f8").reshape(1000, 300)
    header = npy_header(spec_for_body({"dtype": "<f8", "shape": "1000,300", "compression": "False"}, array.nbytes, "x"))
    staged = StagedFile(area, store, "d/x.npy", "d/x")
    staged.write(0, header)
    with pytest.raises(Incomplete):
        commit(staged, "d/x", "d/x.npy")
    assert not store.exists("d/x")
    staged.write(len(header) + array.nbytes - 1, b"\0")
    body = array.tobytes()
    pages = list(range(0, len(body), 4096))
    for start in pages[1::2] + pages[0::2]:  # out of order
        staged.write(len(header) + start, body[start : start + 4096])
    info = commit(staged, "d/x", "d/x.npy")
    assert info.key == "d/x" and info.metadata is not None and info.metadata["dtype"] == "<f8"
    np.testing.assert_array_equal(read_raw_array(store, "d/x"), array)
    staged.discard()
    area.close()
    assert not area.folder.exists()


def test_row_updates_send_only_the_changed_parts(store: ObjectStore, tmp_path: Path) -> None:
    """r+ of a 40 MiB array: only the touched range is read; the commit copies the rest."""
    rows = np.random.default_rng(1).random((40 * 128, 1024 // 8 * 8))  # 40 MiB, 8 KiB rows
    base = _array_base(store, "big", rows)
    area = StagingArea(tmp_path / "cache")
    staged = StagedFile(area, store, "big.npy", "big", base)
    assert staged.size == len(base.header) + rows.nbytes
    h = len(base.header)
    assert staged.read(h, 0) == base.header and staged.fetched <= FETCH_BLOCK  # one aligned block
    row = 8 * 1024
    new = np.full((100, 1024), 7.0)
    staged.write(h + 2000 * row, new.tobytes())  # 100 rows, ~800 KB
    got = staged.read(16, h + 3000 * row)  # a read fetches one aligned block, not the object
    assert got == rows[3000, :2].tobytes() and staged.fetched <= 2 * FETCH_BLOCK
    info = commit(staged, "big", "big.npy")
    expected = rows.copy()
    expected[2000:2100] = 7.0
    np.testing.assert_array_equal(read_raw_array(store, "big"), expected)
    assert info.etag == store.head("big").etag
    # a second commit after more changes copies from the version just stored
    staged.write(h, np.zeros(1024).tobytes())
    commit(staged, "big", "big.npy")
    expected[0] = 0
    np.testing.assert_array_equal(read_raw_array(store, "big"), expected)
    staged.discard()


def test_reshaped_header_moves_the_data_and_still_copies(tmp_path: Path) -> None:
    store = MemoryStore()
    array = np.arange(12 * MiB // 8, dtype="<f8")
    base = _array_base(store, "v", array)
    staged = StagedFile(StagingArea(tmp_path / "c"), store, "v.npy", "v", base)
    reshaped = npy_header(spec_for_body({"dtype": "<f8", "shape": f"{array.size // 1024},1024",
                                         "compression": "False"}, array.nbytes, "v"))
    assert len(reshaped) == len(base.header)
    staged.write(0, reshaped)
    commit(staged, "v", "v.npy")
    np.testing.assert_array_equal(read_raw_array(store, "v"), array.reshape(-1, 1024))


def test_compressed_array_is_fetched_whole_and_reencoded(tmp_path: Path) -> None:
    store = MemoryStore()
    array = np.arange(10_000, dtype="<i4")
    base = _array_base(store, "z", array, compression="gzip")
    staged = StagedFile(StagingArea(tmp_path / "c"), store, "z.npy", "z", base)
    h = len(base.header)
    staged.write(h + 4 * 10, np.int32(-5).tobytes())
    info = commit(staged, "z", "z.npy")
    assert info.metadata is not None and info.metadata["compression"] == "gzip"
    expected = array.copy()
    expected[10] = -5
    np.testing.assert_array_equal(read_raw_array(store, "z"), expected)


def test_plain_file_append_and_truncate(store: ObjectStore, tmp_path: Path) -> None:
    store.put("t.csv", b"a,b\n1,2\n")
    base = Base(store.head("t.csv"))
    staged = StagedFile(StagingArea(tmp_path / "c"), store, "t.csv", "t.csv", base)
    staged.write(staged.size, b"3,4\n")
    commit(staged, None, "t.csv")
    assert store.get("t.csv") == b"a,b\n1,2\n3,4\n"
    staged.truncate(4)
    staged.truncate(6)
    commit(staged, None, "t.csv")
    assert store.get("t.csv") == b"a,b\n\0\0"


def test_a_replaced_version_is_estale_and_stores_nothing(tmp_path: Path) -> None:
    """Copies and reads are pinned to the version seen at open: another writer's version in between
    makes the commit fail with ESTALE, and the other writer's object stays."""
    store = MemoryStore()
    store.put("r.bin", bytes(12 * MiB))
    staged = StagedFile(StagingArea(tmp_path / "c"), store, "r.bin", "r.bin", Base(store.head("r.bin")))
    staged.write(0, b"mine")
    store.put("r.bin", b"theirs" * (2 * MiB))
    with pytest.raises(OSError) as caught:
        commit(staged, None, "r.bin")
    assert caught.value.errno == errno.ESTALE and store.get("r.bin") == b"theirs" * (2 * MiB)


def test_files_a_dead_daemon_staged_are_removed(tmp_path: Path) -> None:
    folder = StagingArea(tmp_path / "cache").folder
    dead = folder / "staged-999999999-1"  # no such process
    dead.write_bytes(b"x")
    mine = StagingArea(tmp_path / "cache").create()
    os.close(mine[0])
    StagingArea(tmp_path / "cache")
    assert not dead.exists() and mine[1].exists()
