"""rename, unlink, mkdir, rmdir of a --rw mount, without a kernel (issue 26 item 6): against the
memory and local stores and the S3 server, through the namespace the mount uses."""

from __future__ import annotations

import errno
from typing import Any

import numpy as np
import pytest

from cottoncandy.arrays.chunked import download_dask_array, upload_dask_array
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.nodes import FileNode, FolderNode
from cottoncandy.storage.base import ObjectStore
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.tree_changes import TreeChanges


def changes(store: ObjectStore, **settings: Any) -> tuple[TreeChanges, Namespace]:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    return TreeChanges(store, ns, WriteSettings(**settings)), ns


def keys(store: ObjectStore) -> list[str]:
    return [info.key for info in store.iter_objects("")]


def test_mv_of_a_raw_array_keeps_its_metadata(store: ObjectStore) -> None:
    arr = np.arange(12.0).reshape(3, 4)
    write_raw_array(store, "p/a", arr)
    before = store.head("p/a").metadata
    tree, ns = changes(store)
    assert isinstance(ns.lookup("p/a.npy"), FileNode)
    tree.rename("p/a.npy", "p/b.npy")
    assert keys(store) == ["p/b"]
    assert store.head("p/b").metadata == before
    np.testing.assert_array_equal(read_raw_array(store, "p/b"), arr)
    assert sorted(ns.children("p", ahead=False)) == ["b.npy"]  # shown at once
    with pytest.raises(FileNotFoundError):
        ns.lookup("p/a.npy")


def test_mv_of_a_plain_file_and_into_a_made_folder(store: ObjectStore) -> None:
    store.put("notes.txt", b"hello", {"k": "v"})
    tree, ns = changes(store)
    tree.mkdir("new")
    assert "new" in tree.folders and store.list_dir("new/").objects == []
    tree.rename("notes.txt", "new/n.txt")
    assert keys(store) == ["new/n.txt"] and store.head("new/n.txt").metadata == {"k": "v"}
    assert "new" not in tree.folders  # a file landed: the store shows the folder now
    with pytest.raises(FileExistsError):
        tree.mkdir("new")


def test_folder_rename_within_and_beyond_the_limit(store: ObjectStore) -> None:
    for i in range(3):
        store.put(f"f/sub/x{i}", b"1")
    store.put("f/y", b"2")
    tree, ns = changes(store, rename_folder_limit=3)
    with pytest.raises(OSError) as err:
        tree.rename("f", "g")
    assert err.value.errno == errno.EXDEV
    assert len(keys(store)) == 4 and all(k.startswith("f/") for k in keys(store))  # nothing copied
    tree, ns = changes(store, rename_folder_limit=4)
    tree.rename("f", "g")
    assert keys(store) == ["g/sub/x0", "g/sub/x1", "g/sub/x2", "g/y"]
    assert isinstance(ns.lookup("g/sub"), FolderNode)
    with pytest.raises(FileNotFoundError):
        ns.lookup("f")


def test_rm_needs_allow_delete_and_deletes_the_exact_key(store: ObjectStore) -> None:
    store.put("d/a", b"1")
    store.put("d/a2", b"2")  # a name that starts the same: never touched
    write_raw_array(store, "d/arr", np.arange(3))
    tree, ns = changes(store)
    with pytest.raises(PermissionError) as err:
        tree.unlink("d/a")
    assert err.value.errno == errno.EACCES and store.exists("d/a")
    tree, ns = changes(store, allow_delete=True)
    tree.unlink("d/a")
    tree.unlink("d/arr.npy")
    assert keys(store) == ["d/a2"]
    tree.unlink("d/a2")
    assert keys(store) == [] and "d" in tree.folders  # rm of the last file leaves the folder
    tree.rmdir("d")
    assert "d" not in tree.folders


def test_mkdir_rmdir_of_an_empty_folder_made_here(store: ObjectStore) -> None:
    tree, ns = changes(store)  # no --allow-delete: nothing stored is deleted
    tree.mkdir("e")
    tree.mkdir("e/f")
    with pytest.raises(OSError) as err:
        tree.rmdir("e")
    assert err.value.errno == errno.ENOTEMPTY
    tree.rename("e", "e2")
    assert "e2/f" in tree.folders and "e" not in tree.folders
    tree.rmdir("e2/f")
    tree.rmdir("e2")
    with pytest.raises(FileNotFoundError):
        tree.mkdir("nowhere/x")
    assert keys(store) == []


