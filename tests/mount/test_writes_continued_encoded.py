"""A file written on after a commit point stored it compressed (issue 26), through a real ``--rw
--write-compression`` mount, with the local server's request log as the evidence of the work done:

* gzip (the library's indexed blocks): the WRITE after the commit fetches nothing (before, it decoded
  the whole array inside that WRITE); a read fetches at most the index and the block holding it; the
  commit fetches each compressed byte at most once and stores the exact array, gzip with its index;
* zlib (no blocks): the WRITE fetches nothing; the commit streams the body once;
* a loop of ten commands appending to one descriptor fetches the start of the file once in all (before:
  once per command).
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.arrays.gzip_blocks import block_index
from cottoncandy.formats.keys import INDEX_KEY
from tests.conftest import BUCKET
from tests.mountutil import VERSION_KEPT, mounted, needs_fuse, rw, uploads

pytestmark = [needs_fuse, pytest.mark.fuse]
MiB = 2**20


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def gets(log: list, key: str) -> list:  # type: ignore[type-arg]
    return [r for r in log if r.method == "GET" and r.path.rstrip("/").endswith(f"/{key}")]


def write_then_commit(m: Path, name: str, data: bytes) -> int:
    """Write ``data`` to a new ``name`` and close a duplicate (FLUSH: stored); the descriptor, still open."""
    fd = os.open(m / name, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    for at in range(0, len(data), MiB):
        os.write(fd, data[at : at + MiB])
    os.close(os.dup(fd))
    return fd


@pytest.mark.parametrize("codec", ["gzip", "zlib"])
def test_writing_on_a_compressed_array_decodes_only_what_is_needed(cci, s3, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   codec: str) -> None:
    array = (np.arange(3 * MiB, dtype="<i8") % 1000).reshape(-1, 512)  # 24 MiB: six 4 MiB gzip blocks
    data = npy(array)
    h = len(data) - array.nbytes
    expected = array.copy()
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--write-compression", codec,
                                       cache_dir=tmp_path / "cache"), *VERSION_KEPT) as m:
        fd = write_then_commit(m, "c.npy", data)
        try:
            stored = cci.store.head("c")
            assert (stored.metadata or {})["compression"] == codec
            s3.clear_log()
            os.pwrite(fd, np.int64(-7).tobytes(), h + 8 * (2 * MiB + 3))  # in the third block
            expected.reshape(-1)[2 * MiB + 3] = -7
            assert gets(s3.requests(), "c") == []  # the WRITE fetched and decoded nothing
            if codec == "gzip":
                at = 5 * 4 * MiB // 8 + 8192  # an element of the sixth block (the kernel reads a page-aligned 128 KiB)
                assert os.pread(fd, 8, h + 8 * at) == expected.reshape(-1)[at].tobytes()
                read = gets(s3.requests(), "c")
                index = block_index(cci.store, stored, array.nbytes)
                assert index is not None and len(index.blocks) == 6
                block = index.blocks[5]
                # the index (one ranged GET of the header) and that one block, or nothing (the page cache)
                assert [r.bytes_sent for r in read] in ([], [index.blocks[0].start, block.end - block.start]), read
            s3.clear_log()
        finally:
            os.close(fd)  # FLUSH: the commit re-encodes the array
        log = s3.requests()
    fetched = gets(log, "c")
    assert sum(r.bytes_sent for r in fetched) <= stored.size, fetched  # each compressed byte at most once
    if codec == "zlib":
        assert len(fetched) == 1 and fetched[0].range is None  # one streamed decode of the body
    info = cci.store.head("c")
    assert (info.metadata or {})["compression"] == codec
    assert (INDEX_KEY in (info.metadata or {})) == (codec == "gzip")
    np.testing.assert_array_equal(cci.download_raw_array("c"), expected)
    assert uploads(cci.settings.endpoint_url) == []


def test_ten_commands_appending_to_one_descriptor_fetch_the_start_once(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url), *VERSION_KEPT) as m:
        s3.clear_log()
        subprocess.run(["bash", "-c", f"for i in $(seq 10); do /bin/echo line $i; done > {m / 'log.txt'}"],
                       check=True, capture_output=True, timeout=120)
        log = s3.requests()
    puts = [r for r in log if r.method == "PUT" and r.path.endswith("/log.txt")]
    assert len(puts) == 10, [(r.method, r.path) for r in log]  # one commit per command
    assert len(gets(log, "log.txt")) == 1, [(r.method, r.path, r.range) for r in log]  # the start, once
    assert cci.download_object("log.txt") == b"".join(b"line %d\n" % i for i in range(1, 11))


def test_bytes_stored_at_a_flush_then_completed_as_npy_get_the_mounts_codec(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``{ printf MAGIC; rest; } > n.npy``: the first command's exit stores six bytes (no array yet); the
    second makes it a whole ``.npy``, stored as the raw array ``n`` with ``--write-compression gzip``."""
    array = np.arange(4000, dtype="<f8").reshape(40, 100)
    data = npy(array)
    (tmp_path / "rest").write_bytes(data[6:])
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, "--write-compression", "gzip"), *VERSION_KEPT) as m:
        script = f"{{ /usr/bin/printf '\\x93NUMPY'; /bin/cat {tmp_path / 'rest'}; }} > {m / 'n.npy'}"
        subprocess.run(["bash", "-c", script], check=True, capture_output=True, timeout=120)
    assert (cci.store.head("n").metadata or {})["compression"] == "gzip"
    np.testing.assert_array_equal(cci.download_raw_array("n"), array)


