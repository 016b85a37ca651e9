"""A file renamed while it is still open for writing, through a real ``--rw`` mount (issue 26): the open
file follows its name (``cottoncandy/writes/moves.py``). Python renames with ``os.rename`` while a
descriptor or a memmap is open, then writes more, fsyncs and closes; both names are then checked
through the library: the new one holds everything written, the old one is gone, no upload is left."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.storage.s3 import S3Store
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse, rw, uploads

pytestmark = [needs_fuse, pytest.mark.fuse]
MiB = 2**20


def test_descriptors_renamed_while_open(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """(1) a streamed file stored at a FLUSH (closing a dup), renamed, written on, fsynced, closed;
    (2) an existing file opened O_RDWR, changed, fsynced, renamed over a name the mount shows,
    changed again; (3) a 40 MiB file renamed while its multipart upload is under way."""
    store = S3Store(BUCKET, cci.settings)
    store.put("x.txt", b"0123456789")
    store.put("y.txt", b"the old y")
    big = os.urandom(40 * MiB)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        assert sorted(os.listdir(m)) == ["x.txt", "y.txt"]  # y's version is the one the rename replaces

        fd = os.open(m / "f.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, b"first\n")
        os.close(os.dup(fd))  # a FLUSH: stored as f.txt
        assert store.get("f.txt") == b"first\n"
        os.rename(m / "f.txt", m / "g.txt")
        os.write(fd, b"second\n")
        os.fsync(fd)
        assert store.get("g.txt") == b"first\nsecond\n" and not store.exists("f.txt")
        os.write(fd, b"third\n")
        os.close(fd)

        fd = os.open(m / "x.txt", os.O_RDWR)
        os.pwrite(fd, b"AB", 0)
        os.fsync(fd)
        os.rename(m / "x.txt", m / "y.txt")
        os.pwrite(fd, b"YZ", 8)
        os.close(fd)

        fd = os.open(m / "big.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, big[: 24 * MiB])  # more than a part: its upload has begun under big.bin
        os.rename(m / "big.bin", m / "moved.bin")
        assert os.stat(m / "moved.bin").st_size == 24 * MiB
        os.write(fd, big[24 * MiB :])
        os.close(fd)

        assert sorted(os.listdir(m)) == ["g.txt", "moved.bin", "y.txt"]
        assert (m / "g.txt").read_bytes() == b"first\nsecond\nthird\n"
    assert store.get("g.txt") == b"first\nsecond\nthird\n" and not store.exists("f.txt")
    assert store.get("y.txt") == b"AB234567YZ" and not store.exists("x.txt")
    assert store.get("moved.bin") == big and not store.exists("big.bin")
    assert uploads(cci.settings.endpoint_url) == []


def test_a_memmap_renamed_while_mapped(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``np.load(mmap_mode='r+')`` of a raw array: a row, ``flush()``, ``os.rename`` to another
    ``.npy`` name, another row, ``flush()``, closed: the raw array of the new name has both rows. The
    same for a new array made with ``open_memmap(mode='w+')``."""
    array = np.arange(256 * 64, dtype="<f8").reshape(256, 64)
    cci.upload_raw_array("p/a", array, compression=None)
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        mapped = np.load(m / "p/a.npy", mmap_mode="r+")
        mapped[3] = -1.0
        mapped.flush()
        os.rename(m / "p/a.npy", m / "p/b.npy")
        mapped[200] = -2.0
        mapped.flush()
        del mapped

        made = np.lib.format.open_memmap(m / "p/w.npy", mode="w+", dtype="<i4", shape=(100, 50))
        made[:] = 7
        made.flush()  # stored as the raw array p/w
        os.rename(m / "p/w.npy", m / "p/v.npy")
        made[99] = 8
        made.flush()
        del made
        assert sorted(os.listdir(m / "p")) == ["b.npy", "v.npy"]
    expected = array.copy()
    expected[3], expected[200] = -1.0, -2.0
    np.testing.assert_array_equal(cci.download_raw_array("p/b"), expected)
    assert not cci.exists_object("p/a")
    filled = np.full((100, 50), 7, dtype="<i4")
    filled[99] = 8
    np.testing.assert_array_equal(cci.download_raw_array("p/v"), filled)
    assert not cci.exists_object("p/w")


def test_a_folder_renamed_with_a_file_open_in_it(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``mv d e`` while ``d/log.txt`` is open, stored at a FLUSH and written on: it follows."""
    store = S3Store(BUCKET, cci.settings)
    store.put("d/other.txt", b"other")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url)) as m:
        fd = os.open(m / "d/log.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, b"a\n")
        os.close(os.dup(fd))
        os.rename(m / "d", m / "e")
        os.write(fd, b"b\n")
        os.close(fd)
        assert sorted(os.listdir(m / "e")) == ["log.txt", "other.txt"]
    assert sorted(info.key for info in store.iter_objects()) == ["e/log.txt", "e/other.txt"]
    assert store.get("e/log.txt") == b"a\nb\n"
