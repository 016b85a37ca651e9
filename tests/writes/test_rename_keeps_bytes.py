"""A rename keeps the bytes the mount shows (issue 26), without a kernel: what the file read at its old
name, it reads at its new one. A raw array ``k`` is shown as ``k.npy`` (a ``.npy`` header the mount
makes + the decoded body); renamed to a name that is not ``.npy`` it must become those bytes, not its
body alone. Against the memory and local stores and the S3 server, through the namespace the mount uses.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.chunked import download_dask_array, upload_dask_array
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.nodes import FileNode
from cottoncandy.storage import MemoryStore
from cottoncandy.storage.base import ObjectStore
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.tree_changes import TreeChanges

MiB = 2**20


def changes(store: ObjectStore) -> tuple[TreeChanges, Namespace]:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    return TreeChanges(store, ns, WriteSettings()), ns


def keys(store: ObjectStore) -> list[str]:
    return sorted(info.key for info in store.iter_objects(""))


def shown(store: ObjectStore, ns: Namespace, path: str) -> bytes:
    """The bytes the mount shows at ``path`` (a raw array: its header + its decoded body)."""
    node = ns.lookup(path)
    assert isinstance(node, FileNode)
    if node.spec is None:
        return store.get(node.key)
    array = read_raw_array(store, node.key)
    body = array.tobytes(order="F" if node.spec.fortran else "C")
    return node.header + body


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize("size", [3 * 1000, 12 * MiB + 13])
def test_a_raw_array_renamed_to_bytes_holds_its_npy_bytes(store: ObjectStore, size: int) -> None:
    """Under and over the 5 MiB first piece (header + fetched start of the body, the rest copied):
    the new object is the ``.npy`` the mount showed, it loads as the array, the old key is gone, the
    user's metadata is kept and the array's description is not (it is a file of bytes now)."""
    array = np.arange(size // 8, dtype="<f8").reshape(-1, 1) if size > MiB else np.arange(size // 8, dtype="<f8")
    write_raw_array(store, "p/a", array, compression=False, extra={"subject": "s01"})
    tree, ns = changes(store)
    before = shown(store, ns, "p/a.npy")
    tree.rename("p/a.npy", "p/a.bin")
    assert keys(store) == ["p/a.bin"]
    assert store.get("p/a.bin") == before == npy(array)
    assert shown(store, ns, "p/a.bin") == before
    meta = store.head("p/a.bin").metadata or {}
    assert meta.get("subject") == "s01" and "dtype" not in meta and "shape" not in meta
    np.testing.assert_array_equal(np.load(io.BytesIO(store.get("p/a.bin"))), array)


def test_a_fortran_order_array_renamed_to_bytes_keeps_its_header_and_order(store: ObjectStore) -> None:
    array = np.asfortranarray(np.arange(30, dtype="<i4").reshape(5, 6))
    tree, ns = changes(store)
    fs_bytes = npy(array)  # fortran_order True, the bytes in F order
    store.put("f.bin", fs_bytes)
    tree.rename("f.bin", "g.npy")  # a plain .npy's bytes become the raw array g (order F)
    assert (store.head("g").metadata or {}).get("order") == "F"
    assert shown(store, ns, "g.npy") == fs_bytes
    tree.rename("g.npy", "h.bin")  # and back: the same bytes again
    assert keys(store) == ["h.bin"] and store.get("h.bin") == fs_bytes


def test_a_compressed_raw_array_renamed_to_bytes_is_exdev_and_left_as_it_was(store: ObjectStore) -> None:
    array = np.arange(5000, dtype="<f8")
    write_raw_array(store, "z", array, compression="gzip")
    tree, ns = changes(store)
    etag = store.head("z").etag
    with pytest.raises(OSError) as caught:
        tree.rename("z.npy", "z.bin")
    assert caught.value.errno == errno.EXDEV
    assert keys(store) == ["z"] and store.head("z").etag == etag


def test_npy_to_npy_and_folder_renames_keep_arrays_arrays(store: ObjectStore) -> None:
    """``a.npy`` -> ``b.npy`` and a folder holding a raw, a gzip and a bytes object: each keeps its
    shown bytes (arrays stay arrays with their metadata, by a server-side copy)."""
    write_raw_array(store, "d/r", np.arange(40.0).reshape(5, 8), compression=False)
    write_raw_array(store, "d/g", np.arange(40.0).reshape(5, 8), compression="gzip")
    store.put("d/t.txt", b"text")
    tree, ns = changes(store)
    before = {name: shown(store, ns, f"d/{name}") for name in ("r.npy", "g.npy", "t.txt")}
    tree.rename("d/r.npy", "d/s.npy")
    assert keys(store)[-1] == "d/t.txt" and "d/s" in keys(store)
    assert shown(store, ns, "d/s.npy") == before["r.npy"]
    tree.rename("d", "e")
    assert keys(store) == ["e/g", "e/s", "e/t.txt"]
    assert shown(store, ns, "e/s.npy") == before["r.npy"]
    assert shown(store, ns, "e/g.npy") == before["g.npy"]
    assert shown(store, ns, "e/t.txt") == before["t.txt"]


def test_a_dask_folder_renamed_whole_still_reads(store: ObjectStore) -> None:
    array = np.arange(4 * 2**18, dtype="<f8").reshape(4, 2**18)  # 8 MiB in parts of 5 MiB at most
    upload_dask_array(store, "dk", array, axis=0, buffersize=5 * MiB, verbose=False)
    tree, ns = changes(store)
    tree.rename("dk", "dk2")
    assert len(keys(store)) > 2 and all(k.startswith("dk2/") for k in keys(store))
    np.testing.assert_array_equal(np.asarray(download_dask_array(store, "dk2")), array)


def test_a_raw_array_open_for_writing_renamed_to_bytes_is_exdev(tmp_path: Path) -> None:
    """``np.load(mmap_mode='r+')`` of a raw array, fsynced, renamed to a name that is not ``.npy``:
    EXDEV, and the file stays open under its old name (its later commits land there)."""
    store = MemoryStore()
    array = np.arange(64, dtype="<f8").reshape(8, 8)
    write_raw_array(store, "a", array, compression=False)
    fs = CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache")))  # type: ignore[arg-type]
    header = len(npy(array)) - array.nbytes
    fh = fs.open("/a.npy", os.O_RDWR)
    fs.write(fh, np.float64(-1).tobytes(), header)
    fs.fsync(fh)
    with pytest.raises(OSError) as caught:
        fs.rename("/a.npy", "/a.bin")
    assert caught.value.errno == errno.EXDEV
    fs.write(fh, np.float64(-2).tobytes(), header + 8)
    fs.release(fh)
    expected = array.copy()
    expected[0, :2] = [-1, -2]
    assert keys(store) == ["a"]
    np.testing.assert_array_equal(read_raw_array(store, "a"), expected)
