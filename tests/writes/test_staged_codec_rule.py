"""Which codec a staged ``.npy`` is stored with (issue 26): one rule (``commit.layout_of``) for every way a
file gets staged. A file that was no array when staged -- here a new ``n.npy`` stored as bytes at a
commit point (its first command wrote part of the magic), then written on (``continued``: a staged
overwrite made by ``StagedFiles.start``) until it is a whole ``.npy`` -- is stored with the mount's
``--write-compression``, as ``np.save`` of that name is; a stored array keeps its own codec. Driven
as ``ccfs/operations.py`` drives ``CcFilesystem``, over a memory store."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.storage.memory import MemoryStore

CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize("codec", ["gzip", "zlib", "none"])
def test_a_file_stored_as_bytes_then_completed_as_npy_gets_the_mounts_codec(tmp_path: Path, codec: str) -> None:
    store = MemoryStore()
    fs = CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache"),
                                                  write_compression=codec))
    array = np.arange(1000.0).reshape(100, 10)
    data = npy(array)
    fh = fs.create("/n.npy", CREATE)
    fs.write(fh, data[:6], 0)
    fs.flush(fh)  # the first command's exit: stored as the 6 bytes it is
    assert store.get("n.npy") == data[:6]
    fs.write(fh, data[6:], 6)  # the next command: a staged overwrite of that version
    fs.flush(fh)
    fs.release(fh)
    metadata = store.head("n").metadata or {}
    assert metadata["compression"] == (codec if codec != "none" else "False")
    np.testing.assert_array_equal(read_raw_array(store, "n"), array)


def test_a_stored_array_keeps_its_codec_under_another_write_compression(tmp_path: Path) -> None:
    store = MemoryStore()
    array = np.arange(2000, dtype="<i4").reshape(40, 50)
    write_raw_array(store, "g", array, compression="bz2")
    fs = CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache"),
                                                  write_compression="gzip"))
    fh = fs.open("/g.npy", os.O_RDWR)
    header = len(npy(array)) - array.nbytes
    fs.write(fh, np.int32(-1).tobytes(), header)
    fs.fsync(fh)
    fs.release(fh)
    assert (store.head("g").metadata or {})["compression"] == "bz2"
    expected = array.copy()
    expected[0, 0] = -1
    np.testing.assert_array_equal(read_raw_array(store, "g"), expected)