@pytest.mark.parametrize("codec", ["gzip", "Zstd"])
def test_r_plus_of_a_compressed_array_decodes_what_is_read(cci, s3, tmp_path: Path, codec: str) -> None:  # type: ignore[no-untyped-def]
    """An ``r+`` memory map of an array the library stored compressed (before, the OPEN decoded the whole
    array, under the writer's lock): its page faults decode what holds them -- gzip, that block and the
    index; Zstd, which has no blocks, the whole body once -- and the flush stores the exact array with
    its own codec. (``np.memmap`` straight away: ``np.load`` would first read the header through the
    read-only path, whose own fetches are not the writer's.)"""
    array = np.random.default_rng(7).integers(0, 2**12, size=(6144, 512)).astype("<i8")  # 24 MiB, 4 KiB rows
    cci.upload_raw_array("r", array, compression=codec)
    stored = cci.store.head("r")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=tmp_path / "cache"), *VERSION_KEPT) as m:
        header = os.stat(m / "r.npy").st_size - array.nbytes
        s3.clear_log()
        mapped = np.memmap(m / "r.npy", dtype="<i8", mode="r+", offset=header, shape=array.shape)
        mapped[1500] = -1  # 6.1 MB in: the second 4 MiB block, 2 MB from either edge
        read = gets(s3.requests(), "r")
        if codec == "gzip":  # the index, and the one block holding the row
            index = block_index(cci.store, stored, array.nbytes)
            assert index is not None and len(index.blocks) == 6
            block = index.blocks[1]
            assert [r.bytes_sent for r in read] == [index.blocks[0].start, block.end - block.start], read
        else:  # the whole body, once
            assert [r.bytes_sent for r in read] == [stored.size], read
        mapped.flush()
        del mapped
    expected = array.copy()
    expected[1500] = -1
    assert (cci.store.head("r").metadata or {})["compression"].lower() == codec.lower()
    np.testing.assert_array_equal(cci.download_raw_array("r"), expected)


def test_r_plus_row_of_a_large_gzip_array_deflates_one_block(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One row changed through an ``r+`` memory map of a 40 MiB gzip array of the library (a 25 MB body,
    ten blocks): the flush fetches that block and the short runs beside it compressed, sends well under
    the body, and has the server copy the rest; the array and its codec are exact, the body one gzip
    member with a block index that fits it."""
    array = np.random.default_rng(9).integers(0, 2**32, size=(10240, 512)).astype("<i8")  # 40 MiB
    cci.upload_raw_array("big", array, compression="gzip")
    stored = cci.store.head("big")
    with mounted(BUCKET, tmp_path, *rw(cci.settings.endpoint_url, cache_dir=tmp_path / "cache"), *VERSION_KEPT) as m:
        header = os.stat(m / "big.npy").st_size - array.nbytes
        mapped = np.memmap(m / "big.npy", dtype="<i8", mode="r+", offset=header, shape=array.shape)
        s3.clear_log()
        mapped[5000] = -1
        mapped.flush()
        log = s3.requests()
        del mapped
    fetched = sum(r.bytes_sent for r in gets(log, "big"))
    parts = [r for r in log if r.method == "PUT" and "partNumber" in r.query]
    sent = sum(r.bytes_received for r in parts if not r.copy_source)
    assert any(r.copy_source for r in parts), parts  # the unchanged blocks copied by the server
    assert fetched < stored.size // 2 and sent < stored.size // 2, (fetched, sent, stored.size)
    print(f"one row of a 40 MiB gzip array ({stored.size / 1e6:.1f} MB body): {fetched / 1e6:.1f} MB fetched, "
          f"{sent / 1e6:.1f} MB sent, {sum(1 for r in parts if r.copy_source)} parts copied by the server")
    expected = array.copy()
    expected[5000] = -1
    info = cci.store.head("big")
    assert (info.metadata or {})["compression"] == "gzip" and INDEX_KEY in (info.metadata or {})
    np.testing.assert_array_equal(cci.download_raw_array("big"), expected)
    index = block_index(cci.store, info, array.nbytes)
    assert index is not None and len(index.blocks) == 10
    assert uploads(cci.settings.endpoint_url) == []