def test_a_dask_folder_is_removed_whole_or_not_at_all(store: ObjectStore) -> None:
    arr = np.arange(4 * 2**18, dtype="<f8").reshape(4, 2**18)  # 8 MiB in parts of 5 MiB at most
    upload_dask_array(store, "da", arr, axis=0, buffersize=5 * 2**20, verbose=False)
    store.put("plain/metadata.json", b'{"not": "a manifest"}')
    store.put("plain/x", b"1")
    members = keys(store)
    assert len([k for k in members if k.startswith("da/")]) > 2
    tree, ns = changes(store, allow_delete=True)
    part = next(name for name in ns.children("da", ahead=False) if name != "metadata.json")
    with pytest.raises(PermissionError) as refused:
        tree.unlink(f"da/{part}")
    assert refused.value.errno == errno.EPERM
    with pytest.raises(PermissionError):
        tree.rename(f"da/{part}", "elsewhere.npy")
    assert keys(store) == members
    tree.unlink("plain/x")  # a folder with a metadata.json that is no manifest is an ordinary one
    with pytest.raises(OSError) as err:
        tree.rmdir("plain")
    assert err.value.errno == errno.ENOTEMPTY
    tree.rename("da", "moved")  # renamed whole, it still reads
    np.testing.assert_array_equal(np.asarray(download_dask_array(store, "moved")), arr)
    tree.rmdir("moved")
    assert keys(store) == ["plain/metadata.json"]


def test_rmdir_of_an_array_folder_needs_allow_delete(store: ObjectStore) -> None:
    upload_dask_array(store, "da", np.arange(8.0), verbose=False)
    tree, ns = changes(store)
    with pytest.raises(PermissionError) as err:
        tree.rmdir("da")
    assert err.value.errno == errno.EACCES
    assert any(k.startswith("da/") for k in keys(store))


def test_a_file_being_written_is_retargeted_not_copied(store: ObjectStore) -> None:
    moved: list[tuple[str, str]] = []
    ns = Namespace(store, ttl=600, folders_ahead=0)

    def retarget(old: str, new: str) -> bool:
        moved.append((old, new))
        return True

    tree = TreeChanges(store, ns, retarget=retarget)
    tree.mkdir("c")
    tree.rename("c/0.partial", "c/0")
    assert "c" not in tree.folders  # the file will land there
    assert moved == [("c/0.partial", "c/0")] and keys(store) == []


def npy_file(array: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize("shape", [(100, 10), (0,)], ids=["rows", "empty"])
def test_a_plain_npy_renamed_to_a_npy_name_becomes_the_raw_array(store: ObjectStore, shape: tuple[int, ...]) -> None:
    """rsync writes ``.arr.npy.XXXXXX`` (stored byte for byte at its close), then renames it ``arr.npy``:
    the raw array ``arr``, as ``cp`` to that name stores it, and over an existing raw array ``arr``
    (rsync's second run) as well; its temporary key is gone."""
    array = np.arange(int(np.prod(shape)), dtype="<f4").reshape(shape)
    store.put("d/.arr.npy.Ab12Cd", npy_file(array))
    tree, ns = changes(store)
    tree.rename("d/.arr.npy.Ab12Cd", "d/arr.npy")
    assert keys(store) == ["d/arr"]
    np.testing.assert_array_equal(read_raw_array(store, "d/arr"), array)
    assert ns.lookup("d/arr.npy").is_array  # type: ignore[union-attr]
    store.put("d/.arr.npy.Ef34Gh", npy_file(array + 1))  # a second run replaces it
    ns.stored("d/.arr.npy.Ef34Gh", store.head("d/.arr.npy.Ef34Gh"))  # as the writer tells it at close
    tree.rename("d/.arr.npy.Ef34Gh", "d/arr.npy")
    assert keys(store) == ["d/arr"]
    np.testing.assert_array_equal(read_raw_array(store, "d/arr"), array + 1)


def test_other_bytes_renamed_to_a_npy_name_stay_bytes(store: ObjectStore) -> None:
    """An object-dtype .npy, a short one, or text renamed ``x.npy`` keeps its bytes as they are."""
    short = npy_file(np.arange(10.0))[:-8]
    for name, data in (("o", npy_file(np.array([{"a": 1}], dtype=object))), ("s", short), ("t", b"text")):
        store.put(f"tmp-{name}", data)
        tree, _ = changes(store)
        tree.rename(f"tmp-{name}", f"{name}.npy")
        assert store.get(f"{name}.npy") == data
    assert keys(store) == ["o.npy", "s.npy", "t.npy"]
