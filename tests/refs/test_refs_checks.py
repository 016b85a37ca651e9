"""Untrusted objects (rule 2) and the portable references ``ccfs refs`` writes.

A bad object under a prefix is left out with one warning naming it and what is wrong, and the
rest still opens; named alone, it raises ``ValueError``. The JSON file opens with fsspec, zarr
and a plain boto3 reader (no cottoncandy), and equals what cottoncandy downloads.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from cottoncandy import refs as ccrefs  # noqa: E402
from cottoncandy.formats.codecs import encode  # noqa: E402
from tests.cliutil import run  # noqa: E402
from tests.conftest import BUCKET, warns_about  # noqa: E402
from tests.corpusutil import load_corpus_into  # noqa: E402
from tests.refs.plainfs import open_reference_file  # noqa: E402

F8 = {"dtype": "<f8", "order": "C"}


@pytest.fixture
def bad_prefix(cci):  # type: ignore[no-untyped-def]
    store = cci.store
    good = np.arange(10.0)
    cci.upload_raw_array("bad/good", good, compression=False)
    store.put("bad/short", b"\0" * 40, {**F8, "shape": "10", "compression": "False"})
    store.put("bad/objects", b"\0" * 16, {"dtype": "|O", "shape": "2", "compression": "False", "order": "C"})
    forged = bytearray(encode(memoryview(np.arange(100.0).tobytes()), "LZ4"))
    forged[:4] = (10**9).to_bytes(4, "little")
    store.put("bad/lz4", bytes(forged), {**F8, "shape": "100", "compression": "LZ4"})
    store.put("bad/rows.npy", _npy_bytes(np.arange(6).reshape(2, 3))[:-8], {})  # header says more than is there
    store.put("bad/clash", b"\0" * 8, {**F8, "shape": "", "compression": "False"})
    cci.upload_raw_array("bad/clash/inner", good, compression=False)
    cci.upload_json("bad/notes.json", {"a": 1})
    cci.upload_dask_array("bad/dask", np.arange(200, dtype=np.uint8).reshape(2, -1), axis=0,
                          buffersize=5 * 2**20)
    cci.upload_raw_array("bad/dask/pt0000", np.zeros((1, 3)), compression=False)  # not the part metadata.json says
    return cci


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()


def test_bad_objects_are_left_out_one_warning_each(bad_prefix) -> None:  # type: ignore[no-untyped-def]
    cci = bad_prefix
    with warns_about("bad/short") as caught:
        refs = ccrefs.build_refs(cci.store, "bad")
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    want = {"bad/short": "body is 40 bytes", "bad/objects": "Python objects", "bad/lz4": "declares 1000000000",
            "bad/rows.npy": "object is", "bad/clash": "share this name", "bad/dask": "part holds"}
    assert {s.key for s in refs.skipped} == set(want)
    for key, words in want.items():
        assert sum(key in m and words in m for m in messages) == 1, (key, messages)
    assert len(messages) == len(want)
    assert refs.arrays == ["clash/inner", "good"] and refs.ignored == ["bad/notes.json"]
    with warnings.catch_warnings():  # the same warnings again: the rest opens
        warnings.simplefilter("ignore", UserWarning)
        group = ccrefs.open_group(cci, "bad")
    assert np.array_equal(group["good"][...], np.arange(10.0))


@pytest.mark.parametrize(("key", "words"), [("bad/short", "body is 40 bytes"), ("bad/lz4", "declares"),
                                            ("bad/rows.npy", "object is"), ("bad/notes.json", "not an array"),
                                            ("bad/dask", "part holds")])
def test_one_bad_object_named_alone_raises(bad_prefix, key: str, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=words) as caught:
        ccrefs.build_refs(bad_prefix.store, key)
    assert key in str(caught.value)


def test_nothing_there_is_an_error(cci) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="nothing is stored"):
        ccrefs.build_refs(cci.store, "missing")


def test_portable_refs_leave_out_only_irregular_dask_arrays(cci) -> None:  # type: ignore[no-untyped-def]
    load_corpus_into(lambda key, body, meta: cci.store.put(key, body, meta))
    with warns_about("dask/last_axis: no portable zarr reference"):
        refs = ccrefs.build_refs(cci.store, "dask")
    assert refs.arrays == ["first_axis"] and [s.key for s in refs.skipped] == ["dask/last_axis"]
    doc = json.loads(ccrefs.refs_text(refs))
    assert doc["version"] == 1
    assert doc["refs"]["first_axis/0.0.0"] == [f"s3://{BUCKET}/dask/first_axis/pt0000", 0, 78587]
    assert json.loads(doc["refs"]["first_axis/.zarray"])["compressor"]["id"] == "gzip"
    inner = ccrefs.build_refs(cci.store, "dask", portable=False)  # in-process: decoded, padded parts
    assert inner.arrays == ["first_axis", "last_axis"] and len(inner.parts) == 3


def test_the_reason_names_the_installed_zarr_and_follows_its_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    from cottoncandy.refs import zarr_support

    assert zarr_support.rectilinear_missing() == f"the installed zarr {zarr.__version__} has no rectilinear chunk grid"
    grids = pytest.importorskip("zarr.core.chunk_grids")
    monkeypatch.setattr(grids, "RectilinearChunkGrid", object, raising=False)
    monkeypatch.setitem(zarr.config.get("array"), "rectilinear_chunks", False)  # a zarr that has the setting
    assert zarr_support.rectilinear_missing() is None


def test_ccfs_refs_file_opens_without_cottoncandy(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_corpus_into(lambda key, body, meta: cci.store.put(key, body, meta))
    out = tmp_path / "refs.json"
    result = run(s3, "refs", f"s3://{BUCKET}/", "-o", str(out), "--chunk-size", "4K")
    assert result.stderr.splitlines() == [
        f"left out s3://{BUCKET}/dask/last_axis: no portable zarr reference: its last "
        f"part along an axis is shorter than the others (zarr stores edge chunks full size; the installed zarr "
        f"{zarr.__version__} has no rectilinear chunk grid); "
        "cottoncandy.refs.open_group reads it (it decodes such parts itself), or read it with download_dask_array"]
    assert result.stdout.strip() == (f"wrote {out}: 53 arrays in 18 groups; 1 left out, 2 other objects (not arrays)")
    group = open_reference_file(str(out), s3.endpoint_url)
    for path in ("raw/compression/Zstd", "raw/default_compression", "raw/dtypes/be_i4", "raw/layout/zerod",
                 "proj/sub01_analysis.grp/sub/weights", "sparse/csr/indptr"):
        assert np.array_equal(group[path][...], cci.download_raw_array(path)), path
    assert np.array_equal(group["npy/ints.npy"][...], cci.download_npy_array("npy/ints.npy"))
    assert np.array_equal(group["dask/first_axis"][...], cci.download_dask_array("dask/first_axis").compute())
    assert "last_axis" not in group["dask"]


def test_ccfs_refs_errors_are_one_line(s3, bad_prefix, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "nothing is stored" in run(s3, "refs", f"s3://{BUCKET}/missing", ok=False).stderr
    assert "bad/short: body is 40 bytes" in run(s3, "refs", f"s3://{BUCKET}/bad/short", ok=False).stderr
    assert not list(tmp_path.iterdir())


def test_local_backend_refs_are_paths_any_fsspec_reads(cci_local) -> None:  # type: ignore[no-untyped-def]
    """The local backend's objects are files holding exactly the body: its references are plain paths."""
    import zarr
    from fsspec.implementations.reference import ReferenceFileSystem

    arr = np.arange(300.0).reshape(30, 10)
    cci_local.upload_raw_array("loc/x", arr, compression=False)
    cci_local.upload_raw_array("loc/z", arr, compression="Zstd")
    assert np.array_equal(ccrefs.open_group(cci_local, "loc")["x"][...], arr)  # through our store
    refs = ccrefs.build_refs(cci_local.store, "loc", chunk_bytes=800)
    assert refs.refs["x/1.0"] == [cci_local.store.describe("loc/x"), 800, 800]
    fs = ReferenceFileSystem(fo=json.loads(ccrefs.refs_text(refs)))  # fsspec's own local filesystem
    group = zarr.open_group(fs.get_mapper(""), mode="r", zarr_format=2, use_consolidated=True)
    assert np.array_equal(group["x"][...], arr) and np.array_equal(group["z"][...], arr)


