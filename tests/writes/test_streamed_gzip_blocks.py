"""Arrays written through the write seam with a codec are stored exactly as the library stores them.

gzip: the indexed row-aligned block format, byte for byte the body ``upload_raw_array`` makes of the
same array (one encoder: ``pgzip.ParallelGzip``, fed here as WRITEs arrive), whatever the WRITE sizes,
for one-PUT and multipart files, empty arrays and Fortran order. The other streaming codecs still
store one stream of the codec. A ``.npy`` short of its data stores nothing and lets its pool go.
``CcFilesystem`` over a memory store, as ``ccfs/operations.py`` drives it: no kernel, no server.
"""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.gzip_blocks import write_gzip_blocks
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.formats import pgzip
from cottoncandy.formats.raw import ArraySpec, metadata_from_spec
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.writes.settings import WRITE_CODECS, WriteSettings
from cottoncandy.writes.writable import StoreWriter

MiB = 2**20
CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def save(fs: CcFilesystem, path: str, data: bytes, step: int) -> None:
    fh = fs.create(path, CREATE)
    for offset in range(0, len(data), step):
        assert fs.write(fh, data[offset : offset + step], offset) == len(data[offset : offset + step])
    fs.flush(fh)
    fs.release(fh)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.part_size = MiB  # several parts for arrays of a few MiB
    return store


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Blocks of 64 KiB (rounded to rows), so arrays of a few MiB have dozens of them."""
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", 2**16)
    return 2**16


def writable(store: MemoryStore, compression: str | None) -> CcFilesystem:
    return CcFilesystem(store, options=MountOptions(rw=True),
                        writer=lambda namespace: StoreWriter(store, namespace,
                                                             WriteSettings(compression=compression,
                                                                           memory=64 * MiB)))


def gzip_threads() -> int:
    return sum(t.name.startswith("cc-gzip-write") for t in threading.enumerate())


rng = np.random.default_rng(26)
ARRAYS = {
    "multipart_f8": rng.integers(0, 100, (3000, 300)).astype("<f8"),  # 7.2 MB: parts of 1 MiB
    "one_put_i4": np.arange(30_000, dtype=">i4").reshape(300, 100),  # under a part: one PUT
    "fortran": np.asfortranarray(rng.random((500, 700)).astype("<f4")),
    "odd_rows": rng.integers(0, 9, (777, 13, 7)).astype("<i2"),  # rows that do not divide the blocks
    "strings": np.array(["x", "yz", "abc"] * 5000),
    "empty": np.zeros((0, 4), dtype="<i4"),
    "zero_d": np.array(3.5),
}


@pytest.mark.parametrize("name", list(ARRAYS))
@pytest.mark.parametrize("step", [4096, 128 * 1024 + 7, 3 * MiB])
def test_gzip_is_the_library_body_byte_for_byte(store: MemoryStore, small_blocks: int, name: str,
                                                 step: int) -> None:
    array = ARRAYS[name]
    before = gzip_threads()
    save(writable(store, "gzip"), f"/m/{name}.npy", npy_bytes(array), step)
    if array.flags.c_contiguous:
        write_raw_array(store, "lib", array, "gzip")
    else:  # the library stores a C copy; its block writer, given the F-order spec the mount keeps
        spec = ArraySpec(dtype=array.dtype, shape=array.shape, order="F", compression="gzip")
        write_gzip_blocks(store, "lib", memoryview(array.T.tobytes()), metadata_from_spec(spec),
                          block_size=pgzip.row_block_size(spec.nbytes, spec.row_bytes),
                          strategy=pgzip.strategy_for(spec.dtype))
    mount, lib = store.head(f"m/{name}"), store.head("lib")
    assert mount.metadata == lib.metadata  # dtype, shape, order, codec and the block index's shape
    assert mount.metadata[pgzip.INDEX_KEY].startswith(f"{pgzip.INDEX_VERSION}:")  # type: ignore[index]
    assert store.get(f"m/{name}") == store.get("lib")
    back = read_raw_array(store, f"m/{name}")
    assert back.shape == array.shape and back.dtype == array.dtype and np.array_equal(back, array)
    assert gzip_threads() <= before  # the file's pool is let go once it is stored


def test_many_blocks_have_a_checked_index(store: MemoryStore, small_blocks: int) -> None:
    array = ARRAYS["multipart_f8"]
    save(writable(store, "gzip"), "/big.npy", npy_bytes(array), 65536 + 3)
    info = store.head("big")
    shape = pgzip.parse_metadata(info.metadata[pgzip.INDEX_KEY], array.nbytes)  # type: ignore[index]
    assert shape.count > 20 and shape.block_size % (300 * 8) == 0  # row-aligned blocks
    body = store.get("big")
    index = pgzip.parse_index(body[: shape.header_size], shape.block_size, shape.count, array.nbytes, len(body))
    assert all(block.crc is not None for block in index.blocks)


@pytest.mark.parametrize("codec", [c for c in WRITE_CODECS if c not in ("none", "gzip")])
def test_other_streaming_codecs_still_store_one_stream(store: MemoryStore, codec: str) -> None:
    array = ARRAYS["multipart_f8"]
    save(writable(store, codec), "/z.npy", npy_bytes(array), 128 * 1024)
    assert store.head("z").metadata["compression"].lower() == codec  # type: ignore[union-attr]
    assert pgzip.INDEX_KEY not in store.head("z").metadata  # type: ignore[operator]
    assert np.array_equal(read_raw_array(store, "z"), array)


def test_a_short_npy_stores_nothing_and_lets_its_pool_go(store: MemoryStore, small_blocks: int) -> None:
    array = ARRAYS["multipart_f8"]
    data = npy_bytes(array)
    before = gzip_threads()
    fs = writable(store, "gzip")
    fh = fs.create("/short.npy", CREATE)
    cut = len(data) - 12345
    for offset in range(0, cut, 131072):
        fs.write(fh, data[offset : min(cut, offset + 131072)], offset)
    fs.flush(fh)
    fs.release(fh)
    assert "short" not in store._objects and "short.npy" not in store._objects
    assert gzip_threads() <= before
