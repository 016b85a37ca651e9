"""The mount ends with files still open for writing (issue 26 item 4's unmount gap), without a kernel:
``writes.recovery.settle`` stores a staged file's changes at unmount, keeps it under ``--cache-dir`` when
the store refuses, and ``recover`` stores it at the next mount, never over another writer's newer
version, with the codec decided when it was staged; a kept manifest is untrusted input. The unmount's
bound is driven by a test clock (``HeldClock``), never raced against the wall clock."""

from __future__ import annotations

import errno
import functools
import io
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.formats.keys import INDEX_KEY
from cottoncandy.storage.base import ObjectInfo, Piece
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.writes import recovery
from cottoncandy.writes.recovery import Kept

MiB = 2**20
ROWS = np.arange(MiB // 8, dtype="<f8").reshape(-1, 128)  # 1 MiB of 1 KiB rows
HEADER = 128


class RefusingStore(MemoryStore):
    """A memory store whose writes can be refused (EACCES), as a bucket policy would, or held until
    ``go`` is set (a commit slower than the unmount's bound). ``compose`` is a staged commit of a raw
    file, ``put`` an encoded one (``put_chunks`` spools to it)."""

    refuse = False
    go: threading.Event | None = None

    def _gate(self, key: str) -> None:
        if self.go is not None:
            self.go.wait(30)
        if self.refuse:
            raise PermissionError(errno.EACCES, f"permission denied to write {key}")

    def compose(self, key: str, pieces: Iterable[Piece], metadata: Any = None, acl: str | None = None, *,
                condition: Any = None, in_flight: int | None = None) -> ObjectInfo:
        self._gate(key)
        return super().compose(key, pieces, metadata, acl, condition=condition, in_flight=in_flight)

    def put(self, key: str, data: Any, metadata: Any = None, acl: str | None = None, progress: Any = None, *,
            condition: Any = None) -> ObjectInfo:
        self._gate(key)
        return super().put(key, data, metadata, acl, progress, condition=condition)


class HeldClock:
    """The unmount's clock (``recovery.UnmountClock``) for a commit held on ``RefusingStore.go``: time
    passes only while ``settle`` waits for a commit, and each wait lasts all the time it is given (the
    held commit cannot end in it). So the bound runs out at the first wait, whatever the machine's
    load: nothing here reads the wall clock (keeping a file, however slow, takes no time)."""

    def __init__(self) -> None:
        self.time = 0.0
        self.waits: list[float] = []
        self.workers: list[threading.Thread] = []

    def now(self) -> float:
        return self.time

    def wait(self, worker: threading.Thread, seconds: float) -> None:
        self.waits.append(seconds)
        self.workers.append(worker)
        self.time += seconds

    def finish(self) -> None:
        """The held commits go on (``go`` set by the caller) and end: joined, no polling."""
        for worker in self.workers:
            worker.join(60)
            assert not worker.is_alive()


def held_unmount(monkeypatch: pytest.MonkeyPatch) -> HeldClock:
    """The next unmounts' ``settle`` runs by a ``HeldClock`` (their bound: the default 20 s)."""
    clock = HeldClock()
    monkeypatch.setattr(recovery, "settle", functools.partial(recovery.settle, clock=clock))
    return clock


@pytest.fixture
def store() -> RefusingStore:
    store = RefusingStore()
    write_raw_array(store, "a", ROWS, compression=False)  # staged by ranges, committed by compose
    return store


def mount(store: MemoryStore, tmp_path: Path) -> CcFilesystem:
    return CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache")))


def kept(tmp_path: Path) -> list[str]:
    folder = tmp_path / "cache" / "writes" / "kept"
    return sorted(p.suffix for p in folder.iterdir()) if folder.exists() else []


def change_row_3(fs: CcFilesystem) -> np.ndarray:
    """An r+ open that changes row 3 and is never released (the mount ends first)."""
    fh = fs.open("/a.npy", os.O_RDWR)
    fs.write(fh, np.full(128, -1.0).tobytes(), HEADER + 3 * 1024)
    fs.flush(fh)  # a close() of a duplicate: no commit point for a staged file
    expected = ROWS.copy()
    expected[3] = -1.0
    return expected


def test_the_unmount_stores_a_staged_file_still_open(store: RefusingStore, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    fs = mount(store, tmp_path)
    expected = change_row_3(fs)
    np.testing.assert_array_equal(read_raw_array(store, "a"), ROWS)  # nothing stored yet
    with caplog.at_level(logging.INFO, "cottoncandy.writes"):
        fs.close()
    np.testing.assert_array_equal(read_raw_array(store, "a"), expected)
    assert any("memory/a" in r.getMessage() and "stored at unmount" in r.getMessage() for r in caplog.records)
    assert kept(tmp_path) == [] and not list((tmp_path / "cache" / "writes").glob("staged-*"))


def test_a_refusal_at_unmount_is_kept_and_stored_by_the_next_mount(store: RefusingStore, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    fs = mount(store, tmp_path)
    expected = change_row_3(fs)
    store.refuse = True
    with caplog.at_level(logging.INFO, "cottoncandy.writes"):
        fs.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "memory/a" in errors[0] and "kept as" in errors[0], errors
    np.testing.assert_array_equal(read_raw_array(store, "a"), ROWS)
    assert kept(tmp_path) == [".data", ".json"]
    store.refuse = False
    again = mount(store, tmp_path)  # stored before the mount serves
    np.testing.assert_array_equal(read_raw_array(store, "a"), expected)
    assert kept(tmp_path) == []
    assert os.stat(tmp_path / "cache" / "writes" / "kept").st_mode & 0o777 == 0o700
    again.close()


def test_a_kept_file_never_overwrites_a_newer_version(store: RefusingStore, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The object was replaced by another writer after the unmount: the kept file stays, logged."""
    fs = mount(store, tmp_path)
    change_row_3(fs)
    store.refuse = True
    fs.close()
    store.refuse = False
    theirs = ROWS * 2
    write_raw_array(store, "a", theirs, compression=False)
    caplog.clear()
    with caplog.at_level(logging.INFO, "cottoncandy.writes"):
        again = mount(store, tmp_path)
    np.testing.assert_array_equal(read_raw_array(store, "a"), theirs)
    assert kept(tmp_path) == [".data", ".json"]
    assert any("replaced since the unmount" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    again.close()


def test_a_kept_file_is_never_laid_over_another_version_even_last_writer_wins(
        store: RefusingStore, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A kept file holds only its changed ranges: laid over another writer's version it would store a
    mix of the two (row 3 ours, the other rows theirs). --last-writer-wins does not make that right."""
    options = MountOptions(rw=True, cache_dir=str(tmp_path / "cache"), last_writer_wins=True)
    fs = CcFilesystem(store, options=options)
    change_row_3(fs)
    store.refuse = True
    fs.close()
    store.refuse = False
    theirs = ROWS * 2
    write_raw_array(store, "a", theirs, compression=False)
    with caplog.at_level(logging.INFO, "cottoncandy.writes"):
        again = CcFilesystem(store, options=options)
    np.testing.assert_array_equal(read_raw_array(store, "a"), theirs)
    assert kept(tmp_path) == [".data", ".json"]
    again.close()


@pytest.mark.parametrize("swap", ["manifest link", "data fifo"])
def test_kept_files_that_are_links_or_fifos_are_not_read(store: RefusingStore, tmp_path: Path, swap: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The cache folder is untrusted: a kept manifest replaced by a link is not followed, a kept data
    file replaced by a FIFO does not block the next mount's start; each is one logged refusal."""
    fs = mount(store, tmp_path)
    change_row_3(fs)
    store.refuse = True
    fs.close()
    store.refuse = False
    folder = tmp_path / "cache" / "writes" / "kept"
    manifest = next(folder.glob("*.json"))
    if swap == "manifest link":
        elsewhere = tmp_path / "elsewhere.json"
        manifest.rename(elsewhere)
        manifest.symlink_to(elsewhere)
    else:
        data = manifest.with_suffix(".data")
        data.unlink()
        os.mkfifo(data, 0o600)
    caplog.clear()
    with caplog.at_level(logging.INFO, "cottoncandy.writes"):
        again = mount(store, tmp_path)  # returns: nothing blocks on the FIFO
    np.testing.assert_array_equal(read_raw_array(store, "a"), ROWS)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "still not stored" in errors[0], errors
    again.close()


def test_a_commit_outlasting_the_bound_is_kept_and_finishes_if_it_can(
        store: RefusingStore, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The unmount waits its bound, logs the key, and leaves the pair kept; a commit that ends after
    (the daemon not yet gone) stores the object and removes the pair itself."""
    clock = held_unmount(monkeypatch)
    fs = mount(store, tmp_path)
    expected = change_row_3(fs)
    store.go = threading.Event()
    with caplog.at_level(logging.INFO, "cottoncandy.writes"):
        fs.close()
    assert clock.waits == [recovery.UNMOUNT_COMMIT_SECONDS]  # waited for it, all the bound
    assert any("not stored within" in r.getMessage() and "memory/a" in r.getMessage() for r in caplog.records)
    assert kept(tmp_path) == [".data", ".json"]
    store.go.set()
    clock.finish()
    assert kept(tmp_path) == []
    np.testing.assert_array_equal(read_raw_array(store, "a"), expected)


def test_no_commit_starts_once_the_bound_ran_out(store: RefusingStore, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Two staged files open at unmount, the first commit outlasting the bound: the second is not
    started with no time left (its upload would begin after the mount stopped recording uploads, an
    orphan if the daemon's exit cut it off): it stays kept, one line, and the next mount stores it.
    The bound runs out by ``HeldClock`` while the first commit is waited for, never by a race with the
    wall clock (a loaded machine made the first file's keeping outlast a 0.3 s bound: two 'ran out')."""
    clock = held_unmount(monkeypatch)
    write_raw_array(store, "b", ROWS, compression=False)
    fs = mount(store, tmp_path)
    expected = change_row_3(fs)
    fh = fs.open("/b.npy", os.O_RDWR)
    fs.write(fh, np.full(128, -1.0).tobytes(), HEADER + 3 * 1024)
    store.go = threading.Event()
    with caplog.at_level(logging.INFO, "cottoncandy.writes"):
        fs.close()
    assert clock.waits == [recovery.UNMOUNT_COMMIT_SECONDS]  # the first commit waited for; no second wait
    within = [r.getMessage() for r in caplog.records if "not stored within" in r.getMessage()]
    ran_out = [r.getMessage() for r in caplog.records if "ran out" in r.getMessage()]
    assert len(within) == 1 and len(ran_out) == 1 and "kept as" in ran_out[0], (within, ran_out)
    store.go.set()
    clock.finish()
    assert kept(tmp_path) == [".data", ".json"]  # the first one stored itself; the other is kept
    store.go = None
    late = "a" if "memory/a" in ran_out[0] else "b"
    np.testing.assert_array_equal(read_raw_array(store, late), ROWS)
    mount(store, tmp_path).close()
    np.testing.assert_array_equal(read_raw_array(store, late), expected)
    assert kept(tmp_path) == []


def test_a_stream_whose_close_never_came_is_given_up(store: RefusingStore, tmp_path: Path) -> None:
    """A file being written start to end when the mount ends is not stored: it would be partial."""
    fs = mount(store, tmp_path)
    fh = fs.create("/new.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fs.write(fh, b"half of it", 0)
    fs.close()
    assert not store.exists("new.txt") and kept(tmp_path) == []


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def stage_new_npy(fs: CcFilesystem, path: str, array: np.ndarray) -> None:
    """``open_memmap(path, 'w+')``-like, never released (the mount ends first): the header, then the
    body back to front (out of order: the file is staged, with the mount's codec for a new name)."""
    data = npy(array)
    header = len(data) - array.nbytes
    fh = fs.create(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    fs.write(fh, data[:header], 0)
    for at in reversed(range(header, len(data), 4096)):
        fs.write(fh, data[at : at + 4096], at)


def keep_a_gzip_npy(store: RefusingStore, tmp_path: Path) -> tuple[np.ndarray, Path]:
    """A new ``n.npy`` staged under a ``--write-compression gzip`` mount, its commit refused at
    unmount: kept. The array and the kept manifest."""
    array = np.arange(300 * 40, dtype="<f4").reshape(300, 40)
    fs = CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache"),
                                                  write_compression="gzip"))
    stage_new_npy(fs, "/n.npy", array)
    store.refuse = True
    fs.close()
    store.refuse = False
    assert not store.exists("n") and kept(tmp_path) == [".data", ".json"]
    return array, next((tmp_path / "cache" / "writes" / "kept").glob("*.json"))


def next_writer(store: RefusingStore, tmp_path: Path) -> CcFilesystem:
    """The next ``--rw`` mount with that ``--cache-dir``, writing raw (``--write-compression none``)."""
    return CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache"),
                                                    write_compression="none"))


def test_a_kept_new_npy_is_stored_with_the_codec_of_its_mount(store: RefusingStore, tmp_path: Path) -> None:
    """The codec decided when the file was staged (its mount's gzip) is the kept file's, not the next
    mount's: stored gzip with the block index, read back equal (before: stored raw)."""
    array, manifest = keep_a_gzip_npy(store, tmp_path)
    assert json.loads(manifest.read_text())["compression"] == "gzip"
    next_writer(store, tmp_path).close()
    meta = store.head("n").metadata or {}
    assert meta["compression"] == "gzip" and INDEX_KEY in meta, meta
    assert store.get("n")[:2] == b"\x1f\x8b" and store.head("n").size < array.nbytes
    np.testing.assert_array_equal(read_raw_array(store, "n"), array)
    assert kept(tmp_path) == []


def test_a_kept_manifest_without_a_codec_is_stored_raw(store: RefusingStore, tmp_path: Path) -> None:
    """A manifest written before the field existed keeps what it meant then: raw."""
    array, manifest = keep_a_gzip_npy(store, tmp_path)
    doc = json.loads(manifest.read_text())
    del doc["compression"]
    manifest.write_text(json.dumps(doc))
    next_writer(store, tmp_path).close()
    assert (store.head("n").metadata or {})["compression"] == "False" and store.get("n") == array.tobytes()
    assert kept(tmp_path) == []


@pytest.mark.parametrize("forged", ["pickle", "blosc", "no-such-codec", 7, ["gzip"]])
def test_a_forged_codec_in_a_kept_manifest_is_refused(store: RefusingStore, tmp_path: Path, forged: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The manifest is untrusted (the cache folder): a codec the codec table does not allow chooses no
    encoder. The file stays kept, one logged refusal naming the kept file, nothing stored."""
    _, manifest = keep_a_gzip_npy(store, tmp_path)
    doc = json.loads(manifest.read_text())
    doc["compression"] = forged
    manifest.write_text(json.dumps(doc))
    caplog.clear()
    with caplog.at_level(logging.INFO, "cottoncandy.writes"):
        next_writer(store, tmp_path).close()
    assert not store.exists("n") and kept(tmp_path) == [".data", ".json"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "still not stored" in errors[0] and "bad compression" in errors[0] \
        and str(manifest.with_suffix(".data")) in errors[0], errors


GOOD = {"version": 1, "path": "d/a.npy", "base_etag": "e", "size": 100, "base_end": 100, "dirty": [[0, 10]]}


@pytest.mark.parametrize("change", [
    {"version": 2}, {"path": "../../etc/passwd"}, {"path": "/abs"}, {"path": "d/../x"}, {"path": ""},
    {"path": 7}, {"size": -1}, {"size": "100"}, {"base_end": 101}, {"dirty": [[5, 200]]}, {"dirty": [[10, 5]]},
    {"dirty": "all"}, {"base_etag": 3}, {"compression": "pickle"}, {"compression": "blosc"}, {"compression": 1},
    {"compression": ""},
], ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_a_bad_manifest_is_refused(change: dict[str, Any]) -> None:
    assert Kept.parse(json.dumps(GOOD)).path == "d/a.npy"
    assert Kept.parse(json.dumps(GOOD)).compression is None  # written before the field: raw
    assert Kept.parse(json.dumps({**GOOD, "compression": "GZip"})).compression == "gzip"
    with pytest.raises(ValueError):
        Kept.parse(json.dumps({**GOOD, **change}))
    with pytest.raises(ValueError):
        Kept.parse("not json {")
