"""No call but ``download_pickle`` unpickles a stored object (issue 23), and the errors of calls that meet
the wrong kind of object or argument are instances of what 0.4.0 raised (the differential harness,
``tests/compat``, compares them with 0.4.0 itself; these run without it).

The canary: objects whose unpickling calls :func:`sing`. They are planted as every kind of object a call
could unpickle (a pickle, an ``.npy``/``.npz`` holding an object array, raw arrays and dask/sparse parts
forged with dtype ``|O`` and the ``pickle`` codec, a ``dict2cloud`` leaf) and every reading call is made
on each; only ``download_pickle`` may sing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import scipy.sparse as sp

from cottoncandy.errors import (
    BadManifest,
    EmptyNpyFile,
    FolderNotAnObject,
    NotABinaryBody,
    NotADict,
    NotAnArray,
    NotAPath,
    NotAPickle,
    NotASparseMatrix,
    TruncatedPickle,
)

SUNG: list[str] = []


def sing(what: str) -> str:
    """Called by unpickling a canary: records that something unpickled it."""
    SUNG.append(what)
    return what


class Canary:
    def __init__(self, what: str):
        self.what = what

    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return sing, (self.what,)


def canary_bytes(what: str) -> bytes:
    return pickle.dumps(Canary(what))


def object_npy(what: str, npz: bool = False) -> bytes:
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = Canary(what), 1
    out = io.BytesIO()
    if npz:
        np.savez(out, a=arr)
    else:
        np.save(out, arr, allow_pickle=True)
    return out.getvalue()


FORGED_RAW = {"dtype": "|O", "shape": "2", "order": "C"}


def plant(cci: Any) -> list[str]:
    """Every kind of object that could be unpickled, under ``evil/``; returns the object names."""
    put = cci.store.put
    put("evil/pickle", canary_bytes("pickle"), {})
    put("evil/npy", object_npy("npy"), {})
    put("evil/npz", object_npy("npz", npz=True), {})
    put("evil/raw_pickle_codec", bytes(numcodecs.Pickle().encode(np.array([Canary("codec"), 1], dtype=object))),
        {**FORGED_RAW, "compression": "pickle"})
    put("evil/raw_object", canary_bytes("raw"), {**FORGED_RAW, "compression": "False"})
    put("evil/tree/leaf", canary_bytes("leaf"), {**FORGED_RAW, "compression": "False"})
    put("evil/tree/pickle", canary_bytes("tree pickle"), {})
    manifest = {"type": "csr", "attrs": ["data", "indices", "indptr"], "shape": [1, 2]}
    put("evil/sparse/metadata.json", json.dumps(manifest).encode(), {})
    for attr in manifest["attrs"]:  # type: ignore[union-attr]
        put(f"evil/sparse/{attr}", canary_bytes(f"sparse {attr}"), {**FORGED_RAW, "compression": "pickle"})
    dask = {"shape": [2], "dtype": "|O", "dask": [[[0], "evil/dask/pt0000"]], "chunks": [[2]], "chunk_sizes": [[2]]}
    put("evil/dask/metadata.json", json.dumps(dask).encode(), {})
    put("evil/dask/pt0000", canary_bytes("dask part"), {**FORGED_RAW, "compression": "False"})
    put("evil/dask_f8/metadata.json", json.dumps({**dask, "dtype": "<f8", "dask": [[[0], "evil/dask_f8/pt0000"]]})
        .encode(), {})
    put("evil/dask_f8/pt0000", canary_bytes("dask f8 part"), {"dtype": "<f8", "shape": "2", "order": "C",
                                                              "compression": "pickle"})
    return ["evil/pickle", "evil/npy", "evil/npz", "evil/raw_pickle_codec", "evil/raw_object", "evil/tree",
            "evil/tree/leaf", "evil/tree/pickle", "evil/sparse", "evil/dask", "evil/dask_f8", "evil"]


def every_reading_call(cci: Any, name: str, tmp: Path) -> dict[str, Callable[[], Any]]:
    """Each call that reads ``name`` (and what a user does next with its result), but download_pickle."""
    def npz_items() -> Any:
        loaded = cci.download_npy_array(name)
        return [loaded[k] for k in loaded.files]

    return {
        "download_raw_array": lambda: cci.download_raw_array(name),
        "download_npy_array": npz_items,
        "download_json": lambda: cci.download_json(name),
        "download_object": lambda: cci.download_object(name),
        "download_stream": lambda: cci.download_stream(name).content.read(),
        "download_to_file": lambda: cci.download_to_file(name, str(tmp / "file")),
        "download_sparse_array": lambda: cci.download_sparse_array(name),
        "download_dask_array": lambda: cci.download_dask_array(name).compute(),
        "download_raw_array_as_dask": lambda: cci.download_raw_array_as_dask(name).compute(),
        "download_directory": lambda: cci.download_directory(name, str(tmp / "dir")),
        "cloud2dict": lambda: cci.cloud2dict(name),
        "cloud2dataset": lambda: [getattr(cci.cloud2dataset(name), k).load() for k in dir(cci.cloud2dataset(name))],
        "get_array_spec": lambda: cci.get_array_spec(name),
        "get_metadata": lambda: cci.get_metadata(name),
        "ls": lambda: cci.ls(name),
        "glob": lambda: cci.glob(name + "/**"),
    }


def test_only_download_pickle_unpickles(any_cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    names = plant(any_cci)
    SUNG.clear()
    for name in names:
        for call, run in every_reading_call(any_cci, name, tmp_path).items():
            with contextlib.suppress(Exception):  # refusing is fine; unpickling is not
                run()
            assert SUNG == [], f"{call}({name!r}) unpickled {SUNG}"
    assert any_cci.download_pickle("evil/pickle") == "pickle"  # the canary sings when it is unpickled
    assert SUNG == ["pickle"]


def test_a_body_that_is_not_a_pickle(any_cci) -> None:  # type: ignore[no-untyped-def]
    any_cci.upload_json("j", {"a": 1})
    with pytest.raises(pickle.UnpicklingError) as info:
        any_cci.download_pickle("j")
    assert isinstance(info.value, NotAPickle) and isinstance(info.value, ValueError) and "j" in str(info.value)
    for body in (b"", pickle.dumps({"a": 1})[:2]):
        any_cci.upload_object("e", io.BytesIO(body))
        with pytest.raises(EOFError) as eof:  # 0.4.0's pickle.loads said EOFError here
            any_cci.download_pickle("e")
        assert isinstance(eof.value, TruncatedPickle) and isinstance(eof.value, pickle.UnpicklingError)


def test_a_body_that_is_not_json(any_cci) -> None:  # type: ignore[no-untyped-def]
    any_cci.upload_object("b", io.BytesIO(b"\x80binary"))
    with pytest.raises(UnicodeDecodeError, match="b is not valid JSON"):
        any_cci.download_json("b")
    any_cci.upload_object("t", io.BytesIO(b"hello"))
    with pytest.raises(json.JSONDecodeError, match="t is not valid JSON"):
        any_cci.download_json("t")


def test_npy_of_an_empty_object_and_of_an_npz(any_cci) -> None:  # type: ignore[no-untyped-def]
    any_cci.upload_object("e", io.BytesIO(b""))
    with pytest.raises(EOFError) as info:
        any_cci.download_npy_array("e")
    assert isinstance(info.value, EmptyNpyFile) and isinstance(info.value, ValueError)
    out = io.BytesIO()
    np.savez(out, a=np.arange(3))
    any_cci.upload_object("z", io.BytesIO(out.getvalue()))
    assert np.array_equal(any_cci.download_npy_array("z")["a"], np.arange(3))  # np.load's NpzFile, as 0.4.0


def test_npy_upload_takes_what_np_save_takes(any_cci) -> None:  # type: ignore[no-untyped-def]
    for value in ([1, 2, 3], 5, "text", b"abc", 2.5):
        any_cci.upload_npy_array("n", value)
        assert np.array_equal(any_cci.download_npy_array("n"), np.asanyarray(value))
    for value in (None, {"a": 1}, sp.eye(3, format="csr")):  # object arrays: np.save would pickle them
        with pytest.raises(ValueError, match="upload_pickle"):
            any_cci.upload_npy_array("o", value)
        assert not any_cci.exists_object("o")


@pytest.mark.parametrize("value", ["text", b"abc", {"a": 1}, [1, 2], np.arange(3.0), None, 5])
def test_arguments_of_the_wrong_type(any_cci, value: Any) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AttributeError) as sparse:
        any_cci.upload_sparse_array("s", value)
    assert isinstance(sparse.value, NotASparseMatrix) and isinstance(sparse.value, TypeError)
    if not isinstance(value, dict):
        with pytest.raises(AttributeError) as tree:
            any_cci.dict2cloud("d", value)
        assert isinstance(tree.value, NotADict) and isinstance(tree.value, TypeError)
    with pytest.raises(AssertionError) as path:
        any_cci.upload_from_file(value, "f")
    assert isinstance(path.value, (NotAPath, FileNotFoundError))  # "text": a str naming no file
    if not isinstance(value, (bytes, np.ndarray)):
        with pytest.raises(ValueError) as body:  # 0.4.0 on S3: boto3's ValueError; local: AttributeError
            any_cci.upload_object("o", value)
        assert isinstance(body.value, NotABinaryBody) and isinstance(body.value, (TypeError, AttributeError))
    assert any_cci.ls("") == []  # nothing was written


def test_dask_upload_of_a_sparse_matrix_and_manifests_of_the_wrong_kind(any_cci) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AttributeError) as info:  # 0.4.0: no attribute 'nbytes'
        any_cci.upload_dask_array("d", sp.eye(3, format="csr"))
    assert isinstance(info.value, NotAnArray) and isinstance(info.value, TypeError)
    any_cci.upload_sparse_array("s", sp.eye(3, format="csr"))
    any_cci.upload_dask_array("d", np.arange(6.0))
    with pytest.raises(KeyError) as dask:
        any_cci.download_dask_array("s")
    with pytest.raises(KeyError) as sparse:
        any_cci.download_sparse_array("d")
    assert isinstance(dask.value, BadManifest) and isinstance(sparse.value, BadManifest)
    assert "not a dask array manifest" in str(dask.value)  # not quoted as a KeyError would
    any_cci.upload_json("l/metadata.json", [1, 2])
    with pytest.raises(TypeError):  # 0.4.0 indexed the list with a key
        any_cci.download_sparse_array("l")


def test_directory_arguments(any_cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError):
        any_cci.upload_from_directory(str(tmp_path / "nope"), "x")
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        any_cci.upload_from_directory(str(tmp_path / "f"), "x")
    for value in (np.arange(3.0), {"a": 1}, None, os.fsencode(tmp_path)):
        with pytest.raises(TypeError) as info:
            any_cci.upload_from_directory(value, "x")
        assert isinstance(info.value, NotAPath)


def test_local_folder_read_as_an_object(cci_local) -> None:  # type: ignore[no-untyped-def]
    cci_local.upload_json("f/a", {})
    with pytest.raises(IsADirectoryError) as info:  # 0.4.0's local backend: open() of a directory
        cci_local.download_object("f")
    assert isinstance(info.value, FolderNotAnObject) and isinstance(info.value, FileNotFoundError)
    assert not cci_local.exists_object("f")