def test_without_the_extra_opening_says_what_to_install(cci, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Building references needs none of zarr/xarray/fsspec; opening names the extra when one is missing."""
    import sys

    cci.upload_raw_array("x", np.arange(3.0), compression=False)
    monkeypatch.setitem(sys.modules, "xarray", None)  # what an import of a missing package does
    assert ccrefs.build_refs(cci.store, "x").arrays == ["x"]
    with pytest.raises(ImportError, match=r"cottoncandy-ccfs\[zarr\]"):
        ccrefs.open_dataset(cci, "x")


# --- issue 24: sizes checked before readers pay; names zarr cannot hold -------------------------------
def _bomb_prefix(cci) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Bodies that decode to far more than the array they claim, one per way of hiding it; what each
    warning must say. ``bomb/good`` is a real gzip array, which must still open."""
    import bz2
    import gzip

    put = cci.store.put
    cci.upload_raw_array("bomb/good", np.arange(5.0), compression="gzip")
    zeros = bytes(64 * 2**20)
    # the case: a body claimed as 5 values that inflates to far more (64 MiB here, 1 GiB there)
    put("bomb/five", gzip.compress(zeros, 9), {**F8, "shape": "5", "compression": "gzip"})
    # within the size bound for 1 MiB of values, but its trailer (ISIZE) says 64 MiB
    put("bomb/isize", gzip.compress(zeros + zeros, 9), {**F8, "shape": str(2**17), "compression": "gzip"})
    # two members: the last one's trailer is right, the first inflates to 30 MiB (small: decoded here)
    hidden = gzip.compress(bytes(30 * 2**20), 9) + gzip.compress(np.arange(4096.0).tobytes())
    put("bomb/members", hidden, {**F8, "shape": "4096", "compression": "gzip"})
    # bz2 declares no size: 113 bytes that inflate to 100 MiB, claimed as 5 values
    put("bomb/bz2", bz2.compress(bytes(100 * 2**20)), {**F8, "shape": "5", "compression": "BZ2"})
    # xz declares its size in its index; and two streams, of which the index counts only the last
    put("bomb/xz", encode(memoryview(zeros), "lzma"), {**F8, "shape": "1024", "compression": "lzma"})
    two = encode(memoryview(zeros), "lzma") + encode(memoryview(np.arange(2048.0).tobytes()), "lzma")
    put("bomb/xz2", two, {**F8, "shape": "2048", "compression": "lzma"})
    return {"bomb/five": "more than a 40-byte array ever compresses to",
            "bomb/isize": f"trailer (ISIZE) says {2 * len(zeros)} decoded bytes",
            "bomb/members": "decodes to more than the 32768 bytes",
            "bomb/bz2": "bz2 body decodes to more than the 40 bytes",
            "bomb/xz": f"lzma body declares {len(zeros)} decoded bytes",
            "bomb/xz2": "not one xz stream"}


def test_a_body_that_decodes_to_more_than_its_array_is_left_out(cci) -> None:  # type: ignore[no-untyped-def]
    want = _bomb_prefix(cci)
    with warns_about("bomb/five") as caught:
        refs = ccrefs.build_refs(cci.store, "bomb")
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert {s.key for s in refs.skipped} == set(want) and len(messages) == len(want)
    for key, words in want.items():
        assert sum(key in m and words in m for m in messages) == 1, (key, words, messages)
    assert refs.arrays == ["good"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert list(ccrefs.open_dataset(cci, "bomb").data_vars) == ["good"]
    with pytest.raises(ValueError, match="more than a 40-byte array"):
        ccrefs.build_refs(cci.store, "bomb/five")  # named alone: an error


def test_ccfs_refs_names_each_body_left_out_in_one_line(s3, cci) -> None:  # type: ignore[no-untyped-def]
    want = _bomb_prefix(cci)
    result = run(s3, "refs", f"s3://{BUCKET}/bomb/")
    lines = [line for line in result.stderr.splitlines() if line.startswith("left out")]
    assert len(lines) == len(want) and "1 array in 1 group; 6 left out" in result.stderr
    for key, words in want.items():
        assert sum(line.startswith(f"left out s3://{BUCKET}/{key}:") and words in line for line in lines) == 1


def test_a_large_gzip_body_hiding_a_member_behind_a_right_trailer_is_refused(cci) -> None:  # type: ignore[no-untyped-def]
    """A gzip body larger than ``WHOLE_CHECK`` whose last member's trailer (ISIZE) is the array's size but
    whose first member inflates to 256 MiB: ISIZE describes the last member only (and only mod 2**32), so
    it cannot bound what zarr's codec makes of the one chunk; the body is decoded into nothing, bounded,
    before a reader is pointed at it. The array's own gzip body (ours, one chunk) still references."""
    import gzip

    arr = np.zeros(2**17)
    hidden = gzip.compress(bytes(256 * 2**20), 9) + gzip.compress(arr.tobytes(), 9)
    assert len(hidden) > 64 * 2**10  # past the small bodies decoded whole from their one GET
    cci.store.put("hidden/x", hidden, {**F8, "shape": str(arr.size), "compression": "gzip"})
    with pytest.raises(ValueError, match=r"hidden/x: gzip body decodes to more than the 1048576 bytes"):
        ccrefs.build_refs(cci.store, "hidden/x")
    good = np.random.default_rng(0).integers(0, 9, (2**16, 4)).astype(np.float64)
    cci.upload_raw_array("hidden/good", good)
    assert np.array_equal(ccrefs.open_dataset(cci, "hidden/good")["good"].values, good)


@pytest.mark.parametrize("name", ["back\\slash", "sub\\folder/x", "s3:\\x"])
def test_a_name_zarr_cannot_hold_is_left_out_and_the_folder_opens(cci, name: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 24: one key ``back\\slash`` made ``open_dataset`` of the whole folder fail (zarr reads a
    backslash as a separator, and the consolidated metadata then lacks the array it lists)."""
    cci.upload_raw_array("odd/good", np.arange(5.0), compression=False)
    cci.upload_raw_array(f"odd/{name}", np.arange(3.0), compression=False)
    with warns_about("backslash") as caught:
        refs = ccrefs.build_refs(cci.store, "odd")
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and f"odd/{name}" in messages[0]
    assert refs.arrays == ["good"] and [s.key for s in refs.skipped] == [f"odd/{name}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dataset = ccrefs.open_dataset(cci, "odd")
    assert list(dataset.data_vars) == ["good"] and np.array_equal(dataset["good"].values, np.arange(5.0))


def test_a_key_s3fs_would_cut_is_left_out_of_portable_references(cci) -> None:  # type: ignore[no-untyped-def]
    """s3fs reads ``?versionId=`` in a URL as a version and cuts it from the key: a reader of the
    references would get the bytes of ``ver/a`` for ``ver/a?versionId=1``."""
    cci.upload_raw_array("ver/a", np.zeros(3), compression=False)
    cci.upload_raw_array("ver/a?versionId=1", np.ones(3), compression=False)
    with warns_about("versionId"):
        refs = ccrefs.build_refs(cci.store, "ver")
    assert refs.arrays == ["a"]
    inner = ccrefs.build_refs(cci.store, "ver", portable=False)  # read through our own store: no such cut
    assert inner.arrays == ["a", "a?versionId=1"]
    assert np.array_equal(ccrefs.open_group(cci, "ver")["a?versionId=1"][...], np.ones(3))


def test_names_that_are_not_utf8_are_left_out(cci_local) -> None:  # type: ignore[no-untyped-def]
    root = cci_local.store.root
    cci_local.upload_raw_array("u/good", np.arange(5.0), compression=False)
    cci_local.upload_raw_array("u/other", np.arange(3.0), compression=False)
    for suffix in ("", ".meta.json"):
        old = bytes(root / "u" / f"other{suffix}")
        os.rename(old, old.replace(b"other", b"ot\xffher"))  # a file name no UTF-8 string spells
    with warns_about("not valid UTF-8"):
        refs = ccrefs.build_refs(cci_local.store, "u")
    assert refs.arrays == ["good"]
    json.loads(ccrefs.refs_text(refs))
