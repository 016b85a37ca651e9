"""The codec of a staged ``.npy`` (issue 26), without a kernel: a new name is stored with the mount's
``--write-compression`` (as a streamed ``np.save`` of it is), through the streamed writer's encoder
(gzip: the indexed row-aligned blocks); a staged rewrite of a stored array keeps that array's codec
and its order (a Fortran-order array stays Fortran-order, metadata and bytes). ``CcFilesystem`` over a
memory store and the S3 server, driven as ``ccfs/operations.py`` drives it."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.formats.keys import INDEX_KEY
from cottoncandy.storage.base import ObjectStore
from cottoncandy.storage.memory import MemoryStore

CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    return MemoryStore()


def writable(store: ObjectStore, tmp_path: Path, compression: str = "none") -> CcFilesystem:
    return CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache"),  # type: ignore[arg-type]
                                                     write_compression=compression))


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def staged_new(fs: CcFilesystem, path: str, data: bytes, header: int) -> None:
    """``open_memmap(path, 'w+')``-like: the header, then the body written back to front (out of
    order: the file is staged), then fsync and the last close."""
    fh = fs.create(path, CREATE)
    fs.write(fh, data[:header], 0)
    step = 1 << 12
    for at in reversed(range(header, len(data), step)):
        fs.write(fh, data[at : min(len(data), at + step)], at)
    fs.fsync(fh)
    fs.release(fh)


@pytest.mark.parametrize("order", ["C", "F"])
def test_a_staged_new_npy_is_stored_with_the_mounts_gzip(store: ObjectStore, tmp_path: Path, order: str) -> None:
    array = np.arange(300 * 40, dtype="<f4").reshape(300, 40)
    array = np.asfortranarray(array) if order == "F" else array
    data = npy(array)
    fs = writable(store, tmp_path, "gzip")
    staged_new(fs, "/n.npy", data, len(data) - array.nbytes)
    meta = store.head("n").metadata or {}
    assert meta["compression"] == "gzip" and meta["order"] == order and INDEX_KEY in meta
    assert store.get("n")[:2] == b"\x1f\x8b" and store.head("n").size < array.nbytes
    np.testing.assert_array_equal(read_raw_array(store, "n"), array)
    fh = fs.open("/n.npy", os.O_RDONLY)
    assert fs.read(fh, len(data), 0) == data  # shown as it was written, header included
    fs.release(fh)


def test_without_write_compression_a_staged_new_npy_stays_raw(store: ObjectStore, tmp_path: Path) -> None:
    array = np.arange(1000, dtype="<i8")
    data = npy(array)
    staged_new(writable(store, tmp_path), "/n.npy", data, len(data) - array.nbytes)
    assert (store.head("n").metadata or {})["compression"] == "False" and store.get("n") == array.tobytes()


@pytest.mark.parametrize("codec", ["gzip", "bz2"])
def test_a_staged_rewrite_of_a_compressed_fortran_array_keeps_codec_and_order(store: ObjectStore, tmp_path: Path,
                                                                              codec: str) -> None:
    """Stored by ``np.save`` through the mount (F order, ``codec``), opened ``O_RDWR`` (decoded
    whole), one element changed, fsynced: stored again with its codec and order F, the mount's
    file unchanged but for that element (before, the re-encoding stored a C-order copy, order C)."""
    array = np.asfortranarray(np.arange(50 * 30, dtype="<f8").reshape(50, 30))
    data = npy(array)
    header = len(data) - array.nbytes
    fs = writable(store, tmp_path, codec)
    fh = fs.create("/f.npy", CREATE)
    fs.write(fh, data, 0)
    fs.flush(fh)
    fs.release(fh)
    assert (store.head("f").metadata or {})["order"] == "F"
    fs = writable(store, tmp_path / "second", "none")  # another mount: the array's own codec is kept
    fh = fs.open("/f.npy", os.O_RDWR)
    fs.write(fh, np.float64(-7).tobytes(), header + 8 * 3)  # F order: element [3, 0]
    fs.fsync(fh)
    fs.release(fh)
    expected = array.copy(order="F")
    expected[3, 0] = -7
    meta = store.head("f").metadata or {}
    assert meta["order"] == "F" and meta["compression"] == codec
    assert (INDEX_KEY in meta) == (codec == "gzip")
    stored = read_raw_array(store, "f")
    np.testing.assert_array_equal(stored, expected)
    fh = fs.open("/f.npy", os.O_RDONLY)
    assert fs.read(fh, len(data), 0) == npy(expected)
    fs.release(fh)


def test_a_compressed_rewrite_is_refused_over_another_writers_version(tmp_path: Path) -> None:
    """The encoded commit carries the file's condition (``If-Match`` of the version opened over): a
    gzip array replaced by another writer meanwhile is ESTALE at fsync and theirs is kept (before, the
    re-encoding wrote with no condition and overwrote it)."""
    store = MemoryStore()
    array = np.arange(2000, dtype="<f8").reshape(40, 50)
    data = npy(array)
    fs = writable(store, tmp_path, "gzip")
    fh = fs.create("/g.npy", CREATE)
    fs.write(fh, data, 0)
    fs.release(fh)
    fh = fs.open("/g.npy", os.O_RDWR)
    fs.write(fh, np.float64(-1).tobytes(), len(data) - array.nbytes)
    write_raw_array(store, "g", array * 2, compression="gzip")  # another writer: a new version
    etag = store.head("g").etag
    with pytest.raises(OSError) as refused:
        fs.fsync(fh)
    assert refused.value.errno == errno.ESTALE
    assert store.head("g").etag == etag
